/* Every CUDA op against the CPU reference op (src/nn/cpu) on random inputs, per precision
 * (f32, f16, bf16), plus copies/conversions, the non-finite counter, softmax and device queries.
 *
 * Method: inputs are drawn in f32, rounded to the precision under test (so that both backends
 * see bit-identical inputs), run through the CPU op in f32 and through the CUDA op with every
 * tensor in that precision, and the CUDA output (converted back to f32) is compared with
 * tc_compare. Tolerance = factor(precision) * max|reference|:
 *   f32   1e-4   : strict f32 on both sides (TF32 disabled); observed differences come only from
 *                  summation order and FMA contraction (~1e-6 relative for K <= 4000); 1e-4
 *                  would still catch TF32 (10-bit mantissa, ~1e-3) sneaking in.
 *   f16   4 * 2^-11 (~2.0e-3): f16 unit roundoff is 2^-11; an op rounds at most ~twice (cuDNN's
 *                  f16 conv output before our bias/activation epilogue, then the store) plus
 *                  f32 accumulation noise; four units bound that with margin.
 *   bf16  4 * 2^-8  (~1.6e-2): same reasoning with bf16's 8-bit mantissa.
 * These follow ../shared/golden/README.md section 5 (f16/bf16: 1e-2 of the tensor's scale).
 * Exits 77 (loud skip) when no CUDA device is visible or the build has no CUDA; an op whose
 * CPU reference is still NULL is skipped loudly. NOT YET RUN ON A GPU (see docs/gpu.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend.h"
#include "depthmatte/backend_cuda.h"
#include "tensor_compare.h"

static dm_backend *g_cpu, *g_gpu;
static int g_skipped_ops;
static const dm_dtype k_precs[3] = {DM_DTYPE_F32, DM_DTYPE_F16, DM_DTYPE_BF16};

static double tol_factor(dm_dtype p) {
    return p == DM_DTYPE_F32 ? 1e-4 : (p == DM_DTYPE_F16 ? 4.0 / 2048 : 4.0 / 256);
}

static int cpu_has(void *fn, const char *op) {
    if (fn) return 1;
    printf("\n*** SKIPPED op %s: the CPU reference op is not implemented (NULL) ***\n\n", op);
    g_skipped_ops++;
    return 0;
}

static float frand(unsigned *s) { /* uniform in [-1, 1) */
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffffff) / 8388608.f - 1.f;
}

static float round_to(float v, dm_dtype p) {
    if (p == DM_DTYPE_F16) return dm_f16_to_f32(dm_f32_to_f16(v));
    if (p == DM_DTYPE_BF16) return dm_bf16_to_f32(dm_f32_to_bf16(v));
    return v;
}

/* Host f32 tensor, uniform in [offset - amp, offset + amp), rounded to precision p. */
static dm_tensor host_rand(int ndim, const int64_t *shape, float amp, float offset, dm_dtype p,
                           unsigned seed) {
    dm_tensor t;
    CHECK_OK(dm_tensor_alloc(&t, DM_DTYPE_F32, ndim, shape));
    for (int64_t i = 0; i < dm_tensor_numel(&t); i++)
        dm_f32(&t)[i] = round_to(offset + amp * frand(&seed), p);
    return t;
}

static dm_tensor host_zeros(int ndim, const int64_t *shape) {
    dm_tensor t;
    CHECK_OK(dm_tensor_alloc(&t, DM_DTYPE_F32, ndim, shape));
    return t;
}

/* Device copy of a host tensor in dtype dt (dm_copy converts). */
static dm_tensor up(const dm_tensor *h, dm_dtype dt) {
    dm_tensor d;
    CHECK_OK(dm_alloc(g_gpu, &d, dt, h->ndim, h->shape));
    CHECK_OK(dm_copy(g_gpu, h, &d));
    return d;
}

static dm_tensor gpu_zeros(int ndim, const int64_t *shape, dm_dtype dt) {
    dm_tensor d;
    CHECK_OK(dm_alloc(g_gpu, &d, dt, ndim, shape));
    return d;
}

static double max_abs(const dm_tensor *t) {
    double m = 0;
    for (int64_t i = 0; i < dm_tensor_numel(t); i++) m = fmax(m, fabs(dm_f32(t)[i]));
    return m;
}

/* Downloads d, compares with ref at factor(p) * max|ref|, frees d. */
static void check_against(const char *op, const char *what, dm_tensor *d, const dm_tensor *ref,
                          dm_dtype p) {
    char name[96];
    snprintf(name, sizeof name, "%s %s %s", op, what, dm_dtype_name(p));
    dm_tensor got = host_zeros(d->ndim, d->shape);
    CHECK_OK(dm_copy(g_gpu, d, &got));
    double scale = max_abs(ref);
    tc_compare(name, dm_f32(&got), dm_f32(ref), dm_tensor_numel(ref),
               tol_factor(p) * (scale > 0 ? scale : 1.0), NULL);
    dm_tensor_free(&got);
    dm_cuda_tensor_free(d);
}

/* ---- conv2d / conv_transpose2d ------------------------------------------------------------ */

