/* Elementwise kernels of the CUDA backend: dtype conversion, activation, broadcast binary ops,
 * channel concat, the bias+activation epilogue of conv/linear, and the non-finite counter.
 * Semantics as the CPU reference (src/nn/cpu/elementwise.c); grid-stride loops over int64
 * indices so that any tensor size works with a bounded grid. */
#include "dtype.cuh"

static const int kBlock = 256;

__global__ void convert_kernel(const void *x, int xt, void *y, int yt, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        st_from_f32(y, yt, i, ld_as_f32(x, xt, i));
}

__global__ void activation_kernel(const void *x, int xt, void *y, int yt, int64_t n, int act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        st_from_f32(y, yt, i, act_f32(ld_as_f32(x, xt, i), act));
}

__global__ void binary_kernel(const void *a, int at, const void *b, int bt, int64_t nb, void *y,
                              int yt, int64_t n, int op) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float u = ld_as_f32(a, at, i), v = ld_as_f32(b, bt, i % nb);
        st_from_f32(y, yt, i, op == DM_BINARY_ADD ? u + v : (op == DM_BINARY_SUB ? u - v : u * v));
    }
}

__global__ void concat_kernel(const void *a, int at, int64_t ca, const void *b, int bt,
                              int64_t cb, void *y, int yt, int64_t outer) {
    const int64_t row = ca + cb, n = outer * row;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / row, j = i - o * row;
        float v = j < ca ? ld_as_f32(a, at, o * ca + j) : ld_as_f32(b, bt, o * cb + (j - ca));
        st_from_f32(y, yt, i, v);
    }
}

__global__ void bias_act_kernel(const void *x, int xt, const void *b, int bt, void *y, int yt,
                                int64_t n, int64_t C, int64_t inner, int act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = ld_as_f32(x, xt, i);
        if (b) v += ld_as_f32(b, bt, (i / inner) % C);
        st_from_f32(y, yt, i, act_f32(v, act));
    }
}

/* y = x * scale[c or n*C+c] + shift[c] on (N, C, HW); explicit rounding steps (no FMA) so the
 * result equals the CPU reference's x*a + b bit for bit. */
__global__ void channel_affine_kernel(const void *x, int xt, const void *sc, int sct, int64_t ns,
                                      const void *sh, int sht, void *y, int yt, int64_t N,
                                      int64_t C, int64_t HW) {
    const int64_t n_all = N * C * HW;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_all;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = (i / HW) % C, n = i / (HW * C);
        const float a = sc ? ld_as_f32(sc, sct, ns == C ? c : n * C + c) : 1.f;
        const float b = sh ? ld_as_f32(sh, sht, c) : 0.f;
        st_from_f32(y, yt, i, __fadd_rn(__fmul_rn(ld_as_f32(x, xt, i), a), b));
    }
}

__global__ void nonfinite_kernel(const void *x, int xt, int64_t n, unsigned long long *counter) {
    unsigned local = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        local += !isfinite(ld_as_f32(x, xt, i));
    /* one atomic per warp, not per element: non-finite frames can be all-NaN */
    for (int off = 16; off > 0; off >>= 1) local += __shfl_down_sync(0xffffffffu, local, off);
    if ((threadIdx.x & 31) == 0 && local) atomicAdd(counter, (unsigned long long)local);
}

extern "C" {

dm_status cuda_convert(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                       int64_t n) {
    if (n <= 0) return DM_OK;
    convert_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, y, yt, n);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_activation(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                          int64_t n, dm_act act) {
    if (n <= 0) return DM_OK;
    activation_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, y, yt, n, act);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_binary(cudaStream_t s, const void *a, dm_dtype at, const void *b, dm_dtype bt,
                      int64_t nb, void *y, dm_dtype yt, int64_t n, dm_binary_op op) {
    if (n <= 0) return DM_OK;
    binary_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(a, at, b, bt, nb, y, yt, n, op);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_concat(cudaStream_t s, const void *a, dm_dtype at, int64_t ca, const void *b,
                      dm_dtype bt, int64_t cb, void *y, dm_dtype yt, int64_t outer) {
    int64_t n = outer * (ca + cb);
    if (n <= 0) return DM_OK;
    concat_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(a, at, ca, b, bt, cb, y, yt, outer);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_bias_act(cudaStream_t s, const void *x, dm_dtype xt, const void *b, dm_dtype bt,
                        void *y, dm_dtype yt, int64_t N, int64_t C, int64_t inner, dm_act act) {
    int64_t n = N * C * inner;
    if (n <= 0) return DM_OK;
    bias_act_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, b, bt, y, yt, n, C, inner, act);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_channel_affine(cudaStream_t s, const void *x, dm_dtype xt, const void *scale,
                              dm_dtype st, int64_t ns, const void *shift, dm_dtype sht, void *y,
                              dm_dtype yt, int64_t N, int64_t C, int64_t HW) {
    const int64_t n = N * C * HW;
    if (n <= 0) return DM_OK;
    channel_affine_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, scale, st, ns, shift, sht,
                                                                 y, yt, N, C, HW);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_count_nonfinite(cudaStream_t s, const void *x, dm_dtype xt, int64_t n,
                               unsigned long long *counter) {
    if (n <= 0) return DM_OK;
    nonfinite_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, n, counter);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

} /* extern "C" */
