/* RVM ResNet50 conformance against the official PyTorch goldens (../shared/golden/rvm_r50/,
 * golden README section 4b) with the recipe weights regenerated from recipe.json (splitmix64,
 * BatchNorm statistics included, folded at load):
 *   sequence        3 frames 256x144, deep guided filter, downsample 0.5; frame 0's backbone
 *                   features f1..f4 and LR-ASPP output as taps
 *   sequence_noDGF  2 frames 128x72, downsample 1 (no refiner)
 * fgr and pha of every frame, r1..r4 after the last frame, taps first (to localise an error).
 * Also: a ResNet50 file loaded as MobileNetV3 (and the real MobileNetV3 file as ResNet50) is
 * refused with an error naming the variant; rvm_required_ops adds maxpool2d for ResNet50. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/backend.h"
#include "depthmatte/recipe.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"
#include "models/rvm_internal.h"
#include "tensor_compare.h"

/* 1e-4 absolute, the RVM tolerance of golden README section 5 (the goldens' own float32 noise
 * is <= 1.4e-5); the same bound is applied to the feature taps (f4 max 2.86, so it is also
 * <= 3.5e-5 relative to the largest value). */
#define RVM_TOL 1e-4

static int same_shape(const dm_tensor *a, const dm_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

static void compare_tensor(dm_st_file *g, const char *file, const char *key, const dm_tensor *got) {
    dm_tensor want;
    char name[160];
    snprintf(name, sizeof name, "%s %s", file, key);
    if (dm_st_load_f32(g, key, 0, NULL, &want) != DM_OK) {
        fprintf(stderr, "FAIL %s: %s\n", name, dm_error_message());
        tc_failure_count++;
        return;
    }
    CHECK(got && same_shape(got, &want));
    if (got && same_shape(got, &want))
        CHECK(tc_compare(name, dm_f32(got), dm_f32(&want), dm_tensor_numel(&want), RVM_TOL, NULL));
    dm_tensor_free(&want);
}

static void run_case(const rvm_model *m, dm_backend *be, const char *file, double ratio,
                     int taps) {
    dm_st_file g;
    if (dm_st_open(&g, tc_shared_path(file)) != DM_OK) {
        fprintf(stderr, "FAIL %s: %s\n", file, dm_error_message());
        tc_failure_count++;
        return;
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
            /* frame 0 in two halves, reading the features in between */
            dm_tensor in;
            dm_tensor_view(&in, (void *)rgb, DM_DTYPE_U8, 4, is);
            CHECK_OK(dm_image_from_u8(be, &in, &src));
            CHECK_OK(rvm_forward_features(s, &src));
            const rvm_level *lv = s->lv;
            dm_tensor f1 = rvm_view(&s->cat[1], m->dec_c[1], m->feat_c[0], lv[1].h, lv[1].w);
            dm_tensor f2 = rvm_view(&s->cat[2], m->dec_c[0], m->feat_c[1], lv[2].h, lv[2].w);
            dm_tensor f3 = rvm_view(&s->cat[3], m->feat_c[3], m->feat_c[2], lv[3].h, lv[3].w);
            dm_tensor aspp = rvm_view(&s->u[4], 0, m->feat_c[3], lv[4].h, lv[4].w);
            compare_tensor(&g, file, "frame0_f1", &f1);
            compare_tensor(&g, file, "frame0_f2", &f2);
            compare_tensor(&g, file, "frame0_f3", &f3);
            compare_tensor(&g, file, "frame0_f4", &s->f4);
            compare_tensor(&g, file, "frame0_aspp", &aspp);
            CHECK_OK(rvm_forward_tail(s, &src, &fgr, &pha));
        } else {
            CHECK_OK(rvm_forward_u8(s, rgb, dm_f32(&fgr), dm_f32(&pha)));
        }
        char name[160];
        snprintf(name, sizeof name, "%s fgr[%d]", file, t);
        CHECK(tc_compare(name, dm_f32(&fgr), dm_f32(&fgr_g) + (size_t)t * 3 * H * W, 3 * H * W,
                         RVM_TOL, NULL));
        snprintf(name, sizeof name, "%s pha[%d]", file, t);
        CHECK(tc_compare(name, dm_f32(&pha), dm_f32(&pha_g) + (size_t)t * H * W, H * W, RVM_TOL,
                         NULL));
    }
    for (int i = 1; s && i <= 4; i++) {
        char key[8];
        snprintf(key, sizeof key, "r%d", i);
        compare_tensor(&g, file, key, rvm_state_recurrent(s, i));
    }
    dm_tensor *all[] = {&fgr, &pha, &src, &fgr_g, &pha_g};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dm_tensor_free(all[i]);
    rvm_state_free(s);
    dm_st_close(&g);
}

int main(void) {
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

    dm_backend *be = dm_backend_cpu_create(0);
    rvm_model *m = NULL;
    CHECK_OK(rvm_model_load_variant(&m, path, RVM_VARIANT_RESNET50, be));
    if (m) {
        CHECK(rvm_model_variant(m) == RVM_VARIANT_RESNET50);
        run_case(m, be, "golden/rvm_r50/sequence.safetensors", 0.5, 1);
        run_case(m, be, "golden/rvm_r50/sequence_noDGF.safetensors", 1.0, 0);
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
    unlink(path);

    dm_op_id ops[DM_OP_COUNT];
    int n50 = rvm_required_ops(RVM_VARIANT_RESNET50, ops), has_max = 0;
    for (int i = 0; i < n50; i++) has_max |= ops[i] == DM_OP_MAXPOOL2D;
    CHECK(has_max && rvm_required_ops(RVM_VARIANT_MOBILENETV3, ops) == n50 - 1);
    dm_backend_destroy(be);
    return tc_failure_count != 0;
}
