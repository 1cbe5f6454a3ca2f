/* fuzz_png.c — libFuzzer target: the PNG reader on arbitrary bytes; a decoded image has its dimensions
   checked and is converted to model space. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Images over 4 Mpixel are valid but only slow the search down (the reader bounds them itself). */
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        uint64_t w = (uint64_t)data[16] << 24 | (uint64_t)data[17] << 16 | (uint64_t)data[18] << 8 | data[19];
        uint64_t h = (uint64_t)data[20] << 24 | (uint64_t)data[21] << 16 | (uint64_t)data[22] << 8 | data[23];
        if (w * h > ((uint64_t)1 << 22)) return 0;
    }
    ddpm_image img;
    if (ddpm_png_read_memory(data, size, &img) != DDPM_OK) {
        if (img.pixels || !ddpm_last_error()[0]) abort();
        return 0;
    }
    if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) || !img.pixels) abort();
    size_t n = (size_t)img.width * (size_t)img.height * (size_t)img.channels;
    if (n <= ((size_t)1 << 22)) {
        float *f = malloc(n * sizeof(float));
        if (f) {
            ddpm_image_to_f32(&img, f);
            for (size_t i = 0; i < n; i++)
                if (!(f[i] >= -1.0f && f[i] <= 1.0f)) abort();
        }
        free(f);
    }
    ddpm_image_free(&img);
    return 0;
}
