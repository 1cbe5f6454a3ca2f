/* test_schedule.c — noise schedules against closed forms written independently here, the derived
   GaussianDiffusion tables against their formulas and identities, betas files, bad configurations, and the
   tables as CSV text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/schedule.h"
#include "testutil.h"

#define PI 3.14159265358979323846

/* max_k |got_k - want_k| / |want_k| */
static double max_rel(const double *got, const double *want, int n, int *at) {
    double worst = 0;
    *at = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / fabs(want[i]);
        if (!(e <= worst)) {
            worst = e;
            *at = i;
        }
    }
    return worst;
}

#define CHECK_REL(what, got, want, n, tol)                                                                   \
    do {                                                                                                     \
        int at_;                                                                                             \
        double e_ = max_rel(got, want, n, &at_);                                                             \
        CHECK_MSG(e_ <= (tol), "%s: relative error %.3e at [%d]: got %.17g want %.17g", what, e_, at_,       \
                  (got)[at_], (want)[at_]);                                                                  \
    } while (0)

static void test_defaults(void) {
    ddpm_schedule_config sc;
    memset(&sc, 0x55, sizeof sc);
    ddpm_schedule_config_default(&sc);
    CHECK(strcmp(sc.name, "linear") == 0);
    CHECK(sc.T == 1000 && sc.beta_start == 1e-4 && sc.beta_end == 0.02 && sc.scale_to_T == 0);
    CHECK(sc.cosine_s == 0.008 && sc.sqrt_s == 1e-4 && sc.max_beta == 0.999);
    CHECK(sc.sigmoid_start == -3 && sc.sigmoid_end == 3 && sc.sigmoid_tau == 1);
    const char *want[] = {"linear", "scaled_linear", "cosine", "squaredcos_cap_v2", "sqrt", "sigmoid", "sigmoid_chen"};
    int n = 0;
    while (ddpm_schedule_names[n]) n++;
    CHECK(n == 7);
    for (int i = 0; i < 7; i++) {
        int found = 0;
        for (int j = 0; j < n; j++) found |= strcmp(ddpm_schedule_names[j], want[i]) == 0;
        CHECK_MSG(found, "schedule name %s missing", want[i]);
        /* Every listed name builds a valid diffusion. */
        ddpm_diffusion *d = dd_test_diffusion(want[i], 100);
        ddpm_diffusion_free(d);
    }
}

/* Closed forms, written here from the papers rather than shared with the library. */
static double ab_sqrt(double tau) { return 1.0 - sqrt(tau + 1e-4); }                 /* Li et al. 2022 */
static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ab_chen(double tau) { return (sig(3.0) - sig(6.0 * tau - 3.0)) / (sig(3.0) - sig(-3.0)); } /* Chen 2023 */
static double ab_cos(double tau) {                                                    /* Nichol & Dhariwal 2021 */
    double c = cos((tau + 0.008) / 1.008 * PI / 2);
    return c * c;
}

static void check_alpha_bar_schedule(const char *name, double (*ab)(double), int T) {
    ddpm_diffusion *d = dd_test_diffusion(name, T);
    if (!d) return;
    double *beta = malloc(sizeof(double) * (size_t)T), *acp = malloc(sizeof(double) * (size_t)T);
    for (int i = 0; i < T; i++) {
        double b = 1.0 - ab((double)(i + 1) / T) / ab((double)i / T);
        beta[i] = b < 0.999 ? b : 0.999;
        /* The product telescopes: alpha_bar_k = ab((k+1)/T) / ab(0) wherever no beta was clipped. */
        acp[i] = ab((double)(i + 1) / T) / ab(0.0);
    }
    char what[96];
    snprintf(what, sizeof what, "%s T=%d betas", name, T);
    CHECK_REL(what, d->betas, beta, T, 1e-12);
    int clipped = 0;
    for (int i = 0; i < T; i++) clipped += beta[i] == 0.999;
    snprintf(what, sizeof what, "%s T=%d alphas_cumprod (telescoped)", name, T);
    int first_clip = T;
    for (int i = 0; i < T; i++)
        if (beta[i] == 0.999) {
            first_clip = i;
            break;
        }
    CHECK_REL(what, d->alphas_cumprod, acp, first_clip, 1e-12);
    CHECK_MSG(clipped >= 1 && d->betas[T - 1] == 0.999, "%s: the last beta is clipped at max_beta", name);
    free(beta);
    free(acp);
    ddpm_diffusion_free(d);
}

