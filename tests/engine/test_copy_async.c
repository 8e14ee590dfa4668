/* Asynchronous downloads (include/depthmatte/copy_async.h) on the emulated device backend, the
 * faithful stand-in for CUDA's copy stream on a machine without a GPU:
 * - the value downloaded is what the source held at the call (stream order): overwriting the
 *   device source afterwards does not change it;
 * - until dm_copy_wait the host destination holds poison (NaN in f32): a read before the wait
 *   is caught by any comparison; a host write before the wait makes the wait fail; a second
 *   download into a pending destination is refused;
 * - tickets complete in order (waiting for the later one delivers both), a second wait is a
 *   no-op; dtype conversion on the way down; refused inside a graph capture (the capture is
 *   spoiled); the CPU backend copies synchronously (ticket complete at once);
 * - models: two RVM frames with frame 1's downloads still pending while frame 2's forward runs
 *   (counted: ops_overlapped), bitwise equal to the synchronous rvm_forward_u8 sequence; the
 *   same for DA-V2 batches (da2_infer_u8_batch_async);
 * - a frame loop of 24 downloads of 4 MiB through two host buffers, the next frame queued
 *   before the last one is waited for: every frame arrives with its own values.
 * With --cuda (test_copy_async_cuda, label gpu; exits 77 without a device) the engine part and
 * the frame loop run on the CUDA backend: copy stream, events and the ring of device stages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_emu.h"
#include "depthmatte/backend_host.h"
#include "depthmatte/copy_async.h"
#include "depthmatte/da2.h"
#include "depthmatte/graph.h"
#include "depthmatte/rvm.h"
#include "tensor_compare.h"

enum { H = 48, W = 64, N = 16 };

static void make_frame(uint8_t *rgb, int seed) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                double v = 128 + 90 * sin(0.21 * x + 0.13 * y * (c + 1) + seed) +
                           30 * cos(0.9 * x * y / 17.0 + c + seed);
                rgb[(y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

static dm_backend *emu(void) {
    dm_backend *be = NULL;
    CHECK_OK(dm_backend_emu_create(2, DM_DTYPE_F32, NULL, &be));
    return be;
}

static void upload(dm_backend *be, dm_tensor *dev, const float *v) {
    dm_tensor h;
    const int64_t s[] = {N};
    dm_tensor_view(&h, (void *)v, DM_DTYPE_F32, 1, s);
    CHECK_OK(dm_copy(be, &h, dev));
}

static int all_nan(const float *v, int n) {
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) return 0;
    return 1;
}

/* be: the emulated backend, or CUDA (--cuda: the checks that need the emulation's poison and
 * bookkeeping are skipped there; the values must be the same). */
