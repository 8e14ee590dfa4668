/* Internal helpers of Video Depth Anything shared by vda*.c. */
#ifndef DM_MODELS_VDA_INTERNAL_H
#define DM_MODELS_VDA_INTERNAL_H

#include <stdint.h>

#include "depthmatte/vda.h"

/* Metric flag of a context (vda_ctx_source_dims: include/depthmatte/vda.h). */
int vda_ctx_metric(const vda_ctx *c);

/* Copies window input slot `src` to slot `dst` on the backend (padding with the last frame).
 * Errors as dm_copy. */
dm_status vda_window_copy_slot(vda_ctx *c, int src, int dst);

#endif
