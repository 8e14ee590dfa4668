/* depthmatte points FILE.h5 (--intrinsics fx,fy,cx,cy | --hfov DEG) [--video ID]
 *   [--detections DET [--format auto|csv|json|mot] [--region R] [--outlier-k K] [--out OUT]]
 *   [--inverse-depth-scale a,b | --known-distance TRACK,FRAME,METRES]
 *   [--cloud DIR [--stride N] [--frames A:B] [--source VIDEO] [--stream N]]
 * Detections -> 3D positions and per-track figures; per-frame PLY point clouds. A plain
 * process (no MPI): the output file is read with the serial reader (depthmatte/h5read.h).
 * Rules and formats: docs/points.md. Exit status: 0 ok, 1 bad input (one error line), 2 usage. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavutil/log.h>

#include "cli/commands.h"
#include "cli/points_cli.h"
#include "depthmatte/video.h"

#define ERR(...) (fprintf(stderr, "depthmatte points: error: " __VA_ARGS__), fputc('\n', stderr))

static void usage(FILE *f) {
    fprintf(
        f, "usage: depthmatte points FILE.h5 (--intrinsics fx,fy,cx,cy | --hfov DEG) [--video ID]\n"
           "         [--detections DET.csv|DET.json [--format auto|csv|json|mot] [--region R]\n"
           "          [--outlier-k K] [--out OUT.csv|OUT.json]]\n"
           "         [--inverse-depth-scale a,b | --known-distance TRACK,FRAME,METRES]\n"
           "         [--cloud DIR [--stride N] [--frames A:B] [--source VIDEO] [--stream N]]\n"
           "3D positions (metres, camera coordinates: X right, Y down, Z forward) of detected\n"
           "boxes from the depth in a depthmatte output file, per-track path length, tortuosity,\n"
           "speeds and outlier steps; per-frame PLY point clouds. Rules: docs/points.md.\n"
           "  --intrinsics fx,fy,cx,cy  pinhole intrinsics in pixels of the source frame\n"
           "  --hfov DEG                horizontal field of view: fx = fy = (W/2)/tan(hfov/2),\n"
           "                            cx = W/2, cy = H/2 (one of the two is required)\n"
           "  --video ID                video group (\"00001\" or input index 1); default: the\n"
           "                            only video of the file\n"
           "  --detections DET          boxes: CSV with a header (frame,track,x1,y1,x2,y2[,class]\n"
           "                            [,conf] or x,y,w,h), JSON array, or MOT (--format mot);\n"
           "                            frames are 0-based HDF5 rows (MOT: 1-based)\n"
           "  --region R                central fraction of the box whose pixels give the\n"
           "                            median depth, 0 < R <= 1 (default 0.5)\n"
           "  --outlier-k K             outlier step: speed > median + K * MAD (default 3)\n"
           "  --out OUT.csv|OUT.json    write per-detection rows (CSV: plus OUT_tracks.csv)\n"
           "  --inverse-depth-scale a,b relative (inverse) depth d -> Z = 1/(a*d + b) metres\n"
           "  --known-distance T,F,M    relative depth: track T is M metres away at frame F\n"
           "                            (assumes Z = 1/(a*d): no shift; a solved from that box)\n"
           "  --cloud DIR               write DIR/<video>_<frame>.ply (binary, x y z float32 +\n"
           "                            RGB uint8 decoded from the source video)\n"
           "  --stride N                every N-th pixel and row (default 1)\n"
           "  --frames A:B              frames [A, B) (default: all)\n"
           "  --source VIDEO            decode this file instead of the stored source path\n"
           "  --stream N                video stream of the source (as the job's video_stream)\n");
}

static int parse_doubles(const char *s, double *v, int n) {
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        errno = 0;
        v[i] = strtod(p, &end);
        if (errno || end == p || !isfinite(v[i])) return 0;
        p = end;
        if (i < n - 1) {
            if (*p != ',') return 0;
            p++;
        }
    }
    return *p == 0;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

typedef struct opts {
    const char *h5, *video, *det, *out, *cloud, *source;
    dm_det_format format;
    int have_k, have_hfov, have_scale, have_known, stride, stream;
    double k[4], hfov, scale[2], known[3], region, outlier_k;
    long frame_a, frame_b; /* -1: default */
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){
        .region = 0.5, .outlier_k = 3.0, .stride = 1, .stream = -1, .frame_a = -1, .frame_b = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        }
        if (a[0] != '-') {
            if (o->h5) return ERR("more than one input file (%s, %s)", o->h5, a), 2;
            o->h5 = a;
            continue;
        }
        if (!v) return ERR("%s needs a value", a), 2;
        i++;
        if (!strcmp(a, "--intrinsics")) {
            if (!parse_doubles(v, o->k, 4) || !(o->k[0] > 0) || !(o->k[1] > 0))
                return ERR("--intrinsics %s: needs fx,fy,cx,cy in pixels, fx, fy > 0", v), 2;
            o->have_k = 1;
        } else if (!strcmp(a, "--hfov")) {
            if (!parse_doubles(v, &o->hfov, 1) || !(o->hfov > 0 && o->hfov < 180))
                return ERR("--hfov %s: needs degrees, 0 < hfov < 180", v), 2;
            o->have_hfov = 1;
        } else if (!strcmp(a, "--video")) {
            o->video = v;
        } else if (!strcmp(a, "--detections")) {
            o->det = v;
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "auto"))
                o->format = DM_DET_AUTO;
            else if (!strcmp(v, "csv"))
                o->format = DM_DET_CSV;
            else if (!strcmp(v, "json"))
                o->format = DM_DET_JSON;
            else if (!strcmp(v, "mot"))
                o->format = DM_DET_MOT;
            else
                return ERR("--format %s: one of auto, csv, json, mot", v), 2;
        } else if (!strcmp(a, "--region")) {
            if (!parse_doubles(v, &o->region, 1) || !(o->region > 0 && o->region <= 1))
                return ERR("--region %s: needs 0 < R <= 1", v), 2;
        } else if (!strcmp(a, "--outlier-k")) {
            if (!parse_doubles(v, &o->outlier_k, 1) || !(o->outlier_k >= 0))
                return ERR("--outlier-k %s: needs K >= 0", v), 2;
        } else if (!strcmp(a, "--out")) {
            o->out = v;
        } else if (!strcmp(a, "--inverse-depth-scale")) {
            if (!parse_doubles(v, o->scale, 2) || (o->scale[0] == 0 && o->scale[1] == 0))
                return ERR("--inverse-depth-scale %s: needs a,b (Z = 1/(a*d + b))", v), 2;
            o->have_scale = 1;
        } else if (!strcmp(a, "--known-distance")) {
            if (!parse_doubles(v, o->known, 3) || o->known[0] != floor(o->known[0]) ||
                o->known[1] != floor(o->known[1]) || o->known[1] < 0 || !(o->known[2] > 0))
                return ERR("--known-distance %s: needs TRACK,FRAME,METRES (integers, "
                           "metres > 0)",
                           v),
                       2;
            o->have_known = 1;
        } else if (!strcmp(a, "--cloud")) {
            o->cloud = v;
        } else if (!strcmp(a, "--stride")) {
            if (!parse_long(v, 1, 100000, &l)) return ERR("--stride %s: needs N >= 1", v), 2;
            o->stride = (int)l;
        } else if (!strcmp(a, "--frames")) {
            const char *c = strchr(v, ':');
            char buf[64];
            snprintf(buf, sizeof buf, "%.*s", c ? (int)(c - v) : 0, v);
            if (!c || !parse_long(buf, 0, 1L << 40, &o->frame_a) ||
                !parse_long(c + 1, 1, 1L << 40, &o->frame_b) || o->frame_b <= o->frame_a)
                return ERR("--frames %s: needs A:B with 0 <= A < B", v), 2;
        } else if (!strcmp(a, "--source")) {
            o->source = v;
        } else if (!strcmp(a, "--stream")) {
            if (!parse_long(v, 0, 1000000, &l)) return ERR("--stream %s: not an index", v), 2;
            o->stream = (int)l;
        } else {
            ERR("unknown option %s (see depthmatte points --help)", a);
            return 2;
        }
    }
    if (!o->h5) return usage(stderr), 2;
    if (!o->det && !o->cloud)
        return ERR("nothing to do: give --detections DET and/or --cloud DIR"), 2;
    if (o->out && !o->det) return ERR("--out needs --detections"), 2;
    size_t lo = o->out ? strlen(o->out) : 0;
    if (o->out && !(lo > 4 && !strcmp(o->out + lo - 4, ".csv")) &&
        !(lo > 5 && !strcmp(o->out + lo - 5, ".json")))
        return ERR("--out %s: the name must end in .csv or .json", o->out), 2;
    if (o->have_k && o->have_hfov) return ERR("give --intrinsics or --hfov, not both"), 2;
    if (o->have_scale && o->have_known)
        return ERR("give --inverse-depth-scale or --known-distance, not both"), 2;
    if (o->have_known && !o->det) return ERR("--known-distance needs --detections"), 2;
    return 0;
}

