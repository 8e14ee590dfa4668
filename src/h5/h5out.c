/* Parallel HDF5 output: file creation, resume check, collective write rounds, finish.
 * Layout and I/O model: include/depthmatte/h5out.h and docs/output.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h5_internal.h"

#ifndef DM_VERSION
#define DM_VERSION "unknown"
#endif

enum { DS_ALPHA, DS_FGR, DS_DEPTH, DS_PTS, DS_TIME, DS_SRC, DS_DONE, DS_COUNT };
static const char *const ds_names[DS_COUNT] = {"alpha",  "foreground",   "depth", "pts",
                                               "time_s", "source_frame", "done"};

typedef struct h5_video {
    hid_t group;
    hid_t ds[DS_COUNT]; /* -1 when absent */
    int64_t frames;
    int failed;
    int step; /* frame_step: source_frame of row t is t * step */
} h5_video;

struct dm_h5_file {
    char *path;
    MPI_Comm comm;
    int rank, size;
    hid_t fid, dxpl, f16;
    dm_h5_layout layout;
    int n_videos;
    h5_video *videos;
    uint8_t *ones; /* (chunk_frames,) of 1: done-marker rows */
    int64_t *src;  /* (chunk_frames,) source frames of a block that gives none */
};

/* Exchanged by every rank at each write round. */
typedef struct round_desc {
    int32_t video, failed_video;
    int64_t begin, count;
    char msg[DM_H5_MSG_MAX];
} round_desc;

