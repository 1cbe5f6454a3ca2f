/* graph.c — building the layer graph (values and nodes) and running it: forward in node order, backward in
   reverse order, each node one kernel call of the fast family (dd_*) or of the reference twins (dd_ref_*_f32). */
#include "model/graph.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

/* ------------------------------------------------------------------ builder */

ddpm_status dd_graph_init(dd_graph *g, const dd_model_params *tab, int64_t input_size) {
    memset(g, 0, sizeof *g);
    g->tab = tab;
    g->input = g->output = -1;
    g->values = dd_alloc(sizeof *g->values * 64);
    g->nodes = dd_alloc(sizeof *g->nodes * 64);
    if (!g->values || !g->nodes) {
        dd_graph_free(g);
        return DDPM_ERR_NOMEM;
    }
    g->cap_values = g->cap_nodes = 64;
    dd_value *x = &g->values[g->nvalues++];
    memset(x, 0, sizeof *x);
    x->size = input_size;
    x->producer = -1;
    x->needs_grad = 1;
    g->input = 0;
    return DDPM_OK;
}

void dd_graph_free(dd_graph *g) {
    if (!g) return;
    dd_free(g->values);
    dd_free(g->nodes);
    memset(g, 0, sizeof *g);
}

int64_t dd_graph_param(dd_graph *g, const char *prefix, const char *leaf, int64_t numel) {
    if (g->status != DDPM_OK) return -1;
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, leaf);
    int i = dd_model_params_find(g->tab, name);
    if (i < 0 || g->tab->t[i].numel != numel) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: parameter '%s' of %lld values is not in the table", name,
                             (long long)numel);
        return -1;
    }
    return g->tab->t[i].offset;
}

/* A new node with inputs `in` and a new output value of `size` floats per image. */
static dd_node *new_node(dd_graph *g, dd_op op, const char *name, const int *in, int nin, int64_t size,
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
    v->size = size;
    v->producer = g->nnodes;
    v->needs_grad = grad;
    nd->out = g->nvalues++;
    g->nnodes++;
    return nd;
}

static int out_of(const dd_node *nd) { return nd ? nd->out : -1; }

int dd_graph_conv(dd_graph *g, const char *name, int x, int H, int W, int C, int OC, int k, int stride, int pad_t,
                  int pad_l, int pad_b, int pad_r) {
    dd_conv_geom geom = {1, H, W, C, OC, k, k, stride, pad_t, pad_l, pad_b, pad_r, 0, 0};
    if (g->status != DDPM_OK) return -1;
    if ((g->status = dd_conv_geom_init(&geom)) != DDPM_OK) return -1;
    int64_t w = dd_graph_param(g, name, "weight", (int64_t)OC * C * k * k);
    int64_t b = dd_graph_param(g, name, "bias", OC);
    dd_node *nd = new_node(g, DD_OP_CONV, name, &x, 1, (int64_t)geom.OH * geom.OW * OC, 1);
    if (!nd) return -1;
    nd->geom = geom;
    nd->H = H, nd->W = W, nd->C = C;
    nd->w = w, nd->b = b;
    return nd->out;
}

