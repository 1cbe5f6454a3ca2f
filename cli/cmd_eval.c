/* cmd_eval.c — `ddpm eval`: samples (drawn, or read with --samples) scored against a dataset's test images, bits/dim
   of test images (--nll), or real and degraded data scored instead (--calibrate); --json writes the results. */
#include <ddpm.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_common.h"
#include "options.h"

static const cli_option options[] = {
    {"model", "DIR|PRESET", NULL, "the model: a pipeline, unet or fixture folder, a config.json or a preset "
                                  "(default: $DDPM_MODEL, else the shipped models/DATA)"},
    {"data", "mnist|fashion-mnist", NULL, "the dataset the samples are measured against (required)"},
    {"data-dir", "DIR", NULL, "folder with the dataset's files (default: $DDPM_DATA/NAME, else ~/.cache/ddpm/NAME)"},
    {"classifier", "FILE", NULL, "the feature classifier (default: the shipped models/eval/NAME-classifier.safetensors)"},
    {"num", "N", "1000", "samples to draw and score (and held-out test images of the memorisation ratio)"},
    {"samples", "FILE|DIR", NULL, "score stored samples instead of drawing them: a 'ddpm sample --save-tensor' file "
                                  "or a folder of PNGs"},
    APP_OPT_SAMPLER("ddim"), APP_OPT_STEPS, APP_OPT_ETA, APP_OPT_SPACING, APP_OPT_CLIP, APP_OPT_SEED, APP_OPT_CLASS,
    APP_OPT_GUIDANCE,
    {"batch", "B", "50", "images per network call; the results do not depend on it"},
    {"save-samples", "FILE", NULL, "also write the drawn samples (tensor 'samples', and 'labels') to score again later"},
    {"nll", "N", "0", "also the test-set NLL in bits/dim from the variational bound, on N test images (T network "
                      "calls per image)"},
    {"nll-start", "I", "0", "first test image of --nll"},
    {"calibrate", NULL, NULL, "score real data instead of samples: test images, training images, test images with "
                              "noise, blurred, and of half the classes"},
    {"json", "FILE", NULL, "write the results as JSON ('-' = standard output)"},
    APP_OPT_THREADS, APP_OPT_ENGINE, {NULL, NULL, NULL, NULL},
};

/* The numbers of one set, after "NAME:" when name is not NULL. */
static void print_score(const char *name, const ddpm_eval_metrics *s) {
    if (name) printf("%s:\n", name);
    printf("  FID (classifier features)  %.2f\n  feature spread             %.3f (trace of the feature covariance over "
           "the test set's)\n  label entropy              %.3f (uniform: ln %d = %.3f)\n  mean confidence            "
           "%.3f\n", s->fid, s->spread, s->entropy, s->num_classes, log((double)s->num_classes), s->confidence);
    if (!isnan(s->agreement)) printf("  agrees with its label      %.3f\n", s->agreement);
    printf("  label histogram           ");
    for (int k = 0; k < s->num_classes; k++) printf(" %d:%lld", k, (long long)s->histogram[k]);
    printf("\n  memorisation ratio         %.3f (nearest training image: %.3f; held-out test images: %.3f)\n"
           "  mean pixel                 %.3f\n", s->ratio, s->nearest, s->held_out_nearest, s->pixel_mean);
}

/* "4.2 s" since t0 (in a static buffer). */
static const char *since(double t0) {
    static char buf[32];
    cli_duration(buf, sizeof buf, cli_now() - t0);
    return buf;
}

/* The library's callbacks: before each calibration set is scored; before each chunk of bits/dim (user: app_ctx). */
static ddpm_status on_set(void *user, const char *name, int64_t available, int64_t N) {
    (void)user;
    if (available >= N) printf("calibration: %s...\n", name);
    else printf("calibration: %s skipped (the test set has only %lld such images after the first %lld)\n", name,
                (long long)available, (long long)N);
    fflush(stdout);
    return DDPM_OK;
}

static ddpm_status on_chunk(void *user, int64_t first, int64_t n) {
    app_progress_chunk(user, first, n);
    return DDPM_OK;
}

