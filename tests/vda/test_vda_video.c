/* VDA Small video inference (golden vda_vits/video.safetensors: infer_video_depth on 54
 * frames, 3 windows; README sections 3, 5):
 * 1. the streaming vda_video (push / pop / flush) against the golden depths:
 *    max |ours - golden| <= 5e-4 * std (README section 5: fp32, scale/shift fitting amplifies);
 * 2. the distributed split: windows computed independently (vda_window_frames +
 *    vda_window_depth on a separate context per simulated rank), alignment state passed from
 *    rank to rank (vda_align_pack / unpack) for 1, 2 and 3 ranks; bound: bit-identical to the
 *    sequential streaming run (max abs 0: the same float operations in the same order);
 * 3. stream edge cases (1, 23, 32, 33 frames: every frame exactly once, in order, equal to the
 *    window-API run with official clamped padding) and state (de)serialisation errors.
 * Runs on the CPU backend by default; `--backend cuda --precision P` runs it on the CUDA
 * backend with the tolerance rule of tests/common/golden_backend.h for the golden comparisons
 * (ctest label gpu); the split and edge-case bounds stay 0 there (same ops, same order, same
 * deterministic kernels on one device). */
#include <string.h>

#include "depthmatte/safetensors.h"
#include "golden_backend.h"
#include "vda_test_util.h"

#define TOL_VIDEO 5e-4 /* x std of the golden depths, README section 5 */

typedef struct video {
    const uint8_t *rgb; /* (N, H, W, 3) */
    int64_t n;
    int h, w;
} video;

static const uint8_t *frame_at(const video *v, int64_t i) {
    return v->rgb + (size_t)i * v->h * v->w * 3;
}

/* Streaming run; out (N, H, W). Checks order and count. */
static void run_stream(vda_ctx *c, const video *v, float *out) {
    vda_video *s = NULL;
    CHECK_OK(vda_video_init(&s, c));
    if (!s) return;
    const size_t hw = (size_t)v->h * v->w;
    float *tmp = malloc(sizeof(float) * hw);
    int64_t next = 0, idx;
    int r;
    for (int64_t i = 0; i <= v->n; i++) {
        if (i < v->n)
            CHECK_OK(vda_video_push(s, frame_at(v, i)));
        else
            CHECK_OK(vda_video_flush(s));
        while ((r = vda_video_pop(s, tmp, &idx)) == 1) {
            CHECK(idx == next);
            if (idx == next && idx < v->n) memcpy(out + idx * hw, tmp, hw * sizeof(float));
            next++;
        }
        CHECK(r == 0);
    }
    CHECK(next == v->n);
    if (next != v->n) fprintf(stderr, "stream of %lld frames gave %lld\n", (long long)v->n, (long long)next);
    free(tmp);
    vda_video_free(s);
}

/* Distributed form with `ranks` simulated ranks (contiguous window ranges); out (N, H, W). */
static void run_split(dm_backend *be, const vda_model *m, const video *v, int ranks, float *out) {
    const int nw = vda_window_count(v->n);
    const size_t hw = (size_t)v->h * v->w;
    float *raw = malloc(sizeof(float) * VDA_WINDOW * hw);
    void *msg = NULL; /* state "sent" from the previous rank */
    size_t msg_bytes = 0;
    for (int r = 0; r < ranks; r++) {
        const int ka = nw * r / ranks, kb = nw * (r + 1) / ranks;
        vda_ctx *c = NULL; /* each rank has its own context */
        vda_align *a = NULL;
        CHECK_OK(vda_ctx_init(&c, m, be, v->h, v->w, 42));
        CHECK_OK(vda_align_init(&a, v->h, v->w, vda_model_is_metric(m)));
        if (!c || !a) break;
        if (msg) CHECK_OK(vda_align_unpack(a, msg, msg_bytes));
        for (int k = ka; k < kb; k++) {
            int64_t idx[VDA_WINDOW];
            const uint8_t *rgb[VDA_WINDOW];
            vda_window_frames(k, v->n, idx);
            for (int s = 0; s < VDA_WINDOW; s++) rgb[s] = frame_at(v, idx[s]);
            CHECK_OK(vda_window_depth(c, rgb, raw));
            int first_slot, count;
            int64_t first;
            CHECK_OK(vda_align_window(a, raw, &first_slot, &count, &first));
            for (int i = 0; i < count && first + i < v->n; i++)
                memcpy(out + (first + i) * hw, raw + (first_slot + i) * hw, hw * sizeof(float));
        }
        if (r == ranks - 1) {
            const float *p;
            int64_t first;
            CHECK_OK(vda_align_finish(a, &p, &first));
            for (int i = 0; i < VDA_INTERP && first + i < v->n; i++)
                memcpy(out + (first + i) * hw, p + i * hw, hw * sizeof(float));
        } else {
            free(msg);
            msg_bytes = vda_align_state_bytes(a);
            msg = malloc(msg_bytes);
            vda_align_pack(a, msg);
        }
        vda_align_free(a);
        vda_ctx_free(c);
    }
    free(msg);
    free(raw);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (e > d || e != e) d = e != e ? 1e30 : e;
    }
    return d;
}

