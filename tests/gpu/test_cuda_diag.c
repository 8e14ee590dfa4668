/* CPU unit test of the CUDA backend's pure diagnostics (src/nn/cuda_diag.c): cuDNN 9 status
 * categories (the fused-convolution fallback must accept every NOT_SUPPORTED sub-code and
 * nothing else) and the "driver too old" message (versions found and needed, no message when
 * the driver is new enough or absent). */
#include <string.h>

#include "depthmatte/backend_cuda.h"
#include "tensor_compare.h"

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

    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
