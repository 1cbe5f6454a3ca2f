/* guided.c — classifier-free guidance (Ho & Salimans 2022) as a ddpm_model_fn over a prepared model:
   out = u + w (c - u), with c the output for each image's class and u the output for the null class ("no
   label", trained by label dropout). One model call on 2N rows (N conditional, then N null-class rows) per
   sampler step when w is neither 1 (plain conditional sampling) nor 0 (the null class alone). Also the labels
   and guidance weight of a run, and N images sampled in chunks over the guided model (ddpm_sample_images). */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"
#include "engine/plan.h"

#define GUIDED_MAX_BATCH (1 << 19)   /* 2 x max_batch rows must fit a plan */

struct ddpm_guided {
    ddpm_model *m;             /* borrowed, prepared */
    double w;
    int max_batch;             /* images per call */
    int64_t D;                 /* numbers per image */
    int conditional;           /* the model has a class embedding */
    int null_class;            /* -1: none */
    int two_pass;              /* w != 0, 1 with a conditional model: 2N rows per call */
    int64_t nlabels;           /* labels set for this many rows; -1: none (unconditional / null class) */
    int64_t *labels;           /* [max_batch] as set */
    int64_t *rows;             /* [2 max_batch] labels of the model call */
    float *tf;                 /* [2 max_batch] timesteps of the model call */
    float *x2, *out2;          /* [2 max_batch, D] (two_pass only) */
};

static const char *plural(int n) { return n == 1 ? "" : "s"; }

ddpm_status ddpm_guidance_check(const ddpm_model *m, double guidance) {
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guidance_check: model is NULL");
    if (!isfinite(guidance)) return dd_error(DDPM_ERR_INVALID_ARG, "guidance %g is not a finite number", guidance);
    const dd_model_config *c = &m->cfg;
    const int nce = c->kind == DD_MODEL_BASIC ? 0 : c->num_class_embeds;
    const int null_class = c->kind == DD_MODEL_BASIC ? -1 : c->null_class;
    if (guidance != 1.0 && nce < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "guidance %g needs a class-conditional model trained with label "
                        "dropout; this model has no class embedding (use guidance 1)", guidance);
    if (guidance != 1.0 && null_class < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "guidance %g needs a class-conditional model trained with label "
                        "dropout; this model has %d class embedding%s but no null class (it was not trained with "
                        "label dropout; use guidance 1)", guidance, nce, plural(nce));
    return DDPM_OK;
}

ddpm_status ddpm_guided_create(ddpm_model *m, double guidance, int max_batch, ddpm_guided **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_create: out is NULL");
    *out = NULL;
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_create: model is NULL");
    if (max_batch < 1 || max_batch > GUIDED_MAX_BATCH)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_create: max_batch = %d is out of range (1..%d)",
                        max_batch, GUIDED_MAX_BATCH);
    ddpm_status st = ddpm_guidance_check(m, guidance);
    if (st != DDPM_OK) return st;
    const dd_model_config *c = &m->cfg;
    const int nce = c->kind == DD_MODEL_BASIC ? 0 : c->num_class_embeds;
    const int null_class = c->kind == DD_MODEL_BASIC ? -1 : c->null_class;
    if (!m->plan)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_create: the model is not prepared; call "
                        "ddpm_model_prepare first");
    if (c->out_channels != c->in_channels)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_create: the model maps %d channels to %d; a denoiser "
                        "predicts as many channels as it reads", c->in_channels, c->out_channels);
    const int two_pass = guidance != 1.0 && guidance != 0.0;
    const int rows = two_pass ? 2 * max_batch : max_batch;
    if (m->plan->max_batch < rows)
        return dd_error(DDPM_ERR_INVALID_ARG, "guidance %g with batches of %d image%s needs a model prepared for %d "
                        "rows%s, but it was prepared for %d; prepare it with max_batch = %d", guidance, max_batch,
                        plural(max_batch), rows, two_pass ? " (a conditional and a null-class row per image)" : "",
                        m->plan->max_batch, rows);
    ddpm_guided *g = dd_calloc(1, sizeof *g);
    if (!g) return DDPM_ERR_NOMEM;
    g->m = m;
    g->w = guidance;
    g->max_batch = max_batch;
    g->D = (int64_t)c->in_channels * c->sample_size * c->sample_size;
    g->conditional = nce > 0;
    g->null_class = null_class;
    g->two_pass = two_pass;
    g->nlabels = -1;
    size_t n2 = 2 * (size_t)max_batch, nx;
    if (!(g->labels = dd_calloc((size_t)max_batch, sizeof(int64_t))) || !(g->rows = dd_calloc(n2, sizeof(int64_t))) ||
        !(g->tf = dd_calloc(n2, sizeof(float))))
        st = DDPM_ERR_NOMEM;
    if (st == DDPM_OK && two_pass) {
        if (dd_mul_size(n2, (size_t)g->D, &nx) != 0)
            st = dd_error(DDPM_ERR_NOMEM, "ddpm_guided_create: %zu rows of %lld numbers overflow", n2,
                          (long long)g->D);
        else if (!(g->x2 = dd_calloc(nx, sizeof(float))) || !(g->out2 = dd_calloc(nx, sizeof(float))))
            st = DDPM_ERR_NOMEM;
    }
    if (st != DDPM_OK) {
        ddpm_guided_free(g);
        return st;
    }
    *out = g;
    return DDPM_OK;
}

