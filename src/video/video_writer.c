/* Video encoding for exports (include/depthmatte/video_writer.h): RGB(+alpha) frames ->
 * libavcodec encoder -> libavformat muxer, with the source's audio copied or re-encoded
 * (src/video/audio_writer.c). Written to "NAME.part-PID", renamed when complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "video/video_writer_internal.h"

void dm_output_temp_name(const char *path, char *buf, int n) {
    snprintf(buf, (size_t)n, "%s.part-%ld", path, (long)getpid());
}

struct dm_video_writer {
    char path[1024], tmp[1100];
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVFrame *rgb; /* padded RGB24 copy of the input (swscale's SIMD reads past row ends) */
    AVPacket *pkt;
    struct SwsContext *sws;
    int alpha_plane; /* 1: the pixel format has an alpha plane (plane 3) */
    int alpha_bits;  /* 8 or 10 */
    int64_t last_pts;
    int frames;
    dmv_audio *audio;
};

static dm_status av_fail(dm_status code, const char *path, const char *what, int err) {
    return dm_error_set(code, "%s: %s: %s", path, what, av_err2str(err));
}

/* Writes every packet the encoder has ready (flush: after avcodec_send_frame(NULL)). */
static dm_status drain(dm_video_writer *w) {
    for (;;) {
        int err = avcodec_receive_packet(w->enc, w->pkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return DM_OK;
        if (err < 0) return av_fail(DM_ERR_IO, w->path, "encoder", err);
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        double t = (double)w->pkt->dts * av_q2d(w->st->time_base);
        if (w->audio) {
            dm_status s = dmv_audio_pump(w->audio, w->fmt, t);
            if (s != DM_OK) return s;
        }
        err = av_interleaved_write_frame(w->fmt, w->pkt);
        if (err < 0) return av_fail(DM_ERR_IO, w->path, "write failed", err);
    }
}

static void writer_free(dm_video_writer *w, int remove_tmp) {
    if (!w) return;
    dmv_audio_free(w->audio);
    if (w->fmt && w->fmt->pb) avio_closep(&w->fmt->pb);
    avformat_free_context(w->fmt);
    avcodec_free_context(&w->enc);
    av_frame_free(&w->frame);
    av_frame_free(&w->rgb);
    av_packet_free(&w->pkt);
    sws_freeContext(w->sws);
    if (remove_tmp) unlink(w->tmp);
    free(w);
}

void dm_video_writer_abort(dm_video_writer *w) {
    writer_free(w, 1);
}

static dm_status open_encoder(dm_video_writer *w, const dm_video_writer_opts *o) {
    const AVCodec *codec = avcodec_find_encoder_by_name(o->encoder);
    if (!codec)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: this FFmpeg build has no encoder '%s'",
                            w->path, o->encoder);
    enum AVPixelFormat pf = av_get_pix_fmt(o->pix_fmt);
    int pf_ok = 0;
    for (const enum AVPixelFormat *p = codec->pix_fmts; p && *p != AV_PIX_FMT_NONE; p++)
        pf_ok |= *p == pf;
    if (pf == AV_PIX_FMT_NONE || !pf_ok)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: encoder '%s' does not take pixel format %s",
                            w->path, o->encoder, o->pix_fmt);
    w->enc = avcodec_alloc_context3(codec);
    if (!w->enc) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", w->path);
    AVCodecContext *e = w->enc;
    e->width = o->width;
    e->height = o->height;
    e->pix_fmt = pf;
    e->time_base = (AVRational){o->tb_num, o->tb_den};
    e->framerate = (AVRational){o->fps_num, o->fps_den};
    e->sample_aspect_ratio = (AVRational){1, 1};
    e->color_range = AVCOL_RANGE_MPEG;
    e->colorspace = AVCOL_SPC_BT709;
    e->color_primaries = AVCOL_PRI_BT709;
    e->color_trc = AVCOL_TRC_BT709;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    e->flags |= AV_CODEC_FLAG_BITEXACT;
    AVDictionary *d = NULL;
    char crf[16];
    if (!strcmp(o->encoder, "libvpx-vp9")) {
        snprintf(crf, sizeof crf, "%d", o->crf >= 0 ? o->crf : 30);
        if (!o->lossless) av_dict_set(&d, "crf", crf, 0);
        av_dict_set(&d, "b", "0", 0); /* constant quality */
        av_dict_set(&d, "deadline", "good", 0);
        av_dict_set(&d, "cpu-used", "4", 0);
        av_dict_set(&d, "row-mt", "1", 0);
        if (o->lossless) av_dict_set(&d, "lossless", "1", 0);
    } else if (!strcmp(o->encoder, "libx264")) {
        snprintf(crf, sizeof crf, "%d", o->crf >= 0 ? o->crf : 18);
        av_dict_set(&d, "crf", crf, 0);
        av_dict_set(&d, "preset", "medium", 0);
    } else if (!strcmp(o->encoder, "prores_ks")) {
        av_dict_set(&d, "profile", "4444", 0);
        av_dict_set(&d, "alpha_bits", "16", 0);
        e->codec_tag = MKTAG('a', 'p', '4', 'h');
    }
    av_dict_set(&d, "threads", "auto", 0);
    int err = avcodec_open2(e, codec, &d);
    av_dict_free(&d);
    if (err < 0) return av_fail(DM_ERR_UNSUPPORTED, w->path, o->encoder, err);
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(pf);
    w->alpha_plane = (desc->flags & AV_PIX_FMT_FLAG_ALPHA) != 0;
    w->alpha_bits = desc->comp[0].depth;
    /* RGB24 -> the same format without alpha (planes 0-2 have the same layout) */
    enum AVPixelFormat yuv = pf == AV_PIX_FMT_YUVA420P       ? AV_PIX_FMT_YUV420P
                             : pf == AV_PIX_FMT_YUVA444P10LE ? AV_PIX_FMT_YUV444P10LE
                                                             : pf;
    int iw = o->in_width > 0 ? o->in_width : o->width,
        ih = o->in_height > 0 ? o->in_height : o->height;
    w->sws = sws_getContext(iw, ih, AV_PIX_FMT_RGB24, o->width, o->height, yuv, SWS_BICUBIC, NULL,
                            NULL, NULL);
    if (!w->sws)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: swscale cannot convert rgb24 to %s", w->path,
                            av_get_pix_fmt_name(yuv));
    const int *bt709 = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(w->sws, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);
    w->frame = av_frame_alloc();
    if (!w->frame) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", w->path);
    w->frame->format = pf;
    w->frame->width = o->width;
    w->frame->height = o->height;
    err = av_frame_get_buffer(w->frame, 0);
    w->rgb = av_frame_alloc();
    if (err >= 0 && !w->rgb) err = AVERROR(ENOMEM);
    if (err >= 0) {
        w->rgb->format = AV_PIX_FMT_RGB24;
        w->rgb->width = o->in_width > 0 ? o->in_width : o->width;
        w->rgb->height = o->in_height > 0 ? o->in_height : o->height;
        err = av_frame_get_buffer(w->rgb, 0);
    }
    if (err < 0) return av_fail(DM_ERR_NOMEM, w->path, "frame buffer", err);
    return DM_OK;
}

