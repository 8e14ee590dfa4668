/* Internals shared by the src/video sources: the demuxed packet index, input opening, colour
 * conversion. Not a public header. */
#ifndef DM_VIDEO_INTERNAL_H
#define DM_VIDEO_INTERNAL_H

#include <stdint.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "depthmatte/video.h"

/* One packet of the selected stream, in decode (file) order. */
typedef struct dmv_packet {
    int64_t pts, dts; /* AV_NOPTS_VALUE when absent */
    int64_t pos;      /* byte position in the file, -1 when unknown */
    int64_t duration; /* time_base units, 0 when unknown */
    uint8_t key;      /* AV_PKT_FLAG_KEY */
    uint8_t discard;  /* AV_PKT_FLAG_DISCARD: decoded but never shown (edit lists) */
} dmv_packet;

/* How a packet read after a container seek is matched to its index entry. */
enum { DMV_MAP_POS, DMV_MAP_DTS, DMV_MAP_NONE };

typedef struct dmv_index {
    dmv_packet *pkt;      /* (n_pkt,) decode order */
    int64_t n_pkt;
    int64_t *frame_pts;   /* (n_frames,) presentation order, strictly increasing */
    int64_t *frame_pkt;   /* (n_frames,) decode index of the packet holding frame i */
    int64_t *prefix_max;  /* (n_pkt,) max pts of shown packets before decode index d */
    int64_t n_frames;
    int64_t *key_pkt;     /* (n_key,) decode indices of keyframe packets */
    int64_t n_key;
    int64_t *pos_sorted;  /* (n_pkt, 2) (pos, decode index) sorted by pos, for DMV_MAP_POS */
    int map_mode;
    int pts_ok;           /* 0: no usable pts table; frames are counted in output order */
} dmv_index;

/* ---- image sequences (image_seq.c) ---- */
enum { DMV_SEQ_PNG = 0, DMV_SEQ_JPEG = 1 };

typedef struct dmv_seq {
    char *pattern; /* glob given to the image2 demuxer (a folder's is built and escaped) */
    char **files;  /* (n,) frame files in glob order: frame i is files[i] */
    int64_t n;
    int family; /* DMV_SEQ_PNG or DMV_SEQ_JPEG */
} dmv_seq;

/* Lists and checks the frames of a folder or glob (errors name `path` and the file). */
dm_status dmv_seq_list(const char *path, dmv_seq *s);
void dmv_seq_free(dmv_seq *s);
/* File of frame `frame`, NULL when out of range or s is NULL. */
const char *dmv_seq_file(const dmv_seq *s, int64_t frame);

/* Opens `path` and selects the video stream (-1: best). Sets every other stream to
 * AVDISCARD_ALL. With `seq` (an image sequence already listed), opens seq->pattern with the
 * image2 demuxer at frame rate fps_num/fps_den instead. On error *fmt is NULL and the message
 * names the file. */
dm_status dmv_open_input(const char *path, int stream_index, const dmv_seq *seq, int fps_num,
                         int fps_den, AVFormatContext **fmt, int *selected);

/* Demuxes every packet of stream si (fmt is left at end of file) and builds the index.
 * Fails with DM_ERR_FORMAT when the container's sample index points past the end of the
 * file (truncated) or the stream holds no packet. */
dm_status dmv_index_build(const char *path, AVFormatContext *fmt, int si, dmv_index *ix);
void dmv_index_free(dmv_index *ix);

/* Latest keyframe decode index from which frame `frame` is decodable, considering only
 * keyframes with decode index < below (pass INT64_MAX for no bound); -1 if none. */
int64_t dmv_index_start_for(const dmv_index *ix, int64_t frame, int64_t below);

/* Presentation index of a picture with timestamp pts; -1 when not in the table. */
int64_t dmv_index_frame_of_pts(const dmv_index *ix, int64_t pts);

/* Decode index of a packet read from the container; -1 when not found. */
int64_t dmv_index_packet_of(const dmv_index *ix, const AVPacket *p);

/* Fills the stream-level fields of info (everything but what needs decoding). */
void dmv_fill_info(const char *path, AVFormatContext *fmt, int si, const dmv_index *ix,
                   dm_video_info *info);

/* Sets pix_fmt, bit_depth, is_rgb, full_range, color_matrix(_guessed) of info. */
void dmv_describe_format(dm_video_info *info, enum AVPixelFormat pf, enum AVColorRange range,
                         enum AVColorSpace spc, int height);

/* Opens a decoder for stream si (threads 0 = auto). */
dm_status dmv_open_decoder(const char *path, AVFormatContext *fmt, int si, int threads,
                           AVCodecContext **dec);

/* Last FFmpeg error-level log line of this thread ("" if none), and reset. */
const char *dmv_last_av_log(void);
void dmv_clear_av_log(void);
/* Installs the log capture once per process (keeps FFmpeg's own printing). */
void dmv_log_init(void);

/* ---- colour conversion + rotation (video_convert.c) ---- */
typedef struct dmv_converter {
    struct SwsContext *sws;
    int dst_w, dst_h;          /* output size before rotation (0: the frame's own size) */
    int w, h, fmt, range, spc; /* key of the cached context */
    uint8_t *tmp;              /* (h, w, 3) before rotation, only when rotating */
} dmv_converter;

/* Colour matrix (AVColorSpace value usable with sws_getCoefficients) for a stream tagged
 * `spc`, with the HD rule for unspecified ones; *guessed set when the rule chose it. */
int dmv_pick_matrix(enum AVColorSpace spc, int height, int *guessed);
const char *dmv_matrix_name(int spc);
int dmv_is_full_range(enum AVColorRange range, enum AVPixelFormat fmt);

/* Converts a decoded frame to upright RGB24 out ((H, W, 3), output size for `rotation`),
 * scaled to dst_w x dst_h (before rotation) when those are set.
 * Errors name `path` and `frame_index`. */
dm_status dmv_convert(dmv_converter *c, const AVFrame *f, int rotation, uint8_t *out,
                      const char *path, int64_t frame_index);
void dmv_converter_free(dmv_converter *c);

#endif
