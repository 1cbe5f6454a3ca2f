/* test_eval_metrics.c — ddpm_feature_stats, ddpm_frechet_distance (closed forms: commuting covariances, the 2x2
   formula tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)), symmetry), ddpm_nearest_neighbours (brute force in double) and
   ddpm_bpd_loop (an independent loop written from Ho et al.'s formulas; a perfect x0 model leaves only the prior
   and the decoder); the
   results as JSON (ddpm_eval_results_json). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void test_stats(void) {
    enum { N = 5, F = 3 };
    float f[N * F];
    uint64_t s = 1;
    for (int i = 0; i < N * F; i++) f[i] = (float)(urand(&s) * 4 - 2);
    double mu[F], cov[F * F];
    CHECK_OK(ddpm_feature_stats(f, N, F, mu, cov));
    for (int j = 0; j < F; j++) {
        double m = 0;
        for (int i = 0; i < N; i++) m += f[i * F + j];
        m /= N;
        CHECK(fabs(mu[j] - m) < 1e-12);
        for (int k = 0; k < F; k++) {
            double mk = 0, c = 0;
            for (int i = 0; i < N; i++) mk += f[i * F + k];
            mk /= N;
            for (int i = 0; i < N; i++) c += (f[i * F + j] - m) * (f[i * F + k] - mk);
            CHECK(fabs(cov[j * F + k] - c / (N - 1)) < 1e-12);
        }
    }
    CHECK_FAIL(ddpm_feature_stats(f, 1, F, mu, cov), DDPM_ERR_INVALID_ARG);
    f[4] = NAN;
    CHECK_FAIL(ddpm_feature_stats(f, N, F, mu, cov), DDPM_ERR_NUMERIC);
}

/* A random orthogonal matrix (Gram-Schmidt of random columns). */
static void orthogonal(double *q, int F, uint64_t *s) {
    for (int i = 0; i < F * F; i++) q[i] = urand(s) - 0.5;
    for (int j = 0; j < F; j++) {
        for (int k = 0; k < j; k++) {
            double d = 0;
            for (int i = 0; i < F; i++) d += q[i * F + j] * q[i * F + k];
            for (int i = 0; i < F; i++) q[i * F + j] -= d * q[i * F + k];
        }
        double n = 0;
        for (int i = 0; i < F; i++) n += q[i * F + j] * q[i * F + j];
        n = sqrt(n);
        for (int i = 0; i < F; i++) q[i * F + j] /= n;
    }
}

static void rotate(double *out, const double *q, const double *diag, int F) {
    for (int i = 0; i < F; i++)
        for (int j = 0; j < F; j++) {
            double acc = 0;
            for (int k = 0; k < F; k++) acc += q[i * F + k] * diag[k] * q[j * F + k];
            out[i * F + j] = acc;
        }
}

