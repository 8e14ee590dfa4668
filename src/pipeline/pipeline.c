/* dm_pipeline_run: setup, the round loop, statistics, finish (include/depthmatte/pipeline.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "depthmatte/cpu_tune.h"
#include "depthmatte/da2.h"
#include "pl_internal.h"

/* All ranks agree on a status reached independently (setup, model loading, file creation):
 * the lowest failing rank reports its message, everybody returns its status. */
static dm_status agree(dm_status st, int rank, dm_pipeline_result *res) {
    int mine = st ? rank : INT_MAX, first = INT_MAX;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) {
        res->report = res->fatal = 1;
        return dm_error_set(DM_ERR_MPI, "MPI_Allreduce of a status failed");
    }
    if (first == INT_MAX) return DM_OK;
    int code = st;
    MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD);
    res->report = rank == first;
    return (dm_status)code;
}

/* SHA-256 of each enabled model's weights: read once on rank 0, broadcast so that every rank
 * writes identical attribute values (collective attribute writes). */
typedef struct weights_sums {
    char matting[65], depth[65];
} weights_sums;

static dm_status hash_weights(const pl_ctx *c, weights_sums *ws) {
    memset(ws, 0, sizeof *ws);
    int32_t st = DM_OK;
    if (c->rank == 0) {
        if (c->job.matting.enabled) st = pl_sha256_file(c->job.matting.weights, ws->matting);
        if (!st && c->job.depth.enabled) st = pl_sha256_file(c->job.depth.weights, ws->depth);
    }
    if (MPI_Bcast(&st, 1, MPI_INT32_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS ||
        MPI_Bcast(ws, (int)sizeof *ws, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return dm_error_set(DM_ERR_MPI, "MPI_Bcast of the weights checksums failed");
    return (dm_status)st;
}

static void make_layout(const dm_job *job, dm_h5_layout *l) {
    memset(l, 0, sizeof *l);
    l->alpha = job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_ALPHA);
    l->alpha_dtype = job->output.alpha_dtype;
    l->foreground = job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_FOREGROUND);
    l->depth = job->depth.enabled;
    l->depth_dtype = job->depth.dtype;
    l->matting_model = job->matting.model == DM_MATTING_RVM_RESNET50 ? "rvm_resnet50"
                                                                      : "rvm_mobilenetv3";
    l->depth_model = pl_depth_model_name(job);
    l->depth_metric = job->depth.model == DM_DEPTH_VDA_VITS_METRIC;
    if (pl_is_vda_model(job)) l->depth_mode = pl_is_vda_stream(job) ? "stream" : "offline";
    l->block_rows = pl_is_vda(job) ? 32 : 0; /* a VDA window writes up to 32 rows */
    l->chunk_frames = job->output.chunk_frames;
    l->gzip = job->output.compression;
}

static dm_status open_output(pl_ctx *c, dm_h5_file **f) {
    dm_h5_layout l;
    make_layout(&c->job, &l);
    weights_sums ws;
    dm_status hs = hash_weights(c, &ws);
    if (hs) return hs;
    l.matting_sha256 = ws.matting;
    l.depth_sha256 = ws.depth;
    dm_h5_video *v = calloc(c->n_inputs > 0 ? c->n_inputs : 1, sizeof *v);
    if (!v) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n_inputs; i++) {
        const pl_input *in = &c->inputs[i];
        const dm_video_info *vi = &in->info;
        v[i] = (dm_h5_video){vi->path,       vi->frames,        vi->fps_num, vi->fps_den,
                             vi->width,      vi->height,        vi->codec,   vi->rotation,
                             vi->sar_num,    vi->sar_den,       vi->time_base_num,
                             vi->time_base_den, !in->ok,        in->ok ? NULL : in->error,
                             0, 0, {0}, in->ok ? vi->stream_index : -1};
        v[i].sel = (dm_h5_selection){vi->images,        vi->frame_step,     c->job.max_res,
                                     vi->source_frames, vi->source_fps_num, vi->source_fps_den,
                                     vi->source_width,  vi->source_height};
        /* depth.output_size model (da2_vits): rows on the network's input grid, no resize. */
        if (c->job.depth.enabled && c->job.depth.output_size == DM_DEPTH_SIZE_MODEL && in->ok)
            da2_input_size(vi->height, vi->width, c->job.depth.input_size, &v[i].depth_height,
                           &v[i].depth_width);
    }
    dm_h5_meta meta = {c->config_text, c->size};
    /* --resume of a missing file starts fresh (e.g. a requeued job that never wrote). Rank 0
     * decides so that every rank takes the same branch. */
    int exists = 0;
    struct stat sb;
    if (c->rank == 0) exists = stat(c->job.output.path, &sb) == 0;
    MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
    dm_status st;
    if (c->opt.resume && exists)
        st = dm_h5_open_resume(c->job.output.path, MPI_COMM_WORLD, &meta, &l, v, c->n_inputs, f);
    else
        st = dm_h5_create(c->job.output.path, MPI_COMM_WORLD, &meta, &l, v, c->n_inputs, f);
    free(v);
    return st;
}

