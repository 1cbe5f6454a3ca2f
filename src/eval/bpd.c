/* bpd.c — the variational bound in bits per dimension (Ho et al. 2020, eq. 5; improved-diffusion's
   calc_bpd_loop and _vb_terms_bpd): L = L_T + sum_{t>0} L_{t-1} + L_0, each term a mean over dimensions in bits. */
#include <math.h>
#include <string.h>

#include "core/core.h"

void ddpm_bpd_config_default(ddpm_bpd_config *c) {
    memset(c, 0, sizeof *c);
    c->prediction = DDPM_PRED_EPS;
    c->variance = DDPM_VAR_FIXED_SMALL;
    c->clip = 1;
}

ddpm_status ddpm_bpd_loop(const ddpm_diffusion *d, const ddpm_bpd_config *cfg, ddpm_model_fn model, void *model_user,
                          const float *x0, int64_t N, int64_t D, int64_t first_item, double *bpd, double *prior,
                          double *decoder) {
    if (!d || !cfg || !model || !x0 || !bpd || N < 1 || D < 1 || first_item < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "bits/dim: null argument or empty batch");
    if (d->T < 2) return dd_error(DDPM_ERR_INVALID_ARG, "bits/dim: the diffusion needs T >= 2 (has %d)", d->T);
    for (int64_t i = 0; i < N * D; i++)
        if (!(x0[i] >= -1.0f && x0[i] <= 1.0f))
            return dd_error(DDPM_ERR_INVALID_ARG, "bits/dim: value %g of image %lld is outside [-1, 1]", (double)x0[i],
                            (long long)(i / D));
    size_t nd = (size_t)N * (size_t)D;
    float *xt = dd_alloc(sizeof(float) * nd), *out = dd_alloc(sizeof(float) * nd), *eps = dd_alloc(sizeof(float) * (size_t)D);
    double *x0d = dd_alloc(sizeof(double) * nd), *xtd = dd_alloc(sizeof(double) * nd), *od = dd_alloc(sizeof(double) * nd),
           *x0h = dd_alloc(sizeof(double) * nd), *mq = dd_alloc(sizeof(double) * nd), *mp = dd_alloc(sizeof(double) * nd);
    int64_t *tv = dd_alloc(sizeof(int64_t) * (size_t)N);
    ddpm_status st = DDPM_OK;
    if (!xt || !out || !eps || !x0d || !xtd || !od || !x0h || !mq || !mp || !tv) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    const double ln2 = log(2.0);
    int T = d->T;
    for (size_t i = 0; i < nd; i++) x0d[i] = x0[i];
    /* prior L_T = KL(q(x_T | x0) || N(0, I)) */
    {
        double ab = d->alphas_cumprod[T - 1], lv = log(1.0 - ab), s = sqrt(ab);
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < D; k++) acc += ddpm_normal_kl(s * x0d[n * D + k], lv, 0.0, 0.0);
            bpd[n] = acc / (double)D / ln2;
            if (prior) prior[n] = bpd[n];
        }
    }
    for (int t = T - 1; t >= 0; t--) {
        double sa = d->sqrt_alphas_cumprod[t], sb = d->sqrt_one_minus_alphas_cumprod[t];
        for (int64_t n = 0; n < N; n++) {
            tv[n] = t;
            ddpm_rng_normal_f32(cfg->seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)t, (uint32_t)(first_item + n)),
                                0, eps, (size_t)D);
            for (int64_t k = 0; k < D; k++) {
                double v = sa * x0d[n * D + k] + sb * (double)eps[k];
                xt[n * D + k] = (float)v;
                xtd[n * D + k] = (double)xt[n * D + k];
            }
        }
        if ((st = model(model_user, out, xt, tv, N, D)) != DDPM_OK) goto done;
        for (size_t i = 0; i < nd; i++) {
            od[i] = out[i];
            if (!isfinite(od[i])) {
                st = dd_error(DDPM_ERR_NUMERIC, "bits/dim: the model output at t = %d is not finite", t);
                goto done;
            }
        }
        if (cfg->prediction == DDPM_PRED_EPS) ddpm_predict_x0_from_eps(d, x0h, xtd, od, tv, N, D);
        else if (cfg->prediction == DDPM_PRED_V) ddpm_predict_x0_from_v(d, x0h, xtd, od, tv, N, D);
        else memcpy(x0h, od, sizeof(double) * nd);
        if (cfg->clip)
            for (size_t i = 0; i < nd; i++) x0h[i] = x0h[i] < -1.0 ? -1.0 : x0h[i] > 1.0 ? 1.0 : x0h[i];
        ddpm_q_posterior(d, mp, NULL, NULL, x0h, xtd, tv, N, D);
        double lvp = cfg->variance == DDPM_VAR_FIXED_LARGE ? log(t == 0 ? d->posterior_variance[1] : d->betas[t])
                                                          : d->posterior_log_variance_clipped[t];
        if (t > 0) {
            ddpm_q_posterior(d, mq, NULL, NULL, x0d, xtd, tv, N, D);
            double lvq = d->posterior_log_variance_clipped[t];
            for (int64_t n = 0; n < N; n++) {
                double acc = 0;
                for (int64_t k = 0; k < D; k++) acc += ddpm_normal_kl(mq[n * D + k], lvq, mp[n * D + k], lvp);
                bpd[n] += acc / (double)D / ln2;
            }
        } else {
            for (int64_t n = 0; n < N; n++) {
                double acc = 0;
                for (int64_t k = 0; k < D; k++)
                    acc -= ddpm_discretized_gaussian_loglik(x0d[n * D + k], mp[n * D + k], 0.5 * lvp);
                double v = acc / (double)D / ln2;
                bpd[n] += v;
                if (decoder) decoder[n] = v;
            }
        }
        if (cfg->on_step && (st = cfg->on_step(cfg->step_user, T - 1 - t, T, t, NULL, NULL, N, D)) != DDPM_OK) goto done;
    }
done:
    dd_free(xt);
    dd_free(out);
    dd_free(eps);
    dd_free(x0d);
    dd_free(xtd);
    dd_free(od);
    dd_free(x0h);
    dd_free(mq);
    dd_free(mp);
    dd_free(tv);
    return st;
}
