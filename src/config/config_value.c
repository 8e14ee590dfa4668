/* YAML node -> typed field, for one schema row: type checks, ranges, enums, paths, inputs and
 * manifest expansion. Shared by the job file, --set overrides and the defaults. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

dm_status cfg_error(const cfg_ctx *ctx, dm_status code, const yaml_mark_t *mark, const char *key,
                    const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctx->has_position && mark)
        return dm_error_set(code, "%s:%zu:%zu: %s: %s", ctx->name, mark->line + 1, mark->column + 1,
                            key, msg);
    return dm_error_set(code, "%s: %s: %s", ctx->name, key, msg);
}

char *cfg_resolve_path(const char *dir, const char *p) {
    if (p[0] == '/' || !dir || !dir[0]) return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *r = malloc(n);
    if (r) snprintf(r, n, "%s/%s", dir, p);
    return r;
}

char *cfg_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

dm_status cfg_read_file(const char *path, char **text) {
    FILE *f = fopen(path, "rb");
    if (!f) return dm_error_set(DM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int read_error = ferror(f);
    fclose(f);
    if (!buf) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    if (read_error) {
        free(buf);
        return dm_error_set(DM_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        return dm_error_set(DM_ERR_FORMAT, "%s: contains a NUL byte (not a text file?)", path);
    }
    *text = buf;
    return DM_OK;
}

static int is_plain(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int is_null(const yaml_node_t *n) {
    if (!is_plain(n)) return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !s[0] || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* How an offending value is shown: "many" (with quotes), or its kind. */
static const char *describe(const yaml_node_t *n, char *buf, size_t size) {
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    if (is_null(n)) return "nothing (null)";
    snprintf(buf, size, "%s\"%.200s\"", is_plain(n) ? "" : "quoted string ",
             (const char *)n->data.scalar.value);
    return buf;
}

static dm_status enum_error(const cfg_ctx *ctx, const cfg_key *k, const yaml_node_t *n,
                            const yaml_mark_t *mark);

static dm_status expected(const cfg_ctx *ctx, const cfg_key *k, const yaml_node_t *n,
                          const yaml_mark_t *mark) {
    char buf[256];
    if (k->type == CFG_ENUM) return enum_error(ctx, k, n, mark);
    return cfg_error(ctx, DM_ERR_ARG, mark, k->path, "expected %s, got %s", k->expect,
                     describe(n, buf, sizeof buf));
}

static void *field(dm_job *job, const cfg_key *k) {
    return (char *)job + k->offset;
}

/* Enum name lookup; -1 if absent. */
static int enum_value(const cfg_key *k, const char *s, int *out) {
    for (const cfg_enum_value *e = k->values; e->name; e++)
        if (strcmp(e->name, s) == 0) {
            *out = e->value;
            return 0;
        }
    return -1;
}

static dm_status enum_error(const cfg_ctx *ctx, const cfg_key *k, const yaml_node_t *n,
                            const yaml_mark_t *mark) {
    char allowed[256] = "", buf[256];
    for (const cfg_enum_value *e = k->values; e->name; e++) {
        if (e != k->values) strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, e->name, sizeof allowed - strlen(allowed) - 1);
    }
    return cfg_error(ctx, DM_ERR_ARG, mark, k->path, "expected one of %s, got %s", allowed,
                     describe(n, buf, sizeof buf));
}

static void free_list(char **list, int n) {
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Appends a copy of `s` to a growing list. */
static int list_push(char ***list, int *n, int *cap, char *s) {
    if (!s) return -1;
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        char **bigger = realloc(*list, (size_t)nc * sizeof **list);
        if (!bigger) {
            free(s);
            return -1;
        }
        *list = bigger;
        *cap = nc;
    }
    (*list)[(*n)++] = s;
    return 0;
}

/* Reads a manifest: one path per line, blank lines and lines starting with '#' skipped,
 * surrounding whitespace trimmed, relative paths resolved against the manifest's folder. */
