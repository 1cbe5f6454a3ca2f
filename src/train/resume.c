/* resume.c — continuing a run from a checkpoint folder: finding the newest complete one, checking that the
   model and data are the run's, and restoring weights, AdamW moments, EMA and counters exactly. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/core.h"
#include "train/train.h"

#define CONFIG_MAX ((size_t)1 << 20)

/* Reads and parses dir/training_state.json. */
static ddpm_status read_state(const char *dir, dd_train_state *s) {
    char *path = dd_path_join(dir, DD_TRAIN_STATE_JSON);
    if (!path) return DDPM_ERR_NOMEM;
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status st = dd_read_file(path, DD_TRAIN_JSON_MAX, &buf, &len);
    if (st == DDPM_OK) st = dd_train_state_parse((const char *)buf, len, path, s);
    dd_free(buf);
    dd_free(path);
    return st;
}

/* The step of a folder's state; -1 when it has no state file, -2 (message kept in *err) when it does not
   parse. */
static int64_t state_step(const char *dir, dd_train_state *scratch, char **err) {
    char *path = dd_path_join(dir, DD_TRAIN_STATE_JSON);
    int ok = path && dd_is_file(path);
    dd_free(path);
    if (!ok) return -1;
    if (read_state(dir, scratch) == DDPM_OK) return scratch->step;
    if (!*err) *err = dd_strdup(ddpm_last_error());
    return -2;
}

ddpm_status ddpm_train_find_checkpoint(const char *dir, char **path) {
    if (!dir || !path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_train_find_checkpoint: NULL folder or output");
    *path = NULL;
    dd_train_state *scratch = dd_calloc(1, sizeof *scratch);
    char *cdir = dd_path_join(dir, "checkpoints");
    if (!scratch || !cdir) {
        dd_free(scratch);
        dd_free(cdir);
        return DDPM_ERR_NOMEM;
    }
    char *best = NULL, *err = NULL;
    int64_t best_step = state_step(dir, scratch, &err);
    const int root_broken = best_step == -2;
    ddpm_status st = DDPM_OK;
    if (best_step >= 0 && !(best = dd_strdup(dir))) st = DDPM_ERR_NOMEM;
    DIR *d = opendir(cdir);
    struct dirent *e;
    while (st == DDPM_OK && d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "checkpoint-", 11) != 0) continue;
        char *p = dd_path_join(cdir, e->d_name);
        if (!p) {
            st = DDPM_ERR_NOMEM;
            break;
        }
        int64_t s = state_step(p, scratch, &err);
        if (s >= 0 && s >= best_step) {   /* a renamed-into-place checkpoint wins a tie */
            dd_free(best);
            best = p;
            best_step = s;
        } else {
            dd_free(p);
        }
    }
    if (d) closedir(d);
    dd_free(cdir);
    dd_free(scratch);
    if (st != DDPM_OK || !best) {
        dd_free(best);
        if (st == DDPM_OK && err) st = dd_error(DDPM_ERR_FORMAT, "%s: no usable training state: %s", dir, err);
        else if (st == DDPM_OK)
            st = dd_error(DDPM_ERR_IO, "%s: no training state to resume from (no %s in the folder or in its "
                          "checkpoints/ folders)", dir, DD_TRAIN_STATE_JSON);
        dd_free(err);
        return st;
    }
    if (root_broken) {   /* never a silent step back to an older checkpoint */
        st = dd_error(DDPM_ERR_FORMAT, "%s: the run's own state cannot be read (%s); its newest readable checkpoint "
                      "is %s (step %" PRId64 "): resume from that folder to continue from there", dir,
                      err ? err : "unreadable", best, best_step);
        dd_free(best);
        dd_free(err);
        return st;
    }
    dd_free(err);
    *path = best;
    return DDPM_OK;
}

