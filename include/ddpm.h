/* ddpm.h — libddpm: denoising diffusion models (DDPM, DDIM, DPM-Solver++) in C11.

   WHAT IT DOES
     libddpm holds the mathematics of Gaussian diffusion (Ho et al. 2020) and the pieces around it:
     noise schedules computed in double, the forward process q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0),
     the reverse samplers (DDPM ancestral, DDIM, DPM-Solver++ 2M) written against a model callback, a
     counter-based random generator whose stream of numbers depends only on (seed, stream, counter), and
     readers and writers for the file formats a diffusion toolkit meets (safetensors, PNG, MNIST IDX,
     CIFAR-10 binary batches).

   USAGE (this example is compiled and run by the test suite as tests/test_header_example.c)

       #include <ddpm.h>
       #include <stdio.h>

       // A stand-in network: eps(x, t) = 0.1 x.  A real one is a U-Net.
       static ddpm_status model(void *user, float *out, const float *x, const int64_t *t,
                                int64_t n, int64_t d) {
           (void)user; (void)t;
           for (int64_t i = 0; i < n * d; i++) out[i] = 0.1f * x[i];
           return DDPM_OK;
       }

       int main(void) {
           ddpm_schedule_config sc;
           ddpm_schedule_config_default(&sc);            // linear, T = 1000, 1e-4 .. 0.02
           sc.name = "cosine";
           ddpm_diffusion *dif = NULL;
           if (ddpm_diffusion_create(&sc, &dif) != DDPM_OK) {
               fprintf(stderr, "ddpm: %s\n", ddpm_last_error());
               return 1;
           }
           ddpm_sampler_config cfg;
           ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);   // 50 steps, eta 0
           cfg.seed = 42;
           double x[4 * 16];                                        // [N=4, D=16]
           ddpm_rng_normal_f64(cfg.seed, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0), 0, x, 4 * 16);
           ddpm_status st = ddpm_sample_loop(dif, &cfg, model, NULL, x, 4, 16, 0);
           if (st != DDPM_OK) fprintf(stderr, "ddpm: %s\n", ddpm_last_error());
           ddpm_diffusion_free(dif);
           return st == DDPM_OK ? 0 : 1;
       }

   CONVENTIONS
     - Errors: every fallible function returns a ddpm_status. On failure it also sets a per-thread message
       that names the problem (and, where it can, the fix); ddpm_last_error() returns it. The library never
       prints and never exits.
     - Ownership: an object made by ddpm_X_create / ddpm_X_open / ddpm_X_read is released by the matching
       ddpm_X_free / ddpm_X_close, and every free accepts NULL. Pointers returned by accessors stay valid
       until the owning object is freed. Inputs are never retained unless the comment says so.
     - Tensors are NCHW, row-major, W fastest. Image pixels (ddpm_image) are HWC interleaved 8-bit.
       Model space is [-1, 1]: pixel p in 0..255 maps to p / 127.5 - 1.
     - Diffusion index k = 0..T-1 is diffusers' timestep: betas[k] is beta_{k+1} of Ho et al.;
       alphas_cumprod[k] = prod_{j<=k} (1 - betas[j]); alpha_bar_{-1} = 1.
     - Sampler state and schedule arithmetic are double; the network's input and output are float.
     - Random numbers: Philox4x32-10 keyed by the 64-bit seed. Normal number j of stream s is fixed by
       (seed, s, j) alone, so results never depend on thread count or on how a batch is split.
     - Thread safety: distinct objects may be used from distinct threads; error messages are per thread.
*/
#ifndef DDPM_H
#define DDPM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DDPM_VERSION_MAJOR 0
#define DDPM_VERSION_MINOR 1
#define DDPM_VERSION_PATCH 0

/* ===================================================================================== status */

typedef enum {
    DDPM_OK = 0,
    DDPM_ERR_INVALID_ARG,  /* a caller's argument or option is out of range or inconsistent */
    DDPM_ERR_NOMEM,        /* an allocation failed */
    DDPM_ERR_IO,           /* a file could not be opened, read, written or renamed */
    DDPM_ERR_FORMAT,       /* a file's contents are malformed, truncated or hostile */
    DDPM_ERR_UNSUPPORTED,  /* valid input that this library does not implement */
    DDPM_ERR_NUMERIC,      /* NaN or infinity where a finite number is required */
    DDPM_ERR_INTERRUPTED,  /* a callback asked to stop (for example on Ctrl-C) */
    DDPM_ERR_INTERNAL      /* a bug: please report it */
} ddpm_status;

const char *ddpm_last_error(void);            /* message of the last failure on this thread ("" if none) */
const char *ddpm_status_name(ddpm_status s);  /* "ok", "invalid argument", ... */
void ddpm_clear_error(void);
const char *ddpm_version(void);               /* "0.1.0" */

/* Allocator hook: every allocation of the library goes through it. NULL restores malloc/realloc/free.
   Set it before creating any object; objects must be freed under the allocator that made them. */
typedef struct {
    void *(*alloc)(void *user, size_t size);
    void *(*realloc)(void *user, void *ptr, size_t size);
    void (*free)(void *user, void *ptr);
    void *user;
} ddpm_allocator;
void ddpm_set_allocator(const ddpm_allocator *a);

/* Threads used by the library's parallel loops (OpenMP), oneDNN and BLAS. n > 0 fixes the count. n <= 0 is the
   default: OMP_NUM_THREADS when the environment sets it, else auto: before a network call (at most every 0.25 s)
   the library measures the cores other processes keep busy and runs on those left free (at least 1), so that a
   shared machine is never slower than one thread. ddpm_get_threads is the count in use now; ddpm_threads_auto
   is 1 in auto mode. */
void ddpm_set_threads(int n);
int ddpm_get_threads(void);
int ddpm_threads_auto(void);
/* The cores this process may run on (at least 1): the most threads worth asking for. */
int ddpm_num_cores(void);
/* The processor's name (the first "model name" of /proc/cpuinfo, else "unknown") in buf; returns buf. */
const char *ddpm_cpu_name(char *buf, size_t size);

/* ===================================================================================== dtypes */

typedef enum {
    DDPM_DTYPE_F64, DDPM_DTYPE_F32, DDPM_DTYPE_F16, DDPM_DTYPE_BF16,
    DDPM_DTYPE_I64, DDPM_DTYPE_I32, DDPM_DTYPE_I16, DDPM_DTYPE_I8, DDPM_DTYPE_U8, DDPM_DTYPE_BOOL
} ddpm_dtype;
size_t ddpm_dtype_size(ddpm_dtype t);          /* bytes per element */
const char *ddpm_dtype_name(ddpm_dtype t);     /* safetensors spelling: "F32", "BF16", ... */
float ddpm_f16_to_f32(uint16_t h);
uint16_t ddpm_f32_to_f16(float f);             /* round to nearest even */
float ddpm_bf16_to_f32(uint16_t h);
uint16_t ddpm_f32_to_bf16(float f);            /* round to nearest even; NaN stays NaN */

/* ===================================================================================== RNG
   Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3").
   Key = seed (low word first). Counter = (element block j: low, high, stream: low, high).
   Uniform j of stream s is the j-th 32-bit word of the sequence; normal j pairs words by Box-Muller. */

void ddpm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Stream ids: purpose (8 bits) | step (24 bits) | item (32 bits). The noise of image `item` at
   sampler step `step` is stream ddpm_rng_stream(DDPM_STREAM_SAMPLER, step, item). */
enum {
    DDPM_STREAM_INIT = 1,      /* x_T of sampling, image = item */
    DDPM_STREAM_SAMPLER = 2,   /* per-step noise of ancestral / eta > 0 samplers */
    DDPM_STREAM_NOISING = 3,   /* forward-process noise (ddpm noise, training) */
    DDPM_STREAM_TRAIN = 4,     /* timesteps, data order, dropout */
    DDPM_STREAM_PARAM_INIT = 5 /* weight initialisation */
};
uint64_t ddpm_rng_stream(uint32_t purpose, uint32_t step, uint32_t item);

/* out[i] = value number (counter + i) of stream `stream`, i < n. Parallel inside; results are
   identical for any thread count. */
void ddpm_rng_uniform_u32(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t *out, size_t n);
void ddpm_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t counter, double *out, size_t n); /* (0,1) */
void ddpm_rng_normal_f64(uint64_t seed, uint64_t stream, uint64_t counter, double *out, size_t n);
void ddpm_rng_normal_f32(uint64_t seed, uint64_t stream, uint64_t counter, float *out, size_t n);

/* ===================================================================================== schedules */

typedef struct {
    const char *name;      /* linear | scaled_linear | cosine (= squaredcos_cap_v2) | sqrt | sigmoid |
                              sigmoid_chen | file:PATH (betas: text, one per line, or safetensors "betas") */
    int T;                 /* number of diffusion steps, >= 1 (default 1000) */
    double beta_start;     /* linear, scaled_linear, sigmoid (default 1e-4) */
    double beta_end;       /* (default 0.02) */
    int scale_to_T;        /* linear: multiply both ends by 1000/T (improved-diffusion), default 0 */
    double cosine_s;       /* cosine offset s (default 0.008) */
    double sqrt_s;         /* sqrt offset s (default 1e-4) */
    double max_beta;       /* clip for alpha_bar schedules (default 0.999) */
    double sigmoid_start, sigmoid_end, sigmoid_tau; /* sigmoid_chen: -3, 3, 1 */
} ddpm_schedule_config;
void ddpm_schedule_config_default(ddpm_schedule_config *c);

/* Names accepted by ddpm_schedule_config.name (without file:), NULL-terminated. */
extern const char *const ddpm_schedule_names[];

/* betas [cfg->T] in double. */
ddpm_status ddpm_schedule_betas(const ddpm_schedule_config *cfg, double *betas);

/* The Gaussian diffusion of the original code (GaussianDiffusion): every table in double, [T] each.
   alphas_cumprod_prev[0] = 1. posterior_log_variance_clipped[0] = log(posterior_variance[1]). */
typedef struct {
    int T;
    double *betas, *alphas, *alphas_cumprod, *alphas_cumprod_prev;
    double *sqrt_alphas_cumprod, *sqrt_one_minus_alphas_cumprod, *log_one_minus_alphas_cumprod;
    double *sqrt_recip_alphas_cumprod, *sqrt_recipm1_alphas_cumprod;
    double *posterior_variance, *posterior_log_variance_clipped;
    double *posterior_mean_coef1, *posterior_mean_coef2;
} ddpm_diffusion;

ddpm_status ddpm_diffusion_create(const ddpm_schedule_config *cfg, ddpm_diffusion **out);
ddpm_status ddpm_diffusion_from_betas(const double *betas, int T, ddpm_diffusion **out); /* 0 < beta < 1 */
void ddpm_diffusion_free(ddpm_diffusion *d);
/* Every table of the diffusions d[0..n-1] as CSV text (free with ddpm_free): the header line
   [schedule,]t,beta,alpha,alphas_cumprod,alphas_cumprod_prev,sqrt_alphas_cumprod,sqrt_one_minus_alphas_cumprod,
   log_one_minus_alphas_cumprod,sqrt_recip_alphas_cumprod,sqrt_recipm1_alphas_cumprod,posterior_variance,
   posterior_log_variance_clipped,posterior_mean_coef1,posterior_mean_coef2, then one line per timestep of each
   diffusion in turn, the numbers as %.17g. The first column (names[i]) is there only when n > 1. */
ddpm_status ddpm_diffusion_csv(const ddpm_diffusion *const *d, const char *const *names, int n, char **text);

/* Forward process and posterior. Arrays are [N, D] (D = C*H*W), timesteps t are [N], 0 <= t < T.
   Outputs may alias inputs of the same shape. */
typedef enum { DDPM_PRED_EPS, DDPM_PRED_X0, DDPM_PRED_V } ddpm_prediction;

void ddpm_q_sample(const ddpm_diffusion *d, float *xt, const float *x0, const float *eps,
                   const int64_t *t, int64_t N, int64_t D);                /* sqrt(ab) x0 + sqrt(1-ab) eps */
void ddpm_q_sample_f64(const ddpm_diffusion *d, double *xt, const double *x0, const double *eps,
                       const int64_t *t, int64_t N, int64_t D);
void ddpm_q_mean_variance(const ddpm_diffusion *d, double *mean /*[N,D]*/, double *var /*[N]*/,
                          double *log_var /*[N]*/, const double *x0, const int64_t *t, int64_t N, int64_t D);
