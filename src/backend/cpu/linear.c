/* linear.c — fully connected layers as row-major sgemm calls on OpenBLAS (OpenMP build, so its threads are the
   library's OpenMP threads), plus the small fused bias passes. */
#include <cblas.h>

#include "backend/cpu/cpu_ops.h"

/* Bias gradient columns handled per task: a stack block of double accumulators. */
#define DD_LIN_DB_BLOCK 64

/* out[M, OUT] = inp[M, IN] w[OUT, IN]^T + b[OUT] (b may be NULL). */
void dd_linear_forward(float *out, const float *inp, const float *w, const float *b, int M, int IN, int OUT) {
    if (M <= 0 || OUT <= 0) return;
    if (IN > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, OUT, IN, 1.0f, inp, IN, w, IN, 0.0f, out, OUT);
    } else {
        for (size_t i = 0; i < (size_t)M * OUT; i++) out[i] = 0.0f;
    }
    if (b) {
#pragma omp parallel for schedule(static) if ((long long)M * OUT > 65536)
        for (int m = 0; m < M; m++) {
            float *o = out + (size_t)m * OUT;   /* [OUT] */
            for (int j = 0; j < OUT; j++) o[j] += b[j];
        }
    }
}

/* dinp[M, IN] = dout[M, OUT] w[OUT, IN] (acc = 1 adds); dw[OUT, IN] += dout^T inp; db[OUT] += sum_m dout[m, :]
   (double, rows in order). Any of dinp, dw, db may be NULL. */
void dd_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int M, int IN, int OUT, int acc) {
    if (M <= 0) return;
    if (dinp && IN > 0) {
        if (OUT > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, IN, OUT, 1.0f, dout, OUT, w, IN,
                        acc ? 1.0f : 0.0f, dinp, IN);
        else if (!acc)
            for (size_t i = 0; i < (size_t)M * IN; i++) dinp[i] = 0.0f;
    }
    if (dw && IN > 0 && OUT > 0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, M, 1.0f, dout, OUT, inp, IN, 1.0f, dw, IN);
    if (db && OUT > 0) {
        const int nblk = (OUT + DD_LIN_DB_BLOCK - 1) / DD_LIN_DB_BLOCK;
#pragma omp parallel for schedule(static) if ((long long)M * OUT > 65536)
        for (int blk = 0; blk < nblk; blk++) {
            const int j0 = blk * DD_LIN_DB_BLOCK;
            const int nj = OUT - j0 < DD_LIN_DB_BLOCK ? OUT - j0 : DD_LIN_DB_BLOCK;
            double s[DD_LIN_DB_BLOCK] = {0};
            for (int m = 0; m < M; m++) {
                const float *d = dout + (size_t)m * OUT + j0;   /* [nj] */
                for (int j = 0; j < nj; j++) s[j] += (double)d[j];
            }
            for (int j = 0; j < nj; j++) db[j0 + j] = (float)(db[j0 + j] + s[j]);
        }
    }
}
