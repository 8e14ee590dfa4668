/* The effective configuration as YAML: every schema row in table order, defaults filled in,
 * inputs expanded, paths resolved. The text parses back to the same job (tested). */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* Shortest of %.15g / %.17g that reads back to the same double. */
static void print_double(FILE *f, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    fputs(buf, f);
}

static void print_value(FILE *f, const dm_job *job, const cfg_key *k, const char *indent) {
    const void *p = (const char *)job + k->offset;
    switch (k->type) {
    case CFG_BOOL:
        fputs(*(const int *)p ? "true" : "false", f);
        break;
    case CFG_INT:
        fprintf(f, "%d", *(const int *)p);
        break;
    case CFG_NUMBER:
        print_double(f, *(const double *)p);
        break;
    case CFG_RATIO:
        if (*(const double *)p == 0.0)
            fputs("auto", f);
        else
            print_double(f, *(const double *)p);
        break;
    case CFG_PATH:
        cfg_print_quoted(f, *(char *const *)p);
        break;
    case CFG_ENUM:
        fputs(cfg_enum_name(k, *(const int *)p), f);
        break;
    case CFG_FLAGS: {
        unsigned bits = *(const unsigned *)p;
        int first = 1;
        fputc('[', f);
        for (const cfg_enum_value *e = k->values; e->name; e++)
            if (bits & (unsigned)e->value) {
                fprintf(f, "%s%s", first ? "" : ", ", e->name);
                first = 0;
            }
        fputc(']', f);
        break;
    }
    case CFG_INPUTS:
        if (job->n_inputs == 0) fputs("[]", f);
        for (int i = 0; i < job->n_inputs; i++) {
            fprintf(f, "\n%s  - ", indent);
            const double fps = job->input_fps ? job->input_fps[i] : 0.0;
            if (fps > 0.0) fputs("{path: ", f);
            cfg_print_quoted(f, job->inputs[i]);
            if (fps > 0.0) {
                fputs(", fps: ", f);
                print_double(f, fps);
                fputc('}', f);
            }
        }
        break;
    case CFG_SECTION:
        break;
    }
}

void dm_config_print(const dm_job *job, FILE *f) {
    fprintf(f, "# effective configuration of %s (defaults filled in, paths resolved)\n",
            job->source_name ? job->source_name : "(job)");
    for (int i = 0; i < cfg_schema_count(); i++) {
        const cfg_key *k = cfg_schema_get(i);
        const char *dot = strrchr(k->path, '.');
        const char *leaf = dot ? dot + 1 : k->path;
        const char *indent = dot ? "  " : "";
        if (k->type == CFG_SECTION) {
            fprintf(f, "%s:\n", k->path);
            continue;
        }
        if (k->type == CFG_PATH && !*(char *const *)((const char *)job + k->offset)) {
            fprintf(f, "%s# %s: (not set)\n", indent, leaf); /* a null would not parse back */
            continue;
        }
        fprintf(f, "%s%s: ", indent, leaf);
        print_value(f, job, k, indent);
        fputc('\n', f);
    }
}

dm_status dm_config_to_string(const dm_job *job, char **out) {
    size_t size = 0;
    *out = NULL;
    FILE *f = open_memstream(out, &size);
    if (!f) return dm_error_set(DM_ERR_NOMEM, "config: cannot open a memory stream");
    dm_config_print(job, f);
    if (fclose(f) != 0 || !*out) {
        free(*out);
        *out = NULL;
        return dm_error_set(DM_ERR_NOMEM, "config: out of memory printing the configuration");
    }
    return DM_OK;
}
