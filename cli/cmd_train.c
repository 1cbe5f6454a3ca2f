/* cmd_train.c — `ddpm train`: trains a diffusion model on a data set, showing progress, logging to CSV, drawing
   sample grids and the loss curve, checkpointing, resuming exactly, and stopping cleanly on SIGINT/SIGTERM. */
#include <ddpm.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "options.h"

/* ------------------------------------------------------------------------------- stop signals */

static volatile sig_atomic_t stop_signal = 0;

/* The first SIGINT or SIGTERM asks the loop to finish its step, save and leave; a second one ends at once
   (checkpoint files are written atomically, so the previous checkpoint survives). */
static void on_stop(int sig) {
    if (stop_signal) _exit(128 + sig);
    stop_signal = sig;
}

static void install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------------- progress display */

typedef struct {
    int tty;               /* standard output is a terminal: one \r-updated line */
    long long total;       /* the last step of the run */
    int batch;             /* images per step */
    long long log_every;   /* plain lines: one every this many steps */
    double step_s;         /* moving average of the seconds per step (bias-corrected) */
    double weight;         /* 1 - 0.9^k after k steps */
    double last_draw;      /* time of the last terminal update */
    int width;             /* characters of the last terminal line */
} progress;

static void format_duration(char *buf, size_t size, double s) {
    if (!(s >= 0) || s > 360000000) {
        snprintf(buf, size, "--");
        return;
    }
    long long t = (long long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%lldh%02lldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, size, "%lldm%02llds", t / 60, t % 60);
    else snprintf(buf, size, "%llds", t);
}

static void progress_init(progress *p, long long total, int batch, long long log_every) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDOUT_FILENO);
    p->total = total;
    p->batch = batch;
    p->log_every = log_every;
}

/* Records one step of dt seconds and shows it: on a terminal at most ten times a second (and at the last
   step), otherwise a plain line every log_every steps and at the last step. */
static void progress_step(progress *p, long long step, double loss, double smoothed, double lr, double dt,
                          double elapsed) {
    p->step_s = 0.9 * p->step_s + 0.1 * dt;
    p->weight = 1 - 0.9 * (1 - p->weight);
    double per_step = p->step_s / p->weight;
    double ips = per_step > 0 ? p->batch / per_step : 0;
    char eta[32], el[32];
    format_duration(eta, sizeof eta, per_step * (double)(p->total - step));
    format_duration(el, sizeof el, elapsed);
    int last = step >= p->total;
    if (p->tty) {
        double t = now_s();
        if (!last && t - p->last_draw < 0.1) return;
        p->last_draw = t;
        char line[256];
        int w = snprintf(line, sizeof line, "step %lld/%lld (%d%%)  smoothed loss %.4f  %.1f img/s  elapsed %s  "
                         "ETA %s", step, p->total, (int)(100 * step / p->total), smoothed, ips, el, eta);
        int pad = p->width > w ? p->width - w : 0;
        printf("\r%s%*s%s", line, pad, "", last ? "\n" : "");
        p->width = last ? 0 : w;
        fflush(stdout);
    } else if (last || (p->log_every > 0 && step % p->log_every == 0)) {
        printf("step %lld/%lld loss %.5f smoothed %.5f lr %.3g %.1f img/s elapsed %s ETA %s\n", step, p->total,
               loss, smoothed, lr, ips, el, eta);
        fflush(stdout);
    }
}

/* Ends a terminal line in progress so that a message can follow. */
static void progress_break(progress *p) {
    if (p->tty && p->width > 0) {
        printf("\n");
        fflush(stdout);
        p->width = 0;
    }
}

/* ------------------------------------------------------------------------------- sample grids */

typedef struct {
    ddpm_model *m;
    int chunk;             /* the model's plan batch */
    int num_classes;       /* 0: unconditional; else image i has class i % num_classes */
    float *tf;             /* [chunk] timesteps as float */
    int64_t *labels;       /* [chunk] */
    int64_t first;         /* global index of the current row 0 */
} grid_model;

/* A ddpm_model_fn over a prepared model of plan batch `chunk`, splitting larger batches. */
static ddpm_status grid_model_fn(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    grid_model *g = user;
    for (int64_t i0 = 0; i0 < N; i0 += g->chunk) {
        int n = (int)(N - i0 < g->chunk ? N - i0 : g->chunk);
        for (int i = 0; i < n; i++) {
            g->tf[i] = (float)t[i0 + i];
            g->labels[i] = g->num_classes > 0 ? (g->first + i0 + i) % g->num_classes : 0;
        }
        ddpm_status st = ddpm_model_forward(g->m, out + i0 * D, x + i0 * D, g->tf,
                                            g->num_classes > 0 ? g->labels : NULL, n);
        if (st != DDPM_OK) return st;
    }
    return DDPM_OK;
}

