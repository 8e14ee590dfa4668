/* Reader of depthmatte output files (include/depthmatte/h5read.h) against the project's own
 * writer (h5out).
 *
 * `test_h5read write DIR` (under MPI, one rank) writes two files with dm_h5_create /
 * dm_h5_write_round: rel.h5 (3 videos: 0 with alpha u8, foreground and float16 depth at the
 * source size, fully written; 1 with depth at a "model" grid, only rows [0, 3) written; 2 failed
 * at probe) and metric.h5 (1 video, float16 alpha, float32 metric depth, no foreground).
 * `test_h5read read DIR` runs as a plain process WITHOUT MPI_Init and reads everything back:
 * every value is a closed form of (video, frame, y, x), so each byte is checked; then the
 * refusals: missing file, a text file, an HDF5 file without format_version, unknown video id,
 * rows out of range, datasets absent.
 * Usage: test_h5read write|read DIR */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/h5out.h"
#include "depthmatte/h5read.h"
#include "tensor_compare.h"

#define NV 3
static const dm_h5_video rel_videos[NV] = {
    {"a.mp4", 7, 24, 1, 6, 4, "h264", 0, 1, 1, 1, 12288, 0, NULL, 0, 0, {0}, 3},
    /* rows = every 3rd of 14 source frames of a 10x6 source scaled to 5x3 (target_fps, max_res) */
    {"b.mkv", 5, 10000, 1001, 5, 3, "ffv1", 90, 1, 1, 1, 1000, 0, NULL, 4, 2,
     {0, 3, 6, 14, 30000, 1001, 10, 6}, 0},
    {"c.txt", 0, 0, 0, 0, 0, "", 0, 0, 1, 0, 1, 1, "c.txt: Invalid data found", 0, 0, {0}, -1},
};
static const dm_h5_video met_video = {"m.mp4", 4, 25,    1, 3,    2, "h264", 0,  1,
                                      1,       1, 90000, 0, NULL, 0, 0,      {0}, 0};

static uint8_t alpha_val(int v, int t, int y, int x) { return (uint8_t)(v * 31 + t * 7 + y * 3 + x); }
static uint8_t fgr_val(int v, int t, int y, int x, int c) { return (uint8_t)(v * 5 + t * 11 + y * 13 + x * 17 + c * 19); }
/* exactly representable in float16 for the sizes used here */
static float depth_val(int v, int t, int y, int x) { return 0.25f * (float)(v + t) + 0.125f * (float)(y * 7 + x); }
static float metric_val(int t, int y, int x) { return 1.5f + 0.1f * (float)t + 0.01f * (float)(y * 3 + x); }
static float alpha16_val(int t, int y, int x) { return (float)((t + y * 3 + x) % 9) / 8.f; }
static int64_t pts_val(int v, int t) { return (int64_t)t * (v == 0 ? 512 : 1001) + 7; }

static dm_status write_rel(const char *path) {
    dm_h5_layout l = {1, DM_DTYPE_U8, 1, 1, DM_DTYPE_F16, "rvm_mobilenetv3", "ab12",
                      "depth_anything_v2_small", "cd34", 3, 1, 0, 0, NULL};
    dm_h5_meta meta = {"inputs: [a.mp4, b.mkv, c.txt]\n", 1};
    dm_h5_file *f = NULL;
    dm_status st = dm_h5_create(path, MPI_COMM_WORLD, &meta, &l, rel_videos, NV, &f);
    uint8_t alpha[3 * 24], fgr[3 * 24 * 3];
    uint16_t depth[3 * 24];
    int64_t pts[3];
    double ts[3];
    /* blocks: video 0 rows [0,3) [3,6) [6,7); video 1 rows [0,3) only */
    const int blocks[4][3] = {{0, 0, 3}, {0, 3, 3}, {0, 6, 1}, {1, 0, 3}};
    for (int k = 0; k < 4 && !st; k++) {
        int v = blocks[k][0], b = blocks[k][1], n = blocks[k][2];
        const dm_h5_video *vi = &rel_videos[v];
        int W = vi->width, H = vi->height;
        int dw = vi->depth_width ? vi->depth_width : W, dh = vi->depth_height ? vi->depth_height : H;
        for (int t = 0; t < n; t++) {
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    size_t i = ((size_t)t * H + y) * W + x;
                    alpha[i] = alpha_val(v, b + t, y, x);
                    for (int c = 0; c < 3; c++) fgr[i * 3 + c] = fgr_val(v, b + t, y, x, c);
                }
            for (int y = 0; y < dh; y++)
                for (int x = 0; x < dw; x++)
                    depth[((size_t)t * dh + y) * dw + x] = dm_f32_to_f16(depth_val(v, b + t, y, x));
            pts[t] = pts_val(v, b + t);
            ts[t] = (double)(pts[t] - 7) * vi->tb_num / vi->tb_den;
        }
        dm_h5_block blk = {v, b, n, alpha, fgr, depth, pts, ts, -1, NULL};
        st = dm_h5_write_round(f, &blk, NULL);
    }
    if (!st) st = dm_h5_finish(f);
    dm_status st2 = dm_h5_close(f);
    return st ? st : st2;
}

