/* metrics.c — the numbers of `ddpm eval` that need no network: feature statistics, the Frechet distance between
   two Gaussians (from Jacobi eigendecompositions in double) and nearest-neighbour distances (BLAS for the
   candidate search, the chosen neighbour's distance recomputed exactly in double). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/core.h"

ddpm_status ddpm_feature_stats(const float *features, int64_t N, int F, double *mean, double *cov) {
    if (!features || !mean || !cov || F < 1) return dd_error(DDPM_ERR_INVALID_ARG, "feature statistics: null argument or F < 1");
    if (N < 2) return dd_error(DDPM_ERR_INVALID_ARG, "feature statistics need at least 2 rows (got %lld)", (long long)N);
    double *row = dd_alloc(sizeof(double) * (size_t)F);
    if (!row) return DDPM_ERR_NOMEM;
    memset(mean, 0, sizeof(double) * (size_t)F);
    memset(cov, 0, sizeof(double) * (size_t)F * (size_t)F);
    for (int64_t i = 0; i < N; i++)
        for (int j = 0; j < F; j++) {
            double v = features[i * F + j];
            if (!isfinite(v)) {
                dd_free(row);
                return dd_error(DDPM_ERR_NUMERIC, "feature statistics: feature %d of row %lld is not finite", j,
                                (long long)i);
            }
            mean[j] += v;
        }
    for (int j = 0; j < F; j++) mean[j] /= (double)N;
    for (int64_t i = 0; i < N; i++) {
        for (int j = 0; j < F; j++) row[j] = features[i * F + j] - mean[j];
        for (int j = 0; j < F; j++) {
            double r = row[j];
            double *c = cov + (size_t)j * F;
            for (int k = j; k < F; k++) c[k] += r * row[k];
        }
    }
    for (int j = 0; j < F; j++)
        for (int k = j; k < F; k++) {
            double v = cov[(size_t)j * F + k] / (double)(N - 1);
            cov[(size_t)j * F + k] = v;
            cov[(size_t)k * F + j] = v;
        }
    dd_free(row);
    return DDPM_OK;
}

/* Cyclic Jacobi eigendecomposition of the symmetric a [n, n] (destroyed): eigenvalues w [n], eigenvectors as the
   columns of v [n, n]. Converges quadratically; 100 sweeps is far more than any covariance needs. */
