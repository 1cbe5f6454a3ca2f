/* gaussian.c — the Gaussian diffusion of Ho et al. 2020: derived tables (and their CSV text), forward process
   q(x_t | x_0), posterior q(x_{t-1} | x_t, x_0), x0 / eps / v conversions, KL and the discretised decoder
   likelihood. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "diffusion/schedule.h"

/* Elementwise row loops go parallel only above this many numbers; each element is computed the same way
   whatever the thread count, so results never depend on it. */
#define DD_PAR_MIN 32768

#define NUM_TABLES 13

ddpm_status ddpm_diffusion_from_betas(const double *betas, int T, ddpm_diffusion **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_diffusion_from_betas: output pointer is NULL");
    *out = NULL;
    ddpm_status st = dd_schedule_check_betas(betas, T, "ddpm_diffusion_from_betas");
    if (st != DDPM_OK) return st;

    /* One block: the struct, then NUM_TABLES tables of [T] doubles. */
    size_t head = (sizeof(ddpm_diffusion) + 63) & ~(size_t)63, tables;
    if (dd_mul_size((size_t)T * NUM_TABLES, sizeof(double), &tables) != 0)
        return dd_error(DDPM_ERR_NOMEM, "diffusion tables for T = %d overflow size_t", T);
    uint8_t *mem = dd_alloc(head + tables);
    if (!mem) return DDPM_ERR_NOMEM;
    ddpm_diffusion *d = (ddpm_diffusion *)mem;
    memset(d, 0, sizeof *d);
    double *p = (double *)(mem + head);
    double **slots[NUM_TABLES] = {
        &d->betas, &d->alphas, &d->alphas_cumprod, &d->alphas_cumprod_prev, &d->sqrt_alphas_cumprod,
        &d->sqrt_one_minus_alphas_cumprod, &d->log_one_minus_alphas_cumprod, &d->sqrt_recip_alphas_cumprod,
        &d->sqrt_recipm1_alphas_cumprod, &d->posterior_variance, &d->posterior_log_variance_clipped,
        &d->posterior_mean_coef1, &d->posterior_mean_coef2,
    };
    for (int i = 0; i < NUM_TABLES; i++) *slots[i] = p + (size_t)i * (size_t)T;
    d->T = T;

    /* The tables of the original GaussianDiffusion (diffusion_utils_2.py of Ho et al.; improved-diffusion's
       gaussian_diffusion.py), computed in the same order. */
    double acp = 1.0;
    for (int k = 0; k < T; k++) {
        double b = betas[k];
        d->betas[k] = b;
        d->alphas[k] = 1.0 - b;
        d->alphas_cumprod_prev[k] = acp;  /* alpha_bar_{k-1}, with alpha_bar_{-1} = 1 */
        acp *= 1.0 - b;                   /* a running product, as np.cumprod / torch.cumprod */
        d->alphas_cumprod[k] = acp;
    }
    for (int k = 0; k < T; k++) {
        double ab = d->alphas_cumprod[k], ab_prev = d->alphas_cumprod_prev[k], b = d->betas[k];
        d->sqrt_alphas_cumprod[k] = sqrt(ab);
        d->sqrt_one_minus_alphas_cumprod[k] = sqrt(1.0 - ab);
        d->log_one_minus_alphas_cumprod[k] = log(1.0 - ab);
        d->sqrt_recip_alphas_cumprod[k] = sqrt(1.0 / ab);
        d->sqrt_recipm1_alphas_cumprod[k] = sqrt(1.0 / ab - 1.0);
        /* Ho et al. 2020, eq. 7: beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t */
        d->posterior_variance[k] = b * (1.0 - ab_prev) / (1.0 - ab);
        /* mu~_t = coef1 x_0 + coef2 x_t (eq. 7) */
        d->posterior_mean_coef1[k] = b * sqrt(ab_prev) / (1.0 - ab);
        d->posterior_mean_coef2[k] = (1.0 - ab_prev) * sqrt(d->alphas[k]) / (1.0 - ab);
    }
    /* log(append(posterior_variance[1], posterior_variance[1:])): the first entry (0) is replaced by the
       second. With T = 1 there is no second entry; log(beta_0) (the "fixed large" value) stands in. */
    for (int k = 1; k < T; k++) d->posterior_log_variance_clipped[k] = log(d->posterior_variance[k]);
    d->posterior_log_variance_clipped[0] = T > 1 ? log(d->posterior_variance[1]) : log(d->betas[0]);
    *out = d;
    return DDPM_OK;
}

