/* pipeline_scheduler.c — a diffusers pipeline folder's scheduler/scheduler_config.json read with cJSON: the noise
   schedule (num_train_timesteps, beta_start, beta_end, beta_schedule or trained_betas) and the sampler settings
   it fixes (prediction_type, variance_type, clip_sample, clip_sample_range, timestep_spacing, steps_offset,
   set_alpha_to_one). A _class_name other than DDPMScheduler, DDIMScheduler or DPMSolverMultistepScheduler is
   refused (its folder would otherwise be sampled by a sampler it does not name); keys of those classes that the
   samplers do not read are ignored; values the samplers do not implement are refused naming the file, the key
   and the value. No file: DDPMScheduler() defaults. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "diffusion/schedule.h"
#include "model/model.h"

#define SCHEDULER_FILE "scheduler/scheduler_config.json"
#define SCHEDULER_MAX_BYTES ((size_t)1 << 28)   /* trained_betas of DD_SCHEDULE_MAX_T values fit */

typedef enum {
    K_CLASS, K_T, K_BETA_START, K_BETA_END, K_BETA_SCHEDULE, K_TRAINED, K_VARIANCE, K_CLIP, K_CLIP_RANGE,
    K_PREDICTION, K_THRESHOLDING, K_SPACING, K_OFFSET, K_ZERO_SNR, K_ALPHA_ONE, K_COUNT
} key_id;

static const char *const key_names[K_COUNT] = {
    "_class_name", "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
    "variance_type", "clip_sample", "clip_sample_range", "prediction_type", "thresholding", "timestep_spacing",
    "steps_offset", "rescale_betas_zero_snr", "set_alpha_to_one",
};

/* What the file says, before the diffusion is built. */
typedef struct {
    ddpm_schedule_config sc;
    int T_given;
    const cJSON *trained;      /* a list, or NULL */
} sched_spec;

