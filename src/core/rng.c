/* rng.c — Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw, SC'11) and the uniform and
   Gaussian streams built on it. Written here rather than taken from a library because the noise of image i
   at step k must be addressable by (seed, stream, counter) alone, identically on every platform and for
   every thread count; libc and most library generators are sequential. */
#include <math.h>

#include "core.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c[0] = hi1 ^ c[1] ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c[3] ^ k[1];
    c[3] = lo0;
}

void ddpm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) { k[0] += PHILOX_W0; k[1] += PHILOX_W1; }
        philox_round(c, k);
    }
    out[0] = c[0]; out[1] = c[1]; out[2] = c[2]; out[3] = c[3];
}

uint64_t ddpm_rng_stream(uint32_t purpose, uint32_t step, uint32_t item) {
    return ((uint64_t)(purpose & 0xffu) << 56) | ((uint64_t)(step & 0xffffffu) << 32) | (uint64_t)item;
}

/* Block j of stream s: counter = (j lo, j hi, s lo, s hi), key = (seed lo, seed hi). */
static inline void philox_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    ddpm_philox4x32_10(ctr, key, out);
}

/* Work below this many outputs stays on the calling thread. */
#define DD_RNG_PAR_MIN 16384

void ddpm_rng_uniform_u32(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t *out, size_t n) {
    /* word w = counter + i lives in block w / 4, lane w % 4 */
#pragma omp parallel for schedule(static) if (n >= DD_RNG_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        uint64_t w = counter + i;
        uint32_t b[4];
        philox_block(seed, stream, w >> 2, b);
        out[i] = b[w & 3];
    }
}

/* A 64-bit word (two lanes) to a double strictly inside (0, 1): (k + 0.5) 2^-53 with k the top 53 bits. */
static inline double u64_to_open01(uint32_t lo, uint32_t hi) {
    uint64_t v = ((uint64_t)hi << 32) | lo;
    return ((double)(v >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Value w = counter + i comes from block w / 2, lanes 2(w % 2), 2(w % 2) + 1. */
void ddpm_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t counter, double *out, size_t n) {
#pragma omp parallel for schedule(static) if (n >= DD_RNG_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        uint64_t w = counter + i;
        uint32_t b[4];
        philox_block(seed, stream, w >> 1, b);
        int l = (int)(w & 1) * 2;
        out[i] = u64_to_open01(b[l], b[l + 1]);
    }
}

/* Normal pair m (values 2m, 2m + 1) is Box-Muller of the two 53-bit uniforms of block m:
   z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), r = sqrt(-2 ln u1). Computed in double. */
static inline double normal_at(uint64_t seed, uint64_t stream, uint64_t w) {
    uint32_t b[4];
    philox_block(seed, stream, w >> 1, b);
    double u1 = u64_to_open01(b[0], b[1]);
    double u2 = u64_to_open01(b[2], b[3]);
    double r = sqrt(-2.0 * log(u1));
    double a = 6.283185307179586476925286766559 * u2;
    return (w & 1) ? r * sin(a) : r * cos(a);
}

void ddpm_rng_normal_f64(uint64_t seed, uint64_t stream, uint64_t counter, double *out, size_t n) {
#pragma omp parallel for schedule(static) if (n >= DD_RNG_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = normal_at(seed, stream, counter + i);
}

void ddpm_rng_normal_f32(uint64_t seed, uint64_t stream, uint64_t counter, float *out, size_t n) {
#pragma omp parallel for schedule(static) if (n >= DD_RNG_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = (float)normal_at(seed, stream, counter + i);
}
