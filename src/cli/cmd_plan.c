/* depthmatte plan JOB.yaml [--ranks N] [--set key=value]... [--max-frames N] [--keep-going]
 * Probes the inputs and prints the chunk table; runs no model and needs no MPI launcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "depthmatte/pipeline.h"

static void plan_usage(FILE *f) {
    fprintf(f, "usage: depthmatte plan JOB.yaml [--ranks N] [--set key=value]... [--max-frames N]\n"
               "                       [--keep-going]\n"
               "Probes every input and prints how `depthmatte run` on N ranks (default 1) would\n"
               "split the work: chunks {rank, video, frames [begin, end), context_begin}.\n");
}

int cmd_plan(int argc, char **argv) {
    dm_pipeline_options opt = {0};
    const char *job = NULL, *bad = NULL;
    const char **sets = calloc(argc > 0 ? argc : 1, sizeof *sets);
    int n_sets = 0, ranks = 1;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i];
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            plan_usage(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "--ranks") && i + 1 < argc) {
            ranks = (int)strtol(argv[++i], &end, 10);
            if (*end || ranks < 1) bad = argv[i];
        } else if (!strcmp(a, "--max-frames") && i + 1 < argc) {
            opt.max_frames = strtoll(argv[++i], &end, 10);
            if (*end || opt.max_frames < 1) bad = argv[i];
        } else if (!strcmp(a, "--keep-going")) opt.keep_going = 1;
        else if (!strcmp(a, "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strncmp(a, "--set=", 6)) sets[n_sets++] = a + 6;
        else if (a[0] == '-' || job) bad = a;
        else job = a;
    }
    if (bad || !job) {
        if (bad) fprintf(stderr, "depthmatte plan: unexpected argument '%s'\n", bad);
        else fprintf(stderr, "depthmatte plan: missing JOB.yaml\n");
        plan_usage(stderr);
        free(sets);
        return 1;
    }
    dm_status st = dm_pipeline_print_plan(job, sets, n_sets, &opt, ranks, stdout);
    free(sets);
    if (st) {
        fprintf(stderr, "depthmatte: %s\n", dm_error_message());
        return 1;
    }
    return 0;
}
