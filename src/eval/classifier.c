/* classifier.c — the evaluation classifier (ddpm eval): conv 3x3 (C -> 32) ReLU, max-pool 2, conv 3x3 (32 -> 64)
   ReLU, max-pool 2, linear (64 (S/4)^2 -> 128) ReLU = the features, linear (128 -> K) = the logits; softmax
   cross-entropy, AdamW with warm-up and cosine decay. Activations are NHWC inside (oneDNN convolutions, BLAS
   GEMMs); weights keep PyTorch's layouts, and fc1's input is PyTorch's NCHW flatten order (c (S/4)^2 + y S/4 + x).

   DETERMINISM. Inference runs the convolutions on full chunks of DD_CLS_CHUNK images (the last one padded with
   zeros) and the fully connected layers with a fixed summation order per row (fc_exact, not BLAS, whose sgemm
   rounds a row differently by its position in the matrix and by the thread count): an image's result depends on
   the image only, never on N, on its place in a chunk or on the threads. Training uses BLAS and draws its data
   order from the Philox generator (seed, epoch). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "eval/classifier.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/reference/ref_ops.h"

#define DD_CLS_CHUNK 256            /* images per inference call of the network */
#define DD_CLS_C1 32                /* conv1 output channels */
#define DD_CLS_C2 64                /* conv2 output channels */
#define DD_CLS_F DDPM_CLASSIFIER_FEATURES
#define DD_CLS_MAX_SIZE 256         /* largest image side (fc1 then holds 134 M floats) */
#define DD_CLS_MAX_CLASSES 1000
#define DD_CLS_WARMUP 100           /* warm-up steps (at most a tenth of the run) */
#define DD_CLS_PERM_ITEM 0x434c5300u /* item of the data-order stream ("CLS") */
#define DD_CLS_PERM_BLOCK 256
#define DD_CLS_META "ddpm_classifier"
#define DD_CLS_ARCH "conv32-conv64-fc128"
#define DD_CLS_NT 8                 /* tensors */

static const char *const tensor_names[DD_CLS_NT] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                                    "fc1.weight",   "fc1.bias",   "fc2.weight",   "fc2.bias"};

/* Buffers of one network instance for batches of up to B images. */
typedef struct {
    int B, training;
    dd_conv *conv1, *conv2;
    void *scratch;
    float *x;                       /* [B, S, S, C] input, NHWC */
    float *a1, *p1;                 /* [B, S, S, 32] after ReLU, [B, S/2, S/2, 32] */
    float *a2, *p2;                 /* [B, S/2, S/2, 64] after ReLU, [B, S/4, S/4, 64] */
    float *flat;                    /* [B, F1] NCHW order */
    float *h;                       /* [B, 128] features (after ReLU) */
    float *logits;                  /* [B, K] */
    double *row;                    /* [K] */
    /* training */
    float *dlogits, *dh, *dflat, *dp2, *da2, *dp1, *da1, *dx;
    /* inference staging */
    float *xin;                     /* [B, C, S, S] */
} cls_ws;

struct ddpm_classifier {
    int C, S, K;
    int64_t F1;                     /* 64 (S/4)^2 */
    int64_t off[DD_CLS_NT + 1], shape[DD_CLS_NT][4];
    int ndim[DD_CLS_NT];
    int64_t P;
    float *params;                  /* [P], the tensors in tensor_names order */
    char dataset[32];
    double test_accuracy;
    int trained;                    /* training settings below are known */
    int epochs, batch;
    int64_t steps;
    double lr;
    uint64_t seed;
    cls_ws *inf;                    /* inference buffers (made on first use) */
};

/* ------------------------------------------------------------------ pieces (exported for the tests) */


/* x = max(x, 0) in place. */
void dd_classifier_relu_forward(float *x, size_t n) {
    const long long m = (long long)n;
#pragma omp parallel for schedule(static) if (m > 65536)
    for (long long i = 0; i < m; i++)
        if (!(x[i] > 0.0f)) x[i] = 0.0f;
}

/* d *= (y > 0) in place, y the ReLU's output (y > 0 exactly where its input was). */
void dd_classifier_relu_backward(float *d, const float *y, size_t n) {
    const long long m = (long long)n;
#pragma omp parallel for schedule(static) if (m > 65536)
    for (long long i = 0; i < m; i++)
        if (!(y[i] > 0.0f)) d[i] = 0.0f;
}

/* One row of softmax cross-entropy in double: l [K] is replaced by the probabilities; returns -log p[y]. */
static double xent_row(double *l, int y, int K) {
    double m = l[0];
    for (int j = 1; j < K; j++)
        if (l[j] > m) m = l[j];
    double s = 0;
    for (int j = 0; j < K; j++) s += exp(l[j] - m);
    const double lse = m + log(s);
    const double nll = lse - l[y];
    for (int j = 0; j < K; j++) l[j] = exp(l[j] - lse);
    return nll;
}

/* argmax, ties to the first. */
static int argmax_f64(const double *p, int K) {
    int b = 0;
    for (int j = 1; j < K; j++)
        if (p[j] > p[b]) b = j;
    return b;
}

/* Mean cross-entropy of logits [n, K] against labels [n]; dlogits [n, K] (may be NULL) receives its gradient
   (p - onehot) / n, correct (may be NULL) the number of rows whose argmax is the label. */
double dd_classifier_xent_f64(const double *logits, const int32_t *labels, int n, int K, double *dlogits,
                              int *correct) {
    double sum = 0, row[DD_CLS_MAX_CLASSES];
    int right = 0;
    if (K < 1 || K > DD_CLS_MAX_CLASSES) return NAN;
    for (int i = 0; i < n; i++) {
        memcpy(row, logits + (size_t)i * K, sizeof(double) * (size_t)K);
        sum += xent_row(row, labels[i], K);
        right += argmax_f64(row, K) == labels[i];
        if (dlogits)
            for (int j = 0; j < K; j++) dlogits[(size_t)i * K + j] = (row[j] - (j == labels[i])) / n;
    }
    if (correct) *correct = right;
    return n > 0 ? sum / n : 0.0;
}

