/* cmd_eval.c — `ddpm eval`: how good a model's samples are, as numbers. Samples (drawn here, or read from a
   --save-tensor file or a folder of PNGs) are scored against the dataset's 10,000 test images with the shipped
   classifier of that dataset: FID on its features, the predicted-label histogram and its entropy, the mean
   confidence, agreement with the conditioning labels; the memorisation ratio compares nearest-training-image
   distances of the samples with those of as many held-out test images; --nll adds the variational bound in
   bits/dim on test images; --calibrate scores real and degraded data instead, to show what the numbers mean. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <ddpm.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app_common.h"
#include "options.h"

#define MAX_CLASSES 1000

static const cli_option options[] = {
    {"model", "DIR|PRESET", NULL, "the model: a pipeline, unet or fixture folder, a config.json or a preset "
                                  "(default: $DDPM_MODEL, else the shipped models/DATA)"},
    {"data", "mnist|fashion-mnist", NULL, "the dataset the samples are measured against (required)"},
    {"data-dir", "DIR", NULL, "folder with the dataset's files (default: $DDPM_DATA/NAME, else ~/.cache/ddpm/NAME)"},
    {"classifier", "FILE", NULL, "the feature classifier (default: the shipped models/eval/NAME-classifier.safetensors)"},
    {"num", "N", "1000", "samples to draw and score (and held-out test images of the memorisation ratio)"},
    {"samples", "FILE|DIR", NULL, "score stored samples instead of drawing them: a 'ddpm sample --save-tensor' file "
                                  "or a folder of PNGs"},
    APP_OPT_SAMPLER("ddim"),
    APP_OPT_STEPS,
    APP_OPT_ETA,
    APP_OPT_SPACING,
    APP_OPT_CLIP,
    APP_OPT_SEED,
    APP_OPT_CLASS,
    APP_OPT_GUIDANCE,
    {"batch", "B", "50", "images per network call; the results do not depend on it"},
    {"save-samples", "FILE", NULL, "also write the drawn samples (tensor 'samples', and 'labels') to score again later"},
    {"nll", "N", "0", "also the test-set NLL in bits/dim from the variational bound, on N test images (T network "
                      "calls per image)"},
    {"nll-start", "I", "0", "first test image of --nll"},
    {"calibrate", NULL, NULL, "score real data instead of samples: test images, training images, test images with "
                              "noise, blurred, and of half the classes"},
    {"json", "FILE", NULL, "write the results as JSON ('-' = standard output)"},
    APP_OPT_THREADS,
    APP_OPT_ENGINE,
    {NULL, NULL, NULL, NULL},
};

/* The reference side: classifier, training and test images, the test set's feature statistics. */
typedef struct {
    ddpm_classifier *clf;
    ddpm_classifier_info ci;
    const char *data;
    ddpm_dataset train, test;
    int C, S, K, F;
    int64_t D;
    float *train_x, *test_x;   /* [count, D] in model space, in the files' order */
    /* A fixed shuffle of each split, for the held-out and calibration subsets: the files' order is not random
       (the first 5,000 MNIST test digits come from other writers than the last 5,000). */
    float *test_mix;           /* [test.count, D]: test image test_perm[i] */
    int64_t *test_perm, *train_perm;
    double *mu, *cov;          /* test-set feature statistics */
    int64_t held;              /* held-out test images of the memorisation ratio: test_mix [0, held) */
    double held_nn;            /* their mean distance to the nearest training image */
} eval_ref;

typedef struct {
    const char *name;
    int64_t n;
    double fid, spread, entropy, confidence, agreement, nn, ratio, pixel_mean;
    int64_t hist[MAX_CLASSES];
} eval_score;