static void test_conv2d(const char *what, int N, int Cin, int Cout, int H, int W, int k, int s,
                        int pad, int dil, int g, int bias, dm_act act) {
    if (!cpu_has((void *)g_cpu->ops->conv2d, "conv2d")) return;
    dm_conv2d_params prm = {s, s, pad, pad, dil, dil, g, act};
    int Ho = (H + 2 * pad - dil * (k - 1) - 1) / s + 1, Wo = (W + 2 * pad - dil * (k - 1) - 1) / s + 1;
    int64_t xs[4] = {N, Cin, H, W}, ws[4] = {Cout, Cin / g, k, k}, bs[1] = {Cout},
            ys[4] = {N, Cout, Ho, Wo};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(4, xs, 1.f, 0.f, p, 1u + pi);
        dm_tensor w = host_rand(4, ws, sqrtf(3.f / (Cin / g * k * k)), 0.f, p, 2u + pi);
        dm_tensor b = host_rand(1, bs, 0.1f, 0.f, p, 3u + pi);
        dm_tensor ref = host_zeros(4, ys);
        CHECK_OK(dm_conv2d(g_cpu, &x, &w, bias ? &b : NULL, &prm, &ref));
        dm_tensor dx = up(&x, p), dw = up(&w, p), db = up(&b, p), dy = gpu_zeros(4, ys, p);
        CHECK_OK(dm_conv2d(g_gpu, &dx, &dw, bias ? &db : NULL, &prm, &dy));
        check_against("conv2d", what, &dy, &ref, p);
        if (p == DM_DTYPE_F16) { /* mixed: f16 x, f32 weight and bias, f32 output */
            dm_tensor dw32 = up(&w, DM_DTYPE_F32), db32 = up(&b, DM_DTYPE_F32);
            dm_tensor dy32 = gpu_zeros(4, ys, DM_DTYPE_F32);
            CHECK_OK(dm_conv2d(g_gpu, &dx, &dw32, bias ? &db32 : NULL, &prm, &dy32));
            check_against("conv2d", "mixed f16/f32 ->f32", &dy32, &ref, p);
            dm_cuda_tensor_free(&dw32);
            dm_cuda_tensor_free(&db32);
        }
        dm_cuda_tensor_free(&dx);
        dm_cuda_tensor_free(&dw);
        dm_cuda_tensor_free(&db);
        dm_tensor_free(&x);
        dm_tensor_free(&w);
        dm_tensor_free(&b);
        dm_tensor_free(&ref);
    }
}

static void test_conv_transpose2d(int N, int Cin, int Cout, int H, int W, int k, int s, int pad) {
    if (!cpu_has((void *)g_cpu->ops->conv_transpose2d, "conv_transpose2d")) return;
    int Ho = (H - 1) * s - 2 * pad + k, Wo = (W - 1) * s - 2 * pad + k;
    int64_t xs[4] = {N, Cin, H, W}, ws[4] = {Cin, Cout, k, k}, bs[1] = {Cout},
            ys[4] = {N, Cout, Ho, Wo};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(4, xs, 1.f, 0.f, p, 11u + pi);
        dm_tensor w = host_rand(4, ws, sqrtf(3.f / Cin), 0.f, p, 12u + pi);
        dm_tensor b = host_rand(1, bs, 0.1f, 0.f, p, 13u + pi);
        dm_tensor ref = host_zeros(4, ys);
        CHECK_OK(dm_conv_transpose2d(g_cpu, &x, &w, &b, s, pad, &ref));
        dm_tensor dx = up(&x, p), dw = up(&w, p), db = up(&b, p), dy = gpu_zeros(4, ys, p);
        CHECK_OK(dm_conv_transpose2d(g_gpu, &dx, &dw, &db, s, pad, &dy));
        char what[32];
        snprintf(what, sizeof what, "k%d s%d p%d", k, s, pad);
        check_against("conv_transpose2d", what, &dy, &ref, p);
        dm_cuda_tensor_free(&dx);
        dm_cuda_tensor_free(&dw);
        dm_cuda_tensor_free(&db);
        dm_tensor_free(&x);
        dm_tensor_free(&w);
        dm_tensor_free(&b);
        dm_tensor_free(&ref);
    }
}

/* ---- linear ------------------------------------------------------------------------------- */

static void test_linear(const char *what, int B, int T, int K, int N, int bias, dm_act act) {
    if (!cpu_has((void *)g_cpu->ops->linear, "linear")) return;
    int64_t xs[3] = {B, T, K}, ws[2] = {N, K}, bs[1] = {N}, ys[3] = {B, T, N};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(3, xs, 1.f, 0.f, p, 21u + pi);
        dm_tensor w = host_rand(2, ws, sqrtf(3.f / K), 0.f, p, 22u + pi);
        dm_tensor b = host_rand(1, bs, 0.1f, 0.f, p, 23u + pi);
        dm_tensor ref = host_zeros(3, ys);
        CHECK_OK(dm_linear(g_cpu, &x, &w, bias ? &b : NULL, act, &ref));
        dm_tensor dx = up(&x, p), dw = up(&w, p), db = up(&b, p), dy = gpu_zeros(3, ys, p);
        CHECK_OK(dm_linear(g_gpu, &dx, &dw, bias ? &db : NULL, act, &dy));
        check_against("linear", what, &dy, &ref, p);
        if (p != DM_DTYPE_F32) { /* f16/bf16 inputs straight into an f32 output */
            dm_tensor dy32 = gpu_zeros(3, ys, DM_DTYPE_F32);
            CHECK_OK(dm_linear(g_gpu, &dx, &dw, bias ? &db : NULL, act, &dy32));
            check_against("linear", "->f32 output", &dy32, &ref, p);
        }
        dm_cuda_tensor_free(&dx);
        dm_cuda_tensor_free(&dw);
        dm_cuda_tensor_free(&db);
        dm_tensor_free(&x);
        dm_tensor_free(&w);
        dm_tensor_free(&b);
        dm_tensor_free(&ref);
    }
}

