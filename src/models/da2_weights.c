/* DA-V2 weight sources: official names or the transformers port (see da2_weights.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "models/da2_weights.h"

void da2_wsrc_init(da2_wsrc *s, dm_st_file *f) {
    s->file = f;
    s->hf = dm_st_find(f, "backbone.embeddings.cls_token") != NULL;
}

/* Fixed renames: official -> transformers. */
static const char *const fixed_names[][2] = {
    {"pretrained.cls_token", "backbone.embeddings.cls_token"},
    {"pretrained.mask_token", "backbone.embeddings.mask_token"},
    {"pretrained.pos_embed", "backbone.embeddings.position_embeddings"},
    {"pretrained.patch_embed.proj.weight", "backbone.embeddings.patch_embeddings.projection.weight"},
    {"pretrained.patch_embed.proj.bias", "backbone.embeddings.patch_embeddings.projection.bias"},
    {"pretrained.norm.weight", "backbone.layernorm.weight"},
    {"pretrained.norm.bias", "backbone.layernorm.bias"},
    {"depth_head.scratch.output_conv1.weight", "head.conv1.weight"},
    {"depth_head.scratch.output_conv1.bias", "head.conv1.bias"},
    {"depth_head.scratch.output_conv2.0.weight", "head.conv2.weight"},
    {"depth_head.scratch.output_conv2.0.bias", "head.conv2.bias"},
    {"depth_head.scratch.output_conv2.2.weight", "head.conv3.weight"},
    {"depth_head.scratch.output_conv2.2.bias", "head.conv3.bias"},
};

/* Suffix renames inside one ViT block ("pretrained.blocks.N.<a>" -> "backbone.encoder.layer.N.<b>"). */
static const char *const block_names[][2] = {
    {"norm1.weight", "norm1.weight"}, {"norm1.bias", "norm1.bias"},
    {"norm2.weight", "norm2.weight"}, {"norm2.bias", "norm2.bias"},
    {"attn.proj.weight", "attention.output.dense.weight"},
    {"attn.proj.bias", "attention.output.dense.bias"},
    {"ls1.gamma", "layer_scale1.lambda1"}, {"ls2.gamma", "layer_scale2.lambda1"},
    {"mlp.fc1.weight", "mlp.fc1.weight"}, {"mlp.fc1.bias", "mlp.fc1.bias"},
    {"mlp.fc2.weight", "mlp.fc2.weight"}, {"mlp.fc2.bias", "mlp.fc2.bias"},
};

/* Suffix renames inside a fusion block ("depth_head.scratch.refinenetI.<a>" ->
 * "neck.fusion_stage.layers.(4-I).<b>"). */
static const char *const fusion_names[][2] = {
    {"out_conv.", "projection."},
    {"resConfUnit1.conv1.", "residual_layer1.convolution1."},
    {"resConfUnit1.conv2.", "residual_layer1.convolution2."},
    {"resConfUnit2.conv1.", "residual_layer2.convolution1."},
    {"resConfUnit2.conv2.", "residual_layer2.convolution2."},
};

#define COUNT(a) (sizeof(a) / sizeof(a[0]))

dm_status da2_hf_name(const char *n, char *out, size_t size) {
    for (size_t i = 0; i < COUNT(fixed_names); i++)
        if (!strcmp(n, fixed_names[i][0])) {
            snprintf(out, size, "%s", fixed_names[i][1]);
            return DM_OK;
        }
    int idx, len = 0;
    if (sscanf(n, "pretrained.blocks.%d.%n", &idx, &len) == 1 && len > 0) {
        for (size_t i = 0; i < COUNT(block_names); i++)
            if (!strcmp(n + len, block_names[i][0])) {
                snprintf(out, size, "backbone.encoder.layer.%d.%s", idx, block_names[i][1]);
                return DM_OK;
            }
    }
    len = 0;
    if (sscanf(n, "depth_head.projects.%d.%n", &idx, &len) == 1 && len > 0) {
        snprintf(out, size, "neck.reassemble_stage.layers.%d.projection.%s", idx, n + len);
        return DM_OK;
    }
    len = 0;
    if (sscanf(n, "depth_head.resize_layers.%d.%n", &idx, &len) == 1 && len > 0) {
        snprintf(out, size, "neck.reassemble_stage.layers.%d.resize.%s", idx, n + len);
        return DM_OK;
    }
    len = 0;
    if (sscanf(n, "depth_head.scratch.layer%d_rn.%n", &idx, &len) == 1 && len > 0) {
        snprintf(out, size, "neck.convs.%d.%s", idx - 1, n + len);
        return DM_OK;
    }
    len = 0;
    if (sscanf(n, "depth_head.scratch.refinenet%d.%n", &idx, &len) == 1 && len > 0 && idx >= 1 &&
        idx <= 4) {
        for (size_t i = 0; i < COUNT(fusion_names); i++) {
            size_t pl = strlen(fusion_names[i][0]);
            if (!strncmp(n + len, fusion_names[i][0], pl)) {
                snprintf(out, size, "neck.fusion_stage.layers.%d.%s%s", 4 - idx,
                         fusion_names[i][1], n + len + pl);
                return DM_OK;
            }
        }
    }
    return dm_error_set(DM_ERR_NAME, "da2: no transformers name for %s", n);
}

/* Fused qkv from the three transformers projections, stacked along dim 0. */
static dm_status load_qkv(da2_wsrc *s, int block, const char *kind, int ndim,
                          const int64_t *shape, dm_tensor *out) {
    static const char *const parts[3] = {"query", "key", "value"};
    int64_t part_shape[DM_MAX_DIMS];
    for (int d = 0; d < ndim; d++) part_shape[d] = shape[d];
    part_shape[0] = shape[0] / 3;
    dm_status st = dm_tensor_alloc(out, DM_DTYPE_F32, ndim, shape);
    if (st) return st;
    const size_t part_bytes = dm_tensor_nbytes(out) / 3;
    for (int p = 0; p < 3; p++) {
        char name[160];
        snprintf(name, sizeof name, "backbone.encoder.layer.%d.attention.attention.%s.%s", block,
                 parts[p], kind);
        dm_tensor t;
        if ((st = dm_st_load_f32(s->file, name, ndim, part_shape, &t))) {
            dm_tensor_free(out);
            return st;
        }
        memcpy((char *)out->data + p * part_bytes, t.data, part_bytes);
        dm_tensor_free(&t);
    }
    return DM_OK;
}

dm_status da2_wsrc_load(da2_wsrc *s, const char *name, int ndim, const int64_t *shape,
                        dm_tensor *out) {
    if (!s->hf) return dm_st_load_f32(s->file, name, ndim, shape, out);
    int block, len = 0;
    char kind[16];
    if (sscanf(name, "pretrained.blocks.%d.attn.qkv.%15s%n", &block, kind, &len) == 2 &&
        (!strcmp(kind, "weight") || !strcmp(kind, "bias")))
        return load_qkv(s, block, kind, ndim, shape, out);
    char hf[160];
    dm_status st = da2_hf_name(name, hf, sizeof hf);
    if (st) return st;
    return dm_st_load_f32(s->file, hf, ndim, shape, out);
}

dm_status da2_wsrc_loadf(da2_wsrc *s, int ndim, const int64_t *shape, dm_tensor *out,
                         const char *fmt, ...) {
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return da2_wsrc_load(s, name, ndim, shape, out);
}
