/* Detections files for `depthmatte points`: CSV with a header (libcsv), JSON (cJSON), MOT.
 * Formats: include/depthmatte/points.h, docs/points.md. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <csv.h>

#include "depthmatte/points.h"

/* CSV header columns. */
enum { C_FRAME, C_TRACK, C_X1, C_Y1, C_X2, C_Y2, C_X, C_Y, C_W, C_H, C_CLASS, C_CONF, C_COUNT };
static const struct {
    const char *name;
    int col;
} col_names[] = {
    {"frame", C_FRAME},
    {"track", C_TRACK},
    {"id", C_TRACK},
    {"track_id", C_TRACK},
    {"x1", C_X1},
    {"y1", C_Y1},
    {"x2", C_X2},
    {"y2", C_Y2},
    {"x", C_X},
    {"y", C_Y},
    {"w", C_W},
    {"h", C_H},
    {"class", C_CLASS},
    {"conf", C_CONF},
    {"confidence", C_CONF},
};
#define KNOWN_COLUMNS                                                                              \
    "frame, track|id|track_id, x1, y1, x2, y2 | x, y, w, h, class, conf|confidence"

typedef struct parse_ctx {
    const char *path;
    dm_det_format format;
    char **fields; /* fields of the current record */
    int n_fields, cap_fields;
    int record;        /* records seen so far (1-based number of the current one) */
    int col[C_COUNT];  /* field index of each column, -1 when absent */
    int header_fields; /* fields of the header row */
    int xyxy;          /* 1: x1..y2 columns, 0: x, y, w, h */
    dm_detection *det;
    int n_det, cap_det;
    dm_status st;
} parse_ctx;

static dm_status fail(parse_ctx *c, const char *fmt, const char *a, const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    c->st = dm_error_set(DM_ERR_FORMAT, "%s: row %d: %s", c->path, c->record, msg);
    return c->st;
}

/* Strict numbers: the whole field, finite. */
static int parse_double(const char *s, double *out) {
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_int(const char *s, int64_t *out) {
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end) return 0;
    *out = v;
    return 1;
}

static dm_detection *push_det(parse_ctx *c) {
    if (c->n_det == c->cap_det) {
        int cap = c->cap_det ? 2 * c->cap_det : 64;
        void *p = realloc(c->det, (size_t)cap * sizeof *c->det);
        if (!p) {
            c->st = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", c->path);
            return NULL;
        }
        c->det = p, c->cap_det = cap;
    }
    dm_detection *d = &c->det[c->n_det++];
    memset(d, 0, sizeof *d);
    d->conf = NAN;
    d->record = c->record;
    return d;
}

/* Checks and stores a parsed box (corners). */
static dm_status finish_box(parse_ctx *c, dm_detection *d) {
    if (d->frame < 0) {
        char f[32];
        snprintf(f, sizeof f, "%lld", (long long)d->frame);
        return fail(c, "negative frame %s (frames are 0-based HDF5 rows)%s", f, NULL);
    }
    if (!(d->x2 > d->x1) || !(d->y2 > d->y1)) {
        char b[160];
        snprintf(b, sizeof b, "(%g, %g, %g, %g)", d->x1, d->y1, d->x2, d->y2);
        return fail(c, "empty or inverted box x1, y1, x2, y2 = %s (needs x2 > x1, y2 > y1)%s", b,
                    NULL);
    }
    if (!isnan(d->conf) && (d->conf < 0 || d->conf > 1)) {
        char v[32];
        snprintf(v, sizeof v, "%g", d->conf);
        return fail(c, "confidence %s outside [0, 1]%s", v, NULL);
    }
    return DM_OK;
}

