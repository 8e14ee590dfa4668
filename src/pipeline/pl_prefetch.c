/* Prefetch: one decode thread per rank fills a small ring of frame buffers, allocated once, so
 * that decoding frame t+1.. overlaps the networks on frame t (DESIGN.md "Decode, inference and
 * writing overlap"). The thread owns the chunk's reader between pl_prefetch_start and
 * pl_prefetch_stop (a reader is used by one thread at a time, video.h). Frames come out in
 * decode order; the consumer checks their indices. */
#include <stdlib.h>
#include <string.h>

#include "pl_internal.h"

dm_status pl_prefetch_init(pl_prefetch *p, size_t frame_bytes) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < PL_PREFETCH_SLOTS; i++) {
        p->slot[i].rgb = malloc(frame_bytes ? frame_bytes : 1);
        if (!p->slot[i].rgb) {
            pl_prefetch_free(p);
            return dm_error_set(DM_ERR_NOMEM, "out of memory for prefetch buffers");
        }
    }
    if (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->cv, NULL)) {
        pl_prefetch_free(p);
        return dm_error_set(DM_ERR_NOMEM, "cannot create the prefetch mutex");
    }
    p->inited = 1;
    return DM_OK;
}

static void *decode_main(void *arg) {
    pl_prefetch *p = arg;
    for (int64_t f = p->next; f < p->end; f++) {
        pthread_mutex_lock(&p->mu);
        while (p->filled == PL_PREFETCH_SLOTS && !p->cancel) pthread_cond_wait(&p->cv, &p->mu);
        int cancel = p->cancel;
        pthread_mutex_unlock(&p->mu);
        if (cancel) break;
        /* The slot at head + filled is free and only this thread touches it until published. */
        pl_frame *s = &p->slot[(p->head + p->filled) % PL_PREFETCH_SLOTS];
        double t0 = pl_now();
        s->index = -1;
        s->st = dm_video_read(p->reader, s->rgb, &s->index, &s->pts, &s->ts);
        if (s->st && s->st != DM_VIDEO_END)
            snprintf(s->msg, sizeof s->msg, "%s", dm_error_message()); /* per-thread message */
        double dt = pl_now() - t0;
        pthread_mutex_lock(&p->mu);
        p->decode_s += dt;
        p->filled++;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (s->st) break; /* end of stream or error: the consumer reports it */
    }
    return NULL;
}

dm_status pl_prefetch_start(pl_prefetch *p, dm_video_reader *reader, int64_t begin, int64_t end) {
    pl_prefetch_stop(p);
    p->reader = reader;
    p->next = begin;
    p->end = end;
    p->head = p->filled = 0;
    p->holding = 0;
    p->cancel = 0;
    if (begin >= end) return DM_OK;
    if (pthread_create(&p->thread, NULL, decode_main, p))
        return dm_error_set(DM_ERR_NOMEM, "cannot start the prefetch thread");
    p->running = 1;
    return DM_OK;
}

/* Returns the next decoded frame (waiting for it); the previous one is released first. */
dm_status pl_prefetch_next(pl_prefetch *p, const pl_frame **out, double *wait_s) {
    pthread_mutex_lock(&p->mu);
    if (p->holding) {
        p->head = (p->head + 1) % PL_PREFETCH_SLOTS;
        p->filled--;
        p->holding = 0;
        pthread_cond_broadcast(&p->cv);
    }
    double t0 = pl_now();
    while (p->filled == 0 && p->running) {
        if (p->next >= p->end) break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    *wait_s += pl_now() - t0;
    int have = p->filled > 0;
    if (have) {
        p->holding = 1;
        p->next++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!have) return DM_VIDEO_END;
    *out = &p->slot[p->head];
    return DM_OK;
}

double pl_prefetch_stop(pl_prefetch *p) {
    if (!p->inited) return 0;
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->cancel = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->running = 0;
    }
    double d = p->decode_s;
    p->decode_s = 0;
    p->reader = NULL;
    p->filled = p->holding = 0;
    return d;
}

void pl_prefetch_free(pl_prefetch *p) {
    if (p->inited) {
        pl_prefetch_stop(p);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    for (int i = 0; i < PL_PREFETCH_SLOTS; i++) free(p->slot[i].rgb);
    memset(p, 0, sizeof *p);
}
