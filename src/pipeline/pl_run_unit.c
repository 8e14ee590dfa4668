/* The round body of a rank (pl_worker_round, pl_internal.h): one unit through every stage of
 * the job over ONE decode of its frames (pl_stage.h), then the state hand-over.
 *
 * Decode: the union of the stages' want sets, in increasing order; a frame kept from the
 * previous unit of the same chunk (decoded past that unit's end, e.g. VDA's look-ahead, which
 * is the next window's RVM rows) is replayed instead of decoded again. The decode thread runs
 * on through the chunk when the next unit continues where this one stopped.
 *
 * Hand-over (VDA's alignment chain; pl_vda.c before the stage interface): (1) every stage gets
 * the unit's frames (VDA runs its window's forward pass, independent of every other rank);
 * (2) the state after the predecessor unit: kept locally (same rank, previous round), received
 * now from the rank running it in this round, or taken from the carry received at the end of
 * the previous round; (3) the stages pop their rows (VDA aligns); (4) the state goes to the
 * successor's rank when that is another rank; (5) the carry for this rank's next unit whose
 * predecessor ran in this round on another rank is received. Every message is sent and
 * received inside the round, before the collective write, so a stop or failure after the
 * round leaves nothing in flight. A unit that fails still sends (a "failed" header), so no
 * rank waits forever; a rank that dies kills the job (MPI_ERRORS_ARE_FATAL / mpirun). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend_cuda.h"
#include "pl_worker_impl.h"

enum { MSG_MAGIC = 0x56444153, MSG_TAG = 4242 };

static int stop_requested(const pl_worker *w) {
    return w->c->opt.stop && *w->c->opt.stop;
}

/* A cancelled unit (pl_worker_discard) also stops at its next frame; its result is dropped. */
static int cancelled(pl_worker *w) {
    return w->overlap && atomic_load(&w->cp.cancel);
}

pl_unit pl_unit_of(const pl_worker *w, const pl_block *b) {
    const pl_chunk *ch = &w->c->chunks[b->chunk];
    return (pl_unit){.video = ch->video,
                     .chunk = b->chunk,
                     .info = &w->c->inputs[ch->video].info,
                     .begin = b->begin,
                     .end = b->begin + b->count,
                     .context_begin = ch->context_begin,
                     .first = b->first,
                     .window = b->window,
                     .last = b->last};
}

/* Opens the unit's video at the first unit of a chunk. */
static dm_status open_chunk(pl_worker *w, const pl_unit *u) {
    if (!u->first) {
        if (w->open_chunk != u->chunk || !w->reader)
            return dm_error_set(DM_ERR_ARG, "%s: unit without an open chunk", u->info->path);
        return DM_OK;
    }
    if (w->reader && w->open_video == u->video) {
        /* another chunk of the open video (VDA windows on several ranks): seek, no reopen */
        w->open_chunk = u->chunk;
        w->keep[0].n = 0;
        return DM_OK;
    }
    pl_worker_end_chunk(w);
    double t0 = pl_now();
    dm_video_options vo;
    dm_status st = pl_video_options(&w->c->job, u->video, &vo);
    if (!st) st = dm_video_open_opts(&w->reader, u->info->path, &vo);
    w->stats.decode_s += pl_now() - t0;
    if (st) return st;
    const dm_video_info *ri = dm_video_reader_info(w->reader);
    if (ri->width != u->info->width || ri->height != u->info->height)
        return dm_error_set(DM_ERR_DECODE, "%s: frame size %dx%d differs from the probe's %dx%d",
                            u->info->path, ri->width, ri->height, u->info->width, u->info->height);
    w->open_chunk = u->chunk, w->open_video = u->video;
    w->reader_pos = 0;
    return DM_OK;
}

/* Frame f from the decoder: the running thread when it is at f, else a seek and a new thread
 * over [f, end). */
static dm_status decode(pl_worker *w, const pl_unit *u, int64_t f, int64_t end,
                        const pl_frame **out) {
    dm_status st;
    if (!w->pf_on || w->pf_next != f) {
        w->stats.decode_s += pl_prefetch_stop(&w->pf);
        /* a thread stopped early decoded an unknown number of frames */
        if (w->pf_on) w->reader_pos = w->pf_next == w->pf_end ? w->pf_end : -1;
        w->pf_on = 0;
        if (w->reader_pos != f) {
            double t0 = pl_now();
            st = dm_video_seek(w->reader, f);
            w->stats.decode_s += pl_now() - t0;
            if (st) return st;
        }
        if ((st = pl_prefetch_start(&w->pf, w->reader, f, end))) return st;
        w->pf_on = 1, w->pf_next = f, w->pf_end = end;
    }
    const pl_frame *fr = NULL;
    st = pl_prefetch_next(&w->pf, &fr, &w->stats.wait_s);
    if (st == DM_VIDEO_END || (!st && fr->st == DM_VIDEO_END))
        return dm_error_set(DM_ERR_DECODE, "%s: frame %lld: stream ended early", u->info->path,
                            (long long)f);
    if (st) return st;
    if (fr->st) return dm_error_set(fr->st, "%s", fr->msg); /* the thread's message */
    w->pf_next = f + 1;
    if (fr->index != f)
        return dm_error_set(DM_ERR_DECODE, "%s: frame %lld: decoder returned frame %lld",
                            u->info->path, (long long)f, (long long)fr->index);
    *out = fr;
    return DM_OK;
}