/* The same on the float logits of a workspace (the same row function). */
static double xent_f32(cls_ws *w, const int32_t *labels, int n, int K, float *dlogits, int *correct) {
    double sum = 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        const float *l = w->logits + (size_t)i * K;
        for (int j = 0; j < K; j++) w->row[j] = l[j];
        sum += xent_row(w->row, labels[i], K);
        right += argmax_f64(w->row, K) == labels[i];
        if (dlogits)
            for (int j = 0; j < K; j++)
                dlogits[(size_t)i * K + j] = (float)((w->row[j] - (j == labels[i])) / n);
    }
    if (correct) *correct = right;
    return n > 0 ? sum / n : 0.0;
}

/* ------------------------------------------------------------------ workspaces */

static void ws_free(cls_ws *w) {
    if (!w) return;
    dd_conv_free(w->conv1);
    dd_conv_free(w->conv2);
    float *f[] = {w->x, w->a1, w->p1, w->a2, w->p2, w->flat, w->h, w->logits, w->dlogits, w->dh,
                  w->dflat, w->dp2, w->da2, w->dp1, w->da1, w->dx, w->xin};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) dd_free(f[i]);
    dd_free(w->row);
    dd_free(w->scratch);
    dd_free(w);
}

static float *ws_floats(int B, int64_t per_image) {
    size_t n;
    if (dd_mul_size((size_t)B, (size_t)per_image, &n) != 0) {
        dd_error(DDPM_ERR_NOMEM, "classifier: buffers of %d images overflow", B);
        return NULL;
    }
    return dd_calloc(n, sizeof(float));
}

