/* LayerNorm over the last dim, CPU reference (torch.nn.functional.layer_norm: biased variance,
 * eps inside the square root). Statistics are accumulated in double so the reference does not
 * depend on summation order; the result is rounded once to float. */
#include <math.h>

#include "cpu_ops.h"

dm_status layernorm_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                        const dm_tensor *beta, float eps, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 0, "layernorm", "x")) ||
        (st = cpu_check_f32(y, 0, "layernorm", "y")) ||
        (gamma && (st = cpu_check_f32(gamma, 1, "layernorm", "gamma"))) ||
        (beta && (st = cpu_check_f32(beta, 1, "layernorm", "beta"))))
        return st;
    if (x->ndim < 1) return dm_error_set(DM_ERR_SHAPE, "layernorm: x needs at least one dim");
    const int64_t C = x->shape[x->ndim - 1];
    if (dm_tensor_numel(y) != dm_tensor_numel(x) || y->shape[y->ndim - 1] != C)
        return dm_error_set(DM_ERR_SHAPE, "layernorm: y shape differs from x");
    if ((gamma && gamma->shape[0] != C) || (beta && beta->shape[0] != C))
        return dm_error_set(DM_ERR_SHAPE, "layernorm: gamma/beta must have %lld entries",
                            (long long)C);
    const int64_t M = C ? dm_tensor_numel(x) / C : 0;
    const float *xd = dm_f32(x), *g = gamma ? dm_f32(gamma) : NULL,
                *bt = beta ? dm_f32(beta) : NULL;
    float *yd = dm_f32(y);
#pragma omp parallel for
    for (int64_t m = 0; m < M; m++) {
        const float *xr = xd + m * C;
        float *yr = yd + m * C;
        double s = 0, s2 = 0;
        for (int64_t c = 0; c < C; c++) s += xr[c];
        const double mean = s / (double)C;
        for (int64_t c = 0; c < C; c++) {
            double d = xr[c] - mean;
            s2 += d * d;
        }
        const double rstd = 1.0 / sqrt(s2 / (double)C + (double)eps);
        for (int64_t c = 0; c < C; c++) {
            float v = (float)((xr[c] - mean) * rstd);
            yr[c] = v * (g ? g[c] : 1.f) + (bt ? bt[c] : 0.f);
        }
    }
    return DM_OK;
}
