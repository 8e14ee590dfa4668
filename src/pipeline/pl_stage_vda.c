/* Video Depth Anything (offline, infer_video_depth) as a windowed stage (pl_stage.h): a unit
 * is one 32-frame window k (rows [22k+2, 22k+24), window 0 from row 0, the last window also
 * the 8 rows after); the window's forward pass runs when its last input frame is pushed, and
 * its rows are finished at pop, after the scale/shift alignment state of window k-1 is known:
 * kept on this rank (it ran k-1 in the previous round), or handed over from another rank
 * (state_unpack; the worker's MPI exchange, pl_handover.c). include/depthmatte/plan.h "VDA
 * schedules", include/depthmatte/vda.h "Distributing one video over ranks". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/vda.h"
#include "depthmatte/backend_host.h"
#include "pl_stage.h"

_Static_assert(VDA_STRIDE == 22 && VDA_WINDOW == 32 && VDA_INTERP == 8,
               "src/plan/plan_vda.c assumes the official window constants");

typedef struct vda_stage {
    pl_stage base;
    vda_model *m;
    vda_ctx *ctx;
    int ctx_h, ctx_w;
    vda_align *a;
    int a_h, a_w;
    int a_video, a_window;   /* window whose alignment the state has just done (-1: none) */
    int in_video, in_window; /* window whose inputs the context holds (for vda_window_shift) */
    int64_t idx[VDA_WINDOW]; /* source frame of each slot of the current window */
    int first_slot;          /* slots first_slot..31 are filled by pushes */
    int64_t last_frame;      /* the window's last input frame: its push runs the window */
    int ran;                 /* the current window's forward pass is done (raw valid) */
    pl_dl dl;                /* one slot: the window's download (pl_stage.h), waited at pop */
    float *raw;              /* (32, H, W) window depths at source size: dl's buffer */
    /* CPU reference (device backends): runtime.verify of the rank's first window, float32
     * recompute of a non-finite window of a reduced precision. Loaded on first use. */
    dm_backend *ref_be;
    vda_model *ref_m;
    vda_ctx *ref_ctx;
    float *ref_raw; /* (32, H, W) */
    int verified;
} vda_stage;

static int continues(const vda_stage *v, const pl_unit *u) {
    return u->window > 0 && v->in_video == u->video && v->in_window == u->window - 1 &&
           v->ctx_h == u->info->height && v->ctx_w == u->info->width;
}

static dm_status vda_want(pl_stage *s, const pl_unit *u, pl_frame_set *set) {
    const vda_stage *v = (const vda_stage *)s;
    const int64_t T = u->info->frames, k = u->window;
    const int64_t end = 22 * k + VDA_WINDOW < T ? 22 * k + VDA_WINDOW : T;
    if (k < 0) return dm_error_set(DM_ERR_ARG, "%s: VDA unit without a window", u->info->path);
    if (k == 0) return pl_frame_set_add(set, 0, end);
    /* Slots 0..9 come from the previous window (vda_window_shift); slots 10..31 are frames
     * 22k+10.. or, past the video end, the last frame again (the previous window decoded it:
     * the worker replays it without decoding). */
    if (continues(v, u)) return pl_frame_set_add(set, 22 * k + 10 < T ? 22 * k + 10 : T - 1, end);
    dm_status st = pl_frame_set_add(set, 0, 1);
    if (!st)
        st = pl_frame_set_add(set, 22 * k - 10 < T ? 22 * k - 10 : T - 1,
                              22 * k - 9 < T ? 22 * k - 9 : T);
    if (!st) st = pl_frame_set_add(set, 22 * k + 2 < T ? 22 * k + 2 : T - 1, end);
    return st;
}

static dm_status vda_begin(pl_stage *s, const pl_unit *u) {
    vda_stage *v = (vda_stage *)s;
    const dm_job *job = &s->env.c->job;
    const int H = u->info->height, W = u->info->width;
    v->ran = 0;
    dm_status st = pl_dl_drop(&v->dl); /* a window of a cancelled unit: no write wants it */
    if (st) return st;
    const int shift = continues(v, u);
    if (!v->ctx || v->ctx_h != H || v->ctx_w != W) {
        vda_ctx_free(v->ctx);
        v->ctx = NULL;
        v->in_video = -1;
        if ((st = vda_ctx_init(&v->ctx, v->m, s->env.be, H, W, job->depth.input_size))) return st;
        v->ctx_h = H, v->ctx_w = W;
    }
    vda_window_frames(u->window, u->info->frames, v->idx);
    v->first_slot = 0;
    if (shift) {
        /* Slots 0..9 are the previous window's inputs at KEYFRAMES (vda_window_shift). */
        if ((st = vda_window_shift(v->ctx))) return st;
        v->first_slot = 2 + VDA_INTERP;
    }
    v->last_frame = v->idx[VDA_WINDOW - 1];
    v->in_video = -1; /* inputs are incomplete until every slot is filled */
    return DM_OK;
}

