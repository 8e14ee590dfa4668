/* Plan bookkeeping: free, queries, invariant checks, flat int64 (de)serialization for MPI_Bcast
 * (the MPI call itself lives in the pipeline), and the printed chunk table. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/plan.h"

/* "DMPLAN" + format version 1; a rank built from other sources refuses a foreign layout. */
#define PLAN_MAGIC INT64_C(0x444d504c414e0001)
#define PLAN_HEADER 8
#define PLAN_CHUNK_FIELDS 5

void dm_plan_free(dm_plan *plan) {
    if (!plan) return;
    free(plan->frames);
    free(plan->chunks);
    free(plan->rank_load);
    memset(plan, 0, sizeof *plan);
}

int64_t dm_plan_max_load(const dm_plan *plan) {
    int64_t m = 0;
    for (int r = 0; r < plan->nranks; r++)
        if (plan->rank_load[r] > m) m = plan->rank_load[r];
    return m;
}

void dm_plan_rank_chunks(const dm_plan *plan, int rank, int *first, int *count) {
    int i = 0;
    while (i < plan->n_chunks && plan->chunks[i].rank < rank)
        i++;
    int j = i;
    while (j < plan->n_chunks && plan->chunks[j].rank == rank)
        j++;
    *first = i;
    *count = j - i;
}

static int cmp_video_begin(const void *pa, const void *pb) {
    const dm_chunk *a = pa, *b = pb;
    if (a->video != b->video) return a->video < b->video ? -1 : 1;
    return (a->begin > b->begin) - (a->begin < b->begin);
}

dm_status dm_plan_validate(const dm_plan *p) {
    if (p->n_videos < 1 || p->nranks < 1 || p->n_chunks < 1 || !p->frames || !p->chunks ||
        !p->rank_load)
        return dm_error_set(DM_ERR_ARG, "plan: empty or incomplete plan");
    const dm_plan_options *o = &p->opt;
    if (o->warmup_frames < 0 || o->min_chunk_frames < 1 || o->align_frames < 1)
        return dm_error_set(DM_ERR_ARG, "plan: invalid options");
    int64_t *load = calloc((size_t)p->nranks, sizeof *load);
    dm_chunk *c = malloc((size_t)p->n_chunks * sizeof *c);
    if (!load || !c) {
        free(load);
        free(c);
        return dm_error_set(DM_ERR_NOMEM, "plan: out of memory");
    }
    dm_status st = DM_OK;
    for (int i = 0; i < p->n_chunks && st == DM_OK; i++) {
        const dm_chunk *x = &p->chunks[i];
        int64_t want_ctx = x->begin > o->warmup_frames ? x->begin - o->warmup_frames : 0;
        if (x->video < 0 || x->video >= p->n_videos || x->rank < 0 || x->rank >= p->nranks)
            st = dm_error_set(DM_ERR_ARG, "plan: chunk %d: video %d / rank %d out of range", i,
                              x->video, x->rank);
        else if (x->begin < 0 || x->end <= x->begin || x->end > p->frames[x->video])
            st = dm_error_set(DM_ERR_ARG,
                              "plan: chunk %d: range [%" PRId64 ", %" PRId64
                              ") outside video %d of %" PRId64 " frames",
                              i, x->begin, x->end, x->video, p->frames[x->video]);
        else if (x->context_begin != want_ctx)
            st = dm_error_set(DM_ERR_ARG,
                              "plan: chunk %d: context starts at %" PRId64 ", expected %" PRId64, i,
                              x->context_begin, want_ctx);
        else if (x->begin % o->align_frames != 0 ||
                 (x->end % o->align_frames != 0 && x->end != p->frames[x->video]))
            st = dm_error_set(DM_ERR_ARG, "plan: chunk %d: borders not multiples of %" PRId64, i,
                              o->align_frames);
        else if (i > 0 && cmp_video_begin(&p->chunks[i - 1], x) >= 0 &&
                 p->chunks[i - 1].rank == x->rank)
            st = dm_error_set(DM_ERR_ARG, "plan: chunk %d: not sorted by video and begin", i);
        else if (i > 0 && p->chunks[i - 1].rank > x->rank)
            st = dm_error_set(DM_ERR_ARG, "plan: chunk %d: not sorted by rank", i);
        if (st == DM_OK) load[x->rank] += dm_chunk_cost(x);
    }
    for (int r = 0; r < p->nranks && st == DM_OK; r++)
        if (load[r] != p->rank_load[r])
            st = dm_error_set(DM_ERR_ARG,
                              "plan: rank %d load %" PRId64 " != sum of its chunks %" PRId64, r,
                              p->rank_load[r], load[r]);
    /* Every frame owned exactly once: per video, the sorted chunks tile [0, frames). */
    if (st == DM_OK) {
        memcpy(c, p->chunks, (size_t)p->n_chunks * sizeof *c);
        qsort(c, (size_t)p->n_chunks, sizeof *c, cmp_video_begin);
        int i = 0;
        for (int v = 0; v < p->n_videos && st == DM_OK; v++) {
            int64_t next = 0;
            for (; i < p->n_chunks && c[i].video == v && st == DM_OK; i++) {
                if (c[i].begin != next)
                    st = dm_error_set(DM_ERR_ARG,
                                      "plan: video %d: frames [%" PRId64 ", %" PRId64 ") owned %s",
                                      v, next < c[i].begin ? next : c[i].begin,
                                      next < c[i].begin ? c[i].begin : next,
                                      next < c[i].begin ? "by no chunk" : "twice");
                next = c[i].end;
            }
            if (st == DM_OK && next != p->frames[v])
                st = dm_error_set(DM_ERR_ARG,
                                  "plan: video %d: frames [%" PRId64 ", %" PRId64
                                  ") owned by no chunk",
                                  v, next, p->frames[v]);
        }
    }
    free(load);
    free(c);
    return st;
}

