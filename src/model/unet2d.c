/* unet2d.c — the layer graph of diffusers' UNet2DModel (v0.27.2): time embedding, down blocks, mid block,
   up blocks and output head, in NHWC, following unet_2d.py / unet_2d_blocks.py / resnet.py / attention_processor.py
   and ../fixtures/diffusers/ORACLE.md caveats 7-13. */
#include <math.h>
#include <stdio.h>

#include "core/core.h"
#include "model/model.h"

#define MAX_SKIPS (1 + DD_MODEL_MAX_BLOCKS * (DD_MODEL_MAX_LAYERS + 1))

typedef struct {
    dd_graph *g;
    const dd_model_config *c;
    int temb_silu;             /* SiLU(emb) [4 C0]: every resnet's time_emb_proj reads it */
    int temb_dim;
    int training;
} unet;

/* diffusers ResnetBlock2D (time_embedding_norm "default"):
   h = conv1(SiLU(norm1(x))) + time_emb_proj(SiLU(temb)); h = conv2(dropout(SiLU(norm2(h))));
   out = (shortcut(x) + h) / output_scale_factor, shortcut a 1x1 conv only when Cin != Cout. */
static int resnet(unet *u, const char *pre, int x, int H, int Cin, int Cout, double output_scale_factor) {
    const dd_model_config *c = u->c;
    dd_graph *g = u->g;
    char name[96];
    const int HW = H * H;
    snprintf(name, sizeof name, "%s.norm1", pre);
    int h = dd_graph_groupnorm(g, name, x, HW, Cin, c->norm_num_groups, c->norm_eps, 1);  // [N, H, W, Cin]
    snprintf(name, sizeof name, "%s.conv1", pre);
    h = dd_graph_conv(g, name, h, H, H, Cin, Cout, 3, 1, 1, 1, 1, 1);                     // [N, H, W, Cout]
    snprintf(name, sizeof name, "%s.time_emb_proj", pre);
    int t = dd_graph_linear(g, name, u->temb_silu, 1, u->temb_dim, Cout);                // [N, Cout]
    h = dd_graph_add_bias(g, h, t, HW, Cout);                                            // [N, H, W, Cout]
    snprintf(name, sizeof name, "%s.norm2", pre);
    h = dd_graph_groupnorm(g, name, h, HW, Cout, c->norm_num_groups, c->norm_eps, 1);
    if (u->training && c->dropout > 0.0) h = dd_graph_dropout(g, h, c->dropout);
    snprintf(name, sizeof name, "%s.conv2", pre);
    h = dd_graph_conv(g, name, h, H, H, Cout, Cout, 3, 1, 1, 1, 1, 1);                    // [N, H, W, Cout]
    int s = x;
    if (Cin != Cout) {
        snprintf(name, sizeof name, "%s.conv_shortcut", pre);
        s = dd_graph_conv(g, name, x, H, H, Cin, Cout, 1, 1, 0, 0, 0, 0);                 // [N, H, W, Cout]
    }
    return dd_graph_add(g, s, h, 1.0 / output_scale_factor);
}

/* diffusers Attention from a deprecated attention block, classic AttnProcessor: GroupNorm -> tokens
   [L = H W, C] (NHWC already is) -> to_q/to_k/to_v -> heads = C / attention_head_dim (null: one), scale
   1/sqrt(d), softmax over keys -> to_out.0 -> + residual -> / rescale_output_factor. */
static int attention(unet *u, const char *pre, int x, int H, int C, int groups, double rescale_output_factor) {
    dd_graph *g = u->g;
    char name[96];
    const int L = H * H;
    const int heads = dd_model_attn_heads(u->c, C);
    const double scale = 1.0 / sqrt((double)(C / heads));
    snprintf(name, sizeof name, "%s.group_norm", pre);
    int hn = dd_graph_groupnorm(g, name, x, L, C, groups, u->c->norm_eps, 0);           // [N, L, C]
    snprintf(name, sizeof name, "%s.to_q", pre);
    int q = dd_graph_linear(g, name, hn, L, C, C);                                       // [N, L, C]
    snprintf(name, sizeof name, "%s.to_k", pre);
    int k = dd_graph_linear(g, name, hn, L, C, C);                                       // [N, L, C]
    snprintf(name, sizeof name, "%s.to_v", pre);
    int v = dd_graph_linear(g, name, hn, L, C, C);                                       // [N, L, C]
    int a = dd_graph_attention(g, pre, q, k, v, L, C, heads, scale);                     // [N, L, C]
    snprintf(name, sizeof name, "%s.to_out.0", pre);
    int o = dd_graph_linear(g, name, a, L, C, C);                                        // [N, L, C]
    return dd_graph_add(g, o, x, 1.0 / rescale_output_factor);                          // [N, H, W, C]
}

typedef struct {
    int id, C, H;
} skip;

