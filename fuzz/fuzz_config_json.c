/* fuzz_config_json.c — libFuzzer target for the diffusers UNet2DModel config.json parser (dd_model_config_parse):
   an accepted config must validate, build its parameter table and survive a write/parse round trip unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/model.h" /* internal: dd_model_config_parse */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const dd_model_config *a, const dd_model_config *b) {
    if (a->kind != b->kind || a->sample_size != b->sample_size || a->in_channels != b->in_channels ||
        a->out_channels != b->out_channels)
        return 0;
    if (a->kind == DD_MODEL_BASIC) return 1;
    if (a->center_input_sample != b->center_input_sample || a->flip_sin_to_cos != b->flip_sin_to_cos ||
        a->freq_shift != b->freq_shift || a->num_blocks != b->num_blocks ||
        a->layers_per_block != b->layers_per_block || a->mid_block_scale_factor != b->mid_block_scale_factor ||
        a->downsample_padding != b->downsample_padding || a->dropout != b->dropout || a->act_swish != b->act_swish ||
        a->attention_head_dim != b->attention_head_dim || a->norm_num_groups != b->norm_num_groups ||
        a->attn_norm_num_groups != b->attn_norm_num_groups || a->norm_eps != b->norm_eps ||
        a->add_attention != b->add_attention || a->num_class_embeds != b->num_class_embeds ||
        a->num_train_timesteps != b->num_train_timesteps)
        return 0;
    for (int i = 0; i < a->num_blocks; i++)
        if (a->block_out_channels[i] != b->block_out_channels[i] || a->down_attn[i] != b->down_attn[i] ||
            a->up_attn[i] != b->up_attn[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dd_model_config c, c2;
    ddpm_clear_error();
    ddpm_status st = dd_model_config_parse((const char *)data, size, "fuzz.json", &c);
    if (st != DDPM_OK) {
        if (ddpm_last_error()[0] == 0) __builtin_trap();   /* every refusal says why */
        return 0;
    }
    if (dd_model_config_validate(&c, "fuzz.json") != DDPM_OK) __builtin_trap();
    /* the parameter table of any accepted config can be listed (or is refused as too large) */
    dd_model_params p;
    if (dd_model_params_build(&c, &p) == DDPM_OK) dd_model_params_free(&p);
    /* what we write reads back as the same configuration */
    char *json = NULL;
    if (dd_model_config_to_json(&c, &json) != DDPM_OK) return 0;   /* out of memory only */
    if (dd_model_config_parse(json, strlen(json), "round trip", &c2) != DDPM_OK || !same(&c, &c2)) __builtin_trap();
    ddpm_free(json);
    return 0;
}
