/* config_json.c — writing JSON the way diffusers does (json.dumps(indent=2, sort_keys=True), Python's float
   repr): the model's config.json. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

/* An integer-valued number as an integer (diffusers' int fields), otherwise as a float. */
static void number_or_int(dd_text *sb, double v) {
    if (isfinite(v) && v == floor(v) && fabs(v) < 1e15) dd_text_printf(sb, "%.0f", v);
    else dd_text_number(sb, v);
}

static void int_or_null(dd_text *sb, int v) {
    if (v > 0) dd_text_printf(sb, "%d", v);
    else dd_text_printf(sb, "null");
}

static void key(dd_text *sb, const char *k, int first) {
    dd_text_printf(sb, "%s\n  \"%s\": ", first ? "" : ",", k);
}

static void block_list(dd_text *sb, const int *flags, int n, const char *plain, const char *attn) {
    dd_text_printf(sb, "[");
    for (int i = 0; i < n; i++) dd_text_printf(sb, "%s\n    \"%s\"", i ? "," : "", flags[i] ? attn : plain);
    dd_text_printf(sb, "\n  ]");
}

ddpm_status dd_model_config_to_json(const dd_model_config *c, char **out) {
    dd_text sb = {0};
    *out = NULL;
    if (c->kind == DD_MODEL_BASIC) {
        /* Not a diffusers class: the seed's BasicUNet, read back by dd_model_config_parse. */
        dd_text_printf(&sb, "{\n  \"_class_name\": \"BasicUNet\",\n  \"in_channels\": %d,\n  \"out_channels\": %d,"
                           "\n  \"sample_size\": %d\n}\n", c->in_channels, c->out_channels, c->sample_size);
        return dd_text_finish(&sb, out);
    }
    /* Keys in sorted order, as diffusers' to_json_string writes them. */
    dd_text_printf(&sb, "{");
    key(&sb, "_class_name", 1);
    dd_text_string(&sb, "UNet2DModel");
    if (c->guidance > 0) {      /* private keys (diffusers ignores '_' keys), sorted between the two others */
        key(&sb, "_ddpm_guidance", 0);
        dd_text_printf(&sb, "%.17g", c->guidance);
    }
    if (c->null_class >= 0) {
        key(&sb, "_ddpm_null_class", 0);
        dd_text_printf(&sb, "%d", c->null_class);
    }
    key(&sb, "_diffusers_version", 0);
    dd_text_string(&sb, DD_MODEL_DIFFUSERS_VERSION);
    key(&sb, "act_fn", 0);
    dd_text_string(&sb, c->act_swish ? "swish" : "silu");
    key(&sb, "add_attention", 0);
    dd_text_printf(&sb, c->add_attention ? "true" : "false");
    key(&sb, "attention_head_dim", 0);
    int_or_null(&sb, c->attention_head_dim);
    key(&sb, "attn_norm_num_groups", 0);
    int_or_null(&sb, c->attn_norm_num_groups);
    key(&sb, "block_out_channels", 0);
    dd_text_printf(&sb, "[");
    for (int i = 0; i < c->num_blocks; i++)
        dd_text_printf(&sb, "%s\n    %d", i ? "," : "", c->block_out_channels[i]);
    dd_text_printf(&sb, "\n  ]");
    key(&sb, "center_input_sample", 0);
    dd_text_printf(&sb, c->center_input_sample ? "true" : "false");
    key(&sb, "class_embed_type", 0);
    dd_text_printf(&sb, "null");
    key(&sb, "down_block_types", 0);
    block_list(&sb, c->down_attn, c->num_blocks, "DownBlock2D", "AttnDownBlock2D");
    key(&sb, "downsample_padding", 0);
    dd_text_printf(&sb, "%d", c->downsample_padding);
    key(&sb, "downsample_type", 0);
    dd_text_string(&sb, "conv");
    key(&sb, "dropout", 0);
    dd_text_number(&sb, c->dropout);
    key(&sb, "flip_sin_to_cos", 0);
    dd_text_printf(&sb, c->flip_sin_to_cos ? "true" : "false");
    key(&sb, "freq_shift", 0);
    number_or_int(&sb, c->freq_shift);
    key(&sb, "in_channels", 0);
    dd_text_printf(&sb, "%d", c->in_channels);
    key(&sb, "layers_per_block", 0);
    dd_text_printf(&sb, "%d", c->layers_per_block);
    key(&sb, "mid_block_scale_factor", 0);
    number_or_int(&sb, c->mid_block_scale_factor);
    if (!c->mid_block) {   /* the key of diffusers >= 0.28; absent means UNetMidBlock2D */
        key(&sb, "mid_block_type", 0);
        dd_text_printf(&sb, "null");
    }
    key(&sb, "norm_eps", 0);
    dd_text_number(&sb, c->norm_eps);
    key(&sb, "norm_num_groups", 0);
    dd_text_printf(&sb, "%d", c->norm_num_groups);
    key(&sb, "num_class_embeds", 0);
    int_or_null(&sb, c->num_class_embeds);
    key(&sb, "num_train_timesteps", 0);
    int_or_null(&sb, c->num_train_timesteps);
    key(&sb, "out_channels", 0);
    dd_text_printf(&sb, "%d", c->out_channels);
    key(&sb, "resnet_time_scale_shift", 0);
    dd_text_string(&sb, "default");
    key(&sb, "sample_size", 0);
    dd_text_printf(&sb, "%d", c->sample_size);
    key(&sb, "time_embedding_type", 0);
    dd_text_string(&sb, "positional");
    key(&sb, "up_block_types", 0);
    block_list(&sb, c->up_attn, c->num_blocks, "UpBlock2D", "AttnUpBlock2D");
    key(&sb, "upsample_type", 0);
    dd_text_string(&sb, "conv");
    dd_text_printf(&sb, "\n}\n");
    return dd_text_finish(&sb, out);
}
