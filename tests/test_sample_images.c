/* test_sample_images.c — the library calls behind the sampling commands: N images in chunks (ddpm_sample_images:
   the same images for any chunk size, x_T modes, inpainting and DDIM inversion, the chunk callback), class labels
   and the guidance weight of a run (ddpm_class_labels), folders of images written whole or not at all, sample
   tensors and x_T files, the grid, stack and trajectory pictures, img2img's start, forward noise per image and the
   one-step x0 estimate. The networks are the tiny fixture UNets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

enum { MAXN = 8 };

/* A model of tests/data, loaded only (the calls under test prepare it). */
static ddpm_model *load(const char *rel) { return dd_test_model(dd_test_data(rel), 0, DDPM_ENGINE_FAST, 0, 0); }

typedef struct {
    int calls;
    int64_t first[MAXN], n[MAXN];
} chunks;

static ddpm_status on_chunk(void *user, int64_t first, int64_t n, int64_t N) {
    chunks *c = user;
    (void)N;
    if (c->calls < MAXN) c->first[c->calls] = first, c->n[c->calls] = n;
    c->calls++;
    return DDPM_OK;
}

static int rows_equal(const double *x, int64_t a, int64_t b, int64_t D) {
    return memcmp(x + a * D, x + b * D, sizeof(double) * (size_t)D) == 0;
}

/* The same images for chunks of 1, 3 and N, equal to one ddpm_sample_loop over all N; guided and not. */
static void test_chunks(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    ddpm_model *m = load("unet_tiny_class");
    CHECK_OK(ddpm_model_set_null_class(m, 9));
    const int64_t D = dd_test_model_d(m), N = 5;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(N * D));
    int64_t *labels = NULL;
    static const int64_t cls[] = {3, 1};
    double w = 0;
    CHECK_OK(ddpm_class_labels(m, cls, 2, N, 1, NAN, &labels, &w));
    CHECK(w == 2.0 && labels && labels[0] == 3 && labels[1] == 1 && labels[4] == 3);
    for (int variant = 0; variant < 2; variant++) {
        ddpm_sampler_config cfg;
        ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
        cfg.steps = 4;
        cfg.eta = 0.5;
        cfg.seed = 7;
        ddpm_sample_request r;
        ddpm_sample_request_default(&r);
    r.engine = DDPM_ENGINE_REFERENCE;
        r.guidance = variant ? w : 1.0;
        r.labels = labels;
        /* the reference: x_T of the seed, one loop over all images */
        ddpm_guided *g = NULL;
        CHECK_OK(ddpm_guided_prepare(m, r.guidance, (int)N, DDPM_ENGINE_REFERENCE, &g));
        CHECK_OK(ddpm_guided_set_labels(g, labels, N));
        ddpm_sample_init_noise(cfg.seed, 0, N, D, 0, y);
        CHECK_OK(ddpm_sample_loop(d, &cfg, ddpm_guided_fn, g, y, N, D, 0));
        ddpm_guided_free(g);
        static const int sizes[] = {1, 3, 5, 64};
        for (int k = 0; k < 4; k++) {
            chunks seen = {0};
            r.chunk = sizes[k];
            r.on_chunk = on_chunk;
            r.chunk_user = &seen;
            memset(x, 0, sizeof(double) * (size_t)(N * D));
            CHECK_OK(ddpm_sample_images(m, d, &cfg, &r, x, N));
            CHECK_MSG(memcmp(x, y, sizeof(double) * (size_t)(N * D)) == 0, "variant %d: chunks of %d differ",
                      variant, sizes[k]);
            int want = (int)((N + (sizes[k] < N ? sizes[k] : N) - 1) / (sizes[k] < N ? sizes[k] : N));
            CHECK(seen.calls == want && seen.first[0] == 0);
            if (sizes[k] == 3) CHECK(seen.first[1] == 3 && seen.n[1] == 2);
        }
    }
    /* shared x_T and shared noise at every step: identical images, whatever the chunks */
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
    cfg.steps = 3;
    cfg.repeat_noise_steps = 3;
    ddpm_sample_request r;
    ddpm_sample_request_default(&r);
    r.engine = DDPM_ENGINE_REFERENCE;
    r.xt = DDPM_XT_SHARED;
    r.chunk = 2;
    CHECK_OK(ddpm_sample_images(m, d, &cfg, &r, x, N));   /* no labels: the null class */
    for (int64_t i = 1; i < N; i++) CHECK(rows_equal(x, 0, i, D));
    /* given x_T is used as is */
    ddpm_sample_init_noise(3, 0, N, D, 0, y);
    memcpy(x, y, sizeof(double) * (size_t)(N * D));
    r.xt = DDPM_XT_GIVEN;
    r.chunk = 5;
    cfg.repeat_noise_steps = -1;
    CHECK_OK(ddpm_sample_images(m, d, &cfg, &r, x, N));
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
    cfg.steps = 3;
    r.chunk = 2;
    CHECK_OK(ddpm_sample_images(m, d, &cfg, &r, y, N));
    CHECK(memcmp(x, y, sizeof(double) * (size_t)(N * D)) == 0);
    ddpm_free(labels);
    free(x);
    free(y);
    ddpm_model_free(m);
    ddpm_diffusion_free(d);
}

