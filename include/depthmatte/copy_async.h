/* depthmatte — asynchronous downloads: a device tensor copied into host memory while the
 * backend goes on computing.
 *
 * dm_copy (backend.h) into host memory returns when the data is there: on CUDA the host waits
 * for the whole stream, and the next frame's forward cannot be queued before the download is
 * done. dm_copy_async queues the download instead and hands back a ticket; dm_copy_wait(ticket)
 * returns when the data is in the host buffer. Between the two the caller may queue further ops
 * on the backend (the next frame's forward): the download runs beside them.
 *
 * Semantics, on every backend:
 * - the download copies what `src` holds once the work queued on the backend BEFORE the
 *   dm_copy_async call is done (stream order), converted to dst's dtype; ops queued after the
 *   call may overwrite src at once (on CUDA the value is staged on the device first, so the
 *   models' fixed output buffers, baked into CUDA graphs, need no second copy);
 * - `dst` belongs to the download until dm_copy_wait of its ticket returns: it must not be
 *   read (its contents are undefined: the emulated backend fills it with 0xFF bytes, a NaN in
 *   every float dtype) nor written, nor be the destination of another download;
 * - tickets complete in order: waiting for a ticket completes every earlier download of the
 *   same backend. Waiting twice, or for a zeroed ticket, returns DM_OK at once.
 * Neither call may run inside a graph capture (depthmatte/graph.h): a download is host
 * traffic, which a CUDA stream capture cannot hold (DM_ERR_BACKEND, the capture is spoiled).
 *
 * Backends: CUDA (a copy stream beside the compute stream: an event recorded on the compute
 * stream after the staging, cudaStreamWaitEvent on the copy stream, cudaMemcpyAsync on the copy
 * stream, a "done" event that dm_copy_wait synchronises; a ring of device stages and events
 * made once per context, so a frame allocates nothing); the emulated device (the value taken at
 * the call, delivered at the wait, dst poisoned in between and checked unwritten, so a read or
 * a reuse before the wait fails in tests); the CPU backend and any backend without the op-table
 * entries (a synchronous dm_copy, the ticket complete at once). For the copy to overlap on CUDA
 * dst must be page-locked (dm_backend_host_alloc, backend_host.h); into pageable memory the
 * CUDA runtime returns only when the copy is done. Source: CUDA Programming Guide, "Asynchronous
 * Concurrent Execution" (streams, events, overlap of data transfer and kernel execution).
 * The CUDA part is compiled but NOT yet run on a GPU (docs/gpu.md). */
#ifndef DEPTHMATTE_COPY_ASYNC_H
#define DEPTHMATTE_COPY_ASYNC_H

#include <stdint.h>

#include "depthmatte/backend.h"

/* A queued download. Zero-initialised: nothing pending (dm_copy_wait returns at once). */
typedef struct dm_copy_ticket {
    uint64_t id; /* backend-defined sequence number, 0: complete */
    int slot;    /* backend-defined (the CUDA stage the download went through) */
} dm_copy_ticket;

/* 1 when `be` downloads asynchronously (its op table has copy_async and copy_wait: CUDA, the
 * emulated device), 0 when dm_copy_async is a synchronous dm_copy (CPU). */
int dm_backend_supports_async_copy(const dm_backend *be);

/* Queues the download of src (a tensor of be's device, any dtype dm_copy converts: f32, f16,
 * bf16, u8) into dst (a host tensor, DM_DEVICE_CPU, the same numel; dtype conversion as
 * dm_copy) and sets *ticket. Errors: DM_ERR_ARG (NULL tensors, src not on be's device, dst not
 * on the host, dst still the destination of a pending download on the emulated backend),
 * DM_ERR_SHAPE (numel), DM_ERR_DTYPE, DM_ERR_BACKEND (CUDA; inside a graph capture); *ticket is
 * zeroed on error. On a backend without asynchronous copies: dm_copy, then a complete ticket. */
dm_status dm_copy_async(dm_backend *be, const dm_tensor *src, dm_tensor *dst,
                        dm_copy_ticket *ticket);

/* Returns when the download of *ticket (and every earlier one of be) has landed in its host
 * buffer, and zeroes *ticket. Errors: DM_ERR_BACKEND (CUDA; inside a graph capture), DM_ERR_ARG
 * on the emulated backend when the host destination was written before the wait (the ticket is
 * then complete all the same, holding the downloaded values). */
dm_status dm_copy_wait(dm_backend *be, dm_copy_ticket *ticket);

/* Counts made on the device and read back without stopping it: the non-finite guard's per-frame
 * NaN/Inf counts (dm_count_nonfinite) of every model. `dev` is a (groups,) i64 tensor of the
 * backend the ops count into; dm_async_counts_start queues the download of its first n counts
 * into `host` (page-locked on CUDA, so the 8-byte copies run on the copy stream beside the next
 * frame's forward); dm_async_counts_wait returns when they are there. Between the two the host
 * may queue more work and write the previous frame's rows, so the compute stream never waits
 * for the count (issue 10: the guard used to synchronise it before every frame's rows). */
typedef struct dm_async_counts {
    dm_tensor dev;         /* (groups,) i64 on the backend */
    int64_t *host;         /* groups counts (dm_backend_host_alloc) */
    int groups, n;         /* capacity; counts of the last start */
    dm_copy_ticket ticket; /* the queued download */
} dm_async_counts;

/* Allocates both sides for `groups` >= 1 counts (host counts 0). DM_ERR_ARG, DM_ERR_NOMEM. */
dm_status dm_async_counts_init(dm_async_counts *c, dm_backend *be, int groups);
/* Queues the download of dev[0..n) (1 <= n <= groups) after the work queued so far: a wait for
 * an earlier start is made first. Errors as dm_copy_async, DM_ERR_ARG (n out of range). */
dm_status dm_async_counts_start(dm_async_counts *c, dm_backend *be, int n);
/* Waits for the last start's download; then host[0..n) hold the counts. Waiting twice is a
 * no-op. Errors as dm_copy_wait. */
dm_status dm_async_counts_wait(dm_async_counts *c, dm_backend *be);
/* Waits for a pending download, frees both sides, zeroes *c (safe on a zeroed struct). */
void dm_async_counts_free(dm_async_counts *c, dm_backend *be);

#endif
