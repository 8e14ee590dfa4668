/* Video Depth Anything Small: loader, per-size context, window forward
 * (VideoDepthAnything.forward + the resize of infer_video_depth); see include/depthmatte/vda.h.
 * The encoder (models/dinov2.h) runs the 32 frames of a window as one batch, as the official
 * x.flatten(0, 1) does; the head is models/dpt_temporal.h. One buffer plan (models/buf_plan.h)
 * holds the activations of both: the encoder's working buffers are dead once its taps are
 * taken, so the head and the motion modules reuse that memory (phase 0 the encoder, 1.. the
 * head's stages, then the resize to the source size). The window input itself lives across
 * windows (slots are carried over) and is allocated outside the plan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/copy_async.h"
#include "depthmatte/da2.h"
#include "depthmatte/safetensors.h"
#include "models/buf_plan.h"
#include "models/dinov2.h"
#include "models/dpt_temporal.h"
#include "models/vda_internal.h"

/* Buffer-plan phases of one window: the encoder, then the head's stages (DPTT_PH_*). */
#define VDA_PH_ENC 0
#define VDA_PH_HEAD 1
#define VDA_PH_END (VDA_PH_HEAD + DPTT_PH_END) /* resize to the source size, taps */

struct vda_model {
    dinov2_weights enc;
    dptt_weights head;
    int metric;
};

struct vda_ctx {
    const vda_model *m;
    dm_backend *be;
    int src_h, src_w, h, w;
    dinov2_ctx enc;
    dptt_ctx head;
    dm_tensor input;     /* (32, 3, h, w) window input on the backend (image_cubic_normalize) */
    dm_tensor rgb_dev;   /* (1, src_h, src_w, 3) u8 frame uploaded to a device backend */
    dm_tensor mm0_in;    /* (32, 192, ph, pw) tap; allocated (outside the plan) and filled only
                          * after vda_ctx_keep_taps: 34 MB and one copy per window at 518 */
    dm_tensor raw_dev;   /* (32, 1, src_h, src_w) resized depth on a device backend */
    buf_plan plan;       /* the memory of every planned activation above and in enc/head */
    /* (32, src_h, src_w, 3) host copy of the window's u8 frames on a device backend (NULL on
     * the CPU): the CPU reference recomputes a window from these frames (vda_ctx_copy_input),
     * i.e. from its own float32 preprocessing, not from the device's rounded input */
    uint8_t *rgb_win;
    dm_async_counts counts; /* NaN/Inf in the depth of the last vda_window_run (on the backend) */
};

/* infer_video_depth's transform: float32 image, cv2.resize on it, ImageNet normalisation with
 * float64 mean / std. */
const dm_image_norm_params vda_norm_params = {DM_CUBIC_F32,
                                             {0.485, 0.456, 0.406},
                                             {0.229, 0.224, 0.225}};

dm_status vda_model_load(vda_model **out, const char *path, dm_backend *be, int metric) {
    *out = NULL;
    dm_st_file f;
    dm_status st = dm_st_open(&f, path);
    if (st) return st;
    st = vda_model_load_st(out, &f, be, metric);
    dm_st_close(&f);
    return st;
}

dm_status vda_model_load_st(vda_model **out, dm_st_file *f, dm_backend *be, int metric) {
    *out = NULL;
    vda_model *m = calloc(1, sizeof *m);
    if (!m) return dm_error_set(DM_ERR_NOMEM, "vda: out of memory");
    m->metric = metric != 0;
    dm_status st;
    da2_wsrc src;
    da2_wsrc_init(&src, f);
    src.hf = 0; /* no transformers port of VDA exists: official names only */
    static const char *const ignore[] = {"pretrained.mask_token", NULL};
    if ((st = dinov2_load(&m->enc, &src, "pretrained."))) goto fail;
    if ((st = dptt_load(&m->head, &src, "head."))) {
        dinov2_free(&m->enc);
        goto fail;
    }
    /* loaded on the host, then moved once onto the backend in its storage dtype */
    if ((st = dm_st_check_all_used(f, ignore)) ||
        (st = dinov2_upload(&m->enc, be)) ||
        (st = dptt_upload(&m->head, be))) {
        vda_model_free(m);
        return st;
    }
    *out = m;
    return DM_OK;
fail:
    free(m);
    return st;
}

