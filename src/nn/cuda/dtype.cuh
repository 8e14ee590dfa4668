/* Internal to the CUDA backend: per-element loads/stores of any engine dtype as float, and the
 * activations. Every kernel reads and writes through these, so one kernel serves f32, f16, bf16
 * (and u8 for conversions) with the dtype as a runtime argument: the switch is uniform across a
 * warp, costs a few instructions next to a memory access, and avoids one template instance per
 * dtype combination (compile time on the 2-core build machine matters). Arithmetic is f32. */
#ifndef DM_NN_CUDA_DTYPE_CUH
#define DM_NN_CUDA_DTYPE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include "cuda_common.h"

__device__ __forceinline__ float ld_as_f32(const void *p, int dt, int64_t i) {
    switch (dt) {
    case DM_DTYPE_F16: return __half2float(((const __half *)p)[i]);
    case DM_DTYPE_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case DM_DTYPE_U8: return (float)((const unsigned char *)p)[i];
    default: return ((const float *)p)[i];
    }
}

/* Stores v rounded to nearest even (f16/bf16); u8 is rounded half away and saturated. */
__device__ __forceinline__ void st_from_f32(void *p, int dt, int64_t i, float v) {
    switch (dt) {
    case DM_DTYPE_F16: ((__half *)p)[i] = __float2half_rn(v); break;
    case DM_DTYPE_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v); break;
    case DM_DTYPE_U8: {
        float r = fminf(fmaxf(roundf(v), 0.f), 255.f);
        ((unsigned char *)p)[i] = (unsigned char)r;
        break;
    }
    default: ((float *)p)[i] = v; break;
    }
}

/* Four consecutive elements [i, i+4) as float, one vector load: i % 4 == 0 and the array
 * 16-byte aligned (the launchers check the base pointers), so the access is a float4 (f32),
 * 8 bytes (f16/bf16: two half2) or 4 bytes (u8). */
__device__ __forceinline__ void ld4_as_f32(const void *p, int dt, int64_t i, float v[4]) {
    switch (dt) {
    case DM_DTYPE_F16: {
        const uint2 r = *(const uint2 *)((const __half *)p + i);
        const float2 a = __half22float2(*(const __half2 *)&r.x);
        const float2 b = __half22float2(*(const __half2 *)&r.y);
        v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
        break;
    }
    case DM_DTYPE_BF16: {
        const uint2 r = *(const uint2 *)((const __nv_bfloat16 *)p + i);
        const float2 a = __bfloat1622float2(*(const __nv_bfloat162 *)&r.x);
        const float2 b = __bfloat1622float2(*(const __nv_bfloat162 *)&r.y);
        v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
        break;
    }
    case DM_DTYPE_U8: {
        const uchar4 r = *(const uchar4 *)((const unsigned char *)p + i);
        v[0] = r.x, v[1] = r.y, v[2] = r.z, v[3] = r.w;
        break;
    }
    default: {
        const float4 r = *(const float4 *)((const float *)p + i);
        v[0] = r.x, v[1] = r.y, v[2] = r.z, v[3] = r.w;
        break;
    }
    }
}

/* Stores four values at [i, i+4) with one vector store, rounding as st_from_f32. */
__device__ __forceinline__ void st4_from_f32(void *p, int dt, int64_t i, const float v[4]) {
    switch (dt) {
    case DM_DTYPE_F16: {
        uint2 r;
        *(__half2 *)&r.x = __floats2half2_rn(v[0], v[1]);
        *(__half2 *)&r.y = __floats2half2_rn(v[2], v[3]);
        *(uint2 *)((__half *)p + i) = r;
        break;
    }
    case DM_DTYPE_BF16: {
        uint2 r;
        *(__nv_bfloat162 *)&r.x = __floats2bfloat162_rn(v[0], v[1]);
        *(__nv_bfloat162 *)&r.y = __floats2bfloat162_rn(v[2], v[3]);
        *(uint2 *)((__nv_bfloat16 *)p + i) = r;
        break;
    }
    case DM_DTYPE_U8:
        for (int j = 0; j < 4; j++) st_from_f32(p, dt, i + j, v[j]);
        break;
    default: *(float4 *)((float *)p + i) = make_float4(v[0], v[1], v[2], v[3]); break;
    }
}

/* Host side: 1 when every pointer is 16-byte aligned (the vector paths' requirement). */
static inline int aligned16(const void *a, const void *b, const void *c) {
    return (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) & 15u) == 0;
}

/* Host side: 1 when n elements can use 32-bit index arithmetic: n plus one grid stride (at most
 * 65535 * 8 blocks * 256 threads < 2^28, grid_for) must stay below 2^31, so that the last
 * `i += stride` of a grid-stride loop cannot overflow. */
static inline int fits32(int64_t n) {
    return n < 0x7fffffffLL - (1LL << 28);
}

/* min(max(v, 0), 6) that keeps NaN (fminf/fmaxf return the non-NaN operand). */
__device__ __forceinline__ float clamp06_f32(float v) {
    v = v < 0.f ? 0.f : v;
    return v > 6.f ? 6.f : v;
}

/* PyTorch definitions, identical to cpu_act() in src/nn/cpu/cpu_ops.h (exact erf GELU; NaN
 * stays NaN in every activation, as in PyTorch). */
__device__ __forceinline__ float act_f32(float v, int act) {
    switch (act) {
    case DM_ACT_RELU: return v < 0.f ? 0.f : v;
    case DM_ACT_HARDSWISH: return v * clamp06_f32(v + 3.f) / 6.f;
    case DM_ACT_HARDSIGMOID: return clamp06_f32(v + 3.f) / 6.f;
    case DM_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case DM_ACT_TANH: return tanhf(v);
    case DM_ACT_GELU: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    default: return v;
    }
}

/* Grid size for a grid-stride loop over n elements with `block` threads. */
static inline unsigned grid_for(int64_t n, int block) {
    int64_t g = (n + block - 1) / block;
    if (g > 65535LL * 8) g = 65535LL * 8; /* grid-stride loops cover the rest */
    if (g < 1) g = 1;
    return (unsigned)g;
}

#endif
