/* linear of the CUDA backend through cuBLASLt: y (M, N) = act(x (M, K) @ w (N, K)^T + b (N)).
 *
 * Row-major y = x w^T is column-major y^T (N, M) = w (N, K) . x^T (K, M): the row-major (N, K)
 * weight read as column-major is a K x N matrix, used with op T; the row-major x is a
 * column-major K x M matrix, used with op N; y comes out column-major N x M = row-major (M, N).
 * The bias then runs along the rows of the column-major result, which is what cuBLASLt's BIAS
 * epilogue adds.
 *
 * Epilogues: the bias is fused (CUBLASLT_EPILOGUE_BIAS). No activation is taken from cuBLASLt:
 * its GELU epilogue is the tanh approximation, while DINOv2 and VDA use exact erf GELU
 * (nn.GELU()), and what its RELU epilogues give for NaN is not documented (a max(x, 0) would
 * turn NaN into 0 and hide it from the non-finite guard; PyTorch's relu keeps NaN). So every
 * activation runs in our elementwise kernel after the GEMM (one extra pass over y; no model
 * runs linear + ReLU).
 * Dtypes: compute dtype = x's dtype, or the backend's precision (f16/bf16) for an f32 x
 * (runtime.precision; x and w converted into scratch), f32 accumulation
 * (CUBLAS_COMPUTE_32F: strict f32, no TF32). The output may be x's dtype or f32 (a supported
 * cuBLASLt combination for f16/bf16 inputs); any other output dtype goes through scratch.
 * Not yet run on a GPU. */
#include <stdint.h>
#include <string.h>

#include "cuda_common.h"

#define LT_WORKSPACE ((size_t)32 << 20) /* cuBLASLt's recommendation for Hopper is 32 MiB */

static cudaDataType_t lt_dtype(dm_dtype t) {
    return t == DM_DTYPE_F16 ? CUDA_R_16F : (t == DM_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F);
}

/* Largest power of two <= 256 dividing the address (cuBLASLt's alignment preference). */
static uint32_t align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && (a % al)) al >>= 1;
    return al;
}

/* Records a cuBLASLt failure and jumps to cleanup (descriptors must be destroyed). */
#define LT_TRY(expr)                                                                           \
    do {                                                                                       \
        cublasStatus_t s_ = (expr);                                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                     \
            st = dm_error_set(DM_ERR_BACKEND, "%s:%d %s: %s: %s", __FILE__, __LINE__,          \
                              __func__, #expr, cublasLtGetStatusString(s_));                   \
            goto done;                                                                         \
        }                                                                                      \
    } while (0)

static void plan_destroy(cuda_lt_plan *p) {
    if (p->ld) cublasLtMatrixLayoutDestroy(p->ld);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}

void cuda_lt_cache_free(cuda_ctx *ctx) {
    for (int i = 0; i < CUDA_LT_CACHE; i++)
        if (ctx->lt_cache[i].key[0]) plan_destroy(&ctx->lt_cache[i]);
}

/* Builds the plan for `key` into *p: matmul descriptor (f32 compute, op T x N, epilogue),
 * layouts of w (K x N), x (K x M), d (N x M), and cuBLASLt's best heuristic algorithm for the
 * given alignments and workspace. On failure *p is left empty. */
static dm_status plan_build(cuda_ctx *ctx, const uint64_t key[8], cuda_lt_plan *p, dm_dtype cd,
                            dm_dtype dt, cublasLtEpilogue_t epi, uint64_t M, uint64_t N,
                            uint64_t K, uint32_t aa, uint32_t ab, uint32_t ad, size_t ws_size) {
    dm_status st = DM_OK;
    cublasLtMatmulPreference_t pref = NULL;
    memset(p, 0, sizeof *p);
    LT_TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                          sizeof epi));
    LT_TRY(cublasLtMatrixLayoutCreate(&p->la, lt_dtype(cd), K, N, (int64_t)K)); /* w: K x N */
    LT_TRY(cublasLtMatrixLayoutCreate(&p->lb, lt_dtype(cd), K, M, (int64_t)K)); /* x: K x M */
    LT_TRY(cublasLtMatrixLayoutCreate(&p->ld, lt_dtype(dt), N, M, (int64_t)N)); /* y: N x M */
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &ws_size, sizeof ws_size));
    /* views into larger buffers (token slices) may be less aligned than cudaMalloc's 256 B */
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                &aa, sizeof aa));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                &ab, sizeof ab));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                &ad, sizeof ad));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                &ad, sizeof ad));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    LT_TRY(cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->op, p->la, p->lb, p->ld, p->ld, pref, 1,
                                          &heur, &found));
    if (found < 1) {
        st = dm_error_set(DM_ERR_UNSUPPORTED, "linear: cuBLASLt has no algorithm for %s x %s -> "
                          "%s, M %llu N %llu K %llu", dm_dtype_name(cd), dm_dtype_name(cd),
                          dm_dtype_name(dt), (unsigned long long)M, (unsigned long long)N,
                          (unsigned long long)K);
        goto done;
    }
    p->algo = heur.algo;
    p->workspace = ws_size;
    memcpy(p->key, key, sizeof p->key);
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (st) plan_destroy(p);
    return st;
}