static void test_frechet(void) {
    enum { F = 40 };
    uint64_t s = 7;
    double *q = malloc(sizeof(double) * F * F), *c1 = malloc(sizeof(double) * F * F), *c2 = malloc(sizeof(double) * F * F);
    double a[F], b[F], m1[F], m2[F], fd = -1, fd2 = -1;
    for (int i = 0; i < F; i++) {
        a[i] = urand(&s) * 3;
        b[i] = urand(&s) * 3;
        m1[i] = urand(&s);
        m2[i] = urand(&s);
    }
    a[3] = 0;   /* a singular covariance */
    orthogonal(q, F, &s);
    rotate(c1, q, a, F);
    rotate(c2, q, b, F);
    double want = 0;
    for (int i = 0; i < F; i++) want += (m1[i] - m2[i]) * (m1[i] - m2[i]) + (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    CHECK_OK(ddpm_frechet_distance(m1, c1, m2, c2, F, &fd));
    CHECK_MSG(fabs(fd - want) < 1e-9 * (1 + want), "commuting: %.15g vs %.15g", fd, want);
    CHECK_OK(ddpm_frechet_distance(m2, c2, m1, c1, F, &fd2));
    CHECK_MSG(fabs(fd2 - want) < 1e-9 * (1 + want), "swapped: %.15g vs %.15g", fd2, want);
    CHECK_OK(ddpm_frechet_distance(m1, c1, m1, c1, F, &fd));
    CHECK_MSG(fd < 1e-9, "identical: %g", fd);
    /* 2x2, not commuting: tr sqrt(c1 c2) via the eigenvalues of c1 c2: sqrt(tr + 2 sqrt(det)) */
    double p1[4] = {2.0, 0.7, 0.7, 1.0}, p2[4] = {0.5, -0.2, -0.2, 3.0}, z[2] = {0, 0}, w[2] = {1, -2};
    double pr[4] = {p1[0] * p2[0] + p1[1] * p2[2], p1[0] * p2[1] + p1[1] * p2[3], p1[2] * p2[0] + p1[3] * p2[2],
                    p1[2] * p2[1] + p1[3] * p2[3]};
    double tr = pr[0] + pr[3], det = pr[0] * pr[3] - pr[1] * pr[2];
    double want2 = 5.0 + (p1[0] + p1[3]) + (p2[0] + p2[3]) - 2.0 * sqrt(tr + 2.0 * sqrt(det));
    CHECK_OK(ddpm_frechet_distance(z, p1, w, p2, 2, &fd));
    CHECK_MSG(fabs(fd - want2) < 1e-12, "2x2: %.15g vs %.15g", fd, want2);
    c1[0] = NAN;
    CHECK_FAIL(ddpm_frechet_distance(m1, c1, m2, c2, F, &fd), DDPM_ERR_NUMERIC);
    free(q);
    free(c1);
    free(c2);
}

static void test_nearest(void) {
    enum { n = 37, m = 2500, D = 50 };
    float *a = malloc(sizeof(float) * n * D), *b = malloc(sizeof(float) * m * D);
    uint64_t s = 3;
    for (int i = 0; i < n * D; i++) a[i] = (float)(urand(&s) * 2 - 1);
    for (int i = 0; i < m * D; i++) b[i] = (float)(urand(&s) * 2 - 1);
    memcpy(b + 1234 * D, a + 5 * D, sizeof(float) * D);   /* an exact copy */
    double dist[n];
    int64_t idx[n];
    CHECK_OK(ddpm_nearest_neighbours(a, n, b, m, D, dist, idx));
    for (int i = 0; i < n; i++) {
        double best = INFINITY;
        int bi = -1;
        for (int j = 0; j < m; j++) {
            double acc = 0;
            for (int k = 0; k < D; k++) acc += ((double)a[i * D + k] - b[j * D + k]) * ((double)a[i * D + k] - b[j * D + k]);
            if (acc < best) {
                best = acc;
                bi = j;
            }
        }
        CHECK_MSG(idx[i] == bi && fabs(dist[i] - sqrt(best)) < 1e-12, "row %d: %lld %g vs %d %g", i, (long long)idx[i],
                  dist[i], bi, sqrt(best));
    }
    CHECK(idx[5] == 1234 && dist[5] == 0.0);
    CHECK_FAIL(ddpm_nearest_neighbours(a, 0, b, m, D, dist, idx), DDPM_ERR_INVALID_ARG);
    free(a);
    free(b);
}

/* A stand-in network: eps(x, t) = 0.3 x + 0.01 t / T, or the true x0 (user: the images). */
typedef struct {
    int T;
    const float *x0;   /* perfect x0 model when not NULL */
} toy;

static ddpm_status toy_model(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    toy *m = user;
    for (int64_t i = 0; i < N * D; i++)
        out[i] = m->x0 ? m->x0[i] : 0.3f * x[i] + 0.01f * (float)t[i / D] / (float)m->T;
    return DDPM_OK;
}

static double cdf_approx(double x) { return 0.5 * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x))); }

static double kl(double m1, double lv1, double m2, double lv2) {
    return 0.5 * (-1.0 + lv2 - lv1 + exp(lv1 - lv2) + (m1 - m2) * (m1 - m2) * exp(-lv2));
}

