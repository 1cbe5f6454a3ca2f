/* evaluate.c — sample quality against a dataset (ddpm eval): the reference side (classifier, training and test
   images, the test set's feature statistics, a fixed shuffle of each split), the score of a set of images, the
   calibration sets of real and degraded data, stored samples (a safetensors tensor or a folder of PNGs) and
   bits/dim over test images in chunks, and the results as JSON. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

struct ddpm_eval_reference {
    ddpm_classifier *clf;
    ddpm_classifier_info ci;
    char *dataset;
    ddpm_dataset train, test;
    int C, S, K, F;
    int64_t D;                 /* C * S * S */
    float *train_x, *test_x;   /* [count, D] in model space, in the files' order */
    /* A fixed shuffle of each split, for the held-out and calibration subsets: the files' order is not random
       (the first 5,000 MNIST test digits come from other writers than the last 5,000). */
    float *test_mix;           /* [test.count, D]: test image test_perm[i] */
    int64_t *test_perm, *train_perm;
    double *mu, *cov;          /* test-set feature statistics [F], [F, F] */
    int64_t held;              /* held-out test images of the memorisation ratio: test_mix [0, held); 0: none yet */
    double held_nn;            /* their mean distance to the nearest training image */
};

static float *dataset_floats(const ddpm_dataset *ds, int64_t D) {
    float *x = dd_alloc(sizeof(float) * (size_t)ds->count * (size_t)D);
    if (!x) return NULL;
    for (int64_t i = 0; i < ds->count; i++)
        if (ddpm_dataset_get_f32(ds, i, x + i * D) != DDPM_OK) {
            dd_free(x);
            return NULL;
        }
    return x;
}

static double mean_of(const double *v, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    return s / (double)n;
}

