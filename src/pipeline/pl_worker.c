/* The per-rank worker: backend + models loaded once, buffers sized once from the largest frame
 * of this rank's chunks, and the block loop body (decode -> RVM / DA-V2 -> output dtypes).
 * Nothing is allocated per frame; per chunk only the reader (and an RVM state when the frame
 * size changes). Decoding runs ahead on the prefetch thread (pl_prefetch.c) into a ring of
 * preallocated frames; stats: decode_s = the thread's decode time (overlapped), wait_s = time
 * the networks waited for a decoded frame. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_emu.h"
#include "depthmatte/da2.h"
#include "depthmatte/gpu_bind.h"
#include "depthmatte/vda.h"
#include "pl_internal.h"

struct pl_worker {
    pl_ctx *c;
    dm_backend *be;
    /* The CPU reference for runtime.verify and for float32 recomputes of non-finite frames of
     * a reduced-precision device (NULL on the CPU backend; models loaded on first use). */
    dm_backend *ref_be;
    rvm_model *ref_rvm;
    rvm_state *ref_rs;
    da2_model *ref_da2;
    da2_ctx *ref_dc;
    float *ref_out;     /* (4, H, W): reference fgr + pha, or depth (source or model size) */
    size_t ref_out_n;   /* floats at ref_out */
    int verified_rvm, verified_da2; /* first frames already checked (runtime.verify) */
    rvm_model *rvm;
    rvm_state *rs;
    int rs_h, rs_w;
    da2_model *da2;
    pl_vda *vda;
    da2_ctx *dc;
    int dc_h, dc_w;
    pl_prefetch pf;    /* decode thread + ring of (H, W, 3) frames, sized once */
    const uint8_t *rgb; /* (H, W, 3) the current frame: a prefetch slot, valid until the next */
    float *fgr_f;      /* (3, H, W) RVM foreground, planar */
    float *pha_f;      /* (H, W) RVM alpha */
    float *depth_f;    /* (B, H, W) DA-V2 depth at source size, or (B, h, w) at model size */
    int batch;         /* B: DA-V2 frames per forward (runtime.batch_size; 1 otherwise) */
    uint8_t *batch_rgb; /* (B, H, W, 3) copies of the frames waiting for a batch (B > 1) */
    void *alpha;       /* (chunk_frames, H, W) uint8 or half */
    uint8_t *fgr;      /* (chunk_frames, H, W, 3) uint8 */
    void *depth;       /* (chunk_frames, H, W) half or float */
    int64_t *pts;      /* (chunk_frames,) */
    double *ts;        /* (chunk_frames,) */
    dm_video_reader *reader;
    dm_h5_rank_stats stats;
};

double pl_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

const char *pl_depth_model_name(const dm_job *job) {
    switch (job->depth.model) {
    case DM_DEPTH_DA2_VITS: return "depth_anything_v2_small";
    case DM_DEPTH_VDA_VITS: return "video_depth_anything_small";
    default: return "video_depth_anything_small_metric";
    }
}

/* The RVM variant of matting.model. */
static rvm_variant pl_rvm_variant(const dm_job *job) {
    return job->matting.model == DM_MATTING_RVM_RESNET50 ? RVM_VARIANT_RESNET50
                                                         : RVM_VARIANT_MOBILENETV3;
}

/* The ops every model of the job runs (for the backends' supports query). */
static int job_ops(const dm_job *job, dm_op_id *ops) {
    int n = 0;
    if (job->matting.enabled) n += rvm_required_ops(pl_rvm_variant(job), ops + n);
    if (job->depth.enabled) n += pl_is_vda(job) ? vda_required_ops(ops + n) : da2_required_ops(ops + n);
    return n;
}

/* The communicator of this node's ranks (MPI_COMM_TYPE_SHARED) with the rank's index and the
 * node's rank count; the caller frees *local. Collective. */
