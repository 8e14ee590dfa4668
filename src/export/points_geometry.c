/* Box depth (median rule), depth conversion, pinhole intrinsics, track figures and PLY point
 * clouds for `depthmatte points` (include/depthmatte/points.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/points.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dm_ply_write_frame writes the host's float bytes: a little-endian host is assumed"
#endif

dm_status dm_intrinsics_from_hfov(double hfov_deg, int width, int height, dm_intrinsics *out) {
    if (!(hfov_deg > 0 && hfov_deg < 180) || width < 1 || height < 1)
        return dm_error_set(DM_ERR_ARG, "--hfov %g: needs 0 < degrees < 180", hfov_deg);
    double f = 0.5 * width / tan(0.5 * hfov_deg * M_PI / 180.0);
    *out = (dm_intrinsics){f, f, 0.5 * width, 0.5 * height};
    return DM_OK;
}

double dm_depth_to_metres(const dm_depth_to_z *conv, float d) {
    if (!isfinite(d)) return NAN;
    double z = conv->inverse ? 1.0 / (conv->a * (double)d + conv->b) : (double)d;
    return isfinite(z) && z > 0 ? z : NAN;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double dm_median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void dm_box_depth(const float *depth, int w, int h, const dm_detection *det, double region,
                  const dm_depth_to_z *conv, double *scratch, double *z, int *pixels) {
    double bx = 0.5 * (det->x1 + det->x2), by = 0.5 * (det->y1 + det->y2);
    double hw = 0.5 * region * (det->x2 - det->x1), hh = 0.5 * region * (det->y2 - det->y1);
    double rx1 = bx - hw, rx2 = bx + hw, ry1 = by - hh, ry2 = by + hh;
    /* candidate rows/columns (one pixel of margin), then the exact centre test */
    int c0 = (int)floor(rx1 - 1), c1 = (int)ceil(rx2 + 1);
    int r0 = (int)floor(ry1 - 1), r1 = (int)ceil(ry2 + 1);
    if (c0 < 0) c0 = 0;
    if (r0 < 0) r0 = 0;
    if (c1 > w - 1) c1 = w - 1;
    if (r1 > h - 1) r1 = h - 1;
    int n = 0;
    for (int r = r0; r <= r1; r++) {
        double yc = r + 0.5;
        if (!(yc >= ry1 && yc < ry2)) continue;
        for (int c = c0; c <= c1; c++) {
            double xc = c + 0.5;
            if (!(xc >= rx1 && xc < rx2)) continue;
            double zz = dm_depth_to_metres(conv, depth[(size_t)r * w + c]);
            if (!isnan(zz)) scratch[n++] = zz;
        }
    }
    *pixels = n;
    *z = dm_median(scratch, n);
}

static double dist3(const dm_track_point *a, const dm_track_point *b) {
    double dx = b->x - a->x, dy = b->y - a->y, dz = b->z - a->z;
    return sqrt(dx * dx + dy * dy + dz * dz);
}

dm_status dm_track_stats_compute(const dm_track_point *p, int n, double k, double *scratch,
                                 dm_track_stats *out) {
    *out = (dm_track_stats){.points = n};
    out->tortuosity = out->mean_speed = out->max_speed = NAN;
    out->median_speed = out->mad_speed = NAN;
    if (n <= 0) return DM_OK;
    for (int i = 1; i < n; i++)
        if (!(p[i].t > p[i - 1].t))
            return dm_error_set(DM_ERR_ARG,
                                "frames %lld and %lld have the same or decreasing "
                                "time (%g s, %g s)",
                                (long long)p[i - 1].frame, (long long)p[i].frame, p[i - 1].t,
                                p[i].t);
    double path = 0, vmax = 0;
    for (int i = 1; i < n; i++) {
        double d = dist3(&p[i - 1], &p[i]);
        double v = d / (p[i].t - p[i - 1].t);
        path += d;
        scratch[i - 1] = v;
        if (v > vmax) vmax = v;
    }
    out->path_length = path;
    out->displacement = dist3(&p[0], &p[n - 1]);
    out->duration_s = p[n - 1].t - p[0].t;
    if (out->displacement > 0) out->tortuosity = path / out->displacement;
    if (n < 2) return DM_OK;
    out->mean_speed = path / out->duration_s;
    out->max_speed = vmax;
    int steps = n - 1;
    /* Robust threshold (Hampel-style): median + k * MAD of the step speeds. dm_median reorders
     * scratch, so the deviations and the final test recompute the speeds from the points. */
    double med = dm_median(scratch, steps);
    for (int i = 1; i < n; i++)
        scratch[i - 1] = fabs(dist3(&p[i - 1], &p[i]) / (p[i].t - p[i - 1].t) - med);
    double mad = dm_median(scratch, steps);
    out->median_speed = med, out->mad_speed = mad;
    /* MAD floored at 1e-9 * median: in a constant-speed track (MAD = 0) rounding noise of the
     * positions would otherwise count as outliers */
    double thr = med + k * fmax(mad, 1e-9 * med);
    for (int i = 1; i < n; i++)
        out->outlier_steps += dist3(&p[i - 1], &p[i]) / (p[i].t - p[i - 1].t) > thr;
    return DM_OK;
}

dm_status dm_ply_write_frame(const char *path, const float *depth, const uint8_t *rgb, int w, int h,
                             int stride, const dm_intrinsics *k, const dm_depth_to_z *conv,
                             int64_t *vertices) {
    if (stride < 1) return dm_error_set(DM_ERR_ARG, "%s: stride %d < 1", path, stride);
    int64_t n = 0;
    for (int r = 0; r < h; r += stride)
        for (int c = 0; c < w; c += stride)
            n += !isnan(dm_depth_to_metres(conv, depth[(size_t)r * w + c]));
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return dm_error_set(DM_ERR_ARG, "%s: path too long", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return dm_error_set(DM_ERR_IO, "%s: %s", tmp, strerror(errno));
    /* PLY (Turk 1994; http://paulbourke.net/dataformats/ply/): ASCII header, then packed
     * little-endian records of 3 float32 + 3 uint8 = 15 bytes. */
    fprintf(fp,
            "ply\nformat binary_little_endian 1.0\ncomment depthmatte points: camera "
            "coordinates in metres (X right, Y down, Z forward)\nelement vertex %lld\n"
            "property float x\nproperty float y\nproperty float z\nproperty uchar red\n"
            "property uchar green\nproperty uchar blue\nend_header\n",
            (long long)n);
    unsigned char rec[15];
    for (int r = 0; r < h; r += stride)
        for (int c = 0; c < w; c += stride) {
            size_t i = (size_t)r * w + c;
            double z = dm_depth_to_metres(conv, depth[i]);
            if (isnan(z)) continue;
            float xyz[3] = {(float)((c + 0.5 - k->cx) * z / k->fx),
                            (float)((r + 0.5 - k->cy) * z / k->fy), (float)z};
            memcpy(rec, xyz, 12);
            for (int ch = 0; ch < 3; ch++)
                rec[12 + ch] = rgb ? rgb[i * 3 + ch] : 128;
            fwrite(rec, 1, sizeof rec, fp);
        }
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    if (bad) {
        remove(tmp);
        return dm_error_set(DM_ERR_IO, "%s: write failed (disk full?)", tmp);
    }
    if (rename(tmp, path) != 0) {
        dm_status st = dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno));
        remove(tmp);
        return st;
    }
    if (vertices) *vertices = n;
    return DM_OK;
}
