/* test_classifier.c — the evaluation classifier: its forward pass against a plain NCHW loop in double (PyTorch's
   layouts and flatten order), the softmax cross-entropy and ReLU pieces exactly, the analytic gradient against
   central differences, training on a synthetic set of squares and bars, results independent of N and the thread
   count, the save/load round trip, and malformed files refused with a message naming the problem. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/classifier.h"
#include "testutil.h"


#define F DDPM_CLASSIFIER_FEATURES

/* A small deterministic generator for test inputs. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* Offsets of the eight tensors for a classifier of C channels, size S, K classes (tensor order). */
static void offsets(int C, int S, int K, int64_t off[9]) {
    const int64_t F1 = 64LL * (S / 4) * (S / 4);
    const int64_t n[8] = {32LL * C * 9, 32, 64 * 32 * 9, 64, F * F1, F, (int64_t)K * F, K};
    off[0] = 0;
    for (int i = 0; i < 8; i++) off[i + 1] = off[i] + n[i];
}

/* ------------------------------------------------------------------ reference forward (NCHW, double) */

static void ref_conv_relu(double *out, const double *in, const float *w, const float *b, int C, int OC, int S) {
    for (int o = 0; o < OC; o++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double s = b[o];
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = y + ky - 1, ix = x + kx - 1;
                            if (iy < 0 || ix < 0 || iy >= S || ix >= S) continue;
                            s += (double)w[((o * C + c) * 3 + ky) * 3 + kx] * in[(c * S + iy) * S + ix];
                        }
                out[(o * S + y) * S + x] = s > 0 ? s : 0;
            }
}

static void ref_pool(double *out, const double *in, int C, int S) {
    const int H = S / 2;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < H; x++) {
                double m = in[(c * S + 2 * y) * S + 2 * x];
                for (int t = 1; t < 4; t++) {
                    double v = in[(c * S + 2 * y + t / 2) * S + 2 * x + t % 2];
                    if (v > m) m = v;
                }
                out[(c * H + y) * H + x] = m;
            }
}

/* One image x [C, S, S] -> features [F] and logits [K], straight from the PyTorch module's definition. */
static void ref_forward(const float *p, int C, int S, int K, const float *x, double *feat, double *logits) {
    int64_t off[9];
    offsets(C, S, K, off);
    const int S2 = S / 2, S4 = S / 4, F1 = 64 * S4 * S4;
    double *in = malloc(sizeof(double) * (size_t)C * S * S), *a1 = malloc(sizeof(double) * 32 * (size_t)S * S);
    double *p1 = malloc(sizeof(double) * 32 * (size_t)S2 * S2), *a2 = malloc(sizeof(double) * 64 * (size_t)S2 * S2);
    double *p2 = malloc(sizeof(double) * (size_t)F1);
    for (int i = 0; i < C * S * S; i++) in[i] = x[i];
    ref_conv_relu(a1, in, p + off[0], p + off[1], C, 32, S);
    ref_pool(p1, a1, 32, S);
    ref_conv_relu(a2, p1, p + off[2], p + off[3], 32, 64, S2);
    ref_pool(p2, a2, 64, S2);   /* [64, S4, S4]: torch.flatten order */
    for (int j = 0; j < F; j++) {
        double s = p[off[5] + j];
        for (int i = 0; i < F1; i++) s += (double)p[off[4] + (int64_t)j * F1 + i] * p2[i];
        feat[j] = s > 0 ? s : 0;
    }
    for (int k = 0; k < K; k++) {
        double s = p[off[7] + k];
        for (int j = 0; j < F; j++) s += (double)p[off[6] + k * F + j] * feat[j];
        logits[k] = s;
    }
    free(in), free(a1), free(p1), free(a2), free(p2);
}

