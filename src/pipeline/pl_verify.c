/* runtime.verify: comparing a device backend's output with the CPU reference's
 * (pl_internal.h pl_verify_compare). */
#include <math.h>
#include <stdio.h>

#include "pl_internal.h"

/* Verification bound of a device's output against the CPU reference, relative to the std of
 * the reference output. float32: 1e-3 (the golden tests hold our CPU float32 within 1e-4 * std
 * of PyTorch float32, so two correct float32 implementations differ by ~1e-4; a wrong kernel
 * is off by O(std)). float16 / bfloat16: 64 unit roundoffs (2^-11 / 2^-8, i.e. 3.1e-2 / 0.25):
 * the emulated backend's per-op rounding gives 15-21 u on the three networks
 * (tests/engine/test_device_models.c), a perturbed op gives >= 0.77 * std. */
static double verify_bound(dm_dtype precision) {
    if (precision == DM_DTYPE_F16) return 64.0 / 2048.0;
    if (precision == DM_DTYPE_BF16) return 64.0 / 256.0;
    return 1e-3;
}

/* Compares n device values with the reference; on a mismatch an error naming the stage. */
dm_status pl_verify_compare(const dm_backend *be, const char *stage, const char *path,
                            int64_t frame, const float *got, const float *ref, size_t n) {
    double mean = 0, m2 = 0, maxd = 0;
    for (size_t i = 0; i < n; i++) mean += ref[i];
    mean /= (double)(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        double d = ref[i] - mean, e = fabs((double)got[i] - ref[i]);
        m2 += d * d;
        if (!(e <= maxd)) maxd = e; /* NaN is the largest error */
    }
    const double sd = sqrt(m2 / (double)(n ? n : 1)), bound = verify_bound(be->precision);
    const double rel = sd > 0 ? maxd / sd : maxd;
    if (rel <= bound) return DM_OK;
    char host[MPI_MAX_PROCESSOR_NAME] = "?";
    int len = 0, rank = 0;
    MPI_Get_processor_name(host, &len);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return dm_error_set(DM_ERR_VERIFY, "%s: frame %lld: runtime.verify: %s on the %s backend "
                        "(%s, rank %d, host %s) differs from the CPU reference: max |diff| "
                        "%.3g = %.3g * std, tolerance %.3g * std; nothing of this frame is "
                        "written (run `depthmatte selftest --backend %s --precision %s`)",
                        path, (long long)frame, stage, be->ops->name,
                        dm_dtype_name(be->precision), rank, host, maxd, rel, bound,
                        be->ops->name, dm_dtype_name(be->precision));
}
