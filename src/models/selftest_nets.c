/* Selftest part 2: each network on a tiny input with deterministic weights made in memory
 * (dm_st_open_synthetic), on the backend under test and on the CPU backend, compared with
 * dm_tol_network (include/depthmatte/selftest.h, tolerance.h).
 *
 * Weight rules follow the recipes of ../shared/golden/README.md section 1 (uniform, Linear /
 * Conv2d weights sqrt(3/fan_in), ConvTranspose2d sqrt(3/in_channels), biases 0.1, norm weights
 * 1 +- 0.1, LayerScale 0.3 +- 0.1, cls / pos_embed 0.5, last bias offset 0.8 (DA-V2) / 5.5
 * (VDA) so most of the head output stays above its closing ReLU) and, for RVM, those of the
 * ResNet50 recipe (section 4b: BatchNorm statistics positive, running_var 1 +- 0.1) with a
 * gain of sqrt(2) on the convolutions, as most are followed by ReLU / hardswish (recurrent
 * states r1..r4 rms 0.06-0.2 after 2 frames), a smoothing box filter in the deep guided filter
 * and the projection bias centred at 0.5: alpha is then inside (0, 1) almost everywhere (std
 * ~0.18) instead of clamped to 0 (with gain 1 and a random box filter 97 % of it was). The
 * outputs' std is printed in the case column, so a degenerate model would show. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/da2.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"
#include "depthmatte/tolerance.h"
#include "depthmatte/vda.h"
#include "models/selftest_internal.h"

#define SRC_H 48 /* tiny source frames, pixels */
#define SRC_W 64
#define RVM_FRAMES 2         /* the second frame runs with the recurrent state of the first */
#define RVM_RATIO 0.5        /* 24x32 inside, deep guided filter back to 48x64 */
#define DA2_INPUT_SIZE 42    /* -> 42x56 model input, 3x4 patches */
#define VDA_INPUT_SIZE 28    /* -> 28x42 model input, 2x3 patches, 32 frames */
#define WEIGHT_SEED 20261201 /* any value; fixed so that runs are comparable */

static const dm_st_synth_rule k_rvm_rules[] = {
    {"*.num_batches_tracked", DM_ST_SYNTH_COUNTER, 0, 0, 0},
    {"*.running_var", DM_ST_SYNTH_UNIFORM, 1.0, 0.1, 0},
    {"*.running_mean", DM_ST_SYNTH_UNIFORM, 0.0, 0.1, 0},
    /* a smoothing box filter (the trained one is near 1/9, golden README section 4), so the
     * guided filter's mean_y follows the projected alpha */
    {"refiner.box_filter.weight", DM_ST_SYNTH_UNIFORM, 1.0 / 9.0, 0.02, 0},
    /* projected alpha centred at 0.5: not saturated by the final clamp */
    {"project_mat.conv.bias", DM_ST_SYNTH_UNIFORM, 0.5, 0.1, 0},
    {"*.weight", DM_ST_SYNTH_FAN_IN, 0, 1.41421356, 2}, /* convolutions */
    {"*.weight", DM_ST_SYNTH_UNIFORM, 1.0, 0.1, 0},     /* BatchNorm gamma */
    {"*.bias", DM_ST_SYNTH_UNIFORM, 0.0, 0.1, 0},
};

/* DA-V2 and VDA share the encoder and the DPT rules (golden README section 1); the head
 * prefix differs ("depth_head." / "head."). */
#define DINO_DPT_RULES(head_prefix, last_bias)                                                     \
    {"backbone.embeddings.*", DM_ST_SYNTH_ABSENT, 0, 0, 0}, /* transformers names: absent */       \
        {"pretrained.cls_token", DM_ST_SYNTH_UNIFORM, 0, 0.5, 0},                                  \
        {"pretrained.pos_embed", DM_ST_SYNTH_UNIFORM, 0, 0.5, 0},                                  \
        {"pretrained.mask_token", DM_ST_SYNTH_UNIFORM, 0, 0.02, 0},                                \
        {"*.ls[12].gamma", DM_ST_SYNTH_UNIFORM, 0.3, 0.1, 0},                                      \
        {"*.pos_encoder.pe", DM_ST_SYNTH_UNIFORM, 0, 0.5, 0},                                      \
        {head_prefix "scratch.output_conv2.2.bias", DM_ST_SYNTH_UNIFORM, last_bias, 0.1, 0},       \
        {head_prefix "resize_layers.[01].weight", DM_ST_SYNTH_FAN_DIM0, 0, 1.0, 2},                \
        {"*.weight", DM_ST_SYNTH_FAN_IN, 0, 1.0, 2},                                               \
        {"*.weight", DM_ST_SYNTH_UNIFORM, 1.0, 0.1, 0}, /* LayerNorm / GroupNorm */                \
    {                                                                                              \
        "*.bias", DM_ST_SYNTH_UNIFORM, 0, 0.1, 0                                                   \
    }
