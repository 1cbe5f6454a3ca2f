/* test_data_folder.c — training data for a model: the JPEG reader, image resizing, folder datasets with
   class sub-folders, channel and size conversion of the standard datasets, the default data folder, and
   the one-line errors for bad input. Run as `test_data_folder unit` or `test_data_folder fault`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static const char *repo(const char *rel) {
    static char buf[4][1024];
    static int slot = 0;
    char *p = buf[slot++ % 4];
    snprintf(p, 1024, "%s/%s", DD_SOURCE_DIR, rel);
    return p;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void copy_file(const char *src, const char *dir, const char *name) {
    size_t n = 0;
    uint8_t *b = slurp(src, &n);
    char dst[2500];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    dd_write_bytes(dst, b, n);
    free(b);
}

static const char *sub(const char *dir, const char *name) {
    static char buf[4][1200];
    static int slot = 0;
    char *p = buf[slot++ % 4];
    snprintf(p, 1200, "%s/%s", dir, name);
    return p;
}

static int has(const char *needle) {
    return strstr(ddpm_last_error(), needle) != NULL;
}

#define EXPECT(expr, want, needle)                                                                                \
    do {                                                                                                          \
        CHECK_FAIL(expr, want);                                                                                   \
        CHECK_MSG(has(needle), "message '%s' lacks '%s'", ddpm_last_error(), needle);                             \
        CHECK_MSG(strchr(ddpm_last_error(), '\n') == NULL, "message '%s' is not one line", ddpm_last_error());    \
    } while (0)

/* max and mean |pixel - pattern| of a decoded test JPEG */
static void jpeg_error(const ddpm_image *img, int *maxe, double *meane) {
    *maxe = 0;
    double sum = 0.0;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < img->channels; c++) {
                int want;
                if (img->channels == 1) want = 40 + 8 * x + 5 * y;
                else want = c == 0 ? 20 + 10 * x : c == 1 ? 30 + 12 * y : 200 - 6 * x - 4 * y;
                int e = abs(img->pixels[((size_t)y * img->width + x) * img->channels + c] - want);
                if (e > *maxe) *maxe = e;
                sum += e;
            }
    *meane = sum / ((double)img->width * img->height * img->channels);
}

static void test_jpeg(void) {
    ddpm_image g, c, p, a, m;
    CHECK_OK(ddpm_jpeg_read(dd_test_data("jpeg/gray.jpg"), &g));
    CHECK(g.width == 16 && g.height == 12 && g.channels == 1 && g.pixels);
    int maxe = 0;
    double meane = 0.0;
    if (g.pixels) {
        jpeg_error(&g, &maxe, &meane);   /* quality 95, a smooth ramp */
        CHECK_MSG(maxe <= 4 && meane <= 1.5, "gray: max error %d, mean %.2f", maxe, meane);
    }
    CHECK_OK(ddpm_jpeg_read(dd_test_data("jpeg/rgb.jpg"), &c));
    CHECK(c.width == 16 && c.height == 12 && c.channels == 3 && c.pixels);
    if (c.pixels) {
        jpeg_error(&c, &maxe, &meane);   /* quality 95 with 4:2:0 chroma (13 and 1.9 here) */
        CHECK_MSG(maxe <= 16 && meane <= 2.5, "rgb: max error %d, mean %.2f", maxe, meane);
    }
    /* progressive holds the same coefficients as baseline: the same pixels */
    CHECK_OK(ddpm_jpeg_read(dd_test_data("jpeg/rgb_progressive.jpg"), &p));
    CHECK(p.pixels && c.pixels && p.width == 16 && p.channels == 3 && memcmp(p.pixels, c.pixels, 16 * 12 * 3) == 0);
    CHECK_OK(ddpm_jpeg_read(dd_test_data("jpeg/rgb_arith.jpg"), &a));   /* arithmetic coding, 4:4:4 */
    CHECK(a.width == 16 && a.height == 12 && a.channels == 3);
    if (a.pixels) {
        jpeg_error(&a, &maxe, &meane);
        CHECK_MSG(maxe <= 8 && meane <= 2.5, "arith: max error %d, mean %.2f", maxe, meane);
    }
    size_t n = 0;
    uint8_t *buf = slurp(dd_test_data("jpeg/rgb.jpg"), &n);
    CHECK_OK(ddpm_jpeg_read_memory(buf, n, &m));
    CHECK(m.pixels && c.pixels && m.width == 16 && memcmp(m.pixels, c.pixels, 16 * 12 * 3) == 0);
    free(buf);
    ddpm_image_free(&g);
    ddpm_image_free(&c);
    ddpm_image_free(&p);
    ddpm_image_free(&a);
    ddpm_image_free(&m);
    CHECK(m.pixels == NULL && m.width == 0);
}

