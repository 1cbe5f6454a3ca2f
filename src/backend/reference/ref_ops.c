/* ref_ops.c — instantiates the reference twins of ref_ops.inc for float (_f32) and double (_f64). */
#include <math.h>

#include "core/core.h"
#include "backend/reference/ref_ops.h"

#define DD_CAT_(a, b) a##b
#define DD_CAT(a, b) DD_CAT_(a, b)

/* float twin: float dot products, double reductions */
#define T float
#define DD_F(name) DD_CAT(name, f32)
#define DD_EXP expf
#define DD_ERF erff
#include "ref_ops.inc"
#undef T
#undef DD_F
#undef DD_EXP
#undef DD_ERF

/* double twin */
#define T double
#define DD_F(name) DD_CAT(name, f64)
#define DD_EXP exp
#define DD_ERF erf
#include "ref_ops.inc"
#undef T
#undef DD_F
#undef DD_EXP
#undef DD_ERF
