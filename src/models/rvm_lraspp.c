/* RVM LR-ASPP (model/lraspp.py, Howard et al., "Searching for MobileNetV3", 2019):
 * aspp1 = ReLU(BN(conv1x1(f4))), aspp2 = sigmoid(conv1x1(global average pool(f4))),
 * output aspp1 * aspp2 (per-channel gate), 128 (MobileNetV3) / 256 (ResNet50) channels at 1/16.
 * The output is written into the bottleneck GRU buffer u[4] = [a (C), b (C), h (C)], C = half. */
#include "rvm_internal.h"

dm_status rvm_lraspp_forward(rvm_state *s) {
    const rvm_model *m = s->m;
    dm_backend *be = s->be;
    dm_status st;
    dm_tensor out = rvm_view(&s->u[4], 0, m->feat_c[3], s->lv[4].h, s->lv[4].w);
    if ((st = dm_conv2d(be, &s->f4, &m->aspp1.w, &m->aspp1.b, &m->aspp1.p, &out)) ||
        (st = dm_global_avgpool2d(be, &s->f4, &s->aspp_pool)) ||
        (st = dm_conv2d(be, &s->aspp_pool, &m->aspp2.w, NULL, &m->aspp2.p, &s->aspp_gate)))
        return st;
    return dm_channel_affine(be, &out, &s->aspp_gate, NULL, &out);
}
