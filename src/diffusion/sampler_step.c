/* sampler_step.c — single reverse steps computed as diffusers' DDPMScheduler.step and DDIMScheduler.step do,
   and the DPM-Solver++ data prediction and multistep update (DPMSolverMultistepScheduler, dpmsolver++). */
#include <math.h>

#include "core/core.h"
#include "diffusion/sampler.h"

static ddpm_status check_step_args(const char *fn, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                                   int64_t t, int64_t prev_t, const double *model_out, const double *x,
                                   const double *x_prev, int64_t n) {
    if (!d || !cfg) return dd_error(DDPM_ERR_INVALID_ARG, "%s: diffusion or config is NULL", fn);
    if (n < 0) return dd_error(DDPM_ERR_INVALID_ARG, "%s: n = %lld is negative", fn, (long long)n);
    if (n > 0 && (!model_out || !x || !x_prev))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: model_out, x and x_prev must not be NULL", fn);
    if (t < 0 || t >= d->T)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: timestep %lld is outside 0..%d", fn, (long long)t, d->T - 1);
    if (prev_t >= t)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: previous timestep %lld is not below timestep %lld", fn,
                        (long long)prev_t, (long long)t);
    if (cfg->prediction != DDPM_PRED_EPS && cfg->prediction != DDPM_PRED_X0 && cfg->prediction != DDPM_PRED_V)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: prediction %d is not eps, x0 or v", fn, (int)cfg->prediction);
    if (cfg->clip_sample && !(isfinite(cfg->clip_range) && cfg->clip_range > 0.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: clip_range = %g must be finite and > 0", fn, cfg->clip_range);
    return DDPM_OK;
}

/* clamp that keeps NaN (as torch.clamp does), unlike fmin/fmax. */
static inline double clampd(double v, double r) { return v < -r ? -r : (v > r ? r : v); }

/* diffusers DDPMScheduler.step (v0.27.2) with ORACLE caveat 3: alpha'_t = alpha_bar_t / alpha_bar_prev and
   beta'_t = 1 - alpha'_t come from alphas_cumprod, so skipping steps stays consistent.
   Ho et al. 2020, eq. 7 (posterior mean) and eq. 15 (x0 from eps); Alg. 2 (no noise at t = 0). */
ddpm_status ddpm_ddpm_step(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, int64_t t, int64_t prev_t,
                           const double *model_out, const double *x, const double *noise, double *x_prev,
                           double *x0_pred, int64_t n, ddpm_step_info *info) {
    ddpm_status st = check_step_args("ddpm_ddpm_step", d, cfg, t, prev_t, model_out, x, x_prev, n);
    if (st != DDPM_OK) return st;
    if (cfg->variance != DDPM_VAR_FIXED_SMALL && cfg->variance != DDPM_VAR_FIXED_LARGE)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_ddpm_step: variance %d is not fixed_small or fixed_large",
                        (int)cfg->variance);
    double a_t = d->alphas_cumprod[t];
    double a_prev = prev_t >= 0 ? d->alphas_cumprod[prev_t] : 1.0; /* DDPMScheduler.one */
    double b_t = 1.0 - a_t, b_prev = 1.0 - a_prev;
    double cur_alpha = a_t / a_prev, cur_beta = 1.0 - cur_alpha;
    double sqrt_a_t = sqrt(a_t), sqrt_b_t = sqrt(b_t);
    double c_x0 = (sqrt(a_prev) * cur_beta) / b_t;         /* pred_original_sample_coeff */
    double c_xt = sqrt(cur_alpha) * b_prev / b_t;          /* current_sample_coeff */
    double var = 0.0;                                      /* _get_variance, 0 at t = 0 (no noise) */
    if (t > 0) {
        if (cfg->variance == DDPM_VAR_FIXED_LARGE) {
            var = cur_beta;
        } else {
            var = b_prev / b_t * cur_beta;                 /* beta~_t, Ho et al. eq. 7 */
            if (!(var >= 1e-20)) var = 1e-20;              /* torch.clamp(min=1e-20) */
        }
    }
    double sd = sqrt(var);
    const int add_noise = t > 0 && noise != NULL;
    const ddpm_prediction pred = cfg->prediction;
    const int clip = cfg->clip_sample != 0;
    const double r = cfg->clip_range;
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
    for (int64_t j = 0; j < n; j++) {
        double xj = x[j], mo = model_out[j], x0;
        if (pred == DDPM_PRED_EPS) x0 = (xj - sqrt_b_t * mo) / sqrt_a_t;
        else if (pred == DDPM_PRED_X0) x0 = mo;
        else x0 = sqrt_a_t * xj - sqrt_b_t * mo;           /* v-prediction, Salimans & Ho 2022 */
        if (clip) x0 = clampd(x0, r);
        double mean = c_x0 * x0 + c_xt * xj;
        x_prev[j] = add_noise ? mean + sd * noise[j] : mean;
        if (x0_pred) x0_pred[j] = x0;
    }
    if (info) {
        info->alpha_prod_t = a_t;
        info->alpha_prod_t_prev = a_prev;
        info->variance = var;
        info->std_dev_t = sd;
    }
    return DDPM_OK;
}

/* diffusers DDIMScheduler.step (v0.27.2): Song et al. 2021, eq. 12, with sigma_t = eta sqrt(variance) from
   eq. 16. x0 is clipped but eps is not recomputed from it (use_clipped_model_output = false). */
