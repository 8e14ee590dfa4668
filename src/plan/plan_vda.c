/* VDA schedules (include/depthmatte/plan.h, "Video Depth Anything schedules"): windows of 32
 * frames every 22 frames, one window per rank and write round, the alignment state passed from
 * window to window. The window constants repeat include/depthmatte/vda.h's VDA_STRIDE /
 * VDA_WINDOW (the planner does not link the engine; src/pipeline/pl_vda.c checks they agree). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/plan.h"

enum { W_STRIDE = 22, W_LEN = 32, W_OWN_END = 24 };

int dm_vda_windows_with_rows(int64_t frames) {
    if (frames <= 0) return 0;
    int n = (int)((frames + W_STRIDE - 1) / W_STRIDE); /* windows start at 0, 22, ... < frames */
    int64_t b, e;
    while (n > 1 && (dm_vda_window_rows(frames, n - 1, &b, &e), b >= e)) n--;
    return n;
}

void dm_vda_window_rows(int64_t frames, int k, int64_t *begin, int64_t *end) {
    const int64_t start = (int64_t)k * W_STRIDE;
    const int n = frames <= 0 ? 0 : (int)((frames + W_STRIDE - 1) / W_STRIDE);
    int64_t b = k == 0 ? 0 : start + 2;
    int64_t e = k == n - 1 ? start + W_LEN : start + W_OWN_END;
    if (e > frames) e = frames;
    if (b > e) b = e;
    *begin = b;
    *end = e;
}

static dm_status fill_plan(dm_plan *out, const int64_t *frames, int n_videos, int nranks,
                           dm_split_policy split, int n_chunks) {
    out->n_videos = n_videos;
    out->nranks = nranks;
    out->opt = (dm_plan_options){0, split, 1, 1};
    out->frames = malloc((size_t)n_videos * sizeof *out->frames);
    out->rank_load = calloc((size_t)nranks, sizeof *out->rank_load);
    out->chunks = calloc((size_t)(n_chunks > 0 ? n_chunks : 1), sizeof *out->chunks);
    if (!out->frames || !out->rank_load || !out->chunks) {
        dm_plan_free(out);
        return dm_error_set(DM_ERR_NOMEM, "plan: out of memory");
    }
    memcpy(out->frames, frames, (size_t)n_videos * sizeof *frames);
    return DM_OK;
}

dm_status dm_plan_make_vda(const int64_t *frames, int n_videos, int nranks, dm_split_policy split,
                           dm_plan *out) {
    memset(out, 0, sizeof *out);
    if (split == DM_SPLIT_NEVER || (split == DM_SPLIT_AUTO && n_videos >= nranks)) {
        /* Whole videos: the LPT planner with no warm-up (VDA needs no context frames). */
        dm_plan_options o = {0, DM_SPLIT_NEVER, 1, 1};
        dm_status st = dm_plan_make(frames, n_videos, nranks, &o, out);
        if (!st) out->opt.split = split;
        return st;
    }
    if (!frames || n_videos < 1 || nranks < 1)
        return dm_error_set(DM_ERR_ARG, "plan: need at least one video and one rank (got %d "
                            "videos, %d ranks)", n_videos, nranks);
    int total = 0;
    for (int v = 0; v < n_videos; v++) {
        if (frames[v] < 1)
            return dm_error_set(DM_ERR_ARG, "plan: video %d has %" PRId64 " frames (need at "
                                "least one)", v, frames[v]);
        total += dm_vda_windows_with_rows(frames[v]);
    }
    dm_status st = fill_plan(out, frames, n_videos, nranks, split, total);
    if (st) return st;
    /* Round-robin over the concatenated window list, then sorted by rank (the plan's order). */
    int n = 0;
    for (int r = 0; r < nranks; r++) {
        int g = 0;
        for (int v = 0; v < n_videos; v++) {
            int nw = dm_vda_windows_with_rows(frames[v]);
            for (int k = 0; k < nw; k++, g++) {
                if (g % nranks != r) continue;
                int64_t b, e;
                dm_vda_window_rows(frames[v], k, &b, &e);
                out->chunks[n++] = (dm_chunk){v, r, b, e, b};
                out->rank_load[r] += e - b;
            }
        }
    }
    out->n_chunks = n;
    return DM_OK;
}