static int keep_find(const pl_keep *k, int64_t f) {
    for (int i = 0; i < k->n; i++)
        if (k->index[i] == f) return i;
    return -1;
}

/* Merges the stages' sets into one sorted union. */
static void set_union(const pl_frame_set *sets, int n, int64_t *a, int64_t *b, int *m) {
    *m = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < sets[i].n; j++)
            a[*m] = sets[i].a[j], b[(*m)++] = sets[i].b[j];
    for (int i = 1; i < *m; i++) /* insertion sort by start: a handful of ranges */
        for (int j = i; j > 0 && a[j] < a[j - 1]; j--) {
            int64_t t = a[j];
            a[j] = a[j - 1], a[j - 1] = t;
            t = b[j], b[j] = b[j - 1], b[j - 1] = t;
        }
    int k = 0;
    for (int i = 0; i < *m; i++) {
        if (k > 0 && a[i] <= b[k - 1]) {
            if (b[i] > b[k - 1]) b[k - 1] = b[i];
        } else {
            a[k] = a[i], b[k++] = b[i];
        }
    }
    *m = k;
}

/* The first phase of a unit: its frames through every stage (rows may already be finished). */
static dm_status push_unit(pl_worker *w, const pl_unit *u, int *stopped) {
    pl_rowset *rs = &w->set[w->cur];
    dm_status st;
    *stopped = 0;
    if ((st = open_chunk(w, u))) return st;
    pl_frame_set sets[PL_MAX_STAGES + 1];
    /* the rows' own frames always (their pts and times), replayed when kept */
    sets[w->n_stages] = (pl_frame_set){1, {u->begin}, {u->end}};
    for (int i = 0; i < w->n_stages; i++) {
        sets[i].n = 0;
        if ((st = w->stage[i]->ops->want(w->stage[i], u, &sets[i]))) return st;
    }
    for (int i = 0; i < w->n_stages; i++)
        if ((st = w->stage[i]->ops->begin(w->stage[i], u))) return st;
    int64_t a[(PL_MAX_STAGES + 1) * PL_FRAME_SET_MAX], b[(PL_MAX_STAGES + 1) * PL_FRAME_SET_MAX];
    int m;
    set_union(sets, w->n_stages + 1, a, b, &m);
    /* The decode thread runs on past the last range into the chunk's next unit; the chunk's
     * last unit stops at its last wanted frame. */
    const pl_chunk *ch = &w->c->chunks[u->chunk];
    const int64_t limit = u->end < ch->end ? (w->windowed ? u->info->frames : ch->end) : -1;
    pl_keep *old = &w->keep[0], *nxt = &w->keep[1];
    nxt->n = 0;
    const size_t fb = (size_t)u->info->width * u->info->height * 3;
    for (int r = 0; r < m; r++) {
        const int64_t end = r + 1 < m || limit < b[r] ? b[r] : limit;
        for (int64_t f = a[r]; f < b[r]; f++) {
            if ((!w->windowed && stop_requested(w)) || cancelled(w)) {
                *stopped = 1; /* rows done so far are written in this round */
                goto done;
            }
            const uint8_t *rgb;
            int64_t pts;
            double ts;
            int k = keep_find(old, f);
            if (k >= 0) {
                rgb = old->rgb + (size_t)k * fb, pts = old->pts[k], ts = old->ts[k];
            } else {
                const pl_frame *fr = NULL;
                if ((st = decode(w, u, f, end, &fr))) return st;
                rgb = fr->rgb, pts = fr->pts, ts = fr->ts;
            }
            if (f >= u->begin && f < u->end) rs->pts[f - u->begin] = pts, rs->ts[f - u->begin] = ts;
            if (f >= u->end && w->windowed && nxt->n < PL_KEEP_FRAMES) {
                memcpy(nxt->rgb + (size_t)nxt->n * fb, rgb, fb);
                nxt->index[nxt->n] = f, nxt->pts[nxt->n] = pts, nxt->ts[nxt->n] = ts;
                nxt->n++;
            }
            const pl_stage_frame sf = {rgb, f};
            for (int i = 0; i < w->n_stages; i++)
                if (pl_frame_set_has(&sets[i], f) &&
                    (st = w->stage[i]->ops->push(w->stage[i], u, &sf, &rs->rows)))
                    return st;
        }
    }
done:;
    pl_keep t = *old; /* the kept frames become the next unit's */
    *old = *nxt, *nxt = t;
    return DM_OK;
}

