/* Pooling ops, CPU reference: average pooling with ceil_mode / count_include_pad=False,
 * global average pooling and max pooling with padding. Semantics of torch.nn.AvgPool2d
 * (aten/src/ATen/native/Pool.h pooling_output_shape, AvgPoolKernel.cpp),
 * torch.nn.AdaptiveAvgPool2d(1) (which PyTorch computes as a mean over H and W) and
 * torch.nn.MaxPool2d with ceil_mode=False (MaxPoolKernel.cpp: padded positions are skipped,
 * a NaN in the window wins). */
#include <math.h>

#include "cpu_ops.h"

/* Output size of one axis with padding 0 and ceil_mode=True, as pooling_output_shape: the
 * last window must start inside the input. */
static int pool_out_size(int in, int k, int s) {
    int num = in - k + (s - 1);
    int out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1; /* floor division */
    if (out >= 1 && (out - 1) * s >= in) out--;
    return out;
}

dm_status avgpool2d_cpu(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 4, "avgpool2d", "x")) || (st = cpu_check_f32(y, 4, "avgpool2d", "y")))
        return st;
    if (k < 1 || s < 1) return dm_error_set(DM_ERR_ARG, "avgpool2d: kernel %d stride %d", k, s);
    const int NC = (int)(x->shape[0] * x->shape[1]), H = (int)x->shape[2], W = (int)x->shape[3];
    const int Ho = pool_out_size(H, k, s), Wo = pool_out_size(W, k, s);
    if (Ho < 1 || Wo < 1) return dm_error_set(DM_ERR_SHAPE, "avgpool2d: input %dx%d smaller than "
                                              "kernel %d", H, W, k);
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] ||
        y->shape[2] != Ho || y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "avgpool2d: y is [%lld, %lld, %lld, %lld], expected "
                            "[%lld, %lld, %d, %d]", (long long)y->shape[0], (long long)y->shape[1],
                            (long long)y->shape[2], (long long)y->shape[3],
                            (long long)x->shape[0], (long long)x->shape[1], Ho, Wo);
    const float *xd = dm_f32(x);
    float *yd = dm_f32(y);
#pragma omp parallel for
    for (int nc = 0; nc < NC; nc++) {
        const float *xc = xd + (size_t)nc * H * W;
        float *yc = yd + (size_t)nc * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            int y0 = oy * s, y1 = y0 + k < H ? y0 + k : H;
            for (int ox = 0; ox < Wo; ox++) {
                int x0 = ox * s, x1 = x0 + k < W ? x0 + k : W;
                float sum = 0.f;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) sum += xc[(size_t)iy * W + ix];
                /* count_include_pad=False: divide by the clipped window's size */
                yc[(size_t)oy * Wo + ox] = sum / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
    return DM_OK;
}

dm_status global_avgpool2d_cpu(dm_backend *be, const dm_tensor *x, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 4, "global_avgpool2d", "x")) ||
        (st = cpu_check_f32(y, 4, "global_avgpool2d", "y")))
        return st;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != 1 ||
        y->shape[3] != 1)
        return dm_error_set(DM_ERR_SHAPE, "global_avgpool2d: y must be (N, C, 1, 1) of x");
    const int NC = (int)(x->shape[0] * x->shape[1]);
    const int64_t HW = x->shape[2] * x->shape[3];
    if (HW < 1) return dm_error_set(DM_ERR_SHAPE, "global_avgpool2d: empty input");
    const float *xd = dm_f32(x);
    float *yd = dm_f32(y);
#pragma omp parallel for
    for (int nc = 0; nc < NC; nc++) {
        const float *xc = xd + (size_t)nc * HW;
        /* double accumulation: at least as accurate as PyTorch's cascade sum */
        double sum = 0.0;
        for (int64_t i = 0; i < HW; i++) sum += xc[i];
        yd[nc] = (float)(sum / (double)HW);
    }
    return DM_OK;
}

dm_status maxpool2d_cpu(dm_backend *be, const dm_tensor *x, int k, int s, int pad, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 4, "maxpool2d", "x")) || (st = cpu_check_f32(y, 4, "maxpool2d", "y")))
        return st;
    if (k < 1 || s < 1 || pad < 0 || pad > k / 2)
        return dm_error_set(DM_ERR_ARG, "maxpool2d: kernel %d stride %d padding %d (need "
                            "k, s >= 1, 0 <= padding <= k/2)", k, s, pad);
    const int NC = (int)(x->shape[0] * x->shape[1]), H = (int)x->shape[2], W = (int)x->shape[3];
    if (H + 2 * pad < k || W + 2 * pad < k)
        return dm_error_set(DM_ERR_SHAPE, "maxpool2d: input %dx%d (padding %d) smaller than "
                            "kernel %d", W, H, pad, k);
    /* ceil_mode=False: floor((in + 2 pad - k) / s) + 1 */
    const int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != Ho ||
        y->shape[3] != Wo)
        return dm_error_set(DM_ERR_SHAPE, "maxpool2d: y is [%lld, %lld, %lld, %lld], expected "
                            "[%lld, %lld, %d, %d]", (long long)y->shape[0], (long long)y->shape[1],
                            (long long)y->shape[2], (long long)y->shape[3],
                            (long long)x->shape[0], (long long)x->shape[1], Ho, Wo);
    const float *xd = dm_f32(x);
    float *yd = dm_f32(y);
#pragma omp parallel for
    for (int nc = 0; nc < NC; nc++) {
        const float *xc = xd + (size_t)nc * H * W;
        float *yc = yd + (size_t)nc * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            int y0 = oy * s - pad, y1 = y0 + k;
            if (y0 < 0) y0 = 0;
            if (y1 > H) y1 = H;
            for (int ox = 0; ox < Wo; ox++) {
                int x0 = ox * s - pad, x1 = x0 + k;
                if (x0 < 0) x0 = 0;
                if (x1 > W) x1 = W;
                /* pad <= k/2 keeps every window non-empty */
                float m = -INFINITY;
                for (int iy = y0; iy < y1 && !isnan(m); iy++)
                    for (int ix = x0; ix < x1 && !isnan(m); ix++) {
                        const float v = xc[(size_t)iy * W + ix];
                        if (v > m || isnan(v)) m = v;
                    }
                yc[(size_t)oy * Wo + ox] = m;
            }
        }
    }
    return DM_OK;
}