/* Opens the file, picks the video, checks depth and intrinsics. */
static int setup(const opts *o, dm_h5r_file **fp, int *vidx, pt_run *r) {
    dm_h5r_file *f = NULL;
    if (dm_h5r_open(o->h5, &f)) return ERR("%s", dm_error_message()), 1;
    *fp = f;
    int idx = 0, n = dm_h5r_video_count(f);
    if (o->video) {
        if (dm_h5r_find_video(f, o->video, &idx)) return ERR("%s", dm_error_message()), 1;
    } else if (n != 1) {
        return ERR("%s: %d videos in the file: choose one with --video ID", o->h5, n), 1;
    }
    *vidx = idx;
    dm_h5r_video *v = &r->video;
    if (dm_h5r_video_info(f, idx, v)) return ERR("%s", dm_error_message()), 1;
    if (!strcmp(v->status, "failed"))
        return ERR("%s: video %s (%s) failed in the run: %s", o->h5, v->id, v->source, v->error), 1;
    if (!v->depth.present)
        return ERR("%s: video %s has no depth dataset (run a job with depth enabled)", o->h5,
                   v->id),
               1;
    if (strcmp(v->depth_size, "source"))
        return ERR("%s: video %s: depth is stored on the network grid (size %s, %dx%d), not in "
                   "pixels of the source frame: rerun with depth.output_size: source",
                   o->h5, v->id, v->depth_size, v->depth_input_width, v->depth_input_height),
               1;
    if (!o->have_k && !o->have_hfov)
        return ERR("missing intrinsics: give --intrinsics fx,fy,cx,cy (pixels) or --hfov DEG; "
                   "there is no default (a placeholder focal length such as 470.4 px would "
                   "give wrong metres)"),
               1;
    if (o->have_k) {
        r->k = (dm_intrinsics){o->k[0], o->k[1], o->k[2], o->k[3]};
        r->k_source = "--intrinsics";
    } else {
        dm_intrinsics_from_hfov(o->hfov, v->width, v->height, &r->k);
        r->k_source = "--hfov";
    }
    if (v->depth_metric) {
        if (o->have_scale || o->have_known)
            return ERR("%s: video %s: depth is already metric (%s, units m): "
                       "--inverse-depth-scale and --known-distance apply to relative depth "
                       "only",
                       o->h5, v->id, v->depth.model),
                   1;
        r->conv = (dm_depth_to_z){0, 0, 0};
        r->conv_source = "metric";
    } else if (o->have_scale) {
        r->conv = (dm_depth_to_z){1, o->scale[0], o->scale[1]};
        r->conv_source = "--inverse-depth-scale";
    } else if (o->have_known) {
        r->conv = (dm_depth_to_z){1, 0, 0}; /* a solved in locate() */
        r->conv_source = "--known-distance";
    } else {
        return ERR("%s: video %s: depth is relative inverse depth (%s, units %s), which has no "
                   "metric meaning: give --inverse-depth-scale a,b (Z = 1/(a*d + b)) or "
                   "--known-distance TRACK,FRAME,METRES, or run a metric model "
                   "(depth.model: vda_vits_metric)",
                   o->h5, v->id, v->depth.model, v->depth_units),
               1;
    }
    return 0;
}