static void test_engine(dm_backend *be) {
    dm_backend *cpu = dm_backend_cpu_create(1);
    if (!be || !cpu) return;
    const int em = be->device == DM_DEVICE_EMU;
    CHECK(dm_backend_supports_async_copy(be) && !dm_backend_supports_async_copy(cpu));
    const int64_t s[] = {N};
    dm_tensor x = {0}, y = {0};
    CHECK_OK(dm_alloc(be, &x, DM_DTYPE_F32, 1, s));
    CHECK_OK(dm_alloc(be, &y, DM_DTYPE_F32, 1, s));
    float a[N], b[N], out[N], out2[N];
    for (int i = 0; i < N; i++)
        a[i] = (float)i - 3.5f, b[i] = 100.f + (float)i;
    dm_tensor h, h2;
    dm_tensor_view(&h, out, DM_DTYPE_F32, 1, s);
    dm_tensor_view(&h2, out2, DM_DTYPE_F32, 1, s);

    /* stream order: the value at the call, whatever the source holds later */
    upload(be, &x, a);
    dm_copy_ticket t = {0};
    CHECK_OK(dm_copy_async(be, &x, &h, &t));
    CHECK(t.id != 0);
    if (em) CHECK(all_nan(out, N)); /* a read before the wait sees poison */
    upload(be, &x, b);              /* the next frame overwrites the device source */
    CHECK_OK(dm_activation(be, &x, DM_ACT_RELU, &x));
    dm_emu_copy_stats cs;
    dm_backend_emu_copy_stats(be, &cs);
    if (em) CHECK(cs.pending == 1 && cs.enqueued == 1 && cs.ops_overlapped >= 2);
    CHECK_OK(dm_synchronize(be)); /* does not deliver: only the wait does */
    if (em) CHECK(all_nan(out, N));
    CHECK_OK(dm_copy_wait(be, &t));
    CHECK(t.id == 0 && memcmp(out, a, sizeof a) == 0);
    CHECK_OK(dm_copy_wait(be, &t)); /* a second wait: nothing to do */

    /* a host write into the destination before the wait is caught at the wait */
    CHECK_OK(dm_copy_async(be, &x, &h, &t));
    if (em) {
        out[3] = 1.f;
        CHECK(dm_copy_wait(be, &t) == DM_ERR_ARG);
        dm_backend_emu_copy_stats(be, &cs);
        CHECK(cs.early_writes == 1 && cs.pending == 0);
    } else {
        CHECK_OK(dm_copy_wait(be, &t));
    }
    CHECK(memcmp(out, b, sizeof b) == 0); /* delivered all the same: relu(b) = b */

    /* a second download into a pending destination (a buffer reused before its wait) */
    CHECK_OK(dm_copy_async(be, &x, &h, &t));
    dm_copy_ticket t2 = {0};
    if (em) CHECK(dm_copy_async(be, &y, &h, &t2) == DM_ERR_ARG && t2.id == 0);
    /* tickets complete in order: the later one delivers the earlier one too */
    upload(be, &y, a);
    CHECK_OK(dm_copy_async(be, &y, &h2, &t2));
    CHECK_OK(dm_copy_wait(be, &t2));
    CHECK(memcmp(out2, a, sizeof a) == 0 && out[5] == b[5]);
    CHECK_OK(dm_copy_wait(be, &t)); /* already delivered */
    dm_backend_emu_copy_stats(be, &cs);
    if (em) CHECK(cs.pending == 0 && cs.max_pending == 2);

    /* dtype conversion on the way down (f32 device -> f16 host) */
    uint16_t half[N];
    dm_tensor hh;
    dm_tensor_view(&hh, half, DM_DTYPE_F16, 1, s);
    CHECK_OK(dm_copy_async(be, &y, &hh, &t));
    if (em) CHECK(half[0] == 0xFFFF); /* poison: a NaN in f16 too */
    CHECK_OK(dm_copy_wait(be, &t));
    for (int i = 0; i < N; i++)
        CHECK(half[i] == dm_f32_to_f16(a[i]));

    /* refused inside a graph capture, which it spoils */
    CHECK_OK(dm_graph_begin(be));
    CHECK(dm_copy_async(be, &y, &h, &t) == DM_ERR_BACKEND && t.id == 0);
    dm_graph *g = NULL;
    CHECK(dm_graph_end(be, &g) == DM_ERR_BACKEND && g == NULL);

    /* bad arguments: a host source, a device destination */
    CHECK(dm_copy_async(be, &h2, &h, &t) == DM_ERR_ARG);
    CHECK(dm_copy_async(be, &x, &y, &t) == DM_ERR_ARG);

    /* the CPU backend: synchronous, the ticket complete at once */
    dm_tensor cx;
    float c[N];
    memcpy(c, a, sizeof c);
    dm_tensor_view(&cx, c, DM_DTYPE_F32, 1, s);
    CHECK_OK(dm_copy_async(cpu, &cx, &h, &t));
    CHECK(t.id == 0 && memcmp(out, a, sizeof a) == 0);
    CHECK_OK(dm_copy_wait(cpu, &t));

    dm_tensor_free(&x), dm_tensor_free(&y);
    dm_backend_destroy(cpu);
    printf("engine: async downloads on the %s backend: done\n", be->ops->name);
}

