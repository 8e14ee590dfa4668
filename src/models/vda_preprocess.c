/* Video Depth Anything frame transform (infer_video_depth: frame.astype(float32) / 255.0,
 * Resize(... INTER_CUBIC) on the float32 image, NormalizeImage, PrepareForNet). Unlike
 * DA-V2's image2tensor the cv2 resize runs on a CV_32F image, i.e. OpenCV's
 * resizeGeneric_<HResizeCubic<float>, VResizeCubic<float>> with float sums: horizontal pass
 * t = ((s0*a0 + s1*a1) + s2*a2) + s3*a3, then the same vertically, each product and sum
 * rounded to float (no FMA). Taps and weights as in models/da2_preprocess.c (interpolateCubic,
 * A = -0.75, border replicated). Our own implementation of the documented cv::resize. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/vda_internal.h"

static void cubic_weights(float x, float w[4]) {
    const float A = -0.75f;
    w[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    w[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    w[3] = 1.f - w[0] - w[1] - w[2];
}

static inline int clampi(int v, int hi) { /* to [0, hi) */
    return v < 0 ? 0 : (v >= hi ? hi - 1 : v);
}

dm_status vda_resize_tables(vda_resize *r, int sh, int sw, int dh, int dw) {
    memset(r, 0, sizeof *r);
    r->sh = sh, r->sw = sw, r->dh = dh, r->dw = dw;
    r->ofs = malloc(sizeof(int) * 4 * (size_t)(dw + dh));
    r->wt = malloc(sizeof(float) * 4 * (size_t)(dw + dh));
    if (!r->ofs || !r->wt) {
        vda_resize_free(r);
        return dm_error_set(DM_ERR_NOMEM, "vda: no memory for resize tables");
    }
    const int in[2] = {sw, sh}, out[2] = {dw, dh};
    for (int a = 0; a < 2; a++) {
        int *ofs = r->ofs + (a ? 4 * (size_t)dw : 0);
        float *wt = r->wt + (a ? 4 * (size_t)dw : 0);
        const double scale = 1. / ((double)out[a] / in[a]);
        for (int d = 0; d < out[a]; d++) {
            float f = (float)((d + 0.5) * scale - 0.5);
            int s = (int)floorf(f);
            f -= (float)s;
            for (int k = 0; k < 4; k++) ofs[4 * d + k] = clampi(s - 1 + k, in[a]);
            cubic_weights(f, wt + 4 * d);
        }
    }
    return DM_OK;
}

void vda_resize_free(vda_resize *r) {
    free(r->ofs);
    free(r->wt);
    memset(r, 0, sizeof *r);
}

void vda_transform_u8(const vda_resize *r, const uint8_t *rgb, float *src, float *tmp,
                      float *dst, float *out) {
    const int sh = r->sh, sw = r->sw, dh = r->dh, dw = r->dw;
    const size_t n = 3 * (size_t)sh * sw;
    for (size_t i = 0; i < n; i++) src[i] = (float)rgb[i] / 255.0f; /* numpy f32 / 255.0 */
    const float *img = src;
    if (sh != dh || sw != dw) { /* cv::resize copies when the size is unchanged */
        const int *xo = r->ofs, *yo = r->ofs + 4 * (size_t)dw;
        const float *xw = r->wt, *yw = r->wt + 4 * (size_t)dw;
        for (int y = 0; y < sh; y++) {
            const float *row = src + (size_t)y * sw * 3;
            float *t = tmp + (size_t)y * dw * 3;
            for (int dx = 0; dx < dw; dx++) {
                const int *o = xo + 4 * dx;
                const float *a = xw + 4 * dx;
                for (int c = 0; c < 3; c++) {
                    float v = row[o[0] * 3 + c] * a[0];
                    v = v + row[o[1] * 3 + c] * a[1];
                    v = v + row[o[2] * 3 + c] * a[2];
                    v = v + row[o[3] * 3 + c] * a[3];
                    t[dx * 3 + c] = v;
                }
            }
        }
        const size_t rl = (size_t)dw * 3;
        for (int dy = 0; dy < dh; dy++) {
            const int *o = yo + 4 * dy;
            const float *b = yw + 4 * dy;
            const float *r0 = tmp + o[0] * rl, *r1 = tmp + o[1] * rl, *r2 = tmp + o[2] * rl,
                        *r3 = tmp + o[3] * rl;
            float *d = dst + dy * rl;
            for (size_t i = 0; i < rl; i++) {
                float v = b[0] * r0[i];
                v = v + b[1] * r1[i];
                v = v + b[2] * r2[i];
                v = v + b[3] * r3[i];
                d[i] = v;
            }
        }
        img = dst;
    }
    /* NormalizeImage with float64 mean/std arrays: the float32 image is promoted to double */
    static const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
    const size_t hw = (size_t)dh * dw;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++)
            out[c * hw + i] = (float)(((double)img[3 * i + c] - mean[c]) / stdv[c]);
}
