/* dropout.c — dropout whose mask comes from the counter-based RNG, so it is recomputed in backward (never
   stored) and is the same for any thread count. */
#include "backend/reference/ref_ops.h"

/* Elements per RNG call: the uniforms of one chunk live in a stack buffer (no allocation). */
#define DD_DROPOUT_CHUNK 256

/* keep_i = uniform(seed, stream, i) >= p;  y_i = keep_i ? x_i / (1 - p) : 0, with the scale rounded to float.
   p <= 0 copies (y = x; dinp = dout); p >= 1 drops everything. */
static void dropout_apply(float *dst, const float *src, size_t n, double p, uint64_t seed, uint64_t stream,
                          int acc) {
    if (p <= 0.0) {
        for (size_t i = 0; i < n; i++) dst[i] = acc ? dst[i] + src[i] : src[i];
        return;
    }
    if (p >= 1.0) {
        if (!acc)
            for (size_t i = 0; i < n; i++) dst[i] = 0.0f;
        return;
    }
    const float scale = (float)(1.0 / (1.0 - p));
    const size_t nchunks = (n + DD_DROPOUT_CHUNK - 1) / DD_DROPOUT_CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++) {
        double u[DD_DROPOUT_CHUNK];
        const size_t i0 = k * DD_DROPOUT_CHUNK;
        const size_t m = n - i0 < DD_DROPOUT_CHUNK ? n - i0 : DD_DROPOUT_CHUNK;
        ddpm_rng_uniform_f64(seed, stream, (uint64_t)i0, u, m);
        for (size_t j = 0; j < m; j++) {
            const float y = u[j] >= p ? src[i0 + j] * scale : 0.0f;
            dst[i0 + j] = acc ? dst[i0 + j] + y : y;
        }
    }
}

void dd_dropout_forward(float *out, const float *inp, size_t n, double p, uint64_t seed, uint64_t stream) {
    dropout_apply(out, inp, n, p, seed, stream, 0);
}

/* dinp_i = keep_i ? dout_i / (1 - p) : 0 (the forward's mask and scale), acc = 1 adds. */
void dd_dropout_backward(float *dinp, const float *dout, size_t n, double p, uint64_t seed, uint64_t stream,
                         int acc) {
    dropout_apply(dinp, dout, n, p, seed, stream, acc);
}
