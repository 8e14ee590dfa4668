/* maxpool2d (torch.nn.MaxPool2d(k, s, padding, ceil_mode=False), added for the RVM ResNet-50
 * stem) against a naive loop written independently here: the input is copied into an
 * explicitly -inf-padded plane and every window is scanned in full. Covers the ResNet case
 * (3x3 s2 p1) on even and odd sizes, other kernels / strides / paddings, NaN propagation
 * (a NaN anywhere in the window gives NaN, as aten's max_pool2d) and argument / shape errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "depthmatte/backend.h"
#include "tensor_compare.h"

static unsigned rng = 4242u;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / 16777216.f * 2.f - 1.f;
}

/* Reference: pad with -inf, then plain max over each full k x k window. */
static void maxpool_ref(const float *x, int NC, int H, int W, int k, int s, int p, float *y, int Ho,
                        int Wo) {
    const int Hp = H + 2 * p, Wp = W + 2 * p;
    float *pad = malloc(sizeof(float) * (size_t)Hp * Wp);
    for (int nc = 0; nc < NC; nc++) {
        for (int i = 0; i < Hp * Wp; i++)
            pad[i] = -INFINITY;
        for (int iy = 0; iy < H; iy++)
            for (int ix = 0; ix < W; ix++)
                pad[(iy + p) * Wp + ix + p] = x[((size_t)nc * H + iy) * W + ix];
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                float m = -INFINITY;
                int nan = 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        float v = pad[(oy * s + ky) * Wp + ox * s + kx];
                        nan |= isnan(v);
                        m = v > m ? v : m;
                    }
                y[((size_t)nc * Ho + oy) * Wo + ox] = nan ? NAN : m;
            }
    }
    free(pad);
}

static void test_maxpool(dm_backend *be, int N, int C, int H, int W, int k, int s, int p,
                         int n_nan) {
    const int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    const int64_t xs[4] = {N, C, H, W}, ys[4] = {N, C, Ho, Wo};
    dm_tensor x, y;
    CHECK_OK(dm_tensor_alloc(&x, DM_DTYPE_F32, 4, xs));
    CHECK_OK(dm_tensor_alloc(&y, DM_DTYPE_F32, 4, ys));
    const int64_t nx = dm_tensor_numel(&x), ny = dm_tensor_numel(&y);
    for (int64_t i = 0; i < nx; i++)
        dm_f32(&x)[i] = frand();
    for (int i = 0; i < n_nan; i++)
        dm_f32(&x)[(int64_t)((frand() * 0.5f + 0.5f) * (float)(nx - 1))] = NAN;
    float *ref = malloc(sizeof(float) * (size_t)ny);
    maxpool_ref(dm_f32(&x), N * C, H, W, k, s, p, ref, Ho, Wo);
    CHECK_OK(dm_maxpool2d(be, &x, k, s, p, &y));
    int nan_ok = 1, n_ref_nan = 0;
    for (int64_t i = 0; i < ny; i++) {
        n_ref_nan += isnan(ref[i]);
        if (isnan(ref[i]) != isnan(dm_f32(&y)[i])) nan_ok = 0;
        if (isnan(ref[i])) ref[i] = dm_f32(&y)[i] = 0.f; /* compare the finite rest */
    }
    char name[128];
    snprintf(name, sizeof name, "maxpool2d %dx%dx%dx%d k%d s%d p%d -> %dx%d (%d NaN windows)", N, C,
             H, W, k, s, p, Ho, Wo, n_ref_nan);
    CHECK(nan_ok);
    if (n_nan) CHECK(n_ref_nan > 0);
    /* max is exact: bitwise equality */
    CHECK(tc_compare(name, dm_f32(&y), ref, (size_t)ny, 0.0, NULL));
    /* wrong output shape (one row too many, as ceil_mode=True could give) */
    const int64_t bad[4] = {N, C, Ho + 1, Wo};
    dm_tensor yb;
    CHECK_OK(dm_tensor_alloc(&yb, DM_DTYPE_F32, 4, bad));
    CHECK(dm_maxpool2d(be, &x, k, s, p, &yb) == DM_ERR_SHAPE);
    dm_tensor_free(&yb);
    free(ref);
    dm_tensor_free(&x);
    dm_tensor_free(&y);
}

int main(void) {
    dm_backend *be = dm_backend_cpu_create(2);
    /* ResNet-50 stem pool: 3x3 s2 p1 (72x128 -> 36x64 at the golden's 1/2 level; odd 9x5) */
    test_maxpool(be, 1, 4, 36, 64, 3, 2, 1, 0);
    test_maxpool(be, 1, 3, 9, 5, 3, 2, 1, 0);
    test_maxpool(be, 2, 3, 1, 1, 3, 2, 1, 0);
    test_maxpool(be, 1, 2, 2, 3, 3, 2, 1, 0);
    test_maxpool(be, 1, 2, 7, 6, 2, 2, 0, 0);
    test_maxpool(be, 1, 2, 11, 10, 5, 3, 2, 0);
    test_maxpool(be, 1, 3, 13, 17, 3, 1, 1, 0);
    test_maxpool(be, 1, 3, 13, 17, 3, 2, 1, 6); /* NaN propagation */
    /* all values negative: the -inf padding must never win */
    const int64_t s3[4] = {1, 1, 3, 3}, s2[4] = {1, 1, 2, 2};
    dm_tensor x, y;
    CHECK_OK(dm_tensor_alloc(&x, DM_DTYPE_F32, 4, s3));
    CHECK_OK(dm_tensor_alloc(&y, DM_DTYPE_F32, 4, s2));
    for (int i = 0; i < 9; i++)
        dm_f32(&x)[i] = -100.f - (float)i;
    CHECK_OK(dm_maxpool2d(be, &x, 3, 2, 1, &y));
    const float want[4] = {-100.f, -101.f, -103.f, -104.f};
    CHECK(tc_compare("maxpool2d negative", dm_f32(&y), want, 4, 0.0, NULL));
    /* bad arguments: padding above k/2 (PyTorch refuses), zero stride, kernel larger than the
     * padded input */
    CHECK(dm_maxpool2d(be, &x, 3, 2, 2, &y) == DM_ERR_ARG);
    CHECK(dm_maxpool2d(be, &x, 3, 0, 1, &y) == DM_ERR_ARG);
    CHECK(dm_maxpool2d(be, &x, 7, 2, 1, &y) == DM_ERR_SHAPE);
    dm_tensor_free(&x);
    dm_tensor_free(&y);
    dm_backend_destroy(be);
    if (!tc_failure_count) printf("test_rvm_maxpool: all checks passed\n");
    return tc_failure_count != 0;
}
