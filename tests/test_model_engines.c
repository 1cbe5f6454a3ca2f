/* test_model_engines.c — the fast engine against the reference engine on whole networks (mnist preset with
   random weights, BasicUNet): forward, every gradient, dx; dropout in train and eval mode; the sampler callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* Fast vs reference on a batch of 2: forward within 1e-4 relative, every parameter gradient within 1e-4 of
   the larger of its own scale and 1e-3 of the largest gradient (mathematically zero gradients are rounding
   noise in both), dx within 1e-4 relative. */
static void engines_agree_tol(const char *spec, ddpm_engine engine, double tol, double gtol, double gfloor) {
    const int N = 2;
    ddpm_model *fast = dd_test_model(spec, 7, engine, 1, N);
    ddpm_model *ref = dd_test_model(spec, 7, DDPM_ENGINE_REFERENCE, 1, N);
    ddpm_model_info info;
    ddpm_model_get_info(fast, &info);
    size_t D = (size_t)info.in_channels * (size_t)info.sample_size * (size_t)info.sample_size;
    size_t Dout = (size_t)info.out_channels * (size_t)info.sample_size * (size_t)info.sample_size;
    float *x = malloc(sizeof(float) * N * D), *target = malloc(sizeof(float) * N * Dout);
    float *y1 = malloc(sizeof(float) * N * Dout), *y2 = malloc(sizeof(float) * N * Dout);
    float *d1 = malloc(sizeof(float) * N * Dout), *d2 = malloc(sizeof(float) * N * Dout);
    float *dx1 = malloc(sizeof(float) * N * D), *dx2 = malloc(sizeof(float) * N * D);
    ddpm_rng_normal_f32(11, 1, 0, x, N * D);
    ddpm_rng_normal_f32(11, 2, 0, target, N * Dout);
    float t[2] = {10.0f, 900.0f};
    CHECK_OK(ddpm_model_forward(fast, y1, x, t, NULL, N));
    CHECK_OK(ddpm_model_forward(ref, y2, x, t, NULL, N));
    double ey = max_diff(y1, y2, N * Dout) / max_abs(y2, N * Dout);
    CHECK_MSG(ey <= tol, "%s: forward relative difference %.3g", spec, ey);
    double l1 = ddpm_mse_loss(y1, target, N * Dout, d1), l2 = ddpm_mse_loss(y2, target, N * Dout, d2);
    CHECK_MSG(fabs(l1 - l2) <= 0.1 * tol * l2, "%s: loss %.9g vs %.9g", spec, l1, l2);
    ddpm_model_zero_grad(fast);
    ddpm_model_zero_grad(ref);
    CHECK_OK(ddpm_model_backward(fast, d1, dx1));
    CHECK_OK(ddpm_model_backward(ref, d2, dx2));
    const float *g1 = ddpm_model_grads(fast), *g2 = ddpm_model_grads(ref);
    double gmax = max_abs(g2, (size_t)info.num_params), worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < info.num_tensors; i++) {
        ddpm_param_info p;
        CHECK_OK(ddpm_model_param(ref, i, &p));
        double scale = fmax(max_abs(g2 + p.offset, (size_t)p.numel), gfloor * gmax);
        double e = max_diff(g1 + p.offset, g2 + p.offset, (size_t)p.numel) / scale;
        CHECK_MSG(e <= gtol, "%s: grad %s differs by %.3g (relative)", spec, p.name, e);
        if (e > worst) worst = e, worst_name = p.name;
    }
    double edx = max_diff(dx1, dx2, N * D) / max_abs(dx2, N * D);
    CHECK_MSG(edx <= gtol, "%s: dx relative difference %.3g", spec, edx);
    printf("%s %s vs reference: forward %.2e, loss %.2e, worst grad %.2e (%s), dx %.2e; training plan at batch "
           "%d: %zu bytes, reference %zu bytes\n", spec, ddpm_enum_name(DDPM_ENUM_ENGINE, engine), ey, fabs(l1 - l2) / l2, worst, worst_name, edx, N,
           ddpm_model_plan_bytes(fast), ddpm_model_plan_bytes(ref));
    ddpm_model_free(fast);
    ddpm_model_free(ref);
    free(x), free(target), free(y1), free(y2), free(d1), free(d2), free(dx1), free(dx2);
}

