/* Video Depth Anything streaming mode (depth.mode stream) as a frame-synchronous stage
 * (pl_stage.h): one vda_stream (include/depthmatte/vda.h, the official infer_video_depth_one)
 * per video, every frame pushed in order from frame 0, one finished row per push.
 *
 * Causal and sequential: frame i's depth depends on every frame before it and frame 0 stays in
 * every later window, so a video is streamed whole by one rank (the planner never splits it:
 * dm_config_plan_options). A unit that starts past the stream's position (a --resume that
 * skips finished rows, a later unit of the same chunk after a stop) wants the frames from the
 * stream's position (0 for a new video) and pushes them without writing rows, so the rows are
 * the same as those of one uninterrupted run.
 *
 * Device backends: runtime.verify first_frame compares frame 0 of the rank's first video with a
 * fresh CPU stream; all keeps a CPU stream in lockstep and compares every frame.
 * Non-finite guard (docs/gpu.md), on every pushed frame (replayed ones included: their states
 * feed the rows after them): in float16/bfloat16 a frame whose depth holds NaN/Inf is redone on
 * the CPU reference from the state it started from (vda_stream_checkpoint before each push,
 * vda_stream_restore, the restored cache downloaded into the reference), its depth replaces the
 * device's and the device continues from the reference's new state (the new frame's cache slot
 * uploaded); counted in recomputed_frames. Still non-finite, or float32: an error naming video,
 * frame and stage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/vda.h"
#include "depthmatte/backend_host.h"
#include "pl_stage.h"

typedef struct vdas_stage {
    pl_stage base;
    vda_model *m;
    vda_stream *s;
    int s_h, s_w;
    int video;    /* video the stream holds (-1: none); vda_stream_frames = next frame */
    int64_t done; /* rows of the current unit queued (written at the next push or at pop) */
    pl_dl dl;     /* per frame: (H, W) depth (pl_stage.h) */
    float *depth; /* the current frame's slot buffer */
    /* CPU reference (device backends, runtime.verify) */
    dm_backend *ref_be;
    vda_model *ref_m;
    vda_stream *ref_s;
    int ref_h, ref_w, ref_lockstep;
    float *ref_depth;
    int verified;
} vdas_stage;

/* Next frame the stream would take for unit u's video (0: a new video). */
static int64_t stream_pos(const vdas_stage *v, const pl_unit *u) {
    if (!v->s || v->video != u->video || v->s_h != u->info->height || v->s_w != u->info->width)
        return 0;
    const int64_t p = vda_stream_frames(v->s);
    return p <= u->begin ? p : 0;
}

static dm_status vdas_want(pl_stage *s, const pl_unit *u, pl_frame_set *set) {
    return pl_frame_set_add(set, stream_pos((const vdas_stage *)s, u), u->end);
}

static dm_status vdas_begin(pl_stage *s, const pl_unit *u) {
    vdas_stage *v = (vdas_stage *)s;
    const dm_job *job = &s->env.c->job;
    const int H = u->info->height, W = u->info->width;
    v->done = 0;
    dm_status st = pl_dl_drop(&v->dl); /* rows of a cancelled unit: no write wants them */
    if (st) return st;
    if (stream_pos(v, u) > 0) return DM_OK; /* continues this video's stream */
    v->video = -1;
    if (v->s && v->s_h == H && v->s_w == W) {
        vda_stream_reset(v->s);
    } else {
        vda_stream_free(v->s);
        v->s = NULL;
        if ((st = vda_stream_init(&v->s, v->m, s->env.be, H, W, job->depth.input_size))) return st;
        v->s_h = H, v->s_w = W;
    }
    v->video = u->video;
    v->ref_lockstep = 0;
    return DM_OK;
}

/* The CPU reference (runtime.verify, the non-finite guard's recompute): backend, model, a
 * stream of the unit's frame size and its depth buffer, made on first use (the model is
 * loaded once per stage). */
