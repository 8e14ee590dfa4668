/* Internal: shared pieces of the selftest (include/depthmatte/selftest.h): the run context,
 * host/backend tensor helpers and the row recorder (selftest.c), the op case table
 * (selftest_ops.c) and the networks (selftest_nets.c). */
#ifndef DM_MODELS_SELFTEST_INTERNAL_H
#define DM_MODELS_SELFTEST_INTERNAL_H

#include "depthmatte/selftest.h"

typedef struct st_ctx {
    dm_backend *be;  /* backend under test */
    dm_backend *ref; /* CPU reference backend */
    const dm_selftest_opts *o;
    dm_selftest_report *r;
    int nomem; /* a row could not be appended */
} st_ctx;

/* 1 if `name` passes the filter (no filter: 1). */
int st_selected(st_ctx *c, const char *name);

/* Host F32 tensor uniform on [offset - amp, offset + amp), rounded to the precision under test,
 * from an LCG seeded with `seed`. */
dm_status st_host_rand(st_ctx *c, dm_tensor *t, int ndim, const int64_t *shape, float amp,
                       float offset, unsigned seed);
/* Rounds v to the precision under test (identity for F32). */
float st_round(st_ctx *c, float v);
/* Backend tensor in the storage dtype holding host tensor h (dm_alloc + dm_copy). */
dm_status st_upload(st_ctx *c, const dm_tensor *h, dm_tensor *d);
/* Zeroed backend tensor in the storage dtype. */
dm_status st_dev_zeros(st_ctx *c, dm_tensor *d, int ndim, const int64_t *shape);
/* Host F32 copy of backend tensor d. */
dm_status st_download(st_ctx *c, const dm_tensor *d, dm_tensor *h);
/* Releases a tensor of any backend (safe on a zeroed struct). */
void st_free(dm_tensor *t);

/* Compares n floats and appends a row: max/mean abs, max rel, NaN/Inf agreement; PASS when
 * max_abs <= tol, mean_abs <= mean_tol (if >= 0) and no non-finite mismatch. */
void st_compare(st_ctx *c, const char *name, const char *what, const float *got, const float *ref,
                int64_t n, double tol, double mean_tol);
/* Appends a FAIL row carrying `note` (e.g. the backend's error message). */
void st_fail(st_ctx *c, const char *name, const char *what, const char *note);
/* Appends an UNSUPPORTED row. */
void st_unsupported(st_ctx *c, const char *name, const char *what);
/* Max |x| of n floats (non-finite values ignored). */
double st_max_abs(const float *x, int64_t n);
/* Standard deviation of n floats (two-pass, double). */
double st_std(const float *x, int64_t n);

/* Part 1 and part 2. */
void st_run_ops(st_ctx *c);
void st_run_networks(st_ctx *c);
/* 1 if the name is a case op / network (for the filter check). */
int st_is_op_name(const char *name);
int st_is_network_name(const char *name);

#endif
