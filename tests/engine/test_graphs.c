/* Graphs (include/depthmatte/graph.h) on the emulated device backend, the faithful stand-in
 * for CUDA Graphs on a machine without a GPU (include/depthmatte/backend_emu.h):
 * - engine: ops inside a capture are recorded, not run, with their tensors and parameters
 *   baked in; a launch replays them on new input values; an allocation, a host<->device copy,
 *   an image_from_u8 upload, a synchronisation or a launch inside a capture is refused and
 *   spoils it; the CPU backend has no graphs;
 * - the runner: eager warm-up, capture, replay; a key change captures again; a failed capture
 *   falls back to eager with the same numbers; DM_CUDA_GRAPHS=0 turns it off;
 * - a deliberately non-replayable forward (a ring-buffer slot and an activation chosen on the
 *   host per frame) gives other numbers when replayed: the emulation catches what a GPU would
 *   get wrong;
 * - every model's graph path: RVM (a sequence across a state reset, with and without the
 *   foreground), DA-V2 (batch 1 and a partial batch 3, source and model size), VDA streaming
 *   (encoder graph): replayed frames bitwise equal to the same run with graphs off, with
 *   launches counted (the graph path really ran);
 * - the launch figures of docs/gpu.md "CUDA Graphs": ops (kernel launches) per forward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/backend_emu.h"
#include "depthmatte/da2.h"
#include "depthmatte/graph.h"
#include "depthmatte/recipe.h"
#include "depthmatte/rvm.h"
#include "depthmatte/vda.h"
#include "tensor_compare.h"

enum { H = 48, W = 64, N = 12 };

static void make_frame(uint8_t *rgb, int seed) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                double v = 128 + 90 * sin(0.21 * x + 0.13 * y * (c + 1) + seed) +
                           30 * cos(0.9 * x * y / 17.0 + c + seed);
                rgb[(y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

static int same(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
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

static void download(dm_backend *be, const dm_tensor *dev, float *v) {
    dm_tensor h;
    const int64_t s[] = {N};
    dm_tensor_view(&h, v, DM_DTYPE_F32, 1, s);
    CHECK_OK(dm_copy(be, dev, &h));
}

/* ---- engine: record, replay, refusals ----------------------------------------------------- */

