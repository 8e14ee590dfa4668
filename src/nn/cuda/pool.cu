/* Pooling of (N, C, H, W) on the GPU. Max pooling: torch.nn.MaxPool2d(k, s, padding,
 * ceil_mode=False) as the ResNet-50 stem uses it (padding never selected, NaN propagates;
 * same loop as src/nn/cpu/pool.c, so the result is bitwise the CPU one for f32).
 * Average pooling: torch.nn.AvgPool2d(k, s, padding=0,
 * ceil_mode=True, count_include_pad=False) as RVM's decoder uses it. With no padding a window
 * is [o*s, min(o*s + k, H)) and is divided by its clipped size (aten AvgPool2d: divide_factor =
 * (hend - hstart) * (wend - wstart) once hend/wend are clipped to the input). */
#include "dtype.cuh"

__global__ void avgpool2d_kernel(const void *x, int xt, void *y, int yt, int64_t NC, int H,
                                 int W, int Ho, int Wo, int k, int s) {
    const int64_t n = NC * Ho * Wo;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int ox = (int)(i % Wo), oy = (int)((i / Wo) % Ho);
        const int64_t xc = (i / ((int64_t)Wo * Ho)) * H * W;
        const int y0 = oy * s, x0 = ox * s, y1 = min(y0 + k, H), x1 = min(x0 + k, W);
        float acc = 0.f;
        for (int yy = y0; yy < y1; yy++)
            for (int xx = x0; xx < x1; xx++) acc += ld_as_f32(x, xt, xc + (int64_t)yy * W + xx);
        st_from_f32(y, yt, i, acc / (float)((y1 - y0) * (x1 - x0)));
    }
}

/* nn.AdaptiveAvgPool2d(1): one block per (n, c), double accumulation as the CPU reference. */
__global__ void global_avgpool2d_kernel(const void *x, int xt, void *y, int yt, int64_t HW) {
    __shared__ double part[32];
    const int64_t base = blockIdx.x * HW;
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) sum += ld_as_f32(x, xt, base + i);
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) t += part[w];
        st_from_f32(y, yt, blockIdx.x, (float)(t / (double)HW));
    }
}

extern "C" dm_status cuda_global_avgpool2d(cudaStream_t s, const void *x, dm_dtype xt, void *y,
                                           dm_dtype yt, int64_t NC, int64_t HW) {
    if (NC <= 0) return DM_OK;
    if (NC > 0x7fffffffLL) return dm_error_set(DM_ERR_SHAPE, "global_avgpool2d: N*C too large");
    global_avgpool2d_kernel<<<(unsigned)NC, 256, 0, s>>>(x, xt, y, yt, HW);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

extern "C" dm_status cuda_avgpool2d(cudaStream_t s, const void *x, dm_dtype xt, void *y,
                                    dm_dtype yt, int64_t NC, int H, int W, int Ho, int Wo, int k,
                                    int stride) {
    const int64_t n = NC * Ho * Wo;
    if (n <= 0) return DM_OK;
    avgpool2d_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, xt, y, yt, NC, H, W, Ho, Wo, k, stride);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

__global__ void maxpool2d_kernel(const void *x, int xt, void *y, int yt, int64_t NC, int H, int W,
                                 int Ho, int Wo, int k, int s, int pad) {
    const int64_t n = NC * Ho * Wo;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int ox = (int)(i % Wo), oy = (int)((i / Wo) % Ho);
        const int64_t xc = (i / ((int64_t)Wo * Ho)) * H * W;
        const int y0 = max(oy * s - pad, 0), x0 = max(ox * s - pad, 0);
        const int y1 = min(oy * s - pad + k, H), x1 = min(ox * s - pad + k, W);
        float m = -INFINITY;
        for (int yy = y0; yy < y1 && !isnan(m); yy++)
            for (int xx = x0; xx < x1 && !isnan(m); xx++) {
                const float v = ld_as_f32(x, xt, xc + (int64_t)yy * W + xx);
                if (v > m || isnan(v)) m = v;
            }
        st_from_f32(y, yt, i, m);
    }
}

extern "C" dm_status cuda_maxpool2d(cudaStream_t s, const void *x, dm_dtype xt, void *y,
                                    dm_dtype yt, int64_t NC, int H, int W, int Ho, int Wo, int k,
                                    int stride, int pad) {
    const int64_t n = NC * Ho * Wo;
    if (n <= 0) return DM_OK;
    maxpool2d_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, xt, y, yt, NC, H, W, Ho, Wo, k, stride,
                                                       pad);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}
