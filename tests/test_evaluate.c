/* test_evaluate.c — the evaluation of ddpm eval as library calls, on the 64-image MNIST sample (data/mnist-sample)
   and the shipped MNIST classifier: the test images scored against themselves (FID 0, memorisation ratio 1),
   training images (ratio 0), refusals of non-finite values and bad counts, the calibration sets, stored samples
   (safetensors and PNG folders, with their refusals), a classifier of another dataset, and bits/dim in chunks
   against ddpm_bpd_loop on the whole batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DATA DD_SOURCE_DIR "/data/mnist-sample"
#define CLASSIFIER DD_SOURCE_DIR "/models/eval/mnist-classifier.safetensors"
#define D 784

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Images of a split in model space: [count, D], malloc'ed. */
static float *split_images(int train, int64_t *count, int32_t **labels) {
    ddpm_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (ddpm_dataset_load("mnist", DATA, train, &ds) != DDPM_OK) {
        fprintf(stderr, "cannot load %s: %s\n", DATA, ddpm_last_error());
        exit(1);
    }
    float *x = malloc(sizeof(float) * (size_t)ds.count * D);
    *labels = malloc(sizeof(int32_t) * (size_t)ds.count);
    if (!x || !*labels) exit(1);
    for (int64_t i = 0; i < ds.count; i++) {
        CHECK_OK(ddpm_dataset_get_f32(&ds, i, x + i * D));
        (*labels)[i] = ds.labels[i];
    }
    *count = ds.count;
    ddpm_dataset_free(&ds);
    return x;
}

static void test_score(ddpm_eval_reference *r) {
    ddpm_eval_reference_info ri;
    ddpm_eval_reference_get_info(r, &ri);
    CHECK(ri.channels == 1 && ri.size == 28 && ri.num_classes == 10 && ri.test_count == 64 && ri.train_count == 64);
    CHECK(strcmp(ri.classifier.dataset, "mnist") == 0);
    int64_t n = 0, m = 0;
    int32_t *lab32 = NULL, *train_lab = NULL;
    float *test = split_images(0, &n, &lab32), *train = split_images(1, &m, &train_lab);
    int64_t labels[64];
    for (int64_t i = 0; i < n; i++) labels[i] = lab32[i];
    static ddpm_eval_metrics s;

    /* the whole test set against its own statistics; the held-out images are the same set, shuffled */
    CHECK_OK(ddpm_eval_score(r, test, n, labels, &s));
    CHECK_MSG(fabs(s.fid) < 1e-6, "FID of the test set against itself: %g", s.fid);
    CHECK_MSG(fabs(s.spread - 1) < 1e-9, "feature spread %g", s.spread);
    CHECK_MSG(fabs(s.ratio - 1) < 1e-9, "memorisation ratio %g", s.ratio);
    CHECK(s.nearest > 0 && fabs(s.nearest - s.held_out_nearest) < 1e-9 * s.nearest);
    CHECK(s.num == n && s.num_classes == 10);
    int64_t total = 0;
    for (int k = 0; k < 10; k++) total += s.histogram[k];
    CHECK(total == n);
    CHECK_MSG(s.agreement >= 0.9 && s.agreement <= 1, "agreement with the true labels %g", s.agreement);
    CHECK(s.confidence > 0.5 && s.confidence <= 1);
    CHECK(s.entropy > 0 && s.entropy <= log(10.0) + 1e-12);
    CHECK(s.pixel_mean > -1 && s.pixel_mean < 0);

    /* without labels there is no agreement; the numbers do not depend on a repeated call */
    double fid = s.fid;
    CHECK_OK(ddpm_eval_score(r, test, n, NULL, &s));
    CHECK(isnan(s.agreement) && s.fid == fid);

    /* training images are copies: distance 0 to the nearest training image */
    CHECK_OK(ddpm_eval_score(r, train, 16, NULL, &s));
    CHECK_MSG(s.ratio == 0 && s.nearest == 0, "training images: ratio %g", s.ratio);
    CHECK(s.held_out_nearest > 0);

    /* refusals: a non-finite value (named by image and index), too few or too many images, null arguments */
    test[3 * D + 5] = NAN;
    CHECK_FAIL(ddpm_eval_score(r, test, 8, NULL, &s), DDPM_ERR_NUMERIC);
    CHECK_MSG(strstr(ddpm_last_error(), "value 5 of image 3") != NULL, "message '%s'", ddpm_last_error());
    test[3 * D + 5] = INFINITY;
    CHECK_FAIL(ddpm_eval_score(r, test, 8, NULL, &s), DDPM_ERR_NUMERIC);
    test[3 * D + 5] = 0;
    CHECK_FAIL(ddpm_eval_score(r, test, 1, NULL, &s), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_eval_score(r, test, 65, NULL, &s), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_eval_score(r, NULL, 8, NULL, &s), DDPM_ERR_INVALID_ARG);
    free(test);
    free(train);
    free(lab32);
    free(train_lab);
}