static void test_closed_forms(void) {
    check_alpha_bar_schedule("sqrt", ab_sqrt, 1000);
    check_alpha_bar_schedule("sqrt", ab_sqrt, 50);
    check_alpha_bar_schedule("sigmoid_chen", ab_chen, 1000);
    check_alpha_bar_schedule("sigmoid_chen", ab_chen, 50);
    check_alpha_bar_schedule("cosine", ab_cos, 1000);
    check_alpha_bar_schedule("squaredcos_cap_v2", ab_cos, 50);

    /* Values printed by Python's math module for T = 10 (betas_for_alpha_bar with max_beta 0.999). */
    static const double sqrt10[10] = {0.30948064685972476, 0.1915401293189859,  0.1818220872183567,
                                      0.18735811480627695, 0.2031290593665106,  0.23045949425165735,
                                      0.2754011916182302,  0.3537679406897556,  0.5141631872225114, 0.999};
    static const double chen10[10] = {0.03949278272637624, 0.06749283628897795, 0.11054841759160827,
                                      0.1703906017808987,  0.24347859650606007, 0.32183966690376753,
                                      0.40033021554229054, 0.48695719301212115, 0.6214270507255066, 0.999};
    double b[10];
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    sc.T = 10;
    sc.name = "sqrt";
    CHECK_OK(ddpm_schedule_betas(&sc, b));
    CHECK_REL("sqrt T=10 (python)", b, sqrt10, 10, 1e-12);
    sc.name = "sigmoid_chen";
    CHECK_OK(ddpm_schedule_betas(&sc, b));
    CHECK_REL("sigmoid_chen T=10 (python)", b, chen10, 10, 1e-12);

    /* linear and scaled_linear end points; scale_to_T (improved-diffusion) scales both ends by 1000/T. */
    sc.name = "linear";
    sc.T = 50;
    sc.scale_to_T = 1;
    double b50[50];
    CHECK_OK(ddpm_schedule_betas(&sc, b50));
    CHECK(fabs(b50[0] - 0.002) < 1e-17 && fabs(b50[49] - 0.4) < 1e-16);
    for (int i = 1; i < 50; i++) CHECK(fabs((b50[i] - b50[i - 1]) - (0.398 / 49)) < 1e-15);
    sc.scale_to_T = 0;
    sc.name = "scaled_linear";
    CHECK_OK(ddpm_schedule_betas(&sc, b50));
    for (int i = 0; i < 50; i++) {
        double r = sqrt(1e-4) + (sqrt(0.02) - sqrt(1e-4)) * i / 49.0;
        CHECK(fabs(b50[i] - r * r) <= 1e-14 * r * r);
    }
    sc.name = "sigmoid";
    CHECK_OK(ddpm_schedule_betas(&sc, b50));
    for (int i = 0; i < 50; i++) {
        double want = sig(-6.0 + 12.0 * i / 49.0) * (0.02 - 1e-4) + 1e-4;
        CHECK(fabs(b50[i] - want) <= 1e-13 * want);
    }
    /* T = 1: linear gives beta_start. */
    sc.name = "linear";
    sc.T = 1;
    CHECK_OK(ddpm_schedule_betas(&sc, b));
    CHECK(b[0] == 1e-4);
}