static dm_status expand_manifest(const cfg_ctx *ctx, const char *key, const yaml_mark_t *mark,
                                 const char *manifest, char ***list, int *n, int *cap) {
    char *text = NULL;
    if (cfg_read_file(manifest, &text) != DM_OK)
        return cfg_error(ctx, DM_ERR_IO, mark, key, "cannot read manifest: %s", dm_error_message());
    char *dir = cfg_dirname(manifest);
    int before = *n;
    dm_status st = DM_OK;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && st == DM_OK;
         line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len || line[0] == '#') continue;
        if (!dir || list_push(list, n, cap, cfg_resolve_path(dir, line)) != 0)
            st = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", ctx->name);
    }
    free(dir);
    free(text);
    if (st == DM_OK && *n == before)
        st = cfg_error(ctx, DM_ERR_ARG, mark, key, "manifest \"%s\" lists no videos", manifest);
    return st;
}

/* A positive finite number written as a plain YAML scalar; -1 otherwise. */
static int parse_positive(const yaml_node_t *n, double *out) {
    if (n->type != YAML_SCALAR_NODE || !is_plain(n)) return -1;
    const char *s = (const char *)n->data.scalar.value;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!s[0] || errno || *end || !isfinite(v) || !(v > 0.0)) return -1;
    *out = v;
    return 0;
}

/* An input item {path: P, fps: R}: an image sequence (or video) with its frame rate. */
static dm_status apply_input_map(const cfg_ctx *ctx, yaml_node_t *item, int idx, char ***list,
                                 int *n, int *cap, double *fps) {
    char key[64], buf[256];
    const char *path = NULL;
    *fps = 0.0;
    for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        const char *name = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
        snprintf(key, sizeof key, "inputs[%d].%s", idx, name);
        if (!strcmp(name, "path") && !path) {
            if (vn->type != YAML_SCALAR_NODE || is_null(vn))
                return cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, key,
                                 "expected a video, folder or glob path, got %s",
                                 describe(vn, buf, sizeof buf));
            path = (const char *)vn->data.scalar.value;
        } else if (!strcmp(name, "fps") && *fps == 0.0) {
            if (parse_positive(vn, fps) != 0)
                return cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, key,
                                 "expected a frame rate > 0 (frames per second), got %s",
                                 describe(vn, buf, sizeof buf));
        } else {
            snprintf(key, sizeof key, "inputs[%d]", idx);
            return cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, key,
                             "unknown key %s; an input item is a path, `manifest: FILE` or "
                             "`{path: FOLDER_OR_GLOB, fps: RATE}`",
                             describe(kn, buf, sizeof buf));
        }
    }
    if (!path) {
        snprintf(key, sizeof key, "inputs[%d]", idx);
        return cfg_error(ctx, DM_ERR_ARG, &item->start_mark, key, "the item gives no path");
    }
    if (list_push(list, n, cap, cfg_resolve_path(ctx->base_dir, path)))
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", ctx->name);
    return DM_OK;
}

static dm_status apply_inputs(const cfg_ctx *ctx, const cfg_key *k, yaml_node_t *node,
                              const yaml_mark_t *key_mark) {
    if (node->type != YAML_SEQUENCE_NODE) return expected(ctx, k, node, key_mark);
    char **list = NULL;
    double *rates = NULL; /* (n,) per-item frame rates, 0 = none given */
    int n = 0, cap = 0, idx = 0;
    dm_status st = DM_OK;
    char key[64], buf[256];
    for (yaml_node_item_t *it = node->data.sequence.items.start;
         it < node->data.sequence.items.top && st == DM_OK; it++, idx++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);
        const int before = n;
        double fps = 0.0;
        snprintf(key, sizeof key, "inputs[%d]", idx);
        yaml_node_pair_t *p0 =
            item->type == YAML_MAPPING_NODE ? item->data.mapping.pairs.start : NULL;
        yaml_node_t *k0 = p0 && p0 < item->data.mapping.pairs.top
                              ? yaml_document_get_node(ctx->doc, p0->key)
                              : NULL;
        const int is_manifest = k0 && k0->type == YAML_SCALAR_NODE &&
                                !strcmp((const char *)k0->data.scalar.value, "manifest");
        if (item->type == YAML_SCALAR_NODE && !is_null(item)) {
            if (list_push(&list, &n, &cap,
                          cfg_resolve_path(ctx->base_dir, (const char *)item->data.scalar.value)))
                st = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", ctx->name);
        } else if (is_manifest && item->data.mapping.pairs.top - p0 == 1) {
            yaml_node_pair_t *p = p0;
            yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
            snprintf(key, sizeof key, "inputs[%d].manifest", idx);
            if (vn->type != YAML_SCALAR_NODE || is_null(vn)) {
                st = cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, key,
                               "expected a file path, got %s", describe(vn, buf, sizeof buf));
            } else {
                char *m = cfg_resolve_path(ctx->base_dir, (const char *)vn->data.scalar.value);
                st = m ? expand_manifest(ctx, key, &kn->start_mark, m, &list, &n, &cap)
                       : dm_error_set(DM_ERR_NOMEM, "%s: out of memory", ctx->name);
                free(m);
            }
        } else if (item->type == YAML_MAPPING_NODE && !is_manifest) {
            st = apply_input_map(ctx, item, idx, &list, &n, &cap, &fps);
        } else {
            st = cfg_error(ctx, DM_ERR_ARG, &item->start_mark, key,
                           "expected a video path, `manifest: FILE` or `{path: FOLDER_OR_GLOB, "
                           "fps: RATE}`, got %s",
                           describe(item, buf, sizeof buf));
        }
        if (st == DM_OK && n > before) {
            double *bigger = realloc(rates, (size_t)cap * sizeof *rates);
            if (!bigger) {
                st = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", ctx->name);
                break;
            }
            rates = bigger;
            for (int j = before; j < n; j++)
                rates[j] = fps;
        }
    }
    if (st != DM_OK) {
        free_list(list, n);
        free(rates);
        return st;
    }
    free_list(ctx->job->inputs, ctx->job->n_inputs);
    free(ctx->job->input_fps);
    ctx->job->inputs = list;
    ctx->job->input_fps = rates;
    ctx->job->n_inputs = n;
    return DM_OK;
}

