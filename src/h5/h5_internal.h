/* Private helpers of src/h5: checked-call macros, attribute and type helpers.
 *
 * Every HDF5 and MPI call in src/h5 goes through H5_CHECK / MPI_CHECK. On failure they record
 * "PATH: CALL failed at FILE:LINE in FUNCTION: <library message>" with dm_error_set and return
 * DM_ERR_H5 / DM_ERR_MPI from the enclosing function. Handles opened before the failure are not
 * closed: a failure inside a collective call leaves the file unusable and the caller aborts
 * the job (MPI_Abort), which releases everything. */
#ifndef DM_H5_INTERNAL_H
#define DM_H5_INTERNAL_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "depthmatte/h5out.h"

dm_status h5u_fail(const char *path, const char *call, const char *file, int line,
                   const char *func);
dm_status h5u_mpi_fail(const char *path, int err, const char *call, const char *file, int line,
                       const char *func);

#define H5_CHECK(path, expr)                                                                   \
    do {                                                                                       \
        if ((expr) < 0) return h5u_fail((path), #expr, __FILE__, __LINE__, __func__);          \
    } while (0)

#define MPI_CHECK(path, expr)                                                                  \
    do {                                                                                       \
        int mpi_err_ = (expr);                                                                 \
        if (mpi_err_ != MPI_SUCCESS)                                                           \
            return h5u_mpi_fail((path), mpi_err_, #expr, __FILE__, __LINE__, __func__);        \
    } while (0)

/* Removes the stale "<path>-<jobid>-<pid>.lock" files (8 bytes, regular) that Open MPI's
 * sharedfp/lockedfile component leaves beside `path` when a job ends in MPI_Abort
 * (h5_stale.c); any other file is left alone. Call on one rank before the collective open.
 * Returns the number removed. */
int h5u_remove_stale_mpi_locks(const char *path);

/* Silences HDF5's automatic error-stack printing (we report through dm_error_set). */
void h5u_quiet(void);

/* IEEE 754 binary16 little-endian file/memory type (HDF5 1.10 has no predefined one; same
 * definition as h5py's, so h5py reads it as numpy float16). Caller closes it. */
hid_t h5u_f16_type(void);

/* Collective attribute writes: replace the attribute if it exists. */
dm_status h5u_attr_str(const char *path, hid_t obj, const char *name, const char *value);
dm_status h5u_attr_i64(const char *path, hid_t obj, const char *name, int64_t value);

/* Attribute reads (independent). Strings are truncated to size-1 bytes. */
dm_status h5u_read_str(const char *path, hid_t obj, const char *name, char *buf, size_t size);
dm_status h5u_read_i64(const char *path, hid_t obj, const char *name, int64_t *value);

#endif
