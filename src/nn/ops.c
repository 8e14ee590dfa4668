/* Op entry points: dispatch to the backend table (see include/depthmatte/backend.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend.h"
#include "nn/op_gate.h"

static dm_status missing(const dm_backend *be, const char *op) {
    return dm_error_set(DM_ERR_UNSUPPORTED, "backend %s: op %s not implemented", be->ops->name, op);
}

dm_status dm_conv2d(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                    const dm_conv2d_params *p, dm_tensor *y) {
    if (!be->ops->conv2d) return missing(be, "conv2d");
    const dm_conv2d_params q = p ? *p : (dm_conv2d_params){0};
    DM_OP_GATE(be, DM_OP_CONV2D, TS(x, w, b, y),
               IV(q.stride_h, q.stride_w, q.pad_h, q.pad_w, q.dilation_h, q.dilation_w,
                  q.groups, (int)q.act));
    return be->ops->conv2d(be, x, w, b, p, y);
}

dm_status dm_conv_transpose2d(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                              const dm_tensor *b, int stride, int pad, dm_tensor *y) {
    if (!be->ops->conv_transpose2d) return missing(be, "conv_transpose2d");
    DM_OP_GATE(be, DM_OP_CONV_TRANSPOSE2D, TS(x, w, b, y), IV(stride, pad));
    return be->ops->conv_transpose2d(be, x, w, b, stride, pad, y);
}

dm_status dm_linear(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                    dm_act act, dm_tensor *y) {
    if (!be->ops->linear) return missing(be, "linear");
    DM_OP_GATE(be, DM_OP_LINEAR, TS(x, w, b, y), IV((int)act));
    return be->ops->linear(be, x, w, b, act, y);
}

dm_status dm_layernorm(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                       const dm_tensor *beta, float eps, dm_tensor *y) {
    if (!be->ops->layernorm) return missing(be, "layernorm");
    DM_OP_GATE(be, DM_OP_LAYERNORM, TS(x, gamma, beta, y), NOIV);
    return be->ops->layernorm(be, x, gamma, beta, eps, y);
}

dm_status dm_groupnorm(dm_backend *be, const dm_tensor *x, int groups, const dm_tensor *gamma,
                       const dm_tensor *beta, float eps, dm_tensor *y) {
    if (!be->ops->groupnorm) return missing(be, "groupnorm");
    DM_OP_GATE(be, DM_OP_GROUPNORM, TS(x, gamma, beta, y), IV(groups));
    return be->ops->groupnorm(be, x, groups, gamma, beta, eps, y);
}

dm_status dm_activation(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y) {
    if (!be->ops->activation) return missing(be, "activation");
    DM_OP_GATE(be, DM_OP_ACTIVATION, TS(x, y), IV((int)act));
    return be->ops->activation(be, x, act, y);
}

dm_status dm_binary(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_binary_op op,
                    dm_tensor *y) {
    if (!be->ops->binary) return missing(be, "binary");
    DM_OP_GATE(be, DM_OP_BINARY, TS(a, b, y), IV((int)op));
    return be->ops->binary(be, a, b, op, y);
}

dm_status dm_attention(dm_backend *be, const dm_tensor *q, const dm_tensor *k, const dm_tensor *v,
                       float scale, dm_tensor *o) {
    if (!be->ops->attention) return missing(be, "attention");
    DM_OP_GATE(be, DM_OP_ATTENTION, TS(q, k, v, o), NOIV);
    return be->ops->attention(be, q, k, v, scale, o);
}

dm_status dm_resize(dm_backend *be, const dm_tensor *x, dm_resize_mode mode, int align_corners,
                    double scale_h, double scale_w, dm_tensor *y) {
    if (!be->ops->resize) return missing(be, "resize");
    DM_OP_GATE(be, DM_OP_RESIZE, TS(x, y), IV((int)mode, align_corners));
    return be->ops->resize(be, x, mode, align_corners, scale_h, scale_w, y);
}

dm_status dm_avgpool2d(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y) {
    if (!be->ops->avgpool2d) return missing(be, "avgpool2d");
    DM_OP_GATE(be, DM_OP_AVGPOOL2D, TS(x, y), IV(k, s));
    return be->ops->avgpool2d(be, x, k, s, y);
}

dm_status dm_global_avgpool2d(dm_backend *be, const dm_tensor *x, dm_tensor *y) {
    if (!be->ops->global_avgpool2d) return missing(be, "global_avgpool2d");
    DM_OP_GATE(be, DM_OP_GLOBAL_AVGPOOL2D, TS(x, y), NOIV);
    return be->ops->global_avgpool2d(be, x, y);
}

dm_status dm_maxpool2d(dm_backend *be, const dm_tensor *x, int k, int s, int pad, dm_tensor *y) {
    if (!be->ops->maxpool2d) return missing(be, "maxpool2d");
    DM_OP_GATE(be, DM_OP_MAXPOOL2D, TS(x, y), IV(k, s, pad));
    return be->ops->maxpool2d(be, x, k, s, pad, y);
}

dm_status dm_attention_qkv(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                           dm_tensor *o) {
    if (!be->ops->attention_qkv) return missing(be, "attention_qkv");
    DM_OP_GATE(be, DM_OP_ATTENTION_QKV, TS(qkv, o), IV(heads));
    return be->ops->attention_qkv(be, qkv, heads, scale, o);
}

dm_status dm_image_cubic_normalize(dm_backend *be, const dm_tensor *rgb,
                                   const dm_image_norm_params *p, dm_tensor *y) {
    if (!be->ops->image_cubic_normalize) return missing(be, "image_cubic_normalize");
    DM_OP_GATE(be, DM_OP_IMAGE_CUBIC_NORMALIZE, TS(rgb, y), IV(p ? (int)p->arith : -1));
    return be->ops->image_cubic_normalize(be, rgb, p, y);
}

/* The checks every backend would repeat: the counter's dtype, device and group count. */
dm_status dm_count_nonfinite(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                             int accumulate) {
    if (!be->ops->count_nonfinite) return missing(be, "count_nonfinite");
    if (!t || !count || !count->data)
        return dm_error_set(DM_ERR_ARG, "count_nonfinite: NULL tensor or counter");
    if (count->dtype != DM_DTYPE_I64 || count->device != be->device)
        return dm_error_set(DM_ERR_DTYPE, "count_nonfinite: the counter must be an i64 tensor of "
                            "the %s backend (got %s)", be->ops->name, dm_dtype_name(count->dtype));
    const int64_t g = dm_tensor_numel(count), n = dm_tensor_numel(t);
    if (g < 1 || n % g)
        return dm_error_set(DM_ERR_SHAPE, "count_nonfinite: %lld counts do not divide %lld "
                            "values into equal blocks", (long long)g, (long long)n);
    DM_OP_GATE(be, DM_OP_COUNT_NONFINITE, TS(t, count), IV(accumulate != 0));
    return be->ops->count_nonfinite(be, t, count, accumulate != 0);
}