/* ---- norms -------------------------------------------------------------------------------- */

static void test_layernorm(int rows, int C, float offset) {
    if (!cpu_has((void *)g_cpu->ops->layernorm, "layernorm")) return;
    int64_t xs[2] = {rows, C}, cs[1] = {C};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(2, xs, 2.f, offset, p, 31u + pi);
        dm_tensor g = host_rand(1, cs, 0.1f, 1.f, p, 32u + pi);
        dm_tensor b = host_rand(1, cs, 0.1f, 0.f, p, 33u + pi);
        dm_tensor ref = host_zeros(2, xs);
        CHECK_OK(dm_layernorm(g_cpu, &x, &g, &b, 1e-6f, &ref));
        dm_tensor dx = up(&x, p), dg = up(&g, p), db = up(&b, p), dy = gpu_zeros(2, xs, p);
        CHECK_OK(dm_layernorm(g_gpu, &dx, &dg, &db, 1e-6f, &dy));
        check_against("layernorm", offset != 0 ? "mean-offset" : "plain", &dy, &ref, p);
        dm_cuda_tensor_free(&dx);
        dm_cuda_tensor_free(&dg);
        dm_cuda_tensor_free(&db);
        dm_tensor_free(&x);
        dm_tensor_free(&g);
        dm_tensor_free(&b);
        dm_tensor_free(&ref);
    }
}

static void test_groupnorm(int N, int C, int H, int W, int groups) {
    if (!cpu_has((void *)g_cpu->ops->groupnorm, "groupnorm")) return;
    int64_t xs[4] = {N, C, H, W}, cs[1] = {C};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(4, xs, 1.5f, 0.5f, p, 41u + pi);
        dm_tensor g = host_rand(1, cs, 0.1f, 1.f, p, 42u + pi);
        dm_tensor b = host_rand(1, cs, 0.1f, 0.f, p, 43u + pi);
        dm_tensor ref = host_zeros(4, xs);
        CHECK_OK(dm_groupnorm(g_cpu, &x, groups, &g, &b, 1e-6f, &ref));
        dm_tensor dx = up(&x, p), dg = up(&g, p), db = up(&b, p), dy = gpu_zeros(4, xs, p);
        CHECK_OK(dm_groupnorm(g_gpu, &dx, groups, &dg, &db, 1e-6f, &dy));
        char what[32];
        snprintf(what, sizeof what, "G%d", groups);
        check_against("groupnorm", what, &dy, &ref, p);
        dm_cuda_tensor_free(&dx);
        dm_cuda_tensor_free(&dg);
        dm_cuda_tensor_free(&db);
        dm_tensor_free(&x);
        dm_tensor_free(&g);
        dm_tensor_free(&b);
        dm_tensor_free(&ref);
    }
}

/* ---- elementwise -------------------------------------------------------------------------- */

static void test_activation(void) {
    if (!cpu_has((void *)g_cpu->ops->activation, "activation")) return;
    static const char *names[] = {"none", "relu", "hardswish", "hardsigmoid", "sigmoid", "tanh",
                                  "gelu"};
    int64_t xs[1] = {4099};
    for (int a = DM_ACT_NONE; a <= DM_ACT_GELU; a++)
        for (int pi = 0; pi < 3; pi++) {
            dm_dtype p = k_precs[pi];
            dm_tensor x = host_rand(1, xs, 6.f, 0.f, p, 51u + pi);
            dm_tensor ref = host_zeros(1, xs);
            CHECK_OK(dm_activation(g_cpu, &x, (dm_act)a, &ref));
            dm_tensor dx = up(&x, p);
            CHECK_OK(dm_activation(g_gpu, &dx, (dm_act)a, &dx)); /* in place */
            check_against("activation", names[a], &dx, &ref, p);
            dm_tensor_free(&x);
            dm_tensor_free(&ref);
        }
}

static void test_binary(void) {
    if (!cpu_has((void *)g_cpu->ops->binary, "binary")) return;
    static const char *names[] = {"add", "sub", "mul"};
    int64_t as[3] = {2, 37, 96}, bs_full[3] = {2, 37, 96}, bs_bc[1] = {96};
    for (int op = DM_BINARY_ADD; op <= DM_BINARY_MUL; op++)
        for (int bc = 0; bc < 2; bc++)
            for (int pi = 0; pi < 3; pi++) {
                dm_dtype p = k_precs[pi];
                dm_tensor a = host_rand(3, as, 2.f, 0.f, p, 61u + pi);
                dm_tensor b = bc ? host_rand(1, bs_bc, 2.f, 0.f, p, 62u + pi)
                                 : host_rand(3, bs_full, 2.f, 0.f, p, 62u + pi);
                dm_tensor ref = host_zeros(3, as);
                CHECK_OK(dm_binary(g_cpu, &a, &b, (dm_binary_op)op, &ref));
                dm_tensor da = up(&a, p), db = up(&b, p), dy = gpu_zeros(3, as, p);
                CHECK_OK(dm_binary(g_gpu, &da, &db, (dm_binary_op)op, &dy));
                char what[32];
                snprintf(what, sizeof what, "%s%s", names[op], bc ? " broadcast" : "");
                check_against("binary", what, &dy, &ref, p);
                dm_cuda_tensor_free(&da);
                dm_cuda_tensor_free(&db);
                dm_tensor_free(&a);
                dm_tensor_free(&b);
                dm_tensor_free(&ref);
            }
}

