/* CPU unit test of the fused conv epilogues' pure parts (src/nn/conv_fuse.c), which the CUDA
 * backend's cuDNN graph path (src/nn/cuda/conv_fused.c) is built on:
 *   - every activation's pointwise chain, evaluated with the documented per-op formulas, equals
 *     the CPU reference activation (cpu_act) on finite values (the hardswish / hardsigmoid
 *     decompositions in particular, including the clip corners -3 and +3);
 *   - eligibility: DM_CUDNN_FUSED=0, nothing to fuse, dtypes, CUDA Graph capture without a plan;
 *   - pointer alignment, the plan-cache key (every field matters) and the ring cache with
 *     remembered declines and eviction of the oldest plan.
 * Non-finite agreement of the fused graph with the CPU op is a GPU check (test_cuda_ops -o
 * conv2d_fused: NaN/inf in the bias). */
#include <math.h>
#include <string.h>

#include "nn/conv_fuse.h"
#include "nn/cpu/cpu_ops.h"
#include "tensor_compare.h"

static void check_chains(void) {
    const dm_act acts[7] = {DM_ACT_NONE,    DM_ACT_RELU, DM_ACT_HARDSWISH, DM_ACT_HARDSIGMOID,
                            DM_ACT_SIGMOID, DM_ACT_TANH, DM_ACT_GELU};
    const char *names[7] = {"none", "relu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "gelu"};
    const int want_steps[7] = {0, 1, 4, 3, 1, 1, 1};
    for (int a = 0; a < 7; a++) {
        conv_fuse_step st[CONV_FUSE_MAX_STEPS];
        const int n = conv_fuse_act_chain(acts[a], st);
        printf("chain %-12s %d steps\n", names[a], n);
        CHECK(n == want_steps[a]);
        int bad = 0;
        /* a grid over [-8, 8] in steps of 1/64 (hits -3, 0, +3 exactly), plus large values */
        for (int i = -512; i <= 512 + 4; i++) {
            static const float big[4] = {1e30f, -1e30f, 3e38f, -3e38f};
            const float t = i <= 512 ? (float)i / 64.f : big[i - 513];
            const float got = conv_fuse_eval_chain(st, n, t), want = cpu_act(t, acts[a]);
            if (!(got == want) && bad++ < 3)
                printf("  %s(%.9g): chain %.9g, CPU %.9g\n", names[a], t, got, want);
        }
        CHECK(bad == 0);
    }
    /* an activation the chain cannot express is refused, not approximated */
    conv_fuse_step st[CONV_FUSE_MAX_STEPS];
    CHECK(conv_fuse_act_chain((dm_act)99, st) == -1);
}

static void check_eligible(void) {
    const dm_dtype f32 = DM_DTYPE_F32, f16 = DM_DTYPE_F16, bf16 = DM_DTYPE_BF16;
    CHECK(conv_fuse_eligible(DM_ACT_RELU, 1, f32, f32, f32, 1, 0, 0) == CONV_FUSE_OK);
    CHECK(conv_fuse_eligible(DM_ACT_HARDSWISH, 1, f16, f32, f32, 1, 0, 0) == CONV_FUSE_OK);
    CHECK(conv_fuse_eligible(DM_ACT_NONE, 1, bf16, bf16, bf16, 1, 0, 0) == CONV_FUSE_OK);
    CHECK(conv_fuse_eligible(DM_ACT_SIGMOID, 0, f16, f16, f16, 1, 0, 0) == CONV_FUSE_OK);
    CHECK(conv_fuse_eligible(DM_ACT_RELU, 1, f32, f32, f32, 0, 0, 0) == CONV_FUSE_DISABLED);
    CHECK(conv_fuse_eligible(DM_ACT_NONE, 0, f32, f32, f32, 1, 0, 0) == CONV_FUSE_NOTHING);
    CHECK(conv_fuse_eligible((dm_act)99, 1, f32, f32, f32, 1, 0, 0) == CONV_FUSE_ACT);
    CHECK(conv_fuse_eligible(DM_ACT_RELU, 1, f32, f32, DM_DTYPE_U8, 1, 0, 0) == CONV_FUSE_DTYPE);
    CHECK(conv_fuse_eligible(DM_ACT_RELU, 1, f32, DM_DTYPE_U8, f32, 1, 0, 0) == CONV_FUSE_DTYPE);
    /* no bias: the bias dtype is irrelevant */
    CHECK(conv_fuse_eligible(DM_ACT_RELU, 0, f32, DM_DTYPE_U8, f32, 1, 0, 0) == CONV_FUSE_OK);
    /* inside a capture only with a plan already cached */
    CHECK(conv_fuse_eligible(DM_ACT_RELU, 1, f16, f16, f16, 1, 1, 0) == CONV_FUSE_CAPTURING);
    CHECK(conv_fuse_eligible(DM_ACT_RELU, 1, f16, f16, f16, 1, 1, 1) == CONV_FUSE_OK);

    CHECK(conv_fuse_enabled(NULL) == 1);
    CHECK(conv_fuse_enabled("1") == 1);
    CHECK(conv_fuse_enabled("") == 1);
    CHECK(conv_fuse_enabled("0") == 0);
    CHECK(conv_fuse_enabled("off") == 0);
    CHECK(conv_fuse_enabled("FALSE") == 0);
    CHECK(conv_fuse_enabled("no") == 0);

    CHECK(conv_fuse_alignment((void *)(uintptr_t)0x1000) == 16);
    CHECK(conv_fuse_alignment((void *)(uintptr_t)0x1008) == 8);
    CHECK(conv_fuse_alignment((void *)(uintptr_t)0x1002) == 2);
    CHECK(conv_fuse_alignment((void *)(uintptr_t)0x1001) == 1);
    CHECK(conv_fuse_alignment(NULL) == 16);
}

static conv_fuse_key key_variant(int field) {
    int v[CONV_FUSE_KEY_LEN - 1] = {1, 16, 17, 19, 32, 3, 3, 1,  1,  1,  1, 1,
                                    1, 1,  1,  0,  0,  0, 0, 16, 16, 16, 16};
    if (field >= 0) v[field] += 1;
    dm_conv2d_params p = {v[7], v[8], v[9], v[10], v[11], v[12], v[13], (dm_act)v[14]};
    return conv_fuse_key_make(v[0], v[1], v[2], v[3], v[4], v[5], v[6], &p, (dm_dtype)v[15], v[16],
                              (dm_dtype)v[17], v[18], v[19], v[20], v[21], v[22]);
}

static void check_cache(void) {
    /* the key changes with every field */
    const conv_fuse_key base = key_variant(-1), same = key_variant(-1);
    CHECK(base.v[0] == 1 && !memcmp(&base, &same, sizeof base));
    for (int f = 0; f < CONV_FUSE_KEY_LEN - 1; f++) {
        const conv_fuse_key k = key_variant(f);
        if (!memcmp(&k, &base, sizeof k)) {
            printf("key field %d does not change the key\n", f);
            CHECK(0);
        }
    }

    static conv_fuse_cache c; /* zeroed */
    static int fake_plans[CONV_FUSE_CACHE + 1];
    void *evicted = (void *)1;
    CHECK(conv_fuse_cache_find(&c, &base) == NULL);
    conv_fuse_entry *e = conv_fuse_cache_put(&c, &base, NULL, 0, 1, &evicted); /* declined */
    CHECK(evicted == NULL);
    CHECK(conv_fuse_cache_find(&c, &base) == e && e->declined && !e->plan);
    /* fill the ring with plans: the oldest (the declined key) is replaced first, then the
     * first plan, which is handed back for destruction */
    for (int i = 0; i < CONV_FUSE_CACHE; i++) {
        conv_fuse_key k = key_variant(-1);
        k.v[1] = 1000 + i; /* distinct N */
        e = conv_fuse_cache_put(&c, &k, &fake_plans[i], 64u * (unsigned)i, 0, &evicted);
        CHECK(evicted == NULL); /* slot 0 held the declined key: no plan to destroy */
        CHECK(conv_fuse_cache_find(&c, &k) == e && e->plan == &fake_plans[i] && !e->declined);
    }
    CHECK(conv_fuse_cache_find(&c, &base) == NULL); /* the declined key was evicted */
    conv_fuse_key k = key_variant(-1);
    k.v[1] = 5000;
    conv_fuse_cache_put(&c, &k, &fake_plans[CONV_FUSE_CACHE], 0, 0, &evicted);
    CHECK(evicted == &fake_plans[0]);
    conv_fuse_key first = key_variant(-1);
    first.v[1] = 1000;
    CHECK(conv_fuse_cache_find(&c, &first) == NULL);
    first.v[1] = 1001;
    CHECK(conv_fuse_cache_find(&c, &first) != NULL);
}

int main(void) {
    check_chains();
    check_eligible();
    check_cache();
    printf("%s: %d failure(s)\n", tc_failure_count ? "FAIL" : "PASS", tc_failure_count);
    return tc_failure_count != 0;
}