static void fill(ddpm_image *img, int w, int h, int ch) {
    CHECK_OK(ddpm_image_alloc(img, w, h, ch));
}

static void test_resize(void) {
    /* a constant image stays constant at every size, shrinking and enlarging */
    ddpm_image k, o;
    fill(&k, 37, 23, 3);
    for (size_t i = 0; i < 37 * 23; i++) {
        k.pixels[3 * i] = 10;
        k.pixels[3 * i + 1] = 200;
        k.pixels[3 * i + 2] = 255;
    }
    static const int sizes[][2] = {{5, 7}, {64, 50}, {37, 23}, {100, 3}, {1, 1}, {36, 24}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        CHECK_OK(ddpm_image_resize(&k, sizes[s][0], sizes[s][1], &o));
        CHECK(o.width == sizes[s][0] && o.height == sizes[s][1] && o.channels == 3);
        int bad = 0;
        for (int i = 0; o.pixels && i < o.width * o.height; i++)
            bad += o.pixels[3 * i] != 10 || o.pixels[3 * i + 1] != 200 || o.pixels[3 * i + 2] != 255;
        CHECK_MSG(bad == 0, "%dx%d: %d pixels changed", sizes[s][0], sizes[s][1], bad);
        ddpm_image_free(&o);
    }
    ddpm_image_free(&k);

    /* 2x downscale of a checkerboard: every output is the 2x2 average 127.5, rounded */
    fill(&k, 8, 8, 1);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) k.pixels[y * 8 + x] = (x + y) % 2 ? 255 : 0;
    CHECK_OK(ddpm_image_resize(&k, 4, 4, &o));
    for (int i = 0; o.pixels && i < 16; i++) CHECK_MSG(o.pixels[i] == 127 || o.pixels[i] == 128, "%d", o.pixels[i]);
    ddpm_image_free(&o);
    ddpm_image_free(&k);

    /* area weights: 3 -> 2 averages [0, 1.5) and [1.5, 3) */
    fill(&k, 3, 1, 1);
    k.pixels[0] = 0;
    k.pixels[1] = 90;
    k.pixels[2] = 180;
    CHECK_OK(ddpm_image_resize(&k, 2, 1, &o));
    CHECK(o.pixels && o.pixels[0] == 30 && o.pixels[1] == 150);
    ddpm_image_free(&o);
    ddpm_image_free(&k);

    /* bilinear with half-pixel centres: 2 -> 4 samples at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) */
    fill(&k, 2, 1, 1);
    k.pixels[1] = 100;
    CHECK_OK(ddpm_image_resize(&k, 4, 1, &o));
    CHECK(o.pixels && o.pixels[0] == 0 && o.pixels[1] == 25 && o.pixels[2] == 75 && o.pixels[3] == 100);
    ddpm_image_free(&o);
    ddpm_image_free(&k);

    /* enlarging a ramp is monotone and keeps the end values; the same size is an exact copy */
    fill(&k, 4, 3, 1);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++) k.pixels[y * 4 + x] = (uint8_t)(85 * x);
    CHECK_OK(ddpm_image_resize(&k, 29, 7, &o));
    int mono = 1;
    for (int y = 0; o.pixels && y < 7; y++)
        for (int x = 1; x < 29; x++) mono &= o.pixels[y * 29 + x] >= o.pixels[y * 29 + x - 1];
    CHECK(mono && o.pixels && o.pixels[0] == 0 && o.pixels[28] == 255);
    ddpm_image_free(&o);
    for (int i = 0; i < 12; i++) k.pixels[i] = (uint8_t)(i * 37 + 5);
    CHECK_OK(ddpm_image_resize(&k, 4, 3, &o));
    CHECK(o.pixels && memcmp(o.pixels, k.pixels, 12) == 0);
    ddpm_image_free(&o);
    ddpm_image_free(&k);

    /* JPEG test image, shrunk: a ramp stays a ramp */
    CHECK_OK(ddpm_jpeg_read(dd_test_data("jpeg/gray.jpg"), &k));
    CHECK_OK(ddpm_image_resize(&k, 8, 6, &o));
    CHECK(o.width == 8 && o.height == 6 && o.channels == 1);
    for (int y = 0; o.pixels && y < 6; y++)
        for (int x = 0; x < 8; x++) {
            int want = 40 + 8 * (2 * x + 0.5) + 5 * (2 * y + 0.5);   /* the ramp's 2x2 average */
            CHECK_MSG(abs(o.pixels[y * 8 + x] - want) <= 3, "(%d, %d) = %d, want %d", x, y, o.pixels[y * 8 + x], want);
        }
    ddpm_image_free(&o);
    ddpm_image_free(&k);
}