static ddpm_status ws_create(const ddpm_classifier *c, int B, int training, cls_ws **out) {
    *out = NULL;
    cls_ws *w = dd_calloc(1, sizeof *w);
    if (!w) return DDPM_ERR_NOMEM;
    w->B = B;
    w->training = training;
    const int S = c->S, S2 = S / 2, S4 = S / 4, C = c->C, K = c->K;
    dd_conv_geom g1 = {.N = B, .H = S, .W = S, .C = C, .OC = DD_CLS_C1, .KH = 3, .KW = 3, .stride = 1,
                       .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
    dd_conv_geom g2 = {.N = B, .H = S2, .W = S2, .C = DD_CLS_C1, .OC = DD_CLS_C2, .KH = 3, .KW = 3, .stride = 1,
                       .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
    ddpm_status st = dd_conv_create(&w->conv1, &g1, training, 0);
    if (st == DDPM_OK) st = dd_conv_create(&w->conv2, &g2, training, 0);
    if (st != DDPM_OK) {
        ws_free(w);
        return dd_error_prefix(st, "classifier");
    }
    size_t s1 = dd_conv_scratch_size(w->conv1), s2 = dd_conv_scratch_size(w->conv2);
    const int64_t A1 = (int64_t)S * S * DD_CLS_C1, P1 = (int64_t)S2 * S2 * DD_CLS_C1;
    const int64_t A2 = (int64_t)S2 * S2 * DD_CLS_C2, P2 = (int64_t)S4 * S4 * DD_CLS_C2;
    const int64_t X = (int64_t)S * S * C;
    int ok = (w->scratch = dd_alloc(s1 > s2 ? s1 : s2)) != NULL;
    ok = ok && (w->x = ws_floats(B, X)) && (w->a1 = ws_floats(B, A1)) && (w->p1 = ws_floats(B, P1)) &&
         (w->a2 = ws_floats(B, A2)) && (w->p2 = ws_floats(B, P2)) && (w->flat = ws_floats(B, c->F1)) &&
         (w->h = ws_floats(B, DD_CLS_F)) && (w->logits = ws_floats(B, K)) &&
         (w->row = dd_calloc((size_t)K, sizeof(double)));
    if (ok && training)
        ok = (w->dlogits = ws_floats(B, K)) && (w->dh = ws_floats(B, DD_CLS_F)) && (w->dflat = ws_floats(B, c->F1)) &&
             (w->dp2 = ws_floats(B, P2)) && (w->da2 = ws_floats(B, A2)) && (w->dp1 = ws_floats(B, P1)) &&
             (w->da1 = ws_floats(B, A1)) && (w->dx = ws_floats(B, X));
    if (ok && !training) ok = (w->xin = ws_floats(B, X)) != NULL;
    if (!ok) {
        ws_free(w);
        return DDPM_ERR_NOMEM;
    }
    *out = w;
    return DDPM_OK;
}

/* ------------------------------------------------------------------ the network */

static const float *tensor(const ddpm_classifier *c, int i) { return c->params + c->off[i]; }

static ddpm_status set_weights(const ddpm_classifier *c, cls_ws *w) {
    ddpm_status st = dd_conv_set_weights(w->conv1, tensor(c, 0));
    if (st == DDPM_OK) st = dd_conv_set_weights(w->conv2, tensor(c, 2));
    return st == DDPM_OK ? st : dd_error_prefix(st, "classifier");
}

/* out [M, OUT] = inp [M, IN] w [OUT, IN]^T + b, optionally ReLU'd, with every output a sum in one fixed order
   (16 interleaved partial sums, then the tail, then the bias) that depends on nothing but its own row: the same
   bits for any M, any position of the row and any thread count (a BLAS sgemm blocks and splits rows as it
   likes). Rows go four at a time so that each weight row is loaded once per four. */
#define DD_FC_LANES 16
#define DD_FC_ROWS 4
static void fc_exact(float *out, const float *inp, const float *w, const float *b, int M, int IN, int OUT, int relu) {
    const int IN16 = IN / DD_FC_LANES * DD_FC_LANES;
    const int nblk = (M + DD_FC_ROWS - 1) / DD_FC_ROWS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        const int m0 = blk * DD_FC_ROWS, nr = M - m0 < DD_FC_ROWS ? M - m0 : DD_FC_ROWS;
        for (int j = 0; j < OUT; j++) {
            const float *wj = w + (size_t)j * IN;
            float acc[DD_FC_ROWS][DD_FC_LANES] = {{0}};
            for (int i = 0; i < IN16; i += DD_FC_LANES)
                for (int r = 0; r < DD_FC_ROWS; r++) {
                    const float *x = inp + (size_t)(m0 + (r < nr ? r : 0)) * IN + i;
                    for (int l = 0; l < DD_FC_LANES; l++) acc[r][l] += x[l] * wj[i + l];
                }
            for (int r = 0; r < nr; r++) {
                const float *x = inp + (size_t)(m0 + r) * IN;
                float *a = acc[r];
                for (int h = DD_FC_LANES / 2; h >= 1; h /= 2)
                    for (int l = 0; l < h; l++) a[l] += a[l + h];
                float tail = 0;
                for (int i = IN16; i < IN; i++) tail += x[i] * wj[i];
                float v = (a[0] + tail) + b[j];
                out[(size_t)(m0 + r) * OUT + j] = relu && !(v > 0.0f) ? 0.0f : v;
            }
        }
    }
}

/* w->x [n, S, S, C] -> w->h (features) and w->logits. exact > 0: the fully connected layers by fc_exact on the first
   `exact` rows only (inference); 0: by BLAS (training). */
static ddpm_status forward(const ddpm_classifier *c, cls_ws *w, int n, int exact) {
    const int S = c->S, S2 = S / 2, S4 = S / 4;
    ddpm_status st = dd_conv_forward(w->conv1, w->a1, w->x, tensor(c, 1), n, w->scratch);
    if (st != DDPM_OK) return dd_error_prefix(st, "classifier conv1");
    dd_classifier_relu_forward(w->a1, (size_t)n * S * S * DD_CLS_C1);
    dd_ref_maxpool2x2_forward_f32(w->p1, w->a1, n, S, S, DD_CLS_C1);
    if ((st = dd_conv_forward(w->conv2, w->a2, w->p1, tensor(c, 3), n, w->scratch)) != DDPM_OK)
        return dd_error_prefix(st, "classifier conv2");
    dd_classifier_relu_forward(w->a2, (size_t)n * S2 * S2 * DD_CLS_C2);
    dd_ref_maxpool2x2_forward_f32(w->p2, w->a2, n, S2, S2, DD_CLS_C2);
    dd_nhwc_to_nchw(w->flat, w->p2, n, S4, S4, DD_CLS_C2);
    if (exact) {
        fc_exact(w->h, w->flat, tensor(c, 4), tensor(c, 5), exact, (int)c->F1, DD_CLS_F, 1);
        fc_exact(w->logits, w->h, tensor(c, 6), tensor(c, 7), exact, DD_CLS_F, c->K, 0);
        return DDPM_OK;
    }
    dd_linear_forward(w->h, w->flat, tensor(c, 4), tensor(c, 5), n, (int)c->F1, DD_CLS_F);
    dd_classifier_relu_forward(w->h, (size_t)n * DD_CLS_F);
    dd_linear_forward(w->logits, w->h, tensor(c, 6), tensor(c, 7), n, DD_CLS_F, c->K);
    return DDPM_OK;
}

/* From w->dlogits: parameter gradients added into grad [P] (zero it first); the input gradient into w->dx
   (NHWC) when need_dx. */
static ddpm_status backward(const ddpm_classifier *c, cls_ws *w, int n, float *grad, int need_dx) {
    const int S = c->S, S2 = S / 2, S4 = S / 4;
    float *g[DD_CLS_NT];
    for (int i = 0; i < DD_CLS_NT; i++) g[i] = grad + c->off[i];
    dd_linear_backward(w->dh, g[6], g[7], w->dlogits, w->h, tensor(c, 6), n, DD_CLS_F, c->K, 0);
    dd_classifier_relu_backward(w->dh, w->h, (size_t)n * DD_CLS_F);
    dd_linear_backward(w->dflat, g[4], g[5], w->dh, w->flat, tensor(c, 4), n, (int)c->F1, DD_CLS_F, 0);
    dd_nchw_to_nhwc(w->dp2, w->dflat, n, DD_CLS_C2, S4, S4);
    dd_ref_maxpool2x2_backward_f32(w->da2, w->dp2, w->a2, n, S2, S2, DD_CLS_C2, 0);
    dd_classifier_relu_backward(w->da2, w->a2, (size_t)n * S2 * S2 * DD_CLS_C2);
    ddpm_status st = dd_conv_backward(w->conv2, w->dp1, g[2], g[3], w->da2, w->p1, n, 0, w->scratch);
    if (st != DDPM_OK) return dd_error_prefix(st, "classifier conv2 backward");
    dd_ref_maxpool2x2_backward_f32(w->da1, w->dp1, w->a1, n, S, S, DD_CLS_C1, 0);
    dd_classifier_relu_backward(w->da1, w->a1, (size_t)n * S * S * DD_CLS_C1);
    if ((st = dd_conv_backward(w->conv1, need_dx ? w->dx : NULL, g[0], g[1], w->da1, w->x, n, 0, w->scratch)) !=
        DDPM_OK)
        return dd_error_prefix(st, "classifier conv1 backward");
    return DDPM_OK;
}

/* ------------------------------------------------------------------ creation */

static ddpm_status check_geometry(const char *what, int channels, int size, int num_classes, ddpm_status bad) {
    if (channels != 1 && channels != 3)
        return dd_error(bad, "%s: channels = %d; the classifier takes 1 (gray) or 3 (RGB)", what, channels);
    if (size < 4 || size > DD_CLS_MAX_SIZE || size % 4 != 0)
        return dd_error(bad, "%s: size = %d must be a multiple of 4 in 4..%d", what, size, DD_CLS_MAX_SIZE);
    if (num_classes < 1 || num_classes > DD_CLS_MAX_CLASSES)
        return dd_error(bad, "%s: classes = %d must be in 1..%d", what, num_classes, DD_CLS_MAX_CLASSES);
    return DDPM_OK;
}

/* The object with its parameter table, parameters uninitialised. */
static ddpm_status make(int C, int S, int K, ddpm_classifier **out) {
    ddpm_classifier *c = dd_calloc(1, sizeof *c);
    if (!c) return DDPM_ERR_NOMEM;
    c->C = C;
    c->S = S;
    c->K = K;
    c->F1 = (int64_t)DD_CLS_C2 * (S / 4) * (S / 4);
    c->test_accuracy = -1;
    const int64_t shapes[DD_CLS_NT][4] = {{DD_CLS_C1, C, 3, 3}, {DD_CLS_C1}, {DD_CLS_C2, DD_CLS_C1, 3, 3},
                                          {DD_CLS_C2}, {DD_CLS_F, c->F1}, {DD_CLS_F}, {K, DD_CLS_F}, {K}};
    const int ndims[DD_CLS_NT] = {4, 1, 4, 1, 2, 1, 2, 1};
    c->off[0] = 0;
    for (int i = 0; i < DD_CLS_NT; i++) {
        int64_t n = 1;
        c->ndim[i] = ndims[i];
        for (int k = 0; k < ndims[i]; k++) n *= (c->shape[i][k] = shapes[i][k]);
        c->off[i + 1] = c->off[i] + n;
    }
    c->P = c->off[DD_CLS_NT];
    if (!(c->params = dd_calloc((size_t)c->P, sizeof(float)))) {
        dd_free(c);
        return DDPM_ERR_NOMEM;
    }
    *out = c;
    return DDPM_OK;
}

ddpm_status ddpm_classifier_create(int channels, int size, int num_classes, uint64_t seed, ddpm_classifier **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_create: out is NULL");
    *out = NULL;
    ddpm_status st = check_geometry("ddpm_classifier_create", channels, size, num_classes, DDPM_ERR_INVALID_ARG);
    if (st != DDPM_OK) return st;
    ddpm_classifier *c = NULL;
    if ((st = make(channels, size, num_classes, &c)) != DDPM_OK) return st;
    /* PyTorch's Conv2d / Linear defaults: kaiming_uniform_(a = sqrt(5)) for the weight and the bias rule both
       give U(-1/sqrt(fan_in), 1/sqrt(fan_in)); tensor i draws stream (PARAM_INIT, i, 0). */
    const int64_t fan_in[DD_CLS_NT] = {(int64_t)channels * 9, (int64_t)channels * 9, DD_CLS_C1 * 9, DD_CLS_C1 * 9,
                                       c->F1, c->F1, DD_CLS_F, DD_CLS_F};
    double u[1024];
    for (int i = 0; i < DD_CLS_NT; i++) {
        const double bound = 1.0 / sqrt((double)fan_in[i]);
        const uint64_t stream = ddpm_rng_stream(DDPM_STREAM_PARAM_INIT, (uint32_t)i, 0);
        float *dst = c->params + c->off[i];
        const int64_t n = c->off[i + 1] - c->off[i];
        for (int64_t k0 = 0; k0 < n; k0 += 1024) {
            size_t m = (size_t)(n - k0 < 1024 ? n - k0 : 1024);
            ddpm_rng_uniform_f64(seed, stream, (uint64_t)k0, u, m);
            for (size_t k = 0; k < m; k++) dst[k0 + (int64_t)k] = (float)(bound * (2.0 * u[k] - 1.0));
        }
    }
    *out = c;
    return DDPM_OK;
}

void ddpm_classifier_free(ddpm_classifier *c) {
    if (!c) return;
    ws_free(c->inf);
    dd_free(c->params);
    dd_free(c);
}

void ddpm_classifier_get_info(const ddpm_classifier *c, ddpm_classifier_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->test_accuracy = -1;
    if (!c) return;
    info->channels = c->C;
    info->size = c->S;
    info->num_classes = c->K;
    info->feature_dim = DD_CLS_F;
    info->num_params = c->P;
    memcpy(info->dataset, c->dataset, sizeof info->dataset);
    info->test_accuracy = c->test_accuracy;
}

void ddpm_classifier_set_provenance(ddpm_classifier *c, const char *dataset, double test_accuracy) {
    if (!c) return;
    snprintf(c->dataset, sizeof c->dataset, "%s", dataset ? dataset : "");
    c->test_accuracy = isfinite(test_accuracy) && test_accuracy >= 0 && test_accuracy <= 1 ? test_accuracy : -1;
}

float *dd_classifier_params(ddpm_classifier *c, int64_t *count) {
    if (count) *count = c ? c->P : 0;
    return c ? c->params : NULL;
}

/* ------------------------------------------------------------------ saving and loading */

ddpm_status ddpm_classifier_save(const ddpm_classifier *c, const char *path) {
    if (!c || !path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_save: classifier or path is NULL");
    cJSON *m = cJSON_CreateObject();
    int ok = m && cJSON_AddNumberToObject(m, "channels", c->C) && cJSON_AddNumberToObject(m, "size", c->S) &&
             cJSON_AddNumberToObject(m, "classes", c->K) && cJSON_AddStringToObject(m, "dataset", c->dataset) &&
             (c->test_accuracy >= 0 ? cJSON_AddNumberToObject(m, "test_accuracy", c->test_accuracy) != NULL
                                    : cJSON_AddNullToObject(m, "test_accuracy") != NULL) &&
             cJSON_AddStringToObject(m, "architecture", DD_CLS_ARCH) &&
             cJSON_AddNumberToObject(m, "features", DD_CLS_F);
    if (ok && c->trained) {
        cJSON *t = cJSON_AddObjectToObject(m, "training");
        ok = t && cJSON_AddNumberToObject(t, "epochs", c->epochs) && cJSON_AddNumberToObject(t, "batch", c->batch) &&
             cJSON_AddNumberToObject(t, "steps", (double)c->steps) && cJSON_AddNumberToObject(t, "lr", c->lr) &&
             cJSON_AddNumberToObject(t, "seed", (double)c->seed) &&
             cJSON_AddStringToObject(t, "optimizer", "adamw, weight decay 0, cosine decay after warm-up");
    }
    char *json = ok ? cJSON_PrintUnformatted(m) : NULL;
    cJSON_Delete(m);
    if (!json) return dd_error(DDPM_ERR_NOMEM, "classifier: out of memory for the metadata");
    ddpm_st_writer *w = NULL;
    ddpm_status st = ddpm_st_writer_create(&w);
    if (st == DDPM_OK) st = ddpm_st_writer_set_metadata(w, "format", "pt");
    if (st == DDPM_OK) st = ddpm_st_writer_set_metadata(w, DD_CLS_META, json);
    for (int i = 0; i < DD_CLS_NT && st == DDPM_OK; i++)
        st = ddpm_st_writer_add(w, tensor_names[i], DDPM_DTYPE_F32, c->ndim[i], c->shape[i], tensor(c, i));
    if (st == DDPM_OK) st = ddpm_st_writer_save(w, path);
    ddpm_st_writer_free(w);
    cJSON_free(json);
    return st;
}

/* An integer field of the metadata object in [lo, hi]. */
static ddpm_status meta_int(const char *path, const cJSON *root, const char *key, int lo, int hi, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) return dd_error(DDPM_ERR_FORMAT, "%s: metadata '%s' has no field '%s'", path, DD_CLS_META, key);
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < lo ||
        it->valuedouble > hi)
        return dd_error(DDPM_ERR_FORMAT, "%s: metadata '%s' field '%s' must be an integer in %d..%d", path,
                        DD_CLS_META, key, lo, hi);
    *out = (int)it->valuedouble;
    return DDPM_OK;
}

