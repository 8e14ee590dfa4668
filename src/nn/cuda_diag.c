/* Pure helpers of the CUDA backend's error reporting (declared in depthmatte/backend_cuda.h):
 * classification of cuDNN 9 status codes and the "driver too old" message. No CUDA headers, so
 * they are built (and unit-tested, tests/gpu/test_cuda_diag.c) in every configuration; the CUDA
 * files check at compile time that the constants below agree with cudnn_graph.h. */
#include <stdio.h>

#include "depthmatte/backend_cuda.h"

int dm_cudnn_status_is_not_supported(int status) {
    /* cuDNN 9 (cudnn_graph.h): CUDNN_STATUS_CATEGORY(s) = s / 1000 * 1000; the NOT_SUPPORTED
     * category is 3000 and its sub-codes 3001..3014 (GRAPH_PATTERN, SHAPE, DATA_TYPE, LAYOUT,
     * ..., SHARED_MEMORY_INSUFFICIENT, PADDING, ...). cuDNN 8 returned 9 for NOT_SUPPORTED. */
    return status / 1000 * 1000 == 3000;
}

/* Oldest Linux driver branch of each CUDA major version (CUDA release notes, table "CUDA
 * Toolkit and Corresponding Driver Versions", minor-version compatibility row). */
static int min_linux_driver(int cuda_major) {
    switch (cuda_major) {
    case 11:
        return 450;
    case 12:
        return 525;
    case 13:
        return 580;
    default:
        return 0;
    }
}

int dm_cuda_driver_message(int driver_version, int runtime_version, char *buf, size_t size) {
    if (size) buf[0] = '\0';
    if (driver_version <= 0 || runtime_version <= 0) return 0; /* no driver: "no GPU" */
    /* minor-version compatibility: any driver of the runtime's major version runs it */
    if (driver_version / 1000 >= runtime_version / 1000) return 0;
    const int rmaj = runtime_version / 1000, rmin = runtime_version % 1000 / 10;
    const int dmaj = driver_version / 1000, dmin = driver_version % 1000 / 10;
    const int need = min_linux_driver(rmaj);
    char branch[48] = "";
    if (need) snprintf(branch, sizeof branch, " (Linux driver R%d or newer)", need);
    snprintf(buf, size,
             "cuda: the NVIDIA driver is too old for this build: it supports CUDA %d.%d "
             "(cudaDriverGetVersion %d), this build's CUDA runtime is %d.%d and needs a driver "
             "for CUDA %d.0 or newer%s; update the driver, or rebuild depthmatte with a CUDA "
             "toolkit <= %d.x (docs/gpu.md, \"Older drivers\")",
             dmaj, dmin, driver_version, rmaj, rmin, rmaj, branch, dmaj);
    return 1;
}
