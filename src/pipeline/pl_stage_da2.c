/* Depth Anything V2 Small as a frame-synchronous stage (pl_stage.h): runtime.batch_size frames
 * per forward pass (a batch is cut at the unit's end and at a stop request), so a row may be
 * finished one push or a few later than its frame; then per frame runtime.verify / the
 * non-finite guard and the conversion to the output dtype. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/da2.h"
#include "depthmatte/backend_host.h"
#include "pl_stage.h"

typedef struct da2_stage {
    pl_stage base;
    da2_model *da2;
    da2_ctx *dc;
    int dc_h, dc_w;
    int batch;          /* B: frames per forward (runtime.batch_size) */
    uint8_t *batch_rgb; /* (B, H, W, 3) copies of the frames waiting for the batch */
    pl_dl dl;           /* per batch: (B, Hd, Wd) depth at source size or at the model grid */
    int nb;             /* frames waiting: rows done .. done + nb - 1 */
    int64_t done;       /* rows of the current unit finished */
    /* CPU reference (runtime.verify, float32 recompute), loaded on first use */
    dm_backend *ref_be;
    da2_model *ref_da2;
    da2_ctx *ref_dc;
    int ref_h, ref_w;
    float *ref_out;
    size_t ref_out_n;
    int verified;
} da2_stage;

static dm_status da2_want(pl_stage *s, const pl_unit *u, pl_frame_set *set) {
    (void)s;
    return pl_frame_set_add(set, u->begin, u->end);
}

static dm_status da2_begin(pl_stage *s, const pl_unit *u) {
    da2_stage *d = (da2_stage *)s;
    const dm_job *job = &s->env.c->job;
    const int H = u->info->height, W = u->info->width;
    d->nb = 0, d->done = 0;
    dm_status st = pl_dl_drop(&d->dl); /* rows of a cancelled unit: no write wants them */
    if (st || (d->dc && d->dc_h == H && d->dc_w == W)) return st;
    da2_ctx_free(d->dc);
    d->dc = NULL;
    st = da2_ctx_init_batch(&d->dc, d->da2, s->env.be, H, W, job->depth.input_size, d->batch);
    if (!st) d->dc_h = H, d->dc_w = W;
    return st;
}

/* The CPU reference models and output buffer for H x W frames. */
static dm_status ref_models(da2_stage *d, int H, int W) {
    const dm_job *job = &d->base.env.c->job;
    dm_status st;
    if (!d->ref_be && !(d->ref_be = dm_backend_cpu_create(job->runtime.threads)))
        return dm_error_set(DM_ERR_NOMEM, "cannot create the CPU reference backend");
    int mh, mw; /* the model grid (depth.output_size model) may be larger than the source */
    da2_input_size(H, W, job->depth.input_size, &mh, &mw);
    size_t n = (size_t)H * W > (size_t)mh * mw ? (size_t)H * W : (size_t)mh * mw;
    if (d->ref_out_n < n) {
        free(d->ref_out);
        d->ref_out_n = 0;
        if (!(d->ref_out = malloc(n * sizeof(float))))
            return dm_error_set(DM_ERR_NOMEM, "out of memory for the reference outputs");
        d->ref_out_n = n;
    }
    if (!d->ref_da2 && (st = da2_model_load(&d->ref_da2, job->depth.weights, d->ref_be))) return st;
    if (!d->ref_dc || d->ref_h != H || d->ref_w != W) {
        da2_ctx_free(d->ref_dc);
        d->ref_dc = NULL;
        if ((st = da2_ctx_init(&d->ref_dc, d->ref_da2, d->ref_be, H, W, job->depth.input_size)))
            return st;
        d->ref_h = H, d->ref_w = W;
    }
    return DM_OK;
}

/* After the device's depth: verification (first frame / all) and the non-finite guard: a frame
 * with NaN/Inf in float16/bfloat16 is recomputed in float32 on the CPU reference and counted;
 * still non-finite (or already float32) -> an error naming video, frame, stage. */
