/* depthmatte points on a synthetic scene with known geometry, plus the library rules.
 *
 * Scene (80 x 60 pixels, fx = fy = 50, cx = 40, cy = 30, 8 fps, 6 frames, the same depth in
 * every frame): a wall at Z = 5 m; a box face at Z = 2 m (columns [2, 14), rows [36, 56)); a
 * sphere of radius 0.5 m centred at (1.2, 0.6, 3) m (it projects around pixel (60, 40)); a hole
 * of NaN depth (columns [70, 78), rows [50, 58)). Written through the project's own writer
 * (h5out) as float32 metric depth (scene_f32.h5), float16 metric depth (scene_f16.h5) and
 * float32 relative inverse depth d = 1 / Z (scene_rel.h5).
 * Detections (scene_det.csv): track 1, a polyline on the wall (-2,-1) (-1,-1) (-1,0) (0,0) m;
 * track 2, twice the same box on the box face; track 3, a small box on the sphere's centre;
 * track 4, a box in the hole (no valid pixel: skipped); track 5, a wall polyline with steps
 * 1, 1, 1, 1, 2.5 m (one outlier step). Every X, Y, Z and every track figure is compared with
 * its closed form; the bound is the storage rounding (float32: 1e-6 relative; float16: 2^-11
 * relative of the depth) and 1e-9 for exact values.
 * Then the bad inputs of the issue, each one error line and a non-zero exit.
 * Usage: test_points DEPTHMATTE_EXE WORK_DIR   (under mpiexec -np 1: h5out needs MPI) */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "depthmatte/h5out.h"
#include "depthmatte/points.h"
#include "tensor_compare.h"

enum { W = 80, H = 60, T = 6 };
static const double FX = 50, FY = 50, CX = 40, CY = 30;
static const double SX = 1.2, SY = 0.6, SZ = 3.0, SR = 0.5; /* sphere, metres */

/* Analytic depth (metres) at the centre of pixel (c, r); NaN in the hole. */
static double scene_z(int c, int r) {
    if (c >= 70 && c < 78 && r >= 50 && r < 58) return NAN;
    if (c >= 2 && c < 14 && r >= 36 && r < 56) return 2.0;
    /* ray P = t * (xn, yn, 1): |P - S|^2 = R^2, nearest root; Z = t */
    double xn = (c + 0.5 - CX) / FX, yn = (r + 0.5 - CY) / FY;
    double dd = xn * xn + yn * yn + 1, dc = xn * SX + yn * SY + SZ;
    double disc = dc * dc - dd * (SX * SX + SY * SY + SZ * SZ - SR * SR);
    if (disc >= 0) return (dc - sqrt(disc)) / dd;
    return 5.0;
}

static dm_status write_scene(const char *path, dm_dtype dtype, int metric) {
    dm_h5_video v = {"scene.mkv", T, 8, 1, W, H, "ffv1", 0, 1, 1, 1, 8, 0, NULL, 0, 0, {0}, 0};
    dm_h5_layout l = {0, DM_DTYPE_U8, 0, 1, dtype, "", "",
                      metric ? "video_depth_anything_small_metric" : "video_depth_anything_small",
                      "", 2, 0, metric, 0, NULL};
    dm_h5_meta meta = {"inputs: [scene.mkv]\n", 1};
    dm_h5_file *f = NULL;
    dm_status st = dm_h5_create(path, MPI_COMM_WORLD, &meta, &l, &v, 1, &f);
    static float d32[2 * W * H];
    static uint16_t d16[2 * W * H];
    for (int t = 0; t < 2; t++)
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++) {
                double z = scene_z(c, r);
                float d = (float)(metric ? z : 1.0 / z);
                d32[(t * H + r) * W + c] = d;
                d16[(t * H + r) * W + c] = dm_f32_to_f16(d);
            }
    for (int b = 0; b < T && !st; b += 2) {
        int64_t pts[2] = {b, b + 1};
        double ts[2] = {b / 8.0, (b + 1) / 8.0};
        dm_h5_block blk = {0, b, 2, NULL, NULL, dtype == DM_DTYPE_F16 ? (void *)d16 : d32,
                           pts, ts, -1, NULL};
        st = dm_h5_write_round(f, &blk, NULL);
    }
    if (!st) st = dm_h5_finish(f);
    dm_status st2 = dm_h5_close(f);
    return st ? st : st2;
}

