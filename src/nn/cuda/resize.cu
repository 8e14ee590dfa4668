/* Bilinear and bicubic resize of (N, C, H, W) on the GPU, one thread per output pixel.
 * Semantics identical to the CPU reference src/nn/cpu/resize.c, which follows
 * torch.nn.functional.interpolate (aten/src/ATen/native/UpSample.h): source coordinate
 * (dst + 0.5) / scale - 0.5 computed in double, only its fraction rounded to float (PyTorch's
 * float32 kernel rounds the coordinate itself, ~1e-4 of a pixel near 1217: see the CPU file),
 * bilinear clamps negative coordinates to 0, bicubic uses cubic convolution with A = -0.75 and
 * border-clamped taps (float weights here; the CPU bicubic sums in double, within the op
 * tolerance of this). */
#include "dtype.cuh"

__device__ __forceinline__ double src_coord(int dst, int in, int out, int align_corners,
                                            double scale) {
    if (align_corners) return out > 1 ? (double)dst * (in - 1) / (out - 1) : 0.0;
    double s = scale > 0 ? 1.0 / scale : (double)in / out;
    return (dst + 0.5) * s - 0.5;
}

__device__ __forceinline__ float cubic1(float x, float A) { /* |x| <= 1 */
    return ((A + 2.f) * x - (A + 3.f)) * x * x + 1.f;
}
__device__ __forceinline__ float cubic2(float x, float A) { /* 1 < |x| < 2 */
    return ((A * x - 5.f * A) * x + 8.f * A) * x - 4.f * A;
}
__device__ __forceinline__ int clampi(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* 2-D grid: x over output columns, y over output rows (NC * Ho, grid-stride): no 64-bit
 * division per pixel; the source coordinate of a column is the same for every row. */
__global__ void resize_kernel(const void *x, int xt, void *y, int yt, int64_t NC, int H, int W,
                              int Ho, int Wo, int mode, int align_corners, double scale_h,
                              double scale_w) {
    const int ox = blockIdx.x * blockDim.x + threadIdx.x;
    if (ox >= Wo) return;
    const int64_t nrows = NC * Ho;
    for (int64_t r = blockIdx.y; r < nrows; r += gridDim.y) {
        /* uniform branch: 32-bit division whenever the row count fits (every model tensor) */
        const int64_t nc = nrows < 0x7fffffffLL ? (int64_t)((int)r / Ho) : r / Ho;
        const int oy = (int)(r - nc * Ho);
        const int64_t xc = nc * H * W, i = r * Wo + ox;
        /* coordinates stay in double, only the fraction is rounded (as the CPU reference) */
        double sy = src_coord(oy, H, Ho, align_corners, scale_h);
        double sx = src_coord(ox, W, Wo, align_corners, scale_w);
        float out;
        if (mode == DM_RESIZE_BILINEAR) {
            if (!align_corners && sy < 0) sy = 0;
            if (!align_corners && sx < 0) sx = 0;
            int y0 = min((int)sy, H - 1), x0 = min((int)sx, W - 1);
            int y1 = y0 < H - 1 ? y0 + 1 : y0, x1 = x0 < W - 1 ? x0 + 1 : x0;
            float ly = (float)(sy - y0), hy = 1.f - ly, lx = (float)(sx - x0), hx = 1.f - lx;
            out = hy * (hx * ld_as_f32(x, xt, xc + (int64_t)y0 * W + x0) +
                        lx * ld_as_f32(x, xt, xc + (int64_t)y0 * W + x1)) +
                  ly * (hx * ld_as_f32(x, xt, xc + (int64_t)y1 * W + x0) +
                        lx * ld_as_f32(x, xt, xc + (int64_t)y1 * W + x1));
        } else {
            const float A = -0.75f;
            int iy = (int)floor(sy), ix = (int)floor(sx);
            float ty = (float)(sy - iy), tx = (float)(sx - ix);
            float wy[4] = {cubic2(ty + 1.f, A), cubic1(ty, A), cubic1(1.f - ty, A),
                           cubic2(2.f - ty, A)};
            float wx[4] = {cubic2(tx + 1.f, A), cubic1(tx, A), cubic1(1.f - tx, A),
                           cubic2(2.f - tx, A)};
            out = 0.f;
            for (int j = 0; j < 4; j++) {
                const int64_t row = xc + (int64_t)clampi(iy - 1 + j, 0, H - 1) * W;
                float r = 0.f;
                for (int k = 0; k < 4; k++)
                    r += wx[k] * ld_as_f32(x, xt, row + clampi(ix - 1 + k, 0, W - 1));
                out += wy[j] * r;
            }
        }
        st_from_f32(y, yt, i, out);
    }
}

extern "C" dm_status cuda_resize(cudaStream_t s, const void *x, dm_dtype xt, void *y,
                                 dm_dtype yt, int64_t NC, int H, int W, int Ho, int Wo,
                                 dm_resize_mode mode, int align_corners, double scale_h,
                                 double scale_w) {
    const int64_t n = NC * Ho * Wo;
    if (n <= 0) return DM_OK;
    if (mode != DM_RESIZE_BILINEAR && mode != DM_RESIZE_BICUBIC)
        return dm_error_set(DM_ERR_ARG, "resize: unknown mode %d", (int)mode);
    const int64_t rows = NC * Ho;
    const dim3 grid((unsigned)((Wo + 127) / 128), (unsigned)(rows < 65535 ? rows : 65535));
    resize_kernel<<<grid, 128, 0, s>>>(x, xt, y, yt, NC, H, W, Ho, Wo, mode, align_corners,
                                       scale_h, scale_w);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}
