/* ceiling.c — the machine's fp32 ceilings, measured: a multiply-add loop held in registers (the compute
   ceiling of a kernel) and a triad over arrays the size of a network's activations (the bandwidth ceiling of the
   elementwise passes). `ddpm bench --profile` prints every op's rate as a share of these. */
#include <omp.h>
#include <string.h>

#include "core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DD_CEIL_X86 1
#endif

/* Each loop runs `iters` iterations of 12 independent multiply-add chains (enough to cover the latency of two
   FMA ports) and returns a sum so that nothing is optimised away; a -> a m + c converges to c / (1 - m), so the
   values stay normal. */
#ifdef DD_CEIL_X86
__attribute__((target("avx512f"))) static double dd_fma_avx512(long iters) {
    const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
    __m512 a[12];
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps(1.0f + 0.01f * (float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ps(a[k], m, c);
    __m512 s = a[0];
    for (int k = 1; k < 12; k++) s = _mm512_add_ps(s, a[k]);
    float out[16];
    _mm512_storeu_ps(out, s);
    return (double)out[0];
}

__attribute__((target("avx2,fma"))) static double dd_fma_avx2(long iters) {
    const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-4f);
    __m256 a[12];
    for (int k = 0; k < 12; k++) a[k] = _mm256_set1_ps(1.0f + 0.01f * (float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm256_fmadd_ps(a[k], m, c);
    __m256 s = a[0];
    for (int k = 1; k < 12; k++) s = _mm256_add_ps(s, a[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return (double)out[0];
}
#endif

static double dd_fma_scalar(long iters) {
    float a[12];
    for (int k = 0; k < 12; k++) a[k] = 1.0f + 0.01f * (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = a[k] * 0.999f + 1e-4f;
    double s = 0.0;
    for (int k = 0; k < 12; k++) s += a[k];
    return s;
}

/* The widest loop this CPU runs, and its lanes. */
static double (*dd_fma_pick(int *lanes))(long) {
#ifdef DD_CEIL_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *lanes = 16;
        return dd_fma_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *lanes = 8;
        return dd_fma_avx2;
    }
#endif
    *lanes = 1;
    return dd_fma_scalar;
}

static volatile double dd_ceiling_sink;

/* GFLOP/s of `threads` threads each running the loop `iters` times (the best of `reps`). */
static double dd_fma_rate(double (*fn)(long), int lanes, int threads, long iters, int reps) {
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double sum = 0.0;
        const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += fn(iters);
        const double dt = omp_get_wtime() - t0;
        dd_ceiling_sink = sum;
        const double rate = dt > 0.0 ? 2.0 * 12.0 * lanes * (double)iters * threads / dt * 1e-9 : 0.0;
        if (rate > best) best = rate;
    }
    return best;
}

ddpm_status ddpm_measure_ceilings(int threads, double *gflops, double *gbytes) {
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads < 1) threads = 1;
    if (gflops) {
        int lanes = 1;
        double (*fn)(long) = dd_fma_pick(&lanes);
        /* calibrate to about 60 ms per repetition */
        const double probe = dd_fma_rate(fn, lanes, threads, 200000, 1);
        long iters = probe > 0.0 ? (long)(0.06 * probe * 1e9 / (2.0 * 12.0 * lanes * threads)) : 200000;
        if (iters < 200000) iters = 200000;
        *gflops = dd_fma_rate(fn, lanes, threads, iters, 3);
    }
    if (gbytes) {
        const long n = 4L << 20;   /* 16 MiB per array */
        float *a = dd_alloc(3 * (size_t)n * sizeof(float));
        if (!a) return DDPM_ERR_NOMEM;
        float *b = a + n, *c = b + n;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (long i = 0; i < n; i++) a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;   /* first touch by the workers */
        double best = 0.0;
        for (int r = 0; r < 8; r++) {
            const double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static) num_threads(threads)
            for (long i = 0; i < n; i++) a[i] = b[i] + 0.5f * c[i];
            const double dt = omp_get_wtime() - t0;
            const double rate = dt > 0.0 ? 3.0 * (double)n * sizeof(float) / dt * 1e-9 : 0.0;
            if (rate > best) best = rate;
        }
        dd_ceiling_sink = a[n / 2];
        dd_free(a);
        *gbytes = best;
    }
    return DDPM_OK;
}