/* The command line, parsed once, and what a run holds (released by run). */
typedef struct {
    const char *data, *samples, *json, *save, *classifier;
    long long num, batch, nll, nll_start;
    int calibrate, ncal;
    char shipped[4200], default_model[4200], what[512];
    app_ctx c;
    ddpm_eval_reference *ref;
    ddpm_eval_reference_info ri;
    ddpm_eval_samples stored, scored;   /* read with --samples; the images scored and their labels (not owned) */
    float *drawn;                       /* [n, D] drawn samples */
    ddpm_eval_metrics score, cal[DDPM_EVAL_CALIBRATION_SETS];
    const char *cal_names[DDPM_EVAL_CALIBRATION_SETS];
    ddpm_eval_bpd_result nll_result;
} eval_run;

static int parse(const cli_args *a, eval_run *e) {
    e->samples = cli_str(a, "samples"), e->json = cli_str(a, "json"), e->save = cli_str(a, "save-samples");
    e->calibrate = cli_flag(a, "calibrate");
    int rc = app_parse_common(a, &e->c);
    if (rc == CLI_OK) rc = cli_require(a, "data");
    if (rc == CLI_OK) rc = cli_int(a, "num", 2, 10000, &e->num);
    if (rc == CLI_OK) rc = cli_int(a, "batch", 1, 4096, &e->batch);
    if (rc == CLI_OK) rc = cli_int(a, "nll", 0, 10000, &e->nll);
    if (rc == CLI_OK) rc = cli_int(a, "nll-start", 0, 9999, &e->nll_start);
    if (rc == CLI_OK && e->samples && e->calibrate) rc = cli_usage_error("--samples and --calibrate exclude each other");
    if (rc == CLI_OK && e->save && (e->samples || e->calibrate))
        rc = cli_usage_error("--save-samples writes drawn samples; it does not go with --%s",
                             e->samples ? "samples" : "calibrate");
    if (rc != CLI_OK) return rc;
    e->data = cli_str(a, "data");
    if (strcmp(e->data, "mnist") != 0 && strcmp(e->data, "fashion-mnist") != 0)
        return cli_usage_error("--data %s: ddpm eval knows mnist and fashion-mnist", e->data);
    snprintf(e->default_model, sizeof e->default_model, "%s/models/%s", cli_share_dir(), e->data);
    e->c.default_model = e->default_model;   /* the shipped model of the dataset */
    snprintf(e->shipped, sizeof e->shipped, "%s/models/eval/%s-classifier.safetensors", cli_share_dir(), e->data);
    e->classifier = cli_given(a, "classifier") ? cli_str(a, "classifier") : e->shipped;
    if (e->calibrate && e->num > 5000)
        return cli_usage_error("--calibrate --num %lld: at most 5000 (it uses 2N test images)", e->num);
    return CLI_OK;
}

/* Draws the samples as 'ddpm sample' does (and writes them with --save-samples). */
static int draw(eval_run *e) {
    app_ctx *c = &e->c;
    ddpm_sampler_config cfg;
    int64_t n = e->scored.num = e->num;
    int rc = app_labels(c, n, 1);
    if (rc != CLI_OK || (rc = app_sampler_config(c, DDPM_SAMPLER_DDIM, &cfg)) != CLI_OK) return rc;
    if (e->batch > n) e->batch = n;
    app_hook(c, &cfg);
    if ((rc = app_prepare(c, (int)e->batch)) != CLI_OK) return rc;
    double *xd = malloc(sizeof(double) * (size_t)n * (size_t)c->D), ts = cli_now();
    if (!xd) return cli_error(CLI_FAIL, "out of memory for %lld images", (long long)n);
    app_progress_start(c, "sampling", (n + e->batch - 1) / e->batch * cfg.steps, n);
    if ((rc = app_sample_all(c, &cfg, xd, n, APP_XT_SEED)) == CLI_OK)
        e->drawn = app_to_float(xd, (size_t)n * (size_t)c->D);
    free(xd);
    if (rc != CLI_OK || !(e->scored.x = e->drawn)) return rc != CLI_OK ? rc : cli_error(CLI_FAIL, "out of memory");
    e->scored.labels = c->labels;
    printf("sampled %lld images in %s\n", (long long)n, since(ts));
    snprintf(e->what, sizeof e->what, "%lld samples of %s, %s %d steps, guidance %g, seed %llu", (long long)n, c->spec,
             app_sampler_name(cfg.kind), cfg.steps, c->guidance, (unsigned long long)c->seed);
    char *settings = e->save ? cli_settings(c->a) : NULL;
    if (e->save && !settings) return cli_error(CLI_FAIL, "out of memory");
    if (e->save && (rc = app_save_samples(c, e->save, e->drawn, n, c->labels, settings)) == CLI_OK)
        printf("wrote %s: samples [%lld, %d, %d, %d]\n", e->save, (long long)n, c->C, c->S, c->S);
    free(settings);
    return rc;
}

