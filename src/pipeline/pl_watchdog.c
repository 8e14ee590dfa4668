/* Stall watchdog of the write rounds (pl_internal.h, docs/operations.md "Stall watchdog").
 *
 * A lost node or a dead link does not make MPI calls fail: TCP keeps a silent peer "connected"
 * and every rank waits forever in the next collective. So before each round's collective write
 * every rank checks in with rank 0 on a private communicator (point-to-point, nonblocking,
 * polled), rank 0 answers "go" once all have arrived. A round that does not complete within its
 * limit is reported with the ranks and hosts not heard from and the last completed round.
 *
 * Limit of a round: max(floor, factor x the slowest completed round) where floor is
 * runtime.stall_timeout and factor runtime.stall_factor (default 10); before any round has
 * completed (start-up, first decode) 5 x floor.
 * The slowest round already contains the slowest rank's pace, so a rank several times slower
 * than the rest never trips it; only a rank that stops progressing does.
 *
 * A rank lost while the others are inside the collective write itself (after the check-in) is
 * caught by a thread that watches the time spent in that phase; it cannot name the lost rank
 * (nobody can tell inside MPI-IO), and it ends the job through opt.abort_job. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pl_internal.h"

enum { WD_HOST_LEN = 64, TAG_ARRIVE = 1, TAG_GO = 2 };
enum { PHASE_IDLE = 0, PHASE_COLLECTIVE = 1 };

struct pl_watchdog {
    MPI_Comm comm; /* dup of MPI_COMM_WORLD: check-in messages never match the job's own */
    int rank, size;
    char *hosts;      /* (size, WD_HOST_LEN) processor names */
    double floor_s;   /* runtime.stall_timeout */
    double factor;    /* runtime.stall_factor */
    double slowest_s; /* slowest completed round (check-in to check-in), seconds */
    double last_done; /* pl_now() when the last round completed (or the watchdog started) */
    int last_round;   /* last completed round, -1 before the first */
    int n_rounds;
    double slow_sleep_s; /* DM_TEST_SLOW_RANK hook: seconds this rank sleeps per round */
    int *arrived;        /* rank 0: (size) check-in flags of the current round */
    int *rbuf;           /* rank 0: (size) received round numbers */
    MPI_Request *req;    /* rank 0: (size) receives / sends; others: [0] send, [1] receive */
    void (*abort_job)(int exit_code);
    /* shared with the thread */
    pthread_t thread;
    pthread_mutex_t mu;
    int thread_ok, quit, phase, round;
    double phase_deadline, phase_since;
};

double pl_watchdog_limit(const pl_watchdog *wd) {
    if (wd->last_round < 0) return 5.0 * wd->floor_s;
    const double f = wd->factor * wd->slowest_s;
    return f > wd->floor_s ? f : wd->floor_s;
}

