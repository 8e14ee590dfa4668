/* Selftest runner core: tensor helpers, comparison, rows, the table and JSON output
 * (include/depthmatte/selftest.h). The case table is selftest_ops.c, the networks
 * selftest_nets.c, the command selftest_cmd.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "models/selftest_internal.h"

int st_selected(st_ctx *c, const char *name) {
    const char *f = c->o->filter;
    if (!f || !*f) return 1;
    const size_t n = strlen(name);
    while (*f) {
        const char *e = strchr(f, ',');
        const size_t len = e ? (size_t)(e - f) : strlen(f);
        if (len == n && !strncmp(f, name, n)) return 1;
        if (!e) break;
        f = e + 1;
    }
    return 0;
}

float st_round(st_ctx *c, float v) {
    if (c->o->precision == DM_DTYPE_F16) return dm_f16_to_f32(dm_f32_to_f16(v));
    if (c->o->precision == DM_DTYPE_BF16) return dm_bf16_to_f32(dm_f32_to_bf16(v));
    return v;
}

dm_status st_host_rand(st_ctx *c, dm_tensor *t, int ndim, const int64_t *shape, float amp,
                       float offset, unsigned seed) {
    dm_status st = dm_tensor_alloc(t, DM_DTYPE_F32, ndim, shape);
    if (st) return st;
    float *d = dm_f32(t);
    unsigned s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < dm_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u; /* Numerical Recipes LCG; top 24 bits -> [-1, 1) */
        const float u = (float)((s >> 8) & 0xffffff) / 8388608.f - 1.f;
        d[i] = st_round(c, offset + amp * u);
    }
    return DM_OK;
}

dm_status st_dev_zeros(st_ctx *c, dm_tensor *d, int ndim, const int64_t *shape) {
    memset(d, 0, sizeof *d);
    return dm_alloc(c->be, d, c->o->storage, ndim, shape);
}

dm_status st_upload(st_ctx *c, const dm_tensor *h, dm_tensor *d) {
    dm_status st = st_dev_zeros(c, d, h->ndim, h->shape);
    if (!st) st = dm_copy(c->be, h, d);
    return st;
}

dm_status st_download(st_ctx *c, const dm_tensor *d, dm_tensor *h) {
    dm_status st = dm_tensor_alloc(h, DM_DTYPE_F32, d->ndim, d->shape);
    if (!st) st = dm_copy(c->be, d, h);
    if (!st) st = dm_synchronize(c->be);
    return st;
}

void st_free(dm_tensor *t) {
    dm_tensor_free(t);
}

static dm_selftest_row *add_row(st_ctx *c, const char *name, const char *what) {
    dm_selftest_report *r = c->r;
    if (r->count == r->capacity) {
        const int cap = r->capacity ? 2 * r->capacity : 64;
        dm_selftest_row *rows = realloc(r->rows, (size_t)cap * sizeof *rows);
        if (!rows) {
            c->nomem = 1;
            return NULL;
        }
        r->rows = rows;
        r->capacity = cap;
    }
    dm_selftest_row *row = &r->rows[r->count++];
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", name);
    snprintf(row->what, sizeof row->what, "%s", what);
    row->dtype = c->o->precision;
    row->mean_tol = -1;
    return row;
}

static void finish_row(st_ctx *c, dm_selftest_row *row) {
    if (row->result == DM_SELFTEST_PASS) c->r->passed++;
    if (row->result == DM_SELFTEST_FAIL) c->r->failed++;
    if (row->result == DM_SELFTEST_UNSUPPORTED) c->r->unsupported++;
    if (c->o->progress) {
        dm_selftest_print_row(c->o->progress, row);
        fflush(c->o->progress);
    }
}

double st_max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i]) && fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

