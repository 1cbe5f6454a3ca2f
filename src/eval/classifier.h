/* classifier.h — internal pieces of the evaluation classifier (src/eval/classifier.c), open to the tests:
   ReLU in place, the softmax cross-entropy in double, the flat parameter buffer, and the loss with its gradient. */
#ifndef DD_EVAL_CLASSIFIER_H
#define DD_EVAL_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "ddpm.h"

/* x = max(x, 0) in place; d *= (y > 0), y the ReLU's output. */
void dd_classifier_relu_forward(float *x, size_t n);
void dd_classifier_relu_backward(float *d, const float *y, size_t n);
/* Mean cross-entropy of logits [n, K] against labels [n]; dlogits [n, K] (may be NULL) receives its gradient
   (p - onehot) / n, correct (may be NULL) the number of rows whose argmax is the label. */
double dd_classifier_xent_f64(const double *logits, const int32_t *labels, int n, int K, double *dlogits,
                              int *correct);
/* The parameters, one buffer in tensor order; *count its length. */
float *dd_classifier_params(ddpm_classifier *c, int64_t *count);
/* Mean cross-entropy of x [n, C, S, S] (model space) against labels [n]; grad [P] (may be NULL) receives the
   parameter gradient, grad_x [n, C, S, S] (may be NULL) the input gradient. */
ddpm_status dd_classifier_loss_grad(ddpm_classifier *c, const float *x, const int32_t *labels, int n,
                                    double *loss, float *grad, float *grad_x);

#endif