void ddpm_q_posterior(const ddpm_diffusion *d, double *mean /*[N,D]*/, double *var /*[N]*/,
                      double *log_var_clipped /*[N]*/, const double *x0, const double *xt,
                      const int64_t *t, int64_t N, int64_t D);
void ddpm_predict_x0_from_eps(const ddpm_diffusion *d, double *x0, const double *xt, const double *eps,
                              const int64_t *t, int64_t N, int64_t D);
void ddpm_predict_x0_from_v(const ddpm_diffusion *d, double *x0, const double *xt, const double *v,
                            const int64_t *t, int64_t N, int64_t D);
void ddpm_predict_eps_from_x0(const ddpm_diffusion *d, double *eps, const double *xt, const double *x0,
                              const int64_t *t, int64_t N, int64_t D);
/* v = sqrt(ab) eps - sqrt(1-ab) x0 (Salimans & Ho 2022), the v-prediction target. */
void ddpm_velocity(const ddpm_diffusion *d, float *v, const float *x0, const float *eps,
                   const int64_t *t, int64_t N, int64_t D);
void ddpm_velocity_f64(const ddpm_diffusion *d, double *v, const double *x0, const double *eps,
                       const int64_t *t, int64_t N, int64_t D);
/* The training target for an objective: eps, x0, or v. */
void ddpm_training_target(const ddpm_diffusion *d, ddpm_prediction objective, float *target,
                          const float *x0, const float *eps, const int64_t *t, int64_t N, int64_t D);

/* KL(N(m1, exp(lv1)) || N(m2, exp(lv2))) elementwise, in nats. */
double ddpm_normal_kl(double mean1, double logvar1, double mean2, double logvar2);
/* log-likelihood of x in [-1,1] discretised to 256 bins under N(mean, exp(2 log_scale)), in nats
   (Ho et al. 2020, sec. 3.3; improved-diffusion's discretized_gaussian_log_likelihood). */
double ddpm_discretized_gaussian_loglik(double x, double mean, double log_scale);

/* ===================================================================================== samplers
   Samplers know nothing of networks: they call `model` for the network output at (x_t, t). */

typedef ddpm_status (*ddpm_model_fn)(void *user, float *out /*[N,D]*/, const float *x /*[N,D]*/,
                                     const int64_t *t /*[N]*/, int64_t N, int64_t D);
/* Noise for loop step `step_index` (the i-th model call), [N, D]. Used to replay stored noise. */
typedef ddpm_status (*ddpm_noise_fn)(void *user, double *out, int step_index, int64_t timestep,
                                     int64_t N, int64_t D);
/* Called after every step with the new sample and the step's x0 prediction; non-OK stops the loop
   (return DDPM_ERR_INTERRUPTED on Ctrl-C). */
typedef ddpm_status (*ddpm_step_fn)(void *user, int step_index, int num_steps, int64_t timestep,
                                    const double *x /*[N,D]*/, const double *x0_pred /*[N,D]*/,
                                    int64_t N, int64_t D);

typedef enum { DDPM_SAMPLER_DDPM, DDPM_SAMPLER_DDIM, DDPM_SAMPLER_DPMPP2M } ddpm_sampler_kind;
typedef enum { DDPM_VAR_FIXED_SMALL, DDPM_VAR_FIXED_LARGE } ddpm_variance;
typedef enum { DDPM_SPACING_LEADING, DDPM_SPACING_TRAILING, DDPM_SPACING_LINSPACE } ddpm_spacing;

typedef struct {
    ddpm_sampler_kind kind;
    int steps;                 /* inference steps; DDPM default T (1000), DDIM 50, DPM++ 20 */
    ddpm_prediction prediction;/* what the model outputs (default eps) */
    ddpm_variance variance;    /* DDPM: fixed_small (default) or fixed_large */
    int clip_sample;           /* clamp x0_hat to [-clip_range, clip_range] (DDPM, DDIM; default 1) */
    double clip_range;         /* default 1.0 */
    double eta;                /* DDIM: 0 deterministic .. 1 DDPM-like (default 0) */
    ddpm_spacing spacing;      /* DDPM/DDIM default leading; DPM++ default linspace */
    int steps_offset;          /* added to leading timesteps (default 0) */
    int step_along_list;       /* DDIM, DDPM: previous timestep = next list entry instead of t - T/n */
    int set_alpha_to_one;      /* DDIM: alpha_bar after the last step is 1 (default 1) */
    int solver_order;          /* DPM++: 1 or 2 (default 2) */
    int lower_order_final;     /* DPM++: first-order last step (default 1) */
    uint64_t seed;             /* RNG seed for per-step noise */
    ddpm_noise_fn noise;       /* NULL: noise from the RNG, stream (DDPM_STREAM_SAMPLER, step, item) */
    void *noise_user;
    ddpm_step_fn on_step;      /* NULL: none */
    void *step_user;
    int first_step;            /* start at this index of the timestep list: x holds x_t at timesteps[first_step]
                                  (img2img, interpolation, restoration; ddpm_sampler_first_step). Default 0.
                                  DPM++ treats its first step as the first of a run (first order). */
    int repeat_noise_steps;    /* the seed's p_sample_loop_trajectory: the noise of the first R steps is image
                                  0's stream for every image (shared across the batch); -1 none (default) */
} ddpm_sampler_config;
void ddpm_sampler_config_default(ddpm_sampler_config *c, ddpm_sampler_kind kind);

/* The timesteps the sampler visits, in order, for T training steps: out[cfg->steps]. */
ddpm_status ddpm_sampler_timesteps(const ddpm_sampler_config *cfg, int T, int64_t *out);
/* The first index i of the timestep list with timesteps[i] <= t (0 <= t < T): a run that starts from an x_t
   made at timestep *t_at (<= t) sets cfg->first_step = *first. */
ddpm_status ddpm_sampler_first_step(const ddpm_sampler_config *cfg, int T, int64_t t, int *first, int64_t *t_at);

/* img2img (SDEdit) as diffusers' img2img pipelines: of cfg->steps steps the last min(int(steps * strength), steps)
   are run; *first is the first of them and *t_at its timestep (the image is noised to it). DDPM_ERR_INVALID_ARG
   when strength is outside (0, 1] or runs no step ("with N steps that runs no step; use a strength >= 1/N"). */
ddpm_status ddpm_sampler_strength(const ddpm_sampler_config *cfg, int T, double strength, int *first,
                                  int64_t *t_at);

/* Run the reverse process. x [N, D]: x_T in, x_0 out. first_item is the global index of row 0, so
   that a batch split into pieces draws the same noise as the whole batch. */
ddpm_status ddpm_sample_loop(const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                             ddpm_model_fn model, void *model_user,
                             double *x, int64_t N, int64_t D, int64_t first_item);

/* One DDPM / DDIM update on n numbers, as diffusers' step(). prev_t < 0 means "after the last step".
   noise may be NULL (no noise, giving the posterior mean). x0_pred receives x0_hat after clipping. */
typedef struct {
    double alpha_prod_t, alpha_prod_t_prev, variance, std_dev_t;
} ddpm_step_info;
ddpm_status ddpm_ddpm_step(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, int64_t t,
                           int64_t prev_t, const double *model_out, const double *x, const double *noise,
                           double *x_prev, double *x0_pred, int64_t n, ddpm_step_info *info);
ddpm_status ddpm_ddim_step(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, int64_t t,
                           int64_t prev_t, const double *model_out, const double *x, const double *noise,
                           double *x_prev, double *x0_pred, int64_t n, ddpm_step_info *info);

/* ===================================================================================== models
   The networks: diffusers' UNet2DModel (DownBlock2D, AttnDownBlock2D, UpBlock2D, AttnUpBlock2D,
   UNetMidBlock2D, class embedding) and the seed's BasicUNet. Parameters live in one float buffer in
   diffusers' state_dict order under diffusers' names, with PyTorch layouts ([OC, C, KH, KW], [OUT, IN]).
   Lifecycle: load or create -> prepare (plans every buffer for a maximum batch; nothing is allocated
   afterwards) -> forward [-> zero_grad, backward] ... -> free. Inputs and outputs are NCHW. */

typedef struct ddpm_model ddpm_model;

/* spec: a preset ("mnist", "cifar10", "tiny", "basic"), a diffusers config.json, or a folder: a pipeline
   folder (unet/ inside), a unet folder (config.json + diffusion_pytorch_model.safetensors, or a variant that
   diffusers' save_pretrained(variant=...) writes: .fp16, .bf16, .fp32, tried in that order) or a fixture folder
   (config.json + weights.safetensors). A folder without weights is refused (DDPM_ERR_IO). Presets and config
   files get weights initialised from `seed` with PyTorch's default scheme for each layer type. */
ddpm_status ddpm_model_load(const char *spec, uint64_t seed, ddpm_model **out);
/* From the text of a diffusers UNet2DModel config.json; `what` names it in messages. Weights are
   initialised from `seed`. A field at its default value is accepted; a value the engine does not
   implement is refused with a message naming the field and the value. */
ddpm_status ddpm_model_from_config_json(const char *json, size_t len, const char *what, uint64_t seed,
                                        ddpm_model **out);
void ddpm_model_free(ddpm_model *m);

typedef struct {
    const char *kind;          /* "unet2d" or "basic" */
    int sample_size, in_channels, out_channels;
    int num_class_embeds;      /* 0 = unconditional */
    int null_class;            /* the "no label" class of classifier-free guidance (trained with label dropout:
                                  num_class_embeds - 1), -1 when the model has none */
    double guidance;           /* the guidance weight these weights sample with by default (private key
                                  "_ddpm_guidance" of unet/config.json, chosen by measurement); 0 none */
    int time_conditioned;      /* 0 for basic */
    int num_tensors;           /* parameter tensors */
    int64_t num_params;        /* parameter count */
    int weights_loaded;        /* 1 if read from a file, 0 if initialised from the seed */
} ddpm_model_info;
void ddpm_model_get_info(const ddpm_model *m, ddpm_model_info *info);

typedef struct {
    const char *name;          /* diffusers state_dict key */
    int ndim;
    int64_t shape[4];
    int64_t offset, numel;     /* into the flat parameter / gradient buffers */
} ddpm_param_info;
ddpm_status ddpm_model_param(const ddpm_model *m, int i, ddpm_param_info *out);  /* i < num_tensors */
float *ddpm_model_params(ddpm_model *m);     /* [num_params]; call ddpm_model_params_changed after writing */
float *ddpm_model_grads(ddpm_model *m);      /* [num_params]; NULL before a training prepare */
ddpm_status ddpm_model_params_changed(ddpm_model *m);

/* Weights from a diffusers safetensors file (F32, F16, BF16): every parameter must be present with its
   shape; missing, unexpected or mis-shaped tensors are named in the message. */
ddpm_status ddpm_model_load_weights(ddpm_model *m, const char *path);
/* Marks class `k` (0 <= k < num_class_embeds) as the "no label" class of label dropout, or none (k = -1). It is
   saved in unet/config.json as the private key "_ddpm_null_class" (diffusers ignores keys starting with '_')
   and read back by ddpm_model_load. */
ddpm_status ddpm_model_set_null_class(ddpm_model *m, int k);
/* A class-conditional copy of an unconditional UNet2DModel with fresh weights (from seed): the same network plus
   a class embedding of num_classes + 1 entries, the last being the null class of label dropout (for
   classifier-free guidance). Refused for a model that has weights from a file or a class embedding already. */
ddpm_status ddpm_model_with_classes(const ddpm_model *m, int num_classes, uint64_t seed, ddpm_model **out);
/* The guidance weight sampling uses by default with these weights (w in (0, 100], measured, e.g. by ddpm eval),
   or none (w = 0). Saved as the private key "_ddpm_guidance" of unet/config.json; needs a null class. Training
   clears it: new weights have no measured weight. */
ddpm_status ddpm_model_set_guidance(ddpm_model *m, double w);
/* The model's diffusers config.json text (free with ddpm_free). */
ddpm_status ddpm_model_config_json(const ddpm_model *m, char **json);
/* A diffusers pipeline folder: model_index.json (DDPMPipeline), unet/config.json,
   unet/diffusion_pytorch_model.safetensors (F32), scheduler/scheduler_config.json from `schedule`
   (NULL: linear, T = 1000). Every file is written atomically. */
ddpm_status ddpm_model_save(const ddpm_model *m, const char *dir, const ddpm_schedule_config *schedule,
                            ddpm_prediction prediction);

