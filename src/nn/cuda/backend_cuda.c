/* The CUDA backend: context (device, stream, cuDNN and cuBLASLt handles, device scratch), the
 * op table, allocation, host<->device copies with dtype conversion, device queries and the
 * non-finite count. Kernel ops are dispatched in ops_cuda.c, convolutions in conv_cudnn.c,
 * GEMMs in linear_cublaslt.c. Not yet run on a GPU (see docs/gpu.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"
#include "depthmatte/backend_cuda.h"
#include "depthmatte/copy_async.h"
#include "nn/alloc_track.h"

/* defined in ops_cuda.c */
dm_status layernorm_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *gamma,
                         const dm_tensor *beta, float eps, dm_tensor *y);
dm_status groupnorm_cuda(dm_backend *be, const dm_tensor *x, int groups, const dm_tensor *gamma,
                         const dm_tensor *beta, float eps, dm_tensor *y);
dm_status activation_cuda(dm_backend *be, const dm_tensor *x, dm_act act, dm_tensor *y);
dm_status binary_cuda(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_binary_op op,
                      dm_tensor *y);
dm_status attention_cuda(dm_backend *be, const dm_tensor *q, const dm_tensor *k,
                         const dm_tensor *v, float scale, dm_tensor *o);
dm_status resize_cuda(dm_backend *be, const dm_tensor *x, dm_resize_mode mode, int align_corners,
                      double scale_h, double scale_w, dm_tensor *y);
dm_status avgpool2d_cuda(dm_backend *be, const dm_tensor *x, int k, int s, dm_tensor *y);
dm_status maxpool2d_cuda(dm_backend *be, const dm_tensor *x, int k, int s, int pad, dm_tensor *y);
dm_status concat_cuda(dm_backend *be, const dm_tensor *a, const dm_tensor *b, dm_tensor *y);
dm_status image_cubic_normalize_cuda(dm_backend *be, const dm_tensor *rgb,
                                     const dm_image_norm_params *p, dm_tensor *y);
/* defined in ops_rvm_cuda.c */
dm_status global_avgpool2d_cuda(dm_backend *be, const dm_tensor *x, dm_tensor *y);
dm_status channel_affine_cuda(dm_backend *be, const dm_tensor *x, const dm_tensor *scale,
                              const dm_tensor *shift, dm_tensor *y);
dm_status image_from_u8_cuda(dm_backend *be, const dm_tensor *rgb, dm_tensor *y);
dm_status guided_coeffs_cuda(dm_backend *be, const dm_tensor *m, float eps, dm_tensor *a,
                             dm_tensor *b);
dm_status matting_compose_cuda(dm_backend *be, const dm_tensor *a, const dm_tensor *b,
                               const dm_tensor *src, dm_tensor *fgr, dm_tensor *pha);
dm_status permute_cuda(dm_backend *be, const dm_tensor *x, const int *perm, dm_tensor *y);

/* ---- helpers shared by the op files ---------------------------------------------------- */

dm_status cuda_scratch(cuda_ctx *ctx, cuda_slot slot, size_t bytes, void **ptr) {
    if (bytes > ctx->slot_size[slot]) {
        if (ctx->capturing && (ctx->capture_failed = 1)) /* cudaMalloc / sync: not capturable */
            return dm_error_set(DM_ERR_BACKEND, "cuda: scratch %d must grow to %zu bytes during "
                                "CUDA Graph capture: run the forward once before capturing it",
                                (int)slot, bytes);
        size_t rounded = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1); /* MiB */
        CUDA_CHECK(cudaStreamSynchronize(ctx->stream)); /* queued work may use the old one */
        if (ctx->slot[slot] && ctx->graphs_made) {
            /* a captured graph may hold the old address: keep it until destroy, and grow by at
             * least half so that the retired buffers stay below the live one's size */
            if (ctx->nretired == ctx->cap_retired) {
                const int cap = ctx->cap_retired ? 2 * ctx->cap_retired : 16;
                void **r = realloc(ctx->retired, (size_t)cap * sizeof *r);
                if (!r) return dm_error_set(DM_ERR_NOMEM, "cuda: scratch bookkeeping");
                ctx->retired = r, ctx->cap_retired = cap;
            }
            ctx->retired[ctx->nretired++] = ctx->slot[slot];
            const size_t grown = ctx->slot_size[slot] + ctx->slot_size[slot] / 2;
            if (rounded < grown) rounded = (grown + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        } else if (ctx->slot[slot]) {
            dm_alloc_track_remove(ctx->slot[slot]);
            CUDA_CHECK(cudaFree(ctx->slot[slot]));
        }
        ctx->slot[slot] = NULL;
        ctx->slot_size[slot] = 0;
        cudaError_t e = cudaMalloc(&ctx->slot[slot], rounded);
        if (e != cudaSuccess) {
            ctx->slot[slot] = NULL;
            return dm_error_set(DM_ERR_NOMEM, "cuda: scratch of %zu bytes: %s", rounded,
                                cudaGetErrorString(e));
        }
        (void)dm_alloc_track_add(ctx->device, ctx->slot[slot], rounded); /* (counts only) */
        ctx->slot_size[slot] = rounded;
    }
    *ptr = ctx->slot[slot];
    return DM_OK;
}

