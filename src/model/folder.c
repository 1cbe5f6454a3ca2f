/* folder.c — models on disk: ddpm_model_load (a preset, a config.json, a diffusers pipeline folder, a unet
   folder, a fixture folder) and ddpm_model_save (a diffusers DDPMPipeline folder that
   DDPMPipeline.from_pretrained loads: model_index.json, unet/, scheduler/), every file written atomically.
   A BasicUNet is saved in the same layout with a config.json of _class_name "BasicUNet", which only this
   library reads back (diffusers has no such class). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/core.h"
#include "model/model.h"

#define CONFIG_FILE_MAX ((size_t)1 << 20)

/* init = 0 when the caller loads every weight next (the initialisation draws 1.7 M normals for mnist: a tenth of
   a short sampling run's process time). */
static ddpm_status from_config_file(const char *path, uint64_t seed, int init, ddpm_model **out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status st = dd_read_file(path, CONFIG_FILE_MAX, &buf, &len);
    if (st != DDPM_OK) return st;
    dd_model_config c;
    st = dd_model_config_parse((const char *)buf, len, path, &c);
    dd_free(buf);
    if (st != DDPM_OK) return st;
    return dd_model_create_ex(&c, seed, init, out);
}

/* The newest spec/checkpoints/checkpoint-N that holds a model (dd_alloc'ed), or NULL: for the message about a
   training run folder that has no final model yet. */
static char *newest_checkpoint(const char *spec) {
    char *cdir = dd_path_join(spec, "checkpoints");
    DIR *d = cdir ? opendir(cdir) : NULL;
    char *best = NULL;
    long long best_step = -1;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *end = NULL;
        if (strncmp(e->d_name, "checkpoint-", 11) != 0) continue;
        long long step = strtoll(e->d_name + 11, &end, 10);
        if (end == e->d_name + 11 || *end || step <= best_step) continue;
        char *p = dd_path_join(cdir, e->d_name), *cfg = p ? dd_path_join(p, "unet/config.json") : NULL;
        if (cfg && dd_is_file(cfg)) {
            dd_free(best);
            best = p;
            p = NULL;
            best_step = step;
        }
        dd_free(p);
        dd_free(cfg);
    }
    if (d) closedir(d);
    dd_free(cdir);
    return best;
}

/* A folder: a pipeline (unet/ inside), a unet folder or a fixture folder. Its weights are required: the plain
   file, else a variant diffusers writes with save_pretrained(variant=...) (fp16 first, as variant="fp16" loads). */
static ddpm_status from_folder(const char *spec, uint64_t seed, ddpm_model **out) {
    static const char *const weight_files[] = {"diffusion_pytorch_model.safetensors", "weights.safetensors",
                                               "diffusion_pytorch_model.fp16.safetensors",
                                               "diffusion_pytorch_model.bf16.safetensors",
                                               "diffusion_pytorch_model.fp32.safetensors"};
    const int nfiles = (int)(sizeof weight_files / sizeof weight_files[0]);
    char *unet = dd_path_join(spec, "unet");
    if (!unet) return DDPM_ERR_NOMEM;
    const char *dir = dd_is_dir(unet) ? unet : spec;
    char *cfg = dd_path_join(dir, "config.json");
    char *weights = NULL, *pickle = NULL;
    ddpm_status st = DDPM_OK;
    if (!cfg) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    if (!dd_is_file(cfg)) {
        char *ck = newest_checkpoint(spec);
        if (ck)
            st = dd_error(DDPM_ERR_IO, "%s: a training run without its final model (interrupted, or still running); "
                          "its newest checkpoint is %s: use --model %s, or finish the run with --resume", spec, ck, ck);
        else
            st = dd_error(DDPM_ERR_IO, "%s: no config.json (expected a diffusers pipeline folder with "
                          "unet/config.json, a unet folder or a fixture folder)", spec);
        dd_free(ck);
        goto done;
    }
    for (int i = 0; i < nfiles && !weights; i++) {
        char *w = dd_path_join(dir, weight_files[i]);
        if (!w) {
            st = DDPM_ERR_NOMEM;
            goto done;
        }
        if (dd_is_file(w)) weights = w;
        else dd_free(w);
    }
    if (!weights) {
        if (!(pickle = dd_path_join(dir, "diffusion_pytorch_model.bin"))) {
            st = DDPM_ERR_NOMEM;
            goto done;
        }
        if (dd_is_file(pickle))
            st = dd_error(DDPM_ERR_UNSUPPORTED, "%s: PyTorch pickle weights are not supported; save them as "
                          "safetensors (diffusers: save_pretrained(..., safe_serialization=True))", pickle);
        else
            st = dd_error(DDPM_ERR_IO, "%s: no weights (diffusion_pytorch_model.safetensors, or a variant such as "
                          "diffusion_pytorch_model.fp16.safetensors); for a network with fresh weights give its "
                          "config file, %s", dir, cfg);
        goto done;
    }
    if ((st = from_config_file(cfg, seed, 0, out)) != DDPM_OK) goto done;
    if (weights && (st = ddpm_model_load_weights(*out, weights)) != DDPM_OK) {
        ddpm_model_free(*out);
        *out = NULL;
    }
done:
    dd_free(unet);
    dd_free(cfg);
    dd_free(weights);
    dd_free(pickle);
    return st;
}

