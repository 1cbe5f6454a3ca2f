/* test_train_log.c — what a training run writes beside its checkpoints: the CSV log (cut back on resume, the
   smoothed loss and elapsed time continued), its loss plot (malformed lines named), the preview sample grid
   (the documented DDIM draw from the EMA weights), and the helpers of a resume: the run folder of a checkpoint
   path and the first differing field of two network configurations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A new log replaces an old file; a resume cuts it back to the checkpoint's step, drops what cannot be read,
   and continues the moving average and the clock from the last line kept. */
static void test_log(const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    dd_write_bytes(path, "old\n", 4);
    ddpm_train_log *lg = NULL;
    CHECK_OK(ddpm_train_log_open(path, 0, &lg));
    double avg = 0;
    for (int k = 1; lg && k <= 5; k++) {
        ddpm_train_stats s = {k, 1.0 / k, 0.5, 1e-3, 0, 0, 0};
        CHECK_OK(ddpm_train_log_write(lg, &s, 100.0, 2.0 * k));
        avg = 0.98 * avg + 0.02 * s.loss;
        CHECK(fabs(ddpm_train_log_smoothed(lg) - avg / (1 - pow(0.98, k))) < 1e-12);
    }
    CHECK(ddpm_train_log_elapsed_before(lg) == 0);
    ddpm_train_log_close(lg);
    char *text = read_text(path);
    const char *first = "step,loss,smoothed_loss,lr,grad_norm,images_per_s,elapsed_s\n1,1,1,0.001,0.5,100.0000,2.000\n";
    CHECK(text && strncmp(text, first, strlen(first)) == 0);
    CHECK(count_lines(text) == 6);
    free(text);

    /* lines 1..4 readable, a damaged one between them, then an incomplete last line */
    const char *log = "step,loss,smoothed_loss,lr,grad_norm,images_per_s,elapsed_s\n"
                      "1,0.5,0.5,0,1,10,1.5\n"
                      "2,0.25,0.37,0.001,1,10,3\n"
                      "two,oops\n"
                      "3,0.125,0.28,0.001,1,10,4.5\n"
                      "4,0.0625,0.2,0.001,1,10,6\n"
                      "5,0.03";
    dd_write_bytes(path, log, strlen(log));
    CHECK_OK(ddpm_train_log_open(path, 3, &lg));
    CHECK(lg && fabs(ddpm_train_log_smoothed(lg) - 0.28) < 1e-12 && ddpm_train_log_elapsed_before(lg) == 4.5);
    ddpm_train_stats s = {4, 0.5, 2, 1e-3, 0, 0, 0};
    CHECK_OK(ddpm_train_log_write(lg, &s, 20, 1.25));
    const double w3 = 1 - pow(0.98, 3), want = (0.98 * 0.28 * w3 + 0.02 * 0.5) / (1 - pow(0.98, 4));
    CHECK_MSG(fabs(ddpm_train_log_smoothed(lg) - want) < 1e-12, "smoothed %.17g, want %.17g",
              ddpm_train_log_smoothed(lg), want);
    ddpm_train_log_close(lg);
    text = read_text(path);
    char line[200];
    snprintf(line, sizeof line, "3,0.125,0.28,0.001,1,10,4.5\n4,0.5,%.9g,0.001,2,20.0000,5.750\n", want);
    CHECK(count_lines(text) == 5);
    CHECK_MSG(text && strstr(text, "\n1,0.5,0.5,0,1,10,1.5\n2,0.25,0.37,0.001,1,10,3\n") && strstr(text, line),
              "%s", text ? text : "(no file)");
    free(text);
    /* a resume with no log starts one */
    snprintf(path, sizeof path, "%s/none.csv", dir);
    CHECK_OK(ddpm_train_log_open(path, 7, &lg));
    ddpm_train_log_close(lg);
    text = read_text(path);
    CHECK(text && strcmp(text, "step,loss,smoothed_loss,lr,grad_norm,images_per_s,elapsed_s\n") == 0);
    free(text);
    snprintf(path, sizeof path, "%s/no/such/folder/log.csv", dir);
    CHECK_FAIL(ddpm_train_log_open(path, 0, &lg), DDPM_ERR_IO);
    CHECK(lg == NULL && strstr(ddpm_last_error(), "log.csv") != NULL);
}