dm_status dm_cuda_debug_grow_scratch(dm_backend *be, size_t bytes) {
    if (!be || be->device != DM_DEVICE_CUDA)
        return dm_error_set(DM_ERR_ARG, "dm_cuda_debug_grow_scratch: not a CUDA backend");
    cuda_ctx *ctx = cuda_ctx_of(be);
    CUDA_CHECK(cudaSetDevice(ctx->device));
    for (int i = 0; i < CUDA_SLOT_COUNT; i++) {
        const size_t want = bytes > ctx->slot_size[i] ? bytes : ctx->slot_size[i] + 1;
        void *p;
        dm_status st = cuda_scratch(ctx, (cuda_slot)i, want, &p);
        if (st) return st;
        CUDA_CHECK(cudaMemsetAsync(p, 0xFF, ctx->slot_size[i], ctx->stream));
    }
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return DM_OK;
}

dm_status cuda_check_float(const dm_tensor *t, int ndim, const char *op, const char *arg) {
    if (!t || !t->data) return dm_error_set(DM_ERR_ARG, "%s: %s is NULL", op, arg);
    if (t->device != DM_DEVICE_CUDA)
        return dm_error_set(DM_ERR_UNSUPPORTED, "%s: %s is not a CUDA tensor", op, arg);
    if (t->dtype != DM_DTYPE_F32 && t->dtype != DM_DTYPE_F16 && t->dtype != DM_DTYPE_BF16)
        return dm_error_set(DM_ERR_DTYPE, "%s: %s has dtype %s, expected f32/f16/bf16", op, arg,
                            dm_dtype_name(t->dtype));
    if (ndim > 0 && t->ndim != ndim)
        return dm_error_set(DM_ERR_SHAPE, "%s: %s has %d dims, expected %d", op, arg, t->ndim,
                            ndim);
    return DM_OK;
}

dm_status cuda_as_dtype(cuda_ctx *ctx, const dm_tensor *t, dm_dtype dtype, cuda_slot slot,
                        const void **ptr) {
    if (t->dtype == dtype) {
        *ptr = t->data;
        return DM_OK;
    }
    void *buf;
    int64_t n = dm_tensor_numel(t);
    dm_status st = cuda_scratch(ctx, slot, (size_t)n * dm_dtype_size(dtype), &buf);
    if (st) return st;
    if ((st = cuda_convert(ctx->stream, t->data, t->dtype, buf, dtype, n))) return st;
    *ptr = buf;
    return DM_OK;
}

/* ---- uploads through pinned staging ------------------------------------------------------ */

#define STAGE_CHUNK ((size_t)8 << 20) /* bytes per staging buffer (two: 16 MiB pinned at most) */

dm_status cuda_upload(cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    if (!bytes) return DM_OK;
    if (ctx->capturing && (ctx->capture_failed = 1))
        return dm_error_set(DM_ERR_BACKEND, "cuda: host->device copy during CUDA Graph capture "
                            "(upload inputs before dm_cuda_graph_launch, not inside the graph)");
    struct cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, src) == cudaSuccess && attr.type == cudaMemoryTypeHost) {
        /* already pinned (the caller's own staging): copy directly; the copy returns before it
         * has read src, so wait for it: dm_copy promises that src may be reused on return */
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream));
        CUDA_CHECK(cudaEventRecord(ctx->upload_done, ctx->stream));
        CUDA_CHECK(cudaEventSynchronize(ctx->upload_done));
        return DM_OK;
    }
    (void)cudaGetLastError(); /* older runtimes report pageable memory as an error */
    /* pageable: memcpy into a pinned buffer, asynchronous DMA from there. A buffer is refilled
     * only after the event behind its previous copy: its DMA may still be reading it. The host
     * memcpy into one buffer overlaps the DMA out of the other. */
    for (size_t off = 0; off < bytes; off += STAGE_CHUNK) {
        const size_t n = bytes - off < STAGE_CHUNK ? bytes - off : STAGE_CHUNK;
        cuda_stage *sg = &ctx->stage[ctx->stage_next];
        ctx->stage_next = (ctx->stage_next + 1) % CUDA_STAGE_COUNT;
        if (sg->pending) {
            CUDA_CHECK(cudaEventSynchronize(sg->done));
            sg->pending = 0;
        }
        if (sg->size < n) {
            if (sg->host) CUDA_CHECK(cudaFreeHost(sg->host));
            sg->host = NULL;
            sg->size = 0;
            const size_t want = n < ((size_t)1 << 20) ? ((size_t)1 << 20) : STAGE_CHUNK;
            cudaError_t e = cudaMallocHost(&sg->host, want);
            if (e != cudaSuccess) {
                sg->host = NULL;
                return dm_error_set(DM_ERR_NOMEM, "cuda: pinned staging of %zu bytes: %s", want,
                                    cudaGetErrorString(e));
            }
            sg->size = want;
        }
        memcpy(sg->host, (const char *)src + off, n);
        CUDA_CHECK(cudaMemcpyAsync((char *)dst + off, sg->host, n, cudaMemcpyHostToDevice,
                                   ctx->stream));
        CUDA_CHECK(cudaEventRecord(sg->done, ctx->stream));
        sg->pending = 1;
    }
    return DM_OK;
}

