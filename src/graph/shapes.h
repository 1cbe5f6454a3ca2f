/* shapes.h — geometry the graph IR and every backend share: a convolution's sizes and padding. */
#ifndef DD_GRAPH_SHAPES_H
#define DD_GRAPH_SHAPES_H

#include "ddpm.h"

/* Convolution geometry. Padding may be asymmetric: diffusers' Downsample2D with padding 0 pads
   right/bottom by one (pad_b = pad_r = 1, pad_t = pad_l = 0). OH = (H + pad_t + pad_b - KH) / stride + 1. */
typedef struct {
    int N, H, W, C;          /* input  [N, H, W, C] */
    int OC, KH, KW;          /* weight [OC, C, KH, KW], bias [OC] */
    int stride;
    int pad_t, pad_l, pad_b, pad_r;
    int OH, OW;              /* output [N, OH, OW, OC]; filled by dd_conv_geom_init */
} dd_conv_geom;
/* Fills OH, OW and validates (positive sizes, output >= 1); DDPM_ERR_INVALID_ARG with a message if not. */
ddpm_status dd_conv_geom_init(dd_conv_geom *g);

#endif