void ddpm_guided_free(ddpm_guided *g) {
    if (!g) return;
    dd_free(g->labels);
    dd_free(g->rows);
    dd_free(g->tf);
    dd_free(g->x2);
    dd_free(g->out2);
    dd_free(g);
}

ddpm_status ddpm_guided_set_labels(ddpm_guided *g, const int64_t *labels, int64_t N) {
    if (!g) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_set_labels: NULL guidance");
    if (!labels) {
        if (g->conditional && g->null_class < 0)
            return dd_error(DDPM_ERR_INVALID_ARG, "the model is class-conditional: give a class (it has no null "
                            "class for unconditional sampling; it was not trained with label dropout)");
        g->nlabels = -1;
        return DDPM_OK;
    }
    if (!g->conditional)
        return dd_error(DDPM_ERR_INVALID_ARG, "classes given, but the model is unconditional (it has no class "
                        "embedding)");
    if (N < 1 || N > g->max_batch)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_set_labels: %lld labels, but guidance was created for "
                        "batches of 1..%d images", (long long)N, g->max_batch);
    const int K = g->null_class >= 0 ? g->null_class : g->m->cfg.num_class_embeds;   /* classes 0..K-1 */
    for (int64_t i = 0; i < N; i++) {
        int64_t k = labels[i];
        if ((k < 0 || k >= K) && k != g->null_class) {
            if (g->null_class >= 0)
                return dd_error(DDPM_ERR_INVALID_ARG, "class %lld is out of range: the model has classes 0..%d "
                                "(and %d, the null class)", (long long)k, K - 1, g->null_class);
            return dd_error(DDPM_ERR_INVALID_ARG, "class %lld is out of range: the model has classes 0..%d",
                            (long long)k, K - 1);
        }
    }
    memcpy(g->labels, labels, (size_t)N * sizeof(int64_t));
    g->nlabels = N;
    return DDPM_OK;
}

