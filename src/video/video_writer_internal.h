/* Internals of the export encoders (video_writer.c, audio_writer.c, image_writer.c). */
#ifndef DM_VIDEO_WRITER_INTERNAL_H
#define DM_VIDEO_WRITER_INTERNAL_H

#include "depthmatte/video_writer.h"
#include "video/video_internal.h"

/* The audio track of an export: the first audio stream of a source, cut to a time range,
 * copied or re-encoded into one output stream of the muxer. */
typedef struct dmv_audio dmv_audio;

/* Adds the output audio stream to `out` (before its header is written). `name` is the output
 * path for messages; times as in dm_video_writer_opts. */
dm_status dmv_audio_open(dmv_audio **a, AVFormatContext *out, const char *name, const char *src,
                         double origin_s, double begin_s, double end_s);

/* Writes audio packets whose output time is before t_s seconds. */
dm_status dmv_audio_pump(dmv_audio *a, AVFormatContext *out, double t_s);

/* Writes the rest of the range and flushes the encoder. */
dm_status dmv_audio_finish(dmv_audio *a, AVFormatContext *out);

void dmv_audio_free(dmv_audio *a);

/* Writes z (height, width) float32 as an OpenEXR file at tmp (channel "Z", ZIP); messages name
 * path. The caller renames. */
dm_status dmv_exr_write_z(const char *path, const char *tmp, const float *z, int width, int height);

#endif
