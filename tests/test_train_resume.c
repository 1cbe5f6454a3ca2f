/* test_train_resume.c — exact resume: 2N steps in one run and N steps, save, resume to 2N give bit-identical
   weights, EMA, AdamW moments and losses (constant and cosine rates, accumulation, labels, dropout, flips), on
   every backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N_STEPS 4

/* A small dataset in memory: count images C x S x S with a deterministic pattern, labels i mod K. */
static ddpm_dataset make_data(int count, int C, int S, int K) {
    ddpm_dataset d;
    memset(&d, 0, sizeof d);
    d.count = count;
    d.channels = C;
    d.height = d.width = S;
    d.num_classes = K;
    size_t n = (size_t)count * (size_t)(C * S * S);
    d.pixels = malloc(n);
    for (size_t i = 0; i < n; i++) d.pixels[i] = (uint8_t)((i * 37u + (i / 64u) * 11u) & 255u);
    if (K > 0) {
        d.labels = malloc((size_t)count * sizeof(int32_t));
        for (int i = 0; i < count; i++) d.labels[i] = i % K;
    }
    return d;
}

static void free_data(ddpm_dataset *d) {
    free(d->pixels);
    free(d->labels);
}

/* The tiny preset, or the class-conditional tiny fixture config with dropout 0.1. */
static ddpm_model *make_model(int conditional) {
    ddpm_model *m = NULL;
    if (!conditional) {
        CHECK_OK(ddpm_model_load("tiny", 3, &m));
        return m;
    }
    cJSON *cfg = dd_json_load(dd_test_data("unet_tiny_class/config.json"));
    cJSON_ReplaceItemInObject(cfg, "dropout", cJSON_CreateNumber(0.1));
    char *text = cJSON_PrintUnformatted(cfg);
    CHECK_OK(ddpm_model_from_config_json(text, strlen(text), "tiny class", 3, &m));
    free(text);
    cJSON_Delete(cfg);
    return m;
}

typedef struct {
    float *params, *ema;
    double losses[2 * N_STEPS];
    int64_t P;
} run_result;

static void keep_result(ddpm_trainer *t, run_result *r) {
    ddpm_model *m = ddpm_trainer_model(t);
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    r->P = mi.num_params;
    r->params = malloc((size_t)r->P * sizeof(float));
    r->ema = malloc((size_t)r->P * sizeof(float));
    memcpy(r->params, ddpm_model_params(m), (size_t)r->P * sizeof(float));
    memcpy(r->ema, ddpm_trainer_ema(t), (size_t)r->P * sizeof(float));
}

static void steps(ddpm_trainer *t, run_result *r, int from, int to) {
    for (int s = from; s < to; s++) {
        ddpm_train_stats st;
        CHECK_OK(ddpm_trainer_step(t, &st));
        CHECK(st.step == s + 1);
        r->losses[s] = st.loss;
    }
}

static int stop_at(void *user) {
    ddpm_trainer **t = user;
    return ddpm_trainer_steps_done(*t) >= N_STEPS;
}

