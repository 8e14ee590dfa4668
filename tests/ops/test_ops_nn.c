/* Op tests for the CPU ops linear, layernorm, groupnorm, attention, conv_transpose2d, permute,
 * resize: each op on random inputs against a naive double-precision loop written from the PyTorch
 * definition; `nonfinite`: the activations (alone and fused into conv2d / linear) on NaN, +-inf
 * and signed zeros against hand-derived PyTorch results. Usage: test_ops_nn <op>. Tolerances: float32 accumulation over K terms has a typical
 * error of ~sqrt(K) * 6e-8 * scale (scale = largest |reference|); the bound used is 1e-6 * sqrt(K)
 * * scale, about 15x that, which a wrong index or a missing term exceeds by orders of magnitude
 * (checked by perturbing the ops while writing them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend.h"
#include "depthmatte/backend_emu.h"
#include "tensor_compare.h"

static uint64_t rng_state = 0x1234567;
static float frand(void) { /* uniform [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) * 0x1p-24 * 2.0 - 1.0);
}

static void fill(dm_tensor *t, float scale, float offset) {
    float *d = dm_f32(t);
    for (int64_t i = 0; i < dm_tensor_numel(t); i++) d[i] = offset + scale * frand();
}

static dm_tensor mk(int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t sh[4] = {a, b, c, d};
    dm_tensor t;
    if (dm_tensor_alloc(&t, DM_DTYPE_F32, ndim, sh)) abort();
    return t;
}

static double max_abs_d(const double *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Compares float output with a double reference at tol = 1e-6 * sqrt(K) * scale. */
static void compare(const char *name, const dm_tensor *got, const double *ref, int K) {
    int64_t n = dm_tensor_numel(got);
    float *rf = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) rf[i] = (float)ref[i];
    double tol = 1e-6 * sqrt((double)K) * fmax(max_abs_d(ref, n), 1.0);
    tc_compare(name, dm_f32(got), rf, n, tol, NULL);
    free(rf);
}

static double gelu_d(double v) { return 0.5 * v * (1.0 + erf(v / sqrt(2.0))); }

static void test_linear(dm_backend *be) {
    const int M = 37, K = 384, N = 200;
    dm_tensor x = mk(3, 1, M, K, 0), w = mk(2, N, K, 0, 0), b = mk(1, N, 0, 0, 0);
    dm_tensor y = mk(3, 1, M, N, 0);
    fill(&x, 2.f, 0.f), fill(&w, 0.1f, 0.f), fill(&b, 0.1f, 0.f);
    double *ref = malloc(sizeof(double) * M * N);
    for (int act = 0; act < 2; act++) {
        dm_act a = act ? DM_ACT_GELU : DM_ACT_NONE;
        CHECK_OK(dm_linear(be, &x, &w, act ? &b : NULL, a, &y));
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = act ? dm_f32(&b)[n] : 0;
                for (int k = 0; k < K; k++) s += (double)dm_f32(&x)[m * K + k] * dm_f32(&w)[n * K + k];
                ref[m * N + n] = act ? gelu_d(s) : s;
            }
        compare(act ? "linear+bias+gelu" : "linear", &y, ref, K);
    }
    /* shape error is reported, not ignored */
    dm_tensor bad = mk(2, N, K + 1, 0, 0);
    CHECK(dm_linear(be, &x, &bad, NULL, DM_ACT_NONE, &y) == DM_ERR_SHAPE);
    dm_tensor_free(&bad);
    free(ref);
    dm_tensor_free(&x), dm_tensor_free(&w), dm_tensor_free(&b), dm_tensor_free(&y);
}