static ddpm_status parse_meta(const char *path, const char *json, ddpm_classifier **out) {
    if (!json)
        return dd_error(DDPM_ERR_FORMAT, "%s: no '%s' metadata: not a classifier saved by ddpm", path, DD_CLS_META);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return dd_error(DDPM_ERR_FORMAT, "%s: metadata '%s' is not valid JSON (error near byte %zu)", path,
                        DD_CLS_META, at);
    }
    ddpm_status st = DDPM_OK;
    int C = 0, S = 0, K = 0;
    if (!cJSON_IsObject(root))
        st = dd_error(DDPM_ERR_FORMAT, "%s: metadata '%s' must be a JSON object", path, DD_CLS_META);
    if (st == DDPM_OK) st = meta_int(path, root, "channels", 0, 1 << 30, &C);
    if (st == DDPM_OK) st = meta_int(path, root, "size", 0, 1 << 30, &S);
    if (st == DDPM_OK) st = meta_int(path, root, "classes", 0, 1 << 30, &K);
    if (st == DDPM_OK) {
        char what[400];
        snprintf(what, sizeof what, "%.300s: metadata '%s'", path, DD_CLS_META);
        st = check_geometry(what, C, S, K, DDPM_ERR_FORMAT);
    }
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(root, "dataset");
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(root, "test_accuracy");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architecture");
    const cJSON *feat = cJSON_GetObjectItemCaseSensitive(root, "features");
    if (st == DDPM_OK && ds && !cJSON_IsNull(ds) && (!cJSON_IsString(ds) || strlen(ds->valuestring) > 31))
        st = dd_error(DDPM_ERR_FORMAT, "%s: metadata '%s' field 'dataset' must be a string of at most 31 characters",
                      path, DD_CLS_META);
    if (st == DDPM_OK && acc && !cJSON_IsNull(acc) &&
        (!cJSON_IsNumber(acc) || !(acc->valuedouble >= 0 && acc->valuedouble <= 1)))
        st = dd_error(DDPM_ERR_FORMAT, "%s: metadata '%s' field 'test_accuracy' must be a number in [0, 1] or null",
                      path, DD_CLS_META);
    if (st == DDPM_OK && arch && (!cJSON_IsString(arch) || strcmp(arch->valuestring, DD_CLS_ARCH) != 0))
        st = dd_error(DDPM_ERR_UNSUPPORTED, "%s: metadata '%s' field 'architecture' is %s; this library implements "
                      "'%s'", path, DD_CLS_META, cJSON_IsString(arch) ? arch->valuestring : "not a string",
                      DD_CLS_ARCH);
    if (st == DDPM_OK && feat && (!cJSON_IsNumber(feat) || feat->valuedouble != DD_CLS_F))
        st = dd_error(DDPM_ERR_UNSUPPORTED, "%s: metadata '%s' field 'features' must be %d", path, DD_CLS_META,
                      DD_CLS_F);
    ddpm_classifier *c = NULL;
    if (st == DDPM_OK) st = make(C, S, K, &c);
    if (st == DDPM_OK) {
        if (ds && cJSON_IsString(ds)) snprintf(c->dataset, sizeof c->dataset, "%s", ds->valuestring);
        if (acc && cJSON_IsNumber(acc)) c->test_accuracy = acc->valuedouble;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "training");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(t, "epochs"), *b = cJSON_GetObjectItemCaseSensitive(t, "batch");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "steps"), *l = cJSON_GetObjectItemCaseSensitive(t, "lr");
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(t, "seed");
        /* informational: kept when well-formed, otherwise dropped */
        if (cJSON_IsObject(t) && cJSON_IsNumber(e) && cJSON_IsNumber(b) && cJSON_IsNumber(s) && cJSON_IsNumber(l) &&
            cJSON_IsNumber(sd) && e->valuedouble >= 0 && e->valuedouble < 1e9 && b->valuedouble >= 0 &&
            b->valuedouble < 1e9 && s->valuedouble >= 0 && s->valuedouble < 9e18 && isfinite(l->valuedouble) &&
            sd->valuedouble >= 0 && sd->valuedouble < 1.8e19) {
            c->trained = 1;
            c->epochs = (int)e->valuedouble;
            c->batch = (int)b->valuedouble;
            c->steps = (int64_t)s->valuedouble;
            c->lr = l->valuedouble;
            c->seed = (uint64_t)sd->valuedouble;
        }
    }
    cJSON_Delete(root);
    *out = c;
    return st;
}

