/* test_samplers.c — sampler defaults, timestep lists and their checks, noise that does not depend on batch
   split or thread count, callbacks (stop, NaN, errors), and identities between the samplers:
   DDIM(eta = 1) = DDPM step, DPM-Solver++ first order = DDIM along the same list. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "testutil.h"

/* A smooth stand-in network whose output depends on x and t. */
static ddpm_status model(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++)
            out[n * D + j] = 0.1f * x[n * D + j] + (float)(0.01 * (double)t[n] / 1000.0) + 0.001f * (float)(j % 7);
    return DDPM_OK;
}

static ddpm_status model_f64(void *user, double *out, const double *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++) out[n * D + j] = 0.1 * x[n * D + j] + 0.01 * (double)t[n] / 1000.0;
    return DDPM_OK;
}

static void test_defaults(void) {
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM);
    CHECK(c.kind == DDPM_SAMPLER_DDPM && c.steps == 1000 && c.spacing == DDPM_SPACING_LEADING && c.clip_sample == 1);
    CHECK(c.clip_range == 1.0 && c.set_alpha_to_one == 1 && c.solver_order == 2 && c.lower_order_final == 1);
    CHECK(c.prediction == DDPM_PRED_EPS && c.variance == DDPM_VAR_FIXED_SMALL && c.eta == 0 && c.noise == NULL);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    CHECK(c.steps == 50 && c.spacing == DDPM_SPACING_LEADING && c.clip_sample == 1 && c.steps_offset == 0);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DPMPP2M);
    CHECK(c.steps == 20 && c.spacing == DDPM_SPACING_LINSPACE && c.clip_sample == 0 && c.solver_order == 2);
}

static void expect_list(ddpm_sampler_kind kind, int T, int steps, ddpm_spacing sp, const int64_t *want) {
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, kind);
    c.steps = steps;
    c.spacing = sp;
    int64_t got[64];
    CHECK_OK(ddpm_sampler_timesteps(&c, T, got));
    for (int i = 0; i < steps; i++)
        CHECK_MSG(got[i] == want[i], "kind %d spacing %d T %d steps %d: [%d] = %lld want %lld", (int)kind, (int)sp, T,
                  steps, i, (long long)got[i], (long long)want[i]);
}

