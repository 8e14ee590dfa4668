/* Internal helpers of Video Depth Anything shared by vda*.c. */
#ifndef DM_MODELS_VDA_INTERNAL_H
#define DM_MODELS_VDA_INTERNAL_H

#include <stdint.h>

#include "depthmatte/vda.h"
#include "models/dinov2.h"
#include "models/dpt_temporal.h"

/* Metric flag of a context (vda_ctx_source_dims: include/depthmatte/vda.h). */
int vda_ctx_metric(const vda_ctx *c);

/* Copies window input slot `src` to slot `dst` on the backend (padding with the last frame).
 * Errors as dm_copy. */
dm_status vda_window_copy_slot(vda_ctx *c, int src, int dst);

/* The loaded encoder and head of a model (for the streaming form, vda_stream.c). */
const dinov2_weights *vda_model_encoder(const vda_model *m);
const dptt_weights *vda_model_head(const vda_model *m);

/* infer_video_depth's / infer_video_depth_one's input transform (Resize with cv2 INTER_CUBIC on
 * the float32 image, ImageNet mean / std), for dm_image_cubic_normalize. */
extern const dm_image_norm_params vda_norm_params;

#endif
