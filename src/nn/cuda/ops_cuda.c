/* Shape checks and dispatch of the CUDA backend's own-kernel ops (norms, elementwise,
 * attention, resize, pooling, concat). The checks mirror the CPU reference (src/nn/cpu) so
 * that both backends reject the same calls; the kernels live in the .cu files. */
#include "cuda_common.h"
#include "depthmatte/backend_cuda.h"

/* Makes the context's device current for this host thread (a prefetch thread may call ops
 * too; cudaSetDevice is a cheap no-op when it already is). */
static dm_status enter(dm_backend *be) {
    CUDA_CHECK(cudaSetDevice(cuda_ctx_of(be)->device));
    return DM_OK;
}

/* Optional per-channel vector: NULL, or a CUDA float tensor of C elements. */
static dm_status check_vec(const dm_tensor *t, int64_t C, const char *op, const char *arg) {
    if (!t) return DM_OK;
    dm_status st = cuda_check_float(t, 0, op, arg);
    if (st) return st;
    if (dm_tensor_numel(t) != C)
        return dm_error_set(DM_ERR_SHAPE, "%s: %s has %lld elements, expected %lld", op, arg,
                            (long long)dm_tensor_numel(t), (long long)C);
    return DM_OK;
}

dm_status layernorm_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                         const dm_tensor *beta, float eps, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 0, "layernorm", "x")) ||
        (st = cuda_check_float(y, 0, "layernorm", "y")))
        return st;
    if (x->ndim < 1 || dm_tensor_numel(x) != dm_tensor_numel(y))
        return dm_error_set(DM_ERR_SHAPE, "layernorm: x and y differ in size");
    const int64_t C = x->shape[x->ndim - 1];
    if ((st = check_vec(gamma, C, "layernorm", "gamma")) ||
        (st = check_vec(beta, C, "layernorm", "beta")) || (st = enter(be)))
        return st;
    if (C == 0) return DM_OK;
    return cuda_layernorm(cuda_ctx_of(be)->stream, x->data, x->dtype, gamma ? gamma->data : NULL,
                          gamma ? gamma->dtype : DM_DTYPE_F32, beta ? beta->data : NULL,
                          beta ? beta->dtype : DM_DTYPE_F32, y->data, y->dtype,
                          dm_tensor_numel(x) / C, C, eps);
}

dm_status groupnorm_cuda(dm_backend *be, const dm_tensor *x, int groups, const dm_tensor *gamma,
                         const dm_tensor *beta, float eps, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 0, "groupnorm", "x")) ||
        (st = cuda_check_float(y, 0, "groupnorm", "y")))
        return st;
    if (x->ndim < 2 || dm_tensor_numel(x) != dm_tensor_numel(y))
        return dm_error_set(DM_ERR_SHAPE, "groupnorm: x must be (N, C, ...) and match y");
    const int64_t N = x->shape[0], C = x->shape[1];
    if (groups < 1 || C % groups)
        return dm_error_set(DM_ERR_SHAPE, "groupnorm: %lld channels not divisible by %d groups",
                            (long long)C, groups);
    if ((st = check_vec(gamma, C, "groupnorm", "gamma")) ||
        (st = check_vec(beta, C, "groupnorm", "beta")) || (st = enter(be)))
        return st;
    int64_t inner = 1;
    for (int i = 2; i < x->ndim; i++) inner *= x->shape[i];
    void *part = NULL;
    const int S = cuda_groupnorm_splits(N, C, inner, groups);
    if (S > 1 && (st = cuda_scratch(cuda_ctx_of(be), CUDA_SLOT_V,
                                    (size_t)2 * N * groups * S * sizeof(float), &part)))
        return st;
    return cuda_groupnorm(cuda_ctx_of(be)->stream, x->data, x->dtype, gamma ? gamma->data : NULL,
                          gamma ? gamma->dtype : DM_DTYPE_F32, beta ? beta->data : NULL,
                          beta ? beta->dtype : DM_DTYPE_F32, y->data, y->dtype, N, C, inner,
                          groups, eps, (float *)part);
}

dm_status activation_cuda(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 0, "activation", "x")) ||
        (st = cuda_check_float(y, 0, "activation", "y")))
        return st;
    if (dm_tensor_numel(x) != dm_tensor_numel(y))
        return dm_error_set(DM_ERR_SHAPE, "activation: numel differs");
    if ((st = enter(be))) return st;
    return cuda_activation(cuda_ctx_of(be)->stream, x->data, x->dtype, y->data, y->dtype,
                           dm_tensor_numel(x), act);
}