static void test_concat(void) {
    if (!cpu_has((void *)g_cpu->ops->concat, "concat")) return;
    int64_t as[4] = {2, 3, 5, 7}, bs[4] = {2, 4, 5, 7}, ys[4] = {2, 7, 5, 7};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor a = host_rand(4, as, 1.f, 0.f, p, 71u + pi);
        dm_tensor b = host_rand(4, bs, 1.f, 0.f, p, 72u + pi);
        dm_tensor ref = host_zeros(4, ys);
        CHECK_OK(dm_concat(g_cpu, &a, &b, &ref));
        dm_tensor da = up(&a, p), db = up(&b, p), dy = gpu_zeros(4, ys, p);
        CHECK_OK(dm_concat(g_gpu, &da, &db, &dy));
        check_against("concat", "dim1", &dy, &ref, p);
        dm_cuda_tensor_free(&da);
        dm_cuda_tensor_free(&db);
        dm_tensor_free(&a);
        dm_tensor_free(&b);
        dm_tensor_free(&ref);
    }
}

/* ---- attention ---------------------------------------------------------------------------- */

static void test_attention(int B, int Hd, int Tq, int Tk, int D) {
    if (!cpu_has((void *)g_cpu->ops->attention, "attention")) return;
    int64_t qs[4] = {B, Hd, Tq, D}, ks[4] = {B, Hd, Tk, D};
    const float scale = 1.f / sqrtf((float)D);
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        /* amplitude 2: scores up to ~4*sqrt(D)*scale, a peaked softmax like trained heads */
        dm_tensor q = host_rand(4, qs, 2.f, 0.f, p, 81u + pi);
        dm_tensor k = host_rand(4, ks, 2.f, 0.f, p, 82u + pi);
        dm_tensor v = host_rand(4, ks, 1.f, 0.f, p, 83u + pi);
        dm_tensor ref = host_zeros(4, qs);
        CHECK_OK(dm_attention(g_cpu, &q, &k, &v, scale, &ref));
        dm_tensor dq = up(&q, p), dk = up(&k, p), dv = up(&v, p), dy = gpu_zeros(4, qs, p);
        CHECK_OK(dm_attention(g_gpu, &dq, &dk, &dv, scale, &dy));
        char what[48];
        snprintf(what, sizeof what, "Tq%d Tk%d D%d", Tq, Tk, D);
        check_against("attention", what, &dy, &ref, p);
        dm_cuda_tensor_free(&dq);
        dm_cuda_tensor_free(&dk);
        dm_cuda_tensor_free(&dv);
        dm_tensor_free(&q);
        dm_tensor_free(&k);
        dm_tensor_free(&v);
        dm_tensor_free(&ref);
    }
}

/* ---- resize / pooling --------------------------------------------------------------------- */

static void test_resize(const char *what, int H, int W, int Ho, int Wo, dm_resize_mode mode,
                        int align_corners, double sh, double sw) {
    if (!cpu_has((void *)g_cpu->ops->resize, "resize")) return;
    int64_t xs[4] = {2, 3, H, W}, ys[4] = {2, 3, Ho, Wo};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(4, xs, 1.f, 0.f, p, 91u + pi);
        dm_tensor ref = host_zeros(4, ys);
        CHECK_OK(dm_resize(g_cpu, &x, mode, align_corners, sh, sw, &ref));
        dm_tensor dx = up(&x, p), dy = gpu_zeros(4, ys, p);
        CHECK_OK(dm_resize(g_gpu, &dx, mode, align_corners, sh, sw, &dy));
        check_against("resize", what, &dy, &ref, p);
        dm_cuda_tensor_free(&dx);
        dm_tensor_free(&x);
        dm_tensor_free(&ref);
    }
}

static void test_avgpool2d(int H, int W, int k, int s) {
    if (!cpu_has((void *)g_cpu->ops->avgpool2d, "avgpool2d")) return;
    int Ho = (H - k + s - 1) / s + 1, Wo = (W - k + s - 1) / s + 1;
    if ((Ho - 1) * s >= H) Ho--;
    if ((Wo - 1) * s >= W) Wo--;
    int64_t xs[4] = {2, 5, H, W}, ys[4] = {2, 5, Ho, Wo};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(4, xs, 1.f, 0.f, p, 101u + pi);
        dm_tensor ref = host_zeros(4, ys);
        CHECK_OK(dm_avgpool2d(g_cpu, &x, k, s, &ref));
        dm_tensor dx = up(&x, p), dy = gpu_zeros(4, ys, p);
        CHECK_OK(dm_avgpool2d(g_gpu, &dx, k, s, &dy));
        char what[48];
        snprintf(what, sizeof what, "%dx%d k%d s%d", H, W, k, s);
        check_against("avgpool2d", what, &dy, &ref, p);
        dm_cuda_tensor_free(&dx);
        dm_tensor_free(&x);
        dm_tensor_free(&ref);
    }
}

/* ---- RVM ops and permute ------------------------------------------------------------------ */

