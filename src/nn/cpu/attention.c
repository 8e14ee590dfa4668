/* Softmax attention, CPU reference: o = softmax(q k^T * scale) v per (batch, head), as in the
 * plain (non-xformers) attention of DINOv2 (dinov2/layers/attention.py) and
 * torch.nn.functional.scaled_dot_product_attention without mask or dropout.
 *
 * Two schedules with the same math:
 * - long sequences (ViT tokens, T ~ 100..2000): per (batch, head) two SGEMMs (scores, then
 *   scores @ v) that use OpenBLAS's own threads, the row softmax in between on OpenMP threads.
 *   Scores live in the backend scratch, Tq x Tk floats, processed in row blocks.
 * - many short sequences (temporal attention of VDA, T ~ 32, batch = pixels): OpenMP threads
 *   over batch*heads with direct loops; OpenBLAS (pthreads build) is not called from inside an
 *   OpenMP parallel region. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu_ops.h"

/* Rows of the score matrix computed per SGEMM call; bounds scratch to ROWS x Tk floats. */
#define ATTN_ROWS 512

/* In-place softmax of one row of length n (max-subtracted, as torch.softmax). */
static void softmax_row(float *row, int n) {
    float mx = -FLT_MAX;
    for (int j = 0; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    /* exp in its own loop so it vectorises (glibc libmvec expf, <= 4 ulp: this file is built
     * with -ffast-math, see CMakeLists.txt); the sum stays in double. */
#pragma omp simd
    for (int j = 0; j < n; j++) row[j] = expf(row[j] - mx);
    double sum = 0;
    for (int j = 0; j < n; j++) sum += row[j];
    const float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) row[j] *= inv;
}

static void softmax_rows(float *s, int rows, int n) {
#pragma omp parallel for
    for (int r = 0; r < rows; r++) softmax_row(s + (size_t)r * n, n);
}

/* One (batch, head) with direct loops; `s` holds Tk floats of workspace. */
static void attention_small(const float *q, const float *k, const float *v, float *o, int Tq,
                            int Tk, int D, float scale, float *s) {
    for (int i = 0; i < Tq; i++) {
        const float *qi = q + (size_t)i * D;
        for (int j = 0; j < Tk; j++) {
            const float *kj = k + (size_t)j * D;
            float acc = 0.f;
            for (int d = 0; d < D; d++) acc += qi[d] * kj[d];
            s[j] = acc * scale;
        }
        softmax_row(s, Tk);
        float *oi = o + (size_t)i * D;
        for (int d = 0; d < D; d++) oi[d] = 0.f;
        for (int j = 0; j < Tk; j++) {
            const float *vj = v + (size_t)j * D;
            for (int d = 0; d < D; d++) oi[d] += s[j] * vj[d];
        }
    }
}

dm_status attention_cpu(dm_backend *be, const dm_tensor *q, const dm_tensor *k,
                        const dm_tensor *v, float scale, dm_tensor *o) {
    dm_status st;
    if ((st = cpu_check_f32(q, 4, "attention", "q")) ||
        (st = cpu_check_f32(k, 4, "attention", "k")) ||
        (st = cpu_check_f32(v, 4, "attention", "v")) ||
        (st = cpu_check_f32(o, 4, "attention", "o")))
        return st;
    const int64_t B = q->shape[0], Hd = q->shape[1], Tq = q->shape[2], D = q->shape[3];
    const int64_t Tk = k->shape[2];
    for (int i = 0; i < 4; i++) {
        int64_t want_kv = i == 2 ? Tk : q->shape[i];
        if (k->shape[i] != want_kv || v->shape[i] != want_kv || o->shape[i] != q->shape[i])
            return dm_error_set(DM_ERR_SHAPE, "attention: q (B,H,Tq,D), k/v (B,H,Tk,D) and o "
                                              "(B,H,Tq,D) disagree in dim %d", i);
    }
    const int64_t BH = B * Hd;
    if (BH == 0 || Tq == 0) return DM_OK;
    if (Tk == 0) return dm_error_set(DM_ERR_SHAPE, "attention: no keys (Tk = 0)");
    const float *qd = dm_f32(q), *kd = dm_f32(k), *vd = dm_f32(v);
    float *od = dm_f32(o);
    const size_t qs = (size_t)Tq * D, ks = (size_t)Tk * D;

    if (Tq * Tk <= 128 * 128) {
        const int nt = be->threads > 0 ? be->threads : 1;
        float *ws = dm_backend_scratch(be, sizeof(float) * (size_t)Tk * (size_t)nt);
        if (!ws) return dm_error_set(DM_ERR_NOMEM, "attention: no memory for scores");
#pragma omp parallel for num_threads(nt)
        for (int64_t bh = 0; bh < BH; bh++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            attention_small(qd + bh * qs, kd + bh * ks, vd + bh * ks, od + bh * qs, (int)Tq,
                            (int)Tk, (int)D, scale, ws + (size_t)t * Tk);
        }
        return DM_OK;
    }

    const int64_t rows = Tq < ATTN_ROWS ? Tq : ATTN_ROWS;
    float *s = dm_backend_scratch(be, sizeof(float) * (size_t)rows * (size_t)Tk);
    if (!s) return dm_error_set(DM_ERR_NOMEM, "attention: no memory for scores");
    for (int64_t bh = 0; bh < BH; bh++) {
        const float *qb = qd + bh * qs, *kb = kd + bh * ks, *vb = vd + bh * ks;
        float *ob = od + bh * qs;
        for (int64_t r0 = 0; r0 < Tq; r0 += rows) {
            const int nr = (int)(Tq - r0 < rows ? Tq - r0 : rows);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, (int)Tk, (int)D, scale,
                        qb + r0 * D, (int)D, kb, (int)D, 0.f, s, (int)Tk);
            softmax_rows(s, nr, (int)Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, (int)D, (int)Tk, 1.f, s,
                        (int)Tk, vb, (int)D, 0.f, ob + r0 * D, (int)D);
        }
    }
    return DM_OK;
}
