/* Depth Anything V2 Small: loader, per-size context, preprocessing (image2tensor), forward
 * (DepthAnythingV2.forward) and infer_image (see include/depthmatte/da2.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/da2.h"
#include "depthmatte/safetensors.h"
#include "models/da2_preprocess.h"
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
    dinov2_ctx enc;
    dpt_ctx head;
    dm_tensor input;       /* (1, 3, h, w) host: the preprocessing runs in double on the CPU */
    dm_tensor input_dev;   /* (1, 3, h, w) on a device backend (unused on the CPU) */
    dm_tensor depth_dev;   /* (1, 1, src_h, src_w) resized depth on a device backend */
    double *pre_src;       /* (src_h, src_w, 3) rgb / 255 */
    double *pre_tmp;       /* (src_h, w, 3) horizontal pass */
    double *pre_dst;       /* (h, w, 3) resized */
};

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
        (st = dinov2_each(&m->enc, model_tensor_upload, be)) ||
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
                                    DM_OP_COPY,      DM_OP_ALLOC};
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
    dm_tensor_free(&c->input_dev);
    dm_tensor_free(&c->depth_dev);
    free(c->pre_src);
    free(c->pre_tmp);
    free(c->pre_dst);
    free(c);
}

dm_status da2_ctx_init(da2_ctx **out, const da2_model *m, dm_backend *be, int src_h, int src_w,
                       int input_size) {
    *out = NULL;
    if (src_h < 14 || src_w < 14)
        return dm_error_set(DM_ERR_ARG, "da2: image %dx%d is smaller than one 14x14 patch",
                            src_w, src_h);
    if (input_size < 14 || input_size > 4096)
        return dm_error_set(DM_ERR_ARG, "da2: input_size %d outside 14..4096", input_size);
    da2_ctx *c = calloc(1, sizeof *c);
    if (!c) return dm_error_set(DM_ERR_NOMEM, "da2: out of memory");
    c->m = m, c->be = be, c->src_h = src_h, c->src_w = src_w;
    da2_input_size(src_h, src_w, input_size, &c->h, &c->w);
    const int64_t s_in[] = {1, 3, c->h, c->w};
    dm_status st;
    if ((st = dinov2_ctx_init(&c->enc, &m->enc, be, 1, c->h, c->w)) ||
        (st = dpt_ctx_init(&c->head, &m->head, be, 1, c->h / VIT_PATCH, c->w / VIT_PATCH)) ||
        (st = dm_tensor_alloc(&c->input, DM_DTYPE_F32, 4, s_in)))
        goto fail;
    if (be->device != DM_DEVICE_CPU) {
        const int64_t s_depth[] = {1, 1, src_h, src_w};
        if ((st = dm_alloc(be, &c->input_dev, dm_backend_storage_dtype(be), 4, s_in)) ||
            (st = dm_alloc(be, &c->depth_dev, dm_backend_storage_dtype(be), 4, s_depth)))
            goto fail;
    }
    c->pre_src = malloc(sizeof(double) * 3 * (size_t)src_h * src_w);
    c->pre_tmp = malloc(sizeof(double) * 3 * (size_t)src_h * c->w);
    c->pre_dst = malloc(sizeof(double) * 3 * (size_t)c->h * c->w);
    if (!c->pre_src || !c->pre_tmp || !c->pre_dst) {
        st = dm_error_set(DM_ERR_NOMEM, "da2: no memory for preprocessing buffers");
        goto fail;
    }
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

dm_status da2_preprocess_u8(da2_ctx *c, const uint8_t *rgb, dm_tensor *input) {
    if (input->dtype != DM_DTYPE_F32 || input->device != DM_DEVICE_CPU ||
        dm_tensor_numel(input) != 3 * (int64_t)c->h * c->w)
        return dm_error_set(DM_ERR_SHAPE, "da2: preprocess output must be a CPU f32 "
                            "(1, 3, %d, %d)", c->h, c->w);
    const size_t n = 3 * (size_t)c->src_h * c->src_w;
    for (size_t i = 0; i < n; i++) c->pre_src[i] = rgb[i] / 255.0;
    dm_status st = da2_cv_resize_cubic(c->pre_src, c->src_h, c->src_w, 3, c->pre_dst, c->h, c->w,
                                       c->pre_tmp);
    if (st) return st;
    static const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
    float *o = dm_f32(input);
    const size_t hw = (size_t)c->h * c->w;
    for (size_t i = 0; i < hw; i++)
        for (int ch = 0; ch < 3; ch++)
            o[ch * hw + i] = (float)((c->pre_dst[3 * i + ch] - mean[ch]) / stdv[ch]);
    return DM_OK;
}

dm_status da2_forward(da2_ctx *c, const dm_tensor *input, dm_tensor *depth_head_out) {
    dm_status st;
    if (input->device != c->be->device) { /* a host input on a device backend: upload it */
        if (!c->input_dev.data)
            return dm_error_set(DM_ERR_ARG, "da2_forward: input on another device");
        if ((st = dm_copy(c->be, input, &c->input_dev))) return st;
        input = &c->input_dev;
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
    dm_status st;
    if ((st = da2_preprocess_u8(c, rgb, &c->input)) || (st = da2_forward(c, &c->input, NULL)))
        return st;
    const int64_t s_out[] = {1, 1, c->src_h, c->src_w};
    dm_tensor out;
    dm_tensor_view(&out, depth, DM_DTYPE_F32, 4, s_out);
    if (c->be->device == DM_DEVICE_CPU)
        return dm_resize(c->be, &c->head.out, DM_RESIZE_BILINEAR, 1, 0, 0, &out);
    /* on a device: resize there, then one download (waits for the data) */
    if ((st = dm_resize(c->be, &c->head.out, DM_RESIZE_BILINEAR, 1, 0, 0, &c->depth_dev)))
        return st;
    return dm_copy(c->be, &c->depth_dev, &out);
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
