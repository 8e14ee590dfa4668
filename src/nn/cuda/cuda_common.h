/* Internal to the CUDA backend: the backend context, the error-check macros (one per library),
 * scratch buffers, and the C-callable kernel launchers of the .cu files.
 * Included by the host C files (backend_cuda.c, conv_cudnn.c, linear_cublaslt.c) and by the
 * .cu files; everything here has C linkage. */
#ifndef DM_NN_CUDA_COMMON_H
#define DM_NN_CUDA_COMMON_H

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" { /* the depthmatte headers are C and have no guards of their own */
#endif

#include "depthmatte/backend.h"

/* One macro per library: on failure record "file:line function: call: library message" with
 * DM_ERR_BACKEND and return it from the enclosing function (which returns dm_status). */
#define CUDA_CHECK(expr)                                                                       \
    do {                                                                                       \
        cudaError_t e_ = (expr);                                                               \
        if (e_ != cudaSuccess)                                                                 \
            return dm_error_set(DM_ERR_BACKEND, "%s:%d %s: %s: %s (%s)", __FILE__, __LINE__,   \
                                __func__, #expr, cudaGetErrorString(e_), cudaGetErrorName(e_)); \
    } while (0)
#define CUDNN_CHECK(expr)                                                                      \
    do {                                                                                       \
        cudnnStatus_t s_ = (expr);                                                             \
        if (s_ != CUDNN_STATUS_SUCCESS)                                                        \
            return dm_error_set(DM_ERR_BACKEND, "%s:%d %s: %s: %s", __FILE__, __LINE__,        \
                                __func__, #expr, cudnnGetErrorString(s_));                     \
    } while (0)
#define CUBLAS_CHECK(expr)                                                                     \
    do {                                                                                       \
        cublasStatus_t s_ = (expr);                                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                       \
            return dm_error_set(DM_ERR_BACKEND, "%s:%d %s: %s: %s", __FILE__, __LINE__,        \
                                __func__, #expr, cublasLtGetStatusString(s_));                 \
    } while (0)
/* After a kernel launch: catches bad launch configurations (the kernel itself runs async). */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

/* Device scratch buffers, each grown independently (never shrunk) so that one op can hold
 * several at once: the cuDNN/cuBLASLt workspace and up to three converted operands. */
typedef enum cuda_slot {
    CUDA_SLOT_WORKSPACE = 0, /* cuDNN / cuBLASLt algorithm workspace */
    CUDA_SLOT_A,             /* converted weight (dtype differs from the compute dtype) */
    CUDA_SLOT_B,             /* converted bias */
    CUDA_SLOT_C,             /* output in the compute dtype before the epilogue / copy staging */
    CUDA_SLOT_X,             /* input converted to the compute dtype (runtime precision) or NHWC;
                              * attention q */
    CUDA_SLOT_K,             /* NHWC conv weight; attention k */
    CUDA_SLOT_V,             /* NHWC conv output; attention v; groupnorm partial sums */
    CUDA_SLOT_COUNT
} cuda_slot;

/* Cached cuDNN algorithm choice for one convolution configuration. */
typedef struct cuda_conv_algo {
    int key[16]; /* shapes, params, dtype, direction; key[0] == 0 marks an empty entry */
    int algo;    /* cudnnConvolutionFwdAlgo_t or cudnnConvolutionBwdDataAlgo_t */
    int math;    /* cudnnMathType_t the algorithm was chosen with (the heuristic's result) */
    int nhwc;    /* 1: run in NHWC (NCHW had no algorithm; f16/bf16 grouped convolutions) */
    size_t workspace;
} cuda_conv_algo;

/* Cached cuBLASLt plan (descriptors, layouts, heuristic algorithm) for one GEMM shape. */
typedef struct cuda_lt_plan {
    uint64_t key[8]; /* M, N, K, dtypes, epilogue, alignments; key[0] == 0: empty entry */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
    size_t workspace; /* bytes the algorithm may use (the preference it was chosen with) */
} cuda_lt_plan;

#define CUDA_LT_CACHE 64

/* Pinned host staging buffers for uploads from pageable memory: a ring of two, each reused
 * only after the event recorded behind its last copy has completed. */
#define CUDA_STAGE_COUNT 2

typedef struct cuda_stage {
    void *host;       /* cudaMallocHost */
    size_t size;
    cudaEvent_t done; /* recorded after the copy that reads `host` */
    int pending;      /* 1: `done` was recorded and not yet waited for */
} cuda_stage;

#define CUDA_ALGO_CACHE 128

/* Asynchronous downloads (dm_copy_async, include/depthmatte/copy_async.h): a ring of device
 * stages, each reused only after the device->host copy out of it is done. 8 covers two frames
 * of every model's outputs (RVM: foreground + alpha; DA-V2, VDA: one depth each) with room. */
#define CUDA_DL_COUNT 8

typedef struct cuda_dl {
    void *dev;         /* device stage: the source converted to the host dtype (grown, kept) */
    size_t size;
    cudaEvent_t ready; /* compute stream: the stage holds the value (copy stream waits on it) */
    cudaEvent_t done;  /* copy stream: the device->host copy out of the stage is done */
    uint64_t seq;      /* ticket id of the last download through this stage */
    int pending;       /* 1: `done` recorded and not yet waited for by the host */
} cuda_dl;

typedef struct cuda_ctx {
    int device;
    dm_dtype precision;
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasLtHandle_t lt;
    void *slot[CUDA_SLOT_COUNT];
    size_t slot_size[CUDA_SLOT_COUNT];
    /* cuDNN descriptors, created once and re-set per call */
    cudnnTensorDescriptor_t x_desc, y_desc, b_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnActivationDescriptor_t act_desc;
    cuda_conv_algo algo_cache[CUDA_ALGO_CACHE];
    int algo_next; /* ring position for the next new cache entry */
    cuda_lt_plan lt_cache[CUDA_LT_CACHE];
    int lt_next;   /* ring position (evicted plans are destroyed) */
    cuda_stage stage[CUDA_STAGE_COUNT];
    int stage_next;
    cudaEvent_t upload_done; /* direct uploads from caller-pinned memory */
    cudaStream_t copy_stream; /* device->host downloads of dm_copy_async, beside `stream` */
    cuda_dl dl[CUDA_DL_COUNT];
    int dl_next;              /* ring position of the next download */
    uint64_t dl_seq;          /* ticket ids issued */
    int capturing; /* inside dm_cuda_graph_begin/end: no allocation, no synchronisation */
    int capture_failed; /* an op was refused inside the capture: dm_cuda_graph_end fails */
    int attn_smem_ok[8]; /* tensor-core attention: dynamic shared memory opted in per variant */
    int cc_major;        /* compute capability major (tensor-core attention needs >= 8) */
    int conv_force_nhwc; /* DM_CUDA_CONV_FORCE_NHWC=1 at creation: f16/bf16 convolutions take the
                          * NHWC path (so that the GPU op test exercises it) */
    struct cuda_fused *fused; /* conv_fused.c: fused conv epilogue plans (created on first use) */
    /* Scratch slots outgrown after a graph was captured: a captured graph holds the old slot
     * addresses (one backend serves every model of a rank, so RVM's graph may be replayed
     * after a VDA window grew the workspace), so they stay allocated until destroy. */
    int graphs_made;       /* dm_cuda_graph_end succeeded at least once */
    void **retired;        /* device buffers */
    int nretired, cap_retired;
} cuda_ctx;

static inline cuda_ctx *cuda_ctx_of(dm_backend *be) {
    return (cuda_ctx *)be->impl;
}

/* Returns device scratch `slot` of at least `bytes` into *ptr (grows it; synchronizes the
 * stream before freeing the old buffer because queued kernels may still read it). */
dm_status cuda_scratch(cuda_ctx *ctx, cuda_slot slot, size_t bytes, void **ptr);

/* Compute dtype of a GEMM-like op (conv, linear, attention) whose main input has dtype xt: the
 * backend's precision when xt is f32 and the precision is f16/bf16 (runtime.precision honoured
 * for models that allocate f32 tensors), else xt itself. */
static inline dm_dtype cuda_compute_dtype(const cuda_ctx *ctx, dm_dtype xt) {
    return (xt == DM_DTYPE_F32 && ctx->precision != DM_DTYPE_F32) ? ctx->precision : xt;
}

/* Uploads `bytes` from host memory src to device memory dst on the stream through the pinned
 * staging ring; returns when src may be reused (the copy itself may still be in flight). */
dm_status cuda_upload(cuda_ctx *ctx, void *dst, const void *src, size_t bytes);

/* Checks that t is a CUDA tensor of a float dtype (f32/f16/bf16) with ndim dims (0: any). */
dm_status cuda_check_float(const dm_tensor *t, int ndim, const char *op, const char *arg);

/* Returns a pointer to t's data in `dtype`: t->data itself, or a converted copy in `slot`. */
dm_status cuda_as_dtype(cuda_ctx *ctx, const dm_tensor *t, dm_dtype dtype, cuda_slot slot,
                        const void **ptr);

/* --- launchers (the .cu files); all enqueue on `s` and return a launch error if any --- */

/* y[i] = (ydtype) x[i] for n elements; dtypes f32/f16/bf16/u8 (u8 output: round + saturate). */
dm_status cuda_convert(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                       int64_t n);
/* y = act(x), elementwise, any float dtypes. y may alias x when the dtypes agree. */
dm_status cuda_activation(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                          int64_t n, dm_act act);
/* y[i] = a[i] op b[i % nb]. */
dm_status cuda_binary(cudaStream_t s, const void *a, dm_dtype at, const void *b, dm_dtype bt,
                      int64_t nb, void *y, dm_dtype yt, int64_t n, dm_binary_op op);
/* y (outer, ca+cb) = [a (outer, ca), b (outer, cb)] (sizes in elements per outer index). */
dm_status cuda_concat(cudaStream_t s, const void *a, dm_dtype at, int64_t ca, const void *b,
                      dm_dtype bt, int64_t cb, void *y, dm_dtype yt, int64_t outer);
/* Epilogue of conv/linear: y[(n, c, i)] = act(x[(n, c, i)] + b[c]) for x (N, C, inner);
 * b may be NULL. y may alias x. */
dm_status cuda_bias_act(cudaStream_t s, const void *x, dm_dtype xt, const void *b, dm_dtype bt,
                        void *y, dm_dtype yt, int64_t N, int64_t C, int64_t inner, dm_act act);
/* cudaFuncGetAttributes on one of our kernels (elementwise.cu's nonfinite_kernel) on the calling
 * thread's current device: cudaErrorNoKernelImageForDevice / cudaErrorInvalidDeviceFunction
 * when the build has no GPU code for that device (all .cu files share the architecture flags).
 * Returns the runtime's error; the caller clears it. */
cudaError_t cuda_kernel_image_probe(void);
/* Adds 1 to *counter for every NaN/Inf among n elements (counter is a device pointer). */
dm_status cuda_count_nonfinite(cudaStream_t s, const void *x, dm_dtype xt, int64_t n,
                               unsigned long long *counter);
/* LayerNorm over rows of C: x, y (rows, C); gamma/beta (C) or NULL. */
dm_status cuda_layernorm(cudaStream_t s, const void *x, dm_dtype xt, const void *g, dm_dtype gt,
                         const void *b, dm_dtype bt, void *y, dm_dtype yt, int64_t rows,
                         int64_t C, float eps);
/* GroupNorm: x, y (N, C, inner); gamma/beta (C) or NULL. When cuda_groupnorm_splits(...) = S
 * > 1 the reduction of each group is split over S blocks (three passes) and part must hold
 * 2 * N * groups * S floats of device scratch; else part may be NULL. */
int cuda_groupnorm_splits(int64_t N, int64_t C, int64_t inner, int groups);
dm_status cuda_groupnorm(cudaStream_t s, const void *x, dm_dtype xt, const void *g, dm_dtype gt,
                         const void *b, dm_dtype bt, void *y, dm_dtype yt, int64_t N, int64_t C,
                         int64_t inner, int groups, float eps, float *part);
/* Softmax over rows of C. */
dm_status cuda_softmax(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                       int64_t rows, int64_t C);
/* Element strides of the attention operands (the head dim is contiguous): sequence bh = b*heads
 * + h starts at b*s_b + h*s_h, row t at + t*s_t. k and v share strides. NULL layout = contiguous
 * (BH, T, D) tensors. The packed qkv layout (B, T, 3, H, D) of a qkv linear, read directly
 * (dm_cuda_attention_qkv), is heads = H, q/k/v s_b = T*3C, s_h = D, s_t = 3C (k, v at +C, +2C),
 * o (B, T, H, D): s_b = T*C, s_h = D, s_t = C. */
typedef struct cuda_att_layout {
    int heads;
    long long q_b, q_h, q_t, k_b, k_h, k_t, o_b, o_h, o_t;
} cuda_att_layout;

/* Attention: q (BH, Tq, D), k, v (BH, Tk, D), o (BH, Tq, D) (or strided by L); D <= 128. */
dm_status cuda_attention(cudaStream_t s, const void *q, dm_dtype qt, const void *k, dm_dtype kt,
                         const void *v, dm_dtype vt, void *o, dm_dtype ot, int64_t BH, int Tq,
                         int Tk, int D, float scale, const cuda_att_layout *L);
/* Tensor-core attention (attention_tc.cu): q, k, v (BH, T, D) all in cd (f16 or bf16), o any
 * float dtype, D <= 128, sm_80+; opted_in: the context's int[8] of shared-memory opt-ins. */
dm_status cuda_attention_tc(cudaStream_t s, const void *q, const void *k, const void *v,
                            dm_dtype cd, void *o, dm_dtype ot, int64_t BH, int Tq, int Tk, int D,
                            float scale, const cuda_att_layout *L, int *opted_in);

/* Contiguous (BH, Tq, D) / (BH, Tk, D) layout. */
static inline cuda_att_layout cuda_att_contiguous(int Tq, int Tk, int D) {
    cuda_att_layout L = {1, (long long)Tq * D, 0, D, (long long)Tk * D, 0, D,
                         (long long)Tq * D, 0, D};
    return L;
}
/* Resize (NC, H, W) -> (NC, Ho, Wo), semantics of src/nn/cpu/resize.c. */
dm_status cuda_resize(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                      int64_t NC, int H, int W, int Ho, int Wo, dm_resize_mode mode,
                      int align_corners, double scale_h, double scale_w);
/* Average pool (NC, H, W) -> (NC, Ho, Wo), kernel k, stride s, no padding, windows clipped
 * at the border and divided by their clipped size (count_include_pad=False, ceil_mode). */
dm_status cuda_avgpool2d(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                         int64_t NC, int H, int W, int Ho, int Wo, int k, int stride);
/* Max pool (NC, H, W) -> (NC, Ho, Wo), kernel k, stride, zero-cost padding `pad` (never
 * selected), ceil_mode=False; NaN propagates. */
dm_status cuda_maxpool2d(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                         int64_t NC, int H, int W, int Ho, int Wo, int k, int stride, int pad);

/* y = x * scale + shift on (N, C, HW); scale has ns = C or N*C values, either may be NULL. */
dm_status cuda_channel_affine(cudaStream_t s, const void *x, dm_dtype xt, const void *scale,
                              dm_dtype st, int64_t ns, const void *shift, dm_dtype sht, void *y,
                              dm_dtype yt, int64_t N, int64_t C, int64_t HW);
/* y (NC) = mean of each of the NC planes of HW elements. */
dm_status cuda_global_avgpool2d(cudaStream_t s, const void *x, dm_dtype xt, void *y,
                                dm_dtype yt, int64_t NC, int64_t HW);
/* y = x.permute(perm).contiguous(); xshape has ndim (<= 5) entries. */
dm_status cuda_permute(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                       int ndim, const int64_t *xshape, const int *perm);
/* rgb (N, HW, 3) u8 on the device -> y (N, 3, HW) = v / 255. */
dm_status cuda_image_from_u8(cudaStream_t s, const unsigned char *rgb, void *y, dm_dtype yt,
                             int64_t N, int64_t HW);
/* image_cubic_normalize (image_cubic.cu): rgb (N, sh, sw, 3) u8 on the device -> y (N, 3, dh,
 * dw) of dtype yt; f64 != 0: DA-V2's double arithmetic, else VDA's float one (backend.h). */
dm_status cuda_image_cubic_normalize(cudaStream_t s, const unsigned char *rgb, void *y,
                                     dm_dtype yt, int64_t N, int sh, int sw, int dh, int dw,
                                     int f64, const double mean[3], const double stdv[3]);
/* Guided-filter coefficients: m (N, 4K, HW) -> a, b (N, K, HW). */
dm_status cuda_guided_coeffs(cudaStream_t s, const void *m, dm_dtype mt, void *a, dm_dtype at,
                             void *b, dm_dtype bt, int64_t N, int64_t K, int64_t HW, float eps);
/* Matting output from a, b (N, 4, h, w) (a may be NULL) and src (N, 3, H, W) into fgr (may be
 * NULL) and pha. */
dm_status cuda_matting_compose(cudaStream_t s, const void *a, dm_dtype at, const void *b,
                               dm_dtype bt, const void *src, dm_dtype st, void *fgr, dm_dtype ft,
                               void *pha, dm_dtype pt, int64_t N, int H, int W, int h, int w);

/* --- op implementations (table entries, in backend_cuda.c / conv_cudnn.c / ...) --- */
dm_status conv2d_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                      const dm_conv2d_params *p, dm_tensor *y);
dm_status conv_transpose2d_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                                const dm_tensor *b, int stride, int pad, dm_tensor *y);
dm_status linear_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                      dm_act act, dm_tensor *y);
/* Destroys every cached cuBLASLt plan (linear_cublaslt.c); called by the backend's destroy. */
void cuda_lt_cache_free(cuda_ctx *ctx);
/* Fused conv -> bias -> activation through cuDNN's graph API (conv_fused.c). x (N, Cin, H, W)
 * and w (Cout, Cin/g, kh, kw) in the compute dtype cd, y (N, Cout, Ho, Wo) of dtype yt, all
 * packed in NCHW (nhwc 0) or NHWC (nhwc 1) memory order (dims xs, ws4, ys always in N, C, H, W
 * order); b (Cout) or NULL. Sets *done = 1 when the fused plan ran; *done = 0 (DM_OK) when the
 * call is not eligible, fusion is off (DM_CUDNN_FUSED=0) or cuDNN declined this key (remembered:
 * asked once per key): the caller then runs the unfused path. Errors only for a workspace that
 * cannot be allocated. */
