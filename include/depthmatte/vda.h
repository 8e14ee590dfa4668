/* depthmatte — Video Depth Anything Small (ViT-S/14 encoder + temporal DPT head): temporally
 * consistent video depth, window by window, with bounded memory, split-able across ranks.
 *
 * Source: DepthAnything/Video-Depth-Anything, video_depth_anything/video_depth.py
 * (VideoDepthAnything, encoder 'vits', features 64, out_channels [48, 96, 192, 384],
 * num_frames 32, pe 'ape'; infer_video_depth), dpt_temporal.py, motion_module/ (motion_module.py, attention.py),
 * utils/util.py (compute_scale_and_shift, get_interpolate_frames). Paper: Chen et al., "Video
 * Depth Anything: Consistent Depth Estimation for Super-Long Videos", 2025.
 * Output: relative inverse depth (disparity-like, larger = nearer) of the first window's scale,
 * or metres for the metric checkpoint (metric_video_depth_anything_vits), which skips the
 * scale/shift alignment.
 *
 * Official inference (infer_video_depth), reproduced exactly:
 *   windows of VDA_WINDOW = 32 frames start every VDA_STRIDE = 22 frames (0, 22, 44, ... while
 *   start < frames); the video is padded by repeating its last frame. Window k > 0 replaces its
 *   first 10 inputs by the previous window's inputs at KEYFRAMES [0,12,24..31], so its 32 slots
 *   hold source frames {0, 22k-10, 22k+2, 22k+3, ..., 22k+31} (vda_window_frames). Each
 *   window's depth is resized (bilinear, align_corners True) to the source size; windows k > 0
 *   get a least-squares scale/shift (float32, as official) from their slots 0-1 to the
 *   reference depths, applied to slots 2-31 and clipped at 0; slots 2-9 are blended linearly
 *   (weights 0, 1/7, ..., 1) into the previous window's last 8 aligned frames; the reference
 *   becomes [first reference, aligned slot 12].
 *
 * Three layers of API:
 * 1. vda_ctx: one forward pass of a 32-frame window (vda_window_depth / vda_forward).
 * 2. vda_align: the sequential scale/shift chain over windows, on small state
 *    (2 reference frames + 8 pending frames at source size, vda_align_pack/unpack for MPI).
 * 3. vda_video: the streaming form of both — push frames in order, pop finished depth frames;
 *    memory is independent of the video length (one window of inputs and raw depths + state).
 *
 * Distributing one video over ranks (for the pipeline): give each rank a contiguous range of
 * windows [ka, kb). Window k's forward pass needs only raw frames (vda_window_frames: frame 0,
 * frame 22k-10 and frames 22k+2..22k+31, clamped to the last frame), so every rank computes
 * its windows independently (decoding those frames itself). Alignment is sequential but cheap:
 * rank r receives the vda_align state after window ka-1 from rank r-1 (vda_align_unpack; rank
 * 0 starts from vda_align_init), calls vda_align_window for ka..kb-1 in order, and sends the
 * state on (vda_align_pack). Window k finalises frames [0, 24) for k = 0 and [22k+2, 22k+24)
 * for k > 0; vda_align_finish on the last rank finalises the last 8. So rank r owns frames
 * [22ka+2, 22kb+2) (0 for ka = 0, the video end for the last rank): plan chunk borders at
 * 22k+2. The result equals the sequential run (tests/vda/test_vda_video.c checks 1, 2, 3
 * simulated ranks). While waiting for the state a rank keeps its windows' raw depths
 * (32 frames per window, vda_window_depth output) or recomputes them; the chain itself needs
 * only raw slots 0, 1 and 12 of each window.
 */
#ifndef DEPTHMATTE_VDA_H
#define DEPTHMATTE_VDA_H

#include <stddef.h>
#include <stdint.h>

#include "depthmatte/backend.h"
#include "depthmatte/copy_async.h"
#include "depthmatte/safetensors.h"

