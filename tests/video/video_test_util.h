/* Helpers for the video tests: frame checksums and reference outputs of the FFmpeg command
 * line tools (ffprobe / ffmpeg), run at test time through popen so that nothing expected is
 * hard-coded. */
#ifndef DM_TESTS_VIDEO_UTIL_H
#define DM_TESTS_VIDEO_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a of n bytes. */
uint64_t vt_fnv1a(const uint8_t *p, size_t n);

/* 1 if `tool` (e.g. "ffprobe") runs. */
int vt_have_tool(const char *tool);

/* Frames of container stream `stream` as `ffprobe -count_frames` counts them; -1 on error. */
int64_t vt_ffprobe_count(const char *path, int stream);

/* Reads up to `max_frames` rgb24 frames of `ffmpeg -i path -map 0:stream -f rawvideo
 * -pix_fmt rgb24 -fps_mode passthrough -` (frame size w*h*3) into a malloc'ed buffer;
 * returns the number of whole frames read, -1 on error. */
int64_t vt_ffmpeg_rgb(const char *path, int stream, int w, int h, int64_t max_frames,
                      uint8_t **out);

/* Max |a - b| over n bytes, and the count of differing bytes. */
int vt_max_diff(const uint8_t *a, const uint8_t *b, size_t n, size_t *ndiff);

#endif
