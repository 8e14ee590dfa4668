/* Every CUDA op against the CPU reference op (src/nn/cpu) on random inputs, per precision
 * (f32, f16, bf16), plus copies/conversions, uploads, the non-finite counter, softmax and device
 * queries: ONE case table ({op, shapes, params, dtypes}, k_cases below) walked by one generic
 * runner (run_case), after ggml's tests/test-backend-ops (make_test_cases_eval + `-o OP`).
 *
 *   test_cuda_ops [-o OP[,OP...]] [-t f32|f16|bf16[,...]] [-b cuda|cpu] [-l]  (op_filter.h)
 *
 * so that a short GPU session reruns only what failed (e.g. `test_cuda_ops -o attention -t bf16`).
 * `-b cpu` runs the f32 cases with a second CPU backend in place of CUDA: a self-check of the
 * runner, the guards and the comparisons that needs no GPU (CTest test_cuda_ops_cpu_runner).
 *
 * Method: inputs are drawn in f32, rounded to the precision under test (so that both backends
 * see bit-identical inputs), run through the CPU op in f32 and through the CUDA op with every
 * tensor in that precision (or f32 where a mixed-dtype case says so), and the CUDA output
 * (converted back to f32) is compared with tc_compare. Tolerance = factor(precision) *
 * max|reference| (finite values):
 *   f32   1e-4   : strict f32 on both sides (TF32 disabled); observed differences come only from
 *                  summation order and FMA contraction (~1e-6 relative for K <= 4000); 1e-4
 *                  would still catch TF32 (10-bit mantissa, ~1e-3) sneaking in.
 *   f16   4 * 2^-11 (~2.0e-3): f16 unit roundoff is 2^-11; an op rounds at most ~twice (cuDNN's
 *                  f16 conv output before our bias/activation epilogue, then the store) plus
 *                  f32 accumulation noise; four units bound that with margin. The tensor-core
 *                  attention kernel rounds P = softmax numerators to f16 before P*V (as
 *                  FlashAttention-2 does): one more unit, still inside four.
 *   bf16  4 * 2^-8  (~1.6e-2): same reasoning with bf16's 8-bit mantissa.
 * These follow ../shared/golden/README.md section 5 (f16/bf16: 1e-2 of the tensor's scale).
 *
 * Guards: every device tensor of a case lives inside a larger raw buffer with GUARD bytes of a
 * known pattern on both sides (allocations of the backend are rounded up to 256 bytes, which
 * would hide a small overrun); the guards are checked after every op. Outputs start as all-1
 * bytes (NaN in f32/f16/bf16), so an element an op forgets to write, or an op that reads its
 * output, shows up as NaN.
 * Non-finite inputs: cases with `nonfinite` salt one input with NaN, +inf and -inf where the
 * op's contract says what happens (activation and binary propagate as IEEE arithmetic does,
 * every activation keeps NaN as PyTorch does, also fused into conv2d / linear with a NaN/inf
 * bias, matting_compose keeps NaN); there NaN and the sign of inf must agree with the CPU op
 * (tc_opts.match_nonfinite).
 * Exits 77 (loud skip) when no CUDA device is visible or the build has no CUDA; an op whose
 * CPU reference is still missing is skipped loudly. NOT YET RUN ON A GPU (see docs/gpu.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend.h"
#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_emu.h"
#include "depthmatte/graph.h"
#include "op_filter.h"
#include "tensor_compare.h"

static dm_backend *g_cpu, *g_gpu; /* reference, backend under test */
static int g_dut_cpu;             /* -b cpu / -b emu: no CUDA; the runner checks itself */
static int g_dut_emu;             /* -b emu: g_gpu is g_emu[precision], tensors f32 (storage) */
static dm_backend *g_emu[3];      /* emulated device backends, precision f32 / f16 / bf16 */
static int g_skipped_ops;
static const dm_dtype k_precs[3] = {DM_DTYPE_F32, DM_DTYPE_F16, DM_DTYPE_BF16};

static double tol_factor(dm_dtype p) {
    return p == DM_DTYPE_F32 ? 1e-4 : (p == DM_DTYPE_F16 ? 4.0 / 2048 : 4.0 / 256);
}

static float frand(unsigned *s) { /* uniform in [-1, 1) */
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffffff) / 8388608.f - 1.f;
}

static float round_to(float v, dm_dtype p) {
    if (p == DM_DTYPE_F16) return dm_f16_to_f32(dm_f32_to_f16(v));
    if (p == DM_DTYPE_BF16) return dm_bf16_to_f32(dm_f32_to_bf16(v));
    return v;
}

static dm_tensor host_zeros(int ndim, const int64_t *shape) {
    dm_tensor t;
    CHECK_OK(dm_tensor_alloc(&t, DM_DTYPE_F32, ndim, shape));
    return t;
}

/* Host f32 tensor, uniform in [offset - amp, offset + amp), rounded to precision p. */
static dm_tensor host_rand(int ndim, const int64_t *shape, float amp, float offset, dm_dtype p,
                           unsigned seed) {
    dm_tensor t = host_zeros(ndim, shape);
    for (int64_t i = 0; i < dm_tensor_numel(&t); i++)
        dm_f32(&t)[i] = round_to(offset + amp * frand(&seed), p);
    return t;
}

static double max_abs_finite(const dm_tensor *t) {
    double m = 0;
    for (int64_t i = 0; i < dm_tensor_numel(t); i++)
        if (isfinite(dm_f32(t)[i])) m = fmax(m, fabs(dm_f32(t)[i]));
    return m;
}

/* ---- guarded device tensors ---------------------------------------------------------------- */

#define GUARD 256            /* bytes each side; keeps the view 256-byte aligned (cuBLASLt) */
#define GUARD_BYTE 0xA5      /* guard pattern */
#define UNWRITTEN_BYTE 0xFF  /* initial interior: NaN in f32, f16 and bf16 */

typedef struct gtensor {
    dm_tensor raw;  /* u8 (2*GUARD + bytes) device buffer */
    dm_tensor t;    /* the tensor under test: a view of raw at offset GUARD */
    size_t bytes;   /* exact size of t */
} gtensor;

static void gt_alloc(gtensor *g, dm_dtype dt, int ndim, const int64_t *shape) {
    memset(g, 0, sizeof *g);
    dm_tensor_view(&g->t, NULL, dt, ndim, shape);
    g->bytes = dm_tensor_nbytes(&g->t);
    const int64_t rs[1] = {(int64_t)(2 * GUARD + g->bytes)};
    dm_tensor init;
    CHECK_OK(dm_alloc(g_gpu, &g->raw, DM_DTYPE_U8, 1, rs));
    CHECK_OK(dm_tensor_alloc(&init, DM_DTYPE_U8, 1, rs));
    unsigned char *b = init.data;
    memset(b, GUARD_BYTE, (size_t)rs[0]);
    memset(b + GUARD, UNWRITTEN_BYTE, g->bytes);
    CHECK_OK(dm_copy(g_gpu, &init, &g->raw));
    dm_tensor_free(&init);
    g->t.data = g->raw.data ? (char *)g->raw.data + GUARD : NULL;
    g->t.device = g->raw.device; /* CUDA, or CPU / EMU for the runner's self-checks */
}

/* Checks both guard regions; returns 1 when intact. */
static int gt_check(const gtensor *g, const char *name) {
    dm_tensor host;
    const int64_t rs[1] = {(int64_t)(2 * GUARD + g->bytes)};
    CHECK_OK(dm_tensor_alloc(&host, DM_DTYPE_U8, 1, rs));
    CHECK_OK(dm_copy(g_gpu, &g->raw, &host));
    const unsigned char *b = host.data;
    int64_t bad_lo = -1, bad_hi = -1;
    for (int64_t i = 0; i < GUARD; i++) {
        if (b[GUARD - 1 - i] != GUARD_BYTE && bad_lo < 0) bad_lo = i + 1; /* bytes before */
        if (b[GUARD + g->bytes + i] != GUARD_BYTE && bad_hi < 0) bad_hi = i;
    }
    dm_tensor_free(&host);
    if (bad_lo >= 0 || bad_hi >= 0) {
        printf("%-28s GUARD FAIL:", name);
        if (bad_lo >= 0) printf(" byte -%lld before the start modified", (long long)bad_lo);
        if (bad_hi >= 0) printf(" byte +%lld past the end modified", (long long)bad_hi);
        printf("\n");
        tc_failure_count++;
        return 0;
    }
    return 1;
}

static void gt_free(gtensor *g) {
    dm_cuda_tensor_free(&g->raw);
    memset(g, 0, sizeof *g);
}

/* ---- the case table ------------------------------------------------------------------------ */

#define MAX_IN 5
#define MAX_OUT 2

typedef enum tkind {
    TS_RAND = 0, /* uniform in [offset - amp, offset + amp), rounded to the precision */
    TS_U8_HOST,  /* u8 CPU tensor of random bytes, handed to both backends as is */
    TS_U8_DEV,   /* u8 random bytes, uploaded as a u8 tensor of the backend under test */
} tkind;

typedef struct tspec {
    int ndim;
    int64_t shape[DM_MAX_DIMS];
    float amp, offset;
    tkind kind;
} tspec;

typedef struct case_io {
    int nin, nout;
    tspec in[MAX_IN], out[MAX_OUT];
    const char *out_name[MAX_OUT];
} case_io;

typedef struct op_case op_case;
/* Runs the op on backend be: in[] are the inputs, out[] the outputs (shapes from setup). */
typedef dm_status (*case_call)(dm_backend *be, const op_case *c, dm_tensor *const *in,
                               dm_tensor *const *out);

#define P_ALL 0u
#define P_F32 (1u << DM_DTYPE_F32)
#define P_F16 (1u << DM_DTYPE_F16)
#define P_BF16 (1u << DM_DTYPE_BF16)
#define P_HALF (P_F16 | P_BF16)
#define IN_F32(i) (1u << (i))        /* mixed dtypes: input i stays f32 on the device */
#define OUT_F32(i) (1u << (8 + (i))) /* output i is f32 on the device */

struct op_case {
    const char *op;   /* filter name (-o) */
    const char *what; /* shapes / variant, printed */
    void (*setup)(const op_case *c, case_io *io);
    case_call call;
    /* optional: adjusts the host inputs after drawing (e.g. keeps a variance positive);
     * must leave values representable in p */
    void (*prep)(const op_case *c, dm_tensor *const *in, dm_dtype p);
    /* non-table runner (copies, uploads, queries): run once per selected precision set */
    void (*special)(const op_case *c);
    int a[14];         /* integer parameters, meaning per op (see the setup functions) */
    double d[2];       /* real parameters */
    unsigned precs;    /* precisions run (P_*; 0 = all three) */
    unsigned mixed;    /* IN_F32 / OUT_F32 bits */
    int nonfinite;     /* 1 + index of the input salted with NaN / +inf / -inf; 0 none */
};

static void spec(tspec *t, int ndim, const int64_t *shape, float amp, float offset) {
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->amp = amp;
    t->offset = offset;
}

#define SPEC(t, amp, off, ...)                                                                 \
    do {                                                                                       \
        const int64_t s_[] = {__VA_ARGS__};                                                    \
        spec((t), (int)(sizeof s_ / sizeof s_[0]), s_, (amp), (off));                          \
    } while (0)

