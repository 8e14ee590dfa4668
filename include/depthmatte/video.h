/* depthmatte — video probing and frame-accurate decoding (FFmpeg: libavformat, libavcodec,
 * libswscale).
 *
 * Frame numbers are presentation frames: frame i is the i-th picture a full sequential decode
 * shows (ffprobe -count_frames order). At open, every packet of the stream is demuxed once
 * (no decoding) to build an index: each packet's pts/dts/byte position/keyframe flag, and
 * the presentation-order table of frame timestamps. A decoded picture is identified by
 * looking its pts up in that table, so a seek is frame-exact whatever the container's own
 * seeking does: seek to a keyframe at or before the target, decode forward, drop frames
 * before the target (the approach of FFmpeg's `-ss` with `-accurate_seek`, made exact by the
 * index). A frame the decoder does not produce (damaged data) is an error, never silently
 * skipped or duplicated.
 *
 * Output frames are RGB24 (H, W, 3), row-major, upright:
 *  - rotation: the display matrix is applied as the ffmpeg CLI's autorotate does (90/270:
 *    exact transposes, 180: both flips); width/height are the rotated size.
 *  - colour: YUV->RGB uses the frame's colour matrix and range (full range for yuvj* and
 *    color_range=pc). When the matrix is unspecified: BT.709 if the stored height >= 720
 *    (HD), else BT.601 — the project's rule (DESIGN.md), what players such as mpv do. NOTE:
 *    the ffmpeg 5.1 CLI uses BT.601 for every unspecified stream, so outputs differ from
 *    `ffmpeg -pix_fmt rgb24` on untagged HD streams only. Scaler flags mirror the CLI
 *    (bicubic, MPEG-2 chroma siting for yuv420p) so that tagged streams match it.
 *  - non-square pixels: NOT resampled. Frames are the stored pixels; the sample aspect
 *    ratio is recorded (sar_num/sar_den) so that a consumer that resizes anyway (every
 *    model does) can fold the aspect correction into its one resize.
 *  - alpha planes (VP9 alpha in WebM) are ignored: FFmpeg's native VP9 decoder drops them.
 *
 * Limits: one picture per packet is assumed (true for MP4/MKV/WebM/AVI and frame-coded TS);
 * field-coded streams (two packets per frame) are reported as missing frames, never mis-
 * numbered. A reader is used by one thread at a time; separate readers run concurrently.
 *
 * Selection and scaling (dm_video_options, the rules of the official Video Depth Anything tools,
 * utils/dc_utils.py read_video_frames): a reader opened with target_fps / max_res presents only
 * the kept frames, at the scaled size, as the video: frames, frame numbers, seeks, fps, width
 * and height all describe the kept, scaled frames; dm_video_source_frame() and the pts/time_s
 * of each frame say where it came from in the source.
 *  - target_fps: step = max(1, round(source fps / target_fps)) (round half to even, Python's
 *    round), frames 0, step, 2*step, ... of the source are kept (frame k = source frame k*step).
 *  - max_res: when max(W, H) > max_res, scale = max_res / max(W, H), and each side becomes
 *    round(side * scale) (half to even) plus 1 when odd (official ensure_even); an even
 *    max_res therefore bounds the longer side. The scaling is the swscale pass that converts to
 *    RGB (bicubic, as the ffmpeg CLI's scale filter), applied to the upright size.
 *  - image sequences (options.images): `path` is a folder of PNG or JPEG frames (one
 *    extension) or a glob ("frames/f_*.png", brace patterns allowed); frames are the matching
 *    files in glob order (sorted by name), at the frame rate given in the options (required:
 *    images carry none). FFmpeg's image2 demuxer and PNG/MJPEG decoders read them; JPEG frames
 *    without a colour tag are BT.601 (JFIF). Alpha channels are dropped. Errors name the
 *    folder/pattern and the file: nothing matched, empty or unreadable file, mixed PNG and JPEG,
 *    a frame of another size (at decode time), no frame rate.
 *
 * Errors name the file: DM_ERR_IO (missing/unreadable), DM_ERR_FORMAT (not a media file,
 * no video stream, stream index out of range, truncated file), DM_ERR_UNSUPPORTED (no
 * decoder for the codec), DM_ERR_DECODE ("FILE: frame N: cause"), DM_ERR_ARG, DM_ERR_NOMEM.
 */