/* The kernels a model runs on. FAST: fp32 (oneDNN convolutions, BLAS, fused OpenMP passes). REFERENCE: the plain
   twins of every op, for checking. BF16: FAST with the convolutions and attention's projections in bf16 on AMX
   tiles (fp32 accumulation); activations between them, GroupNorm statistics, softmax, the loss, the master
   weights, their gradients, AdamW and EMA stay fp32. It needs ddpm_bf16_supported(); preparing it elsewhere is
   DDPM_ERR_UNSUPPORTED. */
typedef enum { DDPM_ENGINE_FAST = 0, DDPM_ENGINE_REFERENCE = 1, DDPM_ENGINE_BF16 = 2 } ddpm_engine;
/* 1 when this CPU runs bf16 on AMX (oneDNN's effective ISA includes AMX), and the environment does not set
   DDPM_NO_AMX to anything but 0. */
int ddpm_bf16_supported(void);
typedef struct {
    int max_batch;             /* >= 1 */
    int training;              /* 1: keep activations, allocate gradients, dropout active */
    ddpm_engine engine;        /* fast kernels, bf16 on AMX, or the plain reference twins (for tests) */
    size_t memory_limit;       /* bytes; 0 = 3/4 of physical memory. A larger plan is refused. */
} ddpm_plan_config;
void ddpm_plan_config_default(ddpm_plan_config *pc);
ddpm_status ddpm_model_prepare(ddpm_model *m, const ddpm_plan_config *pc);
size_t ddpm_model_plan_bytes(const ddpm_model *m);    /* activations + gradients + workspaces */

/* out [N, out_channels, S, S] = model(x [N, in_channels, S, S], timesteps [N], class_labels [N] or
   NULL), N <= max_batch. In a training plan the activations are kept for backward and dropout uses
   the seed set by ddpm_model_set_dropout_seed. */
ddpm_status ddpm_model_forward(ddpm_model *m, float *out, const float *x, const float *timesteps,
                               const int64_t *class_labels, int N);
void ddpm_model_set_dropout_seed(ddpm_model *m, uint64_t seed, uint64_t step);
/* Train mode (1, the default): dropout is active in a training plan. Eval mode (0): dropout is the
   identity, as nn.Module.eval() makes it, while a training plan still gives gradients. */
void ddpm_model_set_train_mode(ddpm_model *m, int train);
void ddpm_model_zero_grad(ddpm_model *m);
/* Gradients of the last training forward: accumulates d/dparams into ddpm_model_grads and writes
   dx [N, in_channels, S, S] when dx is not NULL. */
ddpm_status ddpm_model_backward(ddpm_model *m, const float *dout, float *dx);

/* PROFILE: where a network call's time goes. ddpm_model_profile_start zeroes the counters and from then on times
   every node of every forward and backward (one clock read on each side of a kernel call), the layout changes at
   the network's edges, the convolutions' weight reorders after ddpm_model_params_changed, and, for a trainer's
   model, the step's batch (noise, q_sample), loss, AdamW (with the gradient norm and clipping) and EMA.
   ddpm_model_profile_rows fills up to cap rows, in op order then forward before backward, and returns how many
   there are. flops and bytes are nominal: 2 x the multiply-adds of the matrix products, and the bytes a call
   must read and write at least once. ddpm_model_profile_stop ends it and frees the counters. */
typedef struct {
    const char *op;            /* "conv", "linear", "groupnorm", "silu", "add", "add-bias", "attention", "upsample",
                                  "maxpool", "concat", "timestep", "embedding", "dropout" (network ops); "layout",
                                  "weight-reorder", "batch", "loss", "adamw", "ema" (the rest of a step) */
    int backward;              /* 0 forward, 1 backward */
    int network_op;            /* 1 for an op of the network graph */
    int64_t calls;
    double seconds, flops, bytes;   /* summed over the calls */
} ddpm_profile_row;
ddpm_status ddpm_model_profile_start(ddpm_model *m);
void ddpm_model_profile_stop(ddpm_model *m);
int ddpm_model_profile_rows(const ddpm_model *m, ddpm_profile_row *rows, int cap);
/* The machine's fp32 ceilings on `threads` threads (<= 0: the current count), measured now in about 0.3 s:
   GFLOP/s of a register-resident multiply-add loop on the widest SIMD the CPU has (AVX-512, AVX2 + FMA, or
   scalar), and GB/s of a triad a[i] = b[i] + s c[i] over 3 x 16 MiB (the working set of a network's
   activations). Either pointer may be NULL. */
ddpm_status ddpm_measure_ceilings(int threads, double *gflops, double *gbytes);

/* A ddpm_model_fn for the samplers: user = the prepared ddpm_model (unconditional). */
ddpm_status ddpm_model_sampler_fn(void *user, float *out, const float *x, const int64_t *t, int64_t N,
                                  int64_t D);

/* Mean squared error over n elements (sum in double, fixed order); writes d loss / d pred into dpred
   when it is not NULL. */
double ddpm_mse_loss(const float *pred, const float *target, size_t n, float *dpred);

/* A batch for one pass of a network, read from a safetensors file (ddpm_forward_batch_read), run
   (ddpm_forward_batch_run) and written back (ddpm_forward_batch_save). */
typedef struct {
    int64_t n;                /* images */
    float *x;                 /* [n, in_channels, S, S] */
    float *t;                 /* [n] timesteps (zeros when the file has none and the network ignores time) */
    int64_t *labels;          /* [n] class labels; NULL for an unconditional network */
    float *target;            /* [n, out_channels, S, S] when read with_target, else NULL */
    float *sample;            /* [n, out_channels, S, S]: the network's output after the run */
    float *dout, *x_grad;     /* with a target: d loss / d sample and d loss / d x after the run */
    double loss;              /* with a target: the MSE over all n * out_channels * S * S values */
} ddpm_forward_batch;
/* Reads x [N, C, S, S] (any float dtype, finite values), timesteps [N] or [1] (integer or float, broadcast;
   required by a time-conditioned network; in 0..num_timesteps - 1 unless num_timesteps is 0), class_labels
   [N] or [1] (integers in 0..num_class_embeds - 1; required by a class-conditional network, refused by an
   unconditional one) and, with_target, target [N, out_channels, S, S] for network m. Messages start with path
   and name the tensor and the element. Free with ddpm_forward_batch_free (also after a failure). */
ddpm_status ddpm_forward_batch_read(const char *path, const ddpm_model *m, int num_timesteps, int with_target,
                                    ddpm_forward_batch *b);
/* Prepares m for b->n images (a training plan when b has a target) and runs it in eval mode (dropout off)
   into b->sample; with a target also b->loss, b->dout and, by backward, b->x_grad and ddpm_model_grads. */
ddpm_status ddpm_forward_batch_run(ddpm_model *m, ddpm_forward_batch *b, ddpm_engine engine);
/* sample F32 [n, out_channels, S, S]; after a run with a target also loss [1], x_grad [n, in_channels, S, S]
   and every parameter's gradient under its name. metadata: NULL or {key, value, ..., NULL}. Written as
   ddpm_st_writer_save does (an existing path is untouched on failure). */
ddpm_status ddpm_forward_batch_save(const char *path, ddpm_model *m, const ddpm_forward_batch *b,
                                    const char *const *metadata);
void ddpm_forward_batch_free(ddpm_forward_batch *b);

/* ===================================================================================== optimiser
   AdamW (Loshchilov & Hutter 2019) over the flat parameter buffer, as torch.optim.AdamW computes it. */
typedef struct {
    double lr;            /* default 1e-4 */
    double beta1, beta2;  /* default 0.9, 0.999 */
    double eps;           /* default 1e-8 */
    double weight_decay;  /* default 0.01 (decoupled: p -= lr * wd * p) */
} ddpm_adamw_config;
void ddpm_adamw_config_default(ddpm_adamw_config *c);
typedef struct ddpm_adamw ddpm_adamw;
ddpm_status ddpm_adamw_create(const ddpm_adamw_config *c, int64_t n, ddpm_adamw **out);
void ddpm_adamw_free(ddpm_adamw *o);
/* One step: params[n] updated from grads[n]; lr overrides the configured rate when > 0. */
void ddpm_adamw_step(ddpm_adamw *o, float *params, const float *grads, double lr);
int64_t ddpm_adamw_steps(const ddpm_adamw *o);
/* Restores the step count (bias corrections) when resuming from a checkpoint, with the moments below. */
ddpm_status ddpm_adamw_set_steps(ddpm_adamw *o, int64_t steps);
/* Moments m, v [n] (for checkpoints). */
float *ddpm_adamw_m(ddpm_adamw *o);
float *ddpm_adamw_v(ddpm_adamw *o);

/* ===================================================================================== training
   Denoising training (Ho et al. 2020, Alg. 1): t ~ U{0..T-1}, eps ~ N(0, I), x_t = q_sample(x0, t, eps),
   loss = w(t) * mean((target - model(x_t, t))^2), target eps, x0 or v, w = 1 or min-SNR-gamma
   (Hang et al. 2023). AdamW with warm-up then constant or cosine rate, gradient clipping by global norm,
   gradient accumulation, an EMA of the weights (diffusers' EMAModel), class conditioning with label
   dropout for classifier-free guidance. Every random draw is addressed by (seed, step, image index in the
   global batch), so a run resumed from a checkpoint continues bit for bit (docs/training.md).

   A checkpoint is a diffusers pipeline folder (ddpm_model_save) whose unet holds the EMA weights, plus
   training_state.safetensors (raw weights, AdamW moments) and training_state.json (step, data cursor,
   RNG seed, the full configuration). A run folder OUT holds the final pipeline + state and
   OUT/checkpoints/checkpoint-<step>/ (the newest keep_checkpoints kept).

       ddpm_train_config tc;  ddpm_train_config_default(&tc);  tc.steps = 1000;  tc.batch = 64;
       ddpm_trainer *tr;  ddpm_trainer_create(&tc, model, &data, &tr);     // model: owned by tr now
       ddpm_trainer_run(tr, "out", on_step, user);                          // or a loop of ddpm_trainer_step
       ddpm_trainer_free(tr);

   Class-conditional models: the dataset's K classes are 0..K-1 and "no label" (for guidance) is class K,
   so the model has num_class_embeds = K + 1 (K is allowed when label_dropout = 0). */

typedef enum { DDPM_LR_CONSTANT = 0, DDPM_LR_COSINE = 1 } ddpm_lr_schedule;

/* Asked before every step (ddpm_trainer_step, ddpm_trainer_run); non-zero stops the run there with
   DDPM_ERR_INTERRUPTED, the step in progress having completed (ddpm_trainer_run writes a checkpoint
   first). For Ctrl-C: return the flag the signal handler sets. */
typedef int (*ddpm_train_stop_fn)(void *user);

typedef struct {
    ddpm_prediction objective;     /* target: eps (default), x0 or v */
    double min_snr_gamma;          /* 0 (default): plain MSE; > 0: min-SNR-gamma weights (e.g. 5) */
    ddpm_schedule_config schedule; /* noise schedule (default linear, T = 1000); the name is copied */
    int64_t steps;                 /* total optimiser steps of the run, steps before a resume included
                                      (diffusers' max_train_steps); default 10000 */
    int batch;                     /* images per forward / backward (default 64) */
    int grad_accum;                /* micro-batches per optimiser step (default 1); global batch = batch x grad_accum */
    double lr;                     /* peak learning rate (default 5e-4, the MNIST recipe; 2e-4 suits larger nets) */
    int64_t warmup_steps;          /* rate = lr * step / warmup_steps during warm-up (default 100) */
    ddpm_lr_schedule lr_schedule;  /* after warm-up: constant (default) or half-cosine decay to 0 */
    int64_t lr_total_steps;        /* cosine length; 0 = steps. Fixed when the run starts, kept on resume */
    double adam_beta1, adam_beta2; /* 0.9, 0.999 */
    double adam_eps;               /* 1e-8 */
    double weight_decay;           /* decoupled (AdamW), default 0.01 */
    double grad_clip;              /* max global L2 norm of the gradient (default 1.0); 0 = no clipping */
    int use_ema;                   /* keep an EMA of the weights (default 1); saved models hold it */
    double ema_max_decay;          /* 0.9999 */
    double ema_min_decay;          /* 0 */
    int ema_warmup;                /* 1 (default): decay = 1 - (1 + k / inv_gamma)^-power; 0: (1 + k) / (10 + k) */
    double ema_inv_gamma;          /* 1 */
    double ema_power;              /* 2/3 */
    double label_dropout;          /* class-conditional models: P(label -> "no label" K), default 0.1 */
    int hflip;                     /* random horizontal flip with probability 1/2 (default 0) */
    uint64_t seed;                 /* every random draw of the run (default 0) */
    int64_t checkpoint_every;      /* ddpm_trainer_run: a checkpoint every N steps (default 500; 0 = none) */
    int keep_checkpoints;          /* newest checkpoints kept (default 2; 0 = all) */
    ddpm_engine engine;            /* network kernels (default fast) */
    size_t memory_limit;           /* plan limit in bytes (0 = the ddpm_plan_config default) */
    ddpm_train_stop_fn should_stop;/* NULL: never; not saved */
    void *stop_user;
} ddpm_train_config;
void ddpm_train_config_default(ddpm_train_config *c);

