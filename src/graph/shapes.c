/* shapes.c — the convolution geometry shared by the graph IR and every backend. */
#include "graph/shapes.h"

#include "core/core.h"

/* OH = (H + pad_t + pad_b - KH) / stride + 1, likewise OW; every size positive, pads non-negative, and the
   padded input at least one kernel large. */
ddpm_status dd_conv_geom_init(dd_conv_geom *g) {
    if (!g) return dd_error(DDPM_ERR_INVALID_ARG, "conv geometry: NULL");
    if (g->N < 1 || g->H < 1 || g->W < 1 || g->C < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "conv geometry: input [N=%d, H=%d, W=%d, C=%d] must be positive",
                        g->N, g->H, g->W, g->C);
    if (g->OC < 1 || g->KH < 1 || g->KW < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "conv geometry: weight [OC=%d, C, KH=%d, KW=%d] must be positive",
                        g->OC, g->KH, g->KW);
    if (g->stride < 1) return dd_error(DDPM_ERR_INVALID_ARG, "conv geometry: stride %d must be >= 1", g->stride);
    if (g->pad_t < 0 || g->pad_l < 0 || g->pad_b < 0 || g->pad_r < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "conv geometry: padding (t=%d, l=%d, b=%d, r=%d) must be >= 0",
                        g->pad_t, g->pad_l, g->pad_b, g->pad_r);
    const long long ph = (long long)g->H + g->pad_t + g->pad_b, pw = (long long)g->W + g->pad_l + g->pad_r;
    if (ph < g->KH || pw < g->KW)
        return dd_error(DDPM_ERR_INVALID_ARG,
                        "conv geometry: kernel %dx%d is larger than the padded input %lldx%lld", g->KH, g->KW,
                        ph, pw);
    const long long oh = (ph - g->KH) / g->stride + 1, ow = (pw - g->KW) / g->stride + 1;
    /* element counts (computed in double, no overflow) must stay addressable */
    const double in_n = (double)g->N * g->H * g->W * g->C, out_n = (double)g->N * (double)oh * (double)ow * g->OC;
    if (oh > 0x7fffffffLL || ow > 0x7fffffffLL || in_n > 0x1p46 || out_n > 0x1p46)
        return dd_error(DDPM_ERR_INVALID_ARG, "conv geometry: tensors of %.0f and %.0f elements are too large",
                        in_n, out_n);
    g->OH = (int)oh;
    g->OW = (int)ow;
    return DDPM_OK;
}
