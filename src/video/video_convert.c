/* Decoded frame -> upright RGB24 with swscale, following the stream's colour matrix/range.
 *
 * swscale's default matrix is BT.601 whatever the stream says; like the ffmpeg CLI's scale
 * filter (libavfilter/vf_scale.c, in_color_matrix=auto) we pass the frame's own matrix and
 * range through sws_setColorspaceDetails, and use the same flags (bicubic; MPEG-2 chroma
 * siting for yuv420p) so that tagged streams convert bit-identically to
 * `ffmpeg -i X -pix_fmt rgb24`. Untagged streams follow the project's HD rule (video.h).
 */
#include <stdlib.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "video/video_internal.h"

int dmv_pick_matrix(enum AVColorSpace spc, int height, int *guessed) {
    *guessed = 0;
    switch (spc) {
    case AVCOL_SPC_BT709:
    case AVCOL_SPC_FCC:
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
    case AVCOL_SPC_SMPTE240M:
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        return spc;
    default:
        /* Unspecified (or a matrix swscale has no coefficients for): HD content is BT.709 in
         * practice (DESIGN.md); SD is BT.601. */
        *guessed = 1;
        return height >= 720 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
    }
}

const char *dmv_matrix_name(int spc) {
    switch (spc) {
    case AVCOL_SPC_BT709: return "bt709";
    case AVCOL_SPC_FCC: return "fcc";
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M: return "bt601";
    case AVCOL_SPC_SMPTE240M: return "smpte240m";
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return "bt2020";
    default: return "unknown";
    }
}

int dmv_is_full_range(enum AVColorRange range, enum AVPixelFormat fmt) {
    if (range == AVCOL_RANGE_JPEG) return 1;
    if (range == AVCOL_RANGE_MPEG) return 0;
    /* Deprecated yuvj* formats mean full range even when the tag is missing. */
    return fmt == AV_PIX_FMT_YUVJ420P || fmt == AV_PIX_FMT_YUVJ422P ||
           fmt == AV_PIX_FMT_YUVJ444P || fmt == AV_PIX_FMT_YUVJ440P ||
           fmt == AV_PIX_FMT_YUVJ411P;
}

void dmv_converter_free(dmv_converter *c) {
    sws_freeContext(c->sws);
    av_free(c->tmp);
    const int dw = c->dst_w, dh = c->dst_h; /* the wanted size outlives the cached context */
    memset(c, 0, sizeof *c);
    c->dst_w = dw, c->dst_h = dh;
}

static int tmp_stride(int w) {
    return FFALIGN(w * 3, 64);
}

static dm_status setup(dmv_converter *c, const AVFrame *f, int full, int spc, const char *path,
                       int64_t frame_index) {
    dmv_converter_free(c);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    struct SwsContext *s = sws_alloc_context();
    /* The SIMD converters may write a few pixels past the row end, so we convert into a
     * padded buffer (as the CLI's frames are) and copy rows out. */
    const int ow = c->dst_w > 0 ? c->dst_w : f->width, oh = c->dst_h > 0 ? c->dst_h : f->height;
    c->tmp = av_malloc((size_t)tmp_stride(ow) * (size_t)(oh + 1) + 64);
    if (!s || !c->tmp || !d) {
        sws_freeContext(s);
        return dm_error_set(DM_ERR_NOMEM, "%s: frame %lld: cannot set up the RGB conversion",
                            path, (long long)frame_index);
    }
    av_opt_set_int(s, "srcw", f->width, 0);
    av_opt_set_int(s, "srch", f->height, 0);
    av_opt_set_int(s, "src_format", f->format, 0);
    av_opt_set_int(s, "dstw", ow, 0);
    av_opt_set_int(s, "dsth", oh, 0);
    av_opt_set_int(s, "dst_format", AV_PIX_FMT_RGB24, 0);
    av_opt_set_int(s, "sws_flags", SWS_BICUBIC, 0);
    if (f->format == AV_PIX_FMT_YUV420P) av_opt_set_int(s, "src_v_chr_pos", 128, 0);
    if (sws_init_context(s, NULL, NULL) < 0) {
        sws_freeContext(s);
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: frame %lld: swscale cannot convert %s to rgb24",
                            path, (long long)frame_index, d->name);
    }
    if (!(d->flags & AV_PIX_FMT_FLAG_RGB)) {
        int *inv, *tab, src_full, dst_full, bri, con, sat;
        sws_getColorspaceDetails(s, &inv, &src_full, &tab, &dst_full, &bri, &con, &sat);
        const int *coef = sws_getCoefficients(spc);
        sws_setColorspaceDetails(s, coef, full, coef, dst_full, bri, con, sat);
    }
    c->sws = s;
    c->w = f->width;
    c->h = f->height;
    c->fmt = f->format;
    c->range = full;
    c->spc = spc;
    return DM_OK;
}

dm_status dmv_convert(dmv_converter *c, const AVFrame *f, int rotation, uint8_t *out,
                      const char *path, int64_t frame_index) {
    int full = dmv_is_full_range(f->color_range, f->format), guessed;
    int spc = dmv_pick_matrix(f->colorspace, f->height, &guessed);
    if (!c->sws || c->w != f->width || c->h != f->height || c->fmt != f->format ||
        c->range != full || c->spc != spc) {
        dm_status s = setup(c, f, full, spc, path, frame_index);
        if (s != DM_OK) return s;
    }
    int w = c->dst_w > 0 ? c->dst_w : f->width, h = c->dst_h > 0 ? c->dst_h : f->height;
    int ls = tmp_stride(w);
    uint8_t *dst[4] = {c->tmp, NULL, NULL, NULL};
    int dst_ls[4] = {ls, 0, 0, 0};
    if (sws_scale(c->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
                  dst_ls) != h)
        return dm_error_set(DM_ERR_DECODE, "%s: frame %lld: RGB conversion failed", path,
                            (long long)frame_index);
    const uint8_t *in = c->tmp;
    switch (rotation) {
    case 90: /* clockwise: output (w rows, h cols), out(y, x) = in(h-1-x, y) */
        for (int y = 0; y < w; y++) {
            uint8_t *o = out + (size_t)y * h * 3;
            for (int x = 0; x < h; x++) memcpy(o + 3 * x, in + (size_t)(h - 1 - x) * ls + 3 * y, 3);
        }
        break;
    case 270: /* counter-clockwise: out(y, x) = in(x, w-1-y) */
        for (int y = 0; y < w; y++) {
            uint8_t *o = out + (size_t)y * h * 3;
            for (int x = 0; x < h; x++) memcpy(o + 3 * x, in + (size_t)x * ls + 3 * (w - 1 - y), 3);
        }
        break;
    case 180: /* out(y, x) = in(h-1-y, w-1-x) */
        for (int y = 0; y < h; y++) {
            uint8_t *o = out + (size_t)y * w * 3;
            const uint8_t *r = in + (size_t)(h - 1 - y) * ls;
            for (int x = 0; x < w; x++) memcpy(o + 3 * x, r + 3 * (w - 1 - x), 3);
        }
        break;
    default:
        for (int y = 0; y < h; y++) memcpy(out + (size_t)y * w * 3, in + (size_t)y * ls, (size_t)w * 3);
        break;
    }
    return DM_OK;
}
