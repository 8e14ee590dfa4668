/* Video Depth Anything in the pipeline: one 32-frame window per rank and write round, the
 * scale/shift alignment state passed from window to window (include/depthmatte/plan.h "VDA
 * schedules", include/depthmatte/vda.h "Distributing one video over ranks").
 *
 * A round on this rank: (1) decode the window's frames and run its forward pass (independent of
 * every other rank); (2) get the alignment state of window k-1: kept locally (same rank, previous
 * round), received now from the rank running k-1 in this round, or taken from the carry buffer
 * received at the end of the previous round; (3) align, finish the video's last 8 rows after its
 * last window, convert the rows to the output dtype; (4) send the state to the rank of window
 * k+1 if that is another rank; (5) receive the carry for this rank's next window when its
 * predecessor ran in this round on another rank. Every message is sent and received inside the
 * round, before the collective write, so a stop or failure after the round leaves nothing in
 * flight. A window that fails still sends (a "failed" header), so no rank waits forever; a rank
 * that dies kills the job (MPI_ERRORS_ARE_FATAL / mpirun), as everywhere else. Messages:
 * int64 header {magic, video, window, ok, state bytes} followed by vda_align_pack's bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/vda.h"
#include "pl_internal.h"

_Static_assert(VDA_STRIDE == 22 && VDA_WINDOW == 32 && VDA_INTERP == 8,
               "src/plan/plan_vda.c assumes the official window constants");

enum { MSG_MAGIC = 0x56444153, MSG_TAG = 4242, HDR = 5 };

struct pl_vda {
    pl_ctx *c;
    dm_backend *be;
    vda_model *m;
    vda_ctx *ctx;
    int ctx_h, ctx_w;
    vda_align *a;
    int a_h, a_w;
    int a_video, a_window; /* window whose alignment the state has just done (-1: none) */
    int in_video, in_window; /* window whose inputs the context holds (for vda_window_shift) */
    int64_t slot_pts[VDA_WINDOW];
    double slot_ts[VDA_WINDOW];
    dm_video_reader *reader;
    int r_video;
    int64_t r_next;   /* frame the next dm_video_read returns */
    int64_t last_idx; /* frame held in rgb (-1: none) */
    int64_t last_pts;
    double last_ts;
    uint8_t *rgb;     /* (H, W, 3) */
    float *raw;       /* (32, H, W) window depths at source size */
    void *depth;      /* (32, H, W) rows in the output dtype */
    int64_t pts[VDA_WINDOW];
    double ts[VDA_WINDOW];
    int64_t *msg;     /* send buffer: header + state */
    int64_t *carry;   /* receive buffer for the next round's window */
    size_t msg_cap;   /* bytes of each buffer */
    int carry_video, carry_window, carry_ok, carry_rank;
    int *mine;        /* (n_rounds,) slot index of this rank's window per round, or -1 */
    /* CPU reference (device backends): runtime.verify of the rank's first window, float32
     * recompute of a non-finite window of a reduced precision. Loaded on first use. */
    dm_backend *ref_be;
    vda_model *ref_m;
    vda_ctx *ref_ctx;
    float *ref_raw;   /* (32, H, W) */
    int verified;
};

static dm_status mpi_fail(int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, s, &len);
    return dm_error_set(DM_ERR_MPI, "VDA alignment state: %s failed: %s", what, s);
}

