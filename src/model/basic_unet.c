/* basic_unet.c — the layer graph of BasicUNet, the small network of the first DDPM lesson: three 5x5 convs
   down with SiLU and 2x2 max-pool after the first two, three 5x5 convs up with nearest x2 before the last two,
   additive skips popped LIFO, SiLU after every conv (the last one too), no time input. */
#include "core/core.h"
#include "model/model.h"

ddpm_status dd_basic_unet_build(dd_graph *g, const dd_model_config *c) {
    const int S = c->sample_size;
    ddpm_status st = dd_graph_init(g, S, S, c->in_channels);
    if (st != DDPM_OK) return st;
    /* down_layers: conv -> SiLU; the first two push a skip and max-pool */
    int h = dd_graph_conv(g, "down_layers.0", g->input, S, S, c->in_channels, 32, 5, 1, 2, 2, 2, 2); // [N, S, S, 32]
    h = dd_graph_silu(g, h);
    int skip0 = h;
    h = dd_graph_maxpool(g, h, S, S, 32);                                                 // [N, S/2, S/2, 32]
    h = dd_graph_conv(g, "down_layers.1", h, S / 2, S / 2, 32, 64, 5, 1, 2, 2, 2, 2);     // [N, S/2, S/2, 64]
    h = dd_graph_silu(g, h);
    int skip1 = h;
    h = dd_graph_maxpool(g, h, S / 2, S / 2, 64);                                         // [N, S/4, S/4, 64]
    h = dd_graph_conv(g, "down_layers.2", h, S / 4, S / 4, 64, 64, 5, 1, 2, 2, 2, 2);     // [N, S/4, S/4, 64]
    h = dd_graph_silu(g, h);
    /* up_layers: (nearest x2, + skip) -> conv -> SiLU */
    h = dd_graph_conv(g, "up_layers.0", h, S / 4, S / 4, 64, 64, 5, 1, 2, 2, 2, 2);       // [N, S/4, S/4, 64]
    h = dd_graph_silu(g, h);
    h = dd_graph_upsample(g, h, S / 4, S / 4, 64);                                        // [N, S/2, S/2, 64]
    h = dd_graph_add(g, h, skip1, 1.0);
    h = dd_graph_conv(g, "up_layers.1", h, S / 2, S / 2, 64, 32, 5, 1, 2, 2, 2, 2);       // [N, S/2, S/2, 32]
    h = dd_graph_silu(g, h);
    h = dd_graph_upsample(g, h, S / 2, S / 2, 32);                                        // [N, S, S, 32]
    h = dd_graph_add(g, h, skip0, 1.0);
    h = dd_graph_conv(g, "up_layers.2", h, S, S, 32, c->out_channels, 5, 1, 2, 2, 2, 2);  // [N, S, S, out]
    h = dd_graph_silu(g, h);
    g->output = h;
    if (g->status != DDPM_OK) {
        st = g->status;
        dd_graph_free(g);
    }
    return st;
}
