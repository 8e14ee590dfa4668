/* Opening a video, the demuxed packet index, and the lookups the frame-exact reader needs.
 *
 * The index is built by demuxing every packet of the stream once (av_read_frame, no
 * decoding). Presentation order is the pts order of the packets that are shown (packets with
 * AV_PKT_FLAG_DISCARD, e.g. before an MP4 edit list start, are decoded but never shown), so
 * a decoded picture's pts names its frame number exactly.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/avstring.h>

#include "video/video_internal.h"

static _Thread_local char g_av_log[512];

static void dmv_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
    if (level <= AV_LOG_ERROR && !g_av_log[0]) {
        /* Keep the library's own wording of the FIRST error since the last clear: later
         * lines are consequences ("error reading header" after "contradictionary STSC"). */
        va_list copy;
        va_copy(copy, vl);
        int print_prefix = 0;
        char line[512];
        av_log_format_line2(avcl, level, fmt, copy, line, sizeof line, &print_prefix);
        va_end(copy);
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n > 0) av_strlcpy(g_av_log, line, sizeof g_av_log);
    }
    av_log_default_callback(avcl, level, fmt, vl);
}

static void log_install(void) {
    av_log_set_callback(dmv_log_callback);
}

void dmv_log_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, log_install);
}

const char *dmv_last_av_log(void) {
    return g_av_log;
}

void dmv_clear_av_log(void) {
    g_av_log[0] = '\0';
}

static dm_status av_status(int err) {
    if (err == AVERROR(ENOENT) || err == AVERROR(EACCES) || err == AVERROR(EISDIR) ||
        err == AVERROR(EIO))
        return DM_ERR_IO;
    if (err == AVERROR(ENOMEM)) return DM_ERR_NOMEM;
    if (err == AVERROR_DECODER_NOT_FOUND) return DM_ERR_UNSUPPORTED;
    return DM_ERR_FORMAT;
}

