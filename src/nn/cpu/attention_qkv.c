/* Multi-head self-attention from a packed qkv tensor, CPU reference (backend.h attention_qkv):
 * the split permute (B, T, 3, H, D) -> (3, B, H, T, D), attention_cpu and the merge permute
 * (B, H, T, D) -> (B, T, H, D), i.e. exactly the ops a ViT block ran before this op existed,
 * so that the result is bitwise theirs. The split heads and the attention output live in the
 * backend's second workspace (attention_cpu uses the first one for its scores). */
#include "cpu_ops.h"

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
    const int64_t H = heads, D = C / heads, part = B * H * T * D;
    if (part == 0) return DM_OK;
    float *ws = dm_backend_scratch_aux(be, sizeof(float) * 4 * (size_t)part);
    if (!ws) return dm_error_set(DM_ERR_NOMEM, "attention_qkv: no workspace memory");
    const int64_t s5[5] = {B, T, 3, H, D}, sh[5] = {3, B, H, T, D}, s4[4] = {B, H, T, D},
                  sm[4] = {B, T, H, D};
    const int split[5] = {2, 0, 3, 1, 4}, merge[4] = {0, 2, 1, 3};
    dm_tensor qkv5, heads_t, q, k, v, att, merged;
    dm_tensor_view(&qkv5, qkv->data, DM_DTYPE_F32, 5, s5);
    dm_tensor_view(&heads_t, ws, DM_DTYPE_F32, 5, sh);
    dm_tensor_view(&q, ws, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&k, ws + part, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&v, ws + 2 * part, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&att, ws + 3 * part, DM_DTYPE_F32, 4, s4);
    dm_tensor_view(&merged, o->data, DM_DTYPE_F32, 4, sm);
    if ((st = permute_cpu(be, &qkv5, split, &heads_t)) ||
        (st = attention_cpu(be, &q, &k, &v, scale, &att)))
        return st;
    return permute_cpu(be, &att, merge, &merged);
}