/* What one optimiser step did. */
typedef struct {
    int64_t step;                  /* steps done, this one included */
    double loss;                   /* (weighted) MSE, mean over the global batch */
    double grad_norm;              /* global L2 norm of the gradient before clipping */
    double lr;                     /* learning rate this step used */
    double ema_decay;              /* decay of this step's EMA update (0 without EMA) */
    int64_t epoch;                 /* data epoch of the next image */
    int64_t images_seen;           /* images drawn since the run started (all steps) */
} ddpm_train_stats;

typedef struct ddpm_trainer ddpm_trainer;
struct ddpm_dataset;   /* ddpm_dataset, declared in the datasets section below */

/* A new run at step 0. `model` (weights as loaded or initialised) passes to the trainer, also on failure;
   it is prepared here for training at `batch`. `data` is borrowed and must outlive the trainer; its images
   must match the model (channels, size) and, for a class-conditional model, carry labels. */
ddpm_status ddpm_trainer_create(const ddpm_train_config *c, ddpm_model *model, const struct ddpm_dataset *data,
                                ddpm_trainer **out);

/* What a resume may change; everything else is the saved run's configuration. */
typedef struct {
    int64_t steps;                 /* new total (>= the saved step); 0 keeps the saved total */
    int64_t checkpoint_every;      /* < 0 keeps the saved value */
    int keep_checkpoints;          /* < 0 keeps the saved value */
    ddpm_engine engine;
    size_t memory_limit;
    ddpm_train_stop_fn should_stop;
    void *stop_user;
} ddpm_train_resume_options;
void ddpm_train_resume_options_default(ddpm_train_resume_options *o);  /* keeps everything, fast engine */

/* Continue a run. dir: a folder written by ddpm_trainer_save / ddpm_trainer_checkpoint, or a run folder
   (the complete checkpoint with the highest step among dir and dir/checkpoints/ is used).
   model: NULL builds the network from dir/unet/config.json; otherwise (owned by the trainer, also on
   failure) it must have the same configuration, and a difference is refused naming the field. The data
   must have the saved count, shape and classes. opts NULL: defaults. */
ddpm_status ddpm_trainer_resume(const char *dir, ddpm_model *model, const struct ddpm_dataset *data,
                                const ddpm_train_resume_options *opts, ddpm_trainer **out);
/* The folder ddpm_trainer_resume(dir, ...) would read (free with ddpm_free); DDPM_ERR_IO if there is no
   state, DDPM_ERR_FORMAT (with the reason) if no state there can be read. */
ddpm_status ddpm_train_find_checkpoint(const char *dir, char **path);
void ddpm_trainer_free(ddpm_trainer *t);

/* One optimiser step (grad_accum forward / backward passes). Allocates nothing. On a NaN or infinite loss
   or gradient it returns DDPM_ERR_NUMERIC naming the step and leaves weights, optimiser, EMA and data
   cursor as they were. DDPM_ERR_INVALID_ARG once `steps` are done; DDPM_ERR_INTERRUPTED (nothing done)
   when should_stop says so. */
ddpm_status ddpm_trainer_step(ddpm_trainer *t, ddpm_train_stats *stats);

/* The pipeline folder + training state into dir. A new dir is written under a temporary name and renamed
   into place; in an existing dir every file is replaced atomically, training_state.json last. */
ddpm_status ddpm_trainer_save(ddpm_trainer *t, const char *dir);
/* run_dir/checkpoints/checkpoint-<step> (temporary folder, fsync, rename), then all but the newest
   keep_checkpoints removed. *path (may be NULL) gets the folder (free with ddpm_free). */
ddpm_status ddpm_trainer_checkpoint(ddpm_trainer *t, const char *run_dir, char **path);

/* Told before each wait of ddpm_trainer_save_retry: why the save failed and the seconds it now waits. */
typedef void (*ddpm_train_save_wait_fn)(void *user, const char *why, double wait_s);
/* ddpm_trainer_checkpoint (final 0; *path as there) or ddpm_trainer_save(run_dir) (final 1), retried while it
   fails with DDPM_ERR_IO (a full disk, a quota) after waits of 1, 2, 4 ... 60 s for up to retry_s seconds: the
   trained state stays in memory, so room made meanwhile keeps every step. The run's should_stop asked during
   the waits gives up (one asked before the call does not). Returns the last save's status. */
ddpm_status ddpm_trainer_save_retry(ddpm_trainer *t, const char *run_dir, int final, double retry_s,
                                    ddpm_train_save_wait_fn on_wait, void *user, char **path);

/* Called after every step of ddpm_trainer_run; non-OK stops the run (a checkpoint is written when the
   status is DDPM_ERR_INTERRUPTED) and is returned. */
typedef ddpm_status (*ddpm_train_step_fn)(void *user, ddpm_trainer *t, const ddpm_train_stats *stats);
/* Steps until `steps`, a checkpoint every checkpoint_every steps and on interruption, then the final
   ddpm_trainer_save(run_dir) and (checkpoint_every > 0) a checkpoint of the last step. run_dir NULL:
   nothing is written. On NaN nothing is written, so the last checkpoint stays the newest. */
ddpm_status ddpm_trainer_run(ddpm_trainer *t, const char *run_dir, ddpm_train_step_fn on_step, void *user);

const ddpm_train_config *ddpm_trainer_config(const ddpm_trainer *t);  /* the run's configuration */
int64_t ddpm_trainer_steps_done(const ddpm_trainer *t);
ddpm_model *ddpm_trainer_model(ddpm_trainer *t);   /* the network being trained (raw weights) */
const float *ddpm_trainer_ema(const ddpm_trainer *t); /* [num_params] EMA weights (raw without EMA) */
/* A prepared inference model (max_batch images) holding the EMA weights as of now, for preview samples
   (ddpm_sample_loop with ddpm_model_sampler_fn, or ddpm_model_forward with labels). Owned by the trainer;
   valid until the next call or ddpm_trainer_free. */
ddpm_status ddpm_trainer_sample_model(ddpm_trainer *t, int max_batch, ddpm_model **out);
/* Learning rate of step `step` (0-based) under c: warm-up, then constant or cosine over lr_total_steps
   (0: steps), as diffusers' get_scheduler. */
double ddpm_train_lr(const ddpm_train_config *c, int64_t step);
/* EMA decay of optimisation step k (1-based), as diffusers' EMAModel.get_decay. */
double ddpm_train_ema_decay(const ddpm_train_config *c, int64_t k);
/* Sets an AdamW rate used when ddpm_adamw_step's lr is 0 (the first warm-up step runs at rate 0). */
void ddpm_adamw_set_lr(ddpm_adamw *o, double lr);

/* What a folder holds for a new run there: nothing of a run; a run that can be continued
   (ddpm_trainer_resume); debris of a run that saved no state (training_state.json or checkpoints/ without a
   complete state: it died during its first save); or a state that cannot be read (ddpm_last_error() says why). */
typedef enum {
    DDPM_TRAIN_FOLDER_NONE = 0, DDPM_TRAIN_FOLDER_RUN, DDPM_TRAIN_FOLDER_DEBRIS, DDPM_TRAIN_FOLDER_BROKEN
} ddpm_train_folder_kind;
ddpm_status ddpm_train_folder_state(const char *dir, ddpm_train_folder_kind *kind);

/* The run folder of a path given for a resume: RUN for RUN/checkpoints/checkpoint-<step> (trailing slashes
   ignored), else the path itself. *dir: free with ddpm_free. */
ddpm_status ddpm_train_run_folder(const char *path, char **dir);

/* The first field in which two networks' configurations (their config.json, keys starting with '_' aside)
   differ: *what = "KEY: A vs B" with the values as JSON ("absent" for a missing key; free with ddpm_free),
   or NULL when they agree. */
ddpm_status ddpm_model_config_diff(const ddpm_model *a, const ddpm_model *b, char **what);

/* Preview samples of the run as one PNG grid at path: `num` images drawn with DDIM (ddim_steps steps, eta 0,
   the run's seed, x_T [num, D] from stream (DDPM_STREAM_INIT, 0, 0)) from the EMA weights
   (ddpm_trainer_sample_model, up to 32 images per call; image i of a class-conditional model has class i % K),
   cells smaller than 64 pixels enlarged (nearest neighbour). text: NULL or {key, value, ..., NULL} tEXt pairs,
   followed by "Software" and a "Description" of the settings. The run's should_stop is asked after every
   sampler step (DDPM_ERR_INTERRUPTED). */
ddpm_status ddpm_trainer_write_samples(ddpm_trainer *t, const char *path, int num, int ddim_steps,
                                       const char *const *text);

/* The training log, a CSV file "step,loss,smoothed_loss,lr,grad_norm,images_per_s,elapsed_s" with one line per
   step, flushed as it is written. smoothed_loss: the moving average of weight 0.98 divided by 1 - 0.98^k after
   k steps; elapsed_s: training seconds of the whole run. */
typedef struct ddpm_train_log ddpm_train_log;
/* resume_step 0: a new log (a file at path is replaced). resume_step > 0: the log is first cut back to its
   lines with step <= resume_step (later ones came from steps the checkpoint does not hold; incomplete or
   unreadable lines are dropped; the file is replaced atomically), and the smoothed loss and elapsed time
   continue from its last line. Lines are then appended. */
ddpm_status ddpm_train_log_open(const char *path, int64_t resume_step, ddpm_train_log **out);
/* One line for a step: its loss joins the moving average; elapsed_s = seconds of this run (those before the
   resume are added). */
ddpm_status ddpm_train_log_write(ddpm_train_log *lg, const ddpm_train_stats *s, double images_per_s,
                                 double elapsed_s);
double ddpm_train_log_smoothed(const ddpm_train_log *lg);        /* of the last line (0 before any) */
double ddpm_train_log_elapsed_before(const ddpm_train_log *lg);  /* training seconds before this run */
void ddpm_train_log_close(ddpm_train_log *lg);                   /* NULL: nothing */

/* The picture of a training log's loss (ddpm_train_log_plot). */
typedef struct {
    double smooth;            /* weight of the moving average drawn over the loss: 0 (none) .. < 1 (default 0.98) */
    int log_y;                /* 1 (default): the y axis shows log10 of the loss; 0: the loss */
    int width, height;        /* pixels (default 1000 x 600) */
    const char *const *text;  /* tEXt pairs as ddpm_png_write (default NULL); "Software" is added */
} ddpm_train_log_plot_config;
void ddpm_train_log_plot_config_default(ddpm_train_log_plot_config *c);
/* Draws the loss of a CSV log (a header line naming "step" and "loss" columns, then one line per step with the
   header's field count, finite numbers there and increasing steps; blank lines skipped) and its
   bias-corrected moving average against the step into png_path. A malformed log is DDPM_ERR_FORMAT naming the
   file and line ("log.csv:4: ..."). c NULL: defaults. */
ddpm_status ddpm_train_log_plot(const char *log_path, const char *png_path, const ddpm_train_log_plot_config *c);

/* ===================================================================================== safetensors
   An 8-byte little-endian header length, a JSON header, raw little-endian data. Every file is treated
   as hostile: the header is bounded (100 MB), offsets lie inside the data, tensors do not overlap,
   byte length = dtype size x shape, names are unique. */

#define DDPM_ST_MAX_DIMS 8
typedef struct {
    const char *name;
    ddpm_dtype dtype;
    int ndim;
    int64_t shape[DDPM_ST_MAX_DIMS];
    int64_t numel;
    uint64_t offset, nbytes;   /* inside the data section */
} ddpm_st_tensor;

