/* norm.c — GroupNorm (+ fused SiLU) on NHWC activations as OpenMP passes over channel blocks of whole groups:
   no library does GroupNorm on NHWC with a fused activation, and the op is bandwidth-bound, so one statistics
   pass and one normalise pass per block while it sits in cache is what matters; the row loops are compiled
   for AVX-512 / AVX2 / baseline and picked at run time. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"

/* Channels per chunk of the per-channel stack accumulators. */
#define DD_GN_CB 256
/* Channels per forward task: whole groups, about this many (a block has at most this many groups); forward
   tasks are (image, block). Backward tasks are blocks of whole groups, one per thread, looping over the
   images, so that dgamma / dbeta are summed by one task per channel in a fixed order: the sums of a channel and
   of a group are the same whatever the blocks are, so the result does not depend on the thread count. */
#define DD_GN_FWD_TARGET 32
#define DD_GN_MAXG 32   /* >= the target; the most groups of a backward block */
/* Floats in a tile of rows gathered for one vector SiLU / sigmoid call (>= 4 rows of a DD_GN_CB chunk); tile
   buffers are DD_GN_TILE + DD_GN_PAD floats apart, not a multiple of 4 KiB (4K aliasing between their loads
   and stores stalls the loops). */
#define DD_GN_TILE 1024
#define DD_GN_PAD 48

/* Row kernels with clones for AVX-512 and AVX2 picked at load time (GCC ifunc); baseline x86-64 otherwise.
   Each element is computed by the same IEEE operations in every clone, so the clones give identical bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DD_CLONES
#endif

static int dd_gn_groups_per_block(int Cg, int G, int target) {
    int k = target / Cg;
    if (k < 1) k = 1;
    if (k > G) k = G;
    return k;
}

/* ------------------------------------------------------------------ row kernels
   All work on one chunk of nc <= DD_GN_CB channels of one image: rows p < HW at x0 + p C (row stride C), with
   per-channel m (mean), r (rstd), ga (gamma), be (beta) of the chunk. */

/* s[j] += sum_p x, q[j] += sum_p x^2 (double, rows in order). */
DD_CLONES static void dd_gn_sums(double *s, double *q, const float *x0, int C, int HW, int nc) {
    for (int p = 0; p < HW; p++) {
        const float *x = x0 + (size_t)p * C;   /* [nc] */
        for (int j = 0; j < nc; j++) {
            const double v = (double)x[j];
            s[j] += v;
            q[j] += v * v;
        }
    }
}

/* y = (x - m) r ga + be, then SiLU when silu (on tiles of rows gathered contiguously: one vector call per tile,
   not one per short row). */
DD_CLONES static void dd_gn_apply(float *y0, const float *x0, int C, int HW, int nc, const float *m, const float *r,
                                  const float *ga, const float *be, int silu) {
    if (!silu) {
        for (int p = 0; p < HW; p++) {
            const float *x = x0 + (size_t)p * C;   /* [nc] */
            float *y = y0 + (size_t)p * C;
            for (int j = 0; j < nc; j++) y[j] = (x[j] - m[j]) * r[j] * ga[j] + be[j];
        }
        return;
    }
    const int R = DD_GN_TILE / nc;
    if (nc == C) {   /* whole rows: a tile of rows is contiguous in y, so it is made there */
        for (int p0 = 0; p0 < HW; p0 += R) {
            const int nr = HW - p0 < R ? HW - p0 : R;
            float *yt0 = y0 + (size_t)p0 * C;
            for (int t = 0; t < nr; t++) {
                const float *x = x0 + (size_t)(p0 + t) * C;   /* [nc] */
                float *yt = yt0 + (size_t)t * nc;
                for (int j = 0; j < nc; j++) yt[j] = (x[j] - m[j]) * r[j] * ga[j] + be[j];
            }
            dd_vsilu(yt0, yt0, (size_t)nr * nc);
        }
        return;
    }
    float tile[DD_GN_TILE];
    for (int p0 = 0; p0 < HW; p0 += R) {
        const int nr = HW - p0 < R ? HW - p0 : R;
        for (int t = 0; t < nr; t++) {
            const float *x = x0 + (size_t)(p0 + t) * C;   /* [nc] */
            float *yt = tile + (size_t)t * nc;
            for (int j = 0; j < nc; j++) yt[j] = (x[j] - m[j]) * r[j] * ga[j] + be[j];
        }
        dd_vsilu(tile, tile, (size_t)nr * nc);
        for (int t = 0; t < nr; t++)
            memcpy(y0 + (size_t)(p0 + t) * C, tile + (size_t)t * nc, (size_t)nc * sizeof(float));
    }
}

