/* cmd_train.c — `ddpm train`: trains a diffusion model on a data set through the library's trainer, showing
   progress, logging to CSV, drawing sample grids and the loss curve, checkpointing (a failed save waits for
   room), resuming exactly, and stopping cleanly on SIGINT/SIGTERM. */
#include <ddpm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

/* ------------------------------------------------------------------------------- options */

static const cli_option options[] = {
    {"data", "SPEC", NULL, "training images: mnist, fashion-mnist, cifar10 or folder:DIR (PNG/JPEG; "
     "one sub-folder per class gives labels); required unless resuming"},
    {"data-dir", "DIR", NULL, "folder with the mnist, fashion-mnist or cifar10 files (default: $DDPM_DATA/NAME, "
     "else ~/.cache/ddpm/NAME, filled by ddpm get-data NAME)"},
    {"model", "PRESET|M", NULL, "the network: mnist, cifar10, tiny, basic, a diffusers config.json or a model "
     "folder (its weights are the starting point); required unless resuming"},
    {"out", "DIR", NULL, "the run folder (required unless resuming: then the resumed run's folder)"},
    {"steps", "N", cli_defaults.steps, "total optimiser steps of the run (on resume: the new total)"},
    {"batch", "B", cli_defaults.batch, "images per forward/backward pass"},
    {"grad-accum", "K", cli_defaults.grad_accum, "passes per optimiser step (global batch = B x K)"},
    {"lr", "LR", cli_defaults.lr, "peak learning rate (AdamW, weight decay 0.01); 2e-4 suits the 35.7M cifar10 net"},
    {"warmup", "N", cli_defaults.warmup, "steps of linear learning-rate warm-up"},
    {"lr-schedule", "NAME", cli_defaults.lr_schedule, "after warm-up: constant, or cosine (half-cosine decay to 0 at the "
     "--steps of the run's start)"},
    {"grad-clip", "G", cli_defaults.grad_clip, "clip the gradient's global L2 norm to G (0 = no clipping)"},
    {"schedule", "NAME", cli_defaults.schedule, "noise schedule, one of those of 'ddpm schedule'"},
    {"T", "N", cli_defaults.T, "number of diffusion steps"},
    {"objective", "NAME", cli_defaults.objective, "what the network learns to predict: eps, x0 or v"},
    {"min-snr-gamma", "G", cli_defaults.min_snr_gamma, "min-SNR-gamma loss weights (e.g. 5; 0 = plain MSE)"},
    {"ema", "DECAY", cli_defaults.ema, "maximum decay of the weights' moving average (0 = no EMA); saved models "
     "hold it"},
    {"label-dropout", "P", cli_defaults.label_dropout, "class-conditional models: chance of dropping a label (for guidance)"},
    {"hflip", NULL, NULL, "flip images horizontally at random"},
    {"seed", "S", cli_defaults.seed, "seed of the weight initialisation and of every random draw of training"},
    {"classes", "N", NULL, "make the network class-conditional: N classes (the data's) plus a null class for "
     "guidance, learned through --label-dropout"},
    {"resume", "DIR", NULL, "continue the run in DIR (a run folder or one of its checkpoints) exactly"},
    {"checkpoint-every", "N", cli_defaults.checkpoint_every, "a checkpoint every N steps in OUT/checkpoints (0 = none)"},
    {"keep-checkpoints", "N", cli_defaults.keep_checkpoints, "newest checkpoints kept (0 = all)"},
    {"sample-every", "N", "500", "a grid of samples from the EMA weights every N steps and at the end (0 = none)"},
    {"sample-num", "N", "16", "images in a sample grid"},
    {"sample-steps", "N", "50", "DDIM steps of a sample grid"},
    {"log-every", "N", "100", "without a terminal: a progress line every N steps"},
    CLI_OPT_THREADS,
    CLI_OPT_ENGINE,
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
    while (*list && strcmp(*list, name) != 0) list++;
    return *list != NULL;
}

static char *join(const char *dir, const char *name) {
    char *s = malloc(strlen(dir) + strlen(name) + 2);
    if (s) sprintf(s, "%s/%s", dir, name);
    return s;
}

