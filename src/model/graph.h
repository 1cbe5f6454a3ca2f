/* graph.h — the layer graph of a network: values (NHWC activations, per image) and nodes (one kernel call
   each, forward and backward), built once from the configuration (unet2d.c, basic_unet.c), planned into one
   arena (plan.c) and executed in order forward and in reverse order backward (graph.c). */
#ifndef DD_MODEL_GRAPH_H
#define DD_MODEL_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"
#include "model/model.h"
#include "ops/ops.h"

typedef enum {
    DD_OP_CONV,        /* in [H, W, C] -> out [OH, OW, OC]                       (nn.Conv2d) */
    DD_OP_LINEAR,      /* in [rows, IN] -> out [rows, OUT]                        (nn.Linear) */
    DD_OP_GROUPNORM,   /* in [HW, C] -> out [HW, C], optional fused SiLU          (nn.GroupNorm) */
    DD_OP_SILU,        /* elementwise                                            (nn.SiLU) */
    DD_OP_ADD,         /* out = alpha (a + b)                                     (residuals, skips) */
    DD_OP_ADD_BIAS,    /* out [HW, C] = in + bias [C] per image                  (ResnetBlock2D's temb) */
    DD_OP_ATTENTION,   /* softmax(q k^T scale) v per head, q/k/v/out [L, C] */
    DD_OP_UPSAMPLE,    /* nearest x2 [H, W, C] -> [2H, 2W, C]                     (Upsample2D) */
    DD_OP_MAXPOOL,     /* 2x2 max [H, W, C] -> [H/2, W/2, C]                      (nn.MaxPool2d(2)) */
    DD_OP_CONCAT,      /* [HW, C1] ++ [HW, C2] -> [HW, C1 + C2]                   (torch.cat(dim=1)) */
    DD_OP_TIMESTEP,    /* timesteps -> sinusoid [dim]                            (Timesteps) */
    DD_OP_EMBEDDING,   /* class labels -> table rows [D]                          (nn.Embedding) */
    DD_OP_DROPOUT      /* counter-based mask, train mode only                     (nn.Dropout) */
} dd_op;
#define DD_OP_KINDS (DD_OP_DROPOUT + 1)

/* PROFILE (ddpm_model_profile_*): wall time, calls and nominal work per op kind and pass, and per step part
   outside the graph (DD_PROF_*). Nominal work: 2 x multiply-adds, and the bytes a call must read and write. */
enum { DD_PROF_LAYOUT = DD_OP_KINDS, DD_PROF_REORDER, DD_PROF_BATCH, DD_PROF_LOSS, DD_PROF_ADAMW, DD_PROF_EMA,
       DD_PROF_KINDS };
typedef struct {
    double seconds, flops, bytes;
    int64_t calls;
} dd_prof_cell;
typedef struct dd_profile {
    dd_prof_cell cell[DD_PROF_KINDS][2];   /* [kind][backward] */
} dd_profile;
/* t0 = dd_profile_clock(p) before a part, dd_profile_add(p, kind, backward, t0, flops, bytes) after it: one call
   of the part, from t0 to now. Both do nothing (and read no clock) when p is NULL (profiling off). */
double dd_profile_clock(const dd_profile *p);
void dd_profile_add(dd_profile *p, int kind, int backward, double t0, double flops, double bytes);

typedef struct {
    int64_t size;              /* floats per image */
    int producer;              /* node index; -1 for the graph input */
    int needs_grad;            /* a gradient flows back into it (depends on parameters or on x) */
    float *data, *grad;        /* [max_batch, size] in the arena; set by the plan */
} dd_value;

typedef struct {
    dd_op op;
    char name[96];             /* diffusers module name, for messages */
    int in[3];                 /* value ids; -1 unused */
    int nin;
    int out;
    int64_t w, b;              /* parameter offsets (weight / gamma / table, bias / beta); -1 none */
    /* geometry per image */
    int H, W, C;               /* input (conv, groupnorm: HW = H W, upsample, maxpool, add_bias) */
    dd_conv_geom geom;         /* conv (N set by the plan) */
    int rows, IN, OUT;         /* linear */
    int G, silu;               /* groupnorm */
    double eps;
    int L, heads;              /* attention */
    double scale;
    double alpha;              /* add */
    int C1, C2;                /* concat */
    int dim, flip;             /* timestep */
    double freq_shift;
    double p;                  /* dropout probability */
    int dropout_index;
    /* planned state */
    float *mean, *rstd;        /* groupnorm statistics [max_batch, G] */
    dd_conv *conv;             /* fast engine convolution (a conv, or a linear with rows > 1 as a 1x1 one) */
    int acc[3];                /* backward: 0 = the first gradient written into in[k], 1 = add */
} dd_node;

