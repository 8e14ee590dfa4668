/* conv2d, CPU reference: im2col + OpenBLAS SGEMM per group; direct loops for depthwise.
 * Semantics of torch.nn.functional.conv2d (zero padding, dilation, groups). */
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"

/* col (Cg*kh*kw, Ho*Wo) from one image's channels [c0, c0+Cg) of x (C, H, W). */
static void im2col(const float *x, int H, int W, int Cg, int kh, int kw,
                   const dm_conv2d_params *p, int Ho, int Wo, float *col) {
#pragma omp parallel for collapse(2)
    for (int c = 0; c < Cg; c++) {
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                float *dst = col + ((size_t)(c * kh + ky) * kw + kx) * Ho * Wo;
                const float *src = x + (size_t)c * H * W;
                for (int oy = 0; oy < Ho; oy++) {
                    int iy = oy * p->stride_h - p->pad_h + ky * p->dilation_h;
                    float *row = dst + (size_t)oy * Wo;
                    if (iy < 0 || iy >= H) {
                        memset(row, 0, sizeof(float) * (size_t)Wo);
                        continue;
                    }
                    for (int ox = 0; ox < Wo; ox++) {
                        int ix = ox * p->stride_w - p->pad_w + kx * p->dilation_w;
                        row[ox] = (ix >= 0 && ix < W) ? src[(size_t)iy * W + ix] : 0.f;
                    }
                }
            }
        }
    }
}

/* Depthwise conv, row-wise: for each output row and kernel tap, the range of output columns
 * whose input column is inside the image is computed once, so the inner loop has no bounds
 * checks (and vectorises for stride 1). Taps are summed in the same (ky, kx) order as a naive
 * loop, bias added last, so results equal the straightforward per-pixel formulation. */
static void depthwise(const float *x, const float *w, const float *b, int C, int H, int W,
                      int kh, int kw, const dm_conv2d_params *p, int Ho, int Wo, float *y) {
    const int sh = p->stride_h, sw = p->stride_w, ph = p->pad_h, pw = p->pad_w;
    const int dh = p->dilation_h, dw = p->dilation_w;
    const dm_act act = p->act;
#pragma omp parallel for
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * H * W;
        const float *wc = w + (size_t)c * kh * kw;
        float *yc = y + (size_t)c * Ho * Wo;
        const float bias = b ? b[c] : 0.f;
        for (int oy = 0; oy < Ho; oy++) {
            float *yr = yc + (size_t)oy * Wo;
            for (int ox = 0; ox < Wo; ox++) yr[ox] = 0.f;
            for (int ky = 0; ky < kh; ky++) {
                const int iy = oy * sh - ph + ky * dh;
                if (iy < 0 || iy >= H) continue;
                const float *xr = xc + (size_t)iy * W;
                for (int kx = 0; kx < kw; kx++) {
                    const int off = kx * dw - pw; /* input column = ox * sw + off */
                    int lo = off < 0 ? (-off + sw - 1) / sw : 0;
                    int hi = W - 1 - off < 0 ? -1 : (W - 1 - off) / sw;
                    if (hi > Wo - 1) hi = Wo - 1;
                    const float wv = wc[ky * kw + kx];
                    if (sw == 1) {
                        const float *xs = xr + off;
                        for (int ox = lo; ox <= hi; ox++) yr[ox] += xs[ox] * wv;
                    } else {
                        for (int ox = lo; ox <= hi; ox++) yr[ox] += xr[ox * sw + off] * wv;
                    }
                }
            }
            for (int ox = 0; ox < Wo; ox++) yr[ox] = cpu_act(yr[ox] + bias, act);
        }
    }
}

dm_status conv2d_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                     const dm_conv2d_params *p, dm_tensor *y) {
    dm_status st;
    if ((st = cpu_check_f32(x, 4, "conv2d", "x")) || (st = cpu_check_f32(w, 4, "conv2d", "w")) ||
        (st = cpu_check_f32(y, 4, "conv2d", "y")) || (b && (st = cpu_check_f32(b, 1, "conv2d", "b"))))
        return st;
    const int N = (int)x->shape[0], Cin = (int)x->shape[1], H = (int)x->shape[2],
              W = (int)x->shape[3];
    const int Cout = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    const int g = p->groups;
    if (g < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1)
        return dm_error_set(DM_ERR_ARG, "conv2d: invalid stride/dilation/groups");
    if (Cin % g || Cout % g || w->shape[1] != Cin / g)
        return dm_error_set(DM_ERR_SHAPE, "conv2d: x has %d channels, w expects %lld x %d groups",
                            Cin, (long long)w->shape[1], g);
    if (b && b->shape[0] != Cout)
        return dm_error_set(DM_ERR_SHAPE, "conv2d: bias has %lld entries, expected %d",
                            (long long)b->shape[0], Cout);
    const int Ho = (H + 2 * p->pad_h - p->dilation_h * (kh - 1) - 1) / p->stride_h + 1;
    const int Wo = (W + 2 * p->pad_w - p->dilation_w * (kw - 1) - 1) / p->stride_w + 1;
    if (y->shape[0] != N || y->shape[1] != Cout || y->shape[2] != Ho || y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "conv2d: y is [%lld, %lld, %lld, %lld], expected "
                            "[%d, %d, %d, %d]", (long long)y->shape[0], (long long)y->shape[1],
                            (long long)y->shape[2], (long long)y->shape[3], N, Cout, Ho, Wo);
    const float *xd = dm_f32(x), *wd = dm_f32(w), *bd = b ? dm_f32(b) : NULL;
    float *yd = dm_f32(y);
    const size_t in_img = (size_t)Cin * H * W, out_img = (size_t)Cout * Ho * Wo;

    if (g == Cin && g == Cout) {
        for (int n = 0; n < N; n++)
            depthwise(xd + n * in_img, wd, bd, Cin, H, W, kh, kw, p, Ho, Wo, yd + n * out_img);
        return DM_OK;
    }
    const int Cg = Cin / g, Og = Cout / g, K = Cg * kh * kw, HWo = Ho * Wo;
    const int direct = kh == 1 && kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                       p->pad_h == 0 && p->pad_w == 0;
    float *col = NULL;
    if (!direct) {
        col = dm_backend_scratch(be, sizeof(float) * (size_t)K * HWo);
        if (!col) return dm_error_set(DM_ERR_NOMEM, "conv2d: no memory for im2col");
    }
    for (int n = 0; n < N; n++) {
        for (int gi = 0; gi < g; gi++) {
            const float *xg = xd + n * in_img + (size_t)gi * Cg * H * W;
            float *yg = yd + n * out_img + (size_t)gi * Og * HWo;
            const float *src = xg;
            if (!direct) {
                im2col(xg, H, W, Cg, kh, kw, p, Ho, Wo, col);
                src = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Og, HWo, K, 1.f,
                        wd + (size_t)gi * Og * K, K, src, HWo, 0.f, yg, HWo);
        }
        float *yn = yd + n * out_img;
#pragma omp parallel for
        for (int c = 0; c < Cout; c++) {
            float bias = bd ? bd[c] : 0.f;
            float *yc = yn + (size_t)c * HWo;
            for (int i = 0; i < HWo; i++) yc[i] = cpu_act(yc[i] + bias, p->act);
        }
    }
    return DM_OK;
}
