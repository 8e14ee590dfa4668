/* Frame-exact video reader: container seek to a keyframe + decode forward + drop frames
 * before the target, with every decoded picture identified through the packet index
 * (video_index.c). See include/depthmatte/video.h for the contract.
 *
 * Robustness rules:
 *  - A container seek is verified: the first packet read afterwards is looked up in the
 *    index; if the demuxer landed after the wanted keyframe, or on an unknown packet, the
 *    reader reopens the file and demuxes forward to it (slow but exact).
 *  - A keyframe flag can lie (a packet flagged key that the decoder cannot start from): if
 *    the target frame then does not come out, or comes out flagged corrupt, the reader
 *    restarts from the previous keyframe, down to the start of the file.
 *  - A frame the decoder does not produce even from the start of the file is an error that
 *    names the frame; it is never replaced by a neighbour.
 */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/rational.h>

#include "video/video_internal.h"

struct dm_video_reader {
    char *path;
    int si, threads;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    int has_pending; /* pkt holds the next packet to send */
    AVFrame *frame;
    dmv_index ix;
    dm_video_info info;
    dmv_converter conv;
    dm_video_options opt;
    dmv_seq seq;   /* image sequences: the frame files (else zeroed) */
    int step;      /* frame k is source frame k * step */
    int64_t n_out; /* frames presented (kept) */
    int src_fps_num, src_fps_den;
    int64_t next;       /* next SOURCE presentation frame to decode and return */
    int64_t next_pkt_d; /* decode index of the next packet the demuxer returns */
    int64_t fed_d;      /* decode index of the last packet sent to the decoder, -1 none */
    int64_t start_d;    /* keyframe the current decode run started from */
    int64_t out_count;  /* pictures output since start_d (used when pts are unusable) */
    int fresh;          /* no frame returned since the last repositioning */
    int flushed;        /* end of data reached, decoder drained */
    int failed;         /* an error happened; a seek is needed */
    int format_known;   /* info pix_fmt/range/matrix taken from a decoded frame */
    int64_t seeks;
    char demux_err[128];
};

/* Error "FILE: frame N (FRAME FILE): cause (ffmpeg: ...)"; N is the source frame. */
static dm_status fail(dm_video_reader *r, dm_status code, int64_t frame, const char *cause) {
    r->failed = 1;
    const char *lib = dmv_last_av_log();
    const char *file = dmv_seq_file(&r->seq, frame);
    return dm_error_set(code, "%s: frame %lld%s%s%s: %s%s%s%s", r->path, (long long)frame,
                        file ? " (" : "", file ? file : "", file ? ")" : "", cause,
                        lib[0] ? " (ffmpeg: " : "", lib, lib[0] ? ")" : "");
}

static const dmv_seq *seq_of(const dm_video_reader *r) {
    return r->opt.images ? &r->seq : NULL;
}

static dm_status reopen(dm_video_reader *r) {
    avformat_close_input(&r->fmt);
    int si = 0;
    dm_status s =
        dmv_open_input(r->path, r->si, seq_of(r), r->opt.fps_num, r->opt.fps_den, &r->fmt, &si);
    r->next_pkt_d = 0;
    r->seeks++;
    return s;
}

/* Reads the next packet of the stream into r->pkt; returns 0, AVERROR_EOF or an error. Sets
 * *d to its decode index (-1 if unknown). */
static int read_packet(dm_video_reader *r, int64_t *d) {
    for (;;) {
        av_packet_unref(r->pkt);
        int err = av_read_frame(r->fmt, r->pkt);
        if (err < 0) return err;
        if (r->pkt->stream_index != r->si || r->pkt->size <= 0) continue;
        int64_t m = r->ix.map_mode == DMV_MAP_NONE ? r->next_pkt_d : dmv_index_packet_of(&r->ix, r->pkt);
        *d = m;
        r->next_pkt_d = m >= 0 ? m + 1 : -1;
        return 0;
    }
}

/* Makes r->pkt the packet with decode index d (pending), the decoder flushed. */
static dm_status position_at(dm_video_reader *r, int64_t d, int64_t frame) {
    avcodec_flush_buffers(r->dec);
    r->has_pending = 0;
    r->flushed = 0;
    r->fed_d = -1;
    r->out_count = 0;
    r->fresh = 1;
    r->start_d = d;
    int64_t got = -1;
    int err = -1;
    /* Also for d == 0 (the start): a verified seek avoids reopening the file, which would
     * repeat avformat_find_stream_info. */
    if (r->ix.map_mode != DMV_MAP_NONE) {
        const dmv_packet *p = &r->ix.pkt[d];
        int64_t ts = p->dts != AV_NOPTS_VALUE ? p->dts : p->pts;
        r->seeks++;
        if (av_seek_frame(r->fmt, r->si, ts, AVSEEK_FLAG_BACKWARD) >= 0) {
            err = read_packet(r, &got);
            while (err == 0 && got >= 0 && got < d) err = read_packet(r, &got);
        }
    }
    if (err != 0 || got != d) {
        /* No usable packet mapping, seek failed, or landed after/outside the index. */
        dm_status s = reopen(r);
        if (s != DM_OK) {
            r->failed = 1;
            return s;
        }
        do {
            err = read_packet(r, &got);
        } while (err == 0 && got < d && got >= 0);
        if (err != 0 || got != d)
            return fail(r, DM_ERR_DECODE, frame, "cannot position the demuxer on its keyframe");
    }
    r->has_pending = 1;
    return DM_OK;
}

