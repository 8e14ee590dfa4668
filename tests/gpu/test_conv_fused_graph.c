/* Host-side check of the CUDA backend's fused conv graphs (src/nn/cuda/conv_fused.c), runnable
 * in a CUDA build on a machine without a GPU: for the models' convolution shapes, every
 * activation, f32 / f16 / bf16 (and f16 into f32 with an f32 bias), NCHW and NHWC, with and
 * without a bias, every cuDNN backend descriptor (tensors with strides and alignment, virtual
 * and by-value tensors, the convolution, the pointwise chain) must be accepted and the operation
 * graph must finalize (cuDNN 9 finalizes a graph without a handle or a device). A graph whose
 * output shape contradicts the convolution must be refused (the check can fail). Engine choice,
 * plans and execution need a GPU (test_cuda_ops -o conv2d,conv2d_fused). Without CUDA in the
 * build: exit 77. */
#include <stdio.h>

#include "tensor_compare.h"

#ifdef DM_HAVE_CUDA
#include "nn/cuda/cuda_common.h"

typedef struct gcase {
    const char *what;
    int N, Cin, Cout, H, W, k, s, pad, dil, groups;
} gcase;

static const gcase k_graphs[] = {
    {"3x3 dense", 2, 16, 32, 17, 19, 3, 1, 1, 1, 1},
    {"stem 3x3 s2 (3 channels)", 1, 3, 16, 64, 48, 3, 2, 1, 1, 1},
    {"depthwise 5x5 s2", 1, 96, 96, 16, 12, 5, 2, 2, 1, 96},
    {"depthwise 3x3 d2", 1, 40, 40, 11, 9, 3, 1, 2, 2, 40},
    {"grouped g4", 1, 32, 16, 12, 10, 3, 1, 1, 1, 4},
    {"1x1 on 1x1 (SE)", 2, 96, 24, 1, 1, 1, 1, 0, 1, 1},
    {"7x7 s2 p3 (r50 stem)", 1, 3, 64, 37, 65, 7, 2, 3, 1, 1},
};

static int check_one(const gcase *g, dm_act act, int has_bias, dm_dtype cd, dm_dtype bt,
                     dm_dtype yt, int nhwc, int bad_shape) {
    const int Ho = (g->H + 2 * g->pad - g->dil * (g->k - 1) - 1) / g->s + 1;
    const int Wo = (g->W + 2 * g->pad - g->dil * (g->k - 1) - 1) / g->s + 1;
    const int xs[4] = {g->N, g->Cin, g->H, g->W}, ws[4] = {g->Cout, g->Cin / g->groups, g->k, g->k};
    const int ys[4] = {g->N, g->Cout, Ho + (bad_shape ? 1 : 0), Wo};
    const dm_conv2d_params p = {g->s, g->s, g->pad, g->pad, g->dil, g->dil, g->groups, act};
    char why[256];
    const int st =
        cuda_conv_fused_graph_check(xs, ws, ys, &p, has_bias, cd, bt, yt, nhwc, why, sizeof why);
    if ((st == 0) == !bad_shape) return 1;
    printf("%-26s act %d bias %d %s->%s %s%s: %s\n", g->what, (int)act, has_bias, dm_dtype_name(cd),
           dm_dtype_name(yt), nhwc ? "NHWC" : "NCHW",
           bad_shape ? " (wrong y shape, must be refused)" : "", why);
    return 0;
}

int main(void) {
    const dm_act acts[7] = {DM_ACT_NONE,    DM_ACT_RELU, DM_ACT_HARDSWISH, DM_ACT_HARDSIGMOID,
                            DM_ACT_SIGMOID, DM_ACT_TANH, DM_ACT_GELU};
    const dm_dtype dts[3] = {DM_DTYPE_F32, DM_DTYPE_F16, DM_DTYPE_BF16};
    int n = 0, ok = 0;
    for (size_t gi = 0; gi < sizeof k_graphs / sizeof k_graphs[0]; gi++)
        for (int a = 0; a < 7; a++)
            for (int bias = 0; bias < 2; bias++) {
                if (!bias && acts[a] == DM_ACT_NONE) continue; /* nothing to fuse */
                for (int nhwc = 0; nhwc < 2; nhwc++) {
                    for (int d = 0; d < 3; d++, n++)
                        ok += check_one(&k_graphs[gi], acts[a], bias, dts[d], dts[d], dts[d], nhwc,
                                        0);
                    /* f16 compute into an f32 output with an f32 bias (the mixed op case) */
                    ok += check_one(&k_graphs[gi], acts[a], bias, DM_DTYPE_F16, DM_DTYPE_F32,
                                    DM_DTYPE_F32, nhwc, 0);
                    n++;
                }
            }
    printf("fused graphs finalized: %d of %d\n", ok, n);
    CHECK(ok == n);
    /* the check can fail: an output shape that contradicts the convolution is refused */
    CHECK(check_one(&k_graphs[0], DM_ACT_RELU, 1, DM_DTYPE_F32, DM_DTYPE_F32, DM_DTYPE_F32, 0, 1));
    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
#else
int main(void) {
    printf("\n*** SKIPPED: test_conv_fused_graph needs a build with CUDA (cuDNN) ***\n\n");
    return 77;
}
#endif