/* conv2d: a = {N, Cin, Cout, H, W, k, stride, pad, dilation, groups, bias, act} */
static void setup_conv2d(const op_case *c, case_io *io) {
    const int *a = c->a, N = a[0], Cin = a[1], Cout = a[2], H = a[3], W = a[4], k = a[5],
              s = a[6], pad = a[7], dil = a[8], g = a[9];
    const int Ho = (H + 2 * pad - dil * (k - 1) - 1) / s + 1;
    const int Wo = (W + 2 * pad - dil * (k - 1) - 1) / s + 1;
    io->nin = 3;
    SPEC(&io->in[0], 1.f, 0.f, N, Cin, H, W);
    SPEC(&io->in[1], sqrtf(3.f / (float)(Cin / g * k * k)), 0.f, Cout, Cin / g, k, k);
    SPEC(&io->in[2], 0.1f, 0.f, Cout);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, N, Cout, Ho, Wo);
}
static dm_status call_conv2d(dm_backend *be, const op_case *c, dm_tensor *const *in,
                             dm_tensor *const *out) {
    const int *a = c->a;
    dm_conv2d_params prm = {a[6], a[6], a[7], a[7], a[8], a[8], a[9], (dm_act)a[11]};
    return dm_conv2d(be, in[0], in[1], a[10] ? in[2] : NULL, &prm, out[0]);
}

/* conv_transpose2d: a = {N, Cin, Cout, H, W, k, stride, pad} */
static void setup_convt(const op_case *c, case_io *io) {
    const int *a = c->a, N = a[0], Cin = a[1], Cout = a[2], H = a[3], W = a[4], k = a[5],
              s = a[6], pad = a[7];
    io->nin = 3;
    SPEC(&io->in[0], 1.f, 0.f, N, Cin, H, W);
    SPEC(&io->in[1], sqrtf(3.f / (float)Cin), 0.f, Cin, Cout, k, k);
    SPEC(&io->in[2], 0.1f, 0.f, Cout);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, N, Cout, (H - 1) * s - 2 * pad + k, (W - 1) * s - 2 * pad + k);
}
static dm_status call_convt(dm_backend *be, const op_case *c, dm_tensor *const *in,
                            dm_tensor *const *out) {
    return dm_conv_transpose2d(be, in[0], in[1], in[2], c->a[6], c->a[7], out[0]);
}

/* linear: a = {B, T, K, N, bias, act} */
static void setup_linear(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 3;
    SPEC(&io->in[0], 1.f, 0.f, a[0], a[1], a[2]);
    SPEC(&io->in[1], sqrtf(3.f / (float)a[2]), 0.f, a[3], a[2]);
    SPEC(&io->in[2], 0.1f, 0.f, a[3]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1], a[3]);
}
static dm_status call_linear(dm_backend *be, const op_case *c, dm_tensor *const *in,
                             dm_tensor *const *out) {
    return dm_linear(be, in[0], in[1], c->a[4] ? in[2] : NULL, (dm_act)c->a[5], out[0]);
}

/* layernorm: a = {rows, C}, d[0] = mean offset of x */
static void setup_layernorm(const op_case *c, case_io *io) {
    io->nin = 3;
    SPEC(&io->in[0], 2.f, (float)c->d[0], c->a[0], c->a[1]);
    SPEC(&io->in[1], 0.1f, 1.f, c->a[1]);
    SPEC(&io->in[2], 0.1f, 0.f, c->a[1]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, c->a[0], c->a[1]);
}
static dm_status call_layernorm(dm_backend *be, const op_case *c, dm_tensor *const *in,
                                dm_tensor *const *out) {
    (void)c;
    return dm_layernorm(be, in[0], in[1], in[2], 1e-6f, out[0]);
}

/* groupnorm: a = {N, C, H, W, groups} */
static void setup_groupnorm(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 3;
    SPEC(&io->in[0], 1.5f, 0.5f, a[0], a[1], a[2], a[3]);
    SPEC(&io->in[1], 0.1f, 1.f, a[1]);
    SPEC(&io->in[2], 0.1f, 0.f, a[1]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1], a[2], a[3]);
}
static dm_status call_groupnorm(dm_backend *be, const op_case *c, dm_tensor *const *in,
                                dm_tensor *const *out) {
    return dm_groupnorm(be, in[0], c->a[4], in[1], in[2], 1e-6f, out[0]);
}

/* activation: a = {n, act}; in place on the output (y aliases x), as the models call it */
static void setup_activation(const op_case *c, case_io *io) {
    io->nin = 1;
    SPEC(&io->in[0], 6.f, 0.f, c->a[0]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, c->a[0]);
}
static dm_status call_activation(dm_backend *be, const op_case *c, dm_tensor *const *in,
                                 dm_tensor *const *out) {
    dm_status st = dm_copy(be, in[0], out[0]);
    return st ? st : dm_activation(be, out[0], (dm_act)c->a[1], out[0]);
}

/* binary: a = {op, broadcast} on (2, 37, 96) with b (2, 37, 96) or (96) */
static void setup_binary(const op_case *c, case_io *io) {
    io->nin = 2;
    SPEC(&io->in[0], 2.f, 0.f, 2, 37, 96);
    if (c->a[1])
        SPEC(&io->in[1], 2.f, 0.f, 96);
    else
        SPEC(&io->in[1], 2.f, 0.f, 2, 37, 96);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, 2, 37, 96);
}
static dm_status call_binary(dm_backend *be, const op_case *c, dm_tensor *const *in,
                             dm_tensor *const *out) {
    return dm_binary(be, in[0], in[1], (dm_binary_op)c->a[0], out[0]);
}

/* concat along dim 1: a = {N, Ca, Cb, H, W} */
static void setup_concat(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 2;
    SPEC(&io->in[0], 1.f, 0.f, a[0], a[1], a[3], a[4]);
    SPEC(&io->in[1], 1.f, 0.f, a[0], a[2], a[3], a[4]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1] + a[2], a[3], a[4]);
}
static dm_status call_concat(dm_backend *be, const op_case *c, dm_tensor *const *in,
                             dm_tensor *const *out) {
    (void)c;
    return dm_concat(be, in[0], in[1], out[0]);
}

/* attention: a = {B, heads, Tq, Tk, D}; amplitude 2 on q and k: scores up to ~4*sqrt(D)*scale,
 * a peaked softmax like trained heads */
static void setup_attention(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 3;
    SPEC(&io->in[0], 2.f, 0.f, a[0], a[1], a[2], a[4]);
    SPEC(&io->in[1], 2.f, 0.f, a[0], a[1], a[3], a[4]);
    SPEC(&io->in[2], 1.f, 0.f, a[0], a[1], a[3], a[4]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1], a[2], a[4]);
}
static dm_status call_attention(dm_backend *be, const op_case *c, dm_tensor *const *in,
                                dm_tensor *const *out) {
    return dm_attention(be, in[0], in[1], in[2], 1.f / sqrtf((float)c->a[4]), out[0]);
}

/* attention straight from a qkv linear's output: a = {B, T, heads, D}; qkv (B, T, 3*C) holds
 * (B, T, 3, H, D), o (B, T, C). Backend under test: the table op attention_qkv (CUDA:
 * dm_cuda_attention_qkv); reference: the CPU ops a ViT block ran before that op existed (split
 * permute, dm_attention, merge permute), so that -b cpu / -b emu check the CPU op against them
 * too. */
static void setup_attention_qkv(const op_case *c, case_io *io) {
    const int *a = c->a, C = a[2] * a[3];
    io->nin = 1;
    SPEC(&io->in[0], 2.f, 0.f, a[0], a[1], 3 * C);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1], C);
}
static dm_status call_attention_qkv(dm_backend *be, const op_case *c, dm_tensor *const *in,
                                    dm_tensor *const *out) {
    const int B = c->a[0], T = c->a[1], H = c->a[2], D = c->a[3];
    const float scale = 1.f / sqrtf((float)D);
    if (be != g_cpu) return dm_attention_qkv(be, in[0], H, scale, out[0]);
    const int64_t s5[5] = {B, T, 3, H, D}, sh[5] = {3, B, H, T, D}, s4[4] = {B, H, T, D},
                  sm[4] = {B, T, H, D};
    const int split[5] = {2, 0, 3, 1, 4}, merge[4] = {0, 2, 1, 3};
    dm_tensor qkv5, heads, att, merged;
    dm_tensor_view(&qkv5, in[0]->data, DM_DTYPE_F32, 5, s5);
    dm_status st;
    if ((st = dm_tensor_alloc(&heads, DM_DTYPE_F32, 5, sh))) return st;
    if ((st = dm_tensor_alloc(&att, DM_DTYPE_F32, 4, s4))) {
        dm_tensor_free(&heads);
        return st;
    }
    const size_t part = (size_t)B * H * T * D;
    dm_tensor q, k, v;
    dm_tensor_view(&q, dm_f32(&heads), DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&k, dm_f32(&heads) + part, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&v, dm_f32(&heads) + 2 * part, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&merged, out[0]->data, DM_DTYPE_F32, 4, sm);
    if (!(st = dm_permute(be, &qkv5, split, &heads)) &&
        !(st = dm_attention(be, &q, &k, &v, scale, &att)))
        st = dm_permute(be, &att, merge, &merged);
    dm_tensor_free(&heads);
    dm_tensor_free(&att);
    return st;
}

/* resize of (2, 3, H, W): a = {H, W, Ho, Wo, mode, align_corners}, d = {scale_h, scale_w} */
static void setup_resize(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 1;
    SPEC(&io->in[0], 1.f, 0.f, 2, 3, a[0], a[1]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, 2, 3, a[2], a[3]);
}
static dm_status call_resize(dm_backend *be, const op_case *c, dm_tensor *const *in,
                             dm_tensor *const *out) {
    return dm_resize(be, in[0], (dm_resize_mode)c->a[4], c->a[5], c->d[0], c->d[1], out[0]);
}

/* avgpool2d of (2, 5, H, W): a = {H, W, k, s}; output size of ceil_mode with PyTorch's rule
 * that the last window starts inside the input */
static void setup_avgpool(const op_case *c, case_io *io) {
    const int H = c->a[0], W = c->a[1], k = c->a[2], s = c->a[3];
    int Ho = (H - k + s - 1) / s + 1, Wo = (W - k + s - 1) / s + 1;
    if ((Ho - 1) * s >= H) Ho--;
    if ((Wo - 1) * s >= W) Wo--;
    io->nin = 1;
    SPEC(&io->in[0], 1.f, 0.f, 2, 5, H, W);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, 2, 5, Ho, Wo);
}
static dm_status call_avgpool(dm_backend *be, const op_case *c, dm_tensor *const *in,
                              dm_tensor *const *out) {
    return dm_avgpool2d(be, in[0], c->a[2], c->a[3], out[0]);
}

/* maxpool2d of (2, 5, H, W) (RVM ResNet-50 stem): a = {H, W, k, s, pad}; ceil_mode=False */
static void setup_maxpool(const op_case *c, case_io *io) {
    const int H = c->a[0], W = c->a[1], k = c->a[2], s = c->a[3], p = c->a[4];
    io->nin = 1;
    SPEC(&io->in[0], 1.f, 0.f, 2, 5, H, W);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, 2, 5, (H + 2 * p - k) / s + 1, (W + 2 * p - k) / s + 1);
}
static dm_status call_maxpool(dm_backend *be, const op_case *c, dm_tensor *const *in,
                              dm_tensor *const *out) {
    return dm_maxpool2d(be, in[0], c->a[2], c->a[3], c->a[4], out[0]);
}

