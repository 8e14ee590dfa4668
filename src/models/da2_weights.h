/* Internal: where the DA-V2 / VDA loaders read weights from. A safetensors file with the
 * official key names ("pretrained.blocks.0.attn.qkv.weight", "depth_head.scratch...") or with
 * the names of the transformers port (Depth-Anything-V2-Small-hf: "backbone.encoder.layer.0.
 * attention.attention.query.weight", "neck...", "head..."), translated by the table in
 * da2_weights.c (source: transformers convert_depth_anything_to_hf.py, create_rename_keys and
 * read_in_q_k_v). Loaders always ask for official names. */
#ifndef DM_MODELS_DA2_WEIGHTS_H
#define DM_MODELS_DA2_WEIGHTS_H

#include <stddef.h>

#include "depthmatte/safetensors.h"

typedef struct da2_wsrc {
    dm_st_file *file;
    int hf; /* 1: file uses transformers names */
} da2_wsrc;

/* Detects the naming convention of an opened file (transformers if it holds
 * "backbone.embeddings.cls_token"). */
void da2_wsrc_init(da2_wsrc *s, dm_st_file *f);

/* Translates an official DA-V2 key to its transformers name. DM_ERR_NAME if the key has no
 * counterpart (e.g. "pretrained.blocks.0.attn.qkv.weight", which is split in three). */
dm_status da2_hf_name(const char *official, char *out, size_t size);

/* Loads official tensor `name` as F32 with the expected shape (dm_st_load_f32 semantics). In
 * transformers files the fused qkv weight/bias is assembled from query, key, value (stacked
 * along dim 0, in that order). */
dm_status da2_wsrc_load(da2_wsrc *s, const char *name, int ndim, const int64_t *shape,
                        dm_tensor *out);

/* Same with a printf-formatted name. */
dm_status da2_wsrc_loadf(da2_wsrc *s, int ndim, const int64_t *shape, dm_tensor *out,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
