/* image_cubic_normalize, CPU reference (backend.h): u8 RGB frames -> / 255 -> OpenCV-compatible
 * bicubic resize (cv2.resize INTER_CUBIC) -> (v - mean) / std -> NCHW float. Written from the
 * documented behaviour of cv::resize (resizeGeneric_ with HResizeCubic / VResizeCubic); the
 * weights are computed in float as OpenCV's interpolateCubic does. Two arithmetics, each the
 * one of its official preprocessing (DA-V2 image2tensor on a CV_64F image, Video Depth
 * Anything's transform on a CV_32F image); the code is the former models/da2_preprocess.c and
 * models/vda_preprocess.c moved behind the op, so their results are bitwise unchanged (this
 * file is built with -ffp-contract=off like the rest: no FMA). The / 255 is applied while the
 * horizontal pass reads a pixel (the same value the former separate pass stored), and the
 * normalisation while the vertical pass writes one. Workspace: the tap tables and one
 * horizontal-pass image (H, w, 3) in the backend scratch. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu_ops.h"

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

/* 4 clamped source indices and 4 weights of every destination index along one axis. */
static void axis_taps(int in, int out, int *ofs, float *wt) {
    const double scale = 1. / ((double)out / in);
    for (int d = 0; d < out; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        for (int k = 0; k < 4; k++)
            ofs[4 * d + k] = clampi(s - 1 + k, in);
        cubic_weights(f, wt + 4 * d);
    }
}

typedef struct cubic_plan {
    int sh, sw, dh, dw;
    const int *xo, *yo;
    const float *xw, *yw;
    double mean[3], stdv[3];
} cubic_plan;

/* DA-V2: double image, double sums (float weights promoted), double normalisation. */
static void frame_f64(const cubic_plan *p, const uint8_t *rgb, double *tmp, float *out) {
    const int sh = p->sh, sw = p->sw, dh = p->dh, dw = p->dw;
    const size_t hw = (size_t)dh * dw;
    if (sh == dh && sw == dw) { /* cv::resize copies when the size is unchanged */
        for (size_t i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++)
                out[c * hw + i] = (float)((rgb[3 * i + c] / 255.0 - p->mean[c]) / p->stdv[c]);
        return;
    }
#pragma omp parallel for
    for (int y = 0; y < sh; y++) {
        const uint8_t *row = rgb + (size_t)y * sw * 3;
        double *t = tmp + (size_t)y * dw * 3;
        for (int dx = 0; dx < dw; dx++) {
            const int *o = p->xo + 4 * dx;
            const float *a = p->xw + 4 * dx;
            for (int c = 0; c < 3; c++)
                t[dx * 3 + c] = row[o[0] * 3 + c] / 255.0 * a[0] +
                                row[o[1] * 3 + c] / 255.0 * a[1] +
                                row[o[2] * 3 + c] / 255.0 * a[2] + row[o[3] * 3 + c] / 255.0 * a[3];
        }
    }
    const size_t rl = (size_t)dw * 3;
#pragma omp parallel for
    for (int dy = 0; dy < dh; dy++) {
        const int *o = p->yo + 4 * dy;
        const float *b = p->yw + 4 * dy;
        const double *r0 = tmp + o[0] * rl, *r1 = tmp + o[1] * rl, *r2 = tmp + o[2] * rl,
                     *r3 = tmp + o[3] * rl;
        for (int dx = 0; dx < dw; dx++)
            for (int c = 0; c < 3; c++) {
                const size_t i = (size_t)dx * 3 + c;
                const double v = r0[i] * b[0] + r1[i] * b[1] + r2[i] * b[2] + r3[i] * b[3];
                out[c * hw + (size_t)dy * dw + dx] = (float)((v - p->mean[c]) / p->stdv[c]);
            }
    }
}