/* ------------------------------------------------------------------------------- the run */

typedef struct {
    cli_args ea;                   /* effective options: the command line over the saved ones over defaults */
    char *saved[CLI_MAX_OPTIONS];  /* values of the resumed run's train_options.txt */
    char *out, *log_path, *settings, *checkpoint;
    ddpm_dataset ds;
    ddpm_trainer *tr;
    ddpm_train_log *log;
    long long total, start, last_checkpoint, last_sample, classes;
    long long sample_every, sample_num, sample_steps, save_retry, log_every;
    ddpm_dir_lock *lock;           /* one writer per run folder */
    cli_progress line;             /* the progress line while training */
    int batch;                     /* images per step */
    double step_s, weight;         /* moving average of s/step, 1 - 0.9^k */
} train_run;

/* The progress line of a step of dt seconds: a terminal's shows the smoothed loss, a plain one (every
   --log-every steps) the step's loss and rate too; both show the last step. */
static void progress_step(train_run *r, long long step, double loss, double smoothed, double lr, double dt,
                          double elapsed) {
    r->step_s = 0.9 * r->step_s + 0.1 * dt;
    r->weight = 1 - 0.9 * (1 - r->weight);
    double per_step = r->step_s / r->weight, ips = per_step > 0 ? r->batch / per_step : 0;
    char eta[32], el[32], line[256];
    cli_duration(eta, sizeof eta, per_step * (double)(r->total - step));
    cli_duration(el, sizeof el, elapsed);
    if (r->line.tty)
        snprintf(line, sizeof line, "step %lld/%lld (%d%%)  smoothed loss %.4f  %.1f img/s  elapsed %s  ETA %s", step,
                 r->total, (int)(100 * step / r->total), smoothed, ips, el, eta);
    else
        snprintf(line, sizeof line, "step %lld/%lld loss %.5f smoothed %.5f lr %.3g %.1f img/s elapsed %s ETA %s", step,
                 r->total, loss, smoothed, lr, ips, el, eta);
    cli_progress_show(&r->line, line, step % r->log_every == 0, step >= r->total);
}

static int saved_write(const cli_args *a, const char *out) {
    char *path = join(out, "train_options.txt");
    cli_text_file tf;
    int rc = path ? cli_text_open(&tf, path) : cli_error(CLI_FAIL, "out of memory");
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
    double a = strtod(x, &ex), b = strtod(y, &ey);
    return strcmp(x, y) == 0 || (ex != x && ey != y && !*ex && !*ey && a == b);
}

/* Merges the saved options of a resumed run (OUT/train_options.txt of the resumed run's folder) under the
   command line; refuses changed run-defining options. */
