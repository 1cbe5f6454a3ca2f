/* sampler.h — internal pieces of the samplers: config checks, a double-precision model loop (used by
   ddpm_sample_loop and by tests that need the f64 reference path), and the DPM-Solver++ update. */
#ifndef DD_SAMPLER_H
#define DD_SAMPLER_H

#include <stdint.h>
#include "ddpm.h"

/* Element counts at or above which elementwise sampler loops use OpenMP (each element is computed the
   same way on any thread, so results do not depend on the thread count). */
#define DD_SAMPLER_PAR_MIN 32768

/* A network in double: out [N, D] from x [N, D] at timesteps t [N]. */
typedef ddpm_status (*dd_model_f64_fn)(void *user, double *out, const double *x, const int64_t *t, int64_t N,
                                       int64_t D);

/* Validates cfg for a diffusion with T steps; the message names the field and its valid range. */
ddpm_status dd_sampler_check_config(const ddpm_sampler_config *cfg, int T);
const char *dd_sampler_kind_name(ddpm_sampler_kind kind);

/* ddpm_sample_loop with a double-precision model: the same steps, noise and callbacks. */
ddpm_status dd_sampler_loop_f64(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, dd_model_f64_fn model,
                                void *model_user, double *x, int64_t N, int64_t D, int64_t first_item);

/* A float network (ddpm_model_fn) as a dd_model_f64_fn: x is rounded to float, the output widened. init checks
   the shape and the callback (messages start with fn) and makes the float buffers [N, D] once; free accepts a
   failed init. */
typedef struct {
    ddpm_model_fn model;
    void *user;
    float *xf, *outf;
} dd_float_model;
ddpm_status dd_float_model_init(dd_float_model *fm, ddpm_model_fn model, void *user, int64_t N, int64_t D,
                                const char *fn);
void dd_float_model_free(dd_float_model *fm);
ddpm_status dd_float_model_call(void *user /* dd_float_model */, double *out, const double *x, const int64_t *t,
                                int64_t N, int64_t D);

/* Loop helpers shared with the applications: a failed callback keeps its message (or gets one naming it),
   prefixed with what failed at which step; a non-finite value is reported with its image and element. */
ddpm_status dd_sampler_callback_failed(ddpm_status st, const char *what, int step, int64_t t);
ddpm_status dd_sampler_check_finite(const double *v, int64_t N, int64_t D, const char *what, int step, int64_t t);
/* Shape, image range and finiteness of a batch x [N, D] (messages start with fn and name x as what);
   *nd = N * D. */
ddpm_status dd_sampler_check_batch(const char *fn, const char *what, const double *x, int64_t N, int64_t D,
                                   int64_t first_item, size_t *nd);

/* ------------------------------------------------------------------ the reverse-loop skeleton
   What the sampler loop, DDIM inversion and inpainting share: the checked arguments, the timestep list, the
   working buffers and the pieces of one step (the model call, the sampler's noise and the DDPM / DDIM update,
   the finiteness check and the step callback). */
typedef struct {
    const ddpm_diffusion *d;
    const ddpm_sampler_config *cfg;
    dd_model_f64_fn model;
    void *model_user;
    int64_t N, D, first_item;
    size_t nd;                 /* N * D */
    int need_noise;            /* the update draws noise: ddpm, or ddim with eta > 0 */
    int64_t *ts;               /* [steps] the timestep list */
    int64_t *tvec;             /* [N] */
    double *mout, *x0, *noise; /* [N, D]: model output, x0 prediction, sampler noise (when need_noise) */
} dd_loop;

/* Checks d, cfg (against d->T), the callback and x [N, D] (named `what` in messages starting with fn), then
   makes the timestep list and the buffers. dd_loop_free accepts a failed init. */
ddpm_status dd_loop_init(dd_loop *L, const char *fn, const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                         dd_model_f64_fn model, void *model_user, const double *x, const char *what, int64_t N,
                         int64_t D, int64_t first_item);
void dd_loop_free(dd_loop *L);
/* L->mout = model(x at timestep t), checked finite; `step` names the step in messages. */
ddpm_status dd_loop_model(dd_loop *L, const double *x, int64_t t, int step);
/* The timestep after a downward DDPM / DDIM step from list position p (-1: after the last step). */
int64_t dd_loop_prev(const dd_loop *L, int p);
/* Whether the draws of loop operation k are shared by every image (k < cfg->repeat_noise_steps). */
int dd_loop_shared(const dd_loop *L, int64_t k);
/* out [N, D]: row r = normal numbers of stream (purpose, stream_step, first_item + r); shared: image 0's stream
   for every row, wherever the batch starts. */
void dd_loop_draw(const dd_loop *L, uint32_t purpose, int64_t stream_step, int shared, double *out);
/* The DDPM / DDIM update of x from t to prev_t with the output in L->mout (x0 prediction into L->x0); the noise
   of loop operation k comes from cfg->noise, else stream (SAMPLER, k), shared while dd_loop_shared(k). */
ddpm_status dd_loop_update(dd_loop *L, double *x, int64_t t, int64_t prev_t, int64_t k, int step);
/* The end of a step: x (named `what`) is finite, then cfg->on_step(step, num_steps, t, x, L->x0). */
ddpm_status dd_loop_report(dd_loop *L, const double *x, const char *what, int step, int num_steps, int64_t t);

/* ddpm_ddim_invert and ddpm_inpaint_loop with a double-precision model. */
ddpm_status dd_ddim_invert_f64(const ddpm_diffusion *d, const ddpm_sampler_config *cfg, dd_model_f64_fn model,
                               void *model_user, double *x, int64_t N, int64_t D);
ddpm_status dd_inpaint_loop_f64(const ddpm_diffusion *d, const ddpm_sampler_config *cfg,
                                const ddpm_inpaint_config *ic, dd_model_f64_fn model, void *model_user, double *x,
                                const double *known, const double *mask, int64_t N, int64_t D, int64_t first_item);

/* ------------------------------------------------------------------ DPM-Solver++ (Lu et al. 2022)
   A point of the VP path in sigma-space: sigma = sqrt((1 - alpha_bar) / alpha_bar), alpha_t = 1/sqrt(sigma^2+1),
   sigma_t = sigma alpha_t, lambda = log alpha_t - log sigma_t (+inf at sigma = 0). */
typedef struct {
    double sigma, alpha_t, sigma_t, lambda;
} dd_dpm_point;

dd_dpm_point dd_dpm_point_from_sigma(double sigma);
/* Data prediction x0 [n] from the model output at point p (dpmsolver++ convert_model_output); clamps to
   [-clip_range, clip_range] when clip_range > 0. */
void dd_dpm_data_prediction(ddpm_prediction pred, const dd_dpm_point *p, const double *model_out, const double *x,
                            double *x0, int64_t n, double clip_range);
/* One multistep update from point s0 to point t: first order when m1 is NULL (or t has sigma 0, where the
   result is m0 itself), else the 2M midpoint update with the previous data prediction m1 at point s1.
   x [n] is updated in place. */
void dd_dpm_update(double *x, const double *m0, const double *m1, const dd_dpm_point *s1, const dd_dpm_point *s0,
                   const dd_dpm_point *t, int64_t n);

#endif
