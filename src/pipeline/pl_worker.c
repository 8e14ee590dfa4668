/* The per-rank worker: backend (binding, supports query), the job's stages loaded once
 * (pl_stage.h), buffers sized once from the largest frame of this rank's units. The round body
 * (one decode of a unit's frames through every stage, the state hand-over) is pl_run_unit.c.
 * Nothing is allocated per frame; per chunk only the reader (and model contexts when the frame
 * size changes). Decoding runs ahead on the prefetch thread (pl_prefetch.c) into a ring of
 * preallocated frames; stats: decode_s = the thread's decode time (overlapped), wait_s = time
 * the networks waited for a decoded frame. With the write/compute overlap (pl_overlap.c) the
 * units compute on a thread of their own and the rows are double-buffered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_emu.h"
#include "depthmatte/da2.h"
#include "depthmatte/gpu_bind.h"
#include "depthmatte/vda.h"
#include "pl_worker_impl.h"

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
    if (job->depth.enabled)
        n += pl_is_vda_model(job) ? vda_required_ops(ops + n) : da2_required_ops(ops + n);
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
    /* every rank learns whether all could allocate, so none is left alone in the Allgather */
    int ok = all != NULL, all_ok = 0;
    int rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, local);
    if (rc == MPI_SUCCESS && all_ok)
        rc = MPI_Allgather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine, MPI_CHAR,
                           local);
    MPI_Comm_free(&local);
    if (rc != MPI_SUCCESS || !all_ok) {
        free(all);
        return dm_error_set(rc != MPI_SUCCESS ? DM_ERR_MPI : DM_ERR_NOMEM,
                            rc != MPI_SUCCESS ? "MPI_Allgather(GPU UUIDs) failed"
                                              : "out of memory for the node's GPU UUIDs");
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
    if (sim && w->be && w->be->device != DM_DEVICE_CUDA) {
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

/* runtime.backend: cpu; cuda (device by dm_gpu_bind); auto = cuda when a GPU is visible, the
 * build has GPU code for it (dm_backend_cuda_create's architecture check: DM_ERR_UNSUPPORTED
 * means the CPU, with one line saying why) and it runs every op of the job
 * (dm_backend_supports_all), else cpu; emulated (tests; the fault
 * hook DM_TEST_EMU_FAULT, see backend_emu.h, lets tests prove that verification catches a
 * wrong op). The node's collective (node_gpus) runs on every rank whenever the job says cuda or
 * auto, whatever this rank's own device count or error: ranks of one node may see different
 * devices (CUDA_VISIBLE_DEVICES per rank, a failing driver on one), and a rank that skipped
 * it would leave the others waiting in it for ever. Its own error is returned after it (the
 * caller agrees on the outcome). Test hook DM_TEST_CUDA_DEVICE_COUNT=N (docs/operations.md):
 * this rank's device count is N (the binding runs; creating the backend then fails as on a
 * machine without a driver, or is refused under DM_TEST_CUDA_CC=X.Y, backend_cuda.c). The
 * backend is created after the collective, so that refusal and its fallback change no rank's
 * collectives. */
static dm_status make_backend(pl_worker *w, MPI_Comm comm) {
    const dm_runtime_config *rt = &w->c->job.runtime;
    if (rt->backend == DM_BACKEND_CHOICE_EMULATED)
        return dm_backend_emu_create(rt->threads, rt->precision, getenv("DM_TEST_EMU_FAULT"),
                                     &w->be);
    int n = 0;
    dm_status cst = rt->backend == DM_BACKEND_CHOICE_CPU ? DM_ERR_UNSUPPORTED
                                                         : dm_cuda_device_count(&n);
    char why[1024] = ""; /* the architecture refusal names the list twice */
    if (cst) snprintf(why, sizeof why, "%s", dm_error_message());
    const char *fake = getenv("DM_TEST_CUDA_DEVICE_COUNT");
    if (fake && rt->backend != DM_BACKEND_CHOICE_CPU) n = atoi(fake), cst = DM_OK;
    int lr = 0, ls = 1, distinct = 0, dev = 0;
    dm_status st = DM_OK;
    if (rt->backend != DM_BACKEND_CHOICE_CPU &&
        (st = node_gpus(comm, cst ? 0 : n, &lr, &ls, &distinct)))
        return st;
    int use_cuda = rt->backend == DM_BACKEND_CHOICE_CUDA ||
                   (rt->backend == DM_BACKEND_CHOICE_AUTO && !cst && n > 0);
    /* a GPU that cannot be used (e.g. a driver too old for this build): say so; a build
     * without CUDA (DM_ERR_UNSUPPORTED) is a CPU build, nothing to report */
    if (rt->backend == DM_BACKEND_CHOICE_AUTO && cst && cst != DM_ERR_UNSUPPORTED)
        fprintf(stderr, "depthmatte: runtime.backend auto: running on the CPU: %s\n", why);
    if (use_cuda) {
        if (cst)
            return dm_error_set(DM_ERR_BACKEND, "runtime.backend cuda: %s", why);
        /* (the cause is copied first: dm_error_set must not read the buffer it writes) */
        if ((st = dm_gpu_bind(lr, ls, n, distinct, rt->share_gpus, &dev))) {
            snprintf(why, sizeof why, "%s", dm_error_message());
            return dm_error_set(st, "runtime.backend %s: %s",
                                rt->backend == DM_BACKEND_CHOICE_AUTO ? "auto" : "cuda", why);
        }
        w->stats.gpu = dev;
        if ((st = dm_backend_cuda_create(dev, rt->precision, &w->be))) {
            snprintf(why, sizeof why, "%s", dm_error_message());
            /* auto: a device this build has no GPU code for (or a build without CUDA) runs on
             * the CPU; no collective follows here, so falling back adds or skips none */
            if (rt->backend == DM_BACKEND_CHOICE_AUTO && st == DM_ERR_UNSUPPORTED) {
                fprintf(stderr, "depthmatte: runtime.backend auto: running on the CPU: %s\n", why);
                w->be = NULL;
                w->stats.gpu = -1;
                use_cuda = 0;
            } else {
                return dm_error_set(st, "runtime.backend %s: device %d: %s",
                                    rt->backend == DM_BACKEND_CHOICE_AUTO ? "auto" : "cuda", dev,
                                    why);
            }
        }
    }
    if (use_cuda) {
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

/* Largest source frame (pixels) among this rank's units, and the most rows of one unit. */
static void unit_sizes(const pl_ctx *c, size_t *px, int64_t *rows) {
    *px = 1, *rows = 1;
    for (int i = 0; i < c->n_blocks; i++) {
        const dm_video_info *in = &c->inputs[c->chunks[c->blocks[i].chunk].video].info;
        if ((size_t)in->width * in->height > *px) *px = (size_t)in->width * in->height;
        if (c->blocks[i].count > *rows) *rows = c->blocks[i].count;
    }
}

dm_status pl_worker_init(pl_worker **out, pl_ctx *c, MPI_Comm comm) {
    *out = NULL;
    pl_worker *w = calloc(1, sizeof *w);
    if (!w) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    w->c = c;
    w->open_chunk = w->open_video = -1;
    w->reader_pos = -1;
    w->carry_video = -1;
    *out = w;
    w->stats.gpu = -1;
    /* node_local is collective: it runs on every rank, also after this rank failed to make
     * its backend (the caller agrees on the outcome after init); the first error is kept */
    dm_status st = make_backend(w, comm);
    if (st) {
        char why[1024];
        snprintf(why, sizeof why, "%s", dm_error_message());
        (void)node_local(w, comm);
        return dm_error_set(st, "%s", why);
    }
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
    size_t px;
    int64_t cap;
    unit_sizes(c, &px, &cap);
    /* The stages, in push order: matting first, then depth (any combination, one decode). */
    if (!(w->video_recomputed = calloc(c->n_inputs > 0 ? c->n_inputs : 1, sizeof(int64_t))))
        return dm_error_set(DM_ERR_NOMEM, "out of memory");
    pl_stage_env env = {c, w->be, &w->stats, w->video_recomputed, px};
    if (job->matting.enabled && (st = pl_stage_rvm_create(&w->stage[w->n_stages++], &env)))
        return st;
    if (job->depth.enabled) {
        st = c->is_vda                ? pl_stage_vda_create(&w->stage[w->n_stages++], &env)
             : pl_is_vda_stream(job) ? pl_stage_vda_stream_create(&w->stage[w->n_stages++], &env)
                                     : pl_stage_da2_create(&w->stage[w->n_stages++], &env);
        if (st) return st;
    }
    for (int i = 0; i < w->n_stages; i++) {
        const pl_stage_ops *o = w->stage[i]->ops;
        if (o->windowed) w->windowed = 1;
        if (o->state_pack && !w->handover) w->handover = w->stage[i];
    }
    /* Depth rows at model size (da2_input_size, multiples of 14) may exceed the source's. */
    size_t dpx = px;
    const int model_size = job->depth.enabled && job->depth.output_size == DM_DEPTH_SIZE_MODEL;
    for (int i = 0; i < c->n_blocks && model_size; i++) {
        const dm_video_info *in = &c->inputs[c->chunks[c->blocks[i].chunk].video].info;
        int mh, mw;
        da2_input_size(in->height, in->width, job->depth.input_size, &mh, &mw);
        if ((size_t)mh * mw > dpx) dpx = (size_t)mh * mw;
    }
    if ((st = pl_prefetch_init(&w->pf, px * 3))) return st;
    w->px = px;
    /* The write/compute overlap (pl_overlap.c): on unless DM_OVERLAP=0 (debugging, the
     * benchmark's side-by-side run); it needs a second row set. */
    const char *ov = getenv("DM_OVERLAP");
    w->overlap = !(ov && !strcmp(ov, "0"));
    /* only the datasets of the job (a VDA unit holds up to 30 rows) */
    const int alpha = job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_ALPHA);
    const int fgr = job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_FOREGROUND);
    for (int k = 0; k < 1 + w->overlap; k++) {
        pl_rowset *rs = &w->set[k];
        rs->rows.cap = cap;
        rs->rows.alpha = malloc(alpha ? (size_t)cap * px * 2 : 1);
        rs->rows.fgr = malloc(fgr ? (size_t)cap * px * 3 : 1);
        rs->rows.depth = malloc(job->depth.enabled ? (size_t)cap * dpx * 4 : 1);
        rs->pts = malloc((size_t)cap * sizeof *rs->pts);
        rs->ts = malloc((size_t)cap * sizeof *rs->ts);
        if (!rs->rows.alpha || !rs->rows.fgr || !rs->rows.depth || !rs->pts || !rs->ts)
            return dm_error_set(DM_ERR_NOMEM, "out of memory for frame buffers (%d x %zu pixels "
                                "x %lld rows)", 1 + w->overlap, px, (long long)cap);
    }
    /* Frames decoded past a unit's end for the next unit of the chunk (windowed stages look
     * ahead: VDA decodes 8 frames past its rows, which are the next window's RVM rows). */
    if (w->windowed) {
        for (int k = 0; k < 2; k++) {
            w->keep[k].rgb = malloc((size_t)PL_KEEP_FRAMES * px * 3);
            if (!w->keep[k].rgb)
                return dm_error_set(DM_ERR_NOMEM, "out of memory for %d look-ahead frames",
                                    PL_KEEP_FRAMES);
        }
    }
    if (w->overlap && (st = pl_compute_init(w))) return st;
    if (w->handover) {
        w->msg_cap = PL_HDR * sizeof(int64_t) + w->handover->ops->state_cap(w->handover);
        w->msg = malloc(w->msg_cap);
        w->carry = malloc(w->msg_cap);
        if (!w->msg || !w->carry)
            return dm_error_set(DM_ERR_NOMEM, "out of memory for the state hand-over");
    }
    return DM_OK;
}

void pl_worker_end_chunk(pl_worker *w) {
    if (w && w->reader) {
        /* The decode thread owns the reader until it is joined. */
        w->stats.decode_s += pl_prefetch_stop(&w->pf);
        dm_video_close(w->reader);
        w->reader = NULL;
    }
    if (w) {
        w->open_chunk = w->open_video = -1;
        w->reader_pos = -1;
        w->pf_on = 0;
        w->keep[0].n = w->keep[1].n = 0;
    }
}

void pl_worker_free(pl_worker *w) {
    if (!w) return;
    pl_worker_discard(w);
    pl_compute_free(w);
    pl_worker_end_chunk(w);
    for (int i = 0; i < w->n_stages; i++) pl_stage_free(w->stage[i]);
    if (w->be) dm_backend_destroy(w->be);
    pl_prefetch_free(&w->pf);
    for (int k = 0; k < 2; k++) {
        pl_rowset *rs = &w->set[k];
        free(rs->rows.alpha), free(rs->rows.fgr), free(rs->rows.depth), free(rs->pts), free(rs->ts);
    }
    free(w->keep[0].rgb), free(w->keep[1].rgb), free(w->msg), free(w->carry);
    free(w->video_recomputed);
    free(w);
}

const int64_t *pl_worker_video_recomputed(const pl_worker *w) {
    return w->video_recomputed;
}

dm_h5_rank_stats *pl_worker_stats(pl_worker *w) {
    return &w->stats;
}