static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

ddpm_status ddpm_classifier_load(const char *path, ddpm_classifier **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_load: out is NULL");
    *out = NULL;
    if (!path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_load: path is NULL");
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open(path, &st);
    if (s != DDPM_OK) return s;
    ddpm_classifier *c = NULL;
    s = parse_meta(path, ddpm_st_metadata_get(st, DD_CLS_META), &c);
    for (int i = 0; i < DD_CLS_NT && s == DDPM_OK; i++) {
        const ddpm_st_tensor *t = ddpm_st_find(st, tensor_names[i]);
        if (!t) {
            s = dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' is missing", path, tensor_names[i]);
            break;
        }
        int same = t->ndim == c->ndim[i];
        for (int k = 0; same && k < t->ndim; k++) same = t->shape[k] == c->shape[i][k];
        if (!same) {
            char a[96], b[96];
            fmt_shape(a, sizeof a, t->ndim, t->shape);
            fmt_shape(b, sizeof b, c->ndim[i], c->shape[i]);
            s = dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' has shape %s but a classifier of %d-channel %dx%d images "
                         "with %d classes needs %s", path, tensor_names[i], a, c->C, c->S, c->S, c->K, b);
            break;
        }
        if (t->dtype != DDPM_DTYPE_F32 && t->dtype != DDPM_DTYPE_F16 && t->dtype != DDPM_DTYPE_BF16) {
            s = dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' has dtype %s; it must be F32, F16 or BF16", path,
                         tensor_names[i], ddpm_dtype_name(t->dtype));
            break;
        }
        float *dst = c->params + c->off[i];
        const int64_t n = c->off[i + 1] - c->off[i];
        if ((s = ddpm_st_read_f32(st, tensor_names[i], dst, n)) != DDPM_OK) break;
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(dst[k])) {
                s = dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at index %lld", path,
                             tensor_names[i], (long long)k);
                break;
            }
    }
    for (int i = 0; i < ddpm_st_count(st) && s == DDPM_OK; i++) {
        const char *name = ddpm_st_at(st, i)->name;
        int known = 0;
        for (int k = 0; k < DD_CLS_NT; k++) known |= strcmp(name, tensor_names[k]) == 0;
        if (!known) s = dd_error(DDPM_ERR_FORMAT, "%s: unexpected tensor '%.200s' (not a classifier parameter)", path, name);
    }
    ddpm_st_close(st);
    if (s != DDPM_OK) {
        ddpm_classifier_free(c);
        return s;
    }
    *out = c;
    return DDPM_OK;
}