dm_status dm_count_nonfinite_now(dm_backend *be, const dm_tensor *t, int64_t *count) {
    *count = 0;
    const int64_t one = 1;
    dm_tensor dev, host;
    dm_status st = dm_alloc(be, &dev, DM_DTYPE_I64, 1, &one);
    if (st) return st;
    dm_tensor_view(&host, count, DM_DTYPE_I64, 1, &one);
    if (!(st = dm_count_nonfinite(be, t, &dev, 0))) st = dm_copy(be, &dev, &host);
    if (!st) st = dm_synchronize(be);
    dm_tensor_free(&dev);
    if (st) *count = 0;
    return st;
}

dm_status dm_channel_affine(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                            const dm_tensor *shift, dm_tensor *y) {
    if (!be->ops->channel_affine) return missing(be, "channel_affine");
    DM_OP_GATE(be, DM_OP_CHANNEL_AFFINE, TS(x, scale, shift, y), NOIV);
    return be->ops->channel_affine(be, x, scale, shift, y);
}

dm_status dm_image_from_u8(dm_backend *be, const dm_tensor *rgb, dm_tensor *y) {
    if (!be->ops->image_from_u8) return missing(be, "image_from_u8");
    DM_OP_GATE(be, DM_OP_IMAGE_FROM_U8, TS(rgb, y), NOIV);
    return be->ops->image_from_u8(be, rgb, y);
}