static dm_status split_local(MPI_Comm comm, MPI_Comm *local, int *local_rank, int *local_size) {
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, local) !=
        MPI_SUCCESS)
        return dm_error_set(DM_ERR_MPI, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed");
    MPI_Comm_rank(*local, local_rank);
    MPI_Comm_size(*local, local_size);
    return DM_OK;
}

/* The node-local rank and size, and whether every rank of the node sees one GPU of its own
 * (device 0's UUID differs between all of them). Collective over the node's ranks. */
static dm_status node_gpus(MPI_Comm comm, int n, int *local_rank, int *local_size,
                           int *distinct_single) {
    MPI_Comm local;
    dm_status st = split_local(comm, &local, local_rank, local_size);
    if (st) return st;
    char mine[64] = "";
    if (n == 1) dm_cuda_device_uuid(0, mine, sizeof mine);
    char *all = malloc((size_t)*local_size * sizeof mine);
    int rc = all ? MPI_Allgather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine,
                                 MPI_CHAR, local)
                 : MPI_ERR_NO_MEM;
    MPI_Comm_free(&local);
    if (rc != MPI_SUCCESS) {
        free(all);
        return dm_error_set(DM_ERR_MPI, "MPI_Allgather(GPU UUIDs) failed");
    }
    *distinct_single = n == 1;
    for (int i = 0; i < *local_size && *distinct_single; i++)
        for (int j = i + 1; j < *local_size; j++)
            if (!all[i * sizeof mine] || !strcmp(all + i * sizeof mine, all + j * sizeof mine)) {
                *distinct_single = 0;
                break;
            }
    free(all);
    return DM_OK;
}

/* The node-local rank and size for the statistics; without a CUDA device, the test hook
 * DM_TEST_CUDA_DEVICES=N (docs/operations.md) simulates N visible devices per rank and records
 * the device dm_gpu_bind would give (its errors too), so that multi-host tests check binding. */
static dm_status node_local(pl_worker *w, MPI_Comm comm) {
    MPI_Comm local;
    int lr = 0, ls = 1;
    dm_status sst = split_local(comm, &local, &lr, &ls);
    if (sst) return sst;
    MPI_Comm_free(&local);
    w->stats.local_rank = lr;
    w->stats.local_size = ls;
    const char *sim = getenv("DM_TEST_CUDA_DEVICES");
    if (sim && w->be->device != DM_DEVICE_CUDA) {
        int dev = -1;
        dm_status st = dm_gpu_bind(lr, ls, atoi(sim), 0, w->c->job.runtime.share_gpus, &dev);
        if (st) {
            char why[512]; /* a copy: the message buffer is the one being written */
            snprintf(why, sizeof why, "%s", dm_error_message());
            return dm_error_set(st, "DM_TEST_CUDA_DEVICES=%s (simulated): %s", sim, why);
        }
        w->stats.gpu = dev;
    }
    return DM_OK;
}

/* runtime.backend: cpu; cuda (device by dm_gpu_bind); auto = cuda when a GPU is visible and
 * it runs every op of the job (dm_backend_supports_all), else cpu; emulated (tests; the fault
 * hook DM_TEST_EMU_FAULT, see backend_emu.h, lets tests prove that verification catches a
 * wrong op). */