int main(int argc, char **argv) {
    tc_backend_opts o;
    if (tc_backend_parse(argc, argv, &o)) return 2;
    o.tol_model = DM_TOL_VDA; /* reduced-precision bounds of this network */
    dm_backend *be = NULL;
    int rc = tc_backend_create(&o, 2, &be);
    if (rc) return rc;
    vda_model *m = NULL;
    dm_status st = vda_test_load_recipe_model(&m, be, 0);
    if (st == DM_ERR_IO) {
        dm_backend_destroy(be);
        return tc_skip("golden/vda_vits not found (set DM_SHARED)");
    }
    dm_st_file g;
    CHECK_OK(dm_st_open(&g, tc_shared_path("golden/vda_vits/video.safetensors")));
    dm_st_entry *fr = g.map ? dm_st_find(&g, "frames_rgb_u8") : NULL;
    CHECK(fr && fr->dtype == DM_DTYPE_U8 && fr->ndim == 4);
    if (!m || !fr) return 1;
    video v = {fr->data, fr->shape[0], (int)fr->shape[1], (int)fr->shape[2]};
    const size_t hw = (size_t)v.h * v.w, n = (size_t)v.n * hw;
    float *seq = calloc(n, sizeof(float)), *par = calloc(n, sizeof(float));
    vda_ctx *c = NULL;
    CHECK_OK(vda_ctx_init(&c, m, be, v.h, v.w, 42));
    if (!c) return 1;

    /* 1. streaming vs golden */
    run_stream(c, &v, seq);
    const int64_t s_d[] = {v.n, v.h, v.w};
    dm_tensor want;
    CHECK_OK(dm_st_load_f32(&g, "depths", 3, s_d, &want));
    if (want.data)
        tc_compare_golden(&o, "video depths (stream)", seq, dm_f32(&want), (int64_t)n,
                          TOL_VIDEO * tc_std(dm_f32(&want), (int64_t)n));

    /* 2. 1, 2, 3 simulated ranks vs the sequential stream */
    for (int ranks = 1; ranks <= 3; ranks++) {
        memset(par, 0, n * sizeof(float));
        run_split(be, m, &v, ranks, par);
        const double d = max_diff(par, seq, n);
        printf("split over %d rank(s): max |split - sequential| = %g (bound 0)\n", ranks, d);
        CHECK(d == 0);
    }
    if (want.data)
        tc_compare_golden(&o, "video depths (3 ranks)", par, dm_f32(&want), (int64_t)n,
                          TOL_VIDEO * tc_std(dm_f32(&want), (int64_t)n));
    dm_tensor_free(&want);

    /* 3. stream edge cases: window-API run with clamped frame indices as the reference */
    const int64_t lens[] = {1, 23, 32, 33};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        video e = v;
        e.n = lens[i];
        const size_t ne = (size_t)e.n * hw;
        memset(seq, 0, n * sizeof(float)), memset(par, 0, n * sizeof(float));
        run_stream(c, &e, seq);
        run_split(be, m, &e, 1, par);
        const double d = max_diff(par, seq, ne);
        printf("%lld frames: max |stream - window API| = %g (bound 0)\n", (long long)e.n, d);
        CHECK(d == 0);
    }

    /* state serialisation: wrong size / wrong frame size are rejected */
    vda_align *a = NULL, *b = NULL;
    CHECK_OK(vda_align_init(&a, v.h, v.w, 0));
    CHECK_OK(vda_align_init(&b, v.h + 1, v.w, 0));
    if (a && b) {
        const size_t bytes = vda_align_state_bytes(a);
        void *buf = malloc(bytes);
        vda_align_pack(a, buf);
        CHECK(vda_align_unpack(a, buf, bytes) == DM_OK);
        CHECK(vda_align_unpack(a, buf, bytes - 4) == DM_ERR_FORMAT);
        CHECK(vda_align_unpack(b, buf, bytes) == DM_ERR_FORMAT);
        const float *p;
        int64_t f;
        CHECK(vda_align_finish(a, &p, &f) == DM_ERR_ARG); /* no window yet */
        free(buf);
    }
    vda_align_free(a);
    vda_align_free(b);

    vda_ctx_free(c);
    free(seq);
    free(par);
    dm_st_close(&g);
    vda_model_free(m);
    dm_backend_destroy(be);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
