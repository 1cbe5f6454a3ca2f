/* test_ops_grad.c — the reference twins of src/ops: central finite-difference checks of every f64 backward,
   the acc / accumulate contract, the f32 twin against the f64 twin, the timestep embedding (closed form,
   hand-computed float32 values, the diffusers unet_tiny fixture), dropout and the NCHW <-> NHWC layout.

   Finite differences: for loss = sum(r * out) with a random r, dloss/dx_i = sum_k r_k (out+_k - out-_k) / 2h
   with h = 1e-6. Differencing the outputs before summing removes the cancellation of the large loss, so the
   error is truncation (h^2 f''' ~ 1e-12) plus about eps |out| / h ~ 1e-10. Tolerances (relative to
   max(max |numeric gradient|, 0.1)):
     TOL_LINEAR = 1e-8  ops linear in each input (conv2d, linear, upsample2x, maxpool2x2 without
                        ties, concat, add, add_channel_bias, embedding): the difference quotient is exact
                        up to rounding;
     TOL_SMOOTH = 1e-6  nonlinear ops (groupnorm with / without SiLU, silu, gelu, attention);
     TOL_MSE    = 1e-7  mse: quadratic, but its output is one scalar, so the two losses cancel
                        (error ~ eps loss / h ~ 1e-10 absolute against gradients ~ 0.05).
   The f32 twin must agree with the f64 twin within TOL_F32 = 1e-5 relative to the largest f64 value. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/reference/ref_ops.h"
#include "core/core.h"
#include "testutil.h"

#define TOL_LINEAR 1e-8
#define TOL_SMOOTH 1e-6
#define TOL_MSE 1e-7
#define TOL_F32 1e-5
#define FD_H 1e-6
#define FD_FLOOR 0.1

/* ------------------------------------------------------------------------------------------ helpers */

static uint64_t g_seed = 1000;

