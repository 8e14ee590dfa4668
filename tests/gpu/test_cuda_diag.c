/* CPU unit test of the CUDA backend's pure diagnostics (src/nn/cuda_diag.c): cuDNN 9 status
 * categories (the fused-convolution fallback must accept every NOT_SUPPORTED sub-code and
 * nothing else), the "driver too old" message (versions found and needed, no message when
 * the driver is new enough or absent) and the architecture check (a table of
 * CMAKE_CUDA_ARCHITECTURES lists x compute capabilities against the CUDA Programming Guide's
 * binary / PTX compatibility rules; the message's content). */
#include <string.h>

#include "depthmatte/backend_cuda.h"
#include "tensor_compare.h"

/* dm_cuda_arch_runs: 1 runs, 0 no code for the device, -1 cannot tell */
static const struct {
    const char *archs;
    int major, minor, want;
} arch_table[] = {
    {"90-real;90-virtual", 9, 0, 1},  /* H100/H200: the sm_90 cubin */
    {"90-real;90-virtual", 8, 0, 0},  /* A100: neither cubin nor PTX */
    {"90-real;90-virtual", 8, 9, 0},  /* L40 */
    {"90-real;90-virtual", 7, 0, 0},  /* V100 */
    {"90-real;90-virtual", 10, 0, 1}, /* B200: compute_90 PTX, JIT-compiled */
    {"90-real;90-virtual", 12, 0, 1}, /* RTX 50xx: PTX again */
    {"90-real", 10, 0, 0},            /* a cubin never crosses a major version */
    {"90-virtual", 9, 0, 1},
    {"90a-real", 9, 0, 1}, /* architecture-specific: exactly 9.0 */
    {"90a-real", 10, 0, 0},
    {"90a-virtual", 10, 0, 0}, /* 'a' PTX is not forward compatible either */
    {"90a", 9, 0, 1},
    {"100f-real", 10, 3, 1}, /* family-specific: 10.x with x >= 0 */
    {"100f", 11, 0, 0},
    {"103f-real", 10, 0, 0},
    {"80", 8, 6, 1},      /* cubin (same major, newer minor) and PTX */
    {"80", 9, 0, 1},      /* the PTX */
    {"80-real", 8, 6, 1}, /* same major, minor 6 >= 0 */
    {"80-real", 9, 0, 0},
    {"86-real", 8, 0, 0}, /* older minor: no */
    {"86-real", 8, 9, 1},
    {"80-virtual", 7, 5, 0}, /* PTX runs only on CC >= 8.0 */
    {"80-virtual", 8, 0, 1},
    {"75-virtual", 8, 0, 1},
    {"80;86;90", 8, 9, 1},
    {"80;86;90", 7, 5, 0},
    {"80-real;90-real", 8, 9, 1},
    {"80-real;90-real", 10, 0, 0},
    {"86-real,90-real", 8, 6, 1}, /* ',' and blanks separate too */
    {" 86-real  90-virtual ", 10, 0, 1},
    {"120-real", 12, 1, 1}, /* three-digit architectures */
    {"120-real", 12, 0, 1},
    {"100-real", 12, 0, 0},
    {"all", 8, 0, 1}, /* keywords: covered (see backend_cuda.h) */
    {"all-major", 7, 5, 1},
    {"native", 8, 6, 1},
    /* cannot tell: the kernel probe decides */
    {"OFF", 8, 0, -1}, /* nvcc's default architecture */
    {"", 8, 0, -1},
    {";;", 8, 0, -1},
    {"sm_80", 8, 0, -1},
    {"80-rea", 8, 0, -1},
    {"80-real-virtual", 8, 0, -1},
    {"8", 8, 0, -1},
    {"1000", 10, 0, -1},
    {"08", 8, 0, -1},
    {"80x", 8, 0, -1},
    {"90-real;garbage", 8, 0, -1},    /* an unread entry might have covered it */
    {"90-real;garbage", 9, 0, 1},     /* one that covers wins */
    {"90-real;90-virtual", 0, 0, -1}, /* compute capability out of range */
    {"90-real;90-virtual", 9, 10, -1},
    {"90-real;90-virtual", 9, -1, -1},
    {"a-very-long-entry-that-does-not-fit-any-buffer-of-the-parser;90-real", 8, 0, -1},
};

static void arch_cases(void) {
    const int n = (int)(sizeof arch_table / sizeof arch_table[0]);
    for (int i = 0; i < n; i++) {
        const int got =
            dm_cuda_arch_runs(arch_table[i].archs, arch_table[i].major, arch_table[i].minor);
        if (got != arch_table[i].want)
            printf("  arch case %d: \"%s\" on %d.%d: %d, want %d\n", i, arch_table[i].archs,
                   arch_table[i].major, arch_table[i].minor, got, arch_table[i].want);
        CHECK(got == arch_table[i].want);
        /* the message exactly when the answer is "no code" */
        char msg[512];
        const int m = dm_cuda_arch_message(arch_table[i].archs, arch_table[i].major,
                                           arch_table[i].minor, NULL, msg, sizeof msg);
        CHECK(m == (arch_table[i].want == 0));
        CHECK(m || msg[0] == '\0');
    }
    CHECK(dm_cuda_arch_runs(NULL, 9, 0) == -1);
}