static dm_status write_metric(const char *path) {
    dm_h5_layout l = {1, DM_DTYPE_F16, 0, 1, DM_DTYPE_F32, "rvm_mobilenetv3", "",
                      "video_depth_anything_small_metric", "ef56", 2, 0, 1, 0, "offline"};
    dm_h5_meta meta = {"inputs: [m.mp4]\n", 1};
    dm_h5_file *f = NULL;
    dm_status st = dm_h5_create(path, MPI_COMM_WORLD, &meta, &l, &met_video, 1, &f);
    uint16_t alpha[2 * 6];
    float depth[2 * 6];
    int64_t pts[2];
    double ts[2];
    for (int b = 0; b < 4 && !st; b += 2) {
        for (int t = 0; t < 2; t++) {
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 3; x++) {
                    alpha[(t * 2 + y) * 3 + x] = dm_f32_to_f16(alpha16_val(b + t, y, x));
                    depth[(t * 2 + y) * 3 + x] = metric_val(b + t, y, x);
                }
            pts[t] = (b + t) * 3600;
            ts[t] = (double)pts[t] / 90000.0;
        }
        dm_h5_block blk = {0, b, 2, alpha, NULL, depth, pts, ts, -1, NULL};
        st = dm_h5_write_round(f, &blk, NULL);
    }
    if (!st) st = dm_h5_finish(f);
    dm_status st2 = dm_h5_close(f);
    return st ? st : st2;
}

