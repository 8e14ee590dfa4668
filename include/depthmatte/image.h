/* depthmatte — still images for `depthmatte infer`, through FFmpeg (image2 demuxer + decoder +
 * swscale to read; the png encoder to write).
 *
 * Reading converts to RGB24 with the same colour rules as the video reader (video.h): the
 * decoder's matrix and range (JPEG: BT.601 full range), RGB sources copied exactly (a PNG
 * reads back bit-exact). EXIF orientation is not applied. Errors name the file.
 */
#ifndef DEPTHMATTE_IMAGE_H
#define DEPTHMATTE_IMAGE_H

#include <stdint.h>

#include "depthmatte/status.h"

/* Reads a PNG/JPEG (any format FFmpeg's image2 demuxer decodes) into a newly malloc'ed
 * (height, width, 3) RGB24 buffer *rgb (caller frees with free()). 16-bit sources are
 * reduced to 8 bits by swscale. Errors: DM_ERR_IO (missing/unreadable), DM_ERR_FORMAT (not
 * an image, no frame), DM_ERR_UNSUPPORTED (no decoder), DM_ERR_NOMEM; *rgb is NULL then. */
dm_status dm_image_read_rgb(const char *path, uint8_t **rgb, int *width, int *height);

/* Writes gray, (height, width) uint16 in native byte order, as a 16-bit grayscale PNG
 * (gray16be, lossless). Errors: DM_ERR_ARG (bad size), DM_ERR_IO (cannot write),
 * DM_ERR_UNSUPPORTED (no png encoder), DM_ERR_NOMEM. */
dm_status dm_image_write_png16(const char *path, const uint16_t *gray, int width, int height);

#endif
