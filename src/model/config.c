/* config.c — the network configuration: a diffusers UNet2DModel config.json (every field v0.27.2 writes)
   parsed with cJSON and checked against what the engine implements; the named presets; the limits. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

#define CONFIG_MAX_BYTES ((size_t)1 << 20)

const char *const dd_model_preset_names = "mnist, cifar10, tiny, basic";

void dd_model_config_defaults(dd_model_config *c) {
    static const int ch[4] = {224, 448, 672, 896};
    static const int down_attn[4] = {0, 1, 1, 1}, up_attn[4] = {1, 1, 1, 0};
    memset(c, 0, sizeof *c);
    c->kind = DD_MODEL_UNET2D;
    c->sample_size = 0;                 /* null */
    c->in_channels = c->out_channels = 3;
    c->flip_sin_to_cos = 1;
    c->num_blocks = 4;
    for (int i = 0; i < 4; i++) {
        c->block_out_channels[i] = ch[i];
        c->down_attn[i] = down_attn[i];
        c->up_attn[i] = up_attn[i];
    }
    c->layers_per_block = 2;
    c->mid_block_scale_factor = 1.0;
    c->downsample_padding = 1;
    c->attention_head_dim = 8;
    c->norm_num_groups = 32;
    c->norm_eps = 1e-5;
    c->mid_block = 1;
    c->add_attention = 1;
    c->null_class = -1;
}

static void set_blocks(dd_model_config *c, int n, const int *ch, const int *down_attn, const int *up_attn) {
    c->num_blocks = n;
    for (int i = 0; i < n; i++) {
        c->block_out_channels[i] = ch[i];
        c->down_attn[i] = down_attn[i];
        c->up_attn[i] = up_attn[i];
    }
}

int dd_model_config_preset(const char *name, dd_model_config *out) {
    dd_model_config c;
    dd_model_config_defaults(&c);
    if (!name) return 0;
    if (strcmp(name, "mnist") == 0) {          /* the seed article's UNet2DModel, 1,707,009 parameters */
        static const int ch[3] = {32, 64, 64}, da[3] = {0, 1, 1}, ua[3] = {1, 1, 0};
        c.sample_size = 28;
        c.in_channels = c.out_channels = 1;
        c.layers_per_block = 2;
        set_blocks(&c, 3, ch, da, ua);
    } else if (strcmp(name, "cifar10") == 0) { /* google/ddpm-cifar10-32 (Ho et al. 2020), 35,746,307 */
        static const int ch[4] = {128, 256, 256, 256}, da[4] = {0, 1, 0, 0}, ua[4] = {0, 0, 1, 0};
        c.sample_size = 32;
        c.in_channels = c.out_channels = 3;
        c.layers_per_block = 2;
        set_blocks(&c, 4, ch, da, ua);
        c.attention_head_dim = 0;               /* null: one head of 256 channels */
        c.downsample_padding = 0;
        c.flip_sin_to_cos = 0;
        c.freq_shift = 1;
        c.norm_eps = 1e-6;
        c.norm_num_groups = 32;
        c.dropout = 0.1;
    } else if (strcmp(name, "tiny") == 0) {    /* the oracle's unet_tiny, 45,259 parameters */
        static const int ch[2] = {8, 16}, da[2] = {0, 1}, ua[2] = {1, 0};
        c.sample_size = 8;
        c.in_channels = c.out_channels = 3;
        c.layers_per_block = 1;
        set_blocks(&c, 2, ch, da, ua);
        c.norm_num_groups = 4;
        c.attention_head_dim = 4;
    } else if (strcmp(name, "basic") == 0) {   /* the seed's BasicUNet, 309,057 parameters */
        c.kind = DD_MODEL_BASIC;
        c.sample_size = 28;
        c.in_channels = c.out_channels = 1;
    } else {
        return 0;
    }
    *out = c;
    return 1;
}

int dd_model_attn_heads(const dd_model_config *c, int C) {
    return c->attention_head_dim > 0 ? C / c->attention_head_dim : 1;
}

/* ------------------------------------------------------------------ validation */

static ddpm_status check_attn(const dd_model_config *c, const char *what, int C, int groups, const char *where) {
    int d = c->attention_head_dim;
    if (d > 0 && (d > C || C % d != 0))
        return dd_error(DDPM_ERR_INVALID_ARG,
                        "%s: attention_head_dim = %d does not divide the %d channels of %s (heads = channels / "
                        "attention_head_dim must be a whole number)", what, d, C, where);
    if (C % groups != 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: the %d channels of %s's attention are not divisible by its %d "
                        "GroupNorm groups", what, C, where, groups);
    return DDPM_OK;
}