static ddpm_status sample_on_step(void *user, int i, int n, int64_t t, const double *x, const double *x0,
                                  int64_t N, int64_t D) {
    (void)user, (void)i, (void)n, (void)t, (void)x, (void)x0, (void)N, (void)D;
    return stop_signal ? DDPM_ERR_INTERRUPTED : DDPM_OK;
}

/* Draws `num` images with DDIM (`steps` steps, eta 0, seed `seed`) from model m (prepared for inference with
   plan batch `chunk`) and writes them as one PNG grid with the settings in its tEXt chunks. */
static ddpm_status write_sample_grid(ddpm_model *m, int chunk, int classes, const ddpm_diffusion *dif,
                                     ddpm_prediction prediction, int num, int steps, uint64_t seed, const char *path,
                                     const char *settings, long long step) {
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    const int C = info.in_channels, S = info.sample_size;
    const int64_t D = (int64_t)C * S * S;
    ddpm_status st = DDPM_ERR_NOMEM;
    grid_model g = {m, chunk, info.num_class_embeds > 0 ? classes : 0, NULL, NULL, 0};
    double *x = malloc(sizeof(double) * (size_t)num * (size_t)D);
    float *xf = malloc(sizeof(float) * (size_t)num * (size_t)D);
    g.tf = malloc(sizeof(float) * (size_t)chunk);
    g.labels = malloc(sizeof(int64_t) * (size_t)chunk);
    ddpm_image img = {0, 0, 0, NULL}, big = {0, 0, 0, NULL};
    if (!x || !xf || !g.tf || !g.labels) goto done;
    ddpm_sampler_config sc;
    ddpm_sampler_config_default(&sc, DDPM_SAMPLER_DDIM);
    sc.steps = steps;
    sc.prediction = prediction;
    sc.seed = seed;
    sc.on_step = sample_on_step;
    ddpm_rng_normal_f64(seed, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0), 0, x, (size_t)num * (size_t)D);
    if ((st = ddpm_sample_loop(dif, &sc, grid_model_fn, &g, x, num, D, 0)) != DDPM_OK) goto done;
    for (size_t i = 0; i < (size_t)num * (size_t)D; i++) xf[i] = (float)x[i];
    if ((st = ddpm_image_grid(&img, xf, num, C, S, S, 0, 1, 255)) != DDPM_OK) goto done;
    int k = S < 64 ? (64 + S - 1) / S : 1;   /* enlarge small images (nearest neighbour) to cells of >= 64 px */
    if ((st = ddpm_image_alloc(&big, img.width * k, img.height * k, img.channels)) != DDPM_OK) goto done;
    for (int y = 0; y < big.height; y++)
        for (int x0 = 0; x0 < big.width; x0++)
            memcpy(big.pixels + ((size_t)y * big.width + x0) * big.channels,
                   img.pixels + ((size_t)(y / k) * img.width + x0 / k) * img.channels, (size_t)img.channels);
    char software[64], what[200];
    snprintf(software, sizeof software, "ddpm %s", ddpm_version());
    snprintf(what, sizeof what, "step %lld; %d samples, DDIM %d steps (eta 0), seed %llu, EMA weights; shown %dx",
             step, num, steps, (unsigned long long)seed, k);
    const char *text[] = {"ddpm", settings, "Software", software, "Description", what, NULL};
    st = ddpm_png_write(path, &big, text);
done:
    ddpm_image_free(&img);
    ddpm_image_free(&big);
    free(x);
    free(xf);
    free(g.tf);
    free(g.labels);
    return st;
}

/* ------------------------------------------------------------------------------- options */

