/* bench_vda_cpu — frames/s and peak RSS of our Video Depth Anything Small on the CPU backend
 * (a program, not a test).
 *
 * Recipe weights (golden README section 1; written once by --write-weights, as the DA-V2
 * bench), real frames of --width x --height from a raw rgb24 file (run_vda_cpu.sh extracts
 * them with the ffmpeg CLI; without --frames a synthetic pattern of --count frames is used),
 * official input_size --input-size (default 518), threads --threads (default nproc). Two
 * timed parts in one process, on one context (vda_ctx_init sizes every buffer once):
 *   window: vda_window_depth on frames 0..31 of the file (u8 -> official transform -> forward
 *           -> bilinear resize to the source size), --window-runs times (the first includes
 *           the first touch of the context's buffers, as PyTorch's first call allocates);
 *   video:  the streaming path, all K frames of the file pushed in order through
 *           vda_video_push, finished frames taken with vda_video_pop, flush at the end
 *           (windows of 32 frames every 22 frames, scale/shift alignment, blending), i.e.
 *           what infer_video_depth computes; 54 frames = 3 windows.
 * Prints two lines (fps = frames / seconds; maxrss_mb = getrusage ru_maxrss so far):
 *   RESULT vda impl=ours mode=window size=HxW src=HxW frames=32 threads=T fps=... s=...
 *   RESULT vda impl=ours mode=video  size=HxW src=HxW frames=K threads=T fps=... s=...
 * --dump PREFIX writes PREFIX.window.f32 (32, src_h, src_w) and PREFIX.video.f32
 * (K, src_h, src_w), raw little-endian float32 (no extra copy in memory, so the dump does not
 * raise the RSS; the write time is excluded from the timing), for torch_vda.py --compare.
 * --recipe R --pe P --write-weights OUT: only writes the recipe weights
 * (dm_recipe_write_safetensors, pos_encoder.pe tables from P = pe_buffers.safetensors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "depthmatte/backend.h"
#include "depthmatte/cpu_tune.h"
#include "depthmatte/recipe.h"
#include "depthmatte/vda.h"

static int fail(const char *what, dm_status st) {
    fprintf(stderr, "bench_vda_cpu: %s: %s (%s)\n", what, dm_error_message(), dm_status_name(st));
    return 1;
}

static int write_weights(const char *recipe_path, const char *pe_path, const char *out) {
    dm_recipe r = {0};
    dm_status st = dm_recipe_load(&r, recipe_path);
    if (st != DM_OK) return fail("recipe", st);
    /* The exact torch float32 pe tables, as the VDA tests use (recipe.h). */
    if (pe_path && (st = dm_recipe_set_pe_file(&r, pe_path)) != DM_OK) {
        dm_recipe_free(&r);
        return fail("pe tables", st);
    }
    st = dm_recipe_write_safetensors(&r, out);
    dm_recipe_free(&r);
    if (st != DM_OK) return fail("write weights", st);
    printf("wrote %s\n", out);
    return 0;
}

/* Opens PREFIX.SUFFIX for the raw float32 dump; NULL without a prefix. */
static FILE *open_dump(const char *prefix, const char *suffix) {
    if (!prefix) return NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s.%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    if (!f) fprintf(stderr, "bench_vda_cpu: cannot write %s\n", path);
    return f;
}

static void print_result(const char *mode, int ih, int iw, int h, int w, int frames,
                         int threads, double s) {
    printf("RESULT vda impl=ours mode=%s size=%dx%d src=%dx%d frames=%d threads=%d fps=%.4f "
           "s=%.2f maxrss_mb=%.0f blas=%s\n",
           mode, ih, iw, h, w, frames, threads, frames / s, s, bench_maxrss_mb(),
           dm_cpu_blas_corename());
    fflush(stdout);
}

