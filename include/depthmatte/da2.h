/* depthmatte — Depth Anything V2 Small (ViT-S/14 encoder + DPT head), per-frame relative depth.
 *
 * Source: DepthAnything/Depth-Anything-V2, depth_anything_v2/dpt.py (DepthAnythingV2,
 * encoder 'vits', features 64, out_channels [48, 96, 192, 384]), dinov2.py + dinov2_layers/
 * (facebookresearch/dinov2 ViT), util/transform.py (preprocessing). Paper: Yang et al.,
 * "Depth Anything V2", 2024. Output is relative inverse depth (disparity-like, larger = nearer,
 * arbitrary scale), not metres.
 *
 * Use: da2_model_load once; da2_ctx_init once per source size (allocates every buffer);
 * da2_infer_u8 per frame (allocates nothing).
 */
#ifndef DEPTHMATTE_DA2_H
#define DEPTHMATTE_DA2_H

#include <stdint.h>

#include "depthmatte/backend.h"
#include "depthmatte/copy_async.h"
#include "depthmatte/safetensors.h"

typedef struct da2_model da2_model;
typedef struct da2_ctx da2_ctx;

/* Loads weights from a safetensors file with the official key names ("pretrained.…",
 * "depth_head.…", as written by models/convert_da2.py) or the transformers checkpoint
 * (Depth-Anything-V2-Small-hf model.safetensors: "backbone.…", "neck.…", "head.…"; q/k/v are
 * fused on load). Every tensor is checked by name and shape; F16/BF16 are converted to F32;
 * any tensor not used (except the mask token, unused at inference) is an error.
 * Errors: DM_ERR_IO (missing file), DM_ERR_FORMAT (not safetensors), DM_ERR_NAME (missing or
 * unexpected tensor), DM_ERR_SHAPE, DM_ERR_DTYPE, DM_ERR_NOMEM. Messages name the tensor. */
dm_status da2_model_load(da2_model **m, const char *path, dm_backend *be);
/* Same from an opened weight source (dm_st_open, or dm_st_open_synthetic: official names);
 * the caller closes f afterwards. */
dm_status da2_model_load_st(da2_model **m, dm_st_file *f, dm_backend *be);
void da2_model_free(da2_model *m);

/* The engine ops the model runs, into ops (room for DM_OP_COUNT); returns their number (for
 * dm_backend_supports_all). */
int da2_required_ops(dm_op_id *ops);

/* Model input size (official Resize: keep_aspect_ratio, lower_bound, ensure_multiple_of 14):
 * s = max(input_size/src_h, input_size/src_w); h = round_half_even(s*src_h/14)*14, replaced
 * by ceil(s*src_h/14)*14 when below input_size; same for w. E.g. 160x160 @140 -> 140x140,
 * 126x224 @98 -> 98x168, 1080x1920 @518 -> 518x924. */
void da2_input_size(int src_h, int src_w, int input_size, int *h, int *w);

/* Sizes every buffer for frames of src_h x src_w pixels at `input_size` (official default 518).
 * Errors: DM_ERR_ARG (source smaller than 14 px per side, input_size outside 14..4096),
 * DM_ERR_NOMEM. The model must outlive the context. */
dm_status da2_ctx_init(da2_ctx **c, const da2_model *m, dm_backend *be, int src_h, int src_w,
                       int input_size);
void da2_ctx_free(da2_ctx *c);

/* Same with `batch` frames per forward pass (runtime.batch_size; 1..1024): every buffer is
 * (batch, ...), frames of a batch are computed independently (the ViT and the DPT head mix
 * nothing across the batch dimension); a frame's depth depends on the batch size only through
 * float32 rounding (GEMM blocking; <= 1e-5 * std, tests/engine/test_device_models.c). */
dm_status da2_ctx_init_batch(da2_ctx **c, const da2_model *m, dm_backend *be, int src_h,
                             int src_w, int input_size, int batch);

/* Frames per forward pass of a context. */
int da2_ctx_batch(const da2_ctx *c);