typedef struct ddpm_safetensors ddpm_safetensors;
ddpm_status ddpm_st_open(const char *path, ddpm_safetensors **out);
ddpm_status ddpm_st_open_memory(const void *buf, size_t len, ddpm_safetensors **out); /* copies buf */
void ddpm_st_close(ddpm_safetensors *st);
int ddpm_st_count(const ddpm_safetensors *st);
const ddpm_st_tensor *ddpm_st_at(const ddpm_safetensors *st, int i);   /* in file order */
const ddpm_st_tensor *ddpm_st_find(const ddpm_safetensors *st, const char *name);
const void *ddpm_st_data(const ddpm_safetensors *st, const ddpm_st_tensor *t); /* raw LE bytes */
/* Convert a tensor to float / double / int64 (any float dtype to float, any int dtype to int64);
   count must equal numel. */
ddpm_status ddpm_st_read_f32(const ddpm_safetensors *st, const char *name, float *out, int64_t count);
ddpm_status ddpm_st_read_f64(const ddpm_safetensors *st, const char *name, double *out, int64_t count);
ddpm_status ddpm_st_read_i64(const ddpm_safetensors *st, const char *name, int64_t *out, int64_t count);
int ddpm_st_metadata_count(const ddpm_safetensors *st);
void ddpm_st_metadata_at(const ddpm_safetensors *st, int i, const char **key, const char **value);
const char *ddpm_st_metadata_get(const ddpm_safetensors *st, const char *key); /* NULL if absent */

/* What `ddpm info` shows about path, as text (free with ddpm_free). A folder (a model, as ddpm_model_load reads
   it): "model: PATH, UNet2DModel|BasicUNet, C -> C channels at SxS, N parameters in N tensors", its classes and
   default guidance, and "scheduler: CLASS, T = N, prediction P, clip_sample B". Otherwise a safetensors file: a
   table of its tensors in file order (name, dtype, shape, numel with thousands separators), a line of totals
   (tensors, parameters, bytes) and the metadata. Names and values are escaped (control and non-printable bytes as
   \xNN; long ones cut with "...") so that a hostile file cannot drive a terminal. */
ddpm_status ddpm_describe(const char *path, char **text);

typedef struct ddpm_st_writer ddpm_st_writer;
ddpm_status ddpm_st_writer_create(ddpm_st_writer **out);
/* Copies name, shape and data. Data is given in the named dtype, little-endian host order. */
ddpm_status ddpm_st_writer_add(ddpm_st_writer *w, const char *name, ddpm_dtype dtype, int ndim,
                               const int64_t *shape, const void *data);
ddpm_status ddpm_st_writer_set_metadata(ddpm_st_writer *w, const char *key, const char *value);
/* Writes the file through ddpm_write_file (atomic for a regular file; an existing PATH is untouched on
   failure). The metadata always records the crc32 of the data as DDPM_ST_CRC_KEY (8 hex digits), and
   ddpm_st_open verifies it in every file that has it (DDPM_ERR_FORMAT "the data is corrupt"). */
#define DDPM_ST_CRC_KEY "ddpm_crc32"
ddpm_status ddpm_st_writer_save(ddpm_st_writer *w, const char *path);
void ddpm_st_writer_free(ddpm_st_writer *w);

/* Images x [N, C, H, W] (model space) as the F32 tensor "samples", labels [N] (when not NULL) as the I64 tensor
   "labels", and settings (when not NULL) as the metadata "ddpm", written as ddpm_st_writer_save does. */
ddpm_status ddpm_save_samples(const char *path, const float *x, int64_t N, int C, int H, int W,
                              const int64_t *labels, const char *settings);
/* A batch of images [N, C, H, W] from a safetensors file: the tensor `name`, or the file's only tensor; any
   float dtype; 1 <= N <= max_n. *x [N * C * H * W] (free with ddpm_free) and *N. Messages start with path. */
ddpm_status ddpm_read_image_tensor(const char *path, const char *name, int C, int H, int W, int64_t max_n,
                                   double **x, int64_t *N);

/* ===================================================================================== names of the enums */

/* The words a command line or a config file uses for the enums, both ways: engine "fast" | "reference";
   sampler "ddpm" | "ddim" | "dpmpp2m" (also "dpm++2m", "dpm++", "dpmpp"); spacing "leading" | "trailing" |
   "linspace"; prediction "eps" | "x0" | "v" (also diffusers' "epsilon", "sample", "v_prediction"); learning-rate
   schedule "constant" | "cosine". ddpm_enum_name gives the canonical word (NULL for an unknown value);
   ddpm_enum_from_name is DDPM_ERR_INVALID_ARG for an unknown word, naming the closest one or the choices. */
typedef enum {
    DDPM_ENUM_ENGINE, DDPM_ENUM_SAMPLER, DDPM_ENUM_SPACING, DDPM_ENUM_PREDICTION, DDPM_ENUM_LR_SCHEDULE
} ddpm_enum_kind;
const char *ddpm_enum_name(ddpm_enum_kind kind, int value);
/* The "did you mean" of a mistyped word: the candidate fewest edits away (a prefix of 2+ letters counts as one),
   if within 1 edit for words of up to 3 letters, 2 up to 6, else 3; NULL when none is that close. */
const char *ddpm_closest(const char *word, const char *const *cands, int n);
ddpm_status ddpm_enum_from_name(ddpm_enum_kind kind, const char *name, int *value);

/* ===================================================================================== output files */

/* Every file the library writes goes through this rule. A missing path or a regular file is replaced
   atomically: PATH.tmp.<pid> is written, fsynced and renamed over it (a replaced file keeps its permissions),
   so an existing PATH is untouched on any failure. A symbolic link is never replaced: the rule applies to the
   file it names. A character device (/dev/null, a terminal) or a FIFO is written through. A directory, block
   device, socket or dangling link is refused with DDPM_ERR_IO. */
ddpm_status ddpm_write_file(const char *path, const void *data, size_t len);

/* Whether a file can be written at path before the work that makes it is done: DDPM_OK for an existing regular
   file (it would be replaced) or a new name in an existing folder; else DDPM_ERR_IO with "PATH: exists and is not
   a regular file", "PATH: the folder DIR does not exist" or the reason stat gives. */
ddpm_status ddpm_output_file_check(const char *path);

/* mkdir -p: creates path and its missing parents; DDPM_ERR_IO when a component is not a folder. */
ddpm_status ddpm_make_dirs(const char *path);

/* One writer per folder (a training run, a model being written). ddpm_dir_lock_take creates DIR if needed
   and takes an exclusive flock on DIR/.lock, writing this process's pid into it; when another process holds
   it the call fails at once with DDPM_ERR_IO and a message naming that process's pid. The lock ends with
   ddpm_dir_lock_release (which removes DIR/.lock) or with the process (after a crash or kill -9 the file is
   left, locking nothing). */
#define DDPM_DIR_LOCK_NAME ".lock"
typedef struct ddpm_dir_lock ddpm_dir_lock;
ddpm_status ddpm_dir_lock_take(const char *dir, ddpm_dir_lock **out);
void ddpm_dir_lock_release(ddpm_dir_lock *l);   /* NULL: nothing */

/* ===================================================================================== images */

typedef struct {
    int width, height, channels;   /* channels: 1 (gray) or 3 (RGB) */
    uint8_t *pixels;               /* [height, width, channels] */
} ddpm_image;

ddpm_status ddpm_image_alloc(ddpm_image *img, int width, int height, int channels); /* zeroed */
void ddpm_image_free(ddpm_image *img);   /* frees pixels, zeroes the struct */

/* PNG through libpng. Reading accepts any PNG and converts to 8-bit gray or RGB (alpha is composited
   on white; palettes expanded; 16-bit reduced). text: NULL or NULL-terminated {key, value, ...} pairs
   written as tEXt chunks. Writing is atomic. */
ddpm_status ddpm_png_read(const char *path, ddpm_image *out);
ddpm_status ddpm_png_read_memory(const void *buf, size_t len, ddpm_image *out);
ddpm_status ddpm_png_write(const char *path, const ddpm_image *img, const char *const *text);
/* Reads the tEXt value for key into a new string (free with ddpm_free), or *value = NULL if absent. */
ddpm_status ddpm_png_read_text(const char *path, const char *key, char **value);

/* A grid of N images from model space [-1, 1] (values clamped), [N, C, H, W] with C 1 or 3:
   `cols` per row (<= 0: ceil(sqrt(N))), `pad` pixels of `pad_value` around and between cells. */
ddpm_status ddpm_image_grid(ddpm_image *out, const float *x, int N, int C, int H, int W,
                            int cols, int pad, uint8_t pad_value);
/* Image to model space: out [C, H, W] = pixel / 127.5 - 1. */
void ddpm_image_to_f32(const ddpm_image *img, float *out);
/* ddpm_image_grid with 1 white pixel around and between cells, enlarged `scale` times (nearest neighbour;
   scale <= 0: cells of at least 64 pixels). */
ddpm_status ddpm_image_grid_scaled(ddpm_image *out, const float *x, int N, int C, int H, int W, int cols,
                                   int scale);
/* Nearest-neighbour enlargement by k >= 1. */
ddpm_status ddpm_image_enlarge(const ddpm_image *in, int k, ddpm_image *out);
/* Images of one channel count stacked vertically, each centred, white around. */
ddpm_status ddpm_image_stack(const ddpm_image *rows, int n, ddpm_image *out);

/* Writes N images x [N, C, H, W] (model space) as dir/000000.png, dir/000001.png, ... with the tEXt pairs of
   text (as ddpm_png_write) and "Description" = "image i of N". dir may be new or a folder of such images only
   (ddpm_image_folder_check), which is replaced as a whole: the images are written into dir.tmp.<pid>, which
   takes dir's place once every image is written; on any failure (or should_stop returning non-zero between
   images: DDPM_ERR_INTERRUPTED) dir is as it was and the partial folder is gone. */
ddpm_status ddpm_write_image_folder(const char *dir, const float *x, int64_t N, int C, int H, int W,
                                    const char *const *text, int (*should_stop)(void *user), void *stop_user);
/* DDPM_OK when ddpm_write_image_folder may write dir: it does not exist, or it is a folder holding only files
   named like its images (six or more digits and ".png"); else DDPM_ERR_IO naming what is in the way. */
ddpm_status ddpm_image_folder_check(const char *dir);
/* Whether two output paths name one file or folder: the same file when both exist; when neither does, the same
   resolved parent folder and the same name ("a/./b.png" and "a/b.png"). 0 when either is NULL. */
int ddpm_paths_same(const char *p, const char *q);

void ddpm_free(void *p);   /* frees memory the library handed to the caller */

/* ===================================================================================== datasets */

/* IDX (MNIST, Fashion-MNIST): gzip or raw, unsigned-byte type only (magic 0x0000080N), big-endian
   dimensions, data length checked against them. */
typedef struct {
    int ndim;            /* 1..4 */
    int64_t dims[4];
    uint8_t *data;       /* prod(dims) bytes */
} ddpm_idx;
ddpm_status ddpm_idx_read(const char *path, ddpm_idx *out);
ddpm_status ddpm_idx_read_memory(const void *buf, size_t len, ddpm_idx *out); /* gzip detected */
void ddpm_idx_free(ddpm_idx *idx);

/* CIFAR-10 binary batch (`*.bin` or `*.bin.gz`): records of 1 label byte + 3072 pixel bytes. */
typedef struct {
    int64_t count;
    uint8_t *labels;     /* [count] */
    uint8_t *images;     /* [count, 3, 32, 32] */
} ddpm_cifar;
ddpm_status ddpm_cifar_read(const char *path, ddpm_cifar *out);
ddpm_status ddpm_cifar_read_memory(const void *buf, size_t len, ddpm_cifar *out);
void ddpm_cifar_free(ddpm_cifar *c);

/* A labelled image set in memory. kind: "mnist", "fashion-mnist" (train-/t10k-*-idx?-ubyte[.gz] in
   dir), "cifar10" (data_batch_*.bin[.gz] or test_batch.bin[.gz] in dir). dir NULL: the default data
   folder, $DDPM_DATA/<kind>, else $HOME/.cache/ddpm/<kind> (scripts/get-data.sh fills it). */
typedef struct ddpm_dataset {
    int64_t count;
    int channels, height, width;
    int num_classes;
    uint8_t *pixels;     /* [count, channels, height, width] */
    int32_t *labels;     /* [count] */
} ddpm_dataset;
ddpm_status ddpm_dataset_load(const char *kind, const char *dir, int train, ddpm_dataset *out);
void ddpm_dataset_free(ddpm_dataset *ds);
/* `count` random images of channels x size x size (byte i: the top 8 bits of draw i of the uniform stream
   (DDPM_STREAM_INIT, 0, 0) of seed) and, for num_classes > 0, labels (draw i of (DDPM_STREAM_INIT, 1, 0)
   modulo num_classes; labels NULL otherwise): a fixed batch for timing. Free with ddpm_dataset_free. */
