/* RVM top level (MobileNetV3 and ResNet50): model load / free, per-stream state (all buffers sized once),
 * MattingNetwork.forward for one frame (model/model.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_tensors.h"
#include "rvm_internal.h"

dm_tensor rvm_view(const dm_tensor *buf, int c0, int c, int h, int w) {
    const int64_t shape[4] = {1, c, h, w};
    return dm_tensor_sub(buf, (int64_t)c0 * h * w, 4, shape);
}

/* Calls fn on every weight tensor of the model (free, upload). */
static dm_status each_weight(rvm_model *m, model_tensor_fn fn, void *arg) {
    rvm_conv *convs[96]; /* lists of 1 + 5 * RVM_BLOCKS + 3 = 79, 4 * RVM_R50_BLOCKS = 64 and 21 */
    int n = 0;
    convs[n++] = &m->stem;
    for (int i = 0; i < RVM_BLOCKS; i++) {
        rvm_block *b = &m->blocks[i];
        convs[n++] = &b->expand, convs[n++] = &b->dw, convs[n++] = &b->se_fc1;
        convs[n++] = &b->se_fc2, convs[n++] = &b->project;
    }
    convs[n++] = &m->last, convs[n++] = &m->aspp1, convs[n++] = &m->aspp2;
    dm_status st = DM_OK;
    for (int i = 0; i < n && !st; i++)
        if (!(st = fn(&convs[i]->w, arg))) st = fn(&convs[i]->b, arg);
    n = 0; /* ResNet50 blocks: 4 * 16 = 64 */
    for (int i = 0; i < RVM_R50_BLOCKS; i++) {
        rvm_bottleneck *b = &m->r50[i];
        convs[n++] = &b->conv1, convs[n++] = &b->conv2, convs[n++] = &b->conv3;
        convs[n++] = &b->down;
    }
    for (int i = 0; i < n && !st; i++)
        if (!(st = fn(&convs[i]->w, arg))) st = fn(&convs[i]->b, arg);
    n = 0;
    for (int i = 0; i < 4; i++) convs[n++] = &m->gru[i].ih, convs[n++] = &m->gru[i].hh;
    for (int i = 0; i < 3; i++) convs[n++] = &m->up_conv[i];
    for (int i = 0; i < 2; i++) convs[n++] = &m->out_conv[i];
    convs[n++] = &m->project_mat, convs[n++] = &m->guide, convs[n++] = &m->dgf_box;
    for (int i = 0; i < 3; i++) convs[n++] = &m->dgf_conv[i];
    convs[n++] = &m->fgf_box_x, convs[n++] = &m->fgf_box_y;
    for (int i = 0; i < n && !st; i++)
        if (!(st = fn(&convs[i]->w, arg))) st = fn(&convs[i]->b, arg);
    if (!st) st = fn(&m->norm_scale, arg);
    if (!st) st = fn(&m->norm_shift, arg);
    return st;
}

dm_status rvm_model_load(rvm_model **out, const char *path, dm_backend *be) {
    return rvm_model_load_variant(out, path, RVM_VARIANT_MOBILENETV3, be);
}

const char *rvm_variant_name(rvm_variant v) {
    switch (v) {
    case RVM_VARIANT_MOBILENETV3: return "mobilenetv3";
    case RVM_VARIANT_RESNET50: return "resnet50";
    }
    return "?";
}

rvm_variant rvm_model_variant(const rvm_model *m) {
    return m->variant;
}

dm_status rvm_model_load_variant(rvm_model **out, const char *path, rvm_variant variant,
                                 dm_backend *be) {
    *out = NULL;
    dm_st_file f;
    dm_status st = dm_st_open(&f, path);
    if (st) return st;
    st = rvm_model_load_variant_st(out, &f, variant, be);
    dm_st_close(&f);
    return st;
}

dm_status rvm_model_load_st(rvm_model **out, dm_st_file *f, dm_backend *be) {
    return rvm_model_load_variant_st(out, f, RVM_VARIANT_MOBILENETV3, be);
}

