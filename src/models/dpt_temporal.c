/* DPTHeadTemporal of Video Depth Anything (see dpt_temporal.h). The order of the stages
 * follows DPTHeadTemporal.forward, including its micro-batching of the per-frame tail
 * (refinenet2, refinenet1, output convs; micro_batch_size 4): every op of the tail is per
 * frame, so the result is that of the whole batch, while the tail's buffers hold 4 frames
 * instead of 32 (at 518x518 about 4.4 GB less). */
#include <stdio.h>
#include <string.h>

#include "models/dinov2.h"
#include "models/dpt_temporal.h"

void dptt_free(dptt_weights *w) {
    dpt_free(&w->dpt);
    for (int i = 0; i < 4; i++) mm_free(&w->mm[i]);
}

dm_status dptt_each(dptt_weights *w, model_tensor_fn fn, void *arg) {
    dm_status st = dpt_each(&w->dpt, fn, arg);
    for (int i = 0; i < 4 && !st; i++) st = mm_each(&w->mm[i], fn, arg);
    return st;
}

dm_status dptt_upload(dptt_weights *w, dm_backend *be) {
    dm_status st = dpt_each(&w->dpt, model_tensor_upload, be);
    for (int i = 0; i < 4 && !st; i++) st = mm_upload(&w->mm[i], be);
    return st;
}

dm_status dptt_load(dptt_weights *w, da2_wsrc *src, const char *prefix) {
    memset(w, 0, sizeof *w);
    dm_status st = dpt_load(&w->dpt, src, prefix);
    if (st) return st;
    const int ch[4] = {w->dpt.out_ch[2], w->dpt.out_ch[3], DPT_FEATURES, DPT_FEATURES};
    for (int i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof p, "%smotion_modules.%d.", prefix, i);
        if ((st = mm_load(&w->mm[i], src, p, ch[i]))) {
            dptt_free(w);
            return st;
        }
    }
    return DM_OK;
}

