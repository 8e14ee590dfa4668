/* The shape-aware "supports" query (include/depthmatte/backend.h: dm_op_desc, op traces) and
 * the CUDA backend's limits (include/depthmatte/backend_cuda.h: dm_cuda_supports_op), which are
 * plain C so that every build, with or without CUDA, tests them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend.h"
#include "depthmatte/backend_cuda.h"

void dm_op_desc_of(dm_op_desc *d, const dm_backend *be, dm_op_id op, const dm_tensor *const *ts,
                   int n, const int *iv, int niv) {
    memset(d, 0, sizeof *d);
    d->op = op;
    d->dtype = dm_backend_storage_dtype(be);
    if (n > DM_OP_MAX_OPERANDS) n = DM_OP_MAX_OPERANDS;
    if (niv > DM_OP_MAX_PARAMS) niv = DM_OP_MAX_PARAMS;
    d->n = n;
    for (int i = 0; i < n; i++) {
        const dm_tensor *t = ts[i];
        if (!t) continue;
        d->t[i].present = 1;
        d->t[i].dtype = t->dtype;
        d->t[i].ndim = t->ndim < 0 ? 0 : (t->ndim > DM_MAX_DIMS ? DM_MAX_DIMS : t->ndim);
        memcpy(d->t[i].shape, t->shape, sizeof(int64_t) * (size_t)d->t[i].ndim);
    }
    for (int i = 0; i < niv; i++) d->iv[i] = iv[i];
}

/* Appends printf output at buf + *len (bounded; *len stops at size - 1). */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
    if (*len + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    const int k = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (k > 0) *len = (size_t)k >= size - *len ? size - 1 : *len + (size_t)k;
}

char *dm_op_desc_format(const dm_op_desc *d, char *buf, size_t size) {
    if (!buf || !size) return buf;
    buf[0] = '\0';
    size_t len = 0;
    append(buf, size, &len, "%s %s", dm_op_name(d->op), dm_dtype_name(d->dtype));
    for (int i = 0; i < d->n; i++) {
        const dm_op_operand *o = &d->t[i];
        if (!o->present) {
            append(buf, size, &len, " -");
            continue;
        }
        append(buf, size, &len, " (");
        for (int k = 0; k < o->ndim; k++)
            append(buf, size, &len, k ? ", %lld" : "%lld", (long long)o->shape[k]);
        append(buf, size, &len, ")");
        if (o->dtype != d->dtype) append(buf, size, &len, "%s", dm_dtype_name(o->dtype));
    }
    int last = -1;
    for (int i = 0; i < DM_OP_MAX_PARAMS; i++)
        if (d->iv[i]) last = i;
    if (last >= 0) {
        append(buf, size, &len, " [");
        for (int i = 0; i <= last; i++) append(buf, size, &len, i ? ", %d" : "%d", d->iv[i]);
        append(buf, size, &len, "]");
    }
    return buf;
}

/* ---- traces ------------------------------------------------------------------------------- */

void dm_backend_trace(dm_backend *be, dm_op_trace *t) {
    if (be) be->trace = t;
}

void dm_op_trace_free(dm_op_trace *t) {
    if (!t) return;
    free(t->desc);
    free(t->calls);
    memset(t, 0, sizeof *t);
}

/* Exact equality of two descriptors (padding-free comparison field by field). */
static int desc_equal(const dm_op_desc *a, const dm_op_desc *b) {
    if (a->op != b->op || a->dtype != b->dtype || a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        const dm_op_operand *x = &a->t[i], *y = &b->t[i];
        if (x->present != y->present) return 0;
        if (!x->present) continue;
        if (x->dtype != y->dtype || x->ndim != y->ndim) return 0;
        for (int k = 0; k < x->ndim; k++)
            if (x->shape[k] != y->shape[k]) return 0;
    }
    for (int i = 0; i < DM_OP_MAX_PARAMS; i++)
        if (a->iv[i] != b->iv[i]) return 0;
    return 1;
}

/* Adds d to trace t (counts a call of an existing entry). */
static void trace_add(dm_op_trace *t, const dm_op_desc *d) {
    for (int i = t->n - 1; i >= 0; i--)
        if (desc_equal(&t->desc[i], d)) {
            t->calls[i]++;
            return;
        }
    if (t->n == t->cap) {
        const int cap = t->cap ? 2 * t->cap : 64;
        dm_op_desc *nd = realloc(t->desc, sizeof *nd * (size_t)cap);
        if (nd) t->desc = nd;
        int64_t *nc = nd ? realloc(t->calls, sizeof *nc * (size_t)cap) : NULL;
        if (nc) t->calls = nc;
        if (!nd || !nc) {
            t->nomem = 1;
            return;
        }
        t->cap = cap;
    }
    t->desc[t->n] = *d;
    t->calls[t->n++] = 1;
}