/* With the fused SiLU: a tile of nr rows into contiguous [nr, nc] buffers: xh = (x - m) r and dy, the gradient
   at the affine output y = xh ga + be, dy = dout s (1 + y (1 - s)), s = sigmoid(y) (one vector call for the
   tile); yb is scratch. Inlined into the clones below. */
static inline void dd_gn_tile_dy(float *dy, float *xh, float *yb, const float *d0, const float *x0, int C, int nr,
                                 int nc, const float *m, const float *r, const float *ga, const float *be) {
    for (int t = 0; t < nr; t++) {
        const float *x = x0 + (size_t)t * C;   /* [nc] */
        float *xt = xh + (size_t)t * nc, *yt = yb + (size_t)t * nc;
        for (int j = 0; j < nc; j++) xt[j] = (x[j] - m[j]) * r[j];
        for (int j = 0; j < nc; j++) yt[j] = xt[j] * ga[j] + be[j];
    }
    dd_vsigmoid(dy, yb, (size_t)nr * nc);
    for (int t = 0; t < nr; t++) {
        const float *d = d0 + (size_t)t * C;
        float *dt = dy + (size_t)t * nc, *yt = yb + (size_t)t * nc;
        for (int j = 0; j < nc; j++) dt[j] = d[j] * dt[j] * (1.0f + yt[j] * (1.0f - dt[j]));
    }
}

/* sdy[j] += sum_p dy, sdx[j] += sum_p dy xh (double, rows in order). With the fused SiLU and keep_dy, keep_xh
   ([HW, nc] each, or NULL) the tiles of dy and xh are made there instead of on the stack, for dd_gn_bwd_apply. */
DD_CLONES static void dd_gn_bwd_sums(double *sdy, double *sdx, const float *d0, const float *x0, int C, int HW,
                                     int nc, const float *m, const float *r, const float *ga, const float *be,
                                     int silu, float *keep_dy, float *keep_xh) {
    if (!silu) {
        for (int p = 0; p < HW; p++) {
            const float *x = x0 + (size_t)p * C, *d = d0 + (size_t)p * C;   /* [nc] */
            for (int j = 0; j < nc; j++) {
                const float xh = (x[j] - m[j]) * r[j];
                sdy[j] += (double)d[j];
                sdx[j] += (double)d[j] * (double)xh;
            }
        }
        return;
    }
    float tiles[3 * (DD_GN_TILE + DD_GN_PAD)];
    float *dy = tiles, *xh = tiles + DD_GN_TILE + DD_GN_PAD, *yb = tiles + 2 * (DD_GN_TILE + DD_GN_PAD);
    const int R = DD_GN_TILE / nc;
    for (int p0 = 0; p0 < HW; p0 += R) {
        const int nr = HW - p0 < R ? HW - p0 : R;
        const size_t off = (size_t)p0 * C;
        float *dyt = keep_dy ? keep_dy + (size_t)p0 * nc : dy, *xht = keep_xh ? keep_xh + (size_t)p0 * nc : xh;
        dd_gn_tile_dy(dyt, xht, yb, d0 + off, x0 + off, C, nr, nc, m, r, ga, be);
        for (int t = 0; t < nr; t++) {
            const float *dt = dyt + (size_t)t * nc, *xt = xht + (size_t)t * nc;
            for (int j = 0; j < nc; j++) {
                sdy[j] += (double)dt[j];
                sdx[j] += (double)dt[j] * (double)xt[j];
            }
        }
    }
}

/* o = r (dy ga - m1 - xh m2) (acc: o += ...). With the fused SiLU and kept_dy, kept_xh (dd_gn_bwd_sums's) dy and
   xh are read from there instead of made again. */
