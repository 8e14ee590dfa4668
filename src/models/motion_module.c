/* TemporalModule of Video Depth Anything (see motion_module.h for the structure and sources).
 * Written from the official forward (TemporalTransformer3DModel, TemporalTransformerBlock,
 * TemporalAttention, FeedForward/GEGLU) with engine ops only, so every backend runs it. */
#include <math.h>
#include <string.h>

#include "models/motion_module.h"

/* Non-owning view of t's buffer (at float offset `off`) with another shape. */
static dm_tensor view(const dm_tensor *t, size_t off, int ndim, const int64_t *shape) {
    return dm_tensor_sub(t, (int64_t)off, ndim, shape);
}

dm_status mm_each(mm_weights *w, model_tensor_fn fn, void *arg) {
    dm_tensor *all[] = {&w->gn_w, &w->gn_b, &w->in_w, &w->in_b, &w->ffn_w, &w->ffn_b,
                        &w->ff1_w, &w->ff1_b, &w->ff2_w, &w->ff2_b, &w->out_w, &w->out_b};
    dm_status st = DM_OK;
    for (size_t i = 0; i < sizeof all / sizeof all[0] && !st; i++) st = fn(all[i], arg);
    for (int a = 0; a < 2 && !st; a++) {
        mm_attn_weights *at = &w->attn[a];
        dm_tensor *aw[] = {&at->norm_w, &at->norm_b, &at->q_w, &at->k_w, &at->v_w,
                           &at->out_w, &at->out_b, &at->pe};
        for (size_t i = 0; i < sizeof aw / sizeof aw[0] && !st; i++) st = fn(aw[i], arg);
    }
    return st;
}

/* The positional encodings are added to the normed states in the residual dtype (a buffer
 * autocast leaves in f32). */
dm_status mm_upload(mm_weights *w, dm_backend *be) {
    model_upload u = {be, {&w->attn[0].pe, &w->attn[1].pe}, 2};
    return mm_each(w, model_tensor_upload_mixed, &u);
}

void mm_free(mm_weights *w) {
    mm_each(w, model_tensor_free, NULL);
    memset(w, 0, sizeof *w);
}

dm_status mm_load(mm_weights *w, da2_wsrc *src, const char *p, int C) {
    memset(w, 0, sizeof *w);
    if (C < MM_GROUPS || C % MM_GROUPS || C % MM_HEADS)
        return dm_error_set(DM_ERR_ARG, "motion_module: %d channels not divisible by %d groups "
                            "and %d heads", C, MM_GROUPS, MM_HEADS);
    w->channels = C;
    dm_status st;
    const char *t = "temporal_transformer.";
#define LOAD(dst, nd, s, ...)                                                                  \
    do {                                                                                       \
        const int64_t shape_[] = s;                                                            \
        if ((st = da2_wsrc_loadf(src, nd, shape_, dst, __VA_ARGS__))) goto fail;               \
    } while (0)
#define S(...) {__VA_ARGS__}
    LOAD(&w->gn_w, 1, S(C), "%s%snorm.weight", p, t);
    LOAD(&w->gn_b, 1, S(C), "%s%snorm.bias", p, t);
    LOAD(&w->in_w, 2, S(C, C), "%s%sproj_in.weight", p, t);
    LOAD(&w->in_b, 1, S(C), "%s%sproj_in.bias", p, t);
    for (int a = 0; a < 2; a++) {
        mm_attn_weights *at = &w->attn[a];
        const char *b = "transformer_blocks.0.";
        LOAD(&at->norm_w, 1, S(C), "%s%s%snorms.%d.weight", p, t, b, a);
        LOAD(&at->norm_b, 1, S(C), "%s%s%snorms.%d.bias", p, t, b, a);
        LOAD(&at->q_w, 2, S(C, C), "%s%s%sattention_blocks.%d.to_q.weight", p, t, b, a);
        LOAD(&at->k_w, 2, S(C, C), "%s%s%sattention_blocks.%d.to_k.weight", p, t, b, a);
        LOAD(&at->v_w, 2, S(C, C), "%s%s%sattention_blocks.%d.to_v.weight", p, t, b, a);
        LOAD(&at->out_w, 2, S(C, C), "%s%s%sattention_blocks.%d.to_out.0.weight", p, t, b, a);
        LOAD(&at->out_b, 1, S(C), "%s%s%sattention_blocks.%d.to_out.0.bias", p, t, b, a);
        LOAD(&at->pe, 3, S(1, MM_MAX_LEN, C), "%s%s%sattention_blocks.%d.pos_encoder.pe", p, t,
             b, a);
    }
    LOAD(&w->ffn_w, 1, S(C), "%s%stransformer_blocks.0.ff_norm.weight", p, t);
    LOAD(&w->ffn_b, 1, S(C), "%s%stransformer_blocks.0.ff_norm.bias", p, t);
    LOAD(&w->ff1_w, 2, S(8 * C, C), "%s%stransformer_blocks.0.ff.net.0.proj.weight", p, t);
    LOAD(&w->ff1_b, 1, S(8 * C), "%s%stransformer_blocks.0.ff.net.0.proj.bias", p, t);
    LOAD(&w->ff2_w, 2, S(C, 4 * C), "%s%stransformer_blocks.0.ff.net.2.weight", p, t);
    LOAD(&w->ff2_b, 1, S(C), "%s%stransformer_blocks.0.ff.net.2.bias", p, t);
    LOAD(&w->out_w, 2, S(C, C), "%s%sproj_out.weight", p, t);
    LOAD(&w->out_b, 1, S(C), "%s%sproj_out.bias", p, t);
#undef S
#undef LOAD
    return DM_OK;
fail:
    mm_free(w);
    return st;
}

