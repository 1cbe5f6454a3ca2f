/* image_input.c — images given to a trained model (img2img, inpainting, denoising): a PNG or JPEG read by its
   content, shaped as the training data is (shorter side resized to the model's size with the antialiasing
   filter, then center-cropped; io/resize.h) into model space, and inpainting masks thresholded to 0 / 1. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "io/resize.h"

#define INPUT_MAX_SIZE 16384   /* model side in pixels */

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

static int is_png(const uint8_t *p, size_t n) { return n >= 8 && memcmp(p, png_sig, 8) == 0; }

static int is_jpeg(const uint8_t *p, size_t n) { return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF; }

ddpm_status ddpm_image_read(const char *path, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !path[0]) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_read: empty path");
    struct stat sb;
    if (stat(path, &sb) != 0) return dd_error(DDPM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return dd_error(DDPM_ERR_IO, "%s: is a directory, not an image file", path);
    if (!S_ISREG(sb.st_mode)) return dd_error(DDPM_ERR_IO, "%s: not a regular file", path);
    uint8_t sig[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error(DDPM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(sig, 1, sizeof sig, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) return dd_error(DDPM_ERR_IO, "%s: cannot read", path);
    /* the readers open the file again: their own size limits and messages naming the file */
    if (is_png(sig, n)) return ddpm_png_read(path, out);
    if (is_jpeg(sig, n)) return ddpm_jpeg_read(path, out);
    return dd_error(DDPM_ERR_FORMAT, "%s is neither a PNG nor a JPEG file", path);
}

ddpm_status ddpm_image_read_memory(const void *buf, size_t len, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_read_memory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_read_memory: buf is NULL");
    const uint8_t *p = buf;
    if (is_png(p, len)) return ddpm_png_read_memory(buf, len, out);
    if (is_jpeg(p, len)) return ddpm_jpeg_read_memory(buf, len, out);
    return dd_error(DDPM_ERR_FORMAT, "the image data (%zu bytes) is neither a PNG nor a JPEG file", len);
}

static ddpm_status check_image(const ddpm_image *img, const char *fn) {
    if (!img || !img->pixels || img->width < 1 || img->height < 1 || (img->channels != 1 && img->channels != 3))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: need an image with sides >= 1 and 1 or 3 channels", fn);
    return DDPM_OK;
}


/* The image resized (shorter side to size) and center-cropped to size x size, HWC in a new dd_alloc buffer. */
static ddpm_status fit(const uint8_t *px, int w, int h, int C, int size, uint8_t **out) {
    size_t n = (size_t)size * (size_t)size * (size_t)C;
    uint8_t *dst = dd_alloc(n);
    if (!dst) return DDPM_ERR_NOMEM;
    double x0, y0, sw, sh;
    dd_resize_center_window(w, h, size, &x0, &y0, &sw, &sh);
    ddpm_status st = dd_resize_window(px, w, h, C, x0, y0, sw, sh, dst, size, size);
    if (st != DDPM_OK) {
        dd_free(dst);
        return st;
    }
    *out = dst;
    return DDPM_OK;
}

ddpm_status ddpm_image_to_model(const ddpm_image *img, int size, int channels, float *out) {
    ddpm_status st = check_image(img, "ddpm_image_to_model");
    if (st != DDPM_OK) return st;
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_to_model: out is NULL");
    if (size < 1 || size > INPUT_MAX_SIZE || (channels != 1 && channels != 3))
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_to_model: a model of %dx%d pixels with %d channels (need "
                        "a size of 1..%d and 1 or 3 channels)", size, size, channels, INPUT_MAX_SIZE);
    /* the other channel count is converted as the training data is: RGB to gray by Y = 0.299 R + 0.587 G +
       0.114 B (ITU-R BT.601, rounded), gray to RGB by repeating it */
    const size_t npix = (size_t)img->width * (size_t)img->height;
    const uint8_t *src = img->pixels;
    uint8_t *conv = NULL;
    if (img->channels != channels) {
        if (!(conv = dd_alloc(npix * (size_t)channels))) return DDPM_ERR_NOMEM;
        const uint8_t *p = img->pixels;
        for (size_t i = 0; i < npix; i++) {
            if (channels == 1)
                conv[i] = (uint8_t)((299u * p[3 * i] + 587u * p[3 * i + 1] + 114u * p[3 * i + 2] + 500u) / 1000u);
            else
                conv[3 * i] = conv[3 * i + 1] = conv[3 * i + 2] = p[i];
        }
        src = conv;
    }
    uint8_t *px = NULL;
    st = fit(src, img->width, img->height, channels, size, &px);
    dd_free(conv);
    if (st != DDPM_OK) return st;
    ddpm_image fitted = {size, size, channels, px};
    ddpm_image_to_f32(&fitted, out);   /* [C, size, size] = p / 127.5 - 1 */
    dd_free(px);
    return DDPM_OK;
}

ddpm_status ddpm_mask_to_model(const ddpm_image *mask, int size, float *out) {
    ddpm_status st = check_image(mask, "ddpm_mask_to_model");
    if (st != DDPM_OK) return st;
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_mask_to_model: out is NULL");
    if (size < 1 || size > INPUT_MAX_SIZE)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_mask_to_model: size %d is out of range (1..%d)", size,
                        INPUT_MAX_SIZE);
    const size_t npix = (size_t)mask->width * (size_t)mask->height;
    const uint8_t *gray = mask->pixels;
    uint8_t *conv = NULL;
    if (mask->channels == 3) {   /* Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), rounded, as the datasets */
        if (!(conv = dd_alloc(npix))) return DDPM_ERR_NOMEM;
        const uint8_t *p = mask->pixels;
        for (size_t i = 0; i < npix; i++)
            conv[i] = (uint8_t)((299u * p[3 * i] + 587u * p[3 * i + 1] + 114u * p[3 * i + 2] + 500u) / 1000u);
        gray = conv;
    }
    uint8_t *px = NULL;
    st = fit(gray, mask->width, mask->height, 1, size, &px);
    dd_free(conv);
    if (st != DDPM_OK) return st;
    for (size_t i = 0; i < (size_t)size * (size_t)size; i++) out[i] = px[i] >= 128 ? 1.0f : 0.0f;
    dd_free(px);
    return DDPM_OK;
}
