/* trainer.c — the training step: data order, timesteps, noise, the weighted denoising loss (Ho et al. 2020
   Alg. 1; Hang et al. 2023), gradient accumulation and clipping, AdamW, the EMA (diffusers' EMAModel). */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "engine/profile.h"
#include "model/model.h"
#include "train/train.h"

/* Parameters per unit of the parallel gradient norm (partial sums in double, added in order). */
#define DD_NORM_CHUNK 65536
/* Uniforms fetched at a time while shuffling. */
#define DD_PERM_BLOCK 256

/* ------------------------------------------------------------------ creation */

static ddpm_status check_data(ddpm_trainer *t, const ddpm_model_info *mi) {
    const ddpm_dataset *d = t->data;
    if (!d || d->count < 1 || !d->pixels)
        return dd_error(DDPM_ERR_INVALID_ARG, "training: the dataset is empty");
    if (d->count > (int64_t)UINT32_MAX)
        return dd_error(DDPM_ERR_UNSUPPORTED, "training: %lld images (at most %lu)", (long long)d->count,
                        (unsigned long)UINT32_MAX);
    if (d->channels != mi->in_channels || d->height != mi->sample_size || d->width != mi->sample_size)
        return dd_error(DDPM_ERR_INVALID_ARG, "training: the images are %dx%d with %d channel%s but the model takes "
                        "%dx%d with %d (load the data for the model's size and channels)", d->width, d->height,
                        d->channels, d->channels == 1 ? "" : "s", mi->sample_size, mi->sample_size, mi->in_channels);
    if (mi->out_channels != mi->in_channels)
        return dd_error(DDPM_ERR_UNSUPPORTED, "training: the model has %d input and %d output channels; a denoiser "
                        "predicts as many channels as it reads", mi->in_channels, mi->out_channels);
    const int nce = mi->num_class_embeds, K = d->num_classes;
    const double p = t->s.c.label_dropout;
    t->conditional = nce > 0;
    t->null_class = K;
    if (!t->conditional) return DDPM_OK;
    if (K < 1 || !d->labels)
        return dd_error(DDPM_ERR_INVALID_ARG, "training: the model is class-conditional (num_class_embeds = %d) but "
                        "the dataset has no labels", nce);
    if (p > 0 && nce != K + 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "training: label dropout %g needs num_class_embeds = %d (the %d classes "
                        "and the 'no label' class %d), but the model has %d; set label_dropout 0 or change the "
                        "model", p, K + 1, K, K, nce);
    if (p == 0 && nce != K && nce != K + 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "training: the dataset has %d classes but the model has "
                        "num_class_embeds = %d (expected %d, or %d with a 'no label' class)", K, nce, K, K + 1);
    for (int64_t i = 0; i < d->count; i++)
        if (d->labels[i] < 0 || d->labels[i] >= K)
            return dd_error(DDPM_ERR_INVALID_ARG, "training: image %lld has label %d, outside 0..%d",
                            (long long)i, (int)d->labels[i], K - 1);
    return DDPM_OK;
}

static ddpm_status alloc_buffers(ddpm_trainer *t) {
    const size_t B = (size_t)t->s.c.batch, D = (size_t)t->D;
    size_t n;
    if (dd_mul_size(B, D, &n) != 0) return dd_error(DDPM_ERR_NOMEM, "training: batch buffers overflow");
    float **f[] = {&t->x0, &t->eps, &t->xt, &t->target, &t->pred, &t->dpred};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!(*f[i] = dd_calloc(n, sizeof(float)))) return DDPM_ERR_NOMEM;
    t->nchunks = (t->P + DD_NORM_CHUNK - 1) / DD_NORM_CHUNK;
    if (!(t->tf = dd_calloc(B, sizeof(float))) || !(t->t = dd_calloc(B, sizeof(int64_t))) ||
        !(t->labels = dd_calloc(B, sizeof(int64_t))) || !(t->w = dd_calloc(B, sizeof(double))) ||
        !(t->partial = dd_calloc((size_t)(t->nchunks > 0 ? t->nchunks : 1), sizeof(double))) ||
        !(t->perm = dd_calloc((size_t)t->data->count, sizeof(uint32_t))))
        return DDPM_ERR_NOMEM;
    return DDPM_OK;
}

