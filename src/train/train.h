/* train.h — internal interface of the trainer: the training state record and its JSON form, shared by the
   trainer (trainer.c), the checkpoint writer and reader (checkpoint.c) and the fuzz target. */
#ifndef DD_TRAIN_H
#define DD_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"

/* File names inside a checkpoint folder. */
#define DD_TRAIN_STATE_JSON "training_state.json"
#define DD_TRAIN_STATE_ST "training_state.safetensors"
#define DD_TRAIN_FORMAT "ddpm.c training state"
#define DD_TRAIN_VERSION 1
/* Largest training_state.json accepted (it holds no arrays). */
#define DD_TRAIN_JSON_MAX ((size_t)1 << 20)
/* Largest schedule name kept ("file:PATH" included). */
#define DD_TRAIN_NAME_MAX 4096
/* Integers stored as JSON numbers are exact up to 2^53. */
#define DD_TRAIN_INT_MAX ((int64_t)1 << 53)

/* Everything training_state.json records: the run's configuration and the counters of the run. */
typedef struct {
    ddpm_train_config c;          /* c.schedule.name points at name; should_stop is NULL */
    char name[DD_TRAIN_NAME_MAX]; /* the schedule name (copy with dd_train_state_copy, not memcpy) */
    int64_t step;                 /* optimiser steps done */
    int64_t epoch, position;      /* data-order cursor: next image is perm(epoch)[position] */
    int64_t images_seen;
    int64_t ema_steps;            /* diffusers EMAModel.optimization_step */
    int64_t adamw_steps;          /* AdamW's step count (bias corrections) */
    int64_t data_count;           /* the dataset the run was trained on */
    int data_channels, data_height, data_width, data_classes;
    int64_t num_params;           /* the model */
    int num_class_embeds;
    uint32_t crc_params, crc_ema; /* zlib crc32 of the raw and EMA weights (little-endian floats) */
} dd_train_state;

/* Random streams of the trainer (purpose DDPM_STREAM_TRAIN; the model's dropout uses items 0x40000000 + layer):
   image g of the global batch at step s: (TRAIN, s mod 2^24, g), words 4 (s >> 24) + {0: timestep,
   1: label dropout, 2: flip}; its noise: (DDPM_STREAM_NOISING, s mod 2^24, g) from normal (s >> 24) 2^32;
   the data order of epoch e: (TRAIN, e mod 2^24, DD_TRAIN_PERM_ITEM) from word (e >> 24) 2^40. */
#define DD_TRAIN_PERM_ITEM 0x7f000000u

struct ddpm_trainer {
    dd_train_state s;             /* configuration and counters */
    ddpm_train_stop_fn should_stop;
    void *stop_user;
    const ddpm_dataset *data;     /* borrowed */
    ddpm_model *model;            /* owned; training plan at batch */
    ddpm_model *shadow;           /* owned; its parameters are the EMA (or, without EMA, a copy for sampling) */
    int shadow_batch;             /* batch of the shadow's inference plan (0: none yet) */
    ddpm_adamw *opt;
    ddpm_diffusion *dif;
    double *betas;                /* [T], as used (saved with the state) */
    int64_t P, D;                 /* parameters; numbers per image */
    int C, S;
    int conditional, null_class;  /* class labels used; the "no label" class (K) */
    int64_t last_checkpoint;      /* step of the last checkpoint this trainer wrote (-1: none) */
    uint32_t *perm;               /* [count] data order of epoch perm_epoch */
    int64_t perm_epoch;           /* -1: none */
    float *x0, *eps, *xt, *target, *pred, *dpred, *tf;   /* [batch, D] each, tf [batch] */
    int64_t *t, *labels;          /* [batch] */
    double *w;                    /* [batch] loss weights */
    double *partial;              /* [nchunks] gradient-norm partial sums */
    int64_t nchunks;
};

/* Builds a trainer at the counters of `s` (weights, moments and EMA as the model has them; the caller then
   loads the state). model passes to the trainer, also on failure. betas [T] NULL: from s->c.schedule. */
ddpm_status dd_trainer_init(const dd_train_state *s, ddpm_model *model, const ddpm_dataset *data,
                            const double *betas, ddpm_trainer **out);
/* The EMA weights: the shadow model's parameters (NULL without EMA). */
float *dd_trainer_ema(ddpm_trainer *t);

/* Copies a state (fixing the schedule name pointer). */
void dd_train_state_copy(dd_train_state *dst, const dd_train_state *src);
/* Sets s->c = *c with the schedule name copied into s->name (DDPM_ERR_INVALID_ARG if too long). */
ddpm_status dd_train_state_set_config(dd_train_state *s, const ddpm_train_config *c);

/* Checks every field of a configuration; messages name the field. */
ddpm_status dd_train_config_validate(const ddpm_train_config *c);

/* training_state.json text (free with ddpm_free). */
ddpm_status dd_train_state_to_json(const dd_train_state *s, char **json);
/* Parses and validates training_state.json text (hostile input: every field checked, unknown keys
   refused); `what` names the file in messages. */
ddpm_status dd_train_state_parse(const char *json, size_t len, const char *what, dd_train_state *out);

/* Objective names in the state file: "eps", "x0", "v". */
const char *dd_train_objective_name(ddpm_prediction p);

/* PNG tEXt pairs: the caller's `text` then `extra` (either NULL or {key, value, ..., NULL}) into out[cap],
   NULL-terminated; pairs past cap are dropped. Returns out. */
#define DD_TEXT_MAX 33
const char **dd_text_join(const char **out, int cap, const char *const *text, const char *const *extra);

/* zlib crc32 of n floats (their bytes as stored: little-endian on the supported hosts). */
uint32_t dd_crc_floats(const float *x, int64_t n);

#endif