ddpm_status ddpm_model_load(const char *spec, uint64_t seed, ddpm_model **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_load: out is NULL");
    *out = NULL;
    if (!spec || !spec[0]) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_load: empty model name");
    dd_model_config c;
    if (dd_model_config_preset(spec, &c)) return dd_model_create(&c, seed, out);
    struct stat sb;
    if (stat(spec, &sb) != 0) {
        static const char *const presets[] = {"mnist", "cifar10", "tiny", "basic"};
        const char *near = strchr(spec, '/') ? NULL : ddpm_closest(spec, presets, 4);
        if (near)
            return dd_error(DDPM_ERR_IO, "'%s' is not a preset (did you mean '%s'?) and cannot be opened: %s", spec,
                            near, strerror(errno));
        return dd_error(DDPM_ERR_IO, "'%s' is not a preset (%s) and cannot be opened: %s", spec,
                        dd_model_preset_names, strerror(errno));
    }
    if (S_ISDIR(sb.st_mode)) return from_folder(spec, seed, out);
    size_t n = strlen(spec);
    if (n > 12 && strcmp(spec + n - 12, ".safetensors") == 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: a weights file, not a model; give the folder that holds it beside "
                        "its config.json (a diffusers unet or pipeline folder)", spec);
    return from_config_file(spec, seed, 1, out);
}

/* ------------------------------------------------------------------ saving */

static ddpm_status write_text(const char *dir, const char *rel, char *text) {
    char *path = dd_path_join(dir, rel);
    ddpm_status st = path ? dd_write_file_atomic(path, text, strlen(text)) : DDPM_ERR_NOMEM;
    dd_free(path);
    return st;
}

static void key(dd_text *sb, const char *k, int first) {
    dd_text_printf(sb, "%s\n  \"%s\": ", first ? "" : ",", k);
}

/* diffusers DDPMScheduler config (v0.27.2 fields, sorted). Named schedules that diffusers computes the same
   way are written by name; the others (sqrt, sigmoid_chen, file:, cosine with a non-default offset) as
   trained_betas. */
