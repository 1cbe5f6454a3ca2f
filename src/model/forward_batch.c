/* forward_batch.c — a network's forward (and gradient) pass on a batch read from a safetensors file: the
   inputs checked against the network (shapes, dtypes, finite values, timestep and class ranges), the pass in
   inference mode, and the outputs written back as safetensors. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

/* An image tensor `name` that must be [N, C, S, S] of a float dtype (N = -1: any N >= 1, returned). */
static ddpm_status check_image(const ddpm_safetensors *st, const char *path, const char *name, int64_t *N, int C,
                               int S) {
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    char sh[160];
    if (!t) return dd_error(DDPM_ERR_FORMAT, "%s: no tensor '%s'", path, name);
    dd_shape_text(sh, sizeof sh, t->ndim, t->shape);
    if (!dd_dtype_is_float(t->dtype))
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' is %s; need a float dtype (F32, F64, F16, BF16)", path,
                        name, ddpm_dtype_name(t->dtype));
    if (*N < 0 && t->ndim == 4 && t->shape[0] >= 1 && t->shape[0] <= INT_MAX) *N = t->shape[0];
    if (t->ndim == 4 && t->shape[0] == *N && t->shape[1] == C && t->shape[2] == S && t->shape[3] == S) return DDPM_OK;
    if (*N < 0)
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' has shape %s; the model needs [N, %d, %d, %d] with N >= 1",
                        path, name, sh, C, S, S);
    return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' has shape %s; the model needs [%lld, %d, %d, %d]", path, name,
                    sh, (long long)*N, C, S, S);
}

/* A per-image vector `name` of N entries (one value is broadcast to the batch): integers into iv, and into
   fv as floats when fv is not NULL; a float tensor (want_int 0 only) straight into fv. */
static ddpm_status read_vector(const ddpm_safetensors *st, const char *path, const char *name, int64_t N,
                               int want_int, int64_t *iv, float *fv) {
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    char sh[160];
    if (!t) return dd_error(DDPM_ERR_FORMAT, "%s: no tensor '%s'", path, name);
    dd_shape_text(sh, sizeof sh, t->ndim, t->shape);
    if (t->ndim > 1 || (t->numel != N && t->numel != 1))
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' has shape %s; need [%lld]", path, name, sh, (long long)N);
    if (t->dtype == DDPM_DTYPE_BOOL || (want_int && dd_dtype_is_float(t->dtype)))
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' is %s; need an integer dtype", path, name,
                        ddpm_dtype_name(t->dtype));
    ddpm_status s;
    if (dd_dtype_is_float(t->dtype)) {
        if ((s = ddpm_st_read_f32(st, name, fv, t->numel)) != DDPM_OK) return s;
        for (int64_t i = 1; i < N; i++) fv[i] = fv[t->numel == 1 ? 0 : i];
        for (int64_t i = 0; i < N; i++)
            if (!isfinite(fv[i]))
                return dd_error(DDPM_ERR_FORMAT, "%s: %s[%lld] is not a finite number", path, name, (long long)i);
        return DDPM_OK;
    }
    if ((s = ddpm_st_read_i64(st, name, iv, t->numel)) != DDPM_OK) return s;
    for (int64_t i = 1; i < N; i++) iv[i] = iv[t->numel == 1 ? 0 : i];
    if (fv)
        for (int64_t i = 0; i < N; i++) fv[i] = (float)iv[i];
    return DDPM_OK;
}

/* An image tensor read as float and checked for NaN or Inf, naming the first such element as [n, c, y, x]. */
static ddpm_status read_finite(const ddpm_safetensors *st, const char *path, const char *name, float *v, size_t n,
                               int C, int S) {
    ddpm_status s = ddpm_st_read_f32(st, name, v, (int64_t)n);
    for (size_t i = 0; s == DDPM_OK && i < n; i++)
        if (!isfinite(v[i])) {
            size_t hw = (size_t)S * (size_t)S, chw = (size_t)C * hw;
            return dd_error(DDPM_ERR_FORMAT, "%s: %s[%zu, %zu, %zu, %zu] is %g, not a finite number", path, name,
                            i / chw, i % chw / hw, i % hw / (size_t)S, i % (size_t)S, (double)v[i]);
        }
    return s;
}