int dd_graph_linear(dd_graph *g, const char *name, int x, int rows, int IN, int OUT) {
    int64_t w = dd_graph_param(g, name, "weight", (int64_t)OUT * IN), b = dd_graph_param(g, name, "bias", OUT);
    dd_node *nd = new_node(g, DD_OP_LINEAR, name, &x, 1, (int64_t)rows * OUT, 1);
    if (!nd) return -1;
    nd->rows = rows, nd->IN = IN, nd->OUT = OUT;
    nd->w = w, nd->b = b;
    /* the same product as a 1x1 convolution over [rows, 1, IN] per image (weight [OUT, IN, 1, 1]): the fast
       engine runs the projections of attention (rows = L) on oneDNN, several times faster than sgemm at
       these sizes (docs/perf.md); the time embedding (rows = 1) stays on BLAS */
    dd_conv_geom geom = {1, rows, 1, IN, OUT, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    if ((g->status = dd_conv_geom_init(&geom)) != DDPM_OK) return -1;
    nd->geom = geom;
    return nd->out;
}

int dd_graph_groupnorm(dd_graph *g, const char *name, int x, int HW, int C, int G, double eps, int silu) {
    int64_t w = dd_graph_param(g, name, "weight", C), b = dd_graph_param(g, name, "bias", C);
    dd_node *nd = new_node(g, DD_OP_GROUPNORM, name, &x, 1, (int64_t)HW * C, 1);
    if (!nd) return -1;
    nd->H = HW, nd->W = 1, nd->C = C;
    nd->G = G, nd->eps = eps, nd->silu = silu;
    nd->w = w, nd->b = b;
    return nd->out;
}

int dd_graph_silu(dd_graph *g, int x) {
    int64_t size = g->status == DDPM_OK && x >= 0 && x < g->nvalues ? g->values[x].size : 0;
    return out_of(new_node(g, DD_OP_SILU, "silu", &x, 1, size, 0));
}

int dd_graph_add(dd_graph *g, int a, int b, double alpha) {
    int in[2] = {a, b};
    int64_t size = g->status == DDPM_OK && a >= 0 && a < g->nvalues ? g->values[a].size : 0;
    if (g->status == DDPM_OK && (b < 0 || b >= g->nvalues || g->values[b].size != size)) {
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: add of values of different sizes");
        return -1;
    }
    dd_node *nd = new_node(g, DD_OP_ADD, "add", in, 2, size, 0);
    if (!nd) return -1;
    nd->alpha = alpha;
    return nd->out;
}

int dd_graph_add_bias(dd_graph *g, int x, int bias, int HW, int C) {
    int in[2] = {x, bias};
    dd_node *nd = new_node(g, DD_OP_ADD_BIAS, "add_bias", in, 2, (int64_t)HW * C, 0);
    if (!nd) return -1;
    nd->H = HW, nd->W = 1, nd->C = C;
    return nd->out;
}

int dd_graph_attention(dd_graph *g, const char *name, int q, int k, int v, int L, int C, int heads, double scale) {
    int in[3] = {q, k, v};
    dd_node *nd = new_node(g, DD_OP_ATTENTION, name, in, 3, (int64_t)L * C, 0);
    if (!nd) return -1;
    nd->L = L, nd->C = C, nd->heads = heads, nd->scale = scale;
    return nd->out;
}

int dd_graph_upsample(dd_graph *g, int x, int H, int W, int C) {
    dd_node *nd = new_node(g, DD_OP_UPSAMPLE, "upsample", &x, 1, (int64_t)4 * H * W * C, 0);
    if (!nd) return -1;
    nd->H = H, nd->W = W, nd->C = C;
    return nd->out;
}

int dd_graph_maxpool(dd_graph *g, int x, int H, int W, int C) {
    dd_node *nd = new_node(g, DD_OP_MAXPOOL, "maxpool", &x, 1, (int64_t)(H / 2) * (W / 2) * C, 0);
    if (!nd) return -1;
    nd->H = H, nd->W = W, nd->C = C;
    return nd->out;
}

int dd_graph_concat(dd_graph *g, int a, int b, int HW, int C1, int C2) {
    int in[2] = {a, b};
    dd_node *nd = new_node(g, DD_OP_CONCAT, "cat", in, 2, (int64_t)HW * (C1 + C2), 0);
    if (!nd) return -1;
    nd->H = HW, nd->W = 1, nd->C1 = C1, nd->C2 = C2;
    return nd->out;
}

int dd_graph_timestep(dd_graph *g, int dim, int flip, double freq_shift) {
    dd_node *nd = new_node(g, DD_OP_TIMESTEP, "time_proj", NULL, 0, dim, 0);
    if (!nd) return -1;
    nd->dim = dim, nd->flip = flip, nd->freq_shift = freq_shift;
    return nd->out;
}

int dd_graph_embedding(dd_graph *g, const char *name, int K, int D) {
    int64_t w = dd_graph_param(g, name, "weight", (int64_t)K * D);
    dd_node *nd = new_node(g, DD_OP_EMBEDDING, name, NULL, 0, D, 1);
    if (!nd) return -1;
    nd->dim = D;
    nd->w = w;
    return nd->out;
}

int dd_graph_dropout(dd_graph *g, int x, double p) {
    int64_t size = g->status == DDPM_OK && x >= 0 && x < g->nvalues ? g->values[x].size : 0;
    dd_node *nd = new_node(g, DD_OP_DROPOUT, "dropout", &x, 1, size, 0);
    if (!nd) return -1;
    nd->p = p;
    nd->dropout_index = g->num_dropout++;
    return nd->out;
}

/* ------------------------------------------------------------------ execution */

static uint64_t dropout_stream(const dd_exec *e, const dd_node *nd) {
    return ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)(e->dropout_step & 0xffffffu),
                           DD_MODEL_DROPOUT_ITEM + (uint32_t)nd->dropout_index);
}