static void test_engine(void) {
    dm_backend *cpu = dm_backend_cpu_create(1), *be = emu();
    CHECK(!dm_backend_supports_graphs(cpu) && dm_backend_supports_graphs(be));
    CHECK(dm_graph_begin(cpu) == DM_ERR_UNSUPPORTED);
    const int64_t s[] = {N};
    dm_tensor x, y, z;
    CHECK_OK(dm_alloc(be, &x, DM_DTYPE_F32, 1, s));
    CHECK_OK(dm_alloc(be, &y, DM_DTYPE_F32, 1, s));
    CHECK_OK(dm_alloc(be, &z, DM_DTYPE_F32, 1, s));
    float in[N], out[N], want[N];
    for (int i = 0; i < N; i++)
        in[i] = (float)(i - 5) * 0.5f;
    upload(be, &x, in);
    /* y = relu(x); z = y * x: recorded, not run (y, z stay zero) */
    const int64_t ops0 = dm_backend_emu_op_count(be);
    CHECK_OK(dm_graph_begin(be));
    CHECK(dm_graph_begin(be) == DM_ERR_ARG); /* already capturing */
    CHECK_OK(dm_activation(be, &x, DM_ACT_RELU, &y));
    CHECK_OK(dm_binary(be, &y, &x, DM_BINARY_MUL, &z));
    dm_graph *g = NULL;
    CHECK_OK(dm_graph_end(be, &g));
    CHECK(g != NULL && dm_backend_emu_op_count(be) == ops0 + 2);
    download(be, &z, out);
    for (int i = 0; i < N; i++)
        CHECK(out[i] == 0.f);
    /* replay on two sets of inputs: what the eager ops give */
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < N; i++)
            in[i] = (float)(i - 4 - rep) * (rep ? -0.25f : 0.5f);
        upload(be, &x, in);
        CHECK_OK(dm_graph_launch(be, g));
        download(be, &z, out);
        for (int i = 0; i < N; i++)
            want[i] = (in[i] < 0 ? 0.f : in[i]) * in[i]; /* relu(-0) = -0 as in PyTorch */
        CHECK(same(out, want, N));
    }
    CHECK(dm_backend_emu_launch_count(be) == 2);
    /* refusals inside a capture, each spoiling it (graph_end fails, no graph) */
    dm_tensor h, extra;
    float host[N] = {0};
    dm_tensor_view(&h, host, DM_DTYPE_F32, 1, s);
    const int64_t srgb[] = {1, 2, 2, 3}, simg[] = {1, 3, 2, 2};
    uint8_t rgb[12] = {0};
    dm_tensor hrgb, img;
    dm_tensor_view(&hrgb, rgb, DM_DTYPE_U8, 4, srgb);
    CHECK_OK(dm_alloc(be, &img, DM_DTYPE_F32, 4, simg));
    for (int k = 0; k < 6; k++) {
        CHECK_OK(dm_graph_begin(be));
        CHECK_OK(dm_activation(be, &x, DM_ACT_RELU, &y)); /* fine, recorded */
        dm_status st = DM_OK;
        switch (k) {
        case 0:
            st = dm_alloc(be, &extra, DM_DTYPE_F32, 1, s);
            break;
        case 1:
            st = dm_copy(be, &h, &x);
            break; /* upload */
        case 2:
            st = dm_copy(be, &x, &h);
            break; /* download */
        case 3:
            st = dm_synchronize(be);
            break;
        case 4:
            st = dm_image_from_u8(be, &hrgb, &img);
            break;
        case 5:
            st = dm_graph_launch(be, g);
            break;
        }
        CHECK(st == DM_ERR_BACKEND);
        CHECK(strstr(dm_error_message(), "during graph capture") != NULL);
        dm_graph *bad = NULL;
        CHECK(dm_graph_end(be, &bad) == DM_ERR_BACKEND && bad == NULL);
    }
    dm_graph_free(g);
    CHECK(dm_graph_end(be, &g) == DM_ERR_ARG && g == NULL); /* no capture: g reset */
    /* a host tensor given to an op is refused at capture time, as eagerly */
    CHECK_OK(dm_graph_begin(be));
    CHECK(dm_activation(be, &h, DM_ACT_RELU, &y) == DM_ERR_UNSUPPORTED);
    dm_graph *g2 = NULL;
    CHECK_OK(dm_graph_end(be, &g2)); /* the refused op was not recorded: an empty graph */
    CHECK_OK(dm_graph_launch(be, g2));
    dm_graph_free(g2);
    dm_tensor_free(&x), dm_tensor_free(&y), dm_tensor_free(&z), dm_tensor_free(&img);
    dm_backend_destroy(be), dm_backend_destroy(cpu);
    printf("engine: record/replay/refusals checked\n");
}

/* ---- the runner, and a forward that is not replayable ------------------------------------- */

typedef struct toy {
    dm_backend *be;
    dm_tensor x, pool, y; /* x (N) input, pool (3 N) ring of three slots, y (N) output */
    int frame;
    int ring;          /* 1: writes slot frame % 3 (a host-side index) */
    int act;           /* 1: relu on even frames, tanh on odd ones (a host-side parameter) */
    int upload_inside; /* 1: uploads its input inside the body (not capturable) */
    float host_in[N];
} toy;

