/* Still-image input/output through FFmpeg (see include/depthmatte/image.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/opt.h>

#include "depthmatte/image.h"
#include "video/video_internal.h"

/* Decodes the first picture of an opened image file into *rgb. */
static dm_status decode_first(const char *path, AVFormatContext *fmt, AVCodecContext *dec,
                              uint8_t **rgb, int *width, int *height) {
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    dm_status s = DM_OK;
    int got = 0, eof = 0;
    if (!pkt || !f) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    while (s == DM_OK && !got) {
        int err = avcodec_receive_frame(dec, f);
        if (err == 0) {
            got = 1;
        } else if (err == AVERROR(EAGAIN) && !eof) {
            err = av_read_frame(fmt, pkt);
            if (err < 0) {
                eof = 1;
                avcodec_send_packet(dec, NULL);
            } else {
                err = avcodec_send_packet(dec, pkt);
                av_packet_unref(pkt);
                if (err < 0 && err != AVERROR(EAGAIN))
                    s = dm_error_set(DM_ERR_FORMAT, "%s: cannot decode: %s", path, av_err2str(err));
            }
        } else {
            const char *lib = dmv_last_av_log();
            s = dm_error_set(DM_ERR_FORMAT, "%s: no picture decoded%s%s%s", path,
                             lib[0] ? " (ffmpeg: " : "", lib, lib[0] ? ")" : "");
        }
    }
    if (s == DM_OK) {
        *rgb = malloc((size_t)f->width * (size_t)f->height * 3);
        if (!*rgb) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (s == DM_OK) {
        dmv_converter conv = {0};
        s = dmv_convert(&conv, f, 0, *rgb, path, 0);
        dmv_converter_free(&conv);
        if (s != DM_OK) {
            free(*rgb);
            *rgb = NULL;
        } else {
            *width = f->width;
            *height = f->height;
        }
    }
    av_frame_free(&f);
    av_packet_free(&pkt);
    return s;
}

dm_status dm_image_read_rgb(const char *path, uint8_t **rgb, int *width, int *height) {
    if (!path || !rgb || !width || !height)
        return dm_error_set(DM_ERR_ARG, "dm_image_read_rgb: NULL argument");
    *rgb = NULL;
    dmv_log_init();
    dmv_clear_av_log();
    FILE *probe = fopen(path, "rb");
    if (!probe) return dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno));
    fclose(probe);
    /* image2 with pattern_type none: a '%' in a file name is just a character. */
    AVDictionary *opt = NULL;
    av_dict_set(&opt, "pattern_type", "none", 0);
    AVFormatContext *fmt = NULL;
    int err = avformat_open_input(&fmt, path, av_find_input_format("image2"), &opt);
    av_dict_free(&opt);
    if (err < 0)
        return dm_error_set(DM_ERR_FORMAT, "%s: not a readable image: %s", path, av_err2str(err));
    dm_status s = DM_OK;
    if (avformat_find_stream_info(fmt, NULL) < 0 || fmt->nb_streams < 1 ||
        fmt->streams[0]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO ||
        fmt->streams[0]->codecpar->codec_id == AV_CODEC_ID_NONE)
        s = dm_error_set(DM_ERR_FORMAT, "%s: not an image", path);
    AVCodecContext *dec = NULL;
    if (s == DM_OK) s = dmv_open_decoder(path, fmt, 0, 1, &dec);
    if (s == DM_OK) s = decode_first(path, fmt, dec, rgb, width, height);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return s;
}

dm_status dm_image_write_png16(const char *path, const uint16_t *gray, int width, int height) {
    if (!path || !gray || width <= 0 || height <= 0)
        return dm_error_set(DM_ERR_ARG, "%s: bad 16-bit PNG arguments (%dx%d)", path ? path : "?",
                            width, height);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    if (!codec) return dm_error_set(DM_ERR_UNSUPPORTED, "%s: no png encoder in FFmpeg", path);
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    dm_status s = DM_OK;
    if (!enc || !f || !pkt) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    if (s == DM_OK) {
        enc->width = width;
        enc->height = height;
        enc->pix_fmt = AV_PIX_FMT_GRAY16BE;
        enc->time_base = (AVRational){1, 1};
        f->format = AV_PIX_FMT_GRAY16BE;
        f->width = width;
        f->height = height;
        int err = avcodec_open2(enc, codec, NULL);
        if (err >= 0) err = av_frame_get_buffer(f, 0);
        if (err < 0)
            s = dm_error_set(DM_ERR_UNSUPPORTED, "%s: png encoder: %s", path, av_err2str(err));
    }
    if (s == DM_OK) {
        for (int y = 0; y < height; y++) { /* gray16be: most significant byte first */
            uint8_t *row = f->data[0] + (size_t)y * f->linesize[0];
            const uint16_t *src = gray + (size_t)y * width;
            for (int x = 0; x < width; x++) {
                row[2 * x] = (uint8_t)(src[x] >> 8);
                row[2 * x + 1] = (uint8_t)(src[x] & 0xff);
            }
        }
        int err = avcodec_send_frame(enc, f);
        if (err >= 0) err = avcodec_send_frame(enc, NULL);
        if (err >= 0) err = avcodec_receive_packet(enc, pkt);
        if (err < 0) s = dm_error_set(DM_ERR_UNSUPPORTED, "%s: png encoding failed: %s", path,
                                      av_err2str(err));
    }
    if (s == DM_OK) {
        FILE *fp = fopen(path, "wb");
        if (!fp) {
            s = dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno));
        } else {
            size_t n = fwrite(pkt->data, 1, (size_t)pkt->size, fp);
            int close_err = fclose(fp);
            if (n != (size_t)pkt->size || close_err != 0)
                s = dm_error_set(DM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&enc);
    return s;
}
