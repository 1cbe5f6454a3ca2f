/* samples.c — preview samples of a run: images drawn with DDIM from the EMA weights, written as one PNG grid. */
#include <stdio.h>

#include "core/core.h"
#include "train/train.h"

#define SAMPLE_CHUNK 32      /* images per network call */
#define SAMPLE_MIN_CELL 64   /* smaller images are enlarged (nearest neighbour) to cells of at least this size */

typedef struct {
    ddpm_model *m;
    int chunk;               /* the model's plan batch */
    int num_classes;         /* 0: unconditional; else image i has class i % num_classes */
    float *tf;               /* [chunk] timesteps as float */
    int64_t *labels;         /* [chunk] */
} grid_model;

/* A ddpm_model_fn over a model prepared for `chunk` images, splitting larger batches. */
static ddpm_status grid_model_fn(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    grid_model *g = user;
    for (int64_t i0 = 0; i0 < N; i0 += g->chunk) {
        int n = (int)(N - i0 < g->chunk ? N - i0 : g->chunk);
        for (int i = 0; i < n; i++) {
            g->tf[i] = (float)t[i0 + i];
            g->labels[i] = g->num_classes > 0 ? (i0 + i) % g->num_classes : 0;
        }
        ddpm_status st = ddpm_model_forward(g->m, out + i0 * D, x + i0 * D, g->tf,
                                            g->num_classes > 0 ? g->labels : NULL, n);
        if (st != DDPM_OK) return st;
    }
    return DDPM_OK;
}

static ddpm_status stop_check(void *user, int i, int n, int64_t t, const double *x, const double *x0, int64_t N,
                              int64_t D) {
    (void)i, (void)n, (void)t, (void)x, (void)x0, (void)N, (void)D;
    const ddpm_trainer *tr = user;
    if (tr->should_stop && tr->should_stop(tr->stop_user))
        return dd_error(DDPM_ERR_INTERRUPTED, "sampling stopped on request");
    return DDPM_OK;
}

ddpm_status ddpm_trainer_write_samples(ddpm_trainer *t, const char *path, int num, int ddim_steps,
                                       const char *const *text) {
    if (!t || !path || !path[0])
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_write_samples: NULL trainer or path");
    if (num < 1 || ddim_steps < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "preview samples: %d images with %d steps (both must be >= 1)", num,
                        ddim_steps);
    const int C = t->C, S = t->S, chunk = num < SAMPLE_CHUNK ? num : SAMPLE_CHUNK;
    const int64_t D = t->D;
    const uint64_t seed = t->s.c.seed;
    grid_model g = {NULL, chunk, t->conditional ? t->data->num_classes : 0, NULL, NULL};
    ddpm_status st = ddpm_trainer_sample_model(t, chunk, &g.m);
    if (st != DDPM_OK) return st;
    size_t n;
    if (dd_mul_size((size_t)num, (size_t)D, &n) != 0) return dd_error(DDPM_ERR_NOMEM, "preview samples: too many");
    double *x = dd_alloc(sizeof(double) * n);
    float *xf = x ? dd_alloc(sizeof(float) * n) : NULL;
    g.tf = xf ? dd_alloc(sizeof(float) * (size_t)chunk) : NULL;
    g.labels = g.tf ? dd_alloc(sizeof(int64_t) * (size_t)chunk) : NULL;
    ddpm_image big = {0, 0, 0, NULL};
    st = g.labels ? DDPM_OK : DDPM_ERR_NOMEM;
    if (st == DDPM_OK) {
        ddpm_sampler_config sc;
        ddpm_sampler_config_default(&sc, DDPM_SAMPLER_DDIM);
        sc.steps = ddim_steps;
        sc.prediction = t->s.c.objective;
        sc.seed = seed;
        sc.on_step = stop_check;
        sc.step_user = t;
        ddpm_rng_normal_f64(seed, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0), 0, x, n);
        st = ddpm_sample_loop(t->dif, &sc, grid_model_fn, &g, x, num, D, 0);
    }
    for (size_t i = 0; st == DDPM_OK && i < n; i++) xf[i] = (float)x[i];
    const int k = S < SAMPLE_MIN_CELL ? (SAMPLE_MIN_CELL + S - 1) / S : 1;
    if (st == DDPM_OK) st = ddpm_image_grid_scaled(&big, xf, num, C, S, S, 0, k);
    if (st == DDPM_OK) {
        char software[64], what[200];
        snprintf(software, sizeof software, "ddpm %s", ddpm_version());
        snprintf(what, sizeof what, "step %lld; %d samples, DDIM %d steps (eta 0), seed %llu, EMA weights; shown %dx",
                 (long long)t->s.step, num, ddim_steps, (unsigned long long)seed, k);
        const char *const extra[] = {"Software", software, "Description", what, NULL};
        const char *pairs[DD_TEXT_MAX];
        st = ddpm_png_write(path, &big, dd_text_join(pairs, DD_TEXT_MAX, text, extra));
    }
    ddpm_image_free(&big);
    dd_free(x);
    dd_free(xf);
    dd_free(g.tf);
    dd_free(g.labels);
    return st;
}