static int cmp_by_frame(const void *a, const void *b) {
    const pt_result *x = *(const pt_result *const *)a, *y = *(const pt_result *const *)b;
    if (x->det->frame != y->det->frame) return x->det->frame < y->det->frame ? -1 : 1;
    return x->det->record - y->det->record;
}

static int cmp_by_track(const void *a, const void *b) {
    const pt_result *x = *(const pt_result *const *)a, *y = *(const pt_result *const *)b;
    if (x->det->track != y->det->track) return x->det->track < y->det->track ? -1 : 1;
    return x->det->frame < y->det->frame ? -1 : x->det->frame > y->det->frame;
}

/* Checks every detection against the video (frame range, done marker, image bounds). */
static int check_detections(const opts *o, const pt_run *r, const dm_detection *d, int n,
                            const uint8_t *done) {
    const dm_h5r_video *v = &r->video;
    for (int i = 0; i < n; i++) {
        if (d[i].frame >= v->frames)
            return ERR("%s: row %d: frame %lld is beyond the video (%s video %s has %lld "
                       "frames, rows 0..%lld)",
                       o->det, d[i].record, (long long)d[i].frame, o->h5, v->id,
                       (long long)v->frames, (long long)v->frames - 1),
                   1;
        if (!done[d[i].frame])
            return ERR("%s: row %d: frame %lld of %s video %s is not written yet (done = 0): "
                       "finish the run (depthmatte run JOB --resume)",
                       o->det, d[i].record, (long long)d[i].frame, o->h5, v->id),
                   1;
        if (d[i].x1 < 0 || d[i].y1 < 0 || d[i].x2 > v->width || d[i].y2 > v->height)
            return ERR("%s: row %d: box (%g, %g, %g, %g) is outside the image [0, %d] x "
                       "[0, %d] (pixels of the source frame)",
                       o->det, d[i].record, d[i].x1, d[i].y1, d[i].x2, d[i].y2, v->width,
                       v->height),
                   1;
    }
    return 0;
}

