/* app_common.c — the shared machinery of the sampling and application commands (see app_common.h). */
#include "app_common.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

float *app_to_float(const double *x, size_t n) {
    float *f = malloc(sizeof(float) * (n ? n : 1));
    if (f)
        for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

const char *app_sampler_name(ddpm_sampler_kind k) { return ddpm_enum_name(DDPM_ENUM_SAMPLER, (int)k); }

int app_number_list(const char *opt, const char *s, double lo, double hi, int integer, int none, const char *what,
                    double *vals, int max, int *n) {
    *n = 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        char item[64], *end = item;
        if (len < sizeof item) memcpy(item, p, len), item[len] = 0;
        const int is_none = none && len < sizeof item && strcmp(item, "none") == 0;
        double v = is_none ? -1 : len == 0 || len >= sizeof item ? NAN : strtod(item, &end);
        if (!is_none && (isnan(v) || *end || v < lo || v > hi || (integer && v != floor(v))))
            return cli_usage_error("--%s %s: '%.*s' is not %s", opt, s, (int)len, p, what);
        if (*n >= max) return cli_usage_error("--%s %s: at most %d values", opt, s, max);
        vals[(*n)++] = v;
        if (!p[len]) return CLI_OK;
        p += len + 1;
    }
}

int app_parse_common(const cli_args *a, app_ctx *c) {
    app_opts *o = &c->opt;
    long long threads = 0;
    int rc = CLI_OK, v = 0;
    c->a = a;
    c->engine = DDPM_ENGINE_FAST;
    o->sampler = o->spacing = o->clip = -1;
    o->guidance = NAN;
#define GIVEN(name) (rc == CLI_OK && cli_has(a, name) && cli_given(a, name))
    if (cli_has(a, "seed")) rc = cli_u64(a, "seed", &c->seed);
    if (rc == CLI_OK && cli_has(a, "threads")) rc = cli_threads(a, "threads", 0, &threads);
    if (rc == CLI_OK && cli_has(a, "engine") && (rc = cli_engine(a, &v)) == CLI_OK) c->engine = (ddpm_engine)v;
    if (rc == CLI_OK && cli_has(a, "sampler") && cli_str(a, "sampler"))
        rc = cli_enum(a, "sampler", DDPM_ENUM_SAMPLER, &o->sampler);
    if (GIVEN("steps")) rc = cli_int(a, "steps", 1, 1 << 24, &o->steps);
    if (rc == CLI_OK && cli_has(a, "eta")) rc = cli_double(a, "eta", 0, 1, 0, &o->eta);
    if (GIVEN("spacing")) rc = cli_enum(a, "spacing", DDPM_ENUM_SPACING, &o->spacing);
    if (GIVEN("clip")) {   /* on/off, 1/0, yes/no, true/false */
        static const char *const on_off[] = {"off", "on", "0", "1", "no", "yes", "false", "true", NULL};
        char label[80];
        snprintf(label, sizeof label, "--clip %s", cli_str(a, "clip"));
        if ((rc = cli_choice(label, cli_str(a, "clip"), on_off, "value (on or off)", &o->clip)) == CLI_OK) o->clip %= 2;
    }
    if (GIVEN("class")) {
        double cls[APP_MAX_LABELS];
        rc = app_number_list("class", cli_str(a, "class"), 0, INT_MAX, 1, 1, "a class number (0, 1, ...) or none", cls,
                             APP_MAX_LABELS, &o->nclasses);
        for (int i = 0; i < o->nclasses; i++) o->classes[i] = (int64_t)cls[i];
    }
    if (rc == CLI_OK && cli_has(a, "guidance") && strcmp(cli_str(a, "guidance"), "auto") != 0)
        rc = app_number_list("guidance", cli_str(a, "guidance"), 0, 100, 0, 0, "auto or a number in [0, 100] (1 = no "
                             "guidance)", &o->guidance, 1, &v);
#undef GIVEN
    if (rc == CLI_OK && cli_has(a, "threads")) ddpm_set_threads((int)threads);
    return rc;
}

