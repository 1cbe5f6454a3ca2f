/* cmd_forward.c — `ddpm forward`: the network on tensors from a safetensors file (x, timesteps, class_labels),
   in inference mode; with --loss-target also the MSE loss against `target` and every gradient. */
#include <ddpm.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

static const cli_option options[] = {
    {"model", "M", NULL, "the network: a pipeline, unet or fixture folder, a config.json or a preset (required)"},
    {"in", "FILE", NULL, "safetensors with x [N,C,S,S], timesteps [N] and class_labels [N] if conditional "
                         "(required)"},
    {"out", "FILE", NULL, "safetensors to write: sample [N,C,S,S] (required)"},
    {"loss-target", NULL, NULL, "also read target [N,C,S,S]; write loss [1], x_grad and every parameter's "
                                "gradient under its own name"},
    {"engine", "fast|reference", cli_defaults.engine, "the kernels: fast, or the plain reference twins"},
    {"threads", "N", NULL, "threads (default: all cores)"},
    {"seed", "S", cli_defaults.seed, "weight initialisation seed, for a --model without weights"},
    {NULL, NULL, NULL, NULL},
};

static void shape_text(const ddpm_st_tensor *t, char *buf, size_t size) {
    int o = snprintf(buf, size, "[");
    for (int k = 0; k < t->ndim && (size_t)o < size; k++)
        o += snprintf(buf + o, size - (size_t)o, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    if ((size_t)o < size) snprintf(buf + o, size - (size_t)o, "]");
}

static int is_float(ddpm_dtype d) {
    return d == DDPM_DTYPE_F32 || d == DDPM_DTYPE_F64 || d == DDPM_DTYPE_F16 || d == DDPM_DTYPE_BF16;
}

/* An image tensor `name` that must be [N, C, S, S] of a float dtype (N = -1: any N >= 1, returned). */
static int check_image(const ddpm_safetensors *st, const char *path, const char *name, int64_t *N, int C, int S) {
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    char sh[160];
    if (!t) return cli_error(CLI_FAIL, "%s: no tensor '%s'", path, name);
    shape_text(t, sh, sizeof sh);
    if (!is_float(t->dtype))
        return cli_error(CLI_FAIL, "%s: tensor '%s' is %s; need a float dtype (F32, F64, F16, BF16)", path, name,
                          ddpm_dtype_name(t->dtype));
    if (*N < 0 && t->ndim == 4 && t->shape[0] >= 1 && t->shape[0] <= INT_MAX) *N = t->shape[0];
    if (t->ndim != 4 || t->shape[0] != *N || t->shape[1] != C || t->shape[2] != S || t->shape[3] != S) {
        if (*N < 0)
            return cli_error(CLI_FAIL, "%s: tensor '%s' has shape %s; the model needs [N, %d, %d, %d] with N >= 1", path,
                              name, sh, C, S, S);
        return cli_error(CLI_FAIL, "%s: tensor '%s' has shape %s; the model needs [%lld, %d, %d, %d]", path, name, sh,
                          (long long)*N, C, S, S);
    }
    return CLI_OK;
}

/* A per-image vector `name` of N entries (one value is broadcast to the batch): integers into iv, and into
   fv as floats when fv is not NULL; a float tensor (want_int 0 only) straight into fv. */
static int read_vector(const ddpm_safetensors *st, const char *path, const char *name, int64_t N, int want_int,
                       int64_t *iv, float *fv) {
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    char sh[160];
    if (!t) return cli_error(CLI_FAIL, "%s: no tensor '%s'", path, name);
    shape_text(t, sh, sizeof sh);
    if (t->ndim > 1 || (t->numel != N && t->numel != 1))
        return cli_error(CLI_FAIL, "%s: tensor '%s' has shape %s; need [%lld]", path, name, sh, (long long)N);
    if (t->dtype == DDPM_DTYPE_BOOL || (want_int && is_float(t->dtype)))
        return cli_error(CLI_FAIL, "%s: tensor '%s' is %s; need an integer dtype", path, name, ddpm_dtype_name(t->dtype));
    ddpm_status s;
    if (is_float(t->dtype)) {
        s = ddpm_st_read_f32(st, name, fv, t->numel);
        for (int64_t i = 1; i < N && s == DDPM_OK; i++) fv[i] = fv[t->numel == 1 ? 0 : i];
        for (int64_t i = 0; i < N && s == DDPM_OK; i++)
            if (!isfinite(fv[i]))
                return cli_error(CLI_FAIL, "%s: %s[%lld] is not a finite number", path, name, (long long)i);
        return s == DDPM_OK ? CLI_OK : cli_fail();
    }
    s = ddpm_st_read_i64(st, name, iv, t->numel);
    if (s != DDPM_OK) return cli_fail();
    for (int64_t i = 1; i < N; i++) iv[i] = iv[t->numel == 1 ? 0 : i];
    if (fv)
        for (int64_t i = 0; i < N; i++) fv[i] = (float)iv[i];
    return CLI_OK;
}

/* NaN or Inf in an input tensor is refused, naming the first element as [n, c, y, x]. */
static int check_finite(const char *path, const char *name, const float *v, size_t n, int C, int S) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            size_t hw = (size_t)S * (size_t)S, chw = (size_t)C * hw;
            return cli_error(CLI_FAIL, "%s: %s[%zu, %zu, %zu, %zu] is %g, not a finite number", path, name, i / chw,
                              i % chw / hw, i % hw / (size_t)S, i % (size_t)S, (double)v[i]);
        }
    return CLI_OK;
}

