/* RVM weight loading with name / shape / dtype validation and BatchNorm folding. Key names and
 * shapes are those of the official MattingNetwork('mobilenetv3' | 'resnet50').state_dict()
 * (torchvision 0.14 MobileNetV3 layout for `backbone.features.N`; the ResNet-50 backbone is
 * loaded by rvm_resnet.c). LR-ASPP, decoder and refiner keys are shared by both variants. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rvm_internal.h"

/* torchvision mobilenet_v3_large inverted_residual_setting as RVM's MobileNetV3LargeEncoder
 * (model/mobilenetv3.py): input, kernel, expanded, output, SE, hardswish, stride, dilation. */
static const int rvm_block_cfg[RVM_BLOCKS][8] = {
    {16, 3, 16, 16, 0, 0, 1, 1},     {16, 3, 64, 24, 0, 0, 2, 1},
    {24, 3, 72, 24, 0, 0, 1, 1},     {24, 5, 72, 40, 1, 0, 2, 1},
    {40, 5, 120, 40, 1, 0, 1, 1},    {40, 5, 120, 40, 1, 0, 1, 1},
    {40, 3, 240, 80, 0, 1, 2, 1},    {80, 3, 200, 80, 0, 1, 1, 1},
    {80, 3, 184, 80, 0, 1, 1, 1},    {80, 3, 184, 80, 0, 1, 1, 1},
    {80, 3, 480, 112, 1, 1, 1, 1},   {112, 3, 672, 112, 1, 1, 1, 1},
    {112, 5, 672, 160, 1, 1, 2, 2},  {160, 5, 960, 160, 1, 1, 1, 2},
    {160, 5, 960, 160, 1, 1, 1, 2},
};

#define EPS_BACKBONE 1e-3 /* torchvision MobileNetV3 BatchNorm2d(eps=0.001) */
#define EPS_DEFAULT 1e-5  /* nn.BatchNorm2d default: LR-ASPP, decoder, refiner */

/* torchvision _make_divisible(v, 8): SE squeeze channels. */
static int make_divisible8(int v) {
    int n = (v + 4) / 8 * 8;
    if (n < 8) n = 8;
    if (n < 0.9 * v) n += 8;
    return n;
}

void rvm_conv_free(rvm_conv *c) {
    dm_tensor_free(&c->w);
    dm_tensor_free(&c->b);
}

/* Loads a float tensor (F32 or F16 in the file) of the given shape. */
static dm_status load_float(dm_st_file *f, const char *name, int ndim, const int64_t *shape,
                            dm_tensor *out) {
    dm_st_entry *e = dm_st_find(f, name);
    if (e && e->dtype != DM_DTYPE_F32 && e->dtype != DM_DTYPE_F16)
        return dm_error_set(DM_ERR_DTYPE, "%s: tensor %s: dtype %s, expected F16 or F32", f->path,
                            name, dm_dtype_name(e->dtype));
    return dm_st_load_f32(f, name, ndim, shape, out);
}

/* BatchNorm's num_batches_tracked: an I64 scalar, checked and marked used (not needed). */
static dm_status check_counter(dm_st_file *f, const char *name) {
    dm_st_entry *e = dm_st_find(f, name);
    if (!e) return dm_error_set(DM_ERR_NAME, "%s: tensor %s is missing", f->path, name);
    if (e->dtype != DM_DTYPE_I64 || e->ndim != 0)
        return dm_error_set(DM_ERR_DTYPE, "%s: tensor %s: expected an I64 scalar", f->path, name);
    e->used = 1;
    return DM_OK;
}

/* Loads conv `<conv>.weight` (cout, cin_g, kh, kw), optional `<conv>.bias`, and folds the
 * optional BatchNorm `<bn>.{weight,bias,running_mean,running_var}` into it:
 * w' = w * g/sqrt(v + eps), b' = beta - mean * g/sqrt(v + eps). */
