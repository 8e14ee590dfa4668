/* RVM MobileNetV3 conformance against the official PyTorch goldens
 * (../shared/golden/rvm_mbv3/ safetensors files, README section 4): fgr and pha of every frame and
 * the recurrent states r1..r4 after the last frame, starting from zero state.
 *   sequence        4 frames 256x144, deep guided filter, downsample 0.5
 *   sequence_fgf    2 frames 128x72,  fast guided filter, downsample 0.5
 *   sequence_noDGF  2 frames 128x72,  downsample 1 (no refiner)
 * Runs on the CPU backend by default; `--backend cuda --precision P` runs the same cases on the
 * CUDA backend with the tolerance rule of tests/common/golden_backend.h (ctest label gpu).
 * On a backend with graphs (CUDA, emulated) rvm_forward_u8 runs frame 0 eagerly, captures
 * frame 1 and replays the rest (rvm_model.c): every frame, and frame 0 again after a reset
 * (replayed on the zero state), must then equal a second run with graphs off bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend.h"
#include "depthmatte/graph.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"
#include "golden_backend.h"
#include "tensor_compare.h"

/* 1e-4 absolute: golden README section 5. The goldens' own float32 rounding noise (same code
 * in float64 vs float32) is <= 1.4e-5 absolute for RVM; 1e-4 leaves room for our different
 * but equally valid rounding (BatchNorm folded into the weights, h + z*(c - h) for the GRU
 * update, double-accumulated pooling) while still catching any semantic error, which moves
 * alpha by 1e-2 or more. Values are in [0, 1] (fgr, pha) or [-1, 1] (GRU states). */
#define RVM_TOL 1e-4

typedef struct golden_case {
    const char *file;
    double ratio;
    rvm_refiner refiner;
} golden_case;

