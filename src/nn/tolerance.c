/* Acceptance tolerances of a backend against the CPU reference (include/depthmatte/tolerance.h).
 * Every number used by `depthmatte selftest` is here, with its derivation.
 *
 * Notation: u = unit roundoff of the precision (half an ulp at 1): u32 = 2^-24, u16 = 2^-11
 * (IEEE binary16, 11-bit significand), ubf = 2^-8 (bfloat16, 8-bit significand). m = max|ref|
 * of the op's output tensor, k = accumulation length (terms summed into one output element).
 *
 * 1. Ops in float32. Both sides compute the same exact function of identical f32 inputs; they
 *    differ only by rounding: summation order (OpenBLAS blocking vs cuBLASLt/cuDNN tiling,
 *    split-K, tree reductions), FMA contraction on the GPU, and the last bits of expf / erff /
 *    tanhf (CUDA's are within 2 ulp, glibc's within 1; the CPU attention uses libmvec's vector
 *    expf, <= 4 ulp).
 *    Sums: treating the rounding errors of a length-k sum as independent, zero-mean, each at
 *    most u times a partial sum (Higham & Mary, "A new approach to probabilistic rounding error
 *    analysis", SIAM J. Sci. Comput. 41(5), 2019), one side's error has a standard deviation of
 *    about u * sqrt(k) * max|partial sum|, and the partial sums of the models' (random-sign)
 *    terms stay within the output's scale m. The difference of two sides: sqrt(2) times that;
 *    a 6-sigma tail covers the ~10^6 elements a selftest compares: 6 * sqrt(2) = 8.5, doubled
 *    for safety -> 16 * sqrt(k) * u32 * m.
 *    Functions: a few ulp of each element, composed at most ~3 deep (GELU = x * Phi(x), the
 *    softmax's exp then division, layernorm's rsqrt), plus cancellation in (x - mean) of
 *    inputs offset by up to 10x their spread (layernorm test with mean 20, guided filter's
 *    mean_xx - mean_x^2 with variance >= 0.02 of values near 1): 64 * u32 * m (3.8e-6 m).
 *    tol_f32 = (16 sqrt(k) + 64) * u32 * m: k = 384 (ViT-S qkv) -> 2.2e-5 m, k = 1536 (MLP fc2)
 *    -> 4.1e-5 m, k = 1 -> 4.8e-6 m. A wrong index, a dropped term or a wrong activation moves
 *    an element by O(m / sqrt(k)) or more, far above that; TF32 sneaking in (inputs rounded to
 *    10 bits, error ~2^-11 * |y|) exceeds it for k < ~1000.
 * 2. Ops in float16 / bfloat16. Inputs are rounded to the precision before both sides see them,
 *    the backend accumulates in f32 and rounds its output to the precision: once at the store,
 *    once more where an epilogue (bias / activation) reads an intermediate it stored (cuDNN's
 *    conv output), i.e. at most 2 roundings of <= u * |y| each; doubled for safety ->
 *    4 * u * m, plus the f32 term above for the accumulation (4.9e-4 m for f16 at k = 1:
 *    4 * 2^-11; 1.6e-2 m for bf16). The emulated backend rounds each op's output once.
 * 3. Networks (max and mean |backend - cpu| over the output tensor; std = standard deviation,
 *    rms = root mean square of the CPU output):
 *    - float32: DA-V2 / VDA max <= 1e-4 std; RVM fgr/pha max <= 1e-4 absolute. These are the
 *      golden tests' tolerances for our CPU code against PyTorch (tests/da2/test_da2_golden.c,
 *      tests/vda/test_vda_window.c, tests/rvm/test_rvm_golden.c), whose own f32 noise is
 *      <= 1.1e-5 std (DA-V2), 4.6e-6 std (VDA), 1.4e-5 abs (RVM): a correct f32 backend is
 *      another summation order of the same kind and must stay inside them too.
 *    - float16 / bfloat16: the larger of two bounds, each a floor for a correct device:
 *      (a) max 32 u rms, mean 4 u rms (rms of the reference). Rounding a value y to the
 *      precision errs by up to u |y| (mean ~u |y| / 2): it scales with the values' magnitude,
 *      not their spread - VDA's depth sits at 5.5 +- 0.95, so the final f16 store alone costs
 *      ~1e-3 std mean - and 100+ ops each rounding their output compound it. Measured on the
 *      emulated backend with the selftest's networks (recipe weights, tiny inputs; 2026-12-01,
 *      LayerScale folded at load): mean 0.8-2.0 u rms, max 4.3-14.5 u rms for RVM fgr/pha,
 *      DA-V2 and VDA, f16 and bf16 alike (errors scale with u as they should); in units of std:
 *      f16 VDA mean 2.9e-3 std, max 1.6e-2 std; bf16 max up to 0.15 std. 32 / 4 u rms is
 *      2.2-7x (max) and 2-5x (mean) that (tightest: RVM pha bf16 max 14.5 u rms, DA-V2 bf16
 *      mean 2.0 u rms; before the folding DA-V2 bf16 reached 15.2 / 2.4 u rms).
 *      (b) section 4's bounds in units of std, derived from the official PyTorch code's own
 *      error in that precision on the golden inputs (real frames, RVM's trained weights).
 *      (a) alone is too tight for real data: RVM pha on the golden frames (rms = 1.06 std)
 *      errs by 3.0e-2 std in emulated f16 (58 u rms; the official model.half() 5.8e-2 std), so
 *      runtime.verify with (a) alone would stop a correct f16 matting job on its first frame.
 *      (b) alone is too tight where outputs sit far from zero (the selftest's VDA: mean
 *      2.9e-3 std > 1e-3 std). So: max <= max(32 u rms, B_max std), mean <= max(4 u rms,
 *      B_mean std). In bf16 a wrong op that moves a few output elements by less than these
 *      bounds passes the network rows (the mean bound still sees a wrong op that moves many);
 *      the op rows and the float32 run (1e-4 std) are the strict checks of op correctness, the
 *      f16/bf16 runs check the reduced-precision paths. The emulated backend with one op
 *      perturbed (5 % of its largest magnitude on every third element) is caught by every
 *      network using that op in float32 and float16 (tests/selftest, test_tol_lowp).
 * 4. Reduced precision against the golden tensors (issue 10's open decision, settled with the
 *    measurements of benchmarks/precision, benchmarks/RESULTS.md "Reduced precision"). Issue
 *    10 asked for max <= 1e-2 std and mean <= 1e-3 std. The official PyTorch code, run on the
 *    goldens' inputs in its own reduced-precision mode (RVM: model.to(dtype), the official
 *    inference.py `dtype`; VDA: torch.autocast, infer_video_depth(fp32=False), its
 *    output_conv2 in float32 as on a GPU; DA-V2 has none: autocast as VDA, same encoder and
 *    head), errs against the float32 golden by E (largest over the golden's tensors, max and
 *    mean separately; table below, benchmarks/precision/derive_bounds.py). Rule: where
 *    E <= the bound, the bound stays; where the official code itself exceeds
 *    it, the bound is 2 E (rounded up to 2 digits): the official error is one sample of the
 *    rounding noise of one valid placement of roundings; another valid placement (fused
 *    epilogues rounding once or twice, another summation order, f16 vs f32 storage of an
 *    intermediate) is another sample of the same size, and 2x covers the spread between
 *    implementations. Never "whatever we measured": ours is listed beside it as the check.
 *
 *    E (official, mode), B (bound), ours (emulated backend, for comparison), all "max / mean"
 *    in units of std(golden):
 *      RVM MobileNetV3, DGF + no refiner (sequence, sequence_noDGF), official model.to(dtype):
 *        f16   E 5.77e-2 / 2.10e-3   B 0.12 / 4.3e-3     ours 2.64e-2 / 1.59e-3
 *        bf16  E 0.261 / 1.84e-2     B 0.53 / 3.7e-2     ours 0.316 / 1.41e-2
 *      RVM MobileNetV3, fast guided filter (sequence_fgf), official model.to(dtype):
 *        f16   E 2.45 / 6.16e-3      B 4.9 / 1.3e-2      ours 0.401 / 5.10e-3
 *        bf16  E 6.08 / 0.385        B 13 / 0.77         ours 6.53 / 0.127
 *      RVM ResNet50, frame 0 (rvm_r50 sequence, sequence_noDGF), official model.to(dtype):
 *        f16   E 3.44e-2 / 2.07e-3   B 6.9e-2 / 4.2e-3   ours 2.69e-2 / 2.00e-3
 *        bf16  E 0.295 / 2.55e-2     B 0.59 / 5.2e-2     ours 0.235 / 1.84e-2
 *      DA-V2 Small (case_square, case_wide), official under torch.autocast:
 *        f16   E 1.32e-2 / 2.00e-3   B 2.7e-2 / 4.0e-3   ours 1.44e-2 / 2.10e-3
 *        bf16  E 0.114 / 1.37e-2     B 0.23 / 2.8e-2     ours 8.26e-2 / 1.35e-2
 *      VDA Small (window, video), official under torch.autocast:
 *        f16   E 7.13e-3 / 9.52e-4   B 1e-2 / 1e-3 (the issue's)   ours 7.19e-3 / 9.36e-4
 *        bf16  E 6.95e-2 / 9.51e-3   B 0.14 / 2.0e-2     ours 5.79e-2 / 7.93e-3
 *      VDA Small streaming mode (stream golden, infer_video_depth_one of the official
 *      video_depth_stream.py under torch.autocast; worst of frame 0, 1-10, 11-39, all):
 *        f16   E 9.18e-3 / 1.43e-3   B 1e-2 (the issue's) / 2.9e-3   ours 9.23e-3 / 1.43e-3
 *        bf16  E 6.94e-2 / 1.08e-2   B 0.14 / 2.2e-2     ours 9.52e-2 / 1.14e-2
 *      (the official stream misses the mean bound itself, frame 0 worst: a single
 *      frame's attention over one token set; our f16 equals it on the mean)
 *    DM_TOL_RVM (the pipeline's RVM, either backbone; the MobileNetV3 golden test) is the
 *    larger of MobileNetV3 and ResNet50.
 *    "ours": the golden tests on the emulated backend (tensors stored as on CUDA, residual
 *    streams in f32: dm_backend_residual_dtype), window for VDA, 2026-12-02.
 *    VDA f16 met the mean bound only once the device kept its residual streams in f32
 *    (as autocast does): with every activation stored in f16 ours was 8.20e-3 / 1.12e-3 std,
 *    equal to the official model.half() within 3 %, failing 1e-3; the ViT token stream in f32
 *    brought 1.0e-3, the motion modules' hidden states and pe in f32 the rest (9.4e-4).
 *    The FGF refiner is ill-conditioned in reduced
 *    precision (var = box(x^2) - box(x)^2 + 1e-5 from rounded box means): its max bound is
 *    vacuous, the mean bound bites.
 */