/* ---- the query ---------------------------------------------------------------------------- */

int dm_backend_supports_op(const dm_backend *be, const dm_op_desc *d, char *why, size_t size) {
    if (why && size) why[0] = '\0';
    if (!be || !d || d->op < 0 || d->op >= DM_OP_COUNT) {
        if (why && size) snprintf(why, size, "no backend or no such op");
        return 0;
    }
    if (!dm_backend_has_op(be, d->op)) {
        if (why && size) snprintf(why, size, "%s: not implemented", dm_op_name(d->op));
        return 0;
    }
    if (be->ops->supports) return be->ops->supports(be, d, why, size) != 0;
    /* the CPU reference: f32 storage, any shape (its ops check their own arguments) */
    if (d->dtype != DM_DTYPE_F32 && d->op != DM_OP_COPY && d->op != DM_OP_ALLOC) {
        if (why && size)
            snprintf(why, size, "%s: dtype %s (the %s backend computes f32 only)",
                     dm_op_name(d->op), dm_dtype_name(d->dtype), be->ops->name);
        return 0;
    }
    return 1;
}

dm_status dm_op_gate(dm_backend *be, dm_op_id op, const dm_tensor *const *ts, int n,
                     const int *iv, int niv) {
    if (!be->ops->supports && !be->trace) return DM_OK; /* the CPU reference, untraced */
    dm_op_desc d;
    dm_op_desc_of(&d, be, op, ts, n, iv, niv);
    if (be->trace) trace_add(be->trace, &d);
    if (!be->ops->supports) return DM_OK;
    char why[256];
    if (be->ops->supports(be, &d, why, sizeof why)) return DM_OK;
    char what[512];
    return dm_error_set(DM_ERR_UNSUPPORTED, "backend %s does not run %s: %s", be->ops->name,
                        dm_op_desc_format(&d, what, sizeof what), why);
}

/* An operand's dtype on the asked backend: the tracing backend's storage dtype becomes the asked
 * backend's; every other dtype (f32 residual streams, u8 frames, i64 counts) stays. */
static dm_dtype retarget(dm_dtype dt, dm_dtype traced_storage, dm_dtype storage) {
    return dt == traced_storage ? storage : dt;
}

int dm_op_trace_check(const dm_backend *be, const dm_op_trace *t, dm_dtype traced_storage,
                      char *why, size_t size) {
    if (why && size) why[0] = '\0';
    if (!t || t->nomem) {
        if (why && size) snprintf(why, size, "incomplete trace (out of memory while tracing)");
        return 0;
    }
    const dm_dtype storage = dm_backend_storage_dtype(be);
    for (int i = 0; i < t->n; i++) {
        dm_op_desc d = t->desc[i];
        d.dtype = storage;
        for (int k = 0; k < d.n; k++)
            if (d.t[k].present) d.t[k].dtype = retarget(d.t[k].dtype, traced_storage, storage);
        char reason[256];
        if (!dm_backend_supports_op(be, &d, reason, sizeof reason)) {
            if (why && size) {
                char what[512];
                snprintf(why, size, "%s: %s", dm_op_desc_format(&d, what, sizeof what), reason);
            }
            return 0;
        }
    }
    return 1;
}

/* ---- the CUDA backend's limits ------------------------------------------------------------ */

#define I32_MAX 0x7fffffffLL

