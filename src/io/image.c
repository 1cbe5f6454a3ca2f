/* image.c — conversions between model space [-1, 1] and 8-bit images: sample grids (also enlarged), image to
   float, nearest-neighbour enlargement and images stacked vertically. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/core.h"

#define GRID_MAX_SIDE 65536   /* bound on the grid's width and height in pixels */

/* [-1, 1] -> 0..255: round((x + 1) * 127.5), clamped; NaN -> 0. */
static uint8_t to_pixel(float x) {
    double v = ((double)x + 1.0) * 127.5;
    if (!(v > 0.0)) return 0;
    if (v >= 255.0) return 255;
    return (uint8_t)floor(v + 0.5);
}

ddpm_status ddpm_image_grid(ddpm_image *out, const float *x, int N, int C, int H, int W, int cols, int pad,
                            uint8_t pad_value) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_grid: out is NULL");
    memset(out, 0, sizeof *out);
    if (!x || N < 1 || (C != 1 && C != 3) || H < 1 || W < 1 || pad < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_grid: need x, N >= 1, C 1 or 3, H, W >= 1 and pad "
                        ">= 0 (got N=%d C=%d H=%d W=%d pad=%d)", N, C, H, W, pad);
    if (cols <= 0) {
        cols = 1;
        while ((int64_t)cols * cols < N) cols++;
    }
    if (cols > N) cols = N;
    int rows = N / cols + (N % cols != 0);
    int64_t gw = (int64_t)cols * ((int64_t)W + pad) + pad;   /* grid width in pixels */
    int64_t gh = (int64_t)rows * ((int64_t)H + pad) + pad;
    if (gw > GRID_MAX_SIDE || gh > GRID_MAX_SIDE)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_grid: grid of %lldx%lld pixels exceeds the limit "
                        "of %d per side", (long long)gw, (long long)gh, GRID_MAX_SIDE);
    ddpm_status s = ddpm_image_alloc(out, (int)gw, (int)gh, C);
    if (s != DDPM_OK) return s;
    memset(out->pixels, pad_value, (size_t)gw * (size_t)gh * (size_t)C);
    size_t plane = (size_t)H * (size_t)W;
    for (int n = 0; n < N; n++) {
        const float *img = x + (size_t)n * (size_t)C * plane;   /* [C, H, W] */
        size_t x0 = (size_t)pad + (size_t)(n % cols) * (size_t)(W + pad);
        size_t y0 = (size_t)pad + (size_t)(n / cols) * (size_t)(H + pad);
        for (int y = 0; y < H; y++) {
            uint8_t *row = out->pixels + ((y0 + (size_t)y) * (size_t)gw + x0) * (size_t)C;   /* [W, C] */
            for (int xx = 0; xx < W; xx++)
                for (int c = 0; c < C; c++)
                    row[(size_t)xx * (size_t)C + (size_t)c] =
                        to_pixel(img[(size_t)c * plane + (size_t)y * (size_t)W + (size_t)xx]);
        }
    }
    return DDPM_OK;
}

void ddpm_image_to_f32(const ddpm_image *img, float *out) {
    if (!img || !img->pixels || !out) return;
    size_t C = (size_t)img->channels, H = (size_t)img->height, W = (size_t)img->width;
    for (size_t c = 0; c < C; c++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++)
                out[(c * H + y) * W + x] = (float)(img->pixels[(y * W + x) * C + c] / 127.5 - 1.0);
}

ddpm_status ddpm_image_enlarge(const ddpm_image *in, int k, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_enlarge: out is NULL");
    memset(out, 0, sizeof *out);
    if (!in || !in->pixels || k < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_enlarge: need an image and k >= 1");
    if (in->width > INT_MAX / k || in->height > INT_MAX / k)
        return dd_error(DDPM_ERR_INVALID_ARG, "image too large to enlarge");
    ddpm_status st = ddpm_image_alloc(out, in->width * k, in->height * k, in->channels);
    if (st != DDPM_OK) return st;
    size_t C = (size_t)in->channels;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++)
            memcpy(out->pixels + ((size_t)y * (size_t)out->width + (size_t)x) * C,
                   in->pixels + ((size_t)(y / k) * (size_t)in->width + (size_t)(x / k)) * C, C);
    return DDPM_OK;
}

ddpm_status ddpm_image_grid_scaled(ddpm_image *out, const float *x, int N, int C, int H, int W, int cols,
                                   int scale) {
    ddpm_image grid;
    ddpm_status st = ddpm_image_grid(&grid, x, N, C, H, W, cols, 1, 255);
    if (st != DDPM_OK) {
        if (out) memset(out, 0, sizeof *out);
        return st;
    }
    const int side = H < W ? H : W;
    const int k = scale > 0 ? scale : side < 64 ? (64 + side - 1) / side : 1;
    st = ddpm_image_enlarge(&grid, k, out);
    ddpm_image_free(&grid);
    return st;
}

ddpm_status ddpm_image_stack(const ddpm_image *rows, int n, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_stack: out is NULL");
    memset(out, 0, sizeof *out);
    int W = 0, H = 0, C = n > 0 && rows ? rows[0].channels : 1;
    for (int i = 0; i < n && rows; i++) {
        if (rows[i].width > W) W = rows[i].width;
        if (rows[i].channels != C || H > INT_MAX - rows[i].height)
            return dd_error(DDPM_ERR_INVALID_ARG, "cannot stack the image rows");
        H += rows[i].height;
    }
    if (!rows || n < 1 || W < 1 || H < 1) return dd_error(DDPM_ERR_INVALID_ARG, "no image rows to stack");
    ddpm_status st = ddpm_image_alloc(out, W, H, C);
    if (st != DDPM_OK) return st;
    memset(out->pixels, 255, (size_t)W * (size_t)H * (size_t)C);
    int y0 = 0;
    for (int i = 0; i < n; i++) {
        int x0 = (W - rows[i].width) / 2;
        for (int y = 0; y < rows[i].height; y++)
            memcpy(out->pixels + (((size_t)(y0 + y) * (size_t)W + (size_t)x0) * (size_t)C),
                   rows[i].pixels + (size_t)y * (size_t)rows[i].width * (size_t)C,
                   (size_t)rows[i].width * (size_t)C);
        y0 += rows[i].height;
    }
    return DDPM_OK;
}