static dm_status check(da2_stage *d, const pl_unit *u, int64_t frame, const uint8_t *rgb,
                       float *depth, size_t n, int64_t bad) {
    const pl_stage_env *env = &d->base.env;
    const dm_job *job = &env->c->job;
    const int model_size = job->depth.output_size == DM_DEPTH_SIZE_MODEL;
    const int verify = pl_verify_wanted(env, d->verified);
    const char *path = u->info->path;
    if (!verify && (!bad || env->be->precision == DM_DTYPE_F32)) {
        if (bad) goto nonfinite;
        return DM_OK;
    }
    const double t0 = pl_now();
    dm_status st = ref_models(d, u->info->height, u->info->width);
    if (!st) st = da2_infer_u8_batch(d->ref_dc, &rgb, 1, d->ref_out, model_size);
    if (!st && verify && !bad)
        st = pl_stage_verify(env, DM_TOL_DA2, "DA-V2 depth", path, frame, depth, d->ref_out, n);
    d->verified = 1;
    env->stats->verify_s += pl_now() - t0;
    if (st) return st;
    if (!bad) return DM_OK;
    if (env->be->precision != DM_DTYPE_F32 && !pl_count_nonfinite(d->ref_out, n)) {
        memcpy(depth, d->ref_out, n * sizeof(float));
        pl_stage_recomputed(env, u, 1, "frame", frame, bad, "depth");
        return DM_OK;
    }
nonfinite:
    return dm_error_set(DM_ERR_NONFINITE,
                        "%s: frame %lld: DA-V2 depth has %lld NaN/Inf values "
                        "in float32 (%s backend); nothing of this frame is written",
                        path, (long long)frame, (long long)bad, env->be->ops->name);
}

/* Depth pixels per row: the source size, or the model grid (depth.output_size model). */
static size_t row_px(const da2_stage *d, const pl_unit *u) {
    if (d->base.env.c->job.depth.output_size != DM_DEPTH_SIZE_MODEL)
        return (size_t)u->info->width * u->info->height;
    int h, wd;
    da2_ctx_input_dims(d->dc, &h, &wd);
    return (size_t)h * wd;
}

/* Rows of one batch from its downloaded slot (pl_dl rows_out). */
static dm_status da2_rows(pl_stage *s, const pl_unit *u, const pl_dl_slot *sl, pl_rows *rows) {
    const da2_stage *d = (const da2_stage *)s;
    const int depth_f16 = s->env.c->job.depth.dtype == DM_DTYPE_F16;
    const size_t dpx = row_px(d, u);
    for (int64_t j = 0; j < sl->count; j++) {
        const float *x = sl->host + (size_t)j * dpx;
        const int64_t t = sl->row + j;
        for (size_t i = 0; i < dpx; i++) {
            if (depth_f16)
                ((uint16_t *)rows->depth)[t * dpx + i] = dm_f32_to_f16(x[i]);
            else
                ((float *)rows->depth)[t * dpx + i] = x[i];
        }
    }
    return DM_OK;
}

/* One forward pass over the nb waiting frames (rows done .. done + nb - 1). `last` is the
 * frame just pushed when B == 1 (no copy is kept then). The download is queued into a slot
 * (pl_dl); its rows are written after the next batch's forward, or at pop. */
static dm_status run_batch(da2_stage *d, const pl_unit *u, const uint8_t *last, pl_rows *rows) {
    const dm_job *job = &d->base.env.c->job;
    const int model_size = job->depth.output_size == DM_DEPTH_SIZE_MODEL;
    const size_t px = (size_t)u->info->width * u->info->height;
    const uint8_t *rgb[1024];
    for (int j = 0; j < d->nb; j++)
        rgb[j] = d->batch > 1 ? d->batch_rgb + (size_t)j * px * 3 : last;
    const size_t dpx = row_px(d, u);
    pl_dl_slot *sl;
    dm_status st = pl_dl_next(&d->dl, &sl);
    if (st) return st;
    double t1 = pl_now();
    st = da2_infer_u8_batch_async(d->dc, rgb, d->nb, sl->host, model_size, &sl->ticket);
    d->base.env.stats->inference_s += pl_now() - t1;
    /* the rows of the batch before are written while this one computes; then this batch's
     * counts, downloaded on their own, are waited for */
    int64_t bad[1024];
    if (!st) st = pl_dl_flush(&d->dl, &d->base, u, rows);
    for (int j = 0; j < d->nb && !st; j++) st = da2_ctx_nonfinite(d->dc, j, &bad[j]);
    if (st) return st;
    /* a check that reads (or a recompute that overwrites) the values waits for them */
    int now = pl_verify_wanted(&d->base.env, d->verified);
    for (int j = 0; j < d->nb; j++) now |= bad[j] != 0;
    if (now && (st = pl_dl_ready(&d->dl, sl))) return st;
    for (int j = 0; j < d->nb; j++) {
        float *x = sl->host + (size_t)j * dpx;
        const int64_t t = d->done + j;
        if ((st = check(d, u, u->begin + t, rgb[j], x, dpx, bad[j]))) return st;
    }
    sl->row = d->done, sl->count = d->nb;
    d->done += d->nb;
    d->nb = 0;
    /* pending from now on: its rows are written at the next batch or at pop */
    return pl_dl_commit(&d->dl, &d->base, u, rows);
}