typedef struct {
    ddpm_model *m;
    ddpm_safetensors *in;
    ddpm_st_writer *w;
    float *x, *t, *out, *target, *dout, *dx;
    int64_t *labels;
} forward_state;

static int write_outputs(forward_state *s, const cli_args *a, int64_t N, const ddpm_model_info *info,
                         double loss) {
    int64_t oshape[4] = {N, info->out_channels, info->sample_size, info->sample_size};
    int64_t ishape[4] = {N, info->in_channels, info->sample_size, info->sample_size};
    int train = cli_flag(a, "loss-target");
    if (ddpm_st_writer_create(&s->w) != DDPM_OK) return cli_fail();
    ddpm_status st = ddpm_st_writer_set_metadata(s->w, "format", "pt");
    if (st == DDPM_OK) st = ddpm_st_writer_set_metadata(s->w, "producer", "ddpm forward");
    if (st == DDPM_OK) st = ddpm_st_writer_set_metadata(s->w, "engine", cli_str(a, "engine"));
    if (st == DDPM_OK) st = ddpm_st_writer_add(s->w, "sample", DDPM_DTYPE_F32, 4, oshape, s->out);
    if (train) {
        float lossf = (float)loss;
        int64_t one = 1;
        if (st == DDPM_OK) st = ddpm_st_writer_add(s->w, "loss", DDPM_DTYPE_F32, 1, &one, &lossf);
        if (st == DDPM_OK) st = ddpm_st_writer_add(s->w, "x_grad", DDPM_DTYPE_F32, 4, ishape, s->dx);
        const float *grads = ddpm_model_grads(s->m);
        for (int i = 0; i < info->num_tensors && st == DDPM_OK; i++) {
            ddpm_param_info pi;
            st = ddpm_model_param(s->m, i, &pi);
            if (st == DDPM_OK)
                st = ddpm_st_writer_add(s->w, pi.name, DDPM_DTYPE_F32, pi.ndim, pi.shape, grads + pi.offset);
        }
    }
    if (st == DDPM_OK) st = ddpm_st_writer_save(s->w, cli_str(a, "out"));
    return st == DDPM_OK ? CLI_OK : cli_fail();
}

