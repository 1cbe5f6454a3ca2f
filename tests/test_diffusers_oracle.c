/* test_diffusers_oracle.c — schedules, single DDPM/DDIM steps, add_noise/velocity, timestep lists and full
   DDIM-50 / DDPM-1000 / DPM-Solver++-20 loops against diffusers v0.27.2 (tests/data/oracle.json).
   Tolerances: f64 entries 1e-10 and f32 entries 1e-4, relative to the largest magnitude of the case;
   schedules 1e-12 relative per element. Prints the worst error of every group. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "testutil.h"

/* DD_ORACLE_VERBOSE=1 prints every comparison's relative error. */

#define TOL_F64 1e-10
#define TOL_F32 1e-4
#define TOL_SCHED 1e-12

static cJSON *O;

/* ------------------------------------------------------------------------------------ bookkeeping */

typedef struct {
    const char *name;
    double worst;   /* max |got - want| / max|want| over the group */
    int compared;
} group_stat;

static group_stat groups[64];
static int ngroups;

static group_stat *group(const char *name) {
    for (int i = 0; i < ngroups; i++)
        if (strcmp(groups[i].name, name) == 0) return &groups[i];
    groups[ngroups].name = name;
    return &groups[ngroups++];
}

/* dd_check_close(tol, floor): fails when max|got - want| > tol * max(max|want|, floor); records the group's
   worst relative error. */
static void cmp_floor(const char *grp, const char *what, const double *got, const double *want, size_t n, double tol,
                      double floor) {
    double scale = floor, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]);
        if (!(e <= err)) err = e;
    }
    group_stat *g = group(grp);
    double rel = scale > 0 ? err / scale : err;
    if (!(rel <= g->worst)) g->worst = rel;
    g->compared++;
    char label[512];
    snprintf(label, sizeof label, "%.100s: %.300s", grp, what);
    if (getenv("DD_ORACLE_VERBOSE")) printf("%-70s rel %.3e\n", label, rel);
    dd_check_close(label, got, want, n, tol, floor);
}

/* Tolerance x max|want| (dd_check_close with floor_scale 0). */
static void cmp(const char *grp, const char *what, const double *got, const double *want, size_t n, double tol) {
    cmp_floor(grp, what, got, want, n, tol, 0.0);
}

/* The largest magnitude over the arrays of a case. */
static double case_scale(double *const *arrays, int k, size_t n) {
    double s = 0;
    for (int a = 0; a < k; a++)
        for (size_t i = 0; arrays[a] && i < n; i++) s = fmax(s, fabs(arrays[a][i]));
    return s;
}

/* Element-wise relative comparison (schedules): max |got - want| / |want| <= tol. */
static void cmp_elementwise(const char *grp, const char *what, const double *got, const double *want, size_t n,
                            double tol) {
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / fabs(want[i]);
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    group_stat *g = group(grp);
    if (!(worst <= g->worst)) g->worst = worst;
    g->compared++;
    CHECK_MSG(worst <= tol, "%s: %s: element-wise relative error %.3e at [%zu] (got %.17g want %.17g)", grp, what,
              worst, at, got[at], want[at]);
}

/* Scalars of a step case (alpha_prod_t, ..., variance) relative to the largest magnitude in the case, as the
   arrays are; f64 scalars must also agree element-wise to 1e-12. */
static void cmp_scalars(const char *grp, const char *what, const double *got, const double *want, int k, double tol,
                        double scale, int f64) {
    for (int i = 0; i < k; i++) scale = fmax(scale, fabs(want[i]));
    char label[256];
    snprintf(label, sizeof label, "%s scalars", what);
    cmp_floor(grp, label, got, want, (size_t)k, tol, scale);
    if (f64)
        for (int i = 0; i < k; i++)
            CHECK_MSG(fabs(got[i] - want[i]) <= 1e-12 * fabs(want[i]), "%s: %s: scalar %d got %.17g want %.17g", grp,
                      label, i, got[i], want[i]);
}

