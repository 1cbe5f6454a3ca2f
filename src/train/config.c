/* config.c — the training configuration: defaults, validation, the learning-rate and EMA-decay schedules,
   and training_state.json (writer and strict parser, both driven by one field table). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/core.h"
#include "train/train.h"

#define DD_PI 3.14159265358979323846

void ddpm_train_config_default(ddpm_train_config *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->objective = DDPM_PRED_EPS;
    c->min_snr_gamma = 0.0;
    ddpm_schedule_config_default(&c->schedule);
    c->steps = 10000;
    c->batch = 64;
    c->grad_accum = 1;
    c->lr = 5e-4;                     /* the tested MNIST recipe (docs/train.md, docs/quality.md) */
    c->warmup_steps = 100;
    c->lr_schedule = DDPM_LR_CONSTANT;
    c->lr_total_steps = 0;
    ddpm_adamw_config ac;
    ddpm_adamw_config_default(&ac);   /* torch.optim.AdamW's defaults */
    c->adam_beta1 = ac.beta1;
    c->adam_beta2 = ac.beta2;
    c->adam_eps = ac.eps;
    c->weight_decay = ac.weight_decay;
    c->grad_clip = 1.0;               /* accelerator.clip_grad_norm_(..., 1.0) in diffusers' scripts */
    c->use_ema = 1;
    c->ema_max_decay = 0.9999;
    c->ema_min_decay = 0.0;
    c->ema_warmup = 1;
    c->ema_inv_gamma = 1.0;           /* diffusers EMAModel defaults */
    c->ema_power = 2.0 / 3.0;
    c->label_dropout = 0.1;
    c->hflip = 0;
    c->seed = 0;
    c->checkpoint_every = 500;
    c->keep_checkpoints = 2;
    c->engine = DDPM_ENGINE_FAST;
    c->memory_limit = 0;
}

void ddpm_train_resume_options_default(ddpm_train_resume_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->steps = 0;
    o->checkpoint_every = -1;
    o->keep_checkpoints = -1;
    o->engine = DDPM_ENGINE_FAST;
}

const char *dd_train_objective_name(ddpm_prediction p) {
    return p == DDPM_PRED_EPS ? "eps" : p == DDPM_PRED_X0 ? "x0" : p == DDPM_PRED_V ? "v" : NULL;
}

/* diffusers get_scheduler: "constant_with_warmup" and "cosine" (get_cosine_schedule_with_warmup, num_cycles
   0.5): during warm-up lr * step / warmup, then lr or lr * 0.5 (1 + cos(pi * progress)). The rate of step 0
   is 0 when there is a warm-up, as LambdaLR gives it. Past the cosine's end the rate stays 0. */
double ddpm_train_lr(const ddpm_train_config *c, int64_t step) {
    if (!c || step < 0) return 0.0;
    int64_t w = c->warmup_steps;
    if (step < w) return c->lr * ((double)step / (double)(w > 1 ? w : 1));
    if (c->lr_schedule != DDPM_LR_COSINE) return c->lr;
    int64_t total = c->lr_total_steps > 0 ? c->lr_total_steps : c->steps;
    int64_t span = total - w > 1 ? total - w : 1;
    double progress = (double)(step - w) / (double)span;
    if (progress > 1.0) progress = 1.0;
    double f = 0.5 * (1.0 + cos(DD_PI * 0.5 * 2.0 * progress));
    return c->lr * (f > 0.0 ? f : 0.0);
}

/* diffusers EMAModel.get_decay(optimization_step) with update_after_step 0. */
double ddpm_train_ema_decay(const ddpm_train_config *c, int64_t k) {
    if (!c) return 0.0;
    int64_t step = k - 1 > 0 ? k - 1 : 0;
    if (step <= 0) return 0.0;
    double d = c->ema_warmup ? 1.0 - pow(1.0 + (double)step / c->ema_inv_gamma, -c->ema_power)
                             : (1.0 + (double)step) / (10.0 + (double)step);
    if (d > c->ema_max_decay) d = c->ema_max_decay;
    if (d < c->ema_min_decay) d = c->ema_min_decay;
    return d;
}

static int in01(double x) { return x >= 0.0 && x < 1.0; }

