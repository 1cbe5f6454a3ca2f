/* test_apps.c — the applications over a model callback: starting the sampler inside its list (first_step),
   shared noise (repeat_noise_steps), per-image x_T, DDIM inversion, slerp, the timestep of a noise level and
   RePaint inpainting (jump schedule, noise streams, batch-split invariance, shared noise, errors). The networks
   are analytic: the exact eps of Gaussian data N(mu, s^2 I), and an eps that does not depend on x (for which
   DDIM inversion is the exact inverse of DDIM decoding). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "testutil.h"

enum { MAXD = 256, MAXCALLS = 4096 };

/* E[eps | x_t] for x_0 ~ N(mu, s^2 I): x_t ~ N(sqrt(ab) mu, (ab s^2 + 1 - ab) I), so
   eps_hat = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab). Records the timesteps it is called at. */
typedef struct {
    const ddpm_diffusion *d;
    double mu[MAXD], s;
    int calls;
    int64_t t[MAXCALLS];
} gauss_model;

static void gauss_init(gauss_model *g, const ddpm_diffusion *d, double s) {
    memset(g, 0, sizeof *g);
    g->d = d;
    g->s = s;
    for (int j = 0; j < MAXD; j++) g->mu[j] = 0.5 * sin(0.7 * j);
}

static ddpm_status gauss_f64(void *user, double *out, const double *x, const int64_t *t, int64_t N, int64_t D) {
    gauss_model *g = user;
    if (g->calls < MAXCALLS) g->t[g->calls] = t[0];
    g->calls++;
    for (int64_t n = 0; n < N; n++) {
        double ab = g->d->alphas_cumprod[t[n]], v = ab * g->s * g->s + 1.0 - ab;
        double c = sqrt(1.0 - ab) / v, sa = sqrt(ab);
        for (int64_t j = 0; j < D; j++) out[n * D + j] = c * (x[n * D + j] - sa * g->mu[j % MAXD]);
    }
    return DDPM_OK;
}

static ddpm_status gauss_f32(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    gauss_model *g = user;
    if (g->calls < MAXCALLS) g->t[g->calls] = t[0];
    g->calls++;
    for (int64_t n = 0; n < N; n++) {
        double ab = g->d->alphas_cumprod[t[n]], v = ab * g->s * g->s + 1.0 - ab;
        double c = sqrt(1.0 - ab) / v, sa = sqrt(ab);
        for (int64_t j = 0; j < D; j++) out[n * D + j] = (float)(c * ((double)x[n * D + j] - sa * g->mu[j % MAXD]));
    }
    return DDPM_OK;
}

/* A smooth stand-in network whose output depends on x and t. */
static ddpm_status smooth(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++)
            out[n * D + j] = 0.1f * x[n * D + j] + (float)(0.01 * (double)t[n] / 1000.0) + 0.001f * (float)(j % 7);
    return DDPM_OK;
}

static ddpm_status nan_model(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    int *calls = user;
    smooth(NULL, out, x, t, N, D);
    if (++*calls == 3) out[N * D - 1] = NAN;
    return DDPM_OK;
}

/* Stops the loop after step stop_at; records the step indices and the num_steps it was given. */
typedef struct {
    int stop_at, calls, first_index, last_index, num_steps;
} stopper;

static ddpm_status stop_cb(void *user, int i, int num_steps, int64_t t, const double *x, const double *x0, int64_t N,
                           int64_t D) {
    (void)t, (void)x, (void)x0, (void)N, (void)D;
    stopper *s = user;
    if (s->calls == 0) s->first_index = i;
    s->calls++;
    s->last_index = i;
    s->num_steps = num_steps;
    return i == s->stop_at ? DDPM_ERR_INTERRUPTED : DDPM_OK;
}

static void fill_xT(double *x, int64_t N, int64_t D, int64_t first_item, uint64_t seed) {
    ddpm_sample_init_noise(seed, first_item, N, D, 0, x);
}

static int rows_equal(const double *x, int64_t a, int64_t b, int64_t D) {
    return memcmp(x + a * D, x + b * D, sizeof(double) * (size_t)D) == 0;
}

/* ------------------------------------------------------------------------------------ config */

static void test_config(void) {
    ddpm_sampler_config c;
    for (int kind = 0; kind < 3; kind++) {
        ddpm_sampler_config_default(&c, (ddpm_sampler_kind)kind);
        CHECK(c.first_step == 0 && c.repeat_noise_steps == -1);
    }
    ddpm_inpaint_config ic;
    ddpm_inpaint_config_default(&ic);
    CHECK(ic.jump_length == 10 && ic.jump_n_sample == 1);
    int64_t ts[50];
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    c.first_step = 50;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, ts), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), "first_step = 50") && strstr(ddpm_last_error(), "0..49"), "%s",
              ddpm_last_error());
    c.first_step = -1;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, ts), DDPM_ERR_INVALID_ARG);
    c.first_step = 49;
    CHECK_OK(ddpm_sampler_timesteps(&c, 1000, ts));
    c.repeat_noise_steps = -2;
    CHECK_FAIL(ddpm_sampler_timesteps(&c, 1000, ts), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "repeat_noise_steps") != NULL);
    c.repeat_noise_steps = 1000; /* more than steps: every step */
    CHECK_OK(ddpm_sampler_timesteps(&c, 1000, ts));
}

/* ------------------------------------------------------------------------------------ first_step */

