/* resize.h — internal image resampling shared by the resize API and the dataset loaders. */
#ifndef DD_IO_RESIZE_H
#define DD_IO_RESIZE_H

#include "core/core.h"

/* Resamples the window [x0, x0 + sw) x [y0, y0 + sh) (source pixel units, may be fractional, inside the
   image) of an 8-bit interleaved image src (w x h, C channels) to dst (ow x oh, C channels). Per axis: area
   average when shrinking, bilinear with half-pixel centres when enlarging, an exact copy at scale 1 on whole
   pixels. Taps outside the window but inside the image are used; edges are clamped. */
ddpm_status dd_resize_window(const uint8_t *src, int w, int h, int C, double x0, double y0, double sw, double sh,
                             uint8_t *dst, int ow, int oh);

/* The window of a w x h image that "resize so the shorter side is size, then center-crop size x size" keeps,
   in source pixels (the crop offset is rounded to whole pixels of the resized image). */
void dd_resize_center_window(int w, int h, int size, double *x0, double *y0, double *sw, double *sh);

#endif
