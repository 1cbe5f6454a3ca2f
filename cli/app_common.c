/* app_common.c — the shared machinery of the sampling and application commands (see app_common.h). */
#include "app_common.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define APP_MAX_LABELS 1024

/* ------------------------------------------------------------------------------- small helpers */

int app_error(const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_usage_error("%s", msg);   /* one line, "ddpm: error: " */
    return CLI_FAIL;
}

double app_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void app_duration(char *buf, size_t size, double s) {
    if (!(s >= 0) || s > 360000000) {
        snprintf(buf, size, "--");
        return;
    }
    if (s < 60) {
        snprintf(buf, size, "%.1f s", s);
        return;
    }
    long long t = (long long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%lldh%02lldm", t / 3600, t / 60 % 60);
    else snprintf(buf, size, "%lldm%02llds", t / 60, t % 60);
}

int app_has(const cli_args *a, const char *name) {
    for (int i = 0; a->cmd->options[i].name; i++)
        if (strcmp(a->cmd->options[i].name, name) == 0) return 1;
    return 0;
}

float *app_to_float(const double *x, size_t n) {
    float *f = malloc(sizeof(float) * (n ? n : 1));
    if (f)
        for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

/* ------------------------------------------------------------------------------- option syntax */

const char *app_sampler_name(ddpm_sampler_kind k) {
    return ddpm_enum_name(DDPM_ENUM_SAMPLER, (int)k);
}

static int parse_on_off(const char *opt, const char *s, int *out) {
    if (strcmp(s, "on") == 0 || strcmp(s, "1") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "true") == 0) *out = 1;
    else if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0 || strcmp(s, "no") == 0 || strcmp(s, "false") == 0)
        *out = 0;
    else return cli_usage_error("--%s %s: must be on or off", opt, s);
    return CLI_OK;
}

/* --class: comma-separated class numbers >= 0 or "none" (-1), at most APP_MAX_LABELS of them. */
static int parse_class_list(const char *s, long long *vals, int *n) {
    *n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item)
            return cli_usage_error("--class %s: expected K, K1,K2,... or none", s);
        memcpy(item, p, len);
        item[len] = 0;
        long long v;
        if (strcmp(item, "none") == 0) {
            v = -1;
        } else {
            char *end;
            errno = 0;
            v = strtoll(item, &end, 10);
            if (end == item || *end || errno == ERANGE || v < 0 || v > INT_MAX)
                return cli_usage_error("--class %s: '%s' is not a class number (0, 1, ...) or none", s, item);
        }
        if (*n >= APP_MAX_LABELS) return cli_usage_error("--class %s: at most %d labels", s, APP_MAX_LABELS);
        vals[(*n)++] = v;
        if (!comma) break;
        p = comma + 1;
    }
    return CLI_OK;
}

static int parse_guidance(const char *s, double *w) {
    if (strcmp(s, "auto") == 0) {
        *w = NAN;
        return CLI_OK;
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0 || v > 100)
        return cli_usage_error("--guidance %s: must be auto or a number in [0, 100] (1 = no guidance)", s);
    *w = v;
    return CLI_OK;
}

int app_parse_common(const cli_args *a, app_ctx *c) {
    long long threads = 0, vals[APP_MAX_LABELS];
    int n, rc = CLI_OK, on;
    double w, eta;
    c->a = a;
    c->engine = DDPM_ENGINE_FAST;
    if (app_has(a, "seed")) rc = cli_u64(a, "seed", &c->seed);
    if (rc == CLI_OK && app_has(a, "threads")) rc = cli_threads(a, "threads", 0, &threads);
    int v = 0;
    if (rc == CLI_OK && app_has(a, "engine") && (rc = cli_enum(a, "engine", DDPM_ENUM_ENGINE, &v)) == CLI_OK)
        c->engine = (ddpm_engine)v;
    if (rc == CLI_OK && app_has(a, "sampler") && cli_str(a, "sampler")) rc = cli_enum(a, "sampler", DDPM_ENUM_SAMPLER, &v);
    if (rc == CLI_OK && app_has(a, "steps") && cli_given(a, "steps")) {
        long long steps;
        rc = cli_int(a, "steps", 1, 1 << 24, &steps);
    }
    if (rc == CLI_OK && app_has(a, "eta")) rc = cli_double(a, "eta", 0, 1, 0, &eta);
    if (rc == CLI_OK && app_has(a, "spacing") && cli_given(a, "spacing")) rc = cli_enum(a, "spacing", DDPM_ENUM_SPACING, &v);
    if (rc == CLI_OK && app_has(a, "clip") && cli_given(a, "clip")) rc = parse_on_off("clip", cli_str(a, "clip"), &on);
    if (rc == CLI_OK && app_has(a, "class") && cli_given(a, "class")) rc = parse_class_list(cli_str(a, "class"), vals, &n);
    if (rc == CLI_OK && app_has(a, "guidance")) rc = parse_guidance(cli_str(a, "guidance"), &w);
    if (rc != CLI_OK) return rc;
    if (app_has(a, "threads")) ddpm_set_threads((int)threads);
    return CLI_OK;
}

