/* Depth Anything V2 Small: loader, per-size context, preprocessing (image2tensor), forward
 * (DepthAnythingV2.forward) and infer_image (see include/depthmatte/da2.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/copy_async.h"
#include "depthmatte/da2.h"
#include "depthmatte/graph.h"
#include "depthmatte/safetensors.h"
#include "models/da2_weights.h"
#include "models/dinov2.h"
#include "models/dpt.h"

struct da2_model {
    dinov2_weights enc;
    dpt_weights head;
};

struct da2_ctx {
    const da2_model *m;
    dm_backend *be;
    int src_h, src_w, h, w;
    int batch;             /* frames per forward (B) */
    dinov2_ctx enc;
    dpt_ctx head;
    dm_tensor input;       /* (B, 3, h, w) network input on the backend (image_cubic_normalize) */
    dm_tensor rgb_dev;     /* (B, src_h, src_w, 3) u8 frames uploaded to a device backend */
    dm_tensor depth_dev;   /* (B, 1, src_h, src_w) resized depth (device; on the CPU when B > 1) */
    /* Graph of the fixed-shape forward (normalise all B slots, encoder, head, and the resize
     * to the source size unless the model size is wanted: the runner's key) on a backend with
     * graphs (CUDA, emulated); `graphed`: this context takes that path (u8 uploads first) */
    int graphed;
    int graph_resize; /* the body's variant of this call (the runner's key) */
    dm_graph_runner graph;
    dm_async_counts counts;  /* NaN/Inf count per frame of the last forward (on the backend) */
};

/* image2tensor's normalisation (ImageNet mean / std) with the double arithmetic of its
 * cv2.resize on a float64 image. */
static const dm_image_norm_params k_norm = {DM_CUBIC_F64,
                                            {0.485, 0.456, 0.406},
                                            {0.229, 0.224, 0.225}};

dm_status da2_model_load(da2_model **out, const char *path, dm_backend *be) {
    *out = NULL;
    dm_st_file f;
    dm_status st = dm_st_open(&f, path);
    if (st) return st;
    st = da2_model_load_st(out, &f, be);
    dm_st_close(&f);
    return st;
}

dm_status da2_model_load_st(da2_model **out, dm_st_file *f, dm_backend *be) {
    *out = NULL;
    da2_model *m = calloc(1, sizeof *m);
    if (!m) return dm_error_set(DM_ERR_NOMEM, "da2: out of memory");
    dm_status st;
    da2_wsrc src;
    da2_wsrc_init(&src, f);
    static const char *const ignore[] = {"pretrained.mask_token", "backbone.embeddings.mask_token",
                                         NULL};
    if ((st = dinov2_load(&m->enc, &src, "pretrained."))) goto fail;
    if ((st = dpt_load(&m->head, &src, "depth_head."))) {
        dinov2_free(&m->enc);
        goto fail;
    }
    /* loaded on the host, then moved once onto the backend in its storage dtype */
    if ((st = dm_st_check_all_used(f, ignore)) ||
        (st = dinov2_upload(&m->enc, be)) ||
        (st = dpt_each(&m->head, model_tensor_upload, be))) {
        da2_model_free(m);
        return st;
    }
    *out = m;
    return DM_OK;
fail:
    free(m);
    return st;
}

void da2_model_free(da2_model *m) {
    if (!m) return;
    dinov2_free(&m->enc);
    dpt_free(&m->head);
    free(m);
}

int da2_required_ops(dm_op_id *ops) {
    static const dm_op_id used[] = {DM_OP_CONV2D,    DM_OP_CONV_TRANSPOSE2D, DM_OP_LINEAR,
                                    DM_OP_LAYERNORM, DM_OP_ACTIVATION,      DM_OP_BINARY,
                                    DM_OP_ATTENTION, DM_OP_RESIZE,          DM_OP_PERMUTE,
                                    DM_OP_COPY,      DM_OP_ALLOC,           DM_OP_ATTENTION_QKV,
                                    DM_OP_IMAGE_CUBIC_NORMALIZE};
    memcpy(ops, used, sizeof used);
    return (int)(sizeof used / sizeof used[0]);
}

/* Resize.constrain_to_multiple_of(x, min_val) with multiple 14: np.round is half to even. */
static int constrain14(double x, int min_val) {
    int y = (int)(nearbyint(x / 14.0) * 14.0);
    if (y < min_val) y = (int)(ceil(x / 14.0) * 14.0);
    return y;
}

