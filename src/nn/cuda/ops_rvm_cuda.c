/* Shape checks and dispatch of the CUDA versions of the ops RVM added to the table
 * (global_avgpool2d, channel_affine, image_from_u8, guided_coeffs, matting_compose) and
 * permute. Checks mirror the CPU reference (src/nn/cpu/pool.c, channel_affine.c, image.c,
 * guided_filter.c, permute.c); kernels in pool.cu, elementwise.cu, layout.cu, guided_filter.cu.
 * Not yet run on a GPU. */
#include "cuda_common.h"

static dm_status enter(dm_backend *be) {
    CUDA_CHECK(cudaSetDevice(cuda_ctx_of(be)->device));
    return DM_OK;
}

dm_status global_avgpool2d_cuda(dm_backend *be, const dm_tensor *x, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 4, "global_avgpool2d", "x")) ||
        (st = cuda_check_float(y, 4, "global_avgpool2d", "y")))
        return st;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != 1 ||
        y->shape[3] != 1)
        return dm_error_set(DM_ERR_SHAPE, "global_avgpool2d: y must be (N, C, 1, 1) of x");
    const int64_t HW = x->shape[2] * x->shape[3];
    if (HW < 1) return dm_error_set(DM_ERR_SHAPE, "global_avgpool2d: empty input");
    if ((st = enter(be))) return st;
    return cuda_global_avgpool2d(cuda_ctx_of(be)->stream, x->data, x->dtype, y->data, y->dtype,
                                 x->shape[0] * x->shape[1], HW);
}

dm_status channel_affine_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                              const dm_tensor *shift, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 4, "channel_affine", "x")) ||
        (st = cuda_check_float(y, 4, "channel_affine", "y")) ||
        (scale && (st = cuda_check_float(scale, 0, "channel_affine", "scale"))) ||
        (shift && (st = cuda_check_float(shift, 0, "channel_affine", "shift"))))
        return st;
    const int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    if (dm_tensor_numel(y) != dm_tensor_numel(x) || y->shape[1] != C)
        return dm_error_set(DM_ERR_SHAPE, "channel_affine: x and y differ");
    const int64_t ns = scale ? dm_tensor_numel(scale) : 0;
    if (scale && ns != C && ns != N * C)
        return dm_error_set(DM_ERR_SHAPE, "channel_affine: scale has %lld values, expected C=%lld "
                            "or N*C=%lld", (long long)ns, (long long)C, (long long)(N * C));
    if (shift && dm_tensor_numel(shift) != C)
        return dm_error_set(DM_ERR_SHAPE, "channel_affine: shift has %lld values, expected %lld",
                            (long long)dm_tensor_numel(shift), (long long)C);
    if ((st = enter(be))) return st;
    return cuda_channel_affine(cuda_ctx_of(be)->stream, x->data, x->dtype,
                               scale ? scale->data : NULL, scale ? scale->dtype : DM_DTYPE_F32,
                               ns, shift ? shift->data : NULL,
                               shift ? shift->dtype : DM_DTYPE_F32, y->data, y->dtype, N, C, HW);
}

dm_status image_from_u8_cuda(dm_backend *be, const dm_tensor *rgb, dm_tensor *y) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    dm_status st;
    if ((st = cuda_check_float(y, 4, "image_from_u8", "y"))) return st;
    if (!rgb || !rgb->data || rgb->dtype != DM_DTYPE_U8 || rgb->ndim != 4)
        return dm_error_set(DM_ERR_DTYPE, "image_from_u8: rgb must be a u8 (N, H, W, 3) tensor");
    const int64_t N = rgb->shape[0], H = rgb->shape[1], W = rgb->shape[2];
    if (rgb->shape[3] != 3 || y->shape[0] != N || y->shape[1] != 3 || y->shape[2] != H ||
        y->shape[3] != W)
        return dm_error_set(DM_ERR_SHAPE, "image_from_u8: rgb (N, H, W, 3) and y (N, 3, H, W) "
                            "do not match");
    if ((st = enter(be))) return st;
    const void *dev = rgb->data;
    if (rgb->device == DM_DEVICE_CPU) { /* the table's contract: rgb is a CPU tensor */
        void *stage;
        if ((st = cuda_scratch(ctx, CUDA_SLOT_C, dm_tensor_nbytes(rgb), &stage))) return st;
        if ((st = cuda_upload(ctx, stage, rgb->data, dm_tensor_nbytes(rgb)))) return st;
        dev = stage;
    }
    return cuda_image_from_u8(ctx->stream, dev, y->data, y->dtype, N, H * W);
}