static ddpm_status make_diffusion(ddpm_trainer *t, const double *betas) {
    const ddpm_schedule_config *sc = &t->s.c.schedule;
    if (sc->T < 1) return dd_error(DDPM_ERR_INVALID_ARG, "training: schedule T = %d must be >= 1", sc->T);
    if (!(t->betas = dd_calloc((size_t)sc->T, sizeof(double)))) return DDPM_ERR_NOMEM;
    ddpm_status st;
    if (betas) memcpy(t->betas, betas, (size_t)sc->T * sizeof(double));
    else if ((st = ddpm_schedule_betas(sc, t->betas)) != DDPM_OK) return st;
    return ddpm_diffusion_from_betas(t->betas, sc->T, &t->dif);
}

ddpm_status dd_trainer_init(const dd_train_state *s, ddpm_model *model, const ddpm_dataset *data,
                            const double *betas, ddpm_trainer **out) {
    *out = NULL;
    if (!model) return dd_error(DDPM_ERR_INVALID_ARG, "training: model is NULL");
    ddpm_trainer *t = dd_calloc(1, sizeof *t);
    if (!t) {
        ddpm_model_free(model);
        return DDPM_ERR_NOMEM;
    }
    t->model = model;
    t->data = data;
    t->last_checkpoint = -1;
    t->perm_epoch = -1;
    dd_train_state_copy(&t->s, s);
    ddpm_train_config *c = &t->s.c;
    ddpm_model_info mi;
    ddpm_model_get_info(model, &mi);
    t->P = mi.num_params;
    t->C = mi.in_channels;
    t->S = mi.sample_size;
    t->D = (int64_t)t->C * t->S * t->S;
    ddpm_status st = dd_train_config_validate(c);
    if (st == DDPM_OK) st = check_data(t, &mi);
    /* label dropout trains class K as "no label": saved models (and the shadow copied below) carry it for guidance */
    if (st == DDPM_OK && t->conditional && c->label_dropout > 0) st = ddpm_model_set_null_class(model, t->null_class);
    if (st == DDPM_OK) st = ddpm_model_set_guidance(model, 0);   /* measured for the old weights, not these */
    if (st == DDPM_OK) st = make_diffusion(t, betas);
    if (st == DDPM_OK) {   /* the plan first: it refuses a batch too large for memory before anything is sized */
        ddpm_plan_config pc;
        ddpm_plan_config_default(&pc);
        pc.max_batch = c->batch;
        pc.training = 1;
        pc.engine = c->engine;
        pc.memory_limit = c->memory_limit;
        st = ddpm_model_prepare(model, &pc);
        ddpm_model_set_train_mode(model, 1);
    }
    if (st == DDPM_OK) st = alloc_buffers(t);
    if (st == DDPM_OK) {
        ddpm_adamw_config ac;
        ac.lr = c->lr;
        ac.beta1 = c->adam_beta1;
        ac.beta2 = c->adam_beta2;
        ac.eps = c->adam_eps;
        ac.weight_decay = c->weight_decay;
        st = ddpm_adamw_create(&ac, t->P, &t->opt);
    }
    if (st == DDPM_OK) {   /* the shadow network: same configuration, the EMA as its parameters */
        char *json = NULL;
        if ((st = ddpm_model_config_json(model, &json)) == DDPM_OK) {
            st = ddpm_model_from_config_json(json, strlen(json), "EMA copy", 0, &t->shadow);
            ddpm_free(json);
        }
        if (st == DDPM_OK)
            memcpy(ddpm_model_params(t->shadow), ddpm_model_params(model), (size_t)t->P * sizeof(float));
    }
    if (st != DDPM_OK) {
        ddpm_trainer_free(t);
        return st;
    }
    t->s.num_params = t->P;
    t->s.num_class_embeds = mi.num_class_embeds;
    t->s.data_count = data->count;
    t->s.data_channels = data->channels;
    t->s.data_height = data->height;
    t->s.data_width = data->width;
    t->s.data_classes = data->num_classes;
    *out = t;
    return DDPM_OK;
}

ddpm_status ddpm_trainer_create(const ddpm_train_config *c, ddpm_model *model, const ddpm_dataset *data,
                                ddpm_trainer **out) {
    if (!out) {
        ddpm_model_free(model);
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_create: out is NULL");
    }
    *out = NULL;
    if (!c || !data) {
        ddpm_model_free(model);
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_create: NULL configuration or dataset");
    }
    dd_train_state *s = dd_calloc(1, sizeof *s);
    if (!s) {
        ddpm_model_free(model);
        return DDPM_ERR_NOMEM;
    }
    ddpm_status st = dd_train_state_set_config(s, c);
    if (st == DDPM_OK && s->c.lr_total_steps == 0) s->c.lr_total_steps = s->c.steps;   /* fixed from now on */
    if (st != DDPM_OK) ddpm_model_free(model);
    else st = dd_trainer_init(s, model, data, NULL, out);
    dd_free(s);
    if (st == DDPM_OK) {
        (*out)->should_stop = c->should_stop;
        (*out)->stop_user = c->stop_user;
    }
    return st;
}

