/* test_train_step.c — the training step against an independent re-computation from the documented random
   streams (data order, timesteps, labels, flips, noise), Ho et al. 2020 Alg. 1 and min-SNR weights (Hang et al.
   2023); the learning-rate and EMA-decay schedules (diffusers); the EMA update; gradient clipping; NaN stops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static ddpm_dataset make_data(int count, int C, int S, int K) {
    ddpm_dataset d;
    memset(&d, 0, sizeof d);
    d.count = count;
    d.channels = C;
    d.height = d.width = S;
    d.num_classes = K;
    size_t n = (size_t)count * (size_t)(C * S * S);
    d.pixels = malloc(n);
    for (size_t i = 0; i < n; i++) d.pixels[i] = (uint8_t)((i * 53u + (i / 7u) * 3u) & 255u);
    if (K > 0) {
        d.labels = malloc((size_t)count * sizeof(int32_t));
        for (int i = 0; i < count; i++) d.labels[i] = (i * 5) % K;
    }
    return d;
}

static void free_data(ddpm_dataset *d) {
    free(d->pixels);
    free(d->labels);
}

static ddpm_model *load(const char *spec) {
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_load(spec, 3, &m));
    return m;
}

/* The documented data order of an epoch (docs/training.md): Fisher-Yates, j = floor(u (i + 1) / 2^32). */
static void perm_of(uint64_t seed, int64_t epoch, int64_t n, uint32_t *p) {
    for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    uint32_t *u = malloc((size_t)n * sizeof(uint32_t));
    ddpm_rng_uniform_u32(seed, ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)epoch, 0x7f000000u), 0, u, (size_t)n);
    for (int64_t i = n - 1; i >= 1; i--) {
        uint64_t j = ((uint64_t)u[i] * (uint64_t)(i + 1)) >> 32;
        uint32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    free(u);
}

/* The loss (and gradient norm) of step s re-computed with a second copy of the network. */
static void reference_step(const ddpm_train_config *c, const ddpm_dataset *data, ddpm_model *ref,
                           const float *params, int64_t s, int64_t *cursor, int K, double *loss, double *gnorm) {
    ddpm_model_info mi;
    ddpm_model_get_info(ref, &mi);
    memcpy(ddpm_model_params(ref), params, (size_t)mi.num_params * sizeof(float));
    CHECK_OK(ddpm_model_params_changed(ref));
    ddpm_diffusion *dif = NULL;
    CHECK_OK(ddpm_diffusion_create(&c->schedule, &dif));
    const int B = c->batch, A = c->grad_accum, S = mi.sample_size, C = mi.in_channels;
    const int64_t D = (int64_t)C * S * S, n = data->count;
    float *x0 = malloc((size_t)(B * D) * sizeof(float)), *eps = malloc((size_t)(B * D) * sizeof(float));
    float *xt = malloc((size_t)(B * D) * sizeof(float)), *y = malloc((size_t)(B * D) * sizeof(float));
    float *pred = malloc((size_t)(B * D) * sizeof(float)), *dp = malloc((size_t)(B * D) * sizeof(float));
    float tf[16];
    int64_t t[16], lab[16];
    double w[16];
    uint32_t *perm = malloc((size_t)n * sizeof(uint32_t));
    double total = 0;
    ddpm_model_zero_grad(ref);
    for (int a = 0; a < A; a++) {
        for (int i = 0; i < B; i++) {
            const uint32_t g = (uint32_t)(a * B + i);
            perm_of(c->seed, *cursor / n, n, perm);
            const int64_t idx = perm[*cursor % n];
            ++*cursor;
            CHECK_OK(ddpm_dataset_get_f32(data, idx, x0 + i * D));
            uint32_t u[3];
            ddpm_rng_uniform_u32(c->seed, ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)s, g), 0, u, 3);
            t[i] = (int64_t)(((uint64_t)u[0] * (uint64_t)c->schedule.T) >> 32);
            tf[i] = (float)t[i];
            lab[i] = K > 0 && (double)u[1] / 4294967296.0 < c->label_dropout ? K : (K > 0 ? data->labels[idx] : 0);
            if (c->hflip && (u[2] & 0x80000000u)) {
                float tmp[64];
                for (int r = 0; r < C * S; r++) {
                    for (int k = 0; k < S; k++) tmp[k] = x0[i * D + r * S + (S - 1 - k)];
                    memcpy(x0 + i * D + r * S, tmp, (size_t)S * sizeof(float));
                }
            }
            ddpm_rng_normal_f32(c->seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)s, g), 0, eps + i * D,
                                (size_t)D);
            const double ab = dif->alphas_cumprod[t[i]], snr = ab / (1 - ab), gm = c->min_snr_gamma;
            const double m = snr < gm ? snr : gm;
            w[i] = gm <= 0 ? 1.0 : c->objective == DDPM_PRED_EPS ? m / snr : c->objective == DDPM_PRED_X0 ? m : m / (snr + 1);
        }
        ddpm_q_sample(dif, xt, x0, eps, t, B, D);
        ddpm_training_target(dif, c->objective, y, x0, eps, t, B, D);
        CHECK_OK(ddpm_model_forward(ref, pred, xt, tf, K > 0 ? lab : NULL, B));
        for (int i = 0; i < B; i++) {
            double se = 0;
            for (int64_t j = 0; j < D; j++) {
                double d = (double)pred[i * D + j] - (double)y[i * D + j];
                se += d * d;
                dp[i * D + j] = (float)(2.0 * w[i] / ((double)A * B * D) * d);
            }
            total += w[i] * se;
        }
        CHECK_OK(ddpm_model_backward(ref, dp, NULL));
    }
    *loss = total / ((double)A * B * D);
    const float *gr = ddpm_model_grads(ref);
    double g2 = 0;
    for (int64_t i = 0; i < mi.num_params; i++) g2 += (double)gr[i] * gr[i];
    *gnorm = sqrt(g2);
    free(x0), free(eps), free(xt), free(y), free(pred), free(dp), free(perm);
    ddpm_diffusion_free(dif);
}