ddpm_status ddpm_train_folder_state(const char *dir, ddpm_train_folder_kind *kind) {
    if (!dir || !kind) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_train_folder_state: NULL folder or output");
    *kind = DDPM_TRAIN_FOLDER_NONE;
    char *json = dd_path_join(dir, DD_TRAIN_STATE_JSON), *cdir = dd_path_join(dir, "checkpoints"), *found = NULL;
    struct stat sb;
    const int any = json && cdir && (stat(json, &sb) == 0 || stat(cdir, &sb) == 0);
    ddpm_status st = !json || !cdir ? DDPM_ERR_NOMEM : any ? ddpm_train_find_checkpoint(dir, &found) : DDPM_OK;
    dd_free(json);
    dd_free(cdir);
    dd_free(found);
    if (!any || st == DDPM_ERR_NOMEM) return st;
    *kind = st == DDPM_OK       ? DDPM_TRAIN_FOLDER_RUN
            : st == DDPM_ERR_IO ? DDPM_TRAIN_FOLDER_DEBRIS
                                : DDPM_TRAIN_FOLDER_BROKEN;
    return DDPM_OK;
}

ddpm_status ddpm_train_run_folder(const char *path, char **dir) {
    if (!path || !dir) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_train_run_folder: NULL path or output");
    size_t n = strlen(path);
    char *s = *dir = dd_alloc(n + 3);
    if (!s) return DDPM_ERR_NOMEM;
    memcpy(s, path, n + 1);
    while (n > 1 && s[n - 1] == '/') s[--n] = 0;
    char *last = strrchr(s, '/');
    if (last && strncmp(last + 1, "checkpoint-", 11) == 0) {
        *last = 0;
        char *prev = strrchr(s, '/');
        if (strcmp(prev ? prev + 1 : s, "checkpoints") == 0) {
            if (prev) *prev = 0;
            else strcpy(s, ".");
            if (!s[0]) strcpy(s, "/");
            return DDPM_OK;
        }
        *last = '/';
    }
    return DDPM_OK;
}

/* The first key (those starting with '_' aside: _class_name, _diffusers_version) whose values differ between
   two configuration objects: 1 with *key and the values as JSON text (NULL when absent; free()), else 0. */
static int first_difference(const cJSON *a, const cJSON *b, const char **key, char **va, char **vb) {
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *x = pass ? b : a, *y = pass ? a : b;
        for (const cJSON *it = x->child; it; it = it->next) {
            if (!it->string || it->string[0] == '_') continue;
            const cJSON *other = cJSON_GetObjectItemCaseSensitive(y, it->string);
            if (other && cJSON_Compare(it, other, 1)) continue;
            *key = it->string;
            *va = cJSON_PrintUnformatted(pass ? other : it);
            *vb = cJSON_PrintUnformatted(pass ? it : other);
            return 1;
        }
    }
    return 0;
}

/* The given model against the checkpoint's unet/config.json: the first differing key is named. */
static ddpm_status same_model(const ddpm_model *m, const char *dir) {
    char *mine = NULL, *path = dd_path_join(dir, "unet/config.json"), *va = NULL, *vb = NULL;
    const char *key = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    cJSON *a = NULL, *b = NULL;
    ddpm_status st = path ? ddpm_model_config_json(m, &mine) : DDPM_ERR_NOMEM;
    if (st == DDPM_OK) st = dd_read_file(path, CONFIG_MAX, &buf, &len);
    if (st == DDPM_OK) {
        a = cJSON_Parse(mine);
        b = cJSON_ParseWithLength((const char *)buf, len);
        if (!a || !b) st = dd_error(DDPM_ERR_FORMAT, "%s: not valid JSON", path);
    }
    if (st == DDPM_OK && first_difference(a, b, &key, &va, &vb))
        st = dd_error(DDPM_ERR_INVALID_ARG, "resume: the model differs from the checkpoint's (%s): %s is %.80s "
                      "in the given model but %.80s in the checkpoint; resume with the run's model (or none)",
                      path, key, va ? va : "absent", vb ? vb : "absent");
    free(va);
    free(vb);
    cJSON_Delete(a);
    cJSON_Delete(b);
    dd_free(buf);
    ddpm_free(mine);
    dd_free(path);
    return st;
}