int main(int argc, char **argv) {
    /* As the depthmatte CLI does: re-exec with OPENBLAS_CORETYPE if OpenBLAS fell back to its
     * generic kernels (DM_NO_BLAS_REEXEC=1 measures the fallback). */
    dm_cpu_tune_blas(argc, argv);
    if (bench_flag(argc, argv, "help")) {
        printf("usage: bench_vda_cpu --weights W [--frames RGB24_FILE --width W --height H | "
               "--count N] [--input-size 518] [--window-runs 1] [--no-video] [--threads T] "
               "[--dump PREFIX]\n"
               "       bench_vda_cpu --recipe recipe.json --pe pe_buffers.safetensors "
               "--write-weights OUT\nblas core: %s\n", dm_cpu_blas_corename());
        return 0;
    }
    const char *out_weights = bench_arg(argc, argv, "write-weights", NULL);
    if (out_weights)
        return write_weights(
            bench_arg(argc, argv, "recipe", "../shared/golden/vda_vits/recipe.json"),
            bench_arg(argc, argv, "pe", "../shared/golden/vda_vits/pe_buffers.safetensors"),
            out_weights);

    const char *weights = bench_arg(argc, argv, "weights", NULL);
    const char *frames_path = bench_arg(argc, argv, "frames", NULL);
    const char *dump = bench_arg(argc, argv, "dump", NULL);
    int w = atoi(bench_arg(argc, argv, "width", "720"));
    int h = atoi(bench_arg(argc, argv, "height", "720"));
    int k = atoi(bench_arg(argc, argv, "count", "54"));
    int input_size = atoi(bench_arg(argc, argv, "input-size", "518"));
    int window_runs = atoi(bench_arg(argc, argv, "window-runs", "1"));
    int video = !bench_flag(argc, argv, "no-video");
    int threads = atoi(bench_arg(argc, argv, "threads", "0"));
    if (threads <= 0) threads = bench_nproc();
    if (!weights || w < 14 || h < 14 || k < 1 || input_size < 14 || window_runs < 0) {
        fprintf(stderr, "bench_vda_cpu: need --weights; bad --width/--height/--count/"
                        "--input-size/--window-runs (see --help)\n");
        return 2;
    }

    uint8_t *frames = NULL;
    const size_t fsize = (size_t)h * w * 3;
    if (frames_path) {
        frames = bench_read_frames(frames_path, h, w, &k);
        if (!frames) return 1;
    } else {
        frames = malloc(fsize * (size_t)k);
        if (!frames) return 1;
        for (int t = 0; t < k; t++) bench_synth_frame(frames + fsize * t, h, w, t);
    }

    dm_backend *be = dm_backend_cpu_create(threads);
    if (!be) return fail("backend", DM_ERR_NOMEM);
    vda_model *model = NULL;
    vda_ctx *ctx = NULL;
    dm_status st = vda_model_load(&model, weights, be, 0);
    if (st != DM_OK) return fail("load", st);
    st = vda_ctx_init(&ctx, model, be, h, w, input_size);
    if (st != DM_OK) return fail("ctx", st);
    int ih = 0, iw = 0;
    vda_ctx_input_dims(ctx, &ih, &iw);

    const size_t hw = (size_t)h * w;
    float *raw = malloc(sizeof(float) * VDA_WINDOW * hw);
    if (!raw) return fail("alloc", DM_ERR_NOMEM);
    int rc = 0;

    /* (a) one window: the first window of the video (frames 0..31, clamped to the file). */
    if (window_runs > 0) {
        int64_t idx[VDA_WINDOW];
        const uint8_t *win[VDA_WINDOW];
        vda_window_frames(0, k, idx);
        for (int s = 0; s < VDA_WINDOW; s++) win[s] = frames + fsize * (size_t)idx[s];
        double *times = malloc(sizeof(double) * (size_t)window_runs);
        if (!times) return 1;
        for (int i = 0; i < window_runs; i++) {
            double t0 = bench_now();
            st = vda_window_depth(ctx, win, raw);
            times[i] = bench_now() - t0;
            if (st != DM_OK) return fail("window", st);
        }
        print_result("window", ih, iw, h, w, VDA_WINDOW, threads,
                     bench_median(times, window_runs));
        free(times);
        FILE *f = open_dump(dump, "window.f32");
        if (f) {
            if (fwrite(raw, sizeof(float), VDA_WINDOW * hw, f) != VDA_WINDOW * hw) rc = 1;
            if (fclose(f)) rc = 1;
        }
    }

    /* (b) the streaming path over all k frames; popped frames land in one frame buffer (and
     * in the dump file), as the pipeline consumes them. */
    if (video) {
        vda_video *v = NULL;
        st = vda_video_init(&v, ctx);
        if (st != DM_OK) return fail("video init", st);
        FILE *f = open_dump(dump, "video.f32");
        if (dump && !f) rc = 1;
        double t_dump = 0;
        int64_t got = 0, fi = 0;
        double t0 = bench_now();
        for (int t = 0; t <= k; t++) {
            if (t < k)
                st = vda_video_push(v, frames + fsize * (size_t)t);
            else
                st = vda_video_flush(v);
            if (st != DM_OK) return fail("push", st);
            int r;
            while ((r = vda_video_pop(v, raw, &fi)) == 1) {
                if (fi != got) {
                    fprintf(stderr, "bench_vda_cpu: popped frame %lld, expected %lld\n",
                            (long long)fi, (long long)got);
                    return 1;
                }
                got++;
                if (f) {
                    double d0 = bench_now();
                    if (fwrite(raw, sizeof(float), hw, f) != hw) rc = 1;
                    t_dump += bench_now() - d0;
                }
            }
            if (r < 0) return fail("pop", (dm_status)-r);
        }
        double s = bench_now() - t0 - t_dump;
        if (got != k) {
            fprintf(stderr, "bench_vda_cpu: %lld frames out of %d\n", (long long)got, k);
            return 1;
        }
        print_result("video", ih, iw, h, w, k, threads, s);
        if (f && fclose(f)) rc = 1;
        vda_video_free(v);
    }
    if (rc) fprintf(stderr, "bench_vda_cpu: writing the dump failed\n");

    free(raw);
    free(frames);
    vda_ctx_free(ctx);
    vda_model_free(model);
    dm_backend_destroy(be);
    return rc;
}
