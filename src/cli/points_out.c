/* Outputs of `depthmatte points`: CSV (detections + tracks), JSON, the stdout summary. Columns:
 * docs/points.md "Output". */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/points_cli.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Opens path.tmp for writing; *tmp receives its name. */
static FILE *open_tmp(const char *path, char *tmp, size_t size) {
    snprintf(tmp, size, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp) fprintf(stderr, "depthmatte points: error: %s: %s\n", tmp, strerror(errno));
    return fp;
}

/* Closes fp and renames tmp to path; removes tmp on any failure. */
static int commit(FILE *fp, const char *tmp, const char *path) {
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    if (bad) {
        fprintf(stderr, "depthmatte points: error: %s: write failed\n", tmp);
        remove(tmp);
        return 1;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "depthmatte points: error: %s: %s\n", path, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

static void num(FILE *fp, double v) {
    if (isnan(v))
        fputs("nan", fp);
    else
        fprintf(fp, "%.9g", v);
}

static int write_csv(const pt_run *r, const char *out) {
    char tmp[4200], tracks[4200], tmp2[4300];
    size_t stem = strlen(out) - 4; /* ".csv" */
    snprintf(tracks, sizeof tracks, "%.*s_tracks.csv", (int)stem, out);
    FILE *fp = open_tmp(out, tmp, sizeof tmp);
    if (!fp) return 1;
    fputs("frame,time_s,track,class,conf,u,v,z_m,x_m,y_m,pixels\n", fp);
    for (int i = 0; i < r->n; i++) {
        const pt_result *p = &r->res[i];
        if (isnan(p->z)) continue;
        fprintf(fp, "%lld,%.9g,%lld,", (long long)p->det->frame, p->t, (long long)p->det->track);
        dm_csv_write_field(fp, p->det->cls);
        fputc(',', fp);
        if (!isnan(p->det->conf)) fprintf(fp, "%.6g", p->det->conf);
        fprintf(fp, ",%.9g,%.9g,%.9g,%.9g,%.9g,%d\n", p->u, p->v, p->z, p->x, p->y, p->pixels);
    }
    FILE *ft = open_tmp(tracks, tmp2, sizeof tmp2);
    if (!ft) {
        fclose(fp), remove(tmp);
        return 1;
    }
    fputs("track,class,detections,first_frame,last_frame,duration_s,path_length_m,"
          "displacement_m,tortuosity,mean_speed_m_s,max_speed_m_s,median_speed_m_s,"
          "mad_speed_m_s,outlier_steps\n",
          ft);
    for (int i = 0; i < r->n_tracks; i++) {
        const pt_track *t = &r->tracks[i];
        const dm_track_stats *s = &t->stats;
        fprintf(ft, "%lld,", (long long)t->id);
        dm_csv_write_field(ft, t->cls);
        fprintf(ft, ",%d,%lld,%lld,", s->points, (long long)t->first_frame,
                (long long)t->last_frame);
        const double v[] = {s->duration_s, s->path_length, s->displacement, s->tortuosity,
                            s->mean_speed, s->max_speed,   s->median_speed, s->mad_speed};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++)
            num(ft, v[j]), fputc(',', ft);
        fprintf(ft, "%d\n", s->outlier_steps);
    }
    if (commit(ft, tmp2, tracks)) {
        fclose(fp), remove(tmp);
        return 1;
    }
    if (commit(fp, tmp, out)) {
        remove(tracks);
        return 1;
    }
    printf("wrote %s (%d detections) and %s (%d tracks)\n", out, r->located, tracks, r->n_tracks);
    return 0;
}

static cJSON *track_json(const pt_track *t) {
    const dm_track_stats *s = &t->stats;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "track", (double)t->id);
    cJSON_AddStringToObject(o, "class", t->cls);
    cJSON_AddNumberToObject(o, "detections", s->points);
    cJSON_AddNumberToObject(o, "first_frame", (double)t->first_frame);
    cJSON_AddNumberToObject(o, "last_frame", (double)t->last_frame);
    /* cJSON writes NaN as null */
    cJSON_AddNumberToObject(o, "duration_s", s->duration_s);
    cJSON_AddNumberToObject(o, "path_length_m", s->path_length);
    cJSON_AddNumberToObject(o, "displacement_m", s->displacement);
    cJSON_AddNumberToObject(o, "tortuosity", s->tortuosity);
    cJSON_AddNumberToObject(o, "mean_speed_m_s", s->mean_speed);
    cJSON_AddNumberToObject(o, "max_speed_m_s", s->max_speed);
    cJSON_AddNumberToObject(o, "median_speed_m_s", s->median_speed);
    cJSON_AddNumberToObject(o, "mad_speed_m_s", s->mad_speed);
    cJSON_AddNumberToObject(o, "outlier_steps", s->outlier_steps);
    return o;
}

