/* cpu.c — the cpu backend (fp32): convolutions, and the linear layers over rows > 1 as 1x1 convolutions, on
   oneDNN primitives planned once per plan (conv_dnnl.c); the time-embedding linear layers on OpenBLAS;
   GroupNorm (+ SiLU), attention and the elementwise ops as fused OpenMP kernels. Max-pool, the timestep
   sinusoid, the class embedding and dropout have no faster kernel here and run on the reference backend. */
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/reference/ref_ops.h"
#include "core/core.h"

static int on_conv(const dd_node *nd) { return nd->op == DD_OP_CONV || dd_node_is_1x1_linear(nd); }

static int cpu_supports(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi) {
    (void)g, (void)pi;
    switch (nd->op) {
    case DD_OP_MAXPOOL:
    case DD_OP_TIMESTEP:
    case DD_OP_EMBEDDING:
    case DD_OP_DROPOUT:
        return 0;
    default:
        return 1;
    }
}

ddpm_status dd_cpu_conv_prepare(const dd_node *nd, const dd_plan_info *pi, int bf16, void **state,
                                dd_node_needs *needs) {
    dd_conv_geom geom = nd->geom;
    geom.N = pi->max_batch;
    dd_conv *conv = NULL;
    ddpm_status st = dd_conv_create(&conv, &geom, pi->training, bf16);
    if (st != DDPM_OK) return st;
    *state = conv;
    needs->scratch_bytes = dd_conv_scratch_size(conv);
    return DDPM_OK;
}

void dd_cpu_conv_release(void *state) { dd_conv_free(state); }

ddpm_status dd_cpu_conv_set_weights(void *state, const dd_node *nd, const float *w) {
    (void)nd;
    return state ? dd_conv_set_weights(state, w) : DDPM_OK;
}

ddpm_status dd_cpu_conv_forward(const dd_node_call *c) {
    return dd_conv_forward(c->state, c->y, c->x[0], c->b, c->N, c->scratch);
}

ddpm_status dd_cpu_conv_backward(const dd_node_call *c) {
    return dd_conv_backward(c->state, c->dx[0], c->dw, c->db, c->dy, c->x[0], c->N, c->acc, c->scratch);
}

static ddpm_status cpu_prepare(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi, void **state,
                               dd_node_needs *needs) {
    (void)g;
    *state = NULL;
    memset(needs, 0, sizeof *needs);
    if (on_conv(nd)) return dd_cpu_conv_prepare(nd, pi, 0, state, needs);
    if (nd->op == DD_OP_GROUPNORM) {
        needs->saved_floats = 2 * (size_t)nd->G;                        /* mean [G], rstd [G] per image */
        if (pi->training) {
            needs->work_floats = dd_groupnorm_work_floats();   /* the backward's kept xhat, dy */
            needs->saved_floats += 2 * dd_groupnorm_sums_doubles(1, nd->C);   /* its per-image sums (doubles) */
        }
    }
    if (nd->op == DD_OP_ATTENTION) needs->work_floats = dd_attention_work_floats(nd->L, nd->C, nd->heads);
    return DDPM_OK;
}

static void cpu_release(void *state) { dd_cpu_conv_release(state); }

static ddpm_status cpu_set_weights(void *state, const dd_node *nd, const float *w) {
    return dd_cpu_conv_set_weights(state, nd, w);
}