/* ---- allocation and copies ------------------------------------------------------------- */

static dm_status alloc_cuda(dm_backend *be, dm_tensor *t, dm_dtype dtype, int ndim,
                            const int64_t *shape) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    memset(t, 0, sizeof *t);
    if (ctx->capturing && (ctx->capture_failed = 1)) /* cudaMalloc: not capturable */
        return dm_error_set(DM_ERR_BACKEND, "cuda alloc: device allocation during CUDA Graph "
                            "capture: allocate buffers before capturing");
    if (ndim < 0 || ndim > DM_MAX_DIMS)
        return dm_error_set(DM_ERR_ARG, "cuda alloc: ndim %d out of range", ndim);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return dm_error_set(DM_ERR_ARG, "cuda alloc: negative dimension");
        t->shape[i] = shape[i];
    }
    size_t bytes = dm_tensor_nbytes(t);
    size_t rounded = bytes ? (bytes + 255) / 256 * 256 : 256; /* 256: cuBLASLt's best alignment */
    CUDA_CHECK(cudaSetDevice(ctx->device));
    cudaError_t e = cudaMalloc(&t->data, rounded);
    if (e != cudaSuccess) {
        t->data = NULL;
        return dm_error_set(DM_ERR_NOMEM, "cuda alloc: %zu bytes on device %d: %s", rounded,
                            ctx->device, cudaGetErrorString(e));
    }
    (void)dm_alloc_track_add(ctx->device, t->data, rounded);
    t->device = DM_DEVICE_CUDA;
    t->capacity = rounded;
    t->owns_data = 1;
    CUDA_CHECK(cudaMemsetAsync(t->data, 0, rounded, ctx->stream));
    return DM_OK;
}

void dm_cuda_tensor_free(dm_tensor *t) {
    if (t) dm_tensor_free(t);
}

void dm_cuda_buffer_free(void *data) {
    if (!data) return;
    dm_alloc_track_remove(data);
    cudaFree(data); /* implicit device synchronisation: queued work may still use it */
}

static float host_load(const void *p, dm_dtype t, int64_t i) {
    switch (t) {
    case DM_DTYPE_F16: return dm_f16_to_f32(((const uint16_t *)p)[i]);
    case DM_DTYPE_BF16: return dm_bf16_to_f32(((const uint16_t *)p)[i]);
    case DM_DTYPE_U8: return ((const uint8_t *)p)[i];
    default: return ((const float *)p)[i];
    }
}

static void host_store(void *p, dm_dtype t, int64_t i, float v) {
    switch (t) {
    case DM_DTYPE_F16: ((uint16_t *)p)[i] = dm_f32_to_f16(v); break;
    case DM_DTYPE_BF16: ((uint16_t *)p)[i] = dm_f32_to_bf16(v); break;
    case DM_DTYPE_U8: { /* as the device store: round half away, saturate */
        float r = v < 0.f ? 0.f : (v > 255.f ? 255.f : v);
        ((uint8_t *)p)[i] = (uint8_t)(r + 0.5f);
        break;
    }
    default: ((float *)p)[i] = v; break;
    }
}

static int copyable(dm_dtype t) {
    return t == DM_DTYPE_F32 || t == DM_DTYPE_F16 || t == DM_DTYPE_BF16 || t == DM_DTYPE_U8;
}

