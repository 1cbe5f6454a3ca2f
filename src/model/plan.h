/* plan.h — the memory plan of a prepared model: its layer graph for a maximum batch, every activation, saved
   statistic, gradient and workspace placed in one arena by lifetime, and the fast engine's convolutions. */
#ifndef DD_MODEL_PLAN_H
#define DD_MODEL_PLAN_H

#include "core/core.h"
#include "model/graph.h"

typedef struct dd_plan {
    dd_graph graph;
    int max_batch, training;
    ddpm_engine engine;
    dd_arena arena;
    size_t bytes;              /* bytes planned in the arena */
    float *grads;              /* [num_params] parameter gradients (training), else NULL */
    int64_t *labels;           /* [max_batch] class labels of the last forward (the embedding's backward) */
    float *tsteps;             /* [max_batch] float timesteps for the sampler callback */
    void *conv_scratch;        /* max dd_conv_scratch_size over the convolutions (fast engine) */
    float *node_work;          /* work_threads x the largest per-thread slice (attention, GroupNorm backward) */
    int work_threads;
    int last_n;                /* images of the last training forward; 0 = none yet */
} dd_plan;

/* Builds the graph of m's configuration and plans it. Refuses (DDPM_ERR_NOMEM, with the size needed and the
   limit) a plan larger than pc->memory_limit (0: 3/4 of physical memory). */
ddpm_status dd_plan_create(const ddpm_model *m, const ddpm_plan_config *pc, dd_plan **out);
void dd_plan_free(dd_plan *p);
/* Hands the current weights to the fast engine's convolutions (no-op for the reference engine). */
ddpm_status dd_plan_set_weights(dd_plan *p, const float *params);

#endif