/* A frame loop as the pipeline's: frame k computed into one device buffer, its download into
 * host buffer k % 2, frame k - 1's waited for after frame k was queued; 24 frames of 4 MiB, so
 * the ring of device stages wraps several times while copies are in flight. Every frame must
 * arrive with its own values. */
static void test_frames(dm_backend *be) {
    enum { M = 1 << 20, K = 24 };
    const int64_t s[] = {M};
    dm_tensor x = {0};
    CHECK_OK(dm_alloc(be, &x, DM_DTYPE_F32, 1, s));
    float *src = malloc(sizeof(float) * M), *dst[2];
    dst[0] = dm_backend_host_alloc(be, sizeof(float) * M);
    dst[1] = dm_backend_host_alloc(be, sizeof(float) * M);
    if (!x.data || !src || !dst[0] || !dst[1]) {
        CHECK(!"allocation");
        return;
    }
    dm_copy_ticket t[K];
    memset(t, 0, sizeof t);
    int bad = 0;
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < M; i++)
            src[i] = (float)(k * 7 + (i % 1000));
        dm_tensor h, d;
        dm_tensor_view(&h, src, DM_DTYPE_F32, 1, s);
        CHECK_OK(dm_copy(be, &h, &x));
        CHECK_OK(dm_activation(be, &x, DM_ACT_RELU, &x)); /* the frame's "forward" */
        dm_tensor_view(&d, dst[k % 2], DM_DTYPE_F32, 1, s);
        CHECK_OK(dm_copy_async(be, &x, &d, &t[k]));
        if (k == 0) continue;
        CHECK_OK(dm_copy_wait(be, &t[k - 1]));
        const float *o = dst[(k - 1) % 2];
        for (int i = 0; i < M; i++)
            bad += o[i] != (float)((k - 1) * 7 + (i % 1000));
    }
    CHECK_OK(dm_copy_wait(be, &t[K - 1]));
    const float *o = dst[(K - 1) % 2];
    for (int i = 0; i < M; i++)
        bad += o[i] != (float)((K - 1) * 7 + (i % 1000));
    CHECK(bad == 0);
    printf("frames: %d downloads of %d floats through two host buffers: %d wrong values\n", K, M,
           bad);
    dm_backend_host_free(be, dst[0]), dm_backend_host_free(be, dst[1]);
    free(src);
    dm_tensor_free(&x);
}

/* Non-finite counts made on the backend and downloaded on their own (dm_async_counts): 3
 * frames of 4096 values with 0, 2 and 5 NaN/Inf, one count per frame; stored, then added to by
 * a second tensor (accumulate); the host counts are undefined until the wait (the emulated
 * backend poisons them), right after it, and a later forward may be queued in between. */
static void test_counts(dm_backend *be) {
    enum { G = 3, N = 4096 };
    const int64_t s[] = {G, N};
    float *h = calloc((size_t)G * N, sizeof(float));
    const int nan_at[] = {N + 5, N + 77, 2 * N, 2 * N + 1, 2 * N + 99, 2 * N + 1000, 3 * N - 1};
    for (size_t i = 0; i < sizeof nan_at / sizeof nan_at[0]; i++)
        h[nan_at[i]] = i % 3 == 0 ? NAN : (i % 3 == 1 ? INFINITY : -INFINITY);
    dm_tensor ht, x = {0};
    dm_tensor_view(&ht, h, DM_DTYPE_F32, 2, s);
    CHECK_OK(dm_alloc(be, &x, DM_DTYPE_F32, 2, s));
    CHECK_OK(dm_copy(be, &ht, &x));
    dm_async_counts c;
    CHECK_OK(dm_async_counts_init(&c, be, G));
    CHECK_OK(dm_count_nonfinite(be, &x, &c.dev, 0));
    CHECK_OK(dm_count_nonfinite(be, &x, &c.dev, 1)); /* accumulate: twice each */
    CHECK_OK(dm_async_counts_start(&c, be, G));
    if (dm_backend_supports_async_copy(be) && be->device != DM_DEVICE_CUDA)
        CHECK(c.host[0] == -1 && c.host[2] == -1); /* 0xFF bytes until the wait */
    CHECK_OK(dm_activation(be, &x, DM_ACT_RELU, &x)); /* later work, queued before the wait */
    CHECK_OK(dm_async_counts_wait(&c, be));
    CHECK(c.n == G && c.host[0] == 0 && c.host[1] == 4 && c.host[2] == 10);
    printf("counts: %lld %lld %lld (want 0 4 10)\n", (long long)c.host[0], (long long)c.host[1],
           (long long)c.host[2]);
    /* one count of the whole tensor, and the checks of the counter */
    int64_t all = -1;
    CHECK_OK(dm_count_nonfinite_now(be, &x, &all));
    CHECK(all == 5); /* after the ReLU: 3 NaN and 2 +Inf stay, the 2 -Inf are 0 */
    dm_tensor five = c.dev, f32 = x;
    five.shape[0] = 5; /* 5 counts do not divide 3 x 4096 values */
    CHECK(dm_count_nonfinite(be, &x, &five, 0) == DM_ERR_SHAPE);
    CHECK(dm_count_nonfinite(be, &x, &f32, 0) == DM_ERR_DTYPE); /* not an i64 counter */
    CHECK(dm_async_counts_start(&c, be, G + 1) == DM_ERR_ARG);
    dm_async_counts_free(&c, be);
    dm_tensor_free(&x);
    free(h);
}

