/* ref_ops.h — the reference backend's kernels: forward and backward of every layer the U-Nets use, as plain
   loops on flat arrays, generated for float and double from one source (ref_ops.inc): the definition of each
   op. The double versions are what the finite-difference gradient tests check; the float versions are the
   reference backend (backend/reference/reference.c), selectable at run time, and what every other backend is
   tested against (on random, never zero, inputs).

   LAYOUT. Inside the engine activations are channels-last, NHWC: [N, H, W, C], C fastest. Tokens of the
   attention layers are then simply [N, L = H*W, C], in row-major y*W + x order, like diffusers. Weights keep
   PyTorch's layouts so files map one to one: conv [OC, C, KH, KW], linear [OUT, IN], embedding [K, D].
   The model converts NCHW to NHWC at its input and back at its output.

   CONVENTIONS. Signature order: outputs, inputs, saved state, dimensions. Kernels never allocate (except a
   planned object's own create), never print, never touch globals. Backward functions take `acc`:
   acc = 0 overwrites the input gradient (dinp), acc = 1 adds to it; parameter gradients (dw, db, dgamma,
   dbeta, dtable) are always accumulated (+=), so a caller zeroes them once per step. Any gradient pointer
   may be NULL when that gradient is not needed. */
#ifndef DD_BACKEND_REF_OPS_H
#define DD_BACKEND_REF_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"
#include "graph/shapes.h"

#define DD_REF_DECLARE(T, S)                                                                                  \
    /* conv2d: out[N,OH,OW,OC] = sum inp * w (cross-correlation) + b (b may be NULL) */                       \
    void dd_ref_conv2d_forward_##S(T *out, const T *inp, const T *w, const T *b, const dd_conv_geom *g);      \
    void dd_ref_conv2d_backward_##S(T *dinp, T *dw, T *db, const T *dout, const T *inp, const T *w,           \
                                    const dd_conv_geom *g, int acc);                                          \
    /* linear: out[M,OUT] = inp[M,IN] w[OUT,IN]^T + b[OUT] (b may be NULL) */                                 \
    void dd_ref_linear_forward_##S(T *out, const T *inp, const T *w, const T *b, int M, int IN, int OUT);      \
    void dd_ref_linear_backward_##S(T *dinp, T *dw, T *db, const T *dout, const T *inp, const T *w, int M,     \
                                    int IN, int OUT, int acc);                                                \
    /* group norm over [N, HW, C] (NHWC), G contiguous channel groups, biased variance, eps inside sqrt;      \
       saves mean[N,G], rstd[N,G]. silu != 0 applies SiLU after the affine (fused GroupNorm + SiLU). */       \
    void dd_ref_groupnorm_forward_##S(T *out, T *mean, T *rstd, const T *inp, const T *gamma, const T *beta,  \
                                      int N, int HW, int C, int G, double eps, int silu);                    \
    void dd_ref_groupnorm_backward_##S(T *dinp, T *dgamma, T *dbeta, const T *dout, const T *inp,            \
                                       const T *mean, const T *rstd, const T *gamma, const T *beta, int N,    \
                                       int HW, int C, int G, int silu, int acc);                              \
    void dd_ref_silu_forward_##S(T *out, const T *inp, size_t n);                                             \
    void dd_ref_silu_backward_##S(T *dinp, const T *dout, const T *inp, size_t n, int acc);                  \
    /* GELU, exact erf form (torch.nn.GELU(approximate="none")) */                                             \
    void dd_ref_gelu_forward_##S(T *out, const T *inp, size_t n);                                             \
    void dd_ref_gelu_backward_##S(T *dinp, const T *dout, const T *inp, size_t n, int acc);                  \
    /* multi-head attention core on tokens: q, k, v, out [N, L, C], heads of d = C / heads channels           \
       (head j = channels [j d, (j+1) d)); out = softmax(q k^T * scale) v per (image, head). The softmax is  \
       computed in double in the f64 twin and in float (max-subtracted) in the f32 twin. */                   \
    void dd_ref_attention_forward_##S(T *out, const T *q, const T *k, const T *v, int N, int L, int C,        \
                                      int heads, double scale);                                               \
    void dd_ref_attention_backward_##S(T *dq, T *dk, T *dv, const T *dout, const T *q, const T *k,            \
                                       const T *v, int N, int L, int C, int heads, double scale, int acc);    \
    /* nearest x2 upsample [N,H,W,C] -> [N,2H,2W,C] */                                                         \
    void dd_ref_upsample2x_forward_##S(T *out, const T *inp, int N, int H, int W, int C);                     \
    void dd_ref_upsample2x_backward_##S(T *dinp, const T *dout, int N, int H, int W, int C, int acc);         \
    /* 2x2 max-pool, stride 2 [N,H,W,C] -> [N,H/2,W/2,C] (floor); ties go to the first in row-major order */  \
    void dd_ref_maxpool2x2_forward_##S(T *out, const T *inp, int N, int H, int W, int C);                     \
    void dd_ref_maxpool2x2_backward_##S(T *dinp, const T *dout, const T *inp, int N, int H, int W, int C,     \
                                        int acc);                                                             \
    /* channel concat [N,HW,C1] ++ [N,HW,C2] -> [N,HW,C1+C2] (first operand first, as torch.cat(dim=1)) */   \
    void dd_ref_concat_forward_##S(T *out, const T *a, const T *b, int N, int HW, int C1, int C2);            \
    void dd_ref_concat_backward_##S(T *da, T *db, const T *dout, int N, int HW, int C1, int C2, int acc);     \
    /* out = alpha * (a + b) (residual add, with diffusers' 1/output_scale_factor as alpha) */                 \
    void dd_ref_add_forward_##S(T *out, const T *a, const T *b, double alpha, size_t n);                     \
    /* out[N,HW,C] = inp + bias[N,C] broadcast over HW (the resnet's time-embedding projection) */            \
    void dd_ref_add_channel_bias_forward_##S(T *out, const T *inp, const T *bias, int N, int HW, int C);      \
    void dd_ref_add_channel_bias_backward_##S(T *dinp, T *dbias, const T *dout, int N, int HW, int C,        \
                                              int acc);                                                       \
    /* embedding rows: out[N,D] = table[labels[n]] ; backward scatter-adds into dtable */                     \
    void dd_ref_embedding_forward_##S(T *out, const T *table, const int64_t *labels, int N, int D);           \
    void dd_ref_embedding_backward_##S(T *dtable, const T *dout, const int64_t *labels, int N, int D);        \
    /* MSE loss = mean((pred - target)^2); backward dpred = 2 (pred - target) / n * dloss */                  \
    double dd_ref_mse_forward_##S(const T *pred, const T *target, size_t n);                                  \
    void dd_ref_mse_backward_##S(T *dpred, const T *pred, const T *target, size_t n, double dloss, int acc);

