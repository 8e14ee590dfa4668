/* depthmatte probe [--stream N] [--fps R] [--target-fps R] [--max-res N] [--json] [-v] VIDEO...
 * Prints per file: frames, fps, size, codec, rotation, duration, pix_fmt/bit depth, range,
 * colour matrix, SAR, stream index; with --target-fps / --max-res the kept, scaled video (as
 * a job with those keys sees it) and the source's frames/rate/size. A folder or a glob is an
 * image sequence (its frame rate from --fps). A file that fails prints one line naming the file and
 * the cause (stderr); the exit status is 1 if any file failed, 2 on bad usage. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libavutil/log.h>

#include "cli/commands.h"
#include "depthmatte/video.h"

static void usage(void) {
    fprintf(stderr, "usage: depthmatte probe [--stream N] [--fps R] [--target-fps R] "
                    "[--max-res N] [--json] [-v] VIDEO...\n"
                    "  --stream N        container stream index (default: the best video stream)\n"
                    "  --fps R           frame rate of image sequences (a folder or a glob of\n"
                    "                    PNG/JPEG frames: quote the glob)\n"
                    "  --target-fps R    keep every round(fps / R)-th frame (job key target_fps)\n"
                    "  --max-res N       longer side at most N, even sizes (job key max_res)\n"
                    "  --json            one JSON array on stdout\n"
                    "  -v                show FFmpeg's own warnings\n");
}

static void print_text(const dm_video_info *v) {
    printf("%s: stream %d (%d video stream%s): %lld frames, %d/%d fps%s, %dx%d, %s, "
           "rotation %d, %.3f s, %s %d-bit, %s range, matrix %s%s, SAR %d:%d",
           v->path, v->stream_index, v->video_streams, v->video_streams == 1 ? "" : "s",
           (long long)v->frames, v->fps_num, v->fps_den, v->variable_fps ? " (variable)" : "",
           v->width, v->height, v->codec, v->rotation, v->duration_s, v->pix_fmt, v->bit_depth,
           v->is_rgb ? "rgb" : v->full_range ? "full" : "limited", v->color_matrix,
           v->color_matrix_guessed ? " (untagged, guessed)" : "", v->sar_num, v->sar_den);
    if (v->rotation) printf(", stored %dx%d", v->coded_width, v->coded_height);
    if (v->images) printf(", image sequence");
    if (v->frame_step > 1 || v->source_width != v->width || v->source_height != v->height)
        printf("; frame step %d of %lld source frames at %d/%d fps, source %dx%d", v->frame_step,
               (long long)v->source_frames, v->source_fps_num, v->source_fps_den, v->source_width,
               v->source_height);
    printf("\n");
}

static cJSON *to_json(const dm_video_info *v) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", v->path);
    cJSON_AddNumberToObject(o, "stream_index", v->stream_index);
    cJSON_AddNumberToObject(o, "video_streams", v->video_streams);
    cJSON_AddNumberToObject(o, "frames", (double)v->frames);
    cJSON_AddNumberToObject(o, "container_frames", (double)v->container_frames);
    cJSON_AddNumberToObject(o, "fps_num", v->fps_num);
    cJSON_AddNumberToObject(o, "fps_den", v->fps_den);
    cJSON_AddBoolToObject(o, "variable_fps", v->variable_fps);
    cJSON_AddNumberToObject(o, "time_base_num", v->time_base_num);
    cJSON_AddNumberToObject(o, "time_base_den", v->time_base_den);
    cJSON_AddNumberToObject(o, "start_pts", (double)v->start_pts);
    cJSON_AddNumberToObject(o, "duration_s", v->duration_s);
    cJSON_AddStringToObject(o, "codec", v->codec);
    cJSON_AddNumberToObject(o, "width", v->width);
    cJSON_AddNumberToObject(o, "height", v->height);
    cJSON_AddNumberToObject(o, "coded_width", v->coded_width);
    cJSON_AddNumberToObject(o, "coded_height", v->coded_height);
    cJSON_AddNumberToObject(o, "rotation", v->rotation);
    cJSON_AddNumberToObject(o, "sar_num", v->sar_num);
    cJSON_AddNumberToObject(o, "sar_den", v->sar_den);
    cJSON_AddStringToObject(o, "pix_fmt", v->pix_fmt);
    cJSON_AddNumberToObject(o, "bit_depth", v->bit_depth);
    cJSON_AddStringToObject(o, "range", v->is_rgb ? "rgb" : v->full_range ? "full" : "limited");
    cJSON_AddStringToObject(o, "color_matrix", v->color_matrix);
    cJSON_AddBoolToObject(o, "color_matrix_guessed", v->color_matrix_guessed);
    cJSON_AddNumberToObject(o, "has_b_frames", v->has_b_frames);
    cJSON_AddNumberToObject(o, "keyframes", (double)v->keyframes);
    cJSON_AddBoolToObject(o, "images", v->images);
    cJSON_AddNumberToObject(o, "frame_step", v->frame_step);
    cJSON_AddNumberToObject(o, "source_frames", (double)v->source_frames);
    cJSON_AddNumberToObject(o, "source_fps_num", v->source_fps_num);
    cJSON_AddNumberToObject(o, "source_fps_den", v->source_fps_den);
    cJSON_AddNumberToObject(o, "source_width", v->source_width);
    cJSON_AddNumberToObject(o, "source_height", v->source_height);
    return o;
}

/* A positive number argument of option `opt`; -1 (message printed) when it is not one. */
static double positive(const char *opt, const char *arg) {
    char *end = NULL;
    double v = strtod(arg, &end);
    if (!end || *end || !isfinite(v) || !(v > 0)) {
        fprintf(stderr, "depthmatte probe: %s: not a positive number: %s\n", opt, arg);
        return -1;
    }
    return v;
}

