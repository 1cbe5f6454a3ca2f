/* applications.c — the applications of a trained model in one call each, over ddpm_sample_images: interpolation
   between two images (noised mix, or DDIM inversion + slerp), img2img (SDEdit), RePaint inpainting and denoising
   of an image with Gaussian noise of a known level. */
#include <math.h>
#include <string.h>

#include "core/core.h"

void ddpm_app_request_default(ddpm_app_request *r) {
    if (!r) return;
    memset(r, 0, sizeof *r);
    r->chunk = 16;
    r->guidance = 1.0;
    r->engine = DDPM_ENGINE_FAST;
}

ddpm_status ddpm_model_check_images(const ddpm_model *m) {
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_check_images: model is NULL");
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    if (mi.in_channels != 1 && mi.in_channels != 3)
        return dd_error(DDPM_ERR_INVALID_ARG, "the model has %d input channels; images need 1 (gray) or 3 (RGB)",
                        mi.in_channels);
    if (mi.out_channels != mi.in_channels)
        return dd_error(DDPM_ERR_INVALID_ARG, "the model outputs %d channels for %d input channels (a learned "
                        "variance is not supported)", mi.out_channels, mi.in_channels);
    return DDPM_OK;
}

/* The checks every application makes; *D = the numbers of one image. */
static ddpm_status app_check(const char *fn, ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                             const ddpm_app_request *r, const void *image, const void *out, int64_t num,
                             int64_t *D, ddpm_app_info *info) {
    if (info) *info = (ddpm_app_info){.round_trip = {NAN, NAN}, .psnr = {NAN, NAN, NAN}};
    if (!m || !d || !cfg || !r || !image || !out)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: model, diffusion, sampler config, request, input and output "
                        "images are needed", fn);
    if (num < 1 || num > (1 << 24))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: %lld images; need 1..%d", fn, (long long)num, 1 << 24);
    if (r->chunk < 1) return dd_error(DDPM_ERR_INVALID_ARG, "%s: chunk = %d must be >= 1", fn, r->chunk);
    ddpm_status st = ddpm_model_check_images(m);
    if (st != DDPM_OK) return st;
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    *D = (int64_t)mi.in_channels * mi.sample_size * mi.sample_size;
    return DDPM_OK;
}

/* One pass of ddpm_sample_images over x [N, D] (run and xt in q), announced to r->on_pass with its step count:
   per_chunk on_step calls for each chunk of `chunk` images. */
static ddpm_status app_pass(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                            const ddpm_app_request *r, ddpm_sample_request *q, const char *name, int chunk,
                            int64_t per_chunk, double *x, int64_t N, const ddpm_app_info *info) {
    q->chunk = chunk;
    q->guidance = r->guidance;
    q->labels = r->labels;
    q->engine = r->engine;
    q->on_chunk = r->on_chunk;
    q->chunk_user = r->user;
    const int64_t c = N < chunk ? N : chunk;
    if (r->on_pass) {
        ddpm_clear_error();
        ddpm_status st = r->on_pass(r->user, name, N, (N + c - 1) / c * per_chunk, info);
        if (st != DDPM_OK)
            return ddpm_last_error()[0] ? st : dd_error(st, "%s: the pass callback stopped the run", name);
    }
    return ddpm_sample_images(m, d, cfg, q, x, N);
}

/* Heap doubles of n floats repeated to `copies` copies (NULL: out of memory). */
static double *to_double(const float *f, size_t n, size_t copies) {
    double *x = dd_alloc(sizeof(double) * n * copies);
    for (size_t k = 0; x && k < n * copies; k++) x[k] = (double)f[k % n];
    return x;
}

static void to_float(float *out, const double *x, size_t n) {
    for (size_t k = 0; k < n; k++) out[k] = (float)x[k];
}

/* Mean |p - q| / 2 (power 1) or mean ((p - q) / 2)^2 (power 2) of two model-space images with values clamped to
   [-1, 1]: pixels on the [0, 1] scale. */
static double pixel_diff(const float *p, const float *q, int64_t D, int power) {
    double s = 0;
    for (int64_t k = 0; k < D; k++) {
        double u = p[k] < -1 ? -1 : p[k] > 1 ? 1 : p[k], v = q[k] < -1 ? -1 : q[k] > 1 ? 1 : q[k];
        s += power == 1 ? fabs(u - v) / 2 : (u - v) * (u - v) / 4;
    }
    return s / (double)D;
}