/* A whole run equals the run stopped after step k - 1 then resumed with first_step = k, bit for bit. */
static void test_first_step_resume(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { N = 3, D = 40, S = 20 };
    double whole[N * D], split[N * D];
    for (int variant = 0; variant < 3; variant++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, variant == 0 ? DDPM_SAMPLER_DDPM : DDPM_SAMPLER_DDIM);
        c.steps = S;
        c.seed = 77;
        if (variant == 2) c.eta = 0.5;
        for (int k = 1; k < S; k += 6) {
            fill_xT(whole, N, D, 4, 11);
            memcpy(split, whole, sizeof whole);
            CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, whole, N, D, 4));
            stopper s = {k - 1, 0, -1, -1, 0};
            ddpm_sampler_config a = c;
            a.on_step = stop_cb;
            a.step_user = &s;
            CHECK_FAIL(ddpm_sample_loop(d, &a, smooth, NULL, split, N, D, 4), DDPM_ERR_INTERRUPTED);
            CHECK(s.calls == k);
            ddpm_sampler_config b = c;
            stopper s2 = {-1, 0, -1, -1, 0};
            b.first_step = k;
            b.on_step = stop_cb;
            b.step_user = &s2;
            CHECK_OK(ddpm_sample_loop(d, &b, smooth, NULL, split, N, D, 4));
            /* the callback sees list indices k .. S - 1 of S */
            CHECK(s2.calls == S - k && s2.first_index == k && s2.last_index == S - 1 && s2.num_steps == S);
            CHECK_MSG(memcmp(whole, split, sizeof whole) == 0, "variant %d: resume at step %d differs", variant, k);
        }
    }
    ddpm_diffusion_free(d);
}

/* DPM-Solver++ from first_step is first order at its first step: with two steps left (the last one is always
   first order) solver orders 1 and 2 agree bit for bit, which they would not if the first step read a
   previous x0. From the middle of the list the run is finite and close to the run from x_t of the whole run. */
static void test_first_step_dpm(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { N = 2, D = 32, S = 12 };
    double a[N * D], b[N * D], xT[N * D];
    fill_xT(xT, N, D, 0, 3);
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DPMPP2M);
    c.steps = S;
    c.first_step = S - 2;
    memcpy(a, xT, sizeof a);
    memcpy(b, xT, sizeof b);
    CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, a, N, D, 0));
    c.solver_order = 1;
    CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, b, N, D, 0));
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* order 2 from the start differs from order 1 (the multistep update is in use) */
    c.first_step = 0;
    memcpy(a, xT, sizeof a);
    memcpy(b, xT, sizeof b);
    CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, b, N, D, 0));
    c.solver_order = 2;
    CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, a, N, D, 0));
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* resume in the middle: stop after step 5, go on from 6 (first order there) */
    gauss_model g;
    gauss_init(&g, d, 0.3);
    double whole[N * D];
    memcpy(whole, xT, sizeof whole);
    CHECK_OK(dd_sampler_loop_f64(d, &c, gauss_f64, &g, whole, N, D, 0));
    memcpy(a, xT, sizeof a);
    stopper s = {5, 0, -1, -1, 0};
    ddpm_sampler_config e = c;
    e.on_step = stop_cb;
    e.step_user = &s;
    CHECK_FAIL(dd_sampler_loop_f64(d, &e, gauss_f64, &g, a, N, D, 0), DDPM_ERR_INTERRUPTED);
    e = c;
    e.first_step = 6;
    double xm[N * D];
    memcpy(xm, a, sizeof xm);
    CHECK_OK(dd_sampler_loop_f64(d, &e, gauss_f64, &g, a, N, D, 0));
    for (int j = 0; j < N * D; j++) CHECK(isfinite(a[j]));
    dd_check_close("dpm++ resumed at step 6 vs whole run", a, whole, N * D, 1e-2, 1.0);
    CHECK(memcmp(a, whole, sizeof a) != 0); /* the restart is first order */
    /* the same chain written out: first order at step 6, then 2M with the previous x0 (last step first order) */
    int64_t ts[S];
    CHECK_OK(ddpm_sampler_timesteps(&c, 1000, ts));
    dd_dpm_point pts[S + 1];
    for (int i = 0; i < S; i++) {
        double ab = d->alphas_cumprod[ts[i]];
        pts[i] = dd_dpm_point_from_sigma(sqrt((1.0 - ab) / ab));
    }
    pts[S] = dd_dpm_point_from_sigma(0.0);
    double mo[N * D], m0[N * D], m1[N * D];
    for (int i = 6; i < S; i++) {
        int64_t tv[N] = {ts[i], ts[i]};
        gauss_f64(&g, mo, xm, tv, N, D);
        dd_dpm_data_prediction(DDPM_PRED_EPS, &pts[i], mo, xm, m0, N * D, 0.0);
        int second = i > 6 && i < S - 1;
        dd_dpm_update(xm, m0, second ? m1 : NULL, i > 6 ? &pts[i - 1] : NULL, &pts[i], &pts[i + 1], N * D);
        memcpy(m1, m0, sizeof m1);
    }
    dd_check_close("dpm++ from step 6 vs the chain written out", a, xm, N * D, 1e-13, 1.0);
    ddpm_diffusion_free(d);
}

/* ------------------------------------------------------------------------------------ repeat_noise */

static void test_repeat_noise(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { N = 3, D = 24, S = 10 };
    double x[N * D], y[N * D];
    for (int variant = 0; variant < 2; variant++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, variant ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM);
        if (variant) c.eta = 1.0;
        c.steps = S;
        c.seed = 5;
        /* every image starts from image 0's x_T */
        ddpm_sample_init_noise(9, 0, N, D, 1, x);
        CHECK(rows_equal(x, 0, 1, D) && rows_equal(x, 0, 2, D));
        memcpy(y, x, sizeof x);
        c.repeat_noise_steps = S;
        CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, x, N, D, 3));
        CHECK_MSG(rows_equal(x, 0, 1, D) && rows_equal(x, 0, 2, D), "variant %d: R = steps gives distinct rows",
                  variant);
        /* image 0's stream whatever first_item is: a batch at first_item 3 equals one at 0 */
        double z[N * D];
        memcpy(z, y, sizeof y);
        CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, z, N, D, 0));
        CHECK(memcmp(x, z, sizeof x) == 0);
        /* R = 0 and R = -1: per-image noise */
        for (int r = -1; r <= 0; r++) {
            memcpy(z, y, sizeof y);
            c.repeat_noise_steps = r;
            CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, z, N, D, 3));
            CHECK(!rows_equal(z, 0, 1, D) && !rows_equal(z, 1, 2, D));
        }
        /* R = 3: shared for steps 0..2 only, so rows still differ, and differ from R = 0 */
        double w[N * D];
        memcpy(w, y, sizeof y);
        c.repeat_noise_steps = 3;
        CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, w, N, D, 3));
        CHECK(!rows_equal(w, 0, 1, D) && memcmp(w, z, sizeof w) != 0);
    }
    /* R = -1: rows 2..4 of a batch of 6 equal a batch of 3 at first_item 2 */
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM);
    c.steps = S;
    c.seed = 8;
    double big[6 * D], part[3 * D];
    fill_xT(big, 6, D, 0, 1);
    memcpy(part, big + 2 * D, sizeof part);
    CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, big, 6, D, 0));
    CHECK_OK(ddpm_sample_loop(d, &c, smooth, NULL, part, 3, D, 2));
    CHECK(memcmp(big + 2 * D, part, sizeof part) == 0);
    ddpm_diffusion_free(d);
}

