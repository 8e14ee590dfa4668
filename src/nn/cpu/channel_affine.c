/* Per-channel affine transform, CPU reference: y = x * scale[n, c] + shift[c] on (N, C, H, W).
 * Used for input normalisation (torchvision normalize) and for squeeze-excitation /
 * attention-style channel gating (x * s with s (N, C, 1, 1)). */
#include "cpu_ops.h"

dm_status channel_affine_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                             const dm_tensor *shift, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 4, "channel_affine", "x")) ||
        (st = cpu_check_f32(y, 4, "channel_affine", "y")) ||
        (scale && (st = cpu_check_f32(scale, 0, "channel_affine", "scale"))) ||
        (shift && (st = cpu_check_f32(shift, 0, "channel_affine", "shift"))))
        return st;
    const int N = (int)x->shape[0], C = (int)x->shape[1];
    const int64_t HW = x->shape[2] * x->shape[3];
    if (dm_tensor_numel(y) != dm_tensor_numel(x) || y->shape[1] != C)
        return dm_error_set(DM_ERR_SHAPE, "channel_affine: x and y differ");
    const int64_t ns = scale ? dm_tensor_numel(scale) : 0;
    if (scale && ns != C && ns != (int64_t)N * C)
        return dm_error_set(DM_ERR_SHAPE, "channel_affine: scale has %lld values, expected C=%d "
                            "or N*C=%d", (long long)ns, C, N * C);
    if (shift && dm_tensor_numel(shift) != C)
        return dm_error_set(DM_ERR_SHAPE, "channel_affine: shift has %lld values, expected %d",
                            (long long)dm_tensor_numel(shift), C);
    const float *xd = dm_f32(x), *sd = scale ? dm_f32(scale) : NULL,
                *td = shift ? dm_f32(shift) : NULL;
    float *yd = dm_f32(y);
#pragma omp parallel for collapse(2)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            float a = sd ? sd[ns == C ? c : n * C + c] : 1.f, b = td ? td[c] : 0.f;
            const float *xc = xd + ((size_t)n * C + c) * HW;
            float *yc = yd + ((size_t)n * C + c) * HW;
            for (int64_t i = 0; i < HW; i++) yc[i] = xc[i] * a + b;
        }
    }
    return DM_OK;
}