static float *dataset_floats(const ddpm_dataset *ds, int64_t D) {
    float *x = malloc(sizeof(float) * (size_t)ds->count * (size_t)D);
    if (!x) return NULL;
    for (int64_t i = 0; i < ds->count; i++)
        if (ddpm_dataset_get_f32(ds, i, x + i * D) != DDPM_OK) {
            free(x);
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

static int ref_load(eval_ref *r, const cli_args *a) {
    const char *dir = cli_given(a, "data-dir") ? cli_str(a, "data-dir") : NULL;
    char path[4096];
    const char *cpath = cli_str(a, "classifier");
    if (!cpath) {
        snprintf(path, sizeof path, "%s/models/eval/%s-classifier.safetensors", cli_share_dir(), r->data);
        cpath = path;
    }
    if (ddpm_classifier_load(cpath, &r->clf) != DDPM_OK) return cli_fail();
    ddpm_classifier_get_info(r->clf, &r->ci);
    if (r->ci.dataset[0] && strcmp(r->ci.dataset, r->data) != 0)
        return app_error("--classifier %s was trained on %s, not %s", cpath, r->ci.dataset, r->data);
    if (ddpm_dataset_load(r->data, dir, 0, &r->test) != DDPM_OK || ddpm_dataset_load(r->data, dir, 1, &r->train) != DDPM_OK)
        return app_error("--data %s: %s", r->data, ddpm_last_error());
    r->C = r->test.channels;
    r->S = r->test.height;
    r->D = (int64_t)r->C * r->S * r->S;
    r->K = r->ci.num_classes;
    r->F = r->ci.feature_dim;
    if (r->ci.channels != r->C || r->ci.size != r->S || r->test.width != r->S)
        return app_error("--classifier %s takes %dx%d images with %d channel%s; %s has %dx%d with %d", cpath, r->ci.size,
                         r->ci.size, r->ci.channels, r->ci.channels == 1 ? "" : "s", r->data, r->test.width,
                         r->test.height, r->C);
    if (r->K > MAX_CLASSES) return app_error("--classifier %s: %d classes (at most %d)", cpath, r->K, MAX_CLASSES);
    r->train_x = dataset_floats(&r->train, r->D);
    r->test_x = dataset_floats(&r->test, r->D);
    r->test_mix = malloc(sizeof(float) * (size_t)r->test.count * (size_t)r->D);
    r->test_perm = malloc(sizeof(int64_t) * (size_t)r->test.count);
    r->train_perm = malloc(sizeof(int64_t) * (size_t)r->train.count);
    if (r->test_x && r->test_mix && r->test_perm && r->train_perm) {
        fixed_permutation(r->test_perm, r->test.count, 0x6576616c74657374ull);
        fixed_permutation(r->train_perm, r->train.count, 0x6576616c74726e21ull);
        for (int64_t i = 0; i < r->test.count; i++)
            memcpy(r->test_mix + i * r->D, r->test_x + r->test_perm[i] * r->D, sizeof(float) * (size_t)r->D);
    }
    r->mu = malloc(sizeof(double) * (size_t)r->F);
    r->cov = malloc(sizeof(double) * (size_t)r->F * (size_t)r->F);
    float *feat = malloc(sizeof(float) * (size_t)r->test.count * (size_t)r->F);
    int rc = CLI_OK;
    if (!r->train_x || !r->test_x || !r->test_mix || !r->test_perm || !r->train_perm || !r->mu || !r->cov || !feat)
        rc = app_error("out of memory for the %s images", r->data);
    else if (ddpm_classifier_apply(r->clf, r->test_x, r->test.count, feat, NULL) != DDPM_OK ||
             ddpm_feature_stats(feat, r->test.count, r->F, r->mu, r->cov) != DDPM_OK)
        rc = cli_fail();
    free(feat);
    return rc;
}

/* Mean nearest-training-image distance of the held-out test images: the first n of the shuffled order. */
static int ref_held_out(eval_ref *r, int64_t n) {
    double *d = malloc(sizeof(double) * (size_t)n);
    if (!d) return app_error("out of memory");
    int rc = ddpm_nearest_neighbours(r->test_mix, n, r->train_x, r->train.count, r->D, d, NULL) == DDPM_OK ? CLI_OK
                                                                                                       : cli_fail();
    if (rc == CLI_OK) {
        r->held = n;
        r->held_nn = mean_of(d, n);
    }
    free(d);
    return rc;
}

static void ref_free(eval_ref *r) {
    ddpm_classifier_free(r->clf);
    ddpm_dataset_free(&r->train);
    ddpm_dataset_free(&r->test);
    free(r->train_x);
    free(r->test_x);
    free(r->test_mix);
    free(r->test_perm);
    free(r->train_perm);
    free(r->mu);
    free(r->cov);
}

/* Every number for n images x [n, D]; labels [n] (the conditioning labels) or NULL. */
static int score(eval_ref *r, const char *name, const float *x, int64_t n, const int64_t *labels, eval_score *s) {
    memset(s, 0, sizeof *s);
    s->name = name;
    s->n = n;
    float *feat = malloc(sizeof(float) * (size_t)n * (size_t)r->F), *prob = malloc(sizeof(float) * (size_t)n * (size_t)r->K);
    double *mu = malloc(sizeof(double) * (size_t)r->F), *cov = malloc(sizeof(double) * (size_t)r->F * (size_t)r->F);
    double *nn = malloc(sizeof(double) * (size_t)n);
    int rc = CLI_OK;
    if (!feat || !prob || !mu || !cov || !nn) {
        rc = app_error("out of memory");
        goto done;
    }
    double pm = 0;
    for (int64_t i = 0; i < n * r->D; i++) {
        if (!isfinite(x[i])) {
            rc = app_error("%s: value %lld of image %lld is not finite", name, (long long)(i % r->D), (long long)(i / r->D));
            goto done;
        }
        pm += x[i];
    }
    s->pixel_mean = pm / (double)(n * r->D);
    if (ddpm_classifier_apply(r->clf, x, n, feat, prob) != DDPM_OK || ddpm_feature_stats(feat, n, r->F, mu, cov) != DDPM_OK ||
        ddpm_frechet_distance(mu, cov, r->mu, r->cov, r->F, &s->fid) != DDPM_OK ||
        ddpm_nearest_neighbours(x, n, r->train_x, r->train.count, r->D, nn, NULL) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
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
        s->hist[best]++;
        conf += p[best];
        if (labels && labels[i] == best) agree++;
    }
    s->confidence = conf / (double)n;
    s->agreement = labels ? (double)agree / (double)n : NAN;
    double h = 0;
    for (int k = 0; k < r->K; k++)
        if (s->hist[k] > 0) {
            double q = (double)s->hist[k] / (double)n;
            h -= q * log(q);
        }
    s->entropy = h;
    s->nn = mean_of(nn, n);
    s->ratio = r->held_nn > 0 ? s->nn / r->held_nn : NAN;
done:
    free(feat);
    free(prob);
    free(mu);
    free(cov);
    free(nn);
    return rc;
}

static void print_score(const eval_ref *r, const eval_score *s) {
    printf("  FID (classifier features)  %.2f\n", s->fid);
    printf("  feature spread             %.3f (trace of the feature covariance over the test set's)\n", s->spread);
    printf("  label entropy              %.3f (uniform: ln %d = %.3f)\n", s->entropy, r->K, log((double)r->K));
    printf("  mean confidence            %.3f\n", s->confidence);
    if (!isnan(s->agreement)) printf("  agrees with its label      %.3f\n", s->agreement);
    printf("  label histogram           ");
    for (int k = 0; k < r->K; k++) printf(" %d:%lld", k, (long long)s->hist[k]);
    printf("\n  memorisation ratio         %.3f (nearest training image: %.3f; held-out test images: %.3f)\n", s->ratio,
           s->nn, r->held_nn);
    printf("  mean pixel                 %.3f\n", s->pixel_mean);
}

static cJSON *score_json(const eval_ref *r, const eval_score *s) {
    cJSON *o = cJSON_CreateObject(), *h = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddNumberToObject(o, "num", (double)s->n);
    cJSON_AddNumberToObject(o, "fid", s->fid);
    cJSON_AddNumberToObject(o, "feature_spread", s->spread);
    cJSON_AddNumberToObject(o, "label_entropy", s->entropy);
    cJSON_AddNumberToObject(o, "mean_confidence", s->confidence);
    if (!isnan(s->agreement)) cJSON_AddNumberToObject(o, "label_agreement", s->agreement);
    for (int k = 0; k < r->K; k++) cJSON_AddItemToArray(h, cJSON_CreateNumber((double)s->hist[k]));
    cJSON_AddItemToObject(o, "label_histogram", h);
    cJSON_AddNumberToObject(o, "memorisation_ratio", s->ratio);
    cJSON_AddNumberToObject(o, "nearest_train_distance", s->nn);
    cJSON_AddNumberToObject(o, "held_out_nearest_train_distance", r->held_nn);
    cJSON_AddNumberToObject(o, "mean_pixel", s->pixel_mean);
    return o;
}

/* ------------------------------------------------------------------------------- stored samples */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_png_folder(const eval_ref *r, const char *dir, float **x, int64_t *n) {
    DIR *d = opendir(dir);
    if (!d) return app_error("--samples %s: cannot open the folder", dir);
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = CLI_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".png") != 0) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 256;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = app_error("out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[count] = malloc(l + 1))) {
            rc = app_error("out of memory");
            break;
        }
        memcpy(names[count++], e->d_name, l + 1);
    }
    closedir(d);
    if (rc == CLI_OK && count == 0) rc = app_error("--samples %s: the folder has no .png files", dir);
    if (rc == CLI_OK && (int64_t)count > r->test.count)
        rc = app_error("--samples %s: %zu images; at most %lld (the test set's size)", dir, count, (long long)r->test.count);
    if (rc == CLI_OK) {
        qsort(names, count, sizeof *names, cmp_str);
        if (!(*x = malloc(sizeof(float) * count * (size_t)r->D))) rc = app_error("out of memory");
    }
    for (size_t i = 0; rc == CLI_OK && i < count; i++) {
        char path[4096];
        ddpm_image img;
        memset(&img, 0, sizeof img);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (ddpm_image_read(path, &img) != DDPM_OK) rc = app_error("--samples %s", ddpm_last_error());
        else if (img.width != r->S || img.height != r->S || img.channels != r->C)
            rc = app_error("--samples %s is %dx%d with %d channel%s; %s images are %dx%d with %d", path, img.width,
                           img.height, img.channels, img.channels == 1 ? "" : "s", r->data, r->S, r->S, r->C);
        else if (ddpm_image_to_model(&img, r->S, r->C, *x + i * r->D) != DDPM_OK)
            rc = app_error("--samples %s: %s", path, ddpm_last_error());
        ddpm_image_free(&img);
    }
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    if (rc == CLI_OK) *n = (int64_t)count;
    return rc;
}