static void test_layernorm(dm_backend *be) {
    const int M = 50, C = 384;
    dm_tensor x = mk(3, 2, M / 2, C, 0), g = mk(1, C, 0, 0, 0), b = mk(1, C, 0, 0, 0);
    dm_tensor y = mk(3, 2, M / 2, C, 0);
    fill(&x, 3.f, 0.5f), fill(&g, 0.1f, 1.f), fill(&b, 0.1f, 0.f);
    double *ref = malloc(sizeof(double) * M * C);
    const float eps = 1e-6f;
    CHECK_OK(dm_layernorm(be, &x, &g, &b, eps, &y));
    for (int m = 0; m < M; m++) {
        const float *r = dm_f32(&x) + m * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += r[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (r[c] - mean) * (r[c] - mean);
        var /= C;
        for (int c = 0; c < C; c++)
            ref[m * C + c] = (r[c] - mean) / sqrt(var + eps) * dm_f32(&g)[c] + dm_f32(&b)[c];
    }
    compare("layernorm", &y, ref, 16);
    free(ref);
    dm_tensor_free(&x), dm_tensor_free(&g), dm_tensor_free(&b), dm_tensor_free(&y);
}

static void test_groupnorm(dm_backend *be) {
    const int N = 2, C = 64, H = 5, W = 7, G = 32, S = H * W;
    dm_tensor x = mk(4, N, C, H, W), g = mk(1, C, 0, 0, 0), b = mk(1, C, 0, 0, 0);
    dm_tensor y = mk(4, N, C, H, W);
    fill(&x, 2.f, -0.3f), fill(&g, 0.1f, 1.f), fill(&b, 0.1f, 0.f);
    double *ref = malloc(sizeof(double) * N * C * S);
    const float eps = 1e-6f;
    CHECK_OK(dm_groupnorm(be, &x, G, &g, &b, eps, &y));
    const int Cg = C / G;
    for (int n = 0; n < N; n++)
        for (int gi = 0; gi < G; gi++) {
            const float *r = dm_f32(&x) + ((size_t)n * C + gi * Cg) * S;
            double mean = 0, var = 0;
            for (int i = 0; i < Cg * S; i++) mean += r[i];
            mean /= Cg * S;
            for (int i = 0; i < Cg * S; i++) var += (r[i] - mean) * (r[i] - mean);
            var /= Cg * S;
            for (int c = 0; c < Cg; c++)
                for (int i = 0; i < S; i++) {
                    int ch = gi * Cg + c;
                    ref[((size_t)n * C + ch) * S + i] =
                        (r[c * S + i] - mean) / sqrt(var + eps) * dm_f32(&g)[ch] + dm_f32(&b)[ch];
                }
        }
    compare("groupnorm", &y, ref, 16);
    CHECK(dm_groupnorm(be, &x, 7, &g, &b, eps, &y) == DM_ERR_ARG);
    free(ref);
    dm_tensor_free(&x), dm_tensor_free(&g), dm_tensor_free(&b), dm_tensor_free(&y);
}

/* Runs one attention shape; covers both schedules (short: direct loops, long: SGEMM). */
static void attention_case(dm_backend *be, int B, int Hd, int Tq, int Tk, int D, const char *name) {
    dm_tensor q = mk(4, B, Hd, Tq, D), k = mk(4, B, Hd, Tk, D), v = mk(4, B, Hd, Tk, D);
    dm_tensor o = mk(4, B, Hd, Tq, D);
    fill(&q, 2.f, 0.f), fill(&k, 2.f, 0.f), fill(&v, 1.f, 0.f);
    const float scale = 1.f / sqrtf((float)D);
    CHECK_OK(dm_attention(be, &q, &k, &v, scale, &o));
    double *ref = malloc(sizeof(double) * (size_t)B * Hd * Tq * D);
    double *s = malloc(sizeof(double) * Tk);
    for (int bh = 0; bh < B * Hd; bh++)
        for (int i = 0; i < Tq; i++) {
            const float *qi = dm_f32(&q) + ((size_t)bh * Tq + i) * D;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < Tk; j++) {
                const float *kj = dm_f32(&k) + ((size_t)bh * Tk + j) * D;
                double a = 0;
                for (int d = 0; d < D; d++) a += (double)qi[d] * kj[d];
                s[j] = a * scale;
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < Tk; j++) sum += (s[j] = exp(s[j] - mx));
            for (int d = 0; d < D; d++) {
                double a = 0;
                for (int j = 0; j < Tk; j++) a += s[j] / sum * dm_f32(&v)[((size_t)bh * Tk + j) * D + d];
                ref[((size_t)bh * Tq + i) * D + d] = a;
            }
        }
    compare(name, &o, ref, D > Tk ? D : Tk);
    free(ref), free(s);
    dm_tensor_free(&q), dm_tensor_free(&k), dm_tensor_free(&v), dm_tensor_free(&o);
}