/* The bound written out from the betas alone (eps model, fixed_small, clipping). */
static void bpd_reference(int T, const double *beta, const float *x0, int64_t N, int64_t D, uint64_t seed, double *out) {
    double *ab = malloc(sizeof(double) * T), *pv = malloc(sizeof(double) * T);
    double p = 1;
    for (int t = 0; t < T; t++) {
        p *= 1 - beta[t];
        ab[t] = p;
    }
    for (int t = 0; t < T; t++) pv[t] = beta[t] * (1 - (t ? ab[t - 1] : 1.0)) / (1 - ab[t]);
    float *eps = malloc(sizeof(float) * D);
    for (int64_t n = 0; n < N; n++) {
        double total = 0;
        for (int64_t k = 0; k < D; k++) total += kl(sqrt(ab[T - 1]) * x0[n * D + k], log(1 - ab[T - 1]), 0, 0);
        total /= D;
        for (int t = T - 1; t >= 0; t--) {
            ddpm_rng_normal_f32(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)t, (uint32_t)n), 0, eps, (size_t)D);
            double abp = t ? ab[t - 1] : 1.0, lv = log(t ? pv[t] : pv[1]), acc = 0;
            double c1 = beta[t] * sqrt(abp) / (1 - ab[t]), c2 = (1 - abp) * sqrt(1 - beta[t]) / (1 - ab[t]);
            for (int64_t k = 0; k < D; k++) {
                double x = x0[n * D + k];
                double xt = (float)(sqrt(ab[t]) * x + sqrt(1 - ab[t]) * eps[k]);
                double e = (double)(0.3f * (float)xt + 0.01f * (float)t / (float)T);
                double xh = (xt - sqrt(1 - ab[t]) * e) / sqrt(ab[t]);
                xh = xh < -1 ? -1 : xh > 1 ? 1 : xh;
                double mq = c1 * x + c2 * xt, mp = c1 * xh + c2 * xt;
                if (t > 0) {
                    acc += kl(mq, lv, mp, lv);
                } else {
                    double is = exp(-0.5 * lv), cp = cdf_approx(is * (x - mp + 1 / 255.0)), cm = cdf_approx(is * (x - mp - 1 / 255.0));
                    double pr = x < -0.999 ? cp : x > 0.999 ? 1 - cm : cp - cm;
                    acc -= log(pr > 1e-12 ? pr : 1e-12);
                }
            }
            total += acc / D;
        }
        out[n] = total / log(2.0);
    }
    free(ab);
    free(pv);
    free(eps);
}

static void test_bpd(void) {
    enum { T = 40, N = 3, D = 20 };
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    sc.T = T;
    sc.scale_to_T = 1;
    ddpm_diffusion *d = NULL;
    CHECK_OK(ddpm_diffusion_create(&sc, &d));
    if (!d) return;
    float x0[N * D];
    uint64_t s = 11;
    for (int i = 0; i < N * D; i++) x0[i] = (float)((int)(urand(&s) * 256) / 127.5 - 1.0);
    x0[0] = -1.0f;
    x0[1] = 1.0f;   /* both edge bins */
    ddpm_bpd_config bc;
    ddpm_bpd_config_default(&bc);
    bc.seed = 5;
    toy m = {T, NULL};
    double bpd[N], prior[N], dec[N], want[N];
    CHECK_OK(ddpm_bpd_loop(d, &bc, toy_model, &m, x0, N, D, 0, bpd, prior, dec));
    bpd_reference(T, d->betas, x0, N, D, 5, want);
    CHECK(dd_check_close("bpd vs the written-out bound", bpd, want, N, 1e-9, 1.0));
    /* items are addressed globally: image 1 alone, as item 1, gives the same number */
    double one;
    CHECK_OK(ddpm_bpd_loop(d, &bc, toy_model, &m, x0 + D, 1, D, 1, &one, NULL, NULL));
    CHECK(one == bpd[1]);
    /* a perfect x0 model: every KL term vanishes */
    toy perfect = {T, x0};
    bc.prediction = DDPM_PRED_X0;
    CHECK_OK(ddpm_bpd_loop(d, &bc, toy_model, &perfect, x0, N, D, 0, bpd, prior, dec));
    for (int n = 0; n < N; n++) CHECK_MSG(fabs(bpd[n] - prior[n] - dec[n]) < 1e-12, "image %d: %g vs %g + %g", n, bpd[n], prior[n], dec[n]);
    float bad[D];
    memcpy(bad, x0, sizeof bad);
    bad[3] = 1.5f;
    CHECK_FAIL(ddpm_bpd_loop(d, &bc, toy_model, &perfect, bad, 1, D, 0, bpd, NULL, NULL), DDPM_ERR_INVALID_ARG);
    ddpm_diffusion_free(d);
}

