/* graph.c — building the graph IR: values, nodes and the parameters they declare, then the finishing checks
   and the backward accumulation flags. */
#include "graph/graph.h"

#include <stdio.h>
#include <string.h>

#include "core/core.h"

size_t dd_dt_size(dd_dt t) { return t == DD_DT_BF16 ? 2 : 4; }

const char *dd_op_name(dd_op op) {
    static const char *const names[DD_OP_KINDS] = {
        [DD_OP_CONV] = "conv", [DD_OP_LINEAR] = "linear", [DD_OP_GROUPNORM] = "groupnorm", [DD_OP_SILU] = "silu",
        [DD_OP_ADD] = "add", [DD_OP_ADD_BIAS] = "add-bias", [DD_OP_ATTENTION] = "attention",
        [DD_OP_UPSAMPLE] = "upsample", [DD_OP_MAXPOOL] = "maxpool", [DD_OP_CONCAT] = "concat",
        [DD_OP_TIMESTEP] = "timestep", [DD_OP_EMBEDDING] = "embedding", [DD_OP_DROPOUT] = "dropout"};
    return (int)op >= 0 && op < DD_OP_KINDS ? names[op] : "?";
}

/* ------------------------------------------------------------------ builder */

ddpm_status dd_graph_init(dd_graph *g, int H, int W, int C) {
    memset(g, 0, sizeof *g);
    g->input = g->output = -1;
    g->values = dd_alloc(sizeof *g->values * 64);
    g->nodes = dd_alloc(sizeof *g->nodes * 64);
    g->params = dd_alloc(sizeof *g->params * 64);
    if (!g->values || !g->nodes || !g->params) {
        dd_graph_free(g);
        return DDPM_ERR_NOMEM;
    }
    g->cap_values = g->cap_nodes = g->cap_params = 64;
    dd_value *x = &g->values[g->nvalues++];
    memset(x, 0, sizeof *x);
    x->H = H, x->W = W, x->C = C;
    x->size = (int64_t)H * W * C;
    x->dtype = DD_DT_F32;
    x->layout = DD_LAYOUT_NHWC;
    x->producer = -1;
    x->needs_grad = 1;
    g->input = 0;
    return DDPM_OK;
}

void dd_graph_free(dd_graph *g) {
    if (!g) return;
    dd_free(g->values);
    dd_free(g->nodes);
    dd_free(g->params);
    memset(g, 0, sizeof *g);
}

int dd_graph_find_param(const dd_graph *g, const char *name) {
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->params[i].name, name) == 0) return i;
    return -1;
}

int dd_graph_param(dd_graph *g, const char *prefix, const char *leaf, int ndim, const int64_t *shape,
                   dd_param_init init, int64_t fan_in) {
    if (g->status != DDPM_OK) return -1;
    char name[DD_PARAM_NAME_MAX];
    int len = snprintf(name, sizeof name, "%s.%s", prefix, leaf);
    if (len < 0 || (size_t)len >= sizeof name || ndim < 1 || ndim > 4) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: parameter '%s.%s' is not a name or shape the graph "
                             "holds", prefix, leaf);
        return -1;
    }
    if (dd_graph_find_param(g, name) >= 0) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: parameter '%s' is declared twice", name);
        return -1;
    }
    if (g->nparams == g->cap_params) {
        dd_param *p = dd_realloc(g->params, sizeof *p * (size_t)g->cap_params * 2);
        if (!p) {
            g->status = DDPM_ERR_NOMEM;
            return -1;
        }
        g->params = p;
        g->cap_params *= 2;
    }
    dd_param *p = &g->params[g->nparams];
    memset(p, 0, sizeof *p);
    memcpy(p->name, name, (size_t)len + 1);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->init = init;
    p->fan_in = fan_in;
    p->offset = -1;
    return g->nparams++;
}

/* torch.nn.Conv2d / nn.Linear: weight and bias, both U(-1/sqrt(fan_in), ..); ids into *w, *b. */
static void fan_in_pair(dd_graph *g, const char *name, int ndim, const int64_t *wshape, int64_t out,
                        int64_t fan_in, int *w, int *b) {
    *w = dd_graph_param(g, name, "weight", ndim, wshape, DD_INIT_FAN_IN, fan_in);
    *b = dd_graph_param(g, name, "bias", 1, &out, DD_INIT_FAN_IN, fan_in);
}