static dm_status toy_body(void *arg) {
    toy *t = arg;
    const int64_t s[] = {N};
    dm_status st;
    if (t->upload_inside) {
        dm_tensor h;
        dm_tensor_view(&h, t->host_in, DM_DTYPE_F32, 1, s);
        if ((st = dm_copy(t->be, &h, &t->x))) return st;
    }
    /* y = act(x) + the previous frame's act(x): written to / read from ring slots when
     * `ring` (a cache indexed on the host, as VDA streaming's), else two fixed slots copied */
    const int slot = t->ring ? t->frame % 3 : 0, prev = t->ring ? (t->frame + 2) % 3 : 1;
    dm_tensor sw = dm_tensor_sub(&t->pool, (int64_t)slot * N, 1, s),
              sr = dm_tensor_sub(&t->pool, (int64_t)prev * N, 1, s);
    const dm_act a = t->act && (t->frame & 1) ? DM_ACT_TANH : DM_ACT_RELU;
    if ((st = dm_activation(t->be, &t->x, a, &sw)) ||
        (st = dm_binary(t->be, &sw, &sr, DM_BINARY_ADD, &t->y)))
        return st;
    /* fixed slots: the state moves by a device copy (as RVM's r_out -> r_in) */
    return t->ring ? DM_OK : dm_copy(t->be, &sw, &sr);
}

/* Runs 5 frames of the toy with graphs on or off into out[5][N]; returns the runner's counts. */
static dm_graph_runner toy_run_keys(int ring, int act, int upload_inside, int graphs,
                                    int key1_from, float out[5][N]);
static dm_graph_runner toy_run(int ring, int act, int upload_inside, int graphs, float out[5][N]) {
    return toy_run_keys(ring, act, upload_inside, graphs, 5, out);
}

/* As toy_run, with the runner's key 1 from frame key1_from on (0 before). */
static dm_graph_runner toy_run_keys(int ring, int act, int upload_inside, int graphs,
                                    int key1_from, float out[5][N]) {
    toy t = {0};
    t.be = emu();
    t.ring = ring, t.act = act, t.upload_inside = upload_inside;
    const int64_t s[] = {N}, s3[] = {3 * N};
    CHECK_OK(dm_alloc(t.be, &t.x, DM_DTYPE_F32, 1, s));
    CHECK_OK(dm_alloc(t.be, &t.pool, DM_DTYPE_F32, 1, s3));
    CHECK_OK(dm_alloc(t.be, &t.y, DM_DTYPE_F32, 1, s));
    if (!graphs) setenv("DM_CUDA_GRAPHS", "0", 1);
    dm_graph_runner r;
    dm_graph_runner_init(&r, t.be, 1);
    unsetenv("DM_CUDA_GRAPHS");
    CHECK(r.enabled == graphs);
    for (t.frame = 0; t.frame < 5; t.frame++) {
        for (int i = 0; i < N; i++)
            t.host_in[i] = (float)((i * 7 + t.frame * 3) % 11) - 5.f;
        if (!upload_inside) upload(t.be, &t.x, t.host_in);
        CHECK_OK(dm_graph_runner_run(&r, t.frame >= key1_from, toy_body, &t));
        download(t.be, &t.y, out[t.frame]);
    }
    dm_graph_runner_free(&r);
    dm_tensor_free(&t.x), dm_tensor_free(&t.pool), dm_tensor_free(&t.y);
    dm_backend_destroy(t.be);
    return r;
}