/* ------------------------------------------------------------------ inference */

/* The inference buffers (one chunk), made on first use. */
static ddpm_status inference_ws(ddpm_classifier *c) {
    if (c->inf) return DDPM_OK;
    return ws_create(c, DD_CLS_CHUNK, 0, &c->inf);
}

/* Runs the network on c->inf->xin, whose first n images are set (the rest is zeroed here); features [n, F] and
   probs [n, K] may be NULL. */
static ddpm_status run_chunk(ddpm_classifier *c, int n, float *features, float *probs, int32_t *pred) {
    cls_ws *w = c->inf;
    const size_t D = (size_t)c->C * c->S * c->S;
    if (n < DD_CLS_CHUNK) memset(w->xin + (size_t)n * D, 0, (size_t)(DD_CLS_CHUNK - n) * D * sizeof(float));
    dd_nchw_to_nhwc(w->x, w->xin, DD_CLS_CHUNK, c->C, c->S, c->S);
    ddpm_status st = forward(c, w, DD_CLS_CHUNK, n);
    if (st != DDPM_OK) return st;
    if (features) memcpy(features, w->h, (size_t)n * DD_CLS_F * sizeof(float));
    for (int i = 0; i < n && (probs || pred); i++) {
        const float *l = w->logits + (size_t)i * c->K;
        for (int j = 0; j < c->K; j++) w->row[j] = l[j];
        xent_row(w->row, 0, c->K);
        if (probs)
            for (int j = 0; j < c->K; j++) probs[(size_t)i * c->K + j] = (float)w->row[j];
        if (pred) pred[i] = argmax_f64(w->row, c->K);
    }
    return DDPM_OK;
}

