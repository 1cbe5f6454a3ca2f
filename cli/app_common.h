/* app_common.h — what `ddpm sample`, `interpolate`, `inpaint`, `img2img` and `denoise` share: the model and its
   scheduler (the shipped model by default), sampler options, class labels and classifier-free guidance, a progress
   display driven by the samplers' step callback (which also catches Ctrl-C), the trajectory recorder, captioned
   strips and PNG output with the run's settings. */
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
#define APP_OPT_THREADS {"threads", "N", "0", "threads (0 = all cores)"}
#define APP_OPT_ENGINE {"engine", "fast|reference", cli_defaults.engine, "the kernels: fast, or the plain reference twins"}

/* Records x and x0_hat of the first `nimg` images at chosen steps of a run (the seed's p_sample_loop_trajectory). */
typedef struct {
    int nimg, nframes;
    int steps[64];          /* step indices of the frames, increasing */
    int64_t t[64];          /* their timesteps */
    float *x, *x0;          /* [nimg, nframes, D] */
    int64_t D;
} app_traj;

/* A progress display over the step callbacks of one command: a \r-updated line on a terminal, otherwise a plain
   line at every tenth of the work. */
typedef struct {
    int tty, width;
    const char *what;       /* "sampling", "inpainting", ... */
    long long total, done;  /* step callbacks expected and seen */
    int64_t num;            /* images of the run */
    int64_t first, n;       /* the chunk being sampled */
    double t0, last_draw;
    int next_tenth;
} app_progress;

/* A loaded model with its diffusion, guidance and the run's labels. */
typedef struct {
    const cli_args *a;
    const char *spec;                /* the model as given (or the default) */
    const char *default_model;       /* the model without --model and DDPM_MODEL; NULL: the shipped MNIST model */
    char shipped[4200];              /* the shipped MNIST model's path, when it is the model */
    ddpm_model *model;
    ddpm_model_info info;
    ddpm_pipeline_scheduler sched;   /* owns the diffusion */
    const ddpm_diffusion *d;         /* sched.diffusion */
    int C, S;
    int64_t D;                       /* C * S * S */
    int64_t *labels;                 /* [num] or NULL (unconditional) */
    int64_t num;
    int num_classes;                 /* K: real classes 0..K-1 (0: unconditional) */
    double guidance;
    int batch;                       /* images per model call group */
    ddpm_guided *guided;
    uint64_t seed;
    ddpm_engine engine;
    app_progress progress;
    app_traj *traj;                  /* NULL: none */
    int64_t chunk_first;             /* global index of row 0 of the running loop */
} app_ctx;

/* Parses --seed, --threads and --engine (sets the thread count). CLI_OK or CLI_USAGE. */
int app_parse_common(const cli_args *a, app_ctx *c);
/* Loads --model (or the shipped model) and its scheduler; fills C, S, D, d. CLI_OK, CLI_FAIL or CLI_USAGE. */
int app_load_model(app_ctx *c);
/* The sampler of --sampler (default_kind when the command has no such option) with the scheduler's settings
   applied, then --steps, and where the command has them --eta, --spacing and --clip. Checks steps against T and
   the timestep list. CLI_OK or CLI_USAGE. */
int app_sampler_config(app_ctx *c, ddpm_sampler_kind default_kind, ddpm_sampler_config *cfg);
const char *app_sampler_name(ddpm_sampler_kind k);
/* Labels of `num` images from --class (see the option's help); sample_mode: a conditional model without --class
   cycles through its classes, otherwise it uses the null class (an error when the model has none). Then the
   guidance weight from --guidance. CLI_OK or CLI_USAGE. */
int app_labels(app_ctx *c, int64_t num, int sample_mode);
/* Prepares the model for chunks of `batch` images (twice that under guidance) and makes the guided model
   function. CLI_OK, CLI_FAIL or CLI_USAGE. */
int app_prepare(app_ctx *c, int batch);
/* Sets the labels of images first .. first + n - 1 for the next loop call and remembers `first`. */
int app_set_chunk(app_ctx *c, int64_t first, int64_t n);
/* The step callback for ddpm_sampler_config.on_step (user = the app_ctx): progress, trajectory, Ctrl-C. */
ddpm_status app_on_step(void *user, int step_index, int num_steps, int64_t timestep, const double *x,
                        const double *x0_pred, int64_t N, int64_t D);
/* Runs the sampler over x [N, D] in chunks of c->batch images (row 0 of x is image 0): x_T from the seed's init
   streams (APP_XT_SEED; APP_XT_SHARED: image 0's for every image) or already in x (APP_XT_GIVEN), the chunk's
   labels, the progress display (started by the caller). CLI_OK, or the exit status after an error line (130 after
   Ctrl-C). */
enum { APP_XT_GIVEN = 0, APP_XT_SEED = 1, APP_XT_SHARED = 2 };
int app_sample_all(app_ctx *c, const ddpm_sampler_config *cfg, double *x, int64_t N, int xT);
/* Installs app_on_step into cfg. */
void app_hook(app_ctx *c, ddpm_sampler_config *cfg);
void app_progress_start(app_ctx *c, const char *what, long long total_steps, int64_t num);
void app_progress_chunk(app_ctx *c, int64_t first, int64_t n);
void app_progress_end(app_ctx *c);   /* ends a terminal line */
/* After a failed library call: "interrupted" (exit 130) after Ctrl-C, else the library's message. usage != 0
   maps an invalid-argument status to exit 2. */
int app_fail(app_ctx *c, int usage);
void app_free(app_ctx *c);

/* A one-line error about data or files: exit status 1. */
int app_error(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* An image file (PNG or JPEG) as model input out [C, S, S]; the image itself in *img when img is not NULL
   (else freed). `opt` names the option in messages. */
int app_read_image(app_ctx *c, const char *opt, const char *path, float *out, ddpm_image *img);
/* Nearest-neighbour scale for strip cells of about 100 pixels. */
int app_strip_scale(int S);
/* Stacks images of one channel count vertically (centred, white around). */
int app_stack_rows(const ddpm_image *rows, int n, ddpm_image *out);
/* Nearest-neighbour enlargement by k. */
int app_enlarge(const ddpm_image *in, int k, ddpm_image *out);
/* Writes a PNG with tEXt "ddpm" = the run's settings, "Software", "Model" (the model used, also when it was the
   default) and (if not NULL) "Description". */
int app_write_png(const app_ctx *c, const char *path, const ddpm_image *img, const char *description);
/* Writes images x [n, C, S, S] as the F32 tensor 'samples', and labels [n] (when not NULL) as the I64 tensor
   'labels', with `settings` as the metadata "ddpm" (atomically). CLI_OK, or CLI_FAIL after the error line. */
int app_save_samples(const app_ctx *c, const char *path, const float *x, int64_t n, const int64_t *labels,
                     const char *settings);
/* A captioned strip of N images [N, C, S, S] written to path. */
int app_write_strip(app_ctx *c, const char *path, const float *x, int N, const char *const *captions,
                    const char *description);
/* Seconds of a monotonic clock. */
double app_now(void);
/* "1.2 s", "3m05s" */
void app_duration(char *buf, size_t size, double s);
/* Whether the command's option table has `name` (shared helpers look only at options that exist). */
int app_has(const cli_args *a, const char *name);
/* Heap float copy of a double array (NULL when out of memory). */
float *app_to_float(const double *x, size_t n);

#endif
