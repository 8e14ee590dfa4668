/* Guided-filter ops, CPU reference (He et al., "Guided Image Filtering", TPAMI 2013; the fast
 * / deep guided filter of Wu et al., CVPR 2018, as used by RobustVideoMatting's refiners,
 * model/fast_guided_filter.py and model/deep_guided_filter.py):
 *   guided_coeffs:   low-resolution linear coefficients from box-filtered moments;
 *   matting_compose: bilinear upsampling of the coefficients, application to the
 *                    full-resolution guide, residual foreground and clamping, fused so that
 *                    the full-resolution image is touched once. */
#include <stdlib.h>

#include "cpu_ops.h"

/* torch.clamp(v, 0, 1) that keeps NaN visible (fminf/fmaxf would hide it). */
static inline float clamp01(float v) {
    return v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
}

dm_status guided_coeffs_cpu(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                            dm_tensor *b) {
    (void)be;
    dm_status st;
    if ((st = cpu_check_f32(m, 4, "guided_coeffs", "m")) ||
        (st = cpu_check_f32(a, 4, "guided_coeffs", "a")) ||
        (st = cpu_check_f32(b, 4, "guided_coeffs", "b")))
        return st;
    const int N = (int)m->shape[0], K = (int)a->shape[1];
    const int64_t HW = m->shape[2] * m->shape[3];
    if (m->shape[1] != 4 * K || a->shape[0] != N || a->shape[2] != m->shape[2] ||
        a->shape[3] != m->shape[3] || dm_tensor_numel(b) != dm_tensor_numel(a))
        return dm_error_set(DM_ERR_SHAPE, "guided_coeffs: m must be (N, 4K, h, w) and a, b "
                            "(N, K, h, w)");
    const float *md = dm_f32(m);
    float *ad = dm_f32(a), *bd = dm_f32(b);
#pragma omp parallel for collapse(2)
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            const float *mx = md + ((size_t)n * 4 * K + k) * HW, *my = mx + (size_t)K * HW,
                        *mxy = my + (size_t)K * HW, *mxx = mxy + (size_t)K * HW;
            float *ak = ad + ((size_t)n * K + k) * HW, *bk = bd + ((size_t)n * K + k) * HW;
            for (int64_t i = 0; i < HW; i++) {
                /* same operation order as fast_guided_filter.py, each step rounded to f32 */
                float cov = mxy[i] - mx[i] * my[i];
                float var = mxx[i] - mx[i] * mx[i];
                float A = cov / (var + eps);
                ak[i] = A;
                bk[i] = my[i] - A * mx[i];
            }
        }
    }
    return DM_OK;
}