/* global_avgpool2d: a = {N, C, H, W} */
static void setup_gap(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 1;
    SPEC(&io->in[0], 1.f, 0.3f, a[0], a[1], a[2], a[3]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1], 1, 1);
}
static dm_status call_gap(dm_backend *be, const op_case *c, dm_tensor *const *in,
                          dm_tensor *const *out) {
    (void)c;
    return dm_global_avgpool2d(be, in[0], out[0]);
}

/* channel_affine on (N, C, H, W): a = {N, C, H, W, variant}; variant 0: scale (C) + shift,
 * 1: per-image gate scale (N*C) only, 2: shift only */
static void setup_affine(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 3;
    SPEC(&io->in[0], 1.f, 0.3f, a[0], a[1], a[2], a[3]);
    if (a[4] == 1)
        SPEC(&io->in[1], 1.f, 0.f, a[0] * a[1]);
    else
        SPEC(&io->in[1], 1.f, 0.f, a[1]);
    SPEC(&io->in[2], 1.f, 0.f, a[1]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1], a[2], a[3]);
}
static dm_status call_affine(dm_backend *be, const op_case *c, dm_tensor *const *in,
                             dm_tensor *const *out) {
    const int v = c->a[4];
    return dm_channel_affine(be, in[0], v == 2 ? NULL : in[1], v == 1 ? NULL : in[2], out[0]);
}

/* permute: a = {ndim, shape[0..4], perm[0..4]} */
static void setup_permute(const op_case *c, case_io *io) {
    const int nd = c->a[0];
    io->nin = 1;
    io->nout = 1;
    int64_t xs[DM_MAX_DIMS], ys[DM_MAX_DIMS];
    for (int i = 0; i < nd; i++) xs[i] = c->a[1 + i];
    for (int i = 0; i < nd; i++) ys[i] = xs[c->a[6 + i]];
    spec(&io->in[0], nd, xs, 1.f, 0.f);
    spec(&io->out[0], nd, ys, 0.f, 0.f);
}
static dm_status call_permute(dm_backend *be, const op_case *c, dm_tensor *const *in,
                              dm_tensor *const *out) {
    return dm_permute(be, in[0], c->a + 6, out[0]);
}

/* image_from_u8: a = {N, H, W}; rgb is a CPU u8 tensor on both backends (the table's contract) */
static void setup_image(const op_case *c, case_io *io) {
    io->nin = 1;
    SPEC(&io->in[0], 0.f, 0.f, c->a[0], c->a[1], c->a[2], 3);
    io->in[0].kind = TS_U8_HOST;
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, c->a[0], 3, c->a[1], c->a[2]);
}
static dm_status call_image(dm_backend *be, const op_case *c, dm_tensor *const *in,
                            dm_tensor *const *out) {
    (void)c;
    return dm_image_from_u8(be, in[0], out[0]);
}

/* image_cubic_normalize: a = {N, H, W, h, w, arith}; rgb (N, H, W, 3) u8 uploaded to the
 * backend under test, y (N, 3, h, w); ImageNet mean / std. Reference: the CPU op (the former
 * DA-V2 / VDA preprocessing code, bit-exact to the official transforms' goldens). The CUDA
 * kernel uses explicitly rounded arithmetic and is meant to agree bitwise in f32. */
static void setup_cubic(const op_case *c, case_io *io) {
    io->nin = 1;
    SPEC(&io->in[0], 0.f, 0.f, c->a[0], c->a[1], c->a[2], 3);
    io->in[0].kind = TS_U8_DEV;
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, c->a[0], 3, c->a[3], c->a[4]);
}
static dm_status call_cubic(dm_backend *be, const op_case *c, dm_tensor *const *in,
                            dm_tensor *const *out) {
    const dm_image_norm_params prm = {(dm_cubic_arith)c->a[5],
                                      {0.485, 0.456, 0.406},
                                      {0.229, 0.224, 0.225}};
    return dm_image_cubic_normalize(be, in[0], &prm, out[0]);
}

/* guided_coeffs: a = {N, K, h, w}; m holds box means of a real-looking guide */
static void setup_guided(const op_case *c, case_io *io) {
    const int *a = c->a;
    io->nin = 1;
    SPEC(&io->in[0], 0.5f, 0.5f, a[0], 4 * a[1], a[2], a[3]);
    io->nout = 2;
    SPEC(&io->out[0], 0.f, 0.f, a[0], a[1], a[2], a[3]);
    SPEC(&io->out[1], 0.f, 0.f, a[0], a[1], a[2], a[3]);
    io->out_name[0] = "a";
    io->out_name[1] = "b";
}
/* mean_xx >= mean_x^2 (variance >= 0): variance >= 0.02 stays positive after bf16 rounding of
 * mean_xx (half-ulp 0.002 at 1), so a = cov / var stays well inside f16 range */
static void prep_guided(const op_case *c, dm_tensor *const *in, dm_dtype p) {
    const int N = c->a[0], K = c->a[1];
    const int64_t hw = (int64_t)c->a[2] * c->a[3];
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            for (int64_t i = 0; i < hw; i++) {
                float *mx = dm_f32(in[0]) + ((int64_t)n * 4 * K + k) * hw + i;
                float v = mx[(int64_t)3 * K * hw];
                mx[(int64_t)3 * K * hw] = round_to(mx[0] * mx[0] + 0.02f + 0.05f * v, p);
            }
}
static dm_status call_guided(dm_backend *be, const op_case *c, dm_tensor *const *in,
                             dm_tensor *const *out) {
    (void)c;
    return dm_guided_coeffs(be, in[0], 1e-5f, out[0], out[1]);
}

/* matting_compose: a = {N, h, w, H, W, with_a}; with_a 0: b at full size (the noDGF path) */
static void setup_compose(const op_case *c, case_io *io) {
    const int *a = c->a, N = a[0], h = a[1], w = a[2], H = a[3], W = a[4];
    io->nin = 3;
    SPEC(&io->in[0], 1.f, 0.f, N, 4, h, w);
    if (a[5])
        SPEC(&io->in[1], 0.6f, 0.2f, N, 4, h, w);
    else
        SPEC(&io->in[1], 0.6f, 0.2f, N, 4, H, W);
    SPEC(&io->in[2], 0.5f, 0.5f, N, 3, H, W);
    io->nout = 2;
    SPEC(&io->out[0], 0.f, 0.f, N, 3, H, W);
    SPEC(&io->out[1], 0.f, 0.f, N, 1, H, W);
    io->out_name[0] = "fgr";
    io->out_name[1] = "pha";
}
static dm_status call_compose(dm_backend *be, const op_case *c, dm_tensor *const *in,
                              dm_tensor *const *out) {
    return dm_matting_compose(be, c->a[5] ? in[0] : NULL, in[1], in[2], out[0], out[1]);
}

/* softmax over rows (dm_cuda_softmax; no CPU op: the reference is a naive loop in double) */
static void setup_softmax(const op_case *c, case_io *io) {
    io->nin = 1;
    SPEC(&io->in[0], 8.f, 0.f, c->a[0], c->a[1]);
    io->nout = 1;
    SPEC(&io->out[0], 0.f, 0.f, c->a[0], c->a[1]);
}
static dm_status call_softmax(dm_backend *be, const op_case *c, dm_tensor *const *in,
                              dm_tensor *const *out) {
    if (be != g_cpu) return dm_cuda_softmax(be, in[0], out[0]);
    const int rows = c->a[0], C = c->a[1];
    for (int r = 0; r < rows; r++) {
        const float *xr = dm_f32(in[0]) + (size_t)r * C;
        float *yr = dm_f32(out[0]) + (size_t)r * C;
        double m = -INFINITY, s = 0;
        for (int i = 0; i < C; i++) m = fmax(m, xr[i]);
        for (int i = 0; i < C; i++) s += exp(xr[i] - m);
        for (int i = 0; i < C; i++) yr[i] = (float)(exp(xr[i] - m) / s);
    }
    return DM_OK;
}

/* ---- the generic runner -------------------------------------------------------------------- */

/* NaN, +inf and -inf at a few spread positions (first, last, thirds, middle). */
static void salt_nonfinite(dm_tensor *t) {
    const int64_t n = dm_tensor_numel(t);
    float *v = dm_f32(t);
    const int64_t at[5] = {0, n / 3, n / 2, 2 * n / 3, n - 1};
    const float val[5] = {NAN, INFINITY, -INFINITY, NAN, -INFINITY};
    for (int i = 0; i < 5; i++) v[at[i]] = val[i];
}

static const char *case_out_name(const case_io *io, int j) {
    return io->out_name[j] ? io->out_name[j] : (io->nout > 1 ? "out" : "");
}

static void run_case(const op_case *c, int idx, dm_dtype p) {
    if (g_dut_emu) g_gpu = g_emu[p == DM_DTYPE_F32 ? 0 : (p == DM_DTYPE_F16 ? 1 : 2)];
    case_io io;
    memset(&io, 0, sizeof io);
    c->setup(c, &io);
    char name[160];
    snprintf(name, sizeof name, "%s %s %s", c->op, c->what, dm_dtype_name(p));
    dm_tensor hin[MAX_IN], ref[MAX_OUT], got[MAX_OUT];
    dm_tensor *hin_p[MAX_IN], *ref_p[MAX_OUT], *gin_p[MAX_IN], *gout_p[MAX_OUT];
    gtensor gin[MAX_IN], gout[MAX_OUT];
    memset(gin, 0, sizeof gin);
    memset(gout, 0, sizeof gout);
    for (int i = 0; i < io.nin; i++) {
        const tspec *s = &io.in[i];
        const unsigned seed = 1000u * (unsigned)idx + 10u * (unsigned)i + (unsigned)p + 1u;
        if (s->kind == TS_U8_HOST || s->kind == TS_U8_DEV) {
            CHECK_OK(dm_tensor_alloc(&hin[i], DM_DTYPE_U8, s->ndim, s->shape));
            unsigned r = seed;
            for (int64_t e = 0; e < dm_tensor_numel(&hin[i]); e++)
                ((uint8_t *)hin[i].data)[e] = (uint8_t)((frand(&r) + 1.f) * 127.99f);
        } else {
            /* a mixed-dtype input kept f32 on the device still holds values of precision p,
             * so that the reference sees what the precision-p tensors of the case see */
            hin[i] = host_rand(s->ndim, s->shape, s->amp, s->offset, p, seed);
        }
        hin_p[i] = &hin[i];
    }
    if (c->prep) c->prep(c, hin_p, p);
    if (c->nonfinite) salt_nonfinite(&hin[c->nonfinite - 1]);
    for (int j = 0; j < io.nout; j++) {
        ref[j] = host_zeros(io.out[j].ndim, io.out[j].shape);
        ref_p[j] = &ref[j];
    }
    dm_status st = c->call(g_cpu, c, hin_p, ref_p);
    if (st == DM_ERR_UNSUPPORTED) {
        printf("\n*** SKIPPED %s: the CPU reference op is not implemented (%s) ***\n\n", name,
               dm_error_message());
        g_skipped_ops++;
        goto done;
    }
    CHECK_OK(st);
    for (int i = 0; i < io.nin; i++) {
        if (io.in[i].kind == TS_U8_HOST) {
            gin_p[i] = &hin[i];
            continue;
        }
        const dm_dtype dt = io.in[i].kind == TS_U8_DEV
                                ? DM_DTYPE_U8
                                : (((c->mixed & IN_F32(i)) || g_dut_emu) ? DM_DTYPE_F32 : p);
        gt_alloc(&gin[i], dt, io.in[i].ndim, io.in[i].shape);
        CHECK_OK(dm_copy(g_gpu, &hin[i], &gin[i].t));
        gin_p[i] = &gin[i].t;
    }
    for (int j = 0; j < io.nout; j++) {
        const dm_dtype dt = ((c->mixed & OUT_F32(j)) || g_dut_emu) ? DM_DTYPE_F32 : p;
        gt_alloc(&gout[j], dt, io.out[j].ndim, io.out[j].shape);
        gout_p[j] = &gout[j].t;
    }
    if ((st = c->call(g_gpu, c, gin_p, gout_p))) {
        printf("%-28s FAIL: %s\n", name, dm_error_message());
        tc_failure_count++;
        goto done;
    }
    for (int i = 0; i < io.nin; i++)
        if (gin[i].raw.data) gt_check(&gin[i], name);
    for (int j = 0; j < io.nout; j++) {
        char oname[192];
        snprintf(oname, sizeof oname, "%s%s%s", name, io.nout > 1 ? " " : "",
                 case_out_name(&io, j));
        gt_check(&gout[j], oname);
        got[j] = host_zeros(io.out[j].ndim, io.out[j].shape);
        CHECK_OK(dm_copy(g_gpu, &gout[j].t, &got[j]));
        const double scale = max_abs_finite(&ref[j]);
        const tc_opts opts = {.match_nonfinite = c->nonfinite != 0};
        tc_compare_opts(oname, dm_f32(&got[j]), dm_f32(&ref[j]), dm_tensor_numel(&ref[j]),
                        tol_factor(p) * (scale > 0 ? scale : 1.0), &opts, NULL);
        dm_tensor_free(&got[j]);
    }
done:
    for (int i = 0; i < io.nin; i++) {
        gt_free(&gin[i]);
        dm_tensor_free(&hin[i]);
    }
    for (int j = 0; j < io.nout; j++) {
        gt_free(&gout[j]);
        dm_tensor_free(&ref[j]);
    }
}

