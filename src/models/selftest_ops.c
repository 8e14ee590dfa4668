/* Selftest part 1: the op case table and its runners (include/depthmatte/selftest.h).
 *
 * One row of k_cases per case: op name, label, runner, integer parameters p[] (meaning per
 * runner, listed at each runner) and real parameters d[]. A runner draws the inputs (rounded to
 * the precision under test), computes the reference with the CPU op, runs the backend op on
 * uploaded copies, downloads and compares at dm_tol_op(precision, k, max|ref|) with k the op's
 * accumulation length. Shapes are the models' (ViT-S/14 of DA-V2/VDA, the DPT head, RVM
 * MobileNetV3 / LR-ASPP / decoder / guided filter, VDA motion modules over 32 frames), kept
 * small so that the whole table runs in about a second on 2 CPU cores. Data-movement ops
 * (permute, concat, copy) must be exact (tolerance 0). */
#include <math.h>
#include <string.h>

#include "depthmatte/tolerance.h"
#include "models/selftest_internal.h"

typedef struct st_case st_case;
typedef void (*st_runner)(st_ctx *c, const st_case *k, unsigned seed);
struct st_case {
    const char *op;
    const char *what;
    st_runner run;
    int p[12];
    double d[2];
};

/* Buffers of one case: host inputs h, their backend copies d, references ref, backend outputs
 * out; all released by bufs_free. */
enum { NB = 6 };
typedef struct bufs {
    dm_tensor h[NB], d[NB], ref[2], out[2];
} bufs;

static void bufs_free(bufs *b) {
    for (int i = 0; i < NB; i++) {
        dm_tensor_free(&b->h[i]);
        st_free(&b->d[i]);
    }
    for (int i = 0; i < 2; i++) {
        dm_tensor_free(&b->ref[i]);
        st_free(&b->out[i]);
    }
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((st = (expr))) goto out;                                                               \
    } while (0)

/* Uploads h[0..n) into d[0..n). */
static dm_status upload_all(st_ctx *c, bufs *b, int n) {
    for (int i = 0; i < n; i++) {
        dm_status st = st_upload(c, &b->h[i], &b->d[i]);
        if (st) return st;
    }
    return DM_OK;
}

/* Allocates ref[i] (host F32) and out[i] (backend) of one output shape. */
static dm_status outputs(st_ctx *c, bufs *b, int i, int ndim, const int64_t *shape) {
    dm_status st = dm_tensor_alloc(&b->ref[i], DM_DTYPE_F32, ndim, shape);
    if (!st) st = st_dev_zeros(c, &b->out[i], ndim, shape);
    return st;
}

/* Downloads out[i] and compares with ref[i]; tol < 0: dm_tol_op with accumulation length acc. */
static dm_status compare_out(st_ctx *c, const st_case *k, bufs *b, int i, const char *suffix,
                             int64_t acc, double tol) {
    dm_tensor got = {0};
    dm_status st = st_download(c, &b->out[i], &got);
    if (st) return st;
    const int64_t n = dm_tensor_numel(&b->ref[i]);
    if (tol < 0) tol = dm_tol_op(c->o->precision, acc, st_max_abs(dm_f32(&b->ref[i]), n));
    char what[64];
    snprintf(what, sizeof what, "%s%s", k->what, suffix);
    st_compare(c, k->op, what, dm_f32(&got), dm_f32(&b->ref[i]), n, tol, -1);
    dm_tensor_free(&got);
    return DM_OK;
}

static int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