#ifndef DEPTHMATTE_VIDEO_H
#define DEPTHMATTE_VIDEO_H

#include <stdint.h>

#include "depthmatte/status.h"

/* dm_video_read's return value at the end of the stream: not an error, no frame written.
 * Deliberately outside the dm_status error codes so it can never be mistaken for one. */
#define DM_VIDEO_END ((dm_status)64)

typedef struct dm_video_info {
    char path[1024];
    int stream_index;      /* container stream index (as ffprobe's "index") */
    int video_streams;     /* number of video streams in the file (attached pictures excluded) */
    int64_t frames;        /* presentation frames a full decode yields */
    int64_t container_frames; /* frames the container header claims, 0 if it does not say */
    int64_t packets;       /* packets of the stream in the file (decode order) */
    int64_t keyframes;     /* packets flagged as keyframes */
    int fps_num, fps_den;  /* nominal frame rate, frames per second = num/den */
    int variable_fps;      /* 1 when frame durations differ (read each frame's pts) */
    int time_base_num, time_base_den; /* pts unit, seconds = pts * num / den */
    int64_t start_pts;     /* pts of frame 0, time_base units */
    double duration_s;     /* from frame 0's pts to the end of the last frame, seconds */
    char codec[32];        /* decoder codec name ("h264", "hevc", "vp9", "av1", "ffv1", ...) */
    int width, height;     /* size of the OUTPUT frames (after rotation), pixels */
    int coded_width, coded_height; /* stored (decoded, cropped) size before rotation, pixels */
    int rotation;          /* degrees clockwise applied to make frames upright: 0/90/180/270 */
    int sar_num, sar_den;  /* sample (pixel) aspect ratio, 1:1 when unknown */
    char pix_fmt[32];      /* decoder pixel format ("yuv420p", "yuv420p10le", "bgr0", ...) */
    int bit_depth;         /* bits per component of pix_fmt */
    int full_range;        /* 1: full (pc/jpeg) range, 0: limited (tv) range or RGB source */
    int is_rgb;            /* 1 when the stream stores RGB (no matrix involved) */
    char color_matrix[16]; /* matrix used for YUV->RGB: "bt709", "bt601", "bt2020", ... */
    int color_matrix_guessed; /* 1 when the stream does not tag it and the HD rule chose it */
    int has_b_frames;      /* decoder reorder depth (0: decode order == presentation order) */
    /* Selection and scaling (all 0 from the plain dm_video_probe/dm_video_open: then frames,
     * fps, width, height are the source's). */
    int images;            /* 1: an image sequence (folder or glob of PNG/JPEG files) */
    int frame_step;        /* frame k is source frame k * frame_step (1: every frame) */
    int64_t source_frames; /* presentation frames of the source before selection */
    int source_fps_num, source_fps_den; /* source frame rate (fps = source / frame_step) */
    int source_width, source_height;    /* upright source size before max_res, pixels */
} dm_video_info;

/* How a reader presents a source (see "Selection and scaling" above). A zeroed struct is not
 * valid: start from DM_VIDEO_OPTIONS_INIT. */
typedef struct dm_video_options {
    int stream_index;     /* -1: FFmpeg's best video stream, else the container index */
    int threads;          /* decoder threads, 0 = auto */
    int images;           /* 1: `path` is an image sequence (dm_video_is_image_sequence) */
    int fps_num, fps_den; /* frame rate of an image sequence, frames/s = num/den (> 0) */
    double target_fps;    /* > 0: keep every round(source fps / target_fps)-th frame; 0: all */
    int max_res;          /* > 0: longer side at most max_res (even sizes); 0: source size */
    int frame_step;       /* > 0: keep every frame_step-th frame (overrides target_fps: reopening
                           * a source as a recorded run did, dm_h5r_video.frame_step) */
} dm_video_options;

#define DM_VIDEO_OPTIONS_INIT                                                                      \
    { -1, 0, 0, 0, 1, 0.0, 0, 0 }