/* The AdamW moments are compared through the saved state files, byte for byte. */
static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int x = fgetc(fa), y = fgetc(fb);
        if (x != y) same = 0;
        if (x == EOF || y == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* mode 0: a run of N steps ends, is resumed with steps 2N. mode 1: a run of 2N steps is stopped at N by
   should_stop inside ddpm_trainer_run (which writes the checkpoint), then resumed from the run folder. */
static void check_case(const char *name, const ddpm_train_config *base, int conditional, int mode) {
    ddpm_dataset data = make_data(11, 3, 8, conditional ? 9 : 0);
    const char *dir = dd_test_tmpdir(name);
    char one[1100], two[1100];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(two, sizeof two, "%s/two", dir);

    /* one run of 2N steps */
    ddpm_train_config c = *base;
    c.steps = 2 * N_STEPS;
    ddpm_trainer *t = NULL;
    run_result a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_OK(ddpm_trainer_create(&c, make_model(conditional), &data, &t));
    if (!t) return;
    steps(t, &a, 0, 2 * N_STEPS);
    keep_result(t, &a);
    CHECK_OK(ddpm_trainer_save(t, one));
    ddpm_trainer_free(t);

    /* N steps, stop, resume to 2N */
    c = *base;
    c.steps = mode == 0 ? N_STEPS : 2 * N_STEPS;
    c.checkpoint_every = 0;
    t = NULL;
    if (mode == 1) {
        c.should_stop = stop_at;
        c.stop_user = &t;
    }
    CHECK_OK(ddpm_trainer_create(&c, make_model(conditional), &data, &t));
    if (!t) return;
    if (mode == 0) {
        steps(t, &b, 0, N_STEPS);
        CHECK_OK(ddpm_trainer_run(t, two, NULL, NULL));   /* nothing left to do: just the final save */
    } else {
        CHECK_FAIL(ddpm_trainer_run(t, two, NULL, NULL), DDPM_ERR_INTERRUPTED);
        CHECK(strstr(ddpm_last_error(), "checkpoint") != NULL);
    }
    CHECK(ddpm_trainer_steps_done(t) == N_STEPS);
    ddpm_trainer_free(t);
    ddpm_train_resume_options o;
    ddpm_train_resume_options_default(&o);
    o.steps = mode == 0 ? 2 * N_STEPS : 0;
    o.engine = base->engine;   /* resumed on the backend the run started on */
    t = NULL;
    CHECK_OK(ddpm_trainer_resume(two, NULL, &data, &o, &t));
    if (!t) return;
    CHECK(ddpm_trainer_steps_done(t) == N_STEPS);
    CHECK(ddpm_trainer_config(t)->steps == 2 * N_STEPS);
    if (mode == 0) {
        /* the losses of the first half were recorded by the first run */
        for (int s = 0; s < N_STEPS; s++) b.losses[s] = a.losses[s];
    }
    steps(t, &b, N_STEPS, 2 * N_STEPS);
    keep_result(t, &b);
    CHECK_FAIL(ddpm_trainer_step(t, NULL), DDPM_ERR_INVALID_ARG);   /* the run is complete */
    CHECK_OK(ddpm_trainer_save(t, two));
    ddpm_trainer_free(t);

    CHECK_MSG(memcmp(a.params, b.params, (size_t)a.P * sizeof(float)) == 0, "%s: weights differ after resume", name);
    CHECK_MSG(memcmp(a.ema, b.ema, (size_t)a.P * sizeof(float)) == 0, "%s: EMA differs after resume", name);
    for (int s = N_STEPS; s < 2 * N_STEPS; s++)
        CHECK_MSG(a.losses[s] == b.losses[s], "%s: loss of step %d: %.17g vs %.17g", name, s + 1, a.losses[s],
                  b.losses[s]);
    snprintf(one, sizeof one, "%s/one/training_state.safetensors", dir);
    snprintf(two, sizeof two, "%s/two/training_state.safetensors", dir);
    CHECK_MSG(same_file(one, two), "%s: weights or AdamW moments differ after resume", name);
    snprintf(one, sizeof one, "%s/one/unet/diffusion_pytorch_model.safetensors", dir);
    snprintf(two, sizeof two, "%s/two/unet/diffusion_pytorch_model.safetensors", dir);
    CHECK_MSG(same_file(one, two), "%s: saved EMA weights differ after resume", name);
    /* the saved pipeline holds the EMA */
    ddpm_model *loaded = NULL;
    snprintf(one, sizeof one, "%s/one", dir);
    CHECK_OK(ddpm_model_load(one, 0, &loaded));
    if (loaded) CHECK(memcmp(ddpm_model_params(loaded), a.ema, (size_t)a.P * sizeof(float)) == 0);
    ddpm_model_free(loaded);
    free(a.params);
    free(a.ema);
    free(b.params);
    free(b.ema);
    free_data(&data);
    dd_test_remove_dir(dir);
}

int main(void) {
    ddpm_set_threads(1);   /* fast on a busy machine; one case below runs on two threads */
    ddpm_train_config c;
    ddpm_train_config_default(&c);
    c.batch = 4;
    c.seed = 11;
    c.warmup_steps = 3;
    c.lr = 1e-3;
    c.checkpoint_every = 0;
    c.hflip = 1;
    check_case("resume_constant", &c, 0, 0);

    ddpm_train_config k = c;
    k.lr_schedule = DDPM_LR_COSINE;
    k.warmup_steps = 2;
    check_case("resume_cosine", &k, 0, 1);

    /* labels with label dropout, dropout layers, accumulation, v objective with min-SNR, a cosine schedule */
    ddpm_train_config l = c;
    l.grad_accum = 2;
    l.batch = 3;
    l.label_dropout = 0.3;
    l.objective = DDPM_PRED_V;
    l.min_snr_gamma = 5.0;
    l.schedule.name = "cosine";
    l.schedule.T = 100;
    l.grad_clip = 0.05;
    check_case("resume_class", &l, 1, 0);
    ddpm_set_threads(2);
    check_case("resume_two_threads", &c, 0, 1);
    ddpm_set_threads(1);
    /* every backend resumes exactly */
    ddpm_train_config r = c;
    r.engine = DDPM_ENGINE_REFERENCE;
    check_case("resume_reference", &r, 0, 0);
    if (ddpm_bf16_supported()) {
        r.engine = DDPM_ENGINE_BF16;
        check_case("resume_bf16", &r, 0, 1);
    } else {
        printf("SKIPPED: resume_bf16: this CPU has no AMX\n");
    }
    ddpm_set_threads(0);
    return dd_test_finish("test_train_resume");
}
