/* `depthmatte export`: one video, all requested kinds in one pass over its rows
 * (export_internal.h). Rows are read from the HDF5 file in blocks, the source is decoded
 * alongside when a kind needs its pixels, and every output gets its frame. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "depthmatte/video.h"
#include "depthmatte/video_writer.h"
#include "export/export_internal.h"

#define HAS(o, k) (((o)->kinds >> (k)) & 1u)
#define BLOCK 8 /* rows read from the file at once */

typedef struct vctx {
    const ex_plan *p;
    const ex_options *o;
    dm_h5r_file *f;
    ex_result *res;
    int W, H, dw, dh; /* frame size; depth grid */
    int64_t *pts;     /* (T,) */
    uint8_t *done;    /* (T,) */
    int64_t pts0;
    int tb_num, tb_den;
    double frame_dur;  /* nominal frame duration, s */
    double dmin, dmax; /* depth min/max over the exported rows */
    double vis_lo, vis_hi;
    int64_t clipped; /* depth-png16 metric: pixels outside 0..65535 mm */
    char dir[1100];
    dm_video_writer *vw[EX_KIND_COUNT];
    int64_t frames_out[EX_KIND_COUNT];
    /* one block of rows */
    uint8_t *alpha; /* (BLOCK, H, W) */
    uint8_t *fg;    /* (BLOCK, H, W, 3) */
    float *depth;   /* (BLOCK, dh, dw) */
    /* one frame */
    uint8_t *src;      /* (H, W, 3) decoded source */
    uint8_t *comp;     /* (H, W, 3) composite */
    uint8_t *rgba;     /* (H, W, 4) */
    uint8_t *vis;      /* (dh, dw, 3) depth colours */
    uint8_t *vis_full; /* (H, W, 3) depth colours at the frame size */
    uint8_t *grey;     /* (H, W, 3) alpha as RGB */
    uint16_t *d16;     /* (dh, dw) */
    uint8_t *canvas;   /* (H, n*W, 3) preview */
    int preview_panels;
    dm_video_reader *rd;
    int64_t rd_next;
    int src_every; /* decode the source for every row */
    /* contact sheet */
    int sheet_n, sheet_rows, sheet_tw, sheet_th, sheet_w, sheet_h;
    int64_t *sheet_pick; /* (sheet_n,) rows shown */
    uint8_t *sheet;      /* (sheet_h, sheet_w, 3) */
    uint8_t *thumb;      /* (th, tw, 3) */
} vctx;

static const char *const file_name[EX_KIND_COUNT] = {
    [EX_ALPHA_WEBM] = "alpha_vp9.webm", [EX_ALPHA_PRORES] = "alpha_prores4444.mov",
    [EX_COMPOSITE] = "composite.mp4",   [EX_RGBA_PNG] = "rgba",
    [EX_ALPHA_PNG] = "alpha",           [EX_DEPTH_PNG16] = "depth16",
    [EX_DEPTH_EXR] = "depth_exr",       [EX_DEPTH_VIS] = "depth_vis.mp4",
    [EX_PREVIEW] = "preview.mp4",       [EX_CONTACT_SHEET] = "contact_sheet.png",
    [EX_TRANSCODE] = "transcode.mp4",
};

static dm_status add_output(vctx *c, const char *path, ex_kind k, int64_t frames) {
    ex_result *r = c->res;
    if (r->n_out == r->cap_out) {
        int cap = r->cap_out ? 2 * r->cap_out : 16;
        ex_output *o = realloc(r->out, (size_t)cap * sizeof *o);
        if (!o) return dm_error_set(DM_ERR_NOMEM, "out of memory");
        r->out = o;
        r->cap_out = cap;
    }
    ex_output *o = &r->out[r->n_out++];
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->kind, sizeof o->kind, "%s", ex_kind_name(k));
    o->frames = frames;
    return DM_OK;
}

