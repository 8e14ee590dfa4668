/* Layout kernels of the CUDA backend: permute (torch.Tensor.permute(...).contiguous(), up to 5
 * dims) and image_from_u8 (interleaved u8 RGB (N, H, W, 3) -> planar (N, 3, H, W) = v / 255, a
 * true division as PyTorch's `float() / 255`). Semantics of src/nn/cpu/permute.c and image.c. */
#include "dtype.cuh"

/* Output index -> input offset: ys = output dims padded to 5, st = input stride of each. */
struct permute_map {
    long long ys[5], st[5];
};

/* 2-D grid: blockIdx.y walks the output rows (all dims but the last, grid-stride), x the last
 * dim, so the innermost coordinate needs no division; index type I is int below 2^31
 * elements. */
template <typename I>
__global__ void permute_kernel(const void *x, int xt, void *y, int yt, I rows, I inner,
                               permute_map m) {
    const I c = blockIdx.x * (I)blockDim.x + threadIdx.x;
    if (c >= inner) return;
    for (I r = blockIdx.y; r < rows; r += gridDim.y) {
        I rem = r, off = c * (I)m.st[4];
        for (int d = 3; d >= 0; d--) {
            const I yd = (I)m.ys[d];
            off += (rem % yd) * (I)m.st[d];
            rem /= yd;
        }
        st_from_f32(y, yt, r * inner + c, ld_as_f32(x, xt, off));
    }
}

/* One thread per pixel of image blockIdx.y: its 3 interleaved bytes read together, the 3
 * planes written coalesced; I is int when the whole batch fits 32-bit indices. */
template <typename I>
__global__ void image_from_u8_kernel(const unsigned char *rgb, void *y, int yt, I HW) {
    const I img = (I)blockIdx.y;
    for (I p = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; p < HW;
         p += (I)gridDim.x * (I)blockDim.x) {
        const unsigned char *px = rgb + (img * HW + p) * 3;
        const I o = img * 3 * HW + p;
        st_from_f32(y, yt, o, (float)px[0] / 255.f);
        st_from_f32(y, yt, o + HW, (float)px[1] / 255.f);
        st_from_f32(y, yt, o + 2 * HW, (float)px[2] / 255.f);
    }
}

extern "C" dm_status cuda_permute(cudaStream_t s, const void *x, dm_dtype xt, void *y,
                                  dm_dtype yt, int ndim, const int64_t *xshape, const int *perm) {
    permute_map m;
    int64_t xs[5], stride = 1, n = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        xs[i] = stride;
        stride *= xshape[i];
    }
    const int pad = 5 - ndim;
    for (int i = 0; i < 5; i++) {
        m.ys[i] = 1;
        m.st[i] = 0;
    }
    for (int i = 0; i < ndim; i++) {
        m.ys[pad + i] = xshape[perm[i]];
        m.st[pad + i] = xs[perm[i]];
        n *= xshape[perm[i]];
    }
    if (n <= 0) return DM_OK;
    const int64_t inner = m.ys[4], rows = n / inner;
    const int64_t gx = (inner + 255) / 256;
    if (gx > 0x7fffffffLL) return dm_error_set(DM_ERR_SHAPE, "permute: last dim too large");
    const dim3 grid((unsigned)gx, (unsigned)(rows < 65535 ? rows : 65535));
    if (fits32(n))
        permute_kernel<int><<<grid, 256, 0, s>>>(x, xt, y, yt, (int)rows, (int)inner, m);
    else
        permute_kernel<int64_t><<<grid, 256, 0, s>>>(x, xt, y, yt, rows, inner, m);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}

extern "C" dm_status cuda_image_from_u8(cudaStream_t s, const unsigned char *rgb, void *y,
                                        dm_dtype yt, int64_t N, int64_t HW) {
    if (N * HW <= 0) return DM_OK;
    if (N > 65535) return dm_error_set(DM_ERR_SHAPE, "image_from_u8: %lld images (at most 65535)",
                                       (long long)N);
    const dim3 grid(grid_for(HW, 256), (unsigned)N);
    if (fits32(N * HW * 3))
        image_from_u8_kernel<int><<<grid, 256, 0, s>>>(rgb, y, yt, (int)HW);
    else
        image_from_u8_kernel<int64_t><<<grid, 256, 0, s>>>(rgb, y, yt, HW);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}