ddpm_status ddpm_dataset_random(int64_t count, int channels, int size, int num_classes, uint64_t seed,
                                ddpm_dataset *out);
/* Image `index` in model space: out [C, H, W]. */
ddpm_status ddpm_dataset_get_f32(const ddpm_dataset *ds, int64_t index, float *out);

/* Training data for a model of `size` x `size` pixels and `channels` (1 or 3) channels.
   spec: "mnist" | "fashion-mnist" | "cifar10" (files in dir, as ddpm_dataset_load) or "folder:DIR" (every
   PNG/JPEG under DIR, read through libpng / libjpeg-turbo; one sub-folder per class gives labels in sorted
   name order, images directly in DIR are unlabelled (num_classes 0)); dir may be NULL for folder:.
   Images are converted to the channel count (gray <-> RGB), resized so the shorter side is `size` with an
   antialiasing filter, then center-cropped to size x size. Unreadable images, an empty folder or a folder
   mixing gray and colour images are reported by name. train is ignored for folders. */
ddpm_status ddpm_dataset_load_for_model(const char *spec, const char *dir, int train, int size, int channels,
                                        ddpm_dataset *out);
/* Resize an image (HWC 8-bit) to out_w x out_h with an antialiasing filter (area average when shrinking,
   bilinear when enlarging). */
ddpm_status ddpm_image_resize(const ddpm_image *in, int out_w, int out_h, ddpm_image *out);
/* JPEG through libjpeg-turbo (8-bit gray or RGB out; CMYK refused). */
ddpm_status ddpm_jpeg_read(const char *path, ddpm_image *out);
ddpm_status ddpm_jpeg_read_memory(const void *buf, size_t len, ddpm_image *out);

/* ===================================================================================== plots
   Line plots drawn with cairo into a PNG (through ddpm_png_write, so text chunks are kept). */

typedef struct {
    const char *label;        /* legend entry */
    const double *x, *y;      /* [n] */
    int n;
    double rgb[3];            /* 0..1; all negative = automatic palette */
    int dashed;
} ddpm_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int width, height;        /* pixels (default 900 x 560 when 0) */
    double xmin, xmax, ymin, ymax; /* axis ranges; xmin == xmax (or ymin == ymax) = automatic */
    const ddpm_plot_series *series;
    int nseries;
    const char *const *text;  /* tEXt pairs, as ddpm_png_write */
} ddpm_plot;

ddpm_status ddpm_plot_lines(const char *path, const ddpm_plot *p);
/* Colour i (mod 10) of the automatic palette (Tableau 10), for series that should share one. */
void ddpm_plot_palette(int i, double rgb[3]);
/* The noise schedules of n diffusions with one T: sqrt(alpha_bar_t) (solid) and sqrt(1 - alpha_bar_t) (dashed)
   against t, both curves of diffusion i in palette colour i, labelled with names[i], titled "Noise schedules
   (T = ...)", y from 0 to 1, into a PNG of width x height pixels with the tEXt pairs of text. */
ddpm_status ddpm_schedule_plot(const char *path, const ddpm_diffusion *const *d, const char *const *names, int n,
                               int width, int height, const char *const *text);
/* Render a plot into an RGB image instead of a file. */
ddpm_status ddpm_plot_render(const ddpm_plot *p, ddpm_image *out);

/* A row of images with a caption under each (e.g. "t = 250"), from an [N, C, H, W] batch in model
   space, each cell scaled up by `scale` (nearest) — the picture of the forward process. */
ddpm_status ddpm_image_strip(ddpm_image *out, const float *x, int N, int C, int H, int W,
                             const char *const *captions, int scale);
/* The nearest-neighbour scale of strip cells of about 100 pixels for images of `size` pixels. */
int ddpm_image_strip_scale(int size);
/* x and the x0 prediction of the first nimg images of a run at nframes of its steps (the seed's
   p_sample_loop_trajectory), filled from a step callback by ddpm_trajectory_record. */
#define DDPM_TRAJECTORY_MAX_FRAMES 64
typedef struct {
    int nimg, nframes;
    int steps[DDPM_TRAJECTORY_MAX_FRAMES]; /* step indices of the frames, increasing */
    int64_t t[DDPM_TRAJECTORY_MAX_FRAMES]; /* their timesteps, as recorded */
    float *x, *x0;             /* [nimg, nframes, D] */
    int64_t D;
} ddpm_trajectory;
/* min(frames, steps) frames (1..64) spread evenly over steps 0..steps-1, the last one included. */
ddpm_status ddpm_trajectory_init(ddpm_trajectory *tr, int nimg, int frames, int steps, int64_t D);
void ddpm_trajectory_free(ddpm_trajectory *tr);
/* Keeps the rows of x and x0 [N, D] (images first_item ..) that are among its images when step_index is one of
   its frames (x0 NULL: zeros). */
void ddpm_trajectory_record(ddpm_trajectory *tr, int64_t first_item, int step_index, int64_t timestep,
                            const double *x, const double *x0, int64_t N, int64_t D);
/* The picture of a trajectory of [C, H, W] images: for each image two strips at ddpm_image_strip_scale, x after
   each frame's step (captioned "t = T") and the step's x0 prediction, stacked. */
ddpm_status ddpm_image_trajectory(ddpm_image *out, const ddpm_trajectory *tr, int C, int H, int W);

/* ===================================================================================== applications
   What a trained model is used for: generation with classifier-free guidance, trajectories, interpolation,
   inpainting (RePaint), img2img (SDEdit) and denoising. Noise is drawn per image so that results do not depend
   on how images are batched or on the thread count: x_T of image `item` is stream (DDPM_STREAM_INIT, 0, item),
   a sampler's step-i noise is (DDPM_STREAM_SAMPLER, i, item) and forward-process noise made by an application
   at its step s is (DDPM_STREAM_NOISING, s, item). */

/* x_T [N, D] for images first_item .. first_item + N - 1; shared != 0 gives every image image 0's noise. */
void ddpm_sample_init_noise(uint64_t seed, int64_t first_item, int64_t N, int64_t D, int shared, double *out);

/* A pipeline folder's scheduler/scheduler_config.json (DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler,
   PNDMScheduler, ... as diffusers writes them): the noise schedule and the sampler settings it fixes. */
typedef struct {
    char class_name[64];       /* "_class_name", "DDPMScheduler" when there is no file */
    int found;                 /* 1 if the file was read, 0: DDPMScheduler() defaults */
    ddpm_diffusion *diffusion; /* owned: from num_train_timesteps, beta_* / trained_betas */
    ddpm_prediction prediction;/* prediction_type: epsilon, sample, v_prediction */
    ddpm_variance variance;    /* variance_type fixed_small / fixed_large (DDPM) */
    int clip_sample;           /* default 1 */
    double clip_range;         /* clip_sample_range, default 1 */
    ddpm_spacing spacing;      /* timestep_spacing, default leading */
    int steps_offset;          /* default 0 */
    int set_alpha_to_one;      /* DDIM, default 1 */
} ddpm_pipeline_scheduler;
/* dir: a pipeline folder (scheduler/scheduler_config.json inside), or anything else (a preset name, a unet
   folder, a config.json): then DDPMScheduler() defaults. Refuses what the samplers do not implement
   (thresholding, rescale_betas_zero_snr, an unknown beta_schedule or prediction_type) naming field and value. */
ddpm_status ddpm_pipeline_scheduler_load(const char *dir, ddpm_pipeline_scheduler *out);
void ddpm_pipeline_scheduler_free(ddpm_pipeline_scheduler *s);
/* Copies the folder's prediction type into cfg and, for the DDPM and DDIM samplers, its variance, clipping,
   spacing, steps_offset and set_alpha_to_one (DPM-Solver++ keeps its own defaults: linspace, no clipping). */
void ddpm_pipeline_scheduler_apply(const ddpm_pipeline_scheduler *s, ddpm_sampler_config *cfg);

/* Classifier-free guidance (Ho & Salimans 2022) over a prepared model, as a ddpm_model_fn:
   out = u + w (c - u), u the output for the null class, c for the image's label; w = 1 is plain conditional
   sampling (one pass), w = 0 the null class alone (one pass), an unconditional model runs as is. Otherwise the
   model runs on 2 N rows at once and must be prepared for max_batch >= 2 N. labels [N] (0 <= label < null class, or the null class itself) are the rows of the current call:
   set them with ddpm_guided_set_labels before each call of the sample loop. */
typedef struct ddpm_guided ddpm_guided;
/* labels NULL: unconditional (an unconditional model, or the null class of a conditional one). Errors: labels or
   w != 1 with an unconditional model; w != 1 with a conditional model that has no null class (not trained
   with label dropout); a label out of range. */
ddpm_status ddpm_guided_create(ddpm_model *m, double guidance, int max_batch, ddpm_guided **out);
ddpm_status ddpm_guided_set_labels(ddpm_guided *g, const int64_t *labels, int64_t N); /* NULL: unconditional */
void ddpm_guided_free(ddpm_guided *g);
ddpm_status ddpm_guided_fn(void *user /* ddpm_guided */, float *out, const float *x, const int64_t *t, int64_t N,
                           int64_t D);
/* DDPM_OK when the model can sample with guidance weight w (finite; w != 1 needs a class-conditional model with
   a null class), else DDPM_ERR_INVALID_ARG saying why. */
ddpm_status ddpm_guidance_check(const ddpm_model *m, double w);
/* Prepares the model for max_batch images (2 max_batch rows when guidance != 1; a model already prepared for
   inference with the engine and at least as many rows is kept) and creates the guided model function. */
ddpm_status ddpm_guided_prepare(ddpm_model *m, double guidance, int max_batch, ddpm_engine engine,
                                ddpm_guided **out);

/* The class labels of a run of N images and its guidance weight. classes [n]: class numbers >= 0, -1 for the
   null class (n = 0: none given); image i gets classes[i % n]. Without classes a class-conditional model cycles
   through its classes 0..K-1 when cycle != 0 (sampling), else runs on its null class. guidance: the weight, or
   NAN for auto: the model's own (_ddpm_guidance), else 2 for a model with a null class when some image has a real
   class, else 1. *labels [N] (free with ddpm_free) is NULL for an unconditional model. DDPM_ERR_INVALID_ARG
   ("the model is unconditional (no class embedding)", "... has no null class ...", "class K is not one of the
   model's classes 0..K-1") when the classes do not fit the model; the weight is not checked (ddpm_guidance_check). */
ddpm_status ddpm_class_labels(const ddpm_model *m, const int64_t *classes, int n, int64_t N, int cycle,
                              double guidance, int64_t **labels, double *weight);

/* Where ddpm_sample_images takes x_T from. */
typedef enum {
    DDPM_XT_GIVEN,             /* x holds it (or x_t at cfg->first_step) */
    DDPM_XT_SEED,              /* image i's: stream (DDPM_STREAM_INIT, 0, i) (ddpm_sample_init_noise) */
    DDPM_XT_SHARED             /* image 0's for every image */
} ddpm_xt_mode;
/* The loop ddpm_sample_images runs on each chunk. */
typedef enum {
    DDPM_RUN_SAMPLE,           /* ddpm_sample_loop */
    DDPM_RUN_INPAINT,          /* ddpm_inpaint_loop with inpaint, known and mask */
    DDPM_RUN_INVERT            /* ddpm_ddim_invert: x holds x_0 in, x_T out (xt is not used) */
} ddpm_run_kind;
/* Called before the loop runs on images first .. first + n - 1 of N; non-OK stops the run. */
typedef ddpm_status (*ddpm_chunk_fn)(void *user, int64_t first, int64_t n, int64_t N);
typedef struct {
    ddpm_run_kind run;         /* default DDPM_RUN_SAMPLE */
    ddpm_xt_mode xt;           /* default DDPM_XT_SEED */
    int chunk;                 /* images per loop call (default 16; at most N are used) */
    double guidance;           /* classifier-free guidance weight (default 1: none) */
    const int64_t *labels;     /* [N] the images' classes, or NULL (unconditional, or the null class) */
    ddpm_engine engine;        /* the kernels the model is prepared with (default fast) */
    const struct ddpm_inpaint_config *inpaint; /* DDPM_RUN_INPAINT: the jump schedule */
    const double *known, *mask;/* DDPM_RUN_INPAINT: [N, D] each, as ddpm_inpaint_loop */
    ddpm_chunk_fn on_chunk;    /* NULL: none */
    void *chunk_user;
} ddpm_sample_request;
void ddpm_sample_request_default(ddpm_sample_request *r);
/* N images x [N, D] (D = the model's C x S x S) in chunks of r->chunk images: prepares the model and the guided
   model function once (ddpm_guided_prepare), then for each chunk draws x_T (r->xt), sets its labels, calls
   r->on_chunk and runs r->run with first_item = the chunk's first image, so that the images are the same for
   any chunk size. cfg->on_step sees the rows of the running chunk (r->on_chunk said which images they are);
   cfg->seed is also the seed of x_T. */
