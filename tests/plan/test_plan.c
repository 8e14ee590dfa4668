/* Planner tests: an independent checker of the plan invariants (every frame owned exactly once,
 * context inside the video and contiguous with the owned range, aligned borders, loads), the
 * balance bounds stated in include/depthmatte/plan.h, determinism, pack/unpack, edge cases, and
 * a seeded random sweep over all policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/plan.h"
#include "tensor_compare.h"

static dm_plan_options opts(dm_split_policy s, int64_t w, int64_t min_chunk, int64_t align) {
    dm_plan_options o = {w, s, min_chunk, align};
    return o;
}

/* Checks every invariant without using dm_plan_validate; returns the number of failures. */
static int check_plan(const dm_plan *p, const int64_t *frames, int n, int R,
                      const dm_plan_options *o) {
    int before = tc_failure_count;
    CHECK(p->n_videos == n && p->nranks == R && p->n_chunks >= n);
    int64_t *load = calloc((size_t)R, sizeof *load);
    int *pieces = calloc((size_t)n, sizeof *pieces);
    for (int v = 0; v < n; v++) {
        /* owner count per frame */
        unsigned char *owned = calloc((size_t)frames[v], 1);
        for (int i = 0; i < p->n_chunks; i++) {
            const dm_chunk *c = &p->chunks[i];
            if (c->video != v) continue;
            pieces[v]++;
            CHECK(c->begin >= 0 && c->begin < c->end && c->end <= frames[v]);
            if (!(c->begin >= 0 && c->end <= frames[v])) continue;
            for (int64_t t = c->begin; t < c->end; t++)
                owned[t]++;
        }
        int64_t bad = 0;
        for (int64_t t = 0; t < frames[v]; t++)
            bad += owned[t] != 1;
        if (bad)
            fprintf(stderr, "video %d: %lld frames not owned exactly once\n", v, (long long)bad);
        CHECK(bad == 0);
        free(owned);
    }
    for (int i = 0; i < p->n_chunks; i++) {
        const dm_chunk *c = &p->chunks[i];
        CHECK(c->rank >= 0 && c->rank < R);
        if (c->rank < 0 || c->rank >= R) continue;
        /* context: inside the video, right before the owned range, exactly the warm-up */
        CHECK(c->context_begin >= 0 && c->context_begin <= c->begin);
        CHECK(c->begin - c->context_begin ==
              (c->begin < o->warmup_frames ? c->begin : o->warmup_frames));
        CHECK(c->begin % o->align_frames == 0);
        CHECK(c->end % o->align_frames == 0 || c->end == frames[c->video]);
        if (pieces[c->video] > 1) CHECK(c->end - c->begin >= o->min_chunk_frames);
        CHECK(dm_chunk_cost(c) == c->end - c->context_begin);
        load[c->rank] += c->end - c->context_begin;
        if (i > 0) CHECK(p->chunks[i - 1].rank <= c->rank);
    }
    for (int r = 0; r < R; r++) {
        CHECK(load[r] == p->rank_load[r]);
        int first, count;
        dm_plan_rank_chunks(p, r, &first, &count);
        for (int i = first; i < first + count; i++)
            CHECK(p->chunks[i].rank == r);
        int64_t sum = 0;
        for (int i = 0; i < p->n_chunks; i++)
            sum += p->chunks[i].rank == r;
        CHECK(sum == count);
    }
    CHECK(dm_plan_validate(p) == DM_OK);
    free(load);
    free(pieces);
    return tc_failure_count - before;
}

static int64_t sum64(const int64_t *x, int n) {
    int64_t s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return s;
}

