/* Fused conv2d epilogues through cuDNN 9's backend (graph) API, from C:
 *   X (N, Cin, H, W), W (Cout, Cin/g, kh, kw) -> CONVOLUTION_FORWARD -> T (virtual, f32)
 *   -> POINTWISE ADD bias (1, Cout, 1, 1) -> the activation's pointwise chain
 *   (conv_fuse_act_chain: RELU_FWD / SIGMOID_FWD / TANH_FWD / GELU_FWD (erf), hardswish and
 *   hardsigmoid as ADD 3 -> RELU_FWD clipped to [0, 6] -> (MUL t) -> DIV 6 with by-value f32
 *   scalars) -> Y in y's dtype.
 * x and w in the compute dtype cd (f32 / f16 / bf16), every intermediate f32, math precision
 * f32 (CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_ATTR_CONVOLUTION_COMP_TYPE). Groups follow from
 * the tensors (x's C / w's C), as the backend API defines them. Layout: the strides of the
 * tensors as they are (NCHW, the engine layout; NHWC on the conv path that permutes into NHWC
 * scratch, conv_cudnn.c). Engine configs from CUDNN_HEUR_MODE_A, then CUDNN_HEUR_MODE_FALLBACK;
 * f32 rejects configs whose engine notes say TENSOR_CORE (TF32), DOWN_CONVERT_INPUTS or
 * REDUCED_PRECISION_REDUCTION (strict float32, as the legacy path's CUDNN_FMA_MATH); f16/bf16
 * reject REDUCED_PRECISION_REDUCTION (f32 accumulation); deterministic engines with the
 * STRICT_NAN_PROP note first, then deterministic ones, then any; pointwise ops ask for
 * CUDNN_PROPAGATE_NAN (deprecated attribute, not fatal if refused). The first
 * config that finalizes is the plan, cached per key (conv_fuse_key: shapes, params, dtypes,
 * layout, pointer alignments) with all its descriptors; a key for which nothing finalizes, or
 * whose execution fails, is remembered as declined and takes the unfused path from then on
 * (asked once per key, never a hard error). DM_CUDNN_FUSED=0 turns fusion off (read once per
 * backend). A plan keeps the variant pack of its last pointer set and reuses it while the
 * pointers stay. The descriptors and the graph finalize on the host without a device
 * (tests/gpu/test_conv_fused_graph.c); engine choice and execution need a GPU. Built against
 * cuDNN 9.19 headers; NOT YET RUN ON A GPU (docs/gpu.md). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_common.h"
#include "depthmatte/backend_cuda.h"
#include "nn/conv_fuse.h"

#define MAX_DESCS 48
#define MAX_SCALARS 2
#define FUSED_VP 8 /* variant packs kept per plan (layers of one shape with their own buffers) */
#define MAX_CFGS 8

enum { UID_X = 1, UID_W = 2, UID_B = 3, UID_Y = 4, UID_VIRT = 10, UID_SCALAR = 20 };

/* A finalized plan and every descriptor it was built from (kept alive with it). */
typedef struct fused_plan {
    cudnnBackendDescriptor_t d[MAX_DESCS];
    int nd;
    cudnnBackendDescriptor_t plan;
    float scalar[MAX_SCALARS]; /* by-value scalars: the variant pack points at these */
    int nscalar;
    int has_bias;
    const char *fail;               /* the cuDNN call that failed while building (decline reason) */
    /* Variant packs of the last FUSED_VP pointer sets (NULL: none), reused while a call's
     * pointers match one: several layers of one shape (the DPT head's residual conv units)
     * share a plan with their own weights and buffers, so one cached pack would be rebuilt
     * at every call of an eager frame loop. Replaced round-robin. */
    cudnnBackendDescriptor_t vp[FUSED_VP];
    void *vp_ptrs[FUSED_VP][4 + MAX_SCALARS]; /* their data pointers */
    void *vp_ws[FUSED_VP];                    /* their workspaces */
    int vp_next;
} fused_plan;

