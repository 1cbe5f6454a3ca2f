/* test_ops_fast.c — every fast kernel (oneDNN convolutions, BLAS linear, fused GroupNorm/SiLU, glue ops, MSE,
   attention) against its reference twin dd_ref_*_f32 on random normal inputs, forward and backward, acc = 0
   and acc = 1, parameter gradients accumulated into pre-filled buffers; prints the max errors. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/reference/ref_ops.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_uniform(void) { return ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* standard normal (Box-Muller), shifted by `mean` */
static float *randn(size_t n, double mean) {
    float *a = malloc((n ? n : 1) * sizeof(float));
    if (!a) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) {
        double u1 = rng_uniform(), u2 = rng_uniform();
        a[i] = (float)(mean + sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
    return a;
}

static float *copy_of(const float *a, size_t n) {
    float *b = malloc((n ? n : 1) * sizeof(float));
    if (!b) { fprintf(stderr, "out of memory\n"); exit(1); }
    memcpy(b, a, n * sizeof(float));
    return b;
}

/* Compares with tolerance `tol` relative to max|want| and prints the max errors. */
static void cmp(const char *what, const float *got, const float *want, size_t n, double tol) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        double w = fabs((double)want[i]), e = fabs((double)got[i] - (double)want[i]);
        if (w > scale) scale = w;
        if (!(e <= err)) err = e;
    }
    printf("  %-44s n=%-8zu max abs err %.3e  rel %.3e\n", what, n, err, scale > 0 ? err / scale : err);
    dd_check_close_f32(what, got, want, n, tol, 1e-12);
}

#define TOL_FWD 1e-5
#define TOL_BWD 1e-4

/* ------------------------------------------------------------------ convolution */

typedef struct {
    const char *name;
    int N, H, W, C, OC, K, stride, pt, pl, pb, pr;
    int n_small;   /* also run with this smaller batch (0 = no) */
} conv_case;

/* Tolerances of conv_run: fp32, or bf16 (inputs and weights rounded to 8 bits of mantissa, fp32 sums). */
static double conv_tol_fwd = TOL_FWD, conv_tol_bwd = TOL_BWD;

static void conv_run(dd_conv *cv, const dd_conv_geom *G, int n, const float *w, const char *name) {
    dd_conv_geom g = *G;
    g.N = n;
    const size_t ni = (size_t)n * g.H * g.W * g.C, no = (size_t)n * g.OH * g.OW * g.OC;
    const size_t nw = (size_t)g.OC * g.C * g.KH * g.KW;
    char what[160];
    float *inp = randn(ni, 0.0), *b = randn((size_t)g.OC, 0.0), *dout = randn(no, 0.0);
    float *out = randn(no, 0.0), *ref = randn(no, 0.0);
    void *scratch = malloc(dd_conv_scratch_size(cv) + 1);
    /* the scratch handed over unaligned on purpose (the convolution aligns it) */
    char *scr = (char *)scratch + 1;

    /* forward, with and without bias */
    for (int with_b = 1; with_b >= 0; with_b--) {
        CHECK_OK(dd_conv_forward(cv, out, inp, with_b ? b : NULL, n, scr));
        dd_ref_conv2d_forward_f32(ref, inp, w, with_b ? b : NULL, &g);
        snprintf(what, sizeof what, "conv %s n=%d fwd%s", name, n, with_b ? "" : " (no bias)");
        cmp(what, out, ref, no, conv_tol_fwd);
    }

    /* backward, acc = 0 and 1, into pre-filled dw, db */
    for (int acc = 0; acc <= 1; acc++) {
        float *dinp = randn(ni, 0.0), *dw = randn(nw, 0.0), *db = randn((size_t)g.OC, 0.0);
        float *rdinp = copy_of(dinp, ni), *rdw = copy_of(dw, nw), *rdb = copy_of(db, (size_t)g.OC);
        CHECK_OK(dd_conv_backward(cv, dinp, dw, db, dout, inp, n, acc, scr));
        dd_ref_conv2d_backward_f32(rdinp, rdw, rdb, dout, inp, w, &g, acc);
        snprintf(what, sizeof what, "conv %s n=%d dinp acc=%d", name, n, acc);
        cmp(what, dinp, rdinp, ni, conv_tol_bwd);
        snprintf(what, sizeof what, "conv %s n=%d dw += (acc=%d)", name, n, acc);
        cmp(what, dw, rdw, nw, conv_tol_bwd);
        snprintf(what, sizeof what, "conv %s n=%d db += (acc=%d)", name, n, acc);
        cmp(what, db, rdb, (size_t)g.OC, conv_tol_bwd);
        free(dinp), free(dw), free(db), free(rdinp), free(rdw), free(rdb);
    }
    /* NULL gradients are skipped; dw alone and dinp alone still right */
    {
        float *dw = randn(nw, 0.0), *rdw = copy_of(dw, nw);
        float *dinp = randn(ni, 0.0), *rdinp = copy_of(dinp, ni);
        CHECK_OK(dd_conv_backward(cv, NULL, dw, NULL, dout, inp, n, 0, scr));
        CHECK_OK(dd_conv_backward(cv, dinp, NULL, NULL, dout, inp, n, 0, scr));
        dd_ref_conv2d_backward_f32(rdinp, rdw, NULL, dout, inp, w, &g, 0);
        snprintf(what, sizeof what, "conv %s n=%d dw only", name, n);
        cmp(what, dw, rdw, nw, conv_tol_bwd);
        snprintf(what, sizeof what, "conv %s n=%d dinp only", name, n);
        cmp(what, dinp, rdinp, ni, conv_tol_bwd);
        free(dw), free(rdw), free(dinp), free(rdinp);
    }
    free(inp), free(b), free(dout), free(out), free(ref), free(scratch);
}