dm_status dmv_open_input(const char *path, int stream_index, const dmv_seq *seq, int fps_num,
                         int fps_den, AVFormatContext **fmt, int *selected) {
    dmv_log_init();
    *fmt = NULL;
    dmv_clear_av_log();
    AVFormatContext *f = NULL;
    int err;
    if (seq) {
        /* The demuxer guesses the decoder from the pattern's extension, which a glob
         * ending in an asterisk lacks: the checked file list decides it instead. */
        AVDictionary *o = NULL;
        char rate[48];
        snprintf(rate, sizeof rate, "%d/%d", fps_num, fps_den);
        av_dict_set(&o, "pattern_type", "glob", 0);
        av_dict_set(&o, "framerate", rate, 0);
        f = avformat_alloc_context();
        if (!f) {
            av_dict_free(&o);
            return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
        }
        f->video_codec_id = seq->family == DMV_SEQ_PNG ? AV_CODEC_ID_PNG : AV_CODEC_ID_MJPEG;
        err = avformat_open_input(&f, seq->pattern, av_find_input_format("image2"), &o);
        av_dict_free(&o);
    } else {
        err = avformat_open_input(&f, path, NULL, NULL);
    }
    if (err < 0) {
        const char *detail = dmv_last_av_log();
        return dm_error_set(av_status(err), "%s: %s%s%s%s", path, av_err2str(err),
                            detail[0] ? " (ffmpeg: " : "", detail, detail[0] ? ")" : "");
    }
    /* Text files open as "tty" (ANSI art) video; that is never what a user means. */
    if (!strcmp(f->iformat->name, "tty")) {
        avformat_close_input(&f);
        return dm_error_set(DM_ERR_FORMAT, "%s: not a video file (text)", path);
    }
    err = avformat_find_stream_info(f, NULL);
    if (err < 0) {
        avformat_close_input(&f);
        return dm_error_set(DM_ERR_FORMAT, "%s: cannot read stream info: %s", path,
                            av_err2str(err));
    }
    int si = stream_index;
    if (si < 0) {
        si = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        if (si < 0) {
            avformat_close_input(&f);
            return dm_error_set(DM_ERR_FORMAT, "%s: no video stream", path);
        }
    } else if (si >= (int)f->nb_streams) {
        int n = (int)f->nb_streams;
        avformat_close_input(&f);
        return dm_error_set(DM_ERR_FORMAT, "%s: stream %d does not exist (file has %d streams)",
                            path, stream_index, n);
    } else {
        const AVStream *st = f->streams[si];
        if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO ||
            (st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
            const char *t = av_get_media_type_string(st->codecpar->codec_type);
            int cover = (st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
            avformat_close_input(&f); /* frees st */
            return dm_error_set(DM_ERR_FORMAT, "%s: stream %d is %s, not a video stream", path,
                                si, cover ? "a cover picture" : (t ? t : "unknown"));
        }
    }
    for (unsigned i = 0; i < f->nb_streams; i++)
        f->streams[i]->discard = (int)i == si ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    *fmt = f;
    *selected = si;
    return DM_OK;
}

void dmv_index_free(dmv_index *ix) {
    free(ix->pkt);
    free(ix->frame_pts);
    free(ix->frame_pkt);
    free(ix->prefix_max);
    free(ix->key_pkt);
    free(ix->pos_sorted);
    memset(ix, 0, sizeof *ix);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Pairs (key, value) compared by key. */
static int cmp_pair(const void *a, const void *b) {
    return cmp_i64(a, b);
}

/* Counts container index entries that lie past the end of the file: a truncated MP4 keeps
 * its full sample table ("745 frames") while the data holds only a few. */
static int64_t entries_past_eof(AVFormatContext *fmt, int si, int64_t *listed) {
    int64_t size = fmt->pb ? avio_size(fmt->pb) : -1;
    AVStream *st = fmt->streams[si];
    int n = avformat_index_get_entries_count(st);
    *listed = n;
    if (size <= 0) return 0;
    int64_t past = 0;
    for (int i = 0; i < n; i++) {
        const AVIndexEntry *e = avformat_index_get_entry(st, i);
        if (e && e->pos >= 0 && e->size > 0 && e->pos + e->size > size) past++;
    }
    return past;
}

static dm_status index_tables(const char *path, dmv_index *ix) {
    int64_t n = ix->n_pkt;
    ix->frame_pts = malloc(sizeof(int64_t) * 2 * (size_t)n);
    ix->frame_pkt = malloc(sizeof(int64_t) * (size_t)n);
    ix->prefix_max = malloc(sizeof(int64_t) * (size_t)n);
    ix->key_pkt = malloc(sizeof(int64_t) * (size_t)n);
    ix->pos_sorted = malloc(sizeof(int64_t) * 2 * (size_t)n);
    if (!ix->frame_pts || !ix->frame_pkt || !ix->prefix_max || !ix->key_pkt || !ix->pos_sorted)
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory for the frame index", path);

    /* Presentation table: (pts, decode index) pairs of shown packets, sorted by pts. */
    int64_t *pairs = ix->frame_pts; /* reuse the 2n buffer, compacted below */
    int64_t m = 0, all_pts = 1;
    for (int64_t d = 0; d < n; d++) {
        if (ix->pkt[d].discard) continue;
        if (ix->pkt[d].pts == AV_NOPTS_VALUE) all_pts = 0;
        pairs[2 * m] = ix->pkt[d].pts;
        pairs[2 * m + 1] = d;
        m++;
    }
    ix->n_frames = m;
    qsort(pairs, (size_t)m, 2 * sizeof(int64_t), cmp_pair);
    int unique = 1;
    for (int64_t i = 1; i < m; i++)
        if (pairs[2 * i] == pairs[2 * (i - 1)]) unique = 0;
    ix->pts_ok = all_pts && unique;
    for (int64_t i = 0; i < m; i++) {
        ix->frame_pkt[i] = pairs[2 * i + 1];
        ix->frame_pts[i] = pairs[2 * i];
    }

    int64_t run_max = INT64_MIN;
    ix->n_key = 0;
    for (int64_t d = 0; d < n; d++) {
        ix->prefix_max[d] = run_max;
        const dmv_packet *p = &ix->pkt[d];
        if (!p->discard && p->pts != AV_NOPTS_VALUE && p->pts > run_max) run_max = p->pts;
        if (p->key) ix->key_pkt[ix->n_key++] = d;
    }

    /* Packets read after a container seek are recognised by byte position (unique per
     * packet in MP4/MKV/TS/AVI), else by dts when dts strictly increases. */
    int pos_ok = 1, dts_ok = 1;
    for (int64_t d = 0; d < n; d++) {
        if (ix->pkt[d].pos < 0) pos_ok = 0;
        if (ix->pkt[d].dts == AV_NOPTS_VALUE || (d > 0 && ix->pkt[d].dts <= ix->pkt[d - 1].dts))
            dts_ok = 0;
        ix->pos_sorted[2 * d] = ix->pkt[d].pos;
        ix->pos_sorted[2 * d + 1] = d;
    }
    qsort(ix->pos_sorted, (size_t)n, 2 * sizeof(int64_t), cmp_pair);
    for (int64_t d = 1; d < n && pos_ok; d++)
        if (ix->pos_sorted[2 * d] == ix->pos_sorted[2 * (d - 1)]) pos_ok = 0;
    ix->map_mode = pos_ok ? DMV_MAP_POS : dts_ok ? DMV_MAP_DTS : DMV_MAP_NONE;
    return DM_OK;
}

dm_status dmv_index_build(const char *path, AVFormatContext *fmt, int si, dmv_index *ix) {
    memset(ix, 0, sizeof *ix);
    int64_t cap = 1024;
    ix->pkt = malloc(sizeof(dmv_packet) * (size_t)cap);
    AVPacket *pkt = av_packet_alloc();
    if (!ix->pkt || !pkt) {
        av_packet_free(&pkt);
        dmv_index_free(ix);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    int err;
    while ((err = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == si && pkt->size > 0) {
            if (ix->n_pkt == cap) {
                cap *= 2;
                dmv_packet *np = realloc(ix->pkt, sizeof(dmv_packet) * (size_t)cap);
                if (!np) {
                    av_packet_unref(pkt);
                    av_packet_free(&pkt);
                    dmv_index_free(ix);
                    return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
                }
                ix->pkt = np;
            }
            dmv_packet *p = &ix->pkt[ix->n_pkt++];
            p->pts = pkt->pts;
            p->dts = pkt->dts;
            p->pos = pkt->pos;
            p->duration = pkt->duration;
            p->key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
            p->discard = (pkt->flags & AV_PKT_FLAG_DISCARD) != 0;
        }
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    if (err != AVERROR_EOF) {
        dmv_index_free(ix);
        return dm_error_set(DM_ERR_FORMAT, "%s: demuxing failed: %s", path, av_err2str(err));
    }
    int64_t listed = 0, past = entries_past_eof(fmt, si, &listed);
    if (past > 0) {
        int64_t have = ix->n_pkt;
        dmv_index_free(ix);
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: truncated: the container indexes %lld frames but %lld of them "
                            "lie past the end of the file (%lld packets present)",
                            path, (long long)listed, (long long)past, (long long)have);
    }
    if (ix->n_pkt == 0) {
        dmv_index_free(ix);
        return dm_error_set(DM_ERR_FORMAT, "%s: the video stream holds no frames", path);
    }
    dm_status s = index_tables(path, ix);
    if (s != DM_OK) dmv_index_free(ix);
    return s;
}

int64_t dmv_index_start_for(const dmv_index *ix, int64_t frame, int64_t below) {
    if (!ix->pts_ok || frame < 0 || frame >= ix->n_frames) return -1;
    int64_t t = ix->frame_pts[frame];
    for (int64_t j = ix->n_key - 1; j >= 0; j--) {
        int64_t d = ix->key_pkt[j];
        if (d >= below) continue;
        const dmv_packet *p = &ix->pkt[d];
        /* Decodable from d: the keyframe is shown no later than the target, and nothing
         * decoded before d is shown at or after the target. */
        if (p->pts != AV_NOPTS_VALUE && p->pts <= t && ix->prefix_max[d] < t) return d;
    }
    return -1;
}

int64_t dmv_index_frame_of_pts(const dmv_index *ix, int64_t pts) {
    int64_t lo = 0, hi = ix->n_frames - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ix->frame_pts[mid] == pts) return mid;
        if (ix->frame_pts[mid] < pts)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int64_t dmv_index_packet_of(const dmv_index *ix, const AVPacket *p) {
    int64_t lo = 0, hi = ix->n_pkt - 1;
    if (ix->map_mode == DMV_MAP_POS) {
        while (lo <= hi) {
            int64_t mid = lo + (hi - lo) / 2, v = ix->pos_sorted[2 * mid];
            if (v == p->pos) return ix->pos_sorted[2 * mid + 1];
            if (v < p->pos)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
    } else if (ix->map_mode == DMV_MAP_DTS && p->dts != AV_NOPTS_VALUE) {
        while (lo <= hi) {
            int64_t mid = lo + (hi - lo) / 2, v = ix->pkt[mid].dts;
            if (v == p->dts) return mid;
            if (v < p->dts)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
    }
    return -1;
}