/* ------------------------------------------------------------------------------------ x_T */

static void test_init_noise(void) {
    enum { N = 5, D = 33 };
    double whole[N * D], parts[N * D], want[D];
    ddpm_sample_init_noise(42, 0, N, D, 0, whole);
    ddpm_sample_init_noise(42, 0, 2, D, 0, parts);
    ddpm_sample_init_noise(42, 2, 3, D, 0, parts + 2 * D);
    CHECK(memcmp(whole, parts, sizeof whole) == 0);
    ddpm_rng_normal_f64(42, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 3), 0, want, D);
    CHECK(memcmp(whole + 3 * D, want, sizeof want) == 0);
    CHECK(!rows_equal(whole, 0, 1, D));
    /* shared: every row is global image 0's x_T, wherever the batch starts */
    ddpm_sample_init_noise(42, 7, N, D, 1, parts);
    for (int r = 0; r < N; r++) CHECK(memcmp(parts + r * D, whole, sizeof(double) * D) == 0);
    /* a bad call writes nothing */
    parts[0] = 123.0;
    ddpm_sample_init_noise(42, 0, 0, D, 0, parts);
    ddpm_sample_init_noise(42, 0, N, 0, 0, parts);
    ddpm_sample_init_noise(42, 0, N, D, 0, NULL);
    CHECK(parts[0] == 123.0);
}

/* ------------------------------------------------------------------------------------ first step index */

static void expect_first(ddpm_sampler_kind kind, ddpm_spacing sp, int T, int steps, int64_t t, int want,
                         int64_t want_t) {
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, kind);
    c.steps = steps;
    c.spacing = sp;
    int first = -7;
    int64_t at = -7;
    CHECK_OK(ddpm_sampler_first_step(&c, T, t, &first, &at));
    CHECK_MSG(first == want && at == want_t, "kind %d spacing %d T %d steps %d t %lld: first %d at %lld, want %d at %lld",
              (int)kind, (int)sp, T, steps, (long long)t, first, (long long)at, want, (long long)want_t);
}

static void test_sampler_first_step(void) {
    /* leading, T = 1000, 50 steps: 980, 960, ..., 0 */
    expect_first(DDPM_SAMPLER_DDIM, DDPM_SPACING_LEADING, 1000, 50, 999, 0, 980);
    expect_first(DDPM_SAMPLER_DDIM, DDPM_SPACING_LEADING, 1000, 50, 980, 0, 980);
    expect_first(DDPM_SAMPLER_DDIM, DDPM_SPACING_LEADING, 1000, 50, 979, 1, 960);
    expect_first(DDPM_SAMPLER_DDIM, DDPM_SPACING_LEADING, 1000, 50, 519, 24, 500);
    expect_first(DDPM_SAMPLER_DDIM, DDPM_SPACING_LEADING, 1000, 50, 0, 49, 0);
    /* trailing, T = 1000, 16 steps: 999, 937, 874, ... (test_samplers) */
    expect_first(DDPM_SAMPLER_DDPM, DDPM_SPACING_TRAILING, 1000, 16, 999, 0, 999);
    expect_first(DDPM_SAMPLER_DDPM, DDPM_SPACING_TRAILING, 1000, 16, 937, 1, 937);
    expect_first(DDPM_SAMPLER_DDPM, DDPM_SPACING_TRAILING, 1000, 16, 936, 2, 874);
    expect_first(DDPM_SAMPLER_DDPM, DDPM_SPACING_TRAILING, 1000, 16, 61, 15, 61);
    /* linspace, T = 10: DDPM 4 steps 9 6 3 0; DPM-Solver 4 steps 9 7 4 2 */
    expect_first(DDPM_SAMPLER_DDPM, DDPM_SPACING_LINSPACE, 10, 4, 5, 2, 3);
    expect_first(DDPM_SAMPLER_DPMPP2M, DDPM_SPACING_LINSPACE, 10, 4, 8, 1, 7);
    expect_first(DDPM_SAMPLER_DPMPP2M, DDPM_SPACING_LINSPACE, 10, 4, 3, 3, 2);

    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    int first;
    int64_t at;
    CHECK_FAIL(ddpm_sampler_first_step(&c, 1000, 1000, &first, &at), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), "t = 1000") && strstr(ddpm_last_error(), "T = 1000"), "%s",
              ddpm_last_error());
    CHECK_FAIL(ddpm_sampler_first_step(&c, 1000, -1, &first, &at), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "t = -1") != NULL);
    CHECK_FAIL(ddpm_sampler_first_step(&c, 1000, 10, NULL, &at), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sampler_first_step(NULL, 1000, 10, &first, &at), DDPM_ERR_INVALID_ARG);
    CHECK_OK(ddpm_sampler_first_step(&c, 1000, 10, &first, NULL)); /* t_at may be NULL */
    CHECK(first == 49);
    /* DPM-Solver's linspace list ends at 50 for 20 steps: t = 10 lies below it */
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DPMPP2M);
    CHECK_FAIL(ddpm_sampler_first_step(&c, 1000, 10, &first, &at), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "below") != NULL);
}

