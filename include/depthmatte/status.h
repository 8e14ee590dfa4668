/* depthmatte — status codes and the per-thread error message.
 *
 * Library code never exits: it returns a dm_status and records a one-line message with
 * dm_error_set() ("FILE: cause"). Only the CLI decides to print it and abort (MPI_Abort).
 */
#ifndef DEPTHMATTE_STATUS_H
#define DEPTHMATTE_STATUS_H

typedef enum dm_status {
    DM_OK = 0,
    DM_ERR_ARG,         /* invalid argument or option value */
    DM_ERR_IO,          /* file missing, unreadable, unwritable */
    DM_ERR_FORMAT,      /* malformed file contents (YAML, safetensors header, container) */
    DM_ERR_SHAPE,       /* tensor shape mismatch */
    DM_ERR_DTYPE,       /* tensor dtype mismatch or unsupported */
    DM_ERR_NAME,        /* weight tensor missing or unexpected */
    DM_ERR_NOMEM,       /* allocation failed */
    DM_ERR_DECODE,      /* video demux/decode failure */
    DM_ERR_UNSUPPORTED, /* feature/op not supported by this build or backend */
    DM_ERR_BACKEND,     /* CUDA / cuDNN / cuBLAS failure */
    DM_ERR_MPI,         /* MPI failure */
    DM_ERR_H5,          /* HDF5 failure */
    DM_ERR_NONFINITE,   /* NaN/Inf in an output */
    DM_ERR_VERIFY,      /* a device's output disagrees with the CPU reference (runtime.verify) */
} dm_status;

/* Records the current thread's last error message (printf format). Returns `code` so that
 * callers can write `return dm_error_set(DM_ERR_IO, "%s: %s", path, strerror(errno));`. */
dm_status dm_error_set(dm_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the current thread's last error message ("" if none). Never NULL. */
const char *dm_error_message(void);

/* Returns a short constant name of a status ("io", "shape", ...). */
const char *dm_status_name(dm_status s);

#endif