dm_status rvm_model_load_variant_st(rvm_model **out, dm_st_file *f, rvm_variant variant,
                                    dm_backend *be) {
    *out = NULL;
    if (!be) return dm_error_set(DM_ERR_ARG, "rvm_model_load: no backend");
    if (variant != RVM_VARIANT_MOBILENETV3 && variant != RVM_VARIANT_RESNET50)
        return dm_error_set(DM_ERR_ARG, "rvm_model_load: unknown variant %d", (int)variant);
    rvm_model *m = calloc(1, sizeof *m);
    if (!m) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", f->path);
    m->be = be;
    m->variant = variant;
    dm_status st = rvm_load_weights(m, f);
    /* weights are loaded (and BatchNorm folded) on the host, then moved once */
    if (!st && (st = each_weight(m, model_tensor_upload, be))) {
        char why[512];
        snprintf(why, sizeof why, "%s", dm_error_message()); /* not read while written */
        st = dm_error_set(st, "%s: uploading the weights to the %s backend: %s", f->path,
                          be->ops->name, why);
    }
    if (st) {
        rvm_model_free(m);
        return st;
    }
    *out = m;
    return DM_OK;
}

void rvm_model_free(rvm_model *m) {
    if (!m) return;
    each_weight(m, model_tensor_free, NULL);
    free(m);
}

int rvm_required_ops(rvm_variant variant, dm_op_id *ops) {
    static const dm_op_id used[] = {
        DM_OP_CONV2D,         DM_OP_ACTIVATION,    DM_OP_BINARY,         DM_OP_RESIZE,
        DM_OP_AVGPOOL2D,      DM_OP_GLOBAL_AVGPOOL2D, DM_OP_CHANNEL_AFFINE, DM_OP_IMAGE_FROM_U8,
        DM_OP_GUIDED_COEFFS,  DM_OP_MATTING_COMPOSE, DM_OP_CONCAT,       DM_OP_COPY,
        DM_OP_ALLOC};
    memcpy(ops, used, sizeof used);
    int n = (int)(sizeof used / sizeof used[0]);
    if (variant == RVM_VARIANT_RESNET50) ops[n++] = DM_OP_MAXPOOL2D; /* the stem's pool */
    return n;
}

double rvm_auto_downsample_ratio(int height, int width) {
    /* inference.py: min(512 / max(h, w), 1) */
    int mx = height > width ? height : width;
    double r = 512.0 / (double)mx;
    return r < 1.0 ? r : 1.0;
}

/* Buffers live on the state's backend, in its storage dtype. */
#define alloc4(t, c, h, w) alloc4_be(s->be, t, c, h, w)
#define alloc_flat(t, n) alloc_flat_be(s->be, t, n)

static dm_status alloc4_be(dm_backend *be, dm_tensor *t, size_t c, int h, int w) {
    const int64_t shape[4] = {1, (int64_t)c, h, w};
    return dm_alloc(be, t, dm_backend_storage_dtype(be), 4, shape);
}

/* Allocates a flat buffer of n elements (shaped later through rvm_view). */
static dm_status alloc_flat_be(dm_backend *be, dm_tensor *t, size_t n) {
    const int64_t shape[1] = {(int64_t)(n ? n : 1)};
    return dm_alloc(be, t, dm_backend_storage_dtype(be), 1, shape);
}