static double psnr(const float *p, const float *q, int64_t D) {
    double mse = pixel_diff(p, q, D, 2);
    return mse > 0 ? 10 * log10(1 / mse) : INFINITY;
}

/* ------------------------------------------------------------------------------------ interpolation */

ddpm_status ddpm_interpolate(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                             const ddpm_app_request *r, const float *a, const float *b, const double *lambdas,
                             int n, ddpm_interp_mode mode, int64_t t, float *out, ddpm_app_info *info) {
    static const char fn[] = "ddpm_interpolate";
    ddpm_app_info inf;
    int64_t D = 0;
    ddpm_status st = app_check(fn, m, d, cfg, r, a, out, n, &D, &inf);
    if (st != DDPM_OK) return st;
    if (!b || !lambdas) return dd_error(DDPM_ERR_INVALID_ARG, "%s: b and the lambdas are needed", fn);
    for (int i = 0; i < n; i++)
        if (!(lambdas[i] >= 0 && lambdas[i] <= 1))
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: lambda %g is outside [0, 1]", fn, lambdas[i]);
    ddpm_sampler_config c = *cfg;
    const int T = d->T;
    if (mode == DDPM_INTERP_DDIM) {
        if (t != -1)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: ddim mode inverts the images all the way; t = %lld is for "
                            "noise mode", fn, (long long)t);
        if (c.kind != DDPM_SAMPLER_DDIM)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: ddim mode inverts and decodes with the ddim sampler (this is "
                            "%s)", fn, ddpm_enum_name(DDPM_ENUM_SAMPLER, (int)c.kind));
        c.eta = 0;
        c.clip_sample = 0;
        c.first_step = 0;
        if ((st = ddpm_sampler_first_step(&c, T, T - 1, &inf.first_step, &inf.t)) != DDPM_OK) return st;
    } else if (mode == DDPM_INTERP_NOISE) {
        if (t == -1) t = T > 500 ? 500 : T / 2;
        if (t < 0 || t >= T)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: t = %lld is outside [0, %d)", fn, (long long)t, T);
        if ((st = ddpm_sampler_first_step(&c, T, t, &inf.first_step, &inf.t)) != DDPM_OK) return st;
        c.first_step = inf.first_step;
        inf.t_noise = inf.t;
    } else {
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: unknown mode %d", fn, (int)mode);
    }
    const size_t nd = (size_t)n * (size_t)D;
    double *x = dd_alloc(sizeof(double) * nd), *ends = dd_alloc(sizeof(double) * 2 * (size_t)D);
    ddpm_sample_request q;
    ddpm_sample_request_default(&q);
    if (!x || !ends) st = DDPM_ERR_NOMEM;
    for (int64_t k = 0; st == DDPM_OK && k < D; k++) ends[k] = a[k], ends[D + k] = b[k];
    const int chunk = n < r->chunk ? n : r->chunk;
    if (st == DDPM_OK && mode == DDPM_INTERP_DDIM) {
        /* one plan for the inversion and the decoding */
        ddpm_guided *g = NULL;
        st = ddpm_guided_prepare(m, r->guidance, chunk < 2 ? 2 : chunk, r->engine, &g);
        ddpm_guided_free(g);
        q.run = DDPM_RUN_INVERT;
        if (st == DDPM_OK) st = app_pass(m, d, &c, r, &q, "inverting a and b", 2, c.steps, ends, 2, &inf);
        for (int i = 0; st == DDPM_OK && i < n; i++) ddpm_slerp(ends, ends + D, lambdas[i], x + (size_t)i * D, D);
    } else if (st == DDPM_OK) {
        /* both images noised to t with their own streams (items 0 and 1), then mixed */
        st = ddpm_noise_images(d, c.seed, inf.t, ends, 0, 2, D, ends);
        for (size_t j = 0; st == DDPM_OK && j < nd; j++) {
            const double l = lambdas[j / (size_t)D];
            const size_t k = j % (size_t)D;
            x[j] = (1 - l) * ends[k] + l * ends[D + k];
        }
    }
    q.run = DDPM_RUN_SAMPLE;
    q.xt = DDPM_XT_GIVEN;
    if (st == DDPM_OK)
        st = app_pass(m, d, &c, r, &q, mode == DDPM_INTERP_DDIM ? "decoding" : "interpolating", chunk,
                      c.steps - c.first_step, x, n, &inf);
    if (st == DDPM_OK) {
        to_float(out, x, nd);
        for (int i = n - 1; i >= 0; i--) {   /* the first image of lambda 0 (1) */
            if (lambdas[i] == 0) inf.round_trip[0] = pixel_diff(a, out + (size_t)i * D, D, 1);
            if (lambdas[i] == 1) inf.round_trip[1] = pixel_diff(b, out + (size_t)i * D, D, 1);
        }
    }
    if (info) *info = inf;
    dd_free(x);
    dd_free(ends);
    return st;
}

