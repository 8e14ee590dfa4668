/* Stream description (dm_video_info), decoder opening, and dm_video_probe. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/avstring.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

#include "video/video_internal.h"

/* Clockwise rotation that makes the frames upright, as fftools/cmdutils.c get_rotation():
 * the display matrix stores the counter-clockwise angle. */
static int stream_rotation(const AVStream *st) {
    const int32_t *m = (const int32_t *)av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX,
                                                                NULL);
    if (!m) return 0;
    double theta = -av_display_rotation_get(m);
    if (isnan(theta)) return 0;
    theta -= 360.0 * floor(theta / 360.0 + 0.9 / 360.0);
    int r = (int)lround(theta / 90.0) * 90;
    return ((r % 360) + 360) % 360;
}

void dmv_fill_info(const char *path, AVFormatContext *fmt, int si, const dmv_index *ix,
                   dm_video_info *info) {
    memset(info, 0, sizeof *info);
    const AVStream *st = fmt->streams[si];
    const AVCodecParameters *par = st->codecpar;
    av_strlcpy(info->path, path, sizeof info->path);
    info->stream_index = si;
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(fmt->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC))
            info->video_streams++;
    info->frames = ix->n_frames;
    info->container_frames = st->nb_frames > 0 ? st->nb_frames : 0;
    info->packets = ix->n_pkt;
    info->keyframes = ix->n_key;
    info->time_base_num = st->time_base.num;
    info->time_base_den = st->time_base.den;
    av_strlcpy(info->codec, avcodec_get_name(par->codec_id), sizeof info->codec);
    info->coded_width = par->width;
    info->coded_height = par->height;
    info->rotation = stream_rotation(st);
    int swap = info->rotation == 90 || info->rotation == 270;
    info->width = swap ? par->height : par->width;
    info->height = swap ? par->width : par->height;
    AVRational sar = av_guess_sample_aspect_ratio(fmt, (AVStream *)st, NULL);
    info->sar_num = sar.num > 0 ? sar.num : 1;
    info->sar_den = sar.num > 0 ? sar.den : 1;
    info->has_b_frames = par->video_delay;

    /* Frame rate: the container's average, else its base rate, else from the pts table. */
    AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    int64_t n = ix->n_frames;
    double tb = av_q2d(st->time_base);
    if (ix->pts_ok && n > 0) {
        int64_t dmin = INT64_MAX, dmax = 0;
        for (int64_t i = 1; i < n; i++) {
            int64_t d = ix->frame_pts[i] - ix->frame_pts[i - 1];
            if (d < dmin) dmin = d;
            if (d > dmax) dmax = d;
        }
        /* Rounded timestamps (29.97 fps in 1 ms units: 33/34) are not variable rates. */
        if (n > 1 && dmax - dmin > FFMAX(2, dmin / 10)) info->variable_fps = 1;
        int64_t last_dur = ix->pkt[ix->frame_pkt[n - 1]].duration;
        if (last_dur <= 0 && fr.num > 0) last_dur = llrint(1.0 / (av_q2d(fr) * tb));
        if (last_dur <= 0 && n > 1) last_dur = dmin;
        info->start_pts = ix->frame_pts[0];
        info->duration_s = (double)(ix->frame_pts[n - 1] + last_dur - ix->frame_pts[0]) * tb;
    } else if (fr.num > 0) {
        info->duration_s = (double)n / av_q2d(fr);
    }
    if (fr.num <= 0 && info->duration_s > 0) fr = av_d2q((double)n / info->duration_s, 1000000);
    info->fps_num = fr.num > 0 ? fr.num : 0;
    info->fps_den = fr.num > 0 ? fr.den : 1;

    dmv_describe_format(info, (enum AVPixelFormat)par->format, par->color_range,
                        par->color_space, par->height);
}

void dmv_describe_format(dm_video_info *info, enum AVPixelFormat pf, enum AVColorRange range,
                         enum AVColorSpace spc, int height) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(pf);
    av_strlcpy(info->pix_fmt, d ? d->name : "unknown", sizeof info->pix_fmt);
    info->bit_depth = d ? d->comp[0].depth : 0;
    info->is_rgb = d && (d->flags & AV_PIX_FMT_FLAG_RGB);
    if (info->is_rgb) {
        info->full_range = 0;
        av_strlcpy(info->color_matrix, "rgb", sizeof info->color_matrix);
        info->color_matrix_guessed = 0;
    } else {
        info->full_range = dmv_is_full_range(range, pf);
        int guessed = 0;
        av_strlcpy(info->color_matrix, dmv_matrix_name(dmv_pick_matrix(spc, height, &guessed)),
                   sizeof info->color_matrix);
        info->color_matrix_guessed = guessed;
    }
}

dm_status dmv_open_decoder(const char *path, AVFormatContext *fmt, int si, int threads,
                           AVCodecContext **dec) {
    *dec = NULL;
    const AVStream *st = fmt->streams[si];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: no decoder for codec %s in this FFmpeg build",
                            path, avcodec_get_name(st->codecpar->codec_id));
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    int err = avcodec_parameters_to_context(c, st->codecpar);
    if (err >= 0) {
        c->pkt_timebase = st->time_base;
        c->thread_count = threads > 0 ? threads : 0;
        err = avcodec_open2(c, codec, NULL);
    }
    if (err < 0) {
        avcodec_free_context(&c);
        return dm_error_set(err == AVERROR(ENOMEM) ? DM_ERR_NOMEM : DM_ERR_UNSUPPORTED,
                            "%s: cannot open the %s decoder: %s", path, codec->name,
                            av_err2str(err));
    }
    *dec = c;
    return DM_OK;
}

dm_status dm_video_probe(const char *path, int stream_index, dm_video_info *info) {
    dm_video_options o = DM_VIDEO_OPTIONS_INIT;
    o.stream_index = stream_index;
    return dm_video_probe_opts(path, &o, info);
}

dm_status dm_video_probe_opts(const char *path, const dm_video_options *opts, dm_video_info *info) {
    if (!path || !info) return dm_error_set(DM_ERR_ARG, "dm_video_probe: NULL argument");
    memset(info, 0, sizeof *info);
    dm_video_reader *r = NULL;
    dm_video_options o = DM_VIDEO_OPTIONS_INIT;
    if (opts) o = *opts;
    o.threads = 1;
    dm_status s = dm_video_open_opts(&r, path, &o);
    if (s != DM_OK) return s;
    const dm_video_info *ri = dm_video_reader_info(r);
    uint8_t *rgb = malloc((size_t)ri->width * (size_t)ri->height * 3);
    if (!rgb) {
        dm_video_close(r);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    /* Decoding frame 0 proves the stream starts decodable and gives the decoder's real pixel
     * format, range and matrix (containers such as MPEG-TS do not always carry them). */
    s = dm_video_read(r, rgb, NULL, NULL, NULL);
    if (s == DM_VIDEO_END)
        s = dm_error_set(DM_ERR_DECODE, "%s: frame 0: the stream ends before any frame", path);
    if (s == DM_OK) *info = *dm_video_reader_info(r);
    free(rgb);
    dm_video_close(r);
    return s;
}