/* One GEMM with epilogue into d (dtype dt). Descriptors, layouts and the heuristic's algorithm
 * are cached per (M, N, K, dtypes, epilogue, alignments) in the backend context (~50 distinct
 * shapes per DA-V2 frame, all hits after the first frame); only the bias pointer is set per
 * call. */
static dm_status lt_matmul(cuda_ctx *ctx, const void *w, const void *x, dm_dtype cd, void *d,
                           dm_dtype dt, const void *bias, uint64_t M, uint64_t N,
                           uint64_t K) {
    dm_status st = DM_OK;
    void *ws;
    if ((st = cuda_scratch(ctx, CUDA_SLOT_WORKSPACE, LT_WORKSPACE, &ws))) return st;
    const size_t ws_size = LT_WORKSPACE; /* the slot may be larger; plans assume this much */
    const cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    const uint32_t aa = align_of(w), ab = align_of(x), ad = align_of(d);
    const uint64_t key[8] = {M,
                             N,
                             K,
                             1u + (uint64_t)cd * 16u + (uint64_t)dt,
                             (uint64_t)epi,
                             ((uint64_t)aa << 32) | ab,
                             ad,
                             ws_size};
    cuda_lt_plan *p = NULL;
    for (int i = 0; i < CUDA_LT_CACHE && !p; i++)
        if (ctx->lt_cache[i].key[0] && !memcmp(ctx->lt_cache[i].key, key, sizeof key))
            p = &ctx->lt_cache[i];
    if (!p) {
        p = &ctx->lt_cache[ctx->lt_next];
        ctx->lt_next = (ctx->lt_next + 1) % CUDA_LT_CACHE;
        if (p->key[0]) plan_destroy(p); /* evict (queued GEMMs hold no reference to it) */
        if ((st = plan_build(ctx, key, p, cd, dt, epi, M, N, K, aa, ab, ad, ws_size))) return st;
    }
    if (bias) {
        cublasStatus_t s_ = cublasLtMatmulDescSetAttribute(
            p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        if (s_ != CUBLAS_STATUS_SUCCESS)
            return dm_error_set(DM_ERR_BACKEND, "linear: bias pointer: %s",
                                cublasLtGetStatusString(s_));
    }
    const float one = 1.f, zero = 0.f;
    CUBLAS_CHECK(cublasLtMatmul(ctx->lt, p->op, &one, w, p->la, x, p->lb, &zero, d, p->ld, d,
                                p->ld, &p->algo, ws, p->workspace, ctx->stream));
    return DM_OK;
}

dm_status linear_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                      dm_act act, dm_tensor *y) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    dm_status st;
    if ((st = cuda_check_float(x, 0, "linear", "x")) ||
        (st = cuda_check_float(w, 2, "linear", "w")) ||
        (st = cuda_check_float(y, 0, "linear", "y")) ||
        (b && (st = cuda_check_float(b, 0, "linear", "b"))))
        return st;
    const int64_t N = w->shape[0], K = w->shape[1];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != K || y->ndim < 1 || y->shape[y->ndim - 1] != N)
        return dm_error_set(DM_ERR_SHAPE, "linear: x (..., %lld) and y (..., %lld) expected",
                            (long long)K, (long long)N);
    const int64_t M = K ? dm_tensor_numel(x) / K : 0;
    if (dm_tensor_numel(y) != M * N)
        return dm_error_set(DM_ERR_SHAPE, "linear: y has %lld elements, expected %lld x %lld",
                            (long long)dm_tensor_numel(y), (long long)M, (long long)N);
    if (b && dm_tensor_numel(b) != N)
        return dm_error_set(DM_ERR_SHAPE, "linear: bias has %lld elements, expected %lld",
                            (long long)dm_tensor_numel(b), (long long)N);
    if (M == 0 || N == 0) return DM_OK;
    if (K == 0)
        return dm_error_set(DM_ERR_SHAPE, "linear: K = 0 (empty inner dimension)");
    CUDA_CHECK(cudaSetDevice(ctx->device));

    const dm_dtype cd = cuda_compute_dtype(ctx, x->dtype); /* runtime.precision */
    const void *wp, *xp, *bp = NULL;
    if ((st = cuda_as_dtype(ctx, w, cd, CUDA_SLOT_A, &wp)) ||
        (st = cuda_as_dtype(ctx, x, cd, CUDA_SLOT_X, &xp)))
        return st;
    /* GEMM output: y directly when cuBLASLt can write its dtype, else scratch in cd */
    const int direct = y->dtype == cd || y->dtype == DM_DTYPE_F32;
    const dm_dtype dt = direct ? y->dtype : cd;
    void *d = y->data;
    if (!direct && (st = cuda_scratch(ctx, CUDA_SLOT_C, (size_t)(M * N) * dm_dtype_size(cd), &d)))
        return st;
    if (b && (st = cuda_as_dtype(ctx, b, dt, CUDA_SLOT_B, &bp))) return st; /* bias type = D's */
    if ((st = lt_matmul(ctx, wp, xp, cd, d, dt, bp, (uint64_t)M, (uint64_t)N, (uint64_t)K)))
        return st;
    if (direct && act == DM_ACT_NONE) return DM_OK;
    return cuda_activation(ctx->stream, d, dt, y->data, y->dtype, M * N, act);
}
