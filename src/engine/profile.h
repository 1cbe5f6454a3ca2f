/* profile.h — the per-op profile (ddpm_model_profile_*): wall time, calls and nominal work per op kind and pass,
   and per step part outside the graph (DD_PROF_*). The nominal work of a node is dd_graph_node_cost's. */
#ifndef DD_ENGINE_PROFILE_H
#define DD_ENGINE_PROFILE_H

#include <stdint.h>

#include "graph/graph.h"

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
/* The row name of a kind: the op names of graph.h, then "layout", "weight-reorder", "batch", "loss", "adamw",
   "ema". */
const char *dd_profile_kind_name(int kind);

#endif