typedef struct {
    int calls, skipped;
    char names[8][32];
} set_log;

static ddpm_status on_set(void *user, const char *name, int64_t available, int64_t N) {
    set_log *l = user;
    if (l->calls < 8) snprintf(l->names[l->calls], sizeof l->names[0], "%s", name);
    l->calls++;
    if (available < N) l->skipped++;
    return DDPM_OK;
}

static void test_calibration(ddpm_eval_reference *r) {
    static ddpm_eval_metrics rows[DDPM_EVAL_CALIBRATION_SETS], again[DDPM_EVAL_CALIBRATION_SETS];
    const char *names[DDPM_EVAL_CALIBRATION_SETS];
    int nrows = 0, n2 = 0;
    set_log log;
    memset(&log, 0, sizeof log);
    CHECK_OK(ddpm_eval_calibrate(r, 32, 7, on_set, &log, rows, names, &nrows));
    /* 32 images of classes 0-4 among test images 32..63 of the shuffle: not in a 64-image sample */
    CHECK_MSG(log.calls == 5 && nrows == 5 - log.skipped, "%d calls, %d skipped, %d rows", log.calls, log.skipped, nrows);
    CHECK(nrows >= 4 && strcmp(names[0], "test images") == 0 && strcmp(names[1], "training images") == 0 &&
          strcmp(names[2], "test + noise 0.1") == 0 && strcmp(names[3], "test blurred") == 0);
    CHECK(strcmp(log.names[4], "test, classes 0-4") == 0);
    CHECK_MSG(rows[1].ratio == 0, "training images: ratio %g", rows[1].ratio);
    CHECK_MSG(rows[0].ratio > 0.5 && rows[0].ratio < 2, "test images: ratio %g", rows[0].ratio);
    CHECK_MSG(rows[3].fid > rows[0].fid && rows[3].spread < rows[0].spread, "blurred: FID %g vs %g, spread %g vs %g",
              rows[3].fid, rows[0].fid, rows[3].spread, rows[0].spread);
    for (int i = 0; i < nrows; i++) CHECK(rows[i].num == 32 && isnan(rows[i].agreement));
    /* the same seed gives the same numbers; another seed changes only the noisy set */
    CHECK_OK(ddpm_eval_calibrate(r, 32, 7, NULL, NULL, again, names, &n2));
    CHECK(n2 == nrows && again[2].fid == rows[2].fid && again[0].fid == rows[0].fid);
    CHECK_OK(ddpm_eval_calibrate(r, 32, 8, NULL, NULL, again, names, &n2));
    CHECK(again[2].fid != rows[2].fid && again[0].fid == rows[0].fid && again[3].fid == rows[3].fid);
    CHECK_FAIL(ddpm_eval_calibrate(r, 33, 7, NULL, NULL, rows, names, &nrows), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_eval_calibrate(r, 1, 7, NULL, NULL, rows, names, &nrows), DDPM_ERR_INVALID_ARG);
}

static void write_tensor(const char *path, const char *name, int64_t n, int C, int S, const float *x,
                         const int64_t *labels) {
    ddpm_st_writer *w = NULL;
    int64_t shape[4] = {n, C, S, S}, lshape[1] = {n};
    CHECK_OK(ddpm_st_writer_create(&w));
    CHECK_OK(ddpm_st_writer_add(w, name, DDPM_DTYPE_F32, 4, shape, x));
    if (labels) CHECK_OK(ddpm_st_writer_add(w, "labels", DDPM_DTYPE_I64, 1, lshape, labels));
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
}

static void write_png(const char *dir, const char *name, int size, int channels, uint8_t value) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ddpm_image img;
    CHECK_OK(ddpm_image_alloc(&img, size, size, channels));
    memset(img.pixels, value, (size_t)size * size * channels);
    CHECK_OK(ddpm_png_write(path, &img, NULL));
    ddpm_image_free(&img);
}

