/* DINOv2 ViT-S/14 encoder (see dinov2.h for the configuration and sources). Forward as in
 * DinoVisionTransformer.prepare_tokens_with_masks, NestedTensorBlock / Block (pre-norm,
 * x + ls1(attn(norm1(x))), x + ls2(mlp(norm2(x))); LayerScale folded into proj / fc2 at load), Attention (qkv -> heads, q * 1/8,
 * softmax(q k^T) v, proj) and get_intermediate_layers (final norm, cls split off). */
#include <string.h>

#include "models/dinov2.h"

/* Non-owning view of `n` dims at element offset `off` of t (same dtype and device). */
static dm_tensor view(const dm_tensor *t, size_t off, int ndim, const int64_t *shape) {
    return dm_tensor_sub(t, (int64_t)off, ndim, shape);
}

dm_status dinov2_each(dinov2_weights *w, model_tensor_fn fn, void *arg) {
    dm_tensor *top[] = {&w->cls_token, &w->pos_embed, &w->patch_w, &w->patch_b, &w->norm_w,
                        &w->norm_b};
    dm_status st = DM_OK;
    for (size_t k = 0; k < sizeof top / sizeof top[0] && !st; k++) st = fn(top[k], arg);
    for (int i = 0; i < VIT_DEPTH && !st; i++) {
        vit_block *b = &w->blocks[i];
        dm_tensor *all[] = {&b->norm1_w, &b->norm1_b, &b->qkv_w, &b->qkv_b, &b->proj_w,
                            &b->proj_b, &b->ls1, &b->ls2, &b->norm2_w, &b->norm2_b,
                            &b->fc1_w, &b->fc1_b, &b->fc2_w, &b->fc2_b};
        for (size_t k = 0; k < sizeof all / sizeof all[0] && !st; k++) st = fn(all[k], arg);
    }
    return st;
}

/* The two tables added into the residual stream are kept in its dtype (autocast keeps these
 * parameters in f32, and interpolate_pos_encoding resizes the table in f32). */
dm_status dinov2_upload(dinov2_weights *w, dm_backend *be) {
    model_upload u = {be, {&w->cls_token, &w->pos_embed}, 2};
    return dinov2_each(w, model_tensor_upload_mixed, &u);
}

void dinov2_free(dinov2_weights *w) {
    dinov2_each(w, model_tensor_free, NULL);
}

/* LayerScale folded into the linear before it, at load: ls * (x W^T + b) = x (diag(ls) W)^T
 * + ls * b, so the forward saves two elementwise passes per block (one rounding of the folded
 * weights instead of one of every product). The gammas are released afterwards. */
static void fold_one(dm_tensor *wt, dm_tensor *b, dm_tensor *ls) {
    const int64_t rows = wt->shape[0], cols = wt->shape[1];
    float *W = dm_f32(wt), *B = dm_f32(b);
    const float *g = dm_f32(ls);
    for (int64_t o = 0; o < rows; o++) {
        for (int64_t k = 0; k < cols; k++) W[o * cols + k] *= g[o];
        B[o] *= g[o];
    }
    dm_tensor_free(ls);
}

static void fold_layerscale(vit_block *b) {
    fold_one(&b->proj_w, &b->proj_b, &b->ls1);
    fold_one(&b->fc2_w, &b->fc2_b, &b->ls2);
}