DD_CLONES static void dd_gn_bwd_apply(float *o0, const float *d0, const float *x0, int C, int HW, int nc,
                                      const float *m, const float *r, const float *ga, const float *be,
                                      const float *m1, const float *m2, int silu, int acc, const float *kept_dy,
                                      const float *kept_xh) {
    if (!silu) {
        for (int p = 0; p < HW; p++) {
            const float *x = x0 + (size_t)p * C, *d = d0 + (size_t)p * C;   /* [nc] */
            float *o = o0 + (size_t)p * C;
            if (acc)
                for (int j = 0; j < nc; j++) o[j] += r[j] * (d[j] * ga[j] - m1[j] - (x[j] - m[j]) * r[j] * m2[j]);
            else
                for (int j = 0; j < nc; j++) o[j] = r[j] * (d[j] * ga[j] - m1[j] - (x[j] - m[j]) * r[j] * m2[j]);
        }
        return;
    }
    float tiles[3 * (DD_GN_TILE + DD_GN_PAD)];
    float *dy = tiles, *xh = tiles + DD_GN_TILE + DD_GN_PAD, *yb = tiles + 2 * (DD_GN_TILE + DD_GN_PAD);
    const int R = DD_GN_TILE / nc;
    for (int p0 = 0; p0 < HW; p0 += R) {
        const int nr = HW - p0 < R ? HW - p0 : R;
        const size_t off = (size_t)p0 * C;
        const float *dyt = dy, *xht = xh;
        if (kept_dy) dyt = kept_dy + (size_t)p0 * nc, xht = kept_xh + (size_t)p0 * nc;
        else dd_gn_tile_dy(dy, xh, yb, d0 + off, x0 + off, C, nr, nc, m, r, ga, be);
        for (int t = 0; t < nr; t++) {
            const float *dt = dyt + (size_t)t * nc, *xt = xht + (size_t)t * nc;
            float *o = o0 + off + (size_t)t * C;   /* [nc] */
            if (acc)
                for (int j = 0; j < nc; j++) o[j] += r[j] * (dt[j] * ga[j] - m1[j] - xt[j] * m2[j]);
            else
                for (int j = 0; j < nc; j++) o[j] = r[j] * (dt[j] * ga[j] - m1[j] - xt[j] * m2[j]);
        }
    }
}

/* ------------------------------------------------------------------ forward */

/* out[N, HW, C] = (x - mean) rstd gamma + beta (then SiLU when silu != 0) per (image, group of Cg = C / G
   channels); statistics in double (sums and sums of squares in one pass), biased variance, eps inside the
   sqrt; mean, rstd [N, G] saved (may be NULL). gamma, beta [C] may be NULL (1, 0). */
void dd_groupnorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *gamma,
                          const float *beta, int N, int HW, int C, int G, double eps, int silu) {
    const int Cg = C / G;
    /* with images enough to share among the threads, a task is a whole image (up to DD_GN_MAXG groups), whose
       rows are then contiguous */
    const int whole = N >= 4 * omp_get_max_threads() && G <= DD_GN_MAXG && C <= DD_GN_CB;
    const int gpb = whole ? G : dd_gn_groups_per_block(Cg, G, DD_GN_FWD_TARGET);
    const int nblk = (G + gpb - 1) / gpb;
    const double cnt = (double)Cg * HW;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int blk = 0; blk < nblk; blk++) {
            const int g0 = blk * gpb, ng = G - g0 < gpb ? G - g0 : gpb;
            const int c0 = g0 * Cg, c1 = (g0 + ng) * Cg;
            const float *x0 = inp + (size_t)n * HW * C;   /* [HW, C] */
            float *y0 = out + (size_t)n * HW * C;
            double gs[DD_GN_MAXG] = {0}, gq[DD_GN_MAXG] = {0};
            for (int a = c0; a < c1; a += DD_GN_CB) {
                const int nc = c1 - a < DD_GN_CB ? c1 - a : DD_GN_CB;
                double s[DD_GN_CB], q[DD_GN_CB];
                for (int j = 0; j < nc; j++) s[j] = q[j] = 0.0;
                dd_gn_sums(s, q, x0 + a, C, HW, nc);
                for (int j = 0; j < nc; j++) {
                    const int k = (a + j - c0) / Cg;
                    gs[k] += s[j];
                    gq[k] += q[j];
                }
            }
            float mg[DD_GN_MAXG], rg[DD_GN_MAXG];
            for (int k = 0; k < ng; k++) {
                const double mu = gs[k] / cnt;
                double var = gq[k] / cnt - mu * mu;
                if (var < 0.0) var = 0.0;
                mg[k] = (float)mu;
                rg[k] = (float)(1.0 / sqrt(var + eps));
                if (mean) mean[(size_t)n * G + g0 + k] = mg[k];
                if (rstd) rstd[(size_t)n * G + g0 + k] = rg[k];
            }
            for (int a = c0; a < c1; a += DD_GN_CB) {
                const int nc = c1 - a < DD_GN_CB ? c1 - a : DD_GN_CB;
                float m[DD_GN_CB], r[DD_GN_CB], ga[DD_GN_CB], be[DD_GN_CB];
                for (int j = 0; j < nc; j++) {
                    const int c = a + j, k = (c - c0) / Cg;
                    m[j] = mg[k];
                    r[j] = rg[k];
                    ga[j] = gamma ? gamma[c] : 1.0f;
                    be[j] = beta ? beta[c] : 0.0f;
                }
                dd_gn_apply(y0 + a, x0 + a, C, HW, nc, m, r, ga, be, silu);
            }
        }
}