static double *arr(const char *path, size_t *n) {
    size_t m = 0;
    double *a = dd_json_array(dd_json_path(O, path), &m);
    if (!a) {
        fprintf(stderr, "oracle.json: missing %s\n", path);
        exit(1);
    }
    if (n) *n = m;
    return a;
}

static double *arr_at(cJSON *node, const char *key, size_t *n) {
    size_t m = 0;
    double *a = dd_json_array(cJSON_GetObjectItemCaseSensitive(node, key), &m);
    if (!a) {
        fprintf(stderr, "oracle.json: missing field %s\n", key);
        exit(1);
    }
    if (n) *n = m;
    return a;
}

static const char *str_at(cJSON *node, const char *key) {
    cJSON *s = cJSON_GetObjectItemCaseSensitive(node, key);
    return cJSON_IsString(s) ? s->valuestring : "";
}

static double num_at(cJSON *node, const char *key) {
    cJSON *s = cJSON_GetObjectItemCaseSensitive(node, key);
    return cJSON_IsNumber(s) ? s->valuedouble : NAN;
}

static int bool_at(cJSON *node, const char *key) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(node, key)); }

static ddpm_prediction prediction_of(const char *s) {
    if (strcmp(s, "sample") == 0) return DDPM_PRED_X0;
    if (strcmp(s, "v_prediction") == 0) return DDPM_PRED_V;
    return DDPM_PRED_EPS;
}

/* ------------------------------------------------------------------------------------ schedules */

static void test_schedules(void) {
    const char *Ts[] = {"T1000", "T50"};
    const char *names[] = {"linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"};
    char path[256];
    for (int a = 0; a < 2; a++) {
        int T = atoi(Ts[a] + 1);
        for (int b = 0; b < 4; b++) {
            /* "cosine" is the same schedule as "squaredcos_cap_v2". */
            for (int alias = 0; alias < (b == 2 ? 2 : 1); alias++) {
                ddpm_diffusion *d = dd_test_diffusion(alias ? "cosine" : names[b], T);
                size_t n;
                snprintf(path, sizeof path, "schedules.%s.%s.f64.betas", Ts[a], names[b]);
                double *betas = arr(path, &n);
                CHECK(n == (size_t)T);
                snprintf(path, sizeof path, "schedules.%s.%s.f64.alphas_cumprod", Ts[a], names[b]);
                double *acp = arr(path, &n);
                cmp_elementwise("schedules", path, d->betas, betas, (size_t)T, TOL_SCHED);
                cmp_elementwise("schedules", path, d->alphas_cumprod, acp, (size_t)T, TOL_SCHED);
                /* diffusers' float32 tables differ from the double ones by float rounding only. */
                snprintf(path, sizeof path, "schedules.%s.%s.diffusers_f32.alphas_cumprod", Ts[a], names[b]);
                double *acp32 = arr(path, &n);
                cmp("schedules_vs_diffusers_f32", path, d->alphas_cumprod, acp32, (size_t)T, TOL_F32);
                free(betas);
                free(acp);
                free(acp32);
                ddpm_diffusion_free(d);
            }
        }
    }
    /* Ho et al. 2020 linear schedule, and improved-diffusion's scale-to-T variant. */
    const char *paper[] = {"T1000", "T50_unscaled", "T50_scaled"};
    for (int i = 0; i < 3; i++) {
        ddpm_schedule_config sc;
        ddpm_schedule_config_default(&sc);
        sc.T = i == 0 ? 1000 : 50;
        sc.scale_to_T = i == 2;
        ddpm_diffusion *d = NULL;
        CHECK_OK(ddpm_diffusion_create(&sc, &d));
        if (!d) continue;
        size_t n;
        snprintf(path, sizeof path, "schedules.ddpm_paper_linear.%s.betas", paper[i]);
        double *betas = arr(path, &n);
        CHECK(n == (size_t)sc.T);
        cmp_elementwise("ddpm_paper_linear", path, d->betas, betas, n, TOL_SCHED);
        snprintf(path, sizeof path, "schedules.ddpm_paper_linear.%s.alphas_cumprod", paper[i]);
        double *acp = arr(path, &n);
        cmp_elementwise("ddpm_paper_linear", path, d->alphas_cumprod, acp, n, TOL_SCHED);
        snprintf(path, sizeof path, "schedules.ddpm_paper_linear.%s", paper[i]);
        cJSON *node = dd_json_path(O, path);
        CHECK(fabs(d->betas[0] - num_at(node, "beta_start")) <= 1e-15 * num_at(node, "beta_start"));
        CHECK(fabs(d->betas[sc.T - 1] - num_at(node, "beta_end")) <= 1e-15 * num_at(node, "beta_end"));
        free(betas);
        free(acp);
        ddpm_diffusion_free(d);
    }
}

