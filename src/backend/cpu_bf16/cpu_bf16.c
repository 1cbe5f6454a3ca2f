/* cpu_bf16.c — the cpu-bf16 backend: convolutions in bf16 on AMX through oneDNN (the cpu backend's convolution
   node in its bf16 mode, conv_dnnl.c): fp32 activations and output gradients are rounded to bf16 (nearest
   even) into the scratch, the products accumulate in fp32, and outputs, input gradients and weight gradients
   are fp32. Every other node runs on the cpu backend in fp32: GroupNorm with its statistics, softmax, the
   elementwise ops, the loss; the master weights, AdamW and EMA are fp32 outside the graph.

   In a training plan the 1x1 convolutions (conv_shortcut, and attention's projections) stay fp32 on cpu:
   oneDNN's bf16 backward-weights of a 1x1 convolution is several times slower than its fp32 one
   (docs/perf.md). A CPU without AMX cannot run this backend (available() says so). */
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "core/core.h"

static ddpm_status bf16_available(void) {
    if (ddpm_bf16_supported()) return DDPM_OK;
    char cpu[128];
    return dd_error(DDPM_ERR_UNSUPPORTED, "bf16 needs a CPU with AMX (bf16 tiles), and this one (%s) has none; use "
                    "fp32 (--precision fp32)", ddpm_cpu_name(cpu, sizeof cpu));
}

static int bf16_supports(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi) {
    (void)g;
    if (nd->op != DD_OP_CONV && !dd_node_is_1x1_linear(nd)) return 0;
    return !pi->training || nd->geom.KH * nd->geom.KW > 1;
}

static ddpm_status bf16_prepare(const dd_graph *g, const dd_node *nd, const dd_plan_info *pi, void **state,
                                dd_node_needs *needs) {
    (void)g;
    *state = NULL;
    memset(needs, 0, sizeof *needs);
    return dd_cpu_conv_prepare(nd, pi, 1, state, needs);
}

static ddpm_status bf16_forward(const dd_graph *g, const dd_node *nd, const dd_node_call *c) {
    (void)g, (void)nd;
    return dd_cpu_conv_forward(c);
}

static ddpm_status bf16_backward(const dd_graph *g, const dd_node *nd, const dd_node_call *c) {
    (void)g, (void)nd;
    return dd_cpu_conv_backward(c);
}

const dd_backend dd_backend_cpu_bf16 = {
    .name = "cpu-bf16",
    .fallback = &dd_backend_cpu,
    .available = bf16_available,
    .supports = bf16_supports,
    .prepare = bf16_prepare,
    .release = dd_cpu_conv_release,
    .set_weights = dd_cpu_conv_set_weights,
    .forward = bf16_forward,
    .backward = bf16_backward,
};