/* ------------------------------------------------------------------ backward */

/* CACHE. With the fused SiLU and a work slice, a task keeps, per image, xhat and dy of its block ([HW, nc]
   contiguous, at most DD_GN_CACHE floats each) from the sums pass (dd_gn_bwd_sums makes its tiles there) for the
   output pass (dd_gn_bwd_apply reads them instead of making them again): the output pass then reads neither x
   nor dout and computes no second sigmoid. The tiles come from the same dd_gn_tile_dy either way, so the bits do
   not depend on whether a block keeps them. */
#define DD_GN_CACHE 65536

size_t dd_groupnorm_work_floats(void) { return 2 * (size_t)DD_GN_CACHE + 2 * DD_GN_PAD; }

/* Per-channel mean, rstd, gamma, beta of channels [a, a + nc) of image n. */
static void dd_gn_load_chunk(float *m, float *r, float *ga, float *be, const float *mean, const float *rstd,
                             const float *gamma, const float *beta, int n, int G, int Cg, int a, int nc) {
    for (int j = 0; j < nc; j++) {
        const int c = a + j, g = c / Cg;
        m[j] = mean[(size_t)n * G + g];
        r[j] = rstd[(size_t)n * G + g];
        ga[j] = gamma ? gamma[c] : 1.0f;
        be[j] = beta ? beta[c] : 0.0f;
    }
}

/* With xhat = (x - mean) rstd, y = xhat gamma + beta, dy = dout (times silu'(y) when fused):
   dgamma[c] += sum dy xhat, dbeta[c] += sum dy (double, images in order), and per (image, group), means over
   its Cg HW elements, dx = rstd (dy gamma - mean(dy gamma) - xhat mean(dy gamma xhat)) (acc = 1 adds).
   mean, rstd [N, G] are the forward's; xhat and y are recomputed. sums [N, 2, C] doubles holds each image's
   per-channel sums (dd_groupnorm_sums_doubles). */
