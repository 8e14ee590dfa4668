/* The device code paths of the models, on a machine without a GPU: every model on the emulated
 * device backend (include/depthmatte/backend_emu.h: CPU ops behind device rules, host tensors
 * refused) against the CPU backend.
 * RVM runs in both variants (MobileNetV3 with the real weights, ResNet50 with recipe weights).
 * - float32: bitwise equal (the same ops on the same values; any difference means a model
 *   reads host memory where it should use its device copy, or misses an upload/download);
 * - float16 emulation: not equal (the rounding really happens) and within 0.1 * std of the
 *   CPU output. This checks the plumbing of reduced precision, not its conformance: the
 *   conformance bound (max <= 1e-2 * std, mean <= 1e-3 * std) is judged on the golden tensors
 *   by the GPU tests. Measured here (48x64 frames, recipe weights): RVM 5.6e-3 * std,
 *   DA-V2 7.4e-3 * std, VDA 1.05e-2 * std -- VDA in float16 is at the conformance bound;
 *   the VDA streaming mode (vda_stream, 13 frames) is judged the same way;
 * - a deliberately perturbed op makes the output differ by more than that bound (the fault
 *   the selftest and runtime.verify must catch is real);
 * plus the engine pieces they rest on: dm_tensor_sub bounds, dm_tensor_upload, supports. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/backend_emu.h"
#include "depthmatte/da2.h"
#include "depthmatte/recipe.h"
#include "depthmatte/rvm.h"
#include "depthmatte/vda.h"
#include "tensor_compare.h"

enum { H = 48, W = 64 };

/* A deterministic frame with structure at several scales (values 0..255). */
static void make_frame(uint8_t *rgb, int seed) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                double v = 128 + 90 * sin(0.21 * x + 0.13 * y * (c + 1) + seed) +
                           30 * cos(0.9 * x * y / 17.0 + c);
                rgb[(y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN counts as the largest difference */
    }
    return m;
}

/* Compares a device result with the CPU one per the rules in the header. */
static void judge(const char *name, dm_dtype precision, const char *perturb, const float *got,
                  const float *ref, size_t n) {
    const double sd = tc_std(ref, (int64_t)n), d = max_abs_diff(got, ref, n);
    const double bound = (precision == DM_DTYPE_F32 ? 1e-2 : 1e-1) * sd;
    printf("%-28s %-5s perturb=%-9s max|dev-cpu| %.3g = %.3g * std (bound %.3g)\n", name,
           dm_dtype_name(precision), perturb ? perturb : "-", d, d / sd, bound);
    if (perturb)
        CHECK(d > bound);
    else if (precision == DM_DTYPE_F32)
        CHECK(d == 0.0);
    else {
        CHECK(d <= bound);
        CHECK(d > 0.0);
    }
}

static dm_backend *emu(dm_dtype p, const char *perturb) {
    dm_backend *be = NULL;
    CHECK_OK(dm_backend_emu_create(2, p, perturb, &be));
    return be;
}

static const struct {
    dm_dtype p;
    const char *perturb;
} variants[] = {{DM_DTYPE_F32, NULL}, {DM_DTYPE_F16, NULL}, {DM_DTYPE_F32, "conv2d"}};

/* RVM of `variant` with the weights at wpath (MobileNetV3: the real file; ResNet50: recipe). */
static void test_rvm(dm_backend *cpu, const uint8_t *frames[3], const char *wpath,
                     rvm_variant variant) {
    char name[64];
    snprintf(name, sizeof name, "rvm %s fgr+pha (3+1 frames)", rvm_variant_name(variant));
    float *ref = malloc(sizeof(float) * 16 * H * W), *got = malloc(sizeof(float) * 16 * H * W);
    for (int v = -1; v < (int)(sizeof variants / sizeof variants[0]); v++) {
        dm_backend *be = v < 0 ? cpu : emu(variants[v].p, variants[v].perturb);
        rvm_model *m = NULL;
        rvm_state *s = NULL;
        CHECK_OK(rvm_model_load_variant(&m, wpath, variant, be));
        if (m) CHECK_OK(rvm_state_init(&s, m, be, H, W, 0.5));
        float *out = v < 0 ? ref : got;
        for (int f = 0; s && f < 3; f++) /* recurrent: frames 0, 1, 2, then reset and 0 again */
            CHECK_OK(rvm_forward_u8(s, frames[f], out + (size_t)f * 4 * H * W,
                                    out + (size_t)f * 4 * H * W + 3 * H * W));
        if (s) CHECK_OK(rvm_state_reset(s));
        const int64_t allocs = dm_backend_emu_alloc_count(be);
        if (s) CHECK_OK(rvm_forward_u8(s, frames[0], out + 3 * 4 * H * W, out + 3 * 4 * H * W + 3 * H * W));
        if (v == 0) { /* the frame loop allocates nothing on the device */
            printf("%-28s device allocations in frame 4: %lld\n", name,
                   (long long)(dm_backend_emu_alloc_count(be) - allocs));
            CHECK(allocs >= 0 && dm_backend_emu_alloc_count(be) == allocs);
        }
        if (v >= 0)
            judge(name, variants[v].p, variants[v].perturb, got, ref,
                  (size_t)4 * 4 * H * W);
        else /* reset reproduces frame 0 exactly on the CPU */
            CHECK(max_abs_diff(ref, ref + 3 * 4 * H * W, (size_t)4 * H * W) == 0.0);
        rvm_state_free(s);
        rvm_model_free(m);
        if (v >= 0) dm_backend_destroy(be);
    }
    free(ref), free(got);
}