static dm_status da2_push(pl_stage *s, const pl_unit *u, const pl_stage_frame *f, pl_rows *rows) {
    da2_stage *d = (da2_stage *)s;
    const size_t px = (size_t)u->info->width * u->info->height;
    if (f->index != u->begin + d->done + d->nb)
        return dm_error_set(DM_ERR_ARG, "%s: DA-V2 got frame %lld, expected %lld", u->info->path,
                            (long long)f->index, (long long)(u->begin + d->done + d->nb));
    if (d->batch > 1) /* the decoded frame is reused: keep a copy for the batch */
        memcpy(d->batch_rgb + (size_t)d->nb * px * 3, f->rgb, px * 3);
    d->nb++;
    if (d->nb == d->batch || f->index + 1 == u->end) return run_batch(d, u, f->rgb, rows);
    return DM_OK;
}

static dm_status da2_pop(pl_stage *s, const pl_unit *u, int flush, pl_rows *rows, int64_t *done) {
    da2_stage *d = (da2_stage *)s;
    dm_status st = DM_OK;
    /* B == 1 never leaves a frame waiting; B > 1 keeps copies of the waiting frames */
    if (flush && d->nb > 0) st = run_batch(d, u, NULL, rows);
    /* the rows are needed now (the write): the last batch's download is waited for here */
    if (!st) st = pl_dl_flush(&d->dl, s, u, rows);
    *done = st ? 0 : d->done;
    return st;
}

static void da2_free(pl_stage *s) {
    da2_stage *d = (da2_stage *)s;
    pl_dl_free(&d->dl); /* first: no download may still be landing */
    da2_ctx_free(d->dc);
    da2_model_free(d->da2);
    da2_ctx_free(d->ref_dc);
    da2_model_free(d->ref_da2);
    if (d->ref_be) dm_backend_destroy(d->ref_be);
    free(d->ref_out), free(d->batch_rgb);
    free(d);
}

static const pl_stage_ops da2_ops = {
    .name = "DA-V2",
    .windowed = 0,
    .want = da2_want,
    .begin = da2_begin,
    .push = da2_push,
    .pop = da2_pop,
    .free = da2_free,
};

dm_status pl_stage_da2_create(pl_stage **out, const pl_stage_env *env) {
    *out = NULL;
    da2_stage *d = calloc(1, sizeof *d);
    if (!d) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    d->base.ops = &da2_ops;
    d->base.env = *env;
    *out = &d->base;
    const dm_job *job = &env->c->job;
    dm_status st = da2_model_load(&d->da2, job->depth.weights, env->be);
    if (st) return st;
    d->batch = job->runtime.batch_size > 0 ? job->runtime.batch_size : 1;
    if (d->batch > 1024) d->batch = 1024;
    /* Depth rows at model size (da2_input_size, multiples of 14) may exceed the source's. */
    size_t dpx = env->max_px;
    if (job->depth.output_size == DM_DEPTH_SIZE_MODEL) {
        const pl_ctx *c = env->c;
        for (int i = 0; i < c->n_inputs; i++) {
            int mh, mw;
            if (!c->inputs[i].ok) continue;
            da2_input_size(c->inputs[i].info.height, c->inputs[i].info.width, job->depth.input_size,
                           &mh, &mw);
            if ((size_t)mh * mw > dpx) dpx = (size_t)mh * mw;
        }
    }
    /* device->host copies of the depth land here: pinned on CUDA (backend_host.h), two
     * batches (pl_dl: one downloads while the other's rows are written) */
    if ((st = pl_dl_init(&d->dl, env->be, 2, (size_t)d->batch * dpx, da2_rows))) return st;
    if (d->batch > 1 && !(d->batch_rgb = malloc((size_t)d->batch * env->max_px * 3)))
        return dm_error_set(DM_ERR_NOMEM, "out of memory for %d batched frames (%zu pixels)",
                            d->batch, env->max_px);
    return DM_OK;
}