static void jacobi_eigen(double *a, int n, double *w, double *v) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) v[(size_t)i * n + j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0, diag = 0.0;
        for (int i = 0; i < n; i++) {
            diag += a[(size_t)i * n + i] * a[(size_t)i * n + i];
            for (int j = i + 1; j < n; j++) off += a[(size_t)i * n + j] * a[(size_t)i * n + j];
        }
        if (off <= 1e-30 * diag || off == 0.0) break;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[(size_t)p * n + q];
                if (apq == 0.0) continue;
                double app = a[(size_t)p * n + p], aqq = a[(size_t)q * n + q];
                double theta = (aqq - app) / (2.0 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < n; k++) {   /* columns p, q */
                    double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
                    a[(size_t)k * n + p] = c * akp - s * akq;
                    a[(size_t)k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {   /* rows p, q */
                    double apk = a[(size_t)p * n + k], aqk = a[(size_t)q * n + k];
                    a[(size_t)p * n + k] = c * apk - s * aqk;
                    a[(size_t)q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = v[(size_t)k * n + p], vkq = v[(size_t)k * n + q];
                    v[(size_t)k * n + p] = c * vkp - s * vkq;
                    v[(size_t)k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++) w[i] = a[(size_t)i * n + i];
}

ddpm_status ddpm_frechet_distance(const double *m1, const double *c1, const double *m2, const double *c2, int F,
                                  double *out) {
    if (!m1 || !c1 || !m2 || !c2 || !out || F < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "Frechet distance: null argument or F < 1");
    size_t FF = (size_t)F * (size_t)F;
    double *a = dd_alloc(sizeof(double) * FF), *v = dd_alloc(sizeof(double) * FF),
           *s = dd_alloc(sizeof(double) * FF), *t = dd_alloc(sizeof(double) * FF), *w = dd_alloc(sizeof(double) * (size_t)F);
    ddpm_status st = DDPM_OK;
    if (!a || !v || !s || !t || !w) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    double tr1 = 0, tr2 = 0, dm = 0;
    for (int i = 0; i < F; i++) {
        tr1 += c1[(size_t)i * F + i];
        tr2 += c2[(size_t)i * F + i];
        dm += (m1[i] - m2[i]) * (m1[i] - m2[i]);
    }
    if (!isfinite(tr1) || !isfinite(tr2) || !isfinite(dm)) {
        st = dd_error(DDPM_ERR_NUMERIC, "Frechet distance: the statistics are not finite");
        goto done;
    }
    /* s = c1^(1/2) = V diag(sqrt(max(w, 0))) V^T */
    memcpy(a, c1, sizeof(double) * FF);
    jacobi_eigen(a, F, w, v);
    for (int i = 0; i < F; i++) w[i] = w[i] > 0 ? sqrt(w[i]) : 0.0;
    for (int i = 0; i < F; i++)
        for (int j = 0; j < F; j++) {
            double acc = 0;
            for (int k = 0; k < F; k++) acc += v[(size_t)i * F + k] * w[k] * v[(size_t)j * F + k];
            s[(size_t)i * F + j] = acc;
        }
    /* a = s c2 s (symmetric positive semi-definite); tr((c1^1/2 c2 c1^1/2)^1/2) = sum sqrt(eig(a)) */
    for (int i = 0; i < F; i++)
        for (int j = 0; j < F; j++) {
            double acc = 0;
            for (int k = 0; k < F; k++) acc += s[(size_t)i * F + k] * c2[(size_t)k * F + j];
            t[(size_t)i * F + j] = acc;
        }
    for (int i = 0; i < F; i++)
        for (int j = i; j < F; j++) {
            double acc = 0;
            for (int k = 0; k < F; k++) acc += t[(size_t)i * F + k] * s[(size_t)k * F + j];
            a[(size_t)i * F + j] = acc;
        }
    for (int i = 0; i < F; i++)
        for (int j = 0; j < i; j++) a[(size_t)i * F + j] = a[(size_t)j * F + i];
    jacobi_eigen(a, F, w, v);
    double trs = 0;
    for (int i = 0; i < F; i++) trs += w[i] > 0 ? sqrt(w[i]) : 0.0;
    double fd = dm + tr1 + tr2 - 2.0 * trs;
    *out = fd < 0 ? 0.0 : fd;   /* rounding can leave -1e-12 for identical statistics */
done:
    dd_free(a);
    dd_free(v);
    dd_free(s);
    dd_free(t);
    dd_free(w);
    return st;
}

#define NN_BA 256    /* rows of a per block */
#define NN_BB 2048   /* rows of b per block */

ddpm_status ddpm_nearest_neighbours(const float *a, int64_t n, const float *b, int64_t m, int64_t D, double *dist,
                                    int64_t *idx) {
    if (!a || !b || !dist || n < 1 || m < 1 || D < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "nearest neighbours: null argument or empty set");
    if (D > INT32_MAX / 2) return dd_error(DDPM_ERR_INVALID_ARG, "nearest neighbours: D = %lld is too large", (long long)D);
    float *g = dd_alloc(sizeof(float) * NN_BA * NN_BB);
    double *bn = dd_alloc(sizeof(double) * (size_t)m), *best = dd_alloc(sizeof(double) * (size_t)n);
    int64_t *bi = dd_alloc(sizeof(int64_t) * (size_t)n);
    ddpm_status st = DDPM_OK;
    if (!g || !bn || !best || !bi) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    for (int64_t j = 0; j < m; j++) {
        double acc = 0;
        for (int64_t k = 0; k < D; k++) acc += (double)b[j * D + k] * b[j * D + k];
        bn[j] = acc;
    }
    for (int64_t i = 0; i < n; i++) {
        best[i] = INFINITY;
        bi[i] = 0;
    }
    /* Candidate search: |a - b|^2 - |a|^2 = |b|^2 - 2 a.b, the cross term from sgemm. */
    for (int64_t i0 = 0; i0 < n; i0 += NN_BA) {
        int na = (int)(n - i0 < NN_BA ? n - i0 : NN_BA);
        for (int64_t j0 = 0; j0 < m; j0 += NN_BB) {
            int nb = (int)(m - j0 < NN_BB ? m - j0 : NN_BB);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, (int)D, 1.0f, a + i0 * D, (int)D, b + j0 * D,
                        (int)D, 0.0f, g, nb);
            for (int r = 0; r < na; r++)
                for (int c = 0; c < nb; c++) {
                    double d2 = bn[j0 + c] - 2.0 * (double)g[(size_t)r * nb + c];
                    if (d2 < best[i0 + r]) {
                        best[i0 + r] = d2;
                        bi[i0 + r] = j0 + c;
                    }
                }
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double acc = 0;
        const float *x = a + i * D, *y = b + bi[i] * D;
        for (int64_t k = 0; k < D; k++) {
            double e = (double)x[k] - (double)y[k];
            acc += e * e;
        }
        if (!isfinite(acc)) {
            st = dd_error(DDPM_ERR_NUMERIC, "nearest neighbours: row %lld is not finite", (long long)i);
            goto done;
        }
        dist[i] = sqrt(acc);
        if (idx) idx[i] = bi[i];
    }
done:
    dd_free(g);
    dd_free(bn);
    dd_free(best);
    dd_free(bi);
    return st;
}
