/* depthmatte — backend self-verification against the CPU reference (`depthmatte selftest`,
 * `dm_selftest`).
 *
 * Part 1, ops: every op of the backend under test on small random inputs with the models'
 * shapes (ViT-S/14 qkv / MLP / attention, DPT convolutions and transposed convolutions, RVM
 * depthwise / dilated / 1x1 convolutions, guided filter, matting_compose, VDA motion-module
 * attention over 32 frames, bicubic pos-embed resize, ...), one case table with one runner.
 * Inputs are drawn in f32 and rounded to the precision under test so that both sides see the
 * same values; the CPU op computes the reference in f32; the backend runs on copies made with
 * dm_copy in the backend's storage dtype; max |backend - cpu| must stay within dm_tol_op
 * (include/depthmatte/tolerance.h). NaN / Inf must sit at the same elements with the same sign.
 * Part 2, networks: RVM MobileNetV3 (rvm_forward_u8, 2 frames of 64x48, downsample 0.5 with the
 * deep guided filter), Depth Anything V2 Small (da2_infer_u8, 64x48 at input size 42) and Video
 * Depth Anything Small (vda_window_depth, 32 frames of 64x48 at input size 28) with
 * deterministic weights made in memory (dm_st_open_synthetic: no file needed), run on the
 * backend and on the CPU backend, compared with dm_tol_network.
 *
 * The error columns: max_abs = max |got - ref|; max_rel = max |got - ref| / max(|ref|,
 * 1e-3 * max|ref|) (elementwise, floored so that zeros of a ReLU output do not dominate);
 * mean_abs = mean |got - ref|.
 */
#ifndef DEPTHMATTE_SELFTEST_H
#define DEPTHMATTE_SELFTEST_H

#include <stdint.h>
#include <stdio.h>

#include "depthmatte/backend.h"

typedef enum dm_selftest_result {
    DM_SELFTEST_PASS = 0,
    DM_SELFTEST_FAIL,        /* outside the tolerance, non-finite mismatch, or an op error */
    DM_SELFTEST_UNSUPPORTED, /* the backend says it does not support the op in this dtype */
} dm_selftest_result;

typedef struct dm_selftest_row {
    char name[32];  /* op ("linear", dm_op_name) or network ("rvm_mobilenetv3", "da2_vits",
                     * "vda_vits") */
    char what[64];  /* case ("qkv 101x384->1152 bias") or network output ("pha") */
    dm_dtype dtype; /* precision under test */
    double max_abs, max_rel, mean_abs;
    double tol;                 /* bound on max_abs */
    double mean_tol;            /* bound on mean_abs, < 0: none */
    int64_t nonfinite_mismatch; /* elements where NaN / +-Inf differ between the two sides */
    dm_selftest_result result;
    char note[200]; /* error message of a failed call, or "" */
} dm_selftest_row;

typedef struct dm_selftest_report {
    dm_selftest_row *rows;
    int count, capacity;
    int passed, failed, unsupported;
    double seconds; /* wall time of dm_selftest_run */
} dm_selftest_report;

typedef struct dm_selftest_opts {
    dm_dtype precision; /* precision under test: input rounding and tolerances (F32/F16/BF16) */
    dm_dtype storage;   /* dtype of the backend's tensors (the models' storage dtype) */
    int run_ops;        /* 1: part 1 */
    int run_models;     /* 1: part 2 */
    const char *filter; /* comma-separated op and network names ("linear,conv2d,da2_vits"),
                         * NULL = everything selected by run_ops / run_models */
    FILE *progress;     /* each row is printed here as it completes (NULL: silent) */
} dm_selftest_opts;

/* Runs the selected checks of backend `be` against the CPU backend `ref` (which must be a
 * CPU backend; be may be another CPU backend). Appends one row per case to *r (zero it first;
 * free with dm_selftest_report_free). Returns DM_OK when every check could be run, whatever its
 * result (see r->failed); DM_ERR_ARG for a filter naming no op or network, DM_ERR_NOMEM.
 * A failing backend call becomes a FAIL row naming the error, not an error return. */
dm_status dm_selftest_run(dm_backend *be, dm_backend *ref, const dm_selftest_opts *o,
                          dm_selftest_report *r);
void dm_selftest_report_free(dm_selftest_report *r);

/* The table: header, one line per row ("op or model, case, dtype, max abs, max rel, mean abs,
 * tolerance, PASS/FAIL"), then a summary line. */
void dm_selftest_print_header(FILE *f);
void dm_selftest_print_row(FILE *f, const dm_selftest_row *row);
void dm_selftest_print_summary(FILE *f, const dm_selftest_report *r, const char *backend);

/* The same as one JSON object {"backend", "precision", "seconds", "passed", "failed",
 * "unsupported", "rows": [{"name", "case", "dtype", "max_abs", "max_rel", "mean_abs", "tol",
 * "mean_tol", "nonfinite_mismatch", "result", "note"}]} (cJSON). DM_ERR_NOMEM. */
dm_status dm_selftest_print_json(FILE *f, const dm_selftest_report *r, const char *backend,
                                 dm_dtype precision);

/* Names of the checkable ops (op table field names) and networks, NULL-terminated. */
const char *const *dm_selftest_op_names(void);
const char *const *dm_selftest_network_names(void);

/* The whole command, shared by `depthmatte selftest` and `dm_selftest`: parses argv (argv[0] is
 * the command name, used in usage text as `prog`), creates the backend, runs, prints the table
 * (or JSON with --json) to stdout. Returns the process exit status: 0 all checks pass, 1 any
 * failure, 2 usage error or a backend that cannot be created (one line on stderr). Never
 * exits. */
int dm_selftest_command(int argc, char **argv, const char *prog);

#endif
