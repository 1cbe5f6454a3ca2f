/* model.c — the public ddpm_model_* API: creation from a configuration, parameters and gradients, prepare
   (graph + memory plan), forward and backward at the NCHW boundary, the sampler callback and the MSE loss. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"
#include "backend/cpu/cpu_ops.h"
#include "engine/plan.h"

#define MAX_PLAN_BATCH (1 << 20)

ddpm_status dd_model_graph_build(dd_graph *g, const dd_model_config *c, int training) {
    ddpm_status st = c->kind == DD_MODEL_BASIC ? dd_basic_unet_build(g, c) : dd_unet2d_build(g, c, training);
    if (st != DDPM_OK) return st;
    if ((st = dd_graph_finish(g)) != DDPM_OK) dd_graph_free(g);
    return st;
}

ddpm_status dd_model_create(const dd_model_config *c, uint64_t seed, ddpm_model **out) {
    return dd_model_create_ex(c, seed, 1, out);
}

ddpm_status dd_model_create_ex(const dd_model_config *c, uint64_t seed, int init, ddpm_model **out) {
    *out = NULL;
    ddpm_status st = dd_model_config_validate(c, "model config");
    if (st != DDPM_OK) return st;
    ddpm_model *m = dd_calloc(1, sizeof *m);
    if (!m) return DDPM_ERR_NOMEM;
    m->cfg = *c;
    if ((st = dd_model_params_build(c, &m->tab)) != DDPM_OK) {
        dd_free(m);
        return st;
    }
    m->params = dd_calloc((size_t)(m->tab.num_params ? m->tab.num_params : 1), sizeof(float));
    if (!m->params) {
        ddpm_model_free(m);
        return DDPM_ERR_NOMEM;
    }
    if (init) dd_model_params_init(&m->tab, m->params, seed);
    *out = m;
    return DDPM_OK;
}

ddpm_status ddpm_model_from_config_json(const char *json, size_t len, const char *what, uint64_t seed,
                                        ddpm_model **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_from_config_json: out is NULL");
    *out = NULL;
    dd_model_config c;
    ddpm_status st = dd_model_config_parse(json, len, what, &c);
    if (st != DDPM_OK) return st;
    return dd_model_create(&c, seed, out);
}

void ddpm_model_free(ddpm_model *m) {
    if (!m) return;
    dd_free(m->prof);
    dd_plan_free(m->plan);
    dd_model_params_free(&m->tab);
    dd_free(m->params);
    dd_free(m);
}

void ddpm_model_get_info(const ddpm_model *m, ddpm_model_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    if (!m) return;
    const dd_model_config *c = &m->cfg;
    info->kind = c->kind == DD_MODEL_BASIC ? "basic" : "unet2d";
    info->sample_size = c->sample_size;
    info->in_channels = c->in_channels;
    info->out_channels = c->out_channels;
    info->num_class_embeds = c->kind == DD_MODEL_BASIC ? 0 : c->num_class_embeds;
    info->null_class = c->kind == DD_MODEL_BASIC ? -1 : c->null_class;
    info->guidance = c->kind == DD_MODEL_BASIC ? 0 : c->guidance;
    info->time_conditioned = c->kind != DD_MODEL_BASIC;
    info->num_tensors = m->tab.count;
    info->num_params = m->tab.num_params;
    info->weights_loaded = m->weights_loaded;
}

ddpm_status ddpm_model_param(const ddpm_model *m, int i, ddpm_param_info *out) {
    if (!m || !out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_param: NULL model or output");
    if (i < 0 || i >= m->tab.count)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_param: index %d is out of range (0..%d)", i,
                        m->tab.count - 1);
    const dd_model_tensor *t = &m->tab.t[i];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->ndim = t->ndim;
    for (int k = 0; k < t->ndim; k++) out->shape[k] = t->shape[k];
    out->offset = t->offset;
    out->numel = t->numel;
    return DDPM_OK;
}

float *ddpm_model_params(ddpm_model *m) { return m ? m->params : NULL; }

float *ddpm_model_grads(ddpm_model *m) { return m && m->plan ? m->plan->grads : NULL; }

ddpm_status ddpm_model_params_changed(ddpm_model *m) {
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_params_changed: model is NULL");
    const double t0 = dd_profile_clock(m->prof);
    ddpm_status st = dd_plan_set_weights(m->plan, m->params);
    if (m->plan && m->plan->backend->set_weights)
        dd_profile_add(m->prof, DD_PROF_REORDER, 0, t0, 0.0, 8.0 * (double)m->tab.num_params);
    return st;
}

ddpm_status ddpm_model_load_weights(ddpm_model *m, const char *path) {
    if (!m || !path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_load_weights: NULL model or path");
    ddpm_status st = dd_model_params_load(&m->tab, m->params, path);
    if (st != DDPM_OK) return st;
    m->weights_loaded = 1;
    return ddpm_model_params_changed(m);
}

ddpm_status ddpm_model_with_classes(const ddpm_model *m, int num_classes, uint64_t seed, ddpm_model **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_with_classes: out is NULL");
    *out = NULL;
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_with_classes: model is NULL");
    if (m->cfg.kind == DD_MODEL_BASIC)
        return dd_error(DDPM_ERR_UNSUPPORTED, "BasicUNet has no class embedding; use a UNet2DModel preset or config");
    if (m->cfg.num_class_embeds > 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "the model is class-conditional already (%d classes)",
                        m->cfg.num_class_embeds);
    if (m->weights_loaded)
        return dd_error(DDPM_ERR_INVALID_ARG, "the model has trained weights; a class embedding can only be added "
                        "to a fresh network (a preset or a config.json)");
    if (num_classes < 1 || num_classes >= DD_MODEL_MAX_CLASSES)
        return dd_error(DDPM_ERR_INVALID_ARG, "%d classes: need 1 .. %d", num_classes, DD_MODEL_MAX_CLASSES - 1);
    dd_model_config c = m->cfg;
    c.num_class_embeds = num_classes + 1;
    c.null_class = num_classes;
    c.guidance = 0;
    return dd_model_create(&c, seed, out);
}

ddpm_status ddpm_model_set_null_class(ddpm_model *m, int k) {
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_set_null_class: model is NULL");
    const int nce = m->cfg.kind == DD_MODEL_BASIC ? 0 : m->cfg.num_class_embeds;
    if (k == -1 || (k >= 0 && k < nce)) {
        m->cfg.null_class = k;
        return DDPM_OK;
    }
    if (nce < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "null class %d: the model has no class embedding (it is "
                        "unconditional), so it cannot have a null class", k);
    return dd_error(DDPM_ERR_INVALID_ARG, "null class %d is out of range: the model has classes 0..%d (or -1 for "
                    "none)", k, nce - 1);
}

ddpm_status ddpm_model_set_guidance(ddpm_model *m, double w) {
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_set_guidance: model is NULL");
    ddpm_status st = dd_model_check_guidance(w, m->cfg.null_class, "ddpm_model_set_guidance");
    if (st == DDPM_OK) m->cfg.guidance = w;
    return st;
}

ddpm_status ddpm_model_config_json(const ddpm_model *m, char **json) {
    if (!m || !json) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_config_json: NULL model or output");
    return dd_model_config_to_json(&m->cfg, json);
}

void ddpm_plan_config_default(ddpm_plan_config *pc) {
    if (!pc) return;
    memset(pc, 0, sizeof *pc);
    pc->max_batch = 1;
    pc->training = 0;
    pc->engine = DDPM_ENGINE_FAST;
    pc->memory_limit = 0;
}

ddpm_status ddpm_model_prepare(ddpm_model *m, const ddpm_plan_config *pc) {
    if (!m || !pc) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_prepare: NULL model or plan config");
    if (pc->max_batch < 1 || pc->max_batch > MAX_PLAN_BATCH)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_prepare: max_batch = %d is out of range (1..%d)",
                        pc->max_batch, MAX_PLAN_BATCH);
    if (!ddpm_enum_name(DDPM_ENUM_ENGINE, (int)pc->engine))   /* the engines are the names' list */
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_prepare: unknown engine %d", (int)pc->engine);
    dd_plan_free(m->plan);
    m->plan = NULL;
    dd_graph g;
    ddpm_status st = dd_model_graph_build(&g, &m->cfg, pc->training);
    if (st != DDPM_OK) return st;
    /* the graph's parameters are the table's (derived from the same description): their offsets */
    for (int i = 0; i < g.nparams && st == DDPM_OK; i++) {
        int j = dd_model_params_find(&m->tab, g.params[i].name);
        if (j < 0 || m->tab.t[j].numel != g.params[i].numel)
            st = dd_error(DDPM_ERR_INTERNAL, "layer graph: parameter '%s' of %lld values is not in the table",
                          g.params[i].name, (long long)g.params[i].numel);
        else g.params[i].offset = m->tab.t[j].offset;
    }
    if (st != DDPM_OK) {
        dd_graph_free(&g);
        return st;
    }
    const dd_plan_request rq = {pc->max_batch, pc->training ? 1 : 0, pc->engine, pc->memory_limit,
                                m->tab.num_params};
    if ((st = dd_plan_create(&g, &rq, &m->plan)) != DDPM_OK) return st;
    if ((st = dd_plan_set_weights(m->plan, m->params)) != DDPM_OK) {
        dd_plan_free(m->plan);
        m->plan = NULL;
    }
    return st;
}