/* ---- detections of the scene ------------------------------------------------------------- */

typedef struct box {
    int frame, track;
    double u, v, w, h; /* centre and size, pixels */
    const char *cls;
} box;

/* u = cx + X fx / Z, v = cy + Y fy / Z at Z = 5 (wall): 10 px per metre */
static const box boxes[] = {
    {0, 1, 20, 20, 8, 8, "wall"},   {1, 1, 30, 20, 8, 8, "wall"},   {2, 1, 30, 30, 8, 8, "wall"},
    {3, 1, 40, 30, 8, 8, "wall"},   {0, 2, 8, 46, 6, 10, "face"},   {2, 2, 8, 46, 6, 10, "face"},
    {1, 3, 60, 40, 4, 4, "sphere"}, {1, 4, 74, 54, 6, 6, "hole"},   {0, 5, 10, 10, 6, 6, "jump"},
    {1, 5, 20, 10, 6, 6, "jump"},   {2, 5, 30, 10, 6, 6, "jump"},   {3, 5, 40, 10, 6, 6, "jump"},
    {4, 5, 50, 10, 6, 6, "jump"},   {5, 5, 75, 10, 6, 6, "jump"},
};
#define NB ((int)(sizeof boxes / sizeof boxes[0]))

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Closed-form box depth: median of the analytic Z over the region's pixel centres. */
static double box_z(const box *b, double region, int *npix) {
    double v[W * H];
    int n = 0;
    double hw = 0.5 * region * b->w, hh = 0.5 * region * b->h;
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
            double xc = c + 0.5, yc = r + 0.5, z = scene_z(c, r);
            if (xc >= b->u - hw && xc < b->u + hw && yc >= b->v - hh && yc < b->v + hh && !isnan(z))
                v[n++] = z;
        }
    *npix = n;
    if (!n) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) fputs(text, fp), fclose(fp);
}

static void write_det_csv(const char *path) {
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (!fp) return;
    fprintf(fp, "frame,track,x1,y1,x2,y2,class,conf\n");
    for (int i = 0; i < NB; i++) {
        const box *b = &boxes[i];
        fprintf(fp, "%d,%d,%.17g,%.17g,%.17g,%.17g,%s,0.5\n", b->frame, b->track,
                b->u - b->w / 2, b->v - b->h / 2, b->u + b->w / 2, b->v + b->h / 2, b->cls);
    }
    fclose(fp);
}

/* ---- running the CLI ---------------------------------------------------------------------- */

static char g_exe[4096], g_dir[4096];

/* Runs `depthmatte ARGS` (stdout + stderr into out); returns the exit status. */
static int run_cli(const char *args, char *out, size_t size) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", g_dir, g_exe, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static cJSON *read_json(const char *name) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int close_to(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    return fabs(got - want) <= tol;
}