void ddpm_trainer_free(ddpm_trainer *t) {
    if (!t) return;
    ddpm_model_free(t->model);
    ddpm_model_free(t->shadow);
    ddpm_adamw_free(t->opt);
    ddpm_diffusion_free(t->dif);
    dd_free(t->betas);
    dd_free(t->perm);
    dd_free(t->x0);
    dd_free(t->eps);
    dd_free(t->xt);
    dd_free(t->target);
    dd_free(t->pred);
    dd_free(t->dpred);
    dd_free(t->tf);
    dd_free(t->t);
    dd_free(t->labels);
    dd_free(t->w);
    dd_free(t->partial);
    dd_free(t);
}

/* ------------------------------------------------------------------ accessors */

const ddpm_train_config *ddpm_trainer_config(const ddpm_trainer *t) { return t ? &t->s.c : NULL; }

int64_t ddpm_trainer_steps_done(const ddpm_trainer *t) { return t ? t->s.step : 0; }

ddpm_model *ddpm_trainer_model(ddpm_trainer *t) { return t ? t->model : NULL; }

float *dd_trainer_ema(ddpm_trainer *t) { return t && t->s.c.use_ema ? ddpm_model_params(t->shadow) : NULL; }

const float *ddpm_trainer_ema(const ddpm_trainer *t) {
    if (!t) return NULL;
    return t->s.c.use_ema ? ddpm_model_params(t->shadow) : ddpm_model_params(t->model);
}

ddpm_status ddpm_trainer_sample_model(ddpm_trainer *t, int max_batch, ddpm_model **out) {
    if (!t || !out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_sample_model: NULL trainer or output");
    *out = NULL;
    if (max_batch < 1) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_sample_model: max_batch %d < 1", max_batch);
    if (!t->s.c.use_ema)
        memcpy(ddpm_model_params(t->shadow), ddpm_model_params(t->model), (size_t)t->P * sizeof(float));
    ddpm_status st;
    if (t->shadow_batch != max_batch) {
        ddpm_plan_config pc;
        ddpm_plan_config_default(&pc);
        pc.max_batch = max_batch;
        pc.engine = t->s.c.engine;
        pc.memory_limit = t->s.c.memory_limit;
        t->shadow_batch = 0;
        if ((st = ddpm_model_prepare(t->shadow, &pc)) != DDPM_OK) return st;
        t->shadow_batch = max_batch;
    }
    if ((st = ddpm_model_params_changed(t->shadow)) != DDPM_OK) return st;
    *out = t->shadow;
    return DDPM_OK;
}

/* ------------------------------------------------------------------ the step */

/* The data order of an epoch: Fisher-Yates over 0..count-1, j = floor(u (i + 1) / 2^32) with u the i-th
   uniform of the epoch's stream, so the order depends on (seed, epoch) only. */
static void make_perm(ddpm_trainer *t, int64_t epoch) {
    const int64_t n = t->data->count;
    uint32_t *p = t->perm, u[DD_PERM_BLOCK];
    for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    const uint64_t stream = ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)(epoch & 0xffffff), DD_TRAIN_PERM_ITEM);
    const uint64_t base = (uint64_t)(epoch >> 24) << 40;
    int64_t have = -1;
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t blk = i / DD_PERM_BLOCK * DD_PERM_BLOCK;
        if (blk != have) {
            int64_t m = n - blk < DD_PERM_BLOCK ? n - blk : DD_PERM_BLOCK;
            ddpm_rng_uniform_u32(t->s.c.seed, stream, base + (uint64_t)blk, u, (size_t)m);
            have = blk;
        }
        uint64_t j = ((uint64_t)u[i - blk] * (uint64_t)(i + 1)) >> 32;
        uint32_t tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    t->perm_epoch = epoch;
}

/* Loss weight of timestep k: 1, or min-SNR-gamma (Hang et al. 2023, eq. 12 and sec. 3.4) with
   SNR = abar / (1 - abar): min(SNR, g) / SNR for eps, min(SNR, g) for x0, min(SNR, g) / (SNR + 1) for v. */
