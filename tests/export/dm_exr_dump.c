/* Test helper: prints "W H" on the first line, then the float32 channel Z of an OpenEXR file
 * as raw little-endian floats (row-major) on stdout — for tests/export/export_test.py, which
 * has no EXR reader of its own. Exit 1 with one error line on failure. */
#include <stdio.h>
#include <stdlib.h>

#include "depthmatte/video_writer.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dm_exr_dump FILE.exr\n");
        return 2;
    }
    float *z;
    int w, h;
    if (dm_exr_read_z(argv[1], &z, &w, &h) != DM_OK) {
        fprintf(stderr, "dm_exr_dump: %s\n", dm_error_message());
        return 1;
    }
    printf("%d %d\n", w, h);
    size_t n = fwrite(z, sizeof *z, (size_t)w * h, stdout);
    free(z);
    return n == (size_t)w * h ? 0 : 1;
}
