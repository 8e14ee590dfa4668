/* The one schema table of the job file: every key, its type, default, range and doc string.
 * The parser, the --set overrides, the defaults, the effective-config printer and the table in
 * docs/config.md (dm_config_print_schema) are all driven by this table, so they cannot drift. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

/* The fields of enum type are written through an int (cfg_apply); make sure they are ints. */
_Static_assert(sizeof(dm_dtype) == sizeof(int), "dm_dtype must be int-sized");
_Static_assert(sizeof(dm_split_policy) == sizeof(int), "enums must be int-sized");

static const cfg_enum_value alpha_dtypes[] = {
    {"uint8", DM_DTYPE_U8}, {"float16", DM_DTYPE_F16}, {NULL, 0}};
static const cfg_enum_value depth_dtypes[] = {
    {"float16", DM_DTYPE_F16}, {"float32", DM_DTYPE_F32}, {NULL, 0}};
static const cfg_enum_value precisions[] = {
    {"float32", DM_DTYPE_F32}, {"float16", DM_DTYPE_F16}, {"bfloat16", DM_DTYPE_BF16}, {NULL, 0}};
static const cfg_enum_value matting_models[] = {{"rvm_mobilenetv3", DM_MATTING_RVM_MOBILENETV3},
                                                {"rvm_resnet50", DM_MATTING_RVM_RESNET50},
                                                {NULL, 0}};
static const cfg_enum_value matting_outputs[] = {
    {"alpha", DM_MATTING_OUT_ALPHA}, {"foreground", DM_MATTING_OUT_FOREGROUND}, {NULL, 0}};
static const cfg_enum_value depth_models[] = {{"da2_vits", DM_DEPTH_DA2_VITS},
                                              {"vda_vits", DM_DEPTH_VDA_VITS},
                                              {"vda_vits_metric", DM_DEPTH_VDA_VITS_METRIC},
                                              {NULL, 0}};
static const cfg_enum_value output_sizes[] = {
    {"source", DM_DEPTH_SIZE_SOURCE}, {"model", DM_DEPTH_SIZE_MODEL}, {NULL, 0}};
static const cfg_enum_value depth_modes[] = {
    {"offline", DM_DEPTH_MODE_OFFLINE}, {"stream", DM_DEPTH_MODE_STREAM}, {NULL, 0}};
static const cfg_enum_value backends[] = {{"auto", DM_BACKEND_CHOICE_AUTO},
                                          {"cpu", DM_BACKEND_CHOICE_CPU},
                                          {"cuda", DM_BACKEND_CHOICE_CUDA},
                                          {"emulated", DM_BACKEND_CHOICE_EMULATED},
                                          {NULL, 0}};
static const cfg_enum_value verify_modes[] = {{"first_frame", DM_VERIFY_FIRST_FRAME},
                                              {"off", DM_VERIFY_OFF},
                                              {"all", DM_VERIFY_ALL},
                                              {NULL, 0}};
static const cfg_enum_value split_policies[] = {
    {"auto", DM_SPLIT_AUTO}, {"always", DM_SPLIT_ALWAYS}, {"never", DM_SPLIT_NEVER}, {NULL, 0}};

#define OFF(field) offsetof(dm_job, field)
#define SECTION(p, d)                                                                              \
    { p, CFG_SECTION, 0, NULL, 0, 0, NULL, "a mapping", d }
#define INT(p, f, def, lo, hi, ex, d)                                                              \
    { p, CFG_INT, OFF(f), def, lo, hi, NULL, ex, d }
#define ENUM(p, f, def, v, d)                                                                      \
    { p, CFG_ENUM, OFF(f), def, 0, 0, v, NULL, d }

/* Defaults and why (see also docs/config.md):
 * - depth.dtype float16: half the bytes; fp16's relative step 2^-11 (0.05 %) is far below
 *   the models' own error against ground truth, and the pipeline guards non-finite values.
 * - matting.warmup_frames 32: DESIGN.md "Context frames" measured that RVM started cold still
 *   differs by up to 0.48 in alpha after 16 warm-up frames; its recurrent state remembers tens
 *   of frames, so we take 32 (about one second of video) as the default trade-off. The cost is
 *   32 extra decoded+inferred frames per split chunk only (whole videos need none). Not yet
 *   re-measured for 32; the pipeline's sweep should revisit it.
 * - plan.min_chunk_frames 64: twice the warm-up, so a split chunk never spends more than a third
 *   of its work on discarded context frames.
 * - runtime.batch_size 1: the conservative choice until the CUDA path is benchmarked; RVM is
 *   recurrent and always runs frame by frame anyway. */