static ddpm_status parse_key(key_id k, const cJSON *it, const char *what, ddpm_pipeline_scheduler *out,
                             sched_spec *sp) {
    static const char *const schedules[] = {"linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", NULL};
    static const char *const our_names[] = {"linear", "scaled_linear", "cosine", "sigmoid"};
    static const char *const variances[] = {"fixed_small", "fixed_small_log", "fixed_large", NULL};
    static const char *const predictions[] = {"epsilon", "sample", "v_prediction", NULL};
    static const char *const spacings[] = {"leading", "trailing", "linspace", NULL};
    const char *key = key_names[k];
    int idx = 0, flag = 0;
    ddpm_status st = DDPM_OK;
    switch (k) {
    case K_CLASS: {
        /* the classes whose keys this reader honours; any other names a sampler these samplers are not, so
           sampling its folder with DDPM or DDIM would be silently wrong */
        static const char *const classes[] = {"DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler", NULL};
        if (!cJSON_IsString(it) || !it->valuestring) return dd_json_type_error(what, key, "a string", it);
        for (int i = 0; classes[i]; i++)
            if (strcmp(it->valuestring, classes[i]) == 0) {
                snprintf(out->class_name, sizeof out->class_name, "%s", it->valuestring);
                return DDPM_OK;
            }
        char got[96];
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: _class_name %s is a scheduler ddpm does not implement (it reads "
                        "DDPMScheduler, DDIMScheduler and DPMSolverMultistepScheduler configs)", what,
                        dd_json_text(it, got, sizeof got));
    }
    case K_T:
        sp->T_given = 1;
        return dd_json_int(it, what, key, 1, DD_SCHEDULE_MAX_T, 0, 0, &sp->sc.T);
    case K_BETA_START: return dd_json_number(it, what, key, &sp->sc.beta_start);
    case K_BETA_END: return dd_json_number(it, what, key, &sp->sc.beta_end);
    case K_BETA_SCHEDULE:
        if ((st = dd_json_choice(it, what, key, schedules, 0, &idx)) != DDPM_OK) return st;
        sp->sc.name = our_names[idx];
        return DDPM_OK;
    case K_TRAINED:
        if (cJSON_IsNull(it)) return DDPM_OK;
        if (!cJSON_IsArray(it)) return dd_json_type_error(what, key, "a list of numbers or null", it);
        sp->trained = it;
        return DDPM_OK;
    case K_VARIANCE:
        if (cJSON_IsNull(it)) return DDPM_OK;   /* DPMSolverMultistepScheduler: null */
        if (cJSON_IsString(it) && it->valuestring && strncmp(it->valuestring, "learned", 7) == 0)
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: variance_type = \"%.64s\" is not supported (a learned "
                            "variance needs a model that predicts it; supported: fixed_small, fixed_small_log, "
                            "fixed_large)", what, it->valuestring);
        /* fixed_small_log is fixed_small in log form; diffusers' fixed_large_log takes the square root of a
           log variance (NaN noise), so it is refused with the others */
        if ((st = dd_json_choice(it, what, key, variances, 0, &idx)) != DDPM_OK) return st;
        out->variance = idx == 2 ? DDPM_VAR_FIXED_LARGE : DDPM_VAR_FIXED_SMALL;
        return DDPM_OK;
    case K_CLIP: return dd_json_bool(it, what, key, &out->clip_sample);
    case K_CLIP_RANGE:
        if ((st = dd_json_number(it, what, key, &out->clip_range)) != DDPM_OK) return st;
        if (!(out->clip_range > 0.0))
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: clip_sample_range = %g must be positive", what,
                            out->clip_range);
        return DDPM_OK;
    case K_PREDICTION:
        if ((st = dd_json_choice(it, what, key, predictions, 0, &idx)) != DDPM_OK) return st;
        out->prediction = idx == 0 ? DDPM_PRED_EPS : idx == 1 ? DDPM_PRED_X0 : DDPM_PRED_V;
        return DDPM_OK;
    case K_THRESHOLDING:
        if ((st = dd_json_bool(it, what, key, &flag)) != DDPM_OK) return st;
        if (flag)
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: thresholding = true is not supported (dynamic thresholding "
                            "is not implemented; set it to false)", what);
        return DDPM_OK;
    case K_SPACING:
        if ((st = dd_json_choice(it, what, key, spacings, 0, &idx)) != DDPM_OK) return st;
        out->spacing = idx == 0 ? DDPM_SPACING_LEADING : idx == 1 ? DDPM_SPACING_TRAILING : DDPM_SPACING_LINSPACE;
        return DDPM_OK;
    case K_OFFSET: return dd_json_int(it, what, key, 0, DD_SCHEDULE_MAX_T, 0, 0, &out->steps_offset);
    case K_ZERO_SNR:
        if ((st = dd_json_bool(it, what, key, &flag)) != DDPM_OK) return st;
        if (flag)
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: rescale_betas_zero_snr = true is not supported (the "
                            "zero-terminal-SNR rescaling is not implemented; set it to false)", what);
        return DDPM_OK;
    case K_ALPHA_ONE: return dd_json_bool(it, what, key, &out->set_alpha_to_one);
    case K_COUNT: break;
    }
    return dd_error(DDPM_ERR_INTERNAL, "%s: unhandled key %s", what, key);
}

/* The diffusion of trained_betas: a list of numbers, as many as num_train_timesteps when that is given. */
static ddpm_status trained_diffusion(const cJSON *list, const sched_spec *sp, const char *what,
                                     ddpm_diffusion **out) {
    int n = cJSON_GetArraySize(list);
    if (n < 1 || n > DD_SCHEDULE_MAX_T)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: trained_betas has %d values (1..%d supported)", what, n,
                        DD_SCHEDULE_MAX_T);
    if (sp->T_given && n != sp->sc.T)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: trained_betas has %d values but num_train_timesteps = %d", what, n,
                        sp->sc.T);
    double *betas = dd_alloc((size_t)n * sizeof(double));
    if (!betas) return DDPM_ERR_NOMEM;
    ddpm_status st = DDPM_OK;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        char name[48];
        snprintf(name, sizeof name, "trained_betas[%d]", i);
        if ((st = dd_json_number(e, what, name, &betas[i])) != DDPM_OK) break;
        if (!(betas[i] > 0.0 && betas[i] < 1.0)) {
            st = dd_error(DDPM_ERR_INVALID_ARG, "%s: trained_betas[%d] = %g must lie in (0, 1)", what, i, betas[i]);
            break;
        }
        i++;
    }
    if (st == DDPM_OK && (st = ddpm_diffusion_from_betas(betas, n, out)) != DDPM_OK) dd_error_prefix(st, what);
    dd_free(betas);
    return st;
}

