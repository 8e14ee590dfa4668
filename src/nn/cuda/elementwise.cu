/* Elementwise kernels of the CUDA backend: dtype conversion, activation, broadcast binary ops,
 * channel concat, the bias+activation epilogue of conv/linear, and the non-finite counter.
 * Semantics as the CPU reference (src/nn/cpu/elementwise.c); grid-stride loops so that any
 * tensor size works with a bounded grid. Index type I is int when the tensor has fewer than
 * 2^31 elements (every tensor of the models: 32-bit div/mod is several times cheaper than
 * 64-bit on the GPU) and int64_t otherwise. convert, activation and binary have a vector path
 * (four elements per thread, one 16/8/4-byte load and store: ld4_as_f32 / st4_from_f32) when
 * the pointers are 16-byte aligned (and for binary the broadcast period is a multiple of 4). */
#include "dtype.cuh"

static const int kBlock = 256;

template <typename I>
__global__ void convert_kernel(const void *x, int xt, void *y, int yt, int64_t n) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < (I)n; i += (I)gridDim.x * blockDim.x)
        st_from_f32(y, yt, i, ld_as_f32(x, xt, i));
}

template <typename I>
__global__ void activation_kernel(const void *x, int xt, void *y, int yt, int64_t n, int act) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < (I)n; i += (I)gridDim.x * blockDim.x)
        st_from_f32(y, yt, i, act_f32(ld_as_f32(x, xt, i), act));
}

template <typename I>
__global__ void binary_kernel(const void *a, int at, const void *b, int bt, int64_t nb, void *y,
                              int yt, int64_t n, int op) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < (I)n; i += (I)gridDim.x * blockDim.x) {
        float u = ld_as_f32(a, at, i), v = ld_as_f32(b, bt, i % (I)nb);
        st_from_f32(y, yt, i, op == DM_BINARY_ADD ? u + v : (op == DM_BINARY_SUB ? u - v : u * v));
    }
}

template <typename I>
__global__ void concat_kernel(const void *a, int at, int64_t ca, const void *b, int bt,
                              int64_t cb, void *y, int yt, int64_t outer) {
    const I row = (I)(ca + cb), n = (I)outer * row, ca_ = (I)ca, cb_ = (I)cb;
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I o = i / row, j = i - o * row;
        float v = j < ca_ ? ld_as_f32(a, at, o * ca_ + j) : ld_as_f32(b, bt, o * cb_ + (j - ca_));
        st_from_f32(y, yt, i, v);
    }
}

template <typename I>
__global__ void bias_act_kernel(const void *x, int xt, const void *b, int bt, void *y, int yt,
                                int64_t n, int64_t C, int64_t inner, int act) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < (I)n; i += (I)gridDim.x * blockDim.x) {
        float v = ld_as_f32(x, xt, i);
        if (b) v += ld_as_f32(b, bt, (i / (I)inner) % (I)C);
        st_from_f32(y, yt, i, act_f32(v, act));
    }
}

/* y = x * scale[c or n*C+c] + shift[c] on (N, C, HW); explicit rounding steps (no FMA) so the
 * result equals the CPU reference's x*a + b bit for bit. */
template <typename I>
__global__ void channel_affine_kernel(const void *x, int xt, const void *sc, int sct, int64_t ns,
                                      const void *sh, int sht, void *y, int yt, int64_t N,
                                      int64_t C, int64_t HW) {
    const I n_all = (I)(N * C * HW);
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n_all; i += (I)gridDim.x * blockDim.x) {
        const I c = (i / (I)HW) % (I)C, n = i / (I)(HW * C);
        const float a = sc ? ld_as_f32(sc, sct, ns == C ? c : n * (I)C + c) : 1.f;
        const float b = sh ? ld_as_f32(sh, sht, c) : 0.f;
        st_from_f32(y, yt, i, __fadd_rn(__fmul_rn(ld_as_f32(x, xt, i), a), b));
    }
}

/* Vector paths: thread g handles elements [4g, 4g+4) (the last group may be partial). n < 2^31.
 * mode 0: convert, 1: activation, 2: binary (b period nb, a multiple of 4). */