size_t dm_plan_pack_size(const dm_plan *plan) {
    return PLAN_HEADER + (size_t)plan->n_videos + PLAN_CHUNK_FIELDS * (size_t)plan->n_chunks;
}

dm_status dm_plan_pack(const dm_plan *p, int64_t *buf, size_t cap) {
    size_t need = dm_plan_pack_size(p);
    if (cap < need)
        return dm_error_set(DM_ERR_ARG, "plan: pack buffer of %zu values, need %zu", cap, need);
    int64_t *b = buf;
    *b++ = PLAN_MAGIC;
    *b++ = p->n_videos;
    *b++ = p->nranks;
    *b++ = p->n_chunks;
    *b++ = p->opt.warmup_frames;
    *b++ = (int64_t)p->opt.split;
    *b++ = p->opt.min_chunk_frames;
    *b++ = p->opt.align_frames;
    for (int v = 0; v < p->n_videos; v++)
        *b++ = p->frames[v];
    for (int i = 0; i < p->n_chunks; i++) {
        const dm_chunk *c = &p->chunks[i];
        *b++ = c->video;
        *b++ = c->rank;
        *b++ = c->begin;
        *b++ = c->end;
        *b++ = c->context_begin;
    }
    return DM_OK;
}

dm_status dm_plan_unpack(const int64_t *buf, size_t n, dm_plan *out) {
    memset(out, 0, sizeof *out);
    if (n < PLAN_HEADER || buf[0] != PLAN_MAGIC)
        return dm_error_set(DM_ERR_FORMAT, "plan: not a packed plan (bad magic or version)");
    int64_t nv = buf[1], nr = buf[2], nc = buf[3];
    if (nv < 1 || nr < 1 || nc < 1 || nv > INT32_MAX || nr > INT32_MAX || nc > INT32_MAX ||
        buf[5] < DM_SPLIT_AUTO || buf[5] > DM_SPLIT_NEVER ||
        n != PLAN_HEADER + (size_t)nv + PLAN_CHUNK_FIELDS * (size_t)nc)
        return dm_error_set(DM_ERR_FORMAT, "plan: packed sizes inconsistent (%zu values)", n);
    out->n_videos = (int)nv;
    out->nranks = (int)nr;
    out->n_chunks = (int)nc;
    out->opt.warmup_frames = buf[4];
    out->opt.split = (dm_split_policy)buf[5];
    out->opt.min_chunk_frames = buf[6];
    out->opt.align_frames = buf[7];
    out->frames = malloc((size_t)nv * sizeof *out->frames);
    out->chunks = malloc((size_t)nc * sizeof *out->chunks);
    out->rank_load = calloc((size_t)nr, sizeof *out->rank_load);
    if (!out->frames || !out->chunks || !out->rank_load) {
        dm_plan_free(out);
        return dm_error_set(DM_ERR_NOMEM, "plan: out of memory");
    }
    const int64_t *b = buf + PLAN_HEADER;
    memcpy(out->frames, b, (size_t)nv * sizeof *b);
    b += nv;
    for (int i = 0; i < out->n_chunks; i++, b += PLAN_CHUNK_FIELDS) {
        dm_chunk *c = &out->chunks[i];
        if (b[0] < 0 || b[0] >= nv || b[1] < 0 || b[1] >= nr) {
            dm_plan_free(out);
            return dm_error_set(DM_ERR_FORMAT, "plan: packed chunk %d out of range", i);
        }
        c->video = (int)b[0];
        c->rank = (int)b[1];
        c->begin = b[2];
        c->end = b[3];
        c->context_begin = b[4];
        out->rank_load[c->rank] += dm_chunk_cost(c);
    }
    dm_status st = dm_plan_validate(out);
    if (st != DM_OK) dm_plan_free(out);
    return st;
}