static void test_runner(void) {
    float ref[5][N], got[5][N];
    /* replayable: frame 0 eager, 1 captured, 2..4 replayed; all equal to eager */
    dm_graph_runner r = toy_run(0, 0, 0, 1, got);
    dm_graph_runner off = toy_run(0, 0, 0, 0, ref);
    CHECK(off.eager == 5 && off.captures == 0 && off.replays == 0);
    CHECK(r.eager == 1 && r.captures == 1 && r.replays == 3 && r.failed == 0);
    CHECK(same(&got[0][0], &ref[0][0], 5 * N));
    /* not replayable: the ring slot (frame % 3) or the activation (frame parity) is chosen on
     * the host; the graph keeps frame 1's, so the replayed frames differ from eager ones */
    for (int k = 0; k < 2; k++) {
        toy_run(k == 0, k == 1, 0, 0, ref);
        r = toy_run(k == 0, k == 1, 0, 1, got);
        CHECK(r.replays == 3);
        CHECK(same(got[0], ref[0], N) && same(got[1], ref[1], N)); /* eager, captured */
        int differs = 0;
        for (int f = 2; f < 5; f++)
            differs += !same(got[f], ref[f], N);
        printf("non-replayable toy (%s): %d of 3 replayed frames differ from eager\n",
               k == 0 ? "ring slot baked" : "activation baked", differs);
        /* ring: replays keep writing slot 1 and reading slot 0 (frame 0's values) */
        /* activation: the graph keeps frame 1's tanh (frames 2 and 4 take relu eagerly), and
         * frame 3 adds the previous frame's value, which differs already */
        CHECK(differs == 3);
    }
    /* a body that uploads inside: the capture fails, the runner stays eager, same numbers */
    toy_run(0, 0, 1, 0, ref);
    r = toy_run(0, 0, 1, 1, got);
    CHECK(r.failed == 1 && r.enabled == 0 && r.captures == 0 && r.replays == 0 && r.eager == 5);
    CHECK(same(&got[0][0], &ref[0][0], 5 * N));
    /* the key changes after the first (eager) call, before any capture: the new variant
     * warms up eagerly too (its first run sizes what it needs) before it is captured */
    r = toy_run_keys(0, 0, 0, 1, 1, got);
    CHECK(r.eager == 2 && r.captures == 1 && r.replays == 2 && r.failed == 0);
    toy_run(0, 0, 0, 0, ref);
    CHECK(same(&got[0][0], &ref[0][0], 5 * N));
    printf("runner: warm-up/capture/replay, a new key warmed up, fallback after a refused "
           "upload checked\n");
}

/* ---- the models' graph paths: graphs on == graphs off, bitwise --------------------------- */

/* A backend made with graphs on or off (the runners read DM_CUDA_GRAPHS when a context is
 * made, so the variable is set around the model calls that make them). */
static void graphs_env(int on) {
    if (on)
        unsetenv("DM_CUDA_GRAPHS");
    else
        setenv("DM_CUDA_GRAPHS", "0", 1);
}

enum { RVM_T = 7, RVM_RESET = 4 };

/* RVM: frames 0..3, reset, frames 4..6 (the reset's zero state replayed through the graph),
 * foreground wanted except on frame 6 (a key change: captured again); graphs vs none. */
static void test_rvm(const uint8_t *const *frames, const char *wpath, rvm_variant variant) {
    const size_t per = (size_t)4 * H * W;
    float *out[2];
    int64_t launches = 0, ops_frame = 0;
    for (int g = 0; g < 2; g++) {
        out[g] = calloc((size_t)RVM_T * per, sizeof(float));
        graphs_env(g);
        dm_backend *be = emu();
        rvm_model *m = NULL;
        rvm_state *s = NULL;
        CHECK_OK(rvm_model_load_variant(&m, wpath, variant, be));
        if (m) CHECK_OK(rvm_state_init(&s, m, be, H, W, 0.5));
        for (int f = 0; s && f < RVM_T; f++) {
            if (f == RVM_RESET) CHECK_OK(rvm_state_reset(s));
            float *o = out[g] + (size_t)f * per;
            const int64_t ops = dm_backend_emu_op_count(be);
            CHECK_OK(rvm_forward_u8(s, frames[f % 3], f == RVM_T - 1 ? NULL : o, o + 3 * H * W));
            if (!g && f == 1) ops_frame = dm_backend_emu_op_count(be) - ops;
        }
        launches = dm_backend_emu_launch_count(be);
        rvm_state_free(s);
        rvm_model_free(m);
        dm_backend_destroy(be);
    }
    graphs_env(1);
    /* frames 0 eager, 1 captured, 2..5 replayed, 6 (no fgr) eager again */
    printf("rvm %s: %lld ops per frame eager; %lld graph launches; graphs == eager: %s\n",
           rvm_variant_name(variant), (long long)ops_frame, (long long)launches,
           same(out[0], out[1], (size_t)RVM_T * per) ? "bitwise" : "NO");
    CHECK(launches == 5);
    CHECK(same(out[0], out[1], (size_t)RVM_T * per));
    /* the reset really restarted the sequence: frame 4 (frames[1] after a reset) differs from
     * frame 1 (frames[1] after frame 0) */
    CHECK(!same(out[1] + per, out[1] + (size_t)RVM_RESET * per, per));
    free(out[0]), free(out[1]);
}