static dm_status file_alloc(const char *path, MPI_Comm comm, const dm_h5_layout *layout,
                            int n_videos, dm_h5_file **out) {
    if (layout->chunk_frames < 1 || layout->gzip < 0 || layout->gzip > 9 ||
        (layout->alpha && layout->alpha_dtype != DM_DTYPE_U8 &&
         layout->alpha_dtype != DM_DTYPE_F16) ||
        (layout->depth && layout->depth_dtype != DM_DTYPE_F16 &&
         layout->depth_dtype != DM_DTYPE_F32))
        return dm_error_set(DM_ERR_ARG, "%s: invalid output layout (chunk_frames %d, gzip %d)",
                            path, layout->chunk_frames, layout->gzip);
    dm_h5_file *f = calloc(1, sizeof *f);
    if (!f) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    f->path = strdup(path);
    f->videos = calloc(n_videos > 0 ? n_videos : 1, sizeof *f->videos);
    /* Done-marker rows: as many as the largest block of a round. */
    const int max_rows = layout->block_rows > layout->chunk_frames ? layout->block_rows
                                                                   : layout->chunk_frames;
    f->ones = malloc((size_t)max_rows);
    f->src = malloc((size_t)max_rows * sizeof *f->src);
    if (!f->path || !f->videos || !f->ones || !f->src) {
        free(f->path), free(f->videos), free(f->ones), free(f->src), free(f);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    memset(f->ones, 1, (size_t)max_rows);
    f->comm = comm;
    f->layout = *layout;
    f->layout.matting_model = f->layout.matting_sha256 = NULL; /* not kept: not owned */
    f->layout.depth_model = f->layout.depth_sha256 = f->layout.depth_mode = NULL;
    f->n_videos = n_videos;
    f->fid = f->dxpl = f->f16 = -1;
    for (int v = 0; v < n_videos; v++) {
        f->videos[v].group = -1;
        for (int d = 0; d < DS_COUNT; d++) f->videos[v].ds[d] = -1;
    }
    *out = f;
    MPI_CHECK(path, MPI_Comm_rank(comm, &f->rank));
    MPI_CHECK(path, MPI_Comm_size(comm, &f->size));
    H5_CHECK(path, f->f16 = h5u_f16_type());
    H5_CHECK(path, f->dxpl = H5Pcreate(H5P_DATASET_XFER));
    /* Collective transfers: required with filters, and lets MPI-IO aggregate the rows. */
    H5_CHECK(path, H5Pset_dxpl_mpio(f->dxpl, H5FD_MPIO_COLLECTIVE));
    return DM_OK;
}

static hid_t file_type_of(const dm_h5_file *f, int d) {
    switch (d) {
    case DS_ALPHA: return f->layout.alpha_dtype == DM_DTYPE_F16 ? f->f16 : H5T_STD_U8LE;
    case DS_FGR: return H5T_STD_U8LE;
    case DS_DEPTH: return f->layout.depth_dtype == DM_DTYPE_F16 ? f->f16 : H5T_IEEE_F32LE;
    case DS_PTS:
    case DS_SRC:
        return H5T_STD_I64LE;
    case DS_TIME: return H5T_IEEE_F64LE;
    default: return H5T_STD_U8LE;
    }
}

static hid_t mem_type_of(const dm_h5_file *f, int d) {
    switch (d) {
    case DS_ALPHA: return f->layout.alpha_dtype == DM_DTYPE_F16 ? f->f16 : H5T_NATIVE_UINT8;
    case DS_FGR: return H5T_NATIVE_UINT8;
    case DS_DEPTH: return f->layout.depth_dtype == DM_DTYPE_F16 ? f->f16 : H5T_NATIVE_FLOAT;
    case DS_PTS:
    case DS_SRC:
        return H5T_NATIVE_INT64;
    case DS_TIME: return H5T_NATIVE_DOUBLE;
    default: return H5T_NATIVE_UINT8;
    }
}

static int ds_enabled(const dm_h5_layout *l, int d) {
    if (d == DS_ALPHA) return l->alpha;
    if (d == DS_FGR) return l->foreground;
    if (d == DS_DEPTH) return l->depth;
    return 1;
}

/* Depth dataset H, W: the source size unless the job stores depth at the network input size
 * (depth.output_size model), then depth_height/depth_width. */
static void depth_dims(const dm_h5_video *v, int *h, int *w) {
    int model = v->depth_width > 0 && v->depth_height > 0;
    *h = model ? v->depth_height : v->height;
    *w = model ? v->depth_width : v->width;
}

static dm_status create_dataset(dm_h5_file *f, h5_video *hv, const dm_h5_video *v, int d,
                                const dm_h5_layout *layout) {
    const char *p = f->path;
    hsize_t dims[4] = {(hsize_t)v->frames, (hsize_t)v->height, (hsize_t)v->width, 3};
    if (d == DS_DEPTH) {
        int dh, dw;
        depth_dims(v, &dh, &dw);
        dims[1] = (hsize_t)dh, dims[2] = (hsize_t)dw;
    }
    int nd = d == DS_FGR ? 4 : (d <= DS_DEPTH ? 3 : 1);
    hsize_t chunk[4] = {(hsize_t)layout->chunk_frames, dims[1], dims[2], 3};
    if (chunk[0] > dims[0]) chunk[0] = dims[0];
    hid_t space, dcpl, ds;
    H5_CHECK(p, space = H5Screate_simple(nd, dims, NULL));
    H5_CHECK(p, dcpl = H5Pcreate(H5P_DATASET_CREATE));
    H5_CHECK(p, H5Pset_chunk(dcpl, nd, chunk));
    if (layout->gzip > 0 && d <= DS_DEPTH) H5_CHECK(p, H5Pset_deflate(dcpl, layout->gzip));
    if (d == DS_DONE) {
        /* Unwritten rows must read 0 ("not done"), whatever was in the file space before. */
        uint8_t zero = 0;
        H5_CHECK(p, H5Pset_fill_value(dcpl, H5T_NATIVE_UINT8, &zero));
        H5_CHECK(p, H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC));
    }
    H5_CHECK(p, ds = H5Dcreate2(hv->group, ds_names[d], file_type_of(f, d), space, H5P_DEFAULT,
                                dcpl, H5P_DEFAULT));
    H5_CHECK(p, H5Pclose(dcpl));
    H5_CHECK(p, H5Sclose(space));
    hv->ds[d] = ds;
    dm_status st = DM_OK;
    if (d == DS_ALPHA || d == DS_FGR) {
        if (!st) st = h5u_attr_str(p, ds, "model", layout->matting_model);
        if (!st) st = h5u_attr_str(p, ds, "weights_sha256", layout->matting_sha256);
        if (!st && d == DS_ALPHA)
            st = h5u_attr_str(p, ds, "encoding",
                              layout->alpha_dtype == DM_DTYPE_U8
                                  ? "uint8 = round(clamp(alpha, 0, 1) * 255)"
                                  : "float16 alpha in [0, 1]");
        if (!st && d == DS_FGR)
            st = h5u_attr_str(p, ds, "encoding", "RGB uint8 = round(clamp(fgr, 0, 1) * 255)");
    } else if (d == DS_DEPTH) {
        if (!st)
            st = h5u_attr_str(p, ds, "kind", layout->depth_metric
                                                 ? "metric depth (distance along the optical axis)"
                                                 : "relative inverse depth (disparity-like), unitless");
        if (!st) st = h5u_attr_str(p, ds, "units", layout->depth_metric ? "m" : "1");
        if (!st) st = h5u_attr_str(p, ds, "model", layout->depth_model);
        if (!st) st = h5u_attr_str(p, ds, "weights_sha256", layout->depth_sha256);
        if (!st && layout->depth_mode) st = h5u_attr_str(p, ds, "mode", layout->depth_mode);
        /* Which grid the rows are on: "source" = resized (bilinear, align_corners) to the
         * frame size; "model" = the network's own output grid, input_height x input_width. */
        int model = v->depth_width > 0 && v->depth_height > 0;
        if (!st) st = h5u_attr_str(p, ds, "size", model ? "model" : "source");
        if (!st && model) st = h5u_attr_i64(p, ds, "input_height", v->depth_height);
        if (!st && model) st = h5u_attr_i64(p, ds, "input_width", v->depth_width);
    } else if (d == DS_PTS) {
        if (!st) st = h5u_attr_i64(p, ds, "time_base_num", v->tb_num);
        if (!st) st = h5u_attr_i64(p, ds, "time_base_den", v->tb_den);
    } else if (d == DS_TIME) {
        if (!st) st = h5u_attr_str(p, ds, "units", "s");
    } else if (d == DS_SRC) {
        if (!st)
            st = h5u_attr_str(p, ds, "description",
                              "source frame number of the row "
                              "(presentation order, 0-based; row * frame_step)");
    }
    return st;
}

