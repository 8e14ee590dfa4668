/* depthmatte — a backend's host side: binding a host thread to a backend, and host buffers for
 * the outputs copied back from it (the pipeline's compute thread and its double-buffered rows,
 * docs/gpu.md "The GPU path in the pipeline").
 *
 * Any backend (CPU, CUDA, emulated). The CUDA parts are compiled but NOT yet run on a GPU. */
#ifndef DEPTHMATTE_BACKEND_HOST_H
#define DEPTHMATTE_BACKEND_HOST_H

#include <stddef.h>

#include "depthmatte/backend.h"

/* Makes the calling host thread run be's ops as the creating thread does: the OpenMP team size
 * be->threads (an OpenMP ICV is per thread, so a new thread would otherwise take the default
 * and, for reductions split by thread, could round differently) and, on a CUDA backend, its
 * device (dm_cuda_backend_bind_thread: the CUDA runtime's current device is per host thread).
 * Call it once at the start of a thread that runs be's ops, while no other thread uses be.
 * DM_OK, or DM_ERR_BACKEND (CUDA) with the message set. */
dm_status dm_backend_bind_thread(const dm_backend *be);

/* A host buffer of `bytes` bytes for data copied from be's tensors: page-locked
 * (dm_cuda_host_alloc) on a CUDA backend, so device->host copies run at full speed; plain
 * malloc on the CPU and emulated backends. NULL when out of memory (the CUDA error is in
 * dm_error_message()). Free with dm_backend_host_free and the same backend. */
void *dm_backend_host_alloc(const dm_backend *be, size_t bytes);

/* Releases a buffer of dm_backend_host_alloc (NULL is ignored). */
void dm_backend_host_free(const dm_backend *be, void *p);

#endif