/* DA-V2: batch 1 over 4 frames (source size, then model size: a key change), and a batch of
 * 3 over full and partial batches; graphs vs none. */
static void test_da2(const uint8_t *const *frames) {
    char wpath[512];
    if (!tc_recipe_file("golden/da2_vits/recipe.json", "da2", wpath, sizeof wpath)) {
        printf("SKIPPED da2 part: golden/da2_vits/recipe.json not found\n");
        return;
    }
    enum { CALLS = 6 };
    float *out[2];
    int64_t launches = 0, ops_frame = 0;
    for (int g = 0; g < 2; g++) {
        out[g] = calloc((size_t)CALLS * 4 * H * W, sizeof(float));
        graphs_env(g);
        dm_backend *be = emu();
        da2_model *m = NULL;
        da2_ctx *c1 = NULL, *c3 = NULL;
        CHECK_OK(da2_model_load(&m, wpath, be));
        if (m) CHECK_OK(da2_ctx_init(&c1, m, be, H, W, 42));
        if (m) CHECK_OK(da2_ctx_init_batch(&c3, m, be, H, W, 42, 3));
        for (int f = 0; c1 && c3 && f < CALLS; f++) {
            float *o = out[g] + (size_t)f * 4 * H * W; /* batch 1, then batch 3 */
            const int64_t ops = dm_backend_emu_op_count(be);
            const uint8_t *one = frames[f % 3];
            CHECK_OK(da2_infer_u8_batch(c1, &one, 1, o, f >= 4)); /* model size at 4, 5 */
            if (!g && f == 1) ops_frame = dm_backend_emu_op_count(be) - ops;
            const uint8_t *b[3] = {frames[(f + 1) % 3], frames[(f + 2) % 3], frames[f % 3]};
            CHECK_OK(da2_infer_u8_batch(c3, b, f == 3 ? 2 : 3, o + H * W, 0));
        }
        launches = dm_backend_emu_launch_count(be);
        da2_ctx_free(c1), da2_ctx_free(c3);
        da2_model_free(m);
        dm_backend_destroy(be);
    }
    graphs_env(1);
    /* batch 1: calls 0, 4 eager, 1, 5 captured, 2, 3 replayed; batch 3: 0 eager, 1 captured,
     * 2..5 replayed (the partial batch 3 included) */
    printf("da2: %lld ops per frame eager (batch 1); %lld graph launches; graphs == eager: %s\n",
           (long long)ops_frame, (long long)launches,
           same(out[0], out[1], (size_t)CALLS * 4 * H * W) ? "bitwise" : "NO");
    CHECK(launches == 4 + 5);
    CHECK(same(out[0], out[1], (size_t)CALLS * 4 * H * W));
    free(out[0]), free(out[1]);
    unlink(wpath);
}

/* VDA: the streaming mode's encoder graph over 13 frames (the cache list slides from frame 11)
 * vs none; and the launch figures of a 32-frame window and a stream frame. */
