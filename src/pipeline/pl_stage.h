/* One stage interface for every per-video model of the pipeline (DESIGN.md "Stages").
 *
 * A stage turns decoded frames of one video into output rows. The worker (pl_worker.c) runs a
 * rank's work as units: a unit is rows [begin, end) of one video that one write round writes
 * (a block of output.chunk_frames rows, or one Video Depth Anything window when VDA is in the
 * job: the planner takes the strictest unit among the job's stages). For each unit the worker
 *   1. asks every stage which source frames it needs (want: sorted frame ranges; RVM includes
 *      its warm-up context at the start of a split chunk, VDA a window's key frames 0 and
 *      22k-10 and its look-ahead past the unit's rows),
 *   2. decodes the union of those frames ONCE, in increasing order (frames decoded past the
 *      unit's end are kept for the next unit of the same chunk, so a frame is never decoded
 *      twice on a rank), and pushes each frame to the stages that want it,
 *   3. hands over the predecessor's state where a stage has one (VDA's scale/shift chain; the
 *      MPI exchange is the worker's, the stage only packs and unpacks its bytes),
 *   4. pops the finished rows: a stage writes rows into the unit's row buffers (output dtypes)
 *      possibly later than their frames were pushed (DA-V2 batches, VDA windows), and says how
 *      many rows from the unit's begin are finished.
 * Frame-synchronous stages (RVM, DA-V2) finish a row per pushed frame (at the latest at pop
 * with flush); windowed stages (VDA offline; VDA streaming is one more) finish rows only when
 * their window or state allows it. A stage with state that cannot be handed over (RVM's
 * recurrent state) warms up instead: its want set starts before begin at a chunk's first unit.
 *
 * Adding a stage (e.g. VDA streaming): a pl_stage_<name>.c with a create function and an ops
 * table, created in pl_worker_init (pl_worker.c) for the job keys that select it, its ops in
 * job_ops (the backend supports query). A causal per-frame model is frame-synchronous: want
 * [context_begin, end) at a chunk's first unit (warm-up, as RVM) or [begin, end), push runs
 * one frame, pop reports the rows pushed; the planner then makes blocks (pl_is_vda() must stay
 * false for it, it selects the window plan).
 *
 * Every function returns DM_OK or a dm_status with its message set (dm_error_set) naming the
 * video; such an error fails the unit's video (the job stops, or --keep-going skips it). */
#ifndef DM_PL_STAGE_H
#define DM_PL_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "depthmatte/backend.h"
#include "depthmatte/copy_async.h"
#include "depthmatte/h5out.h"
#include "pl_internal.h"

/* A unit of work: rows [begin, end) of video `video`, part of chunk `chunk` (pl_chunk). */
typedef struct pl_unit {
    int video, chunk;
    const dm_video_info *info; /* size, frames (already limited by max_frames), path */
    int64_t begin, end;        /* rows this unit writes */
    int64_t context_begin;     /* the chunk's first decoded frame (RVM warm-up), <= begin */
    int first;                 /* 1: first unit of its chunk on this rank (stages start cold) */
    int window;                /* VDA window index k of this unit, -1 for a block unit */
    int last;                  /* 1: no later unit of this video exists (VDA: finish rows) */
} pl_unit;

/* Sorted, disjoint frame ranges [a[i], b[i]) of one video. */
enum { PL_FRAME_SET_MAX = 4 };
typedef struct pl_frame_set {
    int n;
    int64_t a[PL_FRAME_SET_MAX], b[PL_FRAME_SET_MAX];
} pl_frame_set;

/* Appends [a, b) (a >= the last range's start; overlapping or adjacent ranges are merged).
 * DM_ERR_ARG past PL_FRAME_SET_MAX ranges. */
dm_status pl_frame_set_add(pl_frame_set *s, int64_t a, int64_t b);
int pl_frame_set_has(const pl_frame_set *s, int64_t f);

/* One decoded frame pushed to a stage. */
typedef struct pl_stage_frame {
    const uint8_t *rgb; /* (H, W, 3) u8, valid during the push only */
    int64_t index;      /* presentation index in the video */
} pl_stage_frame;

