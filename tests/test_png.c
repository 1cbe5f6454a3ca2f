/* test_png.c — PNG reading (gray, RGB, palette with transparency, gray+alpha, 16-bit RGBA, 1-bit,
   interlaced), writing with tEXt chunks, sample grids and image-to-float conversion. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static uint8_t over_white(unsigned v, unsigned a) {
    return (uint8_t)((v * a + 255u * (255u - a) + 127u) / 255u);
}

static uint8_t scale16(unsigned v) {
    return (uint8_t)lround(v * 255.0 / 65535.0);
}

static void check_image(const char *what, const ddpm_image *img, int w, int h, int c, const uint8_t *want) {
    CHECK_MSG(img->width == w && img->height == h && img->channels == c, "%s: %dx%dx%d, want %dx%dx%d", what,
              img->width, img->height, img->channels, w, h, c);
    if (img->width != w || img->height != h || img->channels != c || !img->pixels) return;
    for (int i = 0; i < w * h * c; i++)
        if (img->pixels[i] != want[i]) {
            CHECK_MSG(0, "%s: byte %d (x %d, y %d, c %d) is %u, want %u", what, i, (i / c) % w, i / c / w, i % c,
                      img->pixels[i], want[i]);
            return;
        }
}

static void test_read(void) {
    ddpm_image img;
    uint8_t want[8 * 8 * 3];
    CHECK_OK(ddpm_png_read(dd_test_data("io/gray.png"), &img));
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++) want[y * 8 + x] = (uint8_t)((x * 37 + y * 11) % 256);
    check_image("gray.png", &img, 8, 6, 1, want);
    ddpm_image_free(&img);
    CHECK(img.pixels == NULL && img.width == 0);

    CHECK_OK(ddpm_png_read(dd_test_data("io/rgb.png"), &img));
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++) {
            uint8_t *p = want + (y * 5 + x) * 3;
            p[0] = (uint8_t)(x * 50);
            p[1] = (uint8_t)(y * 60);
            p[2] = (uint8_t)((x + y) * 20);
        }
    check_image("rgb.png", &img, 5, 4, 3, want);
    ddpm_image_free(&img);

    /* 2-bit palette, tRNS alphas 255, 0, 128 (entry 3 opaque) */
    static const uint8_t pal[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
    static const unsigned alpha[4] = {255, 0, 128, 255};
    CHECK_OK(ddpm_png_read(dd_test_data("io/palette.png"), &img));
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++) {
                int i = (x + y) % 4;
                want[(y * 4 + x) * 3 + c] = over_white(pal[i][c], alpha[i]);
            }
    check_image("palette.png", &img, 4, 3, 3, want);
    ddpm_image_free(&img);

    CHECK_OK(ddpm_png_read(dd_test_data("io/gray_alpha.png"), &img));
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++) want[y * 4 + x] = over_white((unsigned)(40 * x + 10 * y), (unsigned)(85 * x));
    check_image("gray_alpha.png", &img, 4, 2, 1, want);
    ddpm_image_free(&img);

    CHECK_OK(ddpm_png_read(dd_test_data("io/rgba16.png"), &img));
    static const unsigned a16[3] = {0, 32768, 65535};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
            unsigned v[3] = {(unsigned)(1000 * x + 7), (unsigned)(30000 + y * 20000), (unsigned)(65535 - x * 300)};
            for (int c = 0; c < 3; c++) want[(y * 3 + x) * 3 + c] = over_white(scale16(v[c]), scale16(a16[x]));
        }
    check_image("rgba16.png", &img, 3, 2, 3, want);
    ddpm_image_free(&img);

    CHECK_OK(ddpm_png_read(dd_test_data("io/gray1.png"), &img));
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 9; x++) want[y * 9 + x] = (x + y) % 2 ? 255 : 0;
    check_image("gray1.png", &img, 9, 2, 1, want);
    ddpm_image_free(&img);

    CHECK_OK(ddpm_png_read(dd_test_data("io/interlaced.png"), &img));
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 7; x++) {
            uint8_t *p = want + (y * 7 + x) * 3;
            p[0] = (uint8_t)(x * 30);
            p[1] = (uint8_t)(y * 30);
            p[2] = (uint8_t)(x * y);
        }
    check_image("interlaced.png", &img, 7, 7, 3, want);
    ddpm_image_free(&img);

    char *v = NULL;
    CHECK_OK(ddpm_png_read_text(dd_test_data("io/gray.png"), "ddpm", &v));
    CHECK(v && strcmp(v, "seed=7 sampler=ddim") == 0);
    ddpm_free(v);
    CHECK_OK(ddpm_png_read_text(dd_test_data("io/gray.png"), "absent", &v));
    CHECK(v == NULL);
    ddpm_image_free(NULL);
}