static void test_forward_reference(void) {
    enum { C = 3, S = 8, K = 5, N = 3 };
    ddpm_classifier *c = NULL;
    CHECK_OK(ddpm_classifier_create(C, S, K, 11, &c));
    if (!c) return;
    ddpm_classifier_info info;
    ddpm_classifier_get_info(c, &info);
    int64_t off[9], P = 0;
    offsets(C, S, K, off);
    float *p = dd_classifier_params(c, &P);
    CHECK(info.channels == C && info.size == S && info.num_classes == K && info.feature_dim == F);
    CHECK(info.num_params == off[8] && P == off[8] && info.test_accuracy < 0 && info.dataset[0] == 0);
    /* PyTorch's default init bounds: 1/sqrt(fan_in) */
    const double fan[8] = {C * 9, C * 9, 288, 288, 64 * 4, 64 * 4, F, F};
    for (int t = 0; t < 8; t++) {
        double mx = 0;
        for (int64_t i = off[t]; i < off[t + 1]; i++) mx = fmax(mx, fabs(p[i]));
        CHECK_MSG(mx <= 1 / sqrt(fan[t]) && mx > 0.8 / sqrt(fan[t]), "tensor %d: max |w| %g, bound %g", t, mx,
                  1 / sqrt(fan[t]));
    }
    /* larger weights than the init so that the logits are not all tiny */
    for (int64_t i = 0; i < P; i++) p[i] *= 3.0f;
    float x[N * C * S * S], feat[N * F], probs[N * K];
    for (int i = 0; i < N * C * S * S; i++) x[i] = (float)(2 * urand() - 1);
    CHECK_OK(ddpm_classifier_apply(c, x, N, feat, probs));
    for (int n = 0; n < N; n++) {
        double rf[F], rl[K], rp[K], mf[F], mp[K], mx;
        ref_forward(p, C, S, K, x + n * C * S * S, rf, rl);
        mx = rl[0];
        for (int k = 1; k < K; k++) mx = fmax(mx, rl[k]);
        double s = 0;
        for (int k = 0; k < K; k++) s += (rp[k] = exp(rl[k] - mx));
        for (int k = 0; k < K; k++) {
            rp[k] /= s;
            mp[k] = probs[n * K + k];
        }
        for (int j = 0; j < F; j++) mf[j] = feat[n * F + j];
        CHECK(dd_check_close("features vs the NCHW reference", mf, rf, F, 1e-4, 1.0));
        CHECK(dd_check_close("probabilities vs the NCHW reference", mp, rp, K, 1e-4, 1.0));
    }
    ddpm_classifier_free(c);
}

/* ------------------------------------------------------------------ pieces */

static void test_pieces(void) {
    /* ReLU: exact */
    float v[6] = {-2.0f, -0.0f, 0.0f, 1e-30f, 3.5f, -1e-30f}, d[6] = {1, 2, 3, 4, 5, 6};
    dd_classifier_relu_forward(v, 6);
    const float want[6] = {0, 0, 0, 1e-30f, 3.5f, 0}, dwant[6] = {0, 0, 0, 4, 5, 0};
    CHECK(memcmp(v, want, sizeof v) == 0);
    dd_classifier_relu_backward(d, v, 6);
    CHECK(memcmp(d, dwant, sizeof d) == 0);

    /* cross-entropy: closed forms */
    const int K = 4, n = 3;
    double z[12] = {0, 0, 0, 0, 1000, 0, 0, 0, 0.5, -1.25, 2, 0.75};
    int32_t y[3] = {2, 0, 1};
    int right = -1;
    double loss = dd_classifier_xent_f64(z, y, 1, K, NULL, &right);
    CHECK_MSG(fabs(loss - log(4.0)) < 1e-15, "uniform logits: %.17g vs log 4", loss);
    CHECK(right == 0);   /* ties go to class 0, the label is 2 */
    loss = dd_classifier_xent_f64(z + 4, y + 1, 1, K, NULL, &right);
    CHECK(loss == 0 && right == 1);   /* large logits do not overflow */
    /* gradient against central differences in double */
    double g[12];
    loss = dd_classifier_xent_f64(z, y, n, K, g, &right);
    CHECK(isfinite(loss) && right == 1);
    double mx = 0;
    for (int i = 0; i < 12; i++) {
        if (i >= 4 && i < 8) continue;   /* the saturated row: no useful differences */
        const double h = 1e-6, keep = z[i];
        z[i] = keep + h;
        double lp = dd_classifier_xent_f64(z, y, n, K, NULL, NULL);
        z[i] = keep - h;
        double lm = dd_classifier_xent_f64(z, y, n, K, NULL, NULL);
        z[i] = keep;
        mx = fmax(mx, fabs((lp - lm) / (2 * h) - g[i]));
    }
    CHECK_MSG(mx < 1e-9, "cross-entropy gradient vs differences: max error %g", mx);
    /* the rows of p - onehot sum to 0 */
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += g[r * K + k];
        CHECK(fabs(s) < 1e-15);
    }
}

/* ------------------------------------------------------------------ gradient check */