static dm_status make_dir(const char *path) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return dm_error_set(DM_ERR_IO, "%s: cannot create folder: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return dm_error_set(DM_ERR_IO, "%s: not a folder", path);
    return DM_OK;
}

static void out_path(const vctx *c, ex_kind k, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", c->dir, file_name[k]);
}

/* ---- depth statistics ---------------------------------------------------------------- */
static dm_status depth_stats(vctx *c) {
    const ex_plan *p = c->p;
    size_t plane = (size_t)c->dw * c->dh;
    c->dmin = INFINITY;
    c->dmax = -INFINITY;
    int pct = c->o->pct_lo > 0 || c->o->pct_hi < 100;
    for (int pass = 0; pass < 1 + pct; pass++) {
        enum { NB = 65536 };
        int64_t *hist = pass ? calloc(NB, sizeof *hist) : NULL;
        if (pass && !hist) return dm_error_set(DM_ERR_NOMEM, "out of memory");
        int64_t total = 0;
        for (int64_t i = p->a; i < p->b; i += BLOCK) {
            int64_t e = i + BLOCK < p->b ? i + BLOCK : p->b;
            dm_status s = dm_h5r_read_depth(c->f, p->index, i, e, c->depth);
            if (s != DM_OK) {
                free(hist);
                return s;
            }
            for (int64_t r = i; r < e; r++) {
                if (!c->done[r]) continue;
                const float *d = c->depth + (size_t)(r - i) * plane;
                for (size_t j = 0; j < plane; j++) {
                    if (!isfinite(d[j])) continue;
                    if (!pass) {
                        if (d[j] < c->dmin) c->dmin = d[j];
                        if (d[j] > c->dmax) c->dmax = d[j];
                    } else {
                        double t = (d[j] - c->dmin) / (c->dmax - c->dmin) * (NB - 1);
                        hist[(int)lrint(t)]++;
                        total++;
                    }
                }
            }
        }
        if (pass) { /* percentiles to 1/65535 of the range */
            int64_t want_lo = (int64_t)floor(c->o->pct_lo / 100.0 * (double)total);
            int64_t want_hi = (int64_t)ceil(c->o->pct_hi / 100.0 * (double)total), acc = 0;
            int lo = -1, hi = NB - 1;
            for (int b = 0; b < NB; b++) {
                acc += hist[b];
                if (lo < 0 && acc > want_lo) lo = b;
                if (acc >= want_hi) {
                    hi = b;
                    break;
                }
            }
            c->vis_lo = c->dmin + (c->dmax - c->dmin) * (lo < 0 ? 0 : lo) / (NB - 1);
            c->vis_hi = c->dmin + (c->dmax - c->dmin) * hi / (NB - 1);
            free(hist);
        }
        if (!pass && !(c->dmax > c->dmin)) break; /* constant depth: no histogram */
    }
    if (!isfinite(c->dmin)) c->dmin = c->dmax = 0;
    if (!pct) {
        c->vis_lo = c->dmin;
        c->vis_hi = c->dmax;
    }
    return DM_OK;
}

/* Depth grid -> palette colours; relative inverse depth: near (large) = bright; metric depth
 * (distance): near (small) = bright. */
static void colour_depth(vctx *c, const float *d) {
    double span = c->vis_hi - c->vis_lo;
    int metric = c->p->v.depth_metric;
    for (size_t j = 0; j < (size_t)c->dw * c->dh; j++) {
        float t = span > 0 ? (float)((d[j] - c->vis_lo) / span) : 0.0f;
        if (metric) t = 1.0f - t;
        ex_palette_rgb(c->o->palette, t, c->vis + 3 * j);
    }
}

/* ---- per-frame outputs --------------------------------------------------------------- */
static void frame_name(char *buf, size_t n, const char *dir, const char *sub, int64_t row,
                       const char *ext) {
    snprintf(buf, n, "%s/%s/%06lld.%s", dir, sub, (long long)row, ext);
}

