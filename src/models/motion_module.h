/* Internal: the TemporalModule of Video Depth Anything (Video-Depth-Anything/
 * video_depth_anything/motion_module/motion_module.py, attention.py; derived from AnimateDiff):
 *   x (T, C, h, w) frames of one window ->
 *   GroupNorm(32, eps 1e-6) per frame -> tokens (S = h*w positions, T, C) -> proj_in ->
 *   1 transformer block: 2 x [LayerNorm(eps 1e-5) -> + pe[:T] (sinusoidal 'ape' buffer) ->
 *   self-attention over T at every position (8 heads of C/8, scale (C/8)^-0.5, to_q/k/v
 *   without bias, to_out with bias) -> + residual] -> LayerNorm -> GEGLU feed-forward
 *   (Linear C -> 8C, split [hidden | gate], hidden * gelu_exact(gate), Linear 4C -> C)
 *   -> + residual -> proj_out -> back to (T, C, h, w) -> + x.
 * Tokens are kept in the (S, T, C) layout through the whole block: every op except the
 * attention is per token, and (S, T, C) is what the attention needs ("(b f) d c -> (b d) f c").
 */
#ifndef DM_MODELS_MOTION_MODULE_H
#define DM_MODELS_MOTION_MODULE_H

#include "depthmatte/backend.h"
#include "models/buf_plan.h"
#include "models/da2_weights.h"
#include "models/model_tensors.h"

#define MM_HEADS 8
#define MM_GROUPS 32
#define MM_GN_EPS 1e-6f
#define MM_LN_EPS 1e-5f
#define MM_MAX_LEN 32 /* temporal_max_len: rows of the pe table */

typedef struct mm_attn_weights {
    dm_tensor norm_w, norm_b; /* (C) transformer_blocks.0.norms.i */
    dm_tensor q_w, k_w, v_w;  /* (C, C), no bias */
    dm_tensor out_w, out_b;   /* (C, C), (C) to_out.0 */
    dm_tensor pe;             /* (1, 32, C) pos_encoder.pe buffer */
} mm_attn_weights;

typedef struct mm_weights {
    int channels;               /* C: 192, 384, 64, 64 for modules 0..3 */
    dm_tensor gn_w, gn_b;       /* (C) temporal_transformer.norm (GroupNorm) */
    dm_tensor in_w, in_b;       /* (C, C), (C) proj_in */
    mm_attn_weights attn[2];    /* attention_blocks.0/1 with norms.0/1 */
    dm_tensor ffn_w, ffn_b;     /* (C) ff_norm */
    dm_tensor ff1_w, ff1_b;     /* (8C, C), (8C) ff.net.0.proj: rows [0, 4C) hidden, [4C, 8C) gate */
    dm_tensor ff2_w, ff2_b;     /* (C, 4C), (C) ff.net.2 */
    dm_tensor out_w, out_b;     /* (C, C), (C) proj_out */
} mm_weights;

/* Loads "<prefix>temporal_transformer...." (prefix e.g. "head.motion_modules.0.") for C
 * channels; shapes checked. On error everything loaded is freed. */
dm_status mm_load(mm_weights *w, da2_wsrc *src, const char *prefix, int channels);
/* Moves the weights onto backend `be` (dm_tensor_upload, once at load): in its storage dtype,
 * the positional encodings (pe) in its residual dtype (dm_backend_residual_dtype). Errors as
 * dm_tensor_upload. */
dm_status mm_upload(mm_weights *w, dm_backend *be);

void mm_free(mm_weights *w);

/* Calls fn on every weight tensor (free, upload to a device backend; models/model_tensors.h). */
dm_status mm_each(mm_weights *w, model_tensor_fn fn, void *arg);

/* Scratch shared by the modules of one head, sized for the largest T*S*C. */
typedef struct mm_scratch {
    int64_t cap;          /* floats per (T*S*C) buffer */
    dm_tensor xn;         /* (T, C, S) GroupNorm output */
    dm_tensor hs, tmp;    /* (S, T, C) hidden states, temporary */
    dm_tensor q, k, v;    /* (S, T, C) */
    dm_tensor qh, kh, vh; /* (S, heads, T, C/heads) */
    dm_tensor oh;         /* (S, heads, T, C/heads) attention output */
    dm_tensor ffh, ffg;   /* (S, T, 4C) */
} mm_scratch;

/* Allocates buffers for up to `max_tsc` = T*S*C floats per token buffer. */
dm_status mm_scratch_init(mm_scratch *s, dm_backend *be, int64_t max_tsc);
void mm_scratch_free(mm_scratch *s);

/* As mm_scratch_init, the buffers requested from `plan` for phases [first, last] (NULL: own
 * allocations); valid after bp_commit(plan). */
dm_status mm_scratch_init_plan(mm_scratch *s, dm_backend *be, int64_t max_tsc, buf_plan *plan,
                               int first, int last);

/* In place: x (T, C, h, w) <- TemporalModule(x) (T <= 32 frames of one window, batch 1).
 * DM_ERR_SHAPE if C differs from the weights or T*h*w*C exceeds the scratch. */
dm_status mm_forward(const mm_weights *w, mm_scratch *s, dm_backend *be, dm_tensor *x);

/* Window scratch of the cached (streaming) form: up to `max_tsc` = 32*S*C floats each. */
typedef struct mm_kv_scratch {
    int64_t cap;
    dm_tensor win; /* (T, S, C) assembled window, then k / v before the head split */
    dm_tensor kv;  /* (S, T, C) window tokens + pe, then v heads (S, heads, T, C/heads) */
    dm_tensor kh;  /* (S, heads, T, C/heads) key heads */
} mm_kv_scratch;

dm_status mm_kv_scratch_init(mm_kv_scratch *s, dm_backend *be, int64_t max_tsc);
void mm_kv_scratch_free(mm_kv_scratch *s);

/* Streaming form of the module (Video-Depth-Anything video_depth_stream.py through
 * TemporalModule.forward(..., cached_hidden_state_list)): x (1, C, h, w) = ONE frame, in
 * place. cache[a] (P, S, C), S = h*w, is the pool of cached hidden states of attention block
 * a (the LayerNorm output norms.a(hs) of past frames, before pe, as TemporalAttention returns
 * them). Keys/values run over slots[0..n) of the pool followed by this frame (pe positions
 * 0..n); the query is this frame alone (position n). This frame's states are written to slot
 * slot_new of both pools (slot_new must not be in slots). n = 0 is the single-frame pass of
 * the first frame. Errors: DM_ERR_SHAPE (x, cache or scratch sizes; n + 1 > 32),
 * DM_ERR_ARG (slot outside the pool). */
dm_status mm_forward_cached(const mm_weights *w, mm_scratch *s, mm_kv_scratch *kv, dm_backend *be,
                            dm_tensor *x, dm_tensor *const cache[2], const int *slots, int n,
                            int slot_new);

#endif
