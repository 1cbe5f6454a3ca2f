/* layout.c — NCHW <-> NHWC conversion of float images on the host. */
#include <stddef.h>

#include "core/core.h"

/* out[n, y, x, c] = inp[n, c, y, x]; inp [N, C, H, W], out [N, H, W, C]. One output row (n, y) per task:
   it reads C input rows of W contiguous floats and writes W C contiguous floats. */
void dd_nchw_to_nhwc(float *out, const float *inp, int N, int C, int H, int W) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int y = 0; y < H; y++) {
            float *o = out + ((size_t)n * H + y) * W * C;   /* [W, C] */
            for (int c = 0; c < C; c++) {
                const float *s = inp + (((size_t)n * C + c) * H + y) * W;   /* [W] */
                for (int x = 0; x < W; x++) o[(size_t)x * C + c] = s[x];
            }
        }
}

/* out[n, c, y, x] = inp[n, y, x, c]; inp [N, H, W, C], out [N, C, H, W]. */
void dd_nhwc_to_nchw(float *out, const float *inp, int N, int H, int W, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int y = 0; y < H; y++) {
            const float *s = inp + ((size_t)n * H + y) * W * C;   /* [W, C] */
            for (int c = 0; c < C; c++) {
                float *o = out + (((size_t)n * C + c) * H + y) * W;   /* [W] */
                for (int x = 0; x < W; x++) o[x] = s[(size_t)x * C + c];
            }
        }
}