static void test_global_avgpool_affine(void) {
    int64_t xs[4] = {2, 12, 9, 23}, ys[4] = {2, 12, 1, 1}, cs[1] = {12}, ncs[1] = {24};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(4, xs, 1.f, 0.3f, p, 141u + pi);
        dm_tensor dx = up(&x, p);
        if (cpu_has((void *)g_cpu->ops->global_avgpool2d, "global_avgpool2d")) {
            dm_tensor ref = host_zeros(4, ys), dy = gpu_zeros(4, ys, p);
            CHECK_OK(dm_global_avgpool2d(g_cpu, &x, &ref));
            CHECK_OK(dm_global_avgpool2d(g_gpu, &dx, &dy));
            check_against("global_avgpool2d", "9x23", &dy, &ref, p);
            dm_tensor_free(&ref);
        }
        if (cpu_has((void *)g_cpu->ops->channel_affine, "channel_affine")) {
            dm_tensor sc = host_rand(1, cs, 1.f, 0.f, p, 142u + pi);
            dm_tensor sn = host_rand(1, ncs, 1.f, 0.f, p, 143u + pi);
            dm_tensor sh = host_rand(1, cs, 1.f, 0.f, p, 144u + pi);
            dm_tensor dsc = up(&sc, p), dsn = up(&sn, p), dsh = up(&sh, p);
            for (int v = 0; v < 3; v++) { /* per-channel + shift, per-image gate, shift only */
                const dm_tensor *hs = v == 0 ? &sc : (v == 1 ? &sn : NULL);
                const dm_tensor *ds = v == 0 ? &dsc : (v == 1 ? &dsn : NULL);
                dm_tensor ref = host_zeros(4, xs), dy = gpu_zeros(4, xs, p);
                CHECK_OK(dm_channel_affine(g_cpu, &x, hs, v == 1 ? NULL : &sh, &ref));
                CHECK_OK(dm_channel_affine(g_gpu, &dx, ds, v == 1 ? NULL : &dsh, &dy));
                check_against("channel_affine",
                              v == 0 ? "scale C + shift" : (v == 1 ? "scale N*C" : "shift"), &dy,
                              &ref, p);
                dm_tensor_free(&ref);
            }
            dm_cuda_tensor_free(&dsc);
            dm_cuda_tensor_free(&dsn);
            dm_cuda_tensor_free(&dsh);
            dm_tensor_free(&sc);
            dm_tensor_free(&sn);
            dm_tensor_free(&sh);
        }
        dm_cuda_tensor_free(&dx);
        dm_tensor_free(&x);
    }
}

static void test_permute(int ndim, const int64_t *xs, const int *perm) {
    if (!cpu_has((void *)g_cpu->ops->permute, "permute")) return;
    int64_t ys[DM_MAX_DIMS];
    for (int i = 0; i < ndim; i++) ys[i] = xs[perm[i]];
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(ndim, xs, 1.f, 0.f, p, 151u + pi), ref = host_zeros(ndim, ys);
        CHECK_OK(dm_permute(g_cpu, &x, perm, &ref));
        dm_tensor dx = up(&x, p), dy = gpu_zeros(ndim, ys, p);
        CHECK_OK(dm_permute(g_gpu, &dx, perm, &dy));
        char what[32];
        snprintf(what, sizeof what, "%dd", ndim);
        check_against("permute", what, &dy, &ref, p);
        dm_cuda_tensor_free(&dx);
        dm_tensor_free(&x);
        dm_tensor_free(&ref);
    }
}

static void test_image_from_u8(void) {
    if (!cpu_has((void *)g_cpu->ops->image_from_u8, "image_from_u8")) return;
    int64_t rs[4] = {2, 17, 29, 3}, ys[4] = {2, 3, 17, 29};
    dm_tensor rgb;
    CHECK_OK(dm_tensor_alloc(&rgb, DM_DTYPE_U8, 4, rs));
    unsigned seed = 161u;
    for (int64_t i = 0; i < dm_tensor_numel(&rgb); i++)
        ((uint8_t *)rgb.data)[i] = (uint8_t)((frand(&seed) + 1.f) * 127.99f);
    dm_tensor ref = host_zeros(4, ys);
    CHECK_OK(dm_image_from_u8(g_cpu, &rgb, &ref));
    for (int pi = 0; pi < 3; pi++) {
        dm_tensor dy = gpu_zeros(4, ys, k_precs[pi]);
        CHECK_OK(dm_image_from_u8(g_gpu, &rgb, &dy));
        check_against("image_from_u8", "rgb", &dy, &ref, k_precs[pi]);
    }
    dm_tensor_free(&rgb);
    dm_tensor_free(&ref);
}