static int cmp_slot(const void *pa, const void *pb) {
    const dm_vda_slot *a = pa, *b = pb;
    if (a->video != b->video) return a->video < b->video ? -1 : 1;
    return (a->window > b->window) - (a->window < b->window);
}

/* Window whose rows start at `begin` (a chunk border), or -1 when begin is not a border. */
static int window_at(int64_t frames, int64_t begin) {
    if (begin == 0) return 0;
    if (begin < 2 || (begin - 2) % W_STRIDE != 0) return -1;
    int k = (int)((begin - 2) / W_STRIDE);
    return k < dm_vda_windows_with_rows(frames) ? k : -1;
}

dm_status dm_vda_schedule_make(const dm_plan *p, dm_vda_schedule *s) {
    memset(s, 0, sizeof *s);
    int total = 0;
    for (int v = 0; v < p->n_videos; v++) total += dm_vda_windows_with_rows(p->frames[v]);
    s->slot = calloc((size_t)(total > 0 ? total : 1), sizeof *s->slot);
    int *rounds = calloc((size_t)p->nranks, sizeof *rounds);
    if (!s->slot || !rounds) {
        free(rounds);
        dm_vda_schedule_free(s);
        return dm_error_set(DM_ERR_NOMEM, "plan: out of memory");
    }
    dm_status st = DM_OK;
    for (int i = 0; i < p->n_chunks && !st; i++) {
        const dm_chunk *c = &p->chunks[i];
        const int64_t T = p->frames[c->video];
        int k = window_at(T, c->begin);
        int64_t b, e;
        if (k < 0) {
            st = dm_error_set(DM_ERR_ARG, "plan: chunk %d of video %d starts at frame %" PRId64
                              ", not on a VDA window border (0 or 22k+2)", i, c->video, c->begin);
            break;
        }
        for (; !st; k++) {
            dm_vda_window_rows(T, k, &b, &e);
            if (b >= c->end) break;
            if (e > c->end || s->n >= total) {
                st = dm_error_set(DM_ERR_ARG, "plan: chunk %d of video %d ends at frame %" PRId64
                                  ", inside window %d", i, c->video, c->end, k);
                break;
            }
            s->slot[s->n++] = (dm_vda_slot){c->video, k, c->rank, rounds[c->rank]++, b, e};
        }
    }
    for (int r = 0; r < p->nranks; r++)
        if (rounds[r] > s->n_rounds) s->n_rounds = rounds[r];
    free(rounds);
    if (!st && s->n != total)
        st = dm_error_set(DM_ERR_ARG, "plan: %d windows planned, the videos have %d", s->n, total);
    if (!st) qsort(s->slot, (size_t)s->n, sizeof *s->slot, cmp_slot);
    for (int i = 0; i < s->n && !st; i++) {
        const dm_vda_slot *x = &s->slot[i];
        if (x->window == 0) continue;
        const dm_vda_slot *pr = &s->slot[i - 1];
        if (pr->video != x->video || pr->window != x->window - 1)
            st = dm_error_set(DM_ERR_ARG, "plan: video %d window %d planned twice or missing",
                              x->video, x->window);
        else if (pr->rank == x->rank ? pr->round != x->round - 1
                                     : (pr->round != x->round && pr->round != x->round - 1))
            st = dm_error_set(DM_ERR_ARG, "plan: video %d window %d (rank %d, round %d) cannot "
                              "get the alignment state of window %d (rank %d, round %d)",
                              x->video, x->window, x->rank, x->round, pr->window, pr->rank,
                              pr->round);
    }
    if (st) dm_vda_schedule_free(s);
    return st;
}

void dm_vda_schedule_free(dm_vda_schedule *s) {
    free(s->slot);
    memset(s, 0, sizeof *s);
}

int dm_vda_schedule_find(const dm_vda_schedule *s, int video, int window) {
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const dm_vda_slot *m = &s->slot[mid];
        int c = m->video != video ? (m->video < video ? -1 : 1)
                                  : (m->window > window) - (m->window < window);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}
