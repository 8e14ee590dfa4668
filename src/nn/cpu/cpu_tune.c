/* Re-executes the program with OPENBLAS_CORETYPE when OpenBLAS misdetects the CPU
 * (see include/depthmatte/cpu_tune.h for why). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>

#include "depthmatte/cpu_tune.h"

const char *dm_cpu_blas_corename(void) {
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

void dm_cpu_tune_blas(int argc, char **argv) {
    (void)argc;
    if (getenv("DM_NO_BLAS_REEXEC") || getenv("DM_BLAS_REEXEC")) return;
    int set_core = 0, set_wait = 0;
    if (!getenv("OPENBLAS_CORETYPE") && strcasecmp(dm_cpu_blas_corename(), "prescott") == 0) {
        __builtin_cpu_init();
        const char *core = NULL;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            core = "SkylakeX";
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            core = "Haswell";
        if (core) {
            setenv("OPENBLAS_CORETYPE", core, 1);
            set_core = 1;
        }
    }
    /* OpenMP threads that spin after a parallel region steal the cores from OpenBLAS's own
     * pthreads in the GEMM that follows (RVM 720p, 2 threads: 690 ms/frame spinning, 240 ms
     * passive). libgomp reads the policy at load time, hence the same re-exec. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        set_wait = 1;
    }
    if (!set_core && !set_wait) return;
    setenv("DM_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* execv failed: carry on with the settings of this process. */
    if (set_core) unsetenv("OPENBLAS_CORETYPE");
    if (set_wait) unsetenv("OMP_WAIT_POLICY");
    unsetenv("DM_BLAS_REEXEC");
}
