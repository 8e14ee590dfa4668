/* Private declarations of src/pipeline: the broadcast job description, the per-rank worker,
 * progress/summary reporting. */
#ifndef DM_PL_INTERNAL_H
#define DM_PL_INTERNAL_H

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>

#include "depthmatte/backend.h"
#include "depthmatte/config.h"
#include "depthmatte/h5out.h"
#include "depthmatte/pipeline.h"
#include "depthmatte/plan.h"
#include "depthmatte/rvm.h"
#include "depthmatte/tolerance.h"
#include "depthmatte/video.h"

/* One input as probed by rank 0 (plain bytes: broadcast as MPI_BYTE). */
typedef struct pl_input {
    int ok;                      /* 0: probe failed (only kept with --keep-going) */
    char error[DM_H5_MSG_MAX];   /* probe error message when !ok */
    dm_video_info info;          /* frames already limited by --max-frames */
} pl_input;

/* One chunk of the plan: rows [begin, end) of `video` on `rank`, decoded from context_begin
 * (context_begin <= begin; frames before begin only warm RVM's recurrent state). */
typedef struct pl_chunk {
    int32_t video, rank;
    int64_t begin, end, context_begin;
} pl_chunk;

/* One unit of a rank (pl_stage.h): rows [begin, begin + count) of chunk `chunk`, written in
 * one write round. Block units (no windowed stage in the job) are processed in order, one per
 * round, skipped ones taking no round; VDA units are the windows of the VDA schedule, each in
 * its fixed round `round`, with the ranks of the windows before and after for the hand-over of
 * the alignment state. */
typedef struct pl_block {
    int chunk;
    int64_t begin, count;
    int first;  /* 1: first unit of its chunk (open the video, decode the context) */
    int window; /* VDA window index, -1 for a block unit */
    int round;  /* VDA: write round of this unit; -1 for a block unit */
    int last;   /* 1: last unit of its video (no later window) */
    int pred_rank, pred_round; /* VDA: who ran window - 1 and when (-1: window 0) */
    int succ_rank;             /* VDA: who runs window + 1 (-1: none) */
} pl_block;

typedef struct pl_ctx {
    int rank, size;
    dm_pipeline_options opt;
    dm_job job;          /* parsed from the broadcast effective configuration, every rank */
    char *config_text;   /* effective configuration (YAML), identical on every rank */
    pl_input *inputs;
    int n_inputs;
    pl_chunk *chunks;
    int n_chunks;
    pl_block *blocks;    /* this rank's blocks in processing order */
    int n_blocks;
    int n_rounds;        /* max over ranks of their block count */
    int64_t total_frames; /* rows to write over all ranks (ok videos) */
    int is_vda;           /* depth.model is a Video Depth Anything model: units = windows */
    dm_vda_schedule vda;  /* VDA: every window of the job (all ranks), see plan.h */
} pl_ctx;

/* The reader options of input i (include/depthmatte/video.h): video_stream, target_fps,
 * max_res, and for an image sequence (dm_video_is_image_sequence) its frame rate (the item's
 * fps, else image_fps). DM_ERR_ARG naming the input: an image sequence without a rate, or an
 * fps given for a video file. */
dm_status pl_video_options(const dm_job *job, int i, dm_video_options *o);

/* Rank 0: job, output checks, probes and plan; then everything broadcast to all ranks.
 * Collective. On error the status is the same on every rank and rank 0 holds the message. */
dm_status pl_setup(pl_ctx *c, const char *job_path, const char *const *sets, int n_sets);

/* Rank 0: makes the chunk table from the probed inputs (pl_plan.c) for c->size ranks, or for
 * `ranks` ranks (depthmatte plan --ranks N). */
dm_status pl_make_plan(pl_ctx *c);
dm_status pl_plan_for_ranks(pl_ctx *c, int ranks);

/* Without MPI: job, output checks (unless skip_output_check), probes (depthmatte plan). */
dm_status pl_load_and_probe(pl_ctx *c, const char *job_path, const char *const *sets,
                            int n_sets, int check_output_path);

/* Every rank: its block list and the number of rounds, from the chunk table. */
dm_status pl_make_blocks(pl_ctx *c, int chunk_frames);

void pl_ctx_free(pl_ctx *c);