/* Depth and back-projection of every detection; *conv solved first for --known-distance. */
static int locate(const opts *o, dm_h5r_file *f, int vidx, pt_run *r, const dm_detection *d, int n,
                  const double *time_s) {
    const dm_h5r_video *v = &r->video;
    size_t px = (size_t)v->width * v->height;
    float *depth = malloc(px * sizeof *depth);
    double *scratch = malloc(px * sizeof *scratch);
    const pt_result **order = malloc((size_t)n * sizeof *order);
    r->res = calloc((size_t)n, sizeof *r->res);
    if (!depth || !scratch || !order || !r->res) {
        free(depth), free(scratch), free(order);
        return ERR("out of memory"), 1;
    }
    int rc = 0;
    if (o->have_known) {
        const dm_detection *kd = NULL;
        for (int i = 0; i < n; i++)
            if (d[i].track == (int64_t)o->known[0] && d[i].frame == (int64_t)o->known[1])
                kd = &d[i];
        if (!kd) {
            rc = 1;
            ERR("--known-distance: %s has no box of track %.0f in frame %.0f", o->det, o->known[0],
                o->known[1]);
        } else if (dm_h5r_read_depth(f, vidx, kd->frame, kd->frame + 1, depth)) {
            rc = 1;
            ERR("%s", dm_error_message());
        } else {
            dm_depth_to_z raw = {0, 0, 0}; /* median of the positive finite d */
            double dmed;
            int np;
            dm_box_depth(depth, v->width, v->height, kd, o->region, &raw, scratch, &dmed, &np);
            if (isnan(dmed)) {
                rc = 1;
                ERR("--known-distance: the box of track %lld in frame %lld has no positive "
                    "depth value",
                    (long long)kd->track, (long long)kd->frame);
            } else {
                r->conv.a = 1.0 / (o->known[2] * dmed), r->conv.b = 0;
                printf("--known-distance: median inverse depth %.9g at track %lld frame %lld "
                       "-> Z = 1/(a*d) with a = %.9g\n",
                       dmed, (long long)kd->track, (long long)kd->frame, r->conv.a);
            }
        }
    }
    for (int i = 0; i < n; i++)
        r->res[i].det = &d[i], order[i] = &r->res[i];
    qsort(order, (size_t)n, sizeof *order, cmp_by_frame);
    int64_t loaded = -1;
    for (int i = 0; i < n && !rc; i++) {
        pt_result *p = (pt_result *)order[i];
        const dm_detection *det = p->det;
        if (det->frame != loaded) {
            if (dm_h5r_read_depth(f, vidx, det->frame, det->frame + 1, depth)) {
                rc = 1;
                ERR("%s", dm_error_message());
                break;
            }
            loaded = det->frame;
        }
        p->t = time_s[det->frame];
        p->u = 0.5 * (det->x1 + det->x2), p->v = 0.5 * (det->y1 + det->y2);
        dm_box_depth(depth, v->width, v->height, det, o->region, &r->conv, scratch, &p->z,
                     &p->pixels);
        if (isnan(p->z)) {
            r->skipped++;
            fprintf(stderr,
                    "depthmatte points: warning: %s: row %d: track %lld frame %lld: no "
                    "valid depth pixel in the box region; skipped\n",
                    o->det, det->record, (long long)det->track, (long long)det->frame);
            p->x = p->y = NAN;
            continue;
        }
        p->x = (p->u - r->k.cx) * p->z / r->k.fx;
        p->y = (p->v - r->k.cy) * p->z / r->k.fy;
    }
    free(depth), free(scratch), free(order);
    return rc;
}