/* ------------------------------------------------------------------------------------ img2img */

ddpm_status ddpm_img2img(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         const ddpm_app_request *r, const float *image, double strength, int64_t num, float *out,
                         ddpm_app_info *info) {
    ddpm_app_info inf;
    int64_t D = 0;
    ddpm_status st = app_check("ddpm_img2img", m, d, cfg, r, image, out, num, &D, &inf);
    if (st != DDPM_OK) return st;
    ddpm_sampler_config c = *cfg;
    if ((st = ddpm_sampler_strength(&c, d->T, strength, &inf.first_step, &inf.t)) != DDPM_OK) return st;
    c.first_step = inf.first_step;
    inf.t_noise = inf.t;
    const size_t nd = (size_t)num * (size_t)D;
    double *x = to_double(image, (size_t)D, (size_t)num);
    if (!x) return DDPM_ERR_NOMEM;
    ddpm_sample_request q;
    ddpm_sample_request_default(&q);
    q.xt = DDPM_XT_GIVEN;
    st = ddpm_noise_images(d, c.seed, inf.t, x, 0, num, D, x);   /* result i: item i's noise */
    if (st == DDPM_OK) st = app_pass(m, d, &c, r, &q, "img2img", r->chunk, c.steps - c.first_step, x, num, &inf);
    if (st == DDPM_OK) to_float(out, x, nd);
    if (info) *info = inf;
    dd_free(x);
    return st;
}

/* ------------------------------------------------------------------------------------ inpainting */

ddpm_status ddpm_inpaint(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         const ddpm_app_request *r, const ddpm_inpaint_config *ic, const float *image,
                         const float *mask, int64_t num, float *out, float *masked, ddpm_app_info *info) {
    static const char fn[] = "ddpm_inpaint";
    ddpm_app_info inf;
    int64_t D = 0;
    ddpm_status st = app_check(fn, m, d, cfg, r, image, out, num, &D, &inf);
    if (st != DDPM_OK) return st;
    if (!ic || !mask) return dd_error(DDPM_ERR_INVALID_ARG, "%s: the inpaint config and the mask are needed", fn);
    if (ic->jump_n_sample > 1 && ic->jump_length >= cfg->steps)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: jump_length %d must be smaller than the %d sampler steps", fn,
                        ic->jump_length, cfg->steps);
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    const size_t P = (size_t)mi.sample_size * (size_t)mi.sample_size, nd = (size_t)num * (size_t)D;
    double *x = dd_alloc(sizeof(double) * nd), *known = to_double(image, (size_t)D, (size_t)num);
    double *mk = to_double(mask, P, nd / P);   /* the same mask for every channel and result */
    if (!x || !known || !mk) st = DDPM_ERR_NOMEM;
    double frac = 0;
    for (size_t p = 0; p < P; p++) frac += mask[p];
    inf.regenerated = frac / (double)P;
    /* the steps each chunk reports: the downward ones of ddpm_inpaint_loop's jump schedule */
    const int64_t U = cfg->steps - cfg->first_step, J = ic->jump_length;
    const int64_t resample = ic->jump_n_sample > 1 ? ic->jump_n_sample - 1 : 0;
    const int64_t njumps = J > 0 && resample > 0 && U > J ? (U - J - 1) / J + 1 : 0;
    inf.first_step = cfg->first_step;
    if (st == DDPM_OK) {
        ddpm_sample_request q;
        ddpm_sample_request_default(&q);
        q.run = DDPM_RUN_INPAINT;
        q.inpaint = ic;
        q.known = known;
        q.mask = mk;
        st = app_pass(m, d, cfg, r, &q, "inpainting", r->chunk, U + njumps * resample * J, x, num, &inf);
    }
    if (st == DDPM_OK) to_float(out, x, nd);
    for (size_t k = 0; st == DDPM_OK && masked && k < (size_t)D; k++)
        masked[k] = mask[k % P] >= 0.5f ? 0.0f : image[k];
    if (info) *info = inf;
    dd_free(x);
    dd_free(known);
    dd_free(mk);
    return st;
}