static dm_status ref_models(vdas_stage *v, const pl_unit *u, size_t n) {
    const dm_job *job = &v->base.env.c->job;
    dm_status st = DM_OK;
    if (!v->ref_be && !(v->ref_be = dm_backend_cpu_create(job->runtime.threads)))
        return dm_error_set(DM_ERR_NOMEM, "cannot create the CPU reference backend");
    if (!v->ref_m && (st = vda_model_load(&v->ref_m, job->depth.weights, v->ref_be,
                                          job->depth.model == DM_DEPTH_VDA_VITS_METRIC)))
        return st;
    if (!v->ref_s || v->ref_h != u->info->height || v->ref_w != u->info->width) {
        vda_stream_free(v->ref_s);
        v->ref_s = NULL;
        v->ref_lockstep = 0;
        free(v->ref_depth);
        if (!(v->ref_depth = malloc(n * sizeof(float))))
            return dm_error_set(DM_ERR_NOMEM, "out of memory (VDA stream reference)");
        if ((st = vda_stream_init(&v->ref_s, v->ref_m, v->ref_be, u->info->height, u->info->width,
                                  job->depth.input_size)))
            return st;
        v->ref_h = u->info->height, v->ref_w = u->info->width;
    }
    return DM_OK;
}

/* runtime.verify on a device backend: frame 0 against a fresh CPU stream (first_frame), or
 * every frame against a CPU stream in lockstep (all). */
static dm_status verify(vdas_stage *v, const pl_unit *u, const pl_stage_frame *f, size_t n) {
    const pl_stage_env *env = &v->base.env;
    const dm_job *job = &env->c->job;
    const int all = job->runtime.verify == DM_VERIFY_ALL;
    if (!pl_verify_wanted(env, v->verified)) return DM_OK;
    if (!all && f->index != 0) return DM_OK; /* first_frame: the first frame of a stream */
    const double t0 = pl_now();
    dm_status st = ref_models(v, u, n);
    if (!st && f->index == 0) vda_stream_reset(v->ref_s), v->ref_lockstep = 1;
    if (!st && (!v->ref_lockstep || vda_stream_frames(v->ref_s) != f->index))
        return DM_OK; /* the reference did not see this video from frame 0 */
    if (!st) st = vda_stream_push(v->ref_s, f->rgb, v->ref_depth);
    v->verified = 1;
    env->stats->verify_s += pl_now() - t0;
    if (st) return st;
    return pl_stage_verify(env, DM_TOL_VDA_STREAM, "VDA stream depth", u->info->path, f->index, v->depth,
                           v->ref_depth, n);
}

/* The non-finite guard after the device push of frame f (`bad`: the count made on the backend,
 * vda_stream_nonfinite). Reduced precision: restore the device stream to its checkpoint, bring
 * the CPU reference to that state (download), push the frame there (its depth into v->depth),
 * and on a finite result upload the reference's new frame slot into the device stream, which
 * then stands where the reference stands. *recomputed = 1 when that happened. Still
 * non-finite, or float32: DM_ERR_NONFINITE naming video, frame and stage. */
static dm_status guard(vdas_stage *v, const pl_unit *u, const pl_stage_frame *f, size_t n,
                       int64_t bad, int *recomputed) {
    const pl_stage_env *env = &v->base.env;
    const dm_backend *be = env->be;
    *recomputed = 0;
    if (!bad) return DM_OK;
    int64_t still = bad;
    if (be->precision != DM_DTYPE_F32) {
        const double t0 = pl_now();
        dm_status st = ref_models(v, u, n);
        if (!st) st = vda_stream_restore(v->s);
        if (!st) st = vda_stream_copy_state(v->ref_s, v->s, 0);
        if (!st) st = vda_stream_push(v->ref_s, f->rgb, v->depth);
        if (!st) st = vda_stream_nonfinite(v->ref_s, &still);
        if (!st && !still) st = vda_stream_copy_state(v->s, v->ref_s, 1);
        v->ref_lockstep = !st && !still; /* the reference stands at the device's frame */
        env->stats->verify_s += pl_now() - t0;
        if (st) return st;
        if (!still) {
            *recomputed = 1;
            pl_stage_recomputed(env, u, 1, "frame", f->index, bad, "VDA stream depth");
            return DM_OK;
        }
    }
    return dm_error_set(DM_ERR_NONFINITE,
                        "%s: frame %lld: VDA stream depth has %lld NaN/Inf values in float32 (%s "
                        "backend%s); nothing of this frame is written",
                        u->info->path, (long long)f->index, (long long)still, be->ops->name,
                        be->precision != DM_DTYPE_F32 ? ", recomputed on the CPU reference" : "");
}