/* --resume: chunks whose rows are all done are skipped (their blocks become empty rounds). A
 * partly done chunk is recomputed whole, so that its RVM state sees the same frames as in an
 * uninterrupted run and the rewritten rows are identical. */
static dm_status mark_done_chunks(pl_ctx *c, dm_h5_file *f, uint8_t *skip) {
    uint8_t *done = NULL;
    int64_t cap = 0;
    for (int k = 0; k < c->n_chunks; k++) {
        const pl_chunk *ch = &c->chunks[k];
        if (ch->rank != c->rank) continue;
        int64_t T = c->inputs[ch->video].info.frames;
        if (T > cap) {
            free(done);
            done = malloc((size_t)T);
            cap = T;
            if (!done) return dm_error_set(DM_ERR_NOMEM, "out of memory");
        }
        dm_status st = dm_h5_read_done(f, ch->video, done);
        if (st) {
            free(done);
            return st;
        }
        int all = 1;
        /* VDA: a window needs the alignment chain from window 0, so only videos done entirely
         * are skipped (the same decision on every rank: it reads the same markers). */
        int64_t from = c->is_vda ? 0 : ch->begin, to = c->is_vda ? T : ch->end;
        for (int64_t t = from; t < to && all; t++) all = done[t] != 0;
        skip[k] = (uint8_t)all;
    }
    free(done);
    return DM_OK;
}

static int count_failed(const pl_ctx *c, const dm_h5_file *f) {
    int n = 0;
    for (int v = 0; v < c->n_inputs; v++) n += dm_h5_video_failed(f, v);
    return n;
}

/* What the loop knows when it picks a round's unit: skip flags (--resume), this rank's failed
 * chunks, the videos failed so far (dm_h5_video_failed, from the completed exchanges). */
typedef struct round_pick {
    const pl_block *b, *next; /* this rank's unit of the round / of the round after (VDA) */
    int runs, next_runs;      /* 0: the unit is skipped (done, or its video failed) */
    int bi;                   /* block units: index after b (the loop's cursor) */
} round_pick;

