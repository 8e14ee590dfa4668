/* Serial, read-only access to depthmatte output files (include/depthmatte/h5read.h). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/h5read.h"
#include "h5_internal.h"

struct dm_h5r_file {
    char *path;
    hid_t fid;
    int n_videos;
    char (*ids)[16]; /* (n_videos,) group names, sorted */
    char *job_yaml;
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* H5Literate callback: collects the names of the groups under /videos. */
typedef struct id_list {
    char (*ids)[16];
    int n, cap;
    int bad; /* 1: a name longer than 15 bytes */
} id_list;

static herr_t collect_id(hid_t grp, const char *name, const H5L_info_t *info, void *data) {
    (void)grp, (void)info;
    id_list *l = data;
    if (strlen(name) >= sizeof l->ids[0]) {
        l->bad = 1;
        return 1; /* stop */
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        void *p = realloc(l->ids, (size_t)cap * sizeof l->ids[0]);
        if (!p) return -1;
        l->ids = p, l->cap = cap;
    }
    snprintf(l->ids[l->n++], sizeof l->ids[0], "%s", name);
    return 0;
}

/* Reads a string attribute of any length into a malloc'ed buffer (*out, NUL-terminated). */
static dm_status read_str_alloc(const char *path, hid_t obj, const char *name, char **out) {
    *out = NULL;
    hid_t attr, ftype, mtype;
    H5_CHECK(path, attr = H5Aopen(obj, name, H5P_DEFAULT));
    if ((ftype = H5Aget_type(attr)) < 0) {
        H5Aclose(attr);
        return h5u_fail(path, "H5Aget_type", __FILE__, __LINE__, __func__);
    }
    if (H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) > 0) {
        H5Tclose(ftype), H5Aclose(attr);
        return dm_error_set(DM_ERR_FORMAT, "%s: attribute %s is not a fixed-length string", path,
                            name);
    }
    size_t n = H5Tget_size(ftype);
    char *buf = calloc(n + 1, 1);
    if (!buf) {
        H5Tclose(ftype), H5Aclose(attr);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    mtype = H5Tcopy(ftype);
    herr_t rc = mtype < 0 ? -1 : H5Aread(attr, mtype, buf);
    if (mtype >= 0) H5Tclose(mtype);
    H5Tclose(ftype), H5Aclose(attr);
    if (rc < 0) {
        free(buf);
        return h5u_fail(path, "H5Aread(string attribute)", __FILE__, __LINE__, __func__);
    }
    *out = buf;
    return DM_OK;
}

/* Required attribute of a video group: a clear DM_ERR_FORMAT when it is missing. */
static dm_status need_attr(const dm_h5r_file *f, hid_t obj, const char *where, const char *name) {
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) return h5u_fail(f->path, "H5Aexists", __FILE__, __LINE__, __func__);
    if (ex == 0)
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: %s has no attribute '%s' (not written by "
                            "depthmatte, or damaged)",
                            f->path, where, name);
    return DM_OK;
}

static dm_status attr_int(const dm_h5r_file *f, hid_t obj, const char *where, const char *name,
                          int *out) {
    int64_t v = 0;
    dm_status st = need_attr(f, obj, where, name);
    if (!st) st = h5u_read_i64(f->path, obj, name, &v);
    if (!st && (v < INT32_MIN || v > INT32_MAX))
        st = dm_error_set(DM_ERR_FORMAT, "%s: %s: attribute %s = %lld out of range", f->path, where,
                          name, (long long)v);
    if (!st) *out = (int)v;
    return st;
}

static dm_status attr_str(const dm_h5r_file *f, hid_t obj, const char *where, const char *name,
                          char *buf, size_t size) {
    dm_status st = need_attr(f, obj, where, name);
    if (!st) st = h5u_read_str(f->path, obj, name, buf, size);
    return st;
}

/* Optional string attribute: "" when absent. */
static dm_status attr_str_opt(const dm_h5r_file *f, hid_t obj, const char *name, char *buf,
                              size_t size) {
    buf[0] = 0;
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) return h5u_fail(f->path, "H5Aexists", __FILE__, __LINE__, __func__);
    return ex ? h5u_read_str(f->path, obj, name, buf, size) : DM_OK;
}

/* An integer attribute that older files may lack: *out = dflt then. */
static dm_status attr_i64_opt(const dm_h5r_file *f, hid_t obj, const char *name, int64_t dflt,
                              int64_t *out) {
    *out = dflt;
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) return h5u_fail(f->path, "H5Aexists", __FILE__, __LINE__, __func__);
    return ex ? h5u_read_i64(f->path, obj, name, out) : DM_OK;
}