static ddpm_status forward_node(const dd_graph *g, const dd_node *nd, const dd_exec *e) {
    const int N = e->N, ref = e->engine == DDPM_ENGINE_REFERENCE;
    float *out = g->values[nd->out].data;
    const float *x = nd->nin > 0 ? g->values[nd->in[0]].data : NULL;
    const float *y = nd->nin > 1 ? g->values[nd->in[1]].data : NULL;
    const float *w = nd->w >= 0 ? e->params + nd->w : NULL;
    const float *b = nd->b >= 0 ? e->params + nd->b : NULL;
    const size_t n = (size_t)N * (size_t)g->values[nd->out].size;
    switch (nd->op) {
    case DD_OP_CONV: {
        if (!ref) return dd_conv_forward(nd->conv, out, x, b, N, e->conv_scratch);
        dd_conv_geom geom = nd->geom;
        geom.N = N;
        dd_ref_conv2d_forward_f32(out, x, w, b, &geom);
        break;
    }
    case DD_OP_LINEAR:
        if (ref) dd_ref_linear_forward_f32(out, x, w, b, N * nd->rows, nd->IN, nd->OUT);
        else if (nd->conv) return dd_conv_forward(nd->conv, out, x, b, N, e->conv_scratch);
        else dd_linear_forward(out, x, w, b, N * nd->rows, nd->IN, nd->OUT);
        break;
    case DD_OP_GROUPNORM:
        if (ref) dd_ref_groupnorm_forward_f32(out, nd->mean, nd->rstd, x, w, b, N, nd->H, nd->C, nd->G, nd->eps,
                                              nd->silu);
        else dd_groupnorm_forward(out, nd->mean, nd->rstd, x, w, b, N, nd->H, nd->C, nd->G, nd->eps, nd->silu);
        break;
    case DD_OP_SILU:
        if (ref) dd_ref_silu_forward_f32(out, x, n);
        else dd_silu_forward(out, x, n);
        break;
    case DD_OP_ADD:
        if (ref) dd_ref_add_forward_f32(out, x, y, nd->alpha, n);
        else dd_add_forward(out, x, y, nd->alpha, n);
        break;
    case DD_OP_ADD_BIAS:
        if (ref) dd_ref_add_channel_bias_forward_f32(out, x, y, N, nd->H, nd->C);
        else dd_add_channel_bias_forward(out, x, y, N, nd->H, nd->C);
        break;
    case DD_OP_ATTENTION: {
        const float *v = g->values[nd->in[2]].data;
        if (ref) dd_ref_attention_forward_f32(out, x, y, v, N, nd->L, nd->C, nd->heads, nd->scale);
        else dd_attention_forward(out, x, y, v, N, nd->L, nd->C, nd->heads, nd->scale, e->node_work);
        break;
    }
    case DD_OP_UPSAMPLE:
        if (ref) dd_ref_upsample2x_forward_f32(out, x, N, nd->H, nd->W, nd->C);
        else dd_upsample2x_forward(out, x, N, nd->H, nd->W, nd->C);
        break;
    case DD_OP_MAXPOOL:   /* one kernel for both engines */
        dd_ref_maxpool2x2_forward_f32(out, x, N, nd->H, nd->W, nd->C);
        break;
    case DD_OP_CONCAT:
        if (ref) dd_ref_concat_forward_f32(out, x, y, N, nd->H, nd->C1, nd->C2);
        else dd_concat_forward(out, x, y, N, nd->H, nd->C1, nd->C2);
        break;
    case DD_OP_TIMESTEP:  /* float32 as diffusers computes it, max_period 10000 */
        dd_timestep_embedding_f32(out, e->timesteps, N, nd->dim, nd->flip, nd->freq_shift, 10000.0);
        break;
    case DD_OP_EMBEDDING:
        dd_ref_embedding_forward_f32(out, w, e->labels, N, nd->dim);
        break;
    case DD_OP_DROPOUT:
        if (e->training) dd_dropout_forward(out, x, n, nd->p, e->dropout_seed, dropout_stream(e, nd));
        else memcpy(out, x, sizeof(float) * n);
        break;
    }
    return DDPM_OK;
}