dm_status dinov2_load(dinov2_weights *w, da2_wsrc *src, const char *p) {
    memset(w, 0, sizeof *w);
    const int64_t s_cls[] = {1, 1, VIT_DIM}, s_pos[] = {1, 1 + VIT_GRID * VIT_GRID, VIT_DIM},
                  s_patch[] = {VIT_DIM, 3, VIT_PATCH, VIT_PATCH}, s_c[] = {VIT_DIM},
                  s_qkv[] = {3 * VIT_DIM, VIT_DIM}, s_qkvb[] = {3 * VIT_DIM},
                  s_proj[] = {VIT_DIM, VIT_DIM}, s_fc1[] = {VIT_MLP, VIT_DIM},
                  s_fc1b[] = {VIT_MLP}, s_fc2[] = {VIT_DIM, VIT_MLP};
    dm_status st;
#define LOAD(t, shape, ...)                                                                    \
    if ((st = da2_wsrc_loadf(src, (int)(sizeof shape / sizeof shape[0]), shape, t, __VA_ARGS__))) \
        goto fail
    LOAD(&w->cls_token, s_cls, "%scls_token", p);
    LOAD(&w->pos_embed, s_pos, "%spos_embed", p);
    LOAD(&w->patch_w, s_patch, "%spatch_embed.proj.weight", p);
    LOAD(&w->patch_b, s_c, "%spatch_embed.proj.bias", p);
    for (int i = 0; i < VIT_DEPTH; i++) {
        vit_block *b = &w->blocks[i];
        LOAD(&b->norm1_w, s_c, "%sblocks.%d.norm1.weight", p, i);
        LOAD(&b->norm1_b, s_c, "%sblocks.%d.norm1.bias", p, i);
        LOAD(&b->qkv_w, s_qkv, "%sblocks.%d.attn.qkv.weight", p, i);
        LOAD(&b->qkv_b, s_qkvb, "%sblocks.%d.attn.qkv.bias", p, i);
        LOAD(&b->proj_w, s_proj, "%sblocks.%d.attn.proj.weight", p, i);
        LOAD(&b->proj_b, s_c, "%sblocks.%d.attn.proj.bias", p, i);
        LOAD(&b->ls1, s_c, "%sblocks.%d.ls1.gamma", p, i);
        LOAD(&b->norm2_w, s_c, "%sblocks.%d.norm2.weight", p, i);
        LOAD(&b->norm2_b, s_c, "%sblocks.%d.norm2.bias", p, i);
        LOAD(&b->fc1_w, s_fc1, "%sblocks.%d.mlp.fc1.weight", p, i);
        LOAD(&b->fc1_b, s_fc1b, "%sblocks.%d.mlp.fc1.bias", p, i);
        LOAD(&b->fc2_w, s_fc2, "%sblocks.%d.mlp.fc2.weight", p, i);
        LOAD(&b->fc2_b, s_c, "%sblocks.%d.mlp.fc2.bias", p, i);
        LOAD(&b->ls2, s_c, "%sblocks.%d.ls2.gamma", p, i);
    }
    LOAD(&w->norm_w, s_c, "%snorm.weight", p);
    LOAD(&w->norm_b, s_c, "%snorm.bias", p);
#undef LOAD
    for (int i = 0; i < VIT_DEPTH; i++) fold_layerscale(&w->blocks[i]);
    return DM_OK;
fail:
    dinov2_free(w);
    return st;
}

void dinov2_ctx_free(dinov2_ctx *c) {
    dm_tensor *all[] = {&c->pos, &c->patch, &c->x, &c->embed, &c->xn, &c->qkv, &c->qkvh,
                        &c->att, &c->merged, &c->proj, &c->hidden};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) dm_tensor_free(all[k]);
    for (int i = 0; i < VIT_NTAPS; i++) {
        dm_tensor_free(&c->feat[i]);
        dm_tensor_free(&c->feat_cls[i]);
    }
    memset(c, 0, sizeof *c);
}

/* Position embedding for a (ph, pw) grid: cls position, then the 37x37 grid resized
 * (interpolate_pos_encoding; note the official call names the height "w"). */
