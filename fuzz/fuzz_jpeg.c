/* fuzz_jpeg.c — libFuzzer target: the JPEG reader on arbitrary bytes; a decoded image has its dimensions
   checked, is resized (shrinking on one axis, enlarging on the other) and converted to model space. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Width x height of the first frame header (FF C0..CF but C4, C8, CC), or 0 when there is none. */
static uint64_t frame_pixels(const uint8_t *d, size_t n) {
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
    /* Images over 4 Mpixel are valid but only slow the search down (the reader bounds them itself). */
    if (frame_pixels(data, size) > ((uint64_t)1 << 22)) return 0;
    ddpm_image img;
    if (ddpm_jpeg_read_memory(data, size, &img) != DDPM_OK) {
        if (img.pixels || !ddpm_last_error()[0]) abort();
        return 0;
    }
    if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) || !img.pixels) abort();
    ddpm_image small;
    int ow = img.width > 1 ? img.width / 2 : 3, oh = img.height * 2 + 1;
    if (oh > 4096) oh = 4096;
    if (ddpm_image_resize(&img, ow, oh, &small) != DDPM_OK) abort();
    if (small.width != ow || small.height != oh || small.channels != img.channels) abort();
    size_t n = (size_t)small.width * (size_t)small.height * (size_t)small.channels;
    float *f = malloc(n * sizeof(float));
    if (f) {
        ddpm_image_to_f32(&small, f);
        for (size_t i = 0; i < n; i++)
            if (!(f[i] >= -1.0f && f[i] <= 1.0f)) abort();
    }
    free(f);
    ddpm_image_free(&small);
    ddpm_image_free(&img);
    return 0;
}
