/* depthmatte — the compute backend interface and the engine ops.
 *
 * A backend is a table of op implementations (dm_backend_ops) plus a context (threads,
 * scratch memory; on CUDA the stream and cuDNN/cuBLAS handles). Models call the dm_* op
 * functions below, never a backend directly. Every op writes into a caller-provided output
 * tensor whose shape the caller has already set (dm_tensor_reshape): ops never allocate
 * outputs, so a model sizes all buffers once. Ops check shapes and return DM_ERR_SHAPE with a
 * message naming the op; DM_ERR_UNSUPPORTED if the backend lacks the op or dtype.
 *
 * The CPU backend (src/nn/cpu) is the float32 reference: plain loops, OpenBLAS GEMM, OpenMP.
 * Layouts: images and feature maps are (N, C, H, W) NCHW; token sequences (N, T, C);
 * attention tensors (B, heads, T, D).
 */
#ifndef DEPTHMATTE_BACKEND_H
#define DEPTHMATTE_BACKEND_H

#include "depthmatte/tensor.h"

typedef struct dm_backend dm_backend;
struct dm_copy_ticket; /* depthmatte/copy_async.h */
typedef struct dm_op_trace dm_op_trace; /* below */

/* Pointwise activations, also fused into conv2d/linear. Definitions as in PyTorch:
 * hardswish x*relu6(x+3)/6, hardsigmoid relu6(x+3)/6, gelu exact x*Phi(x) (erf).
 * Non-finite inputs as in PyTorch 2.x: NaN stays NaN in every activation (so the pipeline's
 * non-finite guard sees it); relu(-inf) = 0, hardsigmoid(+-inf) = 1 / 0, hardswish(-inf) = NaN
 * (-inf * 0), every other value follows IEEE arithmetic of the formula. */
typedef enum dm_act {
    DM_ACT_NONE = 0,
    DM_ACT_RELU,
    DM_ACT_HARDSWISH,
    DM_ACT_HARDSIGMOID,
    DM_ACT_SIGMOID,
    DM_ACT_TANH,
    DM_ACT_GELU,
} dm_act;

typedef struct dm_conv2d_params {
    int stride_h, stride_w;     /* >= 1 */
    int pad_h, pad_w;           /* zero padding, pixels, each side */
    int dilation_h, dilation_w; /* >= 1 */
    int groups;                 /* >= 1; C_in and C_out divisible by it */
    dm_act act;                 /* applied after bias */
} dm_conv2d_params;

typedef enum dm_resize_mode {
    DM_RESIZE_BILINEAR = 0,
    DM_RESIZE_BICUBIC, /* PyTorch cubic convolution, A = -0.75, border-clamped indices */
} dm_resize_mode;

/* Arithmetic of the OpenCV bicubic resize of an image_cubic_normalize op (cv2.resize
 * INTER_CUBIC: resizeGeneric_ with HResizeCubic / VResizeCubic of the image's depth). */
typedef enum dm_cubic_arith {
    /* DA-V2 image2tensor: rgb / 255.0 in double, cv2.resize of a CV_64F image (double sums,
     * float weights promoted), normalisation in double, then rounded to float */
    DM_CUBIC_F64 = 0,
    /* Video Depth Anything: (float)rgb / 255.0f, cv2.resize of a CV_32F image (float products
     * and sums in tap order ((s0*a0 + s1*a1) + s2*a2) + s3*a3, no FMA), normalisation of the
     * float value promoted to double (numpy float64 mean/std), then rounded to float */
    DM_CUBIC_F32,
} dm_cubic_arith;

/* Parameters of image_cubic_normalize: y = (resize(rgb / 255) - mean[c]) / std[c]. */
typedef struct dm_image_norm_params {
    dm_cubic_arith arith;
    double mean[3], std[3]; /* per RGB channel, of the [0, 1] image (ImageNet: 0.485 ...) */
} dm_image_norm_params;

typedef enum dm_binary_op {
    DM_BINARY_ADD = 0,
    DM_BINARY_SUB,
    DM_BINARY_MUL,
} dm_binary_op;