ddpm_status ddpm_sample_images(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                               const ddpm_sample_request *r, double *x, int64_t N);

/* DDIM inversion (eta 0): x [N, D] holds x_0 in and the x_T that DDIM (cfg: kind DDIM, its steps and spacing)
   maps back to x_0 out. Walks the timestep list upwards: eps = model(x, t_k),
   x0 = (x - sqrt(1 - ab_prev) eps) / sqrt(ab_prev), x = sqrt(ab_k) x0 + sqrt(1 - ab_k) eps (ab_prev = 1 first).
   x0 and v models are converted to eps; nothing is clipped. With cfg->first_step > 0 it stops at
   timesteps[first_step], so that a decode from first_step returns. cfg->on_step is called after each step. */
ddpm_status ddpm_ddim_invert(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, ddpm_model_fn model,
                             void *model_user, double *x, int64_t N, int64_t D);
/* x_t at timestep t of images x0 [N, D] (first_item ..): sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, image i's eps from
   stream (DDPM_STREAM_NOISING, 0, i). out may be x0. */
ddpm_status ddpm_noise_images(const ddpm_diffusion *d, uint64_t seed, int64_t t, const double *x0,
                              int64_t first_item, int64_t N, int64_t D, double *out);
/* The picture of the forward process on one image x0 [C, H, W] (model space, C 1 or 3): x0 noised to each of the
   n timesteps t[] (0 <= t < T, 1 <= n <= 64) in float with one eps for all of them, stream
   (DDPM_STREAM_NOISING, 0, item) of seed, so that the row is a single trajectory of the closed form; drawn by
   ddpm_image_strip with the captions "t = T" and cells enlarged `scale` times (1..64). */
ddpm_status ddpm_noise_strip(const ddpm_diffusion *d, const float *x0, int C, int H, int W, uint64_t seed,
                             uint32_t item, const int64_t *t, int n, int scale, ddpm_image *out);
/* The one-step estimate of x_0 from x [N, D] at timestep t: one model call, its output read as `pred`, clamped to
   [-clip, clip] when clip > 0. */
ddpm_status ddpm_predict_x0(const ddpm_diffusion *d, ddpm_prediction pred, ddpm_model_fn model, void *model_user,
                            const double *x, int64_t t, int64_t N, int64_t D, double clip, double *x0);
/* Spherical interpolation of two [D] vectors (linear when they are nearly parallel). */
void ddpm_slerp(const double *a, const double *b, double lambda, double *out, int64_t D);

/* RePaint (Lugmayr et al. 2022) with the DDPM or DDIM sampler of cfg: at every step the region to keep is
   replaced by the image noised to the step's new timestep; with jump_length > 0 and jump_n_sample > 1 the run
   goes back jump_length steps (forward noising) and redoes them, jump_n_sample - 1 times per jump.
   x [N, D]: x_T in, result out; known [N, D] the image; mask [N, D]: 1 = generate, 0 = keep. As in
   ddpm_sample_loop, loop operation k < cfg->repeat_noise_steps gives every image image 0's noise (the sampler's,
   the kept region's and the backward jumps'). */
typedef struct ddpm_inpaint_config {
    int jump_length;           /* default 10 */
    int jump_n_sample;         /* default 1 (no resampling) */
} ddpm_inpaint_config;
void ddpm_inpaint_config_default(ddpm_inpaint_config *c);
ddpm_status ddpm_inpaint_loop(const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                              const ddpm_inpaint_config *ic, ddpm_model_fn model, void *model_user, double *x,
                              const double *known, const double *mask, int64_t N, int64_t D, int64_t first_item);

/* The timestep whose noise level matches additive Gaussian noise of standard deviation sigma in model space
   (x + sigma n = (x_t) / sqrt(ab_t) when sigma = sqrt((1 - ab_t) / ab_t)): the nearest such t; -1 when sigma is
   not finite or <= 0. */
int64_t ddpm_timestep_for_sigma(const ddpm_diffusion *d, double sigma);

/* The applications in one call each: ddpm_interpolate, ddpm_img2img, ddpm_inpaint and ddpm_denoise. Images are
   in model space, [C, S, S] each as ddpm_image_to_model makes them (float, [-1, 1]); results come out the same
   way. They run on ddpm_sample_images (chunks, labels, guidance, cfg->on_step per step) with a copy of cfg whose
   first_step the application sets. What was decided before the run (the start step, its timestep) is in the
   ddpm_app_info; a pass callback hears of each pass over the images before it starts. */
/* DDPM_OK when the model maps images to images: 1 (gray) or 3 (RGB) input channels and as many output channels
   (no learned variance); else DDPM_ERR_INVALID_ARG saying which. The applications check it first. */
ddpm_status ddpm_model_check_images(const ddpm_model *m);
typedef struct ddpm_app_info {
    int first_step;            /* the reverse process starts at this index of the timestep list */
    int64_t t;                 /* ... from x_t at this timestep (0 for inpainting, which starts from x_T) */
    int64_t t_noise;           /* interpolation (noise) and img2img: the timestep the images are noised to;
                                  denoise: the timestep of sigma (ddpm_timestep_for_sigma) */
    double round_trip[2];      /* interpolation: the mean |pixel difference| (pixels in [0, 1], model values
                                  clamped to [-1, 1]) between a and the image of lambda 0, and between b and the
                                  image of lambda 1; NAN when no lambda is 0 (1) */
    double regenerated;        /* inpainting: the fraction of the pixels the mask regenerates */
    double psnr[3];            /* denoising with add_noise: PSNR in dB of the noisy image, the one-step estimate and
                                  the result against the clean image (as round_trip's pixels); NAN without */
} ddpm_app_info;
/* Called before each pass over the images: name ("interpolating", "inverting a and b", "decoding", "img2img",
   "inpainting", "denoising"), the n images it runs on and the steps: how many cfg->on_step calls it makes in
   all. Non-OK stops the run. */
typedef ddpm_status (*ddpm_pass_fn)(void *user, const char *name, int64_t n, int64_t steps,
                                    const ddpm_app_info *info);
typedef struct {
    int chunk;                 /* images per loop call (default 16) */
    double guidance;           /* classifier-free guidance weight (default 1: none) */
    const int64_t *labels;     /* the result images' classes ([N]; interpolation: [max(n, 2)], a and b inverted
                                  with labels 0 and 1), or NULL (unconditional, or the null class) */
    ddpm_engine engine;        /* default fast */
    ddpm_chunk_fn on_chunk;    /* as ddpm_sample_request's; NULL: none */
    ddpm_pass_fn on_pass;      /* NULL: none */
    void *user;                /* of on_chunk and on_pass */
} ddpm_app_request;
void ddpm_app_request_default(ddpm_app_request *r);

typedef enum {
    DDPM_INTERP_NOISE,         /* Ho et al. 2020, fig. 8: a and b noised to t (items 0 and 1 of stream
                                  (DDPM_STREAM_NOISING, 0, .)), mixed (1 - lambda) x_a + lambda x_b, denoised by
                                  cfg's sampler from t */
    DDPM_INTERP_DDIM           /* Song et al. 2021: a and b DDIM-inverted (cfg's steps and spacing), mixed by
                                  ddpm_slerp, decoded by DDIM with eta 0 and no clipping */
} ddpm_interp_mode;
/* n images between a and b [D] into out [n, D], image i for lambdas[i] in [0, 1] (0: a). t: noise mode's
   timestep, 0 <= t < T, or -1 for the default (500, or T / 2 when T <= 500); ddim mode takes -1 only and
   needs cfg->kind DDIM. info (may be NULL): first_step and t of the decode, t_noise and round_trip. */
ddpm_status ddpm_interpolate(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                             const ddpm_app_request *r, const float *a, const float *b, const double *lambdas,
                             int n, ddpm_interp_mode mode, int64_t t, float *out, ddpm_app_info *info);
/* SDEdit (Meng et al. 2022): num results out [num, D] of image [D], each the image noised to the first step of
   strength (ddpm_sampler_strength: the last min(int(steps * strength), steps) of cfg->steps steps are run) with
   noise item i of stream (DDPM_STREAM_NOISING, 0, .), then denoised. strength in (0, 1]. */
ddpm_status ddpm_img2img(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         const ddpm_app_request *r, const float *image, double strength, int64_t num, float *out,
                         ddpm_app_info *info);
/* RePaint (ddpm_inpaint_loop, cfg's ddpm or ddim sampler) of image [D] under mask [S * S] (1 = regenerate,
   0 = keep; ddpm_mask_to_model, the same for every channel): num results out [num, D], result i from x_T of
   stream (DDPM_STREAM_INIT, 0, i). masked [D] (may be NULL): the image with the area to regenerate at 0 (mid
   gray). With ic->jump_n_sample > 1, ic->jump_length must be smaller than cfg->steps. */
ddpm_status ddpm_inpaint(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         const ddpm_app_request *r, const ddpm_inpaint_config *ic, const float *image,
                         const float *mask, int64_t num, float *out, float *masked, ddpm_app_info *info);
/* Denoising of an image y [D] with Gaussian noise of standard deviation sigma on the [0, 1] pixel scale (2 sigma
   in model space): sqrt(ab_t) y is read as x_t for t = ddpm_timestep_for_sigma(2 sigma). add_noise != 0:
   image is clean and y = image + 2 sigma n first (n: item 0 of stream (DDPM_STREAM_NOISING, 0, .) of cfg->seed).
   Writes noisy [D] (y; may be NULL), one_step [D] (x0 from one model call at t, clamped to [-1, 1]; may be NULL)
   and out [D] (the reverse process from the first timestep <= t, x = sqrt(ab) y there). One image: r->labels
   [1] or NULL. */
ddpm_status ddpm_denoise(ddpm_model *m, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         const ddpm_app_request *r, const float *image, double sigma, int add_noise, float *noisy,
                         float *one_step, float *out, ddpm_app_info *info);

/* An image file read by its content (PNG or JPEG). */
ddpm_status ddpm_image_read(const char *path, ddpm_image *out);
ddpm_status ddpm_image_read_memory(const void *buf, size_t len, ddpm_image *out);
/* An image as model input out [channels, size, size] in [-1, 1]: resized (shorter side) and center-cropped when
   its size differs. The other channel count is converted as the training data is: RGB to gray by ITU-R BT.601
   luma (rounded), gray to RGB by repeating the gray value. */
ddpm_status ddpm_image_to_model(const ddpm_image *img, int size, int channels, float *out);
/* An inpainting mask out [size * size]: 1 where the mask is light (gray >= 128: generate), 0 where it is dark
   (keep); RGB masks are converted to gray first; resized as ddpm_image_to_model. */
ddpm_status ddpm_mask_to_model(const ddpm_image *mask, int size, float *out);

/* ===================================================================================== evaluation
   The numbers of sample quality that need no network: feature statistics and the Frechet distance between them
   (FID on a classifier's features, as Heusel et al. 2017 do with Inception), nearest-neighbour distances in pixel
   space (memorisation), and the variational bound in bits per dimension. */

/* The classifier: conv 3x3 (C -> 32) ReLU, max-pool 2, conv 3x3 (32 -> 64) ReLU, max-pool 2, linear
   (64 S/4 S/4 -> 128) ReLU = the features, linear (128 -> K) = the logits. Images [N, C, S, S] in model space
   ([-1, 1]); S a multiple of 4. Saved as safetensors (tensor names conv1.weight, conv1.bias, conv2.*, fc1.*, fc2.*
   in PyTorch layouts) with metadata "ddpm_classifier" (a JSON object: channels, size, classes, dataset, test
   accuracy, training settings). */
