/* The reduced-precision network bounds (dm_tol_network, src/nn/tolerance.c sections 3-4) on
 * real data, as runtime.verify applies them to a job's first frame: the emulated device backend
 * (backend_emu.h: every op output rounded to f16 / bf16, f32 accumulation) against the CPU
 * backend on the golden inputs.
 * - a correct reduced-precision run passes: RVM MobileNetV3 with its trained weights on the two
 *   first frames of golden rvm_mbv3/sequence (256x144, downsample 0.5), fgr and pha; DA-V2
 *   Small with the recipe weights on golden da2_vits/case_square's image (160x160, input 140);
 * - one op perturbed (5 % of its largest magnitude on every third element: conv2d for RVM,
 *   linear for DA-V2) fails them, in float16 and bfloat16.
 * It also prints where the u * rms floor alone (section 3 (a)) would stand: for RVM's alpha in
 * float16 it is below the error of a correct run, which is why section 4's bounds exist. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/backend_emu.h"
#include "depthmatte/da2.h"
#include "depthmatte/recipe.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"
#include "depthmatte/tolerance.h"
#include "tensor_compare.h"

enum { RVM_FRAMES = 2 };

/* 1 when got is within dm_tol_network(p, model) of ref; prints one line. */
static int within(const char *what, dm_dtype p, dm_tol_model model, const float *got,
                  const float *ref, size_t n) {
    double mean = 0, sq = 0, m2 = 0, maxd = 0, sum = 0;
    for (size_t i = 0; i < n; i++)
        mean += ref[i], sq += (double)ref[i] * ref[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        const double d = ref[i] - mean, e = fabs((double)got[i] - ref[i]);
        m2 += d * d;
        sum += e;
        if (!(e <= maxd)) maxd = e;
    }
    const double sd = sqrt(m2 / (double)n), rms = sqrt(sq / (double)n), me = sum / (double)n;
    double max_tol, mean_tol;
    dm_tol_network(p, model, sd, rms, &max_tol, &mean_tol);
    const double u = dm_unit_roundoff(p);
    const int ok = maxd <= max_tol && me <= mean_tol;
    printf("%-34s %-4s max %.3e std (tol %.3e; 32 u rms alone %.3e) mean %.3e std (tol %.3e) "
           "%s\n",
           what, dm_dtype_name(p), maxd / sd, max_tol / sd, 32 * u * rms / sd, me / sd,
           mean_tol / sd, ok ? "within" : "OUTSIDE");
    return ok;
}

/* fgr (T, 3, H, W) then pha (T, 1, H, W) of the first RVM_FRAMES golden frames on `be`. */
static int rvm_run(dm_backend *be, const char *wpath, const uint8_t *src, int H, int W, float *fgr,
                   float *pha) {
    rvm_model *m = NULL;
    rvm_state *s = NULL;
    dm_status st = rvm_model_load(&m, wpath, be);
    if (!st) st = rvm_state_init(&s, m, be, H, W, 0.5);
    for (int t = 0; !st && t < RVM_FRAMES; t++)
        st = rvm_forward_u8(s, src + (size_t)t * H * W * 3, fgr + (size_t)t * 3 * H * W,
                            pha + (size_t)t * H * W);
    if (st) fprintf(stderr, "rvm: %s\n", dm_error_message());
    rvm_state_free(s);
    rvm_model_free(m);
    return st == DM_OK;
}