/* attention_qkv (B, T, 3C) -> (B, T, C) against the ops it stands for, run on the whole batch
 * at once (split permute, attention, merge permute): bitwise equal. C = heads * D large
 * enough that one item's workspace (4 T C floats, 21 MB here) exceeds half the op's 32 MiB
 * chunk bound, so the batch of 3 runs as 3 chunks (attention_qkv.c). */
static void attention_qkv_case(dm_backend *be, int B, int T, int heads, int D, const char *name) {
    const int C = heads * D;
    dm_tensor qkv = mk(3, B, T, 3 * C, 0), o = mk(3, B, T, C, 0);
    dm_tensor h = mk(4, 3 * B, heads, T, D), att = mk(4, B, heads, T, D), want = mk(3, B, T, C, 0);
    fill(&qkv, 2.f, 0.f);
    CHECK_OK(dm_attention_qkv(be, &qkv, heads, 1.f / sqrtf((float)D), &o));
    const int64_t s5[5] = {B, T, 3, heads, D}, sh[5] = {3, B, heads, T, D},
                  s4[4] = {B, heads, T, D}, sm[4] = {B, T, heads, D};
    const int split[5] = {2, 0, 3, 1, 4}, merge[4] = {0, 2, 1, 3};
    dm_tensor qkv5, h5, q, k, v, att4, m4;
    dm_tensor_view(&qkv5, qkv.data, DM_DTYPE_F32, 5, s5);
    dm_tensor_view(&h5, h.data, DM_DTYPE_F32, 5, sh);
    const int64_t part = (int64_t)B * T * C;
    dm_tensor_view(&q, dm_f32(&h), DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&k, dm_f32(&h) + part, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&v, dm_f32(&h) + 2 * part, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&att4, att.data, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&m4, want.data, DM_DTYPE_F32, 4, sm);
    CHECK_OK(dm_permute(be, &qkv5, split, &h5));
    CHECK_OK(dm_attention(be, &q, &k, &v, 1.f / sqrtf((float)D), &att4));
    CHECK_OK(dm_permute(be, &att4, merge, &m4));
    CHECK(tc_compare(name, dm_f32(&o), dm_f32(&want), (size_t)part, 0.0, NULL));
    dm_tensor_free(&qkv), dm_tensor_free(&o), dm_tensor_free(&h), dm_tensor_free(&att);
    dm_tensor_free(&want);
}

static void test_attention(dm_backend *be) {
    attention_case(be, 6, 8, 32, 32, 24, "attention short (VDA-like)");
    attention_case(be, 1, 6, 101, 101, 64, "attention 101 tokens");
    attention_case(be, 1, 2, 700, 650, 64, "attention long, row blocks");
    attention_qkv_case(be, 3, 40, 128, 256, "attention_qkv 3 chunks = whole batch, bitwise");
    attention_qkv_case(be, 7, 33, 6, 64, "attention_qkv one chunk = whole batch, bitwise");
}