static void check_against_reference(const char *name, ddpm_train_config c, const char *spec, int K) {
    ddpm_dataset data = make_data(7, 3, 8, K);
    ddpm_trainer *t = NULL;
    CHECK_OK(ddpm_trainer_create(&c, load(spec), &data, &t));
    ddpm_model *ref = dd_test_model(spec, 3, c.engine, 1, c.batch);
    int64_t cursor = 0;
    for (int64_t s = 0; t && s < 4; s++) {   /* 4 steps of 6 images cross three epochs of 7 */
        double loss, gnorm;
        reference_step(&c, &data, ref, ddpm_model_params(ddpm_trainer_model(t)), s, &cursor, K, &loss, &gnorm);
        ddpm_train_stats st;
        CHECK_OK(ddpm_trainer_step(t, &st));
        CHECK_MSG(fabs(st.loss - loss) <= 1e-5 * loss, "%s step %lld: loss %.9g, reference %.9g", name, (long long)s,
                  st.loss, loss);
        CHECK_MSG(fabs(st.grad_norm - gnorm) <= 1e-4 * gnorm, "%s step %lld: gradient norm %.9g, reference %.9g",
                  name, (long long)s, st.grad_norm, gnorm);
        CHECK(st.images_seen == (s + 1) * c.batch * c.grad_accum);
        CHECK(st.epoch == (s + 1) * c.batch * c.grad_accum / 7);
        CHECK(st.lr == ddpm_train_lr(&c, s));
    }
    ddpm_trainer_free(t);
    ddpm_model_free(ref);
    free_data(&data);
}