static void test_conv(void) {
    static const conv_case cases[] = {
        {"3x3 s1 p1 32->32 28x28", 4, 28, 28, 32, 32, 3, 1, 1, 1, 1, 1, 3},
        {"3x3 s1 p1 1->32 (input conv)", 3, 28, 28, 1, 32, 3, 1, 1, 1, 1, 1, 0},
        {"3x3 s1 p1 32->1 (output conv)", 3, 28, 28, 32, 1, 3, 1, 1, 1, 1, 1, 0},
        {"3x3 s1 p1 64->64 7x9", 2, 7, 9, 64, 64, 3, 1, 1, 1, 1, 1, 1},
        {"3x3 s2 p1 32->32", 3, 14, 14, 32, 32, 3, 2, 1, 1, 1, 1, 2},
        {"3x3 s2 pad r/b only 32->64", 3, 14, 14, 32, 64, 3, 2, 0, 0, 1, 1, 0},
        {"3x3 s2 pad r/b only odd 8->8", 2, 9, 11, 8, 8, 3, 2, 0, 0, 1, 1, 0},
        {"1x1 64->32", 3, 14, 14, 64, 32, 1, 1, 0, 0, 0, 0, 2},
        {"1x1 3->8", 2, 5, 6, 3, 8, 1, 1, 0, 0, 0, 0, 0},
        {"5x5 p2 8->3", 2, 9, 9, 8, 3, 5, 1, 2, 2, 2, 2, 1},
        {"3x3 s1 p1 3->8", 2, 10, 12, 3, 8, 3, 1, 1, 1, 1, 1, 0},
    };
    const int bf16_runs = ddpm_bf16_supported();
    if (!bf16_runs) printf("SKIPPED: bf16 convolutions: this CPU has no AMX\n");
    for (size_t t = 0; t < (1 + (size_t)bf16_runs) * (sizeof cases / sizeof cases[0]); t++) {
        const size_t ncase = sizeof cases / sizeof cases[0];
        const conv_case *cc = &cases[t % ncase];
        const int bf16 = t >= ncase;
        conv_tol_fwd = bf16 ? 1e-2 : TOL_FWD, conv_tol_bwd = bf16 ? 1e-2 : TOL_BWD;
        dd_conv_geom g = {cc->N, cc->H, cc->W, cc->C, cc->OC, cc->K, cc->K, cc->stride,
                          cc->pt, cc->pl, cc->pb, cc->pr, 0, 0};
        CHECK_OK(dd_conv_geom_init(&g));
        dd_conv *cv = NULL;
        if (bf16) printf("  bf16:\n");
        CHECK_OK(dd_conv_create(&cv, &g, 1, bf16));
        if (!cv) continue;
        const size_t nw = (size_t)g.OC * g.C * g.KH * g.KW;
        float *w = randn(nw, 0.0);
        CHECK_OK(dd_conv_set_weights(cv, w));
        conv_run(cv, &g, g.N, w, cc->name);
        if (cc->n_small) {
            conv_run(cv, &g, cc->n_small, w, cc->name);   /* plans the smaller batch */
            conv_run(cv, &g, g.N, w, cc->name);           /* the full batch again */
        }
        if (t == 0) {   /* another thread count plans the batch again (primitives fix theirs), and back */
            const int nt = omp_get_max_threads();
            omp_set_num_threads(nt > 1 ? 1 : 2);
            conv_run(cv, &g, g.N, w, cc->name);
            conv_run(cv, &g, cc->n_small, w, cc->name);
            omp_set_num_threads(nt);
            conv_run(cv, &g, g.N, w, cc->name);
        }
        /* a weight update is picked up after set_weights */
        for (size_t i = 0; i < nw; i++) w[i] = -0.5f * w[i] + 0.25f;
        CHECK_OK(dd_conv_set_weights(cv, w));
        conv_run(cv, &g, cc->n_small ? cc->n_small : g.N, w, cc->name);
        free(w);
        dd_conv_free(cv);
    }

    conv_tol_fwd = TOL_FWD, conv_tol_bwd = TOL_BWD;
    /* bf16 refused where the CPU has no AMX (DDPM_NO_AMX hides it) */
    {
        dd_conv_geom gb = {2, 8, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 0, 0};
        CHECK_OK(dd_conv_geom_init(&gb));
        setenv("DDPM_NO_AMX", "1", 1);
        dd_conv *cb = NULL;
        CHECK_FAIL(dd_conv_create(&cb, &gb, 1, 1), DDPM_ERR_UNSUPPORTED);
        CHECK(cb == NULL && strstr(ddpm_last_error(), "AMX") != NULL);
        CHECK(!ddpm_bf16_supported());
        unsetenv("DDPM_NO_AMX");
    }
    /* inference-only plan: forward works, backward refuses; bad batch sizes and missing weights refused */
    dd_conv_geom g = {2, 8, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 0, 0};
    CHECK_OK(dd_conv_geom_init(&g));
    dd_conv *cv = NULL;
    CHECK_OK(dd_conv_create(&cv, &g, 0, 0));
    if (cv) {
        const size_t ni = (size_t)g.N * g.H * g.W * g.C, no = (size_t)g.N * g.OH * g.OW * g.OC;
        float *w = randn((size_t)g.OC * g.C * 9, 0.0), *b = randn((size_t)g.OC, 0.0), *inp = randn(ni, 0.0);
        float *out = randn(no, 0.0), *ref = randn(no, 0.0);
        void *scratch = malloc(dd_conv_scratch_size(cv) + 64);
        CHECK_FAIL(dd_conv_forward(cv, out, inp, b, 2, scratch), DDPM_ERR_INVALID_ARG);
        CHECK_OK(dd_conv_set_weights(cv, w));
        CHECK_OK(dd_conv_forward(cv, out, inp, b, 2, scratch));
        dd_ref_conv2d_forward_f32(ref, inp, w, b, &g);
        cmp("conv inference-only fwd", out, ref, no, TOL_FWD);
        CHECK_FAIL(dd_conv_forward(cv, out, inp, b, 3, scratch), DDPM_ERR_INVALID_ARG);
        CHECK_FAIL(dd_conv_forward(cv, out, inp, b, 0, scratch), DDPM_ERR_INVALID_ARG);
        CHECK_FAIL(dd_conv_backward(cv, inp, NULL, NULL, out, inp, 2, 0, scratch), DDPM_ERR_INVALID_ARG);
        free(w), free(b), free(inp), free(out), free(ref), free(scratch);
        dd_conv_free(cv);
    }
    dd_conv_geom bad = {2, 2, 2, 8, 16, 3, 3, 1, 0, 0, 0, 0, 0, 0};
    cv = NULL;
    CHECK_FAIL(dd_conv_create(&cv, &bad, 1, 0), DDPM_ERR_INVALID_ARG);
    CHECK(cv == NULL);
    dd_conv_free(NULL);
}

