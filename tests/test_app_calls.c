/* test_app_calls.c — the applications in one library call each: ddpm_interpolate (noise mode at t = 0 returns a,
   ddim mode equals inversion + slerp + decode, the round trip), ddpm_img2img (the start step of a strength, the
   result equals noising + sampling from it), ddpm_inpaint (a keep-all mask returns the image, the masked preview),
   ddpm_denoise (the timestep of sigma, the added noise, PSNR), the pass callback's step counts, the refusals of
   bad arguments, ddpm_model_check_images and ddpm_paths_same. The networks are the tiny fixture UNets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* A model of tests/data, loaded only (the calls under test prepare it). */
static ddpm_model *load(const char *rel) { return dd_test_model(dd_test_data(rel), 0, DDPM_ENGINE_FAST, 0, 0); }

/* The passes announced and the step callbacks seen. */
typedef struct {
    int passes;
    char names[4][32];
    int64_t steps[4], n[4], seen;
} counts;

static ddpm_status on_pass(void *user, const char *name, int64_t n, int64_t steps, const ddpm_app_info *info) {
    counts *c = user;
    (void)info;
    if (c->passes < 4) {
        snprintf(c->names[c->passes], sizeof c->names[0], "%s", name);
        c->steps[c->passes] = steps, c->n[c->passes] = n;
    }
    c->passes++;
    return DDPM_OK;
}

static ddpm_status on_step(void *user, int step_index, int num_steps, int64_t timestep, const double *x,
                           const double *x0, int64_t N, int64_t D) {
    (void)step_index, (void)num_steps, (void)timestep, (void)x, (void)x0, (void)N, (void)D;
    ((counts *)user)->seen++;
    return DDPM_OK;
}

static ddpm_status stop_pass(void *user, const char *name, int64_t n, int64_t steps, const ddpm_app_info *info) {
    (void)user, (void)name, (void)n, (void)steps, (void)info;
    return DDPM_ERR_INTERRUPTED;
}

static void image(float *x, int64_t D, uint64_t seed) {
    double *t = malloc(sizeof(double) * (size_t)D);
    ddpm_sample_init_noise(seed, 0, 1, D, 0, t);
    for (int64_t k = 0; k < D; k++) x[k] = (float)tanh(t[k]);
    free(t);
}

static double mean_abs_pixels(const float *p, const float *q, int64_t D) {
    double s = 0;
    for (int64_t k = 0; k < D; k++) {
        double u = p[k] < -1 ? -1 : p[k] > 1 ? 1 : p[k], v = q[k] < -1 ? -1 : q[k] > 1 ? 1 : q[k];
        s += fabs(u - v) / 2;
    }
    return s / (double)D;
}

