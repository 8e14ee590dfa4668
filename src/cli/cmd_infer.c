/* depthmatte infer --model da2_vits --weights W --image IMG --out OUT [--input-size N]
 *                  [--threads N]
 * Depth map of one still image with Depth Anything V2 Small on the CPU backend. OUT by
 * extension: .png = 16-bit grayscale, depth normalised per image from its min..max to
 * 0..65535 (relative inverse depth: brighter = nearer); .safetensors = raw float32 depth
 * "depth" (H, W) at the source size. Errors print one line and exit 1 (2 on bad usage). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "depthmatte/da2.h"
#include "depthmatte/image.h"
#include "depthmatte/safetensors.h"

static void usage(FILE *f) {
    fprintf(f, "usage: depthmatte infer --model da2_vits --weights W.safetensors --image IMG "
               "--out OUT [--input-size N] [--threads N]\n"
               "  --model       da2_vits (Depth Anything V2 Small)\n"
               "  --weights     safetensors with official or transformers names (models/da2_vits.md)\n"
               "  --image       PNG/JPEG (at least 14x14 pixels)\n"
               "  --out         .png: 16-bit depth normalised min..max to 0..65535 (brighter = nearer)\n"
               "                .safetensors: float32 tensor \"depth\" (H, W), relative inverse depth\n"
               "  --input-size  model input short side, 14..4096 (default 518)\n"
               "  --threads     CPU threads (default: OpenMP default)\n");
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static dm_status write_png(const char *path, const float *d, int w, int h) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        lo = d[i] < lo ? d[i] : lo;
        hi = d[i] > hi ? d[i] : hi;
    }
    uint16_t *g = malloc(sizeof(uint16_t) * (size_t)w * h);
    if (!g) return dm_error_set(DM_ERR_NOMEM, "infer: out of memory");
    const double range = hi > lo ? (double)hi - lo : 1.0; /* flat map -> all zero */
    for (size_t i = 0; i < (size_t)w * h; i++)
        g[i] = (uint16_t)lrint(((double)d[i] - lo) / range * 65535.0);
    dm_status st = dm_image_write_png16(path, g, w, h);
    free(g);
    return st;
}

int cmd_infer(int argc, char **argv) {
    const char *model = NULL, *weights = NULL, *image = NULL, *out = NULL;
    int input_size = 518, threads = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"weights", required_argument, 0, 'w'},
        {"image", required_argument, 0, 'i'},      {"out", required_argument, 0, 'o'},
        {"input-size", required_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'm': model = optarg; break;
        case 'w': weights = optarg; break;
        case 'i': image = optarg; break;
        case 'o': out = optarg; break;
        case 's':
            input_size = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end) input_size = -1;
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end || threads < 0) {
                fprintf(stderr, "depthmatte infer: --threads must be a non-negative integer\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !model || !weights || !image || !out) {
        fprintf(stderr, "depthmatte infer: --model, --weights, --image and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(model, "da2_vits")) {
        fprintf(stderr, "depthmatte infer: unknown model '%s' (supported: da2_vits)\n", model);
        return 2;
    }
    if (input_size < 14 || input_size > 4096) {
        fprintf(stderr, "depthmatte infer: --input-size must be an integer in 14..4096\n");
        return 2;
    }
    const int to_png = ends_with(out, ".png"), to_st = ends_with(out, ".safetensors");
    if (!to_png && !to_st) {
        fprintf(stderr, "depthmatte infer: --out %s must end in .png or .safetensors\n", out);
        return 2;
    }
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    dm_status st = dm_image_read_rgb(image, &rgb, &w, &h);
    if (st) {
        fprintf(stderr, "depthmatte infer: %s\n", dm_error_message());
        return 1;
    }
    if (w < 14 || h < 14) {
        fprintf(stderr, "depthmatte infer: %s is %dx%d, smaller than one 14x14 patch\n", image, w,
                h);
        free(rgb);
        return 1;
    }
    dm_backend *be = dm_backend_cpu_create(threads);
    da2_model *m = NULL;
    da2_ctx *ctx = NULL;
    float *depth = malloc(sizeof(float) * (size_t)w * h);
    if (!be || !depth) st = dm_error_set(DM_ERR_NOMEM, "infer: out of memory");
    const char *stage = "";
    if (!st && (st = da2_model_load(&m, weights, be))) stage = "cannot load weights: ";
    if (!st) st = da2_ctx_init(&ctx, m, be, h, w, input_size);
    if (!st) st = da2_infer_u8(ctx, rgb, depth);
    if (!st) {
        if (to_png) {
            st = write_png(out, depth, w, h);
        } else {
            const int64_t shape[2] = {h, w};
            dm_tensor t;
            dm_tensor_view(&t, depth, DM_DTYPE_F32, 2, shape);
            const dm_tensor *tp[1] = {&t};
            const char *names[1] = {"depth"};
            char isz[16];
            snprintf(isz, sizeof isz, "%d", input_size);
            const char *meta[] = {"model", "da2_vits", "input_size", isz, "units",
                                  "relative inverse depth (arbitrary scale, larger = nearer)",
                                  "source", image, NULL};
            st = dm_st_write(out, 1, names, tp, meta);
        }
    }
    if (st) fprintf(stderr, "depthmatte infer: %s%s\n", stage, dm_error_message());
    else printf("%s: %dx%d depth -> %s\n", image, w, h, out);
    da2_ctx_free(ctx);
    da2_model_free(m);
    dm_backend_destroy(be);
    free(depth);
    free(rgb);
    return st ? 1 : 0;
}
