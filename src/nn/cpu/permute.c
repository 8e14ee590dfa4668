/* permute, CPU reference: y = x.permute(perm).contiguous() (torch.Tensor.permute), any rank up
 * to DM_MAX_DIMS. Used for token <-> feature-map layouts ((N, T, C) <-> (N, C, H, W)) and for
 * splitting / merging attention heads ((B, T, 3, Hd, D) -> (3, B, Hd, T, D)). */
#include <string.h>

#include "cpu_ops.h"

dm_status permute_cpu(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 0, "permute", "x")) || (st = cpu_check_f32(y, x->ndim, "permute", "y")))
        return st;
    const int nd = x->ndim;
    int seen[DM_MAX_DIMS] = {0};
    for (int i = 0; i < nd; i++) {
        if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]]++)
            return dm_error_set(DM_ERR_ARG, "permute: invalid permutation");
        if (y->shape[i] != x->shape[perm[i]])
            return dm_error_set(DM_ERR_SHAPE, "permute: y dim %d is %lld, expected %lld", i,
                                (long long)y->shape[i], (long long)x->shape[perm[i]]);
    }
    /* Pad to 5 dims: output index (o0..o4) reads x at sum_i o_i * xstride[perm[i]]. */
    int64_t xs[DM_MAX_DIMS], ys[5] = {1, 1, 1, 1, 1}, st_in[5] = {0, 0, 0, 0, 0};
    int64_t stride = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = stride;
        stride *= x->shape[i];
    }
    const int pad = 5 - nd;
    for (int i = 0; i < nd; i++) {
        ys[pad + i] = y->shape[i];
        st_in[pad + i] = xs[perm[i]];
    }
    const float *xd = dm_f32(x);
    float *yd = dm_f32(y);
    const int64_t inner = ys[4];
#pragma omp parallel for collapse(3)
    for (int64_t a = 0; a < ys[0]; a++)
        for (int64_t b = 0; b < ys[1]; b++)
            for (int64_t c = 0; c < ys[2]; c++) {
                for (int64_t d = 0; d < ys[3]; d++) {
                    const float *src = xd + a * st_in[0] + b * st_in[1] + c * st_in[2] + d * st_in[3];
                    float *dst = yd + (((a * ys[1] + b) * ys[2] + c) * ys[3] + d) * inner;
                    if (st_in[4] == 1) {
                        memcpy(dst, src, sizeof(float) * (size_t)inner);
                    } else {
                        for (int64_t e = 0; e < inner; e++) dst[e] = src[e * st_in[4]];
                    }
                }
            }
    return DM_OK;
}