void vda_model_free(vda_model *m) {
    if (!m) return;
    dinov2_free(&m->enc);
    dptt_free(&m->head);
    free(m);
}

int vda_required_ops(dm_op_id *ops) {
    int n = da2_required_ops(ops); /* the same encoder and head, plus the motion modules' */
    ops[n++] = DM_OP_GROUPNORM;
    return n;
}

int vda_model_is_metric(const vda_model *m) {
    return m->metric;
}

void vda_input_size(int src_h, int src_w, int input_size, int *h, int *w) {
    const int mx = src_h > src_w ? src_h : src_w, mn = src_h > src_w ? src_w : src_h;
    const double ratio = (double)mx / mn;
    if (ratio > 1.78) { /* official: int(input_size * 1.777 / ratio), round to 14 (half even) */
        int s = (int)(input_size * 1.777 / ratio);
        input_size = (int)nearbyint(s / 14.0) * 14;
    }
    da2_input_size(src_h, src_w, input_size, h, w);
}

void vda_ctx_free(vda_ctx *c) {
    if (!c) return;
    dinov2_ctx_free(&c->enc);
    dptt_ctx_free(&c->head);
    dm_tensor_free(&c->input);
    dm_tensor_free(&c->rgb_dev);
    dm_tensor_free(&c->mm0_in);
    dm_tensor_free(&c->raw_dev);
    free(c->rgb_win);
    dm_async_counts_free(&c->counts, c->be);
    bp_free(&c->plan); /* after the views above are gone */
    free(c);
}

dm_status vda_ctx_init(vda_ctx **out, const vda_model *m, dm_backend *be, int src_h, int src_w,
                       int input_size) {
    *out = NULL;
    if (src_h < 14 || src_w < 14)
        return dm_error_set(DM_ERR_ARG, "vda: frame %dx%d is smaller than one 14x14 patch",
                            src_w, src_h);
    if (input_size < 14 || input_size > 4096)
        return dm_error_set(DM_ERR_ARG, "vda: input_size %d outside 14..4096", input_size);
    vda_ctx *c = calloc(1, sizeof *c);
    if (!c) return dm_error_set(DM_ERR_NOMEM, "vda: out of memory");
    c->m = m, c->be = be, c->src_h = src_h, c->src_w = src_w;
    vda_input_size(src_h, src_w, input_size, &c->h, &c->w);
    const int T = VDA_WINDOW, ph = c->h / VIT_PATCH, pw = c->w / VIT_PATCH;
    const int64_t s_in[] = {T, 3, c->h, c->w}, s_raw[] = {T, 1, src_h, src_w},
                  s_rgb[] = {1, src_h, src_w, 3};
    bp_init(&c->plan);
    /* feat[i] feeds the head's reassemble stage i */
    const int feat_last[VIT_NTAPS] = {VDA_PH_HEAD + DPTT_PH_REASSEMBLE,
                                      VDA_PH_HEAD + DPTT_PH_REASSEMBLE + 1,
                                      VDA_PH_HEAD + DPTT_PH_REASSEMBLE + 2,
                                      VDA_PH_HEAD + DPTT_PH_REASSEMBLE + 3};
    dm_status st;
    if ((st = dinov2_ctx_init_plan(&c->enc, &m->enc, be, T, c->h, c->w, &c->plan, VDA_PH_ENC,
                                   feat_last)) ||
        (st = dptt_ctx_init_plan(&c->head, &m->head, be, T, ph, pw, &c->plan, VDA_PH_HEAD)) ||
        (st = dm_alloc(be, &c->input, dm_backend_storage_dtype(be), 4, s_in)) ||
        (st = dm_async_counts_init(&c->counts, be, 1)))
        goto fail;
    if (be->device != DM_DEVICE_CPU &&
        ((st = dm_alloc(be, &c->rgb_dev, DM_DTYPE_U8, 4, s_rgb)) ||
         (st = bp_alloc(&c->plan, be, &c->raw_dev, 4, s_raw, VDA_PH_END, VDA_PH_END))))
        goto fail;
    if ((st = bp_commit(&c->plan, be))) goto fail;
    if (be->device != DM_DEVICE_CPU &&
        !(c->rgb_win = malloc((size_t)VDA_WINDOW * 3 * src_h * src_w))) {
        st = dm_error_set(DM_ERR_NOMEM, "vda: no memory for the window's frames");
        goto fail;
    }
    *out = c;
    return DM_OK;
fail:
    vda_ctx_free(c);
    return st;
}