static const cli_option options[] = {
    {"data", "SPEC", NULL, "training images: mnist, fashion-mnist, cifar10 or folder:DIR (PNG/JPEG; "
     "one sub-folder per class gives labels); required unless resuming"},
    {"data-dir", "DIR", NULL, "folder with the mnist, fashion-mnist or cifar10 files (default: $DDPM_DATA/NAME, "
     "else ~/.cache/ddpm/NAME, filled by ddpm get-data NAME)"},
    {"model", "PRESET|M", NULL, "the network: mnist, cifar10, tiny, basic, a diffusers config.json or a model "
     "folder (its weights are the starting point); required unless resuming"},
    {"out", "DIR", NULL, "the run folder (required unless resuming: then the resumed run's folder)"},
    {"steps", "N", "10000", "total optimiser steps of the run (on resume: the new total)"},
    {"batch", "B", "64", "images per forward/backward pass"},
    {"grad-accum", "K", "1", "passes per optimiser step (global batch = B x K)"},
    {"lr", "LR", "5e-4", "peak learning rate (AdamW, weight decay 0.01); 2e-4 suits the 35.7M cifar10 net"},
    {"warmup", "N", "100", "steps of linear learning-rate warm-up"},
    {"lr-schedule", "NAME", "constant", "after warm-up: constant, or cosine (half-cosine decay to 0 at the --steps of the run's start)"},
    {"grad-clip", "G", "1.0", "clip the gradient's global L2 norm to G (0 = no clipping)"},
    {"schedule", "NAME", "linear", "noise schedule, one of those of 'ddpm schedule'"},
    {"T", "N", "1000", "number of diffusion steps"},
    {"objective", "NAME", "eps", "what the network learns to predict: eps, x0 or v"},
    {"min-snr-gamma", "G", "0", "min-SNR-gamma loss weights (e.g. 5; 0 = plain MSE)"},
    {"ema", "DECAY", "0.9999", "maximum decay of the weights' moving average (0 = no EMA); saved models hold it"},
    {"label-dropout", "P", "0.1", "class-conditional models: chance of dropping a label (for guidance)"},
    {"hflip", NULL, NULL, "flip images horizontally at random"},
    {"seed", "S", "0", "seed of the weight initialisation and of every random draw of training"},
    {"classes", "N", NULL, "make the network class-conditional: N classes (the data's) plus a null class for "
     "guidance, learned through --label-dropout"},
    {"resume", "DIR", NULL, "continue the run in DIR (a run folder or one of its checkpoints) exactly"},
    {"checkpoint-every", "N", "500", "a checkpoint every N steps in OUT/checkpoints (0 = none)"},
    {"keep-checkpoints", "N", "2", "newest checkpoints kept (0 = all)"},
    {"sample-every", "N", "500", "a grid of samples from the EMA weights every N steps and at the end (0 = none)"},
    {"sample-num", "N", "16", "images in a sample grid"},
    {"sample-steps", "N", "50", "DDIM steps of a sample grid"},
    {"log-every", "N", "100", "without a terminal: a progress line every N steps"},
    {"threads", "N", "0", "threads (0 = all cores)"},
    {"engine", "NAME", "fast", "the kernels: fast, or the plain reference twins"},
    {"save-retry", "S", "900", "a save that fails (a full disk) is retried for S seconds while the run waits in "
     "memory (0 = give up at once)"},
    {NULL, NULL, NULL, NULL},
};

/* Options that define a run: a resume keeps the saved values and refuses different ones. */
static const char *const fixed_options[] = {"batch", "grad-accum", "lr", "warmup", "lr-schedule", "grad-clip",
                                            "schedule", "T", "objective", "min-snr-gamma", "ema", "label-dropout",
                                            "hflip", "seed", "classes", NULL};
/* Options not stored in OUT/train_options.txt. */
static const char *const unsaved_options[] = {"out", "resume", "steps", "threads", "engine", "save-retry", NULL};

static int in_list(const char *name, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

static int errorf(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int errorf(const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "ddpm: error: %s\n", msg);
    return CLI_FAIL;
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

static int exists(const char *dir, const char *name) {
    char *p = join(dir, name);
    int e = p && access(p, F_OK) == 0;
    free(p);
    return e;
}

/* Saved option values of a run: lines "name=value" of OUT/train_options.txt. */
typedef struct {
    char *value[CLI_MAX_OPTIONS];
} saved_options;

static void saved_free(saved_options *s) {
    for (int i = 0; i < CLI_MAX_OPTIONS; i++) free(s->value[i]);
    memset(s, 0, sizeof *s);
}

static void saved_read(saved_options *s, const char *out) {
    memset(s, 0, sizeof *s);
    char *path = join(out, "train_options.txt"), *line = NULL;
    FILE *f = path ? fopen(path, "rb") : NULL;
    size_t cap = 0;
    ssize_t len;
    free(path);
    if (!f) return;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = 0;
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq) continue;
        *eq = 0;
        for (int k = 0; options[k].name; k++)
            if (strcmp(options[k].name, line) == 0 && !s->value[k]) {
                s->value[k] = malloc(strlen(eq + 1) + 1);
                if (s->value[k]) strcpy(s->value[k], eq + 1);
            }
    }
    free(line);
    fclose(f);
}

static int saved_write(const cli_args *a, const char *out) {
    char *path = join(out, "train_options.txt");
    cli_text_file tf;
    if (!path) return errorf("out of memory");
    int rc = cli_text_open(&tf, path);
    free(path);
    if (rc != CLI_OK) return rc;
    fprintf(tf.f, "# the options of this 'ddpm train' run, read by --resume\n");
    for (int k = 0; options[k].name; k++) {
        const char *v = a->value[k] ? a->value[k] : options[k].def;
        if (v && !in_list(options[k].name, unsaved_options) && !strchr(v, '\n'))
            fprintf(tf.f, "%s=%s\n", options[k].name, v);
    }
    return cli_text_commit(&tf);
}

/* Two option values agree: equal text or equal numbers. */
static int same_value(const char *x, const char *y) {
    char *ex, *ey;
    if (strcmp(x, y) == 0) return 1;
    double a = strtod(x, &ex), b = strtod(y, &ey);
    return ex != x && ey != y && !*ex && !*ey && a == b;
}

/* ------------------------------------------------------------------------------- the run */

