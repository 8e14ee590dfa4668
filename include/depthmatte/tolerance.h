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
    DM_TOL_RVM = 0, /* RVM MobileNetV3: fgr, pha in [0, 1] */
    DM_TOL_DA2,     /* Depth Anything V2 Small: relative depth */
    DM_TOL_VDA,     /* Video Depth Anything Small: raw window depth (before alignment) */
} dm_tol_model;

/* Network output bounds: max |backend - cpu| <= *max_tol and mean |backend - cpu| <= *mean_tol
 * (*mean_tol < 0: no separate mean criterion). ref_std, ref_rms = standard deviation and root
 * mean square of the CPU backend's output tensor (ignored where the bound is absolute).
 * float32: 1e-4 std (RVM: 1e-4 absolute); float16 / bfloat16: max 32 u rms, mean 4 u rms,
 * u = dm_unit_roundoff (derivation and measurements in src/nn/tolerance.c). */
void dm_tol_network(dm_dtype precision, dm_tol_model model, double ref_std, double ref_rms,
                    double *max_tol, double *mean_tol);

#endif