dm_status rvm_load_conv(dm_st_file *f, rvm_conv *c, const char *conv, int has_bias,
                           const char *bn, double eps, int cout, int cin_g, int kh, int kw,
                           dm_conv2d_params p) {
    char name[256];
    dm_status st;
    const int64_t wshape[4] = {cout, cin_g, kh, kw}, vshape[1] = {cout};
    memset(c, 0, sizeof *c);
    c->p = p;
    snprintf(name, sizeof name, "%s.weight", conv);
    if ((st = load_float(f, name, 4, wshape, &c->w))) return st;
    if (has_bias) {
        snprintf(name, sizeof name, "%s.bias", conv);
        if ((st = load_float(f, name, 1, vshape, &c->b))) return st;
    }
    if (!bn) return DM_OK;
    static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
    dm_tensor t[4] = {{0}};
    for (int i = 0; i < 4 && !st; i++) {
        snprintf(name, sizeof name, "%s.%s", bn, parts[i]);
        st = load_float(f, name, 1, vshape, &t[i]);
    }
    if (!st) {
        snprintf(name, sizeof name, "%s.num_batches_tracked", bn);
        st = check_counter(f, name);
    }
    if (!st && !c->b.data) st = dm_tensor_alloc(&c->b, DM_DTYPE_F32, 1, vshape);
    if (!st) {
        const float *g = dm_f32(&t[0]), *beta = dm_f32(&t[1]), *mu = dm_f32(&t[2]),
                    *var = dm_f32(&t[3]);
        float *w = dm_f32(&c->w), *b = dm_f32(&c->b);
        const int per = cin_g * kh * kw;
        for (int o = 0; o < cout; o++) {
            double sc = (double)g[o] / sqrt((double)var[o] + eps);
            for (int i = 0; i < per; i++) w[(size_t)o * per + i] = (float)(w[(size_t)o * per + i] * sc);
            b[o] = (float)((double)beta[o] + ((double)b[o] - (double)mu[o]) * sc);
        }
    }
    for (int i = 0; i < 4; i++) dm_tensor_free(&t[i]);
    return st;
}

dm_conv2d_params rvm_cp(int k, int s, int d, int g, dm_act act) {
    dm_conv2d_params p = {s, s, (k - 1) / 2 * d, (k - 1) / 2 * d, d, d, g, act};
    return p;
}

static dm_status load_block(dm_st_file *f, rvm_block *b, int idx) {
    const int *cfg = rvm_block_cfg[idx - 1];
    dm_status st;
    char conv[128], bn[128];
    b->cin = cfg[0], b->k = cfg[1], b->cexp = cfg[2], b->cout = cfg[3], b->use_se = cfg[4];
    const dm_act act = cfg[5] ? DM_ACT_HARDSWISH : DM_ACT_RELU;
    b->dilation = cfg[7];
    b->stride = b->dilation > 1 ? 1 : cfg[6]; /* torchvision: dilation replaces the stride */
    b->has_expand = b->cexp != b->cin;
    b->use_res = cfg[6] == 1 && b->cin == b->cout;
    int layer = 0;
    if (b->has_expand) {
        snprintf(conv, sizeof conv, "backbone.features.%d.block.0.0", idx);
        snprintf(bn, sizeof bn, "backbone.features.%d.block.0.1", idx);
        if ((st = rvm_load_conv(f, &b->expand, conv, 0, bn, EPS_BACKBONE, b->cexp, b->cin, 1, 1,
                            rvm_cp(1, 1, 1, 1, act))))
            return st;
        layer++;
    }
    snprintf(conv, sizeof conv, "backbone.features.%d.block.%d.0", idx, layer);
    snprintf(bn, sizeof bn, "backbone.features.%d.block.%d.1", idx, layer);
    if ((st = rvm_load_conv(f, &b->dw, conv, 0, bn, EPS_BACKBONE, b->cexp, 1, b->k, b->k,
                        rvm_cp(b->k, b->stride, b->dilation, b->cexp, act))))
        return st;
    layer++;
    if (b->use_se) {
        const int csq = make_divisible8(b->cexp / 4);
        snprintf(conv, sizeof conv, "backbone.features.%d.block.%d.fc1", idx, layer);
        if ((st = rvm_load_conv(f, &b->se_fc1, conv, 1, NULL, 0, csq, b->cexp, 1, 1,
                            rvm_cp(1, 1, 1, 1, DM_ACT_RELU))))
            return st;
        snprintf(conv, sizeof conv, "backbone.features.%d.block.%d.fc2", idx, layer);
        if ((st = rvm_load_conv(f, &b->se_fc2, conv, 1, NULL, 0, b->cexp, csq, 1, 1,
                            rvm_cp(1, 1, 1, 1, DM_ACT_HARDSIGMOID))))
            return st;
        layer++;
    }
    snprintf(conv, sizeof conv, "backbone.features.%d.block.%d.0", idx, layer);
    snprintf(bn, sizeof bn, "backbone.features.%d.block.%d.1", idx, layer);
    return rvm_load_conv(f, &b->project, conv, 0, bn, EPS_BACKBONE, b->cout, b->cexp, 1, 1,
                     rvm_cp(1, 1, 1, 1, DM_ACT_NONE));
}

