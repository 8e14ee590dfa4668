/* Image sequences as videos: a folder or a glob of PNG/JPEG frames, demuxed by FFmpeg's image2
 * demuxer (pattern_type glob) and decoded by its PNG / MJPEG decoders. This file only lists
 * the frame files, with the same glob() call the demuxer makes (so frame i is files[i]), to
 * check them before FFmpeg sees them (nothing matched, empty or unreadable files, mixed PNG and
 * JPEG) and to name the file of a frame in error messages. */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "video/video_internal.h"

int dm_video_is_image_sequence(const char *path) {
    if (!path) return 0;
    struct stat st;
    if (stat(path, &st) == 0) return S_ISDIR(st.st_mode); /* an existing file is a video */
    return strpbrk(path, "*?[{") != NULL;
}

/* DMV_SEQ_PNG / DMV_SEQ_JPEG by the file name's extension (any case); -1 for other files. */
static int family_of(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || strchr(dot, '/')) return -1;
    if (!strcasecmp(dot, ".png")) return DMV_SEQ_PNG;
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg")) return DMV_SEQ_JPEG;
    return -1;
}

void dmv_seq_free(dmv_seq *s) {
    for (int64_t i = 0; i < s->n; i++)
        free(s->files[i]);
    free(s->files);
    free(s->pattern);
    memset(s, 0, sizeof *s);
}

/* The glob that matches exactly the folder's files with extension `ext`: the folder's name
 * with its glob characters escaped, then a slash, an asterisk and ext. */
static char *folder_pattern(const char *dir, const char *ext) {
    size_t n = strlen(dir), k = 0;
    while (n > 1 && dir[n - 1] == '/')
        n--; /* "frames/" -> "frames" */
    char *p = malloc(2 * n + strlen(ext) + 8);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[]{}\\", dir[i])) p[k++] = '\\';
        p[k++] = dir[i];
    }
    sprintf(p + k, "%s*%s", k == 1 && p[0] == '/' ? "" : "/", ext);
    return p;
}

/* The one extension of the folder's PNG/JPEG files (".png", ".JPG", ...); errors when there is
 * none or more than one (the demuxer takes one pattern, and one decoder for all frames). */
static dm_status folder_extension(const char *dir, char ext[16]) {
    DIR *d = opendir(dir);
    if (!d) return dm_error_set(DM_ERR_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    ext[0] = '\0';
    char first[256] = "", other[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        if (family_of(e->d_name) < 0) continue;
        const char *dot = strrchr(e->d_name, '.');
        if (!ext[0]) {
            snprintf(ext, 16, "%s", dot);
            snprintf(first, sizeof first, "%s", e->d_name);
        } else if (strcmp(ext, dot) && !other[0]) {
            snprintf(other, sizeof other, "%s", e->d_name);
        }
    }
    closedir(d);
    if (!ext[0])
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: image sequence: the folder holds no PNG or JPEG "
                            "frames (*.png, *.jpg, *.jpeg)",
                            dir);
    if (other[0])
        return dm_error_set(DM_ERR_FORMAT,
                            "%s: image sequence: frames with different "
                            "extensions (%s, %s); give a glob such as %s/*%s",
                            dir, first, other, dir, ext);
    return DM_OK;
}

dm_status dmv_seq_list(const char *path, dmv_seq *s) {
    memset(s, 0, sizeof *s);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char ext[16];
        dm_status e = folder_extension(path, ext);
        if (e) return e;
        s->pattern = folder_pattern(path, ext);
    } else {
        s->pattern = strdup(path);
    }
    if (!s->pattern) return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    /* libavformat/img2dec.c globs with GLOB_NOCHECK | GLOB_BRACE | GLOB_NOMAGIC: the same
     * order here (NOCHECK/NOMAGIC only change what a pattern matching nothing returns). */
    glob_t g;
    int rc = glob(s->pattern, GLOB_BRACE, NULL, &g);
    if (rc == GLOB_NOMATCH) {
        globfree(&g);
        dmv_seq_free(s);
        return dm_error_set(DM_ERR_IO, "%s: image sequence: no file matches", path);
    }
    if (rc != 0) {
        globfree(&g);
        dmv_seq_free(s);
        return dm_error_set(rc == GLOB_NOSPACE ? DM_ERR_NOMEM : DM_ERR_IO,
                            "%s: image sequence: cannot list the files (glob error %d)", path, rc);
    }
    s->files = calloc(g.gl_pathc ? g.gl_pathc : 1, sizeof *s->files);
    if (!s->files) {
        globfree(&g);
        dmv_seq_free(s);
        return dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    }
    dm_status err = DM_OK;
    s->family = -1;
    for (size_t i = 0; i < g.gl_pathc && !err; i++) {
        const char *f = g.gl_pathv[i];
        int fam = family_of(f);
        struct stat fs;
        if (fam < 0)
            err = dm_error_set(DM_ERR_FORMAT,
                               "%s: image sequence: %s is not a PNG or JPEG frame "
                               "(.png, .jpg, .jpeg)",
                               path, f);
        else if (s->family >= 0 && fam != s->family)
            err = dm_error_set(DM_ERR_FORMAT,
                               "%s: image sequence: mixed PNG and JPEG frames (%s, "
                               "%s)",
                               path, s->files[0], f);
        else if (stat(f, &fs) != 0 || access(f, R_OK) != 0)
            err = dm_error_set(DM_ERR_IO, "%s: image sequence: frame %zu (%s) cannot be read: %s",
                               path, i, f, strerror(errno));
        else if (!S_ISREG(fs.st_mode))
            err = dm_error_set(DM_ERR_FORMAT, "%s: image sequence: frame %zu (%s) is not a file",
                               path, i, f);
        else if (fs.st_size == 0)
            err = dm_error_set(DM_ERR_FORMAT, "%s: image sequence: frame %zu (%s) is empty", path,
                               i, f);
        else if (!(s->files[s->n++] = strdup(f)))
            err = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
        if (!err) s->family = fam;
    }
    globfree(&g);
    if (err) dmv_seq_free(s);
    return err;
}

const char *dmv_seq_file(const dmv_seq *s, int64_t frame) {
    return s && frame >= 0 && frame < s->n ? s->files[frame] : NULL;
}