static const dm_st_synth_rule k_da2_rules[] = {DINO_DPT_RULES("depth_head.", 0.8)};
static const dm_st_synth_rule k_vda_rules[] = {DINO_DPT_RULES("head.", 5.5)};
#define NRULES(a) ((int)(sizeof(a) / sizeof(a)[0]))

static const char *const k_net_names[] = {"rvm_mobilenetv3", "da2_vits", "vda_vits", NULL};

const char *const *dm_selftest_network_names(void) {
    return k_net_names;
}

int st_is_network_name(const char *name) {
    for (int i = 0; k_net_names[i]; i++)
        if (!strcmp(k_net_names[i], name)) return 1;
    return 0;
}

/* Deterministic test frame t (SRC_H, SRC_W, 3) u8: colour gradients, a bright disc that moves
 * with t (a "subject" for the matting and depth nets) and mild noise. */
static void make_frame(uint8_t *rgb, int t) {
    unsigned s = 7u + 31u * (unsigned)t;
    const double cx = 0.35 * SRC_W + 1.5 * t, cy = 0.55 * SRC_H, r = 0.25 * SRC_H;
    for (int y = 0; y < SRC_H; y++)
        for (int x = 0; x < SRC_W; x++) {
            const double d = hypot(x - cx, y - cy);
            const double in = d < r ? 1.0 : 0.0;
            for (int ch = 0; ch < 3; ch++) {
                s = s * 1664525u + 1013904223u;
                double v = 40.0 + 120.0 * x / SRC_W + 60.0 * y / SRC_H * (ch == 2) +
                           in * (150.0 - 40.0 * ch) + (double)(s >> 28) - 8.0;
                rgb[((size_t)y * SRC_W + x) * 3 + ch] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
            }
        }
}

/* Appends the comparison row of one network output. */
static void compare_net(st_ctx *c, const char *net, const char *what, dm_tol_model model,
                        const float *got, const float *ref, int64_t n) {
    const double sd = st_std(ref, n);
    double ss = 0, tol, mean_tol;
    for (int64_t i = 0; i < n; i++)
        ss += (double)ref[i] * ref[i];
    const double rms = n > 0 ? sqrt(ss / (double)n) : 0;
    dm_tol_network(c->o->precision, model, sd, rms, &tol, &mean_tol);
    char label[64];
    snprintf(label, sizeof label, "%s (std %.3g rms %.3g)", what, sd, rms);
    st_compare(c, net, label, got, ref, n, tol, mean_tol);
}

static void net_fail(st_ctx *c, const char *net, const char *side) {
    char note[200];
    snprintf(note, sizeof note, "%s: %s", side, dm_error_message());
    st_fail(c, net, "load / run", note);
}

/* ---- RVM MobileNetV3 ------------------------------------------------------------------------ */

/* Runs RVM_FRAMES frames on backend be; fgr (RVM_FRAMES, 3, H, W), pha (RVM_FRAMES, H, W). */
static dm_status rvm_run(dm_backend *be, const uint8_t *frames, float *fgr, float *pha) {
    dm_st_file f;
    rvm_model *m = NULL;
    rvm_state *s = NULL;
    dm_status st = dm_st_open_synthetic(&f, "synthetic:rvm_mobilenetv3", WEIGHT_SEED, k_rvm_rules,
                                        NRULES(k_rvm_rules));
    if (st) return st;
    st = rvm_model_load_st(&m, &f, be);
    dm_st_close(&f);
    if (!st) st = rvm_state_init(&s, m, be, SRC_H, SRC_W, RVM_RATIO);
    const size_t hw = (size_t)SRC_H * SRC_W;
    for (int t = 0; t < RVM_FRAMES && !st; t++)
        st = rvm_forward_u8(s, frames + (size_t)t * hw * 3, fgr + (size_t)t * 3 * hw,
                            pha + (size_t)t * hw);
    rvm_state_free(s);
    rvm_model_free(m);
    return st;
}

