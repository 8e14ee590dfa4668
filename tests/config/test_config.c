/* Job file tests: every schema key parsed, defaults, each error class with its exact
 * FILE:LINE:COL message, --set overrides, manifest expansion, effective-config round trip. */
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "depthmatte/config.h"
#include "tensor_compare.h"

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!g_ || strcmp(g_, w_) != 0) {                                                          \
            fprintf(stderr, "%s:%d: got  \"%s\"\n%*swant \"%s\"\n", __FILE__, __LINE__,            \
                    g_ ? g_ : "(null)", (int)strlen(__FILE__) + 8, "", w_);                        \
            tc_failure_count++;                                                                    \
        }                                                                                          \
    } while (0)

/* Every key set to a non-default value. */
static const char *FULL_JOB = "inputs:\n"
                              "  - a.mp4\n"
                              "  - /abs/b.mkv\n"
                              "video_stream: 2\n"
                              "max_frames: 40\n"
                              "output:\n"
                              "  path: out/result.h5\n"
                              "  alpha_dtype: float16\n"
                              "  compression: 4\n"
                              "  chunk_frames: 8\n"
                              "  overwrite: true\n"
                              "matting:\n"
                              "  enabled: true\n"
                              "  model: rvm_mobilenetv3\n"
                              "  weights: w/rvm.safetensors\n"
                              "  downsample_ratio: 0.375\n"
                              "  warmup_frames: 8\n"
                              "  outputs: [foreground, alpha]\n"
                              "depth:\n"
                              "  enabled: true\n"
                              "  model: vda_vits_metric\n"
                              "  weights: /w/vda.safetensors\n"
                              "  input_size: 392\n"
                              "  output_size: model\n"
                              "  dtype: float32\n"
                              "runtime:\n"
                              "  backend: cuda\n"
                              "  threads: 3\n"
                              "  precision: bfloat16\n"
                              "  batch_size: 4\n"
                              "plan:\n"
                              "  split_videos: never\n"
                              "  min_chunk_frames: 100\n";

static void test_full(void) {
    dm_job j;
    CHECK_OK(dm_config_parse_string(FULL_JOB, "job.yaml", "/base", 1, &j));
    if (!j.priv) return;
    CHECK(j.n_inputs == 2);
    CHECK_STR(j.inputs[0], "/base/a.mp4");
    CHECK_STR(j.inputs[1], "/abs/b.mkv");
    CHECK(j.video_stream == 2);
    CHECK_STR(j.output.path, "/base/out/result.h5");
    CHECK(j.output.alpha_dtype == DM_DTYPE_F16);
    CHECK(j.depth.dtype == DM_DTYPE_F32);
    CHECK(j.max_frames == 40);
    CHECK(j.output.compression == 4);
    CHECK(j.output.chunk_frames == 8);
    CHECK(j.output.overwrite == 1);
    CHECK(j.matting.enabled == 1);
    CHECK(j.matting.model == DM_MATTING_RVM_MOBILENETV3);
    CHECK_STR(j.matting.weights, "/base/w/rvm.safetensors");
    CHECK(j.matting.downsample_ratio == 0.375);
    CHECK(j.matting.warmup_frames == 8);
    CHECK(j.matting.outputs == (DM_MATTING_OUT_ALPHA | DM_MATTING_OUT_FOREGROUND));
    CHECK(j.depth.enabled == 1);
    CHECK(j.depth.model == DM_DEPTH_VDA_VITS_METRIC);
    CHECK_STR(j.depth.weights, "/w/vda.safetensors");
    CHECK(j.depth.input_size == 392);
    CHECK(j.depth.output_size == DM_DEPTH_SIZE_MODEL);
    CHECK(j.runtime.backend == DM_BACKEND_CHOICE_CUDA);
    CHECK(j.runtime.threads == 3);
    CHECK(j.runtime.precision == DM_DTYPE_BF16);
    CHECK(j.runtime.batch_size == 4);
    CHECK(j.plan.split_videos == DM_SPLIT_NEVER);
    CHECK(j.plan.min_chunk_frames == 100);
    CHECK_STR(j.yaml_text, FULL_JOB);
    dm_plan_options po = dm_config_plan_options(&j);
    CHECK(po.warmup_frames == 8 && po.split == DM_SPLIT_NEVER && po.min_chunk_frames == 100 &&
          po.align_frames == 1);
    j.matting.enabled = 0; /* depth only: no warm-up context */
    CHECK(dm_config_plan_options(&j).warmup_frames == 0);
    CHECK_STR(j.source_name, "job.yaml");
    dm_job_free(&j);
    CHECK(j.inputs == NULL && j.priv == NULL);
}

