/* Robust Video Matting as a frame-synchronous stage (pl_stage.h): one frame in, its alpha and
 * foreground row out. The recurrent state starts cold at the first unit of every chunk and is
 * warmed by the chunk's context frames [context_begin, begin), whose outputs are discarded
 * (DESIGN.md "Context frames"); it carries over between the units of one chunk. No hand-over
 * between ranks: a split chunk warms up instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/rvm.h"
#include "depthmatte/backend_host.h"
#include "pl_stage.h"

typedef struct rvm_stage {
    pl_stage base;
    rvm_model *rvm;
    rvm_state *rs;
    int rs_h, rs_w;
    pl_dl dl; /* per frame: (3, H, W) foreground, planar, then (H, W) alpha (pl_stage.h) */
    /* CPU reference (runtime.verify), loaded on first use */
    dm_backend *ref_be;
    rvm_model *ref_rvm;
    rvm_state *ref_rs;
    float *ref_out; /* (4, H, W): fgr + pha */
    size_t ref_out_px;
    int verified;
    int64_t pushed; /* rows of the current unit written so far */
} rvm_stage;

static rvm_variant variant(const dm_job *job) {
    return job->matting.model == DM_MATTING_RVM_RESNET50 ? RVM_VARIANT_RESNET50
                                                         : RVM_VARIANT_MOBILENETV3;
}

static dm_status rvm_want(pl_stage *s, const pl_unit *u, pl_frame_set *set) {
    (void)s;
    return pl_frame_set_add(set, u->first ? u->context_begin : u->begin, u->end);
}

static dm_status rvm_begin(pl_stage *s, const pl_unit *u) {
    rvm_stage *r = (rvm_stage *)s;
    const dm_job *job = &s->env.c->job;
    r->pushed = 0;
    dm_status st = pl_dl_drop(&r->dl); /* rows of a cancelled unit: no write wants them */
    if (st || !u->first) return st;
    const int H = u->info->height, W = u->info->width;
    if (r->rs && (r->rs_h != H || r->rs_w != W)) {
        rvm_state_free(r->rs);
        r->rs = NULL;
    }
    if (!r->rs) {
        if ((st = rvm_state_init(&r->rs, r->rvm, s->env.be, H, W, job->matting.downsample_ratio)))
            return st;
        r->rs_h = H, r->rs_w = W;
    }
    /* every chunk starts cold, warmed only by its context */
    if ((st = rvm_state_reset(r->rs))) return st;
    if (r->ref_rs) { /* the reference follows the device state only until verified */
        rvm_state_free(r->ref_rs);
        r->ref_rs = NULL;
    }
    return DM_OK;
}

/* The CPU reference (runtime.verify, the non-finite guard's recompute): backend, model, a
 * state of the unit's frame size and the output buffer, made on first use. */
static dm_status ref_models(rvm_stage *r, const pl_unit *u) {
    const dm_job *job = &r->base.env.c->job;
    const int H = u->info->height, W = u->info->width;
    const size_t px = (size_t)W * H;
    dm_status st = DM_OK;
    if (!r->ref_be && !(r->ref_be = dm_backend_cpu_create(job->runtime.threads)))
        return dm_error_set(DM_ERR_NOMEM, "cannot create the CPU reference backend");
    if (r->ref_out_px < px) {
        free(r->ref_out);
        r->ref_out_px = 0;
        if (!(r->ref_out = malloc(4 * px * sizeof(float))))
            return dm_error_set(DM_ERR_NOMEM, "out of memory for the reference outputs");
        r->ref_out_px = px;
    }
    if (!r->ref_rvm)
        st = rvm_model_load_variant(&r->ref_rvm, job->matting.weights, variant(job), r->ref_be);
    if (!st && !r->ref_rs)
        st = rvm_state_init(&r->ref_rs, r->ref_rvm, r->ref_be, H, W, job->matting.downsample_ratio);
    return st;
}

/* The rank's first frame after a cold start (runtime.verify first_frame) or every frame (all),
 * recomputed on the CPU from the same cold state. A non-finite device output is not compared
 * here: the guard below recomputes or reports it. */