/* ------------------------------------------------------------------ linear */

static void test_linear(void) {
    static const int shapes[][3] = {{64, 128, 512}, {64, 512, 128}, {3, 7, 5}, {1, 32, 1}, {130, 65, 70}};
    char what[128];
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], IN = shapes[t][1], OUT = shapes[t][2];
        const size_t ni = (size_t)M * IN, no = (size_t)M * OUT, nw = (size_t)OUT * IN;
        float *inp = randn(ni, 0.0), *w = randn(nw, 0.0), *b = randn((size_t)OUT, 0.0), *dout = randn(no, 0.0);
        float *out = randn(no, 0.0), *ref = randn(no, 0.0);
        for (int with_b = 1; with_b >= 0; with_b--) {
            dd_linear_forward(out, inp, w, with_b ? b : NULL, M, IN, OUT);
            dd_ref_linear_forward_f32(ref, inp, w, with_b ? b : NULL, M, IN, OUT);
            snprintf(what, sizeof what, "linear %dx%d->%d fwd%s", M, IN, OUT, with_b ? "" : " (no bias)");
            cmp(what, out, ref, no, TOL_FWD);
        }
        for (int acc = 0; acc <= 1; acc++) {
            float *dinp = randn(ni, 0.0), *dw = randn(nw, 0.0), *db = randn((size_t)OUT, 0.0);
            float *rdinp = copy_of(dinp, ni), *rdw = copy_of(dw, nw), *rdb = copy_of(db, (size_t)OUT);
            dd_linear_backward(dinp, dw, db, dout, inp, w, M, IN, OUT, acc);
            dd_ref_linear_backward_f32(rdinp, rdw, rdb, dout, inp, w, M, IN, OUT, acc);
            snprintf(what, sizeof what, "linear %dx%d->%d dinp acc=%d", M, IN, OUT, acc);
            cmp(what, dinp, rdinp, ni, TOL_BWD);
            snprintf(what, sizeof what, "linear %dx%d->%d dw +=", M, IN, OUT);
            cmp(what, dw, rdw, nw, TOL_BWD);
            snprintf(what, sizeof what, "linear %dx%d->%d db +=", M, IN, OUT);
            cmp(what, db, rdb, (size_t)OUT, TOL_BWD);
            free(dinp), free(dw), free(db), free(rdinp), free(rdw), free(rdb);
        }
        free(inp), free(w), free(b), free(dout), free(out), free(ref);
    }
}

