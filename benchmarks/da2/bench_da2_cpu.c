/* bench_da2_cpu — time per forward and peak RSS of our Depth Anything V2 Small on the CPU
 * backend (a program, not a test).
 *
 * Forward only (da2_forward: DINOv2 ViT-S/14 + DPT head, no preprocessing / final resize) on
 * one model input (1, 3, --height, --width) (multiples of 14; 518x518 and 518x924 = the
 * official input_size 518 for square and 16:9 sources), recipe weights from --weights (written
 * by our generator, see --write-weights), --warmup untimed then --runs timed forwards, threads
 * --threads (default nproc). One process per size, so that the peak RSS (getrusage ru_maxrss:
 * weights, buffers, runtime) describes that size. Prints one line:
 *   RESULT da2 impl=ours size=HxW threads=T runs=R ms_median=... ms_min=... maxrss_mb=...
 * The input is deterministic: per channel c, u = dm_recipe_u(1000 + c, i) in [0, 1) normalised
 * with the ImageNet mean/std, i.e. the value range of a real preprocessed image.
 * --dump FILE writes `input` (1,3,H,W) and `depth` (1,1,H,W) for torch_da2.py --inputs.
 * --recipe R --write-weights OUT: only writes the recipe weights (dm_recipe_write_safetensors).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "depthmatte/backend.h"
#include "depthmatte/cpu_tune.h"
#include "depthmatte/da2.h"
#include "depthmatte/recipe.h"
#include "depthmatte/safetensors.h"

static int fail(const char *what, dm_status st) {
    fprintf(stderr, "bench_da2_cpu: %s: %s (%s)\n", what, dm_error_message(), dm_status_name(st));
    return 1;
}

static int write_weights(const char *recipe_path, const char *out) {
    dm_recipe r = {0};
    dm_status st = dm_recipe_load(&r, recipe_path);
    if (st != DM_OK) return fail("recipe", st);
    st = dm_recipe_write_safetensors(&r, out);
    dm_recipe_free(&r);
    if (st != DM_OK) return fail("write weights", st);
    printf("wrote %s\n", out);
    return 0;
}

int main(int argc, char **argv) {
    /* As the depthmatte CLI does: re-exec with OPENBLAS_CORETYPE if OpenBLAS fell back to its
     * generic kernels (DM_NO_BLAS_REEXEC=1 measures the fallback). */
    dm_cpu_tune_blas(argc, argv);
    const char *out_weights = bench_arg(argc, argv, "write-weights", NULL);
    if (out_weights)
        return write_weights(
            bench_arg(argc, argv, "recipe", "../shared/golden/da2_vits/recipe.json"), out_weights);

    const char *weights = bench_arg(argc, argv, "weights", NULL);
    const char *dump = bench_arg(argc, argv, "dump", NULL);
    int h = atoi(bench_arg(argc, argv, "height", "518"));
    int w = atoi(bench_arg(argc, argv, "width", "518"));
    int warmup = atoi(bench_arg(argc, argv, "warmup", "1"));
    int runs = atoi(bench_arg(argc, argv, "runs", "3"));
    int threads = atoi(bench_arg(argc, argv, "threads", "0"));
    if (threads <= 0) threads = bench_nproc();
    if (bench_flag(argc, argv, "help")) {
        printf("blas core: %s\n", dm_cpu_blas_corename());
        return 0;
    }
    if (!weights || h < 14 || w < 14 || h % 14 || w % 14 || warmup < 0 || runs < 1) {
        fprintf(stderr, "usage: bench_da2_cpu --weights W [--height H --width W (multiples of "
                        "14)] [--warmup N] [--runs R] [--threads T] [--dump F]\n"
                        "       bench_da2_cpu --recipe recipe.json --write-weights OUT\n");
        return 2;
    }

    dm_backend *be = dm_backend_cpu_create(threads);
    if (!be) return fail("backend", DM_ERR_NOMEM);
    da2_model *model = NULL;
    da2_ctx *ctx = NULL;
    dm_status st = da2_model_load(&model, weights, be);
    if (st != DM_OK) return fail("load", st);
    /* A source of exactly the input size maps to itself at input_size = min(h, w) (official
     * Resize, lower_bound, multiple of 14): the forward runs at h x w. */
    st = da2_ctx_init(&ctx, model, be, h, w, h < w ? h : w);
    if (st != DM_OK) return fail("ctx", st);
    int ih = 0, iw = 0;
    da2_ctx_input_dims(ctx, &ih, &iw);
    if (ih != h || iw != w) {
        fprintf(stderr, "bench_da2_cpu: context input %dx%d != requested %dx%d\n", ih, iw, h, w);
        return 1;
    }

    dm_tensor input = {0}, depth = {0};
    int64_t in_shape[4] = {1, 3, h, w}, out_shape[4] = {1, 1, h, w};
    if (dm_tensor_alloc(&input, DM_DTYPE_F32, 4, in_shape) != DM_OK ||
        dm_tensor_alloc(&depth, DM_DTYPE_F32, 4, out_shape) != DM_OK)
        return fail("alloc", DM_ERR_NOMEM);
    static const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
    size_t plane = (size_t)h * w;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++)
            dm_f32(&input)[c * plane + i] =
                (float)((dm_recipe_u(1000 + (uint64_t)c, i) - mean[c]) / stdv[c]);

    double *times = malloc(sizeof(double) * (size_t)runs);
    if (!times) return 1;
    for (int i = 0; i < warmup + runs; i++) {
        double t0 = bench_now();
        st = da2_forward(ctx, &input, &depth);
        double dt = bench_now() - t0;
        if (st != DM_OK) return fail("forward", st);
        if (i >= warmup) times[i - warmup] = dt;
    }
    printf("RESULT da2 impl=ours size=%dx%d threads=%d runs=%d ms_median=%.1f ms_min=%.1f "
           "maxrss_mb=%.0f blas=%s\n",
           h, w, threads, runs, 1e3 * bench_median(times, runs), 1e3 * bench_min(times, runs),
           bench_maxrss_mb(), dm_cpu_blas_corename());

    int rc = 0;
    if (dump) {
        const char *names[2] = {"input", "depth"};
        const dm_tensor *ts[2] = {&input, &depth};
        st = dm_st_write(dump, 2, names, ts, NULL);
        if (st != DM_OK) rc = fail("dump", st);
    }
    free(times);
    dm_tensor_free(&input);
    dm_tensor_free(&depth);
    da2_ctx_free(ctx);
    da2_model_free(model);
    dm_backend_destroy(be);
    return rc;
}
