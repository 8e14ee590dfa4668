/* depthmatte — chunk planning: which rank processes which frames of which video.
 *
 * Pure functions (no MPI, no I/O besides dm_plan_print): rank 0 makes the plan, packs it into a
 * flat int64 array for MPI_Bcast, the other ranks unpack it. Deterministic: the same inputs give
 * the same plan on every machine (integer arithmetic, every tie broken by index).
 *
 * A chunk owns frames [begin, end) of one video and decodes from context_begin =
 * max(0, begin - warmup_frames): the context frames [context_begin, begin) only warm up RVM's
 * recurrent state and are discarded (DESIGN.md "Context frames"). The cost of a chunk, in frames
 * run through the networks, is end - context_begin; a rank's load is the sum of its chunks'
 * costs.
 *
 * Policies (dm_split_policy):
 * - NEVER: every video is one chunk; chunks placed longest first on the least-loaded rank (LPT).
 * - AUTO: RVM's state has a long memory, so videos stay whole unless ranks would idle. Starting
 *   from the NEVER plan, repeatedly split the video holding the costliest piece into one more
 *   equal piece (borders on multiples of align_frames, every piece >= min_chunk_frames), place
 *   all pieces by LPT, merge pieces of one video that land adjacent on one rank, and keep the
 *   plan with the smallest maximum load (the earliest, i.e. fewest splits, on ties). At most
 *   2 * nranks splits are tried. The result is never worse than NEVER.
 * - ALWAYS: the concatenated timeline of all videos (in order) is cut into per-rank shares of
 *   ceil(remaining frames / remaining ranks) each, borders on multiples of align_frames, no
 *   piece shorter than min_chunk_frames.
 *
 * Balance bounds (checked by tests/plan/test_plan.c), F = total frames, R = ranks:
 * - NEVER: max load <= (F + (R - 1) * longest video) / R (Graham's LPT list-scheduling bound).
 * - AUTO: max load <= NEVER's max load; one video on R ranks with F >= R * min_chunk_frames and
 *   align 1 gets max load <= ceil(F / R) + warmup_frames.
 * - ALWAYS with align_frames = min_chunk_frames = 1: own frames per rank <= ceil(F / R) and load
 *   <= ceil(F / R) + warmup_frames (only a rank's first chunk can start inside a video).
 */
#ifndef DEPTHMATTE_PLAN_H
#define DEPTHMATTE_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "depthmatte/status.h"

typedef enum dm_split_policy {
    DM_SPLIT_AUTO = 0, /* whole videos; split one only when a rank would otherwise idle */
    DM_SPLIT_ALWAYS,   /* cut the concatenated timeline into equal per-rank shares */
    DM_SPLIT_NEVER,    /* every video whole on one rank */
} dm_split_policy;

typedef struct dm_plan_options {
    int64_t warmup_frames; /* context frames before a chunk not starting at 0, >= 0 */
    dm_split_policy split;
    int64_t min_chunk_frames; /* no piece of a split video owns fewer frames, >= 1 */
    int64_t align_frames;     /* chunk borders are multiples of this (VDA windows), >= 1 */
} dm_plan_options;

typedef struct dm_chunk {
    int video;             /* index into the frames array given to dm_plan_make */
    int rank;              /* 0 .. nranks-1 */
    int64_t begin, end;    /* owned frames [begin, end) */
    int64_t context_begin; /* first decoded frame: max(0, begin - warmup_frames) */
} dm_chunk;

typedef struct dm_plan {
    int n_videos;
    int nranks;
    int n_chunks;
    dm_plan_options opt;
    int64_t *frames;    /* (n_videos,) frames of each video */
    dm_chunk *chunks;   /* (n_chunks,) sorted by rank, then video, then begin */
    int64_t *rank_load; /* (nranks,) sum of chunk costs (frames incl. context) */
} dm_plan;

/* Frames a chunk runs through the networks: owned + context. */
static inline int64_t dm_chunk_cost(const dm_chunk *c) {
    return c->end - c->context_begin;
}

/* Options matching the config defaults: warm-up 32, AUTO, min chunk 64, align 1. */
dm_plan_options dm_plan_options_default(void);

/* Plans `n_videos` videos of frames[i] frames over `nranks` ranks. DM_ERR_ARG for a video with
 * fewer than one frame ("plan: video 3 has 0 frames"), n_videos < 1, nranks < 1 or invalid
 * options; DM_ERR_NOMEM. On error *out is zeroed. Free with dm_plan_free. */
dm_status dm_plan_make(const int64_t *frames, int n_videos, int nranks, const dm_plan_options *opt,
                       dm_plan *out);