/* ------------------------------------------------------------------ group norm */

static void test_groupnorm(void) {
    float *gn_work = malloc(sizeof(float) * dd_groupnorm_work_floats() * (size_t)(omp_get_num_procs() + 2));
    double *gn_sums = malloc(sizeof(double) * dd_groupnorm_sums_doubles(3, 1024));   /* the largest N, C below */
    static const int shapes[][4] = {   /* N, HW, C, G */
        {3, 49, 32, 32}, {2, 196, 64, 32}, {3, 25, 8, 4}, {2, 784, 32, 32}, {2, 16, 1024, 2}, {2, 9, 96, 32},
        {2, 784, 128, 32},  /* one block on 1 thread is too big to cache, half of it on 2 threads is not */
    };
    char what[128];
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int N = shapes[t][0], HW = shapes[t][1], C = shapes[t][2], G = shapes[t][3];
        const size_t n = (size_t)N * HW * C;
        float *inp = randn(n, 1.5), *gamma = randn((size_t)C, 1.0), *beta = randn((size_t)C, 0.0);
        float *dout = randn(n, 0.0);
        for (int silu = 0; silu <= 1; silu++)
            for (int affine = 1; affine >= 0; affine--) {
                const float *ga = affine ? gamma : NULL, *be = affine ? beta : NULL;
                float *out = randn(n, 0.0), *ref = randn(n, 0.0);
                float *mean = randn((size_t)N * G, 0.0), *rstd = randn((size_t)N * G, 0.0);
                float *rmean = randn((size_t)N * G, 0.0), *rrstd = randn((size_t)N * G, 0.0);
                dd_groupnorm_forward(out, mean, rstd, inp, ga, be, N, HW, C, G, 1e-5, silu);
                dd_ref_groupnorm_forward_f32(ref, rmean, rrstd, inp, ga, be, N, HW, C, G, 1e-5, silu);
                snprintf(what, sizeof what, "groupnorm N%d HW%d C%d G%d silu=%d affine=%d fwd", N, HW, C, G, silu,
                         affine);
                cmp(what, out, ref, n, TOL_FWD);
                cmp("  mean", mean, rmean, (size_t)N * G, TOL_FWD);
                cmp("  rstd", rstd, rrstd, (size_t)N * G, TOL_FWD);
                for (int acc = 0; acc <= 1; acc++) {
                    float *dinp = randn(n, 0.0), *dg = randn((size_t)C, 0.0), *db = randn((size_t)C, 0.0);
                    float *rdinp = copy_of(dinp, n), *rdg = copy_of(dg, (size_t)C), *rdb = copy_of(db, (size_t)C);
                    dd_groupnorm_backward(dinp, affine ? dg : NULL, affine ? db : NULL, dout, inp, rmean, rrstd,
                                          ga, be, N, HW, C, G, silu, acc, acc ? gn_work : NULL, gn_sums);
                    dd_ref_groupnorm_backward_f32(rdinp, affine ? rdg : NULL, affine ? rdb : NULL, dout, inp,
                                                  rmean, rrstd, ga, be, N, HW, C, G, silu, acc);
                    snprintf(what, sizeof what, "groupnorm N%d HW%d C%d G%d silu=%d affine=%d dinp acc=%d", N, HW,
                             C, G, silu, affine, acc);
                    cmp(what, dinp, rdinp, n, TOL_BWD);
                    if (affine) {
                        cmp("  dgamma +=", dg, rdg, (size_t)C, TOL_BWD);
                        cmp("  dbeta +=", db, rdb, (size_t)C, TOL_BWD);
                    }
                    free(dinp), free(dg), free(db), free(rdinp), free(rdg), free(rdb);
                }
                free(out), free(ref), free(mean), free(rstd), free(rmean), free(rrstd);
            }
        /* the same bits for 1 and 2 threads */
        {
            float *o1 = randn(n, 0.0), *o2 = randn(n, 0.0), *m1 = randn((size_t)N * G, 0.0);
            float *r1 = randn((size_t)N * G, 0.0), *m2 = randn((size_t)N * G, 0.0), *r2 = randn((size_t)N * G, 0.0);
            float *g1 = calloc((size_t)C, sizeof(float)), *g2 = calloc((size_t)C, sizeof(float));
            const int nt = omp_get_max_threads();
            omp_set_num_threads(1);
            dd_groupnorm_forward(o1, m1, r1, inp, gamma, beta, N, HW, C, G, 1e-5, 1);
            dd_groupnorm_backward(o1, g1, NULL, dout, inp, m1, r1, gamma, beta, N, HW, C, G, 1, 0, gn_work, gn_sums);
            omp_set_num_threads(2);
            dd_groupnorm_forward(o2, m2, r2, inp, gamma, beta, N, HW, C, G, 1e-5, 1);
            dd_groupnorm_backward(o2, g2, NULL, dout, inp, m2, r2, gamma, beta, N, HW, C, G, 1, 0, gn_work, gn_sums);
            CHECK(memcmp(o1, o2, n * sizeof(float)) == 0 && memcmp(g1, g2, (size_t)C * sizeof(float)) == 0);
            /* and without the work slices (xhat and dy recomputed): the same bits */
            memset(g2, 0, (size_t)C * sizeof(float));
            dd_groupnorm_backward(o2, g2, NULL, dout, inp, m2, r2, gamma, beta, N, HW, C, G, 1, 0, NULL, gn_sums);
            omp_set_num_threads(nt);
            CHECK(memcmp(o1, o2, n * sizeof(float)) == 0 && memcmp(g1, g2, (size_t)C * sizeof(float)) == 0);
            free(o1), free(o2), free(m1), free(r1), free(m2), free(r2), free(g1), free(g2);
        }
        free(inp), free(gamma), free(beta), free(dout);
    }
    free(gn_work);
    free(gn_sums);
}

