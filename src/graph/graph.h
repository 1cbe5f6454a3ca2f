/* graph.h — the graph IR of a network: values (activations per image, with dtype and layout), nodes (one op
   each, with its shapes and hyper-parameters) and the parameters the nodes declare (name, shape, PyTorch's
   default initialisation). It knows no kernel, no backend, no memory and no model: the network descriptions
   (model/unet2d.c, model/basic_unet.c) build it, the planner (engine/plan.c) places its buffers and gives
   each node to a backend (src/backend/), and the model derives its parameter table from it. */
#ifndef DD_GRAPH_GRAPH_H
#define DD_GRAPH_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"
#include "graph/shapes.h"

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

/* Element types and layouts of values. Every value the networks build today is f32 NHWC (or f32 rows); a
   backend may hold its own copies in other types (cpu-bf16 rounds convolution inputs to bf16 in its scratch). */
typedef enum { DD_DT_F32, DD_DT_BF16 } dd_dt;
typedef enum {
    DD_LAYOUT_NHWC,            /* per image [H, W, C], channels fastest (tokens [L = H W, C] of attention) */
    DD_LAYOUT_ROWS             /* per image [rows = H, features = C] (W = 1): time embedding, class rows */
} dd_layout;
size_t dd_dt_size(dd_dt t);
const char *dd_op_name(dd_op op);

typedef struct {
    int64_t size;              /* elements per image: H W C */
    int H, W, C;
    dd_dt dtype;
    dd_layout layout;
    int producer;              /* node index; -1 for the graph input */
    int needs_grad;            /* a gradient flows back into it (depends on parameters or on x) */
} dd_value;

/* PyTorch's default initialisation of a parameter, by layer type. */
typedef enum {
    DD_INIT_FAN_IN,            /* Conv2d, Linear weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    DD_INIT_ONES,              /* GroupNorm weight */
    DD_INIT_ZEROS,             /* GroupNorm bias */
    DD_INIT_NORMAL             /* Embedding: N(0, 1) */
} dd_param_init;

#define DD_PARAM_NAME_MAX 160
typedef struct {
    char name[DD_PARAM_NAME_MAX];   /* diffusers state_dict key, "<module>.<leaf>" */
    int ndim;
    int64_t shape[4];
    int64_t numel;
    dd_param_init init;
    int64_t fan_in;
    int64_t offset;            /* into the flat parameter array; set by the model from its parameter table, -1 before */
} dd_param;

typedef struct {
    dd_op op;
    char name[96];             /* diffusers module name, for messages */
    int in[3];                 /* value ids; -1 unused */
    int nin;
    int out;
    int w, b;                  /* parameter ids (weight / gamma / table, bias / beta); -1 none */
    /* geometry per image */
    int H, W, C;               /* input (conv, groupnorm: HW = H W, upsample, maxpool, add_bias) */
    dd_conv_geom geom;         /* conv, and a linear seen as a 1x1 convolution over [rows, 1, IN] (N = 1) */
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
    int acc[3];                /* backward: 0 = the first gradient written into in[k] (reverse order), 1 = add;
                                  set by dd_graph_finish */
} dd_node;

typedef struct dd_graph {
    dd_value *values;
    int nvalues, cap_values;
    dd_node *nodes;
    int nnodes, cap_nodes;
    dd_param *params;
    int nparams, cap_params;
    int input, output;         /* value ids: x [S, S, in] and the network output [S, S, out] */
    int num_dropout;
    ddpm_status status;        /* sticky status of the builder */
} dd_graph;

/* A linear layer over rows > 1 (attention's projections): the same product as a 1x1 convolution, which is how
   the cpu backends run it (geom set by dd_graph_linear). */
static inline int dd_node_is_1x1_linear(const dd_node *nd) { return nd->op == DD_OP_LINEAR && nd->rows > 1; }

/* ------------------------------------------------------------------ builder (graph.c) */

/* An empty graph whose input is a value of H x W x C floats per image (NHWC). */
ddpm_status dd_graph_init(dd_graph *g, int H, int W, int C);
void dd_graph_free(dd_graph *g);
/* Declares parameter "<prefix>.<leaf>" and returns its id (-1 once g->status is set; a second declaration of
   a name is an internal error). */
int dd_graph_param(dd_graph *g, const char *prefix, const char *leaf, int ndim, const int64_t *shape,
                   dd_param_init init, int64_t fan_in);
/* Index of a parameter by name, -1 if absent. */
int dd_graph_find_param(const dd_graph *g, const char *name);

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


/* After the last node: checks that every value but the output is read, and sets the backward accumulation
   flags (acc). Returns g->status. */
ddpm_status dd_graph_finish(dd_graph *g);

/* Nominal work of one call of nd on N images (cost.c): 2 x multiply-adds of its matrix products, and the bytes
   it must read and write at least once. backward: of its backward pass (want_dx: the graph input's gradient
   is computed too). */
void dd_graph_node_cost(const dd_graph *g, const dd_node *nd, int N, int backward, int want_dx, double *flops,
                        double *bytes);

#endif