static dm_status csv_header(parse_ctx *c) {
    for (int i = 0; i < C_COUNT; i++)
        c->col[i] = -1;
    for (int f = 0; f < c->n_fields; f++) {
        const char *name = c->fields[f];
        int col = -1;
        for (size_t i = 0; i < sizeof col_names / sizeof col_names[0]; i++)
            if (!strcmp(name, col_names[i].name)) col = col_names[i].col;
        if (col < 0) {
            if (parse_double(name, &(double){0}))
                return fail(c,
                            "the first row is data ('%s'), not a header: a CSV file starts "
                            "with a header row (" KNOWN_COLUMNS "); headerless MOT files "
                            "need --format mot%s",
                            name, NULL);
            return fail(c, "unknown column '%s' (known: " KNOWN_COLUMNS ")%s", name, NULL);
        }
        if (c->col[col] >= 0) return fail(c, "column '%s' given twice%s", name, NULL);
        c->col[col] = f;
    }
    c->header_fields = c->n_fields;
    if (c->col[C_FRAME] < 0) return fail(c, "no 'frame' column%s%s", NULL, NULL);
    if (c->col[C_TRACK] < 0)
        return fail(c, "no track column ('track', 'id' or 'track_id')%s%s", NULL, NULL);
    int xyxy = c->col[C_X1] >= 0 && c->col[C_Y1] >= 0 && c->col[C_X2] >= 0 && c->col[C_Y2] >= 0;
    int any_xyxy = c->col[C_X1] >= 0 || c->col[C_Y1] >= 0 || c->col[C_X2] >= 0 || c->col[C_Y2] >= 0;
    int xywh = c->col[C_X] >= 0 && c->col[C_Y] >= 0 && c->col[C_W] >= 0 && c->col[C_H] >= 0;
    int any_xywh = c->col[C_X] >= 0 || c->col[C_Y] >= 0 || c->col[C_W] >= 0 || c->col[C_H] >= 0;
    if (xyxy == xywh || any_xyxy != xyxy || any_xywh != xywh)
        return fail(c,
                    "the box needs the columns x1, y1, x2, y2 (corners) or x, y, w, h "
                    "(left, top, width, height), one set complete%s%s",
                    NULL, NULL);
    c->xyxy = xyxy;
    return DM_OK;
}

static dm_status csv_data(parse_ctx *c) {
    if (c->n_fields != c->header_fields) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%d", c->n_fields);
        snprintf(b, sizeof b, "%d", c->header_fields);
        return fail(c, "%s fields, the header has %s", a, b);
    }
    dm_detection *d = push_det(c);
    if (!d) return c->st;
    const char *const *F = (const char *const *)c->fields;
    if (!parse_int(F[c->col[C_FRAME]], &d->frame))
        return fail(c, "frame '%s' is not an integer%s", F[c->col[C_FRAME]], NULL);
    if (!parse_int(F[c->col[C_TRACK]], &d->track))
        return fail(c, "track id '%s' is not an integer%s", F[c->col[C_TRACK]], NULL);
    static const char *const names[] = {"x1", "y1", "x2", "y2", "x", "y", "w", "h"};
    double v[4];
    int base = c->xyxy ? C_X1 : C_X;
    for (int i = 0; i < 4; i++) {
        const char *s = F[c->col[base + i]];
        if (!parse_double(s, &v[i]))
            return fail(c, "%s '%s' is not a finite number", names[base - C_X1 + i], s);
    }
    d->x1 = v[0], d->y1 = v[1];
    d->x2 = c->xyxy ? v[2] : v[0] + v[2];
    d->y2 = c->xyxy ? v[3] : v[1] + v[3];
    if (c->col[C_CLASS] >= 0) snprintf(d->cls, sizeof d->cls, "%s", F[c->col[C_CLASS]]);
    if (c->col[C_CONF] >= 0 && F[c->col[C_CONF]][0] && !parse_double(F[c->col[C_CONF]], &d->conf))
        return fail(c, "conf '%s' is not a number%s", F[c->col[C_CONF]], NULL);
    return finish_box(c, d);
}

static dm_status mot_data(parse_ctx *c) {
    if (c->n_fields < 7 || c->n_fields > 10) {
        char a[32];
        snprintf(a, sizeof a, "%d", c->n_fields);
        return fail(c,
                    "%s fields; MOT rows have 7 to 10: frame, id, bb_left, bb_top, "
                    "bb_width, bb_height, conf[, x, y, z]%s",
                    a, NULL);
    }
    dm_detection *d = push_det(c);
    if (!d) return c->st;
    char **F = c->fields;
    int64_t frame1;
    if (!parse_int(F[0], &frame1) || frame1 < 1)
        return fail(c, "frame '%s' is not an integer >= 1 (MOT frames are 1-based)%s", F[0], NULL);
    d->frame = frame1 - 1;
    if (!parse_int(F[1], &d->track)) return fail(c, "id '%s' is not an integer%s", F[1], NULL);
    double v[5];
    for (int i = 0; i < 5; i++)
        if (!parse_double(F[2 + i], &v[i]))
            return fail(c, "field %s ('%s') is not a finite number",
                        (const char *[]){"3", "4", "5", "6", "7"}[i], F[2 + i]);
    d->x1 = v[0], d->y1 = v[1], d->x2 = v[0] + v[2], d->y2 = v[1] + v[3];
    /* MOT uses conf = -1 for "not given" in detections files, 0/1 flags in ground truth */
    d->conf = v[4] >= 0 && v[4] <= 1 ? v[4] : NAN;
    return finish_box(c, d);
}