/* Inpainting and DDIM inversion in chunks: the same as one call of their loops. */
static void test_chunked_apps(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    ddpm_model *m = load("unet_tiny");
    const int64_t D = dd_test_model_d(m), N = 4;
    const size_t nd = (size_t)(N * D);
    double *x = malloc(sizeof(double) * nd), *y = malloc(sizeof(double) * nd);
    double *known = malloc(sizeof(double) * nd), *mask = malloc(sizeof(double) * nd);
    ddpm_sample_init_noise(11, 0, N, D, 0, known);
    for (size_t j = 0; j < nd; j++) mask[j] = (j % (size_t)D) < (size_t)D / 2 ? 1.0 : 0.0;
    ddpm_inpaint_config ic;
    ddpm_inpaint_config_default(&ic);
    ic.jump_length = 2;
    ic.jump_n_sample = 2;
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
    cfg.steps = 6;
    cfg.seed = 2;
    ddpm_guided *g = NULL;
    CHECK_OK(ddpm_guided_prepare(m, 1.0, (int)N, DDPM_ENGINE_REFERENCE, &g));
    CHECK_OK(ddpm_guided_set_labels(g, NULL, N));
    ddpm_sample_init_noise(cfg.seed, 0, N, D, 0, y);
    CHECK_OK(ddpm_inpaint_loop(d, &cfg, &ic, ddpm_guided_fn, g, y, known, mask, N, D, 0));
    ddpm_sample_request r;
    ddpm_sample_request_default(&r);
    r.engine = DDPM_ENGINE_REFERENCE;
    r.run = DDPM_RUN_INPAINT;
    CHECK_FAIL(ddpm_sample_images(m, d, &cfg, &r, x, N), DDPM_ERR_INVALID_ARG);   /* no known image or mask */
    r.inpaint = &ic;
    r.known = known;
    r.mask = mask;
    for (int chunk = 1; chunk <= 3; chunk += 2) {
        r.chunk = chunk;
        CHECK_OK(ddpm_sample_images(m, d, &cfg, &r, x, N));
        CHECK_MSG(memcmp(x, y, sizeof(double) * nd) == 0, "inpainting in chunks of %d differs", chunk);
    }
    /* inversion: x holds x_0 */
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
    cfg.steps = 5;
    memcpy(y, known, sizeof(double) * nd);
    CHECK_OK(ddpm_ddim_invert(d, &cfg, ddpm_guided_fn, g, y, N, D));
    memcpy(x, known, sizeof(double) * nd);
    r.run = DDPM_RUN_INVERT;
    r.chunk = 3;
    CHECK_OK(ddpm_sample_images(m, d, &cfg, &r, x, N));
    CHECK(memcmp(x, y, sizeof(double) * nd) == 0);
    /* errors */
    r.chunk = 0;
    CHECK_FAIL(ddpm_sample_images(m, d, &cfg, &r, x, N), DDPM_ERR_INVALID_ARG);
    r.chunk = 2;
    CHECK_FAIL(ddpm_sample_images(m, d, &cfg, &r, x, 0), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_sample_images(NULL, d, &cfg, &r, x, N), DDPM_ERR_INVALID_ARG);
    r.guidance = 2.0;   /* an unconditional model */
    r.run = DDPM_RUN_SAMPLE;
    CHECK_FAIL(ddpm_sample_images(m, d, &cfg, &r, x, N), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "guidance 2") != NULL);
    ddpm_guided_free(g);
    free(x);
    free(y);
    free(known);
    free(mask);
    ddpm_model_free(m);
    ddpm_diffusion_free(d);
}

