/* test_rng.c — Philox4x32-10 known answers, stream addressing, Gaussian moments, thread-count invariance. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Random123's kat_vectors for philox4x32 with 10 rounds: counter, key, expected output. */
static const uint32_t kat[3][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
     0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
};

static void test_kat(void) {
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        ddpm_philox4x32_10(kat[i], kat[i] + 4, out);
        for (int j = 0; j < 4; j++)
            CHECK_MSG(out[j] == kat[i][6 + j], "vector %d word %d: got %08x want %08x", i, j, out[j], kat[i][6 + j]);
    }
}

static void test_addressing(void) {
    /* Any window of a stream equals the same slice of a longer draw. */
    enum { N = 1000 };
    double *all = malloc(sizeof(double) * N), *part = malloc(sizeof(double) * N);
    uint64_t s = ddpm_rng_stream(DDPM_STREAM_SAMPLER, 17, 3);
    ddpm_rng_normal_f64(7, s, 0, all, N);
    for (size_t off = 0; off < 10; off++) {
        ddpm_rng_normal_f64(7, s, off + 101, part, 50);
        CHECK(memcmp(part, all + off + 101, 50 * sizeof(double)) == 0);
    }
    /* Different seeds and streams give different numbers. */
    ddpm_rng_normal_f64(8, s, 0, part, N);
    CHECK(memcmp(part, all, N * sizeof(double)) != 0);
    ddpm_rng_normal_f64(7, ddpm_rng_stream(DDPM_STREAM_SAMPLER, 17, 4), 0, part, N);
    CHECK(memcmp(part, all, N * sizeof(double)) != 0);
    CHECK(ddpm_rng_stream(1, 2, 3) == ((1ull << 56) | (2ull << 32) | 3ull));
    /* u32 words are the Philox output lanes in order. */
    uint32_t w[8], blk[4];
    ddpm_rng_uniform_u32(99, 5, 0, w, 8);
    uint32_t ctr[4] = {1, 0, 5, 0}, key[2] = {99, 0};
    ddpm_philox4x32_10(ctr, key, blk);
    CHECK(memcmp(w + 4, blk, sizeof blk) == 0);
    /* float stream equals the rounded double stream */
    float *f = malloc(sizeof(float) * N);
    ddpm_rng_normal_f32(7, s, 0, f, N);
    int same = 1;
    for (int i = 0; i < N; i++) same &= f[i] == (float)all[i];
    CHECK(same);
    free(all);
    free(part);
    free(f);
}

static void test_moments(void) {
    enum { N = 2000000 };
    double *z = malloc(sizeof(double) * N), *u = malloc(sizeof(double) * N);
    ddpm_rng_normal_f64(12345, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 0), 0, z, N);
    ddpm_rng_uniform_f64(12345, 9, 0, u, N);
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0, um = 0, uv = 0, umin = 1, umax = 0;
    long tail = 0;
    for (int i = 0; i < N; i++) {
        double x = z[i];
        m1 += x; m2 += x * x; m3 += x * x * x; m4 += x * x * x * x;
        if (fabs(x) > 3) tail++;
        um += u[i]; uv += (u[i] - 0.5) * (u[i] - 0.5);
        if (u[i] < umin) umin = u[i];
        if (u[i] > umax) umax = u[i];
    }
    m1 /= N; m2 /= N; m3 /= N; m4 /= N; um /= N; uv /= N;
    /* standard errors at N = 2e6: mean 7e-4, var 1e-3, skew 1.7e-3, kurtosis 5.5e-3; allow ~5 sigma */
    CHECK_MSG(fabs(m1) < 4e-3, "mean %g", m1);
    CHECK_MSG(fabs(m2 - 1) < 5e-3, "variance %g", m2);
    CHECK_MSG(fabs(m3) < 1e-2, "third moment %g", m3);
    CHECK_MSG(fabs(m4 - 3) < 3e-2, "fourth moment %g", m4);
    double p3 = (double)tail / N; /* P(|z| > 3) = 0.0026998 */
    CHECK_MSG(fabs(p3 - 0.0026998) < 3e-4, "P(|z|>3) = %g", p3);
    CHECK_MSG(fabs(um - 0.5) < 2e-3 && fabs(uv - 1.0 / 12) < 1e-3, "uniform mean %g var %g", um, uv);
    CHECK(umin > 0 && umax < 1);
    free(z);
    free(u);
}

static void test_threads(void) {
    enum { N = 1 << 18 };
    float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    uint64_t s = ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0);
    ddpm_set_threads(1);
    ddpm_rng_normal_f32(3, s, 5, a, N);
    ddpm_set_threads(4);
    ddpm_rng_normal_f32(3, s, 5, b, N);
    CHECK(memcmp(a, b, sizeof(float) * N) == 0);
    /* split into uneven pieces on several threads */
    ddpm_set_threads(3);
    ddpm_rng_normal_f32(3, s, 5, b, 1000);
    ddpm_rng_normal_f32(3, s, 1005, b + 1000, N - 1000);
    CHECK(memcmp(a, b, sizeof(float) * N) == 0);
    ddpm_set_threads(0);
    free(a);
    free(b);
}

int main(void) {
    test_kat();
    test_addressing();
    test_moments();
    test_threads();
    return dd_test_finish("test_rng");
}