void dd_groupnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                           const float *mean, const float *rstd, const float *gamma, const float *beta, int N,
                           int HW, int C, int G, int silu, int acc, float *work, double *sums) {
    if (!dinp && !dgamma && !dbeta) return;
    const int Cg = C / G;
    /* tasks are images (each streams through whole rows, and the load is even); inside one, blocks of whole
       groups of at most DD_GN_MAXG groups and DD_GN_CB channels */
    int gpb = G < DD_GN_MAXG ? G : DD_GN_MAXG;
    if (gpb * Cg > DD_GN_CB) gpb = DD_GN_CB / Cg > 0 ? DD_GN_CB / Cg : 1;
    const int nblk = (G + gpb - 1) / gpb;
    const double cnt = (double)Cg * HW;
    const size_t slice = dd_groupnorm_work_floats();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x0 = inp + (size_t)n * HW * C, *d0 = dout + (size_t)n * HW * C;   /* [HW, C] */
        double *isdy = sums + (size_t)n * 2 * C, *isdx = isdy + C;                      /* this image's sums */
        for (int blk = 0; blk < nblk; blk++) {
            const int g0 = blk * gpb, ng = G - g0 < gpb ? G - g0 : gpb;
            const int c0 = g0 * Cg, c1 = (g0 + ng) * Cg;
            /* the cached path (with the fused SiLU, whose second sigmoid it saves; without, x and dout are still
               in cache for the output pass): a block of one chunk whose [HW, nc] fits the thread's work slice */
            const int cached = work && silu && c1 - c0 <= DD_GN_CB && (size_t)HW * (size_t)(c1 - c0) <= DD_GN_CACHE;
            float *cdy = cached ? work + (size_t)omp_get_thread_num() * slice : NULL;
            float *cxh = cached ? cdy + DD_GN_CACHE + DD_GN_PAD : NULL;
            double A[DD_GN_MAXG] = {0}, B[DD_GN_MAXG] = {0};   /* per group: sum dy gamma, sum dy gamma xhat */
            for (int a = c0; a < c1; a += DD_GN_CB) {
                const int nc = c1 - a < DD_GN_CB ? c1 - a : DD_GN_CB;
                float m[DD_GN_CB], r[DD_GN_CB], ga[DD_GN_CB], be[DD_GN_CB];
                double *sdy = isdy + a, *sdx = isdx + a;
                dd_gn_load_chunk(m, r, ga, be, mean, rstd, gamma, beta, n, G, Cg, a, nc);
                for (int j = 0; j < nc; j++) sdy[j] = sdx[j] = 0.0;
                dd_gn_bwd_sums(sdy, sdx, d0 + a, x0 + a, C, HW, nc, m, r, ga, be, silu, cdy, cxh);
                for (int j = 0; j < nc; j++) {
                    const int k = (a + j - c0) / Cg;
                    A[k] += (double)ga[j] * sdy[j];
                    B[k] += (double)ga[j] * sdx[j];
                }
            }
            if (!dinp) continue;
            float m1g[DD_GN_MAXG], m2g[DD_GN_MAXG];
            for (int k = 0; k < ng; k++) {
                m1g[k] = (float)(A[k] / cnt);
                m2g[k] = (float)(B[k] / cnt);
            }
            for (int a = c0; a < c1; a += DD_GN_CB) {
                const int nc = c1 - a < DD_GN_CB ? c1 - a : DD_GN_CB;
                float m[DD_GN_CB], r[DD_GN_CB], ga[DD_GN_CB], be[DD_GN_CB], m1[DD_GN_CB], m2[DD_GN_CB];
                dd_gn_load_chunk(m, r, ga, be, mean, rstd, gamma, beta, n, G, Cg, a, nc);
                for (int j = 0; j < nc; j++) {
                    const int k = (a + j - c0) / Cg;
                    m1[j] = m1g[k];
                    m2[j] = m2g[k];
                }
                dd_gn_bwd_apply(dinp + (size_t)n * HW * C + a, d0 + a, x0 + a, C, HW, nc, m, r, ga, be, m1, m2,
                                silu, acc, cdy, cxh);
            }
        }
    }
    if (!dgamma && !dbeta) return;
    /* dgamma, dbeta: the images' sums added in image order, in double (a group of at most DD_GN_CB channels)
       or onto the float gradient image by image (a single wider group), whatever the thread count */
    const int fits = Cg <= DD_GN_CB;
#pragma omp parallel for schedule(static) if (C >= 64)
    for (int c = 0; c < C; c++) {
        if (fits) {
            double dgs = 0.0, dbs = 0.0;
            for (int n = 0; n < N; n++) {
                dbs += sums[(size_t)n * 2 * C + c];
                dgs += sums[(size_t)n * 2 * C + C + c];
            }
            if (dgamma) dgamma[c] = (float)(dgamma[c] + dgs);
            if (dbeta) dbeta[c] = (float)(dbeta[c] + dbs);
        } else {
            for (int n = 0; n < N; n++) {
                if (dgamma) dgamma[c] = (float)(dgamma[c] + sums[(size_t)n * 2 * C + C + c]);
                if (dbeta) dbeta[c] = (float)(dbeta[c] + sums[(size_t)n * 2 * C + c]);
            }
        }
    }
}