void vda_ctx_input_dims(const vda_ctx *c, int *h, int *w) {
    *h = c->h;
    *w = c->w;
}

dm_status vda_preprocess_u8(vda_ctx *c, const uint8_t *rgb, int slot) {
    if (slot < 0 || slot >= VDA_WINDOW)
        return dm_error_set(DM_ERR_ARG, "vda: window slot %d outside 0..%d", slot,
                            VDA_WINDOW - 1);
    const int64_t s_slot[] = {1, 3, c->h, c->w}, s_rgb[] = {1, c->src_h, c->src_w, 3};
    dm_tensor out = dm_tensor_sub(&c->input, (int64_t)slot * 3 * c->h * c->w, 4, s_slot), frame;
    dm_tensor_view(&frame, (void *)rgb, DM_DTYPE_U8, 4, s_rgb);
    if (c->be->device == DM_DEVICE_CPU) return dm_image_cubic_normalize(c->be, &frame, &vda_norm_params, &out);
    /* a device backend: only the u8 frame travels (kept on the host for the CPU reference) */
    const size_t fb = (size_t)3 * c->src_h * c->src_w;
    memcpy(c->rgb_win + (size_t)slot * fb, rgb, fb);
    dm_status st = dm_copy(c->be, &frame, &c->rgb_dev);
    if (st) return st;
    return dm_image_cubic_normalize(c->be, &c->rgb_dev, &vda_norm_params, &out);
}

int vda_window_count(int64_t frames) {
    return frames <= 0 ? 0 : (int)((frames + VDA_STRIDE - 1) / VDA_STRIDE);
}

void vda_window_frames(int k, int64_t frames, int64_t idx[VDA_WINDOW]) {
    const int64_t start = (int64_t)k * VDA_STRIDE;
    for (int s = 0; s < VDA_WINDOW; s++) idx[s] = start + s;
    if (k > 0) { /* KEYFRAMES [0, 12, 24..31] of the previous window's inputs */
        idx[0] = 0;
        idx[1] = start - VDA_STRIDE + 12;
    }
    for (int s = 0; s < VDA_WINDOW; s++)
        if (idx[s] > frames - 1) idx[s] = frames - 1;
}

dm_status vda_window_run(vda_ctx *c, float *raw) {
    dm_copy_ticket t;
    dm_status st = vda_window_run_async(c, raw, &t);
    return st ? st : dm_copy_wait(c->be, &t);
}

dm_status vda_window_run_async(vda_ctx *c, float *raw, dm_copy_ticket *ticket) {
    dm_status st;
    memset(ticket, 0, sizeof *ticket);
    if ((st = dinov2_forward(&c->enc, &c->m->enc, c->be, &c->input))) return st;
    const dm_tensor *feats[4] = {&c->enc.feat[0], &c->enc.feat[1], &c->enc.feat[2],
                                 &c->enc.feat[3]};
    if ((st = dptt_forward(&c->head, &c->m->head, c->be, feats,
                           c->mm0_in.data ? &c->mm0_in : NULL)))
        return st;
    /* forward(): interpolate to the input size (identity: the head already outputs 14ph x
     * 14pw) and ReLU (no-op: output_conv2 ends in ReLU). infer_video_depth then resizes to
     * the source size, bilinear, align_corners True. */
    const int64_t s_raw[] = {VDA_WINDOW, 1, c->src_h, c->src_w};
    dm_tensor host;
    dm_tensor_view(&host, raw, DM_DTYPE_F32, 4, s_raw);
    if (c->be->device == DM_DEVICE_CPU) {
        st = dm_resize(c->be, &c->head.dpt.out, DM_RESIZE_BILINEAR, 1, 0, 0, &host);
        if (!st) st = dm_count_nonfinite(c->be, &host, &c->counts.dev, 0);
        return st ? st : dm_async_counts_start(&c->counts, c->be, 1);
    }
    /* counted on the device (the non-finite guard), then both downloads queued */
    if ((st = dm_resize(c->be, &c->head.dpt.out, DM_RESIZE_BILINEAR, 1, 0, 0, &c->raw_dev)) ||
        (st = dm_count_nonfinite(c->be, &c->raw_dev, &c->counts.dev, 0)) ||
        (st = dm_async_counts_start(&c->counts, c->be, 1)))
        return st;
    return dm_copy_async(c->be, &c->raw_dev, &host, ticket);
}