int app_load_model(app_ctx *c) {
    const cli_args *a = c->a;
    const char *spec = cli_given(a, "model") ? cli_str(a, "model") : NULL;
    if (!spec) {
        const char *env = getenv("DDPM_MODEL");
        if (env && env[0]) {
            spec = env;
        } else {
            spec = c->default_model ? c->default_model : cli_share_path(c->shipped, sizeof c->shipped, "models/mnist");
            if (access(spec, F_OK) != 0)
                return cli_error(CLI_FAIL, "no --model given and the shipped model %s is missing (pass --model DIR|PRESET or "
                                 "set DDPM_MODEL)", spec);
        }
    }
    c->spec = spec;
    if (ddpm_model_load(spec, c->seed, &c->model) != DDPM_OK) return cli_fail();
    ddpm_model_get_info(c->model, &c->info);
    c->C = c->info.in_channels;
    c->S = c->info.sample_size;
    c->D = (int64_t)c->C * c->S * c->S;
    if (ddpm_model_check_images(c->model) != DDPM_OK) return cli_error(CLI_FAIL, "%s: %s", spec, ddpm_last_error());
    if (ddpm_pipeline_scheduler_load(spec, &c->sched) != DDPM_OK) return cli_fail();
    c->d = c->sched.diffusion;
    if (!c->info.weights_loaded)
        fprintf(stderr, "ddpm: warning: %s has no trained weights (initialised from --seed %llu): expect noise\n",
                spec, (unsigned long long)c->seed);
    return CLI_OK;
}

int app_sampler_config(app_ctx *c, ddpm_sampler_kind default_kind, ddpm_sampler_config *cfg) {
    const app_opts *o = &c->opt;
    const ddpm_sampler_kind kind = o->sampler >= 0 ? (ddpm_sampler_kind)o->sampler : default_kind;
    const int T = c->d->T;
    ddpm_sampler_config_default(cfg, kind);
    ddpm_pipeline_scheduler_apply(&c->sched, cfg);
    if (kind == DDPM_SAMPLER_DDPM || cfg->steps > T) cfg->steps = T;
    if (o->steps > T)
        return cli_usage_error("--steps %lld: the model's diffusion has T = %d steps (use 1..%d)", o->steps, T, T);
    if (o->steps > 0) cfg->steps = (int)o->steps;
    cfg->seed = c->seed;
    if (o->eta > 0 && kind != DDPM_SAMPLER_DDIM)
        return cli_usage_error("--eta %s: only the ddim sampler has eta (this is --sampler %s)", cli_str(c->a, "eta"),
                               app_sampler_name(kind));
    cfg->eta = o->eta;
    if (o->spacing >= 0) cfg->spacing = (ddpm_spacing)o->spacing;
    if (o->clip >= 0) cfg->clip_sample = o->clip;
    int first;   /* checks the steps and the timestep list */
    return ddpm_sampler_first_step(cfg, T, T - 1, &first, NULL) == DDPM_OK ? CLI_OK
                                                                            : cli_usage_error("%s", ddpm_last_error());
}

int app_labels(app_ctx *c, int64_t num, int sample_mode) {
    const app_opts *o = &c->opt;
    c->num = num;
    if (ddpm_class_labels(c->model, o->classes, o->nclasses, num, sample_mode, o->guidance, &c->labels,
                          &c->guidance) != DDPM_OK) {
        if (o->nclasses) return cli_usage_error("--class %s: %s", cli_str(c->a, "class"), ddpm_last_error());
        return cli_usage_error("%s: give --class K", ddpm_last_error());
    }
    if (ddpm_guidance_check(c->model, c->guidance) != DDPM_OK) return cli_usage_error("%s", ddpm_last_error());
    return CLI_OK;
}

int app_prepare(app_ctx *c, int batch) {
    c->batch = batch;
    ddpm_status st = ddpm_guided_prepare(c->model, c->guidance, batch, c->engine, &c->guided);
    if (st == DDPM_ERR_INVALID_ARG) return cli_usage_error("%s", ddpm_last_error());
    return st == DDPM_OK ? CLI_OK : cli_fail();
}

int app_fail(app_ctx *c, int usage) {
    app_progress_end(c);
    if (cli_interrupted()) return cli_error(cli_stop_status(), "interrupted; nothing was written");
    return usage ? cli_usage_error("%s", ddpm_last_error()) : cli_fail();
}