/* Fills a (n, 1, kh, kw) depthwise weight with `v`, or with `src` (c, 1, kh, kw) repeated. */
static dm_status make_dw(rvm_conv *c, int n, int kh, int kw, float v, const dm_tensor *src,
                         dm_conv2d_params p) {
    const int64_t shape[4] = {n, 1, kh, kw};
    memset(c, 0, sizeof *c);
    c->p = p;
    dm_status st = dm_tensor_alloc(&c->w, DM_DTYPE_F32, 4, shape);
    if (st) return st;
    float *w = dm_f32(&c->w);
    const int per = kh * kw;
    for (int i = 0; i < n * per; i++)
        w[i] = src ? dm_f32(src)[i % (int)dm_tensor_numel(src)] : v;
    return DM_OK;
}

/* RecurrentDecoder(F = feat_c, D = dec_c) of model/decoder.py: decode4 = BottleneckBlock(F3)
 * (ConvGRU(F3/2)), decode3 = UpsamplingBlock(F3, F2, 3, D0), decode2 = (D0, F1, 3, D1),
 * decode1 = (D1, F0, 3, D2), decode0 = OutputBlock(D2, 3, D3); UpsamplingBlock(in, skip, src,
 * out) = conv3x3(in + skip + src -> out) + BN + ReLU, ConvGRU(out/2). */
