/* Recipe weights (golden README section 1): parse recipe.json with cJSON, generate tensors
 * with splitmix64, write them to safetensors. See include/depthmatte/recipe.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "depthmatte/recipe.h"

uint64_t dm_recipe_splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double dm_recipe_u(uint64_t seed, uint64_t i) {
    return (double)(dm_recipe_splitmix64((seed << 32) + i) >> 40) * 0x1p-24;
}

float dm_recipe_w(uint64_t seed, uint64_t i, double scale, double offset) {
    return (float)(offset + scale * (2.0 * dm_recipe_u(seed, i) - 1.0));
}

static char *read_text(const char *path, dm_status *st) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = dm_error_set(DM_ERR_IO, "%s: cannot open recipe", path);
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        *st = dm_error_set(DM_ERR_IO, "%s: cannot read recipe", path);
        return NULL;
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

static dm_status parse_entry(const cJSON *j, dm_recipe_entry *e, const char *path, int idx) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(j, "init");
    if (!cJSON_IsString(name) || !cJSON_IsArray(shape) || !cJSON_IsNumber(seed) ||
        !cJSON_IsString(init))
        return dm_error_set(DM_ERR_FORMAT, "%s: tensor #%d lacks name/shape/seed/init", path, idx);
    const int is_const = !strcmp(init->valuestring, "const");
    e->dtype = DM_DTYPE_F32;
    if (cJSON_IsString(dtype) && is_const && !strcmp(dtype->valuestring, "I64"))
        e->dtype = DM_DTYPE_I64;
    else if (cJSON_IsString(dtype) && strcmp(dtype->valuestring, "F32"))
        return dm_error_set(DM_ERR_FORMAT, "%s: %s has dtype %s, only F32 (and I64 for "
                            "\"const\") is generated", path, name->valuestring,
                            dtype->valuestring);
    e->name = strdup(name->valuestring);
    if (!e->name) return dm_error_set(DM_ERR_NOMEM, "recipe: out of memory");
    e->ndim = cJSON_GetArraySize(shape);
    if (e->ndim > DM_MAX_DIMS)
        return dm_error_set(DM_ERR_FORMAT, "%s: %s has %d dims (max %d)", path, e->name,
                            e->ndim, DM_MAX_DIMS);
    for (int d = 0; d < e->ndim; d++) {
        const cJSON *v = cJSON_GetArrayItem(shape, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            return dm_error_set(DM_ERR_FORMAT, "%s: %s has a bad shape", path, e->name);
        e->shape[d] = (int64_t)v->valuedouble;
    }
    e->seed = (uint64_t)seed->valuedouble;
    if (!strcmp(init->valuestring, "uniform")) {
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "scale");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(j, "offset");
        if (!cJSON_IsNumber(sc) || !cJSON_IsNumber(of))
            return dm_error_set(DM_ERR_FORMAT, "%s: %s lacks scale/offset", path, e->name);
        e->init = DM_RECIPE_UNIFORM;
        e->scale = sc->valuedouble; /* cJSON parses numbers as double (strtod) */
        e->offset = of->valuedouble;
    } else if (!strcmp(init->valuestring, "sinusoidal_pe")) {
        if (e->ndim != 3 || e->shape[2] % 2)
            return dm_error_set(DM_ERR_FORMAT, "%s: %s: sinusoidal_pe needs [1, T, even d]",
                                path, e->name);
        e->init = DM_RECIPE_SINUSOIDAL_PE;
    } else if (is_const) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
        if (!cJSON_IsNumber(v))
            return dm_error_set(DM_ERR_FORMAT, "%s: %s lacks value", path, e->name);
        e->init = DM_RECIPE_CONST;
        e->value = v->valuedouble;
    } else {
        return dm_error_set(DM_ERR_FORMAT, "%s: %s has unknown init \"%s\"", path, e->name,
                            init->valuestring);
    }
    return DM_OK;
}

dm_status dm_recipe_load(dm_recipe *r, const char *json_path) {
    memset(r, 0, sizeof *r);
    dm_status st = DM_OK;
    char *text = read_text(json_path, &st);
    if (!text) return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return dm_error_set(DM_ERR_FORMAT, "%s: not valid JSON", json_path);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "recipe-v1") || !cJSON_IsArray(tensors)) {
        cJSON_Delete(root);
        return dm_error_set(DM_ERR_FORMAT, "%s: not a recipe-v1 file", json_path);
    }
    int n = cJSON_GetArraySize(tensors);
    r->entries = calloc((size_t)(n > 0 ? n : 1), sizeof *r->entries);
    if (!r->entries) {
        cJSON_Delete(root);
        return dm_error_set(DM_ERR_NOMEM, "recipe: out of memory");
    }
    r->count = n;
    for (int i = 0; i < n && !st; i++)
        st = parse_entry(cJSON_GetArrayItem(tensors, i), &r->entries[i], json_path, i);
    cJSON_Delete(root);
    if (st) dm_recipe_free(r);
    return st;
}