/* ------------------------------------------------------------------------------- model */

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
                return app_error("no --model given and the shipped model %s is missing (pass --model DIR|PRESET or "
                                 "set DDPM_MODEL)", spec);
        }
    }
    c->spec = spec;
    if (ddpm_model_load(spec, c->seed, &c->model) != DDPM_OK) return cli_fail();
    ddpm_model_get_info(c->model, &c->info);
    c->C = c->info.in_channels;
    c->S = c->info.sample_size;
    c->D = (int64_t)c->C * c->S * c->S;
    if (c->C != 1 && c->C != 3)
        return app_error("%s: the model has %d input channels; images need 1 (gray) or 3 (RGB)", spec, c->C);
    if (c->info.out_channels != c->C)
        return app_error("%s: the model outputs %d channels for %d input channels (a learned variance is not "
                         "supported)", spec, c->info.out_channels, c->C);
    if (ddpm_pipeline_scheduler_load(spec, &c->sched) != DDPM_OK) return cli_fail();
    c->d = c->sched.diffusion;
    if (!c->info.weights_loaded)
        fprintf(stderr, "ddpm: warning: %s has no trained weights (initialised from --seed %llu): expect noise\n",
                spec, (unsigned long long)c->seed);
    return CLI_OK;
}

int app_sampler_config(app_ctx *c, ddpm_sampler_kind default_kind, ddpm_sampler_config *cfg) {
    const cli_args *a = c->a;
    ddpm_sampler_kind kind = default_kind;
    int rc = CLI_OK, T = c->d->T;
    int v = 0;
    if (app_has(a, "sampler") && cli_str(a, "sampler")) {
        if ((rc = cli_enum(a, "sampler", DDPM_ENUM_SAMPLER, &v)) != CLI_OK) return rc;
        kind = (ddpm_sampler_kind)v;
    }
    ddpm_sampler_config_default(cfg, kind);
    ddpm_pipeline_scheduler_apply(&c->sched, cfg);
    if (kind == DDPM_SAMPLER_DDPM || cfg->steps > T) cfg->steps = T;
    if (app_has(a, "steps") && cli_given(a, "steps")) {
        long long steps;
        if ((rc = cli_int(a, "steps", 1, 1 << 24, &steps)) != CLI_OK) return rc;
        if (steps > T)
            return cli_usage_error("--steps %lld: the model's diffusion has T = %d steps (use 1..%d)", steps, T, T);
        cfg->steps = (int)steps;
    }
    cfg->seed = c->seed;
    if (app_has(a, "eta")) {
        double eta;
        if ((rc = cli_double(a, "eta", 0, 1, 0, &eta)) != CLI_OK) return rc;
        if (eta > 0 && kind != DDPM_SAMPLER_DDIM)
            return cli_usage_error("--eta %s: only the ddim sampler has eta (this is --sampler %s)", cli_str(a, "eta"),
                                   app_sampler_name(kind));
        cfg->eta = eta;
    }
    if (app_has(a, "spacing") && cli_given(a, "spacing")) {
        if ((rc = cli_enum(a, "spacing", DDPM_ENUM_SPACING, &v)) != CLI_OK) return rc;
        cfg->spacing = (ddpm_spacing)v;
    }
    if (app_has(a, "clip") && cli_given(a, "clip") &&
        (rc = parse_on_off("clip", cli_str(a, "clip"), &cfg->clip_sample)) != CLI_OK)
        return rc;
    int64_t *ts = malloc(sizeof(int64_t) * (size_t)cfg->steps);
    if (!ts) return app_error("out of memory");
    ddpm_status st = ddpm_sampler_timesteps(cfg, T, ts);
    free(ts);
    if (st != DDPM_OK) return cli_usage_error("%s", ddpm_last_error());
    return CLI_OK;
}