static void test_conv_transpose(dm_backend *be) {
    struct { int Cin, Cout, H, W, k, s, p; } cases[] = {
        {48, 48, 5, 7, 4, 4, 0}, /* DPT resize_layers.0 */
        {16, 8, 4, 3, 2, 2, 0},  /* resize_layers.1 */
        {6, 5, 5, 4, 3, 2, 1},   /* overlapping taps + padding */
    };
    for (int c = 0; c < 3; c++) {
        const int Cin = cases[c].Cin, Cout = cases[c].Cout, H = cases[c].H, W = cases[c].W,
                  k = cases[c].k, s = cases[c].s, p = cases[c].p;
        const int Ho = (H - 1) * s - 2 * p + k, Wo = (W - 1) * s - 2 * p + k;
        dm_tensor x = mk(4, 2, Cin, H, W), w = mk(4, Cin, Cout, k, k), b = mk(1, Cout, 0, 0, 0);
        dm_tensor y = mk(4, 2, Cout, Ho, Wo);
        fill(&x, 1.f, 0.f), fill(&w, 0.3f, 0.f), fill(&b, 0.1f, 0.f);
        CHECK_OK(dm_conv_transpose2d(be, &x, &w, &b, s, p, &y));
        double *ref = calloc((size_t)2 * Cout * Ho * Wo, sizeof(double));
        for (int n = 0; n < 2; n++)
            for (int co = 0; co < Cout; co++) {
                double *yc = ref + ((size_t)n * Cout + co) * Ho * Wo;
                for (int i = 0; i < Ho * Wo; i++) yc[i] = dm_f32(&b)[co];
                for (int ci = 0; ci < Cin; ci++)
                    for (int iy = 0; iy < H; iy++)
                        for (int ix = 0; ix < W; ix++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int oy = iy * s - p + ky, ox = ix * s - p + kx;
                                    if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                                    yc[oy * Wo + ox] +=
                                        (double)dm_f32(&x)[(((size_t)n * Cin + ci) * H + iy) * W + ix] *
                                        dm_f32(&w)[(((size_t)ci * Cout + co) * k + ky) * k + kx];
                                }
            }
        char name[64];
        snprintf(name, sizeof name, "conv_transpose2d k%d s%d p%d", k, s, p);
        compare(name, &y, ref, Cin * k * k);
        free(ref);
        dm_tensor_free(&x), dm_tensor_free(&w), dm_tensor_free(&b), dm_tensor_free(&y);
    }
}

/* permute is pure data movement: exact equality with index arithmetic, tolerance 0. */
static void test_permute(dm_backend *be) {
    const int A = 2, B = 3, C = 4, D = 5, E = 6;
    int64_t xs[5] = {A, B, C, D, E};
    dm_tensor x;
    if (dm_tensor_alloc(&x, DM_DTYPE_F32, 5, xs)) abort();
    fill(&x, 1.f, 0.f);
    const int perms[3][5] = {{2, 0, 3, 1, 4}, {4, 3, 2, 1, 0}, {0, 1, 2, 4, 3}};
    for (int p = 0; p < 3; p++) {
        int64_t ys[5];
        for (int i = 0; i < 5; i++) ys[i] = xs[perms[p][i]];
        dm_tensor y;
        if (dm_tensor_alloc(&y, DM_DTYPE_F32, 5, ys)) abort();
        CHECK_OK(dm_permute(be, &x, perms[p], &y));
        float *ref = malloc(sizeof(float) * A * B * C * D * E);
        int64_t o[5], i5[5];
        for (o[0] = 0; o[0] < ys[0]; o[0]++)
            for (o[1] = 0; o[1] < ys[1]; o[1]++)
                for (o[2] = 0; o[2] < ys[2]; o[2]++)
                    for (o[3] = 0; o[3] < ys[3]; o[3]++)
                        for (o[4] = 0; o[4] < ys[4]; o[4]++) {
                            for (int i = 0; i < 5; i++) i5[perms[p][i]] = o[i];
                            int64_t src = (((i5[0] * B + i5[1]) * C + i5[2]) * D + i5[3]) * E + i5[4];
                            int64_t dst = (((o[0] * ys[1] + o[1]) * ys[2] + o[2]) * ys[3] + o[3]) * ys[4] + o[4];
                            ref[dst] = dm_f32(&x)[src];
                        }
        tc_compare("permute", dm_f32(&y), ref, A * B * C * D * E, 0.0, NULL);
        free(ref);
        dm_tensor_free(&y);
    }
    dm_tensor_free(&x);
}