dm_status binary_cuda(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_binary_op op,
                      dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(a, 0, "binary", "a")) ||
        (st = cuda_check_float(b, 0, "binary", "b")) ||
        (st = cuda_check_float(y, 0, "binary", "y")))
        return st;
    const int64_t n = dm_tensor_numel(a), nb = dm_tensor_numel(b);
    if (n != dm_tensor_numel(y) || nb == 0 || n % nb)
        return dm_error_set(DM_ERR_SHAPE, "binary: cannot broadcast %lld elements over %lld",
                            (long long)nb, (long long)n);
    if ((st = enter(be))) return st;
    return cuda_binary(cuda_ctx_of(be)->stream, a->data, a->dtype, b->data, b->dtype, nb, y->data,
                       y->dtype, n, op);
}

dm_status attention_cuda(dm_backend *be, const dm_tensor *q, const dm_tensor *k,
                         const dm_tensor *v, float scale, dm_tensor *o) {
    dm_status st;
    if ((st = cuda_check_float(q, 4, "attention", "q")) ||
        (st = cuda_check_float(k, 4, "attention", "k")) ||
        (st = cuda_check_float(v, 4, "attention", "v")) ||
        (st = cuda_check_float(o, 4, "attention", "o")))
        return st;
    for (int i = 0; i < 4; i++) {
        if (o->shape[i] != q->shape[i] || k->shape[i] != v->shape[i] ||
            (i != 2 && k->shape[i] != q->shape[i]))
            return dm_error_set(DM_ERR_SHAPE, "attention: q/o must be (B, H, Tq, D) and k/v "
                                              "(B, H, Tk, D)");
    }
    if (q->shape[2] > 0x7fffffff || k->shape[2] > 0x7fffffff)
        return dm_error_set(DM_ERR_SHAPE, "attention: sequence too long");
    if ((st = enter(be))) return st;
    cuda_ctx *ctx = cuda_ctx_of(be);
    const dm_dtype cd = cuda_compute_dtype(ctx, q->dtype); /* runtime.precision */
    const int D = (int)q->shape[3];
    if ((cd == DM_DTYPE_F16 || cd == DM_DTYPE_BF16) && D <= 128 && ctx->cc_major >= 8) {
        /* tensor cores (attention_tc.cu); operands of another dtype converted into scratch */
        const void *qp, *kp, *vp;
        if ((st = cuda_as_dtype(ctx, q, cd, CUDA_SLOT_X, &qp)) ||
            (st = cuda_as_dtype(ctx, k, cd, CUDA_SLOT_K, &kp)) ||
            (st = cuda_as_dtype(ctx, v, cd, CUDA_SLOT_V, &vp)))
            return st;
        return cuda_attention_tc(ctx->stream, qp, kp, vp, cd, o->data, o->dtype,
                                 q->shape[0] * q->shape[1], (int)q->shape[2], (int)k->shape[2], D,
                                 scale, NULL, ctx->attn_smem_ok);
    }
    /* strict f32 (and pre-Ampere GPUs): the f32 CUDA-core kernel, any operand dtypes */
    return cuda_attention(ctx->stream, q->data, q->dtype, k->data, k->dtype, v->data,
                          v->dtype, o->data, o->dtype, q->shape[0] * q->shape[1],
                          (int)q->shape[2], (int)k->shape[2], (int)q->shape[3], scale, NULL);
}

dm_status dm_cuda_attention_qkv(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                                dm_tensor *o) {
    dm_status st;
    if (!be || be->device != DM_DEVICE_CUDA)
        return dm_error_set(DM_ERR_ARG, "attention_qkv: not a CUDA backend");
    if ((st = cuda_check_float(qkv, 3, "attention_qkv", "qkv")) ||
        (st = cuda_check_float(o, 3, "attention_qkv", "o")))
        return st;
    const int64_t B = qkv->shape[0], T = qkv->shape[1], C3 = qkv->shape[2], C = C3 / 3;
    if (heads < 1 || C3 % 3 || C % heads || o->shape[0] != B || o->shape[1] != T ||
        o->shape[2] != C)
        return dm_error_set(DM_ERR_SHAPE, "attention_qkv: qkv must be (B, T, 3*C), o (B, T, C), "
                            "C divisible by %d heads", heads);
    if (T > 0x7fffffff) return dm_error_set(DM_ERR_SHAPE, "attention_qkv: sequence too long");
    const int D = (int)(C / heads);
    if ((st = enter(be))) return st;
    cuda_ctx *ctx = cuda_ctx_of(be);
    const cuda_att_layout L = {heads, T * C3, D, C3, T * C3, D, C3, T * C, D, C};
    const dm_dtype cd = cuda_compute_dtype(ctx, qkv->dtype);
    const size_t esz = dm_dtype_size(qkv->dtype);
    const char *base = qkv->data;
    if ((cd == DM_DTYPE_F16 || cd == DM_DTYPE_BF16) && D <= 128 && ctx->cc_major >= 8) {
        const void *p;
        if ((st = cuda_as_dtype(ctx, qkv, cd, CUDA_SLOT_X, &p))) return st;
        const char *pb = p;
        const size_t csz = dm_dtype_size(cd);
        return cuda_attention_tc(ctx->stream, pb, pb + C * csz, pb + 2 * C * csz, cd, o->data,
                                 o->dtype, B * heads, (int)T, (int)T, D, scale, &L,
                                 ctx->attn_smem_ok);
    }
    return cuda_attention(ctx->stream, base, qkv->dtype, base + C * esz, qkv->dtype,
                          base + 2 * C * esz, qkv->dtype, o->data, o->dtype, B * heads, (int)T,
                          (int)T, D, scale, &L);
}