#define VDA_WINDOW 32  /* INFER_LEN: frames per forward pass */
#define VDA_OVERLAP 10 /* OVERLAP: slots taken from the previous window (KEYFRAMES) */
#define VDA_STRIDE 22  /* INFER_LEN - OVERLAP: window start step, frames */
#define VDA_INTERP 8   /* INTERP_LEN: frames blended between consecutive windows */

typedef struct vda_model vda_model;
typedef struct vda_ctx vda_ctx;
typedef struct vda_align vda_align;
typedef struct vda_video vda_video;

/* Loads weights from a safetensors file with the official key names of
 * video_depth_anything_vits.pth / metric_video_depth_anything_vits.pth ("pretrained.…",
 * "head.…", "head.motion_modules.N.…" incl. the pos_encoder.pe buffers; models/convert_vda.py).
 * metric != 0: metric checkpoint (outputs metres, no scale/shift alignment). Every tensor is
 * checked by name and shape; F16/BF16 converted to F32; unused tensors (except
 * pretrained.mask_token) are an error. Errors: DM_ERR_IO, DM_ERR_FORMAT, DM_ERR_NAME,
 * DM_ERR_SHAPE, DM_ERR_DTYPE, DM_ERR_NOMEM; messages name the tensor. */
dm_status vda_model_load(vda_model **m, const char *path, dm_backend *be, int metric);
/* Same from an opened weight source (dm_st_open, or dm_st_open_synthetic); the caller closes f
 * afterwards. */
dm_status vda_model_load_st(vda_model **m, dm_st_file *f, dm_backend *be, int metric);
void vda_model_free(vda_model *m);

/* The engine ops the model runs, into ops (room for DM_OP_COUNT); returns their number (for
 * dm_backend_supports_all). */
int vda_required_ops(dm_op_id *ops);
int vda_model_is_metric(const vda_model *m);

/* Model input size of infer_video_depth: when max/min side ratio > 1.78, input_size becomes
 * round_half_even(int(input_size * 1.777 / ratio) / 14) * 14; then as da2_input_size
 * (keep aspect, lower bound, multiple of 14). E.g. 45x80 @42 -> 42x70. */
void vda_input_size(int src_h, int src_w, int input_size, int *h, int *w);

/* Sizes every buffer for src_h x src_w frames at input_size (official default 518). Errors:
 * DM_ERR_ARG (source < 14 px, input_size outside 14..4096), DM_ERR_NOMEM. The model must
 * outlive the context. Memory: one 32-frame window of activations (a few GB at 518). */
dm_status vda_ctx_init(vda_ctx **c, const vda_model *m, dm_backend *be, int src_h, int src_w,
                       int input_size);
void vda_ctx_free(vda_ctx *c);
void vda_ctx_input_dims(const vda_ctx *c, int *h, int *w);

/* Official transform of one frame: rgb (src_h, src_w, 3) u8 -> float32 / 255 -> cv2.resize
 * INTER_CUBIC in float32 -> ImageNet normalisation in double -> float32, written to window
 * slot `slot` (0..31) of the context's input (T, 3, h, w). DM_ERR_ARG on a bad slot. */
dm_status vda_preprocess_u8(vda_ctx *c, const uint8_t *rgb, int slot);

/* Source frame index of each of the 32 slots of window k of a video of `frames` frames
 * (vda_window_count windows): k = 0: 0..31; k > 0: 0, 22k-10, 22k+2..22k+31; indices past the
 * end are clamped to frames-1 (official padding). */
int vda_window_count(int64_t frames);
void vda_window_frames(int k, int64_t frames, int64_t idx[VDA_WINDOW]);

/* Forward pass of the context's input window: VideoDepthAnything.forward on (1, 32, 3, h, w)
 * then bilinear (align_corners True) to the source size. raw: (32, src_h, src_w) floats on the
 * CPU, >= 0, not yet aligned. */
dm_status vda_window_run(vda_ctx *c, float *raw);

