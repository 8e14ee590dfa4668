/* depthmatte — parallel HDF5 output (one file for the whole job, all ranks write into it).
 *
 * Layout (docs/output.md has the full description; DESIGN.md "HDF5 file"):
 *   /                  attrs: format_version, software_version, job_yaml, created_utc, ranks,
 *                      complete (0 until dm_h5_finish succeeds with every video ok), videos
 *   /videos/<id>       id = video index, 0-padded to 5 digits ("00000"); attrs source, frames,
 *                      fps_num, fps_den, width, height, codec, rotation, sar_num, sar_den,
 *                      status ("pending" | "ok" | "failed"), error (message, "" when none),
 *                      images (1: image sequence), frame_step, max_res, source_frames,
 *                      source_fps_num, source_fps_den, source_width, source_height (frame
 *                      selection and scaling, video.h; a plain video: step 1, source = own)
 *   /videos/<id>/alpha       (T, H, W)    uint8 (round(alpha * 255)) or float16
 *   /videos/<id>/foreground  (T, H, W, 3) uint8 (RGB, round(fgr * 255))
 *   /videos/<id>/depth       (T, H, W)    float16 | float32, relative inverse depth, unitless;
 *                            (T, h, w) at the model input size when dm_h5_video.depth_width/
 *                            depth_height are set; attr size = "source" | "model"
 *   /videos/<id>/pts         (T,) int64, attrs time_base_num, time_base_den
 *   /videos/<id>/time_s      (T,) float64 seconds (pts * time_base)
 *   /videos/<id>/source_frame (T,) int64 source frame number of each row (row * frame_step)
 *   /videos/<id>/done        (T,) uint8, 1 = every dataset row of that frame written
 *   /ranks/{rank,host,frames,decode_s,inference_s,write_s,wait_s,total_s,device,
 *           device_peak_mb,verified_frames,verify_s,recomputed_frames}  (ranks,) columns
 * A video that failed at probe time has its group and attributes but no datasets.
 *
 * Parallel I/O model (SWIFT style): the file is opened with H5Pset_fapl_mpio on the given
 * communicator; every creation, attribute write, flush and dataset write is collective: every
 * rank calls with the same arguments, in the same order. Data are written in "rounds"
 * (dm_h5_write_round): every rank calls it the same number of times and passes at most one
 * block of rows (or none); ranks exchange their block descriptors first (MPI_Allgather), then
 * write every touched video's datasets collectively (H5FD_MPIO_COLLECTIVE, required for the
 * gzip filter), a rank without rows for that video passing an empty selection
 * (H5Sselect_none). Done markers are written after the data rows of the round, then the file
 * is flushed, so a crash never leaves a row marked done whose data were not written.
 *
 * Errors: every HDF5 and MPI call is checked; the message (dm_error_message) reads
 * "PATH: CALL failed at h5out.c:LINE in FUNCTION: <library message>". After a failure inside a
 * collective the file is unusable: the caller should abort the job (MPI_Abort).
 */
#ifndef DEPTHMATTE_H5OUT_H
#define DEPTHMATTE_H5OUT_H

#include <mpi.h>
#include <stdint.h>

#include "depthmatte/status.h"
#include "depthmatte/tensor.h"

#define DM_H5_FORMAT_VERSION 1
#define DM_H5_MSG_MAX 256 /* longest failure message stored per video (bytes, incl. NUL) */

/* How a video's rows were selected and scaled from its source (video.h "Selection and
 * scaling"); zeros = none: a plain video whose fields in dm_h5_video are the source's. */
typedef struct dm_h5_selection {
    int images;                         /* 1: an image sequence */
    int frame_step;                     /* row t is source frame t * frame_step; 0 = 1 */
    int max_res;                        /* the job's max_res, 0 = none */
    int64_t source_frames;              /* source frames before selection; 0 = frames */
    int source_fps_num, source_fps_den; /* source frame rate; 0 = fps_num/fps_den */
    int source_width, source_height;    /* source size before max_res; 0 = width/height */
} dm_h5_selection;