dm_status pl_vda_init(pl_vda **out, pl_ctx *c, dm_backend *be) {
    *out = NULL;
    pl_vda *v = calloc(1, sizeof *v);
    if (!v) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    *out = v;
    v->c = c, v->be = be;
    v->a_video = v->in_video = v->r_video = v->carry_video = -1;
    v->last_idx = -1;
    const dm_job *job = &c->job;
    dm_status st = vda_model_load(&v->m, job->depth.weights, be,
                                  job->depth.model == DM_DEPTH_VDA_VITS_METRIC);
    if (st) return st;
    v->mine = malloc(sizeof(int) * (size_t)(c->n_rounds > 0 ? c->n_rounds : 1));
    if (!v->mine) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    for (int r = 0; r < c->n_rounds; r++) v->mine[r] = -1;
    /* Buffers for the largest frame among the videos this rank touches (its windows' videos). */
    size_t px = 1;
    for (int i = 0; i < c->vda.n; i++) {
        const dm_vda_slot *s = &c->vda.slot[i];
        if (s->rank != c->rank) continue;
        v->mine[s->round] = i;
        const dm_video_info *in = &c->inputs[s->video].info;
        if ((size_t)in->width * in->height > px) px = (size_t)in->width * in->height;
    }
    v->rgb = malloc(px * 3);
    v->raw = malloc(px * VDA_WINDOW * sizeof(float));
    v->depth = malloc(px * VDA_WINDOW * sizeof(float));
    /* State: vda_align_state_bytes = a small header + 10 frames of floats; 256 bytes of slack
     * cover the header (checked against the real size when packing). */
    v->msg_cap = HDR * sizeof(int64_t) + 256 + 10 * px * sizeof(float);
    v->msg = malloc(v->msg_cap);
    v->carry = malloc(v->msg_cap);
    if (!v->rgb || !v->raw || !v->depth || !v->msg || !v->carry)
        return dm_error_set(DM_ERR_NOMEM, "out of memory for VDA buffers (%zu pixels)", px);
    return DM_OK;
}

void pl_vda_free(pl_vda *v) {
    if (!v) return;
    dm_video_close(v->reader);
    vda_align_free(v->a);
    vda_ctx_free(v->ctx);
    vda_model_free(v->m);
    vda_ctx_free(v->ref_ctx);
    vda_model_free(v->ref_m);
    if (v->ref_be) dm_backend_destroy(v->ref_be);
    free(v->ref_raw);
    free(v->rgb), free(v->raw), free(v->depth), free(v->msg), free(v->carry), free(v->mine);
    free(v);
}

/* After a device's window: runtime.verify (first window of the rank, or all) and the
 * non-finite guard (reduced precision: recomputed in float32 on the CPU reference; float32:
 * the video fails). The reference runs from the very same preprocessed input. */
static dm_status check_window(pl_vda *v, const dm_video_info *info, int k,
                              dm_h5_rank_stats *stats) {
    const dm_job *job = &v->c->job;
    const size_t n = (size_t)VDA_WINDOW * info->width * info->height;
    const int64_t bad = pl_count_nonfinite(v->raw, n);
    const int verify = v->be->device != DM_DEVICE_CPU && job->runtime.verify != DM_VERIFY_OFF &&
                       (job->runtime.verify == DM_VERIFY_ALL || !v->verified);
    const int redo = bad && v->be->precision != DM_DTYPE_F32;
    if (!verify && !redo) {
        if (!bad) return DM_OK;
        return dm_error_set(DM_ERR_NONFINITE, "%s: window %d: VDA depth has %lld NaN/Inf values "
                            "(%s backend, %s); nothing of this window is written", info->path,
                            k, (long long)bad, v->be->ops->name, dm_dtype_name(v->be->precision));
    }
    const double t0 = pl_now();
    dm_status st = DM_OK;
    if (!v->ref_be && !(v->ref_be = dm_backend_cpu_create(job->runtime.threads)))
        return dm_error_set(DM_ERR_NOMEM, "cannot create the CPU reference backend");
    if (!v->ref_m)
        st = vda_model_load(&v->ref_m, job->depth.weights, v->ref_be,
                            job->depth.model == DM_DEPTH_VDA_VITS_METRIC);
    int h = 0, w = 0, rh = -1, rw = -1;
    vda_ctx_source_dims(v->ctx, &h, &w);
    if (v->ref_ctx) vda_ctx_source_dims(v->ref_ctx, &rh, &rw);
    if (!st && (rh != h || rw != w)) {
        vda_ctx_free(v->ref_ctx);
        v->ref_ctx = NULL;
        free(v->ref_raw);
        v->ref_raw = malloc(n * sizeof(float));
        if (!v->ref_raw) return dm_error_set(DM_ERR_NOMEM, "out of memory (VDA reference)");
        st = vda_ctx_init(&v->ref_ctx, v->ref_m, v->ref_be, h, w, job->depth.input_size);
    }
    if (!st) st = vda_ctx_copy_input(v->ref_ctx, v->ctx);
    if (!st) st = vda_window_run(v->ref_ctx, v->ref_raw);
    v->verified = 1;
    stats->verify_s += pl_now() - t0;
    if (st) return st;
    if (verify && !bad) {
        stats->verified_frames += VDA_WINDOW;
        st = pl_verify_compare(v->be, DM_TOL_VDA, "VDA window depth", info->path, (int64_t)k * VDA_STRIDE,
                               v->raw, v->ref_raw, n);
        if (st) return st;
    }
    if (!bad) return DM_OK;
    const int64_t still = pl_count_nonfinite(v->ref_raw, n);
    if (redo && !still) {
        memcpy(v->raw, v->ref_raw, n * sizeof(float));
        stats->recomputed_frames += VDA_WINDOW;
        fprintf(stderr, "depthmatte: %s: window %d: %lld NaN/Inf depth values in %s; recomputed "
                "in float32\n", info->path, k, (long long)bad, dm_dtype_name(v->be->precision));
        return DM_OK;
    }
    return dm_error_set(DM_ERR_NONFINITE, "%s: window %d: VDA depth has %lld NaN/Inf values in "
                        "float32; nothing of this window is written", info->path, k,
                        (long long)(still ? still : bad));
}