/* Groups located results by track and computes the figures. */
static int tracks(pt_run *r) {
    r->by_track = malloc((size_t)(r->n ? r->n : 1) * sizeof *r->by_track);
    r->tracks = calloc((size_t)(r->n ? r->n : 1), sizeof *r->tracks);
    dm_track_point *pts = malloc((size_t)(r->n ? r->n : 1) * sizeof *pts);
    double *scratch = malloc((size_t)(r->n ? r->n : 1) * sizeof *scratch);
    if (!r->by_track || !r->tracks || !pts || !scratch) {
        free(pts), free(scratch);
        return ERR("out of memory"), 1;
    }
    for (int i = 0; i < r->n; i++)
        if (!isnan(r->res[i].z)) r->by_track[r->located++] = &r->res[i];
    qsort(r->by_track, (size_t)r->located, sizeof *r->by_track, cmp_by_track);
    int rc = 0;
    for (int i = 0; i < r->located && !rc;) {
        int j = i;
        while (j < r->located && r->by_track[j]->det->track == r->by_track[i]->det->track)
            j++;
        pt_track *t = &r->tracks[r->n_tracks++];
        t->id = r->by_track[i]->det->track;
        t->cls = r->by_track[i]->det->cls;
        t->first = i, t->count = j - i;
        t->first_frame = r->by_track[i]->det->frame, t->last_frame = r->by_track[j - 1]->det->frame;
        for (int q = i; q < j; q++) {
            const pt_result *p = r->by_track[q];
            pts[q - i] = (dm_track_point){p->det->frame, p->t, p->x, p->y, p->z};
        }
        if (dm_track_stats_compute(pts, j - i, r->outlier_k, scratch, &t->stats)) {
            rc = 1;
            ERR("%s: track %lld: %s (time_s of %s)", r->det_path, (long long)t->id,
                dm_error_message(), r->h5_path);
        }
        i = j;
    }
    free(pts), free(scratch);
    return rc;
}

