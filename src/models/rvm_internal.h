/* Internal: Robust Video Matting (MobileNetV3 and ResNet50) model and state structures, shared
 * by src/models/rvm_*.c. Public API: include/depthmatte/rvm.h. The two variants differ only in
 * the encoder (rvm_encoder.c / rvm_resnet.c) and in channel counts; LR-ASPP, the recurrent
 * decoder and the refiners are the same code, parameterised by the counts in rvm_model.
 *
 * Buffer layout trick (no concatenation copies): every torch.cat of the official code is a
 * buffer whose channel slices are written directly by the producing ops (batch is 1, so a
 * channel range of an NCHW tensor is contiguous). */
#ifndef DM_MODELS_RVM_INTERNAL_H
#define DM_MODELS_RVM_INTERNAL_H

#include "depthmatte/graph.h"
#include "depthmatte/copy_async.h"
#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"

#define RVM_BLOCKS 15     /* inverted residual blocks, backbone.features.1..15 */
#define RVM_R50_BLOCKS 16 /* ResNet-50 Bottlenecks: layer1..layer4 = 3 + 4 + 6 + 3 */

/* A convolution with BatchNorm folded in: y = act(conv(x, w) + b). */
typedef struct rvm_conv {
    dm_tensor w;          /* (Cout, Cin/groups, kh, kw) */
    dm_tensor b;          /* (Cout); data NULL when the layer has no bias */
    dm_conv2d_params p;
} rvm_conv;

/* torchvision InvertedResidual (MobileNetV3): [expand 1x1] -> depthwise kxk -> [SE] ->
 * project 1x1 (+ input when stride 1 and cin == cout). */
typedef struct rvm_block {
    int cin, cexp, cout, k, stride, dilation, use_se, has_expand, use_res;
    rvm_conv expand;          /* (cexp, cin, 1, 1), act RE/HS */
    rvm_conv dw;              /* (cexp, 1, k, k) */
    rvm_conv se_fc1, se_fc2;  /* (csq, cexp, 1, 1) ReLU, (cexp, csq, 1, 1) hardsigmoid */
    rvm_conv project;         /* (cout, cexp, 1, 1), no act */
} rvm_block;

/* torchvision Bottleneck (ResNet v1.5, stride on the 3x3): relu(conv3(relu(conv2(relu(conv1(x)))))
 * + identity), identity = downsample(x) (1x1 conv + BN) when the shape changes. */
typedef struct rvm_bottleneck {
    int cin, width, cout, stride, dilation, has_down;
    rvm_conv conv1; /* (width, cin, 1, 1) ReLU */
    rvm_conv conv2; /* (width, width, 3, 3) stride, dilation, padding = dilation; ReLU */
    rvm_conv conv3; /* (cout, width, 1, 1), no act (ReLU after the residual add) */
    rvm_conv down;  /* (cout, cin, 1, 1) stride, no act; only when has_down */
} rvm_bottleneck;

/* ConvGRU(C): ih (2C, 2C, 3, 3) sigmoid, hh (C, 2C, 3, 3) tanh. */
typedef struct rvm_gru {
    int c;
    rvm_conv ih, hh;
} rvm_gru;