/* resize: F.interpolate semantics (bilinear / bicubic A = -0.75, border-clamped taps), naive
 * per-pixel evaluation in double. The CPU op keeps source coordinates in double, so it must be
 * within a few float roundings of the exact value (tol 5e-7 * max|ref|): a float32 coordinate
 * (PyTorch's float kernel, and this op before) misses by up to ~1e-4 at coordinates near 1217
 * (bilinear 518x1218 -> 272x640) and ~5e-6 for the bicubic position-embedding grid. */
static double resize_src(int dst, int in, int out, int ac, double scale) {
    if (ac) return out > 1 ? (double)dst * (in - 1) / (out - 1) : 0.0;
    return (dst + 0.5) / (scale > 0 ? scale : (double)out / in) - 0.5;
}

static double cubic_d(double x) { /* Keys kernel, A = -0.75 */
    const double A = -0.75;
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

static void resize_case(dm_backend *be, dm_resize_mode mode, int C, int H, int W, int Ho, int Wo,
                        int ac, double sh, double sw, const char *name) {
    dm_tensor x = mk(4, 1, C, H, W), y = mk(4, 1, C, Ho, Wo);
    fill(&x, 0.5f, 0.f);
    const float *xd = dm_f32(&x);
    double *ref = malloc(sizeof(double) * (size_t)C * Ho * Wo);
    for (int c = 0; c < C; c++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                double sy = resize_src(oy, H, Ho, ac, sh), sx = resize_src(ox, W, Wo, ac, sw);
                double acc = 0;
                if (mode == DM_RESIZE_BILINEAR) {
                    if (!ac) sy = fmax(sy, 0), sx = fmax(sx, 0);
                    int y0 = (int)sy, x0 = (int)sx;
                    double ly = sy - y0, lx = sx - x0;
                    int y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
                    const float *p = xd + (size_t)c * H * W;
                    acc = (1 - ly) * ((1 - lx) * p[y0 * W + x0] + lx * p[y0 * W + x1]) +
                          ly * ((1 - lx) * p[y1 * W + x0] + lx * p[y1 * W + x1]);
                } else {
                    const int fy = (int)floor(sy), fx = (int)floor(sx);
                    for (int j = fy - 1; j <= fy + 2; j++)
                        for (int i = fx - 1; i <= fx + 2; i++) {
                            int yy = j < 0 ? 0 : (j >= H ? H - 1 : j);
                            int xx = i < 0 ? 0 : (i >= W ? W - 1 : i);
                            acc += cubic_d(sy - j) * cubic_d(sx - i) *
                                   xd[(size_t)c * H * W + (size_t)yy * W + xx];
                        }
                }
                ref[((size_t)c * Ho + oy) * Wo + ox] = acc;
            }
    CHECK_OK(dm_resize(be, &x, mode, ac, sh, sw, &y));
    int64_t n = dm_tensor_numel(&y);
    float *rf = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        rf[i] = (float)ref[i];
    tc_compare(name, dm_f32(&y), rf, n, 5e-7 * max_abs_d(ref, n), NULL);
    free(rf);
    free(ref);
    dm_tensor_free(&x);
    dm_tensor_free(&y);
}

static void test_resize(dm_backend *be) {
    /* DINOv2 position embedding (37x37 grid) at 518x1218 and 266x630 inputs, and 98x168 */
    resize_case(be, DM_RESIZE_BICUBIC, 8, 37, 37, 37, 87, 0, 37.1 / 37, 87.1 / 37,
                "bicubic pos-embed 37x37 -> 37x87");
    resize_case(be, DM_RESIZE_BICUBIC, 8, 37, 37, 19, 45, 0, 19.1 / 37, 45.1 / 37,
                "bicubic pos-embed 37x37 -> 19x45");
    resize_case(be, DM_RESIZE_BICUBIC, 4, 7, 9, 16, 21, 1, 0, 0, "bicubic align_corners");
    /* DA-V2 output resize (infer_image), DPT head resizes, RVM down/upsampling */
    resize_case(be, DM_RESIZE_BILINEAR, 2, 518, 1218, 272, 640, 1, 0, 0,
                "bilinear ac 518x1218 -> 272x640");
    resize_case(be, DM_RESIZE_BILINEAR, 2, 296, 696, 518, 1218, 1, 0, 0,
                "bilinear ac 296x696 -> 518x1218");
    resize_case(be, DM_RESIZE_BILINEAR, 3, 144, 256, 36, 64, 0, 0.25, 0.25, "bilinear scale 0.25");
    resize_case(be, DM_RESIZE_BILINEAR, 3, 36, 64, 72, 128, 0, 0, 0, "bilinear size x2");
}

/* ---- non-finite inputs of the activations ------------------------------------------------- */

/* Inputs and hand-derived PyTorch 2.x results (F.relu, F.hardsigmoid, F.hardswish,
 * torch.sigmoid, torch.tanh, F.gelu): NaN in gives NaN out in every activation (PyTorch's
 * clamp_min / clamp propagate NaN; fmaxf(NaN, 0) would give 0); relu(-inf) = 0,
 * hardsigmoid(+inf) = min(max(inf, 0), 6) / 6 = 1, hardswish(+inf) = inf * 6 / 6 = inf,
 * hardswish(-inf) = -inf * 0 / 6 = NaN, hardswish(-4) = -4 * 0 / 6 = -0, relu(-0) = -0,
 * sigmoid(-inf) = 1 / (1 + inf) = 0, tanh(+-inf) = +-1, gelu(-inf) = 0.5 * -inf * 0 = NaN,
 * gelu(+inf) = inf (the formula, and PyTorch's scalar path; its vectorised CPU erf gives NaN).
 * Checked against torch 2.15 on CPU, bit for bit, for relu/hardsigmoid/hardswish. NaN marks an
 * expected NaN; FIN marks a finite value not checked here (libm's exp/tanh/erf, covered by the
 * other op tests). */
#define NV 10
#define FIN 12345.f
static const float k_nf_in[NV] = {NAN, INFINITY, -INFINITY, -4.f, -3.f, -1.f, -0.f, 0.f, 2.f, 7.f};
static const struct {
    dm_act act;
    const char *name;
    float want[NV];
} k_nf_cases[] = {
    {DM_ACT_RELU, "relu", {NAN, INFINITY, 0.f, 0.f, 0.f, 0.f, -0.f, 0.f, 2.f, 7.f}},
    {DM_ACT_HARDSIGMOID, "hardsigmoid",
     {NAN, 1.f, 0.f, 0.f, 0.f, 2.f / 6.f, 0.5f, 0.5f, 5.f / 6.f, 1.f}},
    {DM_ACT_HARDSWISH, "hardswish",
     {NAN, INFINITY, NAN, -0.f, -0.f, -2.f / 6.f, -0.f, 0.f, 10.f / 6.f, 7.f}},
    {DM_ACT_SIGMOID, "sigmoid", {NAN, 1.f, 0.f, FIN, FIN, FIN, 0.5f, 0.5f, FIN, FIN}},
    {DM_ACT_TANH, "tanh", {NAN, 1.f, -1.f, FIN, FIN, FIN, -0.f, 0.f, FIN, FIN}},
    {DM_ACT_GELU, "gelu", {NAN, INFINITY, NAN, FIN, FIN, FIN, -0.f, 0.f, FIN, FIN}},
};

static float round_p(float v, dm_dtype p) {
    if (p == DM_DTYPE_F16) return dm_f16_to_f32(dm_f32_to_f16(v));
    if (p == DM_DTYPE_BF16) return dm_bf16_to_f32(dm_f32_to_bf16(v));
    return v;
}

/* got[i] against want (at stride 1): NaN where want is NaN, else the same bits (signed zeros
 * too, unless any_zero_sign: a fused epilogue adds a +0 bias, -0 + 0 = +0). */
static void nf_check(const char *what, const float *got, const float *want, int n, dm_dtype p,
                     int any_zero_sign) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (want[i] == FIN) continue;
        const float w = round_p(want[i], p);
        int ok;
        if (isnan(w)) ok = isnan(got[i]);
        else if (w == 0.f && any_zero_sign) ok = got[i] == 0.f;
        else ok = memcmp(&got[i], &w, sizeof w) == 0;
        if (!ok) {
            if (bad++ < 4)
                fprintf(stderr, "  %s: input %g gives %g, want %g\n", what, (double)k_nf_in[i],
                        (double)got[i], (double)w);
        }
    }
    printf("%-56s %s\n", what, bad ? "FAIL" : "ok");
    if (bad) tc_failure_count++;
}

