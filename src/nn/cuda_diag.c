/* Pure helpers of the CUDA backend's error reporting (declared in depthmatte/backend_cuda.h):
 * classification of cuDNN 9 status codes, the "driver too old" message and whether the build's
 * CUDA architectures run on a device's compute capability. No CUDA headers, so
 * they are built (and unit-tested, tests/gpu/test_cuda_diag.c) in every configuration; the CUDA
 * files check at compile time that the constants below agree with cudnn_graph.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

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

/* ---- does the build have GPU code for this compute capability? ----------------------------
 * Rules (CUDA C++ Programming Guide, "Binary Compatibility" and "PTX Compatibility"; nvcc
 * manual, "GPU Generations" / "Family-Specific and Architecture-Specific Features"):
 *   sm_XY cubin (CMake "XY-real")     runs on X.Z for every Z >= Y (same major only);
 *   compute_XY PTX ("XY-virtual")     is JIT-compiled by the driver for every CC >= X.Y;
 *   "XYa" (architecture-specific)     cubin and PTX run only on exactly X.Y;
 *   "XYf" (family-specific, CUDA 12.9) cubin and PTX run on X.Z, Z >= Y (same major only);
 *   plain "XY" (CMake)                both the cubin and the PTX. */

enum { ARCH_NO = 0, ARCH_YES = 1, ARCH_UNKNOWN = -1 };

/* One CMAKE_CUDA_ARCHITECTURES entry against CC major.minor: ARCH_YES/NO, or ARCH_UNKNOWN for an
 * entry this parser does not understand. */
static int arch_entry(const char *t, size_t len, int major, int minor) {
    char e[24];
    if (len == 0 || len >= sizeof e) return ARCH_UNKNOWN;
    memcpy(e, t, len);
    e[len] = '\0';
    /* whole-list keywords: "all"/"all-major" embed PTX of the newest architecture (forward
     * compatible); "native" is what the build machine's GPUs need (the kernel probe of
     * dm_backend_cuda_create still catches a build moved to another GPU) */
    if (!strcmp(e, "all") || !strcmp(e, "all-major") || !strcmp(e, "native")) return ARCH_YES;
    const char *p = e;
    int n = 0, digits = 0;
    while (isdigit((unsigned char)*p) && digits < 4)
        n = 10 * n + (*p++ - '0'), digits++;
    if (digits < 2 || digits > 3 || n < 10) return ARCH_UNKNOWN; /* "9", "1000", "OFF", "sm_90" */
    char variant = 0; /* 'a' architecture-specific, 'f' family-specific */
    if (*p == 'a' || *p == 'f') variant = *p++;
    int real = 1, virt = 1;
    if (!strcmp(p, "-real"))
        virt = 0;
    else if (!strcmp(p, "-virtual"))
        real = 0;
    else if (*p)
        return ARCH_UNKNOWN;
    const int amaj = n / 10, amin = n % 10, cc = 10 * major + minor;
    if (variant == 'a') return major == amaj && minor == amin ? ARCH_YES : ARCH_NO;
    const int same_major_newer = major == amaj && minor >= amin;
    if (real && same_major_newer) return ARCH_YES;
    if (virt && (variant == 'f' ? same_major_newer : cc >= n)) return ARCH_YES;
    return ARCH_NO;
}

int dm_cuda_arch_runs(const char *archs, int cc_major, int cc_minor) {
    if (!archs || cc_major < 1 || cc_minor < 0 || cc_minor > 9) return ARCH_UNKNOWN;
    int unknown = 0, entries = 0;
    for (const char *s = archs; *s;) {
        const size_t len = strcspn(s, "; ,\t");
        if (len) {
            const int r = arch_entry(s, len, cc_major, cc_minor);
            if (r == ARCH_YES) return ARCH_YES;
            if (r == ARCH_UNKNOWN) unknown = 1;
            entries++;
        }
        s += len;
        if (*s) s++;
    }
    /* an entry we cannot read (or "OFF": nvcc's own default) might be the one that covers the
     * device: do not refuse it, the kernel probe decides */
    return unknown || !entries ? ARCH_UNKNOWN : ARCH_NO;
}

int dm_cuda_arch_message(const char *archs, int cc_major, int cc_minor, const char *cause,
                         char *buf, size_t size) {
    if (size) buf[0] = '\0';
    if (!cause && dm_cuda_arch_runs(archs, cc_major, cc_minor) != ARCH_NO) return 0;
    const char *list = archs && archs[0] ? archs : "(unknown)";
    char why[256] = "";
    if (cause) snprintf(why, sizeof why, " (%s)", cause);
    snprintf(buf, size,
             "this build has no GPU code for compute capability %d.%d%s: it was compiled for "
             "CMAKE_CUDA_ARCHITECTURES \"%s\" (sm_XY code runs on X.Y..X.9, compute_XY PTX on "
             "X.Y and newer, XYa only on X.Y); rebuild with cmake "
             "-DCMAKE_CUDA_ARCHITECTURES=\"%d%d-real;%s\" (or =native on a node with this GPU), "
             "see docs/gpu.md \"GPU architectures\"",
             cc_major, cc_minor, why, list, cc_major, cc_minor,
             archs && archs[0] ? archs : "90-real;90-virtual");
    return 1;
}
