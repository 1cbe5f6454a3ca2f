/* sampler.c — sampler configuration, inference timesteps (diffusers set_timesteps, img2img's strength), the
   reverse-loop skeleton shared with the applications and the reverse loop for DDPM ancestral, DDIM and
   DPM-Solver++ 2M over a model callback. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "diffusion/sampler.h"

/* Stream ids hold the step in 24 bits and the image in 32 bits (ddpm_rng_stream). */
#define DD_MAX_STEP_INDEX ((1 << 24) - 1)

void ddpm_sampler_config_default(ddpm_sampler_config *c, ddpm_sampler_kind kind) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->prediction = DDPM_PRED_EPS;
    c->variance = DDPM_VAR_FIXED_SMALL;
    c->clip_range = 1.0;
    c->eta = 0.0;
    c->steps_offset = 0;
    c->step_along_list = 0;
    c->set_alpha_to_one = 1;
    c->solver_order = 2;
    c->lower_order_final = 1;
    c->seed = 0;
    c->first_step = 0;
    c->repeat_noise_steps = -1;
    switch (kind) {
    case DDPM_SAMPLER_DDPM: /* DDPMScheduler defaults: every training step */
        c->steps = 1000;
        c->spacing = DDPM_SPACING_LEADING;
        c->clip_sample = 1;
        break;
    case DDPM_SAMPLER_DDIM: /* DDIMScheduler defaults, 50 steps as in the DDIM paper's tables */
        c->steps = 50;
        c->spacing = DDPM_SPACING_LEADING;
        c->clip_sample = 1;
        break;
    case DDPM_SAMPLER_DPMPP2M: /* DPMSolverMultistepScheduler defaults (no clipping) */
    default:
        c->steps = 20;
        c->spacing = DDPM_SPACING_LINSPACE;
        c->clip_sample = 0;
        break;
    }
}

const char *dd_sampler_kind_name(ddpm_sampler_kind kind) {
    switch (kind) {
    case DDPM_SAMPLER_DDPM: return "ddpm";
    case DDPM_SAMPLER_DDIM: return "ddim";
    case DDPM_SAMPLER_DPMPP2M: return "dpmpp2m";
    }
    return "unknown";
}

static const char *spacing_name(ddpm_spacing s) {
    switch (s) {
    case DDPM_SPACING_LEADING: return "leading";
    case DDPM_SPACING_TRAILING: return "trailing";
    case DDPM_SPACING_LINSPACE: return "linspace";
    }
    return "unknown";
}

ddpm_status dd_sampler_check_config(const ddpm_sampler_config *cfg, int T) {
    if (!cfg) return dd_error(DDPM_ERR_INVALID_ARG, "sampler config is NULL");
    if (cfg->kind != DDPM_SAMPLER_DDPM && cfg->kind != DDPM_SAMPLER_DDIM && cfg->kind != DDPM_SAMPLER_DPMPP2M)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler kind %d is not ddpm, ddim or dpmpp2m", (int)cfg->kind);
    const char *k = dd_sampler_kind_name(cfg->kind);
    if (T < 1) return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: T = %d training steps must be >= 1", k, T);
    if (cfg->steps < 1 || cfg->steps > T)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: steps = %d must lie in 1..%d (the diffusion's T)", k,
                        cfg->steps, T);
    if (cfg->steps > DD_MAX_STEP_INDEX + 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: steps = %d exceeds the RNG's step field (%d)", k,
                        cfg->steps, DD_MAX_STEP_INDEX + 1);
    if (cfg->prediction != DDPM_PRED_EPS && cfg->prediction != DDPM_PRED_X0 && cfg->prediction != DDPM_PRED_V)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: prediction %d is not eps, x0 or v", k,
                        (int)cfg->prediction);
    if (cfg->variance != DDPM_VAR_FIXED_SMALL && cfg->variance != DDPM_VAR_FIXED_LARGE)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: variance %d is not fixed_small or fixed_large", k,
                        (int)cfg->variance);
    if (cfg->clip_sample && !(isfinite(cfg->clip_range) && cfg->clip_range > 0.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: clip_range = %g must be finite and > 0", k,
                        cfg->clip_range);
    if (!(isfinite(cfg->eta) && cfg->eta >= 0.0 && cfg->eta <= 1.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: eta = %g must lie in [0, 1]", k, cfg->eta);
    if (cfg->eta > 0.0 && cfg->kind != DDPM_SAMPLER_DDIM)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: eta = %g applies to ddim only (leave it 0)", k, cfg->eta);
    if (cfg->spacing != DDPM_SPACING_LEADING && cfg->spacing != DDPM_SPACING_TRAILING &&
        cfg->spacing != DDPM_SPACING_LINSPACE)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: spacing %d is not leading, trailing or linspace", k,
                        (int)cfg->spacing);
    if (cfg->steps_offset < 0 || cfg->steps_offset >= T)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: steps_offset = %d must lie in 0..%d", k,
                        cfg->steps_offset, T - 1);
    if (cfg->kind == DDPM_SAMPLER_DPMPP2M && cfg->solver_order != 1 && cfg->solver_order != 2)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: solver_order = %d must be 1 or 2", k, cfg->solver_order);
    if (cfg->first_step < 0 || cfg->first_step >= cfg->steps)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: first_step = %d must lie in 0..%d (steps - 1)", k,
                        cfg->first_step, cfg->steps - 1);
    if (cfg->repeat_noise_steps < -1)
        return dd_error(DDPM_ERR_INVALID_ARG, "sampler %s: repeat_noise_steps = %d must be -1 (none) or >= 0", k,
                        cfg->repeat_noise_steps);
    return DDPM_OK;
}

