/* Internal: CPU reference implementations of the engine ops (see depthmatte/backend.h for the
 * semantics of each). One op family per file in src/nn/cpu/. */
#ifndef DM_NN_CPU_OPS_H
#define DM_NN_CPU_OPS_H

#include <math.h>

#include "depthmatte/backend.h"

dm_status conv2d_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                     const dm_conv2d_params *p, dm_tensor *y);
dm_status conv_transpose2d_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                               const dm_tensor *b, int stride, int pad, dm_tensor *y);
dm_status linear_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                     dm_act act, dm_tensor *y);
dm_status layernorm_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                        const dm_tensor *beta, float eps, dm_tensor *y);
dm_status groupnorm_cpu(dm_backend *be, const dm_tensor *x, int groups, const dm_tensor *gamma,
                        const dm_tensor *beta, float eps, dm_tensor *y);
/* backend.h count_nonfinite: f32 CPU tensors. */
dm_status count_nonfinite_cpu(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                              int accumulate);
dm_status activation_cpu(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y);
dm_status binary_cpu(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_binary_op op,
                     dm_tensor *y);
dm_status attention_cpu(dm_backend *be, const dm_tensor *q, const dm_tensor *k,
                        const dm_tensor *v, float scale, dm_tensor *o);
dm_status resize_cpu(dm_backend *be, const dm_tensor *x, dm_resize_mode mode, int align_corners,
                     double scale_h, double scale_w, dm_tensor *y);
dm_status avgpool2d_cpu(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y);
dm_status global_avgpool2d_cpu(dm_backend *be, const dm_tensor *x, dm_tensor *y);
dm_status maxpool2d_cpu(dm_backend *be, const dm_tensor *x, int k, int s, int pad, dm_tensor *y);
dm_status channel_affine_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                             const dm_tensor *shift, dm_tensor *y);
dm_status image_from_u8_cpu(dm_backend *be, const dm_tensor *rgb, dm_tensor *y);
dm_status guided_coeffs_cpu(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                            dm_tensor *b);
dm_status matting_compose_cpu(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                              const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha);
dm_status permute_cpu(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y);
dm_status concat_cpu(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_tensor *y);
dm_status copy_cpu(dm_backend *be, const dm_tensor *src, dm_tensor *dst);
dm_status attention_qkv_cpu(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                            dm_tensor *o);
dm_status image_cubic_normalize_cpu(dm_backend *be, const dm_tensor *rgb,
                                    const dm_image_norm_params *p, dm_tensor *y);

/* v[i] = act(v[i] + bias) for i < n, in place; the same values as cpu_act (below) element by
 * element, but with the activation chosen once per call so the loop vectorises (elementwise.c). */
void cpu_bias_act(float *v, int64_t n, float bias, dm_act act);

/* Checks that t is an F32 CPU tensor with ndim dims; names op and argument in the error. */
dm_status cpu_check_f32(const dm_tensor *t, int ndim, const char *op, const char *arg);

/* min(max(v, 0), 6) that returns NaN for NaN, as PyTorch's clamp does (fminf/fmaxf return
 * the other operand and would turn NaN into 0). */
static inline float cpu_clamp06(float v) {
    v = v < 0.f ? 0.f : v;
    return v > 6.f ? 6.f : v;
}

/* Elementwise activation, PyTorch definitions, non-finite values included: NaN stays NaN in
 * every activation; relu(+inf) = +inf, relu(-inf) = 0; hardsigmoid(+-inf) = 1 / 0;
 * hardswish(+inf) = +inf, hardswish(-inf) = -inf * 0 = NaN (torch 2.x, CPU and CUDA). */
static inline float cpu_act(float v, dm_act act) {
    switch (act) {
    case DM_ACT_NONE: return v;
    case DM_ACT_RELU: return v < 0.f ? 0.f : v;
    case DM_ACT_HARDSWISH: return v * cpu_clamp06(v + 3.f) / 6.f;
    case DM_ACT_HARDSIGMOID: return cpu_clamp06(v + 3.f) / 6.f;
    case DM_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case DM_ACT_TANH: return tanhf(v);
    case DM_ACT_GELU: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    }
    return v;
}

#endif
