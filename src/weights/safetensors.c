/* safetensors reader (mmap + cJSON) and writer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "depthmatte/safetensors.h"
#include "weights/st_internal.h"

static int parse_dtype(const char *s, dm_dtype *out) {
    static const struct {
        const char *name;
        dm_dtype dtype;
    } map[] = {{"F32", DM_DTYPE_F32}, {"F16", DM_DTYPE_F16}, {"BF16", DM_DTYPE_BF16},
               {"U8", DM_DTYPE_U8},   {"I64", DM_DTYPE_I64}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) {
            *out = map[i].dtype;
            return 1;
        }
    return 0;
}

static const char *dtype_st_name(dm_dtype d) {
    switch (d) {
    case DM_DTYPE_F32: return "F32";
    case DM_DTYPE_F16: return "F16";
    case DM_DTYPE_BF16: return "BF16";
    case DM_DTYPE_U8: return "U8";
    case DM_DTYPE_I64: return "I64";
    }
    return "?";
}

void dm_st_close(dm_st_file *f) {
    if (f->map) munmap(f->map, f->map_size);
    for (int i = 0; i < f->count; i++) free(f->entries[i].name);
    free(f->entries);
    free(f->path);
    free(f->metadata_json);
    memset(f, 0, sizeof *f);
}

static dm_status fail(dm_st_file *f, dm_status code) {
    dm_st_close(f);
    return code;
}

static dm_status parse_entry(dm_st_file *f, const cJSON *item, const uint8_t *data,
                             size_t data_size, dm_st_entry *e) {
    const char *path = f->path;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
        cJSON_GetArraySize(offs) != 2)
        return dm_error_set(DM_ERR_FORMAT, "%s: tensor %s: malformed header entry", path,
                            item->string);
    if (!parse_dtype(dt->valuestring, &e->dtype))
        return dm_error_set(DM_ERR_FORMAT, "%s: tensor %s: unsupported dtype %s", path,
                            item->string, dt->valuestring);
    e->ndim = cJSON_GetArraySize(shape);
    if (e->ndim > DM_MAX_DIMS)
        return dm_error_set(DM_ERR_FORMAT, "%s: tensor %s: %d dims (max %d)", path, item->string,
                            e->ndim, DM_MAX_DIMS);
    uint64_t numel = 1;
    for (int i = 0; i < e->ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12)
            return dm_error_set(DM_ERR_FORMAT, "%s: tensor %s: bad shape", path, item->string);
        e->shape[i] = (int64_t)d->valuedouble;
        numel *= (uint64_t)e->shape[i];
    }
    const cJSON *b0 = cJSON_GetArrayItem(offs, 0), *b1 = cJSON_GetArrayItem(offs, 1);
    if (!cJSON_IsNumber(b0) || !cJSON_IsNumber(b1) || b0->valuedouble < 0 ||
        b1->valuedouble < b0->valuedouble)
        return dm_error_set(DM_ERR_FORMAT, "%s: tensor %s: bad data_offsets", path,
                            item->string);
    /* Compare as doubles before converting: a huge offset (e.g. 2e22) does not fit uint64_t
     * and converting it would be undefined behaviour (found by tests/fuzz/fuzz_safetensors). */
    if (b1->valuedouble > (double)data_size)
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: tensor %s: data ends at byte %.0f but the file holds %zu data "
                            "bytes (truncated file?)",
                            path, item->string, b1->valuedouble, data_size);
    uint64_t begin = (uint64_t)b0->valuedouble, end = (uint64_t)b1->valuedouble;
    if (end - begin != numel * dm_dtype_size(e->dtype))
        return dm_error_set(DM_ERR_FORMAT, "%s: tensor %s: %llu data bytes for %llu elements of %s",
                            path, item->string, (unsigned long long)(end - begin),
                            (unsigned long long)numel, dtype_st_name(e->dtype));
    e->name = strdup(item->string);
    e->data = data + begin;
    e->nbytes = end - begin;
    return e->name ? DM_OK : dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
}

dm_status dm_st_open(dm_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(f, dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno)));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fail(f, dm_error_set(DM_ERR_IO, "%s: not a regular file", path));
    }
    if (sb.st_size < 8) {
        close(fd);
        return fail(f, dm_error_set(DM_ERR_FORMAT, "%s: %lld bytes, too short for safetensors",
                                    path, (long long)sb.st_size));
    }
    f->map_size = (size_t)sb.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return fail(f, dm_error_set(DM_ERR_IO, "%s: mmap: %s", path, strerror(errno)));
    }
    const uint8_t *bytes = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | bytes[i];
    if (hlen > f->map_size - 8 || hlen > (100u << 20))
        return fail(f, dm_error_set(DM_ERR_FORMAT,
                                    "%s: header length %llu exceeds file size %zu (not a "
                                    "safetensors file, or truncated)",
                                    path, (unsigned long long)hlen, f->map_size));
    cJSON *root = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(f, dm_error_set(DM_ERR_FORMAT, "%s: header is not a JSON object", path));
    }
    int n = cJSON_GetArraySize(root);
    f->entries = calloc((size_t)(n > 0 ? n : 1), sizeof *f->entries);
    if (!f->entries) {
        cJSON_Delete(root);
        return fail(f, dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path));
    }
    const uint8_t *data = bytes + 8 + hlen;
    size_t data_size = f->map_size - 8 - (size_t)hlen;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) {
            /* cJSON keeps duplicate keys; a second __metadata__ is malformed (found by
             * fuzz_safetensors: it leaked the first copy). */
            if (f->metadata_json) {
                cJSON_Delete(root);
                return fail(f, dm_error_set(DM_ERR_FORMAT, "%s: header has two __metadata__ "
                                            "entries", path));
            }
            f->metadata_json = cJSON_PrintUnformatted(item);
            continue;
        }
        dm_status st = parse_entry(f, item, data, data_size, &f->entries[f->count]);
        if (st) {
            cJSON_Delete(root);
            return fail(f, st);
        }
        f->count++;
    }
    cJSON_Delete(root);
    return DM_OK;
}