static dm_status apply_flags(const cfg_ctx *ctx, const cfg_key *k, yaml_node_t *node,
                             const yaml_mark_t *key_mark) {
    if (node->type != YAML_SEQUENCE_NODE ||
        node->data.sequence.items.top == node->data.sequence.items.start)
        return expected(ctx, k, node, key_mark);
    unsigned bits = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);
        int v;
        if (item->type != YAML_SCALAR_NODE ||
            enum_value(k, (const char *)item->data.scalar.value, &v) != 0)
            return enum_error(ctx, k, item, &item->start_mark);
        if (bits & (unsigned)v)
            return cfg_error(ctx, DM_ERR_ARG, &item->start_mark, k->path, "\"%s\" is listed twice",
                             (const char *)item->data.scalar.value);
        bits |= (unsigned)v;
    }
    *(unsigned *)field(ctx->job, k) = bits;
    return DM_OK;
}

static int parse_int(const char *s, int64_t *out) {
    if (!s[0]) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static dm_status apply_scalar(const cfg_ctx *ctx, const cfg_key *k, yaml_node_t *node,
                              const yaml_mark_t *mark) {
    if (node->type != YAML_SCALAR_NODE || is_null(node)) return expected(ctx, k, node, mark);
    const char *s = (const char *)node->data.scalar.value;
    void *dst = field(ctx->job, k);
    switch (k->type) {
    case CFG_BOOL: /* YAML 1.2 core schema spellings; yes/no/on/off are rejected on purpose */
        if (!is_plain(node)) return expected(ctx, k, node, mark);
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            *(int *)dst = 1;
        } else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            *(int *)dst = 0;
        } else {
            return expected(ctx, k, node, mark);
        }
        return DM_OK;
    case CFG_INT: {
        int64_t v;
        if (!is_plain(node) || parse_int(s, &v) != 0 || v < k->min || v > k->max)
            return expected(ctx, k, node, mark);
        *(int *)dst = (int)v;
        return DM_OK;
    }
    case CFG_RATIO: {
        if (!is_plain(node)) return expected(ctx, k, node, mark);
        if (!strcmp(s, "auto")) {
            *(double *)dst = 0.0;
            return DM_OK;
        }
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || *end || !isfinite(v) || !(v > 0.0) || v > 1.0)
            return expected(ctx, k, node, mark);
        *(double *)dst = v;
        return DM_OK;
    }
    case CFG_NUMBER: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (!is_plain(node) || !s[0] || errno || *end || !isfinite(v) || v < 0.0 ||
            v > (double)k->max)
            return expected(ctx, k, node, mark);
        *(double *)dst = v;
        return DM_OK;
    }
    case CFG_PATH: {
        char *p = cfg_resolve_path(ctx->base_dir, s);
        if (!p) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", ctx->name);
        free(*(char **)dst);
        *(char **)dst = p;
        return DM_OK;
    }
    case CFG_ENUM: {
        int v;
        if (enum_value(k, s, &v) != 0) return enum_error(ctx, k, node, mark);
        *(int *)dst = v;
        return DM_OK;
    }
    default:
        return cfg_error(ctx, DM_ERR_ARG, mark, k->path, "internal: not a scalar key");
    }
}

