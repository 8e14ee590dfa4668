/* Chunk planning: NEVER / AUTO (LPT over whole videos, split only when it lowers the maximum
 * rank load) / ALWAYS (equal shares of the concatenated timeline). See include/depthmatte/plan.h
 * for the policy, the cost model and the balance bounds. Integer arithmetic only, every tie
 * broken by index, so every rank computes the same plan. */
#include <stdlib.h>
#include <string.h>

#include "depthmatte/plan.h"

typedef struct piece {
    int video;
    int rank;
    int64_t begin, end;
    int64_t cost; /* end - context_begin */
} piece;

static int64_t context_of(const dm_plan_options *o, int64_t begin) {
    return begin > o->warmup_frames ? begin - o->warmup_frames : 0;
}

static piece make_piece(const dm_plan_options *o, int video, int64_t b, int64_t e) {
    piece p = {video, -1, b, e, e - context_of(o, b)};
    return p;
}

dm_plan_options dm_plan_options_default(void) {
    dm_plan_options o = {32, DM_SPLIT_AUTO, 64, 1};
    return o;
}

/* Splits a video of F frames into k pieces of as-equal-as-possible numbers of align units (the
 * larger pieces last, where the short tail unit is). Returns -1 if k pieces are not allowed:
 * more pieces than units, or (k > 1) a piece shorter than min_chunk_frames. */
static int split_even(const dm_plan_options *o, int video, int64_t F, int64_t k, piece *out) {
    int64_t a = o->align_frames, units = (F + a - 1) / a;
    if (k < 1 || k > units) return -1;
    int64_t base = units / k, extra = units % k, u = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t b = u * a;
        u += base + (i >= k - extra);
        int64_t e = u * a < F ? u * a : F;
        if (k > 1 && e - b < o->min_chunk_frames) return -1;
        if (out) out[i] = make_piece(o, video, b, e);
    }
    return 0;
}

