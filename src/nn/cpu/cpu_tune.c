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
    if (getenv("OPENBLAS_CORETYPE") || getenv("DM_NO_BLAS_REEXEC") || getenv("DM_BLAS_REEXEC"))
        return;
    if (strcasecmp(dm_cpu_blas_corename(), "prescott") != 0) return;
    __builtin_cpu_init();
    const char *core = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        core = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        core = "Haswell";
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("DM_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* execv failed: carry on with the generic kernels. */
    unsetenv("OPENBLAS_CORETYPE");
}
