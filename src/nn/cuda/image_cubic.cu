/* image_cubic_normalize on the GPU (backend.h; CPU reference src/nn/cpu/image_cubic.c): u8 RGB
 * frames (N, H, W, 3) on the device -> / 255 -> OpenCV-compatible bicubic resize (cv2.resize
 * INTER_CUBIC) -> (v - mean) / std -> y (N, 3, h, w) in any float dtype.
 *
 * One thread per output pixel (n, dy, dx) computes its three channels: for each of the 4
 * source rows it forms the horizontal 4-tap sum the CPU's first pass stores, then the vertical
 * 4-tap sum, in the CPU's order. Every product, sum and division is an explicitly rounded
 * intrinsic (__dmul_rn, __fadd_rn, ...), which nvcc never contracts into an FMA, and the Keys
 * weights and source coordinates are computed with the CPU's float/double operations, so that
 * the result is meant to be bitwise the CPU reference's in f32 output (both arithmetics:
 * DM_CUBIC_F64 of DA-V2, DM_CUBIC_F32 of VDA). The u8 -> [0, 1] values come from a 256-entry
 * table per block (v / 255 in the arithmetic's precision). The source rows are recomputed
 * per output row (4 rows x 4 taps instead of a stored pass): at most 48 loads per pixel, from
 * L1/L2 since neighbouring threads share them. NOT YET RUN ON A GPU (tests/gpu, case table
 * image_cubic_normalize). */
#include "dtype.cuh"

__device__ __forceinline__ void ic_weights(float x, float w[4]) {
    const float A = -0.75f; /* the constants 5A, 8A, 4A, A+2, A+3 are exact in float */
    const float x1 = __fadd_rn(x, 1.f), y = __fsub_rn(1.f, x);
    float t = __fsub_rn(__fmul_rn(A, x1), 5.f * A);
    t = __fadd_rn(__fmul_rn(t, x1), 8.f * A);
    w[0] = __fsub_rn(__fmul_rn(t, x1), 4.f * A);
    t = __fsub_rn(__fmul_rn(A + 2.f, x), A + 3.f);
    w[1] = __fadd_rn(__fmul_rn(__fmul_rn(t, x), x), 1.f);
    t = __fsub_rn(__fmul_rn(A + 2.f, y), A + 3.f);
    w[2] = __fadd_rn(__fmul_rn(__fmul_rn(t, y), y), 1.f);
    w[3] = __fsub_rn(__fsub_rn(__fsub_rn(1.f, w[0]), w[1]), w[2]);
}

/* Clamped source indices and weights of destination index d (axis_taps of the CPU). */
__device__ __forceinline__ void ic_taps(int d, double scale, int in, int o[4], float w[4]) {
    float f = __double2float_rn(__dsub_rn(__dmul_rn(__dadd_rn((double)d, 0.5), scale), 0.5));
    const int s = (int)floorf(f);
    f = __fsub_rn(f, (float)s);
    for (int k = 0; k < 4; k++)
        o[k] = min(max(s - 1 + k, 0), in - 1);
    ic_weights(f, w);
}