/* The null class (private key _ddpm_null_class): -1, or a class of the embedding table. */
static ddpm_status check_null_class(const dd_model_config *c, const char *what) {
    const int nce = c->kind == DD_MODEL_BASIC ? 0 : c->num_class_embeds;
    if (c->null_class == -1 || (c->null_class >= 0 && c->null_class < nce)) return DDPM_OK;
    if (nce < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: _ddpm_null_class = %d, but the model has no class embedding "
                        "(num_class_embeds is null), so it has no null class", what, c->null_class);
    return dd_error(DDPM_ERR_INVALID_ARG, "%s: _ddpm_null_class = %d is out of range: the model has "
                    "num_class_embeds = %d (classes 0..%d)", what, c->null_class, nce, nce - 1);
}

ddpm_status dd_model_check_guidance(double w, int null_class, const char *what) {
    if (!(w == 0 || (w > 0 && w <= 100)))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: _ddpm_guidance = %g must be in (0, 100] (or 0: none)", what, w);
    if (w > 0 && null_class < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: _ddpm_guidance = %g needs a null class (_ddpm_null_class): the "
                        "model has no null class to guide with", what, w);
    return DDPM_OK;
}

ddpm_status dd_model_config_validate(const dd_model_config *c, const char *what) {
    if (!what) what = "config";
    ddpm_status st;
    if (c->sample_size == 0)
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: sample_size is null; the engine plans for a fixed image size, "
                        "so set sample_size (e.g. 28 or 32)", what);
    if (c->sample_size < 1 || c->sample_size > DD_MODEL_MAX_SIZE)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: sample_size = %d is out of range (1..%d)", what, c->sample_size,
                        DD_MODEL_MAX_SIZE);
    if (c->in_channels < 1 || c->in_channels > DD_MODEL_MAX_IO_CHANNELS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: in_channels = %d is out of range (1..%d)", what, c->in_channels,
                        DD_MODEL_MAX_IO_CHANNELS);
    if (c->out_channels < 1 || c->out_channels > DD_MODEL_MAX_IO_CHANNELS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: out_channels = %d is out of range (1..%d)", what,
                        c->out_channels, DD_MODEL_MAX_IO_CHANNELS);
    if (c->kind == DD_MODEL_BASIC) {
        if (c->sample_size % 4 != 0)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: BasicUNet pools twice, so sample_size = %d must be a multiple "
                            "of 4", what, c->sample_size);
        if ((st = check_null_class(c, what)) != DDPM_OK) return st;
        return dd_model_check_guidance(c->guidance, c->null_class, what);
    }
    int n = c->num_blocks;
    if (n < 1 || n > DD_MODEL_MAX_BLOCKS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: block_out_channels has %d entries (1..%d supported)", what, n,
                        DD_MODEL_MAX_BLOCKS);
    int G = c->norm_num_groups;
    if (G < 1 || G > DD_MODEL_MAX_CHANNELS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: norm_num_groups = %d is out of range (1..%d)", what, G,
                        DD_MODEL_MAX_CHANNELS);
    for (int i = 0; i < n; i++) {
        int C = c->block_out_channels[i];
        if (C < 1 || C > DD_MODEL_MAX_CHANNELS)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: block_out_channels[%d] = %d is out of range (1..%d)", what, i,
                            C, DD_MODEL_MAX_CHANNELS);
        if (C % G != 0)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: block_out_channels[%d] = %d is not divisible by "
                            "norm_num_groups = %d", what, i, C, G);
    }
    int down = 1 << (n - 1);
    if (c->sample_size % down != 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: sample_size = %d must be divisible by %d (the %d down blocks halve "
                        "it %d times and the up blocks double it back)", what, c->sample_size, down, n, n - 1);
    if (c->layers_per_block < 1 || c->layers_per_block > DD_MODEL_MAX_LAYERS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: layers_per_block = %d is out of range (1..%d)", what,
                        c->layers_per_block, DD_MODEL_MAX_LAYERS);
    if (!(isfinite(c->mid_block_scale_factor) && c->mid_block_scale_factor > 0.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: mid_block_scale_factor = %g must be a positive number", what,
                        c->mid_block_scale_factor);
    if (c->downsample_padding != 0 && c->downsample_padding != 1)
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: downsample_padding = %d is not supported (supported: 0, 1)", what,
                        c->downsample_padding);
    if (!(c->dropout >= 0.0 && c->dropout < 1.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: dropout = %g is out of range [0, 1)", what, c->dropout);
    if (!(isfinite(c->norm_eps) && c->norm_eps > 0.0 && c->norm_eps < 1.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: norm_eps = %g is out of range (0, 1)", what, c->norm_eps);
    if (!isfinite(c->freq_shift) || fabs(c->freq_shift) > 1e6)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: freq_shift = %g is out of range", what, c->freq_shift);
    int half = c->block_out_channels[0] / 2;
    if (half > 0 && (double)half - c->freq_shift == 0.0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: freq_shift = %g equals half of block_out_channels[0] = %d, which "
                        "divides the sinusoid's exponent by zero", what, c->freq_shift, c->block_out_channels[0]);
    if (c->attention_head_dim < 0 || c->attention_head_dim > DD_MODEL_MAX_CHANNELS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: attention_head_dim = %d is out of range (1..%d or null)", what,
                        c->attention_head_dim, DD_MODEL_MAX_CHANNELS);
    if (c->attn_norm_num_groups < 0 || c->attn_norm_num_groups > DD_MODEL_MAX_CHANNELS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: attn_norm_num_groups = %d is out of range (1..%d or null)", what,
                        c->attn_norm_num_groups, DD_MODEL_MAX_CHANNELS);
    if (c->num_class_embeds < 0 || c->num_class_embeds > DD_MODEL_MAX_CLASSES)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: num_class_embeds = %d is out of range (1..%d or null)", what,
                        c->num_class_embeds, DD_MODEL_MAX_CLASSES);
    if ((st = check_null_class(c, what)) != DDPM_OK) return st;
    if ((st = dd_model_check_guidance(c->guidance, c->null_class, what)) != DDPM_OK) return st;
    if (c->num_train_timesteps < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: num_train_timesteps = %d must be positive or null", what,
                        c->num_train_timesteps);
    char where[64];
    for (int i = 0; i < n; i++)
        if (c->down_attn[i]) {
            snprintf(where, sizeof where, "down_blocks.%d", i);
            if ((st = check_attn(c, what, c->block_out_channels[i], G, where)) != DDPM_OK) return st;
        }
    for (int i = 0; i < n; i++)
        if (c->up_attn[i]) {
            snprintf(where, sizeof where, "up_blocks.%d", i);
            if ((st = check_attn(c, what, c->block_out_channels[n - 1 - i], G, where)) != DDPM_OK) return st;
        }
    if (c->mid_block && c->add_attention) {
        int ag = c->attn_norm_num_groups > 0 ? c->attn_norm_num_groups : G;
        if ((st = check_attn(c, what, c->block_out_channels[n - 1], ag, "mid_block")) != DDPM_OK) return st;
    }
    return DDPM_OK;
}

/* ------------------------------------------------------------------ parsing */

typedef enum {
    F_SAMPLE_SIZE, F_IN_CHANNELS, F_OUT_CHANNELS, F_CENTER_INPUT, F_TIME_EMB_TYPE, F_FREQ_SHIFT, F_FLIP,
    F_DOWN_TYPES, F_UP_TYPES, F_BLOCK_OUT, F_LAYERS, F_MID_SCALE, F_DOWN_PAD, F_DOWN_TYPE, F_UP_TYPE, F_DROPOUT,
    F_ACT_FN, F_HEAD_DIM, F_GROUPS, F_ATTN_GROUPS, F_EPS, F_SCALE_SHIFT, F_ADD_ATTN, F_CLASS_TYPE, F_NUM_CLASS,
    F_NUM_TRAIN_T, F_MID_TYPE, F_TIME_EMB_DIM, F_COUNT
} field;

static const char *const field_names[F_COUNT] = {
    "sample_size", "in_channels", "out_channels", "center_input_sample", "time_embedding_type", "freq_shift",
    "flip_sin_to_cos", "down_block_types", "up_block_types", "block_out_channels", "layers_per_block",
    "mid_block_scale_factor", "downsample_padding", "downsample_type", "upsample_type", "dropout", "act_fn",
    "attention_head_dim", "norm_num_groups", "attn_norm_num_groups", "norm_eps", "resnet_time_scale_shift",
    "add_attention", "class_embed_type", "num_class_embeds", "num_train_timesteps", "mid_block_type",
    "time_embedding_dim",
};

/* The JSON text of a value for a message, shortened to fit buf. */
const char *dd_json_text(const cJSON *it, char *buf, size_t cap) {
    char *s = cJSON_PrintUnformatted(it);
    if (!s) {
        snprintf(buf, cap, "?");
        return buf;
    }
    size_t n = strlen(s);
    if (n < cap) {
        memcpy(buf, s, n + 1);
    } else {
        memcpy(buf, s, cap - 4);
        memcpy(buf + cap - 4, "...", 4);
    }
    cJSON_free(s);
    return buf;
}

ddpm_status dd_json_type_error(const char *what, const char *key, const char *want, const cJSON *it) {
    char buf[80];
    return dd_error(DDPM_ERR_FORMAT, "%s: %s must be %s (got %s)", what, key, want, dd_json_text(it, buf, sizeof buf));
}

static int is_integer(const cJSON *it) {
    return cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble == floor(it->valuedouble) &&
           fabs(it->valuedouble) < 2147483648.0;
}

/* An integer in [lo, hi]; null gives null_value when allow_null. */
ddpm_status dd_json_int(const cJSON *it, const char *what, const char *key, int lo, int hi, int allow_null,
                           int null_value, int *out) {
    if (allow_null && cJSON_IsNull(it)) {
        *out = null_value;
        return DDPM_OK;
    }
    if (!is_integer(it)) return dd_json_type_error(what, key, allow_null ? "an integer or null" : "an integer", it);
    double v = it->valuedouble;
    if (v < lo || v > hi)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: %s = %.0f is out of range (%d..%d)", what, key, v, lo, hi);
    *out = (int)v;
    return DDPM_OK;
}

ddpm_status dd_json_bool(const cJSON *it, const char *what, const char *key, int *out) {
    if (!cJSON_IsBool(it)) return dd_json_type_error(what, key, "true or false", it);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return DDPM_OK;
}

ddpm_status dd_json_number(const cJSON *it, const char *what, const char *key, double *out) {
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) return dd_json_type_error(what, key, "a number", it);
    *out = it->valuedouble;
    return DDPM_OK;
}

/* A string that must equal one of `supported` (ASCII case-insensitive when nocase); returns its index. */
ddpm_status dd_json_choice(const cJSON *it, const char *what, const char *key, const char *const *supported,
                              int nocase, int *index) {
    if (!cJSON_IsString(it) || !it->valuestring) return dd_json_type_error(what, key, "a string", it);
    const char *s = it->valuestring;
    for (int i = 0; supported[i]; i++) {
        int eq = 1;
        const char *a = s, *b = supported[i];
        for (; *a && *b; a++, b++)
            if (nocase ? tolower((unsigned char)*a) != tolower((unsigned char)*b) : *a != *b) eq = 0;
        if (eq && !*a && !*b) {
            *index = i;
            return DDPM_OK;
        }
    }
    char list[160] = "", buf[80];
    size_t used = 0;
    for (int i = 0; supported[i] && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", supported[i]);
    return dd_error(DDPM_ERR_UNSUPPORTED, "%s: %s = %s is not supported (supported: %s)", what, key,
                    dd_json_text(it, buf, sizeof buf), list);
}

/* A list of block type names: flags[i] = index of the name in `types` (0 plain, 1 attention). */
static ddpm_status get_block_types(const cJSON *it, const char *what, const char *key, const char *const *types,
                                   int *flags, int *count) {
    if (!cJSON_IsArray(it)) return dd_json_type_error(what, key, "a list of block type names", it);
    int n = cJSON_GetArraySize(it);
    if (n < 1 || n > DD_MODEL_MAX_BLOCKS)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: %s has %d entries (1..%d supported)", what, key, n,
                        DD_MODEL_MAX_BLOCKS);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, it) {
        char name[64];
        snprintf(name, sizeof name, "%s[%d]", key, i);
        if (!cJSON_IsString(e) || !e->valuestring) return dd_json_type_error(what, name, "a block type name", e);
        int k = -1;
        for (int j = 0; types[j]; j++)
            if (strcmp(e->valuestring, types[j]) == 0) k = j;
        if (k < 0)
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: %s = '%.64s' is not supported (supported: %s, %s)", what,
                            name, e->valuestring, types[0], types[1]);
        flags[i++] = k;
    }
    *count = n;
    return DDPM_OK;
}