static int read_tensor(const eval_ref *r, const char *path, float **x, int64_t *n, int64_t **labels) {
    ddpm_safetensors *st = NULL;
    if (ddpm_st_open(path, &st) != DDPM_OK) return app_error("--samples %s", ddpm_last_error());
    const ddpm_st_tensor *t = ddpm_st_find(st, "samples");
    if (!t && ddpm_st_count(st) == 1) t = ddpm_st_at(st, 0);
    int rc = CLI_OK;
    if (!t) {
        rc = app_error("--samples %s: no tensor 'samples' (the file holds %d tensors)", path, ddpm_st_count(st));
    } else if (t->ndim != 4 || t->shape[1] != r->C || t->shape[2] != r->S || t->shape[3] != r->S || t->shape[0] < 2) {
        char sh[128] = "";
        for (int k = 0; k < t->ndim; k++)
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", k ? ", " : "", (long long)t->shape[k]);
        rc = app_error("--samples %s: tensor '%s' has shape [%s]; %s needs [N, %d, %d, %d] with N >= 2", path, t->name, sh,
                       r->data, r->C, r->S, r->S);
    } else if (t->shape[0] > r->test.count) {
        rc = app_error("--samples %s: %lld images; at most %lld (the test set's size)", path, (long long)t->shape[0],
                       (long long)r->test.count);
    } else if (!(*x = malloc(sizeof(float) * (size_t)t->numel))) {
        rc = app_error("out of memory");
    } else if (ddpm_st_read_f32(st, t->name, *x, t->numel) != DDPM_OK) {
        rc = app_error("--samples %s: %s", path, ddpm_last_error());
    } else {
        *n = t->shape[0];
        const ddpm_st_tensor *l = ddpm_st_find(st, "labels");
        if (l && l->ndim == 1 && l->shape[0] == *n) {
            if (!(*labels = malloc(sizeof(int64_t) * (size_t)*n))) rc = app_error("out of memory");
            else if (ddpm_st_read_i64(st, "labels", *labels, *n) != DDPM_OK) rc = app_error("--samples %s: %s", path, ddpm_last_error());
        }
    }
    ddpm_st_close(st);
    return rc;
}