/* Pixel (x, y, c) of image i of a dataset. */
static int ds_px(const ddpm_dataset *ds, int64_t i, int c, int y, int x) {
    size_t plane = (size_t)ds->height * (size_t)ds->width;
    return ds->pixels[((size_t)i * (size_t)ds->channels + (size_t)c) * plane + (size_t)y * (size_t)ds->width +
                      (size_t)x];
}

static void test_folder(void) {
    ddpm_dataset ds;
    const char *dir = dd_test_data("folder");
    char spec[1100];
    snprintf(spec, sizeof spec, "folder:%s", dir);
    CHECK_OK(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds));
    /* circles/{c1.png, c2.jpg, c3.png}, squares/{s1.png, s2.JPEG}; notes.txt and .hidden.png skipped */
    CHECK_MSG(ds.count == 5 && ds.channels == 3 && ds.height == 32 && ds.width == 32 && ds.num_classes == 2,
              "count %lld channels %d %dx%d classes %d", (long long)ds.count, ds.channels, ds.height, ds.width,
              ds.num_classes);
    static const int32_t want_labels[5] = {0, 0, 0, 1, 1};
    CHECK(ds.labels && memcmp(ds.labels, want_labels, sizeof want_labels) == 0);
    ddpm_image c3;
    CHECK_OK(ddpm_png_read(sub(dir, "circles/c3.png"), &c3));   /* 32 x 32: stored unchanged */
    int same = ds.pixels && c3.pixels;
    for (int y = 0; same && y < 32; y++)
        for (int x = 0; x < 32; x++)
            for (int c = 0; c < 3; c++) same &= ds_px(&ds, 2, c, y, x) == c3.pixels[(y * 32 + x) * 3 + c];
    CHECK_MSG(same, "circles/c3.png is not stored unchanged at its own size");
    /* c1.png is 40x30: resized to 42.67x32 and cropped in the middle; the disk is red in the centre */
    CHECK(ds.pixels && ds_px(&ds, 0, 0, 16, 16) > 180 && ds_px(&ds, 0, 1, 16, 16) < 90);
    /* s2.JPEG: a blue square */
    CHECK(ds.pixels && ds_px(&ds, 4, 2, 16, 16) > 160 && ds_px(&ds, 4, 0, 16, 16) < 80);
    ddpm_dataset_free(&ds);

    /* gray model: BT.601 luma of the colour pixels */
    CHECK_OK(ddpm_dataset_load_for_model(spec, NULL, 0, 32, 1, &ds));
    CHECK(ds.count == 5 && ds.channels == 1 && ds.num_classes == 2);
    same = ds.pixels && c3.pixels;
    for (int i = 0; same && i < 32 * 32; i++) {
        const uint8_t *p = c3.pixels + 3 * i;
        same &= ds.pixels[2 * 1024 + i] == (299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000;
    }
    CHECK_MSG(same, "gray conversion of circles/c3.png is not its luma");
    ddpm_dataset_free(&ds);

    /* other sizes: shrinking (16) and enlarging (64) */
    CHECK_OK(ddpm_dataset_load_for_model(spec, NULL, 1, 16, 3, &ds));
    CHECK(ds.count == 5 && ds.height == 16 && ds.width == 16);
    ddpm_dataset_free(&ds);
    CHECK_OK(ddpm_dataset_load_for_model("folder:", dir, 1, 64, 3, &ds));   /* "folder:" takes dir */
    CHECK(ds.count == 5 && ds.height == 64 && ds.width == 64);
    ddpm_dataset_free(&ds);

    /* images directly in the folder: unlabelled; gray images into an RGB model are replicated */
    const char *flat = dd_test_tmpdir("folder_flat");
    copy_file(dd_test_data("jpeg/gray.jpg"), flat, "b.jpg");
    copy_file(dd_test_data("io/gray.png"), flat, "a.PNG");
    copy_file(dd_test_data("io/gray.png"), flat, "readme.md");   /* not an image by name: ignored */
    mkdir(sub(flat, "empty"), 0755);                             /* no images: not a class */
    snprintf(spec, sizeof spec, "folder:%s", flat);
    CHECK_OK(ddpm_dataset_load_for_model(spec, NULL, 1, 8, 3, &ds));
    CHECK(ds.count == 2 && ds.num_classes == 0 && ds.labels && ds.labels[0] == 0 && ds.labels[1] == 0);
    int rep = ds.pixels != NULL;
    for (int i = 0; rep && i < 64; i++) rep &= ds.pixels[i] == ds.pixels[64 + i] && ds.pixels[i] == ds.pixels[128 + i];
    CHECK_MSG(rep, "gray image not replicated into three equal planes");
    ddpm_dataset_free(&ds);
    ddpm_image_free(&c3);
}

