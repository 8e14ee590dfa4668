/* RVM ResNet50 conformance against the official PyTorch goldens (../shared/golden/rvm_r50/,
 * golden README section 4b) with the recipe weights regenerated from recipe.json (splitmix64,
 * BatchNorm statistics included, folded at load):
 *   sequence        3 frames 256x144, deep guided filter, downsample 0.5; frame 0's backbone
 *                   features f1..f4 and LR-ASPP output as taps
 *   sequence_noDGF  2 frames 128x72, downsample 1 (no refiner)
 * Asserted against the goldens: frame 0 (taps first, to localise an error, then fgr and pha).
 * Frames >= 1 and r1..r4 of the goldens are NOT reproduced by the official code itself
 * (PeterL1n/RobustVideoMatting 53d74c6, torch 2.15 on CPU here, same recipe weights: e.g.
 * sequence_noDGF pha[1] differs from the golden by 3.46e-2, exactly as ours does), so those
 * are printed as "golden (not asserted)" and asserted instead, within the same 1e-4, against
 * the official run written by tests/rvm/r50_official_ref.py when DM_RVM_R50_OFFICIAL_DIR
 * names its output folder (a developer check: needs torch). Always asserted: the recurrent
 * state changes frame 1 (zero state gives another alpha), a reset reproduces frame 0.
 * Also: a ResNet50 file loaded as MobileNetV3 (and the real MobileNetV3 file as ResNet50) is
 * refused with an error naming the variant; rvm_required_ops adds maxpool2d for ResNet50.
 * [--backend cpu|cuda|emulated] [--precision P] (tests/common/golden_backend.h): the same checks
 * on a device backend, asserted with that header's rule for the precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/backend.h"
#include "depthmatte/recipe.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"
#include "golden_backend.h"
#include "models/rvm_internal.h"
#include "tensor_compare.h"

/* 1e-4 absolute, the RVM tolerance of golden README section 5 (the goldens' own float32 noise
 * is <= 1.4e-5); the same bound is applied to the feature taps (f4 max 2.86, so it is also
 * <= 3.5e-5 relative to the largest value). */
#define RVM_TOL 1e-4

/* The backend rule (--backend/--precision, tests/common/golden_backend.h): on a device backend
 * the asserted comparisons use tc_compare_golden's bounds for its precision. */
static tc_backend_opts g_opts;

/* Compares `got` with g[key] (elements [off, off + numel(got)) of it); asserted unless
 * `report_only` (then one line marked "not asserted"). */
static void compare_part(dm_st_file *g, const char *file, const char *key, int64_t off,
                         const float *got, int64_t n, const char *label, int report_only) {
    dm_tensor want;
    char name[200];
    snprintf(name, sizeof name, "%s %s%s", file, label, report_only ? " (not asserted)" : "");
    if (dm_st_load_f32(g, key, 0, NULL, &want) != DM_OK) {
        fprintf(stderr, "FAIL %s: %s\n", name, dm_error_message());
        tc_failure_count++;
        return;
    }
    CHECK(off + n <= dm_tensor_numel(&want));
    if (off + n <= dm_tensor_numel(&want) && !report_only) {
        CHECK(tc_compare_golden(&g_opts, name, got, dm_f32(&want) + off, n, RVM_TOL));
    } else if (off + n <= dm_tensor_numel(&want)) {
        double d = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)got[i] - dm_f32(&want)[off + i]);
            if (!(e <= d)) d = e;
        }
        printf("%-44s max_abs %.3e (report only)\n", name, d);
    }
    dm_tensor_free(&want);
}

static void compare_tensor(dm_backend *be, dm_st_file *g, const char *file, const char *key,
                           const dm_tensor *got, int report_only) {
    dm_st_entry *e = dm_st_find(g, key);
    CHECK(got && e && e->ndim == got->ndim);
    if (!got || !e || e->ndim != got->ndim) return;
    int same = 1;
    for (int d = 0; d < got->ndim; d++)
        same &= e->shape[d] == got->shape[d];
    CHECK(same);
    dm_tensor host = {0}; /* a device tap: its float32 host copy */
    const float *v = same ? tc_host_f32(be, got, &host) : NULL;
    if (v) compare_part(g, file, key, 0, v, dm_tensor_numel(got), key, report_only);
    dm_tensor_free(&host);
}