void mm_scratch_free(mm_scratch *s) {
    dm_tensor *all[] = {&s->xn, &s->hs, &s->tmp, &s->q, &s->k, &s->v, &s->qh, &s->kh,
                        &s->vh, &s->oh, &s->ffh, &s->ffg};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dm_tensor_free(all[i]);
    memset(s, 0, sizeof *s);
}

dm_status mm_scratch_init(mm_scratch *s, dm_backend *be, int64_t max_tsc) {
    return mm_scratch_init_plan(s, be, max_tsc, NULL, 0, 0);
}

dm_status mm_scratch_init_plan(mm_scratch *s, dm_backend *be, int64_t max_tsc, buf_plan *plan,
                               int first, int last) {
    memset(s, 0, sizeof *s);
    s->cap = max_tsc;
    const int64_t n1[] = {max_tsc}, n4[] = {4 * max_tsc};
    dm_tensor *one[] = {&s->xn, &s->q, &s->k, &s->v, &s->qh, &s->kh, &s->vh, &s->oh};
    /* the hidden states (the module's residual stream) and tmp (the normed states + pe the
     * q/k/v projections read) in the residual dtype, f32 */
    dm_tensor *wide[] = {&s->hs, &s->tmp};
    const dm_dtype rd = dm_backend_residual_dtype(be);
    dm_status st = DM_OK;
    for (size_t i = 0; i < sizeof one / sizeof one[0] && !st; i++)
        st = bp_alloc(plan, be, one[i], 1, n1, first, last);
    for (size_t i = 0; i < sizeof wide / sizeof wide[0] && !st; i++)
        st = bp_alloc_dtype(plan, be, wide[i], rd, 1, n1, first, last);
    if (!st) st = bp_alloc(plan, be, &s->ffh, 1, n4, first, last);
    if (!st) st = bp_alloc(plan, be, &s->ffg, 1, n4, first, last);
    if (st) mm_scratch_free(s);
    return st;
}