/* ------------------------------------------------------------------------------------ single steps */

static void test_ddpm_step_cases(const ddpm_diffusion *d) {
    size_t n;
    double *x = arr("ddpm_step.sample", &n);
    double *mo = arr("ddpm_step.model_output", NULL);
    double *nz = arr("ddpm_step.noise", NULL);
    double *got = malloc(sizeof(double) * n), *x0 = malloc(sizeof(double) * n);
    cJSON *cases = dd_json_path(O, "ddpm_step.cases"), *c;
    int count = 0;
    cJSON_ArrayForEach(c, cases) {
        int f64 = strcmp(str_at(c, "precision"), "f64") == 0;
        const char *grp = f64 ? "ddpm_step f64" : "ddpm_step f32";
        double tol = f64 ? TOL_F64 : TOL_F32;
        ddpm_sampler_config cfg;
        ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
        cfg.prediction = prediction_of(str_at(c, "prediction_type"));
        cfg.variance = strcmp(str_at(c, "variance_type"), "fixed_large") == 0 ? DDPM_VAR_FIXED_LARGE
                                                                              : DDPM_VAR_FIXED_SMALL;
        cfg.clip_sample = bool_at(c, "clip_sample");
        int64_t t = (int64_t)num_at(c, "timestep"), prev = (int64_t)num_at(c, "prev_timestep");
        CHECK(prev == t - 1);
        char what[160];
        snprintf(what, sizeof what, "t=%lld %s %s clip=%d", (long long)t, str_at(c, "prediction_type"),
                 str_at(c, "variance_type"), cfg.clip_sample);
        /* The case's outputs; every comparison is relative to the largest magnitude among them. */
        double *w_prev = arr_at(c, "prev_sample", NULL), *w_mean = arr_at(c, "prev_sample_mean", NULL);
        double *w_x0 = cJSON_GetObjectItemCaseSensitive(c, "pred_original_sample")
                           ? arr_at(c, "pred_original_sample", NULL) : NULL;
        double *all[3] = {w_prev, w_mean, w_x0};
        double scale = case_scale(all, 3, n);
        ddpm_step_info info;
        /* With the injected noise. */
        CHECK_OK(ddpm_ddpm_step(d, &cfg, t, prev, mo, x, nz, got, x0, (int64_t)n, &info));
        cmp_floor(grp, what, got, w_prev, n, tol, scale);
        if (w_x0) cmp_floor(grp, what, x0, w_x0, n, tol, scale);
        double sc_got[3] = {info.alpha_prod_t, info.alpha_prod_t_prev, info.variance};
        double sc_want[3] = {num_at(c, "alpha_prod_t"), num_at(c, "alpha_prod_t_prev"), num_at(c, "variance")};
        cmp_scalars(grp, what, sc_got, sc_want, 3, tol, scale, f64);
        /* Without noise: the posterior mean. */
        CHECK_OK(ddpm_ddpm_step(d, &cfg, t, prev, mo, x, NULL, got, NULL, (int64_t)n, NULL));
        cmp_floor(grp, what, got, w_mean, n, tol, scale);
        free(w_prev);
        free(w_mean);
        free(w_x0);
        CHECK(bool_at(c, "noise_used") == (t > 0));
        count++;
    }
    CHECK(count == 96);
    free(x);
    free(mo);
    free(nz);
    free(got);
    free(x0);
}