ddpm_status ddpm_model_config_diff(const ddpm_model *a, const ddpm_model *b, char **what) {
    if (!what) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_config_diff: what is NULL");
    *what = NULL;
    if (!a || !b) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_model_config_diff: a model is NULL");
    char *ja = NULL, *jb = NULL, *va = NULL, *vb = NULL;
    const char *key = NULL;
    cJSON *x = NULL, *y = NULL;
    ddpm_status st = ddpm_model_config_json(a, &ja);
    if (st == DDPM_OK) st = ddpm_model_config_json(b, &jb);
    if (st == DDPM_OK && (!(x = cJSON_Parse(ja)) || !(y = cJSON_Parse(jb))))
        st = dd_error(DDPM_ERR_NOMEM, "ddpm_model_config_diff: cannot parse a configuration");
    if (st == DDPM_OK && first_difference(x, y, &key, &va, &vb)) {
        size_t n = strlen(key) + (va ? strlen(va) : 6) + (vb ? strlen(vb) : 6) + 8;
        if ((*what = dd_alloc(n)) != NULL)
            snprintf(*what, n, "%s: %s vs %s", key, va ? va : "absent", vb ? vb : "absent");
        else
            st = DDPM_ERR_NOMEM;
    }
    free(va);
    free(vb);
    cJSON_Delete(x);
    cJSON_Delete(y);
    ddpm_free(ja);
    ddpm_free(jb);
    return st;
}

static ddpm_status same_data(const dd_train_state *s, const ddpm_dataset *d, const char *dir) {
    if (!d) return dd_error(DDPM_ERR_INVALID_ARG, "resume: the dataset is NULL");
    const char *what = NULL;
    long long want = 0, got = 0;
    if (d->count != s->data_count) what = "images", want = s->data_count, got = d->count;
    else if (d->channels != s->data_channels) what = "channels", want = s->data_channels, got = d->channels;
    else if (d->height != s->data_height) what = "rows per image", want = s->data_height, got = d->height;
    else if (d->width != s->data_width) what = "columns per image", want = s->data_width, got = d->width;
    else if (d->num_classes != s->data_classes) what = "classes", want = s->data_classes, got = d->num_classes;
    if (!what) return DDPM_OK;
    return dd_error(DDPM_ERR_INVALID_ARG, "resume: the dataset has %lld %s but the run in %s was trained on %lld; "
                    "an exact resume needs the same data", got, what, dir, want);
}

/* Weights, moments and EMA from the folder into a trainer built at the saved counters. */
static ddpm_status load_tensors(ddpm_trainer *t, const char *dir, ddpm_safetensors *st_state) {
    const int64_t P = t->P;
    float *params = ddpm_model_params(t->model);
    ddpm_status st;
    if ((st = ddpm_st_read_f32(st_state, "params", params, P)) != DDPM_OK ||
        (st = ddpm_st_read_f32(st_state, "adamw_m", ddpm_adamw_m(t->opt), P)) != DDPM_OK ||
        (st = ddpm_st_read_f32(st_state, "adamw_v", ddpm_adamw_v(t->opt), P)) != DDPM_OK)
        return dd_error_prefix(st, dir);
    if ((st = ddpm_adamw_set_steps(t->opt, t->s.adamw_steps)) != DDPM_OK) return st;
    if (dd_crc_floats(params, P) != t->s.crc_params)
        return dd_error(DDPM_ERR_FORMAT, "%s: the weights in %s do not match %s (an interrupted save?); resume "
                        "from a folder in checkpoints/", dir, DD_TRAIN_STATE_ST, DD_TRAIN_STATE_JSON);
    if ((st = ddpm_model_params_changed(t->model)) != DDPM_OK) return st;
    float *ema = dd_trainer_ema(t);
    if (!ema) return DDPM_OK;
    char *path = dd_path_join(dir, "unet/diffusion_pytorch_model.safetensors");
    ddpm_safetensors *w = NULL;
    st = path ? ddpm_st_open(path, &w) : DDPM_ERR_NOMEM;
    int n = 0;
    {
        ddpm_model_info mi;
        ddpm_model_get_info(t->model, &mi);
        n = mi.num_tensors;
    }
    for (int i = 0; i < n && st == DDPM_OK; i++) {
        ddpm_param_info pi;
        if ((st = ddpm_model_param(t->model, i, &pi)) != DDPM_OK) break;
        if ((st = ddpm_st_read_f32(w, pi.name, ema + pi.offset, pi.numel)) != DDPM_OK) st = dd_error_prefix(st, path);
    }
    if (st == DDPM_OK && dd_crc_floats(ema, P) != t->s.crc_ema)
        st = dd_error(DDPM_ERR_FORMAT, "%s: the EMA weights do not match %s (an interrupted save?); resume from a "
                      "folder in checkpoints/", path, DD_TRAIN_STATE_JSON);
    ddpm_st_close(w);
    dd_free(path);
    return st;
}