typedef struct dd_graph {
    dd_value *values;
    int nvalues, cap_values;
    dd_node *nodes;
    int nnodes, cap_nodes;
    int input, output;         /* value ids: x [S, S, in] and the network output [S, S, out] */
    int num_dropout;
    ddpm_status status;        /* sticky status of the builder */
    const dd_model_params *tab;
} dd_graph;

/* Whether the fast engine runs the node on a dd_conv: every convolution, and a linear over rows > 1 (as a 1x1
   convolution, geom set by dd_graph_linear). */
static inline int dd_node_on_conv(const dd_node *nd) {
    return nd->op == DD_OP_CONV || (nd->op == DD_OP_LINEAR && nd->rows > 1);
}

/* ------------------------------------------------------------------ builder (graph.c) */

ddpm_status dd_graph_init(dd_graph *g, const dd_model_params *tab, int64_t input_size);
void dd_graph_free(dd_graph *g);
/* Offset of parameter "<prefix>.<leaf>" of numel values (a missing or mis-sized tensor is an internal error
   recorded in g->status). */
int64_t dd_graph_param(dd_graph *g, const char *prefix, const char *leaf, int64_t numel);

/* Each returns the output value id, or -1 once g->status is set. Sizes are per image. */
int dd_graph_conv(dd_graph *g, const char *name, int x, int H, int W, int C, int OC, int k, int stride, int pad_t,
                  int pad_l, int pad_b, int pad_r);
int dd_graph_linear(dd_graph *g, const char *name, int x, int rows, int IN, int OUT);
int dd_graph_groupnorm(dd_graph *g, const char *name, int x, int HW, int C, int G, double eps, int silu);
int dd_graph_silu(dd_graph *g, int x);
int dd_graph_add(dd_graph *g, int a, int b, double alpha);
int dd_graph_add_bias(dd_graph *g, int x, int bias, int HW, int C);
int dd_graph_attention(dd_graph *g, const char *name, int q, int k, int v, int L, int C, int heads, double scale);
int dd_graph_upsample(dd_graph *g, int x, int H, int W, int C);
int dd_graph_maxpool(dd_graph *g, int x, int H, int W, int C);
int dd_graph_concat(dd_graph *g, int a, int b, int HW, int C1, int C2);
int dd_graph_timestep(dd_graph *g, int dim, int flip, double freq_shift);
int dd_graph_embedding(dd_graph *g, const char *name, int K, int D);
int dd_graph_dropout(dd_graph *g, int x, double p);

/* The networks (unet2d.c, basic_unet.c): the whole graph of a configuration; dropout layers are part of it
   only for training (nn.Dropout is the identity in eval mode). g is initialised here; free with dd_graph_free. */
ddpm_status dd_unet2d_build(dd_graph *g, const dd_model_config *c, const dd_model_params *tab, int training);
ddpm_status dd_basic_unet_build(dd_graph *g, const dd_model_config *c, const dd_model_params *tab);

/* ------------------------------------------------------------------ execution (graph.c) */

typedef struct {
    int N;                     /* images in this call, <= max_batch */
    ddpm_engine engine;
    int training;              /* dropout active */
    const float *params;
    float *grads;              /* parameter gradients (backward) */
    const float *timesteps;    /* [N] */
    const int64_t *labels;     /* [N] or NULL */
    uint64_t dropout_seed, dropout_step;
    void *conv_scratch;
    float *node_work;          /* threads x the largest slice of attention / GroupNorm backward */
    int want_dx;               /* backward: compute the gradient of the graph input */
    dd_profile *prof;          /* time every node into it; NULL: off */
} dd_exec;

ddpm_status dd_graph_forward(const dd_graph *g, const dd_exec *e);
/* Gradients: the output value's grad holds d loss / d out on entry. */
ddpm_status dd_graph_backward(const dd_graph *g, const dd_exec *e);

#endif
