/* depthmatte — which GPU a rank takes (pure rules, unit-tested with simulated device counts).
 *
 * Rules, in order (docs/gpu.md, "GPU binding"):
 * 1. No visible device: an error (runtime.backend cuda) — the caller falls back to the CPU
 *    for runtime.backend auto.
 * 2. Each rank sees exactly one device and the node's ranks see different devices (Slurm
 *    --gpus-per-task=1 or a per-rank CUDA_VISIBLE_DEVICES, told apart by the device UUIDs):
 *    device 0.
 * 3. At least as many visible devices as ranks on the node: device = node-local rank.
 * 4. Fewer devices than ranks on the node: an error naming both counts, unless the job allows
 *    sharing (runtime.share_gpus: true), then device = node-local rank modulo the count.
 */
#ifndef DEPTHMATTE_GPU_BIND_H
#define DEPTHMATTE_GPU_BIND_H

#include <stddef.h>

#include "depthmatte/status.h"

/* Picks the device index (0-based, as cudaSetDevice counts the visible devices) of a rank.
 * local_rank / local_size: the rank's index and the rank count on its node (MPI_COMM_TYPE_SHARED);
 * device_count: devices visible to this rank; distinct_single: 1 when every rank of the node
 * sees one device and no two of them see the same one (UUIDs compared by the caller), else 0;
 * share: runtime.share_gpus. On success *device is the index. Errors: DM_ERR_BACKEND (rules 1
 * and 4, message with the counts and the way out), DM_ERR_ARG (inconsistent arguments). */
dm_status dm_gpu_bind(int local_rank, int local_size, int device_count, int distinct_single,
                      int share, int *device);

#endif