static void test_schedules(void) {
    ddpm_train_config c;
    ddpm_train_config_default(&c);
    /* the defaults are the tested MNIST recipe of docs/train.md (ddpm train's defaults) */
    CHECK(c.lr == 5e-4 && c.warmup_steps == 100 && c.lr_schedule == DDPM_LR_CONSTANT && c.batch == 64);
    CHECK(c.grad_clip == 1.0 && c.use_ema == 1 && c.ema_max_decay == 0.9999 && c.label_dropout == 0.1);
    CHECK(c.checkpoint_every == 500 && c.keep_checkpoints == 2 && c.steps == 10000 && c.seed == 0);
    c.lr = 2e-4;
    c.warmup_steps = 10;
    c.steps = 110;
    CHECK(ddpm_train_lr(&c, 0) == 0.0);                  /* LambdaLR: the first warm-up step runs at 0 */
    CHECK(fabs(ddpm_train_lr(&c, 5) - 1e-4) < 1e-18);
    CHECK(ddpm_train_lr(&c, 10) == 2e-4 && ddpm_train_lr(&c, 1000000) == 2e-4);
    c.lr_schedule = DDPM_LR_COSINE;
    c.lr_total_steps = 110;
    CHECK(ddpm_train_lr(&c, 10) == 2e-4);
    CHECK(fabs(ddpm_train_lr(&c, 60) - 1e-4) < 1e-15);   /* half way: 0.5 (1 + cos(pi/2)) */
    CHECK(fabs(ddpm_train_lr(&c, 35) - 2e-4 * 0.5 * (1 + cos(3.14159265358979323846 * 0.25))) < 1e-15);
    CHECK(ddpm_train_lr(&c, 110) < 1e-20 && ddpm_train_lr(&c, 500) < 1e-20);
    c.steps = 1000;                                       /* a resume with more steps keeps the cosine's length */
    CHECK(fabs(ddpm_train_lr(&c, 60) - 1e-4) < 1e-15);
    /* diffusers EMAModel.get_decay: step = k - 1; 0 at first; 1 - (1 + step / inv_gamma)^-power, capped */
    CHECK(ddpm_train_ema_decay(&c, 1) == 0.0);
    CHECK(fabs(ddpm_train_ema_decay(&c, 2) - (1 - pow(2.0, -2.0 / 3.0))) < 1e-15);
    CHECK(fabs(ddpm_train_ema_decay(&c, 11) - (1 - pow(11.0, -2.0 / 3.0))) < 1e-15);
    CHECK(ddpm_train_ema_decay(&c, 100000000) == 0.9999);
    c.ema_warmup = 0;
    CHECK(fabs(ddpm_train_ema_decay(&c, 3) - 3.0 / 12.0) < 1e-15);
    c.ema_min_decay = 0.5;
    CHECK(ddpm_train_ema_decay(&c, 3) == 0.5);
}

/* EMA after each step against s -= (1 - decay)(s - p); clipping through AdamW's first moment m = (1 - b1) g. */
static void test_ema_and_clip(void) {
    ddpm_dataset data = make_data(9, 3, 8, 0);
    for (int clip = 0; clip < 2; clip++) {
        ddpm_train_config c;
        ddpm_train_config_default(&c);
        c.batch = 3;
        c.warmup_steps = 0;
        c.lr = 1e-3;
        c.grad_clip = clip ? 1e-3 : 0;
        ddpm_trainer *t = NULL;
        CHECK_OK(ddpm_trainer_create(&c, load("tiny"), &data, &t));
        if (!t) continue;
        ddpm_model_info mi;
        ddpm_model_get_info(ddpm_trainer_model(t), &mi);
        const int64_t P = mi.num_params;
        float *e = malloc((size_t)P * sizeof(float));
        memcpy(e, ddpm_trainer_ema(t), (size_t)P * sizeof(float));
        ddpm_train_stats st;
        for (int k = 1; k <= 3; k++) {
            CHECK_OK(ddpm_trainer_step(t, &st));
            const float *p = ddpm_model_params(ddpm_trainer_model(t));
            const float omd = (float)(1.0 - ddpm_train_ema_decay(&c, k));
            CHECK(st.ema_decay == ddpm_train_ema_decay(&c, k));
            for (int64_t i = 0; i < P; i++) e[i] = e[i] - omd * (e[i] - p[i]);
            CHECK_MSG(memcmp(e, ddpm_trainer_ema(t), (size_t)P * sizeof(float)) == 0, "EMA after step %d", k);
            if (k == 1) {   /* m after one step = (1 - b1) g, g the clipped gradient */
                const char *dir = dd_test_tmpdir(clip ? "train_clip" : "train_noclip");
                char path[1100];
                snprintf(path, sizeof path, "%s/ck", dir);
                CHECK_OK(ddpm_trainer_save(t, path));
                snprintf(path, sizeof path, "%s/ck/training_state.safetensors", dir);
                ddpm_safetensors *sf = NULL;
                float *m = malloc((size_t)P * sizeof(float));
                CHECK_OK(ddpm_st_open(path, &sf));
                CHECK_OK(ddpm_st_read_f32(sf, "adamw_m", m, P));
                double n2 = 0;
                for (int64_t i = 0; i < P; i++) n2 += (double)m[i] * m[i];
                const double gn = sqrt(n2) / (1 - c.adam_beta1), want = clip ? c.grad_clip : st.grad_norm;
                CHECK_MSG(fabs(gn - want) <= 1e-3 * want, "clip %d: |g| after clipping %.9g, want %.9g", clip, gn, want);
                CHECK(st.grad_norm > 1e-2);
                ddpm_st_close(sf);
                free(m);
                dd_test_remove_dir(dir);
            }
        }
        free(e);
        ddpm_trainer_free(t);
    }
    free_data(&data);
}

