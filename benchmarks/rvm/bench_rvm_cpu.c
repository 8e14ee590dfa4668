/* bench_rvm_cpu — frames/s of our RVM (MobileNetV3, or ResNet50 with --variant resnet50) on the
 * CPU backend (a program, not a test).
 *
 * Real weights (../shared/models/rvm_mobilenetv3.safetensors), frames of --width x --height
 * (default 1280x720) from a raw rgb24 file (run_rvm_cpu.sh extracts real 720p frames with the
 * ffmpeg CLI; without --frames a synthetic pattern is used), downsample ratio --ratio (default
 * 0 = auto, rvm_auto_downsample_ratio: 0.4 at 720p), deep guided filter, --warmup N untimed then
 * --timed M timed frames through rvm_forward_u8 with the recurrent state carried over, as a
 * video is processed. Frame t of the run is frame t mod K of the file. Threads = --threads
 * (default nproc). Prints one line:
 *   RESULT rvm impl=ours threads=T frames=M size=WxH ratio=r fps=... ms_median=... ms_min=...
 * (RESULT rvm_resnet50 ... with --variant resnet50.)
 * --dump FILE writes pha (1,1,H,W) and fgr (1,3,H,W) of the last frame (safetensors) so that
 * torch_rvm.py --compare can print max |ours - torch| on the same input.
 * --timed 0 only prints the RESULT line with the ratio (the driver uses it to pass the same
 * ratio to PyTorch).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "depthmatte/backend.h"
#include "depthmatte/cpu_tune.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"

static int fail(const char *what, dm_status st) {
    fprintf(stderr, "bench_rvm_cpu: %s: %s (%s)\n", what, dm_error_message(), dm_status_name(st));
    return 1;
}

int main(int argc, char **argv) {
    /* As the depthmatte CLI does: re-exec with OPENBLAS_CORETYPE if OpenBLAS fell back to its
     * generic kernels (DM_NO_BLAS_REEXEC=1 measures the fallback). */
    dm_cpu_tune_blas(argc, argv);
    if (bench_flag(argc, argv, "help")) {
        printf("usage: bench_rvm_cpu [--weights W] [--frames RGB24_FILE] [--width 1280] "
               "[--height 720] [--ratio 0=auto] [--warmup 5] [--timed 20] [--threads nproc] "
               "[--dump F] [--variant mobilenetv3|resnet50]\nblas core: %s\n",
               dm_cpu_blas_corename());
        return 0;
    }
    const char *weights = bench_arg(argc, argv, "weights", "../shared/models/rvm_mobilenetv3.safetensors");
    const char *frames_path = bench_arg(argc, argv, "frames", NULL);
    const char *vname = bench_arg(argc, argv, "variant", "mobilenetv3");
    const rvm_variant variant = !strcmp(vname, "resnet50") ? RVM_VARIANT_RESNET50
                                                           : RVM_VARIANT_MOBILENETV3;
    const char *tag = variant == RVM_VARIANT_RESNET50 ? "rvm_resnet50" : "rvm";
    if (strcmp(vname, rvm_variant_name(variant))) {
        fprintf(stderr, "bench_rvm_cpu: --variant %s: expected mobilenetv3 or resnet50\n", vname);
        return 2;
    }
    const char *dump = bench_arg(argc, argv, "dump", NULL);
    int w = atoi(bench_arg(argc, argv, "width", "1280"));
    int h = atoi(bench_arg(argc, argv, "height", "720"));
    int warmup = atoi(bench_arg(argc, argv, "warmup", "5"));
    int timed = atoi(bench_arg(argc, argv, "timed", "20"));
    int threads = atoi(bench_arg(argc, argv, "threads", "0"));
    double ratio = atof(bench_arg(argc, argv, "ratio", "0"));
    if (threads <= 0) threads = bench_nproc();
    if (w < 1 || h < 1 || warmup < 0 || timed < 0) {
        fprintf(stderr, "bench_rvm_cpu: bad --width/--height/--warmup/--timed\n");
        return 2;
    }

    int k = 1;
    uint8_t *frames = NULL;
    if (frames_path) {
        frames = bench_read_frames(frames_path, h, w, &k);
        if (!frames) return 1;
    } else {
        frames = malloc((size_t)h * w * 3);
        if (!frames) return 1;
        bench_synth_frame(frames, h, w, 0);
    }

    dm_backend *be = dm_backend_cpu_create(threads);
    if (!be) return fail("backend", DM_ERR_NOMEM);
    rvm_model *model = NULL;
    rvm_state *state = NULL;
    dm_status st = rvm_model_load_variant(&model, weights, variant, be);
    if (st != DM_OK) return fail("load", st);
    st = rvm_state_init(&state, model, be, h, w, ratio);
    if (st != DM_OK) return fail("state", st);
    ratio = rvm_state_ratio(state);

    dm_tensor pha = {0}, fgr = {0};
    int64_t pha_shape[4] = {1, 1, h, w}, fgr_shape[4] = {1, 3, h, w};
    if (dm_tensor_alloc(&pha, DM_DTYPE_F32, 4, pha_shape) != DM_OK ||
        dm_tensor_alloc(&fgr, DM_DTYPE_F32, 4, fgr_shape) != DM_OK)
        return fail("alloc", DM_ERR_NOMEM);

    double *times = malloc(sizeof(double) * (size_t)(timed > 0 ? timed : 1));
    if (!times) return 1;
    size_t fsize = (size_t)h * w * 3;
    for (int i = 0; i < warmup + timed; i++) {
        const uint8_t *rgb = frames + (size_t)(i % k) * fsize;
        double t0 = bench_now();
        /* fgr is computed too (not NULL): PyTorch computes it in every forward. */
        st = rvm_forward_u8(state, rgb, dm_f32(&fgr), dm_f32(&pha));
        double dt = bench_now() - t0;
        if (st != DM_OK) return fail("forward", st);
        if (i >= warmup) times[i - warmup] = dt;
    }

    if (timed > 0) {
        double total = 0;
        for (int i = 0; i < timed; i++) total += times[i];
        printf("RESULT %s impl=ours threads=%d frames=%d size=%dx%d ratio=%g fps=%.3f "
               "ms_median=%.1f ms_min=%.1f maxrss_mb=%.0f blas=%s\n", tag,
               threads, timed, w, h, ratio, timed / total, 1e3 * bench_median(times, timed),
               1e3 * bench_min(times, timed), bench_maxrss_mb(), dm_cpu_blas_corename());
    } else {
        printf("RESULT %s impl=ours threads=%d frames=0 size=%dx%d ratio=%g\n", tag, threads, w,
               h, ratio);
    }

    int rc = 0;
    if (dump && warmup + timed > 0) {
        const char *names[2] = {"pha", "fgr"};
        const dm_tensor *ts[2] = {&pha, &fgr};
        st = dm_st_write(dump, 2, names, ts, NULL);
        if (st != DM_OK) rc = fail("dump", st);
    }
    free(times);
    dm_tensor_free(&pha);
    dm_tensor_free(&fgr);
    rvm_state_free(state);
    rvm_model_free(model);
    dm_backend_destroy(be);
    free(frames);
    return rc;
}