/* A fixed permutation of 0..n-1 (Fisher-Yates on splitmix64), the same in every run. */
static void fixed_permutation(int64_t *perm, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t s = seed;
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        int64_t j = (int64_t)(z % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static ddpm_status ref_load(ddpm_eval_reference *r, const char *dir, const char *cpath) {
    ddpm_status st = ddpm_classifier_load(cpath, &r->clf);
    if (st != DDPM_OK) return st;
    ddpm_classifier_get_info(r->clf, &r->ci);
    if (r->ci.dataset[0] && strcmp(r->ci.dataset, r->dataset) != 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "classifier %s was trained on %s, not %s", cpath, r->ci.dataset,
                        r->dataset);
    if ((st = ddpm_dataset_load(r->dataset, dir, 0, &r->test)) != DDPM_OK ||
        (st = ddpm_dataset_load(r->dataset, dir, 1, &r->train)) != DDPM_OK)
        return dd_error_prefix(st, r->dataset);
    r->C = r->test.channels;
    r->S = r->test.height;
    r->D = (int64_t)r->C * r->S * r->S;
    r->K = r->ci.num_classes;
    r->F = r->ci.feature_dim;
    if (r->ci.channels != r->C || r->ci.size != r->S || r->test.width != r->S)
        return dd_error(DDPM_ERR_INVALID_ARG, "classifier %s takes %dx%d images with %d channel%s; %s has %dx%d with %d",
                        cpath, r->ci.size, r->ci.size, r->ci.channels, r->ci.channels == 1 ? "" : "s", r->dataset,
                        r->test.width, r->test.height, r->C);
    if (r->K > DDPM_EVAL_MAX_CLASSES)
        return dd_error(DDPM_ERR_UNSUPPORTED, "classifier %s: %d classes (at most %d)", cpath, r->K,
                        DDPM_EVAL_MAX_CLASSES);
    r->train_x = dataset_floats(&r->train, r->D);
    r->test_x = dataset_floats(&r->test, r->D);
    r->test_mix = dd_alloc(sizeof(float) * (size_t)r->test.count * (size_t)r->D);
    r->test_perm = dd_alloc(sizeof(int64_t) * (size_t)r->test.count);
    r->train_perm = dd_alloc(sizeof(int64_t) * (size_t)r->train.count);
    r->mu = dd_alloc(sizeof(double) * (size_t)r->F);
    r->cov = dd_alloc(sizeof(double) * (size_t)r->F * (size_t)r->F);
    float *feat = dd_alloc(sizeof(float) * (size_t)r->test.count * (size_t)r->F);   /* [test.count, F] */
    if (!r->train_x || !r->test_x || !r->test_mix || !r->test_perm || !r->train_perm || !r->mu || !r->cov || !feat) {
        dd_free(feat);
        return dd_error(DDPM_ERR_NOMEM, "out of memory for the %s images", r->dataset);
    }
    fixed_permutation(r->test_perm, r->test.count, 0x6576616c74657374ull);
    fixed_permutation(r->train_perm, r->train.count, 0x6576616c74726e21ull);
    for (int64_t i = 0; i < r->test.count; i++)
        memcpy(r->test_mix + i * r->D, r->test_x + r->test_perm[i] * r->D, sizeof(float) * (size_t)r->D);
    if ((st = ddpm_classifier_apply(r->clf, r->test_x, r->test.count, feat, NULL)) == DDPM_OK)
        st = ddpm_feature_stats(feat, r->test.count, r->F, r->mu, r->cov);
    dd_free(feat);
    return st;
}

ddpm_status ddpm_eval_reference_create(const char *dataset, const char *data_dir, const char *classifier_path,
                                       ddpm_eval_reference **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_reference_create: out is NULL");
    *out = NULL;
    if (!dataset || !classifier_path)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_reference_create: dataset or classifier path is NULL");
    ddpm_eval_reference *r = dd_calloc(1, sizeof *r);
    if (!r) return DDPM_ERR_NOMEM;
    ddpm_status st = (r->dataset = dd_strdup(dataset)) ? ref_load(r, data_dir, classifier_path) : DDPM_ERR_NOMEM;
    if (st != DDPM_OK) {
        ddpm_eval_reference_free(r);
        return st;
    }
    *out = r;
    return DDPM_OK;
}

void ddpm_eval_reference_free(ddpm_eval_reference *r) {
    if (!r) return;
    ddpm_classifier_free(r->clf);
    ddpm_dataset_free(&r->train);
    ddpm_dataset_free(&r->test);
    dd_free(r->dataset);
    dd_free(r->train_x);
    dd_free(r->test_x);
    dd_free(r->test_mix);
    dd_free(r->test_perm);
    dd_free(r->train_perm);
    dd_free(r->mu);
    dd_free(r->cov);
    dd_free(r);
}

void ddpm_eval_reference_get_info(const ddpm_eval_reference *r, ddpm_eval_reference_info *info) {
    memset(info, 0, sizeof *info);
    if (!r) return;
    info->channels = r->C;
    info->size = r->S;
    info->num_classes = r->K;
    info->test_count = r->test.count;
    info->train_count = r->train.count;
    info->classifier = r->ci;
}

/* Mean nearest-training-image distance of the held-out test images: the first n of the shuffled order. */
static ddpm_status ref_held_out(ddpm_eval_reference *r, int64_t n) {
    if (r->held == n) return DDPM_OK;
    double *d = dd_alloc(sizeof(double) * (size_t)n);   /* [n] */
    if (!d) return DDPM_ERR_NOMEM;
    ddpm_status st = ddpm_nearest_neighbours(r->test_mix, n, r->train_x, r->train.count, r->D, d, NULL);
    if (st == DDPM_OK) {
        r->held = n;
        r->held_nn = mean_of(d, n);
    }
    dd_free(d);
    return st;
}

/* ------------------------------------------------------------------------------- scoring */

ddpm_status ddpm_eval_score(ddpm_eval_reference *r, const float *x, int64_t n, const int64_t *labels,
                            ddpm_eval_metrics *s) {
    if (!r || !x || !s) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_score: null argument");
    memset(s, 0, sizeof *s);
    if (n < 2 || n > r->test.count)
        return dd_error(DDPM_ERR_INVALID_ARG, "scoring takes 2..%lld images (the held-out test images of the "
                        "memorisation ratio are as many); got %lld", (long long)r->test.count, (long long)n);
    s->num = n;
    s->num_classes = r->K;
    ddpm_status st = ref_held_out(r, n);
    if (st != DDPM_OK) return st;
    float *feat = dd_alloc(sizeof(float) * (size_t)n * (size_t)r->F);   /* [n, F] */
    float *prob = dd_alloc(sizeof(float) * (size_t)n * (size_t)r->K);   /* [n, K] */
    double *mu = dd_alloc(sizeof(double) * (size_t)r->F), *cov = dd_alloc(sizeof(double) * (size_t)r->F * (size_t)r->F);
    double *nn = dd_alloc(sizeof(double) * (size_t)n);                  /* [n] */
    if (!feat || !prob || !mu || !cov || !nn) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    double pm = 0;
    for (int64_t i = 0; i < n * r->D; i++) {
        if (!isfinite(x[i])) {
            st = dd_error(DDPM_ERR_NUMERIC, "value %lld of image %lld is not finite", (long long)(i % r->D),
                          (long long)(i / r->D));
            goto done;
        }
        pm += x[i];
    }
    s->pixel_mean = pm / (double)(n * r->D);
    if ((st = ddpm_classifier_apply(r->clf, x, n, feat, prob)) != DDPM_OK ||
        (st = ddpm_feature_stats(feat, n, r->F, mu, cov)) != DDPM_OK ||
        (st = ddpm_frechet_distance(mu, cov, r->mu, r->cov, r->F, &s->fid)) != DDPM_OK ||
        (st = ddpm_nearest_neighbours(x, n, r->train_x, r->train.count, r->D, nn, NULL)) != DDPM_OK)
        goto done;
    double tr = 0, tr_ref = 0;   /* the spread of the features: FID at a given N is lower for a smaller one */
    for (int f = 0; f < r->F; f++) {
        tr += cov[(size_t)f * (size_t)r->F + (size_t)f];
        tr_ref += r->cov[(size_t)f * (size_t)r->F + (size_t)f];
    }
    s->spread = tr_ref > 0 ? tr / tr_ref : NAN;
    double conf = 0;
    int64_t agree = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *p = prob + i * r->K;
        int best = 0;
        for (int k = 1; k < r->K; k++)
            if (p[k] > p[best]) best = k;
        s->histogram[best]++;
        conf += p[best];
        if (labels && labels[i] == best) agree++;
    }
    s->confidence = conf / (double)n;
    s->agreement = labels ? (double)agree / (double)n : NAN;
    double h = 0;
    for (int k = 0; k < r->K; k++)
        if (s->histogram[k] > 0) {
            double q = (double)s->histogram[k] / (double)n;
            h -= q * log(q);
        }
    s->entropy = h;
    s->nearest = mean_of(nn, n);
    s->held_out_nearest = r->held_nn;
    s->ratio = r->held_nn > 0 ? s->nearest / r->held_nn : NAN;
done:
    dd_free(feat);
    dd_free(prob);
    dd_free(mu);
    dd_free(cov);
    dd_free(nn);
    return st;
}

/* ------------------------------------------------------------------------------- calibration */

/* 3x3 binomial blur ([1 2 1] / 4 each way, edges repeated) of one-channel-plane images: out, in [n, C, S, S]. */
static void blur(float *out, const float *in, int64_t n, int C, int S) {
    for (int64_t p = 0; p < n * C; p++) {
        const float *a = in + p * S * S;
        float *b = out + p * S * S;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double acc = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = y + dy < 0 ? 0 : y + dy >= S ? S - 1 : y + dy;
                        int xx = x + dx < 0 ? 0 : x + dx >= S ? S - 1 : x + dx;
                        acc += (dy ? 1 : 2) * (dx ? 1 : 2) * (double)a[yy * S + xx];
                    }
                b[y * S + x] = (float)(acc / 16.0);
            }
    }
}