static void test_guided(void) {
    const int N = 2, K = 4, h = 9, w = 16, H = 36, W = 64;
    int64_t ms[4] = {N, 4 * K, h, w}, as[4] = {N, K, h, w}, ss[4] = {N, 3, H, W},
            fs[4] = {N, 3, H, W}, ps[4] = {N, 1, H, W}, bs_full[4] = {N, 4, H, W};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        if (cpu_has((void *)g_cpu->ops->guided_coeffs, "guided_coeffs")) {
            /* box means of a real-looking guide: mean_xx >= mean_x^2 (variance >= 0) */
            dm_tensor m = host_rand(4, ms, 0.5f, 0.5f, p, 171u + pi);
            const int64_t hw = (int64_t)h * w;
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++)
                    for (int64_t i = 0; i < hw; i++) {
                        float *mx = dm_f32(&m) + ((int64_t)n * 4 * K + k) * hw + i;
                        float v = mx[(int64_t)3 * K * hw];
                        /* variance >= 0.02 stays positive after bf16 rounding of mean_xx
                         * (half-ulp 0.002 at 1), so a = cov / var stays well inside f16 range */
                        mx[(int64_t)3 * K * hw] = round_to(mx[0] * mx[0] + 0.02f + 0.05f * v, p);
                    }
            dm_tensor ra = host_zeros(4, as), rb = host_zeros(4, as);
            CHECK_OK(dm_guided_coeffs(g_cpu, &m, 1e-5f, &ra, &rb));
            dm_tensor dm_ = up(&m, p), da = gpu_zeros(4, as, p), db = gpu_zeros(4, as, p);
            CHECK_OK(dm_guided_coeffs(g_gpu, &dm_, 1e-5f, &da, &db));
            check_against("guided_coeffs", "a", &da, &ra, p);
            check_against("guided_coeffs", "b", &db, &rb, p);
            dm_cuda_tensor_free(&dm_);
            dm_tensor_free(&m);
            dm_tensor_free(&ra);
            dm_tensor_free(&rb);
        }
        if (cpu_has((void *)g_cpu->ops->matting_compose, "matting_compose")) {
            int64_t cs[4] = {N, 4, h, w};
            dm_tensor a = host_rand(4, cs, 1.f, 0.f, p, 181u + pi);
            dm_tensor b = host_rand(4, cs, 0.6f, 0.2f, p, 182u + pi);
            dm_tensor bfull = host_rand(4, bs_full, 0.6f, 0.2f, p, 183u + pi);
            dm_tensor src = host_rand(4, ss, 0.5f, 0.5f, p, 184u + pi);
            dm_tensor da = up(&a, p), db = up(&b, p), dbf = up(&bfull, p), ds = up(&src, p);
            for (int v = 0; v < 2; v++) { /* with a (upsampled), without a (noDGF path) */
                dm_tensor rf = host_zeros(4, fs), rp = host_zeros(4, ps);
                CHECK_OK(dm_matting_compose(g_cpu, v ? NULL : &a, v ? &bfull : &b, &src, &rf, &rp));
                dm_tensor df = gpu_zeros(4, fs, p), dp = gpu_zeros(4, ps, p);
                CHECK_OK(dm_matting_compose(g_gpu, v ? NULL : &da, v ? &dbf : &db, &ds, &df, &dp));
                check_against("matting_compose", v ? "fgr (no a)" : "fgr", &df, &rf, p);
                check_against("matting_compose", v ? "pha (no a)" : "pha", &dp, &rp, p);
                dm_tensor_free(&rf);
                dm_tensor_free(&rp);
            }
            dm_cuda_tensor_free(&da);
            dm_cuda_tensor_free(&db);
            dm_cuda_tensor_free(&dbf);
            dm_cuda_tensor_free(&ds);
            dm_tensor_free(&a);
            dm_tensor_free(&b);
            dm_tensor_free(&bfull);
            dm_tensor_free(&src);
        }
    }
}

/* ---- backend-only helpers: softmax, copies, non-finite count, queries, errors -------------- */

static void test_softmax(int rows, int C) {
    int64_t xs[2] = {rows, C};
    for (int pi = 0; pi < 3; pi++) {
        dm_dtype p = k_precs[pi];
        dm_tensor x = host_rand(2, xs, 8.f, 0.f, p, 111u + pi), ref = host_zeros(2, xs);
        for (int r = 0; r < rows; r++) { /* naive reference in double */
            const float *xr = dm_f32(&x) + (size_t)r * C;
            double m = -INFINITY, s = 0;
            for (int c = 0; c < C; c++) m = fmax(m, xr[c]);
            for (int c = 0; c < C; c++) s += exp(xr[c] - m);
            for (int c = 0; c < C; c++) dm_f32(&ref)[(size_t)r * C + c] = (float)(exp(xr[c] - m) / s);
        }
        dm_tensor dx = up(&x, p), dy = gpu_zeros(2, xs, p);
        CHECK_OK(dm_cuda_softmax(g_gpu, &dx, &dy));
        check_against("softmax", "rows", &dy, &ref, p);
        dm_cuda_tensor_free(&dx);
        dm_tensor_free(&x);
        dm_tensor_free(&ref);
    }
}