typedef struct {
    cli_args ea;                   /* effective options: the command line over the saved ones over defaults */
    saved_options saved;
    char *out, *log_path, *settings, *checkpoint;
    ddpm_dataset ds;
    ddpm_trainer *tr;
    ddpm_diffusion *dif;
    cli_train_log lg;
    long long total, start, last_checkpoint, last_sample;
    long long sample_every, sample_num, sample_steps, checkpoint_every, save_retry, classes;
    int images_per_step;
    ddpm_dir_lock *lock;           /* one writer per run folder */
} train_run;

static int stop_requested(void *user) {
    (void)user;
    return stop_signal != 0;
}

/* The run folder of --resume DIR: DIR itself, or RUN for DIR = RUN/checkpoints/checkpoint-N. */
static char *run_folder_of(const char *dir) {
    size_t n = strlen(dir);
    char *s = malloc(n + 3);
    if (!s) return NULL;
    strcpy(s, dir);
    while (n > 1 && s[n - 1] == '/') s[--n] = 0;
    char *last = strrchr(s, '/');
    if (last && strncmp(last + 1, "checkpoint-", 11) == 0) {
        *last = 0;
        char *prev = strrchr(s, '/');
        const char *parent = prev ? prev + 1 : s;
        if (strcmp(parent, "checkpoints") == 0) {
            if (prev) *prev = 0;
            else strcpy(s, ".");
            if (!s[0]) strcpy(s, "/");
            return s;
        }
        *last = '/';
    }
    return s;
}

/* Merges the saved options of a resumed run under the command line; refuses changed run-defining options. */
static int merge_saved(train_run *r, const cli_args *a) {
    char *src = run_folder_of(cli_str(a, "resume"));   /* the options live in the resumed run's folder */
    r->ea = *a;
    if (!src) return errorf("out of memory");
    saved_read(&r->saved, src);
    free(src);
    for (int k = 0; options[k].name; k++) {
        const char *name = options[k].name, *sv = r->saved.value[k];
        if (a->value[k] && in_list(name, fixed_options)) {
            if (!sv && options[k].arg) sv = options[k].def;
            if (!sv || !same_value(sv, a->value[k]))
                return cli_usage_error("--%s %s: a resumed run keeps its settings (it has %s%s); start a new run "
                                       "with --out to change it", name, a->value[k], sv ? "" : "no --", sv ? sv : name);
        }
        if (!a->value[k] && sv && !in_list(name, unsaved_options)) r->ea.value[k] = sv;
    }
    return CLI_OK;
}

