/* Convolutions of the CUDA backend through cuDNN 9's C API (legacy convolution calls of
 * cudnn_cnn.h; the graph API / cudnn_frontend is not used):
 *   conv2d           cudnnConvolutionForward (cross-correlation, as PyTorch), or
 *                    cudnnConvolutionBiasActivationForward when the call is f32 + bias + ReLU;
 *   conv_transpose2d cudnnConvolutionBackwardData, the same formulation PyTorch uses: a
 *                    transposed conv is the data gradient of the conv whose filter has the
 *                    ConvTranspose2d weight layout (Cin, Cout, kh, kw) = cuDNN's (K, C, R, S).
 * Tensors stay NCHW (the engine layout); cuDNN picks tensor-core kernels for f16/bf16 and
 * transposes internally where it pays. The compute dtype is x's dtype; a weight of another dtype
 * is converted into scratch first. Bias, activations other than ReLU, and an output dtype that
 * differs from x's go through our epilogue kernel (cuda_bias_act) after the convolution.
 * f32 uses CUDNN_FMA_MATH (no TF32) so results match the CPU reference to rounding.
 * Algorithms come from cuDNN's heuristics (…_v7), preferring deterministic ones, cached per
 * shape. Not yet run on a GPU. */
#include <string.h>

#include "cuda_common.h"

static cudnnDataType_t cudnn_dtype(dm_dtype t) {
    return t == DM_DTYPE_F16 ? CUDNN_DATA_HALF
                             : (t == DM_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT);
}

/* Cached entry for `key`, or NULL. */
static cuda_conv_algo *cache_find(cuda_ctx *ctx, const int key[16]) {
    for (int i = 0; i < CUDA_ALGO_CACHE; i++)
        if (ctx->algo_cache[i].key[0] && !memcmp(ctx->algo_cache[i].key, key, 16 * sizeof(int)))
            return &ctx->algo_cache[i];
    return NULL;
}

static cuda_conv_algo *cache_put(cuda_ctx *ctx, const int key[16], int algo, size_t ws) {
    cuda_conv_algo *e = &ctx->algo_cache[ctx->algo_next];
    ctx->algo_next = (ctx->algo_next + 1) % CUDA_ALGO_CACHE;
    memcpy(e->key, key, 16 * sizeof(int));
    e->algo = algo;
    e->workspace = ws;
    return e;
}

/* Acceptable heuristic result: supported, and for f32 not a tensor-op (TF32) kernel. */
static int algo_ok(cudnnStatus_t status, cudnnMathType_t math, dm_dtype cd) {
    if (status != CUDNN_STATUS_SUCCESS) return 0;
    return cd != DM_DTYPE_F32 || (math != CUDNN_TENSOR_OP_MATH &&
                                  math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

static dm_status fwd_algo(cuda_ctx *ctx, const int key[16], dm_dtype cd, cuda_conv_algo **out) {
    if ((*out = cache_find(ctx, key))) return DM_OK;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0, pick = -1;
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx->cudnn, ctx->x_desc, ctx->w_desc,
                                                       ctx->conv_desc, ctx->y_desc,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    for (int pass = 0; pass < 2 && pick < 0; pass++) /* deterministic first, then any */
        for (int i = 0; i < n && pick < 0; i++)
            if (algo_ok(perf[i].status, perf[i].mathType, cd) &&
                (pass || perf[i].determinism == CUDNN_DETERMINISTIC))
                pick = i;
    int algo = pick >= 0 ? (int)perf[pick].algo : (int)CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    size_t ws = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, ctx->x_desc, ctx->w_desc,
                                                        ctx->conv_desc, ctx->y_desc,
                                                        (cudnnConvolutionFwdAlgo_t)algo, &ws));
    *out = cache_put(ctx, key, algo, ws);
    return DM_OK;
}

static dm_status bwd_data_algo(cuda_ctx *ctx, const int key[16], dm_dtype cd,
                               cuda_conv_algo **out) {
    if ((*out = cache_find(ctx, key))) return DM_OK;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0, pick = -1;
    /* backward data: w_desc filter, x_desc = dy (our input), y_desc = dx (our output) */
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        ctx->cudnn, ctx->w_desc, ctx->x_desc, ctx->conv_desc, ctx->y_desc,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < n && pick < 0; i++)
            if (algo_ok(perf[i].status, perf[i].mathType, cd) &&
                (pass || perf[i].determinism == CUDNN_DETERMINISTIC))
                pick = i;
    /* ALGO_1 is deterministic and supports every configuration we use */
    int algo = pick >= 0 ? (int)perf[pick].algo : (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    size_t ws = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        ctx->cudnn, ctx->w_desc, ctx->x_desc, ctx->conv_desc, ctx->y_desc,
        (cudnnConvolutionBwdDataAlgo_t)algo, &ws));
    *out = cache_put(ctx, key, algo, ws);
    return DM_OK;
}