/* ---- non-table runners: copies, uploads, non-finite count, precision, queries ------------- */

/* The guards themselves: a write of 4 bytes past the end and of 1 byte before the start must
 * each be reported (the failures are expected here and not counted), an intact tensor not. */
static void special_guard(const op_case *c) {
    (void)c;
    const int64_t n[1] = {37}; /* 148 bytes: an overrun stays inside the 256-byte rounding */
    gtensor g;
    gt_alloc(&g, DM_DTYPE_F32, 1, n);
    dm_tensor h = host_zeros(1, n);
    CHECK_OK(dm_copy(g_gpu, &h, &g.t));
    const int before = tc_failure_count;
    CHECK(gt_check(&g, "guard intact"));
    const int64_t n_over[1] = {(int64_t)(g.bytes + 4)}, one[1] = {1};
    dm_tensor over, zb;
    dm_tensor_view(&over, g.t.data, DM_DTYPE_U8, 1, n_over);
    over.device = g.t.device;
    CHECK_OK(dm_tensor_alloc(&zb, DM_DTYPE_U8, 1, n_over));
    CHECK_OK(dm_copy(g_gpu, &zb, &over)); /* 4 bytes into the trailing guard */
    const int caught_hi = !gt_check(&g, "guard overrun (expected FAIL)");
    dm_tensor_view(&over, (char *)g.t.data - 1, DM_DTYPE_U8, 1, one);
    over.device = g.t.device;
    dm_tensor zb1;
    CHECK_OK(dm_tensor_alloc(&zb1, DM_DTYPE_U8, 1, one));
    CHECK_OK(dm_copy(g_gpu, &zb1, &over)); /* 1 byte into the leading guard */
    const int caught_lo = !gt_check(&g, "guard underrun (expected FAIL)");
    tc_failure_count = before; /* the two expected failures */
    printf("guard self-check: overrun %s, underrun %s\n", caught_hi ? "caught" : "MISSED",
           caught_lo ? "caught" : "MISSED");
    CHECK(caught_hi && caught_lo);
    dm_tensor_free(&zb);
    dm_tensor_free(&zb1);
    dm_tensor_free(&h);
    gt_free(&g);
}

/* Conversions must equal the host's round-to-nearest-even converters bit for bit, including
 * NaN, +-inf, overflow to inf and f16 subnormals. */
static void special_copy(const op_case *c) {
    (void)c;
    int64_t n[1] = {1000};
    dm_tensor x = host_rand(1, n, 60000.f, 0.f, DM_DTYPE_F32, 121u); /* f16 range: max 65504 */
    for (int i = 0; i < 8; i++) dm_f32(&x)[i] = ldexpf(1.f, -20 - i); /* f16 subnormals */
    dm_f32(&x)[8] = NAN;
    dm_f32(&x)[9] = INFINITY;
    dm_f32(&x)[10] = -INFINITY;
    dm_f32(&x)[11] = 70000.f;  /* overflows f16 to +inf */
    dm_f32(&x)[12] = -70000.f; /* -inf */
    const dm_dtype dts[2] = {DM_DTYPE_F16, DM_DTYPE_BF16};
    const tc_opts nf = {.match_nonfinite = 1};
    for (int di = 0; di < 2; di++) {
        gtensor dev, d32, d2;
        gt_alloc(&dev, dts[di], 1, n);
        CHECK_OK(dm_copy(g_gpu, &x, &dev.t)); /* host f32 -> device f16/bf16 */
        dm_tensor back = host_zeros(1, n), host_cast, want = host_zeros(1, n);
        CHECK_OK(dm_copy(g_gpu, &dev.t, &back)); /* device -> host with conversion to f32 */
        CHECK_OK(dm_tensor_alloc(&host_cast, dts[di], 1, n));
        CHECK_OK(dm_copy(g_cpu, &x, &host_cast));
        CHECK_OK(dm_copy(g_cpu, &host_cast, &want));
        char name[64];
        snprintf(name, sizeof name, "copy f32->%s->f32", dm_dtype_name(dts[di]));
        tc_compare_opts(name, dm_f32(&back), dm_f32(&want), n[0], 0.0, &nf, NULL); /* exact */
        /* device -> device conversion and a same-dtype device copy */
        gt_alloc(&d32, DM_DTYPE_F32, 1, n);
        gt_alloc(&d2, dts[di], 1, n);
        CHECK_OK(dm_copy(g_gpu, &dev.t, &d32.t));
        CHECK_OK(dm_copy(g_gpu, &dev.t, &d2.t));
        dm_tensor b2 = host_zeros(1, n), b3 = host_zeros(1, n);
        CHECK_OK(dm_copy(g_gpu, &d32.t, &b2));
        CHECK_OK(dm_copy(g_gpu, &d2.t, &b3));
        tc_compare_opts("copy device->device convert", dm_f32(&b2), dm_f32(&want), n[0], 0.0, &nf,
                        NULL);
        tc_compare_opts("copy device->device same", dm_f32(&b3), dm_f32(&want), n[0], 0.0, &nf,
                        NULL);
        gt_check(&dev, "copy upload");
        gt_check(&d32, "copy device->device convert");
        gt_check(&d2, "copy device->device same");
        gt_free(&dev);
        gt_free(&d32);
        gt_free(&d2);
        dm_tensor_free(&back);
        dm_tensor_free(&host_cast);
        dm_tensor_free(&want);
        dm_tensor_free(&b2);
        dm_tensor_free(&b3);
    }
    /* u8 frames up to f32 on the device */
    dm_tensor u8;
    int64_t un[1] = {256};
    CHECK_OK(dm_tensor_alloc(&u8, DM_DTYPE_U8, 1, un));
    for (int i = 0; i < 256; i++) ((uint8_t *)u8.data)[i] = (uint8_t)i;
    gtensor du;
    gt_alloc(&du, DM_DTYPE_F32, 1, un);
    dm_tensor hu = host_zeros(1, un), wu = host_zeros(1, un);
    CHECK_OK(dm_copy(g_gpu, &u8, &du.t));
    CHECK_OK(dm_copy(g_gpu, &du.t, &hu));
    for (int i = 0; i < 256; i++) dm_f32(&wu)[i] = (float)i;
    tc_compare("copy u8->f32", dm_f32(&hu), dm_f32(&wu), 256, 0.0, NULL);
    gt_check(&du, "copy u8->f32");
    gt_free(&du);
    dm_tensor_free(&u8);
    dm_tensor_free(&hu);
    dm_tensor_free(&wu);
    dm_tensor_free(&x);
}

/* Uploads back to back without a synchronisation in between: each host buffer is rewritten
 * right after its dm_copy returns, and uploads go through the backend's pinned staging ring.
 * If a staging buffer were reused before its copy had completed, or dm_copy returned before
 * the host source may be reused, some device tensor would hold another upload's values. */
static void special_upload(const op_case *c) {
    (void)c;
    enum { COUNT = 12 };
    const int64_t sizes[3] = {1000, 300000, 2500000}; /* around and above staging sizes */
    for (int si = 0; si < 3; si++) {
        const int64_t n[1] = {sizes[si]};
        for (int conv = 0; conv < 2; conv++) { /* same dtype (raw bytes) and f32 -> bf16 */
            const dm_dtype dt = conv ? DM_DTYPE_BF16 : DM_DTYPE_F32;
            gtensor d[COUNT];
            dm_tensor h = host_zeros(1, n);
            for (int k = 0; k < COUNT; k++) {
                for (int64_t i = 0; i < n[0]; i++) dm_f32(&h)[i] = (float)(k * 1000 + i % 997);
                gt_alloc(&d[k], dt, 1, n);
                CHECK_OK(dm_copy(g_gpu, &h, &d[k].t));
                /* the host source is overwritten at once: dm_copy must not read it later */
                for (int64_t i = 0; i < n[0]; i++) dm_f32(&h)[i] = -1.f;
            }
            int bad = 0;
            dm_tensor back = host_zeros(1, n);
            for (int k = 0; k < COUNT; k++) {
                CHECK_OK(dm_copy(g_gpu, &d[k].t, &back));
                for (int64_t i = 0; i < n[0] && !bad; i++)
                    if (dm_f32(&back)[i] != round_to((float)(k * 1000 + i % 997), dt)) {
                        printf("upload %lld elements %s: tensor %d element %lld is %g, want %g\n",
                               (long long)n[0], dm_dtype_name(dt), k, (long long)i,
                               dm_f32(&back)[i], round_to((float)(k * 1000 + i % 997), dt));
                        bad = 1;
                    }
                gt_check(&d[k], "upload");
                gt_free(&d[k]);
            }
            printf("upload %d x %lld elements f32 -> %s back to back: %s\n", COUNT,
                   (long long)n[0], dm_dtype_name(dt), bad ? "FAIL" : "PASS");
            if (bad) tc_failure_count++;
            dm_tensor_free(&back);
            dm_tensor_free(&h);
        }
    }
}

static void special_nonfinite(const op_case *c) {
    (void)c;
    int64_t n[1] = {100003};
    dm_tensor x = host_rand(1, n, 1.f, 0.f, DM_DTYPE_F32, 131u);
    dm_f32(&x)[0] = NAN;
    dm_f32(&x)[5000] = INFINITY;
    dm_f32(&x)[n[0] - 1] = -INFINITY;
    dm_f32(&x)[77777] = NAN;
    for (int pi = 0; pi < 3; pi++) {
        gtensor d;
        gt_alloc(&d, k_precs[pi], 1, n);
        CHECK_OK(dm_copy(g_gpu, &x, &d.t));
        int64_t count = -1;
        CHECK_OK(dm_count_nonfinite_now(g_gpu, &d.t, &count));
        printf("count_nonfinite %-4s: %lld (want 4)\n", dm_dtype_name(k_precs[pi]),
               (long long)count);
        CHECK(count == 4);
        gt_check(&d, "count_nonfinite");
        gt_free(&d);
    }
    dm_tensor_free(&x);
}

