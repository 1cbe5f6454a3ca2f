/* fuzz_image_input.c — libFuzzer target: an image file given to a trained model (ddpm_image_read_memory: PNG or
   JPEG by content, anything else refused), shaped for gray and RGB models of 28 and 32 pixels (either channel
   count is converted to the model's) and as an inpainting mask; every value in model space must lie in [-1, 1],
   every mask value be 0 or 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Width x height from a PNG IHDR or the first JPEG frame header, or 0 when there is none. */
static uint64_t declared_pixels(const uint8_t *d, size_t n) {
    if (n >= 24 && memcmp(d + 12, "IHDR", 4) == 0) {
        uint64_t w = (uint64_t)d[16] << 24 | (uint64_t)d[17] << 16 | (uint64_t)d[18] << 8 | d[19];
        uint64_t h = (uint64_t)d[20] << 24 | (uint64_t)d[21] << 16 | (uint64_t)d[22] << 8 | d[23];
        return w * h;
    }
    for (size_t i = 2; i + 9 <= n; i++) {
        if (d[i] != 0xFF || d[i + 1] < 0xC0 || d[i + 1] > 0xCF || d[i + 1] == 0xC4 || d[i + 1] == 0xC8 ||
            d[i + 1] == 0xCC)
            continue;
        uint64_t h = (uint64_t)d[i + 5] << 8 | d[i + 6], w = (uint64_t)d[i + 7] << 8 | d[i + 8];
        return w * h;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Images over 4 Mpixel are valid but only slow the search down (the readers bound them themselves). */
    if (declared_pixels(data, size) > ((uint64_t)1 << 22)) return 0;
    ddpm_image img;
    if (ddpm_image_read_memory(data, size, &img) != DDPM_OK) {
        if (img.pixels || !ddpm_last_error()[0]) abort();
        return 0;
    }
    if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) || !img.pixels) abort();
    static const int shapes[3][2] = {{28, 1}, {28, 3}, {32, 3}};   /* size, channels */
    float *out = malloc(3 * 32 * 32 * sizeof(float));
    if (!out) abort();
    for (int k = 0; k < 3; k++) {
        const int S = shapes[k][0], C = shapes[k][1];
        /* the other channel count is converted (BT.601 luma, or gray repeated), never refused */
        if (ddpm_image_to_model(&img, S, C, out) != DDPM_OK) abort();
        for (int i = 0; i < C * S * S; i++)
            if (!(out[i] >= -1.0f && out[i] <= 1.0f)) abort();
    }
    if (ddpm_mask_to_model(&img, 28, out) != DDPM_OK) abort();
    for (int i = 0; i < 28 * 28; i++)
        if (out[i] != 0.0f && out[i] != 1.0f) abort();
    free(out);
    ddpm_image_free(&img);
    return 0;
}
