/* Lifetime-based buffer sharing (see buf_plan.h). */
#include <stdlib.h>
#include <string.h>

#include "models/buf_plan.h"

void bp_init(buf_plan *p) {
    memset(p, 0, sizeof *p);
}

dm_status bp_alloc(buf_plan *p, dm_backend *be, dm_tensor *t, int ndim, const int64_t *shape,
                   int first, int last) {
    return bp_alloc_dtype(p, be, t, dm_backend_storage_dtype(be), ndim, shape, first, last);
}

dm_status bp_alloc_dtype(buf_plan *p, dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim,
                         const int64_t *shape, int first, int last) {
    if (!p) return dm_alloc(be, t, dtype, ndim, shape);
    if (p->err) return p->err;
    if (ndim < 1 || ndim > DM_MAX_DIMS || first > last)
        return p->err = dm_error_set(DM_ERR_ARG,
                                     "buf_plan: bad request (ndim %d, phases "
                                     "%d..%d)",
                                     ndim, first, last);
    if (p->n == p->cap) {
        const int cap = p->cap ? 2 * p->cap : 64;
        bp_req *r = realloc(p->req, sizeof *r * (size_t)cap);
        if (!r) return p->err = dm_error_set(DM_ERR_NOMEM, "buf_plan: out of memory");
        p->req = r, p->cap = cap;
    }
    bp_req *r = &p->req[p->n++];
    memset(r, 0, sizeof *r);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return p->err = dm_error_set(DM_ERR_ARG, "buf_plan: negative dim");
        r->shape[i] = shape[i];
        n *= shape[i];
    }
    r->t = t, r->dtype = dtype, r->ndim = ndim, r->first = first, r->last = last;
    n *= (int64_t)dm_dtype_size(dtype);
    r->n = (n + BP_ALIGN - 1) / BP_ALIGN * BP_ALIGN;
    if (r->n == 0) r->n = BP_ALIGN;
    memset(t, 0, sizeof *t);
    return DM_OK;
}

static int by_size_desc(const void *a, const void *b) {
    const bp_req *x = *(const bp_req *const *)a, *y = *(const bp_req *const *)b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return x->first - y->first; /* stable enough: equal sizes by first phase */
}

static int by_off(const void *a, const void *b) {
    const bp_req *x = *(const bp_req *const *)a, *y = *(const bp_req *const *)b;
    return x->off < y->off ? -1 : x->off > y->off;
}

dm_status bp_commit(buf_plan *p, dm_backend *be) {
    if (p->err) return p->err;
    bp_req **order = malloc(sizeof *order * (size_t)(p->n ? p->n : 1));
    bp_req **live = malloc(sizeof *live * (size_t)(p->n ? p->n : 1));
    if (!order || !live) {
        free(order), free(live);
        return dm_error_set(DM_ERR_NOMEM, "buf_plan: out of memory");
    }
    for (int i = 0; i < p->n; i++)
        order[i] = &p->req[i];
    qsort(order, (size_t)p->n, sizeof *order, by_size_desc);
    int64_t total = 0;
    for (int i = 0; i < p->n; i++) {
        bp_req *r = order[i];
        int nl = 0; /* already placed buffers alive at the same time as r, by offset */
        for (int j = 0; j < i; j++)
            if (order[j]->first <= r->last && r->first <= order[j]->last) live[nl++] = order[j];
        qsort(live, (size_t)nl, sizeof *live, by_off);
        int64_t off = 0;
        for (int j = 0; j < nl; j++) {
            if (live[j]->off >= off + r->n) break; /* the gap before live[j] fits r */
            if (live[j]->off + live[j]->n > off) off = live[j]->off + live[j]->n;
        }
        r->off = off;
        if (off + r->n > total) total = off + r->n;
    }
    free(order), free(live);
    const int64_t s[] = {total ? total : BP_ALIGN};
    dm_status st = dm_alloc(be, &p->arena, DM_DTYPE_U8, 1, s);
    if (st) return st;
    for (int i = 0; i < p->n; i++) {
        bp_req *r = &p->req[i];
        const int64_t nb[] = {r->n};
        dm_tensor v = dm_tensor_sub(&p->arena, r->off, 1, nb); /* r->n bytes at r->off */
        v.dtype = r->dtype;
        v.ndim = r->ndim;
        memcpy(v.shape, r->shape, sizeof v.shape);
        *r->t = v;
    }
    return DM_OK;
}

int64_t bp_arena_bytes(const buf_plan *p) {
    return dm_tensor_numel(&p->arena) * (p->arena.data != NULL);
}

int64_t bp_requested_bytes(const buf_plan *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++)
        n += p->req[i].n;
    return n;
}

void bp_free(buf_plan *p) {
    dm_tensor_free(&p->arena);
    free(p->req);
    memset(p, 0, sizeof *p);
}
