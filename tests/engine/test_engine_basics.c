/* Engine basics: dtype conversions, safetensors round trip and validation, conv2d (all paths:
 * 1x1, im2col, grouped, depthwise, dilated, strided) against a naive loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "depthmatte/backend.h"
#include "depthmatte/safetensors.h"
#include "tensor_compare.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) & 0xffff) / 32768.f - 1.f;
}

static void naive_conv(const dm_tensor *x, const dm_tensor *w, const dm_tensor *b,
                       const dm_conv2d_params *p, dm_tensor *y) {
    int N = x->shape[0], Cin = x->shape[1], H = x->shape[2], W = x->shape[3];
    int Cout = w->shape[0], kh = w->shape[2], kw = w->shape[3], g = p->groups;
    int Ho = y->shape[2], Wo = y->shape[3], Cg = Cin / g, Og = Cout / g;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Cout; o++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = b ? dm_f32(b)[o] : 0;
                    int gi = o / Og;
                    for (int c = 0; c < Cg; c++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++) {
                                int iy = oy * p->stride_h - p->pad_h + ky * p->dilation_h;
                                int ix = ox * p->stride_w - p->pad_w + kx * p->dilation_w;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += dm_f32(x)[((n * Cin + gi * Cg + c) * H + iy) * W + ix] *
                                       dm_f32(w)[((o * Cg + c) * kh + ky) * kw + kx];
                            }
                    float v = (float)acc;
                    if (p->act == DM_ACT_RELU && v < 0) v = 0;
                    dm_f32(y)[((n * Cout + o) * Ho + oy) * Wo + ox] = v;
                }
}

static void test_conv(dm_backend *be, int N, int Cin, int Cout, int H, int W, int k, int s,
                      int pad, int dil, int g) {
    unsigned seed = 42u + Cin * 7 + k;
    dm_tensor x, w, b, y, ref;
    int64_t xs[4] = {N, Cin, H, W}, ws[4] = {Cout, Cin / g, k, k}, bs[1] = {Cout};
    int Ho = (H + 2 * pad - dil * (k - 1) - 1) / s + 1, Wo = (W + 2 * pad - dil * (k - 1) - 1) / s + 1;
    int64_t ys[4] = {N, Cout, Ho, Wo};
    CHECK_OK(dm_tensor_alloc(&x, DM_DTYPE_F32, 4, xs));
    CHECK_OK(dm_tensor_alloc(&w, DM_DTYPE_F32, 4, ws));
    CHECK_OK(dm_tensor_alloc(&b, DM_DTYPE_F32, 1, bs));
    CHECK_OK(dm_tensor_alloc(&y, DM_DTYPE_F32, 4, ys));
    CHECK_OK(dm_tensor_alloc(&ref, DM_DTYPE_F32, 4, ys));
    for (int64_t i = 0; i < dm_tensor_numel(&x); i++) dm_f32(&x)[i] = frand(&seed);
    for (int64_t i = 0; i < dm_tensor_numel(&w); i++) dm_f32(&w)[i] = frand(&seed);
    for (int64_t i = 0; i < Cout; i++) dm_f32(&b)[i] = frand(&seed);
    dm_conv2d_params p = {s, s, pad, pad, dil, dil, g, DM_ACT_RELU};
    CHECK_OK(dm_conv2d(be, &x, &w, &b, &p, &y));
    naive_conv(&x, &w, &b, &p, &ref);
    char name[96];
    snprintf(name, sizeof name, "conv k%d s%d p%d d%d g%d", k, s, pad, dil, g);
    /* fp32 accumulation-order noise: K <= 300 terms of magnitude <= 1 */
    tc_compare(name, dm_f32(&y), dm_f32(&ref), dm_tensor_numel(&y), 1e-4, NULL);
    dm_tensor_free(&x), dm_tensor_free(&w), dm_tensor_free(&b), dm_tensor_free(&y),
        dm_tensor_free(&ref);
}

