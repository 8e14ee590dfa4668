/* Frame selection (target_fps), scaling (max_res) and image sequences in the reader
 * (include/depthmatte/video.h "Selection and scaling"):
 *  - the official rules as pure functions (step with Python's round half to even; sizes with
 *    round + ensure_even), on values worked out by hand from utils/dc_utils.py's text;
 *  - a real clip at target_fps 10: frame count, source frame numbers, pts and pixels equal to
 *    the plain reader's frames 0, step, 2*step, ..., seeks;
 *  - max_res: pixels equal to `ffmpeg -vf scale=W:H -pix_fmt rgb24` (the CLI's scale filter);
 *  - image sequences made here from the lossless clip with the ffmpeg CLI (PNG): a folder and a
 *    glob give the clip's pixels and timestamps; bad inputs (empty folder, glob without match,
 *    garbage frame, empty frame, mixed sizes, mixed PNG/JPEG, no frame rate) give one line
 *    naming the path (and the file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/video.h"
#include "tensor_compare.h"
#include "video_test_util.h"

static const char *DOG = "videos/lossless/dog_320x180_ffv1.mkv";       /* 29.97 fps, 100 frames */
static const char *JUGGLE = "videos/lossless/juggle_256x144_ffv1.mkv"; /* 24 fps, 64 frames */

static void expect_err(dm_status got, dm_status want, const char *path, const char *sub) {
    const char *m = dm_error_message();
    printf("  %s -> %s: %s\n", path, dm_status_name(got), m);
    CHECK(got == want);
    CHECK(strstr(m, path) != NULL);
    CHECK(sub == NULL || strstr(m, sub) != NULL);
    CHECK(strchr(m, '\n') == NULL);
}

static int sh(const char *fmt, const char *a, const char *b) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    int rc = system(cmd);
    if (rc != 0) printf("command failed (%d): %s\n", rc, cmd);
    return rc;
}

static void test_rules(void) {
    /* step = max(1, round(fps / target)) with round half to even (Python) */
    CHECK(dm_video_frame_step(25, 1, 10) == 2);       /* 2.5 -> 2 */
    CHECK(dm_video_frame_step(35, 1, 10) == 4);       /* 3.5 -> 4 */
    CHECK(dm_video_frame_step(15, 1, 10) == 2);       /* 1.5 -> 2 */
    CHECK(dm_video_frame_step(30000, 1001, 10) == 3); /* 2.997 */
    CHECK(dm_video_frame_step(24, 1, 10) == 2);       /* 2.4 */
    CHECK(dm_video_frame_step(30, 1, 60) == 1);       /* 0.5 -> 0 -> at least 1 */
    CHECK(dm_video_frame_step(30, 1, 0) == 1);        /* off */
    CHECK(dm_video_frame_step(0, 1, 10) == 1);        /* unknown rate */
    CHECK(dm_video_frame_step(60, 1, 7.5) == 8);
    /* size = ensure_even(round(side * max_res / longer)) when longer > max_res */
    int w, h;
    dm_video_scaled_size(1920, 1080, 1280, &w, &h);
    CHECK(w == 1280 && h == 720);
    dm_video_scaled_size(1280, 720, 1280, &w, &h);
    CHECK(w == 1280 && h == 720);
    dm_video_scaled_size(1080, 1920, 1280, &w, &h);
    CHECK(w == 720 && h == 1280);
    dm_video_scaled_size(640, 272, 320, &w, &h);
    CHECK(w == 320 && h == 136);
    dm_video_scaled_size(200, 5, 100, &w, &h); /* 2.5 -> 2 (half to even) */
    CHECK(w == 100 && h == 2);
    dm_video_scaled_size(200, 7, 100, &w, &h); /* 3.5 -> 4 */
    CHECK(w == 100 && h == 4);
    dm_video_scaled_size(200, 6, 100, &w, &h); /* 3 -> odd -> 4 */
    CHECK(w == 100 && h == 4);
    dm_video_scaled_size(352, 288, 0, &w, &h);
    CHECK(w == 352 && h == 288);
}