size_t ddpm_model_plan_bytes(const ddpm_model *m) { return m && m->plan ? m->plan->bytes : 0; }

void ddpm_model_set_dropout_seed(ddpm_model *m, uint64_t seed, uint64_t step) {
    if (!m) return;
    m->dropout_seed = seed;
    m->dropout_step = step;
}

void ddpm_model_set_train_mode(ddpm_model *m, int train) {
    if (m) m->eval_mode = train ? 0 : 1;
}

void ddpm_model_zero_grad(ddpm_model *m) {
    if (m && m->plan && m->plan->grads) memset(m->plan->grads, 0, sizeof(float) * (size_t)m->tab.num_params);
}

static void exec_init(const ddpm_model *m, dd_exec *e, int N) {
    const dd_plan *p = m->plan;
    memset(e, 0, sizeof *e);
    e->N = N;
    e->training = p->training && !m->eval_mode;   /* dropout active */
    e->params = m->params;
    e->grads = p->grads;
    e->labels = m->cfg.num_class_embeds > 0 && m->cfg.kind != DD_MODEL_BASIC ? p->labels : NULL;
    e->dropout_seed = m->dropout_seed;
    e->dropout_step = (uint32_t)(m->dropout_step & 0xffffffu);
    e->dropout_item = DD_MODEL_DROPOUT_ITEM;
    e->prof = m->prof;
}

