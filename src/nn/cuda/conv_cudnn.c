/* Convolutions of the CUDA backend through cuDNN 9's C API:
 *   conv2d           with a bias and/or an activation: first the fused graph of conv_fused.c
 *                    (cuDNN backend API: conv -> bias -> activation in one plan, cached per
 *                    shape; declined shapes remembered); otherwise, and without bias and
 *                    activation, cudnnConvolutionForward (cross-correlation, as PyTorch), or
 *                    cudnnConvolutionBiasActivationForward when the call is f32 + bias + ReLU
 *                    and the graph was declined, with our epilogue kernel (cuda_bias_act) for
 *                    bias, activation and an output dtype that differs from the compute dtype;
 *   conv_transpose2d cudnnConvolutionBackwardData, the same formulation PyTorch uses: a
 *                    transposed conv is the data gradient of the conv whose filter has the
 *                    ConvTranspose2d weight layout (Cin, Cout, kh, kw) = cuDNN's (K, C, R, S).
 * Tensors stay NCHW (the engine layout); cuDNN picks tensor-core kernels for f16/bf16 and
 * transposes internally where it pays. When NCHW has no algorithm at all (f16/bf16 grouped or
 * depthwise convolutions through the legacy API may have none), the convolution runs in NHWC:
 * x and w are permuted into scratch, the result permuted back (three extra passes, only on that
 * path; the fused graph then runs in NHWC too and the permute back converts to y's dtype);
 * with neither, a clear DM_ERR_UNSUPPORTED naming the convolution. The math type is the
 * one the heuristic chose the algorithm with (f32: always CUDNN_FMA_MATH, no TF32).
 * Why not NHWC throughout: the engine's feature maps are NCHW; NHWC end to end needs the RVM
 * model to keep NHWC activations (model code), and a transpose pair around every convolution
 * costs more than cuDNN's internal transforms. The compute dtype is x's dtype, or the backend's
 * precision for an f32 x (runtime.precision); x and w of another dtype are converted into
 * scratch first. DM_CUDNN_FUSED=0 turns both fused paths off (conv + epilogue kernel only).
 * f32 uses CUDNN_FMA_MATH (no TF32) so results match the CPU reference to rounding.
 * Algorithms come from cuDNN's heuristics (..._v7), preferring deterministic ones, cached per
 * shape; when the heuristic offers none, the classic algorithms are tried (accepted when cuDNN's
 * workspace query succeeds for them). Not yet run on a GPU. */
#include <stdint.h>
#include <string.h>

#include "cuda_common.h"
#include "depthmatte/backend_cuda.h"

/* dm_cudnn_status_is_not_supported (src/nn/cuda_diag.c, no cuDNN headers) hard-codes 3000 */
_Static_assert(CUDNN_STATUS_NOT_SUPPORTED == 3000 &&
                   CUDNN_STATUS_CATEGORY(CUDNN_STATUS_NOT_SUPPORTED_SHAPE) ==
                       CUDNN_STATUS_NOT_SUPPORTED,
               "cuDNN 9 status categories changed");

static cudnnDataType_t cudnn_dtype(dm_dtype t) {
    return t == DM_DTYPE_F16 ? CUDNN_DATA_HALF
                             : (t == DM_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT);
}

/* Cached entry for `key`, or NULL. */
/* log2 of the largest power of two (up to 256 bytes) dividing every non-NULL pointer: 0..8. */
static int align_class(const void *a, const void *b, const void *c, const void *d) {
    const uintptr_t v = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | 256u;
    int k = 0;
    while (!(v >> k & 1u)) k++;
    return k;
}

static cuda_conv_algo *cache_find(cuda_ctx *ctx, const int key[16]) {
    for (int i = 0; i < CUDA_ALGO_CACHE; i++)
        if (ctx->algo_cache[i].key[0] && !memcmp(ctx->algo_cache[i].key, key, 16 * sizeof(int)))
            return &ctx->algo_cache[i];
    return NULL;
}

