/* The write/compute overlap (docs/operations.md "Overlap of writing and computing"): one
 * compute thread per rank runs the MPI-free part of a unit (decode through the prefetch ring,
 * every stage's push = the forward passes, and pop when no stage hands state over) while the
 * main thread does the previous round's check-in, collective HDF5 write and stop vote. MPI is
 * initialised without thread support, so every MPI and HDF5 call stays on the main thread;
 * the two threads never use the backend at the same time (main joins before it pops or
 * touches the device), and the rows the write reads are the other row set (pl_rowset), which
 * the computing unit never touches.
 *
 * The unit of round r + 1 is chosen before round r's exchange: if that exchange reports its
 * video failed on another rank (--keep-going), or the job stops, the unit is cancelled at its
 * next frame and its result dropped (pl_worker_discard), so what ranks agree on (rounds, the
 * stop vote, failed videos, done markers after their rows) happens exactly as without the
 * overlap. DM_OVERLAP=0 turns it off (everything on the main thread, one row set). */
#include <stdio.h>
#include <string.h>

#include "depthmatte/backend_host.h"
#include "pl_worker_impl.h"

static void *compute_main(void *arg) {
    pl_worker *w = arg;
    pl_compute *cp = &w->cp;
    pthread_mutex_lock(&cp->mu);
    for (;;) {
        while (!cp->posted && !cp->quit)
            pthread_cond_wait(&cp->cv, &cp->mu);
        if (cp->quit) break;
        const pl_unit u = cp->u;
        const int do_pop = cp->pop;
        pthread_mutex_unlock(&cp->mu);
        int stopped = 0, popped = 0;
        int64_t n = 0;
        const double t0 = pl_now();
        dm_status vs = pl_unit_compute(w, &u, do_pop, &stopped, &n, &popped);
        const double t1 = pl_now();
        pthread_mutex_lock(&cp->mu);
        cp->vs = vs;
        if (vs) snprintf(cp->msg, sizeof cp->msg, "%s", dm_error_message());
        cp->stopped = stopped, cp->popped = popped, cp->n = n;
        cp->t0 = t0, cp->t1 = t1;
        cp->posted = 0;
        pthread_cond_broadcast(&cp->cv);
    }
    pthread_mutex_unlock(&cp->mu);
    return NULL;
}

/* The thread binds itself to the backend first (OpenMP team size, CUDA device). */
static void *compute_start(void *arg) {
    pl_worker *w = arg;
    pl_compute *cp = &w->cp;
    dm_status st = dm_backend_bind_thread(w->be);
    pthread_mutex_lock(&cp->mu);
    cp->vs = st;
    if (st) snprintf(cp->msg, sizeof cp->msg, "%s", dm_error_message());
    cp->posted = 0; /* bound: init may go on */
    pthread_cond_broadcast(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    return st ? NULL : compute_main(arg);
}

dm_status pl_compute_init(pl_worker *w) {
    pl_compute *cp = &w->cp;
    if (pthread_mutex_init(&cp->mu, NULL))
        return dm_error_set(DM_ERR_NOMEM, "cannot create a mutex");
    if (pthread_cond_init(&cp->cv, NULL)) {
        pthread_mutex_destroy(&cp->mu);
        return dm_error_set(DM_ERR_NOMEM, "cannot create a condition variable");
    }
    atomic_store(&cp->cancel, 0);
    cp->posted = 1; /* until the thread has bound itself */
    if (pthread_create(&cp->thread, NULL, compute_start, w)) {
        pthread_cond_destroy(&cp->cv);
        pthread_mutex_destroy(&cp->mu);
        return dm_error_set(DM_ERR_NOMEM, "cannot start the compute thread");
    }
    cp->inited = 1;
    pthread_mutex_lock(&cp->mu);
    while (cp->posted)
        pthread_cond_wait(&cp->cv, &cp->mu);
    dm_status st = cp->vs;
    pthread_mutex_unlock(&cp->mu);
    if (st) return dm_error_set(st, "compute thread: %s", cp->msg); /* the thread has ended */
    return DM_OK;
}

void pl_compute_free(pl_worker *w) {
    pl_compute *cp = &w->cp;
    if (!cp->inited) return;
    atomic_store(&cp->cancel, 1);
    pthread_mutex_lock(&cp->mu);
    cp->quit = 1;
    pthread_cond_broadcast(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    pthread_join(cp->thread, NULL);
    pthread_cond_destroy(&cp->cv);
    pthread_mutex_destroy(&cp->mu);
    cp->inited = 0;
}

void pl_compute_post(pl_worker *w, const pl_block *b, int do_pop) {
    pl_compute *cp = &w->cp;
    w->cur = 1 - w->cur; /* the other row set: the last unit's rows may be being written */
    atomic_store(&cp->cancel, 0);
    pthread_mutex_lock(&cp->mu);
    cp->b = b;
    cp->u = pl_unit_of(w, b);
    cp->pop = do_pop;
    cp->w0 = cp->w1 = 0;
    cp->posted = 1;
    pthread_cond_broadcast(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    cp->pending = 1;
}

/* Waits for the posted unit. */
static void wait_unit(pl_worker *w) {
    pl_compute *cp = &w->cp;
    pthread_mutex_lock(&cp->mu);
    while (cp->posted)
        pthread_cond_wait(&cp->cv, &cp->mu);
    pthread_mutex_unlock(&cp->mu);
    cp->pending = 0;
}

dm_status pl_compute_join(pl_worker *w, int *stopped, int64_t *n, int *popped) {
    pl_compute *cp = &w->cp;
    wait_unit(w);
    /* the part of the write that ran while the unit computed: hidden behind it */
    const double a = cp->w0 > cp->t0 ? cp->w0 : cp->t0, z = cp->w1 < cp->t1 ? cp->w1 : cp->t1;
    if (cp->w1 > cp->w0 && z > a) w->stats.write_hidden_s += z - a;
    *stopped = cp->stopped, *n = cp->n, *popped = cp->popped;
    if (cp->vs) dm_error_set(cp->vs, "%s", cp->msg);
    return cp->vs;
}

int pl_worker_overlap(const pl_worker *w) {
    return w->overlap;
}

void pl_worker_speculate(pl_worker *w, const pl_block *b) {
    if (w->overlap && !w->cp.pending) pl_compute_post(w, b, w->handover == NULL);
}

const pl_block *pl_worker_pending(const pl_worker *w) {
    return w->cp.pending ? w->cp.b : NULL;
}

void pl_worker_note_write(pl_worker *w, double t0, double t1) {
    if (w->cp.pending) w->cp.w0 = t0, w->cp.w1 = t1;
}

void pl_worker_discard(pl_worker *w) {
    if (!w->cp.pending) return;
    atomic_store(&w->cp.cancel, 1);
    wait_unit(w); /* its result and message are dropped (the caller's message stays) */
    /* The unit stopped anywhere: reader, kept frames and stage state are unknown; the next
     * unit opens its chunk anew (it is of another chunk: the discarded one's video failed). */
    pl_worker_end_chunk(w);
}