/* After a device's window: runtime.verify (first window of the rank, or all) and the
 * non-finite guard (reduced precision: recomputed in float32 on the CPU reference; float32:
 * the video fails). The reference runs from the very same preprocessed input. */
static dm_status check_window(vda_stage *v, const pl_unit *u, int64_t bad) {
    const pl_stage_env *env = &v->base.env;
    const dm_job *job = &env->c->job;
    const dm_video_info *info = u->info;
    const int k = u->window;
    const size_t n = (size_t)VDA_WINDOW * info->width * info->height;
    const int verify = pl_verify_wanted(env, v->verified);
    const int redo = bad && env->be->precision != DM_DTYPE_F32;
    if (!verify && !redo) {
        if (!bad) return DM_OK;
        return dm_error_set(DM_ERR_NONFINITE,
                            "%s: window %d: VDA depth has %lld NaN/Inf values "
                            "(%s backend, %s); nothing of this window is written",
                            info->path, k, (long long)bad, env->be->ops->name,
                            dm_dtype_name(env->be->precision));
    }
    const double t0 = pl_now();
    dm_status st = DM_OK;
    if (!v->ref_be && !(v->ref_be = dm_backend_cpu_create(job->runtime.threads)))
        return dm_error_set(DM_ERR_NOMEM, "cannot create the CPU reference backend");
    if (!v->ref_m)
        st = vda_model_load(&v->ref_m, job->depth.weights, v->ref_be,
                            job->depth.model == DM_DEPTH_VDA_VITS_METRIC);
    int h = 0, w = 0, rh = -1, rw = -1;
    vda_ctx_source_dims(v->ctx, &h, &w);
    if (v->ref_ctx) vda_ctx_source_dims(v->ref_ctx, &rh, &rw);
    if (!st && (rh != h || rw != w)) {
        vda_ctx_free(v->ref_ctx);
        v->ref_ctx = NULL;
        free(v->ref_raw);
        v->ref_raw = malloc(n * sizeof(float));
        if (!v->ref_raw) return dm_error_set(DM_ERR_NOMEM, "out of memory (VDA reference)");
        st = vda_ctx_init(&v->ref_ctx, v->ref_m, v->ref_be, h, w, job->depth.input_size);
    }
    if (!st) st = vda_ctx_copy_input(v->ref_ctx, v->ctx);
    if (!st) st = vda_window_run(v->ref_ctx, v->ref_raw);
    v->verified = 1;
    env->stats->verify_s += pl_now() - t0;
    if (st) return st;
    if (verify && !bad) {
        env->stats->verified_frames += VDA_WINDOW;
        st = pl_verify_compare(env->be, DM_TOL_VDA, "VDA window depth", info->path,
                               (int64_t)k * VDA_STRIDE, v->raw, v->ref_raw, n);
        if (st) return st;
    }
    if (!bad) return DM_OK;
    const int64_t still = pl_count_nonfinite(v->ref_raw, n);
    if (redo && !still) {
        memcpy(v->raw, v->ref_raw, n * sizeof(float));
        pl_stage_recomputed(env, u, VDA_WINDOW, "window", k, bad, "depth");
        return DM_OK;
    }
    return dm_error_set(DM_ERR_NONFINITE,
                        "%s: window %d: VDA depth has %lld NaN/Inf values in "
                        "float32; nothing of this window is written",
                        info->path, k, (long long)(still ? still : bad));
}