/* Decodes frame `want` of the open video into v->rgb (reusing it when already there). */
static dm_status get_frame(pl_vda *v, const dm_video_info *info, int64_t want, int64_t *pts,
                           double *ts, dm_h5_rank_stats *stats) {
    if (want == v->last_idx) { /* clamped padding repeats the last frame */
        *pts = v->last_pts, *ts = v->last_ts;
        return DM_OK;
    }
    double t0 = pl_now();
    dm_status st = DM_OK;
    if (want != v->r_next) st = dm_video_seek(v->reader, want);
    int64_t idx = -1;
    if (!st) st = dm_video_read(v->reader, v->rgb, &idx, pts, ts);
    stats->decode_s += pl_now() - t0;
    v->last_idx = -1;
    if (st == DM_VIDEO_END)
        return dm_error_set(DM_ERR_DECODE, "%s: frame %lld: stream ended early", info->path,
                            (long long)want);
    if (st) return st;
    if (idx != want)
        return dm_error_set(DM_ERR_DECODE, "%s: frame %lld: decoder returned frame %lld",
                            info->path, (long long)want, (long long)idx);
    v->r_next = want + 1;
    v->last_idx = want, v->last_pts = *pts, v->last_ts = *ts;
    return DM_OK;
}

/* Fills the context's 32 input slots for window k of `video` (shifting the previous window's
 * inputs when this rank ran window k-1 just before) and runs the forward pass into v->raw. */