/* ------------------------------------------------------------------ profile */

struct dd_profile *dd_model_profile(ddpm_model *m) { return m ? m->prof : NULL; }

ddpm_status ddpm_model_profile_start(ddpm_model *m) {
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_profile_start: model is NULL");
    if (!m->prof && !(m->prof = dd_alloc(sizeof *m->prof))) return DDPM_ERR_NOMEM;
    memset(m->prof, 0, sizeof *m->prof);
    return DDPM_OK;
}

void ddpm_model_profile_stop(ddpm_model *m) {
    if (!m) return;
    dd_free(m->prof);
    m->prof = NULL;
}

int ddpm_model_profile_rows(const ddpm_model *m, ddpm_profile_row *rows, int cap) {
    if (!m || !m->prof) return 0;
    int n = 0;
    for (int k = 0; k < DD_PROF_KINDS; k++)
        for (int b = 0; b < 2; b++) {
            const dd_prof_cell *c = &m->prof->cell[k][b];
            if (c->calls == 0) continue;
            if (rows && n < cap)
                rows[n] = (ddpm_profile_row){dd_profile_kind_name(k), b, k < DD_OP_KINDS, c->calls, c->seconds, c->flops,
                                             c->bytes};
            n++;
        }
    return n;
}

ddpm_status ddpm_model_forward(ddpm_model *m, float *out, const float *x, const float *timesteps,
                               const int64_t *class_labels, int N) {
    if (!m || !out || !x) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: NULL model, output or input");
    dd_plan *p = m->plan;
    if (!p) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: the model is not prepared; call "
                            "ddpm_model_prepare first");
    if (N < 1 || N > p->max_batch)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: batch of %d images, but the model was prepared "
                        "for 1..%d", N, p->max_batch);
    dd_threads_update();   /* auto threads: the cores other processes leave free (the backward that follows
                              runs with the same count) */
    const dd_model_config *c = &m->cfg;
    const int unet = c->kind != DD_MODEL_BASIC;
    if (unet) {
        if (!timesteps) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: timesteps is NULL");
        for (int i = 0; i < N; i++)
            if (!isfinite(timesteps[i]))
                return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: timesteps[%d] = %g is not finite", i,
                                (double)timesteps[i]);
    }
    if (unet && c->num_class_embeds > 0) {
        if (!class_labels)
            return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: the model is class-conditional "
                            "(num_class_embeds = %d) but class_labels is NULL", c->num_class_embeds);
        for (int i = 0; i < N; i++) {
            if (class_labels[i] < 0 || class_labels[i] >= c->num_class_embeds)
                return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: class_labels[%d] = %lld is out of range "
                                "(0..%d)", i, (long long)class_labels[i], c->num_class_embeds - 1);
            p->labels[i] = class_labels[i];
        }
    } else if (class_labels) {
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: class_labels given, but the model has no class "
                        "embedding (num_class_embeds is null)");
    }
    if (p->work && omp_get_max_threads() > p->work_threads)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_forward: %d threads, but the model was prepared for %d; "
                        "call ddpm_model_prepare again after ddpm_set_threads", omp_get_max_threads(),
                        p->work_threads);
    const dd_graph *g = &p->graph;
    const int S = c->sample_size;
    float *xin = p->data[g->input];
    double t0 = dd_profile_clock(m->prof);
    dd_nchw_to_nhwc(xin, x, N, c->in_channels, S, S);                     // [N, S, S, in]
    if (unet && c->center_input_sample) {                                 // 2 x - 1
        size_t n = (size_t)N * (size_t)g->values[g->input].size;
        for (size_t i = 0; i < n; i++) xin[i] = 2.0f * xin[i] - 1.0f;
    }
    const double in_bytes = 8.0 * (double)N * (double)g->values[g->input].size;
    dd_profile_add(m->prof, DD_PROF_LAYOUT, 0, t0, 0.0, in_bytes);
    dd_exec e;
    exec_init(m, &e, N);
    e.timesteps = timesteps;
    p->last_n = 0;
    ddpm_status st = dd_plan_forward(p, &e);
    if (st != DDPM_OK) return st;
    t0 = dd_profile_clock(m->prof);
    dd_nhwc_to_nchw(out, p->data[g->output], N, S, S, c->out_channels);   // [N, out, S, S]
    dd_profile_add(m->prof, DD_PROF_LAYOUT, 0, t0, 0.0, 8.0 * (double)N * (double)g->values[g->output].size);
    if (p->training) p->last_n = N;
    return DDPM_OK;
}