static void test_da2(dm_backend *cpu, const uint8_t *frame) {
    char wpath[512];
    if (!tc_recipe_file("golden/da2_vits/recipe.json", "da2", wpath, sizeof wpath)) {
        printf("SKIPPED da2 part: golden/da2_vits/recipe.json not found\n");
        return;
    }
    float ref[H * W], got[H * W];
    for (int v = -1; v < (int)(sizeof variants / sizeof variants[0]); v++) {
        dm_backend *be = v < 0 ? cpu : emu(variants[v].p, v == 2 ? "linear" : variants[v].perturb);
        da2_model *m = NULL;
        da2_ctx *c = NULL;
        CHECK_OK(da2_model_load(&m, wpath, be));
        if (m) CHECK_OK(da2_ctx_init(&c, m, be, H, W, 42));
        if (c) CHECK_OK(da2_infer_u8(c, frame, v < 0 ? ref : got));
        if (c && v == 0) { /* later frames allocate nothing on the device */
            const int64_t allocs = dm_backend_emu_alloc_count(be);
            float again[H * W];
            CHECK_OK(da2_infer_u8(c, frame, again));
            printf("da2 device allocations in frame 2: %lld\n",
                   (long long)(dm_backend_emu_alloc_count(be) - allocs));
            CHECK(allocs >= 0 && dm_backend_emu_alloc_count(be) == allocs);
            CHECK(max_abs_diff(again, got, H * W) == 0.0);
        }
        if (v >= 0) judge("da2 depth", variants[v].p, v == 2 ? "linear" : NULL, got, ref, H * W);
        da2_ctx_free(c);
        da2_model_free(m);
        if (v >= 0) dm_backend_destroy(be);
    }
    unlink(wpath);
}

/* runtime.batch_size: frames of a batch are computed independently (nothing mixes across the
 * batch dimension), so a frame's depth (source size and model grid) depends on the batch size
 * and on the frames beside it only through float32 rounding: OpenBLAS blocks a GEMM by its row
 * count M = B * tokens, which changes the summation order. Bound 1e-5 * std: a K = 1536 dot
 * product in float32 errs by ~sqrt(K) * 2^-24 = 2.3e-6 relative; measured 3.4-4.4e-6 * std
 * (48x64 frames, input 42). A frame mixed up with its neighbour would differ by O(std). */
