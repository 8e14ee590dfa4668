/* GPU binding rules with simulated device counts (include/depthmatte/gpu_bind.h). */
#include <stdio.h>
#include <string.h>

#include "depthmatte/gpu_bind.h"
#include "tensor_compare.h"

static int bind(int r, int n, int dev, int distinct, int share) {
    int d = -2;
    dm_status st = dm_gpu_bind(r, n, dev, distinct, share, &d);
    return st ? -1 : d;
}

int main(void) {
    /* 4 ranks on a node with 4 (or 8) GPUs: local rank -> device */
    for (int r = 0; r < 4; r++) {
        CHECK(bind(r, 4, 4, 0, 0) == r);
        CHECK(bind(r, 4, 8, 0, 0) == r);
    }
    /* Slurm --gpus-per-task=1: each rank sees one device, all different -> device 0 */
    for (int r = 0; r < 4; r++) CHECK(bind(r, 4, 1, 1, 0) == 0);
    /* one rank, one GPU */
    CHECK(bind(0, 1, 1, 0, 0) == 0);
    CHECK(bind(0, 1, 1, 1, 0) == 0);
    /* more ranks than GPUs: an error naming both counts, unless sharing is allowed */
    int d = 7;
    CHECK(dm_gpu_bind(2, 4, 2, 0, 0, &d) == DM_ERR_BACKEND && d == -1);
    CHECK(strstr(dm_error_message(), "4 ranks on this node but 2 visible GPUs") != NULL);
    CHECK(strstr(dm_error_message(), "runtime.share_gpus") != NULL);
    CHECK(bind(0, 4, 1, 0, 0) == -1); /* 4 ranks all seeing the same single GPU */
    CHECK(strstr(dm_error_message(), "1 visible GPU:") != NULL);
    for (int r = 0; r < 4; r++) CHECK(bind(r, 4, 2, 0, 1) == r % 2);
    /* no device at all */
    CHECK(dm_gpu_bind(0, 2, 0, 0, 1, &d) == DM_ERR_BACKEND);
    CHECK(strstr(dm_error_message(), "no visible GPU") != NULL);
    /* inconsistent arguments */
    CHECK(dm_gpu_bind(2, 2, 2, 0, 0, &d) == DM_ERR_ARG);
    CHECK(dm_gpu_bind(0, 0, 2, 0, 0, &d) == DM_ERR_ARG);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