/* ------------------------------------------------------------------------------------ DDIM inversion */

/* An eps that does not depend on x: DDIM decoding then reads at x_{t_k} exactly the eps that inversion read at
   x_{t_{k-1}}, so inversion is the exact inverse of decoding (to rounding). */
static ddpm_status flat_f64(void *user, double *out, const double *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user, (void)x;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++) out[n * D + j] = 0.8 * sin(0.5 * (double)j + (double)n + (double)t[n] / 97.0);
    return DDPM_OK;
}

static ddpm_status flat_f32(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user, (void)x;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++)
            out[n * D + j] = (float)(0.8 * sin(0.5 * (double)j + (double)n + (double)t[n] / 97.0));
    return DDPM_OK;
}

/* An eps model seen as an x0- or v-prediction model (converted at (x, t)). */
typedef struct {
    dd_model_f64_fn eps;
    void *user;
    const ddpm_diffusion *d;
    ddpm_prediction pred;
} pred_model;

static ddpm_status pred_f64(void *user, double *out, const double *x, const int64_t *t, int64_t N, int64_t D) {
    pred_model *p = user;
    ddpm_status st = p->eps(p->user, out, x, t, N, D);
    if (st != DDPM_OK || p->pred == DDPM_PRED_EPS) return st;
    for (int64_t n = 0; n < N; n++) {
        double ab = p->d->alphas_cumprod[t[n]], sa = sqrt(ab), sb = sqrt(1.0 - ab);
        for (int64_t j = 0; j < D; j++) {
            double eps = out[n * D + j], xj = x[n * D + j], x0 = (xj - sb * eps) / sa;
            out[n * D + j] = p->pred == DDPM_PRED_X0 ? x0 : sa * eps - sb * x0;
        }
    }
    return DDPM_OK;
}

static void gauss_data(const gauss_model *g, double *x0, int64_t N, int64_t D, uint64_t seed) {
    ddpm_sample_init_noise(seed, 0, N, D, 0, x0);
    for (int64_t j = 0; j < N * D; j++) x0[j] = g->mu[j % D] + g->s * x0[j];
}

static void test_ddim_invert_exact(void) {
    const char *names[] = {"linear", "cosine"};
    enum { N = 3, D = 40 };
    double x0[N * D], x[N * D], xT[N * D];
    ddpm_sample_init_noise(1, 0, N, D, 0, x0);
    for (int sched = 0; sched < 2; sched++) {
        ddpm_diffusion *d = dd_test_diffusion(names[sched], 1000);
        for (int variant = 0; variant < 3; variant++)
            for (int pred = 0; pred < 3; pred++) {
                ddpm_sampler_config c;
                ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
                c.clip_sample = 0;
                c.prediction = (ddpm_prediction)pred;
                if (variant == 1) c.steps = 7;
                if (variant == 2) { /* the decoder must step along the list for trailing spacing */
                    c.spacing = DDPM_SPACING_TRAILING;
                    c.step_along_list = 1;
                    c.steps = 16;
                }
                pred_model pm = {flat_f64, NULL, d, (ddpm_prediction)pred};
                memcpy(x, x0, sizeof x);
                CHECK_OK(dd_ddim_invert_f64(d, &c, pred_f64, &pm, x, N, D));
                if (pred == 0) memcpy(xT, x, sizeof x);
                else dd_check_close("x_T of an x0 / v model", x, xT, N * D, 1e-9, 1.0);
                CHECK(memcmp(x, x0, sizeof x) != 0);
                CHECK_OK(dd_sampler_loop_f64(d, &c, pred_f64, &pm, x, N, D, 0));
                char what[96];
                snprintf(what, sizeof what, "%s, variant %d, prediction %d: decode(invert(x0))", names[sched], variant,
                         pred);
                dd_check_close(what, x, x0, N * D, 1e-10, 1.0);
            }
        /* the float path: rounding of the model's input and output only */
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
        c.clip_sample = 0;
        memcpy(x, x0, sizeof x);
        CHECK_OK(ddpm_ddim_invert(d, &c, flat_f32, NULL, x, N, D));
        CHECK_OK(ddpm_sample_loop(d, &c, flat_f32, NULL, x, N, D, 0));
        dd_check_close("decode(invert(x0)), float model", x, x0, N * D, 1e-5, 1.0);
        /* first_step: invert up to timesteps[first_step] and decode from there */
        c.first_step = 20;
        memcpy(x, x0, sizeof x);
        CHECK_OK(dd_ddim_invert_f64(d, &c, flat_f64, NULL, x, N, D));
        CHECK_OK(dd_sampler_loop_f64(d, &c, flat_f64, NULL, x, N, D, 0));
        dd_check_close("decode(invert(x0)) from step 20", x, x0, N * D, 1e-10, 1.0);
        ddpm_diffusion_free(d);
    }
}

/* With the exact eps of Gaussian data the model's eps changes along the path and inversion is first order in the
   step size (Song et al. 2021; the usual DDIM-inversion error): x_T looks like the marginal at t = 980 and the
   round trip error shrinks about 4x from 50 to 200 steps. */
