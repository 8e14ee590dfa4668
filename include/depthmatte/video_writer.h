/* depthmatte — encoding for exports: videos (with alpha, with the source's audio) and still
 * images (PNG, EXR), all through FFmpeg's libraries (libavcodec encoders, libavformat muxers,
 * libswscale for RGB->YUV, libswresample for audio re-encoding). No file format is written by
 * hand: a PNG/EXR file is the one packet FFmpeg's png/exr encoder produces.
 *
 * Every output is written under a temporary name in the same folder ("NAME.part-PID") and
 * renamed to its final name only when complete, so a failure (encoder error, disk full) never
 * leaves a half-written file under the final name; the temporary file is removed on failure.
 *
 * Colour: RGB -> YUV uses BT.709 coefficients, limited ("tv") range, for every size, and the
 * streams are tagged so (colour matrix, primaries, transfer = bt709, range = tv), so that a
 * player or our decoder (video.h) converts back with the same matrix. Chroma is subsampled by
 * swscale (bicubic). Alpha planes are not range-scaled: 8-bit alpha is stored as is (yuva420p),
 * 10-bit alpha (yuva444p10le) as round(a * 1023 / 255).
 *
 * Timestamps: frames carry the pts given by the caller in the stream time base given at open
 * (the source's), so frame times equal the source's; the nominal frame rate (fps_num/fps_den)
 * is set on the stream and encoder exactly (30000/1001 stays 30000/1001).
 *
 * Audio: optionally the first audio stream of a source file, restricted to a time range, is
 * copied when the container takes its codec (avformat_query_codec), else decoded and
 * re-encoded (Opus for WebM/Matroska, AAC otherwise). Copy cuts at packet boundaries (an
 * audio frame, ~21 ms for AAC at 48 kHz); re-encoding cuts at the exact sample.
 *
 * Errors (dm_status, message naming the file): DM_ERR_UNSUPPORTED "FILE: FFmpeg has no
 * encoder 'NAME'" (or no muxer / pixel format), DM_ERR_IO (cannot create, write or rename;
 * disk full), DM_ERR_DECODE (audio source unreadable), DM_ERR_ARG, DM_ERR_NOMEM.
 */
#ifndef DEPTHMATTE_VIDEO_WRITER_H
#define DEPTHMATTE_VIDEO_WRITER_H

#include <stdint.h>

#include "depthmatte/status.h"

typedef struct dm_video_writer_opts {
    const char *format;      /* libavformat muxer: "webm", "mp4", "mov" */
    const char *encoder;     /* libavcodec encoder: "libvpx-vp9", "prores_ks", "libx264" */
    const char *pix_fmt;     /* encoder pixel format: "yuva420p", "yuva444p10le", "yuv420p" */
    int width, height;       /* encoded frame size, pixels (even for 4:2:0 formats) */
    int in_width, in_height; /* size of the RGB frames passed in (0: = width, height); swscale
                              * resizes them (bicubic) when different */
    int fps_num, fps_den;    /* nominal frame rate, frames per second = num / den */
    int tb_num, tb_den; /* unit of the pts passed to dm_video_writer_write, seconds = pts*num/den */
    int crf;            /* constant rate factor (libx264, libvpx-vp9); < 0: our default */
    int lossless;       /* libvpx-vp9: lossless=1 (bit-exact YUV and alpha planes) */
    /* Audio: NULL for none; else the first audio stream of this file, restricted to source
     * times [audio_begin_s, audio_end_s) seconds (relative to the video's frame 0, the time
     * origin of the pts above), written at the same times. */
    const char *audio_path;
    double audio_begin_s, audio_end_s;
    double audio_origin_s; /* source time of the video's frame 0 in the audio file's clock, s */
} dm_video_writer_opts;

typedef struct dm_video_writer dm_video_writer;

/* Creates "path.part-PID", opens the encoder and the muxer and writes the header. *w is NULL
 * on error (nothing is left on disk). */
dm_status dm_video_writer_open(dm_video_writer **w, const char *path,
                               const dm_video_writer_opts *o);

/* Encodes one frame: rgb (in_height, in_width, 3) RGB24, alpha (height, width) uint8 or NULL (then
 * opaque, 255, for formats with alpha; alpha needs in size = encoded size), pts in the opts time
 * base, strictly increasing. Audio up to the frame's time is interleaved. */
dm_status dm_video_writer_write(dm_video_writer *w, const uint8_t *rgb, const uint8_t *alpha,
                                int64_t pts);

/* Flushes the encoders, writes the remaining audio and the trailer, closes and renames the
 * temporary file to its final name. Frees w in every case; on error the temporary file is
 * removed. */
dm_status dm_video_writer_finish(dm_video_writer *w);

/* Abandons an open writer: frees it and removes the temporary file. NULL is allowed. */
void dm_video_writer_abort(dm_video_writer *w);

/* Audio stream of a media file (for deciding on audio and for reporting). *has_audio = 0 when
 * the file has none; codec is the decoder name ("aac"), duration_s its duration in seconds. */
dm_status dm_media_audio_info(const char *path, int *has_audio, char codec[32], double *duration_s);

/* Pixel layouts for dm_image_write. */
typedef enum dm_image_kind {
    DM_IMAGE_GRAY8,   /* (H, W) uint8 -> 8-bit greyscale PNG */
    DM_IMAGE_GRAY16,  /* (H, W) uint16, native byte order -> 16-bit greyscale PNG (gray16be) */
    DM_IMAGE_RGB24,   /* (H, W, 3) uint8 -> RGB PNG */
    DM_IMAGE_RGBA,    /* (H, W, 4) uint8, straight (not premultiplied) alpha -> RGBA PNG */
    DM_IMAGE_FLOAT32, /* (H, W) float -> OpenEXR, scanlines, one float32 channel "Z", ZIP
                       * (lossless) */
} dm_image_kind;

/* Writes one image (PNG: FFmpeg's png encoder; EXR: OpenEXRCore) to path (temporary name +
 * rename). Errors: DM_ERR_ARG, DM_ERR_UNSUPPORTED (encoder missing), DM_ERR_IO, DM_ERR_NOMEM,
 * DM_ERR_FORMAT (OpenEXR failure, with its message). */
dm_status dm_image_write(const char *path, dm_image_kind kind, const void *data, int width,
                         int height);

/* Reads the float32 channel "Z" of an OpenEXR file (as dm_image_write writes it) into a new
 * malloc'ed (height, width) buffer *z (caller frees). Errors: DM_ERR_IO, DM_ERR_FORMAT (not
 * EXR, no float channel Z), DM_ERR_NOMEM; *z is NULL then. */
dm_status dm_exr_read_z(const char *path, float **z, int *width, int *height);

/* Temporary name of an output: "path.part-PID" into buf (size n). For callers that write a
 * file themselves (JSON sidecars) and want the same rename rule. */
void dm_output_temp_name(const char *path, char *buf, int n);

#endif