void app_free(app_ctx *c) {
    ddpm_guided_free(c->guided);
    ddpm_model_free(c->model);
    ddpm_pipeline_scheduler_free(&c->sched);
    ddpm_free(c->labels);
    while (c->nbufs > 0) free(c->bufs[--c->nbufs]);
    memset(&c->sched, 0, sizeof c->sched);
    c->guided = NULL, c->model = NULL, c->d = NULL, c->labels = NULL;
}

void app_progress_start(app_ctx *c, const char *what, long long total_steps, int64_t num) {
    app_progress *p = &c->progress;
    memset(p, 0, sizeof *p);
    cli_progress_init(&p->line);
    p->what = what;
    p->total = total_steps > 0 ? total_steps : 1;
    p->num = num;
    p->t0 = cli_now();
    p->next_tenth = 1;
}

void app_progress_chunk(app_ctx *c, int64_t first, int64_t n) {
    c->progress.first = first;
    c->progress.n = n;
}

void app_progress_end(app_ctx *c) { cli_progress_break(&c->progress.line); }

static void progress_step(app_progress *p, int step_index, int num_steps) {
    double el = cli_now() - p->t0, rate = ++p->done / (el > 0 ? el : INFINITY);
    long long left = p->total > p->done ? p->total - p->done : 0;
    int due = p->done * 10 >= p->next_tenth * p->total;
    while (p->done * 10 >= p->next_tenth * p->total && p->next_tenth <= 10) p->next_tenth++;
    char eta[32], imgs[64], line[256];
    cli_duration(eta, sizeof eta, rate > 0 ? (double)left / rate : -1);
    if (p->n > 1)
        snprintf(imgs, sizeof imgs, "images %lld-%lld/%lld", (long long)p->first + 1, (long long)(p->first + p->n),
                 (long long)p->num);
    else snprintf(imgs, sizeof imgs, "image %lld/%lld", (long long)p->first + 1, (long long)p->num);
    snprintf(line, sizeof line, "%s: %s  step %d/%d  %.1f it/s  ETA %s", p->what, imgs, step_index + 1, num_steps,
             rate, eta);
    cli_progress_show(&p->line, line, due, p->done == p->total);
}

ddpm_status app_on_step(void *user, int step_index, int num_steps, int64_t timestep, const double *x,
                        const double *x0_pred, int64_t N, int64_t D) {
    app_ctx *c = user;
    ddpm_trajectory_record(c->traj, c->progress.first, step_index, timestep, x, x0_pred, N, D);
    progress_step(&c->progress, step_index, num_steps);
    return cli_interrupted() ? DDPM_ERR_INTERRUPTED : DDPM_OK;
}

static ddpm_status on_chunk(void *user, int64_t first, int64_t n, int64_t N) {
    (void)N;
    app_progress_chunk(user, first, n);
    return DDPM_OK;
}

static int status(app_ctx *c, ddpm_status st, int usage) {
    if (st != DDPM_OK || cli_interrupted()) return app_fail(c, usage);
    app_progress_end(c);
    return CLI_OK;
}

int app_sample_all(app_ctx *c, const ddpm_sampler_config *cfg, double *x, int64_t N, int xT) {
    ddpm_sample_request r;
    ddpm_sample_request_default(&r);
    r.xt = (ddpm_xt_mode)xT;
    r.chunk = c->batch;
    r.guidance = c->guidance;
    r.labels = c->labels;
    r.engine = c->engine;
    r.on_chunk = on_chunk;
    r.chunk_user = c;
    return status(c, ddpm_sample_images(c->model, c->d, cfg, &r, x, N), 0);
}

static ddpm_status on_pass(void *user, const char *name, int64_t n, int64_t steps, const ddpm_app_info *info) {
    (void)info;
    app_progress_end(user);
    app_progress_start(user, name, steps, n);
    return DDPM_OK;
}

void app_request(app_ctx *c, ddpm_app_request *r) {
    ddpm_app_request_default(r);
    r->guidance = c->guidance;
    r->labels = c->labels;
    r->engine = c->engine;
    r->on_chunk = on_chunk;
    r->on_pass = on_pass;
    r->user = c;
}

int app_status(app_ctx *c, ddpm_status st) { return status(c, st, st == DDPM_ERR_INVALID_ARG); }

void app_hook(app_ctx *c, ddpm_sampler_config *cfg) {
    cfg->on_step = app_on_step;
    cfg->step_user = c;
}