int dm_video_frame_step(int fps_num, int fps_den, double target_fps) {
    if (!(target_fps > 0.0) || fps_num <= 0 || fps_den <= 0) return 1;
    /* Python's round(): nearest, ties to even (the default rounding mode of nearbyint). */
    const int mode = fegetround();
    fesetround(FE_TONEAREST);
    double step = nearbyint((double)fps_num / fps_den / target_fps);
    fesetround(mode);
    return step < 1.0 ? 1 : step > 1e9 ? 1000000000 : (int)step;
}

/* round half to even, then up to even (utils/dc_utils.py: ensure_even(round(x * scale))). */
static int even_side(double x) {
    const int mode = fegetround();
    fesetround(FE_TONEAREST);
    int v = (int)nearbyint(x);
    fesetround(mode);
    if (v < 2) v = 2;
    return v % 2 ? v + 1 : v;
}

void dm_video_scaled_size(int width, int height, int max_res, int *out_width, int *out_height) {
    *out_width = width, *out_height = height;
    const int longer = width > height ? width : height;
    if (max_res <= 0 || longer <= max_res) return;
    const double scale = (double)max_res / longer;
    *out_height = even_side(height * scale);
    *out_width = even_side(width * scale);
}

/* Applies the selection and scaling of r->opt to r->info (the stream's description). */
static void select_frames(dm_video_reader *r) {
    dm_video_info *in = &r->info;
    r->src_fps_num = in->fps_num, r->src_fps_den = in->fps_den;
    in->source_frames = in->frames;
    in->source_fps_num = in->fps_num, in->source_fps_den = in->fps_den;
    in->source_width = in->width, in->source_height = in->height;
    in->images = r->opt.images;
    r->step = r->opt.frame_step > 0
                  ? r->opt.frame_step
                  : dm_video_frame_step(in->fps_num, in->fps_den, r->opt.target_fps);
    in->frame_step = r->step;
    r->n_out = (in->frames + r->step - 1) / r->step;
    in->frames = r->n_out;
    if (r->step > 1 && in->fps_num > 0)
        av_reduce(&in->fps_num, &in->fps_den, in->fps_num, (int64_t)in->fps_den * r->step,
                  INT32_MAX);
    int w, h;
    dm_video_scaled_size(in->width, in->height, r->opt.max_res, &w, &h);
    if (w != in->width || h != in->height) {
        const int swap = in->rotation == 90 || in->rotation == 270;
        r->conv.dst_w = swap ? h : w; /* the scaler works before the rotation */
        r->conv.dst_h = swap ? w : h;
        in->width = w, in->height = h;
    }
}

