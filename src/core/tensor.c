/* tensor.c — borrowed tensor views (data pointer + NCHW shape). */
#include "core.h"

dd_tensor dd_tensor_view(float *data, int ndim, const int64_t *shape) {
    dd_tensor t;
    t.data = data;
    t.ndim = ndim;
    for (int i = 0; i < 4; i++) t.shape[i] = (i < ndim) ? shape[i] : 1;
    return t;
}

int64_t dd_tensor_numel(const dd_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}
