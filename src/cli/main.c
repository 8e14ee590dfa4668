/* depthmatte — command-line entry point: global options and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "depthmatte/cpu_tune.h"

#ifndef DM_VERSION
#define DM_VERSION "unknown"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "process a job: depth and/or alpha mattes of videos into one HDF5 file (MPI)"},
    {"plan", cmd_plan, "probe the inputs and print the chunk table of a job, without running models"},
    {"probe", cmd_probe, "print frames, fps, size, codec, rotation, colour of videos"},
    {"infer", cmd_infer, "depth map of one image (Depth Anything V2 Small, CPU)"},
    {"selftest", cmd_selftest, "check every op and network of a backend against the CPU reference"},
    {"export", cmd_export, "HDF5 results -> transparent video, depth images, previews (MPI)"},
    {"points", cmd_points, "3D tracks in metres from detections + depth; PLY point clouds"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: depthmatte [--help] [--version] COMMAND [ARGS...]\n\n"
               "Per-frame depth maps (Depth Anything V2 Small) and alpha mattes (Robust Video\n"
               "Matting) of videos, spread over MPI ranks, written to one parallel HDF5 file.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'depthmatte COMMAND --help' describes a command. Output layout: docs/output.md.\n");
}

int main(int argc, char **argv) {
    /* First, before MPI_Init and before any thread exists: it may re-execute the program with
     * OPENBLAS_CORETYPE set (include/depthmatte/cpu_tune.h). */
    dm_cpu_tune_blas(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("depthmatte %s\n", DM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "depthmatte: unknown command '%s' (see depthmatte --help)\n", argv[1]);
    return 1;
}