static void test_samples(ddpm_eval_reference *r) {
    const char *tmp = dd_test_tmpdir("test_evaluate");
    char path[1024];
    float *x = malloc(sizeof(float) * 4 * D);
    if (!x) exit(1);
    for (int i = 0; i < 4 * D; i++) x[i] = (float)(i % 255) / 127.5f - 1;
    int64_t labels[4] = {3, 1, 4, 1};
    ddpm_eval_samples s;

    /* a tensor file with labels, one without, and one whose only tensor has another name */
    snprintf(path, sizeof path, "%s/s.safetensors", tmp);
    write_tensor(path, "samples", 4, 1, 28, x, labels);
    CHECK_OK(ddpm_eval_samples_read(r, path, &s));
    CHECK(s.num == 4 && s.x && s.labels && memcmp(s.x, x, sizeof(float) * 4 * D) == 0);
    CHECK(s.labels && s.labels[0] == 3 && s.labels[3] == 1);
    ddpm_eval_samples_free(&s);
    CHECK(s.x == NULL && s.labels == NULL && s.num == 0);
    snprintf(path, sizeof path, "%s/other.safetensors", tmp);
    write_tensor(path, "images", 4, 1, 28, x, NULL);
    CHECK_OK(ddpm_eval_samples_read(r, path, &s));
    CHECK(s.num == 4 && s.labels == NULL);
    ddpm_eval_samples_free(&s);

    /* bad shapes, too many images, a missing file: refused, the message beginning with the path */
    snprintf(path, sizeof path, "%s/shape.safetensors", tmp);
    write_tensor(path, "samples", 2, 3, 8, x, NULL);
    CHECK_FAIL(ddpm_eval_samples_read(r, path, &s), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strncmp(ddpm_last_error(), path, strlen(path)) == 0 && strstr(ddpm_last_error(), "has shape [2, 3, 8, 8]"),
              "message '%s'", ddpm_last_error());
    CHECK(s.x == NULL && s.num == 0);
    snprintf(path, sizeof path, "%s/one.safetensors", tmp);
    write_tensor(path, "samples", 1, 1, 28, x, NULL);
    CHECK_FAIL(ddpm_eval_samples_read(r, path, &s), DDPM_ERR_INVALID_ARG);
    float *big = calloc(65 * D, sizeof(float));
    if (!big) exit(1);
    snprintf(path, sizeof path, "%s/big.safetensors", tmp);
    write_tensor(path, "samples", 65, 1, 28, big, NULL);
    CHECK_FAIL(ddpm_eval_samples_read(r, path, &s), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), "at most 64") != NULL, "message '%s'", ddpm_last_error());
    free(big);
    snprintf(path, sizeof path, "%s/missing.safetensors", tmp);
    CHECK_FAIL(ddpm_eval_samples_read(r, path, &s), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "no such file or folder") != NULL);
    snprintf(path, sizeof path, "%s/junk.safetensors", tmp);
    dd_write_bytes(path, "junk", 4);
    CHECK_FAIL(ddpm_eval_samples_read(r, path, &s), DDPM_ERR_FORMAT);

    /* a folder of PNGs, read in name order; an empty folder and a wrong size are refused */
    snprintf(path, sizeof path, "%s/png", tmp);
    CHECK_OK(ddpm_make_dirs(path));
    CHECK_FAIL(ddpm_eval_samples_read(r, path, &s), DDPM_ERR_FORMAT);
    write_png(path, "b.png", 28, 1, 255);
    write_png(path, "a.png", 28, 1, 0);
    write_png(path, "c.png", 28, 1, 255);
    char other[1100];
    snprintf(other, sizeof other, "%s/notes.txt", path);   /* not a PNG: ignored */
    dd_write_bytes(other, "x", 1);
    CHECK_OK(ddpm_eval_samples_read(r, path, &s));
    CHECK(s.num == 3 && s.labels == NULL);
    if (s.num == 3) CHECK(s.x[0] == -1.0f && s.x[D] == 1.0f && s.x[2 * D + 100] == 1.0f);
    ddpm_eval_samples_free(&s);
    write_png(path, "d.png", 8, 3, 0);
    CHECK_FAIL(ddpm_eval_samples_read(r, path, &s), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), "d.png is 8x8 with 3 channels; mnist images are 28x28 with 1") != NULL,
              "message '%s'", ddpm_last_error());
    free(x);
    if (dd_test_failures == 0) dd_test_remove_dir(tmp);
}

static ddpm_status on_chunk(void *user, int64_t first, int64_t n) {
    int64_t *log = user;   /* pairs (first, n) after a count */
    if (log[0] < 8) {
        log[1 + 2 * log[0]] = first;
        log[2 + 2 * log[0]] = n;
    }
    log[0]++;
    return DDPM_OK;
}