static ddpm_status scheduler_json(const ddpm_schedule_config *sc, ddpm_prediction pred, char **out) {
    const char *ptype = pred == DDPM_PRED_EPS ? "epsilon" : pred == DDPM_PRED_X0 ? "sample"
                        : pred == DDPM_PRED_V ? "v_prediction" : NULL;
    if (!ptype) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_save: unknown prediction type %d", (int)pred);
    double *betas = dd_calloc((size_t)(sc->T > 0 ? sc->T : 1), sizeof(double));
    if (!betas) return DDPM_ERR_NOMEM;
    ddpm_status st = ddpm_schedule_betas(sc, betas);   /* validates the schedule before anything is written */
    if (st != DDPM_OK) {
        dd_free(betas);
        return st;
    }
    const char *name = sc->name, *by_name = NULL;
    double b0 = sc->beta_start, b1 = sc->beta_end;
    if (strcmp(name, "linear") == 0) {
        by_name = "linear";
        if (sc->scale_to_T) {   /* improved-diffusion: both ends times 1000 / T */
            b0 *= 1000.0 / sc->T;
            b1 *= 1000.0 / sc->T;
        }
    } else if (strcmp(name, "scaled_linear") == 0 || strcmp(name, "sigmoid") == 0) {
        by_name = name;
    } else if ((strcmp(name, "cosine") == 0 || strcmp(name, "squaredcos_cap_v2") == 0) && sc->cosine_s == 0.008 &&
               sc->max_beta == 0.999) {
        by_name = "squaredcos_cap_v2";
    }
    dd_text sb = {0};
    dd_text_printf(&sb, "{");
    key(&sb, "_class_name", 1);
    dd_text_string(&sb, "DDPMScheduler");
    key(&sb, "_diffusers_version", 0);
    dd_text_string(&sb, DD_MODEL_DIFFUSERS_VERSION);
    key(&sb, "beta_end", 0);
    dd_text_number(&sb, b1);
    key(&sb, "beta_schedule", 0);
    dd_text_string(&sb, by_name ? by_name : "linear");
    key(&sb, "beta_start", 0);
    dd_text_number(&sb, b0);
    key(&sb, "clip_sample", 0);
    dd_text_printf(&sb, "true");
    key(&sb, "clip_sample_range", 0);
    dd_text_printf(&sb, "1.0");
    key(&sb, "dynamic_thresholding_ratio", 0);
    dd_text_printf(&sb, "0.995");
    key(&sb, "num_train_timesteps", 0);
    dd_text_printf(&sb, "%d", sc->T);
    key(&sb, "prediction_type", 0);
    dd_text_string(&sb, ptype);
    key(&sb, "rescale_betas_zero_snr", 0);
    dd_text_printf(&sb, "false");
    key(&sb, "sample_max_value", 0);
    dd_text_printf(&sb, "1.0");
    key(&sb, "steps_offset", 0);
    dd_text_printf(&sb, "0");
    key(&sb, "thresholding", 0);
    dd_text_printf(&sb, "false");
    key(&sb, "timestep_spacing", 0);
    dd_text_string(&sb, "leading");
    key(&sb, "trained_betas", 0);
    if (by_name) {
        dd_text_printf(&sb, "null");
    } else {
        dd_text_printf(&sb, "[");
        for (int i = 0; i < sc->T; i++) {
            dd_text_printf(&sb, "%s\n    ", i ? "," : "");
            dd_text_number(&sb, betas[i]);
        }
        dd_text_printf(&sb, "\n  ]");
    }
    key(&sb, "variance_type", 0);
    dd_text_string(&sb, "fixed_small");
    dd_text_printf(&sb, "\n}\n");
    dd_free(betas);
    return dd_text_finish(&sb, out);
}

ddpm_status ddpm_model_save(const ddpm_model *m, const char *dir, const ddpm_schedule_config *schedule,
                            ddpm_prediction prediction) {
    if (!m || !dir || !dir[0]) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_save: NULL model or folder");
    ddpm_schedule_config dflt;
    ddpm_schedule_config_default(&dflt);
    const ddpm_schedule_config *sc = schedule ? schedule : &dflt;
    char *config = NULL, *sched = NULL, *unet = NULL, *sdir = NULL, *weights = NULL;
    dd_text sb = {0};
    char *index = NULL;
    ddpm_status st;
    /* everything that can fail without touching the disk comes first */
    if ((st = scheduler_json(sc, prediction, &sched)) != DDPM_OK) goto done;
    if ((st = dd_model_config_to_json(&m->cfg, &config)) != DDPM_OK) goto done;
    dd_text_printf(&sb, "{\n  \"_class_name\": \"DDPMPipeline\",\n  \"_diffusers_version\": \"%s\",\n"
                       "  \"scheduler\": [\n    \"diffusers\",\n    \"DDPMScheduler\"\n  ],\n"
                       "  \"unet\": [\n    \"diffusers\",\n    \"UNet2DModel\"\n  ]\n}\n",
                       DD_MODEL_DIFFUSERS_VERSION);
    if ((st = dd_text_finish(&sb, &index)) != DDPM_OK) goto done;
    if (!(unet = dd_path_join(dir, "unet")) || !(sdir = dd_path_join(dir, "scheduler")) ||
        !(weights = dd_path_join(dir, "unet/diffusion_pytorch_model.safetensors"))) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    if ((st = dd_make_dirs(dir)) != DDPM_OK || (st = dd_make_dirs(unet)) != DDPM_OK || (st = dd_make_dirs(sdir)) != DDPM_OK)
        goto done;
    if ((st = dd_model_params_save(&m->tab, m->params, weights)) != DDPM_OK) goto done;
    if ((st = write_text(dir, "unet/config.json", config)) != DDPM_OK) goto done;
    if ((st = write_text(dir, "scheduler/scheduler_config.json", sched)) != DDPM_OK) goto done;
    st = write_text(dir, "model_index.json", index);   /* last: a folder with model_index.json is complete */
done:
    dd_free(config);
    dd_free(sched);
    dd_free(index);
    dd_free(unet);
    dd_free(sdir);
    dd_free(weights);
    return st;
}
