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

/* PyTorch definitions, identical to cpu_act() in src/nn/cpu/cpu_ops.h (exact erf GELU). */
__device__ __forceinline__ float act_f32(float v, int act) {
    switch (act) {
    case DM_ACT_RELU: return v > 0.f ? v : 0.f;
    case DM_ACT_HARDSWISH: return v * fminf(fmaxf(v + 3.f, 0.f), 6.f) / 6.f;
    case DM_ACT_HARDSIGMOID: return fminf(fmaxf(v + 3.f, 0.f), 6.f) / 6.f;
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