typedef struct cuda_fused {
    conv_fuse_cache cache;
    int enabled;            /* DM_CUDNN_FUSED at the backend's first convolution */
    char last_decline[320]; /* the latest declined key and why (dm_cuda_fused_stats) */
    double build_s;         /* seconds spent building plans (heuristics, finalize, compile) */
    /* plans evicted from the ring: kept until the backend is destroyed, because a CUDA Graph
     * captured earlier may still replay their kernels */
    fused_plan **retired;
    int nretired, cap_retired;
} cuda_fused;

static void plan_free(fused_plan *fp) {
    if (!fp) return;
    for (int i = 0; i < FUSED_VP; i++)
        if (fp->vp[i]) cudnnBackendDestroyDescriptor(fp->vp[i]);
    for (int i = fp->nd - 1; i >= 0; i--)
        cudnnBackendDestroyDescriptor(fp->d[i]);
    free(fp);
}

void cuda_conv_fused_free(cuda_ctx *ctx) {
    cuda_fused *f = ctx->fused;
    if (!f) return;
    for (int i = 0; i < CONV_FUSE_CACHE; i++)
        if (f->cache.e[i].key.v[0]) plan_free(f->cache.e[i].plan);
    for (int i = 0; i < f->nretired; i++)
        plan_free(f->retired[i]);
    free(f->retired);
    free(f);
    ctx->fused = NULL;
}

/* Keeps an evicted plan alive until destroy (freed at once only if the list cannot grow, which
 * leaves a captured graph that used it invalid: a host out-of-memory case). */
static void retire(cuda_fused *f, fused_plan *fp) {
    if (f->nretired == f->cap_retired) {
        const int cap = f->cap_retired ? 2 * f->cap_retired : 64;
        fused_plan **r = realloc(f->retired, (size_t)cap * sizeof *r);
        if (!r) {
            plan_free(fp);
            return;
        }
        f->retired = r;
        f->cap_retired = cap;
    }
    f->retired[f->nretired++] = fp;
}

static cuda_fused *fused_of(cuda_ctx *ctx) {
    if (!ctx->fused) {
        cuda_fused *f = calloc(1, sizeof *f);
        if (!f) return NULL;
        f->enabled = conv_fuse_enabled(getenv("DM_CUDNN_FUSED"));
        ctx->fused = f;
    }
    return ctx->fused;
}

/* ---- graph construction (every call returns the cuDNN status; the caller gives up on the
 * first failure) -------------------------------------------------------------------------- */

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        cudnnStatus_t s_ = (expr);                                                                 \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                          \
            if (!fp->fail) fp->fail = #expr; /* the innermost failing call */                      \
            return s_;                                                                             \
        }                                                                                          \
    } while (0)

