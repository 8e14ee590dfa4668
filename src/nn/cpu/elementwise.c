/* Elementwise ops, CPU reference: activation, broadcast binary ops, channel concat. */
#include <string.h>

#include "cpu_ops.h"

/* The clamp-type activations are written with comparisons instead of fminf/fmaxf: GCC
 * does not inline fminf/fmaxf without -ffinite-math-only (they are PLT calls that block
 * vectorisation). Each comparison is written so that it is false for NaN (`t < 0 ? 0 : t`),
 * so NaN passes through as in PyTorch (relu, hardsigmoid, hardswish and clamp return NaN for
 * NaN; fmaxf(NaN, 0) would return 0 and hide it from the non-finite guard). Division by 6
 * (not multiplication by 1/6) as PyTorch does. */
void cpu_bias_act(float *v, int64_t n, float bias, dm_act act) {
    switch (act) {
    case DM_ACT_NONE:
        if (bias != 0.f)
            for (int64_t i = 0; i < n; i++) v[i] += bias;
        return;
    case DM_ACT_RELU:
        for (int64_t i = 0; i < n; i++) {
            float t = v[i] + bias;
            v[i] = t < 0.f ? 0.f : t;
        }
        return;
    case DM_ACT_HARDSWISH:
        for (int64_t i = 0; i < n; i++) {
            float t = v[i] + bias, c = t + 3.f;
            c = c < 0.f ? 0.f : c;
            c = c > 6.f ? 6.f : c;
            v[i] = t * c / 6.f;
        }
        return;
    case DM_ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float c = v[i] + bias + 3.f;
            c = c < 0.f ? 0.f : c;
            c = c > 6.f ? 6.f : c;
            v[i] = c / 6.f;
        }
        return;
    default: /* transcendental activations: libm per element */
        for (int64_t i = 0; i < n; i++) v[i] = cpu_act(v[i] + bias, act);
        return;
    }
}

dm_status activation_cpu(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 0, "activation", "x")) ||
        (st = cpu_check_f32(y, 0, "activation", "y")))
        return st;
    int64_t n = dm_tensor_numel(x);
    if (n != dm_tensor_numel(y)) return dm_error_set(DM_ERR_SHAPE, "activation: numel differs");
    const float *xd = dm_f32(x);
    float *yd = dm_f32(y);
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) yd[i] = cpu_act(xd[i], act);
    return DM_OK;
}

dm_status binary_cpu(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_binary_op op,
                     dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(a, 0, "binary", "a")) || (st = cpu_check_f32(b, 0, "binary", "b")) ||
        (st = cpu_check_f32(y, 0, "binary", "y")))
        return st;
    int64_t n = dm_tensor_numel(a), nb = dm_tensor_numel(b);
    if (n != dm_tensor_numel(y) || nb == 0 || n % nb)
        return dm_error_set(DM_ERR_SHAPE, "binary: cannot broadcast %lld elements over %lld",
                            (long long)nb, (long long)n);
    const float *ad = dm_f32(a), *bd = dm_f32(b);
    float *yd = dm_f32(y);
    if (nb == n) { /* same shape: no per-element modulo (an integer division) */
#pragma omp parallel for
        for (int64_t i = 0; i < n; i++) {
            float u = ad[i], v = bd[i];
            yd[i] = op == DM_BINARY_ADD ? u + v : (op == DM_BINARY_SUB ? u - v : u * v);
        }
        return DM_OK;
    }
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) {
        float u = ad[i], v = bd[i % nb];
        yd[i] = op == DM_BINARY_ADD ? u + v : (op == DM_BINARY_SUB ? u - v : u * v);
    }
    return DM_OK;
}

dm_status concat_cpu(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(a, 0, "concat", "a")) || (st = cpu_check_f32(b, 0, "concat", "b")) ||
        (st = cpu_check_f32(y, 0, "concat", "y")))
        return st;
    if (a->ndim < 2 || a->ndim != b->ndim || a->ndim != y->ndim || a->shape[0] != b->shape[0] ||
        y->shape[1] != a->shape[1] + b->shape[1])
        return dm_error_set(DM_ERR_SHAPE, "concat: incompatible shapes");
    int64_t inner = 1;
    for (int i = 2; i < a->ndim; i++) {
        if (a->shape[i] != b->shape[i] || a->shape[i] != y->shape[i])
            return dm_error_set(DM_ERR_SHAPE, "concat: trailing dims differ");
        inner *= a->shape[i];
    }
    const size_t sa = (size_t)(a->shape[1] * inner), sb = (size_t)(b->shape[1] * inner);
    for (int64_t n = 0; n < a->shape[0]; n++) {
        float *yn = dm_f32(y) + n * (sa + sb);
        memmove(yn, dm_f32(a) + n * sa, sa * sizeof(float));
        memcpy(yn + sa, dm_f32(b) + n * sb, sb * sizeof(float));
    }
    return DM_OK;
}
