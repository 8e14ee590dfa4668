/* Internal helpers of Video Depth Anything shared by vda*.c. */
#ifndef DM_MODELS_VDA_INTERNAL_H
#define DM_MODELS_VDA_INTERNAL_H

#include <stdint.h>

#include "depthmatte/vda.h"
#include "models/dinov2.h"
#include "models/dpt_temporal.h"

/* cv2.resize INTER_CUBIC taps for (sh, sw) -> (dh, dw): per destination index 4 clamped source
 * indices and 4 float weights; x axis first (dw entries), then y (dh entries). */
typedef struct vda_resize {
    int sh, sw, dh, dw;
    int *ofs;
    float *wt;
} vda_resize;

dm_status vda_resize_tables(vda_resize *r, int sh, int sw, int dh, int dw);
void vda_resize_free(vda_resize *r);

/* rgb (sh, sw, 3) u8 -> out (3, dh, dw) f32, the official float32 transform. Workspace: src
 * (sh, sw, 3), tmp (sh, dw, 3), dst (dh, dw, 3) floats. */
void vda_transform_u8(const vda_resize *r, const uint8_t *rgb, float *src, float *tmp,
                      float *dst, float *out);

/* Metric flag of a context (vda_ctx_source_dims: include/depthmatte/vda.h). */
int vda_ctx_metric(const vda_ctx *c);

/* Copies window input slot `src` to slot `dst` (padding with the last frame). */
void vda_window_copy_slot(vda_ctx *c, int src, int dst);

/* The loaded encoder and head of a model (for the streaming form, vda_stream.c). */
const dinov2_weights *vda_model_encoder(const vda_model *m);
const dptt_weights *vda_model_head(const vda_model *m);

#endif