static dm_status state_alloc(rvm_state *s) {
    const rvm_model *m = s->m;
    const rvm_level *lv = s->lv;
    const int h = lv[0].h, w = lv[0].w;
    dm_status st;
    size_t enc[4];
    if (m->variant == RVM_VARIANT_RESNET50)
        rvm_resnet_sizes(m, lv, enc);
    else
        rvm_encoder_sizes(m, lv, enc);
    if ((st = alloc4(&s->src, 3, s->H, s->W)) || (st = alloc4(&s->norm, 3, h, w)))
        return st;
    for (int i = 0; i < 4; i++)
        if ((st = alloc_flat(&s->enc[i], enc[i]))) return st;
    if ((st = alloc_flat(&s->se_pool, 960)) || (st = alloc_flat(&s->se_mid, 240)) ||
        (st = alloc_flat(&s->se_gate, 960)) ||
        (st = alloc4(&s->f4, (size_t)m->backbone_c, lv[4].h, lv[4].w)) ||
        (st = alloc4(&s->aspp_pool, (size_t)m->backbone_c, 1, 1)) ||
        (st = alloc4(&s->aspp_gate, (size_t)m->feat_c[3], 1, 1)))
        return st;
    /* concat buffers: channels of each decoder block's conv input */
    if ((st = alloc4(&s->cat[0], 35, h, w))) return st;
    for (int k = 1; k <= 3; k++)
        if ((st = alloc4(&s->cat[k], (size_t)m->up_conv[k - 1].w.shape[1], lv[k].h, lv[k].w)))
            return st;
    size_t gmax = 0;
    for (int k = 1; k <= 4; k++) {
        const int C = m->gru[k - 1].c;
        if ((st = alloc4(&s->u[k], (size_t)3 * C, lv[k].h, lv[k].w))) return st;
        s->rec[k] = rvm_view(&s->u[k], 2 * C, C, lv[k].h, lv[k].w);
        size_t n = (size_t)C * lv[k].h * lv[k].w;
        if (n > gmax) gmax = n;
    }
    if ((st = alloc_flat(&s->gru_rz, 2 * gmax)) || (st = alloc_flat(&s->gru_v, 2 * gmax)) ||
        (st = alloc_flat(&s->gru_c, gmax)) || (st = alloc4(&s->t16a, 16, h, w)) ||
        (st = alloc4(&s->t16b, 16, h, w)) || (st = alloc4(&s->g16, 16, h, w)) ||
        (st = alloc4(&s->m16, 16, h, w)) || (st = alloc4(&s->r24, 24, h, w)) ||
        (st = alloc4(&s->coef_a, 4, h, w)) || (st = alloc4(&s->coef_b, 4, h, w)) ||
        (st = alloc4(&s->tmp4, 4, h, w)))
        return st;
    if ((st = dm_async_counts_init(&s->counts, s->be, 1))) return st;
    if (s->be->device != DM_DEVICE_CPU) {
        const int64_t s_zero[1] = {(int64_t)(gmax ? gmax : 1)};
        const int64_t s_fgr[4] = {1, 3, s->H, s->W}, s_pha[4] = {1, 1, s->H, s->W};
        const dm_dtype dt = dm_backend_storage_dtype(s->be);
        if ((st = dm_tensor_alloc(&s->zero, DM_DTYPE_F32, 1, s_zero)) ||
            (st = dm_alloc(s->be, &s->out_fgr, dt, 4, s_fgr)) ||
            (st = dm_alloc(s->be, &s->out_pha, dt, 4, s_pha)))
            return st;
    }
    return DM_OK;
}

dm_status rvm_state_init(rvm_state **out, const rvm_model *m, dm_backend *be, int height,
                         int width, double ratio) {
    *out = NULL;
    if (!m || !be) return dm_error_set(DM_ERR_ARG, "rvm_state_init: no model or backend");
    if (height < 1 || width < 1)
        return dm_error_set(DM_ERR_ARG, "rvm_state_init: frame size %dx%d", width, height);
    if (ratio <= 0) ratio = rvm_auto_downsample_ratio(height, width);
    if (ratio > 1.0)
        return dm_error_set(DM_ERR_ARG, "rvm_state_init: downsample_ratio %g > 1", ratio);
    rvm_state *s = calloc(1, sizeof *s);
    if (!s) return dm_error_set(DM_ERR_NOMEM, "rvm_state_init: out of memory");
    s->m = m;
    s->be = be;
    s->H = height;
    s->W = width;
    s->ratio = ratio;
    s->refiner = RVM_REFINER_DEEP_GUIDED_FILTER;
    /* F.interpolate(scale_factor=r): output size floor(size * r), computed in double as
     * PyTorch's Python-side _interp_output_size */
    s->lv[0].h = ratio == 1.0 ? height : (int)floor((double)height * ratio);
    s->lv[0].w = ratio == 1.0 ? width : (int)floor((double)width * ratio);
    for (int k = 1; k < 5; k++) {
        s->lv[k].h = (s->lv[k - 1].h + 1) / 2;
        s->lv[k].w = (s->lv[k - 1].w + 1) / 2;
    }
    dm_status st = DM_OK;
    if (s->lv[0].h < 2 || s->lv[0].w < 2)
        st = dm_error_set(DM_ERR_ARG, "rvm_state_init: internal size %dx%d too small (frame "
                          "%dx%d, ratio %g)", s->lv[0].w, s->lv[0].h, width, height, ratio);
    if (!st) st = state_alloc(s);
    dm_graph_runner_init(&s->graph, be, 1); /* DM_CUDA_GRAPHS=0: off (docs/gpu.md) */
    if (st) {
        rvm_state_free(s);
        return st;
    }
    *out = s;
    return DM_OK;
}

dm_status rvm_state_set_refiner(rvm_state *s, rvm_refiner refiner) {
    if (refiner != RVM_REFINER_DEEP_GUIDED_FILTER && refiner != RVM_REFINER_FAST_GUIDED_FILTER)
        return dm_error_set(DM_ERR_ARG, "rvm: unknown refiner %d", (int)refiner);
    s->refiner = refiner;
    return DM_OK;
}

double rvm_state_ratio(const rvm_state *s) {
    return s->ratio;
}