ddpm_status ddpm_diffusion_create(const ddpm_schedule_config *cfg, ddpm_diffusion **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_diffusion_create: output pointer is NULL");
    *out = NULL;
    if (!cfg) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_diffusion_create: config is NULL");
    double *betas = NULL;
    int T = 0;
    ddpm_status st;
    if (cfg->name && strncmp(cfg->name, "file:", 5) == 0) {
        /* The file decides T. */
        if ((st = dd_schedule_load_file(cfg->name + 5, &betas, &T)) != DDPM_OK) return st;
    } else {
        T = cfg->T;
        if (T < 1 || T > DD_SCHEDULE_MAX_T)
            return dd_error(DDPM_ERR_INVALID_ARG, "schedule '%s': T = %d diffusion steps is out of range (1..%d)",
                            cfg->name ? cfg->name : "(null)", T, DD_SCHEDULE_MAX_T);
        betas = dd_alloc(sizeof(double) * (size_t)T);
        if (!betas) return DDPM_ERR_NOMEM;
        if ((st = ddpm_schedule_betas(cfg, betas)) != DDPM_OK) {
            dd_free(betas);
            return st;
        }
    }
    st = ddpm_diffusion_from_betas(betas, T, out);
    dd_free(betas);
    return st;
}

void ddpm_diffusion_free(ddpm_diffusion *d) { dd_free(d); }

ddpm_status ddpm_diffusion_csv(const ddpm_diffusion *const *d, const char *const *names, int n, char **text) {
    static const char *const columns[] = {
        "t", "beta", "alpha", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
        "posterior_mean_coef1", "posterior_mean_coef2",
    };
    if (!text) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_diffusion_csv: text is NULL");
    *text = NULL;
    if (!d || n < 1 || (n > 1 && !names)) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_diffusion_csv: no diffusions");
    for (int s = 0; s < n; s++)
        if (!d[s] || (n > 1 && !names[s]))
            return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_diffusion_csv: diffusion %d or its name is NULL", s);
    dd_text tb = {0};
    if (n > 1) dd_text_printf(&tb, "schedule,");
    for (size_t c = 0; c < sizeof columns / sizeof columns[0]; c++)
        dd_text_printf(&tb, "%s%s", c ? "," : "", columns[c]);
    dd_text_printf(&tb, "\n");
    for (int s = 0; s < n && !tb.failed; s++) {
        const ddpm_diffusion *g = d[s];
        for (int t = 0; t < g->T && !tb.failed; t++) {
            const double v[] = {
                g->betas[t], g->alphas[t], g->alphas_cumprod[t], g->alphas_cumprod_prev[t],
                g->sqrt_alphas_cumprod[t], g->sqrt_one_minus_alphas_cumprod[t],
                g->log_one_minus_alphas_cumprod[t], g->sqrt_recip_alphas_cumprod[t],
                g->sqrt_recipm1_alphas_cumprod[t], g->posterior_variance[t],
                g->posterior_log_variance_clipped[t], g->posterior_mean_coef1[t], g->posterior_mean_coef2[t],
            };
            if (n > 1) dd_text_printf(&tb, "%s,", names[s]);
            dd_text_printf(&tb, "%d", t);
            for (size_t c = 0; c < sizeof v / sizeof v[0]; c++) dd_text_printf(&tb, ",%.17g", v[c]);
            dd_text_printf(&tb, "\n");
        }
    }
    return dd_text_finish(&tb, text);
}

/* ------------------------------------------------------------------------------------ per-row helpers
   Every function below is elementwise over [N, D] with a per-row coefficient from t[n]. A timestep outside
   0..T-1 is a caller's bug; its row is filled with NaN rather than read out of bounds. */

static int bad_t(const ddpm_diffusion *d, int64_t t) { return t < 0 || t >= d->T; }

/* out[n, :] = a[t] * x[n, :] + sign * b[t] * y[n, :] in double; the float variant rounds once. */
static void axpby_rows(double *out, const double *ca, const double *cb, double sign, const double *x,
                       const double *y, const ddpm_diffusion *d, const int64_t *t, int64_t N, int64_t D) {
#pragma omp parallel for schedule(static) if (N * D >= DD_PAR_MIN && N > 1)
    for (int64_t n = 0; n < N; n++) {
        double *o = out + n * D;
        const double *xr = x + n * D, *yr = y + n * D;
        if (bad_t(d, t[n])) {
            for (int64_t j = 0; j < D; j++) o[j] = NAN;
            continue;
        }
        double a = ca[t[n]], b = sign * cb[t[n]];
        for (int64_t j = 0; j < D; j++) o[j] = a * xr[j] + b * yr[j];
    }
}