static cudnnStatus_t mk(fused_plan *fp, cudnnBackendDescriptorType_t t,
                        cudnnBackendDescriptor_t *out) {
    if (fp->nd >= MAX_DESCS) return CUDNN_STATUS_NOT_SUPPORTED;
    TRY(cudnnBackendCreateDescriptor(t, out));
    fp->d[fp->nd++] = *out;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t set1(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a,
                          cudnnBackendAttributeType_t t, const void *v) {
    return cudnnBackendSetAttribute(d, a, t, 1, v);
}

/* 4-D tensor: dims in N, C, H, W order; strides NCHW or NHWC packed. */
static void strides_of(const int64_t d[4], int nhwc, int64_t s[4]) {
    if (nhwc) {
        s[1] = 1;
        s[3] = d[1];
        s[2] = d[3] * d[1];
        s[0] = d[2] * d[3] * d[1];
    } else {
        s[3] = 1;
        s[2] = d[3];
        s[1] = d[2] * d[3];
        s[0] = d[1] * d[2] * d[3];
    }
}

static cudnnStatus_t mk_tensor(fused_plan *fp, int64_t uid, cudnnDataType_t dt,
                               const int64_t dims[4], int nhwc, int64_t align, bool virt,
                               bool by_value, cudnnBackendDescriptor_t *out) {
    int64_t strides[4];
    strides_of(dims, nhwc, strides);
    if (by_value)
        for (int i = 0; i < 4; i++)
            strides[i] = 1;
    TRY(mk(fp, CUDNN_BACKEND_TENSOR_DESCRIPTOR, out));
    TRY(set1(*out, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &dt));
    TRY(cudnnBackendSetAttribute(*out, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
    TRY(cudnnBackendSetAttribute(*out, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
    TRY(set1(*out, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid));
    TRY(set1(*out, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &align));
    if (virt) TRY(set1(*out, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, &virt));
    if (by_value) TRY(set1(*out, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, &by_value));
    return cudnnBackendFinalize(*out);
}

/* Pointwise operation y = mode(x[, b]); clip: RELU_FWD's lower/upper clip. */
static cudnnStatus_t mk_pointwise(fused_plan *fp, cudnnPointwiseMode_t mode, const double *clip,
                                  cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                                  cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t *op) {
    cudnnBackendDescriptor_t pw;
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    TRY(mk(fp, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw));
    TRY(set1(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, &mode));
    TRY(set1(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, &prec));
    /* NaN propagates as in IEEE arithmetic (the CPU ops' rule). The attribute is deprecated
     * since cuDNN 9 (accepted by 9.19): a refusal is not fatal, the GPU NaN cases decide */
    const cudnnNanPropagation_t nanp = CUDNN_PROPAGATE_NAN;
    (void)set1(pw, CUDNN_ATTR_POINTWISE_NAN_PROPAGATION, CUDNN_TYPE_NAN_PROPOGATION, &nanp);
    if (clip) {
        TRY(set1(pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP, CUDNN_TYPE_DOUBLE, &clip[0]));
        TRY(set1(pw, CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_DOUBLE, &clip[1]));
    }
    TRY(cudnnBackendFinalize(pw));
    TRY(mk(fp, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op));
    TRY(set1(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR,
             &pw));
    TRY(set1(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &x));
    if (b) TRY(set1(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &b));
    TRY(set1(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &y));
    return cudnnBackendFinalize(*op);
}

/* The shapes and dtypes of one fused call. */
typedef struct fused_shape {
    int64_t x[4], w[4], y[4]; /* N, C, H, W order (w: K, C/g, R, S) */
    int64_t pad[2], stride[2], dil[2];
    cudnnDataType_t cd, bt, yt;
    int has_bias, nhwc;
    int64_t ax, aw, ab, ay; /* pointer alignments, bytes */
    dm_act act;
} fused_shape;

/* Engine config acceptable for dtype class f32 (strict) or reduced precision. Passes: 0 wants
 * a deterministic engine with the STRICT_NAN_PROP note (NaN through the pointwise chain as IEEE
 * arithmetic: the CPU op's rule), 1 a deterministic one, 2 any. */
static int cfg_ok(cudnnBackendDescriptor_t cfg, int f32, int pass) {
    cudnnBackendDescriptor_t eng;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng) != CUDNN_STATUS_SUCCESS)
        return 0;
    int64_t n = 0;
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    int ok =
        cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &n, &eng) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n,
                                 notes) == CUDNN_STATUS_SUCCESS;
    int strict_nan = 0;
    for (int64_t i = 0; ok && i < n && i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; i++) {
        const cudnnBackendNumericalNote_t m = notes[i];
        if (m == CUDNN_NUMERICAL_NOTE_STRICT_NAN_PROP) strict_nan = 1;
        if (m == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION ||
            (f32 && (m == CUDNN_NUMERICAL_NOTE_TENSOR_CORE ||
                     m == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)) ||
            (pass < 2 && m == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC))
            ok = 0;
    }
    cudnnBackendDestroyDescriptor(eng);
    return ok && (pass > 0 || strict_nan);
}

/* Builds and finalizes the operation graph of `s` into fp (*graph). h may be NULL: cuDNN 9.19
 * finalizes a graph without a handle (the attribute is deprecated) and without a device, which
 * the unit test uses; plans need both. */
static cudnnStatus_t build_graph(cudnnHandle_t h, const fused_shape *s, fused_plan *fp,
                                 cudnnBackendDescriptor_t *graph_out) {
    cudnnBackendDescriptor_t tx, tw, tb = NULL, tconv, ty, ops[8];
    int nops = 0, uid = UID_VIRT;
    const bool virt = true, real = false;
    conv_fuse_step steps[CONV_FUSE_MAX_STEPS];
    const int nsteps = conv_fuse_act_chain(s->act, steps);
    if (nsteps < 0) return CUDNN_STATUS_NOT_SUPPORTED;
    const int npw = (s->has_bias ? 1 : 0) + nsteps; /* pointwise ops after the convolution */
    TRY(mk_tensor(fp, UID_X, s->cd, s->x, s->nhwc, s->ax, real, false, &tx));
    TRY(mk_tensor(fp, UID_W, s->cd, s->w, s->nhwc, s->aw, real, false, &tw));
    TRY(mk_tensor(fp, UID_Y, s->yt, s->y, s->nhwc, s->ay, real, false, &ty));
    if (s->has_bias) {
        const int64_t bd[4] = {1, s->y[1], 1, 1};
        TRY(mk_tensor(fp, UID_B, s->bt, bd, s->nhwc, s->ab, real, false, &tb));
    }
    /* the convolution's output: a virtual f32 tensor (a bias or an activation always follows:
     * conv_fuse_eligible) */
    TRY(mk_tensor(fp, uid++, CUDNN_DATA_FLOAT, s->y, s->nhwc, 16, virt, false, &tconv));

    cudnnBackendDescriptor_t conv;
    const int64_t sdims = 2;
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    TRY(mk(fp, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv));
    TRY(set1(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &comp));
    TRY(set1(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode));
    TRY(set1(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &sdims));
    TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2,
                                 s->dil));
    TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2,
                                 s->stride));
    TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2,
                                 s->pad));
    TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2,
                                 s->pad));
    TRY(cudnnBackendFinalize(conv));
    const float alpha = 1.f, beta = 0.f;
    TRY(mk(fp, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &ops[nops]));
    TRY(set1(ops[nops], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR,
             &tx));
    TRY(set1(ops[nops], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR,
             &tw));
    TRY(set1(ops[nops], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR,
             &tconv));
    TRY(set1(ops[nops], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
             CUDNN_TYPE_BACKEND_DESCRIPTOR, &conv));
    TRY(set1(ops[nops], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, &alpha));
    TRY(set1(ops[nops], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, &beta));
    TRY(cudnnBackendFinalize(ops[nops]));
    nops++;

    /* pointwise chain: cur is the running value, t the chain's input (conv + bias) */
    int left = npw;
    cudnnBackendDescriptor_t cur = tconv, t;
