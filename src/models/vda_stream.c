/* Streaming Video Depth Anything (vda_stream, include/depthmatte/vda.h): the official
 * experimental streaming mode, VideoDepthAnything.infer_video_depth_one of
 * Video-Depth-Anything/video_depth_anything/video_depth_stream.py, restated.
 *
 * Per frame: the ViT-S encoder and the DPT head run on this ONE frame (batch 1); each of the
 * 8 temporal attention blocks (4 motion modules x 2) attends over 31 cached hidden states of
 * past frames plus this frame's (models/motion_module.h, mm_forward_cached). The cache list
 * is the official frame_cache_list, kept as slot indices into per-block pools:
 *   first frame: single-frame pass (no cache); the list becomes 32 copies of its states;
 *   frame i > 0: window = list[0:2] + list[-29:] (INFER_LEN-3 = 29), then this frame;
 *     its states are appended; once i + 32 > gap + 1 (gap 41, i.e. from frame 11 on)
 *     list[1] is deleted, so the list holds 42 entries and window i is frames
 *     {0, i-41, i-29..i-1, i} in steady state (first frame replicated until then).
 * At most 43 distinct frames are referenced at once (42 in the list + the new one): the
 * pools have VDA_STREAM_CACHE slots, and memory does not depend on the video length. */
#include <stdlib.h>
#include <string.h>

#include "depthmatte/copy_async.h"
#include "depthmatte/graph.h"
#include "models/dinov2.h"
#include "models/dpt_temporal.h"
#include "models/vda_internal.h"

#define STREAM_GAP ((VDA_WINDOW - VDA_OVERLAP) * 2 - 1 - (VDA_OVERLAP - VDA_INTERP)) /* 41 */
#define STREAM_LIST_MAX (STREAM_GAP + 2) /* list length after an append, before the delete */

struct vda_stream {
    const vda_model *m;
    dm_backend *be;
    int src_h, src_w, h, w;
    dinov2_ctx enc;        /* batch 1 */
    dptt_ctx head;         /* frames 1 */
    mm_kv_scratch kv;      /* (32, S, C) window buffers, largest module */
    dm_tensor cache[4][2]; /* module i, attention block a: (VDA_STREAM_CACHE, S_i, C_i) */
    dm_tensor input;       /* (1, 3, h, w) on the backend (image_cubic_normalize) */
    dm_tensor rgb_dev;     /* (1, src_h, src_w, 3) u8 frame uploaded to a device backend */
    dm_tensor out_dev;     /* (1, 1, src_h, src_w) resized depth on a device backend */
    int list[STREAM_LIST_MAX]; /* frame_cache_list as pool slots */
    int len;
    int refs[VDA_STREAM_CACHE]; /* list entries per slot */
    int64_t id;                 /* frames done */
    dm_async_counts counts;     /* NaN/Inf in the depth of the last push (on the backend) */
    /* vda_stream_checkpoint: the bookkeeping above as it was before a push (host memory, 368
     * bytes, any input size). The pools need no copy: a push writes only the slot it takes,
     * which is free (refs 0) before the push, so no later window reads its old contents. */
    struct {
        int list[STREAM_LIST_MAX];
        int len;
        int refs[VDA_STREAM_CACHE];
        int64_t id;
        int valid;
    } ckpt;
    /* On a backend with graphs: the per-frame encoder (normalise rgb_dev -> input, ViT-S at
     * batch 1, 122 ops) as one graph. The head is not captured: its motion modules read
     * the cache pools through slot lists that change every frame (host-side indices, baked
     * into a graph; docs/gpu.md "CUDA Graphs"). */
    dm_graph_runner graph;
};

dm_status vda_stream_nonfinite(vda_stream *s, int64_t *count) {
    dm_status st = dm_async_counts_wait(&s->counts, s->be);
    *count = st ? 0 : s->counts.host[0];
    return st;
}