void da2_input_size(int src_h, int src_w, int input_size, int *h, int *w) {
    double sh = (double)input_size / src_h, sw = (double)input_size / src_w;
    if (sw > sh) /* lower_bound: the larger scale wins so both sides reach input_size */
        sh = sw;
    else
        sw = sh;
    *h = constrain14(sh * src_h, input_size);
    *w = constrain14(sw * src_w, input_size);
}

void da2_ctx_free(da2_ctx *c) {
    if (!c) return;
    dinov2_ctx_free(&c->enc);
    dpt_ctx_free(&c->head);
    dm_tensor_free(&c->input);
    dm_tensor_free(&c->rgb_dev);
    dm_tensor_free(&c->depth_dev);
    dm_async_counts_free(&c->counts, c->be);
    dm_graph_runner_free(&c->graph);
    free(c);
}

dm_status da2_ctx_init(da2_ctx **out, const da2_model *m, dm_backend *be, int src_h, int src_w,
                       int input_size) {
    return da2_ctx_init_batch(out, m, be, src_h, src_w, input_size, 1);
}

dm_status da2_ctx_init_batch(da2_ctx **out, const da2_model *m, dm_backend *be, int src_h,
                             int src_w, int input_size, int batch) {
    *out = NULL;
    if (batch < 1 || batch > 1024)
        return dm_error_set(DM_ERR_ARG, "da2: batch %d outside 1..1024", batch);
    if (src_h < 14 || src_w < 14)
        return dm_error_set(DM_ERR_ARG, "da2: image %dx%d is smaller than one 14x14 patch",
                            src_w, src_h);
    if (input_size < 14 || input_size > 4096)
        return dm_error_set(DM_ERR_ARG, "da2: input_size %d outside 14..4096", input_size);
    da2_ctx *c = calloc(1, sizeof *c);
    if (!c) return dm_error_set(DM_ERR_NOMEM, "da2: out of memory");
    c->m = m, c->be = be, c->src_h = src_h, c->src_w = src_w, c->batch = batch;
    da2_input_size(src_h, src_w, input_size, &c->h, &c->w);
    dm_graph_runner_init(&c->graph, be, 1); /* DM_CUDA_GRAPHS=0: off (docs/gpu.md) */
    c->graphed = be->device != DM_DEVICE_CPU && c->graph.enabled;
    const int64_t s_in[] = {batch, 3, c->h, c->w};
    dm_status st;
    if ((st = dinov2_ctx_init(&c->enc, &m->enc, be, batch, c->h, c->w)) ||
        (st = dpt_ctx_init(&c->head, &m->head, be, batch, c->h / VIT_PATCH, c->w / VIT_PATCH)) ||
        (st = dm_alloc(be, &c->input, dm_backend_storage_dtype(be), 4, s_in)) ||
        (st = dm_async_counts_init(&c->counts, be, batch)))
        goto fail;
    const int64_t s_depth[] = {batch, 1, src_h, src_w}, s_rgb[] = {batch, src_h, src_w, 3};
    if (be->device != DM_DEVICE_CPU &&
        (st = dm_alloc(be, &c->rgb_dev, DM_DTYPE_U8, 4, s_rgb)))
        goto fail;
    if ((be->device != DM_DEVICE_CPU || batch > 1) &&
        (st = dm_alloc(be, &c->depth_dev, dm_backend_storage_dtype(be), 4, s_depth)))
        goto fail;
    *out = c;
    return DM_OK;
fail:
    da2_ctx_free(c);
    return st;
}

void da2_ctx_input_dims(const da2_ctx *c, int *h, int *w) {
    *h = c->h;
    *w = c->w;
}

/* Runs image_cubic_normalize on frames rgb[0..n) into input slots 0..n-1: on the CPU straight
 * from the caller's buffers, on a device backend after uploading the u8 frames (the only
 * host->device traffic of a forward). */
