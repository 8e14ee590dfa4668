/* count_nonfinite, CPU reference (backend.h): the non-finite guard's count on host memory. */
#include <math.h>

#include "cpu_ops.h"

dm_status count_nonfinite_cpu(dm_backend *be, const dm_tensor *t, int64_t *count) {
    (void)be;
    *count = 0;
    if (!t || (!t->data && dm_tensor_numel(t)))
        return dm_error_set(DM_ERR_ARG, "count_nonfinite: no tensor");
    if (t->dtype != DM_DTYPE_F32)
        return dm_error_set(DM_ERR_UNSUPPORTED, "count_nonfinite: %s tensor (the CPU backend "
                            "holds float32)", dm_dtype_name(t->dtype));
    const float *v = (const float *)t->data;
    const int64_t n = dm_tensor_numel(t);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += !isfinite(v[i]);
    *count = k;
    return DM_OK;
}