ddpm_status ddpm_classifier_apply(ddpm_classifier *c, const float *x, int64_t N, float *features, float *probs) {
    if (!c) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_apply: classifier is NULL");
    if (N < 0) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_apply: N = %lld is negative", (long long)N);
    if (N == 0 || (!features && !probs)) return DDPM_OK;
    if (!x) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_apply: x is NULL");
    ddpm_status st = inference_ws(c);
    if (st == DDPM_OK) st = set_weights(c, c->inf);
    const size_t D = (size_t)c->C * c->S * c->S;
    for (int64_t i0 = 0; i0 < N && st == DDPM_OK; i0 += DD_CLS_CHUNK) {
        const int n = (int)(N - i0 < DD_CLS_CHUNK ? N - i0 : DD_CLS_CHUNK);
        memcpy(c->inf->xin, x + (size_t)i0 * D, (size_t)n * D * sizeof(float));
        st = run_chunk(c, n, features ? features + (size_t)i0 * DD_CLS_F : NULL,
                       probs ? probs + (size_t)i0 * c->K : NULL, NULL);
    }
    return st;
}

/* Geometry and labels of a dataset against the classifier. */
static ddpm_status check_dataset(const ddpm_classifier *c, const ddpm_dataset *ds, const char *what) {
    if (!ds || ds->count < 1 || !ds->pixels) return dd_error(DDPM_ERR_INVALID_ARG, "%s: the dataset is empty", what);
    if (ds->channels != c->C || ds->height != c->S || ds->width != c->S)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: the images are %dx%d with %d channel%s but the classifier takes "
                        "%dx%d with %d", what, ds->width, ds->height, ds->channels, ds->channels == 1 ? "" : "s",
                        c->S, c->S, c->C);
    if (!ds->labels) return dd_error(DDPM_ERR_INVALID_ARG, "%s: the dataset has no labels", what);
    if (ds->count > (int64_t)UINT32_MAX)
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: %lld images (at most %lu)", what, (long long)ds->count,
                        (unsigned long)UINT32_MAX);
    for (int64_t i = 0; i < ds->count; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= c->K)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: image %lld has label %d but the classifier has classes 0..%d",
                            what, (long long)i, (int)ds->labels[i], c->K - 1);
    return DDPM_OK;
}

ddpm_status ddpm_classifier_accuracy(ddpm_classifier *c, const ddpm_dataset *ds, double *accuracy) {
    if (!c || !accuracy) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_accuracy: classifier or accuracy is NULL");
    ddpm_status st = check_dataset(c, ds, "classifier accuracy");
    if (st == DDPM_OK) st = inference_ws(c);
    if (st == DDPM_OK) st = set_weights(c, c->inf);
    const size_t D = (size_t)c->C * c->S * c->S;
    int32_t pred[DD_CLS_CHUNK];
    int64_t right = 0;
    for (int64_t i0 = 0; i0 < (st == DDPM_OK ? ds->count : 0) && st == DDPM_OK; i0 += DD_CLS_CHUNK) {
        const int n = (int)(ds->count - i0 < DD_CLS_CHUNK ? ds->count - i0 : DD_CLS_CHUNK);
        for (int i = 0; i < n && st == DDPM_OK; i++) st = ddpm_dataset_get_f32(ds, i0 + i, c->inf->xin + (size_t)i * D);
        if (st == DDPM_OK) st = run_chunk(c, n, NULL, NULL, pred);
        for (int i = 0; i < n && st == DDPM_OK; i++) right += pred[i] == ds->labels[i0 + i];
    }
    if (st != DDPM_OK) return st;
    *accuracy = (double)right / (double)ds->count;
    return DDPM_OK;
}

/* ------------------------------------------------------------------ gradients (tests) */

/* Mean cross-entropy of x [n, C, S, S] (model space) against labels [n]; grad [P] (may be NULL) receives the
   parameter gradient, grad_x [n, C, S, S] (may be NULL) the input gradient. Buffers are made per call. */
ddpm_status dd_classifier_loss_grad(ddpm_classifier *c, const float *x, const int32_t *labels, int n,
                                    double *loss, float *grad, float *grad_x) {
    if (!c || !x || !labels || !loss || n < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "dd_classifier_loss_grad: bad arguments");
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= c->K)
            return dd_error(DDPM_ERR_INVALID_ARG, "dd_classifier_loss_grad: label %d outside 0..%d", labels[i], c->K - 1);
    cls_ws *w = NULL;
    ddpm_status st = ws_create(c, n, 1, &w);
    if (st == DDPM_OK) st = set_weights(c, w);
    if (st == DDPM_OK) {
        dd_nchw_to_nhwc(w->x, x, n, c->C, c->S, c->S);
        st = forward(c, w, n, 0);
    }
    if (st == DDPM_OK) {
        *loss = xent_f32(w, labels, n, c->K, w->dlogits, NULL);
        if (grad || grad_x) {
            float *g = grad ? grad : dd_calloc((size_t)c->P, sizeof(float));
            if (!g) st = DDPM_ERR_NOMEM;
            if (g && grad) memset(g, 0, (size_t)c->P * sizeof(float));
            if (st == DDPM_OK) st = backward(c, w, n, g, grad_x != NULL);
            if (st == DDPM_OK && grad_x) dd_nhwc_to_nchw(grad_x, w->dx, n, c->S, c->S, c->C);
            if (g != grad) dd_free(g);
        }
    }
    ws_free(w);
    return st;
}

/* ------------------------------------------------------------------ training */

void ddpm_classifier_train_config_default(ddpm_classifier_train_config *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->epochs = 4;
    c->batch = 128;
    c->lr = 2e-3;
    c->seed = 0;
    c->report_every = 50;
}

/* The data order of an epoch: Fisher-Yates with j = floor(u (i + 1) / 2^32), u the i-th uniform of stream
   (TRAIN, epoch, DD_CLS_PERM_ITEM), so it depends on (seed, epoch) only. */
static void make_perm(uint32_t *p, int64_t n, uint64_t seed, int epoch) {
    uint32_t u[DD_CLS_PERM_BLOCK];
    for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    const uint64_t stream = ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)epoch & 0xffffffu, DD_CLS_PERM_ITEM);
    int64_t have = -1;
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t blk = i / DD_CLS_PERM_BLOCK * DD_CLS_PERM_BLOCK;
        if (blk != have) {
            int64_t m = n - blk < DD_CLS_PERM_BLOCK ? n - blk : DD_CLS_PERM_BLOCK;
            ddpm_rng_uniform_u32(seed, stream, (uint64_t)blk, u, (size_t)m);
            have = blk;
        }
        uint64_t j = ((uint64_t)u[i - blk] * (uint64_t)(i + 1)) >> 32;
        uint32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