static dm_status make_backend(pl_worker *w, MPI_Comm comm) {
    const dm_runtime_config *rt = &w->c->job.runtime;
    if (rt->backend == DM_BACKEND_CHOICE_EMULATED)
        return dm_backend_emu_create(rt->threads, rt->precision, getenv("DM_TEST_EMU_FAULT"),
                                     &w->be);
    int n = 0;
    dm_status cst = rt->backend == DM_BACKEND_CHOICE_CPU ? DM_ERR_UNSUPPORTED
                                                         : dm_cuda_device_count(&n);
    char why[512] = "";
    if (cst) snprintf(why, sizeof why, "%s", dm_error_message());
    int use_cuda = rt->backend == DM_BACKEND_CHOICE_CUDA ||
                   (rt->backend == DM_BACKEND_CHOICE_AUTO && !cst && n > 0);
    dm_status st = DM_OK;
    if (use_cuda) {
        if (cst)
            return dm_error_set(DM_ERR_BACKEND, "runtime.backend cuda: %s", why);
        int lr = 0, ls = 1, distinct = 0, dev = 0;
        if ((st = node_gpus(comm, n, &lr, &ls, &distinct))) return st;
        /* (the cause is copied first: dm_error_set must not read the buffer it writes) */
        if ((st = dm_gpu_bind(lr, ls, n, distinct, rt->share_gpus, &dev))) {
            snprintf(why, sizeof why, "%s", dm_error_message());
            return dm_error_set(st, "runtime.backend cuda: %s", why);
        }
        w->stats.gpu = dev;
        if ((st = dm_backend_cuda_create(dev, rt->precision, &w->be))) {
            snprintf(why, sizeof why, "%s", dm_error_message());
            return dm_error_set(st, "runtime.backend cuda: device %d: %s", dev, why);
        }
        dm_op_id ops[64];
        char missing[64];
        const int nops = job_ops(&w->c->job, ops);
        if (!dm_backend_supports_all(w->be, ops, nops, missing, sizeof missing)) {
            if (rt->backend == DM_BACKEND_CHOICE_CUDA)
                return dm_error_set(DM_ERR_UNSUPPORTED, "runtime.backend cuda: the CUDA "
                                    "backend does not run op %s in %s", missing,
                                    dm_dtype_name(rt->precision));
            dm_backend_destroy(w->be); /* auto: the CPU runs everything */
            w->be = NULL;
            use_cuda = 0;
        }
    }
    if (!use_cuda) {
        w->be = dm_backend_cpu_create(rt->threads);
        if (!w->be) return dm_error_set(DM_ERR_NOMEM, "cannot create the CPU backend");
    }
    return DM_OK;
}

/* The CPU reference models, loaded on first use (runtime.verify, float32 recomputes). */
static dm_status ref_models(pl_worker *w, int rvm, int H, int W) {
    const dm_job *job = &w->c->job;
    dm_status st;
    if (!w->ref_be && !(w->ref_be = dm_backend_cpu_create(w->c->job.runtime.threads)))
        return dm_error_set(DM_ERR_NOMEM, "cannot create the CPU reference backend");
    size_t n_out = (size_t)4 * H * W; /* RVM fgr + pha, or depth at source size */
    if (job->depth.enabled && !pl_is_vda(job)) {
        int mh, mw; /* the model grid (depth.output_size model) may be larger */
        da2_input_size(H, W, job->depth.input_size, &mh, &mw);
        if ((size_t)mh * mw > n_out) n_out = (size_t)mh * mw;
    }
    if (w->ref_out && w->ref_out_n < n_out) {
        free(w->ref_out);
        w->ref_out = NULL;
    }
    if (!w->ref_out && !(w->ref_out = malloc(n_out * sizeof(float))))
        return dm_error_set(DM_ERR_NOMEM, "out of memory for the reference outputs");
    w->ref_out_n = n_out;
    if (rvm) {
        if (!w->ref_rvm && (st = rvm_model_load_variant(&w->ref_rvm, job->matting.weights,
                                                        pl_rvm_variant(job), w->ref_be)))
            return st;
        if (!w->ref_rs && (st = rvm_state_init(&w->ref_rs, w->ref_rvm, w->ref_be, H, W,
                                               job->matting.downsample_ratio)))
            return st;
        return DM_OK;
    }
    if (!w->ref_da2 && (st = da2_model_load(&w->ref_da2, job->depth.weights, w->ref_be)))
        return st;
    if (!w->ref_dc &&
        (st = da2_ctx_init(&w->ref_dc, w->ref_da2, w->ref_be, H, W, job->depth.input_size)))
        return st;
    return DM_OK;
}



