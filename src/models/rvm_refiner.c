/* RVM refiners and the output tail of MattingNetwork.forward (model/model.py):
 *   ratio == 1: fgr = clamp(fgr_residual + src), pha = clamp(pha);
 *   deep guided filter (model/deep_guided_filter.py, Wu et al. CVPR 2018): x = [src_sm,
 *     mean(src_sm)], y = [fgr_residual, pha]; trained 3x3 depthwise box filter of x, y, xy,
 *     xx; A = conv1x1 stack([cov_xy, var_x, hid]); b = mean_y - A*mean_x; A, b bilinearly
 *     upsampled and applied to the full-resolution guide;
 *   fast guided filter (model/fast_guided_filter.py): same moments with a 3x3 box of 1/9
 *     (separable, zero padding), A = cov_xy / (var_x + 1e-5).
 * The moments live in one 16-channel buffer [x, y, xy, xx] so each box filter is one op. */
#include "rvm_internal.h"

#define FGF_EPS 1e-5f /* FastGuidedFilter(r=1, eps=1e-5) */

dm_status rvm_refiner_forward(rvm_state *s, const dm_tensor *src, dm_tensor *fgr,
                              dm_tensor *pha) {
    const rvm_model *m = s->m;
    dm_backend *be = s->be;
    const int h = s->lv[0].h, w = s->lv[0].w;
    dm_status st;
    dm_tensor y = rvm_view(&s->g16, 4, 4, h, w);
    if (s->ratio == 1.0) return dm_matting_compose(be, NULL, &y, src, fgr, pha);

    dm_tensor src_sm = rvm_view(&s->cat[0], 32, 3, h, w);
    dm_tensor x = rvm_view(&s->g16, 0, 4, h, w), xy = rvm_view(&s->g16, 8, 4, h, w),
              xx = rvm_view(&s->g16, 12, 4, h, w);
    dm_tensor mx = rvm_view(&s->m16, 0, 4, h, w), my = rvm_view(&s->m16, 4, 4, h, w);
    dm_tensor a = rvm_view(&s->coef_a, 0, 4, h, w), b = rvm_view(&s->coef_b, 0, 4, h, w);
    if ((st = dm_conv2d(be, &src_sm, &m->guide.w, NULL, &m->guide.p, &x)) ||
        (st = dm_binary(be, &x, &y, DM_BINARY_MUL, &xy)) ||
        (st = dm_binary(be, &x, &x, DM_BINARY_MUL, &xx)))
        return st;
    if (s->refiner == RVM_REFINER_FAST_GUIDED_FILTER) {
        dm_tensor t = rvm_view(&s->t16a, 0, 16, h, w);
        if ((st = dm_conv2d(be, &s->g16, &m->fgf_box_x.w, NULL, &m->fgf_box_x.p, &t)) ||
            (st = dm_conv2d(be, &t, &m->fgf_box_y.w, NULL, &m->fgf_box_y.p, &s->m16)) ||
            (st = dm_guided_coeffs(be, &s->m16, FGF_EPS, &a, &b)))
            return st;
        return dm_matting_compose(be, &a, &b, src, fgr, pha);
    }
    dm_tensor mxy = rvm_view(&s->m16, 8, 4, h, w), mxx = rvm_view(&s->m16, 12, 4, h, w);
    dm_tensor cov = rvm_view(&s->r24, 0, 4, h, w), var = rvm_view(&s->r24, 4, 4, h, w);
    dm_tensor t = rvm_view(&s->tmp4, 0, 4, h, w);
    dm_tensor t1 = rvm_view(&s->t16a, 0, 16, h, w), t2 = rvm_view(&s->t16b, 0, 16, h, w);
    if ((st = dm_conv2d(be, &s->g16, &m->dgf_box.w, NULL, &m->dgf_box.p, &s->m16)) ||
        (st = dm_binary(be, &mx, &my, DM_BINARY_MUL, &t)) ||
        (st = dm_binary(be, &mxy, &t, DM_BINARY_SUB, &cov)) ||
        (st = dm_binary(be, &mx, &mx, DM_BINARY_MUL, &t)) ||
        (st = dm_binary(be, &mxx, &t, DM_BINARY_SUB, &var)) ||
        (st = dm_conv2d(be, &s->r24, &m->dgf_conv[0].w, &m->dgf_conv[0].b, &m->dgf_conv[0].p, &t1)) ||
        (st = dm_conv2d(be, &t1, &m->dgf_conv[1].w, &m->dgf_conv[1].b, &m->dgf_conv[1].p, &t2)) ||
        (st = dm_conv2d(be, &t2, &m->dgf_conv[2].w, &m->dgf_conv[2].b, &m->dgf_conv[2].p, &a)) ||
        (st = dm_binary(be, &a, &mx, DM_BINARY_MUL, &t)) ||
        (st = dm_binary(be, &my, &t, DM_BINARY_SUB, &b)))
        return st;
    return dm_matting_compose(be, &a, &b, src, fgr, pha);
}