int app_labels(app_ctx *c, int64_t num, int sample_mode) {
    const cli_args *a = c->a;
    const char *cls = app_has(a, "class") && cli_given(a, "class") ? cli_str(a, "class") : NULL;
    const int conditional = c->info.num_class_embeds > 0, null_class = c->info.null_class;
    const int K = null_class >= 0 ? null_class : c->info.num_class_embeds;
    long long vals[APP_MAX_LABELS];
    int n = 0, rc, all_null = 1;
    c->num = num;
    c->num_classes = conditional ? K : 0;
    if (cls && (rc = parse_class_list(cls, vals, &n)) != CLI_OK) return rc;
    if (cls && !conditional) {
        if (strcmp(cls, "none") != 0)
            return cli_usage_error("--class %s: the model is unconditional (no class embedding)", cls);
        n = 0;
    }
    if (conditional) {
        if (!cls) {
            if (sample_mode) {
                for (int k = 0; k < K && k < APP_MAX_LABELS; k++) vals[n++] = k;
            } else if (null_class >= 0) {
                vals[n++] = -1;
            } else {
                return cli_usage_error("the model is class-conditional (classes 0..%d) and has no null class to "
                                       "run without a label: give --class K", K - 1);
            }
        }
        for (int i = 0; i < n; i++) {
            if (vals[i] < 0) {
                if (null_class < 0)
                    return cli_usage_error("--class %s: the model has no null class (it was trained without label "
                                           "dropout); give classes in 0..%d", cls, K - 1);
                vals[i] = null_class;
            } else if (vals[i] >= K) {
                return cli_usage_error("--class %s: class %lld is not one of the model's classes 0..%d", cls, vals[i],
                                       K - 1);
            }
            if (vals[i] != null_class) all_null = 0;
        }
        c->labels = malloc(sizeof(int64_t) * (size_t)(num > 0 ? num : 1));
        if (!c->labels) return app_error("out of memory");
        for (int64_t i = 0; i < num; i++) c->labels[i] = vals[i % n];
    }
    double w = NAN;
    if ((rc = parse_guidance(cli_str(a, "guidance"), &w)) != CLI_OK) return rc;
    if (isnan(w))   /* auto: the model's own weight (_ddpm_guidance), else 2 where guidance is possible */
        w = (conditional && null_class >= 0 && !all_null) ? (c->info.guidance > 0 ? c->info.guidance : 2.0) : 1.0;
    c->guidance = w;
    return CLI_OK;
}

int app_prepare(app_ctx *c, int batch) {
    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    c->batch = batch;
    pc.max_batch = c->guidance != 1.0 ? 2 * batch : batch;
    pc.engine = c->engine;
    if (ddpm_model_prepare(c->model, &pc) != DDPM_OK) return cli_fail();
    ddpm_status st = ddpm_guided_create(c->model, c->guidance, batch, &c->guided);
    if (st == DDPM_ERR_INVALID_ARG) return cli_usage_error("%s", ddpm_last_error());
    if (st != DDPM_OK) return cli_fail();
    return CLI_OK;
}

int app_set_chunk(app_ctx *c, int64_t first, int64_t n) {
    c->chunk_first = first;
    if (ddpm_guided_set_labels(c->guided, c->labels ? c->labels + first : NULL, n) != DDPM_OK) return cli_fail();
    return CLI_OK;
}

int app_fail(app_ctx *c, int usage) {
    app_progress_end(c);
    if (cli_interrupted()) {
        fprintf(stderr, "ddpm: error: interrupted; nothing was written\n");
        return CLI_INTERRUPTED;
    }
    if (usage) return cli_usage_error("%s", ddpm_last_error());
    return cli_fail();
}

void app_free(app_ctx *c) {
    ddpm_guided_free(c->guided);
    ddpm_model_free(c->model);
    ddpm_pipeline_scheduler_free(&c->sched);
    memset(&c->sched, 0, sizeof c->sched);
    free(c->labels);
    c->guided = NULL;
    c->model = NULL;
    c->d = NULL;
    c->labels = NULL;
}

/* ------------------------------------------------------------------------------- progress */

void app_progress_start(app_ctx *c, const char *what, long long total_steps, int64_t num) {
    app_progress *p = &c->progress;
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDOUT_FILENO);
    p->what = what;
    p->total = total_steps > 0 ? total_steps : 1;
    p->num = num;
    p->t0 = app_now();
    p->next_tenth = 1;
}