static int64_t max64(const int64_t *x, int n) {
    int64_t m = 0;
    for (int i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* Makes, checks invariants and the policy's bound; returns the max load (-1 on error). */
static int64_t plan_and_check(const int64_t *frames, int n, int R, dm_plan_options o,
                              dm_plan *keep) {
    dm_plan p;
    dm_status st = dm_plan_make(frames, n, R, &o, &p);
    CHECK_OK(st);
    if (st != DM_OK) return -1;
    int fails = check_plan(&p, frames, n, R, &o);
    int64_t F = sum64(frames, n), mx = dm_plan_max_load(&p), ceilF = (F + R - 1) / R;
    if (o.split == DM_SPLIT_NEVER) {
        CHECK(p.n_chunks == n);
        CHECK(mx * R <= F + (int64_t)(R - 1) * max64(frames, n)); /* Graham's LPT bound */
    } else if (o.split == DM_SPLIT_AUTO) {
        dm_plan_options on = o;
        on.split = DM_SPLIT_NEVER;
        dm_plan q;
        CHECK_OK(dm_plan_make(frames, n, R, &on, &q));
        CHECK(mx <= dm_plan_max_load(&q)); /* auto is never worse than whole videos */
        dm_plan_free(&q);
        if (n == 1 && o.align_frames == 1 && F >= R * o.min_chunk_frames)
            CHECK(mx <= ceilF + o.warmup_frames);
    } else if (o.align_frames == 1 && o.min_chunk_frames == 1) {
        for (int r = 0; r < R; r++) {
            int first, count;
            int64_t own = 0;
            dm_plan_rank_chunks(&p, r, &first, &count);
            for (int i = first; i < first + count; i++)
                own += p.chunks[i].end - p.chunks[i].begin;
            CHECK(own <= ceilF);
        }
        CHECK(mx <= ceilF + o.warmup_frames);
    }
    if (fails || tc_failure_count) dm_plan_print(&p, stderr);
    if (keep)
        *keep = p;
    else
        dm_plan_free(&p);
    return mx;
}

static void test_policies(void) {
    /* 3 equal videos on 2 ranks: whole videos leave rank 1 idle half the time; auto splits
     * exactly one video, always balances owned frames exactly. */
    const int64_t three[] = {300, 300, 300};
    int64_t never = plan_and_check(three, 3, 2, opts(DM_SPLIT_NEVER, 32, 64, 1), NULL);
    CHECK(never == 600);
    dm_plan p;
    int64_t aut = plan_and_check(three, 3, 2, opts(DM_SPLIT_AUTO, 32, 64, 1), &p);
    printf("3 x 300 frames on 2 ranks, auto:\n");
    dm_plan_print(&p, stdout);
    CHECK(aut == 450 + 32 && p.n_chunks == 4);
    dm_plan_free(&p);
    CHECK(plan_and_check(three, 3, 2, opts(DM_SPLIT_ALWAYS, 32, 64, 1), NULL) == 450 + 32);

    /* Enough equal videos to fill the ranks: auto keeps every video whole. */
    const int64_t eight[] = {250, 250, 250, 250, 250, 250, 250, 250};
    CHECK(plan_and_check(eight, 8, 4, opts(DM_SPLIT_AUTO, 32, 64, 1), &p) == 500);
    CHECK(p.n_chunks == 8);
    dm_plan_free(&p);

    /* One long video dominating short ones: auto splits only the long one. */
    const int64_t mixed[] = {100, 2000, 120, 90, 110};
    plan_and_check(mixed, 5, 4, opts(DM_SPLIT_AUTO, 32, 64, 1), &p);
    printf("1 long + 4 short videos on 4 ranks, auto:\n");
    dm_plan_print(&p, stdout);
    for (int i = 0; i < p.n_chunks; i++)
        if (p.chunks[i].video != 1)
            CHECK(p.chunks[i].begin == 0 && p.chunks[i].end == mixed[p.chunks[i].video]);
    CHECK(dm_plan_max_load(&p) <= (2420 + 3 * 32) / 4 + 64); /* near the mean cost */
    dm_plan_free(&p);

    /* One video over R ranks: the bound ceil(F/R) + warm-up. */
    const int64_t one[] = {1000};
    CHECK(plan_and_check(one, 1, 4, opts(DM_SPLIT_AUTO, 32, 64, 1), NULL) == 250 + 32);
    CHECK(plan_and_check(one, 1, 4, opts(DM_SPLIT_NEVER, 32, 64, 1), NULL) == 1000);

    /* VDA-style alignment: borders on multiples of 22. */
    plan_and_check(one, 1, 3, opts(DM_SPLIT_AUTO, 10, 22, 22), &p);
    printf("1 x 1000 frames on 3 ranks, align 22, warm-up 10:\n");
    dm_plan_print(&p, stdout);
    CHECK(p.n_chunks == 3);
    dm_plan_free(&p);
    plan_and_check(mixed, 5, 3, opts(DM_SPLIT_ALWAYS, 10, 22, 22), NULL);
}

static void test_edges(void) {
    dm_plan p;
    /* More ranks than frames: without warm-up every frame can go to its own rank ... */
    const int64_t ten[] = {10};
    CHECK(plan_and_check(ten, 1, 16, opts(DM_SPLIT_AUTO, 0, 1, 1), &p) == 1);
    CHECK(p.n_chunks == 10);
    dm_plan_free(&p);
    CHECK(plan_and_check(ten, 1, 16, opts(DM_SPLIT_ALWAYS, 0, 1, 1), NULL) == 1);
    /* ... with a warm-up longer than the video, splitting cannot lower the max load. */
    CHECK(plan_and_check(ten, 1, 16, opts(DM_SPLIT_AUTO, 32, 1, 1), &p) == 10);
    CHECK(p.n_chunks == 1);
    dm_plan_free(&p);
    /* One rank: everything whole on rank 0. */
    const int64_t vids[] = {5, 700, 33};
    for (int s = 0; s < 3; s++) {
        CHECK(plan_and_check(vids, 3, 1, opts((dm_split_policy)s, 32, 1, 1), &p) == 738);
        CHECK(p.n_chunks == 3);
        dm_plan_free(&p);
    }
    /* Videos shorter than two minimum chunks are never split. */
    const int64_t shorts[] = {100, 100};
    CHECK(plan_and_check(shorts, 2, 8, opts(DM_SPLIT_AUTO, 16, 64, 1), &p) == 100);
    CHECK(p.n_chunks == 2);
    dm_plan_free(&p);
    /* Rejected inputs, with the message naming the cause. */
    const int64_t zero[] = {40, 0, 12};
    dm_plan_options o = dm_plan_options_default();
    CHECK(dm_plan_make(zero, 3, 2, &o, &p) == DM_ERR_ARG);
    CHECK(strcmp(dm_error_message(), "plan: video 1 has 0 frames (need at least one)") == 0);
    CHECK(p.chunks == NULL);
    CHECK(dm_plan_make(ten, 1, 0, &o, &p) == DM_ERR_ARG);
    CHECK(dm_plan_make(ten, 0, 2, &o, &p) == DM_ERR_ARG);
    o.align_frames = 0;
    CHECK(dm_plan_make(ten, 1, 2, &o, &p) == DM_ERR_ARG);
}

static void test_pack_determinism(void) {
    const int64_t frames[] = {247, 289, 250, 60, 60, 125, 100, 325, 65};
    for (int s = 0; s < 3; s++) {
        dm_plan_options o = opts((dm_split_policy)s, 32, 48, 1);
        dm_plan a, b, c;
        CHECK_OK(dm_plan_make(frames, 9, 6, &o, &a));
        CHECK_OK(dm_plan_make(frames, 9, 6, &o, &b));
        size_t n = dm_plan_pack_size(&a);
        CHECK(n == 8 + 9 + 5 * (size_t)a.n_chunks);
        int64_t *pa = calloc(n, sizeof *pa), *pb = calloc(n, sizeof *pb);
        CHECK_OK(dm_plan_pack(&a, pa, n));
        CHECK(dm_plan_pack_size(&b) == n);
        CHECK_OK(dm_plan_pack(&b, pb, n));
        CHECK(memcmp(pa, pb, n * sizeof *pa) == 0); /* deterministic */
        CHECK(dm_plan_pack(&a, pb, n - 1) == DM_ERR_ARG);
        CHECK_OK(dm_plan_unpack(pa, n, &c));
        memset(pb, 0, n * sizeof *pb);
        if (c.chunks) CHECK_OK(dm_plan_pack(&c, pb, n));
        CHECK(memcmp(pa, pb, n * sizeof *pa) == 0); /* round trip */
        CHECK(c.opt.split == o.split && c.opt.warmup_frames == 32 && c.nranks == 6);
        for (int r = 0; r < 6 && c.rank_load; r++)
            CHECK(c.rank_load[r] == a.rank_load[r]);
        dm_plan_free(&c);
        /* corrupted buffers are refused */
        CHECK(dm_plan_unpack(pa, n - 1, &c) == DM_ERR_FORMAT);
        pa[0] ^= 1;
        CHECK(dm_plan_unpack(pa, n, &c) == DM_ERR_FORMAT);
        pa[0] ^= 1;
        pa[8 + 9 + 3] += 1; /* first chunk's end: frames owned twice or not at all */
        CHECK(dm_plan_unpack(pa, n, &c) == DM_ERR_ARG);
        CHECK(c.chunks == NULL);
        free(pa);
        free(pb);
        dm_plan_free(&a);
        dm_plan_free(&b);
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static int64_t rnd(int64_t lo, int64_t hi) { /* inclusive */
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return lo + (int64_t)((rng_state >> 33) % (uint64_t)(hi - lo + 1));
}

static void test_random_sweep(void) {
    int cases = 0;
    for (int it = 0; it < 400; it++) {
        int n = (int)rnd(1, 12), R = (int)rnd(1, 20);
        int64_t frames[12];
        for (int v = 0; v < n; v++)
            frames[v] = rnd(0, 3) == 0 ? rnd(1, 40) : rnd(1, 3000);
        static const int64_t aligns[] = {1, 1, 8, 22};
        dm_plan_options o =
            opts((dm_split_policy)rnd(0, 2), rnd(0, 40), rnd(1, 100), aligns[rnd(0, 3)]);
        if (rnd(0, 3) == 0) o.align_frames = o.min_chunk_frames = 1;
        int before = tc_failure_count;
        plan_and_check(frames, n, R, o, NULL);
        if (tc_failure_count != before)
            fprintf(stderr, "random case %d failed (n %d, R %d, policy %d)\n", it, n, R, o.split);
        cases++;
    }
    printf("random sweep: %d cases\n", cases);
}

/* VDA: window rows tile every video; schedules satisfy the state-passing rule; plans that would
 * deadlock or cut a window are refused. */
static void test_vda(void) {
    int64_t b, e;
    /* 54 frames (golden video run): windows at 0, 22, 44 finalise [0,24), [24,46), [46,54). */
    CHECK(dm_vda_windows_with_rows(54) == 3);
    dm_vda_window_rows(54, 0, &b, &e);
    CHECK(b == 0 && e == 24);
    dm_vda_window_rows(54, 1, &b, &e);
    CHECK(b == 24 && e == 46);
    dm_vda_window_rows(54, 2, &b, &e);
    CHECK(b == 46 && e == 54);
    /* 23 frames: the window starting at 22 would own nothing (its rows start at 24). */
    CHECK(dm_vda_windows_with_rows(23) == 1);
    for (int64_t T = 1; T <= 400; T++) {
        int n = dm_vda_windows_with_rows(T), bad = 0;
        int64_t next = 0;
        for (int k = 0; k < n; k++) {
            dm_vda_window_rows(T, k, &b, &e);
            bad += b != next || e <= b || (k > 0 && (b != 22 * k + 2 || e > 22 * k + 32));
            next = e;
        }
        CHECK(bad == 0 && next == T);
    }
    for (int it = 0; it < 300; it++) {
        int n = (int)rnd(1, 6), R = (int)rnd(1, 9);
        int64_t frames[6];
        int total = 0;
        for (int v = 0; v < n; v++) {
            frames[v] = rnd(1, 500);
            total += dm_vda_windows_with_rows(frames[v]);
        }
        dm_split_policy pol = (dm_split_policy)rnd(0, 2);
        dm_plan p;
        CHECK_OK(dm_plan_make_vda(frames, n, R, pol, &p));
        CHECK_OK(dm_plan_validate(&p));
        dm_vda_schedule s;
        CHECK_OK(dm_vda_schedule_make(&p, &s));
        CHECK(s.n == total);
        if (pol == DM_SPLIT_ALWAYS || (pol == DM_SPLIT_AUTO && n < R))
            CHECK(s.n_rounds == (total + R - 1) / R); /* round-robin: balanced to one window */
        for (int i = 0; i < s.n; i++)
            CHECK(dm_vda_schedule_find(&s, s.slot[i].video, s.slot[i].window) == i);
        dm_vda_schedule_free(&s);
        dm_plan_free(&p);
    }
    /* Contiguous pieces on two ranks: rank 1 would need window 1's state in its first round while
     * rank 0 computes window 1 only in its second: refused, not a deadlock. */
    int64_t T = 100;
    dm_plan p;
    CHECK_OK(dm_plan_make_vda(&T, 1, 1, DM_SPLIT_NEVER, &p));
    dm_plan q = p;
    dm_chunk two[2] = {{0, 0, 0, 46, 0}, {0, 1, 46, 100, 46}};
    int64_t load[2] = {46, 54};
    q.chunks = two, q.n_chunks = 2, q.nranks = 2, q.rank_load = load;
    dm_vda_schedule s;
    CHECK(dm_vda_schedule_make(&q, &s) == DM_ERR_ARG);
    /* A border inside a window (frame 40) is refused. */
    two[0].end = 40, two[1].begin = two[1].context_begin = 40;
    CHECK(dm_vda_schedule_make(&q, &s) == DM_ERR_ARG);
    dm_plan_free(&p);
    printf("vda schedules: ok\n");
}

int main(void) {
    test_policies();
    test_edges();
    test_pack_determinism();
    test_random_sweep();
    test_vda();
    printf("test_plan: %d failure(s)\n", tc_failure_count);
    return tc_failure_count != 0;
}