static void test_timesteps(void) {
    /* numpy: arange(1000, 0, -62.5) = 1000, 937.5, ..., 62.5; round half to even (812.5 -> 812, 937.5 -> 938),
       minus 1. */
    const int64_t trailing16[16] = {999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61};
    expect_list(DDPM_SAMPLER_DDIM, 1000, 16, DDPM_SPACING_TRAILING, trailing16);
    /* linspace(0, 9, 4) = 0, 3, 6, 9 reversed; linspace(0, 9, 7) = 0, 1.5, 3, 4.5, 6, 7.5, 9 -> 0 2 3 4 6 8 9 */
    const int64_t lin4[4] = {9, 6, 3, 0}, lin7[7] = {9, 8, 6, 4, 3, 2, 0};
    expect_list(DDPM_SAMPLER_DDPM, 10, 4, DDPM_SPACING_LINSPACE, lin4);
    expect_list(DDPM_SAMPLER_DDIM, 10, 7, DDPM_SPACING_LINSPACE, lin7);
    /* DPM-Solver linspace(0, 9, 5)[::-1][:-1] = 9, 6.75, 4.5, 2.25 -> 9 7 4 2 */
    const int64_t dpm4[4] = {9, 7, 4, 2};
    expect_list(DDPM_SAMPLER_DPMPP2M, 10, 4, DDPM_SPACING_LINSPACE, dpm4);
    /* leading with every step; single-step lists */
    const int64_t all5[5] = {4, 3, 2, 1, 0}, one0[1] = {0}, one9[1] = {9};
    expect_list(DDPM_SAMPLER_DDPM, 5, 5, DDPM_SPACING_LEADING, all5);
    expect_list(DDPM_SAMPLER_DDIM, 10, 1, DDPM_SPACING_LINSPACE, one0);
    expect_list(DDPM_SAMPLER_DPMPP2M, 10, 1, DDPM_SPACING_LINSPACE, one9);

    ddpm_sampler_config c;
    int64_t out[2000];
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    c.steps = 0;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "steps") != NULL);
    c.steps = 1001;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    c.steps = 1000;
    c.steps_offset = 1; /* leading 999 + 1 = 1000 is past the end */
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "out of range") != NULL);
    c.steps_offset = -1;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DPMPP2M);
    c.steps = 1000; /* DPM-Solver's leading ratio 1000 // 1001 = 0 repeats timestep 0 */
    c.spacing = DDPM_SPACING_LEADING;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "repeated") != NULL);
    c.spacing = (ddpm_spacing)7;
    c.steps = 10;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    c.spacing = DDPM_SPACING_LINSPACE;
    c.solver_order = 3;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "solver_order") != NULL);
    c.solver_order = 2;
    CHECK_FAIL(ddpm_sampler_timesteps(NULL, 1000, out), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, NULL), DDPM_ERR_INVALID_ARG);
    c.kind = (ddpm_sampler_kind)9;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, out), DDPM_ERR_INVALID_ARG);
    /* Every spacing of every kind gives a strictly decreasing list inside 0..T-1, or (when T / n is too small
       for distinct timesteps, e.g. DPM-Solver's linspace(0, 99, 101)) refuses with a message; up to T / 2
       steps always work. */
    for (int kind = 0; kind < 3; kind++)
        for (int sp = 0; sp < 3; sp++)
            for (int n = 1; n <= 100; n++) {
                ddpm_sampler_config_default(&c, (ddpm_sampler_kind)kind);
                c.spacing = (ddpm_spacing)sp;
                c.steps = n;
                for (int i = 0; i < n; i++) out[i] = -7;
                ddpm_status st = ddpm_sampler_timesteps(&c, 100, out);
                if (st != DDPM_OK) {
                    CHECK_MSG(n > 50 && st == DDPM_ERR_INVALID_ARG && strstr(ddpm_last_error(), "repeated"),
                              "kind %d spacing %d steps %d: %s", kind, sp, n, ddpm_last_error());
                    continue;
                }
                for (int i = 0; i < n; i++)
                    CHECK_MSG(out[i] >= 0 && out[i] < 100 && (i == 0 || out[i] < out[i - 1]),
                              "kind %d spacing %d steps %d: [%d] = %lld", kind, sp, n, i, (long long)out[i]);
            }
}

static void fill_xT(double *x, int64_t N, int64_t D, int64_t first_item, uint64_t seed) {
    for (int64_t n = 0; n < N; n++)
        ddpm_rng_normal_f64(seed, ddpm_rng_stream(DDPM_STREAM_INIT, 0, (uint32_t)(first_item + n)), 0, x + n * D,
                            (size_t)D);
}

static void test_batch_split(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    const int64_t D = 10000; /* 4 x 10000 crosses the parallel threshold */
    double *whole = malloc(sizeof(double) * 4 * D), *parts = malloc(sizeof(double) * 4 * D);
    double *threads1 = malloc(sizeof(double) * 4 * D);
    for (int kind = 0; kind < 2; kind++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, kind ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM);
        c.steps = 25;
        c.seed = 1234;
        if (kind) c.eta = 0.7;
        fill_xT(whole, 4, D, 0, 5);
        memcpy(parts, whole, sizeof(double) * 4 * D);
        memcpy(threads1, whole, sizeof(double) * 4 * D);
        int saved = ddpm_get_threads();
        ddpm_set_threads(4);
        CHECK_OK(ddpm_sample_loop(d, &c, model, NULL, whole, 4, D, 0));
        CHECK_OK(ddpm_sample_loop(d, &c, model, NULL, parts, 2, D, 0));
        CHECK_OK(ddpm_sample_loop(d, &c, model, NULL, parts + 2 * D, 2, D, 2));
        ddpm_set_threads(1);
        CHECK_OK(ddpm_sample_loop(d, &c, model, NULL, threads1, 4, D, 0));
        ddpm_set_threads(saved);
        CHECK_MSG(memcmp(whole, parts, sizeof(double) * 4 * D) == 0, "kind %d: 4 images != 2 + 2", kind);
        CHECK_MSG(memcmp(whole, threads1, sizeof(double) * 4 * D) == 0, "kind %d: 4 threads != 1 thread", kind);
        /* a different first_item draws different noise */
        fill_xT(parts, 4, D, 0, 5);
        CHECK_OK(ddpm_sample_loop(d, &c, model, NULL, parts, 2, D, 1));
        CHECK(memcmp(whole, parts, sizeof(double) * 2 * D) != 0);
    }
    free(whole);
    free(parts);
    free(threads1);
    ddpm_diffusion_free(d);
}

