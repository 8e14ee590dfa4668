/* depthmatte — the distributed per-rank pipeline (DESIGN.md "Data flow").
 *
 *   rank 0: load + validate the job (config.h), check the output path, probe every input
 *           (video.h), plan chunks over the ranks (plan.h), broadcast config text, probe
 *           results and plan;
 *   all:    bind a device, load the weights once, collectively create (or --resume) the HDF5
 *           file (h5out.h);
 *   each rank, for each of its chunks: open the video, seek to context_begin, decode
 *           [context_begin, end); RVM's recurrent state is reset at the chunk start and warmed
 *           by the context frames, whose outputs are discarded (never written); depth is per
 *           frame and needs no context; rows [begin, end) are written in blocks of
 *           output.chunk_frames frames through collective write rounds;
 *   rank 0: progress lines while running, a per-rank summary table at the end; /ranks table.
 *
 * Every rank joins the same number of write rounds (the maximum over ranks of its blocks, from
 * the plan), so a rank that finished, skipped a done chunk (--resume) or lost its video
 * (--keep-going) still takes part with an empty block and nobody waits forever. Failures of a
 * video (probe on rank 0, decode / inference on any rank) travel through the round exchange,
 * so all ranks agree on them before the next collective call.
 */
#ifndef DEPTHMATTE_PIPELINE_H
#define DEPTHMATTE_PIPELINE_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "depthmatte/status.h"

/* Exit status of a job ended by the stall watchdog (docs/operations.md, "Stall watchdog"). */
enum { DM_PIPELINE_EXIT_STALL = 4 };

typedef struct dm_pipeline_options {
    int resume;         /* 1: continue an existing output file, skipping chunks already done */
    int keep_going;     /* 1: a bad video is recorded failed and the others complete */
    int64_t max_frames; /* > 0: only the first max_frames frames of every input (trials, tests) */
    int quiet;          /* 1: no progress lines (errors and the summary are still printed) */
    /* Graceful stop (e.g. Slurm's SIGTERM before the time limit): when non-NULL and *stop
     * becomes non-zero (set by a signal handler) on any rank, that rank finishes the frame in
     * flight and hands in the rows it has; at the end of the write round every rank learns of
     * it (collective MPI_MAX), so all stop after the same round, with data and done markers
     * written and flushed, and the file is closed (status stays "pending", complete = 0). */
    const volatile sig_atomic_t *stop;
    /* Ends the whole job with `exit_code` (the CLI: MPI_Abort). Called by the stall watchdog's
     * thread when ranks are stuck inside a collective write (docs/operations.md, "Stall
     * watchdog"); NULL: the watchdog only reports. */
    void (*abort_job)(int exit_code);
} dm_pipeline_options;

typedef struct dm_pipeline_result {
    int failed_videos;      /* videos recorded failed (with --keep-going) */
    int64_t frames_written; /* rows written by all ranks (context frames excluded) */
    int report;             /* 1: this rank holds the error message the CLI must print */
    int fatal;              /* 1: the error left collectives unfinished: MPI_Abort the job */
    int interrupted;        /* 1: stopped early through opt->stop (status DM_OK); --resume
                               completes the file */
    int stalled;            /* 1: the stall watchdog gave up waiting for other ranks (fatal;
                               the CLI ends the job with exit status 4) */
} dm_pipeline_result;

/* Runs a job on MPI_COMM_WORLD (MPI must be initialised; call on every rank). `job_path`,
 * `sets` ("key=value" overrides) are read on rank 0 only. Returns DM_OK when every video was
 * processed; DM_OK with result->failed_videos > 0 when --keep-going skipped bad videos;
 * DM_OK with result->interrupted = 1 after a graceful stop (opt->stop);
 * otherwise the error status, identical on every rank, with the one-line message
 * ("FILE: cause") in dm_error_message() on the rank(s) where result->report is 1. */
dm_status dm_pipeline_run(const char *job_path, const char *const *sets, int n_sets,
                          const dm_pipeline_options *opt, dm_pipeline_result *result);

/* Without MPI (depthmatte plan): loads the job (rank-0 path: config, probes; the output path
 * is not checked), plans for `ranks` ranks and prints the inputs and the chunk table to `out`.
 * Errors as dm_pipeline_run's setup ("FILE: cause" in dm_error_message()). */
dm_status dm_pipeline_print_plan(const char *job_path, const char *const *sets, int n_sets,
                                 const dm_pipeline_options *opt, int ranks, FILE *out);

#endif
