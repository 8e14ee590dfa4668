/* depthmatte — reading depthmatte output files (HDF5), for the tools that work on a finished
 * (or partly finished) run: `depthmatte points`, `depthmatte export`.
 *
 * The layout is the one written by include/depthmatte/h5out.h and described in
 * docs/output.md (format version 1): /videos/<id>/{depth, alpha, foreground, pts, time_s, done}
 * plus attributes. This reader is serial: it opens the file read-only with HDF5's default
 * (POSIX) driver from a single process. It needs no MPI_Init (measured with Debian's parallel
 * HDF5 1.10.8: tests/h5/test_h5read.c runs as a plain process); calling it from inside an MPI
 * job is fine too (each rank then opens its own read-only handle).
 *
 * Rows: a video has T frames; dataset row t is frame t (0-based) of the decoded video. A row
 * whose done marker is 0 may hold anything (docs/output.md "How ranks write"); the readers
 * return what is stored and leave that decision to the caller (dm_h5r_read_done).
 *
 * Errors: every function returns a dm_status and records one line with dm_error_set that
 * names the file (and the video id where relevant): DM_ERR_IO (missing/unreadable file),
 * DM_ERR_FORMAT (not HDF5, not a depthmatte file, unsupported format_version, malformed
 * group), DM_ERR_ARG (bad video index, row range, absent dataset), DM_ERR_H5 (HDF5 failure,
 * with HDF5's own message), DM_ERR_NOMEM.
 */
#ifndef DEPTHMATTE_H5READ_H
#define DEPTHMATTE_H5READ_H

#include <stdint.h>

#include "depthmatte/status.h"
#include "depthmatte/tensor.h"

/* Shape and storage type of one dataset of a video. */
typedef struct dm_h5r_dataset {
    int present;     /* 1: the dataset exists (else the rest is zero) */
    int ndims;       /* 1 (pts, time_s, done), 3 (depth, alpha) or 4 (foreground) */
    int64_t dims[4]; /* (T,), (T, H, W) or (T, H, W, 3) */
    dm_dtype dtype;  /* stored type: DM_DTYPE_U8, DM_DTYPE_F16, DM_DTYPE_F32 or DM_DTYPE_I64;
                      * float64 (time_s) is reported as DM_DTYPE_F32 with is_f64 = 1 */
    int is_f64;      /* 1 for a float64 dataset (time_s) */
    char model[64];  /* attribute "model" ("" when absent: pts, time_s, done) */
    char weights_sha256[72]; /* attribute "weights_sha256" (hex, "" when absent/unknown) */
} dm_h5r_dataset;

/* Everything known about one video group (/videos/<id>). Strings are NUL-terminated copies,
 * truncated to their buffers. */
typedef struct dm_h5r_video {
    char id[16];               /* group name, "00000" = input index 0 of the job */
    char source[4096];         /* input path as given in the job */
    int64_t frames;            /* T: rows of every dataset (0 when the video failed at probe) */
    int fps_num, fps_den;      /* nominal frame rate = num / den frames per second */
    int width, height;         /* decoded, upright frame size W, H (pixels) */
    char codec[64];            /* codec name of the stream (ffprobe's codec_name) */
    int stream_index;          /* container index of the decoded stream; -1 when unknown
                                * (failed at probe, or a file written before the attribute) */
    int rotation;              /* degrees applied to make frames upright */
    int sar_num, sar_den;      /* sample aspect ratio (0/1 when unknown) */
    char status[16];           /* "pending" | "ok" | "failed" */
    char error[256];           /* failure message ("" when none) */
    int tb_num, tb_den;        /* time base of pts (seconds = pts * num / den); 0/0 without pts */
    dm_h5r_dataset depth;      /* (T, H, W) or (T, h, w) (size "model"), F16 or F32 */
    dm_h5r_dataset alpha;      /* (T, H, W) U8 or F16 */
    dm_h5r_dataset foreground; /* (T, H, W, 3) U8 RGB */
    dm_h5r_dataset pts;        /* (T,) I64 */
    dm_h5r_dataset time_s;     /* (T,) float64 seconds */
    dm_h5r_dataset done;       /* (T,) U8 */
    /* (T,) I64: the source frame of each row (absent in files of older versions) */
    dm_h5r_dataset source_frame;
    /* Depth attributes (all "" / 0 without a depth dataset). */
    int depth_metric;     /* 1: metric depth in metres (units "m"); 0: relative inverse
                           * depth, unitless (units "1": larger = nearer, arbitrary affine) */
    char depth_kind[96];  /* attribute kind, e.g. "metric depth (distance along the optical
                           * axis)" or "relative inverse depth (disparity-like), unitless" */
    char depth_units[16]; /* "m" or "1" */
    char depth_size[16];  /* "source" (rows at H x W) or "model" (network grid h x w) */
    int depth_input_height, depth_input_width; /* h, w when depth_size is "model", else 0 */
    char alpha_encoding[96];                   /* attribute encoding of alpha ("" without alpha) */
    /* How the rows were selected/scaled from the source (video.h "Selection and scaling";
     * files without these attributes: a plain video, step 1, source = the fields above).
     * Reopen the source as the run did with dm_video_open_opts: images, fps =
     * source_fps_num/den for an image sequence, frame_step, max_res. */
    int images;                         /* 1: the source is an image sequence */
    int frame_step;                     /* row t is source frame t * frame_step */
    int max_res;                        /* the run's max_res, 0 = none */
    int64_t source_frames;              /* source frames before selection */
    int source_fps_num, source_fps_den; /* source frame rate */
    int source_width, source_height;    /* source size before max_res (pixels) */
} dm_h5r_video;

