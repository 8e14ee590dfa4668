/* Streaming Video Depth Anything (vda_video, see include/depthmatte/vda.h): infer_video_depth
 * restated as a stream. Memory: the context's window input and activations, one window of raw
 * depths (32 source-size frames, which after alignment also serve as the output queue) and the
 * alignment state (10 frames) — independent of the video length.
 *
 * Window k holds frames {0, 22k-10, 22k+2..22k+31} (slots 0..31). After window k runs,
 * vda_window_shift moves slots 12 -> 1 and 24..31 -> 2..9, so pushing frames 22(k+1)+10.. fills
 * window k+1. At the end, the window being filled is padded with the last frame (the official
 * frame_list padding) and every window with start < frames runs. */
#include <stdlib.h>
#include <string.h>

#include "models/vda_internal.h"

struct vda_video {
    vda_ctx *c;
    vda_align *a;
    int src_h, src_w;
    float *raw;        /* (32, src_h, src_w) depths of the last window, aligned in place */
    int64_t pushed;    /* frames pushed so far */
    int64_t k;         /* next window to run */
    int flushed;       /* no more frames; pushed is the video length */
    int pending_out;   /* the last 8 frames were queued */
    const float *q;    /* output queue: frames at q, q + hw, ... */
    int q_left;        /* frames left in the queue */
    int64_t q_frame;   /* video index of the frame at q */
};

dm_status vda_video_init(vda_video **out, vda_ctx *c) {
    *out = NULL;
    vda_video *v = calloc(1, sizeof *v);
    if (!v) return dm_error_set(DM_ERR_NOMEM, "vda_video: out of memory");
    v->c = c;
    int h, w;
    vda_ctx_source_dims(c, &h, &w);
    v->src_h = h, v->src_w = w;
    dm_status st = vda_align_init(&v->a, h, w, vda_ctx_metric(c));
    if (!st) {
        v->raw = malloc(sizeof(float) * VDA_WINDOW * (size_t)h * w);
        if (!v->raw) st = dm_error_set(DM_ERR_NOMEM, "vda_video: no memory for a %dx%d window",
                                       w, h);
    }
    if (st) {
        vda_video_free(v);
        return st;
    }
    *out = v;
    return DM_OK;
}

void vda_video_free(vda_video *v) {
    if (!v) return;
    vda_align_free(v->a);
    free(v->raw);
    free(v);
}

/* Runs window v->k on the filled input, aligns it and queues its finished frames. */
static dm_status run_window(vda_video *v) {
    if (v->q_left > 0)
        return dm_error_set(DM_ERR_ARG, "vda_video: pop the finished frames before pushing "
                            "more (window %lld is due)", (long long)v->k);
    dm_status st;
    int first_slot, count;
    int64_t first_frame;
    if ((st = vda_window_run(v->c, v->raw)) ||
        (st = vda_align_window(v->a, v->raw, &first_slot, &count, &first_frame)) ||
        (st = vda_window_shift(v->c)))
        return st;
    v->q = v->raw + (size_t)first_slot * v->src_h * v->src_w;
    v->q_left = count;
    v->q_frame = first_frame;
    v->k++;
    return DM_OK;
}

dm_status vda_video_push(vda_video *v, const uint8_t *rgb) {
    if (v->flushed) return dm_error_set(DM_ERR_ARG, "vda_video: push after flush");
    const int slot = (int)(v->pushed - v->k * VDA_STRIDE);
    dm_status st = vda_preprocess_u8(v->c, rgb, slot);
    if (st) return st;
    v->pushed++;
    return slot == VDA_WINDOW - 1 ? run_window(v) : DM_OK;
}

dm_status vda_video_flush(vda_video *v) {
    v->flushed = 1;
    return DM_OK;
}

/* Pads the window being filled with the last frame (slots after it) and runs it. */
static dm_status run_padded(vda_video *v) {
    const int64_t last = v->pushed - 1 - v->k * VDA_STRIDE;
    /* k > 0 and last < 2: the last frame already sits in slot 2 (shifted padding) */
    const int src = v->k > 0 && last < 2 ? 2 : (int)last;
    for (int s = src + 1; s < VDA_WINDOW; s++) {
        dm_status st = vda_window_copy_slot(v->c, src, s);
        if (st) return st;
    }
    return run_window(v);
}

int vda_video_pop(vda_video *v, float *depth, int64_t *frame) {
    const size_t hw = (size_t)v->src_h * v->src_w;
    for (;;) {
        if (v->q_left > 0 && (!v->flushed || v->q_frame < v->pushed)) {
            memcpy(depth, v->q, hw * sizeof(float));
            *frame = v->q_frame;
            v->q += hw, v->q_left--, v->q_frame++;
            return 1;
        }
        v->q_left = 0; /* after flush: frames past the end are padding */
        if (!v->flushed || v->pushed == 0) return 0;
        dm_status st;
        if (v->k * VDA_STRIDE < v->pushed) {
            if ((st = run_padded(v))) return -(int)st;
            continue;
        }
        if (v->pending_out) return 0;
        const float *p;
        int64_t first;
        if ((st = vda_align_finish(v->a, &p, &first))) return -(int)st;
        v->pending_out = 1;
        v->q = p, v->q_left = VDA_INTERP, v->q_frame = first;
    }
}
