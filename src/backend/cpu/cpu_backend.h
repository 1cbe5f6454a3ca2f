/* cpu_backend.h — the cpu backend's convolution node (a convolution, or a linear over rows > 1 as a 1x1 one, on a
   planned oneDNN primitive), which the cpu-bf16 backend runs in its bf16 mode. */
#ifndef DD_BACKEND_CPU_BACKEND_H
#define DD_BACKEND_CPU_BACKEND_H

#include "engine/backend.h"

/* Creates the node's dd_conv for pi->max_batch images (bf16 = 1: bf16 on AMX) into *state and sets the
   scratch it needs. */
ddpm_status dd_cpu_conv_prepare(const dd_node *nd, const dd_plan_info *pi, int bf16, void **state,
                                dd_node_needs *needs);
void dd_cpu_conv_release(void *state);
ddpm_status dd_cpu_conv_set_weights(void *state, const dd_node *nd, const float *w);
ddpm_status dd_cpu_conv_forward(const dd_node_call *c);
ddpm_status dd_cpu_conv_backward(const dd_node_call *c);

#endif