/* Central difference of the loss along d (params or input) against the analytic directional derivative. */
static void directional(ddpm_classifier *c, const char *what, float *base, const float *g, int64_t lo, int64_t hi,
                        float *x, const int32_t *labels, int n) {
    int64_t len = hi - lo;
    float *keep = malloc(sizeof(float) * (size_t)len);
    double *dir = malloc(sizeof(double) * (size_t)len);
    memcpy(keep, base + lo, sizeof(float) * (size_t)len);
    double dot = 0;
    for (int64_t i = 0; i < len; i++) {
        dir[i] = (urand() * 2.0 - 0.5) * g[lo + i];   /* weighted towards the gradient, not parallel to it */
        dot += dir[i] * g[lo + i];
    }
    if (!(dot > 0)) {
        CHECK_MSG(0, "%s: zero gradient", what);
        free(keep), free(dir);
        return;
    }
    const double eps = 2e-3 / dot;   /* a loss change of about 2e-3 */
    double lp = 0, lm = 0;
    for (int64_t i = 0; i < len; i++) base[lo + i] = (float)(keep[i] + eps * dir[i]);
    CHECK_OK(dd_classifier_loss_grad(c, x, labels, n, &lp, NULL, NULL));
    for (int64_t i = 0; i < len; i++) base[lo + i] = (float)(keep[i] - eps * dir[i]);
    CHECK_OK(dd_classifier_loss_grad(c, x, labels, n, &lm, NULL, NULL));
    memcpy(base + lo, keep, sizeof(float) * (size_t)len);
    const double fd = (lp - lm) / (2 * eps);
    printf("  gradient along %-14s analytic %.6e, differences %.6e, relative error %.1e\n", what, dot, fd,
           fabs(fd - dot) / fabs(dot));
    CHECK_MSG(fabs(fd - dot) <= 0.03 * fabs(dot), "%s: directional derivative %.6g, differences %.6g", what, dot, fd);
    free(keep), free(dir);
}

static void test_gradients(void) {
    enum { C = 3, S = 8, K = 4, N = 6 };
    static const char *const names[8] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                         "fc1.weight",   "fc1.bias",   "fc2.weight",   "fc2.bias"};
    ddpm_classifier *c = NULL;
    CHECK_OK(ddpm_classifier_create(C, S, K, 3, &c));
    if (!c) return;
    int64_t P = 0, off[9];
    offsets(C, S, K, off);
    float *p = dd_classifier_params(c, &P);
    for (int64_t i = 0; i < P; i++) p[i] *= 2.0f;   /* logits of order 1 */
    float x[N * C * S * S], gx[N * C * S * S];
    int32_t labels[N];
    for (int i = 0; i < N * C * S * S; i++) x[i] = (float)(2 * urand() - 1);
    for (int i = 0; i < N; i++) labels[i] = i % K;
    float *g = malloc(sizeof(float) * (size_t)P);
    double loss = 0;
    CHECK_OK(dd_classifier_loss_grad(c, x, labels, N, &loss, g, gx));
    CHECK_MSG(loss > 0.5 && loss < 5, "loss %g", loss);
    for (int t = 0; t < 8; t++) directional(c, names[t], p, g, off[t], off[t + 1], x, labels, N);
    for (int r = 0; r < 3; r++) directional(c, "all parameters", p, g, 0, P, x, labels, N);
    for (int r = 0; r < 2; r++) directional(c, "the input", x, gx, 0, N * C * S * S, x, labels, N);
    /* the gradient of a batch is the mean of the per-image gradients */
    float *g1 = malloc(sizeof(float) * (size_t)P);
    double *sum = calloc((size_t)P, sizeof(double)), *gd = malloc(sizeof(double) * (size_t)P);
    for (int i = 0; i < N; i++) {
        double l1;
        CHECK_OK(dd_classifier_loss_grad(c, x + i * C * S * S, labels + i, 1, &l1, g1, NULL));
        for (int64_t k = 0; k < P; k++) sum[k] += g1[k] / (double)N;
    }
    for (int64_t k = 0; k < P; k++) gd[k] = g[k];
    CHECK(dd_check_close("batch gradient vs mean of image gradients", gd, sum, (size_t)P, 1e-4, 0.0));
    free(g), free(g1), free(sum), free(gd);
    ddpm_classifier_free(c);
}

/* ------------------------------------------------------------------ synthetic data and training */

/* 16x16 gray images of three classes at random places on a noisy dark background: 0 a 4x4 square, 1 a 2x8
   horizontal bar, 2 an 8x2 vertical bar. */