/* Frame selection / scaling attributes (files before them: a plain video, step 1). */
static dm_status selection_attrs(const dm_h5r_file *f, hid_t g, const char *where,
                                 dm_h5r_video *v) {
    int64_t x[8];
    const char *names[8] = {"images",         "frame_step",     "max_res",      "source_frames",
                            "source_fps_num", "source_fps_den", "source_width", "source_height"};
    const int64_t dflt[8] = {0, 1, 0, v->frames, v->fps_num, v->fps_den, v->width, v->height};
    dm_status st = DM_OK;
    for (int i = 0; i < 8 && !st; i++)
        st = attr_i64_opt(f, g, names[i], dflt[i], &x[i]);
    if (st) return st;
    for (int i = 0; i < 8; i++)
        if (x[i] < 0 || x[i] > INT32_MAX || (i == 1 && x[i] < 1))
            return dm_error_set(DM_ERR_FORMAT, "%s: %s: attribute %s = %lld out of range", f->path,
                                where, names[i], (long long)x[i]);
    v->images = (int)x[0], v->frame_step = (int)x[1], v->max_res = (int)x[2];
    v->source_frames = x[3];
    v->source_fps_num = (int)x[4], v->source_fps_den = (int)x[5];
    v->source_width = (int)x[6], v->source_height = (int)x[7];
    return DM_OK;
}

static dm_status check_index(const dm_h5r_file *f, int index) {
    if (index < 0 || index >= f->n_videos)
        return dm_error_set(DM_ERR_ARG, "%s: video index %d out of range (the file has %d)",
                            f->path, index, f->n_videos);
    return DM_OK;
}

/* ---- open / close ------------------------------------------------------------------------- */

dm_status dm_h5r_open(const char *path, dm_h5r_file **out) {
    *out = NULL;
    if (access(path, R_OK) != 0) return dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno));
    h5u_quiet();
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) return dm_error_set(DM_ERR_FORMAT, "%s: not an HDF5 file", path);
    dm_h5r_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    f->fid = -1;
    dm_status st = DM_OK;
    if ((f->fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        st = h5u_fail(path, "H5Fopen", __FILE__, __LINE__, __func__);
    htri_t ex = 0;
    if (!st && (ex = H5Aexists(f->fid, "format_version")) < 0)
        st = h5u_fail(path, "H5Aexists(format_version)", __FILE__, __LINE__, __func__);
    if (!st && ex == 0)
        st = dm_error_set(DM_ERR_FORMAT,
                          "%s: not a depthmatte output file (no "
                          "format_version attribute)",
                          path);
    int64_t version = 0;
    if (!st) st = h5u_read_i64(path, f->fid, "format_version", &version);
    if (!st && version != DM_H5_FORMAT_VERSION)
        st = dm_error_set(DM_ERR_FORMAT,
                          "%s: format_version %lld not supported (this build "
                          "reads %d)",
                          path, (long long)version, DM_H5_FORMAT_VERSION);
    if (!st && (ex = H5Lexists(f->fid, "videos", H5P_DEFAULT)) <= 0)
        st = dm_error_set(DM_ERR_FORMAT, "%s: not a depthmatte output file (no /videos group)",
                          path);
    if (!st) {
        H5O_info_t oi;
        if (H5Oget_info_by_name(f->fid, "videos", &oi, H5P_DEFAULT) < 0 ||
            oi.type != H5O_TYPE_GROUP)
            st = dm_error_set(DM_ERR_FORMAT, "%s: /videos is not a group", path);
    }
    if (!st) {
        id_list l = {0};
        hid_t g = H5Gopen2(f->fid, "videos", H5P_DEFAULT);
        hsize_t idx = 0;
        herr_t rc = g < 0 ? -1 : H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_id, &l);
        if (g >= 0) H5Gclose(g);
        f->ids = l.ids, f->n_videos = l.n;
        if (l.bad)
            st = dm_error_set(DM_ERR_FORMAT,
                              "%s: /videos holds a member with an over-long "
                              "name (not a video id)",
                              path);
        else if (rc < 0)
            st = h5u_fail(path, "H5Literate(/videos)", __FILE__, __LINE__, __func__);
    }
    if (!st && (ex = H5Aexists(f->fid, "job_yaml")) > 0)
        st = read_str_alloc(path, f->fid, "job_yaml", &f->job_yaml);
    if (st) {
        dm_h5r_close(f);
        return st;
    }
    *out = f;
    return DM_OK;
}

