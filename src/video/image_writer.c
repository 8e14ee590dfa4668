/* Still images for exports (video_writer.h, dm_image_write): PNG through FFmpeg's png encoder
 * (the file is the encoder's one packet), EXR through the OpenEXR library (exr_io.c); written
 * under a temporary name and renamed when complete. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/opt.h>

#include "video/video_writer_internal.h"

static dm_status write_file(const char *path, const uint8_t *data, size_t n) {
    char tmp[1100];
    dm_output_temp_name(path, tmp, sizeof tmp);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return dm_error_set(DM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t w = fwrite(data, 1, n, fp);
    int werr = w != n ? errno : 0;
    int cerr = fclose(fp) != 0 ? errno : 0;
    if (w != n || cerr) {
        unlink(tmp);
        return dm_error_set(DM_ERR_IO, "%s: write failed: %s", path, strerror(werr ? werr : cerr));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dm_error_set(DM_ERR_IO, "%s: cannot rename from %s: %s", path, tmp, strerror(e));
    }
    return DM_OK;
}

/* Fills frame f (already allocated in its format) from the caller's buffer. */
static void fill(AVFrame *f, dm_image_kind kind, const void *data) {
    int w = f->width, h = f->height;
    for (int y = 0; y < h; y++) {
        uint8_t *row = f->data[0] + (size_t)y * f->linesize[0];
        switch (kind) {
        case DM_IMAGE_GRAY8:
            memcpy(row, (const uint8_t *)data + (size_t)y * w, (size_t)w);
            break;
        case DM_IMAGE_RGB24:
            memcpy(row, (const uint8_t *)data + (size_t)y * w * 3, (size_t)w * 3);
            break;
        case DM_IMAGE_RGBA:
            memcpy(row, (const uint8_t *)data + (size_t)y * w * 4, (size_t)w * 4);
            break;
        case DM_IMAGE_GRAY16: { /* gray16be: most significant byte first */
            const uint16_t *src = (const uint16_t *)data + (size_t)y * w;
            for (int x = 0; x < w; x++) {
                row[2 * x] = (uint8_t)(src[x] >> 8);
                row[2 * x + 1] = (uint8_t)(src[x] & 0xff);
            }
            break;
        }
        case DM_IMAGE_FLOAT32: /* grayf32le on a little-endian host */
            memcpy(row, (const float *)data + (size_t)y * w, (size_t)w * sizeof(float));
            break;
        }
    }
}

dm_status dm_image_write(const char *path, dm_image_kind kind, const void *data, int width,
                         int height) {
    if (!path || !data || width <= 0 || height <= 0)
        return dm_error_set(DM_ERR_ARG, "%s: bad image arguments (%dx%d)", path ? path : "?", width,
                            height);
    if (kind == DM_IMAGE_FLOAT32) { /* OpenEXR library (exr_io.c) */
        char tmp[1100];
        dm_output_temp_name(path, tmp, sizeof tmp);
        dm_status s = dmv_exr_write_z(path, tmp, data, width, height);
        if (s == DM_OK && rename(tmp, path) != 0)
            s = dm_error_set(DM_ERR_IO, "%s: cannot rename from %s: %s", path, tmp,
                             strerror(errno));
        if (s != DM_OK) unlink(tmp);
        return s;
    }
    static const enum AVPixelFormat fmts[] = {
        [DM_IMAGE_GRAY8] = AV_PIX_FMT_GRAY8,       [DM_IMAGE_GRAY16] = AV_PIX_FMT_GRAY16BE,
        [DM_IMAGE_RGB24] = AV_PIX_FMT_RGB24,       [DM_IMAGE_RGBA] = AV_PIX_FMT_RGBA,
        [DM_IMAGE_FLOAT32] = AV_PIX_FMT_GRAYF32LE,
    };
    const char *name = "png";
    const AVCodec *codec = avcodec_find_encoder_by_name(name);
    if (!codec)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: this FFmpeg build has no encoder '%s'", path,
                            name);
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    dm_status s = DM_OK;
    if (!enc || !f || !pkt) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    if (s == DM_OK) {
        enc->width = width;
        enc->height = height;
        enc->pix_fmt = fmts[kind];
        enc->time_base = (AVRational){1, 1};
        f->format = fmts[kind];
        f->width = width;
        f->height = height;
        int err = avcodec_open2(enc, codec, NULL);
        if (err >= 0) err = av_frame_get_buffer(f, 0);
        if (err < 0)
            s = dm_error_set(DM_ERR_UNSUPPORTED, "%s: %s encoder: %s", path, name, av_err2str(err));
    }
    if (s == DM_OK) {
        fill(f, kind, data);
        int err = avcodec_send_frame(enc, f);
        if (err >= 0) err = avcodec_send_frame(enc, NULL);
        if (err >= 0) err = avcodec_receive_packet(enc, pkt);
        if (err < 0)
            s = dm_error_set(DM_ERR_UNSUPPORTED, "%s: %s encoding failed: %s", path, name,
                             av_err2str(err));
    }
    if (s == DM_OK) s = write_file(path, pkt->data, (size_t)pkt->size);
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&enc);
    return s;
}