/* A new node with inputs `in` and a new output value of H x W x C elements per image. */
static dd_node *new_node(dd_graph *g, dd_op op, const char *name, const int *in, int nin, int H, int W, int C,
                         int has_params) {
    if (g->status != DDPM_OK) return NULL;
    for (int k = 0; k < nin; k++)
        if (in[k] < 0 || in[k] >= g->nvalues) {
            g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: node %d reads an undefined value", g->nnodes);
            return NULL;
        }
    if (g->nnodes == g->cap_nodes) {
        dd_node *p = dd_realloc(g->nodes, sizeof *p * (size_t)g->cap_nodes * 2);
        if (!p) {
            g->status = DDPM_ERR_NOMEM;
            return NULL;
        }
        g->nodes = p;
        g->cap_nodes *= 2;
    }
    if (g->nvalues == g->cap_values) {
        dd_value *p = dd_realloc(g->values, sizeof *p * (size_t)g->cap_values * 2);
        if (!p) {
            g->status = DDPM_ERR_NOMEM;
            return NULL;
        }
        g->values = p;
        g->cap_values *= 2;
    }
    dd_node *nd = &g->nodes[g->nnodes];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    snprintf(nd->name, sizeof nd->name, "%s", name ? name : "");
    nd->nin = nin;
    nd->in[0] = nd->in[1] = nd->in[2] = -1;
    int grad = has_params;
    for (int k = 0; k < nin; k++) {
        nd->in[k] = in[k];
        grad |= g->values[in[k]].needs_grad;
    }
    nd->w = nd->b = -1;
    dd_value *v = &g->values[g->nvalues];
    memset(v, 0, sizeof *v);
    v->H = H, v->W = W, v->C = C;
    v->size = (int64_t)H * W * C;
    v->dtype = DD_DT_F32;
    v->layout = W == 1 && H == 1 ? DD_LAYOUT_ROWS : DD_LAYOUT_NHWC;
    v->producer = g->nnodes;
    v->needs_grad = grad;
    nd->out = g->nvalues++;
    g->nnodes++;
    return nd;
}

static int out_of(const dd_node *nd) { return nd ? nd->out : -1; }

/* The per-image shape of value x, or zeros once the status is set or x is undefined (new_node then fails). */
static dd_value shape_of(const dd_graph *g, int x) {
    dd_value z = {0};
    return g->status == DDPM_OK && x >= 0 && x < g->nvalues ? g->values[x] : z;
}

int dd_graph_conv(dd_graph *g, const char *name, int x, int H, int W, int C, int OC, int k, int stride, int pad_t,
                  int pad_l, int pad_b, int pad_r) {
    dd_conv_geom geom = {1, H, W, C, OC, k, k, stride, pad_t, pad_l, pad_b, pad_r, 0, 0};
    if (g->status != DDPM_OK) return -1;
    if ((g->status = dd_conv_geom_init(&geom)) != DDPM_OK) return -1;
    int w, b;
    const int64_t ws[4] = {OC, C, k, k};
    fan_in_pair(g, name, 4, ws, OC, (int64_t)C * k * k, &w, &b);
    dd_node *nd = new_node(g, DD_OP_CONV, name, &x, 1, geom.OH, geom.OW, OC, 1);
    if (!nd) return -1;
    nd->geom = geom;
    nd->H = H, nd->W = W, nd->C = C;
    nd->w = w, nd->b = b;
    return nd->out;
}

int dd_graph_linear(dd_graph *g, const char *name, int x, int rows, int IN, int OUT) {
    int w, b;
    const int64_t ws[2] = {OUT, IN};
    fan_in_pair(g, name, 2, ws, OUT, IN, &w, &b);
    dd_value in = shape_of(g, x);
    /* over the last dimension: [H, W, IN] -> [H, W, OUT] (tokens of attention, and rows [1, 1, IN]) */
    dd_node *nd = new_node(g, DD_OP_LINEAR, name, &x, 1, in.H, in.W, OUT, 1);
    if (!nd) return -1;
    if (in.size != (int64_t)rows * IN || in.C != IN) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: linear %s over %d x %d reads %lld values", name, rows,
                             IN, (long long)in.size);
        return -1;
    }
    nd->rows = rows, nd->IN = IN, nd->OUT = OUT;
    nd->w = w, nd->b = b;
    /* the same product as a 1x1 convolution over [rows, 1, IN] per image (weight [OUT, IN, 1, 1]) */
    dd_conv_geom geom = {1, rows, 1, IN, OUT, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    if ((g->status = dd_conv_geom_init(&geom)) != DDPM_OK) return -1;
    nd->geom = geom;
    return nd->out;
}

int dd_graph_groupnorm(dd_graph *g, const char *name, int x, int HW, int C, int G, double eps, int silu) {
    const int64_t s = C;
    int w = dd_graph_param(g, name, "weight", 1, &s, DD_INIT_ONES, 0);
    int b = dd_graph_param(g, name, "bias", 1, &s, DD_INIT_ZEROS, 0);
    dd_value in = shape_of(g, x);
    dd_node *nd = new_node(g, DD_OP_GROUPNORM, name, &x, 1, in.H, in.W, in.C, 1);
    if (!nd) return -1;
    if (in.size != (int64_t)HW * C || in.C != C) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: groupnorm %s of [%d, %d] reads %lld values", name, HW,
                             C, (long long)in.size);
        return -1;
    }
    nd->H = HW, nd->W = 1, nd->C = C;
    nd->G = G, nd->eps = eps, nd->silu = silu;
    nd->w = w, nd->b = b;
    return nd->out;
}

int dd_graph_silu(dd_graph *g, int x) {
    dd_value in = shape_of(g, x);
    return out_of(new_node(g, DD_OP_SILU, "silu", &x, 1, in.H, in.W, in.C, 0));
}