static dm_status sheet_cell(vctx *c, int row, int col, const uint8_t *rgb, int w, int h) {
    dm_status s = ex_resize_rgb(rgb, w, h, c->thumb, c->sheet_tw, c->sheet_th);
    if (s != DM_OK) return s;
    int x0 = 88 + 8 + col * (c->sheet_tw + 8), y0 = 40 + 8 + row * (c->sheet_th + 8);
    for (int y = 0; y < c->sheet_th; y++)
        memcpy(c->sheet + ((size_t)(y0 + y) * c->sheet_w + x0) * 3,
               c->thumb + (size_t)y * c->sheet_tw * 3, (size_t)c->sheet_tw * 3);
    return DM_OK;
}

static dm_status sheet_frame(vctx *c, int col, int64_t row, const uint8_t *alpha,
                             const float *depth) {
    static const uint8_t white[3] = {235, 235, 235};
    char label[64];
    int x0 = 88 + 8 + col * (c->sheet_tw + 8);
    snprintf(label, sizeof label, "frame %lld", (long long)row);
    ex_draw_text(c->sheet, c->sheet_w, c->sheet_h, x0, 4, 2, label, white);
    snprintf(label, sizeof label, "%.3f s",
             (double)(c->pts[row] - c->pts0) * c->tb_num / c->tb_den);
    ex_draw_text(c->sheet, c->sheet_w, c->sheet_h, x0, 22, 2, label, white);
    int r = 0;
    dm_status s = sheet_cell(c, r++, col, c->src, c->W, c->H);
    if (s == DM_OK && alpha) {
        for (size_t j = 0; j < (size_t)c->W * c->H; j++)
            c->grey[3 * j] = c->grey[3 * j + 1] = c->grey[3 * j + 2] = alpha[j];
        s = sheet_cell(c, r++, col, c->grey, c->W, c->H);
    }
    if (s == DM_OK && depth) {
        colour_depth(c, depth);
        s = sheet_cell(c, r++, col, c->vis, c->dw, c->dh);
    }
    return s;
}

