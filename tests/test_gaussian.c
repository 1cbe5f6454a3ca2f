/* test_gaussian.c — forward process, posterior, x0/eps/v conversions, training targets, KL and the discretised
   Gaussian log-likelihood against closed forms and hand-computed values; thread-count invariance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void fill_normal(double *x, size_t n, uint64_t seed) {
    ddpm_rng_normal_f64(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 0), 0, x, n);
}

enum { N = 5, D = 7 };

static void test_forward_and_posterior(void) {
    ddpm_diffusion *d = dd_test_diffusion("cosine", 1000);
    int64_t t[N] = {0, 1, 250, 998, 999};
    double x0[N * D], eps[N * D], xt[N * D], got[N * D], want[N * D], v[N * D];
    fill_normal(x0, N * D, 1);
    fill_normal(eps, N * D, 2);

    /* q_sample: x_t = sqrt(ab) x0 + sqrt(1 - ab) eps (Ho et al. eq. 4) */
    ddpm_q_sample_f64(d, xt, x0, eps, t, N, D);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < D; j++) {
            double ab = d->alphas_cumprod[t[n]];
            want[n * D + j] = sqrt(ab) * x0[n * D + j] + sqrt(1 - ab) * eps[n * D + j];
        }
    dd_check_close("q_sample_f64", xt, want, N * D, 1e-15, 1.0);

    /* float version rounds the double result once */
    float x0f[N * D], epsf[N * D], xtf[N * D], vf[N * D];
    for (int i = 0; i < N * D; i++) {
        x0f[i] = (float)x0[i];
        epsf[i] = (float)eps[i];
    }
    ddpm_q_sample(d, xtf, x0f, epsf, t, N, D);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < D; j++) {
            int i = n * D + j;
            double ab = d->alphas_cumprod[t[n]];
            CHECK(xtf[i] == (float)(sqrt(ab) * (double)x0f[i] + sqrt(1 - ab) * (double)epsf[i]));
        }
    /* output may alias an input */
    float alias[N * D];
    memcpy(alias, x0f, sizeof alias);
    ddpm_q_sample(d, alias, alias, epsf, t, N, D);
    CHECK(memcmp(alias, xtf, sizeof alias) == 0);

    /* q_mean_variance */
    double var[N], logvar[N];
    ddpm_q_mean_variance(d, got, var, logvar, x0, t, N, D);
    for (int n = 0; n < N; n++) {
        double ab = d->alphas_cumprod[t[n]];
        CHECK(fabs(var[n] - (1 - ab)) <= 1e-15);
        CHECK(fabs(logvar[n] - log(1 - ab)) <= 1e-13 * fabs(log(1 - ab)));
        for (int j = 0; j < D; j++) CHECK(fabs(got[n * D + j] - sqrt(ab) * x0[n * D + j]) <= 1e-15);
    }

    /* q_posterior (eqs. 6-7) */
    double pvar[N], plv[N];
    ddpm_q_posterior(d, got, pvar, plv, x0, xt, t, N, D);
    for (int n = 0; n < N; n++) {
        int64_t k = t[n];
        double ab = d->alphas_cumprod[k], abp = k ? d->alphas_cumprod[k - 1] : 1.0, b = d->betas[k];
        for (int j = 0; j < D; j++)
            want[n * D + j] = sqrt(abp) * b / (1 - ab) * x0[n * D + j] +
                              sqrt(1 - b) * (1 - abp) / (1 - ab) * xt[n * D + j];
        CHECK(fabs(pvar[n] - b * (1 - abp) / (1 - ab)) <= 1e-15);
        double lv = k ? log(b * (1 - abp) / (1 - ab)) : log(d->posterior_variance[1]);
        CHECK(fabs(plv[n] - lv) <= 1e-13 * fabs(lv));
    }
    dd_check_close("q_posterior mean", got, want, N * D, 1e-13, 1.0);

    /* x0 from eps inverts q_sample; eps from x0 recovers eps. */
    ddpm_predict_x0_from_eps(d, got, xt, eps, t, N, D);
    dd_check_close("predict_x0_from_eps", got, x0, N * D, 1e-9, 1.0); /* t = 999: 1/sqrt(ab) ~ 1e3 */
    ddpm_predict_eps_from_x0(d, got, xt, x0, t, N, D);
    dd_check_close("predict_eps_from_x0", got, eps, N * D, 1e-9, 1.0);

    /* v = sqrt(ab) eps - sqrt(1 - ab) x0; x0 = sqrt(ab) x_t - sqrt(1 - ab) v (Salimans & Ho 2022). */
    ddpm_velocity_f64(d, v, x0, eps, t, N, D);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < D; j++) {
            double ab = d->alphas_cumprod[t[n]];
            want[n * D + j] = sqrt(ab) * eps[n * D + j] - sqrt(1 - ab) * x0[n * D + j];
        }
    dd_check_close("velocity_f64", v, want, N * D, 1e-15, 1.0);
    ddpm_predict_x0_from_v(d, got, xt, v, t, N, D);
    dd_check_close("predict_x0_from_v", got, x0, N * D, 1e-14, 1.0);
    ddpm_velocity(d, vf, x0f, epsf, t, N, D);
    for (int i = 0; i < N * D; i++) want[i] = vf[i];
    dd_check_close("velocity f32", want, v, N * D, 1e-6, 1.0);

    /* training targets */
    float tgt[N * D];
    ddpm_training_target(d, DDPM_PRED_EPS, tgt, x0f, epsf, t, N, D);
    CHECK(memcmp(tgt, epsf, sizeof tgt) == 0);
    ddpm_training_target(d, DDPM_PRED_X0, tgt, x0f, epsf, t, N, D);
    CHECK(memcmp(tgt, x0f, sizeof tgt) == 0);
    ddpm_training_target(d, DDPM_PRED_V, tgt, x0f, epsf, t, N, D);
    CHECK(memcmp(tgt, vf, sizeof tgt) == 0);

    /* An out-of-range timestep gives NaN in its own row only. */
    int64_t tb[N] = {0, -1, 5, 1000, 7};
    ddpm_q_sample_f64(d, got, x0, eps, tb, N, D);
    CHECK(isnan(got[1 * D]) && isnan(got[3 * D + D - 1]) && isfinite(got[0]) && isfinite(got[2 * D]));
    ddpm_diffusion_free(d);
}

