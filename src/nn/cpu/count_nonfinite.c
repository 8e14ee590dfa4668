/* count_nonfinite, CPU reference (backend.h): the non-finite guard's count on host memory, per
 * contiguous block (count has G elements: block g is values [g n/G, (g + 1) n/G)). */
#include <math.h>

#include "cpu_ops.h"

dm_status count_nonfinite_cpu(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                              int accumulate) {
    (void)be;
    if (!t || (!t->data && dm_tensor_numel(t)))
        return dm_error_set(DM_ERR_ARG, "count_nonfinite: no tensor");
    if (t->dtype != DM_DTYPE_F32)
        return dm_error_set(DM_ERR_UNSUPPORTED, "count_nonfinite: %s tensor (the CPU backend "
                            "holds float32)", dm_dtype_name(t->dtype));
    const float *v = (const float *)t->data;
    int64_t *c = (int64_t *)count->data;
    const int64_t g = dm_tensor_numel(count), blk = dm_tensor_numel(t) / g;
    for (int64_t j = 0; j < g; j++) {
        int64_t k = 0;
        for (int64_t i = j * blk; i < (j + 1) * blk; i++) k += !isfinite(v[i]);
        c[j] = accumulate ? c[j] + k : k;
    }
    return DM_OK;
}