static dm_status vdas_push(pl_stage *s, const pl_unit *u, const pl_stage_frame *f, pl_rows *rows) {
    vdas_stage *v = (vdas_stage *)s;
    const size_t px = (size_t)u->info->width * u->info->height;
    if (v->video != u->video || f->index != vda_stream_frames(v->s))
        return dm_error_set(DM_ERR_ARG, "%s: VDA stream got frame %lld, expected %lld",
                            u->info->path, (long long)f->index, (long long)vda_stream_frames(v->s));
    pl_dl_slot *sl;
    dm_status st = pl_dl_next(&v->dl, &sl);
    if (st) return st;
    v->depth = sl->host;
    const double t1 = pl_now();
    /* reduced precision: the state this frame starts from, for the guard's recompute */
    if (s->env.be->precision != DM_DTYPE_F32) vda_stream_checkpoint(v->s);
    /* the download is queued: it runs beside the next frame's forward */
    st = vda_stream_push_async(v->s, f->rgb, v->depth, &sl->ticket);
    s->env.stats->inference_s += pl_now() - t1;
    int recomputed = 0;
    /* the row of the frame before is written while this frame computes; then this frame's
     * count, downloaded on its own, is waited for */
    int64_t bad = 0;
    if (!st) st = pl_dl_flush(&v->dl, s, u, rows);
    if (!st) st = vda_stream_nonfinite(v->s, &bad);
    /* a check that reads (or a recompute that overwrites) this frame's values waits for them */
    if (!st && (pl_verify_wanted(&s->env, v->verified) || bad)) st = pl_dl_ready(&v->dl, sl);
    if (!st) st = guard(v, u, f, px, bad, &recomputed);
    /* a recomputed frame is the reference's own: nothing to compare */
    if (!st && !recomputed) st = verify(v, u, f, px);
    if (st) {
        v->video = -1; /* the stream's state is undefined after an error */
        return st;
    }
    if (f->index >= u->begin) { /* a frame replayed to rebuild the state has no row */
        sl->row = f->index - u->begin, sl->count = 1;
        v->done = sl->row + 1;
    }
    /* pending from now on: its row is written at the next push or at pop */
    return pl_dl_commit(&v->dl, s, u, rows);
}

/* The row of one frame from its downloaded slot (pl_dl rows_out). */
static dm_status vdas_rows(pl_stage *s, const pl_unit *u, const pl_dl_slot *sl, pl_rows *rows) {
    const size_t px = (size_t)u->info->width * u->info->height;
    const int64_t t = sl->row;
    if (s->env.c->job.depth.dtype == DM_DTYPE_F16)
        for (size_t i = 0; i < px; i++)
            ((uint16_t *)rows->depth)[t * px + i] = dm_f32_to_f16(sl->host[i]);
    else
        memcpy((float *)rows->depth + t * px, sl->host, px * sizeof(float));
    return DM_OK;
}

/* The rows are needed now (the write): the last frame's download is waited for here. */
static dm_status vdas_pop(pl_stage *s, const pl_unit *u, int flush, pl_rows *rows, int64_t *done) {
    (void)flush;
    vdas_stage *v = (vdas_stage *)s;
    *done = 0;
    dm_status st = pl_dl_flush(&v->dl, s, u, rows);
    if (!st) *done = v->done;
    return st;
}

static void vdas_free(pl_stage *s) {
    vdas_stage *v = (vdas_stage *)s;
    pl_dl_free(&v->dl); /* first: no download may still be landing */
    vda_stream_free(v->s);
    vda_model_free(v->m);
    vda_stream_free(v->ref_s);
    vda_model_free(v->ref_m);
    if (v->ref_be) dm_backend_destroy(v->ref_be);
    free(v->ref_depth);
    free(v);
}

static const pl_stage_ops vdas_ops = {
    .name = "VDA stream",
    .windowed = 0,
    .want = vdas_want,
    .begin = vdas_begin,
    .push = vdas_push,
    .pop = vdas_pop,
    .free = vdas_free,
};

dm_status pl_stage_vda_stream_create(pl_stage **out, const pl_stage_env *env) {
    *out = NULL;
    vdas_stage *v = calloc(1, sizeof *v);
    if (!v) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    v->base.ops = &vdas_ops;
    v->base.env = *env;
    v->video = -1;
    *out = &v->base;
    const dm_job *job = &env->c->job;
    dm_status st = vda_model_load(&v->m, job->depth.weights, env->be,
                                  job->depth.model == DM_DEPTH_VDA_VITS_METRIC);
    if (st) return st;
    /* device->host copies of the depth land here: pinned on CUDA (backend_host.h), two
     * frames (pl_dl: one downloads while the other's row is written) */
    return pl_dl_init(&v->dl, env->be, 2, env->max_px, vdas_rows);
}