void dptt_ctx_free(dptt_ctx *c) {
    dpt_ctx_free(&c->dpt);
    mm_scratch_free(&c->mms);
    memset(c, 0, sizeof *c);
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

dm_status dptt_ctx_init(dptt_ctx *c, const dptt_weights *w, dm_backend *be, int frames, int ph,
                        int pw) {
    return dptt_ctx_init_plan(c, w, be, frames, ph, pw, NULL, 0);
}

dm_status dptt_ctx_init_plan(dptt_ctx *c, const dptt_weights *w, dm_backend *be, int frames,
                             int ph, int pw, buf_plan *plan, int phase0) {
    memset(c, 0, sizeof *c);
    if (frames < 1 || frames > MM_MAX_LEN)
        return dm_error_set(DM_ERR_ARG, "dpt_temporal: %d frames (1..%d)", frames, MM_MAX_LEN);
    c->frames = frames, c->ph = ph, c->pw = pw;
    /* the official rule: micro-batches only when they divide the batch */
    c->micro_batch = frames > DPTT_MICRO_BATCH && frames % DPTT_MICRO_BATCH == 0
                         ? DPTT_MICRO_BATCH
                         : frames;
    dpt_ctx *d = &c->dpt;
    dm_status st = dpt_ctx_dims(d, frames, ph, pw);
    if (st) return st;
    const dpt_weights *dw = &w->dpt;
    const int64_t T = frames, M = c->micro_batch, F = DPT_FEATURES;
    const int64_t hw[4] = {(int64_t)d->lh[0] * d->lw[0], (int64_t)d->lh[1] * d->lw[1],
                           (int64_t)d->lh[2] * d->lw[2], (int64_t)d->lh[3] * d->lw[3]};
    const int64_t oh = (int64_t)VIT_PATCH * ph, ow = (int64_t)VIT_PATCH * pw;
#define P(k) (phase0 + DPTT_PH_##k)
#define REQ(t, first, last, ...)                                                                   do {                                                                                               const int64_t s_[] = {__VA_ARGS__};                                                            if ((st = bp_alloc(plan, be, t, (int)(sizeof s_ / sizeof s_[0]), s_, first, last)))               goto fail;                                                                             } while (0)
    /* Lifetimes follow dptt_forward: a buffer lives from the stage that writes it to the last
     * stage that reads it; the taps (vda_ctx_taps: layer_3/4 and path_4/3 after their motion
     * modules, the head output) live to the end. */
    REQ(&d->tok, P(REASSEMBLE), P(REASSEMBLE) + 3, T, VIT_DIM, ph, pw);
    for (int i = 0; i < 4; i++) {
        const int re = P(REASSEMBLE) + i;
        REQ(&d->proj[i], re, i == 2 ? P(END) : re, T, dw->out_ch[i], ph, pw);
        if (i != 2) /* layer_3 = proj[2] (resize_layers[2] is Identity): dptt_forward */
            REQ(&d->layer[i], re, i == 3 ? P(END) : P(RN), T, dw->out_ch[i], d->lh[i], d->lw[i]);
    }
    REQ(&d->rn[3], P(RN), P(REF4), T, F, d->lh[3], d->lw[3]);
    REQ(&d->rn[2], P(RN), P(REF3), T, F, d->lh[2], d->lw[2]);
    REQ(&d->rn[1], P(RN), P(TAIL), T, F, d->lh[1], d->lw[1]);
    REQ(&d->rn[0], P(RN), P(TAIL), T, F, d->lh[0], d->lw[0]);
    REQ(&d->path[3], P(REF4), P(END), T, F, d->lh[2], d->lw[2]);
    REQ(&d->path[2], P(REF3), P(END), T, F, d->lh[1], d->lw[1]);
    REQ(&d->path[1], P(TAIL), P(TAIL), M, F, d->lh[0], d->lw[0]);
    REQ(&d->path[0], P(TAIL), P(TAIL), M, F, 2 * d->lh[0], 2 * d->lw[0]);
    /* fusion temporaries: refinenet4/3 on all frames at the small sizes, refinenet2/1 on one
     * micro-batch at the large ones (inputs x0 of each; `up` = the output size) */
    const int64_t n_t = F * max64(T * max64(hw[3], hw[2]), M * max64(hw[1], hw[0]));
    const int64_t n_up = F * max64(T * max64(hw[2], hw[1]), M * max64(hw[0], 4 * hw[0]));
    REQ(&d->t1, P(REF4), P(TAIL), n_t);
    REQ(&d->t2, P(REF4), P(TAIL), n_t);
    REQ(&d->t3, P(REF4), P(TAIL), n_t);
    REQ(&d->up, P(REF4), P(TAIL), n_up);
    REQ(&d->oc1, P(TAIL), P(TAIL), M, F / 2, 2 * d->lh[0], 2 * d->lw[0]);
    REQ(&d->oc1_up, P(TAIL), P(TAIL), M, F / 2, oh, ow);
    REQ(&d->oc2a, P(TAIL), P(TAIL), M, DPT_HEAD2, oh, ow);
    REQ(&d->out, P(TAIL), P(END), T, 1, oh, ow);
#undef REQ
    /* largest T * h * w * C over the four modules */
    const int64_t n[4] = {T * hw[2] * w->mm[0].channels, T * hw[3] * w->mm[1].channels,
                          T * hw[2] * w->mm[2].channels, T * hw[1] * w->mm[3].channels};
    int64_t mx = 0;
    for (int i = 0; i < 4; i++) mx = max64(mx, n[i]);
    if ((st = mm_scratch_init_plan(&c->mms, be, mx, plan, P(MM01), P(MM3)))) goto fail;
#undef P
    d->layer[2] = d->proj[2], d->layer[2].owns_data = 0; /* again after a bp_commit */
    return DM_OK;
fail:
    dptt_ctx_free(c);
    return st;
}

/* Frames [first, first + n) of t (N, ...) as a view of n frames. */
static dm_tensor frames_of(const dm_tensor *t, int64_t first, int64_t n) {
    int64_t per = 1;
    for (int i = 1; i < t->ndim; i++) per *= t->shape[i];
    int64_t s[DM_MAX_DIMS];
    memcpy(s, t->shape, sizeof s);
    s[0] = n;
    return dm_tensor_sub(t, first * per, t->ndim, s);
}

dm_status dptt_forward(dptt_ctx *c, const dptt_weights *w, dm_backend *be,
                       const dm_tensor *const feats[4], dm_tensor *mm0_in) {
    dpt_ctx *d = &c->dpt;
    const dpt_weights *dw = &w->dpt;
    dm_status st;
    /* layer_3 views proj[2]; set here because a planned proj[2] is filled by bp_commit */
    d->layer[2] = d->proj[2], d->layer[2].owns_data = 0;
    for (int i = 0; i < 4; i++)
        if ((st = dpt_reassemble_layer(d, dw, be, i, feats[i]))) return st;
    if (mm0_in && (st = dm_copy(be, &d->layer[2], mm0_in))) return st;
    if ((st = mm_forward(&w->mm[0], &c->mms, be, &d->layer[2])) ||
        (st = mm_forward(&w->mm[1], &c->mms, be, &d->layer[3])))
        return st;
    for (int i = 0; i < 4; i++)
        if ((st = dpt_layer_rn(d, dw, be, i))) return st;
    if ((st = dpt_fusion_forward(d, &dw->ref[3], be, &d->rn[3], NULL, &d->path[3])) ||
        (st = mm_forward(&w->mm[2], &c->mms, be, &d->path[3])) ||
        (st = dpt_fusion_forward(d, &dw->ref[2], be, &d->path[3], &d->rn[2], &d->path[2])) ||
        (st = mm_forward(&w->mm[3], &c->mms, be, &d->path[2])))
        return st;
    /* The per-frame tail in micro-batches: the same stage functions on a copy of the context
     * whose tail tensors are views of the first n frames of their buffers (path_2, path_1,
     * output convs) and whose output is frames [f, f + n) of the head output. */
    const int T = c->frames, M = c->micro_batch;
    for (int f = 0; f < T; f += M) {
        const int n = T - f < M ? T - f : M;
        dpt_ctx m = *d;
        m.batch = n;
        m.path[1] = frames_of(&d->path[1], 0, n);
        m.path[0] = frames_of(&d->path[0], 0, n);
        m.oc1 = frames_of(&d->oc1, 0, n);
        m.oc1_up = frames_of(&d->oc1_up, 0, n);
        m.oc2a = frames_of(&d->oc2a, 0, n);
        m.out = frames_of(&d->out, f, n);
        const dm_tensor p3 = frames_of(&d->path[2], f, n), r2 = frames_of(&d->rn[1], f, n),
                        r1 = frames_of(&d->rn[0], f, n);
        if ((st = dpt_fusion_forward(&m, &dw->ref[1], be, &p3, &r2, &m.path[1])) ||
            (st = dpt_fusion_forward(&m, &dw->ref[0], be, &m.path[1], &r1, &m.path[0])) ||
            (st = dpt_output(&m, dw, be)))
            return st;
    }
    return DM_OK;
}