ddpm_status dd_unet2d_build(dd_graph *g, const dd_model_config *c, int training) {
    const int S = c->sample_size, n = c->num_blocks, L = c->layers_per_block;
    const int *ch = c->block_out_channels;
    const int G = c->norm_num_groups;
    const int attn_groups = c->attn_norm_num_groups > 0 ? c->attn_norm_num_groups : G;
    ddpm_status st = dd_graph_init(g, S, S, c->in_channels);
    if (st != DDPM_OK) return st;
    unet u = {g, c, -1, 4 * ch[0], training};
    char pre[96];
    skip skips[MAX_SKIPS];
    int nskips = 0;

    /* time_proj (Timesteps, float32) -> time_embedding (linear_1, SiLU, linear_2) [+ class_embedding] */
    int t = dd_graph_timestep(g, ch[0], c->flip_sin_to_cos, c->freq_shift);             // [N, C0]
    t = dd_graph_linear(g, "time_embedding.linear_1", t, 1, ch[0], u.temb_dim);          // [N, 4 C0]
    t = dd_graph_silu(g, t);
    int emb = dd_graph_linear(g, "time_embedding.linear_2", t, 1, u.temb_dim, u.temb_dim); // [N, 4 C0]
    if (c->num_class_embeds > 0) {
        int ce = dd_graph_embedding(g, "class_embedding", c->num_class_embeds, u.temb_dim); // [N, 4 C0]
        emb = dd_graph_add(g, emb, ce, 1.0);
    }
    u.temb_silu = dd_graph_silu(g, emb);   /* each ResnetBlock2D applies SiLU to temb first */

    int H = S, C = ch[0];
    int h = dd_graph_conv(g, "conv_in", g->input, S, S, c->in_channels, C, 3, 1, 1, 1, 1, 1); // [N, S, S, C0]
    skips[nskips++] = (skip){h, C, H};

    /* DownBlock2D / AttnDownBlock2D: resnets (+ attentions), each output a skip; Downsample2D */
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            snprintf(pre, sizeof pre, "down_blocks.%d.resnets.%d", i, j);
            h = resnet(&u, pre, h, H, C, ch[i], 1.0);                                    // [N, H, W, ch[i]]
            C = ch[i];
            if (c->down_attn[i]) {
                snprintf(pre, sizeof pre, "down_blocks.%d.attentions.%d", i, j);
                h = attention(&u, pre, h, H, C, G, 1.0);
            }
            skips[nskips++] = (skip){h, C, H};
        }
        if (i < n - 1) {
            /* conv 3x3 stride 2, padding 1; downsample_padding 0 pads right/bottom by one instead */
            int p = c->downsample_padding;
            snprintf(pre, sizeof pre, "down_blocks.%d.downsamplers.0.conv", i);
            h = dd_graph_conv(g, pre, h, H, H, C, C, 3, 2, p, p, 1, 1);                   // [N, H/2, W/2, C]
            H /= 2;
            skips[nskips++] = (skip){h, C, H};
        }
    }

    /* UNetMidBlock2D: resnet -> attention -> resnet, output_scale_factor = mid_block_scale_factor;
       mid_block_type = null: none */
    const double msf = c->mid_block_scale_factor;
    if (c->mid_block) {
        h = resnet(&u, "mid_block.resnets.0", h, H, C, C, msf);
        if (c->add_attention) h = attention(&u, "mid_block.attentions.0", h, H, C, attn_groups, msf);
        h = resnet(&u, "mid_block.resnets.1", h, H, C, C, msf);
    }

    /* UpBlock2D / AttnUpBlock2D: layers_per_block + 1 resnets on cat([h, skip]) with skips popped LIFO;
       Upsample2D (nearest x2, conv 3x3) */
    for (int i = 0; i < n; i++) {
        const int out_ch = ch[n - 1 - i];
        for (int j = 0; j <= L; j++) {
            if (nskips == 0) break;
            skip s = skips[--nskips];
            if (s.H != H && g->status == DDPM_OK)
                g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: skip of size %d meets features of size %d",
                                     s.H, H);
            h = dd_graph_concat(g, h, s.id, H * H, C, s.C);                              // [N, H, W, C + Cskip]
            snprintf(pre, sizeof pre, "up_blocks.%d.resnets.%d", i, j);
            h = resnet(&u, pre, h, H, C + s.C, out_ch, 1.0);                             // [N, H, W, out_ch]
            C = out_ch;
            if (c->up_attn[i]) {
                snprintf(pre, sizeof pre, "up_blocks.%d.attentions.%d", i, j);
                h = attention(&u, pre, h, H, C, G, 1.0);
            }
        }
        if (i < n - 1) {
            h = dd_graph_upsample(g, h, H, H, C);                                         // [N, 2H, 2W, C]
            H *= 2;
            snprintf(pre, sizeof pre, "up_blocks.%d.upsamplers.0.conv", i);
            h = dd_graph_conv(g, pre, h, H, H, C, C, 3, 1, 1, 1, 1, 1);                   // [N, H, W, C] (H doubled)
        }
    }
    if (nskips != 0 && g->status == DDPM_OK)
        g->status = dd_error(DDPM_ERR_INTERNAL, "layer graph: %d skips left after the up blocks", nskips);

    /* conv_norm_out + conv_act (fused GroupNorm + SiLU) -> conv_out */
    h = dd_graph_groupnorm(g, "conv_norm_out", h, S * S, C, G, c->norm_eps, 1);          // [N, S, S, C0]
    h = dd_graph_conv(g, "conv_out", h, S, S, C, c->out_channels, 3, 1, 1, 1, 1, 1);      // [N, S, S, out]
    g->output = h;
    if (g->status != DDPM_OK) {
        st = g->status;
        dd_graph_free(g);
    }
    return st;
}