static cuda_conv_algo *cache_put(cuda_ctx *ctx, const int key[16], int algo, int math, int nhwc,
                                 size_t ws) {
    cuda_conv_algo *e = &ctx->algo_cache[ctx->algo_next];
    ctx->algo_next = (ctx->algo_next + 1) % CUDA_ALGO_CACHE;
    memcpy(e->key, key, 16 * sizeof(int));
    e->algo = algo;
    e->math = math;
    e->nhwc = nhwc;
    e->workspace = ws;
    return e;
}

/* Acceptable heuristic result: supported, and for f32 not a tensor-op (TF32) kernel. */
static int algo_ok(cudnnStatus_t status, cudnnMathType_t math, dm_dtype cd) {
    if (status != CUDNN_STATUS_SUCCESS) return 0;
    return cd != DM_DTYPE_F32 || (math != CUDNN_TENSOR_OP_MATH &&
                                  math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

/* Math type to run with: f32 is always FMA (CUDNN_DEFAULT_MATH would allow TF32 on Ampere and
 * later); f16/bf16 take the math type the heuristic chose the algorithm with (a grouped or
 * depthwise kernel may be a non-tensor-core one that TENSOR_OP_MATH would reject). */
static cudnnMathType_t run_math(cudnnMathType_t heuristic, dm_dtype cd) {
    return cd == DM_DTYPE_F32 ? CUDNN_FMA_MATH : heuristic;
}

/* Sets the x/w/y descriptors of a forward convolution in NCHW or NHWC (dims stay N, C, H, W;
 * the filter is KCRS or KRSC). */
static dm_status set_fwd_descs(cuda_ctx *ctx, int nhwc, cudnnDataType_t dt, int N, int Cin, int H,
                               int W, int Cout, int Cg, int kh, int kw, int Ho, int Wo) {
    const cudnnTensorFormat_t f = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->x_desc, f, dt, N, Cin, H, W));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(ctx->w_desc, dt, f, Cout, Cg, kh, kw));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->y_desc, f, dt, N, Cout, Ho, Wo));
    return DM_OK;
}

/* Picks a forward algorithm for the descriptors as set: the heuristic's first acceptable result
 * (deterministic preferred), else the first of the classic algorithms cuDNN accepts (its
 * workspace query succeeds). Returns 0 with *algo, *math, *ws, or -1 when none works. */
static int fwd_pick(cuda_ctx *ctx, dm_dtype cd, int *algo, int *math, size_t *ws) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0, pick = -1;
    if (cudnnGetConvolutionForwardAlgorithm_v7(ctx->cudnn, ctx->x_desc, ctx->w_desc,
                                               ctx->conv_desc, ctx->y_desc,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n,
                                               perf) != CUDNN_STATUS_SUCCESS)
        n = 0;
    for (int pass = 0; pass < 2 && pick < 0; pass++) /* deterministic first, then any */
        for (int i = 0; i < n && pick < 0; i++)
            if (algo_ok(perf[i].status, perf[i].mathType, cd) &&
                (pass || perf[i].determinism == CUDNN_DETERMINISTIC))
                pick = i;
    if (pick >= 0) {
        const cudnnMathType_t m = run_math(perf[pick].mathType, cd);
        if (cudnnSetConvolutionMathType(ctx->conv_desc, m) == CUDNN_STATUS_SUCCESS &&
            cudnnGetConvolutionForwardWorkspaceSize(
                ctx->cudnn, ctx->x_desc, ctx->w_desc, ctx->conv_desc, ctx->y_desc,
                perf[pick].algo, ws) == CUDNN_STATUS_SUCCESS) {
            *algo = (int)perf[pick].algo;
            *math = (int)m;
            return 0;
        }
    }
    static const cudnnConvolutionFwdAlgo_t fallback[3] = {
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_GEMM};
    const cudnnMathType_t maths[2] = {cd == DM_DTYPE_F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH,
                                      cd == DM_DTYPE_F32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH};
    for (int mi = 0; mi < 2; mi++)
        for (int i = 0; i < 3; i++)
            if (cudnnSetConvolutionMathType(ctx->conv_desc, maths[mi]) == CUDNN_STATUS_SUCCESS &&
                cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, ctx->x_desc, ctx->w_desc,
                                                        ctx->conv_desc, ctx->y_desc, fallback[i],
                                                        ws) == CUDNN_STATUS_SUCCESS) {
                *algo = (int)fallback[i];
                *math = (int)maths[mi];
                return 0;
            }
    return -1;
}