static void test_f16(void) {
    CHECK(dm_f16_to_f32(0x3c00) == 1.0f);
    CHECK(dm_f16_to_f32(0xc000) == -2.0f);
    CHECK(dm_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(dm_f32_to_f16(65504.f) == 0x7bff);
    CHECK(dm_f32_to_f16(1e6f) == 0x7c00);
    for (uint32_t h = 0; h < 0x7c00; h++) CHECK(dm_f32_to_f16(dm_f16_to_f32((uint16_t)h)) == h);
    CHECK(dm_bf16_to_f32(dm_f32_to_bf16(1.5f)) == 1.5f);
}

/* A safetensors file made of a header and no data: 8-byte little-endian length + JSON. */
static void write_header_only(const char *path, const char *hdr) {
    uint8_t len8[8] = {0};
    size_t hl = strlen(hdr);
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(hl >> (8 * i));
    FILE *h = fopen(path, "wb");
    CHECK(h && fwrite(len8, 1, 8, h) == 8 && fwrite(hdr, 1, hl, h) == hl);
    if (h) fclose(h);
}

static void test_safetensors(void) {
    char path[] = "/tmp/dm_st_testXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    dm_tensor a;
    int64_t s[2] = {2, 3};
    CHECK_OK(dm_tensor_alloc(&a, DM_DTYPE_F32, 2, s));
    for (int i = 0; i < 6; i++) dm_f32(&a)[i] = i * 0.5f;
    const char *names[] = {"layer.weight"};
    const dm_tensor *ts[] = {&a};
    const char *meta[] = {"format", "pt", NULL};
    CHECK_OK(dm_st_write(path, 1, names, ts, meta));
    dm_st_file f;
    CHECK_OK(dm_st_open(&f, path));
    dm_tensor got;
    CHECK_OK(dm_st_load_f32(&f, "layer.weight", 2, s, &got));
    CHECK(got.data && dm_f32(&got)[5] == 2.5f);
    int64_t wrong[2] = {3, 2};
    dm_tensor bad;
    CHECK(dm_st_load_f32(&f, "layer.weight", 2, wrong, &bad) == DM_ERR_SHAPE);
    CHECK(strstr(dm_error_message(), "wrong shape [2, 3], expected [3, 2]") != NULL);
    CHECK(dm_st_load_f32(&f, "layer.bias", 1, s, &bad) == DM_ERR_NAME);
    char buf[16];
    CHECK_OK(dm_st_metadata(&f, "format", buf, sizeof buf));
    CHECK(!strcmp(buf, "pt"));
    CHECK_OK(dm_st_check_all_used(&f, NULL));
    dm_tensor_free(&got);
    dm_st_close(&f);
    /* truncate the data section: the open must fail and name the tensor */
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    CHECK(truncate(path, size - 4) == 0);
    CHECK(dm_st_open(&f, path) != DM_OK);
    printf("truncated: %s\n", dm_error_message());
    CHECK(strstr(dm_error_message(), path) != NULL);
    CHECK(dm_st_open(&f, "/nonexistent/w.safetensors") == DM_ERR_IO);
    /* regression (fuzz_safetensors): an offset beyond uint64_t range is a format error, not UB */
    {
        const char hdr[] = "{\"a\": {\"dtype\": \"F16\", \"shape\": [1, 4, 3], "
                           "\"data_offsets\": [0, 20000000000000000000004]}}";
        write_header_only(path, hdr);
        CHECK(dm_st_open(&f, path) == DM_ERR_FORMAT);
        CHECK(strstr(dm_error_message(), "truncated file?") != NULL);
    }
    /* regression (10-minute fuzz_safetensors run): a second __metadata__ key leaked the first */
    {
        const char hdr[] = "{\"__metadata__\": {\"format\": \"pt\"}, "
                           "\"__metadata__\": {\"format\": \"np\"}}";
        write_header_only(path, hdr);
        CHECK(dm_st_open(&f, path) == DM_ERR_FORMAT);
        CHECK(strstr(dm_error_message(), "two __metadata__") != NULL);
    }
    unlink(path);
    dm_tensor_free(&a);
}

int main(void) {
    test_f16();
    test_safetensors();
    dm_backend *be = dm_backend_cpu_create(2);
    test_conv(be, 2, 8, 16, 9, 11, 1, 1, 0, 1, 1);  /* 1x1 direct GEMM */
    test_conv(be, 1, 3, 16, 17, 13, 3, 2, 1, 1, 1); /* stem-like, strided */
    test_conv(be, 1, 8, 8, 10, 12, 5, 1, 2, 1, 8);  /* depthwise */
    test_conv(be, 1, 8, 8, 10, 12, 3, 1, 2, 2, 8);  /* dilated depthwise */
    test_conv(be, 1, 8, 12, 10, 12, 3, 1, 1, 1, 4); /* grouped */
    test_conv(be, 1, 6, 4, 7, 7, 3, 1, 3, 3, 1);    /* dilated dense */
    /* RVM ResNet-50 encoder: stem 7x7 s2 p3, strided 1x1 downsample, strided 3x3, layer4's
     * dilated 3x3 (dilation 2, padding 2), on odd sizes */
    test_conv(be, 1, 3, 16, 19, 23, 7, 2, 3, 1, 1);
    test_conv(be, 1, 16, 32, 9, 11, 1, 2, 0, 1, 1);
    test_conv(be, 1, 16, 8, 9, 11, 3, 2, 1, 1, 1);
    test_conv(be, 1, 16, 8, 5, 8, 3, 1, 2, 2, 1);
    dm_backend_destroy(be);
    printf("%s\n", tc_failure_count ? "FAILED" : "OK");
    return tc_failure_count != 0;
}
