/* cpu_ops.h — the cpu backend's kernels (float): oneDNN convolutions, BLAS GEMMs, fused OpenMP passes with
   run-time SIMD dispatch. Same layouts and conventions as the reference twins (backend/reference/ref_ops.h),
   and every one is tested against its twin. */
#ifndef DD_BACKEND_CPU_OPS_H
#define DD_BACKEND_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"
#include "graph/shapes.h"

/* A planned convolution: oneDNN forward, backward-data and backward-weights primitives for up to
   g->N images, NHWC activations, weights reordered into oneDNN's preferred layout inside. `training`
   = 0 creates only the forward primitive. bf16 = 1 computes in bf16 on AMX (fp32 accumulation): the caller's
   fp32 activations and gradients are rounded to bf16 in the scratch on the way in, outputs, weight and bias
   gradients stay fp32 (ddpm_bf16_supported says whether the CPU can). */
typedef struct dd_conv dd_conv;
ddpm_status dd_conv_create(dd_conv **out, const dd_conv_geom *g, int training, int bf16);
/* dst[i] = bf16(src[i]), round to nearest even (NaN stays NaN), in parallel for large n. */
void dd_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void dd_conv_free(dd_conv *c);
/* Scratch bytes the convolution needs (shared by all convolutions of a model; size it to the max). */
size_t dd_conv_scratch_size(const dd_conv *c);
/* Runs on n <= g->N images. `w` is the PyTorch-layout weight; set_weights must be called after each
   weight update (it reorders into the internal layout once, not per call). */
ddpm_status dd_conv_set_weights(dd_conv *c, const float *w);
ddpm_status dd_conv_forward(dd_conv *c, float *out, const float *inp, const float *b, int n, void *scratch);
ddpm_status dd_conv_backward(dd_conv *c, float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, int n, int acc, void *scratch);

/* GEMM-backed linear layers (BLAS sgemm), same contract as the reference. */
void dd_linear_forward(float *out, const float *inp, const float *w, const float *b, int M, int IN, int OUT);
void dd_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int M, int IN, int OUT, int acc);

/* Fused OpenMP passes, same contracts as the reference twins. */
void dd_groupnorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *gamma,
                          const float *beta, int N, int HW, int C, int G, double eps, int silu);
void dd_groupnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                           const float *mean, const float *rstd, const float *gamma, const float *beta, int N,
                           int HW, int C, int G, int silu, int acc, float *work, double *sums);
/* Floats of the backward's work slice per thread (the caller passes omp_get_max_threads() slices, or NULL to
   recompute xhat and dy in the output pass). */
size_t dd_groupnorm_work_floats(void);
/* Doubles of the backward's `sums`: each image's per-channel sums, added over the images in order afterwards. */
static inline size_t dd_groupnorm_sums_doubles(int N, int C) { return 2 * (size_t)N * (size_t)C; }
void dd_silu_forward(float *out, const float *inp, size_t n);
void dd_silu_backward(float *dinp, const float *dout, const float *inp, size_t n, int acc);
void dd_add_forward(float *out, const float *a, const float *b, double alpha, size_t n);
void dd_add_channel_bias_forward(float *out, const float *inp, const float *bias, int N, int HW, int C);
void dd_add_channel_bias_backward(float *dinp, float *dbias, const float *dout, int N, int HW, int C, int acc);
void dd_upsample2x_forward(float *out, const float *inp, int N, int H, int W, int C);
void dd_upsample2x_backward(float *dinp, const float *dout, int N, int H, int W, int C, int acc);
void dd_concat_forward(float *out, const float *a, const float *b, int N, int HW, int C1, int C2);
void dd_concat_backward(float *da, float *db, const float *dout, int N, int HW, int C1, int C2, int acc);
double dd_mse_forward(const float *pred, const float *target, size_t n);   /* sum in double, fixed order */
void dd_mse_backward(float *dpred, const float *pred, const float *target, size_t n, double dloss, int acc);

/* Attention per (image, head) while it sits in cache: S = q k^T scale, softmax, out = P v, computed
   in blocks of queries; backward recomputes P instead of storing it. `work` holds
   dd_attention_work_floats(L, C, heads) floats per thread (times the thread count). */
size_t dd_attention_work_floats(int L, int C, int heads);
void dd_attention_forward(float *out, const float *q, const float *k, const float *v, int N, int L, int C,
                          int heads, double scale, float *work);
void dd_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, int N, int L, int C, int heads, double scale, int acc, float *work);

/* Vectorised row helpers shared by the fused kernels (eltwise.c): a polynomial e^x (max rel. error 8e-8,
   the same bits on every CPU), dispatched at run time to AVX-512 / AVX2 code. y may be x. */
void dd_vexp(float *y, const float *x, size_t n);       /* y = e^x */
void dd_vsigmoid(float *y, const float *x, size_t n);   /* y = 1 / (1 + e^-x) */
void dd_vsilu(float *y, const float *x, size_t n);      /* y = x sigmoid(x) */
void dd_vsoftmax(float *x, size_t n);                    /* x = softmax(x) (max-subtracted), n >= 1 */

#endif