static void synth(ddpm_dataset *ds, int64_t count, int S) {
    memset(ds, 0, sizeof *ds);
    ds->count = count;
    ds->channels = 1;
    ds->height = ds->width = S;
    ds->num_classes = 3;
    ds->pixels = malloc((size_t)count * S * S);
    ds->labels = malloc(sizeof(int32_t) * (size_t)count);
    for (int64_t i = 0; i < count; i++) {
        uint8_t *p = ds->pixels + i * S * S;
        const int k = (int)(urand() * 3);
        const int h = k == 0 ? 4 : k == 1 ? 2 : 8, w = k == 0 ? 4 : k == 1 ? 8 : 2;
        const int y0 = (int)(urand() * (S - h + 1)), x0 = (int)(urand() * (S - w + 1));
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int in = y >= y0 && y < y0 + h && x >= x0 && x < x0 + w;
                p[y * S + x] = (uint8_t)(in ? 180 + urand() * 75 : urand() * 60);
            }
        ds->labels[i] = k;
    }
}

static void synth_free(ddpm_dataset *ds) {
    free(ds->pixels);
    free(ds->labels);
}

typedef struct {
    int calls;
    int64_t last_step, steps;
    double last_loss, first_loss;
    int stop_at;   /* return INTERRUPTED at this call (0: never) */
} cb_state;

static ddpm_status on_step(void *user, int epoch, int64_t step, int64_t steps, double loss, double acc) {
    cb_state *s = user;
    (void)epoch;
    CHECK(step > s->last_step && step <= steps && isfinite(loss) && acc >= 0 && acc <= 1);
    if (s->calls == 0) s->first_loss = loss;
    s->calls++;
    s->last_step = step;
    s->steps = steps;
    s->last_loss = loss;
    return s->stop_at && s->calls == s->stop_at ? DDPM_ERR_INTERRUPTED : DDPM_OK;
}

static ddpm_classifier *trained = NULL;   /* the classifier of test_training, used below */

static void test_training(void) {
    const int S = 16;
    ddpm_dataset tr, te;
    synth(&tr, 320, S);
    synth(&te, 200, S);
    CHECK_OK(ddpm_classifier_create(1, S, 3, 0, &trained));
    if (!trained) return;
    ddpm_classifier_train_config cfg;
    ddpm_classifier_train_config_default(&cfg);
    CHECK(cfg.epochs == 4 && cfg.batch == 128 && cfg.lr == 2e-3 && cfg.seed == 0 && cfg.report_every == 50);
    cfg.epochs = 16;
    cfg.batch = 32;
    cfg.report_every = 7;
    cb_state cs = {0};
    cfg.on_step = on_step;
    cfg.user = &cs;
    double acc0 = -1, acc = -1, acc_tr = -1;
    CHECK_OK(ddpm_classifier_accuracy(trained, &te, &acc0));
    CHECK_OK(ddpm_classifier_train(trained, &tr, &cfg));
    CHECK_OK(ddpm_classifier_accuracy(trained, &te, &acc));
    CHECK_OK(ddpm_classifier_accuracy(trained, &tr, &acc_tr));
    printf("synthetic: %lld steps, loss %.4f -> %.4f, test accuracy %.4f -> %.4f, train %.4f\n",
           (long long)cs.steps, cs.first_loss, cs.last_loss, acc0, acc, acc_tr);
    CHECK(cs.steps == 16 * 10 && cs.last_step == cs.steps);
    int want_calls = 0;   /* every 7th step and every epoch end (10 steps each) */
    for (int s = 1; s <= 160; s++) want_calls += s % 7 == 0 || s % 10 == 0;
    CHECK_MSG(cs.calls == want_calls, "%d progress calls, want %d", cs.calls, want_calls);
    CHECK(acc >= 0.99 && acc_tr >= 0.99);
    CHECK(cs.last_loss < 0.1);

    /* deterministic: the same run twice gives the same bits; a stop from the callback is reported */
    ddpm_classifier *a = NULL, *b = NULL;
    CHECK_OK(ddpm_classifier_create(1, S, 3, 5, &a));
    CHECK_OK(ddpm_classifier_create(1, S, 3, 5, &b));
    cfg.epochs = 1;
    cfg.on_step = NULL;
    cfg.seed = 9;
    CHECK_OK(ddpm_classifier_train(a, &tr, &cfg));
    CHECK_OK(ddpm_classifier_train(b, &tr, &cfg));
    int64_t P = 0;
    float *pa = dd_classifier_params(a, &P), *pb = dd_classifier_params(b, NULL);
    CHECK(memcmp(pa, pb, sizeof(float) * (size_t)P) == 0);
    cb_state stop = {0};
    stop.stop_at = 1;
    cfg.on_step = on_step;
    cfg.user = &stop;
    CHECK_FAIL(ddpm_classifier_train(b, &tr, &cfg), DDPM_ERR_INTERRUPTED);
    CHECK(stop.calls == 1 && stop.last_step == 7);

    /* refused configurations and data */
    ddpm_classifier_train_config bad = cfg;
    bad.epochs = 0;
    CHECK_FAIL(ddpm_classifier_train(a, &tr, &bad), DDPM_ERR_INVALID_ARG);
    bad = cfg;
    bad.lr = NAN;
    CHECK_FAIL(ddpm_classifier_train(a, &tr, &bad), DDPM_ERR_INVALID_ARG);
    bad = cfg;
    bad.batch = 0;
    CHECK_FAIL(ddpm_classifier_train(a, &tr, &bad), DDPM_ERR_INVALID_ARG);
    ddpm_dataset other = tr;
    other.height = other.width = 8;
    CHECK_FAIL(ddpm_classifier_train(a, &other, &cfg), DDPM_ERR_INVALID_ARG);
    other = tr;
    other.labels = NULL;
    CHECK_FAIL(ddpm_classifier_accuracy(a, &other, &acc), DDPM_ERR_INVALID_ARG);
    tr.labels[5] = 3;
    CHECK_FAIL(ddpm_classifier_train(a, &tr, &cfg), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "label 3") != NULL);
    ddpm_classifier_free(a);
    ddpm_classifier_free(b);
    synth_free(&tr);
    synth_free(&te);
}