static void test_rvm(dm_backend *cpu) {
    char wpath[512]; /* tc_shared_path's buffer is reused by the next call */
    snprintf(wpath, sizeof wpath, "%s", tc_shared_path("models/rvm_mobilenetv3.safetensors"));
    dm_st_file g;
    if (access(wpath, R_OK) ||
        dm_st_open(&g, tc_shared_path("golden/rvm_mbv3/sequence.safetensors"))) {
        printf("SKIPPED rvm part: RVM weights or golden rvm_mbv3/sequence not found\n");
        return;
    }
    dm_st_entry *e = dm_st_find(&g, "src_u8");
    CHECK(e && e->dtype == DM_DTYPE_U8 && e->ndim == 4 && e->shape[0] >= RVM_FRAMES);
    if (!e) {
        dm_st_close(&g);
        return;
    }
    const int H = (int)e->shape[1], W = (int)e->shape[2];
    const size_t nf = (size_t)RVM_FRAMES * 3 * H * W, np = (size_t)RVM_FRAMES * H * W;
    float *rf = malloc(sizeof(float) * nf), *rp = malloc(sizeof(float) * np);
    float *f = malloc(sizeof(float) * nf), *p = malloc(sizeof(float) * np);
    CHECK(rvm_run(cpu, wpath, e->data, H, W, rf, rp));
    const dm_dtype precs[2] = {DM_DTYPE_F16, DM_DTYPE_BF16};
    for (int i = 0; i < 2; i++)
        for (int fault = 0; fault < 2; fault++) {
            dm_backend *be = NULL;
            CHECK_OK(dm_backend_emu_create(2, precs[i], fault ? "conv2d" : NULL, &be));
            if (!be || !rvm_run(be, wpath, e->data, H, W, f, p)) {
                tc_failure_count++;
                dm_backend_destroy(be);
                continue;
            }
            char what[64];
            snprintf(what, sizeof what, "rvm fgr%s", fault ? " (conv2d perturbed)" : "");
            const int okf = within(what, precs[i], DM_TOL_RVM, f, rf, nf);
            snprintf(what, sizeof what, "rvm pha%s", fault ? " (conv2d perturbed)" : "");
            const int okp = within(what, precs[i], DM_TOL_RVM, p, rp, np);
            CHECK(fault ? !(okf && okp) : okf && okp);
            dm_backend_destroy(be);
        }
    free(rf), free(rp), free(f), free(p);
    dm_st_close(&g);
}

static int da2_run(dm_backend *be, const char *wpath, const uint8_t *rgb, int H, int W,
                   float *depth) {
    da2_model *m = NULL;
    da2_ctx *c = NULL;
    dm_status st = da2_model_load(&m, wpath, be);
    if (!st) st = da2_ctx_init(&c, m, be, H, W, 140);
    if (!st) st = da2_infer_u8(c, rgb, depth);
    if (st) fprintf(stderr, "da2: %s\n", dm_error_message());
    da2_ctx_free(c);
    da2_model_free(m);
    return st == DM_OK;
}

static void test_da2(dm_backend *cpu) {
    dm_recipe r;
    dm_st_file g;
    if (dm_recipe_load(&r, tc_shared_path("golden/da2_vits/recipe.json"))) {
        printf("SKIPPED da2 part: golden/da2_vits/recipe.json not found\n");
        return;
    }
    char wpath[512];
    snprintf(wpath, sizeof wpath, "%s/dm_tol_lowp_da2_%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    CHECK_OK(dm_recipe_write_safetensors(&r, wpath));
    dm_recipe_free(&r);
    CHECK_OK(dm_st_open(&g, tc_shared_path("golden/da2_vits/case_square.safetensors")));
    dm_st_entry *e = dm_st_find(&g, "image_rgb_u8");
    CHECK(e && e->dtype == DM_DTYPE_U8 && e->ndim == 3);
    if (e) {
        const int H = (int)e->shape[0], W = (int)e->shape[1];
        float *ref = malloc(sizeof(float) * H * W), *got = malloc(sizeof(float) * H * W);
        CHECK(da2_run(cpu, wpath, e->data, H, W, ref));
        const dm_dtype precs[2] = {DM_DTYPE_F16, DM_DTYPE_BF16};
        for (int i = 0; i < 2; i++)
            for (int fault = 0; fault < 2; fault++) {
                dm_backend *be = NULL;
                CHECK_OK(dm_backend_emu_create(2, precs[i], fault ? "linear" : NULL, &be));
                const int ran = be && da2_run(be, wpath, e->data, H, W, got);
                CHECK(ran);
                if (ran) {
                    const int ok = within(fault ? "da2 depth (linear perturbed)" : "da2 depth",
                                          precs[i], DM_TOL_DA2, got, ref, (size_t)H * W);
                    CHECK(fault ? !ok : ok);
                }
                dm_backend_destroy(be);
            }
        free(ref), free(got);
    }
    dm_st_close(&g);
    unlink(wpath);
}

int main(void) {
    dm_backend *cpu = dm_backend_cpu_create(2);
    CHECK(cpu != NULL);
    if (!cpu) return 1;
    test_rvm(cpu);
    test_da2(cpu);
    dm_backend_destroy(cpu);
    if (tc_failure_count) printf("FAIL\n");
    return tc_failure_count != 0;
}