/* ------------------------------------------------------------------ glue ops */

static void test_eltwise(void) {
    static const size_t sizes[] = {1, 7, 1000, 100003};
    char what[128];
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        const size_t n = sizes[t];
        float *x = randn(n, 0.0), *y = randn(n, 0.0), *d = randn(n, 0.0);
        float *out = randn(n, 0.0), *ref = randn(n, 0.0);
        dd_silu_forward(out, x, n);
        dd_ref_silu_forward_f32(ref, x, n);
        snprintf(what, sizeof what, "silu n=%zu fwd", n);
        cmp(what, out, ref, n, TOL_FWD);
        for (int acc = 0; acc <= 1; acc++) {
            float *g = randn(n, 0.0), *rg = copy_of(g, n);
            dd_silu_backward(g, d, x, n, acc);
            dd_ref_silu_backward_f32(rg, d, x, n, acc);
            snprintf(what, sizeof what, "silu n=%zu bwd acc=%d", n, acc);
            cmp(what, g, rg, n, TOL_BWD);
            free(g), free(rg);
        }
        for (int k = 0; k < 2; k++) {
            const double alpha = k ? 0.7071067811865476 : 1.0;
            dd_add_forward(out, x, y, alpha, n);
            dd_ref_add_forward_f32(ref, x, y, alpha, n);
            snprintf(what, sizeof what, "add n=%zu alpha=%g", n, alpha);
            cmp(what, out, ref, n, TOL_FWD);
        }
        /* MSE: relative 1e-12 (both sum in double) and independent of the thread count */
        const double l = dd_mse_forward(x, y, n), rl = dd_ref_mse_forward_f32(x, y, n);
        printf("  mse n=%-8zu loss %.17g ref %.17g rel err %.3e\n", n, l, rl, fabs(l - rl) / rl);
        CHECK_MSG(fabs(l - rl) <= 1e-12 * rl, "mse %.17g vs %.17g", l, rl);
        for (int acc = 0; acc <= 1; acc++) {
            float *g = randn(n, 0.0), *rg = copy_of(g, n);
            dd_mse_backward(g, x, y, n, 0.37, acc);
            dd_ref_mse_backward_f32(rg, x, y, n, 0.37, acc);
            snprintf(what, sizeof what, "mse n=%zu bwd acc=%d", n, acc);
            cmp(what, g, rg, n, TOL_BWD);
            free(g), free(rg);
        }
        free(x), free(y), free(d), free(out), free(ref);
    }
    /* MSE over many chunks: the same bits for 1 and 2 threads */
    {
        const size_t n = 3000017;
        float *x = randn(n, 0.0), *y = randn(n, 0.3);
        const int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        const double a = dd_mse_forward(x, y, n);
        omp_set_num_threads(2);
        const double b = dd_mse_forward(x, y, n);
        omp_set_num_threads(nt);
        const double r = dd_ref_mse_forward_f32(x, y, n);
        printf("  mse n=%zu loss %.17g (1 thread) %.17g (2 threads) ref %.17g\n", n, a, b, r);
        CHECK(a == b);
        CHECK(fabs(a - r) <= 1e-12 * r);
        CHECK(dd_mse_forward(x, y, 0) == 0.0);
        free(x), free(y);
    }

    static const int shapes[][4] = {{2, 7, 7, 64}, {3, 14, 14, 32}, {1, 3, 5, 1}, {2, 4, 4, 96}};   /* N H W C */
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int N = shapes[t][0], H = shapes[t][1], W = shapes[t][2], C = shapes[t][3], HW = H * W;
        const size_t n = (size_t)N * HW * C, n4 = 4 * n;
        /* channel bias */
        float *x = randn(n, 0.0), *bias = randn((size_t)N * C, 0.0), *out = randn(n, 0.0), *ref = randn(n, 0.0);
        dd_add_channel_bias_forward(out, x, bias, N, HW, C);
        dd_ref_add_channel_bias_forward_f32(ref, x, bias, N, HW, C);
        snprintf(what, sizeof what, "add_channel_bias N%d HW%d C%d fwd", N, HW, C);
        cmp(what, out, ref, n, TOL_FWD);
        for (int acc = 0; acc <= 1; acc++) {
            float *di = randn(n, 0.0), *db = randn((size_t)N * C, 0.0);
            float *rdi = copy_of(di, n), *rdb = copy_of(db, (size_t)N * C);
            dd_add_channel_bias_backward(di, db, x, N, HW, C, acc);
            dd_ref_add_channel_bias_backward_f32(rdi, rdb, x, N, HW, C, acc);
            snprintf(what, sizeof what, "add_channel_bias N%d HW%d C%d dinp acc=%d", N, HW, C, acc);
            cmp(what, di, rdi, n, TOL_BWD);
            snprintf(what, sizeof what, "add_channel_bias N%d HW%d C%d dbias +=", N, HW, C);
            cmp(what, db, rdb, (size_t)N * C, TOL_BWD);
            free(di), free(db), free(rdi), free(rdb);
        }
        /* upsample */
        float *up = randn(n4, 0.0), *rup = randn(n4, 0.0), *dup = randn(n4, 0.0);
        dd_upsample2x_forward(up, x, N, H, W, C);
        dd_ref_upsample2x_forward_f32(rup, x, N, H, W, C);
        snprintf(what, sizeof what, "upsample2x N%d %dx%d C%d fwd", N, H, W, C);
        cmp(what, up, rup, n4, 0.0);
        for (int acc = 0; acc <= 1; acc++) {
            float *di = randn(n, 0.0), *rdi = copy_of(di, n);
            dd_upsample2x_backward(di, dup, N, H, W, C, acc);
            dd_ref_upsample2x_backward_f32(rdi, dup, N, H, W, C, acc);
            snprintf(what, sizeof what, "upsample2x N%d %dx%d C%d bwd acc=%d", N, H, W, C, acc);
            cmp(what, di, rdi, n, TOL_BWD);
            free(di), free(rdi);
        }
        /* concat with a second operand of C2 = C / 2 + 3 channels */
        const int C2 = C / 2 + 3;
        const size_t n2 = (size_t)N * HW * C2, nc = n + n2;
        float *x2 = randn(n2, 0.0), *cat = randn(nc, 0.0), *rcat = randn(nc, 0.0), *dcat = randn(nc, 0.0);
        dd_concat_forward(cat, x, x2, N, HW, C, C2);
        dd_ref_concat_forward_f32(rcat, x, x2, N, HW, C, C2);
        snprintf(what, sizeof what, "concat N%d HW%d C%d+%d fwd", N, HW, C, C2);
        cmp(what, cat, rcat, nc, 0.0);
        for (int acc = 0; acc <= 1; acc++) {
            float *da = randn(n, 0.0), *db = randn(n2, 0.0), *rda = copy_of(da, n), *rdb = copy_of(db, n2);
            dd_concat_backward(da, db, dcat, N, HW, C, C2, acc);
            dd_ref_concat_backward_f32(rda, rdb, dcat, N, HW, C, C2, acc);
            snprintf(what, sizeof what, "concat N%d HW%d C%d+%d bwd a acc=%d", N, HW, C, C2, acc);
            cmp(what, da, rda, n, TOL_BWD);
            snprintf(what, sizeof what, "concat N%d HW%d C%d+%d bwd b acc=%d", N, HW, C, C2, acc);
            cmp(what, db, rdb, n2, TOL_BWD);
            dd_concat_backward(NULL, db, dcat, N, HW, C, C2, acc);   /* NULL operand skipped */
            free(da), free(db), free(rda), free(rdb);
        }
        free(x), free(bias), free(out), free(ref), free(up), free(rup), free(dup);
        free(x2), free(cat), free(rcat), free(dcat);
    }
}