/* ------------------------------------------------------------------ profile */

double dd_profile_clock(const dd_profile *p) { return p ? omp_get_wtime() : 0.0; }

void dd_profile_add(dd_profile *p, int kind, int backward, double t0, double flops, double bytes) {
    if (!p || kind < 0 || kind >= DD_PROF_KINDS) return;
    dd_prof_cell *c = &p->cell[kind][backward ? 1 : 0];
    c->seconds += omp_get_wtime() - t0, c->flops += flops, c->bytes += bytes, c->calls++;
}

/* Nominal work of one call of nd on N images: 2 x multiply-adds (the matrix products) and the bytes the call
   must read and write at least once. */
static void node_cost(const dd_graph *g, const dd_node *nd, int N, int backward, int want_dx, double *flops,
                      double *bytes) {
    const double n = (double)N * (double)g->values[nd->out].size;   /* output floats */
    const double x = nd->nin > 0 ? (double)N * (double)g->values[nd->in[0]].size : 0.0;
    const double y = nd->nin > 1 ? (double)N * (double)g->values[nd->in[1]].size : 0.0;
    double f = 0.0, b = 0.0;
    switch (nd->op) {
    case DD_OP_CONV: {
        const dd_conv_geom *c = &nd->geom;
        const double w = (double)c->OC * c->C * c->KH * c->KW;
        f = 2.0 * N * (double)c->OH * c->OW * w;
        b = 4.0 * (x + n + w);
        if (backward) {   /* weights always; data unless it is the graph's input without dx */
            const int data = nd->in[0] != g->input || want_dx;
            f *= data ? 2.0 : 1.0;
            b = 4.0 * (2.0 * x + n + 2.0 * w) + (data ? 4.0 * x : 0.0);
        }
        break;
    }
    case DD_OP_LINEAR: {
        const double w = (double)nd->IN * nd->OUT;
        f = 2.0 * N * (double)nd->rows * w * (backward ? 2.0 : 1.0);
        b = 4.0 * (x + n + w) * (backward ? 2.0 : 1.0);
        break;
    }
    case DD_OP_GROUPNORM:   /* statistics pass + normalise pass; backward: two passes over x and dout */
        f = (backward ? 12.0 : 8.0) * n;
        b = 4.0 * (backward ? 5.0 : 3.0) * n;
        break;
    case DD_OP_ATTENTION: {   /* QK^T and PV; backward recomputes QK^T, then dP, dV, dQ, dK */
        const double qk = 2.0 * N * (double)nd->L * nd->L * nd->C;
        f = (backward ? 5.0 : 2.0) * qk;
        b = 4.0 * n * (backward ? 8.0 : 4.0);
        break;
    }
    case DD_OP_ADD:
    case DD_OP_CONCAT:
        b = 4.0 * (x + y + n);
        break;
    default:   /* elementwise and copies: read the input(s), write the output (backward: the same in reverse) */
        b = 4.0 * (x + y + n) + (backward && nd->op == DD_OP_SILU ? 4.0 * n : 0.0);
        f = nd->op == DD_OP_SILU ? 4.0 * n : 0.0;
        break;
    }
    *flops = f;
    *bytes = b;
}

static void profile_node(const dd_graph *g, const dd_node *nd, const dd_exec *e, int backward, double t0) {
    if (!e->prof) return;
    double f, b;
    node_cost(g, nd, e->N, backward, e->want_dx, &f, &b);
    dd_profile_add(e->prof, (int)nd->op, backward, t0, f, b);
}