/* Reads and checks every option into tc; rejects a bad command line before anything is loaded. */
static int parse_config(train_run *r, ddpm_train_config *tc, long long *threads, long long *log_every) {
    const cli_args *a = &r->ea;
    long long steps, batch, accum, warmup, T, keep;
    double ema;
    ddpm_train_config_default(tc);
    int rc = cli_int(a, "steps", 1, (long long)1 << 40, &steps);
    if (rc == CLI_OK) rc = cli_int(a, "batch", 1, 1 << 20, &batch);
    if (rc == CLI_OK) rc = cli_int(a, "grad-accum", 1, 1 << 16, &accum);
    if (rc == CLI_OK) rc = cli_double(a, "lr", 0, 1e6, 1, &tc->lr);
    if (rc == CLI_OK) rc = cli_int(a, "warmup", 0, (long long)1 << 40, &warmup);
    int v = 0;
    if (rc == CLI_OK && (rc = cli_enum(a, "lr-schedule", DDPM_ENUM_LR_SCHEDULE, &v)) == CLI_OK)
        tc->lr_schedule = (ddpm_lr_schedule)v;
    if (rc == CLI_OK) rc = cli_double(a, "grad-clip", 0, 1e12, 0, &tc->grad_clip);
    if (rc == CLI_OK) rc = cli_check_schedule("schedule", cli_str(a, "schedule"));
    if (rc == CLI_OK) rc = cli_int(a, "T", 1, 1000000, &T);
    if (rc == CLI_OK && (rc = cli_enum(a, "objective", DDPM_ENUM_PREDICTION, &v)) == CLI_OK)
        tc->objective = (ddpm_prediction)v;
    if (rc == CLI_OK) rc = cli_double(a, "min-snr-gamma", 0, 1e6, 0, &tc->min_snr_gamma);
    if (rc == CLI_OK) rc = cli_double(a, "ema", 0, 1, 0, &ema);
    if (rc == CLI_OK && ema >= 1) rc = cli_usage_error("--ema %s: must be in [0, 1)", cli_str(a, "ema"));
    if (rc == CLI_OK) rc = cli_double(a, "label-dropout", 0, 1, 0, &tc->label_dropout);
    if (rc == CLI_OK) rc = cli_u64(a, "seed", &tc->seed);
    if (rc == CLI_OK) rc = cli_int(a, "checkpoint-every", 0, (long long)1 << 40, &r->checkpoint_every);
    if (rc == CLI_OK) rc = cli_int(a, "keep-checkpoints", 0, 1 << 20, &keep);
    if (rc == CLI_OK) rc = cli_int(a, "sample-every", 0, (long long)1 << 40, &r->sample_every);
    if (rc == CLI_OK) rc = cli_int(a, "sample-num", 1, 1024, &r->sample_num);
    if (rc == CLI_OK) rc = cli_int(a, "sample-steps", 1, 100000, &r->sample_steps);
    if (rc == CLI_OK) rc = cli_int(a, "log-every", 1, (long long)1 << 40, log_every);
    if (rc == CLI_OK) rc = cli_threads(a, "threads", 0, threads);
    if (rc == CLI_OK && (rc = cli_enum(a, "engine", DDPM_ENUM_ENGINE, &v)) == CLI_OK) tc->engine = (ddpm_engine)v;
    if (rc == CLI_OK) rc = cli_int(a, "save-retry", 0, 1 << 30, &r->save_retry);
    if (rc == CLI_OK && cli_str(a, "classes")) rc = cli_int(a, "classes", 1, 1000000, &r->classes);
    if (rc == CLI_OK && !cli_str(a, "data"))
        rc = cli_given(&r->ea, "resume") ? cli_usage_error("'ddpm train --resume' needs --data: the run's "
                                                           "train_options.txt is missing")
                                         : cli_require(a, "data");
    if (rc == CLI_OK && strncmp(cli_str(a, "data"), "folder:", 7) != 0) {
        static const char *const kinds[] = {"mnist", "fashion-mnist", "cifar10", NULL};
        const char *d = cli_str(a, "data");
        if (!in_list(d, kinds)) {
            const char *near = ddpm_closest(d, kinds, 3);
            rc = near ? cli_usage_error("--data %s: unknown data set (did you mean '%s'?)", d, near)
                      : cli_usage_error("--data %s: must be mnist, fashion-mnist, cifar10 or folder:DIR", d);
        }
    }
    if (rc == CLI_OK && !cli_given(a, "resume") && !cli_str(a, "model")) rc = cli_require(a, "model");
    if (rc == CLI_OK && !cli_given(a, "resume") && !cli_str(a, "out")) rc = cli_require(a, "out");
    if (rc != CLI_OK) return rc;
    tc->steps = steps;
    tc->batch = (int)batch;
    tc->grad_accum = (int)accum;
    tc->warmup_steps = warmup;
    tc->schedule.name = cli_str(a, "schedule");
    tc->schedule.T = (int)T;
    tc->use_ema = ema > 0;
    tc->ema_max_decay = ema > 0 ? ema : tc->ema_max_decay;
    tc->hflip = cli_flag(a, "hflip");
    tc->checkpoint_every = r->checkpoint_every;
    tc->keep_checkpoints = (int)keep;
    tc->should_stop = stop_requested;
    r->total = steps;
    return CLI_OK;
}

/* The next line of a config.json text that is not a "_meta" field, trimmed of blanks and a trailing comma. */
static const char *config_line(const char *p, char *buf, size_t size) {
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ',' || p[n - 1] == ' ' || p[n - 1] == '\r')) n--;
        snprintf(buf, size, "%.*s", (int)n, p);
        p = e ? e + 1 : p + strlen(p);
        if (strncmp(buf, "\"_", 2) != 0) return p;
    }
    buf[0] = 0;
    return NULL;
}

/* --model on resume must be the run's network: compares the config.json texts and names the first field
   that differs. */
static int check_same_network(ddpm_model *m, const char *spec, const char *checkpoint) {
    ddpm_model *saved = NULL;
    char *ja = NULL, *jb = NULL, la[256], lb[256], key[256] = "";
    int rc = CLI_OK;
    if (ddpm_model_load(checkpoint, 0, &saved) != DDPM_OK || ddpm_model_config_json(m, &ja) != DDPM_OK ||
        ddpm_model_config_json(saved, &jb) != DDPM_OK) {
        rc = cli_fail();
    } else {
        const char *pa = ja, *pb = jb;
        while (pa || pb) {
            pa = pa ? config_line(pa, la, sizeof la) : (la[0] = 0, NULL);
            pb = pb ? config_line(pb, lb, sizeof lb) : (lb[0] = 0, NULL);
            const char *colon = strstr(la, "\":");
            if (colon) snprintf(key, sizeof key, "%.*s", (int)(colon - la + 1), la);
            if (strcmp(la, lb) != 0) {
                rc = errorf("--model %s is not the network of the run in %s: %s%s%s here, %s there", spec,
                            checkpoint, colon ? "" : key, colon ? "" : " ", la, lb);
                break;
            }
        }
    }
    ddpm_model_free(saved);
    ddpm_free(ja);
    ddpm_free(jb);
    return rc;
}