/* ------------------------------------------------------------------------------------ denoising */

ddpm_status ddpm_denoise(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         const ddpm_app_request *r, const float *image, double sigma, int add_noise, float *noisy,
                         float *one_step, float *out, ddpm_app_info *info) {
    static const char fn[] = "ddpm_denoise";
    ddpm_app_info inf;
    int64_t D = 0;
    ddpm_status st = app_check(fn, m, d, cfg, r, image, out, 1, &D, &inf);
    if (st != DDPM_OK) return st;
    const double sm = 2 * sigma;   /* model space is [-1, 1]: twice the pixel scale */
    const int64_t t = ddpm_timestep_for_sigma(d, sm);
    if (t < 0) return dd_error(DDPM_ERR_INVALID_ARG, "%s: sigma = %g must be a number > 0", fn, sigma);
    ddpm_sampler_config c = *cfg;
    if ((st = ddpm_sampler_first_step(&c, d->T, t, &inf.first_step, &inf.t)) != DDPM_OK) return st;
    c.first_step = inf.first_step;
    inf.t_noise = t;
    double *y = dd_alloc(sizeof(double) * 3 * (size_t)D), *w = y ? y + D : NULL, *x0 = y ? y + 2 * D : NULL;
    if (!y) return DDPM_ERR_NOMEM;
    for (int64_t k = 0; k < D; k++) y[k] = (double)image[k];
    if (add_noise) {
        ddpm_rng_normal_f64(c.seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 0), 0, w, (size_t)D);
        for (int64_t k = 0; k < D; k++) y[k] += sm * w[k];
    }
    /* one model call: x_t = sqrt(ab_t) y, then x0 from the prediction, clipped */
    const double sab = sqrt(d->alphas_cumprod[t]), sat = sqrt(d->alphas_cumprod[inf.t]);
    ddpm_guided *g = NULL;
    for (int64_t k = 0; k < D; k++) w[k] = sab * y[k];
    st = ddpm_guided_prepare(m, r->guidance, 1, r->engine, &g);
    if (st == DDPM_OK) st = ddpm_guided_set_labels(g, r->labels, 1);
    if (st == DDPM_OK) st = ddpm_predict_x0(d, c.prediction, ddpm_guided_fn, g, w, t, 1, D, 1.0, x0);
    ddpm_guided_free(g);
    /* the reverse process from the first timestep <= t */
    for (int64_t k = 0; k < D; k++) w[k] = sat * y[k];
    ddpm_sample_request q;
    ddpm_sample_request_default(&q);
    q.xt = DDPM_XT_GIVEN;
    if (st == DDPM_OK) st = app_pass(m, d, &c, r, &q, "denoising", 1, c.steps - c.first_step, w, 1, &inf);
    if (st == DDPM_OK) {
        float *f = dd_alloc(sizeof(float) * 2 * (size_t)D);   /* the noisy image and the estimate */
        if (!f) st = DDPM_ERR_NOMEM;
        if (f) {
            to_float(out, w, (size_t)D);
            to_float(f, y, (size_t)D);
            to_float(f + D, x0, (size_t)D);
            if (noisy) memcpy(noisy, f, sizeof(float) * (size_t)D);
            if (one_step) memcpy(one_step, f + D, sizeof(float) * (size_t)D);
            for (int k = 0; add_noise && k < 3; k++) inf.psnr[k] = psnr(k < 2 ? f + k * D : out, image, D);
        }
        dd_free(f);
    }
    if (info) *info = inf;
    dd_free(y);
    return st;
}