/* numpy round(): half to even (the default rounding mode makes nearbyint do exactly that). */
static int64_t round_half_even(double v) { return (int64_t)nearbyint(v); }

/* numpy.arange(T, 0, -T/n)[i] for i < n: numpy fills a[0] = start, a[1] = start + step and then
   a[i] = start + i * (a[1] - a[0]). (numpy may return n + 1 values when T/n is inexact; the first n are
   the ones a sampler visits.) */
static double trailing_value(int T, int n, int i) {
    double start = (double)T, step = -((double)T / (double)n);
    if (i == 0) return start;
    double a1 = start + step;
    if (i == 1) return a1;
    return start + (double)i * (a1 - start);
}

/* numpy.linspace(0, stop, num)[i]. */
static double linspace_value(double stop, int num, int i) {
    if (num == 1) return 0.0;
    if (i == num - 1) return stop;
    return (double)i * (stop / (double)(num - 1)) + 0.0;
}

ddpm_status ddpm_sampler_timesteps(const ddpm_sampler_config *cfg, int T, int64_t *out) {
    ddpm_status st = dd_sampler_check_config(cfg, T);
    if (st != DDPM_OK) return st;
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_sampler_timesteps: output array is NULL");
    const int n = cfg->steps;
    if (cfg->kind == DDPM_SAMPLER_DPMPP2M) {
        /* DPMSolverMultistepScheduler.set_timesteps (ORACLE caveat 5). */
        switch (cfg->spacing) {
        case DDPM_SPACING_LINSPACE: /* linspace(0, T-1, n+1).round()[::-1][:-1] */
            for (int i = 0; i < n; i++) out[i] = round_half_even(linspace_value((double)(T - 1), n + 1, n - i));
            break;
        case DDPM_SPACING_LEADING: { /* (arange(n+1) * (T // (n+1)))[::-1][:-1] + steps_offset */
            int64_t ratio = T / (n + 1);
            for (int i = 0; i < n; i++) out[i] = (int64_t)(n - i) * ratio + cfg->steps_offset;
            break;
        }
        case DDPM_SPACING_TRAILING:
            for (int i = 0; i < n; i++) out[i] = round_half_even(trailing_value(T, n, i)) - 1;
            break;
        }
    } else {
        /* DDPMScheduler / DDIMScheduler.set_timesteps (ORACLE caveat 5). */
        switch (cfg->spacing) {
        case DDPM_SPACING_LINSPACE: /* linspace(0, T-1, n).round()[::-1] */
            for (int i = 0; i < n; i++) out[i] = round_half_even(linspace_value((double)(T - 1), n, n - 1 - i));
            break;
        case DDPM_SPACING_LEADING: { /* (arange(n) * (T // n))[::-1] + steps_offset */
            int64_t ratio = T / n;
            for (int i = 0; i < n; i++) out[i] = (int64_t)(n - 1 - i) * ratio + cfg->steps_offset;
            break;
        }
        case DDPM_SPACING_TRAILING: /* round(arange(T, 0, -T/n)) - 1 */
            for (int i = 0; i < n; i++) out[i] = round_half_even(trailing_value(T, n, i)) - 1;
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        if (out[i] < 0 || out[i] >= T || (i > 0 && out[i] >= out[i - 1]))
            return dd_error(DDPM_ERR_INVALID_ARG,
                            "sampler %s: %d steps with %s spacing (steps_offset %d) give timestep %lld at position "
                            "%d, which is %s for T = %d; use fewer steps, another spacing or a smaller offset",
                            dd_sampler_kind_name(cfg->kind), n, spacing_name(cfg->spacing), cfg->steps_offset,
                            (long long)out[i], i, (out[i] < 0 || out[i] >= T) ? "out of range" : "repeated", T);
    }
    return DDPM_OK;
}

ddpm_status ddpm_sampler_first_step(const ddpm_sampler_config *cfg, int T, int64_t t, int *first, int64_t *t_at) {
    if (!first) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_sampler_first_step: output index is NULL");
    if (t < 0 || t >= T)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_sampler_first_step: timestep t = %lld is outside 0..%d (T = %d)",
                        (long long)t, T - 1, T);
    ddpm_status st = dd_sampler_check_config(cfg, T);
    if (st != DDPM_OK) return st;
    int64_t *ts = dd_alloc(sizeof(int64_t) * (size_t)cfg->steps);
    if (!ts) return DDPM_ERR_NOMEM;
    if ((st = ddpm_sampler_timesteps(cfg, T, ts)) == DDPM_OK) {
        int i = 0;
        while (i < cfg->steps && ts[i] > t) i++; /* the list decreases strictly */
        if (i == cfg->steps) {
            st = dd_error(DDPM_ERR_INVALID_ARG,
                          "ddpm_sampler_first_step: t = %lld is below the last timestep %lld of the %s list (%d steps, "
                          "T = %d); use a larger t or steps_offset 0", (long long)t, (long long)ts[cfg->steps - 1],
                          dd_sampler_kind_name(cfg->kind), cfg->steps, T);
        } else {
            *first = i;
            if (t_at) *t_at = ts[i];
        }
    }
    dd_free(ts);
    return st;
}