dm_status pl_worker_init(pl_worker **out, pl_ctx *c, MPI_Comm comm) {
    *out = NULL;
    pl_worker *w = calloc(1, sizeof *w);
    if (!w) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    w->c = c;
    *out = w;
    w->stats.gpu = -1;
    dm_status st = make_backend(w, comm);
    if (st) return st;
    if ((st = node_local(w, comm))) return st;
    snprintf(w->stats.device, sizeof w->stats.device, "%s", w->be->ops->name);
    if (w->be->device == DM_DEVICE_CUDA) {
        char name[96] = "", uuid[48] = "";
        int dev = 0;
        dm_cuda_backend_device(w->be, &dev);
        dm_cuda_device_name(dev, name, sizeof name);
        dm_cuda_device_uuid(dev, uuid, sizeof uuid);
        snprintf(w->stats.device, sizeof w->stats.device, "%s %s", name, uuid);
    }
    const dm_job *job = &c->job;
    if (job->matting.enabled && (st = rvm_model_load_variant(&w->rvm, job->matting.weights,
                                                           pl_rvm_variant(job), w->be)))
        return st;
    if (job->depth.enabled) {
        /* VDA (never with matting, pl_setup refuses it): its own windows and buffers. */
        if (c->is_vda) return pl_vda_init(&w->vda, c, w->be);
        if ((st = da2_model_load(&w->da2, job->depth.weights, w->be))) return st;
    }
    /* Buffers for the largest frame among this rank's chunks. */
    size_t px = 1;
    for (int i = 0; i < c->n_blocks; i++) {
        const dm_video_info *in = &c->inputs[c->chunks[c->blocks[i].chunk].video].info;
        if ((size_t)in->width * in->height > px) px = (size_t)in->width * in->height;
    }
    /* Depth rows at model size (da2_input_size, multiples of 14) may exceed the source's. */
    size_t dpx = px, mpx = 1;
    const int model_size = job->depth.enabled && job->depth.output_size == DM_DEPTH_SIZE_MODEL;
    for (int i = 0; i < c->n_blocks && model_size; i++) {
        const dm_video_info *in = &c->inputs[c->chunks[c->blocks[i].chunk].video].info;
        int mh, mw;
        da2_input_size(in->height, in->width, job->depth.input_size, &mh, &mw);
        if ((size_t)mh * mw > mpx) mpx = (size_t)mh * mw;
    }
    if (mpx > dpx) dpx = mpx;
    size_t cf = (size_t)job->output.chunk_frames;
    if ((st = pl_prefetch_init(&w->pf, px * 3))) return st;
    w->fgr_f = malloc(px * 3 * sizeof(float));
    w->pha_f = malloc(px * sizeof(float));
    w->batch = job->depth.enabled && !c->is_vda ? job->runtime.batch_size : 1;
    w->depth_f = malloc((size_t)w->batch * dpx * sizeof(float));
    if (w->batch > 1 && !(w->batch_rgb = malloc((size_t)w->batch * px * 3)))
        return dm_error_set(DM_ERR_NOMEM, "out of memory for %d batched frames (%zu pixels)",
                            w->batch, px);
    w->alpha = malloc(cf * px * 2);
    w->fgr = malloc(cf * px * 3);
    w->depth = malloc(cf * dpx * 4);
    w->pts = malloc(cf * sizeof *w->pts);
    w->ts = malloc(cf * sizeof *w->ts);
    if (!w->fgr_f || !w->pha_f || !w->depth_f || !w->alpha || !w->fgr ||
        !w->depth || !w->pts || !w->ts)
        return dm_error_set(DM_ERR_NOMEM, "out of memory for frame buffers (%zu pixels x %zu "
                            "frames)", px, cf);
    return DM_OK;
}

void pl_worker_end_chunk(pl_worker *w) {
    if (w && w->reader) {
        /* The decode thread owns the reader until it is joined. */
        w->stats.decode_s += pl_prefetch_stop(&w->pf);
        dm_video_close(w->reader);
        w->reader = NULL;
    }
}