/* 1 when `path` names an image sequence: an existing folder, or (no such file) a path holding
 * glob characters * ? [ {. An existing regular file is always a video. */
int dm_video_is_image_sequence(const char *path);

/* The official frame step: max(1, round(fps / target_fps)) with fps = fps_num / fps_den and
 * round half to even; 1 when target_fps <= 0 or the rate is unknown (fps_num <= 0). */
int dm_video_frame_step(int fps_num, int fps_den, double target_fps);

/* The official max_res size rule for an upright W x H frame (pixels): out = in when
 * max_res <= 0 or max(W, H) <= max_res. */
void dm_video_scaled_size(int width, int height, int max_res, int *out_width, int *out_height);

/* Probes `path`: opens the container, selects the stream (stream_index = -1: FFmpeg's best
 * video stream; else the container index of a video stream), demuxes every packet once to
 * count frames and check for truncation, and decodes the first frame to check that the
 * stream starts decodable. Costs one demux pass plus one GOP of decoding.
 * Errors: DM_ERR_IO, DM_ERR_FORMAT ("FILE: stream 7 does not exist (file has 6 streams)",
 * "FILE: truncated: ..."), DM_ERR_UNSUPPORTED, DM_ERR_DECODE ("FILE: frame 0: ..."). */
dm_status dm_video_probe(const char *path, int stream_index, dm_video_info *info);

typedef struct dm_video_reader dm_video_reader;

/* Opens a reader (stream_index as in dm_video_probe; threads: decoder threads, 0 = auto).
 * Builds the packet index; the first read returns frame 0. *r is NULL on error. */
dm_status dm_video_open(dm_video_reader **r, const char *path, int stream_index, int threads);

/* dm_video_open / dm_video_probe with selection, scaling and image sequences (options NULL:
 * DM_VIDEO_OPTIONS_INIT). Extra errors: DM_ERR_ARG (image sequence without a frame rate,
 * negative target_fps/max_res), and those of image sequences (see above). */
dm_status dm_video_open_opts(dm_video_reader **r, const char *path, const dm_video_options *o);
dm_status dm_video_probe_opts(const char *path, const dm_video_options *o, dm_video_info *info);

/* Source frame number of frame i (i * frame_step), -1 when i is out of range. */
int64_t dm_video_source_frame(const dm_video_reader *r, int64_t i);

/* The probe information of an open reader (valid until dm_video_close). */
const dm_video_info *dm_video_reader_info(const dm_video_reader *r);

/* Presentation timestamp of frame i (time_base units), from the index without decoding;
 * INT64_MIN when i is out of range or the stream has no usable timestamps. */
int64_t dm_video_frame_pts(const dm_video_reader *r, int64_t i);

/* Positions the reader so that the next dm_video_read returns presentation frame `frame`
 * exactly (0 <= frame < frames; frame == frames makes the next read return DM_VIDEO_END).
 * Seeking forward within the current GOP just decodes on; otherwise it seeks the container
 * to the latest keyframe from which `frame` is decodable. Errors: DM_ERR_ARG (out of range),
 * DM_ERR_DECODE (the container cannot be positioned). */
dm_status dm_video_seek(dm_video_reader *r, int64_t frame);

/* Decodes the next frame into rgb, (height, width, 3) RGB24 of the OUTPUT size (info
 * width/height, after rotation). Optional outputs (may be NULL): *frame_index (presentation
 * frame number), *pts (stream time_base units), *time_s (seconds since frame 0).
 * Returns DM_OK, DM_VIDEO_END after the last frame, or DM_ERR_DECODE "FILE: frame N: cause"
 * (frame missing from the decoder's output, size change mid-stream, demux/decoder failure).
 * After an error the reader must be re-seeked or closed. */
dm_status dm_video_read(dm_video_reader *r, uint8_t *rgb, int64_t *frame_index, int64_t *pts,
                        double *time_s);

/* Closes the reader; NULL is allowed. */
void dm_video_close(dm_video_reader *r);

/* Number of container seeks performed so far (for tests and statistics). */
int64_t dm_video_reader_seeks(const dm_video_reader *r);

#endif