static const char *const calibration_names[DDPM_EVAL_CALIBRATION_SETS] = {
    "test images", "training images", "test + noise 0.1", "test blurred", "test, classes 0-4"};

/* Calibration set `index` of N images into x [N, D]; *count: the images it has (fewer than N only for set 4). */
static ddpm_status calibration_set(const ddpm_eval_reference *r, int64_t N, uint64_t seed, int index, float *x,
                                   int64_t *count) {
    int64_t D = r->D;
    const float *test = r->test_mix + N * D;   /* shuffled images [N, 2N): not among the held-out ones */
    *count = N;
    if (index == 0) {
        memcpy(x, test, sizeof(float) * (size_t)N * (size_t)D);
    } else if (index == 1) {   /* N training images of the shuffled order */
        for (int64_t i = 0; i < N; i++) memcpy(x + i * D, r->train_x + r->train_perm[i] * D, sizeof(float) * (size_t)D);
    } else if (index == 2) {
        /* noise of standard deviation 0.1 of the [0, 1] pixel range = 0.2 in model space, clipped */
        float *nz = dd_alloc(sizeof(float) * (size_t)N * (size_t)D);   /* [N, D] */
        if (!nz) return DDPM_ERR_NOMEM;
        ddpm_rng_normal_f32(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 0), 0, nz, (size_t)(N * D));
        for (int64_t i = 0; i < N * D; i++) {
            float v = test[i] + 0.2f * nz[i];
            x[i] = v < -1 ? -1 : v > 1 ? 1 : v;
        }
        dd_free(nz);
    } else if (index == 3) {
        blur(x, test, N, r->C, r->S);
    } else {   /* test images of the first half of the classes, from the shuffled order after the held-out ones */
        int64_t m = 0;
        for (int64_t i = N; i < r->test.count && m < N; i++)
            if (r->test.labels[r->test_perm[i]] < r->K / 2)
                memcpy(x + (m++) * D, r->test_mix + i * D, sizeof(float) * (size_t)D);
        *count = m;
    }
    return DDPM_OK;
}