static dm_status run_window(pl_vda *v, int video, int k, dm_h5_rank_stats *stats) {
    const dm_job *job = &v->c->job;
    const dm_video_info *info = &v->c->inputs[video].info;
    const int H = info->height, W = info->width;
    dm_status st;
    if (v->r_video != video) {
        dm_video_close(v->reader);
        v->reader = NULL;
        v->r_video = -1;
        double t0 = pl_now();
        dm_video_options vo;
        st = pl_video_options(job, video, &vo);
        if (!st) st = dm_video_open_opts(&v->reader, info->path, &vo);
        stats->decode_s += pl_now() - t0;
        if (st) return st;
        const dm_video_info *ri = dm_video_reader_info(v->reader);
        if (ri->width != W || ri->height != H)
            return dm_error_set(DM_ERR_DECODE, "%s: frame size %dx%d differs from the probe's "
                                "%dx%d", info->path, ri->width, ri->height, W, H);
        v->r_video = video, v->r_next = 0, v->last_idx = -1;
    }
    if (!v->ctx || v->ctx_h != H || v->ctx_w != W) {
        vda_ctx_free(v->ctx);
        v->ctx = NULL;
        v->in_video = -1;
        if ((st = vda_ctx_init(&v->ctx, v->m, v->be, H, W, job->depth.input_size))) return st;
        v->ctx_h = H, v->ctx_w = W;
    }
    int64_t idx[VDA_WINDOW];
    vda_window_frames(k, info->frames, idx);
    int first = 0;
    if (k > 0 && v->in_video == video && v->in_window == k - 1) {
        /* Slots 0..9 are the previous window's inputs at KEYFRAMES (vda_window_shift). */
        if ((st = vda_window_shift(v->ctx))) return st;
        v->slot_pts[1] = v->slot_pts[12], v->slot_ts[1] = v->slot_ts[12];
        memmove(v->slot_pts + 2, v->slot_pts + 24, 8 * sizeof *v->slot_pts);
        memmove(v->slot_ts + 2, v->slot_ts + 24, 8 * sizeof *v->slot_ts);
        first = 2 + VDA_INTERP;
    }
    v->in_video = -1; /* inputs are incomplete until every slot is filled */
    double t_inf = 0;
    for (int s = first; s < VDA_WINDOW; s++) {
        if ((st = get_frame(v, info, idx[s], &v->slot_pts[s], &v->slot_ts[s], stats))) return st;
        double t1 = pl_now();
        st = vda_preprocess_u8(v->ctx, v->rgb, s);
        t_inf += pl_now() - t1;
        if (st) return st;
    }
    v->in_video = video, v->in_window = k;
    double t1 = pl_now();
    st = vda_window_run(v->ctx, v->raw);
    stats->inference_s += t_inf + pl_now() - t1;
    if (!st) st = check_window(v, info, k, stats);
    return st;
}

/* Converts row `row` (video frame) from `src` (H * W floats) into the round's row buffers. */
static dm_status put_row(pl_vda *v, const dm_vda_slot *s, const dm_video_info *info,
                         const float *src, int64_t row, int slot) {
    const size_t px = (size_t)info->width * info->height;
    const int64_t t = row - s->begin;
    for (size_t i = 0; i < px; i++) {
        float d = src[i];
        if (!isfinite(d))
            return dm_error_set(DM_ERR_NONFINITE, "%s: frame %lld: non-finite depth at pixel %zu",
                                info->path, (long long)row, i);
        if (v->c->job.depth.dtype == DM_DTYPE_F16) ((uint16_t *)v->depth)[t * px + i] = dm_f32_to_f16(d);
        else ((float *)v->depth)[t * px + i] = d;
    }
    v->pts[t] = v->slot_pts[slot];
    v->ts[t] = v->slot_ts[slot];
    return DM_OK;
}

/* Aligns the window in v->raw (state already in v->a) and writes its rows. */
static dm_status align_rows(pl_vda *v, const dm_vda_slot *s, int last) {
    const dm_video_info *info = &v->c->inputs[s->video].info;
    const size_t px = (size_t)info->width * info->height;
    int first_slot, count;
    int64_t first_frame;
    dm_status st = vda_align_window(v->a, v->raw, &first_slot, &count, &first_frame);
    if (st) return st;
    v->a_video = s->video, v->a_window = s->window;
    if (first_frame != s->begin)
        return dm_error_set(DM_ERR_ARG, "%s: window %d aligned frames from %lld, planned %lld",
                            info->path, s->window, (long long)first_frame, (long long)s->begin);
    int64_t row = s->begin;
    for (; row < s->end && row < first_frame + count; row++) {
        int slot = first_slot + (int)(row - first_frame);
        if ((st = put_row(v, s, info, v->raw + (size_t)slot * px, row, slot))) return st;
    }
    if (row < s->end) {
        if (!last)
            return dm_error_set(DM_ERR_ARG, "%s: window %d owns rows past its aligned frames",
                                info->path, s->window);
        const float *p;
        int64_t ff;
        if ((st = vda_align_finish(v->a, &p, &ff))) return st;
        for (; row < s->end; row++) {
            int64_t j = row - ff;
            if (j < 0 || j >= VDA_INTERP)
                return dm_error_set(DM_ERR_ARG, "%s: row %lld outside the last window",
                                    info->path, (long long)row);
            int slot = (int)(row - (int64_t)s->window * VDA_STRIDE);
            if ((st = put_row(v, s, info, p + (size_t)j * px, row, slot))) return st;
        }
    }
    return DM_OK;
}