/* ------------------------------------------------------------------ apply: chunks and threads */

static void test_apply_invariance(void) {
    ddpm_classifier *c = trained;
    if (!c) return;
    const int S = 16, D = S * S, N = 300, K = 3;   /* two chunks of 256 */
    float *x = malloc(sizeof(float) * N * D), *fa = malloc(sizeof(float) * N * F), *pa = malloc(sizeof(float) * N * K);
    float *fb = malloc(sizeof(float) * N * F), *pb = malloc(sizeof(float) * N * K);
    for (int i = 0; i < N * D; i++) x[i] = (float)(2 * urand() - 1);
    CHECK_OK(ddpm_classifier_apply(c, x, N, fa, pa));
    /* image by image, and 7 at a time */
    for (int i = 0; i < 9; i++) CHECK_OK(ddpm_classifier_apply(c, x + i * D, 1, fb + i * F, pb + i * K));
    CHECK(memcmp(fa, fb, sizeof(float) * 9 * F) == 0 && memcmp(pa, pb, sizeof(float) * 9 * K) == 0);
    for (int i0 = 0; i0 < N; i0 += 7) {
        int n = N - i0 < 7 ? N - i0 : 7;
        CHECK_OK(ddpm_classifier_apply(c, x + i0 * D, n, fb + i0 * F, NULL));
    }
    CHECK(memcmp(fa, fb, sizeof(float) * N * F) == 0);
    /* only probabilities */
    CHECK_OK(ddpm_classifier_apply(c, x + 250 * D, 50, NULL, pb));
    CHECK(memcmp(pa + 250 * K, pb, sizeof(float) * 50 * K) == 0);
    /* thread counts */
    const int nt = ddpm_get_threads();
    ddpm_set_threads(1);
    CHECK_OK(ddpm_classifier_apply(c, x, N, fb, pb));
    CHECK(memcmp(fa, fb, sizeof(float) * N * F) == 0 && memcmp(pa, pb, sizeof(float) * N * K) == 0);
    ddpm_set_threads(2);
    CHECK_OK(ddpm_classifier_apply(c, x, N, fb, pb));
    CHECK(memcmp(fa, fb, sizeof(float) * N * F) == 0 && memcmp(pa, pb, sizeof(float) * N * K) == 0);
    ddpm_set_threads(nt);
    /* the outputs themselves */
    int neg = 0, badsum = 0;
    for (int i = 0; i < N * F; i++) neg += fa[i] < 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += pa[i * K + k];
        badsum += fabs(s - 1) > 1e-5;
    }
    CHECK(neg == 0 && badsum == 0);
    CHECK_OK(ddpm_classifier_apply(c, x, 0, fb, pb));
    CHECK_FAIL(ddpm_classifier_apply(c, NULL, 2, fb, pb), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_classifier_apply(c, x, -1, fb, pb), DDPM_ERR_INVALID_ARG);
    free(x), free(fa), free(pa), free(fb), free(pb);
}

/* ------------------------------------------------------------------ save / load */