/* Forward algorithm for `key` (cached): NCHW first; for f16/bf16 with no NCHW algorithm (grouped
 * and depthwise convolutions through the legacy API may have none) NHWC, where cuDNN's
 * tensor-core and depthwise kernels live. Leaves the descriptors set for the chosen layout and
 * the math type on conv_desc. DM_ERR_UNSUPPORTED, naming the convolution, when neither works. */
static dm_status fwd_algo(cuda_ctx *ctx, const int key[16], dm_dtype cd, cudnnDataType_t dt,
                          const int dims[10], cuda_conv_algo **out) {
    const int N = dims[0], Cin = dims[1], H = dims[2], W = dims[3], Cout = dims[4],
              Cg = dims[5], kh = dims[6], kw = dims[7], Ho = dims[8], Wo = dims[9];
    dm_status st;
    if ((*out = cache_find(ctx, key))) {
        if ((*out)->nhwc &&
            (st = set_fwd_descs(ctx, 1, dt, N, Cin, H, W, Cout, Cg, kh, kw, Ho, Wo)))
            return st;
        CUDNN_CHECK(cudnnSetConvolutionMathType(ctx->conv_desc, (cudnnMathType_t)(*out)->math));
        return DM_OK;
    }
    int algo, math;
    size_t ws = 0;
    for (int nhwc = (ctx->conv_force_nhwc && cd != DM_DTYPE_F32) ? 1 : 0;
         nhwc < (cd == DM_DTYPE_F32 ? 1 : 2); nhwc++) {
        if (nhwc && (st = set_fwd_descs(ctx, 1, dt, N, Cin, H, W, Cout, Cg, kh, kw, Ho, Wo)))
            return st;
        if (fwd_pick(ctx, cd, &algo, &math, &ws) == 0) {
            *out = cache_put(ctx, key, algo, math, nhwc, ws);
            return DM_OK;
        }
    }
    return dm_error_set(DM_ERR_UNSUPPORTED,
                        "conv2d: cuDNN %d offers no forward algorithm for %s x (%d, %d, %d, %d), "
                        "w (%d, %d, %d, %d), groups %d, in NCHW or NHWC; run this model with "
                        "runtime.precision float32",
                        (int)cudnnGetVersion(), dm_dtype_name(cd), N, Cin, H, W, Cout, Cg, kh,
                        kw, Cin / Cg);
}