void vda_stream_free(vda_stream *s) {
    if (!s) return;
    dinov2_ctx_free(&s->enc);
    dptt_ctx_free(&s->head);
    mm_kv_scratch_free(&s->kv);
    for (int i = 0; i < 4; i++)
        for (int a = 0; a < 2; a++)
            dm_tensor_free(&s->cache[i][a]);
    dm_tensor_free(&s->input);
    dm_tensor_free(&s->rgb_dev);
    dm_tensor_free(&s->out_dev);
    dm_async_counts_free(&s->counts, s->be);
    dm_graph_runner_free(&s->graph);
    free(s);
}

dm_status vda_stream_init(vda_stream **out, const vda_model *m, dm_backend *be, int src_h,
                          int src_w, int input_size) {
    *out = NULL;
    if (src_h < 14 || src_w < 14)
        return dm_error_set(DM_ERR_ARG,
                            "vda_stream: frame %dx%d is smaller than one 14x14 "
                            "patch",
                            src_w, src_h);
    if (input_size < 14 || input_size > 4096)
        return dm_error_set(DM_ERR_ARG, "vda_stream: input_size %d outside 14..4096", input_size);
    vda_stream *s = calloc(1, sizeof *s);
    if (!s) return dm_error_set(DM_ERR_NOMEM, "vda_stream: out of memory");
    s->m = m, s->be = be, s->src_h = src_h, s->src_w = src_w;
    dm_graph_runner_init(&s->graph, be, 1); /* DM_CUDA_GRAPHS=0: off (docs/gpu.md) */
    vda_input_size(src_h, src_w, input_size, &s->h, &s->w);
    const dinov2_weights *ew = vda_model_encoder(m);
    const dptt_weights *hw = vda_model_head(m);
    const int ph = s->h / VIT_PATCH, pw = s->w / VIT_PATCH;
    const int64_t s_in[] = {1, 3, s->h, s->w}, s_out[] = {1, 1, src_h, src_w},
                  s_rgb[] = {1, src_h, src_w, 3};
    const dm_dtype dt = dm_backend_storage_dtype(be);
    dm_status st;
    if ((st = dinov2_ctx_init(&s->enc, ew, be, 1, s->h, s->w)) ||
        (st = dptt_ctx_init(&s->head, hw, be, 1, ph, pw)) ||
        (st = dm_alloc(be, &s->input, dt, 4, s_in)) ||
        (st = dm_async_counts_init(&s->counts, be, 1)))
        goto fail;
    /* the modules' token grids: layer_3 (lh[2]), layer_4 (lh[3]), path_4 (lh[2]), path_3
     * (lh[1]) of the DPT context */
    const dpt_ctx *d = &s->head.dpt;
    const int grid[4] = {2, 3, 2, 1};
    int64_t max_tsc = 0;
    for (int i = 0; i < 4; i++) {
        const int64_t S = (int64_t)d->lh[grid[i]] * d->lw[grid[i]], C = hw->mm[i].channels;
        const int64_t shape[] = {VDA_STREAM_CACHE, S, C};
        for (int a = 0; a < 2; a++)
            if ((st = dm_alloc(be, &s->cache[i][a], dt, 3, shape))) goto fail;
        if (VDA_WINDOW * S * C > max_tsc) max_tsc = VDA_WINDOW * S * C;
    }
    if ((st = mm_kv_scratch_init(&s->kv, be, max_tsc))) goto fail;
    if (be->device != DM_DEVICE_CPU &&
        ((st = dm_alloc(be, &s->rgb_dev, DM_DTYPE_U8, 4, s_rgb)) ||
         (st = dm_alloc(be, &s->out_dev, dt, 4, s_out))))
        goto fail;
    *out = s;
    return DM_OK;
fail:
    vda_stream_free(s);
    return st;
}