/* VDA: float image, float products and sums in tap order, normalisation in double. */
static void frame_f32(const cubic_plan *p, const uint8_t *rgb, float *tmp, float *out) {
    const int sh = p->sh, sw = p->sw, dh = p->dh, dw = p->dw;
    const size_t hw = (size_t)dh * dw;
    if (sh == dh && sw == dw) { /* cv::resize copies when the size is unchanged */
        for (size_t i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++)
                out[c * hw + i] =
                    (float)(((double)((float)rgb[3 * i + c] / 255.0f) - p->mean[c]) / p->stdv[c]);
        return;
    }
#pragma omp parallel for
    for (int y = 0; y < sh; y++) {
        const uint8_t *row = rgb + (size_t)y * sw * 3;
        float *t = tmp + (size_t)y * dw * 3;
        for (int dx = 0; dx < dw; dx++) {
            const int *o = p->xo + 4 * dx;
            const float *a = p->xw + 4 * dx;
            for (int c = 0; c < 3; c++) {
                float v = (float)row[o[0] * 3 + c] / 255.0f * a[0]; /* numpy f32 / 255.0 */
                v = v + (float)row[o[1] * 3 + c] / 255.0f * a[1];
                v = v + (float)row[o[2] * 3 + c] / 255.0f * a[2];
                v = v + (float)row[o[3] * 3 + c] / 255.0f * a[3];
                t[dx * 3 + c] = v;
            }
        }
    }
    const size_t rl = (size_t)dw * 3;
#pragma omp parallel for
    for (int dy = 0; dy < dh; dy++) {
        const int *o = p->yo + 4 * dy;
        const float *b = p->yw + 4 * dy;
        const float *r0 = tmp + o[0] * rl, *r1 = tmp + o[1] * rl, *r2 = tmp + o[2] * rl,
                    *r3 = tmp + o[3] * rl;
        for (int dx = 0; dx < dw; dx++)
            for (int c = 0; c < 3; c++) {
                const size_t i = (size_t)dx * 3 + c;
                float v = b[0] * r0[i];
                v = v + b[1] * r1[i];
                v = v + b[2] * r2[i];
                v = v + b[3] * r3[i];
                /* NormalizeImage with float64 mean/std arrays: the float value is promoted */
                out[c * hw + (size_t)dy * dw + dx] = (float)(((double)v - p->mean[c]) / p->stdv[c]);
            }
    }
}

dm_status image_cubic_normalize_cpu(dm_backend *be, const dm_tensor *rgb,
                                    const dm_image_norm_params *prm, dm_tensor *y) {
    const char *op = "image_cubic_normalize";
    dm_status st;
    if (!rgb || !rgb->data) return dm_error_set(DM_ERR_ARG, "%s: rgb is NULL", op);
    if (rgb->device != DM_DEVICE_CPU || rgb->dtype != DM_DTYPE_U8 || rgb->ndim != 4 ||
        rgb->shape[3] != 3)
        return dm_error_set(DM_ERR_SHAPE, "%s: rgb must be a CPU u8 (N, H, W, 3) tensor", op);
    if ((st = cpu_check_f32(y, 4, op, "y"))) return st;
    if (!prm || (prm->arith != DM_CUBIC_F64 && prm->arith != DM_CUBIC_F32))
        return dm_error_set(DM_ERR_ARG, "%s: no or unknown arithmetic", op);
    const int64_t N = rgb->shape[0];
    if (y->shape[0] != N || y->shape[1] != 3 || rgb->shape[1] < 1 || rgb->shape[2] < 1 ||
        y->shape[2] < 1 || y->shape[3] < 1 || rgb->shape[1] > 65536 || rgb->shape[2] > 65536 ||
        y->shape[2] > 65536 || y->shape[3] > 65536)
        return dm_error_set(DM_ERR_SHAPE, "%s: y must be (%lld, 3, h, w), sizes 1..65536", op,
                            (long long)N);
    for (int c = 0; c < 3; c++)
        if (!(prm->std[c] != 0.0)) return dm_error_set(DM_ERR_ARG, "%s: std[%d] is zero", op, c);
    cubic_plan p = {(int)rgb->shape[1],
                    (int)rgb->shape[2],
                    (int)y->shape[2],
                    (int)y->shape[3],
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    {0},
                    {0}};
    memcpy(p.mean, prm->mean, sizeof p.mean);
    memcpy(p.stdv, prm->std, sizeof p.stdv);
    const size_t taps = 4 * ((size_t)p.dw + p.dh);
    const size_t tab = (taps * (sizeof(int) + sizeof(float)) + 63) / 64 * 64;
    const size_t esz = prm->arith == DM_CUBIC_F64 ? sizeof(double) : sizeof(float);
    char *ws = dm_backend_scratch(be, tab + esz * 3 * (size_t)p.sh * p.dw);
    if (!ws) return dm_error_set(DM_ERR_NOMEM, "%s: no scratch memory", op);
    int *ofs = (int *)ws;
    float *wt = (float *)(ofs + taps);
    axis_taps(p.sw, p.dw, ofs, wt);
    axis_taps(p.sh, p.dh, ofs + 4 * (size_t)p.dw, wt + 4 * (size_t)p.dw);
    p.xo = ofs, p.yo = ofs + 4 * (size_t)p.dw, p.xw = wt, p.yw = wt + 4 * (size_t)p.dw;
    const size_t in_frame = (size_t)3 * p.sh * p.sw, out_frame = (size_t)3 * p.dh * p.dw;
    for (int64_t n = 0; n < N; n++) {
        const uint8_t *src = (const uint8_t *)rgb->data + n * in_frame;
        float *dst = dm_f32(y) + n * out_frame;
        if (prm->arith == DM_CUBIC_F64)
            frame_f64(&p, src, (double *)(ws + tab), dst);
        else
            frame_f32(&p, src, (float *)(ws + tab), dst);
    }
    return DM_OK;
}