/* runtime.precision: a backend created with bf16 runs linear / conv2d / attention on f32
 * tensors in bf16 (tensor cores, f32 accumulation). Linear and attention results must be within
 * the bf16 tolerance of the f32 reference and outside the f32 one (else the precision had no
 * effect); the strict-f32 backend must stay within the f32 tolerance. */
static void special_precision(const op_case *c) {
    (void)c;
    dm_backend *bf = NULL;
    CHECK_OK(dm_backend_cuda_create(0, DM_DTYPE_BF16, &bf));
    if (!bf) return;
    CHECK(dm_backend_cuda_precision(bf) == DM_DTYPE_BF16);
    for (int op = 0; op < 2; op++) { /* linear (64, 384) x (256, 384)^T; attention (1, 2, 70, 64) */
        const int64_t xs[2] = {64, 384}, ws[2] = {256, 384}, ys[2] = {64, 256};
        const int64_t qs[4] = {1, 2, 70, 64};
        dm_tensor h[3], ref, got[2];
        const int nin = op ? 3 : 2;
        if (op) {
            for (int i = 0; i < 3; i++)
                h[i] = host_rand(4, qs, i < 2 ? 2.f : 1.f, 0.f, DM_DTYPE_F32, 201u + (unsigned)i);
            ref = host_zeros(4, qs);
            CHECK_OK(dm_attention(g_cpu, &h[0], &h[1], &h[2], 0.125f, &ref));
        } else {
            h[0] = host_rand(2, xs, 1.f, 0.f, DM_DTYPE_F32, 201u);
            h[1] = host_rand(2, ws, 0.09f, 0.f, DM_DTYPE_F32, 202u);
            ref = host_zeros(2, ys);
            CHECK_OK(dm_linear(g_cpu, &h[0], &h[1], NULL, DM_ACT_NONE, &ref));
        }
        dm_backend *bes[2] = {g_gpu, bf};
        for (int b = 0; b < 2; b++) {
            dm_tensor d[3], dy;
            for (int i = 0; i < nin; i++) {
                CHECK_OK(dm_alloc(bes[b], &d[i], DM_DTYPE_F32, h[i].ndim, h[i].shape));
                CHECK_OK(dm_copy(bes[b], &h[i], &d[i]));
            }
            CHECK_OK(dm_alloc(bes[b], &dy, DM_DTYPE_F32, ref.ndim, ref.shape));
            if (op)
                CHECK_OK(dm_attention(bes[b], &d[0], &d[1], &d[2], 0.125f, &dy));
            else
                CHECK_OK(dm_linear(bes[b], &d[0], &d[1], NULL, DM_ACT_NONE, &dy));
            got[b] = host_zeros(ref.ndim, ref.shape);
            CHECK_OK(dm_copy(bes[b], &dy, &got[b]));
            for (int i = 0; i < nin; i++) dm_cuda_tensor_free(&d[i]);
            dm_cuda_tensor_free(&dy);
        }
        const double scale = max_abs_finite(&ref);
        const char *name = op ? "attention" : "linear";
        char n32[64], n16[64];
        snprintf(n32, sizeof n32, "precision f32 backend %s", name);
        snprintf(n16, sizeof n16, "precision bf16 backend %s", name);
        tc_compare(n32, dm_f32(&got[0]), dm_f32(&ref), dm_tensor_numel(&ref),
                   tol_factor(DM_DTYPE_F32) * scale, NULL);
        tc_result r;
        tc_compare(n16, dm_f32(&got[1]), dm_f32(&ref), dm_tensor_numel(&ref),
                   tol_factor(DM_DTYPE_BF16) * scale, &r);
        printf("%s on f32 tensors: max_abs %.3e (must exceed the f32 tolerance %.3e: bf16 was "
               "used)\n", n16, r.max_abs, tol_factor(DM_DTYPE_F32) * scale);
        CHECK(r.max_abs > tol_factor(DM_DTYPE_F32) * scale);
        for (int i = 0; i < nin; i++) dm_tensor_free(&h[i]);
        dm_tensor_free(&ref);
        dm_tensor_free(&got[0]);
        dm_tensor_free(&got[1]);
    }
    dm_backend_destroy(bf);
}

/* Graph capture through the op table (depthmatte/graph.h; CUDA Graphs on CUDA, the recording
 * of -b emu): linear + GELU + layernorm captured once (after an eager run that sizes every
 * scratch buffer), replayed on new input values uploaded into the same tensor; the replay must
 * match the CPU ops on those values. A host upload inside a capture is refused. */
static void special_graph(const op_case *c) {
    (void)c;
    const int64_t xs[2] = {101, 384}, ws[2] = {384, 384}, bs[1] = {384};
    dm_tensor hx = host_rand(2, xs, 1.f, 0.f, DM_DTYPE_F32, 211u);
    dm_tensor hw = host_rand(2, ws, 0.09f, 0.f, DM_DTYPE_F32, 212u);
    dm_tensor hb = host_rand(1, bs, 0.1f, 0.f, DM_DTYPE_F32, 213u);
    dm_tensor dx, dw, db, dh, dy;
    CHECK_OK(dm_alloc(g_gpu, &dx, DM_DTYPE_F32, 2, xs));
    CHECK_OK(dm_alloc(g_gpu, &dw, DM_DTYPE_F32, 2, ws));
    CHECK_OK(dm_alloc(g_gpu, &db, DM_DTYPE_F32, 1, bs));
    CHECK_OK(dm_alloc(g_gpu, &dh, DM_DTYPE_F32, 2, xs));
    CHECK_OK(dm_alloc(g_gpu, &dy, DM_DTYPE_F32, 2, xs));
    CHECK_OK(dm_copy(g_gpu, &hx, &dx));
    CHECK_OK(dm_copy(g_gpu, &hw, &dw));
    CHECK_OK(dm_copy(g_gpu, &hb, &db));
    /* eager run: plans and scratch in place */
    CHECK_OK(dm_linear(g_gpu, &dx, &dw, &db, DM_ACT_GELU, &dh));
    CHECK_OK(dm_layernorm(g_gpu, &dh, &db, NULL, 1e-6f, &dy));
    CHECK_OK(dm_synchronize(g_gpu));
    dm_graph *graph = NULL;
    CHECK_OK(dm_graph_begin(g_gpu));
    CHECK(dm_graph_begin(g_gpu) == DM_ERR_ARG); /* nested */
    CHECK(dm_copy(g_gpu, &hx, &dx) == DM_ERR_BACKEND); /* no uploads inside a capture */
    printf("expected error: %s\n", dm_error_message());
    CHECK(dm_graph_end(g_gpu, &graph) == DM_ERR_BACKEND && graph == NULL); /* spoilt by it */
    CHECK_OK(dm_graph_begin(g_gpu));
    CHECK_OK(dm_linear(g_gpu, &dx, &dw, &db, DM_ACT_GELU, &dh));
    CHECK_OK(dm_layernorm(g_gpu, &dh, &db, NULL, 1e-6f, &dy));
    CHECK_OK(dm_graph_end(g_gpu, &graph));
    CHECK(graph != NULL);
    for (int round = 0; round < 2 && graph; round++) {
        /* before the second replay another model's larger op grows every scratch slot (one
         * backend serves all models of a rank): the graph holds the old addresses, which must
         * stay valid; the freed memory is taken and filled with NaN to make a stale read show */
        dm_tensor junk = {0};
        if (round && g_gpu->device == DM_DEVICE_CUDA) {
            const int64_t js[1] = {(int64_t)16 << 20};
            dm_tensor nan = host_zeros(1, js);
            memset(nan.data, 0xFF, dm_tensor_nbytes(&nan));
            CHECK_OK(dm_cuda_debug_grow_scratch(g_gpu, (size_t)96 << 20));
            CHECK_OK(dm_alloc(g_gpu, &junk, DM_DTYPE_F32, 1, js));
            if (junk.data) CHECK_OK(dm_copy(g_gpu, &nan, &junk));
            dm_tensor_free(&nan);
        }
        dm_tensor nx = host_rand(2, xs, 1.f, 0.f, DM_DTYPE_F32, 220u + (unsigned)round);
        dm_tensor rh = host_zeros(2, xs), ry = host_zeros(2, xs), got = host_zeros(2, xs);
        CHECK_OK(dm_linear(g_cpu, &nx, &hw, &hb, DM_ACT_GELU, &rh));
        CHECK_OK(dm_layernorm(g_cpu, &rh, &hb, NULL, 1e-6f, &ry));
        CHECK_OK(dm_copy(g_gpu, &nx, &dx));
        CHECK_OK(dm_graph_launch(g_gpu, graph));
        CHECK_OK(dm_copy(g_gpu, &dy, &got));
        tc_compare(round ? "graph replay 2 (scratch grown)" : "graph replay 1", dm_f32(&got),
                   dm_f32(&ry), dm_tensor_numel(&ry),
                   tol_factor(DM_DTYPE_F32) * max_abs_finite(&ry), NULL);
        dm_cuda_tensor_free(&junk);
        dm_tensor_free(&nx);
        dm_tensor_free(&rh);
        dm_tensor_free(&ry);
        dm_tensor_free(&got);
    }
    dm_graph_free(graph);
    graph = NULL;
    CHECK(dm_graph_end(g_gpu, &graph) == DM_ERR_ARG && graph == NULL); /* none running */
    dm_cuda_tensor_free(&dx);
    dm_cuda_tensor_free(&dw);
    dm_cuda_tensor_free(&db);
    dm_cuda_tensor_free(&dh);
    dm_cuda_tensor_free(&dy);
    dm_tensor_free(&hx);
    dm_tensor_free(&hw);
    dm_tensor_free(&hb);
}

/* defined after the table, which it walks */
static void special_conv_nhwc(const op_case *c);
static void special_conv_fused(const op_case *c);

static void special_device(const op_case *c) {
    (void)c;
    char name[256], uuid[64];
    size_t free_b = 0, total_b = 0;
    CHECK_OK(dm_cuda_device_name(0, name, sizeof name));
    CHECK_OK(dm_cuda_device_uuid(0, uuid, sizeof uuid));
    CHECK_OK(dm_cuda_device_memory(0, &free_b, &total_b));
    printf("device 0: %s, %s, %.1f / %.1f GiB free\n", name, uuid, free_b / 1073741824.0,
           total_b / 1073741824.0);
    CHECK(name[0] != '\0');
    CHECK(strncmp(uuid, "GPU-", 4) == 0 && strlen(uuid) == 40);
    CHECK(total_b > 0 && free_b > 0 && free_b <= total_b);
    CHECK(dm_cuda_device_name(1 << 20, name, sizeof name) == DM_ERR_ARG);
    CHECK(dm_backend_cuda_precision(g_gpu) == DM_DTYPE_F32);
    CHECK(dm_backend_cuda_stream(g_gpu) != NULL);
    /* shape errors are reported, not crashed on */
    int64_t xs[4] = {1, 4, 8, 8}, ws[4] = {4, 4, 3, 3}, bad[4] = {1, 4, 7, 7};
    dm_tensor x, w, y;
    CHECK_OK(dm_alloc(g_gpu, &x, DM_DTYPE_F32, 4, xs));
    CHECK_OK(dm_alloc(g_gpu, &w, DM_DTYPE_F32, 4, ws));
    CHECK_OK(dm_alloc(g_gpu, &y, DM_DTYPE_F32, 4, bad));
    dm_conv2d_params prm = dm_conv2d_params_make(1, 1, 1, DM_ACT_NONE);
    CHECK(dm_conv2d(g_gpu, &x, &w, NULL, &prm, &y) == DM_ERR_SHAPE);
    printf("expected error: %s\n", dm_error_message());
    dm_tensor hx = host_zeros(4, xs); /* a CPU tensor handed to a CUDA op */
    CHECK(dm_activation(g_gpu, &hx, DM_ACT_RELU, &x) == DM_ERR_UNSUPPORTED);
    CHECK_OK(dm_synchronize(g_gpu));
    dm_tensor_free(&hx);
    dm_cuda_tensor_free(&x);
    dm_cuda_tensor_free(&w);
    dm_cuda_tensor_free(&y);
}