void dm_h5r_close(dm_h5r_file *f) {
    if (!f) return;
    if (f->fid >= 0) H5Fclose(f->fid);
    free(f->ids);
    free(f->job_yaml);
    free(f->path);
    free(f);
}

const char *dm_h5r_path(const dm_h5r_file *f) {
    return f->path;
}

const char *dm_h5r_job_yaml(const dm_h5r_file *f) {
    return f->job_yaml ? f->job_yaml : "";
}

int dm_h5r_video_count(const dm_h5r_file *f) {
    return f->n_videos;
}

const char *dm_h5r_video_id(const dm_h5r_file *f, int index) {
    return index >= 0 && index < f->n_videos ? f->ids[index] : NULL;
}

dm_status dm_h5r_find_video(const dm_h5r_file *f, const char *id, int *index) {
    for (int i = 0; i < f->n_videos; i++)
        if (!strcmp(f->ids[i], id)) return *index = i, DM_OK;
    /* A plain input index: "2" -> "00002" */
    char *end = NULL;
    long n = strtol(id, &end, 10);
    if (end && end != id && !*end && n >= 0 && n < 100000) {
        char name[16];
        snprintf(name, sizeof name, "%05ld", n);
        for (int i = 0; i < f->n_videos; i++)
            if (!strcmp(f->ids[i], name)) return *index = i, DM_OK;
    }
    if (f->n_videos == 0)
        return dm_error_set(DM_ERR_ARG, "%s: no video '%s' (the file has no videos)", f->path, id);
    return dm_error_set(DM_ERR_ARG, "%s: no video '%s' (the file has %d: %s..%s)", f->path, id,
                        f->n_videos, f->ids[0], f->ids[f->n_videos - 1]);
}

dm_status dm_h5r_root_info(const dm_h5r_file *f, dm_h5r_root *out) {
    memset(out, 0, sizeof *out);
    const char *w = "the root group";
    hid_t r = f->fid;
    dm_status st = h5u_read_i64(f->path, r, "format_version", &out->format_version);
    if (!st)
        st = attr_str_opt(f, r, "software_version", out->software_version,
                          sizeof out->software_version);
    if (!st) st = attr_str_opt(f, r, "created_utc", out->created_utc, sizeof out->created_utc);
    const char *ints[] = {"ranks", "videos", "complete", "failed_videos"};
    int64_t *dst[] = {&out->ranks, &out->videos, &out->complete, &out->failed_videos};
    for (int i = 0; i < 4 && !st; i++) {
        st = need_attr(f, r, w, ints[i]);
        if (!st) st = h5u_read_i64(f->path, r, ints[i], dst[i]);
    }
    return st;
}

/* ---- per-video info ----------------------------------------------------------------------- */