static dm_status copy_cuda(dm_backend *be, const dm_tensor *src, dm_tensor *dst) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    if (!src || !dst || !src->data || !dst->data)
        return dm_error_set(DM_ERR_ARG, "copy: NULL tensor or data");
    const int64_t n = dm_tensor_numel(src);
    if (n != dm_tensor_numel(dst))
        return dm_error_set(DM_ERR_SHAPE, "copy: numel %lld vs %lld", (long long)n,
                            (long long)dm_tensor_numel(dst));
    const int src_gpu = src->device == DM_DEVICE_CUDA, dst_gpu = dst->device == DM_DEVICE_CUDA;
    if (ctx->capturing && (!src_gpu || !dst_gpu) && (ctx->capture_failed = 1)) /* host side */
        return dm_error_set(DM_ERR_BACKEND, "copy: host<->device copy during CUDA Graph capture "
                            "(copy inputs before dm_graph_launch and outputs after it)");
    if (src->dtype == dst->dtype) {
        if (!src_gpu && !dst_gpu) {
            memmove(dst->data, src->data, dm_tensor_nbytes(src));
            return DM_OK;
        }
        CUDA_CHECK(cudaSetDevice(ctx->device));
        if (!src_gpu) return cuda_upload(ctx, dst->data, src->data, dm_tensor_nbytes(src));
        CUDA_CHECK(cudaMemcpyAsync(dst->data, src->data, dm_tensor_nbytes(src), cudaMemcpyDefault,
                                   ctx->stream));
        if (!dst_gpu) CUDA_CHECK(cudaStreamSynchronize(ctx->stream)); /* host reads it next */
        return DM_OK;
    }
    if (!copyable(src->dtype) || !copyable(dst->dtype))
        return dm_error_set(DM_ERR_DTYPE, "copy: %s -> %s not supported",
                            dm_dtype_name(src->dtype), dm_dtype_name(dst->dtype));
    if (!src_gpu && !dst_gpu) {
        for (int64_t i = 0; i < n; i++)
            host_store(dst->data, dst->dtype, i, host_load(src->data, src->dtype, i));
        return DM_OK;
    }
    CUDA_CHECK(cudaSetDevice(ctx->device));
    dm_status st;
    void *stage;
    if (src_gpu && dst_gpu) return cuda_convert(ctx->stream, src->data, src->dtype, dst->data,
                                                dst->dtype, n);
    if (!src_gpu) { /* host -> device: raw bytes up, convert on the device */
        if ((st = cuda_scratch(ctx, CUDA_SLOT_C, dm_tensor_nbytes(src), &stage))) return st;
        if ((st = cuda_upload(ctx, stage, src->data, dm_tensor_nbytes(src)))) return st;
        return cuda_convert(ctx->stream, stage, src->dtype, dst->data, dst->dtype, n);
    }
    /* device -> host: convert on the device, bytes down, wait */
    if ((st = cuda_scratch(ctx, CUDA_SLOT_C, dm_tensor_nbytes(dst), &stage))) return st;
    if ((st = cuda_convert(ctx->stream, src->data, src->dtype, stage, dst->dtype, n))) return st;
    CUDA_CHECK(cudaMemcpyAsync(dst->data, stage, dm_tensor_nbytes(dst), cudaMemcpyDeviceToHost,
                               ctx->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return DM_OK;
}

/* ---- asynchronous downloads (include/depthmatte/copy_async.h) ---------------------------
 * On the compute stream the source is converted (or copied) into a ring stage: a snapshot in
 * stream order, so the next frame's forward may overwrite the source (the models' output
 * buffers are fixed, baked into CUDA graphs) without a second device buffer per output. An
 * event behind it orders the copy stream's device->host copy after that; a "done" event behind
 * the copy is what dm_copy_wait synchronises. A stage is rewritten only after its previous copy
 * is done: the compute stream waits for that copy's event (on the device, the host does not
 * block). Events and the copy stream are made once per context; a stage grows on first use
 * (the first frames) and is kept, so the frame loop allocates nothing. */

static dm_status copy_async_cuda(dm_backend *be, const dm_tensor *src, dm_tensor *dst,
                                 dm_copy_ticket *ticket) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    if (ctx->capturing && (ctx->capture_failed = 1)) /* host traffic: not capturable */
        return dm_error_set(DM_ERR_BACKEND, "copy_async: device->host download during CUDA "
                            "Graph capture (download outputs after dm_graph_launch)");
    dm_status st;
    if (src->device != DM_DEVICE_CUDA || dst->device != DM_DEVICE_CPU)
        return dm_error_set(DM_ERR_ARG, "copy_async: src must be a CUDA tensor, dst a host one");
    if (src->dtype != dst->dtype && (!copyable(src->dtype) || !copyable(dst->dtype)))
        return dm_error_set(DM_ERR_DTYPE, "copy_async: %s -> %s not supported",
                            dm_dtype_name(src->dtype), dm_dtype_name(dst->dtype));
    const int64_t n = dm_tensor_numel(src);
    const size_t bytes = dm_tensor_nbytes(dst);
    const int k = ctx->dl_next;
    cuda_dl *e = &ctx->dl[k];
    CUDA_CHECK(cudaSetDevice(ctx->device));
    if (e->size < bytes) { /* first use or a larger frame: rare, never in the steady loop */
        if (e->pending) CUDA_CHECK(cudaEventSynchronize(e->done));
        e->pending = 0;
        if (e->dev) {
            dm_alloc_track_remove(e->dev);
            CUDA_CHECK(cudaFree(e->dev));
        }
        e->dev = NULL;
        e->size = 0;
        const size_t rounded = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        cudaError_t err = cudaMalloc(&e->dev, rounded ? rounded : ((size_t)1 << 20));
        if (err != cudaSuccess) {
            e->dev = NULL;
            return dm_error_set(DM_ERR_NOMEM, "copy_async: device stage of %zu bytes: %s",
                                rounded, cudaGetErrorString(err));
        }
        e->size = rounded ? rounded : ((size_t)1 << 20);
        (void)dm_alloc_track_add(ctx->device, e->dev, e->size);
    }
    /* the stage's previous copy must have read it before the staging below overwrites it */
    if (e->pending) CUDA_CHECK(cudaStreamWaitEvent(ctx->stream, e->done, 0));
    if (src->dtype == dst->dtype)
        CUDA_CHECK(cudaMemcpyAsync(e->dev, src->data, bytes, cudaMemcpyDeviceToDevice,
                                   ctx->stream));
    else if ((st = cuda_convert(ctx->stream, src->data, src->dtype, e->dev, dst->dtype, n)))
        return st;
    CUDA_CHECK(cudaEventRecord(e->ready, ctx->stream));
    CUDA_CHECK(cudaStreamWaitEvent(ctx->copy_stream, e->ready, 0));
    CUDA_CHECK(cudaMemcpyAsync(dst->data, e->dev, bytes, cudaMemcpyDeviceToHost,
                               ctx->copy_stream));
    CUDA_CHECK(cudaEventRecord(e->done, ctx->copy_stream));
    e->pending = 1;
    e->seq = ++ctx->dl_seq;
    ctx->dl_next = (k + 1) % CUDA_DL_COUNT;
    ticket->id = e->seq;
    ticket->slot = k;
    return DM_OK;
}

