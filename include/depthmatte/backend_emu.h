/* depthmatte — the emulated device backend.
 *
 * The CPU reference ops behind a device interface: its tensors live in host memory but are
 * marked DM_DEVICE_EMU, and its ops refuse host (DM_DEVICE_CPU) tensors exactly as the CUDA
 * backend refuses them (DM_ERR_UNSUPPORTED), while dm_copy moves data between host tensors and
 * its own. So every path a model or the pipeline takes on a GPU (weights uploaded at load,
 * inputs uploaded, outputs downloaded, device-side views) runs, and is tested, on a machine
 * without a GPU; a forgotten upload or download fails here as it would on the GPU.
 *
 * Precision and storage, as on CUDA: with `precision` DM_DTYPE_F16 or DM_DTYPE_BF16 the storage
 * dtype (dm_backend_storage_dtype) is that precision and such tensors really hold 2-byte values;
 * a tensor allocated in f32 holds f32 (mixed storage: models keep residual streams in f32,
 * dm_backend_residual_dtype). The CPU ops compute in f32: f16/bf16 arguments are widened into
 * temporary f32 copies and outputs narrowed back (round to nearest even) after the op, which is
 * what storing a result in that dtype does. Operands of the ops the CUDA backend runs in its
 * compute dtype (linear, conv2d, conv_transpose2d, attention, attention_qkv) stored in f32 are
 * rounded to the precision first, and the convolutions' outputs are rounded to it (CUDA writes
 * them through a compute-dtype buffer); accumulation is f32 throughout. Uploads into f16/bf16
 * tensors round. So the numerics of a reduced-precision device, for testing tolerances and the
 * pipeline's reduced-precision paths (non-finite guard, float32 recompute). Not emulated:
 * roundings inside one op (the tensor-core attention's f16 probabilities). Its supports
 * query is the CUDA backend's (dm_cuda_supports_op: dtypes and shape limits), so an op a GPU
 * would refuse is refused here with the same line.
 *
 * Graphs (depthmatte/graph.h), emulated faithfully: between graph_begin and graph_end every
 * op is checked (device tensors) and RECORDED, not run, its tensor descriptors and parameters
 * copied by value, as a CUDA graph bakes in the pointers and parameters it was captured with;
 * an allocation, a host<->device copy (image_from_u8 included), a synchronisation or a launch
 * inside the capture is refused (DM_ERR_BACKEND) and spoils it, as on CUDA; a launch replays
 * the record through the same op entries (rounding and faults included). So a forward that
 * changes a host-side value between frames (a pointer, an offset, a parameter) gives other
 * numbers when replayed, here as on a GPU. Not emulated: scratch buffers that would have to
 * grow inside a capture (the CPU ops allocate their workspace at replay).
 *
 * Asynchronous downloads (depthmatte/copy_async.h), emulated faithfully: dm_copy_async takes
 * the value src has at the call (the work queued before it is done, as stream order gives a
 * device's copy; later ops may overwrite src) and fills the host destination with 0xFF bytes (a
 * NaN in every float dtype) until dm_copy_wait delivers the value; the wait fails (DM_ERR_ARG)
 * when the destination was written meanwhile, and a second download into a destination still
 * pending is refused. So a read of the rows before the wait gives NaN (and a test that compares
 * them fails), and a reuse of the host buffer before the wait is an error. dm_synchronize does
 * not deliver a download: only its wait does.
 *
 * Fault injection, for tests that must prove a wrong device is caught (selftest,
 * runtime.verify, the non-finite guard): `perturb` = "OP" (an op name of dm_op_name) makes that
 * op's (first) output wrong by 5 % of its largest magnitude on every third element;
 * "OP:nan" writes one NaN into that op's output when the precision is f16/bf16 (an overflow of
 * the reduced precision: a float32 recompute is clean); "OP:nan-always" does so in every
 * precision. NULL or "" = no fault.
 */
#ifndef DEPTHMATTE_BACKEND_EMU_H
#define DEPTHMATTE_BACKEND_EMU_H

#include "depthmatte/backend.h"

/* Creates the emulated device backend with `threads` CPU threads (0: OpenMP default),
 * precision DM_DTYPE_F32 / _F16 / _BF16, and an optional fault (see above). On success *out
 * is the backend (dm_backend_destroy). Errors: DM_ERR_ARG (bad precision, unknown op name in
 * `perturb`), DM_ERR_NOMEM. */
dm_status dm_backend_emu_create(int threads, dm_dtype precision, const char *perturb,
                                dm_backend **out);

/* Memory allocated on the emulated device `be` since its creation (dm_alloc: weights uploaded at
 * load, model contexts), in bytes: *host_bytes as held here (64-byte rounding),
 * *device_bytes the tensors' own bytes (2 per f16/bf16 element, 4 per f32 one: what the CUDA
 * backend allocates for them). Frees are not
 * subtracted, so both bound the device's peak memory in use from above (models allocate once,
 * at init). Op workspaces (im2col, attention scores) are the CPU reference's and not counted.
 * Zeros for any other backend. */
void dm_backend_emu_memory(const dm_backend *be, size_t *host_bytes, size_t *device_bytes);

/* Number of device allocations (alloc op calls, i.e. dm_alloc / dm_tensor_upload) made on an
 * emulated backend since its creation; -1 for any other backend. Tests use it to show that a
 * model's frame loop allocates nothing once its context is sized (every buffer from *_ctx_init,
 * the same code path as on CUDA, where an allocation would also break CUDA Graph capture). */
int64_t dm_backend_emu_alloc_count(const dm_backend *be);

/* Ops called on an emulated backend since its creation: each op run eagerly, recorded into a
 * graph or replayed from one counts once (device<->device and host<->device copies included,
 * allocations not); -1 for any other backend. What one forward costs in kernel launches on a
 * device without graphs (docs/gpu.md "CUDA Graphs" counts them per model). */
int64_t dm_backend_emu_op_count(const dm_backend *be);

/* Graph launches (dm_graph_launch) on an emulated backend since its creation; -1 for another
 * backend. */
int64_t dm_backend_emu_launch_count(const dm_backend *be);

/* What the asynchronous downloads of an emulated backend did since its creation (zeros for
 * another backend): tests use it to show that downloads were queued and waited for where
 * intended, and that a forward ran while one was still pending (the overlap a device gets). */
typedef struct dm_emu_copy_stats {
    int64_t enqueued;       /* dm_copy_async calls */
    int64_t waits;          /* dm_copy_wait calls that delivered at least one download */
    int64_t ops_overlapped; /* ops (as dm_backend_emu_op_count) called while a download was
                               pending: work a device runs beside the copy */
    int64_t early_writes;   /* host destinations found written before their wait */
    int pending;            /* downloads queued and not yet waited for, now */
    int max_pending;        /* the most pending at once */
} dm_emu_copy_stats;

void dm_backend_emu_copy_stats(const dm_backend *be, dm_emu_copy_stats *out);

#endif