int cmd_probe(int argc, char **argv) {
    int stream = -1, json = 0, verbose = 0, nfiles = 0, failed = 0;
    double fps = 0, target_fps = 0, max_res = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--stream") && i + 1 < argc) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 0 || v > 1000000) {
                fprintf(stderr, "depthmatte probe: --stream: not a stream index: %s\n", argv[i]);
                free(files);
                return 2;
            }
            stream = (int)v;
        } else if ((!strcmp(argv[i], "--fps") || !strcmp(argv[i], "--target-fps") ||
                    !strcmp(argv[i], "--max-res")) &&
                   i + 1 < argc) {
            const char *opt = argv[i];
            double v = positive(opt, argv[++i]);
            if (v < 0 || (opt[2] == 'm' && (v != floor(v) || v > 65536))) {
                if (v >= 0)
                    fprintf(stderr, "depthmatte probe: --max-res: not a pixel count: %s\n",
                            argv[i]);
                free(files);
                return 2;
            }
            *(opt[2] == 'f' ? &fps : opt[2] == 't' ? &target_fps : &max_res) = v;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            free(files);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "depthmatte probe: unknown option %s\n", argv[i]);
            usage();
            free(files);
            return 2;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles == 0) {
        usage();
        free(files);
        return 2;
    }
    /* Decoder chatter ("error while decoding MB ...") would bury the one-line errors. */
    av_log_set_level(verbose ? AV_LOG_WARNING : AV_LOG_QUIET);
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < nfiles; i++) {
        dm_video_info info;
        dm_video_options o = DM_VIDEO_OPTIONS_INIT;
        o.stream_index = stream;
        o.target_fps = target_fps;
        o.max_res = (int)max_res;
        o.images = dm_video_is_image_sequence(files[i]);
        if (o.images && fps > 0) { /* decimals as the job's rates: 6 digits */
            o.fps_num = (int)llround(fps * 1000000), o.fps_den = 1000000;
            while (o.fps_num % 10 == 0 && o.fps_den % 10 == 0)
                o.fps_num /= 10, o.fps_den /= 10;
        }
        dm_status s = dm_video_probe_opts(files[i], &o, &info);
        if (s != DM_OK) {
            failed++;
            fprintf(stderr, "depthmatte probe: error: %s\n", dm_error_message());
            if (arr) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "path", files[i]);
                cJSON_AddStringToObject(o, "error", dm_error_message());
                cJSON_AddStringToObject(o, "status", dm_status_name(s));
                cJSON_AddItemToArray(arr, o);
            }
            continue;
        }
        if (arr)
            cJSON_AddItemToArray(arr, to_json(&info));
        else
            print_text(&info);
    }
    if (arr) {
        char *txt = cJSON_Print(arr);
        if (txt) printf("%s\n", txt);
        free(txt);
        cJSON_Delete(arr);
    }
    free(files);
    return failed ? 1 : 0;
}
