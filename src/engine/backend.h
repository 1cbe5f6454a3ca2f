/* backend.h — the seam between the planner and the kernels. A backend runs nodes of the graph IR: it says which
   nodes it supports, prepares each of its nodes once per plan (creating its library objects and telling the
   planner what memory the node needs), takes new weights, and runs a node forward and backward on the buffers
   the planner placed. The planner knows lifetimes and sizes, no library; a backend knows kernels, no
   lifetimes. A node a backend does not support goes to its fallback (cpu-bf16 -> cpu -> reference).

   The backends (one folder each under src/backend/, docs/engine.md has the table):
     reference  plain loops, the definition of every op (float; the double twins are for the gradient tests)
     cpu        fp32: oneDNN convolutions, OpenBLAS GEMMs, fused OpenMP kernels with run-time SIMD dispatch
     cpu-bf16   the convolutions in bf16 on AMX (fp32 accumulation and outputs); everything else on cpu

   Every buffer a call sees is host memory in the plan's arena, f32 unless the value's dtype says otherwise,
   in the value's layout (graph.h). */
#ifndef DD_ENGINE_BACKEND_H
#define DD_ENGINE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"
#include "graph/graph.h"

/* What the planner tells a backend about the plan. */
typedef struct {
    int max_batch;             /* the most images of one call */
    int training;              /* backward passes will run */
    int threads;               /* the most threads a call may run (the work slices below) */
} dd_plan_info;

/* What a prepared node needs from the planner (all zero: nothing). */
typedef struct {
    size_t saved_floats;       /* per image, kept from the node's forward to its backward (GroupNorm statistics);
                                  in an inference plan only during the forward */
    size_t work_floats;        /* per thread, during one call of the node (attention's score block) */
    size_t scratch_bytes;      /* during one call, shared by every node (a convolution's bf16 copies) */
} dd_node_needs;

/* One call of a node: the planner's buffers for it. Forward reads x[] and writes y; backward reads dy (and x[])
   and writes every non-NULL dx[k], overwriting them (acc = 0) or adding to them (acc = 1), and adds into dw, db.
   The executor makes acc the same for every dx[k] of a call: where a node's inputs take their gradients
   differently (a skip that another node also reads), it calls backward once per input, the parameter
   gradients in the first call only. */
typedef struct {
    int N;                     /* images, 1 .. max_batch */
    int training;              /* dropout active */
    const float *x[3];
    float *y;
    const float *dy;
    float *dx[3];              /* NULL: not needed (or another call's) */
    int acc;
    const float *w, *b;        /* the node's parameters (PyTorch layouts), NULL none */
    float *dw, *db;            /* their gradients, accumulated; NULL in an inference plan */
    float *saved;              /* saved_floats per image, max_batch images */
    float *work;               /* work_floats per thread, `threads` slices */
    void *scratch;             /* scratch_bytes, shared */
    void *state;               /* what prepare made */
    const float *timesteps;    /* [N] (the timestep node) */
    const int64_t *labels;     /* [N] (the class embedding) */
    uint64_t seed, stream;     /* the dropout mask's counter-based stream */
} dd_node_call;

typedef struct dd_backend dd_backend;
struct dd_backend {
    const char *name;          /* "reference", "cpu", "cpu-bf16" */
    const dd_backend *fallback;   /* runs the nodes this one does not support; NULL: none */
    /* DDPM_OK when this machine can run the backend, else the reason (one line). NULL: always. */
    ddpm_status (*available)(void);
    /* Whether the backend runs nd in a plan like pi. */
    int (*supports)(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi);
    /* Once per plan and node: *state (may stay NULL) and the node's needs. */
    ddpm_status (*prepare)(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi, void **state,
                           dd_node_needs *needs);
    void (*release)(void *state);
    /* The node's weights changed (w: PyTorch layout): reorder or upload them. NULL: nothing to do. */
    ddpm_status (*set_weights)(void *state, const dd_node *nd, const float *w);
    ddpm_status (*forward)(const dd_graph *g, const dd_node *nd, const dd_node_call *c);
    ddpm_status (*backward)(const dd_graph *g, const dd_node *nd, const dd_node_call *c);
};

extern const dd_backend dd_backend_reference;   /* backend/reference/reference.c */
extern const dd_backend dd_backend_cpu;         /* backend/cpu/cpu.c */
extern const dd_backend dd_backend_cpu_bf16;    /* backend/cpu_bf16/cpu_bf16.c */

/* The backend of an engine (DDPM_ENGINE_REFERENCE, _FAST = cpu, _BF16 = cpu-bf16); NULL for another value. */
const dd_backend *dd_backend_of_engine(ddpm_engine engine);

#endif
