/* Decode equivalence: chunked decodes with seeks (chunks [40,end) [13,40) [0,13) read in that
 * order, then random seeks) give per-frame checksums identical to one sequential decode;
 * frame numbers and pts follow the index; frame counts equal `ffprobe -count_frames`; RGB
 * output compared with `ffmpeg -f rawvideo -pix_fmt rgb24` (exact where required). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "depthmatte/video.h"
#include "tensor_compare.h"
#include "video_test_util.h"

typedef struct clip {
    const char *rel;   /* under ../shared/videos */
    int64_t limit;     /* decode only the first `limit` frames (0: all) */
    int cli_tol;       /* max |ours - ffmpeg CLI| per byte; -1: not compared */
    const char *why;
} clip;

/* CLI tolerances: 0 where the conversion is lossless (FFV1 RGB: a channel reorder) or where
 * we use exactly the CLI's swscale setup (tagged YUV streams: same matrix, range, flags,
 * chroma siting => same code path). Untagged HD (entry24) is not compared: the CLI uses
 * BT.601 there and we use BT.709 by design (video.h). */
static const clip clips[] = {
    {"lossless/juggle_256x144_ffv1.mkv", 0, 0, "FFV1 bgr0, keyframe every 12: must be exact"},
    {"lossless/dog_320x180_ffv1.mkv", 0, 0, "FFV1 bgr0 29.97 fps"},
    {"05_default_juggle.mp4", 60, 0, "H.264 720p with B-frames, tagged BT.709"},
    {"foreman_hevc.mp4", 0, 0, "HEVC, untagged SD (BT.601 both ways)"},
    {"foreman_vp9.webm", 0, 0, "VP9 in WebM"},
    {"av1_video.mkv", 0, 0, "AV1 (libdav1d)"},
    {"entry24-segment3.ts", 0, -1, "HEVC in MPEG-TS; untagged HD: BT.709 by our rule"},
    {"odd/var_fps_video.mp4", 0, 0, "variable frame rate, yuv444p: pts must be stored"},
    {"odd/edts.mp4", 0, 0, "edit list, negative dts"},
    {"odd/fucked-keyframes.mp4", 0, 0, "odd keyframe flags: seeks must stay exact"},
    {"nasa_13013.mp4", 0, 0, "best stream of a multi-stream file"},
};

static unsigned g_seed = 12345u;
static int64_t rnd(int64_t n) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (int64_t)((g_seed >> 8) % (unsigned)n);
}