/* Op identifiers, one per entry of dm_backend_ops (same order): for the "supports" query and
 * for naming ops in selftest tables and verification messages. */
typedef enum dm_op_id {
    DM_OP_CONV2D = 0,
    DM_OP_CONV_TRANSPOSE2D,
    DM_OP_LINEAR,
    DM_OP_LAYERNORM,
    DM_OP_GROUPNORM,
    DM_OP_ACTIVATION,
    DM_OP_BINARY,
    DM_OP_ATTENTION,
    DM_OP_RESIZE,
    DM_OP_AVGPOOL2D,
    DM_OP_GLOBAL_AVGPOOL2D,
    DM_OP_CHANNEL_AFFINE,
    DM_OP_IMAGE_FROM_U8,
    DM_OP_GUIDED_COEFFS,
    DM_OP_MATTING_COMPOSE,
    DM_OP_PERMUTE,
    DM_OP_CONCAT,
    DM_OP_COPY,
    DM_OP_ALLOC,
    DM_OP_MAXPOOL2D,
    DM_OP_ATTENTION_QKV,
    DM_OP_IMAGE_CUBIC_NORMALIZE,
    DM_OP_COUNT_NONFINITE,
    DM_OP_COUNT
} dm_op_id;

/* One operand of an op descriptor: dtype and shape only (no data). */
typedef struct dm_op_operand {
    int present;  /* 0: an optional operand not given (a conv without bias) */
    dm_dtype dtype;
    int ndim;
    int64_t shape[DM_MAX_DIMS];
} dm_op_operand;

#define DM_OP_MAX_OPERANDS 5
#define DM_OP_MAX_PARAMS 8

/* An op as a backend's "supports" query sees it (ggml's supports_op takes the op's node:
 * ggml-backend.h ggml_backend_dev_supports_op): the op, the storage dtype asked about, and,
 * when known, its operands' dtypes and shapes and its integer parameters. The ops' entry points
 * (dm_conv2d ...) fill one per call from their arguments (dm_op_desc_of below) and ask the
 * backend before dispatching, so a backend refuses a shape its kernels do not take with one
 * clear line instead of an error from inside a kernel launch.
 *
 * Operands t[0..n) are in the order of the op entry's tensor arguments (inputs, then outputs),
 * e.g. conv2d: x, w, b, y; attention: q, k, v, o; attention_qkv: qkv, o; count_nonfinite: t,
 * count. n == 0 is a dtype-only query (dm_backend_supports): "does the backend run this op on
 * tensors of `dtype` at all". Parameters iv[] (unused ones 0):
 *   conv2d: stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, act;
 *   conv_transpose2d: stride, pad; linear / activation: act; groupnorm: groups;
 *   binary: op; attention_qkv: heads; resize: mode, align_corners; avgpool2d: k, s;
 *   maxpool2d: k, s, pad; permute: perm[0..ndim); image_cubic_normalize: arith;
 *   count_nonfinite: accumulate. */
typedef struct dm_op_desc {
    dm_op_id op;
    dm_dtype dtype; /* the storage dtype (a call: the backend's dm_backend_storage_dtype) */
    int n;          /* operands described (0: dtype-only query) */
    dm_op_operand t[DM_OP_MAX_OPERANDS];
    int iv[DM_OP_MAX_PARAMS];
} dm_op_desc;

