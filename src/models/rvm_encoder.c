/* RVM MobileNetV3-Large encoder (RVM model/mobilenetv3.py on torchvision's MobileNetV3):
 * stem conv 3x3 s2 + hardswish, 15 inverted residual blocks (expand 1x1, depthwise kxk,
 * squeeze-excitation with hardsigmoid gate, project 1x1, residual), final 1x1 conv to 960
 * channels. The last stage is dilated (stride 1, dilation 2), so f4 is at 1/16. Features f1
 * (after block 1), f2 (block 3), f3 (block 6) are written straight into the decoder's concat
 * buffers. */
#include "rvm_internal.h"

/* Pyramid level (0 = input, k = 1/2^k) after features[idx] (idx 0 = stem, 1..15 blocks). */
static int level_after(const rvm_model *m, int idx) {
    int L = 1; /* stem has stride 2 */
    for (int i = 0; i < idx; i++) L += m->blocks[i].stride == 2;
    return L;
}

void rvm_encoder_sizes(const rvm_model *m, const rvm_level *lv, size_t n[4]) {
    n[0] = (size_t)16 * lv[1].h * lv[1].w; /* stem output */
    n[1] = n[2] = n[3] = 0;
    for (int i = 0; i < RVM_BLOCKS; i++) {
        const rvm_block *b = &m->blocks[i];
        const rvm_level *in = &lv[level_after(m, i)], *out = &lv[level_after(m, i + 1)];
        size_t o = (size_t)b->cout * out->h * out->w;
        if (o > n[0]) n[0] = o;
        size_t e = (size_t)b->cexp * in->h * in->w, d = (size_t)b->cexp * out->h * out->w;
        if (e > n[2]) n[2] = e;
        if (d > n[3]) n[3] = d;
    }
    n[1] = n[0];
}

static dm_status conv(dm_backend *be, const rvm_conv *c, const dm_tensor *x, dm_tensor *y) {
    return dm_conv2d(be, x, &c->w, c->b.data ? &c->b : NULL, &c->p, y);
}

/* One inverted residual block: x (1, cin, lin) -> y (1, cout, lout). */
static dm_status block_forward(rvm_state *s, const rvm_block *b, const dm_tensor *x,
                               const rvm_level *lin, const rvm_level *lout, dm_tensor *y) {
    dm_backend *be = s->be;
    dm_status st;
    dm_tensor e = *x;
    if (b->has_expand) {
        e = rvm_view(&s->enc[2], 0, b->cexp, lin->h, lin->w);
        if ((st = conv(be, &b->expand, x, &e))) return st;
    }
    dm_tensor d = rvm_view(&s->enc[3], 0, b->cexp, lout->h, lout->w);
    if ((st = conv(be, &b->dw, &e, &d))) return st;
    if (b->use_se) {
        const int csq = (int)b->se_fc1.w.shape[0];
        dm_tensor pool = rvm_view(&s->se_pool, 0, b->cexp, 1, 1);
        dm_tensor mid = rvm_view(&s->se_mid, 0, csq, 1, 1);
        dm_tensor gate = rvm_view(&s->se_gate, 0, b->cexp, 1, 1);
        if ((st = dm_global_avgpool2d(be, &d, &pool)) || (st = conv(be, &b->se_fc1, &pool, &mid)) ||
            (st = conv(be, &b->se_fc2, &mid, &gate)) ||
            (st = dm_channel_affine(be, &d, &gate, NULL, &d)))
            return st;
    }
    if ((st = conv(be, &b->project, &d, y))) return st;
    if (b->use_res) return dm_binary(be, y, x, DM_BINARY_ADD, y);
    return DM_OK;
}

dm_status rvm_encoder_forward(rvm_state *s) {
    const rvm_model *m = s->m;
    const rvm_level *lv = s->lv;
    dm_status st;
    dm_tensor x = rvm_view(&s->enc[0], 0, 16, lv[1].h, lv[1].w);
    if ((st = conv(s->be, &m->stem, &s->norm, &x))) return st;
    int L = 1;
    for (int i = 0; i < RVM_BLOCKS; i++) {
        const rvm_block *b = &m->blocks[i];
        const int Lo = L + (b->stride == 2);
        const int hw_h = lv[Lo].h, hw_w = lv[Lo].w;
        dm_tensor y;
        if (i == 0) /* f1 -> decode1's concat [x2 up (40), f1 (16), s1 (3)] */
            y = rvm_view(&s->cat[1], 40, 16, hw_h, hw_w);
        else if (i == 2) /* f2 -> decode2's concat [x3 up (80), f2 (24), s2 (3)] */
            y = rvm_view(&s->cat[2], 80, 24, hw_h, hw_w);
        else if (i == 5) /* f3 -> decode3's concat [x4 up (128), f3 (40), s3 (3)] */
            y = rvm_view(&s->cat[3], 128, 40, hw_h, hw_w);
        else
            y = rvm_view(&s->enc[x.data == s->enc[0].data ? 1 : 0], 0, b->cout, hw_h, hw_w);
        if ((st = block_forward(s, b, &x, &lv[L], &lv[Lo], &y))) return st;
        x = y;
        L = Lo;
    }
    return conv(s->be, &m->last, &x, &s->f4);
}