/* LPT order: costliest first, then by video and position. */
static int cmp_lpt(const void *pa, const void *pb) {
    const piece *a = pa, *b = pb;
    if (a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
    if (a->video != b->video) return a->video < b->video ? -1 : 1;
    return (a->begin > b->begin) - (a->begin < b->begin);
}

static int cmp_rank_order(const void *pa, const void *pb) {
    const piece *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    if (a->video != b->video) return a->video < b->video ? -1 : 1;
    return (a->begin > b->begin) - (a->begin < b->begin);
}

/* Min-heap of ranks keyed by (load, rank). */
static int heap_less(const int64_t *load, int a, int b) {
    return load[a] < load[b] || (load[a] == load[b] && a < b);
}

static void heap_sift_down(int *h, int n, const int64_t *load, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && heap_less(load, h[l], h[m])) m = l;
        if (r < n && heap_less(load, h[r], h[m])) m = r;
        if (m == i) return;
        int t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Sorts assigned pieces by (rank, video, begin), merges pieces of one video that are adjacent
 * on one rank (the second needs no warm-up then), recomputes loads; returns the max load. */
static int64_t finalize(const dm_plan_options *o, piece *p, int *n, int nranks, int64_t *load) {
    qsort(p, (size_t)*n, sizeof *p, cmp_rank_order);
    int m = 0;
    for (int i = 0; i < *n; i++) {
        if (m > 0 && p[m - 1].rank == p[i].rank && p[m - 1].video == p[i].video &&
            p[m - 1].end == p[i].begin) {
            p[m - 1].end = p[i].end;
            p[m - 1].cost = p[m - 1].end - context_of(o, p[m - 1].begin);
        } else {
            p[m++] = p[i];
        }
    }
    *n = m;
    memset(load, 0, (size_t)nranks * sizeof *load);
    int64_t max = 0;
    for (int i = 0; i < m; i++) {
        load[p[i].rank] += p[i].cost;
        if (load[p[i].rank] > max) max = load[p[i].rank];
    }
    return max;
}

/* Places pieces by LPT (costliest first onto the least-loaded rank), then finalizes. */
static int64_t place_lpt(const dm_plan_options *o, piece *p, int *n, int nranks, int64_t *load,
                         int *heap) {
    qsort(p, (size_t)*n, sizeof *p, cmp_lpt);
    memset(load, 0, (size_t)nranks * sizeof *load);
    for (int r = 0; r < nranks; r++)
        heap[r] = r; /* all loads 0: already a heap by rank */
    for (int i = 0; i < *n; i++) {
        int r = heap[0];
        p[i].rank = r;
        load[r] += p[i].cost;
        heap_sift_down(heap, nranks, load, 0);
    }
    return finalize(o, p, n, nranks, load);
}

typedef struct scratch {
    piece *pieces;
    int64_t *load;
    int *heap;
} scratch;

/* Builds the pieces for per-video piece counts k[] and places them; returns the max load. */
static int64_t evaluate(const dm_plan_options *o, const int64_t *frames, int n_videos,
                        const int64_t *k, int nranks, scratch *s, int *n_pieces) {
    int n = 0;
    for (int v = 0; v < n_videos; v++) {
        split_even(o, v, frames[v], k[v], s->pieces + n); /* k[v] was checked allowed */
        n += (int)k[v];
    }
    *n_pieces = n;
    return place_lpt(o, s->pieces, n_pieces, nranks, s->load, s->heap);
}

/* Costliest piece and total cost of video v split in k pieces (k allowed). */
static void piece_stats(const dm_plan_options *o, int v, int64_t F, int64_t k, piece *tmp,
                        int64_t *max_cost, int64_t *sum_cost) {
    split_even(o, v, F, k, tmp);
    *max_cost = *sum_cost = 0;
    for (int64_t i = 0; i < k; i++) {
        if (tmp[i].cost > *max_cost) *max_cost = tmp[i].cost;
        *sum_cost += tmp[i].cost;
    }
}

static dm_status plan_lpt(const dm_plan_options *o, const int64_t *frames, int n_videos, int nranks,
                          piece **out, int *n_out) {
    int max_splits = o->split == DM_SPLIT_AUTO ? 2 * nranks : 0;
    size_t cap = (size_t)n_videos + (size_t)max_splits;
    scratch s = {calloc(cap, sizeof(piece)), calloc((size_t)nranks, sizeof(int64_t)),
                 calloc((size_t)nranks, sizeof(int))};
    piece *best = calloc(cap, sizeof(piece)), *tmp = calloc(cap, sizeof(piece));
    int64_t *k = calloc((size_t)n_videos, sizeof *k);
    int64_t *vmax = calloc((size_t)n_videos, sizeof *vmax); /* per video: costliest piece */
    int64_t *vsum = calloc((size_t)n_videos, sizeof *vsum); /* per video: total piece cost */
    dm_status st = DM_OK;
    if (!s.pieces || !s.load || !s.heap || !best || !tmp || !k || !vmax || !vsum) {
        st = dm_error_set(DM_ERR_NOMEM, "plan: out of memory");
        goto done;
    }
    int64_t total = 0, cost_sum = 0;
    for (int v = 0; v < n_videos; v++) {
        k[v] = 1;
        total += frames[v];
        vmax[v] = vsum[v] = frames[v];
        cost_sum += frames[v];
    }
    /* No plan can beat the average of owned frames (context only adds). */
    int64_t floor_bound = (total + nranks - 1) / nranks;
    int n = 0, best_n;
    int64_t best_max = evaluate(o, frames, n_videos, k, nranks, &s, &n);
    memcpy(best, s.pieces, (size_t)n * sizeof *best);
    best_n = n;
    for (int step = 0; step < max_splits && best_max > floor_bound; step++) {
        int pick = -1;
        int64_t pick_cost = -1;
        for (int v = 0; v < n_videos; v++)
            if (vmax[v] > pick_cost && split_even(o, v, frames[v], k[v] + 1, NULL) == 0) {
                pick = v;
                pick_cost = vmax[v];
            }
        if (pick < 0) break;
        k[pick]++;
        cost_sum -= vsum[pick];
        piece_stats(o, pick, frames[pick], k[pick], tmp, &vmax[pick], &vsum[pick]);
        cost_sum += vsum[pick];
        int64_t m = evaluate(o, frames, n_videos, k, nranks, &s, &n);
        if (m < best_max) {
            best_max = m;
            memcpy(best, s.pieces, (size_t)n * sizeof *best);
            best_n = n;
        }
        /* Heuristic stop: before merging, further splits only add context frames, so once the
         * average cost of this split set reaches the best maximum, more splits will not help. */
        if ((cost_sum + nranks - 1) / nranks >= best_max) break;
    }
    *out = best;
    *n_out = best_n;
    best = NULL;
done:
    free(s.pieces);
    free(s.load);
    free(s.heap);
    free(best);
    free(tmp);
    free(k);
    free(vmax);
    free(vsum);
    return st;
}

/* ALWAYS: walk the videos in order and fill rank after rank with ceil(unassigned / ranks left)
 * owned frames, cutting videos at aligned borders, never leaving a piece < min_chunk_frames. */
static dm_status plan_always(const dm_plan_options *o, const int64_t *frames, int n_videos,
                             int nranks, piece **out, int *n_out) {
    size_t cap = (size_t)n_videos + (size_t)nranks;
    piece *p = calloc(cap, sizeof *p);
    if (!p) return dm_error_set(DM_ERR_NOMEM, "plan: out of memory");
    int64_t unassigned = 0, a = o->align_frames, mc = o->min_chunk_frames;
    for (int v = 0; v < n_videos; v++)
        unassigned += frames[v];
    int n = 0, r = 0;
    int64_t acc = 0, target = (unassigned + nranks - 1) / nranks;
    for (int v = 0; v < n_videos; v++) {
        int64_t pos = 0, F = frames[v];
        while (pos < F) {
            int64_t room = target - acc, cut = F;
            if (r < nranks - 1 && F - pos > room) {
                cut = (pos + room + a / 2) / a * a; /* nearest aligned border */
                if (cut - pos < mc) {
                    if (acc > 0) { /* too small a piece here: close this rank, retry on the next */
                        r++;
                        acc = 0;
                        target = (unassigned + (nranks - r) - 1) / (nranks - r);
                        continue;
                    }
                    cut = (pos + mc + a - 1) / a * a;
                }
                if (cut >= F || F - cut < mc) cut = F; /* the tail would be too small */
            }
            p[n] = make_piece(o, v, pos, cut);
            p[n++].rank = r;
            acc += cut - pos;
            unassigned -= cut - pos;
            pos = cut;
            if (acc >= target && r < nranks - 1) {
                r++;
                acc = 0;
                target = (unassigned + (nranks - r) - 1) / (nranks - r);
            }
        }
    }
    *out = p;
    *n_out = n;
    return DM_OK;
}

dm_status dm_plan_make(const int64_t *frames, int n_videos, int nranks, const dm_plan_options *opt,
                       dm_plan *out) {
    memset(out, 0, sizeof *out);
    if (!frames || !opt || n_videos < 1 || nranks < 1)
        return dm_error_set(DM_ERR_ARG,
                            "plan: need at least one video and one rank (got %d "
                            "videos, %d ranks)",
                            n_videos, nranks);
    if (opt->warmup_frames < 0 || opt->min_chunk_frames < 1 || opt->align_frames < 1 ||
        opt->split < DM_SPLIT_AUTO || opt->split > DM_SPLIT_NEVER)
        return dm_error_set(DM_ERR_ARG,
                            "plan: invalid options (warm-up %lld, min chunk %lld, "
                            "align %lld)",
                            (long long)opt->warmup_frames, (long long)opt->min_chunk_frames,
                            (long long)opt->align_frames);
    for (int v = 0; v < n_videos; v++)
        if (frames[v] < 1)
            return dm_error_set(DM_ERR_ARG, "plan: video %d has %lld frames (need at least one)", v,
                                (long long)frames[v]);
    piece *p = NULL;
    int n = 0;
    dm_status st = opt->split == DM_SPLIT_ALWAYS
                       ? plan_always(opt, frames, n_videos, nranks, &p, &n)
                       : plan_lpt(opt, frames, n_videos, nranks, &p, &n);
    if (st != DM_OK) return st;
    out->n_videos = n_videos;
    out->nranks = nranks;
    out->opt = *opt;
    out->frames = malloc((size_t)n_videos * sizeof *out->frames);
    out->rank_load = calloc((size_t)nranks, sizeof *out->rank_load);
    out->chunks = malloc((size_t)(n ? n : 1) * sizeof *out->chunks);
    if (!out->frames || !out->rank_load || !out->chunks) {
        free(p);
        dm_plan_free(out);
        return dm_error_set(DM_ERR_NOMEM, "plan: out of memory");
    }
    memcpy(out->frames, frames, (size_t)n_videos * sizeof *frames);
    finalize(opt, p, &n, nranks, out->rank_load);
    for (int i = 0; i < n; i++) {
        dm_chunk c = {p[i].video, p[i].rank, p[i].begin, p[i].end, context_of(opt, p[i].begin)};
        out->chunks[i] = c;
    }
    out->n_chunks = n;
    free(p);
    return DM_OK;
}
