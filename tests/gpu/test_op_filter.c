/* CPU unit test of the GPU op-test filter (tests/gpu/op_filter.c): -o / -t / -l parsing, the
 * error cases, matching, and the unknown-op check that keeps a typo from selecting nothing. */
#include <stdarg.h>
#include <string.h>

#include "op_filter.h"
#include "tensor_compare.h"

static int parse(op_filter *f, char *err, int argc, ...) {
    char *argv[16] = {"test_cuda_ops"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return op_filter_parse(argc, argv, f, err, 256);
}

int main(void) {
    op_filter f;
    char err[256];

    /* no arguments: everything selected */
    CHECK(parse(&f, err, 1) == 0);
    CHECK(f.nops == 0 && f.dtypes == 0 && !f.list && !f.help);
    CHECK(op_filter_op(&f, "conv2d") && op_filter_op(&f, "anything"));
    CHECK(op_filter_dtype(&f, DM_DTYPE_F32) && op_filter_dtype(&f, DM_DTYPE_BF16));

    /* -o with a list, repeated -o, -t with a list */
    CHECK(parse(&f, err, 7, "-o", "conv2d,attention", "-o", "copy", "-t", "bf16,f16") == 0);
    CHECK(f.nops == 3);
    CHECK(op_filter_op(&f, "conv2d") && op_filter_op(&f, "attention") && op_filter_op(&f, "copy"));
    CHECK(!op_filter_op(&f, "linear"));
    CHECK(!op_filter_op(&f, "conv")); /* exact names, no prefixes */
    CHECK(!op_filter_dtype(&f, DM_DTYPE_F32));
    CHECK(op_filter_dtype(&f, DM_DTYPE_F16) && op_filter_dtype(&f, DM_DTYPE_BF16));

    /* -b */
    CHECK(parse(&f, err, 1) == 0 && f.backend == OP_FILTER_CUDA && f.perturb[0] == '\0');
    CHECK(parse(&f, err, 3, "-b", "cpu") == 0 && f.backend == OP_FILTER_CPU);
    CHECK(parse(&f, err, 3, "-b", "cuda") == 0 && f.backend == OP_FILTER_CUDA);
    CHECK(parse(&f, err, 3, "-b", "emu") == 0 && f.backend == OP_FILTER_EMU);
    CHECK(parse(&f, err, 3, "-b", "rocm") == -1 && strstr(err, "unknown backend 'rocm'"));
    CHECK(parse(&f, err, 2, "-b") == -1 && strstr(err, "needs an argument"));
    /* -P: only with -b emu */
    CHECK(parse(&f, err, 5, "-b", "emu", "-P", "linear") == 0 && !strcmp(f.perturb, "linear"));
    CHECK(parse(&f, err, 3, "-P", "linear") == -1 && strstr(err, "needs -b emu"));
    CHECK(parse(&f, err, 5, "-P", "linear", "-b", "cpu") == -1 && strstr(err, "needs -b emu"));
    CHECK(parse(&f, err, 4, "-b", "emu", "-P") == -1 && strstr(err, "needs an argument"));

    /* -l and -h */
    CHECK(parse(&f, err, 4, "-l", "-t", "f32") == 0);
    CHECK(f.list && f.dtypes == (1u << DM_DTYPE_F32));
    CHECK(parse(&f, err, 2, "-h") == 0 && f.help);

    /* errors: each with a reason */
    CHECK(parse(&f, err, 2, "-o") == -1 && strstr(err, "needs an argument"));
    CHECK(parse(&f, err, 3, "-t", "f64") == -1 && strstr(err, "unknown dtype 'f64'"));
    CHECK(parse(&f, err, 3, "-t", "f16,") == -1 && strstr(err, "empty name"));
    CHECK(parse(&f, err, 3, "-o", ",conv2d") == -1 && strstr(err, "empty name"));
    CHECK(parse(&f, err, 2, "--bogus") == -1 && strstr(err, "unknown argument '--bogus'"));
    CHECK(parse(&f, err, 3, "-o", "an_op_name_much_longer_than_thirty_one_chars") == -1 &&
          strstr(err, "too long"));
    char many[40 * 3];
    many[0] = '\0';
    for (int i = 0; i < OP_FILTER_MAX_OPS + 1; i++)
        strcat(many, i ? ",a" : "a");
    CHECK(parse(&f, err, 3, "-o", many) == -1 && strstr(err, "more than"));

    /* unknown op names are reported (index of the first), known ones pass */
    const char *names[] = {"conv2d", "linear", "attention", "copy"};
    CHECK(parse(&f, err, 3, "-o", "linear,copy") == 0);
    CHECK(op_filter_unknown(&f, names, 4) == -1);
    CHECK(parse(&f, err, 3, "-o", "linear,atention") == 0);
    CHECK(op_filter_unknown(&f, names, 4) == 1);
    CHECK(parse(&f, err, 1) == 0);
    CHECK(op_filter_unknown(&f, names, 4) == -1);

    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