/* Every derived table against its formula (Ho et al. 2020, eqs. 4, 6, 7) and two identities. */
static void check_tables(const ddpm_diffusion *d) {
    int T = d->T;
    double acp = 1.0;
    double worst = 0;
    for (int k = 0; k < T; k++) {
        double b = d->betas[k], a = 1 - b, prev = acp;
        acp *= a;
        double want[13] = {b,
                           a,
                           acp,
                           prev,
                           sqrt(acp),
                           sqrt(1 - acp),
                           log(1 - acp),
                           sqrt(1 / acp),
                           sqrt(1 / acp - 1),
                           b * (1 - prev) / (1 - acp),
                           0,
                           b * sqrt(prev) / (1 - acp),
                           (1 - prev) * sqrt(a) / (1 - acp)};
        want[10] = k == 0 ? (T > 1 ? log(d->betas[1] * (1 - acp) / (1 - d->alphas_cumprod[1])) : log(b))
                          : log(want[9]);
        double got[13] = {d->betas[k], d->alphas[k], d->alphas_cumprod[k], d->alphas_cumprod_prev[k],
                          d->sqrt_alphas_cumprod[k], d->sqrt_one_minus_alphas_cumprod[k],
                          d->log_one_minus_alphas_cumprod[k], d->sqrt_recip_alphas_cumprod[k],
                          d->sqrt_recipm1_alphas_cumprod[k], d->posterior_variance[k],
                          d->posterior_log_variance_clipped[k], d->posterior_mean_coef1[k], d->posterior_mean_coef2[k]};
        for (int j = 0; j < 13; j++) {
            double e = want[j] == 0 ? fabs(got[j]) : fabs(got[j] - want[j]) / fabs(want[j]);
            if (!(e <= worst)) worst = e;
            CHECK_MSG(e <= 1e-13, "T=%d table %d at k=%d: got %.17g want %.17g", T, j, k, got[j], want[j]);
        }
        if (k >= 1) {
            /* beta~ is the variance of the product of N(x_t; sqrt(a) x, b) and N(x; sqrt(ab_prev) x0, 1 - ab_prev):
               1/beta~ = a/b + 1/(1 - ab_prev). */
            double inv = a / b + 1 / (1 - prev);
            CHECK(fabs(1 / d->posterior_variance[k] - inv) <= 1e-10 * inv);
        }
        /* With x_t = sqrt(ab_t) x_0 exactly (no noise), the posterior mean is sqrt(ab_{t-1}) x_0. */
        CHECK(fabs(d->posterior_mean_coef1[k] + d->posterior_mean_coef2[k] * sqrt(acp) - sqrt(prev)) <= 1e-12);
    }
    CHECK(d->alphas_cumprod_prev[0] == 1.0 && d->posterior_variance[0] == 0.0);
    if (T > 1) CHECK(d->posterior_log_variance_clipped[0] == log(d->posterior_variance[1]));
}

static void test_tables(void) {
    const char *names[] = {"linear", "cosine", "sqrt", "sigmoid_chen", "scaled_linear", "sigmoid"};
    for (int i = 0; i < 6; i++) {
        ddpm_diffusion *d = dd_test_diffusion(names[i], 1000);
        if (d) check_tables(d);
        ddpm_diffusion_free(d);
    }
    double betas[3] = {0.1, 0.2, 0.3};
    ddpm_diffusion *d = NULL;
    CHECK_OK(ddpm_diffusion_from_betas(betas, 3, &d));
    if (d) {
        check_tables(d);
        /* hand values: alpha_bar = 0.9, 0.72, 0.504; beta~_1 = 0.2 * 0.1 / 0.28 */
        CHECK(fabs(d->alphas_cumprod[2] - 0.504) < 1e-15);
        CHECK(fabs(d->posterior_variance[1] - 0.2 * 0.1 / 0.28) < 1e-15);
        CHECK(fabs(d->posterior_log_variance_clipped[0] - log(0.2 * 0.1 / 0.28)) < 1e-14);
    }
    ddpm_diffusion_free(d);
    d = NULL;
    CHECK_OK(ddpm_diffusion_from_betas(betas, 1, &d));
    if (d) CHECK(d->T == 1 && d->posterior_log_variance_clipped[0] == log(0.1));
    ddpm_diffusion_free(d);
    ddpm_diffusion_free(NULL);
}

static void expect_fail(ddpm_schedule_config *sc, ddpm_status want, const char *needle) {
    double *b = malloc(sizeof(double) * (size_t)(sc->T > 0 && sc->T < 100000 ? sc->T : 1));
    ddpm_clear_error();
    CHECK_FAIL(ddpm_schedule_betas(sc, b), want);
    CHECK_MSG(!needle || strstr(ddpm_last_error(), needle), "message '%s' lacks '%s'", ddpm_last_error(), needle);
    ddpm_diffusion *d = (ddpm_diffusion *)1;
    CHECK_FAIL(ddpm_diffusion_create(sc, &d), want);
    CHECK(d == NULL);
    free(b);
}

