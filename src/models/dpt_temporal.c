/* DPTHeadTemporal of Video Depth Anything (see dpt_temporal.h). The order of the stages
 * follows DPTHeadTemporal.forward; the micro-batching of refinenet2/1 and the output convs
 * (micro_batch_size 4) only bounds PyTorch's memory and does not change the result. */
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

dm_status dptt_ctx_init(dptt_ctx *c, const dptt_weights *w, dm_backend *be, int frames, int ph,
                        int pw) {
    memset(c, 0, sizeof *c);
    if (frames < 1 || frames > MM_MAX_LEN)
        return dm_error_set(DM_ERR_ARG, "dpt_temporal: %d frames (1..%d)", frames, MM_MAX_LEN);
    c->frames = frames, c->ph = ph, c->pw = pw;
    dm_status st = dpt_ctx_init(&c->dpt, &w->dpt, be, frames, ph, pw);
    if (st) return st;
    /* largest T * h * w * C over the four modules */
    const int64_t T = frames;
    int64_t n[4] = {T * c->dpt.lh[2] * c->dpt.lw[2] * w->mm[0].channels,
                    T * c->dpt.lh[3] * c->dpt.lw[3] * w->mm[1].channels,
                    T * c->dpt.lh[2] * c->dpt.lw[2] * w->mm[2].channels,
                    T * c->dpt.lh[1] * c->dpt.lw[1] * w->mm[3].channels};
    int64_t mx = 0;
    for (int i = 0; i < 4; i++) mx = n[i] > mx ? n[i] : mx;
    if ((st = mm_scratch_init(&c->mms, be, mx))) dptt_ctx_free(c);
    return st;
}

dm_status dptt_forward(dptt_ctx *c, const dptt_weights *w, dm_backend *be,
                       const dm_tensor *const feats[4], dm_tensor *mm0_in) {
    dpt_ctx *d = &c->dpt;
    const dpt_weights *dw = &w->dpt;
    dm_status st;
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
        (st = mm_forward(&w->mm[3], &c->mms, be, &d->path[2])) ||
        (st = dpt_fusion_forward(d, &dw->ref[1], be, &d->path[2], &d->rn[1], &d->path[1])) ||
        (st = dpt_fusion_forward(d, &dw->ref[0], be, &d->path[1], &d->rn[0], &d->path[0])))
        return st;
    return dpt_output(d, dw, be);
}
