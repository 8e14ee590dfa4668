/* Scale/shift alignment chain of infer_video_depth (see include/depthmatte/vda.h), on the
 * depth frames of one window at a time, in place. Arithmetic follows the official NumPy code
 * in float32: compute_scale_and_shift_full (utils/util.py) sums with np.sum, i.e. NumPy's
 * pairwise summation (numpy/core/src/umath/loops_utils.h.src, pairwise_sum: 8 accumulators
 * for blocks up to 128, recursive halves rounded to multiples of 8 above), applied per
 * iterator buffer of 8192 elements and accumulated into a float32 result starting at 0. The
 * 2x2 solve runs on float32 scalars; applying scale/shift and blending (get_interpolate_frames)
 * multiply float32 frames by Python floats, which NumPy rounds to float32 first. */
#include <stdlib.h>
#include <string.h>

#include "models/vda_internal.h"

#define NP_BUFSIZE 8192  /* numpy's default ufunc buffer size */
#define NP_PW_BLOCK 128  /* PW_BLOCKSIZE */
#define ALIGN_MAGIC 0x56444131 /* "VDA1" */

struct vda_align {
    int h, w, metric;
    int64_t next;       /* index of the next window */
    float scale, shift; /* fit of the last window */
    float *ref;         /* (2, h, w): ref_align = [first reference, aligned slot 12] */
    float *pending;     /* (8, h, w): last 8 aligned frames, to be blended */
};

typedef enum { PW_SUM, PW_DOT, PW_ONES } pw_mode;

static inline float pw_elem(pw_mode m, const float *a, const float *b, int64_t i) {
    return m == PW_ONES ? 1.f : (m == PW_DOT ? a[i] * b[i] : a[i]);
}

/* NumPy's pairwise_sum in float32 of the elements a[i] (PW_SUM), a[i]*b[i] rounded to float
 * (PW_DOT, the elementwise product array) or 1 (PW_ONES). */
