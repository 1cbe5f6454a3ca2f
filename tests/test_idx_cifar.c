/* test_idx_cifar.c — IDX and CIFAR-10 readers (raw and gzip) and the dataset loader on the small copies
   in data/mnist-sample and tests/data/io; random data sets. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "testutil.h"

static const char *repo(const char *rel) {
    static char buf[4][1024];
    static int slot = 0;
    char *p = buf[slot++ % 4];
    snprintf(p, 1024, "%s/%s", DD_SOURCE_DIR, rel);
    return p;
}

static void test_idx(void) {
    ddpm_idx im, lb;
    CHECK_OK(ddpm_idx_read(repo("data/mnist-sample/train-images-idx3-ubyte.gz"), &im));
    CHECK(im.ndim == 3 && im.dims[0] == 64 && im.dims[1] == 28 && im.dims[2] == 28);
    if (im.data) {
        long sum = 0;
        for (int i = 0; i < 784; i++) sum += im.data[i];
        CHECK_MSG(sum == 27525, "first image sum %ld", sum);
        CHECK(im.data[14 * 28 + 14] == 240);
    }
    CHECK_OK(ddpm_idx_read(repo("data/mnist-sample/train-labels-idx1-ubyte.gz"), &lb));
    static const uint8_t first[16] = {5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5, 3, 6, 1, 7};
    CHECK(lb.ndim == 1 && lb.dims[0] == 64 && lb.data && memcmp(lb.data, first, 16) == 0);
    ddpm_idx_free(&lb);
    CHECK(lb.data == NULL && lb.ndim == 0);
    ddpm_idx_free(NULL);
    CHECK_OK(ddpm_idx_read(dd_test_data("io/fashion-mnist/t10k-labels-idx1-ubyte"), &lb));   /* raw */
    static const uint8_t fashion[16] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1};
    CHECK(lb.ndim == 1 && lb.dims[0] == 16 && lb.data && memcmp(lb.data, fashion, 16) == 0);
    ddpm_idx_free(&lb);

    /* raw and gzip from memory give the same result; 1-D and 4-D */
    uint8_t raw[4 + 16 + 24];
    const uint8_t hdr[20] = {0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    memcpy(raw, hdr, 20);
    for (int i = 0; i < 24; i++) raw[20 + i] = (uint8_t)(i * 10);
    size_t gl = 0;
    uint8_t *gz = dd_test_gzip(raw, sizeof raw, &gl);
    ddpm_idx a, b;
    CHECK_OK(ddpm_idx_read_memory(raw, sizeof raw, &a));
    CHECK_OK(ddpm_idx_read_memory(gz, gl, &b));
    CHECK(a.ndim == 4 && b.ndim == 4 && a.dims[3] == 4 && b.dims[1] == 2);
    CHECK(a.data && b.data && memcmp(a.data, raw + 20, 24) == 0 && memcmp(b.data, raw + 20, 24) == 0);
    ddpm_idx_free(&a);
    ddpm_idx_free(&b);
    free(gz);
    const uint8_t vec[11] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9};
    CHECK_OK(ddpm_idx_read_memory(vec, sizeof vec, &a));
    CHECK(a.ndim == 1 && a.dims[0] == 3 && a.data && a.data[2] == 9);
    ddpm_idx_free(&a);
    const uint8_t none[12] = {0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 28};   /* zero images is valid IDX */
    CHECK_OK(ddpm_idx_read_memory(none, sizeof none, &a));
    CHECK(a.ndim == 2 && a.dims[0] == 0 && a.dims[1] == 28);
    ddpm_idx_free(&a);
    ddpm_idx_free(&im);
}

static void test_cifar(void) {
    ddpm_cifar c;
    CHECK_OK(ddpm_cifar_read(dd_test_data("io/cifar10/data_batch_1_first8.bin.gz"), &c));
    static const uint8_t labels[8] = {6, 9, 9, 4, 1, 1, 2, 7};
    CHECK(c.count == 8 && c.labels && memcmp(c.labels, labels, 8) == 0);
    if (c.images) {
        static const uint8_t red0[4] = {59, 43, 50, 68}, green1[4] = {177, 137, 104, 101};
        CHECK(memcmp(c.images, red0, 4) == 0);
        CHECK(memcmp(c.images + 3072 + 1024, green1, 4) == 0);
    }
    /* raw records from memory */
    uint8_t *raw = calloc(2, 3073);
    raw[0] = 3;
    raw[3073] = 9;
    raw[1 + 5] = 200;
    raw[3073 + 3072] = 77;
    ddpm_cifar r;
    CHECK_OK(ddpm_cifar_read_memory(raw, 2 * 3073, &r));
    CHECK(r.count == 2 && r.labels[0] == 3 && r.labels[1] == 9 && r.images[5] == 200 && r.images[3072 + 3071] == 77);
    ddpm_cifar_free(&r);
    ddpm_cifar_free(&c);
    ddpm_cifar_free(NULL);
    CHECK(c.labels == NULL && c.count == 0);
    free(raw);
}

static void copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    if (!f) {
        CHECK_MSG(0, "cannot open %s", from);
        return;
    }
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    dd_write_bytes(to, buf, n);
}