static void on_field(void *s, size_t len, void *data) {
    parse_ctx *c = data;
    if (c->st) return;
    if (c->n_fields == c->cap_fields) {
        int cap = c->cap_fields ? 2 * c->cap_fields : 16;
        void *p = realloc(c->fields, (size_t)cap * sizeof *c->fields);
        if (!p) {
            c->st = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", c->path);
            return;
        }
        c->fields = p, c->cap_fields = cap;
    }
    char *f = malloc(len + 1);
    if (!f) {
        c->st = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", c->path);
        return;
    }
    if (len) memcpy(f, s, len);
    f[len] = 0;
    c->fields[c->n_fields++] = f;
}

static void on_record(int term, void *data) {
    (void)term;
    parse_ctx *c = data;
    c->record++;
    if (!c->st) {
        if (c->format == DM_DET_MOT)
            mot_data(c);
        else if (c->record == 1)
            csv_header(c);
        else
            csv_data(c);
    }
    for (int i = 0; i < c->n_fields; i++)
        free(c->fields[i]);
    c->n_fields = 0;
}

static dm_status parse_csv(parse_ctx *c, const char *buf, size_t len) {
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", c->path);
    if (csv_parse(&p, buf, len, on_field, on_record, c) != len && !c->st)
        c->st = dm_error_set(DM_ERR_FORMAT, "%s: after row %d: malformed CSV: %s", c->path,
                             c->record, csv_strerror(csv_error(&p)));
    if (!c->st && csv_fini(&p, on_field, on_record, c) != 0 && !c->st)
        c->st = dm_error_set(DM_ERR_FORMAT, "%s: after row %d: malformed CSV: %s", c->path,
                             c->record, csv_strerror(csv_error(&p)));
    csv_free(&p);
    for (int i = 0; i < c->n_fields; i++)
        free(c->fields[i]);
    c->n_fields = 0;
    if (!c->st && c->format != DM_DET_MOT && c->record == 0)
        c->st = dm_error_set(DM_ERR_FORMAT, "%s: empty file (no header, no detections)", c->path);
    return c->st;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static dm_status json_number(parse_ctx *c, const cJSON *o, const char *key, double *out) {
    if (!cJSON_IsNumber(o) || !isfinite(o->valuedouble))
        return fail(c, "'%s' is not a finite number%s", key, NULL);
    *out = o->valuedouble;
    return DM_OK;
}

static dm_status json_int(parse_ctx *c, const cJSON *o, const char *key, int64_t *out) {
    double v = 0;
    if (json_number(c, o, key, &v)) return c->st;
    if (v != floor(v) || fabs(v) > 9.0e15) return fail(c, "'%s' is not an integer%s", key, NULL);
    *out = (int64_t)v;
    return DM_OK;
}

static dm_status json_box(parse_ctx *c, const cJSON *o, const char *key, double v[4]) {
    if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) != 4)
        return fail(c, "'%s' is not an array of 4 numbers%s", key, NULL);
    for (int i = 0; i < 4; i++)
        if (json_number(c, cJSON_GetArrayItem(o, i), key, &v[i])) return c->st;
    return DM_OK;
}

static dm_status json_item(parse_ctx *c, const cJSON *it) {
    if (!cJSON_IsObject(it)) return fail(c, "array element is not an object%s%s", NULL, NULL);
    dm_detection *d = push_det(c);
    if (!d) return c->st;
    int have_frame = 0, have_track = 0, have_box = 0;
    for (const cJSON *k = it->child; k; k = k->next) {
        const char *key = k->string;
        double v[4];
        if (!strcmp(key, "frame")) {
            if (json_int(c, k, key, &d->frame)) return c->st;
            have_frame++;
        } else if (!strcmp(key, "track") || !strcmp(key, "id")) {
            if (json_int(c, k, key, &d->track)) return c->st;
            have_track++;
        } else if (!strcmp(key, "box") || !strcmp(key, "xywh")) {
            if (json_box(c, k, key, v)) return c->st;
            int xywh = !strcmp(key, "xywh");
            d->x1 = v[0], d->y1 = v[1];
            d->x2 = xywh ? v[0] + v[2] : v[2], d->y2 = xywh ? v[1] + v[3] : v[3];
            have_box++;
        } else if (!strcmp(key, "class")) {
            if (!cJSON_IsString(k)) return fail(c, "'class' is not a string%s%s", NULL, NULL);
            snprintf(d->cls, sizeof d->cls, "%s", k->valuestring);
        } else if (!strcmp(key, "conf") || !strcmp(key, "confidence")) {
            if (json_number(c, k, key, &d->conf)) return c->st;
        } else {
            return fail(c,
                        "unknown key '%s' (known: frame, track|id, box [x1, y1, x2, y2] | "
                        "xywh [x, y, w, h], class, conf)%s",
                        key, NULL);
        }
    }
    if (have_frame != 1) return fail(c, "needs one 'frame' key%s%s", NULL, NULL);
    if (have_track != 1) return fail(c, "needs one track key ('track' or 'id')%s%s", NULL, NULL);
    if (have_box != 1)
        return fail(c, "needs one of 'box' [x1, y1, x2, y2] or 'xywh'%s%s", NULL, NULL);
    return finish_box(c, d);
}