/* The unit's output rows, owned by the worker; row t is video frame begin + t. A stage writes
 * only its own datasets (NULL when the job does not have them). */
typedef struct pl_rows {
    void *alpha;  /* (cap, H, W) uint8 (alpha*255) or float16 (job output.alpha_dtype) */
    uint8_t *fgr; /* (cap, H, W, 3) uint8 */
    void *depth;  /* (cap, Hd, Wd) float16 or float32 (depth.dtype); Hd x Wd = source size,
                     or the DA-V2 model grid with depth.output_size model */
    int64_t cap;  /* rows of room */
} pl_rows;

typedef struct pl_stage pl_stage;

typedef struct pl_stage_ops {
    const char *name; /* "RVM", "DA-V2", "VDA" (messages, statistics) */
    int windowed;     /* 0: frame-synchronous (a stop request may end a unit early) */
    /* Frames needed for unit u, appended to *set (in increasing order). */
    dm_status (*want)(pl_stage *s, const pl_unit *u, pl_frame_set *set);
    /* Starts unit u (init for the video and its size at the first unit of a chunk; buffers
     * are resized only when the frame size changes). Called before the first push. */
    dm_status (*begin)(pl_stage *s, const pl_unit *u);
    /* One frame of the want set, in increasing order. May write rows. */
    dm_status (*push)(pl_stage *s, const pl_unit *u, const pl_stage_frame *f, pl_rows *rows);
    /* Finishes what it can (flush != 0: the unit's frames are all pushed, or a stop request
     * ended it early: run partial batches, windows, alignment) and sets *done to the number of
     * finished rows from u->begin (0 .. end - begin). */
    dm_status (*pop)(pl_stage *s, const pl_unit *u, int flush, pl_rows *rows, int64_t *done);
    /* State hand-over between ranks (all NULL for a stage without one). state_cap: the largest
     * state of this rank's videos, bytes. state_pack: the state after unit u (call after pop).
     * state_unpack: the state after the unit before u (its predecessor), received from another
     * rank. state_holds: 1 when the stage already holds the state after the predecessor of u
     * (the same rank ran it). */
    size_t (*state_cap)(const pl_stage *s);
    dm_status (*state_pack)(pl_stage *s, const pl_unit *u, void *buf, size_t cap, size_t *bytes);
    dm_status (*state_unpack)(pl_stage *s, const pl_unit *u, const void *buf, size_t bytes);
    int (*state_holds)(const pl_stage *s, const pl_unit *u);
    void (*free)(pl_stage *s);
} pl_stage_ops;

/* What every stage gets from the worker at creation. */
typedef struct pl_stage_env {
    const pl_ctx *c;         /* job, inputs, plan */
    dm_backend *be;          /* the rank's backend (CPU, CUDA or emulated) */
    dm_h5_rank_stats *stats; /* inference_s, verify_s, verified/recomputed frames */
    int64_t *video_recomputed; /* (n_inputs) frames recomputed in float32, per video */
    size_t max_px;           /* largest source frame (pixels) of this rank's units */
} pl_stage_env;

struct pl_stage {
    const pl_stage_ops *ops;
    pl_stage_env env;
};

/* The stages (pl_stage_rvm.c, pl_stage_da2.c, pl_stage_vda.c): load the model once for the
 * rank (weights from the job) and size buffers from env->max_px. */
dm_status pl_stage_rvm_create(pl_stage **s, const pl_stage_env *env);
dm_status pl_stage_da2_create(pl_stage **s, const pl_stage_env *env);
dm_status pl_stage_vda_create(pl_stage **s, const pl_stage_env *env);
/* VDA streaming mode (depth.mode stream, pl_stage_vda_stream.c): frame-synchronous. */
dm_status pl_stage_vda_stream_create(pl_stage **s, const pl_stage_env *env);

static inline void pl_stage_free(pl_stage *s) {
    if (s) s->ops->free(s);
}