static void engines_agree(const char *spec) { engines_agree_tol(spec, DDPM_ENGINE_FAST, 1e-4, 1e-4, 1e-3); }

/* The bf16 engine against the reference: bf16 rounds the inputs and weights of every 3x3 convolution (8 bits of
   mantissa, fp32 accumulation), so the network agrees to about 1e-2 and its gradients to a few 1e-2 (gradients
   that are mathematically zero, as of a bias before a GroupNorm, against 3e-2 of the largest one). Skipped
   (with a message) on a CPU without AMX. */
static void bf16_agrees(const char *spec) {
    if (!ddpm_bf16_supported()) {
        printf("SKIPPED: %s bf16 vs reference: this CPU has no AMX\n", spec);
        return;
    }
    engines_agree_tol(spec, DDPM_ENGINE_BF16, 3e-2, 1e-1, 3e-2);
}

static const char *dropout_config(double p) {
    static char buf[512];
    snprintf(buf, sizeof buf, "{\"sample_size\": 8, \"in_channels\": 3, \"out_channels\": 3, \"layers_per_block\": 1, "
             "\"block_out_channels\": [8, 16], \"norm_num_groups\": 4, \"attention_head_dim\": 4, "
             "\"down_block_types\": [\"DownBlock2D\", \"AttnDownBlock2D\"], "
             "\"up_block_types\": [\"AttnUpBlock2D\", \"UpBlock2D\"], \"dropout\": %g}", p);
    return buf;
}

static ddpm_model *dropout_model(double p, int training, ddpm_engine engine) {
    const char *json = dropout_config(p);
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "dropout.json", 4, &m));
    if (!m) exit(1);
    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    pc.max_batch = 2;
    pc.training = training;
    pc.engine = engine;
    CHECK_OK(ddpm_model_prepare(m, &pc));
    return m;
}

/* Dropout: active in training plans only, a function of (seed, step), identical on both engines' masks. */
static void dropout(ddpm_engine engine) {
    const size_t n = 2 * 3 * 8 * 8;
    float x[2 * 3 * 8 * 8], a[2 * 3 * 8 * 8], b[2 * 3 * 8 * 8], c[2 * 3 * 8 * 8], e[2 * 3 * 8 * 8];
    float t[2] = {3.0f, 500.0f};
    ddpm_rng_normal_f32(12, 1, 0, x, n);
    ddpm_model *train = dropout_model(0.3, 1, engine), *eval = dropout_model(0.3, 0, engine);
    ddpm_model *none = dropout_model(0.0, 1, engine);
    ddpm_model_set_dropout_seed(train, 99, 1);
    CHECK_OK(ddpm_model_forward(train, a, x, t, NULL, 2));
    CHECK_OK(ddpm_model_forward(train, b, x, t, NULL, 2));
    CHECK(memcmp(a, b, sizeof a) == 0);                      /* same seed and step: same masks */
    ddpm_model_set_dropout_seed(train, 99, 2);
    CHECK_OK(ddpm_model_forward(train, c, x, t, NULL, 2));
    CHECK(max_diff(a, c, n) > 1e-3);                         /* another step: other masks */
    ddpm_model_set_dropout_seed(train, 100, 1);
    CHECK_OK(ddpm_model_forward(train, c, x, t, NULL, 2));
    CHECK(max_diff(a, c, n) > 1e-3);                         /* another seed: other masks */
    CHECK_OK(ddpm_model_forward(eval, e, x, t, NULL, 2));
    CHECK_OK(ddpm_model_forward(none, c, x, t, NULL, 2));
    CHECK_MSG(max_diff(e, c, n) <= 1e-6, "eval mode applies dropout (%.3g)", max_diff(e, c, n));
    CHECK(max_diff(a, e, n) > 1e-3);
    /* backward through dropout runs and gives finite gradients */
    float dout[2 * 3 * 8 * 8];
    ddpm_model_set_dropout_seed(train, 99, 1);
    CHECK_OK(ddpm_model_forward(train, a, x, t, NULL, 2));
    for (size_t i = 0; i < n; i++) dout[i] = 1e-2f * (float)((int)(i % 7) - 3);
    ddpm_model_zero_grad(train);
    CHECK_OK(ddpm_model_backward(train, dout, NULL));
    ddpm_model_info info;
    ddpm_model_get_info(train, &info);
    const float *g = ddpm_model_grads(train);
    int finite = 1;
    for (int64_t i = 0; i < info.num_params; i++) finite &= isfinite(g[i]) != 0;
    CHECK(finite && max_abs(g, (size_t)info.num_params) > 0);
    /* eval mode in a training plan: dropout off, gradients still there, and equal to the dropout-free net's */
    ddpm_model_set_train_mode(train, 0);
    CHECK_OK(ddpm_model_forward(train, a, x, t, NULL, 2));
    CHECK_MSG(max_diff(a, c, n) <= 1e-6, "eval mode in a training plan applies dropout (%.3g)", max_diff(a, c, n));
    ddpm_model_zero_grad(train);
    CHECK_OK(ddpm_model_backward(train, dout, NULL));
    ddpm_model_zero_grad(none);
    CHECK_OK(ddpm_model_forward(none, c, x, t, NULL, 2));
    CHECK_OK(ddpm_model_backward(none, dout, NULL));
    CHECK_MSG(max_diff(ddpm_model_grads(train), ddpm_model_grads(none), (size_t)info.num_params) <= 1e-6,
              "eval-mode gradients differ from the dropout-free network's");
    ddpm_model_set_train_mode(train, 1);
    ddpm_model_free(train);
    ddpm_model_free(eval);
    ddpm_model_free(none);
}