static dm_status frame(vctx *c, int64_t row, const uint8_t *alpha, const uint8_t *fg,
                       const float *depth) {
    const ex_options *o = c->o;
    size_t px = (size_t)c->W * c->H;
    dm_status s = DM_OK;
    int sheet_col = -1;
    for (int k = 0; k < c->sheet_n; k++)
        if (c->sheet_pick[k] == row) sheet_col = k;
    if (c->rd && (c->src_every || sheet_col >= 0)) {
        if (row != c->rd_next) s = dm_video_seek(c->rd, row);
        int64_t idx = -1;
        if (s == DM_OK) s = dm_video_read(c->rd, c->src, &idx, NULL, NULL);
        if (s == DM_VIDEO_END || (s == DM_OK && idx != row))
            s = dm_error_set(DM_ERR_DECODE, "%s: frame %lld: not decodable", c->p->source,
                             (long long)row);
        if (s != DM_OK) return s;
        c->rd_next = row + 1;
    }
    const uint8_t *colour = fg ? fg : c->src;
    int64_t opts = c->pts[row] - c->pts0;
    int need_comp = HAS(o, EX_COMPOSITE) || (HAS(o, EX_PREVIEW) && alpha);
    if (need_comp && alpha) {
        const uint8_t *bg = o->background;
        for (size_t j = 0; j < px; j++) {
            int a = alpha[j];
            for (int ch = 0; ch < 3; ch++)
                c->comp[3 * j + ch] =
                    (uint8_t)((colour[3 * j + ch] * a + bg[ch] * (255 - a) + 127) / 255);
        }
    }
    int need_vis = depth && (HAS(o, EX_DEPTH_VIS) || HAS(o, EX_PREVIEW));
    if (need_vis) colour_depth(c, depth);
    char path[1400];
    for (int k = 0; k < EX_KIND_COUNT && s == DM_OK; k++) {
        if (!HAS(o, k)) continue;
        switch ((ex_kind)k) {
        case EX_ALPHA_WEBM:
        case EX_ALPHA_PRORES:
            s = dm_video_writer_write(c->vw[k], colour, alpha, opts);
            break;
        case EX_COMPOSITE:
            s = dm_video_writer_write(c->vw[k], c->comp, NULL, opts);
            break;
        case EX_TRANSCODE:
            s = dm_video_writer_write(c->vw[k], c->src, NULL, opts);
            break;
        case EX_DEPTH_VIS:
            s = dm_video_writer_write(c->vw[k], c->vis, NULL, opts);
            break;
        case EX_ALPHA_PNG:
            frame_name(path, sizeof path, c->dir, file_name[k], row, "png");
            s = dm_image_write(path, DM_IMAGE_GRAY8, alpha, c->W, c->H);
            break;
        case EX_RGBA_PNG:
            for (size_t j = 0; j < px; j++) {
                memcpy(c->rgba + 4 * j, colour + 3 * j, 3);
                c->rgba[4 * j + 3] = alpha[j];
            }
            frame_name(path, sizeof path, c->dir, file_name[k], row, "png");
            s = dm_image_write(path, DM_IMAGE_RGBA, c->rgba, c->W, c->H);
            break;
        case EX_DEPTH_EXR:
            frame_name(path, sizeof path, c->dir, file_name[k], row, "exr");
            s = dm_image_write(path, DM_IMAGE_FLOAT32, depth, c->dw, c->dh);
            break;
        case EX_DEPTH_PNG16: {
            int metric = c->p->v.depth_metric;
            double scale = metric ? 0.001 : (c->dmax - c->dmin) / 65535.0,
                   off = metric ? 0 : c->dmin;
            for (size_t j = 0; j < (size_t)c->dw * c->dh; j++) {
                double v = scale > 0 ? (depth[j] - off) / scale : 0;
                if (!(v >= 0)) v = 0, c->clipped += metric;
                if (v > 65535) v = 65535, c->clipped += metric;
                c->d16[j] = (uint16_t)lrint(v);
            }
            frame_name(path, sizeof path, c->dir, file_name[k], row, "png");
            s = dm_image_write(path, DM_IMAGE_GRAY16, c->d16, c->dw, c->dh);
            break;
        }
        case EX_PREVIEW: {
            int n = c->preview_panels, W3 = n * c->W, x = 0;
            const uint8_t *panels[3] = {c->src, alpha ? c->comp : NULL, NULL};
            if (depth) {
                s = ex_resize_rgb(c->vis, c->dw, c->dh, c->vis_full, c->W, c->H);
                panels[2] = c->vis_full;
            }
            for (int q = 0; q < 3 && s == DM_OK; q++) {
                if (!panels[q]) continue;
                for (int y = 0; y < c->H; y++)
                    memcpy(c->canvas + ((size_t)y * W3 + (size_t)x * c->W) * 3,
                           panels[q] + (size_t)y * c->W * 3, (size_t)c->W * 3);
                x++;
            }
            if (s == DM_OK) s = dm_video_writer_write(c->vw[k], c->canvas, NULL, opts);
            break;
        }
        case EX_CONTACT_SHEET:
            if (sheet_col >= 0) s = sheet_frame(c, sheet_col, row, alpha, depth);
            break;
        default:
            break;
        }
        c->frames_out[k]++;
    }
    return s;
}

/* ---- setup and teardown -------------------------------------------------------------- */
static int even(int x) {
    return x < 2 ? 2 : x & ~1;
}