static dm_status make_pos(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be) {
    const int ph = c->ph, pw = c->pw, G = VIT_GRID, C = VIT_DIM;
    dm_status st;
    if (ph == G && pw == G) /* npatch == N and w == h: the table is used as is */
        return dm_copy(be, &w->pos_embed, &c->pos);
    const int64_t s_grid_tok[] = {1, G, G, C}, s_grid[] = {1, C, G, G}, s_out[] = {1, C, ph, pw},
                  s_out_tok[] = {1, ph, pw, C}, s_cls[] = {1, 1, C};
    dm_tensor grid_chw, out_chw; /* in the table's dtype: the resize runs in f32 */
    if ((st = dm_alloc(be, &grid_chw, w->pos_embed.dtype, 4, s_grid))) return st;
    if ((st = dm_alloc(be, &out_chw, w->pos_embed.dtype, 4, s_out))) {
        dm_tensor_free(&grid_chw);
        return st;
    }
    const int to_chw[] = {0, 3, 1, 2}, to_hwc[] = {0, 2, 3, 1};
    dm_tensor grid_tok = view(&w->pos_embed, C, 4, s_grid_tok);
    dm_tensor cls_src = view(&w->pos_embed, 0, 3, s_cls), cls_dst = view(&c->pos, 0, 3, s_cls);
    dm_tensor out_tok = view(&c->pos, C, 4, s_out_tok);
    if (!(st = dm_permute(be, &grid_tok, to_chw, &grid_chw)) &&
        !(st = dm_resize(be, &grid_chw, DM_RESIZE_BICUBIC, 0, (ph + 0.1) / G, (pw + 0.1) / G,
                         &out_chw)) &&
        !(st = dm_permute(be, &out_chw, to_hwc, &out_tok)))
        st = dm_copy(be, &cls_src, &cls_dst);
    dm_tensor_free(&grid_chw);
    dm_tensor_free(&out_chw);
    return st;
}

dm_status dinov2_ctx_init(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be, int batch,
                          int h, int w_px) {
    return dinov2_ctx_init_plan(c, w, be, batch, h, w_px, NULL, 0, NULL);
}

dm_status dinov2_ctx_init_plan(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be,
                               int batch, int h, int w_px, buf_plan *plan, int phase,
                               const int feat_last[VIT_NTAPS]) {
    memset(c, 0, sizeof *c);
    if (batch < 1 || h < VIT_PATCH || w_px < VIT_PATCH || h % VIT_PATCH || w_px % VIT_PATCH)
        return dm_error_set(DM_ERR_ARG, "dinov2: input %dx%d (batch %d) is not a positive "
                            "multiple of the 14-pixel patch", h, w_px, batch);
    c->batch = batch, c->h = h, c->w = w_px;
    c->ph = h / VIT_PATCH, c->pw = w_px / VIT_PATCH;
    c->tokens = 1 + c->ph * c->pw;
    c->fused_qkv = dm_backend_supports(be, DM_OP_ATTENTION_QKV, dm_backend_storage_dtype(be));
    const int tap_idx[VIT_NTAPS] = {2, 5, 8, 11};
    memcpy(c->taps, tap_idx, sizeof tap_idx);
    const int64_t B = batch, T = c->tokens, N = c->ph * c->pw, C = VIT_DIM;
    const int64_t s_pos[] = {1, T, C}, s_patch[] = {B, C, c->ph, c->pw}, s_x[] = {B, T, C},
                  s_qkv[] = {B, T, 3 * C}, s_qkvh[] = {3, B, VIT_HEADS, T, VIT_HEAD_DIM},
                  s_att[] = {B, VIT_HEADS, T, VIT_HEAD_DIM},
                  s_merged[] = {B, T, VIT_HEADS, VIT_HEAD_DIM}, s_hidden[] = {B, T, VIT_MLP},
                  s_feat[] = {B, N, C}, s_cls[] = {B, C};
    /* Planned: the working buffers live in `phase` only, feat[i] until feat_last[i] (the
     * head's use); pos is computed here, so it is always allocated on its own. */
    const int ph0 = phase;
    /* the residual stream (x, its copy after embedding, the position table added to it) in
     * the residual dtype (f32): the blocks add their f16/bf16 outputs to it in f32 */
    const dm_dtype rd = dm_backend_residual_dtype(be);
    dm_status st;
    if ((st = dm_alloc(be, &c->pos, rd, 3, s_pos)) ||
        (st = bp_alloc(plan, be, &c->patch, 4, s_patch, ph0, ph0)) ||
        (st = bp_alloc_dtype(plan, be, &c->x, rd, 3, s_x, ph0, ph0)) ||
        (st = bp_alloc_dtype(plan, be, &c->embed, rd, 3, s_x, ph0, ph0)) ||
        (st = bp_alloc(plan, be, &c->xn, 3, s_x, ph0, ph0)) ||
        (st = bp_alloc(plan, be, &c->qkv, 3, s_qkv, ph0, ph0)) ||
        (!c->fused_qkv &&
         ((st = bp_alloc(plan, be, &c->qkvh, 5, s_qkvh, ph0, ph0)) ||
          (st = bp_alloc(plan, be, &c->att, 4, s_att, ph0, ph0)))) ||
        (st = bp_alloc(plan, be, &c->merged, 4, s_merged, ph0, ph0)) ||
        (st = bp_alloc(plan, be, &c->proj, 3, s_x, ph0, ph0)) ||
        (st = bp_alloc(plan, be, &c->hidden, 3, s_hidden, ph0, ph0)))
        goto fail;
    for (int i = 0; i < VIT_NTAPS; i++)
        if ((st = bp_alloc(plan, be, &c->feat[i], 3, s_feat, ph0,
                           feat_last ? feat_last[i] : ph0)) ||
            (st = bp_alloc(plan, be, &c->feat_cls[i], 2, s_cls, ph0, ph0)))
            goto fail;
    if ((st = make_pos(c, w, be))) goto fail;
    return DM_OK;
fail:
    dinov2_ctx_free(c);
    return st;
}