/* ------------------------------------------------------------------------------- calibration */

/* 3x3 binomial blur ([1 2 1] / 4 each way, edges repeated) of one-channel-plane images. */
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

static int calibrate(eval_ref *r, int64_t N, uint64_t seed, eval_score *rows, int *nrows) {
    int64_t D = r->D;
    float *buf = malloc(sizeof(float) * (size_t)N * (size_t)D), *nz = malloc(sizeof(float) * (size_t)N * (size_t)D);
    int rc = CLI_OK;
    *nrows = 0;
    if (!buf || !nz) {
        rc = app_error("out of memory");
        goto done;
    }
    const float *test = r->test_mix + N * D;   /* shuffled images [N, 2N): not among the held-out ones */
    static const char *const names[] = {"test images", "training images", "test + noise 0.1", "test blurred",
                                        "test, classes 0-4"};
    for (int row = 0; row < 5 && rc == CLI_OK; row++) {
        const float *x = test;
        if (row == 1) {   /* N training images of the shuffled order */
            for (int64_t i = 0; i < N; i++)
                memcpy(buf + i * D, r->train_x + r->train_perm[i] * D, sizeof(float) * (size_t)D);
            x = buf;
        } else if (row == 2) {
            /* noise of standard deviation 0.1 of the [0, 1] pixel range = 0.2 in model space, clipped */
            ddpm_rng_normal_f32(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 0), 0, nz, (size_t)(N * D));
            for (int64_t i = 0; i < N * D; i++) {
                float v = test[i] + 0.2f * nz[i];
                buf[i] = v < -1 ? -1 : v > 1 ? 1 : v;
            }
            x = buf;
        } else if (row == 3) {
            blur(buf, test, N, r->C, r->S);
            x = buf;
        } else if (row == 4) {
            int64_t m = 0;
            for (int64_t i = N; i < r->test.count && m < N; i++)
                if (r->test.labels[r->test_perm[i]] < r->K / 2)
                    memcpy(buf + (m++) * D, r->test_mix + i * D, sizeof(float) * (size_t)D);
            if (m < N) {
                printf("calibration: %s skipped (the test set has only %lld such images after the first %lld)\n",
                       names[row], (long long)m, (long long)N);
                break;
            }
            x = buf;
        }
        printf("calibration: %s...\n", names[row]);
        fflush(stdout);
        if ((rc = score(r, names[row], x, N, NULL, &rows[row])) == CLI_OK) (*nrows)++;
    }
