/* OpenEXR depth images (video_writer.h: dm_image_write with DM_IMAGE_FLOAT32, dm_exr_read_z)
 * through the OpenEXR library's C API (OpenEXRCore): one scanline part, one float32 channel
 * "Z" (the OpenEXR name for depth), ZIP compression (lossless). FFmpeg's exr encoder can only
 * name a single channel "Y" (luminance), which depth tools do not look for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openexr.h>

#include "depthmatte/video_writer.h"

static void quiet_handler(exr_const_context_t ctxt, exr_result_t code, const char *msg) {
    (void)ctxt, (void)code, (void)msg; /* reported through dm_error_set by the caller */
}

static dm_status exr_fail(const char *path, const char *what, exr_result_t rv) {
    dm_status code = rv == EXR_ERR_FILE_ACCESS || rv == EXR_ERR_WRITE_IO || rv == EXR_ERR_READ_IO
                         ? DM_ERR_IO
                     : rv == EXR_ERR_OUT_OF_MEMORY ? DM_ERR_NOMEM
                                                   : DM_ERR_FORMAT;
    return dm_error_set(code, "%s: %s: %s", path, what, exr_get_error_code_as_string(rv));
}

dm_status dmv_exr_write_z(const char *path, const char *tmp, const float *z, int width,
                          int height) {
    exr_context_initializer_t ci = EXR_DEFAULT_CONTEXT_INITIALIZER;
    ci.error_handler_fn = quiet_handler;
    exr_context_t f = NULL;
    int part = 0;
    exr_result_t rv = exr_start_write(&f, tmp, EXR_WRITE_FILE_DIRECTLY, &ci);
    if (rv != EXR_ERR_SUCCESS) return exr_fail(path, "cannot create", rv);
    rv = exr_add_part(f, "depth", EXR_STORAGE_SCANLINE, &part);
    if (rv == EXR_ERR_SUCCESS)
        rv = exr_initialize_required_attr_simple(f, part, width, height, EXR_COMPRESSION_ZIP);
    if (rv == EXR_ERR_SUCCESS)
        rv = exr_add_channel(f, part, "Z", EXR_PIXEL_FLOAT, EXR_PERCEPTUALLY_LINEAR, 1, 1);
    if (rv == EXR_ERR_SUCCESS) rv = exr_write_header(f);
    int32_t lpc = 1;
    if (rv == EXR_ERR_SUCCESS) rv = exr_get_scanlines_per_chunk(f, part, &lpc);
    exr_encode_pipeline_t enc = EXR_ENCODE_PIPELINE_INITIALIZER;
    int started = 0;
    for (int y = 0; y < height && rv == EXR_ERR_SUCCESS; y += lpc) {
        exr_chunk_info_t cinfo;
        rv = exr_write_scanline_chunk_info(f, part, y, &cinfo);
        if (rv == EXR_ERR_SUCCESS)
            rv = started ? exr_encoding_update(f, part, &cinfo, &enc)
                         : exr_encoding_initialize(f, part, &cinfo, &enc);
        if (rv != EXR_ERR_SUCCESS) break;
        exr_coding_channel_info_t *c = &enc.channels[0];
        c->encode_from_ptr = (const uint8_t *)(z + (size_t)(cinfo.start_y) * width);
        c->user_pixel_stride = (int32_t)sizeof(float);
        c->user_line_stride = (int32_t)sizeof(float) * width;
        c->user_bytes_per_element = (int16_t)sizeof(float);
        c->user_data_type = EXR_PIXEL_FLOAT;
        if (!started) rv = exr_encoding_choose_default_routines(f, part, &enc);
        started = 1;
        if (rv == EXR_ERR_SUCCESS) rv = exr_encoding_run(f, part, &enc);
    }
    if (started) exr_encoding_destroy(f, &enc);
    exr_result_t fin = exr_finish(&f);
    if (rv == EXR_ERR_SUCCESS) rv = fin;
    if (rv != EXR_ERR_SUCCESS) return exr_fail(path, "write failed", rv);
    return DM_OK;
}

