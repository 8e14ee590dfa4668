/* dm_make_recipe_weights: writes the deterministic recipe weights of a recipe.json (golden
 * README section 1; DA-V2, VDA or RVM ResNet50) to a safetensors file with the official key names, for tests
 * and benchmarks without the trained checkpoints. These weights are synthetic: their depth
 * maps are meaningless, only the arithmetic matches the official model.
 * Usage: dm_make_recipe_weights RECIPE.json OUT.safetensors [PE_BUFFERS.safetensors] */
#include <stdio.h>

#include "depthmatte/recipe.h"

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s RECIPE.json OUT.safetensors [PE_BUFFERS.safetensors]\n"
                        "  e.g. %s ../shared/golden/da2_vits/recipe.json da2_recipe.safetensors\n",
                argv[0], argv[0]);
        return 2;
    }
    dm_recipe r;
    dm_status st = dm_recipe_load(&r, argv[1]);
    if (!st && argc == 4) st = dm_recipe_set_pe_file(&r, argv[3]);
    if (!st) st = dm_recipe_write_safetensors(&r, argv[2]);
    if (st) {
        fprintf(stderr, "dm_make_recipe_weights: %s\n", dm_error_message());
        dm_recipe_free(&r);
        return 1;
    }
    printf("wrote %d tensors to %s\n", r.count, argv[2]);
    dm_recipe_free(&r);
    return 0;
}