done:
    free(buf);
    free(nz);
    return rc;
}

/* ------------------------------------------------------------------------------- bits/dim */

typedef struct {
    double mean, sem, prior, decoder;
    int64_t n, start;
} eval_nll;

static int run_nll(app_ctx *c, eval_ref *r, int64_t n, int64_t start, int batch, eval_nll *out) {
    ddpm_sampler_config sc;
    ddpm_bpd_config bc;
    ddpm_guided *g = NULL;
    ddpm_sampler_config_default(&sc, DDPM_SAMPLER_DDPM);
    ddpm_pipeline_scheduler_apply(&c->sched, &sc);
    ddpm_bpd_config_default(&bc);
    bc.prediction = sc.prediction;
    bc.variance = sc.variance;
    bc.clip = 1;
    bc.seed = c->seed;
    bc.on_step = app_on_step;
    bc.step_user = c;
    double *bpd = malloc(sizeof(double) * (size_t)n), *pr = malloc(sizeof(double) * (size_t)n),
           *dec = malloc(sizeof(double) * (size_t)n);
    int rc = CLI_OK;
    if (!bpd || !pr || !dec) {
        rc = app_error("out of memory");
        goto done;
    }
    /* the unconditional model: the null class of a conditional model with one */
    if (c->info.num_class_embeds > 0 && c->info.null_class < 0) {
        rc = app_error("--nll: the model is class-conditional without a null class; the bound needs an unconditional "
                       "model");
        goto done;
    }
    if (ddpm_guided_create(c->model, 1.0, batch, &g) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    app_progress_start(c, "bits/dim", (n + batch - 1) / batch * c->d->T, n);
    for (int64_t first = 0; first < n; first += batch) {
        int64_t m = n - first < batch ? n - first : batch;
        app_progress_chunk(c, first, m);
        if (ddpm_guided_set_labels(g, NULL, m) != DDPM_OK ||
            ddpm_bpd_loop(c->d, &bc, ddpm_guided_fn, g, r->test_x + (start + first) * r->D, m, r->D, start + first,
                          bpd + first, pr + first, dec + first) != DDPM_OK) {
            rc = app_fail(c, 0);
            goto done;
        }
    }
    app_progress_end(c);
    out->n = n;
    out->start = start;
    out->mean = mean_of(bpd, n);
    out->prior = mean_of(pr, n);
    out->decoder = mean_of(dec, n);
    double v = 0;
    for (int64_t i = 0; i < n; i++) v += (bpd[i] - out->mean) * (bpd[i] - out->mean);
    out->sem = n > 1 ? sqrt(v / (double)(n - 1) / (double)n) : 0.0;
done:
    ddpm_guided_free(g);
    free(bpd);
    free(pr);
    free(dec);
    return rc;
}

/* ------------------------------------------------------------------------------- the command */

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    app_ctx c;
    eval_ref r;
    eval_score s, cal[5];
    eval_nll nll;
    ddpm_sampler_config cfg;
    long long num = 1000, batch = 50, nlln = 0, nlls = 0;
    float *x = NULL;
    double *xd = NULL;
    int64_t *labels = NULL, n = 0;
    int ncal = 0, have_score = 0, have_model = 0;
    char what[512] = "";
    memset(&c, 0, sizeof c);
    memset(&r, 0, sizeof r);
    memset(&nll, 0, sizeof nll);
    c.a = a;
    const char *samples = cli_str(a, "samples"), *json = cli_str(a, "json"), *save = cli_str(a, "save-samples");
    int cal_mode = cli_flag(a, "calibrate");

    int rc = app_parse_common(a, &c);
    if (rc == CLI_OK) rc = cli_require(a, "data");
    if (rc == CLI_OK) rc = cli_int(a, "num", 2, 10000, &num);
    if (rc == CLI_OK) rc = cli_int(a, "batch", 1, 4096, &batch);
    if (rc == CLI_OK) rc = cli_int(a, "nll", 0, 10000, &nlln);
    if (rc == CLI_OK) rc = cli_int(a, "nll-start", 0, 9999, &nlls);
    if (rc == CLI_OK && samples && cal_mode) rc = cli_usage_error("--samples and --calibrate exclude each other");
    if (rc == CLI_OK && save && (samples || cal_mode))
        rc = cli_usage_error("--save-samples writes drawn samples; it does not go with --%s", samples ? "samples" : "calibrate");
    if (rc != CLI_OK) return rc;
    r.data = cli_str(a, "data");
    if (strcmp(r.data, "mnist") != 0 && strcmp(r.data, "fashion-mnist") != 0)
        return cli_usage_error("--data %s: ddpm eval knows mnist and fashion-mnist", r.data);
    char default_model[4200];
    snprintf(default_model, sizeof default_model, "%s/models/%s", cli_share_dir(), r.data);
    c.default_model = default_model;   /* the shipped model of the dataset */
    if (cal_mode && num > 5000) return cli_usage_error("--calibrate --num %lld: at most 5000 (it uses 2N test images)", num);

    double t0 = app_now();
    printf("eval: loading %s and its classifier...\n", r.data);
    fflush(stdout);
    if ((rc = ref_load(&r, a)) != CLI_OK) goto done;
    int64_t limit = cal_mode ? r.test.count / 2 : r.test.count;
    if (!samples && num > limit) {
        rc = cli_usage_error("--num %lld: the %s test set has %lld images, enough for %lld%s (the memorisation ratio "
                             "needs as many held-out test images)", num, r.data, (long long)r.test.count, (long long)limit,
                             cal_mode ? " with --calibrate" : "");
        goto done;
    }
    if (nlls + nlln > r.test.count) {
        rc = cli_usage_error("--nll %lld --nll-start %lld: the test set has %lld images", nlln, nlls, (long long)r.test.count);
        goto done;
    }

    have_model = !(samples || cal_mode) || nlln > 0;
    if (have_model) {
        if ((rc = app_load_model(&c)) != CLI_OK) goto done;
        if (c.C != r.C || c.S != r.S) {
            rc = app_error("%s makes %dx%d images with %d channel%s; %s images are %dx%d with %d", c.spec, c.S, c.S, c.C,
                           c.C == 1 ? "" : "s", r.data, r.S, r.S, r.C);
            goto done;
        }
    }

    if (cal_mode) {
        n = num;
        if ((rc = ref_held_out(&r, n)) != CLI_OK) goto done;
        if ((rc = calibrate(&r, n, c.seed, cal, &ncal)) != CLI_OK) goto done;
        snprintf(what, sizeof what, "calibration on %s, %lld images per row", r.data, (long long)n);
    } else if (samples) {
        struct stat sb;
        if (stat(samples, &sb) != 0) {
            rc = app_error("--samples %s: no such file or folder", samples);
            goto done;
        }
        rc = S_ISDIR(sb.st_mode) ? read_png_folder(&r, samples, &x, &n) : read_tensor(&r, samples, &x, &n, &labels);
        if (rc != CLI_OK) goto done;
        if (cli_given(a, "num") && num != n) {
            rc = cli_usage_error("--num %lld: --samples %s holds %lld images; leave --num out or make them agree", num,
                                 samples, (long long)n);
            goto done;
        }
        snprintf(what, sizeof what, "%lld stored samples from %s", (long long)n, samples);
    } else {
        n = num;
        if ((rc = app_labels(&c, n, 1)) != CLI_OK) goto done;
        if ((rc = app_sampler_config(&c, DDPM_SAMPLER_DDIM, &cfg)) != CLI_OK) goto done;
        if (batch > n) batch = n;
        app_hook(&c, &cfg);
        if ((rc = app_prepare(&c, (int)batch)) != CLI_OK) goto done;
        if (!(xd = malloc(sizeof(double) * (size_t)n * (size_t)c.D))) {
            rc = app_error("out of memory for %lld images", (long long)n);
            goto done;
        }
        double ts = app_now();
        app_progress_start(&c, "sampling", (n + batch - 1) / batch * cfg.steps, n);
        if ((rc = app_sample_all(&c, &cfg, xd, n, APP_XT_SEED)) != CLI_OK) goto done;
        char dur[32];
        app_duration(dur, sizeof dur, app_now() - ts);
        if (!(x = app_to_float(xd, (size_t)n * (size_t)c.D))) {
            rc = app_error("out of memory");
            goto done;
        }
        labels = c.labels;
        printf("sampled %lld images in %s\n", (long long)n, dur);
        snprintf(what, sizeof what, "%lld samples of %s, %s %d steps, guidance %g, seed %llu", (long long)n, c.spec,
                 app_sampler_name(cfg.kind), cfg.steps, c.guidance, (unsigned long long)c.seed);
        if (save) {
            char *settings = cli_settings(a);
            if (!settings) {
                rc = app_error("out of memory");
                goto done;
            }
            rc = app_save_samples(&c, save, x, n, c.labels, settings);
            free(settings);
            if (rc != CLI_OK) goto done;
            printf("wrote %s: samples [%lld, %d, %d, %d]\n", save, (long long)n, c.C, c.S, c.S);
        }
    }
    if (!cal_mode) {
        double ts = app_now();
        if ((rc = ref_held_out(&r, n)) != CLI_OK) goto done;
        if ((rc = score(&r, "samples", x, n, labels, &s)) != CLI_OK) goto done;
        have_score = 1;
        char dur[32];
        app_duration(dur, sizeof dur, app_now() - ts);
        printf("scored %lld images in %s\n", (long long)n, dur);
    }
    if (nlln > 0) {
        int nb = (int)(batch < nlln ? batch : nlln);
        if (!c.guided && (rc = app_prepare(&c, nb)) != CLI_OK) goto done;
        if (nb > c.batch) nb = c.batch;
        if ((rc = run_nll(&c, &r, nlln, nlls, nb, &nll)) != CLI_OK) goto done;
    }

    printf("%s vs the %lld %s test images (classifier: %s, test accuracy %.4f)\n", what, (long long)r.test.count, r.data,
           r.ci.dataset[0] ? r.ci.dataset : "?", r.ci.test_accuracy);
    for (int i = 0; i < ncal; i++) {
        printf("%s:\n", cal[i].name);
        print_score(&r, &cal[i]);
    }
    if (have_score) print_score(&r, &s);
    if (nlln > 0)
        printf("  NLL                        %.4f bits/dim +- %.4f (test images %lld..%lld; prior %.5f, decoder %.4f)\n",
               nll.mean, nll.sem, (long long)nll.start, (long long)(nll.start + nll.n - 1), nll.prior, nll.decoder);
    char dur[32];
    app_duration(dur, sizeof dur, app_now() - t0);
    printf("eval: done in %s\n", dur);

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "data", r.data);
        cJSON_AddStringToObject(o, "what", what);
        cJSON_AddNumberToObject(o, "reference_images", (double)r.test.count);
        cJSON_AddNumberToObject(o, "classifier_test_accuracy", r.ci.test_accuracy);
        if (have_score) cJSON_AddItemToObject(o, "samples", score_json(&r, &s));
        if (ncal) {
            cJSON *arr = cJSON_CreateArray();
            for (int i = 0; i < ncal; i++) cJSON_AddItemToArray(arr, score_json(&r, &cal[i]));
            cJSON_AddItemToObject(o, "calibration", arr);
        }
        if (nlln > 0) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddNumberToObject(b, "bits_per_dim", nll.mean);
            cJSON_AddNumberToObject(b, "standard_error", nll.sem);
            cJSON_AddNumberToObject(b, "prior_bits_per_dim", nll.prior);
            cJSON_AddNumberToObject(b, "decoder_bits_per_dim", nll.decoder);
            cJSON_AddNumberToObject(b, "num", (double)nll.n);
            cJSON_AddNumberToObject(b, "first", (double)nll.start);
            cJSON_AddItemToObject(o, "nll", b);
        }
        char *text = cJSON_Print(o);
        cJSON_Delete(o);
        cli_text_file tf;
        if (!text) {
            rc = app_error("out of memory");
            goto done;
        }
        if ((rc = cli_text_open(&tf, json)) == CLI_OK) {
            fprintf(tf.f, "%s\n", text);
            rc = cli_text_commit(&tf);
        }
        free(text);
        if (rc != CLI_OK) goto done;
        if (strcmp(json, "-") != 0) printf("wrote %s\n", json);
    }
