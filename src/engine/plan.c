/* plan.c — the planner. Each node goes to the first backend down the plan's chain that supports it, which
   prepares it and says what it needs; then every buffer (activations, their gradients, the nodes' saved state,
   parameter gradients, the shared scratch and per-thread work) gets a lifetime on the forward/backward
   timeline and an offset in ONE arena, chosen greedily so that buffers whose lifetimes do not overlap share
   memory (largest first, lowest free offset). Nothing is allocated inside forward or backward afterwards. */
#include "engine/plan.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PLAN_ALIGN 64
#define MIB(b) ((double)(b) / (1024.0 * 1024.0))

/* One planned buffer: live over the time steps [start, end] (inclusive). Node i runs forward at time i and
   backward at time 2F - 1 - i (F nodes); time F is also the output copy, 2F the copy of dx. */
typedef struct {
    size_t bytes;
    int start, end;
    size_t offset;
    void **at;                 /* where the resolved pointer goes */
} plan_buf;

typedef struct {
    plan_buf *b;
    int n, cap;
    int overflow;              /* a size overflowed size_t */
} buf_list;

static ddpm_status add_buf(buf_list *l, size_t count, size_t elem, int start, int end, void **at) {
    size_t bytes;
    if (dd_mul_size(count, elem, &bytes) != 0 || bytes > SIZE_MAX / 2) {
        l->overflow = 1;
        bytes = 0;
    }
    bytes = (bytes + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        plan_buf *p = dd_realloc(l->b, sizeof *p * (size_t)cap);
        if (!p) return DDPM_ERR_NOMEM;
        l->b = p;
        l->cap = cap;
    }
    l->b[l->n++] = (plan_buf){bytes, start, end, 0, at};
    return DDPM_OK;
}

/* Greedy placement by size (Pisarchyk & Lee 2020, "Efficient memory management for deep neural net
   inference", greedy by size): each buffer, largest first, goes to the lowest offset that does not collide
   with an already placed buffer whose lifetime overlaps. Returns the arena size. */
static ddpm_status place(buf_list *l, size_t *total) {
    int n = l->n;
    int *order = dd_alloc(sizeof(int) * (size_t)(n ? n : 1));
    int *placed = dd_alloc(sizeof(int) * (size_t)(n ? n : 1));   /* indices, ascending offset */
    if (!order || !placed) {
        dd_free(order);
        dd_free(placed);
        return DDPM_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    /* insertion sort (stable): bytes descending, then start ascending */
    for (int i = 1; i < n; i++) {
        int k = order[i], j = i - 1;
        while (j >= 0 && (l->b[order[j]].bytes < l->b[k].bytes ||
                          (l->b[order[j]].bytes == l->b[k].bytes && l->b[order[j]].start > l->b[k].start))) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = k;
    }
    size_t top = 0;
    int nplaced = 0;
    for (int oi = 0; oi < n; oi++) {
        plan_buf *b = &l->b[order[oi]];
        size_t off = 0;
        for (int pi = 0; pi < nplaced; pi++) {
            const plan_buf *p = &l->b[placed[pi]];
            if (p->end < b->start || p->start > b->end) continue;  /* lifetimes apart */
            if (off + b->bytes <= p->offset) break;                                      /* fits below p */
            if (p->offset + p->bytes > off) off = p->offset + p->bytes;
        }
        b->offset = off;
        if (off + b->bytes > top) top = off + b->bytes;
        int at = nplaced;
        while (at > 0 && l->b[placed[at - 1]].offset > off) {
            placed[at] = placed[at - 1];
            at--;
        }
        placed[at] = order[oi];
        nplaced++;
    }
    dd_free(order);
    dd_free(placed);
    *total = top;
    return DDPM_OK;
}

/* Backward of these ops reads their inputs (weight gradients, recomputed activations). */
static int keeps_input(dd_op op) {
    return op == DD_OP_CONV || op == DD_OP_LINEAR || op == DD_OP_GROUPNORM || op == DD_OP_SILU ||
           op == DD_OP_ATTENTION || op == DD_OP_MAXPOOL;
}

static size_t physical_limit(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return SIZE_MAX;
    size_t total;
    if (dd_mul_size((size_t)pages, (size_t)page, &total) != 0) return SIZE_MAX;
    return total / 4 * 3;
}

static ddpm_status too_big(const dd_plan *p, size_t need, int overflow, size_t limit) {
    char want[64];
    if (overflow) snprintf(want, sizeof want, "more than the address space");
    else snprintf(want, sizeof want, "%.1f MiB", MIB(need));
    return dd_error(DDPM_ERR_NOMEM, "model plan for batch %d (%s, %s engine) needs %s but the memory limit is "
                    "%.1f MiB; lower the batch or raise memory_limit", p->max_batch,
                    p->training ? "training" : "inference",
                    ddpm_enum_name(DDPM_ENUM_ENGINE, (int)p->engine), want, MIB(limit));
}

/* The activations and their gradients, with their lifetimes: the part of the plan that does not depend on the
   backends (checked against the limit before any backend object is made). */
static ddpm_status collect_values(dd_plan *p, buf_list *l) {
    dd_graph *g = &p->graph;
    const int F = g->nnodes, T = p->training;
    const size_t B = (size_t)p->max_batch;
    int *last = dd_alloc(sizeof(int) * (size_t)g->nvalues);
    int *end = dd_alloc(sizeof(int) * (size_t)g->nvalues);
    if (!last || !end) {
        dd_free(last);
        dd_free(end);
        return DDPM_ERR_NOMEM;
    }
    for (int v = 0; v < g->nvalues; v++) {
        last[v] = -1;
        end[v] = g->values[v].producer < 0 ? 0 : g->values[v].producer;
    }
    for (int i = 0; i < F; i++) {
        const dd_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->nin; k++) {
            int v = nd->in[k], t = T && keeps_input(nd->op) ? 2 * F - 1 - i : i;
            if (i > last[v]) last[v] = i;
            if (t > end[v]) end[v] = t;
        }
    }
    if (end[g->output] < F) end[g->output] = F;   /* copied out after the last node */
    if (last[g->output] < 0) last[g->output] = F;
    ddpm_status st = DDPM_OK;
    for (int v = 0; v < g->nvalues && st == DDPM_OK; v++) {
        dd_value *val = &g->values[v];
        size_t count;
        if (dd_mul_size(B, (size_t)val->size, &count) != 0) l->overflow = 1, count = 0;
        const size_t elem = dd_dt_size(val->dtype);
        int start = val->producer < 0 ? 0 : val->producer;
        st = add_buf(l, count, elem, start, end[v], (void **)&p->data[v]);
        if (st == DDPM_OK && T && val->needs_grad) {
            int gs = v == g->output ? F : 2 * F - 1 - last[v];
            int ge = v == g->input ? 2 * F : 2 * F - 1 - (val->producer < 0 ? 0 : val->producer);
            st = add_buf(l, count, elem, gs, ge, (void **)&p->grad[v]);
        }
    }
    dd_free(end);
    dd_free(last);
    return st;
}