dm_status dm_video_open_opts(dm_video_reader **out, const char *path, const dm_video_options *o) {
    static const dm_video_options defaults = DM_VIDEO_OPTIONS_INIT;
    if (!out || !path) return dm_error_set(DM_ERR_ARG, "dm_video_open: NULL argument");
    *out = NULL;
    if (!o) o = &defaults;
    if (o->images && (o->fps_num <= 0 || o->fps_den <= 0))
        return dm_error_set(DM_ERR_ARG,
                            "%s: image sequence without a frame rate (images carry "
                            "none: give fps)",
                            path);
    if (o->target_fps < 0.0 || !isfinite(o->target_fps) || o->max_res < 0 || o->frame_step < 0)
        return dm_error_set(DM_ERR_ARG, "%s: negative target_fps, max_res or frame_step", path);
    dm_video_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    r->opt = *o;
    r->threads = o->threads;
    r->step = 1;
    dm_status s = o->images ? dmv_seq_list(path, &r->seq) : DM_OK;
    if (s == DM_OK)
        s = dmv_open_input(path, o->stream_index, seq_of(r), o->fps_num, o->fps_den, &r->fmt,
                           &r->si);
    if (s == DM_OK) s = dmv_index_build(path, r->fmt, r->si, &r->ix);
    if (s == DM_OK && o->images && r->ix.n_frames != r->seq.n) {
        /* image2 ends the sequence at a file it cannot read */
        const char *f = dmv_seq_file(&r->seq, r->ix.n_frames);
        s = dm_error_set(DM_ERR_IO,
                         "%s: image sequence: frame %lld (%s) cannot be read (%lld "
                         "of %lld files demuxed)",
                         path, (long long)r->ix.n_frames, f ? f : "?", (long long)r->ix.n_frames,
                         (long long)r->seq.n);
    }
    if (s == DM_OK) {
        dmv_fill_info(path, r->fmt, r->si, &r->ix, &r->info);
        select_frames(r);
        s = dmv_open_decoder(path, r->fmt, r->si, r->threads, &r->dec);
    }
    if (s == DM_OK) {
        r->pkt = av_packet_alloc();
        r->frame = av_frame_alloc();
        if (!r->pkt || !r->frame) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (s == DM_OK) s = position_at(r, 0, 0);
    if (s != DM_OK) {
        dm_video_close(r);
        return s;
    }
    r->seeks = 0;
    *out = r;
    return DM_OK;
}

dm_status dm_video_open(dm_video_reader **out, const char *path, int stream_index, int threads) {
    dm_video_options o = DM_VIDEO_OPTIONS_INIT;
    o.stream_index = stream_index;
    o.threads = threads;
    return dm_video_open_opts(out, path, &o);
}

int64_t dm_video_source_frame(const dm_video_reader *r, int64_t i) {
    return i >= 0 && i < r->n_out ? i * r->step : -1;
}

const dm_video_info *dm_video_reader_info(const dm_video_reader *r) {
    return &r->info;
}

int64_t dm_video_frame_pts(const dm_video_reader *r, int64_t i) {
    if (!r->ix.pts_ok || i < 0 || i >= r->n_out) return INT64_MIN;
    return r->ix.frame_pts[i * r->step];
}

int64_t dm_video_reader_seeks(const dm_video_reader *r) {
    return r->seeks;
}

dm_status dm_video_seek(dm_video_reader *r, int64_t k) {
    if (k < 0 || k > r->n_out)
        return dm_error_set(DM_ERR_ARG, "%s: seek to frame %lld out of range [0, %lld]", r->path,
                            (long long)k, (long long)r->n_out);
    int64_t frame = k * r->step; /* the source frame */
    if (k == r->n_out) frame = r->ix.n_frames;
    if (frame == r->ix.n_frames) {
        r->next = frame;
        return DM_OK;
    }
    int64_t d = dmv_index_start_for(&r->ix, frame, INT64_MAX);
    if (d < 0) d = 0;
    /* Already decoding a run that passes through `frame`: just drop frames up to it. */
    if (!r->failed && frame >= r->next && r->start_d <= d &&
        (r->fed_d >= d || (r->has_pending && r->start_d == d))) {
        r->next = frame;
        return DM_OK;
    }
    r->failed = 0;
    r->next = frame;
    return position_at(r, d, frame);
}

/* Restarts the current run (started at keyframe start_d > 0) from an earlier keyframe. */
static dm_status retry_earlier(dm_video_reader *r) {
    int64_t d = dmv_index_start_for(&r->ix, r->next, r->start_d);
    return position_at(r, d < 0 ? 0 : d, r->next);
}

static int64_t frame_of(dm_video_reader *r, const AVFrame *f, int64_t *pts) {
    int64_t t = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
    *pts = t;
    if (!r->ix.pts_ok) return r->out_count++;
    return t == AV_NOPTS_VALUE ? -1 : dmv_index_frame_of_pts(&r->ix, t);
}

/* Feeds the decoder one packet (or the end-of-stream flush). */
static dm_status feed(dm_video_reader *r) {
    int64_t d = -1;
    int err = 0;
    if (!r->has_pending) {
        err = read_packet(r, &d);
        if (err < 0 && err != AVERROR_EOF)
            snprintf(r->demux_err, sizeof r->demux_err, "demuxing stopped: %s", av_err2str(err));
    } else {
        d = r->start_d; /* the pending packet is the keyframe position_at() stopped on */
    }
    r->has_pending = 0;
    if (err < 0) {
        r->flushed = 1;
        err = avcodec_send_packet(r->dec, NULL);
        return err < 0 && err != AVERROR_EOF ? fail(r, DM_ERR_DECODE, r->next, "decoder flush failed")
                                             : DM_OK;
    }
    r->fed_d = d >= 0 ? d : r->fed_d + 1;
    err = avcodec_send_packet(r->dec, r->pkt);
    av_packet_unref(r->pkt);
    /* Damaged packets (AVERROR_INVALIDDATA) are not fatal here: a frame they should have
     * produced is reported missing by its number below. */
    if (err < 0 && err != AVERROR_INVALIDDATA && err != AVERROR(EAGAIN))
        return fail(r, DM_ERR_DECODE, r->next, av_err2str(err));
    return DM_OK;
}

static dm_status emit(dm_video_reader *r, const AVFrame *f, int64_t pts, uint8_t *rgb,
                      int64_t *frame_index, int64_t *pts_out, double *time_s) {
    if (f->width != r->info.coded_width || f->height != r->info.coded_height) {
        char cause[96];
        snprintf(cause, sizeof cause, "frame size changed from %dx%d to %dx%d (unsupported)",
                 r->info.coded_width, r->info.coded_height, f->width, f->height);
        return fail(r, DM_ERR_DECODE, r->next, cause);
    }
    if (!r->format_known) {
        dmv_describe_format(&r->info, f->format, f->color_range, f->colorspace, f->height);
        r->format_known = 1;
    }
    dm_status s = dmv_convert(&r->conv, f, r->info.rotation, rgb, r->path, r->next);
    if (s != DM_OK) {
        r->failed = 1;
        return s;
    }
    double tb = (double)r->info.time_base_num / r->info.time_base_den;
    if (frame_index) *frame_index = r->next / r->step;
    if (pts_out) *pts_out = pts;
    if (time_s)
        *time_s =
            r->ix.pts_ok
                ? (double)(pts - r->info.start_pts) * tb
                : (r->src_fps_num > 0 ? (double)r->next * r->src_fps_den / r->src_fps_num : 0.0);
    r->next += r->step; /* the frames in between are decoded and dropped unconverted */
    r->fresh = 0;
    return DM_OK;
}

dm_status dm_video_read(dm_video_reader *r, uint8_t *rgb, int64_t *frame_index, int64_t *pts,
                        double *time_s) {
    if (r->failed)
        return dm_error_set(DM_ERR_ARG, "%s: reader is in an error state; seek first", r->path);
    if (r->next >= r->ix.n_frames) return DM_VIDEO_END;
    dmv_clear_av_log();
    for (;;) {
        int err = avcodec_receive_frame(r->dec, r->frame);
        if (err == AVERROR(EAGAIN)) {
            dm_status s = feed(r);
            if (s != DM_OK) return s;
            continue;
        }
        if (err == AVERROR_EOF) {
            if (r->fresh && r->start_d > 0) {
                dm_status s = retry_earlier(r);
                if (s != DM_OK) return s;
                continue;
            }
            char cause[224];
            snprintf(cause, sizeof cause,
                     "the stream ended after %lld of the %lld indexed frames%s%s", (long long)r->next,
                     (long long)r->ix.n_frames, r->demux_err[0] ? "; " : "", r->demux_err);
            return fail(r, DM_ERR_DECODE, r->next, cause);
        }
        if (err < 0) return fail(r, DM_ERR_DECODE, r->next, av_err2str(err));
        int64_t t = 0, j = frame_of(r, r->frame, &t);
        int corrupt = (r->frame->flags & AV_FRAME_FLAG_CORRUPT) || r->frame->decode_error_flags;
        if (j < 0 || j < r->next) { /* unindexed picture, or before the target: drop */
            av_frame_unref(r->frame);
            continue;
        }
        if (j > r->next || corrupt) {
            if (r->fresh && r->start_d > 0) { /* maybe a lying keyframe: start earlier */
                av_frame_unref(r->frame);
                dm_status s = retry_earlier(r);
                if (s != DM_OK) return s;
                continue;
            }
            if (j > r->next) {
                av_frame_unref(r->frame);
                char cause[160];
                snprintf(cause, sizeof cause,
                         "the decoder produced no picture for frames %lld-%lld (damaged or "
                         "missing data; next decodable frame: %lld)",
                         (long long)r->next, (long long)j - 1, (long long)j);
                return fail(r, DM_ERR_DECODE, r->next, cause);
            }
            /* Corrupt even when decoded from the start of the file: that is what a full
             * decode shows (FFmpeg conceals the damage), so it is returned. */
        }
        /* JFIF is BT.601; the MJPEG decoder leaves the matrix unspecified (the HD rule would
         * pick BT.709 for large frames). */
        if (r->opt.images && r->seq.family == DMV_SEQ_JPEG &&
            r->frame->colorspace == AVCOL_SPC_UNSPECIFIED)
            r->frame->colorspace = AVCOL_SPC_BT470BG;
        dm_status s = emit(r, r->frame, t, rgb, frame_index, pts, time_s);
        av_frame_unref(r->frame);
        return s;
    }
}

void dm_video_close(dm_video_reader *r) {
    if (!r) return;
    avformat_close_input(&r->fmt);
    avcodec_free_context(&r->dec);
    av_packet_free(&r->pkt);
    av_frame_free(&r->frame);
    dmv_index_free(&r->ix);
    dmv_converter_free(&r->conv);
    dmv_seq_free(&r->seq);
    free(r->path);
    free(r);
}
