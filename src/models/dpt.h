/* Internal: DPT head of Depth Anything V2 (Depth-Anything-V2/depth_anything_v2/dpt.py DPTHead,
 * util/blocks.py FeatureFusionBlock / ResidualConvUnit; features 64, out_channels
 * 48/96/192/384, use_bn False, use_clstoken False). The stages are separate functions so that
 * the temporal head of Video Depth Anything (motion modules after layer_3, layer_4, path_4,
 * path_3) can call them in its own order on a batch of frames. */
#ifndef DM_MODELS_DPT_H
#define DM_MODELS_DPT_H

#include "depthmatte/backend.h"
#include "models/da2_weights.h"
#include "models/model_tensors.h"

#define DPT_FEATURES 64
#define DPT_HEAD2 32 /* head_features_2 */

typedef struct dpt_rcu { /* ResidualConvUnit: x + conv2(relu(conv1(relu(x)))) */
    dm_tensor c1_w, c1_b, c2_w, c2_b; /* (64, 64, 3, 3), (64) */
} dpt_rcu;

typedef struct dpt_fusion { /* FeatureFusionBlock, align_corners True */
    dpt_rcu rcu1, rcu2;
    dm_tensor out_w, out_b; /* (64, 64, 1, 1), (64) */
} dpt_fusion;

typedef struct dpt_weights {
    int out_ch[4];                    /* 48, 96, 192, 384 */
    dm_tensor proj_w[4], proj_b[4];   /* projects.i: (out_ch[i], 384, 1, 1) */
    dm_tensor rs_w[4], rs_b[4];       /* resize_layers: 0 ConvT k4s4, 1 ConvT k2s2, 2 none,
                                         3 Conv 3x3 s2 p1 */
    dm_tensor rn_w[4];                /* scratch.layer{i+1}_rn: (64, out_ch[i], 3, 3), no bias */
    dpt_fusion ref[4];                /* scratch.refinenet{i+1} */
    dm_tensor oc1_w, oc1_b;           /* output_conv1: (32, 64, 3, 3) */
    dm_tensor oc2a_w, oc2a_b;         /* output_conv2.0: (32, 32, 3, 3) */
    dm_tensor oc2b_w, oc2b_b;         /* output_conv2.2: (1, 32, 1, 1) */
} dpt_weights;

/* Loads "<prefix>projects...", "<prefix>scratch..." (prefix "depth_head." for DA-V2, "head."
 * for VDA, which adds its motion modules itself). */
dm_status dpt_load(dpt_weights *w, da2_wsrc *src, const char *prefix);
void dpt_free(dpt_weights *w);

/* Calls fn on every weight tensor (free, upload to a device backend; models/model_tensors.h). */
dm_status dpt_each(dpt_weights *w, model_tensor_fn fn, void *arg);

/* Activations for B images of ph x pw patches. Spatial sizes: layer_1 4ph x 4pw, layer_2
 * 2ph, layer_3 ph, layer_4 (ph-1)/2+1; path_4 = size of layer_3, path_3 of layer_2, path_2
 * of layer_1, path_1 twice layer_1; output 14ph x 14pw. */
typedef struct dpt_ctx {
    int batch, ph, pw;
    int lh[4], lw[4];   /* spatial size of layer_i */
    dm_tensor tok;      /* (B, 384, ph, pw) one tapped feature as a map */
    dm_tensor proj[4];  /* (B, out_ch[i], ph, pw) */
    dm_tensor layer[4]; /* (B, out_ch[i], lh, lw) after resize (layer[2] is a copy of proj[2]) */
    dm_tensor rn[4];    /* (B, 64, lh, lw) layer_i_rn */
    dm_tensor path[4];  /* path[i] = output of refinenet{i+1}: (B, 64, size of layer_i) except
                           path[0] (B, 64, 2*lh0, 2*lw0) */
    dm_tensor t1, t2, t3; /* (B, 64, 4ph, 4pw) RCU / fusion temporaries */
    dm_tensor up;         /* (B, 64, 8ph, 8pw) upsampled fusion output */
    dm_tensor oc1;        /* (B, 32, 8ph, 8pw) */
    dm_tensor oc1_up;     /* (B, 32, 14ph, 14pw) */
    dm_tensor oc2a;       /* (B, 32, 14ph, 14pw) */
    dm_tensor out;        /* (B, 1, 14ph, 14pw) head output (>= 0) */
} dpt_ctx;

/* Zeroes c and sets batch, ph, pw and the layer sizes lh/lw without allocating (for heads that
 * plan the buffers themselves, models/dpt_temporal.h). DM_ERR_ARG for a non-positive size. */
dm_status dpt_ctx_dims(dpt_ctx *c, int batch, int ph, int pw);

dm_status dpt_ctx_init(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int batch, int ph,
                       int pw);
void dpt_ctx_free(dpt_ctx *c);

/* Stage 1a for tap i: feat (B, ph*pw, 384) patch tokens -> projects[i] -> resize_layers[i]
 * -> layer[i] (VDA's motion modules 0/1 act on layer[2]/layer[3] here). */
dm_status dpt_reassemble_layer(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int i,
                               const dm_tensor *feat);

/* Stage 1b: layer[i] -> scratch.layer{i+1}_rn -> rn[i]. */
dm_status dpt_layer_rn(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int i);

/* Stage 1 for tap i: dpt_reassemble_layer then dpt_layer_rn. */
dm_status dpt_reassemble(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int i,
                         const dm_tensor *feat);

/* FeatureFusionBlock f: out = out_conv(resize(rcu2(x0 [+ rcu1(x1)]))) with x1 NULL for
 * refinenet4; the resize is bilinear align_corners True to out's size (official `size=` or
 * scale_factor 2). x0, x1 (B, 64, h, w); out (B, 64, ho, wo). */
dm_status dpt_fusion_forward(dpt_ctx *c, const dpt_fusion *f, dm_backend *be,
                             const dm_tensor *x0, const dm_tensor *x1, dm_tensor *out);

/* Output stage: path[0] -> output_conv1 -> bilinear (align_corners True) to 14ph x 14pw ->
 * output_conv2 (conv3x3, ReLU, conv1x1, ReLU) into c->out. */
dm_status dpt_output(dpt_ctx *c, const dpt_weights *w, dm_backend *be);

/* Whole DA-V2 head: reassemble all four taps, refinenet4..1, output. feats[i] (B, ph*pw, 384). */
dm_status dpt_forward(dpt_ctx *c, const dpt_weights *w, dm_backend *be,
                      const dm_tensor *const feats[4]);

#endif