static void test_interpolate(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    ddpm_model *m = load("unet_tiny");
    const int64_t D = dd_test_model_d(m);
    float *a = malloc(sizeof(float) * (size_t)D), *b = malloc(sizeof(float) * (size_t)D);
    float *out = malloc(sizeof(float) * 3 * (size_t)D);
    image(a, D, 1);
    image(b, D, 2);
    ddpm_app_request r;
    ddpm_app_request_default(&r);
    r.engine = DDPM_ENGINE_REFERENCE;
    counts c = {0};
    r.on_pass = on_pass;
    r.user = &c;
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
    cfg.steps = 10;
    cfg.on_step = on_step;
    cfg.step_user = &c;
    ddpm_app_info info;
    /* noise mode at t = 0: one step from a barely noised a */
    const double l0[] = {0};
    CHECK_OK(ddpm_interpolate(m, d, &cfg, &r, a, b, l0, 1, DDPM_INTERP_NOISE, 0, out, &info));
    CHECK(info.first_step == 9 && info.t == 0 && info.t_noise == 0);
    CHECK_MSG(info.round_trip[0] < 0.02, "lambda 0 at t = 0 is %g from a", info.round_trip[0]);
    CHECK(fabs(info.round_trip[0] - mean_abs_pixels(a, out, D)) < 1e-12 && isnan(info.round_trip[1]));
    CHECK(c.passes == 1 && strcmp(c.names[0], "interpolating") == 0 && c.steps[0] == 1 && c.seen == 1);
    /* ddim mode: inversion of a and b, slerp, decode */
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
    cfg.steps = 4;
    cfg.seed = 3;
    cfg.on_step = on_step;
    cfg.step_user = &c;
    c = (counts){0};
    const double lam[] = {0, 0.5, 1};
    CHECK_OK(ddpm_interpolate(m, d, &cfg, &r, a, b, lam, 3, DDPM_INTERP_DDIM, -1, out, &info));
    CHECK(c.passes == 2 && strcmp(c.names[0], "inverting a and b") == 0 && c.n[0] == 2 && c.steps[0] == 4);
    CHECK(strcmp(c.names[1], "decoding") == 0 && c.n[1] == 3 && c.steps[1] == 4 && c.seen == 8);
    CHECK(info.first_step == 0 && !isnan(info.round_trip[0]) && !isnan(info.round_trip[1]));
    CHECK(fabs(info.round_trip[1] - mean_abs_pixels(b, out + 2 * D, D)) < 1e-12);
    double *x = malloc(sizeof(double) * 3 * (size_t)D), *ends = malloc(sizeof(double) * 2 * (size_t)D);
    for (int64_t k = 0; k < D; k++) ends[k] = a[k], ends[D + k] = b[k];
    ddpm_sample_request q;
    ddpm_sample_request_default(&q);
    q.engine = DDPM_ENGINE_REFERENCE;
    q.run = DDPM_RUN_INVERT;
    cfg.clip_sample = 0;
    cfg.on_step = NULL;
    CHECK_OK(ddpm_sample_images(m, d, &cfg, &q, ends, 2));
    for (int i = 0; i < 3; i++) ddpm_slerp(ends, ends + D, lam[i], x + i * D, D);
    q.run = DDPM_RUN_SAMPLE;
    q.xt = DDPM_XT_GIVEN;
    CHECK_OK(ddpm_sample_images(m, d, &cfg, &q, x, 3));
    int same = 1;
    for (int64_t k = 0; k < 3 * D; k++) same &= out[k] == (float)x[k];
    CHECK_MSG(same, "ddim interpolation differs from inversion + slerp + decode");
    /* refusals */
    CHECK_FAIL(ddpm_interpolate(m, d, &cfg, &r, a, b, lam, 3, DDPM_INTERP_DDIM, 10, out, &info),
               DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "noise mode") != NULL);
    cfg.kind = DDPM_SAMPLER_DDPM;
    CHECK_FAIL(ddpm_interpolate(m, d, &cfg, &r, a, b, lam, 3, DDPM_INTERP_DDIM, -1, out, &info),
               DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "ddim sampler") != NULL);
    CHECK_FAIL(ddpm_interpolate(m, d, &cfg, &r, a, b, lam, 3, DDPM_INTERP_NOISE, 1000, out, &info),
               DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "t = 1000 is outside [0, 1000)") != NULL);
    const double bad[] = {0.5, 1.5};
    CHECK_FAIL(ddpm_interpolate(m, d, &cfg, &r, a, b, bad, 2, DDPM_INTERP_NOISE, -1, out, &info),
               DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "lambda 1.5 is outside [0, 1]") != NULL);
    CHECK_FAIL(ddpm_interpolate(m, d, &cfg, &r, a, NULL, lam, 3, DDPM_INTERP_NOISE, -1, out, &info),
               DDPM_ERR_INVALID_ARG);
    r.on_pass = stop_pass;
    CHECK_FAIL(ddpm_interpolate(m, d, &cfg, &r, a, b, lam, 3, DDPM_INTERP_NOISE, -1, out, &info),
               DDPM_ERR_INTERRUPTED);
    free(x);
    free(ends);
    free(a);
    free(b);
    free(out);
    ddpm_model_free(m);
    ddpm_diffusion_free(d);
}

