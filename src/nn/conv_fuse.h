/* Fused convolution epilogues of the CUDA backend (src/nn/cuda/conv_fused.c, cuDNN 9 graph API):
 * the pure parts, built in every configuration so that a CPU unit test checks them
 * (tests/nn/test_conv_fuse.c):
 *   - which conv2d calls are eligible for a fused conv -> bias -> activation graph;
 *   - the pointwise chain that expresses each activation (cuDNN pointwise modes + by-value
 *     scalars), with a host evaluator of that chain under the documented per-op semantics, so
 *     that the decomposition (hardswish, hardsigmoid) is checked against the CPU reference;
 *   - the execution-plan cache: key (shapes, params, dtypes, layout, pointer alignments), hits,
 *     remembered declines ("no engine for this shape", asked once), ring eviction.
 * No cuDNN types here: modes are cuDNN's enum values, checked by _Static_assert in
 * conv_fused.c. Internal header (src/), not part of the public API. */
#ifndef DM_NN_CONV_FUSE_H
#define DM_NN_CONV_FUSE_H

#include <stddef.h>
#include <stdint.h>

#include "depthmatte/backend.h"

/* One pointwise step of an activation chain, applied to the running value v (f32 math):
 *   CONV_FUSE_ADD_SCALAR  v = v + s
 *   CONV_FUSE_CLIP        v = min(max(v, lo), hi)   (cuDNN RELU_FWD with lower/upper clip)
 *   CONV_FUSE_MUL_INPUT   v = t * v, t = the chain's input (conv + bias)
 *   CONV_FUSE_DIV_SCALAR  v = v / s                 (division, as the CPU op and PyTorch)
 *   CONV_FUSE_RELU / SIGMOID / TANH / GELU_ERF  the cuDNN activations of the same name
 *                         (GELU_FWD is the exact erf form, not GELU_APPROX_TANH_FWD) */
typedef enum conv_fuse_step_kind {
    CONV_FUSE_ADD_SCALAR = 1,
    CONV_FUSE_CLIP,
    CONV_FUSE_MUL_INPUT,
    CONV_FUSE_DIV_SCALAR,
    CONV_FUSE_RELU,
    CONV_FUSE_SIGMOID,
    CONV_FUSE_TANH,
    CONV_FUSE_GELU_ERF,
} conv_fuse_step_kind;

typedef struct conv_fuse_step {
    conv_fuse_step_kind kind;
    float s;      /* scalar of ADD_SCALAR / DIV_SCALAR */
    float lo, hi; /* CLIP bounds */
} conv_fuse_step;

#define CONV_FUSE_MAX_STEPS 4

/* The pointwise chain computing `act` after conv + bias, into steps[CONV_FUSE_MAX_STEPS].
 * Returns the number of steps (0 for DM_ACT_NONE: bias only), or -1 when cuDNN's pointwise
 * modes cannot express the CPU reference's function (then the epilogue kernel runs it).
 * hardsigmoid(t) = clip(t + 3, 0, 6) / 6; hardswish(t) = t * clip(t + 3, 0, 6) / 6, in the
 * CPU op's order (src/nn/cpu/elementwise.c: multiply, then divide by 6). */
int conv_fuse_act_chain(dm_act act, conv_fuse_step steps[CONV_FUSE_MAX_STEPS]);

/* Host model of the chain on one value t (f32): what the fused graph computes per element if
 * every cuDNN pointwise op follows its documented formula (IEEE f32, libm transcendental
 * functions, min/max as fminf/fmaxf). Used by the unit test against cpu_act. */
float conv_fuse_eval_chain(const conv_fuse_step *steps, int n, float t);

/* Why a conv2d call does or does not take the fused graph path. */
typedef enum conv_fuse_reason {
    CONV_FUSE_OK = 0,
    CONV_FUSE_DISABLED,  /* DM_CUDNN_FUSED=0 in the environment */
    CONV_FUSE_NOTHING,   /* no bias and no activation: a plain convolution */
    CONV_FUSE_ACT,       /* activation not expressible (conv_fuse_act_chain < 0) */
    CONV_FUSE_DTYPE,     /* a dtype other than f32 / f16 / bf16 */
    CONV_FUSE_CAPTURING, /* inside a CUDA Graph capture without a cached plan: building one
                          * (heuristics, runtime compilation) must not happen there */
} conv_fuse_reason;

/* Eligibility of one call: act, whether there is a bias, the compute dtype cd (x and w are in
 * cd), the bias and output dtypes, whether fusion is enabled (conv_fuse_enabled), whether a CUDA
 * Graph capture is in progress and whether a plan for the call's key is already cached. */
conv_fuse_reason conv_fuse_eligible(dm_act act, int has_bias, dm_dtype cd, dm_dtype bt, dm_dtype yt,
                                    int enabled, int capturing, int cached);

/* 0 when the environment value of DM_CUDNN_FUSED (NULL: unset) turns fusion off ("0", "off",
 * "no", "false"), else 1. */
int conv_fuse_enabled(const char *env);

/* Largest power of two <= 16 dividing the address (cuDNN's CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT;
 * 16 for NULL, which only an absent bias has). */
int conv_fuse_alignment(const void *p);

/* Plan-cache key of one fused convolution: every field the graph depends on. */
#define CONV_FUSE_KEY_LEN 24
typedef struct conv_fuse_key {
    int v[CONV_FUSE_KEY_LEN]; /* v[0] = 1 marks a used key */
} conv_fuse_key;

/* Key from x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw), the conv params (incl. act), the
 * dtypes (compute, bias or -1 for no bias, output), the layout (0 NCHW, 1 NHWC) and the
 * alignments (bytes) of the x, w, bias and y pointers. */
conv_fuse_key conv_fuse_key_make(int N, int Cin, int H, int W, int Cout, int kh, int kw,
                                 const dm_conv2d_params *p, dm_dtype cd, int bt, dm_dtype yt,
                                 int nhwc, int ax, int aw, int ab, int ay);

/* One cache entry: a finalized plan (opaque: the cuDNN execution plan descriptor) with its
 * workspace, or a remembered decline (plan NULL, declined 1). */
typedef struct conv_fuse_entry {
    conv_fuse_key key;
    void *plan;
    size_t workspace; /* bytes */
    int declined;
} conv_fuse_entry;

/* Ring size: 256 keys, above the convolution shapes of RVM, DA-V2 and VDA together (about 100
 * per input size and precision). Evicted plans are not destroyed at once (conv_fused.c keeps
 * them until the backend is destroyed: a CUDA Graph captured with one may still replay it). */
#define CONV_FUSE_CACHE 256

typedef struct conv_fuse_cache {
    conv_fuse_entry e[CONV_FUSE_CACHE];
    int next;            /* ring position of the next insertion */
    long long plans;     /* plans built (statistics, dm_cuda_conv_fused_stats) */
    long long declined;  /* keys declined (no engine / build failure), each once */
    long long runs;      /* convolutions executed fused */
    long long fallbacks; /* calls that took the unfused path for a declined key */
} conv_fuse_cache;

/* The entry of `key`, or NULL. */
conv_fuse_entry *conv_fuse_cache_find(conv_fuse_cache *c, const conv_fuse_key *key);

/* Stores (key, plan, workspace, declined) in the ring slot `next` and returns it; the plan of an
 * entry it replaces is returned in *evicted (NULL if none) for the caller to dispose of. */
conv_fuse_entry *conv_fuse_cache_put(conv_fuse_cache *c, const conv_fuse_key *key, void *plan,
                                     size_t workspace, int declined, void **evicted);

#endif