/* Root attributes of the file. */
typedef struct dm_h5r_root {
    int64_t format_version;    /* 1 */
    char software_version[64]; /* "depthmatte X.Y.Z" */
    char created_utc[32];      /* ISO 8601 */
    int64_t ranks;             /* MPI ranks of the (last) run */
    int64_t videos;            /* number of video groups */
    int64_t complete;          /* 1 only when the run ended with every video ok */
    int64_t failed_videos;     /* videos with status "failed" */
} dm_h5r_root;

typedef struct dm_h5r_file dm_h5r_file;

/* Opens `path` read-only and checks that it is a depthmatte output file: an HDF5 file whose
 * root has format_version (= DM_H5_FORMAT_VERSION, 1) and a /videos group. Reads the list of
 * video groups (sorted by name, i.e. by input index). Errors: DM_ERR_IO ("PATH: No such file
 * or directory"), DM_ERR_FORMAT ("PATH: not an HDF5 file", "PATH: not a depthmatte output
 * file (no format_version attribute)", "PATH: format_version 2 not supported (this build
 * reads 1)"), DM_ERR_H5. *out is NULL on error. */
dm_status dm_h5r_open(const char *path, dm_h5r_file **out);

/* Closes the file and frees everything. Safe with NULL. */
void dm_h5r_close(dm_h5r_file *f);

/* The path given to dm_h5r_open (owned by f). */
const char *dm_h5r_path(const dm_h5r_file *f);

/* Root attributes. Errors: DM_ERR_H5 / DM_ERR_FORMAT for a malformed attribute. */
dm_status dm_h5r_root_info(const dm_h5r_file *f, dm_h5r_root *out);

/* The effective job YAML stored in the file (attribute job_yaml; owned by f, "" if absent). */
const char *dm_h5r_job_yaml(const dm_h5r_file *f);

/* Number of video groups under /videos. */
int dm_h5r_video_count(const dm_h5r_file *f);

/* Group name of video `index` (0 <= index < count), e.g. "00000"; NULL when out of range. */
const char *dm_h5r_video_id(const dm_h5r_file *f, int index);

/* Index of the video named `id`. Accepts the group name ("00002") or the input index as a
 * plain decimal number ("2"). Errors: DM_ERR_ARG ("PATH: no video '7' (the file has 3:
 * 00000..00002)"). */
dm_status dm_h5r_find_video(const dm_h5r_file *f, const char *id, int *index);

/* Attributes, datasets (shapes, dtypes) and depth attributes of video `index`.
 * Errors: DM_ERR_ARG (index), DM_ERR_FORMAT (missing attribute or a dataset of the wrong
 * rank/type, naming the video), DM_ERR_H5. */
dm_status dm_h5r_video_info(const dm_h5r_file *f, int index, dm_h5r_video *out);

/* Whole (T,) columns of video `index` into caller buffers of T elements (T = frames):
 * done markers (1 = row written), pts (stream time base, see tb_num/tb_den), time_s
 * (seconds since frame 0). Errors: DM_ERR_ARG (index, dataset absent: a video failed at
 * probe), DM_ERR_H5. */
dm_status dm_h5r_read_done(const dm_h5r_file *f, int index, uint8_t *done);
dm_status dm_h5r_read_pts(const dm_h5r_file *f, int index, int64_t *pts);
dm_status dm_h5r_read_time(const dm_h5r_file *f, int index, double *time_s);
/* Source frame number of each row (T,) (dataset source_frame). */
dm_status dm_h5r_read_source_frames(const dm_h5r_file *f, int index, int64_t *frames);

/* Rows [a, b) of depth, converted to float32 whatever the stored dtype (float16 values are
 * exact in float32): out is (b - a, h, w) row-major with h, w = depth.dims[1], dims[2] (the
 * source size H, W, or the network grid with size "model"). Units: metres when depth_metric,
 * else unitless relative inverse depth. Errors: DM_ERR_ARG (no depth dataset, 0 <= a <= b <= T
 * violated), DM_ERR_H5. */
dm_status dm_h5r_read_depth(const dm_h5r_file *f, int index, int64_t a, int64_t b, float *out);

/* Rows [a, b) of alpha as uint8 (b - a, H, W): stored uint8 as is; stored float16 as
 * round(clamp(alpha, 0, 1) * 255) (the uint8 encoding of docs/output.md). Errors as above. */
dm_status dm_h5r_read_alpha_u8(const dm_h5r_file *f, int index, int64_t a, int64_t b, uint8_t *out);

/* Rows [a, b) of alpha as float in [0, 1] (b - a, H, W): stored uint8 / 255, stored float16
 * converted exactly. Errors as above. */
dm_status dm_h5r_read_alpha_f32(const dm_h5r_file *f, int index, int64_t a, int64_t b, float *out);

/* Rows [a, b) of the foreground, (b - a, H, W, 3) uint8 RGB. Errors as above. */
dm_status dm_h5r_read_foreground(const dm_h5r_file *f, int index, int64_t a, int64_t b,
                                 uint8_t *out);

#endif