/* RVM: frame k+1's forward runs while frame k's downloads are pending (two host buffers), as
 * the pipeline's stages do; the outputs equal the synchronous sequence bit for bit. */
static void test_rvm(const uint8_t *const *frames, const char *wpath) {
    enum { T = 5 };
    const size_t px = (size_t)H * W;
    float *sync = malloc(sizeof(float) * 4 * px * T), *async = malloc(sizeof(float) * 4 * px * T);
    for (int pass = 0; pass < 2; pass++) {
        dm_backend *be = emu();
        rvm_model *m = NULL;
        rvm_state *s = NULL;
        CHECK_OK(rvm_model_load_variant(&m, wpath, RVM_VARIANT_MOBILENETV3, be));
        if (m) CHECK_OK(rvm_state_init(&s, m, be, H, W, 0.5));
        dm_copy_ticket tk[T];
        memset(tk, 0, sizeof tk);
        for (int f = 0; s && f < T; f++) {
            float *o = (pass ? async : sync) + 4 * px * f;
            if (!pass) {
                CHECK_OK(rvm_forward_u8(s, frames[f % 3], o, o + 3 * px));
                continue;
            }
            CHECK_OK(rvm_forward_u8_async(s, frames[f % 3], o, o + 3 * px, &tk[f]));
            CHECK(tk[f].id != 0 && isnan(o[0]) && isnan(o[3 * px])); /* not there yet */
            /* the non-finite count arrives on its own: the outputs are still pending after it */
            int64_t bad = -1;
            CHECK_OK(rvm_state_nonfinite(s, &bad));
            CHECK(bad == 0 && isnan(o[0]) && isnan(o[3 * px]));
            if (f > 0) CHECK_OK(dm_copy_wait(be, &tk[f - 1]));       /* the frame before */
        }
        if (pass && s) {
            CHECK_OK(dm_copy_wait(be, &tk[T - 1]));
            dm_emu_copy_stats cs;
            dm_backend_emu_copy_stats(be, &cs);
            /* each later frame's whole forward ran while the frame before was downloading */
            const int64_t per_frame = dm_backend_emu_op_count(be) / T;
            /* per frame: the count (8 bytes), the foreground, the alpha */
            CHECK(cs.enqueued == 3 * T && cs.pending == 0 && cs.early_writes == 0);
            CHECK(cs.ops_overlapped >= (T - 1) * (per_frame / 2));
            printf("rvm: %lld of %lld ops ran beside a pending download, at most %d pending\n",
                   (long long)cs.ops_overlapped, (long long)dm_backend_emu_op_count(be),
                   cs.max_pending);
        }
        rvm_state_free(s);
        rvm_model_free(m);
        dm_backend_destroy(be);
    }
    CHECK(memcmp(sync, async, sizeof(float) * 4 * px * T) == 0);
    free(sync), free(async);
}