/* vda_window_run with the download queued (depthmatte/copy_async.h): on return the forward and
 * the non-finite count are queued (vda_ctx_nonfinite waits for the count), and raw receives
 * the window once dm_copy_wait(backend, ticket) returns; until then raw must be neither read
 * nor written. On
 * the CPU backend raw is written at once and *ticket is complete. */
dm_status vda_window_run_async(vda_ctx *c, float *raw, dm_copy_ticket *ticket);

/* *count = the number of NaN/+Inf/-Inf values in raw of the last vda_window_run, counted on
 * the backend (dm_count_nonfinite) and downloaded on its own (dm_async_counts: waits for the
 * count only, not for raw): the pipeline's non-finite guard. Errors as dm_copy_wait. */
dm_status vda_ctx_nonfinite(vda_ctx *c, int64_t *count);

/* Convenience for any rank: preprocesses rgb[s] (frames as listed by vda_window_frames) into
 * the slots and runs vda_window_run. */
dm_status vda_window_depth(vda_ctx *c, const uint8_t *const rgb[VDA_WINDOW], float *raw);

/* Prepares the input for the next window of a stream: slot 1 <- slot 12, slots 2..9 <- slots
 * 24..31 (slot 0, frame 0, stays); the caller then fills slots 10..31. */
dm_status vda_window_shift(vda_ctx *c);

/* Intermediate tensors of the last window, for tests (valid until the next run / free). */
typedef struct vda_taps {
    const dm_tensor *input;  /* (32, 3, h, w) preprocessed window (on the backend) */
    const dm_tensor *mm_in0; /* (32, 192, ph, pw) input of motion module 0; NULL unless
                              * vda_ctx_keep_taps was called before the window ran */
    const dm_tensor *mm_out[4]; /* (32, C, h_i, w_i): layer_3, layer_4, path_4, path_3 */
    const dm_tensor *head;   /* (32, 1, h, w) model output (>= 0) at model size */
} vda_taps;
/* Source frame size (pixels) a context was made for. */
void vda_ctx_source_dims(const vda_ctx *c, int *h, int *w);

/* Gives `dst` the window input of `src`, two contexts of the same model and source size on any
 * backends: the CPU reference recomputes a device's window from the very same frames
 * (runtime.verify, float32 recompute). A device context keeps its window's u8 frames on the
 * host (32 source frames: 199 MB at 1080p), and `dst` preprocesses them itself, so a CPU `dst`
 * holds exactly the CPU's float32 input, not the device's input rounded to its precision; from
 * a CPU `src` the preprocessed slots are copied. DM_ERR_SHAPE when the sizes differ. */
dm_status vda_ctx_copy_input(vda_ctx *dst, const vda_ctx *src);

/* Makes every later window keep the taps that are not part of the forward pass itself (today
 * mm_in0, a copy of layer_3 before motion module 0: (32, 192, ph, pw), 34 MB and one copy per
 * window at 518, so contexts start without it). Allocates once, outside the buffer plan;
 * call it after vda_ctx_init, before the windows of interest. DM_ERR_NOMEM. */
dm_status vda_ctx_keep_taps(vda_ctx *c);

void vda_ctx_taps(const vda_ctx *c, vda_taps *t);

/* Alignment chain state for src_h x src_w frames (about 10 frames of floats).
 * metric != 0: scale 1, shift 0 (official metric branch). DM_ERR_NOMEM. */
dm_status vda_align_init(vda_align **a, int src_h, int src_w, int metric);
void vda_align_free(vda_align *a);

/* Aligns window k (the next one in order: 0, 1, 2, ...) in place. raw (32, src_h, src_w) from
 * vda_window_run/depth. On return slots [*first_slot, *first_slot + *count) of raw hold the
 * finished frames starting at video frame *first_frame (k = 0: slots 0..23 = frames 0..23;
 * k > 0: slots 2..23 = frames 22k+2..22k+23); the caller drops frames >= the video length.
 * Slots 24..31 are kept in the state (pending blend). Scale/shift from
 * compute_scale_and_shift in float32 with numpy's pairwise summation order. */
