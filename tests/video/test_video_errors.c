/* Bad inputs and stream selection: missing file, text files, stream index out of range or not
 * video, multi-stream nasa_13013.mp4 (best stream by default, the other video stream
 * selectable), seek range, end of stream; image I/O (PNG/JPEG read, 16-bit PNG write). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "depthmatte/image.h"
#include "depthmatte/video.h"
#include "tensor_compare.h"
#include "video_test_util.h"

static void expect_err(dm_status got, dm_status want, const char *path, const char *sub) {
    const char *m = dm_error_message();
    printf("  %s -> %s: %s\n", path, dm_status_name(got), m);
    CHECK(got == want);
    CHECK(strstr(m, path) != NULL);
    CHECK(sub == NULL || strstr(m, sub) != NULL);
    CHECK(strchr(m, '\n') == NULL);
}

static void write_text(const char *path) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("this is a text file, not a video\n", f);
        fclose(f);
    }
}

static void test_bad_files(void) {
    dm_video_info v;
    dm_video_reader *r = (dm_video_reader *)1;
    expect_err(dm_video_probe("/nonexistent/dir/clip.mp4", -1, &v), DM_ERR_IO,
               "/nonexistent/dir/clip.mp4", "No such file");
    CHECK(dm_video_open(&r, "/nonexistent/dir/clip.mp4", -1, 1) == DM_ERR_IO && r == NULL);
    char t1[] = "/tmp/dm_video_text_XXXXXX.txt", t2[] = "/tmp/dm_video_text_XXXXXX.mp4";
    int fd1 = mkstemps(t1, 4), fd2 = mkstemps(t2, 4);
    CHECK(fd1 >= 0 && fd2 >= 0);
    close(fd1);
    close(fd2);
    write_text(t1);
    write_text(t2);
    expect_err(dm_video_probe(t1, -1, &v), DM_ERR_FORMAT, t1, NULL);
    expect_err(dm_video_probe(t2, -1, &v), DM_ERR_FORMAT, t2, NULL);
    uint8_t *rgb = NULL;
    int w, h;
    expect_err(dm_image_read_rgb(t2, &rgb, &w, &h), DM_ERR_FORMAT, t2, NULL);
    CHECK(rgb == NULL);
    expect_err(dm_image_read_rgb("/nonexistent/x.png", &rgb, &w, &h), DM_ERR_IO,
               "/nonexistent/x.png", NULL);
    unlink(t1);
    unlink(t2);
}

static void test_streams(int ffprobe, int ffmpeg) {
    char path[1024];
    snprintf(path, sizeof path, "%s", tc_shared_path("videos/nasa_13013.mp4"));
    if (access(path, R_OK) != 0) {
        printf("SKIP streams: %s not present\n", path);
        return;
    }
    dm_video_info best, s0;
    CHECK_OK(dm_video_probe(path, -1, &best));
    CHECK_OK(dm_video_probe(path, 0, &s0));
    printf("  best stream %d: %dx%d %lld frames; stream 0: %dx%d %lld frames\n", best.stream_index,
           best.width, best.height, (long long)best.frames, s0.width, s0.height,
           (long long)s0.frames);
    /* Two video streams (0: 320x180, 3: 480x270); "best" is FFmpeg's av_find_best_stream
     * choice, and the other one must be selectable. */
    CHECK(best.video_streams == 2 && s0.video_streams == 2);
    CHECK(s0.stream_index == 0 && best.stream_index != 0);
    CHECK(s0.width != best.width);
    if (ffprobe) {
        CHECK(best.frames == vt_ffprobe_count(path, best.stream_index));
        CHECK(s0.frames == vt_ffprobe_count(path, 0));
    }
    dm_video_info v;
    expect_err(dm_video_probe(path, 9, &v), DM_ERR_FORMAT, path, "stream 9 does not exist");
    expect_err(dm_video_probe(path, 1, &v), DM_ERR_FORMAT, path, "stream 1 is audio");
    expect_err(dm_video_probe(path, 2, &v), DM_ERR_FORMAT, path, "not a video stream");

    /* Stream 0 decodes to the CLI's bytes (-map 0:0), and seeking works on it too. */
    dm_video_reader *r = NULL;
    CHECK_OK(dm_video_open(&r, path, 0, 2));
    if (!r) return;
    size_t fsz = (size_t)s0.width * s0.height * 3;
    uint8_t *rgb = malloc(fsz), *cli = NULL;
    int64_t n = ffmpeg ? vt_ffmpeg_rgb(path, 0, s0.width, s0.height, 5, &cli) : 0;
    for (int64_t i = 0; i < n; i++) {
        CHECK_OK(dm_video_read(r, rgb, NULL, NULL, NULL));
        CHECK(memcmp(rgb, cli + fsz * (size_t)i, fsz) == 0);
    }
    /* Seeks: out of range is an argument error; frames itself means "at the end". */
    CHECK(dm_video_seek(r, -1) == DM_ERR_ARG);
    CHECK(dm_video_seek(r, s0.frames + 1) == DM_ERR_ARG);
    CHECK_OK(dm_video_seek(r, s0.frames));
    CHECK(dm_video_read(r, rgb, NULL, NULL, NULL) == DM_VIDEO_END);
    CHECK_OK(dm_video_seek(r, s0.frames - 1));
    int64_t idx = -1;
    CHECK_OK(dm_video_read(r, rgb, &idx, NULL, NULL));
    CHECK(idx == s0.frames - 1);
    CHECK(dm_video_read(r, rgb, NULL, NULL, NULL) == DM_VIDEO_END);
    CHECK_OK(dm_video_seek(r, 2));
    CHECK_OK(dm_video_read(r, rgb, &idx, NULL, NULL));
    CHECK(idx == 2 && (n < 3 || memcmp(rgb, cli + fsz * 2, fsz) == 0));
    free(rgb);
    free(cli);
    dm_video_close(r);
}

