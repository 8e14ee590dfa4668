/* Tensor bookkeeping and scalar dtype conversions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/tensor.h"

size_t dm_dtype_size(dm_dtype dtype) {
    switch (dtype) {
    case DM_DTYPE_F32: return 4;
    case DM_DTYPE_F16:
    case DM_DTYPE_BF16: return 2;
    case DM_DTYPE_U8: return 1;
    case DM_DTYPE_I64: return 8;
    }
    return 0;
}

const char *dm_dtype_name(dm_dtype dtype) {
    switch (dtype) {
    case DM_DTYPE_F32: return "f32";
    case DM_DTYPE_F16: return "f16";
    case DM_DTYPE_BF16: return "bf16";
    case DM_DTYPE_U8: return "u8";
    case DM_DTYPE_I64: return "i64";
    }
    return "?";
}

int64_t dm_tensor_numel(const dm_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t dm_tensor_nbytes(const dm_tensor *t) {
    return (size_t)dm_tensor_numel(t) * dm_dtype_size(t->dtype);
}

static dm_status check_shape(int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > DM_MAX_DIMS)
        return dm_error_set(DM_ERR_ARG, "tensor: ndim %d out of range 0..%d", ndim, DM_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return dm_error_set(DM_ERR_ARG, "tensor: negative dimension");
    return DM_OK;
}

dm_status dm_tensor_alloc(dm_tensor *t, dm_dtype dtype, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    dm_status st = check_shape(ndim, shape);
    if (st) return st;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    size_t bytes = dm_tensor_nbytes(t);
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    t->data = aligned_alloc(64, rounded);
    if (!t->data) return dm_error_set(DM_ERR_NOMEM, "tensor: cannot allocate %zu bytes", bytes);
    memset(t->data, 0, rounded);
    t->capacity = rounded;
    t->owns_data = 1;
    t->device = DM_DEVICE_CPU;
    return DM_OK;
}

void dm_tensor_view(dm_tensor *t, void *data, dm_dtype dtype, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim && i < DM_MAX_DIMS; i++) t->shape[i] = shape[i];
    t->data = data;
    t->capacity = dm_tensor_nbytes(t);
}

dm_status dm_tensor_reshape(dm_tensor *t, int ndim, const int64_t *shape) {
    dm_status st = check_shape(ndim, shape);
    if (st) return st;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if ((size_t)n * dm_dtype_size(t->dtype) > t->capacity) {
        char a[96];
        return dm_error_set(DM_ERR_SHAPE, "tensor: reshape to %s exceeds capacity %zu bytes",
                            dm_shape_str(ndim, shape, a, sizeof a), t->capacity);
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return DM_OK;
}

void dm_tensor_free(dm_tensor *t) {
    if (t->owns_data && t->data) {
        if (t->device == DM_DEVICE_CUDA)
            dm_cuda_buffer_free(t->data);
        else /* CPU and the emulated device keep host memory */
            free(t->data);
    }
    memset(t, 0, sizeof *t);
}

dm_tensor dm_tensor_sub(const dm_tensor *base, int64_t offset, int ndim, const int64_t *shape) {
    dm_tensor v;
    memset(&v, 0, sizeof v);
    v.dtype = base->dtype;
    v.device = base->device;
    v.ndim = ndim < 0 ? 0 : (ndim > DM_MAX_DIMS ? DM_MAX_DIMS : ndim);
    int64_t n = 1;
    for (int i = 0; i < v.ndim; i++) {
        v.shape[i] = shape[i];
        n *= shape[i] < 0 ? 0 : shape[i];
    }
    const size_t es = dm_dtype_size(base->dtype);
    const size_t end = ((size_t)(offset < 0 ? 0 : offset) + (size_t)n) * es;
    if (base->data && offset >= 0 && end <= base->capacity) {
        v.data = (char *)base->data + (size_t)offset * es;
        v.capacity = (size_t)n * es;
    }
    return v;
}

char *dm_shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "[");
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    snprintf(buf + n, n < size ? size - n : 0, "]");
    return buf;
}

float dm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t dm_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    uint32_t man = x & 0x7fffff;
    if (exp == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exponent */
    return (uint16_t)half;
}

float dm_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t dm_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