/* Patch embedding + cls token + position embedding into c->x (prepare_tokens_with_masks). */
static dm_status embed_tokens(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be,
                              const dm_tensor *img) {
    const int64_t T = c->tokens, N = c->ph * c->pw, C = VIT_DIM;
    dm_conv2d_params p = dm_conv2d_params_make(VIT_PATCH, 0, 1, DM_ACT_NONE);
    dm_status st = dm_conv2d(be, img, &w->patch_w, &w->patch_b, &p, &c->patch);
    if (st) return st;
    const int to_tok[] = {0, 2, 1}; /* (1, C, N) -> (1, N, C): flatten(2).transpose(1, 2) */
    const int64_t s_cn[] = {1, C, N}, s_nc[] = {1, N, C}, s_1c[] = {1, 1, C};
    for (int b = 0; b < c->batch; b++) {
        dm_tensor src = view(&c->patch, (size_t)b * C * N, 3, s_cn);
        dm_tensor dst = view(&c->x, (size_t)b * T * C + C, 3, s_nc);
        dm_tensor cls = view(&c->x, (size_t)b * T * C, 3, s_1c);
        if ((st = dm_permute(be, &src, to_tok, &dst)) || (st = dm_copy(be, &w->cls_token, &cls)))
            return st;
    }
    if ((st = dm_binary(be, &c->x, &c->pos, DM_BINARY_ADD, &c->x))) return st;
    return dm_copy(be, &c->x, &c->embed);
}

/* Self-attention of the normed stream: qkv (B, T, 1152) -> merged (B, T, 384). One
 * attention_qkv op where the backend has it (reads the packed layout: no permutes; on the CPU
 * bitwise the split/attention/merge below, backend.h); else the split permute, dm_attention
 * and the merge permute. */
static dm_status self_attention(dinov2_ctx *c, dm_backend *be, dm_tensor *merged) {
    /* 1/8 = head_dim^-0.5 is a power of two: scaling q or the scores is exact either way */
    if (c->fused_qkv) return dm_attention_qkv(be, &c->qkv, VIT_HEADS, 0.125f, merged);
    const int64_t B = c->batch, T = c->tokens;
    const size_t part = (size_t)B * VIT_HEADS * T * VIT_HEAD_DIM;
    const int64_t s_head[] = {B, VIT_HEADS, T, VIT_HEAD_DIM}, s_qkv5[] = {B, T, 3, VIT_HEADS,
                                                                         VIT_HEAD_DIM};
    const int split[] = {2, 0, 3, 1, 4}, merge[] = {0, 2, 1, 3};
    dm_tensor q = view(&c->qkvh, 0, 4, s_head), kk = view(&c->qkvh, part, 4, s_head),
              v = view(&c->qkvh, 2 * part, 4, s_head), qkv5 = view(&c->qkv, 0, 5, s_qkv5);
    dm_status st;
    if ((st = dm_permute(be, &qkv5, split, &c->qkvh)) ||
        (st = dm_attention(be, &q, &kk, &v, 0.125f, &c->att)))
        return st;
    return dm_permute(be, &c->att, merge, &c->merged);
}