dm_status dm_video_writer_open(dm_video_writer **out, const char *path,
                               const dm_video_writer_opts *o) {
    *out = NULL;
    if (!path || !o || o->width <= 0 || o->height <= 0 || o->fps_num <= 0 || o->fps_den <= 0 ||
        o->tb_num <= 0 || o->tb_den <= 0)
        return dm_error_set(DM_ERR_ARG, "%s: bad video writer arguments", path ? path : "?");
    dm_video_writer *w = calloc(1, sizeof *w);
    if (!w) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    dm_output_temp_name(path, w->tmp, sizeof w->tmp);
    w->last_pts = INT64_MIN;
    dmv_log_init();
    dm_status s = DM_OK;
    int err = avformat_alloc_output_context2(&w->fmt, NULL, o->format, w->tmp);
    if (err < 0 || !w->fmt) {
        free(w);
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: this FFmpeg build has no muxer '%s'", path,
                            o->format);
    }
    /* Same input, same bytes: no random Matroska segment UID, no version strings, so that
     * exports are reproducible (an N-rank export equals the one-rank one file for file). */
    w->fmt->flags |= AVFMT_FLAG_BITEXACT;
    /* Keep the source's times: libavformat would otherwise shift every stream when the audio
     * encoder's priming makes the first audio timestamp negative (Opus pre-skip). */
    w->fmt->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
    w->pkt = av_packet_alloc();
    if (!w->pkt) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    if (s == DM_OK) s = open_encoder(w, o);
    if (s == DM_OK) {
        w->st = avformat_new_stream(w->fmt, NULL);
        if (!w->st) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (s == DM_OK) {
        err = avcodec_parameters_from_context(w->st->codecpar, w->enc);
        if (err < 0) s = av_fail(DM_ERR_UNSUPPORTED, path, "stream parameters", err);
        w->st->time_base = w->enc->time_base;
        w->st->avg_frame_rate = w->enc->framerate;
        w->st->r_frame_rate = w->enc->framerate;
    }
    if (s == DM_OK && o->audio_path)
        s = dmv_audio_open(&w->audio, w->fmt, path, o->audio_path, o->audio_origin_s,
                           o->audio_begin_s, o->audio_end_s);
    if (s == DM_OK) {
        err = avio_open(&w->fmt->pb, w->tmp, AVIO_FLAG_WRITE);
        if (err < 0) s = av_fail(DM_ERR_IO, path, "cannot create", err);
    }
    if (s == DM_OK) {
        err = avformat_write_header(w->fmt, NULL);
        if (err < 0) s = av_fail(DM_ERR_IO, path, "cannot write header", err);
    }
    if (s != DM_OK) {
        writer_free(w, 1);
        return s;
    }
    *out = w;
    return DM_OK;
}

