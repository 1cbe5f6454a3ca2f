/* app_common.h — what `ddpm sample`, `interpolate`, `inpaint`, `img2img`, `denoise` and `eval` share: the shared
   options parsed once, the model and its scheduler (the shipped model by default), the sampler, class labels and
   classifier-free guidance (through the library), the library's chunked sampling with a progress display driven
   by the step callback (which also catches Ctrl-C and records trajectories), captioned strips and PNG output with
   the run's settings. */
#ifndef DDPM_CLI_APP_COMMON_H
#define DDPM_CLI_APP_COMMON_H

#include <ddpm.h>
#include <stdint.h>

#include "options.h"

/* Option rows every application command has (their help text lives here once). */
#define APP_OPT_MODEL                                                                                          \
    {"model", "DIR|PRESET", NULL, "the model: a pipeline, unet or fixture folder, a config.json or a preset "   \
                                  "(default: $DDPM_MODEL, else the shipped models/mnist)"}
#define APP_OPT_SAMPLER(def) {"sampler", "ddpm|ddim|dpmpp2m", def, "the reverse process"}
#define APP_OPT_STEPS                                                                                          \
    {"steps", "N", NULL, "sampler steps, 1..T (default: the sampler's own: ddpm T, ddim 50, dpmpp2m 20)"}
/* The sampler's settings beyond --sampler and --steps (read by app_sampler_config where the table has them). */
#define APP_OPT_ETA {"eta", "E", "0", "ddim: 0 deterministic .. 1 as noisy as ddpm"}
#define APP_OPT_SPACING                                                                                        \
    {"spacing", "NAME", NULL, "timestep spacing: leading, trailing or linspace (default: the model's scheduler; " \
                              "dpmpp2m: linspace)"}
#define APP_OPT_CLIP                                                                                           \
    {"clip", "on|off", NULL, "clamp the x0 prediction to [-1, 1] (default: the model's scheduler; dpmpp2m: off)"}
#define APP_OPT_SEED {"seed", "S", cli_defaults.seed, "seed of every random draw (x_T, sampler noise, forward noise)"}
#define APP_OPT_CLASS                                                                                          \
    {"class", "K|K1,K2,..|none", NULL, "class labels of a class-conditional model (cycled over the images); "     \
                                       "none = the null class (unconditional)"}
#define APP_OPT_GUIDANCE                                                                                       \
    {"guidance", "W", "auto", "classifier-free guidance weight; auto = the model's own (_ddpm_guidance), "       \
                              "else 2 for a model with a null class when labels are used, else 1 (plain "       \
                              "conditional sampling)"}
#define APP_OPT_THREADS CLI_OPT_THREADS
#define APP_OPT_ENGINE CLI_OPT_ENGINE
/* The rows that end the tables of the application commands, and the end of the table. */
#define APP_OPT_TAIL                                                                                           \
    APP_OPT_SEED, APP_OPT_CLASS, APP_OPT_GUIDANCE, APP_OPT_THREADS, APP_OPT_ENGINE, {NULL, NULL, NULL, NULL}

/* The progress line over the step callbacks (cli_progress): "sampling: images 1-16/64  step 3/50  4.2 it/s  ETA
   1.2 s", redrawn on a terminal, else a plain line at every tenth of the work. */
typedef struct {
    cli_progress line;
    const char *what;                /* "sampling", "inpainting", ... */
    long long total, done;           /* step callbacks expected and seen */
    int64_t num, first, n;           /* images of the run; the chunk being sampled */
    double t0;
    int next_tenth;
} app_progress;

#define APP_MAX_LABELS 1024
/* The shared options as parsed (once, by app_parse_common); -1 (0 for steps, NAN for guidance): not given. */
typedef struct {
    int sampler, spacing, clip;      /* ddpm_sampler_kind, ddpm_spacing, 0/1 */
    long long steps;
    double eta, guidance;
    int nclasses;                    /* --class items */
    int64_t classes[APP_MAX_LABELS]; /* -1: none (the null class) */
} app_opts;

/* The captions of a strip (app_strip_add), written with its images x [n, C, S, S] as a PNG (app_strip_write). */
#define APP_STRIP_MAX 66
typedef struct {
    int n;
    char caps[APP_STRIP_MAX][40];
} app_strip;

/* A loaded model with its diffusion, guidance and the run's labels; an application's sampler, request, result
   and strip. */
typedef struct {
    const cli_args *a;
    app_opts opt;
    const char *spec;                /* the model as given (or the default) */
    const char *default_model;       /* the model without --model and DDPM_MODEL; NULL: the shipped MNIST model */
    char shipped[4200];              /* the shipped MNIST model's path, when it is the model */
    ddpm_model *model;
    ddpm_model_info info;
    ddpm_pipeline_scheduler sched;   /* owns the diffusion d */
    const ddpm_diffusion *d;
    int C, S;
    int64_t D, num;                  /* C * S * S; images of the run */
    int64_t *labels;                 /* [num] or NULL (unconditional) */
    double guidance;
    int batch;                       /* images per loop call */
    ddpm_guided *guided;             /* app_prepare's */
    uint64_t seed;
    ddpm_engine engine;
    app_progress progress;
    ddpm_trajectory *traj;           /* recorded by app_on_step; NULL: none */
    ddpm_sampler_config cfg;
    ddpm_app_request req;            /* app_request's */
    ddpm_app_info res;               /* what the library's application decided */
    app_strip strip;
    void *bufs[16];                  /* app_alloc's, freed by app_free */
    int nbufs;
} app_ctx;

