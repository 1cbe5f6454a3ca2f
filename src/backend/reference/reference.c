/* reference.c — the reference backend: every node as one call of its float reference twin (ref_ops.inc), the
   definition the other backends are tested against. It supports every op, keeps nothing per node but the
   GroupNorm statistics (saved), and needs no workspace. */
#include <string.h>

#include "backend/reference/ref_ops.h"
#include "engine/backend.h"

void dd_scaled_grad_f32(float *d, const float *dout, double alpha, size_t n, int acc) {
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

static int ref_supports(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi) {
    (void)g, (void)nd, (void)pi;
    return 1;
}

static ddpm_status ref_prepare(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi, void **state,
                               dd_node_needs *needs) {
    (void)g, (void)pi;
    *state = NULL;
    memset(needs, 0, sizeof *needs);
    if (nd->op == DD_OP_GROUPNORM) needs->saved_floats = 2 * (size_t)nd->G;   /* mean [G], rstd [G] per image */
    return DDPM_OK;
}

static void ref_release(void *state) { (void)state; }

static size_t out_count(const dd_graph *g, const dd_node *nd, int N) {
    return (size_t)N * (size_t)g->values[nd->out].size;
}

static ddpm_status ref_forward(const dd_graph *g, const dd_node *nd, const dd_node_call *c) {
    const int N = c->N;
    float *out = c->y;
    const float *x = c->x[0], *y = c->x[1];
    const size_t n = out_count(g, nd, N);
    switch (nd->op) {
    case DD_OP_CONV: {
        dd_conv_geom geom = nd->geom;
        geom.N = N;
        dd_ref_conv2d_forward_f32(out, x, c->w, c->b, &geom);
        break;
    }
    case DD_OP_LINEAR:
        dd_ref_linear_forward_f32(out, x, c->w, c->b, N * nd->rows, nd->IN, nd->OUT);
        break;
    case DD_OP_GROUPNORM: {
        float *mean = c->saved, *rstd = c->saved + (size_t)N * nd->G;
        dd_ref_groupnorm_forward_f32(out, mean, rstd, x, c->w, c->b, N, nd->H, nd->C, nd->G, nd->eps, nd->silu);
        break;
    }
    case DD_OP_SILU:
        dd_ref_silu_forward_f32(out, x, n);
        break;
    case DD_OP_ADD:
        dd_ref_add_forward_f32(out, x, y, nd->alpha, n);
        break;
    case DD_OP_ADD_BIAS:
        dd_ref_add_channel_bias_forward_f32(out, x, y, N, nd->H, nd->C);
        break;
    case DD_OP_ATTENTION:
        dd_ref_attention_forward_f32(out, x, y, c->x[2], N, nd->L, nd->C, nd->heads, nd->scale);
        break;
    case DD_OP_UPSAMPLE:
        dd_ref_upsample2x_forward_f32(out, x, N, nd->H, nd->W, nd->C);
        break;
    case DD_OP_MAXPOOL:
        dd_ref_maxpool2x2_forward_f32(out, x, N, nd->H, nd->W, nd->C);
        break;
    case DD_OP_CONCAT:
        dd_ref_concat_forward_f32(out, x, y, N, nd->H, nd->C1, nd->C2);
        break;
    case DD_OP_TIMESTEP:   /* float32 as diffusers computes it, max_period 10000 */
        dd_timestep_embedding_f32(out, c->timesteps, N, nd->dim, nd->flip, nd->freq_shift, 10000.0);
        break;
    case DD_OP_EMBEDDING:
        dd_ref_embedding_forward_f32(out, c->w, c->labels, N, nd->dim);
        break;
    case DD_OP_DROPOUT:
        if (c->training) dd_dropout_forward(out, x, n, nd->p, c->seed, c->stream);
        else memcpy(out, x, sizeof(float) * n);
        break;
    }
    return DDPM_OK;
}

static ddpm_status ref_backward(const dd_graph *g, const dd_node *nd, const dd_node_call *c) {
    const int N = c->N;
    const float *dout = c->dy;
    const float *const *in = c->x;
    float *const *din = c->dx;
    const size_t n = out_count(g, nd, N);
    const int acc = c->acc;
    switch (nd->op) {
    case DD_OP_CONV: {
        dd_conv_geom geom = nd->geom;
        geom.N = N;
        dd_ref_conv2d_backward_f32(din[0], c->dw, c->db, dout, in[0], c->w, &geom, acc);
        break;
    }
    case DD_OP_LINEAR:
        dd_ref_linear_backward_f32(din[0], c->dw, c->db, dout, in[0], c->w, N * nd->rows, nd->IN, nd->OUT, acc);
        break;
    case DD_OP_GROUPNORM: {
        const float *mean = c->saved, *rstd = c->saved + (size_t)N * nd->G;
        dd_ref_groupnorm_backward_f32(din[0], c->dw, c->db, dout, in[0], mean, rstd, c->w, c->b, N, nd->H, nd->C,
                                      nd->G, nd->silu, acc);
        break;
    }
    case DD_OP_SILU:
        if (din[0]) dd_ref_silu_backward_f32(din[0], dout, in[0], n, acc);
        break;
    case DD_OP_ADD:
        for (int k = 0; k < 2; k++)
            if (din[k]) dd_scaled_grad_f32(din[k], dout, nd->alpha, n, acc);
        break;
    case DD_OP_ADD_BIAS:
        /* d bias [N, C] is accumulated by the kernel: clear it when this is its first gradient */
        if (din[1] && !acc) memset(din[1], 0, sizeof(float) * (size_t)N * (size_t)nd->C);
        dd_ref_add_channel_bias_backward_f32(din[0], din[1], dout, N, nd->H, nd->C, acc);
        break;
    case DD_OP_ATTENTION:
        dd_ref_attention_backward_f32(din[0], din[1], din[2], dout, in[0], in[1], in[2], N, nd->L, nd->C, nd->heads,
                                      nd->scale, acc);
        break;
    case DD_OP_UPSAMPLE:
        if (din[0]) dd_ref_upsample2x_backward_f32(din[0], dout, N, nd->H, nd->W, nd->C, acc);
        break;
    case DD_OP_MAXPOOL:
        if (din[0]) dd_ref_maxpool2x2_backward_f32(din[0], dout, in[0], N, nd->H, nd->W, nd->C, acc);
        break;
    case DD_OP_CONCAT:
        if (din[0] || din[1]) dd_ref_concat_backward_f32(din[0], din[1], dout, N, nd->H, nd->C1, nd->C2, acc);
        break;
    case DD_OP_TIMESTEP:   /* no gradient with respect to timesteps */
        break;
    case DD_OP_EMBEDDING:
        dd_ref_embedding_backward_f32(c->dw, dout, c->labels, N, nd->dim);
        break;
    case DD_OP_DROPOUT:
        if (!din[0]) break;
        if (c->training) dd_dropout_backward(din[0], dout, n, nd->p, c->seed, c->stream, acc);
        else dd_scaled_grad_f32(din[0], dout, 1.0, n, acc);
        break;
    }
    return DDPM_OK;
}

const dd_backend dd_backend_reference = {
    .name = "reference",
    .fallback = NULL,
    .available = NULL,
    .supports = ref_supports,
    .prepare = ref_prepare,
    .release = ref_release,
    .set_weights = NULL,
    .forward = ref_forward,
    .backward = ref_backward,
};