static void test_images(int ffmpeg) {
    char dir[] = "/tmp/dm_image_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char png16[128], cmd[2048];
    snprintf(png16, sizeof png16, "%s/depth16.png", dir);
    enum { W = 37, H = 23 };
    uint16_t *g = malloc(sizeof(uint16_t) * W * H);
    for (int i = 0; i < W * H; i++) g[i] = (uint16_t)(i * 2654435761u >> 16); /* all bits */
    CHECK_OK(dm_image_write_png16(png16, g, W, H));
    CHECK(dm_image_write_png16(png16, g, 0, H) == DM_ERR_ARG);
    if (ffmpeg) { /* the CLI must read back the exact 16-bit values */
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -nostdin -v quiet -i '%s' -f rawvideo -pix_fmt gray16le -", png16);
        FILE *p = popen(cmd, "r");
        uint16_t *back = malloc(sizeof(uint16_t) * W * H);
        size_t got = p ? fread(back, sizeof(uint16_t), W * H, p) : 0;
        if (p) pclose(p);
        CHECK(got == W * H && memcmp(back, g, sizeof(uint16_t) * W * H) == 0);
        printf("  16-bit PNG %dx%d: read back by ffmpeg %s\n", W, H,
               got == W * H && !memcmp(back, g, sizeof(uint16_t) * W * H) ? "exactly" : "WRONG");
        free(back);
    }
    free(g);

    /* PNG and JPEG of a real frame (made by the CLI) read as the CLI decodes them. */
    char src[1024];
    snprintf(src, sizeof src, "%s", tc_shared_path("videos/lossless/juggle_256x144_ffv1.mkv"));
    if (ffmpeg && access(src, R_OK) == 0) {
        const char *ext[2] = {"png", "jpg"};
        for (int k = 0; k < 2; k++) {
            char img[256];
            snprintf(img, sizeof img, "%s/frame0.%s", dir, ext[k]);
            snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v quiet -y -i '%s' -frames:v 1 '%s'", src,
                     img);
            CHECK(system(cmd) == 0);
            uint8_t *rgb = NULL, *cli = NULL;
            int w = 0, h = 0;
            CHECK_OK(dm_image_read_rgb(img, &rgb, &w, &h));
            CHECK(w == 256 && h == 144);
            int64_t n = vt_ffmpeg_rgb(img, 0, 256, 144, 1, &cli);
            CHECK(n == 1);
            if (rgb && n == 1) {
                int m = vt_max_diff(rgb, cli, (size_t)w * h * 3, NULL);
                printf("  %s read: max |diff| vs ffmpeg CLI %d (tol 0)\n", ext[k], m);
                CHECK(m == 0); /* same decoder and the same swscale setup as the CLI */
            }
            free(rgb);
            free(cli);
            unlink(img);
        }
    }
    unlink(png16);
    rmdir(dir);
}

int main(void) {
    av_log_set_level(AV_LOG_QUIET);
    int ffprobe = vt_have_tool("ffprobe"), ffmpeg = vt_have_tool("ffmpeg");
    printf("bad files:\n");
    test_bad_files();
    printf("streams:\n");
    test_streams(ffprobe, ffmpeg);
    printf("images:\n");
    test_images(ffmpeg);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