static void test_ddim_cases(const ddpm_diffusion *d) {
    size_t n;
    double *x = arr("ddim.sample", &n);
    double *mo = arr("ddim.model_output", NULL);
    double *nz = arr("ddim.variance_noise", NULL);
    double *got = malloc(sizeof(double) * n), *x0 = malloc(sizeof(double) * n);
    cJSON *cases = dd_json_path(O, "ddim.cases"), *c;
    int count = 0;
    cJSON_ArrayForEach(c, cases) {
        int f64 = strcmp(str_at(c, "precision"), "f64") == 0;
        const char *grp = f64 ? "ddim_step f64" : "ddim_step f32";
        double tol = f64 ? TOL_F64 : TOL_F32;
        ddpm_sampler_config cfg;
        ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
        cfg.prediction = prediction_of(str_at(c, "prediction_type"));
        cfg.clip_sample = bool_at(c, "clip_sample");
        cfg.set_alpha_to_one = bool_at(c, "set_alpha_to_one");
        cfg.eta = num_at(c, "eta");
        cfg.spacing = strcmp(str_at(c, "timestep_spacing"), "trailing") == 0 ? DDPM_SPACING_TRAILING
                                                                             : DDPM_SPACING_LEADING;
        int64_t t = (int64_t)num_at(c, "timestep"), prev = (int64_t)num_at(c, "prev_timestep");
        CHECK(prev == t - 1000 / 50);
        char what[160];
        snprintf(what, sizeof what, "t=%lld %s %s clip=%d eta=%g a1=%d", (long long)t, str_at(c, "timestep_spacing"),
                 str_at(c, "prediction_type"), cfg.clip_sample, cfg.eta, cfg.set_alpha_to_one);
        double *w_prev = arr_at(c, "prev_sample", NULL), *w_x0 = arr_at(c, "pred_original_sample", NULL);
        double *all[2] = {w_prev, w_x0};
        double scale = case_scale(all, 2, n);
        ddpm_step_info info;
        CHECK_OK(ddpm_ddim_step(d, &cfg, t, prev, mo, x, cfg.eta > 0 ? nz : NULL, got, x0, (int64_t)n, &info));
        cmp_floor(grp, what, got, w_prev, n, tol, scale);
        cmp_floor(grp, what, x0, w_x0, n, tol, scale);
        double sc_got[4] = {info.alpha_prod_t, info.alpha_prod_t_prev, info.variance, info.std_dev_t};
        double sc_want[4] = {num_at(c, "alpha_prod_t"), num_at(c, "alpha_prod_t_prev"), num_at(c, "variance"),
                             num_at(c, "std_dev_t")};
        cmp_scalars(grp, what, sc_got, sc_want, 4, tol, scale, f64);
        free(w_prev);
        free(w_x0);
        count++;
    }
    CHECK(count == 148);
    free(x);
    free(mo);
    free(nz);
    free(got);
    free(x0);
}