/* DA-V2 batches of 2: the second batch's forward runs before the first's download is waited. */
static void test_da2(const uint8_t *const *frames) {
    char wpath[512];
    if (!tc_recipe_file("golden/da2_vits/recipe.json", "da2ca", wpath, sizeof wpath)) {
        printf("SKIPPED da2 part: golden/da2_vits/recipe.json not found\n");
        return;
    }
    const size_t px = (size_t)H * W;
    float *sync = malloc(sizeof(float) * 4 * px), *async = malloc(sizeof(float) * 4 * px);
    for (int pass = 0; pass < 2; pass++) {
        dm_backend *be = emu();
        da2_model *m = NULL;
        da2_ctx *c = NULL;
        CHECK_OK(da2_model_load(&m, wpath, be));
        if (m) CHECK_OK(da2_ctx_init_batch(&c, m, be, H, W, 42, 2));
        dm_copy_ticket t0 = {0}, t1 = {0};
        const uint8_t *b0[2] = {frames[0], frames[1]}, *b1[2] = {frames[2], frames[0]};
        float *o = pass ? async : sync;
        if (c && !pass) {
            CHECK_OK(da2_infer_u8_batch(c, b0, 2, o, 0));
            CHECK_OK(da2_infer_u8_batch(c, b1, 2, o + 2 * px, 0));
        } else if (c) {
            CHECK_OK(da2_infer_u8_batch_async(c, b0, 2, o, 0, &t0));
            int64_t bad[2] = {-1, -1}; /* the counts arrive without the depth */
            CHECK_OK(da2_ctx_nonfinite(c, 0, &bad[0]));
            CHECK_OK(da2_ctx_nonfinite(c, 1, &bad[1]));
            CHECK(bad[0] == 0 && bad[1] == 0 && isnan(o[0]));
            CHECK_OK(da2_infer_u8_batch_async(c, b1, 2, o + 2 * px, 0, &t1));
            CHECK(isnan(o[0]) && isnan(o[2 * px]));
            CHECK_OK(dm_copy_wait(be, &t0));
            CHECK(!isnan(o[0]) && isnan(o[2 * px]));
            CHECK_OK(dm_copy_wait(be, &t1));
        }
        da2_ctx_free(c);
        da2_model_free(m);
        dm_backend_destroy(be);
    }
    CHECK(memcmp(sync, async, sizeof(float) * 4 * px) == 0);
    printf("da2: two batches with the first download pending: equal to synchronous\n");
    free(sync), free(async);
    unlink(wpath);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--cuda")) { /* label gpu: the engine part on CUDA */
        int count = 0;
        dm_status st = dm_cuda_device_count(&count);
        if (st || count == 0) return tc_skip(st ? dm_error_message() : "no CUDA device visible");
        dm_backend *g = NULL;
        CHECK_OK(dm_backend_cuda_create(0, DM_DTYPE_F32, &g));
        if (g) test_engine(g), test_frames(g), test_counts(g);
        dm_backend_destroy(g);
        printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
        return tc_failure_count != 0;
    }
    dm_backend *e = emu();
    test_engine(e);
    test_frames(e);
    test_counts(e);
    dm_backend_destroy(e);
    dm_backend *cpu = dm_backend_cpu_create(1);
    test_counts(cpu);
    dm_backend_destroy(cpu);
    uint8_t *f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = malloc((size_t)H * W * 3);
        make_frame(f[i], i);
    }
    const uint8_t *frames[3] = {f[0], f[1], f[2]};
    const char *mbv3 = tc_shared_path("models/rvm_mobilenetv3.safetensors");
    if (access(mbv3, R_OK))
        printf("SKIPPED rvm part: %s not found\n", mbv3);
    else
        test_rvm(frames, mbv3);
    test_da2(frames);
    for (int i = 0; i < 3; i++)
        free(f[i]);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