#define NEXT_OUT(out)                                                                              \
    do {                                                                                           \
        if (--left == 0)                                                                           \
            (out) = ty;                                                                            \
        else                                                                                       \
            TRY(mk_tensor(fp, uid++, CUDNN_DATA_FLOAT, s->y, s->nhwc, 16, virt, false, &(out)));   \
    } while (0)
    if (s->has_bias) {
        cudnnBackendDescriptor_t out;
        NEXT_OUT(out);
        TRY(mk_pointwise(fp, CUDNN_POINTWISE_ADD, NULL, cur, tb, out, &ops[nops++]));
        cur = out;
    }
    t = cur;
    for (int i = 0; i < nsteps; i++) {
        cudnnBackendDescriptor_t out, sc = NULL;
        const double clip[2] = {steps[i].lo, steps[i].hi};
        NEXT_OUT(out);
        if (steps[i].kind == CONV_FUSE_ADD_SCALAR || steps[i].kind == CONV_FUSE_DIV_SCALAR) {
            if (fp->nscalar >= MAX_SCALARS) return CUDNN_STATUS_NOT_SUPPORTED;
            const int64_t one[4] = {1, 1, 1, 1};
            fp->scalar[fp->nscalar] = steps[i].s;
            TRY(mk_tensor(fp, UID_SCALAR + fp->nscalar, CUDNN_DATA_FLOAT, one, 0, 16, false, true,
                          &sc));
            fp->nscalar++;
        }
        cudnnBackendDescriptor_t *op = &ops[nops++];
        switch (steps[i].kind) {
        case CONV_FUSE_ADD_SCALAR:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_ADD, NULL, cur, sc, out, op));
            break;
        case CONV_FUSE_DIV_SCALAR:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_DIV, NULL, cur, sc, out, op));
            break;
        case CONV_FUSE_CLIP:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_RELU_FWD, clip, cur, NULL, out, op));
            break;
        case CONV_FUSE_MUL_INPUT:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_MUL, NULL, t, cur, out, op));
            break;
        case CONV_FUSE_RELU:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_RELU_FWD, NULL, cur, NULL, out, op));
            break;
        case CONV_FUSE_SIGMOID:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_SIGMOID_FWD, NULL, cur, NULL, out, op));
            break;
        case CONV_FUSE_TANH:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_TANH_FWD, NULL, cur, NULL, out, op));
            break;
        case CONV_FUSE_GELU_ERF:
            TRY(mk_pointwise(fp, CUDNN_POINTWISE_GELU_FWD, NULL, cur, NULL, out, op));
            break;
        }
        cur = out;
    }