/* Bits/dim of --nll test images from --nll-start with the model's scheduler, unconditionally. */
static int run_nll(eval_run *e) {
    app_ctx *c = &e->c;
    int batch = (int)(e->batch < e->nll ? e->batch : e->nll), rc;
    if (!c->guided && (rc = app_prepare(c, batch)) != CLI_OK) return rc;
    if (batch > c->batch) batch = c->batch;
    if (c->info.num_class_embeds > 0 && c->info.null_class < 0)
        return cli_error(CLI_FAIL, "--nll: the model is class-conditional without a null class; the bound needs an "
                         "unconditional model");
    const ddpm_bpd_config bc = {.prediction = c->sched.prediction, .variance = c->sched.variance, .clip = 1,
                                .seed = c->seed, .on_step = app_on_step, .step_user = c};   /* as the scheduler */
    app_progress_start(c, "bits/dim", (e->nll + batch - 1) / batch * c->d->T, e->nll);
    if (ddpm_eval_bpd(e->ref, c->model, c->d, &bc, e->nll_start, e->nll, batch, on_chunk, c, &e->nll_result) != DDPM_OK)
        return app_fail(c, 0);
    app_progress_end(c);
    return CLI_OK;
}

/* The results on standard output, and with --json as JSON. */
static int report(const eval_run *e, double t0) {
    printf("%s vs the %lld %s test images (classifier: %s, test accuracy %.4f)\n", e->what, (long long)e->ri.test_count,
           e->data, e->ri.classifier.dataset[0] ? e->ri.classifier.dataset : "?", e->ri.classifier.test_accuracy);
    for (int i = 0; i < e->ncal; i++) print_score(e->cal_names[i], &e->cal[i]);
    if (!e->calibrate) print_score(NULL, &e->score);
    const ddpm_eval_bpd_result *b = &e->nll_result;
    if (e->nll > 0)
        printf("  NLL                        %.4f bits/dim +- %.4f (test images %lld..%lld; prior %.5f, decoder %.4f)\n",
               b->bits_per_dim, b->standard_error, (long long)b->first, (long long)(b->first + b->num - 1), b->prior,
               b->decoder);
    printf("eval: done in %s\n", since(t0));
    if (!e->json) return CLI_OK;
    const ddpm_eval_results r = {e->data, e->what, &e->ri, e->calibrate ? NULL : &e->score, e->cal, e->cal_names,
                                 e->ncal, e->nll > 0 ? &e->nll_result : NULL};
    char *text = NULL;
    cli_text_file tf;
    int rc = ddpm_eval_results_json(&r, &text) == DDPM_OK ? cli_text_open(&tf, e->json) : cli_fail();
    if (rc == CLI_OK) {
        fputs(text, tf.f);
        rc = cli_text_commit(&tf);
    }
    ddpm_free(text);
    if (rc == CLI_OK && strcmp(e->json, "-") != 0) printf("wrote %s\n", e->json);
    return rc;
}

