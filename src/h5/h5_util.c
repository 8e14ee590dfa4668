/* Checked-call reporting, attribute helpers and the float16 type for the HDF5 writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5_internal.h"

/* H5Ewalk2 callback: keep the innermost (first, walking upward) description, which names the
 * concrete cause ("unable to open file: ... errno = 13, error message = 'Permission denied'"). */
static herr_t h5u_walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    char *buf = data;
    if (n == 0 && err->desc) snprintf(buf, 384, "%s (%s)", err->desc, err->func_name);
    return 0;
}

dm_status h5u_fail(const char *path, const char *call, const char *file, int line,
                   const char *func) {
    char msg[384] = "no HDF5 error message";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5u_walk_cb, msg);
    H5Eclear2(H5E_DEFAULT);
    const char *base = strrchr(file, '/');
    return dm_error_set(DM_ERR_H5, "%s: %s failed at %s:%d in %s: %s", path ? path : "(hdf5)",
                        call, base ? base + 1 : file, line, func, msg);
}

dm_status h5u_mpi_fail(const char *path, int err, const char *call, const char *file, int line,
                       const char *func) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, msg, &len);
    const char *base = strrchr(file, '/');
    return dm_error_set(DM_ERR_MPI, "%s: %s failed at %s:%d in %s: %s", path ? path : "(mpi)",
                        call, base ? base + 1 : file, line, func, msg);
}

void h5u_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

hid_t h5u_f16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    /* sign bit 15, exponent bits 10..14 (bias 15), mantissa bits 0..9 */
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 ||
        H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static dm_status h5u_attr_write(const char *path, hid_t obj, const char *name, hid_t type,
                                const void *value) {
    htri_t exists;
    H5_CHECK(path, exists = H5Aexists(obj, name));
    if (exists > 0) H5_CHECK(path, H5Adelete(obj, name));
    hid_t space, attr;
    H5_CHECK(path, space = H5Screate(H5S_SCALAR));
    H5_CHECK(path, attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECK(path, H5Awrite(attr, type, value));
    H5_CHECK(path, H5Aclose(attr));
    H5_CHECK(path, H5Sclose(space));
    return DM_OK;
}

dm_status h5u_attr_str(const char *path, hid_t obj, const char *name, const char *value) {
    if (!value) value = "";
    /* Fixed-length, NUL-terminated: variable-length data are not supported by parallel HDF5
     * writes, and every rank passes the same bytes. */
    hid_t type;
    H5_CHECK(path, type = H5Tcopy(H5T_C_S1));
    H5_CHECK(path, H5Tset_size(type, strlen(value) + 1));
    H5_CHECK(path, H5Tset_strpad(type, H5T_STR_NULLTERM));
    dm_status st = h5u_attr_write(path, obj, name, type, value);
    H5Tclose(type);
    return st;
}

dm_status h5u_attr_i64(const char *path, hid_t obj, const char *name, int64_t value) {
    hid_t type = H5T_NATIVE_INT64;
    htri_t exists;
    H5_CHECK(path, exists = H5Aexists(obj, name));
    if (exists > 0) H5_CHECK(path, H5Adelete(obj, name));
    hid_t space, attr;
    H5_CHECK(path, space = H5Screate(H5S_SCALAR));
    H5_CHECK(path, attr = H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECK(path, H5Awrite(attr, type, &value));
    H5_CHECK(path, H5Aclose(attr));
    H5_CHECK(path, H5Sclose(space));
    return DM_OK;
}

dm_status h5u_read_str(const char *path, hid_t obj, const char *name, char *buf, size_t size) {
    hid_t attr, ftype, mtype;
    H5_CHECK(path, attr = H5Aopen(obj, name, H5P_DEFAULT));
    H5_CHECK(path, ftype = H5Aget_type(attr));
    if (H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) > 0) {
        H5Tclose(ftype);
        H5Aclose(attr);
        return dm_error_set(DM_ERR_FORMAT, "%s: attribute %s is not a fixed-length string",
                            path, name);
    }
    size_t n = H5Tget_size(ftype);
    char *tmp = calloc(n + 1, 1);
    if (!tmp) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    H5_CHECK(path, mtype = H5Tcopy(ftype));
    herr_t rc = H5Aread(attr, mtype, tmp);
    H5Tclose(mtype);
    H5Tclose(ftype);
    H5Aclose(attr);
    if (rc < 0) {
        free(tmp);
        return h5u_fail(path, "H5Aread(string attribute)", __FILE__, __LINE__, __func__);
    }
    snprintf(buf, size, "%s", tmp);
    free(tmp);
    return DM_OK;
}

dm_status h5u_read_i64(const char *path, hid_t obj, const char *name, int64_t *value) {
    hid_t attr;
    H5_CHECK(path, attr = H5Aopen(obj, name, H5P_DEFAULT));
    H5_CHECK(path, H5Aread(attr, H5T_NATIVE_INT64, value));
    H5_CHECK(path, H5Aclose(attr));
    return DM_OK;
}