static dm_status load_decoder(rvm_model *m, dm_st_file *f) {
    const int *F = m->feat_c, *D = m->dec_c;
    const int gru_c[4] = {D[2] / 2, D[1] / 2, D[0] / 2, F[3] / 2};
    /* decode1..3 conv input = upsampled x + skip feature + 3 source channels */
    const int up_in[3] = {D[1] + F[0] + 3, D[0] + F[1] + 3, F[3] + F[2] + 3};
    const int up_out[3] = {D[2], D[1], D[0]};
    char conv[128], bn[128];
    dm_status st;
    for (int i = 0; i < 4; i++) {
        const int c = gru_c[i];
        m->gru[i].c = c;
        snprintf(conv, sizeof conv, "decoder.decode%d.gru.ih.0", i + 1);
        if ((st = rvm_load_conv(f, &m->gru[i].ih, conv, 1, NULL, 0, 2 * c, 2 * c, 3, 3,
                            rvm_cp(3, 1, 1, 1, DM_ACT_SIGMOID))))
            return st;
        snprintf(conv, sizeof conv, "decoder.decode%d.gru.hh.0", i + 1);
        if ((st = rvm_load_conv(f, &m->gru[i].hh, conv, 1, NULL, 0, c, 2 * c, 3, 3,
                            rvm_cp(3, 1, 1, 1, DM_ACT_TANH))))
            return st;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(conv, sizeof conv, "decoder.decode%d.conv.0", i + 1);
        snprintf(bn, sizeof bn, "decoder.decode%d.conv.1", i + 1);
        if ((st = rvm_load_conv(f, &m->up_conv[i], conv, 0, bn, EPS_DEFAULT, up_out[i], up_in[i], 3, 3,
                            rvm_cp(3, 1, 1, 1, DM_ACT_RELU))))
            return st;
    }
    if ((st = rvm_load_conv(f, &m->out_conv[0], "decoder.decode0.conv.0", 0, "decoder.decode0.conv.1",
                        EPS_DEFAULT, D[3], D[2] + 3, 3, 3, rvm_cp(3, 1, 1, 1, DM_ACT_RELU))) ||
        (st = rvm_load_conv(f, &m->out_conv[1], "decoder.decode0.conv.3", 0, "decoder.decode0.conv.4",
                        EPS_DEFAULT, D[3], D[3], 3, 3, rvm_cp(3, 1, 1, 1, DM_ACT_RELU))))
        return st;
    return rvm_load_conv(f, &m->project_mat, "project_mat.conv", 1, NULL, 0, 4, 16, 1, 1,
                     rvm_cp(1, 1, 1, 1, DM_ACT_NONE));
}

static dm_status load_refiners(rvm_model *m, dm_st_file *f) {
    dm_status st;
    rvm_conv box;
    if ((st = rvm_load_conv(f, &box, "refiner.box_filter", 0, NULL, 0, 4, 1, 3, 3,
                        rvm_cp(3, 1, 1, 4, DM_ACT_NONE))))
        return st;
    /* the box filter runs once on the 16 stacked moment channels [x, y, xy, xx] (4 each) */
    st = make_dw(&m->dgf_box, 16, 3, 3, 0.f, &box.w, rvm_cp(3, 1, 1, 16, DM_ACT_NONE));
    rvm_conv_free(&box);
    if (st) return st;
    if ((st = rvm_load_conv(f, &m->dgf_conv[0], "refiner.conv.0", 0, "refiner.conv.1", EPS_DEFAULT,
                        16, 24, 1, 1, rvm_cp(1, 1, 1, 1, DM_ACT_RELU))) ||
        (st = rvm_load_conv(f, &m->dgf_conv[1], "refiner.conv.3", 0, "refiner.conv.4", EPS_DEFAULT,
                        16, 16, 1, 1, rvm_cp(1, 1, 1, 1, DM_ACT_RELU))) ||
        (st = rvm_load_conv(f, &m->dgf_conv[2], "refiner.conv.6", 1, NULL, 0, 4, 16, 1, 1,
                        rvm_cp(1, 1, 1, 1, DM_ACT_NONE))))
        return st;
    /* fast guided filter BoxFilter(r=1): 1x3 then 3x1 convolutions of 1/3, zero padding */
    dm_conv2d_params px = {1, 1, 0, 1, 1, 1, 16, DM_ACT_NONE};
    dm_conv2d_params py = {1, 1, 1, 0, 1, 1, 16, DM_ACT_NONE};
    if ((st = make_dw(&m->fgf_box_x, 16, 1, 3, 1.f / 3.f, NULL, px)) ||
        (st = make_dw(&m->fgf_box_y, 16, 3, 1, 1.f / 3.f, NULL, py)))
        return st;
    /* guide [R, G, B, mean(R, G, B)] as a 1x1 convolution (identity rows are exact) */
    const int64_t gshape[4] = {4, 3, 1, 1};
    memset(&m->guide, 0, sizeof m->guide);
    m->guide.p = rvm_cp(1, 1, 1, 1, DM_ACT_NONE);
    if ((st = dm_tensor_alloc(&m->guide.w, DM_DTYPE_F32, 4, gshape))) return st;
    float *g = dm_f32(&m->guide.w);
    for (int i = 0; i < 3; i++) g[i * 3 + i] = 1.f;
    for (int i = 0; i < 3; i++) g[9 + i] = 1.f / 3.f;
    return DM_OK;
}