/* Every frame of `path` with the plain reader: (n, H, W, 3) and pts. */
static int64_t read_all(const char *path, const dm_video_options *o, uint8_t **rgb, int64_t **pts,
                        double **ts, int *W, int *H) {
    dm_video_reader *r = NULL;
    if (dm_video_open_opts(&r, path, o) != DM_OK) {
        printf("open %s: %s\n", path, dm_error_message());
        return -1;
    }
    const dm_video_info *in = dm_video_reader_info(r);
    *W = in->width, *H = in->height;
    size_t fs = (size_t)in->width * in->height * 3;
    *rgb = malloc(fs * (size_t)in->frames);
    *pts = malloc(sizeof **pts * (size_t)in->frames);
    *ts = malloc(sizeof **ts * (size_t)in->frames);
    int64_t n = 0, idx;
    dm_status s;
    while (n < in->frames &&
           (s = dm_video_read(r, *rgb + fs * (size_t)n, &idx, *pts + n, *ts + n)) == DM_OK) {
        CHECK(idx == n);
        n++;
    }
    dm_video_close(r);
    return n;
}

static void test_target_fps(void) {
    const char *path = tc_shared_path(DOG);
    if (access(path, R_OK) != 0) {
        printf("SKIPPED: %s not present\n", path);
        return;
    }
    uint8_t *all = NULL;
    int64_t *pts = NULL;
    double *ts = NULL;
    int W, H;
    dm_video_options o = DM_VIDEO_OPTIONS_INIT;
    int64_t n = read_all(path, &o, &all, &pts, &ts, &W, &H);
    CHECK(n == 100);
    o.target_fps = 10;
    dm_video_info info;
    CHECK_OK(dm_video_probe_opts(path, &o, &info));
    printf("target_fps 10: %lld frames, step %d, %d/%d fps (source %lld, %d/%d)\n",
           (long long)info.frames, info.frame_step, info.fps_num, info.fps_den,
           (long long)info.source_frames, info.source_fps_num, info.source_fps_den);
    CHECK(info.frames == 34 && info.frame_step == 3 && info.source_frames == 100);
    CHECK(info.fps_num == 10000 && info.fps_den == 1001);
    CHECK(info.source_fps_num == 30000 && info.source_fps_den == 1001);
    dm_video_reader *r = NULL;
    CHECK_OK(dm_video_open_opts(&r, path, &o));
    if (!r) return;
    size_t fs = (size_t)W * H * 3;
    uint8_t *rgb = malloc(fs);
    int64_t k = 0, idx, p;
    double t;
    dm_status s;
    int same = 1;
    while ((s = dm_video_read(r, rgb, &idx, &p, &t)) == DM_OK) {
        int64_t src = dm_video_source_frame(r, idx);
        same &= idx == k && src == 3 * k && p == pts[src] && t == ts[src] &&
                p == dm_video_frame_pts(r, idx) && !memcmp(rgb, all + fs * (size_t)src, fs);
        k++;
    }
    CHECK(s == DM_VIDEO_END && k == 34);
    CHECK(same); /* frame k = source frame 3k: index, pts, time, pixels */
    CHECK(dm_video_source_frame(r, 34) == -1 && dm_video_frame_pts(r, 34) == INT64_MIN);
    /* seeks land on kept frames */
    const int64_t seeks[] = {17, 33, 0, 20};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(dm_video_seek(r, seeks[i]));
        CHECK_OK(dm_video_read(r, rgb, &idx, &p, NULL));
        CHECK(idx == seeks[i] && p == pts[3 * seeks[i]] &&
              !memcmp(rgb, all + fs * (size_t)(3 * seeks[i]), fs));
    }
    CHECK_OK(dm_video_seek(r, 34));
    CHECK(dm_video_read(r, rgb, &idx, NULL, NULL) == DM_VIDEO_END);
    CHECK(dm_video_seek(r, 35) == DM_ERR_ARG);
    dm_video_close(r);
    /* frame_step given directly (reopening a recorded run) */
    dm_video_options o2 = DM_VIDEO_OPTIONS_INIT;
    o2.frame_step = 7;
    CHECK_OK(dm_video_probe_opts(path, &o2, &info));
    CHECK(info.frames == 15 && info.frame_step == 7);
    free(rgb), free(all), free(pts), free(ts);
}

