/* VDA Small conformance, one 32-frame window (golden vda_vits/window.safetensors, README
 * section 3): recipe weights through vda_model_load, frames 0..31 of video.safetensors through
 * vda_window_depth; compared: the preprocessed input, the input of motion module 0, the
 * outputs of all four motion modules and the model depth.
 * Tolerances (README section 5): max |ours - golden| <= 1e-4 * std of the golden tensor for
 * fp32 (the goldens' own float32 noise is <= 4.6e-6 * std); `input` (our re-implementation of
 * the float32 cv2 resize) <= 1e-5 absolute.
 * Runs on the CPU backend by default; `--backend cuda --precision P` runs it on the CUDA
 * backend (taps copied to the host) with the tolerance rule of tests/common/golden_backend.h
 * (ctest label gpu). */
#include <string.h>

#include "depthmatte/safetensors.h"
#include "golden_backend.h"
#include "vda_test_util.h"

#define TOL_STD 1e-4   /* x std of the golden tensor, README section 5 */
#define TOL_INPUT 1e-5 /* absolute, README section 5 */

/* golden (1, C, T, h, w) -> (T, C, h, w), our layout */
static void btchw_to_tchw(const float *g, float *o, int C, int T, int hw) {
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++)
            memcpy(o + ((size_t)t * C + c) * hw, g + ((size_t)c * T + t) * hw, sizeof(float) * hw);
}

static const tc_backend_opts *g_opts;
static dm_backend *g_be;

static void cmp_mm(dm_st_file *g, const char *name, const dm_tensor *ours) {
    const int T = (int)ours->shape[0], C = (int)ours->shape[1], h = (int)ours->shape[2],
              w = (int)ours->shape[3];
    const int64_t s[] = {1, C, T, h, w};
    dm_tensor want;
    CHECK_OK(dm_st_load_f32(g, name, 5, s, &want));
    if (!want.data) return;
    float *perm = malloc(sizeof(float) * dm_tensor_numel(&want));
    btchw_to_tchw(dm_f32(&want), perm, C, T, h * w);
    const int64_t n = dm_tensor_numel(&want);
    dm_tensor host = {0};
    const float *got = tc_host_f32(g_be, ours, &host);
    if (got) tc_compare_golden(g_opts, name, got, perm, n, TOL_STD * tc_std(perm, n));
    dm_tensor_free(&host);
    free(perm);
    dm_tensor_free(&want);
}

int main(int argc, char **argv) {
    tc_backend_opts o;
    if (tc_backend_parse(argc, argv, &o)) return 2;
    o.tol_model = DM_TOL_VDA; /* reduced-precision bounds of this network */
    dm_backend *be = NULL;
    int rc = tc_backend_create(&o, 2, &be);
    if (rc) return rc;
    g_opts = &o;
    g_be = be;
    vda_model *m = NULL;
    dm_status st = vda_test_load_recipe_model(&m, be, 0);
    if (st == DM_ERR_IO) {
        dm_backend_destroy(be);
        return tc_skip("golden/vda_vits not found (set DM_SHARED)");
    }
    dm_st_file gw, gv;
    CHECK_OK(dm_st_open(&gw, tc_shared_path("golden/vda_vits/window.safetensors")));
    CHECK_OK(dm_st_open(&gv, tc_shared_path("golden/vda_vits/video.safetensors")));
    dm_st_entry *fr = gv.map ? dm_st_find(&gv, "frames_rgb_u8") : NULL;
    CHECK(fr && fr->dtype == DM_DTYPE_U8 && fr->ndim == 4 && fr->shape[0] >= VDA_WINDOW);
    if (m && fr && gw.map) {
        const int H = (int)fr->shape[1], W = (int)fr->shape[2];
        vda_ctx *c = NULL;
        CHECK_OK(vda_ctx_init(&c, m, be, H, W, 42));
        int h = 0, w = 0;
        if (c) vda_ctx_input_dims(c, &h, &w);
        CHECK(h == 42 && w == 70);
        float *raw = malloc(sizeof(float) * VDA_WINDOW * H * W);
        const uint8_t *rgb[VDA_WINDOW];
        for (int s = 0; s < VDA_WINDOW; s++) rgb[s] = (const uint8_t *)fr->data + (size_t)s * H * W * 3;
        /* a context starts without the extra taps (no mm0_in copy per window); asking for
         * them changes nothing in the output */
        float *raw0 = malloc(sizeof(float) * VDA_WINDOW * H * W);
        if (c) {
            CHECK_OK(vda_window_depth(c, rgb, raw0));
            vda_taps t0;
            vda_ctx_taps(c, &t0);
            CHECK(t0.mm_in0 == NULL);
            CHECK_OK(vda_ctx_keep_taps(c));
        }
        if (c) CHECK_OK(vda_window_depth(c, rgb, raw));
        if (c) CHECK(memcmp(raw0, raw, sizeof(float) * VDA_WINDOW * H * W) == 0);
        free(raw0);
        if (c) {
            vda_taps t;
            vda_ctx_taps(c, &t);
            CHECK(t.mm_in0 != NULL);
            const int64_t s_in[] = {1, VDA_WINDOW, 3, h, w};
            dm_tensor want;
            CHECK_OK(dm_st_load_f32(&gw, "input", 5, s_in, &want));
            dm_tensor host = {0};
            if (want.data)
                tc_compare_golden(&o, "input", tc_host_f32(be, t.input, &host), dm_f32(&want),
                                  dm_tensor_numel(&want), TOL_INPUT);
            dm_tensor_free(&host);
            dm_tensor_free(&want);
            if (t.mm_in0) cmp_mm(&gw, "mm0_in", t.mm_in0);
            const char *names[4] = {"mm0_out", "mm1_out", "mm2_out", "mm3_out"};
            for (int i = 0; i < 4; i++) cmp_mm(&gw, names[i], t.mm_out[i]);
            const int64_t s_d[] = {1, VDA_WINDOW, h, w};
            CHECK_OK(dm_st_load_f32(&gw, "depth", 4, s_d, &want));
            if (want.data) {
                const int64_t n = dm_tensor_numel(&want);
                tc_compare_golden(&o, "depth", tc_host_f32(be, t.head, &host), dm_f32(&want), n,
                                  TOL_STD * tc_std(dm_f32(&want), n));
                dm_tensor_free(&host);
                int64_t pos = 0; /* README: 68 % of the window's head pixels are > 0 */
                for (int64_t i = 0; i < n; i++) pos += dm_f32(&want)[i] > 0;
                printf("golden depth > 0: %.1f %%\n", 100.0 * pos / n);
            }
            dm_tensor_free(&want);
        }
        free(raw);
        vda_ctx_free(c);
    }
    /* ratio rule of infer_video_depth: 16:9 keeps input_size, wider frames shrink it */
    int h, w;
    vda_input_size(45, 80, 42, &h, &w);
    CHECK(h == 42 && w == 70);
    vda_input_size(1080, 1920, 518, &h, &w); /* ratio 1.777 <= 1.78: like DA-V2 */
    CHECK(h == 518 && w == 924);
    vda_input_size(100, 300, 518, &h, &w); /* ratio 3: int(518*1.777/3) = 306 -> 308 */
    CHECK(h == 308 && w == 924);
    if (gw.map) dm_st_close(&gw);
    if (gv.map) dm_st_close(&gv);
    vda_model_free(m);
    dm_backend_destroy(be);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