/* n standard normals (never zero), rounded to float so the f32 twin sees the same values. */
static double *vec(size_t n) {
    double *x = malloc((n ? n : 1) * sizeof *x);
    ddpm_rng_normal_f64(g_seed++, 17, 0, x, n);
    for (size_t i = 0; i < n; i++) x[i] = (double)(float)x[i];
    return x;
}
static double *zeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }
static double *dup(const double *x, size_t n) {
    double *y = malloc((n ? n : 1) * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}
static float *tof(const double *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
static float *zerosf(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* Worst finite-difference error per op (relative), printed at the end. */
typedef struct {
    const char *op;
    double worst, tol;
    char where[160];
} op_stat;
static op_stat g_stats[32];
static int g_nstats = 0;

static void record(const char *op, const char *where, double rel, double tol) {
    int k = 0;
    while (k < g_nstats && strcmp(g_stats[k].op, op) != 0) k++;
    if (k == g_nstats) {
        g_stats[g_nstats].op = op;
        g_stats[g_nstats].worst = -1;
        g_stats[g_nstats++].tol = tol;
    }
    if (rel > g_stats[k].worst) {
        g_stats[k].worst = rel;
        snprintf(g_stats[k].where, sizeof g_stats[k].where, "%s", where);
    }
}

/* A forward pass reading its inputs from ctx, writing out[nout]. */
typedef void (*fwd_fn)(void *ctx, double *out);

/* Numerical gradient of sum(r * out) with respect to x[0..nx) (x is one of ctx's inputs, perturbed in place
   and restored), compared with the analytic `grad`. */
static void fd_check(const char *op, const char *cfg, const char *wrt, fwd_fn f, void *ctx, double *x, size_t nx,
                     const double *grad, const double *r, size_t nout, double tol) {
    double *op_ = malloc(nout * sizeof *op_), *om = malloc(nout * sizeof *om), *num = malloc(nx * sizeof *num);
    for (size_t i = 0; i < nx; i++) {
        const double x0 = x[i];
        x[i] = x0 + FD_H;
        f(ctx, op_);
        x[i] = x0 - FD_H;
        f(ctx, om);
        x[i] = x0;
        double s = 0;
        for (size_t k = 0; k < nout; k++) s += r[k] * (op_[k] - om[k]);
        num[i] = s / (2 * FD_H);
    }
    double scale = FD_FLOOR, maxerr = 0;
    for (size_t i = 0; i < nx; i++) scale = fmax(scale, fabs(num[i]));
    for (size_t i = 0; i < nx; i++) maxerr = fmax(maxerr, fabs(grad[i] - num[i]));
    char what[160];
    snprintf(what, sizeof what, "fd %s %s d%s", op, cfg, wrt);
    record(op, what + 3, maxerr / scale, tol);
    dd_check_close(what, grad, num, nx, tol, FD_FLOOR);
    free(op_);
    free(om);
    free(num);
}

/* acc = 1 / parameter accumulation: got == pre + g0, bit for bit when exact, else within 1e-14. */
static void check_added(const char *what, const double *got, const double *pre, const double *g0, size_t n,
                        int exact) {
    double *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) want[i] = pre[i] + g0[i];
    dd_check_close(what, got, want, n, exact ? 0.0 : 1e-14, 1e-300);
    free(want);
}

/* f32 twin result against the f64 twin. */
static void check_f32(const char *what, const float *got, const double *want, size_t n) {
    double *g = malloc((n ? n : 1) * sizeof *g);
    for (size_t i = 0; i < n; i++) g[i] = got[i];
    dd_check_close(what, g, want, n, TOL_F32, 1e-6);
    free(g);
}

#define FREE_ALL(...)                                                                                       \
    do {                                                                                                    \
        void *p_[] = {__VA_ARGS__};                                                                         \
        for (size_t i_ = 0; i_ < sizeof p_ / sizeof p_[0]; i_++) free(p_[i_]);                              \
    } while (0)

/* ------------------------------------------------------------------------------------------ conv2d */

typedef struct {
    dd_conv_geom g;
    double *x, *w, *b;
} conv_ctx;
static void conv_fwd(void *c_, double *out) {
    conv_ctx *c = c_;
    dd_ref_conv2d_forward_f64(out, c->x, c->w, c->b, &c->g);
}

static void test_conv(int N, int H, int W, int C, int OC, int K, int s, int pt, int pl, int pb, int pr, int bias) {
    conv_ctx c = {{N, H, W, C, OC, K, K, s, pt, pl, pb, pr, 0, 0}, NULL, NULL, NULL};
    CHECK_OK(dd_conv_geom_init(&c.g));
    const size_t nx = (size_t)N * H * W * C, nw = (size_t)OC * C * K * K, nb = (size_t)OC;
    const size_t no = (size_t)N * c.g.OH * c.g.OW * OC;
    char cfg[96];
    snprintf(cfg, sizeof cfg, "k%d s%d pad(t%d,l%d,b%d,r%d) [%d,%d,%d,%d]->[%d,%d,%d,%d]%s", K, s, pt, pl, pb, pr, N,
             H, W, C, N, c.g.OH, c.g.OW, OC, bias ? "" : " nobias");
    c.x = vec(nx);
    c.w = vec(nw);
    c.b = bias ? vec(nb) : NULL;
    double *r = vec(no), *out = zeros(no), *dx = zeros(nx), *dw = zeros(nw), *db = zeros(nb);
    conv_fwd(&c, out);
    dd_ref_conv2d_backward_f64(dx, dw, bias ? db : NULL, r, c.x, c.w, &c.g, 0);
    fd_check("conv2d", cfg, "inp", conv_fwd, &c, c.x, nx, dx, r, no, TOL_LINEAR);
    fd_check("conv2d", cfg, "w", conv_fwd, &c, c.w, nw, dw, r, no, TOL_LINEAR);
    if (bias) fd_check("conv2d", cfg, "b", conv_fwd, &c, c.b, nb, db, r, no, TOL_LINEAR);

    /* acc = 1 adds to dinp; dw, db always accumulate */
    double *px = vec(nx), *pw = vec(nw), *pb_ = vec(nb);
    double *ax = dup(px, nx), *aw = dup(pw, nw), *ab = dup(pb_, nb);
    dd_ref_conv2d_backward_f64(ax, aw, ab, r, c.x, c.w, &c.g, 1);
    check_added("conv2d acc=1 dinp", ax, px, dx, nx, 1);
    check_added("conv2d dw +=", aw, pw, dw, nw, 1);
    if (bias) check_added("conv2d db +=", ab, pb_, db, nb, 1);
    /* NULL gradients are skipped */
    dd_ref_conv2d_backward_f64(NULL, NULL, NULL, r, c.x, c.w, &c.g, 0);

    /* f32 twin */
    float *xf = tof(c.x, nx), *wf = tof(c.w, nw), *bf = bias ? tof(c.b, nb) : NULL, *rf = tof(r, no);
    float *of = zerosf(no), *dxf = zerosf(nx), *dwf = zerosf(nw), *dbf = zerosf(nb);
    dd_ref_conv2d_forward_f32(of, xf, wf, bf, &c.g);
    dd_ref_conv2d_backward_f32(dxf, dwf, bias ? dbf : NULL, rf, xf, wf, &c.g, 0);
    check_f32("conv2d f32 out", of, out, no);
    check_f32("conv2d f32 dinp", dxf, dx, nx);
    check_f32("conv2d f32 dw", dwf, dw, nw);
    check_f32("conv2d f32 db", dbf, db, nb);
    FREE_ALL(c.x, c.w, c.b, r, out, dx, dw, db, px, pw, pb_, ax, aw, ab, xf, wf, bf, rf, of, dxf, dwf, dbf);
}

static void test_conv_geom(void) {
    dd_conv_geom g = {2, 8, 7, 3, 4, 3, 3, 2, 0, 0, 1, 1, 0, 0};   /* Downsample2D padding 0: 8x7 -> 4x3 */
    CHECK_OK(dd_conv_geom_init(&g));
    CHECK(g.OH == 4 && g.OW == 3);
    dd_conv_geom g2 = {1, 7, 7, 1, 1, 3, 3, 2, 1, 1, 1, 1, 0, 0};   /* padding 1: 7 -> 4 */
    CHECK_OK(dd_conv_geom_init(&g2));
    CHECK(g2.OH == 4 && g2.OW == 4);
    dd_conv_geom bad = g;
    bad.stride = 0;
    CHECK_FAIL(dd_conv_geom_init(&bad), DDPM_ERR_INVALID_ARG);
    bad = g;
    bad.pad_l = -1;
    CHECK_FAIL(dd_conv_geom_init(&bad), DDPM_ERR_INVALID_ARG);
    bad = g;
    bad.KH = 10;
    CHECK_FAIL(dd_conv_geom_init(&bad), DDPM_ERR_INVALID_ARG);
    bad = g;
    bad.C = 0;
    CHECK_FAIL(dd_conv_geom_init(&bad), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(dd_conv_geom_init(NULL), DDPM_ERR_INVALID_ARG);
}

/* ------------------------------------------------------------------------------------------ linear */

typedef struct {
    int M, IN, OUT;
    double *x, *w, *b;
} lin_ctx;
static void lin_fwd(void *c_, double *out) {
    lin_ctx *c = c_;
    dd_ref_linear_forward_f64(out, c->x, c->w, c->b, c->M, c->IN, c->OUT);
}

static void test_linear(int M, int IN, int OUT, int bias) {
    lin_ctx c = {M, IN, OUT, NULL, NULL, NULL};
    const size_t nx = (size_t)M * IN, nw = (size_t)OUT * IN, no = (size_t)M * OUT;
    char cfg[64];
    snprintf(cfg, sizeof cfg, "[%d,%d]x[%d,%d]^T%s", M, IN, OUT, IN, bias ? "" : " nobias");
    c.x = vec(nx);
    c.w = vec(nw);
    c.b = bias ? vec((size_t)OUT) : NULL;
    double *r = vec(no), *out = zeros(no), *dx = zeros(nx), *dw = zeros(nw), *db = zeros((size_t)OUT);
    lin_fwd(&c, out);
    dd_ref_linear_backward_f64(dx, dw, bias ? db : NULL, r, c.x, c.w, M, IN, OUT, 0);
    fd_check("linear", cfg, "inp", lin_fwd, &c, c.x, nx, dx, r, no, TOL_LINEAR);
    fd_check("linear", cfg, "w", lin_fwd, &c, c.w, nw, dw, r, no, TOL_LINEAR);
    if (bias) fd_check("linear", cfg, "b", lin_fwd, &c, c.b, (size_t)OUT, db, r, no, TOL_LINEAR);

    double *px = vec(nx), *pw = vec(nw), *pb = vec((size_t)OUT);
    double *ax = dup(px, nx), *aw = dup(pw, nw), *ab = dup(pb, (size_t)OUT);
    dd_ref_linear_backward_f64(ax, aw, ab, r, c.x, c.w, M, IN, OUT, 1);
    check_added("linear acc=1 dinp", ax, px, dx, nx, 1);
    check_added("linear dw +=", aw, pw, dw, nw, 1);
    if (bias) check_added("linear db +=", ab, pb, db, (size_t)OUT, 1);
    dd_ref_linear_backward_f64(NULL, NULL, NULL, r, c.x, c.w, M, IN, OUT, 0);

    float *xf = tof(c.x, nx), *wf = tof(c.w, nw), *bf = bias ? tof(c.b, (size_t)OUT) : NULL, *rf = tof(r, no);
    float *of = zerosf(no), *dxf = zerosf(nx), *dwf = zerosf(nw), *dbf = zerosf((size_t)OUT);
    dd_ref_linear_forward_f32(of, xf, wf, bf, M, IN, OUT);
    dd_ref_linear_backward_f32(dxf, dwf, bias ? dbf : NULL, rf, xf, wf, M, IN, OUT, 0);
    check_f32("linear f32 out", of, out, no);
    check_f32("linear f32 dinp", dxf, dx, nx);
    check_f32("linear f32 dw", dwf, dw, nw);
    check_f32("linear f32 db", dbf, db, (size_t)OUT);
    FREE_ALL(c.x, c.w, c.b, r, out, dx, dw, db, px, pw, pb, ax, aw, ab, xf, wf, bf, rf, of, dxf, dwf, dbf);
}

/* ------------------------------------------------------------------------------------------ group norm */

typedef struct {
    int N, HW, C, G, silu;
    double eps;
    double *x, *gamma, *beta, *mean, *rstd;
} gn_ctx;
static void gn_fwd(void *c_, double *out) {
    gn_ctx *c = c_;
    dd_ref_groupnorm_forward_f64(out, c->mean, c->rstd, c->x, c->gamma, c->beta, c->N, c->HW, c->C, c->G, c->eps,
                                 c->silu);
}

static void test_groupnorm(int N, int HW, int C, int G, int silu) {
    const size_t nx = (size_t)N * HW * C, ns = (size_t)N * G;
    gn_ctx c = {N, HW, C, G, silu, 1e-5, vec(nx), vec((size_t)C), vec((size_t)C), zeros(ns), zeros(ns)};
    char cfg[64];
    snprintf(cfg, sizeof cfg, "[N%d,HW%d,C%d] G%d%s", N, HW, C, G, silu ? " +silu" : "");
    const char *op = silu ? "groupnorm+silu" : "groupnorm";
    double *r = vec(nx), *out = zeros(nx), *dx = zeros(nx), *dg = zeros((size_t)C), *dbt = zeros((size_t)C);
    gn_fwd(&c, out);
    double *mean = dup(c.mean, ns), *rstd = dup(c.rstd, ns);   /* saved state of the unperturbed forward */
    /* statistics against a direct computation */
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            const int Cg = C / G;
            double s = 0, s2 = 0;
            for (int p = 0; p < HW; p++)
                for (int j = 0; j < Cg; j++) s += c.x[((size_t)n * HW + p) * C + g * Cg + j];
            const double mu = s / (Cg * HW);
            for (int p = 0; p < HW; p++)
                for (int j = 0; j < Cg; j++) {
                    const double d = c.x[((size_t)n * HW + p) * C + g * Cg + j] - mu;
                    s2 += d * d;
                }
            CHECK(fabs(mean[n * G + g] - mu) < 1e-14);
            CHECK(fabs(rstd[n * G + g] - 1 / sqrt(s2 / (Cg * HW) + 1e-5)) < 1e-12);
        }
    dd_ref_groupnorm_backward_f64(dx, dg, dbt, r, c.x, mean, rstd, c.gamma, c.beta, N, HW, C, G, silu, 0);
    fd_check(op, cfg, "inp", gn_fwd, &c, c.x, nx, dx, r, nx, TOL_SMOOTH);
    fd_check(op, cfg, "gamma", gn_fwd, &c, c.gamma, (size_t)C, dg, r, nx, TOL_SMOOTH);
    fd_check(op, cfg, "beta", gn_fwd, &c, c.beta, (size_t)C, dbt, r, nx, TOL_SMOOTH);

    double *px = vec(nx), *pg = vec((size_t)C), *pb = vec((size_t)C);
    double *ax = dup(px, nx), *ag = dup(pg, (size_t)C), *ab = dup(pb, (size_t)C);
    dd_ref_groupnorm_backward_f64(ax, ag, ab, r, c.x, mean, rstd, c.gamma, c.beta, N, HW, C, G, silu, 1);
    check_added("groupnorm acc=1 dinp", ax, px, dx, nx, 1);
    check_added("groupnorm dgamma +=", ag, pg, dg, (size_t)C, 1);
    check_added("groupnorm dbeta +=", ab, pb, dbt, (size_t)C, 1);

    float *xf = tof(c.x, nx), *gf = tof(c.gamma, (size_t)C), *bf = tof(c.beta, (size_t)C), *rf = tof(r, nx);
    float *of = zerosf(nx), *mf = zerosf(ns), *sf = zerosf(ns), *dxf = zerosf(nx);
    float *dgf = zerosf((size_t)C), *dbf = zerosf((size_t)C);
    dd_ref_groupnorm_forward_f32(of, mf, sf, xf, gf, bf, N, HW, C, G, 1e-5, silu);
    dd_ref_groupnorm_backward_f32(dxf, dgf, dbf, rf, xf, mf, sf, gf, bf, N, HW, C, G, silu, 0);
    check_f32("groupnorm f32 out", of, out, nx);
    check_f32("groupnorm f32 rstd", sf, rstd, ns);
    check_f32("groupnorm f32 dinp", dxf, dx, nx);
    check_f32("groupnorm f32 dgamma", dgf, dg, (size_t)C);
    check_f32("groupnorm f32 dbeta", dbf, dbt, (size_t)C);
    FREE_ALL(c.x, c.gamma, c.beta, c.mean, c.rstd, r, out, dx, dg, dbt, mean, rstd, px, pg, pb, ax, ag, ab, xf, gf,
             bf, rf, of, mf, sf, dxf, dgf, dbf);
}

/* ------------------------------------------------------------------------------------------ SiLU, GELU */

typedef struct {
    size_t n;
    int gelu;
    double *x;
} act_ctx;
static void act_fwd(void *c_, double *out) {
    act_ctx *c = c_;
    if (c->gelu) dd_ref_gelu_forward_f64(out, c->x, c->n);
    else dd_ref_silu_forward_f64(out, c->x, c->n);
}

static void test_activation(int gelu) {
    const size_t n = 64;
    act_ctx c = {n, gelu, vec(n)};
    c.x[0] = 9.5;   /* saturated tails */
    c.x[1] = -9.5;
    const char *op = gelu ? "gelu" : "silu";
    double *r = vec(n), *out = zeros(n), *dx = zeros(n);
    act_fwd(&c, out);
    /* closed forms */
    for (size_t i = 0; i < n; i++) {
        const double x = c.x[i];
        const double want = gelu ? 0.5 * x * (1 + erf(x / sqrt(2.0))) : x / (1 + exp(-x));
        CHECK_MSG(fabs(out[i] - want) <= 1e-15 * fmax(1, fabs(want)), "%s(%g) = %.17g, want %.17g", op, x, out[i],
                  want);
    }
    if (gelu) dd_ref_gelu_backward_f64(dx, r, c.x, n, 0);
    else dd_ref_silu_backward_f64(dx, r, c.x, n, 0);
    fd_check(op, "n64", "inp", act_fwd, &c, c.x, n, dx, r, n, TOL_SMOOTH);

    double *px = vec(n), *ax = dup(px, n);
    if (gelu) dd_ref_gelu_backward_f64(ax, r, c.x, n, 1);
    else dd_ref_silu_backward_f64(ax, r, c.x, n, 1);
    check_added(gelu ? "gelu acc=1" : "silu acc=1", ax, px, dx, n, 1);

    float *xf = tof(c.x, n), *rf = tof(r, n), *of = zerosf(n), *dxf = zerosf(n);
    if (gelu) {
        dd_ref_gelu_forward_f32(of, xf, n);
        dd_ref_gelu_backward_f32(dxf, rf, xf, n, 0);
    } else {
        dd_ref_silu_forward_f32(of, xf, n);
        dd_ref_silu_backward_f32(dxf, rf, xf, n, 0);
    }
    check_f32(gelu ? "gelu f32 out" : "silu f32 out", of, out, n);
    check_f32(gelu ? "gelu f32 dinp" : "silu f32 dinp", dxf, dx, n);
    FREE_ALL(c.x, r, out, dx, px, ax, xf, rf, of, dxf);
}

/* ------------------------------------------------------------------------------------------ attention */

typedef struct {
    int N, L, C, heads;
    double scale;
    double *q, *k, *v;
} att_ctx;
static void att_fwd(void *c_, double *out) {
    att_ctx *c = c_;
    dd_ref_attention_forward_f64(out, c->q, c->k, c->v, c->N, c->L, c->C, c->heads, c->scale);
}

/* Direct evaluation of softmax(q k^T scale) v for image n, head h, query i, channel e (closed form check). */
static double att_direct(const att_ctx *c, int n, int h, int i, int e) {
    const int d = c->C / c->heads;
    double m = -INFINITY, z = 0, o = 0;
    double s[64];
    for (int j = 0; j < c->L; j++) {
        double dot = 0;
        for (int t = 0; t < d; t++)
            dot += c->q[((size_t)n * c->L + i) * c->C + h * d + t] * c->k[((size_t)n * c->L + j) * c->C + h * d + t];
        s[j] = dot * c->scale;
        m = fmax(m, s[j]);
    }
    for (int j = 0; j < c->L; j++) z += exp(s[j] - m);
    for (int j = 0; j < c->L; j++) o += exp(s[j] - m) / z * c->v[((size_t)n * c->L + j) * c->C + h * d + e];
    return o;
}

static void test_attention(int N, int L, int C, int heads) {
    const size_t nt = (size_t)N * L * C;
    att_ctx c = {N, L, C, heads, 1.0 / sqrt((double)(C / heads)), vec(nt), vec(nt), vec(nt)};
    char cfg[64];
    snprintf(cfg, sizeof cfg, "[N%d,L%d,C%d] heads %d", N, L, C, heads);
    double *r = vec(nt), *out = zeros(nt), *dq = zeros(nt), *dk = zeros(nt), *dv = zeros(nt);
    att_fwd(&c, out);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < L; i++)
            for (int ch = 0; ch < C; ch++) {
                const int d = C / heads;
                const double want = att_direct(&c, n, ch / d, i, ch % d);
                CHECK_MSG(fabs(out[((size_t)n * L + i) * C + ch] - want) < 1e-13, "attention out [%d,%d,%d]", n, i, ch);
            }
    dd_ref_attention_backward_f64(dq, dk, dv, r, c.q, c.k, c.v, N, L, C, heads, c.scale, 0);
    fd_check("attention", cfg, "q", att_fwd, &c, c.q, nt, dq, r, nt, TOL_SMOOTH);
    fd_check("attention", cfg, "k", att_fwd, &c, c.k, nt, dk, r, nt, TOL_SMOOTH);
    fd_check("attention", cfg, "v", att_fwd, &c, c.v, nt, dv, r, nt, TOL_SMOOTH);

    /* acc = 1: dq is gathered (exact); dk, dv add query by query onto the pre-filled value (rounding order) */
    double *pq = vec(nt), *pk = vec(nt), *pv = vec(nt);
    double *aq = dup(pq, nt), *ak = dup(pk, nt), *av = dup(pv, nt);
    dd_ref_attention_backward_f64(aq, ak, av, r, c.q, c.k, c.v, N, L, C, heads, c.scale, 1);
    check_added("attention acc=1 dq", aq, pq, dq, nt, 1);
    check_added("attention acc=1 dk", ak, pk, dk, nt, 0);
    check_added("attention acc=1 dv", av, pv, dv, nt, 0);
    /* one gradient at a time (NULL others) gives the same values */
    double *oq = zeros(nt);
    dd_ref_attention_backward_f64(oq, NULL, NULL, r, c.q, c.k, c.v, N, L, C, heads, c.scale, 0);
    dd_check_close("attention dq alone", oq, dq, nt, 0.0, 1e-300);
    memset(oq, 0, nt * sizeof *oq);
    dd_ref_attention_backward_f64(NULL, oq, NULL, r, c.q, c.k, c.v, N, L, C, heads, c.scale, 0);
    dd_check_close("attention dk alone", oq, dk, nt, 0.0, 1e-300);

    float *qf = tof(c.q, nt), *kf = tof(c.k, nt), *vf = tof(c.v, nt), *rf = tof(r, nt), *of = zerosf(nt);
    float *dqf = zerosf(nt), *dkf = zerosf(nt), *dvf = zerosf(nt);
    dd_ref_attention_forward_f32(of, qf, kf, vf, N, L, C, heads, c.scale);
    dd_ref_attention_backward_f32(dqf, dkf, dvf, rf, qf, kf, vf, N, L, C, heads, c.scale, 0);
    check_f32("attention f32 out", of, out, nt);
    check_f32("attention f32 dq", dqf, dq, nt);
    check_f32("attention f32 dk", dkf, dk, nt);
    check_f32("attention f32 dv", dvf, dv, nt);
    FREE_ALL(c.q, c.k, c.v, r, out, dq, dk, dv, pq, pk, pv, aq, ak, av, oq, qf, kf, vf, rf, of, dqf, dkf, dvf);
}

/* ------------------------------------------------------------------------------------------ up / down sampling */

typedef struct {
    int N, H, W, C;
    double *x;
} img_ctx;
static void up_fwd(void *c_, double *out) {
    img_ctx *c = c_;
    dd_ref_upsample2x_forward_f64(out, c->x, c->N, c->H, c->W, c->C);
}
static void pool_fwd(void *c_, double *out) {
    img_ctx *c = c_;
    dd_ref_maxpool2x2_forward_f64(out, c->x, c->N, c->H, c->W, c->C);
}

static void test_upsample(int N, int H, int W, int C) {
    const size_t nx = (size_t)N * H * W * C, no = nx * 4;
    img_ctx c = {N, H, W, C, vec(nx)};
    char cfg[48];
    snprintf(cfg, sizeof cfg, "[%d,%d,%d,%d]", N, H, W, C);
    double *r = vec(no), *out = zeros(no), *dx = zeros(nx);
    up_fwd(&c, out);
    CHECK(out[((size_t)(1 * 2 * H + 3) * 2 * W + 1) * C + 2] == c.x[((size_t)(1 * H + 1) * W + 0) * C + 2]);
    dd_ref_upsample2x_backward_f64(dx, r, N, H, W, C, 0);
    fd_check("upsample2x", cfg, "inp", up_fwd, &c, c.x, nx, dx, r, no, TOL_LINEAR);
    double *px = vec(nx), *ax = dup(px, nx);
    dd_ref_upsample2x_backward_f64(ax, r, N, H, W, C, 1);
    check_added("upsample2x acc=1", ax, px, dx, nx, 1);
    float *xf = tof(c.x, nx), *rf = tof(r, no), *of = zerosf(no), *dxf = zerosf(nx);
    dd_ref_upsample2x_forward_f32(of, xf, N, H, W, C);
    dd_ref_upsample2x_backward_f32(dxf, rf, N, H, W, C, 0);
    check_f32("upsample2x f32 out", of, out, no);
    check_f32("upsample2x f32 dinp", dxf, dx, nx);
    FREE_ALL(c.x, r, out, dx, px, ax, xf, rf, of, dxf);
}

static void test_maxpool(int N, int H, int W, int C) {
    const size_t nx = (size_t)N * H * W * C, no = (size_t)N * (H / 2) * (W / 2) * C;
    img_ctx c = {N, H, W, C, vec(nx)};
    char cfg[48];
    snprintf(cfg, sizeof cfg, "[%d,%d,%d,%d]", N, H, W, C);
    /* no near-ties: the step h must not move any window's argmax */
    double gap = INFINITY;
    for (int n = 0; n < N; n++)
        for (int y = 0; y + 1 < H; y += 2)
            for (int x = 0; x + 1 < W; x += 2)
                for (int ch = 0; ch < C; ch++)
                    for (int a = 0; a < 4; a++)
                        for (int b = a + 1; b < 4; b++) {
                            double va = c.x[(((size_t)n * H + y + a / 2) * W + x + a % 2) * C + ch];
                            double vb = c.x[(((size_t)n * H + y + b / 2) * W + x + b % 2) * C + ch];
                            gap = fmin(gap, fabs(va - vb));
                        }
    CHECK_MSG(gap > 1e-4, "maxpool test input has a near-tie (gap %g)", gap);
    double *r = vec(no), *out = zeros(no), *dx = zeros(nx);
    pool_fwd(&c, out);
    dd_ref_maxpool2x2_backward_f64(dx, r, c.x, N, H, W, C, 0);
    fd_check("maxpool2x2", cfg, "inp", pool_fwd, &c, c.x, nx, dx, r, no, TOL_LINEAR);
    double *px = vec(nx), *ax = dup(px, nx);
    dd_ref_maxpool2x2_backward_f64(ax, r, c.x, N, H, W, C, 1);
    check_added("maxpool2x2 acc=1", ax, px, dx, nx, 1);
    float *xf = tof(c.x, nx), *rf = tof(r, no), *of = zerosf(no), *dxf = zerosf(nx);
    dd_ref_maxpool2x2_forward_f32(of, xf, N, H, W, C);
    dd_ref_maxpool2x2_backward_f32(dxf, rf, xf, N, H, W, C, 0);
    check_f32("maxpool2x2 f32 out", of, out, no);
    check_f32("maxpool2x2 f32 dinp", dxf, dx, nx);
    FREE_ALL(c.x, r, out, dx, px, ax, xf, rf, of, dxf);

    /* ties go to the first element in row-major window order */
    double t[4] = {1.0, 3.0, 3.0, 3.0}, o = 0, d[4] = {9, 9, 9, 9}, g = 2.0;
    dd_ref_maxpool2x2_forward_f64(&o, t, 1, 2, 2, 1);
    dd_ref_maxpool2x2_backward_f64(d, &g, t, 1, 2, 2, 1, 0);
    CHECK(o == 3.0 && d[0] == 0 && d[1] == 2.0 && d[2] == 0 && d[3] == 0);
}

/* ------------------------------------------------------------------------------------------ concat, add, bias */

typedef struct {
    int N, HW, C1, C2;
    double alpha;
    double *a, *b;
} two_ctx;
static void concat_fwd(void *c_, double *out) {
    two_ctx *c = c_;
    dd_ref_concat_forward_f64(out, c->a, c->b, c->N, c->HW, c->C1, c->C2);
}
static void add_fwd(void *c_, double *out) {
    two_ctx *c = c_;
    dd_ref_add_forward_f64(out, c->a, c->b, c->alpha, (size_t)c->N * c->HW * c->C1);
}
static void bias_fwd(void *c_, double *out) {
    two_ctx *c = c_;
    dd_ref_add_channel_bias_forward_f64(out, c->a, c->b, c->N, c->HW, c->C1);
}

static void test_concat(int N, int HW, int C1, int C2) {
    const size_t na = (size_t)N * HW * C1, nb = (size_t)N * HW * C2, no = na + nb;
    two_ctx c = {N, HW, C1, C2, 1.0, vec(na), vec(nb)};
    double *r = vec(no), *out = zeros(no), *da = zeros(na), *db = zeros(nb);
    concat_fwd(&c, out);
    CHECK(out[(size_t)(HW + 1) * (C1 + C2) + C1 + 1] == c.b[(size_t)(HW + 1) * C2 + 1]);
    dd_ref_concat_backward_f64(da, db, r, N, HW, C1, C2, 0);
    fd_check("concat", "[2,6,3]++[2,6,5]", "a", concat_fwd, &c, c.a, na, da, r, no, TOL_LINEAR);
    fd_check("concat", "[2,6,3]++[2,6,5]", "b", concat_fwd, &c, c.b, nb, db, r, no, TOL_LINEAR);
    double *pa = vec(na), *pb = vec(nb), *aa = dup(pa, na), *ab = dup(pb, nb);
    dd_ref_concat_backward_f64(aa, ab, r, N, HW, C1, C2, 1);
    check_added("concat acc=1 da", aa, pa, da, na, 1);
    check_added("concat acc=1 db", ab, pb, db, nb, 1);
    dd_ref_concat_backward_f64(NULL, ab, r, N, HW, C1, C2, 0);
    dd_check_close("concat db alone", ab, db, nb, 0.0, 1e-300);
    float *af = tof(c.a, na), *bf = tof(c.b, nb), *of = zerosf(no);
    dd_ref_concat_forward_f32(of, af, bf, N, HW, C1, C2);
    check_f32("concat f32 out", of, out, no);
    FREE_ALL(c.a, c.b, r, out, da, db, pa, pb, aa, ab, af, bf, of);
}

static void test_add(void) {
    const size_t n = 40;
    two_ctx c = {1, 1, (int)n, 0, 0.7071067811865476, vec(n), vec(n)};
    double *r = vec(n), *out = zeros(n), *g = zeros(n);
    add_fwd(&c, out);
    for (size_t i = 0; i < n; i++) g[i] = c.alpha * r[i];   /* the gradient of both operands: alpha dout */
    fd_check("add", "alpha 1/sqrt2 n40", "a", add_fwd, &c, c.a, n, g, r, n, TOL_LINEAR);
    fd_check("add", "alpha 1/sqrt2 n40", "b", add_fwd, &c, c.b, n, g, r, n, TOL_LINEAR);
    float *af = tof(c.a, n), *bf = tof(c.b, n), *of = zerosf(n);
    dd_ref_add_forward_f32(of, af, bf, c.alpha, n);
    check_f32("add f32 out", of, out, n);
    FREE_ALL(c.a, c.b, r, out, g, af, bf, of);
}

static void test_channel_bias(int N, int HW, int C) {
    const size_t nx = (size_t)N * HW * C, nb = (size_t)N * C;
    two_ctx c = {N, HW, C, 0, 1.0, vec(nx), vec(nb)};
    double *r = vec(nx), *out = zeros(nx), *dx = zeros(nx), *db = zeros(nb);
    bias_fwd(&c, out);
    dd_ref_add_channel_bias_backward_f64(dx, db, r, N, HW, C, 0);
    fd_check("add_channel_bias", "[2,5,4]+[2,4]", "inp", bias_fwd, &c, c.a, nx, dx, r, nx, TOL_LINEAR);
    fd_check("add_channel_bias", "[2,5,4]+[2,4]", "bias", bias_fwd, &c, c.b, nb, db, r, nx, TOL_LINEAR);
    double *px = vec(nx), *pb = vec(nb), *ax = dup(px, nx), *ab = dup(pb, nb);
    dd_ref_add_channel_bias_backward_f64(ax, ab, r, N, HW, C, 1);
    check_added("add_channel_bias acc=1 dinp", ax, px, dx, nx, 1);
    check_added("add_channel_bias dbias +=", ab, pb, db, nb, 1);
    float *xf = tof(c.a, nx), *bf = tof(c.b, nb), *rf = tof(r, nx), *of = zerosf(nx), *dxf = zerosf(nx),
          *dbf = zerosf(nb);
    dd_ref_add_channel_bias_forward_f32(of, xf, bf, N, HW, C);
    dd_ref_add_channel_bias_backward_f32(dxf, dbf, rf, N, HW, C, 0);
    check_f32("add_channel_bias f32 out", of, out, nx);
    check_f32("add_channel_bias f32 dbias", dbf, db, nb);
    FREE_ALL(c.a, c.b, r, out, dx, db, px, pb, ax, ab, xf, bf, rf, of, dxf, dbf);
}

/* ------------------------------------------------------------------------------------------ embedding, MSE */

typedef struct {
    int N, D;
    const int64_t *labels;
    double *table;
} emb_ctx;
static void emb_fwd(void *c_, double *out) {
    emb_ctx *c = c_;
    dd_ref_embedding_forward_f64(out, c->table, c->labels, c->N, c->D);
}

static void test_embedding(void) {
    const int K = 5, D = 6, N = 4;
    static const int64_t labels[4] = {3, 1, 3, 0};   /* a repeated label accumulates */
    emb_ctx c = {N, D, labels, vec((size_t)K * D)};
    const size_t nt = (size_t)K * D, no = (size_t)N * D;
    double *r = vec(no), *out = zeros(no), *dt = zeros(nt);
    emb_fwd(&c, out);
    CHECK(out[2 * D + 4] == c.table[3 * D + 4]);
    dd_ref_embedding_backward_f64(dt, r, labels, N, D);
    fd_check("embedding", "K5 D6 labels {3,1,3,0}", "table", emb_fwd, &c, c.table, nt, dt, r, no, TOL_LINEAR);
    double *pt = vec(nt), *at = dup(pt, nt);
    dd_ref_embedding_backward_f64(at, r, labels, N, D);
    check_added("embedding dtable +=", at, pt, dt, nt, 0);
    float *tf = tof(c.table, nt), *rf = tof(r, no), *of = zerosf(no), *dtf = zerosf(nt);
    dd_ref_embedding_forward_f32(of, tf, labels, N, D);
    dd_ref_embedding_backward_f32(dtf, rf, labels, N, D);
    check_f32("embedding f32 out", of, out, no);
    check_f32("embedding f32 dtable", dtf, dt, nt);
    FREE_ALL(c.table, r, out, dt, pt, at, tf, rf, of, dtf);
}

typedef struct {
    size_t n;
    double *pred, *target;
} mse_ctx;
static void mse_fwd(void *c_, double *out) {
    mse_ctx *c = c_;
    out[0] = dd_ref_mse_forward_f64(c->pred, c->target, c->n);
}

static void test_mse(void) {
    const size_t n = 48;
    mse_ctx c = {n, vec(n), vec(n)};
    double *r = vec(1), loss = 0, *dp = zeros(n);   /* r = dloss */
    mse_fwd(&c, &loss);
    double want = 0;
    for (size_t i = 0; i < n; i++) want += (c.pred[i] - c.target[i]) * (c.pred[i] - c.target[i]);
    CHECK(fabs(loss - want / n) < 1e-15 * want);
    dd_ref_mse_backward_f64(dp, c.pred, c.target, n, r[0], 0);
    fd_check("mse", "n48", "pred", mse_fwd, &c, c.pred, n, dp, r, 1, TOL_MSE);
    double *pp = vec(n), *ap = dup(pp, n);
    dd_ref_mse_backward_f64(ap, c.pred, c.target, n, r[0], 1);
    check_added("mse acc=1", ap, pp, dp, n, 1);
    float *pf = tof(c.pred, n), *tf = tof(c.target, n), *dpf = zerosf(n);
    const double lf = dd_ref_mse_forward_f32(pf, tf, n);
    CHECK(fabs(lf - loss) <= 1e-12 * loss);   /* same float inputs, double sums */
    dd_ref_mse_backward_f32(dpf, pf, tf, n, r[0], 0);
    check_f32("mse f32 dpred", dpf, dp, n);
    FREE_ALL(c.pred, c.target, r, dp, pp, ap, pf, tf, dpf);
}

/* ------------------------------------------------------------------------------------------ timestep embedding */

/* float32 values of get_timestep_embedding(t, 32) computed step by step (every operation rounded to float32,
   exp / sin / cos correctly rounded): [shift 0 t 10, shift 0 t 900, shift 1 t 10, shift 1 t 900] x [sin, cos] */
static const float k_temb32[4][2][16] = {
    {{-0.54402113f, -0.612936914f, -0.0206835698f, 0.978552461f, 0.841470957f, 0.533168375f, 0.310983568f,
      0.176892191f, 0.099833414f, 0.0562044866f, 0.0316174962f, 0.0177818574f, 0.00999983307f, 0.00562338205f,
      0.00316227274f, 0.0017782785f},
     {-0.839071512f, 0.790131867f, -0.999786079f, -0.205997631f, 0.540302336f, 0.846009135f, 0.950415313f,
      0.98423022f, 0.995004177f, 0.998419285f, 0.999500036f, 0.999841869f, 0.999949992f, 0.999984205f,
      0.999994993f, 0.999998391f}},
    {{0.997803271f, -0.305811852f, 0.958001792f, 0.175166205f, 0.894000053f, 0.33841452f, -0.185089588f,
      -0.292223901f, 0.412118495f, -0.939823866f, 0.291259915f, 0.999560297f, 0.783326864f, 0.48477605f,
      0.280778378f, 0.159362778f},
     {0.0662467033f, -0.952091992f, -0.286762148f, -0.984538853f, -0.448066801f, 0.940997124f, -0.982721627f,
      -0.956349909f, -0.91113025f, 0.341659367f, -0.956643939f, -0.0296507962f, 0.621610045f, 0.874638319f,
      0.959772646f, 0.987220109f}},
    {{-0.54402113f, -0.76528877f, 0.211342216f, 0.999900639f, 0.756337285f, 0.447670758f, 0.248555467f,
      0.135517403f, 0.0734979063f, 0.0398001857f, 0.0215426721f, 0.0116588799f, 0.00630953163f, 0.00341454218f,
      0.00184784946f, 0.000999999815f},
     {-0.839071512f, 0.643687129f, -0.977412105f, -0.0140964333f, 0.654181838f, 0.894198477f, 0.968617678f,
      0.990774989f, 0.99729538f, 0.999207675f, 0.999767959f, 0.999932051f, 0.999980092f, 0.999994159f,
      0.999998271f, 0.999999523f}},
    {{0.997803271f, -0.105523653f, -0.310528964f, -0.954718292f, 0.975102246f, -0.803759515f, -0.577636898f,
      -0.326086283f, 0.331219852f, -0.427179098f, 0.932978868f, 0.867086172f, 0.537830532f, 0.302495182f,
      0.165540993f, 0.0898785368f},
     {0.0662467033f, -0.994416773f, 0.950563908f, -0.297511309f, -0.221755639f, -0.594954312f, -0.816293836f,
      0.945340037f, 0.943553627f, -0.904167056f, -0.359931201f, 0.498158216f, 0.843052983f, 0.953150928f,
      0.986202896f, 0.995952725f}},
};

static void test_timestep(void) {
    const double t64[2] = {10.0, 900.0};
    const float t32[2] = {10.0f, 900.0f};
    for (int shift = 0; shift <= 1; shift++)
        for (int flip = 0; flip <= 1; flip++)
            for (int dim = 32; dim <= 33; dim++) {
                const int half = dim / 2;
                double o64[2 * 33], want[2 * 33];
                float o32[2 * 33], w32[2 * 33];
                dd_timestep_embedding_f64(o64, t64, 2, dim, flip, shift, 10000.0);
                dd_timestep_embedding_f32(o32, t32, 2, dim, flip, shift, 10000.0);
                for (int n = 0; n < 2; n++) {
                    for (int i = 0; i < half; i++) {
                        /* closed form: f_i = 10000^(-i / (half - shift)) */
                        const double a = t64[n] * pow(10000.0, -(double)i / (half - shift));
                        want[n * dim + i] = flip ? cos(a) : sin(a);
                        want[n * dim + half + i] = flip ? sin(a) : cos(a);
                        if (dim == 32) {
                            const float *tab = k_temb32[shift * 2 + n][0], *tabc = k_temb32[shift * 2 + n][1];
                            w32[n * dim + i] = flip ? tabc[i] : tab[i];
                            w32[n * dim + half + i] = flip ? tab[i] : tabc[i];
                        }
                    }
                    if (dim % 2) {
                        want[n * dim + dim - 1] = 0.0;
                        CHECK(o64[n * dim + dim - 1] == 0.0 && o32[n * dim + dim - 1] == 0.0f);
                    }
                }
                char what[96];
                snprintf(what, sizeof what, "timestep f64 dim %d flip %d shift %d", dim, flip, shift);
                dd_check_close(what, o64, want, (size_t)2 * dim, 1e-12, 1.0);
                if (dim == 32) {
                    snprintf(what, sizeof what, "timestep f32 dim 32 flip %d shift %d (hand values)", flip, shift);
                    dd_check_close_f32(what, o32, w32, 64, 1e-6, 1.0);
                }
            }

    /* the diffusers unet_tiny fixture: time_proj of timesteps [10, 900], C0 = 8, flip, shift 0 */
    ddpm_safetensors *in = NULL, *tp = NULL;
    CHECK_OK(ddpm_st_open(dd_test_data("io/unet_tiny_inputs.safetensors"), &in));
    CHECK_OK(ddpm_st_open(dd_test_data("ops/unet_tiny_time_proj.safetensors"), &tp));
    if (in && tp) {
        int64_t ts[2] = {0, 0};
        float want[16], got[16], tf[2];
        CHECK_OK(ddpm_st_read_i64(in, "timesteps", ts, 2));
        CHECK_OK(ddpm_st_read_f32(tp, "time_proj", want, 16));
        CHECK(ts[0] == 10 && ts[1] == 900);
        tf[0] = (float)ts[0];
        tf[1] = (float)ts[1];
        dd_timestep_embedding_f32(got, tf, 2, 8, 1, 0.0, 10000.0);
        double maxe = 0;
        for (int i = 0; i < 16; i++) maxe = fmax(maxe, fabs((double)got[i] - want[i]));
        printf("timestep f32 vs diffusers unet_tiny time_proj: max abs err %.3e\n", maxe);
        dd_check_close_f32("timestep f32 vs unet_tiny time_proj", got, want, 16, 1e-6, 1.0);
    }
    ddpm_st_close(in);
    ddpm_st_close(tp);
}

/* ------------------------------------------------------------------------------------------ dropout */

static void test_dropout(void) {
    const size_t n = 1000000;
    const double p = 0.1;
    const uint64_t seed = 42, stream = ddpm_rng_stream(DDPM_STREAM_TRAIN, 3, 1);
    float *x = malloc(n * sizeof *x), *y1 = malloc(n * sizeof *y1), *y4 = malloc(n * sizeof *y4);
    float *dy = malloc(n * sizeof *dy), *dx = malloc(n * sizeof *dx);
    ddpm_rng_normal_f32(7, 9, 0, x, n);
    ddpm_rng_normal_f32(8, 9, 0, dy, n);
    const int threads = ddpm_get_threads();
    ddpm_set_threads(1);
    dd_dropout_forward(y1, x, n, p, seed, stream);
    ddpm_set_threads(4);
    dd_dropout_forward(y4, x, n, p, seed, stream);
    ddpm_set_threads(threads);
    CHECK_MSG(memcmp(y1, y4, n * sizeof *y1) == 0, "dropout differs between 1 and 4 threads");

    const float scale = (float)(1.0 / (1.0 - p));
    size_t kept = 0, bad = 0, first_bad = 0;
    double u[4096];
    for (size_t i0 = 0; i0 < n; i0 += 4096) {   /* the mask is keep_i = uniform(seed, stream, i) >= p */
        const size_t m = n - i0 < 4096 ? n - i0 : 4096;
        ddpm_rng_uniform_f64(seed, stream, i0, u, m);
        for (size_t j = 0; j < m; j++) {
            const size_t i = i0 + j;
            const int keep = u[j] >= p;
            kept += (size_t)keep;
            if (y1[i] != (keep ? x[i] * scale : 0.0f) && !bad++) first_bad = i;
        }
    }
    CHECK_MSG(bad == 0, "dropout: %zu elements differ from the RNG mask, first at [%zu]", bad, first_bad);
    const double frac = (double)kept / n;
    CHECK_MSG(fabs(frac - (1 - p)) < 0.002, "dropout p=0.1 kept %.5f", frac);

    /* backward: the forward's mask and scale; acc = 1 adds */
    dd_dropout_backward(dx, dy, n, p, seed, stream, 0);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        if (dx[i] != (y1[i] != 0.0f ? dy[i] * scale : 0.0f) && !bad++) first_bad = i;
    CHECK_MSG(bad == 0, "dropout backward: %zu elements differ from the forward mask, first at [%zu]", bad,
              first_bad);
    float pre[1000], acc[1000];
    ddpm_rng_normal_f32(11, 9, 0, pre, 1000);
    memcpy(acc, pre, sizeof acc);
    dd_dropout_backward(acc, dy, 1000, p, seed, stream, 1);
    bad = 0;
    for (size_t i = 0; i < 1000; i++)
        if (acc[i] != pre[i] + dx[i]) bad++;
    CHECK_MSG(bad == 0, "dropout backward acc=1: %zu elements are not pre + grad", bad);

    /* p = 0 copies, p = 1 zeroes */
    dd_dropout_forward(y1, x, n, 0.0, seed, stream);
    CHECK(memcmp(y1, x, n * sizeof *x) == 0);
    dd_dropout_forward(y1, x, n, 1.0, seed, stream);
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += y1[i] != 0.0f;
    CHECK(bad == 0);
    free(x);
    free(y1);
    free(y4);
    free(dy);
    free(dx);
}

/* ------------------------------------------------------------------------------------------ layout */

static void test_layout(void) {
    const int N = 2, C = 3, H = 5, W = 7;
    const size_t n = (size_t)N * C * H * W;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    ddpm_rng_normal_f32(5, 5, 0, a, n);
    dd_nchw_to_nhwc(b, a, N, C, H, W);
    size_t bad = 0;
    for (int i = 0; i < N; i++)
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    bad += b[(((size_t)i * H + y) * W + x) * C + ch] != a[(((size_t)i * C + ch) * H + y) * W + x];
    CHECK_MSG(bad == 0, "nchw_to_nhwc: %zu misplaced elements", bad);
    dd_nhwc_to_nchw(c, b, N, H, W, C);
    CHECK_MSG(memcmp(a, c, n * sizeof *a) == 0, "layout round trip differs");
    free(a);
    free(b);
    free(c);
}

/* ------------------------------------------------------------------------------------------ main */

int main(void) {
    test_conv_geom();
    /* conv2d: kernels 1 / 3 / 5, stride 1 / 2, symmetric, asymmetric and right/bottom-only padding */
    test_conv(2, 5, 4, 3, 4, 1, 1, 0, 0, 0, 0, 1);   /* 1x1 (resnet shortcut) */
    test_conv(2, 5, 6, 3, 4, 3, 1, 1, 1, 1, 1, 1);   /* 3x3 same */
    test_conv(1, 5, 4, 2, 3, 3, 1, 1, 1, 1, 1, 0);   /* no bias */
    test_conv(2, 7, 6, 3, 4, 3, 2, 1, 1, 1, 1, 1);   /* Downsample2D, padding 1, odd H */
    test_conv(2, 6, 7, 3, 2, 3, 2, 0, 0, 1, 1, 1);   /* Downsample2D padding 0: right/bottom only */
    test_conv(1, 6, 5, 2, 3, 3, 1, 2, 0, 1, 2, 1);   /* asymmetric */
    test_conv(2, 6, 6, 2, 3, 5, 1, 2, 2, 2, 2, 1);   /* 5x5 same */
    test_conv(1, 8, 7, 2, 3, 5, 2, 2, 1, 1, 2, 1);   /* 5x5 stride 2, asymmetric */
    test_conv(1, 4, 4, 2, 2, 3, 1, 0, 0, 0, 0, 1);   /* valid (no padding) */
    test_linear(5, 7, 6, 1);
    test_linear(3, 4, 5, 0);
    for (int silu = 0; silu <= 1; silu++) {
        test_groupnorm(2, 6, 8, 1, silu);
        test_groupnorm(2, 6, 8, 2, silu);
        test_groupnorm(2, 6, 8, 4, silu);
        test_groupnorm(2, 6, 8, 8, silu);   /* G = C: one channel per group */
    }
    test_activation(0);
    test_activation(1);
    test_attention(2, 5, 8, 1);
    test_attention(2, 5, 8, 2);
    test_attention(2, 6, 8, 4);
    test_upsample(2, 3, 2, 3);
    test_maxpool(2, 5, 4, 3);   /* odd H: the last row is dropped */
    test_maxpool(1, 4, 6, 2);
    test_concat(2, 6, 3, 5);
    test_add();
    test_channel_bias(2, 5, 4);
    test_embedding();
    test_mse();
    test_timestep();
    test_dropout();
    test_layout();

    printf("worst finite-difference error per op (relative to max(max|grad|, %.1f)):\n", FD_FLOOR);
    for (int k = 0; k < g_nstats; k++)
        printf("  %-18s %.2e (tol %.0e)  %s\n", g_stats[k].op, g_stats[k].worst, g_stats[k].tol, g_stats[k].where);
    return dd_test_finish("test_ops_grad");
}