static double loss_weight(const ddpm_trainer *t, int64_t k) {
    const double g = t->s.c.min_snr_gamma;
    if (g <= 0) return 1.0;
    const double ab = t->dif->alphas_cumprod[k], snr = ab / (1.0 - ab), m = snr < g ? snr : g;
    switch (t->s.c.objective) {
    case DDPM_PRED_EPS: return snr > g ? g / snr : 1.0;
    case DDPM_PRED_X0: return m;
    default: return m / (snr + 1.0);
    }
}

/* Fills micro-batch `micro` of step `s`: images from the data order (advancing *epoch, *pos), their
   timesteps, labels, flips and noise; then x_t and the target. */
static ddpm_status fill_batch(ddpm_trainer *t, int64_t s, int micro, int64_t *epoch, int64_t *pos) {
    const ddpm_train_config *c = &t->s.c;
    const int B = c->batch, T = c->schedule.T;
    const int64_t D = t->D, n = t->data->count;
    const uint64_t seed = c->seed, s_lo = (uint64_t)s & 0xffffff, s_hi = (uint64_t)s >> 24;
    for (int i = 0; i < B; i++) {
        const uint32_t g = (uint32_t)micro * (uint32_t)B + (uint32_t)i;   /* index in the global batch */
        if (t->perm_epoch != *epoch) make_perm(t, *epoch);
        const int64_t idx = t->perm[*pos];
        if (++*pos == n) {
            ++*epoch;
            *pos = 0;
        }
        float *x = t->x0 + (size_t)i * (size_t)D;
        ddpm_status st = ddpm_dataset_get_f32(t->data, idx, x);
        if (st != DDPM_OK) return st;
        uint32_t u[3];
        ddpm_rng_uniform_u32(seed, ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)s_lo, g), s_hi << 2, u, 3);
        t->t[i] = (int64_t)(((uint64_t)u[0] * (uint64_t)T) >> 32);
        t->tf[i] = (float)t->t[i];
        t->w[i] = loss_weight(t, t->t[i]);
        if (t->conditional) {
            const int drop = c->label_dropout > 0 && (double)u[1] < c->label_dropout * 4294967296.0;
            t->labels[i] = drop ? t->null_class : t->data->labels[idx];
        }
        if (c->hflip && (u[2] >> 31)) {   /* mirror every row */
            for (int64_t r = 0; r < (int64_t)t->C * t->S; r++) {
                float *row = x + r * t->S;
                for (int a = 0, b = t->S - 1; a < b; a++, b--) {
                    float tmp = row[a];
                    row[a] = row[b];
                    row[b] = tmp;
                }
            }
        }
        ddpm_rng_normal_f32(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)s_lo, g), s_hi << 32,
                            t->eps + (size_t)i * (size_t)D, (size_t)D);
    }
    ddpm_q_sample(t->dif, t->xt, t->x0, t->eps, t->t, B, D);
    ddpm_training_target(t->dif, c->objective, t->target, t->x0, t->eps, t->t, B, D);
    return DDPM_OK;
}

/* sum_i w_i |pred_i - target_i|^2 (double, in order) and dpred = 2 w_i / (G D) (pred - target). */
static double micro_loss(ddpm_trainer *t, double inv_count) {
    const int B = t->s.c.batch;
    const int64_t D = t->D;
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        const float *p = t->pred + (size_t)i * (size_t)D, *y = t->target + (size_t)i * (size_t)D;
        float *dp = t->dpred + (size_t)i * (size_t)D;
        const float k = (float)(2.0 * t->w[i] * inv_count);
        double se = 0.0;
        for (int64_t j = 0; j < D; j++) {
            const float diff = p[j] - y[j];
            se += (double)diff * (double)diff;
            dp[j] = k * diff;
        }
        total += t->w[i] * se;
    }
    return total;
}

static double grad_norm(ddpm_trainer *t, const float *g) {
    const int64_t P = t->P, nchunks = t->nchunks;
    double *part = t->partial;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * DD_NORM_CHUNK, hi = lo + DD_NORM_CHUNK < P ? lo + DD_NORM_CHUNK : P;
        double acc = 0.0;
        for (int64_t i = lo; i < hi; i++) acc += (double)g[i] * (double)g[i];
        part[k] = acc;
    }
    double total = 0.0;
    for (int64_t k = 0; k < nchunks; k++) total += part[k];
    return sqrt(total);
}

