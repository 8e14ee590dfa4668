/* depthmatte — Robust Video Matting, MobileNetV3 and ResNet50 variants (Lin et al., "Robust High-Resolution
 * Video Matting with Temporal Guidance", WACV 2022; official code PeterL1n/RobustVideoMatting,
 * model/{model.py, mobilenetv3.py, resnet.py, lraspp.py, decoder.py, deep_guided_filter.py,
 * fast_guided_filter.py}), implemented with the engine ops (include/depthmatte/backend.h).
 *
 * Network (MobileNetV3): input normalisation (ImageNet mean/std) -> MobileNetV3-Large encoder
 * (torchvision layout, last stage dilated, features at 1/2, 1/4, 1/8, 1/16) -> LR-ASPP (128
 * channels) ->
 * recurrent decoder (ConvGRU at 1/16, 1/8, 1/4, 1/2; AvgPool2d(2, 2, ceil_mode=True,
 * count_include_pad=False) pyramid of the source) -> project_mat (3 foreground-residual + 1
 * alpha channels) -> refiner (deep guided filter, default, or fast guided filter) when
 * downsample_ratio != 1 -> fgr = clamp(residual + src, 0, 1), pha = clamp(alpha, 0, 1).
 * ResNet50: no input normalisation; torchvision ResNet-50 encoder (Bottleneck [3, 4, 6, 3],
 * max pool 3x3 s2 p1 after the 7x7 stem, replace_stride_with_dilation [False, False, True]:
 * features 64 @ 1/2, 256 @ 1/4, 512 @ 1/8, 2048 @ 1/16) -> LR-ASPP(2048, 256) -> recurrent
 * decoder [64, 256, 512, 256] -> [128, 64, 32, 16] (ConvGRU 128, 64, 32, 16) -> the same
 * projection and refiners.
 *
 * Usage: one rvm_model per process (weights, read-only once loaded), one rvm_state per stream
 * of frames of one size. The state holds every buffer and the recurrent state r1..r4: call
 * rvm_state_reset() at the start of each independent sequence (chunk). Frame calls allocate
 * nothing. A model and its states use the backend given at load / init; one state must not
 * be used by two threads at once.
 */
#ifndef DEPTHMATTE_RVM_H
#define DEPTHMATTE_RVM_H

#include <stdint.h>

#include "depthmatte/backend.h"
#include "depthmatte/copy_async.h"
#include "depthmatte/safetensors.h"

typedef struct rvm_model rvm_model;
typedef struct rvm_state rvm_state;

/* Refiner used when downsample_ratio != 1 (MattingNetwork(refiner=...)). */
typedef enum rvm_refiner {
    RVM_REFINER_DEEP_GUIDED_FILTER = 0, /* default; trained weights `refiner.*` */
    RVM_REFINER_FAST_GUIDED_FILTER,     /* parameter-free, box radius 1, eps 1e-5 */
} rvm_refiner;

/* Network variant (MattingNetwork(variant=...)). */
typedef enum rvm_variant {
    RVM_VARIANT_MOBILENETV3 = 0, /* 'mobilenetv3' (rvm_mobilenetv3.pth) */
    RVM_VARIANT_RESNET50,        /* 'resnet50' (rvm_resnet50.pth) */
} rvm_variant;

/* "mobilenetv3" / "resnet50" ("?" for another value). */
const char *rvm_variant_name(rvm_variant v);

/* Loads the weights of MattingNetwork('mobilenetv3') from a safetensors file with the official
 * key names (`backbone.features.N...`, `aspp.*`, `decoder.*`, `project_mat.*`, `refiner.*`;
 * see models/rvm_mobilenetv3.md). Every expected tensor is checked for name, shape and dtype
 * (weights F16 or F32, `num_batches_tracked` I64 scalars); any other tensor is rejected except
 * `project_seg.*` (segmentation head, unused). F16 is converted to F32 and every BatchNorm is
 * folded into the preceding convolution (eps 1e-3 backbone, 1e-5 LR-ASPP / decoder / refiner).
 * Errors (message names the file and the tensor): DM_ERR_IO (missing / unreadable file),
 * DM_ERR_FORMAT (truncated / malformed file), DM_ERR_NAME (missing or unexpected tensor),
 * DM_ERR_SHAPE, DM_ERR_DTYPE, DM_ERR_NOMEM. On error *m is NULL. */
dm_status rvm_model_load(rvm_model **m, const char *path, dm_backend *be);

/* Same from an opened weight source (a safetensors file opened with dm_st_open, or a synthetic
 * one, dm_st_open_synthetic); the caller closes f afterwards. Messages name f->path. */
dm_status rvm_model_load_st(rvm_model **m, dm_st_file *f, dm_backend *be);

/* Same for either variant. ResNet50 keys: `backbone.conv1`, `backbone.bn1`,
 * `backbone.layerL.B.{conv1,bn1,conv2,bn2,conv3,bn3,downsample.0,downsample.1}` (torchvision
 * resnet50 names), then `aspp.*`, `decoder.*`, `project_mat.*`, `refiner.*` as MobileNetV3
 * (models/rvm_resnet50.md); BatchNorm eps 1e-5 everywhere. A file of the other variant is
 * refused with DM_ERR_NAME naming both. Other errors as rvm_model_load; DM_ERR_ARG for an
 * unknown variant. */
dm_status rvm_model_load_variant(rvm_model **m, const char *path, rvm_variant variant,
                                 dm_backend *be);
