/* Pure parts of the fused convolution epilogues (src/nn/conv_fuse.h): eligibility, the
 * pointwise chain per activation with its host model, the plan-cache key and ring. Built in
 * every configuration (no CUDA headers); tests/nn/test_conv_fuse.c checks them on the CPU. */
#include "nn/conv_fuse.h"

#include <math.h>
#include <string.h>
#include <strings.h>

int conv_fuse_act_chain(dm_act act, conv_fuse_step steps[CONV_FUSE_MAX_STEPS]) {
    memset(steps, 0, CONV_FUSE_MAX_STEPS * sizeof *steps);
    switch (act) {
    case DM_ACT_NONE:
        return 0;
    case DM_ACT_RELU:
        steps[0].kind = CONV_FUSE_RELU;
        return 1;
    case DM_ACT_SIGMOID:
        steps[0].kind = CONV_FUSE_SIGMOID;
        return 1;
    case DM_ACT_TANH:
        steps[0].kind = CONV_FUSE_TANH;
        return 1;
    case DM_ACT_GELU:
        steps[0].kind = CONV_FUSE_GELU_ERF;
        return 1;
    case DM_ACT_HARDSIGMOID: /* clip(t + 3, 0, 6) / 6 */
        steps[0] = (conv_fuse_step){CONV_FUSE_ADD_SCALAR, 3.f, 0.f, 0.f};
        steps[1] = (conv_fuse_step){CONV_FUSE_CLIP, 0.f, 0.f, 6.f};
        steps[2] = (conv_fuse_step){CONV_FUSE_DIV_SCALAR, 6.f, 0.f, 0.f};
        return 3;
    case DM_ACT_HARDSWISH: /* t * clip(t + 3, 0, 6) / 6 */
        steps[0] = (conv_fuse_step){CONV_FUSE_ADD_SCALAR, 3.f, 0.f, 0.f};
        steps[1] = (conv_fuse_step){CONV_FUSE_CLIP, 0.f, 0.f, 6.f};
        steps[2] = (conv_fuse_step){CONV_FUSE_MUL_INPUT, 0.f, 0.f, 0.f};
        steps[3] = (conv_fuse_step){CONV_FUSE_DIV_SCALAR, 6.f, 0.f, 0.f};
        return 4;
    }
    return -1;
}

float conv_fuse_eval_chain(const conv_fuse_step *steps, int n, float t) {
    float v = t;
    for (int i = 0; i < n; i++) {
        switch (steps[i].kind) {
        case CONV_FUSE_ADD_SCALAR:
            v = v + steps[i].s;
            break;
        case CONV_FUSE_CLIP:
            v = fminf(fmaxf(v, steps[i].lo), steps[i].hi);
            break;
        case CONV_FUSE_MUL_INPUT:
            v = t * v;
            break;
        case CONV_FUSE_DIV_SCALAR:
            v = v / steps[i].s;
            break;
        case CONV_FUSE_RELU:
            v = fmaxf(v, 0.f);
            break;
        case CONV_FUSE_SIGMOID:
            v = 1.f / (1.f + expf(-v));
            break;
        case CONV_FUSE_TANH:
            v = tanhf(v);
            break;
        case CONV_FUSE_GELU_ERF:
            v = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
            break;
        }
    }
    return v;
}

conv_fuse_reason conv_fuse_eligible(dm_act act, int has_bias, dm_dtype cd, dm_dtype bt, dm_dtype yt,
                                    int enabled, int capturing, int cached) {
    if (!enabled) return CONV_FUSE_DISABLED;
    if (!has_bias && act == DM_ACT_NONE) return CONV_FUSE_NOTHING;
    conv_fuse_step s[CONV_FUSE_MAX_STEPS];
    if (conv_fuse_act_chain(act, s) < 0) return CONV_FUSE_ACT;
    const dm_dtype dts[3] = {cd, has_bias ? bt : DM_DTYPE_F32, yt};
    for (int i = 0; i < 3; i++)
        if (dts[i] != DM_DTYPE_F32 && dts[i] != DM_DTYPE_F16 && dts[i] != DM_DTYPE_BF16)
            return CONV_FUSE_DTYPE;
    if (capturing && !cached) return CONV_FUSE_CAPTURING;
    return CONV_FUSE_OK;
}

int conv_fuse_enabled(const char *env) {
    if (!env) return 1;
    return !(!strcmp(env, "0") || !strcasecmp(env, "off") || !strcasecmp(env, "no") ||
             !strcasecmp(env, "false"));
}

int conv_fuse_alignment(const void *p) {
    const uintptr_t a = (uintptr_t)p;
    int al = 16;
    while (al > 1 && a % (uintptr_t)al)
        al /= 2;
    return al;
}

conv_fuse_key conv_fuse_key_make(int N, int Cin, int H, int W, int Cout, int kh, int kw,
                                 const dm_conv2d_params *p, dm_dtype cd, int bt, dm_dtype yt,
                                 int nhwc, int ax, int aw, int ab, int ay) {
    conv_fuse_key k;
    memset(&k, 0, sizeof k);
    const int v[] = {
        1,         N,           Cin,         H,        W,        Cout,          kh,
        kw,        p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dilation_h, p->dilation_w,
        p->groups, (int)p->act, (int)cd,     bt,       (int)yt,  nhwc,          ax,
        aw,        ab,          ay};
    _Static_assert(sizeof v / sizeof v[0] == CONV_FUSE_KEY_LEN, "conv_fuse_key length");
    memcpy(k.v, v, sizeof v);
    return k;
}

conv_fuse_entry *conv_fuse_cache_find(conv_fuse_cache *c, const conv_fuse_key *key) {
    for (int i = 0; i < CONV_FUSE_CACHE; i++)
        if (c->e[i].key.v[0] && !memcmp(c->e[i].key.v, key->v, sizeof key->v)) return &c->e[i];
    return NULL;
}

conv_fuse_entry *conv_fuse_cache_put(conv_fuse_cache *c, const conv_fuse_key *key, void *plan,
                                     size_t workspace, int declined, void **evicted) {
    conv_fuse_entry *e = &c->e[c->next];
    c->next = (c->next + 1) % CONV_FUSE_CACHE;
    *evicted = e->key.v[0] ? e->plan : NULL;
    e->key = *key;
    e->plan = plan;
    e->workspace = workspace;
    e->declined = declined;
    return e;
}
