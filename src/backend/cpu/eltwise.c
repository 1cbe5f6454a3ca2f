/* eltwise.c — the bandwidth-bound glue of the U-Net (SiLU, residual add, per-channel bias, nearest upsample,
   channel concat, MSE loss) as OpenMP loops simple enough for the compiler to vectorise at baseline x86-64,
   and the vectorised exponential rows the other fused kernels share (GroupNorm+SiLU, softmax), dispatched at
   run time to AVX-512 / AVX2 clones; reductions sum in double in a fixed order, so results do not depend on
   the thread count. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"

/* Below this many elements a loop runs on the calling thread (a parallel region costs more). */
#define DD_EW_PAR_MIN 32768
/* MSE: partial sums over fixed chunks, combined in chunk order (independent of the thread count). */
#define DD_MSE_CHUNK 4096
#define DD_MSE_CHUNKS_PER_ROUND 256
/* Channel block of the bias-gradient reduction (stack accumulators). */
#define DD_EW_CBLOCK 64
/* Elements per task of the element-wise transcendental loops. */
#define DD_EW_ROW 4096

/* Row functions with clones for AVX-512 and x86-64-v3 (AVX2 + FMA) picked at load time (GCC ifunc); baseline
   x86-64 otherwise. Each element is computed by the same IEEE operations in every clone (explicit fmaf, which is
   exactly rounded everywhere: an FMA instruction in the vector clones, libm's fmaf in the baseline one; no other
   contraction, no reordering across elements), so the clones give identical bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DD_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define DD_CLONES
#endif

/* ------------------------------------------------------------------ vectorisable exp */

/* Order-preserving map between a float's bits and a signed integer (exact for every non-NaN value): a row max
   becomes an integer max reduction, which vectorises (a float one does not without fast-math: GCC turns the
   comparison into control flow it cannot if-convert under -ftrapping-math). */
static inline int32_t dd_fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u ^= (0u - (u >> 31)) >> 1;   /* negative: flip the magnitude bits */
    int32_t k;
    memcpy(&k, &u, sizeof k);
    return k;
}

