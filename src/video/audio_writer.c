/* The audio track of an export (video_writer_internal.h): the first audio stream of the
 * source, cut to [begin, end) seconds of the video's clock, copied when the output container
 * takes the codec, else decoded, resampled (libswresample) and re-encoded (Opus for WebM /
 * Matroska, AAC otherwise). Copy keeps whole packets that overlap the range (the cut is then
 * exact to one audio frame); re-encoding cuts at the sample. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/audio_fifo.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include "video/video_writer_internal.h"

struct dmv_audio {
    char name[1024], src[1024];
    AVFormatContext *in;
    AVStream *ist, *ost;
    int copy;
    AVCodecContext *dec, *enc;
    SwrContext *swr;
    AVAudioFifo *fifo;
    AVPacket *ipkt, *opkt;
    AVFrame *dframe, *eframe;
    double origin, begin, end; /* seconds: source time of video frame 0; kept output range */
    int started;               /* transcode: first decoded frame seen */
    int64_t pos;               /* transcode: resampled samples seen since the first frame */
    int64_t keep_b, keep_e;    /* transcode: kept range, in those samples */
    int64_t first_out;         /* transcode: output pts (1/rate) of resampled sample 0 */
    int64_t out_pts;           /* transcode: pts of the next encoded frame */
    int eof;                   /* input exhausted (or past the range) */
    double written_t;          /* output time of the last packet written, s */
};

static dm_status afail(dmv_audio *a, dm_status code, const char *what, int err) {
    return dm_error_set(code, "%s: audio from %s: %s: %s", a->name, a->src, what, av_err2str(err));
}

dm_status dm_media_audio_info(const char *path, int *has_audio, char codec[32],
                              double *duration_s) {
    *has_audio = 0;
    codec[0] = 0;
    *duration_s = 0;
    AVFormatContext *in = NULL;
    int err = avformat_open_input(&in, path, NULL, NULL);
    if (err < 0) return dm_error_set(DM_ERR_IO, "%s: %s", path, av_err2str(err));
    err = avformat_find_stream_info(in, NULL);
    int ai = err < 0 ? -1 : av_find_best_stream(in, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (ai >= 0) {
        AVStream *st = in->streams[ai];
        *has_audio = 1;
        snprintf(codec, 32, "%s", avcodec_get_name(st->codecpar->codec_id));
        if (st->duration != AV_NOPTS_VALUE)
            *duration_s = (double)st->duration * av_q2d(st->time_base);
        else if (in->duration != AV_NOPTS_VALUE)
            *duration_s = (double)in->duration / AV_TIME_BASE;
    }
    avformat_close_input(&in);
    return DM_OK;
}

void dmv_audio_free(dmv_audio *a) {
    if (!a) return;
    avformat_close_input(&a->in);
    avcodec_free_context(&a->dec);
    avcodec_free_context(&a->enc);
    swr_free(&a->swr);
    if (a->fifo) av_audio_fifo_free(a->fifo);
    av_packet_free(&a->ipkt);
    av_packet_free(&a->opkt);
    av_frame_free(&a->dframe);
    av_frame_free(&a->eframe);
    free(a);
}

static dm_status open_transcode(dmv_audio *a, AVFormatContext *out) {
    const AVCodecParameters *par = a->ist->codecpar;
    const AVCodec *dc = avcodec_find_decoder(par->codec_id);
    if (!dc)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: audio from %s: no decoder for %s", a->name,
                            a->src, avcodec_get_name(par->codec_id));
    const char *oname = out->oformat->name;
    const char *ename = strstr(oname, "webm") || strstr(oname, "matroska") ? "libopus" : "aac";
    const AVCodec *ec = avcodec_find_encoder_by_name(ename);
    if (!ec)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: this FFmpeg build has no encoder '%s' (audio)",
                            a->name, ename);
    a->dec = avcodec_alloc_context3(dc);
    a->enc = avcodec_alloc_context3(ec);
    if (!a->dec || !a->enc) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", a->name);
    int err = avcodec_parameters_to_context(a->dec, par);
    if (err >= 0) err = avcodec_open2(a->dec, dc, NULL);
    if (err < 0) return afail(a, DM_ERR_DECODE, "decoder", err);
    int rate = a->dec->sample_rate, best = 0;
    for (const int *r = ec->supported_samplerates; r && *r; r++) {
        if (*r == rate) best = rate;
        if (!best && *r == 48000) best = 48000;
    }
    if (ec->supported_samplerates && !best) best = ec->supported_samplerates[0];
    a->enc->sample_rate = best ? best : rate;
    a->enc->sample_fmt = ec->sample_fmts ? ec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&a->enc->ch_layout, a->dec->ch_layout.nb_channels >= 2 ? 2 : 1);
    a->enc->bit_rate = 128000;
    a->enc->time_base = (AVRational){1, a->enc->sample_rate};
    if (out->oformat->flags & AVFMT_GLOBALHEADER) a->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    err = avcodec_open2(a->enc, ec, NULL);
    if (err < 0) return afail(a, DM_ERR_UNSUPPORTED, ename, err);
    err = swr_alloc_set_opts2(&a->swr, &a->enc->ch_layout, a->enc->sample_fmt, a->enc->sample_rate,
                              &a->dec->ch_layout, a->dec->sample_fmt, a->dec->sample_rate, 0, NULL);
    if (err >= 0) err = swr_init(a->swr);
    if (err < 0) return afail(a, DM_ERR_UNSUPPORTED, "resampler", err);
    a->fifo = av_audio_fifo_alloc(a->enc->sample_fmt, a->enc->ch_layout.nb_channels, 4096);
    a->dframe = av_frame_alloc();
    a->eframe = av_frame_alloc();
    if (!a->fifo || !a->dframe || !a->eframe)
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", a->name);
    err = avcodec_parameters_from_context(a->ost->codecpar, a->enc);
    if (err < 0) return afail(a, DM_ERR_UNSUPPORTED, "stream parameters", err);
    a->ost->time_base = a->enc->time_base;
    return DM_OK;
}