static const cfg_key g_schema[] = {
    {"inputs", CFG_INPUTS, 0, "[]", 0, 0, NULL,
     "a list of paths, {manifest: FILE} and {path: P, fps: R} items",
     "Videos to process: paths, and/or `- manifest: FILE` items (a text file, one path per line, "
     "`#` comments; its relative paths are relative to the manifest's folder). A folder or a glob "
     "of PNG/JPEG frames is an image sequence, one video; `- {path: P, fps: R}` gives its frame "
     "rate (else image_fps)."},
    {"image_fps", CFG_NUMBER, OFF(image_fps), "0", 0, 1000000, NULL, "0 (none) or a frame rate > 0",
     "Frame rate (frames/s) of image-sequence inputs whose item gives no fps; 0 = none (such an "
     "input is then an error: images carry no rate)."},
    {"target_fps", CFG_NUMBER, OFF(target_fps), "0", 0, 1000000, NULL,
     "0 (every frame) or a frame rate > 0",
     "Keep every round(source fps / target_fps)-th frame (at least every frame; the official "
     "Video Depth Anything rule); rows record their source frame. 0 = all frames."},
    INT("max_res", max_res, "0", 0, 65536, "0 (source size) or an even number of pixels",
        "Scale decoded frames so the longer side is at most max_res (sides rounded, made even, "
        "as the official Video Depth Anything code; its run.py default is 1280). 0 = source size."),
    INT("video_stream", video_stream, "-1", -1, 1000000, "-1 (best stream) or a stream index >= 0",
        "Video stream of each input: -1 lets FFmpeg pick the best one."),
    INT("max_frames", max_frames, "0", 0, 2147483647, "0 (all) or a positive frame count",
        "Only the first max_frames frames of every input (trials, tests); 0 = all. The CLI's "
        "--max-frames overrides it."),
    SECTION("output", "The HDF5 output file."),
    {"output.path", CFG_PATH, OFF(output.path), NULL, 0, 0, NULL, "a file path",
     "HDF5 file to write (required)."},
    ENUM("output.alpha_dtype", output.alpha_dtype, "uint8", alpha_dtypes,
         "Storage type of alpha: uint8 (alpha*255, rounded) or float16."),
    INT("output.compression", output.compression, "0", 0, 9, "a gzip level 0..9",
        "gzip level of every dataset; 0 = no compression filter."),
    INT("output.chunk_frames", output.chunk_frames, "16", 1, 65536, "an integer in 1..65536",
        "Frames per HDF5 chunk along time."),
    {"output.overwrite", CFG_BOOL, OFF(output.overwrite), "false", 0, 0, NULL, "true or false",
     "Replace an existing output file (otherwise it is an error, unless resuming)."},
    SECTION("matting", "Robust Video Matting; enabled when the job gives any of its keys."),
    {"matting.enabled", CFG_BOOL, OFF(matting.enabled), NULL, 0, 0, NULL, "true or false",
     "Run matting. Default: true if the job gives any matting key, else false."},
    ENUM("matting.model", matting.model, "rvm_mobilenetv3", matting_models,
         "Matting network: RVM MobileNetV3 or ResNet50 (weights of that variant)."),
    {"matting.weights", CFG_PATH, OFF(matting.weights), NULL, 0, 0, NULL, "a file path",
     "safetensors weights (official key names); required when matting is enabled."},
    {"matting.downsample_ratio", CFG_RATIO, OFF(matting.downsample_ratio), "auto", 0, 0, NULL,
     "auto or a number in (0, 1]",
     "RVM's internal downsampling; auto picks it from the frame size as RVM's README does."},
    INT("matting.warmup_frames", matting.warmup_frames, "32", 0, 100000, "a non-negative integer",
        "Frames decoded and discarded before a split chunk to warm RVM's recurrent state."),
    {"matting.outputs", CFG_FLAGS, OFF(matting.outputs), "[alpha]", 0, 0, matting_outputs,
     "a non-empty list of alpha, foreground", "Matting datasets to write."},
    SECTION("depth", "Depth estimation; enabled when the job gives any of its keys."),
    {"depth.enabled", CFG_BOOL, OFF(depth.enabled), NULL, 0, 0, NULL, "true or false",
     "Run depth. Default: true if the job gives any depth key, else false."},
    ENUM("depth.model", depth.model, "da2_vits", depth_models,
         "Depth Anything V2 Small (per frame) or Video Depth Anything Small (relative/metric)."),
    {"depth.weights", CFG_PATH, OFF(depth.weights), NULL, 0, 0, NULL, "a file path",
     "safetensors weights (official key names); required when depth is enabled."},
    INT("depth.input_size", depth.input_size, "518", 14, 4096, "an integer in 14..4096",
        "Network input size in pixels (short side); rounded as the model's own transform does."),
    ENUM("depth.output_size", depth.output_size, "source", output_sizes,
         "Depth map size: the video's (source) or the network input grid, no resize (model; "
         "da2_vits only)."),
    ENUM("depth.dtype", depth.dtype, "float16", depth_dtypes,
         "Storage type of depth (fp16's 0.05 % step is below the models' own error)."),
    ENUM("depth.mode", depth.mode, "offline", depth_modes,
         "vda_vits / vda_vits_metric: offline (32-frame windows, scale/shift aligned) or "
         "stream (the official streaming mode: causal, one frame at a time, no alignment, "
         "whole videos per rank; docs/vda_stream.md)."),
    SECTION("runtime", "Compute settings of every rank."),
    ENUM("runtime.backend", runtime.backend, "auto", backends,
         "auto: CUDA when built, a GPU is visible and it runs every op the job needs, else "
         "CPU; emulated: CPU ops behind the GPU's device rules (tests, no GPU needed)."),
    INT("runtime.threads", runtime.threads, "0", 0, 4096, "0 (auto) or a thread count",
        "CPU threads per rank; 0 = OpenMP's default."),
    ENUM("runtime.precision", runtime.precision, "float32", precisions,
         "Compute precision of the networks."),
    INT("runtime.batch_size", runtime.batch_size, "1", 1, 1024, "an integer in 1..1024",
        "Frames per forward pass of per-frame models (RVM always runs frame by frame)."),
    ENUM("runtime.verify", runtime.verify, "first_frame", verify_modes,
         "Device backends: recompute each rank's first frame of every model on the CPU and "
         "stop before writing if they disagree (first_frame); off; all = every frame."),
    {"runtime.share_gpus", CFG_BOOL, OFF(runtime.share_gpus), "false", 0, 0, NULL, "true or false",
     "Allow more ranks than GPUs on a node (ranks then share GPUs)."},
    INT("runtime.stall_timeout", runtime.stall_timeout, "120", 1, 86400,
        "an integer in 1..86400 (seconds)",
        "Stall watchdog floor: a write round may take max(this, stall_factor x the slowest "
        "round so far), the first round 5 x this; then the job ends (exit 4) naming the "
        "ranks/hosts not heard from."),
    INT("runtime.stall_factor", runtime.stall_factor, "10", 2, 1000, "an integer in 2..1000",
        "Stall watchdog: multiple of the slowest round so far a round may take (so a rank "
        "several times slower than the rest never trips it)."),
    SECTION("plan", "How frames are spread over ranks."),
    ENUM("plan.split_videos", plan.split_videos, "auto", split_policies,
         "auto: split a video only when a rank would otherwise idle; always; never."),
    INT("plan.min_chunk_frames", plan.min_chunk_frames, "64", 1, 100000000, "a positive integer",
        "No piece of a split video owns fewer frames than this."),
};