static void test_ddim_invert_gauss(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { N = 3, D = 64 };
    gauss_model g;
    gauss_init(&g, d, 0.3);
    double x0[N * D], x[N * D];
    gauss_data(&g, x0, N, D, 1);
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    c.clip_sample = 0;
    memcpy(x, x0, sizeof x);
    CHECK_OK(dd_ddim_invert_f64(d, &c, gauss_f64, &g, x, N, D));
    CHECK(g.calls == 50 && g.t[0] == 0 && g.t[49] == 980);
    double ab = d->alphas_cumprod[980], m1 = 0.0, m2 = 0.0;
    for (int j = 0; j < N * D; j++) {
        double e = (x[j] - sqrt(ab) * g.mu[j % D]) / sqrt(ab * g.s * g.s + 1.0 - ab);
        m1 += e;
        m2 += e * e;
    }
    m1 /= N * D;
    m2 /= N * D;
    CHECK_MSG(fabs(m1) < 0.3 && m2 > 0.6 && m2 < 1.4, "inverted noise: mean %g, second moment %g", m1, m2);
    double err[2];
    for (int k = 0; k < 2; k++) {
        c.steps = k ? 200 : 50;
        memcpy(x, x0, sizeof x);
        CHECK_OK(dd_ddim_invert_f64(d, &c, gauss_f64, &g, x, N, D));
        CHECK_OK(dd_sampler_loop_f64(d, &c, gauss_f64, &g, x, N, D, 0));
        err[k] = 0.0;
        for (int j = 0; j < N * D; j++) err[k] = fmax(err[k], fabs(x[j] - x0[j]));
    }
    CHECK_MSG(err[0] < 0.2 && err[1] < 0.05 && err[1] < 0.35 * err[0], "round trip error %g (50 steps), %g (200)",
              err[0], err[1]);

    /* callbacks and errors */
    c.steps = 50;
    stopper s = {3, 0, -1, -1, 0};
    c.on_step = stop_cb;
    c.step_user = &s;
    memcpy(x, x0, sizeof x);
    CHECK_FAIL(ddpm_ddim_invert(d, &c, gauss_f32, &g, x, N, D), DDPM_ERR_INTERRUPTED);
    CHECK(s.calls == 4 && s.first_index == 0 && s.num_steps == 50);
    c.on_step = NULL;
    int calls = 0;
    CHECK_FAIL(ddpm_ddim_invert(d, &c, nan_model, &calls, x, N, D), DDPM_ERR_NUMERIC);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DPMPP2M);
    CHECK_FAIL(ddpm_ddim_invert(d, &c, gauss_f32, &g, x, N, D), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "ddim") != NULL);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDIM);
    CHECK_FAIL(ddpm_ddim_invert(NULL, &c, gauss_f32, &g, x, N, D), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_ddim_invert(d, NULL, gauss_f32, &g, x, N, D), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_ddim_invert(d, &c, NULL, &g, x, N, D), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_ddim_invert(d, &c, gauss_f32, &g, NULL, N, D), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_ddim_invert(d, &c, gauss_f32, &g, x, 0, D), DDPM_ERR_INVALID_ARG);
    x[5] = NAN;
    CHECK_FAIL(ddpm_ddim_invert(d, &c, gauss_f32, &g, x, N, D), DDPM_ERR_INVALID_ARG);
    ddpm_diffusion_free(d);
}

/* ------------------------------------------------------------------------------------ slerp */

static void test_slerp(void) {
    enum { D = 16 };
    double a[D], b[D], out[D];
    ddpm_sample_init_noise(3, 0, 1, D, 0, a);
    ddpm_sample_init_noise(3, 1, 1, D, 0, b);
    ddpm_slerp(a, b, 0.0, out, D);
    CHECK(memcmp(out, a, sizeof a) == 0);
    ddpm_slerp(a, b, 1.0, out, D);
    CHECK(memcmp(out, b, sizeof b) == 0);
    /* orthogonal unit vectors: cos(l pi/2) a + sin(l pi/2) b, norm 1 all along */
    double e1[D] = {0}, e2[D] = {0};
    e1[2] = 1.0;
    e2[9] = 1.0;
    for (int k = 0; k <= 10; k++) {
        double l = k / 10.0, n2 = 0.0;
        ddpm_slerp(e1, e2, l, out, D);
        for (int j = 0; j < D; j++) n2 += out[j] * out[j];
        CHECK_MSG(fabs(n2 - 1.0) < 1e-12, "lambda %g: |out|^2 = %.17g", l, n2);
        CHECK(fabs(out[2] - cos(l * acos(-1.0) / 2)) < 1e-12 && fabs(out[9] - sin(l * acos(-1.0) / 2)) < 1e-12);
    }
    /* parallel vectors: linear */
    for (int j = 0; j < D; j++) b[j] = 2.0 * a[j];
    ddpm_slerp(a, b, 0.25, out, D);
    for (int j = 0; j < D; j++) CHECK(fabs(out[j] - 1.25 * a[j]) < 1e-12);
    /* zero vector: linear, finite */
    double zero[D] = {0};
    ddpm_slerp(zero, a, 0.5, out, D);
    for (int j = 0; j < D; j++) CHECK(fabs(out[j] - 0.5 * a[j]) < 1e-15);
    /* out may alias a */
    ddpm_sample_init_noise(3, 1, 1, D, 0, b);
    double want[D];
    ddpm_slerp(a, b, 0.3, want, D);
    ddpm_slerp(a, b, 0.3, a, D);
    CHECK(memcmp(a, want, sizeof a) == 0);
}

/* ------------------------------------------------------------------------------------ noise level */

static void test_timestep_for_sigma(void) {
    const char *names[] = {"linear", "cosine"};
    for (int s = 0; s < 2; s++) {
        ddpm_diffusion *d = dd_test_diffusion(names[s], 1000);
        for (int64_t t = 0; t < 1000; t++) {
            double ab = d->alphas_cumprod[t];
            int64_t got = ddpm_timestep_for_sigma(d, sqrt((1.0 - ab) / ab));
            CHECK_MSG(got == t, "%s: t %lld -> %lld", names[s], (long long)t, (long long)got);
        }
        CHECK(ddpm_timestep_for_sigma(d, 1e-9) == 0);
        CHECK(ddpm_timestep_for_sigma(d, 1e9) == 999);
        CHECK(ddpm_timestep_for_sigma(d, 0.0) == -1 && ddpm_timestep_for_sigma(d, -1.0) == -1);
        CHECK(ddpm_timestep_for_sigma(d, NAN) == -1 && ddpm_timestep_for_sigma(d, INFINITY) == -1);
        ddpm_diffusion_free(d);
    }
    CHECK(ddpm_timestep_for_sigma(NULL, 0.5) == -1);
}

/* ------------------------------------------------------------------------------------ RePaint */