/* Per-rank worker: backend, models, buffers sized once, the open reader of the current chunk. */
/* runtime.verify: compares n output values of device backend `be` (got) with the CPU
 * reference's (ref) of network `model`, within selftest's network bounds for be's precision
 * (dm_tol_network, include/depthmatte/tolerance.h). Otherwise DM_ERR_VERIFY with one line
 * naming video `path`, `frame`, `stage`, backend, precision, rank, host, the error and the
 * bound. */
dm_status pl_verify_compare(const dm_backend *be, dm_tol_model model, const char *stage,
                            const char *path, int64_t frame, const float *got, const float *ref,
                            size_t n);

/* NaN and +-Inf values among x[0..n) (the non-finite guard of every model's outputs). */
int64_t pl_count_nonfinite(const float *x, size_t n);

typedef struct pl_worker pl_worker;

/* Backend, the job's stages (pl_stage.h: RVM, DA-V2, VDA, each loaded once), the decode ring
 * and the row buffers, sized once from this rank's units. Collective (GPU binding). */
dm_status pl_worker_init(pl_worker **w, pl_ctx *c, MPI_Comm comm);
void pl_worker_free(pl_worker *w);

/* Everything this rank does in write round `round` (pl_run_unit.c): unit `b` (NULL: none; or
 * skipped when runs == 0: --resume, or its video already failed) through every stage over one
 * decode of its frames, and the stage state hand-over of the round (point-to-point with the
 * neighbouring units' ranks; `next`/`next_runs`: this rank's unit of round + 1, whose state
 * may arrive in this round). *out: the rows to write (video -1: none). A video error (decode,
 * network, verification, the previous window failed) gives *failed_video = the video and
 * *video_status its status, with its message in dm_error_message(); the return value is DM_OK
 * then. Returns an error only for MPI / protocol failures, after which the job must abort.
 * Every rank must call it for every round of a job with a hand-over (VDA). */
dm_status pl_worker_round(pl_worker *w, int round, const pl_block *b, int runs,
                          const pl_block *next, int next_runs, dm_h5_block *out,
                          int *failed_video, dm_status *video_status);

/* The write/compute overlap (pl_overlap.c; off with DM_OVERLAP=0): 1 when it is on. */
int pl_worker_overlap(const pl_worker *w);
/* Starts unit b (of the next round) on the compute thread, so that it computes while the main
 * thread writes this round's rows (no-op with the overlap off or a unit already posted). The
 * next pl_worker_round with the same b and runs joins it; with another b (a video failed
 * elsewhere in between) it is discarded first. */
void pl_worker_speculate(pl_worker *w, const pl_block *b);
/* The unit posted by pl_worker_speculate and not yet joined, or NULL. */
const pl_block *pl_worker_pending(const pl_worker *w);
/* Records [t0, t1] (pl_now) as the collective write that ran beside the posted unit: the part
 * of it during which the unit computed counts as write_hidden_s when the unit is joined. */
void pl_worker_note_write(pl_worker *w, double t0, double t1);
/* Cancels the posted unit (at its next frame), waits for it and drops its result; the chunk is
 * ended (its reader and stage state are unknown). No-op without one. Call before leaving the
 * round loop, so that no thread uses the backend, reader or file after it. */
void pl_worker_discard(pl_worker *w);

/* Ends the current chunk (stops the decode thread, closes its reader). */
void pl_worker_end_chunk(pl_worker *w);

/* Statistics of this rank so far (frames, seconds per stage). */
dm_h5_rank_stats *pl_worker_stats(pl_worker *w);
/* Frames this rank recomputed in float32, per video (n_inputs entries). */
const int64_t *pl_worker_video_recomputed(const pl_worker *w);

/* 1 when the job's depth model is a Video Depth Anything model (either depth.mode). */
static inline int pl_is_vda_model(const dm_job *job) {
    return job->depth.enabled && (job->depth.model == DM_DEPTH_VDA_VITS ||
                                  job->depth.model == DM_DEPTH_VDA_VITS_METRIC);
}

/* 1 when the job's depth stage is offline Video Depth Anything: units are its windows. The
 * streaming mode (depth.mode stream) is frame-synchronous: block units, whole videos. */
static inline int pl_is_vda(const dm_job *job) {
    return pl_is_vda_model(job) && job->depth.mode == DM_DEPTH_MODE_OFFLINE;
}

