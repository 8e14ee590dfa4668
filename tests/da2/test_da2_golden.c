/* DA-V2 Small conformance: recipe weights (regenerated here, golden README section 1) through
 * da2_model_load, every golden tensor of case_square and case_wide compared (README section 2).
 * Tolerances (README section 5): fp32 implementation, max |ours - golden| <= 1e-4 * std of the
 * golden tensor (the goldens' own float32 noise is <= 1.1e-5 * std); `input` (our
 * re-implementation of the float64 cv2 resize) <= 1e-5 absolute. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/da2.h"
#include "depthmatte/graph.h"
#include "depthmatte/recipe.h"
#include "depthmatte/safetensors.h"
#include "golden_backend.h"
#include "tensor_compare.h"

#define TOL_STD 1e-4   /* x std of the golden tensor, README section 5 */
#define TOL_INPUT 1e-5 /* absolute, README section 5 */

static const tc_backend_opts *g_opts;
static dm_backend *g_be;

/* ours: host float32 values (depth) */
static void cmp_host(const char *name, const float *got, const dm_tensor *want, double tol_std) {
    int64_t n = dm_tensor_numel(want);
    tc_compare_golden(g_opts, name, got, dm_f32(want), n, tol_std * tc_std(dm_f32(want), n));
}

/* ours: a tap on the backend's device (copied to the host first) */
static void cmp_tap(const char *name, const dm_tensor *tap, const dm_tensor *want,
                    double tol_std, double tol_abs) {
    dm_tensor host = {0};
    const float *got = tc_host_f32(g_be, tap, &host);
    int64_t n = dm_tensor_numel(want);
    double tol = tol_abs > 0 ? tol_abs : tol_std * tc_std(dm_f32(want), n);
    if (got) tc_compare_golden(g_opts, name, got, dm_f32(want), n, tol);
    dm_tensor_free(&host);
}

static void run_case(dm_backend *be, const da2_model *m, const char *rel, int input_size) {
    dm_st_file g;
    CHECK_OK(dm_st_open(&g, tc_shared_path(rel)));
    if (!g.map) return;
    printf("--- %s (input_size %d)\n", rel, input_size);
    dm_st_entry *img = dm_st_find(&g, "image_rgb_u8");
    CHECK(img && img->dtype == DM_DTYPE_U8 && img->ndim == 3);
    if (!img) return;
    const int H = (int)img->shape[0], W = (int)img->shape[1];
    da2_ctx *c = NULL;
    CHECK_OK(da2_ctx_init(&c, m, be, H, W, input_size));
    if (!c) return;
    float *depth = malloc(sizeof(float) * H * W);
    CHECK_OK(da2_infer_u8(c, img->data, depth));
    da2_taps t;
    da2_ctx_taps(c, &t);
    dm_tensor want;
    CHECK_OK(dm_st_load_f32(&g, "input", 4, t.input->shape, &want));
    if (want.data) cmp_tap("input", t.input, &want, 0, TOL_INPUT);
    dm_tensor_free(&want);
    CHECK_OK(dm_st_load_f32(&g, "tokens_embed", 3, t.tokens_embed->shape, &want));
    if (want.data) cmp_tap("tokens_embed", t.tokens_embed, &want, TOL_STD, 0);
    dm_tensor_free(&want);
    const int idx[4] = {2, 5, 8, 11};
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "feat_%d", idx[k]);
        CHECK_OK(dm_st_load_f32(&g, name, 3, t.feat[k]->shape, &want));
        if (want.data) cmp_tap(name, t.feat[k], &want, TOL_STD, 0);
        dm_tensor_free(&want);
        snprintf(name, sizeof name, "feat_%d_cls", idx[k]);
        CHECK_OK(dm_st_load_f32(&g, name, 2, t.feat_cls[k]->shape, &want));
        if (want.data) cmp_tap(name, t.feat_cls[k], &want, TOL_STD, 0);
        dm_tensor_free(&want);
    }
    CHECK_OK(dm_st_load_f32(&g, "depth_head", 4, t.depth_head->shape, &want));
    if (want.data) cmp_tap("depth_head", t.depth_head, &want, TOL_STD, 0);
    dm_tensor_free(&want);
    const int64_t s_depth[] = {H, W};
    CHECK_OK(dm_st_load_f32(&g, "depth", 2, s_depth, &want));
    if (want.data) cmp_host("depth", depth, &want, TOL_STD);
    dm_tensor_free(&want);
    if (dm_backend_supports_graphs(be)) {
        /* frame 2 is captured as a graph (a CUDA Graph; the emulated backend's recording) and
         * replayed, frame 3 replayed (da2.c): the same kernels on the same input, so the
         * depth must equal frame 1's (eager) */
        float *again = malloc(sizeof(float) * H * W);
        for (int f = 2; f <= 3; f++) {
            CHECK_OK(da2_infer_u8(c, img->data, again));
            double d = 0;
            for (int i = 0; i < H * W; i++) {
                const double e = fabs((double)again[i] - depth[i]);
                if (!(e <= d)) d = e; /* NaN counts as the largest */
            }
            printf("frame %d (graph%s) vs frame 1 (eager): max |diff| %.3g\n", f,
                   f == 2 ? " captured + replayed" : " replayed", d);
            CHECK(d == 0.0);
        }
        free(again);
    }
    free(depth);
    da2_ctx_free(c);
    dm_st_close(&g);
}

int main(int argc, char **argv) {
    tc_backend_opts o;
    if (tc_backend_parse(argc, argv, &o)) return 2;
    o.tol_model = DM_TOL_DA2; /* reduced-precision bounds of this network */
    dm_backend *be = NULL;
    int rc = tc_backend_create(&o, 2, &be);
    if (rc) return rc;
    g_opts = &o;
    g_be = be;
    dm_recipe r;
    dm_status st = dm_recipe_load(&r, tc_shared_path("golden/da2_vits/recipe.json"));
    if (st == DM_ERR_IO) {
        dm_backend_destroy(be);
        return tc_skip("golden/da2_vits not found (set DM_SHARED)");
    }
    CHECK_OK(st);
    char path[256];
    snprintf(path, sizeof path, "%s/dm_da2_recipe_%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    CHECK_OK(dm_recipe_write_safetensors(&r, path));
    dm_recipe_free(&r);
    da2_model *m = NULL;
    CHECK_OK(da2_model_load(&m, path, be));
    unlink(path);
    if (m) {
        run_case(be, m, "golden/da2_vits/case_square.safetensors", 140);
        run_case(be, m, "golden/da2_vits/case_wide.safetensors", 98);
    }
    da2_model_free(m);
    dm_backend_destroy(be);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