void app_progress_chunk(app_ctx *c, int64_t first, int64_t n) {
    c->progress.first = first;
    c->progress.n = n;
}

void app_progress_end(app_ctx *c) {
    app_progress *p = &c->progress;
    if (p->tty && p->width > 0) {
        printf("\n");
        fflush(stdout);
    }
    p->width = 0;
}

static void progress_step(app_progress *p, int step_index, int num_steps) {
    p->done++;
    double now = app_now(), el = now - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    long long left = p->total > p->done ? p->total - p->done : 0;
    char eta[32], imgs[64], line[256];
    app_duration(eta, sizeof eta, rate > 0 ? (double)left / rate : -1);
    if (p->n > 1)
        snprintf(imgs, sizeof imgs, "images %lld-%lld/%lld", (long long)p->first + 1, (long long)(p->first + p->n),
                 (long long)p->num);
    else snprintf(imgs, sizeof imgs, "image %lld/%lld", (long long)p->first + 1, (long long)p->num);
    int w = snprintf(line, sizeof line, "%s: %s  step %d/%d  %.1f it/s  ETA %s", p->what, imgs, step_index + 1,
                     num_steps, rate, eta);
    if (p->tty) {
        if (now - p->last_draw < 0.1 && left > 0) return;
        p->last_draw = now;
        int pad = p->width > w ? p->width - w : 0;
        printf("\r%s%*s", line, pad, "");
        p->width = w;
        fflush(stdout);
    } else if (p->done * 10 >= (long long)p->next_tenth * p->total) {
        while (p->done * 10 >= (long long)p->next_tenth * p->total && p->next_tenth <= 10) p->next_tenth++;
        printf("%s\n", line);
        fflush(stdout);
    }
}

ddpm_status app_on_step(void *user, int step_index, int num_steps, int64_t timestep, const double *x,
                        const double *x0_pred, int64_t N, int64_t D) {
    app_ctx *c = user;
    app_traj *tr = c->traj;
    if (tr && D == tr->D) {
        for (int j = 0; j < tr->nframes; j++) {
            if (tr->steps[j] != step_index) continue;
            tr->t[j] = timestep;
            for (int64_t r = 0; r < N; r++) {
                int64_t g = c->chunk_first + r;
                if (g < 0 || g >= tr->nimg) continue;
                size_t off = ((size_t)g * (size_t)tr->nframes + (size_t)j) * (size_t)D;
                for (int64_t k = 0; k < D; k++) {
                    tr->x[off + (size_t)k] = (float)x[r * D + k];
                    tr->x0[off + (size_t)k] = x0_pred ? (float)x0_pred[r * D + k] : 0.0f;
                }
            }
        }
    }
    progress_step(&c->progress, step_index, num_steps);
    return cli_interrupted() ? DDPM_ERR_INTERRUPTED : DDPM_OK;
}

int app_sample_all(app_ctx *c, const ddpm_sampler_config *cfg, double *x, int64_t N, int xT) {
    for (int64_t first = 0; first < N; first += c->batch) {
        int64_t n = N - first < c->batch ? N - first : c->batch;
        double *xc = x + first * c->D;
        if (xT != APP_XT_GIVEN) ddpm_sample_init_noise(c->seed, first, n, c->D, xT == APP_XT_SHARED, xc);
        int rc = app_set_chunk(c, first, n);
        if (rc != CLI_OK) return rc;
        app_progress_chunk(c, first, n);
        if (ddpm_sample_loop(c->d, cfg, ddpm_guided_fn, c->guided, xc, n, c->D, first) != DDPM_OK) return app_fail(c, 0);
    }
    app_progress_end(c);
    return cli_interrupted() ? app_fail(c, 0) : CLI_OK;
}

void app_hook(app_ctx *c, ddpm_sampler_config *cfg) {
    cfg->on_step = app_on_step;
    cfg->step_user = c;
}

/* ------------------------------------------------------------------------------- images */

int app_read_image(app_ctx *c, const char *opt, const char *path, float *out, ddpm_image *img) {
    ddpm_image im;
    memset(&im, 0, sizeof im);
    if (ddpm_image_read(path, &im) != DDPM_OK) {
        const char *m = ddpm_last_error();   /* the library's message names the file already, or not */
        if (strncmp(m, path, strlen(path)) == 0) return app_error("--%s %s", opt, m);
        return app_error("--%s %s: %s", opt, path, m);
    }
    ddpm_status st = ddpm_image_to_model(&im, c->S, c->C, out);
    if (st != DDPM_OK) {
        ddpm_image_free(&im);
        return app_error("--%s %s: %s", opt, path, ddpm_last_error());
    }
    if (img) *img = im;
    else ddpm_image_free(&im);
    return CLI_OK;
}

