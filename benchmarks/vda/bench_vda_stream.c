/* bench_vda_stream — Video Depth Anything Small streaming mode (vda_stream, the official
 * infer_video_depth_one) on the CPU backend: peak RSS for two video lengths and seconds per
 * frame against the offline path (vda_video = infer_video_depth), in one process, one run
 * (a program, not a test). The stream's cache pools are allocated and zero-filled at init, so
 * its RSS is reached at the first frame; test_vda_stream checks that it stays flat past the pool
 * turnover (frame 43) at a small size.
 *
 * Recipe weights (bench_vda_cpu --write-weights), real rgb24 frames of --width x --height
 * (run_vda_stream.sh extracts them with the ffmpeg CLI), --input-size (default 518),
 * --threads. Order: load the model; then for each part the peak RSS is reset
 * (/proc/self/clear_refs, 5) before it and VmHWM read after it:
 *   stream-short: a fresh vda_stream over the first --short frames;
 *   stream-long:  a fresh vda_stream over K frames (--count, default all; timed: s/frame);
 *   offline-window: vda_ctx + one vda_window_depth (32 frames); a long video costs one window
 *                 per 22 frames, so s/frame = window s / 22 (frames=22 in its line).
 * Prints one RESULT line per part:
 *   RESULT vda_stream part=... size=HxW src=HxW frames=N threads=T s=... s_per_frame=...
 *          peak_mib=...
 * and a RATIO line (stream s/frame over offline s/frame). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "depthmatte/backend.h"
#include "depthmatte/cpu_tune.h"
#include "depthmatte/vda.h"

static int fail(const char *what, dm_status st) {
    fprintf(stderr, "bench_vda_stream: %s: %s (%s)\n", what, dm_error_message(),
            dm_status_name(st));
    return 1;
}

static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) fputs("5", f), fclose(f);
}

static double peak_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = atol(line + 6);
    if (f) fclose(f);
    return kib < 0 ? bench_maxrss_mb() : kib / 1024.0;
}

static void result(const char *part, int ih, int iw, int h, int w, int n, int threads, double s) {
    printf("RESULT vda_stream part=%s size=%dx%d src=%dx%d frames=%d threads=%d s=%.2f "
           "s_per_frame=%.4f peak_mib=%.0f\n",
           part, ih, iw, h, w, n, threads, s, s / n, peak_mib());
    fflush(stdout);
}

/* Streams frames [0, n) through a fresh stream; returns seconds (< 0 on error). */
static double stream_run(const vda_model *m, dm_backend *be, const uint8_t *frames, int n, int h,
                         int w, int input_size, float *depth, int *ih, int *iw) {
    vda_stream *s = NULL;
    dm_status st = vda_stream_init(&s, m, be, h, w, input_size);
    if (st) return fail("stream init", st), -1;
    vda_stream_input_dims(s, ih, iw);
    const size_t fsize = (size_t)h * w * 3;
    const double t0 = bench_now();
    for (int t = 0; t < n && !st; t++)
        st = vda_stream_push(s, frames + fsize * t, depth);
    const double sec = bench_now() - t0;
    vda_stream_free(s);
    if (st) return fail("stream push", st), -1;
    return sec;
}

int main(int argc, char **argv) {
    dm_cpu_tune_blas(argc, argv);
    if (bench_flag(argc, argv, "help")) {
        printf("usage: bench_vda_stream --weights W --frames RGB24_FILE --width W --height H "
               "[--count N] [--short N] [--input-size 518] [--threads T] [--no-offline]\n");
        return 0;
    }
    const char *weights = bench_arg(argc, argv, "weights", NULL);
    const char *frames_path = bench_arg(argc, argv, "frames", NULL);
    const int w = atoi(bench_arg(argc, argv, "width", "720"));
    const int h = atoi(bench_arg(argc, argv, "height", "720"));
    const int input_size = atoi(bench_arg(argc, argv, "input-size", "518"));
    int n_short = atoi(bench_arg(argc, argv, "short", "22"));
    int threads = atoi(bench_arg(argc, argv, "threads", "0"));
    const int offline = !bench_flag(argc, argv, "no-offline");
    if (threads <= 0) threads = bench_nproc();
    if (!weights || !frames_path || w < 14 || h < 14 || input_size < 14 || n_short < 1) {
        fprintf(stderr, "bench_vda_stream: need --weights and --frames (see --help)\n");
        return 2;
    }
    int k = 0;
    uint8_t *frames = bench_read_frames(frames_path, h, w, &k);
    if (!frames) return 1;
    const int count = atoi(bench_arg(argc, argv, "count", "0"));
    const int n_file = k;
    if (count > 0 && count < k) k = count; /* the long stream's length */
    if (n_short > k) n_short = k;
    dm_backend *be = dm_backend_cpu_create(threads);
    if (!be) return fail("backend", DM_ERR_NOMEM);
    vda_model *m = NULL;
    dm_status st = vda_model_load(&m, weights, be, 0);
    if (st) return fail("load", st);
    const size_t hw = (size_t)h * w;
    float *depth = malloc(sizeof(float) * VDA_WINDOW * hw);
    if (!depth) return fail("alloc", DM_ERR_NOMEM);
    int ih = 0, iw = 0;
    reset_peak();
    double s = stream_run(m, be, frames, n_short, h, w, input_size, depth, &ih, &iw);
    if (s < 0) return 1;
    result("stream-short", ih, iw, h, w, n_short, threads, s);
    reset_peak();
    const double s_stream = stream_run(m, be, frames, k, h, w, input_size, depth, &ih, &iw);
    if (s_stream < 0) return 1;
    result("stream-long", ih, iw, h, w, k, threads, s_stream);
    if (offline) {
        /* one 32-frame window (frames 0..31, clamped): in a long video each window finalises
         * VDA_STRIDE = 22 new frames, so window seconds / 22 is offline's steady-state cost per
         * frame (the scale/shift alignment adds little) */
        reset_peak();
        vda_ctx *c = NULL;
        if ((st = vda_ctx_init(&c, m, be, h, w, input_size))) return fail("offline init", st);
        int64_t idx[VDA_WINDOW];
        const uint8_t *win[VDA_WINDOW];
        vda_window_frames(0, n_file, idx);
        for (int i = 0; i < VDA_WINDOW; i++)
            win[i] = frames + 3 * hw * (size_t)idx[i];
        const double t0 = bench_now();
        st = vda_window_depth(c, win, depth);
        const double s_win = bench_now() - t0;
        if (st) return fail("offline window", st);
        result("offline-window", ih, iw, h, w, VDA_STRIDE, threads, s_win);
        printf("RATIO vda_stream s_per_frame stream/offline = %.3f (stream %.3f s, offline "
               "%.3f s = one window / %d)\n",
               (s_stream / k) / (s_win / VDA_STRIDE), s_stream / k, s_win / VDA_STRIDE, VDA_STRIDE);
        vda_ctx_free(c);
    }
    free(depth);
    free(frames);
    vda_model_free(m);
    dm_backend_destroy(be);
    return 0;
}