/* The second phase: every stage finishes its rows; *n = rows finished by all of them. */
static dm_status pop_unit(pl_worker *w, const pl_unit *u, int64_t *n) {
    *n = u->end - u->begin;
    for (int i = 0; i < w->n_stages; i++) {
        int64_t d = 0;
        dm_status st = w->stage[i]->ops->pop(w->stage[i], u, 1, &w->set[w->cur].rows, &d);
        if (st) return st;
        if (d < *n) *n = d;
    }
    return DM_OK;
}

dm_status pl_unit_compute(pl_worker *w, const pl_unit *u, int do_pop, int *stopped, int64_t *n,
                          int *popped) {
    *n = 0, *popped = 0;
    dm_status st = push_unit(w, u, stopped);
    if (st || !do_pop || cancelled(w)) return st;
    *popped = 1;
    return pop_unit(w, u, n);
}

static dm_status mpi_fail(int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, s, &len);
    return dm_error_set(DM_ERR_MPI, "stage state hand-over: %s failed: %s", what, s);
}

/* Receives the state after the predecessor of unit u from rank `from` into the hand-over
 * stage (*ok = 0 when the sender's unit failed). Protocol errors are fatal. */
static dm_status recv_state(pl_worker *w, const pl_unit *u, int from, int *ok) {
    double t0 = pl_now();
    MPI_Status mst;
    int rc = MPI_Recv(w->carry, (int)(w->msg_cap / sizeof(int64_t)), MPI_INT64_T, from, MSG_TAG,
                      MPI_COMM_WORLD, &mst);
    w->stats.wait_s += pl_now() - t0;
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Recv");
    int cnt = 0;
    MPI_Get_count(&mst, MPI_INT64_T, &cnt);
    const size_t bytes = (size_t)cnt * sizeof(int64_t);
    const int64_t *buf = w->carry;
    if (bytes < PL_HDR * sizeof(int64_t) || buf[0] != MSG_MAGIC || buf[1] != u->video ||
        buf[2] != u->window - 1 || buf[4] < 0 || (size_t)buf[4] > bytes - PL_HDR * sizeof(int64_t))
        return dm_error_set(DM_ERR_MPI,
                            "%s: rank %d sent an unexpected %s state message "
                            "(%zu bytes; expected video %d window %d)",
                            u->info->path, from, w->handover->ops->name, bytes, u->video,
                            u->window - 1);
    *ok = buf[3] != 0;
    if (!*ok) return DM_OK;
    return w->handover->ops->state_unpack(w->handover, u, buf + PL_HDR, (size_t)buf[4]);
}