dm_status vda_align_window(vda_align *a, float *raw, int *first_slot, int *count,
                           int64_t *first_frame);

/* Last 8 pending frames after the last window: (8, src_h, src_w) at *first_frame
 * (22k+24 for the last window k). DM_ERR_ARG before any window. */
dm_status vda_align_finish(vda_align *a, const float **frames, int64_t *first_frame);

/* Scale and shift of the last aligned window (1, 0 for window 0 / metric), for logs/tests. */
void vda_align_last_fit(const vda_align *a, float *scale, float *shift);

/* Serialised state (for MPI): vda_align_state_bytes() bytes, plain data. unpack checks the
 * frame size and returns DM_ERR_FORMAT on a mismatch. */
size_t vda_align_state_bytes(const vda_align *a);
void vda_align_pack(const vda_align *a, void *buf);
dm_status vda_align_unpack(vda_align *a, const void *buf, size_t bytes);

/* Streaming video: frames pushed in order; finished frames popped in order. The context
 * (and its model) must outlive the stream. Call pattern:
 *   for each frame: vda_video_push(v, rgb); while (vda_video_pop(v, depth, &i) == 1) use(depth);
 *   vda_video_flush(v); while (vda_video_pop(v, depth, &i) == 1) use(depth);
 * A window runs inside push (when its 32nd slot arrives) or inside pop after flush; push
 * returns DM_ERR_ARG if frames of the previous window were not popped yet. */
dm_status vda_video_init(vda_video **v, vda_ctx *c);
void vda_video_free(vda_video *v);
dm_status vda_video_push(vda_video *v, const uint8_t *rgb);
dm_status vda_video_flush(vda_video *v);
/* Copies the next finished frame (src_h, src_w) into depth and its index into *frame.
 * Returns 1 when a frame was copied, 0 when none is ready (or all are out after flush), or a
 * negative -(dm_status) when running a window failed. */
int vda_video_pop(vda_video *v, float *depth, int64_t *frame);

/* ---- Streaming mode (causal, one frame at a time) ----------------------------------------
 * The official experimental streaming mode: VideoDepthAnything.infer_video_depth_one of
 * Video-Depth-Anything/video_depth_anything/video_depth_stream.py (run_streaming.py). Each
 * pushed frame runs through the encoder and the head ALONE (batch 1); the temporal attention
 * of the 4 motion modules attends over the cached hidden states of 31 past frames (the
 * official cache layout: the first two and the last INFER_LEN-3 = 29 entries of the cache
 * list, i.e. frames {0, i-41, i-29..i-1} for frame i >= 41) plus the frame itself; the first
 * frame is a single-frame pass and its states are replicated to fill the 32-frame window.
 * Output per frame: depth (src_h, src_w) floats, relative inverse depth (larger = nearer) or
 * metres for the metric checkpoint, with NO scale/shift alignment (the official stream has
 * none), so values are not comparable with vda_video's aligned output. The result of frame i
 * depends on frames 0..i only (causal): a video must be streamed from its first frame.
 * Memory: one frame of activations + the cache (43 frames of the 8 attention blocks' hidden
 * states, ~290 MB at input_size 518 in float32) + window key/value buffers, independent of
 * the video length (tests/vda/test_vda_stream.c). */
#define VDA_STREAM_CACHE 43 /* pool slots: the 42 entries of the cache list + the new frame */

typedef struct vda_stream vda_stream;

/* Sizes every buffer for src_h x src_w frames at input_size (model input size as
 * vda_input_size). The model must outlive the stream. Errors: DM_ERR_ARG (source < 14 px,
 * input_size outside 14..4096), DM_ERR_NOMEM. */
dm_status vda_stream_init(vda_stream **s, const vda_model *m, dm_backend *be, int src_h,
                          int src_w, int input_size);
void vda_stream_free(vda_stream *s);

/* Forgets every cached frame: the next push is the first frame of a new video (same size). */
void vda_stream_reset(vda_stream *s);

