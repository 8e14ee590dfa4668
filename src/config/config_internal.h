/* Internal interface of the config module: the schema table and the YAML-node -> struct
 * mapping shared by the file parser, the --set overrides and the defaults. */
#ifndef DM_CONFIG_INTERNAL_H
#define DM_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "depthmatte/config.h"

typedef enum cfg_type {
    CFG_SECTION, /* a mapping of further keys ("matting") */
    CFG_BOOL,    /* true / false (YAML 1.2 core spellings only) */
    CFG_INT,     /* plain integer in [min, max], stored as int */
    CFG_RATIO,   /* `auto` (stored as 0) or a number in (0, 1], stored as double */
    CFG_PATH,    /* string, resolved against the base folder, stored as char* */
    CFG_ENUM,    /* one name of `values`, stored as int (C enum) */
    CFG_FLAGS,   /* non-empty list of distinct names of `values`, OR-ed into an unsigned */
    CFG_INPUTS,  /* list of paths, {manifest: FILE} and {path, fps} items -> job->inputs */
    CFG_NUMBER,  /* a finite number in [0, max], stored as double */
} cfg_type;

typedef struct cfg_enum_value {
    const char *name;
    int value;
} cfg_enum_value;

typedef struct cfg_key {
    const char *path; /* dotted key path, "matting.warmup_frames" */
    cfg_type type;
    size_t offset;    /* of the field in dm_job (unused for sections) */
    const char *def;  /* default as YAML text; NULL: no default (required or optional) */
    int64_t min, max; /* CFG_INT range */
    const cfg_enum_value *values; /* CFG_ENUM / CFG_FLAGS, terminated by {NULL, 0} */
    const char *expect;           /* how errors describe a valid value: "a non-negative integer" */
    const char *doc;              /* one line for docs/config.md */
} cfg_key;

/* Where a key got its value: line/col 1-based (0 = not from a file position). */
typedef struct cfg_origin {
    int set; /* given explicitly (file or --set), not a default */
    int line, col;
} cfg_origin;

struct dm_job_private {
    cfg_origin *origin; /* one per schema row */
};

/* The table. */
int cfg_schema_count(void);
const cfg_key *cfg_schema_get(int i);
/* Row index of `path`, or -1. */
int cfg_schema_find(const char *path);
/* Closest known key with the same parent section as `path` (edit distance <= 2, or a shared
 * prefix of at least 4 characters), or NULL. */
const char *cfg_schema_suggest(const char *path);
/* Name of enum value `v` of row `k`, or "?". */
const char *cfg_enum_name(const cfg_key *k, int v);

/* What an error message is about: the source name ("job.yaml", "--set"), whether positions
 * are meaningful, and the folder relative paths resolve against (NULL: leave relative). */
typedef struct cfg_ctx {
    const char *name;
    int has_position;
    const char *base_dir;
    yaml_document_t *doc;
    dm_job *job;
} cfg_ctx;

/* Records an error "NAME:LINE:COL: KEY: message" (position omitted when the context has none
 * or the mark is NULL) and returns `code`. */
dm_status cfg_error(const cfg_ctx *ctx, dm_status code, const yaml_mark_t *mark, const char *key,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Checks `node` against row `k` and stores it in ctx->job. `key_mark` locates the key for
 * messages. Sections are walked recursively. On error nothing of this key is changed (except
 * keys already applied inside a section). */
dm_status cfg_apply(const cfg_ctx *ctx, int row, yaml_node_t *node, const yaml_mark_t *key_mark);

/* Walks the top-level mapping of a job document (node must be a mapping). */
dm_status cfg_apply_root(const cfg_ctx *ctx, yaml_node_t *node);

/* Applies every row's default to `job` (the job must be zeroed, with priv allocated). */
dm_status cfg_apply_defaults(dm_job *job);

/* Parses `text` as one YAML document into `doc` (caller deletes it on DM_OK). Syntax errors are
 * reported against ctx->name. DM_ERR_FORMAT. */
dm_status cfg_load_document(const cfg_ctx *ctx, const char *text, yaml_document_t *doc);

/* "dir/p" unless p is absolute or dir is NULL/empty; malloc'ed (NULL on allocation failure). */
char *cfg_resolve_path(const char *dir, const char *p);

/* Folder part of a path ("." if none); malloc'ed. */
char *cfg_dirname(const char *path);

/* Reads a whole file into a NUL-terminated malloc'ed buffer. DM_ERR_IO / DM_ERR_NOMEM with the
 * message "<path>: cause". */
dm_status cfg_read_file(const char *path, char **text);

/* Writes a YAML double-quoted scalar. */
void cfg_print_quoted(FILE *f, const char *s);

#endif
