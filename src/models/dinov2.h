/* Internal: DINOv2 ViT-S/14 encoder as used by Depth Anything V2 and Video Depth Anything
 * (facebookresearch/dinov2 dinov2/models/vision_transformer.py and layers/, in the copy of
 * Depth-Anything-V2/depth_anything_v2/dinov2.py: img_size 518, patch 14, embed 384, depth 12,
 * 6 heads, MLP ratio 4, LayerScale init 1, no registers, interpolate_offset 0.1,
 * interpolate_antialias False). Works on a batch of B images (VDA: frames of a window). */
#ifndef DM_MODELS_DINOV2_H
#define DM_MODELS_DINOV2_H

#include "depthmatte/backend.h"
#include "models/buf_plan.h"
#include "models/da2_weights.h"
#include "models/model_tensors.h"

#define VIT_DIM 384
#define VIT_HEADS 6
#define VIT_HEAD_DIM 64
#define VIT_DEPTH 12
#define VIT_MLP 1536
#define VIT_PATCH 14
#define VIT_GRID 37 /* pos_embed grid side (518 / 14) */
#define VIT_NTAPS 4
#define VIT_LN_EPS 1e-6f

typedef struct vit_block {
    dm_tensor norm1_w, norm1_b; /* (384) */
    dm_tensor qkv_w, qkv_b;     /* (1152, 384), (1152); rows q | k | v, heads inside each */
    dm_tensor proj_w, proj_b;   /* (384, 384), (384) */
    dm_tensor ls1, ls2;         /* (384) LayerScale gammas */
    dm_tensor norm2_w, norm2_b; /* (384) */
    dm_tensor fc1_w, fc1_b;     /* (1536, 384), (1536) */
    dm_tensor fc2_w, fc2_b;     /* (384, 1536), (384) */
} vit_block;

typedef struct dinov2_weights {
    dm_tensor cls_token;        /* (1, 1, 384) */
    dm_tensor pos_embed;        /* (1, 1 + 37*37, 384): cls position + 37x37 grid */
    dm_tensor patch_w, patch_b; /* (384, 3, 14, 14), (384) */
    vit_block blocks[VIT_DEPTH];
    dm_tensor norm_w, norm_b; /* (384) final LayerNorm */
} dinov2_weights;

/* Loads every encoder tensor "<prefix>..." (prefix "pretrained." in DA-V2 and VDA) with shape
 * checks. On error the partially loaded weights are freed. */
dm_status dinov2_load(dinov2_weights *w, da2_wsrc *src, const char *prefix);
/* Moves the weights onto backend `be` (dm_tensor_upload, once at load): in its storage dtype,
 * cls_token and pos_embed in its residual dtype (dm_backend_residual_dtype: they are added to
 * the residual stream). Errors as dm_tensor_upload. */
dm_status dinov2_upload(dinov2_weights *w, dm_backend *be);

void dinov2_free(dinov2_weights *w);

/* Calls fn on every weight tensor (free, upload to a device backend; models/model_tensors.h). */
dm_status dinov2_each(dinov2_weights *w, model_tensor_fn fn, void *arg);

/* Per-size activations, allocated once for B images of h x w pixels (multiples of 14). */
typedef struct dinov2_ctx {
    int batch, h, w, ph, pw, tokens; /* tokens = 1 + ph*pw */
    int taps[VIT_NTAPS];             /* block indices whose normed output is kept: 2, 5, 8, 11 */
    int fused_qkv;        /* 1: the backend runs attention_qkv (qkvh and att stay empty) */
    dm_tensor pos;        /* (1, tokens, 384) position embedding resized for (ph, pw) */
    dm_tensor patch;      /* (B, 384, ph, pw) patch-embed conv output */
    dm_tensor x;          /* (B, tokens, 384) residual stream */
    dm_tensor embed;      /* (B, tokens, 384) tokens after embedding (tap "tokens_embed") */
    dm_tensor xn;         /* (B, tokens, 384) normed input of attention / MLP */
    dm_tensor qkv;        /* (B, tokens, 1152) = (B, T, 3, heads, 64) */
    dm_tensor qkvh;       /* (3, B, heads, T, 64) (without attention_qkv only) */
    dm_tensor att;        /* (B, heads, T, 64) (without attention_qkv only) */
    dm_tensor merged;     /* (B, T, heads, 64) */
    dm_tensor proj;       /* (B, T, 384) */
    dm_tensor hidden;     /* (B, T, 1536) */
    dm_tensor feat[VIT_NTAPS];     /* (B, ph*pw, 384) normed patch tokens of tapped blocks */
    dm_tensor feat_cls[VIT_NTAPS]; /* (B, 384) normed cls token of tapped blocks */
} dinov2_ctx;

/* Sizes every buffer and precomputes the position embedding for h x w inputs
 * (interpolate_pos_encoding: bicubic, align_corners False, scale factors
 * ((ph + 0.1) / 37, (pw + 0.1) / 37); the table itself when ph = pw = 37). DM_ERR_ARG if h or w
 * is not a positive multiple of 14. */
dm_status dinov2_ctx_init(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be, int batch,
                          int h, int w_px);
/* As dinov2_ctx_init, but the activations are requested from `plan` (models/buf_plan.h; NULL:
 * allocated at once, as dinov2_ctx_init): every working buffer for phase `phase` only, feat[i]
 * for [phase, feat_last[i]] (feat_last NULL: `phase`), so that a head running after the
 * encoder reuses their memory. The tensors are valid after bp_commit(plan); pos is computed
 * here (own allocation). Not every buffer survives the forward then: only feat[i] until
 * feat_last[i] (embed, feat_cls and the others are overwritten by later phases). */
dm_status dinov2_ctx_init_plan(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be,
                               int batch, int h, int w_px, buf_plan *plan, int phase,
                               const int feat_last[VIT_NTAPS]);
void dinov2_ctx_free(dinov2_ctx *c);

/* Runs the encoder on x (B, 3, h, w) normalised images; fills c->embed, c->feat, c->feat_cls
 * (get_intermediate_layers(x, [2, 5, 8, 11], return_class_token=True) with the final norm). */
dm_status dinov2_forward(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be,
                         const dm_tensor *x);

#endif
