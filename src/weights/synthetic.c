/* Synthetic weight source: tensors generated from their name and the expected shape, so that
 * the unchanged model loaders build a deterministic model without a file (safetensors.h,
 * dm_st_open_synthetic). Values use the recipe formula (recipe.h, golden README section 1). */
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/recipe.h"
#include "weights/st_internal.h"

static const int64_t k_counter_zero = 0; /* data of every COUNTER entry */

dm_status dm_st_open_synthetic(dm_st_file *f, const char *label, uint64_t seed,
                               const dm_st_synth_rule *rules, int n) {
    memset(f, 0, sizeof *f);
    f->path = strdup(label ? label : "synthetic");
    f->capacity = 512;
    f->entries = calloc((size_t)f->capacity, sizeof *f->entries);
    if (!f->path || !f->entries) {
        dm_st_close(f);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", label ? label : "synthetic");
    }
    f->synth_rules = rules;
    f->synth_count = n;
    f->synth_seed = seed;
    return DM_OK;
}

/* First rule matching name (and ndim; ndim < 0: a probe without shape). */
static const dm_st_synth_rule *rule_for(const dm_st_file *f, const char *name, int ndim) {
    for (int i = 0; i < f->synth_count; i++) {
        const dm_st_synth_rule *r = &f->synth_rules[i];
        if (r->min_ndim > 0 && ndim < r->min_ndim) continue;
        if (fnmatch(r->pattern, name, 0) == 0) return r;
    }
    return NULL;
}

static dm_st_entry *find_made(dm_st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
    return NULL;
}

/* Appends an entry (grows the array: pointers from earlier calls stay valid only until the
 * next append, as loaders use them). */
static dm_st_entry *add_entry(dm_st_file *f, const char *name, dm_dtype dtype, int ndim,
                              const int64_t *shape) {
    if (f->count == f->capacity) {
        dm_st_entry *e = realloc(f->entries, 2 * (size_t)f->capacity * sizeof *e);
        if (!e) return NULL;
        memset(e + f->capacity, 0, (size_t)f->capacity * sizeof *e);
        f->entries = e;
        f->capacity *= 2;
    }
    dm_st_entry *e = &f->entries[f->count];
    e->name = strdup(name);
    if (!e->name) return NULL;
    f->count++;
    e->dtype = dtype;
    e->ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (e->shape[i] = shape[i]);
    e->nbytes = (size_t)numel * dm_dtype_size(dtype);
    e->data = dtype == DM_DTYPE_I64 ? (const void *)&k_counter_zero : NULL;
    return e;
}

dm_st_entry *dm_st_synth_find(dm_st_file *f, const char *name) {
    dm_st_entry *e = find_made(f, name);
    if (e) return e;
    const dm_st_synth_rule *r = rule_for(f, name, -1);
    if (r && r->init == DM_ST_SYNTH_COUNTER) return add_entry(f, name, DM_DTYPE_I64, 0, NULL);
    return NULL;
}

/* FNV-1a, 32 bits: a per-name seed, so values do not depend on the loaders' call order. */
static uint32_t fnv1a32(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

dm_status dm_st_synth_load(dm_st_file *f, const char *name, int ndim, const int64_t *shape,
                           dm_tensor *out) {
    memset(out, 0, sizeof *out);
    if (!shape || ndim < 0 || ndim > DM_MAX_DIMS)
        return dm_error_set(DM_ERR_ARG,
                            "%s: tensor %s: a synthetic source needs the expected "
                            "shape",
                            f->path, name);
    const dm_st_synth_rule *r = rule_for(f, name, ndim);
    if (!r || r->init == DM_ST_SYNTH_ABSENT)
        return dm_error_set(DM_ERR_NAME, "%s: tensor %s is missing (no synthetic rule)", f->path,
                            name);
    if (r->init == DM_ST_SYNTH_COUNTER)
        return dm_error_set(DM_ERR_DTYPE, "%s: tensor %s: dtype I64, expected a float type",
                            f->path, name);
    double scale = r->scale, offset = r->offset;
    if (r->init == DM_ST_SYNTH_FAN_IN || r->init == DM_ST_SYNTH_FAN_DIM0) {
        int64_t fan = 1;
        if (r->init == DM_ST_SYNTH_FAN_DIM0)
            fan = ndim > 0 ? shape[0] : 1;
        else
            for (int i = 1; i < ndim; i++)
                fan *= shape[i];
        scale = r->scale * sqrt(3.0 / (double)(fan > 0 ? fan : 1));
        offset = 0;
    }
    dm_status st = dm_tensor_alloc(out, DM_DTYPE_F32, ndim, shape);
    if (st) return st;
    const uint64_t seed = (uint64_t)(fnv1a32(name) ^ (uint32_t)f->synth_seed) + 1;
    float *d = dm_f32(out);
    const int64_t n = dm_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        d[i] = dm_recipe_w(seed, (uint64_t)i, scale, offset);
    dm_st_entry *e = find_made(f, name);
    if (!e && !(e = add_entry(f, name, DM_DTYPE_F32, ndim, shape))) {
        dm_tensor_free(out);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", f->path);
    }
    e->used = 1;
    return DM_OK;
}