static void test_vda(const uint8_t *const *frames) {
    char wpath[512];
    if (!tc_recipe_file("golden/vda_vits/recipe.json", "vda", wpath, sizeof wpath)) {
        printf("SKIPPED vda part: golden/vda_vits/recipe.json not found\n");
        return;
    }
    enum { T = 13 };
    float *out[2];
    int64_t launches = 0, ops_frame = 0, ops_window = 0, ops_f1[2] = {0, 0};
    for (int g = 0; g < 2; g++) {
        out[g] = calloc((size_t)T * H * W, sizeof(float));
        graphs_env(g);
        dm_backend *be = emu();
        vda_model *m = NULL;
        vda_stream *s = NULL;
        CHECK_OK(vda_model_load(&m, wpath, be, 0));
        if (m) CHECK_OK(vda_stream_init(&s, m, be, H, W, 28));
        for (int f = 0; s && f < T; f++) {
            const int64_t ops = dm_backend_emu_op_count(be);
            CHECK_OK(vda_stream_push(s, frames[(f * 2) % 3], out[g] + (size_t)f * H * W));
            if (!g && f == 12) ops_frame = dm_backend_emu_op_count(be) - ops;
            if (f == 1) ops_f1[g] = dm_backend_emu_op_count(be) - ops;
        }
        launches = dm_backend_emu_launch_count(be);
        if (!g && m) { /* one window, eager */
            vda_ctx *c = NULL;
            const uint8_t *win[VDA_WINDOW];
            for (int i = 0; i < VDA_WINDOW; i++)
                win[i] = frames[i % 3];
            float *raw = malloc(sizeof(float) * VDA_WINDOW * H * W);
            CHECK_OK(vda_ctx_init(&c, m, be, H, W, 28));
            const int64_t ops = dm_backend_emu_op_count(be);
            if (c) CHECK_OK(vda_window_depth(c, win, raw));
            ops_window = dm_backend_emu_op_count(be) - ops;
            vda_ctx_free(c);
            free(raw);
        }
        vda_stream_free(s);
        vda_model_free(m);
        dm_backend_destroy(be);
    }
    graphs_env(1);
    printf("vda stream: %lld ops per frame eager (frame 12); %lld encoder graph launches; "
           "graphs == eager: %s\n",
           (long long)ops_frame, (long long)launches,
           same(out[0], out[1], (size_t)T * H * W) ? "bitwise" : "NO");
    /* frame 1 with graphs counts the encoder twice (recorded, then replayed) */
    printf("vda stream: encoder graph %lld ops, head and copies eager %lld ops per frame\n",
           (long long)(ops_f1[1] - ops_f1[0]), (long long)(ops_frame - (ops_f1[1] - ops_f1[0])));
    printf("vda window (32 frames): %lld ops eager\n", (long long)ops_window);
    CHECK(launches == T - 1); /* frame 0 eager, 1 captured, 2.. replayed */
    CHECK(same(out[0], out[1], (size_t)T * H * W));
    CHECK(ops_window > 0);
    free(out[0]), free(out[1]);
    unlink(wpath);
}

int main(void) {
    unsetenv("DM_CUDA_GRAPHS");
    test_engine();
    test_runner();
    uint8_t *f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = malloc((size_t)H * W * 3);
        make_frame(f[i], i);
    }
    const uint8_t *frames[3] = {f[0], f[1], f[2]};
    const char *mbv3 = tc_shared_path("models/rvm_mobilenetv3.safetensors");
    if (access(mbv3, R_OK))
        printf("SKIPPED rvm mobilenetv3 part: %s not found\n", mbv3);
    else
        test_rvm(frames, mbv3, RVM_VARIANT_MOBILENETV3);
    char r50[512];
    if (tc_recipe_file("golden/rvm_r50/recipe.json", "rvm_r50", r50, sizeof r50)) {
        test_rvm(frames, r50, RVM_VARIANT_RESNET50);
        unlink(r50);
    } else {
        printf("SKIPPED rvm resnet50 part: golden/rvm_r50/recipe.json not found\n");
    }
    test_da2(frames);
    test_vda(frames);
    for (int i = 0; i < 3; i++)
        free(f[i]);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