static dm_status open_video(vctx *c, ex_kind k) {
    const ex_options *o = c->o;
    const ex_plan *p = c->p;
    dm_video_writer_opts w = {0};
    w.fps_num = p->v.fps_num;
    w.fps_den = p->v.fps_den;
    w.tb_num = c->tb_num;
    w.tb_den = c->tb_den;
    w.crf = o->crf;
    w.width = c->W;
    w.height = c->H;
    w.format = "mp4";
    w.encoder = "libx264";
    w.pix_fmt = "yuv420p";
    switch (k) {
    case EX_ALPHA_WEBM:
        w.format = "webm";
        w.encoder = "libvpx-vp9";
        w.pix_fmt = "yuva420p";
        w.lossless = o->lossless;
        break;
    case EX_ALPHA_PRORES:
        w.format = "mov";
        w.encoder = "prores_ks";
        w.pix_fmt = "yuva444p10le";
        break;
    case EX_DEPTH_VIS:
        w.in_width = c->dw;
        w.in_height = c->dh;
        w.width = even(c->dw);
        w.height = even(c->dh);
        break;
    case EX_TRANSCODE: {
        int h = o->height < c->H ? o->height : c->H;
        w.in_width = c->W;
        w.in_height = c->H;
        w.height = even(h);
        w.width = even((int)lrint((double)c->W * h / c->H / 2) * 2);
        break;
    }
    case EX_PREVIEW: {
        int h = c->H > 360 ? 360 : c->H;
        w.in_width = c->preview_panels * c->W;
        w.in_height = c->H;
        w.height = even(h);
        w.width = even((int)lrint((double)w.in_width * h / c->H / 2) * 2);
        break;
    }
    default: /* composite */
        w.in_width = c->W;
        w.in_height = c->H;
        w.width = even(c->W);
        w.height = even(c->H);
        break;
    }
    if (p->audio && !o->no_audio) {
        int64_t first = -1, last = -1;
        for (int64_t r = p->a; r < p->b; r++)
            if (c->done[r]) {
                if (first < 0) first = r;
                last = r;
            }
        double tb = (double)c->tb_num / c->tb_den;
        w.audio_path = p->source;
        w.audio_origin_s = (double)c->pts0 * tb;
        w.audio_begin_s = (double)(c->pts[first] - c->pts0) * tb;
        w.audio_end_s = (double)(c->pts[last] - c->pts0) * tb + c->frame_dur;
    }
    char path[1400];
    out_path(c, k, path, sizeof path);
    return dm_video_writer_open(&c->vw[k], path, &w);
}

static void *xalloc(size_t n, int *fail) {
    void *p = calloc(1, n ? n : 1);
    if (!p) *fail = 1;
    return p;
}

