/* Stale lock files of Open MPI's shared-file-pointer component next to the output.
 *
 * Open MPI's MPI-IO (ompio) opens a shared-file-pointer module for every MPI_File_open, which
 * parallel HDF5 does for the output. When the ranks do not all share one node, the component
 * chosen is sharedfp/lockedfile: rank 0 creates "<file>-<jobid>-<pid>.lock" beside the file
 * (format "%s-%u-%d%s" in mca_sharedfp_lockedfile.so of Open MPI 4.1), holding one MPI_Offset
 * (8 bytes), and removes it in MPI_File_close. A job that ends in MPI_Abort (stall watchdog,
 * a killed rank or host) never closes the file, so the lock file stays. It does not block a
 * later open (the next job names its own file after its own job id and pid); it is litter
 * that accumulates with every aborted job. We never use shared file pointers (HDF5 does not),
 * and the component cannot be deselected (ompio fails the open without one), so the next job
 * on the same output removes such files before it opens the output. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5_internal.h"

/* 1 when s is "<digits>-<digits>.lock" (at least one digit each). */
static int lock_suffix(const char *s) {
    for (int part = 0; part < 2; part++) {
        const char *d = s;
        while (*s >= '0' && *s <= '9')
            s++;
        if (s == d) return 0;
        if (part == 0 && *s++ != '-') return 0;
    }
    return strcmp(s, ".lock") == 0;
}

int h5u_remove_stale_mpi_locks(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const size_t dlen = slash ? (size_t)(slash - path) : 0, blen = strlen(base);
    char *dir = malloc(dlen + 2);
    if (!dir || !blen) {
        free(dir);
        return 0;
    }
    if (!slash) {
        strcpy(dir, ".");
    } else { /* "/x.h5": the root directory */
        const size_t n = dlen ? dlen : 1;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int removed = 0;
    DIR *dp = opendir(dir);
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) || n[blen] != '-' || !lock_suffix(n + blen + 1)) continue;
        const size_t len = strlen(dir) + 1 + strlen(n) + 1;
        char *full = malloc(len);
        if (!full) break;
        snprintf(full, len, "%s/%s", dir, n);
        struct stat sb;
        /* a regular file of exactly one MPI_Offset: the component's, nothing else */
        if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 8 && !unlink(full))
            removed++;
        free(full);
    }
    if (dp) closedir(dp);
    free(dir);
    return removed;
}
