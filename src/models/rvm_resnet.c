/* RVM ResNet-50 encoder (RVM model/resnet.py on torchvision's ResNet, He et al., "Deep Residual
 * Learning for Image Recognition", CVPR 2016; Bottleneck v1.5 with the stride on the 3x3):
 *   conv1 7x7 s2 p3 + BN + ReLU -> f1 (64, 1/2); max pool 3x3 s2 p1;
 *   layer1 (3 Bottlenecks, 256) -> f2 (1/4); layer2 (4, 512, stride 2) -> f3 (1/8);
 *   layer3 (6, 1024, stride 2); layer4 (3, 2048) with replace_stride_with_dilation
 *   [False, False, True]: stride 1, its first block dilation 1 (torchvision passes the
 *   previous dilation to the first block), the others dilation 2 -> f4 (2048, 1/16).
 * No input normalisation (resnet.py feeds src_sm as is). BatchNorm (eps 1e-5, torchvision's
 * default) is folded into every convolution at load. f1..f3 are written straight into the
 * decoder's concat buffers, as the MobileNetV3 encoder does. */
#include <stdio.h>

#include "rvm_internal.h"

#define EPS_BN 1e-5

/* torchvision resnet50: blocks per layer, bottleneck width (planes) per layer. */
static const int layer_blocks[4] = {3, 4, 6, 3}, layer_width[4] = {64, 128, 256, 512};

dm_status rvm_resnet_load(rvm_model *m, dm_st_file *f) {
    dm_status st;
    char conv[128], bn[128];
    if ((st = rvm_load_conv(f, &m->stem, "backbone.conv1", 0, "backbone.bn1", EPS_BN, 64, 3, 7, 7,
                            rvm_cp(7, 2, 1, 1, DM_ACT_RELU))))
        return st;
    int cin = 64, dilation = 1, n = 0;
    for (int L = 0; L < 4; L++) {
        const int width = layer_width[L], cout = 4 * width;
        int stride = L == 0 ? 1 : 2, prev_dilation = dilation;
        if (L == 3) { /* replace_stride_with_dilation[2]: dilation *= stride, stride = 1 */
            dilation *= stride;
            stride = 1;
        }
        for (int i = 0; i < layer_blocks[L]; i++, n++) {
            rvm_bottleneck *b = &m->r50[n];
            b->cin = cin, b->width = width, b->cout = cout;
            b->stride = i == 0 ? stride : 1;
            b->dilation = i == 0 ? prev_dilation : dilation;
            b->has_down = i == 0 && (stride != 1 || cin != cout);
            static const char *const part[3] = {"conv1", "conv2", "conv3"};
            rvm_conv *c[3] = {&b->conv1, &b->conv2, &b->conv3};
            const dm_conv2d_params p[3] = {rvm_cp(1, 1, 1, 1, DM_ACT_RELU),
                                           rvm_cp(3, b->stride, b->dilation, 1, DM_ACT_RELU),
                                           rvm_cp(1, 1, 1, 1, DM_ACT_NONE)};
            const int co[3] = {width, width, cout}, ci[3] = {cin, width, width}, k[3] = {1, 3, 1};
            for (int j = 0; j < 3; j++) {
                snprintf(conv, sizeof conv, "backbone.layer%d.%d.%s", L + 1, i, part[j]);
                snprintf(bn, sizeof bn, "backbone.layer%d.%d.bn%d", L + 1, i, j + 1);
                if ((st = rvm_load_conv(f, c[j], conv, 0, bn, EPS_BN, co[j], ci[j], k[j], k[j],
                                        p[j])))
                    return st;
            }
            if (b->has_down) {
                snprintf(conv, sizeof conv, "backbone.layer%d.%d.downsample.0", L + 1, i);
                snprintf(bn, sizeof bn, "backbone.layer%d.%d.downsample.1", L + 1, i);
                dm_conv2d_params pd = rvm_cp(1, b->stride, 1, 1, DM_ACT_NONE);
                if ((st = rvm_load_conv(f, &b->down, conv, 0, bn, EPS_BN, cout, cin, 1, 1, pd)))
                    return st;
            }
            cin = cout;
        }
    }
    return DM_OK;
}

/* Pyramid level of the input of block n (2 = after the stem's pool) and of its output. */
static int level_in(const rvm_model *m, int n) {
    int L = 2;
    for (int i = 0; i < n; i++)
        L += m->r50[i].stride == 2;
    return L;
}