/* One input video as described in the file. All strings are copied. */
typedef struct dm_h5_video {
    const char *source;    /* input path as given in the job */
    int64_t frames;        /* T: rows of every dataset (0 when failed at probe) */
    int fps_num, fps_den;  /* nominal frame rate, frames per second = num / den */
    int width, height;     /* decoded frame size = dataset W, H (pixels) */
    const char *codec;     /* codec name of the stream (ffprobe's codec_name), e.g. "h264" */
    int rotation;          /* display-matrix rotation in degrees (metadata; not applied) */
    int sar_num, sar_den;  /* sample aspect ratio (0/1 when unknown) */
    int tb_num, tb_den;    /* stream time base of `pts` (seconds = pts * num / den) */
    int failed;            /* 1: unusable (probe failed): group with status failed, no data */
    const char *error;     /* message when failed, else NULL */
    int depth_width, depth_height; /* depth dataset W, H (pixels); 0 = width, height (source
                                    * size, attr size "source"); else the network input size
                                    * (depth.output_size model: attr size "model") */
    dm_h5_selection sel;           /* frame selection / scaling; source_frame = row * step */
    int stream_index;              /* container index of the decoded video stream (ffprobe's
                                    * "index"); -1 when unknown (failed at probe) */
} dm_h5_video;

/* Which datasets exist and how they are stored. */
typedef struct dm_h5_layout {
    int alpha;                    /* 1: /alpha dataset */
    dm_dtype alpha_dtype;         /* DM_DTYPE_U8 or DM_DTYPE_F16 */
    int foreground;               /* 1: /foreground (T, H, W, 3) uint8 */
    int depth;                    /* 1: /depth */
    dm_dtype depth_dtype;         /* DM_DTYPE_F16 or DM_DTYPE_F32 */
    const char *matting_model;    /* attr "model" of alpha/foreground, e.g. "rvm_mobilenetv3" */
    const char *matting_sha256;   /* attr "weights_sha256" ("" if unknown) */
    const char *depth_model;      /* attr "model" of depth, e.g. "depth_anything_v2_small" */
    const char *depth_sha256;     /* attr "weights_sha256" ("" if unknown) */
    int chunk_frames;             /* frames per HDF5 chunk (and per write block), >= 1 */
    int gzip;                     /* 0: no compression; 1..9: deflate level */
    int depth_metric;             /* 1: depth in metres (attr kind, units "m"); 0: relative */
    int block_rows;               /* most rows of one block per round; 0 = chunk_frames */
    const char *depth_mode;       /* attr "mode" of depth ("offline": 32-frame windows aligned
                                   * by scale/shift, "stream": causal infer_video_depth_one),
                                   * Video Depth Anything only; NULL: not written */
} dm_h5_layout;

/* Root metadata. */
typedef struct dm_h5_meta {
    const char *job_yaml; /* effective job text (attribute job_yaml) */
    int ranks;            /* number of MPI ranks of the run */
} dm_h5_meta;

/* One rank's contribution to a write round. video = -1: nothing to write. Buffers hold
 * `count` rows in the dataset's dtype (F16 as IEEE half bits); a buffer may be NULL only if its
 * dataset does not exist in the layout. */
typedef struct dm_h5_block {
    int video;                 /* index into the video list, or -1 */
    int64_t begin, count;      /* rows [begin, begin + count) of that video */
    const void *alpha;         /* (count, H, W) uint8 or half */
    const uint8_t *foreground; /* (count, H, W, 3) uint8 */
    const void *depth;         /* (count, H, W) half or float */
    const int64_t *pts;        /* (count,) in the video's time base */
    const double *time_s;      /* (count,) seconds */
    int failed_video;          /* -1, or a video this rank found unusable since the last round */
    const char *error;         /* message for failed_video (truncated to DM_H5_MSG_MAX - 1) */
} dm_h5_block;

