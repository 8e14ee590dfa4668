/* GPU binding rules (include/depthmatte/gpu_bind.h). */
#include "depthmatte/gpu_bind.h"

dm_status dm_gpu_bind(int local_rank, int local_size, int device_count, int distinct_single,
                      int share, int *device) {
    *device = -1;
    if (local_size < 1 || local_rank < 0 || local_rank >= local_size || device_count < 0)
        return dm_error_set(DM_ERR_ARG, "gpu binding: node-local rank %d of %d, %d devices",
                            local_rank, local_size, device_count);
    if (device_count == 0)
        return dm_error_set(DM_ERR_BACKEND, "no visible GPU (check CUDA_VISIBLE_DEVICES, the "
                            "Slurm --gpus options and nvidia-smi)");
    if (device_count == 1 && distinct_single) { /* one device per rank, given by the launcher */
        *device = 0;
        return DM_OK;
    }
    if (device_count >= local_size) {
        *device = local_rank;
        return DM_OK;
    }
    if (!share)
        return dm_error_set(DM_ERR_BACKEND, "%d ranks on this node but %d visible GPU%s: start "
                            "at most %d ranks per node (e.g. mpirun --map-by ppr:%d:node, "
                            "Slurm --gpus-per-task=1), or set runtime.share_gpus: true to run "
                            "several ranks per GPU", local_size, device_count,
                            device_count == 1 ? "" : "s", device_count, device_count);
    *device = local_rank % device_count;
    return DM_OK;
}
