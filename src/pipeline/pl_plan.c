/* Chunk table for the pipeline: an adapter from src/plan (dm_plan_make, include/depthmatte/
 * plan.h, which owns the policy: whole videos when they fill the ranks, splits with warm-up
 * context otherwise) to pl_chunk. Only videos that probed fine are planned; chunk video
 * indices are mapped back to job input indices. */
#include <stdlib.h>
#include <string.h>

#include "depthmatte/plan.h"
#include "pl_internal.h"

dm_status pl_plan_for_ranks(pl_ctx *c, int ranks) {
    free(c->chunks);
    c->chunks = NULL;
    c->n_chunks = 0;
    int n_ok = 0;
    int *map = malloc(sizeof(int) * (c->n_inputs + 1));
    int64_t *frames = malloc(sizeof(int64_t) * (c->n_inputs + 1));
    if (!map || !frames) {
        free(map), free(frames);
        return dm_error_set(DM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < c->n_inputs; i++)
        if (c->inputs[i].ok) map[n_ok] = i, frames[n_ok++] = c->inputs[i].info.frames;
    dm_status st = DM_OK;
    if (n_ok > 0) { /* all inputs failed (--keep-going): nothing to plan, zero rounds */
        dm_plan_options opt = dm_config_plan_options(&c->job);
        dm_plan plan;
        /* VDA: chunks on window borders, scheduled so the alignment state can follow. */
        st = pl_is_vda(&c->job)
                 ? dm_plan_make_vda(frames, n_ok, ranks, c->job.plan.split_videos, &plan)
                 : dm_plan_make(frames, n_ok, ranks, &opt, &plan);
        if (!st) {
            c->chunks = calloc(plan.n_chunks > 0 ? plan.n_chunks : 1, sizeof *c->chunks);
            if (!c->chunks) st = dm_error_set(DM_ERR_NOMEM, "out of memory");
            for (int k = 0; k < plan.n_chunks && !st; k++) {
                const dm_chunk *ch = &plan.chunks[k];
                /* VDA chunks start on window borders and need no context; with matting in
                 * the same job, RVM warms up before every chunk that starts inside a video
                 * (matting.warmup_frames), as in a matting-only plan. */
                int64_t cb = ch->context_begin;
                if (pl_is_vda(&c->job) && c->job.matting.enabled)
                    cb = ch->begin > opt.warmup_frames ? ch->begin - opt.warmup_frames : 0;
                c->chunks[k] = (pl_chunk){map[ch->video], ch->rank, ch->begin, ch->end, cb};
            }
            if (!st) c->n_chunks = plan.n_chunks;
            dm_plan_free(&plan);
        }
    }
    free(map), free(frames);
    return st;
}

dm_status pl_make_plan(pl_ctx *c) {
    return pl_plan_for_ranks(c, c->size);
}