#include <math.h>

#include "depthmatte/tolerance.h"

#define TOL_F32_SQRT_K 16.0   /* section 1: 6-sigma tail of the sum of two sides, x2 */
#define TOL_F32_FN 64.0       /* section 1: functions and cancellation, in u32 units */
#define TOL_LOW_ROUNDINGS 4.0 /* section 2: 2 output roundings, x2 */
#define TOL_NET_F32_STD 1e-4  /* section 3 */
#define TOL_NET_RVM_F32_ABS 1e-4
#define TOL_NET_LOW_MAX_RMS_U 32.0 /* section 3 (a), in units of u * rms */
#define TOL_NET_LOW_MEAN_RMS_U 4.0

/* Section 4: {max, mean} in units of std(reference); [model][0] float16, [model][1] bfloat16. */
static const double TOL_LOWP_STD[DM_TOL_MODEL_COUNT][2][2] = {
    [DM_TOL_RVM] = {{0.12, 4.3e-3}, {0.59, 5.2e-2}}, /* max of MobileNetV3 and ResNet50 */
    [DM_TOL_DA2] = {{2.7e-2, 4.0e-3}, {0.23, 2.8e-2}},
    [DM_TOL_VDA] = {{1e-2, 1e-3}, {0.14, 2.0e-2}}, /* f16: the (official meets it) */
    [DM_TOL_RVM_FGF] = {{4.9, 1.3e-2}, {13.0, 0.77}},
    [DM_TOL_RVM_R50] = {{6.9e-2, 4.2e-3}, {0.59, 5.2e-2}},
    /* official stream (autocast) f16 9.18e-3 / 1.43e-3: max the issue's, mean 2 E */
    [DM_TOL_VDA_STREAM] = {{1e-2, 2.9e-3}, {0.14, 2.2e-2}},
};