/* The loss plot of a log; a malformed line is refused by file and line number, and nothing is drawn. */
static void test_plot(const char *dir) {
    char log[1100], png[1100];
    snprintf(log, sizeof log, "%s/log.csv", dir);
    snprintf(png, sizeof png, "%s/loss.png", dir);
    ddpm_train_log_plot_config c;
    ddpm_train_log_plot_config_default(&c);
    CHECK(c.smooth == 0.98 && c.log_y == 1 && c.width == 1000 && c.height == 600 && !c.text);
    const char *const text[] = {"ddpm", "the settings", NULL};
    c.text = text;
    CHECK_OK(ddpm_train_log_plot(log, png, &c));
    ddpm_image img = {0, 0, 0, NULL};
    char *v = NULL;
    CHECK_OK(ddpm_png_read(png, &img));
    CHECK(img.width == 1000 && img.height == 600);
    CHECK_OK(ddpm_png_read_text(png, "ddpm", &v));
    CHECK(v && strcmp(v, "the settings") == 0);
    ddpm_free(v);
    CHECK_OK(ddpm_png_read_text(png, "Software", &v));
    CHECK(v && strncmp(v, "ddpm ", 5) == 0);
    ddpm_free(v);
    ddpm_image_free(&img);
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"step,loss\n1,0.5\n2,0.4\n3,oops\n", "bad.csv:4: loss 'oops'"},
        {"step,loss\n1,0.5\n\n2,0.4,9\n", "bad.csv:4: 3 fields"},
        {"step,loss\n2,0.5\n1,0.4\n", "bad.csv:3: step 1 does not follow"},
        {"step,value\n1,0.5\n", "bad.csv:1: the header has no 'loss'"},
        {"step,loss\n", "no data lines"},
        {"", "empty file"},
        {"step,loss\n1,0\n", "logarithm"},
    };
    snprintf(log, sizeof log, "%s/bad.csv", dir);
    snprintf(png, sizeof png, "%s/bad.png", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dd_write_bytes(log, bad[i].text, strlen(bad[i].text));
        ddpm_status st = ddpm_train_log_plot(log, png, NULL);
        CHECK_MSG(st != DDPM_OK && strstr(ddpm_last_error(), bad[i].says), "case %zu: %s", i, ddpm_last_error());
        CHECK(!exists(png));
    }
    dd_write_bytes(log, "step,loss\n1,0\n", 14);
    c.log_y = 0;
    CHECK_OK(ddpm_train_log_plot(log, png, &c));   /* a zero loss on a linear axis */
    snprintf(log, sizeof log, "%s/missing.csv", dir);
    CHECK_FAIL(ddpm_train_log_plot(log, png, NULL), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "missing.csv") != NULL);
}