#undef NEXT_OUT
    if (cur != ty) return CUDNN_STATUS_NOT_SUPPORTED; /* nothing after the conv: not fused */

    cudnnBackendDescriptor_t graph;
    TRY(mk(fp, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
    TRY(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops));
    if (h) TRY(set1(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, &h));
    TRY(cudnnBackendFinalize(graph));
    *graph_out = graph;
    return CUDNN_STATUS_SUCCESS;
}

/* Builds the graph of `s` and finalizes the first acceptable engine config into fp->plan;
 * *ws = its workspace. Returns the first failing cuDNN status (fp->fail names the call). */
static cudnnStatus_t build_plan(cudnnHandle_t h, const fused_shape *s, fused_plan *fp, size_t *ws) {
    cudnnBackendDescriptor_t graph;
    TRY(build_graph(h, s, fp, &graph));
    const int f32 = s->cd == CUDNN_DATA_FLOAT;
    const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    /* heuristic, engine-config and rejected plan descriptors are temporary (destroyed here);
     * the chosen config and its plan join fp's list */
    for (int pass = 0; pass < 3; pass++) /* strict-NaN deterministic, deterministic, any */
        for (int mi = 0; mi < 2; mi++) {
            cudnnBackendDescriptor_t heur = NULL, cfg[MAX_CFGS] = {NULL};
            int64_t n = 0;
            int ncfg = 0, chosen = -1;
            if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur) !=
                CUDNN_STATUS_SUCCESS)
                return CUDNN_STATUS_ALLOC_FAILED;
            if (set1(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                     &graph) == CUDNN_STATUS_SUCCESS &&
                set1(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &modes[mi]) ==
                    CUDNN_STATUS_SUCCESS &&
                cudnnBackendFinalize(heur) == CUDNN_STATUS_SUCCESS) {
                while (ncfg < MAX_CFGS &&
                       cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR,
                                                    &cfg[ncfg]) == CUDNN_STATUS_SUCCESS)
                    ncfg++;
                if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, ncfg, &n,
                                             cfg) != CUDNN_STATUS_SUCCESS)
                    n = 0;
            }
            for (int64_t i = 0; chosen < 0 && i < n && i < ncfg; i++) {
                if (!cfg_ok(cfg[i], f32, pass)) continue;
                cudnnBackendDescriptor_t plan;
                if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) !=
                    CUDNN_STATUS_SUCCESS)
                    break;
                int64_t w = 0, nw = 0;
                if (set1(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, &h) ==
                        CUDNN_STATUS_SUCCESS &&
                    set1(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                         CUDNN_TYPE_BACKEND_DESCRIPTOR, &cfg[i]) == CUDNN_STATUS_SUCCESS &&
                    (last = cudnnBackendFinalize(plan)) == CUDNN_STATUS_SUCCESS &&
                    cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                             CUDNN_TYPE_INT64, 1, &nw,
                                             &w) == CUDNN_STATUS_SUCCESS &&
                    w >= 0 && fp->nd + 2 <= MAX_DESCS) {
                    chosen = (int)i;
                    fp->d[fp->nd++] = cfg[i];
                    fp->d[fp->nd++] = plan;
                    fp->plan = plan;
                    fp->has_bias = s->has_bias;
                    *ws = (size_t)w;
                } else {
                    cudnnBackendDestroyDescriptor(plan);
                }
            }
            for (int i = 0; i < ncfg; i++)
                if (i != chosen) cudnnBackendDestroyDescriptor(cfg[i]);
            cudnnBackendDestroyDescriptor(heur);
            if (chosen >= 0) return CUDNN_STATUS_SUCCESS;
        }
    if (!fp->fail) fp->fail = "no engine config of CUDNN_HEUR_MODE_A / FALLBACK finalized";
    return last == CUDNN_STATUS_SUCCESS ? CUDNN_STATUS_NOT_SUPPORTED : last;
}
#undef TRY

