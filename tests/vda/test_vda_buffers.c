/* The buffer plan of Video Depth Anything (models/buf_plan.h) and what it buys on a device.
 *
 * 1. Planner invariants on random request sets: every view lies inside the arena, two buffers
 *    whose phase ranges intersect never share a byte, the arena is no larger than the sum of
 *    the requests, and buffers with disjoint lifetimes do share memory (a chain of equal
 *    buffers each alive in one phase needs one buffer's worth).
 * 2. Device memory of one 32-frame window at input 518 on the emulated device backend
 *    (dm_backend_emu_memory: weights + context, the tensors a GPU would hold, in float32 and
 *    float16 storage), for a 720x720 source (518x518 model input) and a 1920x1080 source
 *    (518x924, official aspect rule): each must stay under 4 GiB (issue 13: the window must
 *    fit a 6 GB GPU with room for the CUDA context and workspaces). The window itself is not
 *    run here (the frame loop allocates nothing; test_vda_window_emulated runs the planned
 *    context against the goldens). Recipe weights. */
#include <string.h>

#include "depthmatte/backend_emu.h"
#include "models/buf_plan.h"
#include "vda_test_util.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void check_planner(dm_backend *be) {
    enum { N = 40 };
    int bad_overlap = 0, bad_bounds = 0, bigger = 0;
    for (int rep = 0; rep < 200; rep++) {
        buf_plan p;
        bp_init(&p);
        dm_tensor t[N];
        int first[N], last[N];
        for (int i = 0; i < N; i++) {
            first[i] = (int)(next_u32() % 12);
            last[i] = first[i] + (int)(next_u32() % 4);
            const int64_t s[] = {1 + next_u32() % 300, 1 + next_u32() % 7};
            /* f32, f16 and u8 buffers in one arena */
            const dm_dtype dt[] = {DM_DTYPE_F32, DM_DTYPE_F16, DM_DTYPE_U8};
            CHECK_OK(bp_alloc_dtype(&p, be, &t[i], dt[next_u32() % 3], 2, s, first[i], last[i]));
        }
        CHECK_OK(bp_commit(&p, be));
        const char *base = p.arena.data, *end = base + p.arena.capacity;
        for (int i = 0; i < N; i++) {
            const char *a = t[i].data, *ae = a + dm_tensor_nbytes(&t[i]);
            if (!a || a < base || ae > end) bad_bounds++;
            for (int j = 0; j < i; j++) {
                const char *b = t[j].data, *be_ = b + dm_tensor_nbytes(&t[j]);
                const int live = first[i] <= last[j] && first[j] <= last[i];
                if (live && a < be_ && b < ae) bad_overlap++;
            }
        }
        if (bp_arena_bytes(&p) > bp_requested_bytes(&p)) bigger++;
        bp_free(&p);
    }
    printf("planner: 200 random plans of %d buffers: %d out of bounds, %d live overlaps, %d "
           "arenas above the sum\n",
           N, bad_bounds, bad_overlap, bigger);
    CHECK(bad_bounds == 0 && bad_overlap == 0 && bigger == 0);

    /* 10 buffers of 1000 floats, buffer k alive in phase k only: one buffer's memory */
    buf_plan p;
    bp_init(&p);
    dm_tensor t[10];
    for (int k = 0; k < 10; k++) {
        const int64_t s[] = {1000};
        CHECK_OK(bp_alloc(&p, be, &t[k], 1, s, k, k));
    }
    CHECK_OK(bp_commit(&p, be));
    printf("planner: chain of 10 one-phase buffers of 1000 floats -> arena %lld bytes\n",
           (long long)bp_arena_bytes(&p));
    CHECK(bp_arena_bytes(&p) == 4096); /* 4000 bytes rounded to BP_ALIGN */
    CHECK(t[3].dtype == DM_DTYPE_F32 && t[3].ndim == 1 && t[3].shape[0] == 1000 &&
          t[3].capacity >= 4000);
    bp_free(&p);
}

/* Device bytes of the model and of one window context per source size (input 518). */
static void window_bytes(dm_dtype prec) {
    dm_backend *be = NULL;
    CHECK_OK(dm_backend_emu_create(2, prec, NULL, &be));
    if (!be) return;
    vda_model *m = NULL;
    CHECK_OK(vda_test_load_recipe_model(&m, be, 0));
    const int src[2][2] = {{720, 720}, {1080, 1920}}; /* (h, w) */
    size_t weights_host = 0, weights_dev = 0; /* the counter never decreases: measure once */
    dm_backend_emu_memory(be, &weights_host, &weights_dev);
    for (int k = 0; k < 2 && m; k++) {
        size_t w_host = 0, w_dev = 0, host = 0, dev = 0;
        dm_backend_emu_memory(be, &w_host, &w_dev);
        vda_ctx *c = NULL;
        CHECK_OK(vda_ctx_init(&c, m, be, src[k][0], src[k][1], 518));
        dm_backend_emu_memory(be, &host, &dev);
        int h = 0, w = 0;
        if (c) vda_ctx_input_dims(c, &h, &w);
        const size_t ctx_dev = dev - w_dev, ctx_host = host - w_host;
        const double mib = 1024.0 * 1024.0, total = (weights_dev + ctx_dev) / mib;
        printf("device memory, %s, source %dx%d -> input %dx%d, 32 frames: weights %.0f MiB + "
               "window context %.0f MiB = %.0f MiB (host-side emulation holds %.0f MiB; "
               "bound 4096 MiB)\n",
               dm_dtype_name(prec), src[k][1], src[k][0], w, h, weights_dev / mib, ctx_dev / mib,
               total, (weights_host + ctx_host) / mib);
        CHECK(c != NULL);
        CHECK(ctx_dev > 0 && weights_dev + ctx_dev < (size_t)4096 * 1024 * 1024);
        vda_ctx_free(c);
    }
    vda_model_free(m);
    dm_backend_destroy(be);
}

int main(void) {
    FILE *f = fopen(tc_shared_path("golden/vda_vits/recipe.json"), "r");
    if (!f) return tc_skip("golden/vda_vits/recipe.json not found (set DM_SHARED)");
    fclose(f);
    dm_backend *cpu = dm_backend_cpu_create(1);
    check_planner(cpu);
    dm_backend_destroy(cpu);
    window_bytes(DM_DTYPE_F32);
    window_bytes(DM_DTYPE_F16);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count ? 1 : 0;
}