int cfg_schema_count(void) {
    return (int)(sizeof g_schema / sizeof g_schema[0]);
}

const cfg_key *cfg_schema_get(int i) {
    return (i >= 0 && i < cfg_schema_count()) ? &g_schema[i] : NULL;
}

int cfg_schema_find(const char *path) {
    for (int i = 0; i < cfg_schema_count(); i++)
        if (strcmp(g_schema[i].path, path) == 0) return i;
    return -1;
}

const char *cfg_enum_name(const cfg_key *k, int v) {
    for (const cfg_enum_value *e = k->values; e && e->name; e++)
        if (e->value == v) return e->name;
    return "?";
}

/* Levenshtein distance of two short strings (keys are < 64 characters). */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Length of the parent part of a dotted path ("matting.x" -> 7, "x" -> 0). */
static size_t parent_len(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? (size_t)(dot - path) : 0;
}

const char *cfg_schema_suggest(const char *path) {
    size_t plen = parent_len(path);
    const char *leaf = path + (plen ? plen + 1 : 0);
    const char *best = NULL;
    int best_d = 3;
    for (int i = 0; i < cfg_schema_count(); i++) {
        const char *cand = g_schema[i].path;
        if (parent_len(cand) != plen || strncmp(cand, path, plen) != 0) continue;
        const char *cleaf = cand + (plen ? plen + 1 : 0);
        int d = edit_distance(leaf, cleaf);
        size_t n = strlen(leaf);
        if (n >= 4 && strncmp(leaf, cleaf, n) == 0) d = 1; /* "warmup" -> "warmup_frames" */
        if (d < best_d) {
            best_d = d;
            best = cleaf;
        }
    }
    return best;
}

static void print_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f); /* keep Markdown table cells intact */
        fputc(*s, f);
    }
}

void dm_config_print_schema(FILE *f) {
    static const char *type_names[] = {"section", "bool", "int",    "ratio", "path",
                                       "enum",    "list", "inputs", "number"};
    fprintf(f, "| key | type | default | allowed | description |\n");
    fprintf(f, "|---|---|---|---|---|\n");
    for (int i = 0; i < cfg_schema_count(); i++) {
        const cfg_key *k = &g_schema[i];
        fprintf(f, "| `%s` | %s | ", k->path, type_names[k->type]);
        if (k->def) {
            fputc('`', f);
            print_cell(f, k->def);
            fputc('`', f);
        } else {
            fputs("-", f);
        }
        fputs(" | ", f);
        if (k->values) {
            for (const cfg_enum_value *e = k->values; e->name; e++)
                fprintf(f, "%s`%s`", e == k->values ? "" : ", ", e->name);
        } else {
            print_cell(f, k->expect);
        }
        fputs(" | ", f);
        print_cell(f, k->doc);
        fputs(" |\n", f);
    }
}
