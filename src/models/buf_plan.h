/* Internal: buffers whose lifetimes are known in advance share one allocation.
 *
 * A model's forward is a fixed sequence of phases (numbered by the caller, e.g. VDA: 0 the
 * encoder, 1.. the head's stages). Every buffer is requested with the first and last phase in
 * which it holds data; buffers whose phase ranges do not intersect may occupy the same bytes.
 * bp_commit places all requests in one backend allocation (largest first, each at the lowest
 * offset free of every placed buffer whose lifetime overlaps; the greedy "first fit by size"
 * of memory planners such as TVM's and TFLite's arena planners) and turns each requested
 * tensor into a non-owning view (dm_tensor_sub) of it. Nothing is allocated per forward.
 *
 * A buffer's contents are only valid inside its lifetime: a later phase may overwrite it.
 */
#ifndef DM_MODELS_BUF_PLAN_H
#define DM_MODELS_BUF_PLAN_H

#include "depthmatte/backend.h"

typedef struct bp_req {
    dm_tensor *t; /* filled with a view by bp_commit */
    dm_dtype dtype;
    int ndim;
    int64_t shape[DM_MAX_DIMS];
    int first, last; /* phases, inclusive */
    int64_t n, off;  /* bytes (rounded up to BP_ALIGN), placement in bytes */
} bp_req;

typedef struct buf_plan {
    bp_req *req;
    int n, cap;
    dm_status err;   /* first error of bp_add (reported by bp_commit) */
    dm_tensor arena; /* 1-D, u8 (bytes) on the backend; owns the memory */
} buf_plan;

#define BP_ALIGN 256 /* bytes: every view starts on a 256-byte boundary of the arena */

void bp_init(buf_plan *p);

/* Requests t (ndim, shape) in the backend's storage dtype for phases [first, last]. With
 * p NULL, allocates t at once (dm_alloc), so one init function serves both. */
dm_status bp_alloc(buf_plan *p, dm_backend *be, dm_tensor *t, int ndim, const int64_t *shape,
                   int first, int last);

/* As bp_alloc, in `dtype` (e.g. dm_backend_residual_dtype: buffers of several dtypes share one
 * arena; each view is aligned to BP_ALIGN bytes). */
dm_status bp_alloc_dtype(buf_plan *p, dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim,
                         const int64_t *shape, int first, int last);

/* Places every request, allocates the arena, fills every requested tensor. DM_ERR_NOMEM,
 * DM_ERR_ARG (bad request). */
dm_status bp_commit(buf_plan *p, dm_backend *be);

/* Bytes of the arena (after bp_commit) and the sum of all requests, each rounded up to
 * BP_ALIGN (what separate buffers would need). */
int64_t bp_arena_bytes(const buf_plan *p);
int64_t bp_requested_bytes(const buf_plan *p);

/* Frees the arena and the request list (the views become dangling: free their owners first
 * or zero them). */
void bp_free(buf_plan *p);

#endif
