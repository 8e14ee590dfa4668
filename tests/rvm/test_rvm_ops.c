/* Ops added for RVM against naive loops written independently here:
 *   avgpool2d (k, s, ceil_mode=True, count_include_pad=False) on odd sizes,
 *   global_avgpool2d, channel_affine (per-channel and per-image gates),
 *   guided_coeffs (fast guided filter formula),
 *   image_from_u8 (bit-exact v / 255). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "depthmatte/backend.h"
#include "tensor_compare.h"

/* Tolerances: the ops compute the same float expressions as the reference loops, except the
 * global mean (double accumulation vs the naive float loop here), so 1e-6 on values of order 1
 * is a few float ulps of the sums involved. */
#define OP_TOL 1e-6

static unsigned rng = 12345u;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / 16777216.f * 2.f - 1.f;
}

static void fill(dm_tensor *t) {
    for (int64_t i = 0; i < dm_tensor_numel(t); i++) dm_f32(t)[i] = frand();
}

/* naive ceil-mode pooling: window o (start o*s) exists when it starts inside the input and
 * the previous window did not already reach the end ((o-1)*s + k < H); windows are clipped to
 * the input and averaged over their clipped size (count_include_pad=False). */
static int n_windows(int H, int k, int s) {
    int o = 1;
    while (o * s < H && (o - 1) * s + k < H) o++;
    return o;
}

static void avgpool_ref(const float *x, int NC, int H, int W, int k, int s, float *y, int *Ho,
                        int *Wo) {
    const int ho = n_windows(H, k, s), wo = n_windows(W, k, s);
    *Ho = ho, *Wo = wo;
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                float sum = 0.f;
                int cnt = 0;
                for (int a = i * s; a < i * s + k && a < H; a++)
                    for (int b = j * s; b < j * s + k && b < W; b++, cnt++)
                        sum += x[((size_t)c * H + a) * W + b];
                y[((size_t)c * ho + i) * wo + j] = sum / (float)cnt;
            }
}

static void test_avgpool(dm_backend *be, int N, int C, int H, int W, int k, int s) {
    const int64_t xs[4] = {N, C, H, W};
    dm_tensor x, y;
    CHECK_OK(dm_tensor_alloc(&x, DM_DTYPE_F32, 4, xs));
    fill(&x);
    float *ref = malloc(sizeof(float) * (size_t)N * C * H * W);
    int Ho, Wo;
    avgpool_ref(dm_f32(&x), N * C, H, W, k, s, ref, &Ho, &Wo);
    const int64_t ys[4] = {N, C, Ho, Wo};
    CHECK_OK(dm_tensor_alloc(&y, DM_DTYPE_F32, 4, ys));
    CHECK_OK(dm_avgpool2d(be, &x, k, s, &y));
    char name[96];
    snprintf(name, sizeof name, "avgpool2d %dx%dx%dx%d k%d s%d -> %dx%d", N, C, H, W, k, s, Ho, Wo);
    CHECK(tc_compare(name, dm_f32(&y), ref, (int64_t)N * C * Ho * Wo, OP_TOL, NULL));
    /* a wrongly sized output is rejected */
    const int64_t bad[4] = {N, C, Ho + 1, Wo};
    dm_tensor yb;
    CHECK_OK(dm_tensor_alloc(&yb, DM_DTYPE_F32, 4, bad));
    CHECK(dm_avgpool2d(be, &x, k, s, &yb) == DM_ERR_SHAPE);
    dm_tensor_free(&yb);
    dm_tensor_free(&x);
    dm_tensor_free(&y);
    free(ref);
}