static int refuse(char *why, size_t size, const char *fmt, ...) {
    if (why && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static int is_float(dm_dtype t) {
    return t == DM_DTYPE_F32 || t == DM_DTYPE_F16 || t == DM_DTYPE_BF16;
}

static int64_t numel_of(const dm_op_operand *o) {
    int64_t n = 1;
    for (int k = 0; k < o->ndim; k++) n *= o->shape[k];
    return n;
}

/* The dtype each operand of op must have on CUDA: -1 any float (f32/f16/bf16; operands may
 * differ), else that dtype. */
static int cuda_operand_dtype(dm_op_id op, int i) {
    if ((op == DM_OP_IMAGE_FROM_U8 || op == DM_OP_IMAGE_CUBIC_NORMALIZE) && i == 0)
        return DM_DTYPE_U8;
    if (op == DM_OP_COUNT_NONFINITE && i == 1) return DM_DTYPE_I64;
    return -1;
}

/* Attention's launch limits, shared by attention and attention_qkv: head dim 1..128 (both
 * kernels keep a query row's accumulator of up to 128 values in registers: attention.cu,
 * attention_tc.cu), sequence lengths in int, and one block per (batch*head, 16-query tile)
 * (the CUDA-core kernel's tile; the tensor-core kernel's 64 needs fewer) within the grid. */
static int cuda_attention_fits(int64_t BH, int64_t Tq, int64_t Tk, int64_t D, const char *op,
                               char *why, size_t size) {
    if (D < 1 || D > 128)
        return refuse(why, size, "%s: head dim %lld (the CUDA attention kernels take 1..128)", op,
                      (long long)D);
    if (Tq > I32_MAX || Tk > I32_MAX)
        return refuse(why, size, "%s: sequence of %lld tokens (at most 2^31-1)", op,
                      (long long)(Tq > Tk ? Tq : Tk));
    if (Tk < 1 && Tq > 0) return refuse(why, size, "%s: no keys", op);
    if (BH * ((Tq + 15) / 16) > I32_MAX)
        return refuse(why, size, "%s: %lld batch*heads x %lld queries exceed the grid", op,
                      (long long)BH, (long long)Tq);
    return 1;
}

int dm_cuda_supports_op(const dm_op_desc *d, char *why, size_t size) {
    if (why && size) why[0] = '\0';
    if (!d || d->op < 0 || d->op >= DM_OP_COUNT) return refuse(why, size, "no such op");
    const char *op = dm_op_name(d->op);
    if (d->op == DM_OP_COPY || d->op == DM_OP_ALLOC) return 1; /* every dtype */
    if (!is_float(d->dtype))
        return refuse(why, size, "%s: storage dtype %s (CUDA: f32, f16 or bf16)", op,
                      dm_dtype_name(d->dtype));
    for (int i = 0; i < d->n; i++) {
        const dm_op_operand *o = &d->t[i];
        if (!o->present) continue;
        const int want = cuda_operand_dtype(d->op, i);
        if (want < 0 ? !is_float(o->dtype) : o->dtype != (dm_dtype)want)
            return refuse(why, size, "%s: operand %d has dtype %s (CUDA: %s)", op, i,
                          dm_dtype_name(o->dtype), want < 0 ? "f32, f16 or bf16"
                                                            : dm_dtype_name((dm_dtype)want));
    }
    if (d->n == 0) return 1; /* a dtype-only query */
    const dm_op_operand *t0 = &d->t[0];
    switch (d->op) {
    case DM_OP_ATTENTION:
        if (t0->ndim != 4) return refuse(why, size, "attention: q must be (B, H, Tq, D)");
        return cuda_attention_fits(t0->shape[0] * t0->shape[1], t0->shape[2],
                                   d->n > 1 && d->t[1].present && d->t[1].ndim == 4
                                       ? d->t[1].shape[2] : t0->shape[2],
                                   t0->shape[3], op, why, size);
    case DM_OP_ATTENTION_QKV: {
        const int heads = d->iv[0];
        if (t0->ndim != 3 || heads < 1 || t0->shape[2] % (3LL * heads))
            return refuse(why, size, "attention_qkv: qkv must be (B, T, 3*heads*D), heads >= 1");
        return cuda_attention_fits(t0->shape[0] * heads, t0->shape[1], t0->shape[1],
                                   t0->shape[2] / (3LL * heads), op, why, size);
    }
    case DM_OP_LAYERNORM: {
        const int64_t C = t0->ndim ? t0->shape[t0->ndim - 1] : 1;
        if (C > 0 && numel_of(t0) / C > 8 * I32_MAX) /* 8 rows per block (norm.cu) */
            return refuse(why, size, "layernorm: %lld rows (at most 8 x (2^31-1))",
                          (long long)(numel_of(t0) / C));
        return 1;
    }
    case DM_OP_GROUPNORM: {
        const int groups = d->iv[0];
        if (groups < 1 || t0->ndim < 2 || t0->shape[1] % groups)
            return refuse(why, size, "groupnorm: %lld channels in %d groups",
                          (long long)(t0->ndim > 1 ? t0->shape[1] : 0), groups);
        if (t0->shape[0] * groups > I32_MAX / 64) /* up to 64 split blocks per group */
            return refuse(why, size, "groupnorm: N*groups = %lld (at most (2^31-1)/64)",
                          (long long)(t0->shape[0] * groups));
        return 1;
    }
    case DM_OP_IMAGE_FROM_U8:
    case DM_OP_IMAGE_CUBIC_NORMALIZE: {
        if (t0->ndim != 4 || t0->shape[3] != 3)
            return refuse(why, size, "%s: rgb must be u8 (N, H, W, 3)", op);
        if (t0->shape[0] > 65535) /* images on the grid's y axis */
            return refuse(why, size, "%s: %lld frames in one call (at most 65535)", op,
                          (long long)t0->shape[0]);
        if (d->op == DM_OP_IMAGE_CUBIC_NORMALIZE) {
            const dm_op_operand *y = d->n > 1 ? &d->t[1] : NULL;
            const int64_t s[4] = {t0->shape[1], t0->shape[2], y && y->ndim == 4 ? y->shape[2] : 1,
                                  y && y->ndim == 4 ? y->shape[3] : 1};
            for (int k = 0; k < 4; k++)
                if (s[k] < 1 || s[k] > 65536)
                    return refuse(why, size, "image_cubic_normalize: size %lld (CUDA: 1..65536)",
                                  (long long)s[k]);
            if (d->iv[0] != DM_CUBIC_F64 && d->iv[0] != DM_CUBIC_F32)
                return refuse(why, size, "image_cubic_normalize: unknown arithmetic %d",
                              d->iv[0]);
        }
        return 1;
    }
    case DM_OP_RESIZE:
        if (d->iv[0] != DM_RESIZE_BILINEAR && d->iv[0] != DM_RESIZE_BICUBIC)
            return refuse(why, size, "resize: mode %d (CUDA: bilinear, bicubic)", d->iv[0]);
        for (int i = 0; i < d->n; i++)
            if (d->t[i].present && d->t[i].ndim == 4 &&
                (d->t[i].shape[2] > I32_MAX || d->t[i].shape[3] > I32_MAX))
                return refuse(why, size, "resize: a side over 2^31-1 pixels");
        return 1;
    case DM_OP_MAXPOOL2D:
        if (d->iv[0] < 1 || d->iv[1] < 1 || d->iv[2] < 0 || d->iv[2] > d->iv[0] / 2)
            return refuse(why, size, "maxpool2d: kernel %d stride %d padding %d (k, s >= 1, "
                          "0 <= padding <= k/2)", d->iv[0], d->iv[1], d->iv[2]);
        return 1;
    case DM_OP_AVGPOOL2D:
        if (d->iv[0] < 1 || d->iv[1] < 1)
            return refuse(why, size, "avgpool2d: kernel %d stride %d (k, s >= 1)", d->iv[0],
                          d->iv[1]);
        return 1;
    case DM_OP_GLOBAL_AVGPOOL2D:
        if (t0->ndim >= 2 && t0->shape[0] * t0->shape[1] > I32_MAX) /* one block per (n, c) */
            return refuse(why, size, "global_avgpool2d: N*C = %lld (at most 2^31-1)",
                          (long long)(t0->shape[0] * t0->shape[1]));
        return 1;
    case DM_OP_PERMUTE: {
        const dm_op_operand *y = d->n > 1 && d->t[1].present ? &d->t[1] : t0;
        const int64_t inner = y->ndim ? y->shape[y->ndim - 1] : 1;
        if ((inner + 255) / 256 > I32_MAX)
            return refuse(why, size, "permute: last dim %lld too large", (long long)inner);
        return 1;
    }
    case DM_OP_CONV2D:
    case DM_OP_CONV_TRANSPOSE2D:
        /* cuDNN picks (or refuses, with a clear error naming the convolution) an algorithm per
         * shape when the plan is made (conv_cudnn.c); what the backend itself requires: */
        for (int i = 0; i < d->n; i++)
            if (d->t[i].present && i != 2 && d->t[i].ndim != 4)
                return refuse(why, size, "%s: operand %d is not 4-D (N, C, H, W)", op, i);
        if (d->op == DM_OP_CONV2D && d->iv[6] > 1 && t0->ndim == 4 && t0->shape[1] % d->iv[6])
            return refuse(why, size, "conv2d: %lld channels in %d groups",
                          (long long)t0->shape[1], d->iv[6]);
        return 1;
    default:
        return 1;
    }
}