/* ------------------------------------------------------------------ vector row helpers */

/* dd_f32_to_bf16: round to nearest, ties to even; infinities kept, NaN stays NaN, the largest finite floats
   round up to infinity; a long array (the parallel chunks) the same as element by element. */
static void test_bf16_round(void) {
    static const uint32_t in[] = {0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f808001u, 0xbf808000u,
                                  0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u, 0x7f7fffffu, 0x00000001u};
    static const uint16_t want[] = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xbf80, 0x7f80, 0xff80, 0, 0, 0x7f80, 0x0000};
    const size_t n = sizeof in / sizeof in[0];
    float f[sizeof in / sizeof in[0]];
    uint16_t got[sizeof in / sizeof in[0]];
    memcpy(f, in, sizeof in);
    dd_f32_to_bf16(got, f, n);
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0x7fc00001u || in[i] == 0x7f800001u)
            CHECK_MSG((got[i] & 0x7f80) == 0x7f80 && (got[i] & 0x7f) != 0, "bf16 of NaN %08x is %04x", in[i], got[i]);
        else
            CHECK_MSG(got[i] == want[i], "bf16 of %08x is %04x, want %04x", in[i], got[i], want[i]);
    }
    const size_t m = 100003;
    float *x = randn(m, 0.0);
    uint16_t *a = malloc(m * sizeof *a), *b = malloc(m * sizeof *b);
    dd_f32_to_bf16(a, x, m);
    for (size_t i = 0; i < m; i++) dd_f32_to_bf16(b + i, x + i, 1);
    CHECK(memcmp(a, b, m * sizeof *a) == 0);
    free(x), free(a), free(b);
}