static void arch_messages(void) {
    char msg[512];
    /* the default build on an A100: CC, the build's list, the cmake command, the doc section */
    CHECK(dm_cuda_arch_message("90-real;90-virtual", 8, 0, NULL, msg, sizeof msg) == 1);
    printf("message: %s\n", msg);
    CHECK(strstr(msg, "compute capability 8.0") != NULL);
    CHECK(strstr(msg, "\"90-real;90-virtual\"") != NULL);
    CHECK(strstr(msg, "-DCMAKE_CUDA_ARCHITECTURES=\"80-real;90-real;90-virtual\"") != NULL);
    CHECK(strstr(msg, "native") != NULL);
    CHECK(strstr(msg, "docs/gpu.md") != NULL && strstr(msg, "GPU architectures") != NULL);
    CHECK(strchr(msg, '\n') == NULL);     /* one line */
    CHECK(strncmp(msg, "cuda:", 5) != 0); /* the caller names the device first */
    /* an L40 under an sm_86 cubin */
    CHECK(dm_cuda_arch_message("86-real", 8, 9, NULL, msg, sizeof msg) == 0); /* same major */
    CHECK(dm_cuda_arch_message("90a-real", 10, 0, NULL, msg, sizeof msg) == 1);
    CHECK(strstr(msg, "compute capability 10.0") != NULL && strstr(msg, "\"90a-real\"") &&
          strstr(msg, "\"100-real;90a-real\""));
    /* the runtime's own answer (kernel probe): always a message, with the cause in it */
    CHECK(dm_cuda_arch_message("native", 8, 6, "cudaFuncGetAttributes: no kernel image", msg,
                               sizeof msg) == 1);
    CHECK(strstr(msg, "compute capability 8.6") != NULL && strstr(msg, "no kernel image") &&
          strstr(msg, "\"native\""));
    CHECK(dm_cuda_arch_message("", 8, 6, "probe", msg, sizeof msg) == 1);
    CHECK(strstr(msg, "(unknown)") != NULL);
    /* a short buffer stays terminated; size 0 writes nothing */
    char tiny[16];
    CHECK(dm_cuda_arch_message("90-real;90-virtual", 8, 0, NULL, tiny, sizeof tiny) == 1);
    CHECK(strlen(tiny) == sizeof tiny - 1);
    char none[1] = {'x'};
    CHECK(dm_cuda_arch_message("90-real;90-virtual", 8, 0, NULL, none, 0) == 1 && none[0] == 'x');
}

int main(void) {
    /* cuDNN 9: 0 success, 1000 NOT_INITIALIZED..., 2000 BAD_PARAM..., 3000 NOT_SUPPORTED and
     * 3001..3014 its sub-codes, 4000 INTERNAL_ERROR..., 5000 EXECUTION_FAILED... */
    CHECK(dm_cudnn_status_is_not_supported(3000));
    for (int s = 3001; s <= 3014; s++)
        CHECK(dm_cudnn_status_is_not_supported(s));
    CHECK(!dm_cudnn_status_is_not_supported(0));
    CHECK(!dm_cudnn_status_is_not_supported(9)); /* cuDNN 8's NOT_SUPPORTED value */
    CHECK(!dm_cudnn_status_is_not_supported(2000));
    CHECK(!dm_cudnn_status_is_not_supported(2002));
    CHECK(!dm_cudnn_status_is_not_supported(4000));
    CHECK(!dm_cudnn_status_is_not_supported(4001));
    CHECK(!dm_cudnn_status_is_not_supported(5000));

    char msg[512];
    /* R550 driver (CUDA 12.4) under a CUDA 13.0 runtime: too old, both versions named */
    CHECK(dm_cuda_driver_message(12040, 13000, msg, sizeof msg) == 1);
    printf("message: %s\n", msg);
    CHECK(strstr(msg, "supports CUDA 12.4") != NULL);
    CHECK(strstr(msg, "cudaDriverGetVersion 12040") != NULL);
    CHECK(strstr(msg, "runtime is 13.0") != NULL);
    CHECK(strstr(msg, "CUDA 13.0 or newer") != NULL);
    CHECK(strstr(msg, "R580") != NULL);
    CHECK(strstr(msg, "toolkit <= 12.x") != NULL);
    CHECK(strchr(msg, '\n') == NULL); /* one line */
    /* CUDA 12.8 runtime on a CUDA 11.8 driver */
    CHECK(dm_cuda_driver_message(11080, 12080, msg, sizeof msg) == 1);
    CHECK(strstr(msg, "R525") != NULL && strstr(msg, "runtime is 12.8") != NULL);
    /* minor-version compatibility: a 13.0 driver runs a 13.1 runtime; newer drivers run older */
    CHECK(dm_cuda_driver_message(13000, 13010, msg, sizeof msg) == 0 && msg[0] == '\0');
    CHECK(dm_cuda_driver_message(13000, 13000, msg, sizeof msg) == 0);
    CHECK(dm_cuda_driver_message(13020, 12080, msg, sizeof msg) == 0);
    /* no driver at all (cudaDriverGetVersion reports 0): not this message */
    CHECK(dm_cuda_driver_message(0, 13000, msg, sizeof msg) == 0 && msg[0] == '\0');
    /* a short buffer stays terminated */
    char tiny[16];
    CHECK(dm_cuda_driver_message(12040, 13000, tiny, sizeof tiny) == 1);
    CHECK(strlen(tiny) == sizeof tiny - 1);

    arch_cases();
    arch_messages();

    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