/* The scene through the CLI: every X, Y, Z and every track figure vs the closed form. */
static void check_scene_cli(const char *h5, double rel_tol, const char *extra) {
    char args[8192], out[65536];
    snprintf(args, sizeof args, "points %s --detections scene_det.csv --intrinsics 50,50,40,30 "
             "--region 0.5 --out scene_out.json %s", h5, extra);
    int rc = run_cli(args, out, sizeof out);
    printf("--- %s\n%s", args, out);
    CHECK(rc == 0);
    CHECK(strstr(out, "1 skipped") != NULL && strstr(out, "row 9: track 4 frame 1: no valid depth") != NULL);
    cJSON *j = read_json("scene_out.json");
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *dets = cJSON_GetObjectItem(j, "detections"), *sk = cJSON_GetObjectItem(j, "skipped");
    CHECK(cJSON_GetArraySize(dets) == NB - 1 && cJSON_GetArraySize(sk) == 1);
    CHECK(jnum(cJSON_GetArrayItem(sk, 0), "track") == 4);
    int bad = 0, k = 0;
    double worst = 0;
    for (int i = 0; i < NB; i++) {
        const box *b = &boxes[i];
        int np;
        double z = box_z(b, 0.5, &np);
        if (isnan(z)) continue;
        const cJSON *d = cJSON_GetArrayItem(dets, k++);
        double x = (b->u - CX) * z / FX, y = (b->v - CY) * z / FY;
        double tol = rel_tol * z + 1e-9;
        double e = fmax(fabs(jnum(d, "z_m") - z), fmax(fabs(jnum(d, "x_m") - x), fabs(jnum(d, "y_m") - y)));
        worst = fmax(worst, e / z);
        int ok = jnum(d, "frame") == b->frame && jnum(d, "track") == b->track &&
                 jnum(d, "pixels") == np && close_to(jnum(d, "z_m"), z, tol) &&
                 close_to(jnum(d, "x_m"), x, tol) && close_to(jnum(d, "y_m"), y, tol) &&
                 jnum(d, "u") == b->u && jnum(d, "v") == b->v &&
                 jnum(d, "time_s") == b->frame / 8.0;
        if (!ok)
            printf("  mismatch: track %d frame %d: Z %.9g (want %.9g) X %.9g (%.9g) Y %.9g (%.9g) "
                   "pixels %g (%d)\n", b->track, b->frame, jnum(d, "z_m"), z, jnum(d, "x_m"), x,
                   jnum(d, "y_m"), y, jnum(d, "pixels"), np);
        bad += !ok;
    }
    printf("  %s: %d detections vs closed form, %d mismatches, worst relative error %.3g "
           "(bound %.3g)\n", h5, k, bad, worst, rel_tol);
    CHECK(bad == 0);
    /* tracks, in id order 1, 2, 3, 5 (4 has no located point) */
    const cJSON *tr = cJSON_GetObjectItem(j, "tracks");
    CHECK(cJSON_GetArraySize(tr) == 4);
    const cJSON *t1 = cJSON_GetArrayItem(tr, 0), *t2 = cJSON_GetArrayItem(tr, 1),
                *t5 = cJSON_GetArrayItem(tr, 3);
    double e9 = 1e-9 + 25 * rel_tol; /* positions <= 8 m, speeds <= 20 m/s */
    CHECK(jnum(t1, "track") == 1 && jnum(t1, "detections") == 4);
    CHECK(close_to(jnum(t1, "path_length_m"), 3.0, e9));
    CHECK(close_to(jnum(t1, "displacement_m"), sqrt(5.0), e9));
    CHECK(close_to(jnum(t1, "tortuosity"), 3.0 / sqrt(5.0), e9));
    CHECK(close_to(jnum(t1, "mean_speed_m_s"), 3.0 / 0.375, e9));
    CHECK(close_to(jnum(t1, "max_speed_m_s"), 8.0, e9) && jnum(t1, "outlier_steps") == 0);
    /* the same box twice: no motion, tortuosity undefined (null) */
    CHECK(jnum(t2, "track") == 2 && jnum(t2, "path_length_m") == 0);
    CHECK(isnan(jnum(t2, "tortuosity")) && jnum(t2, "displacement_m") == 0);
    CHECK(jnum(t5, "track") == 5 && jnum(t5, "detections") == 6);
    CHECK(close_to(jnum(t5, "path_length_m"), 6.5, e9) && close_to(jnum(t5, "tortuosity"), 1.0, e9));
    CHECK(close_to(jnum(t5, "mean_speed_m_s"), 6.5 / 0.625, e9));
    CHECK(close_to(jnum(t5, "max_speed_m_s"), 20.0, e9));
    CHECK(close_to(jnum(t5, "median_speed_m_s"), 8.0, e9) && jnum(t5, "mad_speed_m_s") == 0);
    CHECK(jnum(t5, "outlier_steps") == 1);
    cJSON_Delete(j);
}

/* One bad input: non-zero exit, exactly one line, naming `name` and containing `cause`. */
static void bad_input(const char *args, const char *name, const char *cause) {
    char out[65536];
    int rc = run_cli(args, out, sizeof out);
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    printf("bad input [%s] -> rc %d: %s", args, rc, out);
    CHECK(rc != 0 && lines == 1 && strstr(out, "error") != NULL);
    CHECK(!name || strstr(out, name) != NULL);
    CHECK(strstr(out, cause) != NULL);
}