/* --cloud: one PLY per frame, colours from the decoded source video. */
static int clouds(const opts *o, dm_h5r_file *f, int vidx, const pt_run *r, const uint8_t *done) {
    const dm_h5r_video *v = &r->video;
    int64_t a = o->frame_a < 0 ? 0 : o->frame_a, b = o->frame_b < 0 ? v->frames : o->frame_b;
    if (b > v->frames)
        return ERR("--frames %lld:%lld: %s video %s has %lld frames", (long long)a, (long long)b,
                   o->h5, v->id, (long long)v->frames),
               1;
    for (int64_t t = a; t < b; t++)
        if (!done[t])
            return ERR("%s: video %s frame %lld is not written yet (done = 0): finish the run "
                       "(depthmatte run JOB --resume) or choose --frames",
                       o->h5, v->id, (long long)t),
                   1;
    if (mkdir(o->cloud, 0777) != 0 && errno != EEXIST)
        return ERR("%s: %s", o->cloud, strerror(errno)), 1;
    const char *src = o->source ? o->source : v->source;
    av_log_set_level(AV_LOG_QUIET);
    dm_video_reader *vr = NULL;
    /* the source as the run presented it: frame_step, max_res, image sequence at its rate */
    dm_video_options vo = DM_VIDEO_OPTIONS_INIT;
    vo.stream_index = o->stream;
    vo.images = v->images;
    vo.fps_num = v->source_fps_num, vo.fps_den = v->source_fps_den > 0 ? v->source_fps_den : 1;
    vo.frame_step = v->frame_step;
    vo.max_res = v->max_res;
    if (dm_video_open_opts(&vr, src, &vo))
        return ERR("%s (source of %s video %s; --source VIDEO reads another path)",
                   dm_error_message(), o->h5, v->id),
               1;
    const dm_video_info *vi = dm_video_reader_info(vr);
    int rc = 0;
    if (vi->width != v->width || vi->height != v->height || vi->frames < b) {
        rc = 1;
        ERR("%s: %dx%d, %lld frames: does not match %s video %s (%dx%d, %lld frames)", src,
            vi->width, vi->height, (long long)vi->frames, o->h5, v->id, v->width, v->height,
            (long long)v->frames);
    }
    size_t px = (size_t)v->width * v->height;
    float *depth = malloc(px * sizeof *depth);
    uint8_t *rgb = malloc(px * 3);
    if (!rc && (!depth || !rgb)) rc = 1, ERR("out of memory");
    if (!rc && dm_video_seek(vr, a)) rc = 1, ERR("%s", dm_error_message());
    int64_t total = 0;
    for (int64_t t = a; t < b && !rc; t++) {
        int64_t got = -1, nv = 0;
        dm_status st = dm_video_read(vr, rgb, &got, NULL, NULL);
        if (st == DM_VIDEO_END || (st == DM_OK && got != t)) {
            rc = 1;
            ERR("%s: frame %lld not decoded (got %lld)", src, (long long)t, (long long)got);
            break;
        }
        if (st) {
            rc = 1;
            ERR("%s", dm_error_message());
            break;
        }
        if (dm_h5r_read_depth(f, vidx, t, t + 1, depth)) {
            rc = 1;
            ERR("%s", dm_error_message());
            break;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%s_%06lld.ply", o->cloud, v->id, (long long)t);
        if (dm_ply_write_frame(path, depth, rgb, v->width, v->height, o->stride, &r->k, &r->conv,
                               &nv)) {
            rc = 1;
            ERR("%s", dm_error_message());
            break;
        }
        total += nv;
    }
    if (!rc)
        printf("wrote %lld point clouds to %s (%s_%06lld.ply .. %s_%06lld.ply), %lld points, "
               "stride %d\n",
               (long long)(b - a), o->cloud, v->id, (long long)a, v->id, (long long)b - 1,
               (long long)total, o->stride);
    free(depth), free(rgb);
    dm_video_close(vr);
    return rc;
}

int cmd_points(int argc, char **argv) {
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    pt_run r = {.h5_path = o.h5,
                .det_path = o.det ? o.det : "",
                .region = o.region,
                .outlier_k = o.outlier_k,
                .hfov = o.hfov};
    dm_h5r_file *f = NULL;
    int vidx = 0;
    dm_detection *det = NULL;
    uint8_t *done = NULL;
    double *time_s = NULL;
    rc = setup(&o, &f, &vidx, &r);
    if (!rc && !r.video.done.present)
        rc = 1, ERR("%s: video %s has no done markers", o.h5, r.video.id);
    if (!rc) {
        size_t T = (size_t)(r.video.frames > 0 ? r.video.frames : 1);
        done = malloc(T), time_s = malloc(T * sizeof *time_s);
        if (!done || !time_s)
            rc = 1, ERR("out of memory");
        else if (dm_h5r_read_done(f, vidx, done) || dm_h5r_read_time(f, vidx, time_s))
            rc = 1, ERR("%s", dm_error_message());
    }
    if (!rc && o.det) {
        if (dm_detections_read(o.det, o.format, &det, &r.n)) rc = 1, ERR("%s", dm_error_message());
        if (!rc) rc = check_detections(&o, &r, det, r.n, done);
        if (!rc) rc = locate(&o, f, vidx, &r, det, r.n, time_s);
        if (!rc) rc = tracks(&r);
        if (!rc) pt_print_summary(&r);
        if (!rc && o.out) rc = pt_write_outputs(&r, o.out);
    }
    if (!rc && o.cloud) rc = clouds(&o, f, vidx, &r, done);
    free(det), free(done), free(time_s);
    free(r.res), free(r.by_track), free(r.tracks);
    dm_h5r_close(f);
    return rc;
}
