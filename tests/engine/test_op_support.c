/* The shape-aware supports query (include/depthmatte/backend.h: dm_op_desc, traces) and the
 * CUDA backend's limits (dm_cuda_supports_op, plain C, tested in every build): a limit table,
 * the refusal line of an op entry point on the emulated backend (which answers as CUDA does),
 * descriptor formatting, and a trace made on the CPU reference asked of a device backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/backend.h"
#include "depthmatte/backend_cuda.h"
#include "depthmatte/backend_emu.h"
#include "tensor_compare.h"

/* A descriptor with operands of dtype dt and the given shapes (ndim 0: absent). */
static dm_op_desc desc(dm_op_id op, dm_dtype dt, int n, const int *ndim,
                       const int64_t shapes[][DM_MAX_DIMS], const int *iv, int niv) {
    dm_op_desc d;
    memset(&d, 0, sizeof d);
    d.op = op;
    d.dtype = dt;
    d.n = n;
    for (int i = 0; i < n; i++) {
        d.t[i].present = ndim[i] > 0;
        d.t[i].dtype = dt;
        d.t[i].ndim = ndim[i];
        memcpy(d.t[i].shape, shapes[i], sizeof(int64_t) * DM_MAX_DIMS);
    }
    for (int i = 0; i < niv; i++) d.iv[i] = iv[i];
    return d;
}

/* dm_cuda_supports_op must answer `want`; a refusal's reason must contain `needle`. */
static void expect(const dm_op_desc *d, int want, const char *needle) {
    char why[256], what[512];
    const int got = dm_cuda_supports_op(d, why, sizeof why);
    if (got != want || (!got && needle && !strstr(why, needle))) {
        fprintf(stderr, "%s: supported %d (want %d), why '%s' (want '%s')\n",
                dm_op_desc_format(d, what, sizeof what), got, want, why, needle ? needle : "");
        tc_failure_count++;
    }
    if (got && why[0]) {
        fprintf(stderr, "a supported op left a reason: '%s'\n", why);
        tc_failure_count++;
    }
}