static void test_add_noise(void) {
    size_t n;
    double *x0 = arr("add_noise.x0", &n);
    double *nz = arr("add_noise.noise", NULL);
    size_t nt;
    double *tt = dd_json_numbers(dd_json_path(O, "add_noise.timesteps"), &nt);
    int64_t t[4];
    CHECK(nt == 4 && n == 16);
    for (int i = 0; i < 4; i++) t[i] = (int64_t)tt[i];
    const int64_t N = 4, D = (int64_t)(n / 4);
    float x0f[16], nzf[16], outf[16];
    double out[16], outd[16];
    for (size_t i = 0; i < n; i++) {
        x0f[i] = (float)x0[i];
        nzf[i] = (float)nz[i];
    }
    cJSON *c;
    cJSON_ArrayForEach(c, dd_json_path(O, "add_noise.cases")) {
        const char *sched = str_at(c, "beta_schedule");
        int f64 = strcmp(str_at(c, "precision"), "f64") == 0;
        ddpm_diffusion *d = dd_test_diffusion(sched, 1000);
        const char *grp = f64 ? "add_noise f64" : "add_noise f32";
        double *want_noisy = arr_at(c, "noisy", NULL), *want_v = arr_at(c, "velocity", NULL);
        if (f64) {
            ddpm_q_sample_f64(d, out, x0, nz, t, N, D);
            cmp(grp, sched, out, want_noisy, n, TOL_F64);
            ddpm_velocity_f64(d, out, x0, nz, t, N, D);
            cmp(grp, sched, out, want_v, n, TOL_F64);
        } else {
            ddpm_q_sample(d, outf, x0f, nzf, t, N, D);
            for (size_t i = 0; i < n; i++) outd[i] = outf[i];
            cmp(grp, sched, outd, want_noisy, n, TOL_F32);
            ddpm_velocity(d, outf, x0f, nzf, t, N, D);
            for (size_t i = 0; i < n; i++) outd[i] = outf[i];
            cmp(grp, sched, outd, want_v, n, TOL_F32);
            ddpm_training_target(d, DDPM_PRED_V, outf, x0f, nzf, t, N, D);
            for (size_t i = 0; i < n; i++) outd[i] = outf[i];
            cmp(grp, sched, outd, want_v, n, TOL_F32);
        }
        free(want_noisy);
        free(want_v);
        ddpm_diffusion_free(d);
    }
    free(x0);
    free(nz);
    free(tt);
}

/* ------------------------------------------------------------------------------------ timestep lists */

static void check_list(const char *path, ddpm_sampler_kind kind, int steps, ddpm_spacing spacing, int offset) {
    size_t n;
    double *want = dd_json_numbers(dd_json_path(O, path), &n);
    CHECK_MSG(want != NULL && n == (size_t)steps, "%s", path);
    if (!want) return;
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, kind);
    cfg.steps = steps;
    cfg.spacing = spacing;
    cfg.steps_offset = offset;
    int64_t *got = malloc(sizeof(int64_t) * (size_t)steps);
    CHECK_OK(ddpm_sampler_timesteps(&cfg, 1000, got));
    int bad = -1;
    for (size_t i = 0; i < n; i++)
        if (got[i] != (int64_t)want[i]) {
            bad = (int)i;
            break;
        }
    CHECK_MSG(bad < 0, "%s: entry %d is %lld, want %lld", path, bad, bad < 0 ? 0LL : (long long)got[bad],
              bad < 0 ? 0LL : (long long)want[bad]);
    group("timestep lists")->compared++;
    free(want);
    free(got);
}

static void test_timestep_lists(void) {
    check_list("ddim.set_timesteps_50_T1000.leading_offset0", DDPM_SAMPLER_DDIM, 50, DDPM_SPACING_LEADING, 0);
    check_list("ddim.set_timesteps_50_T1000.leading_offset1", DDPM_SAMPLER_DDIM, 50, DDPM_SPACING_LEADING, 1);
    check_list("ddim.set_timesteps_50_T1000.trailing_offset0", DDPM_SAMPLER_DDIM, 50, DDPM_SPACING_TRAILING, 0);
    check_list("ddim.set_timesteps_50_T1000.linspace_offset0", DDPM_SAMPLER_DDIM, 50, DDPM_SPACING_LINSPACE, 0);
    check_list("ddim.ddpm_set_timesteps_50_T1000.leading", DDPM_SAMPLER_DDPM, 50, DDPM_SPACING_LEADING, 0);
    check_list("ddim.ddpm_set_timesteps_50_T1000.trailing", DDPM_SAMPLER_DDPM, 50, DDPM_SPACING_TRAILING, 0);
    check_list("ddim.ddpm_set_timesteps_50_T1000.linspace", DDPM_SAMPLER_DDPM, 50, DDPM_SPACING_LINSPACE, 0);
    check_list("loops.ddim50_eta0.timesteps", DDPM_SAMPLER_DDIM, 50, DDPM_SPACING_LEADING, 0);
    check_list("loops.ddpm1000_ancestral.timesteps", DDPM_SAMPLER_DDPM, 1000, DDPM_SPACING_LEADING, 0);
    check_list("loops.dpmsolverpp_20.set_timesteps_20_T1000.linspace", DDPM_SAMPLER_DPMPP2M, 20,
               DDPM_SPACING_LINSPACE, 0);
    check_list("loops.dpmsolverpp_20.set_timesteps_20_T1000.leading", DDPM_SAMPLER_DPMPP2M, 20,
               DDPM_SPACING_LEADING, 0);
    check_list("loops.dpmsolverpp_20.set_timesteps_20_T1000.trailing", DDPM_SAMPLER_DPMPP2M, 20,
               DDPM_SPACING_TRAILING, 0);
    check_list("loops.dpmsolverpp_20.order2.timesteps", DDPM_SAMPLER_DPMPP2M, 20, DDPM_SPACING_LINSPACE, 0);
    check_list("loops.dpmsolverpp_20.order1.timesteps", DDPM_SAMPLER_DPMPP2M, 20, DDPM_SPACING_LINSPACE, 0);
}

