/* `depthmatte export` internals: the kinds, the options, the per-video check and export
 * (src/export/ex_*.c), driven by src/cli/cmd_export.c. Not a public header. */
#ifndef DM_EXPORT_INTERNAL_H
#define DM_EXPORT_INTERNAL_H

#include <stdint.h>

#include "depthmatte/h5read.h"
#include "depthmatte/status.h"
#include "depthmatte/video.h"

typedef enum ex_kind {
    EX_ALPHA_WEBM,
    EX_ALPHA_PRORES,
    EX_COMPOSITE,
    EX_RGBA_PNG,
    EX_ALPHA_PNG,
    EX_DEPTH_PNG16,
    EX_DEPTH_EXR,
    EX_DEPTH_VIS,
    EX_PREVIEW,
    EX_CONTACT_SHEET,
    EX_TRANSCODE,
    EX_KIND_COUNT
} ex_kind;

/* Name of a kind ("alpha-webm", ...), and the kind of a name (-1 when unknown). */
const char *ex_kind_name(ex_kind k);
int ex_kind_parse(const char *name);

typedef enum ex_palette { EX_PAL_INFERNO, EX_PAL_TURBO, EX_PAL_GREY } ex_palette;

typedef struct ex_source_override {
    char id[16];
    char path[1024];
} ex_source_override;

typedef struct ex_options {
    unsigned kinds; /* bit (1u << ex_kind) per requested kind */
    char out_dir[1024];
    int64_t frame_a, frame_b; /* --frames A:B; -1 = from 0 / to the end */
    int allow_partial;
    int no_audio;
    int lossless;          /* alpha-webm: VP9 lossless */
    int crf;               /* -1: per-kind default (VP9 30, H.264 18) */
    uint8_t background[3]; /* composite background, RGB (RVM's green 120,255,155) */
    ex_palette palette;
    double pct_lo, pct_hi; /* depth-vis normalisation percentiles (0, 100 = min/max) */
    int height;            /* transcode (and preview panel) height, pixels */
    int sheet_frames;      /* contact-sheet: frames */
    int sheet_width;       /* contact-sheet: thumbnail width, pixels */
    ex_source_override *sources;
    int n_sources;
} ex_options;

/* What one video's export will do, decided by ex_check_video (rank 0) and redone by the rank
 * that exports it (cheap: attributes and (T,) columns only). */
typedef struct ex_plan {
    dm_h5r_video v;
    int index;
    int64_t a, b;      /* row range [a, b) */
    int64_t n_rows;    /* rows exported (done rows of [a, b)) */
    char gaps[512];    /* "rows 10-19, 30-31" of [a, b) not done ("" when none) */
    char source[4096]; /* source path (override or recorded) */
    int need_source;   /* 1: pixels of the source are decoded */
    int audio;         /* 1: video outputs carry the source's audio */
} ex_plan;

/* Checks that this FFmpeg build has the encoder of every requested kind (the audio encoders
 * are checked only where a re-encode is needed, when the output is opened). Errors:
 * DM_ERR_UNSUPPORTED "this FFmpeg build has no encoder 'libvpx-vp9' (needed by kind ...)". */
dm_status ex_check_encoders(const ex_options *o);

/* Checks that video `index` can be exported with the options: datasets the kinds need (error
 * naming the video and the dataset), the frame range, the done rows (refused naming the
 * missing ranges unless allow_partial), the source file where pixels or audio are needed
 * (exists, same frames and size). Fills *p. Errors: DM_ERR_ARG, DM_ERR_IO, DM_ERR_FORMAT. */
dm_status ex_check_video(dm_h5r_file *f, int index, const ex_options *o, ex_plan *p);

/* One written output: path and what it is. */
typedef struct ex_output {
    char path[1200];
    char kind[24];
    int64_t frames; /* frames it holds (1 per image file of a sequence: the sequence's count) */
} ex_output;

typedef struct ex_result {
    ex_output *out;
    int n_out, cap_out;
    int64_t frames; /* rows processed */
} ex_result;

void ex_result_free(ex_result *r);

/* Progress callback: called after every processed row with the rows done so far. */
typedef void (*ex_progress_fn)(void *ctx, int64_t rows_done);

/* Exports one video (plan from ex_check_video) into o->out_dir/<id>/. Every file is written
 * under a temporary name and renamed when complete; on error nothing of the failing output
 * is left under its final name. Errors name the output or input file and the cause. */
dm_status ex_export_video(dm_h5r_file *f, const ex_plan *p, const ex_options *o, ex_result *res,
                          ex_progress_fn progress, void *ctx);

/* Colour of a normalised value t in [0, 1] (clamped; NaN -> black) in palette pal. */
void ex_palette_rgb(ex_palette pal, float t, uint8_t rgb[3]);

/* Draws text (digits, letters a-z, ' ', '.', ':', '-', '/') with a 5x7 bitmap font at scale
 * `scale` into an RGB24 image (H, W, 3) of width w, height h, top-left (x, y), colour rgb. */
void ex_draw_text(uint8_t *img, int w, int h, int x, int y, int scale, const char *text,
                  const uint8_t rgb[3]);

/* Resizes RGB24 (sh, sw, 3) -> (dh, dw, 3) with swscale (bicubic). */
dm_status ex_resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

/* The reader options that present the source of video `v` as its rows (frame_step, max_res,
 * image sequence at its recorded rate). */
static inline dm_video_options ex_source_options(const dm_h5r_video *v) {
    dm_video_options o = DM_VIDEO_OPTIONS_INIT;
    o.images = v->images;
    o.fps_num = v->source_fps_num > 0 ? v->source_fps_num : 0;
    o.fps_den = v->source_fps_den > 0 ? v->source_fps_den : 1;
    o.frame_step = v->frame_step;
    o.max_res = v->max_res;
    return o;
}

#endif