static cudnnDataType_t dt_of(dm_dtype t) {
    return t == DM_DTYPE_F16 ? CUDNN_DATA_HALF
                             : (t == DM_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT);
}

/* Runs plan fp on the pointers; cuDNN status of the first failing call. The variant packs of
 * the last FUSED_VP pointer sets are kept with the plan and reused while the pointers match (a
 * model's buffers are sized once per context), so the steady-state frame loop creates no
 * descriptor, also where several layers share one plan. */
static cudnnStatus_t execute(cuda_ctx *ctx, fused_plan *fp, const void *x, const void *w,
                             const void *b, void *y, void *ws) {
    void *ptrs[4 + MAX_SCALARS];
    int64_t uids[4 + MAX_SCALARS];
    int n = 0;
    uids[n] = UID_X, ptrs[n++] = (void *)x;
    uids[n] = UID_W, ptrs[n++] = (void *)w;
    uids[n] = UID_Y, ptrs[n++] = y;
    if (fp->has_bias) uids[n] = UID_B, ptrs[n++] = (void *)b;
    for (int i = 0; i < fp->nscalar; i++) /* by-value scalars: host pointers */
        uids[n] = UID_SCALAR + i, ptrs[n++] = (void *)&fp->scalar[i];
    for (int i = 0; i < FUSED_VP; i++)
        if (fp->vp[i] && fp->vp_ws[i] == ws &&
            !memcmp(fp->vp_ptrs[i], ptrs, (size_t)n * sizeof ptrs[0]))
            return cudnnBackendExecute(ctx->cudnn, fp->plan, fp->vp[i]);
    const int k = fp->vp_next;
    if (fp->vp[k]) cudnnBackendDestroyDescriptor(fp->vp[k]);
    fp->vp[k] = NULL;
    cudnnBackendDescriptor_t vp;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if ((s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n,
                                      uids)) != CUDNN_STATUS_SUCCESS ||
        (s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                      CUDNN_TYPE_VOID_PTR, n, ptrs)) != CUDNN_STATUS_SUCCESS ||
        (s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1,
                                      &ws)) != CUDNN_STATUS_SUCCESS ||
        (s = cudnnBackendFinalize(vp)) != CUDNN_STATUS_SUCCESS) {
        cudnnBackendDestroyDescriptor(vp);
        return s;
    }
    fp->vp[k] = vp;
    memcpy(fp->vp_ptrs[k], ptrs, (size_t)n * sizeof ptrs[0]);
    fp->vp_ws[k] = ws;
    fp->vp_next = (k + 1) % FUSED_VP;
    return cudnnBackendExecute(ctx->cudnn, fp->plan, vp);
}