/* ------------------------------------------------------------------------------------ loops */

/* The stand-in network eps(x, t) = 0.1 x + 0.01 t / 1000. The float version is what the oracle's f32 runs
   evaluate: fl32(fl32(0.1) x) + fl32(0.01 t / 1000 in double). */
static ddpm_status model_f32(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user;
    for (int64_t n = 0; n < N; n++) {
        float c = (float)(0.01 * (double)t[n] / 1000.0);
        for (int64_t j = 0; j < D; j++) {
            float a = 0.1f * x[n * D + j];
            out[n * D + j] = a + c;
        }
    }
    return DDPM_OK;
}

static ddpm_status model_f64(void *user, double *out, const double *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++) out[n * D + j] = 0.1 * x[n * D + j] + 0.01 * (double)t[n] / 1000.0;
    return DDPM_OK;
}

/* Collects x and x0_pred after every step: [steps, N*D] each. */
typedef struct {
    double *xs, *x0s;
    int64_t nd;
    int calls;
    const int64_t *want_t; /* expected timesteps, or NULL */
} recorder;

static ddpm_status record_step(void *user, int i, int num_steps, int64_t t, const double *x, const double *x0,
                               int64_t N, int64_t D) {
    recorder *r = user;
    if (i != r->calls || N * D != r->nd || (r->want_t && r->want_t[i] != t) || i >= num_steps) {
        fprintf(stderr, "step callback: unexpected call i=%d (calls %d) t=%lld\n", i, r->calls, (long long)t);
        dd_test_failures++;
        return DDPM_ERR_INTERNAL;
    }
    memcpy(r->xs + (size_t)i * (size_t)r->nd, x, sizeof(double) * (size_t)r->nd);
    memcpy(r->x0s + (size_t)i * (size_t)r->nd, x0, sizeof(double) * (size_t)r->nd);
    r->calls++;
    return DDPM_OK;
}

/* Replays loops.ddpm1000_ancestral.noise: noise[i] at loop step i (t = 999 - i), never at t = 0. */
typedef struct {
    const double *noise; /* [999, D] */
    int64_t D;
    int calls;
} replay;

static ddpm_status replay_noise(void *user, double *out, int step, int64_t t, int64_t N, int64_t D) {
    replay *r = user;
    if (N != 1 || D != r->D || step < 0 || step >= 999 || t != 999 - step) {
        fprintf(stderr, "noise callback: unexpected step %d t %lld\n", step, (long long)t);
        dd_test_failures++;
        return DDPM_ERR_INTERNAL;
    }
    memcpy(out, r->noise + (size_t)step * (size_t)D, sizeof(double) * (size_t)D);
    r->calls++;
    return DDPM_OK;
}