static void expect_label_error(const ddpm_model *m, const int64_t *cls, int n, int cycle, const char *want) {
    int64_t *labels = (int64_t *)&labels;
    double w = -1;
    CHECK_FAIL(ddpm_class_labels(m, cls, n, 4, cycle, NAN, &labels, &w), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), want) != NULL, "'%s' does not say '%s'", ddpm_last_error(), want);
    CHECK(labels == NULL);
}

static void test_labels(void) {
    ddpm_model *u = load("unet_tiny"), *k = load("unet_tiny_class");
    int64_t *labels = NULL;
    double w = 0;
    static const int64_t three[] = {3}, none[] = {-1}, ten[] = {10}, nine[] = {9}, mixed[] = {1, -1};
    /* unconditional: no labels, only "none" */
    expect_label_error(u, three, 1, 1, "the model is unconditional (no class embedding)");
    CHECK_OK(ddpm_class_labels(u, none, 1, 4, 1, NAN, &labels, &w));
    CHECK(labels == NULL && w == 1.0);
    CHECK_OK(ddpm_class_labels(u, NULL, 0, 4, 0, 1.0, &labels, &w));
    CHECK_OK(ddpm_guidance_check(u, 1.0));
    CHECK_FAIL(ddpm_guidance_check(u, 2.0), DDPM_ERR_INVALID_ARG);
    /* conditional without a null class: classes 0..9 */
    expect_label_error(k, NULL, 0, 0, "has no null class to run without a label");
    expect_label_error(k, none, 1, 1, "no null class (it was trained without label dropout); give classes in 0..9");
    expect_label_error(k, ten, 1, 1, "class 10 is not one of the model's classes 0..9");
    CHECK_OK(ddpm_class_labels(k, NULL, 0, 12, 1, NAN, &labels, &w));   /* sampling cycles */
    CHECK(labels && labels[0] == 0 && labels[9] == 9 && labels[10] == 0 && labels[11] == 1 && w == 1.0);
    ddpm_free(labels);
    CHECK_FAIL(ddpm_guidance_check(k, 3.0), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "no null class") != NULL);
    /* with the null class 9 of label dropout: classes 0..8, auto guidance 2 when a real class is used */
    CHECK_OK(ddpm_model_set_null_class(k, 9));
    expect_label_error(k, nine, 1, 1, "0..8");
    CHECK_OK(ddpm_class_labels(k, NULL, 0, 3, 0, NAN, &labels, &w));
    CHECK(labels && labels[0] == 9 && labels[2] == 9 && w == 1.0);
    ddpm_free(labels);
    CHECK_OK(ddpm_class_labels(k, mixed, 2, 3, 1, NAN, &labels, &w));
    CHECK(labels && labels[0] == 1 && labels[1] == 9 && labels[2] == 1 && w == 2.0);
    ddpm_free(labels);
    CHECK_OK(ddpm_class_labels(k, mixed, 2, 3, 1, 0.5, &labels, &w));
    CHECK(w == 0.5);
    ddpm_free(labels);
    CHECK_OK(ddpm_guidance_check(k, 3.0));
    CHECK_FAIL(ddpm_class_labels(NULL, NULL, 0, 3, 0, NAN, &labels, &w), DDPM_ERR_INVALID_ARG);
    ddpm_model_free(u);
    ddpm_model_free(k);
}