static void test_dataset(void) {
    ddpm_dataset ds;
    CHECK_OK(ddpm_dataset_load("mnist", repo("data/mnist-sample"), 1, &ds));
    CHECK(ds.count == 64 && ds.channels == 1 && ds.height == 28 && ds.width == 28 && ds.num_classes == 10);
    CHECK(ds.labels && ds.labels[0] == 5 && ds.labels[1] == 0 && ds.labels[4] == 9);
    float img[3072];
    CHECK_OK(ddpm_dataset_get_f32(&ds, 0, img));
    CHECK(img[14 * 28 + 14] == (float)(240 / 127.5 - 1) && img[0] == -1.0f);
    CHECK_FAIL(ddpm_dataset_get_f32(&ds, 64, img), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_dataset_get_f32(&ds, -1, img), DDPM_ERR_INVALID_ARG);
    ddpm_dataset_free(&ds);
    CHECK(ds.pixels == NULL && ds.count == 0);
    ddpm_dataset_free(NULL);
    CHECK_OK(ddpm_dataset_load("mnist", repo("data/mnist-sample"), 0, &ds));
    CHECK(ds.count == 64 && ds.labels && ds.labels[0] == 7 && ds.labels[1] == 2);
    ddpm_dataset_free(&ds);

    CHECK_OK(ddpm_dataset_load("fashion-mnist", dd_test_data("io/fashion-mnist"), 0, &ds));
    CHECK(ds.count == 16 && ds.labels && ds.labels[0] == 9 && ds.labels[15] == 1);
    if (ds.pixels) {
        long sum = 0;
        for (int i = 0; i < 784; i++) sum += ds.pixels[i];
        CHECK(sum == 33456);
    }
    ddpm_dataset_free(&ds);
    CHECK_FAIL(ddpm_dataset_load("fashion-mnist", dd_test_data("io/fashion-mnist"), 1, &ds), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "train-images-idx3-ubyte") != NULL);

    CHECK_OK(ddpm_dataset_load("cifar10", dd_test_data("io/cifar10"), 1, &ds));
    CHECK(ds.count == 8 && ds.channels == 3 && ds.height == 32 && ds.width == 32 && ds.labels[0] == 6);
    CHECK_OK(ddpm_dataset_get_f32(&ds, 0, img));
    CHECK(img[0] == (float)(59 / 127.5 - 1));
    ddpm_dataset_free(&ds);
    CHECK_FAIL(ddpm_dataset_load("cifar10", dd_test_data("io/cifar10"), 0, &ds), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "test_batch.bin") != NULL);

    /* several batches in name order; X.bin.gz is not read again when X.bin is there */
    const char *dir = dd_test_tmpdir("cifar_dir");
    char a[1200], b[1200], c[1200];
    snprintf(a, sizeof a, "%s/data_batch_1.bin.gz", dir);
    snprintf(b, sizeof b, "%s/data_batch_2.bin", dir);
    snprintf(c, sizeof c, "%s/data_batch_2.bin.gz", dir);
    copy_file(dd_test_data("io/cifar10/data_batch_1_first8.bin.gz"), a);
    copy_file(dd_test_data("io/cifar10/data_batch_1_first8.bin.gz"), c);
    uint8_t rec[3073];
    memset(rec, 0, sizeof rec);
    rec[0] = 8;
    dd_write_bytes(b, rec, sizeof rec);
    CHECK_OK(ddpm_dataset_load("cifar10", dir, 1, &ds));
    CHECK(ds.count == 9 && ds.labels && ds.labels[0] == 6 && ds.labels[8] == 8);
    ddpm_dataset_free(&ds);

    CHECK_FAIL(ddpm_dataset_load("imagenet", dir, 1, &ds), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "fashion-mnist") != NULL);
}

/* ddpm_dataset_random: the documented draws, repeatable, labels only with classes, bad shapes refused. */
static void test_dataset_random(void) {
    ddpm_dataset d, e;
    CHECK_OK(ddpm_dataset_random(3, 2, 4, 5, 7, &d));
    CHECK(d.count == 3 && d.channels == 2 && d.height == 4 && d.width == 4 && d.num_classes == 5 && d.labels);
    uint32_t u[96];
    ddpm_rng_uniform_u32(7, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0), 0, u, 96);
    for (int i = 0; d.pixels && i < 96; i++) CHECK(d.pixels[i] == (uint8_t)(u[i] >> 24));
    ddpm_rng_uniform_u32(7, ddpm_rng_stream(DDPM_STREAM_INIT, 1, 0), 0, u, 3);
    for (int i = 0; d.labels && i < 3; i++) CHECK(d.labels[i] == (int32_t)(u[i] % 5u));
    CHECK_OK(ddpm_dataset_random(3, 2, 4, 0, 7, &e));
    CHECK(e.labels == NULL && e.num_classes == 0 && e.pixels && d.pixels && memcmp(d.pixels, e.pixels, 96) == 0);
    ddpm_dataset_free(&d);
    ddpm_dataset_free(&e);
    CHECK_FAIL(ddpm_dataset_random(0, 1, 4, 0, 7, &d), DDPM_ERR_INVALID_ARG);
    CHECK(d.pixels == NULL);
}

int main(void) {
    test_idx();
    test_cifar();
    test_dataset();
    test_dataset_random();
    return dd_test_finish("test_idx_cifar");
}