dm_status pl_worker_round(pl_worker *w, int round, const pl_block *b, int runs,
                          const pl_block *next, int next_runs, dm_h5_block *out, int *failed_video,
                          dm_status *video_status) {
    const pl_ctx *c = w->c;
    *out = (dm_h5_block){.video = -1, .failed_video = -1};
    *failed_video = -1;
    *video_status = DM_OK;
    MPI_Request req = MPI_REQUEST_NULL;
    dm_status vs = DM_OK; /* this unit's video error */
    char vs_msg[1024] = "";
    int rc;
    pl_stage *ho = w->handover;
    /* A stop request ends the job after this round; units whose state other ranks wait for
     * (hand-over) still run, so that no message is left waiting. */
    /* A unit already computing on the compute thread (posted before the last round's write,
     * pl_overlap.c) is finished whatever came since: a stop request that arrived meanwhile
     * cut it short at a frame (as one arriving during its push does without the overlap). */
    if (w->cp.pending && (w->cp.b != b || !runs)) pl_worker_discard(w); /* not this round's */
    const int posted = w->cp.pending;
    if (b && runs && (posted || ho || !stop_requested(w))) {
        const pl_unit u = pl_unit_of(w, b);
        int stopped = 0, popped = 0;
        int64_t n = 0;
        if (!posted && w->overlap) pl_compute_post(w, b, ho == NULL);
        if (w->overlap)
            vs = pl_compute_join(w, &stopped, &n, &popped);
        else
            vs = pl_unit_compute(w, &u, ho == NULL, &stopped, &n, &popped);
        /* The state after the predecessor: always consume it, even when this unit failed. */
        int pred_ok = 1;
        if (ho && b->pred_rank >= 0) {
            dm_status ms = DM_OK;
            if (b->pred_rank == c->rank) {
                if (!ho->ops->state_holds(ho, &u))
                    ms = dm_error_set(DM_ERR_ARG,
                                      "%s: window %d: the local %s state is not "
                                      "window %d's",
                                      u.info->path, u.window, ho->ops->name, u.window - 1);
            } else if (b->pred_round == round) {
                ms = recv_state(w, &u, b->pred_rank, &pred_ok);
            } else if (w->carry_video != u.video || w->carry_window != u.window - 1) {
                ms = dm_error_set(DM_ERR_ARG, "%s: window %d: no carried %s state", u.info->path,
                                  u.window, ho->ops->name);
            } else {
                pred_ok = w->carry_ok; /* unpacked when it arrived */
            }
            if (ms) return ms; /* protocol error: fatal */
            if (!vs && !pred_ok)
                vs = dm_error_set(DM_ERR_DECODE,
                                  "%s: window %d: the previous window failed on "
                                  "rank %d",
                                  u.info->path, u.window, b->pred_rank);
        }
        if (!vs && !popped) vs = pop_unit(w, &u, &n);
        if (ho && b->succ_rank >= 0 && b->succ_rank != c->rank) {
            w->msg[0] = MSG_MAGIC, w->msg[1] = u.video, w->msg[2] = u.window, w->msg[3] = !vs;
            w->msg[4] = 0;
            size_t bytes = PL_HDR * sizeof(int64_t), sb = 0;
            if (!vs) {
                dm_status ps = ho->ops->state_pack(ho, &u, w->msg + PL_HDR,
                                                   w->msg_cap - PL_HDR * sizeof(int64_t), &sb);
                if (ps) return ps;
                w->msg[4] = (int64_t)sb;
                bytes += sb;
            }
            rc = MPI_Isend(w->msg, (int)((bytes + 7) / 8), MPI_INT64_T, b->succ_rank, MSG_TAG,
                           MPI_COMM_WORLD, &req);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Isend");
        }
        if (vs) {
            snprintf(vs_msg, sizeof vs_msg, "%s", dm_error_message());
            *failed_video = u.video;
            pl_worker_end_chunk(w); /* the reader may be anywhere */
        } else if (n > 0) {
            const dm_job *job = &c->job;
            const int fgr =
                job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_FOREGROUND);
            const int alpha = job->matting.enabled && (job->matting.outputs & DM_MATTING_OUT_ALPHA);
            w->stats.frames += n;
            *out = (dm_h5_block){.video = u.video,
                                 .begin = u.begin,
                                 .count = n,
                                 .alpha = alpha ? w->set[w->cur].rows.alpha : NULL,
                                 .foreground = fgr ? w->set[w->cur].rows.fgr : NULL,
                                 .depth = job->depth.enabled ? w->set[w->cur].rows.depth : NULL,
                                 .pts = w->set[w->cur].pts,
                                 .time_s = w->set[w->cur].ts,
                                 .failed_video = -1};
        }
        (void)stopped;
        if (w->be->device == DM_DEVICE_CUDA) {
            /* this rank's own peak: the backend's cudaMalloc bytes at their most (tensors,
             * scratch, download stages; dm_cuda_alloc_stats), not the device's used memory,
             * which counts other ranks sharing the GPU and the CUDA context */
            dm_cuda_alloc_counts ac;
            int dev = 0;
            if (!dm_cuda_backend_device(w->be, &dev) && !dm_cuda_alloc_stats(dev, &ac)) {
                const double mb = (double)ac.peak_bytes / (1024.0 * 1024.0);
                if (mb > w->stats.device_peak_mb) w->stats.device_peak_mb = mb;
            }
        }
    }
    /* Carry: this rank's next unit whose predecessor runs in this round on another rank. */
    if (ho && next && next_runs && next->pred_rank >= 0 && next->pred_rank != c->rank &&
        next->pred_round == round) {
        const pl_unit nu = pl_unit_of(w, next);
        int ok = 0;
        dm_status ms = recv_state(w, &nu, next->pred_rank, &ok);
        if (ms) return ms;
        w->carry_video = nu.video, w->carry_window = nu.window - 1, w->carry_ok = ok;
    }
    if (req != MPI_REQUEST_NULL && (rc = MPI_Wait(&req, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Wait");
    if (vs) dm_error_set(vs, "%s", vs_msg); /* the video's message, for the caller */
    *video_status = vs;
    return DM_OK;
}