int cuda_conv_fused_enabled(cuda_ctx *ctx) {
    cuda_fused *f = fused_of(ctx);
    return f && f->enabled;
}

dm_status cuda_conv_fused(cuda_ctx *ctx, const void *x, const void *w, const dm_tensor *b, void *y,
                          dm_dtype yt, dm_dtype cd, const int xs[4], const int ws4[4],
                          const int ys[4], const dm_conv2d_params *p, int nhwc, int *done) {
    *done = 0;
    cuda_fused *f = fused_of(ctx);
    if (!f) return DM_OK; /* no memory for the cache: unfused */
    const int bt = b ? (int)b->dtype : -1;
    const void *bp = b ? b->data : NULL;
    const conv_fuse_key key =
        conv_fuse_key_make(xs[0], xs[1], xs[2], xs[3], ws4[0], ws4[2], ws4[3], p, cd, bt, yt, nhwc,
                           conv_fuse_alignment(x), conv_fuse_alignment(w), conv_fuse_alignment(bp),
                           conv_fuse_alignment(y));
    conv_fuse_entry *e = conv_fuse_cache_find(&f->cache, &key);
    if (conv_fuse_eligible(p->act, b != NULL, cd, b ? b->dtype : DM_DTYPE_F32, yt, f->enabled,
                           ctx->capturing, e != NULL) != CONV_FUSE_OK)
        return DM_OK;
    if (e && e->declined) {
        f->cache.fallbacks++;
        return DM_OK;
    }
    if (!e) {
        fused_shape s;
        memset(&s, 0, sizeof s);
        for (int i = 0; i < 4; i++)
            s.x[i] = xs[i], s.w[i] = ws4[i], s.y[i] = ys[i];
        s.pad[0] = p->pad_h, s.pad[1] = p->pad_w;
        s.stride[0] = p->stride_h, s.stride[1] = p->stride_w;
        s.dil[0] = p->dilation_h, s.dil[1] = p->dilation_w;
        s.cd = dt_of(cd), s.bt = dt_of(b ? b->dtype : DM_DTYPE_F32), s.yt = dt_of(yt);
        s.has_bias = b != NULL, s.nhwc = nhwc, s.act = p->act;
        s.ax = key.v[20], s.aw = key.v[21], s.ab = key.v[22], s.ay = key.v[23];
        fused_plan *fp = calloc(1, sizeof *fp);
        size_t wsz = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cudnnStatus_t st = fp ? build_plan(ctx->cudnn, &s, fp, &wsz) : CUDNN_STATUS_ALLOC_FAILED;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        f->build_s += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        void *evicted = NULL;
        if (st != CUDNN_STATUS_SUCCESS) {
            snprintf(f->last_decline, sizeof f->last_decline,
                     "%s x (%d, %d, %d, %d) w (%d, %d, %d, %d) s%d p%d d%d act %d %s: %s: %s",
                     dm_dtype_name(cd), xs[0], xs[1], xs[2], xs[3], ws4[0], ws4[1], ws4[2], ws4[3],
                     p->stride_h, p->pad_h, p->dilation_h, (int)p->act, nhwc ? "NHWC" : "NCHW",
                     fp && fp->fail ? fp->fail : "?", cudnnGetErrorString(st));
            plan_free(fp);
            e = conv_fuse_cache_put(&f->cache, &key, NULL, 0, 1, &evicted);
            f->cache.declined++;
            f->cache.fallbacks++;
        } else {
            e = conv_fuse_cache_put(&f->cache, &key, fp, wsz, 0, &evicted);
            f->cache.plans++;
        }
        if (evicted) retire(f, evicted);
        if (e->declined) return DM_OK;
    }
    void *ws = NULL;
    dm_status dst;
    /* (growing the scratch inside a capture is refused by cuda_scratch: the capture fails,
     * as for every other op) */
    if (e->workspace && (dst = cuda_scratch(ctx, CUDA_SLOT_WORKSPACE, e->workspace, &ws)))
        return dst;
    const cudnnStatus_t s = execute(ctx, e->plan, x, w, bp, y, ws);
    if (s != CUDNN_STATUS_SUCCESS) {
        /* the plan stays allocated (freed with the cache), marked declined: unfused from now */
        snprintf(f->last_decline, sizeof f->last_decline,
                 "%s x (%d, %d, %d, %d) w (%d, %d, %d, %d) act %d %s: cudnnBackendExecute: %s",
                 dm_dtype_name(cd), xs[0], xs[1], xs[2], xs[3], ws4[0], ws4[1], ws4[2], ws4[3],
                 (int)p->act, nhwc ? "NHWC" : "NCHW", cudnnGetErrorString(s));
        e->declined = 1;
        f->cache.declined++;
        f->cache.fallbacks++;
        return DM_OK;
    }
    f->cache.runs++;
    *done = 1;
    return DM_OK;
}

