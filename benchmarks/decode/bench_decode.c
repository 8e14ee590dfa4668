/* bench_decode [--video PATH] [--threads N] [--repeat R]
 *
 * Decode throughput of our reader (open + packet index + decode + YUV->RGB24, frames/s)
 * against the ffmpeg CLI on the same file and thread count, alternating the two over R runs
 * so that load drift hits both; prints medians and ratios:
 *   - `ffmpeg -threads N -i X -f null -`                 decode only (no RGB conversion)
 *   - `ffmpeg -threads N -i X -pix_fmt rgb24 -f null -`  decode + the same conversion as ours
 * Default video: ../shared/videos/05_default_juggle.mp4 (1280x720 H.264, 247 frames). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#include "bench_common.h"
#include "depthmatte/video.h"

static double run_ours(const char *path, int threads, int64_t *frames, double *open_s) {
    double t0 = bench_now();
    dm_video_reader *r = NULL;
    if (dm_video_open(&r, path, -1, threads) != DM_OK) {
        fprintf(stderr, "bench_decode: %s\n", dm_error_message());
        exit(1);
    }
    *open_s = bench_now() - t0;
    const dm_video_info *v = dm_video_reader_info(r);
    uint8_t *rgb = malloc((size_t)v->width * v->height * 3);
    int64_t n = 0;
    dm_status s;
    while ((s = dm_video_read(r, rgb, NULL, NULL, NULL)) == DM_OK) n++;
    if (s != DM_VIDEO_END) {
        fprintf(stderr, "bench_decode: %s\n", dm_error_message());
        exit(1);
    }
    double t = bench_now() - t0;
    free(rgb);
    dm_video_close(r);
    *frames = n;
    return t;
}

static double run_cli(const char *path, int threads, int rgb) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v quiet -threads %d -i '%s' %s -f null -",
             threads, path, rgb ? "-pix_fmt rgb24" : "");
    double t0 = bench_now();
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_decode: ffmpeg CLI failed: %s\n", cmd);
        return -1;
    }
    return bench_now() - t0;
}

int main(int argc, char **argv) {
    av_log_set_level(AV_LOG_QUIET);
    char def[1024];
    const char *shared = getenv("DM_SHARED");
    if (shared)
        snprintf(def, sizeof def, "%s/videos/05_default_juggle.mp4", shared);
    else
        snprintf(def, sizeof def, "%s/../shared/videos/05_default_juggle.mp4", DM_SOURCE_DIR);
    const char *path = bench_arg(argc, argv, "video", def);
    int threads = atoi(bench_arg(argc, argv, "threads", "2"));
    int repeat = atoi(bench_arg(argc, argv, "repeat", "3"));
    if (repeat < 1 || repeat > 100) repeat = 3;
    double ours[100], open_s[100], null_t[100], rgb_t[100];
    int64_t frames = 0;
    for (int i = 0; i < repeat; i++) {
        ours[i] = run_ours(path, threads, &frames, &open_s[i]);
        null_t[i] = run_cli(path, threads, 0);
        rgb_t[i] = run_cli(path, threads, 1);
    }
    double o = bench_median(ours, repeat), on = bench_median(open_s, repeat);
    double cn = bench_median(null_t, repeat), cr = bench_median(rgb_t, repeat);
    printf("video %s, %lld frames, %d threads, median of %d runs (%d CPUs)\n", path,
           (long long)frames, threads, repeat, bench_nproc());
    printf("ours (open+index %.3f s, decode, ->rgb24): %.3f s  %.1f frames/s\n", on, o,
           frames / o);
    if (cn > 0 && cr > 0) {
        printf("ffmpeg -f null -                 : %.3f s  %.1f frames/s  (ours/ffmpeg speed %.2f)\n",
               cn, frames / cn, cn / o);
        printf("ffmpeg -pix_fmt rgb24 -f null -  : %.3f s  %.1f frames/s  (ours/ffmpeg speed %.2f)\n",
               cr, frames / cr, cr / o);
    }
    printf("RESULT decode impl=ours fps=%.2f open_s=%.4f frames=%lld threads=%d\n", frames / o, on,
           (long long)frames, threads);
    printf("RESULT decode impl=ffmpeg_cli_null fps=%.2f ratio_ours_over_cli=%.3f\n", frames / cn,
           cn / o);
    printf("RESULT decode impl=ffmpeg_cli_rgb24 fps=%.2f ratio_ours_over_cli=%.3f\n", frames / cr,
           cr / o);
    return 0;
}