static void test_defaults(void) {
    dm_job j;
    CHECK_OK(dm_config_parse_string("inputs: [v.mp4]\noutput: {path: o.h5}\n"
                                    "depth: {weights: d.safetensors}\n",
                                    "min.yaml", NULL, 1, &j));
    if (!j.priv) return;
    CHECK_STR(j.inputs[0], "v.mp4"); /* no base dir: left relative */
    CHECK(j.video_stream == -1);
    CHECK(j.output.alpha_dtype == DM_DTYPE_U8);
    CHECK(j.depth.dtype == DM_DTYPE_F16);
    CHECK(j.max_frames == 0);
    CHECK(j.output.compression == 0);
    CHECK(j.output.chunk_frames == 16);
    CHECK(j.output.overwrite == 0);
    CHECK(j.matting.enabled == 0); /* no matting key given */
    CHECK(j.matting.weights == NULL);
    CHECK(j.matting.downsample_ratio == 0.0); /* auto */
    CHECK(j.matting.warmup_frames == 32);
    CHECK(j.matting.outputs == DM_MATTING_OUT_ALPHA);
    CHECK(j.depth.enabled == 1); /* implied by the section */
    CHECK(j.depth.model == DM_DEPTH_DA2_VITS);
    CHECK(j.depth.input_size == 518);
    CHECK(j.depth.output_size == DM_DEPTH_SIZE_SOURCE);
    CHECK(j.runtime.backend == DM_BACKEND_CHOICE_AUTO);
    CHECK(j.runtime.threads == 0);
    CHECK(j.runtime.precision == DM_DTYPE_F32);
    CHECK(j.runtime.batch_size == 1);
    CHECK(j.plan.split_videos == DM_SPLIT_AUTO);
    CHECK(j.plan.min_chunk_frames == 64);
    dm_job_free(&j);

    /* `matting: {enabled: false}` keeps matting off even though the section is present */
    CHECK_OK(dm_config_parse_string("inputs: [v.mp4]\noutput: {path: o.h5}\n"
                                    "matting: {enabled: false, warmup_frames: 3}\n"
                                    "depth:\n  weights: d\n",
                                    "off.yaml", NULL, 1, &j));
    CHECK(j.matting.enabled == 0 && j.depth.enabled == 1 && j.matting.warmup_frames == 3);
    dm_job_free(&j);
}

/* Parses `yaml` (lines counted from 1) and expects failure with exactly `msg`. */
static void expect_error(int line, const char *yaml, dm_status code, const char *msg) {
    dm_job j;
    dm_status st = dm_config_parse_string(yaml, "job.yaml", "/base", 1, &j);
    if (st == DM_OK) {
        fprintf(stderr, "%s:%d: accepted a bad job, expected: %s\n", __FILE__, line, msg);
        tc_failure_count++;
        dm_job_free(&j);
        return;
    }
    if (st != code || strcmp(dm_error_message(), msg) != 0) {
        fprintf(stderr, "%s:%d: status %s, message\n  got  %s\n  want %s\n", __FILE__, line,
                dm_status_name(st), dm_error_message(), msg);
        tc_failure_count++;
    }
    CHECK(j.priv == NULL && j.inputs == NULL); /* freed on error */
}

#define HEAD "inputs: [v.mp4]\noutput:\n  path: o.h5\n" /* lines 1-3 */