typedef struct {
    int n_down, n_up, n_out;     /* list lengths seen (-1 = not given) */
    int time_dim;                /* time_embedding_dim given as a width; 0 = absent or null */
} list_lengths;

static ddpm_status parse_field(field f, const cJSON *it, const char *what, dd_model_config *c, list_lengths *ll) {
    static const char *const down_types[] = {"DownBlock2D", "AttnDownBlock2D", NULL};
    static const char *const up_types[] = {"UpBlock2D", "AttnUpBlock2D", NULL};
    static const char *const acts[] = {"silu", "swish", NULL};
    static const char *const positional[] = {"positional", NULL};
    static const char *const conv[] = {"conv", NULL};
    static const char *const dflt[] = {"default", NULL};
    const char *key = field_names[f];
    int idx = 0;
    ddpm_status st = DDPM_OK;
    switch (f) {
    case F_SAMPLE_SIZE:
        if (cJSON_IsArray(it)) {   /* diffusers also allows [height, width] */
            const cJSON *h = cJSON_GetArrayItem(it, 0), *w = cJSON_GetArrayItem(it, 1);
            if (cJSON_GetArraySize(it) != 2 || !is_integer(h) || !is_integer(w))
                return dd_json_type_error(what, key, "an integer or [height, width]", it);
            if (h->valuedouble != w->valuedouble)
                return dd_error(DDPM_ERR_UNSUPPORTED, "%s: sample_size = [%.0f, %.0f] is not supported (square "
                                "images only)", what, h->valuedouble, w->valuedouble);
            return dd_json_int(h, what, key, 1, DD_MODEL_MAX_SIZE, 0, 0, &c->sample_size);
        }
        return dd_json_int(it, what, key, 1, DD_MODEL_MAX_SIZE, 1, 0, &c->sample_size);
    case F_IN_CHANNELS: return dd_json_int(it, what, key, 1, DD_MODEL_MAX_IO_CHANNELS, 0, 0, &c->in_channels);
    case F_OUT_CHANNELS: return dd_json_int(it, what, key, 1, DD_MODEL_MAX_IO_CHANNELS, 0, 0, &c->out_channels);
    case F_CENTER_INPUT: return dd_json_bool(it, what, key, &c->center_input_sample);
    case F_TIME_EMB_TYPE: return dd_json_choice(it, what, key, positional, 0, &idx);
    case F_FREQ_SHIFT: return dd_json_number(it, what, key, &c->freq_shift);
    case F_FLIP: return dd_json_bool(it, what, key, &c->flip_sin_to_cos);
    case F_DOWN_TYPES: return get_block_types(it, what, key, down_types, c->down_attn, &ll->n_down);
    case F_UP_TYPES: return get_block_types(it, what, key, up_types, c->up_attn, &ll->n_up);
    case F_BLOCK_OUT: {
        if (!cJSON_IsArray(it)) return dd_json_type_error(what, key, "a list of integers", it);
        int n = cJSON_GetArraySize(it);
        if (n < 1 || n > DD_MODEL_MAX_BLOCKS)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: block_out_channels has %d entries (1..%d supported)", what, n,
                            DD_MODEL_MAX_BLOCKS);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, it) {
            char name[64];
            snprintf(name, sizeof name, "block_out_channels[%d]", i);
            if ((st = dd_json_int(e, what, name, 1, DD_MODEL_MAX_CHANNELS, 0, 0, &c->block_out_channels[i])) != DDPM_OK)
                return st;
            i++;
        }
        c->num_blocks = ll->n_out = n;
        return DDPM_OK;
    }
    case F_LAYERS: return dd_json_int(it, what, key, 1, DD_MODEL_MAX_LAYERS, 0, 0, &c->layers_per_block);
    case F_MID_SCALE: return dd_json_number(it, what, key, &c->mid_block_scale_factor);
    case F_DOWN_PAD: return dd_json_int(it, what, key, -1000000, 1000000, 0, 0, &c->downsample_padding);
    case F_DOWN_TYPE: return dd_json_choice(it, what, key, conv, 0, &idx);
    case F_UP_TYPE: return dd_json_choice(it, what, key, conv, 0, &idx);
    case F_DROPOUT: return dd_json_number(it, what, key, &c->dropout);
    case F_ACT_FN:
        if ((st = dd_json_choice(it, what, key, acts, 1, &idx)) != DDPM_OK) return st;
        c->act_swish = idx == 1;
        return DDPM_OK;
    case F_HEAD_DIM:
        if (cJSON_IsArray(it))
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: attention_head_dim given per block (a list) is not supported "
                            "by UNet2DModel; give one integer or null", what);
        return dd_json_int(it, what, key, 1, DD_MODEL_MAX_CHANNELS, 1, 0, &c->attention_head_dim);
    case F_GROUPS: return dd_json_int(it, what, key, 1, DD_MODEL_MAX_CHANNELS, 0, 0, &c->norm_num_groups);
    case F_ATTN_GROUPS: return dd_json_int(it, what, key, 1, DD_MODEL_MAX_CHANNELS, 1, 0, &c->attn_norm_num_groups);
    case F_EPS: return dd_json_number(it, what, key, &c->norm_eps);
    case F_SCALE_SHIFT: return dd_json_choice(it, what, key, dflt, 0, &idx);
    case F_ADD_ATTN: return dd_json_bool(it, what, key, &c->add_attention);
    case F_CLASS_TYPE:
        if (cJSON_IsNull(it)) return DDPM_OK;
        if (!cJSON_IsString(it)) return dd_json_type_error(what, key, "a string or null", it);
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: class_embed_type = '%s' is not supported (supported: null, with "
                        "num_class_embeds for a class embedding table)", what, it->valuestring);
    case F_NUM_CLASS: return dd_json_int(it, what, key, 1, DD_MODEL_MAX_CLASSES, 1, 0, &c->num_class_embeds);
    case F_NUM_TRAIN_T: return dd_json_int(it, what, key, 1, 100000000, 1, 0, &c->num_train_timesteps);
    case F_MID_TYPE:   /* written by diffusers >= 0.28; null there means no middle block */
        if (cJSON_IsNull(it)) {
            c->mid_block = 0;
            return DDPM_OK;
        }
        if (cJSON_IsString(it) && strcmp(it->valuestring, "UNetMidBlock2D") != 0)
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: mid_block_type = '%.64s' is not supported (supported: "
                            "\"UNetMidBlock2D\" or null)", what, it->valuestring);
        if (!cJSON_IsString(it)) return dd_json_type_error(what, key, "a string or null", it);
        c->mid_block = 1;
        return DDPM_OK;
    case F_TIME_EMB_DIM:   /* written by diffusers >= 0.28; null: 4 x block_out_channels[0] */
        return dd_json_int(it, what, key, 1, 4 * DD_MODEL_MAX_CHANNELS, 1, 0, &ll->time_dim);
    case F_COUNT: break;
    }
    return dd_error(DDPM_ERR_INTERNAL, "%s: unhandled field %s", what, key);
}