struct rvm_model {
    dm_backend *be;
    rvm_variant variant;
    /* RecurrentDecoder(feature_channels, decoder_channels) of model.py: f1..f4 channels (f4 =
     * LR-ASPP output) and decode3..decode0 output channels.
     * MobileNetV3 [16, 24, 40, 128] [80, 40, 32, 16]; ResNet50 [64, 256, 512, 256]
     * [128, 64, 32, 16]. */
    int feat_c[4], dec_c[4];
    int backbone_c;                   /* backbone f4 channels: 960 / 2048 */
    dm_tensor norm_scale, norm_shift; /* (3): 1/std, -mean/std (ImageNet; MobileNetV3 only) */
    rvm_conv stem;                    /* MobileNetV3 features.0: (16, 3, 3, 3) s2 hardswish;
                                         ResNet50 conv1 + bn1: (64, 3, 7, 7) s2 p3 ReLU */
    rvm_block blocks[RVM_BLOCKS];     /* MobileNetV3 features.1..15 */
    rvm_conv last;                    /* MobileNetV3 features.16: (960, 160, 1, 1) hardswish */
    rvm_bottleneck r50[RVM_R50_BLOCKS]; /* ResNet50 layer1.0 .. layer4.2 */
    rvm_conv aspp1;                   /* (feat_c[3], backbone_c, 1, 1) ReLU */
    rvm_conv aspp2;                   /* (feat_c[3], backbone_c, 1, 1) no bias, sigmoid */
    rvm_gru gru[4];                   /* decode1..decode4 (index 0 = decode1, C = 16) */
    rvm_conv up_conv[3];              /* decode1..decode3 conv (index 0 = decode1) ReLU */
    rvm_conv out_conv[2];             /* decode0 conv.0 (16, 35), conv.3 (16, 16), ReLU */
    rvm_conv project_mat;             /* (4, 16, 1, 1) + bias */
    rvm_conv guide;                   /* (4, 3, 1, 1): [R, G, B, mean(RGB)], no bias */
    rvm_conv dgf_box;                 /* (16, 1, 3, 3): refiner.box_filter x 4 (stacked moments) */
    rvm_conv dgf_conv[3];             /* refiner.conv.0 (16, 24) ReLU, .3 (16, 16) ReLU, .6 (4, 16) */
    rvm_conv fgf_box_x, fgf_box_y;    /* (16, 1, 1, 3), (16, 1, 3, 1): 1/3 each, zero padding */
};

/* Sizes of one pyramid level: channels of the decoder buffers are fixed per level. */
typedef struct rvm_level {
    int h, w;
} rvm_level;

struct rvm_state {
    const rvm_model *m;
    dm_backend *be;
    int H, W;              /* frame size */
    double ratio;          /* downsample ratio */
    rvm_refiner refiner;
    rvm_level lv[5];       /* lv[0] internal size, lv[k] = 1/2^k (rounded up) */

    dm_tensor src;         /* (1, 3, H, W) input of rvm_forward_u8 */
    dm_tensor norm;        /* (1, 3, h, w) normalised network input */
    dm_tensor enc[4];      /* encoder scratch: 2 ping-pong block outputs, expand, depthwise */
    dm_tensor se_pool, se_mid, se_gate; /* (1, cexp|csq, 1, 1) */
    dm_tensor f4;          /* (1, backbone_c, h4, w4) */
    dm_tensor aspp_gate;   /* (1, feat_c[3], 1, 1); aspp_pool (1, backbone_c, 1, 1) */
    dm_tensor aspp_pool;
    /* Decoder concat buffers: cat[k] = [upsampled x, skip feature f_k, pooled source s_k]
     * (k = 1..3), cat[0] = [upsampled x1 (32), s0 = src_sm (3)]. */
    dm_tensor cat[4];
    /* GRU buffers u[k] (k = 1..4) = [a (C), b (C), h (C)]: the block conv writes [a, b];
     * after the update b holds h_new (so [a, b] is the block output) and h a copy of it. */
    dm_tensor u[5];
    dm_tensor gru_rz, gru_v, gru_c; /* (1, 2C), (1, 2C), (1, C) at the largest level */
    dm_tensor rec[5];               /* views: r1..r4 = h slices of u[1..4] */
    dm_tensor t16a, t16b;  /* (1, 16, h, w) scratch */
    dm_tensor g16, m16;    /* (1, 16, h, w): [x, y, xy, xx] moments and their box means */
    dm_tensor r24;         /* (1, 24, h, w): [cov (4), var (4), hid (16)] */
    dm_tensor coef_a, coef_b, tmp4; /* (1, 4, h, w) */
    dm_tensor out_fgr, out_pha;     /* non-CPU backends: device outputs of rvm_forward_u8 */
    dm_tensor zero;                 /* non-CPU backends: host zeros for rvm_state_reset */
    dm_async_counts counts;         /* NaN/Inf in pha (+ fgr) of the last rvm_forward_u8 */
    dm_tensor ckpt[5];              /* ckpt[1..4]: r1..r4 at the last rvm_state_checkpoint */
    /* rvm_forward_u8 on a backend with graphs: rvm_forward(src, out_fgr?, out_pha) captured
     * once per (fgr wanted, refiner) and replayed. It reads and writes the recurrent state in
     * place (h slices of u[1..4]), so every replay continues the sequence; a reset writes
     * zeros into the same buffers outside the graph. */
    dm_graph_runner graph;
    int graph_fgr; /* the body's variant of this call */
};