static ddpm_status apply_options(dd_train_state *s, const ddpm_train_resume_options *o, const char *dir) {
    if (o->steps > 0) {
        if (o->steps < s->step)
            return dd_error(DDPM_ERR_INVALID_ARG, "resume: %lld steps is fewer than the %lld already done in %s "
                            "(steps counts the whole run)", (long long)o->steps, (long long)s->step, dir);
        s->c.steps = o->steps;
    }
    if (o->checkpoint_every >= 0) s->c.checkpoint_every = o->checkpoint_every;
    if (o->keep_checkpoints >= 0) s->c.keep_checkpoints = o->keep_checkpoints;
    s->c.engine = o->engine;
    s->c.memory_limit = o->memory_limit;
    return dd_train_config_validate(&s->c);
}

ddpm_status ddpm_trainer_resume(const char *dir, ddpm_model *model, const ddpm_dataset *data,
                                const ddpm_train_resume_options *opts, ddpm_trainer **out) {
    if (!out || !dir) {
        ddpm_model_free(model);
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_resume: NULL folder or output");
    }
    *out = NULL;
    ddpm_train_resume_options dflt;
    ddpm_train_resume_options_default(&dflt);
    if (!opts) opts = &dflt;
    char *src = NULL;
    dd_train_state *s = dd_calloc(1, sizeof *s);
    ddpm_safetensors *sf = NULL;
    double *betas = NULL;
    ddpm_trainer *t = NULL;
    ddpm_status st = s ? ddpm_train_find_checkpoint(dir, &src) : DDPM_ERR_NOMEM;
    if (st == DDPM_OK) st = read_state(src, s);
    if (st == DDPM_OK) st = apply_options(s, opts, src);
    if (st == DDPM_OK) st = same_data(s, data, src);
    if (st == DDPM_OK) st = model ? same_model(model, src) : ddpm_model_load(src, s->c.seed, &model);
    if (st == DDPM_OK) {
        ddpm_model_info mi;
        ddpm_model_get_info(model, &mi);
        if (mi.num_params != s->num_params)
            st = dd_error(DDPM_ERR_FORMAT, "%s: the model has %lld parameters but the state records %lld", src,
                          (long long)mi.num_params, (long long)s->num_params);
    }
    if (st == DDPM_OK) {
        char *path = dd_path_join(src, DD_TRAIN_STATE_ST);
        st = path ? ddpm_st_open(path, &sf) : DDPM_ERR_NOMEM;
        const char *step = st == DDPM_OK ? ddpm_st_metadata_get(sf, "step") : NULL;
        char want[32];
        snprintf(want, sizeof want, "%" PRId64, s->step);
        if (st == DDPM_OK && (!step || strcmp(step, want) != 0))
            st = dd_error(DDPM_ERR_FORMAT, "%s: holds step %s but %s says %s (an interrupted save?); resume from a "
                          "folder in checkpoints/", path, step ? step : "(none)", DD_TRAIN_STATE_JSON, want);
        dd_free(path);
    }
    if (st == DDPM_OK && !(betas = dd_calloc((size_t)s->c.schedule.T, sizeof(double)))) st = DDPM_ERR_NOMEM;
    if (st == DDPM_OK) st = ddpm_st_read_f64(sf, "betas", betas, s->c.schedule.T);
    if (st == DDPM_OK) {
        st = dd_trainer_init(s, model, data, betas, &t);   /* takes the model, also on failure */
        model = NULL;
    }
    if (st == DDPM_OK) st = load_tensors(t, src, sf);
    ddpm_model_free(model);
    ddpm_st_close(sf);
    dd_free(betas);
    dd_free(src);
    dd_free(s);
    if (st != DDPM_OK) {
        ddpm_trainer_free(t);
        return st;
    }
    t->should_stop = opts->should_stop;
    t->stop_user = opts->stop_user;
    t->last_checkpoint = t->s.step;   /* this step is on disk already: a stop right away rewrites nothing */
    *out = t;
    return DDPM_OK;
}