/* The loop's default noise is ddpm_rng_normal_f64(seed, stream(SAMPLER, step, item), 0, row, D); the previous
   timestep is t - T / n, or the next list entry with step_along_list (checked on linspace, where they differ). */
static void test_noise_streams(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { D = 6, STEPS = 10 };
    for (int along = 0; along < 2; along++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM);
        c.steps = STEPS;
        c.seed = 99;
        if (along) {
            c.spacing = DDPM_SPACING_LINSPACE;
            c.step_along_list = 1;
        }
        double x[2 * D], xm[2 * D], mo[2 * D], noise[2 * D];
        fill_xT(x, 2, D, 0, 3);
        memcpy(xm, x, sizeof x);
        CHECK_OK(dd_sampler_loop_f64(d, &c, model_f64, NULL, x, 2, D, 5));
        int64_t ts[STEPS];
        CHECK_OK(ddpm_sampler_timesteps(&c, 1000, ts));
        for (int i = 0; i < STEPS; i++) {
            int64_t tv[2] = {ts[i], ts[i]};
            int64_t prev = along ? (i + 1 < STEPS ? ts[i + 1] : -1) : ts[i] - 1000 / STEPS;
            model_f64(NULL, mo, xm, tv, 2, D);
            for (int n = 0; n < 2; n++)
                ddpm_rng_normal_f64(99, ddpm_rng_stream(DDPM_STREAM_SAMPLER, (uint32_t)i, (uint32_t)(5 + n)), 0,
                                    noise + n * D, D);
            CHECK_OK(ddpm_ddpm_step(d, &c, ts[i], prev, mo, xm, noise, xm, NULL, 2 * D, NULL));
        }
        CHECK_MSG(memcmp(x, xm, sizeof x) == 0, "ddpm loop (step_along_list %d) != manual chain", along);
    }
    ddpm_diffusion_free(d);
}

typedef struct {
    int stop_at, calls;
} stopper;

static ddpm_status stop_cb(void *user, int i, int num_steps, int64_t t, const double *x, const double *x0, int64_t N,
                           int64_t D) {
    (void)num_steps, (void)t, (void)x, (void)x0, (void)N, (void)D;
    stopper *s = user;
    s->calls++;
    return i == s->stop_at ? DDPM_ERR_INTERRUPTED : DDPM_OK;
}

static ddpm_status nan_model(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    int *calls = user;
    model(NULL, out, x, t, N, D);
    if (++*calls == 3) out[N * D - 1] = NAN;
    return DDPM_OK;
}

static ddpm_status failing_model(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user, (void)out, (void)x, (void)t, (void)N, (void)D;
    return DDPM_ERR_IO;
}

static void test_callbacks_and_errors(void) {
    ddpm_diffusion *d = dd_test_diffusion("cosine", 100);
    double x[3 * 8];
    for (int kind = 0; kind < 3; kind++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, (ddpm_sampler_kind)kind);
        c.steps = 10;
        stopper s = {4, 0};
        c.on_step = stop_cb;
        c.step_user = &s;
        fill_xT(x, 3, 8, 0, 1);
        CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 3, 8, 0), DDPM_ERR_INTERRUPTED);
        CHECK(s.calls == 5 && strstr(ddpm_last_error(), "step 4"));
        c.on_step = NULL;
        int calls = 0;
        fill_xT(x, 3, 8, 0, 1);
        CHECK_FAIL(ddpm_sample_loop(d, &c, nan_model, &calls, x, 3, 8, 0), DDPM_ERR_NUMERIC);
        CHECK_MSG(strstr(ddpm_last_error(), "step 2") && strstr(ddpm_last_error(), "image 2"), "message: %s",
                  ddpm_last_error());
        CHECK_FAIL(ddpm_sample_loop(d, &c, failing_model, NULL, x, 3, 8, 0), DDPM_ERR_IO);
        CHECK(strstr(ddpm_last_error(), "model") != NULL);
    }
    ddpm_diffusion_free(d);
}