/* One attention block: hs (S, T, C) += to_out(attn(norm(hs) + pe[:T])). */
static dm_status attn_block(const mm_attn_weights *a, mm_scratch *s, dm_backend *be,
                            int64_t S, int64_t T, int64_t C, dm_tensor *hs) {
    const int64_t H = MM_HEADS, D = C / MM_HEADS;
    const int64_t s_stc[] = {S, T, C}, s_tc[] = {T, C}, s_sthd[] = {S, T, H, D},
                  s_shtd[] = {S, H, T, D};
    dm_tensor tmp = view(&s->tmp, 0, 3, s_stc), pe = view(&a->pe, 0, 2, s_tc);
    dm_tensor q = view(&s->q, 0, 3, s_stc), k = view(&s->k, 0, 3, s_stc),
              v = view(&s->v, 0, 3, s_stc);
    dm_tensor q4 = view(&s->q, 0, 4, s_sthd), k4 = view(&s->k, 0, 4, s_sthd),
              v4 = view(&s->v, 0, 4, s_sthd);
    dm_tensor qh = view(&s->qh, 0, 4, s_shtd), kh = view(&s->kh, 0, 4, s_shtd),
              vh = view(&s->vh, 0, 4, s_shtd), oh = view(&s->oh, 0, 4, s_shtd);
    const int swap12[] = {0, 2, 1, 3}; /* (S, T, H, D) <-> (S, H, T, D) */
    /* baddbmm(alpha = dim_head ** -0.5): the Python double rounded to the float alpha */
    const float scale = (float)pow((double)D, -0.5);
    dm_status st;
    if ((st = dm_layernorm(be, hs, &a->norm_w, &a->norm_b, MM_LN_EPS, &tmp)) ||
        (st = dm_binary(be, &tmp, &pe, DM_BINARY_ADD, &tmp)) || /* PositionalEncoding */
        (st = dm_linear(be, &tmp, &a->q_w, NULL, DM_ACT_NONE, &q)) ||
        (st = dm_linear(be, &tmp, &a->k_w, NULL, DM_ACT_NONE, &k)) ||
        (st = dm_linear(be, &tmp, &a->v_w, NULL, DM_ACT_NONE, &v)) ||
        (st = dm_permute(be, &q4, swap12, &qh)) || (st = dm_permute(be, &k4, swap12, &kh)) ||
        (st = dm_permute(be, &v4, swap12, &vh)) ||
        (st = dm_attention(be, &qh, &kh, &vh, scale, &oh)) ||
        (st = dm_permute(be, &oh, swap12, &q4)) || /* merged heads back in s->q */
        (st = dm_linear(be, &q, &a->out_w, &a->out_b, DM_ACT_NONE, &tmp)) ||
        (st = dm_binary(be, hs, &tmp, DM_BINARY_ADD, hs)))
        return st;
    return DM_OK;
}

/* Checks x (T, C, h, w) against the weights and the scratch; *T_out, *S_out = frames, h*w. */
static dm_status check_input(const mm_weights *w, const mm_scratch *s, const dm_tensor *x,
                             int64_t *T_out, int64_t *S_out) {
    const int64_t C = w->channels;
    if (x->ndim != 4 || x->shape[1] != C)
        return dm_error_set(DM_ERR_SHAPE, "motion_module: input must be (T, %lld, h, w)",
                            (long long)C);
    const int64_t T = x->shape[0], S = x->shape[2] * x->shape[3];
    if (T < 1 || T > MM_MAX_LEN)
        return dm_error_set(DM_ERR_SHAPE, "motion_module: %lld frames, pe table has %d",
                            (long long)T, MM_MAX_LEN);
    if (T * S * C > s->cap)
        return dm_error_set(DM_ERR_SHAPE, "motion_module: T*h*w*C = %lld exceeds scratch %lld",
                            (long long)(T * S * C), (long long)s->cap);
    *T_out = T, *S_out = S;
    return DM_OK;
}