static dm_status vda_push(pl_stage *s, const pl_unit *u, const pl_stage_frame *f, pl_rows *rows) {
    (void)rows;
    vda_stage *v = (vda_stage *)s;
    dm_status st = DM_OK;
    double t1 = pl_now();
    /* Every slot of this frame (clamped padding repeats the last frame). */
    int used = 0;
    for (int k = v->first_slot; k < VDA_WINDOW && !st; k++)
        if (v->idx[k] == f->index) st = vda_preprocess_u8(v->ctx, f->rgb, k), used = 1;
    if (!st && !used)
        st = dm_error_set(DM_ERR_ARG, "%s: window %d: VDA got frame %lld outside the window",
                          u->info->path, u->window, (long long)f->index);
    if (!st && f->index == v->last_frame) {
        v->in_video = u->video, v->in_window = u->window;
        pl_dl_slot *sl;
        st = pl_dl_next(&v->dl, &sl);
        /* the download is queued; pop waits for it (the alignment reads the window) */
        if (!st) st = vda_window_run_async(v->ctx, v->raw, &sl->ticket);
        s->env.stats->inference_s += pl_now() - t1;
        /* a check that reads (or a recompute that overwrites) the window waits for it */
        int64_t bad = 0; /* counted on the backend */
        if (!st) st = vda_ctx_nonfinite(v->ctx, &bad);
        if (!st && (pl_verify_wanted(&s->env, v->verified) || bad)) st = pl_dl_ready(&v->dl, sl);
        if (!st) st = check_window(v, u, bad);
        if (!st) sl->row = 0, sl->count = u->end - u->begin, st = pl_dl_commit(&v->dl, s, u, rows);
        if (!st) v->ran = 1;
        if (st) v->in_video = -1;
        return st;
    }
    s->env.stats->inference_s += pl_now() - t1;
    return st;
}

/* Makes v->a a state for this video's frame size (fresh when window 0 or after a size change). */
static dm_status ensure_align(vda_stage *v, const dm_video_info *info, int fresh) {
    if (!fresh && v->a && v->a_h == info->height && v->a_w == info->width) return DM_OK;
    vda_align_free(v->a);
    v->a = NULL;
    v->a_video = -1;
    dm_status st = vda_align_init(&v->a, info->height, info->width, vda_model_is_metric(v->m));
    if (!st) v->a_h = info->height, v->a_w = info->width;
    return st;
}

/* Converts row `row` (video frame) from src (H * W floats) into the unit's row buffers. */
static dm_status put_row(const vda_stage *v, const pl_unit *u, const float *src, int64_t row,
                         pl_rows *rows) {
    const size_t px = (size_t)u->info->width * u->info->height;
    const int64_t t = row - u->begin;
    const int f16 = v->base.env.c->job.depth.dtype == DM_DTYPE_F16;
    for (size_t i = 0; i < px; i++) {
        float d = src[i];
        if (!isfinite(d))
            return dm_error_set(DM_ERR_NONFINITE, "%s: frame %lld: non-finite depth at pixel %zu",
                                u->info->path, (long long)row, i);
        if (f16)
            ((uint16_t *)rows->depth)[t * px + i] = dm_f32_to_f16(d);
        else
            ((float *)rows->depth)[t * px + i] = d;
    }
    return DM_OK;
}

/* Aligns the window in v->raw (state already in v->a) and writes its rows. */
static dm_status align_rows(vda_stage *v, const pl_unit *u, pl_rows *rows) {
    const dm_video_info *info = u->info;
    const size_t px = (size_t)info->width * info->height;
    int first_slot, count;
    int64_t first_frame;
    dm_status st = vda_align_window(v->a, v->raw, &first_slot, &count, &first_frame);
    if (st) return st;
    v->a_video = u->video, v->a_window = u->window;
    if (first_frame != u->begin)
        return dm_error_set(DM_ERR_ARG, "%s: window %d aligned frames from %lld, planned %lld",
                            info->path, u->window, (long long)first_frame, (long long)u->begin);
    int64_t row = u->begin;
    for (; row < u->end && row < first_frame + count; row++) {
        int slot = first_slot + (int)(row - first_frame);
        if ((st = put_row(v, u, v->raw + (size_t)slot * px, row, rows))) return st;
    }
    if (row < u->end) {
        if (!u->last)
            return dm_error_set(DM_ERR_ARG, "%s: window %d owns rows past its aligned frames",
                                info->path, u->window);
        const float *p;
        int64_t ff;
        if ((st = vda_align_finish(v->a, &p, &ff))) return st;
        for (; row < u->end; row++) {
            int64_t j = row - ff;
            if (j < 0 || j >= VDA_INTERP)
                return dm_error_set(DM_ERR_ARG, "%s: row %lld outside the last window", info->path,
                                    (long long)row);
            if ((st = put_row(v, u, p + (size_t)j * px, row, rows))) return st;
        }
    }
    return DM_OK;
}

