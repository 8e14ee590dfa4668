/* depthmatte — the CUDA backend (cuDNN convolutions, cuBLASLt GEMMs, own kernels) and device
 * queries.
 *
 * The backend implements the op table of depthmatte/backend.h for tensors with
 * device == DM_DEVICE_CUDA. Every op accepts f32, f16 or bf16 per tensor (inputs and outputs
 * may differ: e.g. an f16 x with an f32 bias into an f32 y) and accumulates in f32. f32 math is
 * strict IEEE f32 (TF32 tensor cores are disabled: cuDNN CUDNN_FMA_MATH, cuBLASLt
 * CUBLAS_COMPUTE_32F), so f32 results match the CPU reference to rounding noise.
 * All work is queued on the backend's one stream; dm_synchronize() waits for it, and copies to a
 * CPU tensor return only when the data has arrived.
 *
 * When the build has no CUDA (DM_HAVE_CUDA undefined) every function here is a stub returning
 * DM_ERR_UNSUPPORTED (dm_cuda_device_count reports 0 devices and also returns
 * DM_ERR_UNSUPPORTED).
 *
 * STATUS: compiled and linked against CUDA 13 / cuDNN 9 / cuBLASLt, but NOT yet run on a GPU.
 * See docs/gpu.md for how to run tests/gpu on a GPU machine.
 */
#ifndef DEPTHMATTE_BACKEND_CUDA_H
#define DEPTHMATTE_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "depthmatte/backend.h"

/* Creates a CUDA backend on device `device_index` (0-based, as cudaSetDevice) with one
 * non-blocking stream, a cuDNN handle, a cuBLASLt handle and growable device workspaces.
 * `precision` (DM_DTYPE_F32, _F16 or _BF16) is the dtype models should allocate activations and
 * weights in (dm_backend_cuda_precision); the ops themselves follow each tensor's dtype.
 * Before any handle is made it checks that the build has GPU code for the device: its compute
 * capability against the build's CMAKE_CUDA_ARCHITECTURES (compile definition DM_CUDA_ARCHS,
 * dm_cuda_arch_runs), then cudaFuncGetAttributes on one of our kernels (no kernel image /
 * invalid device function: the same refusal).
 * On success *out is the backend (free with dm_backend_destroy). Errors: DM_ERR_ARG (bad
 * precision or device index), DM_ERR_BACKEND (CUDA/cuDNN/cuBLASLt failure, message names the
 * call), DM_ERR_NOMEM, DM_ERR_UNSUPPORTED (this build cannot run on this device: no GPU code for
 * its compute capability, one line from dm_cuda_arch_message naming the device, its compute
 * capability, the build's architectures and how to rebuild; or a build without CUDA).
 * runtime.backend auto falls back to the CPU on DM_ERR_UNSUPPORTED only. */
dm_status dm_backend_cuda_create(int device_index, dm_dtype precision, dm_backend **out);

/* Compute precision chosen at creation (DM_DTYPE_F32/F16/BF16); F32 for a non-CUDA backend. */
dm_dtype dm_backend_cuda_precision(const dm_backend *be);

/* The backend's cudaStream_t (as void *, so this header needs no CUDA headers); NULL for a
 * non-CUDA backend. Lets the pipeline order its own copies/events with the ops. */
void *dm_backend_cuda_stream(const dm_backend *be);

/* The device index a CUDA backend runs on into *device. DM_ERR_ARG for another backend. */
dm_status dm_cuda_backend_device(const dm_backend *be, int *device);

/* Number of visible CUDA devices into *count (0 when the driver reports none or no driver is
 * installed: then DM_OK with *count = 0). A driver that is installed but too old for the build's
 * CUDA runtime (cudaErrorInsufficientDriver with cudaDriverGetVersion > 0) is DM_ERR_BACKEND with
 * one line naming the CUDA version the driver supports and the one needed
 * (dm_cuda_driver_message). DM_ERR_UNSUPPORTED without CUDA (and *count = 0). */
dm_status dm_cuda_device_count(int *count);

/* Device name ("NVIDIA H200") into buf (always terminated). DM_ERR_ARG for a bad index. */
dm_status dm_cuda_device_name(int device_index, char *buf, size_t size);

/* Device UUID as "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (as nvidia-smi -L prints it) into
 * buf (at least 41 bytes). Used to tell apart GPUs of different nodes/ranks in statistics. */