dm_status dm_exr_read_z(const char *path, float **out, int *width, int *height) {
    *out = NULL;
    exr_context_initializer_t ci = EXR_DEFAULT_CONTEXT_INITIALIZER;
    ci.error_handler_fn = quiet_handler;
    exr_context_t f = NULL;
    exr_result_t rv = exr_start_read(&f, path, &ci);
    if (rv != EXR_ERR_SUCCESS) return exr_fail(path, "cannot read", rv);
    exr_attr_box2i_t dw;
    const exr_attr_chlist_t *chl = NULL;
    rv = exr_get_data_window(f, 0, &dw);
    if (rv == EXR_ERR_SUCCESS) rv = exr_get_channels(f, 0, &chl);
    dm_status s = DM_OK;
    if (rv != EXR_ERR_SUCCESS) s = exr_fail(path, "header", rv);
    int w = dw.max.x - dw.min.x + 1, h = dw.max.y - dw.min.y + 1, has_z = 0;
    for (int i = 0; s == DM_OK && i < chl->num_channels; i++)
        has_z |=
            !strcmp(chl->entries[i].name.str, "Z") && chl->entries[i].pixel_type == EXR_PIXEL_FLOAT;
    if (s == DM_OK && !has_z) s = dm_error_set(DM_ERR_FORMAT, "%s: no float32 channel Z", path);
    float *z = s == DM_OK ? malloc((size_t)w * h * sizeof *z) : NULL;
    if (s == DM_OK && !z) s = dm_error_set(DM_ERR_NOMEM, "%s: out of memory", path);
    int32_t lpc = 1;
    if (s == DM_OK && (rv = exr_get_scanlines_per_chunk(f, 0, &lpc)) != EXR_ERR_SUCCESS)
        s = exr_fail(path, "header", rv);
    exr_decode_pipeline_t dec = EXR_DECODE_PIPELINE_INITIALIZER;
    int started = 0;
    for (int y = dw.min.y; s == DM_OK && y <= dw.max.y; y += lpc) {
        exr_chunk_info_t cinfo;
        rv = exr_read_scanline_chunk_info(f, 0, y, &cinfo);
        if (rv == EXR_ERR_SUCCESS)
            rv = started ? exr_decoding_update(f, 0, &cinfo, &dec)
                         : exr_decoding_initialize(f, 0, &cinfo, &dec);
        if (rv != EXR_ERR_SUCCESS) {
            s = exr_fail(path, "read failed", rv);
            break;
        }
        for (int c = 0; c < dec.channel_count; c++) {
            exr_coding_channel_info_t *ch = &dec.channels[c];
            if (strcmp(ch->channel_name, "Z")) {
                ch->decode_to_ptr = NULL; /* skipped */
                continue;
            }
            ch->decode_to_ptr = (uint8_t *)(z + (size_t)(cinfo.start_y - dw.min.y) * w);
            ch->user_pixel_stride = (int32_t)sizeof(float);
            ch->user_line_stride = (int32_t)sizeof(float) * w;
            ch->user_bytes_per_element = (int16_t)sizeof(float);
            ch->user_data_type = EXR_PIXEL_FLOAT;
        }
        if (!started) rv = exr_decoding_choose_default_routines(f, 0, &dec);
        started = 1;
        if (rv == EXR_ERR_SUCCESS) rv = exr_decoding_run(f, 0, &dec);
        if (rv != EXR_ERR_SUCCESS) s = exr_fail(path, "read failed", rv);
    }
    if (started) exr_decoding_destroy(f, &dec);
    exr_finish(&f);
    if (s != DM_OK) {
        free(z);
        return s;
    }
    *out = z;
    *width = w;
    *height = h;
    return DM_OK;
}