ddpm_status dd_graph_forward(const dd_graph *g, const dd_exec *e) {
    for (int i = 0; i < g->nnodes; i++) {
        const double t0 = dd_profile_clock(e->prof);
        ddpm_status st = forward_node(g, &g->nodes[i], e);
        if (st != DDPM_OK) return dd_error_prefix(st, g->nodes[i].name);
        profile_node(g, &g->nodes[i], e, 0, t0);
    }
    return DDPM_OK;
}

/* d = alpha dout (acc = 0) or d += alpha dout (acc = 1): the backward of out = alpha (a + b). */
static void scaled_grad(float *d, const float *dout, double alpha, size_t n, int acc) {
    const float a = (float)alpha;
    if (a == 1.0f) {
        if (acc) {
#pragma omp parallel for schedule(static) if (n > 65536)
            for (size_t i = 0; i < n; i++) d[i] += dout[i];
        } else {
            memcpy(d, dout, sizeof(float) * n);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) d[i] = acc ? d[i] + a * dout[i] : a * dout[i];
}

static ddpm_status backward_node(const dd_graph *g, const dd_node *nd, const dd_exec *e) {
    const int N = e->N, ref = e->engine == DDPM_ENGINE_REFERENCE;
    const float *dout = g->values[nd->out].grad;
    const float *in[3] = {NULL, NULL, NULL};
    float *din[3] = {NULL, NULL, NULL};
    for (int k = 0; k < nd->nin; k++) {
        const dd_value *v = &g->values[nd->in[k]];
        in[k] = v->data;
        if (v->needs_grad && (nd->in[k] != g->input || e->want_dx)) din[k] = v->grad;
    }
    const float *w = nd->w >= 0 ? e->params + nd->w : NULL;
    const float *b = nd->b >= 0 ? e->params + nd->b : NULL;
    float *dw = nd->w >= 0 ? e->grads + nd->w : NULL;
    float *db = nd->b >= 0 ? e->grads + nd->b : NULL;
    const size_t n = (size_t)N * (size_t)g->values[nd->out].size;
    const int acc = nd->acc[0];
    switch (nd->op) {
    case DD_OP_CONV: {
        if (!ref) return dd_conv_backward(nd->conv, din[0], dw, db, dout, in[0], N, acc, e->conv_scratch);
        dd_conv_geom geom = nd->geom;
        geom.N = N;
        dd_ref_conv2d_backward_f32(din[0], dw, db, dout, in[0], w, &geom, acc);
        break;
    }
    case DD_OP_LINEAR:
        if (ref) dd_ref_linear_backward_f32(din[0], dw, db, dout, in[0], w, N * nd->rows, nd->IN, nd->OUT, acc);
        else if (nd->conv) return dd_conv_backward(nd->conv, din[0], dw, db, dout, in[0], N, acc, e->conv_scratch);
        else dd_linear_backward(din[0], dw, db, dout, in[0], w, N * nd->rows, nd->IN, nd->OUT, acc);
        break;
    case DD_OP_GROUPNORM:
        if (ref) dd_ref_groupnorm_backward_f32(din[0], dw, db, dout, in[0], nd->mean, nd->rstd, w, b, N, nd->H,
                                               nd->C, nd->G, nd->silu, acc);
        else dd_groupnorm_backward(din[0], dw, db, dout, in[0], nd->mean, nd->rstd, w, b, N, nd->H, nd->C, nd->G,
                                   nd->silu, acc, e->node_work);
        break;
    case DD_OP_SILU:
        if (!din[0]) break;
        if (ref) dd_ref_silu_backward_f32(din[0], dout, in[0], n, acc);
        else dd_silu_backward(din[0], dout, in[0], n, acc);
        break;
    case DD_OP_ADD:
        for (int k = 0; k < 2; k++)
            if (din[k]) scaled_grad(din[k], dout, nd->alpha, n, nd->acc[k]);
        break;
    case DD_OP_ADD_BIAS:
        /* d bias [N, C] is accumulated by the kernel: clear it when this is its first gradient */
        if (din[1] && !nd->acc[1]) memset(din[1], 0, sizeof(float) * (size_t)N * (size_t)nd->C);
        if (ref) dd_ref_add_channel_bias_backward_f32(din[0], din[1], dout, N, nd->H, nd->C, acc);
        else dd_add_channel_bias_backward(din[0], din[1], dout, N, nd->H, nd->C, acc);
        break;
    case DD_OP_ATTENTION:
        if (nd->acc[0] == nd->acc[1] && nd->acc[1] == nd->acc[2]) {
            if (ref) dd_ref_attention_backward_f32(din[0], din[1], din[2], dout, in[0], in[1], in[2], N, nd->L, nd->C,
                                                   nd->heads, nd->scale, acc);
            else dd_attention_backward(din[0], din[1], din[2], dout, in[0], in[1], in[2], N, nd->L, nd->C,
                                       nd->heads, nd->scale, acc, e->node_work);
        } else {
            for (int k = 0; k < 3; k++) {
                float *d[3] = {NULL, NULL, NULL};
                d[k] = din[k];
                if (!d[k]) continue;
                if (ref) dd_ref_attention_backward_f32(d[0], d[1], d[2], dout, in[0], in[1], in[2], N, nd->L, nd->C,
                                                       nd->heads, nd->scale, nd->acc[k]);
                else dd_attention_backward(d[0], d[1], d[2], dout, in[0], in[1], in[2], N, nd->L, nd->C, nd->heads,
                                           nd->scale, nd->acc[k], e->node_work);
            }
        }
        break;
    case DD_OP_UPSAMPLE:
        if (!din[0]) break;
        if (ref) dd_ref_upsample2x_backward_f32(din[0], dout, N, nd->H, nd->W, nd->C, acc);
        else dd_upsample2x_backward(din[0], dout, N, nd->H, nd->W, nd->C, acc);
        break;
    case DD_OP_MAXPOOL:
        if (din[0]) dd_ref_maxpool2x2_backward_f32(din[0], dout, in[0], N, nd->H, nd->W, nd->C, acc);
        break;
    case DD_OP_CONCAT:
        if (din[0] && din[1] && nd->acc[0] != nd->acc[1]) {   /* different first writers: one side at a time */
            for (int k = 0; k < 2; k++) {
                float *da = k == 0 ? din[0] : NULL, *dbb = k == 1 ? din[1] : NULL;
                if (ref) dd_ref_concat_backward_f32(da, dbb, dout, N, nd->H, nd->C1, nd->C2, nd->acc[k]);
                else dd_concat_backward(da, dbb, dout, N, nd->H, nd->C1, nd->C2, nd->acc[k]);
            }
        } else if (din[0] || din[1]) {
            int a = din[0] ? nd->acc[0] : nd->acc[1];
            if (ref) dd_ref_concat_backward_f32(din[0], din[1], dout, N, nd->H, nd->C1, nd->C2, a);
            else dd_concat_backward(din[0], din[1], dout, N, nd->H, nd->C1, nd->C2, a);
        }
        break;
    case DD_OP_TIMESTEP:  /* no gradient with respect to timesteps */
        break;
    case DD_OP_EMBEDDING:
        dd_ref_embedding_backward_f32(dw, dout, e->labels, N, nd->dim);
        break;
    case DD_OP_DROPOUT:
        if (!din[0]) break;
        if (e->training) dd_dropout_backward(din[0], dout, n, nd->p, e->dropout_seed, dropout_stream(e, nd), acc);
        else scaled_grad(din[0], dout, 1.0, n, acc);
        break;
    }
    return DDPM_OK;
}

ddpm_status dd_graph_backward(const dd_graph *g, const dd_exec *e) {
    for (int i = g->nnodes - 1; i >= 0; i--) {
        const double t0 = dd_profile_clock(e->prof);
        ddpm_status st = backward_node(g, &g->nodes[i], e);
        if (st != DDPM_OK) return dd_error_prefix(st, g->nodes[i].name);
        profile_node(g, &g->nodes[i], e, 1, t0);
    }
    return DDPM_OK;
}