dm_status dm_cuda_conv_fused_stats(dm_backend *be, dm_cuda_fused_stats *out) {
    memset(out, 0, sizeof *out);
    if (!be || be->device != DM_DEVICE_CUDA || !be->impl)
        return dm_error_set(DM_ERR_ARG, "dm_cuda_conv_fused_stats: not a CUDA backend");
    cuda_ctx *ctx = cuda_ctx_of(be);
    cuda_fused *f = fused_of(ctx);
    if (!f) return dm_error_set(DM_ERR_NOMEM, "dm_cuda_conv_fused_stats: out of memory");
    out->enabled = f->enabled;
    out->plans = f->cache.plans;
    out->declined = f->cache.declined;
    out->runs = f->cache.runs;
    out->fallbacks = f->cache.fallbacks;
    out->build_s = f->build_s;
    snprintf(out->last_decline, sizeof out->last_decline, "%s", f->last_decline);
    return DM_OK;
}

int cuda_conv_fused_graph_check(const int xs[4], const int ws4[4], const int ys[4],
                                const dm_conv2d_params *p, int has_bias, dm_dtype cd, dm_dtype bt,
                                dm_dtype yt, int nhwc, char *why, size_t why_size) {
    fused_shape s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 4; i++)
        s.x[i] = xs[i], s.w[i] = ws4[i], s.y[i] = ys[i];
    s.pad[0] = p->pad_h, s.pad[1] = p->pad_w;
    s.stride[0] = p->stride_h, s.stride[1] = p->stride_w;
    s.dil[0] = p->dilation_h, s.dil[1] = p->dilation_w;
    s.cd = dt_of(cd), s.bt = dt_of(bt), s.yt = dt_of(yt);
    s.has_bias = has_bias, s.nhwc = nhwc, s.act = p->act;
    s.ax = s.aw = s.ab = s.ay = 16;
    fused_plan *fp = calloc(1, sizeof *fp);
    if (!fp) return (int)CUDNN_STATUS_ALLOC_FAILED;
    cudnnBackendDescriptor_t graph;
    const cudnnStatus_t st = build_graph(NULL, &s, fp, &graph);
    snprintf(why, why_size, "%s: %s", fp->fail ? fp->fail : "graph finalized",
             cudnnGetErrorString(st));
    plan_free(fp);
    return (int)st;
}
