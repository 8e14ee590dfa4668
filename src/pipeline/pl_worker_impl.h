/* The worker's fields, shared by pl_worker.c (set-up) and pl_run_unit.c (the round body). */
#ifndef DM_PL_WORKER_IMPL_H
#define DM_PL_WORKER_IMPL_H

#include <stdatomic.h>

#include "pl_internal.h"
#include "pl_stage.h"

enum {
    PL_MAX_STAGES = 4,
    PL_KEEP_FRAMES = 16, /* frames kept past a unit's end (VDA looks 8 ahead) */
    PL_HDR = 5,          /* hand-over message header: {magic, video, window, ok, bytes} */
};

/* One set of a unit's output rows: the rows in the output dtypes with their pts and times.
 * With the overlap on there are two, used by alternate units: the HDF5 write of one unit's set
 * runs on the main thread while the next unit computes into the other. */
typedef struct pl_rowset {
    pl_rows rows; /* (cap, ...) per dataset, see pl_stage.h */
    int64_t *pts; /* (rows.cap,) */
    double *ts;   /* (rows.cap,) */
} pl_rowset;

/* The compute thread (pl_overlap.c): runs the MPI-free part of a unit (decode, every stage's
 * push, and pop when no stage hands state over) while the main thread does the previous
 * round's collective write. Fields under mu unless noted. */
typedef struct pl_compute {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inited; /* the thread runs (overlap on) */
    int quit;
    int posted;        /* a unit is waiting for or running on the thread */
    int pending;       /* main: a posted unit not yet joined (main thread only) */
    atomic_int cancel; /* main -> thread: stop the unit at the next frame (result dropped) */
    const pl_block *b; /* the posted unit (main thread's view; stays valid: c->blocks) */
    pl_unit u;
    int pop; /* also pop the unit (no hand-over stage) */
    /* results, read by main after the join */
    dm_status vs;
    char msg[1024]; /* vs's message (dm_error_message is per thread) */
    int stopped, popped;
    int64_t n;
    double t0, t1; /* when the thread started and finished the unit (pl_now) */
    double w0, w1; /* main: the collective write that ran while the unit computed */
} pl_compute;

/* Decoded frames kept from one unit for the next unit of the same chunk. */
typedef struct pl_keep {
    uint8_t *rgb; /* (PL_KEEP_FRAMES, H, W, 3) */
    int64_t index[PL_KEEP_FRAMES], pts[PL_KEEP_FRAMES];
    double ts[PL_KEEP_FRAMES];
    int n;
} pl_keep;

struct pl_worker {
    pl_ctx *c;
    dm_backend *be;
    pl_stage *stage[PL_MAX_STAGES]; /* matting, then depth */
    int n_stages;
    int windowed;       /* a stage finishes rows only at window ends (no stop inside a unit) */
    pl_stage *handover; /* the stage whose state goes rank to rank (VDA), or NULL */
    size_t px;          /* largest source frame of this rank's units, pixels */
    pl_prefetch pf;     /* decode thread + ring of (H, W, 3) frames, sized once */
    dm_video_reader *reader;
    int open_chunk, open_video; /* chunk / video of the open reader (-1: none) */
    int64_t
        reader_pos; /* frame the reader returns next when the thread is not running, -1: unknown */
    int pf_on;      /* the decode thread runs: it hands out frames pf_next .. pf_end - 1 */
    int64_t pf_next, pf_end;
    pl_keep keep[2];  /* [0]: from the previous unit (read), [1]: for the next one (filled) */
    int overlap;      /* 1: units compute on the compute thread, rows double-buffered */
    pl_rowset set[2]; /* the units' rows (set[1] only with the overlap) */
    int cur;          /* set of the unit being computed / finished */
    pl_compute cp;    /* the compute thread (overlap on) */
    /* hand-over messages: int64 header {magic, video, window, ok, state bytes} + state */
    int64_t *msg, *carry;
    size_t msg_cap; /* bytes of each */
    int carry_video, carry_window, carry_ok;
    dm_h5_rank_stats stats;
    int64_t *video_recomputed; /* (n_inputs) the stages' per-video recompute counts */
};

/* pl_run_unit.c: the MPI-free part of unit u into w->set[w->cur]: decode + every stage's
 * push, and with do_pop every stage's pop (*n rows finished, *popped = 1). A video error is
 * returned (message set in the calling thread). */
dm_status pl_unit_compute(pl_worker *w, const pl_unit *u, int do_pop, int *stopped, int64_t *n,
                          int *popped);
pl_unit pl_unit_of(const pl_worker *w, const pl_block *b);

/* pl_overlap.c: the compute thread. init: starts it, bound to w->be (dm_backend_bind_thread);
 * free: ends it (after pl_compute_discard). post: starts unit b on it (w->cur is then its row
 * set). join: waits for the posted unit and copies its results (the message re-set in the
 * caller's thread when vs != DM_OK). */
dm_status pl_compute_init(pl_worker *w);
void pl_compute_free(pl_worker *w);
void pl_compute_post(pl_worker *w, const pl_block *b, int do_pop);
dm_status pl_compute_join(pl_worker *w, int *stopped, int64_t *n, int *popped);

#endif