/* Makes v->a a state for this video's frame size (fresh when k == 0 or after a size change). */
static dm_status ensure_align(pl_vda *v, const dm_video_info *info, int fresh) {
    if (!fresh && v->a && v->a_h == info->height && v->a_w == info->width) return DM_OK;
    vda_align_free(v->a);
    v->a = NULL;
    v->a_video = -1;
    dm_status st = vda_align_init(&v->a, info->height, info->width, vda_model_is_metric(v->m));
    if (!st) v->a_h = info->height, v->a_w = info->width;
    return st;
}

/* Header + state from buf (received `bytes`) into v->a; *ok = 0 when the sender's window failed. */
static dm_status take_state(pl_vda *v, const int64_t *buf, size_t bytes, int video, int window,
                            int from, int *ok) {
    const dm_video_info *info = &v->c->inputs[video].info;
    if (bytes < HDR * sizeof(int64_t) || buf[0] != MSG_MAGIC || buf[1] != video ||
        buf[2] != window || buf[4] < 0 || (size_t)buf[4] > bytes - HDR * sizeof(int64_t))
        return dm_error_set(DM_ERR_MPI, "%s: rank %d sent an unexpected VDA state message "
                            "(%zu bytes; expected video %d window %d)", info->path, from, bytes,
                            video, window);
    *ok = buf[3] != 0;
    if (!*ok) return DM_OK;
    /* unpack overwrites the whole state: reallocate only when the frame size changes */
    dm_status st = ensure_align(v, info, 0);
    if (!st) st = vda_align_unpack(v->a, buf + HDR, (size_t)buf[4]);
    if (!st) v->a_video = video, v->a_window = window;
    return st;
}

static int video_runs(const uint8_t *video_skip, dm_h5_file *f, int video) {
    return !video_skip[video] && !dm_h5_video_failed(f, video);
}

