/* `depthmatte export` helpers: depth palettes, a 5x7 bitmap font for the contact sheet's
 * labels, RGB resizing (export_internal.h). */
#include <math.h>
#include <string.h>

#include <libavutil/mem.h>
#include <libswscale/swscale.h>

#include "export/export_internal.h"

/* Palettes: 33 colours at t = k/32, linearly interpolated. inferno (matplotlib's, CC0, the
 * official Video Depth Anything tool's choice) and turbo (Google's, Apache-2.0) were sampled
 * from matplotlib 3.x's 256-entry tables at k/32 and rounded to 8 bits; interpolation stays
 * within 5 levels of those tables. */
static const uint8_t inferno[33][3] = {
    {0, 0, 4},       {4, 3, 18},      {11, 7, 36},    {21, 11, 55},   {33, 12, 74},
    {47, 10, 91},    {61, 9, 101},    {74, 12, 107},  {87, 16, 110},  {100, 21, 110},
    {113, 25, 110},  {125, 30, 109},  {138, 34, 106}, {151, 39, 102}, {163, 44, 97},
    {176, 49, 91},   {188, 55, 84},   {199, 62, 76},  {210, 70, 68},  {219, 80, 59},
    {228, 90, 49},   {235, 102, 40},  {241, 115, 29}, {246, 128, 19}, {249, 142, 9},
    {251, 157, 7},   {252, 172, 17},  {251, 188, 33}, {249, 203, 53}, {245, 219, 76},
    {242, 234, 105}, {243, 246, 138}, {252, 255, 164}};
static const uint8_t turbo[33][3] = {
    {48, 18, 59},   {57, 42, 115},  {64, 64, 162},  {68, 86, 199},  {70, 107, 227}, {70, 128, 246},
    {66, 148, 255}, {55, 168, 250}, {40, 188, 235}, {28, 205, 216}, {24, 221, 194}, {31, 233, 175},
    {50, 242, 152}, {78, 249, 125}, {109, 254, 98}, {139, 255, 75}, {164, 252, 60}, {185, 246, 53},
    {205, 236, 52}, {223, 223, 55}, {238, 207, 58}, {248, 190, 57}, {253, 172, 52}, {254, 150, 43},
    {251, 126, 33}, {244, 102, 23}, {235, 80, 14},  {223, 63, 8},   {208, 47, 5},   {190, 33, 2},
    {169, 22, 1},   {146, 11, 1},   {122, 4, 3}};

void ex_palette_rgb(ex_palette pal, float t, uint8_t rgb[3]) {
    if (!(t == t)) t = 0; /* NaN */
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    if (pal == EX_PAL_GREY) {
        rgb[0] = rgb[1] = rgb[2] = (uint8_t)lrintf(t * 255.0f);
        return;
    }
    const uint8_t(*lut)[3] = pal == EX_PAL_TURBO ? turbo : inferno;
    float x = t * 32.0f;
    int i = (int)x;
    if (i >= 32) i = 31;
    float w = x - (float)i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lrintf((1.0f - w) * lut[i][c] + w * lut[i + 1][c]);
}

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column. */
static const struct {
    char c;
    uint8_t rows[7];
} font[] = {
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},
    {'3', {0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'/', {0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10}},
    {'a', {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f}},
    {'c', {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e}},
    {'d', {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f}},
    {'e', {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e}},
    {'f', {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08}},
    {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'l', {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'m', {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11}},
    {'o', {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e}},
    {'p', {0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
    {'s', {0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e}},
    {'t', {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d}},
};

void ex_draw_text(uint8_t *img, int w, int h, int x, int y, int scale, const char *text,
                  const uint8_t rgb[3]) {
    for (const char *p = text; *p; p++, x += 6 * scale) {
        const uint8_t *g = NULL;
        for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
            if (font[i].c == *p) g = font[i].rows;
        if (!g) continue; /* space and unknown characters: blank */
        for (int r = 0; r < 7 * scale; r++)
            for (int c = 0; c < 5 * scale; c++) {
                int px = x + c, py = y + r;
                if (px < 0 || py < 0 || px >= w || py >= h) continue;
                if (!((g[r / scale] >> (4 - c / scale)) & 1)) continue;
                memcpy(img + ((size_t)py * w + px) * 3, rgb, 3);
            }
    }
}

dm_status ex_resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh) {
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * 3);
        return DM_OK;
    }
    struct SwsContext *s = sws_getContext(sw, sh, AV_PIX_FMT_RGB24, dw, dh, AV_PIX_FMT_RGB24,
                                          SWS_BICUBIC, NULL, NULL, NULL);
    if (!s)
        return dm_error_set(DM_ERR_UNSUPPORTED, "swscale cannot resize %dx%d to %dx%d", sw, sh, dw,
                            dh);
    /* padded copies: swscale's SIMD paths may read and write a little past a row's end */
    int ils = FFALIGN(3 * sw, 64), ols = FFALIGN(3 * dw, 64);
    uint8_t *ib = av_malloc((size_t)ils * (sh + 1) + 64),
            *ob = av_malloc((size_t)ols * (dh + 1) + 64);
    if (!ib || !ob) {
        av_free(ib);
        av_free(ob);
        sws_freeContext(s);
        return dm_error_set(DM_ERR_NOMEM, "out of memory (resize)");
    }
    for (int y = 0; y < sh; y++)
        memcpy(ib + (size_t)y * ils, src + (size_t)y * sw * 3, (size_t)sw * 3);
    const uint8_t *in[4] = {ib, NULL, NULL, NULL};
    int in_ls[4] = {ils, 0, 0, 0};
    uint8_t *out[4] = {ob, NULL, NULL, NULL};
    int out_ls[4] = {ols, 0, 0, 0};
    sws_scale(s, in, in_ls, 0, sh, out, out_ls);
    for (int y = 0; y < dh; y++)
        memcpy(dst + (size_t)y * dw * 3, ob + (size_t)y * ols, (size_t)dw * 3);
    av_free(ib);
    av_free(ob);
    sws_freeContext(s);
    return DM_OK;
}
