/* DPT head of Depth Anything V2 (see dpt.h for the configuration and sources). */
#include <string.h>

#include "models/dinov2.h"
#include "models/dpt.h"

/* Non-owning view of t's buffer with another shape (must fit its capacity). */
static dm_tensor view(const dm_tensor *t, int ndim, const int64_t *shape) {
    return dm_tensor_sub(t, 0, ndim, shape);
}

dm_status dpt_each(dpt_weights *w, model_tensor_fn fn, void *arg) {
    dm_status st = DM_OK;
    for (int i = 0; i < 4 && !st; i++) {
        dpt_fusion *f = &w->ref[i];
        dm_tensor *all[] = {&w->proj_w[i], &w->proj_b[i], &w->rs_w[i], &w->rs_b[i],
                            &w->rn_w[i], &f->rcu1.c1_w, &f->rcu1.c1_b, &f->rcu1.c2_w,
                            &f->rcu1.c2_b, &f->rcu2.c1_w, &f->rcu2.c1_b, &f->rcu2.c2_w,
                            &f->rcu2.c2_b, &f->out_w, &f->out_b};
        for (size_t k = 0; k < sizeof all / sizeof all[0] && !st; k++) st = fn(all[k], arg);
    }
    dm_tensor *tail[] = {&w->oc1_w, &w->oc1_b, &w->oc2a_w, &w->oc2a_b, &w->oc2b_w, &w->oc2b_b};
    for (size_t k = 0; k < sizeof tail / sizeof tail[0] && !st; k++) st = fn(tail[k], arg);
    return st;
}

void dpt_free(dpt_weights *w) {
    dpt_each(w, model_tensor_free, NULL);
}

dm_status dpt_load(dpt_weights *w, da2_wsrc *src, const char *p) {
    memset(w, 0, sizeof *w);
    const int oc[4] = {48, 96, 192, 384}, F = DPT_FEATURES;
    memcpy(w->out_ch, oc, sizeof oc);
    dm_status st;
#define LOAD(t, nd, s, ...)                                                                    \
    do {                                                                                       \
        const int64_t shape_[] = s;                                                            \
        if ((st = da2_wsrc_loadf(src, nd, shape_, t, __VA_ARGS__))) goto fail;                 \
    } while (0)
#define S(...) {__VA_ARGS__}
    for (int i = 0; i < 4; i++) {
        LOAD(&w->proj_w[i], 4, S(oc[i], VIT_DIM, 1, 1), "%sprojects.%d.weight", p, i);
        LOAD(&w->proj_b[i], 1, S(oc[i]), "%sprojects.%d.bias", p, i);
    }
    LOAD(&w->rs_w[0], 4, S(oc[0], oc[0], 4, 4), "%sresize_layers.0.weight", p);
    LOAD(&w->rs_b[0], 1, S(oc[0]), "%sresize_layers.0.bias", p);
    LOAD(&w->rs_w[1], 4, S(oc[1], oc[1], 2, 2), "%sresize_layers.1.weight", p);
    LOAD(&w->rs_b[1], 1, S(oc[1]), "%sresize_layers.1.bias", p);
    LOAD(&w->rs_w[3], 4, S(oc[3], oc[3], 3, 3), "%sresize_layers.3.weight", p);
    LOAD(&w->rs_b[3], 1, S(oc[3]), "%sresize_layers.3.bias", p);
    for (int i = 0; i < 4; i++)
        LOAD(&w->rn_w[i], 4, S(F, oc[i], 3, 3), "%sscratch.layer%d_rn.weight", p, i + 1);
    for (int i = 0; i < 4; i++) {
        dpt_fusion *f = &w->ref[i];
        dpt_rcu *r[2] = {&f->rcu1, &f->rcu2};
        for (int u = 0; u < 2; u++) {
            LOAD(&r[u]->c1_w, 4, S(F, F, 3, 3), "%sscratch.refinenet%d.resConfUnit%d.conv1.weight", p, i + 1, u + 1);
            LOAD(&r[u]->c1_b, 1, S(F), "%sscratch.refinenet%d.resConfUnit%d.conv1.bias", p, i + 1, u + 1);
            LOAD(&r[u]->c2_w, 4, S(F, F, 3, 3), "%sscratch.refinenet%d.resConfUnit%d.conv2.weight", p, i + 1, u + 1);
            LOAD(&r[u]->c2_b, 1, S(F), "%sscratch.refinenet%d.resConfUnit%d.conv2.bias", p, i + 1, u + 1);
        }
        LOAD(&f->out_w, 4, S(F, F, 1, 1), "%sscratch.refinenet%d.out_conv.weight", p, i + 1);
        LOAD(&f->out_b, 1, S(F), "%sscratch.refinenet%d.out_conv.bias", p, i + 1);
    }
    LOAD(&w->oc1_w, 4, S(F / 2, F, 3, 3), "%sscratch.output_conv1.weight", p);
    LOAD(&w->oc1_b, 1, S(F / 2), "%sscratch.output_conv1.bias", p);
    LOAD(&w->oc2a_w, 4, S(DPT_HEAD2, F / 2, 3, 3), "%sscratch.output_conv2.0.weight", p);
    LOAD(&w->oc2a_b, 1, S(DPT_HEAD2), "%sscratch.output_conv2.0.bias", p);
    LOAD(&w->oc2b_w, 4, S(1, DPT_HEAD2, 1, 1), "%sscratch.output_conv2.2.weight", p);
    LOAD(&w->oc2b_b, 1, S(1), "%sscratch.output_conv2.2.bias", p);
#undef S
#undef LOAD
    return DM_OK;
fail:
    dpt_free(w);
    return st;
}