/* Host tensor h on backend be (an upload for a device backend), in the backend's storage
 * dtype (f16/bf16 on a reduced-precision device: every output is stored rounded). */
static dm_tensor nf_put(dm_backend *be, const dm_tensor *h) {
    dm_tensor d;
    CHECK_OK(dm_alloc(be, &d, dm_backend_storage_dtype(be), h->ndim, h->shape));
    CHECK_OK(dm_copy(be, h, &d));
    return d;
}

static dm_tensor nf_get(dm_backend *be, const dm_tensor *d) {
    dm_tensor h;
    if (dm_tensor_alloc(&h, DM_DTYPE_F32, d->ndim, d->shape)) abort();
    CHECK_OK(dm_copy(be, d, &h));
    return h;
}

/* Every activation of k_nf_cases on backend be (precision p): dm_activation; conv2d 1x1 dense
 * and depthwise with the activation fused (bias {0, NaN}: channel 1 all NaN); linear with bias
 * {0, NaN} and without bias. One weight 1 per output, so each output is act(x + bias) exactly. */
static void nf_backend(dm_backend *be, dm_dtype p, const char *bname) {
    dm_tensor x = mk(4, 1, 1, 1, NV), x2 = mk(4, 1, 2, 1, NV), xl = mk(2, NV, 1, 0, 0);
    dm_tensor w = mk(4, 2, 1, 1, 1), b = mk(1, 2, 0, 0, 0), wl = mk(2, 2, 1, 0, 0);
    for (int i = 0; i < NV; i++)
        dm_f32(&x)[i] = dm_f32(&x2)[i] = dm_f32(&x2)[NV + i] = dm_f32(&xl)[i] = k_nf_in[i];
    dm_f32(&w)[0] = dm_f32(&w)[1] = dm_f32(&wl)[0] = dm_f32(&wl)[1] = 1.f;
    dm_f32(&b)[0] = 0.f, dm_f32(&b)[1] = NAN;
    dm_tensor dx = nf_put(be, &x), dx2 = nf_put(be, &x2), dxl = nf_put(be, &xl);
    dm_tensor dw = nf_put(be, &w), db = nf_put(be, &b), dwl = nf_put(be, &wl);
    dm_tensor y = mk(4, 1, 1, 1, NV), yc = mk(4, 1, 2, 1, NV), yl = mk(2, NV, 2, 0, 0);
    dm_tensor dy = nf_put(be, &y), dyc = nf_put(be, &yc), dyl = nf_put(be, &yl);
    float nan_row[NV], col[NV];
    for (int i = 0; i < NV; i++) nan_row[i] = NAN;
    for (size_t c = 0; c < sizeof k_nf_cases / sizeof k_nf_cases[0]; c++) {
        const dm_act act = k_nf_cases[c].act;
        const float *want = k_nf_cases[c].want;
        char what[128];
        snprintf(what, sizeof what, "%s %s activation", bname, k_nf_cases[c].name);
        CHECK_OK(dm_activation(be, &dx, act, &dy));
        dm_tensor h = nf_get(be, &dy);
        nf_check(what, dm_f32(&h), want, NV, p, 0);
        dm_tensor_free(&h);
        for (int dw_case = 0; dw_case < 2; dw_case++) {
            const dm_conv2d_params cp = dm_conv2d_params_make(1, 0, dw_case ? 2 : 1, act);
            CHECK_OK(dm_conv2d(be, dw_case ? &dx2 : &dx, &dw, &db, &cp, &dyc));
            h = nf_get(be, &dyc);
            snprintf(what, sizeof what, "%s %s conv2d 1x1%s bias 0", bname, k_nf_cases[c].name,
                     dw_case ? " depthwise" : "");
            nf_check(what, dm_f32(&h), want, NV, p, 1);
            snprintf(what, sizeof what, "%s %s conv2d 1x1%s bias NaN", bname, k_nf_cases[c].name,
                     dw_case ? " depthwise" : "");
            nf_check(what, dm_f32(&h) + NV, nan_row, NV, p, 1);
            dm_tensor_free(&h);
        }
        for (int with_b = 0; with_b < 2; with_b++) {
            CHECK_OK(dm_linear(be, &dxl, &dwl, with_b ? &db : NULL, act, &dyl));
            h = nf_get(be, &dyl);
            for (int i = 0; i < NV; i++) col[i] = dm_f32(&h)[2 * i];
            snprintf(what, sizeof what, "%s %s linear%s", bname, k_nf_cases[c].name,
                     with_b ? " bias 0" : "");
            nf_check(what, col, want, NV, p, 1);
            if (with_b) {
                for (int i = 0; i < NV; i++) col[i] = dm_f32(&h)[2 * i + 1];
                snprintf(what, sizeof what, "%s %s linear bias NaN", bname, k_nf_cases[c].name);
                nf_check(what, col, nan_row, NV, p, 1);
            }
            dm_tensor_free(&h);
        }
    }
    dm_tensor *all[] = {&x, &x2, &xl, &w, &b, &wl, &y, &yc, &yl,
                        &dx, &dx2, &dxl, &dw, &db, &dwl, &dy, &dyc, &dyl};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dm_tensor_free(all[i]);
}