typedef struct dm_backend_ops {
    const char *name;
    /* Does this backend run op d->op with d's dtype (and, when d->n > 0, these operand dtypes,
     * shapes and parameters)? Answered without touching any tensor (as ggml's supports_op). 1:
     * yes; 0: no, and, when `why` is given, one phrase saying what is refused and the limit
     * (e.g. "head dim 160 (the CUDA attention kernels take 1..128)"), always terminated.
     * NULL: every op whose entry is non-NULL, f32 only, any shape (the CPU reference). */
    int (*supports)(const dm_backend *be, const dm_op_desc *d, char *why, size_t size);
    /* y (N, Cout, Ho, Wo) = act(conv(x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw)) + b (Cout));
     * b may be NULL. Ho = (H + 2*pad_h - dilation_h*(kh-1) - 1)/stride_h + 1. */
    dm_status (*conv2d)(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                        const dm_tensor *b, const dm_conv2d_params *p, dm_tensor *y);
    /* y (N, Cout, Ho, Wo) = conv_transpose(x (N, Cin, H, W), w (Cin, Cout, kh, kw)) + b;
     * Ho = (H-1)*stride - 2*pad + kh. Groups 1, dilation 1. */
    dm_status (*conv_transpose2d)(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                                  const dm_tensor *b, int stride, int pad, dm_tensor *y);
    /* y (M, N) = act(x (M, K) @ w (N, K)^T + b (N)); leading dims of x/y are flattened. */
    dm_status (*linear)(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                        const dm_tensor *b, dm_act act, dm_tensor *y);
    /* LayerNorm over the last dim C of x (..., C): y = (x-mean)/sqrt(var+eps)*gamma + beta. */
    dm_status (*layernorm)(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                           const dm_tensor *beta, float eps, dm_tensor *y);
    /* GroupNorm on x (N, C, ...) with `groups` groups (biased variance), per-channel affine. */
    dm_status (*groupnorm)(dm_backend *be, const dm_tensor *x, int groups,
                           const dm_tensor *gamma, const dm_tensor *beta, float eps,
                           dm_tensor *y);
    /* y = act(x) elementwise; y may alias x. */
    dm_status (*activation)(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y);
    /* y = a op b with b broadcast over leading dims when b has fewer elements and its numel
     * divides a's (trailing-dims broadcast, e.g. (N,T,C) op (C)); y may alias a. */
    dm_status (*binary)(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                        dm_binary_op op, dm_tensor *y);
    /* Softmax attention: o (B, Hd, Tq, D) = softmax(q k^T * scale) v with q (B, Hd, Tq, D),
     * k, v (B, Hd, Tk, D). */
    dm_status (*attention)(dm_backend *be, const dm_tensor *q, const dm_tensor *k,
                           const dm_tensor *v, float scale, dm_tensor *o);
    /* Resize x (N, C, H, W) to y's (Ho, Wo). align_corners as in F.interpolate. When
     * scale_h/scale_w > 0 (and align_corners is 0) they map coordinates as
     * src = (dst + 0.5) / scale - 0.5 (F.interpolate with scale_factor and
     * recompute_scale_factor=False); when 0, scale = Ho/H. */
    dm_status (*resize)(dm_backend *be, const dm_tensor *x, dm_resize_mode mode,
                        int align_corners, double scale_h, double scale_w, dm_tensor *y);
    /* Average pooling, square kernel k, stride s, no padding, ceil_mode=True,
     * count_include_pad=False: x (N, C, H, W) -> y (N, C, ceil((H-k)/s)+1, ...). */
    dm_status (*avgpool2d)(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y);
    /* Global average pooling (nn.AdaptiveAvgPool2d(1)): x (N, C, H, W) -> y (N, C, 1, 1). */
    dm_status (*global_avgpool2d)(dm_backend *be, const dm_tensor *x, dm_tensor *y);
    /* Per-channel affine: y (N, C, H, W) = x * scale + shift, scale with C values (per channel)
     * or N*C values (per image and channel, e.g. (N, C, 1, 1) gates), shift with C values;
     * either may be NULL (1 / 0). y may alias x. */
    dm_status (*channel_affine)(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                                const dm_tensor *shift, dm_tensor *y);
    /* u8 interleaved RGB rgb (N, H, W, 3) -> y (N, 3, H, W) f32 = value / 255 (a division,
     * bit-identical to PyTorch's `/ 255`). rgb is a CPU tensor on every backend. */
    dm_status (*image_from_u8)(dm_backend *be, const dm_tensor *rgb, dm_tensor *y);
    /* Fast guided filter coefficients (He et al. 2013; RVM model/fast_guided_filter.py) from
     * box means m (N, 4K, h, w) = [mean_x, mean_y, mean_xy, mean_xx] (K channels each):
     * a = (mean_xy - mean_x*mean_y) / (mean_xx - mean_x*mean_x + eps), b = mean_y - a*mean_x,
     * a, b (N, K, h, w). */
    dm_status (*guided_coeffs)(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                               dm_tensor *b);
    /* Matting output (RVM refiners + MattingNetwork.forward tail): a, b (N, 4, h, w) are
     * bilinearly resized (F.interpolate size=(H, W), align_corners=False) and applied to the
     * guide [src, mean over channels of src]: out = a*guide + b; without a (NULL), out = b and
     * (h, w) must equal (H, W). fgr (N, 3, H, W) = clamp(out[:3] + src, 0, 1) (skipped when
     * NULL), pha (N, 1, H, W) = clamp(out[3], 0, 1); NaN stays NaN. src (N, 3, H, W). */
    dm_status (*matting_compose)(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                                 const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha);
    /* y = x.permute(perm) made contiguous (torch.Tensor.permute): y->shape[i] ==
     * x->shape[perm[i]], x->ndim entries in perm. E.g. tokens (N, T, C) -> (N, C, T). */
    dm_status (*permute)(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y);
    /* Concatenate along dim 1 (channels for NCHW): y (N, Ca+Cb, ...) = [a, b]. */
    dm_status (*concat)(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_tensor *y);
    /* Copy between tensors of equal numel (may cross devices and convert dtype). Into host
     * memory it returns when the values are there; dm_copy_async (copy_async.h) queues it. */
    dm_status (*copy)(dm_backend *be, const dm_tensor *src, dm_tensor *dst);
    /* Allocates a tensor in this backend's memory (zero-filled). */
    dm_status (*alloc)(dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim,
                       const int64_t *shape);
    /* Max pooling, torch.nn.MaxPool2d(k, s, padding=pad, dilation=1, ceil_mode=False):
     * x (N, C, H, W) -> y (N, C, (H + 2*pad - k)/s + 1, (W + 2*pad - k)/s + 1); the padding
     * is -inf (never selected), 0 <= pad <= k/2 (PyTorch's limit), NaN propagates as in
     * aten's max_pool2d. Used by the ResNet-50 stem (k 3, s 2, pad 1). */
    dm_status (*maxpool2d)(dm_backend *be, const dm_tensor *x, int k, int s, int pad,
                           dm_tensor *y);
    /* Multi-head self-attention read straight from a qkv linear's output (ViT blocks; timm /
     * DINOv2 `qkv(x).reshape(B, T, 3, heads, D)`): qkv (B, T, 3*C) holds (B, T, 3, heads, D),
     * C = heads * D; o (B, T, C) receives (B, T, heads, D) = softmax(q k^T * scale) v per
     * (batch, head). Equals the split permute (2, 0, 3, 1, 4), attention and the merge permute
     * (0, 2, 1, 3) (the CPU reference computes exactly that, so its result is bitwise the
     * separate ops'). o must not alias qkv. */
    dm_status (*attention_qkv)(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                               dm_tensor *o);
    /* Network input from video frames in one op: rgb (N, H, W, 3) u8 interleaved RGB, a tensor
     * of this backend's device (on a device backend only the u8 frame is uploaded), ->
     * rgb / 255 -> OpenCV bicubic resize (cv2.resize INTER_CUBIC, modules/imgproc/src/
     * resize.cpp: per axis scale = 1 / (dsize / ssize), fx = (float)((dx + 0.5) * scale - 0.5),
     * sx = floor(fx); Keys weights in float with A = -0.75, the last one 1 - the other three;
     * taps sx-1..sx+2 clamped to the border (BORDER_REPLICATE); horizontal pass first; equal
     * sizes copy) to y's (h, w) -> (v - mean[c]) / std[c] -> y (N, 3, h, w) NCHW. p->arith
     * selects the arithmetic of DA-V2 (double) or VDA (float). */
    dm_status (*image_cubic_normalize)(dm_backend *be, const dm_tensor *rgb,
                                       const dm_image_norm_params *p, dm_tensor *y);
    /* The number of NaN, +Inf and -Inf elements of t (any shape, a float tensor of this
     * backend: f32 on the CPU, f32/f16/bf16 on a device), counted where t lives into `count`:
     * an i64 tensor of this backend with G >= 1 elements, G dividing numel(t); count[g] is the
     * count of the g-th of G equal contiguous blocks of t (G = N: one count per frame of an
     * (N, ...) output), added to count[g] when `accumulate` is 1, stored when 0. Queued in
     * stream order like any op: nothing waits, and a graph capture may hold it. The host reads
     * the counts with a download (dm_copy_async, depthmatte/copy_async.h), which is how the
     * models run the pipeline's non-finite guard (issue 10: "every output frame's NaN/Inf
     * count is computed on the device") without synchronising the compute stream. */
    dm_status (*count_nonfinite)(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                                 int accumulate);
    /* Waits until queued work is done (no-op on CPU). */
    dm_status (*synchronize)(dm_backend *be);
    void (*destroy)(dm_backend *be);
    /* Graph capture (a CUDA Graph, or its emulation): all four NULL when the backend has none
     * (dm_backend_supports_graphs; the CPU backend runs every op at once). graph_begin starts
     * recording the ops called on be (recorded, not run); graph_end stops it and returns the
     * backend's graph object in *impl (NULL and DM_ERR_BACKEND when an op inside the capture
     * was refused: an allocation, a host<->device copy, a synchronisation); graph_launch
     * replays it on be; graph_free releases it. Wrapped by depthmatte/graph.h (dm_graph_*). */
    dm_status (*graph_begin)(dm_backend *be);
    dm_status (*graph_end)(dm_backend *be, void **impl);
    dm_status (*graph_launch)(dm_backend *be, void *impl);
    void (*graph_free)(dm_backend *be, void *impl);
    /* Asynchronous downloads (depthmatte/copy_async.h, which wraps them): both NULL when the
     * backend has none (the CPU: dm_copy_async is then a synchronous dm_copy). copy_async
     * queues the copy of device tensor src into host tensor dst, ordered after the work queued
     * before it, and fills *ticket (id != 0); copy_wait returns when that copy and every
     * earlier one have landed. Both refuse to run inside a graph capture. */
    dm_status (*copy_async)(dm_backend *be, const dm_tensor *src, dm_tensor *dst,
                            struct dm_copy_ticket *ticket);
    dm_status (*copy_wait)(dm_backend *be, struct dm_copy_ticket *ticket);
} dm_backend_ops;