static void test_bad_configs(void) {
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    sc.name = "quadratic";
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "sigmoid_chen");  /* the message lists the valid names */
    sc.name = NULL;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "linear");
    sc.name = "";
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, NULL);
    ddpm_schedule_config_default(&sc);
    sc.T = 0;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "T = 0");
    sc.T = -3;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "T = -3");
    sc.T = DD_SCHEDULE_MAX_T + 1;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "out of range");
    ddpm_schedule_config_default(&sc);
    sc.beta_start = 0;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "beta_start");
    sc.beta_start = NAN;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "beta_start");
    ddpm_schedule_config_default(&sc);
    sc.beta_end = 1.5;
    sc.name = "scaled_linear";
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "beta_end");
    ddpm_schedule_config_default(&sc);
    sc.T = 10;
    sc.scale_to_T = 1; /* 0.02 * 100 = 2 */
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "beta_end");
    sc.name = "cosine";
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "scale_to_T");
    ddpm_schedule_config_default(&sc);
    sc.name = "cosine";
    sc.max_beta = 1.0;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "max_beta");
    sc.max_beta = 0.999;
    sc.cosine_s = -0.5;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "cosine_s");
    ddpm_schedule_config_default(&sc);
    sc.name = "sigmoid_chen";
    sc.sigmoid_tau = 0;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "sigmoid_tau");
    sc.sigmoid_tau = 1;
    sc.sigmoid_start = 3;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "sigmoid_start");
    /* sqrt with T = 20000 drives alpha_bar(tau) below 0 before tau = 1: caught by the range check. */
    ddpm_schedule_config_default(&sc);
    sc.name = "sqrt";
    sc.T = 20000;
    expect_fail(&sc, DDPM_ERR_INVALID_ARG, "outside (0, 1)");
    CHECK_FAIL(ddpm_schedule_betas(NULL, NULL), DDPM_ERR_INVALID_ARG);
    ddpm_schedule_config_default(&sc);
    CHECK_FAIL(ddpm_schedule_betas(&sc, NULL), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_diffusion_create(NULL, NULL), DDPM_ERR_INVALID_ARG);

    double bad[3] = {0.1, 1.0, 0.2};
    ddpm_diffusion *d = NULL;
    CHECK_FAIL(ddpm_diffusion_from_betas(bad, 3, &d), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "beta[1]") != NULL);
    bad[1] = 0.0;
    CHECK_FAIL(ddpm_diffusion_from_betas(bad, 3, &d), DDPM_ERR_INVALID_ARG);
    bad[1] = NAN;
    CHECK_FAIL(ddpm_diffusion_from_betas(bad, 3, &d), DDPM_ERR_NUMERIC);
    CHECK_FAIL(ddpm_diffusion_from_betas(NULL, 3, &d), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_diffusion_from_betas(bad, 0, &d), DDPM_ERR_INVALID_ARG);
    CHECK(d == NULL);
}

static void parse_ok(const char *text, int want_T, const double *want) {
    double *b = NULL;
    int T = 0;
    CHECK_OK(dd_schedule_parse_text(text, strlen(text), &b, &T));
    CHECK_MSG(T == want_T, "'%s': T %d want %d", text, T, want_T);
    for (int i = 0; b && i < T && i < want_T; i++) CHECK(b[i] == want[i]);
    ddpm_free(b);
}

static void parse_fail(const char *text, size_t len, const char *needle) {
    double *b = (double *)1;
    int T = 7;
    CHECK_FAIL(dd_schedule_parse_text(text, len, &b, &T), DDPM_ERR_FORMAT);
    CHECK(b == NULL && T == 0);
    CHECK_MSG(!needle || strstr(ddpm_last_error(), needle), "message '%s' lacks '%s'", ddpm_last_error(), needle);
}