/* Sets the convolution descriptor: cross-correlation, f32 accumulation, FMA math for f32. */
static dm_status set_conv_desc(cuda_ctx *ctx, int ph, int pw, int sh, int sw, int dh, int dw,
                               int groups, dm_dtype cd) {
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(ctx->conv_desc, ph, pw, sh, sw, dh, dw,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(ctx->conv_desc, groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(
        ctx->conv_desc, cd == DM_DTYPE_F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
    return DM_OK;
}

/* Where the convolution writes: y itself when its dtype is the compute dtype, else scratch. */
static dm_status conv_target(cuda_ctx *ctx, const dm_tensor *y, dm_dtype cd, void **out) {
    if (y->dtype == cd) {
        *out = y->data;
        return DM_OK;
    }
    return cuda_scratch(ctx, CUDA_SLOT_C, (size_t)dm_tensor_numel(y) * dm_dtype_size(cd), out);
}

dm_status conv2d_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                      const dm_conv2d_params *p, dm_tensor *y) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    dm_status st;
    if ((st = cuda_check_float(x, 4, "conv2d", "x")) ||
        (st = cuda_check_float(w, 4, "conv2d", "w")) ||
        (st = cuda_check_float(y, 4, "conv2d", "y")) ||
        (b && (st = cuda_check_float(b, 0, "conv2d", "b"))))
        return st;
    const int N = (int)x->shape[0], Cin = (int)x->shape[1], H = (int)x->shape[2],
              W = (int)x->shape[3];
    const int Cout = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    const int g = p->groups;
    if (g < 1 || Cin % g || Cout % g || w->shape[1] * g != Cin || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1)
        return dm_error_set(DM_ERR_SHAPE, "conv2d: x has %d channels, w (%d, %lld, %d, %d), "
                            "groups %d", Cin, Cout, (long long)w->shape[1], kh, kw, g);
    const int Ho = (H + 2 * p->pad_h - p->dilation_h * (kh - 1) - 1) / p->stride_h + 1;
    const int Wo = (W + 2 * p->pad_w - p->dilation_w * (kw - 1) - 1) / p->stride_w + 1;
    if (Ho < 1 || Wo < 1 || y->shape[0] != N || y->shape[1] != Cout || y->shape[2] != Ho ||
        y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "conv2d: y must be (%d, %d, %d, %d)", N, Cout, Ho, Wo);
    if (b && dm_tensor_numel(b) != Cout)
        return dm_error_set(DM_ERR_SHAPE, "conv2d: bias has %lld elements, expected %d",
                            (long long)dm_tensor_numel(b), Cout);
    CUDA_CHECK(cudaSetDevice(ctx->device));

    const dm_dtype cd = x->dtype;
    const cudnnDataType_t dt = cudnn_dtype(cd);
    const void *wp;
    if ((st = cuda_as_dtype(ctx, w, cd, CUDA_SLOT_A, &wp))) return st;
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->x_desc, CUDNN_TENSOR_NCHW, dt, N, Cin, H, W));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(ctx->w_desc, dt, CUDNN_TENSOR_NCHW, Cout, Cin / g, kh,
                                           kw));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->y_desc, CUDNN_TENSOR_NCHW, dt, N, Cout, Ho, Wo));
    if ((st = set_conv_desc(ctx, p->pad_h, p->pad_w, p->stride_h, p->stride_w, p->dilation_h,
                            p->dilation_w, g, cd)))
        return st;
    const int key[16] = {1,  N,  Cin, H,           W,           Cout,         kh,          kw,
                         p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dilation_h,
                         p->dilation_w, g, (int)cd};
    cuda_conv_algo *algo;
    if ((st = fwd_algo(ctx, key, cd, &algo))) return st;
    void *ws = NULL;
    if (algo->workspace && (st = cuda_scratch(ctx, CUDA_SLOT_WORKSPACE, algo->workspace, &ws)))
        return st;
    const float one = 1.f, zero = 0.f;

    /* Fused path: cuDNN's bias+activation kernel supports ReLU (identity needs one specific
     * algorithm); we use it for the all-f32 case and fall back if cuDNN declines. */
    if (p->act == DM_ACT_RELU && b && cd == DM_DTYPE_F32 && y->dtype == DM_DTYPE_F32 &&
        b->dtype == DM_DTYPE_F32) {
        CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->b_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                               Cout, 1, 1));
        CUDNN_CHECK(cudnnSetActivationDescriptor(ctx->act_desc, CUDNN_ACTIVATION_RELU,
                                                 CUDNN_PROPAGATE_NAN, 0.0));
        cudnnStatus_t s = cudnnConvolutionBiasActivationForward(
            ctx->cudnn, &one, ctx->x_desc, x->data, ctx->w_desc, wp, ctx->conv_desc,
            (cudnnConvolutionFwdAlgo_t)algo->algo, ws, algo->workspace, &zero, ctx->y_desc,
            y->data, ctx->b_desc, b->data, ctx->act_desc, ctx->y_desc, y->data);
        if (s == CUDNN_STATUS_SUCCESS) return DM_OK;
        if (s != CUDNN_STATUS_NOT_SUPPORTED)
            return dm_error_set(DM_ERR_BACKEND, "conv2d: cudnnConvolutionBiasActivationForward: %s",
                                cudnnGetErrorString(s));
    }
    void *out;
    if ((st = conv_target(ctx, y, cd, &out))) return st;
    CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, ctx->x_desc, x->data, ctx->w_desc, wp,
                                        ctx->conv_desc, (cudnnConvolutionFwdAlgo_t)algo->algo, ws,
                                        algo->workspace, &zero, ctx->y_desc, out));
    if (!b && p->act == DM_ACT_NONE && out == y->data) return DM_OK;
    return cuda_bias_act(ctx->stream, out, cd, b ? b->data : NULL, b ? b->dtype : DM_DTYPE_F32,
                         y->data, y->dtype, N, Cout, (int64_t)Ho * Wo, p->act);
}