/* Conversions must equal the host's round-to-nearest-even converters bit for bit. */
static void test_copies(void) {
    int64_t n[1] = {1000};
    dm_tensor x = host_rand(1, n, 60000.f, 0.f, DM_DTYPE_F32, 121u); /* f16 range: max 65504 */
    for (int i = 0; i < 8; i++) dm_f32(&x)[i] = ldexpf(1.f, -20 - i); /* f16 subnormals */
    const dm_dtype dts[2] = {DM_DTYPE_F16, DM_DTYPE_BF16};
    for (int di = 0; di < 2; di++) {
        dm_tensor dev = up(&x, dts[di]), back = host_zeros(1, n), host_cast;
        CHECK_OK(dm_copy(g_gpu, &dev, &back)); /* device -> host with conversion to f32 */
        CHECK_OK(dm_tensor_alloc(&host_cast, dts[di], 1, n));
        CHECK_OK(dm_copy(g_cpu, &x, &host_cast));
        dm_tensor want = host_zeros(1, n);
        CHECK_OK(dm_copy(g_cpu, &host_cast, &want));
        char name[48];
        snprintf(name, sizeof name, "copy f32->%s->f32", dm_dtype_name(dts[di]));
        tc_compare(name, dm_f32(&back), dm_f32(&want), n[0], 0.0, NULL); /* bit-exact */
        /* device -> device conversion and a same-dtype device copy */
        dm_tensor d32 = gpu_zeros(1, n, DM_DTYPE_F32), d2 = gpu_zeros(1, n, dts[di]);
        CHECK_OK(dm_copy(g_gpu, &dev, &d32));
        CHECK_OK(dm_copy(g_gpu, &dev, &d2));
        dm_tensor b2 = host_zeros(1, n), b3 = host_zeros(1, n);
        CHECK_OK(dm_copy(g_gpu, &d32, &b2));
        CHECK_OK(dm_copy(g_gpu, &d2, &b3));
        tc_compare("copy device->device convert", dm_f32(&b2), dm_f32(&want), n[0], 0.0, NULL);
        tc_compare("copy device->device same", dm_f32(&b3), dm_f32(&want), n[0], 0.0, NULL);
        dm_cuda_tensor_free(&dev);
        dm_cuda_tensor_free(&d32);
        dm_cuda_tensor_free(&d2);
        dm_tensor_free(&back);
        dm_tensor_free(&host_cast);
        dm_tensor_free(&want);
        dm_tensor_free(&b2);
        dm_tensor_free(&b3);
    }
    /* u8 frames up to f32 on the device */
    dm_tensor u8;
    int64_t un[1] = {256};
    CHECK_OK(dm_tensor_alloc(&u8, DM_DTYPE_U8, 1, un));
    for (int i = 0; i < 256; i++) ((uint8_t *)u8.data)[i] = (uint8_t)i;
    dm_tensor du = gpu_zeros(1, un, DM_DTYPE_F32), hu = host_zeros(1, un), wu = host_zeros(1, un);
    CHECK_OK(dm_copy(g_gpu, &u8, &du));
    CHECK_OK(dm_copy(g_gpu, &du, &hu));
    for (int i = 0; i < 256; i++) dm_f32(&wu)[i] = (float)i;
    tc_compare("copy u8->f32", dm_f32(&hu), dm_f32(&wu), 256, 0.0, NULL);
    dm_cuda_tensor_free(&du);
    dm_tensor_free(&u8);
    dm_tensor_free(&hu);
    dm_tensor_free(&wu);
    dm_tensor_free(&x);
}

static void test_nonfinite(void) {
    int64_t n[1] = {100003};
    dm_tensor x = host_rand(1, n, 1.f, 0.f, DM_DTYPE_F32, 131u);
    dm_f32(&x)[0] = NAN;
    dm_f32(&x)[5000] = INFINITY;
    dm_f32(&x)[n[0] - 1] = -INFINITY;
    dm_f32(&x)[77777] = NAN;
    for (int pi = 0; pi < 3; pi++) {
        dm_tensor d = up(&x, k_precs[pi]);
        int64_t count = -1;
        CHECK_OK(dm_cuda_count_nonfinite(g_gpu, &d, &count));
        printf("count_nonfinite %-4s: %lld (want 4)\n", dm_dtype_name(k_precs[pi]),
               (long long)count);
        CHECK(count == 4);
        dm_cuda_tensor_free(&d);
    }
    dm_tensor_free(&x);
}

static void test_queries_and_errors(void) {
    char name[256], uuid[64];
    size_t free_b = 0, total_b = 0;
    CHECK_OK(dm_cuda_device_name(0, name, sizeof name));
    CHECK_OK(dm_cuda_device_uuid(0, uuid, sizeof uuid));
    CHECK_OK(dm_cuda_device_memory(0, &free_b, &total_b));
    printf("device 0: %s, %s, %.1f / %.1f GiB free\n", name, uuid, free_b / 1073741824.0,
           total_b / 1073741824.0);
    CHECK(name[0] != '\0');
    CHECK(strncmp(uuid, "GPU-", 4) == 0 && strlen(uuid) == 40);
    CHECK(total_b > 0 && free_b > 0 && free_b <= total_b);
    CHECK(dm_cuda_device_name(1 << 20, name, sizeof name) == DM_ERR_ARG);
    CHECK(dm_backend_cuda_precision(g_gpu) == DM_DTYPE_F32);
    CHECK(dm_backend_cuda_stream(g_gpu) != NULL);
    /* shape errors are reported, not crashed on */
    int64_t xs[4] = {1, 4, 8, 8}, ws[4] = {4, 4, 3, 3}, bad[4] = {1, 4, 7, 7};
    dm_tensor x = gpu_zeros(4, xs, DM_DTYPE_F32), w = gpu_zeros(4, ws, DM_DTYPE_F32),
              y = gpu_zeros(4, bad, DM_DTYPE_F32);
    dm_conv2d_params prm = dm_conv2d_params_make(1, 1, 1, DM_ACT_NONE);
    CHECK(dm_conv2d(g_gpu, &x, &w, NULL, &prm, &y) == DM_ERR_SHAPE);
    printf("expected error: %s\n", dm_error_message());
    dm_tensor hx = host_zeros(4, xs); /* a CPU tensor handed to a CUDA op */
    CHECK(dm_activation(g_gpu, &hx, DM_ACT_RELU, &x) == DM_ERR_UNSUPPORTED);
    CHECK_OK(dm_synchronize(g_gpu));
    dm_tensor_free(&hx);
    dm_cuda_tensor_free(&x);
    dm_cuda_tensor_free(&w);
    dm_cuda_tensor_free(&y);
}

