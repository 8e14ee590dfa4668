/* fidelity_da2 — our DA-V2 Small on one real frame, with every tap, for the float64 fidelity
 * comparison of fidelity_da2.py (a developer program, not a test; benchmarks/README.md).
 *
 * Reads one (H, W, 3) rgb24 frame (--frame F --height H --width W, e.g. written by
 * `ffmpeg -pix_fmt rgb24 -f rawvideo`), runs da2_infer_u8 at --input-size (official
 * image2tensor, forward, bilinear resize to the source) with the recipe weights --weights, and
 * writes to --out: `input` (1, 3, h, w), `tokens_embed` (1, 1 + ph*pw, 384), `feat_2` ..
 * `feat_11` (1, ph*pw, 384), `depth_head` (1, 1, h, w) and `depth` (H, W). With --input-from FILE
 * the network runs on the `input` tensor of FILE instead of our preprocessing (the same float32
 * input as the official run, so that only the network is compared).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "depthmatte/backend.h"
#include "depthmatte/cpu_tune.h"
#include "depthmatte/da2.h"
#include "depthmatte/safetensors.h"

static int fail(const char *what, dm_status st) {
    fprintf(stderr, "fidelity_da2: %s: %s (%s)\n", what, dm_error_message(), dm_status_name(st));
    return 1;
}

int main(int argc, char **argv) {
    dm_cpu_tune_blas(argc, argv);
    const char *weights = bench_arg(argc, argv, "weights", NULL);
    const char *frame = bench_arg(argc, argv, "frame", NULL);
    const char *out = bench_arg(argc, argv, "out", NULL);
    const char *input_from = bench_arg(argc, argv, "input-from", NULL);
    const int H = atoi(bench_arg(argc, argv, "height", "0"));
    const int W = atoi(bench_arg(argc, argv, "width", "0"));
    const int input_size = atoi(bench_arg(argc, argv, "input-size", "518"));
    int threads = atoi(bench_arg(argc, argv, "threads", "0"));
    if (threads <= 0) threads = bench_nproc();
    if (!weights || !frame || !out || H < 14 || W < 14) {
        fprintf(stderr, "usage: fidelity_da2 --weights W --frame RGB24 --height H --width W "
                        "--out OUT.safetensors [--input-size 518] [--input-from F] "
                        "[--threads T]\n");
        return 2;
    }
    int k = 0;
    uint8_t *rgb = bench_read_frames(frame, H, W, &k);
    if (!rgb) return 1;
    if (k != 1) {
        fprintf(stderr, "fidelity_da2: %s holds %d frames of %dx%d, expected 1\n", frame, k, W, H);
        free(rgb);
        return 1;
    }
    dm_backend *be = dm_backend_cpu_create(threads);
    if (!be) return fail("backend", DM_ERR_NOMEM);
    da2_model *model = NULL;
    da2_ctx *ctx = NULL;
    dm_status st = da2_model_load(&model, weights, be);
    if (st != DM_OK) return fail("load", st);
    if ((st = da2_ctx_init(&ctx, model, be, H, W, input_size)) != DM_OK) return fail("ctx", st);
    float *depth = malloc(sizeof(float) * (size_t)H * W);
    if (!depth) return fail("alloc", DM_ERR_NOMEM);
    if ((st = da2_infer_u8(ctx, rgb, depth)) != DM_OK) return fail("infer", st);
    da2_taps t;
    da2_ctx_taps(ctx, &t);
    dm_tensor head = {0}, given = {0};
    if (input_from) {
        /* Same network, the official float32 input: replaces preprocessing differences. */
        dm_st_file f;
        if ((st = dm_st_open(&f, input_from)) != DM_OK) return fail(input_from, st);
        st = dm_st_load_f32(&f, "input", 4, t.input->shape, &given);
        dm_st_close(&f);
        if (st != DM_OK) return fail(input_from, st);
        if ((st = dm_tensor_alloc(&head, DM_DTYPE_F32, 4, t.depth_head->shape)) != DM_OK ||
            (st = da2_forward(ctx, &given, &head)) != DM_OK)
            return fail("forward", st);
        da2_ctx_taps(ctx, &t);
    }
    dm_tensor dview = {0};
    const int64_t s_depth[2] = {H, W};
    dm_tensor_view(&dview, depth, DM_DTYPE_F32, 2, s_depth);
    const char *names[8] = {"input",  "tokens_embed", "feat_2",     "feat_5",
                            "feat_8", "feat_11",      "depth_head", "depth"};
    /* CPU backend: the taps are host tensors. */
    const dm_tensor *ts[8] = {input_from ? &given : t.input,
                              t.tokens_embed,
                              t.feat[0],
                              t.feat[1],
                              t.feat[2],
                              t.feat[3],
                              input_from ? &head : t.depth_head,
                              &dview};
    /* `depth` (source size) is of our own preprocessing; with --input-from only the head is
     * of the given input, so `depth` is left out then. */
    const int n = input_from ? 7 : 8;
    st = dm_st_write(out, n, names, ts, NULL);
    int rc = st != DM_OK ? fail("write", st) : 0;
    if (!rc)
        printf("wrote %s (input %lldx%lld)\n", out, (long long)t.input->shape[2],
               (long long)t.input->shape[3]);
    dm_tensor_free(&head);
    dm_tensor_free(&given);
    free(depth);
    free(rgb);
    da2_ctx_free(ctx);
    da2_model_free(model);
    dm_backend_destroy(be);
    return rc;
}