ddpm_status ddpm_sampler_strength(const ddpm_sampler_config *cfg, int T, double strength, int *first,
                                  int64_t *t_at) {
    if (!first || !t_at) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_sampler_strength: outputs are NULL");
    ddpm_status st = dd_sampler_check_config(cfg, T);
    if (st != DDPM_OK) return st;
    if (!(strength > 0.0 && strength <= 1.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "strength %g must be in (0, 1]", strength);
    const int steps = cfg->steps;
    int init = (int)((double)steps * strength);
    if (init > steps) init = steps;
    if (init < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "with %d steps that runs no step; use a strength >= %g or more steps",
                        steps, 1.0 / steps);
    int64_t *ts = dd_alloc(sizeof(int64_t) * (size_t)steps);
    if (!ts) return DDPM_ERR_NOMEM;
    if ((st = ddpm_sampler_timesteps(cfg, T, ts)) == DDPM_OK) {
        *first = steps - init;
        *t_at = ts[steps - init];
    }
    dd_free(ts);
    return st;
}

/* ------------------------------------------------------------------------------------ the loop */

/* A callback failed: keep its message, or name it when it left none. */
ddpm_status dd_sampler_callback_failed(ddpm_status st, const char *what, int step, int64_t t) {
    char prefix[96];
    if (ddpm_last_error()[0] == 0)
        return dd_error(st, "%s returned '%s' at step %d (t = %lld)", what, ddpm_status_name(st), step, (long long)t);
    snprintf(prefix, sizeof prefix, "%s at step %d (t = %lld)", what, step, (long long)t);
    return dd_error_prefix(st, prefix);
}

ddpm_status dd_sampler_check_finite(const double *v, int64_t N, int64_t D, const char *what, int step, int64_t t) {
    int64_t n = N * D;
    for (int64_t j = 0; j < n; j++) {
        if (!isfinite(v[j]))
            return dd_error(DDPM_ERR_NUMERIC, "%s at step %d (t = %lld) is %g at image %lld, element %lld", what,
                            step, (long long)t, v[j], (long long)(j / D), (long long)(j % D));
    }
    return DDPM_OK;
}

ddpm_status dd_sampler_check_batch(const char *fn, const char *what, const double *x, int64_t N, int64_t D,
                                   int64_t first_item, size_t *nd) {
    if (!x) return dd_error(DDPM_ERR_INVALID_ARG, "%s: %s is NULL", fn, what);
    if (N < 1 || D < 1 || dd_mul_size((size_t)N, (size_t)D, nd) != 0 || *nd > ((size_t)1 << 40))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: shape [N = %lld, D = %lld] is invalid", fn, (long long)N,
                        (long long)D);
    if (first_item < 0 || first_item + N > ((int64_t)1 << 32))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: images %lld..%lld exceed the RNG's 32-bit item field", fn,
                        (long long)first_item, (long long)(first_item + N - 1));
    for (size_t j = 0; j < *nd; j++)
        if (!isfinite(x[j]))
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: %s is %g at image %lld, element %lld", fn, what, x[j],
                            (long long)(j / (size_t)D), (long long)(j % (size_t)D));
    return DDPM_OK;
}

