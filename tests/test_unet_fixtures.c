/* test_unet_fixtures.c — UNet2DModel against diffusers v0.27.2 (tests/data/unet_tiny, unet_tiny_class): forward
   sample, MSE loss, every parameter gradient and d loss / dx, on every backend (reference, cpu, cpu-bf16 where the
   CPU has AMX); batch-size independence,
   repeatability, save/load round trip, inference plan vs training plan, the memory-limit refusal, and the
   forward batch calls (read, run, save). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    float *x, *target, *ts, *sample, *xgrad;
    int64_t *labels;
    double loss;
    int64_t nx, ny;
    int N;
} fixture;

static float *read_f32(ddpm_safetensors *st, const char *name, int64_t *n) {
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    if (!t) {
        fprintf(stderr, "fixture tensor '%s' is missing\n", name);
        exit(1);
    }
    float *p = malloc(sizeof(float) * (size_t)t->numel);
    CHECK_OK(ddpm_st_read_f32(st, name, p, t->numel));
    if (n) *n = t->numel;
    return p;
}

static void fixture_load(const char *dir, fixture *f) {
    char path[1024];
    ddpm_safetensors *in = NULL, *out = NULL;
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    CHECK_OK(ddpm_st_open(path, &in));
    snprintf(path, sizeof path, "%s/outputs.safetensors", dir);
    CHECK_OK(ddpm_st_open(path, &out));
    if (!in || !out) exit(1);
    f->x = read_f32(in, "x", &f->nx);
    f->target = read_f32(in, "target", &f->ny);
    const ddpm_st_tensor *t = ddpm_st_find(in, "timesteps");
    f->N = (int)t->numel;
    int64_t ti[8];
    CHECK_OK(ddpm_st_read_i64(in, "timesteps", ti, t->numel));
    f->ts = malloc(sizeof(float) * (size_t)f->N);
    for (int i = 0; i < f->N; i++) f->ts[i] = (float)ti[i];   /* diffusers casts timesteps to float32 */
    if (ddpm_st_find(in, "class_labels")) {
        f->labels = malloc(sizeof(int64_t) * (size_t)f->N);
        CHECK_OK(ddpm_st_read_i64(in, "class_labels", f->labels, f->N));
    }
    f->sample = read_f32(out, "sample_f32", NULL);
    f->xgrad = read_f32(out, "x_grad_f32", NULL);
    float loss;
    CHECK_OK(ddpm_st_read_f32(out, "loss_f32", &loss, 1));
    f->loss = loss;
    ddpm_st_close(in);
    ddpm_st_close(out);
}

static void fixture_free(fixture *f) {
    free(f->x), free(f->target), free(f->ts), free(f->sample), free(f->xgrad), free(f->labels);
}

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

static int in_list(cJSON *list, const char *name) {
    cJSON *it;
    cJSON_ArrayForEach(it, list) if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0) return 1;
    return 0;
}

/* What a backend must meet against diffusers' float32 fixture (docs/engine.md, "Tolerances"). The fp32 backends
   compute what diffusers computes up to float rounding; cpu-bf16 rounds every convolution's inputs to bf16
   (8 bits of mantissa), so it meets looser, relative bounds, and mathematically zero gradients (a bias before a
   GroupNorm) are rounding noise measured against the largest gradient. */
typedef struct {
    double sample;             /* max |diff| of the output, relative to max |sample| */
    double loss;               /* relative */
    double grad;               /* per tensor: max |diff| / max |want| */
    double zero_grad;          /* max |grad| of a zero-gradient tensor, relative to the largest gradient */
    double x_grad;             /* relative */
    double same;               /* batch of 1 vs row 0 of one plan */
    double plans;              /* an inference plan (also of the saved and reloaded model) vs the training plan;
                                  cpu-bf16 keeps the 1x1 convolutions fp32 only when training, so its two plans
                                  are each within `sample` of diffusers */
} tolerances;

static const tolerances fp32_tol = {1e-5, 1e-5, 1e-4, 1e-6, 1e-4, 1e-6, 1e-6};
static const tolerances bf16_tol = {3e-2, 3e-2, 1e-1, 3e-2, 1e-1, 1e-3, 6e-2};