static void test_text_parser(void) {
    const double w[3] = {0.1, 0.25, 1e-3};
    parse_ok("0.1\n0.25\n1e-3\n", 3, w);
    parse_ok("# betas\n\n  0.1  \r\n0.25 # middle\r\n\t1e-3", 3, w);
    parse_ok("0.1\n\n\n0.25\n#\n1e-3\n\n", 3, w);
    parse_fail("", 0, "no values");
    parse_fail("# only a comment\n\n", 18, "no values");
    parse_fail("0.1\nabc\n", 8, "line 2");
    parse_fail("0.1 0.2\n", 8, "line 1");
    parse_fail("0.1\n1.0\n", 8, "outside (0, 1)");
    parse_fail("0\n", 2, "outside");
    parse_fail("-0.5\n", 5, "outside");
    parse_fail("nan\n", 4, "outside");
    parse_fail("inf\n", 4, "outside");
    parse_fail("0.1\n0.\x00" "1\n", 7, "line 2");
    char longline[300];
    memset(longline, '1', sizeof longline);
    longline[0] = '0';
    longline[1] = '.';
    parse_fail(longline, sizeof longline, "too long");
    /* Not NUL-terminated: the parser must stop at len. */
    char buf[4] = {'0', '.', '5', '7'};
    double *b = NULL;
    int T = 0;
    CHECK_OK(dd_schedule_parse_text(buf, 3, &b, &T));
    CHECK(T == 1 && b && b[0] == 0.5);
    ddpm_free(b);
}

static void test_files(void) {
    const char *dir = dd_test_tmpdir("schedule");
    char path[1200], name[1300];
    snprintf(path, sizeof path, "%s/betas.txt", dir);
    const char *text = "# a three-step schedule\n0.1\n0.2\n\n0.3 # last\n";
    dd_write_bytes(path, text, strlen(text));
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    snprintf(name, sizeof name, "file:%s", path);
    sc.name = name;
    ddpm_diffusion *d = NULL;
    /* ddpm_diffusion_create takes T from the file. */
    CHECK_OK(ddpm_diffusion_create(&sc, &d));
    CHECK(d && d->T == 3 && d->betas[0] == 0.1 && d->betas[2] == 0.3);
    ddpm_diffusion_free(d);
    double b[3];
    CHECK_FAIL(ddpm_schedule_betas(&sc, b), DDPM_ERR_INVALID_ARG); /* T = 1000 but the file holds 3 */
    CHECK(strstr(ddpm_last_error(), "3 betas") != NULL);
    sc.T = 3;
    CHECK_OK(ddpm_schedule_betas(&sc, b));
    CHECK(b[1] == 0.2);

    snprintf(path, sizeof path, "%s/bad.txt", dir);
    dd_write_bytes(path, "0.1\n0.2\n2.5\n", 12);
    snprintf(name, sizeof name, "file:%s", path);
    d = NULL;
    CHECK_FAIL(ddpm_diffusion_create(&sc, &d), DDPM_ERR_FORMAT);
    CHECK(strstr(ddpm_last_error(), "line 3") && strstr(ddpm_last_error(), "bad.txt"));
    snprintf(name, sizeof name, "file:%s/missing.txt", dir);
    CHECK_FAIL(ddpm_diffusion_create(&sc, &d), DDPM_ERR_IO);
    sc.name = "file:";
    CHECK_FAIL(ddpm_diffusion_create(&sc, &d), DDPM_ERR_INVALID_ARG);

    /* safetensors with a 1-D "betas" tensor, F64 and F32. */
    double bb[4] = {1e-4, 0.01, 0.02, 0.5};
    float bf[4] = {1e-4f, 0.01f, 0.02f, 0.5f};
    int64_t shape[2] = {4, 1};
    for (int f = 0; f < 2; f++) {
        ddpm_st_writer *w = NULL;
        CHECK_OK(ddpm_st_writer_create(&w));
        if (!w) return;
        CHECK_OK(ddpm_st_writer_add(w, "betas", f ? DDPM_DTYPE_F32 : DDPM_DTYPE_F64, 1, shape, f ? (void *)bf : (void *)bb));
        snprintf(path, sizeof path, "%s/betas%d.safetensors", dir, f);
        CHECK_OK(ddpm_st_writer_save(w, path));
        ddpm_st_writer_free(w);
        snprintf(name, sizeof name, "file:%s", path);
        sc.name = name;
        d = NULL;
        CHECK_OK(ddpm_diffusion_create(&sc, &d));
        CHECK(d && d->T == 4);
        for (int i = 0; d && i < 4; i++) CHECK(d->betas[i] == (f ? (double)bf[i] : bb[i]));
        ddpm_diffusion_free(d);
    }
    /* Wrong name, wrong rank, out-of-range values. */
    const char *names[3] = {"sigmas", "betas", "betas"};
    int ndims[3] = {1, 2, 1};
    double bad[4] = {0.1, 0.2, 1.5, 0.3};
    for (int k = 0; k < 3; k++) {
        ddpm_st_writer *w = NULL;
        CHECK_OK(ddpm_st_writer_create(&w));
        if (!w) return;
        int64_t shp[2] = {k == 1 ? 2 : 4, 2};
        CHECK_OK(ddpm_st_writer_add(w, names[k], DDPM_DTYPE_F64, ndims[k], shp, k == 2 ? bad : bb));
        snprintf(path, sizeof path, "%s/bad%d.safetensors", dir, k);
        CHECK_OK(ddpm_st_writer_save(w, path));
        ddpm_st_writer_free(w);
        snprintf(name, sizeof name, "file:%s", path);
        sc.name = name;
        d = NULL;
        ddpm_status st = ddpm_diffusion_create(&sc, &d);
        CHECK_MSG(st != DDPM_OK && d == NULL && ddpm_last_error()[0], "bad safetensors %d accepted", k);
    }
}