dm_status rvm_model_load_variant_st(rvm_model **m, dm_st_file *f, rvm_variant variant,
                                    dm_backend *be);

/* The variant a model was loaded as. */
rvm_variant rvm_model_variant(const rvm_model *m);

/* Frees a model (NULL is ignored). States made from it must be freed first. */
void rvm_model_free(rvm_model *m);

/* The engine ops the model of `variant` runs, into ops (room for DM_OP_COUNT); returns their
 * number (ResNet50 adds maxpool2d). For the backends' supports query (dm_backend_supports_all)
 * before a backend is chosen. */
int rvm_required_ops(rvm_variant variant, dm_op_id *ops);

/* The official inference.py auto_downsample_ratio: min(512 / max(height, width), 1), so that
 * the network runs at most 512 pixels on the long side. height, width in pixels (> 0). */
double rvm_auto_downsample_ratio(int height, int width);

/* Creates the per-stream state for frames of height x width pixels: sizes every buffer once
 * (internal size floor(height * r) x floor(width * r), as F.interpolate(scale_factor=r,
 * recompute_scale_factor=False)) and zeroes the recurrent state. downsample_ratio r in (0, 1];
 * <= 0 selects rvm_auto_downsample_ratio(). The refiner defaults to the deep guided filter.
 * Errors: DM_ERR_ARG (size < 1, r > 1, internal size < 1 pixel), DM_ERR_NOMEM. */
dm_status rvm_state_init(rvm_state **s, const rvm_model *m, dm_backend *be, int height,
                         int width, double downsample_ratio);

/* Selects the refiner (only used when the ratio != 1). DM_ERR_ARG for an unknown value. */
dm_status rvm_state_set_refiner(rvm_state *s, rvm_refiner refiner);

/* The downsample ratio in use (after auto selection). */
double rvm_state_ratio(const rvm_state *s);

/* Zeroes the recurrent state r1..r4 (start of an independent sequence / chunk). Errors: those
 * of dm_copy on a device backend (the zeros are copied from the host). */
dm_status rvm_state_reset(rvm_state *s);

/* Saves the recurrent state r1..r4 into a checkpoint of the state on its own backend (device
 * to device copies on a device; allocated on the first call, reused after). The pipeline takes
 * one before every reduced-precision frame so that a frame with NaN/Inf outputs can be
 * recomputed in float32 from the state it started from (docs/gpu.md "Non-finite guard").
 * Errors: allocation / copy errors of the backend. */
dm_status rvm_state_checkpoint(rvm_state *s);

/* dst's recurrent state := src's checkpoint (from_checkpoint != 0) or src's current state.
 * The two states have the same frame size, downsample ratio and variant; they may live on
 * different backends (one of them on the CPU; the values are converted to dst's dtype) and
 * the copy is complete on return. Errors: DM_ERR_ARG (no checkpoint yet, two device backends),
 * DM_ERR_SHAPE (state sizes differ), copy errors. */
dm_status rvm_state_copy_recurrent(rvm_state *dst, const rvm_state *src, int from_checkpoint);

/* Frees a state (NULL is ignored). */
void rvm_state_free(rvm_state *s);

/* Runs one frame, MattingNetwork.forward(src, r1, r2, r3, r4, downsample_ratio), and updates
 * the recurrent state. src (1, 3, H, W) f32 RGB in [0, 1]; fgr (1, 3, H, W) f32 in [0, 1] (may
 * be NULL: not computed); pha (1, 1, H, W) f32 in [0, 1]. H, W as given to rvm_state_init.
 * Errors: DM_ERR_SHAPE / DM_ERR_DTYPE for wrong tensors, backend errors. */
dm_status rvm_forward(rvm_state *s, const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha);

/* Same on an interleaved 8-bit RGB frame rgb (H, W, 3) (value / 255 as the model input):
 * fgr (3, H, W) planar f32 or NULL, pha (H, W) f32; host (CPU) memory. */
dm_status rvm_forward_u8(rvm_state *s, const uint8_t *rgb, float *fgr, float *pha);

/* rvm_forward_u8 with the downloads queued (depthmatte/copy_async.h): on return the frame's
 * forward and non-finite count are queued (rvm_state_nonfinite waits for the count), and
 * fgr/pha receive the outputs once dm_copy_wait(backend, ticket) returns; until then they must
 * be neither read nor written, while later frames may already run. On the CPU backend the outputs are written
 * at once and *ticket is complete. Errors as rvm_forward_u8 (*ticket complete then). */
dm_status rvm_forward_u8_async(rvm_state *s, const uint8_t *rgb, float *fgr, float *pha,
                               dm_copy_ticket *ticket);

/* *count = the number of NaN/+Inf/-Inf values in pha (+ fgr when it was computed) of the last
 * rvm_forward_u8, counted on the backend (dm_count_nonfinite) and downloaded on its own
 * (dm_async_counts): this waits for that 8-byte download only, not for the outputs', so the
 * pipeline's non-finite guard can write the previous frame's rows first. Errors as
 * dm_copy_wait (*count 0 then). */
dm_status rvm_state_nonfinite(rvm_state *s, int64_t *count);

/* The recurrent state after the last frame, for tests: i = 1..4, shapes (1, 16, h/2, w/2),
 * (1, 20, h/4, w/4), (1, 40, h/8, w/8), (1, 64, h/16, w/16) (MobileNetV3; ResNet50 16, 32, 64,
 * 128 channels) with sizes rounded up (h x w = internal size). NULL for another i. */
const dm_tensor *rvm_state_recurrent(const rvm_state *s, int i);

#endif
