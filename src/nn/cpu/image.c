/* Image conversion, CPU reference: interleaved 8-bit RGB (N, H, W, 3) -> planar float
 * (N, 3, H, W) in [0, 1], the usual ToTensor convention (v / 255, a true division so that the
 * result is bit-identical to PyTorch's `tensor.float() / 255`). */
#include <stdint.h>

#include "cpu_ops.h"

dm_status image_from_u8_cpu(dm_backend *be, const dm_tensor *rgb, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(y, 4, "image_from_u8", "y"))) return st;
    if (!rgb || !rgb->data || rgb->device != DM_DEVICE_CPU || rgb->dtype != DM_DTYPE_U8 ||
        rgb->ndim != 4)
        return dm_error_set(DM_ERR_DTYPE, "image_from_u8: rgb must be a CPU u8 (N, H, W, 3) tensor");
    const int N = (int)rgb->shape[0], H = (int)rgb->shape[1], W = (int)rgb->shape[2];
    if (rgb->shape[3] != 3 || y->shape[0] != N || y->shape[1] != 3 || y->shape[2] != H ||
        y->shape[3] != W)
        return dm_error_set(DM_ERR_SHAPE, "image_from_u8: rgb (N, H, W, 3) and y (N, 3, H, W) "
                            "do not match");
    const size_t HW = (size_t)H * W;
    const uint8_t *xd = rgb->data;
    float *yd = dm_f32(y);
    for (int n = 0; n < N; n++) {
        const uint8_t *xn = xd + (size_t)n * HW * 3;
        float *yn = yd + (size_t)n * HW * 3;
#pragma omp parallel for
        for (int r = 0; r < H; r++) {
            const uint8_t *p = xn + (size_t)r * W * 3;
            float *o0 = yn + (size_t)r * W, *o1 = o0 + HW, *o2 = o1 + HW;
            for (int i = 0; i < W; i++) {
                o0[i] = (float)p[3 * i] / 255.f;
                o1[i] = (float)p[3 * i + 1] / 255.f;
                o2[i] = (float)p[3 * i + 2] / 255.f;
            }
        }
    }
    return DM_OK;
}
