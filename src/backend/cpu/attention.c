/* attention.c — fused multi-head attention core per (image, head): scores, softmax and P v for a block of
   queries while it sits in cache, backward recomputing P; the products are OpenBLAS sgemm calls on the
   strided head slices (inside the parallel region the OpenMP build of OpenBLAS runs single-threaded). */
#include <cblas.h>
#include <omp.h>

#include "backend/cpu/cpu_ops.h"

/* Queries per block: a block's [bq, L] score matrix (and, in backward, its [bq, L] dP) stays within
   DD_ATT_BLOCK_FLOATS floats (256 KiB), so it lives in L2. L = 196 or 49 is one block. */
#define DD_ATT_BLOCK_FLOATS 65536

static int dd_att_block_rows(int L) {
    int bq = DD_ATT_BLOCK_FLOATS / (L > 0 ? L : 1);
    if (bq < 1) bq = 1;
    if (bq > L) bq = L;
    return bq;
}

/* Floats between the two matrices of a slice and after it, so that they are never a multiple of 4 KiB apart
   (4K aliasing between the loads of one and the stores of the other stalls the row loops). */
#define DD_ATT_PAD 32

/* Work per thread: [bq, L] scores / probabilities and [bq, L] dP (each followed by DD_ATT_PAD floats). The caller
   passes omp_get_max_threads() such slices, contiguously; the thread numbered t uses slice t. */
size_t dd_attention_work_floats(int L, int C, int heads) {
    (void)C;
    (void)heads;
    if (L <= 0) return 0;
    return 2 * ((size_t)dd_att_block_rows(L) * (size_t)L + DD_ATT_PAD);
}

/* Row loops with clones for AVX-512 and AVX2 picked at load time (GCC ifunc); baseline x86-64 otherwise. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DD_CLONES
#endif

/* Lane count of the partial sums below: a fixed split, so the result is the same in every clone. */
#define DD_ATT_LANES 16

/* Rows of dP [nb, L] become dS = P (dP - sum_j P dP) in place (P [nb, L]); the row sums in DD_ATT_LANES float
   partials added in lane order, then the tail. */
DD_CLONES static void dd_att_ds_rows(float *dP, const float *P, int nb, int L) {
    const int Lv = L - L % DD_ATT_LANES;
    for (int i = 0; i < nb; i++) {
        const float *p = P + (size_t)i * L;
        float *g = dP + (size_t)i * L;
        float part[DD_ATT_LANES] = {0};
        for (int j = 0; j < Lv; j += DD_ATT_LANES)
            for (int l = 0; l < DD_ATT_LANES; l++) part[l] += p[j + l] * g[j + l];
        float rd = 0.0f;
        for (int l = 0; l < DD_ATT_LANES; l++) rd += part[l];
        for (int j = Lv; j < L; j++) rd += p[j] * g[j];
        for (int j = 0; j < L; j++) g[j] = p[j] * (g[j] - rd);
    }
}

/* Rows of S [bq, L] (row stride L) become P = softmax(S) in place, max-subtracted. */
static void dd_att_softmax_rows(float *S, int bq, int L) {
    for (int i = 0; i < bq; i++) dd_vsoftmax(S + (size_t)i * L, (size_t)L);
}

/* out[n, i, h d:(h+1) d] = sum_j P_ij v[n, j, h d:(h+1) d], P = softmax_j(scale q_i . k_j) per image n and head
   h (d = C / heads channels); q, k, v, out [N, L, C]. Tasks (n, h) in parallel; queries in blocks of bq rows;
   S = scale Q K^T [bq, L] in the thread's slice of `work` (dd_attention_work_floats(L, C, heads) floats per
   thread, omp_get_max_threads() slices). */
void dd_attention_forward(float *out, const float *q, const float *k, const float *v, int N, int L, int C,
                          int heads, double scale, float *work) {
    if (N <= 0 || L <= 0 || C <= 0 || heads <= 0) return;
    const int d = C / heads, bq = dd_att_block_rows(L);
    const float sc = (float)scale;
    const size_t slice = dd_attention_work_floats(L, C, heads);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int h = 0; h < heads; h++) {
            float *S = work + (size_t)omp_get_thread_num() * slice;   /* [bq, L] */
            const size_t base = (size_t)n * L * C + (size_t)h * d;     /* head slice: rows of stride C */
            for (int i0 = 0; i0 < L; i0 += bq) {
                const int nb = L - i0 < bq ? L - i0 : bq;
                const float *qb = q + base + (size_t)i0 * C;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, L, d, sc, qb, C, k + base, C, 0.0f, S, L);
                dd_att_softmax_rows(S, nb, L);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, d, L, 1.0f, S, L, v + base, C, 0.0f,
                            out + base + (size_t)i0 * C, C);
            }
        }
}

/* Per (n, h), P recomputed block by block: dP = dO V^T, dS = P (dP - rowsum(dP P)),
   dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO (dK, dV summed over the query blocks in order).
   acc = 0 overwrites dq, dk, dv; acc = 1 adds. Any of dq, dk, dv may be NULL. Work as in the forward, two
   [bq, L] matrices per thread. */
void dd_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, int N, int L, int C, int heads, double scale, int acc, float *work) {
    if (N <= 0 || L <= 0 || C <= 0 || heads <= 0) return;
    if (!dq && !dk && !dv) return;
    const int d = C / heads, bq = dd_att_block_rows(L);
    const float sc = (float)scale;
    const size_t slice = dd_attention_work_floats(L, C, heads);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int h = 0; h < heads; h++) {
            float *P = work + (size_t)omp_get_thread_num() * slice;   /* [bq, L] */
            float *dP = P + (size_t)bq * L + DD_ATT_PAD;               /* [bq, L] */
            const size_t base = (size_t)n * L * C + (size_t)h * d;
            for (int i0 = 0; i0 < L; i0 += bq) {
                const int nb = L - i0 < bq ? L - i0 : bq;
                const float *qb = q + base + (size_t)i0 * C, *dob = dout + base + (size_t)i0 * C;
                /* first block overwrites dk, dv unless acc */
                const float beta_kv = (acc || i0 > 0) ? 1.0f : 0.0f;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, L, d, sc, qb, C, k + base, C, 0.0f, P, L);
                dd_att_softmax_rows(P, nb, L);
                if (dv)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, d, nb, 1.0f, P, L, dob, C, beta_kv,
                                dv + base, C);
                if (!dq && !dk) continue;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, L, d, 1.0f, dob, C, v + base, C, 0.0f, dP,
                            L);
                dd_att_ds_rows(dP, P, nb, L);   /* dP <- dS */
                if (dq)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, d, L, sc, dP, L, k + base, C,
                                acc ? 1.0f : 0.0f, dq + base + (size_t)i0 * C, C);
                if (dk)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, d, nb, sc, dP, L, qb, C, beta_kv,
                                dk + base, C);
            }
        }
}