static void run_case(const rvm_model *m, dm_backend *be, const char *file, const char *tag,
                     double ratio, int taps) {
    dm_st_file g, o;
    int have_official = 0;
    char opath[512];
    if (dm_st_open(&g, tc_shared_path(file)) != DM_OK) {
        fprintf(stderr, "FAIL %s: %s\n", file, dm_error_message());
        tc_failure_count++;
        return;
    }
    const char *odir = getenv("DM_RVM_R50_OFFICIAL_DIR");
    if (odir && odir[0]) {
        snprintf(opath, sizeof opath, "%s/%s.safetensors", odir, tag);
        dm_status st = dm_st_open(&o, opath);
        CHECK_OK(st);
        have_official = st == DM_OK;
    }
    dm_st_entry *su8 = dm_st_find(&g, "src_u8");
    CHECK(su8 && su8->dtype == DM_DTYPE_U8 && su8->ndim == 4 && su8->shape[3] == 3);
    dm_tensor fgr_g = {0}, pha_g = {0};
    rvm_state *s = NULL;
    if (su8) {
        CHECK_OK(dm_st_load_f32(&g, "fgr", 0, NULL, &fgr_g));
        CHECK_OK(dm_st_load_f32(&g, "pha", 0, NULL, &pha_g));
        CHECK_OK(rvm_state_init(&s, m, be, (int)su8->shape[1], (int)su8->shape[2], ratio));
    }
    const int T = su8 ? (int)su8->shape[0] : 0, H = su8 ? (int)su8->shape[1] : 0,
              W = su8 ? (int)su8->shape[2] : 0;
    const int64_t fs[4] = {1, 3, H, W}, ps[4] = {1, 1, H, W}, is[4] = {1, H, W, 3};
    dm_tensor fgr = {0}, pha = {0}, src = {0};
    if (s) {
        CHECK_OK(dm_tensor_alloc(&fgr, DM_DTYPE_F32, 4, fs));
        CHECK_OK(dm_tensor_alloc(&pha, DM_DTYPE_F32, 4, ps));
        CHECK_OK(dm_tensor_alloc(&src, DM_DTYPE_F32, 4, fs));
    }
    for (int t = 0; s && fgr_g.data && pha_g.data && t < T; t++) {
        const uint8_t *rgb = (const uint8_t *)su8->data + (size_t)t * H * W * 3;
        if (t == 0 && taps) {
            /* frame 0 in two halves, reading the features in between; on a device backend
             * through the state's device input and outputs (as rvm_forward_u8) */
            const int dev = be->device != DM_DEVICE_CPU;
            dm_tensor in, *x = dev ? &s->src : &src;
            dm_tensor_view(&in, (void *)rgb, DM_DTYPE_U8, 4, is);
            CHECK_OK(dm_image_from_u8(be, &in, x));
            CHECK_OK(rvm_forward_features(s, x));
            const rvm_level *lv = s->lv;
            dm_tensor f1 = rvm_view(&s->cat[1], m->dec_c[1], m->feat_c[0], lv[1].h, lv[1].w);
            dm_tensor f2 = rvm_view(&s->cat[2], m->dec_c[0], m->feat_c[1], lv[2].h, lv[2].w);
            dm_tensor f3 = rvm_view(&s->cat[3], m->feat_c[3], m->feat_c[2], lv[3].h, lv[3].w);
            dm_tensor aspp = rvm_view(&s->u[4], 0, m->feat_c[3], lv[4].h, lv[4].w);
            compare_tensor(be, &g, file, "frame0_f1", &f1, 0);
            compare_tensor(be, &g, file, "frame0_f2", &f2, 0);
            compare_tensor(be, &g, file, "frame0_f3", &f3, 0);
            compare_tensor(be, &g, file, "frame0_f4", &s->f4, 0);
            compare_tensor(be, &g, file, "frame0_aspp", &aspp, 0);
            if (!dev) {
                CHECK_OK(rvm_forward_tail(s, x, &fgr, &pha));
            } else {
                CHECK_OK(rvm_forward_tail(s, x, &s->out_fgr, &s->out_pha));
                CHECK_OK(dm_copy(be, &s->out_fgr, &fgr));
                CHECK_OK(dm_copy(be, &s->out_pha, &pha));
            }
        } else {
            CHECK_OK(rvm_forward_u8(s, rgb, dm_f32(&fgr), dm_f32(&pha)));
        }
        char label[32];
        snprintf(label, sizeof label, "fgr[%d]", t);
        compare_part(&g, file, "fgr", (int64_t)t * 3 * H * W, dm_f32(&fgr), 3 * H * W, label,
                     t > 0);
        if (have_official)
            compare_part(&o, opath, "fgr", (int64_t)t * 3 * H * W, dm_f32(&fgr), 3 * H * W, label,
                         0);
        snprintf(label, sizeof label, "pha[%d]", t);
        compare_part(&g, file, "pha", (int64_t)t * H * W, dm_f32(&pha), H * W, label, t > 0);
        if (have_official)
            compare_part(&o, opath, "pha", (int64_t)t * H * W, dm_f32(&pha), H * W, label, 0);
    }
    for (int i = 1; s && i <= 4; i++) {
        char key[8];
        snprintf(key, sizeof key, "r%d", i);
        compare_tensor(be, &g, file, key, rvm_state_recurrent(s, i), 1);
        if (have_official) compare_tensor(be, &o, opath, key, rvm_state_recurrent(s, i), 0);
    }
    if (!have_official)
        printf("%s: frames >= 1 and r1..r4 checked against the golden only as a report (set "
               "DM_RVM_R50_OFFICIAL_DIR, see tests/rvm/r50_official_ref.py)\n",
               file);
    /* the state matters: frame 1 from a zero state differs from frame 1 after frame 0; a reset
     * reproduces frame 0 bit for bit */
    if (s && T > 1) {
        float *p1 = malloc(sizeof(float) * H * W), *p0 = malloc(sizeof(float) * H * W);
        const uint8_t *f0 = su8->data, *f1 = f0 + (size_t)H * W * 3;
        CHECK_OK(rvm_state_reset(s));
        CHECK_OK(rvm_forward_u8(s, f0, NULL, p0));
        CHECK_OK(rvm_forward_u8(s, f1, NULL, pha.data));
        CHECK_OK(rvm_state_reset(s));
        CHECK_OK(rvm_forward_u8(s, f1, NULL, p1));
        double dmax = 0;
        for (int i = 0; i < H * W; i++) {
            double d = p1[i] - dm_f32(&pha)[i];
            if (d < 0) d = -d;
            if (d > dmax) dmax = d;
        }
        printf("%s: pha[1] zero state vs carried state: max diff %.3g (must be > 1e-3)\n", file,
               dmax);
        CHECK(dmax > 1e-3);
        CHECK_OK(rvm_state_reset(s));
        CHECK_OK(rvm_forward_u8(s, f0, NULL, p1));
        CHECK(memcmp(p0, p1, sizeof(float) * H * W) == 0);
        compare_part(&g, file, "pha", 0, p1, H * W, "pha[0] after reset", 0);
        free(p0), free(p1);
    }
    if (have_official) dm_st_close(&o);
    dm_tensor *all[] = {&fgr, &pha, &src, &fgr_g, &pha_g};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dm_tensor_free(all[i]);
    rvm_state_free(s);
    dm_st_close(&g);
}

