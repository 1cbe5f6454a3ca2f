/* test_plot.c — ddpm_plot_render / ddpm_plot_lines / ddpm_image_strip / ddpm_noise_strip / ddpm_schedule_plot:
   sizes, pixels, text chunks and the rejection of bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Pixels that are not (near) white, to see that something was drawn. */
static long ink(const ddpm_image *img) {
    long n = 0;
    size_t total = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    for (size_t i = 0; i < total; i++) n += img->pixels[i] < 200;
    return n;
}

static void test_render(void) {
    double x[100], y1[100], y2[100];
    for (int i = 0; i < 100; i++) {
        x[i] = i;
        y1[i] = sqrt(1.0 - i / 100.0);
        y2[i] = sqrt(i / 100.0);
    }
    ddpm_plot_series s[2];
    memset(s, 0, sizeof s);
    s[0].label = "\xE2\x88\x9A\xE1\xBE\xB1";
    s[0].x = x; s[0].y = y1; s[0].n = 100;
    s[0].rgb[0] = s[0].rgb[1] = s[0].rgb[2] = -1;
    s[1].label = "\xE2\x88\x9A(1\xE2\x88\x92\xE1\xBE\xB1)";
    s[1].x = x; s[1].y = y2; s[1].n = 100;
    s[1].rgb[0] = 0.8; s[1].rgb[1] = 0.1; s[1].rgb[2] = 0.1;
    s[1].dashed = 1;
    ddpm_plot p;
    memset(&p, 0, sizeof p);
    p.title = "test";
    p.xlabel = "timestep t";
    p.ylabel = "value";
    p.series = s;
    p.nseries = 2;
    p.ymin = 0;
    p.ymax = 1;

    ddpm_image img;
    memset(&img, 0, sizeof img);
    CHECK_OK(ddpm_plot_render(&p, &img));
    CHECK(img.width == 900 && img.height == 560 && img.channels == 3);
    if (img.pixels) {
        CHECK(img.pixels[0] == 255 && img.pixels[1] == 255 && img.pixels[2] == 255);   /* white corner */
        CHECK(ink(&img) > 2000);
        /* the red series is drawn in its own colour somewhere */
        long red = 0;
        for (size_t i = 0; i < (size_t)img.width * (size_t)img.height; i++) {
            const uint8_t *q = img.pixels + 3 * i;
            red += q[0] > 180 && q[1] < 60 && q[2] < 60;
        }
        CHECK(red > 100);
    }
    ddpm_image_free(&img);

    p.width = 400;
    p.height = 300;
    CHECK_OK(ddpm_plot_render(&p, &img));
    CHECK(img.width == 400 && img.height == 300);
    ddpm_image_free(&img);

    /* one point, automatic ranges, no labels at all */
    ddpm_plot_series one;
    memset(&one, 0, sizeof one);
    double ox = 3, oy = 3;
    one.x = &ox; one.y = &oy; one.n = 1;
    one.rgb[0] = one.rgb[1] = one.rgb[2] = -1;
    ddpm_plot q;
    memset(&q, 0, sizeof q);
    q.series = &one;
    q.nseries = 1;
    CHECK_OK(ddpm_plot_render(&q, &img));
    ddpm_image_free(&img);

    /* bad input */
    CHECK_FAIL(ddpm_plot_render(NULL, &img), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_plot_render(&p, NULL), DDPM_ERR_INVALID_ARG);
    p.nseries = 0;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    p.nseries = 2;
    p.width = 100000;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    p.width = -5;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    p.width = 0;
    p.height = 0;
    y1[17] = NAN;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    y1[17] = INFINITY;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    y1[17] = 0.5;
    s[0].n = 0;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    s[0].n = 100;
    s[1].rgb[1] = 2;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    s[1].rgb[1] = 0.1;
    p.ymin = 2;
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    p.ymin = 0;
    p.title = "\xff\xfe bad";
    CHECK_FAIL(ddpm_plot_render(&p, &img), DDPM_ERR_INVALID_ARG);
    p.title = "ok";
    CHECK(img.pixels == NULL);

    /* to a file, with the settings in a tEXt chunk */
    const char *dir = dd_test_tmpdir("plot");
    char path[1100];
    snprintf(path, sizeof path, "%s/plot.png", dir);
    const char *text[] = {"ddpm", "schedule --T 1000", NULL};
    p.text = text;
    CHECK_OK(ddpm_plot_lines(path, &p));
    char *value = NULL;
    CHECK_OK(ddpm_png_read_text(path, "ddpm", &value));
    CHECK(value && strcmp(value, "schedule --T 1000") == 0);
    ddpm_free(value);
    ddpm_image back;
    memset(&back, 0, sizeof back);
    CHECK_OK(ddpm_png_read(path, &back));
    CHECK(back.width == 900 && back.height == 560);
    ddpm_image_free(&back);
}

