/* Recipe weights: splitmix64 / u_i / w_i test vectors of golden README section 1, parsing of
 * both recipes, and the sinusoidal pe table against the exact torch values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/recipe.h"
#include "tensor_compare.h"

int main(void) {
    /* Test vectors (golden README section 1): exact. */
    CHECK(dm_recipe_splitmix64((1ull << 32) + 0) == 0xC42C5A1AA3820138ull);
    CHECK(dm_recipe_splitmix64((1ull << 32) + 1) == 0x204391A6FD59956Full);
    CHECK(dm_recipe_splitmix64((7ull << 32) + 123456) == 0x28321B1BEECA6AC5ull);
    CHECK(dm_recipe_splitmix64((239ull << 32) + 0) == 0xEC4D8615248E4810ull);
    CHECK(dm_recipe_u(1, 0) == 0.76630175113677979);
    CHECK(dm_recipe_u(1, 1) == 0.12603098154067993);
    CHECK(dm_recipe_u(7, 123456) == 0.15701454877853394);
    CHECK(dm_recipe_u(239, 0) == 0.9230579137802124);
    CHECK(dm_recipe_w(1, 0, 0.5, 0) == 0.266301751f);
    CHECK(dm_recipe_w(1, 1, 0.5, 0) == -0.373969018f);

    dm_recipe r;
    const char *path = tc_shared_path("golden/da2_vits/recipe.json");
    dm_status st = dm_recipe_load(&r, path);
    if (st == DM_ERR_IO) return tc_skip("golden/da2_vits/recipe.json not found (set DM_SHARED)");
    CHECK_OK(st);
    CHECK(r.count == 239);
    const dm_recipe_entry *cls = dm_recipe_find(&r, "pretrained.cls_token");
    CHECK(cls && cls->seed == 1 && cls->scale == 0.5 && cls->ndim == 3 && cls->shape[2] == 384);
    if (cls) {
        dm_tensor t;
        CHECK_OK(dm_recipe_generate(&r, cls, &t));
        /* first elements quoted in the README */
        CHECK(dm_f32(&t)[0] == 0.266301751f && dm_f32(&t)[1] == -0.373969018f &&
              dm_f32(&t)[2] == 0.200931191f);
        dm_tensor_free(&t);
    }
    const dm_recipe_entry *last = dm_recipe_find(&r, "depth_head.scratch.output_conv2.2.bias");
    CHECK(last && last->seed == 239 && last->offset == 0.8);
    dm_recipe_free(&r);

    /* VDA recipe: sinusoidal entries computed in float32 vs the exact torch tables. The
     * argument p * div reaches 31 rad, where one float32 ulp is 1.9e-6: computing sin/cos of a
     * differently rounded argument differs by up to a few ulps of the argument, so 1e-5 abs. */
    CHECK_OK(dm_recipe_load(&r, tc_shared_path("golden/vda_vits/recipe.json")));
    CHECK(r.count == 351);
    int n_pe = 0;
    dm_recipe exact = {0};
    for (int i = 0; i < r.count; i++) {
        if (r.entries[i].init != DM_RECIPE_SINUSOIDAL_PE) continue;
        n_pe++;
        dm_tensor a, b;
        CHECK_OK(dm_recipe_generate(&r, &r.entries[i], &a));
        CHECK_OK(dm_recipe_set_pe_file(&exact, tc_shared_path("golden/vda_vits/pe_buffers.safetensors")));
        CHECK_OK(dm_recipe_generate(&exact, &r.entries[i], &b));
        if (a.data && b.data)
            tc_compare("sinusoidal_pe vs torch", dm_f32(&a), dm_f32(&b), dm_tensor_numel(&a), 1e-5,
                       NULL);
        dm_tensor_free(&a);
        dm_tensor_free(&b);
    }
    CHECK(n_pe == 8);
    dm_recipe_free(&exact);
    dm_recipe_free(&r);

    /* a malformed recipe is an error, not a crash */
    CHECK(dm_recipe_load(&r, tc_shared_path("golden/da2_vits/case_square.safetensors")) ==
          DM_ERR_FORMAT);
    printf("%s\n", tc_failure_count ? "FAIL" : "PASS");
    return tc_failure_count != 0;
}