/* Per-rank statistics (seconds of wall-clock time per stage). */
typedef struct dm_h5_rank_stats {
    int64_t frames;     /* frames written by this rank (context frames excluded) */
    double decode_s;    /* decoding + colour conversion */
    double inference_s; /* networks incl. pre/post-processing */
    double write_s;     /* inside dm_h5_write_round (incl. waiting for other ranks there) */
    double wait_s;      /* waiting for the prefetch thread */
    double total_s;     /* whole run on this rank */
    int64_t verified_frames;   /* output frames recomputed on the CPU and compared (verify) */
    double verify_s;           /* time spent in those CPU recomputes and comparisons */
    int64_t recomputed_frames; /* non-finite frames of a reduced precision redone in float32 */
    char device[128];          /* "cpu", "emulated", or "<GPU name> <UUID>" */
    double device_peak_mb;     /* peak device memory in use (CUDA: total - free), MiB */
    int64_t local_rank;        /* index of the rank among its node's ranks (MPI_COMM_TYPE_SHARED) */
    int64_t local_size;        /* ranks on its node */
    int64_t gpu;               /* device index the rank took (dm_gpu_bind), -1 none; with the
                                  test hook DM_TEST_CUDA_DEVICES the one it would take */
    double write_hidden_s;     /* part of write_s during which the rank's next unit computed
                                  (the write/compute overlap; 0 with DM_OVERLAP=0) */
} dm_h5_rank_stats;

typedef struct dm_h5_file dm_h5_file;

/* Collective. Creates (truncating) `path` with all groups, datasets and attributes; root attr
 * complete = 0. `videos` has n_videos entries (same on every rank). Errors: DM_ERR_H5 /
 * DM_ERR_MPI (e.g. directory not writable), DM_ERR_ARG (bad layout). */
dm_status dm_h5_create(const char *path, MPI_Comm comm, const dm_h5_meta *meta,
                       const dm_h5_layout *layout, const dm_h5_video *videos, int n_videos,
                       dm_h5_file **out);

/* Collective. Opens an existing file for --resume and verifies it matches the job: same
 * format version, number of videos and, per video, source, frames, width, height, failed
 * state, the same datasets with the same dtypes, and the same depth dataset size (H, W).
 * Sets complete = 0 and the status of videos that are not failed at probe back to "pending".
 * Errors: DM_ERR_FORMAT ("PATH: resume mismatch: ..."), DM_ERR_H5. */
dm_status dm_h5_open_resume(const char *path, MPI_Comm comm, const dm_h5_meta *meta,
                            const dm_h5_layout *layout, const dm_h5_video *videos,
                            int n_videos, dm_h5_file **out);

/* Reads the done markers of `video` into done[0..frames) (1 = written). Independent (any rank
 * may call it alone). Videos failed at probe: all zeros. */
dm_status dm_h5_read_done(dm_h5_file *f, int video, uint8_t *done);

/* Collective: one write round (see the header comment). `mine` may be NULL (nothing to write,
 * nothing failed). On return *round_frames (if not NULL) is the number of rows written by all
 * ranks in this round, the same on every rank. Videos reported failed by any rank are marked
 * status "failed" with the first reporting rank's message; afterwards dm_h5_video_failed()
 * returns 1 for them on every rank. */
dm_status dm_h5_write_round(dm_h5_file *f, const dm_h5_block *mine, int64_t *round_frames);

/* 1 if `video` is known failed (at probe, or reported in a completed round), else 0. */
int dm_h5_video_failed(const dm_h5_file *f, int video);

/* Collective: writes the /ranks table from every rank's `mine` (gathered inside). */
dm_status dm_h5_write_stats(dm_h5_file *f, const dm_h5_rank_stats *mine);

/* Collective: adds each rank's per-video counts mine[v] (one per video of the file), summed
 * over the ranks (MPI_Allreduce), to the int64 attribute `name` of /videos/<id> (created at 0
 * when absent: a file written before it existed, or its first run), for every video. Used for
 * recomputed_frames (the non-finite guard's float32 recomputes, docs/output.md); summed over
 * the runs that wrote the file (a resumed chunk's frames may count twice). */
dm_status dm_h5_add_video_counts(dm_h5_file *f, const char *name, const int64_t *mine);

/* Collective: ends the run: videos not failed get status "ok", root attr complete = 1 when no
 * video failed (else 0), root attr failed_videos = their count, then flush. */
dm_status dm_h5_finish(dm_h5_file *f);

/* Collective: closes the file and frees everything. Safe with NULL. Returns the first error
 * of closing. */
dm_status dm_h5_close(dm_h5_file *f);

#endif