__global__ void image_cubic_kernel(const unsigned char *__restrict__ rgb, void *y, int yt, int sh,
                                   int sw, int dh, int dw, double scale_y, double scale_x, int f64,
                                   double m0, double m1, double m2, double s0, double s1,
                                   double s2) {
    __shared__ double lut64[256];
    __shared__ float lut32[256];
    const int tid = threadIdx.y * blockDim.x + threadIdx.x;
    for (int i = tid; i < 256; i += blockDim.x * blockDim.y) {
        lut64[i] = __ddiv_rn((double)i, 255.0); /* rgb / 255.0 (double) */
        lut32[i] = __fdiv_rn((float)i, 255.0f); /* (float)rgb / 255.0f */
    }
    __syncthreads();
    const int dx = blockIdx.x * blockDim.x + threadIdx.x,
              dy = blockIdx.y * blockDim.y + threadIdx.y;
    if (dx >= dw || dy >= dh) return;
    const int64_t n = blockIdx.z;
    const unsigned char *img = rgb + n * 3 * (int64_t)sh * sw;
    const double mean[3] = {m0, m1, m2}, stdv[3] = {s0, s1, s2};
    const int64_t plane = (int64_t)dh * dw, obase = n * 3 * plane + (int64_t)dy * dw + dx;
    if (sh == dh && sw == dw) { /* cv::resize copies when the size is unchanged */
        const unsigned char *px = img + ((int64_t)dy * sw + dx) * 3;
        for (int c = 0; c < 3; c++) {
            const double v = f64 ? lut64[px[c]] : (double)lut32[px[c]];
            st_from_f32(y, yt, obase + c * plane,
                        __double2float_rn(__ddiv_rn(__dsub_rn(v, mean[c]), stdv[c])));
        }
        return;
    }
    int xo[4], yo[4];
    float xw[4], yw[4];
    ic_taps(dx, scale_x, sw, xo, xw);
    ic_taps(dy, scale_y, sh, yo, yw);
    for (int c = 0; c < 3; c++) {
        double out;
        if (f64) {
            double acc = 0.0;
            for (int k = 0; k < 4; k++) {
                const unsigned char *row = img + (int64_t)yo[k] * sw * 3 + c;
                double t = __dmul_rn(lut64[row[xo[0] * 3]], (double)xw[0]);
                t = __dadd_rn(t, __dmul_rn(lut64[row[xo[1] * 3]], (double)xw[1]));
                t = __dadd_rn(t, __dmul_rn(lut64[row[xo[2] * 3]], (double)xw[2]));
                t = __dadd_rn(t, __dmul_rn(lut64[row[xo[3] * 3]], (double)xw[3]));
                const double p = __dmul_rn(t, (double)yw[k]);
                acc = k ? __dadd_rn(acc, p) : p;
            }
            out = acc;
        } else {
            float acc = 0.f;
            for (int k = 0; k < 4; k++) {
                const unsigned char *row = img + (int64_t)yo[k] * sw * 3 + c;
                float t = __fmul_rn(lut32[row[xo[0] * 3]], xw[0]);
                t = __fadd_rn(t, __fmul_rn(lut32[row[xo[1] * 3]], xw[1]));
                t = __fadd_rn(t, __fmul_rn(lut32[row[xo[2] * 3]], xw[2]));
                t = __fadd_rn(t, __fmul_rn(lut32[row[xo[3] * 3]], xw[3]));
                const float p = __fmul_rn(yw[k], t);
                acc = k ? __fadd_rn(acc, p) : p;
            }
            out = (double)acc;
        }
        st_from_f32(y, yt, obase + c * plane,
                    __double2float_rn(__ddiv_rn(__dsub_rn(out, mean[c]), stdv[c])));
    }
}

extern "C" dm_status cuda_image_cubic_normalize(cudaStream_t s, const unsigned char *rgb, void *y,
                                                dm_dtype yt, int64_t N, int sh, int sw, int dh,
                                                int dw, int f64, const double mean[3],
                                                const double stdv[3]) {
    if (N <= 0 || dh <= 0 || dw <= 0) return DM_OK;
    if (N > 65535)
        return dm_error_set(DM_ERR_SHAPE,
                            "image_cubic_normalize: %lld frames in one "
                            "call (at most 65535)",
                            (long long)N);
    /* the CPU's axis scale, computed on the host in the same double arithmetic */
    const double scale_x = 1. / ((double)dw / sw), scale_y = 1. / ((double)dh / sh);
    const dim3 block(32, 8),
        grid((unsigned)((dw + 31) / 32), (unsigned)((dh + 7) / 8), (unsigned)N);
    image_cubic_kernel<<<grid, block, 0, s>>>(rgb, y, yt, sh, sw, dh, dw, scale_y, scale_x, f64,
                                              mean[0], mean[1], mean[2], stdv[0], stdv[1], stdv[2]);
    CUDA_CHECK_LAUNCH();
    return DM_OK;
}