dm_status conv_transpose2d_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                                const dm_tensor *b, int stride, int pad, dm_tensor *y) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    dm_status st;
    if ((st = cuda_check_float(x, 4, "conv_transpose2d", "x")) ||
        (st = cuda_check_float(w, 4, "conv_transpose2d", "w")) ||
        (st = cuda_check_float(y, 4, "conv_transpose2d", "y")) ||
        (b && (st = cuda_check_float(b, 0, "conv_transpose2d", "b"))))
        return st;
    const int N = (int)x->shape[0], Cin = (int)x->shape[1], H = (int)x->shape[2],
              W = (int)x->shape[3];
    const int Cout = (int)w->shape[1], kh = (int)w->shape[2], kw = (int)w->shape[3];
    if (w->shape[0] != Cin || stride < 1 || pad < 0)
        return dm_error_set(DM_ERR_SHAPE, "conv_transpose2d: w must be (%d, Cout, kh, kw)", Cin);
    const int Ho = (H - 1) * stride - 2 * pad + kh, Wo = (W - 1) * stride - 2 * pad + kw;
    if (Ho < 1 || Wo < 1 || y->shape[0] != N || y->shape[1] != Cout || y->shape[2] != Ho ||
        y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "conv_transpose2d: y must be (%d, %d, %d, %d)", N, Cout,
                            Ho, Wo);
    if (b && dm_tensor_numel(b) != Cout)
        return dm_error_set(DM_ERR_SHAPE, "conv_transpose2d: bias has %lld elements, expected %d",
                            (long long)dm_tensor_numel(b), Cout);
    CUDA_CHECK(cudaSetDevice(ctx->device));

    const dm_dtype cd = x->dtype;
    const cudnnDataType_t dt = cudnn_dtype(cd);
    const void *wp;
    if ((st = cuda_as_dtype(ctx, w, cd, CUDA_SLOT_A, &wp))) return st;
    /* x plays dy (N, K=Cin, H, W); y plays dx (N, C=Cout, Ho, Wo); filter (K, C, kh, kw) */
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->x_desc, CUDNN_TENSOR_NCHW, dt, N, Cin, H, W));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(ctx->w_desc, dt, CUDNN_TENSOR_NCHW, Cin, Cout, kh, kw));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->y_desc, CUDNN_TENSOR_NCHW, dt, N, Cout, Ho, Wo));
    if ((st = set_conv_desc(ctx, pad, pad, stride, stride, 1, 1, 1, cd))) return st;
    const int key[16] = {2, N, Cin, H, W, Cout, kh, kw, stride, stride, pad, pad, 1, 1, 1,
                         (int)cd};
    cuda_conv_algo *algo;
    if ((st = bwd_data_algo(ctx, key, cd, &algo))) return st;
    void *ws = NULL;
    if (algo->workspace && (st = cuda_scratch(ctx, CUDA_SLOT_WORKSPACE, algo->workspace, &ws)))
        return st;
    void *out;
    if ((st = conv_target(ctx, y, cd, &out))) return st;
    const float one = 1.f, zero = 0.f;
    CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->cudnn, &one, ctx->w_desc, wp, ctx->x_desc,
                                             x->data, ctx->conv_desc,
                                             (cudnnConvolutionBwdDataAlgo_t)algo->algo, ws,
                                             algo->workspace, &zero, ctx->y_desc, out));
    if (!b && out == y->data) return DM_OK;
    return cuda_bias_act(ctx->stream, out, cd, b ? b->data : NULL, b ? b->dtype : DM_DTYPE_F32,
                         y->data, y->dtype, N, Cout, (int64_t)Ho * Wo, DM_ACT_NONE);
}
