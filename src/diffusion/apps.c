/* apps.c — what a trained model is used for, over a model callback: per-image initial noise, DDIM inversion,
   trajectories, spherical interpolation, forward noise per image, the picture of the forward process, the
   one-step x0 estimate, the timestep of a noise level, and RePaint inpainting (Lugmayr et al. 2022). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "diffusion/sampler.h"

/* Stream ids hold the step in 24 bits; inpainting uses steps 2k and 2k + 1 of the noising stream. */
#define DD_MAX_LOOP_OPS ((int64_t)1 << 23)

void ddpm_sample_init_noise(uint64_t seed, int64_t first_item, int64_t N, int64_t D, int shared, double *out) {
    if (!out || N < 1 || D < 1) return;
    for (int64_t r = 0; r < N; r++) {
        if (shared && r > 0) {
            memcpy(out + r * D, out, sizeof(double) * (size_t)D);
            continue;
        }
        /* shared: global image 0, so that split batches share the same x_T too */
        uint32_t item = shared ? 0u : (uint32_t)(first_item + r);
        ddpm_rng_normal_f64(seed, ddpm_rng_stream(DDPM_STREAM_INIT, 0, item), 0, out + r * D, (size_t)D);
    }
}

/* ------------------------------------------------------------------------------------ DDIM inversion */

/* Song et al. 2021, sec. 4.3 (the ODE run backwards), as diffusers' DDIMInverseScheduler: the model output at
   (x, t_k) is read as eps and x moves from alpha_bar_prev to alpha_bar_k along the deterministic DDIM path.
   No clipping (it would break invertibility). With first_step > 0 the walk stops at timesteps[first_step]. */
ddpm_status dd_ddim_invert_f64(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, dd_model_f64_fn model,
                               void *model_user, double *x, int64_t N, int64_t D) {
    static const char fn[] = "ddpm_ddim_invert";
    dd_loop L;
    ddpm_status st = dd_loop_init(&L, fn, d, cfg, model, model_user, x, "x_0", N, D, 0);
    if (st != DDPM_OK) goto done;
    if (cfg->kind != DDPM_SAMPLER_DDIM) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: the sampler is %s; inversion walks the ddim timestep list "
                      "(use kind ddim)", fn, dd_sampler_kind_name(cfg->kind));
        goto done;
    }
    const int steps = cfg->steps, first = cfg->first_step;
    const int64_t n = (int64_t)L.nd;
    double ab_prev = 1.0; /* x_0 */
    for (int k = steps - 1; k >= first; k--) {
        const int64_t t = L.ts[k];
        const int step = steps - 1 - k;
        if ((st = dd_loop_model(&L, x, t, step)) != DDPM_OK) goto done;
        const double ab = d->alphas_cumprod[t];
        const double sa = sqrt(ab), sb = sqrt(1.0 - ab), sap = sqrt(ab_prev), sbp = sqrt(1.0 - ab_prev);
        const ddpm_prediction pred = cfg->prediction;
        double *mout = L.mout, *x0 = L.x0;
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
        for (int64_t j = 0; j < n; j++) {
            double xj = x[j], mo = mout[j], eps;
            /* the output as eps at t_k (x0 and v read at t_k too, where 1 - ab > 0) */
            if (pred == DDPM_PRED_EPS) eps = mo;
            else if (pred == DDPM_PRED_X0) eps = (xj - sa * mo) / sb;
            else eps = sa * mo + sb * xj;
            double x0j = (xj - sbp * eps) / sap;
            x0[j] = x0j;
            x[j] = sa * x0j + sb * eps;
        }
        if ((st = dd_loop_report(&L, x, "inverted sample", step, steps - first, t)) != DDPM_OK) goto done;
        ab_prev = ab;
    }
    st = DDPM_OK;
done:
    dd_loop_free(&L);
    return st;
}

ddpm_status ddpm_ddim_invert(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, ddpm_model_fn model,
                             void *model_user, double *x, int64_t N, int64_t D) {
    dd_float_model fm;
    ddpm_status st = dd_float_model_init(&fm, model, model_user, N, D, "ddpm_ddim_invert");
    if (st == DDPM_OK) st = dd_ddim_invert_f64(d, cfg, dd_float_model_call, &fm, x, N, D);
    dd_float_model_free(&fm);
    return st;
}