int main(void) {
    dm_backend *be = dm_backend_cpu_create(2);
    /* RVM's pyramid: 2x2 stride 2 on odd sizes (9 -> 5, 7 -> 4, 1 -> 1) */
    test_avgpool(be, 1, 3, 9, 7, 2, 2);
    test_avgpool(be, 2, 5, 5, 4, 2, 2);
    test_avgpool(be, 1, 3, 1, 1, 2, 2);
    test_avgpool(be, 1, 3, 72, 128, 2, 2);
    test_avgpool(be, 1, 2, 11, 8, 3, 2);
    test_avgpool(be, 1, 2, 10, 13, 3, 3);

    /* global average pool */
    const int64_t gs[4] = {2, 3, 7, 5}, g1[4] = {2, 3, 1, 1};
    dm_tensor x, y;
    CHECK_OK(dm_tensor_alloc(&x, DM_DTYPE_F32, 4, gs));
    CHECK_OK(dm_tensor_alloc(&y, DM_DTYPE_F32, 4, g1));
    fill(&x);
    CHECK_OK(dm_global_avgpool2d(be, &x, &y));
    float gref[6];
    for (int c = 0; c < 6; c++) {
        float sum = 0.f;
        for (int i = 0; i < 35; i++) sum += dm_f32(&x)[c * 35 + i];
        gref[c] = sum / 35.f;
    }
    CHECK(tc_compare("global_avgpool2d", dm_f32(&y), gref, 6, OP_TOL, NULL));

    /* channel_affine: per-image gate (N*C values) + per-channel shift */
    const int64_t c3[1] = {3};
    dm_tensor sh, out;
    CHECK_OK(dm_tensor_alloc(&sh, DM_DTYPE_F32, 1, c3));
    CHECK_OK(dm_tensor_alloc(&out, DM_DTYPE_F32, 4, gs));
    fill(&sh);
    CHECK_OK(dm_channel_affine(be, &x, &y, &sh, &out));
    float *aref = malloc(sizeof(float) * 210);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 35; i++)
                aref[(n * 3 + c) * 35 + i] =
                    dm_f32(&x)[(n * 3 + c) * 35 + i] * dm_f32(&y)[n * 3 + c] + dm_f32(&sh)[c];
    CHECK(tc_compare("channel_affine", dm_f32(&out), aref, 210, OP_TOL, NULL));
    /* in place, per-channel scale */
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 35; i++)
                aref[(n * 3 + c) * 35 + i] = dm_f32(&x)[(n * 3 + c) * 35 + i] * dm_f32(&sh)[c];
    CHECK_OK(dm_channel_affine(be, &x, &sh, NULL, &x));
    CHECK(tc_compare("channel_affine in place", dm_f32(&x), aref, 210, OP_TOL, NULL));
    free(aref);

    /* guided_coeffs on K = 2: m (1, 8, 3, 4) */
    const int64_t ms[4] = {1, 8, 3, 4}, ks[4] = {1, 2, 3, 4};
    dm_tensor m, a, b;
    CHECK_OK(dm_tensor_alloc(&m, DM_DTYPE_F32, 4, ms));
    CHECK_OK(dm_tensor_alloc(&a, DM_DTYPE_F32, 4, ks));
    CHECK_OK(dm_tensor_alloc(&b, DM_DTYPE_F32, 4, ks));
    fill(&m);
    for (int i = 72; i < 96; i++) dm_f32(&m)[i] = 2.f + dm_f32(&m)[i]; /* mean_xx > mean_x^2 */
    CHECK_OK(dm_guided_coeffs(be, &m, 1e-5f, &a, &b));
    float ra[24], rb[24];
    const float *md = dm_f32(&m);
    for (int i = 0; i < 24; i++) {
        float mx = md[i], my = md[24 + i], mxy = md[48 + i], mxx = md[72 + i];
        ra[i] = (mxy - mx * my) / (mxx - mx * mx + 1e-5f);
        rb[i] = my - ra[i] * mx;
    }
    CHECK(tc_compare("guided_coeffs a", dm_f32(&a), ra, 24, OP_TOL, NULL));
    CHECK(tc_compare("guided_coeffs b", dm_f32(&b), rb, 24, OP_TOL, NULL));

    /* image_from_u8: exact */
    const int64_t us[4] = {1, 2, 3, 3}, fs[4] = {1, 3, 2, 3};
    dm_tensor u, im;
    CHECK_OK(dm_tensor_alloc(&u, DM_DTYPE_U8, 4, us));
    CHECK_OK(dm_tensor_alloc(&im, DM_DTYPE_F32, 4, fs));
    for (int i = 0; i < 18; i++) ((unsigned char *)u.data)[i] = (unsigned char)(i * 15);
    CHECK_OK(dm_image_from_u8(be, &u, &im));
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 6; p++)
            CHECK(dm_f32(&im)[c * 6 + p] == (float)(unsigned char)((p * 3 + c) * 15) / 255.f);

    dm_tensor *all[] = {&x, &y, &sh, &out, &m, &a, &b, &u, &im};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dm_tensor_free(all[i]);
    dm_backend_destroy(be);
    return tc_failure_count != 0;
}