dm_status pl_vda_round(pl_vda *v, int round, const uint8_t *video_skip, dm_h5_file *f,
                       dm_h5_block *out, int *failed_video, dm_status *video_status,
                       dm_h5_rank_stats *stats) {
    pl_ctx *c = v->c;
    const dm_vda_schedule *sc = &c->vda;
    *out = (dm_h5_block){.video = -1, .failed_video = -1};
    *failed_video = -1;
    *video_status = DM_OK;
    MPI_Request req = MPI_REQUEST_NULL;
    dm_status vs = DM_OK; /* this window's video error */
    char vs_msg[1024] = "";
    const int si = round < c->n_rounds ? v->mine[round] : -1;
    const dm_vda_slot *s = si >= 0 ? &sc->slot[si] : NULL;
    int rc;
    if (s && video_runs(video_skip, f, s->video)) {
        const dm_video_info *info = &c->inputs[s->video].info;
        const int pi = s->window > 0 ? si - 1 : -1; /* slots sorted by video, window */
        const dm_vda_slot *pred = pi >= 0 ? &sc->slot[pi] : NULL;
        const int succ = si + 1 < sc->n && sc->slot[si + 1].video == s->video ? si + 1 : -1;
        vs = run_window(v, s->video, s->window, stats);
        /* The state of window k-1: always consume it, even when this window failed. */
        int pred_ok = 1;
        dm_status ms = DM_OK;
        if (!pred) {
            if (!vs) vs = ensure_align(v, info, 1);
        } else if (pred->rank == c->rank) {
            if (v->a_video != s->video || v->a_window != s->window - 1)
                ms = dm_error_set(DM_ERR_ARG, "%s: window %d: the local alignment state is not "
                                  "window %d's", info->path, s->window, s->window - 1);
        } else if (pred->round == round) {
            double t0 = pl_now();
            MPI_Status mst;
            rc = MPI_Recv(v->carry, (int)(v->msg_cap / sizeof(int64_t)), MPI_INT64_T, pred->rank,
                          MSG_TAG, MPI_COMM_WORLD, &mst);
            stats->wait_s += pl_now() - t0;
            int cnt = 0;
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Recv");
            MPI_Get_count(&mst, MPI_INT64_T, &cnt);
            ms = take_state(v, v->carry, (size_t)cnt * sizeof(int64_t), s->video, s->window - 1,
                            pred->rank, &pred_ok);
        } else {
            if (v->carry_video != s->video || v->carry_window != s->window - 1)
                ms = dm_error_set(DM_ERR_ARG, "%s: window %d: no carried alignment state",
                                  info->path, s->window);
            else
                pred_ok = v->carry_ok;
            /* take_state already unpacked it into v->a when it arrived */
        }
        if (ms) return ms; /* protocol error: fatal */
        if (!vs && !pred_ok)
            vs = dm_error_set(DM_ERR_DECODE, "%s: window %d: the previous window failed on "
                              "rank %d", info->path, s->window, pred->rank);
        if (!vs) {
            double t1 = pl_now();
            vs = align_rows(v, s, succ < 0);
            stats->inference_s += pl_now() - t1;
        }
        if (succ >= 0 && sc->slot[succ].rank != c->rank) {
            v->msg[0] = MSG_MAGIC, v->msg[1] = s->video, v->msg[2] = s->window, v->msg[3] = !vs;
            v->msg[4] = 0;
            size_t bytes = HDR * sizeof(int64_t);
            if (!vs) {
                size_t sb = vda_align_state_bytes(v->a);
                if (bytes + sb > v->msg_cap)
                    return dm_error_set(DM_ERR_NOMEM, "VDA state of %zu bytes exceeds the "
                                        "buffer", sb);
                vda_align_pack(v->a, v->msg + HDR);
                v->msg[4] = (int64_t)sb;
                bytes += sb;
            }
            rc = MPI_Isend(v->msg, (int)((bytes + 7) / 8), MPI_INT64_T, sc->slot[succ].rank,
                           MSG_TAG, MPI_COMM_WORLD, &req);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Isend");
        }
        if (vs) {
            snprintf(vs_msg, sizeof vs_msg, "%s", dm_error_message());
            *failed_video = s->video;
            v->a_video = -1;
        } else if (s->end > s->begin) {
            stats->frames += s->end - s->begin;
            *out = (dm_h5_block){.video = s->video, .begin = s->begin,
                                 .count = s->end - s->begin, .depth = v->depth, .pts = v->pts,
                                 .time_s = v->ts, .failed_video = -1};
        }
    }
    /* Carry: this rank's next window whose predecessor ran in this round on another rank. */
    const int ni = round + 1 < c->n_rounds ? v->mine[round + 1] : -1;
    if (ni > 0 && sc->slot[ni].window > 0) {
        const dm_vda_slot *n = &sc->slot[ni], *p = &sc->slot[ni - 1];
        if (p->rank != c->rank && p->round == round && video_runs(video_skip, f, n->video)) {
            double t0 = pl_now();
            MPI_Status mst;
            rc = MPI_Recv(v->carry, (int)(v->msg_cap / sizeof(int64_t)), MPI_INT64_T, p->rank,
                          MSG_TAG, MPI_COMM_WORLD, &mst);
            stats->wait_s += pl_now() - t0;
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Recv");
            int cnt = 0, ok = 0;
            MPI_Get_count(&mst, MPI_INT64_T, &cnt);
            dm_status ms = take_state(v, v->carry, (size_t)cnt * sizeof(int64_t), n->video,
                                      n->window - 1, p->rank, &ok);
            if (ms) return ms;
            v->carry_video = n->video, v->carry_window = n->window - 1, v->carry_ok = ok;
        }
    }
    if (req != MPI_REQUEST_NULL && (rc = MPI_Wait(&req, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Wait");
    if (vs) dm_error_set(vs, "%s", vs_msg); /* the video's message, for the caller */
    *video_status = vs;
    return DM_OK;
}
