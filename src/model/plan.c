/* plan.c — memory planning: every buffer of a prepared model (activations, GroupNorm statistics, gradients,
   parameter gradients, convolution scratch, attention work) gets a lifetime on the forward/backward timeline
   and an offset in ONE arena, chosen greedily so that buffers whose lifetimes do not overlap share memory
   (largest first, lowest free offset). Nothing is allocated inside forward or backward afterwards. */
#include "model/plan.h"

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
    float **f;                 /* where the resolved pointer goes (one of the two) */
    int64_t **i64;
} plan_buf;

typedef struct {
    plan_buf *b;
    int n, cap;
    int overflow;              /* a size overflowed size_t */
} buf_list;

static ddpm_status add_buf(buf_list *l, size_t count, size_t elem, int start, int end, float **f, int64_t **i64) {
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
    l->b[l->n++] = (plan_buf){bytes, start, end, 0, f, i64};
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

/* Every buffer of the graph with its lifetime. */
static ddpm_status collect(dd_plan *p, const ddpm_model *m, buf_list *l, int **last_consumer) {
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
    *last_consumer = last;
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
    ddpm_status st = DDPM_OK;
    for (int v = 0; v < g->nvalues && st == DDPM_OK; v++) {
        dd_value *val = &g->values[v];
        if (last[v] < 0 && v != g->output) {
            st = dd_error(DDPM_ERR_INTERNAL, "layer graph: value %d is never read", v);
            break;
        }
        size_t count;
        if (dd_mul_size(B, (size_t)val->size, &count) != 0) l->overflow = 1, count = 0;
        int start = val->producer < 0 ? 0 : val->producer;
        st = add_buf(l, count, sizeof(float), start, end[v], &val->data, NULL);
        if (st == DDPM_OK && T && val->needs_grad) {
            int gs = v == g->output ? F : 2 * F - 1 - last[v];
            int ge = v == g->input ? 2 * F : 2 * F - 1 - (val->producer < 0 ? 0 : val->producer);
            st = add_buf(l, count, sizeof(float), gs, ge, &val->grad, NULL);
        }
    }
    dd_free(end);
    for (int i = 0; i < F && st == DDPM_OK; i++) {
        dd_node *nd = &g->nodes[i];
        if (nd->op != DD_OP_GROUPNORM) continue;
        int e = T ? 2 * F - 1 - i : i;
        st = add_buf(l, B * (size_t)nd->G, sizeof(float), i, e, &nd->mean, NULL);
        if (st == DDPM_OK) st = add_buf(l, B * (size_t)nd->G, sizeof(float), i, e, &nd->rstd, NULL);
    }
    /* buffers live through the whole step */
    const int all = 2 * F;
    if (st == DDPM_OK && T) st = add_buf(l, (size_t)m->tab.num_params, sizeof(float), 0, all, &p->grads, NULL);
    if (st == DDPM_OK) st = add_buf(l, B, sizeof(int64_t), 0, all, NULL, &p->labels);
    if (st == DDPM_OK) st = add_buf(l, B, sizeof(float), 0, all, &p->tsteps, NULL);
    if (st == DDPM_OK && p->engine != DDPM_ENGINE_REFERENCE) {
        size_t work = 0;   /* per thread: the largest slice of an attention, or of a GroupNorm's backward */
        for (int i = 0; i < F; i++) {
            const dd_node *nd = &g->nodes[i];
            size_t w = nd->op == DD_OP_ATTENTION              ? dd_attention_work_floats(nd->L, nd->C, nd->heads)
                       : nd->op == DD_OP_GROUPNORM && T ? dd_groupnorm_work_floats()
                                                              : 0;
            if (w > work) work = w;
        }
        if (work) st = add_buf(l, work * (size_t)p->work_threads, sizeof(float), 0, all, &p->node_work, NULL);
    }
    return st;
}

/* Backward accumulation flags: in reverse node order the first gradient written into a value overwrites
   (acc = 0), later ones add (acc = 1). */
static void set_acc(dd_graph *g, unsigned char *written) {
    memset(written, 0, (size_t)g->nvalues);
    for (int i = g->nnodes - 1; i >= 0; i--) {
        dd_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->nin; k++) {
            int v = nd->in[k];
            nd->acc[k] = written[v];
            if (g->values[v].needs_grad) written[v] = 1;
        }
    }
}

static void free_convs(dd_plan *p) {
    for (int i = 0; i < p->graph.nnodes; i++) {
        dd_conv_free(p->graph.nodes[i].conv);
        p->graph.nodes[i].conv = NULL;
    }
}