ddpm_status dd_loop_init(dd_loop *L, const char *fn, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         dd_model_f64_fn model, void *model_user, const double *x, const char *what, int64_t N,
                         int64_t D, int64_t first_item) {
    memset(L, 0, sizeof *L);
    if (!d) return dd_error(DDPM_ERR_INVALID_ARG, "%s: diffusion is NULL", fn);
    ddpm_status st = dd_sampler_check_config(cfg, d->T);
    if (st != DDPM_OK) return st;
    if (!model) return dd_error(DDPM_ERR_INVALID_ARG, "%s: model callback is NULL", fn);
    if ((st = dd_sampler_check_batch(fn, what, x, N, D, first_item, &L->nd)) != DDPM_OK) return st;
    L->d = d;
    L->cfg = cfg;
    L->model = model;
    L->model_user = model_user;
    L->N = N;
    L->D = D;
    L->first_item = first_item;
    L->need_noise = cfg->kind == DDPM_SAMPLER_DDPM || (cfg->kind == DDPM_SAMPLER_DDIM && cfg->eta > 0.0);
    L->ts = dd_alloc(sizeof(int64_t) * (size_t)cfg->steps);
    L->tvec = dd_alloc(sizeof(int64_t) * (size_t)N);
    L->mout = dd_alloc(sizeof(double) * L->nd);
    L->x0 = dd_alloc(sizeof(double) * L->nd);
    L->noise = L->need_noise ? dd_alloc(sizeof(double) * L->nd) : NULL;
    if (!L->ts || !L->tvec || !L->mout || !L->x0 || (L->need_noise && !L->noise)) return DDPM_ERR_NOMEM;
    return ddpm_sampler_timesteps(cfg, d->T, L->ts);
}

void dd_loop_free(dd_loop *L) {
    dd_free(L->ts);
    dd_free(L->tvec);
    dd_free(L->mout);
    dd_free(L->x0);
    dd_free(L->noise);
    memset(L, 0, sizeof *L);
}

ddpm_status dd_loop_model(dd_loop *L, const double *x, int64_t t, int step) {
    for (int64_t r = 0; r < L->N; r++) L->tvec[r] = t;
    ddpm_clear_error();
    ddpm_status st = L->model(L->model_user, L->mout, x, L->tvec, L->N, L->D);
    if (st != DDPM_OK) return dd_sampler_callback_failed(st, "model", step, t);
    return dd_sampler_check_finite(L->mout, L->N, L->D, "model output", step, t);
}