/* The copy stream runs its copies in order: the done event of the ticket's stage (its own copy,
 * or a later one through the same stage) completes this download and every earlier one. */
static dm_status copy_wait_cuda(dm_backend *be, dm_copy_ticket *ticket) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    if (ctx->capturing && (ctx->capture_failed = 1))
        return dm_error_set(DM_ERR_BACKEND, "copy_wait: host wait during CUDA Graph capture");
    if (ticket->slot < 0 || ticket->slot >= CUDA_DL_COUNT)
        return dm_error_set(DM_ERR_ARG, "copy_wait: not a ticket of this backend");
    cuda_dl *e = &ctx->dl[ticket->slot];
    if (!e->pending || e->seq < ticket->id) return DM_OK; /* already waited for */
    CUDA_CHECK(cudaEventSynchronize(e->done));
    for (int i = 0; i < CUDA_DL_COUNT; i++) /* in order: every earlier download is done too */
        if (ctx->dl[i].pending && ctx->dl[i].seq <= e->seq) ctx->dl[i].pending = 0;
    return DM_OK;
}

static dm_status synchronize_cuda(dm_backend *be) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    if (ctx->capturing && (ctx->capture_failed = 1)) /* would invalidate the capture */
        return dm_error_set(DM_ERR_BACKEND, "cuda: synchronisation during CUDA Graph capture");
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return DM_OK;
}

dm_status dm_cuda_count_nonfinite(dm_backend *be, const dm_tensor *t, dm_tensor *count,
                                  int accumulate) {
    if (!be || be->device != DM_DEVICE_CUDA)
        return dm_error_set(DM_ERR_ARG, "count_nonfinite: not a CUDA backend");
    cuda_ctx *ctx = cuda_ctx_of(be);
    dm_status st = cuda_check_float(t, 0, "count_nonfinite", "t");
    if (st) return st;
    if (!count || count->device != DM_DEVICE_CUDA || count->dtype != DM_DTYPE_I64)
        return dm_error_set(DM_ERR_ARG, "count_nonfinite: the counter must be a CUDA i64 tensor");
    const int64_t g = dm_tensor_numel(count), n = dm_tensor_numel(t);
    if (g < 1 || n % g)
        return dm_error_set(DM_ERR_SHAPE, "count_nonfinite: %lld counts for %lld values",
                            (long long)g, (long long)n);
    CUDA_CHECK(cudaSetDevice(ctx->device));
    /* memset and kernels only (no host traffic): a CUDA Graph capture may hold them */
    if (!accumulate)
        CUDA_CHECK(cudaMemsetAsync(count->data, 0, (size_t)g * sizeof(int64_t), ctx->stream));
    const int64_t blk = n / g;
    const size_t esz = dm_dtype_size(t->dtype);
    for (int64_t j = 0; j < g; j++) /* G is a batch (<= 1024 frames): one launch per block */
        if ((st = cuda_count_nonfinite(ctx->stream, (const char *)t->data + (size_t)(j * blk) * esz,
                                       t->dtype, blk,
                                       (unsigned long long *)count->data + j)))
            return st;
    return DM_OK;
}

/* ---- context ----------------------------------------------------------------------------- */

