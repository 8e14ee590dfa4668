/* Multi-head self-attention from a packed qkv tensor, CPU reference (backend.h attention_qkv):
 * the split permute (B, T, 3, H, D) -> (3, B, H, T, D), attention_cpu and the merge permute
 * (B, H, T, D) -> (B, T, H, D), i.e. exactly the ops a ViT block ran before this op existed,
 * so that the result is bitwise theirs. The split heads and the attention output live in the
 * backend's second workspace (attention_cpu uses the first one for its scores).
 *
 * The batch runs in chunks of whole batch items, so that the workspace (4 B T C floats for the
 * whole batch: 269 MB for a VDA window of 32 frames at 518, outside the models' buffer plan)
 * stays within ATTN_QKV_WS_BYTES: every (item, head) is computed exactly as in one call over
 * the whole batch (attention_cpu treats each (batch, head) on its own), so the output is
 * bitwise the same. */
#include "cpu_ops.h"

/* Workspace bound of one chunk: 4 * B_chunk * T * C floats <= this, at least one item (8.4 MB
 * for one ViT-S item at 518, T = 1370); many items per chunk for short sequences (VDA's
 * temporal attention runs on the plain attention op, not here). */
#define ATTN_QKV_WS_BYTES ((size_t)32 << 20)

dm_status attention_qkv_cpu(dm_backend *be, const dm_tensor *qkv, int heads, float scale,
                            dm_tensor *o) {
    dm_status st;
    if ((st = cpu_check_f32(qkv, 3, "attention_qkv", "qkv")) ||
        (st = cpu_check_f32(o, 3, "attention_qkv", "o")))
        return st;
    const int64_t B = qkv->shape[0], T = qkv->shape[1], C3 = qkv->shape[2], C = C3 / 3;
    if (heads < 1 || C3 % 3 || C % heads || o->shape[0] != B || o->shape[1] != T ||
        o->shape[2] != C)
        return dm_error_set(DM_ERR_SHAPE,
                            "attention_qkv: qkv must be (B, T, 3*C), o (B, T, C), "
                            "C divisible by %d heads",
                            heads);
    if (o->data == qkv->data) return dm_error_set(DM_ERR_ARG, "attention_qkv: o aliases qkv");
    const int64_t H = heads, D = C / heads, item = T * C; /* floats of q (or k, v) per item */
    if (B * item == 0) return DM_OK;
    int64_t Bc = (int64_t)(ATTN_QKV_WS_BYTES / (sizeof(float) * 4 * (size_t)item));
    if (Bc < 1) Bc = 1;
    if (Bc > B) Bc = B;
    float *ws = dm_backend_scratch_aux(be, sizeof(float) * 4 * (size_t)(Bc * item));
    if (!ws) return dm_error_set(DM_ERR_NOMEM, "attention_qkv: no workspace memory");
    const int split[5] = {2, 0, 3, 1, 4}, merge[4] = {0, 2, 1, 3};
    for (int64_t b0 = 0; b0 < B; b0 += Bc) {
        const int64_t nb = B - b0 < Bc ? B - b0 : Bc, part = nb * item;
        const int64_t s5[5] = {nb, T, 3, H, D}, sh[5] = {3, nb, H, T, D}, s4[4] = {nb, H, T, D},
                      sm[4] = {nb, T, H, D};
        dm_tensor qkv5, heads_t, q, k, v, att, merged;
        dm_tensor_view(&qkv5, dm_f32(qkv) + b0 * 3 * item, DM_DTYPE_F32, 5, s5);
        dm_tensor_view(&heads_t, ws, DM_DTYPE_F32, 5, sh);
        dm_tensor_view(&q, ws, DM_DTYPE_F32, 4, s4);
        dm_tensor_view(&k, ws + part, DM_DTYPE_F32, 4, s4);
        dm_tensor_view(&v, ws + 2 * part, DM_DTYPE_F32, 4, s4);
        dm_tensor_view(&att, ws + 3 * part, DM_DTYPE_F32, 4, s4);
        dm_tensor_view(&merged, dm_f32(o) + b0 * item, DM_DTYPE_F32, 4, sm);
        if ((st = permute_cpu(be, &qkv5, split, &heads_t)) ||
            (st = attention_cpu(be, &q, &k, &v, scale, &att)) ||
            (st = permute_cpu(be, &att, merge, &merged)))
            return st;
    }
    return DM_OK;
}
