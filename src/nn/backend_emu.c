/* The emulated device backend (include/depthmatte/backend_emu.h): CPU reference ops on host
 * memory marked DM_DEVICE_EMU, device rules enforced, optional reduced-precision rounding and
 * fault injection. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_emu.h"
#include "depthmatte/copy_async.h"
#include "nn/cpu/cpu_ops.h"

typedef enum emu_fault { FAULT_NONE = 0, FAULT_PERTURB, FAULT_NAN, FAULT_NAN_ALWAYS } emu_fault;

/* A queued download (dm_copy_async): the value src had at the call, converted to dst's dtype,
 * delivered into dst at the wait. */
typedef struct emu_dl {
    uint64_t id;         /* ticket id; 0: free record */
    unsigned char *dst;  /* host destination, poisoned (0xFF) until the wait */
    size_t bytes;
    unsigned char *snap; /* the value at the call (grown, reused by later downloads) */
    size_t cap;
} emu_dl;

typedef struct emu_ctx {
    dm_backend *cpu; /* the reference backend doing the arithmetic (threads, scratch) */
    dm_op_id fault_op;
    emu_fault fault;
    size_t alloc_host, alloc_device; /* bytes allocated so far (dm_backend_emu_memory) */
    int64_t allocs; /* alloc op calls (device allocations) since creation */
    int64_t op_calls; /* ops run or recorded (copies included, allocations not) */
    int64_t launches; /* graph launches */
    /* graph capture (graph_begin .. graph_end): ops are appended to rec, not run */
    int capturing, capture_failed;
    struct emu_rec *rec;
    int nrec, caprec;
    /* asynchronous downloads (dm_copy_async): pending records, statistics */
    emu_dl *dl;
    int ndl;
    uint64_t dl_seq;
    dm_emu_copy_stats dl_stats;
} emu_ctx;

/* One recorded op: its tensors copied by value (a CUDA graph bakes in the pointers and shapes
 * it was given, not the caller's structs) and every parameter by value. */
typedef struct emu_rec {
    dm_op_id op;
    dm_tensor t[5];
    unsigned char has[5]; /* t[i] given (optional arguments may be NULL) */
    dm_conv2d_params conv;
    dm_image_norm_params norm;
    int iv[DM_MAX_DIMS]; /* integer parameters (k, s, pad, heads, act, mode, ...; perm) */
    float fv;
    double dv[2];
} emu_rec;

/* The recording a graph replays. */
typedef struct emu_graph {
    emu_rec *rec;
    int nrec;
} emu_graph;

static emu_ctx *ctx_of(const dm_backend *be) {
    return (emu_ctx *)be->impl;
}

/* Counts one op (run, recorded or replayed); also counted when a download is pending at the
 * time: work that a device overlaps with that download (dm_emu_copy_stats.ops_overlapped). */
static void count_op(dm_backend *be) {
    emu_ctx *c = ctx_of(be);
    c->op_calls++;
    for (int i = 0; i < c->ndl; i++)
        if (c->dl[i].id) {
            c->dl_stats.ops_overlapped++;
            break;
        }
}

/* An argument must be a tensor of this device (or absent when optional). */
static dm_status on_device(const dm_tensor *t, const char *op, const char *arg, int optional) {
    if (!t || !t->data) {
        if (optional) return DM_OK;
        return dm_error_set(DM_ERR_ARG, "%s: %s is NULL", op, arg);
    }
    if (t->device != DM_DEVICE_EMU)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: %s is not a tensor of the emulated device "
                            "(a %s tensor: upload it first)", op, arg,
                            t->device == DM_DEVICE_CPU ? "host" : "foreign device");
    return DM_OK;
}

/* The same tensor as the CPU ops see it (host memory, device CPU). */
static dm_tensor host(const dm_tensor *t) {
    dm_tensor h;
    if (!t) {
        memset(&h, 0, sizeof h);
        return h;
    }
    h = *t;
    h.device = DM_DEVICE_CPU;
    h.owns_data = 0;
    return h;
}

static float round_to(dm_dtype p, float v) {
    if (p == DM_DTYPE_F16) return dm_f16_to_f32(dm_f32_to_f16(v));
    if (p == DM_DTYPE_BF16) return dm_bf16_to_f32(dm_f32_to_bf16(v));
    return v;
}

static int narrow(dm_dtype t) {
    return t == DM_DTYPE_F16 || t == DM_DTYPE_BF16;
}

/* ---- staging: the CPU ops take f32; tensors stored in f16/bf16 are widened around them ----
 *
 * Every op argument goes through an emu_stage: an f32 tensor (and a u8 one) is passed to the
 * CPU op as it is (its memory, viewed as host memory); an f16/bf16 tensor is widened into a
 * temporary f32 copy, and an output's copy is narrowed back (round to nearest even) after the
 * op, which is what storing a result in that dtype does on CUDA. Inputs of the tensor-core ops
 * (linear, convolutions, attention: STAGE_COMPUTE) stored in f32 are rounded to the precision
 * first, as the CUDA backend converts such operands to its compute dtype (cuda_compute_dtype,
 * cuda_as_dtype); biases are not (CUDA adds them in the output's dtype). */
#define EMU_MAXT 6
enum { STAGE_IN = 0, STAGE_COMPUTE = 1, STAGE_OUT = 2 };

typedef struct emu_stage {
    dm_tensor h[EMU_MAXT];        /* what the CPU op sees */
    const dm_tensor *dev[EMU_MAXT]; /* the device tensor behind h[i] */
    unsigned char out[EMU_MAXT], tmp[EMU_MAXT]; /* an output; h[i].data is a temporary */
    int n;
    dm_status err;
} emu_stage;