ddpm_status ddpm_ddim_step(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, int64_t t, int64_t prev_t,
                           const double *model_out, const double *x, const double *noise, double *x_prev,
                           double *x0_pred, int64_t n, ddpm_step_info *info) {
    ddpm_status st = check_step_args("ddpm_ddim_step", d, cfg, t, prev_t, model_out, x, x_prev, n);
    if (st != DDPM_OK) return st;
    if (!(isfinite(cfg->eta) && cfg->eta >= 0.0 && cfg->eta <= 1.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_ddim_step: eta = %g must lie in [0, 1]", cfg->eta);
    double a_t = d->alphas_cumprod[t];
    /* final_alpha_cumprod: 1 with set_alpha_to_one, else alpha_bar_0. */
    double a_prev = prev_t >= 0 ? d->alphas_cumprod[prev_t] : (cfg->set_alpha_to_one ? 1.0 : d->alphas_cumprod[0]);
    double b_t = 1.0 - a_t, b_prev = 1.0 - a_prev;
    double sqrt_a_t = sqrt(a_t), sqrt_b_t = sqrt(b_t), sqrt_a_prev = sqrt(a_prev);
    double var = (b_prev / b_t) * (1.0 - a_t / a_prev);    /* _get_variance */
    double std_dev = cfg->eta * sqrt(var);
    double dir2 = 1.0 - a_prev - std_dev * std_dev;
    double c_dir = sqrt(dir2 > 0.0 ? dir2 : 0.0);           /* rounding can leave -1e-17 at eta = 1 */
    const int add_noise = cfg->eta > 0.0 && noise != NULL;
    const ddpm_prediction pred = cfg->prediction;
    const int clip = cfg->clip_sample != 0;
    const double r = cfg->clip_range;
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
    for (int64_t j = 0; j < n; j++) {
        double xj = x[j], mo = model_out[j], x0, eps;
        if (pred == DDPM_PRED_EPS) {
            x0 = (xj - sqrt_b_t * mo) / sqrt_a_t;
            eps = mo;
        } else if (pred == DDPM_PRED_X0) {
            x0 = mo;
            eps = (xj - sqrt_a_t * x0) / sqrt_b_t;
        } else {
            x0 = sqrt_a_t * xj - sqrt_b_t * mo;
            eps = sqrt_a_t * mo + sqrt_b_t * xj;
        }
        if (clip) x0 = clampd(x0, r);
        double prev = sqrt_a_prev * x0 + c_dir * eps;
        x_prev[j] = add_noise ? prev + std_dev * noise[j] : prev;
        if (x0_pred) x0_pred[j] = x0;
    }
    if (info) {
        info->alpha_prod_t = a_t;
        info->alpha_prod_t_prev = a_prev;
        info->variance = var;
        info->std_dev_t = std_dev;
    }
    return DDPM_OK;
}

/* ------------------------------------------------------------------------------------ DPM-Solver++ */

/* diffusers DPMSolverMultistepScheduler._sigma_to_alpha_sigma_t; lambda = log alpha_t - log sigma_t
   (Lu et al. 2022, the half log-SNR). */
dd_dpm_point dd_dpm_point_from_sigma(double sigma) {
    dd_dpm_point p;
    p.sigma = sigma;
    p.alpha_t = 1.0 / sqrt(sigma * sigma + 1.0);
    p.sigma_t = sigma * p.alpha_t;
    p.lambda = p.sigma_t > 0.0 ? log(p.alpha_t) - log(p.sigma_t) : INFINITY;
    return p;
}

/* convert_model_output for algorithm_type "dpmsolver++": the data prediction x0. */
void dd_dpm_data_prediction(ddpm_prediction pred, const dd_dpm_point *p, const double *model_out, const double *x,
                            double *x0, int64_t n, double clip_range) {
    const double a = p->alpha_t, s = p->sigma_t;
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
    for (int64_t j = 0; j < n; j++) {
        double v;
        if (pred == DDPM_PRED_EPS) v = (x[j] - s * model_out[j]) / a;
        else if (pred == DDPM_PRED_X0) v = model_out[j];
        else v = a * x[j] - s * model_out[j];
        x0[j] = clip_range > 0.0 ? clampd(v, clip_range) : v;
    }
}

/* Lu et al. 2022 (DPM-Solver++), eq. 8 (first order, = DDIM in data-prediction form) and Alg. 2 (2M):
     x_t = (sigma_t / sigma_s0) x - alpha_t (e^{-h} - 1) D0 - 0.5 alpha_t (e^{-h} - 1) D1,
     h = lambda_t - lambda_s0, r0 = (lambda_s0 - lambda_s1) / h, D0 = m0, D1 = (m0 - m1) / r0,
   as dpm_solver_first_order_update and multistep_dpm_solver_second_order_update ("midpoint"). */
void dd_dpm_update(double *x, const double *m0, const double *m1, const dd_dpm_point *s1, const dd_dpm_point *s0,
                   const dd_dpm_point *t, int64_t n) {
    if (t->sigma == 0.0) {
        /* sigma_t = 0: h = +inf, e^{-h} = 0 and the first-order update is exactly x0. */
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
        for (int64_t j = 0; j < n; j++) x[j] = m0[j];
        return;
    }
    const double h = t->lambda - s0->lambda;
    const double ratio = t->sigma_t / s0->sigma_t;
    const double c0 = t->alpha_t * (exp(-h) - 1.0);
    if (!m1) {
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
        for (int64_t j = 0; j < n; j++) x[j] = ratio * x[j] - c0 * m0[j];
        return;
    }
    const double h0 = s0->lambda - s1->lambda;
    const double r0 = h0 / h;
    const double inv_r0 = 1.0 / r0;
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
    for (int64_t j = 0; j < n; j++) {
        double d1 = inv_r0 * (m0[j] - m1[j]);
        x[j] = ratio * x[j] - c0 * m0[j] - 0.5 * c0 * d1;
    }
}