static void limit_table(void) {
    const int nd4[] = {4, 4, 4, 4}, nd3[] = {3, 3};
    /* ViT-S/14 at 518x518: 1370 tokens, 6 heads of 64 */
    const int64_t qkvs[][DM_MAX_DIMS] = {{1, 1370, 1152}, {1, 1370, 384}};
    const int heads6[] = {6}, heads1[] = {1}, heads3[] = {3};
    dm_op_desc d = desc(DM_OP_ATTENTION_QKV, DM_DTYPE_F16, 2, nd3, qkvs, heads6, 1);
    expect(&d, 1, NULL);
    d = desc(DM_OP_ATTENTION_QKV, DM_DTYPE_F16, 2, nd3, qkvs, heads1, 1); /* D = 384 */
    expect(&d, 0, "head dim 384");
    d = desc(DM_OP_ATTENTION_QKV, DM_DTYPE_F16, 2, nd3, qkvs, heads3, 1); /* D = 128: edge */
    expect(&d, 1, NULL);
    const int64_t att[][DM_MAX_DIMS] = {{2, 4, 100, 160}, {2, 4, 50, 160}, {2, 4, 50, 160},
                                        {2, 4, 100, 160}};
    d = desc(DM_OP_ATTENTION, DM_DTYPE_F32, 4, nd4, att, NULL, 0);
    expect(&d, 0, "head dim 160");
    const int64_t att64[][DM_MAX_DIMS] = {{2, 4, 100, 64}, {2, 4, 50, 64}, {2, 4, 50, 64},
                                          {2, 4, 100, 64}};
    d = desc(DM_OP_ATTENTION, DM_DTYPE_BF16, 4, nd4, att64, NULL, 0);
    expect(&d, 1, NULL);
    const int64_t attlong[][DM_MAX_DIMS] = {{1, 1, 1LL << 31, 64}, {1, 1, 8, 64},
                                            {1, 1, 8, 64}, {1, 1, 1LL << 31, 64}};
    d = desc(DM_OP_ATTENTION, DM_DTYPE_F16, 4, nd4, attlong, NULL, 0);
    expect(&d, 0, "tokens");
    /* frames: u8 (N, H, W, 3) */
    const int64_t img[][DM_MAX_DIMS] = {{16, 1080, 1920, 3}, {16, 3, 1080, 1920}};
    d = desc(DM_OP_IMAGE_FROM_U8, DM_DTYPE_F16, 2, nd4, img, NULL, 0);
    d.t[0].dtype = DM_DTYPE_U8;
    expect(&d, 1, NULL);
    d.t[0].dtype = DM_DTYPE_F32; /* a float frame */
    expect(&d, 0, "operand 0 has dtype f32");
    const int64_t many[][DM_MAX_DIMS] = {{65536, 8, 8, 3}, {65536, 3, 8, 8}};
    d = desc(DM_OP_IMAGE_FROM_U8, DM_DTYPE_F16, 2, nd4, many, NULL, 0);
    d.t[0].dtype = DM_DTYPE_U8;
    expect(&d, 0, "65536 frames");
    const int64_t cub[][DM_MAX_DIMS] = {{1, 70000, 8, 3}, {1, 3, 518, 518}};
    const int f32arith[] = {DM_CUBIC_F32}, badarith[] = {9};
    d = desc(DM_OP_IMAGE_CUBIC_NORMALIZE, DM_DTYPE_F32, 2, nd4, cub, f32arith, 1);
    d.t[0].dtype = DM_DTYPE_U8;
    expect(&d, 0, "size 70000");
    const int64_t cub2[][DM_MAX_DIMS] = {{1, 1080, 1920, 3}, {1, 3, 518, 924}};
    d = desc(DM_OP_IMAGE_CUBIC_NORMALIZE, DM_DTYPE_F32, 2, nd4, cub2, f32arith, 1);
    d.t[0].dtype = DM_DTYPE_U8;
    expect(&d, 1, NULL);
    d.iv[0] = badarith[0];
    expect(&d, 0, "arithmetic 9");
    /* norms, pools, resize, conv */
    const int64_t gn[][DM_MAX_DIMS] = {{1, 30, 8, 8}, {30}, {30}, {1, 30, 8, 8}};
    const int nd_gn[] = {4, 1, 1, 4}, g4[] = {4}, g3[] = {3};
    d = desc(DM_OP_GROUPNORM, DM_DTYPE_F16, 4, nd_gn, gn, g4, 1);
    expect(&d, 0, "30 channels in 4 groups");
    d = desc(DM_OP_GROUPNORM, DM_DTYPE_F16, 4, nd_gn, gn, g3, 1);
    expect(&d, 1, NULL);
    const int64_t pool[][DM_MAX_DIMS] = {{1, 64, 540, 960}, {1, 64, 270, 480}};
    const int mp_ok[] = {3, 2, 1}, mp_bad[] = {3, 2, 2};
    d = desc(DM_OP_MAXPOOL2D, DM_DTYPE_F32, 2, nd4, pool, mp_ok, 3);
    expect(&d, 1, NULL);
    d = desc(DM_OP_MAXPOOL2D, DM_DTYPE_F32, 2, nd4, pool, mp_bad, 3);
    expect(&d, 0, "padding 2");
    const int rs_bad[] = {7, 0};
    d = desc(DM_OP_RESIZE, DM_DTYPE_F32, 2, nd4, pool, rs_bad, 2);
    expect(&d, 0, "mode 7");
    const int64_t conv[][DM_MAX_DIMS] = {{1, 30, 8, 8}, {16, 10, 3, 3}, {16}, {1, 16, 8, 8}};
    const int nd_conv[] = {4, 4, 1, 4};
    const int cv_g3[] = {1, 1, 1, 1, 1, 1, 3, 0}, cv_g4[] = {1, 1, 1, 1, 1, 1, 4, 0};
    d = desc(DM_OP_CONV2D, DM_DTYPE_BF16, 4, nd_conv, conv, cv_g3, 8);
    expect(&d, 1, NULL);
    d = desc(DM_OP_CONV2D, DM_DTYPE_BF16, 4, nd_conv, conv, cv_g4, 8);
    expect(&d, 0, "in 4 groups");
    /* dtype-only queries */
    d = desc(DM_OP_LINEAR, DM_DTYPE_BF16, 0, NULL, NULL, NULL, 0);
    expect(&d, 1, NULL);
    d.dtype = DM_DTYPE_U8;
    expect(&d, 0, "storage dtype u8");
    d.op = DM_OP_COPY; /* copies and allocations take every dtype */
    expect(&d, 1, NULL);
}