static void test_standard(void) {
    ddpm_dataset ds, ref;
    /* MNIST 28 -> 32: each image is ddpm_image_resize of the original */
    CHECK_OK(ddpm_dataset_load("mnist", repo("data/mnist-sample"), 1, &ref));
    CHECK_OK(ddpm_dataset_load_for_model("mnist", repo("data/mnist-sample"), 1, 32, 1, &ds));
    CHECK(ds.count == 64 && ds.channels == 1 && ds.height == 32 && ds.width == 32 && ds.num_classes == 10);
    CHECK(ds.labels && ref.labels && memcmp(ds.labels, ref.labels, 64 * sizeof(int32_t)) == 0);
    if (ds.pixels && ref.pixels) {
        ddpm_image in = {28, 28, 1, ref.pixels + 5 * 784}, out;
        CHECK_OK(ddpm_image_resize(&in, 32, 32, &out));
        CHECK(out.pixels && memcmp(out.pixels, ds.pixels + 5 * 1024, 1024) == 0);
        ddpm_image_free(&out);
    }
    ddpm_dataset rgb;
    CHECK_OK(ddpm_dataset_load_for_model("mnist", repo("data/mnist-sample"), 1, 32, 3, &rgb));
    CHECK(rgb.channels == 3 && rgb.count == 64);
    int rep = rgb.pixels && ds.pixels;
    for (int i = 0; rep && i < 64; i++)
        for (int c = 0; c < 3; c++) rep &= memcmp(rgb.pixels + (size_t)(i * 3 + c) * 1024, ds.pixels + i * 1024, 1024) == 0;
    CHECK_MSG(rep, "gray -> RGB is not the gray image in each plane");
    ddpm_dataset_free(&rgb);
    ddpm_dataset_free(&ds);
    /* the model's own size: unchanged */
    CHECK_OK(ddpm_dataset_load_for_model("mnist", repo("data/mnist-sample"), 1, 28, 1, &ds));
    CHECK(ds.pixels && ref.pixels && memcmp(ds.pixels, ref.pixels, 64 * 784) == 0);
    ddpm_dataset_free(&ds);
    ddpm_dataset_free(&ref);

    /* CIFAR-10 to a 16x16 gray model: luma, then a 2x area average */
    CHECK_OK(ddpm_dataset_load("cifar10", dd_test_data("io/cifar10"), 1, &ref));
    CHECK_OK(ddpm_dataset_load_for_model("cifar10", dd_test_data("io/cifar10"), 1, 16, 1, &ds));
    CHECK(ds.count == 8 && ds.channels == 1 && ds.height == 16 && ds.num_classes == 10);
    if (ds.pixels && ref.pixels) {
        int worst = 0;
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                double sum = 0.0;
                for (int k = 0; k < 4; k++) {
                    int i = (2 * y + k / 2) * 32 + 2 * x + k % 2;
                    const uint8_t *p = ref.pixels + 3072;   /* image 1 */
                    sum += (299 * p[i] + 587 * p[1024 + i] + 114 * p[2048 + i] + 500) / 1000;
                }
                int e = abs(ds.pixels[256 + y * 16 + x] - (int)floor(sum / 4 + 0.5));
                if (e > worst) worst = e;
            }
        CHECK_MSG(worst <= 1, "cifar gray 16x16 differs from the 2x2 luma average by %d", worst);
    }
    ddpm_dataset_free(&ds);
    ddpm_dataset_free(&ref);
}

