/* Fused softmax attention on the GPU: o = softmax(q k^T * scale) v for q (BH, Tq, D),
 * k, v (BH, Tk, D), o (BH, Tq, D), without materialising the (Tq, Tk) score matrix.
 *
 * Algorithm: FlashAttention's tiling with the online softmax (Dao et al. 2022, "FlashAttention:
 * Fast and Memory-Efficient Exact Attention with IO-Awareness", Algorithm 1; online softmax from
 * Milakov & Gimelshein 2018). Each block owns 16 query rows (4 per warp) and walks the keys in
 * tiles of 32 staged in shared memory as f32. Per tile and row, lane j scores key j, the warp
 * finds the tile max m', rescales its running sum l and output accumulator by exp(m - m'), and
 * adds p_j v_j with p_j broadcast by shuffle; each lane owns D/32 output dims. The result is
 * acc / l. Everything is f32 whatever the tensor dtypes.
 *
 * This is a CUDA-core kernel (FMA, no tensor-core MMA): DINOv2-S has 6 heads of 64 over ~1370
 * tokens and VDA's motion modules attend over 32 frames with heads of 8..48 dims, where it is
 * adequate. Head dims up to 128 are supported (DMAX 64 or 128 template instance).
 * Not yet run on a GPU; correctness is checked by tests/gpu against the CPU attention op. */
#include "dtype.cuh"

#define ATT_QB 16 /* query rows per block */
#define ATT_KB 32 /* keys per tile = warp size */
#define ATT_WARPS 4

__device__ __forceinline__ float att_warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}
__device__ __forceinline__ float att_warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

template <int DMAX>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_kernel(const void *q, int qt, const void *k, int kt, const void *v, int vt, void *o,
                     int ot, int Tq, int Tk, int D, int nqb, float scale, cuda_att_layout L) {
    constexpr int R = ATT_QB / ATT_WARPS; /* rows per warp */
    constexpr int DL = DMAX / 32;         /* output dims per lane */
    __shared__ float qs[ATT_QB][DMAX];
    __shared__ float ks[ATT_KB][DMAX + 1]; /* +1: lanes read different rows, same column */
    __shared__ float vs[ATT_KB][DMAX];

    const int64_t bh = blockIdx.x / nqb, b = bh / L.heads, h = bh % L.heads;
    const int q0 = (int)(blockIdx.x % nqb) * ATT_QB;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t qbase = b * L.q_b + h * L.q_h, kbase = b * L.k_b + h * L.k_h,
                  obase = b * L.o_b + h * L.o_h;

    for (int i = threadIdx.x; i < ATT_QB * DMAX; i += blockDim.x) {
        const int r = i / DMAX, d = i % DMAX;
        qs[r][d] = (q0 + r < Tq && d < D) ? ld_as_f32(q, qt, qbase + (int64_t)(q0 + r) * L.q_t + d) *
                                                scale
                                          : 0.f;
    }

    float m[R], l[R], acc[R][DL];
#pragma unroll
    for (int r = 0; r < R; r++) {
        m[r] = -INFINITY;
        l[r] = 0.f;
#pragma unroll
        for (int j = 0; j < DL; j++) acc[r][j] = 0.f;
    }

    for (int k0 = 0; k0 < Tk; k0 += ATT_KB) {
        __syncthreads(); /* previous tile fully consumed (and qs written, first time) */
        for (int i = threadIdx.x; i < ATT_KB * DMAX; i += blockDim.x) {
            const int j = i / DMAX, d = i % DMAX;
            const bool ok = k0 + j < Tk && d < D;
            const int64_t off = kbase + (int64_t)(k0 + j) * L.k_t + d;
            ks[j][d] = ok ? ld_as_f32(k, kt, off) : 0.f;
            vs[j][d] = ok ? ld_as_f32(v, vt, off) : 0.f;
        }
        __syncthreads();
        const int nk = min(ATT_KB, Tk - k0);
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int row = warp * R + r;
            float s = 0.f;
            for (int d = 0; d < D; d++) s += qs[row][d] * ks[lane][d];
            if (lane >= nk) s = -INFINITY;
            const float m_new = fmaxf(m[r], att_warp_max(s)); /* finite: nk >= 1 */
            const float p = expf(s - m_new);                  /* 0 for masked lanes */
            const float alpha = expf(m[r] - m_new);           /* 0 on the first tile */
            l[r] = l[r] * alpha + att_warp_sum(p);
#pragma unroll
            for (int j = 0; j < DL; j++) acc[r][j] *= alpha;
            for (int key = 0; key < nk; key++) {
                const float pk = __shfl_sync(0xffffffffu, p, key);
#pragma unroll
                for (int j = 0; j < DL; j++) acc[r][j] += pk * vs[key][lane + 32 * j];
            }
            m[r] = m_new;
        }
    }

#pragma unroll
    for (int r = 0; r < R; r++) {
        const int qi = q0 + warp * R + r;
        if (qi >= Tq) continue;
        const float inv = 1.f / l[r];
#pragma unroll
        for (int j = 0; j < DL; j++) {
            const int d = lane + 32 * j;
            if (d < D) st_from_f32(o, ot, obase + (int64_t)qi * L.o_t + d, acc[r][j] * inv);
        }
    }
}

extern "C" dm_status cuda_attention(cudaStream_t s, const void *q, dm_dtype qt, const void *k,
                                    dm_dtype kt, const void *v, dm_dtype vt, void *o,
                                    dm_dtype ot, int64_t BH, int Tq, int Tk, int D,
                                    float scale, const cuda_att_layout *layout) {
    if (BH <= 0 || Tq <= 0) return DM_OK;
    if (Tk <= 0) return dm_error_set(DM_ERR_SHAPE, "attention: no keys (Tk = 0)");
    if (D < 1 || D > 128)
        return dm_error_set(DM_ERR_UNSUPPORTED, "attention: head dim %d (CUDA kernel: 1..128)", D);
    const int nqb = (Tq + ATT_QB - 1) / ATT_QB;
    if (BH * nqb > 0x7fffffffLL)
        return dm_error_set(DM_ERR_SHAPE, "attention: %lld blocks exceed the grid",
                            (long long)(BH * nqb));
    const unsigned grid = (unsigned)(BH * nqb);
    const cuda_att_layout L = layout ? *layout : cuda_att_contiguous(Tq, Tk, D);
    if (D <= 64)
        attention_kernel<64><<<grid, ATT_WARPS * 32, 0, s>>>(q, qt, k, kt, v, vt, o, ot, Tq, Tk,
                                                            D, nqb, scale, L);
    else
        attention_kernel<128><<<grid, ATT_WARPS * 32, 0, s>>>(q, qt, k, kt, v, vt, o, ot, Tq, Tk,
                                                             D, nqb, scale, L);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}