ddpm_status ddpm_model_backward(ddpm_model *m, const float *dout, float *dx) {
    if (!m || !dout) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_backward: NULL model or dout");
    dd_plan *p = m->plan;
    if (!p || !p->training)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_backward: the model needs a training plan "
                        "(ddpm_model_prepare with training = 1)");
    if (p->last_n < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_backward: no forward pass to differentiate; call "
                        "ddpm_model_forward first");
    const dd_model_config *c = &m->cfg;
    const dd_graph *g = &p->graph;
    const int N = p->last_n, S = c->sample_size;
    const double t0 = dd_profile_clock(m->prof);
    dd_nchw_to_nhwc(p->grad[g->output], dout, N, c->out_channels, S, S);  // [N, S, S, out]
    dd_profile_add(m->prof, DD_PROF_LAYOUT, 1, t0, 0.0, 8.0 * (double)N * (double)g->values[g->output].size);
    dd_exec e;
    exec_init(m, &e, N);
    e.want_dx = dx != NULL;
    ddpm_status st = dd_plan_backward(p, &e);
    if (st != DDPM_OK) return st;
    if (dx) {
        dd_nhwc_to_nchw(dx, p->grad[g->input], N, S, S, c->in_channels);  // [N, in, S, S]
        if (c->kind != DD_MODEL_BASIC && c->center_input_sample) {              // d(2x - 1)/dx = 2
            size_t n = (size_t)N * (size_t)g->values[g->input].size;
            for (size_t i = 0; i < n; i++) dx[i] *= 2.0f;
        }
    }
    return DDPM_OK;
}

ddpm_status ddpm_model_sampler_fn(void *user, float *out, const float *x, const int64_t *t, int64_t N,
                                  int64_t D) {
    ddpm_model *m = user;
    if (!m || !out || !x || !t) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_sampler_fn: NULL argument");
    if (!m->plan) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_sampler_fn: the model is not prepared");
    const dd_model_config *c = &m->cfg;
    int64_t S2 = (int64_t)c->sample_size * c->sample_size;
    if (D != c->in_channels * S2 || c->out_channels != c->in_channels)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_sampler_fn: samples of %lld values, but the model maps "
                        "[%d, %d, %d] to [%d, %d, %d]", (long long)D, c->in_channels, c->sample_size,
                        c->sample_size, c->out_channels, c->sample_size, c->sample_size);
    const int B = m->plan->max_batch;
    for (int64_t i0 = 0; i0 < N; i0 += B) {   /* batches of at most max_batch images */
        int n = (int)(N - i0 < B ? N - i0 : B);
        for (int i = 0; i < n; i++) m->plan->tsteps[i] = (float)t[i0 + i];   /* diffusers casts to float32 */
        ddpm_status st = ddpm_model_forward(m, out + i0 * D, x + i0 * D, m->plan->tsteps, NULL, n);
        if (st != DDPM_OK) return st;
    }
    return DDPM_OK;
}

double ddpm_mse_loss(const float *pred, const float *target, size_t n, float *dpred) {
    if (n == 0 || !pred || !target) return 0.0;
    double loss = dd_mse_forward(pred, target, n);
    if (dpred) dd_mse_backward(dpred, pred, target, n, 1.0, 0);
    return loss;
}
