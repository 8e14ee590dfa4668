/* Shared by the VDA tests: recipe weights (golden README section 1; the pe buffers are taken
 * from pe_buffers.safetensors, the exact torch values) written to a temporary safetensors file
 * and loaded with vda_model_load. */
#ifndef DM_TESTS_VDA_UTIL_H
#define DM_TESTS_VDA_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "depthmatte/recipe.h"
#include "depthmatte/vda.h"
#include "tensor_compare.h"

/* Returns DM_OK and *m, or DM_ERR_IO when the golden data is absent (caller skips). */
static inline dm_status vda_test_load_recipe_model(vda_model **m, dm_backend *be, int metric) {
    dm_recipe r;
    dm_status st = dm_recipe_load(&r, tc_shared_path("golden/vda_vits/recipe.json"));
    if (st) return st;
    CHECK_OK(dm_recipe_set_pe_file(&r, tc_shared_path("golden/vda_vits/pe_buffers.safetensors")));
    char path[256];
    snprintf(path, sizeof path, "%s/dm_vda_recipe_%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    CHECK_OK(st = dm_recipe_write_safetensors(&r, path));
    dm_recipe_free(&r);
    if (!st) CHECK_OK(st = vda_model_load(m, path, be, metric));
    unlink(path);
    return st;
}

#endif
