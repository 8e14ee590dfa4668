#include "video_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t vt_fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int vt_have_tool(const char *tool) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s -version >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

int64_t vt_ffprobe_count(const char *path, int stream) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v quiet -select_streams %d -count_frames -show_entries "
             "stream=nb_read_frames -of csv=p=0 '%s'",
             stream, path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    long long n = -1;
    if (fscanf(p, "%lld", &n) != 1) n = -1;
    pclose(p);
    return n;
}

int64_t vt_ffmpeg_rgb(const char *path, int stream, int w, int h, int64_t max_frames,
                      uint8_t **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v quiet -i '%s' -map 0:%d -frames:v %lld -fps_mode passthrough "
             "-f rawvideo -pix_fmt rgb24 -",
             path, stream, (long long)max_frames);
    size_t fsz = (size_t)w * h * 3;
    *out = malloc(fsz * (size_t)max_frames);
    if (!*out) return -1;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int64_t n = 0;
    while (n < max_frames && fread(*out + fsz * (size_t)n, 1, fsz, p) == fsz) n++;
    pclose(p);
    return n;
}

int vt_max_diff(const uint8_t *a, const uint8_t *b, size_t n, size_t *ndiff) {
    int m = 0;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d) c++;
        if (d > m) m = d;
    }
    if (ndiff) *ndiff = c;
    return m;
}