static int merge_saved(train_run *r, const cli_args *a) {
    char *src = NULL, *path = NULL, line[8192];
    if (ddpm_train_run_folder(cli_str(a, "resume"), &src) != DDPM_OK) return cli_fail();
    FILE *f = (path = join(src, "train_options.txt")) != NULL ? fopen(path, "rb") : NULL;
    ddpm_free(src), free(path);
    while (f && fgets(line, sizeof line, f)) {   /* "name=value" lines */
        char *eq = line[0] != '#' ? strchr(line, '=') : NULL;
        if (eq) *eq++ = 0, eq[strcspn(eq, "\n")] = 0;
        for (int k = 0; eq && options[k].name; k++)
            if (strcmp(options[k].name, line) == 0 && !r->saved[k]) r->saved[k] = strdup(eq);
    }
    if (f) fclose(f);
    for (int k = 0; options[k].name; k++) {
        const char *name = options[k].name, *sv = r->saved[k];
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
static int parse_config(train_run *r, ddpm_train_config *tc, long long *threads) {
    const cli_args *a = &r->ea;
    long long batch, accum, warmup, every, keep;
    double ema;
    int lrs = 0, obj = 0, eng = 0, rc = CLI_OK;
    ddpm_train_config_default(tc);
    const struct { const char *name; long long min, max, *out; } ints[] = {
        {"steps", 1, 1LL << 40, &r->total}, {"batch", 1, 1 << 20, &batch}, {"grad-accum", 1, 1 << 16, &accum},
        {"warmup", 0, 1LL << 40, &warmup}, {"checkpoint-every", 0, 1LL << 40, &every},
        {"keep-checkpoints", 0, 1 << 20, &keep}, {"sample-every", 0, 1LL << 40, &r->sample_every},
        {"sample-num", 1, 1024, &r->sample_num}, {"sample-steps", 1, 100000, &r->sample_steps},
        {"log-every", 1, 1LL << 40, &r->log_every}, {"save-retry", 0, 1 << 30, &r->save_retry}};
    const struct { const char *name; double max; int open; double *out; } reals[] = {
        {"lr", 1e6, 1, &tc->lr}, {"grad-clip", 1e12, 0, &tc->grad_clip}, {"min-snr-gamma", 1e6, 0, &tc->min_snr_gamma},
        {"ema", 1, 0, &ema}, {"label-dropout", 1, 0, &tc->label_dropout}};
    for (size_t i = 0; rc == CLI_OK && i < sizeof ints / sizeof ints[0]; i++)
        rc = cli_int(a, ints[i].name, ints[i].min, ints[i].max, ints[i].out);
    for (size_t i = 0; rc == CLI_OK && i < sizeof reals / sizeof reals[0]; i++)
        rc = cli_double(a, reals[i].name, 0, reals[i].max, reals[i].open, reals[i].out);
    if (rc || (rc = cli_enum(a, "lr-schedule", DDPM_ENUM_LR_SCHEDULE, &lrs)) ||
        (rc = cli_enum(a, "objective", DDPM_ENUM_PREDICTION, &obj)) ||
        (rc = cli_engine(a, &eng)) ||
        (rc = cli_schedule(a, &tc->schedule)) || (rc = cli_u64(a, "seed", &tc->seed)) ||
        (rc = cli_threads(a, "threads", 0, threads)) ||
        (cli_str(a, "classes") && (rc = cli_int(a, "classes", 1, 1000000, &r->classes))))
        return rc;
    if (ema >= 1) return cli_usage_error("--ema %s: must be in [0, 1)", cli_str(a, "ema"));
    if (!cli_str(a, "data"))
        return cli_given(a, "resume") ? cli_usage_error("'ddpm train --resume' needs --data: the run's "
                                                        "train_options.txt is missing") : cli_require(a, "data");
    static const char *const kinds[] = {"mnist", "fashion-mnist", "cifar10", "folder:DIR", NULL};
    const char *d = cli_str(a, "data");
    char label[300];
    snprintf(label, sizeof label, "--data %.200s", d);
    if (strncmp(d, "folder:", 7) != 0 && (rc = cli_choice(label, d, kinds, "data set", NULL))) return rc;
    if (!cli_given(a, "resume") && !cli_str(a, "model")) return cli_require(a, "model");
    if (!cli_given(a, "resume") && !cli_str(a, "out")) return cli_require(a, "out");
    tc->steps = r->total, tc->batch = (int)batch, tc->grad_accum = (int)accum, tc->warmup_steps = warmup;
    tc->lr_schedule = (ddpm_lr_schedule)lrs, tc->objective = (ddpm_prediction)obj, tc->engine = (ddpm_engine)eng;
    tc->use_ema = ema > 0, tc->ema_max_decay = ema > 0 ? ema : tc->ema_max_decay, tc->hflip = cli_flag(a, "hflip");
    tc->checkpoint_every = every, tc->keep_checkpoints = (int)keep, tc->should_stop = cli_stop_requested;
    return CLI_OK;
}

/* Loads the network (on resume: checked against the run's, with the trainer's state) and the data. */
static int start(train_run *r, ddpm_train_config *tc, const cli_args *given) {
    const cli_args *a = &r->ea;
    const char *resume = cli_str(a, "resume");
    const char *spec = !resume || cli_given(given, "model") ? cli_str(a, "model") : r->checkpoint;
    ddpm_model *m = NULL, *other = NULL;
    ddpm_model_info info;
    char *what = NULL;
    int rc = ddpm_model_load(spec, tc->seed, &m) == DDPM_OK ? CLI_OK : cli_fail();
    if (rc == CLI_OK && resume && spec != r->checkpoint &&
        (ddpm_model_load(r->checkpoint, 0, &other) != DDPM_OK || ddpm_model_config_diff(m, other, &what) != DDPM_OK))
        rc = cli_fail();
    if (what)
        rc = cli_error(CLI_FAIL, "--model %s is not the network of the run in %s: %s (given vs the run's)", spec,
                       r->checkpoint, what);
    ddpm_free(what), ddpm_model_free(other), other = NULL;
    if (rc == CLI_OK && !resume && r->classes > 0) {   /* the same network with a class embedding and a null class */
        if (ddpm_model_with_classes(m, (int)r->classes, tc->seed, &other) != DDPM_OK)
            rc = cli_error(CLI_FAIL, "--classes %lld: %s", r->classes, ddpm_last_error());
        ddpm_model_free(m), m = other;
    }
    ddpm_model_get_info(m, &info);
    if (rc == CLI_OK && ddpm_dataset_load_for_model(cli_str(a, "data"), cli_str(a, "data-dir"), 1, info.sample_size,
                                                    info.in_channels, &r->ds) != DDPM_OK)
        rc = cli_fail();
    if (rc == CLI_OK && !resume && r->classes > 0 && r->ds.num_classes != r->classes)
        rc = cli_error(CLI_FAIL, "--classes %lld, but the data has %d classes", r->classes, r->ds.num_classes);
    if (rc != CLI_OK) return ddpm_model_free(m), rc;
    if (!resume && info.num_class_embeds == 0 && r->ds.num_classes > 0)
        printf("note: the data has %d classes but the network is unconditional, so the labels are not used; add "
               "--classes %d for a class-conditional model\n", r->ds.num_classes, r->ds.num_classes);
    ddpm_train_resume_options ro;   /* what a resume may change */
    ddpm_train_resume_options_default(&ro);
    ro.steps = cli_given(given, "steps") ? tc->steps : 0, ro.checkpoint_every = tc->checkpoint_every;
    ro.keep_checkpoints = tc->keep_checkpoints, ro.engine = tc->engine, ro.should_stop = cli_stop_requested;
    if ((resume ? ddpm_trainer_resume(resume, m, &r->ds, &ro, &r->tr) : ddpm_trainer_create(tc, m, &r->ds, &r->tr)) !=
        DDPM_OK)
        return cli_fail();
    r->total = ddpm_trainer_config(r->tr)->steps;
    r->start = r->last_checkpoint = r->last_sample = ddpm_trainer_steps_done(r->tr);
    return CLI_OK;
}

/* A sample grid OUT/samples/step-<step>.png; a failure is a warning (training goes on). */
static void sample_grid(train_run *r, long long step) {
    char name[64];
    snprintf(name, sizeof name, "samples/step-%lld.png", step);
    char *path = join(r->out, name);
    const char *const text[] = {"ddpm", r->settings, NULL};
    ddpm_status st = path ? ddpm_trainer_write_samples(r->tr, path, (int)r->sample_num, (int)r->sample_steps, text)
                          : DDPM_ERR_NOMEM;
    cli_progress_break(&r->line);
    if (st == DDPM_OK) printf("samples: %s\n", path), fflush(stdout);
    else if (!cli_interrupted())
        fprintf(stderr, "ddpm: warning: no samples at step %lld: %s\n", step,
                st == DDPM_ERR_NOMEM ? "out of memory" : ddpm_last_error());
    r->last_sample = step;
    free(path);
}

/* Before each wait of a save that failed for want of room. */
static void save_wait(void *user, const char *why, double wait) {
    train_run *r = user;
    cli_progress_break(&r->line);
    fprintf(stderr, "ddpm: warning: %s; the run is kept in memory: free some space in %s; retrying in %.0f s "
            "(Ctrl-C gives up)\n", why, r->out, wait);
}

/* A checkpoint (final 0) or the run folder (final 1), a failed save retried for --save-retry seconds; a
   failure says which steps are lost. */
static int save_run(train_run *r, int final) {
    char *path = NULL, why[700] = "";
    ddpm_status st = ddpm_trainer_save_retry(r->tr, r->out, final, (double)r->save_retry, save_wait, r, &path);
    const long long done = ddpm_trainer_steps_done(r->tr);
    cli_progress_break(&r->line);
    if (st == DDPM_OK && path) {   /* a checkpoint */
        ddpm_free(r->checkpoint);
        r->checkpoint = path, r->last_checkpoint = done;
        printf("checkpoint: %s\n", path);
    }
    fflush(stdout);
    if (st == DDPM_OK) return CLI_OK;
    if (r->checkpoint && r->last_checkpoint < done)
        snprintf(why, sizeof why, "; steps %lld..%lld are lost, the last checkpoint, %s, is intact (resume from it "
                 "with --resume %s)", r->last_checkpoint + 1, done, r->checkpoint, r->out);
    else if (!r->checkpoint && r->start < done)
        snprintf(why, sizeof why, "; steps %lld..%lld are lost (no checkpoint was written)", r->start + 1, done);
    return cli_error(CLI_FAIL, "%s%s", ddpm_last_error(), why);
}

static int train_loop(train_run *r) {
    const ddpm_train_config *tc = ddpm_trainer_config(r->tr);
    r->batch = tc->batch * tc->grad_accum;
    cli_progress_init(&r->line);
    double t_start = cli_now(), t_prev = t_start;
    long long step = r->start;
    int rc = CLI_OK;
    if (step >= r->total)
        return printf("the run is already at step %lld of --steps %lld; nothing to train\n", step, r->total), CLI_OK;
    printf("training %s: steps %lld..%lld, %d images per step, %lld training images; output in %s\n",
           cli_str(&r->ea, "model"), step + 1, r->total, r->batch, (long long)r->ds.count, r->out);
    fflush(stdout);
    while (step < r->total && !cli_interrupted()) {
        ddpm_train_stats s;
        ddpm_status st = ddpm_trainer_step(r->tr, &s);
        if (st == DDPM_ERR_INTERRUPTED) break;
        if (st != DDPM_OK) cli_progress_break(&r->line);
        if (st == DDPM_ERR_NUMERIC && r->checkpoint)
            return cli_error(CLI_FAIL, "%s; the last checkpoint, %s, is intact", ddpm_last_error(), r->checkpoint);
        if (st == DDPM_ERR_NUMERIC) return cli_error(CLI_FAIL, "%s; no checkpoint was written", ddpm_last_error());
        if (st != DDPM_OK) return cli_fail();
        step = s.step;
        double t = cli_now(), dt = t - t_prev;
        if (ddpm_train_log_write(r->log, &s, dt > 0 ? r->batch / dt : 0, t - t_start) != DDPM_OK) return cli_fail();
        progress_step(r, step, s.loss, ddpm_train_log_smoothed(r->log), s.lr, dt,
                      ddpm_train_log_elapsed_before(r->log) + t - t_start);
        if (r->sample_every > 0 && step % r->sample_every == 0) sample_grid(r, step);
        if (tc->checkpoint_every > 0 && step % tc->checkpoint_every == 0 && step < r->total &&
            (rc = save_run(r, 0)))
            return rc;
        t_prev = cli_now();
    }
    if (cli_interrupted()) {
        cli_progress_break(&r->line);
        if (step == 0) cli_error(CLI_FAIL, "interrupted before the first step; nothing was trained");
        if (step > 0 && step > r->last_checkpoint && (rc = save_run(r, 0))) return rc;
        if (step > 0)
            fprintf(stderr, "interrupted at step %lld; resume with: ddpm train --resume %s --steps %lld\n", step,
                    r->out, r->total);
        return cli_stop_status();
    }
    if ((rc = save_run(r, 1)) != CLI_OK) return rc;
    if (r->sample_every > 0 && r->last_sample < step) sample_grid(r, step);
    char *png = join(r->out, "loss.png"), el[32];
    const char *const text[] = {"ddpm", r->settings, NULL};
    ddpm_train_log_plot_config pc;
    ddpm_train_log_plot_config_default(&pc);
    pc.text = text;
    if (!png || ddpm_train_log_plot(r->log_path, png, &pc) != DDPM_OK)
        rc = png ? cli_fail() : cli_error(CLI_FAIL, "out of memory");
    cli_duration(el, sizeof el, cli_now() - t_start);
    if (rc == CLI_OK)
        printf("trained to step %lld in %s (smoothed loss %.5f); the model (%s weights) is in %s, the loss curve "
               "in %s\n", step, el, ddpm_train_log_smoothed(r->log), tc->use_ema ? "EMA" : "raw", r->out, png);
    free(png);
    return rc;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    train_run r = {.ea = *a};
    ddpm_train_config tc;
    long long threads;
    const char *resume = cli_str(a, "resume"), *out = cli_str(a, "out") ? cli_str(a, "out") : resume;
    if (ddpm_train_run_folder(out ? out : ".", &r.out) != DDPM_OK) return cli_fail();
    const int created = access(r.out, F_OK) != 0;   /* removed again if the run fails before writing anything */
    int rc = CLI_OK;
    /* a resume takes the folder before reading its state (a run may be writing it); a new run once its
       options are known good */
    if (resume && ((!created && ddpm_dir_lock_take(r.out, &r.lock) != DDPM_OK) ||
                   ddpm_train_find_checkpoint(resume, &r.checkpoint) != DDPM_OK))
        rc = cli_fail();
    if (rc == CLI_OK && resume) rc = merge_saved(&r, a);
    if (rc == CLI_OK) rc = parse_config(&r, &tc, &threads);
    if (rc != CLI_OK) goto done;
    ddpm_set_threads((int)threads);
    ddpm_train_folder_kind fk = DDPM_TRAIN_FOLDER_NONE;   /* a new run over a run, a dead one or a broken one */
    if ((!r.lock && ddpm_dir_lock_take(r.out, &r.lock) != DDPM_OK) ||
        (!resume && ddpm_train_folder_state(r.out, &fk) != DDPM_OK))
        rc = cli_fail();
    else if (fk == DDPM_TRAIN_FOLDER_RUN)
        rc = cli_usage_error("%s already holds a training run: continue it with --resume %s, or choose another "
                             "--out", r.out, r.out);
    else if (fk == DDPM_TRAIN_FOLDER_BROKEN)
        rc = cli_usage_error("%s holds a training run that cannot be continued (%s); remove the folder or choose "
                             "another --out", r.out, ddpm_last_error());
    else if (fk == DDPM_TRAIN_FOLDER_DEBRIS)
        printf("%s: an earlier run there saved no training state; starting afresh\n", r.out);
    if (rc != CLI_OK) goto done;
    r.settings = cli_settings(&r.ea);
    r.log_path = join(r.out, "log.csv");
    char *samples = join(r.out, "samples");
    if (!r.settings || !r.log_path || !samples) rc = cli_error(CLI_FAIL, "out of memory");
    if (rc == CLI_OK) rc = start(&r, &tc, a);   /* nothing is written before the model and the data load */
    if (rc == CLI_OK) rc = ddpm_make_dirs(samples) == DDPM_OK ? CLI_OK : cli_fail();
    free(samples);
    if (rc == CLI_OK && ddpm_train_log_open(r.log_path, resume ? r.start : 0, &r.log) != DDPM_OK) rc = cli_fail();
    if (rc == CLI_OK) rc = saved_write(&r.ea, r.out);
    if (rc == CLI_OK) rc = train_loop(&r);
done:
    ddpm_train_log_close(r.log);
    ddpm_dir_lock_release(r.lock);
    if (rc != CLI_OK && r.lock && created) rmdir(r.out);   /* only if still empty */
    ddpm_trainer_free(r.tr);
    ddpm_dataset_free(&r.ds);
    for (int k = 0; k < CLI_MAX_OPTIONS; k++) free(r.saved[k]);
    ddpm_free(r.checkpoint), ddpm_free(r.out), free(r.log_path), free(r.settings);
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