dm_status matting_compose_cpu(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                              const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha) {
    dm_status st;
    if ((st = cpu_check_f32(b, 4, "matting_compose", "b")) ||
        (a && (st = cpu_check_f32(a, 4, "matting_compose", "a"))) ||
        (st = cpu_check_f32(src, 4, "matting_compose", "src")) ||
        (fgr && (st = cpu_check_f32(fgr, 4, "matting_compose", "fgr"))) ||
        (st = cpu_check_f32(pha, 4, "matting_compose", "pha")))
        return st;
    const int N = (int)src->shape[0], H = (int)src->shape[2], W = (int)src->shape[3];
    const int h = (int)b->shape[2], w = (int)b->shape[3];
    if (src->shape[1] != 3 || b->shape[0] != N || b->shape[1] != 4 ||
        (a && (a->shape[0] != N || a->shape[1] != 4 || a->shape[2] != h || a->shape[3] != w)) ||
        (fgr && (fgr->shape[0] != N || fgr->shape[1] != 3 || fgr->shape[2] != H ||
                 fgr->shape[3] != W)) ||
        pha->shape[0] != N || pha->shape[1] != 1 || pha->shape[2] != H || pha->shape[3] != W)
        return dm_error_set(DM_ERR_SHAPE, "matting_compose: expected a, b (N, 4, h, w), src and "
                            "fgr (N, 3, H, W), pha (N, 1, H, W)");
    if (!a && (h != H || w != W))
        return dm_error_set(DM_ERR_SHAPE, "matting_compose: without a, b must be at src size");
    if (h < 1 || w < 1 || H < 1 || W < 1) return dm_error_set(DM_ERR_SHAPE, "matting_compose: empty");

    /* Column interpolation table, F.interpolate(size=(H, W), bilinear, align_corners=False)
     * in float like ATen: src = in/out * (dst + 0.5) - 0.5, clamped at 0. */
    int *xi = dm_backend_scratch(be, (size_t)W * (2 * sizeof(int) + sizeof(float)));
    if (!xi) return dm_error_set(DM_ERR_NOMEM, "matting_compose: no scratch memory");
    int *xj = xi + W;
    float *xl = (float *)(xj + W);
    const float scx = (float)w / (float)W, scy = (float)h / (float)H;
    for (int x = 0; x < W; x++) {
        float s = a ? scx * ((float)x + 0.5f) - 0.5f : (float)x;
        if (s < 0.f) s = 0.f;
        int x0 = (int)s;
        if (x0 > w - 1) x0 = w - 1;
        xi[x] = x0;
        xj[x] = x0 < w - 1 ? x0 + 1 : x0;
        xl[x] = s - (float)x0;
    }
    const size_t HWs = (size_t)H * W, hws = (size_t)h * w;
#pragma omp parallel for collapse(2)
    for (int n = 0; n < N; n++) {
        for (int y = 0; y < H; y++) {
            float s = a ? scy * ((float)y + 0.5f) - 0.5f : (float)y;
            if (s < 0.f) s = 0.f;
            int y0 = (int)s;
            if (y0 > h - 1) y0 = h - 1;
            int y1 = y0 < h - 1 ? y0 + 1 : y0;
            float ly = s - (float)y0, hy = 1.f - ly;
            const float *sr = dm_f32(src) + (size_t)n * 3 * HWs + (size_t)y * W;
            const float *bn = dm_f32(b) + (size_t)n * 4 * hws;
            const float *an = a ? dm_f32(a) + (size_t)n * 4 * hws : NULL;
            float *fr = fgr ? dm_f32(fgr) + (size_t)n * 3 * HWs + (size_t)y * W : NULL;
            float *pr = dm_f32(pha) + (size_t)n * HWs + (size_t)y * W;
            for (int x = 0; x < W; x++) {
                const int x0 = xi[x], x1 = xj[x];
                const float lx = xl[x], hx = 1.f - lx;
                const float r = sr[x], g = sr[x + HWs], bl = sr[x + 2 * HWs];
                /* guide: RGB and its channel mean (fine_src.mean(1)) */
                const float guide[4] = {r, g, bl, (r + g + bl) / 3.f};
                float out[4];
                for (int c = 0; c < 4; c++) {
                    const float *b0 = bn + c * hws + (size_t)y0 * w, *b1 = bn + c * hws + (size_t)y1 * w;
                    float bv = hy * (hx * b0[x0] + lx * b0[x1]) + ly * (hx * b1[x0] + lx * b1[x1]);
                    if (an) {
                        const float *a0 = an + c * hws + (size_t)y0 * w,
                                    *a1 = an + c * hws + (size_t)y1 * w;
                        float av = hy * (hx * a0[x0] + lx * a0[x1]) + ly * (hx * a1[x0] + lx * a1[x1]);
                        out[c] = av * guide[c] + bv;
                    } else {
                        out[c] = bv;
                    }
                }
                if (fr) {
                    fr[x] = clamp01(out[0] + r);
                    fr[x + HWs] = clamp01(out[1] + g);
                    fr[x + 2 * HWs] = clamp01(out[2] + bl);
                }
                pr[x] = clamp01(out[3]);
            }
        }
    }
    return DM_OK;
}