/* diffusers RePaintScheduler.set_timesteps (get_schedule_jump) in inference-step units, and the pipeline's
   rule: a value below the previous one is a model call at value * (T // steps). Returns the number of calls. */
static int repaint_reference(int steps, int jump_length, int jump_n_sample, int T, int64_t *calls) {
    int jumps[1024] = {0};
    for (int j = 0; j < steps - jump_length; j += jump_length) jumps[j] = jump_n_sample - 1;
    int seq[8192], n = 0, t = steps;
    while (t >= 1) {
        t = t - 1;
        seq[n++] = t;
        if (jumps[t] > 0) {
            jumps[t]--;
            for (int i = 0; i < jump_length; i++) seq[n++] = ++t;
        }
    }
    int nc = 0, last = seq[0] + 1;
    for (int i = 0; i < n; i++) {
        if (seq[i] < last) calls[nc++] = (int64_t)seq[i] * (T / steps);
        last = seq[i];
    }
    return nc;
}

/* diffusers' RePaint pipeline written out with the library's step function and the noise convention of ddpm.h
   (operation k of the schedule: sampler noise (SAMPLER, k), known region (NOISING, 2k), upward (NOISING, 2k + 1)),
   for DDPM with leading spacing. An upward step to unit u takes x from timestep (u - 2) r to (u - 1) r. */
static void repaint_written_out(const ddpm_diffusion *d, const ddpm_sampler_config *c, int L, int n_sample,
                                gauss_model *g, double *x, const double *known, const double *mask, int64_t N,
                                int64_t D, int64_t first_item) {
    const int steps = c->steps, T = d->T, r = T / steps;
    int jumps[1024] = {0}, seq[8192], n = 0, u = steps;
    for (int j = 0; j < steps - L; j += L) jumps[j] = n_sample - 1;
    while (u >= 1) {
        seq[n++] = --u;
        if (jumps[u] > 0) {
            jumps[u]--;
            for (int i = 0; i < L; i++) seq[n++] = ++u;
        }
    }
    double *mo = malloc(sizeof(double) * (size_t)(N * D)), *z = malloc(sizeof(double) * (size_t)(N * D));
    int64_t *tv = malloc(sizeof(int64_t) * (size_t)N);
    int last = seq[0] + 1;
    for (int k = 0; k < n; k++) {
        if (seq[k] < last) {
            int64_t t = (int64_t)seq[k] * r, prev = t - r;
            for (int64_t i = 0; i < N; i++) tv[i] = t;
            gauss_f64(g, mo, x, tv, N, D);
            for (int64_t i = 0; i < N; i++)
                ddpm_rng_normal_f64(c->seed, ddpm_rng_stream(DDPM_STREAM_SAMPLER, (uint32_t)k, (uint32_t)(first_item + i)),
                                    0, z + i * D, (size_t)D);
            CHECK_OK(ddpm_ddpm_step(d, c, t, prev, mo, x, z, x, NULL, N * D, NULL));
            for (int64_t i = 0; i < N; i++)
                ddpm_rng_normal_f64(c->seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)(2 * k),
                                    (uint32_t)(first_item + i)), 0, z + i * D, (size_t)D);
            double ab = prev >= 0 ? d->alphas_cumprod[prev] : 1.0;
            for (int64_t j = 0; j < N * D; j++) {
                double kn = prev >= 0 ? sqrt(ab) * known[j] + sqrt(1.0 - ab) * z[j] : known[j];
                x[j] = mask[j] * x[j] + (1.0 - mask[j]) * kn;
            }
        } else {
            int64_t to = (int64_t)(seq[k] - 1) * r, from = (int64_t)(seq[k] - 2) * r;
            double ratio = d->alphas_cumprod[to] / (from >= 0 ? d->alphas_cumprod[from] : 1.0);
            for (int64_t i = 0; i < N; i++)
                ddpm_rng_normal_f64(c->seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)(2 * k + 1),
                                    (uint32_t)(first_item + i)), 0, z + i * D, (size_t)D);
            for (int64_t j = 0; j < N * D; j++) x[j] = sqrt(ratio) * x[j] + sqrt(1.0 - ratio) * z[j];
        }
        last = seq[k];
    }
    free(mo);
    free(z);
    free(tv);
}

static void test_inpaint_basic(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { N = 2, D = 32 };
    gauss_model g;
    gauss_init(&g, d, 0.3);
    double known[N * D], mask[N * D], xT[N * D], x[N * D], y[N * D];
    ddpm_sample_init_noise(4, 0, N, D, 0, known);
    for (int j = 0; j < N * D; j++) known[j] = 0.5 * known[j];
    fill_xT(xT, N, D, 0, 6);
    ddpm_inpaint_config ic;
    ddpm_inpaint_config_default(&ic);
    for (int variant = 0; variant < 3; variant++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, variant == 0 ? DDPM_SAMPLER_DDPM : DDPM_SAMPLER_DDIM);
        c.steps = 50;
        c.seed = 21;
        if (variant == 2) c.eta = 0.5;
        for (int jumps = 0; jumps < 2; jumps++) {
            ic.jump_n_sample = jumps ? 3 : 1;
            /* keep everything: the image comes back exactly (the last step is to prev_t < 0) */
            for (int j = 0; j < N * D; j++) mask[j] = 0.0;
            memcpy(x, xT, sizeof x);
            CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, x, known, mask, N, D, 0));
            for (int j = 0; j < N * D; j++) CHECK_MSG(x[j] == known[j], "variant %d jumps %d: [%d]", variant, jumps, j);
            /* half kept: that half exactly, the rest generated and finite */
            for (int j = 0; j < N * D; j++) mask[j] = (j % D) < D / 2 ? 1.0 : 0.0;
            memcpy(x, xT, sizeof x);
            CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, x, known, mask, N, D, 0));
            for (int j = 0; j < N * D; j++) {
                CHECK(isfinite(x[j]));
                if (mask[j] == 0.0) CHECK(x[j] == known[j]);
            }
        }
        /* generate everything, no jumps: the plain sampler (the loop counter is the list index) */
        ic.jump_n_sample = 1;
        for (int j = 0; j < N * D; j++) mask[j] = 1.0;
        memcpy(x, xT, sizeof x);
        memcpy(y, xT, sizeof y);
        CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, x, known, mask, N, D, 3));
        CHECK_OK(ddpm_sample_loop(d, &c, gauss_f32, &g, y, N, D, 3));
        for (int j = 0; j < N * D; j++) CHECK_MSG(x[j] == y[j], "variant %d: inpaint(mask 1) != sampler at %d", variant, j);
        /* ... also from first_step */
        c.first_step = 30;
        memcpy(x, xT, sizeof x);
        memcpy(y, xT, sizeof y);
        CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, x, known, mask, N, D, 3));
        CHECK_OK(ddpm_sample_loop(d, &c, gauss_f32, &g, y, N, D, 3));
        for (int j = 0; j < N * D; j++) CHECK(x[j] == y[j]);
    }
    ddpm_diffusion_free(d);
}