static void test_validation(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 100);
    double x[2 * 4];
    ddpm_sampler_config c;
    fill_xT(x, 2, 4, 0, 1);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM); /* 1000 steps > T = 100 */
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "steps = 1000") && strstr(ddpm_last_error(), "1..100"));
    c.steps = 100;
    CHECK_OK(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0));
    c.eta = 0.5; /* eta is a DDIM option */
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    c.eta = 1.5;
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "eta") != NULL);
    c.eta = NAN;
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    c.eta = 0;
    c.clip_range = 0;
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "clip_range") != NULL);
    c.clip_range = 1;
    c.prediction = (ddpm_prediction)5;
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    c.prediction = DDPM_PRED_EPS;
    CHECK_FAIL(ddpm_sample_loop(NULL, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sample_loop(d, NULL, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sample_loop(d, &c, NULL, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, NULL, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 0, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 0, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, -1), DDPM_ERR_INVALID_ARG);
    x[5] = INFINITY;
    CHECK_FAIL(ddpm_sample_loop(d, &c, model, NULL, x, 2, 4, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "x_T") && strstr(ddpm_last_error(), "image 1"));
    /* step functions */
    double mo[4] = {0.1, 0.2, 0.3, 0.4}, out[4];
    CHECK_FAIL(ddpm_ddpm_step(d, &c, 100, 99, mo, mo, NULL, out, NULL, 4, NULL), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_ddpm_step(d, &c, 10, 10, mo, mo, NULL, out, NULL, 4, NULL), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_ddim_step(d, &c, -1, -2, mo, mo, NULL, out, NULL, 4, NULL), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_ddim_step(d, &c, 10, 9, NULL, mo, NULL, out, NULL, 4, NULL), DDPM_ERR_INVALID_ARG);
    c.variance = (ddpm_variance)4;
    CHECK_FAIL(ddpm_ddpm_step(d, &c, 10, 9, mo, mo, NULL, out, NULL, 4, NULL), DDPM_ERR_INVALID_ARG);
    ddpm_diffusion_free(d);
}

/* Song et al. 2021, sec. 4.1: DDIM with eta = 1 is the DDPM ancestral step (fixed_small), for any jump. */
static void test_ddim_eta1_is_ddpm(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { n = 32 };
    double x[n], mo[n], z[n], a[n], b[n], x0a[n], x0b[n];
    fill_xT(x, 1, n, 0, 7);
    fill_xT(mo, 1, n, 1, 7);
    fill_xT(z, 1, n, 2, 7);
    int64_t pairs[4][2] = {{500, 499}, {500, 480}, {999, 979}, {20, 0}};
    for (int k = 0; k < 4; k++)
        for (int pred = 0; pred < 3; pred++) {
            ddpm_sampler_config c;
            ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
            c.clip_sample = 0;
            c.eta = 1.0;
            c.prediction = (ddpm_prediction)pred;
            ddpm_step_info i1, i2;
            CHECK_OK(ddpm_ddim_step(d, &c, pairs[k][0], pairs[k][1], mo, x, z, a, x0a, n, &i1));
            c.kind = DDPM_SAMPLER_DDPM;
            c.eta = 0;
            CHECK_OK(ddpm_ddpm_step(d, &c, pairs[k][0], pairs[k][1], mo, x, z, b, x0b, n, &i2));
            char what[64];
            snprintf(what, sizeof what, "ddim eta=1 vs ddpm t=%lld pred=%d", (long long)pairs[k][0], pred);
            dd_check_close(what, a, b, n, 1e-12, 0.0);
            dd_check_close(what, x0a, x0b, n, 1e-12, 0.0);
            CHECK(fabs(i1.variance - i2.variance) <= 1e-15 && fabs(i1.std_dev_t - i2.std_dev_t) <= 1e-15);
        }
    /* t = 0: no noise (a NaN noise buffer is never read) and the result is the posterior mean */
    double nanz[n];
    for (int j = 0; j < n; j++) nanz[j] = NAN;
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM);
    ddpm_step_info info;
    CHECK_OK(ddpm_ddpm_step(d, &c, 0, -1, mo, x, nanz, a, NULL, n, &info));
    CHECK_OK(ddpm_ddpm_step(d, &c, 0, -1, mo, x, NULL, b, NULL, n, NULL));
    CHECK(memcmp(a, b, sizeof a) == 0 && info.variance == 0.0 && info.alpha_prod_t_prev == 1.0);
    /* eta = 0 never reads the noise either */
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    CHECK_OK(ddpm_ddim_step(d, &c, 500, 480, mo, x, nanz, a, NULL, n, NULL));
    for (int j = 0; j < n; j++) CHECK(isfinite(a[j]));
    ddpm_diffusion_free(d);
}