/* Whatever the backends asked for, and the buffers of the whole step. */
static ddpm_status collect_nodes(dd_plan *p, const dd_node_needs *needs, buf_list *l) {
    dd_graph *g = &p->graph;
    const int F = g->nnodes, T = p->training, all = 2 * F;
    const size_t B = (size_t)p->max_batch;
    ddpm_status st = DDPM_OK;
    size_t scratch = 0;
    p->work_floats = 0;
    for (int i = 0; i < F && st == DDPM_OK; i++) {
        if (needs[i].saved_floats) {
            size_t count;
            if (dd_mul_size(B, needs[i].saved_floats, &count) != 0) l->overflow = 1, count = 0;
            st = add_buf(l, count, sizeof(float), i, T ? 2 * F - 1 - i : i, (void **)&p->saved[i]);
        }
        if (needs[i].work_floats > p->work_floats) p->work_floats = needs[i].work_floats;
        if (needs[i].scratch_bytes > scratch) scratch = needs[i].scratch_bytes;
    }
    if (st == DDPM_OK && T) st = add_buf(l, (size_t)p->num_params, sizeof(float), 0, all, (void **)&p->grads);
    if (st == DDPM_OK) st = add_buf(l, B, sizeof(int64_t), 0, all, (void **)&p->labels);
    if (st == DDPM_OK) st = add_buf(l, B, sizeof(float), 0, all, (void **)&p->tsteps);
    if (st == DDPM_OK && p->work_floats)
        st = add_buf(l, p->work_floats * (size_t)p->work_threads, sizeof(float), 0, all, (void **)&p->work);
    if (st == DDPM_OK && scratch) st = add_buf(l, scratch, 1, 0, all, &p->scratch);
    return st;
}

/* The node's backend: the first down the chain from the plan's that supports it. */
static const dd_backend *backend_for(const dd_plan *p, const dd_node *nd, const dd_plan_info *pi) {
    for (const dd_backend *b = p->backend; b; b = b->fallback)
        if (b->supports(&p->graph, nd, pi)) return b;
    return NULL;
}

static ddpm_status prepare_nodes(dd_plan *p, dd_node_needs *needs) {
    dd_graph *g = &p->graph;
    const dd_plan_info pi = {p->max_batch, p->training, p->work_threads};
    for (int i = 0; i < g->nnodes; i++) {
        const dd_node *nd = &g->nodes[i];
        const dd_backend *b = backend_for(p, nd, &pi);
        if (!b)
            return dd_error(DDPM_ERR_INTERNAL, "%s: no backend from %s down runs %s", nd->name, p->backend->name,
                            dd_op_name(nd->op));
        p->node_backend[i] = b;
        memset(&needs[i], 0, sizeof needs[i]);
        ddpm_status st = b->prepare(g, nd, &pi, &p->node_state[i], &needs[i]);
        if (st != DDPM_OK) return dd_error_prefix(st, nd->name);
    }
    return DDPM_OK;
}