int app_read_image(app_ctx *c, const char *opt, int mask, const char *like_opt, const ddpm_image *like, float *out,
                   ddpm_image *img) {
    const char *path = cli_str(c->a, opt);
    ddpm_image im = {0};
    if (ddpm_image_read(path, &im) != DDPM_OK) {
        const char *m = ddpm_last_error();   /* the library's message names the file already, or not */
        if (strncmp(m, path, strlen(path)) == 0) return cli_error(CLI_FAIL, "--%s %s", opt, m);
        return cli_error(CLI_FAIL, "--%s %s: %s", opt, path, m);
    }
    int rc = CLI_OK;
    if (like && (im.width != like->width || im.height != like->height))
        rc = cli_error(CLI_FAIL, "--%s %s is %dx%d pixels but --%s %s is %dx%d; the images must have the same size",
                       opt, path, im.width, im.height, like_opt, cli_str(c->a, like_opt), like->width, like->height);
    else if ((mask ? ddpm_mask_to_model(&im, c->S, out) : ddpm_image_to_model(&im, c->S, c->C, out)) != DDPM_OK)
        rc = cli_error(CLI_FAIL, "--%s %s: %s", opt, path, ddpm_last_error());
    if (img && rc == CLI_OK) *img = im;
    else ddpm_image_free(&im);
    return rc;
}

/* img as a PNG at path, or (img NULL) images x [n] as the folder path, with the tEXt pairs of the run: its
   settings, "Software", "Model" (also when it was the shipped default or $DDPM_MODEL), "Description". */
static int write_images(const app_ctx *c, const char *opt, const char *path, const ddpm_image *img, const float *x,
                        int64_t n, const char *description) {
    char *settings = cli_settings(c->a), software[64];
    if (!settings) return cli_error(CLI_FAIL, "out of memory");
    snprintf(software, sizeof software, "ddpm %s", ddpm_version());
    const char *text[] = {"ddpm", settings, "Software", software, "Model", c->spec ? c->spec : "",
                          description ? "Description" : NULL, description, NULL};
    ddpm_status st = img ? ddpm_png_write(path, img, text)
                         : ddpm_write_image_folder(path, x, n, c->C, c->S, c->S, text, cli_stop_requested, NULL);
    free(settings);
    if (st == DDPM_OK) return CLI_OK;
    return img || st == DDPM_ERR_INTERRUPTED ? cli_fail() : cli_error(CLI_FAIL, "--%s %s", opt ? opt : "out", ddpm_last_error());
}

int app_write_png(const app_ctx *c, const char *path, const ddpm_image *img, const char *description) {
    return write_images(c, NULL, path, img, NULL, 0, description);
}

int app_write_folder(const app_ctx *c, const char *opt, const char *dir, const float *x, int64_t n) {
    return write_images(c, opt, dir, NULL, x, n, NULL);
}

int app_save_samples(const app_ctx *c, const char *path, const float *x, int64_t n, const int64_t *labels,
                     const char *settings) {
    return ddpm_save_samples(path, x, n, c->C, c->S, c->S, labels, settings) == DDPM_OK ? CLI_OK : cli_fail();
}

void *app_alloc(app_ctx *c, size_t bytes) {
    void *p = c->nbufs < (int)(sizeof c->bufs / sizeof c->bufs[0]) ? calloc(bytes ? bytes : 1, 1) : NULL;
    if (!p) cli_error(CLI_FAIL, "out of memory");
    else c->bufs[c->nbufs++] = p;
    return p;
}

void app_strip_add(app_strip *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (s->n < APP_STRIP_MAX) vsnprintf(s->caps[s->n++], sizeof s->caps[0], fmt, ap);
    va_end(ap);
}

int app_strip_write(app_ctx *c, const app_strip *s, const float *x, const char *path, const char *description) {
    ddpm_image strip;
    const char *caps[APP_STRIP_MAX];
    for (int i = 0; i < s->n; i++) caps[i] = s->caps[i];
    if (ddpm_image_strip(&strip, x, s->n, c->C, c->S, c->S, caps, ddpm_image_strip_scale(c->S)) != DDPM_OK)
        return cli_fail();
    int rc = app_write_png(c, path, &strip, description);
    ddpm_image_free(&strip);
    return rc;
}