static void test_write(void) {
    const char *dir = dd_test_tmpdir("png_write");
    char path[1200];
    ddpm_image img, back;
    CHECK_OK(ddpm_image_alloc(&img, 17, 5, 3));
    for (int i = 0; i < 17 * 5 * 3; i++) CHECK(img.pixels[i] == 0);
    for (int i = 0; i < 17 * 5 * 3; i++) img.pixels[i] = (uint8_t)(i * 7 + 3);
    const char *text[] = {"ddpm", "sampler=ddim steps=50 seed=42", "Comment", "a\nb", NULL};
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    CHECK_OK(ddpm_png_write(path, &img, text));
    CHECK_OK(ddpm_png_read(path, &back));
    check_image("rgb round trip", &back, 17, 5, 3, img.pixels);
    ddpm_image_free(&back);
    char *v = NULL;
    CHECK_OK(ddpm_png_read_text(path, "ddpm", &v));
    CHECK(v && strcmp(v, "sampler=ddim steps=50 seed=42") == 0);
    ddpm_free(v);
    CHECK_OK(ddpm_png_read_text(path, "Comment", &v));
    CHECK(v && strcmp(v, "a\nb") == 0);
    ddpm_free(v);
    ddpm_image_free(&img);

    CHECK_OK(ddpm_image_alloc(&img, 3, 300, 1));
    for (int i = 0; i < 900; i++) img.pixels[i] = (uint8_t)(i % 251);
    snprintf(path, sizeof path, "%s/gray.png", dir);
    CHECK_OK(ddpm_png_write(path, &img, NULL));
    CHECK_OK(ddpm_png_read(path, &back));
    check_image("gray round trip", &back, 3, 300, 1, img.pixels);
    ddpm_image_free(&back);

    /* reading from memory */
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK_OK(ddpm_png_read_memory(buf, n, &back));
    check_image("gray from memory", &back, 3, 300, 1, img.pixels);
    ddpm_image_free(&back);

    const char *badkey[] = {" lead", "x", NULL};
    CHECK_FAIL(ddpm_png_write(path, &img, badkey), DDPM_ERR_INVALID_ARG);
    const char *nov[] = {"key", NULL, NULL};
    CHECK_FAIL(ddpm_png_write(path, &img, nov), DDPM_ERR_INVALID_ARG);
    snprintf(path, sizeof path, "%s/missing/dir/x.png", dir);
    CHECK_FAIL(ddpm_png_write(path, &img, NULL), DDPM_ERR_IO);
    img.channels = 2;
    CHECK_FAIL(ddpm_png_write(path, &img, NULL), DDPM_ERR_INVALID_ARG);
    img.channels = 1;
    ddpm_image_free(&img);
    CHECK_FAIL(ddpm_image_alloc(&img, 0, 5, 1), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_alloc(&img, 5, 5, 4), DDPM_ERR_INVALID_ARG);
}

static void test_grid(void) {
    /* 5 gray 2x3 images, 3 columns (ceil sqrt 5), pad 1 of value 7: 13 x 7 pixels */
    float x[5 * 6];
    const float vals[6] = {-1.0f, 1.0f, 0.0f, NAN, 2.0f, 0.5f};
    const uint8_t pix[6] = {0, 255, 128, 0, 255, 191};
    for (int n = 0; n < 5; n++)
        for (int i = 0; i < 6; i++) x[n * 6 + i] = vals[(i + n) % 6];
    ddpm_image g;
    CHECK_OK(ddpm_image_grid(&g, x, 5, 1, 2, 3, 0, 1, 7));
    CHECK(g.width == 13 && g.height == 7 && g.channels == 1);
    if (g.pixels && g.width == 13 && g.height == 7) {
        for (int n = 0; n < 6; n++) {
            int x0 = 1 + (n % 3) * 4, y0 = 1 + (n / 3) * 3;
            for (int yy = 0; yy < 2; yy++)
                for (int xx = 0; xx < 3; xx++) {
                    uint8_t want = n < 5 ? pix[(yy * 3 + xx + n) % 6] : 7;
                    CHECK_MSG(g.pixels[(y0 + yy) * 13 + x0 + xx] == want, "cell %d (%d,%d)", n, xx, yy);
                }
        }
        for (int xx = 0; xx < 13; xx++) CHECK(g.pixels[xx] == 7 && g.pixels[3 * 13 + xx] == 7 && g.pixels[6 * 13 + xx] == 7);
        for (int yy = 0; yy < 7; yy++) CHECK(g.pixels[yy * 13] == 7 && g.pixels[yy * 13 + 4] == 7 && g.pixels[yy * 13 + 12] == 7);
    }
    ddpm_image_free(&g);
    /* RGB, explicit columns, no padding: channels interleaved */
    float c[2 * 3 * 1 * 2] = {-1, 1, 0, 0, 1, -1, /* image 1: */ 1, 1, -1, -1, 0, 0};
    CHECK_OK(ddpm_image_grid(&g, c, 2, 3, 1, 2, 1, 0, 0));
    CHECK(g.width == 2 && g.height == 2 && g.channels == 3);
    const uint8_t want[12] = {0, 128, 255, 255, 128, 0, 255, 0, 128, 255, 0, 128};
    if (g.pixels) CHECK(memcmp(g.pixels, want, 12) == 0);
    /* back to model space */
    float f[12];
    ddpm_image_to_f32(&g, f);
    CHECK(f[0] == -1.0f && f[1] == 1.0f && f[2] == 1.0f && f[4] == (float)(128 / 127.5 - 1) && f[6] == -1.0f);
    ddpm_image_free(&g);
    CHECK_FAIL(ddpm_image_grid(&g, c, 0, 3, 1, 2, 1, 0, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_grid(&g, c, 2, 2, 1, 2, 1, 0, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_grid(&g, c, 2, 3, 100000, 2, 1, 0, 0), DDPM_ERR_INVALID_ARG);
}

int main(void) {
    test_read();
    test_write();
    test_grid();
    return dd_test_finish("test_png");
}
