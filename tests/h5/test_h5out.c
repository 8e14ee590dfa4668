/* Parallel HDF5 writer under mpirun -np 2 (any np >= 1 works) on synthetic rows.
 *
 * Three videos: 0 (10 frames, 6x4) split over the ranks, 1 (7 frames, 5x3) on the last rank and
 * reported failed in the last round, 2 failed at probe. chunk_frames 3 and gzip 1 exercise the
 * collective filtered path with uneven, partial chunks and ranks joining with empty
 * selections. Values are a closed-form function of (video, frame, y, x), so the serial
 * read-back (and tests/h5/check_h5out.py with h5py) checks every byte; done markers must be
 * set exactly on written rows. Then --resume is checked: a matching job opens and sees the
 * done markers; a job with another frame count is refused with a "resume mismatch" message.
 * Usage: test_h5out OUT.h5 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/h5out.h"
#include "tensor_compare.h"

#define NV 3
static const dm_h5_video videos[NV] = {
    {"a.mp4", 10, 24, 1, 6, 4, "h264", 0, 1, 1, 1, 12288, 0, NULL, 0, 0, {0}, 2},
    {"b.mkv", 7, 30000, 1001, 5, 3, "ffv1", 90, 1, 1, 1, 1000, 0, NULL, 0, 0, {0}, 0},
    {"c.txt",
     0,
     0,
     0,
     0,
     0,
     "",
     0,
     0,
     1,
     0,
     1,
     1,
     "c.txt: Invalid data found when processing input",
     0,
     0,
     {0},
     -1},
};

static uint8_t alpha_val(int v, int t, int y, int x) { return (uint8_t)(v * 31 + t * 7 + y * 3 + x); }
static uint8_t fgr_val(int v, int t, int y, int x, int c) { return (uint8_t)(v * 5 + t * 11 + y * 13 + x * 17 + c * 19); }
static float depth_val(int v, int t, int y, int x) { return 0.25f * (float)(v + t) + 0.125f * (float)(y * 7 + x); }

/* Fills a block of rows [b, b+n) of video v. */
static void fill(int v, int b, int n, uint8_t *alpha, uint8_t *fgr, uint16_t *depth, int64_t *pts,
                 double *ts) {
    int W = videos[v].width, H = videos[v].height;
    for (int t = 0; t < n; t++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                size_t i = ((size_t)t * H + y) * W + x;
                alpha[i] = alpha_val(v, b + t, y, x);
                depth[i] = dm_f32_to_f16(depth_val(v, b + t, y, x));
                for (int c = 0; c < 3; c++) fgr[i * 3 + c] = fgr_val(v, b + t, y, x, c);
            }
        pts[t] = (int64_t)(b + t) * 512;
        ts[t] = (double)pts[t] * videos[v].tb_num / videos[v].tb_den;
    }
}

static dm_h5_layout layout(void) {
    dm_h5_layout l = {1, DM_DTYPE_U8, 1, 1, DM_DTYPE_F16, "rvm_mobilenetv3", "ab12",
                      "depth_anything_v2_small", "cd34", 3, 1, 0, 0, NULL};
    return l;
}

