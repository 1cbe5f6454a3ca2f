/* resize.c — image resampling with a separable antialiasing filter: area average when shrinking, bilinear
   (half-pixel centres) when enlarging, exact copies at scale 1; 8-bit gray or RGB, rounded to nearest. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "io/resize.h"

#define RESIZE_MAX_DIM 65536   /* per side of the output */

/* The filter of one axis: output i is sum_k w[i * taps + k] * in[idx[i * taps + k]]. */
typedef struct {
    int taps;
    int *idx;
    float *w;
} axis;

static void axis_free(axis *a) {
    dd_free(a->idx);
    dd_free(a->w);
    a->idx = NULL;
    a->w = NULL;
}

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Window [x0, x0 + len) of an axis of `in` pixels onto `on` output pixels. */
static ddpm_status axis_make(axis *a, int in, double x0, double len, int on) {
    double scale = len / on;
    int shrink = scale > 1.0;
    double t = shrink ? ceil(scale) + 2.0 : 2.0;
    if (t > (double)in + 2.0) t = (double)in + 2.0;
    a->taps = (int)t;
    size_t n;
    if (dd_mul_size((size_t)on, (size_t)a->taps, &n) != 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "resize: filter of %d x %d taps is too large", on, a->taps);
    a->idx = dd_calloc(n, sizeof(int));
    a->w = dd_calloc(n, sizeof(float));
    if (!a->idx || !a->w) {
        axis_free(a);
        return DDPM_ERR_NOMEM;
    }
    for (int i = 0; i < on; i++) {
        int *ix = a->idx + (size_t)i * (size_t)a->taps;
        float *wt = a->w + (size_t)i * (size_t)a->taps;
        if (shrink) {
            /* area: the overlap of input pixel [j, j + 1) with output pixel [lo, hi), over its width */
            double lo = x0 + i * scale, hi = lo + scale, sum = 0.0;
            int k = 0;
            for (double j = floor(lo); j < hi && k < a->taps; j += 1.0, k++) {
                double ov = fmin(hi, j + 1.0) - fmax(lo, j);
                ix[k] = clampi((int)j, 0, in - 1);
                wt[k] = (float)(ov > 0.0 ? ov : 0.0);
                sum += wt[k];
            }
            for (int q = 0; q < k; q++) wt[q] = (float)(wt[q] / sum);   /* sum = scale up to rounding */
        } else {
            /* bilinear, align_corners false: output centre i + 0.5 sits at input x0 + (i + 0.5) scale */
            double c = x0 + (i + 0.5) * scale - 0.5;
            if (c < 0.0) c = 0.0;
            if (c > in - 1) c = in - 1;
            int j = (int)floor(c);
            double f = c - j;
            ix[0] = j;
            ix[1] = clampi(j + 1, 0, in - 1);
            wt[0] = (float)(1.0 - f);
            wt[1] = (float)f;
        }
    }
    return DDPM_OK;
}

