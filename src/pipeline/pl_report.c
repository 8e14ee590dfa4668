/* Rank 0's progress lines and the per-rank summary table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl_internal.h"

void pl_progress(const pl_ctx *c, int64_t done, double t0, int final) {
    static double last = 0;
    static int64_t last_done = -1;
    if (c->rank != 0 || c->opt.quiet) return;
    double now = pl_now();
    if (!final && now - last < 2.0) return; /* at most one line per 2 s */
    if (final && done == last_done) return;  /* already printed */
    last = now;
    last_done = done;
    double el = now - t0, fps = el > 0 ? (double)done / el : 0;
    double pct = c->total_frames > 0 ? 100.0 * (double)done / (double)c->total_frames : 100.0;
    if (fps > 0 && done < c->total_frames)
        printf("depthmatte: %lld/%lld frames (%.1f%%), %.2f frames/s, ETA %.0f s\n",
               (long long)done, (long long)c->total_frames, pct, fps,
               (double)(c->total_frames - done) / fps);
    else
        printf("depthmatte: %lld/%lld frames (%.1f%%), %.2f frames/s, %.1f s elapsed\n",
               (long long)done, (long long)c->total_frames, pct, fps, el);
    fflush(stdout);
}

void pl_summary(const pl_ctx *c, const dm_h5_rank_stats *mine, MPI_Comm comm) {
    typedef struct {
        dm_h5_rank_stats s;
        char host[64];
    } row;
    row me;
    memset(&me, 0, sizeof me);
    me.s = *mine;
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    MPI_Get_processor_name(host, &len);
    snprintf(me.host, sizeof me.host, "%s", host);
    row *all = c->rank == 0 ? calloc(c->size, sizeof *all) : NULL;
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, comm);
    if (c->rank != 0 || !all) {
        free(all);
        return;
    }
    printf("%-5s %-20s %8s %9s %9s %9s %9s %9s %8s\n", "rank", "host", "frames", "decode_s",
           "infer_s", "write_s", "wait_s", "total_s", "frames/s");
    int64_t frames = 0;
    double tmax = 0;
    for (int r = 0; r < c->size; r++) {
        const dm_h5_rank_stats *s = &all[r].s;
        printf("%-5d %-20.20s %8lld %9.2f %9.2f %9.2f %9.2f %9.2f %8.2f\n", r, all[r].host,
               (long long)s->frames, s->decode_s, s->inference_s, s->write_s, s->wait_s,
               s->total_s, s->total_s > 0 ? (double)s->frames / s->total_s : 0.0);
        frames += s->frames;
        if (s->total_s > tmax) tmax = s->total_s;
    }
    printf("%-5s %-20s %8lld %49s %8.2f\n", "all", "", (long long)frames, "",
           tmax > 0 ? (double)frames / tmax : 0.0);
    /* devices, verification and the non-finite guard, one line per rank */
    for (int r = 0; r < c->size; r++) {
        const dm_h5_rank_stats *s = &all[r].s;
        printf("rank %d device: %s; host %s, local rank %lld of %lld", r,
               s->device[0] ? s->device : "?", all[r].host, (long long)s->local_rank,
               (long long)s->local_size);
        if (s->gpu >= 0)
            printf(", GPU %lld%s", (long long)s->gpu,
                   strcmp(s->device, "cpu") ? "" : " (simulated: DM_TEST_CUDA_DEVICES)");
        if (s->device_peak_mb > 0) printf(", peak %.0f MiB", s->device_peak_mb);
        if (s->verified_frames)
            printf("; verified against the CPU: %lld output(s) in %.2f s",
                   (long long)s->verified_frames, s->verify_s);
        if (s->recomputed_frames)
            printf("; %lld non-finite frame(s) recomputed in float32",
                   (long long)s->recomputed_frames);
        printf("\n");
        /* the write/compute overlap (pl_overlap.c): how much of write_s the next unit hid */
        printf("rank %d write: %.2f s, %.2f s of it hidden behind compute (%.0f%%)\n", r,
               s->write_s, s->write_hidden_s,
               s->write_s > 0 ? 100.0 * s->write_hidden_s / s->write_s : 0.0);
    }
    fflush(stdout);
    free(all);
}