static void test_run_folder(void) {
    static const char *const cases[][2] = {
        {"runs/a", "runs/a"},
        {"runs/a/", "runs/a"},
        {"runs/a/checkpoints/checkpoint-500", "runs/a"},
        {"runs/a/checkpoints/checkpoint-500//", "runs/a"},
        {"/checkpoints/checkpoint-5", "/"},
        {"checkpoints/checkpoint-5", "."},
        {"runs/a/other/checkpoint-5", "runs/a/other/checkpoint-5"},
        {"checkpoint-5", "checkpoint-5"},
        {"/", "/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = NULL;
        CHECK_OK(ddpm_train_run_folder(cases[i][0], &dir));
        CHECK_MSG(dir && strcmp(dir, cases[i][1]) == 0, "%s -> %s, want %s", cases[i][0], dir ? dir : "NULL",
                  cases[i][1]);
        ddpm_free(dir);
    }
}

static void test_config_diff(void) {
    ddpm_model *a = NULL, *b = NULL, *c = NULL;
    char *what = (char *)"unset";
    CHECK_OK(ddpm_model_load("tiny", 1, &a));
    CHECK_OK(ddpm_model_load("tiny", 2, &b));
    CHECK_OK(ddpm_model_load(dd_test_data("unet_tiny_class"), 0, &c));
    CHECK_OK(ddpm_model_config_diff(a, b, &what));
    CHECK(what == NULL);   /* other weights, the same network */
    CHECK_OK(ddpm_model_config_diff(a, c, &what));
    CHECK_MSG(what && strncmp(what, "num_class_embeds: ", 18) == 0 && strstr(what, " vs "), "%s", what ? what : "NULL");
    ddpm_free(what);
    ddpm_model_free(b);
    CHECK_OK(ddpm_model_load("mnist", 0, &b));
    CHECK_OK(ddpm_model_config_diff(a, b, &what));
    CHECK_MSG(what && strstr(what, ": ") && strstr(what, " vs "), "%s", what ? what : "NULL");
    ddpm_free(what);
    CHECK_FAIL(ddpm_model_config_diff(a, NULL, &what), DDPM_ERR_INVALID_ARG);
    ddpm_model_free(a);
    ddpm_model_free(b);
    ddpm_model_free(c);
}

static int stop_now(void *user) { return *(int *)user; }

/* The sample grid: the documented draw (DDIM, eta 0, the run's seed, x_T from stream (INIT, 0, 0)) from the
   EMA model, each pixel enlarged 8 times for the 8 x 8 network, with the given tEXt pairs. */
static void test_samples(const char *dir) {
    ddpm_dataset d;
    memset(&d, 0, sizeof d);
    d.count = 5;
    d.channels = 3;
    d.height = d.width = 8;
    d.pixels = malloc(5 * 192);
    for (int i = 0; i < 5 * 192; i++) d.pixels[i] = (uint8_t)((i * 29) & 255);
    ddpm_train_config c;
    ddpm_train_config_default(&c);
    c.batch = 2;
    c.steps = 3;
    c.warmup_steps = 0;
    c.seed = 7;
    int stop = 0;
    c.should_stop = stop_now;
    c.stop_user = &stop;
    ddpm_model *m = NULL;
    ddpm_trainer *t = NULL;
    CHECK_OK(ddpm_model_load("tiny", 1, &m));
    CHECK_OK(ddpm_trainer_create(&c, m, &d, &t));
    if (!t) return;
    CHECK_OK(ddpm_trainer_step(t, NULL));
    char path[1100];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    const char *const text[] = {"ddpm", "train --steps 3", NULL};
    CHECK_OK(ddpm_trainer_write_samples(t, path, 5, 4, text));
    ddpm_image img = {0, 0, 0, NULL}, want = {0, 0, 0, NULL};
    CHECK_OK(ddpm_png_read(path, &img));
    char *v = NULL;
    CHECK_OK(ddpm_png_read_text(path, "ddpm", &v));
    CHECK(v && strcmp(v, "train --steps 3") == 0);
    ddpm_free(v);
    CHECK_OK(ddpm_png_read_text(path, "Description", &v));
    CHECK_MSG(v && strstr(v, "step 1; 5 samples, DDIM 4 steps (eta 0), seed 7") && strstr(v, "shown 8x"), "%s",
              v ? v : "NULL");
    ddpm_free(v);
    /* the same draw made here */
    ddpm_model *sm = NULL;
    ddpm_diffusion *dif = NULL;
    double x[5 * 192];
    float xf[5 * 192];
    CHECK_OK(ddpm_trainer_sample_model(t, 5, &sm));
    CHECK_OK(ddpm_diffusion_create(&c.schedule, &dif));
    ddpm_sampler_config sc;
    ddpm_sampler_config_default(&sc, DDPM_SAMPLER_DDIM);
    sc.steps = 4;
    sc.seed = 7;
    ddpm_rng_normal_f64(7, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0), 0, x, 5 * 192);
    CHECK_OK(ddpm_sample_loop(dif, &sc, ddpm_model_sampler_fn, sm, x, 5, 192, 0));
    for (int i = 0; i < 5 * 192; i++) xf[i] = (float)x[i];
    CHECK_OK(ddpm_image_grid(&want, xf, 5, 3, 8, 8, 0, 1, 255));
    CHECK(img.width == want.width * 8 && img.height == want.height * 8 && img.channels == 3);
    int differ = 0;
    for (int y = 0; img.pixels && want.pixels && y < img.height; y++)
        for (int x0 = 0; x0 < img.width * 3; x0++)
            differ += img.pixels[(size_t)y * img.width * 3 + x0] !=
                      want.pixels[(size_t)(y / 8) * want.width * 3 + (x0 / 24) * 3 + x0 % 3];
    CHECK_MSG(differ == 0, "%d bytes of the grid differ from the documented draw", differ);
    ddpm_image_free(&img);
    ddpm_image_free(&want);
    /* a stop request during sampling */
    stop = 1;
    snprintf(path, sizeof path, "%s/stopped.png", dir);
    CHECK_FAIL(ddpm_trainer_write_samples(t, path, 5, 4, NULL), DDPM_ERR_INTERRUPTED);
    CHECK(!exists(path));
    CHECK_FAIL(ddpm_trainer_write_samples(t, path, 0, 4, NULL), DDPM_ERR_INVALID_ARG);
    ddpm_diffusion_free(dif);
    ddpm_trainer_free(t);
    free(d.pixels);
}

int main(void) {
    ddpm_set_threads(1);
    const char *dir = dd_test_tmpdir("train_log");
    test_log(dir);
    test_plot(dir);
    test_run_folder();
    test_config_diff();
    test_samples(dir);
    dd_test_remove_dir(dir);
    return dd_test_finish("test_train_log");
}