static float pw_sum(pw_mode m, const float *a, const float *b, int64_t n) {
    if (n < 8) {
        float res = 0.f;
        for (int64_t i = 0; i < n; i++) res += pw_elem(m, a, b, i);
        return res;
    }
    if (n <= NP_PW_BLOCK) {
        float r[8];
        for (int j = 0; j < 8; j++) r[j] = pw_elem(m, a, b, j);
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += pw_elem(m, a, b, i + j);
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += pw_elem(m, a, b, i);
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pw_sum(m, a, b, n2) + pw_sum(m, a ? a + n2 : NULL, b ? b + n2 : NULL, n - n2);
}

/* np.sum over a contiguous array: pairwise per buffer of 8192, accumulated from 0. */
static float np_sum(pw_mode m, const float *a, const float *b, int64_t n) {
    float acc = 0.f;
    for (int64_t o = 0; o < n; o += NP_BUFSIZE) {
        const int64_t len = n - o < NP_BUFSIZE ? n - o : NP_BUFSIZE;
        acc += pw_sum(m, a ? a + o : NULL, b ? b + o : NULL, len);
    }
    return acc;
}

/* compute_scale_and_shift_full(prediction, target, mask = ones), n elements. */
static void fit_scale_shift(const float *pred, const float *target, int64_t n, float *x0,
                            float *x1) {
    const float a00 = np_sum(PW_DOT, pred, pred, n), a01 = np_sum(PW_SUM, pred, NULL, n),
                a11 = np_sum(PW_ONES, NULL, NULL, n), b0 = np_sum(PW_DOT, pred, target, n),
                b1 = np_sum(PW_SUM, target, NULL, n);
    *x0 = 1.f, *x1 = 0.f;
    const float det = a00 * a11 - a01 * a01;
    if (det != 0.f) {
        *x0 = (a11 * b0 - a01 * b1) / det;
        *x1 = (-a01 * b0 + a00 * b1) / det;
    }
}

dm_status vda_align_init(vda_align **out, int src_h, int src_w, int metric) {
    *out = NULL;
    if (src_h < 1 || src_w < 1) return dm_error_set(DM_ERR_ARG, "vda_align: empty frame");
    vda_align *a = calloc(1, sizeof *a);
    const size_t hw = (size_t)src_h * src_w;
    if (a) a->ref = malloc(sizeof(float) * 2 * hw), a->pending = malloc(sizeof(float) * 8 * hw);
    if (!a || !a->ref || !a->pending) {
        vda_align_free(a);
        return dm_error_set(DM_ERR_NOMEM, "vda_align: no memory for %dx%d state", src_w, src_h);
    }
    a->h = src_h, a->w = src_w, a->metric = metric != 0;
    a->scale = 1.f, a->shift = 0.f;
    *out = a;
    return DM_OK;
}

void vda_align_free(vda_align *a) {
    if (!a) return;
    free(a->ref);
    free(a->pending);
    free(a);
}

dm_status vda_align_window(vda_align *a, float *raw, int *first_slot, int *count,
                           int64_t *first_frame) {
    const size_t hw = (size_t)a->h * a->w;
    const int64_t k = a->next;
    if (k == 0) { /* depth_list_aligned = window 0; ref = raw slots KEYFRAMES[0:2] = 0, 12 */
        memcpy(a->ref, raw, hw * sizeof(float));
        memcpy(a->ref + hw, raw + 12 * hw, hw * sizeof(float));
        memcpy(a->pending, raw + 24 * hw, 8 * hw * sizeof(float));
        a->scale = 1.f, a->shift = 0.f;
        a->next = 1;
        *first_slot = 0, *count = 24, *first_frame = 0;
        return DM_OK;
    }
    float s = 1.f, b = 0.f;
    if (!a->metric) fit_scale_shift(raw, a->ref, (int64_t)(2 * hw), &s, &b); /* slots 0, 1 */
    for (size_t i = 2 * hw; i < VDA_WINDOW * hw; i++) {
        float v = raw[i] * s + b;
        raw[i] = v < 0.f ? 0.f : v;
    }
    memcpy(a->ref + hw, raw + 12 * hw, hw * sizeof(float)); /* ref_align[1] = aligned slot 12 */
    const double step = (1.0 - 0.0) / (VDA_INTERP - 1);
    for (int i = 0; i < VDA_INTERP; i++) { /* get_interpolate_frames(pending, slots 2..9) */
        const double wpost = i == 0 ? 0.0 : (i == VDA_INTERP - 1 ? 1.0 : i * step);
        const float fpre = (float)(1.0 - wpost), fpost = (float)wpost;
        const float *pre = a->pending + i * hw;
        float *post = raw + (2 + i) * hw;
        for (size_t j = 0; j < hw; j++) {
            float x = pre[j] * fpre, y = post[j] * fpost;
            post[j] = x + y;
        }
    }
    memcpy(a->pending, raw + 24 * hw, 8 * hw * sizeof(float));
    a->scale = s, a->shift = b;
    a->next = k + 1;
    *first_slot = 2, *count = VDA_STRIDE, *first_frame = k * VDA_STRIDE + 2;
    return DM_OK;
}

dm_status vda_align_finish(vda_align *a, const float **frames, int64_t *first_frame) {
    if (a->next == 0) return dm_error_set(DM_ERR_ARG, "vda_align: no window aligned yet");
    *frames = a->pending;
    *first_frame = (a->next - 1) * VDA_STRIDE + 24;
    return DM_OK;
}

void vda_align_last_fit(const vda_align *a, float *scale, float *shift) {
    *scale = a->scale;
    *shift = a->shift;
}

typedef struct align_header {
    int32_t magic, h, w, metric;
    int64_t next;
    float scale, shift;
} align_header;

size_t vda_align_state_bytes(const vda_align *a) {
    return sizeof(align_header) + sizeof(float) * 10 * (size_t)a->h * a->w;
}

void vda_align_pack(const vda_align *a, void *buf) {
    const size_t hw = (size_t)a->h * a->w;
    align_header hd = {ALIGN_MAGIC, a->h, a->w, a->metric, a->next, a->scale, a->shift};
    char *p = buf;
    memcpy(p, &hd, sizeof hd);
    memcpy(p + sizeof hd, a->ref, 2 * hw * sizeof(float));
    memcpy(p + sizeof hd + 2 * hw * sizeof(float), a->pending, 8 * hw * sizeof(float));
}

dm_status vda_align_unpack(vda_align *a, const void *buf, size_t bytes) {
    align_header hd;
    if (bytes != vda_align_state_bytes(a))
        return dm_error_set(DM_ERR_FORMAT, "vda_align: state of %zu bytes, expected %zu", bytes,
                            vda_align_state_bytes(a));
    memcpy(&hd, buf, sizeof hd);
    if (hd.magic != ALIGN_MAGIC || hd.h != a->h || hd.w != a->w || hd.metric != a->metric ||
        hd.next < 0)
        return dm_error_set(DM_ERR_FORMAT, "vda_align: state is for %dx%d frames (metric %d), "
                            "expected %dx%d (metric %d)", hd.w, hd.h, hd.metric, a->w, a->h,
                            a->metric);
    const size_t hw = (size_t)a->h * a->w;
    const char *p = buf;
    a->next = hd.next, a->scale = hd.scale, a->shift = hd.shift;
    memcpy(a->ref, p + sizeof hd, 2 * hw * sizeof(float));
    memcpy(a->pending, p + sizeof hd + 2 * hw * sizeof(float), 8 * hw * sizeof(float));
    return DM_OK;
}