/* Places the list and checks the limit; *total gets the arena size. */
static ddpm_status place_checked(dd_plan *p, buf_list *l, size_t limit, size_t *total) {
    ddpm_status st = place(l, total);
    if (st != DDPM_OK) return st;
    if (l->overflow || *total > limit) return too_big(p, *total, l->overflow, limit);
    return DDPM_OK;
}

ddpm_status dd_plan_create(dd_graph *g, const dd_plan_request *rq, dd_plan **out) {
    *out = NULL;
    dd_plan *p = dd_calloc(1, sizeof *p);
    if (!p) {
        dd_graph_free(g);
        return DDPM_ERR_NOMEM;
    }
    p->graph = *g;
    memset(g, 0, sizeof *g);
    g = &p->graph;
    p->max_batch = rq->max_batch;
    p->training = rq->training ? 1 : 0;
    p->engine = rq->engine;
    p->num_params = rq->num_params;
    int procs = omp_get_num_procs(), maxt = omp_get_max_threads();
    p->work_threads = maxt > procs ? maxt : procs;
    if (p->work_threads < 1) p->work_threads = 1;
    const size_t limit = rq->memory_limit ? rq->memory_limit : physical_limit();
    buf_list l = {0};
    dd_node_needs *needs = NULL;
    ddpm_status st = DDPM_OK;
    p->backend = dd_backend_of_engine(rq->engine);
    if (!p->backend) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "model plan: unknown engine %d", (int)rq->engine);
        goto fail;
    }
    if (p->backend->available && (st = p->backend->available()) != DDPM_OK) goto fail;
    if ((st = g->status) != DDPM_OK) goto fail;
    const size_t F = (size_t)(g->nnodes ? g->nnodes : 1), V = (size_t)(g->nvalues ? g->nvalues : 1);
    p->node_backend = dd_calloc(F, sizeof *p->node_backend);
    p->node_state = dd_calloc(F, sizeof *p->node_state);
    p->saved = dd_calloc(F, sizeof *p->saved);
    p->data = dd_calloc(V, sizeof *p->data);
    p->grad = dd_calloc(V, sizeof *p->grad);
    needs = dd_calloc(F, sizeof *needs);
    if (!p->node_backend || !p->node_state || !p->saved || !p->data || !p->grad || !needs) {
        st = DDPM_ERR_NOMEM;
        goto fail;
    }
    /* the activations alone must fit before any backend object is made */
    size_t total = 0;
    if ((st = collect_values(p, &l)) != DDPM_OK || (st = place_checked(p, &l, limit, &total)) != DDPM_OK) goto fail;
    if ((st = prepare_nodes(p, needs)) != DDPM_OK) goto fail;
    if ((st = collect_nodes(p, needs, &l)) != DDPM_OK || (st = place_checked(p, &l, limit, &total)) != DDPM_OK)
        goto fail;
    if ((st = dd_arena_init(&p->arena, total)) != DDPM_OK) goto fail;
    uint8_t *base = dd_arena_alloc(&p->arena, total ? total : 1);
    if (!base) {
        st = DDPM_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < l.n; i++) *l.b[i].at = base + l.b[i].offset;
    p->bytes = total;
    if (p->grads) memset(p->grads, 0, sizeof(float) * (size_t)p->num_params);
    dd_free(needs);
    dd_free(l.b);
    *out = p;
    return DDPM_OK;
fail:
    dd_free(needs);
    dd_free(l.b);
    dd_plan_free(p);
    return st;
}

void dd_plan_free(dd_plan *p) {
    if (!p) return;
    for (int i = 0; p->node_state && i < p->graph.nnodes; i++)
        if (p->node_state[i] && p->node_backend[i]) p->node_backend[i]->release(p->node_state[i]);
    dd_free(p->node_backend);
    dd_free(p->node_state);
    dd_free(p->saved);
    dd_free(p->data);
    dd_free(p->grad);
    dd_graph_free(&p->graph);
    dd_arena_free(&p->arena);
    dd_free(p);
}

ddpm_status dd_plan_set_weights(dd_plan *p, const float *params) {
    if (!p) return DDPM_OK;
    for (int i = 0; i < p->graph.nnodes; i++) {
        const dd_node *nd = &p->graph.nodes[i];
        const dd_backend *b = p->node_backend[i];
        if (!b->set_weights || !p->node_state[i] || nd->w < 0) continue;
        ddpm_status st = b->set_weights(p->node_state[i], nd, params + p->graph.params[nd->w].offset);
        if (st != DDPM_OK) return dd_error_prefix(st, nd->name);
    }
    return DDPM_OK;
}

const dd_backend *dd_backend_of_engine(ddpm_engine engine) {
    switch (engine) {
    case DDPM_ENGINE_REFERENCE:
        return &dd_backend_reference;
    case DDPM_ENGINE_FAST:
        return &dd_backend_cpu;
    case DDPM_ENGINE_BF16:
        return &dd_backend_cpu_bf16;
    }
    return NULL;
}