int app_strip_scale(int S) {
    int k = (100 + S / 2) / (S > 0 ? S : 1);
    return k < 1 ? 1 : k > 64 ? 64 : k;
}

int app_stack_rows(const ddpm_image *rows, int n, ddpm_image *out) {
    int W = 0, H = 0, C = n > 0 ? rows[0].channels : 1;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        if (rows[i].width > W) W = rows[i].width;
        if (rows[i].channels != C || H > INT_MAX - rows[i].height) return app_error("cannot stack the image rows");
        H += rows[i].height;
    }
    if (n < 1 || W < 1 || H < 1) return app_error("no image rows to stack");
    if (ddpm_image_alloc(out, W, H, C) != DDPM_OK) return cli_fail();
    memset(out->pixels, 255, (size_t)W * (size_t)H * (size_t)C);
    int y0 = 0;
    for (int i = 0; i < n; i++) {
        int x0 = (W - rows[i].width) / 2;
        for (int y = 0; y < rows[i].height; y++)
            memcpy(out->pixels + (((size_t)(y0 + y) * (size_t)W + (size_t)x0) * (size_t)C),
                   rows[i].pixels + (size_t)y * (size_t)rows[i].width * (size_t)C,
                   (size_t)rows[i].width * (size_t)C);
        y0 += rows[i].height;
    }
    return CLI_OK;
}

int app_write_png(const app_ctx *c, const char *path, const ddpm_image *img, const char *description) {
    char *settings = cli_settings(c->a);
    if (!settings) return app_error("out of memory");
    char software[64];
    snprintf(software, sizeof software, "ddpm %s", ddpm_version());
    /* the model that made the image, also when it was the shipped default or $DDPM_MODEL */
    const char *text[] = {"ddpm", settings, "Software", software, "Model", c->spec ? c->spec : "",
                          description ? "Description" : NULL, description, NULL};
    ddpm_status st = ddpm_png_write(path, img, text);
    free(settings);
    return st == DDPM_OK ? CLI_OK : cli_fail();
}

int app_enlarge(const ddpm_image *in, int k, ddpm_image *out) {
    memset(out, 0, sizeof *out);
    if (k < 1 || in->width > INT_MAX / k || in->height > INT_MAX / k) return app_error("image too large to enlarge");
    if (ddpm_image_alloc(out, in->width * k, in->height * k, in->channels) != DDPM_OK) return cli_fail();
    size_t C = (size_t)in->channels;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++)
            memcpy(out->pixels + ((size_t)y * (size_t)out->width + (size_t)x) * C,
                   in->pixels + ((size_t)(y / k) * (size_t)in->width + (size_t)(x / k)) * C, C);
    return CLI_OK;
}

int app_save_samples(const app_ctx *c, const char *path, const float *x, int64_t n, const int64_t *labels,
                     const char *settings) {
    ddpm_st_writer *w = NULL;
    int64_t shape[4] = {n, c->C, c->S, c->S}, lshape[1] = {n};
    int rc = CLI_OK;
    if (ddpm_st_writer_create(&w) != DDPM_OK || ddpm_st_writer_add(w, "samples", DDPM_DTYPE_F32, 4, shape, x) != DDPM_OK ||
        (labels && ddpm_st_writer_add(w, "labels", DDPM_DTYPE_I64, 1, lshape, labels) != DDPM_OK) ||
        ddpm_st_writer_set_metadata(w, "ddpm", settings) != DDPM_OK || ddpm_st_writer_save(w, path) != DDPM_OK)
        rc = cli_fail();
    ddpm_st_writer_free(w);
    return rc;
}

int app_write_strip(app_ctx *c, const char *path, const float *x, int N, const char *const *captions,
                    const char *description) {
    ddpm_image strip;
    memset(&strip, 0, sizeof strip);
    if (ddpm_image_strip(&strip, x, N, c->C, c->S, c->S, captions, app_strip_scale(c->S)) != DDPM_OK)
        return cli_fail();
    int rc = app_write_png(c, path, &strip, description);
    ddpm_image_free(&strip);
    return rc;
}
