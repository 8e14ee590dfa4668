/* Internal: OpenCV-compatible bicubic resize in double precision (cv2.resize INTER_CUBIC of a
 * CV_64F image, as in DA-V2's image2tensor). */
#ifndef DM_MODELS_DA2_PREPROCESS_H
#define DM_MODELS_DA2_PREPROCESS_H

#include "depthmatte/status.h"

/* Resizes src (sh, sw, cn) interleaved doubles to dst (dh, dw, cn) like cv2.resize(...,
 * interpolation=INTER_CUBIC) (modules/imgproc/src/resize.cpp, resizeGeneric_ with
 * HResizeCubic / VResizeCubic): per axis scale = 1 / (dsize/ssize),
 * fx = (float)((dx + 0.5) * scale - 0.5), sx = floor(fx), fx -= sx; float Keys weights with
 * A = -0.75 (the last weight is 1 - the other three); taps at sx-1..sx+2 clamped to the
 * border (BORDER_REPLICATE); horizontal pass first, sums in double. Equal sizes copy.
 * tmp holds sh * dw * cn doubles. DM_ERR_NOMEM if the index tables cannot be allocated. */
dm_status da2_cv_resize_cubic(const double *src, int sh, int sw, int cn, double *dst, int dh, int dw,
                         double *tmp);

#endif