static dm_status dataset_info(const dm_h5r_file *f, hid_t g, const char *vid, const char *name,
                              int want_ndims, dm_h5r_dataset *d) {
    memset(d, 0, sizeof *d);
    htri_t ex = H5Lexists(g, name, H5P_DEFAULT);
    if (ex < 0) return h5u_fail(f->path, "H5Lexists", __FILE__, __LINE__, __func__);
    if (ex == 0) return DM_OK;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return h5u_fail(f->path, "H5Dopen2", __FILE__, __LINE__, __func__);
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    dm_status st = DM_OK;
    int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    hsize_t dims[4] = {0, 0, 0, 0};
    if (type < 0 || nd < 0)
        st = h5u_fail(f->path, "H5Dget_type/H5Dget_space", __FILE__, __LINE__, __func__);
    else if (nd != want_ndims)
        st = dm_error_set(DM_ERR_FORMAT, "%s: /videos/%s/%s has %d dimensions, expected %d",
                          f->path, vid, name, nd, want_ndims);
    else if (H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        st = h5u_fail(f->path, "H5Sget_simple_extent_dims", __FILE__, __LINE__, __func__);
    if (!st) {
        H5T_class_t cls = H5Tget_class(type);
        size_t size = H5Tget_size(type);
        if (cls == H5T_INTEGER && size == 1)
            d->dtype = DM_DTYPE_U8;
        else if (cls == H5T_INTEGER && size == 8)
            d->dtype = DM_DTYPE_I64;
        else if (cls == H5T_FLOAT && size == 2)
            d->dtype = DM_DTYPE_F16;
        else if (cls == H5T_FLOAT && size == 4)
            d->dtype = DM_DTYPE_F32;
        else if (cls == H5T_FLOAT && size == 8)
            d->dtype = DM_DTYPE_F32, d->is_f64 = 1;
        else
            st = dm_error_set(DM_ERR_FORMAT,
                              "%s: /videos/%s/%s has an unsupported element "
                              "type (class %d, %zu bytes)",
                              f->path, vid, name, (int)cls, size);
    }
    if (!st) {
        d->present = 1;
        d->ndims = nd;
        for (int i = 0; i < nd; i++)
            d->dims[i] = (int64_t)dims[i];
        st = attr_str_opt(f, ds, "model", d->model, sizeof d->model);
        if (!st)
            st = attr_str_opt(f, ds, "weights_sha256", d->weights_sha256, sizeof d->weights_sha256);
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    return st;
}

/* Depth attributes: kind, units, size (+ input_height/width for "model"). */
static dm_status depth_attrs(const dm_h5r_file *f, hid_t g, const char *where, dm_h5r_video *v) {
    hid_t ds = H5Dopen2(g, "depth", H5P_DEFAULT);
    if (ds < 0) return h5u_fail(f->path, "H5Dopen2(depth)", __FILE__, __LINE__, __func__);
    dm_status st = attr_str(f, ds, where, "kind", v->depth_kind, sizeof v->depth_kind);
    if (!st) st = attr_str(f, ds, where, "units", v->depth_units, sizeof v->depth_units);
    if (!st) st = attr_str_opt(f, ds, "size", v->depth_size, sizeof v->depth_size);
    if (!st && !v->depth_size[0]) snprintf(v->depth_size, sizeof v->depth_size, "source");
    if (!st && !strcmp(v->depth_size, "model")) {
        st = attr_int(f, ds, where, "input_height", &v->depth_input_height);
        if (!st) st = attr_int(f, ds, where, "input_width", &v->depth_input_width);
    }
    if (!st) v->depth_metric = !strcmp(v->depth_units, "m");
    H5Dclose(ds);
    return st;
}

dm_status dm_h5r_video_info(const dm_h5r_file *f, int index, dm_h5r_video *v) {
    memset(v, 0, sizeof *v);
    dm_status st = check_index(f, index);
    if (st) return st;
    const char *vid = f->ids[index];
    snprintf(v->id, sizeof v->id, "%s", vid);
    char where[40];
    snprintf(where, sizeof where, "/videos/%s", vid);
    hid_t g = H5Gopen2(f->fid, where, H5P_DEFAULT);
    if (g < 0) return dm_error_set(DM_ERR_FORMAT, "%s: %s is not a group", f->path, where);
    int64_t frames = 0;
    st = attr_str(f, g, where, "source", v->source, sizeof v->source);
    if (!st) st = need_attr(f, g, where, "frames");
    if (!st) st = h5u_read_i64(f->path, g, "frames", &frames);
    v->frames = frames;
    if (!st) st = attr_int(f, g, where, "fps_num", &v->fps_num);
    if (!st) st = attr_int(f, g, where, "fps_den", &v->fps_den);
    if (!st) st = attr_int(f, g, where, "width", &v->width);
    if (!st) st = attr_int(f, g, where, "height", &v->height);
    if (!st) st = attr_str_opt(f, g, "codec", v->codec, sizeof v->codec);
    int64_t si = -1;
    if (!st) st = attr_i64_opt(f, g, "stream_index", -1, &si);
    v->stream_index = (int)si;
    if (!st) st = attr_int(f, g, where, "rotation", &v->rotation);
    if (!st) st = attr_int(f, g, where, "sar_num", &v->sar_num);
    if (!st) st = attr_int(f, g, where, "sar_den", &v->sar_den);
    if (!st) st = attr_str(f, g, where, "status", v->status, sizeof v->status);
    if (!st) st = attr_str_opt(f, g, "error", v->error, sizeof v->error);
    if (!st) st = selection_attrs(f, g, where, v);
    static const struct {
        const char *name;
        size_t off;
        int ndims;
    } sets[] = {
        {"depth", offsetof(dm_h5r_video, depth), 3},
        {"alpha", offsetof(dm_h5r_video, alpha), 3},
        {"foreground", offsetof(dm_h5r_video, foreground), 4},
        {"pts", offsetof(dm_h5r_video, pts), 1},
        {"time_s", offsetof(dm_h5r_video, time_s), 1},
        {"source_frame", offsetof(dm_h5r_video, source_frame), 1},
        {"done", offsetof(dm_h5r_video, done), 1},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0] && !st; i++) {
        dm_h5r_dataset *d = (dm_h5r_dataset *)((char *)v + sets[i].off);
        st = dataset_info(f, g, vid, sets[i].name, sets[i].ndims, d);
        if (!st && d->present && d->dims[0] != v->frames)
            st = dm_error_set(DM_ERR_FORMAT, "%s: %s/%s has %lld rows, the video %lld frames",
                              f->path, where, sets[i].name, (long long)d->dims[0],
                              (long long)v->frames);
    }
    if (!st && v->pts.present) {
        hid_t ds = H5Dopen2(g, "pts", H5P_DEFAULT);
        if (ds < 0) st = h5u_fail(f->path, "H5Dopen2(pts)", __FILE__, __LINE__, __func__);
        if (!st) st = attr_int(f, ds, where, "time_base_num", &v->tb_num);
        if (!st) st = attr_int(f, ds, where, "time_base_den", &v->tb_den);
        if (ds >= 0) H5Dclose(ds);
    }
    if (!st && v->depth.present) st = depth_attrs(f, g, where, v);
    if (!st && v->alpha.present) {
        hid_t ds = H5Dopen2(g, "alpha", H5P_DEFAULT);
        if (ds < 0) st = h5u_fail(f->path, "H5Dopen2(alpha)", __FILE__, __LINE__, __func__);
        if (!st) st = attr_str_opt(f, ds, "encoding", v->alpha_encoding, sizeof v->alpha_encoding);
        if (ds >= 0) H5Dclose(ds);
    }
    H5Gclose(g);
    return st;
}

/* ---- row readers -------------------------------------------------------------------------- */

/* Reads rows [a, b) of /videos/<id>/<name> (all of it when a = b = -1) as `mtype` into out. */
static dm_status read_rows(const dm_h5r_file *f, int index, const char *name, int64_t a, int64_t b,
                           hid_t mtype, void *out) {
    dm_status st = check_index(f, index);
    if (st) return st;
    char dpath[64];
    snprintf(dpath, sizeof dpath, "/videos/%s/%s", f->ids[index], name);
    htri_t ex = H5Lexists(f->fid, "videos", H5P_DEFAULT);
    char gpath[40];
    snprintf(gpath, sizeof gpath, "/videos/%s", f->ids[index]);
    if (ex > 0) ex = H5Lexists(f->fid, gpath, H5P_DEFAULT);
    if (ex > 0) ex = H5Lexists(f->fid, dpath, H5P_DEFAULT);
    if (ex <= 0)
        return dm_error_set(DM_ERR_ARG, "%s: video %s has no %s dataset", f->path, f->ids[index],
                            name);
    hid_t ds = H5Dopen2(f->fid, dpath, H5P_DEFAULT);
    if (ds < 0) return h5u_fail(f->path, "H5Dopen2", __FILE__, __LINE__, __func__);
    hid_t fspace = H5Dget_space(ds), mspace = -1;
    hsize_t dims[4] = {0, 0, 0, 0};
    int nd = fspace < 0 ? -1 : H5Sget_simple_extent_ndims(fspace);
    if (nd < 1 || nd > 4 || H5Sget_simple_extent_dims(fspace, dims, NULL) < 0)
        st = h5u_fail(f->path, "H5Sget_simple_extent_dims", __FILE__, __LINE__, __func__);
    if (!st && a == -1 && b == -1) a = 0, b = (int64_t)dims[0];
    if (!st && (a < 0 || b < a || b > (int64_t)dims[0]))
        st = dm_error_set(DM_ERR_ARG, "%s: rows [%lld, %lld) of %s: the video has %llu frames",
                          f->path, (long long)a, (long long)b, dpath, (unsigned long long)dims[0]);
    if (!st && b > a) {
        hsize_t start[4] = {(hsize_t)a, 0, 0, 0}, count[4];
        for (int i = 0; i < nd; i++)
            count[i] = dims[i];
        count[0] = (hsize_t)(b - a);
        if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            (mspace = H5Screate_simple(nd, count, NULL)) < 0 ||
            H5Dread(ds, mtype, mspace, fspace, H5P_DEFAULT, out) < 0)
            st = h5u_fail(f->path, "H5Dread", __FILE__, __LINE__, __func__);
    }
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    H5Dclose(ds);
    if (st == DM_ERR_H5) {
        /* name the dataset in the HDF5 failure too */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dm_error_message());
        st = dm_error_set(DM_ERR_H5, "%s (%s)", msg, dpath);
    }
    return st;
}