ddpm_status dd_train_config_validate(const ddpm_train_config *c) {
    const char *w = "training configuration";
    if (!c) return dd_error(DDPM_ERR_INVALID_ARG, "%s is NULL", w);
    if (!dd_train_objective_name(c->objective))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: objective %d is not eps, x0 or v", w, (int)c->objective);
    if (!(isfinite(c->min_snr_gamma) && c->min_snr_gamma >= 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: min_snr_gamma = %g must be >= 0 (0 = off)", w, c->min_snr_gamma);
    if (!c->schedule.name || !c->schedule.name[0])
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: the schedule has no name", w);
    if (strlen(c->schedule.name) >= DD_TRAIN_NAME_MAX)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: the schedule name is longer than %d bytes", w, DD_TRAIN_NAME_MAX - 1);
    if (c->steps < 1 || c->steps >= DD_TRAIN_INT_MAX)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: steps = %lld must be >= 1", w, (long long)c->steps);
    if (c->batch < 1 || c->batch > (1 << 20))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: batch = %d is out of range (1..%d)", w, c->batch, 1 << 20);
    if (c->grad_accum < 1 || (int64_t)c->batch * c->grad_accum > (1 << 24))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: grad_accum = %d must be >= 1 with batch x grad_accum <= %d", w,
                        c->grad_accum, 1 << 24);
    if (!(isfinite(c->lr) && c->lr > 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: lr = %g must be finite and > 0", w, c->lr);
    if (c->warmup_steps < 0 || c->warmup_steps >= DD_TRAIN_INT_MAX)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: warmup_steps = %lld must be >= 0", w, (long long)c->warmup_steps);
    if (c->lr_schedule != DDPM_LR_CONSTANT && c->lr_schedule != DDPM_LR_COSINE)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: lr_schedule %d is not constant or cosine", w, (int)c->lr_schedule);
    if (c->lr_total_steps < 0 || c->lr_total_steps >= DD_TRAIN_INT_MAX)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: lr_total_steps = %lld must be >= 0", w,
                        (long long)c->lr_total_steps);
    if (!in01(c->adam_beta1) || !in01(c->adam_beta2))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: AdamW betas (%g, %g) must be in [0, 1)", w, c->adam_beta1,
                        c->adam_beta2);
    if (!(isfinite(c->adam_eps) && c->adam_eps >= 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: adam_eps = %g must be >= 0", w, c->adam_eps);
    if (!(isfinite(c->weight_decay) && c->weight_decay >= 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: weight_decay = %g must be >= 0", w, c->weight_decay);
    if (!(isfinite(c->grad_clip) && c->grad_clip >= 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: grad_clip = %g must be >= 0 (0 = off)", w, c->grad_clip);
    if (c->use_ema != 0 && c->use_ema != 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: use_ema = %d must be 0 or 1", w, c->use_ema);
    if (!(c->ema_max_decay >= 0 && c->ema_max_decay <= 1) || !(c->ema_min_decay >= 0 && c->ema_min_decay <= c->ema_max_decay))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: EMA decays (min %g, max %g) need 0 <= min <= max <= 1", w,
                        c->ema_min_decay, c->ema_max_decay);
    if (c->ema_warmup != 0 && c->ema_warmup != 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: ema_warmup = %d must be 0 or 1", w, c->ema_warmup);
    if (!(isfinite(c->ema_inv_gamma) && c->ema_inv_gamma > 0) || !(isfinite(c->ema_power) && c->ema_power > 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: ema_inv_gamma = %g and ema_power = %g must be > 0", w,
                        c->ema_inv_gamma, c->ema_power);
    if (!(c->label_dropout >= 0 && c->label_dropout <= 1))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: label_dropout = %g must be in [0, 1]", w, c->label_dropout);
    if (c->hflip != 0 && c->hflip != 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: hflip = %d must be 0 or 1", w, c->hflip);
    if (c->checkpoint_every < 0 || c->checkpoint_every >= DD_TRAIN_INT_MAX)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: checkpoint_every = %lld must be >= 0 (0 = none)", w,
                        (long long)c->checkpoint_every);
    if (c->keep_checkpoints < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: keep_checkpoints = %d must be >= 0 (0 = all)", w,
                        c->keep_checkpoints);
    if (!ddpm_enum_name(DDPM_ENUM_ENGINE, (int)c->engine))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: unknown engine %d", w, (int)c->engine);
    return DDPM_OK;
}

void dd_train_state_copy(dd_train_state *dst, const dd_train_state *src) {
    if (dst == src) return;
    memcpy(dst, src, sizeof *dst);
    dst->c.schedule.name = dst->name;
}

ddpm_status dd_train_state_set_config(dd_train_state *s, const ddpm_train_config *c) {
    const char *name = c->schedule.name ? c->schedule.name : "";
    size_t n = strlen(name);
    if (n >= DD_TRAIN_NAME_MAX)
        return dd_error(DDPM_ERR_INVALID_ARG, "schedule name is longer than %d bytes", DD_TRAIN_NAME_MAX - 1);
    memmove(s->name, name, n + 1);
    s->c = *c;
    s->c.schedule.name = s->name;
    s->c.should_stop = NULL;
    s->c.stop_user = NULL;
    return DDPM_OK;
}

/* ------------------------------------------------------------------ the field table */

typedef enum {
    F_I64, F_INT, F_BOOL, F_DBL, F_U32, F_SEED, F_NAME, F_OBJECTIVE, F_LRSCHED, F_FORMAT, F_VERSION, F_OBJ
} dd_ftype;

typedef struct dd_field {
    const char *key;
    dd_ftype type;
    size_t off;                  /* into dd_train_state */
    int64_t lo, hi;              /* integer range */
    const struct dd_field *sub;  /* F_OBJ: its fields, terminated by a NULL key */
} dd_field;

#define ST(m) offsetof(dd_train_state, m)
#define BIG (DD_TRAIN_INT_MAX - 1)

static const dd_field schedule_fields[] = {
    {"name", F_NAME, 0, 0, 0, NULL},
    {"T", F_INT, ST(c.schedule.T), 1, 1 << 24, NULL},
    {"beta_start", F_DBL, ST(c.schedule.beta_start), 0, 0, NULL},
    {"beta_end", F_DBL, ST(c.schedule.beta_end), 0, 0, NULL},
    {"scale_to_T", F_BOOL, ST(c.schedule.scale_to_T), 0, 1, NULL},
    {"cosine_s", F_DBL, ST(c.schedule.cosine_s), 0, 0, NULL},
    {"sqrt_s", F_DBL, ST(c.schedule.sqrt_s), 0, 0, NULL},
    {"max_beta", F_DBL, ST(c.schedule.max_beta), 0, 0, NULL},
    {"sigmoid_start", F_DBL, ST(c.schedule.sigmoid_start), 0, 0, NULL},
    {"sigmoid_end", F_DBL, ST(c.schedule.sigmoid_end), 0, 0, NULL},
    {"sigmoid_tau", F_DBL, ST(c.schedule.sigmoid_tau), 0, 0, NULL},
    {NULL, F_INT, 0, 0, 0, NULL}};

static const dd_field config_fields[] = {
    {"objective", F_OBJECTIVE, ST(c.objective), 0, 0, NULL},
    {"min_snr_gamma", F_DBL, ST(c.min_snr_gamma), 0, 0, NULL},
    {"schedule", F_OBJ, 0, 0, 0, schedule_fields},
    {"steps", F_I64, ST(c.steps), 1, BIG, NULL},
    {"batch", F_INT, ST(c.batch), 1, 1 << 20, NULL},
    {"grad_accum", F_INT, ST(c.grad_accum), 1, 1 << 24, NULL},
    {"lr", F_DBL, ST(c.lr), 0, 0, NULL},
    {"warmup_steps", F_I64, ST(c.warmup_steps), 0, BIG, NULL},
    {"lr_schedule", F_LRSCHED, ST(c.lr_schedule), 0, 0, NULL},
    {"lr_total_steps", F_I64, ST(c.lr_total_steps), 0, BIG, NULL},
    {"adam_beta1", F_DBL, ST(c.adam_beta1), 0, 0, NULL},
    {"adam_beta2", F_DBL, ST(c.adam_beta2), 0, 0, NULL},
    {"adam_eps", F_DBL, ST(c.adam_eps), 0, 0, NULL},
    {"weight_decay", F_DBL, ST(c.weight_decay), 0, 0, NULL},
    {"grad_clip", F_DBL, ST(c.grad_clip), 0, 0, NULL},
    {"use_ema", F_BOOL, ST(c.use_ema), 0, 1, NULL},
    {"ema_max_decay", F_DBL, ST(c.ema_max_decay), 0, 0, NULL},
    {"ema_min_decay", F_DBL, ST(c.ema_min_decay), 0, 0, NULL},
    {"ema_warmup", F_BOOL, ST(c.ema_warmup), 0, 1, NULL},
    {"ema_inv_gamma", F_DBL, ST(c.ema_inv_gamma), 0, 0, NULL},
    {"ema_power", F_DBL, ST(c.ema_power), 0, 0, NULL},
    {"label_dropout", F_DBL, ST(c.label_dropout), 0, 0, NULL},
    {"hflip", F_BOOL, ST(c.hflip), 0, 1, NULL},
    {"seed", F_SEED, ST(c.seed), 0, 0, NULL},
    {"checkpoint_every", F_I64, ST(c.checkpoint_every), 0, BIG, NULL},
    {"keep_checkpoints", F_INT, ST(c.keep_checkpoints), 0, 1 << 30, NULL},
    {NULL, F_INT, 0, 0, 0, NULL}};

static const dd_field data_fields[] = {
    {"count", F_I64, ST(data_count), 1, BIG, NULL},
    {"channels", F_INT, ST(data_channels), 1, 4, NULL},
    {"height", F_INT, ST(data_height), 1, 1 << 16, NULL},
    {"width", F_INT, ST(data_width), 1, 1 << 16, NULL},
    {"num_classes", F_INT, ST(data_classes), 0, 1 << 20, NULL},
    {NULL, F_INT, 0, 0, 0, NULL}};

static const dd_field model_fields[] = {
    {"num_params", F_I64, ST(num_params), 0, BIG, NULL},
    {"num_class_embeds", F_INT, ST(num_class_embeds), 0, 1 << 20, NULL},
    {"crc32_params", F_U32, ST(crc_params), 0, 0xffffffffLL, NULL},
    {"crc32_ema", F_U32, ST(crc_ema), 0, 0xffffffffLL, NULL},
    {NULL, F_INT, 0, 0, 0, NULL}};

static const dd_field state_fields[] = {
    {"format", F_FORMAT, 0, 0, 0, NULL},
    {"version", F_VERSION, 0, DD_TRAIN_VERSION, DD_TRAIN_VERSION, NULL},
    {"step", F_I64, ST(step), 0, BIG, NULL},
    {"epoch", F_I64, ST(epoch), 0, BIG, NULL},
    {"position", F_I64, ST(position), 0, BIG, NULL},
    {"images_seen", F_I64, ST(images_seen), 0, BIG, NULL},
    {"ema_optimization_step", F_I64, ST(ema_steps), 0, BIG, NULL},
    {"adamw_steps", F_I64, ST(adamw_steps), 0, BIG, NULL},
    {"data", F_OBJ, 0, 0, 0, data_fields},
    {"model", F_OBJ, 0, 0, 0, model_fields},
    {"config", F_OBJ, 0, 0, 0, config_fields},
    {NULL, F_INT, 0, 0, 0, NULL}};

#define FIELD(s, f, T) ((T *)(void *)((char *)(s) + (f)->off))
#define CFIELD(s, f, T) ((const T *)(const void *)((const char *)(s) + (f)->off))

/* ------------------------------------------------------------------ writer */

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double. */
static void sb_double(dd_text *b, double x) {
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    dd_text_printf(b, "%s", buf);
}

static void write_fields(dd_text *b, const dd_train_state *s, const dd_field *fs, int indent) {
    dd_text_printf(b, "{");
    for (const dd_field *f = fs; f->key; f++) {
        dd_text_printf(b, "%s\n%*s\"%s\": ", f == fs ? "" : ",", indent + 2, "", f->key);
        switch (f->type) {
        case F_I64: dd_text_printf(b, "%lld", (long long)*CFIELD(s, f, int64_t)); break;
        case F_INT: dd_text_printf(b, "%d", *CFIELD(s, f, int)); break;
        case F_VERSION: dd_text_printf(b, "%d", DD_TRAIN_VERSION); break;
        case F_BOOL: dd_text_printf(b, "%s", *CFIELD(s, f, int) ? "true" : "false"); break;
        case F_DBL: sb_double(b, *CFIELD(s, f, double)); break;
        case F_U32: dd_text_printf(b, "%lu", (unsigned long)*CFIELD(s, f, uint32_t)); break;
        case F_SEED: dd_text_printf(b, "\"%llu\"", (unsigned long long)*CFIELD(s, f, uint64_t)); break;
        case F_NAME: dd_text_string(b, s->name); break;
        case F_OBJECTIVE: dd_text_string(b, dd_train_objective_name(s->c.objective)); break;
        case F_LRSCHED: dd_text_string(b, s->c.lr_schedule == DDPM_LR_COSINE ? "cosine" : "constant"); break;
        case F_FORMAT: dd_text_string(b, DD_TRAIN_FORMAT); break;
        case F_OBJ: write_fields(b, s, f->sub, indent + 2); break;
        }
    }
    dd_text_printf(b, "\n%*s}", indent, "");
}

ddpm_status dd_train_state_to_json(const dd_train_state *s, char **json) {
    *json = NULL;
    dd_text b = {0};
    write_fields(&b, s, state_fields, 0);
    dd_text_printf(&b, "\n");
    if (dd_text_finish(&b, json) != DDPM_OK) return dd_error(DDPM_ERR_NOMEM, "out of memory writing the training state");
    return DDPM_OK;
}

/* ------------------------------------------------------------------ parser */

static ddpm_status parse_field(const cJSON *it, const dd_field *f, const char *what, const char *path,
                               dd_train_state *s) {
    switch (f->type) {
    case F_I64:
    case F_INT:
    case F_U32:
    case F_VERSION: {
        if (!cJSON_IsNumber(it))
            return dd_error(DDPM_ERR_FORMAT, "%s: %s must be an integer", what, path);
        double v = it->valuedouble;
        if (!(v == floor(v)) || v < (double)f->lo || v > (double)f->hi)
            return dd_error(DDPM_ERR_FORMAT, "%s: %s = %.17g is not an integer in %lld..%lld", what, path, v,
                            (long long)f->lo, (long long)f->hi);
        if (f->type == F_I64) *FIELD(s, f, int64_t) = (int64_t)v;
        else if (f->type == F_U32) *FIELD(s, f, uint32_t) = (uint32_t)v;
        else if (f->type == F_INT) *FIELD(s, f, int) = (int)v;   /* F_VERSION is only checked */
        return DDPM_OK;
    }
    case F_BOOL:
        if (!cJSON_IsBool(it)) return dd_error(DDPM_ERR_FORMAT, "%s: %s must be true or false", what, path);
        *FIELD(s, f, int) = cJSON_IsTrue(it) ? 1 : 0;
        return DDPM_OK;
    case F_DBL:
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return dd_error(DDPM_ERR_FORMAT, "%s: %s must be a finite number", what, path);
        *FIELD(s, f, double) = it->valuedouble;
        return DDPM_OK;
    default:
        break;
    }
    if (!cJSON_IsString(it) || !it->valuestring)
        return dd_error(DDPM_ERR_FORMAT, "%s: %s must be a string", what, path);
    const char *v = it->valuestring;
    switch (f->type) {
    case F_SEED: {
        uint64_t x = 0;
        if (!v[0] || strlen(v) > 20) return dd_error(DDPM_ERR_FORMAT, "%s: %s must be a decimal 64-bit number", what, path);
        for (const char *p = v; *p; p++) {
            unsigned d = (unsigned)(*p - '0');
            if (d > 9 || x > (UINT64_MAX - d) / 10)
                return dd_error(DDPM_ERR_FORMAT, "%s: %s = \"%.40s\" is not a decimal 64-bit number", what, path, v);
            x = x * 10 + d;
        }
        *FIELD(s, f, uint64_t) = x;
        return DDPM_OK;
    }
    case F_NAME:
        if (!v[0] || strlen(v) >= DD_TRAIN_NAME_MAX)
            return dd_error(DDPM_ERR_FORMAT, "%s: %s must be a schedule name of 1..%d bytes", what, path,
                            DD_TRAIN_NAME_MAX - 1);
        memcpy(s->name, v, strlen(v) + 1);
        return DDPM_OK;
    case F_OBJECTIVE:
        if (strcmp(v, "eps") == 0) s->c.objective = DDPM_PRED_EPS;
        else if (strcmp(v, "x0") == 0) s->c.objective = DDPM_PRED_X0;
        else if (strcmp(v, "v") == 0) s->c.objective = DDPM_PRED_V;
        else return dd_error(DDPM_ERR_FORMAT, "%s: %s = \"%.40s\" (expected eps, x0 or v)", what, path, v);
        return DDPM_OK;
    case F_LRSCHED:
        if (strcmp(v, "constant") == 0) s->c.lr_schedule = DDPM_LR_CONSTANT;
        else if (strcmp(v, "cosine") == 0) s->c.lr_schedule = DDPM_LR_COSINE;
        else return dd_error(DDPM_ERR_FORMAT, "%s: %s = \"%.40s\" (expected constant or cosine)", what, path, v);
        return DDPM_OK;
    case F_FORMAT:
        if (strcmp(v, DD_TRAIN_FORMAT) != 0)
            return dd_error(DDPM_ERR_FORMAT, "%s: format \"%.40s\" is not \"%s\"", what, v, DD_TRAIN_FORMAT);
        return DDPM_OK;
    default:
        return dd_error(DDPM_ERR_INTERNAL, "%s: field %s has no parser", what, path);
    }
}

/* Every key of the object must be in the table, once; every key of the table must be present. */
static ddpm_status parse_object(const cJSON *obj, const dd_field *fs, const char *what, const char *prefix,
                                dd_train_state *s, int depth) {
    char path[160];
    if (!cJSON_IsObject(obj))
        return dd_error(DDPM_ERR_FORMAT, "%s: %s must be a JSON object", what, prefix[0] ? prefix : "the file");
    int nf = 0;
    while (fs[nf].key) nf++;
    unsigned char seen[64] = {0};
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *k = it->string ? it->string : "";
        int i = 0;
        while (i < nf && strcmp(fs[i].key, k) != 0) i++;
        snprintf(path, sizeof path, "%.60s%s%.60s", prefix, prefix[0] ? "." : "", k);
        if (i == nf) return dd_error(DDPM_ERR_FORMAT, "%s: unknown key '%s'", what, path);
        if (seen[i]) return dd_error(DDPM_ERR_FORMAT, "%s: key '%s' appears twice", what, path);
        seen[i] = 1;
        ddpm_status st = fs[i].type == F_OBJ ? parse_object(it, fs[i].sub, what, path, s, depth + 1)
                                             : parse_field(it, &fs[i], what, path, s);
        if (st != DDPM_OK) return st;
    }
    for (int i = 0; i < nf; i++)
        if (!seen[i])
            return dd_error(DDPM_ERR_FORMAT, "%s: missing key '%s%s%s'", what, prefix, prefix[0] ? "." : "",
                            fs[i].key);
    (void)depth;
    return DDPM_OK;
}

ddpm_status dd_train_state_parse(const char *json, size_t len, const char *what, dd_train_state *out) {
    if (!json || !out) return dd_error(DDPM_ERR_INVALID_ARG, "dd_train_state_parse: NULL argument");
    if (!what) what = DD_TRAIN_STATE_JSON;
    if (len > DD_TRAIN_JSON_MAX)
        return dd_error(DDPM_ERR_FORMAT, "%s: %zu bytes exceeds the limit of %zu", what, len, DD_TRAIN_JSON_MAX);
    memset(out, 0, sizeof *out);
    ddpm_train_config_default(&out->c);
    out->c.schedule.name = out->name;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return dd_error(DDPM_ERR_FORMAT, "%s: not valid JSON", what);
    ddpm_status st = parse_object(root, state_fields, what, "", out, 0);
    cJSON_Delete(root);
    if (st != DDPM_OK) return st;
    out->c.schedule.name = out->name;
    if (dd_train_config_validate(&out->c) != DDPM_OK) return dd_error_prefix(DDPM_ERR_FORMAT, what);
    /* the counters of a run agree with one another */
    const int64_t global = (int64_t)out->c.batch * out->c.grad_accum;
    if (out->step > out->c.steps)
        return dd_error(DDPM_ERR_FORMAT, "%s: step %lld is past the run's %lld steps", what, (long long)out->step,
                        (long long)out->c.steps);
    if (out->images_seen / global != out->step || out->images_seen % global != 0)
        return dd_error(DDPM_ERR_FORMAT, "%s: images_seen %lld is not step %lld x batch %lld", what,
                        (long long)out->images_seen, (long long)out->step, (long long)global);
    if (out->position >= out->data_count || out->images_seen / out->data_count != out->epoch ||
        out->images_seen % out->data_count != out->position)
        return dd_error(DDPM_ERR_FORMAT, "%s: data cursor (epoch %lld, position %lld) does not match %lld images "
                        "seen of %lld", what, (long long)out->epoch, (long long)out->position,
                        (long long)out->images_seen, (long long)out->data_count);
    if (out->adamw_steps != out->step || out->ema_steps != (out->c.use_ema ? out->step : 0))
        return dd_error(DDPM_ERR_FORMAT, "%s: optimiser steps %lld / EMA steps %lld do not match step %lld", what,
                        (long long)out->adamw_steps, (long long)out->ema_steps, (long long)out->step);
    if (out->num_class_embeds > 0 && out->data_classes < 1)
        return dd_error(DDPM_ERR_FORMAT, "%s: a class-conditional model trained on unlabelled data", what);
    return DDPM_OK;
}