dm_status cuda_conv_fused(cuda_ctx *ctx, const void *x, const void *w, const dm_tensor *b,
                          void *y, dm_dtype yt, dm_dtype cd, const int xs[4], const int ws4[4],
                          const int ys[4], const dm_conv2d_params *p, int nhwc, int *done);
/* 0 when DM_CUDNN_FUSED=0 turned every fused convolution path off for this backend. */
int cuda_conv_fused_enabled(cuda_ctx *ctx);
/* Host-only check of the fused graph of one convolution (conv_fused.c), no handle and no
 * device needed: builds every descriptor (tensors, convolution, pointwise chain, by-value
 * scalars) and finalizes the operation graph. Returns 0 (CUDNN_STATUS_SUCCESS) or the cuDNN
 * status, with the failing call and status in why. Shapes as cuda_conv_fused; alignments 16.
 * For tests/gpu/test_conv_fused_graph.c. */
int cuda_conv_fused_graph_check(const int xs[4], const int ws4[4], const int ys[4],
                                const dm_conv2d_params *p, int has_bias, dm_dtype cd,
                                dm_dtype bt, dm_dtype yt, int nhwc, char *why, size_t why_size);
/* Destroys the fused plans (conv_fused.c); called by the backend's destroy. */
void cuda_conv_fused_free(cuda_ctx *ctx);