static void check_bad_inputs(void) {
    const char *k = "--intrinsics 50,50,40,30";
    char a[8192];
    char p[8192];
    snprintf(p, sizeof p, "%s/bad_beyond.csv", g_dir);
    write_text(p, "frame,track,x1,y1,x2,y2\n0,1,10,10,20,20\n6,1,10,10,20,20\n");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections bad_beyond.csv", k);
    bad_input(a, "bad_beyond.csv", "row 3: frame 6 is beyond the video");
    snprintf(p, sizeof p, "%s/bad_outside.csv", g_dir);
    write_text(p, "frame,track,x1,y1,x2,y2\n0,1,70,50,81,58\n");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections bad_outside.csv", k);
    bad_input(a, "bad_outside.csv", "outside the image [0, 80] x [0, 60]");
    snprintf(p, sizeof p, "%s/bad_empty.csv", g_dir);
    write_text(p, "");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections bad_empty.csv", k);
    bad_input(a, "bad_empty.csv", "empty file");
    snprintf(p, sizeof p, "%s/bad_header_only.csv", g_dir);
    write_text(p, "frame,track,x1,y1,x2,y2\n");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections bad_header_only.csv", k);
    bad_input(a, "bad_header_only.csv", "no detections");
    snprintf(p, sizeof p, "%s/bad_column.csv", g_dir);
    write_text(p, "frame,trak,x1,y1,x2,y2\n0,1,10,10,20,20\n");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections bad_column.csv", k);
    bad_input(a, "bad_column.csv", "unknown column 'trak'");
    snprintf(p, sizeof p, "%s/bad_notrack.csv", g_dir);
    write_text(p, "frame,x1,y1,x2,y2\n0,10,10,20,20\n");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections bad_notrack.csv", k);
    bad_input(a, "bad_notrack.csv", "no track column");
    snprintf(a, sizeof a, "points scene_rel.h5 %s --detections scene_det.csv", k);
    bad_input(a, "scene_rel.h5", "relative inverse depth");
    snprintf(a, sizeof a, "points scene_f32.h5 --detections scene_det.csv");
    bad_input(a, NULL, "missing intrinsics");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections missing.csv", k);
    bad_input(a, "missing.csv", "No such file");
    snprintf(a, sizeof a, "points scene_det.csv %s --detections scene_det.csv", k);
    bad_input(a, "scene_det.csv", "not an HDF5 file");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections scene_det.csv --video 3", k);
    bad_input(a, "scene_f32.h5", "no video '3'");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections scene_det.csv --out x.txt", k);
    bad_input(a, "x.txt", "must end in .csv or .json");
    snprintf(a, sizeof a, "points scene_f32.h5 %s --detections scene_det.csv "
             "--inverse-depth-scale 1,0", k);
    bad_input(a, "scene_f32.h5", "already metric");
}

/* ---- library rules ------------------------------------------------------------------------ */