static void widen(const dm_tensor *t, float *dst, int64_t n, dm_dtype round) {
    const uint16_t *v = (const uint16_t *)t->data;
    if (t->dtype == DM_DTYPE_F16)
        for (int64_t i = 0; i < n; i++) dst[i] = dm_f16_to_f32(v[i]);
    else if (t->dtype == DM_DTYPE_BF16)
        for (int64_t i = 0; i < n; i++) dst[i] = dm_bf16_to_f32(v[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = round_to(round, ((const float *)t->data)[i]);
}

/* The host view of t for the CPU op (NULL for an absent optional argument). `mode`:
 * STAGE_IN, STAGE_COMPUTE (round f32 storage to the precision), STAGE_OUT (an output: its
 * current contents are staged too, for ops that accumulate or write part of it). */
static dm_tensor *stage(const dm_backend *be, emu_stage *s, const dm_tensor *t, int mode) {
    if (!t) return NULL;
    if (s->n == EMU_MAXT) {
        s->err = dm_error_set(DM_ERR_ARG, "emulated backend: too many op arguments");
        return NULL;
    }
    const int i = s->n++;
    dm_tensor *h = &s->h[i];
    *h = host(t);
    s->dev[i] = t;
    s->out[i] = mode == STAGE_OUT;
    const int round = mode == STAGE_COMPUTE && t->dtype == DM_DTYPE_F32 &&
                      be->precision != DM_DTYPE_F32;
    if (!t->data || (!narrow(t->dtype) && !round)) return h;
    const int64_t n = dm_tensor_numel(t);
    float *f = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!f) {
        s->err = dm_error_set(DM_ERR_NOMEM, "emulated backend: out of memory (staging)");
        h->data = NULL;
        return h;
    }
    widen(t, f, n, round ? be->precision : DM_DTYPE_F32);
    h->data = f;
    h->dtype = DM_DTYPE_F32;
    h->capacity = (size_t)n * sizeof(float);
    s->tmp[i] = 1;
    return h;
}

static void stage_release(emu_stage *s) {
    for (int i = 0; i < s->n; i++)
        if (s->tmp[i]) free(s->h[i].data);
    s->n = 0;
}

/* After an op: each output rounded to the precision when the op computes in it
 * (`round_out`: the convolutions, which write through a compute-dtype buffer on CUDA), the
 * injected fault applied to the first output, the narrow outputs stored back; temporaries
 * freed. */
static dm_status finish(dm_backend *be, emu_stage *s, dm_op_id op, dm_status st,
                        int round_out) {
    const emu_ctx *c = ctx_of(be);
    int first = 1;
    for (int i = 0; i < s->n && !st; i++) {
        if (!s->out[i] || !s->h[i].data || s->h[i].dtype != DM_DTYPE_F32) continue;
        float *v = (float *)s->h[i].data;
        const int64_t n = dm_tensor_numel(&s->h[i]);
        if (round_out && be->precision != DM_DTYPE_F32)
            for (int64_t k = 0; k < n; k++) v[k] = round_to(be->precision, v[k]);
        if (first && c->fault != FAULT_NONE && c->fault_op == op && n > 0) {
            if (c->fault == FAULT_PERTURB) {
                float mx = 0.f;
                for (int64_t k = 0; k < n; k++) mx = fmaxf(mx, fabsf(v[k]));
                const float d = 0.05f * (mx > 0.f ? mx : 1.f);
                for (int64_t k = 0; k < n; k += 3) v[k] += d;
            } else if (c->fault == FAULT_NAN_ALWAYS || be->precision != DM_DTYPE_F32) {
                v[n / 2] = NAN;
            }
        }
        first = 0;
        if (s->tmp[i]) { /* store back in the tensor's dtype */
            const dm_tensor *t = s->dev[i];
            uint16_t *d = (uint16_t *)t->data;
            if (t->dtype == DM_DTYPE_F16)
                for (int64_t k = 0; k < n; k++) d[k] = dm_f32_to_f16(v[k]);
            else
                for (int64_t k = 0; k < n; k++) d[k] = dm_f32_to_bf16(v[k]);
        }
    }
    stage_release(s);
    return st;
}

/* Stages the listed arguments (declared by the caller) and returns on a staging failure. */
#define STAGED(s) \
    if ((s).err) { \
        stage_release(&(s)); \
        return (s).err; \
    }

/* A refusal inside a capture: what a CUDA stream capture cannot hold. The capture is spoiled
 * (graph_end fails), as an illegal call invalidates a CUDA capture. */
static dm_status refuse(dm_backend *be, const char *what) {
    ctx_of(be)->capture_failed = 1;
    return dm_error_set(DM_ERR_BACKEND, "emulated backend: %s during graph capture (run it "
                        "before the capture, or outside the graph)", what);
}

/* During a capture: appends op with its tensors ts[0..n) (NULL = absent) copied by value and
 * returns the record for the caller's parameters; NULL (and the capture spoiled) on OOM. */
static emu_rec *rec_add(dm_backend *be, dm_op_id op, const dm_tensor *const *ts, int n) {
    emu_ctx *c = ctx_of(be);
    if (c->nrec == c->caprec) {
        const int cap = c->caprec ? 2 * c->caprec : 256;
        emu_rec *r = realloc(c->rec, sizeof *r * (size_t)cap);
        if (!r) {
            c->capture_failed = 1;
            dm_error_set(DM_ERR_NOMEM, "emulated backend: graph recording out of memory");
            return NULL;
        }
        c->rec = r;
        c->caprec = cap;
    }
    emu_rec *r = &c->rec[c->nrec++];
    memset(r, 0, sizeof *r);
    r->op = op;
    for (int i = 0; i < n; i++)
        if (ts[i]) {
            r->t[i] = *ts[i];
            r->t[i].owns_data = 0;
            r->has[i] = 1;
        }
    return r;
}

#define TS(...) \
    (const dm_tensor *const[]){__VA_ARGS__}, \
        (int)(sizeof((const dm_tensor *const[]){__VA_ARGS__}) / sizeof(const dm_tensor *))

/* Counts the op; while capturing, records it (tensors ...) and leaves the block's parameter
 * statements to fill `r`, then returns. */
#define CAPTURE(op_id, ...) \
    emu_rec *r = NULL; \
    count_op(be); \
    if (ctx_of(be)->capturing && !(r = rec_add(be, op_id, TS(__VA_ARGS__)))) return DM_ERR_NOMEM; \
    if (r)

#define DEV(t, name) \
    if ((st = on_device(t, opn, name, 0))) return st
#define DEV_OPT(t, name) \
    if ((st = on_device(t, opn, name, 1))) return st

static dm_status conv2d_emu(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                            const dm_tensor *b, const dm_conv2d_params *p, dm_tensor *y) {
    const char *opn = "conv2d";
    dm_status st;
    DEV(x, "x");
    DEV(w, "w");
    DEV_OPT(b, "b");
    DEV(y, "y");
    CAPTURE(DM_OP_CONV2D, x, w, b, y) {
        r->conv = *p;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_COMPUTE), *hw = stage(be, &s, w, STAGE_COMPUTE),
              *hb = stage(be, &s, b, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = conv2d_cpu(ctx_of(be)->cpu, hx, hw, hb, p, hy);
    return finish(be, &s, DM_OP_CONV2D, st, 1);
}

static dm_status conv_transpose2d_emu(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                                      const dm_tensor *b, int stride, int pad, dm_tensor *y) {
    const char *opn = "conv_transpose2d";
    dm_status st;
    DEV(x, "x");
    DEV(w, "w");
    DEV_OPT(b, "b");
    DEV(y, "y");
    CAPTURE(DM_OP_CONV_TRANSPOSE2D, x, w, b, y) {
        r->iv[0] = stride, r->iv[1] = pad;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_COMPUTE), *hw = stage(be, &s, w, STAGE_COMPUTE),
              *hb = stage(be, &s, b, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = conv_transpose2d_cpu(ctx_of(be)->cpu, hx, hw, hb, stride, pad, hy);
    return finish(be, &s, DM_OP_CONV_TRANSPOSE2D, st, 1);
}

static dm_status linear_emu(dm_backend *be, const dm_tensor *x, const dm_tensor *w,
                            const dm_tensor *b, dm_act act, dm_tensor *y) {
    const char *opn = "linear";
    dm_status st;
    DEV(x, "x");
    DEV(w, "w");
    DEV_OPT(b, "b");
    DEV(y, "y");
    CAPTURE(DM_OP_LINEAR, x, w, b, y) {
        r->iv[0] = (int)act;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_COMPUTE), *hw = stage(be, &s, w, STAGE_COMPUTE),
              *hb = stage(be, &s, b, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = linear_cpu(ctx_of(be)->cpu, hx, hw, hb, act, hy);
    return finish(be, &s, DM_OP_LINEAR, st, 0);
}

static dm_status layernorm_emu(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                               const dm_tensor *beta, float eps, dm_tensor *y) {
    const char *opn = "layernorm";
    dm_status st;
    DEV(x, "x");
    DEV_OPT(gamma, "gamma");
    DEV_OPT(beta, "beta");
    DEV(y, "y");
    CAPTURE(DM_OP_LAYERNORM, x, gamma, beta, y) {
        r->fv = eps;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_IN), *hg = stage(be, &s, gamma, STAGE_IN),
              *hb = stage(be, &s, beta, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = layernorm_cpu(ctx_of(be)->cpu, hx, hg, hb, eps, hy);
    return finish(be, &s, DM_OP_LAYERNORM, st, 0);
}

static dm_status groupnorm_emu(dm_backend *be, const dm_tensor *x, int groups,
                               const dm_tensor *gamma, const dm_tensor *beta, float eps,
                               dm_tensor *y) {
    const char *opn = "groupnorm";
    dm_status st;
    DEV(x, "x");
    DEV_OPT(gamma, "gamma");
    DEV_OPT(beta, "beta");
    DEV(y, "y");
    CAPTURE(DM_OP_GROUPNORM, x, gamma, beta, y) {
        r->iv[0] = groups, r->fv = eps;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_IN), *hg = stage(be, &s, gamma, STAGE_IN),
              *hb = stage(be, &s, beta, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = groupnorm_cpu(ctx_of(be)->cpu, hx, groups, hg, hb, eps, hy);
    return finish(be, &s, DM_OP_GROUPNORM, st, 0);
}

static dm_status activation_emu(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y) {
    const char *opn = "activation";
    dm_status st;
    DEV(x, "x");
    DEV(y, "y");
    CAPTURE(DM_OP_ACTIVATION, x, y) {
        r->iv[0] = (int)act;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = activation_cpu(ctx_of(be)->cpu, hx, act, hy);
    return finish(be, &s, DM_OP_ACTIVATION, st, 0);
}

static dm_status binary_emu(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                            dm_binary_op op, dm_tensor *y) {
    const char *opn = "binary";
    dm_status st;
    DEV(a, "a");
    DEV(b, "b");
    DEV(y, "y");
    CAPTURE(DM_OP_BINARY, a, b, y) {
        r->iv[0] = (int)op;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *ha = stage(be, &s, a, STAGE_IN), *hb = stage(be, &s, b, STAGE_IN),
              *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = binary_cpu(ctx_of(be)->cpu, ha, hb, op, hy);
    return finish(be, &s, DM_OP_BINARY, st, 0);
}

static dm_status attention_emu(dm_backend *be, const dm_tensor *q, const dm_tensor *k,
                               const dm_tensor *v, float scale, dm_tensor *o) {
    const char *opn = "attention";
    dm_status st;
    DEV(q, "q");
    DEV(k, "k");
    DEV(v, "v");
    DEV(o, "o");
    CAPTURE(DM_OP_ATTENTION, q, k, v, o) {
        r->fv = scale;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hq = stage(be, &s, q, STAGE_COMPUTE), *hk = stage(be, &s, k, STAGE_COMPUTE),
              *hv = stage(be, &s, v, STAGE_COMPUTE), *ho = stage(be, &s, o, STAGE_OUT);
    STAGED(s);
    st = attention_cpu(ctx_of(be)->cpu, hq, hk, hv, scale, ho);
    return finish(be, &s, DM_OP_ATTENTION, st, 0);
}

static dm_status resize_emu(dm_backend *be, const dm_tensor *x, dm_resize_mode mode,
                            int align_corners, double scale_h, double scale_w, dm_tensor *y) {
    const char *opn = "resize";
    dm_status st;
    DEV(x, "x");
    DEV(y, "y");
    CAPTURE(DM_OP_RESIZE, x, y) {
        r->iv[0] = (int)mode, r->iv[1] = align_corners, r->dv[0] = scale_h, r->dv[1] = scale_w;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = resize_cpu(ctx_of(be)->cpu, hx, mode, align_corners, scale_h, scale_w, hy);
    return finish(be, &s, DM_OP_RESIZE, st, 0);
}

static dm_status avgpool2d_emu(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y) {
    const char *opn = "avgpool2d";
    dm_status st;
    DEV(x, "x");
    DEV(y, "y");
    CAPTURE(DM_OP_AVGPOOL2D, x, y) {
        r->iv[0] = k, r->iv[1] = s;
        return DM_OK;
    }
    emu_stage sg = {0};
    dm_tensor *hx = stage(be, &sg, x, STAGE_IN), *hy = stage(be, &sg, y, STAGE_OUT);
    STAGED(sg);
    st = avgpool2d_cpu(ctx_of(be)->cpu, hx, k, s, hy);
    return finish(be, &sg, DM_OP_AVGPOOL2D, st, 0);
}

static dm_status global_avgpool2d_emu(dm_backend *be, const dm_tensor *x, dm_tensor *y) {
    const char *opn = "global_avgpool2d";
    dm_status st;
    DEV(x, "x");
    DEV(y, "y");
    CAPTURE(DM_OP_GLOBAL_AVGPOOL2D, x, y) return DM_OK;
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = global_avgpool2d_cpu(ctx_of(be)->cpu, hx, hy);
    return finish(be, &s, DM_OP_GLOBAL_AVGPOOL2D, st, 0);
}

static dm_status maxpool2d_emu(dm_backend *be, const dm_tensor *x, int k, int s, int pad,
                               dm_tensor *y) {
    const char *opn = "maxpool2d";
    dm_status st;
    DEV(x, "x");
    DEV(y, "y");
    CAPTURE(DM_OP_MAXPOOL2D, x, y) {
        r->iv[0] = k, r->iv[1] = s, r->iv[2] = pad;
        return DM_OK;
    }
    emu_stage sg = {0};
    dm_tensor *hx = stage(be, &sg, x, STAGE_IN), *hy = stage(be, &sg, y, STAGE_OUT);
    STAGED(sg);
    st = maxpool2d_cpu(ctx_of(be)->cpu, hx, k, s, pad, hy);
    return finish(be, &sg, DM_OP_MAXPOOL2D, st, 0);
}

static dm_status attention_qkv_emu(dm_backend *be, const dm_tensor *qkv, int heads,
                                   float scale, dm_tensor *o) {
    const char *opn = "attention_qkv";
    dm_status st;
    DEV(qkv, "qkv");
    DEV(o, "o");
    CAPTURE(DM_OP_ATTENTION_QKV, qkv, o) {
        r->iv[0] = heads, r->fv = scale;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hq = stage(be, &s, qkv, STAGE_COMPUTE), *ho = stage(be, &s, o, STAGE_OUT);
    STAGED(s);
    st = attention_qkv_cpu(ctx_of(be)->cpu, hq, heads, scale, ho);
    return finish(be, &s, DM_OP_ATTENTION_QKV, st, 0);
}

/* rgb is a u8 tensor of the device (the uploaded frame), as on CUDA. */
static dm_status image_cubic_normalize_emu(dm_backend *be, const dm_tensor *rgb,
                                           const dm_image_norm_params *p, dm_tensor *y) {
    const char *opn = "image_cubic_normalize";
    dm_status st;
    DEV(rgb, "rgb");
    DEV(y, "y");
    CAPTURE(DM_OP_IMAGE_CUBIC_NORMALIZE, rgb, y) {
        r->norm = *p;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hr = stage(be, &s, rgb, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = image_cubic_normalize_cpu(ctx_of(be)->cpu, hr, p, hy);
    return finish(be, &s, DM_OP_IMAGE_CUBIC_NORMALIZE, st, 0);
}

/* Counted on the tensor's memory (the emulated device's) into a counter there, as CUDA counts
 * in device memory; a device op, so a capture records it (as CUDA graphs hold the kernel). */
static dm_status count_nonfinite_emu(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                                     int accumulate) {
    const char *opn = "count_nonfinite";
    dm_status st;
    DEV(t, "t");
    DEV(count, "count");
    CAPTURE(DM_OP_COUNT_NONFINITE, t, count) {
        r->iv[0] = accumulate;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *ht = stage(be, &s, t, STAGE_IN);
    STAGED(s);
    dm_tensor hc = host(count);
    st = count_nonfinite_cpu(ctx_of(be)->cpu, ht, &hc, accumulate);
    stage_release(&s);
    return st;
}

static dm_status channel_affine_emu(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                                    const dm_tensor *shift, dm_tensor *y) {
    const char *opn = "channel_affine";
    dm_status st;
    DEV(x, "x");
    DEV_OPT(scale, "scale");
    DEV_OPT(shift, "shift");
    DEV(y, "y");
    CAPTURE(DM_OP_CHANNEL_AFFINE, x, scale, shift, y) return DM_OK;
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_IN), *hs = stage(be, &s, scale, STAGE_IN),
              *hh = stage(be, &s, shift, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = channel_affine_cpu(ctx_of(be)->cpu, hx, hs, hh, hy);
    return finish(be, &s, DM_OP_CHANNEL_AFFINE, st, 0);
}

/* rgb is a host tensor on every backend (backend.h). */
static dm_status image_from_u8_emu(dm_backend *be, const dm_tensor *rgb, dm_tensor *y) {
    const char *opn = "image_from_u8";
    dm_status st;
    DEV(y, "y");
    count_op(be);
    if (ctx_of(be)->capturing) return refuse(be, "image_from_u8 (an upload of a host frame)");
    emu_stage s = {0};
    dm_tensor *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = image_from_u8_cpu(ctx_of(be)->cpu, rgb, hy);
    return finish(be, &s, DM_OP_IMAGE_FROM_U8, st, 0);
}

static dm_status guided_coeffs_emu(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                                   dm_tensor *b) {
    const char *opn = "guided_coeffs";
    dm_status st;
    DEV(m, "m");
    DEV(a, "a");
    DEV(b, "b");
    CAPTURE(DM_OP_GUIDED_COEFFS, m, a, b) {
        r->fv = eps;
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hm = stage(be, &s, m, STAGE_IN), *ha = stage(be, &s, a, STAGE_OUT),
              *hb = stage(be, &s, b, STAGE_OUT);
    STAGED(s);
    st = guided_coeffs_cpu(ctx_of(be)->cpu, hm, eps, ha, hb);
    return finish(be, &s, DM_OP_GUIDED_COEFFS, st, 0);
}

static dm_status matting_compose_emu(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                                     const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha) {
    const char *opn = "matting_compose";
    dm_status st;
    DEV_OPT(a, "a");
    DEV(b, "b");
    DEV(src, "src");
    DEV_OPT(fgr, "fgr");
    DEV(pha, "pha");
    CAPTURE(DM_OP_MATTING_COMPOSE, a, b, src, fgr, pha) return DM_OK;
    emu_stage s = {0};
    /* pha first: the injected fault goes to the first output */
    dm_tensor *hp = stage(be, &s, pha, STAGE_OUT), *ha = stage(be, &s, a, STAGE_IN),
              *hb = stage(be, &s, b, STAGE_IN), *hs = stage(be, &s, src, STAGE_IN),
              *hf = stage(be, &s, fgr, STAGE_OUT);
    STAGED(s);
    st = matting_compose_cpu(ctx_of(be)->cpu, ha, hb, hs, hf, hp);
    return finish(be, &s, DM_OP_MATTING_COMPOSE, st, 0);
}

static dm_status permute_emu(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y) {
    const char *opn = "permute";
    dm_status st;
    DEV(x, "x");
    DEV(y, "y");
    CAPTURE(DM_OP_PERMUTE, x, y) {
        for (int i = 0; i < x->ndim; i++) r->iv[i] = perm[i];
        return DM_OK;
    }
    emu_stage s = {0};
    dm_tensor *hx = stage(be, &s, x, STAGE_IN), *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = permute_cpu(ctx_of(be)->cpu, hx, perm, hy);
    return finish(be, &s, DM_OP_PERMUTE, st, 0);
}

static dm_status concat_emu(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                            dm_tensor *y) {
    const char *opn = "concat";
    dm_status st;
    DEV(a, "a");
    DEV(b, "b");
    DEV(y, "y");
    CAPTURE(DM_OP_CONCAT, a, b, y) return DM_OK;
    emu_stage s = {0};
    dm_tensor *ha = stage(be, &s, a, STAGE_IN), *hb = stage(be, &s, b, STAGE_IN),
              *hy = stage(be, &s, y, STAGE_OUT);
    STAGED(s);
    st = concat_cpu(ctx_of(be)->cpu, ha, hb, hy);
    return finish(be, &s, DM_OP_CONCAT, st, 0);
}

/* Copies between any pair of host and emulated tensors (with dtype conversion); values
 * entering an f16/bf16 tensor are rounded to it (an upload in reduced precision), an f32 tensor
 * keeps them as they are, as on CUDA. */
static dm_status copy_emu(dm_backend *be, const dm_tensor *src, dm_tensor *dst) {
    if (!src || !dst || !src->data || !dst->data)
        return dm_error_set(DM_ERR_ARG, "copy: NULL tensor");
    for (int i = 0; i < 2; i++) {
        const dm_tensor *t = i ? dst : src;
        if (t->device != DM_DEVICE_EMU && t->device != DM_DEVICE_CPU)
            return dm_error_set(DM_ERR_UNSUPPORTED, "copy: the emulated backend copies host "
                                "and emulated tensors only");
    }
    if (ctx_of(be)->capturing) {
        if (src->device != DM_DEVICE_EMU || dst->device != DM_DEVICE_EMU)
            return refuse(be, "a host<->device copy");
        count_op(be);
        return rec_add(be, DM_OP_COPY, TS(src, dst)) ? DM_OK : DM_ERR_NOMEM;
    }
    count_op(be);
    dm_tensor hs = host(src), hd = host(dst);
    dm_status st = copy_cpu(ctx_of(be)->cpu, &hs, &hd); /* converts: f16/bf16 storage rounds */
    const emu_ctx *c = ctx_of(be);
    if (st || dst->device != DM_DEVICE_EMU || src->device == DM_DEVICE_EMU ||
        c->fault == FAULT_NONE || c->fault_op != DM_OP_COPY)
        return st;
    emu_stage s = {0}; /* an upload with the injected fault of "copy" */
    stage(be, &s, dst, STAGE_OUT);
    STAGED(s);
    return finish(be, &s, DM_OP_COPY, st, 0);
}

static dm_status alloc_emu(dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim,
                           const int64_t *shape) {
    if (ctx_of(be)->capturing) return refuse(be, "a device allocation");
    ctx_of(be)->allocs++;
    dm_status st = dm_tensor_alloc(t, dtype, ndim, shape);
    if (st) return st;
    t->device = DM_DEVICE_EMU;
    emu_ctx *c = ctx_of(be);
    c->alloc_host += t->capacity;
    c->alloc_device += dm_tensor_nbytes(t); /* what CUDA allocates for it (no rounding up) */
    return st;
}

/* Waits for nothing (the ops ran already) but is refused inside a capture, as on CUDA. */
static dm_status synchronize_emu(dm_backend *be) {
    return ctx_of(be)->capturing ? refuse(be, "a synchronisation") : DM_OK;
}

/* ---- asynchronous downloads (depthmatte/copy_async.h), emulated faithfully --------------
 * The value is taken at the call (what stream order gives a device's copy: the work queued
 * before it is done, later ops may overwrite src), dst is filled with 0xFF bytes (a NaN in
 * every float dtype) and handed the value only at the wait, where it must still hold the
 * poison: a host read before the wait sees NaN, a host write before the wait is an error, a
 * second download into a pending destination is refused. */

#define EMU_POISON 0xFF

static int dl_pending(const emu_ctx *c) {
    int n = 0;
    for (int i = 0; i < c->ndl; i++) n += c->dl[i].id != 0;
    return n;
}

static dm_status copy_async_emu(dm_backend *be, const dm_tensor *src, dm_tensor *dst,
                                dm_copy_ticket *ticket) {
    emu_ctx *c = ctx_of(be);
    const char *opn = "copy_async";
    dm_status st;
    if (c->capturing) return refuse(be, "an asynchronous download (dm_copy_async)");
    DEV(src, "src");
    const size_t bytes = dm_tensor_nbytes(dst);
    unsigned char *d = dst->data;
    for (int i = 0; i < c->ndl; i++) {
        const emu_dl *p = &c->dl[i];
        if (p->id && d < p->dst + p->bytes && p->dst < d + bytes)
            return dm_error_set(DM_ERR_ARG, "copy_async: the host destination is still that of "
                                "download %llu (reused before dm_copy_wait)",
                                (unsigned long long)p->id);
    }
    emu_dl *r = NULL;
    for (int i = 0; i < c->ndl && !r; i++)
        if (!c->dl[i].id) r = &c->dl[i];
    if (!r) {
        emu_dl *g = realloc(c->dl, sizeof *g * (size_t)(c->ndl + 1));
        if (!g) return dm_error_set(DM_ERR_NOMEM, "emulated backend: out of memory");
        c->dl = g;
        r = &c->dl[c->ndl++];
        memset(r, 0, sizeof *r);
    }
    if (r->cap < bytes) {
        unsigned char *b = realloc(r->snap, bytes ? bytes : 1);
        if (!b) return dm_error_set(DM_ERR_NOMEM, "emulated backend: out of memory");
        r->snap = b;
        r->cap = bytes;
    }
    dm_tensor hs = host(src), snap = *dst;
    snap.data = r->snap;
    snap.capacity = r->cap;
    snap.owns_data = 0;
    count_op(be);
    if ((st = copy_cpu(c->cpu, &hs, &snap))) return st;
    memset(d, EMU_POISON, bytes);
    r->id = ++c->dl_seq;
    r->dst = d;
    r->bytes = bytes;
    ticket->id = r->id;
    ticket->slot = (int)(r - c->dl);
    c->dl_stats.enqueued++;
    const int n = dl_pending(c);
    if (n > c->dl_stats.max_pending) c->dl_stats.max_pending = n;
    return DM_OK;
}

/* Delivers every pending download up to the ticket, oldest first (tickets complete in order). */
static dm_status copy_wait_emu(dm_backend *be, dm_copy_ticket *ticket) {
    emu_ctx *c = ctx_of(be);
    if (c->capturing) return refuse(be, "a wait for a download (dm_copy_wait)");
    dm_status st = DM_OK;
    int done = 0;
    for (;;) {
        emu_dl *r = NULL;
        for (int i = 0; i < c->ndl; i++)
            if (c->dl[i].id && c->dl[i].id <= ticket->id && (!r || c->dl[i].id < r->id))
                r = &c->dl[i];
        if (!r) break;
        size_t k = 0;
        while (k < r->bytes && r->dst[k] == EMU_POISON) k++;
        if (k < r->bytes && !st) {
            c->dl_stats.early_writes++;
            st = dm_error_set(DM_ERR_ARG, "copy_wait: the host destination of download %llu was "
                              "written before dm_copy_wait (byte %zu of %zu)",
                              (unsigned long long)r->id, k, r->bytes);
        }
        memcpy(r->dst, r->snap, r->bytes);
        r->id = 0;
        done = 1;
    }
    if (done) c->dl_stats.waits++;
    return st;
}

/* ---- graphs: record during the capture, replay the record on launch -------------------- */

static dm_status graph_begin_emu(dm_backend *be) {
    emu_ctx *c = ctx_of(be);
    if (c->capturing) return dm_error_set(DM_ERR_ARG, "emulated backend: already capturing");
    c->capturing = 1;
    c->capture_failed = 0;
    c->nrec = 0;
    return DM_OK;
}

static dm_status graph_end_emu(dm_backend *be, void **impl) {
    emu_ctx *c = ctx_of(be);
    *impl = NULL;
    if (!c->capturing) return dm_error_set(DM_ERR_ARG, "emulated backend: no capture running");
    c->capturing = 0;
    if (c->capture_failed)
        return dm_error_set(DM_ERR_BACKEND, "emulated backend: graph capture failed (an op "
                            "inside the capture allocated, copied to or from the host, "
                            "synchronised or failed)");
    emu_graph *g = calloc(1, sizeof *g);
    if (!g) return dm_error_set(DM_ERR_NOMEM, "emulated backend: out of memory");
    g->nrec = c->nrec;
    g->rec = c->nrec ? malloc(sizeof *g->rec * (size_t)c->nrec) : NULL;
    if (c->nrec && !g->rec) {
        free(g);
        return dm_error_set(DM_ERR_NOMEM, "emulated backend: out of memory");
    }
    if (c->nrec) memcpy(g->rec, c->rec, sizeof *g->rec * (size_t)c->nrec);
    c->nrec = 0;
    *impl = g;
    return DM_OK;
}

/* One recorded op, run now through the same entry as an eager call (rounding and faults
 * included). */
static dm_status replay_one(dm_backend *be, emu_rec *r) {
#define T(i) (r->has[i] ? &r->t[i] : NULL)
    switch (r->op) {
    case DM_OP_CONV2D: return conv2d_emu(be, T(0), T(1), T(2), &r->conv, T(3));
    case DM_OP_CONV_TRANSPOSE2D:
        return conv_transpose2d_emu(be, T(0), T(1), T(2), r->iv[0], r->iv[1], T(3));
    case DM_OP_LINEAR: return linear_emu(be, T(0), T(1), T(2), (dm_act)r->iv[0], T(3));
    case DM_OP_LAYERNORM: return layernorm_emu(be, T(0), T(1), T(2), r->fv, T(3));
    case DM_OP_GROUPNORM: return groupnorm_emu(be, T(0), r->iv[0], T(1), T(2), r->fv, T(3));
    case DM_OP_ACTIVATION: return activation_emu(be, T(0), (dm_act)r->iv[0], T(1));
    case DM_OP_BINARY: return binary_emu(be, T(0), T(1), (dm_binary_op)r->iv[0], T(2));
    case DM_OP_ATTENTION: return attention_emu(be, T(0), T(1), T(2), r->fv, T(3));
    case DM_OP_RESIZE:
        return resize_emu(be, T(0), (dm_resize_mode)r->iv[0], r->iv[1], r->dv[0], r->dv[1], T(1));
    case DM_OP_AVGPOOL2D: return avgpool2d_emu(be, T(0), r->iv[0], r->iv[1], T(1));
    case DM_OP_GLOBAL_AVGPOOL2D: return global_avgpool2d_emu(be, T(0), T(1));
    case DM_OP_MAXPOOL2D: return maxpool2d_emu(be, T(0), r->iv[0], r->iv[1], r->iv[2], T(1));
    case DM_OP_ATTENTION_QKV: return attention_qkv_emu(be, T(0), r->iv[0], r->fv, T(1));
    case DM_OP_IMAGE_CUBIC_NORMALIZE: return image_cubic_normalize_emu(be, T(0), &r->norm, T(1));
    case DM_OP_CHANNEL_AFFINE: return channel_affine_emu(be, T(0), T(1), T(2), T(3));
    case DM_OP_GUIDED_COEFFS: return guided_coeffs_emu(be, T(0), r->fv, T(1), T(2));
    case DM_OP_MATTING_COMPOSE: return matting_compose_emu(be, T(0), T(1), T(2), T(3), T(4));
    case DM_OP_PERMUTE: return permute_emu(be, T(0), r->iv, T(1));
    case DM_OP_CONCAT: return concat_emu(be, T(0), T(1), T(2));
    case DM_OP_COPY: return copy_emu(be, T(0), T(1));
    case DM_OP_COUNT_NONFINITE: return count_nonfinite_emu(be, T(0), T(1), r->iv[0]);
    default: break;
    }
#undef T
    return dm_error_set(DM_ERR_ARG, "emulated backend: op %s cannot be replayed",
                        dm_op_name(r->op));
}

static dm_status graph_launch_emu(dm_backend *be, void *impl) {
    emu_ctx *c = ctx_of(be);
    emu_graph *g = impl;
    if (c->capturing) return refuse(be, "a graph launch");
    c->launches++;
    for (int i = 0; i < g->nrec; i++) {
        dm_status st = replay_one(be, &g->rec[i]);
        if (st) return st;
    }
    return DM_OK;
}

static void graph_free_emu(dm_backend *be, void *impl) {
    (void)be;
    emu_graph *g = impl;
    if (!g) return;
    free(g->rec);
    free(g);
}

/* The CPU ops take f32; f16/bf16 tensors are staged around them (stage, finish). The answer
 * is the CUDA backend's (dtypes and shape limits: dm_cuda_supports_op), so that a shape a GPU
 * would refuse is refused here too. */
static int supports_emu(const dm_backend *be, const dm_op_desc *d, char *why, size_t size) {
    (void)be;
    return dm_cuda_supports_op(d, why, size);
}

static void destroy_emu(dm_backend *be) {
    emu_ctx *c = ctx_of(be);
    if (!c) return;
    dm_backend_destroy(c->cpu);
    free(c->rec);
    for (int i = 0; i < c->ndl; i++) free(c->dl[i].snap);
    free(c->dl);
    free(c);
    be->impl = NULL;
}

static const dm_backend_ops emu_ops = {
    .name = "emulated",
    .supports = supports_emu,
    .conv2d = conv2d_emu,
    .conv_transpose2d = conv_transpose2d_emu,
    .linear = linear_emu,
    .layernorm = layernorm_emu,
    .groupnorm = groupnorm_emu,
    .activation = activation_emu,
    .binary = binary_emu,
    .attention = attention_emu,
    .resize = resize_emu,
    .avgpool2d = avgpool2d_emu,
    .global_avgpool2d = global_avgpool2d_emu,
    .channel_affine = channel_affine_emu,
    .image_from_u8 = image_from_u8_emu,
    .guided_coeffs = guided_coeffs_emu,
    .matting_compose = matting_compose_emu,
    .permute = permute_emu,
    .concat = concat_emu,
    .copy = copy_emu,
    .alloc = alloc_emu,
    .maxpool2d = maxpool2d_emu,
    .attention_qkv = attention_qkv_emu,
    .image_cubic_normalize = image_cubic_normalize_emu,
    .count_nonfinite = count_nonfinite_emu,
    .synchronize = synchronize_emu,
    .destroy = destroy_emu,
    .graph_begin = graph_begin_emu,
    .graph_end = graph_end_emu,
    .graph_launch = graph_launch_emu,
    .graph_free = graph_free_emu,
    .copy_async = copy_async_emu,
    .copy_wait = copy_wait_emu,
};

static dm_status parse_fault(const char *spec, emu_ctx *c) {
    c->fault = FAULT_NONE;
    if (!spec || !spec[0]) return DM_OK;
    char name[64];
    size_t n = strcspn(spec, ":");
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, spec, n);
    name[n] = '\0';
    const char *kind = spec[n] == ':' ? spec + n + 1 : "";
    int found = -1;
    for (int op = 0; op < DM_OP_COUNT; op++)
        if (!strcmp(name, dm_op_name((dm_op_id)op))) found = op;
    if (found < 0)
        return dm_error_set(DM_ERR_ARG, "emulated backend: unknown op '%s' in fault '%s'", name,
                            spec);
    c->fault_op = (dm_op_id)found;
    if (!kind[0])
        c->fault = FAULT_PERTURB;
    else if (!strcmp(kind, "nan"))
        c->fault = FAULT_NAN;
    else if (!strcmp(kind, "nan-always"))
        c->fault = FAULT_NAN_ALWAYS;
    else
        return dm_error_set(DM_ERR_ARG, "emulated backend: fault kind '%s' (expected nothing, "
                            "'nan' or 'nan-always')", kind);
    return DM_OK;
}

void dm_backend_emu_memory(const dm_backend *be, size_t *host_bytes, size_t *device_bytes) {
    const int emu = be && be->ops == &emu_ops && be->impl;
    if (host_bytes) *host_bytes = emu ? ctx_of(be)->alloc_host : 0;
    if (device_bytes) *device_bytes = emu ? ctx_of(be)->alloc_device : 0;
}

dm_status dm_backend_emu_create(int threads, dm_dtype precision, const char *perturb,
                                dm_backend **out) {
    *out = NULL;
    if (precision != DM_DTYPE_F32 && precision != DM_DTYPE_F16 && precision != DM_DTYPE_BF16)
        return dm_error_set(DM_ERR_ARG, "emulated backend: precision %s (expected f32, f16 or "
                            "bf16)", dm_dtype_name(precision));
    emu_ctx *c = calloc(1, sizeof *c);
    dm_backend *be = calloc(1, sizeof *be);
    if (!c || !be) {
        free(c);
        free(be);
        return dm_error_set(DM_ERR_NOMEM, "emulated backend: out of memory");
    }
    dm_status st = parse_fault(perturb, c);
    if (!st && !(c->cpu = dm_backend_cpu_create(threads)))
        st = dm_error_set(DM_ERR_NOMEM, "emulated backend: out of memory");
    if (st) {
        free(c);
        free(be);
        return st;
    }
    be->ops = &emu_ops;
    be->device = DM_DEVICE_EMU;
    be->precision = precision;
    be->storage = precision; /* as CUDA: weights and activations stored in the precision */
    be->threads = c->cpu->threads;
    be->impl = c;
    *out = be;
    return DM_OK;
}

int64_t dm_backend_emu_alloc_count(const dm_backend *be) {
    if (!be || be->ops != &emu_ops || !be->impl) return -1;
    return ctx_of(be)->allocs;
}

int64_t dm_backend_emu_op_count(const dm_backend *be) {
    if (!be || be->ops != &emu_ops || !be->impl) return -1;
    return ctx_of(be)->op_calls;
}

int64_t dm_backend_emu_launch_count(const dm_backend *be) {
    if (!be || be->ops != &emu_ops || !be->impl) return -1;
    return ctx_of(be)->launches;
}

void dm_backend_emu_copy_stats(const dm_backend *be, dm_emu_copy_stats *out) {
    memset(out, 0, sizeof *out);
    if (!be || be->ops != &emu_ops || !be->impl) return;
    *out = ctx_of(be)->dl_stats;
    out->pending = dl_pending(ctx_of(be));
}
