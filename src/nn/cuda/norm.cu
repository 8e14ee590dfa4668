/* Normalisation kernels of the CUDA backend: LayerNorm (torch.nn.LayerNorm over the last dim),
 * GroupNorm (torch.nn.GroupNorm: biased variance over each group's C/G channels x spatial, then
 * per-channel affine) and softmax over the last dim (max subtracted first, as torch.softmax).
 * Statistics in f32 with two passes (mean, then sum of squared deviations) rather than
 * E[x^2]-E[x]^2, which cancels catastrophically for the large-mean activations of ViT blocks. */
#include "dtype.cuh"

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the sum. */
__device__ float block_sum(float v) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* part[] may still be read from a previous call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nwarps ? part[lane] : 0.f;
    return warp_sum(v);
}

/* One warp per row of C elements; 8 rows per 256-thread block. */
__global__ void layernorm_kernel(const void *x, int xt, const void *g, int gt, const void *b,
                                 int bt, void *y, int yt, int64_t rows, int64_t C, float eps) {
    const int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return; /* whole warp leaves together: shuffles stay full-warp */
    const int64_t base = row * C;
    float s = 0.f;
    for (int64_t c = lane; c < C; c += 32) s += ld_as_f32(x, xt, base + c);
    const float mean = warp_sum(s) / (float)C;
    float q = 0.f;
    for (int64_t c = lane; c < C; c += 32) {
        float d = ld_as_f32(x, xt, base + c) - mean;
        q += d * d;
    }
    const float rstd = rsqrtf(warp_sum(q) / (float)C + eps);
    for (int64_t c = lane; c < C; c += 32) {
        float v = (ld_as_f32(x, xt, base + c) - mean) * rstd;
        if (g) v *= ld_as_f32(g, gt, c);
        if (b) v += ld_as_f32(b, bt, c);
        st_from_f32(y, yt, base + c, v);
    }
}

/* One block per (n, group); the group is contiguous: (C/G) * inner elements. */
__global__ void groupnorm_kernel(const void *x, int xt, const void *g, int gt, const void *b,
                                 int bt, void *y, int yt, int64_t C, int64_t inner, int groups,
                                 float eps) {
    const int64_t ng = blockIdx.x, cg = C / groups, count = cg * inner;
    const int64_t base = ng * count, c0 = (ng % groups) * cg;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) s += ld_as_f32(x, xt, base + i);
    const float mean = block_sum(s) / (float)count;
    float q = 0.f;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
        float d = ld_as_f32(x, xt, base + i) - mean;
        q += d * d;
    }
    const float rstd = rsqrtf(block_sum(q) / (float)count + eps);
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
        const int64_t c = c0 + i / inner;
        float v = (ld_as_f32(x, xt, base + i) - mean) * rstd;
        if (g) v *= ld_as_f32(g, gt, c);
        if (b) v += ld_as_f32(b, bt, c);
        st_from_f32(y, yt, base + i, v);
    }
}

/* GroupNorm with the reduction split over S blocks per group (small N: one block per group
 * would leave most SMs idle, e.g. 32 blocks on 132 SMs for RVM/VDA at N = 1). Same two-pass
 * statistics, deterministic (fixed partial order, no atomics):
 *   pass 1: block (g, s) sums its slice of group g            -> part[g*S + s]
 *   pass 2: block (g, s) takes mean_g from the S partial sums and sums (x - mean_g)^2 over its
 *           slice                                            -> part[NG*S + g*S + s]
 *   pass 3: every block recomputes mean_g, rstd_g from the partials (S values each) and
 *           normalises its slice. */
__device__ __forceinline__ float gn_part_sum(const float *part, int S) {
    float t = 0.f;
    for (int j = 0; j < S; j++) t += part[j];
    return t;
}

__global__ void groupnorm_split_kernel(int pass, const void *x, int xt, const void *g, int gt,
                                       const void *b, int bt, void *y, int yt, int64_t C,
                                       int64_t inner, int groups, int S, int64_t NG, float eps,
                                       float *part) {
    const int64_t ng = blockIdx.x / S;
    const int sl = (int)(blockIdx.x % S);
    const int64_t cg = C / groups, count = cg * inner, base = ng * count, c0 = (ng % groups) * cg;
    const int64_t chunk = (count + S - 1) / S, lo = sl * chunk,
                  hi = lo + chunk < count ? lo + chunk : count;
    const float *sums = part + ng * S, *sq = part + NG * S + ng * S;
    if (pass == 1) {
        float s = 0.f;
        for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += ld_as_f32(x, xt, base + i);
        s = block_sum(s);
        if (threadIdx.x == 0) part[ng * S + sl] = s;
        return;
    }
    const float mean = gn_part_sum(sums, S) / (float)count;
    if (pass == 2) {
        float q = 0.f;
        for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
            const float d = ld_as_f32(x, xt, base + i) - mean;
            q += d * d;
        }
        q = block_sum(q);
        if (threadIdx.x == 0) part[NG * S + ng * S + sl] = q;
        return;
    }
    const float rstd = rsqrtf(gn_part_sum(sq, S) / (float)count + eps);
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        const int64_t c = c0 + i / inner;
        float v = (ld_as_f32(x, xt, base + i) - mean) * rstd;
        if (g) v *= ld_as_f32(g, gt, c);
        if (b) v += ld_as_f32(b, bt, c);
        st_from_f32(y, yt, base + i, v);
    }
}