/* Runs one loop in f64 (double model, internal path) or f32 (public float-model path). */
static void run_loop(const ddpm_diffusion *d, ddpm_sampler_config *cfg, int f64, const double *xT, int64_t nd,
                     recorder *rec) {
    double *x = malloc(sizeof(double) * (size_t)nd);
    memcpy(x, xT, sizeof(double) * (size_t)nd);
    cfg->on_step = record_step;
    cfg->step_user = rec;
    rec->calls = 0;
    if (f64) CHECK_OK(dd_sampler_loop_f64(d, cfg, model_f64, NULL, x, 1, nd, 0));
    else CHECK_OK(ddpm_sample_loop(d, cfg, model_f32, NULL, x, 1, nd, 0));
    CHECK(rec->calls == cfg->steps);
    /* The returned x is the last recorded sample. */
    CHECK(memcmp(x, rec->xs + (size_t)(cfg->steps - 1) * (size_t)nd, sizeof(double) * (size_t)nd) == 0);
    free(x);
}

static void test_loop_ddim50(const ddpm_diffusion *d) {
    size_t nd, ns;
    double *xT = arr("loops.ddim50_eta0.x_T", &nd);
    recorder rec = {malloc(sizeof(double) * 50 * nd), malloc(sizeof(double) * 50 * nd), (int64_t)nd, 0, NULL};
    cJSON *r;
    cJSON_ArrayForEach(r, dd_json_path(O, "loops.ddim50_eta0.runs")) {
        int f64 = strcmp(str_at(r, "precision"), "f64") == 0;
        ddpm_sampler_config cfg;
        ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
        cfg.clip_sample = bool_at(r, "clip_sample");
        run_loop(d, &cfg, f64, xT, (int64_t)nd, &rec);
        double *want = arr_at(r, "samples", &ns);
        CHECK(ns == 50 * nd);
        char what[64];
        snprintf(what, sizeof what, "%s clip=%d samples", f64 ? "f64" : "f32", cfg.clip_sample);
        cmp(f64 ? "loop ddim50 f64" : "loop ddim50 f32", what, rec.xs, want, ns, f64 ? TOL_F64 : TOL_F32);
        free(want);
        want = arr_at(r, "final", NULL);
        cmp(f64 ? "loop ddim50 f64" : "loop ddim50 f32", "final", rec.xs + 49 * nd, want, nd,
            f64 ? TOL_F64 : TOL_F32);
        free(want);
    }
    free(rec.xs);
    free(rec.x0s);
    free(xT);
}

static void test_loop_ddpm1000(const ddpm_diffusion *d) {
    size_t nd, nn, ns;
    double *xT = arr("loops.ddpm1000_ancestral.x_T", &nd);
    double *noise = arr("loops.ddpm1000_ancestral.noise", &nn);
    CHECK(nn == 999 * nd);
    recorder rec = {malloc(sizeof(double) * 1000 * nd), malloc(sizeof(double) * 1000 * nd), (int64_t)nd, 0, NULL};
    cJSON *r;
    cJSON_ArrayForEach(r, dd_json_path(O, "loops.ddpm1000_ancestral.runs")) {
        int f64 = strcmp(str_at(r, "precision"), "f64") == 0;
        ddpm_sampler_config cfg;
        ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
        cfg.steps = 1000;
        cfg.clip_sample = bool_at(r, "clip_sample");
        cfg.variance = strcmp(str_at(r, "variance_type"), "fixed_large") == 0 ? DDPM_VAR_FIXED_LARGE
                                                                              : DDPM_VAR_FIXED_SMALL;
        replay rp = {noise, (int64_t)nd, 0};
        cfg.noise = replay_noise;
        cfg.noise_user = &rp;
        run_loop(d, &cfg, f64, xT, (int64_t)nd, &rec);
        CHECK(rp.calls == 999);
        double *want = arr_at(r, "samples", &ns);
        CHECK(ns == 1000 * nd);
        char what[96];
        snprintf(what, sizeof what, "%s %s clip=%d samples", f64 ? "f64" : "f32", str_at(r, "variance_type"),
                 cfg.clip_sample);
        const char *grp = f64 ? "loop ddpm1000 f64" : "loop ddpm1000 f32";
        cmp(grp, what, rec.xs, want, ns, f64 ? TOL_F64 : TOL_F32);
        free(want);
        want = arr_at(r, "final", NULL);
        cmp(grp, "final", rec.xs + 999 * nd, want, nd, f64 ? TOL_F64 : TOL_F32);
        free(want);
    }
    free(rec.xs);
    free(rec.x0s);
    free(noise);
    free(xT);
}