/* ddpm_diffusion_csv: the header, one line per timestep, the schedule column only for several diffusions, and
   values that read back exactly. */
static void test_csv(void) {
    ddpm_diffusion *a = dd_test_diffusion("linear", 10), *b = dd_test_diffusion("cosine", 10);
    const ddpm_diffusion *one[1] = {a}, *two[2] = {a, b};
    const char *names[2] = {"linear", "cosine"};
    char *text = NULL;
    CHECK_OK(ddpm_diffusion_csv(one, NULL, 1, &text));
    CHECK(text && strncmp(text, "t,beta,alpha,alphas_cumprod,alphas_cumprod_prev,", 48) == 0);
    CHECK(text && strstr(text, ",posterior_mean_coef1,posterior_mean_coef2\n0,") != NULL);
    int lines = 0;
    for (const char *p = text; p && *p; p++) lines += *p == '\n';
    CHECK_MSG(lines == 11, "%d lines", lines);
    /* line t = 3: beta and alphas_cumprod round-trip */
    const char *row = text;
    for (int k = 0; row && k < 4; k++) row = strchr(row, '\n') ? strchr(row, '\n') + 1 : NULL;
    int t = -1;
    double beta = 0, alpha = 0, ab = 0;
    CHECK(row && sscanf(row, "%d,%lf,%lf,%lf", &t, &beta, &alpha, &ab) == 4);
    CHECK(t == 3 && beta == a->betas[3] && alpha == a->alphas[3] && ab == a->alphas_cumprod[3]);
    ddpm_free(text);
    CHECK_OK(ddpm_diffusion_csv(two, names, 2, &text));
    CHECK(text && strncmp(text, "schedule,t,beta,", 16) == 0);
    CHECK(text && strstr(text, "\nlinear,9,") != NULL && strstr(text, "\ncosine,0,") != NULL);
    lines = 0;
    for (const char *p = text; p && *p; p++) lines += *p == '\n';
    CHECK(lines == 21);
    ddpm_free(text);
    CHECK_FAIL(ddpm_diffusion_csv(two, NULL, 2, &text), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_diffusion_csv(one, NULL, 0, &text), DDPM_ERR_INVALID_ARG);
    CHECK(text == NULL);
    ddpm_diffusion_free(a);
    ddpm_diffusion_free(b);
}

int main(void) {
    test_defaults();
    test_closed_forms();
    test_tables();
    test_bad_configs();
    test_text_parser();
    test_files();
    test_csv();
    return dd_test_finish("test_schedule");
}