static void test_strip(void) {
    enum { N = 6, H = 7, W = 5 };
    float x[N * H * W];
    for (int i = 0; i < N * H * W; i++) x[i] = (float)((i % 11) / 5.0 - 1.0);
    x[0] = -1.0f;   /* black */
    x[1] = 1.0f;    /* white */
    x[2] = 3.0f;    /* clamped to white */
    const char *caps[N] = {"t = 0", "t = 50", "t = 100", "t = 250", "t = 500", "t = 999"};
    ddpm_image img;
    memset(&img, 0, sizeof img);
    CHECK_OK(ddpm_image_strip(&img, x, N, 1, H, W, caps, 4));
    /* N cells of W*scale with 8 px around and between */
    CHECK(img.width == N * W * 4 + (N + 1) * 8);
    CHECK(img.height > 8 + H * 4 + 8);
    CHECK(img.channels == 1);
    if (img.pixels) {
        CHECK(img.pixels[0] == 255);
        const uint8_t *cell = img.pixels + (size_t)8 * (size_t)img.width + 8;   /* first cell's top-left */
        CHECK(cell[0] == 0 && cell[3] == 0);                /* x[0] = -1, 4 px wide */
        CHECK(cell[4] == 255 && cell[8] == 255);            /* x[1] = 1, x[2] clamped */
        CHECK(cell[3 * img.width] == 0);                    /* 4 px tall */
        /* caption ink below the cells */
        long below = 0;
        for (int yy = 8 + H * 4 + 1; yy < img.height; yy++)
            for (int xx = 0; xx < img.width; xx++) below += img.pixels[(size_t)yy * (size_t)img.width + (size_t)xx] < 128;
        CHECK(below > 50);
    }
    ddpm_image_free(&img);

    /* RGB, scale 1, no captions: only padding */
    float rgb[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++) rgb[i] = 0.0f;
    rgb[0] = 1.0f;                    /* image 0, red plane, pixel (0,0) */
    CHECK_OK(ddpm_image_strip(&img, rgb, 2, 3, 2, 2, NULL, 1));
    CHECK(img.width == 2 * 2 + 3 * 8 && img.height == 8 + 2 + 8 && img.channels == 3);
    if (img.pixels) {
        const uint8_t *px = img.pixels + ((size_t)8 * (size_t)img.width + 8) * 3;
        CHECK(px[0] == 255 && px[1] == 128 && px[2] == 128);
    }
    ddpm_image_free(&img);

    /* bad input */
    CHECK_FAIL(ddpm_image_strip(NULL, x, N, 1, H, W, caps, 4), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_strip(&img, NULL, N, 1, H, W, caps, 4), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_strip(&img, x, 0, 1, H, W, caps, 4), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_strip(&img, x, N, 2, H, W, caps, 4), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_strip(&img, x, N, 1, H, W, caps, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_strip(&img, x, N, 1, H, W, caps, 65), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_strip(&img, x, 1, 1, 30000, 30000, NULL, 1), DDPM_ERR_INVALID_ARG);
    x[5] = NAN;
    CHECK_FAIL(ddpm_image_strip(&img, x, N, 1, H, W, caps, 4), DDPM_ERR_NUMERIC);
    x[5] = 0;
    const char *bad[N] = {"t = 0", "\xc3\x28", NULL, NULL, NULL, NULL};
    CHECK_FAIL(ddpm_image_strip(&img, x, N, 1, H, W, bad, 4), DDPM_ERR_INVALID_ARG);
    CHECK(img.pixels == NULL);
    /* a caption wider than its cell is shrunk, never widening the strip */
    const char *wide[N] = {"a very long caption that cannot fit", NULL, NULL, NULL, NULL, NULL};
    CHECK_OK(ddpm_image_strip(&img, x, N, 1, H, W, wide, 1));
    CHECK(img.width == N * W + (N + 1) * 8);
    ddpm_image_free(&img);
}

/* The forward-process strip is q_sample of one eps (stream (NOISING, 0, item)) drawn by ddpm_image_strip. */
static void test_noise_strip(void) {
    enum { C = 1, H = 6, W = 5, D = C * H * W, N = 3 };
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    float x0[D], eps[D], x0s[N * D], xt[N * D];
    for (int i = 0; i < D; i++) x0[i] = (float)((i % 7) / 3.0 - 1.0);
    const int64_t t[N] = {0, 250, 999};
    ddpm_rng_normal_f32(7, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 5), 0, eps, D);
    for (int i = 0; i < N; i++) {
        memcpy(x0s + i * D, x0, sizeof x0);
        memcpy(xt + i * D, eps, sizeof eps);
    }
    ddpm_q_sample(d, xt, x0s, xt, t, N, D);
    const char *caps[N] = {"t = 0", "t = 250", "t = 999"};
    ddpm_image want, got;
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    CHECK_OK(ddpm_image_strip(&want, xt, N, C, H, W, caps, 3));
    CHECK_OK(ddpm_noise_strip(d, x0, C, H, W, 7, 5, t, N, 3, &got));
    CHECK(got.width == want.width && got.height == want.height && got.channels == want.channels);
    CHECK(got.pixels && want.pixels &&
          memcmp(got.pixels, want.pixels, (size_t)want.width * (size_t)want.height * (size_t)want.channels) == 0);
    ddpm_image_free(&got);
    /* another item has other noise */
    CHECK_OK(ddpm_noise_strip(d, x0, C, H, W, 7, 6, t, N, 3, &got));
    CHECK(got.pixels && memcmp(got.pixels, want.pixels, (size_t)want.width * (size_t)want.height) != 0);
    ddpm_image_free(&got);
    ddpm_image_free(&want);
    const int64_t bad[1] = {1000};
    CHECK_FAIL(ddpm_noise_strip(d, x0, C, H, W, 7, 0, bad, 1, 3, &got), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_noise_strip(d, x0, C, H, W, 7, 0, t, 0, 3, &got), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_noise_strip(d, x0, C, H, W, 7, 0, t, N, 0, &got), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_noise_strip(NULL, x0, C, H, W, 7, 0, t, N, 3, &got), DDPM_ERR_INVALID_ARG);
    CHECK(got.pixels == NULL);
    ddpm_diffusion_free(d);
}