static void test_loop_dpmpp(const ddpm_diffusion *d) {
    const char *orders[] = {"order2", "order1"};
    char path[160];
    for (int o = 0; o < 2; o++) {
        size_t nd, ns;
        snprintf(path, sizeof path, "loops.dpmsolverpp_20.%s.x_T", orders[o]);
        double *xT = arr(path, &nd);
        recorder rec = {malloc(sizeof(double) * 20 * nd), malloc(sizeof(double) * 20 * nd), (int64_t)nd, 0, NULL};
        ddpm_sampler_config cfg;
        ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DPMPP2M);
        cfg.solver_order = o == 0 ? 2 : 1;
        CHECK(cfg.steps == 20 && cfg.spacing == DDPM_SPACING_LINSPACE && cfg.clip_sample == 0);
        /* sigmas: sqrt((1 - alpha_bar) / alpha_bar) at the visited timesteps, then 0 (diffusers: float32). */
        int64_t ts[20];
        CHECK_OK(ddpm_sampler_timesteps(&cfg, d->T, ts));
        double sig[21];
        for (int i = 0; i < 20; i++) sig[i] = sqrt((1.0 - d->alphas_cumprod[ts[i]]) / d->alphas_cumprod[ts[i]]);
        sig[20] = 0.0;
        snprintf(path, sizeof path, "loops.dpmsolverpp_20.%s.sigmas", orders[o]);
        double *want = arr(path, &ns);
        CHECK(ns == 21);
        cmp("loop dpmsolverpp f32", "sigmas", sig, want, 21, TOL_F32);
        free(want);

        run_loop(d, &cfg, 0, xT, (int64_t)nd, &rec);
        snprintf(path, sizeof path, "loops.dpmsolverpp_20.%s.samples", orders[o]);
        want = arr(path, &ns);
        CHECK(ns == 20 * nd);
        cmp("loop dpmsolverpp f32", path, rec.xs, want, ns, TOL_F32);
        free(want);
        snprintf(path, sizeof path, "loops.dpmsolverpp_20.%s.x0_pred_per_step", orders[o]);
        want = arr(path, &ns);
        CHECK(ns == 20 * nd);
        cmp("loop dpmsolverpp f32", path, rec.x0s, want, ns, TOL_F32);
        free(want);
        snprintf(path, sizeof path, "loops.dpmsolverpp_20.%s.final", orders[o]);
        want = arr(path, &ns);
        cmp("loop dpmsolverpp f32", path, rec.xs + 19 * nd, want, nd, TOL_F32);
        /* The last step goes to sigma = 0 and returns x0_hat exactly. */
        CHECK(memcmp(rec.xs + 19 * nd, rec.x0s + 19 * nd, sizeof(double) * nd) == 0);
        free(want);
        /* The double-model path lands on the same float32 reference within the f32 tolerance. */
        run_loop(d, &cfg, 1, xT, (int64_t)nd, &rec);
        snprintf(path, sizeof path, "loops.dpmsolverpp_20.%s.samples", orders[o]);
        want = arr(path, &ns);
        cmp("loop dpmsolverpp f64-model vs f32", path, rec.xs, want, ns, TOL_F32);
        free(want);
        free(rec.xs);
        free(rec.x0s);
        free(xT);
    }
}

int main(void) {
    O = dd_json_load(dd_test_data("oracle.json"));
    test_schedules();
    test_timestep_lists();
    test_add_noise();
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    test_ddpm_step_cases(d);
    test_ddim_cases(d);
    test_loop_ddim50(d);
    test_loop_ddpm1000(d);
    test_loop_dpmpp(d);
    ddpm_diffusion_free(d);
    cJSON_Delete(O);
    printf("%-36s %9s %12s\n", "oracle group", "compared", "worst rel");
    for (int i = 0; i < ngroups; i++) printf("%-36s %9d %12.3e\n", groups[i].name, groups[i].compared, groups[i].worst);
    return dd_test_finish("test_diffusers_oracle");
}