/* Model input height/width of this context (see da2_input_size). */
void da2_ctx_input_dims(const da2_ctx *c, int *h, int *w);

/* Official image2tensor: rgb (src_h, src_w, 3) u8 interleaved RGB -> /255 in double ->
 * cv2.resize INTER_CUBIC in double (A = -0.75, replicated border) -> (x - mean) / std
 * (ImageNet mean 0.485/0.456/0.406, std 0.229/0.224/0.225) in double -> input (1, 3, h, w) F32
 * on the CPU. Runs as the backend's image_cubic_normalize op (DM_CUBIC_F64) into input slot 0
 * of the context (on a device backend: the u8 frame uploaded, computed there, downloaded);
 * the frame functions below do the same without the download. */
dm_status da2_preprocess_u8(da2_ctx *c, const uint8_t *rgb, dm_tensor *input);

/* depth_head output (1, 1, h, w) F32 (>= 0, before resizing to the source) for input
 * (1, 3, h, w). Also fills the taps (da2_ctx_taps). */
dm_status da2_forward(da2_ctx *c, const dm_tensor *input, dm_tensor *depth_head_out);

/* Whole infer_image: preprocess, forward, bilinear (align_corners True) resize to the source
 * size. depth: src_h * src_w floats, row-major (H, W), relative inverse depth. */
dm_status da2_infer_u8(da2_ctx *c, const uint8_t *rgb, float *depth);

/* n frames (1 <= n <= batch) rgb[i] (src_h, src_w, 3) u8 in one forward pass: depth (n, H, W)
 * floats, row-major, frame after frame; (H, W) = the source size (bilinear, align_corners True,
 * as da2_infer_u8), or with model_size != 0 the head output on the network input grid
 * (da2_ctx_input_dims, no resize; depth.output_size model). Host buffers on any backend. */
dm_status da2_infer_u8_batch(da2_ctx *c, const uint8_t *const *rgb, int n, float *depth,
                             int model_size);

/* da2_infer_u8_batch with the download queued (depthmatte/copy_async.h): on return the forward
 * and the per-frame non-finite counts are queued (da2_ctx_nonfinite waits for the counts), and
 * depth receives the n frames once dm_copy_wait(backend, ticket) returns; until then it must
 * be neither read nor written, while the next batch may already run. The rgb frames may be reused on return.
 * On the CPU backend depth is written at once and *ticket is complete. Errors as
 * da2_infer_u8_batch (*ticket complete then). */
dm_status da2_infer_u8_batch_async(da2_ctx *c, const uint8_t *const *rgb, int n, float *depth,
                                   int model_size, dm_copy_ticket *ticket);

/* *count = the number of NaN/+Inf/-Inf values in frame i (0 <= i < n) of the depth of the last
 * da2_infer_u8_batch, counted on the backend (dm_count_nonfinite: on a device the count runs
 * there, the host never scans the frame); 0 for other i. Waits for the download of the counts
 * only (dm_async_counts), not for the depth's. The pipeline's non-finite guard (docs/gpu.md
 * "Non-finite guard"). Errors as dm_copy_wait (*count 0 then). */
dm_status da2_ctx_nonfinite(da2_ctx *c, int i, int64_t *count);

/* Intermediate tensors of the last forward, for tests (valid until the next call / free). */
typedef struct da2_taps {
    const dm_tensor *input;        /* (B, 3, h, w) preprocessed input (on the backend) */
    const dm_tensor *tokens_embed; /* (1, 1 + ph*pw, 384): cls + patches + pos-embed */
    const dm_tensor *feat[4];      /* (1, ph*pw, 384): blocks 2, 5, 8, 11, final norm, no cls */
    const dm_tensor *feat_cls[4];  /* (1, 384): normed cls token of the same blocks */
    const dm_tensor *depth_head;   /* (1, 1, h, w) */
} da2_taps;
void da2_ctx_taps(const da2_ctx *c, da2_taps *t);

#endif
