/* RVM on awkward frame sizes (odd, tiny, ratio giving odd internal sizes, ratio 1): every run
 * must succeed, give finite fgr / pha in [0, 1], and be deterministic (a fresh state on the
 * same frames gives identical results). Catches buffer sizing and crop errors that the
 * golden sizes (multiples of 16) cannot. Run under -DDM_SANITIZE=ON for memory errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/rvm.h"
#include "tensor_compare.h"

static void run_size(const rvm_model *m, dm_backend *be, int H, int W, double ratio,
                     rvm_refiner ref) {
    uint8_t *rgb = malloc((size_t)H * W * 3);
    float *fgr[2], *pha[2];
    for (int i = 0; i < 2; i++) {
        fgr[i] = malloc(sizeof(float) * 3 * H * W);
        pha[i] = malloc(sizeof(float) * H * W);
    }
    for (int run = 0; run < 2; run++) {
        rvm_state *s = NULL;
        CHECK_OK(rvm_state_init(&s, m, be, H, W, ratio));
        if (!s) break;
        CHECK_OK(rvm_state_set_refiner(s, ref));
        for (int t = 0; t < 3; t++) {
            for (int i = 0; i < H * W * 3; i++) rgb[i] = (uint8_t)((i * 7 + t * 29 + (i / (3 * W)) * 5) & 255);
            CHECK_OK(rvm_forward_u8(s, rgb, fgr[run], pha[run]));
        }
        rvm_state_free(s);
    }
    int bad = 0;
    for (int i = 0; i < H * W; i++) bad += !(pha[0][i] >= 0.f && pha[0][i] <= 1.f);
    for (int i = 0; i < 3 * H * W; i++) bad += !(fgr[0][i] >= 0.f && fgr[0][i] <= 1.f);
    int same = !memcmp(pha[0], pha[1], sizeof(float) * H * W) &&
               !memcmp(fgr[0], fgr[1], sizeof(float) * 3 * H * W);
    printf("%4dx%-4d ratio %.3f refiner %d: out-of-range/NaN %d, deterministic %s\n", W, H, ratio,
           (int)ref, bad, same ? "yes" : "NO");
    CHECK(bad == 0);
    CHECK(same);
    for (int i = 0; i < 2; i++) {
        free(fgr[i]);
        free(pha[i]);
    }
    free(rgb);
}

int main(void) {
    const char *w = tc_shared_path("models/rvm_mobilenetv3.safetensors");
    if (access(w, R_OK) != 0) return tc_skip("RVM weights not found (../shared/models)");
    dm_backend *be = dm_backend_cpu_create(0);
    rvm_model *m = NULL;
    CHECK_OK(rvm_model_load(&m, tc_shared_path("models/rvm_mobilenetv3.safetensors"), be));
    if (m) {
        run_size(m, be, 67, 101, 0.37, RVM_REFINER_DEEP_GUIDED_FILTER);
        run_size(m, be, 67, 101, 0.37, RVM_REFINER_FAST_GUIDED_FILTER);
        run_size(m, be, 33, 17, 1.0, RVM_REFINER_DEEP_GUIDED_FILTER);
        run_size(m, be, 5, 3, 1.0, RVM_REFINER_DEEP_GUIDED_FILTER);
        run_size(m, be, 150, 90, 0.0, RVM_REFINER_DEEP_GUIDED_FILTER); /* auto = 1 */
        run_size(m, be, 600, 40, 0.0, RVM_REFINER_DEEP_GUIDED_FILTER); /* auto = 512/600 */
        rvm_state *s = NULL;
        CHECK(rvm_state_init(&s, m, be, 10, 10, 0.1) == DM_ERR_ARG && !s); /* 1x1 internal */
        CHECK(rvm_state_init(&s, m, be, 10, 10, 1.5) == DM_ERR_ARG && !s);
        CHECK(rvm_state_init(&s, m, be, 0, 10, 1.0) == DM_ERR_ARG && !s);
    }
    rvm_model_free(m);
    dm_backend_destroy(be);
    return tc_failure_count != 0;
}