ddpm_status ddpm_guided_fn(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    ddpm_guided *g = user;
    if (!g || !out || !x || !t) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_fn: NULL argument");
    const dd_model_config *c = &g->m->cfg;
    if (D != g->D)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_fn: samples of %lld values, but the model takes [%d, %d, "
                        "%d] = %lld", (long long)D, c->in_channels, c->sample_size, c->sample_size, (long long)g->D);
    if (N < 1 || N > g->max_batch)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_fn: batch of %lld images, but guidance was created for "
                        "1..%d", (long long)N, g->max_batch);
    if (g->nlabels >= 0 && N != g->nlabels)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_fn: batch of %lld images, but %lld labels were set "
                        "(call ddpm_guided_set_labels with this batch's labels)", (long long)N,
                        (long long)g->nlabels);
    if (g->conditional && g->nlabels < 0 && g->null_class < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "the model is class-conditional: give a class");
    const int n = (int)N;
    for (int i = 0; i < n; i++) g->tf[i] = (float)t[i];   /* diffusers casts timesteps to float32 */
    if (!g->conditional) return ddpm_model_forward(g->m, out, x, g->tf, NULL, n);
    /* this call's conditional rows; without labels every row is the null class */
    int all_null = 1;
    for (int i = 0; i < n; i++) {
        g->rows[i] = g->nlabels >= 0 ? g->labels[i] : g->null_class;
        if (g->rows[i] != g->null_class) all_null = 0;
    }
    if (g->w == 0.0 || (g->two_pass && all_null)) {   /* out = u: the null class alone */
        for (int i = 0; i < n; i++) g->rows[i] = g->null_class;
        return ddpm_model_forward(g->m, out, x, g->tf, g->rows, n);
    }
    if (!g->two_pass) return ddpm_model_forward(g->m, out, x, g->tf, g->rows, n);   /* w = 1: c */
    /* rows 0..N-1: the labels (c), rows N..2N-1: the null class (u) */
    const size_t nd = (size_t)N * (size_t)D;
    memcpy(g->x2, x, nd * sizeof(float));
    memcpy(g->x2 + nd, x, nd * sizeof(float));
    for (int i = 0; i < n; i++) {
        g->tf[n + i] = g->tf[i];
        g->rows[n + i] = g->null_class;
    }
    ddpm_status st = ddpm_model_forward(g->m, g->out2, g->x2, g->tf, g->rows, 2 * n);
    if (st != DDPM_OK) return st;
    const float w = (float)g->w;
    const float *cond = g->out2, *unc = g->out2 + nd;
    for (size_t i = 0; i < nd; i++) out[i] = unc[i] + w * (cond[i] - unc[i]);
    return DDPM_OK;
}

/* ------------------------------------------------------------------------------------ labels of a run */

ddpm_status ddpm_class_labels(const ddpm_model *m, const int64_t *classes, int n, int64_t N, int cycle,
                              double guidance, int64_t **labels, double *weight) {
    if (!m || !labels || !weight || N < 1 || n < 0 || (n > 0 && !classes))
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_class_labels: need a model, N >= 1 images, the classes and "
                        "outputs");
    *labels = NULL;
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    const int conditional = info.num_class_embeds > 0, null_class = info.null_class;
    const int K = null_class >= 0 ? null_class : info.num_class_embeds;   /* real classes 0..K-1 */
    int all_null = 1;
    if (!conditional) {
        for (int i = 0; i < n; i++)
            if (classes[i] != -1)
                return dd_error(DDPM_ERR_INVALID_ARG, "the model is unconditional (no class embedding)");
    } else {
        if (n == 0 && !cycle && null_class < 0)
            return dd_error(DDPM_ERR_INVALID_ARG, "the model is class-conditional (classes 0..%d) and has no null "
                            "class to run without a label", K - 1);
        for (int i = 0; i < n; i++) {
            if (classes[i] < 0) {
                if (null_class < 0)
                    return dd_error(DDPM_ERR_INVALID_ARG, "the model has no null class (it was trained without "
                                    "label dropout); give classes in 0..%d", K - 1);
            } else if (classes[i] >= K) {
                return dd_error(DDPM_ERR_INVALID_ARG, "class %lld is not one of the model's classes 0..%d",
                                (long long)classes[i], K - 1);
            } else {
                all_null = 0;
            }
        }
        int64_t *lab = dd_alloc(sizeof(int64_t) * (size_t)N);
        if (!lab) return DDPM_ERR_NOMEM;
        /* no classes: every class in turn (sampling), else the null class */
        for (int64_t i = 0; i < N; i++)
            lab[i] = n > 0 ? (classes[i % n] < 0 ? null_class : classes[i % n])
                           : cycle && K > 0 ? i % K : null_class;
        if (n == 0 && cycle && K > 0) all_null = 0;
        *labels = lab;
    }
    /* auto: the model's own weight (_ddpm_guidance), else 2 where guidance is possible */
    if (isnan(guidance))
        guidance = conditional && null_class >= 0 && !all_null ? (info.guidance > 0 ? info.guidance : 2.0) : 1.0;
    *weight = guidance;
    return DDPM_OK;
}