struct dm_backend {
    const dm_backend_ops *ops;
    dm_device device;
    dm_dtype precision; /* compute precision: f32, f16 or bf16 (tolerances, non-finite guard) */
    dm_dtype storage;   /* dtype models allocate weights and activations in */
    int threads;   /* CPU threads (OpenMP/OpenBLAS) */
    void *scratch; /* growable workspace (im2col etc.), grown rarely, never shrunk */
    size_t scratch_size;
    void *scratch_aux; /* second workspace (dm_backend_scratch_aux) */
    size_t scratch_aux_size;
    void *impl;    /* backend-private context (CUDA handles, streams) */
    dm_op_trace *trace; /* attached op trace (dm_backend_trace), NULL when none */
};

/* Creates the CPU reference backend with `threads` threads (0: OpenMP default).
 * Returns NULL on allocation failure. Free with dm_backend_destroy. */
dm_backend *dm_backend_cpu_create(int threads);

/* Destroys any backend (NULL is ignored). */
void dm_backend_destroy(dm_backend *be);

/* Compute precision of a backend (DM_DTYPE_F32 for the CPU reference; f16/bf16 for a CUDA or
 * emulated backend created so). Decides the verification tolerance and whether a non-finite
 * frame is recomputed in f32 (pipeline). */
dm_dtype dm_backend_precision(const dm_backend *be);