ddpm_status dd_resize_window(const uint8_t *src, int w, int h, int C, double x0, double y0, double sw, double sh,
                             uint8_t *dst, int ow, int oh) {
    if (!src || !dst || w < 1 || h < 1 || C < 1 || C > 4 || ow < 1 || oh < 1 || !(sw > 0.0) || !(sh > 0.0) ||
        !(x0 >= 0.0) || !(y0 >= 0.0) || x0 + sw > w + 1e-6 || y0 + sh > h + 1e-6)
        return dd_error(DDPM_ERR_INVALID_ARG, "resize: bad window %.2f,%.2f %.2fx%.2f of a %dx%d image to %dx%d",
                        x0, y0, sw, sh, w, h, ow, oh);
    axis ax = {0, NULL, NULL}, ay = {0, NULL, NULL};
    ddpm_status s = axis_make(&ax, w, x0, sw, ow);
    if (s == DDPM_OK) s = axis_make(&ay, h, y0, sh, oh);
    if (s != DDPM_OK) {
        axis_free(&ax);
        return s;
    }
    /* only the input rows the vertical filter reads go through the horizontal pass */
    size_t ny = (size_t)oh * (size_t)ay.taps;
    int ymin = h - 1, ymax = 0;
    for (size_t i = 0; i < ny; i++) {
        if (ay.idx[i] < ymin) ymin = ay.idx[i];
        if (ay.idx[i] > ymax) ymax = ay.idx[i];
    }
    size_t rows = (size_t)(ymax - ymin + 1), rowlen = (size_t)ow * (size_t)C, n;
    float *tmp = NULL;
    if (dd_mul_size(rows, rowlen, &n) != 0) s = dd_error(DDPM_ERR_INVALID_ARG, "resize: image is too large");
    else if (!(tmp = dd_calloc(n, sizeof(float)))) s = DDPM_ERR_NOMEM;
    if (s != DDPM_OK) {
        axis_free(&ax);
        axis_free(&ay);
        return s;
    }
    size_t sstride = (size_t)w * (size_t)C;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *in = src + ((size_t)ymin + r) * sstride;
        float *o = tmp + r * rowlen;
        for (int x = 0; x < ow; x++) {
            const int *ix = ax.idx + (size_t)x * (size_t)ax.taps;
            const float *wt = ax.w + (size_t)x * (size_t)ax.taps;
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int k = 0; k < ax.taps; k++) acc += wt[k] * (float)in[(size_t)ix[k] * (size_t)C + (size_t)c];
                o[(size_t)x * (size_t)C + (size_t)c] = acc;
            }
        }
    }
    for (int y = 0; y < oh; y++) {
        const int *iy = ay.idx + (size_t)y * (size_t)ay.taps;
        const float *wt = ay.w + (size_t)y * (size_t)ay.taps;
        uint8_t *o = dst + (size_t)y * rowlen;
        for (size_t i = 0; i < rowlen; i++) {
            float acc = 0.0f;
            for (int k = 0; k < ay.taps; k++) acc += wt[k] * tmp[(size_t)(iy[k] - ymin) * rowlen + i];
            int q = (int)(acc + 0.5f);
            o[i] = (uint8_t)clampi(q, 0, 255);
        }
    }
    dd_free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    return DDPM_OK;
}

void dd_resize_center_window(int w, int h, int size, double *x0, double *y0, double *sw, double *sh) {
    int m = w < h ? w : h;
    double s = (double)size / m;   /* resized w x h is (w s) x (h s) */
    *sw = *sh = m;
    *x0 = floor(((double)w * s - size) / 2.0 + 0.5) / s;
    *y0 = floor(((double)h * s - size) / 2.0 + 0.5) / s;
    if (*x0 + *sw > w) *x0 = w - *sw;
    if (*y0 + *sh > h) *y0 = h - *sh;
}

ddpm_status ddpm_image_resize(const ddpm_image *in, int out_w, int out_h, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_resize: out is NULL");
    memset(out, 0, sizeof *out);
    if (!in || !in->pixels || in->width < 1 || in->height < 1 || (in->channels != 1 && in->channels != 3))
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_resize: need an image with sides >= 1 and 1 or 3 "
                        "channels");
    if (out_w < 1 || out_h < 1 || out_w > RESIZE_MAX_DIM || out_h > RESIZE_MAX_DIM)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_resize: output %dx%d is outside 1..%d per side", out_w,
                        out_h, RESIZE_MAX_DIM);
    ddpm_status s = ddpm_image_alloc(out, out_w, out_h, in->channels);
    if (s != DDPM_OK) return s;
    s = dd_resize_window(in->pixels, in->width, in->height, in->channels, 0.0, 0.0, in->width, in->height,
                         out->pixels, out_w, out_h);
    if (s != DDPM_OK) ddpm_image_free(out);
    return s;
}
