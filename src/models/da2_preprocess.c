/* OpenCV-compatible bicubic resize in double (see da2_preprocess.h). Written from the
 * documented behaviour of cv::resize; the weights are computed in float as OpenCV does
 * (interpolateCubic), which matters at the 1e-8 level only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/da2_preprocess.h"

static void cubic_weights(float x, float w[4]) {
    const float A = -0.75f;
    w[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    w[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    w[3] = 1.f - w[0] - w[1] - w[2];
}

/* Source index and 4 weights of every destination index along one axis. */
static void axis_taps(int in, int out, int *ofs, float *wt) {
    const double scale = 1. / ((double)out / in);
    for (int d = 0; d < out; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        ofs[d] = s;
        cubic_weights(f, wt + 4 * d);
    }
}

static inline int clampi(int v, int hi) { /* to [0, hi) */
    return v < 0 ? 0 : (v >= hi ? hi - 1 : v);
}

dm_status da2_cv_resize_cubic(const double *src, int sh, int sw, int cn, double *dst, int dh, int dw,
                         double *tmp) {
    if (sh == dh && sw == dw) { /* cv::resize copies when the size is unchanged */
        memcpy(dst, src, sizeof(double) * (size_t)sh * sw * cn);
        return DM_OK;
    }
    int *xofs = malloc(sizeof(int) * (size_t)(dw + dh));
    float *xw = malloc(sizeof(float) * 4 * (size_t)(dw + dh));
    if (!xofs || !xw) {
        free(xofs), free(xw);
        return dm_error_set(DM_ERR_NOMEM, "da2: no memory for resize tables");
    }
    int *yofs = xofs + dw;
    float *yw = xw + 4 * (size_t)dw;
    axis_taps(sw, dw, xofs, xw);
    axis_taps(sh, dh, yofs, yw);
#pragma omp parallel for
    for (int y = 0; y < sh; y++) {
        const double *row = src + (size_t)y * sw * cn;
        double *t = tmp + (size_t)y * dw * cn;
        for (int dx = 0; dx < dw; dx++) {
            const int s = xofs[dx];
            const float *a = xw + 4 * dx;
            const int i0 = clampi(s - 1, sw), i1 = clampi(s, sw), i2 = clampi(s + 1, sw),
                      i3 = clampi(s + 2, sw);
            for (int c = 0; c < cn; c++)
                t[dx * cn + c] = row[i0 * cn + c] * a[0] + row[i1 * cn + c] * a[1] +
                                 row[i2 * cn + c] * a[2] + row[i3 * cn + c] * a[3];
        }
    }
#pragma omp parallel for
    for (int dy = 0; dy < dh; dy++) {
        const int s = yofs[dy];
        const float *b = yw + 4 * dy;
        const size_t rl = (size_t)dw * cn;
        const double *r0 = tmp + clampi(s - 1, sh) * rl, *r1 = tmp + clampi(s, sh) * rl,
                     *r2 = tmp + clampi(s + 1, sh) * rl, *r3 = tmp + clampi(s + 2, sh) * rl;
        double *d = dst + dy * rl;
        for (size_t i = 0; i < rl; i++) d[i] = r0[i] * b[0] + r1[i] * b[1] + r2[i] * b[2] + r3[i] * b[3];
    }
    free(xofs);
    free(xw);
    return DM_OK;
}