double st_std(const float *x, int64_t n) {
    if (n < 1) return 0;
    double mean = 0, ss = 0;
    for (int64_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        ss += ((double)x[i] - mean) * ((double)x[i] - mean);
    return sqrt(ss / (double)n);
}

void st_compare(st_ctx *c, const char *name, const char *what, const float *got, const float *ref,
                int64_t n, double tol, double mean_tol) {
    dm_selftest_row *row = add_row(c, name, what);
    if (!row) return;
    const double floor_rel = 1e-3 * st_max_abs(ref, n);
    double sum = 0;
    int64_t finite = 0;
    for (int64_t i = 0; i < n; i++) {
        const float g = got[i], w = ref[i];
        if (!isfinite(g) || !isfinite(w)) {
            /* same class and sign: both NaN, or both the same infinity */
            const int same = (isnan(g) && isnan(w)) || (isinf(g) && isinf(w) && (g > 0) == (w > 0));
            if (!same) row->nonfinite_mismatch++;
            continue;
        }
        const double d = fabs((double)g - (double)w);
        const double rel = d / fmax(fabs((double)w), floor_rel > 0 ? floor_rel : 1e-30);
        if (d > row->max_abs) row->max_abs = d;
        if (rel > row->max_rel) row->max_rel = rel;
        sum += d;
        finite++;
    }
    row->mean_abs = finite ? sum / (double)finite : 0;
    row->tol = tol;
    row->mean_tol = mean_tol;
    const int ok = row->max_abs <= tol && (mean_tol < 0 || row->mean_abs <= mean_tol) &&
                   row->nonfinite_mismatch == 0;
    row->result = ok ? DM_SELFTEST_PASS : DM_SELFTEST_FAIL;
    if (row->nonfinite_mismatch)
        snprintf(row->note, sizeof row->note, "%lld elements differ in NaN/Inf",
                 (long long)row->nonfinite_mismatch);
    finish_row(c, row);
}

void st_fail(st_ctx *c, const char *name, const char *what, const char *note) {
    dm_selftest_row *row = add_row(c, name, what);
    if (!row) return;
    row->max_abs = row->max_rel = row->mean_abs = NAN;
    row->tol = NAN;
    row->result = DM_SELFTEST_FAIL;
    snprintf(row->note, sizeof row->note, "%s", note && *note ? note : "failed");
    finish_row(c, row);
}

void st_unsupported(st_ctx *c, const char *name, const char *what) {
    dm_selftest_row *row = add_row(c, name, what);
    if (!row) return;
    row->max_abs = row->max_rel = row->mean_abs = row->tol = NAN;
    row->result = DM_SELFTEST_UNSUPPORTED;
    snprintf(row->note, sizeof row->note, "not supported by this backend in %s",
             dm_dtype_name(c->o->precision));
    finish_row(c, row);
}

/* Every comma-separated name of the filter must be an op or a network. */
static dm_status check_filter(const char *f) {
    const char *p = f;
    for (;;) {
        const char *e = strchr(p, ',');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        if (len == 0 || len >= sizeof name)
            return dm_error_set(DM_ERR_ARG, "selftest: bad name list '%s'", f);
        memcpy(name, p, len);
        name[len] = '\0';
        if (!st_is_op_name(name) && !st_is_network_name(name))
            return dm_error_set(DM_ERR_ARG, "selftest: unknown op or network '%s'", name);
        if (!e) return DM_OK;
        p = e + 1;
    }
}

dm_status dm_selftest_run(dm_backend *be, dm_backend *ref, const dm_selftest_opts *o,
                          dm_selftest_report *r) {
    if (!be || !ref || !o || !r || ref->device != DM_DEVICE_CPU)
        return dm_error_set(DM_ERR_ARG, "selftest: need a backend and a CPU reference backend");
    if (o->precision != DM_DTYPE_F32 && o->precision != DM_DTYPE_F16 &&
        o->precision != DM_DTYPE_BF16)
        return dm_error_set(DM_ERR_ARG, "selftest: precision must be f32, f16 or bf16");
    dm_status st;
    if (o->filter && (st = check_filter(o->filter))) return st;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st_ctx c = {be, ref, o, r, 0};
    if (o->run_ops) st_run_ops(&c);
    if (o->run_models) st_run_networks(&c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (c.nomem) return dm_error_set(DM_ERR_NOMEM, "selftest: out of memory for the report");
    return DM_OK;
}

void dm_selftest_report_free(dm_selftest_report *r) {
    free(r->rows);
    memset(r, 0, sizeof *r);
}

static const char *result_name(dm_selftest_result res) {
    return res == DM_SELFTEST_PASS ? "PASS" : (res == DM_SELFTEST_FAIL ? "FAIL" : "UNSUPPORTED");
}

void dm_selftest_print_header(FILE *f) {
    fprintf(f, "%-17s %-40s %-5s %10s %10s %10s %10s %s\n", "op / model", "case", "dtype",
            "max_abs", "max_rel", "mean_abs", "tolerance", "result");
}

void dm_selftest_print_row(FILE *f, const dm_selftest_row *row) {
    fprintf(f, "%-17s %-40s %-5s %10.3e %10.3e %10.3e %10.3e %s", row->name, row->what,
            dm_dtype_name(row->dtype), row->max_abs, row->max_rel, row->mean_abs, row->tol,
            result_name(row->result));
    if (row->mean_tol >= 0) fprintf(f, " (mean tol %.3e)", row->mean_tol);
    if (row->note[0]) fprintf(f, "  %s", row->note);
    fputc('\n', f);
}

void dm_selftest_print_summary(FILE *f, const dm_selftest_report *r, const char *backend) {
    fprintf(f, "selftest %s: %d passed, %d FAILED, %d unsupported, %.2f s\n", backend, r->passed,
            r->failed, r->unsupported, r->seconds);
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

dm_status dm_selftest_print_json(FILE *f, const dm_selftest_report *r, const char *backend,
                                 dm_dtype precision) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return dm_error_set(DM_ERR_NOMEM, "selftest: out of memory");
    cJSON_AddStringToObject(root, "backend", backend);
    cJSON_AddStringToObject(root, "precision",
                            precision == DM_DTYPE_F16
                                ? "float16"
                                : (precision == DM_DTYPE_BF16 ? "bfloat16" : "float32"));
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    cJSON_AddNumberToObject(root, "passed", r->passed);
    cJSON_AddNumberToObject(root, "failed", r->failed);
    cJSON_AddNumberToObject(root, "unsupported", r->unsupported);
    cJSON *rows = cJSON_AddArrayToObject(root, "rows");
    for (int i = 0; i < r->count && rows; i++) {
        const dm_selftest_row *row = &r->rows[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "name", row->name);
        cJSON_AddStringToObject(o, "case", row->what);
        cJSON_AddStringToObject(o, "dtype", dm_dtype_name(row->dtype));
        add_num(o, "max_abs", row->max_abs);
        add_num(o, "max_rel", row->max_rel);
        add_num(o, "mean_abs", row->mean_abs);
        add_num(o, "tol", row->tol);
        if (row->mean_tol >= 0)
            add_num(o, "mean_tol", row->mean_tol);
        else
            cJSON_AddNullToObject(o, "mean_tol");
        cJSON_AddNumberToObject(o, "nonfinite_mismatch", (double)row->nonfinite_mismatch);
        cJSON_AddStringToObject(o, "result", result_name(row->result));
        cJSON_AddStringToObject(o, "note", row->note);
        cJSON_AddItemToArray(rows, o);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return dm_error_set(DM_ERR_NOMEM, "selftest: out of memory");
    fprintf(f, "%s\n", text);
    free(text);
    return DM_OK;
}
