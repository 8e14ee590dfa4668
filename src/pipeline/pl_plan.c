/* Chunk table for the pipeline.
 *
 * INTERIM: src/plan (dm_plan_make, include/depthmatte/plan.h) is being written by another
 * engineer; until it lands this file holds the smallest planner the pipeline needs, and will
 * become a thin adapter from dm_plan to pl_chunk. Policy (DESIGN.md "Context frames"):
 * whole videos, largest first, each to the least loaded rank (RVM's state has a long memory);
 * a video is split only when there are fewer videos than ranks (split auto) or always
 * (split always), into near-equal pieces of at least plan.min_chunk_frames frames; a piece
 * that does not start at frame 0 decodes matting.warmup_frames context frames first. */
#include <stdlib.h>
#include <string.h>

#include "pl_internal.h"

static dm_status push(pl_ctx *c, int *cap, pl_chunk ch) {
    if (c->n_chunks == *cap) {
        int n = *cap ? *cap * 2 : 16;
        pl_chunk *p = realloc(c->chunks, (size_t)n * sizeof *p);
        if (!p) return dm_error_set(DM_ERR_NOMEM, "out of memory");
        c->chunks = p, *cap = n;
    }
    c->chunks[c->n_chunks++] = ch;
    return DM_OK;
}

dm_status pl_plan_for_ranks(pl_ctx *c, int ranks) {
    int n_ok = 0, cap = 0;
    int *order = malloc(sizeof(int) * (c->n_inputs + 1));
    int64_t *load = calloc(ranks, sizeof *load);
    if (!order || !load) return dm_error_set(DM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n_inputs; i++)
        if (c->inputs[i].ok) order[n_ok++] = i;
    /* largest first (stable insertion sort: job order breaks ties; input lists are short) */
    for (int j = 1; j < n_ok; j++) {
        int v = order[j], k = j;
        for (; k > 0 && c->inputs[order[k - 1]].info.frames < c->inputs[v].info.frames; k--)
            order[k] = order[k - 1];
        order[k] = v;
    }
    dm_split_policy pol = c->job.plan.split_videos;
    int split = pol == DM_SPLIT_ALWAYS || (pol == DM_SPLIT_AUTO && n_ok < ranks);
    int64_t warm = c->job.matting.enabled ? c->job.matting.warmup_frames : 0;
    int64_t minc = c->job.plan.min_chunk_frames;
    dm_status st = DM_OK;
    for (int j = 0; j < n_ok && !st; j++) {
        int v = order[j];
        int64_t T = c->inputs[v].info.frames;
        int pieces = 1;
        if (split) {
            pieces = pol == DM_SPLIT_ALWAYS ? ranks : (ranks + n_ok - 1) / n_ok;
            if (pieces > T / minc) pieces = (int)(T / minc);
            if (pieces < 1) pieces = 1;
        }
        for (int p = 0; p < pieces && !st; p++) {
            int64_t b = T * p / pieces, e = T * (p + 1) / pieces;
            int r = 0;
            for (int k = 1; k < ranks; k++)
                if (load[k] < load[r]) r = k;
            int64_t cb = b - warm < 0 ? 0 : b - warm;
            load[r] += e - cb;
            st = push(c, &cap, (pl_chunk){v, r, b, e, cb});
        }
    }
    free(order);
    free(load);
    return st;
}

dm_status pl_make_plan(pl_ctx *c) {
    return pl_plan_for_ranks(c, c->size);
}