void dpt_ctx_free(dpt_ctx *c) {
    dm_tensor_free(&c->tok);
    for (int i = 0; i < 4; i++) {
        dm_tensor_free(&c->proj[i]);
        dm_tensor_free(&c->layer[i]); /* layer[2] is a non-owning view: free only zeroes it */
        dm_tensor_free(&c->rn[i]);
        dm_tensor_free(&c->path[i]);
    }
    dm_tensor *all[] = {&c->t1, &c->t2, &c->t3, &c->up, &c->oc1, &c->oc1_up, &c->oc2a, &c->out};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) dm_tensor_free(all[k]);
    memset(c, 0, sizeof *c);
}

static dm_status alloc4(dm_backend *be, dm_tensor *t, int64_t a, int64_t b, int64_t h, int64_t w) {
    const int64_t s[] = {a, b, h, w};
    return dm_alloc(be, t, dm_backend_storage_dtype(be), 4, s);
}

dm_status dpt_ctx_dims(dpt_ctx *c, int batch, int ph, int pw) {
    memset(c, 0, sizeof *c);
    if (batch < 1 || ph < 1 || pw < 1)
        return dm_error_set(DM_ERR_ARG, "dpt: invalid batch %d / grid %dx%d", batch, ph, pw);
    c->batch = batch, c->ph = ph, c->pw = pw;
    c->lh[0] = 4 * ph, c->lw[0] = 4 * pw;
    c->lh[1] = 2 * ph, c->lw[1] = 2 * pw;
    c->lh[2] = ph, c->lw[2] = pw;
    c->lh[3] = (ph - 1) / 2 + 1, c->lw[3] = (pw - 1) / 2 + 1; /* 3x3 conv, stride 2, pad 1 */
    return DM_OK;
}

