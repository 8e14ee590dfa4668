/* Bilinear and bicubic resizes of (N, C, H, W), CPU reference, following
 * torch.nn.functional.interpolate (aten/src/ATen/native/UpSample.h: area_pixel_compute_source_index,
 * cubic convolution with A = -0.75, antialias=False). */
#include <math.h>

#include "cpu_ops.h"

/* Source coordinate of output index dst along one axis. */
static double src_coord(int dst, int in, int out, int align_corners, double scale) {
    if (align_corners) return out > 1 ? (double)dst * (in - 1) / (out - 1) : 0.0;
    double s = scale > 0 ? 1.0 / scale : (double)in / out;
    return (dst + 0.5) * s - 0.5;
}

static float cubic1(float x, float A) { /* |x| <= 1 */
    return ((A + 2.f) * x - (A + 3.f)) * x * x + 1.f;
}
static float cubic2(float x, float A) { /* 1 < |x| < 2 */
    return ((A * x - 5.f * A) * x + 8.f * A) * x - 4.f * A;
}

static inline int clampi(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

dm_status resize_cpu(dm_backend *be, const dm_tensor *x, dm_resize_mode mode, int align_corners,
                     double scale_h, double scale_w, dm_tensor *y) {
    dm_status st;
    if ((st = cpu_check_f32(x, 4, "resize", "x")) || (st = cpu_check_f32(y, 4, "resize", "y")))
        return st;
    if (x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
        return dm_error_set(DM_ERR_SHAPE, "resize: N and C of x and y differ");
    const int NC = (int)(x->shape[0] * x->shape[1]);
    const int H = (int)x->shape[2], W = (int)x->shape[3];
    const int Ho = (int)y->shape[2], Wo = (int)y->shape[3];
    const float *xd = dm_f32(x);
    float *yd = dm_f32(y);
    if (mode == DM_RESIZE_BILINEAR) {
        /* Column indices and weights depend only on ox: computed once per call (the same float
         * values as per pixel), not NC * Ho times. Scratch: 2 ints + 2 floats per column. */
        void *tab = dm_backend_scratch(be, (sizeof(int) * 2 + sizeof(float) * 2) * (size_t)Wo);
        if (!tab) return dm_error_set(DM_ERR_NOMEM, "resize: no memory for tables");
        float *lxs = tab, *hxs = lxs + Wo;
        int *x0s = (int *)(hxs + Wo), *x1s = x0s + Wo;
        for (int ox = 0; ox < Wo; ox++) {
            float sx = (float)src_coord(ox, W, Wo, align_corners, scale_w);
            if (!align_corners && sx < 0) sx = 0;
            int x0 = (int)sx;
            if (x0 > W - 1) x0 = W - 1;
            x0s[ox] = x0;
            x1s[ox] = x0 < W - 1 ? x0 + 1 : x0;
            lxs[ox] = sx - x0;
            hxs[ox] = 1.f - lxs[ox];
        }
#pragma omp parallel for
        for (int nc = 0; nc < NC; nc++) {
            const float *xc = xd + (size_t)nc * H * W;
            float *yc = yd + (size_t)nc * Ho * Wo;
            for (int oy = 0; oy < Ho; oy++) {
                /* PyTorch computes the coordinate in float (accscalar_t) for float inputs */
                float sy = (float)src_coord(oy, H, Ho, align_corners, scale_h);
                if (!align_corners && sy < 0) sy = 0;
                int y0 = (int)sy;
                if (y0 > H - 1) y0 = H - 1;
                int y1 = y0 < H - 1 ? y0 + 1 : y0;
                float ly = sy - y0, hy = 1.f - ly;
                const float *r0 = xc + (size_t)y0 * W, *r1 = xc + (size_t)y1 * W;
                float *yr = yc + (size_t)oy * Wo;
                for (int ox = 0; ox < Wo; ox++) {
                    const int x0 = x0s[ox], x1 = x1s[ox];
                    const float lx = lxs[ox], hx = hxs[ox];
                    yr[ox] = hy * (hx * r0[x0] + lx * r0[x1]) + ly * (hx * r1[x0] + lx * r1[x1]);
                }
            }
        }
        return DM_OK;
    }
    if (mode == DM_RESIZE_BICUBIC) {
        const float A = -0.75f;
#pragma omp parallel for
        for (int nc = 0; nc < NC; nc++) {
            const float *xc = xd + (size_t)nc * H * W;
            float *yc = yd + (size_t)nc * Ho * Wo;
            for (int oy = 0; oy < Ho; oy++) {
                float sy = (float)src_coord(oy, H, Ho, align_corners, scale_h);
                int iy = (int)floorf(sy);
                float ty = sy - iy;
                float wy[4] = {cubic2(ty + 1.f, A), cubic1(ty, A), cubic1(1.f - ty, A),
                               cubic2(2.f - ty, A)};
                for (int ox = 0; ox < Wo; ox++) {
                    float sx = (float)src_coord(ox, W, Wo, align_corners, scale_w);
                    int ix = (int)floorf(sx);
                    float tx = sx - ix;
                    float wx[4] = {cubic2(tx + 1.f, A), cubic1(tx, A), cubic1(1.f - tx, A),
                                   cubic2(2.f - tx, A)};
                    float acc = 0.f;
                    for (int j = 0; j < 4; j++) {
                        const float *row = xc + (size_t)clampi(iy - 1 + j, 0, H - 1) * W;
                        float r = 0.f;
                        for (int i = 0; i < 4; i++) r += wx[i] * row[clampi(ix - 1 + i, 0, W - 1)];
                        acc += wy[j] * r;
                    }
                    yc[(size_t)oy * Wo + ox] = acc;
                }
            }
        }
        return DM_OK;
    }
    return dm_error_set(DM_ERR_ARG, "resize: unknown mode %d", (int)mode);
}