static round_pick pick_round(const pl_ctx *c, const dm_h5_file *f, const uint8_t *skip,
                             const uint8_t *chunk_failed, const uint8_t *video_skip,
                             const int *unit_of_round, int bi, int round) {
    round_pick p = {NULL, NULL, 0, 0, bi};
    if (c->is_vda) {
        const int i = unit_of_round[round];
        const int ni = round + 1 < c->n_rounds ? unit_of_round[round + 1] : -1;
        p.b = i >= 0 ? &c->blocks[i] : NULL;
        p.next = ni >= 0 ? &c->blocks[ni] : NULL;
        const int v = p.b ? c->chunks[p.b->chunk].video : -1;
        const int nv = p.next ? c->chunks[p.next->chunk].video : -1;
        p.runs = p.b && !video_skip[v] && !dm_h5_video_failed(f, v);
        p.next_runs = p.next && !video_skip[nv] && !dm_h5_video_failed(f, nv);
        return p;
    }
    /* skipped (--resume) and failed chunks take no round */
    while (p.bi < c->n_blocks) {
        int k = c->blocks[p.bi].chunk;
        if (!skip[k] && !chunk_failed[k] && !dm_h5_video_failed(f, c->chunks[k].video)) break;
        p.bi++;
    }
    if (p.bi < c->n_blocks) p.b = &c->blocks[p.bi++], p.runs = 1;
    return p;
}

/* Test hook (docs/operations.md): DM_TEST_WRITE_FAIL=R:N makes rank R's write of round N fail
 * (as a full disk would) while its next unit computes. */
static int test_write_fail(const pl_ctx *c, int round) {
    const char *e = getenv("DM_TEST_WRITE_FAIL");
    int r = -1, n = -1;
    return e && sscanf(e, "%d:%d", &r, &n) == 2 && r == c->rank && n == round;
}

/* The round loop. Returns DM_OK, a video error (all ranks stop after the round that reported
 * it, unless --keep-going) or an HDF5/MPI error (res->fatal). */
