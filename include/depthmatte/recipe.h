/* depthmatte — deterministic "recipe" weights for DA-V2 and VDA tests.
 *
 * A recipe (../shared/golden/<model>/recipe.json, format "recipe-v1", golden README section 1)
 * lists every tensor of an official state_dict (official key names, state_dict order) with a
 * seed and an init rule. No trained weights are involved; the goldens were produced with these
 * values, so a test regenerates them bit-exactly:
 *   "uniform":        u_i = (splitmix64(seed * 2^32 + i) >> 40) * 2^-24  (i = row-major index)
 *                     w_i = (float)(offset + scale * (2 u_i - 1))   in double, rounded once
 *   "sinusoidal_pe":  pe[0, p, 2k] = sin(p * exp(2k * -ln(10000) / d)), pe[0, p, 2k+1] = cos(..)
 *                     (VDA PositionalEncoding), computed in float32 arithmetic here; the exact
 *                     torch values can be taken from pe_buffers.safetensors instead
 *                     (dm_recipe_set_pe_file).
 *   "const":          every element = "value" (RVM ResNet50's BatchNorm num_batches_tracked,
 *                     dtype I64, value 0); dtype F32 or I64.
 * The library is built with -ffp-contract=off so the double expression is not fused.
 */
#ifndef DEPTHMATTE_RECIPE_H
#define DEPTHMATTE_RECIPE_H

#include <stdint.h>

#include "depthmatte/safetensors.h"
#include "depthmatte/tensor.h"

typedef enum dm_recipe_init {
    DM_RECIPE_UNIFORM = 0,
    DM_RECIPE_SINUSOIDAL_PE,
    DM_RECIPE_CONST,
} dm_recipe_init;

typedef struct dm_recipe_entry {
    char *name; /* official state_dict key, e.g. "pretrained.blocks.0.attn.qkv.weight" */
    int ndim;
    int64_t shape[DM_MAX_DIMS];
    uint64_t seed; /* state_dict index + 1 */
    dm_recipe_init init;
    double scale, offset; /* uniform on [offset - scale, offset + scale) */
    double value;         /* "const": the value of every element */
    dm_dtype dtype;       /* DM_DTYPE_F32, or DM_DTYPE_I64 ("const" only) */
} dm_recipe_entry;

typedef struct dm_recipe {
    dm_recipe_entry *entries; /* in state_dict order */
    int count;
    char *pe_file; /* optional pe_buffers.safetensors for "sinusoidal_pe" entries, or NULL */
} dm_recipe;

/* SplitMix64 finaliser (golden README section 1; test vectors there). */
uint64_t dm_recipe_splitmix64(uint64_t x);

/* u_i in [0, 1) of element i of the tensor with `seed`. */
double dm_recipe_u(uint64_t seed, uint64_t i);

/* Uniform recipe weight w_i = (float)(offset + scale * (2 u_i - 1)). */
float dm_recipe_w(uint64_t seed, uint64_t i, double scale, double offset);

/* Parses recipe.json (cJSON). Errors: DM_ERR_IO (unreadable), DM_ERR_FORMAT (not recipe-v1,
 * missing field, unknown init, shape of more than DM_MAX_DIMS dims, dtype other than F32,
 * or I64 for a "const" entry).
 * On error *r is zeroed. */
dm_status dm_recipe_load(dm_recipe *r, const char *json_path);

/* Frees everything; safe on a zeroed struct. */
void dm_recipe_free(dm_recipe *r);

/* Makes "sinusoidal_pe" entries copy the table "pe_d<d>" ([1, T, d] F32) of `path`
 * (vda_vits/pe_buffers.safetensors) instead of computing it. DM_ERR_NOMEM on failure. */
dm_status dm_recipe_set_pe_file(dm_recipe *r, const char *path);

/* Finds an entry by name; NULL if absent. */
const dm_recipe_entry *dm_recipe_find(const dm_recipe *r, const char *name);

/* Generates entry `e` into a newly allocated CPU tensor of its shape and dtype (F32; I64 for
 * an I64 "const" entry; caller frees with
 * dm_tensor_free). Errors: DM_ERR_NOMEM; DM_ERR_IO / DM_ERR_NAME / DM_ERR_SHAPE from the pe
 * file when one is set. */
dm_status dm_recipe_generate(const dm_recipe *r, const dm_recipe_entry *e, dm_tensor *out);

/* Generates every entry and writes them, with their official names and in recipe order, to
 * a safetensors file at `out_path` (metadata: "source" = recipe path note). DM_ERR_IO on write
 * failure. Peak memory: all tensors at once (DA-V2 Small: ~100 MB). */
dm_status dm_recipe_write_safetensors(const dm_recipe *r, const char *out_path);

#endif