dm_status rvm_state_reset(rvm_state *s) {
    for (int k = 1; k <= 4; k++) {
        if (s->be->device == DM_DEVICE_CPU) {
            memset(s->rec[k].data, 0, dm_tensor_nbytes(&s->rec[k]));
            continue;
        }
        /* device memory: copy zeros from the host buffer sized for the largest level */
        dm_tensor z = dm_tensor_sub(&s->zero, 0, s->rec[k].ndim, s->rec[k].shape);
        dm_status st = dm_copy(s->be, &z, &s->rec[k]);
        if (st) return st;
    }
    return DM_OK;
}

dm_status rvm_state_checkpoint(rvm_state *s) {
    dm_status st;
    for (int k = 1; k <= 4; k++) {
        if (!s->ckpt[k].data && /* once per state: later calls reuse it */
            (st = dm_alloc(s->be, &s->ckpt[k], s->rec[k].dtype, s->rec[k].ndim, s->rec[k].shape)))
            return st;
        if ((st = dm_copy(s->be, &s->rec[k], &s->ckpt[k]))) return st;
    }
    return DM_OK;
}

dm_status rvm_state_copy_recurrent(rvm_state *dst, const rvm_state *src, int from_checkpoint) {
    if (dst->be->device != DM_DEVICE_CPU && src->be->device != DM_DEVICE_CPU && dst->be != src->be)
        return dm_error_set(DM_ERR_ARG, "rvm: recurrent state between two device backends");
    /* the side that is not on the CPU does the copy (upload / download, dtype conversion) */
    dm_backend *be = dst->be->device != DM_DEVICE_CPU ? dst->be : src->be;
    for (int k = 1; k <= 4; k++) {
        const dm_tensor *from = from_checkpoint ? &src->ckpt[k] : &src->rec[k];
        if (!from->data)
            return dm_error_set(DM_ERR_ARG, "rvm: no checkpoint of the recurrent state");
        if (dm_tensor_numel(from) != dm_tensor_numel(&dst->rec[k]))
            return dm_error_set(DM_ERR_SHAPE, "rvm: recurrent state r%d of %lld values into one "
                                "of %lld (another frame size or downsample_ratio)", k,
                                (long long)dm_tensor_numel(from),
                                (long long)dm_tensor_numel(&dst->rec[k]));
        dm_status st = dm_copy(be, from, &dst->rec[k]);
        if (st) return st;
    }
    return dm_synchronize(be);
}

void rvm_state_free(rvm_state *s) {
    if (!s) return;
    dm_async_counts_free(&s->counts, s->be);
    for (int k = 1; k <= 4; k++) dm_tensor_free(&s->ckpt[k]);
    dm_tensor *all[] = {&s->src, &s->norm, &s->enc[0], &s->enc[1], &s->enc[2], &s->enc[3],
                        &s->se_pool, &s->se_mid, &s->se_gate, &s->f4, &s->aspp_gate,
                        &s->aspp_pool, &s->cat[0], &s->cat[1], &s->cat[2], &s->cat[3],
                        &s->u[1], &s->u[2], &s->u[3], &s->u[4], &s->gru_rz, &s->gru_v,
                        &s->gru_c, &s->t16a, &s->t16b, &s->g16, &s->m16, &s->r24,
                        &s->coef_a, &s->coef_b, &s->tmp4, &s->out_fgr, &s->out_pha,
                        &s->zero};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dm_tensor_free(all[i]);
    dm_graph_runner_free(&s->graph);
    free(s);
}

static int is_frame(const dm_tensor *t, int c, int H, int W) {
    return t && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == c && t->shape[2] == H &&
           t->shape[3] == W;
}

dm_status rvm_forward_features(rvm_state *s, const dm_tensor *src) {
    const rvm_model *m = s->m;
    dm_backend *be = s->be;
    dm_status st;
    /* src_sm goes straight into decode0's concat slot s0 */
    dm_tensor src_sm = rvm_view(&s->cat[0], 32, 3, s->lv[0].h, s->lv[0].w);
    if (s->ratio == 1.0)
        st = dm_copy(be, src, &src_sm);
    else
        st = dm_resize(be, src, DM_RESIZE_BILINEAR, 0, s->ratio, s->ratio, &src_sm);
    if (st) return st;
    if (m->variant == RVM_VARIANT_RESNET50)
        st = rvm_resnet_forward(s, &src_sm);
    else if (!(st = dm_channel_affine(be, &src_sm, &m->norm_scale, &m->norm_shift, &s->norm)))
        st = rvm_encoder_forward(s);
    return st ? st : rvm_lraspp_forward(s);
}

