/* depthmatte — acceptance tolerances of a backend against the CPU reference, per precision.
 *
 * The one place where these numbers live (src/nn/tolerance.c holds the derivation); used by
 * `depthmatte selftest` (include/depthmatte/selftest.h) and meant for runtime.verify.
 *
 * Ops: a backend op is compared with the CPU op on identical inputs (already rounded to the
 * precision). The bound is absolute, scaled by max|reference| of the output tensor, and grows
 * with the op's accumulation length k (terms summed per output element: Cin/groups*kh*kw for a
 * convolution, K for a linear, D + Tk for attention, C for a norm, 1 for elementwise ops).
 *
 * Networks: the backend's model output is compared with the CPU backend's output of the same
 * model and weights; bounds are relative to the reference output's standard deviation (RVM
 * float32: absolute, its outputs live in [0, 1]), as ../shared/golden/README.md section 5.
 */
#ifndef DEPTHMATTE_TOLERANCE_H
#define DEPTHMATTE_TOLERANCE_H

#include <stdint.h>

#include "depthmatte/tensor.h"

/* Unit roundoff u of a compute precision: 2^-24 (f32), 2^-11 (f16), 2^-8 (bf16); 0 for another
 * dtype. */
double dm_unit_roundoff(dm_dtype precision);

/* Absolute tolerance of one op output element: |backend - cpu| <= dm_tol_op(p, k, m) with
 * m = max|reference| of the output tensor (m = 0 is treated as 1), k >= 1 the accumulation
 * length (values < 1 count as 1). */
double dm_tol_op(dm_dtype precision, int64_t k, double ref_max_abs);

/* The networks whose tolerances are defined. */
typedef enum dm_tol_model {
    DM_TOL_RVM = 0, /* RVM (pipeline: MobileNetV3 or ResNet50, deep guided filter): fgr, pha */
    DM_TOL_DA2,     /* Depth Anything V2 Small: relative depth */
    DM_TOL_VDA,     /* Video Depth Anything Small: raw window depth (before alignment) */
    DM_TOL_RVM_FGF, /* RVM MobileNetV3 with the fast guided filter refiner (golden tests only) */
    DM_TOL_RVM_R50, /* RVM ResNet50 alone (golden tests only) */
    DM_TOL_VDA_STREAM, /* Video Depth Anything Small, streaming mode: per-frame depth */
    DM_TOL_MODEL_COUNT
} dm_tol_model;

/* Reduced-precision bound of a network against a float32 reference of the same input, in units
 * of the reference's standard deviation: max |x - ref| <= *max_std * std(ref) and
 * mean |x - ref| <= *mean_std * std(ref). Issue 10's bound (1e-2, 1e-3) where the official
 * PyTorch code in that precision meets it, else 2x the official code's own error on the golden
 * inputs (table and derivation: src/nn/tolerance.c section 4, figures: benchmarks/RESULTS.md
 * "Reduced precision"). DM_TOL_RVM is the larger of MobileNetV3 and ResNet50. For float32 or an
 * unknown model both are set to -1 (no such bound). The golden tests' rule for f16/bf16
 * (tests/common/golden_backend.h). */
void dm_tol_lowp_std(dm_dtype precision, dm_tol_model model, double *max_std, double *mean_std);

/* Network output bounds: max |backend - cpu| <= *max_tol and mean |backend - cpu| <= *mean_tol
 * (*mean_tol < 0: no separate mean criterion). ref_std, ref_rms = standard deviation and root
 * mean square of the CPU backend's output tensor (ignored where the bound is absolute).
 * float32: 1e-4 std (RVM: 1e-4 absolute); float16 / bfloat16: the larger of (max 32 u rms,
 * mean 4 u rms), u = dm_unit_roundoff, and dm_tol_lowp_std's bounds times ref_std
 * (derivation and measurements in src/nn/tolerance.c sections 3 and 4). */
void dm_tol_network(dm_dtype precision, dm_tol_model model, double ref_std, double ref_rms,
                    double *max_tol, double *mean_tol);

#endif