static void net_rvm(st_ctx *c) {
    const char *net = "rvm_mobilenetv3";
    const size_t hw = (size_t)SRC_H * SRC_W;
    uint8_t *frames = malloc(RVM_FRAMES * hw * 3);
    float *buf = malloc(2 * RVM_FRAMES * 4 * hw * sizeof(float));
    if (!frames || !buf) {
        st_fail(c, net, "load / run", "out of memory");
        goto out;
    }
    for (int t = 0; t < RVM_FRAMES; t++)
        make_frame(frames + (size_t)t * hw * 3, t);
    float *fgr_r = buf, *pha_r = fgr_r + RVM_FRAMES * 3 * hw, *fgr_b = pha_r + RVM_FRAMES * hw,
          *pha_b = fgr_b + RVM_FRAMES * 3 * hw;
    if (rvm_run(c->ref, frames, fgr_r, pha_r)) {
        net_fail(c, net, "cpu reference");
        goto out;
    }
    if (rvm_run(c->be, frames, fgr_b, pha_b)) {
        net_fail(c, net, "backend");
        goto out;
    }
    compare_net(c, net, "fgr 2x48x64", DM_TOL_RVM, fgr_b, fgr_r, RVM_FRAMES * 3 * (int64_t)hw);
    compare_net(c, net, "pha 2x48x64", DM_TOL_RVM, pha_b, pha_r, RVM_FRAMES * (int64_t)hw);
out:
    free(frames);
    free(buf);
}

/* ---- Depth Anything V2 Small ------------------------------------------------------------------
 */

static dm_status da2_run(dm_backend *be, const uint8_t *rgb, float *depth) {
    dm_st_file f;
    da2_model *m = NULL;
    da2_ctx *ctx = NULL;
    dm_status st = dm_st_open_synthetic(&f, "synthetic:da2_vits", WEIGHT_SEED, k_da2_rules,
                                        NRULES(k_da2_rules));
    if (st) return st;
    st = da2_model_load_st(&m, &f, be);
    dm_st_close(&f);
    if (!st) st = da2_ctx_init(&ctx, m, be, SRC_H, SRC_W, DA2_INPUT_SIZE);
    if (!st) st = da2_infer_u8(ctx, rgb, depth);
    da2_ctx_free(ctx);
    da2_model_free(m);
    return st;
}

static void net_da2(st_ctx *c) {
    const char *net = "da2_vits";
    const size_t hw = (size_t)SRC_H * SRC_W;
    uint8_t *rgb = malloc(hw * 3);
    float *ref = malloc(2 * hw * sizeof(float));
    if (!rgb || !ref) {
        st_fail(c, net, "load / run", "out of memory");
        goto out;
    }
    make_frame(rgb, 0);
    if (da2_run(c->ref, rgb, ref)) {
        net_fail(c, net, "cpu reference");
        goto out;
    }
    if (da2_run(c->be, rgb, ref + hw)) {
        net_fail(c, net, "backend");
        goto out;
    }
    compare_net(c, net, "depth 48x64 @42", DM_TOL_DA2, ref + hw, ref, (int64_t)hw);
out:
    free(rgb);
    free(ref);
}

/* ---- Video Depth Anything Small ---------------------------------------------------------------
 */

static dm_status vda_run(dm_backend *be, const uint8_t *const frames[VDA_WINDOW], float *raw) {
    dm_st_file f;
    vda_model *m = NULL;
    vda_ctx *ctx = NULL;
    dm_status st = dm_st_open_synthetic(&f, "synthetic:vda_vits", WEIGHT_SEED, k_vda_rules,
                                        NRULES(k_vda_rules));
    if (st) return st;
    st = vda_model_load_st(&m, &f, be, 0);
    dm_st_close(&f);
    if (!st) st = vda_ctx_init(&ctx, m, be, SRC_H, SRC_W, VDA_INPUT_SIZE);
    if (!st) st = vda_window_depth(ctx, frames, raw);
    vda_ctx_free(ctx);
    vda_model_free(m);
    return st;
}

static void net_vda(st_ctx *c) {
    const char *net = "vda_vits";
    const size_t hw = (size_t)SRC_H * SRC_W, n = VDA_WINDOW * hw;
    uint8_t *rgb = malloc(VDA_WINDOW * hw * 3);
    float *ref = malloc(2 * n * sizeof(float));
    const uint8_t *frames[VDA_WINDOW];
    if (!rgb || !ref) {
        st_fail(c, net, "load / run", "out of memory");
        goto out;
    }
    for (int t = 0; t < VDA_WINDOW; t++) {
        frames[t] = rgb + (size_t)t * hw * 3;
        make_frame(rgb + (size_t)t * hw * 3, t);
    }
    if (vda_run(c->ref, frames, ref)) {
        net_fail(c, net, "cpu reference");
        goto out;
    }
    if (vda_run(c->be, frames, ref + n)) {
        net_fail(c, net, "backend");
        goto out;
    }
    compare_net(c, net, "window 32x48x64 @28", DM_TOL_VDA, ref + n, ref, (int64_t)n);
out:
    free(rgb);
    free(ref);
}

void st_run_networks(st_ctx *c) {
    if (st_selected(c, "rvm_mobilenetv3")) net_rvm(c);
    if (st_selected(c, "da2_vits")) net_da2(c);
    if (st_selected(c, "vda_vits")) net_vda(c);
}