static void test_da2_batch(dm_backend *cpu, const uint8_t *frames[3]) {
    char wpath[512];
    if (!tc_recipe_file("golden/da2_vits/recipe.json", "da2b", wpath, sizeof wpath)) return;
    dm_backend *emu_be = emu(DM_DTYPE_F32, NULL);
    dm_backend *bes[2] = {cpu, emu_be};
    float one[3][H * W], many[3 * H * W];
    for (int b = 0; b < 2; b++) {
        da2_model *m = NULL;
        da2_ctx *c1 = NULL, *c3 = NULL;
        CHECK_OK(da2_model_load(&m, wpath, bes[b]));
        if (m) CHECK_OK(da2_ctx_init(&c1, m, bes[b], H, W, 42));
        if (m) CHECK_OK(da2_ctx_init_batch(&c3, m, bes[b], H, W, 42, 3));
        for (int model_size = 0; c1 && c3 && model_size < 2; model_size++) {
            int h = H, w = W;
            if (model_size) da2_ctx_input_dims(c1, &h, &w);
            for (int i = 0; i < 3; i++)
                CHECK_OK(da2_infer_u8_batch(c1, &frames[i], 1, one[i], model_size));
            CHECK_OK(da2_infer_u8_batch(c3, frames, 3, many, model_size));
            double worst = 0;
            for (int i = 0; i < 3; i++) {
                const double d = max_abs_diff(one[i], many + (size_t)i * h * w, (size_t)h * w) /
                                 tc_std(one[i], (int64_t)h * w);
                CHECK(d <= 1e-5);
                worst = d > worst ? d : worst;
            }
            /* a partial batch (2 of 3 slots), frames in another order; no device allocation */
            const uint8_t *two[2] = {frames[2], frames[0]};
            const int64_t allocs = dm_backend_emu_alloc_count(bes[b]);
            CHECK_OK(da2_infer_u8_batch(c3, two, 2, many, model_size));
            CHECK(dm_backend_emu_alloc_count(bes[b]) == allocs);
            CHECK(max_abs_diff(one[2], many, (size_t)h * w) <= 1e-5 * tc_std(one[2], (int64_t)h * w));
            CHECK(max_abs_diff(one[0], many + (size_t)h * w, (size_t)h * w) <=
                  1e-5 * tc_std(one[0], (int64_t)h * w));
            printf("da2 batch 3 vs batch 1 (%s, %s size): max %.3g * std (bound 1e-5)\n",
                   bes[b]->ops->name, model_size ? "model" : "source", worst);
        }
        CHECK(da2_infer_u8_batch(c3, frames, 4, many, 0) == DM_ERR_ARG);
        da2_ctx_free(c1), da2_ctx_free(c3);
        da2_model_free(m);
    }
    dm_backend_destroy(emu_be);
    unlink(wpath);
}

static void test_vda(dm_backend *cpu, const uint8_t *frames[3]) {
    char wpath[512];
    if (!tc_recipe_file("golden/vda_vits/recipe.json", "vda", wpath, sizeof wpath)) {
        printf("SKIPPED vda part: golden/vda_vits/recipe.json not found\n");
        return;
    }
    const uint8_t *win[VDA_WINDOW];
    for (int s = 0; s < VDA_WINDOW; s++) win[s] = frames[s % 3];
    float *ref = malloc(sizeof(float) * VDA_WINDOW * H * W), *got = malloc(sizeof(float) * VDA_WINDOW * H * W);
    for (int v = -1; v < (int)(sizeof variants / sizeof variants[0]); v++) {
        dm_backend *be = v < 0 ? cpu : emu(variants[v].p, v == 2 ? "attention" : NULL);
        vda_model *m = NULL;
        vda_ctx *c = NULL;
        CHECK_OK(vda_model_load(&m, wpath, be, 0));
        if (m) CHECK_OK(vda_ctx_init(&c, m, be, H, W, 28));
        const int64_t allocs = dm_backend_emu_alloc_count(be);
        if (c) CHECK_OK(vda_window_depth(c, win, v < 0 ? ref : got));
        if (v == 0) { /* a window (preprocessing included) allocates nothing on the device */
            printf("vda device allocations in a window: %lld\n",
                   (long long)(dm_backend_emu_alloc_count(be) - allocs));
            CHECK(allocs >= 0 && dm_backend_emu_alloc_count(be) == allocs);
        }
        if (v >= 0)
            judge("vda window (32 frames)", variants[v].p, v == 2 ? "attention" : NULL, got, ref,
                  (size_t)VDA_WINDOW * H * W);
        vda_ctx_free(c);
        vda_model_free(m);
        if (v >= 0) dm_backend_destroy(be);
    }
    free(ref), free(got);
    unlink(wpath);
}

/* The streaming mode (vda_stream): STREAM_N frames, past frame 11 where the cache list starts
 * sliding, so the device path of the cache pools, the window assembly (dm_copy of pool slots)
 * and the single-query attention all run; all STREAM_N depth frames are judged. */