static void destroy_cuda(dm_backend *be) {
    cuda_ctx *ctx = cuda_ctx_of(be);
    if (!ctx) return;
    cudaSetDevice(ctx->device);
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    if (ctx->copy_stream) cudaStreamSynchronize(ctx->copy_stream);
    for (int i = 0; i < CUDA_DL_COUNT; i++) {
        if (ctx->dl[i].ready) cudaEventDestroy(ctx->dl[i].ready);
        if (ctx->dl[i].done) cudaEventDestroy(ctx->dl[i].done);
        if (ctx->dl[i].dev) dm_alloc_track_remove(ctx->dl[i].dev), cudaFree(ctx->dl[i].dev);
    }
    if (ctx->copy_stream) cudaStreamDestroy(ctx->copy_stream);
    if (ctx->x_desc) cudnnDestroyTensorDescriptor(ctx->x_desc);
    if (ctx->y_desc) cudnnDestroyTensorDescriptor(ctx->y_desc);
    if (ctx->b_desc) cudnnDestroyTensorDescriptor(ctx->b_desc);
    if (ctx->w_desc) cudnnDestroyFilterDescriptor(ctx->w_desc);
    if (ctx->conv_desc) cudnnDestroyConvolutionDescriptor(ctx->conv_desc);
    if (ctx->act_desc) cudnnDestroyActivationDescriptor(ctx->act_desc);
    cuda_lt_cache_free(ctx);
    cuda_conv_fused_free(ctx);
    for (int i = 0; i < CUDA_STAGE_COUNT; i++) {
        if (ctx->stage[i].done) cudaEventDestroy(ctx->stage[i].done); /* stream synced above */
        if (ctx->stage[i].host) cudaFreeHost(ctx->stage[i].host);
    }
    if (ctx->upload_done) cudaEventDestroy(ctx->upload_done);
    if (ctx->cudnn) cudnnDestroy(ctx->cudnn);
    if (ctx->lt) cublasLtDestroy(ctx->lt);
    for (int i = 0; i < CUDA_SLOT_COUNT; i++)
        if (ctx->slot[i]) dm_alloc_track_remove(ctx->slot[i]), cudaFree(ctx->slot[i]);
    for (int i = 0; i < ctx->nretired; i++)
        dm_alloc_track_remove(ctx->retired[i]), cudaFree(ctx->retired[i]);
    free(ctx->retired);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    free(ctx);
    be->impl = NULL;
}

/* Every op of the table runs f32, f16 and bf16 tensors (f32 accumulation); image_from_u8 reads
 * u8 host frames into any of them, image_cubic_normalize u8 device frames; copy/alloc take
 * every dtype; the shape limits of the kernels: dm_cuda_supports_op (op_support.c). */
static int supports_cuda(const dm_backend *be, const dm_op_desc *d, char *why, size_t size) {
    (void)be;
    return dm_cuda_supports_op(d, why, size);
}

/* The op table's graph entries (depthmatte/graph.h) are the CUDA Graphs of graph.c. */
static dm_status graph_end_cuda(dm_backend *be, void **impl) {
    dm_cuda_graph *g = NULL;
    dm_status st = dm_cuda_graph_end(be, &g);
    *impl = g;
    return st;
}

static dm_status graph_launch_cuda(dm_backend *be, void *impl) {
    return dm_cuda_graph_launch(be, (dm_cuda_graph *)impl);
}

static void graph_free_cuda(dm_backend *be, void *impl) {
    (void)be;
    dm_cuda_graph_free((dm_cuda_graph *)impl);
}

static const dm_backend_ops cuda_ops = {
    .name = "cuda",
    .supports = supports_cuda,
    .conv2d = conv2d_cuda,
    .conv_transpose2d = conv_transpose2d_cuda,
    .linear = linear_cuda,
    .layernorm = layernorm_cuda,
    .groupnorm = groupnorm_cuda,
    .activation = activation_cuda,
    .binary = binary_cuda,
    .attention = attention_cuda,
    .resize = resize_cuda,
    .avgpool2d = avgpool2d_cuda,
    .global_avgpool2d = global_avgpool2d_cuda,
    .channel_affine = channel_affine_cuda,
    .image_from_u8 = image_from_u8_cuda,
    .guided_coeffs = guided_coeffs_cuda,
    .matting_compose = matting_compose_cuda,
    .permute = permute_cuda,
    .concat = concat_cuda,
    .copy = copy_cuda,
    .alloc = alloc_cuda,
    .maxpool2d = maxpool2d_cuda,
    /* the packed-qkv attention of backend_cuda.h is the table's attention_qkv */
    .attention_qkv = dm_cuda_attention_qkv,
    .image_cubic_normalize = image_cubic_normalize_cuda,
    /* the counter of backend_cuda.h is the table's count_nonfinite */
    .count_nonfinite = dm_cuda_count_nonfinite,
    .synchronize = synchronize_cuda,
    .destroy = destroy_cuda,
    .graph_begin = dm_cuda_graph_begin,
    .graph_end = graph_end_cuda,
    .graph_launch = graph_launch_cuda,
    .graph_free = graph_free_cuda,
    .copy_async = copy_async_cuda,
    .copy_wait = copy_wait_cuda,
};

static dm_status ctx_init(cuda_ctx *ctx) {
    CUDA_CHECK(cudaSetDevice(ctx->device));
    /* non-blocking: no implicit ordering with the legacy default stream that libraries
     * (FFmpeg hwaccel, MPI) might use */
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    CUDNN_CHECK(cudnnCreate(&ctx->cudnn));
    CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->stream));
    CUBLAS_CHECK(cublasLtCreate(&ctx->lt));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->x_desc));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->y_desc));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->b_desc));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&ctx->w_desc));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&ctx->conv_desc));
    CUDNN_CHECK(cudnnCreateActivationDescriptor(&ctx->act_desc));
    CUDA_CHECK(cudaDeviceGetAttribute(&ctx->cc_major, cudaDevAttrComputeCapabilityMajor,
                                      ctx->device));
    for (int i = 0; i < CUDA_STAGE_COUNT; i++)
        CUDA_CHECK(cudaEventCreateWithFlags(&ctx->stage[i].done, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&ctx->upload_done, cudaEventDisableTiming));
    /* the download stream and its events: once per context, never per frame */
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->copy_stream, cudaStreamNonBlocking));
    for (int i = 0; i < CUDA_DL_COUNT; i++) {
        CUDA_CHECK(cudaEventCreateWithFlags(&ctx->dl[i].ready, cudaEventDisableTiming));
        CUDA_CHECK(cudaEventCreateWithFlags(&ctx->dl[i].done, cudaEventDisableTiming));
    }
    return DM_OK;
}