static inline float dd_funkey(int32_t k) {
    uint32_t u;
    memcpy(&u, &k, sizeof u);
    u ^= (0u - (u >> 31)) >> 1;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t dd_fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* e^x in float, branch-free so that loops over it vectorise: Cody-Waite reduction x = n ln2 + f, |f| <= ln2/2,
   Cephes' degree-7 polynomial (max rel. error 8e-8 against the exact value, measured), 2^n assembled in the
   exponent bits. x is clamped to [-87.33654, 88] with two integer minima on its bits (signed: the positive side,
   unsigned: the negative side), so e^x stays in [1.2e-38, 1.7e38]: no denormals, no overflow. NaN and +-inf
   inputs return NaN (x - x is added), which keeps a diverging run visible. */
static inline float dd_exp_approx(float x0) {
    uint32_t u = dd_fbits(x0);
    int32_t si;
    memcpy(&si, &u, sizeof si);
    const int32_t hi = (int32_t)dd_fbits(88.0f);
    si = si > hi ? hi : si;
    memcpy(&u, &si, sizeof u);
    const uint32_t lo = dd_fbits(-87.33654f);
    u = u > lo ? lo : u;
    float x;
    memcpy(&x, &u, sizeof x);
    const float magic = 12582912.0f;              /* 1.5 * 2^23: adding it rounds to an integer */
    const float r = fmaf(x, 1.44269504088896341f, magic);
    const uint32_t rb = dd_fbits(r);
    const float n = r - magic;                    /* round(x / ln2), in [-126, 127] */
    float f = fmaf(n, -0.693359375f, x);
    f = fmaf(n, 2.12194440e-4f, f);
    float p = 1.9875691500e-4f;
    p = fmaf(p, f, 1.3981999507e-3f);
    p = fmaf(p, f, 8.3334519073e-3f);
    p = fmaf(p, f, 4.1665795894e-2f);
    p = fmaf(p, f, 1.6666665459e-1f);
    p = fmaf(p, f, 5.0000001201e-1f);
    p = fmaf(p, f * f, f) + 1.0f;
    const uint32_t eb = (rb - 0x4B400000u + 127u) << 23;   /* bits of 2^n */
    float s;
    memcpy(&s, &eb, sizeof s);
    return fmaf(p, s, x0 - x0);
}

/* max_i x[i], n >= 1, exact (NaN is not propagated). */
static inline float dd_row_max(const float *x, size_t n) {
    int32_t m = dd_fkey(x[0]);
    for (size_t i = 1; i < n; i++) {
        const int32_t k = dd_fkey(x[i]);
        m = k > m ? k : m;
    }
    return dd_funkey(m);
}

/* The row functions run their vector loop over whole blocks of DD_EW_TAIL elements and pass the remainder
   through a zero-padded block, so that short rows (softmax over 49 or 196 keys) never take a scalar loop. */
#define DD_EW_TAIL 16

/* y[i] = e^x[i] (y may be x). */
DD_CLONES void dd_vexp(float *y, const float *x, size_t n) {
    const size_t nv = n - n % DD_EW_TAIL;
    for (size_t i = 0; i < nv; i++) y[i] = dd_exp_approx(x[i]);
    if (nv < n) {
        float t[DD_EW_TAIL] = {0};
        memcpy(t, x + nv, (n - nv) * sizeof(float));
        for (int i = 0; i < DD_EW_TAIL; i++) t[i] = dd_exp_approx(t[i]);
        memcpy(y + nv, t, (n - nv) * sizeof(float));
    }
}

/* y[i] = 1 / (1 + e^-x[i]) (y may be x). */
DD_CLONES void dd_vsigmoid(float *y, const float *x, size_t n) {
    const size_t nv = n - n % DD_EW_TAIL;
    for (size_t i = 0; i < nv; i++) y[i] = 1.0f / (1.0f + dd_exp_approx(-x[i]));
    if (nv < n) {
        float t[DD_EW_TAIL] = {0};
        memcpy(t, x + nv, (n - nv) * sizeof(float));
        for (int i = 0; i < DD_EW_TAIL; i++) t[i] = 1.0f / (1.0f + dd_exp_approx(-t[i]));
        memcpy(y + nv, t, (n - nv) * sizeof(float));
    }
}

/* y[i] = x[i] sigmoid(x[i]) (y may be x). */
DD_CLONES void dd_vsilu(float *y, const float *x, size_t n) {
    const size_t nv = n - n % DD_EW_TAIL;
    for (size_t i = 0; i < nv; i++) y[i] = x[i] * (1.0f / (1.0f + dd_exp_approx(-x[i])));
    if (nv < n) {
        float t[DD_EW_TAIL] = {0};
        memcpy(t, x + nv, (n - nv) * sizeof(float));
        for (int i = 0; i < DD_EW_TAIL; i++) t[i] = t[i] * (1.0f / (1.0f + dd_exp_approx(-t[i])));
        memcpy(y + nv, t, (n - nv) * sizeof(float));
    }
}

/* x = softmax(x) over n >= 1 elements: e^(x - max) summed in DD_EW_TAIL lane partials, added pairwise (a fixed
   order, the same in every clone), each multiplied by 1 / sum. */
DD_CLONES void dd_vsoftmax(float *x, size_t n) {
    const float mx = dd_row_max(x, n);
    const size_t nv = n - n % DD_EW_TAIL, nt = n - nv;
    float part[DD_EW_TAIL] = {0}, t[DD_EW_TAIL];
    /* the tail first, from the last whole block of the row (still the inputs) when there is one: lane
       DD_EW_TAIL - nt + m of t is element nv + m */
    if (nt && n >= DD_EW_TAIL)
        for (int l = 0; l < DD_EW_TAIL; l++) t[l] = dd_exp_approx(x[n - DD_EW_TAIL + (size_t)l] - mx);
    for (size_t i = 0; i < nv; i += DD_EW_TAIL)   /* exp and the partial sums in one pass */
        for (int l = 0; l < DD_EW_TAIL; l++) {
            const float e = dd_exp_approx(x[i + l] - mx);
            x[i + l] = e;
            part[l] += e;
        }
    if (nt && n >= DD_EW_TAIL) {
        for (size_t m = 0; m < nt; m++) {
            x[nv + m] = t[DD_EW_TAIL - nt + m];
            part[m] += x[nv + m];
        }
    } else if (nt) {   /* a row shorter than a block: through a zero-padded one */
        for (int l = 0; l < DD_EW_TAIL; l++) t[l] = (size_t)l < nt ? x[nv + (size_t)l] : 0.0f;
        for (int l = 0; l < DD_EW_TAIL; l++) t[l] = dd_exp_approx(t[l] - mx);
        for (size_t m = 0; m < nt; m++) {
            x[nv + m] = t[m];
            part[m] += t[m];
        }
    }
    /* the lane partials summed pairwise (lanes l and l + w for w = 8, 4, 2, 1): four dependent adds, not 16 */
    for (int w = DD_EW_TAIL / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) part[l] += part[l + w];
    const float iz = 1.0f / part[0];
    for (size_t i = 0; i < n; i++) x[i] *= iz;
}

/* g[i] = d[i] s (1 + x[i] (1 - s)), s = sigmoid(x[i]); added to g when acc. */
DD_CLONES static void dd_silu_grad_row(float *g, const float *d, const float *x, size_t n, int acc) {
    if (acc) {
        for (size_t i = 0; i < n; i++) {
            const float s = 1.0f / (1.0f + dd_exp_approx(-x[i]));
            g[i] += d[i] * s * (1.0f + x[i] * (1.0f - s));
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const float s = 1.0f / (1.0f + dd_exp_approx(-x[i]));
            g[i] = d[i] * s * (1.0f + x[i] * (1.0f - s));
        }
    }
}

/* ------------------------------------------------------------------ SiLU */

/* out = x sigmoid(x), sigmoid(x) = 1 / (1 + e^-x). */
void dd_silu_forward(float *out, const float *inp, size_t n) {
    const long long rows = (long long)((n + DD_EW_ROW - 1) / DD_EW_ROW);
#pragma omp parallel for schedule(static) if (n > DD_EW_PAR_MIN)
    for (long long r = 0; r < rows; r++) {
        const size_t i0 = (size_t)r * DD_EW_ROW, m = n - i0 < DD_EW_ROW ? n - i0 : DD_EW_ROW;
        dd_vsilu(out + i0, inp + i0, m);
    }
}

/* dinp = dout s (1 + x (1 - s)), s = sigmoid(x); acc = 1 adds. */
void dd_silu_backward(float *dinp, const float *dout, const float *inp, size_t n, int acc) {
    const long long rows = (long long)((n + DD_EW_ROW - 1) / DD_EW_ROW);
#pragma omp parallel for schedule(static) if (n > DD_EW_PAR_MIN)
    for (long long r = 0; r < rows; r++) {
        const size_t i0 = (size_t)r * DD_EW_ROW, m = n - i0 < DD_EW_ROW ? n - i0 : DD_EW_ROW;
        dd_silu_grad_row(dinp + i0, dout + i0, inp + i0, m, acc);
    }
}

/* ------------------------------------------------------------------ residual add, channel bias */

/* out = alpha (a + b), alpha rounded to float (out may alias a or b). */
void dd_add_forward(float *out, const float *a, const float *b, double alpha, size_t n) {
    const float al = (float)alpha;
    const long long m = (long long)n;
    if (al == 1.0f) {
#pragma omp parallel for schedule(static) if (m > DD_EW_PAR_MIN)
        for (long long i = 0; i < m; i++) out[i] = a[i] + b[i];
    } else {
#pragma omp parallel for schedule(static) if (m > DD_EW_PAR_MIN)
        for (long long i = 0; i < m; i++) out[i] = al * (a[i] + b[i]);
    }
}

/* out[n, p, c] = inp[n, p, c] + bias[n, c]; inp, out [N, HW, C], bias [N, C]. */
void dd_add_channel_bias_forward(float *out, const float *inp, const float *bias, int N, int HW, int C) {
    const long long rows = (long long)N * HW;
#pragma omp parallel for schedule(static) if (rows * C > DD_EW_PAR_MIN)
    for (long long r = 0; r < rows; r++) {
        const float *bn = bias + (size_t)(r / HW) * C;   /* [C] */
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        for (int c = 0; c < C; c++) o[c] = x[c] + bn[c];
    }
}

/* dinp = dout (acc = 1 adds); dbias[n, c] += sum_p dout[n, p, c] (double, p in order). */
void dd_add_channel_bias_backward(float *dinp, float *dbias, const float *dout, int N, int HW, int C, int acc) {
    const long long total = (long long)N * HW * C;
    if (dinp) {
        if (acc) {
#pragma omp parallel for schedule(static) if (total > DD_EW_PAR_MIN)
            for (long long i = 0; i < total; i++) dinp[i] += dout[i];
        } else if (dinp != dout) {
            memcpy(dinp, dout, (size_t)total * sizeof(float));
        }
    }
    if (dbias) {
        const int nblk = (C + DD_EW_CBLOCK - 1) / DD_EW_CBLOCK;
#pragma omp parallel for collapse(2) schedule(static) if (total > DD_EW_PAR_MIN)
        for (int n = 0; n < N; n++)
            for (int blk = 0; blk < nblk; blk++) {
                const int c0 = blk * DD_EW_CBLOCK, nc = C - c0 < DD_EW_CBLOCK ? C - c0 : DD_EW_CBLOCK;
                double s[DD_EW_CBLOCK] = {0};
                for (int p = 0; p < HW; p++) {
                    const float *d = dout + ((size_t)n * HW + p) * C + c0;   /* [nc] */
                    for (int c = 0; c < nc; c++) s[c] += (double)d[c];
                }
                float *db = dbias + (size_t)n * C + c0;
                for (int c = 0; c < nc; c++) db[c] = (float)(db[c] + s[c]);
            }
    }
}

/* ------------------------------------------------------------------ nearest x2 upsample */

/* out[n, 2y + a, 2x + b, :] = inp[n, y, x, :]; inp [N, H, W, C], out [N, 2H, 2W, C]. One input row per task:
   it writes output row 2y pixel by pixel and copies it to row 2y + 1. */
void dd_upsample2x_forward(float *out, const float *inp, int N, int H, int W, int C) {
    const long long rows = (long long)N * H;
    const size_t orow = (size_t)2 * W * C;   /* floats in one output row */
#pragma omp parallel for schedule(static) if (rows * W * C > DD_EW_PAR_MIN / 4)
    for (long long r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * W * C;   /* [W, C] */
        float *o = out + (size_t)r * 2 * orow;      /* rows 2y, 2y + 1 of image n: [2, 2W, C] */
        for (int ix = 0; ix < W; ix++) {
            memcpy(o + (size_t)(2 * ix) * C, x + (size_t)ix * C, (size_t)C * sizeof(float));
            memcpy(o + (size_t)(2 * ix + 1) * C, x + (size_t)ix * C, (size_t)C * sizeof(float));
        }
        memcpy(o + orow, o, orow * sizeof(float));
    }
}

/* dinp[n, y, x, c] = ((d00 + d01) + d10) + d11 of the 2x2 block (the reference's order); acc = 1 adds. */
void dd_upsample2x_backward(float *dinp, const float *dout, int N, int H, int W, int C, int acc) {
    const long long rows = (long long)N * H;
    const size_t orow = (size_t)2 * W * C;
#pragma omp parallel for schedule(static) if (rows * W * C > DD_EW_PAR_MIN / 4)
    for (long long r = 0; r < rows; r++) {
        const float *d0 = dout + (size_t)r * 2 * orow, *d1 = d0 + orow;   /* [2W, C] each */
        float *di = dinp + (size_t)r * W * C;                              /* [W, C] */
        for (int ix = 0; ix < W; ix++) {
            const float *a0 = d0 + (size_t)(2 * ix) * C, *a1 = a0 + C;
            const float *b0 = d1 + (size_t)(2 * ix) * C, *b1 = b0 + C;
            float *o = di + (size_t)ix * C;
            if (acc)
                for (int c = 0; c < C; c++) o[c] += ((a0[c] + a1[c]) + b0[c]) + b1[c];
            else
                for (int c = 0; c < C; c++) o[c] = ((a0[c] + a1[c]) + b0[c]) + b1[c];
        }
    }
}

/* ------------------------------------------------------------------ channel concat */

/* out[n, p, :] = a[n, p, 0:C1] ++ b[n, p, 0:C2]; a [N, HW, C1], b [N, HW, C2], out [N, HW, C1 + C2]. */
void dd_concat_forward(float *out, const float *a, const float *b, int N, int HW, int C1, int C2) {
    const long long rows = (long long)N * HW;
    const size_t C = (size_t)C1 + (size_t)C2;
#pragma omp parallel for schedule(static) if (rows * (long long)C > DD_EW_PAR_MIN)
    for (long long r = 0; r < rows; r++) {
        memcpy(out + (size_t)r * C, a + (size_t)r * C1, (size_t)C1 * sizeof(float));
        memcpy(out + (size_t)r * C + C1, b + (size_t)r * C2, (size_t)C2 * sizeof(float));
    }
}

/* dst[r, 0:n] (row stride n) = or += src[r, 0:n] (row stride s), rows r < R. */
static void dd_copy_rows(float *dst, const float *src, long long R, int n, size_t s, int acc) {
    if (acc) {
#pragma omp parallel for schedule(static) if (R * n > DD_EW_PAR_MIN)
        for (long long r = 0; r < R; r++) {
            float *o = dst + (size_t)r * n;
            const float *x = src + (size_t)r * s;
            for (int c = 0; c < n; c++) o[c] += x[c];
        }
    } else {
#pragma omp parallel for schedule(static) if (R * n > DD_EW_PAR_MIN)
        for (long long r = 0; r < R; r++) memcpy(dst + (size_t)r * n, src + (size_t)r * s, (size_t)n * sizeof(float));
    }
}

/* da = dout[..., 0:C1], db = dout[..., C1:C1 + C2] (either may be NULL); acc = 1 adds. */
void dd_concat_backward(float *da, float *db, const float *dout, int N, int HW, int C1, int C2, int acc) {
    const long long rows = (long long)N * HW;
    const size_t C = (size_t)C1 + (size_t)C2;
    if (da && C1 > 0) dd_copy_rows(da, dout, rows, C1, C, acc);
    if (db && C2 > 0) dd_copy_rows(db, dout + C1, rows, C2, C, acc);
}

/* ------------------------------------------------------------------ MSE loss */

/* mean((pred - target)^2): each chunk of DD_MSE_CHUNK elements summed in double in index order, the chunk sums
   added in chunk order, so the result is the same for any thread count. */
double dd_mse_forward(const float *pred, const float *target, size_t n) {
    if (n == 0) return 0.0;
    const size_t nchunks = (n + DD_MSE_CHUNK - 1) / DD_MSE_CHUNK;
    double partial[DD_MSE_CHUNKS_PER_ROUND];
    double total = 0.0;
    for (size_t first = 0; first < nchunks; first += DD_MSE_CHUNKS_PER_ROUND) {
        const int cnt = (int)(nchunks - first < DD_MSE_CHUNKS_PER_ROUND ? nchunks - first : DD_MSE_CHUNKS_PER_ROUND);
#pragma omp parallel for schedule(static) if (cnt > 4)
        for (int k = 0; k < cnt; k++) {
            const size_t i0 = (first + (size_t)k) * DD_MSE_CHUNK;
            const size_t i1 = i0 + DD_MSE_CHUNK < n ? i0 + DD_MSE_CHUNK : n;
            double s = 0.0;
            for (size_t i = i0; i < i1; i++) {
                const double e = (double)pred[i] - (double)target[i];
                s += e * e;
            }
            partial[k] = s;
        }
        for (int k = 0; k < cnt; k++) total += partial[k];
    }
    return total / (double)n;
}

/* dpred = 2 (pred - target) / n dloss, in double, rounded once; acc = 1 adds. */
void dd_mse_backward(float *dpred, const float *pred, const float *target, size_t n, double dloss, int acc) {
    const long long m = (long long)n;
    const double k = 2.0 / (double)n * dloss;
    if (acc) {
#pragma omp parallel for schedule(static) if (m > DD_EW_PAR_MIN)
        for (long long i = 0; i < m; i++) dpred[i] = (float)(dpred[i] + ((double)pred[i] - (double)target[i]) * k);
    } else {
#pragma omp parallel for schedule(static) if (m > DD_EW_PAR_MIN)
        for (long long i = 0; i < m; i++) dpred[i] = (float)(((double)pred[i] - (double)target[i]) * k);
    }
}