ddpm_status ddpm_trainer_step(ddpm_trainer *t, ddpm_train_stats *stats) {
    if (!t) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_step: trainer is NULL");
    const ddpm_train_config *c = &t->s.c;
    const int64_t s = t->s.step;
    if (t->should_stop && t->should_stop(t->stop_user))
        return dd_error(DDPM_ERR_INTERRUPTED, "training stopped on request after step %lld", (long long)s);
    if (s >= c->steps)
        return dd_error(DDPM_ERR_INVALID_ARG, "training: the run is complete (%lld of %lld steps); resume with more "
                        "steps to continue", (long long)s, (long long)c->steps);
    const int A = c->grad_accum, B = c->batch;
    const int64_t G = (int64_t)A * B;
    const double inv_count = 1.0 / ((double)G * (double)t->D);
    int64_t epoch = t->s.epoch, pos = t->s.position;
    double loss = 0.0;
    ddpm_status st;
    dd_profile *prof = dd_model_profile(t->model);   /* NULL unless profiling */
    double t0 = dd_profile_clock(prof);
    ddpm_model_zero_grad(t->model);
    for (int a = 0; a < A; a++) {   /* gradient accumulation: the grads of every micro-batch add up */
        if ((st = fill_batch(t, s, a, &epoch, &pos)) != DDPM_OK) return st;
        dd_profile_add(prof, DD_PROF_BATCH, 0, t0, 0.0, 16.0 * (double)B * t->D);
        ddpm_model_set_dropout_seed(t->model, c->seed, (uint64_t)s * (uint64_t)A + (uint64_t)a);
        st = ddpm_model_forward(t->model, t->pred, t->xt, t->tf, t->conditional ? t->labels : NULL, B);
        if (st != DDPM_OK) return st;
        t0 = dd_profile_clock(prof);
        loss += micro_loss(t, inv_count);
        dd_profile_add(prof, DD_PROF_LOSS, 0, t0, 0.0, 12.0 * (double)B * t->D);
        if ((st = ddpm_model_backward(t->model, t->dpred, NULL)) != DDPM_OK) return st;
        t0 = dd_profile_clock(prof);
    }
    loss *= inv_count;
    float *params = ddpm_model_params(t->model), *grads = ddpm_model_grads(t->model);
    const double norm = grad_norm(t, grads);
    if (!isfinite(loss) || !isfinite(norm))
        return dd_error(DDPM_ERR_NUMERIC, "training diverged at step %lld: the %s is %s; the weights of step %lld "
                        "are kept (resume from the last checkpoint, e.g. with a lower learning rate)",
                        (long long)(s + 1), isfinite(loss) ? "gradient norm" : "loss",
                        isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite", (long long)s);
    /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when below 1 */
    if (c->grad_clip > 0) {
        const double coef = c->grad_clip / (norm + 1e-6);
        if (coef < 1.0) {
            const float k = (float)coef;
            const int64_t P = t->P;
#pragma omp parallel for schedule(static) if (P >= DD_NORM_CHUNK)
            for (int64_t i = 0; i < P; i++) grads[i] *= k;
        }
    }
    const double lr = ddpm_train_lr(c, s);
    ddpm_adamw_set_lr(t->opt, lr);     /* rate 0 (the first warm-up step) is a real step at rate 0 */
    ddpm_adamw_step(t->opt, params, grads, lr);
    /* gradient norm, clipping and AdamW: read p, g, m, v; write p, m, v */
    dd_profile_add(prof, DD_PROF_ADAMW, 0, t0, 0.0, 32.0 * (double)t->P);
    if ((st = ddpm_model_params_changed(t->model)) != DDPM_OK) return st;
    double decay = 0.0;
    t0 = dd_profile_clock(prof);
    if (c->use_ema) {   /* diffusers EMAModel.step: s -= (1 - decay) (s - p) */
        decay = ddpm_train_ema_decay(c, t->s.ema_steps + 1);
        const float omd = (float)(1.0 - decay);
        float *e = ddpm_model_params(t->shadow);
        const int64_t P = t->P;
#pragma omp parallel for schedule(static) if (P >= DD_NORM_CHUNK)
        for (int64_t i = 0; i < P; i++) e[i] = e[i] - omd * (e[i] - params[i]);
        t->s.ema_steps++;
        dd_profile_add(prof, DD_PROF_EMA, 0, t0, 0.0, 12.0 * (double)t->P);
    }
    t->s.step = s + 1;
    t->s.adamw_steps = ddpm_adamw_steps(t->opt);
    t->s.epoch = epoch;
    t->s.position = pos;
    t->s.images_seen += G;
    if (stats) {
        stats->step = t->s.step;
        stats->loss = loss;
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->ema_decay = decay;
        stats->epoch = epoch;
        stats->images_seen = t->s.images_seen;
    }
    return DDPM_OK;
}