DD_REF_DECLARE(float, f32)
DD_REF_DECLARE(double, f64)

/* Sinusoidal timestep embedding (diffusers Timesteps / get_timestep_embedding), out [N, dim]:
   half = dim/2, f_i = exp(-ln(max_period) i / (half - freq_shift)), arg = t f_i, emb = [sin, cos]
   or [cos, sin] when flip_sin_to_cos; an odd dim gets a zero last column. The f32 version computes in
   float32 exactly as diffusers does (float arange, exp, sin, cos); the f64 version in double. */
void dd_timestep_embedding_f32(float *out, const float *t, int N, int dim, int flip_sin_to_cos,
                               double freq_shift, double max_period);
void dd_timestep_embedding_f64(double *out, const double *t, int N, int dim, int flip_sin_to_cos,
                               double freq_shift, double max_period);

/* Dropout with the counter-based RNG: element i of the tensor is kept iff uniform(seed, stream, i) >= p;
   kept elements are scaled by 1/(1-p). The mask is recomputed in backward, never stored. */
void dd_dropout_forward(float *out, const float *inp, size_t n, double p, uint64_t seed, uint64_t stream);
void dd_dropout_backward(float *dinp, const float *dout, size_t n, double p, uint64_t seed, uint64_t stream,
                         int acc);

/* d = alpha dout (acc = 0) or d += alpha dout (acc = 1), in parallel for large n: the gradient of a sum (the add
   node, and dropout in eval mode), which the cpu backend shares. */
void dd_scaled_grad_f32(float *d, const float *dout, double alpha, size_t n, int acc);

#endif
