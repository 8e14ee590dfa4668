/* bench_gpu — frames/s and device memory of our networks on the CUDA backend (or the CPU one),
 * beside the official PyTorch code (torch_gpu.py); a program, not a test. Driver:
 * benchmarks/gpu/run_gpu_bench.sh (README there).
 *
 *   bench_gpu --model da2|rvm|vda --weights W [--backend cuda|cpu] [--precision float32|
 *             float16|bfloat16] [--height H --width W] [--batch B] [--input-size 518]
 *             [--ratio 0.25] [--warmup N] [--runs R] [--dump F]
 *
 * Each timed iteration processes `frames` frames through the u8 entry point (host u8 in, host
 * float32 out; preprocessing on the backend):
 *   da2  B frames of (H, W, 3) in one batched forward, da2_infer_u8_batch on a context of
 *        batch B (da2_ctx_init_batch; B = 1: da2_infer_u8), input_size 518, as torch_gpu.py
 *        runs the official model on the B frames as one (B, 3, h, w) batch
 *   rvm  one frame of (H, W, 3), rvm_forward_u8 (fgr + pha), recurrent state carried over,
 *        downsample ratio --ratio, deep guided filter
 *   vda  one 32-frame window of (H, W, 3), vda_window_depth, input_size 518
 * Frames are bench_synth_frame patterns (deterministic; frame t differs from frame t-1).
 * Prints
 *   RESULT gpu_<model> impl=ours backend=... precision=... size=WxH batch=B frames=F
 *          fps=... ms_median=... peak_alloc_mb=... dev_mem_mb=... maxrss_mb=...
 * peak_alloc_mb: the most device memory our backend held at once through its own cudaMalloc
 * calls (dm_cuda_alloc_stats: weights, buffers, scratch, download stages), the counterpart of
 * torch_gpu.py's peak_alloc_mb (torch.cuda.max_memory_allocated); dev_mem_mb: device memory in
 * use after the timed runs minus before the backend existed (cudaMemGetInfo: the above plus the
 * CUDA context, cuDNN / cuBLASLt handles, their workspaces and CUDA Graphs), as torch_gpu.py's
 * dev_mem_mb; both 0 on the CPU backend.
 * --dump F writes `rgb` (frames, H, W, 3) u8 of the last iteration and `out` (frames, H, W)
 * float32 (da2/vda depth, rvm pha) and, for rvm, `fgr` (1, 3, H, W), for torch_gpu.py --ours;
 * for rvm these are recomputed from a zero recurrent state after the timing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "depthmatte/backend.h"
#include "depthmatte/backend_cuda.h"
#include "depthmatte/da2.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"
#include "depthmatte/vda.h"

static int fail(const char *what, dm_status st) {
    fprintf(stderr, "bench_gpu: %s: %s (%s)\n", what, dm_error_message(), dm_status_name(st));
    return 1;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_gpu --model da2|rvm|vda --weights W [--backend cuda|cpu] "
                    "[--precision float32|float16|bfloat16] [--height H --width W] [--batch B] "
                    "[--input-size 518] [--ratio 0.25] [--warmup N] [--runs R] [--dump F]\n");
    return 2;
}

static double peak_alloc_mb(int cuda) {
    dm_cuda_alloc_counts a;
    if (!cuda || dm_cuda_alloc_stats(0, &a) != DM_OK) return 0;
    return (double)a.peak_bytes / (1024.0 * 1024.0);
}

static double used_mb(int cuda) {
    size_t free_b = 0, total_b = 0;
    if (!cuda || dm_cuda_device_memory(0, &free_b, &total_b) != DM_OK) return 0;
    return (double)(total_b - free_b) / (1024.0 * 1024.0);
}

int main(int argc, char **argv) {
    const char *model = bench_arg(argc, argv, "model", NULL);
    const char *weights = bench_arg(argc, argv, "weights", NULL);
    const char *backend = bench_arg(argc, argv, "backend", "cuda");
    const char *prec = bench_arg(argc, argv, "precision", "float32");
    const char *dump = bench_arg(argc, argv, "dump", NULL);
    const int h = atoi(bench_arg(argc, argv, "height", "518"));
    const int w = atoi(bench_arg(argc, argv, "width", "518"));
    const int batch = atoi(bench_arg(argc, argv, "batch", "1"));
    const int input_size = atoi(bench_arg(argc, argv, "input-size", "518"));
    const double ratio = atof(bench_arg(argc, argv, "ratio", "0.25"));
    const int warmup = atoi(bench_arg(argc, argv, "warmup", "2"));
    const int runs = atoi(bench_arg(argc, argv, "runs", "10"));
    dm_dtype p;
    if (!strcmp(prec, "float32")) p = DM_DTYPE_F32;
    else if (!strcmp(prec, "float16")) p = DM_DTYPE_F16;
    else if (!strcmp(prec, "bfloat16")) p = DM_DTYPE_BF16;
    else return usage();
    const int cuda = !strcmp(backend, "cuda");
    if (!model || !weights || (!cuda && strcmp(backend, "cpu")) || (!cuda && p != DM_DTYPE_F32) ||
        h < 14 || w < 14 || batch < 1 || warmup < 0 || runs < 1)
        return usage();
    const int is_da2 = !strcmp(model, "da2"), is_rvm = !strcmp(model, "rvm"),
              is_vda = !strcmp(model, "vda");
    if (!is_da2 && !is_rvm && !is_vda) return usage();
    const int frames = is_da2 ? batch : is_vda ? VDA_WINDOW : 1;

    const double mem0 = used_mb(cuda);
    dm_backend *be = NULL;
    dm_status st = DM_OK;
    if (cuda) st = dm_backend_cuda_create(0, p, &be);
    else be = dm_backend_cpu_create(0);
    if (st != DM_OK || !be) return fail("backend", st ? st : DM_ERR_NOMEM);

    da2_model *dm = NULL;
    da2_ctx *dc = NULL;
    rvm_model *rm = NULL;
    rvm_state *rs = NULL;
    vda_model *vm = NULL;
    vda_ctx *vc = NULL;
    if (is_da2) {
        if ((st = da2_model_load(&dm, weights, be))) return fail("load", st);
        if ((st = da2_ctx_init_batch(&dc, dm, be, h, w, input_size, batch)))
            return fail("ctx", st);
    } else if (is_rvm) {
        if ((st = rvm_model_load(&rm, weights, be))) return fail("load", st);
        if ((st = rvm_state_init(&rs, rm, be, h, w, ratio))) return fail("state", st);
    } else {
        if ((st = vda_model_load(&vm, weights, be, 0))) return fail("load", st);
        if ((st = vda_ctx_init(&vc, vm, be, h, w, input_size))) return fail("ctx", st);
    }

    const size_t fsz = (size_t)h * w * 3, hw = (size_t)h * w;
    uint8_t *rgb = malloc(fsz * frames);
    float *out = malloc(sizeof(float) * hw * frames), *fgr = malloc(sizeof(float) * 3 * hw);
    double *times = malloc(sizeof(double) * runs);
    const uint8_t **fr = malloc(sizeof *fr * frames); /* the frames of one iteration */
    if (!rgb || !out || !fgr || !times || !fr) return fail("alloc", DM_ERR_NOMEM);
    for (int f = 0; f < frames; f++) fr[f] = rgb + f * fsz;
    for (int it = 0; it < warmup + runs; it++) {
        for (int f = 0; f < frames; f++) bench_synth_frame(rgb + f * fsz, h, w, it * frames + f);
        const double t0 = bench_now();
        if (is_da2)
            st = batch > 1 ? da2_infer_u8_batch(dc, fr, frames, out, 0) : da2_infer_u8(dc, rgb, out);
        else if (is_rvm)
            st = rvm_forward_u8(rs, rgb, fgr, out);
        else
            st = vda_window_depth(vc, fr, out);
        const double dt = bench_now() - t0;
        if (st != DM_OK) return fail("forward", st);
        if (it >= warmup) times[it - warmup] = dt;
    }
    double total = 0;
    for (int i = 0; i < runs; i++) total += times[i];
    const double mem1 = used_mb(cuda), peak = peak_alloc_mb(cuda);
    if (cuda && peak <= 0) /* the weights alone are megabytes: the tracker is not wired */
        return fail("dm_cuda_alloc_stats reports no allocation", DM_ERR_BACKEND);
    printf("RESULT gpu_%s impl=ours backend=%s precision=%s size=%dx%d batch=%d%s frames=%d "
           "fps=%.2f ms_median=%.2f peak_alloc_mb=%.0f dev_mem_mb=%.0f maxrss_mb=%.0f\n",
           model, backend, prec, w, h, batch, is_da2 && batch > 1 ? " mode=batched" : "",
           frames, frames * runs / total, 1e3 * bench_median(times, runs), peak,
           mem1 - mem0, bench_maxrss_mb());

    int rc = 0;
    if (dump && is_rvm) { /* the frame from a zero state: torch_gpu.py compares that one */
        rvm_state_reset(rs);
        if ((st = rvm_forward_u8(rs, rgb, fgr, out))) return fail("forward (dump)", st);
    }
    if (dump) {
        dm_tensor t_rgb, t_out, t_fgr;
        const int64_t s_rgb[] = {frames, h, w, 3}, s_out[] = {frames, h, w}, s_fgr[] = {1, 3, h, w};
        dm_tensor_view(&t_rgb, rgb, DM_DTYPE_U8, 4, s_rgb);
        dm_tensor_view(&t_out, out, DM_DTYPE_F32, 3, s_out);
        dm_tensor_view(&t_fgr, fgr, DM_DTYPE_F32, 4, s_fgr);
        const char *names[3] = {"rgb", "out", "fgr"};
        const dm_tensor *ts[3] = {&t_rgb, &t_out, &t_fgr};
        if ((st = dm_st_write(dump, is_rvm ? 3 : 2, names, ts, NULL))) rc = fail("dump", st);
    }
    free(fr);
    free(times);
    free(fgr);
    free(out);
    free(rgb);
    da2_ctx_free(dc);
    da2_model_free(dm);
    rvm_state_free(rs);
    rvm_model_free(rm);
    vda_ctx_free(vc);
    vda_model_free(vm);
    dm_backend_destroy(be);
    return rc;
}
