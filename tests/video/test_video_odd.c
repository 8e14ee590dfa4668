/* Every file of ../shared/videos/odd/ (see its README): either it processes correctly (probe
 * + full decode, sizes, rotation, SAR, bit depth, range, per-frame pts) or it fails with a
 * clear one-line error naming the file and the cause. Never a crash or a hang (CTest
 * timeout). The expected outcome per file is the table below, with the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "depthmatte/video.h"
#include "tensor_compare.h"
#include "video_test_util.h"

typedef struct odd_case {
    const char *file;
    dm_status want;      /* DM_OK: must process; else the error probe must return */
    const char *msg;     /* substring of the error message (errors only) */
    int width, height;   /* output size (after rotation) */
    int cli_tol;         /* max |ours - ffmpeg CLI| per byte over the first frames; -1: skip */
    const char *why;
} odd_case;

/* cli_tol 0: tagged or untagged-SD YUV, where our swscale setup equals the CLI's. -1 for the
 * untagged 1080p VP9: the CLI uses BT.601, our HD rule BT.709 (video.h), by design. */
static const odd_case cases[] = {
    {"annex-b.mp4", DM_ERR_FORMAT, "truncated", 0, 0, -1,
     "MP4 cut at 100000 bytes: the sample table lists 745 frames, 6 are present. Reporting 745 "
     "would be wrong and 6 would silently drop 99% of the video: refuse, saying so."},
    {"av1-aac.avi", DM_OK, NULL, 320, 240, 0,
     "AV1 in AVI; the AVI index lists 26 entries, one empty (a dropped frame): 25 frames"},
    {"bt709_full_range.mp4", DM_OK, NULL, 1280, 720, 0, "yuvj420p BT.709: full range handled"},
    {"chunk_out_of_range.mp4", DM_ERR_FORMAT, "Invalid data found", 0, 0, -1,
     "contradictory STSC/STCO tables: libavformat refuses the header"},
    {"edts.mp4", DM_OK, NULL, 854, 480, 0, "edit list: first pts 0, negative dts"},
    {"fucked-keyframes.mp4", DM_OK, NULL, 320, 180, 0, "odd keyframe flags"},
    {"h264_10bits.mp4", DM_OK, NULL, 200, 200, 0, "10-bit H.264"},
    {"h265_10bits.mp4", DM_OK, NULL, 200, 200, 0, "10-bit HEVC"},
    {"no-initial-keyframe.ts", DM_ERR_DECODE, "frame 0: the decoder produced no picture for frames 0-62", 0, 0,
     -1,
     "frames 0-62 reference a PPS that is not in the file; only 15 of 78 frames decode. "
     "Numbering the 15 as 0-14 would mis-time them: refuse, naming frame 0"},
    {"sar_2x1.mp4", DM_OK, NULL, 640, 360, 0, "SAR 2:1 recorded, pixels not resampled"},
    {"var_fps_video.mp4", DM_OK, NULL, 128, 128, 0, "VFR (1/30 s and 1/15 s steps), yuv444p"},
    {"video_rotation_90.mp4", DM_OK, NULL, 60, 100, 0, "display matrix -90 deg: 100x60 -> 60x100"},
    {"vp9-alpha-padded-width.webm", DM_OK, NULL, 1440, 1080, -1, "VP9 with alpha (ignored)"},
};

static void check_error(const odd_case *c, const char *path, dm_status s) {
    const char *m = dm_error_message();
    printf("  error (%s): %s\n", dm_status_name(s), m);
    CHECK(s == c->want);
    CHECK(strstr(m, path) != NULL);     /* names the file */
    CHECK(strstr(m, c->msg) != NULL);   /* and the cause */
    CHECK(strchr(m, '\n') == NULL);     /* one line */
}