/* Channel-slice view of a (1, C, h, w) buffer: channels [c0, c0 + c) with spatial size h x w
 * (the buffer may be larger; the view reinterprets its storage). data is NULL when the view
 * does not fit, so the next op fails cleanly instead of overrunning. */
dm_tensor rvm_view(const dm_tensor *buf, int c0, int c, int h, int w);

/* rvm_weights.c: m->variant selects the key set. */
dm_status rvm_load_weights(rvm_model *m, dm_st_file *f);
void rvm_conv_free(rvm_conv *c);
/* rvm_weights.c helpers shared with rvm_resnet_weights.c */
dm_status rvm_load_conv(dm_st_file *f, rvm_conv *c, const char *conv, int has_bias,
                        const char *bn, double eps, int cout, int cin_g, int kh, int kw,
                        dm_conv2d_params p);
dm_conv2d_params rvm_cp(int k, int s, int d, int g, dm_act act);
/* rvm_resnet.c: ResNet-50 encoder weights (backbone.conv1, bn1, layer1..4). */
dm_status rvm_resnet_load(rvm_model *m, dm_st_file *f);
/* rvm_resnet.c: floats needed by enc[0..3] (as rvm_encoder_sizes). */
void rvm_resnet_sizes(const rvm_model *m, const rvm_level *lv, size_t n[4]);
/* rvm_resnet.c: x = src_sm (1, 3, h, w), not normalised (model/resnet.py has no
 * normalisation) -> f1..f3 into the decoder concat slots, f4 (1, 2048, h/16, w/16) into s->f4. */
dm_status rvm_resnet_forward(rvm_state *s, const dm_tensor *x);

/* rvm_encoder.c: floats needed by the encoder scratch buffers enc[0..3] for these levels. */
void rvm_encoder_sizes(const rvm_model *m, const rvm_level *lv, size_t n[4]);
/* rvm_encoder.c: normalised input s->norm -> f1..f3 written into the decoder concat slots,
 * f4 (1, 960, h/16, w/16) into s->f4. */
dm_status rvm_encoder_forward(rvm_state *s);
/* rvm_lraspp.c: s->f4 -> u[4][0:128]. */
dm_status rvm_lraspp_forward(rvm_state *s);
/* rvm_decoder.c: pyramid, recurrent decoder and project_mat -> g16[4:8] (base fgr residual,
 * alpha) and hid in r24[8:24]. s0 = src_sm must already be in cat[0][32:35]. */
dm_status rvm_decoder_forward(rvm_state *s);
/* rvm_model.c: the first half of rvm_forward (downsample, encoder, LR-ASPP: s->f4 and the
 * ASPP output u[4][0:feat_c[3]] hold the frame's values afterwards; tests read the taps
 * there) and the second half (decoder, refiner). */
dm_status rvm_forward_features(rvm_state *s, const dm_tensor *src);
dm_status rvm_forward_tail(rvm_state *s, const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha);
/* rvm_refiner.c: final outputs (refiner when ratio != 1). */
dm_status rvm_refiner_forward(rvm_state *s, const dm_tensor *src, dm_tensor *fgr,
                              dm_tensor *pha);

#endif