/* Releases the plan's arrays and zeroes it. Safe on a zeroed plan. */
void dm_plan_free(dm_plan *plan);

/* Largest rank load (frames incl. context). */
int64_t dm_plan_max_load(const dm_plan *plan);

/* The chunks of `rank` are plan->chunks[*first .. *first + *count). */
void dm_plan_rank_chunks(const dm_plan *plan, int rank, int *first, int *count);

/* Checks the invariants: every frame of every video owned by exactly one chunk, contexts equal
 * max(0, begin - warmup), ranks in range, chunks sorted, borders aligned (except video ends),
 * rank_load consistent. DM_ERR_ARG naming the first violation. */
dm_status dm_plan_validate(const dm_plan *plan);

/* Number of int64 values dm_plan_pack writes: 8 + n_videos + 5 * n_chunks. */
size_t dm_plan_pack_size(const dm_plan *plan);

/* Serializes the plan into buf[0 .. dm_plan_pack_size) for MPI_Bcast (MPI_INT64_T). DM_ERR_ARG
 * if `cap` is too small. */
dm_status dm_plan_pack(const dm_plan *plan, int64_t *buf, size_t cap);

/* Rebuilds a plan from `n` packed values and validates it (dm_plan_validate). DM_ERR_FORMAT for
 * a wrong magic/version or size, DM_ERR_ARG for invariant violations, DM_ERR_NOMEM. */
dm_status dm_plan_unpack(const int64_t *buf, size_t n, dm_plan *out);

/* Prints the chunk table (video, rank, own range, context range, frames) and the per-rank
 * loads with the imbalance (max load / (total load / ranks)). */
void dm_plan_print(const dm_plan *plan, FILE *f);

/* ---- Video Depth Anything (VDA) schedules -------------------------------------------------
 * VDA runs 32-frame windows starting every 22 frames and aligns window k's scale/shift to window
 * k-1 (include/depthmatte/vda.h). Window k finalises output rows [22k+2, 22k+24) (window 0: [0,
 * 24)); the last window also the 8 rows after that; rows are clipped to the video. The unit of
 * work is one window: every forward pass is independent, only the small alignment state goes
 * from window k-1 to window k, possibly from rank to rank. A rank processes one window per write
 * round, so a window's predecessor must run on the same rank in the previous round (state kept
 * locally) or on another rank in the same round (state received after the predecessor's
 * alignment, a chain that ripples through the ranks) or in the previous round (received at the
 * end of that round and kept for one round). DESIGN.md "VDA". */

/* Output rows [*begin, *end) of window k of a video of `frames` frames (may be empty for a last
 * window that starts on the final frame or two: its rows lie past the video end). */
void dm_vda_window_rows(int64_t frames, int k, int64_t *begin, int64_t *end);

/* Number of windows that own at least one row (windows 0 .. n-1). */
int dm_vda_windows_with_rows(int64_t frames);

/* Plans a VDA job: whole videos per rank (LPT by frames, state kept on the rank) when `split` is
 * NEVER, or AUTO with at least as many videos as ranks; otherwise the windows of all videos, in
 * video order, go round-robin over the ranks (window g of the concatenated list on rank g mod
 * nranks, round g / nranks), one chunk per window (rows as dm_vda_window_rows). warmup 0, align 1
 * (chunk borders are the window borders 22k+2). Errors as dm_plan_make. */
dm_status dm_plan_make_vda(const int64_t *frames, int n_videos, int nranks, dm_split_policy split,
                           dm_plan *out);

/* One window of a VDA schedule. */
typedef struct dm_vda_slot {
    int video, window; /* window index k within its video */
    int rank, round;   /* who runs it, and in which write round (index in the rank's list) */
    int64_t begin, end; /* output rows */
} dm_vda_slot;

typedef struct dm_vda_schedule {
    int n;             /* windows with rows, all videos */
    dm_vda_slot *slot; /* (n,) sorted by video, then window */
    int n_rounds;      /* max over ranks of windows per rank */
} dm_vda_schedule;

/* Expands a plan (any chunks tiling the videos on window borders, e.g. dm_plan_make_vda's) into
 * windows, numbers each rank's windows in its chunk order (= rounds), and checks the dependency
 * rule above; DM_ERR_ARG names the first window whose predecessor is misplaced or a chunk border
 * that is not a window border. Free with dm_vda_schedule_free. */
dm_status dm_vda_schedule_make(const dm_plan *plan, dm_vda_schedule *s);
void dm_vda_schedule_free(dm_vda_schedule *s);

/* Index in s->slot of window k of `video`, or -1. */
int dm_vda_schedule_find(const dm_vda_schedule *s, int video, int window);

#endif