/* ---- CUDA Graphs: the op table's graph entries (include/depthmatte/graph.h) -------------- */

/* A captured and instantiated sequence of the backend's work (cudaGraphExec_t). */
typedef struct dm_cuda_graph dm_cuda_graph;

/* Starts capturing the work queued on be's stream (cudaStreamBeginCapture, thread-local mode):
 * the ops called until dm_cuda_graph_end are recorded, not run. Everything the captured ops
 * need must exist beforehand: run the forward once eagerly with the same shapes first, so that
 * scratch buffers, cuDNN algorithms and cuBLASLt plans are in place (a scratch buffer that would
 * have to grow, an allocation, a host<->device copy or a synchronisation inside the capture
 * fails with DM_ERR_BACKEND and spoils the capture: dm_cuda_graph_end then fails too). These
 * are the CUDA backend's op-table graph entries: models use the backend-neutral
 * depthmatte/graph.h. The graph reads and writes the very device buffers the ops were given:
 * upload new inputs into the same input tensors before each dm_cuda_graph_launch. Errors:
 * DM_ERR_ARG (not a CUDA backend, already capturing), DM_ERR_BACKEND (CUDA). Source: CUDA
 * Programming Guide, "CUDA Graphs", stream capture. */
dm_status dm_cuda_graph_begin(dm_backend *be);

/* Ends the capture begun by dm_cuda_graph_begin and instantiates it into *out (free with
 * dm_cuda_graph_free). Always leaves capture mode, also when an op failed during the capture;
 * then *out is NULL and the result is DM_ERR_BACKEND (capture invalidated, or an op refused)
 * or DM_ERR_ARG (no capture running). */
dm_status dm_cuda_graph_end(dm_backend *be, dm_cuda_graph **out);

/* Replays graph g on be's stream (asynchronously, ordered with the backend's other work). */
dm_status dm_cuda_graph_launch(dm_backend *be, dm_cuda_graph *g);

/* Releases a graph (NULL is ignored). */
void dm_cuda_graph_free(dm_cuda_graph *g);

#ifdef __cplusplus
}
#endif

#endif