dm_status dm_cuda_device_uuid(int device_index, char *buf, size_t size);

/* Free and total device memory of device_index, bytes (cudaMemGetInfo). */
dm_status dm_cuda_device_memory(int device_index, size_t *free_bytes, size_t *total_bytes);

/* Device memory that the CUDA backends of this process allocated themselves with cudaMalloc on
 * one device: tensors from the alloc op (256-byte rounded), scratch slots (retired ones
 * included until the backend is destroyed) and dm_copy_async's download stages. Not counted:
 * the CUDA context, cuDNN/cuBLASLt handles and anything those libraries allocate internally
 * (CUDA Graph instantiation included), pinned host memory. So peak_bytes is the figure to set
 * beside PyTorch's torch.cuda.max_memory_allocated(); cudaMemGetInfo (dm_cuda_device_memory)
 * sees everything. */
typedef struct dm_cuda_alloc_counts {
    size_t current_bytes; /* held now */
    size_t peak_bytes;    /* most held at once since the process started */
    long long allocs;     /* cudaMalloc calls counted */
    long long frees;      /* cudaFree calls of counted allocations */
} dm_cuda_alloc_counts;

/* Fills *out for device_index (zeros for a device no backend allocated on). Errors: DM_ERR_ARG
 * (out NULL, device_index outside 0..63), DM_ERR_UNSUPPORTED (build without CUDA). */
dm_status dm_cuda_alloc_stats(int device_index, dm_cuda_alloc_counts *out);

/* Same as dm_tensor_free (which releases the memory of any backend); kept for callers that
 * predate that. Safe on a zeroed struct. */
void dm_cuda_tensor_free(dm_tensor *t);

/* Releases device memory from the CUDA backend's alloc op (cudaFree; waits for queued work).
 * Called by dm_tensor_free for DM_DEVICE_CUDA tensors; a no-op on NULL and without CUDA. */
void dm_cuda_buffer_free(void *data);

/* The op table's count_nonfinite (backend.h): NaN and +-Inf elements of a CUDA tensor
 * (f32/f16/bf16), per contiguous block, into a CUDA i64 counter (one memset unless accumulate,
 * one reduction kernel per block, atomics); queued on the stream, no wait, capturable. For the
 * pipeline's non-finite guard (a frame with count > 0 is redone in f32). Errors: DM_ERR_ARG
 * (not CUDA tensors), DM_ERR_DTYPE, DM_ERR_SHAPE (the counts do not divide t). */
dm_status dm_cuda_count_nonfinite(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                                  int accumulate);

/* Test hook: grows every device scratch slot of be's context to at least `bytes` (as a later,
 * larger op of another model does), fills the new slots with 0xFF bytes (NaN in every float
 * dtype) and waits. A CUDA Graph captured before must still replay correctly: the slots it
 * holds stay allocated (retired, freed at destroy). Errors: DM_ERR_ARG (not CUDA),
 * DM_ERR_NOMEM, DM_ERR_BACKEND. */
dm_status dm_cuda_debug_grow_scratch(dm_backend *be, size_t bytes);

/* Softmax over the last dim of x (..., C) into y (same shape; any float dtypes), computed in f32
 * with the max subtracted first (as torch.softmax). Not part of the op table (the models use
 * the fused attention op); kept for tests and diagnostics. */
dm_status dm_cuda_softmax(dm_backend *be, const dm_tensor *x, dm_tensor *y);

/* Multi-head self-attention read straight from a qkv linear's output, so that the two permutes
 * around dm_attention disappear (ViT blocks): qkv (B, T, 3*C) holds (B, T, 3, heads, D) with
 * C = heads * D (the layout of timm/DINOv2's `qkv(x).reshape(B, N, 3, H, D)`), o (B, T, C)
 * receives (B, T, heads, D) = softmax(q k^T * scale) v per head, i.e. what dm_attention followed
 * by the merge permute gives. f16/bf16 (or an f32 qkv on a float16/bfloat16 backend) run on the
 * tensor-core kernel, strict f32 on the CUDA-core one; D <= 128. Errors: DM_ERR_ARG (not a CUDA
 * backend), DM_ERR_SHAPE, DM_ERR_UNSUPPORTED (D > 128), DM_ERR_DTYPE. This is the CUDA entry of
 * the op table's attention_qkv (dm_attention_qkv, depthmatte/backend.h; CPU reference
 * src/nn/cpu/attention_qkv.c), which DINOv2 calls on every backend that has it. */