int64_t dd_loop_prev(const dd_loop *L, int p) {
    /* t - T // steps as diffusers (ORACLE caveat 4), or the next list entry */
    const ddpm_sampler_config *cfg = L->cfg;
    if (cfg->step_along_list) return p + 1 < cfg->steps ? L->ts[p + 1] : -1;
    return L->ts[p] - L->d->T / cfg->steps;
}

int dd_loop_shared(const dd_loop *L, int64_t k) {
    return L->cfg->repeat_noise_steps >= 0 && k < L->cfg->repeat_noise_steps;
}

void dd_loop_draw(const dd_loop *L, uint32_t purpose, int64_t stream_step, int shared, double *out) {
    const int64_t N = L->N, D = L->D;
    for (int64_t r = 0; r < N; r++) {
        if (shared && r > 0) {
            memcpy(out + r * D, out, sizeof(double) * (size_t)D);
            continue;
        }
        uint32_t item = shared ? 0u : (uint32_t)(L->first_item + r);
        ddpm_rng_normal_f64(L->cfg->seed, ddpm_rng_stream(purpose, (uint32_t)stream_step, item), 0, out + r * D,
                            (size_t)D);
    }
}

ddpm_status dd_loop_update(dd_loop *L, double *x, int64_t t, int64_t prev_t, int64_t k, int step) {
    const ddpm_sampler_config *cfg = L->cfg;
    const double *nz = NULL;
    if (L->need_noise && (cfg->kind == DDPM_SAMPLER_DDIM || t > 0)) {
        if (cfg->noise) {
            ddpm_clear_error();
            ddpm_status st = cfg->noise(cfg->noise_user, L->noise, (int)k, t, L->N, L->D);
            if (st != DDPM_OK) return dd_sampler_callback_failed(st, "noise callback", step, t);
        } else {
            /* one stream per (step, image), so a batch split anywhere draws the same numbers; the seed's
               repeat_noise: image 0's for every row */
            dd_loop_draw(L, DDPM_STREAM_SAMPLER, k, dd_loop_shared(L, k), L->noise);
        }
        nz = L->noise;
    }
    const int64_t n = (int64_t)L->nd;
    return cfg->kind == DDPM_SAMPLER_DDPM ? ddpm_ddpm_step(L->d, cfg, t, prev_t, L->mout, x, nz, x, L->x0, n, NULL)
                                          : ddpm_ddim_step(L->d, cfg, t, prev_t, L->mout, x, nz, x, L->x0, n, NULL);
}

ddpm_status dd_loop_report(dd_loop *L, const double *x, const char *what, int step, int num_steps, int64_t t) {
    ddpm_status st = dd_sampler_check_finite(x, L->N, L->D, what, step, t);
    if (st != DDPM_OK || !L->cfg->on_step) return st;
    ddpm_clear_error();
    st = L->cfg->on_step(L->cfg->step_user, step, num_steps, t, x, L->x0, L->N, L->D);
    return st == DDPM_OK ? st : dd_sampler_callback_failed(st, "step callback", step, t);
}