/* GroupNorm per frame, to tokens, proj_in: x (T, C, h, w) -> s->hs (S, T, C). */
static dm_status tokens_in(const mm_weights *w, mm_scratch *s, dm_backend *be, const dm_tensor *x,
                           int64_t T, int64_t S) {
    const int64_t C = w->channels;
    const int64_t s_tchw[] = {T, C, x->shape[2], x->shape[3]}, s_tcs[] = {T, C, S},
                  s_stc[] = {S, T, C};
    dm_tensor xn = view(&s->xn, 0, 4, s_tchw), xn3 = view(&s->xn, 0, 3, s_tcs);
    dm_tensor hs = view(&s->hs, 0, 3, s_stc), tmp = view(&s->tmp, 0, 3, s_stc);
    const int to_tokens[] = {2, 0, 1}; /* (T, C, S) -> (S, T, C) */
    dm_status st;
    if ((st = dm_groupnorm(be, x, MM_GROUPS, &w->gn_w, &w->gn_b, MM_GN_EPS, &xn)) ||
        (st = dm_permute(be, &xn3, to_tokens, &tmp)) ||
        (st = dm_linear(be, &tmp, &w->in_w, &w->in_b, DM_ACT_NONE, &hs)))
        return st;
    return DM_OK;
}

/* Feed-forward, proj_out, back to frames, + module input: s->hs (S, T, C) -> x (T, C, h, w). */
static dm_status tokens_out(const mm_weights *w, mm_scratch *s, dm_backend *be, dm_tensor *x,
                            int64_t T, int64_t S) {
    const int64_t C = w->channels;
    const int64_t s_tchw[] = {T, C, x->shape[2], x->shape[3]}, s_tcs[] = {T, C, S},
                  s_stc[] = {S, T, C}, s_st4c[] = {S, T, 4 * C};
    dm_tensor xn = view(&s->xn, 0, 4, s_tchw), xn3 = view(&s->xn, 0, 3, s_tcs);
    dm_tensor hs = view(&s->hs, 0, 3, s_stc), tmp = view(&s->tmp, 0, 3, s_stc);
    dm_tensor ffh = view(&s->ffh, 0, 3, s_st4c), ffg = view(&s->ffg, 0, 3, s_st4c);
    /* GEGLU: proj(x).chunk(2, -1) = (hidden, gate): output rows [0, 4C) and [4C, 8C) of the
     * weight, each a contiguous block, so two linears on views replace the chunk. The views
     * are made here, not at load: an upload to a device replaces the weight buffers. */
    const int64_t s_w[] = {4 * C, C}, s_b[] = {4 * C};
    const dm_tensor ff1h_w = view(&w->ff1_w, 0, 2, s_w),
                    ff1g_w = view(&w->ff1_w, (size_t)4 * C * C, 2, s_w),
                    ff1h_b = view(&w->ff1_b, 0, 1, s_b),
                    ff1g_b = view(&w->ff1_b, (size_t)4 * C, 1, s_b);
    const int to_frames[] = {1, 2, 0}; /* (S, T, C) -> (T, C, S) */
    dm_status st;
    /* ff(ff_norm(hs)) + hs with GEGLU: hidden * gelu(gate) */
    if ((st = dm_layernorm(be, &hs, &w->ffn_w, &w->ffn_b, MM_LN_EPS, &tmp)) ||
        (st = dm_linear(be, &tmp, &ff1h_w, &ff1h_b, DM_ACT_NONE, &ffh)) ||
        (st = dm_linear(be, &tmp, &ff1g_w, &ff1g_b, DM_ACT_GELU, &ffg)) ||
        (st = dm_binary(be, &ffh, &ffg, DM_BINARY_MUL, &ffh)) ||
        (st = dm_linear(be, &ffh, &w->ff2_w, &w->ff2_b, DM_ACT_NONE, &tmp)) ||
        (st = dm_binary(be, &hs, &tmp, DM_BINARY_ADD, &hs)))
        return st;
    /* proj_out, back to frames, + module input */
    if ((st = dm_linear(be, &hs, &w->out_w, &w->out_b, DM_ACT_NONE, &tmp)) ||
        (st = dm_permute(be, &tmp, to_frames, &xn3)) ||
        (st = dm_binary(be, x, &xn, DM_BINARY_ADD, x)))
        return st;
    return DM_OK;
}