/* Loads the network (and, on resume, the trainer's state) and the data; makes r->tr. */
static int start(train_run *r, ddpm_train_config *tc, const cli_args *given) {
    const cli_args *a = &r->ea;
    const char *resume = cli_str(a, "resume");
    ddpm_model *m = NULL;
    uint64_t seed = tc->seed;
    if (resume) {
        const char *spec = cli_given(given, "model") ? cli_str(given, "model") : r->checkpoint;
        if (ddpm_model_load(spec, seed, &m) != DDPM_OK) return cli_fail();
        if (spec != r->checkpoint && check_same_network(m, spec, r->checkpoint) != CLI_OK) {
            ddpm_model_free(m);
            return CLI_FAIL;
        }
    } else {
        if (ddpm_model_load(cli_str(a, "model"), seed, &m) != DDPM_OK) return cli_fail();
        if (r->classes > 0) {   /* --classes: the same network with a class embedding and a null class */
            ddpm_model *cm = NULL;
            ddpm_status st = ddpm_model_with_classes(m, (int)r->classes, seed, &cm);
            ddpm_model_free(m);
            if (st != DDPM_OK) return errorf("--classes %lld: %s", r->classes, ddpm_last_error());
            m = cm;
        }
    }
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    if (ddpm_dataset_load_for_model(cli_str(a, "data"), cli_str(a, "data-dir"), 1, info.sample_size,
                                    info.in_channels, &r->ds) != DDPM_OK) {
        ddpm_model_free(m);
        return cli_fail();
    }
    if (!resume && r->classes > 0 && r->ds.num_classes != r->classes) {
        ddpm_model_free(m);
        return errorf("--classes %lld, but the data has %d classes", r->classes, r->ds.num_classes);
    }
    if (!resume && info.num_class_embeds == 0 && r->ds.num_classes > 0)
        printf("note: the data has %d classes but the network is unconditional, so the labels are not used; add "
               "--classes %d for a class-conditional model\n", r->ds.num_classes, r->ds.num_classes);
    if (resume) {
        ddpm_train_resume_options ro;
        ddpm_train_resume_options_default(&ro);
        ro.steps = cli_given(given, "steps") ? tc->steps : 0;
        ro.checkpoint_every = tc->checkpoint_every;
        ro.keep_checkpoints = tc->keep_checkpoints;
        ro.engine = tc->engine;
        ro.should_stop = stop_requested;
        if (ddpm_trainer_resume(resume, m, &r->ds, &ro, &r->tr) != DDPM_OK) return cli_fail();
    } else if (ddpm_trainer_create(tc, m, &r->ds, &r->tr) != DDPM_OK) {
        return cli_fail();
    }
    const ddpm_train_config *rc = ddpm_trainer_config(r->tr);
    r->total = rc->steps;
    r->start = r->last_checkpoint = r->last_sample = ddpm_trainer_steps_done(r->tr);
    r->images_per_step = rc->batch * rc->grad_accum;
    if (ddpm_diffusion_create(&rc->schedule, &r->dif) != DDPM_OK) return cli_fail();
    return CLI_OK;
}

static void note(progress *p, const char *fmt, const char *arg) {
    progress_break(p);
    printf(fmt, arg);
    fflush(stdout);
}

/* A sample grid OUT/samples/step-<step>.png; a failure is a warning (training goes on). */
static void sample_grid(train_run *r, progress *p, long long step) {
    char name[64];
    snprintf(name, sizeof name, "samples/step-%lld.png", step);
    char *path = join(r->out, name);
    ddpm_model *sm = NULL;
    int chunk = (int)(r->sample_num < 32 ? r->sample_num : 32);
    ddpm_status st = path ? ddpm_trainer_sample_model(r->tr, chunk, &sm) : DDPM_ERR_NOMEM;
    if (st == DDPM_OK)
        st = write_sample_grid(sm, chunk, r->ds.num_classes, r->dif, ddpm_trainer_config(r->tr)->objective,
                               (int)r->sample_num, (int)r->sample_steps, ddpm_trainer_config(r->tr)->seed, path,
                               r->settings, step);
    if (st == DDPM_OK) {
        note(p, "samples: %s\n", path);
    } else if (!stop_signal) {
        progress_break(p);
        fprintf(stderr, "ddpm: warning: no samples at step %lld: %s\n", step,
                st == DDPM_ERR_NOMEM ? "out of memory" : ddpm_last_error());
    }
    r->last_sample = step;
    free(path);
}