static void test_img2img(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    ddpm_model *m = load("unet_tiny");
    const int64_t D = dd_test_model_d(m), N = 3;
    float *in = malloc(sizeof(float) * (size_t)D), *out = malloc(sizeof(float) * (size_t)(N * D));
    double *x = malloc(sizeof(double) * (size_t)(N * D));
    image(in, D, 4);
    ddpm_app_request r;
    ddpm_app_request_default(&r);
    r.engine = DDPM_ENGINE_REFERENCE;
    r.chunk = 2;
    counts c = {0};
    r.on_pass = on_pass;
    r.user = &c;
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
    cfg.steps = 10;
    cfg.seed = 5;
    ddpm_app_info info;
    CHECK_OK(ddpm_img2img(m, d, &cfg, &r, in, 0.6, N, out, &info));
    int first = -1;
    int64_t t_at = -1;
    CHECK_OK(ddpm_sampler_strength(&cfg, d->T, 0.6, &first, &t_at));
    CHECK(first == 4 && info.first_step == 4 && info.t == t_at && info.t_noise == t_at);
    CHECK(c.passes == 1 && strcmp(c.names[0], "img2img") == 0 && c.steps[0] == 2 * 6);   /* 2 chunks of 6 */
    for (int64_t k = 0; k < N * D; k++) x[k] = in[k % D];
    CHECK_OK(ddpm_noise_images(d, cfg.seed, t_at, x, 0, N, D, x));
    ddpm_sample_request q;
    ddpm_sample_request_default(&q);
    q.engine = DDPM_ENGINE_REFERENCE;
    q.xt = DDPM_XT_GIVEN;
    cfg.first_step = first;
    CHECK_OK(ddpm_sample_images(m, d, &cfg, &q, x, N));
    int same = 1;
    for (int64_t k = 0; k < N * D; k++) same &= out[k] == (float)x[k];
    CHECK_MSG(same, "img2img differs from noising + sampling from its first step");
    cfg.first_step = 0;
    CHECK_FAIL(ddpm_img2img(m, d, &cfg, &r, in, 0, N, out, &info), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_img2img(m, d, &cfg, &r, in, 0.05, N, out, &info), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "runs no step") != NULL);
    CHECK_FAIL(ddpm_img2img(m, d, &cfg, &r, in, 0.5, 0, out, &info), DDPM_ERR_INVALID_ARG);
    CHECK_OK(ddpm_model_check_images(m));
    CHECK_FAIL(ddpm_model_check_images(NULL), DDPM_ERR_INVALID_ARG);
    r.chunk = 0;
    CHECK_FAIL(ddpm_img2img(m, d, &cfg, &r, in, 0.5, N, out, &info), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "chunk") != NULL);
    free(in);
    free(out);
    free(x);
    ddpm_model_free(m);
    ddpm_diffusion_free(d);
}

static void test_inpaint(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    ddpm_model *m = load("unet_tiny");
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    const int64_t D = dd_test_model_d(m), P = (int64_t)mi.sample_size * mi.sample_size, N = 2;
    float *in = malloc(sizeof(float) * (size_t)D), *out = malloc(sizeof(float) * (size_t)(N * D));
    float *masked = malloc(sizeof(float) * (size_t)D), *mask = calloc((size_t)P, sizeof(float));
    image(in, D, 6);
    ddpm_app_request r;
    ddpm_app_request_default(&r);
    r.engine = DDPM_ENGINE_REFERENCE;
    ddpm_inpaint_config ic;
    ddpm_inpaint_config_default(&ic);
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
    cfg.steps = 5;
    ddpm_app_info info;
    /* a mask that keeps everything: the image itself after the last step */
    CHECK_OK(ddpm_inpaint(m, d, &cfg, &r, &ic, in, mask, N, out, masked, &info));
    CHECK(info.regenerated == 0 && memcmp(out, in, sizeof(float) * (size_t)D) == 0);
    CHECK(memcmp(out + D, in, sizeof(float) * (size_t)D) == 0 && memcmp(masked, in, sizeof(float) * (size_t)D) == 0);
    for (int64_t p = 0; p < P / 2; p++) mask[p] = 1;
    counts c = {0};
    r.on_pass = on_pass;
    r.user = &c;
    ic.jump_length = 2;
    ic.jump_n_sample = 3;
    cfg.on_step = on_step;
    cfg.step_user = &c;
    CHECK_OK(ddpm_inpaint(m, d, &cfg, &r, &ic, in, mask, N, out, masked, &info));
    CHECK(fabs(info.regenerated - (double)(P / 2) / (double)P) < 1e-12);
    CHECK_MSG(c.passes == 1 && c.steps[0] == c.seen, "inpainting announced %lld steps and made %lld",
              (long long)c.steps[0], (long long)c.seen);
    CHECK(masked[0] == 0.0f && masked[D - 1] == in[D - 1]);
    ic.jump_length = 5;
    CHECK_FAIL(ddpm_inpaint(m, d, &cfg, &r, &ic, in, mask, N, out, masked, &info), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "smaller than the 5 sampler steps") != NULL);
    CHECK_FAIL(ddpm_inpaint(m, d, &cfg, &r, &ic, in, NULL, N, out, masked, &info), DDPM_ERR_INVALID_ARG);
    cfg.kind = DDPM_SAMPLER_DPMPP2M;
    ic.jump_n_sample = 1;
    CHECK_FAIL(ddpm_inpaint(m, d, &cfg, &r, &ic, in, mask, N, out, masked, &info), DDPM_ERR_INVALID_ARG);
    free(in);
    free(out);
    free(masked);
    free(mask);
    ddpm_model_free(m);
    ddpm_diffusion_free(d);
}