static dm_status bwd_data_algo(cuda_ctx *ctx, const int key[16], dm_dtype cd,
                               cuda_conv_algo **out) {
    if ((*out = cache_find(ctx, key))) {
        CUDNN_CHECK(cudnnSetConvolutionMathType(ctx->conv_desc, (cudnnMathType_t)(*out)->math));
        return DM_OK;
    }
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0, pick = -1;
    /* backward data: w_desc filter, x_desc = dy (our input), y_desc = dx (our output) */
    if (cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->cudnn, ctx->w_desc, ctx->x_desc,
                                                    ctx->conv_desc, ctx->y_desc,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n,
                                                    perf) != CUDNN_STATUS_SUCCESS)
        n = 0;
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < n && pick < 0; i++)
            if (algo_ok(perf[i].status, perf[i].mathType, cd) &&
                (pass || perf[i].determinism == CUDNN_DETERMINISTIC))
                pick = i;
    /* candidates: the heuristic's pick with its math type, then ALGO_1 / ALGO_0 */
    int cand_algo[3], cand_math[3], nc = 0;
    if (pick >= 0) {
        cand_algo[nc] = (int)perf[pick].algo;
        cand_math[nc++] = (int)run_math(perf[pick].mathType, cd);
    }
    cand_algo[nc] = (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    cand_math[nc++] = (int)(cd == DM_DTYPE_F32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
    cand_algo[nc] = (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
    cand_math[nc++] = (int)(cd == DM_DTYPE_F32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
    for (int i = 0; i < nc; i++) {
        size_t ws = 0;
        if (cudnnSetConvolutionMathType(ctx->conv_desc, (cudnnMathType_t)cand_math[i]) ==
                CUDNN_STATUS_SUCCESS &&
            cudnnGetConvolutionBackwardDataWorkspaceSize(
                ctx->cudnn, ctx->w_desc, ctx->x_desc, ctx->conv_desc, ctx->y_desc,
                (cudnnConvolutionBwdDataAlgo_t)cand_algo[i], &ws) == CUDNN_STATUS_SUCCESS) {
            *out = cache_put(ctx, key, cand_algo[i], cand_math[i], 0, ws);
            return DM_OK;
        }
    }
    return dm_error_set(DM_ERR_UNSUPPORTED,
                        "conv_transpose2d: cuDNN %d offers no backward-data algorithm for %s "
                        "(key %d %d %d %d -> %d, k %dx%d); run with runtime.precision float32",
                        (int)cudnnGetVersion(), dm_dtype_name(cd), key[1], key[2], key[3],
                        key[4], key[5], key[6], key[7]);
}

/* Sets the convolution descriptor: cross-correlation, f32 accumulation; the math type is set by
 * the algorithm choice (fwd_algo / bwd_data_algo). */
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

    const dm_dtype cd = cuda_compute_dtype(ctx, x->dtype); /* runtime.precision */
    const cudnnDataType_t dt = cudnn_dtype(cd);
    const int dims[10] = {N, Cin, H, W, Cout, Cin / g, kh, kw, Ho, Wo};
    if ((st = set_fwd_descs(ctx, 0, dt, N, Cin, H, W, Cout, Cin / g, kh, kw, Ho, Wo)) ||
        (st = set_conv_desc(ctx, p->pad_h, p->pad_w, p->stride_h, p->stride_w, p->dilation_h,
                            p->dilation_w, g, cd)))
        return st;
    /* the pointers' common alignment is part of the key: an algorithm picked for aligned
     * buffers may reject a 2-byte-aligned channel view (RVM's concat slots) at run time */
    const int key[16] = {1 + 16 * align_class(x->data, w->data, y->data, b ? b->data : NULL),
                         N,  Cin, H,           W,           Cout,         kh,          kw,
                         p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dilation_h,
                         p->dilation_w, g, (int)cd};
    cuda_conv_algo *algo;
    if ((st = fwd_algo(ctx, key, cd, dt, dims, &algo))) return st;
    const float one = 1.f, zero = 0.f;
    const int xs4[4] = {N, Cin, H, W}, ws4[4] = {Cout, Cin / g, kh, kw},
              ys4[4] = {N, Cout, Ho, Wo};
    int fused = 0;
    void *ws = NULL;

    if (algo->nhwc) {
        /* NHWC: x -> (N, H, W, C) and w -> (K, R, S, C/g) in the compute dtype (permute converts
         * on the way), the convolution into NHWC scratch, back to NCHW into the output */
        void *xn, *wn, *yn, *out;
        const int64_t xs[4] = {N, Cin, H, W}, wsh[4] = {Cout, Cin / g, kh, kw},
                      ys[4] = {N, Ho, Wo, Cout};
        const int to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
        const size_t esz = dm_dtype_size(cd);
        if ((st = cuda_scratch(ctx, CUDA_SLOT_X, (size_t)dm_tensor_numel(x) * esz, &xn)) ||
            (st = cuda_scratch(ctx, CUDA_SLOT_K, (size_t)dm_tensor_numel(w) * esz, &wn)) ||
            (st = cuda_scratch(ctx, CUDA_SLOT_V, (size_t)dm_tensor_numel(y) * esz, &yn)) ||
            (st = cuda_permute(ctx->stream, x->data, x->dtype, xn, cd, 4, xs, to_nhwc)) ||
            (st = cuda_permute(ctx->stream, w->data, w->dtype, wn, cd, 4, wsh, to_nhwc)))
            return st;
        /* fused graph in NHWC into the NHWC scratch (cd); the permute back converts to y's
         * dtype, so bias and activation cost no pass of their own */
        if ((st = cuda_conv_fused(ctx, xn, wn, b, yn, cd, cd, xs4, ws4, ys4, p, 1, &fused)))
            return st;
        if (fused) return cuda_permute(ctx->stream, yn, cd, y->data, y->dtype, 4, ys, to_nchw);
        if ((st = conv_target(ctx, y, cd, &out)) ||
            (algo->workspace &&
             (st = cuda_scratch(ctx, CUDA_SLOT_WORKSPACE, algo->workspace, &ws))))
            return st;
        CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, ctx->x_desc, xn, ctx->w_desc, wn,
                                            ctx->conv_desc, (cudnnConvolutionFwdAlgo_t)algo->algo,
                                            ws, algo->workspace, &zero, ctx->y_desc, yn));
        if ((st = cuda_permute(ctx->stream, yn, cd, out, cd, 4, ys, to_nchw))) return st;
        if (!b && p->act == DM_ACT_NONE && out == y->data) return DM_OK;
        return cuda_bias_act(ctx->stream, out, cd, b ? b->data : NULL,
                             b ? b->dtype : DM_DTYPE_F32, y->data, y->dtype, N, Cout,
                             (int64_t)Ho * Wo, p->act);
    }
    const void *wp, *xp;
    if ((st = cuda_as_dtype(ctx, w, cd, CUDA_SLOT_A, &wp)) ||
        (st = cuda_as_dtype(ctx, x, cd, CUDA_SLOT_X, &xp)))
        return st;

    /* Fused graph (conv_fused.c): conv -> bias -> activation straight into y (any float
     * dtype), NCHW as the tensors are; declined keys fall through to the paths below. */
    if ((st = cuda_conv_fused(ctx, xp, wp, b, y->data, y->dtype, cd, xs4, ws4, ys4, p, 0,
                              &fused)))
        return st;
    if (fused) return DM_OK;
    if (algo->workspace && (st = cuda_scratch(ctx, CUDA_SLOT_WORKSPACE, algo->workspace, &ws)))
        return st;

    /* Legacy fused path, when the graph was declined: cuDNN's bias+activation kernel supports
     * ReLU (identity needs one specific algorithm); we use it for the all-f32 case and fall back
     * if cuDNN declines. z = y with alpha2 = 0: cuDNN documents z as unused then (the GPU op
     * test starts y as NaN bytes, so a read of z would show). Off with DM_CUDNN_FUSED=0. */
    if (p->act == DM_ACT_RELU && b && cd == DM_DTYPE_F32 && y->dtype == DM_DTYPE_F32 &&
        b->dtype == DM_DTYPE_F32 && cuda_conv_fused_enabled(ctx)) {
        CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->b_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                               Cout, 1, 1));
        CUDNN_CHECK(cudnnSetActivationDescriptor(ctx->act_desc, CUDNN_ACTIVATION_RELU,
                                                 CUDNN_PROPAGATE_NAN, 0.0));
        cudnnStatus_t s = cudnnConvolutionBiasActivationForward(
            ctx->cudnn, &one, ctx->x_desc, xp, ctx->w_desc, wp, ctx->conv_desc,
            (cudnnConvolutionFwdAlgo_t)algo->algo, ws, algo->workspace, &zero, ctx->y_desc,
            y->data, ctx->b_desc, b->data, ctx->act_desc, ctx->y_desc, y->data);
        if (s == CUDNN_STATUS_SUCCESS) return DM_OK;
        /* cuDNN 9 declines with a sub-code of the NOT_SUPPORTED category (3001..3014, e.g.
         * CUDNN_STATUS_NOT_SUPPORTED_SHAPE), not the bare 3000: test the category */
        if (!dm_cudnn_status_is_not_supported((int)s))
            return dm_error_set(DM_ERR_BACKEND, "conv2d: cudnnConvolutionBiasActivationForward: %s",
                                cudnnGetErrorString(s));
    }
    void *out;
    if ((st = conv_target(ctx, y, cd, &out))) return st;
    cudnnStatus_t cs = cudnnConvolutionForward(
        ctx->cudnn, &one, ctx->x_desc, xp, ctx->w_desc, wp, ctx->conv_desc,
        (cudnnConvolutionFwdAlgo_t)algo->algo, ws, algo->workspace, &zero, ctx->y_desc, out);
    if (dm_cudnn_status_is_not_supported((int)cs) &&
        algo->algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) {
        /* the heuristic does not see the pointers: an algorithm it picked may refuse these
         * (e.g. a 2-byte-aligned channel view). IMPLICIT_GEMM needs no workspace and takes any
         * alignment; on success it replaces the choice in this entry, whose key holds the
         * pointers' alignment, so aligned calls keep theirs */
        cs = cudnnConvolutionForward(ctx->cudnn, &one, ctx->x_desc, xp, ctx->w_desc, wp,
                                     ctx->conv_desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                     NULL, 0, &zero, ctx->y_desc, out);
        if (cs == CUDNN_STATUS_SUCCESS)
            algo->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, algo->workspace = 0;
    }
    if (cs != CUDNN_STATUS_SUCCESS) /* e.g. a fallback algorithm that the workspace query took */
        return dm_error_set(dm_cudnn_status_is_not_supported((int)cs) ? DM_ERR_UNSUPPORTED
                                                                     : DM_ERR_BACKEND,
                            "conv2d: cudnnConvolutionForward: %s (%dx%dx%dx%d -> %d channels, "
                            "%dx%d kernel, groups %d, %s, algorithm %d, math %d); "
                            "DM_CUDA_CONV_FORCE_NHWC=1 takes the NHWC path",
                            cudnnGetErrorString(cs), N, Cin, H, W, Cout, kh, kw, g,
                            dm_dtype_name(cd), algo->algo, algo->math);
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

    const dm_dtype cd = cuda_compute_dtype(ctx, x->dtype); /* runtime.precision */
    const cudnnDataType_t dt = cudnn_dtype(cd);
    const void *wp, *xp;
    if ((st = cuda_as_dtype(ctx, w, cd, CUDA_SLOT_A, &wp)) ||
        (st = cuda_as_dtype(ctx, x, cd, CUDA_SLOT_X, &xp)))
        return st;
    /* x plays dy (N, K=Cin, H, W); y plays dx (N, C=Cout, Ho, Wo); filter (K, C, kh, kw) */
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->x_desc, CUDNN_TENSOR_NCHW, dt, N, Cin, H, W));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(ctx->w_desc, dt, CUDNN_TENSOR_NCHW, Cin, Cout, kh, kw));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->y_desc, CUDNN_TENSOR_NCHW, dt, N, Cout, Ho, Wo));
    if ((st = set_conv_desc(ctx, pad, pad, stride, stride, 1, 1, 1, cd))) return st;
    const int key[16] = {2 + 16 * align_class(xp, wp, y->data, NULL), N, Cin, H, W, Cout, kh,
                         kw, stride, stride, pad, pad, 1, 1, 1, (int)cd};
    cuda_conv_algo *algo;
    if ((st = bwd_data_algo(ctx, key, cd, &algo))) return st;
    void *ws = NULL;
    if (algo->workspace && (st = cuda_scratch(ctx, CUDA_SLOT_WORKSPACE, algo->workspace, &ws)))
        return st;
    void *out;
    if ((st = conv_target(ctx, y, cd, &out))) return st;
    const float one = 1.f, zero = 0.f;
    CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->cudnn, &one, ctx->w_desc, wp, ctx->x_desc,
                                             xp, ctx->conv_desc,
                                             (cudnnConvolutionBwdDataAlgo_t)algo->algo, ws,
                                             algo->workspace, &zero, ctx->y_desc, out));
    if (!b && out == y->data) return DM_OK;
    return cuda_bias_act(ctx->stream, out, cd, b ? b->data : NULL, b ? b->dtype : DM_DTYPE_F32,
                         y->data, y->dtype, N, Cout, (int64_t)Ho * Wo, DM_ACT_NONE);
}