static void check_library(void) {
    double v[6] = {3, 1, 2};
    CHECK(dm_median(v, 3) == 2);
    double e[4] = {4, 1, 3, 2};
    CHECK(dm_median(e, 4) == 2.5);
    CHECK(isnan(dm_median(e, 0)));

    /* pixel-centre rule: [10.2, 19.9) x [20.6, 30.4) -> columns 10..19, rows 21..29 (the
     * centre 30.5 is outside, 20.5 too; a rule on r + 0.25 would take row 30) */
    static float depth[W * H];
    for (int i = 0; i < W * H; i++) depth[i] = (float)(i % 7) + 1;
    double scratch[W * H], z;
    int np;
    dm_detection d = {.x1 = 10.2, .y1 = 20.6, .x2 = 19.9, .y2 = 30.4};
    dm_depth_to_z metric = {0, 0, 0};
    dm_box_depth(depth, W, H, &d, 1.0, &metric, scratch, &z, &np);
    CHECK(np == 90);
    /* region 0.5: [12.625, 17.475) x [23.05, 27.95) -> columns 13..16, rows 23..27 */
    dm_box_depth(depth, W, H, &d, 0.5, &metric, scratch, &z, &np);
    CHECK(np == 20);
    int n = 0;
    for (int r = 23; r <= 27; r++)
        for (int c = 13; c <= 16; c++) scratch[n++] = depth[r * W + c];
    CHECK(z == dm_median(scratch, n));
    /* non-finite and non-positive values never enter the median */
    depth[25 * W + 14] = NAN, depth[25 * W + 15] = INFINITY, depth[26 * W + 15] = 0;
    dm_box_depth(depth, W, H, &d, 0.5, &metric, scratch, &z, &np);
    CHECK(np == 17);
    /* inverse depth: Z = 1 / (a d + b) */
    dm_depth_to_z inv = {1, 0.5, 0.25};
    CHECK(dm_depth_to_metres(&inv, 1.5f) == 1.0);
    CHECK(isnan(dm_depth_to_metres(&inv, -0.5f))); /* 1 / 0 */
    CHECK(isnan(dm_depth_to_metres(&inv, -1.0f))); /* negative Z */

    dm_intrinsics k;
    CHECK_OK(dm_intrinsics_from_hfov(90, 80, 60, &k));
    CHECK(fabs(k.fx - 40) < 1e-12 && fabs(k.fy - 40) < 1e-12 && k.cx == 40 && k.cy == 30);
    CHECK(dm_intrinsics_from_hfov(180, 80, 60, &k) == DM_ERR_ARG);

    /* a square track: 4 sides of 1 m at 1 s per side, then back where it started */
    dm_track_point p[5] = {{0, 0, 0, 0, 1}, {1, 1, 1, 0, 1}, {2, 2, 1, 1, 1}, {3, 3, 0, 1, 1},
                           {4, 4, 0, 0, 1}};
    dm_track_stats s;
    double sc[5];
    CHECK_OK(dm_track_stats_compute(p, 5, 3, sc, &s));
    CHECK(s.path_length == 4 && s.displacement == 0 && isnan(s.tortuosity));
    CHECK(s.mean_speed == 1 && s.max_speed == 1 && s.outlier_steps == 0 && s.duration_s == 4);
    p[2].t = 1;
    CHECK(dm_track_stats_compute(p, 5, 3, sc, &s) == DM_ERR_ARG);
    CHECK_OK(dm_track_stats_compute(p, 1, 3, sc, &s));
    CHECK(s.points == 1 && s.path_length == 0 && isnan(s.max_speed));
}

