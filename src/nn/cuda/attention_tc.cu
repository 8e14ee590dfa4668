/* Tensor-core softmax attention for f16 / bf16: o = softmax(q k^T * scale) v with q (BH, Tq, D),
 * k, v (BH, Tk, D) in the compute dtype (f16 or bf16, all three the same), o (BH, Tq, D) of any
 * float dtype, without materialising the (Tq, Tk) score matrix.
 *
 * Algorithm: FlashAttention-2 (Dao 2023, "FlashAttention-2: Faster Attention with Better
 * Parallelism and Work Partitioning", Algorithm 1): each block owns 64 query rows (16 per warp,
 * the warps independent), walks the keys in tiles of 64 staged in shared memory, and keeps the
 * running row max m, row sum l and the unnormalised output O; the division by l happens once at
 * the end. Both products run on tensor cores through WMMA (nvcuda::wmma, 16x16x16 fragments,
 * f32 accumulators): S = Q K^T (f16/bf16 inputs, f32 sums), then P = exp(S*scale - m) rounded to
 * the compute dtype and O += P V. The softmax statistics, the rescaling of O by exp(m_old -
 * m_new) and the final 1/l are f32. l sums the rounded P values, so that the normalisation
 * matches the P that multiplies V. WMMA fragments have no documented element -> row mapping, so
 * O lives in shared memory (f32) between tiles: each tile the warp scales its rows, loads them
 * into accumulator fragments, adds P V and stores them back.
 * Head dims up to 128, zero-padded to DP = 16, 32, 64 or 128 (the padding contributes zeros to
 * q.k and is never stored). Shared memory per block: (64 + 2*64) * DP * 2 bytes (Q, K, V tiles) +
 * 4 * 16 * 64 * 6 (S f32, P) + 64 * DP * 4 (O): 40 KiB at DP 16 ... 104 KiB at DP 128, above the
 * default 48 KiB, so the launcher opts in once per variant (cudaFuncSetAttribute).
 * Needs sm_80 or newer (bf16 WMMA); the caller (attention_cuda) uses the f32 CUDA-core kernel
 * of attention.cu otherwise and for strict float32. NOT YET RUN ON A GPU; tests/gpu checks it
 * against the CPU attention op (ViT-S 1370 tokens, motion-module head dims 8..48, partial
 * tiles). */
#include <mma.h>

#include "dtype.cuh"

#define TC_QB 64 /* query rows per block */
#define TC_KB 64 /* keys per tile */
#define TC_WARPS 4

template <typename T> struct tc_type;
template <> struct tc_type<__half> {
    static __device__ __forceinline__ float to_f(__half v) {
        return __half2float(v);
    }
    static __device__ __forceinline__ __half from_f(float v) {
        return __float2half_rn(v);
    }
};
template <> struct tc_type<__nv_bfloat16> {
    static __device__ __forceinline__ float to_f(__nv_bfloat16 v) {
        return __bfloat162float(v);
    }
    static __device__ __forceinline__ __nv_bfloat16 from_f(float v) {
        return __float2bfloat16_rn(v);
    }
};

static size_t tc_smem_bytes(int DP) {
    return (size_t)(TC_QB + 2 * TC_KB) * DP * 2 + (size_t)TC_WARPS * 16 * TC_KB * (4 + 2) +
           (size_t)TC_QB * DP * 4;
}