dm_st_entry *dm_st_find(dm_st_file *f, const char *name) {
    if (f->synth_rules) return dm_st_synth_find(f, name);
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
    return NULL;
}

dm_status dm_st_load_f32(dm_st_file *f, const char *name, int ndim, const int64_t *shape,
                         dm_tensor *out) {
    if (f->synth_rules) return dm_st_synth_load(f, name, ndim, shape, out);
    memset(out, 0, sizeof *out);
    dm_st_entry *e = dm_st_find(f, name);
    if (!e) return dm_error_set(DM_ERR_NAME, "%s: tensor %s is missing", f->path, name);
    if (shape) {
        int same = e->ndim == ndim;
        for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
        if (!same) {
            char a[128], b[128];
            return dm_error_set(DM_ERR_SHAPE, "%s: tensor %s: wrong shape %s, expected %s",
                                f->path, name, dm_shape_str(e->ndim, e->shape, a, sizeof a),
                                dm_shape_str(ndim, shape, b, sizeof b));
        }
    }
    if (e->dtype == DM_DTYPE_I64)
        return dm_error_set(DM_ERR_DTYPE, "%s: tensor %s: dtype I64, expected a float type",
                            f->path, name);
    dm_status st = dm_tensor_alloc(out, DM_DTYPE_F32, e->ndim, e->shape);
    if (st) return st;
    int64_t n = dm_tensor_numel(out);
    float *d = dm_f32(out);
    const uint8_t *src = e->data;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        switch (e->dtype) {
        case DM_DTYPE_F32: memcpy(&d[i], src + 4 * i, 4); break;
        case DM_DTYPE_F16:
            memcpy(&h, src + 2 * i, 2);
            d[i] = dm_f16_to_f32(h);
            break;
        case DM_DTYPE_BF16:
            memcpy(&h, src + 2 * i, 2);
            d[i] = dm_bf16_to_f32(h);
            break;
        case DM_DTYPE_U8: d[i] = src[i]; break;
        default: break;
        }
    }
    e->used = 1;
    return DM_OK;
}

dm_status dm_st_check_all_used(const dm_st_file *f, const char *const *ignore_prefixes) {
    for (int i = 0; i < f->count; i++) {
        const dm_st_entry *e = &f->entries[i];
        if (e->used) continue;
        int ignored = 0;
        for (const char *const *p = ignore_prefixes; p && *p && !ignored; p++)
            ignored = !strncmp(e->name, *p, strlen(*p));
        if (!ignored)
            return dm_error_set(DM_ERR_NAME, "%s: unexpected tensor %s (wrong model?)", f->path,
                                e->name);
    }
    return DM_OK;
}

dm_status dm_st_metadata(const dm_st_file *f, const char *key, char *buf, size_t size) {
    cJSON *m = f->metadata_json ? cJSON_Parse(f->metadata_json) : NULL;
    const cJSON *v = m ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
    dm_status st = DM_OK;
    if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else
        st = dm_error_set(DM_ERR_NAME, "%s: no metadata %s", f->path, key);
    cJSON_Delete(m);
    return st;
}

dm_status dm_st_write(const char *path, int n, const char *const *names,
                      const dm_tensor *const *tensors, const char *const *metadata) {
    cJSON *root = cJSON_CreateObject();
    if (metadata && metadata[0]) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (const char *const *p = metadata; p[0] && p[1]; p += 2)
            cJSON_AddStringToObject(m, p[0], p[1]);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, names[i]);
        cJSON_AddStringToObject(e, "dtype", dtype_st_name(tensors[i]->dtype));
        cJSON *s = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < tensors[i]->ndim; d++)
            cJSON_AddItemToArray(s, cJSON_CreateNumber((double)tensors[i]->shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        size_t nb = dm_tensor_nbytes(tensors[i]);
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    size_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8;
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(json);
        return dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno));
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(json, 1, hlen, fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    for (int i = 0; ok && i < n; i++) {
        size_t nb = dm_tensor_nbytes(tensors[i]);
        ok = fwrite(tensors[i]->data, 1, nb, fp) == nb;
    }
    free(json);
    if (fclose(fp) != 0) ok = 0;
    if (!ok) return dm_error_set(DM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return DM_OK;
}