/* Downloads of a stage's per-frame outputs, double buffered (one mechanism for every stage;
 * depthmatte/copy_async.h, docs/gpu.md "Downloads beside the compute"). A stage queues the
 * download of frame i (or of a DA-V2 batch, a VDA window) into the host buffer of a free slot
 * (pl_dl_next, then the model's *_async call with the slot's ticket) and commits it
 * (pl_dl_commit): that writes the rows of the frame before, whose download ran on the copy
 * stream beside frame i's compute, so at most one frame's download is pending when a push
 * returns, and frame i's host buffer is not refilled before its rows are written (two slots).
 * pop flushes (pl_dl_flush) before it reports rows done: the host waits for the last download
 * only when the rows are needed (the HDF5 write, the hand-over). A check that needs the host
 * values of the frame at once (runtime.verify, the non-finite guard's recompute) waits for the
 * slot first (pl_dl_ready). On the CPU backend every download is complete at once and the rows
 * are the same; only the time they are written differs. */
enum { PL_DL_SLOTS = 2 };
typedef struct pl_dl_slot {
    float *host;           /* page-locked on CUDA (dm_backend_host_alloc), `floats` floats */
    dm_copy_ticket ticket; /* the queued download into host */
    int pending;           /* 1: committed, rows not yet written */
    int64_t row, count;    /* the unit rows it holds: row .. row + count - 1 (0 count: none) */
    int flags;             /* stage-defined (RVM: the foreground was downloaded) */
} pl_dl_slot;

/* Writes rows [sl->row, sl->row + sl->count) of unit u from a slot whose download is done. */
typedef dm_status (*pl_dl_rows_fn)(pl_stage *s, const pl_unit *u, const pl_dl_slot *sl,
                                   pl_rows *rows);

typedef struct pl_dl {
    dm_backend *be;
    int nslots;             /* 2 (frame-synchronous stages) or 1 (VDA windows: one per unit) */
    pl_dl_slot slot[PL_DL_SLOTS];
    int next;               /* slot of the next download */
    pl_dl_rows_fn rows_out; /* NULL: the stage reads the slot itself after pl_dl_flush */
} pl_dl;

/* nslots (1 or 2) host buffers of `floats` floats each on be's host side. DM_ERR_NOMEM. */
dm_status pl_dl_init(pl_dl *q, dm_backend *be, int nslots, size_t floats, pl_dl_rows_fn fn);
/* Waits for pending downloads (without writing their rows) and frees the buffers. */
void pl_dl_free(pl_dl *q);
/* The slot for the next download (*out): free, as pl_dl_commit / pl_dl_flush leave it (a
 * download of a failed push, never committed, is waited for first). DM_ERR_ARG (an internal
 * error) when it is still pending. */
dm_status pl_dl_next(pl_dl *q, pl_dl_slot **out);
/* Waits for the slot's download: its host values may be read and overwritten from now on. */
dm_status pl_dl_ready(pl_dl *q, pl_dl_slot *sl);
/* The slot pl_dl_next gave holds a queued download of rows [row, row + count): marks it
 * pending and moves on, then writes the rows of the other pending slot (the frame before). */
dm_status pl_dl_commit(pl_dl *q, pl_stage *s, const pl_unit *u, pl_rows *rows);
/* Waits for every pending slot and writes its rows, oldest first (pop). */
dm_status pl_dl_flush(pl_dl *q, pl_stage *s, const pl_unit *u, pl_rows *rows);
/* Waits for every pending download and forgets its rows (a unit that starts after a cancelled
 * or failed one: those rows belong to no write). */
dm_status pl_dl_drop(pl_dl *q);

/* Helpers shared by the stages (pl_stage.c). */
int pl_verify_wanted(const pl_stage_env *env, int done_already);
dm_status pl_stage_verify(const pl_stage_env *env, dm_tol_model model, const char *stage,
                          const char *path, int64_t frame, const float *got, const float *ref,
                          size_t n);
/* The non-finite guard's count of a recompute (every stage, one mechanism): `frames` output
 * frames of unit u's video recomputed in float32 (the rank's recomputed_frames, the video's
 * attribute) and one stderr line "PATH: <unit> <index>: <bad> NaN/Inf <what> values in
 * <precision>; recomputed in float32" (unit "frame" or "window"). */
void pl_stage_recomputed(const pl_stage_env *env, const pl_unit *u, int64_t frames,
                         const char *unit, int64_t index, int64_t bad, const char *what);

#endif
