/* Job file entry points: load/parse (libyaml document API), --set overrides, cross-key
 * validation, free. The per-key work is in config_value.c, driven by config_schema.c. */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

dm_status cfg_load_document(const cfg_ctx *ctx, const char *text, yaml_document_t *doc) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return dm_error_set(DM_ERR_NOMEM, "%s: cannot initialize the YAML parser", ctx->name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    dm_status st = DM_OK;
    if (!yaml_parser_load(&parser, doc)) goto syntax;
    /* A second document would be silently ignored by a naive reader; refuse it. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        yaml_document_delete(doc);
        goto syntax;
    }
    if (yaml_document_get_root_node(&extra)) {
        yaml_mark_t m = extra.start_mark;
        st = ctx->has_position
                 ? dm_error_set(DM_ERR_FORMAT,
                                "%s:%zu:%zu: a job holds one YAML document, found "
                                "a second one",
                                ctx->name, m.line + 1, m.column + 1)
                 : dm_error_set(DM_ERR_FORMAT, "%s: more than one YAML document", ctx->name);
        yaml_document_delete(doc);
    }
    yaml_document_delete(&extra);
    yaml_parser_delete(&parser);
    return st;

syntax:
    if (parser.error == YAML_READER_ERROR)
        st = dm_error_set(DM_ERR_FORMAT, "%s: YAML error at byte %zu: %s", ctx->name,
                          parser.problem_offset, parser.problem ? parser.problem : "?");
    else if (ctx->has_position)
        st = dm_error_set(DM_ERR_FORMAT, "%s:%zu:%zu: YAML syntax error: %s%s%s%s", ctx->name,
                          parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                          parser.problem ? parser.problem : "?", parser.context ? " (" : "",
                          parser.context ? parser.context : "", parser.context ? ")" : "");
    else
        st = dm_error_set(DM_ERR_FORMAT, "%s: YAML syntax error in the value: %s", ctx->name,
                          parser.problem ? parser.problem : "?");
    yaml_parser_delete(&parser);
    return st;
}

/* matting/depth `enabled` defaults to "the job gave any key of the section". */
static void finish_sections(dm_job *job) {
    static const char *sections[] = {"matting", "depth"};
    for (int s = 0; s < 2; s++) {
        char key[32];
        snprintf(key, sizeof key, "%s.enabled", sections[s]);
        int row = cfg_schema_find(key);
        if (job->priv->origin[row].set) continue;
        size_t n = strlen(sections[s]);
        int given = 0;
        for (int i = 0; i < cfg_schema_count(); i++) {
            const char *p = cfg_schema_get(i)->path;
            if (strncmp(p, sections[s], n) == 0 && (p[n] == '\0' || p[n] == '.'))
                given |= job->priv->origin[i].set;
        }
        *(int *)((char *)job + cfg_schema_get(row)->offset) = given;
    }
}

static dm_status job_init(dm_job *job, const char *name, const char *text) {
    memset(job, 0, sizeof *job);
    job->priv = calloc(1, sizeof *job->priv);
    if (job->priv) job->priv->origin = calloc((size_t)cfg_schema_count(), sizeof(cfg_origin));
    job->source_name = strdup(name);
    job->yaml_text = strdup(text);
    if (!job->priv || !job->priv->origin || !job->source_name || !job->yaml_text)
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", name);
    dm_status st = cfg_apply_defaults(job);
    if (st == DM_OK) finish_sections(job);
    return st;
}

dm_status dm_config_parse_string(const char *text, const char *name, const char *base_dir,
                                 int validate, dm_job *job) {
    if (!text || !name || !job) return dm_error_set(DM_ERR_ARG, "config: NULL argument");
    dm_status st = job_init(job, name, text);
    yaml_document_t doc;
    cfg_ctx ctx = {name, 1, base_dir, &doc, job};
    if (st == DM_OK) st = cfg_load_document(&ctx, text, &doc);
    if (st != DM_OK) {
        dm_job_free(job);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || (root->type == YAML_SCALAR_NODE && !root->data.scalar.value[0])) {
        st = dm_error_set(DM_ERR_ARG,
                          "%s: empty job (expected inputs, output and a matting "
                          "and/or depth section)",
                          name);
    } else if (root->type != YAML_MAPPING_NODE) {
        st = dm_error_set(DM_ERR_ARG,
                          "%s:%zu:%zu: expected a mapping of keys (inputs, output, "
                          "...) at the top level",
                          name, root->start_mark.line + 1, root->start_mark.column + 1);
    } else {
        st = cfg_apply_root(&ctx, root);
    }
    yaml_document_delete(&doc);
    if (st == DM_OK) finish_sections(job);
    if (st == DM_OK && validate) st = dm_config_validate(job);
    if (st != DM_OK) dm_job_free(job);
    return st;
}

/* Reads the file; base folder = the file's folder, made absolute so that the resolved paths do
 * not depend on the working directory of whoever uses them later. */
static dm_status load_file(const char *path, int validate, dm_job *job) {
    memset(job, 0, sizeof *job);
    char *text = NULL;
    dm_status st = cfg_read_file(path, &text);
    if (st != DM_OK) return st;
    char *dir = cfg_dirname(path);
    char *abs = dir ? realpath(dir, NULL) : NULL;
    st = dm_config_parse_string(text, path, abs ? abs : dir, validate, job);
    free(abs);
    free(dir);
    free(text);
    return st;
}

dm_status dm_config_load(const char *path, dm_job *job) {
    return load_file(path, 1, job);
}

dm_status dm_config_load_with_sets(const char *path, const char *const *sets, int n_sets,
                                   dm_job *job) {
    dm_status st = load_file(path, 0, job);
    for (int i = 0; i < n_sets && st == DM_OK; i++)
        st = dm_config_set(job, sets[i]);
    if (st == DM_OK) st = dm_config_validate(job);
    if (st != DM_OK) dm_job_free(job);
    return st;
}

dm_status dm_config_set(dm_job *job, const char *assignment) {
    if (!job || !job->priv || !assignment)
        return dm_error_set(DM_ERR_ARG, "--set: no job or no assignment");
    const char *eq = strchr(assignment, '=');
    if (!eq) return dm_error_set(DM_ERR_ARG, "--set: expected KEY=VALUE, got \"%s\"", assignment);
    const char *kb = assignment, *ke = eq;
    while (*kb == ' ')
        kb++;
    while (ke > kb && ke[-1] == ' ')
        ke--;
    char key[128];
    if ((size_t)(ke - kb) >= sizeof key)
        return dm_error_set(DM_ERR_ARG, "--set: key too long in \"%s\"", assignment);
    memcpy(key, kb, (size_t)(ke - kb));
    key[ke - kb] = '\0';

    yaml_document_t doc;
    cfg_ctx ctx = {"--set", 0, NULL, &doc, job};
    int row = cfg_schema_find(key);
    if (row < 0) {
        const char *hint = cfg_schema_suggest(key);
        if (hint)
            return cfg_error(&ctx, DM_ERR_ARG, NULL, key, "unknown key; did you mean \"%s\"?",
                             hint);
        return cfg_error(&ctx, DM_ERR_ARG, NULL, key, "unknown key (see docs/config.md)");
    }
    if (cfg_schema_get(row)->type == CFG_SECTION)
        return cfg_error(&ctx, DM_ERR_ARG, NULL, key,
                         "is a section; set its keys one by one (e.g. %s.KEY=VALUE)", key);
    const char *value = eq + 1;
    /* An empty value parses as an empty document; give the parser an explicit null instead so
     * that the type check reports "got nothing (null)". */
    dm_status st = cfg_load_document(&ctx, value[strspn(value, " ")] ? value : "~", &doc);
    if (st != DM_OK) return st;
    st = cfg_apply(&ctx, row, yaml_document_get_root_node(&doc), NULL);
    yaml_document_delete(&doc);
    if (st == DM_OK) finish_sections(job);
    return st;
}

/* qsort comparator over pointers to job->inputs entries: by text, ties by position so that
 * the report names the earliest pair. */
static int cmp_input_ref(const void *a, const void *b) {
    char *const *pa = *(char *const *const *)a, *const *pb = *(char *const *const *)b;
    int c = strcmp(*pa, *pb);
    return c ? c : (pa > pb) - (pa < pb);
}

/* Message prefix "NAME:LINE:COL" of where `key` was given, or "NAME" if unknown. */
static const char *where(const dm_job *job, const char *key, char *buf, size_t size) {
    int row = cfg_schema_find(key);
    const cfg_origin *o = row >= 0 ? &job->priv->origin[row] : NULL;
    if (o && o->line > 0)
        snprintf(buf, size, "%s:%d:%d", job->source_name, o->line, o->col);
    else
        snprintf(buf, size, "%s", job->source_name);
    return buf;
}

dm_status dm_config_validate(const dm_job *job) {
    char w[512];
    if (!job || !job->priv) return dm_error_set(DM_ERR_ARG, "config: validating an empty job");
    if (job->n_inputs == 0)
        return dm_error_set(DM_ERR_ARG, "%s: inputs: no videos given",
                            where(job, "inputs", w, sizeof w));
    if (!job->output.path)
        return dm_error_set(DM_ERR_ARG, "%s: output.path: required (the HDF5 file to write)",
                            where(job, "output", w, sizeof w));
    if (!job->matting.enabled && !job->depth.enabled)
        return dm_error_set(DM_ERR_ARG,
                            "%s: nothing to do: neither matting nor depth is enabled "
                            "(add a matting: and/or depth: section)",
                            job->source_name);
    if (job->matting.enabled && !job->matting.weights)
        return dm_error_set(DM_ERR_ARG, "%s: matting.weights: required when matting is enabled",
                            where(job, "matting", w, sizeof w));
    if (job->depth.enabled && !job->depth.weights)
        return dm_error_set(DM_ERR_ARG, "%s: depth.weights: required when depth is enabled",
                            where(job, "depth", w, sizeof w));
    if (job->depth.enabled && job->depth.mode == DM_DEPTH_MODE_STREAM &&
        job->depth.model == DM_DEPTH_DA2_VITS)
        return dm_error_set(DM_ERR_ARG,
                            "%s: depth.mode: stream needs depth.model vda_vits or "
                            "vda_vits_metric (da2_vits is per frame already)",
                            where(job, "depth.mode", w, sizeof w));
    /* The streaming state starts at frame 0 and keeps frame 0 in every later window, so a
     * piece of a video cannot be started anywhere else (docs/vda_stream.md). */
    if (job->depth.enabled && job->depth.mode == DM_DEPTH_MODE_STREAM &&
        job->plan.split_videos == DM_SPLIT_ALWAYS)
        return dm_error_set(DM_ERR_ARG,
                            "%s: plan.split_videos: always cannot be used with depth.mode "
                            "stream (a streamed video is causal from its first frame: whole "
                            "videos per rank)", where(job, "plan.split_videos", w, sizeof w));
    if (job->max_res % 2)
        return dm_error_set(DM_ERR_ARG,
                            "%s: max_res: expected an even number of pixels, got %d "
                            "(sides are made even, so an odd bound could be exceeded by one)",
                            where(job, "max_res", w, sizeof w), job->max_res);
    /* The same video twice would produce two output groups for one source: refuse it. */
    char **(*idx) = malloc((size_t)job->n_inputs * sizeof *idx);
    if (!idx) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", job->source_name);
    for (int i = 0; i < job->n_inputs; i++)
        idx[i] = &job->inputs[i];
    qsort(idx, (size_t)job->n_inputs, sizeof *idx, cmp_input_ref);
    dm_status st = DM_OK;
    for (int i = 1; i < job->n_inputs && st == DM_OK; i++) {
        char **a = idx[i - 1], **b = idx[i];
        if (strcmp(*a, *b) == 0)
            st = dm_error_set(DM_ERR_ARG, "%s: inputs: \"%s\" is listed twice (items %d and %d)",
                              where(job, "inputs", w, sizeof w), *a, (int)(a - job->inputs),
                              (int)(b - job->inputs));
    }
    free(idx);
    return st;
}

void dm_job_free(dm_job *job) {
    if (!job) return;
    for (int i = 0; i < job->n_inputs; i++)
        free(job->inputs[i]);
    free(job->inputs);
    free(job->input_fps);
    free(job->output.path);
    free(job->matting.weights);
    free(job->depth.weights);
    free(job->source_name);
    free(job->yaml_text);
    if (job->priv) free(job->priv->origin);
    free(job->priv);
    memset(job, 0, sizeof *job);
}

dm_plan_options dm_config_plan_options(const dm_job *job) {
    dm_plan_options o = {job->matting.enabled ? job->matting.warmup_frames : 0,
                         job->plan.split_videos, job->plan.min_chunk_frames, 1};
    /* depth.mode stream: whole videos per rank (dm_config_validate refuses "always") */
    if (job->depth.enabled && job->depth.mode == DM_DEPTH_MODE_STREAM)
        o.split = DM_SPLIT_NEVER;
    return o;
}