/* ddpm_model_sampler_fn splits a batch larger than max_batch; the pieces equal one forward each. */
static void sampler_fn(void) {
    ddpm_model *m = dd_test_model("tiny", 3, DDPM_ENGINE_FAST, 0, 2);
    const int64_t N = 5, D = 3 * 8 * 8;
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * D), *z = malloc(sizeof(float) * D);
    int64_t t[5] = {0, 10, 250, 999, 500};
    ddpm_rng_normal_f32(13, 1, 0, x, (size_t)(N * D));
    CHECK_OK(ddpm_model_sampler_fn(m, y, x, t, N, D));
    for (int64_t i = 0; i < N; i++) {
        float ti = (float)t[i];
        CHECK_OK(ddpm_model_forward(m, z, x + i * D, &ti, NULL, 1));
        CHECK_MSG(max_diff(z, y + i * D, (size_t)D) <= 1e-6, "sampler_fn image %lld differs", (long long)i);
    }
    CHECK_FAIL(ddpm_model_sampler_fn(m, y, x, t, N, D + 1), DDPM_ERR_INVALID_ARG);
    ddpm_model_free(m);
    free(x), free(y), free(z);
}

/* Weights stored as F16 or BF16 load as their exact float values; a missing or mis-shaped tensor is named. */
static void half_weights(void) {
    ddpm_model *a = NULL, *b = NULL;
    CHECK_OK(ddpm_model_load("tiny", 11, &a));
    CHECK_OK(ddpm_model_load("tiny", 12, &b));
    if (!a || !b) exit(1);
    ddpm_model_info info;
    ddpm_model_get_info(a, &info);
    const float *pa = ddpm_model_params(a);
    const char *dir = dd_test_tmpdir("half_weights");
    char path[1200];
    for (int kind = 0; kind < 2; kind++) {
        ddpm_dtype dt = kind == 0 ? DDPM_DTYPE_F16 : DDPM_DTYPE_BF16;
        ddpm_st_writer *w = NULL;
        CHECK_OK(ddpm_st_writer_create(&w));
        uint16_t *h = malloc(sizeof(uint16_t) * (size_t)info.num_params);
        for (int64_t i = 0; i < info.num_params; i++) h[i] = kind == 0 ? ddpm_f32_to_f16(pa[i]) : ddpm_f32_to_bf16(pa[i]);
        for (int i = 0; i < info.num_tensors; i++) {
            ddpm_param_info pi;
            CHECK_OK(ddpm_model_param(a, i, &pi));
            CHECK_OK(ddpm_st_writer_add(w, pi.name, dt, pi.ndim, pi.shape, h + pi.offset));
        }
        snprintf(path, sizeof path, "%s/w%d.safetensors", dir, kind);
        CHECK_OK(ddpm_st_writer_save(w, path));
        ddpm_st_writer_free(w);
        CHECK_OK(ddpm_model_load_weights(b, path));
        const float *pb = ddpm_model_params(b);
        int exact = 1;
        for (int64_t i = 0; i < info.num_params; i++)
            exact &= pb[i] == (kind == 0 ? ddpm_f16_to_f32(h[i]) : ddpm_bf16_to_f32(h[i]));
        CHECK_MSG(exact, "%s weights did not load as their exact values", kind == 0 ? "F16" : "BF16");
        free(h);
    }
    /* a file lacking one tensor, and one with a wrong shape */
    ddpm_param_info p0, p1;
    CHECK_OK(ddpm_model_param(a, 0, &p0));
    CHECK_OK(ddpm_model_param(a, 1, &p1));
    ddpm_st_writer *w = NULL;
    CHECK_OK(ddpm_st_writer_create(&w));
    CHECK_OK(ddpm_st_writer_add(w, p0.name, DDPM_DTYPE_F32, p0.ndim, p0.shape, pa + p0.offset));
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    ddpm_status st = ddpm_model_load_weights(b, path);
    CHECK_MSG(st != DDPM_OK && strstr(ddpm_last_error(), p1.name) != NULL, "missing tensor not named: %s",
              ddpm_last_error());
    CHECK_OK(ddpm_st_writer_create(&w));
    for (int i = 0; i < info.num_tensors; i++) {
        ddpm_param_info pi;
        CHECK_OK(ddpm_model_param(a, i, &pi));
        int64_t shape[4] = {pi.shape[0], pi.shape[1], pi.shape[2], pi.shape[3]};
        int ndim = pi.ndim;
        if (i == 0) { shape[0] = 1; for (int k = 1; k < ndim; k++) shape[0] *= pi.shape[k]; shape[0] *= pi.shape[0]; ndim = 1; }
        CHECK_OK(ddpm_st_writer_add(w, pi.name, DDPM_DTYPE_F32, ndim, shape, pa + pi.offset));
    }
    snprintf(path, sizeof path, "%s/shape.safetensors", dir);
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    st = ddpm_model_load_weights(b, path);
    CHECK_MSG(st != DDPM_OK && strstr(ddpm_last_error(), p0.name) != NULL, "mis-shaped tensor not named: %s",
              ddpm_last_error());
    ddpm_model_free(a);
    ddpm_model_free(b);
}

int main(void) {
    half_weights();
    engines_agree("mnist");
    engines_agree("basic");
    engines_agree("tiny");
    bf16_agrees("mnist");
    bf16_agrees("basic");
    bf16_agrees("tiny");
    dropout(DDPM_ENGINE_REFERENCE);
    dropout(DDPM_ENGINE_FAST);
    sampler_fn();
    /* the plan size asked about in the design notes: mnist, training, batch 64 */
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_load("mnist", 0, &m));
    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    pc.max_batch = 64;
    pc.training = 1;
    CHECK_OK(ddpm_model_prepare(m, &pc));
    size_t train64 = ddpm_model_plan_bytes(m);
    pc.training = 0;
    CHECK_OK(ddpm_model_prepare(m, &pc));
    printf("mnist plan at batch 64: training %.1f MiB, inference %.1f MiB\n", (double)train64 / 1048576.0,
           (double)ddpm_model_plan_bytes(m) / 1048576.0);
    CHECK(train64 > ddpm_model_plan_bytes(m));
    ddpm_model_free(m);
    return dd_test_finish("test_model_engines");
}