void vda_stream_reset(vda_stream *s) {
    s->len = 0;
    s->id = 0;
    memset(s->refs, 0, sizeof s->refs);
    s->ckpt.valid = 0;
}

void vda_stream_checkpoint(vda_stream *s) {
    memcpy(s->ckpt.list, s->list, sizeof s->list);
    memcpy(s->ckpt.refs, s->refs, sizeof s->refs);
    s->ckpt.len = s->len;
    s->ckpt.id = s->id;
    s->ckpt.valid = 1;
}

dm_status vda_stream_restore(vda_stream *s) {
    if (!s->ckpt.valid) return dm_error_set(DM_ERR_ARG, "vda_stream: no checkpoint to restore");
    memcpy(s->list, s->ckpt.list, sizeof s->list);
    memcpy(s->refs, s->ckpt.refs, sizeof s->refs);
    s->len = s->ckpt.len;
    s->id = s->ckpt.id;
    return DM_OK;
}

/* The (n, S, C) rows of pool slots slot..slot+n-1 of module i, attention block a. */
static dm_tensor slot_view(const vda_stream *s, int i, int a, int slot, int n) {
    const dm_tensor *p = &s->cache[i][a];
    const int64_t shape[] = {n, p->shape[1], p->shape[2]};
    return dm_tensor_sub(p, (int64_t)slot * shape[1] * shape[2], 3, shape);
}

dm_status vda_stream_copy_state(vda_stream *dst, const vda_stream *src, int last_only) {
    if (dst->be->device != DM_DEVICE_CPU && src->be->device != DM_DEVICE_CPU && dst->be != src->be)
        return dm_error_set(DM_ERR_ARG, "vda_stream: cached state between two device backends");
    for (int i = 0; i < 4; i++)
        if (dst->cache[i][0].shape[1] != src->cache[i][0].shape[1] ||
            dst->cache[i][0].shape[2] != src->cache[i][0].shape[2])
            return dm_error_set(
                DM_ERR_SHAPE,
                "vda_stream: cached state of motion module %d is (%lld, %lld) "
                "into (%lld, %lld) (another frame or input size)",
                i, (long long)src->cache[i][0].shape[1], (long long)src->cache[i][0].shape[2],
                (long long)dst->cache[i][0].shape[1], (long long)dst->cache[i][0].shape[2]);
    if (last_only && (src->id < 1 || dst->id + 1 != src->id))
        return dm_error_set(DM_ERR_ARG,
                            "vda_stream: last-frame copy from a stream at frame %lld into one at "
                            "frame %lld (needs one frame apart)",
                            (long long)src->id, (long long)dst->id);
    /* the side that is not on the CPU does the copy (upload / download, dtype conversion) */
    dm_backend *be = dst->be->device != DM_DEVICE_CPU ? dst->be : src->be;
    /* the slots that hold state: the last frame's, or the span of the referenced ones, one copy
     * per pool (the few free slots inside the span travel too: cheaper than one copy each) */
    int lo = VDA_STREAM_CACHE, hi = -1;
    for (int sl = 0; sl < VDA_STREAM_CACHE; sl++)
        if (last_only ? src->len > 0 && sl == src->list[src->len - 1] : src->refs[sl] > 0) {
            if (sl < lo) lo = sl;
            hi = sl;
        }
    for (int i = 0; i < 4 && hi >= lo; i++)
        for (int a = 0; a < 2; a++) {
            const dm_tensor from = slot_view(src, i, a, lo, hi - lo + 1);
            dm_tensor to = slot_view(dst, i, a, lo, hi - lo + 1);
            dm_status st = dm_copy(be, &from, &to);
            if (st) return st;
        }
    memcpy(dst->list, src->list, sizeof dst->list);
    memcpy(dst->refs, src->refs, sizeof dst->refs);
    dst->len = src->len;
    dst->id = src->id;
    dst->ckpt.valid = 0;
    return dm_synchronize(be);
}