dm_status dm_video_writer_write(dm_video_writer *w, const uint8_t *rgb, const uint8_t *alpha,
                                int64_t pts) {
    if (pts <= w->last_pts)
        return dm_error_set(DM_ERR_ARG, "%s: frame %d: pts %lld not after %lld", w->path, w->frames,
                            (long long)pts, (long long)w->last_pts);
    int err = av_frame_make_writable(w->frame);
    if (err < 0) return av_fail(DM_ERR_NOMEM, w->path, "frame buffer", err);
    AVFrame *f = w->frame, *in = w->rgb;
    for (int y = 0; y < in->height; y++)
        memcpy(in->data[0] + (size_t)y * in->linesize[0], rgb + (size_t)y * in->width * 3,
               (size_t)in->width * 3);
    sws_scale(w->sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height, f->data,
              f->linesize);
    if (w->alpha_plane) {
        for (int y = 0; y < f->height; y++) {
            const uint8_t *a = alpha ? alpha + (size_t)y * f->width : NULL;
            if (w->alpha_bits == 8) {
                uint8_t *row = f->data[3] + (size_t)y * f->linesize[3];
                if (a)
                    memcpy(row, a, (size_t)f->width);
                else
                    memset(row, 255, (size_t)f->width);
            } else { /* 10-bit: nearest 10-bit level, exactly invertible by round(v*255/1023) */
                uint16_t *row = (uint16_t *)(f->data[3] + (size_t)y * f->linesize[3]);
                for (int x = 0; x < f->width; x++)
                    row[x] = (uint16_t)(((a ? a[x] : 255) * 1023 + 127) / 255);
            }
        }
    }
    f->pts = pts;
    err = avcodec_send_frame(w->enc, f);
    if (err < 0) return av_fail(DM_ERR_IO, w->path, "encoder", err);
    w->last_pts = pts;
    w->frames++;
    return drain(w);
}

dm_status dm_video_writer_finish(dm_video_writer *w) {
    dm_status s = DM_OK;
    int err = avcodec_send_frame(w->enc, NULL);
    if (err < 0) s = av_fail(DM_ERR_IO, w->path, "encoder flush", err);
    if (s == DM_OK) s = drain(w);
    if (s == DM_OK && w->audio) s = dmv_audio_finish(w->audio, w->fmt);
    if (s == DM_OK) {
        err = av_write_trailer(w->fmt);
        if (err < 0) s = av_fail(DM_ERR_IO, w->path, "cannot write trailer", err);
    }
    if (s == DM_OK) {
        avio_flush(w->fmt->pb);
        int perr = w->fmt->pb->error;
        err = avio_closep(&w->fmt->pb);
        if (perr < 0 || err < 0)
            s = av_fail(DM_ERR_IO, w->path, "write failed", perr < 0 ? perr : err);
    }
    if (s == DM_OK && rename(w->tmp, w->path) != 0)
        s = dm_error_set(DM_ERR_IO, "%s: cannot rename from %s: %s", w->path, w->tmp,
                         strerror(errno));
    writer_free(w, s != DM_OK);
    return s;
}