ddpm_status ddpm_eval_calibrate(ddpm_eval_reference *r, int64_t N, uint64_t seed, ddpm_eval_set_fn on_set,
                                void *user, ddpm_eval_metrics *rows, const char **names, int *nrows) {
    if (!r || !rows || !names || !nrows) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_calibrate: null argument");
    *nrows = 0;
    if (N < 2 || 2 * N > r->test.count || N > r->train.count)
        return dd_error(DDPM_ERR_INVALID_ARG, "calibration with %lld images per set: the %s test set has %lld images, "
                        "enough for 2..%lld", (long long)N, r->dataset, (long long)r->test.count,
                        (long long)(r->test.count / 2));
    float *x = dd_alloc(sizeof(float) * (size_t)N * (size_t)r->D);   /* [N, D] */
    if (!x) return DDPM_ERR_NOMEM;
    ddpm_status st = DDPM_OK;
    for (int i = 0; i < DDPM_EVAL_CALIBRATION_SETS && st == DDPM_OK; i++) {
        int64_t m = 0;
        if ((st = calibration_set(r, N, seed, i, x, &m)) != DDPM_OK) break;
        if (on_set && (st = on_set(user, calibration_names[i], m, N)) != DDPM_OK) break;
        if (m < N) continue;   /* skipped */
        if ((st = ddpm_eval_score(r, x, N, NULL, &rows[*nrows])) != DDPM_OK) {
            dd_error_prefix(st, calibration_names[i]);
            break;
        }
        names[(*nrows)++] = calibration_names[i];
    }
    dd_free(x);
    return st;
}

/* ------------------------------------------------------------------------------- stored samples */