/* Each returns CLI_OK, or the exit status after the error line. */
/* The shared options the command has into c (--seed, --engine, --threads: sets the thread count, the sampler's
   options, --class, --guidance). */
int app_parse_common(const cli_args *a, app_ctx *c);
/* Loads --model (or the shipped model) and its scheduler; fills C, S, D, d. */
int app_load_model(app_ctx *c);
/* The sampler of --sampler (else default_kind) with the scheduler's settings, then --steps and where the command
   has them --eta, --spacing and --clip; checks the steps and the timestep list. */
int app_sampler_config(app_ctx *c, ddpm_sampler_kind default_kind, ddpm_sampler_config *cfg);
const char *app_sampler_name(ddpm_sampler_kind k);
/* Labels of `num` images from --class and the weight from --guidance (ddpm_class_labels; sample_mode: a
   conditional model without --class cycles through its classes), checked against the model. */
int app_labels(app_ctx *c, int64_t num, int sample_mode);
/* Prepares the model for chunks of `batch` images and makes c->guided (ddpm_guided_prepare). */
int app_prepare(app_ctx *c, int batch);
/* The step callback (user = the app_ctx): progress, trajectory, Ctrl-C; app_hook installs it into cfg. */
ddpm_status app_on_step(void *user, int step_index, int num_steps, int64_t timestep, const double *x,
                        const double *x0_pred, int64_t N, int64_t D);
void app_hook(app_ctx *c, ddpm_sampler_config *cfg);
/* ddpm_sample_images over x [N, D] in chunks of c->batch with the run's labels, guidance and engine, x_T from the
   seed (APP_XT_SEED; APP_XT_SHARED: image 0's for all) or in x (APP_XT_GIVEN); the progress, started by the
   caller, follows the chunks (130 after Ctrl-C). */
enum { APP_XT_GIVEN = DDPM_XT_GIVEN, APP_XT_SEED = DDPM_XT_SEED, APP_XT_SHARED = DDPM_XT_SHARED };
int app_sample_all(app_ctx *c, const ddpm_sampler_config *cfg, double *x, int64_t N, int xT);
/* The request of the library's applications (ddpm_interpolate, ...): the run's labels, guidance and engine, each
   pass shown by the progress line. app_status: the exit status of such a call (an invalid argument: 2). */
void app_request(app_ctx *c, ddpm_app_request *r);
int app_status(app_ctx *c, ddpm_status st);
void app_progress_start(app_ctx *c, const char *what, long long total_steps, int64_t num);
void app_progress_chunk(app_ctx *c, int64_t first, int64_t n);
void app_progress_end(app_ctx *c);   /* ends a terminal line */
/* After a failed library call: "interrupted" after a stop signal, else the library's message (usage != 0:
   exit 2). */
int app_fail(app_ctx *c, int usage);
void app_free(app_ctx *c);

/* The image file (PNG or JPEG) of --opt as model input out [C, S, S], or where mask != 0 as an inpainting mask
   out [S, S]; with `like` (--like_opt's image) it must have its size. The image in *img unless img is NULL. */
int app_read_image(app_ctx *c, const char *opt, int mask, const char *like_opt, const ddpm_image *like, float *out,
                   ddpm_image *img);
/* A PNG, or the images x [n, C, S, S] as the folder DIR/000000.png .. of --opt (ddpm_write_image_folder), with
   tEXt "ddpm" = the run's settings, "Software", "Model" and (if not NULL) "Description". */
int app_write_png(const app_ctx *c, const char *path, const ddpm_image *img, const char *description);
int app_write_folder(const app_ctx *c, const char *opt, const char *dir, const float *x, int64_t n);
/* Images x [n, C, S, S] as the F32 tensor 'samples', labels [n] (if not NULL) as the I64 tensor 'labels', with
   `settings` as the metadata "ddpm" (atomically). */
int app_save_samples(const app_ctx *c, const char *path, const float *x, int64_t n, const int64_t *labels,
                     const char *settings);
/* Zeroed memory that lives until app_free (NULL, with the error line, when out of memory or out of slots). */
void *app_alloc(app_ctx *c, size_t bytes);
/* Comma-separated numbers of --opt (value s) into vals, at most max: each in [lo, hi] and, where integer != 0,
   whole, or "none" (-1) where none != 0; else CLI_USAGE with "--opt s: 'item' is not <what>". */
int app_number_list(const char *opt, const char *s, double lo, double hi, int integer, int none, const char *what,
                    double *vals, int max, int *n);
void app_strip_add(app_strip *s, const char *fmt, ...) CLI_PRINTF(2, 3);
int app_strip_write(app_ctx *c, const app_strip *s, const float *x, const char *path, const char *description);
/* Heap float copy of a double array (NULL when out of memory). */
float *app_to_float(const double *x, size_t n);

#endif