static void test_vector_helpers(void) {
    /* e^x against exp in double over the whole clamped range, odd lengths (the padded tail) */
    const size_t n = 100003;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *z = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(-87.3 + 175.3 * (double)i / (double)(n - 1));
    dd_vexp(y, x, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = exp((double)x[i]), r = fabs((double)y[i] - e) / e;
        if (r > worst) worst = r;
    }
    printf("  %-44s max rel err %.3e\n", "vexp on [-87.3, 88]", worst);
    CHECK(worst < 5e-7);
    for (size_t len = 1; len <= 40; len++) {   /* lengths around the 16-element blocks; in place */
        memcpy(z, x + 1000 * len, len * sizeof(float));
        dd_vexp(z, z, len);
        dd_vexp(y, x + 1000 * len, len);
        CHECK(memcmp(y, z, len * sizeof(float)) == 0);
    }
    const float special[6] = {NAN, INFINITY, -INFINITY, -1000.0f, 1000.0f, 0.0f};
    float e[6], sg[6], sl[6];
    dd_vexp(e, special, 6);
    dd_vsigmoid(sg, special, 6);
    dd_vsilu(sl, special, 6);
    for (int i = 0; i < 3; i++) CHECK(isnan(e[i]) && isnan(sg[i]) && isnan(sl[i]));   /* NaN, +-inf: NaN */
    CHECK(e[3] > 0.0f && e[3] < 1.2e-38f && e[4] > 1e38f && isfinite(e[4]) && e[5] == 1.0f);
    CHECK(sg[3] >= 0.0f && sg[3] < 1e-37f && sg[4] == 1.0f && sg[5] == 0.5f);
    CHECK(sl[4] == 1000.0f && fabsf(sl[3]) < 1e-34f && sl[5] == 0.0f);
    /* sigmoid and SiLU rows against the float reference */
    for (size_t i = 0; i < n; i++) x[i] = (float)(-30.0 + 60.0 * (double)i / (double)(n - 1));
    dd_vsigmoid(y, x, n);
    for (size_t i = 0; i < n; i++) z[i] = 1.0f / (1.0f + expf(-x[i]));
    cmp("vsigmoid on [-30, 30]", y, z, n, 1e-6);
    dd_vsilu(y, x, n);
    dd_ref_silu_forward_f32(z, x, n);
    cmp("vsilu on [-30, 30]", y, z, n, 1e-6);
    /* softmax rows (exact max subtracted, negatives included) against exp in double */
    float *r = randn(1001, -3.0), *sm = malloc(1001 * sizeof(float));
    for (size_t len = 1; len <= 1001; len += 37) {
        memcpy(sm, r, len * sizeof(float));
        sm[len / 2] += 50.0f;   /* one dominant entry; the rest tiny */
        double m = sm[0], zs = 0, werr = 0;
        for (size_t i = 1; i < len; i++) m = sm[i] > m ? sm[i] : m;
        for (size_t i = 0; i < len; i++) zs += exp((double)sm[i] - m);
        float *p = copy_of(sm, len);
        dd_vsoftmax(p, len);
        for (size_t i = 0; i < len; i++) {
            const double err = fabs((double)p[i] - exp((double)sm[i] - m) / zs);
            if (err > werr) werr = err;
        }
        CHECK_MSG(werr < 1e-6, "softmax len %zu max abs err %.3e", len, werr);
        free(p);
    }
    free(sm);
    free(x), free(y), free(z), free(r);
}