dm_status dpt_ctx_init(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int batch, int ph,
                       int pw) {
    const int B = batch, F = DPT_FEATURES;
    dm_status st = dpt_ctx_dims(c, batch, ph, pw);
    if (st) return st;
    if ((st = alloc4(be, &c->tok, B, VIT_DIM, ph, pw))) goto fail;
    for (int i = 0; i < 4; i++) {
        if ((st = alloc4(be, &c->proj[i], B, w->out_ch[i], ph, pw))) goto fail;
        if (i == 2)
            c->layer[2] = c->proj[2], c->layer[2].owns_data = 0; /* resize_layers[2] = Identity */
        else if ((st = alloc4(be, &c->layer[i], B, w->out_ch[i], c->lh[i], c->lw[i])))
            goto fail;
        if ((st = alloc4(be, &c->rn[i], B, F, c->lh[i], c->lw[i]))) goto fail;
        const int sh = i == 0 ? 2 * c->lh[0] : c->lh[i - 1], sw = i == 0 ? 2 * c->lw[0] : c->lw[i - 1];
        if ((st = alloc4(be, &c->path[i], B, F, sh, sw))) goto fail;
    }
    if ((st = alloc4(be, &c->t1, B, F, c->lh[0], c->lw[0])) ||
        (st = alloc4(be, &c->t2, B, F, c->lh[0], c->lw[0])) ||
        (st = alloc4(be, &c->t3, B, F, c->lh[0], c->lw[0])) ||
        (st = alloc4(be, &c->up, B, F, 2 * c->lh[0], 2 * c->lw[0])) ||
        (st = alloc4(be, &c->oc1, B, F / 2, 2 * c->lh[0], 2 * c->lw[0])) ||
        (st = alloc4(be, &c->oc1_up, B, F / 2, VIT_PATCH * ph, VIT_PATCH * pw)) ||
        (st = alloc4(be, &c->oc2a, B, DPT_HEAD2, VIT_PATCH * ph, VIT_PATCH * pw)) ||
        (st = alloc4(be, &c->out, B, 1, VIT_PATCH * ph, VIT_PATCH * pw)))
        goto fail;
    return DM_OK;
fail:
    dpt_ctx_free(c);
    return st;
}

dm_status dpt_reassemble_layer(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int i,
                               const dm_tensor *feat) {
    const int64_t N = (int64_t)c->ph * c->pw;
    if (feat->ndim != 3 || feat->shape[0] != c->batch || feat->shape[1] != N ||
        feat->shape[2] != VIT_DIM)
        return dm_error_set(DM_ERR_SHAPE, "dpt: feature %d must be (%d, %lld, %d)", i,
                            c->batch, (long long)N, VIT_DIM);
    /* x.permute(0, 2, 1).reshape(B, C, ph, pw) */
    const int64_t s_cn[] = {c->batch, VIT_DIM, N};
    dm_tensor tok = view(&c->tok, 3, s_cn);
    const int to_map[] = {0, 2, 1};
    dm_conv2d_params p1 = dm_conv2d_params_make(1, 0, 1, DM_ACT_NONE);
    dm_conv2d_params p3s2 = dm_conv2d_params_make(2, 1, 1, DM_ACT_NONE);
    dm_status st;
    if ((st = dm_permute(be, feat, to_map, &tok)) ||
        (st = dm_conv2d(be, &c->tok, &w->proj_w[i], &w->proj_b[i], &p1, &c->proj[i])))
        return st;
    switch (i) {
    case 0: st = dm_conv_transpose2d(be, &c->proj[0], &w->rs_w[0], &w->rs_b[0], 4, 0, &c->layer[0]); break;
    case 1: st = dm_conv_transpose2d(be, &c->proj[1], &w->rs_w[1], &w->rs_b[1], 2, 0, &c->layer[1]); break;
    case 2: break; /* Identity: layer[2] views proj[2] */
    default: st = dm_conv2d(be, &c->proj[3], &w->rs_w[3], &w->rs_b[3], &p3s2, &c->layer[3]); break;
    }
    return st;
}

dm_status dpt_layer_rn(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int i) {
    dm_conv2d_params p3 = dm_conv2d_params_make(1, 1, 1, DM_ACT_NONE);
    return dm_conv2d(be, &c->layer[i], &w->rn_w[i], NULL, &p3, &c->rn[i]);
}

dm_status dpt_reassemble(dpt_ctx *c, const dpt_weights *w, dm_backend *be, int i,
                         const dm_tensor *feat) {
    dm_status st = dpt_reassemble_layer(c, w, be, i, feat);
    return st ? st : dpt_layer_rn(c, w, be, i);
}