/* ---- the table ------------------------------------------------------------------------------ */

#define A(...) .a = {__VA_ARGS__}
/* conv2d case plus its mixed-dtype twin (f16 x, f32 weight and bias, f32 output) */
#define CONV(what, ...)                                                                        \
    {"conv2d", what, setup_conv2d, call_conv2d, A(__VA_ARGS__)},                               \
    {"conv2d", what " mixed f16 x, f32 w/b/y", setup_conv2d, call_conv2d, A(__VA_ARGS__),      \
     .precs = P_F16, .mixed = IN_F32(1) | IN_F32(2) | OUT_F32(0)}
/* linear case plus f16/bf16 inputs straight into an f32 output */
/* the same with NaN, +inf and -inf in the bias (input 2): every output of those channels is
 * non-finite before the activation, so NaN and the sign of inf after it must agree with the CPU
 * op whatever the convolution algorithm (the fused cuDNN epilogue's non-finite rules) */
#define CONV_NF(what, ...)                                                                     \
    {"conv2d", what " NaN/inf bias", setup_conv2d, call_conv2d, A(__VA_ARGS__), .nonfinite = 3}, \
    {"conv2d", what " NaN/inf bias, mixed f16 x, f32 w/b/y", setup_conv2d, call_conv2d,        \
     A(__VA_ARGS__), .precs = P_F16, .mixed = IN_F32(1) | IN_F32(2) | OUT_F32(0), .nonfinite = 3}
#define LIN(what, ...)                                                                         \
    {"linear", what, setup_linear, call_linear, A(__VA_ARGS__)},                               \
    {"linear", what " ->f32 y", setup_linear, call_linear, A(__VA_ARGS__), .precs = P_HALF,    \
     .mixed = OUT_F32(0)}
#define ACT(name, act)                                                                         \
    {"activation", name, setup_activation, call_activation, A(4099, act)},                     \
    {"activation", name " NaN/inf", setup_activation, call_activation, A(4099, act),           \
     .nonfinite = 1}