static void test_inpaint_jumps(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { N = 4, D = 20 };
    gauss_model g;
    gauss_init(&g, d, 0.3);
    double known[N * D], mask[N * D], xT[N * D], a[N * D], b[N * D];
    ddpm_sample_init_noise(4, 0, N, D, 0, known);
    for (int j = 0; j < N * D; j++) mask[j] = (j / 3) % 2 ? 1.0 : ((j % 5) == 0 ? 0.5 : 0.0);
    fill_xT(xT, N, D, 0, 6);
    ddpm_sampler_config c;
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM);
    c.steps = 50;
    c.seed = 33;
    ddpm_inpaint_config ic;
    ddpm_inpaint_config_default(&ic);
    ic.jump_length = 10;
    ic.jump_n_sample = 3;
    /* the model is called at diffusers' RePaint schedule */
    int64_t want[MAXCALLS];
    int nc = repaint_reference(50, 10, 3, 1000, want);
    CHECK(nc == 50 + 4 * 2 * 10);
    memcpy(a, xT, sizeof a);
    g.calls = 0;
    stopper s = {-1, 0, -1, -1, 0};
    c.on_step = stop_cb;
    c.step_user = &s;
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, a, known, mask, N, D, 0));
    CHECK_MSG(g.calls == nc, "%d model calls, want %d", g.calls, nc);
    for (int i = 0; i < nc && i < g.calls; i++)
        CHECK_MSG(g.t[i] == want[i], "call %d at t = %lld, want %lld", i, (long long)g.t[i], (long long)want[i]);
    CHECK(s.calls == nc && s.first_index == 0 && s.last_index == nc - 1 && s.num_steps == nc);
    c.on_step = NULL;
    for (int j = 0; j < N * D; j++) {
        CHECK(isfinite(a[j]));
        if (mask[j] == 0.0) CHECK(a[j] == known[j]);
    }
    /* deterministic, and the same when the batch is split */
    memcpy(b, xT, sizeof b);
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, b, known, mask, N, D, 0));
    CHECK(memcmp(a, b, sizeof a) == 0);
    memcpy(b, xT, sizeof b);
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, b, known, mask, 2, D, 0));
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, b + 2 * D, known + 2 * D, mask + 2 * D, 2, D, 2));
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* the pipeline written out */
    const int cases_w[][3] = {{50, 10, 3}, {20, 19, 3}, {12, 1, 3}, {10, 3, 1}};
    for (size_t k = 0; k < sizeof cases_w / sizeof cases_w[0]; k++) {
        ddpm_sampler_config e;
        ddpm_sampler_config_default(&e, DDPM_SAMPLER_DDPM);
        e.steps = cases_w[k][0];
        e.seed = 33;
        ddpm_inpaint_config ie = {cases_w[k][1], cases_w[k][2]};
        memcpy(a, xT, sizeof a);
        memcpy(b, xT, sizeof b);
        CHECK_OK(dd_inpaint_loop_f64(d, &e, &ie, gauss_f64, &g, a, known, mask, N, D, 5));
        repaint_written_out(d, &e, cases_w[k][1], cases_w[k][2], &g, b, known, mask, N, D, 5);
        char what[64];
        snprintf(what, sizeof what, "repaint %d steps, jumps %d x %d vs written out", cases_w[k][0], cases_w[k][1],
                 cases_w[k][2]);
        dd_check_close(what, a, b, N * D, 1e-12, 1.0);
    }
    memcpy(a, xT, sizeof a);
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, a, known, mask, N, D, 0));
    /* other images draw other noise; the jumps change the result */
    memcpy(b, xT, sizeof b);
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, b, known, mask, N, D, 1));
    CHECK(memcmp(a, b, sizeof a) != 0);
    memcpy(b, xT, sizeof b);
    ic.jump_n_sample = 1;
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, b, known, mask, N, D, 0));
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* other schedules: model calls as diffusers, never above the first timestep; DDIM and step_along_list */
    const int cases[][3] = {{50, 10, 2}, {50, 7, 4}, {20, 20, 3}, {20, 19, 3}, {25, 1, 2}, {10, 3, 10}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int kind = 0; kind < 2; kind++) {
            ddpm_sampler_config_default(&c, kind ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM);
            c.steps = cases[k][0];
            c.step_along_list = kind;
            ic.jump_length = cases[k][1];
            ic.jump_n_sample = cases[k][2];
            nc = repaint_reference(cases[k][0], cases[k][1], cases[k][2], 1000, want);
            memcpy(b, xT, sizeof b);
            g.calls = 0;
            CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, b, known, mask, N, D, 0));
            CHECK_MSG(g.calls == nc, "case %zu: %d model calls, want %d", k, g.calls, nc);
            int bad = 0;
            for (int i = 0; i < nc && i < g.calls; i++) bad += g.t[i] != want[i];
            CHECK_MSG(bad == 0, "case %zu: %d calls at other timesteps", k, bad);
            for (int j = 0; j < N * D; j++) CHECK(isfinite(b[j]));
        }
    }
    /* with first_step, jumps stay below the first timestep */
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM);
    c.steps = 50;
    c.first_step = 25;
    ic.jump_length = 10;
    ic.jump_n_sample = 2;
    memcpy(b, xT, sizeof b);
    g.calls = 0;
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, gauss_f32, &g, b, known, mask, N, D, 0));
    CHECK(g.calls == 25 + 2 * 10 && g.t[0] == 480);
    for (int i = 1; i < g.calls; i++) CHECK(g.t[i] < 480);
    ddpm_diffusion_free(d);
}