/* The dtype models allocate their weights and activations in on this backend (equals the
 * precision on CUDA and on the emulated backend; f32 on the CPU). */
dm_dtype dm_backend_storage_dtype(const dm_backend *be);

/* The dtype models keep their residual streams in (a tensor that many ops add small updates
 * to: a ViT's tokens across its blocks, x = x + attn(norm(x)) ...; the motion modules' hidden
 * states): f32 on every backend, whatever the precision. Stored in f16 such a stream loses the
 * low bits of every update (its magnitude grows across blocks while the updates stay small);
 * PyTorch's autocast keeps it in f32 likewise (an add of an f16 matmul output to an f32 tensor
 * promotes to f32), which is what the official VDA/DA-V2 reduced-precision modes run
 * (benchmarks/RESULTS.md "Reduced precision"). The ops read and write mixed dtypes (an f32
 * stream, f16 weights and activations), accumulating in f32. */
dm_dtype dm_backend_residual_dtype(const dm_backend *be);

/* 1 when `be`'s op table has an entry for op (whatever dtypes it takes), else 0. */
int dm_backend_has_op(const dm_backend *be, dm_op_id op);

/* 1 when `be` runs op `op` on tensors of `dtype` (a dtype-only query: dm_backend_ops.supports
 * with no operands), else 0. */