dm_status dmv_audio_open(dmv_audio **out_a, AVFormatContext *out, const char *name, const char *src,
                         double origin_s, double begin_s, double end_s) {
    *out_a = NULL;
    dmv_audio *a = calloc(1, sizeof *a);
    if (!a) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", name);
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->src, sizeof a->src, "%s", src);
    a->origin = origin_s;
    a->begin = begin_s;
    a->end = end_s;
    dm_status s = DM_OK;
    int err = avformat_open_input(&a->in, src, NULL, NULL);
    if (err >= 0) err = avformat_find_stream_info(a->in, NULL);
    if (err < 0) s = afail(a, DM_ERR_IO, "cannot open", err);
    int ai = s == DM_OK ? av_find_best_stream(a->in, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0) : -1;
    if (s == DM_OK && ai < 0)
        s = dm_error_set(DM_ERR_FORMAT, "%s: %s has no audio stream", name, src);
    if (s == DM_OK) {
        for (unsigned i = 0; i < a->in->nb_streams; i++)
            if ((int)i != ai) a->in->streams[i]->discard = AVDISCARD_ALL;
        a->ist = a->in->streams[ai];
        a->ost = avformat_new_stream(out, NULL);
        a->ipkt = av_packet_alloc();
        a->opkt = av_packet_alloc();
        if (!a->ost || !a->ipkt || !a->opkt)
            s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", name);
    }
    if (s == DM_OK) {
        a->copy = avformat_query_codec(out->oformat, a->ist->codecpar->codec_id,
                                       FF_COMPLIANCE_NORMAL) == 1;
        if (a->copy) {
            err = avcodec_parameters_copy(a->ost->codecpar, a->ist->codecpar);
            if (err < 0) s = afail(a, DM_ERR_UNSUPPORTED, "stream parameters", err);
            a->ost->codecpar->codec_tag = 0;
            a->ost->time_base = a->ist->time_base;
        } else {
            s = open_transcode(a, out);
        }
    }
    if (s != DM_OK) {
        dmv_audio_free(a);
        return s;
    }
    a->written_t = -INFINITY;
    *out_a = a;
    return DM_OK;
}

