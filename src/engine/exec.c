/* exec.c — running a plan: forward in node order and backward in reverse order, each node one call of its
   backend on the planned buffers; the per-op profile. */
#include <omp.h>
#include <string.h>

#include "engine/plan.h"

/* ------------------------------------------------------------------ profile */

double dd_profile_clock(const dd_profile *p) { return p ? omp_get_wtime() : 0.0; }

void dd_profile_add(dd_profile *p, int kind, int backward, double t0, double flops, double bytes) {
    if (!p || kind < 0 || kind >= DD_PROF_KINDS) return;
    dd_prof_cell *c = &p->cell[kind][backward ? 1 : 0];
    c->seconds += omp_get_wtime() - t0, c->flops += flops, c->bytes += bytes, c->calls++;
}

const char *dd_profile_kind_name(int kind) {
    static const char *const parts[DD_PROF_KINDS - DD_OP_KINDS] = {"layout", "weight-reorder", "batch", "loss",
                                                                   "adamw", "ema"};
    if (kind >= 0 && kind < DD_OP_KINDS) return dd_op_name((dd_op)kind);
    return kind >= DD_OP_KINDS && kind < DD_PROF_KINDS ? parts[kind - DD_OP_KINDS] : "?";
}

static void profile_node(const dd_plan *p, const dd_node *nd, const dd_exec *e, int backward, double t0) {
    if (!e->prof) return;
    double f, b;
    dd_graph_node_cost(&p->graph, nd, e->N, backward, e->want_dx, &f, &b);
    dd_profile_add(e->prof, (int)nd->op, backward, t0, f, b);
}

/* ------------------------------------------------------------------ calls */

static void call_init(const dd_plan *p, int i, const dd_exec *e, int backward, dd_node_call *c) {
    const dd_graph *g = &p->graph;
    const dd_node *nd = &g->nodes[i];
    memset(c, 0, sizeof *c);
    c->N = e->N;
    c->training = e->training;
    for (int k = 0; k < nd->nin; k++) {
        const int v = nd->in[k];
        c->x[k] = p->data[v];
        if (backward && g->values[v].needs_grad && (v != g->input || e->want_dx)) c->dx[k] = p->grad[v];
    }
    c->y = p->data[nd->out];
    if (backward) c->dy = p->grad[nd->out];
    if (nd->w >= 0) {
        c->w = e->params + g->params[nd->w].offset;
        if (backward && e->grads) c->dw = e->grads + g->params[nd->w].offset;
    }
    if (nd->b >= 0) {
        c->b = e->params + g->params[nd->b].offset;
        if (backward && e->grads) c->db = e->grads + g->params[nd->b].offset;
    }
    c->saved = p->saved[i];
    c->work = p->work;
    c->scratch = p->scratch;
    c->state = p->node_state[i];
    c->timesteps = e->timesteps;
    c->labels = e->labels;
    if (nd->op == DD_OP_DROPOUT) {
        c->seed = e->dropout_seed;
        c->stream = ddpm_rng_stream(DDPM_STREAM_TRAIN, e->dropout_step & 0xffffffu,
                                    e->dropout_item + (uint32_t)nd->dropout_index);
    }
}

/* The node's backward: one call when every input gradient it writes takes the same accumulate flag, else one
   call per input (the parameter gradients in the first). */
static ddpm_status backward_node(const dd_plan *p, const dd_node *nd, const dd_node_call *all) {
    const dd_backend *b = p->node_backend[nd - p->graph.nodes];
    int first = -1, mixed = 0;
    for (int k = 0; k < nd->nin; k++)
        if (all->dx[k]) {
            if (first < 0) first = k;
            else if (nd->acc[k] != nd->acc[first]) mixed = 1;
        }
    if (!mixed) {
        dd_node_call c = *all;
        c.acc = first >= 0 ? nd->acc[first] : 0;
        return b->backward(&p->graph, nd, &c);
    }
    for (int k = first; k < nd->nin; k++) {
        if (!all->dx[k]) continue;
        dd_node_call c = *all;
        for (int j = 0; j < 3; j++)
            if (j != k) c.dx[j] = NULL;
        if (k != first) c.dw = c.db = NULL;
        c.acc = nd->acc[k];
        ddpm_status st = b->backward(&p->graph, nd, &c);
        if (st != DDPM_OK) return st;
    }
    return DDPM_OK;
}

/* Every node forward in order, or backward in reverse order. */
static ddpm_status run(const dd_plan *p, const dd_exec *e, int backward) {
    const int F = p->graph.nnodes;
    for (int s = 0; s < F; s++) {
        const int i = backward ? F - 1 - s : s;
        const dd_node *nd = &p->graph.nodes[i];
        const double t0 = dd_profile_clock(e->prof);
        dd_node_call c;
        call_init(p, i, e, backward, &c);
        ddpm_status st = backward ? backward_node(p, nd, &c) : p->node_backend[i]->forward(&p->graph, nd, &c);
        if (st != DDPM_OK) return dd_error_prefix(st, nd->name);
        profile_node(p, nd, e, backward, t0);
    }
    return DDPM_OK;
}

ddpm_status dd_plan_forward(const dd_plan *p, const dd_exec *e) { return run(p, e, 0); }

ddpm_status dd_plan_backward(const dd_plan *p, const dd_exec *e) { return run(p, e, 1); }