/* Our scaled RGB vs the ffmpeg CLI's scale filter at the same size. */
static void check_scaled(const char *rel, int max_res, int want_w, int want_h, int frames,
                         int bound) {
    const char *path = tc_shared_path(rel);
    if (access(path, R_OK) != 0) {
        printf("SKIPPED: %s not present\n", path);
        return;
    }
    dm_video_options o = DM_VIDEO_OPTIONS_INIT;
    o.max_res = max_res;
    dm_video_reader *r = NULL;
    CHECK_OK(dm_video_open_opts(&r, path, &o));
    if (!r) return;
    const dm_video_info *in = dm_video_reader_info(r);
    CHECK(in->width == want_w && in->height == want_h);
    CHECK(in->source_width > in->width && in->frame_step == 1);
    size_t fs = (size_t)want_w * want_h * 3;
    uint8_t *ours = malloc(fs * (size_t)frames), *ref = malloc(fs * (size_t)frames);
    for (int i = 0; i < frames; i++)
        CHECK_OK(dm_video_read(r, ours + fs * (size_t)i, NULL, NULL, NULL));
    dm_video_close(r);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v quiet -i '%s' -frames:v %d -vf scale=%d:%d -f rawvideo "
             "-pix_fmt rgb24 -",
             path, frames, want_w, want_h);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(ref, 1, fs * (size_t)frames, p) : 0;
    if (p) pclose(p);
    CHECK(got == fs * (size_t)frames);
    size_t nd = 0;
    int m = vt_max_diff(ours, ref, fs * (size_t)frames, &nd);
    printf("max_res %d of %s: %dx%d, vs ffmpeg -vf scale=%d:%d: max |diff| %d, %zu of %zu bytes "
           "differ (bound %d)\n",
           max_res, rel, want_w, want_h, want_w, want_h, m, nd, fs * (size_t)frames, bound);
    CHECK(m <= bound);
    free(ours), free(ref);
}

