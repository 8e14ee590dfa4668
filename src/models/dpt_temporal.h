/* Internal: DPTHeadTemporal of Video Depth Anything (Video-Depth-Anything/video_depth_anything/
 * dpt_temporal.py): the DA-V2 DPT head (models/dpt.h, same weights under "head.") with four
 * TemporalModules (models/motion_module.h) on layer_3 and layer_4 (after projects +
 * resize_layers, before layer*_rn) and on path_4 and path_3 (after refinenet4 / refinenet3).
 * Frames of one window are the batch: all tensors are (T, C, h, w). */
#ifndef DM_MODELS_DPT_TEMPORAL_H
#define DM_MODELS_DPT_TEMPORAL_H

#include "models/dpt.h"
#include "models/motion_module.h"

typedef struct dptt_weights {
    dpt_weights dpt;
    mm_weights mm[4]; /* motion_modules.0..3: 192, 384, 64, 64 channels */
} dptt_weights;

/* Moves the head's weights onto backend `be` (dpt_each with model_tensor_upload, mm_upload per
 * motion module), once at load. Errors as dm_tensor_upload. */
dm_status dptt_upload(dptt_weights *w, dm_backend *be);

/* Loads "<prefix>projects…", "<prefix>scratch…", "<prefix>motion_modules.N…" (prefix "head."). */
dm_status dptt_load(dptt_weights *w, da2_wsrc *src, const char *prefix);
void dptt_free(dptt_weights *w);

/* Calls fn on every weight tensor (free, upload to a device backend; models/model_tensors.h). */
dm_status dptt_each(dptt_weights *w, model_tensor_fn fn, void *arg);

#define DPTT_MICRO_BATCH 4 /* official micro_batch_size of DPTHeadTemporal.forward */

/* Stages of dptt_forward, in order, as buffer-plan phases relative to the head's first
 * (models/buf_plan.h): reassemble taps 0..3, motion modules 0/1, layer*_rn, refinenet4,
 * motion module 2, refinenet3, motion module 3, the micro-batched tail, after the head
 * (the caller's use of the output and taps). */
enum {
    DPTT_PH_REASSEMBLE = 0, /* + tap index 0..3 */
    DPTT_PH_MM01 = 4,
    DPTT_PH_RN,
    DPTT_PH_REF4,
    DPTT_PH_MM2,
    DPTT_PH_REF3,
    DPTT_PH_MM3,
    DPTT_PH_TAIL,
    DPTT_PH_END,
    DPTT_PHASES
};

typedef struct dptt_ctx {
    int frames, ph, pw;
    int micro_batch; /* frames per pass of the per-frame tail: 4 when it divides frames (and
                        frames > 4, the official rule), else frames */
    dpt_ctx dpt;     /* batch = frames, except the tail: path[1], path[0], oc1, oc1_up, oc2a
                        hold micro_batch frames; t1..t3 and up are flat buffers of the
                        largest fusion temporary */
    mm_scratch mms;  /* shared by the four modules */
} dptt_ctx;

/* Sizes the head for `frames` frames of ph x pw patches, every buffer its own allocation. */
dm_status dptt_ctx_init(dptt_ctx *c, const dptt_weights *w, dm_backend *be, int frames, int ph,
                        int pw);

/* As dptt_ctx_init, the buffers requested from `plan` with lifetimes phase0 + DPTT_PH_*
 * (NULL: own allocations); valid after bp_commit(plan). After dptt_forward only the taps named
 * there and the output hold their values. */
dm_status dptt_ctx_init_plan(dptt_ctx *c, const dptt_weights *w, dm_backend *be, int frames,
                             int ph, int pw, buf_plan *plan, int phase0);
void dptt_ctx_free(dptt_ctx *c);

/* feats[i] (T, ph*pw, 384) normed patch tokens of blocks 2, 5, 8, 11 -> c->dpt.out
 * (T, 1, 14ph, 14pw), >= 0. refinenet2, refinenet1 and the output convs run on micro_batch
 * frames at a time (DPTHeadTemporal.forward, micro_batch_size 4; same values). When mm0_in is not NULL, layer_3 before motion module 0 is
 * copied there ((T, 192, ph, pw), for tests). After the call the module outputs are
 * c->dpt.layer[2] (mm0), layer[3] (mm1), path[3] (mm2), path[2] (mm3). */
dm_status dptt_forward(dptt_ctx *c, const dptt_weights *w, dm_backend *be,
                       const dm_tensor *const feats[4], dm_tensor *mm0_in);

#endif
