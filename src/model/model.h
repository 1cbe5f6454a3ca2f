/* model.h — internal interface of the model module: the network configuration (a diffusers UNet2DModel
   config.json or the seed's BasicUNet), the parameter table in diffusers' state_dict order, and the
   ddpm_model object that ties them to a graph IR (graph/graph.h) and its plan (engine/plan.h). */
#ifndef DD_MODEL_H
#define DD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"
#include "graph/graph.h"

/* ============================================================== configuration */

#define DD_MODEL_MAX_BLOCKS 8          /* entries of block_out_channels */
#define DD_MODEL_MAX_CHANNELS 16384    /* block_out_channels[i] */
#define DD_MODEL_MAX_IO_CHANNELS 4096  /* in_channels, out_channels */
#define DD_MODEL_MAX_SIZE 16384        /* sample_size */
#define DD_MODEL_MAX_LAYERS 64         /* layers_per_block */
#define DD_MODEL_MAX_CLASSES 10000000  /* num_class_embeds */
#define DD_MODEL_MAX_PARAMS ((int64_t)1 << 32)
#define DD_MODEL_DIFFUSERS_VERSION "0.27.2"

typedef enum { DD_MODEL_UNET2D = 0, DD_MODEL_BASIC = 1 } dd_model_kind;

/* Every field of diffusers' UNet2DModel config (v0.27.2) that the engine reads. Values that diffusers
   allows but the engine does not implement are refused by the parser, so a config that parses is one
   the engine runs exactly. For DD_MODEL_BASIC only sample_size, in_channels and out_channels matter. */
typedef struct {
    dd_model_kind kind;
    int sample_size;                   /* S: images are [C, S, S] */
    int in_channels, out_channels;
    int center_input_sample;           /* x -> 2x - 1 before conv_in */
    int flip_sin_to_cos;               /* sinusoid [cos, sin] (1) or [sin, cos] (0) */
    double freq_shift;                 /* Timesteps' downscale_freq_shift */
    int num_blocks;                    /* len(block_out_channels) */
    int block_out_channels[DD_MODEL_MAX_BLOCKS];
    int down_attn[DD_MODEL_MAX_BLOCKS];/* 1: AttnDownBlock2D, 0: DownBlock2D */
    int up_attn[DD_MODEL_MAX_BLOCKS];  /* 1: AttnUpBlock2D, 0: UpBlock2D */
    int layers_per_block;
    double mid_block_scale_factor;     /* output_scale_factor of the mid block's resnets and attention */
    int downsample_padding;            /* 1, or 0 = pad right/bottom by one before the stride-2 conv */
    double dropout;                    /* ResnetBlock2D dropout, between SiLU(norm2) and conv2 */
    int act_swish;                     /* act_fn was spelled "swish" (the same function as "silu") */
    int attention_head_dim;            /* 0 = null: one head spanning the block's channels */
    int norm_num_groups;
    int attn_norm_num_groups;          /* 0 = null: norm_num_groups (mid block attention only) */
    double norm_eps;
    int mid_block;                     /* 1: UNetMidBlock2D (default), 0: mid_block_type = null, no middle block */
    int add_attention;                 /* mid block attention */
    int num_class_embeds;              /* 0 = null: unconditional */
    int num_train_timesteps;           /* 0 = null; written back, not used by the positional embedding */
    int null_class;                    /* the "no label" class of label dropout, -1 none (default); the private
                                          key "_ddpm_null_class" of config.json, written only when >= 0 */
    double guidance;                   /* the guidance weight sampling uses by default, measured for these weights;
                                          0 none (default); the private key "_ddpm_guidance", written when > 0 */
} dd_model_config;

/* diffusers' UNet2DModel defaults (sample_size null = 0, which the engine refuses on use; no null class). */
void dd_model_config_defaults(dd_model_config *c);
/* A preset by name: "mnist", "cifar10", "tiny", "basic" (exactly torch_unet.PRESETS). 0 if unknown. */
int dd_model_config_preset(const char *name, dd_model_config *out);
extern const char *const dd_model_preset_names; /* "mnist, cifar10, tiny, basic" */
/* Parse a diffusers UNet2DModel config.json (or our BasicUNet config) from len bytes (need not be
   NUL-terminated). `what` names the source in messages. Unknown keys, wrong JSON types, unsupported
   values and inconsistent sizes are refused with a message naming the field. */
ddpm_status dd_model_config_parse(const char *json, size_t len, const char *what, dd_model_config *out);
/* Checks a configuration (also used for presets). */
ddpm_status dd_model_config_validate(const dd_model_config *c, const char *what);
/* A default guidance weight w (private key _ddpm_guidance): 0 (none), or in (0, 100] for a model with a null class. */
ddpm_status dd_model_check_guidance(double w, int null_class, const char *what);
/* diffusers-style config.json text (sorted keys, indent 2, every field); *out from dd_alloc. */
ddpm_status dd_model_config_to_json(const dd_model_config *c, char **out);

/* Heads and groups of the attention at a block of C channels (diffusers: heads = C // attention_head_dim,
   attention_head_dim null = one head). */
