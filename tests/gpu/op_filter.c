/* Command-line filter of the GPU op-test case table; see op_filter.h. */
#include "op_filter.h"

#include <stdio.h>
#include <string.h>

static int parse_dtype(const char *s, size_t len, dm_dtype *out) {
    static const struct {
        const char *name;
        dm_dtype dt;
    } k[] = {{"f32", DM_DTYPE_F32}, {"f16", DM_DTYPE_F16}, {"bf16", DM_DTYPE_BF16}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strlen(k[i].name) == len && !strncmp(k[i].name, s, len)) {
            *out = k[i].dt;
            return 0;
        }
    return -1;
}

/* Splits a comma list and adds each item (ops or dtypes). */
static int add_list(op_filter *f, const char *arg, int is_dtype, char *err, size_t err_size) {
    const char *p = arg;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            snprintf(err, err_size, "empty name in list '%s'", arg);
            return -1;
        }
        if (is_dtype) {
            dm_dtype dt;
            if (parse_dtype(p, len, &dt)) {
                snprintf(err, err_size, "unknown dtype '%.*s' (expected f32, f16 or bf16)",
                         (int)len, p);
                return -1;
            }
            f->dtypes |= 1u << dt;
        } else {
            if (len >= OP_FILTER_NAME) {
                snprintf(err, err_size, "op name '%.*s' too long", (int)len, p);
                return -1;
            }
            if (f->nops == OP_FILTER_MAX_OPS) {
                snprintf(err, err_size, "more than %d ops selected", OP_FILTER_MAX_OPS);
                return -1;
            }
            memcpy(f->ops[f->nops], p, len);
            f->ops[f->nops][len] = '\0';
            f->nops++;
        }
        if (!comma) return 0;
        p = comma + 1;
    }
}

int op_filter_parse(int argc, char **argv, op_filter *f, char *err, size_t err_size) {
    memset(f, 0, sizeof *f);
    if (err_size) err[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-l")) {
            f->list = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            f->help = 1;
        } else if (!strcmp(a, "-b") || !strcmp(a, "-P")) {
            if (i + 1 >= argc) {
                snprintf(err, err_size, "%s needs an argument", a);
                return -1;
            }
            const char *b = argv[++i];
            if (a[1] == 'P') {
                if (!b[0] || strlen(b) >= OP_FILTER_NAME) {
                    snprintf(err, err_size, "-P: bad op name '%s'", b);
                    return -1;
                }
                snprintf(f->perturb, sizeof f->perturb, "%s", b);
            } else if (!strcmp(b, "cuda")) {
                f->backend = OP_FILTER_CUDA;
            } else if (!strcmp(b, "cpu")) {
                f->backend = OP_FILTER_CPU;
            } else if (!strcmp(b, "emu")) {
                f->backend = OP_FILTER_EMU;
            } else {
                snprintf(err, err_size, "unknown backend '%s' (expected cuda, cpu or emu)", b);
                return -1;
            }
        } else if (!strcmp(a, "-o") || !strcmp(a, "-t")) {
            if (i + 1 >= argc) {
                snprintf(err, err_size, "%s needs an argument", a);
                return -1;
            }
            if (add_list(f, argv[++i], a[1] == 't', err, err_size)) return -1;
        } else {
            snprintf(err, err_size,
                     "unknown argument '%s' (usage: -o OP[,OP] -t DTYPE[,DTYPE] "
                     "-b cuda|cpu|emu -P OP -l -h)",
                     a);
            return -1;
        }
    }
    if (f->perturb[0] && f->backend != OP_FILTER_EMU) {
        snprintf(err, err_size, "-P needs -b emu (faults are injected by the emulated backend)");
        return -1;
    }
    return 0;
}

int op_filter_op(const op_filter *f, const char *name) {
    if (f->nops == 0) return 1;
    for (int i = 0; i < f->nops; i++)
        if (!strcmp(f->ops[i], name)) return 1;
    return 0;
}

int op_filter_dtype(const op_filter *f, dm_dtype p) {
    return f->dtypes == 0 || (f->dtypes & (1u << p)) != 0;
}

int op_filter_unknown(const op_filter *f, const char *const *names, int n) {
    for (int i = 0; i < f->nops; i++) {
        int found = 0;
        for (int j = 0; j < n && !found; j++)
            found = !strcmp(f->ops[i], names[j]);
        if (!found) return i;
    }
    return -1;
}
