/* Per-thread last-error message. */
#include <stdarg.h>
#include <stdio.h>

#include "depthmatte/status.h"

static _Thread_local char g_error_message[1024];

dm_status dm_error_set(dm_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error_message, sizeof g_error_message, fmt, ap);
    va_end(ap);
    return code;
}

const char *dm_error_message(void) {
    return g_error_message;
}

const char *dm_status_name(dm_status s) {
    static const char *names[] = {"ok",     "argument", "io",      "format",      "shape",
                                  "dtype",  "name",     "memory",  "decode",      "unsupported",
                                  "backend", "mpi",     "hdf5",    "non-finite", "verify"};
    if ((unsigned)s < sizeof names / sizeof names[0]) return names[s];
    return "unknown";
}