static void test_inpaint_errors(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 100);
    enum { N = 2, D = 8 };
    double known[N * D], mask[N * D], x[N * D];
    ddpm_sample_init_noise(4, 0, N, D, 0, known);
    for (int j = 0; j < N * D; j++) mask[j] = j % 2;
    fill_xT(x, N, D, 0, 6);
    ddpm_sampler_config c;
    ddpm_inpaint_config ic;
    ddpm_inpaint_config_default(&ic);
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DPMPP2M);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "dpmpp2m") && strstr(ddpm_last_error(), "ddpm or ddim"));
    ddpm_sampler_config_default(&c, DDPM_SAMPLER_DDPM);
    c.steps = 20;
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0));
    mask[3] = 1.5;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), "mask is 1.5") && strstr(ddpm_last_error(), "element 3"), "%s",
              ddpm_last_error());
    mask[3] = NAN;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    mask[3] = -0.1;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    mask[3] = 1.0;
    known[9] = INFINITY;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "known image") && strstr(ddpm_last_error(), "image 1"));
    known[9] = 0.0;
    CHECK_FAIL(ddpm_inpaint_loop(NULL, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, NULL, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, NULL, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, NULL, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, NULL, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, NULL, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, NULL, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, 0, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, -1, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, -1), DDPM_ERR_INVALID_ARG);
    ic.jump_length = -1;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "jump_length") != NULL);
    ic.jump_length = 10;
    ic.jump_n_sample = -2;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    /* jump_n_sample 0 is no resampling, like 1 */
    ic.jump_n_sample = 0;
    CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0));
    /* a schedule past the RNG's step field */
    ic.jump_length = 1;
    ic.jump_n_sample = 1000000;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "RNG") != NULL);
    /* callbacks: stop, NaN, failure */
    ddpm_inpaint_config_default(&ic);
    ic.jump_n_sample = 2;
    stopper s = {7, 0, -1, -1, 0};
    c.on_step = stop_cb;
    c.step_user = &s;
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 0), DDPM_ERR_INTERRUPTED);
    CHECK(s.calls == 8 && strstr(ddpm_last_error(), "step 7"));
    c.on_step = NULL;
    int calls = 0;
    fill_xT(x, N, D, 0, 6);
    CHECK_FAIL(ddpm_inpaint_loop(d, &c, &ic, nan_model, &calls, x, known, mask, N, D, 0), DDPM_ERR_NUMERIC);
    CHECK_MSG(strstr(ddpm_last_error(), "step 2") && strstr(ddpm_last_error(), "image 1"), "%s", ddpm_last_error());
    ddpm_diffusion_free(d);
}

/* repeat_noise_steps in inpainting: with a shared x_T and every draw of the first R loop operations shared, the
   images come out identical when R covers the whole schedule (jumps included); per-image draws otherwise. */
static void test_inpaint_repeat_noise(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    enum { N = 3, D = 24 };
    double known[N * D], mask[N * D], xT[N * D], x[N * D];
    ddpm_sample_init_noise(4, 0, 1, D, 0, known);
    for (int r = 1; r < N; r++) memcpy(known + r * D, known, sizeof(double) * D);
    for (int j = 0; j < N * D; j++) mask[j] = (j % D) < D / 2 ? 1.0 : 0.0;
    ddpm_sample_init_noise(9, 0, N, D, 1, xT);
    ddpm_inpaint_config ic;
    ddpm_inpaint_config_default(&ic);
    for (int variant = 0; variant < 4; variant++) {
        ddpm_sampler_config c;
        ddpm_sampler_config_default(&c, variant % 2 ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM);
        if (variant % 2) c.eta = 1.0;
        c.steps = 20;
        c.seed = 5;
        ic.jump_length = 5;
        ic.jump_n_sample = variant >= 2 ? 3 : 1;
        c.repeat_noise_steps = 1000;   /* beyond the last loop operation */
        memcpy(x, xT, sizeof x);
        CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 2));
        CHECK_MSG(rows_equal(x, 0, 1, D) && rows_equal(x, 0, 2, D), "variant %d: shared noise, distinct images",
                  variant);
        /* wherever the batch starts */
        double y[N * D];
        memcpy(y, xT, sizeof y);
        CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, y, known, mask, N, D, 0));
        CHECK(memcmp(x, y, sizeof x) == 0);
        /* R = -1 and R = 3: per-image draws (from the fourth operation on), so the regenerated area differs */
        for (int r = -1; r <= 3; r += 4) {
            c.repeat_noise_steps = r;
            memcpy(x, xT, sizeof x);
            CHECK_OK(ddpm_inpaint_loop(d, &c, &ic, smooth, NULL, x, known, mask, N, D, 2));
            CHECK_MSG(!rows_equal(x, 0, 1, D) && !rows_equal(x, 1, 2, D), "variant %d, R = %d: rows are equal",
                      variant, r);
            for (int j = 0; j < N * D; j++)
                if (mask[j] == 0.0) CHECK(x[j] == known[j]);
        }
    }
    ddpm_diffusion_free(d);
}

int main(void) {
    test_config();
    test_first_step_resume();
    test_first_step_dpm();
    test_repeat_noise();
    test_init_noise();
    test_sampler_first_step();
    test_ddim_invert_exact();
    test_ddim_invert_gauss();
    test_slerp();
    test_timestep_for_sigma();
    test_inpaint_basic();
    test_inpaint_jumps();
    test_inpaint_errors();
    test_inpaint_repeat_noise();
    return dd_test_finish("test_apps");
}