static void check_rel(const char *path) {
    dm_h5r_file *f = NULL;
    CHECK_OK(dm_h5r_open(path, &f));
    if (!f) return;
    dm_h5r_root root;
    CHECK_OK(dm_h5r_root_info(f, &root));
    CHECK(root.format_version == 1 && root.videos == 3 && root.ranks == 1);
    CHECK(root.complete == 0 && root.failed_videos == 1); /* video 2 failed at probe */
    CHECK(!strncmp(root.software_version, "depthmatte ", 11));
    CHECK(strlen(root.created_utc) == 20);
    CHECK(!strcmp(dm_h5r_job_yaml(f), "inputs: [a.mp4, b.mkv, c.txt]\n"));
    CHECK(dm_h5r_video_count(f) == 3);
    CHECK(!strcmp(dm_h5r_video_id(f, 0), "00000") && !strcmp(dm_h5r_video_id(f, 2), "00002"));
    CHECK(dm_h5r_video_id(f, 3) == NULL);
    int idx = -1;
    CHECK_OK(dm_h5r_find_video(f, "00001", &idx));
    CHECK(idx == 1);
    CHECK_OK(dm_h5r_find_video(f, "2", &idx));
    CHECK(idx == 2);
    CHECK(dm_h5r_find_video(f, "7", &idx) == DM_ERR_ARG &&
          strstr(dm_error_message(), path) && strstr(dm_error_message(), "'7'"));
    printf("expected refusal: %s\n", dm_error_message());

    /* video 0: everything written */
    dm_h5r_video v;
    CHECK_OK(dm_h5r_video_info(f, 0, &v));
    CHECK(!strcmp(v.id, "00000") && !strcmp(v.source, "a.mp4") && v.frames == 7);
    CHECK(v.fps_num == 24 && v.fps_den == 1 && v.width == 6 && v.height == 4);
    CHECK(!strcmp(v.codec, "h264") && v.rotation == 0 && v.sar_num == 1 && v.sar_den == 1);
    CHECK(v.stream_index == 3);
    CHECK(!strcmp(v.status, "ok") && v.error[0] == 0);
    CHECK(v.tb_num == 1 && v.tb_den == 12288);
    CHECK(v.depth.present && v.depth.ndims == 3 && v.depth.dtype == DM_DTYPE_F16);
    CHECK(v.depth.dims[0] == 7 && v.depth.dims[1] == 4 && v.depth.dims[2] == 6);
    CHECK(!strcmp(v.depth.model, "depth_anything_v2_small") &&
          !strcmp(v.depth.weights_sha256, "cd34"));
    CHECK(v.alpha.present && v.alpha.dtype == DM_DTYPE_U8 && !strcmp(v.alpha.model, "rvm_mobilenetv3"));
    CHECK(v.foreground.present && v.foreground.ndims == 4 && v.foreground.dims[3] == 3);
    CHECK(v.pts.present && v.pts.dtype == DM_DTYPE_I64 && v.time_s.present && v.time_s.is_f64);
    CHECK(v.done.present && v.done.dtype == DM_DTYPE_U8 && v.done.dims[0] == 7);
    CHECK(!v.depth_metric && !strcmp(v.depth_units, "1") && !strcmp(v.depth_size, "source"));
    CHECK(strstr(v.depth_kind, "relative inverse depth") != NULL);
    CHECK(v.depth_input_width == 0 && strstr(v.alpha_encoding, "uint8") != NULL);
    /* no selection: step 1, the source is the video itself, source_frame = row */
    CHECK(v.images == 0 && v.frame_step == 1 && v.max_res == 0 && v.source_frames == 7);
    CHECK(v.source_fps_num == 24 && v.source_fps_den == 1 && v.source_width == 6 &&
          v.source_height == 4 && v.source_frame.present && v.source_frame.dims[0] == 7);
    int64_t sf[8];
    CHECK_OK(dm_h5r_read_source_frames(f, 0, sf));
    for (int t = 0; t < 7; t++) CHECK(sf[t] == t);
    uint8_t done[8];
    int64_t pts[8];
    double ts[8];
    CHECK_OK(dm_h5r_read_done(f, 0, done));
    CHECK_OK(dm_h5r_read_pts(f, 0, pts));
    CHECK_OK(dm_h5r_read_time(f, 0, ts));
    for (int t = 0; t < 7; t++) {
        CHECK(done[t] == 1 && pts[t] == pts_val(0, t));
        CHECK(ts[t] == (double)(pts[t] - 7) / 12288.0);
    }
    /* rows [2, 6) of every dataset */
    float dp[4 * 24], af[4 * 24];
    uint8_t al[4 * 24], fg[4 * 24 * 3];
    CHECK_OK(dm_h5r_read_depth(f, 0, 2, 6, dp));
    CHECK_OK(dm_h5r_read_alpha_u8(f, 0, 2, 6, al));
    CHECK_OK(dm_h5r_read_alpha_f32(f, 0, 2, 6, af));
    CHECK_OK(dm_h5r_read_foreground(f, 0, 2, 6, fg));
    int bad = 0;
    for (int t = 0; t < 4; t++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 6; x++) {
                size_t i = ((size_t)t * 4 + y) * 6 + x;
                bad += dp[i] != depth_val(0, t + 2, y, x);
                bad += al[i] != alpha_val(0, t + 2, y, x);
                bad += af[i] != (float)alpha_val(0, t + 2, y, x) / 255.f;
                for (int c = 0; c < 3; c++) bad += fg[i * 3 + c] != fgr_val(0, t + 2, y, x, c);
            }
    printf("video 0: %d mismatching values\n", bad);
    CHECK(bad == 0);
    CHECK_OK(dm_h5r_read_depth(f, 0, 7, 7, dp)); /* empty range: fine, reads nothing */
    CHECK(dm_h5r_read_depth(f, 0, 5, 8, dp) == DM_ERR_ARG &&
          strstr(dm_error_message(), "7 frames") && strstr(dm_error_message(), path));
    printf("expected refusal: %s\n", dm_error_message());
    CHECK(dm_h5r_read_depth(f, 0, -1, 2, dp) == DM_ERR_ARG);
    CHECK(dm_h5r_read_depth(f, 3, 0, 1, dp) == DM_ERR_ARG);

    /* video 1: depth on the model grid 4 x 2, rows [0, 3) done */
    CHECK_OK(dm_h5r_video_info(f, 1, &v));
    CHECK(v.frames == 5 && v.width == 5 && v.height == 3 && v.rotation == 90);
    CHECK(v.fps_num == 10000 && v.fps_den == 1001 && !strcmp(v.codec, "ffv1"));
    CHECK(v.stream_index == 0);
    CHECK(v.frame_step == 3 && v.max_res == 6 && v.source_frames == 14 &&
          v.source_fps_num == 30000 && v.source_fps_den == 1001 && v.source_width == 10 &&
          v.source_height == 6);
    CHECK_OK(dm_h5r_read_source_frames(f, 1, sf)); /* rows 0..2 written, 3..4 not yet */
    for (int t = 0; t < 3; t++) CHECK(sf[t] == 3 * t);
    CHECK(!strcmp(v.depth_size, "model") && v.depth_input_width == 4 && v.depth_input_height == 2);
    CHECK(v.depth.dims[1] == 2 && v.depth.dims[2] == 4 && v.alpha.dims[1] == 3);
    CHECK_OK(dm_h5r_read_done(f, 1, done));
    for (int t = 0; t < 5; t++) CHECK(done[t] == (t < 3));
    CHECK_OK(dm_h5r_read_depth(f, 1, 1, 3, dp));
    bad = 0;
    for (int t = 0; t < 2; t++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 4; x++) bad += dp[(t * 2 + y) * 4 + x] != depth_val(1, t + 1, y, x);
    CHECK(bad == 0);

    /* video 2: failed at probe, no datasets */
    CHECK_OK(dm_h5r_video_info(f, 2, &v));
    CHECK(!strcmp(v.status, "failed") && strstr(v.error, "Invalid data") && v.frames == 0);
    CHECK(!v.depth.present && !v.alpha.present && !v.done.present && !v.pts.present);
    CHECK(dm_h5r_read_done(f, 2, done) == DM_ERR_ARG &&
          strstr(dm_error_message(), "no done dataset"));
    printf("expected refusal: %s\n", dm_error_message());
    dm_h5r_close(f);
}