static dm_status verify(rvm_stage *r, const pl_unit *u, const uint8_t *rgb, int64_t frame, int fgr,
                        const float *fgr_f, const float *pha_f, int64_t bad) {
    const pl_stage_env *env = &r->base.env;
    const dm_job *job = &env->c->job;
    if (!pl_verify_wanted(env, r->verified)) return DM_OK;
    const double t0 = pl_now();
    const size_t px = (size_t)u->info->width * u->info->height;
    dm_status st = ref_models(r, u);
    if (!st && job->runtime.verify != DM_VERIFY_ALL) st = rvm_state_reset(r->ref_rs);
    float *rf = r->ref_out, *rp = r->ref_out + 3 * px;
    if (!st) st = rvm_forward_u8(r->ref_rs, rgb, fgr ? rf : NULL, rp);
    if (!st && !bad)
        st = pl_stage_verify(env, DM_TOL_RVM, "RVM alpha", u->info->path, frame, pha_f, rp, px);
    if (!st && !bad && fgr) /* the same frame: counted once, above */
        st = pl_verify_compare(env->be, DM_TOL_RVM, "RVM foreground", u->info->path, frame,
                               fgr_f, rf, 3 * px);
    r->verified = 1;
    env->stats->verify_s += pl_now() - t0;
    return st;
}

/* The non-finite guard, on every frame (a warm-up frame's state feeds the rows after it), with
 * the count `bad` made on the backend (rvm_state_nonfinite). In float16/bfloat16 the frame is
 * recomputed in float32 on the CPU reference from the recurrent state it started from (the
 * checkpoint rvm_push takes before each frame), its outputs replace the device's, and the
 * device continues from the reference's new state; counted in recomputed_frames. Still
 * non-finite, or already float32: an error naming video, frame and stage. */
static dm_status guard(rvm_stage *r, const pl_unit *u, const uint8_t *rgb, int64_t frame, int fgr,
                       float *fgr_f, float *pha_f, int64_t bad) {
    const pl_stage_env *env = &r->base.env;
    const dm_backend *be = env->be;
    if (!bad) return DM_OK;
    int64_t still = bad;
    if (be->precision != DM_DTYPE_F32) {
        const double t0 = pl_now();
        dm_status st = ref_models(r, u);
        if (!st) st = rvm_state_copy_recurrent(r->ref_rs, r->rs, 1);
        if (!st) st = rvm_forward_u8(r->ref_rs, rgb, fgr ? fgr_f : NULL, pha_f);
        if (!st) st = rvm_state_nonfinite(r->ref_rs, &still);
        if (!st && !still) st = rvm_state_copy_recurrent(r->rs, r->ref_rs, 0);
        env->stats->verify_s += pl_now() - t0;
        if (st) return st;
        if (!still) {
            pl_stage_recomputed(env, u, 1, "frame", frame, bad, "RVM");
            return DM_OK;
        }
    }
    return dm_error_set(DM_ERR_NONFINITE,
                        "%s: frame %lld: RVM output has %lld NaN/Inf values in float32 (%s "
                        "backend%s); nothing of this frame is written",
                        u->info->path, (long long)frame, (long long)still, be->ops->name,
                        be->precision != DM_DTYPE_F32 ? ", recomputed on the CPU reference" : "");
}

static inline float clamp01(float x) {
    return x < 0.f ? 0.f : (x > 1.f ? 1.f : x);
}

static dm_status rvm_push(pl_stage *s, const pl_unit *u, const pl_stage_frame *f, pl_rows *rows) {
    rvm_stage *r = (rvm_stage *)s;
    const dm_job *job = &s->env.c->job;
    const size_t px = (size_t)u->info->width * u->info->height;
    const int row = f->index >= u->begin;
    const int want_fgr = row && (job->matting.outputs & DM_MATTING_OUT_FOREGROUND);
    if (row && f->index != u->begin + r->pushed)
        return dm_error_set(DM_ERR_ARG, "%s: RVM got frame %lld, expected %lld", u->info->path,
                            (long long)f->index, (long long)(u->begin + r->pushed));
    pl_dl_slot *sl;
    dm_status st = pl_dl_next(&r->dl, &sl);
    if (st) return st;
    float *fgr_f = sl->host, *pha_f = sl->host + 3 * px;
    double t1 = pl_now();
    /* reduced precision: the state this frame starts from, for the guard's recompute */
    if (s->env.be->precision != DM_DTYPE_F32) st = rvm_state_checkpoint(r->rs);
    /* the downloads are queued: they run beside the next frame's forward */
    if (!st) st = rvm_forward_u8_async(r->rs, f->rgb, want_fgr ? fgr_f : NULL, pha_f, &sl->ticket);
    s->env.stats->inference_s += pl_now() - t1;
    /* the rows of the frame before are written while this frame computes (its download ran
     * beside it); then the count of this frame, downloaded on its own, is waited for */
    int64_t bad = 0;
    if (!st) st = pl_dl_flush(&r->dl, s, u, rows);
    if (!st) st = rvm_state_nonfinite(r->rs, &bad);
    if (st) return st;
    /* a check that reads (or a recompute that overwrites) this frame's values waits for them */
    if ((pl_verify_wanted(&s->env, r->verified) || bad) && (st = pl_dl_ready(&r->dl, sl)))
        return st;
    if ((st = verify(r, u, f->rgb, f->index, want_fgr, fgr_f, pha_f, bad))) return st;
    if ((st = guard(r, u, f->rgb, f->index, want_fgr, fgr_f, pha_f, bad))) return st;
    if (row) { /* a warm-up frame's outputs are discarded: no rows */
        sl->row = r->pushed, sl->count = 1, sl->flags = want_fgr;
        r->pushed++;
    }
    /* pending from now on: its rows are written at the next push or at pop */
    return pl_dl_commit(&r->dl, s, u, rows);
}