static int run_clip(const clip *c, int have_ffprobe, int have_ffmpeg) {
    char rel[512];
    snprintf(rel, sizeof rel, "videos/%s", c->rel);
    const char *path = tc_shared_path(rel);
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    if (access(p, R_OK) != 0) {
        printf("SKIP %s: not present\n", p);
        return 0;
    }
    int fail0 = tc_failure_count;
    dm_video_reader *r = NULL;
    CHECK_OK(dm_video_open(&r, p, -1, 2));
    if (!r) return 1;
    const dm_video_info info = *dm_video_reader_info(r);
    int64_t n = c->limit > 0 && c->limit < info.frames ? c->limit : info.frames;
    size_t fsz = (size_t)info.width * info.height * 3;
    uint8_t *rgb = malloc(fsz);
    uint64_t *sum = calloc((size_t)n, sizeof *sum);
    int64_t *pts = calloc((size_t)n, sizeof *pts);
    CHECK(rgb && sum && pts);

    /* Reference frames from the ffmpeg CLI (first few frames; 720p frames are large). */
    uint8_t *cli = NULL;
    int64_t ncli = 0, want_cli = n < 24 ? n : 24;
    if (c->cli_tol >= 0 && have_ffmpeg) {
        ncli = vt_ffmpeg_rgb(p, info.stream_index, info.width, info.height, want_cli, &cli);
        CHECK(ncli == want_cli);
    }
    int cli_max = 0;
    size_t cli_ndiff = 0;

    /* 1. sequential decode */
    for (int64_t i = 0; i < n; i++) {
        int64_t idx = -1, t = 0;
        double ts = -1;
        dm_status s = dm_video_read(r, rgb, &idx, &t, &ts);
        if (s != DM_OK) {
            fprintf(stderr, "%s: sequential read %lld: %s\n", c->rel, (long long)i,
                    dm_error_message());
            tc_failure_count++;
            break;
        }
        CHECK(idx == i);
        CHECK(t == dm_video_frame_pts(r, i));
        CHECK(i == 0 ? ts == 0.0 : (t > pts[i - 1] && ts > 0));
        sum[i] = vt_fnv1a(rgb, fsz);
        pts[i] = t;
        if (i < ncli) {
            size_t nd = 0;
            int m = vt_max_diff(rgb, cli + fsz * (size_t)i, fsz, &nd);
            if (m > cli_max) cli_max = m;
            cli_ndiff += nd;
        }
    }
    if (n == info.frames) CHECK(dm_video_read(r, rgb, NULL, NULL, NULL) == DM_VIDEO_END);
    if (ncli > 0) {
        printf("%s: vs ffmpeg CLI over %lld frames: max |diff| %d (tol %d), %zu bytes differ\n",
               c->rel, (long long)ncli, cli_max, c->cli_tol, cli_ndiff);
        CHECK(cli_max <= c->cli_tol);
    }
    free(cli);
    dm_video_close(r);

    /* 2. frame count vs ffprobe -count_frames */
    if (have_ffprobe) {
        int64_t want = vt_ffprobe_count(p, info.stream_index);
        printf("%s: frames %lld, ffprobe -count_frames %lld\n", c->rel, (long long)info.frames,
               (long long)want);
        CHECK(info.frames == want);
    }

    /* 3. chunked decode, chunks read out of order, each entered by a seek */
    CHECK_OK(dm_video_open(&r, p, -1, 2));
    if (!r) return 1;
    int64_t b1 = n < 13 ? n : 13, b2 = n < 40 ? n : 40;
    int64_t chunks[3][2] = {{b2, n}, {b1, b2}, {0, b1}};
    for (int k = 0; k < 3; k++) {
        if (chunks[k][0] >= chunks[k][1]) continue;
        CHECK_OK(dm_video_seek(r, chunks[k][0]));
        for (int64_t i = chunks[k][0]; i < chunks[k][1]; i++) {
            int64_t idx = -1, t = 0;
            dm_status s = dm_video_read(r, rgb, &idx, &t, NULL);
            if (s != DM_OK) {
                fprintf(stderr, "%s: chunk read %lld: %s\n", c->rel, (long long)i,
                        dm_error_message());
                tc_failure_count++;
                break;
            }
            if (idx != i || t != pts[i] || vt_fnv1a(rgb, fsz) != sum[i]) {
                fprintf(stderr, "%s: chunk [%lld,%lld): frame %lld differs (got index %lld)\n",
                        c->rel, (long long)chunks[k][0], (long long)chunks[k][1], (long long)i,
                        (long long)idx);
                tc_failure_count++;
                break;
            }
        }
    }
    /* 4. random seeks, a few frames each */
    for (int k = 0; k < 10; k++) {
        int64_t t0 = rnd(n);
        CHECK_OK(dm_video_seek(r, t0));
        for (int64_t i = t0; i < n && i < t0 + 3; i++) {
            int64_t idx = -1;
            dm_status s = dm_video_read(r, rgb, &idx, NULL, NULL);
            if (s != DM_OK || idx != i || vt_fnv1a(rgb, fsz) != sum[i]) {
                fprintf(stderr, "%s: random seek to %lld: frame %lld differs (%s)\n", c->rel,
                        (long long)t0, (long long)i, s == DM_OK ? "checksum" : dm_error_message());
                tc_failure_count++;
                break;
            }
        }
    }
    printf("%s: %lld frames (%s), %dx%d, %s: chunked + random seeks %s (%lld container "
           "seeks)\n",
           c->rel, (long long)n, c->why, info.width, info.height, info.codec,
           tc_failure_count == fail0 ? "identical" : "FAILED",
           (long long)dm_video_reader_seeks(r));
    dm_video_close(r);
    free(rgb);
    free(sum);
    free(pts);
    return 1;
}

int main(void) {
    av_log_set_level(AV_LOG_QUIET);
    int have_ffprobe = vt_have_tool("ffprobe"), have_ffmpeg = vt_have_tool("ffmpeg");
    if (!have_ffprobe || !have_ffmpeg)
        printf("NOTE: ffprobe/ffmpeg CLI missing: frame counts / CLI bytes not compared\n");
    int ran = 0;
    for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++)
        ran += run_clip(&clips[i], have_ffprobe, have_ffmpeg);
    if (!ran) return tc_skip("no test video under ../shared/videos");
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