/* One pre-norm transformer block on c->x, in place. */
static dm_status block_forward(dinov2_ctx *c, const vit_block *k, dm_backend *be) {
    const int64_t s_x[] = {c->batch, c->tokens, VIT_DIM};
    dm_tensor merged = view(&c->merged, 0, 3, s_x);
    dm_status st;
    if ((st = dm_layernorm(be, &c->x, &k->norm1_w, &k->norm1_b, VIT_LN_EPS, &c->xn)) ||
        (st = dm_linear(be, &c->xn, &k->qkv_w, &k->qkv_b, DM_ACT_NONE, &c->qkv)) ||
        (st = self_attention(c, be, &merged)) ||
        (st = dm_linear(be, &merged, &k->proj_w, &k->proj_b, DM_ACT_NONE, &c->proj)) ||
        (st = dm_binary(be, &c->x, &c->proj, DM_BINARY_ADD, &c->x)) ||
        (st = dm_layernorm(be, &c->x, &k->norm2_w, &k->norm2_b, VIT_LN_EPS, &c->xn)) ||
        (st = dm_linear(be, &c->xn, &k->fc1_w, &k->fc1_b, DM_ACT_GELU, &c->hidden)) ||
        (st = dm_linear(be, &c->hidden, &k->fc2_w, &k->fc2_b, DM_ACT_NONE, &c->proj)) ||
        (st = dm_binary(be, &c->x, &c->proj, DM_BINARY_ADD, &c->x)))
        return st;
    return DM_OK;
}

/* Final norm of the current stream into tap i, split into cls and patch tokens. */
static dm_status store_tap(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be, int i) {
    const int64_t T = c->tokens, N = T - 1, C = VIT_DIM;
    const int64_t s_nc[] = {1, N, C}, s_1c[] = {1, C};
    dm_status st;
    for (int b = 0; b < c->batch; b++) {
        dm_tensor xc = view(&c->x, (size_t)b * T * C, 2, s_1c);
        dm_tensor xp = view(&c->x, (size_t)b * T * C + C, 3, s_nc);
        dm_tensor fc = view(&c->feat_cls[i], (size_t)b * C, 2, s_1c);
        dm_tensor fp = view(&c->feat[i], (size_t)b * N * C, 3, s_nc);
        if ((st = dm_layernorm(be, &xc, &w->norm_w, &w->norm_b, VIT_LN_EPS, &fc)) ||
            (st = dm_layernorm(be, &xp, &w->norm_w, &w->norm_b, VIT_LN_EPS, &fp)))
            return st;
    }
    return DM_OK;
}

dm_status dinov2_forward(dinov2_ctx *c, const dinov2_weights *w, dm_backend *be,
                         const dm_tensor *x) {
    if (x->ndim != 4 || x->shape[0] != c->batch || x->shape[1] != 3 || x->shape[2] != c->h ||
        x->shape[3] != c->w)
        return dm_error_set(DM_ERR_SHAPE, "dinov2: input must be (%d, 3, %d, %d)", c->batch,
                            c->h, c->w);
    dm_status st = embed_tokens(c, w, be, x);
    int tap = 0;
    for (int i = 0; i < VIT_DEPTH && !st; i++) {
        st = block_forward(c, &w->blocks[i], be);
        if (!st && tap < VIT_NTAPS && c->taps[tap] == i) st = store_tap(c, w, be, tap++);
    }
    return st;
}