/* ddpm_eval_results_json: the document's keys and values; label_agreement only when it is a number; the samples,
   calibration and nll parts only when given. */
static void test_results_json(void) {
    ddpm_eval_reference_info info;
    memset(&info, 0, sizeof info);
    info.test_count = 10000;
    info.classifier.test_accuracy = 0.99;
    ddpm_eval_metrics m[2];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 2; i++) {
        m[i].num = 100;
        m[i].num_classes = 3;
        m[i].fid = 1.5 + i;
        m[i].agreement = i == 0 ? NAN : 0.25;
        m[i].histogram[0] = 7;
        m[i].histogram[2] = 93;
        m[i].ratio = 0.5;
    }
    const char *names[2] = {"test images", "training images"};
    ddpm_eval_bpd_result b = {3, 2, 1.25, 0.01, 0.001, 0.2};
    ddpm_eval_results r = {"mnist", "100 samples", &info, &m[0], NULL, NULL, 0, &b};
    char *text = NULL;
    CHECK_OK(ddpm_eval_results_json(&r, &text));
    CHECK(text && text[strlen(text) - 1] == '\n');
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    CHECK(o != NULL);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "data")), "mnist") == 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "reference_images")) == 10000);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "classifier_test_accuracy")) == 0.99);
    cJSON *s = cJSON_GetObjectItem(o, "samples");
    CHECK(s && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "name")), "samples") == 0);
    CHECK(s && cJSON_GetNumberValue(cJSON_GetObjectItem(s, "fid")) == 1.5);
    CHECK(s && cJSON_GetObjectItem(s, "label_agreement") == NULL);
    CHECK(s && cJSON_GetObjectItem(s, "held_out_nearest_train_distance") != NULL);
    cJSON *h = s ? cJSON_GetObjectItem(s, "label_histogram") : NULL;
    CHECK(h && cJSON_GetArraySize(h) == 3 && cJSON_GetNumberValue(cJSON_GetArrayItem(h, 2)) == 93);
    CHECK(cJSON_GetObjectItem(o, "calibration") == NULL);
    cJSON *n = cJSON_GetObjectItem(o, "nll");
    CHECK(n && cJSON_GetNumberValue(cJSON_GetObjectItem(n, "bits_per_dim")) == 1.25);
    CHECK(n && cJSON_GetNumberValue(cJSON_GetObjectItem(n, "first")) == 3);
    CHECK(n && cJSON_GetNumberValue(cJSON_GetObjectItem(n, "prior_bits_per_dim")) == 0.001);
    cJSON_Delete(o);
    ddpm_free(text);
    /* calibration only */
    ddpm_eval_results c = {"mnist", "calibration", &info, NULL, m, names, 2, NULL};
    CHECK_OK(ddpm_eval_results_json(&c, &text));
    o = text ? cJSON_Parse(text) : NULL;
    cJSON *cal = o ? cJSON_GetObjectItem(o, "calibration") : NULL;
    CHECK(cal && cJSON_GetArraySize(cal) == 2);
    cJSON *row = cal ? cJSON_GetArrayItem(cal, 1) : NULL;
    CHECK(row && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(row, "name")), "training images") == 0);
    CHECK(row && cJSON_GetNumberValue(cJSON_GetObjectItem(row, "label_agreement")) == 0.25);
    CHECK(o && !cJSON_GetObjectItem(o, "samples") && !cJSON_GetObjectItem(o, "nll"));
    cJSON_Delete(o);
    ddpm_free(text);
    c.cal_names = NULL;
    CHECK_FAIL(ddpm_eval_results_json(&c, &text), DDPM_ERR_INVALID_ARG);
    CHECK(text == NULL);
}

int main(void) {
    test_stats();
    test_frechet();
    test_nearest();
    test_bpd();
    test_results_json();
    return dd_test_finish("test_eval_metrics");
}