void pl_worker_free(pl_worker *w) {
    if (!w) return;
    pl_worker_end_chunk(w);
    rvm_state_free(w->rs);
    rvm_model_free(w->rvm);
    da2_ctx_free(w->dc);
    da2_model_free(w->da2);
    rvm_state_free(w->ref_rs);
    rvm_model_free(w->ref_rvm);
    da2_ctx_free(w->ref_dc);
    da2_model_free(w->ref_da2);
    if (w->ref_be) dm_backend_destroy(w->ref_be);
    free(w->ref_out);
    pl_vda_free(w->vda);
    if (w->be) dm_backend_destroy(w->be);
    pl_prefetch_free(&w->pf);
    free(w->fgr_f), free(w->pha_f), free(w->depth_f), free(w->batch_rgb);
    free(w->alpha), free(w->fgr), free(w->depth), free(w->pts), free(w->ts);
    free(w);
}

pl_vda *pl_worker_vda(pl_worker *w) {
    return w->vda;
}

dm_h5_rank_stats *pl_worker_stats(pl_worker *w) {
    return &w->stats;
}

/* Graceful stop requested on this rank (SIGTERM flag, pipeline.h dm_pipeline_options.stop). */
static int stop_requested(const pl_worker *w) {
    return w->c->opt.stop && *w->c->opt.stop;
}

/* Decodes the next frame, which must be presentation frame `want`. */
static dm_status read_frame(pl_worker *w, const char *path, int64_t want, int64_t *pts,
                            double *ts) {
    const pl_frame *fr = NULL;
    dm_status st = pl_prefetch_next(&w->pf, &fr, &w->stats.wait_s);
    if (st == DM_VIDEO_END || fr->st == DM_VIDEO_END)
        return dm_error_set(DM_ERR_DECODE, "%s: frame %lld: stream ended early", path,
                            (long long)want);
    if (st) return st;
    if (fr->st) return dm_error_set(fr->st, "%s", fr->msg); /* the thread's message */
    int64_t idx = fr->index;
    w->rgb = fr->rgb;
    if (pts) *pts = fr->pts;
    if (ts) *ts = fr->ts;
    if (idx != want)
        return dm_error_set(DM_ERR_DECODE, "%s: frame %lld: decoder returned frame %lld", path,
                            (long long)want, (long long)idx);
    return DM_OK;
}

static dm_status verify_rvm(pl_worker *w, const dm_video_info *info, int64_t frame, int fgr);

/* Opens the chunk's video, positions it and warms RVM with the context frames, whose outputs
 * are discarded here (they are never written). */
static dm_status start_chunk(pl_worker *w, const pl_chunk *ch, const dm_video_info *info) {
    const dm_job *job = &w->c->job;
    pl_worker_end_chunk(w);
    double t0 = pl_now();
    dm_video_options vo;
    dm_status st = pl_video_options(job, ch->video, &vo);
    if (!st) st = dm_video_open_opts(&w->reader, info->path, &vo);
    if (st) return st;
    const dm_video_info *ri = dm_video_reader_info(w->reader);
    if (ri->width != info->width || ri->height != info->height)
        return dm_error_set(DM_ERR_DECODE, "%s: frame size %dx%d differs from the probe's %dx%d",
                            info->path, ri->width, ri->height, info->width, info->height);
    int64_t start = job->matting.enabled ? ch->context_begin : ch->begin;
    if ((st = dm_video_seek(w->reader, start))) return st;
    w->stats.decode_s += pl_now() - t0;
    /* From here the decode thread reads ahead, up to the chunk's end. */
    if ((st = pl_prefetch_start(&w->pf, w->reader, start, ch->end))) return st;
    int H = info->height, W = info->width;
    if (job->matting.enabled) {
        if (w->rs && (w->rs_h != H || w->rs_w != W)) {
            rvm_state_free(w->rs);
            w->rs = NULL;
        }
        if (!w->rs) {
            st = rvm_state_init(&w->rs, w->rvm, w->be, H, W, job->matting.downsample_ratio);
            if (st) return st;
            w->rs_h = H, w->rs_w = W;
        }
        /* every chunk starts cold, warmed only by its context */
        if ((st = rvm_state_reset(w->rs))) return st;
        if (w->ref_rs) { /* the reference follows the device state only until verified */
            rvm_state_free(w->ref_rs);
            w->ref_rs = NULL;
        }
    }
    if (job->depth.enabled && (!w->dc || w->dc_h != H || w->dc_w != W)) {
        da2_ctx_free(w->dc);
        w->dc = NULL;
        if ((st = da2_ctx_init_batch(&w->dc, w->da2, w->be, H, W, job->depth.input_size,
                                     w->batch)))
            return st;
        w->dc_h = H, w->dc_w = W;
    }
    for (int64_t f = start; f < ch->begin; f++) {
        if (stop_requested(w)) return DM_OK; /* the block loop sees the flag too */
        if ((st = read_frame(w, info->path, f, NULL, NULL))) return st;
        double t1 = pl_now();
        st = rvm_forward_u8(w->rs, w->rgb, NULL, w->pha_f);
        w->stats.inference_s += pl_now() - t1;
        if (st) return st;
        if ((st = verify_rvm(w, info, f, 0))) return st;
    }
    return DM_OK;
}