static void test_errors(void) {
    /* wrong type (the example of the brief) */
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  warmup_frames: many\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.warmup_frames: expected a non-negative integer, got "
                 "\"many\"");
    /* a quoted number is a string, not an integer */
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  warmup_frames: \"16\"\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.warmup_frames: expected a non-negative integer, got "
                 "quoted string \"16\"");
    expect_error(__LINE__, HEAD "depth:\n  weights: w\n  input_size: 5.5\n", DM_ERR_ARG,
                 "job.yaml:6:3: depth.input_size: expected an integer in 14..4096, got \"5.5\"");
    expect_error(__LINE__, HEAD "depth:\n  weights: w\n  input_size: [1]\n", DM_ERR_ARG,
                 "job.yaml:6:3: depth.input_size: expected an integer in 14..4096, got a list");
    expect_error(__LINE__, HEAD "depth:\n  weights: w\n  input_size:\n", DM_ERR_ARG,
                 "job.yaml:6:3: depth.input_size: expected an integer in 14..4096, got nothing "
                 "(null)");
    /* out of range */
    expect_error(__LINE__, HEAD "  compression: 10\ndepth: {weights: w}\n", DM_ERR_ARG,
                 "job.yaml:4:3: output.compression: expected a gzip level 0..9, got \"10\"");
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  warmup_frames: -1\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.warmup_frames: expected a non-negative integer, got "
                 "\"-1\"");
    expect_error(__LINE__, HEAD "depth:\n  weights: w\n  input_size: 4097\n", DM_ERR_ARG,
                 "job.yaml:6:3: depth.input_size: expected an integer in 14..4096, got \"4097\"");
    expect_error(__LINE__, "video_stream: -2\n" HEAD "depth: {weights: w}\n", DM_ERR_ARG,
                 "job.yaml:1:1: video_stream: expected -1 (best stream) or a stream index >= 0, "
                 "got \"-2\"");
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  downsample_ratio: 0\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.downsample_ratio: expected auto or a number in (0, 1], "
                 "got \"0\"");
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  downsample_ratio: 1.5\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.downsample_ratio: expected auto or a number in (0, 1], "
                 "got \"1.5\"");
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  downsample_ratio: nan\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.downsample_ratio: expected auto or a number in (0, 1], "
                 "got \"nan\"");
    /* enums, booleans, lists */
    expect_error(__LINE__, HEAD "  alpha_dtype: int8\ndepth: {weights: w}\n", DM_ERR_ARG,
                 "job.yaml:4:3: output.alpha_dtype: expected one of uint8, float16, got \"int8\"");
    expect_error(__LINE__, HEAD "  overwrite: yes\ndepth: {weights: w}\n", DM_ERR_ARG,
                 "job.yaml:4:3: output.overwrite: expected true or false, got \"yes\"");
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  outputs: [alpha, mask]\n", DM_ERR_ARG,
                 "job.yaml:6:20: matting.outputs: expected one of alpha, foreground, got "
                 "\"mask\"");
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  outputs: [alpha, alpha]\n", DM_ERR_ARG,
                 "job.yaml:6:20: matting.outputs: \"alpha\" is listed twice");
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  outputs: []\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.outputs: expected a non-empty list of alpha, foreground, "
                 "got a list");
    expect_error(__LINE__, HEAD "matting: 5\n", DM_ERR_ARG,
                 "job.yaml:4:1: matting: expected a mapping, got \"5\"");
    /* unknown keys */
    expect_error(__LINE__, HEAD "matting:\n  weights: w\n  warmup: 8\n", DM_ERR_ARG,
                 "job.yaml:6:3: matting.warmup: unknown key; did you mean \"warmup_frames\"?");
    expect_error(__LINE__, HEAD "depht:\n  weights: w\n", DM_ERR_ARG,
                 "job.yaml:4:1: depht: unknown key; did you mean \"depth\"?");
    expect_error(__LINE__, HEAD "depth:\n  weights: w\n  colour: red\n", DM_ERR_ARG,
                 "job.yaml:6:3: depth.colour: unknown key (see docs/config.md for the keys)");
    /* duplicate keys, nested and top level */
    expect_error(__LINE__, HEAD "matting:\n  weights: a\n  warmup_frames: 1\n  weights: b\n",
                 DM_ERR_ARG,
                 "job.yaml:7:3: matting.weights: duplicate key (first given at line 5)");
    expect_error(__LINE__, HEAD "depth: {weights: w}\noutput:\n  path: p.h5\n", DM_ERR_ARG,
                 "job.yaml:5:1: output: duplicate key (first given at line 2)");
    /* YAML syntax errors (libyaml's own wording, our FILE:LINE:COL) */
    expect_error(__LINE__, HEAD "depth:\n  weights: [a\n", DM_ERR_FORMAT,
                 "job.yaml:6:1: YAML syntax error: did not find expected ',' or ']' (while "
                 "parsing a flow sequence)");
    expect_error(__LINE__, HEAD "depth:\n  weights: w\n input_size: 3\n", DM_ERR_FORMAT,
                 "job.yaml:6:2: YAML syntax error: did not find expected key (while parsing a "
                 "block mapping)");
    expect_error(__LINE__, HEAD "depth: {weights: w}\n---\nfoo: 1\n", DM_ERR_FORMAT,
                 "job.yaml:5:1: a job holds one YAML document, found a second one");
    /* structure */
    expect_error(__LINE__, "", DM_ERR_ARG,
                 "job.yaml: empty job (expected inputs, output and a matting and/or depth "
                 "section)");
    expect_error(__LINE__, "- a\n- b\n", DM_ERR_ARG,
                 "job.yaml:1:1: expected a mapping of keys (inputs, output, ...) at the top "
                 "level");
    expect_error(__LINE__, "inputs:\n  - a.mp4\n  - {manifesto: x}\n", DM_ERR_ARG,
                 "job.yaml:3:6: inputs[1]: unknown key \"manifesto\"; an input item is a path, "
                 "`manifest: FILE` or `{path: FOLDER_OR_GLOB, fps: RATE}`");
    expect_error(__LINE__, "inputs:\n  - a.mp4\n  - [x]\n", DM_ERR_ARG,
                 "job.yaml:3:5: inputs[1]: expected a video path, `manifest: FILE` or "
                 "`{path: FOLDER_OR_GLOB, fps: RATE}`, got a list");
    /* image sequences, frame selection and scaling (docs/config.md "Image sequences") */
    expect_error(__LINE__, "inputs:\n  - {path: frames, fps: 0}\n", DM_ERR_ARG,
                 "job.yaml:2:20: inputs[0].fps: expected a frame rate > 0 (frames per second), "
                 "got \"0\"");
    expect_error(__LINE__, "inputs:\n  - {fps: 24}\n", DM_ERR_ARG,
                 "job.yaml:2:5: inputs[0]: the item gives no path");
    expect_error(__LINE__, "inputs:\n  - {path: f, fps: 24, size: 3}\n", DM_ERR_ARG,
                 "job.yaml:2:24: inputs[0]: unknown key \"size\"; an input item is a path, "
                 "`manifest: FILE` or `{path: FOLDER_OR_GLOB, fps: RATE}`");
    expect_error(__LINE__, "target_fps: -1\n", DM_ERR_ARG,
                 "job.yaml:1:1: target_fps: expected 0 (every frame) or a frame rate > 0, got "
                 "\"-1\"");
    expect_error(__LINE__, "image_fps: fast\n", DM_ERR_ARG,
                 "job.yaml:1:1: image_fps: expected 0 (none) or a frame rate > 0, got \"fast\"");
    expect_error(__LINE__, "inputs: a.mp4\n", DM_ERR_ARG,
                 "job.yaml:1:1: inputs: expected a list of paths, {manifest: FILE} and {path: P, "
                 "fps: R} items, got \"a.mp4\"");
    /* cross-key checks */
    expect_error(__LINE__, HEAD, DM_ERR_ARG,
                 "job.yaml: nothing to do: neither matting nor depth is enabled (add a matting: "
                 "and/or depth: section)");
    expect_error(__LINE__, HEAD "matting:\n  warmup_frames: 4\n", DM_ERR_ARG,
                 "job.yaml:4:1: matting.weights: required when matting is enabled");
    expect_error(__LINE__, HEAD "depth:\n", DM_ERR_ARG,
                 "job.yaml:4:1: depth.weights: required when depth is enabled");
    expect_error(__LINE__, "inputs: [a]\ndepth: {weights: w}\n", DM_ERR_ARG,
                 "job.yaml: output.path: required (the HDF5 file to write)");
    expect_error(__LINE__, "output: {path: o}\ndepth: {weights: w}\n", DM_ERR_ARG,
                 "job.yaml: inputs: no videos given");
    expect_error(__LINE__, "inputs: [a, b, ./a, a]\noutput: {path: o}\ndepth: {weights: w}\n",
                 DM_ERR_ARG, "job.yaml:1:1: inputs: \"/base/a\" is listed twice (items 0 and 3)");
    expect_error(__LINE__, "inputs: [{manifest: no/such/list.txt}]\n", DM_ERR_IO,
                 "job.yaml:1:11: inputs[0].manifest: cannot read manifest: "
                 "/base/no/such/list.txt: cannot open: No such file or directory");
}

