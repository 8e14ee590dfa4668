/* depthmatte run JOB.yaml [--resume] [--keep-going] [--set key=value]... [--max-frames N]
 * Initialises MPI, runs the pipeline, turns its status into one error line and an exit code:
 * 0 all videos done, 1 error, 2 completed with failed videos (--keep-going), 3 stopped by
 * SIGTERM after writing and flushing the rows done (complete with --resume), 4 ended by the
 * stall watchdog (a rank or host stopped answering; MPI_Abort). */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "depthmatte/pipeline.h"

/* Set by SIGTERM; the pipeline polls it per frame and agrees on it across ranks per round. */
static volatile sig_atomic_t g_stop = 0;

static void on_sigterm(int sig) {
    (void)sig;
    g_stop = 1; /* only the flag: anything else is not async-signal-safe */
}

/* The stall watchdog's way out (its thread, or a stall seen in the round loop): the other
 * ranks are stuck in MPI, only MPI_Abort ends them. */
static void abort_job(int exit_code) {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
}

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: depthmatte run JOB.yaml [--resume] [--keep-going] [--set key=value]...\n"
            "                      [--max-frames N] [--quiet]\n"
            "Run with mpirun/srun for several ranks (e.g. mpirun -np 4 depthmatte run job.yaml).\n"
            "  --resume        continue an existing output file; chunks already done are skipped\n"
            "  --keep-going    record a bad video as failed in the file and finish the others\n"
            "                  (exit status 2 when any video failed)\n"
            "  --set k=v       override a job key, e.g. --set output.path=out.h5 (repeatable)\n"
            "  --max-frames N  only the first N frames of every input (after target_fps;\n"
            "                  overrides the job's max_frames key; trials, tests)\n"
            "  --quiet         no progress lines\n"
            "Exit status: 0 done, 1 error (one line 'depthmatte: rank R: FILE: cause'), 2 done\n"
            "with failed videos, 3 stopped by SIGTERM (e.g. Slurm's warning before the time\n"
            "limit): the frames in flight were finished, everything written is marked done and\n"
            "flushed, the file is closed; rerun with --resume to complete it. 4 ended by the\n"
            "stall watchdog: a write round did not complete within runtime.stall_timeout\n"
            "(derived from the rounds so far); the message names the ranks and hosts not heard\n"
            "from; rows marked done stay valid (--resume).\n");
}

int cmd_run(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            run_usage(stdout);
            return 0;
        }
    MPI_Init(&argc, &argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    /* Errors come back as codes, so that our MPI_CHECKs can say which call failed. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    /* After MPI_Init, so that our handler is the one in place. SA_RESTART: reads and MPI
     * progress interrupted by the signal resume instead of failing with EINTR. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    dm_pipeline_options opt = {0};
    opt.stop = &g_stop;
    opt.abort_job = abort_job;
    const char *job = NULL, *bad = NULL;
    const char **sets = calloc(argc > 0 ? argc : 1, sizeof *sets);
    int n_sets = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--resume")) opt.resume = 1;
        else if (!strcmp(a, "--keep-going")) opt.keep_going = 1;
        else if (!strcmp(a, "--quiet")) opt.quiet = 1;
        else if (!strcmp(a, "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strncmp(a, "--set=", 6)) sets[n_sets++] = a + 6;
        else if (!strcmp(a, "--max-frames") && i + 1 < argc) {
            char *end;
            opt.max_frames = strtoll(argv[++i], &end, 10);
            if (*end || opt.max_frames < 1) bad = argv[i];
        } else if (a[0] == '-') bad = a;
        else if (!job) job = a;
        else bad = a;
    }
    if (bad || !job) {
        if (rank == 0) {
            if (bad) fprintf(stderr, "depthmatte run: unexpected argument '%s'\n", bad);
            else fprintf(stderr, "depthmatte run: missing JOB.yaml\n");
            run_usage(stderr);
        }
        free(sets);
        MPI_Finalize();
        return 1;
    }
    dm_pipeline_result res;
    dm_status st = dm_pipeline_run(job, sets, n_sets, &opt, &res);
    free(sets);
    if (st) {
        if (res.report) fprintf(stderr, "depthmatte: rank %d: %s\n", rank, dm_error_message());
        fflush(stderr);
        if (res.stalled) MPI_Abort(MPI_COMM_WORLD, DM_PIPELINE_EXIT_STALL); /* other ranks are not answering */
        if (res.fatal) MPI_Abort(MPI_COMM_WORLD, 1); /* collectives left unfinished */
        MPI_Finalize();
        return 1;
    }
    if (res.interrupted) {
        MPI_Finalize();
        return 3;
    }
    if (res.failed_videos > 0 && rank == 0)
        fprintf(stderr, "depthmatte: %d video(s) failed; recorded in the output file "
                "(status/error attributes)\n", res.failed_videos);
    MPI_Finalize();
    return res.failed_videos > 0 ? 2 : 0;
}