/* The default data folder: $DDPM_DATA/<kind>, else $HOME/.cache/ddpm/<kind>. */
static void test_default_dir(void) {
    ddpm_dataset ds;
    const char *data = dd_test_tmpdir("ddpm_data");
    char want[1200];
    setenv("DDPM_DATA", data, 1);
    snprintf(want, sizeof want, "%s/mnist", data);
    EXPECT(ddpm_dataset_load("mnist", NULL, 1, &ds), DDPM_ERR_IO, want);
    CHECK(has("ddpm get-data mnist") && has("train-images-idx3-ubyte"));
    mkdir(want, 0755);
    static const char *files[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                   "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    char from[300];
    for (int i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "data/mnist-sample/%s", files[i]);
        copy_file(repo(from), want, files[i]);
    }
    CHECK_OK(ddpm_dataset_load("mnist", NULL, 0, &ds));
    CHECK(ds.count == 64 && ds.labels && ds.labels[0] == 7);
    ddpm_dataset_free(&ds);
    CHECK_OK(ddpm_dataset_load_for_model("mnist", NULL, 1, 32, 1, &ds));
    CHECK(ds.count == 64 && ds.height == 32);
    ddpm_dataset_free(&ds);
    EXPECT(ddpm_dataset_load_for_model("cifar10", NULL, 1, 32, 3, &ds), DDPM_ERR_IO, "ddpm get-data cifar10");
    unsetenv("DDPM_DATA");
    const char *home = dd_test_tmpdir("home");
    const char *old_home = getenv("HOME");
    char *saved = old_home ? strdup(old_home) : NULL;
    setenv("HOME", home, 1);
    snprintf(want, sizeof want, "%s/.cache/ddpm/fashion-mnist", home);
    EXPECT(ddpm_dataset_load("fashion-mnist", NULL, 1, &ds), DDPM_ERR_IO, want);
    CHECK(has("ddpm get-data fashion-mnist"));
    unsetenv("HOME");
    EXPECT(ddpm_dataset_load("cifar10", NULL, 1, &ds), DDPM_ERR_INVALID_ARG, "DDPM_DATA");
    if (saved) setenv("HOME", saved, 1);
    free(saved);
    /* a folder given explicitly: the hint names it */
    EXPECT(ddpm_dataset_load_for_model("fashion-mnist", "/nonexistent/fm", 1, 28, 1, &ds), DDPM_ERR_IO,
           "ddpm get-data fashion-mnist /nonexistent/fm");
    EXPECT(ddpm_dataset_load("cifar10", "/nonexistent/c10", 0, &ds), DDPM_ERR_IO,
           "ddpm get-data cifar10 /nonexistent/c10");
}