/* infer_video_depth_one(frame): rgb (src_h, src_w, 3) u8, the next frame of the video ->
 * depth (src_h, src_w) floats on the CPU, >= 0 (bilinear, align_corners True, from the model
 * size). Errors: those of the engine ops (DM_ERR_SHAPE, DM_ERR_UNSUPPORTED, device errors);
 * after an error the stream must be reset. */
dm_status vda_stream_push(vda_stream *s, const uint8_t *rgb, float *depth);

/* vda_stream_push with the download queued (depthmatte/copy_async.h): on return the frame is
 * in the stream (the next push may follow at once) and its count queued (vda_stream_nonfinite
 * waits for it); depth
 * receives the frame once dm_copy_wait(backend, ticket) returns and must be neither read nor
 * written before. On the CPU backend depth is written at once and *ticket is complete. */
dm_status vda_stream_push_async(vda_stream *s, const uint8_t *rgb, float *depth,
                                dm_copy_ticket *ticket);

/* *count = the number of NaN/+Inf/-Inf values in depth of the last vda_stream_push, counted on
 * the backend (dm_count_nonfinite) and downloaded on its own (dm_async_counts: waits for the
 * count only, not for depth): the pipeline's non-finite guard. Errors as dm_copy_wait. */
dm_status vda_stream_nonfinite(vda_stream *s, int64_t *count);

/* ---- Non-finite guard (docs/gpu.md "Non-finite guard"; pl_stage_vda_stream.c) ----------
 * The state a push changes is the stream's cache bookkeeping (the cache list as pool slots,
 * the references per slot, the frame counter) and the contents of ONE pool slot per attention
 * block: the first free one (no list entry refers to it), written by the push before any read.
 * So a checkpoint of the bookkeeping alone, 368 bytes of host memory at any input size,
 * restores the pre-frame state exactly: the slot's old contents are not state (nothing reads
 * them again), and the redone push writes that slot anew. No device memory, no copy.
 *
 * Saves the bookkeeping (vda_stream_restore returns to it). Take it before each push that may
 * have to be redone; a later checkpoint replaces it, vda_stream_reset / copy_state drop it. */
void vda_stream_checkpoint(vda_stream *s);

/* Returns the stream to its last checkpoint: the next push is the checkpointed frame again and
 * computes it from the same cached states, bitwise (tests/vda/test_vda_stream.c, 5.).
 * Errors: DM_ERR_ARG (no checkpoint since init / reset / copy_state). */
dm_status vda_stream_restore(vda_stream *s);

/* dst's cached state := src's: bookkeeping copied as it is (the same slot numbers, so the two
 * streams then pick the same slot for the next frame) and the pool slots that hold state (the
 * span from the lowest to the highest referenced slot, one copy per pool: at most 43 slots x 8
 * attention blocks; 6.7 MB per slot in float32 at input_size 518, 3.4 MB in float16/bfloat16)
 * converted to dst's dtype. last_only != 0: only the slot of src's last
 * pushed frame travels (dst must hold src's state from just before that push, as the guard's
 * device holds it after a restore: dst one frame behind src). The streams have the same frame
 * and input size; one of them on the CPU (or both on one backend); the copy is complete on
 * return; dst's checkpoint is dropped. Errors: DM_ERR_ARG (two device backends, last_only
 * with dst not one frame behind), DM_ERR_SHAPE (other cache sizes), copy errors. */
dm_status vda_stream_copy_state(vda_stream *dst, const vda_stream *src, int last_only);

/* For tests: 1 if the two streams hold the same state (bookkeeping, and bitwise the contents
 * of every referenced pool slot), 0 if not; -(DM_ERR_ARG) unless both are on the CPU
 * backend (copy a device stream's state to a CPU stream first). */
int vda_stream_state_equal(const vda_stream *a, const vda_stream *b);

/* Frames pushed since init / reset. */
int64_t vda_stream_frames(const vda_stream *s);
/* Model input size (pixels, multiples of 14). */
void vda_stream_input_dims(const vda_stream *s, int *h, int *w);

#endif