void dm_plan_print(const dm_plan *p, FILE *f) {
    static const char *policy[] = {"auto", "always", "never"};
    int64_t total = 0, owned = 0;
    for (int r = 0; r < p->nranks; r++)
        total += p->rank_load[r];
    for (int v = 0; v < p->n_videos; v++)
        owned += p->frames[v];
    fprintf(f,
            "plan: %d videos (%" PRId64 " frames), %d ranks, %d chunks; split %s, warm-up %" PRId64
            ", min chunk %" PRId64 ", align %" PRId64 "\n",
            p->n_videos, owned, p->nranks, p->n_chunks,
            (unsigned)p->opt.split < 3 ? policy[p->opt.split] : "?", p->opt.warmup_frames,
            p->opt.min_chunk_frames, p->opt.align_frames);
    fprintf(f, "%6s %6s %5s %23s %23s %8s %8s %8s\n", "chunk", "video", "rank", "own frames",
            "context frames", "own", "context", "cost");
    for (int i = 0; i < p->n_chunks; i++) {
        const dm_chunk *c = &p->chunks[i];
        char own[48], ctx[48];
        snprintf(own, sizeof own, "[%" PRId64 ", %" PRId64 ")", c->begin, c->end);
        if (c->context_begin < c->begin)
            snprintf(ctx, sizeof ctx, "[%" PRId64 ", %" PRId64 ")", c->context_begin, c->begin);
        else
            snprintf(ctx, sizeof ctx, "-");
        fprintf(f, "%6d %6d %5d %23s %23s %8" PRId64 " %8" PRId64 " %8" PRId64 "\n", i, c->video,
                c->rank, own, ctx, c->end - c->begin, c->begin - c->context_begin,
                dm_chunk_cost(c));
    }
    fprintf(f, "rank loads (frames incl. context):");
    for (int r = 0; r < p->nranks; r++)
        fprintf(f, " r%d=%" PRId64, r, p->rank_load[r]);
    double ideal = (double)total / p->nranks;
    fprintf(f,
            "\nmax load %" PRId64 ", mean %.1f, imbalance %.3f; context overhead %" PRId64
            " frames (%.1f %%)\n",
            dm_plan_max_load(p), ideal, ideal > 0 ? (double)dm_plan_max_load(p) / ideal : 0.0,
            total - owned, owned ? 100.0 * (double)(total - owned) / (double)owned : 0.0);
}