/* CMAKE_CUDA_ARCHITECTURES of this build (CMakeLists.txt passes it to this file); without it
 * the list is unknown and only the kernel probe decides */
#ifndef DM_CUDA_ARCHS
#define DM_CUDA_ARCHS ""
#endif

/* Refuses (DM_ERR_UNSUPPORTED, one line) a device the build has no GPU code for, before any
 * handle is made: first by the rules of dm_cuda_arch_runs, then by asking the runtime about one
 * of our kernels (catches what the rules cannot tell: "native" built on another GPU, "OFF"). */
static dm_status check_arch(int device_index) {
    int major = 0, minor = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_index));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_index));
    char msg[768], name[256] = "";
    dm_status st = dm_cuda_device_name(device_index, name, sizeof name);
    if (st) return st;
    if (dm_cuda_arch_message(DM_CUDA_ARCHS, major, minor, NULL, msg, sizeof msg))
        return dm_error_set(DM_ERR_UNSUPPORTED, "cuda: device %d (%s): %s", device_index, name,
                            msg);
    CUDA_CHECK(cudaSetDevice(device_index));
    const cudaError_t e = cuda_kernel_image_probe();
    if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction) {
        (void)cudaGetLastError(); /* not sticky: clear it so later calls start clean */
        char cause[256];
        snprintf(cause, sizeof cause, "cudaFuncGetAttributes: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        dm_cuda_arch_message(DM_CUDA_ARCHS, major, minor, cause, msg, sizeof msg);
        return dm_error_set(DM_ERR_UNSUPPORTED, "cuda: device %d (%s): %s", device_index, name,
                            msg);
    }
    CUDA_CHECK(e);
    return DM_OK;
}

dm_status dm_backend_cuda_create(int device_index, dm_dtype precision, dm_backend **out) {
    *out = NULL;
    if (precision != DM_DTYPE_F32 && precision != DM_DTYPE_F16 && precision != DM_DTYPE_BF16)
        return dm_error_set(DM_ERR_ARG, "cuda: precision %s (expected f32, f16 or bf16)",
                            dm_dtype_name(precision));
    /* test hook DM_TEST_CUDA_CC=X.Y (docs/operations.md): the architecture check of a device of
     * that compute capability, before any device is looked at, so that machines without a GPU
     * test the refusal and runtime.backend auto's fallback on it */
    const char *sim = getenv("DM_TEST_CUDA_CC");
    int sim_major = 0, sim_minor = 0;
    char msg[768];
    if (sim && sscanf(sim, "%d.%d", &sim_major, &sim_minor) == 2 &&
        dm_cuda_arch_message(DM_CUDA_ARCHS, sim_major, sim_minor, NULL, msg, sizeof msg))
        return dm_error_set(DM_ERR_UNSUPPORTED, "cuda: device %d (simulated, DM_TEST_CUDA_CC): %s",
                            device_index, msg);
    int count = 0;
    dm_status st = dm_cuda_device_count(&count);
    if (st) return st;
    if (device_index < 0 || device_index >= count)
        return dm_error_set(DM_ERR_ARG, "cuda: device %d requested, %d visible", device_index,
                            count);
    if ((st = check_arch(device_index))) return st;
    dm_backend *be = calloc(1, sizeof *be);
    cuda_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return dm_error_set(DM_ERR_NOMEM, "cuda: cannot allocate the backend");
    }
    ctx->device = device_index;
    ctx->precision = precision;
    const char *force = getenv("DM_CUDA_CONV_FORCE_NHWC"); /* test knob, docs/gpu.md */
    ctx->conv_force_nhwc = force && force[0] == '1';
    be->ops = &cuda_ops;
    be->device = DM_DEVICE_CUDA;
    be->precision = precision;
    be->storage = precision;
    be->threads = 1;
    be->impl = ctx;
    if ((st = ctx_init(ctx))) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dm_error_message()); /* keep it across cleanup */
        dm_backend_destroy(be);
        return dm_error_set(st, "%s", msg);
    }
    *out = be;
    return DM_OK;
}

dm_dtype dm_backend_cuda_precision(const dm_backend *be) {
    if (!be || be->device != DM_DEVICE_CUDA || !be->impl) return DM_DTYPE_F32;
    return ((const cuda_ctx *)be->impl)->precision;
}

dm_status dm_cuda_backend_device(const dm_backend *be, int *device) {
    *device = -1;
    if (!be || be->device != DM_DEVICE_CUDA || !be->impl)
        return dm_error_set(DM_ERR_ARG, "not a CUDA backend");
    *device = ((const cuda_ctx *)be->impl)->device;
    return DM_OK;
}