/* Serial read-back on rank 0 after the parallel file is closed. */
static void check_serial(const char *path, int ranks) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0);
    if (f < 0) return;
    int64_t i64 = -1;
    hid_t a = H5Aopen(f, "complete", H5P_DEFAULT);
    CHECK(a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &i64) >= 0 && i64 == 0); /* videos failed */
    H5Aclose(a);
    a = H5Aopen(f, "failed_videos", H5P_DEFAULT);
    CHECK(a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &i64) >= 0 && i64 == 2);
    H5Aclose(a);
    for (int v = 0; v < 2; v++) {
        int T = (int)videos[v].frames, H = videos[v].height, W = videos[v].width;
        char name[64];
        snprintf(name, sizeof name, "/videos/%05d/alpha", v);
        uint8_t *al = malloc((size_t)T * H * W), *fg = malloc((size_t)T * H * W * 3), done[16];
        float *dp = malloc(sizeof(float) * T * H * W);
        hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
        CHECK(H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, al) >= 0);
        H5Dclose(ds);
        snprintf(name, sizeof name, "/videos/%05d/foreground", v);
        ds = H5Dopen2(f, name, H5P_DEFAULT);
        CHECK(H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, fg) >= 0);
        H5Dclose(ds);
        snprintf(name, sizeof name, "/videos/%05d/depth", v);
        ds = H5Dopen2(f, name, H5P_DEFAULT); /* HDF5 converts the half file type to float */
        CHECK(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dp) >= 0);
        H5Dclose(ds);
        snprintf(name, sizeof name, "/videos/%05d/done", v);
        ds = H5Dopen2(f, name, H5P_DEFAULT);
        CHECK(H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, done) >= 0);
        H5Dclose(ds);
        int bad = 0;
        for (int t = 0; t < T; t++) {
            /* video 1: the last rank skips rows 6.. after reporting the failure */
            int written = v == 0 || t < 6;
            if (done[t] != written) bad++;
            if (!written) continue;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    size_t i = ((size_t)t * H + y) * W + x;
                    bad += al[i] != alpha_val(v, t, y, x);
                    bad += dp[i] != depth_val(v, t, y, x); /* exactly representable in half */
                    for (int c = 0; c < 3; c++) bad += fg[i * 3 + c] != fgr_val(v, t, y, x, c);
                }
        }
        printf("video %d: %d mismatching values/markers\n", v, bad);
        CHECK(bad == 0);
        free(al), free(fg), free(dp);
    }
    hid_t ds = H5Dopen2(f, "/ranks/frames", H5P_DEFAULT);
    int64_t frames[64] = {0};
    CHECK(ds >= 0 && H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, frames) >= 0);
    for (int r = 0; r < ranks && r < 64; r++) CHECK(frames[r] == 100 + r);
    H5Dclose(ds);
    H5Fclose(f);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *path = argc > 1 ? argv[1] : "test_h5out.h5";
    dm_h5_layout l = layout();
    dm_h5_meta meta = {"inputs: [a.mp4, b.mkv, c.txt]\n", size};
    dm_h5_file *f = NULL;
    /* Open MPI's sharedfp/lockedfile leaves "<file>-<jobid>-<pid>.lock" (8 bytes) after an
     * MPI_Abort: the next open removes it, and nothing that merely looks alike */
    char stale[4][1100];
    const char *suffix[4] = {"-1630863361-3550.lock", "-777-888.lock", "-12x-4.lock",
                             "-1-2.lock.keep"};
    const int size_of[4] = {8, 9, 8, 8};
    for (int i = 0; i < 4; i++) snprintf(stale[i], sizeof stale[i], "%s%s", path, suffix[i]);
    if (rank == 0)
        for (int i = 0; i < 4; i++) {
            FILE *lf = fopen(stale[i], "wb");
            CHECK(lf != NULL);
            if (lf) fwrite("\0\0\0\0\0\0\0\0\0", 1, (size_t)size_of[i], lf), fclose(lf);
        }
    dm_status st = dm_h5_create(path, MPI_COMM_WORLD, &meta, &l, videos, NV, &f);
    CHECK_OK(st);
    if (rank == 0) {
        CHECK(access(stale[0], F_OK) != 0); /* the stale lock file: removed */
        for (int i = 1; i < 4; i++) CHECK(access(stale[i], F_OK) == 0 && !remove(stale[i]));
        printf("stale Open MPI lock file removed, look-alikes kept\n");
    }
    if (st) MPI_Abort(MPI_COMM_WORLD, 1);
    CHECK(dm_h5_video_failed(f, 2) && !dm_h5_video_failed(f, 0));

    /* Rows of video 0 are dealt round-robin in blocks of 3 (4 blocks: 3,3,3,1); the last rank
     * also owns video 1 in blocks [0,3),[3,6) then reports it failed. Number of rounds: every
     * rank computes the same maximum. */
    int last = size - 1;
    int rounds = 0;
    for (int r = 0; r < size; r++) {
        int n = 0;
        for (int blk = 0; blk < 4; blk++) n += blk % size == r;
        if (r == last) n += 3;
        if (n > rounds) rounds = n;
    }
    uint8_t alpha[3 * 24], fgr[3 * 24 * 3];
    uint16_t depth[3 * 24];
    int64_t pts[3];
    double ts[3];
    int my_blk = 0, my_v1 = 0;
    int64_t total = 0;
    for (int round = 0; round < rounds; round++) {
        dm_h5_block b = {.video = -1, .failed_video = -1};
        /* next own block of video 0 */
        while (my_blk < 4 && my_blk % size != rank) my_blk++;
        if (my_blk < 4) {
            int begin = my_blk * 3, n = begin + 3 > 10 ? 10 - begin : 3;
            fill(0, begin, n, alpha, fgr, depth, pts, ts);
            b = (dm_h5_block){0, begin, n, alpha, fgr, depth, pts, ts, -1, NULL};
            my_blk++;
        } else if (rank == last && my_v1 < 3) {
            if (my_v1 < 2) {
                fill(1, my_v1 * 3, 3, alpha, fgr, depth, pts, ts);
                b = (dm_h5_block){1, my_v1 * 3, 3, alpha, fgr, depth, pts, ts, -1, NULL};
            } else {
                b.failed_video = 1;
                b.error = "b.mkv: decode failed at frame 6: Invalid data found";
            }
            my_v1++;
        }
        int64_t n = 0;
        CHECK_OK(dm_h5_write_round(f, &b, &n));
        total += n;
    }
    CHECK(total == 16);
    CHECK(dm_h5_video_failed(f, 1));
    uint8_t done[10];
    CHECK_OK(dm_h5_read_done(f, 0, done));
    for (int t = 0; t < 10; t++) CHECK(done[t] == 1);
    dm_h5_rank_stats s = {.frames = 100 + rank, .decode_s = 1.0, .inference_s = 2.0,
                          .write_s = 3.0, .wait_s = 0.5, .total_s = 7.0};
    CHECK_OK(dm_h5_write_stats(f, &s));
    CHECK_OK(dm_h5_finish(f));
    CHECK_OK(dm_h5_close(f));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) check_serial(path, size);
    MPI_Barrier(MPI_COMM_WORLD);

    /* Resume: same job opens and sees the markers; a job with other frame counts is refused. */
    f = NULL;
    CHECK_OK(dm_h5_open_resume(path, MPI_COMM_WORLD, &meta, &l, videos, NV, &f));
    if (f) {
        uint8_t d1[7];
        CHECK_OK(dm_h5_read_done(f, 1, d1));
        CHECK(d1[5] == 1 && d1[6] == 0);
        CHECK(!dm_h5_video_failed(f, 1)); /* failed during decode: retried on resume */
        /* The retry fails again: the file ends as after the first run (h5py checks it). */
        dm_h5_block b = {.video = -1, .failed_video = rank == last ? 1 : -1,
                         .error = "b.mkv: decode failed at frame 6: Invalid data found"};
        CHECK_OK(dm_h5_write_round(f, &b, NULL));
        CHECK(dm_h5_video_failed(f, 1));
        CHECK_OK(dm_h5_finish(f));
        CHECK_OK(dm_h5_close(f));
    }
    dm_h5_video changed[NV];
    memcpy(changed, videos, sizeof changed);
    changed[0].frames = 11;
    f = NULL;
    st = dm_h5_open_resume(path, MPI_COMM_WORLD, &meta, &l, changed, NV, &f);
    CHECK(st == DM_ERR_FORMAT && strstr(dm_error_message(), "resume mismatch"));
    if (rank == 0) printf("expected refusal: %s\n", dm_error_message());
    dm_h5_close(f);
    /* Another video stream of the same file (video_stream changed): refused, naming both */
    memcpy(changed, videos, sizeof changed);
    changed[0].stream_index = 1;
    f = NULL;
    st = dm_h5_open_resume(path, MPI_COMM_WORLD, &meta, &l, changed, NV, &f);
    CHECK(st == DM_ERR_FORMAT && strstr(dm_error_message(), "video stream 2") &&
          strstr(dm_error_message(), "stream 1"));
    if (rank == 0) printf("expected refusal: %s\n", dm_error_message());
    dm_h5_close(f);
    /* Depth stored at another grid (depth.output_size model vs source): refused, naming the
     * video and both sizes. */
    memcpy(changed, videos, sizeof changed);
    changed[0].depth_width = 14, changed[0].depth_height = 28;
    f = NULL;
    st = dm_h5_open_resume(path, MPI_COMM_WORLD, &meta, &l, changed, NV, &f);
    CHECK(st == DM_ERR_FORMAT && strstr(dm_error_message(), "a.mp4") &&
          strstr(dm_error_message(), "6x4") && strstr(dm_error_message(), "14x28"));
    if (rank == 0) printf("expected refusal: %s\n", dm_error_message());
    dm_h5_close(f);

    /* Unwritable path: a clean error naming the file, no hang. */
    f = NULL;
    st = dm_h5_create("/nonexistent-dir/x.h5", MPI_COMM_WORLD, &meta, &l, videos, NV, &f);
    CHECK(st == DM_ERR_H5 && strstr(dm_error_message(), "/nonexistent-dir/x.h5"));
    if (rank == 0) printf("expected error: %s\n", dm_error_message());
    dm_h5_close(f);

    int fails = tc_failure_count, all = 0;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%s (%d failures over %d ranks)\n", all ? "FAIL" : "PASS", all, size);
    MPI_Finalize();
    return all != 0;
}