dm_status dm_guided_coeffs(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                           dm_tensor *b) {
    if (!be->ops->guided_coeffs) return missing(be, "guided_coeffs");
    DM_OP_GATE(be, DM_OP_GUIDED_COEFFS, TS(m, a, b), NOIV);
    return be->ops->guided_coeffs(be, m, eps, a, b);
}

dm_status dm_matting_compose(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                             const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha) {
    if (!be->ops->matting_compose) return missing(be, "matting_compose");
    DM_OP_GATE(be, DM_OP_MATTING_COMPOSE, TS(a, b, src, fgr, pha), NOIV);
    return be->ops->matting_compose(be, a, b, src, fgr, pha);
}

dm_status dm_permute(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y) {
    if (!be->ops->permute) return missing(be, "permute");
    {
        int iv[DM_OP_MAX_PARAMS] = {0};
        const int nd = x && x->ndim <= DM_OP_MAX_PARAMS ? x->ndim : 0;
        for (int i = 0; i < nd && perm; i++) iv[i] = perm[i];
        const dm_tensor *ts[] = {x, y};
        dm_status gst = dm_op_gate(be, DM_OP_PERMUTE, ts, 2, iv, nd);
        if (gst) return gst;
    }
    return be->ops->permute(be, x, perm, y);
}

dm_status dm_concat(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_tensor *y) {
    if (!be->ops->concat) return missing(be, "concat");
    DM_OP_GATE(be, DM_OP_CONCAT, TS(a, b, y), NOIV);
    return be->ops->concat(be, a, b, y);
}

dm_status dm_copy(dm_backend *be, const dm_tensor *src, dm_tensor *dst) {
    if (!be->ops->copy) return missing(be, "copy");
    DM_OP_GATE(be, DM_OP_COPY, TS(src, dst), NOIV);
    return be->ops->copy(be, src, dst);
}

dm_status dm_alloc(dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim, const int64_t *shape) {
    if (!be->ops->alloc) return missing(be, "alloc");
    if (be->trace || be->ops->supports) {
        dm_tensor meta = {0};
        meta.dtype = dtype;
        meta.ndim = ndim >= 0 && ndim <= DM_MAX_DIMS ? ndim : 0;
        for (int i = 0; i < meta.ndim && shape; i++) meta.shape[i] = shape[i];
        const dm_tensor *ts[] = {&meta};
        dm_status gst = dm_op_gate(be, DM_OP_ALLOC, ts, 1, NULL, 0);
        if (gst) return gst;
    }
    return be->ops->alloc(be, t, dtype, ndim, shape);
}

dm_status dm_synchronize(dm_backend *be) {
    return be->ops->synchronize ? be->ops->synchronize(be) : DM_OK;
}

void dm_backend_destroy(dm_backend *be) {
    if (!be) return;
    if (be->ops->destroy) be->ops->destroy(be);
    free(be->scratch);
    free(be->scratch_aux);
    free(be);
}

void *dm_backend_scratch(dm_backend *be, size_t bytes) {
    if (bytes <= be->scratch_size) return be->scratch;
    size_t rounded = (bytes + 4095) / 4096 * 4096;
    void *p = aligned_alloc(64, rounded);
    if (!p) return NULL;
    free(be->scratch);
    be->scratch = p;
    be->scratch_size = rounded;
    return p;
}

void *dm_backend_scratch_aux(dm_backend *be, size_t bytes) {
    if (bytes <= be->scratch_aux_size) return be->scratch_aux;
    size_t rounded = (bytes + 4095) / 4096 * 4096;
    void *p = aligned_alloc(64, rounded);
    if (!p) return NULL;
    free(be->scratch_aux);
    be->scratch_aux = p;
    be->scratch_aux_size = rounded;
    return p;
}

dm_conv2d_params dm_conv2d_params_make(int s, int p, int g, dm_act act) {
    dm_conv2d_params c = {s, s, p, p, 1, 1, g, act};
    return c;
}

/* ---- backend queries --------------------------------------------------------------------- */

dm_dtype dm_backend_precision(const dm_backend *be) {
    return be ? be->precision : DM_DTYPE_F32;
}

dm_dtype dm_backend_storage_dtype(const dm_backend *be) {
    return be ? be->storage : DM_DTYPE_F32;
}

dm_dtype dm_backend_residual_dtype(const dm_backend *be) {
    (void)be;
    return DM_DTYPE_F32;
}