int main(int argc, char **argv) {
    if (tc_backend_parse(argc, argv, &g_opts)) return 2;
    g_opts.tol_model = DM_TOL_RVM_R50; /* reduced-precision bounds of this network */
    const char *rpath = tc_shared_path("golden/rvm_r50/recipe.json");
    if (access(rpath, R_OK) != 0) return tc_skip("golden/rvm_r50/recipe.json not found");
    dm_recipe r;
    CHECK_OK(dm_recipe_load(&r, rpath));
    CHECK(r.count == 390);
    char path[512];
    snprintf(path, sizeof path, "%s/dm_rvm_r50_recipe_%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    CHECK_OK(dm_recipe_write_safetensors(&r, path));
    dm_recipe_free(&r);

    dm_backend *be = NULL;
    int rc = tc_backend_create(&g_opts, 0, &be);
    if (rc) {
        unlink(path);
        return rc;
    }
    rvm_model *m = NULL;
    CHECK_OK(rvm_model_load_variant(&m, path, RVM_VARIANT_RESNET50, be));
    if (m) {
        CHECK(rvm_model_variant(m) == RVM_VARIANT_RESNET50);
        run_case(m, be, "golden/rvm_r50/sequence.safetensors", "sequence", 0.5, 1);
        run_case(m, be, "golden/rvm_r50/sequence_noDGF.safetensors", "sequence_noDGF", 1.0, 0);
    }
    rvm_model_free(m);

    /* the wrong variant for a file: one error naming what the file holds */
    rvm_model *bad = NULL;
    CHECK(rvm_model_load(&bad, path, be) == DM_ERR_NAME && !bad);
    CHECK(strstr(dm_error_message(), "ResNet50") && strstr(dm_error_message(), path));
    const char *mbv3 = tc_shared_path("models/rvm_mobilenetv3.safetensors");
    if (access(mbv3, R_OK) == 0) {
        CHECK(rvm_model_load_variant(&bad, mbv3, RVM_VARIANT_RESNET50, be) == DM_ERR_NAME && !bad);
        CHECK(strstr(dm_error_message(), "MobileNetV3") != NULL);
    }
    if (getenv("DM_KEEP_RECIPE"))
        printf("recipe weights kept: %s\n", path);
    else
        unlink(path);

    dm_op_id ops[DM_OP_COUNT];
    int n50 = rvm_required_ops(RVM_VARIANT_RESNET50, ops), has_max = 0;
    for (int i = 0; i < n50; i++)
        has_max |= ops[i] == DM_OP_MAXPOOL2D;
    CHECK(has_max && rvm_required_ops(RVM_VARIANT_MOBILENETV3, ops) == n50 - 1);
    dm_backend_destroy(be);
    return tc_failure_count != 0;
}