/* Lu et al. 2022: first-order DPM-Solver++ is DDIM (eta = 0) in data-prediction form, along the same list;
   and the DDIM loop with step_along_list chains ddpm_ddim_step over the list. */
static void test_dpm_order1_is_ddim(void) {
    ddpm_diffusion *d = dd_test_diffusion("scaled_linear", 1000);
    enum { n = 16, S = 25 };
    double xT[n], x[n], xm[n], mo[n];
    fill_xT(xT, 1, n, 0, 9);
    for (int pred = 0; pred < 3; pred++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, DDPM_SAMPLER_DPMPP2M);
        c.steps = S;
        c.solver_order = 1;
        c.prediction = (ddpm_prediction)pred;
        memcpy(x, xT, sizeof x);
        CHECK_OK(dd_sampler_loop_f64(d, &c, model_f64, NULL, x, 1, n, 0));
        int64_t ts[S];
        CHECK_OK(ddpm_sampler_timesteps(&c, 1000, ts));
        ddpm_sampler_config e;
        ddpm_sampler_config_default(&e, DDPM_SAMPLER_DDIM);
        e.clip_sample = 0;
        e.prediction = c.prediction;
        memcpy(xm, xT, sizeof xm);
        for (int i = 0; i < S; i++) {
            int64_t tv = ts[i];
            model_f64(NULL, mo, xm, &tv, 1, n);
            CHECK_OK(ddpm_ddim_step(d, &e, ts[i], i + 1 < S ? ts[i + 1] : -1, mo, xm, NULL, xm, NULL, n, NULL));
        }
        char what[64];
        snprintf(what, sizeof what, "dpm++ order 1 vs ddim, prediction %d", pred);
        dd_check_close(what, x, xm, n, 1e-10, 0.0);
    }
    /* DDIM loop with step_along_list on linspace spacing = the manual chain, bit for bit. */
    ddpm_sampler_config e;
    ddpm_sampler_config_default(&e, DDPM_SAMPLER_DDIM);
    e.steps = S;
    e.spacing = DDPM_SPACING_LINSPACE;
    e.step_along_list = 1;
    memcpy(x, xT, sizeof x);
    CHECK_OK(dd_sampler_loop_f64(d, &e, model_f64, NULL, x, 1, n, 0));
    int64_t ts[S];
    CHECK_OK(ddpm_sampler_timesteps(&e, 1000, ts));
    memcpy(xm, xT, sizeof xm);
    for (int i = 0; i < S; i++) {
        int64_t tv = ts[i];
        model_f64(NULL, mo, xm, &tv, 1, n);
        CHECK_OK(ddpm_ddim_step(d, &e, ts[i], i + 1 < S ? ts[i + 1] : -1, mo, xm, NULL, xm, NULL, n, NULL));
    }
    CHECK(memcmp(x, xm, sizeof x) == 0);
    /* without step_along_list the previous timestep is t - T / n (diffusers), which differs for linspace */
    memcpy(xm, xT, sizeof xm);
    e.step_along_list = 0;
    CHECK_OK(dd_sampler_loop_f64(d, &e, model_f64, NULL, xm, 1, n, 0));
    CHECK(memcmp(x, xm, sizeof x) != 0);
    ddpm_diffusion_free(d);
}

int main(void) {
    test_defaults();
    test_timesteps();
    test_batch_split();
    test_noise_streams();
    test_callbacks_and_errors();
    test_validation();
    test_ddim_eta1_is_ddpm();
    test_dpm_order1_is_ddim();
    return dd_test_finish("test_samplers");
}