static ddpm_status read_batch(const ddpm_safetensors *st, const char *path, const ddpm_model_info *info,
                              int num_timesteps, int with_target, ddpm_forward_batch *b) {
    const int S = info->sample_size;
    int64_t N = -1;
    ddpm_status s = check_image(st, path, "x", &N, info->in_channels, S);
    if (s == DDPM_OK && with_target) s = check_image(st, path, "target", &N, info->out_channels, S);
    if (s != DDPM_OK) return s;
    const size_t isz = (size_t)N * (size_t)info->in_channels * (size_t)S * (size_t)S;
    const size_t osz = (size_t)N * (size_t)info->out_channels * (size_t)S * (size_t)S;
    b->n = N;
    b->x = dd_alloc(sizeof(float) * isz);
    b->sample = dd_alloc(sizeof(float) * osz);
    b->t = dd_calloc((size_t)N, sizeof(float));
    b->labels = dd_calloc((size_t)N, sizeof(int64_t));
    if (with_target) {
        b->target = dd_alloc(sizeof(float) * osz);
        b->dout = dd_alloc(sizeof(float) * osz);
        b->x_grad = dd_alloc(sizeof(float) * isz);
    }
    if (!b->x || !b->sample || !b->t || !b->labels || (with_target && (!b->target || !b->dout || !b->x_grad)))
        return dd_error(DDPM_ERR_NOMEM, "out of memory for a batch of %lld images", (long long)N);
    s = read_finite(st, path, "x", b->x, isz, info->in_channels, S);
    if (s == DDPM_OK && with_target) s = read_finite(st, path, "target", b->target, osz, info->out_channels, S);
    if (s == DDPM_OK && (info->time_conditioned || ddpm_st_find(st, "timesteps"))) {
        s = read_vector(st, path, "timesteps", N, 0, b->labels, b->t);
        for (int64_t i = 0; s == DDPM_OK && num_timesteps > 0 && i < N; i++)
            if (!(b->t[i] >= 0 && b->t[i] <= num_timesteps - 1))
                s = dd_error(DDPM_ERR_FORMAT, "%s: timesteps[%lld] = %g is out of range; the model's diffusion has "
                             "timesteps 0..%d", path, (long long)i, (double)b->t[i], num_timesteps - 1);
    }
    if (s != DDPM_OK) return s;
    const int K = info->num_class_embeds;
    if (K == 0) {
        memset(b->labels, 0, sizeof(int64_t) * (size_t)N);
        if (ddpm_st_find(st, "class_labels"))
            return dd_error(DDPM_ERR_FORMAT, "%s: has class_labels but the model is unconditional (num_class_embeds "
                            "is null)", path);
        return DDPM_OK;
    }
    if ((s = read_vector(st, path, "class_labels", N, 1, b->labels, NULL)) != DDPM_OK) return s;
    for (int64_t i = 0; i < N; i++)
        if (b->labels[i] < 0 || b->labels[i] >= K)
            return dd_error(DDPM_ERR_FORMAT, "%s: class_labels[%lld] = %lld is out of range; the model has %d classes "
                            "(0..%d)", path, (long long)i, (long long)b->labels[i], K, K - 1);
    return DDPM_OK;
}

ddpm_status ddpm_forward_batch_read(const char *path, const ddpm_model *m, int num_timesteps, int with_target,
                                    ddpm_forward_batch *b) {
    if (!path || !m || !b) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_forward_batch_read: NULL argument");
    memset(b, 0, sizeof *b);
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open(path, &st);
    if (s == DDPM_OK) s = read_batch(st, path, &info, num_timesteps, with_target, b);
    ddpm_st_close(st);
    if (s == DDPM_OK && info.num_class_embeds == 0) {   /* an unconditional network takes no labels */
        dd_free(b->labels);
        b->labels = NULL;
    }
    if (s != DDPM_OK) ddpm_forward_batch_free(b);
    return s;
}

ddpm_status ddpm_forward_batch_run(ddpm_model *m, ddpm_forward_batch *b, ddpm_engine engine) {
    if (!m || !b || !b->x || b->n < 1 || b->n > INT_MAX)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_forward_batch_run: no batch");
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    pc.max_batch = (int)b->n;
    pc.training = b->target != NULL;
    pc.engine = engine;
    ddpm_status s = ddpm_model_prepare(m, &pc);
    if (s != DDPM_OK) return s;
    ddpm_model_set_train_mode(m, 0);   /* inference semantics: dropout off, gradients still computed */
    if ((s = ddpm_model_forward(m, b->sample, b->x, b->t, b->labels, (int)b->n)) != DDPM_OK || !b->target) return s;
    const size_t osz = (size_t)b->n * (size_t)info.out_channels * (size_t)info.sample_size * (size_t)info.sample_size;
    b->loss = ddpm_mse_loss(b->sample, b->target, osz, b->dout);
    ddpm_model_zero_grad(m);
    return ddpm_model_backward(m, b->dout, b->x_grad);
}

ddpm_status ddpm_forward_batch_save(const char *path, ddpm_model *m, const ddpm_forward_batch *b,
                                    const char *const *metadata) {
    if (!path || !m || !b || !b->sample) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_forward_batch_save: no batch");
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    const int64_t S = info.sample_size, oshape[4] = {b->n, info.out_channels, S, S};
    const int64_t ishape[4] = {b->n, info.in_channels, S, S}, one = 1;
    const float lossf = (float)b->loss;
    ddpm_st_writer *w = NULL;
    ddpm_status s = ddpm_st_writer_create(&w);
    for (int k = 0; s == DDPM_OK && metadata && metadata[k] && metadata[k + 1]; k += 2)
        s = ddpm_st_writer_set_metadata(w, metadata[k], metadata[k + 1]);
    if (s == DDPM_OK) s = ddpm_st_writer_add(w, "sample", DDPM_DTYPE_F32, 4, oshape, b->sample);
    if (b->target && b->x_grad) {
        const float *grads = ddpm_model_grads(m);
        if (!grads && s == DDPM_OK) s = dd_error(DDPM_ERR_INVALID_ARG, "ddpm_forward_batch_save: no gradients");
        if (s == DDPM_OK) s = ddpm_st_writer_add(w, "loss", DDPM_DTYPE_F32, 1, &one, &lossf);
        if (s == DDPM_OK) s = ddpm_st_writer_add(w, "x_grad", DDPM_DTYPE_F32, 4, ishape, b->x_grad);
        for (int i = 0; i < info.num_tensors && s == DDPM_OK; i++) {
            ddpm_param_info pi;
            s = ddpm_model_param(m, i, &pi);
            if (s == DDPM_OK) s = ddpm_st_writer_add(w, pi.name, DDPM_DTYPE_F32, pi.ndim, pi.shape, grads + pi.offset);
        }
    }
    if (s == DDPM_OK) s = ddpm_st_writer_save(w, path);
    ddpm_st_writer_free(w);
    return s;
}

void ddpm_forward_batch_free(ddpm_forward_batch *b) {
    if (!b) return;
    dd_free(b->x), dd_free(b->t), dd_free(b->labels), dd_free(b->target);
    dd_free(b->sample), dd_free(b->dout), dd_free(b->x_grad);
    memset(b, 0, sizeof *b);
}