static const op_case k_cases[] = {
    /* backend-level: copies and conversions, uploads, the NaN/Inf counter, precision, queries */
    {"guard", "overrun and underrun caught", .special = special_guard},
    {"device", "queries and errors", .special = special_device},
    {"copy", "conversions bit-exact", .special = special_copy},
    {"upload", "staging ring", .special = special_upload},
    {"count_nonfinite", "100003 elements", .special = special_nonfinite},
    {"precision", "bf16 backend: linear, attention on f32 tensors", .special = special_precision},
    {"graph", "capture + replay of linear/gelu/layernorm", .special = special_graph},
    {"conv2d_nhwc", "every conv2d case, NHWC path forced, f16 + bf16", .special = special_conv_nhwc},
    /* conv2d: the configurations of RVM's MobileNetV3/LR-ASPP/decoder and the DPT head;
     * a = {N, Cin, Cout, H, W, k, stride, pad, dilation, groups, bias, act} */
    CONV("3x3 bias relu (fused f32)", 2, 16, 32, 17, 19, 3, 1, 1, 1, 1, 1, DM_ACT_RELU),
    CONV("3x3 s2 bias hardswish", 1, 16, 24, 33, 31, 3, 2, 1, 1, 1, 1, DM_ACT_HARDSWISH),
    CONV("depthwise 5x5", 1, 24, 24, 20, 18, 5, 1, 2, 1, 24, 0, DM_ACT_NONE),
    CONV("depthwise dilated 3x3 d2", 1, 16, 16, 15, 15, 3, 1, 2, 2, 16, 1, DM_ACT_RELU),
    CONV("depthwise 3x3 s2 hardswish", 1, 72, 72, 32, 30, 3, 2, 1, 1, 72, 1, DM_ACT_HARDSWISH),
    CONV("1x1 bias hardsigmoid", 2, 40, 64, 9, 16, 1, 1, 0, 1, 1, 1, DM_ACT_HARDSIGMOID),
    CONV("grouped g4", 1, 32, 16, 12, 10, 3, 1, 1, 1, 4, 1, DM_ACT_SIGMOID),
    CONV("3x3 no bias none", 1, 3, 16, 37, 37, 3, 1, 1, 1, 1, 0, DM_ACT_NONE),
    /* RVM ResNet-50: 7x7 s2 p3 stem, strided 1x1 downsample, strided 3x3, layer4's dilated
     * dense 3x3 (d2 p2) on 1/16-sized maps */
    CONV("r50 stem 7x7 s2 p3 relu", 1, 3, 64, 37, 65, 7, 2, 3, 1, 1, 1, DM_ACT_RELU),
    CONV("r50 downsample 1x1 s2", 1, 64, 128, 19, 33, 1, 2, 0, 1, 1, 1, DM_ACT_NONE),
    CONV("r50 3x3 s2 relu", 1, 32, 32, 19, 33, 3, 2, 1, 1, 1, 1, DM_ACT_RELU),
    CONV("r50 dilated dense 3x3 d2", 1, 64, 64, 5, 8, 3, 1, 2, 2, 1, 1, DM_ACT_RELU),
    /* NaN / +inf / -inf in the bias: the fused activations (cuDNN's bias+ReLU with
     * CUDNN_PROPAGATE_NAN for f32, our epilogue kernel otherwise) must keep NaN as PyTorch
     * does (relu(NaN) = NaN, hardswish(-inf) = NaN), independent of the convolution algorithm */
    {"conv2d", "3x3 bias relu, NaN/inf bias", setup_conv2d, call_conv2d,
     A(2, 16, 32, 17, 19, 3, 1, 1, 1, 1, 1, DM_ACT_RELU), .nonfinite = 3},
    {"conv2d", "depthwise 3x3 s2 hardswish, NaN/inf bias", setup_conv2d, call_conv2d,
     A(1, 72, 72, 32, 30, 3, 2, 1, 1, 72, 1, DM_ACT_HARDSWISH), .nonfinite = 3},
    {"conv2d", "1x1 hardsigmoid, NaN/inf bias", setup_conv2d, call_conv2d,
     A(2, 40, 64, 9, 16, 1, 1, 0, 1, 1, 1, DM_ACT_HARDSIGMOID), .nonfinite = 3},
    /* fused epilogues (cuDNN graph: conv -> bias -> activation, src/nn/cuda/conv_fused.c): bias
     * with every activation the models' convolutions use, at their shapes: MobileNetV3 stem
     * (3 -> 16, s2, hardswish), depthwise 5x5 s1 / s2, squeeze-excite 1x1 convs on 1x1 maps
     * (relu, hardsigmoid), LR-ASPP 1x1 sigmoid, ConvGRU 3x3 (sigmoid gates, tanh candidate),
     * bias only (1x1 projections), GELU (no conv uses it; the chain maps it to cuDNN's erf
     * GELU_FWD); NaN/inf in the bias for each activation */
    CONV("fused stem 3x3 s2 hardswish", 1, 3, 16, 64, 48, 3, 2, 1, 1, 1, 1, DM_ACT_HARDSWISH),
    CONV("fused depthwise 5x5 relu", 1, 72, 72, 16, 12, 5, 1, 2, 1, 72, 1, DM_ACT_RELU),
    CONV("fused depthwise 5x5 s2 hardswish", 1, 96, 96, 16, 12, 5, 2, 2, 1, 96, 1,
         DM_ACT_HARDSWISH),
    CONV("fused depthwise dilated 3x3 d2 hardswish", 1, 40, 40, 11, 9, 3, 1, 2, 2, 40, 1,
         DM_ACT_HARDSWISH),
    CONV("fused SE 1x1 on 1x1 relu", 2, 96, 24, 1, 1, 1, 1, 0, 1, 1, 1, DM_ACT_RELU),
    CONV("fused SE 1x1 on 1x1 hardsigmoid", 2, 24, 96, 1, 1, 1, 1, 0, 1, 1, 1,
         DM_ACT_HARDSIGMOID),
    CONV("fused lraspp 1x1 sigmoid", 1, 96, 64, 6, 8, 1, 1, 0, 1, 1, 1, DM_ACT_SIGMOID),
    CONV("fused gru 3x3 sigmoid", 1, 80, 80, 12, 9, 3, 1, 1, 1, 1, 1, DM_ACT_SIGMOID),
    CONV("fused gru 3x3 tanh", 1, 80, 40, 12, 9, 3, 1, 1, 1, 1, 1, DM_ACT_TANH),
    CONV("fused 1x1 bias only", 1, 64, 32, 9, 16, 1, 1, 0, 1, 1, 1, DM_ACT_NONE),
    CONV("fused 3x3 s2 bias only", 1, 32, 48, 13, 17, 3, 2, 1, 1, 1, 1, DM_ACT_NONE),
    CONV("fused 3x3 gelu", 1, 16, 24, 10, 9, 3, 1, 1, 1, 1, 1, DM_ACT_GELU),
    CONV_NF("fused 3x3 none", 2, 16, 16, 9, 11, 3, 1, 1, 1, 1, 1, DM_ACT_NONE),
    CONV_NF("fused 3x3 relu", 2, 16, 16, 9, 11, 3, 1, 1, 1, 1, 1, DM_ACT_RELU),
    CONV_NF("fused 3x3 hardswish", 2, 16, 16, 9, 11, 3, 1, 1, 1, 1, 1, DM_ACT_HARDSWISH),
    CONV_NF("fused 3x3 hardsigmoid", 2, 16, 16, 9, 11, 3, 1, 1, 1, 1, 1, DM_ACT_HARDSIGMOID),
    CONV_NF("fused 3x3 sigmoid", 2, 16, 16, 9, 11, 3, 1, 1, 1, 1, 1, DM_ACT_SIGMOID),
    CONV_NF("fused 3x3 tanh", 2, 16, 16, 9, 11, 3, 1, 1, 1, 1, 1, DM_ACT_TANH),
    CONV_NF("fused 3x3 gelu", 2, 16, 16, 9, 11, 3, 1, 1, 1, 1, 1, DM_ACT_GELU),
    CONV_NF("fused depthwise 3x3 s2 hardswish", 1, 32, 32, 14, 10, 3, 2, 1, 1, 32, 1,
            DM_ACT_HARDSWISH),
    /* after the conv2d cases, so that the main backend's counters cover all of them */
    {"conv2d_fused", "every conv2d case with fusion off (DM_CUDNN_FUSED=0); fused-path counters",
     .special = special_conv_fused},
    /* conv_transpose2d: DPT's resize layers (k4 s4, k2 s2); a = {N, Cin, Cout, H, W, k, s, pad} */
    {"conv_transpose2d", "k4 s4 p0", setup_convt, call_convt, A(1, 48, 48, 9, 7, 4, 4, 0)},
    {"conv_transpose2d", "k2 s2 p0", setup_convt, call_convt, A(2, 32, 16, 6, 5, 2, 2, 0)},
    {"conv_transpose2d", "k3 s2 p1", setup_convt, call_convt, A(1, 8, 4, 5, 5, 3, 2, 1)},
    /* linear: ViT-S qkv / MLP, VDA GEGLU, an unaligned inner size; a = {B, T, K, N, bias, act};
     * the qkv shape twice: the second call takes the cached cuBLASLt plan */
    LIN("qkv bias", 1, 101, 384, 1152, 1, DM_ACT_NONE),
    {"linear", "qkv bias (cached plan)", setup_linear, call_linear,
     A(1, 101, 384, 1152, 1, DM_ACT_NONE)},
    LIN("fc1 bias gelu", 2, 37, 384, 1536, 1, DM_ACT_GELU),
    LIN("relu no bias", 3, 5, 64, 40, 0, DM_ACT_RELU),
    LIN("odd K N", 1, 33, 36, 20, 1, DM_ACT_TANH),
    /* NaN / +inf / -inf in the bias through the GEMM epilogue and the activation after it */
    {"linear", "relu, NaN/inf bias", setup_linear, call_linear, A(3, 5, 64, 40, 1, DM_ACT_RELU),
     .nonfinite = 3},
    {"linear", "gelu, NaN/inf bias", setup_linear, call_linear, A(2, 37, 384, 96, 1, DM_ACT_GELU),
     .nonfinite = 3},
    /* norms; layernorm a = {rows, C}, d[0] = mean offset; groupnorm a = {N, C, H, W, G} */
    {"layernorm", "plain", setup_layernorm, call_layernorm, A(101, 384)},
    {"layernorm", "mean-offset", setup_layernorm, call_layernorm, A(64, 384), .d = {20.0}},
    {"layernorm", "C1000", setup_layernorm, call_layernorm, A(7, 1000)},
    {"groupnorm", "G32", setup_groupnorm, call_groupnorm, A(3, 64, 5, 7, 32)},
    {"groupnorm", "G32 N32", setup_groupnorm, call_groupnorm, A(32, 192, 3, 5, 32)},
    {"groupnorm", "G4", setup_groupnorm, call_groupnorm, A(2, 16, 9, 9, 4)},
    /* N = 1 with large groups: the reduction split over several blocks per group */
    {"groupnorm", "G32 N1 48x80 (split)", setup_groupnorm, call_groupnorm, A(1, 64, 48, 80, 32)},
    {"groupnorm", "G8 N1 37x53 (split)", setup_groupnorm, call_groupnorm, A(1, 16, 37, 53, 8)},
    /* elementwise */
    ACT("none", DM_ACT_NONE),
    ACT("relu", DM_ACT_RELU),
    ACT("hardswish", DM_ACT_HARDSWISH),
    ACT("hardsigmoid", DM_ACT_HARDSIGMOID),
    ACT("sigmoid", DM_ACT_SIGMOID),
    ACT("tanh", DM_ACT_TANH),
    ACT("gelu", DM_ACT_GELU),
    {"activation", "gelu 2^20+3 (vector path)", setup_activation, call_activation,
     A((1 << 20) + 3, DM_ACT_GELU)},
    {"binary", "add", setup_binary, call_binary, A(DM_BINARY_ADD, 0)},
    {"binary", "sub", setup_binary, call_binary, A(DM_BINARY_SUB, 0)},
    {"binary", "mul", setup_binary, call_binary, A(DM_BINARY_MUL, 0)},
    {"binary", "add broadcast", setup_binary, call_binary, A(DM_BINARY_ADD, 1)},
    {"binary", "sub broadcast", setup_binary, call_binary, A(DM_BINARY_SUB, 1)},
    {"binary", "mul broadcast", setup_binary, call_binary, A(DM_BINARY_MUL, 1)},
    {"binary", "add NaN/inf in a", setup_binary, call_binary, A(DM_BINARY_ADD, 0),
     .nonfinite = 1},
    {"binary", "sub NaN/inf in b", setup_binary, call_binary, A(DM_BINARY_SUB, 0),
     .nonfinite = 2},
    {"binary", "mul broadcast NaN/inf in b", setup_binary, call_binary, A(DM_BINARY_MUL, 1),
     .nonfinite = 2},
    {"concat", "dim1", setup_concat, call_concat, A(2, 3, 4, 5, 7)},
    /* attention; a = {B, heads, Tq, Tk, D}. f16/bf16 take the tensor-core kernel, f32 the
     * CUDA-core one */
    {"attention", "DINOv2-S small image", setup_attention, call_attention, A(1, 6, 101, 101, 64)},
    {"attention", "DINOv2-S 518 (1370 tokens)", setup_attention, call_attention,
     A(1, 6, 1370, 1370, 64)},
    {"attention", "Tq != Tk, partial tiles", setup_attention, call_attention,
     A(2, 2, 33, 70, 64)},
    {"attention", "partial 64-query tiles", setup_attention, call_attention,
     A(1, 2, 130, 257, 64)},
    {"attention", "VDA motion module C=384 D48", setup_attention, call_attention,
     A(8, 8, 32, 32, 48)},
    {"attention", "VDA motion module C=192 D24", setup_attention, call_attention,
     A(15, 8, 32, 32, 24)},
    {"attention", "VDA motion module C=128 D16", setup_attention, call_attention,
     A(4, 8, 32, 32, 16)},
    {"attention", "VDA motion module C=64 D8", setup_attention, call_attention,
     A(60, 8, 32, 32, 8)},
    {"attention", "D128", setup_attention, call_attention, A(1, 1, 20, 45, 128)},
    {"attention", "tiny", setup_attention, call_attention, A(1, 1, 5, 3, 48)},
    /* packed qkv read directly (no permutes); a = {B, T, heads, D} */
    {"attention_qkv", "ViT-S 6x64, 101 tokens, B2", setup_attention_qkv, call_attention_qkv,
     A(2, 101, 6, 64)},
    {"attention_qkv", "ViT-S 6x64, 1370 tokens", setup_attention_qkv, call_attention_qkv,
     A(1, 1370, 6, 64)},
    {"attention_qkv", "8x24, 33 tokens", setup_attention_qkv, call_attention_qkv,
     A(3, 33, 8, 24)},
    /* resize of (2, 3, H, W); a = {H, W, Ho, Wo, mode, align_corners}, d = scales */
    {"resize", "bilinear up ac0", setup_resize, call_resize,
     A(9, 13, 20, 31, DM_RESIZE_BILINEAR, 0)},
    {"resize", "bilinear down ac0", setup_resize, call_resize,
     A(36, 64, 18, 32, DM_RESIZE_BILINEAR, 0)},
    {"resize", "bilinear ac1", setup_resize, call_resize,
     A(10, 17, 140, 140, DM_RESIZE_BILINEAR, 1)},
    {"resize", "bilinear scale 0.5", setup_resize, call_resize,
     A(45, 80, 22, 40, DM_RESIZE_BILINEAR, 0), .d = {0.5, 0.5}},
    {"resize", "bicubic pos-embed", setup_resize, call_resize,
     A(37, 37, 10, 10, DM_RESIZE_BICUBIC, 0), .d = {(10 + 0.1) / 37, (10 + 0.1) / 37}},
    {"resize", "bicubic up ac0", setup_resize, call_resize, A(7, 9, 16, 21, DM_RESIZE_BICUBIC, 0)},
    {"resize", "bicubic ac1", setup_resize, call_resize, A(7, 9, 16, 21, DM_RESIZE_BICUBIC, 1)},
    {"resize", "bilinear 518x518 -> 720x1280", setup_resize, call_resize,
     A(518, 518, 720, 1280, DM_RESIZE_BILINEAR, 0)},
    /* pooling; avgpool a = {H, W, k, s} */
    {"avgpool2d", "9x16 k2 s2", setup_avgpool, call_avgpool, A(9, 16, 2, 2)},
    {"avgpool2d", "18x31 k2 s2", setup_avgpool, call_avgpool, A(18, 31, 2, 2)},
    {"avgpool2d", "11x11 k3 s2", setup_avgpool, call_avgpool, A(11, 11, 3, 2)},
    {"global_avgpool2d", "9x23", setup_gap, call_gap, A(2, 12, 9, 23)},
    /* maxpool a = {H, W, k, s, pad}: the ResNet-50 stem (3x3 s2 p1) on even and odd sizes,
     * NaN / inf propagation */
    {"maxpool2d", "36x64 k3 s2 p1", setup_maxpool, call_maxpool, A(36, 64, 3, 2, 1)},
    {"maxpool2d", "9x5 k3 s2 p1", setup_maxpool, call_maxpool, A(9, 5, 3, 2, 1)},
    {"maxpool2d", "11x10 k5 s3 p2", setup_maxpool, call_maxpool, A(11, 10, 5, 3, 2)},
    {"maxpool2d", "13x17 k3 s2 p1 nonfinite", setup_maxpool, call_maxpool, A(13, 17, 3, 2, 1),
     .nonfinite = 1},
    {"channel_affine", "scale C + shift", setup_affine, call_affine, A(2, 12, 9, 23, 0)},
    {"channel_affine", "scale N*C", setup_affine, call_affine, A(2, 12, 9, 23, 1)},
    {"channel_affine", "shift", setup_affine, call_affine, A(2, 12, 9, 23, 2)},
    /* softmax over rows (backend helper, naive double reference) */
    {"softmax", "37x101", setup_softmax, call_softmax, A(37, 101)},
    {"softmax", "4x2000", setup_softmax, call_softmax, A(4, 2000)},
    /* permute; a = {ndim, shape[5], perm[5]} */
    {"permute", "4d", setup_permute, call_permute, A(4, 2, 3, 4, 5, 0, 0, 2, 3, 1)},
    {"permute", "5d", setup_permute, call_permute, A(5, 2, 5, 3, 4, 8, 2, 0, 3, 1, 4)},
    {"permute", "tokens (1, 1370, 384) -> (1, 384, 1370)", setup_permute, call_permute,
     A(3, 1, 1370, 384, 0, 0, 0, 2, 1)},
    /* DA-V2 / VDA network input from u8 frames; a = {N, H, W, h, w, arith} */
    {"image_cubic_normalize", "DA-V2 f64 270x480 -> 518x924", setup_cubic, call_cubic,
     A(1, 270, 480, 518, 924, DM_CUBIC_F64)},
    {"image_cubic_normalize", "DA-V2 f64 B3 37x53 -> 70x98", setup_cubic, call_cubic,
     A(3, 37, 53, 70, 98, DM_CUBIC_F64)},
    {"image_cubic_normalize", "DA-V2 f64 down 160x200 -> 42x56", setup_cubic, call_cubic,
     A(1, 160, 200, 42, 56, DM_CUBIC_F64)},
    {"image_cubic_normalize", "DA-V2 f64 equal size (copy)", setup_cubic, call_cubic,
     A(2, 28, 42, 28, 42, DM_CUBIC_F64)},
    {"image_cubic_normalize", "VDA f32 B2 45x80 -> 42x70", setup_cubic, call_cubic,
     A(2, 45, 80, 42, 70, DM_CUBIC_F32)},
    {"image_cubic_normalize", "VDA f32 270x480 -> 518x924", setup_cubic, call_cubic,
     A(1, 270, 480, 518, 924, DM_CUBIC_F32)},
    {"image_cubic_normalize", "VDA f32 equal size (copy)", setup_cubic, call_cubic,
     A(1, 14, 28, 14, 28, DM_CUBIC_F32)},
    /* RVM */
    {"image_from_u8", "rgb 2x17x29", setup_image, call_image, A(2, 17, 29)},
    {"guided_coeffs", "K4 9x16", setup_guided, call_guided, A(2, 4, 9, 16), .prep = prep_guided},
    {"matting_compose", "with a", setup_compose, call_compose, A(2, 9, 16, 36, 64, 1)},
    {"matting_compose", "no a", setup_compose, call_compose, A(2, 36, 64, 36, 64, 0)},
    /* "NaN stays NaN": NaN/inf in the coefficients b and in the source image */
    {"matting_compose", "NaN/inf in b", setup_compose, call_compose, A(2, 9, 16, 36, 64, 1),
     .nonfinite = 2},
    {"matting_compose", "no a, NaN/inf in src", setup_compose, call_compose,
     A(2, 36, 64, 36, 64, 0), .nonfinite = 3},
};
#define N_CASES ((int)(sizeof k_cases / sizeof k_cases[0]))
static const int k_ncases = N_CASES;