static inline float clamp01(float x) {
    return x < 0.f ? 0.f : (x > 1.f ? 1.f : x);
}

/* pl_verify_compare, counted in this rank's statistics. */
static dm_status verify_compare(pl_worker *w, dm_tol_model model, const char *stage,
                                const char *path, int64_t frame, const float *got,
                                const float *ref, size_t n) {
    w->stats.verified_frames++;
    return pl_verify_compare(w->be, model, stage, path, frame, got, ref, n);
}

/* Is this frame checked against the CPU reference? (runtime.verify; device backends only) */
static int verify_wanted(const pl_worker *w, int done_already) {
    const dm_verify_mode m = w->c->job.runtime.verify;
    if (w->be->device == DM_DEVICE_CPU || m == DM_VERIFY_OFF) return 0;
    return m == DM_VERIFY_ALL || !done_already;
}

/* RVM: the rank's first frame after a cold start (runtime.verify first_frame) or every frame
 * (all), recomputed on the CPU from the same cold state. */
static dm_status verify_rvm(pl_worker *w, const dm_video_info *info, int64_t frame, int fgr) {
    if (!verify_wanted(w, w->verified_rvm)) return DM_OK;
    const double t0 = pl_now();
    const size_t px = (size_t)info->width * info->height;
    dm_status st = ref_models(w, 1, info->height, info->width);
    if (!st && w->c->job.runtime.verify != DM_VERIFY_ALL) st = rvm_state_reset(w->ref_rs);
    float *rf = w->ref_out, *rp = w->ref_out + 3 * px;
    if (!st) st = rvm_forward_u8(w->ref_rs, w->rgb, fgr ? rf : NULL, rp);
    if (!st) st = verify_compare(w, DM_TOL_RVM, "RVM alpha", info->path, frame, w->pha_f, rp, px);
    if (!st && fgr) st = verify_compare(w, DM_TOL_RVM, "RVM foreground", info->path, frame, w->fgr_f, rf, 3 * px);
    w->verified_rvm = 1;
    w->stats.verify_s += pl_now() - t0;
    return st;
}

/* RVM's non-finite guard: a recurrent frame cannot be recomputed alone (its state came from
 * the frames before), so a NaN/Inf output stops the video with a message that says so. */
static dm_status guard_rvm(pl_worker *w, const dm_video_info *info, int64_t frame, size_t px,
                           int fgr) {
    int64_t bad = pl_count_nonfinite(w->pha_f, px);
    if (fgr) bad += pl_count_nonfinite(w->fgr_f, 3 * px);
    if (!bad) return DM_OK;
    return dm_error_set(DM_ERR_NONFINITE, "%s: frame %lld: RVM output has %lld NaN/Inf values "
                        "(%s backend, %s); nothing of this frame is written%s", info->path,
                        (long long)frame, (long long)bad, w->be->ops->name,
                        dm_dtype_name(w->be->precision),
                        w->be->precision != DM_DTYPE_F32 ? ": run with runtime.precision "
                                                           "float32" : "");
}