/* ResidualConvUnit: out = conv2(relu(conv1(relu(x)))) + x; out must not alias x; uses t2. */
static dm_status rcu_forward(dpt_ctx *c, const dpt_rcu *r, dm_backend *be, const dm_tensor *x,
                             dm_tensor *out) {
    dm_tensor a = view(&c->t2, 4, x->shape);
    dm_conv2d_params p = dm_conv2d_params_make(1, 1, 1, DM_ACT_NONE);
    dm_conv2d_params pr = dm_conv2d_params_make(1, 1, 1, DM_ACT_RELU);
    dm_status st;
    if ((st = dm_activation(be, x, DM_ACT_RELU, out)) ||
        (st = dm_conv2d(be, out, &r->c1_w, &r->c1_b, &pr, &a)) ||
        (st = dm_conv2d(be, &a, &r->c2_w, &r->c2_b, &p, out)) ||
        (st = dm_binary(be, out, x, DM_BINARY_ADD, out)))
        return st;
    return DM_OK;
}

dm_status dpt_fusion_forward(dpt_ctx *c, const dpt_fusion *f, dm_backend *be,
                             const dm_tensor *x0, const dm_tensor *x1, dm_tensor *out) {
    dm_tensor t1 = view(&c->t1, 4, x0->shape), t3 = view(&c->t3, 4, x0->shape);
    const dm_tensor *in2 = x0;
    dm_status st;
    if (x1) { /* output = xs[0] + resConfUnit1(xs[1]) */
        if ((st = rcu_forward(c, &f->rcu1, be, x1, &t3)) ||
            (st = dm_binary(be, x0, &t3, DM_BINARY_ADD, &t3)))
            return st;
        in2 = &t3;
    }
    const int64_t s_up[] = {out->shape[0], out->shape[1], out->shape[2], out->shape[3]};
    dm_tensor up = view(&c->up, 4, s_up);
    dm_conv2d_params p1 = dm_conv2d_params_make(1, 0, 1, DM_ACT_NONE);
    if ((st = rcu_forward(c, &f->rcu2, be, in2, &t1)) ||
        (st = dm_resize(be, &t1, DM_RESIZE_BILINEAR, 1, 0, 0, &up)) ||
        (st = dm_conv2d(be, &up, &f->out_w, &f->out_b, &p1, out)))
        return st;
    return DM_OK;
}

dm_status dpt_output(dpt_ctx *c, const dpt_weights *w, dm_backend *be) {
    dm_conv2d_params p3 = dm_conv2d_params_make(1, 1, 1, DM_ACT_NONE);
    dm_conv2d_params p3r = dm_conv2d_params_make(1, 1, 1, DM_ACT_RELU);
    dm_conv2d_params p1r = dm_conv2d_params_make(1, 0, 1, DM_ACT_RELU);
    dm_status st;
    if ((st = dm_conv2d(be, &c->path[0], &w->oc1_w, &w->oc1_b, &p3, &c->oc1)) ||
        (st = dm_resize(be, &c->oc1, DM_RESIZE_BILINEAR, 1, 0, 0, &c->oc1_up)) ||
        (st = dm_conv2d(be, &c->oc1_up, &w->oc2a_w, &w->oc2a_b, &p3r, &c->oc2a)) ||
        (st = dm_conv2d(be, &c->oc2a, &w->oc2b_w, &w->oc2b_b, &p1r, &c->out)))
        return st;
    return DM_OK;
}

dm_status dpt_forward(dpt_ctx *c, const dpt_weights *w, dm_backend *be,
                      const dm_tensor *const feats[4]) {
    dm_status st;
    for (int i = 0; i < 4; i++)
        if ((st = dpt_reassemble(c, w, be, i, feats[i]))) return st;
    if ((st = dpt_fusion_forward(c, &w->ref[3], be, &c->rn[3], NULL, &c->path[3])) ||
        (st = dpt_fusion_forward(c, &w->ref[2], be, &c->path[3], &c->rn[2], &c->path[2])) ||
        (st = dpt_fusion_forward(c, &w->ref[1], be, &c->path[2], &c->rn[1], &c->path[1])) ||
        (st = dpt_fusion_forward(c, &w->ref[0], be, &c->path[1], &c->rn[0], &c->path[0])))
        return st;
    return dpt_output(c, w, be);
}
