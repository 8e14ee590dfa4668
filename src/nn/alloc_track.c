/* Device allocation byte counts (src/nn/alloc_track.h): an open-addressing hash table
 * pointer -> (device, bytes), linear probing, deletion by backward shift (no tombstones, so a
 * long run of alloc/free never degrades the probes), grown at half load; one mutex, since the
 * pipeline's threads allocate and free on their backends concurrently. */
#include "nn/alloc_track.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct entry {
    uintptr_t key; /* 0: empty */
    size_t bytes;
    int device;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *table;
static size_t cap, used; /* cap: a power of two (or 0) */
static dm_alloc_track_counts counts[DM_ALLOC_TRACK_DEVICES];

static size_t slot_of(uintptr_t key, size_t mask) {
    uint64_t h = (uint64_t)key;
    h ^= h >> 33; /* cudaMalloc addresses share their low bits (alignment): mix them in */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & mask;
}

/* the slot holding key, or the empty slot where it belongs; table non-empty */
static size_t find(uintptr_t key) {
    const size_t mask = cap - 1;
    size_t i = slot_of(key, mask);
    while (table[i].key && table[i].key != key)
        i = (i + 1) & mask;
    return i;
}

static int grow(void) {
    const size_t ncap = cap ? 2 * cap : 1024;
    entry *old = table, *nt = calloc(ncap, sizeof *nt);
    const size_t ocap = cap;
    if (!nt) return 0;
    table = nt, cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key) table[find(old[i].key)] = old[i];
    free(old);
    return 1;
}

static void count_free(const entry *e) {
    if (e->device < 0 || e->device >= DM_ALLOC_TRACK_DEVICES) return;
    counts[e->device].current_bytes -= e->bytes;
    counts[e->device].frees++;
}

dm_status dm_alloc_track_add(int device, const void *ptr, size_t bytes) {
    if (!ptr) return DM_OK;
    pthread_mutex_lock(&lock);
    if (2 * (used + 1) > cap && !grow()) {
        pthread_mutex_unlock(&lock);
        return dm_error_set(DM_ERR_NOMEM, "device allocation tracker: table of %zu entries",
                            2 * cap);
    }
    entry *e = &table[find((uintptr_t)ptr)];
    if (e->key)
        count_free(e); /* freed behind our back and handed out again */
    else
        used++;
    *e = (entry){(uintptr_t)ptr, bytes, device};
    if (device >= 0 && device < DM_ALLOC_TRACK_DEVICES) {
        dm_alloc_track_counts *c = &counts[device];
        c->current_bytes += bytes;
        c->allocs++;
        if (c->current_bytes > c->peak_bytes) c->peak_bytes = c->current_bytes;
    }
    pthread_mutex_unlock(&lock);
    return DM_OK;
}

size_t dm_alloc_track_remove(const void *ptr) {
    if (!ptr) return 0;
    pthread_mutex_lock(&lock);
    size_t bytes = 0;
    if (cap) {
        const size_t mask = cap - 1;
        size_t i = find((uintptr_t)ptr);
        if (table[i].key) {
            bytes = table[i].bytes;
            count_free(&table[i]);
            used--;
            /* backward shift: move later entries of the probe run into the hole when their
             * home slot does not lie (cyclically) between the hole and them */
            size_t j = i;
            for (;;) {
                table[i].key = 0;
                for (;;) {
                    j = (j + 1) & mask;
                    if (!table[j].key) goto done;
                    const size_t home = slot_of(table[j].key, mask);
                    if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) break;
                }
                table[i] = table[j];
                i = j;
            }
        }
    }
done:
    pthread_mutex_unlock(&lock);
    return bytes;
}

dm_status dm_alloc_track_get(int device, dm_alloc_track_counts *out) {
    if (!out || device < 0 || device >= DM_ALLOC_TRACK_DEVICES)
        return dm_error_set(DM_ERR_ARG, "device allocation tracker: device %d out of range 0..%d",
                            device, DM_ALLOC_TRACK_DEVICES - 1);
    pthread_mutex_lock(&lock);
    *out = counts[device];
    pthread_mutex_unlock(&lock);
    return DM_OK;
}