static void run(const char *fixture_name, ddpm_engine engine) {
    const char *ename = ddpm_enum_name(DDPM_ENUM_ENGINE, (int)engine);
    if (engine == DDPM_ENGINE_BF16 && !ddpm_bf16_supported()) {
        printf("SKIPPED: %s/%s: this CPU has no AMX\n", fixture_name, ename);
        return;
    }
    const tolerances tol = engine == DDPM_ENGINE_BF16 ? bf16_tol : fp32_tol;
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s", dd_test_data(fixture_name));
    fixture f;
    fixture_load(dir, &f);
    snprintf(path, sizeof path, "%s/info.json", dir);
    cJSON *info = dd_json_load(path);
    cJSON *zero = cJSON_GetObjectItemCaseSensitive(info, "zero_grad_tensors");
    snprintf(path, sizeof path, "%s/grads.safetensors", dir);
    ddpm_safetensors *gst = NULL;
    CHECK_OK(ddpm_st_open(path, &gst));

    ddpm_model *m = dd_test_model(dir, 0, engine, 1, f.N);
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    CHECK(mi.weights_loaded == 1);
    CHECK(mi.num_tensors == ddpm_st_count(gst));
    float *out = malloc(sizeof(float) * (size_t)f.ny), *out2 = malloc(sizeof(float) * (size_t)f.ny);
    float *dout = malloc(sizeof(float) * (size_t)f.ny), *dx = malloc(sizeof(float) * (size_t)f.nx);

    /* forward: the sample against diffusers' float32 output (fp32: within 1e-5 of it; the fixture's samples are
       of order 1, so the absolute and the relative bound are one) */
    CHECK_OK(ddpm_model_forward(m, out, f.x, f.ts, f.labels, f.N));
    const double scale = fmax(1.0, max_abs(f.sample, (size_t)f.ny));
    double e_sample = max_diff(out, f.sample, (size_t)f.ny);
    CHECK_MSG(e_sample <= tol.sample * scale, "%s/%s: sample max |diff| %.3g", fixture_name, ename, e_sample);

    /* MSE loss and its gradient */
    double loss = ddpm_mse_loss(out, f.target, (size_t)f.ny, dout);
    double e_loss = fabs(loss - f.loss) / fabs(f.loss);
    CHECK_MSG(e_loss <= tol.loss, "%s/%s: loss %.9g vs %.9g", fixture_name, ename, loss, f.loss);

    /* backward: every parameter gradient, then dx */
    ddpm_model_zero_grad(m);
    CHECK_OK(ddpm_model_backward(m, dout, dx));
    const float *grads = ddpm_model_grads(m);
    double worst_rel = 0, worst_zero = 0, gmax = 0;
    for (int i = 0; i < mi.num_tensors; i++) {
        ddpm_param_info pi;
        CHECK_OK(ddpm_model_param(m, i, &pi));
        float *want = read_f32(gst, pi.name, NULL);
        gmax = fmax(gmax, max_abs(want, (size_t)pi.numel));
        free(want);
    }
    const char *worst_name = "";
    for (int i = 0; i < mi.num_tensors; i++) {
        ddpm_param_info pi;
        CHECK_OK(ddpm_model_param(m, i, &pi));
        CHECK_MSG(strcmp(pi.name, ddpm_st_at(gst, i)->name) == 0, "tensor %d: '%s' but the state_dict has '%s'", i,
                  pi.name, ddpm_st_at(gst, i)->name);
        float *want = read_f32(gst, pi.name, NULL);
        double d = max_diff(grads + pi.offset, want, (size_t)pi.numel);
        if (in_list(zero, pi.name)) {
            CHECK_MSG(d <= tol.zero_grad * (engine == DDPM_ENGINE_BF16 ? gmax : 1.0), "%s/%s: zero-gradient tensor %s max |grad| diff %.3g", fixture_name, ename, pi.name,
                      d);
            worst_zero = fmax(worst_zero, d);
        } else {
            double rel = d / max_abs(want, (size_t)pi.numel);
            CHECK_MSG(rel <= tol.grad, "%s/%s: grad %s relative error %.3g", fixture_name, ename, pi.name, rel);
            if (rel > worst_rel) worst_rel = rel, worst_name = pi.name;
        }
        free(want);
    }
    double e_dx = max_diff(dx, f.xgrad, (size_t)f.nx) / max_abs(f.xgrad, (size_t)f.nx);
    CHECK_MSG(e_dx <= tol.x_grad, "%s/%s: x_grad relative error %.3g", fixture_name, ename, e_dx);
    printf("%s/%s: sample max|diff| %.2e, loss rel %.2e, worst grad rel %.2e (%s), zero-grad max %.2e, "
           "x_grad rel %.2e, plan %zu bytes\n", fixture_name, ename, e_sample, e_loss, worst_rel, worst_name,
           worst_zero, e_dx, ddpm_model_plan_bytes(m));

    /* the same forward twice gives identical results */
    CHECK_OK(ddpm_model_forward(m, out2, f.x, f.ts, f.labels, f.N));
    CHECK_MSG(memcmp(out, out2, sizeof(float) * (size_t)f.ny) == 0, "%s/%s: second forward differs", fixture_name,
              ename);

    /* a batch of 1 in a plan for 2 gives the first row */
    int64_t row = f.ny / f.N;
    CHECK_OK(ddpm_model_forward(m, out2, f.x, f.ts, f.labels, 1));
    double e_row = max_diff(out2, out, (size_t)row);
    CHECK_MSG(e_row <= tol.same * scale, "%s/%s: batch of 1 differs from row 0 by %.3g", fixture_name, ename, e_row);

    /* an inference plan (buffers shared by lifetime) computes the same */
    ddpm_model *mi0 = dd_test_model(dir, 0, engine, 0, f.N);
    CHECK_OK(ddpm_model_forward(mi0, out2, f.x, f.ts, f.labels, f.N));
    double e_inf = max_diff(out2, out, (size_t)f.ny);
    CHECK_MSG(e_inf <= tol.plans * scale, "%s/%s: inference plan differs by %.3g", fixture_name, ename, e_inf);
    CHECK(ddpm_model_grads(mi0) == NULL);
    CHECK_FAIL(ddpm_model_backward(mi0, dout, dx), DDPM_ERR_INVALID_ARG);

    /* save -> load gives the same output */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "save_%s_%s", fixture_name, ename);
    const char *sdir = dd_test_tmpdir(tmp);
    snprintf(path, sizeof path, "%s/pipeline", sdir);
    CHECK_OK(ddpm_model_save(m, path, NULL, DDPM_PRED_EPS));
    ddpm_model *m2 = dd_test_model(path, 0, engine, 0, f.N);
    CHECK_OK(ddpm_model_forward(m2, out2, f.x, f.ts, f.labels, f.N));
    double e_save = max_diff(out2, out, (size_t)f.ny);
    CHECK_MSG(e_save <= tol.plans * scale, "%s/%s: saved and reloaded model differs by %.3g", fixture_name, ename, e_save);
    ddpm_model_free(m2);

    /* a plan over the memory limit is refused, and the model stays usable */
    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    pc.max_batch = f.N;
    pc.training = 1;
    pc.engine = engine;
    pc.memory_limit = 4096;
    CHECK_FAIL(ddpm_model_prepare(m, &pc), DDPM_ERR_NOMEM);
    CHECK(strstr(ddpm_last_error(), "memory limit") != NULL);
    CHECK(ddpm_model_plan_bytes(m) == 0);
    CHECK_FAIL(ddpm_model_forward(m, out2, f.x, f.ts, f.labels, f.N), DDPM_ERR_INVALID_ARG);

    ddpm_model_free(mi0);
    ddpm_model_free(m);
    ddpm_st_close(gst);
    cJSON_Delete(info);
    free(out), free(out2), free(dout), free(dx);
    fixture_free(&f);
}