static dm_status setup(vctx *c) {
    const ex_plan *p = c->p;
    const ex_options *o = c->o;
    const dm_h5r_video *v = &p->v;
    int64_t T = v->frames;
    int fail = 0;
    c->W = v->width;
    c->H = v->height;
    c->dh = v->depth.present ? (int)v->depth.dims[1] : c->H;
    c->dw = v->depth.present ? (int)v->depth.dims[2] : c->W;
    c->pts = xalloc((size_t)T * sizeof *c->pts, &fail);
    c->done = xalloc((size_t)T, &fail);
    size_t px = (size_t)c->W * c->H, dpx = (size_t)c->dw * c->dh;
    c->alpha = xalloc(BLOCK * px, &fail);
    c->fg = xalloc(BLOCK * px * 3, &fail);
    c->depth = xalloc(BLOCK * dpx * sizeof(float), &fail);
    c->src = xalloc(px * 3, &fail);
    c->comp = xalloc(px * 3, &fail);
    c->rgba = xalloc(px * 4, &fail);
    c->vis = xalloc(dpx * 3, &fail);
    c->vis_full = xalloc(px * 3, &fail);
    c->grey = xalloc(px * 3, &fail);
    c->d16 = xalloc(dpx * sizeof(uint16_t), &fail);
    c->preview_panels = 1 + v->alpha.present + v->depth.present;
    if (HAS(o, EX_PREVIEW)) c->canvas = xalloc(px * 3 * c->preview_panels, &fail);
    if (fail)
        return dm_error_set(DM_ERR_NOMEM, "%s: video %s: out of memory", dm_h5r_path(c->f), v->id);
    dm_status s = dm_h5r_read_done(c->f, p->index, c->done);
    if (s == DM_OK && v->pts.present && v->tb_num > 0 && v->tb_den > 0) {
        s = dm_h5r_read_pts(c->f, p->index, c->pts);
        c->tb_num = v->tb_num;
        c->tb_den = v->tb_den;
    } else if (s == DM_OK) { /* no timestamps stored: nominal rate */
        for (int64_t i = 0; i < T; i++)
            c->pts[i] = i;
        c->tb_num = v->fps_den;
        c->tb_den = v->fps_num;
    }
    if (s != DM_OK) return s;
    for (int64_t i = 0; i < p->a; i++)
        c->done[i] = 0;
    for (int64_t i = p->b; i < T; i++)
        c->done[i] = 0;
    c->pts0 = c->pts[0];
    c->frame_dur = (double)v->fps_den / v->fps_num;
    int depth_kinds = HAS(o, EX_DEPTH_PNG16) || HAS(o, EX_DEPTH_EXR) || HAS(o, EX_DEPTH_VIS) ||
                      ((HAS(o, EX_PREVIEW) || HAS(o, EX_CONTACT_SHEET)) && v->depth.present);
    if (depth_kinds) s = depth_stats(c);
    if (s != DM_OK) return s;
    snprintf(c->dir, sizeof c->dir, "%s/%s", o->out_dir, v->id);
    s = make_dir(c->dir);
    static const ex_kind seqs[] = {EX_ALPHA_PNG, EX_RGBA_PNG, EX_DEPTH_PNG16, EX_DEPTH_EXR};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0] && s == DM_OK; i++) {
        if (!HAS(o, seqs[i])) continue;
        char d[1400];
        out_path(c, seqs[i], d, sizeof d);
        s = make_dir(d);
    }
    /* source */
    if (s == DM_OK && p->need_source) {
        const dm_video_options so = ex_source_options(&p->v);
        s = dm_video_open_opts(&c->rd, p->source, &so);
        c->rd_next = 0;
        int colour_kinds = HAS(o, EX_ALPHA_WEBM) || HAS(o, EX_ALPHA_PRORES) ||
                           HAS(o, EX_COMPOSITE) || HAS(o, EX_RGBA_PNG);
        c->src_every =
            (colour_kinds && !v->foreground.present) || HAS(o, EX_TRANSCODE) || HAS(o, EX_PREVIEW);
    }
    /* contact sheet: N evenly spaced exported rows */
    if (s == DM_OK && HAS(o, EX_CONTACT_SHEET)) {
        int n = o->sheet_frames < p->n_rows ? o->sheet_frames : (int)p->n_rows;
        c->sheet_n = n;
        c->sheet_pick = xalloc((size_t)n * sizeof(int64_t), &fail);
        int64_t *rows = xalloc((size_t)p->n_rows * sizeof(int64_t), &fail);
        if (fail) {
            free(rows);
            return dm_error_set(DM_ERR_NOMEM, "out of memory");
        }
        int64_t m = 0;
        for (int64_t r = p->a; r < p->b; r++)
            if (c->done[r]) rows[m++] = r;
        for (int k = 0; k < n; k++)
            c->sheet_pick[k] =
                rows[n == 1 ? 0 : (int64_t)llround((double)k * (double)(m - 1) / (n - 1))];
        free(rows);
        c->sheet_rows = 1 + v->alpha.present + v->depth.present;
        c->sheet_tw = o->sheet_width;
        c->sheet_th = (int)lrint((double)o->sheet_width * c->H / c->W);
        if (c->sheet_th < 1) c->sheet_th = 1;
        c->sheet_w = 88 + n * c->sheet_tw + (n + 1) * 8;
        c->sheet_h = 40 + c->sheet_rows * c->sheet_th + (c->sheet_rows + 1) * 8;
        c->sheet = xalloc((size_t)c->sheet_w * c->sheet_h * 3, &fail);
        c->thumb = xalloc((size_t)c->sheet_tw * c->sheet_th * 3, &fail);
        if (fail) return dm_error_set(DM_ERR_NOMEM, "out of memory");
        memset(c->sheet, 32, (size_t)c->sheet_w * c->sheet_h * 3);
        static const uint8_t white[3] = {235, 235, 235};
        const char *names[3] = {"source", v->alpha.present ? "alpha" : "depth", "depth"};
        for (int r = 0; r < c->sheet_rows; r++)
            ex_draw_text(c->sheet, c->sheet_w, c->sheet_h, 8,
                         40 + 8 + r * (c->sheet_th + 8) + c->sheet_th / 2 - 7, 2, names[r], white);
    }
    static const ex_kind vids[] = {EX_ALPHA_WEBM, EX_ALPHA_PRORES, EX_COMPOSITE,
                                   EX_DEPTH_VIS,  EX_PREVIEW,      EX_TRANSCODE};
    for (size_t i = 0; i < sizeof vids / sizeof vids[0] && s == DM_OK; i++)
        if (HAS(o, vids[i])) s = open_video(c, vids[i]);
    return s;
}