static void run_case(const tc_backend_opts *oo, const rvm_model *m, dm_backend *be,
                     const golden_case *gc) {
    tc_backend_opts opts = *oo, *o = &opts; /* the fast guided filter has its own f16 bounds */
    if (gc->refiner == RVM_REFINER_FAST_GUIDED_FILTER) opts.tol_model = DM_TOL_RVM_FGF;
    dm_st_file g;
    if (dm_st_open(&g, tc_shared_path(gc->file)) != DM_OK) {
        fprintf(stderr, "FAIL %s: %s\n", gc->file, dm_error_message());
        tc_failure_count++;
        return;
    }
    dm_st_entry *su8 = dm_st_find(&g, "src_u8");
    CHECK(su8 && su8->dtype == DM_DTYPE_U8 && su8->ndim == 4 && su8->shape[3] == 3);
    if (!su8) {
        dm_st_close(&g);
        return;
    }
    const int T = (int)su8->shape[0], H = (int)su8->shape[1], W = (int)su8->shape[2];
    dm_tensor fgr_g, pha_g;
    CHECK_OK(dm_st_load_f32(&g, "fgr", 0, NULL, &fgr_g));
    CHECK_OK(dm_st_load_f32(&g, "pha", 0, NULL, &pha_g));
    rvm_state *s = NULL;
    CHECK_OK(rvm_state_init(&s, m, be, H, W, gc->ratio));
    if (s) CHECK_OK(rvm_state_set_refiner(s, gc->refiner));
    /* every frame's outputs kept: fgr (T, 3, H, W) then pha (T, H, W), for the eager rerun */
    const size_t hw = (size_t)H * W;
    float *all = malloc(sizeof(float) * (size_t)(T + 1) * 4 * hw);
    float *fgr = NULL, *pha = NULL;
    for (int t = 0; s && fgr_g.data && pha_g.data && t < T; t++) {
        fgr = all + (size_t)t * 3 * hw, pha = all + (size_t)(T + 1) * 3 * hw + (size_t)t * hw;
        CHECK_OK(rvm_forward_u8(s, (const uint8_t *)su8->data + (size_t)t * H * W * 3, fgr, pha));
        char name[128];
        snprintf(name, sizeof name, "%s fgr[%d]", gc->file, t);
        CHECK(tc_compare_golden(o, name, fgr, dm_f32(&fgr_g) + (size_t)t * 3 * H * W, 3 * H * W,
                                RVM_TOL));
        snprintf(name, sizeof name, "%s pha[%d]", gc->file, t);
        CHECK(tc_compare_golden(o, name, pha, dm_f32(&pha_g) + (size_t)t * H * W, H * W, RVM_TOL));
    }
    for (int i = 1; s && i <= 4; i++) {
        char name[128];
        snprintf(name, sizeof name, "r%d", i);
        dm_tensor rg;
        if (dm_st_load_f32(&g, name, 0, NULL, &rg) != DM_OK) {
            fprintf(stderr, "%s\n", dm_error_message());
            tc_failure_count++;
            continue;
        }
        const dm_tensor *r = rvm_state_recurrent(s, i);
        CHECK(r && r->ndim == 4 && rg.ndim == 4);
        int same = r && r->ndim == rg.ndim;
        for (int d = 0; same && d < 4; d++)
            same = r->shape[d] == rg.shape[d];
        CHECK(same);
        snprintf(name, sizeof name, "%s r%d", gc->file, i);
        dm_tensor host = {0};
        if (same)
            CHECK(tc_compare_golden(o, name, tc_host_f32(be, r, &host), dm_f32(&rg),
                                    dm_tensor_numel(&rg), RVM_TOL));
        dm_tensor_free(&host);
        dm_tensor_free(&rg);
    }
    /* after a reset the first frame must reproduce frame 0 exactly (state fully cleared);
     * with graphs it is a replay on the zero state (foreground wanted: same graph) */
    float *fgr2 = all + (size_t)T * 3 * hw, *pha2 = all + (size_t)(T + 1) * 3 * hw + (size_t)T * hw;
    if (s && T > 1) {
        CHECK_OK(rvm_state_reset(s));
        CHECK_OK(rvm_forward_u8(s, su8->data, fgr2, pha2));
        char name[128];
        snprintf(name, sizeof name, "%s pha[0] after reset", gc->file);
        CHECK(tc_compare_golden(o, name, pha2, dm_f32(&pha_g), H * W, RVM_TOL));
    }
    if (s && T > 1 && dm_backend_supports_graphs(be) && !getenv("DM_CUDA_GRAPHS")) {
        /* the same frames with graphs off (the runner reads the variable at rvm_state_init) */
        setenv("DM_CUDA_GRAPHS", "0", 1);
        rvm_state *e = NULL;
        CHECK_OK(rvm_state_init(&e, m, be, H, W, gc->ratio));
        unsetenv("DM_CUDA_GRAPHS");
        if (e) CHECK_OK(rvm_state_set_refiner(e, gc->refiner));
        float *ef = malloc(sizeof(float) * 4 * hw), *ep = ef + 3 * hw;
        for (int t = 0; e && t <= T; t++) {
            if (t == T) CHECK_OK(rvm_state_reset(e));
            CHECK_OK(rvm_forward_u8(e, (const uint8_t *)su8->data + (size_t)(t % T) * hw * 3, ef,
                                    ep));
            const float *gf = all + (size_t)t * 3 * hw,
                        *gp = all + (size_t)(T + 1) * 3 * hw + (size_t)t * hw;
            double d = 0;
            for (size_t i = 0; i < 3 * hw; i++) {
                const double x = fabs((double)gf[i] - ef[i]);
                if (!(x <= d)) d = x; /* NaN counts as the largest */
            }
            for (size_t i = 0; i < hw; i++) {
                const double x = fabs((double)gp[i] - ep[i]);
                if (!(x <= d)) d = x;
            }
            printf("%s frame %d%s (graph %s) vs eager: max |diff| %.3g\n", gc->file, t % T,
                   t == T ? " after reset" : "",
                   t == 0 ? "run: eager" : t == 1 ? "run: captured + replayed" : "run: replayed", d);
            CHECK(d == 0.0);
        }
        free(ef);
        rvm_state_free(e);
    }
    free(all);
    rvm_state_free(s);
    dm_tensor_free(&fgr_g);
    dm_tensor_free(&pha_g);
    dm_st_close(&g);
}

int main(int argc, char **argv) {
    tc_backend_opts o;
    if (tc_backend_parse(argc, argv, &o)) return 2;
    o.tol_model = DM_TOL_RVM; /* reduced-precision bounds (FGF cases: DM_TOL_RVM_FGF) */
    const char *wpath = tc_shared_path("models/rvm_mobilenetv3.safetensors");
    FILE *probe = fopen(wpath, "rb");
    if (!probe) return tc_skip("RVM weights not found (../shared/models or $DM_SHARED)");
    fclose(probe);
    dm_backend *be = NULL;
    int rc = tc_backend_create(&o, 0, &be);
    if (rc) return rc;
    rvm_model *m = NULL;
    CHECK_OK(rvm_model_load(&m, tc_shared_path("models/rvm_mobilenetv3.safetensors"), be));
    if (m) {
        static const golden_case cases[] = {
            {"golden/rvm_mbv3/sequence.safetensors", 0.5, RVM_REFINER_DEEP_GUIDED_FILTER},
            {"golden/rvm_mbv3/sequence_fgf.safetensors", 0.5, RVM_REFINER_FAST_GUIDED_FILTER},
            {"golden/rvm_mbv3/sequence_noDGF.safetensors", 1.0, RVM_REFINER_DEEP_GUIDED_FILTER},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_case(&o, m, be, &cases[i]);
    }
    CHECK(rvm_auto_downsample_ratio(720, 1280) == 512.0 / 1280.0);
    CHECK(rvm_auto_downsample_ratio(144, 256) == 1.0);
    rvm_model_free(m);
    dm_backend_destroy(be);
    return tc_failure_count != 0;
}
