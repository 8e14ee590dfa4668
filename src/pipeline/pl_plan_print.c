/* depthmatte plan: the rank-0 setup without MPI, then the inputs and chunk table printed. */
#include <stdio.h>
#include <string.h>

#include "pl_internal.h"

dm_status dm_pipeline_print_plan(const char *job_path, const char *const *sets, int n_sets,
                                 const dm_pipeline_options *opt, int ranks, FILE *out) {
    if (ranks < 1) return dm_error_set(DM_ERR_ARG, "--ranks must be >= 1");
    pl_ctx c;
    memset(&c, 0, sizeof c);
    c.opt = *opt;
    c.size = ranks;
    dm_status st = pl_load_and_probe(&c, job_path, sets, n_sets, 0);
    if (!st) st = pl_plan_for_ranks(&c, ranks);
    if (!st) st = pl_make_blocks(&c, c.job.output.chunk_frames);
    if (st) {
        pl_ctx_free(&c);
        return st;
    }
    fprintf(out, "inputs (%d):\n", c.n_inputs);
    fprintf(out, "%5s %8s %11s %10s %-8s %s\n", "video", "frames", "fps", "size", "codec", "source");
    for (int i = 0; i < c.n_inputs; i++) {
        const pl_input *in = &c.inputs[i];
        if (!in->ok) {
            fprintf(out, "%5d %8s %11s %10s %-8s %s  FAILED: %s\n", i, "-", "-", "-", "-",
                    in->info.path, in->error);
            continue;
        }
        char fps[32], size[32];
        snprintf(fps, sizeof fps, "%d/%d", in->info.fps_num, in->info.fps_den);
        snprintf(size, sizeof size, "%dx%d", in->info.width, in->info.height);
        fprintf(out, "%5d %8lld %11s %10s %-8s %s\n", i, (long long)in->info.frames, fps, size,
                in->info.codec, in->info.path);
    }
    fprintf(out, "chunks (%d) over %d rank(s), %lld frames, chunk_frames %d:\n", c.n_chunks,
            ranks, (long long)c.total_frames, c.job.output.chunk_frames);
    fprintf(out, "%5s %5s %5s %10s %10s %14s %8s\n", "chunk", "rank", "video", "begin", "end",
            "context_begin", "frames");
    for (int k = 0; k < c.n_chunks; k++) {
        const pl_chunk *ch = &c.chunks[k];
        fprintf(out, "%5d %5d %5d %10lld %10lld %14lld %8lld\n", k, ch->rank, ch->video,
                (long long)ch->begin, (long long)ch->end, (long long)ch->context_begin,
                (long long)(ch->end - ch->begin));
    }
    pl_ctx_free(&c);
    return DM_OK;
}