template <typename T, int DP>
__global__ void __launch_bounds__(TC_WARPS * 32)
    attention_tc_kernel(const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v,
                        void *o, int ot, int Tq, int Tk, int D, int nqb, float scale,
                        cuda_att_layout L) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    using io = tc_type<T>;
    extern __shared__ __align__(128) unsigned char tc_smem[];
    T *Qs = (T *)tc_smem;                              /* [TC_QB][DP] */
    T *Ks = Qs + TC_QB * DP;                           /* [TC_KB][DP] */
    T *Vs = Ks + TC_KB * DP;                           /* [TC_KB][DP] */
    float *Ss = (float *)(Vs + TC_KB * DP);            /* [TC_WARPS][16][TC_KB] scores */
    T *Ps = (T *)(Ss + TC_WARPS * 16 * TC_KB);         /* [TC_WARPS][16][TC_KB] probabilities */
    float *Os = (float *)(Ps + TC_WARPS * 16 * TC_KB); /* [TC_QB][DP] unnormalised output */

    const int64_t bh = blockIdx.x / nqb, bb = bh / L.heads, hh = bh % L.heads;
    const int q0 = (int)(blockIdx.x % nqb) * TC_QB;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t qbase = bb * L.q_b + hh * L.q_h, kbase = bb * L.k_b + hh * L.k_h,
                  obase = bb * L.o_b + hh * L.o_h;
    const T zero = io::from_f(0.f);

    for (int i = threadIdx.x; i < TC_QB * DP; i += blockDim.x) {
        const int r = i / DP, d = i % DP;
        Qs[i] = (q0 + r < Tq && d < D) ? q[qbase + (int64_t)(q0 + r) * L.q_t + d] : zero;
        Os[i] = 0.f;
    }
    /* lane pair (2r, 2r+1) owns row r of the warp's 16: columns [0, 32) / [32, 64) of a tile
     * and [0, DP/2) / [DP/2, DP) of O; both lanes keep the row's m and l */
    const int row = lane >> 1, half = lane & 1;
    const T *Qw = Qs + warp * 16 * DP;
    float *Sw = Ss + warp * 16 * TC_KB, *Ow = Os + warp * 16 * DP;
    T *Pw = Ps + warp * 16 * TC_KB;
    float m = -INFINITY, l = 0.f;

    for (int k0 = 0; k0 < Tk; k0 += TC_KB) {
        __syncthreads(); /* previous tile consumed by every warp (and Q, O written) */
        for (int i = threadIdx.x; i < TC_KB * DP; i += blockDim.x) {
            const int j = i / DP, d = i % DP;
            const bool ok = k0 + j < Tk && d < D;
            const int64_t off = kbase + (int64_t)(k0 + j) * L.k_t + d;
            Ks[i] = ok ? k[off] : zero;
            Vs[i] = ok ? v[off] : zero;
        }
        __syncthreads();
        /* S (16 x 64) = Q_w (16 x DP) K^T: K row-major [key][d] is K^T column-major */
#pragma unroll
        for (int nb = 0; nb < TC_KB / 16; nb++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.f);
#pragma unroll
            for (int kk = 0; kk < DP / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
                wmma::load_matrix_sync(a, Qw + kk * 16, DP);
                wmma::load_matrix_sync(b, Ks + nb * 16 * DP + kk * 16, DP);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(Sw + nb * 16, acc, TC_KB, wmma::mem_row_major);
        }
        __syncwarp();
        /* online softmax of row `row` over this tile (f32) */
        const int nk = min(TC_KB, Tk - k0);
        float *srow = Sw + row * TC_KB + half * 32;
        T *prow = Pw + row * TC_KB + half * 32;
        float tmax = -INFINITY;
        for (int c = 0; c < 32; c++) {
            const float sv = half * 32 + c < nk ? srow[c] * scale : -INFINITY;
            srow[c] = sv;
            tmax = fmaxf(tmax, sv);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float m_new = fmaxf(m, tmax);  /* finite: key k0 is valid (nk >= 1) */
        const float alpha = expf(m - m_new); /* 0 on the first tile */
        float psum = 0.f;
        for (int c = 0; c < 32; c++) {
            const T pt = io::from_f(expf(srow[c] - m_new)); /* masked: exp(-inf) = 0 */
            prow[c] = pt;
            psum += io::to_f(pt);
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        l = l * alpha + psum;
        m = m_new;
        float *orow = Ow + row * DP + half * (DP / 2);
        for (int c = 0; c < DP / 2; c++)
            orow[c] *= alpha;
        __syncwarp();
        /* O_w (16 x DP) += P (16 x 64) V (64 x DP) */
#pragma unroll
        for (int nb = 0; nb < DP / 16; nb++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, Ow + nb * 16, DP, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < TC_KB / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
                wmma::load_matrix_sync(a, Pw + kk * 16, TC_KB);
                wmma::load_matrix_sync(b, Vs + kk * 16 * DP + nb * 16, DP);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(Ow + nb * 16, acc, DP, wmma::mem_row_major);
        }
        __syncwarp();
    }
    const int qi = q0 + warp * 16 + row;
    if (qi < Tq) {
        const float inv = 1.f / l;
        const float *orow = Ow + row * DP + half * (DP / 2);
        for (int c = 0; c < DP / 2; c++) {
            const int d = half * (DP / 2) + c;
            if (d < D) st_from_f32(o, ot, obase + (int64_t)qi * L.o_t + d, orow[c] * inv);
        }
    }
#else
    __trap(); /* the launcher never selects this kernel below sm_80 */
#endif
}

template <typename T, int DP>
static dm_status launch_tc(cudaStream_t s, const void *q, const void *k, const void *v, void *o,
                           dm_dtype ot, unsigned grid, int Tq, int Tk, int D, int nqb, float scale,
                           const cuda_att_layout &L, int *opted_in) {
    const size_t smem = tc_smem_bytes(DP);
    if (!*opted_in) { /* > 48 KiB of dynamic shared memory needs an explicit opt-in */
        CUDA_CHECK(cudaFuncSetAttribute(attention_tc_kernel<T, DP>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        *opted_in = 1;
    }
    attention_tc_kernel<T, DP><<<grid, TC_WARPS * 32, smem, s>>>(
        (const T *)q, (const T *)k, (const T *)v, o, ot, Tq, Tk, D, nqb, scale, L);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

extern "C" dm_status cuda_attention_tc(cudaStream_t s, const void *q, const void *k, const void *v,
                                       dm_dtype cd, void *o, dm_dtype ot, int64_t BH, int Tq,
                                       int Tk, int D, float scale,
                                       const cuda_att_layout *layout, int *opted_in) {
    if (BH <= 0 || Tq <= 0) return DM_OK;
    if (Tk <= 0) return dm_error_set(DM_ERR_SHAPE, "attention: no keys (Tk = 0)");
    if (D < 1 || D > 128)
        return dm_error_set(DM_ERR_UNSUPPORTED,
                            "attention: head dim %d (tensor-core kernel: "
                            "1..128)",
                            D);
    if (cd != DM_DTYPE_F16 && cd != DM_DTYPE_BF16)
        return dm_error_set(DM_ERR_DTYPE, "attention: tensor-core kernel needs f16 or bf16");
    const int nqb = (Tq + TC_QB - 1) / TC_QB;
    if (BH * nqb > 0x7fffffffLL)
        return dm_error_set(DM_ERR_SHAPE, "attention: %lld blocks exceed the grid",
                            (long long)(BH * nqb));
    const unsigned grid = (unsigned)(BH * nqb);
    const cuda_att_layout L = layout ? *layout : cuda_att_contiguous(Tq, Tk, D);
    const int dpi = D <= 16 ? 0 : (D <= 32 ? 1 : (D <= 64 ? 2 : 3));
    int *opt = opted_in + (cd == DM_DTYPE_BF16 ? 4 : 0) + dpi;
#define TC_CASE(T, DP)                                                                         \
    return launch_tc<T, DP>(s, q, k, v, o, ot, grid, Tq, Tk, D, nqb, scale, L, opt)
    if (cd == DM_DTYPE_F16) {
        switch (dpi) {
        case 0:
            TC_CASE(__half, 16);
        case 1:
            TC_CASE(__half, 32);
        case 2:
            TC_CASE(__half, 64);
        default:
            TC_CASE(__half, 128);
        }
    }
    switch (dpi) {
    case 0:
        TC_CASE(__nv_bfloat16, 16);
    case 1:
        TC_CASE(__nv_bfloat16, 32);
    case 2:
        TC_CASE(__nv_bfloat16, 64);
    default:
        TC_CASE(__nv_bfloat16, 128);
    }
#undef TC_CASE
}