/* Rows of one frame from its downloaded slot (pl_dl rows_out). */
static dm_status rvm_rows(pl_stage *s, const pl_unit *u, const pl_dl_slot *sl, pl_rows *rows) {
    const dm_job *job = &s->env.c->job;
    const size_t px = (size_t)u->info->width * u->info->height;
    const int want_fgr = sl->flags, want_alpha = job->matting.outputs & DM_MATTING_OUT_ALPHA;
    const float *fgr_f = sl->host, *pha_f = sl->host + 3 * px;
    const int64_t t = sl->row;
    /* alpha uint8 = round(clamp(a, 0, 1) * 255): lrintf rounds half to even, which only
     * matters for exact .5 values that float alphas essentially never hit. */
    if (want_alpha) {
        const int alpha_u8 = job->output.alpha_dtype == DM_DTYPE_U8;
        for (size_t i = 0; i < px; i++) {
            float a = clamp01(pha_f[i]);
            if (alpha_u8)
                ((uint8_t *)rows->alpha)[t * px + i] = (uint8_t)lrintf(a * 255.f);
            else
                ((uint16_t *)rows->alpha)[t * px + i] = dm_f32_to_f16(a);
        }
    }
    if (want_fgr) {
        uint8_t *dst = rows->fgr + (size_t)t * px * 3;
        for (size_t i = 0; i < px; i++)
            for (int k = 0; k < 3; k++)
                dst[i * 3 + k] = (uint8_t)lrintf(clamp01(fgr_f[k * px + i]) * 255.f);
    }
    return DM_OK;
}

/* The rows are needed now (the write): the last frame's download is waited for here. */
static dm_status rvm_pop(pl_stage *s, const pl_unit *u, int flush, pl_rows *rows, int64_t *done) {
    (void)flush;
    rvm_stage *r = (rvm_stage *)s;
    *done = 0;
    dm_status st = pl_dl_flush(&r->dl, s, u, rows);
    if (!st) *done = r->pushed;
    return st;
}

static void rvm_free(pl_stage *s) {
    rvm_stage *r = (rvm_stage *)s;
    pl_dl_free(&r->dl); /* first: no download may still be landing */
    rvm_state_free(r->rs);
    rvm_model_free(r->rvm);
    rvm_state_free(r->ref_rs);
    rvm_model_free(r->ref_rvm);
    if (r->ref_be) dm_backend_destroy(r->ref_be);
    free(r->ref_out);
    free(r);
}

static const pl_stage_ops rvm_ops = {
    .name = "RVM",
    .windowed = 0,
    .want = rvm_want,
    .begin = rvm_begin,
    .push = rvm_push,
    .pop = rvm_pop,
    .free = rvm_free,
};

dm_status pl_stage_rvm_create(pl_stage **out, const pl_stage_env *env) {
    *out = NULL;
    rvm_stage *r = calloc(1, sizeof *r);
    if (!r) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    r->base.ops = &rvm_ops;
    r->base.env = *env;
    *out = &r->base;
    const dm_job *job = &env->c->job;
    dm_status st = rvm_model_load_variant(&r->rvm, job->matting.weights, variant(job), env->be);
    if (st) return st;
    /* device->host copies of the outputs land here: pinned on CUDA (backend_host.h), two
     * frames (pl_dl: one downloads while the other's rows are written) */
    return pl_dl_init(&r->dl, env->be, 2, env->max_px * 4, rvm_rows);
}
