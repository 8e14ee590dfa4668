/* Helpers of the stage interface (pl_stage.h): frame sets, runtime.verify, double-buffered
 * output downloads. */
#include <stdio.h>
#include <string.h>

#include "depthmatte/backend_host.h"
#include "pl_stage.h"

dm_status pl_frame_set_add(pl_frame_set *s, int64_t a, int64_t b) {
    if (b <= a) return DM_OK;
    if (s->n > 0 && a < s->a[s->n - 1])
        return dm_error_set(DM_ERR_ARG, "frame set: range [%lld, %lld) before [%lld, %lld)",
                            (long long)a, (long long)b, (long long)s->a[s->n - 1],
                            (long long)s->b[s->n - 1]);
    if (s->n > 0 && a <= s->b[s->n - 1]) {
        if (b > s->b[s->n - 1]) s->b[s->n - 1] = b;
        return DM_OK;
    }
    if (s->n == PL_FRAME_SET_MAX)
        return dm_error_set(DM_ERR_ARG, "frame set: more than %d ranges", PL_FRAME_SET_MAX);
    s->a[s->n] = a, s->b[s->n] = b;
    s->n++;
    return DM_OK;
}

int pl_frame_set_has(const pl_frame_set *s, int64_t f) {
    for (int i = 0; i < s->n; i++)
        if (f >= s->a[i] && f < s->b[i]) return 1;
    return 0;
}

/* Is this frame checked against the CPU reference? (runtime.verify; device backends only) */
int pl_verify_wanted(const pl_stage_env *env, int done_already) {
    const dm_verify_mode m = env->c->job.runtime.verify;
    if (env->be->device == DM_DEVICE_CPU || m == DM_VERIFY_OFF) return 0;
    return m == DM_VERIFY_ALL || !done_already;
}

/* pl_verify_compare, counted in this rank's statistics. */
dm_status pl_stage_verify(const pl_stage_env *env, dm_tol_model model, const char *stage,
                          const char *path, int64_t frame, const float *got, const float *ref,
                          size_t n) {
    env->stats->verified_frames++;
    return pl_verify_compare(env->be, model, stage, path, frame, got, ref, n);
}

void pl_stage_recomputed(const pl_stage_env *env, const pl_unit *u, int64_t frames,
                         const char *unit, int64_t index, int64_t bad, const char *what) {
    env->stats->recomputed_frames += frames;
    env->video_recomputed[u->video] += frames;
    fprintf(stderr, "depthmatte: %s: %s %lld: %lld NaN/Inf %s values in %s; recomputed in "
            "float32\n", u->info->path, unit, (long long)index, (long long)bad, what,
            dm_dtype_name(env->be->precision));
}

/* ---- double-buffered output downloads ------------------------------------------------------ */

dm_status pl_dl_init(pl_dl *q, dm_backend *be, int nslots, size_t floats, pl_dl_rows_fn fn) {
    memset(q, 0, sizeof *q);
    q->be = be;
    q->nslots = nslots < 1 ? 1 : (nslots > PL_DL_SLOTS ? PL_DL_SLOTS : nslots);
    q->rows_out = fn;
    for (int i = 0; i < q->nslots; i++)
        if (!(q->slot[i].host = dm_backend_host_alloc(be, floats * sizeof(float))))
            return dm_error_set(DM_ERR_NOMEM, "out of memory for output buffers (%zu floats)",
                                floats);
    return DM_OK;
}

void pl_dl_free(pl_dl *q) {
    if (!q->be) return;
    (void)pl_dl_drop(q); /* no copy may still write into a buffer being freed */
    for (int i = 0; i < q->nslots; i++)
        dm_backend_host_free(q->be, q->slot[i].host);
    memset(q, 0, sizeof *q);
}

dm_status pl_dl_next(pl_dl *q, pl_dl_slot **out) {
    pl_dl_slot *sl = &q->slot[q->next];
    *out = NULL;
    /* a download queued by a push that failed before its commit: its buffer is free after it */
    dm_status st = sl->pending ? DM_OK : pl_dl_ready(q, sl);
    if (st) return st;
    if (sl->pending)
        return dm_error_set(DM_ERR_ARG,
                            "output download slot %d still holds rows %lld.. "
                            "(internal: flush before)",
                            q->next, (long long)sl->row);
    sl->row = sl->count = 0;
    sl->flags = 0;
    *out = sl;
    return DM_OK;
}

dm_status pl_dl_ready(pl_dl *q, pl_dl_slot *sl) {
    return dm_copy_wait(q->be, &sl->ticket);
}

static dm_status finish(pl_dl *q, pl_dl_slot *sl, pl_stage *s, const pl_unit *u, pl_rows *rows) {
    dm_status st = pl_dl_ready(q, sl);
    sl->pending = 0;
    if (!st && q->rows_out && sl->count > 0) st = q->rows_out(s, u, sl, rows);
    return st;
}

dm_status pl_dl_commit(pl_dl *q, pl_stage *s, const pl_unit *u, pl_rows *rows) {
    q->slot[q->next].pending = 1;
    q->next = (q->next + 1) % q->nslots;
    /* the others are older (with two slots: the frame before, whose copy ran beside this
     * frame's compute); with one slot the rows wait for pop */
    for (int i = 0; i < q->nslots - 1; i++) {
        pl_dl_slot *sl = &q->slot[(q->next + i) % q->nslots];
        if (!sl->pending) continue;
        dm_status st = finish(q, sl, s, u, rows);
        if (st) return st;
    }
    return DM_OK;
}

dm_status pl_dl_flush(pl_dl *q, pl_stage *s, const pl_unit *u, pl_rows *rows) {
    for (int i = 0; i < q->nslots; i++) { /* from `next`: the oldest first */
        pl_dl_slot *sl = &q->slot[(q->next + i) % q->nslots];
        if (!sl->pending) continue;
        dm_status st = finish(q, sl, s, u, rows);
        if (st) return st;
    }
    return DM_OK;
}

dm_status pl_dl_drop(pl_dl *q) {
    dm_status st = DM_OK;
    for (int i = 0; i < q->nslots; i++) {
        pl_dl_slot *sl = &q->slot[i];
        const dm_status w = pl_dl_ready(q, sl);
        if (!st) st = w;
        sl->pending = 0;
    }
    return st;
}