static ddpm_status read_png_folder(const ddpm_eval_reference *r, const char *dir, ddpm_eval_samples *out) {
    DIR *d = opendir(dir);
    if (!d) return dd_error(DDPM_ERR_IO, "%s: cannot open the folder", dir);
    char **names = NULL;
    size_t count = 0, cap = 0;
    ddpm_status st = DDPM_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".png") != 0) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 256;
            char **grown = dd_realloc(names, cap * sizeof *names);
            if (!grown) {
                st = DDPM_ERR_NOMEM;
                break;
            }
            names = grown;
        }
        if (!(names[count] = dd_strdup(e->d_name))) {
            st = DDPM_ERR_NOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (st == DDPM_OK && count == 0) st = dd_error(DDPM_ERR_FORMAT, "%s: the folder has no .png files", dir);
    if (st == DDPM_OK && (int64_t)count > r->test.count)
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: %zu images; at most %lld (the test set's size)", dir, count,
                      (long long)r->test.count);
    if (st == DDPM_OK) {
        qsort(names, count, sizeof *names, dd_cmp_str);
        if (!(out->x = dd_alloc(sizeof(float) * count * (size_t)r->D))) st = DDPM_ERR_NOMEM;
    }
    for (size_t i = 0; st == DDPM_OK && i < count; i++) {
        ddpm_image img;
        memset(&img, 0, sizeof img);
        char *path = dd_path_join(dir, names[i]);
        if (!path) st = DDPM_ERR_NOMEM;
        else st = ddpm_image_read(path, &img);   /* the reader's message names the file */
        if (st == DDPM_OK && (img.width != r->S || img.height != r->S || img.channels != r->C))
            st = dd_error(DDPM_ERR_INVALID_ARG, "%s is %dx%d with %d channel%s; %s images are %dx%d with %d", path,
                          img.width, img.height, img.channels, img.channels == 1 ? "" : "s", r->dataset, r->S, r->S,
                          r->C);
        else if (st == DDPM_OK && (st = ddpm_image_to_model(&img, r->S, r->C, out->x + i * r->D)) != DDPM_OK)
            dd_error_prefix(st, path);
        ddpm_image_free(&img);
        dd_free(path);
    }
    for (size_t i = 0; i < count; i++) dd_free(names[i]);
    dd_free(names);
    if (st == DDPM_OK) out->num = (int64_t)count;
    return st;
}

static ddpm_status read_tensor(const ddpm_eval_reference *r, const char *path, ddpm_eval_samples *out) {
    ddpm_safetensors *f = NULL;
    ddpm_status st = ddpm_st_open(path, &f);
    if (st != DDPM_OK) return st;
    const ddpm_st_tensor *t = ddpm_st_find(f, "samples");
    if (!t && ddpm_st_count(f) == 1) t = ddpm_st_at(f, 0);
    if (!t) {
        st = dd_error(DDPM_ERR_FORMAT, "%s: no tensor 'samples' (the file holds %d tensors)", path, ddpm_st_count(f));
    } else if (t->ndim != 4 || t->shape[1] != r->C || t->shape[2] != r->S || t->shape[3] != r->S || t->shape[0] < 2) {
        char sh[128];
        dd_shape_text(sh, sizeof sh, t->ndim, t->shape);
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: tensor '%s' has shape %s; %s needs [N, %d, %d, %d] with N >= 2", path,
                      t->name, sh, r->dataset, r->C, r->S, r->S);
    } else if (t->shape[0] > r->test.count) {
        st = dd_error(DDPM_ERR_INVALID_ARG, "%s: %lld images; at most %lld (the test set's size)", path,
                      (long long)t->shape[0], (long long)r->test.count);
    } else if (!(out->x = dd_alloc(sizeof(float) * (size_t)t->numel))) {
        st = DDPM_ERR_NOMEM;
    } else if ((st = ddpm_st_read_f32(f, t->name, out->x, t->numel)) != DDPM_OK) {
        dd_error_prefix(st, path);
    } else {
        out->num = t->shape[0];
        const ddpm_st_tensor *l = ddpm_st_find(f, "labels");
        if (l && l->ndim == 1 && l->shape[0] == out->num) {
            if (!(out->labels = dd_alloc(sizeof(int64_t) * (size_t)out->num))) st = DDPM_ERR_NOMEM;
            else if ((st = ddpm_st_read_i64(f, "labels", out->labels, out->num)) != DDPM_OK) dd_error_prefix(st, path);
        }
    }
    ddpm_st_close(f);
    return st;
}

