/* Command-line filter of the GPU op-test case table (tests/gpu/test_cuda_ops.c), after ggml's
 * test-backend-ops `-o OP`: a short GPU session reruns only the ops (and dtypes) that failed.
 *
 *   test_cuda_ops [-o OP[,OP...]]... [-t DTYPE[,DTYPE...]]... [-b cuda|cpu|emu] [-P OP] [-l]
 *
 * -o selects ops by their table name (exact match, e.g. conv2d, attention, copy); -t selects
 * precisions (f32, f16, bf16); -b cpu runs the table with a second CPU backend as the backend under
 * test (f32 only: a self-check of the runner, guards and comparisons, which runs here and in CI);
 * -b emu with the emulated device backend (backend_emu.h: device rules, f16/bf16 rounding, all
 * three precisions, on the CPU); -P OP (with -b emu) injects the emulator's fault into op OP and
 * inverts the verdict: the run passes only when exactly the cases of OP fail;
 * -l lists the selected cases instead of running them. Without -o
 * every op runs, without -t every precision. Pure C, no CUDA: unit-tested on the CPU
 * (tests/gpu/test_op_filter.c). */
#ifndef DM_TESTS_OP_FILTER_H
#define DM_TESTS_OP_FILTER_H

#include <stddef.h>

#include "depthmatte/tensor.h"

#define OP_FILTER_MAX_OPS 32
#define OP_FILTER_NAME 32
#define OP_FILTER_CUDA 0
#define OP_FILTER_CPU 1
#define OP_FILTER_EMU 2

typedef struct op_filter {
    char ops[OP_FILTER_MAX_OPS][OP_FILTER_NAME]; /* selected op names; nops == 0: all */
    int nops;
    unsigned dtypes; /* bit (1u << dm_dtype) per selected precision; 0: all */
    int backend;     /* OP_FILTER_CUDA (default), OP_FILTER_CPU, OP_FILTER_EMU (-b) */
    char perturb[OP_FILTER_NAME]; /* -P: op whose emulated output is made wrong; "" none */
    int list;        /* -l */
    int help;        /* -h */
} op_filter;

/* Parses argv[1..argc-1] into *f (zeroed first). Returns 0, or -1 with a one-line reason in
 * err (unknown option, missing argument, unknown dtype or backend, empty or over-long name,
 * too many ops). */
int op_filter_parse(int argc, char **argv, op_filter *f, char *err, size_t err_size);

/* 1 when op `name` is selected. */
int op_filter_op(const op_filter *f, const char *name);

/* 1 when precision p is selected. */
int op_filter_dtype(const op_filter *f, dm_dtype p);

/* Index into f->ops of the first selected op that is not among names[0..n-1] (a typo that
 * would otherwise select nothing), or -1 when every selected op exists. */
int op_filter_unknown(const op_filter *f, const char *const *names, int n);

#endif