static void test_round_trip(const char *dir) {
    ddpm_classifier *c = trained;
    if (!c) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/cls.safetensors", dir);
    ddpm_classifier_set_provenance(c, "synthetic-squares-and-bars", 0.995);
    CHECK_OK(ddpm_classifier_save(c, path));
    ddpm_classifier *d = NULL;
    CHECK_OK(ddpm_classifier_load(path, &d));
    if (!d) return;
    ddpm_classifier_info a, b;
    ddpm_classifier_get_info(c, &a);
    ddpm_classifier_get_info(d, &b);
    CHECK(a.channels == b.channels && a.size == b.size && a.num_classes == b.num_classes &&
          a.feature_dim == b.feature_dim && a.num_params == b.num_params && strcmp(a.dataset, b.dataset) == 0 &&
          a.test_accuracy == b.test_accuracy);
    CHECK(strcmp(b.dataset, "synthetic-squares-and-bars") == 0 && b.test_accuracy == 0.995);
    int64_t P = 0;
    CHECK(memcmp(dd_classifier_params(c, &P), dd_classifier_params(d, NULL), sizeof(float) * (size_t)P) == 0);
    const int N = 5, D = 256;
    float x[5 * 256], f1[5 * F], f2[5 * F], p1[15], p2[15];
    for (int i = 0; i < N * D; i++) x[i] = (float)(2 * urand() - 1);
    CHECK_OK(ddpm_classifier_apply(c, x, N, f1, p1));
    CHECK_OK(ddpm_classifier_apply(d, x, N, f2, p2));
    CHECK(memcmp(f1, f2, sizeof f1) == 0 && memcmp(p1, p2, sizeof p1) == 0);
    /* the metadata as documented */
    ddpm_safetensors *st = NULL;
    CHECK_OK(ddpm_st_open(path, &st));
    const char *meta = st ? ddpm_st_metadata_get(st, "ddpm_classifier") : NULL;
    cJSON *j = meta ? cJSON_Parse(meta) : NULL;
    CHECK(j != NULL);
    if (j) {
        CHECK(cJSON_GetObjectItem(j, "channels")->valuedouble == 1);
        CHECK(cJSON_GetObjectItem(j, "size")->valuedouble == 16);
        CHECK(cJSON_GetObjectItem(j, "classes")->valuedouble == 3);
        CHECK(strcmp(cJSON_GetObjectItem(j, "architecture")->valuestring, "conv32-conv64-fc128") == 0);
        CHECK(cJSON_GetObjectItem(j, "test_accuracy")->valuedouble == 0.995);
        cJSON *t = cJSON_GetObjectItem(j, "training");
        CHECK(t && cJSON_GetObjectItem(t, "epochs")->valuedouble == 16 && cJSON_GetObjectItem(t, "batch")->valuedouble == 32);
        cJSON_Delete(j);
    }
    for (int i = 0; st && i < ddpm_st_count(st); i++) CHECK(ddpm_st_at(st, i)->dtype == DDPM_DTYPE_F32);
    ddpm_st_close(st);
    /* unknown provenance stays unknown */
    ddpm_classifier_set_provenance(d, NULL, -1);
    CHECK_OK(ddpm_classifier_save(d, path));
    ddpm_classifier_free(d);
    d = NULL;
    CHECK_OK(ddpm_classifier_load(path, &d));
    ddpm_classifier_get_info(d, &b);
    CHECK(b.dataset[0] == 0 && b.test_accuracy < 0);
    ddpm_classifier_free(d);
}

/* ------------------------------------------------------------------ malformed files */

typedef struct {
    const char *meta;          /* metadata JSON (NULL: none) */
    const char *skip;          /* tensor left out */
    const char *reshape;       /* tensor written with a wrong shape */
    const char *as_i32;        /* tensor written as I32 */
    const char *as_f16;        /* "*" writes every tensor as F16 */
    const char *extra;         /* an extra tensor */
    int nan_in;                /* a NaN in fc2.weight */
} variant;

