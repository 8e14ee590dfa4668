/* conv_transpose2d, CPU reference (torch.nn.functional.conv_transpose2d, groups 1, dilation 1,
 * output_padding 0): per image one SGEMM col (Cout*kh*kw, H*W) = w^T x, then col2im scatters
 * the columns into y with stride and padding (overlapping taps add up), then the bias. */
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"

dm_status conv_transpose2d_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                               const dm_tensor *b, int stride, int pad, dm_tensor *y) {
    dm_status st;
    if ((st = cpu_check_f32(x, 4, "conv_transpose2d", "x")) ||
        (st = cpu_check_f32(w, 4, "conv_transpose2d", "w")) ||
        (st = cpu_check_f32(y, 4, "conv_transpose2d", "y")) ||
        (b && (st = cpu_check_f32(b, 1, "conv_transpose2d", "b"))))
        return st;
    if (stride < 1 || pad < 0)
        return dm_error_set(DM_ERR_ARG, "conv_transpose2d: stride %d / pad %d invalid", stride,
                            pad);
    const int N = (int)x->shape[0], Cin = (int)x->shape[1], H = (int)x->shape[2],
              W = (int)x->shape[3];
    const int Cout = (int)w->shape[1], kh = (int)w->shape[2], kw = (int)w->shape[3];
    if (w->shape[0] != Cin)
        return dm_error_set(DM_ERR_SHAPE, "conv_transpose2d: x has %d channels, w (Cin, Cout, "
                            "kh, kw) expects %lld", Cin, (long long)w->shape[0]);
    if (b && b->shape[0] != Cout)
        return dm_error_set(DM_ERR_SHAPE, "conv_transpose2d: bias has %lld entries, expected %d",
                            (long long)b->shape[0], Cout);
    const int Ho = (H - 1) * stride - 2 * pad + kh, Wo = (W - 1) * stride - 2 * pad + kw;
    if (y->shape[0] != N || y->shape[1] != Cout || y->shape[2] != Ho || y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "conv_transpose2d: y is [%lld, %lld, %lld, %lld], "
                            "expected [%d, %d, %d, %d]", (long long)y->shape[0],
                            (long long)y->shape[1], (long long)y->shape[2],
                            (long long)y->shape[3], N, Cout, Ho, Wo);
    const int HW = H * W, R = Cout * kh * kw;
    float *col = dm_backend_scratch(be, sizeof(float) * (size_t)R * HW);
    if (!col) return dm_error_set(DM_ERR_NOMEM, "conv_transpose2d: no memory for columns");
    const float *xd = dm_f32(x), *wd = dm_f32(w), *bd = b ? dm_f32(b) : NULL;
    float *yd = dm_f32(y);
    for (int n = 0; n < N; n++) {
        const float *xn = xd + (size_t)n * Cin * HW;
        float *yn = yd + (size_t)n * Cout * Ho * Wo;
        /* w viewed as (Cin, R): col (R, HW) = w^T (R, Cin) @ x (Cin, HW) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, HW, Cin, 1.f, wd, R, xn, HW,
                    0.f, col, HW);
        /* Each output channel is written by one thread only, so the scatter-add needs no
         * atomics; taps are added in (ky, kx) order as the column rows are laid out. */
#pragma omp parallel for
        for (int co = 0; co < Cout; co++) {
            float *yc = yn + (size_t)co * Ho * Wo;
            const float bias = bd ? bd[co] : 0.f;
            for (int i = 0; i < Ho * Wo; i++) yc[i] = 0.f;
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++) {
                    const float *cr = col + ((size_t)(co * kh + ky) * kw + kx) * HW;
                    for (int iy = 0; iy < H; iy++) {
                        const int oy = iy * stride - pad + ky;
                        if (oy < 0 || oy >= Ho) continue;
                        for (int ix = 0; ix < W; ix++) {
                            const int ox = ix * stride - pad + kx;
                            if (ox < 0 || ox >= Wo) continue;
                            yc[(size_t)oy * Wo + ox] += cr[(size_t)iy * W + ix];
                        }
                    }
                }
            }
            for (int i = 0; i < Ho * Wo; i++) yc[i] += bias;
        }
    }
    return DM_OK;
}
