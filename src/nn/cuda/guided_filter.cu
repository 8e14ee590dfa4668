/* Guided-filter kernels of the CUDA backend (RVM refiners; He et al., "Guided Image Filtering",
 * TPAMI 2013; Wu et al., CVPR 2018; RobustVideoMatting model/fast_guided_filter.py and
 * deep_guided_filter.py). Same arithmetic, in the same order, as src/nn/cpu/guided_filter.c:
 *   guided_coeffs:   a = (mean_xy - mean_x*mean_y) / (mean_xx - mean_x^2 + eps), b = mean_y - a*mean_x;
 *   matting_compose: bilinear upsampling of a, b (align_corners=False, float coordinates
 *                    in/out*(dst+0.5)-0.5 clamped at 0), out = a*guide + b with guide
 *                    [R, G, B, mean(R,G,B)], fgr = clamp(out[:3] + src, 0, 1),
 *                    pha = clamp(out[3], 0, 1); NaN stays NaN. */
#include "dtype.cuh"

__device__ __forceinline__ float clamp01(float v) {
    return v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
}

__global__ void guided_coeffs_kernel(const void *m, int mt, void *a, int at, void *b, int bt,
                                     int64_t N, int64_t K, int64_t HW, float eps) {
    const int64_t n_all = N * K * HW;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_all;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t p = i % HW, k = (i / HW) % K, n = i / (HW * K);
        const int64_t base = (n * 4 * K + k) * HW + p, step = K * HW;
        const float mx = ld_as_f32(m, mt, base), my = ld_as_f32(m, mt, base + step);
        const float mxy = ld_as_f32(m, mt, base + 2 * step), mxx = ld_as_f32(m, mt, base + 3 * step);
        const float cov = __fsub_rn(mxy, __fmul_rn(mx, my)); /* no FMA: match the CPU order */
        const float var = __fsub_rn(mxx, __fmul_rn(mx, mx));
        const float A = cov / (var + eps);
        st_from_f32(a, at, i, A);
        st_from_f32(b, bt, i, __fsub_rn(my, __fmul_rn(A, mx)));
    }
}

__global__ void matting_compose_kernel(const void *a, int at, const void *b, int bt,
                                       const void *src, int st, void *fgr, int ft, void *pha,
                                       int pt, int64_t N, int H, int W, int h, int w) {
    const int64_t HWs = (int64_t)H * W, hws = (int64_t)h * w, n_all = N * HWs;
    const float scx = (float)w / (float)W, scy = (float)h / (float)H;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_all;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int x = (int)(i % W), y = (int)((i / W) % H);
        const int64_t n = i / HWs, pix = i % HWs;
        float sx = a ? scx * ((float)x + 0.5f) - 0.5f : (float)x;
        float sy = a ? scy * ((float)y + 0.5f) - 0.5f : (float)y;
        if (sx < 0.f) sx = 0.f;
        if (sy < 0.f) sy = 0.f;
        const int x0 = min((int)sx, w - 1), y0 = min((int)sy, h - 1);
        const int x1 = x0 < w - 1 ? x0 + 1 : x0, y1 = y0 < h - 1 ? y0 + 1 : y0;
        const float lx = sx - (float)x0, hx = 1.f - lx, ly = sy - (float)y0, hy = 1.f - ly;
        const int64_t sb = n * 3 * HWs + pix;
        const float r = ld_as_f32(src, st, sb), g = ld_as_f32(src, st, sb + HWs),
                    bl = ld_as_f32(src, st, sb + 2 * HWs);
        const float guide[4] = {r, g, bl, (r + g + bl) / 3.f};
        float out[4];
        for (int c = 0; c < 4; c++) {
            const int64_t cb = (n * 4 + c) * hws;
            const int64_t i00 = cb + (int64_t)y0 * w + x0, i01 = cb + (int64_t)y0 * w + x1;
            const int64_t i10 = cb + (int64_t)y1 * w + x0, i11 = cb + (int64_t)y1 * w + x1;
            float bv = hy * (hx * ld_as_f32(b, bt, i00) + lx * ld_as_f32(b, bt, i01)) +
                       ly * (hx * ld_as_f32(b, bt, i10) + lx * ld_as_f32(b, bt, i11));
            if (a) {
                float av = hy * (hx * ld_as_f32(a, at, i00) + lx * ld_as_f32(a, at, i01)) +
                           ly * (hx * ld_as_f32(a, at, i10) + lx * ld_as_f32(a, at, i11));
                out[c] = av * guide[c] + bv;
            } else {
                out[c] = bv;
            }
        }
        if (fgr) {
            st_from_f32(fgr, ft, sb, clamp01(out[0] + r));
            st_from_f32(fgr, ft, sb + HWs, clamp01(out[1] + g));
            st_from_f32(fgr, ft, sb + 2 * HWs, clamp01(out[2] + bl));
        }
        st_from_f32(pha, pt, n * HWs + pix, clamp01(out[3]));
    }
}

extern "C" dm_status cuda_guided_coeffs(cudaStream_t s, const void *m, dm_dtype mt, void *a,
                                        dm_dtype at, void *b, dm_dtype bt, int64_t N, int64_t K,
                                        int64_t HW, float eps) {
    const int64_t n = N * K * HW;
    if (n <= 0) return DM_OK;
    guided_coeffs_kernel<<<grid_for(n, 256), 256, 0, s>>>(m, mt, a, at, b, bt, N, K, HW, eps);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

extern "C" dm_status cuda_matting_compose(cudaStream_t s, const void *a, dm_dtype at,
                                          const void *b, dm_dtype bt, const void *src,
                                          dm_dtype st, void *fgr, dm_dtype ft, void *pha,
                                          dm_dtype pt, int64_t N, int H, int W, int h, int w) {
    const int64_t n = N * H * W;
    if (n <= 0) return DM_OK;
    matting_compose_kernel<<<grid_for(n, 256), 256, 0, s>>>(a, at, b, bt, src, st, fgr, ft, pha,
                                                            pt, N, H, W, h, w);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}