ddpm_status dd_plan_create(const ddpm_model *m, const ddpm_plan_config *pc, dd_plan **out) {
    *out = NULL;
    dd_plan *p = dd_calloc(1, sizeof *p);
    if (!p) return DDPM_ERR_NOMEM;
    p->max_batch = pc->max_batch;
    p->training = pc->training ? 1 : 0;
    p->engine = pc->engine;
    int procs = omp_get_num_procs(), maxt = omp_get_max_threads();
    p->work_threads = maxt > procs ? maxt : procs;
    if (p->work_threads < 1) p->work_threads = 1;
    size_t limit = pc->memory_limit ? pc->memory_limit : physical_limit();

    buf_list l = {0};
    int *last = NULL;
    unsigned char *written = NULL;
    ddpm_status st = m->cfg.kind == DD_MODEL_BASIC ? dd_basic_unet_build(&p->graph, &m->cfg, &m->tab)
                                                   : dd_unet2d_build(&p->graph, &m->cfg, &m->tab, p->training);
    if (st != DDPM_OK) goto fail;
    if ((st = collect(p, m, &l, &last)) != DDPM_OK) goto fail;
    size_t total = 0;
    if ((st = place(&l, &total)) != DDPM_OK) goto fail;
    if (l.overflow || total > limit) {
        st = too_big(p, total, l.overflow, limit);
        goto fail;
    }
    /* fast and bf16 engines: oneDNN convolutions for max_batch, sharing one scratch region */
    size_t scratch = 0;
    if (p->engine != DDPM_ENGINE_REFERENCE) {
        for (int i = 0; i < p->graph.nnodes; i++) {
            dd_node *nd = &p->graph.nodes[i];
            if (!dd_node_on_conv(nd)) continue;
            nd->geom.N = p->max_batch;
            /* bf16: every convolution for inference; for training the 1x1 ones (and the linear layers on them)
               stay fp32, since oneDNN's bf16 backward-weights of a 1x1 convolution is several times slower
               than its fp32 one (docs/perf.md) */
            const int bf16 = p->engine == DDPM_ENGINE_BF16 && (!p->training || nd->geom.KH * nd->geom.KW > 1);
            if ((st = dd_conv_create(&nd->conv, &nd->geom, p->training, bf16)) != DDPM_OK) {
                dd_error_prefix(st, nd->name);
                goto fail;
            }
            size_t s = dd_conv_scratch_size(nd->conv);
            if (s > scratch) scratch = s;
        }
    }
    size_t scratch_at = (total + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    size_t bytes = scratch_at + (scratch + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    if (bytes < total || bytes > limit) {
        st = too_big(p, bytes, bytes < total, limit);
        goto fail;
    }
    if ((st = dd_arena_init(&p->arena, bytes)) != DDPM_OK) goto fail;
    uint8_t *base = dd_arena_alloc(&p->arena, bytes ? bytes : 1);
    if (!base) {
        st = DDPM_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < l.n; i++) {
        if (l.b[i].f) *l.b[i].f = (float *)(void *)(base + l.b[i].offset);
        else *l.b[i].i64 = (int64_t *)(void *)(base + l.b[i].offset);
    }
    p->conv_scratch = scratch ? base + scratch_at : NULL;
    p->bytes = bytes;
    if (!(written = dd_alloc((size_t)p->graph.nvalues))) {
        st = DDPM_ERR_NOMEM;
        goto fail;
    }
    set_acc(&p->graph, written);
    if (p->grads) memset(p->grads, 0, sizeof(float) * (size_t)m->tab.num_params);
    if ((st = dd_plan_set_weights(p, m->params)) != DDPM_OK) goto fail;
    dd_free(written);
    dd_free(last);
    dd_free(l.b);
    *out = p;
    return DDPM_OK;
fail:
    dd_free(written);
    dd_free(last);
    dd_free(l.b);
    dd_plan_free(p);
    return st;
}

void dd_plan_free(dd_plan *p) {
    if (!p) return;
    free_convs(p);
    dd_graph_free(&p->graph);
    dd_arena_free(&p->arena);
    dd_free(p);
}

ddpm_status dd_plan_set_weights(dd_plan *p, const float *params) {
    if (!p || p->engine == DDPM_ENGINE_REFERENCE) return DDPM_OK;
    for (int i = 0; i < p->graph.nnodes; i++) {
        const dd_node *nd = &p->graph.nodes[i];
        if (!dd_node_on_conv(nd) || !nd->conv) continue;
        ddpm_status st = dd_conv_set_weights(nd->conv, params + nd->w);
        if (st != DDPM_OK) return dd_error_prefix(st, nd->name);
    }
    return DDPM_OK;
}
