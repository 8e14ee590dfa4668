/* depthmatte — safetensors reader (mmap) with name/shape/dtype validation, and a writer.
 *
 * Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"},
 * then the data; offsets are relative to the end of the header. The reader validates the
 * whole header on open: every entry has a known dtype, offsets inside the file and
 * end - begin == numel * dtype size. Errors name the file and the tensor.
 */
#ifndef DEPTHMATTE_SAFETENSORS_H
#define DEPTHMATTE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "depthmatte/tensor.h"

typedef struct dm_st_entry {
    char *name;
    dm_dtype dtype;
    int ndim;
    int64_t shape[DM_MAX_DIMS];
    const void *data; /* inside the mapping, little-endian */
    size_t nbytes;
    int used; /* set by dm_st_load*; lets a loader report unexpected tensors */
} dm_st_entry;

typedef struct dm_st_file {
    char *path;
    void *map;
    size_t map_size;
    dm_st_entry *entries;
    int count;
    char *metadata_json; /* "__metadata__" object as JSON text, or NULL */
} dm_st_file;

/* Opens and validates `path`. Errors: DM_ERR_IO (missing, unreadable), DM_ERR_FORMAT
 * (truncated, bad JSON, offsets outside the file, unknown dtype), with the path in the
 * message. On error *f is zeroed and needs no close. */
dm_status dm_st_open(dm_st_file *f, const char *path);

/* Unmaps and frees. Safe on a zeroed struct. */
void dm_st_close(dm_st_file *f);

/* Finds a tensor by exact name; NULL if absent. */
dm_st_entry *dm_st_find(dm_st_file *f, const char *name);

/* Loads tensor `name` into a newly allocated F32 CPU tensor, converting F16/BF16/F32 (and
 * U8 to its integer value). Checks the shape against `shape` (ndim entries) unless shape is
 * NULL. Marks the entry used. Errors: DM_ERR_NAME (absent), DM_ERR_SHAPE ("got [..] expected
 * [..]"), DM_ERR_DTYPE (I64 or other); messages name file and tensor. */
dm_status dm_st_load_f32(dm_st_file *f, const char *name, int ndim, const int64_t *shape,
                         dm_tensor *out);

/* Reports the first entry not marked used whose name does not start with any of the
 * `ignore_prefixes` (NULL-terminated list, may be NULL): DM_ERR_NAME "unexpected tensor". */
dm_status dm_st_check_all_used(const dm_st_file *f, const char *const *ignore_prefixes);

/* Reads a string from "__metadata__" into buf; DM_ERR_NAME if absent. */
dm_status dm_st_metadata(const dm_st_file *f, const char *key, char *buf, size_t size);

/* Writes `n` CPU tensors (F32, F16, U8, I64) to `path` as safetensors. DM_ERR_IO on failure.
 * metadata: NULL or NULL-terminated key, value, key, value... list of strings. */
dm_status dm_st_write(const char *path, int n, const char *const *names,
                      const dm_tensor *const *tensors, const char *const *metadata);

#endif