static ddpm_status cpu_forward(const dd_graph *g, const dd_node *nd, const dd_node_call *c) {
    const int N = c->N;
    float *out = c->y;
    const float *x = c->x[0], *y = c->x[1];
    const size_t n = (size_t)N * (size_t)g->values[nd->out].size;
    if (on_conv(nd)) return dd_cpu_conv_forward(c);
    switch (nd->op) {
    case DD_OP_LINEAR:
        dd_linear_forward(out, x, c->w, c->b, N * nd->rows, nd->IN, nd->OUT);
        break;
    case DD_OP_GROUPNORM:
        dd_groupnorm_forward(out, c->saved, c->saved + (size_t)N * nd->G, x, c->w, c->b, N, nd->H, nd->C, nd->G,
                             nd->eps, nd->silu);
        break;
    case DD_OP_SILU:
        dd_silu_forward(out, x, n);
        break;
    case DD_OP_ADD:
        dd_add_forward(out, x, y, nd->alpha, n);
        break;
    case DD_OP_ADD_BIAS:
        dd_add_channel_bias_forward(out, x, y, N, nd->H, nd->C);
        break;
    case DD_OP_ATTENTION:
        dd_attention_forward(out, x, y, c->x[2], N, nd->L, nd->C, nd->heads, nd->scale, c->work);
        break;
    case DD_OP_UPSAMPLE:
        dd_upsample2x_forward(out, x, N, nd->H, nd->W, nd->C);
        break;
    case DD_OP_CONCAT:
        dd_concat_forward(out, x, y, N, nd->H, nd->C1, nd->C2);
        break;
    default:
        return dd_error(DDPM_ERR_INTERNAL, "cpu backend: no kernel for %s", dd_op_name(nd->op));
    }
    return DDPM_OK;
}

static ddpm_status cpu_backward(const dd_graph *g, const dd_node *nd, const dd_node_call *c) {
    const int N = c->N;
    const float *dout = c->dy;
    const float *const *in = c->x;
    float *const *din = c->dx;
    const size_t n = (size_t)N * (size_t)g->values[nd->out].size;
    const int acc = c->acc;
    if (on_conv(nd)) return dd_cpu_conv_backward(c);
    switch (nd->op) {
    case DD_OP_LINEAR:
        dd_linear_backward(din[0], c->dw, c->db, dout, in[0], c->w, N * nd->rows, nd->IN, nd->OUT, acc);
        break;
    case DD_OP_GROUPNORM:
        dd_groupnorm_backward(din[0], c->dw, c->db, dout, in[0], c->saved, c->saved + (size_t)N * nd->G, c->w, c->b,
                              N, nd->H, nd->C, nd->G, nd->silu, acc, c->work,
                              (double *)(void *)(c->saved + 2 * (size_t)N * nd->G));
        break;
    case DD_OP_SILU:
        if (din[0]) dd_silu_backward(din[0], dout, in[0], n, acc);
        break;
    case DD_OP_ADD:
        for (int k = 0; k < 2; k++)
            if (din[k]) dd_scaled_grad_f32(din[k], dout, nd->alpha, n, acc);
        break;
    case DD_OP_ADD_BIAS:
        /* d bias [N, C] is accumulated by the kernel: clear it when this is its first gradient */
        if (din[1] && !acc) memset(din[1], 0, sizeof(float) * (size_t)N * (size_t)nd->C);
        dd_add_channel_bias_backward(din[0], din[1], dout, N, nd->H, nd->C, acc);
        break;
    case DD_OP_ATTENTION:
        dd_attention_backward(din[0], din[1], din[2], dout, in[0], in[1], in[2], N, nd->L, nd->C, nd->heads,
                              nd->scale, acc, c->work);
        break;
    case DD_OP_UPSAMPLE:
        if (din[0]) dd_upsample2x_backward(din[0], dout, N, nd->H, nd->W, nd->C, acc);
        break;
    case DD_OP_CONCAT:
        if (din[0] || din[1]) dd_concat_backward(din[0], din[1], dout, N, nd->H, nd->C1, nd->C2, acc);
        break;
    default:
        return dd_error(DDPM_ERR_INTERNAL, "cpu backend: no kernel for %s", dd_op_name(nd->op));
    }
    return DDPM_OK;
}

const dd_backend dd_backend_cpu = {
    .name = "cpu",
    .fallback = &dd_backend_reference,
    .available = NULL,
    .supports = cpu_supports,
    .prepare = cpu_prepare,
    .release = cpu_release,
    .set_weights = cpu_set_weights,
    .forward = cpu_forward,
    .backward = cpu_backward,
};