/* Walks a section's mapping: every key must be known, none may repeat. */
static dm_status apply_section(const cfg_ctx *ctx, const cfg_key *k, yaml_node_t *node,
                               const yaml_mark_t *key_mark) {
    if (is_null(node)) return DM_OK; /* `depth:` alone: the section with all defaults */
    if (node->type != YAML_MAPPING_NODE) return expected(ctx, k, node, key_mark);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        char path[128], buf[256];
        if (kn->type != YAML_SCALAR_NODE)
            return cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, k->path[0] ? k->path : "(top)",
                             "keys must be plain names, got %s", describe(kn, buf, sizeof buf));
        const char *name = (const char *)kn->data.scalar.value;
        snprintf(path, sizeof path, "%s%s%s", k->path, k->path[0] ? "." : "", name);
        for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = yaml_document_get_node(ctx->doc, q->key);
            if (prev->type == YAML_SCALAR_NODE &&
                strcmp((const char *)prev->data.scalar.value, name) == 0)
                return cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, path,
                                 "duplicate key (first given at line %zu)",
                                 prev->start_mark.line + 1);
        }
        int row = cfg_schema_find(path);
        if (row < 0) {
            const char *hint = cfg_schema_suggest(path);
            if (hint)
                return cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, path,
                                 "unknown key; did you mean \"%s\"?", hint);
            return cfg_error(ctx, DM_ERR_ARG, &kn->start_mark, path,
                             "unknown key (see docs/config.md for the keys)");
        }
        dm_status st = cfg_apply(ctx, row, vn, &kn->start_mark);
        if (st != DM_OK) return st;
    }
    return DM_OK;
}

dm_status cfg_apply(const cfg_ctx *ctx, int row, yaml_node_t *node, const yaml_mark_t *key_mark) {
    const cfg_key *k = cfg_schema_get(row);
    dm_status st;
    switch (k->type) {
    case CFG_SECTION:
        st = apply_section(ctx, k, node, key_mark);
        break;
    case CFG_INPUTS:
        st = apply_inputs(ctx, k, node, key_mark);
        break;
    case CFG_FLAGS:
        st = apply_flags(ctx, k, node, key_mark);
        break;
    default:
        st = apply_scalar(ctx, k, node, key_mark);
        break;
    }
    if (st == DM_OK && ctx->job->priv) {
        cfg_origin *o = &ctx->job->priv->origin[row];
        o->set = 1;
        o->line = ctx->has_position && key_mark ? (int)key_mark->line + 1 : 0;
        o->col = ctx->has_position && key_mark ? (int)key_mark->column + 1 : 0;
    }
    return st;
}

dm_status cfg_apply_defaults(dm_job *job) {
    /* Defaults go through the same parser as the file, so they are valid by construction. */
    dm_job_private *priv = job->priv;
    job->priv = NULL; /* defaults do not count as "given" */
    dm_status st = DM_OK;
    for (int i = 0; i < cfg_schema_count() && st == DM_OK; i++) {
        const cfg_key *k = cfg_schema_get(i);
        if (!k->def) continue;
        yaml_document_t doc;
        cfg_ctx ctx = {"schema default", 0, NULL, &doc, job};
        st = cfg_load_document(&ctx, k->def, &doc);
        if (st != DM_OK) break;
        st = cfg_apply(&ctx, i, yaml_document_get_root_node(&doc), NULL);
        yaml_document_delete(&doc);
    }
    job->priv = priv;
    return st;
}

void cfg_print_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

dm_status cfg_apply_root(const cfg_ctx *ctx, yaml_node_t *node) {
    static const cfg_key root = {"", CFG_SECTION, 0, NULL, 0, 0, NULL, "a mapping", ""};
    return apply_section(ctx, &root, node, &node->start_mark);
}
