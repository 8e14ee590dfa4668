/* conv2d, CPU reference: im2col + OpenBLAS SGEMM per group; direct loops for depthwise.
 * Semantics of torch.nn.functional.conv2d (zero padding, dilation, groups). */
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"

/* Output columns per GEMM tile (im2col path): the col tile, K x cols floats, is kept near
 * 4 MiB so that it is written, packed by OpenBLAS and consumed while still in cache, instead of
 * streaming a K x Ho*Wo matrix (hundreds of MiB for the 512x288 decoder convs of RVM) through
 * memory. Tiling the output columns does not change the K-summation of any output element. */
#define CONV_TILE_FLOATS (1 << 20)

/* Valid output range [lo, hi] of a 1-D tap: output index o reads input o * s + off, which must
 * lie in [0, n). hi < lo when no output does. */
static void tap_range(int off, int s, int n, int n_out, int *lo, int *hi) {
    *lo = off < 0 ? (-off + s - 1) / s : 0;
    *hi = n - 1 - off < 0 ? -1 : (n - 1 - off) / s;
    if (*hi > n_out - 1) *hi = n_out - 1;
    if (*lo > n_out) *lo = n_out;
}

/* col (Cg*kh*kw, (oy1-oy0)*Wo): the im2col rows of output rows [oy0, oy1) from channels
 * [0, Cg) of x (Cg, H, W); zero where a tap falls into the padding. */
static void im2col(const float *x, int H, int W, int Cg, int kh, int kw,
                   const dm_conv2d_params *p, int oy0, int oy1, int Wo, float *col) {
    const int nb = (oy1 - oy0) * Wo, sw = p->stride_w;
#pragma omp parallel for collapse(2)
    for (int c = 0; c < Cg; c++) {
        for (int ky = 0; ky < kh; ky++) {
            const float *src = x + (size_t)c * H * W;
            for (int kx = 0; kx < kw; kx++) {
                float *dst = col + ((size_t)(c * kh + ky) * kw + kx) * nb;
                const int off = kx * p->dilation_w - p->pad_w;
                int lo, hi;
                tap_range(off, sw, W, Wo, &lo, &hi);
                for (int oy = oy0; oy < oy1; oy++) {
                    const int iy = oy * p->stride_h - p->pad_h + ky * p->dilation_h;
                    float *row = dst + (size_t)(oy - oy0) * Wo;
                    if (iy < 0 || iy >= H || hi < lo) {
                        memset(row, 0, sizeof(float) * (size_t)Wo);
                        continue;
                    }
                    const float *xr = src + (size_t)iy * W + off;
                    for (int ox = 0; ox < lo; ox++) row[ox] = 0.f;
                    if (sw == 1)
                        memcpy(row + lo, xr + lo, sizeof(float) * (size_t)(hi - lo + 1));
                    else
                        for (int ox = lo; ox <= hi; ox++) row[ox] = xr[ox * sw];
                    for (int ox = hi + 1; ox < Wo; ox++) row[ox] = 0.f;
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
                    int lo, hi;
                    tap_range(off, sw, W, Wo, &lo, &hi);
                    const float wv = wc[ky * kw + kx];
                    if (sw == 1) {
                        const float *xs = xr + off;
                        for (int ox = lo; ox <= hi; ox++) yr[ox] += xs[ox] * wv;
                    } else {
                        for (int ox = lo; ox <= hi; ox++) yr[ox] += xr[ox * sw + off] * wv;
                    }
                }
            }
            cpu_bias_act(yr, Wo, bias, act);
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
    /* output rows per tile; a 1x1 conv reads x in place and is not tiled */
    int tile_rows = Ho;
    float *col = NULL;
    if (!direct) {
        tile_rows = (int)(CONV_TILE_FLOATS / ((size_t)K * Wo));
        if (tile_rows < 1) tile_rows = 1;
        if (tile_rows > Ho) tile_rows = Ho;
        col = dm_backend_scratch(be, sizeof(float) * (size_t)K * tile_rows * Wo);
        if (!col) return dm_error_set(DM_ERR_NOMEM, "conv2d: no memory for im2col");
    }
    for (int n = 0; n < N; n++) {
        for (int oy0 = 0; oy0 < Ho; oy0 += tile_rows) {
            const int oy1 = oy0 + tile_rows < Ho ? oy0 + tile_rows : Ho;
            const int nb = (oy1 - oy0) * Wo;
            for (int gi = 0; gi < g; gi++) {
                const float *xg = xd + n * in_img + (size_t)gi * Cg * H * W;
                float *yg = yd + n * out_img + (size_t)gi * Og * HWo + (size_t)oy0 * Wo;
                const float *src = xg;
                int ldb = HWo;
                if (!direct) {
                    im2col(xg, H, W, Cg, kh, kw, p, oy0, oy1, Wo, col);
                    src = col;
                    ldb = nb;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Og, nb, K, 1.f,
                            wd + (size_t)gi * Og * K, K, src, ldb, 0.f, yg, HWo);
            }
            /* bias + activation on the tile while it is still in cache */
            float *yt = yd + n * out_img + (size_t)oy0 * Wo;
#pragma omp parallel for
            for (int c = 0; c < Cout; c++)
                cpu_bias_act(yt + (size_t)c * HWo, nb, bd ? bd[c] : 0.f, p->act);
        }
    }
    return DM_OK;
}
