/* depthmatte — from depth maps to 3D: object tracks from 2D detections, and point clouds.
 * Used by `depthmatte points` (src/cli/cmd_points.c); reads a finished output file through
 * include/depthmatte/h5read.h and never touches the pipeline. docs/points.md describes the
 * rules and formats for users.
 *
 * Geometry: the pinhole camera model (Hartley & Zisserman, "Multiple View Geometry", 2nd ed.,
 * section 6.1). Image coordinates are in pixels of the source frame (upright, W x H), x to the
 * right, y down, origin at the top-left corner of the top-left pixel, so pixel (column c, row
 * r) has its centre at (c + 0.5, r + 0.5). Camera coordinates in metres: X right, Y down, Z
 * along the optical axis (= the metric depth). A pixel (u, v) at depth Z back-projects to
 *   X = (u - cx) * Z / fx,   Y = (v - cy) * Z / fy.
 *
 * Errors: dm_status codes with a one-line message (dm_error_set) naming the file and the cause.
 */
#ifndef DEPTHMATTE_POINTS_H
#define DEPTHMATTE_POINTS_H

#include <stdint.h>
#include <stdio.h>

#include "depthmatte/status.h"

/* ---- detections --------------------------------------------------------------------------- */

/* Detections file layouts (docs/points.md "Detections"). */
typedef enum dm_det_format {
    DM_DET_AUTO = 0, /* by content: JSON when the first non-blank byte is '[', else CSV with a
                      * header row */
    DM_DET_CSV,      /* CSV with a header row naming the columns (see dm_detections_read) */
    DM_DET_JSON,     /* JSON array of objects */
    DM_DET_MOT,      /* MOTChallenge text, no header: frame (1-based), id, bb_left, bb_top,
                      * bb_width, bb_height, conf[, x, y, z (ignored)] */
} dm_det_format;

/* One detection: a box of one track in one frame. */
typedef struct dm_detection {
    int64_t frame; /* 0-based frame index = HDF5 row */
    int64_t track; /* track id (any integer) */
    double x1, y1; /* box top-left corner, pixels of the source frame */
    double x2, y2; /* box bottom-right corner, pixels (x2 > x1, y2 > y1) */
    double conf;   /* confidence in [0, 1]; NaN when the file gives none */
    char cls[32];  /* class name ("" when the file gives none) */
    int record;    /* 1-based record (CSV row incl. header, JSON array element + 1) */
} dm_detection;

/* Reads a detections file (CSV with a header, JSON or MOT; docs/points.md). CSV is parsed with
 * libcsv (quoting per RFC 4180), JSON with cJSON.
 * CSV header columns (case-sensitive, any order): frame, track (aliases id, track_id), then
 * either x1, y1, x2, y2 (corners) or x, y, w, h (left, top, width, height: MOT-style), and
 * optionally class, conf (alias confidence). JSON: an array of objects with keys frame, track
 * (or id), box [x1, y1, x2, y2] (or xywh [x, y, w, h]), optional class (string) and conf.
 * *out (malloc'ed, free with free()) gets *n >= 1 detections in file order.
 * Errors (DM_ERR_IO / DM_ERR_FORMAT, "PATH: row 3: ..."): missing file, empty file or no
 * detection, unknown or missing column / key, a duplicated column, a value that is not a
 * number, a negative frame, an empty or inverted box (x2 <= x1 or y2 <= y1), a (frame, track)
 * pair given twice. */
dm_status dm_detections_read(const char *path, dm_det_format format, dm_detection **out, int *n);

/* Writes one CSV field to fp with RFC 4180 quoting (libcsv csv_fwrite: always quoted, inner
 * quotes doubled). Returns 0 on success, EOF on a write error. */
int dm_csv_write_field(FILE *fp, const char *s);

/* ---- camera and depth conversion ---------------------------------------------------------- */

/* Pinhole intrinsics in pixels. */
typedef struct dm_intrinsics {
    double fx, fy; /* focal lengths, pixels */
    double cx, cy; /* principal point, pixels (image coordinates above) */
} dm_intrinsics;

/* Intrinsics from a horizontal field of view: fx = fy = (W / 2) / tan(hfov / 2), cx = W / 2,
 * cy = H / 2 (square pixels, principal point at the image centre). hfov in degrees,
 * 0 < hfov < 180; W, H in pixels. Errors: DM_ERR_ARG. */