static void check_formats(void) {
    char p[8192];
    dm_detection *d = NULL;
    int n = 0;
    /* xywh columns in another order, quoted class with a comma, empty conf */
    snprintf(p, sizeof p, "%s/fmt_xywh.csv", g_dir);
    write_text(p, "id,class,frame,x,y,w,h,conf\n7,\"pant, left\",3,10,20,5,6,\n"
                  "7,pant,4,11.5,20,5,6,0.25\n");
    CHECK_OK(dm_detections_read(p, DM_DET_AUTO, &d, &n));
    CHECK(n == 2 && d[0].track == 7 && d[0].frame == 3 && !strcmp(d[0].cls, "pant, left"));
    CHECK(d[0].x1 == 10 && d[0].y1 == 20 && d[0].x2 == 15 && d[0].y2 == 26 && isnan(d[0].conf));
    CHECK(d[1].x1 == 11.5 && d[1].conf == 0.25 && d[1].record == 3);
    free(d);
    snprintf(p, sizeof p, "%s/fmt.json", g_dir);
    write_text(p, "[{\"frame\": 2, \"track\": 1, \"box\": [1, 2, 3, 4], \"class\": \"a\"},\n"
                  " {\"frame\": 3, \"id\": 1, \"xywh\": [1, 2, 3, 4], \"conf\": 0.5}]\n");
    CHECK_OK(dm_detections_read(p, DM_DET_AUTO, &d, &n));
    CHECK(n == 2 && d[0].x2 == 3 && d[0].y2 == 4 && d[1].x2 == 4 && d[1].y2 == 6 &&
          d[1].conf == 0.5 && !strcmp(d[0].cls, "a"));
    free(d);
    /* MOTChallenge: 1-based frames, no header, conf -1 = none */
    snprintf(p, sizeof p, "%s/fmt_mot.txt", g_dir);
    write_text(p, "1,3,10,20,5,6,-1,-1,-1,-1\n2,3,11,20,5,6,0.9,-1,-1,-1\n");
    CHECK_OK(dm_detections_read(p, DM_DET_MOT, &d, &n));
    CHECK(n == 2 && d[0].frame == 0 && d[1].frame == 1 && d[0].track == 3 && isnan(d[0].conf) &&
          d[1].conf == 0.9 && d[1].x2 == 16);
    free(d);
    CHECK(dm_detections_read(p, DM_DET_AUTO, &d, &n) == DM_ERR_FORMAT &&
          strstr(dm_error_message(), "--format mot"));
    printf("expected refusal: %s\n", dm_error_message());
    const char *bad[][2] = {
        {"frame,track,x1,y1,x2,y2\n0,1,10,10,5,20\n", "inverted box"},
        {"frame,track,x1,y1,x2,y2\n0,1,10,10,abc,20\n", "x2 'abc' is not a finite number"},
        {"frame,track,x1,y1,x2,y2\n0,1,10,10,20,20\n0,1,11,10,20,20\n", "second box in frame 0"},
        {"frame,track,x1,y1,x2,y2\n-1,1,10,10,20,20\n", "negative frame"},
        {"frame,track,x1,y1,x2,y2\n0,1,10,10,20\n", "5 fields, the header has 6"},
        {"frame,track,x1,y1,w,h\n0,1,10,10,20,20\n", "one set complete"},
        {"frame,track,frame,x1,y1,x2,y2\n", "given twice"},
        {"[{\"frame\": 0, \"track\": 1, \"box\": [1, 2, 3]}]", "array of 4 numbers"},
        {"[{\"frame\": 0, \"trak\": 1, \"box\": [1, 2, 3, 4]}]", "unknown key 'trak'"},
        {"[]", "no detections"},
        {"[{\"frame\": 0,", "invalid JSON"},
        {"   \n", "empty file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(p, sizeof p, "%s/fmt_bad%zu.csv", g_dir, i);
        write_text(p, bad[i][0]);
        d = NULL;
        dm_status st = dm_detections_read(p, DM_DET_AUTO, &d, &n);
        int ok = st == DM_ERR_FORMAT && !d && strstr(dm_error_message(), p) &&
                 strstr(dm_error_message(), bad[i][1]);
        printf("%s refusal: %s\n", ok ? "expected" : "WRONG", dm_error_message());
        CHECK(ok);
        free(d);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_points DEPTHMATTE_EXE WORK_DIR\n");
        return 2;
    }
    snprintf(g_exe, sizeof g_exe, "%s", argv[1]);
    snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
    MPI_Init(&argc, &argv);
    char path[8192];
    snprintf(path, sizeof path, "%s/scene_f32.h5", g_dir);
    CHECK_OK(write_scene(path, DM_DTYPE_F32, 1));
    snprintf(path, sizeof path, "%s/scene_f16.h5", g_dir);
    CHECK_OK(write_scene(path, DM_DTYPE_F16, 1));
    snprintf(path, sizeof path, "%s/scene_rel.h5", g_dir);
    CHECK_OK(write_scene(path, DM_DTYPE_F32, 0));
    MPI_Finalize();
    snprintf(path, sizeof path, "%s/scene_det.csv", g_dir);
    write_det_csv(path);

    check_library();
    check_formats();
    check_scene_cli("scene_f32.h5", 1.2e-7, "");
    /* float16: relative rounding 2^-11 of the stored depth */
    check_scene_cli("scene_f16.h5", 1.0 / 2048, "");
    /* relative inverse depth d = 1 / Z: Z = 1 / (1 d + 0), and the same from one known
     * distance (track 1 is 5 m away at frame 0); float32 rounding of 1 / Z, twice */
    check_scene_cli("scene_rel.h5", 2.5e-7, "--inverse-depth-scale 1,0");
    check_scene_cli("scene_rel.h5", 5e-7, "--known-distance 1,0,5");
    check_bad_inputs();
    printf("%s (%d failures)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