dm_status dm_cuda_attention_qkv(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                                dm_tensor *o);

/* ---- host threads and pinned host memory (the pipeline's overlap, docs/gpu.md) ----------- */

/* Makes the calling host thread run be's work on be's device (cudaSetDevice: the CUDA
 * runtime's current device is per host thread, so a thread other than the one that created the
 * backend must call this before its first op). Call it only while no other thread uses be. A
 * CUDA Graph capture of be (dm_cuda_graph_begin) is thread-local: the capturing thread must be
 * the one that ends it, and other threads' CUDA calls do not invalidate it. DM_OK for a non-CUDA
 * backend (nothing to do); DM_ERR_BACKEND (CUDA). */
dm_status dm_cuda_backend_bind_thread(const dm_backend *be);

/* Page-locked host memory of `bytes` bytes for device->host copies of be's outputs
 * (cudaHostAlloc, portable: usable from every host thread), so that the copy runs at full PCIe
 * speed and can be asynchronous. *out is NULL on error. DM_ERR_NOMEM (names the size),
 * DM_ERR_ARG (not a CUDA backend), DM_ERR_UNSUPPORTED (build without CUDA). Free with
 * dm_cuda_host_free. Not yet run on a GPU. */
dm_status dm_cuda_host_alloc(const dm_backend *be, size_t bytes, void **out);

/* Releases memory from dm_cuda_host_alloc (cudaFreeHost); NULL is ignored. */
void dm_cuda_host_free(void *p);

/* CUDA Graphs: the CUDA backend's op-table graph entries (src/nn/cuda/cuda_common.h); models
 * and tests use the backend-neutral include/depthmatte/graph.h. */

/* Counters of the fused conv2d epilogues (cuDNN graph API: conv -> bias -> activation, see
 * docs/gpu.md) of one CUDA backend since its creation. */
typedef struct dm_cuda_fused_stats {
    int enabled;         /* 0: DM_CUDNN_FUSED=0 in the environment turned fusion off */
    long long plans;     /* execution plans built (one per distinct shape/dtype/alignment key) */
    long long declined;  /* keys cuDNN declined (no engine, finalize or execution failure) */
    long long runs;      /* conv2d calls that ran fused */
    long long fallbacks; /* eligible calls that took the unfused path because of a decline */
    double build_s;      /* wall seconds spent building plans (heuristics, finalize, runtime
                          * compilation), declined keys included */
    char last_decline[320]; /* the latest declined key and the cuDNN call + status; "" none */
} dm_cuda_fused_stats;

/* Fills *out for backend be. Errors: DM_ERR_ARG (not a CUDA backend), DM_ERR_UNSUPPORTED (a
 * build without CUDA). */
dm_status dm_cuda_conv_fused_stats(dm_backend *be, dm_cuda_fused_stats *out);

/* ---- pure helpers (no CUDA needed: built and unit-tested in every configuration) ---------- */

/* 1 when a cuDNN status code is in cuDNN 9's NOT_SUPPORTED category (CUDNN_STATUS_CATEGORY(s)
 * == CUDNN_STATUS_NOT_SUPPORTED = 3000, i.e. 3000 and the sub-codes 3001..3014 such as
 * CUDNN_STATUS_NOT_SUPPORTED_SHAPE), 0 for success and every other category. The convolution
 * code falls back from a fused cuDNN call on this, and treats anything else as an error. */
int dm_cudnn_status_is_not_supported(int status);

/* When the installed driver is too old for the CUDA runtime the build uses, writes one line into
 * buf (always terminated) naming both CUDA versions (encoded as cudaDriverGetVersion /
 * cudaRuntimeGetVersion do: 1000 * major + 10 * minor), the Linux driver branch needed and the
 * two ways out, and returns 1. Returns 0 (buf empty) when the driver is new enough under CUDA's
 * minor-version compatibility (same major version or newer) or when driver_version is 0 (no
 * driver installed: the caller reports "no GPU" instead). */
int dm_cuda_driver_message(int driver_version, int runtime_version, char *buf, size_t size);