/* A NaN stops the run with DDPM_ERR_NUMERIC naming the step; state and the last checkpoint stay good. */
static void test_nan(void) {
    ddpm_dataset data = make_data(9, 3, 8, 0);
    ddpm_train_config c;
    ddpm_train_config_default(&c);
    c.batch = 3;
    c.steps = 10;
    c.checkpoint_every = 1;
    c.keep_checkpoints = 2;
    ddpm_trainer *t = NULL;
    CHECK_OK(ddpm_trainer_create(&c, load("tiny"), &data, &t));
    if (!t) return;
    const char *dir = dd_test_tmpdir("train_nan");
    for (int k = 0; k < 3; k++) {
        CHECK_OK(ddpm_trainer_step(t, NULL));
        CHECK_OK(ddpm_trainer_checkpoint(t, dir, NULL));
    }
    ddpm_model *m = ddpm_trainer_model(t);
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    float *before = malloc((size_t)mi.num_params * sizeof(float));
    ddpm_model_params(m)[5] = NAN;
    CHECK_OK(ddpm_model_params_changed(m));
    memcpy(before, ddpm_model_params(m), (size_t)mi.num_params * sizeof(float));
    CHECK_FAIL(ddpm_trainer_run(t, dir, NULL, NULL), DDPM_ERR_NUMERIC);
    CHECK_MSG(strstr(ddpm_last_error(), "step 4") != NULL, "message: %s", ddpm_last_error());
    CHECK(ddpm_trainer_steps_done(t) == 3);
    CHECK(memcmp(before, ddpm_model_params(m), (size_t)mi.num_params * sizeof(float)) == 0);
    ddpm_trainer_free(t);
    free(before);
    t = NULL;
    CHECK_OK(ddpm_trainer_resume(dir, NULL, &data, NULL, &t));
    CHECK(t && ddpm_trainer_steps_done(t) == 3);
    ddpm_trainer_free(t);
    free_data(&data);
    dd_test_remove_dir(dir);
}

int main(void) {
    ddpm_set_threads(1);   /* the mathematics, not the threading, is under test: fast on a busy machine */
    test_schedules();
    ddpm_train_config c;
    ddpm_train_config_default(&c);
    c.batch = 3;
    c.grad_accum = 2;
    c.warmup_steps = 2;
    c.lr = 1e-3;
    c.seed = 99;
    c.hflip = 1;
    c.schedule.T = 50;
    check_against_reference("eps", c, "tiny", 0);
    c.min_snr_gamma = 5;
    check_against_reference("eps min-SNR", c, "tiny", 0);
    c.objective = DDPM_PRED_X0;
    check_against_reference("x0 min-SNR", c, "tiny", 0);
    c.objective = DDPM_PRED_V;
    c.schedule.name = "cosine";
    check_against_reference("v min-SNR cosine", c, "tiny", 0);
    c.label_dropout = 0.4;
    c.engine = DDPM_ENGINE_REFERENCE;
    check_against_reference("v class", c, dd_test_data("unet_tiny_class"), 9);
    test_ema_and_clip();
    test_nan();
    return dd_test_finish("test_train_step");
}
