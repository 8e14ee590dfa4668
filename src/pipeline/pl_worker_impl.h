/* The worker's fields, shared by pl_worker.c (set-up) and pl_run_unit.c (the round body). */
#ifndef DM_PL_WORKER_IMPL_H
#define DM_PL_WORKER_IMPL_H

#include "pl_internal.h"
#include "pl_stage.h"

enum {
    PL_MAX_STAGES = 4,
    PL_KEEP_FRAMES = 16, /* frames kept past a unit's end (VDA looks 8 ahead) */
    PL_HDR = 5,          /* hand-over message header: {magic, video, window, ok, bytes} */
};

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
    pl_keep keep[2]; /* [0]: from the previous unit (read), [1]: for the next one (filled) */
    pl_rows rows;    /* the unit's rows in the output dtypes */
    int64_t *pts;    /* (rows.cap,) */
    double *ts;      /* (rows.cap,) */
    /* hand-over messages: int64 header {magic, video, window, ok, state bytes} + state */
    int64_t *msg, *carry;
    size_t msg_cap; /* bytes of each */
    int carry_video, carry_window, carry_ok;
    dm_h5_rank_stats stats;
};

#endif