int dd_model_attn_heads(const dd_model_config *c, int C);

/* JSON readers' messages (config.c): the text of a value shortened to fit buf, and
   "<what>: <key> must be <want> (got <value>)" as DDPM_ERR_FORMAT. */
struct cJSON;
const char *dd_json_text(const struct cJSON *it, char *buf, size_t cap);
ddpm_status dd_json_type_error(const char *what, const char *key, const char *want, const struct cJSON *it);
/* Typed values of a JSON field, refused with "<what>: <key> ..." naming the value: an integer in [lo, hi]
   (null gives null_value when allow_null), true/false, a finite number, one of the NULL-terminated
   `supported` strings (ASCII case-insensitive when nocase; *index gets its position). */
ddpm_status dd_json_int(const struct cJSON *it, const char *what, const char *key, int lo, int hi, int allow_null,
                        int null_value, int *out);
ddpm_status dd_json_bool(const struct cJSON *it, const char *what, const char *key, int *out);
ddpm_status dd_json_number(const struct cJSON *it, const char *what, const char *key, double *out);
ddpm_status dd_json_choice(const struct cJSON *it, const char *what, const char *key, const char *const *supported,
                           int nocase, int *index);

/* ============================================================== parameters */


typedef struct {
    char *name;                /* diffusers state_dict key */
    int ndim;
    int64_t shape[4];
    int64_t offset, numel;     /* into the flat buffers */
    dd_param_init init;        /* PyTorch's default for the layer type */
    int64_t fan_in;            /* DD_INIT_FAN_IN: bound 1/sqrt(fan_in) */
} dd_model_tensor;

typedef struct {
    int count, cap;
    dd_model_tensor *t;        /* [count], state_dict order */
    int64_t num_params;
} dd_model_params;

/* The table of every parameter in state_dict order (UNet2DModel: conv_in, time_embedding, class_embedding,
   down_blocks (attentions, resnets, downsamplers), up_blocks, mid_block, conv_norm_out, conv_out). */
ddpm_status dd_model_params_build(const dd_model_config *c, dd_model_params *p);
void dd_model_params_free(dd_model_params *p);
/* Index of a tensor by name, -1 if absent. */
int dd_model_params_find(const dd_model_params *p, const char *name);
/* PyTorch default initialisation from the counter-based RNG: tensor i draws from stream
   ddpm_rng_stream(DDPM_STREAM_PARAM_INIT, i, 0). Conv/Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight
   and bias; GroupNorm: weight 1, bias 0; Embedding: N(0, 1). */
void dd_model_params_init(const dd_model_params *p, float *params, uint64_t seed);
/* Read every parameter from a safetensors file into params[num_params]; nothing is written unless every
   tensor is present with its shape and a float dtype and no unexpected tensor is there. */
ddpm_status dd_model_params_load(const dd_model_params *p, float *params, const char *path);
/* Write params as F32 safetensors in table order with __metadata__ {"format": "pt"} (atomic). */
ddpm_status dd_model_params_save(const dd_model_params *p, const float *params, const char *path);

/* ============================================================== the network descriptions */

/* The graph IR of a configuration (unet2d.c, basic_unet.c), parameters declared by its nodes; dropout layers are
   part of it only for training (nn.Dropout is the identity in eval mode). g is initialised here; on failure it
   is freed. */
ddpm_status dd_unet2d_build(dd_graph *g, const dd_model_config *c, int training);
ddpm_status dd_basic_unet_build(dd_graph *g, const dd_model_config *c);
ddpm_status dd_model_graph_build(dd_graph *g, const dd_model_config *c, int training);

/* ============================================================== the model object */

struct dd_plan;

struct ddpm_model {
    dd_model_config cfg;
    dd_model_params tab;
    float *params;             /* [tab.num_params] */
    int weights_loaded;
    struct dd_plan *plan;      /* layer graph + memory plan; NULL before ddpm_model_prepare */
    uint64_t dropout_seed, dropout_step;
    int eval_mode;                     /* 1: dropout off even in a training plan */
    struct dd_profile *prof;           /* ddpm_model_profile_start: times every node; NULL: off */
};

/* The model's profile while one is running (ddpm_model_profile_start), else NULL: the trainer adds the parts of
   a step outside the network (dd_profile_add, engine/profile.h). */
struct dd_profile *dd_model_profile(ddpm_model *m);

/* A model from a validated configuration with weights initialised from `seed`. */
ddpm_status dd_model_create(const dd_model_config *c, uint64_t seed, ddpm_model **out);
/* The same with init = 0: zero weights, for a caller that loads every tensor next (a model folder; a load that
   fails frees the model). */
ddpm_status dd_model_create_ex(const dd_model_config *c, uint64_t seed, int init, ddpm_model **out);

/* Dropout layer d at training step `step` draws from stream
   ddpm_rng_stream(DDPM_STREAM_TRAIN, step mod 2^24, DD_MODEL_DROPOUT_ITEM + d); element i of the layer's
   [N, H, W, C] activation (NHWC) is counter i. */
#define DD_MODEL_DROPOUT_ITEM 0x40000000u

#endif