int dm_backend_supports(const dm_backend *be, dm_op_id op, dm_dtype dtype);

/* 1 when `be` runs the op described by d (its operands' dtypes and shapes, its parameters;
 * dm_backend_ops.supports), else 0 with the reason in why[0..size) when why is given (also
 * for an op the backend lacks: "not implemented"). be or d NULL: 0. */
int dm_backend_supports_op(const dm_backend *be, const dm_op_desc *d, char *why, size_t size);

/* Fills d for op `op` on backend be (dtype: be's storage dtype) from the call's tensors
 * ts[0..n) (NULL: an absent optional operand; n <= DM_OP_MAX_OPERANDS) and parameters
 * iv[0..niv) (niv <= DM_OP_MAX_PARAMS; the rest 0). What every op entry point does before
 * asking the backend; public for tests and traces. */
void dm_op_desc_of(dm_op_desc *d, const dm_backend *be, dm_op_id op, const dm_tensor *const *ts,
                   int n, const int *iv, int niv);

/* Writes a one-line description of d into buf[0..size) (always terminated), e.g.
 * "attention_qkv f16 (1, 1370, 1152) (1, 1370, 384) [6]": op, dtype, each operand's shape in
 * order ("-" for an absent one, dtype named when it differs), then the non-zero parameters.
 * Returns buf. */
char *dm_op_desc_format(const dm_op_desc *d, char *buf, size_t size);

/* A trace: the distinct op descriptors called on a backend while the trace is attached
 * (dm_backend_trace), with how often each was called; what a model actually runs at one input
 * size, to ask another backend about (dm_op_trace_check) before running it there. */
struct dm_op_trace {
    dm_op_desc *desc;
    int64_t *calls; /* calls[i]: calls of desc[i] */
    int n, cap;
    int nomem; /* an entry could not be appended (the trace is incomplete) */
};

/* Attaches trace t (zero-initialised or holding earlier entries) to be: every op call on be
 * (allocations and copies included) adds its descriptor (an exact duplicate only counts a
 * call). NULL detaches. The caller keeps t; one trace per backend at a time. */
void dm_backend_trace(dm_backend *be, dm_op_trace *t);

/* Releases the trace's entries (t itself is the caller's; zeroed after). */
void dm_op_trace_free(dm_op_trace *t);

/* Asks backend be about every entry of t, with the operands' float dtypes replaced by be's
 * storage dtype where they were the tracing backend's storage dtype `traced_storage` (a trace
 * made on the CPU (f32) asks a f16 backend about f16 activations; f32 residual streams and u8
 * / i64 operands stay). 1 when all are supported; else 0 and, when why is given, the first
 * refused op's description and the reason. A trace with nomem set: 0 ("incomplete trace"). */
int dm_op_trace_check(const dm_backend *be, const dm_op_trace *t, dm_dtype traced_storage,
                      char *why, size_t size);

/* 1 when `be` runs every op of ops[0..n) in its storage dtype; else 0 and, when `missing` is
 * given, the first missing op's name is written there (always terminated). Models publish the
 * op lists they need (rvm_required_ops, da2_required_ops, vda_required_ops). */
int dm_backend_supports_all(const dm_backend *be, const dm_op_id *ops, int n, char *missing,
                            size_t size);

/* 1 when `be` can capture a sequence of ops into a graph and replay it (the graph_* entries of
 * its op table: CUDA Graphs on CUDA, a recording on the emulated backend), else 0 (CPU). */