/* Whether a build compiled for the CUDA architectures `archs` has GPU code that runs on a
 * device of compute capability cc_major.cc_minor (cudaDevAttrComputeCapabilityMajor/Minor, e.g.
 * 8, 0 for an A100). `archs` is CMAKE_CUDA_ARCHITECTURES as CMake spells it: entries separated
 * by ';' (also ',' or blanks), each "XY" (cubin + PTX), "XY-real" (cubin sm_XY), "XY-virtual"
 * (PTX compute_XY), with an optional 'a' (architecture-specific: "90a-real") or 'f'
 * (family-specific: "100f") after the number; or one of the keywords "all", "all-major",
 * "native". Rules (CUDA C++ Programming Guide, "Binary Compatibility" and "PTX Compatibility";
 * nvcc manual on architecture- and family-specific targets): a cubin for X.Y runs on X.Z with
 * Z >= Y (same major only); PTX for X.Y is JIT-compiled by the driver for every CC >= X.Y;
 * 'a' code (cubin or PTX) runs only on exactly X.Y; 'f' code only on X.Z with Z >= Y.
 * "all" and "all-major" count as covering (they embed PTX of the newest architecture), and so
 * does "native" (code for the build machine's own GPUs; a build moved to another GPU is caught
 * by the kernel probe of dm_backend_cuda_create). Returns 1 (runs), 0 (no code for this device),
 * -1 (cannot tell: NULL or empty list, "OFF" (nvcc's default architecture), an entry it cannot
 * read, a compute capability out of range (major < 1, minor outside 0..9)). */
int dm_cuda_arch_runs(const char *archs, int cc_major, int cc_minor);

/* The CUDA backend's answer to the supports query (dm_backend_ops.supports; plain C, in every
 * build, so that builds without CUDA test it): 1 when the CUDA ops run d, else 0 with one
 * phrase naming the refused dtype or shape and the limit in why[0..size) (when given).
 * Dtypes: storage f32/f16/bf16 (copy and alloc: any); every float operand f32, f16 or bf16
 * (operands may differ), image_from_u8 / image_cubic_normalize read a u8 (N, H, W, 3) frame,
 * count_nonfinite counts into i64. Shapes (with operands; a dtype-only query (d->n == 0)
 * skips them), each the limit of a kernel's launch or register layout:
 *   attention (q (B, H, Tq, D)) and attention_qkv (qkv (B, T, 3*heads*D)): head dim D in
 *     1..128, Tq, Tk <= 2^31-1, B*H*ceil(Tq/16) <= 2^31-1 blocks;
 *   layernorm: rows (numel / C) <= 8*(2^31-1); groupnorm: C divisible by groups, N*groups <=
 *     (2^31-1)/64; global_avgpool2d: N*C <= 2^31-1;
 *   image_from_u8, image_cubic_normalize: N <= 65535 frames per call; the latter's source
 *     and target sides 1..65536 pixels and a known arithmetic;
 *   resize: bilinear or bicubic, sides <= 2^31-1; maxpool2d: k, s >= 1, 0 <= pad <= k/2;
 *     avgpool2d: k, s >= 1; permute: ceil(last dim / 256) <= 2^31-1;
 *   conv2d / conv_transpose2d: 4-D operands, channels divisible by groups; cuDNN chooses (or
 *     refuses, with an error naming the convolution) an algorithm per shape at plan time.
 * The three networks' fixed dimensions stay inside these limits (ViT-S head dim 64, the
 * motion modules' C/8); the models' forwards are not yet traced against them at the job's
 * input sizes (docs/status.md). Tested by tests/engine/test_op_support.c (limit table). */
int dm_cuda_supports_op(const dm_op_desc *d, char *why, size_t size);

/* With cause == NULL: when dm_cuda_arch_runs(archs, cc_major, cc_minor) is 0, writes one line
 * into buf (always terminated) naming the compute capability, the build's architecture list
 * and the cmake command that adds the device (-DCMAKE_CUDA_ARCHITECTURES="80-real;<archs>"
 * or native; docs/gpu.md "GPU architectures") and returns 1; else (runs, or cannot tell)
 * returns 0 with buf empty. With a cause (the CUDA runtime's own answer, e.g.
 * "cudaFuncGetAttributes: no kernel image is available for execution on the device"): always
 * writes the line with the cause in it and returns 1. The line has no "cuda:" prefix: the
 * caller names the device first. */
int dm_cuda_arch_message(const char *archs, int cc_major, int cc_minor, const char *cause,
                         char *buf, size_t size);

#endif