static dm_status create_video(dm_h5_file *f, hid_t videos_grp, int idx, const dm_h5_video *v,
                              const dm_h5_layout *layout) {
    const char *p = f->path;
    h5_video *hv = &f->videos[idx];
    char name[32];
    snprintf(name, sizeof name, "%05d", idx);
    H5_CHECK(p, hv->group = H5Gcreate2(videos_grp, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    int failed = v->failed || v->frames <= 0 || v->width <= 0 || v->height <= 0;
    hv->failed = failed;
    hv->frames = failed ? 0 : v->frames;
    hv->step = v->sel.frame_step > 0 ? v->sel.frame_step : 1;
    dm_status st = DM_OK;
    hid_t g = hv->group;
    if (!st) st = h5u_attr_str(p, g, "source", v->source);
    if (!st) st = h5u_attr_i64(p, g, "frames", hv->frames);
    if (!st) st = h5u_attr_i64(p, g, "fps_num", v->fps_num);
    if (!st) st = h5u_attr_i64(p, g, "fps_den", v->fps_den);
    if (!st) st = h5u_attr_i64(p, g, "width", v->width);
    if (!st) st = h5u_attr_i64(p, g, "height", v->height);
    if (!st) st = h5u_attr_str(p, g, "codec", v->codec);
    if (!st) st = h5u_attr_i64(p, g, "stream_index", v->stream_index);
    if (!st) st = h5u_attr_i64(p, g, "rotation", v->rotation);
    if (!st) st = h5u_attr_i64(p, g, "sar_num", v->sar_num);
    if (!st) st = h5u_attr_i64(p, g, "sar_den", v->sar_den);
    /* Frame selection and scaling (target_fps, max_res, image sequences): what the rows are
     * of the source (a plain video: step 1, source = frames/size/rate above). */
    const int step = v->sel.frame_step > 0 ? v->sel.frame_step : 1;
    if (!st) st = h5u_attr_i64(p, g, "images", v->sel.images);
    if (!st) st = h5u_attr_i64(p, g, "frame_step", step);
    if (!st) st = h5u_attr_i64(p, g, "max_res", v->sel.max_res);
    if (!st)
        st = h5u_attr_i64(p, g, "source_frames",
                          v->sel.source_frames > 0 ? v->sel.source_frames : hv->frames);
    if (!st)
        st = h5u_attr_i64(p, g, "source_fps_num",
                          v->sel.source_fps_num > 0 ? v->sel.source_fps_num : v->fps_num);
    if (!st)
        st = h5u_attr_i64(p, g, "source_fps_den",
                          v->sel.source_fps_den > 0 ? v->sel.source_fps_den : v->fps_den);
    if (!st)
        st = h5u_attr_i64(p, g, "source_width",
                          v->sel.source_width > 0 ? v->sel.source_width : v->width);
    if (!st)
        st = h5u_attr_i64(p, g, "source_height",
                          v->sel.source_height > 0 ? v->sel.source_height : v->height);
    if (!st) st = h5u_attr_str(p, g, "status", failed ? "failed" : "pending");
    if (!st)
        st = h5u_attr_str(p, g, "error",
                          failed ? (v->error ? v->error : "no decodable frames") : "");
    for (int d = 0; d < DS_COUNT && !st && !failed; d++)
        if (ds_enabled(layout, d)) st = create_dataset(f, hv, v, d, layout);
    return st;
}

static dm_status created_utc(dm_h5_file *f, char buf[32]) {
    /* Rank 0's clock, broadcast: attribute values must be identical on every rank. */
    if (f->rank == 0) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    MPI_CHECK(f->path, MPI_Bcast(buf, 32, MPI_CHAR, 0, f->comm));
    return DM_OK;
}

static const char *const rank_cols[] = {"rank",    "host",           "frames",
                                        "decode_s", "inference_s",   "write_s",
                                        "wait_s",  "total_s",        "device",
                                        "device_peak_mb", "verified_frames", "verify_s",
                                        "recomputed_frames", "local_rank", "gpu",
                                        "write_hidden_s"};
enum { N_RANK_COLS = 16, HOST_LEN = 64, DEVICE_LEN = 128 };

/* Column kinds: 0 int32 rank, 1 string host, 2 int64, 3 float64, 4 string device. */
static int rank_col_kind(int c) {
    if (c == 0) return 0;
    if (c == 1) return 1;
    if (c == 8) return 4;
    if (c == 2 || c == 10 || c == 12 || c == 13 || c == 14) return 2;
    return 3;
}

static dm_status create_ranks(dm_h5_file *f) {
    const char *p = f->path;
    hid_t g, space, str;
    H5_CHECK(p, g = H5Gcreate2(f->fid, "ranks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    hsize_t n = (hsize_t)f->size;
    H5_CHECK(p, space = H5Screate_simple(1, &n, NULL));
    hid_t dstr;
    H5_CHECK(p, str = H5Tcopy(H5T_C_S1));
    H5_CHECK(p, H5Tset_size(str, HOST_LEN));
    H5_CHECK(p, dstr = H5Tcopy(H5T_C_S1));
    H5_CHECK(p, H5Tset_size(dstr, DEVICE_LEN));
    for (int c = 0; c < N_RANK_COLS; c++) {
        const int k = rank_col_kind(c);
        hid_t type = k == 0 ? H5T_STD_I32LE : k == 1 ? str : k == 4 ? dstr
                     : k == 2 ? H5T_STD_I64LE : H5T_IEEE_F64LE;
        hid_t ds;
        H5_CHECK(p, ds = H5Dcreate2(g, rank_cols[c], type, space, H5P_DEFAULT, H5P_DEFAULT,
                                    H5P_DEFAULT));
        H5_CHECK(p, H5Dclose(ds));
    }
    H5_CHECK(p, H5Tclose(str));
    H5_CHECK(p, H5Tclose(dstr));
    H5_CHECK(p, H5Sclose(space));
    H5_CHECK(p, H5Gclose(g));
    return DM_OK;
}

static dm_status open_file(dm_h5_file *f, int create) {
    const char *p = f->path;
    hid_t fapl;
    h5u_quiet();
    /* Open MPI's lock files of an aborted earlier job on this output (h5_stale.c); rank 0
     * removes them before it enters the collective open that creates this job's own */
    int rank = 0;
    MPI_Comm_rank(f->comm, &rank);
    if (rank == 0) h5u_remove_stale_mpi_locks(p);
    H5_CHECK(p, fapl = H5Pcreate(H5P_FILE_ACCESS));
    H5_CHECK(p, H5Pset_fapl_mpio(fapl, f->comm, MPI_INFO_NULL));
    /* Metadata writes collective: one rank writes, no per-rank metadata cache divergence. */
    H5_CHECK(p, H5Pset_coll_metadata_write(fapl, 1));
    if (create)
        H5_CHECK(p, f->fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
    else
        H5_CHECK(p, f->fid = H5Fopen(p, H5F_ACC_RDWR, fapl));
    H5_CHECK(p, H5Pclose(fapl));
    return DM_OK;
}

static dm_status root_attrs(dm_h5_file *f, const dm_h5_meta *meta) {
    char created[32] = "";
    dm_status st = created_utc(f, created);
    const char *p = f->path;
    if (!st) st = h5u_attr_i64(p, f->fid, "format_version", DM_H5_FORMAT_VERSION);
    if (!st) st = h5u_attr_str(p, f->fid, "software_version", "depthmatte " DM_VERSION);
    if (!st) st = h5u_attr_str(p, f->fid, "job_yaml", meta->job_yaml);
    if (!st) st = h5u_attr_str(p, f->fid, "created_utc", created);
    if (!st) st = h5u_attr_i64(p, f->fid, "ranks", meta->ranks);
    if (!st) st = h5u_attr_i64(p, f->fid, "videos", f->n_videos);
    if (!st) st = h5u_attr_i64(p, f->fid, "complete", 0);
    if (!st) st = h5u_attr_i64(p, f->fid, "failed_videos", 0);
    return st;
}

dm_status dm_h5_create(const char *path, MPI_Comm comm, const dm_h5_meta *meta,
                       const dm_h5_layout *layout, const dm_h5_video *videos, int n_videos,
                       dm_h5_file **out) {
    *out = NULL;
    dm_h5_file *f = NULL;
    dm_status st = file_alloc(path, comm, layout, n_videos, &f);
    *out = f;
    if (!st) st = open_file(f, 1);
    if (!st) st = root_attrs(f, meta);
    hid_t vg = -1;
    if (!st && (vg = H5Gcreate2(f->fid, "videos", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        st = h5u_fail(path, "H5Gcreate2(videos)", __FILE__, __LINE__, __func__);
    for (int v = 0; v < n_videos && !st; v++) st = create_video(f, vg, v, &videos[v], layout);
    if (vg >= 0) H5Gclose(vg);
    if (!st) st = create_ranks(f);
    if (!st && H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0)
        st = h5u_fail(path, "H5Fflush", __FILE__, __LINE__, __func__);
    return st;
}

/* Resume: the depth rows of the file must be on the grid the job produces (source size vs
 * depth.output_size model), else rows of two sizes would be mixed. */
static dm_status resume_depth_dims(dm_h5_file *f, hid_t ds, const char *name,
                                   const dm_h5_video *v) {
    const char *p = f->path;
    hid_t space;
    hsize_t dims[3] = {0, 0, 0};
    int nd;
    H5_CHECK(p, space = H5Dget_space(ds));
    nd = H5Sget_simple_extent_ndims(space);
    if (nd == 3) H5_CHECK(p, H5Sget_simple_extent_dims(space, dims, NULL));
    H5Sclose(space);
    int dh, dw;
    depth_dims(v, &dh, &dw);
    if (nd != 3 || dims[1] != (hsize_t)dh || dims[2] != (hsize_t)dw)
        return dm_error_set(DM_ERR_FORMAT, "%s: resume mismatch: /%s/depth of %s is %llux%llu "
                            "(W x H) in the file, the job writes %dx%d (depth.output_size %s)",
                            p, name, v->source, (unsigned long long)dims[2],
                            (unsigned long long)dims[1], dw, dh,
                            v->depth_width > 0 && v->depth_height > 0 ? "model" : "source");
    return DM_OK;
}

/* Resume check of one video: attributes and dataset types must match the job. */
static dm_status resume_video(dm_h5_file *f, int idx, const dm_h5_video *v) {
    const char *p = f->path;
    h5_video *hv = &f->videos[idx];
    char name[40], src[4096], status[32];
    snprintf(name, sizeof name, "videos/%05d", idx);
    htri_t ex;
    H5_CHECK(p, ex = H5Lexists(f->fid, "videos", H5P_DEFAULT));
    if (ex > 0) H5_CHECK(p, ex = H5Lexists(f->fid, name, H5P_DEFAULT));
    if (ex <= 0)
        return dm_error_set(DM_ERR_FORMAT, "%s: resume mismatch: no group /%s", p, name);
    H5_CHECK(p, hv->group = H5Gopen2(f->fid, name, H5P_DEFAULT));
    int64_t frames, w, h, step = 1;
    dm_status st = h5u_read_str(p, hv->group, "source", src, sizeof src);
    htri_t has_step;
    H5_CHECK(p, has_step = H5Aexists(hv->group, "frame_step"));
    if (!st && has_step > 0) st = h5u_read_i64(p, hv->group, "frame_step", &step);
    if (!st) st = h5u_read_i64(p, hv->group, "frames", &frames);
    if (!st) st = h5u_read_i64(p, hv->group, "width", &w);
    if (!st) st = h5u_read_i64(p, hv->group, "height", &h);
    if (!st) st = h5u_read_str(p, hv->group, "status", status, sizeof status);
    if (st) return st;
    int failed = v->failed || v->frames <= 0 || v->width <= 0 || v->height <= 0;
    int64_t want_frames = failed ? 0 : v->frames;
    if (strcmp(src, v->source) || frames != want_frames || (!failed && (w != v->width || h != v->height)))
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: resume mismatch: /%s holds %s (%lld frames, %lldx%lld), the job "
                            "has %s (%lld frames, %dx%d)",
                            p, name, src, (long long)frames, (long long)w, (long long)h,
                            v->source, (long long)want_frames, v->width, v->height);
    htri_t has_si;
    int64_t si = -1;
    H5_CHECK(p, has_si = H5Aexists(hv->group, "stream_index"));
    if (has_si > 0 && (st = h5u_read_i64(p, hv->group, "stream_index", &si))) return st;
    if (!failed && has_si > 0 && si >= 0 && si != v->stream_index)
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: resume mismatch: /%s holds video stream %lld of %s, the job "
                            "decodes stream %d (video_stream changed?)",
                            p, name, (long long)si, src, v->stream_index);
    if (!failed && step != (v->sel.frame_step > 0 ? v->sel.frame_step : 1))
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: resume mismatch: /%s keeps every %lld-th source "
                            "frame, the job every %d-th (target_fps changed?)",
                            p, name, (long long)step,
                            v->sel.frame_step > 0 ? v->sel.frame_step : 1);
    hv->failed = failed;
    hv->frames = want_frames;
    hv->step = (int)step;
    if (failed) return DM_OK;
    for (int d = 0; d < DS_COUNT; d++) {
        H5_CHECK(p, ex = H5Lexists(hv->group, ds_names[d], H5P_DEFAULT));
        if ((ex > 0) != (ds_enabled(&f->layout, d) != 0))
            return dm_error_set(DM_ERR_FORMAT, "%s: resume mismatch: /%s/%s is %s in the file, "
                                "%s in the job", p, name, ds_names[d],
                                ex > 0 ? "present" : "absent",
                                ds_enabled(&f->layout, d) ? "enabled" : "disabled");
        if (ex <= 0) continue;
        hid_t ds, t;
        H5_CHECK(p, ds = hv->ds[d] = H5Dopen2(hv->group, ds_names[d], H5P_DEFAULT));
        H5_CHECK(p, t = H5Dget_type(ds));
        htri_t same;
        H5_CHECK(p, same = H5Tequal(t, file_type_of(f, d)));
        H5Tclose(t);
        if (!same)
            return dm_error_set(DM_ERR_FORMAT, "%s: resume mismatch: /%s/%s has another dtype "
                                "than the job asks for", p, name, ds_names[d]);
        if (d == DS_DEPTH && (st = resume_depth_dims(f, ds, name, v))) return st;
    }
    return h5u_attr_str(p, hv->group, "status", "pending");
}

dm_status dm_h5_open_resume(const char *path, MPI_Comm comm, const dm_h5_meta *meta,
                            const dm_h5_layout *layout, const dm_h5_video *videos,
                            int n_videos, dm_h5_file **out) {
    *out = NULL;
    dm_h5_file *f = NULL;
    dm_status st = file_alloc(path, comm, layout, n_videos, &f);
    *out = f;
    if (!st) st = open_file(f, 0);
    int64_t version = 0, nv = 0;
    if (!st) st = h5u_read_i64(path, f->fid, "format_version", &version);
    if (!st) st = h5u_read_i64(path, f->fid, "videos", &nv);
    if (!st && (version != DM_H5_FORMAT_VERSION || nv != n_videos))
        st = dm_error_set(DM_ERR_FORMAT, "%s: resume mismatch: file has format %lld with %lld "
                          "videos, the job needs format %d with %d videos", path,
                          (long long)version, (long long)nv, DM_H5_FORMAT_VERSION, n_videos);
    for (int v = 0; v < n_videos && !st; v++) st = resume_video(f, v, &videos[v]);
    if (!st) st = h5u_attr_i64(path, f->fid, "complete", 0);
    if (!st) st = h5u_attr_str(path, f->fid, "resumed_job_yaml", meta->job_yaml);
    if (!st) st = h5u_attr_i64(path, f->fid, "ranks", meta->ranks);
    if (!st && H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0)
        st = h5u_fail(path, "H5Fflush", __FILE__, __LINE__, __func__);
    return st;
}

dm_status dm_h5_read_done(dm_h5_file *f, int video, uint8_t *done) {
    if (video < 0 || video >= f->n_videos)
        return dm_error_set(DM_ERR_ARG, "%s: video index %d out of range", f->path, video);
    h5_video *hv = &f->videos[video];
    if (hv->ds[DS_DONE] < 0) {
        memset(done, 0, (size_t)hv->frames);
        return DM_OK;
    }
    /* Independent read (default transfer list): any rank may call it on its own. */
    H5_CHECK(f->path, H5Dread(hv->ds[DS_DONE], H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                              done));
    return DM_OK;
}

int dm_h5_video_failed(const dm_h5_file *f, int video) {
    return video >= 0 && video < f->n_videos && f->videos[video].failed;
}

/* Collective write of rows [begin, begin+count) of one dataset; count == 0 joins the call with
 * an empty selection. */
static dm_status write_rows(dm_h5_file *f, hid_t ds, hid_t mtype, int64_t begin, int64_t count,
                            const void *buf) {
    const char *p = f->path;
    hid_t fs, ms;
    hsize_t dims[4], start[4] = {0, 0, 0, 0};
    int nd;
    H5_CHECK(p, fs = H5Dget_space(ds));
    H5_CHECK(p, nd = H5Sget_simple_extent_dims(fs, dims, NULL));
    if (count > 0) {
        if (begin < 0 || (hsize_t)(begin + count) > dims[0])
            return dm_error_set(DM_ERR_ARG, "%s: rows [%lld, %lld) outside the dataset (%llu "
                                "rows)", p, (long long)begin, (long long)(begin + count),
                                (unsigned long long)dims[0]);
        if (!buf)
            return dm_error_set(DM_ERR_ARG, "%s: missing buffer for a dataset of the layout", p);
        start[0] = (hsize_t)begin;
        dims[0] = (hsize_t)count;
        H5_CHECK(p, H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, dims, NULL));
        H5_CHECK(p, ms = H5Screate_simple(nd, dims, NULL));
    } else {
        static const uint8_t dummy = 0; /* H5Dwrite rejects NULL even for empty selections */
        buf = &dummy;
        H5_CHECK(p, H5Sselect_none(fs));
        H5_CHECK(p, ms = H5Scopy(fs));
        H5_CHECK(p, H5Sselect_none(ms));
    }
    H5_CHECK(p, H5Dwrite(ds, mtype, ms, fs, f->dxpl, buf));
    H5_CHECK(p, H5Sclose(ms));
    H5_CHECK(p, H5Sclose(fs));
    return DM_OK;
}

static dm_status mark_failed(dm_h5_file *f, int v, const char *msg) {
    f->videos[v].failed = 1;
    dm_status st = h5u_attr_str(f->path, f->videos[v].group, "status", "failed");
    if (!st) st = h5u_attr_str(f->path, f->videos[v].group, "error", msg);
    return st;
}

dm_status dm_h5_write_round(dm_h5_file *f, const dm_h5_block *mine, int64_t *round_frames) {
    const char *p = f->path;
    round_desc me;
    memset(&me, 0, sizeof me);
    me.video = -1;
    me.failed_video = -1;
    if (mine && mine->video >= 0 && mine->count > 0) {
        const int max_rows = f->layout.block_rows > 0 ? f->layout.block_rows
                                                      : f->layout.chunk_frames;
        if (mine->video >= f->n_videos || mine->count > max_rows ||
            f->videos[mine->video].ds[DS_DONE] < 0)
            return dm_error_set(DM_ERR_ARG, "%s: bad write block (video %d, %lld rows; at most "
                                "%d rows per round)", p, mine->video, (long long)mine->count,
                                max_rows);
        me.video = mine->video;
        me.begin = mine->begin;
        me.count = mine->count;
    }
    if (mine && mine->failed_video >= 0 && mine->failed_video < f->n_videos) {
        me.failed_video = mine->failed_video;
        snprintf(me.msg, sizeof me.msg, "%s", mine->error ? mine->error : "failed");
    }
    /* Gather all descriptors: a static buffer would be shared across files; allocate once per
     * round is cheap next to a collective write, but keep it on the heap (ranks * 280 B). */
    round_desc *all = malloc((size_t)f->size * sizeof *all);
    if (!all) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", p);
    int rc = MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, f->comm);
    if (rc != MPI_SUCCESS) {
        free(all);
        return h5u_mpi_fail(p, rc, "MPI_Allgather(round descriptors)", __FILE__, __LINE__,
                            __func__);
    }
    dm_status st = DM_OK;
    /* Failures first, in rank order: every rank walks the same list, so the attribute writes
     * are issued identically everywhere. */
    for (int r = 0; r < f->size && !st; r++) {
        int v = all[r].failed_video;
        if (v >= 0 && !f->videos[v].failed) st = mark_failed(f, v, all[r].msg);
    }
    int64_t total = 0;
    /* Data rows, then done markers, video by video in ascending index. */
    for (int pass = 0; pass < 2 && !st; pass++) {
        for (int v = 0; v < f->n_videos && !st; v++) {
            int touched = 0;
            for (int r = 0; r < f->size; r++) touched |= all[r].video == v;
            if (!touched) continue;
            int64_t b = me.video == v ? me.begin : 0, c = me.video == v ? me.count : 0;
            h5_video *hv = &f->videos[v];
            if (pass == 0) {
                const void *bufs[DS_DONE] = {
                    mine ? mine->alpha : NULL,  mine ? mine->foreground : NULL,
                    mine ? mine->depth : NULL,  mine ? mine->pts : NULL,
                    mine ? mine->time_s : NULL, NULL};
                if (c > 0) { /* the reader presents source frame t * step as frame t */
                    for (int64_t i = 0; i < c; i++)
                        f->src[i] = (b + i) * hv->step;
                    bufs[DS_SRC] = f->src;
                }
                for (int d = 0; d < DS_DONE && !st; d++)
                    if (hv->ds[d] >= 0) st = write_rows(f, hv->ds[d], mem_type_of(f, d), b, c, bufs[d]);
            } else {
                st = write_rows(f, hv->ds[DS_DONE], H5T_NATIVE_UINT8, b, c, f->ones);
            }
        }
    }
    for (int r = 0; r < f->size; r++) total += all[r].video >= 0 ? all[r].count : 0;
    free(all);
    if (!st && H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0)
        st = h5u_fail(p, "H5Fflush", __FILE__, __LINE__, __func__);
    if (round_frames) *round_frames = total;
    return st;
}

dm_status dm_h5_write_stats(dm_h5_file *f, const dm_h5_rank_stats *mine) {
    const char *p = f->path;
    typedef struct {
        dm_h5_rank_stats s;
        char host[HOST_LEN];
    } row;
    row me;
    memset(&me, 0, sizeof me);
    me.s = *mine;
    int len = 0;
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    MPI_CHECK(p, MPI_Get_processor_name(host, &len));
    snprintf(me.host, sizeof me.host, "%s", host);
    row *all = malloc((size_t)f->size * sizeof *all);
    int32_t *ranks = malloc((size_t)f->size * sizeof *ranks);
    int64_t *frames = malloc((size_t)f->size * sizeof *frames);
    double *secs = malloc((size_t)f->size * sizeof *secs);
    char *hosts = malloc((size_t)f->size * HOST_LEN);
    char *devices = malloc((size_t)f->size * DEVICE_LEN);
    dm_status st = DM_OK;
    if (!all || !ranks || !frames || !secs || !hosts || !devices)
        st = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", p);
    int rc = MPI_SUCCESS;
    if (!st) rc = MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE,
                                f->comm);
    if (!st && rc != MPI_SUCCESS)
        st = h5u_mpi_fail(p, rc, "MPI_Allgather(stats)", __FILE__, __LINE__, __func__);
    hid_t g = -1, str = -1, dstr = -1;
    if (!st && ((g = H5Gopen2(f->fid, "ranks", H5P_DEFAULT)) < 0 ||
                (str = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(str, HOST_LEN) < 0 ||
                (dstr = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(dstr, DEVICE_LEN) < 0))
        st = h5u_fail(p, "H5Gopen2(ranks)", __FILE__, __LINE__, __func__);
    for (int c = 0; c < N_RANK_COLS && !st; c++) {
        const void *buf = secs;
        hid_t mt = H5T_NATIVE_DOUBLE;
        const int k = rank_col_kind(c);
        for (int r = 0; r < f->size; r++) {
            const dm_h5_rank_stats *s = &all[r].s;
            ranks[r] = r;
            frames[r] = c == 10 ? s->verified_frames : c == 12 ? s->recomputed_frames
                        : c == 13 ? s->local_rank : c == 14 ? s->gpu : s->frames;
            memcpy(hosts + (size_t)r * HOST_LEN, all[r].host, HOST_LEN);
            memcpy(devices + (size_t)r * DEVICE_LEN, s->device, DEVICE_LEN);
            devices[(size_t)r * DEVICE_LEN + DEVICE_LEN - 1] = '\0';
            secs[r] = c == 3 ? s->decode_s : c == 4 ? s->inference_s : c == 5 ? s->write_s
                      : c == 6 ? s->wait_s : c == 9 ? s->device_peak_mb
                      : c == 11 ? s->verify_s : c == 15 ? s->write_hidden_s : s->total_s;
        }
        if (k == 0) buf = ranks, mt = H5T_NATIVE_INT32;
        if (k == 1) buf = hosts, mt = str;
        if (k == 4) buf = devices, mt = dstr;
        if (k == 2) buf = frames, mt = H5T_NATIVE_INT64;
        /* files written before a column existed (resumed) simply lack it */
        if (H5Lexists(g, rank_cols[c], H5P_DEFAULT) <= 0) continue;
        hid_t ds = H5Dopen2(g, rank_cols[c], H5P_DEFAULT);
        if (ds < 0) {
            st = h5u_fail(p, "H5Dopen2(ranks column)", __FILE__, __LINE__, __func__);
            break;
        }
        /* Rank 0 writes the whole column; the others join with an empty selection. */
        st = write_rows(f, ds, mt, 0, f->rank == 0 ? f->size : 0, buf);
        H5Dclose(ds);
    }
    if (str >= 0) H5Tclose(str);
    if (dstr >= 0) H5Tclose(dstr);
    if (g >= 0) H5Gclose(g);
    free(all), free(ranks), free(frames), free(secs), free(hosts), free(devices);
    return st;
}

dm_status dm_h5_add_video_counts(dm_h5_file *f, const char *name, const int64_t *mine) {
    const char *p = f->path;
    const int n = f->n_videos;
    int64_t *sum = calloc(n > 0 ? (size_t)n : 1, sizeof *sum);
    if (!sum) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", p);
    dm_status st = DM_OK;
    const int rc = MPI_Allreduce(mine, sum, n, MPI_INT64_T, MPI_SUM, f->comm);
    if (rc != MPI_SUCCESS)
        st = h5u_mpi_fail(p, rc, "MPI_Allreduce(video counts)", __FILE__, __LINE__, __func__);
    for (int v = 0; v < n && !st; v++) {
        int64_t before = 0;
        const htri_t has = H5Aexists(f->videos[v].group, name);
        if (has < 0) st = h5u_fail(p, "H5Aexists", __FILE__, __LINE__, __func__);
        if (!st && has > 0) st = h5u_read_i64(p, f->videos[v].group, name, &before);
        if (!st) st = h5u_attr_i64(p, f->videos[v].group, name, before + sum[v]);
    }
    free(sum);
    return st;
}

dm_status dm_h5_finish(dm_h5_file *f) {
    const char *p = f->path;
    int64_t failed = 0;
    dm_status st = DM_OK;
    for (int v = 0; v < f->n_videos && !st; v++) {
        if (f->videos[v].failed) {
            failed++;
            continue;
        }
        st = h5u_attr_str(p, f->videos[v].group, "status", "ok");
        if (!st) st = h5u_attr_str(p, f->videos[v].group, "error", "");
    }
    if (!st) st = h5u_attr_i64(p, f->fid, "failed_videos", failed);
    if (!st) st = h5u_attr_i64(p, f->fid, "complete", failed == 0);
    if (!st && H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0)
        st = h5u_fail(p, "H5Fflush", __FILE__, __LINE__, __func__);
    return st;
}

dm_status dm_h5_close(dm_h5_file *f) {
    if (!f) return DM_OK;
    dm_status st = DM_OK;
    for (int v = 0; v < f->n_videos; v++) {
        for (int d = 0; d < DS_COUNT; d++)
            if (f->videos[v].ds[d] >= 0) H5Dclose(f->videos[v].ds[d]);
        if (f->videos[v].group >= 0) H5Gclose(f->videos[v].group);
    }
    if (f->fid >= 0 && H5Fclose(f->fid) < 0)
        st = h5u_fail(f->path, "H5Fclose", __FILE__, __LINE__, __func__);
    if (f->dxpl >= 0) H5Pclose(f->dxpl);
    if (f->f16 >= 0) H5Tclose(f->f16);
    free(f->path), free(f->videos), free(f->ones), free(f->src), free(f);
    return st;
}