#define DDPM_CLASSIFIER_FEATURES 128
typedef struct ddpm_classifier ddpm_classifier;
typedef struct {
    int channels, size, num_classes;
    int feature_dim;                /* DDPM_CLASSIFIER_FEATURES */
    int64_t num_params;
    char dataset[32];               /* what it was trained on ("mnist", ...; "" unknown) */
    double test_accuracy;           /* on the dataset's test set, as saved; < 0 unknown */
} ddpm_classifier_info;
/* A new classifier with PyTorch's default initialisation drawn from `seed`. */
ddpm_status ddpm_classifier_create(int channels, int size, int num_classes, uint64_t seed, ddpm_classifier **out);
/* Every tensor must be present with its shape (named in the message otherwise); the file is treated as hostile. */
ddpm_status ddpm_classifier_load(const char *path, ddpm_classifier **out);
/* Written atomically, F32, with the info as metadata. */
ddpm_status ddpm_classifier_save(const ddpm_classifier *c, const char *path);
void ddpm_classifier_free(ddpm_classifier *c);
void ddpm_classifier_get_info(const ddpm_classifier *c, ddpm_classifier_info *info);
/* Records what the classifier was trained on and its test accuracy (saved with it). */
void ddpm_classifier_set_provenance(ddpm_classifier *c, const char *dataset, double test_accuracy);
/* x [N, C, S, S] -> features [N, DDPM_CLASSIFIER_FEATURES] and probs [N, K] (softmax); either may be NULL. Any N
   (runs in chunks); the results do not depend on N or on the thread count. */
ddpm_status ddpm_classifier_apply(ddpm_classifier *c, const float *x, int64_t N, float *features, float *probs);
/* The fraction of a dataset's images whose most probable class is their label. */
ddpm_status ddpm_classifier_accuracy(ddpm_classifier *c, const ddpm_dataset *ds, double *accuracy);

typedef struct {
    int epochs;                     /* default 4 */
    int batch;                      /* default 128 */
    double lr;                      /* Adam (AdamW, weight decay 0) peak rate, cosine decay to 0; default 2e-3 */
    uint64_t seed;                  /* data order; default 0 */
    /* called every `report_every` steps and at the end of every epoch; non-OK stops training */
    ddpm_status (*on_step)(void *user, int epoch, int64_t step, int64_t steps, double loss, double train_acc);
    void *user;
    int report_every;               /* default 50 */
} ddpm_classifier_train_config;
void ddpm_classifier_train_config_default(ddpm_classifier_train_config *c);
/* Cross-entropy training on ds (its labels; ds geometry must match the classifier's). Deterministic. */
ddpm_status ddpm_classifier_train(ddpm_classifier *c, const ddpm_dataset *ds, const ddpm_classifier_train_config *cfg);

/* Feature statistics: mean [F] and covariance [F, F] (unbiased, divided by N - 1) of features [N, F], in double. */
ddpm_status ddpm_feature_stats(const float *features, int64_t N, int F, double *mean, double *cov);
/* The Frechet distance between Gaussians N(m1, c1) and N(m2, c2) of dimension F:
   |m1 - m2|^2 + tr(c1) + tr(c2) - 2 tr((c1^1/2 c2 c1^1/2)^1/2), from symmetric eigendecompositions (Jacobi) in
   double. */
ddpm_status ddpm_frechet_distance(const double *m1, const double *c1, const double *m2, const double *c2, int F,
                                  double *out);
/* For each of the n rows of a [n, D], the Euclidean distance to its nearest row of b [m, D] (into dist [n]) and
   that row's index (into idx [n], may be NULL). */
ddpm_status ddpm_nearest_neighbours(const float *a, int64_t n, const float *b, int64_t m, int64_t D, double *dist,
                                    int64_t *idx);

/* The variational bound of Ho et al. 2020 in bits per dimension (improved-diffusion's calc_bpd_loop): for
   x0 [N, D] (model space, 8-bit values), the sum over t = T-1 .. 0 of KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))
   (t > 0) and the discretised Gaussian decoder NLL (t = 0), plus the prior KL(q(x_T | x0) || N(0, I)), each a
   mean over the D dimensions divided by ln 2. x_t is drawn with the noise of stream (NOISING, t, first_item + i)
   of `seed`. The model's output (eps, x0 or v) gives x0_hat, clipped to [-1, 1] when clip is set; p's variance is
   fixed_small (the posterior's, clipped at t = 0) or fixed_large. bpd [N] receives each image's total, prior [N]
   and decoder [N] (either may be NULL) its parts. on_step (may be NULL) is called after each timestep with
   step_index = T-1-t. */
typedef struct {
    ddpm_prediction prediction;
    ddpm_variance variance;
    int clip;
    uint64_t seed;
    ddpm_step_fn on_step;
    void *step_user;
} ddpm_bpd_config;
void ddpm_bpd_config_default(ddpm_bpd_config *c);
ddpm_status ddpm_bpd_loop(const ddpm_diffusion *d, const ddpm_bpd_config *cfg, ddpm_model_fn model, void *model_user,
                          const float *x0, int64_t N, int64_t D, int64_t first_item, double *bpd, double *prior,
                          double *decoder);

/* ===================================================================================== evaluation against a dataset
   What `ddpm eval` measures, as library calls: a reference (a dataset's training and test images and a feature
   classifier trained on it) scores a set of images with all of the numbers above at once; calibration sets of real
   and degraded data show what the numbers mean; stored samples are read back; bits/dim runs over test images.
   The held-out and calibration subsets come from a fixed shuffle of each split (the same in every run), since
   the files' order is not random. Everything is deterministic. */

#define DDPM_EVAL_MAX_CLASSES 1000
typedef struct ddpm_eval_reference ddpm_eval_reference;
/* Loads the classifier at classifier_path and the training and test sets of `dataset` (a ddpm_dataset_load kind;
   data_dir NULL: its default folder), and the test set's feature statistics. Refuses a classifier trained on
   another dataset (when it records one), or made for another image size or channel count. */
ddpm_status ddpm_eval_reference_create(const char *dataset, const char *data_dir, const char *classifier_path,
                                       ddpm_eval_reference **out);
void ddpm_eval_reference_free(ddpm_eval_reference *r);
typedef struct {
    int channels, size;             /* of the dataset's images: [channels, size, size] */
    int num_classes;                /* the classifier's */
    int64_t test_count, train_count;
    ddpm_classifier_info classifier;
} ddpm_eval_reference_info;
void ddpm_eval_reference_get_info(const ddpm_eval_reference *r, ddpm_eval_reference_info *info);

/* DDPM_OK when model m takes (and so makes) the reference's images; else DDPM_ERR_INVALID_ARG "makes SxS images with C
   channels; DATASET images are SxS with C". */
ddpm_status ddpm_eval_reference_check_model(const ddpm_eval_reference *r, const ddpm_model *m);

/* The numbers of one set of n images. */
typedef struct {
    int64_t num;                    /* n */
    int num_classes;                /* K: the entries of histogram */
    double fid;                     /* Frechet distance of the classifier features to the test set's */
    double spread;                  /* trace of the feature covariance over the test set's (FID at a given n is
                                       lower for a smaller one) */
    double entropy;                 /* of the predicted-label histogram (uniform: ln K) */
    double confidence;              /* mean probability of the predicted label */
    double agreement;               /* fraction predicted as their given label; NaN without labels */
    double nearest;                 /* mean distance to the nearest training image (pixel space) */
    double held_out_nearest;        /* the same for n held-out test images */
    double ratio;                   /* memorisation ratio nearest / held_out_nearest: about 1 healthy, 0 copies */
    double pixel_mean;              /* mean of every value (model space) */
    int64_t histogram[DDPM_EVAL_MAX_CLASSES];   /* [K] images per predicted label */
} ddpm_eval_metrics;
/* Scores x [n, C, S, S] (model space) with labels [n] (the conditioning labels; NULL: none). 2 <= n <= the test
   set's size: the held-out images of the ratio are the first n of the test set's shuffle (computed once per n and
   kept in r). A value that is not finite is DDPM_ERR_NUMERIC, naming the image and the value's index. */
ddpm_status ddpm_eval_score(ddpm_eval_reference *r, const float *x, int64_t n, const int64_t *labels,
                            ddpm_eval_metrics *out);

/* Scores the calibration sets of N images each, real and degraded data that show what the numbers mean:
   "test images" (test images N .. 2N - 1 of the shuffle: never among the held-out ones), "training images" (the
   first N of the training set's shuffle: copies, ratio 0), "test + noise 0.1" (the test images plus Gaussian noise
   of standard deviation 0.2 in model space, stream (NOISING, 0, 0) of seed, clipped to [-1, 1]), "test blurred"
   (a 3x3 binomial blur) and "test, classes 0-4" (test images of the first K/2 classes from position N of the
   shuffle). on_set (may be NULL) is called before each set with its name and the images it has, `available`: a
   set with fewer than N (when the test set is too small) is skipped; non-OK stops. rows and names
   [DDPM_EVAL_CALIBRATION_SETS] receive the scored sets in order (names: static strings), *nrows how many.
   2 <= N, 2 N <= the test set's size. A scoring failure's message begins with the set's name. */
#define DDPM_EVAL_CALIBRATION_SETS 5
typedef ddpm_status (*ddpm_eval_set_fn)(void *user, const char *name, int64_t available, int64_t N);
ddpm_status ddpm_eval_calibrate(ddpm_eval_reference *r, int64_t N, uint64_t seed, ddpm_eval_set_fn on_set,
                                void *user, ddpm_eval_metrics *rows, const char **names, int *nrows);

/* Stored samples, read for scoring against r: a 'ddpm sample --save-tensor' safetensors file (tensor 'samples'
   [N, C, S, S], or its only tensor; 'labels' [N] when present), or a folder of PNGs (every *.png in sorted name
   order, each C x S x S). 2 <= N (a file) and N <= the test set's size. Messages begin with the path. */
typedef struct {
    int64_t num;
    float *x;                       /* [num, C, S, S] in model space */
    int64_t *labels;                /* [num], or NULL when there are none */
} ddpm_eval_samples;
ddpm_status ddpm_eval_samples_read(const ddpm_eval_reference *r, const char *path, ddpm_eval_samples *out);
void ddpm_eval_samples_free(ddpm_eval_samples *s);   /* zeroes s */

/* Bits/dim (ddpm_bpd_loop with cfg) of test images first .. first + num - 1 in the files' order, in chunks of
   `batch` images through ddpm_guided_fn over `model` unconditionally (the null class of a conditional model, which
   must have one). The model takes the dataset's image size and channels and is prepared for batch images.
   on_chunk (may be NULL) is called before each chunk with the chunk's first image counted from `first` and its
   size; non-OK stops the run. The results do not depend on batch. */
typedef ddpm_status (*ddpm_eval_chunk_fn)(void *user, int64_t first, int64_t n);
typedef struct {
    int64_t first, num;             /* the test images */
    double bits_per_dim;            /* their mean */
    double standard_error;          /* of the mean: sample standard deviation / sqrt(num); 0 for one image */
    double prior, decoder;          /* the means of the prior and decoder terms */
} ddpm_eval_bpd_result;
ddpm_status ddpm_eval_bpd(const ddpm_eval_reference *r, ddpm_model *model, const ddpm_diffusion *d,
                          const ddpm_bpd_config *cfg, int64_t first, int64_t num, int batch,
                          ddpm_eval_chunk_fn on_chunk, void *chunk_user, ddpm_eval_bpd_result *out);

/* The results of an evaluation as a JSON document (cJSON's indented text and a line break; free with ddpm_free):
   {"data", "what", "reference_images": info->test_count, "classifier_test_accuracy", "samples": the scored samples
   (when samples is not NULL), "calibration": [the ncal calibration sets] (when ncal > 0), "nll": the bits/dim
   (when nll is not NULL)}. Each set is {"name", "num", "fid", "feature_spread", "label_entropy",
   "mean_confidence", "label_agreement" (only when it is a number), "label_histogram": [K counts],
   "memorisation_ratio", "nearest_train_distance", "held_out_nearest_train_distance", "mean_pixel"}; the bits/dim
   {"bits_per_dim", "standard_error", "prior_bits_per_dim", "decoder_bits_per_dim", "num", "first"}. */
typedef struct {
    const char *data, *what;                   /* the dataset's name; what was scored, in words */
    const ddpm_eval_reference_info *info;
    const ddpm_eval_metrics *samples;          /* NULL: none */
    const ddpm_eval_metrics *cal;              /* [ncal] with their names */
    const char *const *cal_names;
    int ncal;
    const ddpm_eval_bpd_result *nll;           /* NULL: none */
} ddpm_eval_results;
ddpm_status ddpm_eval_results_json(const ddpm_eval_results *r, char **text);

#ifdef __cplusplus
}
#endif
#endif /* DDPM_H */