static ddpm_status parse_root(const cJSON *root, const char *what, dd_model_config *out) {
    static const char *const classes[] = {"UNet2DModel", "BasicUNet", NULL};
    if (!cJSON_IsObject(root)) return dd_json_type_error(what, "the config", "a JSON object", root);
    dd_model_config c;
    dd_model_config_defaults(&c);
    ddpm_status st;
    const cJSON *cls = NULL, *it;
    cJSON_ArrayForEach(it, root) {
        if (it->string && strcmp(it->string, "_class_name") == 0) {
            if (cls) return dd_error(DDPM_ERR_FORMAT, "%s: key '_class_name' appears twice", what);
            cls = it;
        }
    }
    int kind = 0;
    if (cls && (st = dd_json_choice(cls, what, "_class_name", classes, 0, &kind)) != DDPM_OK) return st;
    if (kind == 1) {   /* the seed's BasicUNet: in_channels, out_channels, sample_size */
        c.kind = DD_MODEL_BASIC;
        c.in_channels = c.out_channels = 1;
        c.sample_size = 28;
    }
    int seen[F_COUNT] = {0};
    int seen_version = 0, seen_path = 0, seen_null = 0, seen_guidance = 0;
    list_lengths ll = {-1, -1, -1, 0};
    cJSON_ArrayForEach(it, root) {
        const char *key = it->string ? it->string : "";
        if (strcmp(key, "_ddpm_null_class") == 0) {   /* ours: the "no label" class of label dropout */
            if (seen_null) return dd_error(DDPM_ERR_FORMAT, "%s: key '%s' appears twice", what, key);
            seen_null = 1;
            /* the range against num_class_embeds is checked by dd_model_config_validate below */
            if ((st = dd_json_int(it, what, key, -1, DD_MODEL_MAX_CLASSES, 1, -1, &c.null_class)) != DDPM_OK) return st;
            continue;
        }
        if (strcmp(key, "_ddpm_guidance") == 0) {   /* ours: the default guidance weight of these weights */
            if (seen_guidance) return dd_error(DDPM_ERR_FORMAT, "%s: key '%s' appears twice", what, key);
            seen_guidance = 1;
            if ((st = dd_json_number(it, what, key, &c.guidance)) != DDPM_OK) return st;
            continue;
        }
        if (key[0] == '_') {   /* diffusers' private keys; _class_name was read above */
            int *flag = strcmp(key, "_diffusers_version") == 0 ? &seen_version
                        : strcmp(key, "_name_or_path") == 0    ? &seen_path
                                                               : NULL;
            if (flag) {
                if (*flag) return dd_error(DDPM_ERR_FORMAT, "%s: key '%s' appears twice", what, key);
                *flag = 1;
                if (!cJSON_IsString(it)) return dd_json_type_error(what, key, "a string", it);
            }
            continue;
        }
        int f = -1;
        for (int i = 0; i < F_COUNT; i++)
            if (strcmp(key, field_names[i]) == 0) f = i;
        if (f < 0)
            return dd_error(DDPM_ERR_FORMAT, "%s: unknown key '%.64s' (not a field of %s)", what, key,
                            kind == 1 ? "BasicUNet" : "diffusers' UNet2DModel");
        if (seen[f]) return dd_error(DDPM_ERR_FORMAT, "%s: key '%s' appears twice", what, key);
        seen[f] = 1;
        if (kind == 1 && f != F_SAMPLE_SIZE && f != F_IN_CHANNELS && f != F_OUT_CHANNELS)
            return dd_error(DDPM_ERR_FORMAT, "%s: key '%s' is not a field of BasicUNet (fields: in_channels, "
                            "out_channels, sample_size)", what, key);
        if ((st = parse_field((field)f, it, what, &c, &ll)) != DDPM_OK) return st;
    }
    if (kind == 0) {
        int n = c.num_blocks;
        if (ll.n_down >= 0 && ll.n_down != n)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: down_block_types has %d entries but block_out_channels has %d; "
                            "give one block type per entry", what, ll.n_down, n);
        if (ll.n_up >= 0 && ll.n_up != n)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: up_block_types has %d entries but block_out_channels has %d; "
                            "give one block type per entry", what, ll.n_up, n);
        if (ll.n_down < 0 && n != 4)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: block_out_channels has %d entries but the default "
                            "down_block_types has 4; give down_block_types", what, n);
        if (ll.n_up < 0 && n != 4)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: block_out_channels has %d entries but the default "
                            "up_block_types has 4; give up_block_types", what, n);
        if (ll.time_dim && ll.time_dim != 4 * c.block_out_channels[0])
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: time_embedding_dim = %d is not supported (supported: null or "
                            "4 x block_out_channels[0] = %d)", what, ll.time_dim, 4 * c.block_out_channels[0]);
    }
    if ((st = dd_model_config_validate(&c, what)) != DDPM_OK) return st;
    *out = c;
    return DDPM_OK;
}

ddpm_status dd_model_config_parse(const char *json, size_t len, const char *what, dd_model_config *out) {
    if (!what) what = "config.json";
    if (!json || !out) return dd_error(DDPM_ERR_INVALID_ARG, "%s: NULL config text or output", what);
    if (len > CONFIG_MAX_BYTES)
        return dd_error(DDPM_ERR_FORMAT, "%s: %zu bytes is too large for a model config (at most %zu)", what, len,
                        CONFIG_MAX_BYTES);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return dd_error(DDPM_ERR_FORMAT, "%s: not valid JSON (error near byte %zu)", what, at);
    }
    if (end) {
        for (const char *p = end; p < json + len && *p; p++)
            if (!isspace((unsigned char)*p)) {
                cJSON_Delete(root);
                return dd_error(DDPM_ERR_FORMAT, "%s: unexpected text after the JSON object at byte %zu", what,
                                (size_t)(p - json));
            }
    }
    ddpm_status st = parse_root(root, what, out);
    cJSON_Delete(root);
    return st;
}