int dd_graph_add(dd_graph *g, int a, int b, double alpha) {
    int in[2] = {a, b};
    dd_value va = shape_of(g, a), vb = shape_of(g, b);
    if (g->status == DDPM_OK && (va.size != vb.size || va.C != vb.C)) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: add of values of different shapes");
        return -1;
    }
    dd_node *nd = new_node(g, DD_OP_ADD, "add", in, 2, va.H, va.W, va.C, 0);
    if (!nd) return -1;
    nd->alpha = alpha;
    return nd->out;
}

int dd_graph_add_bias(dd_graph *g, int x, int bias, int HW, int C) {
    int in[2] = {x, bias};
    dd_value v = shape_of(g, x);
    dd_node *nd = new_node(g, DD_OP_ADD_BIAS, "add_bias", in, 2, v.H, v.W, v.C, 0);
    if (!nd) return -1;
    nd->H = HW, nd->W = 1, nd->C = C;
    return nd->out;
}

int dd_graph_attention(dd_graph *g, const char *name, int q, int k, int v, int L, int C, int heads, double scale) {
    int in[3] = {q, k, v};
    dd_value vq = shape_of(g, q);
    dd_node *nd = new_node(g, DD_OP_ATTENTION, name, in, 3, vq.H, vq.W, vq.C, 0);
    if (!nd) return -1;
    nd->L = L, nd->C = C, nd->heads = heads, nd->scale = scale;
    return nd->out;
}

int dd_graph_upsample(dd_graph *g, int x, int H, int W, int C) {
    dd_node *nd = new_node(g, DD_OP_UPSAMPLE, "upsample", &x, 1, 2 * H, 2 * W, C, 0);
    if (!nd) return -1;
    nd->H = H, nd->W = W, nd->C = C;
    return nd->out;
}

int dd_graph_maxpool(dd_graph *g, int x, int H, int W, int C) {
    dd_node *nd = new_node(g, DD_OP_MAXPOOL, "maxpool", &x, 1, H / 2, W / 2, C, 0);
    if (!nd) return -1;
    nd->H = H, nd->W = W, nd->C = C;
    return nd->out;
}

int dd_graph_concat(dd_graph *g, int a, int b, int HW, int C1, int C2) {
    int in[2] = {a, b};
    dd_value va = shape_of(g, a), vb = shape_of(g, b);
    dd_node *nd = new_node(g, DD_OP_CONCAT, "cat", in, 2, va.H, va.W, C1 + C2, 0);
    if (!nd) return -1;
    if (va.size != (int64_t)HW * C1 || vb.size != (int64_t)HW * C2) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: cat of %lld and %lld values as [%d, %d + %d]",
                             (long long)va.size, (long long)vb.size, HW, C1, C2);
        return -1;
    }
    nd->H = HW, nd->W = 1, nd->C1 = C1, nd->C2 = C2;
    return nd->out;
}

int dd_graph_timestep(dd_graph *g, int dim, int flip, double freq_shift) {
    dd_node *nd = new_node(g, DD_OP_TIMESTEP, "time_proj", NULL, 0, 1, 1, dim, 0);
    if (!nd) return -1;
    nd->dim = dim, nd->flip = flip, nd->freq_shift = freq_shift;
    return nd->out;
}

int dd_graph_embedding(dd_graph *g, const char *name, int K, int D) {
    const int64_t s[2] = {K, D};
    int w = dd_graph_param(g, name, "weight", 2, s, DD_INIT_NORMAL, 0);
    dd_node *nd = new_node(g, DD_OP_EMBEDDING, name, NULL, 0, 1, 1, D, 1);
    if (!nd) return -1;
    nd->dim = D;
    nd->w = w;
    return nd->out;
}

int dd_graph_dropout(dd_graph *g, int x, double p) {
    dd_value in = shape_of(g, x);
    dd_node *nd = new_node(g, DD_OP_DROPOUT, "dropout", &x, 1, in.H, in.W, in.C, 0);
    if (!nd) return -1;
    nd->p = p;
    nd->dropout_index = g->num_dropout++;
    return nd->out;
}

/* ------------------------------------------------------------------ finishing */

ddpm_status dd_graph_finish(dd_graph *g) {
    if (g->status != DDPM_OK) return g->status;
    if (g->output < 0 || g->output >= g->nvalues)
        return g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: no output value");
    unsigned char *written = dd_calloc((size_t)g->nvalues, 1), *read = dd_calloc((size_t)g->nvalues, 1);
    if (!written || !read) {
        dd_free(written);
        dd_free(read);
        return g->status = DDPM_ERR_NOMEM;
    }
    /* in reverse node order the first gradient written into a value overwrites (acc = 0), later ones add */
    for (int i = g->nnodes - 1; i >= 0; i--) {
        dd_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->nin; k++) {
            int v = nd->in[k];
            read[v] = 1;
            nd->acc[k] = written[v];
            if (g->values[v].needs_grad) written[v] = 1;
        }
    }
    for (int v = 0; v < g->nvalues && g->status == DDPM_OK; v++)
        if (!read[v] && v != g->output)
            g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: value %d is never read", v);
    dd_free(written);
    dd_free(read);
    return g->status;
}