dm_status dm_h5r_read_done(const dm_h5r_file *f, int index, uint8_t *done) {
    return read_rows(f, index, "done", -1, -1, H5T_NATIVE_UINT8, done);
}

dm_status dm_h5r_read_pts(const dm_h5r_file *f, int index, int64_t *pts) {
    return read_rows(f, index, "pts", -1, -1, H5T_NATIVE_INT64, pts);
}

dm_status dm_h5r_read_source_frames(const dm_h5r_file *f, int index, int64_t *frames) {
    return read_rows(f, index, "source_frame", -1, -1, H5T_NATIVE_INT64, frames);
}

dm_status dm_h5r_read_time(const dm_h5r_file *f, int index, double *time_s) {
    return read_rows(f, index, "time_s", -1, -1, H5T_NATIVE_DOUBLE, time_s);
}

/* Range check before a conversion path allocates (a = b = -1 means "all" only internally). */
static dm_status check_range(const dm_h5r_file *f, int64_t a, int64_t b) {
    if (a < 0 || b < a)
        return dm_error_set(DM_ERR_ARG, "%s: invalid row range [%lld, %lld)", f->path, (long long)a,
                            (long long)b);
    return DM_OK;
}

dm_status dm_h5r_read_depth(const dm_h5r_file *f, int index, int64_t a, int64_t b, float *out) {
    dm_status st = check_range(f, a, b);
    /* The float16 file type converts to native float inside HDF5 (exact). */
    return st ? st : read_rows(f, index, "depth", a, b, H5T_NATIVE_FLOAT, out);
}