static dm_status vda_pop(pl_stage *s, const pl_unit *u, int flush, pl_rows *rows, int64_t *done) {
    vda_stage *v = (vda_stage *)s;
    *done = 0;
    if (!flush) return DM_OK; /* rows are finished only with the alignment state */
    dm_status st = DM_OK;
    if (!v->ran)
        st = dm_error_set(DM_ERR_ARG, "%s: window %d: rows asked for before its last frame",
                          u->info->path, u->window);
    else if (u->window == 0)
        st = ensure_align(v, u->info, 1);
    else if (v->a_video != u->video || v->a_window != u->window - 1)
        st = dm_error_set(DM_ERR_ARG, "%s: window %d: no alignment state of window %d",
                          u->info->path, u->window, u->window - 1);
    double t1 = pl_now();
    if (!st) st = pl_dl_flush(&v->dl, s, u, rows); /* the window's values are needed now */
    if (!st) st = align_rows(v, u, rows);
    s->env.stats->inference_s += pl_now() - t1;
    if (st) {
        v->a_video = -1;
        return st;
    }
    *done = u->end - u->begin;
    return DM_OK;
}

static size_t vda_state_cap(const pl_stage *s) {
    /* vda_align_state_bytes = a small header + 10 frames of floats; 256 bytes of slack cover
     * the header (checked against the real size when packing) */
    return 256 + 10 * s->env.max_px * sizeof(float);
}

static dm_status vda_state_pack(pl_stage *s, const pl_unit *u, void *buf, size_t cap,
                                size_t *bytes) {
    vda_stage *v = (vda_stage *)s;
    if (!v->a || v->a_video != u->video || v->a_window != u->window)
        return dm_error_set(DM_ERR_ARG, "%s: window %d: no alignment state to hand over",
                            u->info->path, u->window);
    size_t sb = vda_align_state_bytes(v->a);
    if (sb > cap)
        return dm_error_set(DM_ERR_NOMEM, "VDA state of %zu bytes exceeds the buffer (%zu)", sb,
                            cap);
    vda_align_pack(v->a, buf);
    *bytes = sb;
    return DM_OK;
}

static dm_status vda_state_unpack(pl_stage *s, const pl_unit *u, const void *buf, size_t bytes) {
    vda_stage *v = (vda_stage *)s;
    /* unpack overwrites the whole state: reallocate only when the frame size changes */
    dm_status st = ensure_align(v, u->info, 0);
    if (!st) st = vda_align_unpack(v->a, buf, bytes);
    if (!st) v->a_video = u->video, v->a_window = u->window - 1;
    return st;
}

static int vda_state_holds(const pl_stage *s, const pl_unit *u) {
    const vda_stage *v = (const vda_stage *)s;
    return v->a && v->a_video == u->video && v->a_window == u->window - 1;
}

static void vda_free(pl_stage *s) {
    vda_stage *v = (vda_stage *)s;
    pl_dl_free(&v->dl); /* first: no download may still be landing */
    vda_align_free(v->a);
    vda_ctx_free(v->ctx);
    vda_model_free(v->m);
    vda_ctx_free(v->ref_ctx);
    vda_model_free(v->ref_m);
    if (v->ref_be) dm_backend_destroy(v->ref_be);
    free(v->ref_raw);
    free(v);
}

static const pl_stage_ops vda_ops = {
    .name = "VDA",
    .windowed = 1,
    .want = vda_want,
    .begin = vda_begin,
    .push = vda_push,
    .pop = vda_pop,
    .state_cap = vda_state_cap,
    .state_pack = vda_state_pack,
    .state_unpack = vda_state_unpack,
    .state_holds = vda_state_holds,
    .free = vda_free,
};

dm_status pl_stage_vda_create(pl_stage **out, const pl_stage_env *env) {
    *out = NULL;
    vda_stage *v = calloc(1, sizeof *v);
    if (!v) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    v->base.ops = &vda_ops;
    v->base.env = *env;
    v->a_video = v->in_video = -1;
    *out = &v->base;
    const dm_job *job = &env->c->job;
    dm_status st = vda_model_load(&v->m, job->depth.weights, env->be,
                                  job->depth.model == DM_DEPTH_VDA_VITS_METRIC);
    if (st) return st;
    /* device->host copies of the window land here: pinned on CUDA (backend_host.h); one
     * window per unit, whose rows the alignment at pop writes (rows_out NULL) */
    if ((st = pl_dl_init(&v->dl, env->be, 1, env->max_px * VDA_WINDOW, NULL))) return st;
    v->raw = v->dl.slot[0].host;
    return DM_OK;
}