dm_status mm_forward(const mm_weights *w, mm_scratch *s, dm_backend *be, dm_tensor *x) {
    int64_t T = 0, S = 0;
    dm_status st;
    if ((st = check_input(w, s, x, &T, &S)) || (st = tokens_in(w, s, be, x, T, S))) return st;
    const int64_t s_stc[] = {S, T, w->channels};
    dm_tensor hs = view(&s->hs, 0, 3, s_stc);
    for (int a = 0; a < 2; a++)
        if ((st = attn_block(&w->attn[a], s, be, S, T, w->channels, &hs))) return st;
    return tokens_out(w, s, be, x, T, S);
}

void mm_kv_scratch_free(mm_kv_scratch *s) {
    dm_tensor_free(&s->win);
    dm_tensor_free(&s->kv);
    dm_tensor_free(&s->kh);
    memset(s, 0, sizeof *s);
}

dm_status mm_kv_scratch_init(mm_kv_scratch *s, dm_backend *be, int64_t max_tsc) {
    memset(s, 0, sizeof *s);
    s->cap = max_tsc;
    const int64_t n1[] = {max_tsc};
    const dm_dtype dt = dm_backend_storage_dtype(be);
    dm_status st;
    if ((st = dm_alloc(be, &s->win, dt, 1, n1)) || (st = dm_alloc(be, &s->kv, dt, 1, n1)) ||
        (st = dm_alloc(be, &s->kh, dt, 1, n1)))
        mm_kv_scratch_free(s);
    return st;
}

/* One attention block of the streaming form: hs (S, 1, C) += to_out(attn(q, k, v)) with
 * q = to_q(norm(hs) + pe[n]) and k, v = to_k/to_v over the n cached normed states followed
 * by this frame's, each + pe[0..n] (TemporalAttention.forward with cached_hidden_states:
 * torch.cat([cached, hidden], dim=1), pos_encoder, to_q(hidden_states[:, d_in:])). This
 * frame's norm(hs) is written to cache slot `slot_new` (the block's output_hidden_states). */