/* Sleeps s seconds, or less when a stop signal arrives. */
static void nap(double s) {
    double end = now_s() + s;
    while (!stop_signal && now_s() < end) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* A save (final = 0: a checkpoint, 1: the run folder) that fails, for a full disk or a quota, is retried with
   waits of 1, 2, 4 ... 60 s for up to --save-retry seconds: the trained state is in memory, so freeing space
   keeps every step. A stop signal during the waits gives up (one that came before the save does not). */
static int save_run(train_run *r, progress *p, int final) {
    double t0 = now_s(), wait = 1;
    const int stopping = stop_signal != 0;
    for (;;) {
        char *path = NULL;
        ddpm_status st = final ? ddpm_trainer_save(r->tr, r->out) : ddpm_trainer_checkpoint(r->tr, r->out, &path);
        if (st == DDPM_OK) {
            if (!final) {
                r->last_checkpoint = ddpm_trainer_steps_done(r->tr);
                ddpm_free(r->checkpoint);
                r->checkpoint = path;
                if (path) note(p, "checkpoint: %s\n", path);
            }
            return CLI_OK;
        }
        if (st != DDPM_ERR_IO || (stop_signal && !stopping) || now_s() - t0 + wait > (double)r->save_retry) {
            char why[700];
            long long done = ddpm_trainer_steps_done(r->tr);
            if (r->checkpoint && r->last_checkpoint < done)
                snprintf(why, sizeof why, "; steps %lld..%lld are lost, the last checkpoint, %s, is intact (resume "
                         "from it with --resume %s)", r->last_checkpoint + 1, done, r->checkpoint, r->out);
            else if (!r->checkpoint && r->start < done)
                snprintf(why, sizeof why, "; steps %lld..%lld are lost (no checkpoint was written)", r->start + 1, done);
            else
                why[0] = 0;
            progress_break(p);
            return errorf("%s%s", ddpm_last_error(), why);
        }
        progress_break(p);
        fprintf(stderr, "ddpm: warning: %s; the run is kept in memory: free some space in %s; retrying in %.0f s "
                "(Ctrl-C gives up)\n", ddpm_last_error(), r->out, wait);
        nap(wait);
        wait = wait * 2 > 60 ? 60 : wait * 2;
    }
}

static int checkpoint(train_run *r, progress *p) { return save_run(r, p, 0); }

static int train_loop(train_run *r, long long log_every) {
    progress p;
    progress_init(&p, r->total, r->images_per_step, log_every);
    double t_start = now_s(), t_prev = t_start;
    long long step = r->start;
    int rc = CLI_OK;
    if (step >= r->total) {
        printf("the run is already at step %lld of --steps %lld; nothing to train\n", step, r->total);
        return CLI_OK;
    }
    printf("training %s: steps %lld..%lld, %d images per step, %lld training images; output in %s\n",
           cli_str(&r->ea, "model"), step + 1, r->total, r->images_per_step, (long long)r->ds.count, r->out);
    fflush(stdout);
    while (step < r->total && !stop_signal) {
        ddpm_train_stats s;
        ddpm_status st = ddpm_trainer_step(r->tr, &s);
        if (st == DDPM_ERR_INTERRUPTED) break;
        if (st == DDPM_ERR_NUMERIC) {
            char where[600];
            if (r->checkpoint) snprintf(where, sizeof where, "the last checkpoint, %s, is intact", r->checkpoint);
            else snprintf(where, sizeof where, "no checkpoint was written");
            progress_break(&p);
            return errorf("%s; %s", ddpm_last_error(), where);
        }
        if (st != DDPM_OK) {
            progress_break(&p);
            return cli_fail();
        }
        step = s.step;
        double t = now_s(), dt = t - t_prev;
        double smoothed = cli_log_smooth(&r->lg, s.loss);
        double ips = dt > 0 ? r->images_per_step / dt : 0;
        if ((rc = cli_log_write(&r->lg, step, s.loss, smoothed, s.lr, s.grad_norm, ips, t - t_start)))
            return rc;
        progress_step(&p, step, s.loss, smoothed, s.lr, dt, r->lg.elapsed0 + t - t_start);
        if (r->sample_every > 0 && step % r->sample_every == 0) sample_grid(r, &p, step);
        if (r->checkpoint_every > 0 && step % r->checkpoint_every == 0 && step < r->total &&
            (rc = checkpoint(r, &p)))
            return rc;
        t_prev = now_s();
    }
    if (stop_signal) {
        progress_break(&p);
        if (step == 0) {
            fprintf(stderr, "ddpm: error: interrupted before the first step; nothing was trained\n");
            return stop_signal == SIGTERM ? 143 : CLI_INTERRUPTED;
        }
        if (step > r->last_checkpoint && (rc = checkpoint(r, &p))) return rc;
        fprintf(stderr, "interrupted at step %lld; resume with: ddpm train --resume %s --steps %lld\n", step, r->out,
                r->total);
        return stop_signal == SIGTERM ? 143 : CLI_INTERRUPTED;
    }
    if ((rc = save_run(r, &p, 1)) != CLI_OK) return rc;
    if (r->sample_every > 0 && r->last_sample < step) sample_grid(r, &p, step);
    char *png = join(r->out, "loss.png");
    if (!png) return errorf("out of memory");
    rc = cli_plot_loss(r->log_path, png, 0.98, 1, 1000, 600, r->settings);
    char el[32];
    format_duration(el, sizeof el, now_s() - t_start);
    if (rc == CLI_OK)
        printf("trained to step %lld in %s (smoothed loss %.5f); the model (%s weights) is in %s, the loss curve "
               "in %s\n", step, el, r->lg.smoothed / (r->lg.weight > 0 ? r->lg.weight : 1),
               ddpm_trainer_config(r->tr)->use_ema ? "EMA" : "raw", r->out, png);
    free(png);
    return rc;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    train_run r;
    ddpm_train_config tc;
    long long threads, log_every;
    memset(&r, 0, sizeof r);
    r.ea = *a;
    install_stop_handlers();
    const char *resume = cli_str(a, "resume");
    int rc = CLI_OK;
    const char *out = cli_str(a, "out") ? cli_str(a, "out") : resume;
    r.out = run_folder_of(out ? out : ".");
    if (!r.out) return errorf("out of memory");
    struct stat osb;
    const int created = stat(r.out, &osb) != 0;   /* removed again if the run fails before writing anything */
    /* a resume takes the folder before reading its state (a run may be writing it); a new run once its
       options are known good */
    if (resume && !created && ddpm_dir_lock_take(r.out, &r.lock) != DDPM_OK) {
        free(r.out);
        return cli_fail();
    }
    if (resume && ddpm_train_find_checkpoint(resume, &r.checkpoint) != DDPM_OK) {
        ddpm_dir_lock_release(r.lock);
        free(r.out);
        return cli_fail();
    }
    if (resume) rc = merge_saved(&r, a);
    if (rc == CLI_OK) rc = parse_config(&r, &tc, &threads, &log_every);
    if (rc != CLI_OK) goto done;
    ddpm_set_threads((int)threads);
    if (!r.lock && ddpm_dir_lock_take(r.out, &r.lock) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    if (!resume && (exists(r.out, "training_state.json") || exists(r.out, "checkpoints"))) {
        /* a run that saved a step is continued with --resume; one that died before saving any (kill -9 or a
           full disk during its first save) left only debris, and a new run starts over it */
        char *found = NULL;
        ddpm_status fs = ddpm_train_find_checkpoint(r.out, &found);
        ddpm_free(found);
        if (fs == DDPM_OK)
            rc = cli_usage_error("%s already holds a training run: continue it with --resume %s, or choose another "
                                 "--out", r.out, r.out);
        else if (fs != DDPM_ERR_IO)
            rc = cli_usage_error("%s holds a training run that cannot be continued (%s); remove the folder or "
                                 "choose another --out", r.out, ddpm_last_error());
        else
            printf("%s: an earlier run there saved no training state; starting afresh\n", r.out);
        if (rc != CLI_OK) goto done;
    }
    r.settings = cli_settings(&r.ea);
    r.log_path = join(r.out, "log.csv");
    char *samples = join(r.out, "samples");
    if (!r.settings || !r.log_path || !samples) rc = errorf("out of memory");
    if (rc == CLI_OK) rc = start(&r, &tc, a);   /* nothing is written before the model and the data load */
    if (rc == CLI_OK) rc = ddpm_make_dirs(samples) == DDPM_OK ? CLI_OK : cli_fail();
    free(samples);
    if (rc == CLI_OK) rc = cli_log_open(&r.lg, r.log_path, resume ? r.start : 0);
    if (rc == CLI_OK) rc = saved_write(&r.ea, r.out);
    if (rc == CLI_OK) rc = train_loop(&r, log_every);
done:
    cli_log_close(&r.lg);
    ddpm_dir_lock_release(r.lock);
    if (rc != CLI_OK && r.lock && created) rmdir(r.out);   /* only if still empty */
    ddpm_trainer_free(r.tr);
    ddpm_dataset_free(&r.ds);
    ddpm_diffusion_free(r.dif);
    saved_free(&r.saved);
    ddpm_free(r.checkpoint);
    free(r.out);
    free(r.log_path);
    free(r.settings);
    return rc;
}

const cli_command cli_cmd_train = {
    "train",
    "train a diffusion model on MNIST, Fashion-MNIST, CIFAR-10 or a folder of images",
    "--data mnist|fashion-mnist|cifar10|folder:DIR [--data-dir DIR] --model PRESET|config.json --out DIR\n"
    "                  [--steps N] [--batch B] [--lr LR] [--schedule NAME] [--objective eps|x0|v] [--ema D]\n"
    "                  [--seed S] [--threads N] [options]\n"
    "       ddpm train --resume DIR [--steps N]",
    NULL, 0, 0, options,
    "OUT receives log.csv (step, loss, smoothed_loss, lr, grad_norm, images_per_s, elapsed_s), samples/step-N.png,\n"
    "checkpoints/checkpoint-N/, and at the end the model (a diffusers pipeline folder holding the EMA weights,\n"
    "plus training_state.*) and loss.png. Ctrl-C (or SIGTERM) finishes the step, saves a checkpoint and exits\n"
    "130 (143); --resume continues bit for bit. See docs/train.md.\n\n"
    "examples:\n"
    "  ddpm get-data mnist      (once: into ~/.cache/ddpm/mnist, where --data mnist looks)\n"
    "  ddpm train --data mnist --model mnist --out runs/mnist --steps 5000 --batch 64\n"
    "  ddpm train --data folder:icons --model config.json --out runs/icons --hflip --lr-schedule cosine\n"
    "  ddpm train --resume runs/mnist --steps 10000\n",
    run,
};