/* ------------------------------------------------------------------------------------ N images in chunks */

void ddpm_sample_request_default(ddpm_sample_request *r) {
    if (!r) return;
    memset(r, 0, sizeof *r);
    r->run = DDPM_RUN_SAMPLE;
    r->xt = DDPM_XT_SEED;
    r->chunk = 16;
    r->guidance = 1.0;
    r->engine = DDPM_ENGINE_FAST;
}

ddpm_status ddpm_guided_prepare(ddpm_model *m, double guidance, int max_batch, ddpm_engine engine,
                                ddpm_guided **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_prepare: out is NULL");
    *out = NULL;
    if (!m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_prepare: model is NULL");
    if (max_batch < 1 || max_batch > GUIDED_MAX_BATCH)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_guided_prepare: max_batch = %d is out of range (1..%d)",
                        max_batch, GUIDED_MAX_BATCH);
    const int rows = guidance != 1.0 ? 2 * max_batch : max_batch;
    const dd_plan *p = m->plan;
    if (!p || p->training || p->engine != engine || p->max_batch < rows) {
        ddpm_plan_config pc;
        ddpm_plan_config_default(&pc);
        pc.max_batch = rows;
        pc.engine = engine;
        ddpm_status st = ddpm_model_prepare(m, &pc);
        if (st != DDPM_OK) return st;
    }
    return ddpm_guided_create(m, guidance, max_batch, out);
}

ddpm_status ddpm_sample_images(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                               const ddpm_sample_request *r, double *x, int64_t N) {
    static const char fn[] = "ddpm_sample_images";
    if (!m || !d || !cfg || !r || !x)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: model, diffusion, sampler config, request and x are needed", fn);
    if (N < 1 || r->chunk < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: N = %lld images in chunks of %d must both be >= 1", fn,
                        (long long)N, r->chunk);
    if (r->run != DDPM_RUN_SAMPLE && r->run != DDPM_RUN_INPAINT && r->run != DDPM_RUN_INVERT)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: unknown run %d", fn, (int)r->run);
    if (r->run == DDPM_RUN_INPAINT && (!r->inpaint || !r->known || !r->mask))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: inpainting needs its config, the known image and the mask", fn);
    const dd_model_config *c = &m->cfg;
    const int64_t D = (int64_t)c->in_channels * c->sample_size * c->sample_size;
    const int chunk = N < r->chunk ? (int)N : r->chunk;
    ddpm_guided *g = NULL;
    ddpm_status st = ddpm_guided_prepare(m, r->guidance, chunk, r->engine, &g);
    for (int64_t first = 0; st == DDPM_OK && first < N; first += chunk) {
        const int64_t n = N - first < chunk ? N - first : chunk;
        double *xc = x + first * D;
        if (r->run != DDPM_RUN_INVERT && r->xt != DDPM_XT_GIVEN)
            ddpm_sample_init_noise(cfg->seed, first, n, D, r->xt == DDPM_XT_SHARED, xc);
        if ((st = ddpm_guided_set_labels(g, r->labels ? r->labels + first : NULL, n)) != DDPM_OK) break;
        if (r->on_chunk) {
            ddpm_clear_error();
            if ((st = r->on_chunk(r->chunk_user, first, n, N)) != DDPM_OK) {
                if (ddpm_last_error()[0] == 0) dd_error(st, "%s: the chunk callback stopped the run", fn);
                break;
            }
        }
        if (r->run == DDPM_RUN_SAMPLE) st = ddpm_sample_loop(d, cfg, ddpm_guided_fn, g, xc, n, D, first);
        else if (r->run == DDPM_RUN_INPAINT)
            st = ddpm_inpaint_loop(d, cfg, r->inpaint, ddpm_guided_fn, g, xc, r->known + first * D,
                                   r->mask + first * D, n, D, first);
        else st = ddpm_ddim_invert(d, cfg, ddpm_guided_fn, g, xc, n, D);
    }
    ddpm_guided_free(g);
    return st;
}