static dm_status attn_block_cached(const mm_attn_weights *a, mm_scratch *s, mm_kv_scratch *kv,
                                   dm_backend *be, int64_t S, int64_t C, dm_tensor *cache,
                                   const int *slots, int n, int slot_new, dm_tensor *hs) {
    const int64_t H = MM_HEADS, D = C / MM_HEADS, T = n + 1;
    const int64_t s_sc[] = {S, C}, s_s1c[] = {S, 1, C}, s_tsc[] = {T, S, C}, s_stc[] = {S, T, C},
                  s_tc[] = {T, C}, s_c[] = {C}, s_sthd[] = {S, T, H, D}, s_shtd[] = {S, H, T, D},
                  s_sh1d[] = {S, H, 1, D};
    const int64_t P = cache->shape[0];
    if (slot_new < 0 || slot_new >= P)
        return dm_error_set(DM_ERR_ARG, "motion_module: cache slot %d outside 0..%lld", slot_new,
                            (long long)P - 1);
    dm_tensor cur = view(cache, (size_t)slot_new * S * C, 3, s_s1c);
    dm_tensor tmp = view(&s->tmp, 0, 3, s_s1c), q = view(&s->q, 0, 3, s_s1c);
    dm_tensor win = view(&kv->win, 0, 3, s_tsc), wtok = view(&kv->kv, 0, 3, s_stc);
    dm_tensor kvv = view(&kv->win, 0, 3, s_stc), kv4 = view(&kv->win, 0, 4, s_sthd);
    dm_tensor kh = view(&kv->kh, 0, 4, s_shtd), vh = view(&kv->kv, 0, 4, s_shtd);
    dm_tensor qh = view(&s->q, 0, 4, s_sh1d), oh = view(&s->oh, 0, 4, s_sh1d),
              o = view(&s->oh, 0, 3, s_s1c);
    dm_tensor pe = view(&a->pe, 0, 2, s_tc), pe_n = view(&a->pe, (size_t)n * C, 1, s_c);
    const int frames_to_tokens[] = {1, 0, 2}; /* (T, S, C) -> (S, T, C) */
    const int swap12[] = {0, 2, 1, 3};        /* (S, T, H, D) -> (S, H, T, D) */
    const float scale = (float)pow((double)D, -0.5);
    dm_status st;
    if ((st = dm_layernorm(be, hs, &a->norm_w, &a->norm_b, MM_LN_EPS, &cur))) return st;
    /* the window (T, S, C): cached frames in order, then this one */
    for (int j = 0; j < T; j++) {
        const int sl = j < n ? slots[j] : slot_new;
        if (sl < 0 || sl >= P)
            return dm_error_set(DM_ERR_ARG, "motion_module: cache slot %d outside 0..%lld", sl,
                                (long long)P - 1);
        dm_tensor src = view(cache, (size_t)sl * S * C, 2, s_sc),
                  dst = view(&kv->win, (size_t)j * S * C, 2, s_sc);
        if ((st = dm_copy(be, &src, &dst))) return st;
    }
    if ((st = dm_permute(be, &win, frames_to_tokens, &wtok)) ||
        (st = dm_binary(be, &wtok, &pe, DM_BINARY_ADD, &wtok)) || /* pos_encoder over T */
        (st = dm_binary(be, &cur, &pe_n, DM_BINARY_ADD, &tmp)) || /* the query's row */
        (st = dm_linear(be, &tmp, &a->q_w, NULL, DM_ACT_NONE, &q)) ||
        (st = dm_linear(be, &wtok, &a->k_w, NULL, DM_ACT_NONE, &kvv)) ||
        (st = dm_permute(be, &kv4, swap12, &kh)) ||
        (st = dm_linear(be, &wtok, &a->v_w, NULL, DM_ACT_NONE, &kvv)) ||
        (st = dm_permute(be, &kv4, swap12, &vh)) ||
        /* (S, 1, C) is (S, 1, H, D) is (S, H, 1, D): one query needs no permute */
        (st = dm_attention(be, &qh, &kh, &vh, scale, &oh)) ||
        (st = dm_linear(be, &o, &a->out_w, &a->out_b, DM_ACT_NONE, &tmp)) ||
        (st = dm_binary(be, hs, &tmp, DM_BINARY_ADD, hs)))
        return st;
    return DM_OK;
}

dm_status mm_forward_cached(const mm_weights *w, mm_scratch *s, mm_kv_scratch *kv, dm_backend *be,
                            dm_tensor *x, dm_tensor *const cache[2], const int *slots, int n,
                            int slot_new) {
    int64_t T = 0, S = 0;
    dm_status st;
    if ((st = check_input(w, s, x, &T, &S))) return st;
    const int64_t C = w->channels;
    if (T != 1 || n < 0 || n + 1 > MM_MAX_LEN)
        return dm_error_set(DM_ERR_SHAPE,
                            "motion_module: cached form takes 1 frame and 0..%d "
                            "cached ones (got %lld, %d)",
                            MM_MAX_LEN - 1, (long long)T, n);
    if ((int64_t)(n + 1) * S * C > kv->cap)
        return dm_error_set(DM_ERR_SHAPE,
                            "motion_module: %d x h*w*C = %lld exceeds the "
                            "window scratch %lld",
                            n + 1, (long long)((n + 1) * S * C), (long long)kv->cap);
    for (int a = 0; a < 2; a++)
        if (cache[a]->ndim != 3 || cache[a]->shape[1] != S || cache[a]->shape[2] != C)
            return dm_error_set(DM_ERR_SHAPE, "motion_module: cache %d must be (P, %lld, %lld)", a,
                                (long long)S, (long long)C);
    if ((st = tokens_in(w, s, be, x, 1, S))) return st;
    const int64_t s_s1c[] = {S, 1, C};
    dm_tensor hs = view(&s->hs, 0, 3, s_s1c);
    for (int a = 0; a < 2; a++)
        if ((st = attn_block_cached(&w->attn[a], s, kv, be, S, C, cache[a], slots, n, slot_new,
                                    &hs)))
            return st;
    return tokens_out(w, s, be, x, 1, S);
}