/* DA-V2 after the device's depth: verification (first frame / all) and the non-finite guard:
 * a frame with NaN/Inf in float16/bfloat16 is recomputed in float32 on the CPU reference and
 * counted; still non-finite (or already float32) -> an error naming video, frame, stage. */
static dm_status check_da2(pl_worker *w, const dm_video_info *info, int64_t frame,
                           const uint8_t *rgb, float *depth, size_t n) {
    const dm_job *job = &w->c->job;
    const int model_size = job->depth.output_size == DM_DEPTH_SIZE_MODEL;
    const int verify = verify_wanted(w, w->verified_da2);
    int64_t bad = pl_count_nonfinite(depth, n);
    if (!verify && (!bad || w->be->precision == DM_DTYPE_F32)) {
        if (bad) goto nonfinite;
        return DM_OK;
    }
    const double t0 = pl_now();
    dm_status st = ref_models(w, 0, info->height, info->width);
    if (!st) st = da2_infer_u8_batch(w->ref_dc, &rgb, 1, w->ref_out, model_size);
    if (!st && verify && !bad)
        st = verify_compare(w, DM_TOL_DA2, "DA-V2 depth", info->path, frame, depth, w->ref_out, n);
    w->verified_da2 = 1;
    w->stats.verify_s += pl_now() - t0;
    if (st) return st;
    if (!bad) return DM_OK;
    if (w->be->precision != DM_DTYPE_F32 && !pl_count_nonfinite(w->ref_out, n)) {
        memcpy(depth, w->ref_out, n * sizeof(float));
        w->stats.recomputed_frames++;
        fprintf(stderr, "depthmatte: %s: frame %lld: %lld NaN/Inf depth values in %s; "
                "recomputed in float32\n", info->path, (long long)frame, (long long)bad,
                dm_dtype_name(w->be->precision));
        return DM_OK;
    }
nonfinite:
    return dm_error_set(DM_ERR_NONFINITE, "%s: frame %lld: DA-V2 depth has %lld NaN/Inf values "
                        "in float32 (%s backend); nothing of this frame is written", info->path,
                        (long long)frame, (long long)bad, w->be->ops->name);
}

/* DA-V2 on the nb frames waiting for the batch (rows t0 .. t0 + nb - 1 of the block, video
 * frames frame0 ..): one forward pass, then per frame runtime.verify / the non-finite guard
 * and the conversion to the output dtype. */
static dm_status depth_batch(pl_worker *w, const dm_video_info *info, int64_t frame0,
                             int64_t t0, int nb, size_t px) {
    const dm_job *job = &w->c->job;
    const int model_size = job->depth.output_size == DM_DEPTH_SIZE_MODEL;
    const int depth_f16 = job->depth.dtype == DM_DTYPE_F16;
    const uint8_t *rgb[1024];
    for (int j = 0; j < nb; j++) rgb[j] = w->batch > 1 ? w->batch_rgb + (size_t)j * px * 3 : w->rgb;
    size_t dpx = px;
    if (model_size) {
        int h, wd;
        da2_ctx_input_dims(w->dc, &h, &wd);
        dpx = (size_t)h * wd;
    }
    dm_status st = da2_infer_u8_batch(w->dc, rgb, nb, w->depth_f, model_size);
    if (st) return st;
    for (int j = 0; j < nb; j++) {
        float *d = w->depth_f + (size_t)j * dpx;
        const int64_t t = t0 + j;
        if ((st = check_da2(w, info, frame0 + j, rgb[j], d, dpx))) return st;
        for (size_t i = 0; i < dpx; i++) {
            if (depth_f16) ((uint16_t *)w->depth)[t * dpx + i] = dm_f32_to_f16(d[i]);
            else ((float *)w->depth)[t * dpx + i] = d[i];
        }
    }
    return DM_OK;
}