static dm_status parse_json(parse_ctx *c, const char *buf) {
    cJSON *root = cJSON_Parse(buf);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        int line = 1;
        for (const char *q = buf; at && q < at; q++)
            line += *q == '\n';
        return c->st = dm_error_set(DM_ERR_FORMAT, "%s: line %d: invalid JSON", c->path, line);
    }
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return c->st = dm_error_set(DM_ERR_FORMAT,
                                    "%s: the JSON value is not an array of "
                                    "detections",
                                    c->path);
    }
    for (const cJSON *it = root->child; it && !c->st; it = it->next) {
        c->record++;
        json_item(c, it);
    }
    cJSON_Delete(root);
    return c->st;
}

/* ---- entry -------------------------------------------------------------------------------- */

static int cmp_track_frame(const void *a, const void *b) {
    const dm_detection *x = *(const dm_detection *const *)a, *y = *(const dm_detection *const *)b;
    if (x->track != y->track) return x->track < y->track ? -1 : 1;
    if (x->frame != y->frame) return x->frame < y->frame ? -1 : 1;
    return x->record - y->record;
}

static dm_status check_unique(const char *path, dm_detection *d, int n) {
    const dm_detection **idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++)
        idx[i] = &d[i];
    qsort(idx, (size_t)n, sizeof *idx, cmp_track_frame);
    dm_status st = DM_OK;
    for (int i = 1; i < n && !st; i++)
        if (idx[i]->track == idx[i - 1]->track && idx[i]->frame == idx[i - 1]->frame)
            st = dm_error_set(DM_ERR_FORMAT,
                              "%s: row %d: track %lld has a second box in frame "
                              "%lld (first in row %d)",
                              path, idx[i]->record, (long long)idx[i]->track,
                              (long long)idx[i]->frame, idx[i - 1]->record);
    free(idx);
    return st;
}

dm_status dm_detections_read(const char *path, dm_det_format format, dm_detection **out, int *n) {
    *out = NULL, *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = (len + 65536 + 1) * 2;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf), fclose(fp);
                return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = p;
        }
        size_t got = fread(buf + len, 1, 65536, fp);
        len += got;
        if (got < 65536) break;
    }
    int rerr = ferror(fp);
    fclose(fp);
    if (rerr) {
        free(buf);
        return dm_error_set(DM_ERR_IO, "%s: read error", path);
    }
    buf[len] = 0;
    if (strlen(buf) != len) {
        free(buf);
        return dm_error_set(DM_ERR_FORMAT, "%s: binary data (NUL byte): not a detections file",
                            path);
    }
    const char *q = buf;
    while (*q && isspace((unsigned char)*q))
        q++;
    if (!*q) {
        free(buf);
        return dm_error_set(DM_ERR_FORMAT, "%s: empty file (no detections)", path);
    }
    if (format == DM_DET_AUTO) format = *q == '[' ? DM_DET_JSON : DM_DET_CSV;
    parse_ctx c = {.path = path, .format = format};
    dm_status st = format == DM_DET_JSON ? parse_json(&c, buf) : parse_csv(&c, buf, len);
    free(buf);
    free(c.fields);
    if (!st && c.n_det == 0)
        st = dm_error_set(DM_ERR_FORMAT, "%s: no detections (%s)", path,
                          format == DM_DET_JSON ? "empty array" : "header only");
    if (!st) st = check_unique(path, c.det, c.n_det);
    if (st) {
        free(c.det);
        return st;
    }
    *out = c.det, *n = c.n_det;
    return DM_OK;
}

int dm_csv_write_field(FILE *fp, const char *s) {
    return csv_fwrite(fp, s, strlen(s));
}