static void test_jpeg_faults(void) {
    ddpm_image img;
    size_t n = 0;
    uint8_t *good = slurp(dd_test_data("jpeg/rgb.jpg"), &n);
    EXPECT(ddpm_jpeg_read_memory(good, 0, &img), DDPM_ERR_FORMAT, "empty");
    CHECK(img.pixels == NULL);
    EXPECT(ddpm_jpeg_read_memory("GIF89a....", 10, &img), DDPM_ERR_FORMAT, "not a JPEG");
    EXPECT(ddpm_jpeg_read_memory(good, 20, &img), DDPM_ERR_FORMAT, "invalid JPEG");      /* cut in the header */
    EXPECT(ddpm_jpeg_read_memory(good, n - 60, &img), DDPM_ERR_FORMAT, "truncated");      /* cut in the scan */
    CHECK(img.pixels == NULL && img.width == 0);
    EXPECT(ddpm_jpeg_read_memory(good, 2, &img), DDPM_ERR_FORMAT, "not a JPEG");
    /* the frame header: FF C0 len(2) precision(1) height(2) width(2) */
    size_t sof = 0;
    for (size_t i = 2; i + 9 < n; i++)
        if (good[i] == 0xFF && (good[i + 1] == 0xC0 || good[i + 1] == 0xC1)) {
            sof = i;
            break;
        }
    CHECK(sof > 0);
    uint8_t *bad = malloc(n);
    memcpy(bad, good, n);
    bad[sof + 5] = 0x40;   /* height 16384 + 12: over the limit */
    bad[sof + 6] = 0x0C;
    EXPECT(ddpm_jpeg_read_memory(bad, n, &img), DDPM_ERR_FORMAT, "exceeds the limit");
    memcpy(bad, good, n);
    bad[sof + 5] = 0x3E;   /* 16000 x 16000 in a few hundred bytes */
    bad[sof + 6] = 0x80;
    bad[sof + 7] = 0x3E;
    bad[sof + 8] = 0x80;
    EXPECT(ddpm_jpeg_read_memory(bad, n, &img), DDPM_ERR_FORMAT, "truncated or hostile");
    memcpy(bad, good, n);
    bad[sof + 5] = 0;      /* height 0 */
    bad[sof + 6] = 0;
    EXPECT(ddpm_jpeg_read_memory(bad, n, &img), DDPM_ERR_FORMAT, "invalid JPEG");
    memcpy(bad, good, n);
    for (size_t i = n - 120; i < n - 20; i++) bad[i] = 0xFF;   /* garbage in the entropy-coded data */
    ddpm_status s = ddpm_jpeg_read_memory(bad, n, &img);
    CHECK_MSG(s == DDPM_ERR_FORMAT && ddpm_last_error()[0], "garbage scan: %s '%s'", ddpm_status_name(s),
              ddpm_last_error());
    ddpm_image_free(&img);
    free(bad);
    free(good);
    EXPECT(ddpm_jpeg_read(dd_test_data("jpeg/cmyk.jpg"), &img), DDPM_ERR_UNSUPPORTED, "CMYK");
    CHECK(has("cmyk.jpg") && img.pixels == NULL);
    EXPECT(ddpm_jpeg_read(dd_test_data("jpeg/ycck.jpg"), &img), DDPM_ERR_UNSUPPORTED, "YCCK");
    EXPECT(ddpm_jpeg_read("/nonexistent/x.jpg", &img), DDPM_ERR_IO, "/nonexistent/x.jpg");
    EXPECT(ddpm_jpeg_read(dd_test_data("io/gray.png"), &img), DDPM_ERR_FORMAT, "not a JPEG");
    EXPECT(ddpm_jpeg_read(NULL, &img), DDPM_ERR_INVALID_ARG, "path");
    CHECK_FAIL(ddpm_jpeg_read_memory(NULL, 5, &img), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_jpeg_read(dd_test_data("jpeg/rgb.jpg"), NULL), DDPM_ERR_INVALID_ARG);

    ddpm_image k, o;
    CHECK_OK(ddpm_image_alloc(&k, 4, 4, 1));
    EXPECT(ddpm_image_resize(&k, 0, 4, &o), DDPM_ERR_INVALID_ARG, "0x4");
    EXPECT(ddpm_image_resize(&k, 4, 70000, &o), DDPM_ERR_INVALID_ARG, "70000");
    EXPECT(ddpm_image_resize(NULL, 4, 4, &o), DDPM_ERR_INVALID_ARG, "ddpm_image_resize");
    CHECK_FAIL(ddpm_image_resize(&k, 4, 4, NULL), DDPM_ERR_INVALID_ARG);
    ddpm_image_free(&k);
}