/* 1 when the job's depth stage is the VDA streaming mode (pl_stage_vda_stream.c). */
static inline int pl_is_vda_stream(const dm_job *job) {
    return pl_is_vda_model(job) && job->depth.mode == DM_DEPTH_MODE_STREAM;
}

/* Matting / depth identifiers stored in the file. */
const char *pl_depth_model_name(const dm_job *job);

/* Prefetch ring (pl_prefetch.c): a decode thread fills PL_PREFETCH_SLOTS preallocated frames
 * ahead of the networks. */
enum { PL_PREFETCH_SLOTS = 4 };

typedef struct pl_frame {
    uint8_t *rgb;     /* (H, W, 3) decoded frame, allocated once */
    int64_t index;    /* presentation index the decoder returned */
    int64_t pts;
    double ts;
    dm_status st;     /* DM_OK, DM_VIDEO_END or the decode error */
    char msg[1024];   /* the decode error's message (messages are per thread) */
} pl_frame;

typedef struct pl_prefetch {
    pl_frame slot[PL_PREFETCH_SLOTS];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dm_video_reader *reader; /* owned by the thread while running */
    int64_t next, end;       /* next frame to hand out; decode stops before `end` */
    int head, filled;        /* ring: oldest filled slot, number of filled slots */
    int holding;             /* the consumer holds slot[head] */
    int cancel, running, inited;
    double decode_s;         /* seconds the thread spent decoding since the last stop */
} pl_prefetch;

dm_status pl_prefetch_init(pl_prefetch *p, size_t frame_bytes);
/* Starts decoding frames [begin, end) (positions: the reader must already be at `begin`). */
dm_status pl_prefetch_start(pl_prefetch *p, dm_video_reader *reader, int64_t begin, int64_t end);
/* Next frame in decode order (releases the previous one); adds the waiting time to *wait_s.
 * DM_VIDEO_END when no frame is left in [begin, end). Check frame->st and frame->index. */
dm_status pl_prefetch_next(pl_prefetch *p, const pl_frame **frame, double *wait_s);
/* Cancels and joins the thread (the reader may then be closed); returns its decode seconds. */
double pl_prefetch_stop(pl_prefetch *p);
void pl_prefetch_free(pl_prefetch *p);

/* Hex SHA-256 (64 digits + NUL) of the file at `path` (OpenSSL EVP). DM_ERR_IO naming the file. */
dm_status pl_sha256_file(const char *path, char hex[65]);

/* Wall-clock seconds (monotonic). */
double pl_now(void);

/* Rank 0 progress line (throttled to one per ~2 s unless final). */
void pl_progress(const pl_ctx *c, int64_t done, double t0, int final);

/* Collective: prints the per-rank summary table on rank 0. */
void pl_summary(const pl_ctx *c, const dm_h5_rank_stats *mine, MPI_Comm comm);

/* Stall watchdog (pl_watchdog.c): check-in of every rank before each round's collective
 * write, with a limit derived from the rounds so far (runtime.stall_timeout is its floor). */
typedef struct pl_watchdog pl_watchdog;

/* Exit status of a job ended by the watchdog (through opt.abort_job, i.e. MPI_Abort). */
enum { PL_EXIT_STALL = DM_PIPELINE_EXIT_STALL };

/* Collective (MPI_Comm_dup, host names gathered): starts the watchdog and its thread. */
dm_status pl_watchdog_init(pl_watchdog **wd, const pl_ctx *c);
void pl_watchdog_free(pl_watchdog *wd);
/* Seconds the current round may take (from the end of the previous one). */
double pl_watchdog_limit(const pl_watchdog *wd);
/* Start of a round's own work (the DM_TEST_SLOW_RANK hook sleeps here). */
void pl_watchdog_round_work(pl_watchdog *wd);
/* Before the round's collective write: returns DM_OK once every rank has checked in for
 * `round`; a stall gives DM_ERR_MPI with the message naming the ranks/hosts not heard from and
 * the last completed round (the caller ends the job: opt.abort_job(PL_EXIT_STALL)). */
dm_status pl_watchdog_check_in(pl_watchdog *wd, int round);
/* After the round's collectives (write + stop exchange): the round counts as completed. */
void pl_watchdog_round_done(pl_watchdog *wd, int round);

#endif