/* Rate of step s (0-based) of `total`: linear warm-up over w steps (never 0), then a half cosine to 0. */
static double lr_at(double lr, int64_t s, int64_t total, int64_t w) {
    if (s < w) return lr * (double)(s + 1) / (double)w;
    const double progress = (double)(s - w + 1) / (double)(total - w + 1);
    return lr * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
}

/* Image idx of ds as model input, NHWC, into x [S, S, C] (the same values as ddpm_dataset_get_f32). */
static void gather(float *x, const ddpm_dataset *ds, int64_t idx, int C, int S) {
    const size_t HW = (size_t)S * S;
    const uint8_t *p = ds->pixels + (size_t)idx * HW * C;
    for (int c = 0; c < C; c++)
        for (size_t i = 0; i < HW; i++) x[i * C + c] = (float)(p[c * HW + i] / 127.5 - 1.0);
}

ddpm_status ddpm_classifier_train(ddpm_classifier *c, const ddpm_dataset *ds, const ddpm_classifier_train_config *cfg) {
    if (!c) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_classifier_train: classifier is NULL");
    ddpm_classifier_train_config def;
    if (!cfg) {
        ddpm_classifier_train_config_default(&def);
        cfg = &def;
    }
    if (cfg->epochs < 1 || cfg->epochs > 100000)
        return dd_error(DDPM_ERR_INVALID_ARG, "classifier training: epochs = %d must be in 1..100000", cfg->epochs);
    if (cfg->batch < 1 || cfg->batch > 65536)
        return dd_error(DDPM_ERR_INVALID_ARG, "classifier training: batch = %d must be in 1..65536", cfg->batch);
    if (!(isfinite(cfg->lr) && cfg->lr > 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "classifier training: lr = %g must be finite and > 0", cfg->lr);
    if (cfg->report_every < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "classifier training: report_every = %d must be >= 1",
                        cfg->report_every);
    ddpm_status st = check_dataset(c, ds, "classifier training");
    if (st != DDPM_OK) return st;

    const int B = (int)(ds->count < cfg->batch ? ds->count : cfg->batch);
    const int64_t per_epoch = ds->count / B, total = per_epoch * cfg->epochs;
    int64_t warm = total / 10;
    if (warm > DD_CLS_WARMUP) warm = DD_CLS_WARMUP;
    const size_t D = (size_t)c->C * c->S * c->S;

    cls_ws *w = NULL;
    ddpm_adamw *opt = NULL;
    float *grad = NULL;
    uint32_t *perm = NULL;
    int32_t *labels = NULL;
    ddpm_adamw_config oc;
    ddpm_adamw_config_default(&oc);
    oc.lr = cfg->lr;
    oc.weight_decay = 0;
    if ((st = ws_create(c, B, 1, &w)) == DDPM_OK && (st = ddpm_adamw_create(&oc, c->P, &opt)) == DDPM_OK &&
        (!(grad = dd_calloc((size_t)c->P, sizeof(float))) || !(perm = dd_calloc((size_t)ds->count, sizeof *perm)) ||
         !(labels = dd_calloc((size_t)B, sizeof *labels))))
        st = DDPM_ERR_NOMEM;

    int64_t step = 0;
    double loss_sum = 0;
    int64_t right = 0, seen = 0, nsum = 0;
    for (int e = 0; e < cfg->epochs && st == DDPM_OK; e++) {
        make_perm(perm, ds->count, cfg->seed, e);
        for (int64_t k = 0; k < per_epoch && st == DDPM_OK; k++) {
            for (int i = 0; i < B; i++) {
                const int64_t idx = perm[k * B + i];
                gather(w->x + (size_t)i * D, ds, idx, c->C, c->S);
                labels[i] = ds->labels[idx];
            }
            if ((st = set_weights(c, w)) != DDPM_OK || (st = forward(c, w, B, 0)) != DDPM_OK) break;
            int ok = 0;
            const double loss = xent_f32(w, labels, B, c->K, w->dlogits, &ok);
            if (!isfinite(loss)) {
                st = dd_error(DDPM_ERR_NUMERIC, "classifier training: the loss is %g at step %lld (lower the "
                              "learning rate)", loss, (long long)step + 1);
                break;
            }
            memset(grad, 0, (size_t)c->P * sizeof(float));
            if ((st = backward(c, w, B, grad, 0)) != DDPM_OK) break;
            ddpm_adamw_step(opt, c->params, grad, lr_at(cfg->lr, step, total, warm));
            step++;
            loss_sum += loss;
            nsum++;
            right += ok;
            seen += B;
            if (cfg->on_step && (step % cfg->report_every == 0 || k == per_epoch - 1)) {
                ddpm_clear_error();
                st = cfg->on_step(cfg->user, e, step, total, loss_sum / (double)nsum, (double)right / (double)seen);
                if (st != DDPM_OK && !ddpm_last_error()[0])
                    dd_error(st, "classifier training: stopped by the progress callback at step %lld",
                             (long long)step);
                loss_sum = 0;
                right = seen = nsum = 0;
            }
        }
    }
    if (step > 0) {
        c->trained = 1;
        c->epochs = cfg->epochs;
        c->batch = B;
        c->steps = step;
        c->lr = cfg->lr;
        c->seed = cfg->seed;
    }
    ws_free(w);
    ddpm_adamw_free(opt);
    dd_free(grad);
    dd_free(perm);
    dd_free(labels);
    return st;
}