__global__ void elementwise4_kernel(int mode, const void *x, int xt, const void *b, int bt, int nb,
                                    void *y, int yt, int n, int op) {
    const int groups = (n + 3) / 4;
    for (int g = blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += gridDim.x * blockDim.x) {
        const int i = 4 * g;
        if (i + 4 <= n) {
            float v[4], w[4];
            ld4_as_f32(x, xt, i, v);
            if (mode == 2) ld4_as_f32(b, bt, i % nb, w);
            for (int j = 0; j < 4; j++)
                v[j] = mode == 1 ? act_f32(v[j], op)
                       : mode == 2
                           ? (op == DM_BINARY_ADD ? v[j] + w[j]
                                                  : (op == DM_BINARY_SUB ? v[j] - w[j] : v[j] * w[j]))
                           : v[j];
            st4_from_f32(y, yt, i, v);
        } else {
            for (int e = i; e < n; e++) {
                float u = ld_as_f32(x, xt, e);
                if (mode == 1) u = act_f32(u, op);
                if (mode == 2) {
                    const float w = ld_as_f32(b, bt, e % nb);
                    u = op == DM_BINARY_ADD ? u + w : (op == DM_BINARY_SUB ? u - w : u * w);
                }
                st_from_f32(y, yt, e, u);
            }
        }
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

cudaError_t cuda_kernel_image_probe(void) {
    cudaFuncAttributes a;
    return cudaFuncGetAttributes(&a, (const void *)nonfinite_kernel);
}

dm_status cuda_convert(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                       int64_t n) {
    if (n <= 0) return DM_OK;
    if (fits32(n) && aligned16(x, y, y)) {
        elementwise4_kernel<<<grid_for((n + 3) / 4, kBlock), kBlock, 0, s>>>(
            0, x, xt, NULL, DM_DTYPE_F32, 1, y, yt, (int)n, 0);
    } else if (fits32(n)) {
        convert_kernel<int><<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, y, yt, n);
    } else {
        convert_kernel<int64_t><<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, y, yt, n);
    }
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_activation(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                          int64_t n, dm_act act) {
    if (n <= 0) return DM_OK;
    if (fits32(n) && aligned16(x, y, y)) /* in place (y == x) is fine: same element per thread */
        elementwise4_kernel<<<grid_for((n + 3) / 4, kBlock), kBlock, 0, s>>>(
            1, x, xt, NULL, DM_DTYPE_F32, 1, y, yt, (int)n, act);
    else if (fits32(n))
        activation_kernel<int><<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, y, yt, n, act);
    else
        activation_kernel<int64_t><<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, y, yt, n, act);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_binary(cudaStream_t s, const void *a, dm_dtype at, const void *b, dm_dtype bt,
                      int64_t nb, void *y, dm_dtype yt, int64_t n, dm_binary_op op) {
    if (n <= 0) return DM_OK;
    if (fits32(n) && nb % 4 == 0 && aligned16(a, b, y))
        elementwise4_kernel<<<grid_for((n + 3) / 4, kBlock), kBlock, 0, s>>>(
            2, a, at, b, bt, (int)nb, y, yt, (int)n, op);
    else if (fits32(n))
        binary_kernel<int><<<grid_for(n, kBlock), kBlock, 0, s>>>(a, at, b, bt, nb, y, yt, n, op);
    else
        binary_kernel<int64_t><<<grid_for(n, kBlock), kBlock, 0, s>>>(a, at, b, bt, nb, y, yt, n,
                                                                      op);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_concat(cudaStream_t s, const void *a, dm_dtype at, int64_t ca, const void *b,
                      dm_dtype bt, int64_t cb, void *y, dm_dtype yt, int64_t outer) {
    int64_t n = outer * (ca + cb);
    if (n <= 0) return DM_OK;
    if (fits32(n))
        concat_kernel<int><<<grid_for(n, kBlock), kBlock, 0, s>>>(a, at, ca, b, bt, cb, y, yt,
                                                                  outer);
    else
        concat_kernel<int64_t><<<grid_for(n, kBlock), kBlock, 0, s>>>(a, at, ca, b, bt, cb, y, yt,
                                                                      outer);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_bias_act(cudaStream_t s, const void *x, dm_dtype xt, const void *b, dm_dtype bt,
                        void *y, dm_dtype yt, int64_t N, int64_t C, int64_t inner, dm_act act) {
    int64_t n = N * C * inner;
    if (n <= 0) return DM_OK;
    if (fits32(n))
        bias_act_kernel<int><<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, b, bt, y, yt, n, C,
                                                                    inner, act);
    else
        bias_act_kernel<int64_t><<<grid_for(n, kBlock), kBlock, 0, s>>>(x, xt, b, bt, y, yt, n, C,
                                                                        inner, act);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_channel_affine(cudaStream_t s, const void *x, dm_dtype xt, const void *scale,
                              dm_dtype st, int64_t ns, const void *shift, dm_dtype sht, void *y,
                              dm_dtype yt, int64_t N, int64_t C, int64_t HW) {
    const int64_t n = N * C * HW;
    if (n <= 0) return DM_OK;
    if (fits32(n))
        channel_affine_kernel<int><<<grid_for(n, kBlock), kBlock, 0, s>>>(
            x, xt, scale, st, ns, shift, sht, y, yt, N, C, HW);
    else
        channel_affine_kernel<int64_t><<<grid_for(n, kBlock), kBlock, 0, s>>>(
            x, xt, scale, st, ns, shift, sht, y, yt, N, C, HW);
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