static void test_set(void) {
    dm_job j;
    CHECK_OK(dm_config_parse_string(HEAD "depth:\n  weights: w\n", "job.yaml", "/base", 1, &j));
    if (!j.priv) return;
    CHECK_OK(dm_config_set(&j, "output.compression=7"));
    CHECK(j.output.compression == 7);
    CHECK_OK(dm_config_set(&j, " runtime.precision = float16"));
    CHECK(j.runtime.precision == DM_DTYPE_F16);
    CHECK_OK(dm_config_set(&j, "output.path=rel/x.h5")); /* --set paths: relative to cwd */
    CHECK_STR(j.output.path, "rel/x.h5");
    CHECK_OK(dm_config_set(&j, "inputs=[c.mp4, /d.mp4]"));
    CHECK(j.n_inputs == 2);
    if (j.n_inputs == 2) CHECK_STR(j.inputs[1], "/d.mp4");
    /* any matting key enables matting; the new required key makes validation fail until given */
    CHECK(j.matting.enabled == 0);
    CHECK_OK(dm_config_set(&j, "matting.outputs=[alpha,foreground]"));
    CHECK(j.matting.enabled == 1);
    CHECK(j.matting.outputs == (DM_MATTING_OUT_ALPHA | DM_MATTING_OUT_FOREGROUND));
    CHECK(dm_config_validate(&j) == DM_ERR_ARG);
    CHECK_STR(dm_error_message(), "job.yaml: matting.weights: required when matting is enabled");
    CHECK_OK(dm_config_set(&j, "matting.weights=/m.safetensors"));
    CHECK_OK(dm_config_validate(&j));
    CHECK_OK(dm_config_set(&j, "matting.enabled=false"));
    CHECK(j.matting.enabled == 0);

    /* errors, with the old value kept */
    CHECK(dm_config_set(&j, "matting.warmup_frames=many") == DM_ERR_ARG);
    CHECK_STR(dm_error_message(),
              "--set: matting.warmup_frames: expected a non-negative integer, got \"many\"");
    CHECK(j.matting.warmup_frames == 32);
    CHECK(dm_config_set(&j, "output.compression=") == DM_ERR_ARG);
    CHECK_STR(dm_error_message(),
              "--set: output.compression: expected a gzip level 0..9, got nothing (null)");
    CHECK(j.output.compression == 7);
    CHECK(dm_config_set(&j, "matting.warmup=8") == DM_ERR_ARG);
    CHECK_STR(dm_error_message(), "--set: matting.warmup: unknown key; did you mean "
                                  "\"warmup_frames\"?");
    CHECK(dm_config_set(&j, "depth") == DM_ERR_ARG);
    CHECK_STR(dm_error_message(), "--set: expected KEY=VALUE, got \"depth\"");
    CHECK(dm_config_set(&j, "depth={weights: x}") == DM_ERR_ARG);
    CHECK_STR(dm_error_message(), "--set: depth: is a section; set its keys one by one (e.g. "
                                  "depth.KEY=VALUE)");
    CHECK(dm_config_set(&j, "inputs=[a") == DM_ERR_FORMAT);
    CHECK_STR(dm_error_message(), "--set: YAML syntax error in the value: did not find expected "
                                  "',' or ']'");
    CHECK(j.n_inputs == 2);
    dm_job_free(&j);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_files(void) {
    char tmpl[] = "/tmp/dm_cfg_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    if (!dir) return;
    char real[PATH_MAX], p[PATH_MAX + 64], want[3 * PATH_MAX], sub[PATH_MAX + 16];
    CHECK(realpath(dir, real) != NULL);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(mkdir(sub, 0755) == 0);
    snprintf(p, sizeof p, "%s/sub/list.txt", dir);
    write_file(p, "# clips for the test\n\n  one.mp4  \r\n#skipped.mp4\n/abs/two.mp4\n"
                  "deeper/three.mp4");
    snprintf(p, sizeof p, "%s/sub/empty.txt", dir);
    write_file(p, "# nothing here\n\n");
    snprintf(p, sizeof p, "%s/job.yaml", dir);
    write_file(p, "inputs:\n  - first.mp4\n  - manifest: sub/list.txt\n  - last.mp4\n"
                  "output:\n  path: out.h5\n"
                  "matting:\n  weights: ../w/rvm.safetensors\n");
    dm_job j;
    CHECK_OK(dm_config_load(p, &j));
    if (j.priv) {
        CHECK(j.n_inputs == 5);
        const char *rel[] = {"first.mp4", "sub/one.mp4", NULL, "sub/deeper/three.mp4", "last.mp4"};
        for (int i = 0; i < 5 && i < j.n_inputs; i++) {
            if (rel[i])
                snprintf(want, sizeof want, "%s/%s", real, rel[i]);
            else
                snprintf(want, sizeof want, "/abs/two.mp4");
            CHECK_STR(j.inputs[i], want);
        }
        snprintf(want, sizeof want, "%s/../w/rvm.safetensors", real);
        CHECK_STR(j.matting.weights, want);
        CHECK(j.matting.enabled == 1 && j.depth.enabled == 0);
        dm_job_free(&j);
    }
    /* an empty manifest is an error, not a silent no-op */
    write_file(p, "inputs:\n  - manifest: sub/empty.txt\n");
    CHECK(dm_config_load(p, &j) == DM_ERR_ARG);
    snprintf(want, sizeof want,
             "%s:2:5: inputs[0].manifest: manifest \"%s/sub/empty.txt\" "
             "lists no videos",
             p, real);
    CHECK_STR(dm_error_message(), want);
    /* required keys may come from --set */
    write_file(p, "inputs: [a.mp4]\noutput: {path: o.h5}\ndepth: {model: vda_vits}\n");
    CHECK(dm_config_load(p, &j) == DM_ERR_ARG);
    const char *sets[] = {"depth.weights=/w/vda.safetensors", "depth.input_size=280"};
    CHECK_OK(dm_config_load_with_sets(p, sets, 2, &j));
    CHECK(j.depth.input_size == 280 && j.depth.model == DM_DEPTH_VDA_VITS);
    dm_job_free(&j);
    CHECK(dm_config_load("/nonexistent/job.yaml", &j) == DM_ERR_IO);
    CHECK_STR(dm_error_message(), "/nonexistent/job.yaml: cannot open: No such file or directory");
    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    CHECK(system(p) == 0);
}

static void test_print_round_trip(void) {
    dm_job a, b;
    char *ta = NULL, *tb = NULL;
    CHECK_OK(dm_config_parse_string(FULL_JOB, "job.yaml", "/base", 1, &a));
    if (!a.priv) return;
    CHECK_OK(dm_config_set(&a, "matting.downsample_ratio=0.3")); /* not exact in binary */
    CHECK_OK(dm_config_to_string(&a, &ta));
    CHECK_OK(dm_config_parse_string(ta, "job.yaml", "/elsewhere", 1, &b));
    if (b.priv) {
        CHECK_OK(dm_config_to_string(&b, &tb));
        CHECK_STR(tb, ta);
        CHECK(b.matting.downsample_ratio == a.matting.downsample_ratio);
        CHECK_STR(b.inputs[0], "/base/a.mp4"); /* printed paths are resolved */
        dm_job_free(&b);
    }
    if (ta && !strstr(ta, "  warmup_frames: 8\n")) {
        fprintf(stderr, "effective config lacks warmup_frames:\n%s", ta);
        tc_failure_count++;
    }
    free(ta);
    free(tb);
    dm_job_free(&a);
    /* defaults and unset paths round-trip too (matting disabled, weights unset) */
    CHECK_OK(dm_config_parse_string("inputs: [v]\noutput: {path: o}\ndepth: {weights: d}\n",
                                    "min.yaml", NULL, 1, &a));
    CHECK_OK(dm_config_to_string(&a, &ta));
    if (ta) {
        CHECK(strstr(ta, "  # weights: (not set)\n") != NULL);
        CHECK_OK(dm_config_parse_string(ta, "min.yaml", NULL, 1, &b));
        CHECK(b.matting.enabled == 0 && b.depth.enabled == 1);
        CHECK_OK(dm_config_to_string(&b, &tb));
        CHECK_STR(tb, ta);
        dm_job_free(&b);
    }
    free(ta);
    free(tb);
    dm_job_free(&a);
}

/* Image sequences ({path, fps} items, image_fps), target_fps and max_res: values, defaults,
 * the even-max_res check and the effective configuration's round trip. */
static void test_inputs_options(void) {
    dm_job a, b;
    char *ta = NULL, *tb = NULL;
    CHECK_OK(dm_config_parse_string("inputs: [v.mp4]\noutput: {path: o}\ndepth: {weights: d}\n",
                                    "job.yaml", "/base", 1, &a));
    CHECK(a.target_fps == 0.0 && a.max_res == 0 && a.image_fps == 0.0);
    CHECK(a.n_inputs == 1 && a.input_fps && a.input_fps[0] == 0.0);
    dm_job_free(&a);
    CHECK_OK(dm_config_parse_string("inputs:\n  - v.mp4\n  - {path: frames, fps: 29.97}\n"
                                    "  - {path: \"shots/s_*.png\"}\n"
                                    "image_fps: 12.5\ntarget_fps: 10\nmax_res: 1280\n"
                                    "output: {path: o}\ndepth: {weights: d}\n",
                                    "job.yaml", "/base", 1, &a));
    if (!a.priv) return;
    CHECK(a.n_inputs == 3);
    CHECK_STR(a.inputs[1], "/base/frames");
    CHECK_STR(a.inputs[2], "/base/shots/s_*.png");
    CHECK(a.input_fps[0] == 0.0 && a.input_fps[1] == 29.97 && a.input_fps[2] == 0.0);
    CHECK(a.image_fps == 12.5 && a.target_fps == 10.0 && a.max_res == 1280);
    CHECK_OK(dm_config_to_string(&a, &ta));
    CHECK(ta && strstr(ta, "  - {path: \"/base/frames\", fps: 29.97}\n"));
    CHECK_OK(dm_config_parse_string(ta ? ta : "", "job.yaml", "/elsewhere", 1, &b));
    if (b.priv) {
        CHECK_OK(dm_config_to_string(&b, &tb));
        CHECK_STR(tb, ta);
        CHECK(b.input_fps[1] == 29.97 && b.target_fps == 10.0 && b.max_res == 1280);
        dm_job_free(&b);
    }
    free(ta);
    free(tb);
    dm_job_free(&a);
    expect_error(__LINE__, HEAD "max_res: 721\ndepth: {weights: w}\n", DM_ERR_ARG,
                 "job.yaml:4:1: max_res: expected an even number of pixels, got 721 (sides are "
                 "made even, so an odd bound could be exceeded by one)");
}

/* The examples in configs/ must stay valid jobs. */
static void test_examples(void) {
    glob_t g;
    int rc = glob(DM_SOURCE_DIR "/configs/*.yaml", 0, NULL, &g);
    CHECK(rc == 0 && g.gl_pathc >= 4);
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
        dm_job j;
        dm_status st = dm_config_load(g.gl_pathv[i], &j);
        printf("example %s: %s\n", g.gl_pathv[i], st == DM_OK ? "ok" : dm_error_message());
        CHECK(st == DM_OK);
        if (st == DM_OK) CHECK(j.n_inputs >= 1 && (j.matting.enabled || j.depth.enabled));
        dm_job_free(&j);
    }
    if (rc == 0) globfree(&g);
}

int main(void) {
    test_full();
    test_defaults();
    test_errors();
    test_set();
    test_files();
    test_print_round_trip();
    test_inputs_options();
    test_examples();
    printf("test_config: %d failure(s)\n", tc_failure_count);
    return tc_failure_count != 0;
}