/* Argument errors at the boundary. */
static void boundaries(void) {
    fixture f;
    fixture_load(dd_test_data("unet_tiny_class"), &f);
    ddpm_model *m = dd_test_model(dd_test_data("unet_tiny_class"), 0, DDPM_ENGINE_REFERENCE, 0, 2);
    float *out = malloc(sizeof(float) * (size_t)f.ny);
    CHECK_FAIL(ddpm_model_forward(m, out, f.x, f.ts, NULL, 2), DDPM_ERR_INVALID_ARG);      /* labels needed */
    CHECK_FAIL(ddpm_model_forward(m, out, f.x, f.ts, f.labels, 3), DDPM_ERR_INVALID_ARG);  /* over max_batch */
    int64_t bad[2] = {3, 10};
    CHECK_FAIL(ddpm_model_forward(m, out, f.x, f.ts, bad, 2), DDPM_ERR_INVALID_ARG);       /* label range */
    float nan_t[2] = {10.0f, NAN};
    CHECK_FAIL(ddpm_model_forward(m, out, f.x, nan_t, f.labels, 2), DDPM_ERR_INVALID_ARG);
    ddpm_model_free(m);
    m = dd_test_model(dd_test_data("unet_tiny"), 0, DDPM_ENGINE_REFERENCE, 0, 2);
    CHECK_FAIL(ddpm_model_forward(m, out, f.x, f.ts, f.labels, 2), DDPM_ERR_INVALID_ARG);  /* no class table */
    ddpm_model_free(m);
    free(out);
    fixture_free(&f);
}