/* conv2d: p = N, Cin, Cout, H, W, k, stride, pad, dilation, groups, bias, act */
static void run_conv2d(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int N = p[0], Ci = p[1], Co = p[2], H = p[3], W = p[4], kk = p[5], s = p[6], pad = p[7],
              dil = p[8], g = p[9];
    const dm_conv2d_params prm = {s, s, pad, pad, dil, dil, g, (dm_act)p[11]};
    const int Ho = (H + 2 * pad - dil * (kk - 1) - 1) / s + 1,
              Wo = (W + 2 * pad - dil * (kk - 1) - 1) / s + 1;
    const int64_t xs[4] = {N, Ci, H, W}, ws[4] = {Co, Ci / g, kk, kk}, bs[1] = {Co},
                  ys[4] = {N, Co, Ho, Wo};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.f, 0.f, seed));
    TRY(st_host_rand(c, &b.h[1], 4, ws, sqrtf(3.f / (float)(Ci / g * kk * kk)), 0.f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 1, bs, 0.1f, 0.f, seed + 2));
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_conv2d(c->ref, &b.h[0], &b.h[1], p[10] ? &b.h[2] : NULL, &prm, &b.ref[0]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_conv2d(c->be, &b.d[0], &b.d[1], p[10] ? &b.d[2] : NULL, &prm, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", (int64_t)(Ci / g) * kk * kk, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* conv_transpose2d: p = N, Cin, Cout, H, W, k, stride, pad */
static void run_conv_transpose2d(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int N = p[0], Ci = p[1], Co = p[2], H = p[3], W = p[4], kk = p[5], s = p[6], pad = p[7];
    const int64_t xs[4] = {N, Ci, H, W}, ws[4] = {Ci, Co, kk, kk}, bs[1] = {Co},
                  ys[4] = {N, Co, (H - 1) * s - 2 * pad + kk, (W - 1) * s - 2 * pad + kk};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.f, 0.f, seed));
    TRY(st_host_rand(c, &b.h[1], 4, ws, sqrtf(3.f / (float)Ci), 0.f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 1, bs, 0.1f, 0.f, seed + 2));
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_conv_transpose2d(c->ref, &b.h[0], &b.h[1], &b.h[2], s, pad, &b.ref[0]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_conv_transpose2d(c->be, &b.d[0], &b.d[1], &b.d[2], s, pad, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", Ci * ceil_div(kk, s) * ceil_div(kk, s), -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* linear: p = B, T, K, N, bias, act */
static void run_linear(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t xs[3] = {p[0], p[1], p[2]}, ws[2] = {p[3], p[2]}, bs[1] = {p[3]},
                  ys[3] = {p[0], p[1], p[3]};
    const dm_act act = (dm_act)p[5];
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 3, xs, 1.f, 0.f, seed));
    TRY(st_host_rand(c, &b.h[1], 2, ws, sqrtf(3.f / (float)p[2]), 0.f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 1, bs, 0.1f, 0.f, seed + 2));
    TRY(outputs(c, &b, 0, 3, ys));
    TRY(dm_linear(c->ref, &b.h[0], &b.h[1], p[4] ? &b.h[2] : NULL, act, &b.ref[0]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_linear(c->be, &b.d[0], &b.d[1], p[4] ? &b.d[2] : NULL, act, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", p[2], -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* layernorm: p = rows, C; d = mean offset of x */
static void run_layernorm(st_ctx *c, const st_case *k, unsigned seed) {
    const int64_t xs[2] = {k->p[0], k->p[1]}, cs[1] = {k->p[1]};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 2, xs, 2.f, (float)k->d[0], seed));
    TRY(st_host_rand(c, &b.h[1], 1, cs, 0.1f, 1.f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 1, cs, 0.1f, 0.f, seed + 2));
    TRY(outputs(c, &b, 0, 2, xs));
    TRY(dm_layernorm(c->ref, &b.h[0], &b.h[1], &b.h[2], 1e-6f, &b.ref[0]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_layernorm(c->be, &b.d[0], &b.d[1], &b.d[2], 1e-6f, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", k->p[1], -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* groupnorm: p = N, C, H, W, groups */
static void run_groupnorm(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t xs[4] = {p[0], p[1], p[2], p[3]}, cs[1] = {p[1]};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.5f, 0.5f, seed));
    TRY(st_host_rand(c, &b.h[1], 1, cs, 0.1f, 1.f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 1, cs, 0.1f, 0.f, seed + 2));
    TRY(outputs(c, &b, 0, 4, xs));
    TRY(dm_groupnorm(c->ref, &b.h[0], p[4], &b.h[1], &b.h[2], 1e-6f, &b.ref[0]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_groupnorm(c->be, &b.d[0], p[4], &b.d[1], &b.d[2], 1e-6f, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", (int64_t)p[1] / p[4] * p[2] * p[3], -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* activation: p = act, in place on the backend (y aliases x) */
static void run_activation(st_ctx *c, const st_case *k, unsigned seed) {
    const int64_t xs[1] = {4099};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 1, xs, 6.f, 0.f, seed));
    TRY(dm_tensor_alloc(&b.ref[0], DM_DTYPE_F32, 1, xs));
    TRY(dm_activation(c->ref, &b.h[0], (dm_act)k->p[0], &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_activation(c->be, &b.d[0], (dm_act)k->p[0], &b.d[0]));
    b.out[0] = b.d[0]; /* compare the in-place result; released once, through out[0] */
    memset(&b.d[0], 0, sizeof b.d[0]);
    TRY(compare_out(c, k, &b, 0, "", 1, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* binary: p = op, broadcast b over the leading dims */
static void run_binary(st_ctx *c, const st_case *k, unsigned seed) {
    const int64_t as[3] = {2, 37, 96}, bc[1] = {96};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 3, as, 2.f, 0.f, seed));
    TRY(st_host_rand(c, &b.h[1], k->p[1] ? 1 : 3, k->p[1] ? bc : as, 2.f, 0.f, seed + 1));
    TRY(outputs(c, &b, 0, 3, as));
    TRY(dm_binary(c->ref, &b.h[0], &b.h[1], (dm_binary_op)k->p[0], &b.ref[0]));
    TRY(upload_all(c, &b, 2));
    TRY(dm_binary(c->be, &b.d[0], &b.d[1], (dm_binary_op)k->p[0], &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", 1, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* attention: p = B, heads, Tq, Tk, D; scale 1/sqrt(D); q, k of amplitude 2 give a peaked
 * softmax like trained heads */
static void run_attention(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t qs[4] = {p[0], p[1], p[2], p[4]}, ks[4] = {p[0], p[1], p[3], p[4]};
    const float scale = 1.f / sqrtf((float)p[4]);
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, qs, 2.f, 0.f, seed));
    TRY(st_host_rand(c, &b.h[1], 4, ks, 2.f, 0.f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 4, ks, 1.f, 0.f, seed + 2));
    TRY(outputs(c, &b, 0, 4, qs));
    TRY(dm_attention(c->ref, &b.h[0], &b.h[1], &b.h[2], scale, &b.ref[0]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_attention(c->be, &b.d[0], &b.d[1], &b.d[2], scale, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", (int64_t)p[3] + p[4], -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* attention_qkv: p = B, T, heads, D; qkv (B, T, 3*heads*D) packed as (B, T, 3, heads, D) */
static void run_attention_qkv(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t C = (int64_t)p[2] * p[3], qs[3] = {p[0], p[1], 3 * C}, os[3] = {p[0], p[1], C};
    const float scale = 1.f / sqrtf((float)p[3]);
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 3, qs, 2.f, 0.f, seed));
    TRY(outputs(c, &b, 0, 3, os));
    TRY(dm_attention_qkv(c->ref, &b.h[0], p[2], scale, &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_attention_qkv(c->be, &b.d[0], p[2], scale, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", (int64_t)p[1] + p[3], -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* image_cubic_normalize: p = N, H, W, h, w, arith; random u8 frames uploaded as u8 */
static void run_image_cubic(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t rs[4] = {p[0], p[1], p[2], 3}, ys[4] = {p[0], 3, p[3], p[4]};
    const dm_image_norm_params prm = {(dm_cubic_arith)p[5],
                                      {0.485, 0.456, 0.406},
                                      {0.229, 0.224, 0.225}};
    bufs b = {0};
    dm_status st;
    TRY(dm_tensor_alloc(&b.h[0], DM_DTYPE_U8, 4, rs));
    unsigned s = seed;
    for (int64_t i = 0; i < dm_tensor_numel(&b.h[0]); i++) {
        s = s * 1664525u + 1013904223u;
        ((uint8_t *)b.h[0].data)[i] = (uint8_t)(s >> 24);
    }
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_image_cubic_normalize(c->ref, &b.h[0], &prm, &b.ref[0]));
    TRY(dm_alloc(c->be, &b.d[0], DM_DTYPE_U8, 4, rs)); /* the frame travels as u8 */
    TRY(dm_copy(c->be, &b.h[0], &b.d[0]));
    TRY(dm_image_cubic_normalize(c->be, &b.d[0], &prm, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", 16, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* count_nonfinite (the pipeline's non-finite guard), per frame of an (N, 1, H, W) output as
 * the models count (one counter per frame, G = N): p = N, H, W; frame i gets i NaN, i +Inf
 * and one -Inf when i is odd. The counter starts as garbage (99 each), is stored (accumulate
 * 0), then added to (accumulate 1): the counts must be exactly twice the injected numbers, on
 * the reference and on the backend (whose storage dtype keeps NaN and both infinities). */
static void run_count_nonfinite(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t xs[4] = {p[0], 1, p[1], p[2]}, g = p[0];
    const int64_t per = (int64_t)p[1] * p[2];
    float want[16], ref[16], got[16];
    int64_t href[16], hdev[16];
    bufs b = {0};
    dm_tensor cref, cdev = {0}, hd;
    dm_status st;
    if (p[0] > 16 || per < 64) {
        st = dm_error_set(DM_ERR_ARG, "count_nonfinite case: at most 16 frames of >= 64 values");
        goto out;
    }
    TRY(st_host_rand(c, &b.h[0], 4, xs, 4.f, 0.f, seed));
    float *v = dm_f32(&b.h[0]);
    for (int i = 0; i < p[0]; i++) {
        float *f = v + i * per;
        int64_t at = 7;
        for (int j = 0; j < i; j++, at += 13) f[at % per] = NAN;
        for (int j = 0; j < i; j++, at += 13) f[at % per] = INFINITY;
        if (i & 1) f[(at + 13) % per] = -INFINITY;
        want[i] = (float)(2 * (2 * i + (i & 1)));
        href[i] = hdev[i] = 99;
    }
    TRY(upload_all(c, &b, 1));
    dm_tensor_view(&cref, href, DM_DTYPE_I64, 1, &g);
    dm_tensor_view(&hd, hdev, DM_DTYPE_I64, 1, &g);
    TRY(dm_alloc(c->be, &cdev, DM_DTYPE_I64, 1, &g));
    TRY(dm_copy(c->be, &hd, &cdev));
    for (int acc = 0; acc < 2; acc++) {
        TRY(dm_count_nonfinite(c->ref, &b.h[0], &cref, acc));
        TRY(dm_count_nonfinite(c->be, &b.d[0], &cdev, acc));
    }
    TRY(dm_copy(c->be, &cdev, &hd));
    TRY(dm_synchronize(c->be));
    for (int i = 0; i < p[0]; i++) ref[i] = (float)href[i], got[i] = (float)hdev[i];
    st_compare(c, k->op, "CPU reference = injected", ref, want, p[0], 0, -1);
    st_compare(c, k->op, k->what, got, want, p[0], 0, -1);
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    dm_tensor_free(&cdev);
    bufs_free(&b);
}

/* resize: p = H, W, Ho, Wo, mode, align_corners; d = scale_h, scale_w (0: from the sizes) */
static void run_resize(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t xs[4] = {2, 3, p[0], p[1]}, ys[4] = {2, 3, p[2], p[3]};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.f, 0.f, seed));
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_resize(c->ref, &b.h[0], (dm_resize_mode)p[4], p[5], k->d[0], k->d[1], &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_resize(c->be, &b.d[0], (dm_resize_mode)p[4], p[5], k->d[0], k->d[1], &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", p[4] == DM_RESIZE_BICUBIC ? 16 : 4, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* avgpool2d: p = H, W, k, s (ceil_mode, count_include_pad=False) */
static void run_avgpool2d(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    int Ho = (p[0] - p[2] + p[3] - 1) / p[3] + 1, Wo = (p[1] - p[2] + p[3] - 1) / p[3] + 1;
    if ((Ho - 1) * p[3] >= p[0]) Ho--;
    if ((Wo - 1) * p[3] >= p[1]) Wo--;
    const int64_t xs[4] = {2, 5, p[0], p[1]}, ys[4] = {2, 5, Ho, Wo};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.f, 0.f, seed));
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_avgpool2d(c->ref, &b.h[0], p[2], p[3], &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_avgpool2d(c->be, &b.d[0], p[2], p[3], &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", (int64_t)p[2] * p[2], -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* maxpool2d: p = H, W, k, s, pad (ceil_mode=False; RVM ResNet-50 stem 3x3 s2 p1) */
static void run_maxpool2d(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int Ho = (p[0] + 2 * p[4] - p[2]) / p[3] + 1, Wo = (p[1] + 2 * p[4] - p[2]) / p[3] + 1;
    const int64_t xs[4] = {2, 5, p[0], p[1]}, ys[4] = {2, 5, Ho, Wo};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.f, 0.f, seed));
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_maxpool2d(c->ref, &b.h[0], p[2], p[3], p[4], &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_maxpool2d(c->be, &b.d[0], p[2], p[3], p[4], &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", 1, -1)); /* a max: one rounding of the storage dtype */
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* global_avgpool2d: p = N, C, H, W */
static void run_global_avgpool2d(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t xs[4] = {p[0], p[1], p[2], p[3]}, ys[4] = {p[0], p[1], 1, 1};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.f, 0.3f, seed));
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_global_avgpool2d(c->ref, &b.h[0], &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_global_avgpool2d(c->be, &b.d[0], &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", (int64_t)p[2] * p[3], -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* channel_affine on x (2, 12, 9, 23): p = variant 0 scale (C) + shift, 1 scale (N*C) gate,
 * 2 shift only */
static void run_channel_affine(st_ctx *c, const st_case *k, unsigned seed) {
    const int64_t xs[4] = {2, 12, 9, 23}, cs[1] = {12}, ncs[1] = {24};
    const int v = k->p[0];
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, xs, 1.f, 0.3f, seed));
    TRY(st_host_rand(c, &b.h[1], 1, v == 1 ? ncs : cs, 1.f, 0.f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 1, cs, 1.f, 0.f, seed + 2));
    TRY(outputs(c, &b, 0, 4, xs));
    TRY(dm_channel_affine(c->ref, &b.h[0], v == 2 ? NULL : &b.h[1], v == 1 ? NULL : &b.h[2],
                          &b.ref[0]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_channel_affine(c->be, &b.d[0], v == 2 ? NULL : &b.d[1], v == 1 ? NULL : &b.d[2],
                          &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", 2, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* image_from_u8: p = N, H, W; rgb is a CPU tensor on every backend */
static void run_image_from_u8(st_ctx *c, const st_case *k, unsigned seed) {
    const int64_t rs[4] = {k->p[0], k->p[1], k->p[2], 3}, ys[4] = {k->p[0], 3, k->p[1], k->p[2]};
    bufs b = {0};
    dm_status st;
    TRY(dm_tensor_alloc(&b.h[0], DM_DTYPE_U8, 4, rs));
    unsigned s = seed;
    for (int64_t i = 0; i < dm_tensor_numel(&b.h[0]); i++) {
        s = s * 1664525u + 1013904223u;
        ((uint8_t *)b.h[0].data)[i] = (uint8_t)(s >> 24);
    }
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_image_from_u8(c->ref, &b.h[0], &b.ref[0]));
    TRY(dm_image_from_u8(c->be, &b.h[0], &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", 1, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* guided_coeffs: p = N, K, h, w; box means of a real-looking guide, variance >= 0.02 (stays
 * positive after bf16 rounding of mean_xx, so a = cov / var stays within f16 range) */
static void run_guided_coeffs(st_ctx *c, const st_case *k, unsigned seed) {
    const int N = k->p[0], K = k->p[1], h = k->p[2], w = k->p[3];
    const int64_t ms[4] = {N, 4 * K, h, w}, as[4] = {N, K, h, w}, hw = (int64_t)h * w;
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, ms, 0.5f, 0.5f, seed));
    for (int n = 0; n < N; n++)
        for (int j = 0; j < K; j++)
            for (int64_t i = 0; i < hw; i++) {
                float *mx = dm_f32(&b.h[0]) + ((int64_t)n * 4 * K + j) * hw + i;
                const float v = mx[3 * K * hw];
                mx[3 * K * hw] = st_round(c, mx[0] * mx[0] + 0.02f + 0.05f * v);
            }
    TRY(outputs(c, &b, 0, 4, as));
    TRY(outputs(c, &b, 1, 4, as));
    TRY(dm_guided_coeffs(c->ref, &b.h[0], 1e-5f, &b.ref[0], &b.ref[1]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_guided_coeffs(c->be, &b.d[0], 1e-5f, &b.out[0], &b.out[1]));
    TRY(compare_out(c, k, &b, 0, " a", 4, -1));
    TRY(compare_out(c, k, &b, 1, " b", 4, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* matting_compose: p = N, h, w, H, W, with a (0: b at full size, the no-refiner path),
 * NaN in b (contract: NaN stays NaN) */
static void run_matting_compose(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int N = p[0], with_a = p[5];
    const int64_t cs[4] = {N, 4, with_a ? p[1] : p[3], with_a ? p[2] : p[4]},
                  ss[4] = {N, 3, p[3], p[4]}, ps[4] = {N, 1, p[3], p[4]};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, cs, 1.f, 0.f, seed));
    TRY(st_host_rand(c, &b.h[1], 4, cs, 0.6f, 0.2f, seed + 1));
    TRY(st_host_rand(c, &b.h[2], 4, ss, 0.5f, 0.5f, seed + 2));
    if (p[6]) /* alpha coefficients b[:, 3] of image 0, element 5: NaN */
        dm_f32(&b.h[1])[3 * cs[2] * cs[3] + 5] = NAN;
    TRY(outputs(c, &b, 0, 4, ss));
    TRY(outputs(c, &b, 1, 4, ps));
    TRY(dm_matting_compose(c->ref, with_a ? &b.h[0] : NULL, &b.h[1], &b.h[2], &b.ref[0],
                           &b.ref[1]));
    TRY(upload_all(c, &b, 3));
    TRY(dm_matting_compose(c->be, with_a ? &b.d[0] : NULL, &b.d[1], &b.d[2], &b.out[0], &b.out[1]));
    TRY(compare_out(c, k, &b, 0, " fgr", 8, -1));
    TRY(compare_out(c, k, &b, 1, " pha", 8, -1));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* permute: p = ndim, shape[0..ndim), perm[0..ndim) (p[1 + ndim + i]); exact */
static void run_permute(st_ctx *c, const st_case *k, unsigned seed) {
    const int nd = k->p[0];
    int64_t xs[DM_MAX_DIMS], ys[DM_MAX_DIMS];
    int perm[DM_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        xs[i] = k->p[1 + i];
        perm[i] = k->p[1 + nd + i];
    }
    for (int i = 0; i < nd; i++)
        ys[i] = xs[perm[i]];
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], nd, xs, 1.f, 0.f, seed));
    TRY(outputs(c, &b, 0, nd, ys));
    TRY(dm_permute(c->ref, &b.h[0], perm, &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(dm_permute(c->be, &b.d[0], perm, &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", 0, 0.0));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* concat along dim 1: p = N, Ca, Cb, H, W; exact */
static void run_concat(st_ctx *c, const st_case *k, unsigned seed) {
    const int *p = k->p;
    const int64_t as[4] = {p[0], p[1], p[3], p[4]}, bs[4] = {p[0], p[2], p[3], p[4]},
                  ys[4] = {p[0], p[1] + p[2], p[3], p[4]};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 4, as, 1.f, 0.f, seed));
    TRY(st_host_rand(c, &b.h[1], 4, bs, 1.f, 0.f, seed + 1));
    TRY(outputs(c, &b, 0, 4, ys));
    TRY(dm_concat(c->ref, &b.h[0], &b.h[1], &b.ref[0]));
    TRY(upload_all(c, &b, 2));
    TRY(dm_concat(c->be, &b.d[0], &b.d[1], &b.out[0]));
    TRY(compare_out(c, k, &b, 0, "", 0, 0.0));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* copy: host f32 -> backend (storage dtype) -> backend -> host; exact against the host's own
 * rounding to the storage dtype (values up to 6e4, f16 subnormals included) */
static void run_copy(st_ctx *c, const st_case *k, unsigned seed) {
    const int64_t n[1] = {k->p[0]};
    bufs b = {0};
    dm_status st;
    TRY(st_host_rand(c, &b.h[0], 1, n, 60000.f, 0.f, seed));
    for (int i = 0; i < 8 && i < n[0]; i++)
        dm_f32(&b.h[0])[i] = st_round(c, ldexpf(1.f, -20 - i));
    TRY(dm_tensor_alloc(&b.h[1], c->o->storage, 1, n)); /* host rounding to the storage dtype */
    TRY(dm_copy(c->ref, &b.h[0], &b.h[1]));
    TRY(dm_tensor_alloc(&b.ref[0], DM_DTYPE_F32, 1, n));
    TRY(dm_copy(c->ref, &b.h[1], &b.ref[0]));
    TRY(upload_all(c, &b, 1));
    TRY(st_dev_zeros(c, &b.out[0], 1, n));
    TRY(dm_copy(c->be, &b.d[0], &b.out[0])); /* device -> device */
    TRY(compare_out(c, k, &b, 0, "", 0, 0.0));
out:
    if (st) st_fail(c, k->op, k->what, dm_error_message());
    bufs_free(&b);
}

/* clang-format off */
#define A_NONE DM_ACT_NONE
static const st_case k_cases[] = {
    /* conv2d: RVM MobileNetV3 / LR-ASPP / decoder and the DPT head */
    {"conv2d", "3x3 s1 bias relu", run_conv2d,
     {2, 16, 32, 17, 19, 3, 1, 1, 1, 1, 1, DM_ACT_RELU}, {0, 0}},
    {"conv2d", "3x3 s2 bias hardswish (stem)", run_conv2d,
     {1, 3, 16, 33, 31, 3, 2, 1, 1, 1, 1, DM_ACT_HARDSWISH}, {0, 0}},
    {"conv2d", "depthwise 5x5 s2", run_conv2d,
     {1, 72, 72, 20, 18, 5, 2, 2, 1, 72, 0, A_NONE}, {0, 0}},
    {"conv2d", "depthwise 3x3 dilated d2", run_conv2d,
     {1, 16, 16, 15, 15, 3, 1, 2, 2, 16, 1, DM_ACT_RELU}, {0, 0}},
    {"conv2d", "1x1 960->128 relu (LR-ASPP)", run_conv2d,
     {1, 960, 128, 3, 4, 1, 1, 0, 1, 1, 1, DM_ACT_RELU}, {0, 0}},
    {"conv2d", "1x1 bias hardsigmoid (SE)", run_conv2d,
     {2, 40, 64, 9, 16, 1, 1, 0, 1, 1, 1, DM_ACT_HARDSIGMOID}, {0, 0}},
    {"conv2d", "grouped g4 sigmoid", run_conv2d,
     {1, 32, 16, 12, 10, 3, 1, 1, 1, 4, 1, DM_ACT_SIGMOID}, {0, 0}},
    {"conv2d", "3x3 GRU tanh", run_conv2d,
     {1, 40, 20, 9, 16, 3, 1, 1, 1, 1, 1, DM_ACT_TANH}, {0, 0}},
    /* bias + activation at the shapes of the CUDA backend's fused epilogues (cuDNN graph:
     * MobileNetV3's depthwise convs, squeeze-excite 1x1 on 1x1 maps, bias-only projections) */
    {"conv2d", "depthwise 3x3 s2 bias hardswish", run_conv2d,
     {1, 72, 72, 20, 18, 3, 2, 1, 1, 72, 1, DM_ACT_HARDSWISH}, {0, 0}},
    {"conv2d", "depthwise 5x5 bias relu", run_conv2d,
     {1, 72, 72, 16, 12, 5, 1, 2, 1, 72, 1, DM_ACT_RELU}, {0, 0}},
    {"conv2d", "1x1 on 1x1 bias relu (SE)", run_conv2d,
     {2, 96, 24, 1, 1, 1, 1, 0, 1, 1, 1, DM_ACT_RELU}, {0, 0}},
    {"conv2d", "1x1 bias only (projection)", run_conv2d,
     {1, 64, 32, 9, 16, 1, 1, 0, 1, 1, 1, A_NONE}, {0, 0}},
    {"conv2d", "14x14 s14 patch embed", run_conv2d,
     {1, 3, 384, 42, 56, 14, 14, 0, 1, 1, 1, A_NONE}, {0, 0}},
    {"conv2d", "3x3 64ch DPT no bias", run_conv2d,
     {1, 64, 64, 12, 16, 3, 1, 1, 1, 1, 0, A_NONE}, {0, 0}},
    /* conv_transpose2d: DPT resize layers (k4 s4, k2 s2) and a padded one */
    {"conv_transpose2d", "k4 s4 48ch", run_conv_transpose2d, {1, 48, 48, 3, 4, 4, 4, 0}, {0, 0}},
    {"conv_transpose2d", "k2 s2 96ch", run_conv_transpose2d, {2, 96, 96, 3, 4, 2, 2, 0}, {0, 0}},
    {"conv_transpose2d", "k3 s2 p1", run_conv_transpose2d, {1, 8, 4, 5, 5, 3, 2, 1}, {0, 0}},
    /* linear: ViT-S/14 qkv / proj / MLP, VDA GEGLU, odd sizes */
    {"linear", "qkv 13x384->1152 bias", run_linear, {1, 13, 384, 1152, 1, A_NONE}, {0, 0}},
    {"linear", "fc1 2x37x384->1536 gelu", run_linear, {2, 37, 384, 1536, 1, DM_ACT_GELU}, {0, 0}},
    {"linear", "fc2 13x1536->384 bias", run_linear, {1, 13, 1536, 384, 1, A_NONE}, {0, 0}},
    {"linear", "GEGLU 6x32x192->768", run_linear, {6, 32, 192, 768, 1, A_NONE}, {0, 0}},
    {"linear", "64->40 relu no bias", run_linear, {3, 5, 64, 40, 0, DM_ACT_RELU}, {0, 0}},
    {"linear", "odd 33x36->20 tanh", run_linear, {1, 33, 36, 20, 1, DM_ACT_TANH}, {0, 0}},
    {"layernorm", "13x384", run_layernorm, {13, 384}, {0, 0}},
    {"layernorm", "64x384 mean 20", run_layernorm, {64, 384}, {20, 0}},
    {"layernorm", "7x1000", run_layernorm, {7, 1000}, {0, 0}},
    {"groupnorm", "32x192x3x5 G32 (VDA)", run_groupnorm, {32, 192, 3, 5, 32}, {0, 0}},
    {"groupnorm", "3x64x5x7 G32", run_groupnorm, {3, 64, 5, 7, 32}, {0, 0}},
    {"groupnorm", "2x16x9x9 G4", run_groupnorm, {2, 16, 9, 9, 4}, {0, 0}},
    {"activation", "none", run_activation, {DM_ACT_NONE}, {0, 0}},
    {"activation", "relu", run_activation, {DM_ACT_RELU}, {0, 0}},
    {"activation", "hardswish", run_activation, {DM_ACT_HARDSWISH}, {0, 0}},
    {"activation", "hardsigmoid", run_activation, {DM_ACT_HARDSIGMOID}, {0, 0}},
    {"activation", "sigmoid", run_activation, {DM_ACT_SIGMOID}, {0, 0}},
    {"activation", "tanh", run_activation, {DM_ACT_TANH}, {0, 0}},
    {"activation", "gelu (erf)", run_activation, {DM_ACT_GELU}, {0, 0}},
    {"binary", "add", run_binary, {DM_BINARY_ADD, 0}, {0, 0}},
    {"binary", "sub", run_binary, {DM_BINARY_SUB, 0}, {0, 0}},
    {"binary", "mul", run_binary, {DM_BINARY_MUL, 0}, {0, 0}},
    {"binary", "add broadcast (C)", run_binary, {DM_BINARY_ADD, 1}, {0, 0}},
    {"binary", "mul broadcast (C)", run_binary, {DM_BINARY_MUL, 1}, {0, 0}},
    /* attention: DINOv2-S at 42x56 (13 tokens), partial tiles, VDA motion modules over 32
     * frames (C = 192, 64: 8 heads), the D <= 128 path */
    {"attention", "ViT-S 6 heads T13 D64", run_attention, {1, 6, 13, 13, 64}, {0, 0}},
    {"attention", "ViT-S 6 heads T101 D64", run_attention, {1, 6, 101, 101, 64}, {0, 0}},
    {"attention", "Tq33 Tk70 D64", run_attention, {2, 2, 33, 70, 64}, {0, 0}},
    {"attention", "motion T32 D24 (C192)", run_attention, {15, 8, 32, 32, 24}, {0, 0}},
    {"attention", "motion T32 D8 (C64)", run_attention, {60, 8, 32, 32, 8}, {0, 0}},
    {"attention", "Tq20 Tk45 D128", run_attention, {1, 1, 20, 45, 128}, {0, 0}},
    {"attention_qkv", "ViT-S 6x64 T13 B2", run_attention_qkv, {2, 13, 6, 64}, {0, 0}},
    {"attention_qkv", "ViT-S 6x64 T101", run_attention_qkv, {1, 101, 6, 64}, {0, 0}},
    {"image_cubic_normalize", "DA-V2 f64 37x53->42x56", run_image_cubic,
     {1, 37, 53, 42, 56, DM_CUBIC_F64}, {0, 0}},
    {"image_cubic_normalize", "VDA f32 2x45x80->42x70", run_image_cubic,
     {2, 45, 80, 42, 70, DM_CUBIC_F32}, {0, 0}},
    {"count_nonfinite", "4 frames 37x53", run_count_nonfinite, {4, 37, 53}, {0, 0}},
    {"resize", "bilinear up", run_resize, {9, 13, 20, 31, DM_RESIZE_BILINEAR, 0}, {0, 0}},
    {"resize", "bilinear down", run_resize, {36, 64, 18, 32, DM_RESIZE_BILINEAR, 0}, {0, 0}},
    {"resize", "bilinear align_corners", run_resize,
     {10, 17, 42, 56, DM_RESIZE_BILINEAR, 1}, {0, 0}},
    {"resize", "bilinear scale 0.5 (RVM)", run_resize, {48, 64, 24, 32, DM_RESIZE_BILINEAR, 0},
     {0.5, 0.5}},
    {"resize", "bicubic pos-embed 37->3x4", run_resize, {37, 37, 3, 4, DM_RESIZE_BICUBIC, 0},
     {(3 + 0.1) / 37, (4 + 0.1) / 37}},
    {"resize", "bicubic pos-embed 37->10", run_resize, {37, 37, 10, 10, DM_RESIZE_BICUBIC, 0},
     {(10 + 0.1) / 37, (10 + 0.1) / 37}},
    {"avgpool2d", "9x15 k2 s2 (odd)", run_avgpool2d, {9, 15, 2, 2}, {0, 0}},
    {"avgpool2d", "24x32 k2 s2", run_avgpool2d, {24, 32, 2, 2}, {0, 0}},
    {"maxpool2d", "36x64 k3 s2 p1", run_maxpool2d, {36, 64, 3, 2, 1}, {0, 0}},
    {"maxpool2d", "9x5 k3 s2 p1 (odd)", run_maxpool2d, {9, 5, 3, 2, 1}, {0, 0}},
    {"global_avgpool2d", "2x12x9x23", run_global_avgpool2d, {2, 12, 9, 23}, {0, 0}},
    {"global_avgpool2d", "1x960x2x2", run_global_avgpool2d, {1, 960, 2, 2}, {0, 0}},
    {"channel_affine", "scale C + shift", run_channel_affine, {0}, {0, 0}},
    {"channel_affine", "scale N*C (SE gate)", run_channel_affine, {1}, {0, 0}},
    {"channel_affine", "shift only", run_channel_affine, {2}, {0, 0}},
    {"image_from_u8", "2x17x29", run_image_from_u8, {2, 17, 29}, {0, 0}},
    {"guided_coeffs", "2x(4x4)x9x16", run_guided_coeffs, {2, 4, 9, 16}, {0, 0}},
    {"matting_compose", "a,b 24x32 -> 48x64", run_matting_compose,
     {1, 24, 32, 48, 64, 1, 0}, {0, 0}},
    {"matting_compose", "no a (b at 48x64)", run_matting_compose,
     {2, 48, 64, 48, 64, 0, 0}, {0, 0}},
    {"matting_compose", "NaN stays NaN", run_matting_compose, {1, 9, 16, 36, 64, 1, 1}, {0, 0}},
    {"permute", "tokens (1,12,384)->(1,384,12)", run_permute, {3, 1, 12, 384, 0, 2, 1}, {0, 0}},
    {"permute", "5-d (2,3,4,5,6)", run_permute, {5, 2, 3, 4, 5, 6, 0, 3, 1, 4, 2}, {0, 0}},
    {"permute", "VDA (32,64,3,4)->(3,4,32,64)", run_permute, {4, 32, 64, 3, 4, 2, 3, 0, 1}, {0, 0}},
    {"concat", "dim1 (2,3|4,5,7)", run_concat, {2, 3, 4, 5, 7}, {0, 0}},
    {"concat", "dim1 decoder (1,40|16,6,8)", run_concat, {1, 40, 16, 6, 8}, {0, 0}},
    {"copy", "1000 values", run_copy, {1000}, {0, 0}},
};
/* clang-format on */
#define NCASES ((int)(sizeof k_cases / sizeof k_cases[0]))

/* Every op of the table except alloc, which every case exercises (dm_op_name order). */
static const char *k_op_names[DM_OP_COUNT];

static void init_op_names(void) {
    if (k_op_names[0]) return;
    int n = 0;
    for (int i = 0; i < DM_OP_COUNT; i++)
        if (i != DM_OP_ALLOC) k_op_names[n++] = dm_op_name((dm_op_id)i);
    k_op_names[n] = NULL;
}

const char *const *dm_selftest_op_names(void) {
    init_op_names();
    return k_op_names;
}

int st_is_op_name(const char *name) {
    init_op_names();
    for (int i = 0; k_op_names[i]; i++)
        if (!strcmp(k_op_names[i], name)) return 1;
    return 0;
}

static int op_id(const char *name) {
    for (int i = 0; i < DM_OP_COUNT; i++)
        if (!strcmp(dm_op_name((dm_op_id)i), name)) return i;
    return -1;
}

void st_run_ops(st_ctx *c) {
    init_op_names();
    /* an op of the backend table without a case here would go unchecked: a FAIL row */
    for (int i = 0; k_op_names[i]; i++) {
        int has = 0;
        for (int j = 0; j < NCASES && !has; j++)
            has = !strcmp(k_cases[j].op, k_op_names[i]);
        if (!has && st_selected(c, k_op_names[i]))
            st_fail(c, k_op_names[i], "-", "no selftest case for this op (selftest_ops.c)");
    }
    for (int i = 0; i < NCASES; i++) {
        const st_case *k = &k_cases[i];
        if (!st_selected(c, k->op)) continue;
        const int id = op_id(k->op);
        if (id < 0) {
            st_fail(c, k->op, k->what, "not an op of the backend table (dm_op_name)");
            continue;
        }
        if (!dm_backend_supports(c->be, (dm_op_id)id, c->o->storage) ||
            !dm_backend_supports(c->be, DM_OP_ALLOC, c->o->storage)) {
            st_unsupported(c, k->op, k->what);
            continue;
        }
        k->run(c, k, 1000u + 17u * (unsigned)i);
    }
}