dm_status pl_worker_block(pl_worker *w, const pl_block *b, dm_h5_block *out) {
    const pl_ctx *c = w->c;
    const dm_job *job = &c->job;
    const pl_chunk *ch = &c->chunks[b->chunk];
    const dm_video_info *info = &c->inputs[ch->video].info;
    dm_status st;
    *out = (dm_h5_block){.video = -1, .failed_video = -1};
    if (stop_requested(w)) return DM_OK;
    if (b->first && (st = start_chunk(w, ch, info))) return st;
    if (!w->reader)
        return dm_error_set(DM_ERR_ARG, "%s: block without an open chunk", info->path);
    const size_t px = (size_t)info->width * info->height;
    const int alpha_u8 = job->output.alpha_dtype == DM_DTYPE_U8;
    const int want_fgr = job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_FOREGROUND);
    const int want_alpha = job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_ALPHA);
    int64_t t = 0;
    int nb = 0; /* frames waiting for the DA-V2 batch: rows t - nb .. t - 1 */
    for (; t < b->count; t++) {
        /* A stop request ends the block after the frame in flight: the rows done so far are
         * written (with their done markers) in this round. */
        if (stop_requested(w)) break;
        int64_t frame = b->begin + t;
        if ((st = read_frame(w, info->path, frame, &w->pts[t], &w->ts[t]))) return st;
        double t1 = pl_now();
        if (job->matting.enabled) {
            st = rvm_forward_u8(w->rs, w->rgb, want_fgr ? w->fgr_f : NULL, w->pha_f);
            if (st) return st;
            if ((st = verify_rvm(w, info, frame, want_fgr))) return st;
            if ((st = guard_rvm(w, info, frame, px, want_fgr))) return st;
            /* alpha uint8 = round(clamp(a, 0, 1) * 255): lrintf rounds half to even, which
             * only matters for exact .5 values that float alphas essentially never hit. */
            if (want_alpha) {
                for (size_t i = 0; i < px; i++) {
                    float a = clamp01(w->pha_f[i]);
                    if (alpha_u8) ((uint8_t *)w->alpha)[t * px + i] = (uint8_t)lrintf(a * 255.f);
                    else ((uint16_t *)w->alpha)[t * px + i] = dm_f32_to_f16(a);
                }
            }
            if (want_fgr) {
                uint8_t *dst = w->fgr + (size_t)t * px * 3;
                for (size_t i = 0; i < px; i++)
                    for (int k = 0; k < 3; k++)
                        dst[i * 3 + k] = (uint8_t)lrintf(clamp01(w->fgr_f[k * px + i]) * 255.f);
            }
        }
        if (job->depth.enabled) {
            if (w->batch > 1) /* the prefetch slot is reused: keep a copy for the batch */
                memcpy(w->batch_rgb + (size_t)nb * px * 3, w->rgb, px * 3);
            nb++;
            if (nb == w->batch || t + 1 == b->count || stop_requested(w)) {
                if ((st = depth_batch(w, info, b->begin + t + 1 - nb, t + 1 - nb, nb, px)))
                    return st;
                nb = 0;
            }
        }
        w->stats.inference_s += pl_now() - t1;
    }
    w->stats.frames += t;
    if (w->be->device == DM_DEVICE_CUDA) { /* peak device memory in use, sampled per block */
        size_t fr = 0, tot = 0;
        int dev = 0;
        if (!dm_cuda_backend_device(w->be, &dev) && !dm_cuda_device_memory(dev, &fr, &tot)) {
            double mb = (double)(tot - fr) / (1024.0 * 1024.0);
            if (mb > w->stats.device_peak_mb) w->stats.device_peak_mb = mb;
        }
    }
    if (t == 0) return DM_OK;
    *out = (dm_h5_block){.video = ch->video,
                         .begin = b->begin,
                         .count = t,
                         .alpha = want_alpha ? w->alpha : NULL,
                         .foreground = want_fgr ? w->fgr : NULL,
                         .depth = job->depth.enabled ? w->depth : NULL,
                         .pts = w->pts,
                         .time_s = w->ts,
                         .failed_video = -1};
    return DM_OK;
}
