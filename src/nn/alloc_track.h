/* Byte counts of the device memory the CUDA backend takes with cudaMalloc (tensors from its
 * alloc op, scratch slots, download stages), per device index: the bytes held now, the peak and
 * the number of allocations and frees, so that a benchmark reports the peak of what we allocate
 * (as PyTorch's torch.cuda.max_memory_allocated does for its allocator), apart from the CUDA
 * context and the cuDNN/cuBLASLt libraries' own memory that cudaMemGetInfo also counts.
 * A free knows only the pointer (dm_tensor_free -> dm_cuda_buffer_free), so the tracker keeps
 * pointer -> (device, bytes) in a hash table. Pure C, thread-safe (one mutex), built in every
 * configuration so that a CPU unit test checks it (tests/gpu/test_alloc_track.c); the CUDA
 * backend (src/nn/cuda/backend_cuda.c) calls it around cudaMalloc/cudaFree. Internal header. */
#ifndef DM_NN_ALLOC_TRACK_H
#define DM_NN_ALLOC_TRACK_H

#include <stddef.h>

#include "depthmatte/status.h"

/* Device indices 0 .. DM_ALLOC_TRACK_DEVICES - 1 are counted; others are ignored. */
#define DM_ALLOC_TRACK_DEVICES 64

typedef struct dm_alloc_track_counts {
    size_t current_bytes; /* bytes held now */
    size_t peak_bytes;    /* largest current_bytes since the process started */
    long long allocs;     /* allocations recorded */
    long long frees;      /* frees of recorded allocations */
} dm_alloc_track_counts;

/* Records `bytes` at non-NULL ptr on device. DM_ERR_NOMEM if the table cannot grow (then the
 * allocation is not counted: the caller still owns it and keeps going). A pointer recorded
 * twice (the previous one was freed behind the tracker's back) replaces the old entry. */
dm_status dm_alloc_track_add(int device, const void *ptr, size_t bytes);

/* Forgets ptr and returns its bytes (0 when it was never recorded, e.g. NULL). */
size_t dm_alloc_track_remove(const void *ptr);

/* Counts of device into *out (zeros for a device never used). DM_ERR_ARG for a device index
 * outside 0 .. DM_ALLOC_TRACK_DEVICES - 1 or out == NULL. */
dm_status dm_alloc_track_get(int device, dm_alloc_track_counts *out);

#endif
