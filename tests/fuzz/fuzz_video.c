/* libFuzzer harness: the demux/decode path (dm_video_probe, dm_video_open/seek/read,
 * include/depthmatte/video.h, src/video/).
 *
 * The input is a whole media file, handed over as a memory file (fuzz_util.h), so FFmpeg
 * probes the container format from the bytes as it does for a user's file. Per input: probe;
 * open a reader (1 decoder thread: deterministic, and libFuzzer runs one input at a time);
 * read up to FUZZ_MAX_FRAMES frames; then seek to the middle frame and to the last frame and
 * read one frame each, which exercises the packet index and the keyframe search.
 *
 * Caps keep every input fast and the memory bounded: frames larger than FUZZ_MAX_PIXELS are
 * not decoded (probe and open still run); the per-input time limit (-timeout) is set by the
 * CTest command. A successful probe must agree with the reader's info on frames and size:
 * both come from the same index, so a difference is a bug and aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#include "depthmatte/status.h"
#include "depthmatte/video.h"
#include "fuzz_util.h"

enum { FUZZ_MAX_FRAMES = 8, FUZZ_MAX_PIXELS = 1024 * 1024 };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    av_log_set_level(AV_LOG_QUIET); /* FFmpeg complains about most inputs; keep the log usable */
    return 0;
}

static void read_some(dm_video_reader *r, uint8_t *rgb, int max_frames) {
    for (int i = 0; i < max_frames; i++)
        if (dm_video_read(r, rgb, NULL, NULL, NULL) != DM_OK) return;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(data, size);
    if (!path) return 0;
    dm_video_info info;
    dm_status probed = dm_video_probe(path, -1, &info);
    dm_video_reader *r = NULL;
    if (dm_video_open(&r, path, -1, 1) != DM_OK) return 0;
    const dm_video_info *ri = dm_video_reader_info(r);
    if (probed == DM_OK && (ri->frames != info.frames || ri->width != info.width ||
                            ri->height != info.height)) {
        fprintf(stderr, "fuzz_video: probe says %lld frames %dx%d, reader %lld frames %dx%d\n",
                (long long)info.frames, info.width, info.height, (long long)ri->frames,
                ri->width, ri->height);
        abort();
    }
    int64_t pixels = (int64_t)ri->width * ri->height;
    if (ri->width > 0 && ri->height > 0 && pixels <= FUZZ_MAX_PIXELS) {
        uint8_t *rgb = malloc((size_t)pixels * 3);
        if (rgb) {
            read_some(r, rgb, FUZZ_MAX_FRAMES);
            if (ri->frames > 0) {
                if (dm_video_seek(r, ri->frames / 2) == DM_OK) read_some(r, rgb, 1);
                if (dm_video_seek(r, ri->frames - 1) == DM_OK) read_some(r, rgb, 2);
            }
            free(rgb);
        }
    }
    (void)dm_video_frame_pts(r, 0);
    dm_video_close(r);
    return 0;
}