dm_status dm_intrinsics_from_hfov(double hfov_deg, int width, int height, dm_intrinsics *out);

/* How stored depth values d become metres Z. */
typedef struct dm_depth_to_z {
    int inverse; /* 0: Z = d (metric depth); 1: Z = 1 / (a * d + b) (relative inverse depth) */
    double a, b; /* affine map of the inverse depth (used when inverse = 1) */
} dm_depth_to_z;

/* Z of one stored depth value; NaN when it gives no valid depth: d not finite, or the
 * resulting Z not finite or <= 0 (a point must lie in front of the camera). */
double dm_depth_to_metres(const dm_depth_to_z *conv, float d);

/* ---- boxes --------------------------------------------------------------------------------- */

/* Depth of a box: the median (numpy.median convention: mean of the two middle values for an
 * even count) of the valid Z (dm_depth_to_metres) of the pixels whose centres (c + 0.5,
 * r + 0.5) lie inside the central region of the box: width and height scaled by `region`
 * (0 < region <= 1; 1 = the whole box) around the box centre, half-open
 * [rx1, rx2) x [ry1, ry2). depth is one frame (h, w) row-major on the source grid (h, w = the
 * frame's H, W). *z = the median (NaN when no pixel is valid), *pixels = how many were used.
 * scratch holds at least w * h doubles (no allocation inside). */
void dm_box_depth(const float *depth, int w, int h, const dm_detection *det, double region,
                  const dm_depth_to_z *conv, double *scratch, double *z, int *pixels);

/* Median of n values (sorted in place: the array is reordered). NaN for n = 0. */
double dm_median(double *v, int n);

/* ---- tracks -------------------------------------------------------------------------------- */

/* One located detection of a track (a box with a valid depth). */
typedef struct dm_track_point {
    int64_t frame;  /* HDF5 row */
    double t;       /* seconds (time_s of that row) */
    double x, y, z; /* camera coordinates, metres */
} dm_track_point;

/* Figures of one track (docs/points.md "Per track"). */
typedef struct dm_track_stats {
    int points;          /* located detections */
    double duration_s;   /* t_last - t_first */
    double path_length;  /* sum of |P_i+1 - P_i|, metres */
    double displacement; /* |P_last - P_first|, metres (straight-line distance) */
    double tortuosity;   /* path_length / displacement; NaN when displacement = 0 */
    double mean_speed;   /* path_length / duration_s, m/s; NaN when duration_s = 0 */
    double max_speed;    /* largest step speed |P_i+1 - P_i| / (t_i+1 - t_i), m/s; NaN with
                          * fewer than 2 points */
    double median_speed; /* median step speed, m/s (NaN without steps) */
    double mad_speed;    /* median absolute deviation of the step speeds (unscaled), m/s */
    int outlier_steps;   /* steps with speed > median_speed + k * max(mad_speed,
                          * 1e-9 * median_speed); the floor keeps rounding noise of a
                          * constant-speed track (MAD = 0) from counting */
} dm_track_stats;

/* Figures of a track from its points, which must be sorted by frame with strictly increasing
 * t (else DM_ERR_ARG "track T: frames F and G have the same or decreasing time"). k: outlier
 * threshold factor (k >= 0). scratch holds at least n doubles. */
dm_status dm_track_stats_compute(const dm_track_point *p, int n, double k, double *scratch,
                                 dm_track_stats *out);

/* ---- point clouds -------------------------------------------------------------------------- */

/* Writes a PLY point cloud (format binary_little_endian 1.0; element vertex with properties
 * float x, y, z (metres, camera coordinates as above) and uchar red, green, blue) of one frame:
 * every `stride`-th pixel of every `stride`-th row (from (0, 0)) with a valid Z, back-projected
 * from its centre (c + 0.5, r + 0.5); colour from rgb (h, w, 3) uint8 (may be NULL: grey 128).
 * depth (h, w) as in dm_box_depth. Writes to `path` + ".tmp" and renames it on success, so no
 * partial file is left under the final name. *vertices (may be NULL) = points written.
 * Errors: DM_ERR_IO naming the path, DM_ERR_ARG (stride < 1). */
dm_status dm_ply_write_frame(const char *path, const float *depth, const uint8_t *rgb, int w, int h,
                             int stride, const dm_intrinsics *k, const dm_depth_to_z *conv,
                             int64_t *vertices);

#endif