static void test_bpd(const ddpm_eval_reference *r) {
    ddpm_diffusion *dif = dd_test_diffusion("linear", 4);
    ddpm_model *m = dd_test_model("basic", 3, DDPM_ENGINE_FAST, 0, 5);
    ddpm_bpd_config bc;
    ddpm_bpd_config_default(&bc);
    bc.seed = 11;
    ddpm_eval_bpd_result a, b;
    int64_t log[1 + 16] = {0};
    CHECK_OK(ddpm_eval_bpd(r, m, dif, &bc, 3, 5, 2, on_chunk, log, &a));
    CHECK(log[0] == 3 && log[1] == 0 && log[2] == 2 && log[3] == 2 && log[4] == 2 && log[5] == 4 && log[6] == 1);
    CHECK_OK(ddpm_eval_bpd(r, m, dif, &bc, 3, 5, 5, NULL, NULL, &b));
    CHECK(a.first == 3 && a.num == 5 && b.num == 5);
    CHECK_MSG(fabs(a.bits_per_dim - b.bits_per_dim) < 1e-6 * fabs(b.bits_per_dim), "chunks of 2: %.9g, of 5: %.9g",
              a.bits_per_dim, b.bits_per_dim);
    CHECK(a.bits_per_dim > 0 && a.standard_error > 0 && a.prior > 0 && a.decoder > 0);

    /* the same numbers as ddpm_bpd_loop on test images 3..7 (the files' order) */
    int64_t n = 0;
    int32_t *lab = NULL;
    float *test = split_images(0, &n, &lab);
    ddpm_guided *g = NULL;
    double bpd[5], pr[5], dec[5];
    CHECK_OK(ddpm_guided_create(m, 1.0, 5, &g));
    CHECK_OK(ddpm_guided_set_labels(g, NULL, 5));
    CHECK_OK(ddpm_bpd_loop(dif, &bc, ddpm_guided_fn, g, test + 3 * D, 5, D, 3, bpd, pr, dec));
    double mean = 0, var = 0;
    for (int i = 0; i < 5; i++) mean += bpd[i] / 5;
    for (int i = 0; i < 5; i++) var += (bpd[i] - mean) * (bpd[i] - mean);
    CHECK_MSG(fabs(b.bits_per_dim - mean) < 1e-12 * mean, "%.15g vs %.15g", b.bits_per_dim, mean);
    CHECK(fabs(b.standard_error - sqrt(var / 4 / 5)) < 1e-9 * b.standard_error);
    ddpm_guided_free(g);
    free(test);
    free(lab);

    CHECK_FAIL(ddpm_eval_bpd(r, m, dif, &bc, 60, 5, 2, NULL, NULL, &a), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_eval_bpd(r, m, dif, &bc, 0, 0, 2, NULL, NULL, &a), DDPM_ERR_INVALID_ARG);
    ddpm_model_free(m);
    ddpm_model *tiny = dd_test_model("tiny", 3, DDPM_ENGINE_FAST, 0, 2);
    CHECK_FAIL(ddpm_eval_bpd(r, tiny, dif, &bc, 0, 2, 2, NULL, NULL, &a), DDPM_ERR_INVALID_ARG);
    ddpm_model_free(tiny);
    ddpm_diffusion_free(dif);
}

int main(void) {
    if (!file_exists(DATA "/t10k-images-idx3-ubyte.gz") || !file_exists(CLASSIFIER))
        return dd_test_skip("test_evaluate", "no data/mnist-sample or models/eval/mnist-classifier.safetensors");
    ddpm_set_threads(2);
    ddpm_eval_reference *r = NULL;
    CHECK_OK(ddpm_eval_reference_create("mnist", DATA, CLASSIFIER, &r));
    if (!r) return dd_test_finish("test_evaluate");
    test_score(r);
    test_calibration(r);
    test_samples(r);
    test_bpd(r);
    ddpm_eval_reference_free(r);

    /* a classifier of another dataset, a missing classifier, missing data */
    ddpm_eval_reference *o = NULL;
    const char *fashion = DD_SOURCE_DIR "/models/eval/fashion-mnist-classifier.safetensors";
    if (file_exists(fashion)) {
        CHECK_FAIL(ddpm_eval_reference_create("mnist", DATA, fashion, &o), DDPM_ERR_INVALID_ARG);
        CHECK_MSG(strstr(ddpm_last_error(), "was trained on fashion-mnist, not mnist") != NULL, "message '%s'",
                  ddpm_last_error());
    }
    CHECK_FAIL(ddpm_eval_reference_create("mnist", DATA, DATA "/missing.safetensors", &o), DDPM_ERR_IO);
    CHECK_FAIL(ddpm_eval_reference_create("mnist", DATA "/missing", CLASSIFIER, &o), DDPM_ERR_IO);
    CHECK(o == NULL);
    ddpm_eval_reference_free(NULL);
    return dd_test_finish("test_evaluate");
}