static dm_status load_mobilenetv3(rvm_model *m, dm_st_file *f);

/* A key only one variant has, to name the variant a file holds in the error message. */
static const char *const variant_key[2] = {"backbone.features.0.0.weight", "backbone.conv1.weight"};
static const char *const variant_name[2] = {"MobileNetV3", "ResNet50"};

dm_status rvm_load_weights(rvm_model *m, dm_st_file *f) {
    dm_status st;
    const int v = m->variant == RVM_VARIANT_RESNET50;
    if (!dm_st_find(f, variant_key[v]) && dm_st_find(f, variant_key[!v]))
        return dm_error_set(DM_ERR_NAME, "%s: holds RVM %s weights (tensor %s), expected %s",
                            f->path, variant_name[!v], variant_key[!v], variant_name[v]);
    /* model.py: LRASPP(960, 128) / LRASPP(2048, 256), RecurrentDecoder channels */
    static const int feat[2][4] = {{16, 24, 40, 128}, {64, 256, 512, 256}};
    static const int dec[2][4] = {{80, 40, 32, 16}, {128, 64, 32, 16}};
    memcpy(m->feat_c, feat[v], sizeof m->feat_c);
    memcpy(m->dec_c, dec[v], sizeof m->dec_c);
    m->backbone_c = v ? 2048 : 960;
    if (v) {
        if ((st = rvm_resnet_load(m, f))) return st;
    } else if ((st = load_mobilenetv3(m, f))) {
        return st;
    }
    const int A = m->feat_c[3], B = m->backbone_c;
    if ((st = rvm_load_conv(f, &m->aspp1, "aspp.aspp1.0", 0, "aspp.aspp1.1", EPS_DEFAULT, A, B,
                            1, 1, rvm_cp(1, 1, 1, 1, DM_ACT_RELU))) ||
        (st = rvm_load_conv(f, &m->aspp2, "aspp.aspp2.1", 0, NULL, 0, A, B, 1, 1,
                            rvm_cp(1, 1, 1, 1, DM_ACT_SIGMOID))) ||
        (st = load_decoder(m, f)) || (st = load_refiners(m, f)))
        return st;
    static const char *const ignore[] = {"project_seg.", NULL};
    return dm_st_check_all_used(f, ignore);
}

/* MobileNetV3 backbone: ImageNet normalisation, features.0..16. */
static dm_status load_mobilenetv3(rvm_model *m, dm_st_file *f) {
    dm_status st;
    const int64_t three[1] = {3};
    if ((st = dm_tensor_alloc(&m->norm_scale, DM_DTYPE_F32, 1, three)) ||
        (st = dm_tensor_alloc(&m->norm_shift, DM_DTYPE_F32, 1, three)))
        return st;
    /* torchvision normalize(x, mean, std) = (x - mean) / std, ImageNet statistics */
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (int i = 0; i < 3; i++) {
        dm_f32(&m->norm_scale)[i] = 1.f / std[i];
        dm_f32(&m->norm_shift)[i] = -mean[i] / std[i];
    }
    if ((st = rvm_load_conv(f, &m->stem, "backbone.features.0.0", 0, "backbone.features.0.1",
                        EPS_BACKBONE, 16, 3, 3, 3, rvm_cp(3, 2, 1, 1, DM_ACT_HARDSWISH))))
        return st;
    for (int i = 0; i < RVM_BLOCKS; i++)
        if ((st = load_block(f, &m->blocks[i], i + 1))) return st;
    return rvm_load_conv(f, &m->last, "backbone.features.16.0", 0, "backbone.features.16.1",
                         EPS_BACKBONE, 960, 160, 1, 1, rvm_cp(1, 1, 1, 1, DM_ACT_HARDSWISH));
}
