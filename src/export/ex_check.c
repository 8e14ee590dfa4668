/* `depthmatte export`: kind names and the per-video check (export_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>

#include "depthmatte/video.h"
#include "depthmatte/video_writer.h"
#include "export/export_internal.h"

static const char *const kind_names[EX_KIND_COUNT] = {
    [EX_ALPHA_WEBM] = "alpha-webm", [EX_ALPHA_PRORES] = "alpha-prores",
    [EX_COMPOSITE] = "composite",   [EX_RGBA_PNG] = "rgba-png",
    [EX_ALPHA_PNG] = "alpha-png",   [EX_DEPTH_PNG16] = "depth-png16",
    [EX_DEPTH_EXR] = "depth-exr",   [EX_DEPTH_VIS] = "depth-vis",
    [EX_PREVIEW] = "preview",       [EX_CONTACT_SHEET] = "contact-sheet",
    [EX_TRANSCODE] = "transcode",
};

const char *ex_kind_name(ex_kind k) {
    return k < EX_KIND_COUNT ? kind_names[k] : "?";
}

int ex_kind_parse(const char *name) {
    for (int k = 0; k < EX_KIND_COUNT; k++)
        if (!strcmp(name, kind_names[k])) return k;
    return -1;
}

void ex_result_free(ex_result *r) {
    free(r->out);
    memset(r, 0, sizeof *r);
}

#define HAS(o, k) (((o)->kinds >> (k)) & 1u)

/* "rows 3-5, 9" of [a, b) whose done marker is 0, into buf; returns the number of such rows. */
static int64_t describe_gaps(const uint8_t *done, int64_t a, int64_t b, char *buf, size_t n) {
    int64_t missing = 0;
    size_t len = 0;
    buf[0] = 0;
    for (int64_t i = a; i < b;) {
        if (done[i]) {
            i++;
            continue;
        }
        int64_t j = i;
        while (j < b && !done[j])
            j++;
        missing += j - i;
        if (len + 40 < n) {
            int w = j - i == 1
                        ? snprintf(buf + len, n - len, "%s%lld", len ? ", " : "rows ", (long long)i)
                        : snprintf(buf + len, n - len, "%s%lld-%lld", len ? ", " : "rows ",
                                   (long long)i, (long long)(j - 1));
            len += (size_t)w;
        } else if (len + 5 < n && strcmp(buf + len - 3, "...")) {
            len += (size_t)snprintf(buf + len, n - len, ", ...");
        }
        i = j;
    }
    return missing;
}

static dm_status need_dataset(const ex_plan *p, const dm_h5r_dataset *d, const char *name,
                              ex_kind k, const char *h5) {
    if (d->present) return DM_OK;
    return dm_error_set(DM_ERR_ARG,
                        "%s: video %s: kind %s needs the %s dataset, which this file "
                        "does not hold",
                        h5, p->v.id, ex_kind_name(k), name);
}