static void test_denoise(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    ddpm_model *m = load("unet_tiny");
    const int64_t D = dd_test_model_d(m);
    float *in = malloc(sizeof(float) * (size_t)D), *y = malloc(sizeof(float) * 3 * (size_t)D), *x0 = y + D,
          *out = y + 2 * D;
    double *n = malloc(sizeof(double) * (size_t)D);
    image(in, D, 7);
    ddpm_app_request r;
    ddpm_app_request_default(&r);
    r.engine = DDPM_ENGINE_REFERENCE;
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
    cfg.steps = 20;
    cfg.seed = 8;
    ddpm_app_info info;
    CHECK_OK(ddpm_denoise(m, d, &cfg, &r, in, 0.1, 1, y, x0, out, &info));
    CHECK(info.t_noise == ddpm_timestep_for_sigma(d, 0.2) && info.t <= info.t_noise && info.first_step > 0);
    ddpm_rng_normal_f64(cfg.seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 0), 0, n, (size_t)D);
    int same = 1;
    for (int64_t k = 0; k < D; k++) same &= y[k] == (float)((double)in[k] + 0.2 * n[k]);
    CHECK_MSG(same, "the noisy image is not image + 2 sigma n");
    CHECK(isfinite(info.psnr[0]) && isfinite(info.psnr[1]) && isfinite(info.psnr[2]));
    for (int64_t k = 0; k < D; k++) same &= x0[k] >= -1 && x0[k] <= 1;
    CHECK_MSG(same, "the one-step estimate is not clamped to [-1, 1]");
    CHECK_OK(ddpm_denoise(m, d, &cfg, &r, in, 0.1, 0, y, NULL, out, &info));
    CHECK(memcmp(y, in, sizeof(float) * (size_t)D) == 0 && isnan(info.psnr[0]));
    CHECK_FAIL(ddpm_denoise(m, d, &cfg, &r, in, 0, 0, y, x0, out, &info), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "sigma") != NULL);
    CHECK_FAIL(ddpm_denoise(m, d, &cfg, &r, NULL, 0.1, 0, y, x0, out, &info), DDPM_ERR_INVALID_ARG);
    free(in);
    free(y);
    free(n);
    ddpm_model_free(m);
    ddpm_diffusion_free(d);
}

static void test_paths_same(void) {
    const char *dir = dd_test_tmpdir("app_calls_paths");
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/./b.png", dir);
    snprintf(q, sizeof q, "%s/b.png", dir);
    CHECK(ddpm_paths_same(p, q) == 1);
    snprintf(q, sizeof q, "%s/c.png", dir);
    CHECK(ddpm_paths_same(p, q) == 0);
    CHECK(ddpm_paths_same(p, NULL) == 0);
    dd_write_bytes(p, "x", 1);
    snprintf(q, sizeof q, "%s//b.png", dir);
    CHECK(ddpm_paths_same(p, q) == 1);
    dd_test_remove_dir(dir);
}

int main(void) {
    test_interpolate();
    test_img2img();
    test_inpaint();
    test_denoise();
    test_paths_same();
    return dd_test_finish("test_app_calls");
}