static void axpby_rows_f32(float *out, const double *ca, const double *cb, double sign, const float *x,
                           const float *y, const ddpm_diffusion *d, const int64_t *t, int64_t N, int64_t D) {
#pragma omp parallel for schedule(static) if (N * D >= DD_PAR_MIN && N > 1)
    for (int64_t n = 0; n < N; n++) {
        float *o = out + n * D;
        const float *xr = x + n * D, *yr = y + n * D;
        if (bad_t(d, t[n])) {
            for (int64_t j = 0; j < D; j++) o[j] = NAN;
            continue;
        }
        double a = ca[t[n]], b = sign * cb[t[n]];
        for (int64_t j = 0; j < D; j++) o[j] = (float)(a * (double)xr[j] + b * (double)yr[j]);
    }
}

/* Ho et al. 2020, eq. 4: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (diffusers add_noise). */
void ddpm_q_sample(const ddpm_diffusion *d, float *xt, const float *x0, const float *eps, const int64_t *t,
                   int64_t N, int64_t D) {
    axpby_rows_f32(xt, d->sqrt_alphas_cumprod, d->sqrt_one_minus_alphas_cumprod, 1.0, x0, eps, d, t, N, D);
}

void ddpm_q_sample_f64(const ddpm_diffusion *d, double *xt, const double *x0, const double *eps,
                       const int64_t *t, int64_t N, int64_t D) {
    axpby_rows(xt, d->sqrt_alphas_cumprod, d->sqrt_one_minus_alphas_cumprod, 1.0, x0, eps, d, t, N, D);
}

/* q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I). */
void ddpm_q_mean_variance(const ddpm_diffusion *d, double *mean, double *var, double *log_var, const double *x0,
                          const int64_t *t, int64_t N, int64_t D) {
    for (int64_t n = 0; n < N; n++) {
        int ok = !bad_t(d, t[n]);
        double a = ok ? d->sqrt_alphas_cumprod[t[n]] : NAN;
        if (mean)
            for (int64_t j = 0; j < D; j++) mean[n * D + j] = a * x0[n * D + j];
        if (var) var[n] = ok ? 1.0 - d->alphas_cumprod[t[n]] : NAN;
        if (log_var) log_var[n] = ok ? d->log_one_minus_alphas_cumprod[t[n]] : NAN;
    }
}

/* Ho et al. 2020, eqs. 6-7: q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, beta~_t I). */
void ddpm_q_posterior(const ddpm_diffusion *d, double *mean, double *var, double *log_var_clipped,
                      const double *x0, const double *xt, const int64_t *t, int64_t N, int64_t D) {
    if (mean) axpby_rows(mean, d->posterior_mean_coef1, d->posterior_mean_coef2, 1.0, x0, xt, d, t, N, D);
    for (int64_t n = 0; n < N; n++) {
        int ok = !bad_t(d, t[n]);
        if (var) var[n] = ok ? d->posterior_variance[t[n]] : NAN;
        if (log_var_clipped) log_var_clipped[n] = ok ? d->posterior_log_variance_clipped[t[n]] : NAN;
    }
}

/* Inverting eq. 4: x_0 = sqrt(1/alpha_bar_t) x_t - sqrt(1/alpha_bar_t - 1) eps. */
void ddpm_predict_x0_from_eps(const ddpm_diffusion *d, double *x0, const double *xt, const double *eps,
                              const int64_t *t, int64_t N, int64_t D) {
    axpby_rows(x0, d->sqrt_recip_alphas_cumprod, d->sqrt_recipm1_alphas_cumprod, -1.0, xt, eps, d, t, N, D);
}

/* Salimans & Ho 2022, sec. 4: x_0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v. */
void ddpm_predict_x0_from_v(const ddpm_diffusion *d, double *x0, const double *xt, const double *v,
                            const int64_t *t, int64_t N, int64_t D) {
    axpby_rows(x0, d->sqrt_alphas_cumprod, d->sqrt_one_minus_alphas_cumprod, -1.0, xt, v, d, t, N, D);
}