done:
    if (labels != c.labels) free(labels);
    app_free(&c);
    ref_free(&r);
    free(x);
    free(xd);
    return rc;
}

const cli_command cli_cmd_eval = {
    "eval",
    "measure sample quality: FID, classes, memorisation, bits/dim (mnist, fashion-mnist)",
    "--data mnist|fashion-mnist [--model DIR] [--num N] [--sampler S] [--steps N] [--class K] [--guidance W]\n"
    "                 [--samples FILE|DIR] [--nll N] [--calibrate] [--json FILE] [options]",
    NULL, 0, 0, options,
    "Samples are drawn as 'ddpm sample' draws them (a conditional model cycles through its classes) and scored\n"
    "against the dataset's 10,000 test images with the shipped classifier's 128 features (FID), its predictions\n"
    "(label histogram, entropy, mean confidence, agreement with the conditioning label) and nearest training\n"
    "images in pixel space: the memorisation ratio is the samples' mean distance over that of as many held-out\n"
    "test images (about 1 when healthy; near 0 for copies). FID depends on N: compare runs with the same --num.\n"
    "Everything is deterministic for a seed. See docs/quality.md.\n\n"
    "examples:\n"
    "  ddpm eval --data mnist                                  (1,000 samples of the shipped model)\n"
    "  ddpm eval --data mnist --sampler dpmpp2m --steps 20 --json dpm20.json\n"
    "  ddpm eval --data mnist --samples samples.safetensors\n"
    "  ddpm eval --data mnist --calibrate\n"
    "  ddpm eval --data mnist --num 100 --nll 100\n",
    run,
};