ddpm_status ddpm_eval_samples_read(const ddpm_eval_reference *r, const char *path, ddpm_eval_samples *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_samples_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!r || !path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_samples_read: reference or path is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0) return dd_error(DDPM_ERR_IO, "%s: no such file or folder", path);
    ddpm_status st = S_ISDIR(sb.st_mode) ? read_png_folder(r, path, out) : read_tensor(r, path, out);
    if (st != DDPM_OK) ddpm_eval_samples_free(out);
    return st;
}

void ddpm_eval_samples_free(ddpm_eval_samples *s) {
    if (!s) return;
    dd_free(s->x);
    dd_free(s->labels);
    memset(s, 0, sizeof *s);
}

ddpm_status ddpm_eval_reference_check_model(const ddpm_eval_reference *r, const ddpm_model *m) {
    if (!r || !m) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_reference_check_model: null argument");
    ddpm_model_info mi;
    ddpm_model_get_info(m, &mi);
    if (mi.in_channels == r->C && mi.sample_size == r->S) return DDPM_OK;
    return dd_error(DDPM_ERR_INVALID_ARG, "makes %dx%d images with %d channel%s; %s images are %dx%d with %d",
                    mi.sample_size, mi.sample_size, mi.in_channels, mi.in_channels == 1 ? "" : "s", r->dataset, r->S,
                    r->S, r->C);
}

/* ------------------------------------------------------------------------------- bits/dim */

