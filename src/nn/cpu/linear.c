/* linear, CPU reference: one OpenBLAS SGEMM y = x w^T, then bias and activation fused into one
 * pass over the output (torch.nn.functional.linear followed by the activation). */
#include <cblas.h>

#include "cpu_ops.h"

dm_status linear_cpu(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                     dm_act act, dm_tensor *y) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(x, 0, "linear", "x")) || (st = cpu_check_f32(w, 2, "linear", "w")) ||
        (st = cpu_check_f32(y, 0, "linear", "y")) ||
        (b && (st = cpu_check_f32(b, 1, "linear", "b"))))
        return st;
    if (x->ndim < 1 || y->ndim < 1)
        return dm_error_set(DM_ERR_SHAPE, "linear: x and y need at least one dim");
    const int64_t K = x->shape[x->ndim - 1], N = w->shape[0];
    if (w->shape[1] != K)
        return dm_error_set(DM_ERR_SHAPE, "linear: x has %lld features, w expects %lld",
                            (long long)K, (long long)w->shape[1]);
    if (b && b->shape[0] != N)
        return dm_error_set(DM_ERR_SHAPE, "linear: bias has %lld entries, expected %lld",
                            (long long)b->shape[0], (long long)N);
    const int64_t M = K ? dm_tensor_numel(x) / K : 0;
    if (y->shape[y->ndim - 1] != N || dm_tensor_numel(y) != M * N)
        return dm_error_set(DM_ERR_SHAPE, "linear: y must be (%lld, %lld) (leading dims flattened)",
                            (long long)M, (long long)N);
    if (M == 0) return DM_OK;
    float *yd = dm_f32(y);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.f, dm_f32(x),
                (int)K, dm_f32(w), (int)K, 0.f, yd, (int)N);
    if (!b && act == DM_ACT_NONE) return DM_OK;
    const float *bd = b ? dm_f32(b) : NULL;
#pragma omp parallel for
    for (int64_t m = 0; m < M; m++) {
        float *row = yd + m * N;
        for (int64_t n = 0; n < N; n++) row[n] = cpu_act(row[n] + (bd ? bd[n] : 0.f), act);
    }
    return DM_OK;
}
