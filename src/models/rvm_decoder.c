/* RVM recurrent decoder (model/decoder.py) and project_mat:
 *   s1, s2, s3 = AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) pyramid of src_sm;
 *   decode4 (BottleneckBlock): x4 = [a, GRU(b, r4)] of the LR-ASPP output (64 + 64);
 *   decode3..1 (UpsamplingBlock): conv3x3+BN+ReLU([up2(x), f_k, s_k]) -> [a, GRU(b, r_k)];
 *   decode0 (OutputBlock): two conv3x3+BN+ReLU on [up2(x1), s0] -> hid (16);
 *   project_mat: conv1x1(hid) -> [fgr residual (3), alpha (1)].
 * up2 is nn.Upsample(scale_factor=2, bilinear, align_corners=False) cropped to the skip size;
 * the resize op computes the cropped output directly (same coordinates, src = (dst+0.5)/2-0.5).
 * ConvGRU (Ballas et al. 2016, as decoder.py): r, z = sigmoid(conv([x, h])),
 * c = tanh(conv([x, r*h])), h' = (1-z)*h + z*c, computed as h + z*(c - h). */
#include "rvm_internal.h"

/* GRU on u = [a (C), b (C), h (C)] at level lv: b <- h' and h <- h'. */
static dm_status gru_forward(rvm_state *s, const rvm_gru *g, dm_tensor *u, const rvm_level *lv) {
    dm_backend *be = s->be;
    const int C = g->c, H = lv->h, W = lv->w;
    dm_status st;
    dm_tensor bh = rvm_view(u, C, 2 * C, H, W), b = rvm_view(u, C, C, H, W),
              h = rvm_view(u, 2 * C, C, H, W);
    dm_tensor rz = rvm_view(&s->gru_rz, 0, 2 * C, H, W), r = rvm_view(&s->gru_rz, 0, C, H, W),
              z = rvm_view(&s->gru_rz, C, C, H, W);
    dm_tensor v = rvm_view(&s->gru_v, 0, 2 * C, H, W), v0 = rvm_view(&s->gru_v, 0, C, H, W),
              v1 = rvm_view(&s->gru_v, C, C, H, W);
    dm_tensor c = rvm_view(&s->gru_c, 0, C, H, W);
    if ((st = dm_conv2d(be, &bh, &g->ih.w, &g->ih.b, &g->ih.p, &rz)) ||
        (st = dm_copy(be, &b, &v0)) || (st = dm_binary(be, &r, &h, DM_BINARY_MUL, &v1)) ||
        (st = dm_conv2d(be, &v, &g->hh.w, &g->hh.b, &g->hh.p, &c)) ||
        (st = dm_binary(be, &c, &h, DM_BINARY_SUB, &c)) ||
        (st = dm_binary(be, &c, &z, DM_BINARY_MUL, &c)) ||
        (st = dm_binary(be, &h, &c, DM_BINARY_ADD, &b)))
        return st;
    return dm_copy(be, &b, &h);
}

/* UpsamplingBlock k (1..3): x (C_in = 2 * gru[k].c of the level below) -> u[k]. */
static dm_status up_forward(rvm_state *s, int k) {
    const rvm_model *m = s->m;
    dm_backend *be = s->be;
    const rvm_level *lo = &s->lv[k + 1], *hi = &s->lv[k];
    const int cin = 2 * m->gru[k].c, cout = 2 * m->gru[k - 1].c;
    dm_status st;
    dm_tensor x = rvm_view(&s->u[k + 1], 0, cin, lo->h, lo->w);
    dm_tensor up = rvm_view(&s->cat[k], 0, cin, hi->h, hi->w);
    const int ccat = (int)m->up_conv[k - 1].w.shape[1];
    dm_tensor cat = rvm_view(&s->cat[k], 0, ccat, hi->h, hi->w);
    dm_tensor y = rvm_view(&s->u[k], 0, cout, hi->h, hi->w);
    if ((st = dm_resize(be, &x, DM_RESIZE_BILINEAR, 0, 2.0, 2.0, &up)) ||
        (st = dm_conv2d(be, &cat, &m->up_conv[k - 1].w, &m->up_conv[k - 1].b,
                        &m->up_conv[k - 1].p, &y)))
        return st;
    return gru_forward(s, &m->gru[k - 1], &s->u[k], hi);
}

dm_status rvm_decoder_forward(rvm_state *s) {
    const rvm_model *m = s->m;
    dm_backend *be = s->be;
    const rvm_level *lv = s->lv;
    dm_status st;
    /* source pyramid straight into the concat slots: s_k at channels [ccat - 3, ccat) */
    for (int k = 1; k <= 3; k++) {
        const int prev_c = k == 1 ? 2 * m->gru[0].c : (int)m->up_conv[k - 2].w.shape[1] - 3;
        const int cur_c = (int)m->up_conv[k - 1].w.shape[1] - 3;
        dm_tensor sp = rvm_view(&s->cat[k - 1], prev_c, 3, lv[k - 1].h, lv[k - 1].w);
        dm_tensor sk = rvm_view(&s->cat[k], cur_c, 3, lv[k].h, lv[k].w);
        if ((st = dm_avgpool2d(be, &sp, 2, 2, &sk))) return st;
    }
    if ((st = gru_forward(s, &m->gru[3], &s->u[4], &lv[4]))) return st;
    for (int k = 3; k >= 1; k--)
        if ((st = up_forward(s, k))) return st;
    /* OutputBlock: [up2(x1) (32), s0 (3)] -> 16 -> 16 = hid, written into r24[8:24] (both
     * variants: decoder_channels[2:4] = [32, 16]) */
    const int c1 = 2 * m->gru[0].c, c0 = (int)m->out_conv[0].w.shape[1];
    dm_tensor x1 = rvm_view(&s->u[1], 0, c1, lv[1].h, lv[1].w);
    dm_tensor up = rvm_view(&s->cat[0], 0, c1, lv[0].h, lv[0].w);
    dm_tensor cat = rvm_view(&s->cat[0], 0, c0, lv[0].h, lv[0].w);
    dm_tensor t = rvm_view(&s->t16a, 0, 16, lv[0].h, lv[0].w);
    dm_tensor hid = rvm_view(&s->r24, 8, 16, lv[0].h, lv[0].w);
    dm_tensor proj = rvm_view(&s->g16, 4, 4, lv[0].h, lv[0].w);
    if ((st = dm_resize(be, &x1, DM_RESIZE_BILINEAR, 0, 2.0, 2.0, &up)) ||
        (st = dm_conv2d(be, &cat, &m->out_conv[0].w, &m->out_conv[0].b, &m->out_conv[0].p, &t)) ||
        (st = dm_conv2d(be, &t, &m->out_conv[1].w, &m->out_conv[1].b, &m->out_conv[1].p, &hid)))
        return st;
    return dm_conv2d(be, &hid, &m->project_mat.w, &m->project_mat.b, &m->project_mat.p, &proj);
}