/* A safetensors file of the fixture's inputs with tensor `name` replaced by (dtype, ndim, shape, data), or left
   out when data is NULL. */
static void write_inputs(const char *src, const char *path, const char *name, int ndim, const int64_t *shape,
                         const float *data) {
    ddpm_safetensors *in = NULL;
    ddpm_st_writer *w = NULL;
    CHECK_OK(ddpm_st_open(src, &in));
    CHECK_OK(ddpm_st_writer_create(&w));
    if (!in || !w) exit(1);
    for (int i = 0; i < ddpm_st_count(in); i++) {
        const ddpm_st_tensor *t = ddpm_st_at(in, i);
        if (strcmp(t->name, name) != 0)
            CHECK_OK(ddpm_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, ddpm_st_data(in, t)));
    }
    if (data) CHECK_OK(ddpm_st_writer_add(w, name, DDPM_DTYPE_F32, ndim, shape, data));
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    ddpm_st_close(in);
}

static int error_has(const char *part) {
    return strstr(ddpm_last_error(), part) != NULL;
}

/* ddpm_forward_batch_read / _run / _save: the fixture's loss and gradients through the batch calls, the
   output file's tensors, and every refusal of a bad input naming the tensor and element. */
static void forward_batch(void) {
    char dir[1024], in[1200], bad[1200], out[1200];
    snprintf(dir, sizeof dir, "%s", dd_test_data("unet_tiny_class"));
    snprintf(in, sizeof in, "%s/inputs.safetensors", dir);
    const char *tmp = dd_test_tmpdir("forward_batch");
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmp);
    snprintf(out, sizeof out, "%s/out.safetensors", tmp);
    fixture f;
    fixture_load(dir, &f);
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_load(dir, 0, &m));
    if (!m) exit(1);
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    ddpm_forward_batch b;
    CHECK_OK(ddpm_forward_batch_read(in, m, 1000, 1, &b));
    CHECK(b.n == f.N && b.labels && b.target && b.x_grad);
    for (int i = 0; b.labels && i < f.N; i++) CHECK(b.labels[i] == f.labels[i] && b.t[i] == f.ts[i]);
    CHECK_OK(ddpm_forward_batch_run(m, &b, DDPM_ENGINE_REFERENCE));
    CHECK_MSG(fabs(b.loss - f.loss) <= 1e-5 * fabs(f.loss), "batch loss %.9g vs %.9g", b.loss, f.loss);
    CHECK(max_diff(b.sample, f.sample, (size_t)f.ny) <= 1e-5);
    CHECK(max_diff(b.x_grad, f.xgrad, (size_t)f.nx) <= 1e-5 * fmax(1, max_abs(f.xgrad, (size_t)f.nx)));
    const char *const meta[] = {"producer", "test", NULL};
    CHECK_OK(ddpm_forward_batch_save(out, m, &b, meta));
    ddpm_safetensors *st = NULL;
    CHECK_OK(ddpm_st_open(out, &st));
    if (st) {
        CHECK(ddpm_st_count(st) == 3 + mi.num_tensors);
        CHECK(ddpm_st_find(st, "sample") && ddpm_st_find(st, "loss") && ddpm_st_find(st, "x_grad"));
        CHECK(ddpm_st_metadata_get(st, "producer") && strcmp(ddpm_st_metadata_get(st, "producer"), "test") == 0);
        ddpm_st_close(st);
    }
    ddpm_forward_batch_free(&b);
    CHECK(b.x == NULL && b.sample == NULL);

    /* without a target: only the sample, and a batch file of one image */
    CHECK_OK(ddpm_forward_batch_read(in, m, 1000, 0, &b));
    CHECK(b.target == NULL && b.x_grad == NULL);
    CHECK_OK(ddpm_forward_batch_run(m, &b, DDPM_ENGINE_FAST));
    CHECK_OK(ddpm_forward_batch_save(out, m, &b, NULL));
    CHECK_OK(ddpm_st_open(out, &st));
    if (st) CHECK(ddpm_st_count(st) == 1);
    ddpm_st_close(st);
    ddpm_forward_batch_free(&b);

    /* refusals */
    const int S = mi.sample_size, C = mi.in_channels;
    const int64_t xshape[4] = {f.N, C, S, S}, one = 1, wrong[4] = {f.N, C + 1, S, S};
    float *x = malloc(sizeof(float) * (size_t)f.nx), big = 5000, lab = 99;
    memcpy(x, f.x, sizeof(float) * (size_t)f.nx);
    x[1] = NAN;
    write_inputs(in, bad, "x", 4, xshape, x);
    CHECK_FAIL(ddpm_forward_batch_read(bad, m, 1000, 0, &b), DDPM_ERR_FORMAT);
    CHECK_MSG(error_has("x[0, 0, 0, 1] is nan, not a finite number"), "%s", ddpm_last_error());
    CHECK(b.x == NULL);
    write_inputs(in, bad, "x", 4, wrong, NULL);
    CHECK_FAIL(ddpm_forward_batch_read(bad, m, 1000, 0, &b), DDPM_ERR_FORMAT);
    CHECK_MSG(error_has("no tensor 'x'"), "%s", ddpm_last_error());
    write_inputs(in, bad, "timesteps", 1, &one, &big);
    CHECK_FAIL(ddpm_forward_batch_read(bad, m, 1000, 0, &b), DDPM_ERR_FORMAT);
    CHECK_MSG(error_has("timesteps[0] = 5000 is out of range"), "%s", ddpm_last_error());
    CHECK_OK(ddpm_forward_batch_read(bad, m, 0, 0, &b));   /* no range given: any finite timestep */
    ddpm_forward_batch_free(&b);
    write_inputs(in, bad, "class_labels", 1, &one, &lab);
    CHECK_FAIL(ddpm_forward_batch_read(bad, m, 1000, 0, &b), DDPM_ERR_FORMAT);
    CHECK_MSG(error_has("'class_labels' is F32; need an integer dtype"), "%s", ddpm_last_error());
    float *wide = calloc((size_t)f.N * (size_t)(C + 1) * (size_t)S * (size_t)S, sizeof(float));   /* [N, C+1, S, S] */
    write_inputs(in, bad, "target", 4, wrong, wide);
    free(wide);
    CHECK_FAIL(ddpm_forward_batch_read(bad, m, 1000, 1, &b), DDPM_ERR_FORMAT);
    CHECK_MSG(error_has("tensor 'target' has shape"), "%s", ddpm_last_error());
    ddpm_model *u = NULL;   /* class labels given to an unconditional network */
    CHECK_OK(ddpm_model_load(dd_test_data("unet_tiny"), 0, &u));
    CHECK_FAIL(ddpm_forward_batch_read(in, u, 1000, 0, &b), DDPM_ERR_FORMAT);
    CHECK_MSG(error_has("unconditional"), "%s", ddpm_last_error());
    CHECK_FAIL(ddpm_forward_batch_run(m, &b, DDPM_ENGINE_FAST), DDPM_ERR_INVALID_ARG);
    ddpm_model_free(u);
    ddpm_model_free(m);
    free(x);
    fixture_free(&f);
    if (dd_test_failures == 0) dd_test_remove_dir(tmp);
}

int main(void) {
    const char *fixtures[2] = {"unet_tiny", "unet_tiny_class"};
    for (int i = 0; i < 2; i++) {
        run(fixtures[i], DDPM_ENGINE_REFERENCE);
        run(fixtures[i], DDPM_ENGINE_FAST);
        run(fixtures[i], DDPM_ENGINE_BF16);
    }
    boundaries();
    forward_batch();
    return dd_test_finish("test_unet_fixtures");
}
