/* The CPU reference backend: op table, allocation, copies. */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu_ops.h"

dm_status cpu_check_f32(const dm_tensor *t, int ndim, const char *op, const char *arg) {
    if (!t || !t->data) return dm_error_set(DM_ERR_ARG, "%s: %s is NULL", op, arg);
    if (t->device != DM_DEVICE_CPU)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: %s is not a CPU tensor", op, arg);
    if (t->dtype != DM_DTYPE_F32)
        return dm_error_set(DM_ERR_DTYPE, "%s: %s has dtype %s, expected f32", op, arg,
                            dm_dtype_name(t->dtype));
    if (ndim > 0 && t->ndim != ndim)
        return dm_error_set(DM_ERR_SHAPE, "%s: %s has %d dims, expected %d", op, arg, t->ndim,
                            ndim);
    return DM_OK;
}

static dm_status alloc_cpu(dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim,
                           const int64_t *shape) {
    (void)be;
    return dm_tensor_alloc(t, dtype, ndim, shape);
}

dm_status copy_cpu(dm_backend *be, const dm_tensor *src, dm_tensor *dst) {
    (void)be;
    int64_t n = dm_tensor_numel(src);
    if (n != dm_tensor_numel(dst)) return dm_error_set(DM_ERR_SHAPE, "copy: numel mismatch");
    if (src->device != DM_DEVICE_CPU || dst->device != DM_DEVICE_CPU)
        return dm_error_set(DM_ERR_UNSUPPORTED, "copy: CPU backend copies CPU tensors only");
    if (src->dtype == dst->dtype) {
        memmove(dst->data, src->data, dm_tensor_nbytes(src));
        return DM_OK;
    }
    /* dtype conversion through f32 */
    for (int64_t i = 0; i < n; i++) {
        float v;
        switch (src->dtype) {
        case DM_DTYPE_F32: v = ((const float *)src->data)[i]; break;
        case DM_DTYPE_F16: v = dm_f16_to_f32(((const uint16_t *)src->data)[i]); break;
        case DM_DTYPE_BF16: v = dm_bf16_to_f32(((const uint16_t *)src->data)[i]); break;
        case DM_DTYPE_U8: v = ((const uint8_t *)src->data)[i]; break;
        default: return dm_error_set(DM_ERR_DTYPE, "copy: unsupported source dtype");
        }
        switch (dst->dtype) {
        case DM_DTYPE_F32: ((float *)dst->data)[i] = v; break;
        case DM_DTYPE_F16: ((uint16_t *)dst->data)[i] = dm_f32_to_f16(v); break;
        case DM_DTYPE_BF16: ((uint16_t *)dst->data)[i] = dm_f32_to_bf16(v); break;
        default: return dm_error_set(DM_ERR_DTYPE, "copy: unsupported target dtype");
        }
    }
    return DM_OK;
}

static const dm_backend_ops cpu_ops = {
    .name = "cpu",
    .conv2d = conv2d_cpu,
    .conv_transpose2d = conv_transpose2d_cpu,
    .linear = linear_cpu,
    .layernorm = layernorm_cpu,
    .groupnorm = groupnorm_cpu,
    .activation = activation_cpu,
    .binary = binary_cpu,
    .attention = attention_cpu,
    .resize = resize_cpu,
    .avgpool2d = avgpool2d_cpu,
    .global_avgpool2d = global_avgpool2d_cpu,
    .channel_affine = channel_affine_cpu,
    .image_from_u8 = image_from_u8_cpu,
    .guided_coeffs = guided_coeffs_cpu,
    .matting_compose = matting_compose_cpu,
    .permute = permute_cpu,
    .concat = concat_cpu,
    .copy = copy_cpu,
    .alloc = alloc_cpu,
    .maxpool2d = maxpool2d_cpu,
    .attention_qkv = attention_qkv_cpu,
    .image_cubic_normalize = image_cubic_normalize_cpu,
    .count_nonfinite = count_nonfinite_cpu,
    .synchronize = NULL,
    .destroy = NULL,
};

dm_backend *dm_backend_cpu_create(int threads) {
    dm_backend *be = calloc(1, sizeof *be);
    if (!be) return NULL;
    be->ops = &cpu_ops;
    be->device = DM_DEVICE_CPU;
    be->precision = DM_DTYPE_F32;
    be->storage = DM_DTYPE_F32;
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
    be->threads = omp_get_max_threads();
#else
    be->threads = 1;
#endif
    if (threads > 0) openblas_set_num_threads(threads);
    return be;
}