int vda_stream_state_equal(const vda_stream *a, const vda_stream *b) {
    if (a->be->device != DM_DEVICE_CPU || b->be->device != DM_DEVICE_CPU)
        return -(int)dm_error_set(DM_ERR_ARG, "vda_stream_state_equal: CPU streams only");
    if (a->len != b->len || a->id != b->id || memcmp(a->list, b->list, sizeof a->list[0] * a->len))
        return 0;
    for (int sl = 0; sl < VDA_STREAM_CACHE; sl++) {
        if (a->refs[sl] != b->refs[sl]) return 0;
        if (!a->refs[sl]) continue;
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 2; k++) {
                const dm_tensor x = slot_view(a, i, k, sl, 1), y = slot_view(b, i, k, sl, 1);
                if (x.dtype != y.dtype || dm_tensor_numel(&x) != dm_tensor_numel(&y) ||
                    memcmp(x.data, y.data, (size_t)dm_tensor_numel(&x) * dm_dtype_size(x.dtype)))
                    return 0;
            }
    }
    return 1;
}

int64_t vda_stream_frames(const vda_stream *s) {
    return s->id;
}

void vda_stream_input_dims(const vda_stream *s, int *h, int *w) {
    *h = s->h;
    *w = s->w;
}

/* Motion module i on x (1, C, h, w) with the window slots[0..n) + slot_new. */
static dm_status stream_mm(vda_stream *s, int i, dm_tensor *x, const int *slots, int n,
                           int slot_new) {
    dm_tensor *const cache[2] = {&s->cache[i][0], &s->cache[i][1]};
    return mm_forward_cached(&vda_model_head(s->m)->mm[i], &s->head.mms, &s->kv, s->be, x, cache,
                             slots, n, slot_new);
}

/* DPTHeadTemporal.forward for one frame with cached_hidden_state_list (the stages of
 * dptt_forward with the cached modules; batch 1 is below micro_batch_size, so the official
 * tail runs unbatched). Output: s->head.dpt.out (1, 1, 14ph, 14pw). */
static dm_status stream_head(vda_stream *s, const int *slots, int n, int slot_new) {
    dpt_ctx *d = &s->head.dpt;
    const dpt_weights *dw = &vda_model_head(s->m)->dpt;
    dm_backend *be = s->be;
    dm_status st;
    for (int i = 0; i < 4; i++)
        if ((st = dpt_reassemble_layer(d, dw, be, i, &s->enc.feat[i]))) return st;
    if ((st = stream_mm(s, 0, &d->layer[2], slots, n, slot_new)) ||
        (st = stream_mm(s, 1, &d->layer[3], slots, n, slot_new)))
        return st;
    for (int i = 0; i < 4; i++)
        if ((st = dpt_layer_rn(d, dw, be, i))) return st;
    if ((st = dpt_fusion_forward(d, &dw->ref[3], be, &d->rn[3], NULL, &d->path[3])) ||
        (st = stream_mm(s, 2, &d->path[3], slots, n, slot_new)) ||
        (st = dpt_fusion_forward(d, &dw->ref[2], be, &d->path[3], &d->rn[2], &d->path[2])) ||
        (st = stream_mm(s, 3, &d->path[2], slots, n, slot_new)) ||
        (st = dpt_fusion_forward(d, &dw->ref[1], be, &d->path[2], &d->rn[1], &d->path[1])) ||
        (st = dpt_fusion_forward(d, &dw->ref[0], be, &d->path[1], &d->rn[0], &d->path[0])))
        return st;
    return dpt_output(d, dw, be);
}

/* The graph body of a device frame: normalise the uploaded frame, encoder. */
static dm_status encoder_body(void *arg) {
    vda_stream *s = arg;
    dm_status st = dm_image_cubic_normalize(s->be, &s->rgb_dev, &vda_norm_params, &s->input);
    return st ? st : dinov2_forward(&s->enc, vda_model_encoder(s->m), s->be, &s->input);
}