static dm_status write_pkt(dmv_audio *a, AVFormatContext *out, AVPacket *p) {
    p->stream_index = a->ost->index;
    a->written_t = (double)p->pts * av_q2d(a->ost->time_base);
    int err = av_interleaved_write_frame(out, p);
    if (err < 0) return dm_error_set(DM_ERR_IO, "%s: write failed: %s", a->name, av_err2str(err));
    return DM_OK;
}

static dm_status encode(dmv_audio *a, AVFormatContext *out, AVFrame *f) {
    int err = avcodec_send_frame(a->enc, f);
    if (err < 0) return afail(a, DM_ERR_IO, "encoder", err);
    for (;;) {
        err = avcodec_receive_packet(a->enc, a->opkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return DM_OK;
        if (err < 0) return afail(a, DM_ERR_IO, "encoder", err);
        av_packet_rescale_ts(a->opkt, a->enc->time_base, a->ost->time_base);
        dm_status s = write_pkt(a, out, a->opkt);
        if (s != DM_OK) return s;
    }
}

/* Encodes whole encoder frames from the fifo (all that is left when last). */
static dm_status encode_fifo(dmv_audio *a, AVFormatContext *out, int last) {
    int fs = a->enc->frame_size > 0 ? a->enc->frame_size : 1024;
    while (av_audio_fifo_size(a->fifo) >= fs || (last && av_audio_fifo_size(a->fifo) > 0)) {
        int n = FFMIN(fs, av_audio_fifo_size(a->fifo));
        AVFrame *e = a->eframe;
        av_frame_unref(e);
        e->nb_samples = n;
        e->format = a->enc->sample_fmt;
        e->sample_rate = a->enc->sample_rate;
        av_channel_layout_copy(&e->ch_layout, &a->enc->ch_layout);
        int err = av_frame_get_buffer(e, 0);
        if (err < 0) return afail(a, DM_ERR_NOMEM, "frame", err);
        av_audio_fifo_read(a->fifo, (void **)e->data, n);
        e->pts = a->out_pts;
        a->out_pts += n;
        dm_status s = encode(a, out, e);
        if (s != DM_OK) return s;
    }
    return DM_OK;
}

/* Resamples one decoded frame (NULL: flush the resampler) and queues the kept samples. */
static dm_status queue_samples(dmv_audio *a, const AVFrame *f) {
    int rate = a->enc->sample_rate;
    if (f && !a->started) {
        int64_t ts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
        double t0 = (ts == AV_NOPTS_VALUE ? 0 : (double)ts * av_q2d(a->ist->time_base)) - a->origin;
        a->started = 1;
        a->keep_b = FFMAX(0, llround((a->begin - t0) * rate));
        a->keep_e = llround((a->end - t0) * rate);
        a->first_out = llround(t0 * rate);
        a->out_pts = a->first_out + a->keep_b;
    }
    if (!a->started) return DM_OK;
    int max = swr_get_out_samples(a->swr, f ? f->nb_samples : 0);
    if (max <= 0) return DM_OK;
    uint8_t **buf = NULL;
    int err = av_samples_alloc_array_and_samples(&buf, NULL, a->enc->ch_layout.nb_channels, max,
                                                 a->enc->sample_fmt, 0);
    if (err < 0) return afail(a, DM_ERR_NOMEM, "samples", err);
    int n = swr_convert(a->swr, buf, max, f ? (const uint8_t **)f->extended_data : NULL,
                        f ? f->nb_samples : 0);
    dm_status s = DM_OK;
    if (n < 0) s = afail(a, DM_ERR_DECODE, "resampler", n);
    if (s == DM_OK && n > 0) {
        int64_t b = FFMAX(a->pos, a->keep_b), e = FFMIN(a->pos + n, a->keep_e);
        if (e > b) {
            int bps = av_get_bytes_per_sample(a->enc->sample_fmt);
            int planar = av_sample_fmt_is_planar(a->enc->sample_fmt);
            int off = (int)(b - a->pos) * bps * (planar ? 1 : a->enc->ch_layout.nb_channels);
            void *planes[8];
            for (int c = 0; c < (planar ? a->enc->ch_layout.nb_channels : 1); c++)
                planes[c] = buf[c] + off;
            if (av_audio_fifo_write(a->fifo, planes, (int)(e - b)) < (int)(e - b))
                s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory (audio)", a->name);
        }
        a->pos += n;
        if (a->pos >= a->keep_e) a->eof = 1;
    }
    av_freep(&buf[0]);
    av_freep(&buf);
    return s;
}

static dm_status decode_pending(dmv_audio *a) {
    for (;;) {
        int err = avcodec_receive_frame(a->dec, a->dframe);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return DM_OK;
        if (err < 0) return afail(a, DM_ERR_DECODE, "decoder", err);
        dm_status s = queue_samples(a, a->dframe);
        av_frame_unref(a->dframe);
        if (s != DM_OK) return s;
    }
}

/* Reads and handles one input packet; sets eof at the end of input or of the range. */
static dm_status step(dmv_audio *a, AVFormatContext *out) {
    int err = av_read_frame(a->in, a->ipkt);
    if (err == AVERROR_EOF) {
        a->eof = 1;
        return DM_OK;
    }
    if (err < 0) return afail(a, DM_ERR_DECODE, "read", err);
    dm_status s = DM_OK;
    if (a->ipkt->stream_index == a->ist->index) {
        AVPacket *p = a->ipkt;
        double tb = av_q2d(a->ist->time_base);
        if (a->copy) {
            int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
            double t = (double)ts * tb - a->origin, dur = (double)p->duration * tb;
            if (t >= a->end) {
                a->eof = 1;
            } else if (t + dur > a->begin + 1e-9) {
                int64_t shift = llround(a->origin / tb);
                if (p->pts != AV_NOPTS_VALUE) p->pts -= shift;
                if (p->dts != AV_NOPTS_VALUE) p->dts -= shift;
                p->pos = -1;
                av_packet_rescale_ts(p, a->ist->time_base, a->ost->time_base);
                s = write_pkt(a, out, p);
            }
        } else {
            err = avcodec_send_packet(a->dec, p);
            if (err < 0 && err != AVERROR_INVALIDDATA) s = afail(a, DM_ERR_DECODE, "decoder", err);
            if (s == DM_OK) s = decode_pending(a);
            if (s == DM_OK) s = encode_fifo(a, out, 0);
        }
    }
    av_packet_unref(a->ipkt);
    return s;
}

dm_status dmv_audio_pump(dmv_audio *a, AVFormatContext *out, double t_s) {
    while (!a->eof && a->written_t < t_s) {
        dm_status s = step(a, out);
        if (s != DM_OK) return s;
    }
    return DM_OK;
}

dm_status dmv_audio_finish(dmv_audio *a, AVFormatContext *out) {
    dm_status s = dmv_audio_pump(a, out, INFINITY);
    if (s != DM_OK || a->copy) return s;
    if (!a->eof || a->pos < a->keep_e) { /* input ended: drain decoder and resampler */
        avcodec_send_packet(a->dec, NULL);
        s = decode_pending(a);
        if (s == DM_OK && a->started) s = queue_samples(a, NULL);
    }
    if (s == DM_OK) s = encode_fifo(a, out, 1);
    if (s == DM_OK) s = encode(a, out, NULL);
    return s;
}
