/* Unit tests of the export encoders (include/depthmatte/video_writer.h) that need no data:
 * a missing encoder or muxer is an error naming it, an unwritable path is an error and leaves
 * nothing, non-increasing pts are refused, an abandoned writer leaves nothing, and a small
 * synthetic video / PNG round-trips through FFmpeg's decoders with the documented layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/video_writer.h"

static int fails = 0;

static void check(int cond, const char *what) {
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) fails++;
}

static int exists(const char *p) {
    return access(p, F_OK) == 0;
}

static dm_video_writer_opts opts(const char *format, const char *encoder, const char *pix) {
    dm_video_writer_opts o = {0};
    o.format = format;
    o.encoder = encoder;
    o.pix_fmt = pix;
    o.width = 64;
    o.height = 48;
    o.fps_num = 30000;
    o.fps_den = 1001;
    o.tb_num = 1;
    o.tb_den = 30000;
    o.crf = -1;
    return o;
}

int main(void) {
    char dir[] = "/tmp/dm_vw_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/a.webm", dir);
    dm_video_writer *w = NULL;

    dm_video_writer_opts o = opts("webm", "no-such-encoder", "yuva420p");
    dm_status s = dm_video_writer_open(&w, path, &o);
    check(s == DM_ERR_UNSUPPORTED && strstr(dm_error_message(), "no encoder 'no-such-encoder'") &&
              strstr(dm_error_message(), path) && !w,
          "missing encoder: DM_ERR_UNSUPPORTED naming the encoder and the file");
    o = opts("no-such-muxer", "libvpx-vp9", "yuva420p");
    s = dm_video_writer_open(&w, path, &o);
    check(s == DM_ERR_UNSUPPORTED && strstr(dm_error_message(), "no muxer 'no-such-muxer'"),
          "missing muxer: named");
    o = opts("mp4", "libx264", "yuva420p");
    s = dm_video_writer_open(&w, path, &o);
    check(s == DM_ERR_UNSUPPORTED &&
              strstr(dm_error_message(), "does not take pixel format yuva420p"),
          "pixel format the encoder lacks: named");
    check(!exists(path), "nothing written by the failed opens");

    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing/a.webm", dir);
    o = opts("webm", "libvpx-vp9", "yuva420p");
    s = dm_video_writer_open(&w, bad, &o);
    check(s == DM_ERR_IO && strstr(dm_error_message(), bad),
          "unwritable path: DM_ERR_IO naming it");

    uint8_t *rgb = malloc(64 * 48 * 3), *alpha = malloc(64 * 48);
    for (int i = 0; i < 64 * 48; i++) {
        rgb[3 * i] = (uint8_t)(i % 64 * 4), rgb[3 * i + 1] = (uint8_t)(i / 64 * 5),
                rgb[3 * i + 2] = 128;
        alpha[i] = (uint8_t)(i % 64 < 32 ? 255 : i % 256);
    }
    s = dm_video_writer_open(&w, path, &o);
    check(s == DM_OK, "open webm");
    dm_output_temp_name(path, tmp, sizeof tmp);
    check(exists(tmp) && !exists(path), "written under the temporary name while open");
    if (s == DM_OK) {
        s = dm_video_writer_write(w, rgb, alpha, 1001);
        dm_status s2 = dm_video_writer_write(w, rgb, alpha, 1001);
        check(s == DM_OK && s2 == DM_ERR_ARG && strstr(dm_error_message(), "not after"),
              "pts must increase");
        dm_video_writer_abort(w);
        check(!exists(tmp) && !exists(path), "abort removes the temporary file");
    }
    s = dm_video_writer_open(&w, path, &o);
    for (int t = 0; t < 5 && s == DM_OK; t++)
        s = dm_video_writer_write(w, rgb, alpha, 1001 * t);
    if (s == DM_OK) s = dm_video_writer_finish(w);
    check(s == DM_OK && exists(path) && !exists(tmp), "finish renames to the final name");
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -count_frames -show_entries "
             "stream=r_frame_rate,nb_read_frames,color_space,color_range:stream_tags=alpha_mode "
             "-of csv=p=0 %s",
             path);
    FILE *p = popen(cmd, "r");
    char line[256] = "";
    if (p) {
        if (!fgets(line, sizeof line, p)) line[0] = 0;
        pclose(p);
    }
    line[strcspn(line, "\n")] = 0;
    check(!strcmp(line, "bt709,tv,30000/1001,5,1") || !strcmp(line, "tv,bt709,30000/1001,5,1"),
          "ffprobe: bt709 tv, 30000/1001, 5 frames, alpha_mode 1");
    printf("     (ffprobe: %s)\n", line);

    snprintf(path, sizeof path, "%s/a.png", dir);
    uint16_t g16[4 * 3];
    for (int i = 0; i < 12; i++)
        g16[i] = (uint16_t)(i * 5000 + 7);
    s = dm_image_write(path, DM_IMAGE_GRAY16, g16, 4, 3);
    snprintf(cmd, sizeof cmd, "ffmpeg -v error -i %s -f rawvideo -pix_fmt gray16le -", path);
    p = popen(cmd, "r");
    uint16_t back[12] = {0};
    size_t n = p ? fread(back, 2, 12, p) : 0;
    if (p) pclose(p);
    check(s == DM_OK && n == 12 && !memcmp(back, g16, sizeof g16),
          "16-bit PNG round-trips exactly");
    float zf[5 * 3] = {0.0f, 1.5f, -2.25f, 1e-7f, 3.4e38f, 0.333333343f};
    snprintf(path, sizeof path, "%s/a.exr", dir);
    s = dm_image_write(path, DM_IMAGE_FLOAT32, zf, 5, 3);
    float *zb = NULL;
    int zw = 0, zh = 0;
    dm_status s2 = s == DM_OK ? dm_exr_read_z(path, &zb, &zw, &zh) : s;
    check(s == DM_OK && s2 == DM_OK && zw == 5 && zh == 3 && !memcmp(zb, zf, sizeof zf),
          "EXR channel Z round-trips exactly (OpenEXRCore)");
    free(zb);
    snprintf(tmp, sizeof tmp, "%s/a.png", dir);
    s = dm_exr_read_z(tmp, &zb, &zw, &zh);
    check(s != DM_OK && !zb && strstr(dm_error_message(), tmp),
          "a PNG is not an EXR: error naming it");
    s = dm_image_write(bad, DM_IMAGE_GRAY8, rgb, 4, 3);
    check(s == DM_ERR_IO && strstr(dm_error_message(), bad),
          "image to an unwritable path: DM_ERR_IO");
    free(rgb);
    free(alpha);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fails++;
    printf(fails ? "%d check(s) failed\n" : "all checks passed\n", fails);
    return fails ? 1 : 0;
}