dm_status vda_stream_push(vda_stream *s, const uint8_t *rgb, float *depth) {
    dm_copy_ticket t;
    dm_status st = vda_stream_push_async(s, rgb, depth, &t);
    return st ? st : dm_copy_wait(s->be, &t);
}

dm_status vda_stream_push_async(vda_stream *s, const uint8_t *rgb, float *depth,
                                dm_copy_ticket *ticket) {
    dm_backend *be = s->be;
    dm_status st;
    memset(ticket, 0, sizeof *ticket);
    /* infer_video_depth_one's transform on the backend: only the u8 frame travels */
    const int64_t s_rgb[] = {1, s->src_h, s->src_w, 3};
    dm_tensor frame;
    dm_tensor_view(&frame, (void *)rgb, DM_DTYPE_U8, 4, s_rgb);
    if (be->device != DM_DEVICE_CPU) {
        if ((st = dm_copy(be, &frame, &s->rgb_dev)) ||
            (st = dm_graph_runner_run(&s->graph, 0, encoder_body, s)))
            return st;
    } else if ((st = dm_image_cubic_normalize(be, &frame, &vda_norm_params, &s->input)) ||
               (st = dinov2_forward(&s->enc, vda_model_encoder(s->m), be, &s->input))) {
        return st;
    }
    /* a free slot for this frame's states: never one of the window's (those have refs) */
    int slot_new = 0;
    while (slot_new < VDA_STREAM_CACHE && s->refs[slot_new])
        slot_new++;
    if (slot_new == VDA_STREAM_CACHE)
        return dm_error_set(DM_ERR_ARG, "vda_stream: cache pool exhausted (internal)");
    int win[VDA_WINDOW - 1], n = 0;
    if (s->id > 0) { /* cur_list = frame_cache_list[0:2] + frame_cache_list[-INFER_LEN+3:] */
        win[n++] = s->list[0], win[n++] = s->list[1];
        for (int j = s->len - (VDA_WINDOW - 3); j < s->len; j++)
            win[n++] = s->list[j];
    }
    if ((st = stream_head(s, win, n, slot_new))) return st;
    /* forward_depth's interpolate to the input size is the identity and its ReLU a no-op
     * (output_conv2 ends in ReLU); then bilinear, align_corners True, to the frame size */
    const int64_t s_out[] = {1, 1, s->src_h, s->src_w};
    dm_tensor host;
    dm_tensor_view(&host, depth, DM_DTYPE_F32, 4, s_out);
    /* counted where the depth is (on a device: there), the count's download queued first */
    const int cpu = be->device == DM_DEVICE_CPU;
    dm_tensor *out = cpu ? &host : &s->out_dev;
    if (!(st = dm_resize(be, &s->head.dpt.out, DM_RESIZE_BILINEAR, 1, 0, 0, out)) &&
        !(st = dm_count_nonfinite(be, out, &s->counts.dev, 0)) &&
        !(st = dm_async_counts_start(&s->counts, be, 1)) && !cpu)
        st = dm_copy_async(be, &s->out_dev, &host, ticket);
    if (st) return st;
    /* the list update of infer_video_depth_one */
    if (s->id == 0) { /* [cached_hidden_state_list] * INFER_LEN */
        for (int j = 0; j < VDA_WINDOW; j++)
            s->list[j] = slot_new;
        s->len = VDA_WINDOW;
        s->refs[slot_new] = VDA_WINDOW;
    } else {
        s->list[s->len++] = slot_new;
        s->refs[slot_new]++;
    }
    if (s->id + VDA_WINDOW > STREAM_GAP + 1) { /* del frame_cache_list[1] */
        s->refs[s->list[1]]--;
        memmove(s->list + 1, s->list + 2, sizeof(int) * (size_t)(s->len - 2));
        s->len--;
    }
    s->id++;
    return DM_OK;
}