void *dm_backend_cuda_stream(const dm_backend *be) {
    if (!be || be->device != DM_DEVICE_CUDA || !be->impl) return NULL;
    return (void *)((const cuda_ctx *)be->impl)->stream;
}

/* ---- device queries ---------------------------------------------------------------------- */

dm_status dm_cuda_device_count(int *count) {
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(count);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
        (void)cudaGetLastError(); /* clear the error so later calls start clean */
        *count = 0;
        int drv = 0, rt = 0;
        char msg[512];
        if (e == cudaErrorInsufficientDriver && cudaDriverGetVersion(&drv) == cudaSuccess &&
            cudaRuntimeGetVersion(&rt) == cudaSuccess &&
            dm_cuda_driver_message(drv, rt, msg, sizeof msg))
            return dm_error_set(DM_ERR_BACKEND, "%s", msg); /* a driver, but too old */
        return DM_OK; /* no device, or no driver at all (cudaDriverGetVersion = 0) */
    }
    if (e != cudaSuccess) {
        *count = 0;
        (void)cudaGetLastError();
        return dm_error_set(DM_ERR_BACKEND, "cuda: cudaGetDeviceCount: %s (%s)",
                            cudaGetErrorString(e), cudaGetErrorName(e));
    }
    return DM_OK;
}

static dm_status device_props(int device_index, struct cudaDeviceProp *prop) {
    int count = 0;
    dm_status st = dm_cuda_device_count(&count);
    if (st) return st;
    if (device_index < 0 || device_index >= count)
        return dm_error_set(DM_ERR_ARG, "cuda: device %d requested, %d visible", device_index,
                            count);
    CUDA_CHECK(cudaGetDeviceProperties(prop, device_index));
    return DM_OK;
}

dm_status dm_cuda_device_name(int device_index, char *buf, size_t size) {
    struct cudaDeviceProp prop;
    if (size) buf[0] = '\0';
    dm_status st = device_props(device_index, &prop);
    if (st) return st;
    snprintf(buf, size, "%s", prop.name);
    return DM_OK;
}

dm_status dm_cuda_device_uuid(int device_index, char *buf, size_t size) {
    struct cudaDeviceProp prop;
    if (size) buf[0] = '\0';
    dm_status st = device_props(device_index, &prop);
    if (st) return st;
    const unsigned char *u = (const unsigned char *)prop.uuid.bytes;
    snprintf(buf, size,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
    return DM_OK;
}

dm_status dm_cuda_backend_bind_thread(const dm_backend *be) {
    if (!be || be->device != DM_DEVICE_CUDA) return DM_OK;
    const cuda_ctx *ctx = (const cuda_ctx *)be->impl;
    CUDA_CHECK(cudaSetDevice(ctx->device));
    return DM_OK;
}

dm_status dm_cuda_host_alloc(const dm_backend *be, size_t bytes, void **out) {
    *out = NULL;
    if (!be || be->device != DM_DEVICE_CUDA)
        return dm_error_set(DM_ERR_ARG, "cuda host alloc: not a CUDA backend");
    const cuda_ctx *ctx = (const cuda_ctx *)be->impl;
    CUDA_CHECK(cudaSetDevice(ctx->device));
    cudaError_t e = cudaHostAlloc(out, bytes ? bytes : 1, cudaHostAllocPortable);
    if (e != cudaSuccess) {
        *out = NULL;
        return dm_error_set(DM_ERR_NOMEM, "cuda host alloc: %zu pinned bytes: %s", bytes,
                            cudaGetErrorString(e));
    }
    return DM_OK;
}

void dm_cuda_host_free(void *p) {
    if (p) cudaFreeHost(p);
}

dm_status dm_cuda_device_memory(int device_index, size_t *free_bytes, size_t *total_bytes) {
    struct cudaDeviceProp prop;
    *free_bytes = *total_bytes = 0;
    dm_status st = device_props(device_index, &prop);
    if (st) return st;
    int prev = 0;
    CUDA_CHECK(cudaGetDevice(&prev));
    CUDA_CHECK(cudaSetDevice(device_index));
    cudaError_t e = cudaMemGetInfo(free_bytes, total_bytes);
    cudaSetDevice(prev); /* leave the caller's current device as it was */
    CUDA_CHECK(e);
    return DM_OK;
}

/* ---- device memory we allocated (src/nn/alloc_track.c) ----------------------------------- */

dm_status dm_cuda_alloc_stats(int device_index, dm_cuda_alloc_counts *out) {
    if (!out) return dm_error_set(DM_ERR_ARG, "dm_cuda_alloc_stats: out is NULL");
    memset(out, 0, sizeof *out);
    dm_alloc_track_counts c;
    dm_status st = dm_alloc_track_get(device_index, &c);
    if (st) return st;
    out->current_bytes = c.current_bytes;
    out->peak_bytes = c.peak_bytes;
    out->allocs = c.allocs;
    out->frees = c.frees;
    return DM_OK;
}
