/* DA-V2 loader: the transformers-format checkpoint (names of transformers
 * convert_depth_anything_to_hf.py, q/k/v split) gives bit-identical depth to the official
 * names; missing, unexpected, mis-shaped tensors and missing files are reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/da2.h"
#include "depthmatte/recipe.h"
#include "depthmatte/safetensors.h"
#include "models/da2_weights.h"
#include "tensor_compare.h"

static char tmpdir[200];

/* Writes the recipe tensors; mode 0 official names, 1 transformers names, 2 official minus
 * one tensor, 3 official plus an unexpected one, 4 official with one wrong shape. */
static dm_status write_variant(const dm_recipe *r, int mode, const char *path) {
    int cap = 3 * r->count + 1, n = 0; /* qkv entries split in three */
    dm_tensor *ts = calloc((size_t)cap, sizeof *ts);
    const dm_tensor **tp = calloc((size_t)cap, sizeof *tp);
    char **names = calloc((size_t)cap, sizeof *names);
    dm_status st = DM_OK;
    for (int i = 0; i < r->count && !st; i++) {
        const dm_recipe_entry *e = &r->entries[i];
        if (mode == 2 && !strcmp(e->name, "depth_head.scratch.refinenet2.out_conv.bias")) continue;
        dm_tensor t;
        if ((st = dm_recipe_generate(r, e, &t))) break;
        if (mode == 4 && !strcmp(e->name, "pretrained.blocks.3.mlp.fc1.bias")) t.shape[0] = 1535;
        int blk;
        char kind[16];
        if (mode == 1 && sscanf(e->name, "pretrained.blocks.%d.attn.qkv.%15s", &blk, kind) == 2) {
            static const char *const parts[3] = {"query", "key", "value"};
            const int64_t rows = e->shape[0] / 3;
            for (int p = 0; p < 3; p++) {
                int64_t sh[2] = {rows, e->ndim == 2 ? e->shape[1] : 0};
                dm_tensor part;
                dm_tensor_alloc(&part, DM_DTYPE_F32, e->ndim, sh);
                size_t bytes = dm_tensor_nbytes(&part);
                memcpy(part.data, (char *)t.data + p * bytes, bytes);
                char nm[160];
                snprintf(nm, sizeof nm, "backbone.encoder.layer.%d.attention.attention.%s.%s", blk,
                         parts[p], kind);
                ts[n] = part, names[n] = strdup(nm), n++;
            }
            dm_tensor_free(&t);
            continue;
        }
        char nm[160];
        if (mode == 1) {
            if ((st = da2_hf_name(e->name, nm, sizeof nm))) break;
        } else {
            snprintf(nm, sizeof nm, "%s", e->name);
        }
        ts[n] = t, names[n] = strdup(nm), n++;
    }
    if (!st && mode == 3) {
        int64_t one = 1;
        dm_tensor_alloc(&ts[n], DM_DTYPE_F32, 1, &one);
        names[n++] = strdup("depth_head.scratch.extra.weight");
    }
    for (int i = 0; i < n; i++) tp[i] = &ts[i];
    if (!st) st = dm_st_write(path, n, (const char *const *)names, tp, NULL);
    for (int i = 0; i < n; i++) dm_tensor_free(&ts[i]), free(names[i]);
    free(ts), free(tp), free(names);
    return st;
}

static float *infer(dm_backend *be, const char *weights, const dm_st_entry *img) {
    da2_model *m = NULL;
    CHECK_OK(da2_model_load(&m, weights, be));
    if (!m) return NULL;
    const int H = (int)img->shape[0], W = (int)img->shape[1];
    float *depth = malloc(sizeof(float) * H * W);
    da2_ctx *c = NULL;
    CHECK_OK(da2_ctx_init(&c, m, be, H, W, 140));
    if (c) CHECK_OK(da2_infer_u8(c, img->data, depth));
    da2_ctx_free(c);
    da2_model_free(m);
    return depth;
}