static int stop_after(void *user) {
    int *left = user;
    return --*left < 0;
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void test_image_folder(void) {
    const char *tmp = dd_test_tmpdir("sample_images_folder");
    char dir[1100], p[1200];
    snprintf(dir, sizeof dir, "%s/imgs", tmp);
    enum { C = 1, S = 4, N = 3 };
    float x[N * C * S * S];
    for (int i = 0; i < N * C * S * S; i++) x[i] = (float)sin(0.3 * i);
    static const char *const text[] = {"ddpm", "settings", NULL};
    CHECK_OK(ddpm_image_folder_check(dir));
    CHECK_OK(ddpm_write_image_folder(dir, x, N, C, S, S, text, NULL, NULL));
    snprintf(p, sizeof p, "%s/000002.png", dir);
    CHECK(file_size(p) > 0);
    char *desc = NULL;
    CHECK_OK(ddpm_png_read_text(p, "Description", &desc));
    CHECK(desc && strcmp(desc, "image 2 of 3") == 0);
    ddpm_free(desc);
    /* a second run replaces the folder as a whole */
    snprintf(p, sizeof p, "%s/", dir);
    CHECK_OK(ddpm_write_image_folder(p, x, 2, C, S, S, text, NULL, NULL));
    snprintf(p, sizeof p, "%s/000002.png", dir);
    CHECK(file_size(p) < 0);
    /* stopped after one image: the earlier folder is intact and nothing staged is left */
    int left = 1;
    CHECK_FAIL(ddpm_write_image_folder(dir, x + S * S, N, C, S, S, text, stop_after, &left), DDPM_ERR_INTERRUPTED);
    CHECK(strstr(ddpm_last_error(), "was not changed") != NULL);
    snprintf(p, sizeof p, "%s/000001.png", dir);
    CHECK(file_size(p) > 0);
    snprintf(p, sizeof p, "%s/000002.png", dir);
    CHECK(file_size(p) < 0);
    ddpm_image back;
    snprintf(p, sizeof p, "%s/000000.png", dir);
    CHECK_OK(ddpm_png_read(p, &back));
    ddpm_image first;
    CHECK_OK(ddpm_image_grid(&first, x, 1, C, S, S, 1, 0, 0));
    CHECK(back.pixels && first.pixels && memcmp(back.pixels, first.pixels, (size_t)(S * S)) == 0);
    ddpm_image_free(&back);
    ddpm_image_free(&first);
    snprintf(p, sizeof p, "ls '%s' | grep -q 'imgs\\.'", tmp);
    CHECK(system(p) != 0);
    /* a folder with a file ddpm did not write is refused, and left alone */
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    dd_write_bytes(p, "x", 1);
    CHECK_FAIL(ddpm_image_folder_check(dir), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "notes.txt") != NULL);
    CHECK_FAIL(ddpm_write_image_folder(dir, x, N, C, S, S, text, NULL, NULL), DDPM_ERR_IO);
    CHECK(file_size(p) == 1);
    snprintf(p, sizeof p, "%s/000000.png", dir);
    CHECK(file_size(p) > 0);
    /* a file in the way */
    snprintf(p, sizeof p, "%s/file", tmp);
    dd_write_bytes(p, "x", 1);
    CHECK_FAIL(ddpm_image_folder_check(p), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "not a folder") != NULL);
    dd_test_remove_dir(tmp);
}