static dm_status write_sidecar(vctx *c) {
    const ex_plan *p = c->p;
    int metric = p->v.depth_metric;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "video", p->v.id);
    cJSON_AddStringToObject(j, "source", p->v.source);
    cJSON_AddStringToObject(j, "depth_kind", p->v.depth_kind);
    cJSON_AddStringToObject(j, "units", metric ? "m" : "1");
    cJSON_AddStringToObject(j, "encoding", "depth = offset + scale * value");
    cJSON_AddStringToObject(
        j, "value_rule",
        metric ? "value = clamp(round(depth / scale), 0, 65535), scale = 0.001 (millimetres)"
               : "value = round((depth - min) / (max - min) * 65535)");
    /* %.17g: cJSON's own number printing keeps 15 digits when they are within DBL_EPSILON,
     * which does not round-trip exactly */
    const char *names[4] = {"scale", "offset", "min", "max"};
    double vals[4] = {metric ? 0.001 : (c->dmax - c->dmin) / 65535.0, metric ? 0.0 : c->dmin,
                      c->dmin, c->dmax};
    for (int i = 0; i < 4; i++) {
        char num[40];
        snprintf(num, sizeof num, "%.17g", vals[i]);
        cJSON_AddRawToObject(j, names[i], num);
    }
    cJSON_AddNumberToObject(j, "clipped_pixels", (double)c->clipped);
    cJSON_AddNumberToObject(j, "width", c->dw);
    cJSON_AddNumberToObject(j, "height", c->dh);
    cJSON_AddStringToObject(j, "files", "depth16/%06d.png (frame number)");
    cJSON *rows = cJSON_AddArrayToObject(j, "frames");
    for (int64_t r = p->a; r < p->b; r++)
        if (c->done[r]) cJSON_AddItemToArray(rows, cJSON_CreateNumber((double)r));
    /* target_fps runs: which source frame each file shows (/videos/<id>/source_frame) */
    const int step = p->v.frame_step > 0 ? p->v.frame_step : 1;
    cJSON_AddNumberToObject(j, "frame_step", step);
    cJSON *src = cJSON_AddArrayToObject(j, "source_frames");
    for (int64_t r = p->a; r < p->b; r++)
        if (c->done[r]) cJSON_AddItemToArray(src, cJSON_CreateNumber((double)(r * step)));
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    char path[1400], tmp[1500];
    snprintf(path, sizeof path, "%s/depth16.json", c->dir);
    dm_output_temp_name(path, tmp, sizeof tmp);
    FILE *fp = fopen(tmp, "w");
    dm_status s = DM_OK;
    if (!fp) {
        s = dm_error_set(DM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    } else {
        size_t n = strlen(txt);
        int bad = fwrite(txt, 1, n, fp) != n || fputc('\n', fp) == EOF;
        int e = errno;
        if (fclose(fp) != 0 || bad) {
            s = dm_error_set(DM_ERR_IO, "%s: write failed: %s", path, strerror(bad ? e : errno));
            unlink(tmp);
        } else if (rename(tmp, path) != 0) {
            s = dm_error_set(DM_ERR_IO, "%s: cannot rename: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    free(txt);
    if (s == DM_OK) s = add_output(c, path, EX_DEPTH_PNG16, 0);
    return s;
}

static void teardown(vctx *c) {
    for (int k = 0; k < EX_KIND_COUNT; k++)
        dm_video_writer_abort(c->vw[k]);
    dm_video_close(c->rd);
    free(c->pts);
    free(c->done);
    free(c->alpha);
    free(c->fg);
    free(c->depth);
    free(c->src);
    free(c->comp);
    free(c->rgba);
    free(c->vis);
    free(c->vis_full);
    free(c->grey);
    free(c->d16);
    free(c->canvas);
    free(c->sheet_pick);
    free(c->sheet);
    free(c->thumb);
}

dm_status ex_export_video(dm_h5r_file *f, const ex_plan *p, const ex_options *o, ex_result *res,
                          ex_progress_fn progress, void *ctx) {
    vctx c = {.p = p, .o = o, .f = f, .res = res};
    dm_status s = setup(&c);
    const dm_h5r_video *v = &p->v;
    size_t px = (size_t)c.W * c.H, dpx = (size_t)c.dw * c.dh;
    int want_alpha = v->alpha.present,
        want_fg = v->foreground.present &&
                  (HAS(o, EX_ALPHA_WEBM) || HAS(o, EX_ALPHA_PRORES) || HAS(o, EX_COMPOSITE) ||
                   HAS(o, EX_RGBA_PNG) || HAS(o, EX_PREVIEW));
    int want_depth = v->depth.present &&
                     (HAS(o, EX_DEPTH_PNG16) || HAS(o, EX_DEPTH_EXR) || HAS(o, EX_DEPTH_VIS) ||
                      HAS(o, EX_PREVIEW) || HAS(o, EX_CONTACT_SHEET));
    int64_t rows_done = 0;
    for (int64_t i = p->a; i < p->b && s == DM_OK; i += BLOCK) {
        int64_t e = i + BLOCK < p->b ? i + BLOCK : p->b, any = 0;
        for (int64_t r = i; r < e; r++)
            any |= c.done[r];
        if (!any) continue;
        if (want_alpha) s = dm_h5r_read_alpha_u8(f, p->index, i, e, c.alpha);
        if (s == DM_OK && want_fg) s = dm_h5r_read_foreground(f, p->index, i, e, c.fg);
        if (s == DM_OK && want_depth) s = dm_h5r_read_depth(f, p->index, i, e, c.depth);
        for (int64_t r = i; r < e && s == DM_OK; r++) {
            if (!c.done[r]) continue;
            size_t q = (size_t)(r - i);
            s = frame(&c, r, want_alpha ? c.alpha + q * px : NULL,
                      want_fg ? c.fg + q * px * 3 : NULL, want_depth ? c.depth + q * dpx : NULL);
            rows_done++;
            if (progress) progress(ctx, rows_done);
        }
    }
    char path[1400];
    for (int k = 0; k < EX_KIND_COUNT && s == DM_OK; k++) {
        if (!HAS(o, k)) continue;
        out_path(&c, k, path, sizeof path);
        if (c.vw[k]) {
            s = dm_video_writer_finish(c.vw[k]);
            c.vw[k] = NULL;
        } else if (k == EX_CONTACT_SHEET) {
            s = dm_image_write(path, DM_IMAGE_RGB24, c.sheet, c.sheet_w, c.sheet_h);
        }
        if (s == DM_OK)
            s = add_output(&c, path, k, k == EX_CONTACT_SHEET ? c.sheet_n : c.frames_out[k]);
        if (s == DM_OK && k == EX_DEPTH_PNG16) s = write_sidecar(&c);
    }
    res->frames += rows_done;
    teardown(&c);
    return s;
}