void dm_tol_lowp_std(dm_dtype precision, dm_tol_model model, double *max_std, double *mean_std) {
    const int p = precision == DM_DTYPE_F16 ? 0 : precision == DM_DTYPE_BF16 ? 1 : -1;
    if (p < 0 || (int)model < 0 || model >= DM_TOL_MODEL_COUNT) {
        *max_std = *mean_std = -1;
        return;
    }
    *max_std = TOL_LOWP_STD[model][p][0];
    *mean_std = TOL_LOWP_STD[model][p][1];
}

double dm_unit_roundoff(dm_dtype precision) {
    switch (precision) {
    case DM_DTYPE_F32:
        return 0x1p-24;
    case DM_DTYPE_F16:
        return 0x1p-11;
    case DM_DTYPE_BF16:
        return 0x1p-8;
    default:
        return 0;
    }
}

double dm_tol_op(dm_dtype precision, int64_t k, double ref_max_abs) {
    const double m = ref_max_abs > 0 ? ref_max_abs : 1.0;
    const double kk = k < 1 ? 1.0 : (double)k;
    double tol = (TOL_F32_SQRT_K * sqrt(kk) + TOL_F32_FN) * 0x1p-24 * m;
    if (precision == DM_DTYPE_F16 || precision == DM_DTYPE_BF16)
        tol += TOL_LOW_ROUNDINGS * dm_unit_roundoff(precision) * m;
    return tol;
}

void dm_tol_network(dm_dtype precision, dm_tol_model model, double ref_std, double ref_rms,
                    double *max_tol, double *mean_tol) {
    if (precision == DM_DTYPE_F16 || precision == DM_DTYPE_BF16) {
        const double u = dm_unit_roundoff(precision);
        double max_std, mean_std;
        dm_tol_lowp_std(precision, model, &max_std, &mean_std);
        *max_tol = fmax(TOL_NET_LOW_MAX_RMS_U * u * ref_rms, max_std * ref_std);
        *mean_tol = fmax(TOL_NET_LOW_MEAN_RMS_U * u * ref_rms, mean_std * ref_std);
        return;
    }
    const int rvm = model == DM_TOL_RVM || model == DM_TOL_RVM_FGF || model == DM_TOL_RVM_R50;
    *max_tol = rvm ? TOL_NET_RVM_F32_ABS : TOL_NET_F32_STD * ref_std;
    *mean_tol = -1;
}