static const char *host_of(const pl_watchdog *wd, int r) {
    return wd->hosts + (size_t)r * WD_HOST_LEN;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void *watch_thread(void *arg) {
    pl_watchdog *wd = arg;
    for (;;) {
        sleep_s(0.2);
        pthread_mutex_lock(&wd->mu);
        const int quit = wd->quit, phase = wd->phase, round = wd->round;
        const double deadline = wd->phase_deadline, since = wd->phase_since;
        pthread_mutex_unlock(&wd->mu);
        if (quit) return NULL;
        const double now = pl_now();
        if (phase != PHASE_COLLECTIVE || now < deadline) continue;
        char lastr[64];
        if (round < 1)
            snprintf(lastr, sizeof lastr, "none yet");
        else
            snprintf(lastr, sizeof lastr, "%d of %d", round - 1, wd->n_rounds);
        fprintf(stderr,
                "depthmatte: rank %d (host %s): stall: round %d has not completed "
                "%.0f s after every rank had checked in (inside the collective write or the "
                "stop exchange): a rank or its host was lost during the write; last completed "
                "round %s; ending the job (exit status %d), the file is resumable "
                "(--resume)\n",
                wd->rank, host_of(wd, wd->rank), round, now - since, lastr, PL_EXIT_STALL);
        fflush(stderr);
        if (wd->abort_job) wd->abort_job(PL_EXIT_STALL);
        return NULL; /* no abort hook (library use): the report is all we can do */
    }
}

dm_status pl_watchdog_init(pl_watchdog **out, const pl_ctx *c) {
    *out = NULL;
    pl_watchdog *wd = calloc(1, sizeof *wd);
    if (!wd) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    wd->rank = c->rank;
    wd->size = c->size;
    wd->floor_s = c->job.runtime.stall_timeout;
    wd->factor = c->job.runtime.stall_factor;
    wd->last_round = -1;
    wd->n_rounds = c->n_rounds;
    wd->abort_job = c->opt.abort_job;
    wd->comm = MPI_COMM_NULL;
    pthread_mutex_init(&wd->mu, NULL);
    *out = wd;
    /* Test hook (docs/operations.md): "R:S" makes rank R sleep S seconds per round, a slow but
     * alive rank that must not trip the watchdog. */
    const char *slow = getenv("DM_TEST_SLOW_RANK");
    int slow_rank = -1;
    double slow_s = 0;
    if (slow && sscanf(slow, "%d:%lf", &slow_rank, &slow_s) == 2 && slow_rank == c->rank &&
        slow_s > 0)
        wd->slow_sleep_s = slow_s;
    wd->hosts = calloc((size_t)c->size, WD_HOST_LEN);
    wd->arrived = calloc((size_t)c->size, sizeof *wd->arrived);
    wd->rbuf = calloc((size_t)c->size, sizeof *wd->rbuf);
    wd->req = calloc((size_t)c->size + 2, sizeof *wd->req);
    if (!wd->hosts || !wd->arrived || !wd->rbuf || !wd->req)
        return dm_error_set(DM_ERR_NOMEM, "out of memory");
    char name[MPI_MAX_PROCESSOR_NAME] = "", mine[WD_HOST_LEN] = "";
    int len = 0;
    MPI_Get_processor_name(name, &len);
    snprintf(mine, sizeof mine, "%s", name);
    if (MPI_Comm_dup(MPI_COMM_WORLD, &wd->comm) != MPI_SUCCESS ||
        MPI_Allgather(mine, WD_HOST_LEN, MPI_CHAR, wd->hosts, WD_HOST_LEN, MPI_CHAR, wd->comm) !=
            MPI_SUCCESS)
        return dm_error_set(DM_ERR_MPI, "stall watchdog: MPI_Comm_dup/MPI_Allgather failed");
    if (pthread_create(&wd->thread, NULL, watch_thread, wd) != 0)
        return dm_error_set(DM_ERR_NOMEM, "stall watchdog: pthread_create failed");
    wd->thread_ok = 1;
    wd->last_done = pl_now();
    return DM_OK;
}

void pl_watchdog_free(pl_watchdog *wd) {
    if (!wd) return;
    if (wd->thread_ok) {
        pthread_mutex_lock(&wd->mu);
        wd->quit = 1;
        pthread_mutex_unlock(&wd->mu);
        pthread_join(wd->thread, NULL);
    }
    pthread_mutex_destroy(&wd->mu);
    if (wd->comm != MPI_COMM_NULL) MPI_Comm_free(&wd->comm);
    free(wd->hosts);
    free(wd->arrived);
    free(wd->rbuf);
    free(wd->req);
    free(wd);
}

void pl_watchdog_round_work(pl_watchdog *wd) {
    if (wd->slow_sleep_s > 0) sleep_s(wd->slow_sleep_s);
}

/* The stall message: ranks not heard from, grouped by host when a host is silent entirely. */
static dm_status stall_error(const pl_watchdog *wd, int round, double waited, double limit) {
    char who[768] = "", lost[256] = "";
    size_t n = 0, nl = 0;
    int missing = 0;
    for (int r = 0; r < wd->size; r++) {
        if (wd->arrived[r]) continue;
        missing++;
        if (n < sizeof who - 64)
            n += (size_t)snprintf(who + n, sizeof who - n, "%srank %d (host %s)", n ? ", " : "", r,
                                  host_of(wd, r));
        /* a host none of whose ranks checked in (first such rank names it once) */
        int all = 1, first = 1;
        for (int q = 0; q < wd->size; q++)
            if (!strcmp(host_of(wd, q), host_of(wd, r))) {
                if (wd->arrived[q]) all = 0;
                if (q < r && !wd->arrived[q]) first = 0;
            }
        if (all && first && nl < sizeof lost - 80)
            nl += (size_t)snprintf(lost + nl, sizeof lost - nl, "%s%s", nl ? ", " : "",
                                   host_of(wd, r));
    }
    char lastr[64];
    if (wd->last_round < 0)
        snprintf(lastr, sizeof lastr, "none yet");
    else
        snprintf(lastr, sizeof lastr, "%d of %d", wd->last_round, wd->n_rounds);
    return dm_error_set(DM_ERR_MPI,
                        "stall: round %d has not completed after %.0f s (limit "
                        "%.0f s, runtime.stall_timeout %.0f s): waiting for %d rank(s): %s%s%s%s; "
                        "last completed round %s; the file is resumable (--resume)",
                        round, waited, limit, wd->floor_s, missing, who,
                        nl ? "; no rank of host " : "", lost, nl ? " answers" : "", lastr);
}

dm_status pl_watchdog_check_in(pl_watchdog *wd, int round) {
    const double limit = pl_watchdog_limit(wd);
    /* Rank 0 reports; the others wait a little longer, so that the precise list (who is
     * missing) wins, and only report themselves when rank 0 is the silent one. */
    const double grace = wd->rank == 0 ? 0 : (limit * 0.25 > 2 ? limit * 0.25 : 2);
    const double deadline = wd->last_done + limit + grace;
    int done = 0;
    if (wd->size == 1)
        done = 1;
    else if (wd->rank == 0) {
        memset(wd->arrived, 0, (size_t)wd->size * sizeof *wd->arrived);
        wd->arrived[0] = 1;
        for (int r = 1; r < wd->size; r++)
            MPI_Irecv(&wd->rbuf[r], 1, MPI_INT, r, TAG_ARRIVE, wd->comm, &wd->req[r]);
        int left = wd->size - 1;
        while (left > 0) {
            int cnt = 0;
            for (int r = 1; r < wd->size; r++) {
                if (wd->arrived[r]) continue;
                int flag = 0;
                if (MPI_Test(&wd->req[r], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                    return dm_error_set(DM_ERR_MPI, "stall watchdog: MPI_Test failed");
                if (flag) {
                    if (wd->rbuf[r] != round)
                        return dm_error_set(DM_ERR_MPI,
                                            "stall watchdog: rank %d checked in "
                                            "for round %d during round %d",
                                            r, wd->rbuf[r], round);
                    wd->arrived[r] = 1, left--, cnt++;
                }
            }
            if (!left) break;
            if (pl_now() > deadline) break;
            if (!cnt) sleep_s(0.001);
        }
        done = left == 0;
        if (done) {
            for (int r = 1; r < wd->size; r++)
                MPI_Isend(&round, 1, MPI_INT, r, TAG_GO, wd->comm, &wd->req[r]);
            /* small messages: sent eagerly, these complete without the receivers */
            MPI_Waitall(wd->size - 1, wd->req + 1, MPI_STATUSES_IGNORE);
        }
    } else {
        int go = -1, flags[2] = {0, 0};
        MPI_Isend(&round, 1, MPI_INT, 0, TAG_ARRIVE, wd->comm, &wd->req[0]);
        MPI_Irecv(&go, 1, MPI_INT, 0, TAG_GO, wd->comm, &wd->req[1]);
        for (;;) {
            for (int i = 0; i < 2; i++)
                if (!flags[i] && MPI_Test(&wd->req[i], &flags[i], MPI_STATUS_IGNORE) != MPI_SUCCESS)
                    return dm_error_set(DM_ERR_MPI, "stall watchdog: MPI_Test failed");
            if (flags[0] && flags[1]) break;
            if (pl_now() > deadline) break;
            sleep_s(0.001);
        }
        done = flags[0] && flags[1];
        if (done && go != round)
            return dm_error_set(DM_ERR_MPI, "stall watchdog: go for round %d during round %d", go,
                                round);
        if (!done) {
            /* only rank 0 is known to be missing from this rank's point of view */
            memset(wd->arrived, 0, (size_t)wd->size * sizeof *wd->arrived);
            for (int r = 1; r < wd->size; r++)
                wd->arrived[r] = 1;
        }
    }
    const double now = pl_now();
    if (!done) {
        dm_status st = stall_error(wd, round, now - wd->last_done, limit);
        if (wd->rank != 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", dm_error_message());
            st = dm_error_set(st,
                              "%s (rank 0 collects the check-ins of every round: it or "
                              "its host is not answering)",
                              msg);
        }
        return st;
    }
    /* Collective phase: the thread watches it until pl_watchdog_round_done. */
    pthread_mutex_lock(&wd->mu);
    wd->phase = PHASE_COLLECTIVE;
    wd->round = round;
    wd->phase_since = now;
    wd->phase_deadline = now + limit + (wd->rank == 0 ? 0 : grace);
    pthread_mutex_unlock(&wd->mu);
    return DM_OK;
}

void pl_watchdog_round_done(pl_watchdog *wd, int round) {
    const double now = pl_now();
    pthread_mutex_lock(&wd->mu);
    wd->phase = PHASE_IDLE;
    pthread_mutex_unlock(&wd->mu);
    const double d = now - wd->last_done;
    if (d > wd->slowest_s) wd->slowest_s = d;
    wd->last_done = now;
    wd->last_round = round;
}