/* One warp per row. */
__global__ void softmax_kernel(const void *x, int xt, void *y, int yt, int64_t rows, int64_t C) {
    const int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const int64_t base = row * C;
    float m = -INFINITY;
    for (int64_t c = lane; c < C; c += 32) m = fmaxf(m, ld_as_f32(x, xt, base + c));
    m = warp_max(m);
    float s = 0.f;
    for (int64_t c = lane; c < C; c += 32) s += expf(ld_as_f32(x, xt, base + c) - m);
    const float inv = 1.f / warp_sum(s);
    for (int64_t c = lane; c < C; c += 32)
        st_from_f32(y, yt, base + c, expf(ld_as_f32(x, xt, base + c) - m) * inv);
}

static unsigned row_blocks(int64_t rows) {
    return (unsigned)((rows + 7) / 8);
}

extern "C" {

dm_status cuda_layernorm(cudaStream_t s, const void *x, dm_dtype xt, const void *g, dm_dtype gt,
                         const void *b, dm_dtype bt, void *y, dm_dtype yt, int64_t rows,
                         int64_t C, float eps) {
    if (rows <= 0) return DM_OK;
    if (rows > 8LL * 0x7fffffff)
        return dm_error_set(DM_ERR_SHAPE, "layernorm: %lld rows exceed the grid",
                            (long long)rows);
    layernorm_kernel<<<row_blocks(rows), 256, 0, s>>>(x, xt, g, gt, b, bt, y, yt, rows, C, eps);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

int cuda_groupnorm_splits(int64_t N, int64_t C, int64_t inner, int groups) {
    const int64_t NG = N * groups, count = C / groups * inner;
    /* aim at >= ~4 blocks per SM on a 132-SM H100/H200 and >= 1024 elements per block */
    int64_t S = (528 + NG - 1) / NG;
    if (S > count / 1024) S = count / 1024;
    if (S > 64) S = 64;
    return S < 2 ? 1 : (int)S;
}

dm_status cuda_groupnorm(cudaStream_t s, const void *x, dm_dtype xt, const void *g, dm_dtype gt,
                         const void *b, dm_dtype bt, void *y, dm_dtype yt, int64_t N, int64_t C,
                         int64_t inner, int groups, float eps, float *part) {
    if (N * C * inner <= 0) return DM_OK;
    if (N * groups > 0x7fffffff / 64)
        return dm_error_set(DM_ERR_SHAPE, "groupnorm: N*groups exceeds the grid");
    const int S = cuda_groupnorm_splits(N, C, inner, groups);
    if (S > 1) {
        if (!part) return dm_error_set(DM_ERR_ARG, "groupnorm: split reduction needs scratch");
        const int64_t NG = N * groups;
        for (int pass = 1; pass <= 3; pass++) {
            groupnorm_split_kernel<<<(unsigned)(NG * S), 256, 0, s>>>(
                pass, x, xt, g, gt, b, bt, y, yt, C, inner, groups, S, NG, eps, part);
            CUDA_CHECK_LAUNCH();
        }
        return DM_OK;
    }
    groupnorm_kernel<<<(unsigned)(N * groups), 256, 0, s>>>(x, xt, g, gt, b, bt, y, yt, C, inner,
                                                            groups, eps);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

dm_status cuda_softmax(cudaStream_t s, const void *x, dm_dtype xt, void *y, dm_dtype yt,
                       int64_t rows, int64_t C) {
    if (rows <= 0 || C <= 0) return DM_OK;
    if (rows > 8LL * 0x7fffffff)
        return dm_error_set(DM_ERR_SHAPE, "softmax: %lld rows exceed the grid", (long long)rows);
    softmax_kernel<<<row_blocks(rows), 256, 0, s>>>(x, xt, y, yt, rows, C);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

} /* extern "C" */