static void test_folder_faults(void) {
    ddpm_dataset ds;
    char spec[1200];
    const char *empty = dd_test_tmpdir("folder_empty");
    snprintf(spec, sizeof spec, "folder:%s", empty);
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds), DDPM_ERR_INVALID_ARG, "no PNG or JPEG images found");
    CHECK(has(empty) && ds.pixels == NULL && ds.count == 0);
    copy_file(dd_test_data("io/gray.png"), empty, "notes.txt");   /* still nothing by name */
    copy_file(dd_test_data("io/gray.png"), empty, ".hidden.png");
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds), DDPM_ERR_INVALID_ARG, "no PNG or JPEG images found");

    /* mixed gray and colour: both named */
    const char *mixed = dd_test_tmpdir("folder_mixed");
    mkdir(sub(mixed, "a"), 0755);
    mkdir(sub(mixed, "b"), 0755);
    copy_file(dd_test_data("jpeg/rgb.jpg"), sub(mixed, "a"), "colour.jpg");
    copy_file(dd_test_data("jpeg/gray.jpg"), sub(mixed, "b"), "gray.jpg");
    snprintf(spec, sizeof spec, "folder:%s", mixed);
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds), DDPM_ERR_FORMAT, "mixed gray and colour");
    CHECK(has("'b/gray.jpg' is gray") && has("'a/colour.jpg' is colour"));
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 1, &ds), DDPM_ERR_FORMAT, "mixed gray and colour");

    /* images beside class sub-folders */
    const char *beside = dd_test_tmpdir("folder_beside");
    mkdir(sub(beside, "cls"), 0755);
    copy_file(dd_test_data("jpeg/rgb.jpg"), sub(beside, "cls"), "x.jpg");
    copy_file(dd_test_data("jpeg/rgb.jpg"), beside, "loose.jpg");
    snprintf(spec, sizeof spec, "folder:%s", beside);
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds), DDPM_ERR_INVALID_ARG, "alongside class");
    CHECK(has("loose.jpg") && has("cls/x.jpg"));

    /* a class sub-folder with no images */
    const char *hollow = dd_test_tmpdir("folder_hollow");
    mkdir(sub(hollow, "a"), 0755);
    mkdir(sub(hollow, "b"), 0755);
    copy_file(dd_test_data("jpeg/rgb.jpg"), sub(hollow, "a"), "x.jpg");
    snprintf(spec, sizeof spec, "folder:%s", hollow);
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds), DDPM_ERR_INVALID_ARG, "'b' holds no PNG or JPEG");

    /* corrupt, truncated and CMYK images are named */
    const char *bad = dd_test_tmpdir("folder_bad");
    size_t n = 0;
    uint8_t *good = slurp(dd_test_data("jpeg/rgb.jpg"), &n);
    dd_write_bytes(sub(bad, "cut.jpg"), good, n - 60);
    snprintf(spec, sizeof spec, "folder:%s", bad);
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds), DDPM_ERR_FORMAT, "cut.jpg");
    CHECK(has("truncated") && ds.pixels == NULL);
    remove(sub(bad, "cut.jpg"));
    dd_write_bytes(sub(bad, "junk.jpeg"), "this is not an image", 20);
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 32, 3, &ds), DDPM_ERR_FORMAT, "junk.jpeg");
    remove(sub(bad, "junk.jpeg"));
    dd_write_bytes(sub(bad, "fake.png"), good, n);   /* a JPEG under a .png name is read as what it is */
    CHECK_OK(ddpm_dataset_load_for_model(spec, NULL, 1, 8, 3, &ds));
    CHECK(ds.count == 1);
    ddpm_dataset_free(&ds);
    dd_write_bytes(sub(bad, "fake.png"), "\x89PNG\r\n\x1a\nxxxx", 12);
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 8, 3, &ds), DDPM_ERR_FORMAT, "fake.png");
    remove(sub(bad, "fake.png"));
    copy_file(dd_test_data("jpeg/cmyk.jpg"), bad, "ink.jpg");
    EXPECT(ddpm_dataset_load_for_model(spec, NULL, 1, 8, 3, &ds), DDPM_ERR_UNSUPPORTED, "ink.jpg");
    free(good);

    EXPECT(ddpm_dataset_load_for_model("folder:/nonexistent/pics", NULL, 1, 32, 3, &ds), DDPM_ERR_IO,
           "/nonexistent/pics");
    EXPECT(ddpm_dataset_load_for_model("folder:", NULL, 1, 32, 3, &ds), DDPM_ERR_INVALID_ARG, "folder:DIR");
    EXPECT(ddpm_dataset_load_for_model("imagenet", NULL, 1, 32, 3, &ds), DDPM_ERR_INVALID_ARG, "folder:DIR");
    EXPECT(ddpm_dataset_load_for_model("mnist", NULL, 1, 0, 1, &ds), DDPM_ERR_INVALID_ARG, "1 or 3 channels");
    EXPECT(ddpm_dataset_load_for_model("mnist", NULL, 1, 32, 2, &ds), DDPM_ERR_INVALID_ARG, "2 channels");
    CHECK_FAIL(ddpm_dataset_load_for_model(NULL, NULL, 1, 32, 3, &ds), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_dataset_load_for_model("mnist", NULL, 1, 32, 3, NULL), DDPM_ERR_INVALID_ARG);
    /* corrupt dataset files: the reader's message names the file */
    const char *mn = dd_test_tmpdir("mnist_bad");
    copy_file(repo("data/mnist-sample/train-labels-idx1-ubyte.gz"), mn, "train-labels-idx1-ubyte.gz");
    dd_write_bytes(sub(mn, "train-images-idx3-ubyte"), "\0\0\x08\x03\0\0\0\x40", 8);
    EXPECT(ddpm_dataset_load_for_model("mnist", mn, 1, 32, 1, &ds), DDPM_ERR_FORMAT, "train-images-idx3-ubyte");
    CHECK(ds.pixels == NULL && ds.count == 0);
}

int main(int argc, char **argv) {
    int fault = argc > 1 && strcmp(argv[1], "fault") == 0;
    if (fault) {
        test_jpeg_faults();
        test_folder_faults();
    } else {
        test_jpeg();
        test_resize();
        test_folder();
        test_standard();
        test_default_dir();
    }
    return dd_test_finish(fault ? "test_data_folder fault" : "test_data_folder unit");
}