static void test_tensors(void) {
    const char *tmp = dd_test_tmpdir("sample_images_tensors");
    char p[1100];
    snprintf(p, sizeof p, "%s/s.safetensors", tmp);
    enum { N = 2, C = 3, S = 2 };
    float x[N * C * S * S];
    for (int i = 0; i < N * C * S * S; i++) x[i] = 0.1f * (float)i;
    int64_t labels[N] = {4, 7};
    CHECK_OK(ddpm_save_samples(p, x, N, C, S, S, labels, "run settings"));
    ddpm_safetensors *st = NULL;
    CHECK_OK(ddpm_st_open(p, &st));
    if (st) {
        CHECK(ddpm_st_find(st, "samples") && ddpm_st_find(st, "labels"));
        CHECK(ddpm_st_metadata_get(st, "ddpm") && strcmp(ddpm_st_metadata_get(st, "ddpm"), "run settings") == 0);
        ddpm_st_close(st);
    }
    /* read back as an image batch: the file's only float tensor is not alone (labels), so by name */
    double *y = NULL;
    int64_t n = 0;
    CHECK_OK(ddpm_read_image_tensor(p, "samples", C, S, S, 10, &y, &n));
    CHECK(n == N && y && fabs(y[5] - (double)x[5]) == 0.0);
    ddpm_free(y);
    CHECK_FAIL(ddpm_read_image_tensor(p, "x_T", C, S, S, 10, &y, &n), DDPM_ERR_FORMAT);
    CHECK(strstr(ddpm_last_error(), "no tensor 'x_T'") && y == NULL);
    CHECK_FAIL(ddpm_read_image_tensor(p, "samples", 1, S, S, 10, &y, &n), DDPM_ERR_FORMAT);
    CHECK(strstr(ddpm_last_error(), "the model needs [N, 1, 2, 2]") != NULL);
    CHECK_FAIL(ddpm_read_image_tensor(p, "samples", C, S, S, 1, &y, &n), DDPM_ERR_FORMAT);
    CHECK_FAIL(ddpm_read_image_tensor(p, "labels", C, S, S, 10, &y, &n), DDPM_ERR_FORMAT);
    snprintf(p, sizeof p, "%s/missing.safetensors", tmp);
    CHECK(ddpm_read_image_tensor(p, "x_T", C, S, S, 10, &y, &n) != DDPM_OK);
    CHECK(strstr(ddpm_last_error(), "missing.safetensors") != NULL);
    dd_test_remove_dir(tmp);
}

static void test_pictures(void) {
    enum { N = 5, C = 3, S = 4 };
    float x[N * C * S * S];
    for (int i = 0; i < N * C * S * S; i++) x[i] = (float)cos(0.2 * i);
    ddpm_image g, big;
    CHECK_OK(ddpm_image_grid_scaled(&g, x, N, C, S, S, 0, 2));   /* 3 columns, 2 rows, pad 1, twice */
    CHECK(g.width == 2 * (3 * (S + 1) + 1) && g.height == 2 * (2 * (S + 1) + 1) && g.channels == C);
    CHECK_OK(ddpm_image_grid_scaled(&big, x, N, C, S, S, 5, 0));   /* auto: cells of at least 64 pixels */
    CHECK(big.width == 16 * (5 * (S + 1) + 1));
    ddpm_image_free(&big);
    ddpm_image rows[2] = {g, g};
    rows[1].width = g.width;
    CHECK_OK(ddpm_image_stack(rows, 2, &big));
    CHECK(big.width == g.width && big.height == 2 * g.height);
    CHECK(memcmp(big.pixels + (size_t)g.width * g.height * C, g.pixels, (size_t)g.width * g.height * C) == 0);
    ddpm_image_free(&big);
    CHECK_FAIL(ddpm_image_stack(rows, 0, &big), DDPM_ERR_INVALID_ARG);
    CHECK_OK(ddpm_image_enlarge(&g, 3, &big));
    CHECK(big.width == 3 * g.width && big.pixels[(size_t)(3 * g.width + 2) * C] == g.pixels[0]);
    ddpm_image_free(&big);
    CHECK_FAIL(ddpm_image_enlarge(&g, 0, &big), DDPM_ERR_INVALID_ARG);
    ddpm_image_free(&g);
    CHECK(ddpm_image_strip_scale(28) == 4 && ddpm_image_strip_scale(8) == 13 && ddpm_image_strip_scale(512) == 1);
    /* a trajectory of 2 images at 3 of 10 steps: steps 0, 5 (4.5 rounded), 9 */
    ddpm_trajectory tr;
    enum { D = C * S * S };
    CHECK_OK(ddpm_trajectory_init(&tr, 2, 3, 10, D));
    CHECK(tr.nframes == 3 && tr.steps[0] == 0 && tr.steps[1] == 5 && tr.steps[2] == 9);
    double xd[3 * D], x0d[3 * D];
    for (int i = 0; i < 3 * D; i++) xd[i] = 0.01 * i, x0d[i] = -0.01 * i;
    for (int s = 0; s < 10; s++) ddpm_trajectory_record(&tr, 1, s, 100 - s, xd, x0d, 3, D);   /* rows: images 1.. */
    CHECK(tr.t[1] == 95 && tr.x[(size_t)(1 * 3 + 2) * D + 1] == (float)xd[1] && tr.x[1] == 0.0f);
    CHECK_OK(ddpm_image_trajectory(&g, &tr, C, S, S));
    CHECK(g.height > 0 && g.width > 3 * S * ddpm_image_strip_scale(S));
    ddpm_image_free(&g);
    ddpm_trajectory_free(&tr);
}