enum { STREAM_N = 13 };
static void test_vda_stream(dm_backend *cpu, const uint8_t *frames[3]) {
    char wpath[512];
    if (!tc_recipe_file("golden/vda_vits/recipe.json", "vdas", wpath, sizeof wpath)) {
        printf("SKIPPED vda stream part: golden/vda_vits/recipe.json not found\n");
        return;
    }
    const size_t n = (size_t)STREAM_N * H * W;
    float *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    for (int v = -1; v < (int)(sizeof variants / sizeof variants[0]); v++) {
        dm_backend *be = v < 0 ? cpu : emu(variants[v].p, v == 2 ? "attention" : NULL);
        vda_model *m = NULL;
        vda_stream *s = NULL;
        CHECK_OK(vda_model_load(&m, wpath, be, 0));
        if (m) CHECK_OK(vda_stream_init(&s, m, be, H, W, 28));
        for (int i = 0; s && i < STREAM_N; i++)
            CHECK_OK(vda_stream_push(s, frames[(i * 2) % 3], (v < 0 ? ref : got) + (size_t)i * H * W));
        if (v >= 0)
            judge("vda stream (13 frames)", variants[v].p, v == 2 ? "attention" : NULL, got, ref,
                  n);
        vda_stream_free(s);
        vda_model_free(m);
        if (v >= 0) dm_backend_destroy(be);
    }
    free(ref), free(got);
    unlink(wpath);
}

