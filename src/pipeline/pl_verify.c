/* runtime.verify: comparing a device backend's output with the CPU reference's
 * (pl_internal.h pl_verify_compare). */
#include <math.h>
#include <stdio.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/tolerance.h"
#include "pl_internal.h"

/* Compares n device values with the reference; on a mismatch an error naming the stage. */
/* The bounds are selftest's network bounds (include/depthmatte/tolerance.h, one place):
 * float32 1e-4 * std (RVM 1e-4 absolute), float16/bfloat16 the larger of max 32 u rms / mean
 * 4 u rms and the official-derived per-network bounds (tolerance.c sections 3-4). */
dm_status pl_verify_compare(const dm_backend *be, dm_tol_model model, const char *stage,
                            const char *path, int64_t frame, const float *got, const float *ref,
                            size_t n) {
    double mean = 0, sq = 0, m2 = 0, maxd = 0, sum_e = 0;
    const double nn = (double)(n ? n : 1);
    for (size_t i = 0; i < n; i++) mean += ref[i], sq += (double)ref[i] * ref[i];
    mean /= nn;
    for (size_t i = 0; i < n; i++) {
        double d = ref[i] - mean, e = fabs((double)got[i] - ref[i]);
        m2 += d * d;
        sum_e += e;
        if (!(e <= maxd)) maxd = e; /* NaN is the largest error */
    }
    const double sd = sqrt(m2 / nn), rms = sqrt(sq / nn), mean_e = sum_e / nn;
    double max_tol = 0, mean_tol = -1;
    dm_tol_network(be->precision, model, sd, rms, &max_tol, &mean_tol);
    if (maxd <= max_tol && (mean_tol < 0 || mean_e <= mean_tol)) return DM_OK;
    const double rel = sd > 0 ? maxd / sd : maxd, bound = sd > 0 ? max_tol / sd : max_tol;
    char host[MPI_MAX_PROCESSOR_NAME] = "?", device[192] = "";
    int len = 0, rank = 0, dev = -1;
    MPI_Get_processor_name(host, &len);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (be->device == DM_DEVICE_CUDA && !dm_cuda_backend_device(be, &dev)) {
        char name[96] = "", uuid[48] = "";
        dm_cuda_device_name(dev, name, sizeof name);
        dm_cuda_device_uuid(dev, uuid, sizeof uuid);
        snprintf(device, sizeof device, "device %d %s %s, ", dev, name, uuid);
    }
    char mean_part[96] = "";
    if (mean_tol >= 0) snprintf(mean_part, sizeof mean_part, ", mean %.3g", mean_tol);
    return dm_error_set(DM_ERR_VERIFY, "%s: frame %lld: runtime.verify: %s on the %s backend "
                        "(%s%s, rank %d, host %s) differs from the CPU reference: max |diff| "
                        "%.3g (%.3g * std), mean |diff| %.3g; tolerance max %.3g (%.3g * std)%s; "
                        "nothing of this frame is written (run `depthmatte selftest --backend "
                        "%s --precision %s`)", path, (long long)frame, stage, be->ops->name,
                        device, dm_dtype_name(be->precision), rank, host, maxd, rel, mean_e,
                        max_tol, bound, mean_part, be->ops->name, dm_dtype_name(be->precision));
}

int64_t pl_count_nonfinite(const float *x, size_t n) {
    int64_t k = 0;
    for (size_t i = 0; i < n; i++) k += !isfinite(x[i]);
    return k;
}
