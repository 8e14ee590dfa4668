/* Internal: Robust Video Matting (MobileNetV3) model and state structures, shared by
 * src/models/rvm_*.c. Public API: include/depthmatte/rvm.h.
 *
 * Buffer layout trick (no concatenation copies): every torch.cat of the official code is a
 * buffer whose channel slices are written directly by the producing ops (batch is 1, so a
 * channel range of an NCHW tensor is contiguous). */
#ifndef DM_MODELS_RVM_INTERNAL_H
#define DM_MODELS_RVM_INTERNAL_H

#include "depthmatte/rvm.h"
#include "depthmatte/safetensors.h"

#define RVM_BLOCKS 15 /* inverted residual blocks, backbone.features.1..15 */

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

/* ConvGRU(C): ih (2C, 2C, 3, 3) sigmoid, hh (C, 2C, 3, 3) tanh. */
typedef struct rvm_gru {
    int c;
    rvm_conv ih, hh;
} rvm_gru;

struct rvm_model {
    dm_backend *be;
    dm_tensor norm_scale, norm_shift; /* (3): 1/std, -mean/std (ImageNet) */
    rvm_conv stem;                    /* features.0: (16, 3, 3, 3) s2 hardswish */
    rvm_block blocks[RVM_BLOCKS];     /* features.1..15 */
    rvm_conv last;                    /* features.16: (960, 160, 1, 1) hardswish */
    rvm_conv aspp1;                   /* (128, 960, 1, 1) ReLU */
    rvm_conv aspp2;                   /* (128, 960, 1, 1) no bias, sigmoid */
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
    dm_tensor f4;          /* (1, 960, h4, w4) */
    dm_tensor aspp_gate;   /* (1, 128, 1, 1); aspp_pool (1, 960, 1, 1) */
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
};

/* Channel-slice view of a (1, C, h, w) buffer: channels [c0, c0 + c) with spatial size h x w
 * (the buffer may be larger; the view reinterprets its storage). data is NULL when the view
 * does not fit, so the next op fails cleanly instead of overrunning. */
dm_tensor rvm_view(const dm_tensor *buf, int c0, int c, int h, int w);

/* rvm_weights.c */
dm_status rvm_load_weights(rvm_model *m, dm_st_file *f);
void rvm_conv_free(rvm_conv *c);

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
/* rvm_refiner.c: final outputs (refiner when ratio != 1). */
dm_status rvm_refiner_forward(rvm_state *s, const dm_tensor *src, dm_tensor *fgr,
                              dm_tensor *pha);

#endif