/* eps = (sqrt(1/alpha_bar_t) x_t - x_0) / sqrt(1/alpha_bar_t - 1) (GaussianDiffusion._predict_eps_from_xstart). */
void ddpm_predict_eps_from_x0(const ddpm_diffusion *d, double *eps, const double *xt, const double *x0,
                              const int64_t *t, int64_t N, int64_t D) {
#pragma omp parallel for schedule(static) if (N * D >= DD_PAR_MIN && N > 1)
    for (int64_t n = 0; n < N; n++) {
        double *o = eps + n * D;
        const double *xr = xt + n * D, *x0r = x0 + n * D;
        if (bad_t(d, t[n])) {
            for (int64_t j = 0; j < D; j++) o[j] = NAN;
            continue;
        }
        double a = d->sqrt_recip_alphas_cumprod[t[n]], b = d->sqrt_recipm1_alphas_cumprod[t[n]];
        for (int64_t j = 0; j < D; j++) o[j] = (a * xr[j] - x0r[j]) / b;
    }
}

/* Salimans & Ho 2022, sec. 4: v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (diffusers get_velocity). */
void ddpm_velocity(const ddpm_diffusion *d, float *v, const float *x0, const float *eps, const int64_t *t,
                   int64_t N, int64_t D) {
    axpby_rows_f32(v, d->sqrt_alphas_cumprod, d->sqrt_one_minus_alphas_cumprod, -1.0, eps, x0, d, t, N, D);
}

void ddpm_velocity_f64(const ddpm_diffusion *d, double *v, const double *x0, const double *eps,
                       const int64_t *t, int64_t N, int64_t D) {
    axpby_rows(v, d->sqrt_alphas_cumprod, d->sqrt_one_minus_alphas_cumprod, -1.0, eps, x0, d, t, N, D);
}

/* The regression target of L_simple (Ho et al. 2020, eq. 14) for each objective. */
void ddpm_training_target(const ddpm_diffusion *d, ddpm_prediction objective, float *target, const float *x0,
                          const float *eps, const int64_t *t, int64_t N, int64_t D) {
    size_t n = (size_t)N * (size_t)D;
    switch (objective) {
    case DDPM_PRED_EPS:
        if (target != eps) memmove(target, eps, n * sizeof(float));
        return;
    case DDPM_PRED_X0:
        if (target != x0) memmove(target, x0, n * sizeof(float));
        return;
    case DDPM_PRED_V:
        ddpm_velocity(d, target, x0, eps, t, N, D);
        return;
    }
    for (size_t i = 0; i < n; i++) target[i] = NAN; /* not a ddpm_prediction value */
}

/* ------------------------------------------------------------------------------------ likelihood terms */

/* KL(N(m1, e^lv1) || N(m2, e^lv2)) = 0.5 (-1 + lv2 - lv1 + e^(lv1 - lv2) + (m1 - m2)^2 e^-lv2)
   (improved-diffusion losses.normal_kl). */
double ddpm_normal_kl(double mean1, double logvar1, double mean2, double logvar2) {
    double dm = mean1 - mean2;
    return 0.5 * (-1.0 + logvar2 - logvar1 + exp(logvar1 - logvar2) + dm * dm * exp(-logvar2));
}

/* Phi(x) ~ 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (improved-diffusion approx_standard_normal_cdf). */
static double approx_std_normal_cdf(double x) {
    return 0.5 * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}

/* Ho et al. 2020, eq. 13 (improved-diffusion discretized_gaussian_log_likelihood): the mass of the bin
   [x - 1/255, x + 1/255] under N(mean, e^(2 log_scale)), with the edge bins extended to -inf (x < -0.999)
   and +inf (x > 0.999); probabilities are floored at 1e-12 before the log. */
double ddpm_discretized_gaussian_loglik(double x, double mean, double log_scale) {
    double centered = x - mean;
    double inv_stdv = exp(-log_scale);
    double cdf_plus = approx_std_normal_cdf(inv_stdv * (centered + 1.0 / 255.0));
    double cdf_min = approx_std_normal_cdf(inv_stdv * (centered - 1.0 / 255.0));
    if (x < -0.999) return log(fmax(cdf_plus, 1e-12));
    if (x > 0.999) return log(fmax(1.0 - cdf_min, 1e-12));
    return log(fmax(cdf_plus - cdf_min, 1e-12));
}