static void write_variant(const char *path, ddpm_classifier *c, const variant *v) {
    static const char *const names[8] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                         "fc1.weight",   "fc1.bias",   "fc2.weight",   "fc2.bias"};
    const int C = 1, S = 16, K = 3;
    const int64_t F1 = 64 * 4 * 4;
    const int64_t shapes[8][4] = {{32, C, 3, 3}, {32}, {64, 32, 3, 3}, {64}, {F, F1}, {F}, {K, F}, {K}};
    const int nd[8] = {4, 1, 4, 1, 2, 1, 2, 1};
    int64_t off[9];
    offsets(C, S, K, off);
    float *p = dd_classifier_params(c, NULL);
    ddpm_st_writer *w = NULL;
    CHECK_OK(ddpm_st_writer_create(&w));
    if (v->meta) CHECK_OK(ddpm_st_writer_set_metadata(w, "ddpm_classifier", v->meta));
    for (int t = 0; t < 8; t++) {
        if (v->skip && strcmp(v->skip, names[t]) == 0) continue;
        int64_t shape[4];
        memcpy(shape, shapes[t], sizeof shape);
        int ndim = nd[t];
        const int64_t n = off[t + 1] - off[t];
        if (v->reshape && strcmp(v->reshape, names[t]) == 0) {   /* same count, other shape */
            shape[0] = n;
            ndim = 1;
            if (nd[t] == 1) {
                shape[0] = 1;
                shape[1] = n;
                ndim = 2;
            }
        }
        if (v->as_i32 && strcmp(v->as_i32, names[t]) == 0) {
            int32_t *q = calloc((size_t)n, sizeof(int32_t));
            CHECK_OK(ddpm_st_writer_add(w, names[t], DDPM_DTYPE_I32, ndim, shape, q));
            free(q);
        } else if (v->as_f16) {
            uint16_t *q = malloc(sizeof(uint16_t) * (size_t)n);
            for (int64_t i = 0; i < n; i++) q[i] = ddpm_f32_to_f16(p[off[t] + i]);
            CHECK_OK(ddpm_st_writer_add(w, names[t], DDPM_DTYPE_F16, ndim, shape, q));
            free(q);
        } else if (v->nan_in && t == 6) {
            float *q = malloc(sizeof(float) * (size_t)n);
            memcpy(q, p + off[t], sizeof(float) * (size_t)n);
            q[17] = NAN;
            CHECK_OK(ddpm_st_writer_add(w, names[t], DDPM_DTYPE_F32, ndim, shape, q));
            free(q);
        } else {
            CHECK_OK(ddpm_st_writer_add(w, names[t], DDPM_DTYPE_F32, ndim, shape, p + off[t]));
        }
    }
    if (v->extra) {
        const int64_t one = 1;
        const float z = 0;
        CHECK_OK(ddpm_st_writer_add(w, v->extra, DDPM_DTYPE_F32, 1, &one, &z));
    }
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
}

static void expect_refused(const char *dir, const char *what, const variant *v, ddpm_status want, const char *needle) {
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    write_variant(path, trained, v);
    ddpm_classifier *c = (ddpm_classifier *)1;
    ddpm_status st = ddpm_classifier_load(path, &c);
    CHECK_MSG(st == want && c == NULL, "%s: got %s (want %s): %s", what, ddpm_status_name(st), ddpm_status_name(want),
              ddpm_last_error());
    CHECK_MSG(strstr(ddpm_last_error(), needle) != NULL, "%s: message '%s' does not name '%s'", what,
              ddpm_last_error(), needle);
    if (st == DDPM_OK) ddpm_classifier_free(c);
}