int main(void) {
    int count = 0;
    dm_status st = dm_cuda_device_count(&count);
    if (st != DM_OK) return tc_skip(dm_error_message());
    if (count == 0) return tc_skip("no CUDA device visible (cudaGetDeviceCount = 0): GPU op tests "
                                   "need a GPU machine, see docs/gpu.md");
    g_cpu = dm_backend_cpu_create(0);
    CHECK(g_cpu != NULL);
    if ((st = dm_backend_cuda_create(0, DM_DTYPE_F32, &g_gpu))) {
        fprintf(stderr, "dm_backend_cuda_create: %s\n", dm_error_message());
        return 1;
    }
    test_queries_and_errors();
    test_copies();
    test_nonfinite();
    /* conv2d: the configurations of RVM's MobileNetV3/LR-ASPP/decoder and the DPT head */
    test_conv2d("3x3 bias relu (fused f32)", 2, 16, 32, 17, 19, 3, 1, 1, 1, 1, 1, DM_ACT_RELU);
    test_conv2d("3x3 s2 bias hardswish", 1, 16, 24, 33, 31, 3, 2, 1, 1, 1, 1, DM_ACT_HARDSWISH);
    test_conv2d("depthwise 5x5", 1, 24, 24, 20, 18, 5, 1, 2, 1, 24, 0, DM_ACT_NONE);
    test_conv2d("depthwise dilated 3x3 d2", 1, 16, 16, 15, 15, 3, 1, 2, 2, 16, 1, DM_ACT_RELU);
    test_conv2d("1x1 bias hardsigmoid", 2, 40, 64, 9, 16, 1, 1, 0, 1, 1, 1, DM_ACT_HARDSIGMOID);
    test_conv2d("grouped g4", 1, 32, 16, 12, 10, 3, 1, 1, 1, 4, 1, DM_ACT_SIGMOID);
    test_conv2d("3x3 no bias none", 1, 3, 16, 37, 37, 3, 1, 1, 1, 1, 0, DM_ACT_NONE);
    /* conv_transpose2d: DPT's resize layers (k4 s4, k2 s2) */
    test_conv_transpose2d(1, 48, 48, 9, 7, 4, 4, 0);
    test_conv_transpose2d(2, 32, 16, 6, 5, 2, 2, 0);
    test_conv_transpose2d(1, 8, 4, 5, 5, 3, 2, 1);
    /* linear: ViT-S qkv / MLP, VDA GEGLU, an unaligned inner size */
    test_linear("qkv bias", 1, 101, 384, 1152, 1, DM_ACT_NONE);
    test_linear("fc1 bias gelu", 2, 37, 384, 1536, 1, DM_ACT_GELU);
    test_linear("relu no bias", 3, 5, 64, 40, 0, DM_ACT_RELU);
    test_linear("odd K N", 1, 33, 36, 20, 1, DM_ACT_TANH);
    test_layernorm(101, 384, 0.f);
    test_layernorm(64, 384, 20.f);
    test_layernorm(7, 1000, 0.f);
    test_groupnorm(3, 64, 5, 7, 32);
    test_groupnorm(32, 192, 3, 5, 32);
    test_groupnorm(2, 16, 9, 9, 4);
    test_activation();
    test_binary();
    test_concat();
    test_attention(1, 6, 101, 101, 64);  /* DINOv2-S, small image */
    test_attention(2, 2, 33, 70, 64);    /* Tq != Tk, partial tiles */
    test_attention(15, 8, 32, 32, 24);   /* VDA motion module, C=192 */
    test_attention(60, 8, 32, 32, 8);    /* VDA motion module, C=64 */
    test_attention(1, 1, 20, 45, 128);   /* the D <= 128 kernel */
    test_attention(1, 1, 5, 3, 48);      /* tiny */
    test_resize("bilinear up ac0", 9, 13, 20, 31, DM_RESIZE_BILINEAR, 0, 0, 0);
    test_resize("bilinear down ac0", 36, 64, 18, 32, DM_RESIZE_BILINEAR, 0, 0, 0);
    test_resize("bilinear ac1", 10, 17, 140, 140, DM_RESIZE_BILINEAR, 1, 0, 0);
    test_resize("bilinear scale 0.5", 45, 80, 22, 40, DM_RESIZE_BILINEAR, 0, 0.5, 0.5);
    test_resize("bicubic pos-embed", 37, 37, 10, 10, DM_RESIZE_BICUBIC, 0, (10 + 0.1) / 37,
                (10 + 0.1) / 37);
    test_resize("bicubic up ac0", 7, 9, 16, 21, DM_RESIZE_BICUBIC, 0, 0, 0);
    test_resize("bicubic ac1", 7, 9, 16, 21, DM_RESIZE_BICUBIC, 1, 0, 0);
    test_avgpool2d(9, 16, 2, 2);
    test_avgpool2d(18, 31, 2, 2);
    test_avgpool2d(11, 11, 3, 2);
    test_softmax(37, 101);
    test_global_avgpool_affine();
    {
        const int64_t s4[4] = {2, 3, 4, 5}, s5[5] = {2, 5, 3, 4, 8};
        const int p4[4] = {0, 2, 3, 1}, p5[5] = {2, 0, 3, 1, 4};
        test_permute(4, s4, p4);
        test_permute(5, s5, p5);
    }
    test_image_from_u8();
    test_guided();
    test_softmax(4, 2000);

    dm_backend_destroy(g_gpu);
    dm_backend_destroy(g_cpu);
    if (g_skipped_ops) printf("\n*** %d op(s) SKIPPED: CPU reference missing ***\n", g_skipped_ops);
    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
