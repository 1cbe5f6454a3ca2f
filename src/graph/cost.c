/* cost.c — the nominal work of a node, which the profile divides by its time: 2 x multiply-adds of the matrix
   products and the bytes a call must read and write at least once (graph.h). */
#include "graph/graph.h"

void dd_graph_node_cost(const dd_graph *g, const dd_node *nd, int N, int backward, int want_dx, double *flops,
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