static void test_engine_pieces(void) {
    dm_backend *cpu = dm_backend_cpu_create(1), *be = emu(DM_DTYPE_F16, NULL);
    /* views keep dtype/device and refuse what does not fit */
    dm_tensor t;
    const int64_t s10[] = {10}, s4[] = {4}, s2x3[] = {2, 3};
    CHECK_OK(dm_alloc(be, &t, DM_DTYPE_F32, 1, s10));
    dm_tensor v = dm_tensor_sub(&t, 6, 1, s4);
    CHECK(v.data == (float *)t.data + 6 && v.device == DM_DEVICE_EMU && !v.owns_data);
    v = dm_tensor_sub(&t, 20, 1, s4); /* past the 64-byte capacity */
    CHECK(v.data == NULL);
    v = dm_tensor_sub(&t, 4, 2, s2x3);
    CHECK(v.data != NULL && v.ndim == 2 && v.shape[1] == 3);
    /* ops refuse host tensors on a device backend, naming the argument */
    dm_tensor h, y;
    CHECK_OK(dm_tensor_alloc(&h, DM_DTYPE_F32, 1, s10));
    CHECK_OK(dm_alloc(be, &y, DM_DTYPE_F32, 1, s10));
    CHECK(dm_activation(be, &h, DM_ACT_RELU, &y) == DM_ERR_UNSUPPORTED);
    CHECK(strstr(dm_error_message(), "x is not a tensor of the emulated device") != NULL);
    /* upload into the storage dtype: host values arrive rounded to f16, 2 bytes each; into
     * f32 they stay as they are (mixed storage, as on CUDA); the host buffer is gone */
    dm_tensor h32;
    CHECK_OK(dm_tensor_alloc(&h32, DM_DTYPE_F32, 1, s10));
    dm_f32(&h)[0] = dm_f32(&h32)[0] = 1.0f + 1.0f / 4096; /* not representable in f16 */
    dm_f32(&h)[1] = dm_f32(&h32)[1] = 3.0f;
    CHECK_OK(dm_tensor_upload(be, &h, dm_backend_storage_dtype(be)));
    CHECK(h.device == DM_DEVICE_EMU && h.dtype == DM_DTYPE_F16 && dm_tensor_nbytes(&h) == 20);
    CHECK(dm_f16_to_f32(((uint16_t *)h.data)[0]) == 1.0f &&
          dm_f16_to_f32(((uint16_t *)h.data)[1]) == 3.0f);
    CHECK_OK(dm_tensor_upload(be, &h32, DM_DTYPE_F32));
    CHECK(dm_f32(&h32)[0] == 1.0f + 1.0f / 4096);
    /* an op reads f16 and f32 operands and stores in its output's dtype: 1 + 1/4096 (f32
     * residual) + 1 (f16) = 2 + 1/4096 kept in f32, rounded to 2 in f16 */
    dm_tensor sum32, sum16, back;
    CHECK_OK(dm_alloc(be, &sum32, DM_DTYPE_F32, 1, s10));
    CHECK_OK(dm_alloc(be, &sum16, DM_DTYPE_F16, 1, s10));
    CHECK_OK(dm_binary(be, &h32, &h, DM_BINARY_ADD, &sum32));
    CHECK_OK(dm_binary(be, &h32, &h, DM_BINARY_ADD, &sum16));
    CHECK_OK(dm_tensor_alloc(&back, DM_DTYPE_F32, 1, s10));
    CHECK_OK(dm_copy(be, &sum32, &back));
    CHECK(dm_f32(&back)[0] == 2.0f + 1.0f / 4096 && dm_f32(&back)[1] == 6.0f);
    CHECK_OK(dm_copy(be, &sum16, &back));
    CHECK(dm_f32(&back)[0] == 2.0f && dm_f32(&back)[1] == 6.0f);
    /* a tensor-core op rounds an f32 operand to the precision first (cuda_compute_dtype):
     * linear of x = 1 + 1/4096 (f32) with weight 1 gives 1, not 1 + 1/4096, even into f32 */
    {
        const int64_t s11[] = {1, 1};
        dm_tensor x, w, y1, hw;
        CHECK_OK(dm_tensor_alloc(&hw, DM_DTYPE_F32, 2, s11));
        dm_f32(&hw)[0] = 1.0f + 1.0f / 4096;
        CHECK_OK(dm_alloc(be, &x, DM_DTYPE_F32, 2, s11));
        CHECK_OK(dm_copy(be, &hw, &x));
        dm_f32(&hw)[0] = 1.0f;
        CHECK_OK(dm_alloc(be, &w, DM_DTYPE_F16, 2, s11));
        CHECK_OK(dm_copy(be, &hw, &w));
        CHECK_OK(dm_alloc(be, &y1, DM_DTYPE_F32, 2, s11));
        CHECK_OK(dm_linear(be, &x, &w, NULL, DM_ACT_NONE, &y1));
        CHECK_OK(dm_copy(be, &y1, &hw));
        CHECK(dm_f32(&hw)[0] == 1.0f);
        dm_tensor_free(&x), dm_tensor_free(&w), dm_tensor_free(&y1), dm_tensor_free(&hw);
    }
    dm_tensor_free(&sum32), dm_tensor_free(&sum16), dm_tensor_free(&back), dm_tensor_free(&h32);
    /* supports */
    CHECK(dm_backend_supports(cpu, DM_OP_CONV2D, DM_DTYPE_F32));
    CHECK(!dm_backend_supports(cpu, DM_OP_CONV2D, DM_DTYPE_F16));
    CHECK(dm_backend_supports(be, DM_OP_ATTENTION, DM_DTYPE_F32));
    CHECK(dm_backend_precision(be) == DM_DTYPE_F16 && dm_backend_storage_dtype(be) == DM_DTYPE_F16);
    CHECK(dm_backend_supports(be, DM_OP_ATTENTION, DM_DTYPE_F16));
    CHECK(dm_backend_residual_dtype(be) == DM_DTYPE_F32);
    CHECK(!strcmp(dm_op_name(DM_OP_MATTING_COMPOSE), "matting_compose"));
    CHECK(!strcmp(dm_op_name(DM_OP_COUNT), "?"));
    /* a bad fault spec is an argument error naming it */
    dm_backend *bad = NULL;
    CHECK(dm_backend_emu_create(1, DM_DTYPE_F32, "convolution", &bad) == DM_ERR_ARG && !bad);
    CHECK(strstr(dm_error_message(), "convolution") != NULL);
    CHECK(dm_backend_emu_create(1, DM_DTYPE_F32, "linear:inf", &bad) == DM_ERR_ARG && !bad);
    dm_tensor_free(&t), dm_tensor_free(&h), dm_tensor_free(&y);
    dm_backend_destroy(be), dm_backend_destroy(cpu);
}

int main(void) {
    test_engine_pieces();
    uint8_t *f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = malloc((size_t)H * W * 3);
        make_frame(f[i], i);
    }
    const uint8_t *frames[3] = {f[0], f[1], f[2]};
    dm_backend *cpu = dm_backend_cpu_create(2);
    const char *mbv3 = tc_shared_path("models/rvm_mobilenetv3.safetensors");
    if (access(mbv3, R_OK))
        printf("SKIPPED rvm mobilenetv3 part: %s not found\n", mbv3);
    else
        test_rvm(cpu, frames, mbv3, RVM_VARIANT_MOBILENETV3);
    char r50[512];
    if (!tc_recipe_file("golden/rvm_r50/recipe.json", "rvm_r50", r50, sizeof r50)) {
        printf("SKIPPED rvm resnet50 part: golden/rvm_r50/recipe.json not found\n");
    } else {
        test_rvm(cpu, frames, r50, RVM_VARIANT_RESNET50);
        unlink(r50);
    }
    test_da2(cpu, frames[0]);
    test_da2_batch(cpu, frames);
    test_vda(cpu, frames);
    test_vda_stream(cpu, frames);
    dm_backend_destroy(cpu);
    for (int i = 0; i < 3; i++) free(f[i]);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