ddpm_status dd_sampler_loop_f64(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, dd_model_f64_fn model,
                                void *model_user, double *x, int64_t N, int64_t D, int64_t first_item) {
    dd_loop L;
    double *x0_prev = NULL;
    dd_dpm_point *pts = NULL;
    ddpm_status st = dd_loop_init(&L, "ddpm_sample_loop", d, cfg, model, model_user, x, "the initial sample x_T", N,
                                  D, first_item);
    if (st != DDPM_OK) goto done;
    const int steps = cfg->steps, dpm = cfg->kind == DDPM_SAMPLER_DPMPP2M;
    if (dpm) {
        /* previous x0 [N, D] and the points [steps + 1]: sigma = sqrt((1 - alpha_bar) / alpha_bar) at each visited
           timestep, then 0 (final_sigmas_type "zero") */
        x0_prev = dd_alloc(sizeof(double) * L.nd);
        pts = dd_alloc(sizeof(dd_dpm_point) * (size_t)(steps + 1));
        if (!x0_prev || !pts) {
            st = DDPM_ERR_NOMEM;
            goto done;
        }
        for (int i = 0; i < steps; i++) {
            double ab = d->alphas_cumprod[L.ts[i]];
            pts[i] = dd_dpm_point_from_sigma(sqrt((1.0 - ab) / ab));
        }
        pts[steps] = dd_dpm_point_from_sigma(0.0);
    }

    /* A run may start inside the list (first_step): DPM++ then has no earlier x0 and starts first order. */
    const int first = cfg->first_step;
    for (int i = first; i < steps; i++) {
        const int64_t t = L.ts[i];
        if ((st = dd_loop_model(&L, x, t, i)) != DDPM_OK) goto done;
        if (dpm) {
            /* Lu et al. 2022: first order at the first step and whenever solver_order is 1; the step to
               sigma = 0 is always first order and returns x0 (diffusers final_sigmas_type "zero", which
               makes lower_order_final's own rule redundant for orders 1 and 2). */
            dd_dpm_data_prediction(cfg->prediction, &pts[i], L.mout, x, L.x0, (int64_t)L.nd,
                                   cfg->clip_sample ? cfg->clip_range : 0.0);
            int second = cfg->solver_order == 2 && i > first && pts[i + 1].sigma != 0.0;
            dd_dpm_update(x, L.x0, second ? x0_prev : NULL, i > first ? &pts[i - 1] : NULL, &pts[i], &pts[i + 1],
                          (int64_t)L.nd);
        } else {
            if ((st = dd_loop_update(&L, x, t, dd_loop_prev(&L, i), i, i)) != DDPM_OK) goto done;
        }
        if ((st = dd_loop_report(&L, x, "sample", i, steps, t)) != DDPM_OK) goto done;
        if (dpm) {
            double *tmp = x0_prev;
            x0_prev = L.x0;
            L.x0 = tmp;
        }
    }
    st = DDPM_OK;
done:
    dd_loop_free(&L);
    dd_free(x0_prev);
    dd_free(pts);
    return st;
}

/* The float network behind a double model, with its float buffers made once. */
ddpm_status dd_float_model_init(dd_float_model *fm, ddpm_model_fn model, void *user, int64_t N, int64_t D,
                                const char *fn) {
    fm->model = model;
    fm->user = user;
    fm->xf = fm->outf = NULL;
    if (!model) return dd_error(DDPM_ERR_INVALID_ARG, "%s: model callback is NULL", fn);
    size_t nd;
    if (N < 1 || D < 1 || dd_mul_size((size_t)N, (size_t)D, &nd) != 0 || nd > ((size_t)1 << 40))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: shape [N = %lld, D = %lld] is invalid", fn, (long long)N,
                        (long long)D);
    fm->xf = dd_alloc(sizeof(float) * nd);
    fm->outf = dd_alloc(sizeof(float) * nd);
    if (!fm->xf || !fm->outf) {
        dd_float_model_free(fm);
        return DDPM_ERR_NOMEM;
    }
    return DDPM_OK;
}

void dd_float_model_free(dd_float_model *fm) {
    dd_free(fm->xf);
    dd_free(fm->outf);
    fm->xf = fm->outf = NULL;
}

ddpm_status dd_float_model_call(void *user, double *out, const double *x, const int64_t *t, int64_t N, int64_t D) {
    dd_float_model *fm = user;
    int64_t n = N * D;
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
    for (int64_t j = 0; j < n; j++) fm->xf[j] = (float)x[j];
    ddpm_status st = fm->model(fm->user, fm->outf, fm->xf, t, N, D);
    if (st != DDPM_OK) return st;
#pragma omp parallel for schedule(static) if (n >= DD_SAMPLER_PAR_MIN)
    for (int64_t j = 0; j < n; j++) out[j] = (double)fm->outf[j];
    return DDPM_OK;
}

ddpm_status ddpm_sample_loop(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, ddpm_model_fn model,
                             void *model_user, double *x, int64_t N, int64_t D, int64_t first_item) {
    dd_float_model fm;
    ddpm_status st = dd_float_model_init(&fm, model, model_user, N, D, "ddpm_sample_loop");
    if (st == DDPM_OK) st = dd_sampler_loop_f64(d, cfg, dd_float_model_call, &fm, x, N, D, first_item);
    dd_float_model_free(&fm);
    return st;
}