static void test_malformed(const char *dir) {
    if (!trained) return;
    const char *good = "{\"channels\":1,\"size\":16,\"classes\":3,\"dataset\":\"x\",\"test_accuracy\":0.5}";
    variant v;
    memset(&v, 0, sizeof v);
    v.meta = good;
    /* a good one (also in F16) loads */
    char path[1200];
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    write_variant(path, trained, &v);
    ddpm_classifier *c = NULL;
    CHECK_OK(ddpm_classifier_load(path, &c));
    ddpm_classifier_free(c);
    c = NULL;
    v.as_f16 = "*";
    write_variant(path, trained, &v);
    CHECK_OK(ddpm_classifier_load(path, &c));
    if (c) {
        float x[2 * 256], p1[6], p2[6];
        for (int i = 0; i < 512; i++) x[i] = (float)(2 * urand() - 1);
        CHECK_OK(ddpm_classifier_apply(trained, x, 2, NULL, p1));
        CHECK_OK(ddpm_classifier_apply(c, x, 2, NULL, p2));
        for (int i = 0; i < 6; i++) CHECK_MSG(fabs(p1[i] - p2[i]) < 0.02, "F16 weights: %g vs %g", p1[i], p2[i]);
        ddpm_classifier_free(c);
    }
    v.as_f16 = NULL;

    v.skip = "fc2.bias";
    expect_refused(dir, "missing tensor", &v, DDPM_ERR_FORMAT, "'fc2.bias' is missing");
    v.skip = NULL;
    v.reshape = "fc1.weight";
    expect_refused(dir, "wrong shape", &v, DDPM_ERR_FORMAT, "'fc1.weight' has shape [131072]");
    v.reshape = "conv2.bias";
    expect_refused(dir, "wrong shape (bias)", &v, DDPM_ERR_FORMAT, "'conv2.bias' has shape [1, 64]");
    v.reshape = NULL;
    v.as_i32 = "conv1.bias";
    expect_refused(dir, "integer tensor", &v, DDPM_ERR_FORMAT, "'conv1.bias' has dtype I32");
    v.as_i32 = NULL;
    v.extra = "fc3.weight";
    expect_refused(dir, "extra tensor", &v, DDPM_ERR_FORMAT, "'fc3.weight'");
    v.extra = NULL;
    v.nan_in = 1;
    expect_refused(dir, "NaN weight", &v, DDPM_ERR_FORMAT, "'fc2.weight' holds a non-finite value");
    v.nan_in = 0;

    /* metadata */
    v.meta = NULL;
    expect_refused(dir, "no metadata", &v, DDPM_ERR_FORMAT, "no 'ddpm_classifier' metadata");
    v.meta = "{\"channels\":1,\"size\":16,";
    expect_refused(dir, "truncated JSON", &v, DDPM_ERR_FORMAT, "not valid JSON");
    v.meta = "[1, 2]";
    expect_refused(dir, "not an object", &v, DDPM_ERR_FORMAT, "must be a JSON object");
    v.meta = "{\"size\":16,\"classes\":3}";
    expect_refused(dir, "no channels", &v, DDPM_ERR_FORMAT, "no field 'channels'");
    v.meta = "{\"channels\":2,\"size\":16,\"classes\":3}";
    expect_refused(dir, "2 channels", &v, DDPM_ERR_FORMAT, "channels = 2");
    v.meta = "{\"channels\":1,\"size\":18,\"classes\":3}";
    expect_refused(dir, "size 18", &v, DDPM_ERR_FORMAT, "size = 18 must be a multiple of 4");
    v.meta = "{\"channels\":1,\"size\":16.5,\"classes\":3}";
    expect_refused(dir, "fractional size", &v, DDPM_ERR_FORMAT, "'size' must be an integer");
    v.meta = "{\"channels\":1,\"size\":16,\"classes\":0}";
    expect_refused(dir, "0 classes", &v, DDPM_ERR_FORMAT, "classes = 0");
    v.meta = "{\"channels\":1,\"size\":16,\"classes\":\"3\"}";
    expect_refused(dir, "string classes", &v, DDPM_ERR_FORMAT, "'classes' must be an integer");
    v.meta = "{\"channels\":1,\"size\":16,\"classes\":3,\"test_accuracy\":1.5}";
    expect_refused(dir, "accuracy 1.5", &v, DDPM_ERR_FORMAT, "'test_accuracy'");
    v.meta = "{\"channels\":1,\"size\":16,\"classes\":3,\"dataset\":7}";
    expect_refused(dir, "numeric dataset", &v, DDPM_ERR_FORMAT, "'dataset'");
    v.meta = "{\"channels\":1,\"size\":16,\"classes\":3,\"architecture\":\"resnet18\"}";
    expect_refused(dir, "other architecture", &v, DDPM_ERR_UNSUPPORTED, "resnet18");
    /* metadata that disagrees with the tensors: the tensor is named */
    v.meta = "{\"channels\":1,\"size\":16,\"classes\":4}";
    expect_refused(dir, "classes vs fc2", &v, DDPM_ERR_FORMAT, "'fc2.weight' has shape [3, 128]");
    v.meta = "{\"channels\":3,\"size\":16,\"classes\":3}";
    expect_refused(dir, "channels vs conv1", &v, DDPM_ERR_FORMAT, "'conv1.weight' has shape [32, 1, 3, 3]");

    /* not a file at all */
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    CHECK_FAIL(ddpm_classifier_load(path, &c), DDPM_ERR_IO);
    snprintf(path, sizeof path, "%s/garbage.safetensors", dir);
    dd_write_bytes(path, "not a safetensors file", 22);
    CHECK_FAIL(ddpm_classifier_load(path, &c), DDPM_ERR_FORMAT);
    /* bad creation arguments */
    CHECK_FAIL(ddpm_classifier_create(2, 16, 3, 0, &c), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_classifier_create(1, 30, 3, 0, &c), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_classifier_create(1, 16, 0, 0, &c), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_classifier_create(1, 16, 1001, 0, &c), DDPM_ERR_INVALID_ARG);
    /* saving where it cannot: the old file is untouched */
    snprintf(path, sizeof path, "%s/no/such/dir/c.safetensors", dir);
    CHECK_FAIL(ddpm_classifier_save(trained, path), DDPM_ERR_IO);
}

int main(void) {
    test_pieces();
    test_forward_reference();
    test_gradients();
    test_training();
    test_apply_invariance();
    const char *dir = dd_test_tmpdir("classifier");
    test_round_trip(dir);
    test_malformed(dir);
    ddpm_classifier_free(trained);
    dd_test_remove_dir(dir);
    return dd_test_finish("test_classifier");
}