/* The CPU backend and the emulated device (its ops are the CPU ones, outputs rounded to
 * f16/bf16: NaN and inf survive the rounding). */
static void test_nonfinite(dm_backend *be) {
    nf_backend(be, DM_DTYPE_F32, "cpu");
    const dm_dtype precs[3] = {DM_DTYPE_F32, DM_DTYPE_F16, DM_DTYPE_BF16};
    const char *names[3] = {"emu f32", "emu f16", "emu bf16"};
    for (int i = 0; i < 3; i++) {
        dm_backend *emu = NULL;
        CHECK_OK(dm_backend_emu_create(2, precs[i], NULL, &emu));
        nf_backend(emu, precs[i], names[i]);
        dm_backend_destroy(emu);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s linear|layernorm|groupnorm|attention|conv_transpose2d|permute|resize|"
                "nonfinite\n",
                argv[0]);
        return 2;
    }
    dm_backend *be = dm_backend_cpu_create(2);
    if (!be) return 1;
    if (!strcmp(argv[1], "linear")) test_linear(be);
    else if (!strcmp(argv[1], "layernorm")) test_layernorm(be);
    else if (!strcmp(argv[1], "groupnorm")) test_groupnorm(be);
    else if (!strcmp(argv[1], "attention")) test_attention(be);
    else if (!strcmp(argv[1], "conv_transpose2d")) test_conv_transpose(be);
    else if (!strcmp(argv[1], "permute")) test_permute(be);
    else if (!strcmp(argv[1], "resize")) test_resize(be);
    else if (!strcmp(argv[1], "nonfinite"))
        test_nonfinite(be);
    else {
        fprintf(stderr, "unknown op %s\n", argv[1]);
        tc_failure_count++;
    }
    dm_backend_destroy(be);
    return tc_failure_count != 0;
}