dm_status ex_check_encoders(const ex_options *o) {
    static const struct {
        ex_kind k;
        const char *enc;
    } need[] = {
        {EX_ALPHA_WEBM, "libvpx-vp9"}, {EX_ALPHA_PRORES, "prores_ks"}, {EX_COMPOSITE, "libx264"},
        {EX_DEPTH_VIS, "libx264"},     {EX_PREVIEW, "libx264"},        {EX_TRANSCODE, "libx264"},
        {EX_RGBA_PNG, "png"},          {EX_ALPHA_PNG, "png"},          {EX_DEPTH_PNG16, "png"},
        {EX_CONTACT_SHEET, "png"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (HAS(o, need[i].k) && !avcodec_find_encoder_by_name(need[i].enc))
            return dm_error_set(DM_ERR_UNSUPPORTED,
                                "this FFmpeg build has no encoder '%s' (needed by kind %s)",
                                need[i].enc, ex_kind_name(need[i].k));
    return DM_OK;
}

dm_status ex_check_video(dm_h5r_file *f, int index, const ex_options *o, ex_plan *p) {
    memset(p, 0, sizeof *p);
    const char *h5 = dm_h5r_path(f);
    dm_status s = dm_h5r_video_info(f, index, &p->v);
    if (s != DM_OK) return s;
    p->index = index;
    const dm_h5r_video *v = &p->v;
    if (v->frames <= 0 || !v->done.present)
        return dm_error_set(DM_ERR_ARG, "%s: video %s has no rows (status %s%s%s)", h5, v->id,
                            v->status, v->error[0] ? ": " : "", v->error);
    /* datasets per kind */
    for (int k = 0; k < EX_KIND_COUNT && s == DM_OK; k++) {
        if (!HAS(o, k)) continue;
        switch ((ex_kind)k) {
        case EX_ALPHA_WEBM:
        case EX_ALPHA_PRORES:
        case EX_COMPOSITE:
        case EX_RGBA_PNG:
        case EX_ALPHA_PNG:
            s = need_dataset(p, &v->alpha, "alpha", k, h5);
            break;
        case EX_DEPTH_PNG16:
        case EX_DEPTH_EXR:
        case EX_DEPTH_VIS:
            s = need_dataset(p, &v->depth, "depth", k, h5);
            break;
        case EX_PREVIEW:
        case EX_CONTACT_SHEET:
            if (!v->alpha.present && !v->depth.present)
                s = dm_error_set(DM_ERR_ARG,
                                 "%s: video %s: kind %s needs an alpha or a depth "
                                 "dataset; this file holds neither",
                                 h5, v->id, ex_kind_name(k));
            break;
        default:
            break;
        }
    }
    if (s != DM_OK) return s;
    /* range */
    int64_t T = v->frames;
    p->a = o->frame_a < 0 ? 0 : o->frame_a;
    p->b = o->frame_b < 0 ? T : o->frame_b;
    if (p->a >= T || p->b > T || p->a >= p->b)
        return dm_error_set(DM_ERR_ARG, "%s: video %s: --frames %lld:%lld outside its %lld frames",
                            h5, v->id, (long long)p->a, (long long)p->b, (long long)T);
    uint8_t *done = malloc((size_t)T);
    if (!done) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", h5);
    s = dm_h5r_read_done(f, index, done);
    if (s == DM_OK) {
        int64_t missing = describe_gaps(done, p->a, p->b, p->gaps, sizeof p->gaps);
        p->n_rows = p->b - p->a - missing;
        if (missing && !o->allow_partial)
            s = dm_error_set(
                DM_ERR_ARG,
                "%s: video %s is incomplete: %lld of %lld rows not done "
                "(%s); finish it with 'depthmatte run --resume' or pass --allow-partial",
                h5, v->id, (long long)missing, (long long)(p->b - p->a), p->gaps);
        else if (p->n_rows == 0)
            s = dm_error_set(DM_ERR_ARG, "%s: video %s: no done rows in %lld:%lld", h5, v->id,
                             (long long)p->a, (long long)p->b);
    }
    free(done);
    if (s != DM_OK) return s;
    /* source: pixels for kinds without foreground, transcode, preview, contact sheet; audio */
    int colour_kinds = HAS(o, EX_ALPHA_WEBM) || HAS(o, EX_ALPHA_PRORES) || HAS(o, EX_COMPOSITE) ||
                       HAS(o, EX_RGBA_PNG) || HAS(o, EX_PREVIEW);
    p->need_source = (colour_kinds && !v->foreground.present) || HAS(o, EX_TRANSCODE) ||
                     HAS(o, EX_PREVIEW) || HAS(o, EX_CONTACT_SHEET);
    int video_kinds = HAS(o, EX_ALPHA_WEBM) || HAS(o, EX_ALPHA_PRORES) || HAS(o, EX_COMPOSITE) ||
                      HAS(o, EX_DEPTH_VIS) || HAS(o, EX_PREVIEW) || HAS(o, EX_TRANSCODE);
    snprintf(p->source, sizeof p->source, "%s", v->source);
    for (int i = 0; i < o->n_sources; i++) {
        int idx;
        if (dm_h5r_find_video(f, o->sources[i].id, &idx) == DM_OK && idx == index)
            snprintf(p->source, sizeof p->source, "%s", o->sources[i].path);
    }
    /* an image sequence has no audio, and its source is a folder or a glob (no stat) */
    const int audio = video_kinds && !o->no_audio && !v->images;
    if (!p->need_source && !audio) return DM_OK;
    struct stat st;
    if (!v->images && stat(p->source, &st) != 0) {
        if (!p->need_source) /* only audio would come from it */
            return dm_error_set(DM_ERR_IO,
                                "%s: source of video %s not found (for its audio); give "
                                "--source %s=PATH or --no-audio",
                                p->source, v->id, v->id);
        return dm_error_set(DM_ERR_IO,
                            "%s: source of video %s not found (needed for its pixels); "
                            "give --source %s=PATH",
                            p->source, v->id, v->id);
    }
    if (p->need_source) {
        dm_video_info info;
        const dm_video_options so = ex_source_options(v);
        s = dm_video_probe_opts(p->source, &so, &info);
        if (s != DM_OK) return s;
        if (info.frames < v->frames || info.width != v->width || info.height != v->height)
            return dm_error_set(DM_ERR_FORMAT,
                                "%s: not the source of video %s: %lld frames %dx%d, "
                                "the file has %lld rows %dx%d",
                                p->source, v->id, (long long)info.frames, info.width, info.height,
                                (long long)v->frames, v->width, v->height);
    }
    if (audio) {
        char codec[32];
        double dur;
        s = dm_media_audio_info(p->source, &p->audio, codec, &dur);
    }
    return s;
}