/* ------------------------------------------------------------------ attention */

static void test_attention(void) {
    static const int shapes[][4] = {   /* N, L, C, heads */
        {3, 196, 32, 4}, {2, 49, 64, 8}, {2, 64, 16, 1}, {1, 64, 256, 1}, {2, 49, 32, 2}, {1, 1100, 16, 2},
    };
    char what[160];
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int N = shapes[t][0], L = shapes[t][1], C = shapes[t][2], heads = shapes[t][3], d = C / heads;
        const size_t n = (size_t)N * L * C;
        const double scale = 1.0 / sqrt((double)d);
        float *q = randn(n, 0.0), *k = randn(n, 0.0), *v = randn(n, 0.0), *dout = randn(n, 0.0);
        float *out = randn(n, 0.0), *ref = randn(n, 0.0);
        float *work = malloc(dd_attention_work_floats(L, C, heads) * (size_t)omp_get_max_threads() * sizeof(float));
        dd_attention_forward(out, q, k, v, N, L, C, heads, scale, work);
        dd_ref_attention_forward_f32(ref, q, k, v, N, L, C, heads, scale);
        snprintf(what, sizeof what, "attention N%d L%d C%d heads%d (d=%d) fwd", N, L, C, heads, d);
        cmp(what, out, ref, n, TOL_FWD);
        for (int acc = 0; acc <= 1; acc++) {
            float *dq = randn(n, 0.0), *dk = randn(n, 0.0), *dv = randn(n, 0.0);
            float *rdq = copy_of(dq, n), *rdk = copy_of(dk, n), *rdv = copy_of(dv, n);
            dd_attention_backward(dq, dk, dv, dout, q, k, v, N, L, C, heads, scale, acc, work);
            dd_ref_attention_backward_f32(rdq, rdk, rdv, dout, q, k, v, N, L, C, heads, scale, acc);
            snprintf(what, sizeof what, "attention N%d L%d C%d heads%d dq acc=%d", N, L, C, heads, acc);
            cmp(what, dq, rdq, n, TOL_BWD);
            snprintf(what, sizeof what, "attention N%d L%d C%d heads%d dk acc=%d", N, L, C, heads, acc);
            cmp(what, dk, rdk, n, TOL_BWD);
            snprintf(what, sizeof what, "attention N%d L%d C%d heads%d dv acc=%d", N, L, C, heads, acc);
            cmp(what, dv, rdv, n, TOL_BWD);
            free(dq), free(dk), free(dv), free(rdq), free(rdk), free(rdv);
        }
        /* only some gradients */
        {
            float *dk = randn(n, 0.0), *rdk = copy_of(dk, n);
            dd_attention_backward(NULL, dk, NULL, dout, q, k, v, N, L, C, heads, scale, 0, work);
            dd_ref_attention_backward_f32(NULL, rdk, NULL, dout, q, k, v, N, L, C, heads, scale, 0);
            snprintf(what, sizeof what, "attention N%d L%d C%d heads%d dk only", N, L, C, heads);
            cmp(what, dk, rdk, n, TOL_BWD);
            free(dk), free(rdk);
        }
        free(q), free(k), free(v), free(dout), free(out), free(ref), free(work);
    }
    /* a long sequence (many query blocks): forward only, the reference backward is too slow here */
    {
        const int N = 1, L = 4096, C = 8, heads = 1;
        const size_t n = (size_t)N * L * C;
        float *q = randn(n, 0.0), *k = randn(n, 0.0), *v = randn(n, 0.0), *out = randn(n, 0.0), *ref = randn(n, 0.0);
        float *work = malloc(dd_attention_work_floats(L, C, heads) * (size_t)omp_get_max_threads() * sizeof(float));
        dd_attention_forward(out, q, k, v, N, L, C, heads, 1.0 / sqrt(8.0), work);
        dd_ref_attention_forward_f32(ref, q, k, v, N, L, C, heads, 1.0 / sqrt(8.0));
        cmp("attention N1 L4096 C8 heads1 fwd", out, ref, n, TOL_FWD);
        free(q), free(k), free(v), free(out), free(ref), free(work);
    }
}

int main(void) {
    test_bf16_round();
    printf("threads: %d\n", omp_get_max_threads());
    test_conv();
    test_linear();
    test_groupnorm();
    test_eltwise();
    test_vector_helpers();
    test_attention();
    return dd_test_finish("test_ops_fast");
}