dm_status dm_h5r_read_foreground(const dm_h5r_file *f, int index, int64_t a, int64_t b,
                                 uint8_t *out) {
    dm_status st = check_range(f, a, b);
    return st ? st : read_rows(f, index, "foreground", a, b, H5T_NATIVE_UINT8, out);
}

/* Stored alpha dtype and row size (H * W) of video `index`. */
static dm_status alpha_layout(const dm_h5r_file *f, int index, dm_dtype *dtype, size_t *row) {
    dm_h5r_video *v = malloc(sizeof *v);
    if (!v) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", f->path);
    dm_status st = dm_h5r_video_info(f, index, v);
    if (!st && !v->alpha.present)
        st = dm_error_set(DM_ERR_ARG, "%s: video %s has no alpha dataset", f->path, v->id);
    if (!st) *dtype = v->alpha.dtype, *row = (size_t)(v->alpha.dims[1] * v->alpha.dims[2]);
    free(v);
    return st;
}

dm_status dm_h5r_read_alpha_u8(const dm_h5r_file *f, int index, int64_t a, int64_t b,
                               uint8_t *out) {
    dm_dtype dt;
    size_t row;
    dm_status st = check_range(f, a, b);
    if (!st) st = alpha_layout(f, index, &dt, &row);
    if (st) return st;
    if (dt == DM_DTYPE_U8) return read_rows(f, index, "alpha", a, b, H5T_NATIVE_UINT8, out);
    size_t n = (size_t)(b - a) * row;
    float *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", f->path);
    st = read_rows(f, index, "alpha", a, b, H5T_NATIVE_FLOAT, tmp);
    for (size_t i = 0; i < n && !st; i++) {
        float x = tmp[i];
        x = x > 0.f ? (x < 1.f ? x : 1.f) : 0.f; /* NaN -> 0 */
        out[i] = (uint8_t)lrintf(x * 255.f);
    }
    free(tmp);
    return st;
}

dm_status dm_h5r_read_alpha_f32(const dm_h5r_file *f, int index, int64_t a, int64_t b, float *out) {
    dm_dtype dt;
    size_t row;
    dm_status st = check_range(f, a, b);
    if (!st) st = alpha_layout(f, index, &dt, &row);
    if (st) return st;
    if (dt != DM_DTYPE_U8) return read_rows(f, index, "alpha", a, b, H5T_NATIVE_FLOAT, out);
    size_t n = (size_t)(b - a) * row;
    uint8_t *tmp = malloc(n ? n : 1);
    if (!tmp) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", f->path);
    st = read_rows(f, index, "alpha", a, b, H5T_NATIVE_UINT8, tmp);
    for (size_t i = 0; i < n && !st; i++)
        out[i] = (float)tmp[i] / 255.f;
    free(tmp);
    return st;
}
