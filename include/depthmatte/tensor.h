/* depthmatte — the engine tensor.
 *
 * A tensor is a dtype, up to DM_MAX_DIMS dimensions (row-major, C order, no strides), a device
 * and a data pointer. Layouts are named in every comment that uses one: (N, C, H, W) NCHW for
 * images and feature maps, (N, T, C) for token sequences, (B, T, C, H, W) for video windows.
 * A tensor may own its buffer (dm_tensor_alloc) or view foreign memory (dm_tensor_view).
 * dm_tensor_reshape() changes the shape in place without allocating, as long as the new size
 * fits the capacity: models size buffers once and reshape them in the frame loop.
 */
#ifndef DEPTHMATTE_TENSOR_H
#define DEPTHMATTE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "depthmatte/status.h"

#define DM_MAX_DIMS 5

typedef enum dm_dtype {
    DM_DTYPE_F32 = 0,
    DM_DTYPE_F16,
    DM_DTYPE_BF16,
    DM_DTYPE_U8,
    DM_DTYPE_I64,
} dm_dtype;

typedef enum dm_device {
    DM_DEVICE_CPU = 0,
    DM_DEVICE_CUDA,
    DM_DEVICE_EMU, /* the emulated device backend (backend_emu.h): host memory, device rules */
} dm_device;

typedef struct dm_tensor {
    dm_dtype dtype;
    dm_device device;
    int ndim;
    int64_t shape[DM_MAX_DIMS];
    void *data;
    size_t capacity; /* bytes available at data */
    int owns_data;   /* 1: dm_tensor_free releases data */
} dm_tensor;

/* Size of one element of `dtype` in bytes. */
size_t dm_dtype_size(dm_dtype dtype);

/* Short name ("f32", "f16", "bf16", "u8", "i64"). */
const char *dm_dtype_name(dm_dtype dtype);

/* Number of elements (product of shape; 1 for ndim 0). */
int64_t dm_tensor_numel(const dm_tensor *t);

/* Bytes of the current shape. */
size_t dm_tensor_nbytes(const dm_tensor *t);

/* Allocates a zero-filled CPU tensor (64-byte aligned). Returns DM_ERR_NOMEM or DM_ERR_ARG
 * (ndim out of range, negative dimension). */
dm_status dm_tensor_alloc(dm_tensor *t, dm_dtype dtype, int ndim, const int64_t *shape);

/* Makes `t` a non-owning view of `data` (CPU unless device is set afterwards). */
void dm_tensor_view(dm_tensor *t, void *data, dm_dtype dtype, int ndim, const int64_t *shape);

/* Changes the shape without allocating. DM_ERR_SHAPE if it does not fit the capacity. */
dm_status dm_tensor_reshape(dm_tensor *t, int ndim, const int64_t *shape);

/* Releases an owned buffer of any device (host memory, or CUDA device memory through the
 * CUDA runtime) and zeroes the struct. Safe on a zeroed struct and on views. */
void dm_tensor_free(dm_tensor *t);

/* Non-owning view of `ndim`/`shape` elements starting `offset` elements (not bytes) into
 * base's buffer, with base's dtype and device. When the view does not fit base's capacity (or
 * base has no data) the view's data is NULL, so the next op fails cleanly instead of
 * overrunning. E.g. the k slice of a (3, B, heads, T, 64) qkv buffer. */
dm_tensor dm_tensor_sub(const dm_tensor *base, int64_t offset, int ndim, const int64_t *shape);

/* Formats the shape as "[1, 3, 140, 140]" into buf (always terminated). Returns buf. */
char *dm_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

/* Convenience: typed data pointer of an F32 tensor. */
static inline float *dm_f32(const dm_tensor *t) {
    return (float *)t->data;
}

/* IEEE half <-> float conversions (round to nearest even); bf16 likewise. */
float dm_f16_to_f32(uint16_t h);
uint16_t dm_f32_to_f16(float f);
float dm_bf16_to_f32(uint16_t h);
uint16_t dm_f32_to_bf16(float f);

#endif