int main(void) {
    dm_recipe r;
    dm_status st = dm_recipe_load(&r, tc_shared_path("golden/da2_vits/recipe.json"));
    if (st == DM_ERR_IO) return tc_skip("golden/da2_vits not found (set DM_SHARED)");
    CHECK_OK(st);
    snprintf(tmpdir, sizeof tmpdir, "%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");

    /* Names quoted from transformers convert_depth_anything_to_hf.py create_rename_keys. */
    const char *pairs[][2] = {
        {"pretrained.pos_embed", "backbone.embeddings.position_embeddings"},
        {"pretrained.blocks.7.ls2.gamma", "backbone.encoder.layer.7.layer_scale2.lambda1"},
        {"pretrained.blocks.0.attn.proj.bias", "backbone.encoder.layer.0.attention.output.dense.bias"},
        {"depth_head.resize_layers.3.weight", "neck.reassemble_stage.layers.3.resize.weight"},
        {"depth_head.scratch.layer1_rn.weight", "neck.convs.0.weight"},
        {"depth_head.scratch.refinenet1.resConfUnit2.conv1.bias",
         "neck.fusion_stage.layers.3.residual_layer2.convolution1.bias"},
        {"depth_head.scratch.refinenet4.out_conv.weight", "neck.fusion_stage.layers.0.projection.weight"},
        {"depth_head.scratch.output_conv2.2.bias", "head.conv3.bias"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char nm[160] = "";
        CHECK_OK(da2_hf_name(pairs[i][0], nm, sizeof nm));
        if (strcmp(nm, pairs[i][1])) {
            fprintf(stderr, "hf name of %s: got %s want %s\n", pairs[i][0], nm, pairs[i][1]);
            tc_failure_count++;
        }
    }

    char paths[5][300];
    for (int mode = 0; mode < 5; mode++) {
        snprintf(paths[mode], sizeof paths[mode], "%s/dm_da2_loader_%d_%d.safetensors", tmpdir,
                 (int)getpid(), mode);
        CHECK_OK(write_variant(&r, mode, paths[mode]));
    }
    dm_recipe_free(&r);

    dm_backend *be = dm_backend_cpu_create(2);
    dm_st_file g;
    CHECK_OK(dm_st_open(&g, tc_shared_path("golden/da2_vits/case_square.safetensors")));
    dm_st_entry *img = g.map ? dm_st_find(&g, "image_rgb_u8") : NULL;
    CHECK(img != NULL);
    if (img) {
        float *a = infer(be, paths[0], img), *b = infer(be, paths[1], img);
        if (a && b) /* same weights, same ops: bit-identical */
            tc_compare("hf names vs official", b, a, img->shape[0] * img->shape[1], 0.0, NULL);
        free(a), free(b);
    }
    dm_st_close(&g);

    da2_model *m = NULL;
    st = da2_model_load(&m, paths[2], be);
    printf("missing tensor: %s\n", dm_error_message());
    CHECK(st == DM_ERR_NAME && m == NULL && strstr(dm_error_message(), "refinenet2.out_conv.bias"));
    st = da2_model_load(&m, paths[3], be);
    printf("unexpected tensor: %s\n", dm_error_message());
    CHECK(st == DM_ERR_NAME && m == NULL && strstr(dm_error_message(), "extra"));
    st = da2_model_load(&m, paths[4], be);
    printf("wrong shape: %s\n", dm_error_message());
    CHECK(st == DM_ERR_SHAPE && m == NULL && strstr(dm_error_message(), "fc1.bias"));
    st = da2_model_load(&m, "/nonexistent/da2.safetensors", be);
    printf("missing file: %s\n", dm_error_message());
    CHECK(st == DM_ERR_IO && m == NULL);
    for (int mode = 0; mode < 5; mode++) unlink(paths[mode]);

    /* input-size rule examples (official Resize, README section 2) and argument checks */
    int h, w;
    da2_input_size(160, 160, 140, &h, &w);
    CHECK(h == 140 && w == 140);
    da2_input_size(126, 224, 98, &h, &w);
    CHECK(h == 98 && w == 168);
    da2_input_size(1080, 1920, 518, &h, &w);
    CHECK(h == 518 && w == 924);
    da2_ctx *c = NULL;
    CHECK(da2_ctx_init(&c, NULL, be, 13, 100, 518) == DM_ERR_ARG && !c);
    CHECK(da2_ctx_init(&c, NULL, be, 100, 100, 5000) == DM_ERR_ARG && !c);
    dm_backend_destroy(be);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