static int forward(forward_state *s, const cli_args *a, uint64_t seed, ddpm_engine engine) {
    const char *path = cli_str(a, "in");
    int train = cli_flag(a, "loss-target");
    if (ddpm_model_load(cli_str(a, "model"), seed, &s->m) != DDPM_OK) return cli_fail();
    ddpm_model_info info;
    ddpm_model_get_info(s->m, &info);
    if (ddpm_st_open(path, &s->in) != DDPM_OK) return cli_fail();
    int64_t N = -1;
    const int S = info.sample_size;
    int rc = check_image(s->in, path, "x", &N, info.in_channels, S);
    if (rc == CLI_OK && train) rc = check_image(s->in, path, "target", &N, info.out_channels, S);
    if (rc != CLI_OK) return rc;
    size_t isz = (size_t)N * (size_t)info.in_channels * (size_t)S * (size_t)S;
    size_t osz = (size_t)N * (size_t)info.out_channels * (size_t)S * (size_t)S;
    s->x = malloc(sizeof(float) * isz);
    s->out = malloc(sizeof(float) * osz);
    s->t = calloc((size_t)N, sizeof(float));
    s->labels = calloc((size_t)N, sizeof(int64_t));
    if (train) {
        s->target = malloc(sizeof(float) * osz);
        s->dout = malloc(sizeof(float) * osz);
        s->dx = malloc(sizeof(float) * isz);
    }
    if (!s->x || !s->out || !s->t || !s->labels || (train && (!s->target || !s->dout || !s->dx))) {
        return cli_error(CLI_FAIL, "out of memory for a batch of %lld images", (long long)N);
    }
    if (ddpm_st_read_f32(s->in, "x", s->x, (int64_t)isz) != DDPM_OK) return cli_fail();
    if (train && ddpm_st_read_f32(s->in, "target", s->target, (int64_t)osz) != DDPM_OK) return cli_fail();
    rc = check_finite(path, "x", s->x, isz, info.in_channels, S);
    if (rc == CLI_OK && train) rc = check_finite(path, "target", s->target, osz, info.out_channels, S);
    if (rc != CLI_OK) return rc;
    if (info.time_conditioned || ddpm_st_find(s->in, "timesteps")) {
        rc = read_vector(s->in, path, "timesteps", N, 0, s->labels, s->t);
        if (rc != CLI_OK) return rc;
        /* the range the network was trained on: 0 .. num_train_timesteps - 1 of the folder's scheduler */
        ddpm_pipeline_scheduler sched;
        memset(&sched, 0, sizeof sched);
        if (ddpm_pipeline_scheduler_load(cli_str(a, "model"), &sched) != DDPM_OK) return cli_fail();
        const int T = sched.diffusion->T;
        ddpm_pipeline_scheduler_free(&sched);
        for (int64_t i = 0; i < N; i++)
            if (!(s->t[i] >= 0 && s->t[i] <= T - 1))
                return cli_error(CLI_FAIL, "%s: timesteps[%lld] = %g is out of range; the model's diffusion has timesteps "
                                  "0..%d", path, (long long)i, (double)s->t[i], T - 1);
    }
    int conditional = info.num_class_embeds > 0;
    if (conditional) {
        rc = read_vector(s->in, path, "class_labels", N, 1, s->labels, NULL);
        if (rc != CLI_OK) return rc;
        for (int64_t i = 0; i < N; i++)
            if (s->labels[i] < 0 || s->labels[i] >= info.num_class_embeds)
                return cli_error(CLI_FAIL, "%s: class_labels[%lld] = %lld is out of range; the model has %d classes (0..%d)",
                                  path, (long long)i, (long long)s->labels[i], info.num_class_embeds,
                                  info.num_class_embeds - 1);
    } else if (ddpm_st_find(s->in, "class_labels")) {
        return cli_error(CLI_FAIL, "%s: has class_labels but the model is unconditional (num_class_embeds is null)", path);
    }

    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    pc.max_batch = (int)N;
    pc.training = train;
    pc.engine = engine;
    if (ddpm_model_prepare(s->m, &pc) != DDPM_OK) return cli_fail();
    ddpm_model_set_train_mode(s->m, 0);   /* inference semantics: dropout off, gradients still computed */
    if (ddpm_model_forward(s->m, s->out, s->x, s->t, conditional ? s->labels : NULL, (int)N) != DDPM_OK)
        return cli_fail();
    double loss = 0;
    if (train) {
        loss = ddpm_mse_loss(s->out, s->target, osz, s->dout);
        ddpm_model_zero_grad(s->m);
        if (ddpm_model_backward(s->m, s->dout, s->dx) != DDPM_OK) return cli_fail();
    }
    if (cli_interrupted()) return cli_error(cli_stop_status(), "interrupted");
    rc = write_outputs(s, a, N, &info, loss);
    if (rc != CLI_OK) return rc;
    if (train) printf("wrote %s: sample, loss %.9g, x_grad and %d parameter gradients (%lld images)\n",
                      cli_str(a, "out"), loss, info.num_tensors, (long long)N);
    else printf("wrote %s: sample [%lld, %d, %d, %d]\n", cli_str(a, "out"), (long long)N, info.out_channels, S, S);
    return CLI_OK;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    uint64_t seed;
    long long threads = 0;
    ddpm_engine engine = DDPM_ENGINE_FAST;
    int rc = cli_require(a, "model");
    if (rc == CLI_OK) rc = cli_require(a, "in");
    if (rc == CLI_OK) rc = cli_require(a, "out");
    int ev = 0;
    if (rc == CLI_OK && (rc = cli_enum(a, "engine", DDPM_ENUM_ENGINE, &ev)) == CLI_OK) engine = (ddpm_engine)ev;
    if (rc == CLI_OK && cli_given(a, "threads")) rc = cli_threads(a, "threads", 1, &threads);
    if (rc == CLI_OK) rc = cli_u64(a, "seed", &seed);
    if (rc != CLI_OK) return rc;
    if (threads > 0) ddpm_set_threads((int)threads);

    forward_state s;
    memset(&s, 0, sizeof s);
    rc = forward(&s, a, seed, engine);
    ddpm_st_writer_free(s.w);
    ddpm_st_close(s.in);
    ddpm_model_free(s.m);
    free(s.x);
    free(s.t);
    free(s.out);
    free(s.target);
    free(s.dout);
    free(s.dx);
    free(s.labels);
    return rc;
}

const cli_command cli_cmd_forward = {
    "forward",
    "run the network on tensors from a safetensors file (and its gradients with --loss-target)",
    "--model M --in FILE --out FILE [--loss-target] [--engine fast|reference] [--threads N]",
    NULL, 0, 0, options,
    "Input: x F32 [N,C,S,S], timesteps [N] (integer or float), class_labels [N] (integer) for a\n"
    "class-conditional model, and target [N,C,S,S] with --loss-target. Dropout is off (inference mode),\n"
    "also for the gradients. Output: sample F32 [N,C,S,S]; with --loss-target also loss [1] (the mean squared\n"
    "error over all N*C*S*S values), x_grad [N,C,S,S] and d loss / d p under each parameter's name.\n\n"
    "examples:\n"
    "  ddpm forward --model models/mnist0 --in batch.safetensors --out pred.safetensors\n"
    "  ddpm forward --model fixture_dir --in fixture_dir/inputs.safetensors --out grads.safetensors "
    "--loss-target\n",
    run,
};