dm_status rvm_forward_tail(rvm_state *s, const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha) {
    dm_status st = rvm_decoder_forward(s);
    return st ? st : rvm_refiner_forward(s, src, fgr, pha);
}

dm_status rvm_forward(rvm_state *s, const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha) {
    if (!is_frame(src, 3, s->H, s->W) || (fgr && !is_frame(fgr, 3, s->H, s->W)) ||
        !is_frame(pha, 1, s->H, s->W))
        return dm_error_set(DM_ERR_SHAPE, "rvm_forward: expected src (1, 3, %d, %d), fgr (1, 3, "
                            "%d, %d), pha (1, 1, %d, %d)", s->H, s->W, s->H, s->W, s->H, s->W);
    dm_status st = rvm_forward_features(s, src);
    return st ? st : rvm_forward_tail(s, src, fgr, pha);
}

/* The graph body of rvm_forward_u8: the whole network on the state's fixed device buffers. */
static dm_status u8_body(void *arg) {
    rvm_state *s = arg;
    return rvm_forward(s, &s->src, s->graph_fgr ? &s->out_fgr : NULL, &s->out_pha);
}

dm_status rvm_forward_u8(rvm_state *s, const uint8_t *rgb, float *fgr, float *pha) {
    dm_copy_ticket t;
    dm_status st = rvm_forward_u8_async(s, rgb, fgr, pha, &t);
    return st ? st : dm_copy_wait(s->be, &t);
}

dm_status rvm_forward_u8_async(rvm_state *s, const uint8_t *rgb, float *fgr, float *pha,
                               dm_copy_ticket *ticket) {
    memset(ticket, 0, sizeof *ticket);
    if (!rgb || !pha) return dm_error_set(DM_ERR_ARG, "rvm_forward_u8: rgb or pha is NULL");
    const int64_t ishape[4] = {1, s->H, s->W, 3}, fshape[4] = {1, 3, s->H, s->W},
                  pshape[4] = {1, 1, s->H, s->W};
    dm_tensor in, f, p;
    dm_tensor_view(&in, (void *)rgb, DM_DTYPE_U8, 4, ishape);
    dm_tensor_view(&f, fgr, DM_DTYPE_F32, 4, fshape);
    dm_tensor_view(&p, pha, DM_DTYPE_F32, 4, pshape);
    dm_status st = dm_image_from_u8(s->be, &in, &s->src);
    if (st) return st;
    /* the outputs where the backend computes them (host views on the CPU, device tensors
     * elsewhere), counted there for the non-finite guard (the count's 8 bytes queued for
     * download first, not waited for), then one queued download each (dm_copy_async: the
     * ticket of the last one completes all). On a device the forward between upload and
     * downloads is one graph where the backend has them: eager on the first frame (zero state
     * or not: the state is data in fixed buffers), captured on the second, replayed after; the
     * key is what changes the op sequence. */
    const int dev = s->be->device != DM_DEVICE_CPU;
    dm_tensor *of = fgr ? (dev ? &s->out_fgr : &f) : NULL, *op = dev ? &s->out_pha : &p;
    if (!dev) {
        st = rvm_forward(s, &s->src, of, op);
    } else {
        s->graph_fgr = fgr != NULL;
        const uint64_t key = (uint64_t)(fgr != NULL) | (uint64_t)s->refiner << 1;
        st = dm_graph_runner_run(&s->graph, key, u8_body, s);
    }
    if (st || (st = dm_count_nonfinite(s->be, op, &s->counts.dev, 0)) ||
        (of && (st = dm_count_nonfinite(s->be, of, &s->counts.dev, 1))) ||
        (st = dm_async_counts_start(&s->counts, s->be, 1)))
        return st;
    if (!dev) return DM_OK;
    dm_copy_ticket tf = {0};
    if (fgr && (st = dm_copy_async(s->be, &s->out_fgr, &f, &tf))) return st;
    if ((st = dm_copy_async(s->be, &s->out_pha, &p, ticket)))
        (void)dm_copy_wait(s->be, &tf); /* no ticket covers fgr then: let it land first */
    return st;
}

dm_status rvm_state_nonfinite(rvm_state *s, int64_t *count) {
    dm_status st = dm_async_counts_wait(&s->counts, s->be);
    *count = st ? 0 : s->counts.host[0];
    return st;
}

const dm_tensor *rvm_state_recurrent(const rvm_state *s, int i) {
    if (i < 1 || i > 4) return NULL;
    return &s->rec[i];
}