static void test_schedule_plot(void) {
    ddpm_diffusion *d[2] = {dd_test_diffusion("linear", 100), dd_test_diffusion("cosine", 100)};
    const char *names[2] = {"linear", "cosine"}, *text[] = {"ddpm", "schedule --T 100", NULL};
    const char *dir = dd_test_tmpdir("schedule_plot");
    char path[1100];
    snprintf(path, sizeof path, "%s/schedules.png", dir);
    CHECK_OK(ddpm_schedule_plot(path, (const ddpm_diffusion *const *)d, names, 2, 640, 400, text));
    ddpm_image back;
    memset(&back, 0, sizeof back);
    CHECK_OK(ddpm_png_read(path, &back));
    CHECK(back.width == 640 && back.height == 400);
    ddpm_image_free(&back);
    char *value = NULL;
    CHECK_OK(ddpm_png_read_text(path, "ddpm", &value));
    CHECK(value && strcmp(value, "schedule --T 100") == 0);
    ddpm_free(value);
    ddpm_diffusion *other = dd_test_diffusion("linear", 50);
    const ddpm_diffusion *mixed[2] = {d[0], other};
    CHECK_FAIL(ddpm_schedule_plot(path, mixed, names, 2, 640, 400, NULL), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_schedule_plot(path, (const ddpm_diffusion *const *)d, names, 0, 640, 400, NULL),
               DDPM_ERR_INVALID_ARG);
    ddpm_diffusion_free(other);
    ddpm_diffusion_free(d[0]);
    ddpm_diffusion_free(d[1]);
    dd_test_remove_dir(dir);
}

int main(void) {
    test_render();
    test_strip();
    test_noise_strip();
    test_schedule_plot();
    return dd_test_finish("test_plot");
}