static void check_ok(const odd_case *c, const char *path, const dm_video_info *v, int ffprobe,
                     int ffmpeg) {
    CHECK(v->width == c->width && v->height == c->height);
    CHECK(v->frames > 0);
    if (ffprobe) CHECK(v->frames == vt_ffprobe_count(path, v->stream_index));
    if (!strcmp(c->file, "video_rotation_90.mp4"))
        CHECK(v->rotation == 90 && v->coded_width == 100 && v->coded_height == 60);
    else
        CHECK(v->rotation == 0);
    if (!strcmp(c->file, "sar_2x1.mp4")) CHECK(v->sar_num == 2 && v->sar_den == 1);
    if (strstr(c->file, "10bits")) CHECK(v->bit_depth == 10 && !strcmp(v->pix_fmt, "yuv420p10le"));
    if (!strcmp(c->file, "bt709_full_range.mp4"))
        CHECK(v->full_range == 1 && !strcmp(v->color_matrix, "bt709") && !v->color_matrix_guessed);
    if (!strcmp(c->file, "var_fps_video.mp4")) CHECK(v->variable_fps == 1);
    else CHECK(v->variable_fps == 0);

    /* Full decode: every indexed frame comes out, numbered, with increasing pts. */
    dm_video_reader *r = NULL;
    CHECK_OK(dm_video_open(&r, path, -1, 2));
    if (!r) return;
    size_t fsz = (size_t)v->width * v->height * 3;
    uint8_t *rgb = malloc(fsz), *cli = NULL;
    int64_t ncli = 0, want_cli = v->frames < 8 ? v->frames : 8;
    if (c->cli_tol >= 0 && ffmpeg) {
        ncli = vt_ffmpeg_rgb(path, v->stream_index, v->width, v->height, want_cli, &cli);
        CHECK(ncli == want_cli);
    }
    int64_t n = 0, prev = INT64_MIN, idx = -1, t = 0, steps[2] = {0, 0};
    int cli_max = 0;
    dm_status s;
    while ((s = dm_video_read(r, rgb, &idx, &t, NULL)) == DM_OK) {
        CHECK(idx == n && t > prev);
        if (prev != INT64_MIN && n < 64) {
            int64_t d = t - prev; /* var_fps: 1/30 s = 512 and 1/15 s = 1024 ticks of 1/15360 */
            if (d == 512) steps[0]++;
            if (d == 1024) steps[1]++;
        }
        if (n < ncli) {
            int m = vt_max_diff(rgb, cli + fsz * (size_t)n, fsz, NULL);
            if (m > cli_max) cli_max = m;
        }
        prev = t;
        n++;
    }
    if (s != DM_VIDEO_END) fprintf(stderr, "  decode error: %s\n", dm_error_message());
    CHECK(s == DM_VIDEO_END);
    CHECK(n == v->frames);
    if (!strcmp(c->file, "var_fps_video.mp4")) CHECK(steps[0] > 0 && steps[1] > 0);
    if (ncli > 0) {
        printf("  vs ffmpeg CLI (%lld frames): max |diff| %d (tol %d)\n", (long long)ncli, cli_max,
               c->cli_tol);
        CHECK(cli_max <= c->cli_tol);
    }
    printf("  ok: %lld frames decoded, %dx%d %s %s %d-bit %s range, SAR %d:%d, rotation %d\n",
           (long long)n, v->width, v->height, v->codec, v->pix_fmt, v->bit_depth,
           v->full_range ? "full" : "limited", v->sar_num, v->sar_den, v->rotation);
    free(cli);
    free(rgb);
    dm_video_close(r);
}

int main(void) {
    av_log_set_level(AV_LOG_QUIET);
    int ffprobe = vt_have_tool("ffprobe"), ffmpeg = vt_have_tool("ffmpeg"), ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const odd_case *c = &cases[i];
        char rel[256], path[1024];
        snprintf(rel, sizeof rel, "videos/odd/%s", c->file);
        snprintf(path, sizeof path, "%s", tc_shared_path(rel));
        if (access(path, R_OK) != 0) {
            printf("SKIP %s: not present\n", path);
            continue;
        }
        ran++;
        printf("%s — expect %s: %s\n", c->file, c->want == DM_OK ? "OK" : dm_status_name(c->want),
               c->why);
        dm_video_info v;
        dm_status s = dm_video_probe(path, -1, &v);
        if (c->want == DM_OK) {
            if (s != DM_OK) fprintf(stderr, "  unexpected error: %s\n", dm_error_message());
            CHECK(s == DM_OK);
            if (s == DM_OK) check_ok(c, path, &v, ffprobe, ffmpeg);
        } else {
            check_error(c, path, s);
        }
    }
    if (!ran) return tc_skip("no file under ../shared/videos/odd");
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