ddpm_status ddpm_eval_bpd(const ddpm_eval_reference *r, ddpm_model *model, const ddpm_diffusion *d,
                          const ddpm_bpd_config *cfg, int64_t first, int64_t num, int batch,
                          ddpm_eval_chunk_fn on_chunk, void *chunk_user, ddpm_eval_bpd_result *out) {
    if (!r || !model || !d || !cfg || !out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_bpd: null argument");
    memset(out, 0, sizeof *out);
    if (num < 1 || batch < 1 || first < 0 || first + num > r->test.count)
        return dd_error(DDPM_ERR_INVALID_ARG, "bits/dim of %lld test images from image %lld in chunks of %d: the test "
                        "set has %lld images", (long long)num, (long long)first, batch, (long long)r->test.count);
    if (ddpm_eval_reference_check_model(r, model) != DDPM_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", ddpm_last_error());
        return dd_error(DDPM_ERR_INVALID_ARG, "bits/dim: the model %s", why);
    }
    double *bpd = dd_alloc(sizeof(double) * (size_t)num), *pr = dd_alloc(sizeof(double) * (size_t)num),
           *dec = dd_alloc(sizeof(double) * (size_t)num);   /* [num] each */
    ddpm_guided *g = NULL;
    ddpm_status st = DDPM_OK;
    if (!bpd || !pr || !dec) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    /* the unconditional model: the null class of a conditional model with one */
    if ((st = ddpm_guided_create(model, 1.0, batch, &g)) != DDPM_OK) goto done;
    for (int64_t i = 0; i < num; i += batch) {
        int64_t m = num - i < batch ? num - i : batch;
        if (on_chunk && (st = on_chunk(chunk_user, i, m)) != DDPM_OK) goto done;
        if ((st = ddpm_guided_set_labels(g, NULL, m)) != DDPM_OK ||
            (st = ddpm_bpd_loop(d, cfg, ddpm_guided_fn, g, r->test_x + (first + i) * r->D, m, r->D, first + i, bpd + i,
                                pr + i, dec + i)) != DDPM_OK)
            goto done;
    }
    out->num = num;
    out->first = first;
    out->bits_per_dim = mean_of(bpd, num);
    out->prior = mean_of(pr, num);
    out->decoder = mean_of(dec, num);
    double v = 0;
    for (int64_t i = 0; i < num; i++) v += (bpd[i] - out->bits_per_dim) * (bpd[i] - out->bits_per_dim);
    out->standard_error = num > 1 ? sqrt(v / (double)(num - 1) / (double)num) : 0.0;
done:
    ddpm_guided_free(g);
    dd_free(bpd);
    dd_free(pr);
    dd_free(dec);
    return st;
}

/* ------------------------------------------------------------------------------- the results as JSON */

static cJSON *metrics_json(const char *name, const ddpm_eval_metrics *s) {
    cJSON *o = cJSON_CreateObject(), *h = cJSON_CreateArray();
    if (!o || !h) {
        cJSON_Delete(o);
        cJSON_Delete(h);
        return NULL;
    }
    cJSON_AddStringToObject(o, "name", name);
    static const char *const keys[] = {"num", "fid", "feature_spread", "label_entropy", "mean_confidence"};
    const double v[] = {(double)s->num, s->fid, s->spread, s->entropy, s->confidence};
    for (int i = 0; i < 5; i++) cJSON_AddNumberToObject(o, keys[i], v[i]);
    if (!isnan(s->agreement)) cJSON_AddNumberToObject(o, "label_agreement", s->agreement);
    for (int k = 0; k < s->num_classes; k++) cJSON_AddItemToArray(h, cJSON_CreateNumber((double)s->histogram[k]));
    cJSON_AddItemToObject(o, "label_histogram", h);
    static const char *const tail[] = {"memorisation_ratio", "nearest_train_distance",
                                       "held_out_nearest_train_distance", "mean_pixel"};
    const double w[] = {s->ratio, s->nearest, s->held_out_nearest, s->pixel_mean};
    for (int i = 0; i < 4; i++) cJSON_AddNumberToObject(o, tail[i], w[i]);
    return o;
}

ddpm_status ddpm_eval_results_json(const ddpm_eval_results *r, char **text) {
    if (!text) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_results_json: text is NULL");
    *text = NULL;
    if (!r || !r->data || !r->what || !r->info || (r->ncal > 0 && (!r->cal || !r->cal_names)) || r->ncal < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_eval_results_json: incomplete results");
    cJSON *o = cJSON_CreateObject();
    if (!o) return dd_error(DDPM_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(o, "data", r->data);
    cJSON_AddStringToObject(o, "what", r->what);
    cJSON_AddNumberToObject(o, "reference_images", (double)r->info->test_count);
    cJSON_AddNumberToObject(o, "classifier_test_accuracy", r->info->classifier.test_accuracy);
    if (r->samples) cJSON_AddItemToObject(o, "samples", metrics_json("samples", r->samples));
    if (r->ncal > 0) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < r->ncal; i++) cJSON_AddItemToArray(arr, metrics_json(r->cal_names[i], &r->cal[i]));
        cJSON_AddItemToObject(o, "calibration", arr);
    }
    if (r->nll) {
        const ddpm_eval_bpd_result *b = r->nll;
        static const char *const keys[6] = {"bits_per_dim", "standard_error", "prior_bits_per_dim",
                                            "decoder_bits_per_dim", "num", "first"};
        const double v[6] = {b->bits_per_dim, b->standard_error, b->prior, b->decoder, (double)b->num,
                             (double)b->first};
        cJSON *n = cJSON_CreateObject();
        for (int i = 0; n && i < 6; i++) cJSON_AddNumberToObject(n, keys[i], v[i]);
        cJSON_AddItemToObject(o, "nll", n);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    size_t len = s ? strlen(s) : 0;
    char *out = s ? dd_alloc(len + 2) : NULL;
    if (out) {
        memcpy(out, s, len);
        memcpy(out + len, "\n", 2);
    }
    cJSON_free(s);
    if (!out) return dd_error(DDPM_ERR_NOMEM, "out of memory for the results' JSON");
    *text = out;
    return DDPM_OK;
}