static void test_kl_loglik(void) {
    /* 0.5 (-1 + lv2 - lv1 + e^(lv1 - lv2) + (m1 - m2)^2 e^(-lv2)) by hand / Python */
    CHECK(ddpm_normal_kl(0, 0, 0, 0) == 0.0);
    CHECK(fabs(ddpm_normal_kl(1, 0, 0, 0) - 0.5) < 1e-16);
    CHECK(fabs(ddpm_normal_kl(0, log(2.0), 0, 0) - 0.1534264097200273) < 1e-15);  /* (1 - ln 2) / 2 */
    CHECK(fabs(ddpm_normal_kl(0.3, -0.5, -0.2, 0.4) - 0.23707483562475448) < 1e-15);
    CHECK(ddpm_normal_kl(0.3, -0.5, -0.2, 0.4) > 0 && ddpm_normal_kl(-0.2, 0.4, 0.3, -0.5) > 0);

    /* improved-diffusion discretized_gaussian_log_likelihood, evaluated in Python (math module). */
    struct { double x, m, ls, want; } c[] = {
        {0, 0, 0, -5.76705747360343},
        {0.5, 0.3, -2.3025850929940455, -5.456166847134915},
        {-1, -0.9, -2.995732273553991, -3.600354147720288},   /* left edge bin: log CDF(x + 1/255) */
        {1, 0.95, -3.912023005428146, -4.559669972229093},    /* right edge bin: log(1 - CDF(x - 1/255)) */
        {0.2, -0.8, -4.605170185988091, -27.631021115928547}, /* floored at 1e-12 */
        {-1, 1, -3, -27.631021115928547},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double got = ddpm_discretized_gaussian_loglik(c[i].x, c[i].m, c[i].ls);
        CHECK_MSG(fabs(got - c[i].want) <= 1e-12 * fabs(c[i].want), "loglik case %zu: got %.17g want %.17g", i,
                  got, c[i].want);
    }
    /* Near the bin centre with a wide Gaussian the mass is ~ (2/255) phi(0) / sigma. */
    double approx = log(2.0 / 255.0 / sqrt(2 * 3.14159265358979323846));
    CHECK(fabs(ddpm_discretized_gaussian_loglik(0, 0, 0) - approx) < 1e-4);
    /* The 256 bins of a pixel sum to probability 1. */
    double total = 0;
    for (int p = 0; p < 256; p++) total += exp(ddpm_discretized_gaussian_loglik(p / 127.5 - 1.0, 0.1, log(0.3)));
    CHECK_MSG(fabs(total - 1.0) < 1e-9, "bins sum to %.17g", total);
}

static void test_thread_invariance(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    const int64_t n = 16, dim = 8192; /* above the parallel threshold */
    size_t nd = (size_t)(n * dim);
    double *x0 = malloc(sizeof(double) * nd), *eps = malloc(sizeof(double) * nd);
    double *a = malloc(sizeof(double) * nd), *b = malloc(sizeof(double) * nd);
    int64_t t[16];
    for (int i = 0; i < 16; i++) t[i] = 60 * i + 3;
    fill_normal(x0, nd, 11);
    fill_normal(eps, nd, 12);
    int saved = ddpm_get_threads();
    ddpm_set_threads(1);
    ddpm_q_sample_f64(d, a, x0, eps, t, n, dim);
    ddpm_set_threads(4);
    ddpm_q_sample_f64(d, b, x0, eps, t, n, dim);
    CHECK(memcmp(a, b, sizeof(double) * nd) == 0);
    ddpm_set_threads(1);
    ddpm_predict_x0_from_eps(d, a, x0, eps, t, n, dim);
    ddpm_set_threads(4);
    ddpm_predict_x0_from_eps(d, b, x0, eps, t, n, dim);
    CHECK(memcmp(a, b, sizeof(double) * nd) == 0);
    ddpm_set_threads(saved);
    free(x0);
    free(eps);
    free(a);
    free(b);
    ddpm_diffusion_free(d);
}

int main(void) {
    test_forward_and_posterior();
    test_kl_loglik();
    test_thread_invariance();
    return dd_test_finish("test_gaussian");
}