static dm_status preprocess_frames(da2_ctx *c, const uint8_t *const *rgb, int n) {
    const int64_t s_in[] = {n, 3, c->h, c->w}, s_one[] = {1, c->src_h, c->src_w, 3},
                  s_slot[] = {1, 3, c->h, c->w};
    const int64_t per = 3 * (int64_t)c->src_h * c->src_w, per_in = 3 * (int64_t)c->h * c->w;
    dm_tensor in = dm_tensor_sub(&c->input, 0, 4, s_in);
    dm_status st;
    if (c->be->device == DM_DEVICE_CPU) {
        for (int i = 0; i < n; i++) {
            dm_tensor frame, slot = dm_tensor_sub(&c->input, i * per_in, 4, s_slot);
            dm_tensor_view(&frame, (void *)rgb[i], DM_DTYPE_U8, 4, s_one);
            if ((st = dm_image_cubic_normalize(c->be, &frame, &k_norm, &slot))) return st;
        }
        return DM_OK;
    }
    for (int i = 0; i < n; i++) {
        dm_tensor frame, slot = dm_tensor_sub(&c->rgb_dev, i * per, 4, s_one);
        dm_tensor_view(&frame, (void *)rgb[i], DM_DTYPE_U8, 4, s_one);
        if ((st = dm_copy(c->be, &frame, &slot))) return st;
    }
    const int64_t s_rgb[] = {n, c->src_h, c->src_w, 3};
    dm_tensor frames = dm_tensor_sub(&c->rgb_dev, 0, 4, s_rgb);
    return dm_image_cubic_normalize(c->be, &frames, &k_norm, &in);
}

dm_status da2_preprocess_u8(da2_ctx *c, const uint8_t *rgb, dm_tensor *input) {
    if (input->dtype != DM_DTYPE_F32 || input->device != DM_DEVICE_CPU ||
        dm_tensor_numel(input) != 3 * (int64_t)c->h * c->w)
        return dm_error_set(DM_ERR_SHAPE, "da2: preprocess output must be a CPU f32 "
                            "(1, 3, %d, %d)", c->h, c->w);
    dm_status st = preprocess_frames(c, &rgb, 1);
    if (st) return st;
    const int64_t s_one[] = {1, 3, c->h, c->w};
    dm_tensor slot = dm_tensor_sub(&c->input, 0, 4, s_one);
    if ((st = dm_copy(c->be, &slot, input))) return st;
    return dm_synchronize(c->be);
}

dm_status da2_forward(da2_ctx *c, const dm_tensor *input, dm_tensor *depth_head_out) {
    dm_status st;
    if (input->device != c->be->device) { /* a host input on a device backend: upload it */
        if (dm_tensor_numel(input) != dm_tensor_numel(&c->input))
            return dm_error_set(DM_ERR_SHAPE, "da2_forward: input must be (%d, 3, %d, %d)",
                                c->batch, c->h, c->w);
        if ((st = dm_copy(c->be, input, &c->input))) return st;
        input = &c->input;
    }
    st = dinov2_forward(&c->enc, &c->m->enc, c->be, input);
    if (st) return st;
    const dm_tensor *feats[4] = {&c->enc.feat[0], &c->enc.feat[1], &c->enc.feat[2],
                                 &c->enc.feat[3]};
    if ((st = dpt_forward(&c->head, &c->m->head, c->be, feats))) return st;
    /* DepthAnythingV2.forward applies F.relu again: the head already ends in ReLU */
    if (depth_head_out && depth_head_out != &c->head.out)
        return dm_copy(c->be, &c->head.out, depth_head_out);
    return DM_OK;
}

dm_status da2_infer_u8(da2_ctx *c, const uint8_t *rgb, float *depth) {
    return da2_infer_u8_batch(c, &rgb, 1, depth, 0);
}

int da2_ctx_batch(const da2_ctx *c) {
    return c->batch;
}

/* The fixed-shape part of a device forward: all B slots normalised from rgb_dev (slots past
 * the frames of a partial batch hold older frames: they only cost time), encoder, head, and
 * the resize of all B to the source size when wanted. Captured once, replayed per batch. */
static dm_status graph_body(void *arg) {
    da2_ctx *c = arg;
    const int64_t s_rgb[] = {c->batch, c->src_h, c->src_w, 3};
    dm_tensor frames = dm_tensor_sub(&c->rgb_dev, 0, 4, s_rgb);
    dm_status st = dm_image_cubic_normalize(c->be, &frames, &k_norm, &c->input);
    if (!st) st = da2_forward(c, &c->input, NULL);
    if (!st && c->graph_resize)
        st = dm_resize(c->be, &c->head.out, DM_RESIZE_BILINEAR, 1, 0, 0, &c->depth_dev);
    return st;
}

/* ViT-S at batch 1 is launch-bound (~15 kernels per block): on a backend with graphs the u8
 * frames are uploaded (outside the graph), then the forward runs through the graph runner:
 * eager on the first batch (scratch buffers, cuDNN algorithms and cuBLASLt plans come into
 * being), captured on the second, replayed from then on; a capture that fails leaves all later
 * batches eager, with the same results. Elsewhere preprocessing and forward run eagerly. */
