/* GroupNorm, CPU reference (torch.nn.functional.group_norm): x (N, C, ...) split into `groups`
 * groups of C/groups channels; mean and biased variance over each (n, group) including all
 * spatial positions; per-channel affine. Statistics in double (see layernorm.c). */
#include <math.h>

#include "cpu_ops.h"

dm_status groupnorm_cpu(dm_backend *be, const dm_tensor *x, int groups, const dm_tensor *gamma,
                        const dm_tensor *beta, float eps, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 0, "groupnorm", "x")) ||
        (st = cpu_check_f32(y, 0, "groupnorm", "y")) ||
        (gamma && (st = cpu_check_f32(gamma, 1, "groupnorm", "gamma"))) ||
        (beta && (st = cpu_check_f32(beta, 1, "groupnorm", "beta"))))
        return st;
    if (x->ndim < 2) return dm_error_set(DM_ERR_SHAPE, "groupnorm: x needs (N, C, ...)");
    const int64_t N = x->shape[0], C = x->shape[1];
    if (groups < 1 || C % groups)
        return dm_error_set(DM_ERR_ARG, "groupnorm: %lld channels not divisible into %d groups",
                            (long long)C, groups);
    if (dm_tensor_numel(y) != dm_tensor_numel(x))
        return dm_error_set(DM_ERR_SHAPE, "groupnorm: y shape differs from x");
    if ((gamma && gamma->shape[0] != C) || (beta && beta->shape[0] != C))
        return dm_error_set(DM_ERR_SHAPE, "groupnorm: gamma/beta must have %lld entries",
                            (long long)C);
    const int64_t S = (N && C) ? dm_tensor_numel(x) / (N * C) : 0; /* spatial size */
    const int64_t Cg = C / groups, len = Cg * S;
    const float *xd = dm_f32(x), *g = gamma ? dm_f32(gamma) : NULL,
                *bt = beta ? dm_f32(beta) : NULL;
    float *yd = dm_f32(y);
#pragma omp parallel for collapse(2)
    for (int64_t n = 0; n < N; n++) {
        for (int gi = 0; gi < groups; gi++) {
            const size_t off = ((size_t)n * C + (size_t)gi * Cg) * S;
            const float *xg = xd + off;
            float *yg = yd + off;
            double s = 0, s2 = 0;
            for (int64_t i = 0; i < len; i++) s += xg[i];
            const double mean = len ? s / (double)len : 0;
            for (int64_t i = 0; i < len; i++) {
                double d = xg[i] - mean;
                s2 += d * d;
            }
            const double rstd = 1.0 / sqrt((len ? s2 / (double)len : 0) + (double)eps);
            for (int64_t c = 0; c < Cg; c++) {
                const int64_t ch = gi * Cg + c;
                const float ga = g ? g[ch] : 1.f, be_ = bt ? bt[ch] : 0.f;
                for (int64_t i = 0; i < S; i++) {
                    float v = (float)((xg[c * S + i] - mean) * rstd);
                    yg[c * S + i] = v * ga + be_;
                }
            }
        }
    }
    return DM_OK;
}