static const char *const op_names[DM_OP_COUNT] = {
    "conv2d",    "conv_transpose2d", "linear",         "layernorm",     "groupnorm",
    "activation", "binary",          "attention",      "resize",        "avgpool2d",
    "global_avgpool2d", "channel_affine", "image_from_u8", "guided_coeffs", "matting_compose",
    "permute",   "concat",           "copy",           "alloc",         "maxpool2d",
    "attention_qkv", "image_cubic_normalize", "count_nonfinite",
};

const char *dm_op_name(dm_op_id op) {
    return (op >= 0 && op < DM_OP_COUNT) ? op_names[op] : "?";
}

/* The table entry of an op (NULL when the backend lacks it). */
static const void *op_entry(const dm_backend_ops *o, dm_op_id op) {
    switch (op) {
    case DM_OP_CONV2D: return (const void *)o->conv2d;
    case DM_OP_CONV_TRANSPOSE2D: return (const void *)o->conv_transpose2d;
    case DM_OP_LINEAR: return (const void *)o->linear;
    case DM_OP_LAYERNORM: return (const void *)o->layernorm;
    case DM_OP_GROUPNORM: return (const void *)o->groupnorm;
    case DM_OP_ACTIVATION: return (const void *)o->activation;
    case DM_OP_BINARY: return (const void *)o->binary;
    case DM_OP_ATTENTION: return (const void *)o->attention;
    case DM_OP_RESIZE: return (const void *)o->resize;
    case DM_OP_AVGPOOL2D: return (const void *)o->avgpool2d;
    case DM_OP_GLOBAL_AVGPOOL2D: return (const void *)o->global_avgpool2d;
    case DM_OP_CHANNEL_AFFINE: return (const void *)o->channel_affine;
    case DM_OP_IMAGE_FROM_U8: return (const void *)o->image_from_u8;
    case DM_OP_GUIDED_COEFFS: return (const void *)o->guided_coeffs;
    case DM_OP_MATTING_COMPOSE: return (const void *)o->matting_compose;
    case DM_OP_PERMUTE: return (const void *)o->permute;
    case DM_OP_CONCAT: return (const void *)o->concat;
    case DM_OP_COPY: return (const void *)o->copy;
    case DM_OP_ALLOC: return (const void *)o->alloc;
    case DM_OP_MAXPOOL2D: return (const void *)o->maxpool2d;
    case DM_OP_ATTENTION_QKV: return (const void *)o->attention_qkv;
    case DM_OP_IMAGE_CUBIC_NORMALIZE: return (const void *)o->image_cubic_normalize;
    case DM_OP_COUNT_NONFINITE: return (const void *)o->count_nonfinite;
    case DM_OP_COUNT: break;
    }
    return NULL;
}

int dm_backend_has_op(const dm_backend *be, dm_op_id op) {
    return be && op >= 0 && op < DM_OP_COUNT && op_entry(be->ops, op) != NULL;
}

int dm_backend_supports(const dm_backend *be, dm_op_id op, dm_dtype dtype) {
    if (!be) return 0;
    dm_op_desc d;
    memset(&d, 0, sizeof d);
    d.op = op;
    d.dtype = dtype;
    return dm_backend_supports_op(be, &d, NULL, 0);
}

int dm_backend_supports_all(const dm_backend *be, const dm_op_id *ops, int n, char *missing,
                            size_t size) {
    if (missing && size) missing[0] = '\0';
    for (int i = 0; i < n; i++)
        if (!dm_backend_supports(be, ops[i], dm_backend_storage_dtype(be))) {
            if (missing && size) snprintf(missing, size, "%s", dm_op_name(ops[i]));
            return 0;
        }
    return 1;
}

dm_status dm_tensor_upload(dm_backend *be, dm_tensor *t, dm_dtype dtype) {
    if (!t->data) return DM_OK; /* absent optional tensor (e.g. a conv without bias) */
    if (be->device == t->device && t->dtype == dtype) return DM_OK;
    dm_tensor d;
    dm_status st = dm_alloc(be, &d, dtype, t->ndim, t->shape);
    if (st) return st;
    if ((st = dm_copy(be, t, &d)) || (st = dm_synchronize(be))) {
        dm_tensor_free(&d);
        return st;
    }
    dm_tensor_free(t);
    *t = d;
    return DM_OK;
}