dm_status guided_coeffs_cuda(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                             dm_tensor *b) {
    dm_status st;
    if ((st = cuda_check_float(m, 4, "guided_coeffs", "m")) ||
        (st = cuda_check_float(a, 4, "guided_coeffs", "a")) ||
        (st = cuda_check_float(b, 4, "guided_coeffs", "b")))
        return st;
    const int64_t N = m->shape[0], K = a->shape[1], HW = m->shape[2] * m->shape[3];
    if (m->shape[1] != 4 * K || a->shape[0] != N || a->shape[2] != m->shape[2] ||
        a->shape[3] != m->shape[3] || dm_tensor_numel(b) != dm_tensor_numel(a))
        return dm_error_set(DM_ERR_SHAPE, "guided_coeffs: m must be (N, 4K, h, w) and a, b "
                            "(N, K, h, w)");
    if ((st = enter(be))) return st;
    return cuda_guided_coeffs(cuda_ctx_of(be)->stream, m->data, m->dtype, a->data, a->dtype,
                              b->data, b->dtype, N, K, HW, eps);
}

dm_status matting_compose_cuda(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                               const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha) {
    dm_status st;
    if ((st = cuda_check_float(b, 4, "matting_compose", "b")) ||
        (a && (st = cuda_check_float(a, 4, "matting_compose", "a"))) ||
        (st = cuda_check_float(src, 4, "matting_compose", "src")) ||
        (fgr && (st = cuda_check_float(fgr, 4, "matting_compose", "fgr"))) ||
        (st = cuda_check_float(pha, 4, "matting_compose", "pha")))
        return st;
    const int64_t N = src->shape[0];
    const int H = (int)src->shape[2], W = (int)src->shape[3];
    const int h = (int)b->shape[2], w = (int)b->shape[3];
    if (src->shape[1] != 3 || b->shape[0] != N || b->shape[1] != 4 ||
        (a && (a->shape[0] != N || a->shape[1] != 4 || a->shape[2] != h || a->shape[3] != w)) ||
        (fgr && (fgr->shape[0] != N || fgr->shape[1] != 3 || fgr->shape[2] != H ||
                 fgr->shape[3] != W)) ||
        pha->shape[0] != N || pha->shape[1] != 1 || pha->shape[2] != H || pha->shape[3] != W)
        return dm_error_set(DM_ERR_SHAPE, "matting_compose: expected a, b (N, 4, h, w), src and "
                            "fgr (N, 3, H, W), pha (N, 1, H, W)");
    if (!a && (h != H || w != W))
        return dm_error_set(DM_ERR_SHAPE, "matting_compose: without a, b must be at src size");
    if (h < 1 || w < 1 || H < 1 || W < 1)
        return dm_error_set(DM_ERR_SHAPE, "matting_compose: empty");
    if ((st = enter(be))) return st;
    return cuda_matting_compose(cuda_ctx_of(be)->stream, a ? a->data : NULL,
                                a ? a->dtype : DM_DTYPE_F32, b->data, b->dtype, src->data,
                                src->dtype, fgr ? fgr->data : NULL,
                                fgr ? fgr->dtype : DM_DTYPE_F32, pha->data, pha->dtype, N, H, W,
                                h, w);
}

dm_status permute_cuda(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y) {
    dm_status st;
    if ((st = cuda_check_float(x, 0, "permute", "x")) ||
        (st = cuda_check_float(y, x->ndim, "permute", "y")))
        return st;
    int seen[DM_MAX_DIMS] = {0};
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]++)
            return dm_error_set(DM_ERR_ARG, "permute: invalid permutation");
        if (y->shape[i] != x->shape[perm[i]])
            return dm_error_set(DM_ERR_SHAPE, "permute: y dim %d is %lld, expected %lld", i,
                                (long long)y->shape[i], (long long)x->shape[perm[i]]);
    }
    if (x->data == y->data) return dm_error_set(DM_ERR_ARG, "permute: y must not alias x");
    if ((st = enter(be))) return st;
    return cuda_permute(cuda_ctx_of(be)->stream, x->data, x->dtype, y->data, y->dtype, x->ndim,
                        x->shape, perm);
}