int dm_backend_supports_graphs(const dm_backend *be);

/* Short name of an op ("conv2d", "linear", ...); "?" when out of range. */
const char *dm_op_name(dm_op_id op);

/* Moves a host (CPU, f32) tensor `t` onto backend `be` in dtype `dtype`: a new tensor of the
 * backend (dm_alloc), the values copied and converted (dm_copy), the host buffer freed, `t`
 * replaced. A no-op on the CPU backend when dtype is t's. Used once at model load so that the
 * frame loop never converts weights. Errors as dm_alloc / dm_copy (t unchanged then). */
dm_status dm_tensor_upload(dm_backend *be, dm_tensor *t, dm_dtype dtype);

/* Returns scratch memory of at least `bytes` (grows the backend's workspace; NULL on OOM). */
void *dm_backend_scratch(dm_backend *be, size_t bytes);

/* A second workspace of at least `bytes`, for an op that holds temporaries while it calls
 * other ops which use dm_backend_scratch (attention_qkv's split heads around attention).
 * Grown rarely, never shrunk, freed with the backend; NULL on OOM. */
void *dm_backend_scratch_aux(dm_backend *be, size_t bytes);

/* Op entry points: check that the backend implements the op, then dispatch. Semantics as in
 * dm_backend_ops above. */
dm_status dm_conv2d(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                    const dm_conv2d_params *p, dm_tensor *y);
dm_status dm_conv_transpose2d(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                              const dm_tensor *b, int stride, int pad, dm_tensor *y);
dm_status dm_linear(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                    dm_act act, dm_tensor *y);
dm_status dm_layernorm(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                       const dm_tensor *beta, float eps, dm_tensor *y);
dm_status dm_groupnorm(dm_backend *be, const dm_tensor *x, int groups, const dm_tensor *gamma,
                       const dm_tensor *beta, float eps, dm_tensor *y);
dm_status dm_activation(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y);
dm_status dm_binary(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_binary_op op,
                    dm_tensor *y);
dm_status dm_attention(dm_backend *be, const dm_tensor *q, const dm_tensor *k,
                       const dm_tensor *v, float scale, dm_tensor *o);
dm_status dm_resize(dm_backend *be, const dm_tensor *x, dm_resize_mode mode, int align_corners,
                    double scale_h, double scale_w, dm_tensor *y);
dm_status dm_avgpool2d(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y);
dm_status dm_global_avgpool2d(dm_backend *be, const dm_tensor *x, dm_tensor *y);
dm_status dm_maxpool2d(dm_backend *be, const dm_tensor *x, int k, int s, int pad, dm_tensor *y);
dm_status dm_attention_qkv(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                           dm_tensor *o);
dm_status dm_image_cubic_normalize(dm_backend *be, const dm_tensor *rgb,
                                   const dm_image_norm_params *p, dm_tensor *y);
dm_status dm_count_nonfinite(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                             int accumulate);
/* One count of the whole of t, read back at once: a (1,) i64 tensor allocated on be, the op
 * above, a download, the tensor freed. It allocates and waits for queued work, so it is for
 * tests and one-off checks; a frame loop keeps its counter and downloads it asynchronously.
 * Errors as the op, DM_ERR_NOMEM. */
dm_status dm_count_nonfinite_now(dm_backend *be, const dm_tensor *t, int64_t *count);
dm_status dm_channel_affine(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                            const dm_tensor *shift, dm_tensor *y);
dm_status dm_image_from_u8(dm_backend *be, const dm_tensor *rgb, dm_tensor *y);
dm_status dm_guided_coeffs(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                           dm_tensor *b);
dm_status dm_matting_compose(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                             const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha);
dm_status dm_permute(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y);
dm_status dm_concat(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_tensor *y);
dm_status dm_copy(dm_backend *be, const dm_tensor *src, dm_tensor *dst);
dm_status dm_alloc(dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim, const int64_t *shape);
dm_status dm_synchronize(dm_backend *be);

/* Convenience: conv params with stride s, padding p, dilation 1, groups g, activation act. */
dm_conv2d_params dm_conv2d_params_make(int s, int p, int g, dm_act act);

#endif