static void test_images(void) {
    const char *clip = tc_shared_path(JUGGLE);
    if (access(clip, R_OK) != 0 || !vt_have_tool("ffmpeg")) {
        printf("SKIPPED: %s or the ffmpeg CLI not present\n", clip);
        return;
    }
    char dir[] = "/tmp/dm_seq_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char seq[1100], path[1200], glob_pat[1200];
    snprintf(seq, sizeof seq, "%s/frames", dir);
    /* PNGs of the lossless clip (RGB-exact: the stream is RGB) */
    CHECK(sh("mkdir -p '%s'%s", seq, "") == 0);
    CHECK(sh("ffmpeg -nostdin -v error -i '%s' -pix_fmt rgb24 '%s/f_%%05d.png'", clip, seq) == 0);
    uint8_t *a = NULL, *b = NULL;
    int64_t *pa = NULL, *pb = NULL;
    double *ta = NULL, *tb = NULL;
    int W, H, W2, H2;
    dm_video_options plain = DM_VIDEO_OPTIONS_INIT;
    int64_t n = read_all(clip, &plain, &a, &pa, &ta, &W, &H);
    dm_video_options o = DM_VIDEO_OPTIONS_INIT;
    o.images = 1, o.fps_num = 24, o.fps_den = 1;
    CHECK(dm_video_is_image_sequence(seq) && !dm_video_is_image_sequence(clip));
    snprintf(glob_pat, sizeof glob_pat, "%s/f_*.png", seq);
    CHECK(dm_video_is_image_sequence(glob_pat));
    const char *inputs[2] = {seq, glob_pat};
    for (int i = 0; i < 2; i++) {
        int64_t m = read_all(inputs[i], &o, &b, &pb, &tb, &W2, &H2);
        CHECK(m == n && n == 64 && W2 == W && H2 == H);
        double dt = 0;
        for (int64_t k = 0; k < m && k < n; k++) {
            CHECK(pb[k] == k); /* image2: pts = frame number in 1/fps */
            double d = tb[k] - ta[k];
            if (d < 0) d = -d;
            if (d > dt) dt = d;
        }
        CHECK(m == n && !memcmp(a, b, (size_t)W * H * 3 * (size_t)n));
        printf("image sequence %s: %lld frames, pixels equal to the clip, max |time_s diff| "
               "%.2g s (bound 1 ms: the clip's timestamps are in ms)\n",
               inputs[i], (long long)m, dt);
        CHECK(dt <= 1e-3);
        free(b), free(pb), free(tb);
    }
    /* with target_fps: every second frame of the sequence */
    o.target_fps = 12;
    dm_video_info info;
    CHECK_OK(dm_video_probe_opts(seq, &o, &info));
    CHECK(info.images == 1 && info.frames == 32 && info.frame_step == 2);
    o.target_fps = 0;

    /* ---- bad inputs: one line naming the path (and the file) ---- */
    expect_err(dm_video_probe_opts(seq, &plain, &info), DM_ERR_IO, seq,
               NULL); /* a folder as a video */
    dm_video_options nofps = o;
    nofps.fps_num = 0;
    expect_err(dm_video_probe_opts(seq, &nofps, &info), DM_ERR_ARG, seq, "frame rate");
    snprintf(path, sizeof path, "%s/empty", dir);
    sh("mkdir -p '%s' && touch '%s/readme.txt'", path, path);
    expect_err(dm_video_probe_opts(path, &o, &info), DM_ERR_FORMAT, path, "no PNG or JPEG");
    snprintf(path, sizeof path, "%s/none_*.png", dir);
    expect_err(dm_video_probe_opts(path, &o, &info), DM_ERR_IO, path, "no file matches");
    /* garbage frame in the middle: found when decoding it */
    snprintf(path, sizeof path, "%s/f_00006.png", seq);
    FILE *f = fopen(path, "w");
    if (f) fputs("not a png\n", f), fclose(f);
    dm_video_reader *r = NULL;
    CHECK_OK(dm_video_open_opts(&r, seq, &o));
    if (r) {
        uint8_t *rgb = malloc((size_t)W * H * 3);
        dm_status s = DM_OK;
        int k = 0;
        while (k < 10 && (s = dm_video_read(r, rgb, NULL, NULL, NULL)) == DM_OK)
            k++;
        CHECK(k == 5);
        expect_err(s, DM_ERR_DECODE, seq, path);
        free(rgb);
        dm_video_close(r);
    }
    /* empty frame file */
    sh("cp '%s/f_00001.png' '%s/f_00006.png'", seq, seq);
    snprintf(path, sizeof path, "%s/f_00009.png", seq);
    f = fopen(path, "w");
    if (f) fclose(f);
    expect_err(dm_video_probe_opts(seq, &o, &info), DM_ERR_FORMAT, seq, path);
    sh("cp '%s/f_00001.png' '%s/f_00009.png'", seq, seq);
    CHECK_OK(dm_video_probe_opts(seq, &o, &info)); /* repaired */
    /* a frame of another size */
    snprintf(path, sizeof path, "%s/f_00003.png", seq);
    sh("ffmpeg -nostdin -v error -y -i '%s/f_00002.png' -vf scale=128:72 '%s/f_00003.png'", seq,
       seq);
    CHECK_OK(dm_video_open_opts(&r, seq, &o));
    if (r) {
        uint8_t *rgb = malloc((size_t)W * H * 3);
        dm_status s = DM_OK;
        int k = 0;
        while (k < 10 && (s = dm_video_read(r, rgb, NULL, NULL, NULL)) == DM_OK)
            k++;
        CHECK(k == 2);
        expect_err(s, DM_ERR_DECODE, seq, path);
        CHECK(strstr(dm_error_message(), "128x72") != NULL);
        free(rgb);
        dm_video_close(r);
    }
    sh("cp '%s/f_00001.png' '%s/f_00003.png'", seq, seq);
    /* mixed PNG and JPEG: in a folder (two extensions) and in a glob */
    sh("ffmpeg -nostdin -v error -y -i '%s/f_00002.png' '%s/f_00002.jpg'", seq, seq);
    expect_err(dm_video_probe_opts(seq, &o, &info), DM_ERR_FORMAT, seq, "different extensions");
    snprintf(path, sizeof path, "%s/f_0000*", seq);
    expect_err(dm_video_probe_opts(path, &o, &info), DM_ERR_FORMAT, path, "mixed PNG and JPEG");
    /* a JPEG-only glob decodes (MJPEG, full range BT.601) */
    snprintf(path, sizeof path, "%s/*.jpg", seq);
    CHECK_OK(dm_video_probe_opts(path, &o, &info));
    CHECK(info.frames == 1 && info.width == W && info.height == H);
    printf("JPEG sequence: %s, %s range, matrix %s\n", info.pix_fmt,
           info.full_range ? "full" : "limited", info.color_matrix);
    CHECK(!strcmp(info.color_matrix, "bt601"));
    free(a), free(pa), free(ta);
    sh("rm -rf '%s'%s", dir, "");
}

int main(void) {
    if (access(tc_shared_path(DOG), R_OK) != 0 || access(tc_shared_path(JUGGLE), R_OK) != 0) {
        printf("SKIPPED: the lossless clips of %s/videos are not present\n", tc_shared_dir());
        return 77;
    }
    test_rules();
    test_target_fps();
    if (vt_have_tool("ffmpeg")) {
        /* RGB source (FFV1 bgr0): the same swscale bicubic pass as the CLI's scale filter */
        check_scaled(DOG, 160, 160, 90, 12, 0);
        /* H.264 yuv420p (untagged, BT.601 both ways) */
        check_scaled("videos/bikes.mp4", 320, 320, 136, 12, 0);
    } else {
        printf("SKIPPED: the max_res comparison needs the ffmpeg CLI\n");
    }
    test_images();
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