void rvm_resnet_sizes(const rvm_model *m, const rvm_level *lv, size_t n[4]) {
    n[0] = (size_t)64 * lv[2].h * lv[2].w; /* max pool output */
    n[2] = n[3] = 0;
    for (int i = 0; i < RVM_R50_BLOCKS; i++) {
        const rvm_bottleneck *b = &m->r50[i];
        const rvm_level *in = &lv[level_in(m, i)], *out = &lv[level_in(m, i) + (b->stride == 2)];
        const size_t o = (size_t)b->cout * out->h * out->w;
        const size_t t1 = (size_t)b->width * in->h * in->w, t2 = (size_t)b->width * out->h * out->w;
        if (o > n[0]) n[0] = o;
        if (t1 > n[2]) n[2] = t1;
        if (o > n[2]) n[2] = o; /* enc[2] also takes the downsample branch after conv2 */
        if (t2 > n[3]) n[3] = t2;
    }
    n[1] = n[0];
}

static dm_status conv(dm_backend *be, const rvm_conv *c, const dm_tensor *x, dm_tensor *y) {
    return dm_conv2d(be, x, &c->w, c->b.data ? &c->b : NULL, &c->p, y);
}

/* One Bottleneck: x (1, cin, lin) -> y (1, cout, lout); y must not alias x. */
static dm_status bottleneck_forward(rvm_state *s, const rvm_bottleneck *b, const dm_tensor *x,
                                    const rvm_level *lin, const rvm_level *lout, dm_tensor *y) {
    dm_backend *be = s->be;
    dm_status st;
    dm_tensor t1 = rvm_view(&s->enc[2], 0, b->width, lin->h, lin->w);
    dm_tensor t2 = rvm_view(&s->enc[3], 0, b->width, lout->h, lout->w);
    if ((st = conv(be, &b->conv1, x, &t1)) || (st = conv(be, &b->conv2, &t1, &t2)) ||
        (st = conv(be, &b->conv3, &t2, y)))
        return st;
    dm_tensor id = *x;
    if (b->has_down) { /* t1 is free again once conv2 has run */
        id = rvm_view(&s->enc[2], 0, b->cout, lout->h, lout->w);
        if ((st = conv(be, &b->down, x, &id))) return st;
    }
    if ((st = dm_binary(be, y, &id, DM_BINARY_ADD, y))) return st;
    return dm_activation(be, y, DM_ACT_RELU, y);
}

dm_status rvm_resnet_forward(rvm_state *s, const dm_tensor *x) {
    const rvm_model *m = s->m;
    const rvm_level *lv = s->lv;
    dm_status st;
    /* f1 -> decode1's concat [x2 up (D1), f1 (64), s1 (3)] */
    dm_tensor f1 = rvm_view(&s->cat[1], m->dec_c[1], m->feat_c[0], lv[1].h, lv[1].w);
    dm_tensor p = rvm_view(&s->enc[0], 0, 64, lv[2].h, lv[2].w);
    if ((st = conv(s->be, &m->stem, x, &f1)) || (st = dm_maxpool2d(s->be, &f1, 3, 2, 1, &p)))
        return st;
    dm_tensor cur = p;
    int L = 2;
    for (int i = 0; i < RVM_R50_BLOCKS; i++) {
        const rvm_bottleneck *b = &m->r50[i];
        const int Lo = L + (b->stride == 2);
        dm_tensor y;
        if (i == 2) /* end of layer1: f2 -> decode2's concat [x3 up (D0), f2, s2] */
            y = rvm_view(&s->cat[2], m->dec_c[0], m->feat_c[1], lv[Lo].h, lv[Lo].w);
        else if (i == 6) /* end of layer2: f3 -> decode3's concat [x4 up (F3), f3, s3] */
            y = rvm_view(&s->cat[3], m->feat_c[3], m->feat_c[2], lv[Lo].h, lv[Lo].w);
        else if (i == RVM_R50_BLOCKS - 1)
            y = s->f4;
        else
            y = rvm_view(&s->enc[cur.data == s->enc[0].data ? 1 : 0], 0, b->cout, lv[Lo].h,
                         lv[Lo].w);
        if ((st = bottleneck_forward(s, b, &cur, &lv[L], &lv[Lo], &y))) return st;
        cur = y;
        L = Lo;
    }
    return DM_OK;
}