static void set_defaults(ddpm_pipeline_scheduler *s, sched_spec *sp) {
    memset(s, 0, sizeof *s);
    snprintf(s->class_name, sizeof s->class_name, "DDPMScheduler");
    s->prediction = DDPM_PRED_EPS;
    s->variance = DDPM_VAR_FIXED_SMALL;
    s->clip_sample = 1;
    s->clip_range = 1.0;
    s->spacing = DDPM_SPACING_LEADING;
    s->steps_offset = 0;
    s->set_alpha_to_one = 1;
    memset(sp, 0, sizeof *sp);
    ddpm_schedule_config_default(&sp->sc);   /* linear, T = 1000, 1e-4 .. 0.02: DDPMScheduler() */
    sp->sc.name = "linear";
}

static ddpm_status parse_text(const char *json, size_t len, const char *what, ddpm_pipeline_scheduler *out,
                              sched_spec *sp) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return dd_error(DDPM_ERR_FORMAT, "%s: not valid JSON (error near byte %zu)", what, at);
    }
    ddpm_status st = DDPM_OK;
    if (end)
        for (const char *p = end; p < json + len && *p && st == DDPM_OK; p++)
            if (!isspace((unsigned char)*p))
                st = dd_error(DDPM_ERR_FORMAT, "%s: unexpected text after the JSON object at byte %zu", what,
                              (size_t)(p - json));
    if (st == DDPM_OK && !cJSON_IsObject(root)) st = dd_json_type_error(what, "the scheduler config", "a JSON object", root);
    int seen[K_COUNT] = {0};
    const cJSON *it;
    if (st == DDPM_OK)
        cJSON_ArrayForEach(it, root) {
            const char *key = it->string ? it->string : "";
            int k = -1;
            for (int i = 0; i < K_COUNT; i++)
                if (strcmp(key, key_names[i]) == 0) k = i;
            if (k < 0) continue;   /* the keys of other scheduler classes */
            if (seen[k]) {
                st = dd_error(DDPM_ERR_FORMAT, "%s: key '%s' appears twice", what, key);
                break;
            }
            seen[k] = 1;
            if ((st = parse_key((key_id)k, it, what, out, sp)) != DDPM_OK) break;
        }
    if (st == DDPM_OK) {
        if (sp->trained) {
            st = trained_diffusion(sp->trained, sp, what, &out->diffusion);
        } else if ((st = ddpm_diffusion_create(&sp->sc, &out->diffusion)) != DDPM_OK) {
            dd_error_prefix(st, what);
        }
    }
    cJSON_Delete(root);
    return st;
}

ddpm_status ddpm_pipeline_scheduler_load(const char *dir, ddpm_pipeline_scheduler *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_pipeline_scheduler_load: out is NULL");
    sched_spec sp;
    set_defaults(out, &sp);
    char *path = NULL;
    ddpm_status st;
    if (dir && dir[0] && dd_is_dir(dir) && !(path = dd_path_join(dir, SCHEDULER_FILE))) return DDPM_ERR_NOMEM;
    if (path && dd_is_file(path)) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if ((st = dd_read_file(path, SCHEDULER_MAX_BYTES, &buf, &len)) == DDPM_OK) {
            out->found = 1;
            st = parse_text((const char *)buf, len, path, out, &sp);
        }
        dd_free(buf);
    } else {
        st = ddpm_diffusion_create(&sp.sc, &out->diffusion);
    }
    dd_free(path);
    if (st != DDPM_OK) ddpm_pipeline_scheduler_free(out);
    return st;
}

void ddpm_pipeline_scheduler_free(ddpm_pipeline_scheduler *s) {
    if (!s) return;
    ddpm_diffusion_free(s->diffusion);
    s->diffusion = NULL;
}

void ddpm_pipeline_scheduler_apply(const ddpm_pipeline_scheduler *s, ddpm_sampler_config *cfg) {
    if (!s || !cfg) return;
    cfg->prediction = s->prediction;
    if (cfg->kind != DDPM_SAMPLER_DDPM && cfg->kind != DDPM_SAMPLER_DDIM) return;   /* DPM++: its own defaults */
    cfg->variance = s->variance;
    cfg->clip_sample = s->clip_sample;
    cfg->clip_range = s->clip_range;
    cfg->spacing = s->spacing;
    cfg->steps_offset = s->steps_offset;
    cfg->set_alpha_to_one = s->set_alpha_to_one;
}
