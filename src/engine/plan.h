/* plan.h — the planner: a graph IR for a maximum batch, each node given to a backend (the plan's backend, or
   down its fallback chain when that one does not support the node), and every activation, gradient, saved
   state and workspace placed in one arena by lifetime. Then forward in node order and backward in reverse
   order, each node one call of its backend (exec.c). */
#ifndef DD_ENGINE_PLAN_H
#define DD_ENGINE_PLAN_H

#include "core/core.h"
#include "engine/backend.h"
#include "engine/profile.h"
#include "graph/graph.h"

typedef struct {
    int max_batch, training;
    ddpm_engine engine;        /* its backend: dd_backend_of_engine */
    size_t memory_limit;       /* bytes; 0: 3/4 of physical memory */
    int64_t num_params;        /* the flat parameter array (every g->params[i].offset set within it) */
} dd_plan_request;

typedef struct dd_plan {
    dd_graph graph;
    int max_batch, training;
    ddpm_engine engine;
    const dd_backend *backend;
    const dd_backend **node_backend;   /* [nnodes] */
    void **node_state;                 /* [nnodes] what the node's backend prepared */
    float **saved;                     /* [nnodes] the node's saved floats, or NULL */
    float **data, **grad;              /* [nvalues] value buffers [max_batch, size] (grad: training, needs_grad) */
    int64_t num_params;
    dd_arena arena;
    size_t bytes;              /* bytes planned in the arena */
    float *grads;              /* [num_params] parameter gradients (training), else NULL */
    int64_t *labels;           /* [max_batch] class labels of the last forward (the embedding's backward) */
    float *tsteps;             /* [max_batch] float timesteps for the sampler callback */
    void *scratch;             /* the largest scratch a node needs, shared */
    float *work;               /* work_threads x work_floats: per-thread slices */
    size_t work_floats;
    int work_threads;
    int last_n;                /* images of the last training forward; 0 = none yet */
} dd_plan;

/* Plans g (taken over: freed with the plan, also on failure). Refuses (DDPM_ERR_NOMEM, with the size needed and
   the limit) a plan larger than the memory limit, and a backend this machine cannot run (its reason). */
ddpm_status dd_plan_create(dd_graph *g, const dd_plan_request *rq, dd_plan **out);
void dd_plan_free(dd_plan *p);
/* Hands the current weights to every node whose backend keeps its own copy. */
ddpm_status dd_plan_set_weights(dd_plan *p, const float *params);

/* One forward or backward pass over N <= max_batch images. */
typedef struct {
    int N;
    int training;              /* dropout active */
    const float *params;
    float *grads;              /* parameter gradients (backward) */
    const float *timesteps;    /* [N] */
    const int64_t *labels;     /* [N] or NULL */
    uint64_t dropout_seed;
    uint32_t dropout_step, dropout_item;   /* dropout node k draws from ddpm_rng_stream(DDPM_STREAM_TRAIN,
                                              dropout_step, dropout_item + k) */
    int want_dx;               /* backward: compute the gradient of the graph input */
    dd_profile *prof;          /* time every node into it; NULL: off */
} dd_exec;

ddpm_status dd_plan_forward(const dd_plan *p, const dd_exec *e);
/* Gradients: p->grad[output] holds d loss / d out on entry. */
ddpm_status dd_plan_backward(const dd_plan *p, const dd_exec *e);

#endif