/* The NHWC convolution path (taken when cuDNN has no NCHW algorithm for an f16/bf16 grouped
 * convolution) forced on every conv2d case of the table, through a second backend created with
 * DM_CUDA_CONV_FORCE_NHWC=1. */
static void special_conv_nhwc(const op_case *c) {
    (void)c;
    setenv("DM_CUDA_CONV_FORCE_NHWC", "1", 1);
    dm_backend *nhwc = NULL;
    CHECK_OK(dm_backend_cuda_create(0, DM_DTYPE_F32, &nhwc));
    unsetenv("DM_CUDA_CONV_FORCE_NHWC");
    if (!nhwc) return;
    dm_backend *saved = g_gpu;
    g_gpu = nhwc;
    for (int i = 0; i < k_ncases; i++)
        if (!strcmp(k_cases[i].op, "conv2d") && !k_cases[i].mixed) {
            run_case(&k_cases[i], i, DM_DTYPE_F16);
            run_case(&k_cases[i], i, DM_DTYPE_BF16);
        }
    g_gpu = saved;
    dm_backend_destroy(nhwc);
}

/* The unfused path (our epilogue kernel after cuDNN's convolution) on every conv2d case,
 * through a second backend created with DM_CUDNN_FUSED=0, so that a mismatch of the fused
 * cases above is told apart from one of the convolution itself; then the counters of both:
 * fusion off must never run fused, and on the main backend (after the conv2d cases) the graph
 * path must have been tried (plans or declines, printed: how many shapes cuDNN fused). */
static void special_conv_fused(const op_case *c) {
    (void)c; /* (not run by the -b cpu / -b emu runners: CUDA only) */
    const char *env = getenv("DM_CUDNN_FUSED");
    const int caller_off = env && !strcmp(env, "0"); /* the whole run was started with it off */
    setenv("DM_CUDNN_FUSED", "0", 1);
    dm_backend *off = NULL;
    CHECK_OK(dm_backend_cuda_create(0, DM_DTYPE_F32, &off));
    if (!off) {
        if (!caller_off) unsetenv("DM_CUDNN_FUSED");
        return;
    }
    dm_backend *saved = g_gpu;
    g_gpu = off;
    for (int i = 0; i < k_ncases; i++)
        if (!strcmp(k_cases[i].op, "conv2d"))
            for (int pi = 0; pi < 3; pi++)
                if (!k_cases[i].precs || (k_cases[i].precs & (1u << k_precs[pi])))
                    run_case(&k_cases[i], i, k_precs[pi]);
    g_gpu = saved;
    dm_cuda_fused_stats so, sm;
    CHECK_OK(dm_cuda_conv_fused_stats(off, &so));
    if (!caller_off) unsetenv("DM_CUDNN_FUSED"); /* read at a backend's first convolution */
    printf("conv2d_fused off: enabled %d plans %lld declined %lld runs %lld fallbacks %lld\n",
           so.enabled, so.plans, so.declined, so.runs, so.fallbacks);
    CHECK(so.enabled == 0 && so.plans == 0 && so.runs == 0);
    dm_backend_destroy(off);
    /* the main backend: run the table's first fused case once more (relu f32: eligible
     * everywhere) so that its counters have seen a conv2d even under -o conv2d_fused */
    for (int i = 0; i < k_ncases; i++)
        if (!strcmp(k_cases[i].op, "conv2d") && k_cases[i].a[10] && !k_cases[i].mixed) {
            run_case(&k_cases[i], i, DM_DTYPE_F32);
            break;
        }
    CHECK_OK(dm_cuda_conv_fused_stats(g_gpu, &sm));
    printf("conv2d_fused on:  enabled %d plans %lld declined %lld runs %lld fallbacks %lld, "
           "%.2f s building plans\n",
           sm.enabled, sm.plans, sm.declined, sm.runs, sm.fallbacks, sm.build_s);
    if (sm.last_decline[0]) printf("conv2d_fused latest decline: %s\n", sm.last_decline);
    CHECK(caller_off ? sm.enabled == 0 && sm.runs == 0
                     : sm.enabled == 1 && sm.plans + sm.declined >= 1);
}

static void usage(void) {
    printf("usage: test_cuda_ops [-o OP[,OP...]] [-t f32|f16|bf16[,...]] [-l] [-h]\n"
           "  -o  run only these ops (table names, listed by -l)\n"
           "  -t  run only these precisions\n"
           "  -l  list the selected cases and exit\n");
}

int main(int argc, char **argv) {
    op_filter f;
    char err[256];
    if (op_filter_parse(argc, argv, &f, err, sizeof err)) {
        fprintf(stderr, "test_cuda_ops: %s\n", err);
        usage();
        return 2;
    }
    if (f.help) {
        usage();
        return 0;
    }
    const char *names[N_CASES];
    for (int i = 0; i < N_CASES; i++) names[i] = k_cases[i].op;
    int unknown = op_filter_unknown(&f, names, N_CASES);
    if (unknown >= 0) {
        fprintf(stderr, "test_cuda_ops: -o %s: no such op in the case table (see -l)\n",
                f.ops[unknown]);
        return 2;
    }
    if (f.list) {
        for (int i = 0; i < N_CASES; i++) {
            const op_case *c = &k_cases[i];
            if (!op_filter_op(&f, c->op)) continue;
            printf("%-18s %s", c->op, c->what);
            for (int pi = 0; pi < 3 && !c->special; pi++)
                if ((!c->precs || (c->precs & (1u << k_precs[pi]))) &&
                    op_filter_dtype(&f, k_precs[pi]))
                    printf(" %s", dm_dtype_name(k_precs[pi]));
            printf("\n");
        }
        return 0;
    }
    dm_status st;
    g_dut_cpu = f.backend != OP_FILTER_CUDA;
    g_dut_emu = f.backend == OP_FILTER_EMU;
    if (f.backend == OP_FILTER_CPU) {
        /* the CPU ops take f32 only: the half-precision and mixed cases and the CUDA-only
         * runners are left out (they need the GPU) */
        printf("test_cuda_ops -b cpu: runner self-check, f32 cases against a second CPU "
               "backend (no CUDA op runs here)\n");
        g_gpu = dm_backend_cpu_create(0);
        CHECK(g_gpu != NULL);
        f.dtypes = 1u << DM_DTYPE_F32;
    } else if (g_dut_emu) {
        printf("test_cuda_ops -b emu: runner self-check against the emulated device backend "
               "(f32 storage, outputs rounded to each precision%s%s; no CUDA op runs here)\n",
               f.perturb[0] ? ", fault injected into " : "", f.perturb);
        for (int pi = 0; pi < 3; pi++)
            if ((st = dm_backend_emu_create(0, k_precs[pi], f.perturb[0] ? f.perturb : NULL,
                                            &g_emu[pi]))) {
                fprintf(stderr, "dm_backend_emu_create: %s\n", dm_error_message());
                return 2;
            }
        g_gpu = g_emu[0];
    } else {
        int count = 0;
        st = dm_cuda_device_count(&count);
        if (st != DM_OK) return tc_skip(dm_error_message());
        if (count == 0)
            return tc_skip("no CUDA device visible (cudaGetDeviceCount = 0): GPU op tests "
                           "need a GPU machine, see docs/gpu.md (test_cuda_ops_cpu_runner "
                           "checks the runner itself on the CPU)");
        if ((st = dm_backend_cuda_create(0, DM_DTYPE_F32, &g_gpu))) {
            fprintf(stderr, "dm_backend_cuda_create: %s\n", dm_error_message());
            return 1;
        }
    }
    g_cpu = dm_backend_cpu_create(0);
    CHECK(g_cpu != NULL);
    int ran = 0, nfailed_ops = 0, verdict_bad = 0;
    const char *failed_ops[N_CASES]; /* distinct op names with a failure, for the rerun line */
    for (int i = 0; i < N_CASES; i++) {
        const op_case *c = &k_cases[i];
        const int failures_before = tc_failure_count;
        if (!op_filter_op(&f, c->op)) continue;
        if (g_dut_cpu && (c->mixed || c->call == call_softmax || /* CUDA-only helpers */
                          (c->special && c->special != special_guard &&
                           !(c->special == special_graph && dm_backend_supports_graphs(g_gpu)))))
            continue;
        if (c->special) {
            c->special(c);
            ran++;
            if (tc_failure_count > failures_before) failed_ops[nfailed_ops++] = c->op;
            continue;
        }
        for (int pi = 0; pi < 3; pi++) {
            const dm_dtype p = k_precs[pi];
            if ((c->precs && !(c->precs & (1u << p))) || !op_filter_dtype(&f, p)) continue;
            run_case(c, i, p);
            ran++;
        }
        if (f.perturb[0]) { /* -P: exactly the perturbed op's cases must fail */
            const int failed = tc_failure_count > failures_before, want = !strcmp(c->op, f.perturb);
            if (failed != want) {
                printf("*** fault check: %s %s %s with op %s perturbed ***\n", c->op, c->what,
                       failed ? "FAILED" : "PASSED (the fault went unnoticed)", f.perturb);
                verdict_bad++;
            }
            tc_failure_count = failures_before;
            continue;
        }
        if (tc_failure_count > failures_before) {
            int seen = 0;
            for (int j = 0; j < nfailed_ops && !seen; j++) seen = !strcmp(failed_ops[j], c->op);
            if (!seen) failed_ops[nfailed_ops++] = c->op;
        }
    }
    if (g_dut_emu) {
        for (int pi = 0; pi < 3; pi++) dm_backend_destroy(g_emu[pi]);
    } else {
        dm_backend_destroy(g_gpu);
    }
    dm_backend_destroy(g_cpu);
    if (ran == 0) {
        fprintf(stderr, "test_cuda_ops: the filter selected no case\n");
        return 2;
    }
    if (g_skipped_ops)
        printf("\n*** %d case(s) SKIPPED: CPU reference missing ***\n", g_skipped_ops);
    if (f.perturb[0]) {
        printf("%s: fault in %s: %d case run(s), %d with the wrong verdict\n",
               verdict_bad ? "FAIL" : "PASS", f.perturb, ran, verdict_bad);
        return verdict_bad != 0;
    }
    if (nfailed_ops) { /* a short GPU session reruns just these */
        printf("rerun the failed ops: test_cuda_ops -o ");
        for (int j = 0; j < nfailed_ops; j++) printf("%s%s", j ? "," : "", failed_ops[j]);
        printf("\n");
    }
    printf("%s: %d case run(s), %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", ran,
           tc_failure_count);
    return tc_failure_count != 0;
}