static dm_status forward_frames(da2_ctx *c, const uint8_t *const *rgb, int n, int resize) {
    if (n < 1 || n > c->batch)
        return dm_error_set(DM_ERR_ARG, "da2: %d frames for a batch of %d", n, c->batch);
    dm_status st;
    if (c->graphed) {
        const int64_t s_one[] = {1, c->src_h, c->src_w, 3};
        const int64_t per = 3 * (int64_t)c->src_h * c->src_w;
        for (int i = 0; i < n; i++) {
            dm_tensor frame, slot = dm_tensor_sub(&c->rgb_dev, i * per, 4, s_one);
            dm_tensor_view(&frame, (void *)rgb[i], DM_DTYPE_U8, 4, s_one);
            if ((st = dm_copy(c->be, &frame, &slot))) return st;
        }
        c->graph_resize = resize;
        return dm_graph_runner_run(&c->graph, (uint64_t)resize, graph_body, c);
    }
    if ((st = preprocess_frames(c, rgb, n))) return st;
    if ((st = da2_forward(c, &c->input, NULL))) return st;
    if (resize) st = dm_resize(c->be, &c->head.out, DM_RESIZE_BILINEAR, 1, 0, 0, &c->depth_dev);
    return st;
}

/* Counts each of the first n frames of t (n, ...) where t lives (dm_count_nonfinite, one
 * count per frame) and queues the download of the n counts (dm_async_counts). */
static dm_status count_frames(da2_ctx *c, const dm_tensor *t, int n) {
    const int64_t k = n;
    dm_tensor counts = dm_tensor_sub(&c->counts.dev, 0, 1, &k);
    dm_status st = dm_count_nonfinite(c->be, t, &counts, 0);
    return st ? st : dm_async_counts_start(&c->counts, c->be, n);
}

dm_status da2_infer_u8_batch(da2_ctx *c, const uint8_t *const *rgb, int n, float *depth,
                             int model_size) {
    dm_copy_ticket t;
    dm_status st = da2_infer_u8_batch_async(c, rgb, n, depth, model_size, &t);
    return st ? st : dm_copy_wait(c->be, &t);
}

dm_status da2_infer_u8_batch_async(da2_ctx *c, const uint8_t *const *rgb, int n, float *depth,
                                   int model_size, dm_copy_ticket *ticket) {
    memset(ticket, 0, sizeof *ticket);
    const int64_t s_out[] = {n, 1, model_size ? c->h : c->src_h, model_size ? c->w : c->src_w};
    dm_tensor out;
    dm_tensor_view(&out, depth, DM_DTYPE_F32, 4, s_out);
    /* the CPU resizes a full batch straight into the caller's buffer; otherwise all B are
     * resized on the backend (into depth_dev) and the first n frames downloaded (queued) */
    const int direct = c->be->device == DM_DEVICE_CPU && c->batch == n;
    dm_status st = forward_frames(c, rgb, n, !model_size && !direct);
    if (st) return st;
    if (model_size) { /* the head output itself, first n frames, one download */
        dm_tensor head = dm_tensor_sub(&c->head.out, 0, 4, s_out);
        if ((st = count_frames(c, &head, n))) return st;
        return dm_copy_async(c->be, &head, &out, ticket);
    }
    if (direct) {
        st = dm_resize(c->be, &c->head.out, DM_RESIZE_BILINEAR, 1, 0, 0, &out);
        return st ? st : count_frames(c, &out, n);
    }
    dm_tensor first = dm_tensor_sub(&c->depth_dev, 0, 4, s_out);
    if ((st = count_frames(c, &first, n))) return st;
    return dm_copy_async(c->be, &first, &out, ticket);
}

dm_status da2_ctx_nonfinite(da2_ctx *c, int i, int64_t *count) {
    *count = 0;
    dm_status st = dm_async_counts_wait(&c->counts, c->be);
    if (!st && i >= 0 && i < c->counts.n) *count = c->counts.host[i];
    return st;
}

void da2_ctx_taps(const da2_ctx *c, da2_taps *t) {
    t->input = &c->input;
    t->tokens_embed = &c->enc.embed;
    for (int i = 0; i < 4; i++) {
        t->feat[i] = &c->enc.feat[i];
        t->feat_cls[i] = &c->enc.feat_cls[i];
    }
    t->depth_head = &c->head.out;
}
