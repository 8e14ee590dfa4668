/* Bilinear and bicubic resizes of (N, C, H, W), CPU reference, following
 * torch.nn.functional.interpolate (aten/src/ATen/native/UpSample.h:
 * area_pixel_compute_source_index, cubic convolution with A = -0.75, antialias=False), but more
 * exactly than PyTorch's float32 kernels: source coordinates in double (bilinear: float weights
 * from the exact fraction; bicubic: evaluated in double and rounded once; reasons below). */
#include <math.h>

#include "cpu_ops.h"

/* Source coordinate of output index dst along one axis. */
static double src_coord(int dst, int in, int out, int align_corners, double scale) {
    if (align_corners) return out > 1 ? (double)dst * (in - 1) / (out - 1) : 0.0;
    double s = scale > 0 ? 1.0 / scale : (double)in / out;
    return (dst + 0.5) * s - 0.5;
}

/* Cubic convolution weights (Keys, A = -0.75 as PyTorch) of the 4 taps around a source
 * coordinate with fractional part t in [0, 1), in double. */
static void cubic_weights(double t, double w[4]) {
    const double A = -0.75;
    const double d[4] = {t + 1.0, t, 1.0 - t, 2.0 - t}; /* distances to taps -1, 0, 1, 2 */
    for (int i = 0; i < 4; i++) {
        const double x = d[i];
        w[i] = x <= 1.0 ? ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                        : ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    }
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
        /* Column indices and weights depend only on ox: computed once per call, not NC * Ho
         * times. Scratch: 2 ints + 2 floats per column. The coordinate stays in double and only
         * the fraction is rounded to float: PyTorch's float32 kernel rounds the coordinate
         * itself (ulp 1.2e-4 of a pixel near 1217), which alone put up to 1.6e-4 * std of
         * error into DA-V2's 518x1218 -> 272x640 output resize and ~2e-4 * std into its DPT
         * head (benchmarks/da2/fidelity_da2.py); the exact fraction costs nothing per pixel. */
        void *tab = dm_backend_scratch(be, (sizeof(int) * 2 + sizeof(float) * 2) * (size_t)Wo);
        if (!tab) return dm_error_set(DM_ERR_NOMEM, "resize: no memory for tables");
        float *lxs = tab, *hxs = lxs + Wo;
        int *x0s = (int *)(hxs + Wo), *x1s = x0s + Wo;
        for (int ox = 0; ox < Wo; ox++) {
            double sx = src_coord(ox, W, Wo, align_corners, scale_w);
            if (!align_corners && sx < 0) sx = 0;
            int x0 = (int)sx;
            if (x0 > W - 1) x0 = W - 1;
            x0s[ox] = x0;
            x1s[ox] = x0 < W - 1 ? x0 + 1 : x0;
            lxs[ox] = (float)(sx - x0);
            hxs[ox] = 1.f - lxs[ox];
        }
#pragma omp parallel for
        for (int nc = 0; nc < NC; nc++) {
            const float *xc = xd + (size_t)nc * H * W;
            float *yc = yd + (size_t)nc * Ho * Wo;
            for (int oy = 0; oy < Ho; oy++) {
                double sy = src_coord(oy, H, Ho, align_corners, scale_h);
                if (!align_corners && sy < 0) sy = 0;
                int y0 = (int)sy;
                if (y0 > H - 1) y0 = H - 1;
                int y1 = y0 < H - 1 ? y0 + 1 : y0;
                float ly = (float)(sy - y0), hy = 1.f - ly;
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
        /* Evaluated in double (coordinates, weights, sums) and rounded once: PyTorch computes
         * the source coordinate in float32, whose rounding (up to 1/2 ulp of a coordinate near
         * 36, i.e. ~2e-6 of a pixel step) moved DINOv2's resized position embedding by up to
         * ~45 float ulp (2.7e-6 of values ~0.5) from the exact interpolation; DA-V2 at 518x1218
         * then differed from a float64 evaluation 3x more than elsewhere (benchmarks/da2,
         * fidelity_da2.py). Only the position embedding (once per context) uses bicubic, so
         * double costs nothing. Column taps and weights are tabulated once per call. */
        const size_t tab_bytes = (sizeof(int) * 4 + sizeof(double) * 4) * (size_t)Wo;
        void *tab = dm_backend_scratch(be, tab_bytes);
        if (!tab) return dm_error_set(DM_ERR_NOMEM, "resize: no memory for tables");
        double *wxs = tab;
        int *ixs = (int *)(wxs + 4 * (size_t)Wo);
        for (int ox = 0; ox < Wo; ox++) {
            const double sx = src_coord(ox, W, Wo, align_corners, scale_w);
            const int ix = (int)floor(sx);
            cubic_weights(sx - ix, wxs + 4 * (size_t)ox);
            for (int i = 0; i < 4; i++)
                ixs[4 * ox + i] = clampi(ix - 1 + i, 0, W - 1);
        }
#pragma omp parallel for
        for (int nc = 0; nc < NC; nc++) {
            const float *xc = xd + (size_t)nc * H * W;
            float *yc = yd + (size_t)nc * Ho * Wo;
            for (int oy = 0; oy < Ho; oy++) {
                const double sy = src_coord(oy, H, Ho, align_corners, scale_h);
                const int iy = (int)floor(sy);
                double wy[4];
                cubic_weights(sy - iy, wy);
                const float *rows[4];
                for (int j = 0; j < 4; j++)
                    rows[j] = xc + (size_t)clampi(iy - 1 + j, 0, H - 1) * W;
                for (int ox = 0; ox < Wo; ox++) {
                    const double *wx = wxs + 4 * (size_t)ox;
                    const int *ix = ixs + 4 * ox;
                    double acc = 0.0;
                    for (int j = 0; j < 4; j++) {
                        const float *row = rows[j];
                        acc += wy[j] * (wx[0] * row[ix[0]] + wx[1] * row[ix[1]] +
                                        wx[2] * row[ix[2]] + wx[3] * row[ix[3]]);
                    }
                    yc[(size_t)oy * Wo + ox] = (float)acc;
                }
            }
        }
        return DM_OK;
    }
    return dm_error_set(DM_ERR_ARG, "resize: unknown mode %d", (int)mode);
}