static int evaluate(eval_run *e) {
    app_ctx *c = &e->c;
    double t0 = cli_now();
    int rc;
    printf("eval: loading %s and its classifier...\n", e->data);
    fflush(stdout);
    if (ddpm_eval_reference_create(e->data, cli_str(c->a, "data-dir"), e->classifier, &e->ref) != DDPM_OK)
        return cli_fail();
    ddpm_eval_reference_get_info(e->ref, &e->ri);
    long long count = e->ri.test_count, limit = e->calibrate ? count / 2 : count;
    if (!e->samples && e->num > limit)
        return cli_usage_error("--num %lld: the %s test set has %lld images, enough for %lld%s (the memorisation ratio "
                               "needs as many held-out test images)", e->num, e->data, count, limit,
                               e->calibrate ? " with --calibrate" : "");
    if (e->nll_start + e->nll > count)
        return cli_usage_error("--nll %lld --nll-start %lld: the test set has %lld images", e->nll, e->nll_start, count);
    if ((!(e->samples || e->calibrate) || e->nll > 0) && (rc = app_load_model(c)) != CLI_OK) return rc;
    if (c->model && ddpm_eval_reference_check_model(e->ref, c->model) != DDPM_OK)
        return cli_error(CLI_FAIL, "%s %s", c->spec, ddpm_last_error());
    if (e->calibrate) {
        if (ddpm_eval_calibrate(e->ref, e->num, c->seed, on_set, NULL, e->cal, e->cal_names, &e->ncal) != DDPM_OK)
            return cli_fail();
        snprintf(e->what, sizeof e->what, "calibration on %s, %lld images per row", e->data, e->num);
    } else if (e->samples) {
        if (ddpm_eval_samples_read(e->ref, e->samples, &e->stored) != DDPM_OK)
            return cli_error(CLI_FAIL, "--samples %s", ddpm_last_error());
        e->scored = e->stored;
        if (cli_given(c->a, "num") && e->num != e->stored.num)
            return cli_usage_error("--num %lld: --samples %s holds %lld images; leave --num out or make them agree",
                                   e->num, e->samples, (long long)e->stored.num);
        snprintf(e->what, sizeof e->what, "%lld stored samples from %s", (long long)e->stored.num, e->samples);
    } else if ((rc = draw(e)) != CLI_OK) {
        return rc;
    }
    if (!e->calibrate) {
        double ts = cli_now();
        if (ddpm_eval_score(e->ref, e->scored.x, e->scored.num, e->scored.labels, &e->score) != DDPM_OK)
            return cli_error(CLI_FAIL, "samples: %s", ddpm_last_error());
        printf("scored %lld images in %s\n", (long long)e->scored.num, since(ts));
    }
    if (e->nll > 0 && (rc = run_nll(e)) != CLI_OK) return rc;
    return report(e, t0);
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    eval_run *e = calloc(1, sizeof *e);
    if (!e) return cli_error(CLI_FAIL, "out of memory");
    int rc = parse(a, e);
    if (rc == CLI_OK) rc = evaluate(e);
    app_free(&e->c);
    ddpm_eval_samples_free(&e->stored);
    ddpm_eval_reference_free(e->ref);
    free(e->drawn);
    free(e);
    return rc;
}

const cli_command cli_cmd_eval = {
    "eval",
    "measure sample quality: FID, classes, memorisation, bits/dim (mnist, fashion-mnist)",
    "--data mnist|fashion-mnist [--model DIR] [--num N] [--sampler S] [--steps N] [--class K] [--guidance W]\n"
    "                 [--samples FILE|DIR] [--nll N] [--calibrate] [--json FILE] [options]",
    NULL, 0, 0, options,
    "Samples are drawn as 'ddpm sample' draws them (a conditional model cycles through its classes) and scored\n"
    "against the dataset's 10,000 test images with the shipped classifier's 128 features (FID), its predictions\n"
    "(label histogram, entropy, mean confidence, agreement with the conditioning label) and nearest training\n"
    "images in pixel space: the memorisation ratio is the samples' mean distance over that of as many held-out\n"
    "test images (about 1 when healthy; near 0 for copies). FID depends on N: compare runs with the same --num.\n"
    "Everything is deterministic for a seed. See docs/quality.md.\n\nexamples:\n"
    "  ddpm eval --data mnist                                  (1,000 samples of the shipped model)\n"
    "  ddpm eval --data mnist --sampler dpmpp2m --steps 20 --json dpm20.json\n"
    "  ddpm eval --data mnist --samples samples.safetensors\n  ddpm eval --data mnist --calibrate\n"
    "  ddpm eval --data mnist --num 100 --nll 100\n",
    run,
};
