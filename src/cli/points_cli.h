/* Private to `depthmatte points` (cmd_points.c, points_out.c): one run's options and results. */
#ifndef DM_CLI_POINTS_CLI_H
#define DM_CLI_POINTS_CLI_H

#include <stdint.h>

#include "depthmatte/h5read.h"
#include "depthmatte/points.h"

/* Result of one detection. */
typedef struct pt_result {
    const dm_detection *det;
    double t;       /* seconds (time_s of the frame) */
    double u, v;    /* box centre, pixels */
    double x, y, z; /* camera coordinates, metres; z NaN = skipped (no valid pixel) */
    int pixels;     /* pixels whose depth entered the median */
} pt_result;

/* One track's located detections and figures. */
typedef struct pt_track {
    int64_t id;
    const char *cls;  /* class of its first detection */
    int first, count; /* range in the (track, frame)-sorted result index */
    int64_t first_frame, last_frame;
    dm_track_stats stats;
} pt_track;

typedef struct pt_run {
    const char *h5_path, *det_path;
    dm_h5r_video video;
    dm_intrinsics k;
    const char *k_source; /* "--intrinsics" or "--hfov DEG" */
    double hfov;
    dm_depth_to_z conv;
    const char *conv_source; /* "metric", "--inverse-depth-scale", "--known-distance" */
    double region, outlier_k;
    pt_result *res; /* (n,) in file order */
    int n, skipped;
    const pt_result **by_track; /* (located,) located results sorted by (track, frame) */
    int located;
    pt_track *tracks;
    int n_tracks;
} pt_run;

/* Writes the results to OUT.csv (+ OUT_tracks.csv) or OUT.json through temporary names
 * renamed at the end. Returns 0, or 1 after printing the error line. */
int pt_write_outputs(const pt_run *r, const char *out);

/* Prints the summary and the per-track table on stdout. */
void pt_print_summary(const pt_run *r);

#endif