dm_status resize_cuda(dm_backend *be, const dm_tensor *x, dm_resize_mode mode, int align_corners,
                      double scale_h, double scale_w, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 4, "resize", "x")) ||
        (st = cuda_check_float(y, 4, "resize", "y")))
        return st;
    if (x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
        return dm_error_set(DM_ERR_SHAPE, "resize: N and C of x and y differ");
    if (x->shape[2] < 1 || x->shape[3] < 1)
        return dm_error_set(DM_ERR_SHAPE, "resize: empty input");
    if ((st = enter(be))) return st;
    return cuda_resize(cuda_ctx_of(be)->stream, x->data, x->dtype, y->data, y->dtype,
                       x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3],
                       (int)y->shape[2], (int)y->shape[3], mode, align_corners, scale_h, scale_w);
}

/* Output size of AvgPool2d(k, s, padding=0, ceil_mode=True) along one axis, with PyTorch's rule
 * that the last window must start inside the input (aten pooling_output_shape). */
static int64_t pool_out(int64_t in, int k, int s) {
    int64_t o = (in - k + s - 1) / s + 1;
    if ((o - 1) * s >= in) o--;
    return o;
}

dm_status maxpool2d_cuda(dm_backend *be, const dm_tensor *x, int k, int s, int pad, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 4, "maxpool2d", "x")) ||
        (st = cuda_check_float(y, 4, "maxpool2d", "y")))
        return st;
    if (k < 1 || s < 1 || pad < 0 || pad > k / 2)
        return dm_error_set(DM_ERR_ARG, "maxpool2d: kernel %d stride %d padding %d (need k, s >= 1, "
                            "0 <= padding <= k/2)", k, s, pad);
    if (x->shape[2] + 2 * pad < k || x->shape[3] + 2 * pad < k)
        return dm_error_set(DM_ERR_SHAPE, "maxpool2d: input %lldx%lld (padding %d) smaller than "
                            "kernel %d", (long long)x->shape[3], (long long)x->shape[2], pad, k);
    const int64_t Ho = (x->shape[2] + 2 * pad - k) / s + 1, Wo = (x->shape[3] + 2 * pad - k) / s + 1;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != Ho ||
        y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "maxpool2d: y must be (%lld, %lld, %lld, %lld)",
                            (long long)x->shape[0], (long long)x->shape[1], (long long)Ho,
                            (long long)Wo);
    if ((st = enter(be))) return st;
    return cuda_maxpool2d(cuda_ctx_of(be)->stream, x->data, x->dtype, y->data, y->dtype,
                          x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)Ho,
                          (int)Wo, k, s, pad);
}

dm_status avgpool2d_cuda(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 4, "avgpool2d", "x")) ||
        (st = cuda_check_float(y, 4, "avgpool2d", "y")))
        return st;
    if (k < 1 || s < 1 || x->shape[2] < k || x->shape[3] < k)
        return dm_error_set(DM_ERR_ARG, "avgpool2d: kernel %d stride %d on %lldx%lld", k, s,
                            (long long)x->shape[2], (long long)x->shape[3]);
    const int64_t Ho = pool_out(x->shape[2], k, s), Wo = pool_out(x->shape[3], k, s);
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != Ho ||
        y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "avgpool2d: y must be (%lld, %lld, %lld, %lld)",
                            (long long)x->shape[0], (long long)x->shape[1], (long long)Ho,
                            (long long)Wo);
    if ((st = enter(be))) return st;
    return cuda_avgpool2d(cuda_ctx_of(be)->stream, x->data, x->dtype, y->data, y->dtype,
                          x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)Ho,
                          (int)Wo, k, s);
}