static void format_and_gate(void) {
    const int nd3[] = {3, 3}, heads6[] = {6};
    const int64_t qkvs[][DM_MAX_DIMS] = {{1, 1370, 1152}, {1, 1370, 384}};
    dm_op_desc d = desc(DM_OP_ATTENTION_QKV, DM_DTYPE_F16, 2, nd3, qkvs, heads6, 1);
    d.t[1].dtype = DM_DTYPE_F32;
    char buf[256];
    dm_op_desc_format(&d, buf, sizeof buf);
    CHECK(!strcmp(buf, "attention_qkv f16 (1, 1370, 1152) (1, 1370, 384)f32 [6]"));
    if (strcmp(buf, "attention_qkv f16 (1, 1370, 1152) (1, 1370, 384)f32 [6]"))
        fprintf(stderr, "format: '%s'\n", buf);
    char tiny[8];
    dm_op_desc_format(&d, tiny, sizeof tiny); /* bounded, terminated */
    CHECK(strlen(tiny) == 7);

    /* an op entry point on the emulated backend refuses what CUDA would, in one line */
    dm_backend *emu = NULL;
    CHECK(dm_backend_emu_create(1, DM_DTYPE_F32, NULL, &emu) == DM_OK);
    dm_backend *cpu = dm_backend_cpu_create(1);
    CHECK(cpu != NULL);
    if (!emu || !cpu) return;
    CHECK(dm_backend_supports(emu, DM_OP_CONV2D, DM_DTYPE_F16));
    CHECK(!dm_backend_supports(cpu, DM_OP_CONV2D, DM_DTYPE_F16));
    CHECK(dm_backend_supports(cpu, DM_OP_CONV2D, DM_DTYPE_F32));
    for (int D = 64; D <= 160; D += 96) {
        const int64_t s[4] = {1, 2, 5, D};
        dm_tensor q, k, v, o;
        CHECK(dm_alloc(emu, &q, DM_DTYPE_F32, 4, s) == DM_OK);
        CHECK(dm_alloc(emu, &k, DM_DTYPE_F32, 4, s) == DM_OK);
        CHECK(dm_alloc(emu, &v, DM_DTYPE_F32, 4, s) == DM_OK);
        CHECK(dm_alloc(emu, &o, DM_DTYPE_F32, 4, s) == DM_OK);
        const dm_status st = dm_attention(emu, &q, &k, &v, 0.125f, &o);
        if (D == 64) {
            CHECK(st == DM_OK);
        } else {
            CHECK(st == DM_ERR_UNSUPPORTED);
            const char *m = dm_error_message();
            CHECK(strstr(m, "backend emulated does not run attention f32 (1, 2, 5, 160)") != NULL);
            CHECK(strstr(m, "head dim 160 (the CUDA attention kernels take 1..128)") != NULL);
            if (!strstr(m, "head dim 160")) fprintf(stderr, "refusal: '%s'\n", m);
            /* the CPU reference runs it */
            dm_tensor hq, hk, hv, ho;
            CHECK(dm_alloc(cpu, &hq, DM_DTYPE_F32, 4, s) == DM_OK);
            CHECK(dm_alloc(cpu, &hk, DM_DTYPE_F32, 4, s) == DM_OK);
            CHECK(dm_alloc(cpu, &hv, DM_DTYPE_F32, 4, s) == DM_OK);
            CHECK(dm_alloc(cpu, &ho, DM_DTYPE_F32, 4, s) == DM_OK);
            CHECK(dm_attention(cpu, &hq, &hk, &hv, 0.125f, &ho) == DM_OK);
            dm_tensor_free(&hq), dm_tensor_free(&hk), dm_tensor_free(&hv), dm_tensor_free(&ho);
        }
        dm_tensor_free(&q), dm_tensor_free(&k), dm_tensor_free(&v), dm_tensor_free(&o);
    }

    /* a trace on the CPU reference, asked of an f16 device backend */
    dm_backend *emu16 = NULL;
    CHECK(dm_backend_emu_create(1, DM_DTYPE_F16, NULL, &emu16) == DM_OK);
    dm_op_trace tr = {0};
    dm_backend_trace(cpu, &tr);
    const int64_t a[2] = {4, 8}, b[2] = {2, 8};
    dm_tensor x, y, z;
    CHECK(dm_alloc(cpu, &x, DM_DTYPE_F32, 2, a) == DM_OK);
    CHECK(dm_alloc(cpu, &y, DM_DTYPE_F32, 2, a) == DM_OK);
    CHECK(dm_alloc(cpu, &z, DM_DTYPE_F32, 2, b) == DM_OK);
    CHECK(dm_activation(cpu, &x, DM_ACT_RELU, &y) == DM_OK);
    CHECK(dm_activation(cpu, &x, DM_ACT_RELU, &y) == DM_OK);
    CHECK(dm_activation(cpu, &z, DM_ACT_RELU, &z) == DM_OK);
    /* entries: alloc (4, 8) twice (one entry), alloc (2, 8), activation x2, activation z */
    CHECK(tr.n == 4 && !tr.nomem);
    int acts = 0;
    for (int i = 0; i < tr.n; i++)
        if (tr.desc[i].op == DM_OP_ACTIVATION) {
            acts++;
            CHECK(tr.calls[i] == (tr.desc[i].t[0].shape[0] == 4 ? 2 : 1));
            CHECK(tr.desc[i].iv[0] == DM_ACT_RELU);
        }
    CHECK(acts == 2);
    char why[512];
    if (emu16) {
        CHECK(dm_op_trace_check(emu16, &tr, DM_DTYPE_F32, why, sizeof why) == 1);
        CHECK(why[0] == '\0');
    }
    const int64_t s[4] = {1, 2, 5, 160};
    dm_tensor q;
    CHECK(dm_alloc(cpu, &q, DM_DTYPE_F32, 4, s) == DM_OK);
    /* recorded by the entry point before the CPU op runs (whatever it then says of o
     * aliasing q: the trace holds the call) */
    (void)dm_attention(cpu, &q, &q, &q, 0.1f, &q);
    dm_backend_trace(cpu, NULL);
    CHECK(dm_activation(cpu, &x, DM_ACT_RELU, &y) == DM_OK); /* detached: not recorded */
    CHECK(tr.n == 6);
    if (emu16) {
        CHECK(dm_op_trace_check(emu16, &tr, DM_DTYPE_F32, why, sizeof why) == 0);
        CHECK(strstr(why, "attention f16 (1, 2, 5, 160)") != NULL);
        CHECK(strstr(why, "head dim 160") != NULL);
        if (!strstr(why, "attention f16 (1, 2, 5, 160)")) fprintf(stderr, "check: '%s'\n", why);
    }
    CHECK(dm_op_trace_check(cpu, &tr, DM_DTYPE_F32, why, sizeof why) == 1);
    tr.nomem = 1;
    CHECK(dm_op_trace_check(cpu, &tr, DM_DTYPE_F32, why, sizeof why) == 0);
    CHECK(strstr(why, "incomplete trace") != NULL);
    dm_op_trace_free(&tr);
    CHECK(tr.n == 0 && tr.desc == NULL);
    dm_tensor_free(&x), dm_tensor_free(&y), dm_tensor_free(&z), dm_tensor_free(&q);
    dm_backend_destroy(emu16);
    dm_backend_destroy(emu);
    dm_backend_destroy(cpu);
}

int main(void) {
    limit_table();
    format_and_gate();
    if (tc_failure_count) {
        fprintf(stderr, "test_op_support: %d check(s) failed\n", tc_failure_count);
        return 1;
    }
    printf("test_op_support: all checks passed\n");
    return 0;
}