dm_status vda_ctx_nonfinite(vda_ctx *c, int64_t *count) {
    dm_status st = dm_async_counts_wait(&c->counts, c->be);
    *count = st ? 0 : c->counts.host[0];
    return st;
}

dm_status vda_window_depth(vda_ctx *c, const uint8_t *const rgb[VDA_WINDOW], float *raw) {
    dm_status st;
    for (int s = 0; s < VDA_WINDOW; s++)
        if ((st = vda_preprocess_u8(c, rgb[s], s))) return st;
    return vda_window_run(c, raw);
}

/* Copies `count` window slots from slot `src` to slot `dst` on the backend (the ranges must
 * not overlap). */
static dm_status copy_slots(vda_ctx *c, int src, int dst, int count) {
    const int64_t fs = (int64_t)3 * c->h * c->w, s[] = {count, 3, c->h, c->w};
    if (c->rgb_win) {
        const size_t fb = (size_t)3 * c->src_h * c->src_w;
        memcpy(c->rgb_win + dst * fb, c->rgb_win + src * fb, count * fb);
    }
    dm_tensor from = dm_tensor_sub(&c->input, src * fs, 4, s);
    dm_tensor to = dm_tensor_sub(&c->input, dst * fs, 4, s);
    return dm_copy(c->be, &from, &to);
}

dm_status vda_window_shift(vda_ctx *c) {
    dm_status st = copy_slots(c, 12, 1, 1);
    return st ? st : copy_slots(c, 24, 2, 8);
}

void vda_ctx_source_dims(const vda_ctx *c, int *h, int *w) {
    *h = c->src_h;
    *w = c->src_w;
}

int vda_ctx_metric(const vda_ctx *c) {
    return c->m->metric;
}

dm_status vda_window_copy_slot(vda_ctx *c, int src, int dst) {
    return src == dst ? DM_OK : copy_slots(c, src, dst, 1);
}

dm_status vda_ctx_copy_input(vda_ctx *dst, const vda_ctx *src) {
    if (dst->h != src->h || dst->w != src->w || dst->src_h != src->src_h ||
        dst->src_w != src->src_w)
        return dm_error_set(DM_ERR_SHAPE, "vda: window inputs of %dx%d and %dx%d contexts",
                            dst->w, dst->h, src->w, src->h);
    if (src->rgb_win) { /* a device window: preprocess its frames again on dst's backend */
        const size_t fb = (size_t)3 * src->src_h * src->src_w;
        for (int s = 0; s < VDA_WINDOW; s++) {
            dm_status st = vda_preprocess_u8(dst, src->rgb_win + s * fb, s);
            if (st) return st;
        }
        return dm_synchronize(dst->be);
    }
    /* the backend holding device memory does the copy (a download for a CPU reference) */
    dm_backend *be = src->be->device != DM_DEVICE_CPU ? src->be : dst->be;
    dm_status st = dm_copy(be, &src->input, &dst->input);
    return st ? st : dm_synchronize(be);
}

dm_status vda_ctx_keep_taps(vda_ctx *c) {
    if (c->mm0_in.data) return DM_OK;
    const int64_t s_mm[] = {VDA_WINDOW, c->m->head.mm[0].channels, c->h / VIT_PATCH,
                            c->w / VIT_PATCH};
    return dm_alloc(c->be, &c->mm0_in, dm_backend_storage_dtype(c->be), 4, s_mm);
}

void vda_ctx_taps(const vda_ctx *c, vda_taps *t) {
    t->input = &c->input;
    t->mm_in0 = c->mm0_in.data ? &c->mm0_in : NULL;
    t->mm_out[0] = &c->head.dpt.layer[2];
    t->mm_out[1] = &c->head.dpt.layer[3];
    t->mm_out[2] = &c->head.dpt.path[3];
    t->mm_out[3] = &c->head.dpt.path[2];
    t->head = &c->head.dpt.out;
}

const dinov2_weights *vda_model_encoder(const vda_model *m) {
    return &m->enc;
}

const dptt_weights *vda_model_head(const vda_model *m) {
    return &m->head;
}