dm_status concat_cuda(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(a, 0, "concat", "a")) ||
        (st = cuda_check_float(b, 0, "concat", "b")) ||
        (st = cuda_check_float(y, 0, "concat", "y")))
        return st;
    if (a->ndim < 2 || a->ndim != b->ndim || a->ndim != y->ndim || a->shape[0] != b->shape[0] ||
        y->shape[0] != a->shape[0] || y->shape[1] != a->shape[1] + b->shape[1])
        return dm_error_set(DM_ERR_SHAPE, "concat: incompatible shapes");
    int64_t inner = 1;
    for (int i = 2; i < a->ndim; i++) {
        if (a->shape[i] != b->shape[i] || a->shape[i] != y->shape[i])
            return dm_error_set(DM_ERR_SHAPE, "concat: trailing dims differ");
        inner *= a->shape[i];
    }
    if (y->data == a->data || y->data == b->data)
        return dm_error_set(DM_ERR_ARG, "concat: y must not alias a or b on CUDA");
    if ((st = enter(be))) return st;
    return cuda_concat(cuda_ctx_of(be)->stream, a->data, a->dtype, a->shape[1] * inner, b->data,
                       b->dtype, b->shape[1] * inner, y->data, y->dtype, a->shape[0]);
}

dm_status dm_cuda_softmax(dm_backend *be, const dm_tensor *x, dm_tensor *y) {
    dm_status st;
    if (!be || be->device != DM_DEVICE_CUDA)
        return dm_error_set(DM_ERR_ARG, "softmax: not a CUDA backend");
    if ((st = cuda_check_float(x, 0, "softmax", "x")) ||
        (st = cuda_check_float(y, 0, "softmax", "y")))
        return st;
    if (x->ndim < 1 || dm_tensor_numel(x) != dm_tensor_numel(y))
        return dm_error_set(DM_ERR_SHAPE, "softmax: x and y differ in size");
    const int64_t C = x->shape[x->ndim - 1];
    if (C == 0) return DM_OK;
    if ((st = enter(be))) return st;
    return cuda_softmax(cuda_ctx_of(be)->stream, x->data, x->dtype, y->data, y->dtype,
                        dm_tensor_numel(x) / C, C);
}

dm_status image_cubic_normalize_cuda(dm_backend *be, const dm_tensor *rgb,
                                     const dm_image_norm_params *p, dm_tensor *y) {
    const char *op = "image_cubic_normalize";
    dm_status st;
    if ((st = cuda_check_float(y, 4, op, "y"))) return st;
    if (!rgb || !rgb->data) return dm_error_set(DM_ERR_ARG, "%s: rgb is NULL", op);
    if (rgb->device != DM_DEVICE_CUDA)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: rgb is not a CUDA tensor (upload the u8 "
                            "frame first)", op);
    if (rgb->dtype != DM_DTYPE_U8 || rgb->ndim != 4 || rgb->shape[3] != 3)
        return dm_error_set(DM_ERR_SHAPE, "%s: rgb must be a u8 (N, H, W, 3) tensor", op);
    if (!p || (p->arith != DM_CUBIC_F64 && p->arith != DM_CUBIC_F32))
        return dm_error_set(DM_ERR_ARG, "%s: no or unknown arithmetic", op);
    const int64_t N = rgb->shape[0];
    if (y->shape[0] != N || y->shape[1] != 3 || rgb->shape[1] < 1 || rgb->shape[2] < 1 ||
        y->shape[2] < 1 || y->shape[3] < 1 || rgb->shape[1] > 65536 || rgb->shape[2] > 65536 ||
        y->shape[2] > 65536 || y->shape[3] > 65536)
        return dm_error_set(DM_ERR_SHAPE, "%s: y must be (%lld, 3, h, w), sizes 1..65536", op,
                            (long long)N);
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] != 0.0)) return dm_error_set(DM_ERR_ARG, "%s: std[%d] is zero", op, c);
    if ((st = enter(be))) return st;
    return cuda_image_cubic_normalize(cuda_ctx_of(be)->stream, rgb->data, y->data, y->dtype, N,
                                      (int)rgb->shape[1], (int)rgb->shape[2], (int)y->shape[2],
                                      (int)y->shape[3], p->arith == DM_CUBIC_F64, p->mean,
                                      p->std);
}