/* ------------------------------------------------------------------------------------ trajectories */

ddpm_status ddpm_trajectory_init(ddpm_trajectory *tr, int nimg, int frames, int steps, int64_t D) {
    if (!tr) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trajectory_init: tr is NULL");
    memset(tr, 0, sizeof *tr);
    if (nimg < 1 || frames < 1 || frames > DDPM_TRAJECTORY_MAX_FRAMES || steps < 1 || D < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trajectory_init: need nimg >= 1, frames 1..%d, steps and D "
                        ">= 1", DDPM_TRAJECTORY_MAX_FRAMES);
    const int F = frames < steps ? frames : steps;
    tr->nimg = nimg;
    tr->nframes = F;
    tr->D = D;
    for (int j = 0; j < F; j++)
        tr->steps[j] = F == 1 ? steps - 1 : (int)floor((double)j * (steps - 1) / (F - 1) + 0.5);
    size_t n;
    if (dd_mul_size((size_t)nimg * (size_t)F, (size_t)D, &n) != 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trajectory_init: %d images of %d frames are too large", nimg, F);
    tr->x = dd_calloc(n, sizeof(float));
    tr->x0 = dd_calloc(n, sizeof(float));
    if (tr->x && tr->x0) return DDPM_OK;
    ddpm_trajectory_free(tr);
    return DDPM_ERR_NOMEM;
}

void ddpm_trajectory_free(ddpm_trajectory *tr) {
    if (!tr) return;
    dd_free(tr->x);
    dd_free(tr->x0);
    tr->x = tr->x0 = NULL;
}

void ddpm_trajectory_record(ddpm_trajectory *tr, int64_t first_item, int step_index, int64_t timestep,
                            const double *x, const double *x0, int64_t N, int64_t D) {
    if (!tr || !tr->x || !x || D != tr->D) return;
    for (int j = 0; j < tr->nframes; j++) {
        if (tr->steps[j] != step_index) continue;
        tr->t[j] = timestep;
        for (int64_t r = 0; r < N; r++) {
            const int64_t g = first_item + r;
            if (g < 0 || g >= tr->nimg) continue;
            const size_t off = ((size_t)g * (size_t)tr->nframes + (size_t)j) * (size_t)D;
            for (int64_t k = 0; k < D; k++) {
                tr->x[off + (size_t)k] = (float)x[r * D + k];
                tr->x0[off + (size_t)k] = x0 ? (float)x0[r * D + k] : 0.0f;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------ interpolation */

/* Shoemake 1985: sin((1 - l) theta) / sin(theta) a + sin(l theta) / sin(theta) b, theta the angle between a and
   b; near theta = 0 (or pi) the weights are ill-conditioned and the linear ones are used instead. */
void ddpm_slerp(const double *a, const double *b, double lambda, double *out, int64_t D) {
    if (!a || !b || !out || D < 1) return;
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int64_t j = 0; j < D; j++) {
        ab += a[j] * b[j];
        aa += a[j] * a[j];
        bb += b[j] * b[j];
    }
    double ca = 1.0 - lambda, cb = lambda;
    if (aa > 0.0 && bb > 0.0) {
        double c = ab / sqrt(aa * bb);
        if (c > 1.0) c = 1.0;
        if (c < -1.0) c = -1.0;
        if (fabs(c) < 0.9995) {
            double theta = acos(c), s = sin(theta);
            ca = sin((1.0 - lambda) * theta) / s;
            cb = sin(lambda * theta) / s;
        }
    }
    for (int64_t j = 0; j < D; j++) out[j] = ca * a[j] + cb * b[j]; /* out may alias a or b */
}

/* ------------------------------------------------------------------------------------ forward noise, x0 */

ddpm_status ddpm_noise_images(const ddpm_diffusion *d, uint64_t seed, int64_t t, const double *x0,
                              int64_t first_item, int64_t N, int64_t D, double *out) {
    size_t nd;
    if (!d || !out || t < 0 || t >= d->T)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_noise_images: need a diffusion, out and 0 <= t < T");
    ddpm_status st = dd_sampler_check_batch("ddpm_noise_images", "x_0", x0, N, D, first_item, &nd);
    double *eps = st == DDPM_OK ? dd_alloc(sizeof(double) * (size_t)D) : NULL;
    if (st == DDPM_OK && !eps) st = DDPM_ERR_NOMEM;
    for (int64_t r = 0; st == DDPM_OK && r < N; r++) {
        ddpm_rng_normal_f64(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, (uint32_t)(first_item + r)), 0, eps,
                            (size_t)D);
        ddpm_q_sample_f64(d, out + r * D, x0 + r * D, eps, &t, 1, D);
    }
    dd_free(eps);
    return st;
}

ddpm_status ddpm_noise_strip(const ddpm_diffusion *d, const float *x0, int C, int H, int W, uint64_t seed,
                             uint32_t item, const int64_t *t, int n, int scale, ddpm_image *out) {
    enum { MAX_STEPS = 64 };
    if (!d || !x0 || !t || !out || n < 1 || n > MAX_STEPS || C < 1 || H < 1 || W < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_noise_strip: need a diffusion, an image and 1..%d timesteps",
                        MAX_STEPS);
    for (int i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= d->T)
            return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_noise_strip: timestep %lld is out of range; need 0 <= t < T "
                            "= %d", (long long)t[i], d->T);
    size_t D = (size_t)C * (size_t)H * (size_t)W, nd;   /* one image, [C, H, W] */
    if (dd_mul_size(D, (size_t)n, &nd)) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_noise_strip: image too large");
    float *x0s = dd_alloc(sizeof(float) * nd), *xt = dd_alloc(sizeof(float) * nd);   /* [n, C, H, W] */
    char buf[MAX_STEPS][32];
    const char *captions[MAX_STEPS];
    ddpm_status st = x0s && xt ? DDPM_OK : DDPM_ERR_NOMEM;
    if (st == DDPM_OK) {
        /* eps into the first row, repeated [n, D]; then overwritten in place by x_t */
        ddpm_rng_normal_f32(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, item), 0, xt, D);
        for (int i = 0; i < n; i++) {
            memcpy(x0s + (size_t)i * D, x0, sizeof(float) * D);
            if (i > 0) memcpy(xt + (size_t)i * D, xt, sizeof(float) * D);
            snprintf(buf[i], sizeof buf[i], "t = %lld", (long long)t[i]);
            captions[i] = buf[i];
        }
        ddpm_q_sample(d, xt, x0s, xt, t, n, (int64_t)D);
        st = ddpm_image_strip(out, xt, n, C, H, W, captions, scale);
    }
    dd_free(x0s);
    dd_free(xt);
    return st;
}

ddpm_status ddpm_predict_x0(const ddpm_diffusion *d, ddpm_prediction pred, ddpm_model_fn model, void *model_user,
                            const double *x, int64_t t, int64_t N, int64_t D, double clip, double *x0) {
    static const char fn[] = "ddpm_predict_x0";
    size_t nd;
    if (!d || !x0 || t < 0 || t >= d->T)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: need a diffusion, x0 and 0 <= t < T", fn);
    ddpm_status st = dd_sampler_check_batch(fn, "x_t", x, N, D, 0, &nd);
    if (st != DDPM_OK) return st;
    dd_float_model fm;
    int64_t *tv = dd_alloc(sizeof(int64_t) * (size_t)N);
    double *mo = dd_alloc(sizeof(double) * nd);
    if ((st = dd_float_model_init(&fm, model, model_user, N, D, fn)) == DDPM_OK && (!tv || !mo)) st = DDPM_ERR_NOMEM;
    for (int64_t r = 0; st == DDPM_OK && r < N; r++) tv[r] = t;
    if (st == DDPM_OK && (st = dd_float_model_call(&fm, mo, x, tv, N, D)) != DDPM_OK)
        st = dd_sampler_callback_failed(st, "model", 0, t);
    if (st == DDPM_OK) {
        if (pred == DDPM_PRED_EPS) ddpm_predict_x0_from_eps(d, x0, x, mo, tv, N, D);
        else if (pred == DDPM_PRED_V) ddpm_predict_x0_from_v(d, x0, x, mo, tv, N, D);
        else memcpy(x0, mo, sizeof(double) * nd);
        for (size_t j = 0; clip > 0 && j < nd; j++) x0[j] = x0[j] < -clip ? -clip : x0[j] > clip ? clip : x0[j];
    }
    dd_float_model_free(&fm);
    dd_free(tv);
    dd_free(mo);
    return st;
}

/* ------------------------------------------------------------------------------------ noise level */

int64_t ddpm_timestep_for_sigma(const ddpm_diffusion *d, double sigma) {
    /* no timestep has sigma 0 or below: the caller reports it */
    if (!d || !d->alphas_cumprod || d->T < 1 || !(isfinite(sigma) && sigma > 0.0)) return -1;
    int64_t best = 0;
    double best_err = INFINITY;
    for (int64_t t = 0; t < d->T; t++) {
        double ab = d->alphas_cumprod[t];
        double err = fabs(sqrt((1.0 - ab) / ab) - sigma);
        if (err < best_err) {
            best_err = err;
            best = t;
        }
    }
    return best;
}

/* ------------------------------------------------------------------------------------ RePaint */

void ddpm_inpaint_config_default(ddpm_inpaint_config *c) {
    if (!c) return;
    c->jump_length = 10;
    c->jump_n_sample = 1;
}

/* Lugmayr et al. 2022, Alg. 1, with the jump schedule of their code (diffusers get_schedule_jump): counted in
   units u = steps - 1 - p from the bottom of the list, a jump sits at every u = 0, L, 2L, ... below U - L (U the
   units of the run), so a run never goes back to its first timestep. After the downward step at a jump unit the
   run noises x back up L positions and redoes them, jump_n_sample - 1 times in all. Loop operation k (downward
   steps and upward ones alike) draws the sampler noise (SAMPLER, k), the known region's noise (NOISING, 2k) and
   the upward noise (NOISING, 2k + 1) of each image, or image 0's of all three for every image while
   k < repeat_noise_steps; k starts at first_step, so that without jumps the sampler noise is that of
   ddpm_sample_loop. */
ddpm_status dd_inpaint_loop_f64(const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                                const ddpm_inpaint_config *ic, dd_model_f64_fn model, void *model_user, double *x,
                                const double *known, const double *mask, int64_t N, int64_t D, int64_t first_item) {
    static const char fn[] = "ddpm_inpaint_loop";
    dd_loop L;
    double *z = NULL;
    ddpm_status st = dd_loop_init(&L, fn, d, cfg, model, model_user, x, "x_T", N, D, first_item);
    if (st != DDPM_OK) goto done;
    size_t nd = L.nd;
    if (cfg->kind != DDPM_SAMPLER_DDPM && cfg->kind != DDPM_SAMPLER_DDIM) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: the sampler is %s; inpainting runs with ddpm or ddim", fn,
                      dd_sampler_kind_name(cfg->kind));
        goto done;
    }
    if (!ic) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: inpaint config is NULL", fn);
        goto done;
    }
    if (ic->jump_length < 0 || ic->jump_n_sample < 0) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: jump_length = %d and jump_n_sample = %d must be >= 0", fn,
                      ic->jump_length, ic->jump_n_sample);
        goto done;
    }
    if ((st = dd_sampler_check_batch(fn, "known image", known, N, D, first_item, &nd)) != DDPM_OK) goto done;
    if (!mask) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: mask is NULL", fn);
        goto done;
    }
    for (size_t j = 0; j < nd; j++)
        if (!(mask[j] >= 0.0 && mask[j] <= 1.0)) {
            st = dd_error(DDPM_ERR_INVALID_ARG, "%s: mask is %g at image %lld, element %lld; it must lie in [0, 1] "
                          "(1 = generate, 0 = keep)", fn, mask[j], (long long)(j / (size_t)D),
                          (long long)(j % (size_t)D));
            goto done;
        }

    const int steps = cfg->steps, first = cfg->first_step;
    /* The schedule's size, before any work: U units, jumps of L units each redone n - 1 times. */
    const int64_t U = steps - first, J = ic->jump_length;
    const int64_t resample = ic->jump_n_sample > 1 ? ic->jump_n_sample - 1 : 0;
    const int64_t njumps = J > 0 && resample > 0 && U > J ? (U - J - 1) / J + 1 : 0;
    const int64_t downs = U + njumps * resample * J, ops = downs + njumps * resample * J;
    if (first + ops > DD_MAX_LOOP_OPS) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: %lld loop steps (%d sampler steps, jump_length %d, jump_n_sample "
                      "%d) exceed the RNG's limit of %lld; use fewer steps or jumps", fn, (long long)(first + ops),
                      steps, ic->jump_length, ic->jump_n_sample, (long long)DD_MAX_LOOP_OPS);
        goto done;
    }
    if (!(z = dd_alloc(sizeof(double) * nd))) { /* the forward noise [N, D] */
        st = DDPM_ERR_NOMEM;
        goto done;
    }

    const int64_t n = (int64_t)nd;
    const int64_t *ts = L.ts;
    int p = first;                 /* x holds x_t at ts[p]; p = steps: the end */
    int64_t k = first, down = 0;   /* loop operation (the list index while there are no jumps), steps done */
    int64_t jump_at = -1, left = 0; /* the jump unit last reached and the returns it has left */
    while (p < steps) {
        const int64_t t = ts[p], prev_t = dd_loop_prev(&L, p);
        const int step = first + (int)down;
        if ((st = dd_loop_model(&L, x, t, step)) != DDPM_OK) goto done;
        if ((st = dd_loop_update(&L, x, t, prev_t, k, step)) != DDPM_OK) goto done;
        /* The region to keep: the image noised to prev_t (q_sample), or the image itself after the last step. */
        if (prev_t >= 0) {
            dd_loop_draw(&L, DDPM_STREAM_NOISING, 2 * k, dd_loop_shared(&L, k), z);
            const double ab = d->alphas_cumprod[prev_t], sa = sqrt(ab), sb = sqrt(1.0 - ab);
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
            for (int64_t j = 0; j < n; j++) x[j] = mask[j] * x[j] + (1.0 - mask[j]) * (sa * known[j] + sb * z[j]);
        } else {
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
            for (int64_t j = 0; j < n; j++) x[j] = mask[j] * x[j] + (1.0 - mask[j]) * known[j];
        }
        if ((st = dd_loop_report(&L, x, "sample", step, first + (int)downs, t)) != DDPM_OK) goto done;
        down++;
        k++;
        p++;
        const int64_t u = steps - p; /* the unit of the step just made */
        if (njumps > 0 && u % J == 0 && u < U - J) {
            if (jump_at != u) {
                jump_at = u;
                left = resample;
            }
            if (left > 0) {
                left--;
                /* Back up J positions: x_t = sqrt(ab_t / ab_prev) x_prev + sqrt(1 - ab_t / ab_prev) z. */
                for (int64_t s = 0; s < J; s++) {
                    const int q = p - 1;
                    const int64_t from = dd_loop_prev(&L, q);
                    const double ratio = d->alphas_cumprod[ts[q]] / (from >= 0 ? d->alphas_cumprod[from] : 1.0);
                    const double ca = sqrt(ratio), cz = sqrt(1.0 - ratio);
                    dd_loop_draw(&L, DDPM_STREAM_NOISING, 2 * k + 1, dd_loop_shared(&L, k), z);
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
                    for (int64_t j = 0; j < n; j++) x[j] = ca * x[j] + cz * z[j];
                    k++;
                    p = q;
                }
            }
        }
    }
    st = DDPM_OK;
done:
    dd_loop_free(&L);
    dd_free(z);
    return st;
}

ddpm_status ddpm_inpaint_loop(const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                              const ddpm_inpaint_config *ic, ddpm_model_fn model, void *model_user, double *x,
                              const double *known, const double *mask, int64_t N, int64_t D, int64_t first_item) {
    dd_float_model fm;
    ddpm_status st = dd_float_model_init(&fm, model, model_user, N, D, "ddpm_inpaint_loop");
    if (st == DDPM_OK)
        st = dd_inpaint_loop_f64(d, cfg, ic, dd_float_model_call, &fm, x, known, mask, N, D, first_item);
    dd_float_model_free(&fm);
    return st;
}
