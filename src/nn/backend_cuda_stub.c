/* Stubs of depthmatte/backend_cuda.h for builds without CUDA (DM_HAVE_CUDA undefined): every
 * entry point reports DM_ERR_UNSUPPORTED, so callers (CLI, pipeline, tests) link unchanged and
 * fall back to the CPU backend. The real implementation is src/nn/cuda/. */
#ifndef DM_HAVE_CUDA

#include <string.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/tensor.h"

static dm_status no_cuda(void) {
    return dm_error_set(DM_ERR_UNSUPPORTED, "cuda: this build has no CUDA backend "
                                            "(configure with -DDM_WITH_CUDA=ON)");
}

dm_status dm_backend_cuda_create(int device_index, dm_dtype precision, dm_backend **out) {
    (void)device_index;
    (void)precision;
    if (out) *out = NULL;
    return no_cuda();
}

dm_dtype dm_backend_cuda_precision(const dm_backend *be) {
    (void)be;
    return DM_DTYPE_F32;
}

void *dm_backend_cuda_stream(const dm_backend *be) {
    (void)be;
    return NULL;
}

dm_status dm_cuda_backend_device(const dm_backend *be, int *device) {
    (void)be;
    if (device) *device = -1;
    return no_cuda();
}

dm_status dm_cuda_device_count(int *count) {
    if (count) *count = 0;
    return no_cuda();
}

dm_status dm_cuda_device_name(int device_index, char *buf, size_t size) {
    (void)device_index;
    if (buf && size) buf[0] = '\0';
    return no_cuda();
}

dm_status dm_cuda_device_uuid(int device_index, char *buf, size_t size) {
    (void)device_index;
    if (buf && size) buf[0] = '\0';
    return no_cuda();
}

dm_status dm_cuda_device_memory(int device_index, size_t *free_bytes, size_t *total_bytes) {
    (void)device_index;
    if (free_bytes) *free_bytes = 0;
    if (total_bytes) *total_bytes = 0;
    return no_cuda();
}

dm_status dm_cuda_alloc_stats(int device_index, dm_cuda_alloc_counts *out) {
    (void)device_index;
    if (out) memset(out, 0, sizeof *out);
    return no_cuda();
}

void dm_cuda_tensor_free(dm_tensor *t) {
    if (t) dm_tensor_free(t); /* only CPU tensors can exist without CUDA */
}

dm_status dm_cuda_backend_bind_thread(const dm_backend *be) {
    (void)be;
    return DM_OK; /* only a CUDA backend has a per-thread device, and this build has none */
}

dm_status dm_cuda_host_alloc(const dm_backend *be, size_t bytes, void **out) {
    (void)be;
    (void)bytes;
    if (out) *out = NULL;
    return no_cuda();
}

void dm_cuda_host_free(void *p) {
    (void)p;
}

void dm_cuda_buffer_free(void *data) {
    (void)data; /* no CUDA buffer can exist without CUDA */
}

dm_status dm_cuda_count_nonfinite(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                                  int accumulate) {
    (void)be;
    (void)t;
    (void)count;
    (void)accumulate;
    return no_cuda();
}

dm_status dm_cuda_debug_grow_scratch(dm_backend *be, size_t bytes) {
    (void)be;
    (void)bytes;
    return no_cuda();
}

dm_status dm_cuda_softmax(dm_backend *be, const dm_tensor *x, dm_tensor *y) {
    (void)be;
    (void)x;
    (void)y;
    return no_cuda();
}

dm_status dm_cuda_attention_qkv(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                                dm_tensor *o) {
    (void)be;
    (void)qkv;
    (void)heads;
    (void)scale;
    (void)o;
    return no_cuda();
}

dm_status dm_cuda_conv_fused_stats(dm_backend *be, dm_cuda_fused_stats *out) {
    (void)be;
    if (out) memset(out, 0, sizeof *out);
    return no_cuda();
}

#else
/* ISO C forbids an empty translation unit. */
typedef int dm_backend_cuda_stub_unused;
#endif
