/* depthmatte — safetensors reader (mmap) with name/shape/dtype validation, and a writer.
 *
 * Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"},
 * then the data; offsets are relative to the end of the header. The reader validates the
 * whole header on open: every entry has a known dtype, offsets inside the file and
 * end - begin == numel * dtype size. Errors name the file and the tensor.
 */
#ifndef DEPTHMATTE_SAFETENSORS_H
#define DEPTHMATTE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "depthmatte/tensor.h"

typedef struct dm_st_entry {
    char *name;
    dm_dtype dtype;
    int ndim;
    int64_t shape[DM_MAX_DIMS];
    const void *data; /* inside the mapping, little-endian */
    size_t nbytes;
    int used; /* set by dm_st_load*; lets a loader report unexpected tensors */
} dm_st_entry;

/* Synthetic weights (dm_st_open_synthetic): how a tensor is made from its name and shape. */
typedef enum dm_st_synth_init {
    DM_ST_SYNTH_UNIFORM = 0, /* uniform on [offset - scale, offset + scale) */
    DM_ST_SYNTH_FAN_IN,      /* uniform 0 +- scale * sqrt(3 / fan_in), fan_in = prod(shape[1:]):
                              * Linear (N, K), Conv2d (Cout, Cin/groups, kh, kw); scale = gain,
                              * 1 keeps the variance of a linear layer */
    DM_ST_SYNTH_FAN_DIM0,    /* uniform 0 +- scale * sqrt(3 / shape[0]): ConvTranspose2d
                              * (Cin, Cout, k, k) with k = stride (each output sees Cin terms) */
    DM_ST_SYNTH_COUNTER,     /* I64 scalar 0 (BatchNorm num_batches_tracked) */
    DM_ST_SYNTH_ABSENT,      /* not in the file: names of another convention that loaders probe
                              * with dm_st_find (e.g. transformers names) */
} dm_st_synth_init;

typedef struct dm_st_synth_rule {
    const char *pattern; /* fnmatch(3) pattern on the whole tensor name, e.g. "*.bias" */
    dm_st_synth_init init;
    double offset, scale;
    int min_ndim; /* the rule applies only to tensors of at least this many dims (0: any); a
                   * FIND (dm_st_find) matches rules with min_ndim 0 only */
} dm_st_synth_rule;

typedef struct dm_st_file {
    char *path;
    void *map;
    size_t map_size;
    dm_st_entry *entries;
    int count;
    char *metadata_json; /* "__metadata__" object as JSON text, or NULL */
    /* synthetic source only (dm_st_open_synthetic; NULL rules for a real file) */
    const dm_st_synth_rule *synth_rules;
    int synth_count;
    uint64_t synth_seed;
    int capacity; /* entries allocated */
} dm_st_file;

/* Opens and validates `path`. Errors: DM_ERR_IO (missing, unreadable), DM_ERR_FORMAT
 * (truncated, bad JSON, offsets outside the file, unknown dtype), with the path in the
 * message. On error *f is zeroed and needs no close. */
dm_status dm_st_open(dm_st_file *f, const char *path);

/* Opens a synthetic weight source: no file, every tensor a loader asks for by name and shape
 * (dm_st_load_f32) is generated on the spot from the first rule (in order) whose pattern matches
 * the name, deterministically: element i of tensor `name` is the recipe formula
 * dm_recipe_w(s, i, scale', offset) of include/depthmatte/recipe.h with
 * s = (FNV-1a-32(name) ^ seed) + 1 and scale' the rule's scale (FAN_* rules: the derived one).
 * So the unchanged loaders (rvm_model_load, da2/vda) build a model without a file, e.g. for
 * `depthmatte selftest`. dm_st_find answers like a file with every official name: tensors
 * generated so far, COUNTER names (an I64 scalar), NULL for ABSENT names and for names not yet
 * loaded (loaders only probe names of other conventions). dm_st_load_f32 needs the expected
 * shape (DM_ERR_ARG without one); a name that matches no rule is DM_ERR_NAME (the rule table is
 * incomplete). Messages name the source as `label`. rules (n entries) must outlive f. Close with
 * dm_st_close. Errors: DM_ERR_NOMEM. */
dm_status dm_st_open_synthetic(dm_st_file *f, const char *label, uint64_t seed,
                               const dm_st_synth_rule *rules, int n);

/* Unmaps and frees. Safe on a zeroed struct. */
void dm_st_close(dm_st_file *f);

/* Finds a tensor by exact name; NULL if absent. */
dm_st_entry *dm_st_find(dm_st_file *f, const char *name);

/* Loads tensor `name` into a newly allocated F32 CPU tensor, converting F16/BF16/F32 (and
 * U8 to its integer value). Checks the shape against `shape` (ndim entries) unless shape is
 * NULL. Marks the entry used. Errors: DM_ERR_NAME (absent), DM_ERR_SHAPE ("got [..] expected
 * [..]"), DM_ERR_DTYPE (I64 or other); messages name file and tensor. */
dm_status dm_st_load_f32(dm_st_file *f, const char *name, int ndim, const int64_t *shape,
                         dm_tensor *out);

/* Reports the first entry not marked used whose name does not start with any of the
 * `ignore_prefixes` (NULL-terminated list, may be NULL): DM_ERR_NAME "unexpected tensor". */
dm_status dm_st_check_all_used(const dm_st_file *f, const char *const *ignore_prefixes);

/* Reads a string from "__metadata__" into buf; DM_ERR_NAME if absent. */
dm_status dm_st_metadata(const dm_st_file *f, const char *key, char *buf, size_t size);

/* Writes `n` CPU tensors (F32, F16, U8, I64) to `path` as safetensors. DM_ERR_IO on failure.
 * metadata: NULL or NULL-terminated key, value, key, value... list of strings. */
dm_status dm_st_write(const char *path, int n, const char *const *names,
                      const dm_tensor *const *tensors, const char *const *metadata);

#endif
