/* libFuzzer harness: the safetensors reader (dm_st_open and the loaders behind it,
 * include/depthmatte/safetensors.h, src/weights/safetensors.c).
 *
 * The input is the whole file: 8-byte header length, JSON header, data. It is handed to
 * dm_st_open through a memory file (fuzz_util.h). When the header validates, every entry is
 * loaded with dm_st_load_f32 (once with its own shape, which must then succeed for float/u8
 * dtypes; the conversion reads every byte the header claims, so an offset check that lets a
 * tensor reach past the mapping shows up under ASan) and the metadata and "all used" queries
 * are run. Tensors larger than 16 Mi elements are skipped to keep each input fast. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/safetensors.h"
#include "depthmatte/status.h"
#include "depthmatte/tensor.h"
#include "fuzz_util.h"

enum { FUZZ_MAX_ELEMS = 16 << 20 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(data, size);
    if (!path) return 0;
    dm_st_file f;
    if (dm_st_open(&f, path) != DM_OK) return 0;
    for (int i = 0; i < f.count; i++) {
        dm_st_entry *e = &f.entries[i];
        int64_t numel = 1; /* bounded product: the header's dims are untrusted */
        for (int d = 0; d < e->ndim && numel <= FUZZ_MAX_ELEMS; d++)
            numel = e->shape[d] > FUZZ_MAX_ELEMS ? FUZZ_MAX_ELEMS + 1 : numel * e->shape[d];
        if (numel < 0 || numel > FUZZ_MAX_ELEMS) continue;
        if (dm_st_find(&f, e->name) == NULL) {
            fprintf(stderr, "fuzz_safetensors: entry '%s' not found by name\n", e->name);
            abort();
        }
        dm_tensor t;
        memset(&t, 0, sizeof t);
        dm_status st = dm_st_load_f32(&f, e->name, e->ndim, e->shape, &t);
        if (st == DM_OK) {
            volatile float sink = 0.0f; /* touch the converted values */
            const float *v = t.data;
            for (int64_t k = 0; k < numel; k++) sink += v[k] * 0.0f;
            (void)sink;
            dm_tensor_free(&t);
        } else if (st == DM_ERR_SHAPE) {
            /* duplicate names resolve to the first entry, whose shape may differ */
            if (dm_st_find(&f, e->name) == e) {
                fprintf(stderr, "fuzz_safetensors: loading '%s' with its own shape failed: %s\n",
                        e->name, dm_error_message());
                abort();
            }
        }
    }
    char buf[256];
    (void)dm_st_metadata(&f, "format", buf, sizeof buf);
    (void)dm_st_check_all_used(&f, NULL);
    dm_st_close(&f);
    return 0;
}