static int write_json(const pt_run *r, const char *out) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", r->h5_path);
    cJSON_AddStringToObject(root, "video", r->video.id);
    cJSON_AddStringToObject(root, "source", r->video.source);
    cJSON_AddStringToObject(root, "detections_file", r->det_path);
    cJSON_AddStringToObject(root, "depth_model", r->video.depth.model);
    cJSON *conv = cJSON_AddObjectToObject(root, "depth_to_metres");
    cJSON_AddStringToObject(conv, "from", r->conv_source);
    if (r->conv.inverse) {
        cJSON_AddStringToObject(conv, "formula", "Z = 1 / (a * d + b)");
        cJSON_AddNumberToObject(conv, "a", r->conv.a);
        cJSON_AddNumberToObject(conv, "b", r->conv.b);
    } else {
        cJSON_AddStringToObject(conv, "formula", "Z = d (metric depth)");
    }
    cJSON *k = cJSON_AddObjectToObject(root, "intrinsics");
    cJSON_AddStringToObject(k, "from", r->k_source);
    cJSON_AddNumberToObject(k, "fx", r->k.fx);
    cJSON_AddNumberToObject(k, "fy", r->k.fy);
    cJSON_AddNumberToObject(k, "cx", r->k.cx);
    cJSON_AddNumberToObject(k, "cy", r->k.cy);
    cJSON_AddNumberToObject(root, "region", r->region);
    cJSON_AddNumberToObject(root, "outlier_k", r->outlier_k);
    cJSON *dets = cJSON_AddArrayToObject(root, "detections");
    cJSON *skipped = cJSON_AddArrayToObject(root, "skipped");
    for (int i = 0; i < r->n; i++) {
        const pt_result *p = &r->res[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "frame", (double)p->det->frame);
        cJSON_AddNumberToObject(o, "time_s", p->t);
        cJSON_AddNumberToObject(o, "track", (double)p->det->track);
        cJSON_AddStringToObject(o, "class", p->det->cls);
        if (isnan(p->z)) {
            cJSON_AddNumberToObject(o, "row", p->det->record);
            cJSON_AddStringToObject(o, "reason", "no valid depth pixel in the box region");
            cJSON_AddItemToArray(skipped, o);
            continue;
        }
        if (!isnan(p->det->conf)) cJSON_AddNumberToObject(o, "conf", p->det->conf);
        cJSON_AddNumberToObject(o, "u", p->u);
        cJSON_AddNumberToObject(o, "v", p->v);
        cJSON_AddNumberToObject(o, "z_m", p->z);
        cJSON_AddNumberToObject(o, "x_m", p->x);
        cJSON_AddNumberToObject(o, "y_m", p->y);
        cJSON_AddNumberToObject(o, "pixels", p->pixels);
        cJSON_AddItemToArray(dets, o);
    }
    cJSON *tr = cJSON_AddArrayToObject(root, "tracks");
    for (int i = 0; i < r->n_tracks; i++)
        cJSON_AddItemToArray(tr, track_json(&r->tracks[i]));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "depthmatte points: error: %s: out of memory\n", out);
        return 1;
    }
    char tmp[4200];
    FILE *fp = open_tmp(out, tmp, sizeof tmp);
    if (!fp) {
        free(text);
        return 1;
    }
    fputs(text, fp);
    fputc('\n', fp);
    free(text);
    if (commit(fp, tmp, out)) return 1;
    printf("wrote %s (%d detections, %d tracks)\n", out, r->located, r->n_tracks);
    return 0;
}

int pt_write_outputs(const pt_run *r, const char *out) {
    if (ends_with(out, ".csv")) return write_csv(r, out);
    if (ends_with(out, ".json")) return write_json(r, out);
    fprintf(stderr, "depthmatte points: error: --out %s: the name must end in .csv or .json\n",
            out);
    return 1;
}

void pt_print_summary(const pt_run *r) {
    printf("%s video %s (%s): %d detections, %d located, %d skipped (no valid depth pixel), "
           "%d tracks; depth %s, region %g, outlier k %g\n",
           r->h5_path, r->video.id, r->video.source, r->n, r->located, r->skipped, r->n_tracks,
           r->conv_source, r->region, r->outlier_k);
    printf("intrinsics (%s): fx %.6g fy %.6g cx %.6g cy %.6g px\n", r->k_source, r->k.fx, r->k.fy,
           r->k.cx, r->k.cy);
    printf("%-8s %-12s %6s %10s %10s %10s %10s %10s %8s\n", "track", "class", "dets", "path_m",
           "straight_m", "tortuos.", "mean_m/s", "max_m/s", "outliers");
    for (int i = 0; i < r->n_tracks; i++) {
        const pt_track *t = &r->tracks[i];
        const dm_track_stats *s = &t->stats;
        printf("%-8lld %-12s %6d %10.4g %10.4g %10.4g %10.4g %10.4g %8d\n", (long long)t->id,
               t->cls[0] ? t->cls : "-", s->points, s->path_length, s->displacement, s->tortuosity,
               s->mean_speed, s->max_speed, s->outlier_steps);
    }
}
