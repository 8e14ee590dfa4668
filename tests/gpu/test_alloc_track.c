/* CPU unit test of the device allocation tracker (src/nn/alloc_track.c) behind
 * dm_cuda_alloc_stats: current / peak bytes per device, frees by pointer alone, the table's
 * growth and its deletion (backward shift) under many interleaved allocations and frees
 * against a plain reference array, unknown and NULL pointers, device indices out of range.
 * Fake pointers (never dereferenced) with the 256-byte alignment of cudaMalloc's. */
#include <stdint.h>
#include <string.h>

#include "nn/alloc_track.h"
#include "tensor_compare.h"

#define N 5000

static const void *fake(size_t i) {
    return (const void *)(uintptr_t)(0x7f0000000000ULL + 256 * (i + 1));
}

int main(void) {
    dm_alloc_track_counts c;
    CHECK(dm_alloc_track_get(0, &c) == DM_OK && c.current_bytes == 0 && c.peak_bytes == 0);
    CHECK(dm_alloc_track_get(-1, &c) == DM_ERR_ARG);
    CHECK(dm_alloc_track_get(DM_ALLOC_TRACK_DEVICES, &c) == DM_ERR_ARG);
    CHECK(dm_alloc_track_get(0, NULL) == DM_ERR_ARG);

    /* two devices, peak kept after frees */
    CHECK(dm_alloc_track_add(0, fake(0), 1000) == DM_OK);
    CHECK(dm_alloc_track_add(1, fake(1), 300) == DM_OK);
    CHECK(dm_alloc_track_add(0, fake(2), 24) == DM_OK);
    CHECK(dm_alloc_track_remove(fake(0)) == 1000);
    CHECK(dm_alloc_track_get(0, &c) == DM_OK && c.current_bytes == 24 && c.peak_bytes == 1024);
    CHECK(c.allocs == 2 && c.frees == 1);
    CHECK(dm_alloc_track_get(1, &c) == DM_OK && c.current_bytes == 300 && c.peak_bytes == 300);
    CHECK(dm_alloc_track_remove(fake(0)) == 0); /* twice: not recorded any more */
    CHECK(dm_alloc_track_remove(NULL) == 0);
    CHECK(dm_alloc_track_remove(fake(99999)) == 0);
    CHECK(dm_alloc_track_add(0, NULL, 5) == DM_OK); /* ignored */
    /* the same address again (freed outside the tracker): replaces, not doubles */
    CHECK(dm_alloc_track_add(0, fake(2), 50) == DM_OK);
    CHECK(dm_alloc_track_get(0, &c) == DM_OK && c.current_bytes == 50);
    CHECK(dm_alloc_track_remove(fake(2)) == 50 && dm_alloc_track_remove(fake(1)) == 300);
    /* an out-of-range device is held in the table but counted nowhere */
    CHECK(dm_alloc_track_add(DM_ALLOC_TRACK_DEVICES + 3, fake(7), 77) == DM_OK);
    CHECK(dm_alloc_track_remove(fake(7)) == 77);

    /* many: grow the table several times, free in a scrambled order, compare with a reference */
    static size_t ref[N];
    size_t cur = 0, peak = 0, lost = 0;
    for (size_t round = 0; round < 3; round++) {
        for (size_t i = 0; i < N; i++) {
            ref[i] = 256 * (1 + (i * 7919 + round) % 97);
            if (dm_alloc_track_add(2, fake(i), ref[i]) != DM_OK) lost++;
            cur += ref[i];
            if (cur > peak) peak = cur;
        }
        for (size_t k = 0; k < N; k++) { /* every other one, scrambled (2083 is prime to N) */
            const size_t i = (k * 2083) % N;
            if (i % 2) continue;
            if (dm_alloc_track_remove(fake(i)) != ref[i]) lost++;
            cur -= ref[i];
        }
        for (size_t i = 1; i < N; i += 2) { /* the rest, each still found after the shifts */
            if (dm_alloc_track_remove(fake(i)) != ref[i]) lost++;
            cur -= ref[i];
        }
    }
    CHECK(lost == 0);
    CHECK(dm_alloc_track_get(2, &c) == DM_OK && c.current_bytes == 0 && cur == 0);
    CHECK(c.allocs == 3 * N && c.frees == 3 * N);
    size_t first_round_peak = 0;
    for (size_t i = 0; i < N; i++)
        first_round_peak += 256 * (1 + (i * 7919) % 97);
    CHECK(c.peak_bytes >= first_round_peak && c.peak_bytes <= peak);
    printf("peak %zu bytes over %lld allocations\n", c.peak_bytes, c.allocs);

    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