void dm_recipe_free(dm_recipe *r) {
    for (int i = 0; i < r->count; i++) free(r->entries[i].name);
    free(r->entries);
    free(r->pe_file);
    memset(r, 0, sizeof *r);
}

dm_status dm_recipe_set_pe_file(dm_recipe *r, const char *path) {
    free(r->pe_file);
    r->pe_file = path ? strdup(path) : NULL;
    if (path && !r->pe_file) return dm_error_set(DM_ERR_NOMEM, "recipe: out of memory");
    return DM_OK;
}

const dm_recipe_entry *dm_recipe_find(const dm_recipe *r, const char *name) {
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->entries[i].name, name)) return &r->entries[i];
    return NULL;
}

/* VDA PositionalEncoding in float32 arithmetic: div = exp(2k * (-ln 10000 / d)),
 * pe[p, 2k] = sin(p * div), pe[p, 2k+1] = cos(p * div). */
static void sinusoidal_pe(float *pe, int T, int d) {
    const float c = (float)(-log(10000.0) / d);
    for (int p = 0; p < T; p++)
        for (int k = 0; k < d / 2; k++) {
            float div = expf((float)(2 * k) * c);
            float a = (float)p * div;
            pe[(size_t)p * d + 2 * k] = sinf(a);
            pe[(size_t)p * d + 2 * k + 1] = cosf(a);
        }
}

dm_status dm_recipe_generate(const dm_recipe *r, const dm_recipe_entry *e, dm_tensor *out) {
    dm_status st = dm_tensor_alloc(out, e->dtype, e->ndim, e->shape);
    if (st) return st;
    const int64_t n = dm_tensor_numel(out);
    if (e->init == DM_RECIPE_CONST) {
        for (int64_t i = 0; i < n; i++) {
            if (e->dtype == DM_DTYPE_I64)
                ((int64_t *)out->data)[i] = (int64_t)e->value;
            else
                dm_f32(out)[i] = (float)e->value;
        }
        return DM_OK;
    }
    float *d = dm_f32(out);
    if (e->init == DM_RECIPE_UNIFORM) {
        for (int64_t i = 0; i < n; i++) d[i] = dm_recipe_w(e->seed, (uint64_t)i, e->scale, e->offset);
        return DM_OK;
    }
    const int T = (int)e->shape[1], dim = (int)e->shape[2];
    if (!r || !r->pe_file) {
        sinusoidal_pe(d, T, dim);
        return DM_OK;
    }
    dm_st_file f;
    if ((st = dm_st_open(&f, r->pe_file))) goto fail;
    char key[32];
    snprintf(key, sizeof key, "pe_d%d", dim);
    dm_tensor tab;
    if ((st = dm_st_load_f32(&f, key, 3, e->shape, &tab))) {
        dm_st_close(&f);
        goto fail;
    }
    memcpy(d, dm_f32(&tab), sizeof(float) * (size_t)n);
    dm_tensor_free(&tab);
    dm_st_close(&f);
    return DM_OK;
fail:
    dm_tensor_free(out);
    return st;
}

dm_status dm_recipe_write_safetensors(const dm_recipe *r, const char *out_path) {
    dm_status st = DM_OK;
    dm_tensor *ts = calloc((size_t)(r->count > 0 ? r->count : 1), sizeof *ts);
    const dm_tensor **tp = calloc((size_t)(r->count > 0 ? r->count : 1), sizeof *tp);
    const char **names = calloc((size_t)(r->count > 0 ? r->count : 1), sizeof *names);
    if (!ts || !tp || !names) {
        st = dm_error_set(DM_ERR_NOMEM, "recipe: out of memory");
        goto done;
    }
    for (int i = 0; i < r->count && !st; i++) {
        st = dm_recipe_generate(r, &r->entries[i], &ts[i]);
        tp[i] = &ts[i];
        names[i] = r->entries[i].name;
    }
    if (!st) {
        const char *meta[] = {"source", "depthmatte recipe weights (golden README section 1); "
                                        "synthetic, not trained", NULL};
        st = dm_st_write(out_path, r->count, names, tp, meta);
    }
done:
    if (ts)
        for (int i = 0; i < r->count; i++) dm_tensor_free(&ts[i]);
    free(ts);
    free(tp);
    free(names);
    return st;
}
