/* Streaming memory does not grow with the video length: synthetic frames (20x36, input_size 28)
 * through vda_video for 54 and then 200 frames (fresh stream and context each); peak RSS
 * (VmHWM, reset before each run) after the 200-frame run may exceed the peak after the 54-frame run by
 * at most 4 MiB. Bound: the stream holds one window (32 frames) of inputs and depths plus 10
 * state frames, ~45 KB here, so a length-proportional leak (>= 146 extra frames of input and
 * depth, or any per-frame allocation that is kept) shows up; 4 MiB leaves room for allocator
 * noise. Recipe weights (no trained weights needed). */
#include <string.h>
#include <sys/resource.h>

#include "vda_test_util.h"

/* VmHWM of /proc/self/status, reset before each run by writing 5 to /proc/self/clear_refs
 * (Linux >= 4.0), so the recipe generation's own peak does not mask the stream's. Falls back to
 * ru_maxrss (then the check is weaker) when /proc is unavailable. */
static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) fputs("5", f), fclose(f);
}

static long peak_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = atol(line + 6);
    if (f) fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

static void run(vda_model *m, dm_backend *be, int64_t n, int h, int w) {
    vda_ctx *c = NULL;
    vda_video *v = NULL;
    CHECK_OK(vda_ctx_init(&c, m, be, h, w, 28));
    if (c) CHECK_OK(vda_video_init(&v, c));
    if (!v) return;
    uint8_t *rgb = malloc((size_t)h * w * 3);
    float *d = malloc(sizeof(float) * h * w);
    int64_t got = 0, idx;
    for (int64_t f = 0; f <= n; f++) {
        if (f < n) {
            for (int i = 0; i < h * w * 3; i++) rgb[i] = (uint8_t)((i * 7 + f * 13) & 255);
            CHECK_OK(vda_video_push(v, rgb));
        } else {
            CHECK_OK(vda_video_flush(v));
        }
        while (vda_video_pop(v, d, &idx) == 1) got++;
    }
    CHECK(got == n);
    free(rgb), free(d);
    vda_video_free(v);
    vda_ctx_free(c);
}

int main(void) {
    dm_backend *be = dm_backend_cpu_create(2);
    vda_model *m = NULL;
    dm_status st = vda_test_load_recipe_model(&m, be, 0);
    if (st == DM_ERR_IO) {
        dm_backend_destroy(be);
        return tc_skip("golden/vda_vits/recipe.json not found (set DM_SHARED)");
    }
    if (!m) return 1;
    reset_peak();
    run(m, be, 54, 20, 36);
    const long p54 = peak_kib();
    reset_peak();
    run(m, be, 200, 20, 36);
    const long p200 = peak_kib();
    printf("peak RSS after 54 frames %ld KiB, after 200 frames %ld KiB (growth %ld KiB, bound 4096)\n",
           p54, p200, p200 - p54);
    CHECK(p200 - p54 <= 4096);
    vda_model_free(m);
    dm_backend_destroy(be);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