static ddpm_status half_model(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    (void)user, (void)t;
    for (int64_t j = 0; j < N * D; j++) out[j] = 0.5f * x[j];
    return DDPM_OK;
}

/* img2img's start, forward noise per image, the one-step x0 estimate. */
static void test_app_steps(void) {
    ddpm_diffusion *d = dd_test_diffusion("linear", 1000);
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
    cfg.steps = 10;
    int64_t ts[10], t_at = -1;
    int first = -1;
    CHECK_OK(ddpm_sampler_timesteps(&cfg, 1000, ts));
    CHECK_OK(ddpm_sampler_strength(&cfg, 1000, 0.6, &first, &t_at));
    CHECK(first == 4 && t_at == ts[4]);
    CHECK_OK(ddpm_sampler_strength(&cfg, 1000, 1.0, &first, &t_at));
    CHECK(first == 0 && t_at == ts[0]);
    CHECK_FAIL(ddpm_sampler_strength(&cfg, 1000, 0.05, &first, &t_at), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "runs no step") != NULL);
    CHECK_FAIL(ddpm_sampler_strength(&cfg, 1000, 1.5, &first, &t_at), DDPM_ERR_INVALID_ARG);
    enum { N = 3, D = 10 };
    double x0[N * D], xt[N * D], eps[D], x0h[N * D], want[N * D];
    for (int j = 0; j < N * D; j++) x0[j] = 0.1 * (j % 7) - 0.3;
    CHECK_OK(ddpm_noise_images(d, 5, 400, x0, 2, N, D, xt));
    const double ab = d->alphas_cumprod[400];
    for (int r = 0; r < N; r++) {
        ddpm_rng_normal_f64(5, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, (uint32_t)(2 + r)), 0, eps, D);
        for (int k = 0; k < D; k++) want[r * D + k] = sqrt(ab) * x0[r * D + k] + sqrt(1 - ab) * eps[k];
    }
    CHECK(dd_check_close("ddpm_noise_images", xt, want, N * D, 1e-12, 1.0));
    CHECK_FAIL(ddpm_noise_images(d, 5, 1000, x0, 0, N, D, xt), DDPM_ERR_INVALID_ARG);
    /* eps = x / 2: x0 = (x - sqrt(1 - ab) eps) / sqrt(ab), clamped to [-1, 1] */
    int64_t tv[N] = {400, 400, 400};
    double epsv[N * D];
    for (int j = 0; j < N * D; j++) epsv[j] = (double)(0.5f * (float)xt[j]);
    ddpm_predict_x0_from_eps(d, want, xt, epsv, tv, N, D);
    CHECK_OK(ddpm_predict_x0(d, DDPM_PRED_EPS, half_model, NULL, xt, 400, N, D, 0.0, x0h));
    CHECK(memcmp(x0h, want, sizeof want) == 0);
    CHECK_OK(ddpm_predict_x0(d, DDPM_PRED_EPS, half_model, NULL, xt, 400, N, D, 0.5, x0h));
    for (int j = 0; j < N * D; j++) CHECK(x0h[j] == (want[j] < -0.5 ? -0.5 : want[j] > 0.5 ? 0.5 : want[j]));
    CHECK_FAIL(ddpm_predict_x0(d, DDPM_PRED_EPS, NULL, NULL, xt, 400, N, D, 0.0, x0h), DDPM_ERR_INVALID_ARG);
    ddpm_diffusion_free(d);
}

int main(void) {
    test_app_steps();
    test_chunks();
    test_chunked_apps();
    test_labels();
    test_image_folder();
    test_tensors();
    test_pictures();
    return dd_test_finish("test_sample_images");
}