static void check_metric(const char *path) {
    dm_h5r_file *f = NULL;
    CHECK_OK(dm_h5r_open(path, &f));
    if (!f) return;
    dm_h5r_root root;
    CHECK_OK(dm_h5r_root_info(f, &root));
    CHECK(root.complete == 1 && root.failed_videos == 0 && root.videos == 1);
    dm_h5r_video v;
    CHECK_OK(dm_h5r_video_info(f, 0, &v));
    CHECK(v.depth_metric && !strcmp(v.depth_units, "m") && strstr(v.depth_kind, "metric"));
    CHECK(v.depth.dtype == DM_DTYPE_F32 && v.alpha.dtype == DM_DTYPE_F16);
    CHECK(!v.foreground.present && !strcmp(v.depth.model, "video_depth_anything_small_metric"));
    float dp[4 * 6], af[4 * 6];
    uint8_t al[4 * 6], fg[6];
    CHECK_OK(dm_h5r_read_depth(f, 0, 0, 4, dp));
    CHECK_OK(dm_h5r_read_alpha_f32(f, 0, 0, 4, af));
    CHECK_OK(dm_h5r_read_alpha_u8(f, 0, 0, 4, al));
    int bad = 0;
    for (int t = 0; t < 4; t++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++) {
                size_t i = ((size_t)t * 2 + y) * 3 + x;
                bad += dp[i] != metric_val(t, y, x); /* float32 stored: exact */
                bad += af[i] != alpha16_val(t, y, x); /* k/8: exact in float16 */
                bad += al[i] != (uint8_t)lrintf(alpha16_val(t, y, x) * 255.f);
            }
    printf("metric video: %d mismatching values\n", bad);
    CHECK(bad == 0);
    CHECK(dm_h5r_read_foreground(f, 0, 0, 1, fg) == DM_ERR_ARG &&
          strstr(dm_error_message(), "no foreground dataset"));
    double ts[4];
    CHECK_OK(dm_h5r_read_time(f, 0, ts));
    CHECK(fabs(ts[3] - 0.12) < 1e-12);
    dm_h5r_close(f);
}

static void check_refusals(const char *dir) {
    char path[4096];
    dm_h5r_file *f = NULL;
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    CHECK(dm_h5r_open(path, &f) == DM_ERR_IO && !f && strstr(dm_error_message(), path) &&
          strstr(dm_error_message(), "No such file"));
    printf("expected refusal: %s\n", dm_error_message());
    snprintf(path, sizeof path, "%s/text.h5", dir);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) fputs("not hdf5\n", fp), fclose(fp);
    CHECK(dm_h5r_open(path, &f) == DM_ERR_FORMAT && !f && strstr(dm_error_message(), path) &&
          strstr(dm_error_message(), "not an HDF5 file"));
    printf("expected refusal: %s\n", dm_error_message());
    /* A valid HDF5 file that depthmatte did not write */
    snprintf(path, sizeof path, "%s/other.h5", dir);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(h >= 0);
    if (h >= 0) H5Fclose(h);
    CHECK(dm_h5r_open(path, &f) == DM_ERR_FORMAT && !f && strstr(dm_error_message(), path) &&
          strstr(dm_error_message(), "not a depthmatte output file"));
    printf("expected refusal: %s\n", dm_error_message());
    dm_h5r_close(NULL);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "read"))) {
        fprintf(stderr, "usage: test_h5read write|read DIR\n");
        return 2;
    }
    char rel[4096], met[4096];
    snprintf(rel, sizeof rel, "%s/test_h5read_rel.h5", argv[2]);
    snprintf(met, sizeof met, "%s/test_h5read_metric.h5", argv[2]);
    if (!strcmp(argv[1], "write")) {
        MPI_Init(&argc, &argv);
        CHECK_OK(write_rel(rel));
        CHECK_OK(write_metric(met));
        MPI_Finalize();
    } else {
        /* deliberately no MPI_Init: the reader works in a plain process */
        check_rel(rel);
        check_metric(met);
        check_refusals(argv[2]);
    }
    printf("%s (%d failures)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