static dm_status run_rounds(pl_ctx *c, pl_worker *w, pl_watchdog *wd, dm_h5_file *f,
                            uint8_t *skip, dm_pipeline_result *res, double t0) {
    dm_h5_rank_stats *stats = pl_worker_stats(w);
    uint8_t *chunk_failed = calloc(c->n_chunks > 0 ? c->n_chunks : 1, 1);
    if (!chunk_failed) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    dm_status local = DM_OK; /* this rank's own video error (reported when not keep-going) */
    char local_msg[1024] = "";
    int64_t done = 0;
    /* Rows already done (--resume) count as progress from the start. */
    int64_t skipped = 0;
    for (int k = 0; k < c->n_chunks; k++)
        if (skip[k] && c->chunks[k].rank == c->rank) skipped += c->chunks[k].end - c->chunks[k].begin;
    MPI_Allreduce(&skipped, &done, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    int bi = 0;
    dm_status st = DM_OK;
    /* VDA: skip flags per video (a chunk of a fully done video marks its video). */
    uint8_t *video_skip = calloc(c->n_inputs > 0 ? c->n_inputs : 1, 1);
    int *unit_of_round = calloc(c->n_rounds > 0 ? c->n_rounds : 1, sizeof(int));
    if (!video_skip || !unit_of_round) {
        free(chunk_failed), free(video_skip), free(unit_of_round);
        return dm_error_set(DM_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < c->n_chunks; k++)
        if (skip[k]) video_skip[c->chunks[k].video] = 1;
    /* VDA units run in fixed rounds (the hand-over of the alignment state is per round) */
    for (int r = 0; r < c->n_rounds; r++) unit_of_round[r] = -1;
    for (int i = 0; i < c->n_blocks && c->is_vda; i++)
        if (c->blocks[i].round >= 0 && c->blocks[i].round < c->n_rounds)
            unit_of_round[c->blocks[i].round] = i;
    for (int round = 0; round < c->n_rounds; round++) {
        dm_h5_block blk = {.video = -1, .failed_video = -1};
        int fv = -1;        /* video that failed on this rank in this round */
        dm_status vs = DM_OK;
        pl_watchdog_round_work(wd);
        /* The unit is picked again with what the last exchange taught (a unit started early
         * on the compute thread for another pick is discarded by pl_worker_round). */
        const round_pick p =
            pick_round(c, f, skip, chunk_failed, video_skip, unit_of_round, bi, round);
        const pl_block *b = p.b;
        const int runs = p.runs;
        bi = p.bi;
        dm_status fs = pl_worker_round(w, round, b, runs, p.next, p.next_runs, &blk, &fv, &vs);
        if (fs) {
            res->report = res->fatal = 1;
            st = fs;
            break;
        }
        if (b && runs && !c->is_vda) {
            const pl_chunk *ch = &c->chunks[b->chunk];
            if (vs) chunk_failed[b->chunk] = 1;
            if (vs || b->begin + b->count >= ch->end) pl_worker_end_chunk(w);
        }
        if (fv >= 0) {
            /* The video is unusable: tell everybody in this round's exchange. */
            snprintf(local_msg, sizeof local_msg, "%s", dm_error_message());
            if (!local) local = vs;
            blk = (dm_h5_block){.video = -1, .failed_video = fv, .error = local_msg};
            /* Without --keep-going the job stops after this round and the rank reports the
             * message once on exit (dm_pipeline_result.report): printed here too it would be
             * two identical lines. */
            if (c->opt.keep_going)
                fprintf(stderr, "depthmatte: rank %d: %s (video skipped: --keep-going)\n", c->rank,
                        local_msg);
        }
        /* Overlap: the next round's unit, as far as this rank knows now, computes on the
         * compute thread while this round's rows are written (pl_overlap.c). Not when the job
         * stops after this round anyway (this rank's video failed without --keep-going, or a
         * stop request: a unit without a hand-over would not run). */
        if (pl_worker_overlap(w) && round + 1 < c->n_rounds && !(fv >= 0 && !c->opt.keep_going) &&
            !(c->opt.stop && *c->opt.stop && !c->is_vda)) {
            const round_pick q =
                pick_round(c, f, skip, chunk_failed, video_skip, unit_of_round, bi, round + 1);
            if (q.b && q.runs) pl_worker_speculate(w, q.b);
        }
        /* Every rank checks in before the collective write: a lost rank or host is named
         * instead of hanging the job in MPI-IO. */
        double tw = pl_now(); /* write_s counts the check-in's wait for the others too */
        if ((st = pl_watchdog_check_in(wd, round))) {
            res->report = res->fatal = res->stalled = 1;
            break;
        }
        int failed_before = count_failed(c, f);
        int64_t n = 0;
        if (test_write_fail(c, round))
            st = dm_error_set(DM_ERR_H5, "%s: write of round %d failed (test hook "
                              "DM_TEST_WRITE_FAIL)", c->job.output.path, round);
        else
            st = dm_h5_write_round(f, &blk, &n);
        const double tw1 = pl_now();
        stats->write_s += tw1 - tw;
        pl_worker_note_write(w, tw, tw1);
        if (st) {
            res->report = res->fatal = 1;
            break;
        }
        done += n;
        res->frames_written += n;
        pl_progress(c, done, t0, 0);
        /* Graceful stop: every rank learns in the same round whether any rank was asked to
         * stop, so all leave the loop together and no collective is left waiting. */
        /* 2: a device disagreed with the CPU reference (runtime.verify): the whole job stops,
         * --keep-going or not, since every video would go through the same wrong device. */
        int stop = local == DM_ERR_VERIFY ? 2 : (c->opt.stop && *c->opt.stop), any_stop = 0;
        if (MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) {
            st = dm_error_set(DM_ERR_MPI, "MPI_Allreduce of the stop flag failed");
            res->report = res->fatal = 1;
            break;
        }
        pl_watchdog_round_done(wd, round);
        if (any_stop == 2) {
            res->report = 1;
            if (local == DM_ERR_VERIFY) {
                dm_error_set(local, "%s", local_msg);
                st = local;
            } else {
                st = dm_error_set(DM_ERR_VERIFY, "stopped: runtime.verify failed on another "
                                  "rank (see its message)");
            }
            break;
        }
        if (any_stop) {
            /* A request that came after the last row is no interruption. */
            res->interrupted = done < c->total_frames;
            break;
        }
        if (!c->opt.keep_going && count_failed(c, f) > failed_before) {
            /* Every rank saw the same failures in the exchange: stop together. */
            if (local) {
                res->report = 1;
                dm_error_set(local, "%s", local_msg);
                st = local;
            } else {
                st = dm_error_set(DM_ERR_DECODE, "stopped: a video failed on another rank");
            }
            break;
        }
    }
    pl_worker_discard(w); /* a unit started for a round that will not come */
    pl_worker_end_chunk(w);
    free(chunk_failed);
    free(video_skip);
    free(unit_of_round);
    if (!st) pl_progress(c, done, t0, 1);
    if (!st && res->interrupted && c->rank == 0)
        fprintf(stderr, "depthmatte: stop requested (SIGTERM): %lld of %lld frames written and "
                "marked done; run again with --resume to complete the file\n", (long long)done,
                (long long)c->total_frames);
    return st;
}

dm_status dm_pipeline_run(const char *job_path, const char *const *sets, int n_sets,
                          const dm_pipeline_options *opt, dm_pipeline_result *res) {
    memset(res, 0, sizeof *res);
    double t0 = pl_now();
    pl_ctx c;
    memset(&c, 0, sizeof c);
    c.opt = *opt;
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c.size);
    pl_worker *w = NULL;
    pl_watchdog *wd = NULL;
    dm_h5_file *f = NULL;
    uint8_t *skip = NULL;
    dm_status st = agree(pl_setup(&c, job_path, sets, n_sets), c.rank, res);
    if (!st && c.rank == 0 && !c.opt.quiet) {
        printf("depthmatte: %d input(s), %d chunk(s) over %d rank(s), %lld frames, %d write "
               "rounds\n", c.n_inputs, c.n_chunks, c.size, (long long)c.total_frames, c.n_rounds);
        printf("depthmatte: OpenBLAS core %s\n", dm_cpu_blas_corename());
        fflush(stdout);
    }
    if (!st) st = agree(pl_worker_init(&w, &c, MPI_COMM_WORLD), c.rank, res);
    if (!st) st = agree(open_output(&c, &f), c.rank, res);
    if (!st) {
        skip = calloc(c.n_chunks > 0 ? c.n_chunks : 1, 1);
        st = skip ? DM_OK : dm_error_set(DM_ERR_NOMEM, "out of memory");
        if (!st && c.opt.resume) st = mark_done_chunks(&c, f, skip);
        st = agree(st, c.rank, res);
    }
    if (!st) st = agree(pl_watchdog_init(&wd, &c), c.rank, res);
    if (!st) st = run_rounds(&c, w, wd, f, skip, res, t0);
    if (res->fatal) {
        /* The CLI aborts the job; closing collectively could hang. The watchdog's thread
         * keeps watching until then (a stuck collective elsewhere still ends the job). */
        free(skip);
        return st;
    }
    pl_watchdog_free(wd);
    if (f) res->failed_videos = count_failed(&c, f);
    if (!st) {
        dm_h5_rank_stats *s = pl_worker_stats(w);
        s->total_s = pl_now() - t0;
        pl_summary(&c, s, MPI_COMM_WORLD);
        dm_status s2 = dm_h5_add_video_counts(f, "recomputed_frames",
                                              pl_worker_video_recomputed(w));
        if (!s2) s2 = dm_h5_write_stats(f, s);
        /* Interrupted: statuses stay "pending" and complete = 0 (the rows written are done). */
        if (!s2 && !res->interrupted) s2 = dm_h5_finish(f);
        if (s2) res->report = res->fatal = 1, st = s2;
    }
    if (f && !res->fatal) {
        dm_status s3 = dm_h5_close(f);
        if (!st && s3) res->report = res->fatal = 1, st = s3;
    }
    pl_worker_free(w);
    free(skip);
    pl_ctx_free(&c);
    return st;
}
