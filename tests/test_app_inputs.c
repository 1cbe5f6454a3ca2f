/* test_app_inputs.c — what the applications take in: the null class of label dropout (set, saved as
   "_ddpm_null_class", loaded back, refused when out of range, written by the trainer), classifier-free guidance
   over the tiny class-conditional fixture (w = 1, 0 and 3 against plain forwards, every refusal), a pipeline
   folder's scheduler_config.json (defaults, DDIMScheduler, trained_betas, round trip of what ddpm_model_save
   writes, every refused value) and image inputs (PNG / JPEG sniffing, garbage, channels, resize + crop, masks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

/* The message of the last failure must contain `needle`. */
#define CHECK_SAYS(needle) CHECK_MSG(strstr(ddpm_last_error(), (needle)) != NULL, "message lacks '%s': %s", \
                                     (needle), ddpm_last_error())

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) exit(1);
    buf[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static void write_text(const char *path, const char *text) { dd_write_bytes(path, text, strlen(text)); }

/* The tiny class-conditional fixture's config text with `from` replaced by `to` (malloc'd). */
static char *class_config(const char *from, const char *to) {
    char *json = read_text(dd_test_data("unet_tiny_class/config.json"), NULL);
    if (!from) return json;
    char *at = strstr(json, from);
    if (!at) {
        fprintf(stderr, "'%s' not in the fixture config\n", from);
        exit(1);
    }
    size_t n = strlen(json) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
    free(json);
    return out;
}

/* ------------------------------------------------------------------ null class */

/* The three strings occur in a config text, in this order. */
static void check_in_order(const char *text, const char *k1, const char *k2, const char *k3) {
    const char *a = text ? strstr(text, k1) : NULL, *b = text ? strstr(text, k2) : NULL;
    const char *c = text ? strstr(text, k3) : NULL;
    CHECK_MSG(a && b && c && a < b && b < c, "config text: %s", text ? text : "(null)");
}

static void test_null_class(void) {
    char *json = class_config(NULL, NULL);
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "config.json", 1, &m));
    if (!m) return;
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    CHECK(info.num_class_embeds == 10 && info.null_class == -1);
    char *text = NULL;
    CHECK_OK(ddpm_model_config_json(m, &text));
    CHECK(text && !strstr(text, "_ddpm_null_class"));   /* written only when there is one */
    ddpm_free(text);
    /* range */
    CHECK_FAIL(ddpm_model_set_null_class(m, 10), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("0..9");
    CHECK_FAIL(ddpm_model_set_null_class(m, -2), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_model_set_null_class(NULL, 0), DDPM_ERR_INVALID_ARG);
    CHECK_OK(ddpm_model_set_null_class(m, 9));
    ddpm_model_get_info(m, &info);
    CHECK(info.null_class == 9);
    CHECK_OK(ddpm_model_config_json(m, &text));
    /* sorted among the private keys, as json.dumps(sort_keys=True) would place it */
    check_in_order(text, "\"_class_name\"", "\"_ddpm_null_class\": 9,", "\"_diffusers_version\"");
    ddpm_free(text);
    /* save / load */
    const char *dir = dd_test_tmpdir("app_null_class");
    CHECK_OK(ddpm_model_save(m, dir, NULL, DDPM_PRED_EPS));
    ddpm_model *back = NULL;
    CHECK_OK(ddpm_model_load(dir, 0, &back));
    if (back) {
        ddpm_model_get_info(back, &info);
        CHECK(info.null_class == 9 && info.num_class_embeds == 10 && info.weights_loaded == 1);
        CHECK_OK(ddpm_model_set_null_class(back, -1));
        ddpm_model_get_info(back, &info);
        CHECK(info.null_class == -1);
    }
    ddpm_model_free(back);
    ddpm_model_free(m);
    free(json);
    /* parsing: null and -1 mean none; the key may come before num_class_embeds */
    static const char *const none[] = {"\"_ddpm_null_class\": null, \"_diffusers_version\"",
                                       "\"_ddpm_null_class\": -1, \"_diffusers_version\""};
    for (int i = 0; i < 2; i++) {
        char *j = class_config("\"_diffusers_version\"", none[i]);
        m = NULL;
        CHECK_OK(ddpm_model_from_config_json(j, strlen(j), "config.json", 1, &m));
        if (m) {
            ddpm_model_get_info(m, &info);
            CHECK(info.null_class == -1);
        }
        ddpm_model_free(m);
        free(j);
    }
    /* before num_class_embeds in the text */
    json = class_config("\"_diffusers_version\"", "\"_ddpm_null_class\": 3, \"_diffusers_version\"");
    m = NULL;
    CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "config.json", 1, &m));
    if (m) {
        ddpm_model_get_info(m, &info);
        CHECK(info.null_class == 3);
    }
    ddpm_model_free(m);
    free(json);
    /* refusals name the file and the key */
    static const struct { const char *to; ddpm_status st; const char *says; } bad[] = {
        {"\"_ddpm_null_class\": 10, \"_diffusers_version\"", DDPM_ERR_INVALID_ARG, "classes 0..9"},
        {"\"_ddpm_null_class\": -3, \"_diffusers_version\"", DDPM_ERR_INVALID_ARG, "out of range"},
        {"\"_ddpm_null_class\": \"9\", \"_diffusers_version\"", DDPM_ERR_FORMAT, "must be an integer"},
        {"\"_ddpm_null_class\": 2.5, \"_diffusers_version\"", DDPM_ERR_FORMAT, "must be an integer"},
        {"\"_ddpm_null_class\": 1, \"_ddpm_null_class\": 1, \"_diffusers_version\"", DDPM_ERR_FORMAT, "twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json = class_config("\"_diffusers_version\"", bad[i].to);
        m = NULL;
        CHECK_FAIL(ddpm_model_from_config_json(json, strlen(json), "unet/config.json", 1, &m), bad[i].st);
        CHECK(m == NULL);
        CHECK_SAYS("unet/config.json");
        CHECK_SAYS("_ddpm_null_class");
        CHECK_SAYS(bad[i].says);
        free(json);
    }
    /* an unconditional model has no null class */
    json = class_config("\"num_class_embeds\": 10", "\"num_class_embeds\": null, \"_ddpm_null_class\": 0");
    CHECK_FAIL(ddpm_model_from_config_json(json, strlen(json), "unet/config.json", 1, &m), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("no class embedding");
    free(json);
    const char *basic = "{\"_class_name\": \"BasicUNet\", \"_ddpm_null_class\": 0}";
    CHECK_FAIL(ddpm_model_from_config_json(basic, strlen(basic), "unet/config.json", 1, &m), DDPM_ERR_INVALID_ARG);
    ddpm_model *tiny = NULL;
    CHECK_OK(ddpm_model_load("tiny", 0, &tiny));
    CHECK_FAIL(ddpm_model_set_null_class(tiny, 0), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("no class embedding");
    CHECK_OK(ddpm_model_set_null_class(tiny, -1));
    ddpm_model_free(tiny);
    dd_test_remove_dir(dir);
}

/* ------------------------------------------------------------------ the model's own guidance weight */

static void test_guidance_key(void) {
    char *json = class_config("\"_diffusers_version\"", "\"_ddpm_null_class\": 9, \"_diffusers_version\"");
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "config.json", 1, &m));
    free(json);
    if (!m) return;
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    CHECK(info.guidance == 0);
    char *text = NULL;
    CHECK_OK(ddpm_model_config_json(m, &text));
    CHECK(text && !strstr(text, "_ddpm_guidance"));   /* written only when set */
    ddpm_free(text);
    CHECK_FAIL(ddpm_model_set_guidance(m, -1), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_model_set_guidance(m, 101), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_model_set_guidance(m, NAN), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_model_set_guidance(NULL, 1), DDPM_ERR_INVALID_ARG);
    CHECK_OK(ddpm_model_set_guidance(m, 1.25));
    ddpm_model_get_info(m, &info);
    CHECK(info.guidance == 1.25);
    CHECK_OK(ddpm_model_config_json(m, &text));
    check_in_order(text, "\"_class_name\"", "\"_ddpm_guidance\": 1.25,", "\"_ddpm_null_class\": 9,");
    ddpm_free(text);
    const char *dir = dd_test_tmpdir("app_guidance");
    CHECK_OK(ddpm_model_save(m, dir, NULL, DDPM_PRED_EPS));
    ddpm_model *back = NULL;
    CHECK_OK(ddpm_model_load(dir, 0, &back));
    if (back) {
        ddpm_model_get_info(back, &info);
        CHECK(info.guidance == 1.25 && info.null_class == 9);
    }
    ddpm_model_free(back);
    /* no null class, no guidance */
    CHECK_OK(ddpm_model_set_null_class(m, -1));
    CHECK_OK(ddpm_model_config_json(m, &text));
    ddpm_model *again = NULL;
    CHECK_FAIL(ddpm_model_from_config_json(text, text ? strlen(text) : 0, "unet/config.json", 1, &again),
               DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("_ddpm_guidance");
    CHECK_SAYS("null class");
    ddpm_free(text);
    CHECK_OK(ddpm_model_set_guidance(m, 0));
    CHECK_FAIL(ddpm_model_set_guidance(m, 2), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("no null class");
    ddpm_model_free(m);
    static const struct { const char *to; ddpm_status st; const char *says; } bad[] = {
        {"\"_ddpm_guidance\": 0, \"_ddpm_null_class\": 9, \"_diffusers_version\"", DDPM_OK, NULL},
        {"\"_ddpm_guidance\": -1, \"_ddpm_null_class\": 9, \"_diffusers_version\"", DDPM_ERR_INVALID_ARG, "(0, 100]"},
        {"\"_ddpm_guidance\": 1000, \"_ddpm_null_class\": 9, \"_diffusers_version\"", DDPM_ERR_INVALID_ARG, "(0, 100]"},
        {"\"_ddpm_guidance\": \"2\", \"_ddpm_null_class\": 9, \"_diffusers_version\"", DDPM_ERR_FORMAT, "number"},
        {"\"_ddpm_guidance\": 2, \"_ddpm_guidance\": 2, \"_ddpm_null_class\": 9, \"_diffusers_version\"",
         DDPM_ERR_FORMAT, "twice"},
        {"\"_ddpm_guidance\": 2, \"_diffusers_version\"", DDPM_ERR_INVALID_ARG, "null class"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json = class_config("\"_diffusers_version\"", bad[i].to);
        m = NULL;
        ddpm_status st = ddpm_model_from_config_json(json, strlen(json), "unet/config.json", 1, &m);
        CHECK_MSG(st == bad[i].st, "%s: status %d", bad[i].to, (int)st);
        if (bad[i].says) {
            CHECK(m == NULL);
            CHECK_SAYS("_ddpm_guidance");
            CHECK_SAYS(bad[i].says);
        }
        ddpm_model_free(m);
        free(json);
    }
    const char *basic = "{\"_class_name\": \"BasicUNet\", \"_ddpm_guidance\": 2}";
    CHECK_FAIL(ddpm_model_from_config_json(basic, strlen(basic), "unet/config.json", 1, &m), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("_ddpm_guidance");
}

/* The trainer marks class K of a run with label dropout as the null class of the models it saves. */
static void test_trainer_null_class(void) {
    ddpm_dataset d;
    memset(&d, 0, sizeof d);
    d.count = 4;
    d.channels = 3;
    d.height = d.width = 8;
    d.num_classes = 2;
    d.pixels = malloc(4 * 192);
    d.labels = malloc(4 * sizeof(int32_t));
    for (size_t i = 0; i < 4 * 192; i++) d.pixels[i] = (uint8_t)((i * 37u) & 255u);
    for (int i = 0; i < 4; i++) d.labels[i] = i % 2;
    char *json = class_config("\"num_class_embeds\": 10", "\"num_class_embeds\": 3");
    const char *dir = dd_test_tmpdir("app_trainer_null");
    for (int ema = 0; ema < 3; ema++) {   /* 0, 1: label dropout without / with EMA; 2: no dropout */
        ddpm_model *m = NULL;
        CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "config.json", 1, &m));
        ddpm_train_config c;
        ddpm_train_config_default(&c);
        c.steps = 1;
        c.batch = 2;
        c.warmup_steps = 1;
        c.checkpoint_every = 0;
        c.use_ema = ema == 1;
        c.label_dropout = ema == 2 ? 0.0 : 0.5;
        if (ema == 0) {   /* a starting model's measured guidance weight does not outlive training */
            CHECK_OK(ddpm_model_set_null_class(m, 2));
            CHECK_OK(ddpm_model_set_guidance(m, 1.5));
        }
        ddpm_trainer *t = NULL;
        CHECK_OK(ddpm_trainer_create(&c, m, &d, &t));
        if (!t) continue;
        char out[1100];
        snprintf(out, sizeof out, "%s/run%d", dir, ema);
        CHECK_OK(ddpm_trainer_run(t, out, NULL, NULL));
        ddpm_model *back = NULL;
        CHECK_OK(ddpm_model_load(out, 0, &back));
        if (back) {
            ddpm_model_info info;
            ddpm_model_get_info(back, &info);
            CHECK_MSG(info.null_class == (ema == 2 ? -1 : 2), "run %d: null class %d", ema, info.null_class);
            CHECK_MSG(info.guidance == 0, "run %d: guidance %g", ema, info.guidance);
        }
        ddpm_model_free(back);
        ddpm_model *sm = NULL;
        CHECK_OK(ddpm_trainer_sample_model(t, 2, &sm));
        if (sm) {
            ddpm_model_info info;
            ddpm_model_get_info(sm, &info);
            CHECK(info.null_class == (ema == 2 ? -1 : 2));
        }
        ddpm_trainer_free(t);
        /* and the run resumes (the given model's null class is not a difference) */
        if (ema == 1) {
            ddpm_train_resume_options o;
            ddpm_train_resume_options_default(&o);
            o.steps = 2;
            ddpm_model *fresh = NULL;
            CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "config.json", 1, &fresh));
            CHECK_OK(ddpm_trainer_resume(out, fresh, &d, &o, &t));
            if (t) CHECK_OK(ddpm_trainer_step(t, NULL));
            ddpm_trainer_free(t);
        }
    }
    free(json);
    free(d.pixels);
    free(d.labels);
    dd_test_remove_dir(dir);
}

/* ------------------------------------------------------------------ guidance */

enum { GN = 2, GD = 3 * 8 * 8 };

static void forward(ddpm_model *m, float *out, const float *x, const int64_t *t, const int64_t *labels) {
    float tf[GN];
    for (int i = 0; i < GN; i++) tf[i] = (float)t[i];
    CHECK_OK(ddpm_model_forward(m, out, x, tf, labels, GN));
}

static void test_guided(void) {
    ddpm_model *m = dd_test_model(dd_test_data("unet_tiny_class"), 0, DDPM_ENGINE_FAST, 0, 2 * GN);
    float x[GN * GD], c[GN * GD], u[GN * GD], want[GN * GD], got[GN * GD];
    ddpm_rng_normal_f32(7, 1, 0, x, GN * GD);
    const int64_t t[GN] = {10, 500}, labels[GN] = {3, 7}, nulls[GN] = {9, 9};
    ddpm_guided *g = NULL;
    /* no null class yet: only w = 1 */
    CHECK_FAIL(ddpm_guided_create(m, 3.0, GN, &g), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("guidance 3 needs a class-conditional model trained with label dropout");
    CHECK_SAYS("has 10 class embeddings but no null class");
    CHECK(g == NULL);
    CHECK_OK(ddpm_guided_create(m, 1.0, GN, &g));
    if (g) {
        CHECK_FAIL(ddpm_guided_set_labels(g, NULL, GN), DDPM_ERR_INVALID_ARG);
        CHECK_SAYS("the model is class-conditional: give a class");
        CHECK_FAIL(ddpm_guided_fn(g, got, x, t, GN, GD), DDPM_ERR_INVALID_ARG);   /* no labels set */
        CHECK_SAYS("give a class");
        const int64_t bad[GN] = {3, 10};
        CHECK_FAIL(ddpm_guided_set_labels(g, bad, GN), DDPM_ERR_INVALID_ARG);
        CHECK_SAYS("class 10 is out of range: the model has classes 0..9");
        CHECK_OK(ddpm_guided_set_labels(g, labels, GN));
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        forward(m, c, x, t, labels);
        CHECK(memcmp(got, c, sizeof c) == 0);
    }
    ddpm_guided_free(g);
    g = NULL;
    CHECK_OK(ddpm_model_set_null_class(m, 9));
    forward(m, c, x, t, labels);
    forward(m, u, x, t, nulls);
    /* w = 1: the conditional output, one pass */
    CHECK_OK(ddpm_guided_create(m, 1.0, GN, &g));
    if (g) {
        CHECK_OK(ddpm_guided_set_labels(g, labels, GN));
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        CHECK(memcmp(got, c, sizeof c) == 0);
        CHECK_OK(ddpm_guided_set_labels(g, NULL, 0));   /* the null class */
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        CHECK(memcmp(got, u, sizeof u) == 0);
    }
    ddpm_guided_free(g);
    /* w = 0: the null-class output */
    CHECK_OK(ddpm_guided_create(m, 0.0, GN, &g));
    if (g) {
        CHECK_OK(ddpm_guided_set_labels(g, labels, GN));
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        CHECK(memcmp(got, u, sizeof u) == 0);
    }
    ddpm_guided_free(g);
    /* w = 3: u + 3 (c - u) from one pass of 2N rows */
    CHECK_OK(ddpm_guided_create(m, 3.0, GN, &g));
    if (g) {
        for (int i = 0; i < GN * GD; i++) want[i] = u[i] + 3.0f * (c[i] - u[i]);
        CHECK_OK(ddpm_guided_set_labels(g, labels, GN));
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        /* the 2N-row pass may round differently from N-row passes where a kernel's blocking depends on the batch
           (AVX2 builds): float32 rounding, 1e-5 */
        dd_check_close_f32("guidance 3", got, want, GN * GD, 1e-5, 1.0);
        /* a row of the null class gives u */
        const int64_t mixed[GN] = {3, 9};
        CHECK_OK(ddpm_guided_set_labels(g, mixed, GN));
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        dd_check_close_f32("guidance 3, null row", got, want, GD, 1e-5, 1.0);
        dd_check_close_f32("guidance 3, null row u", got + GD, u + GD, GD, 1e-5, 1.0);
        /* no labels: the null class everywhere */
        CHECK_OK(ddpm_guided_set_labels(g, NULL, 0));
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        CHECK(memcmp(got, u, sizeof u) == 0);
        /* errors: labels out of range (naming the null class), batch sizes, sample size */
        const int64_t bad[GN] = {3, 12};
        CHECK_FAIL(ddpm_guided_set_labels(g, bad, GN), DDPM_ERR_INVALID_ARG);
        CHECK_SAYS("class 12 is out of range: the model has classes 0..8");
        const int64_t neg[GN] = {-1, 0};
        CHECK_FAIL(ddpm_guided_set_labels(g, neg, GN), DDPM_ERR_INVALID_ARG);
        CHECK_FAIL(ddpm_guided_set_labels(g, labels, GN + 1), DDPM_ERR_INVALID_ARG);
        CHECK_OK(ddpm_guided_set_labels(g, labels, 1));
        CHECK_FAIL(ddpm_guided_fn(g, got, x, t, GN, GD), DDPM_ERR_INVALID_ARG);   /* 2 rows, 1 label */
        CHECK_OK(ddpm_guided_fn(g, got, x, t, 1, GD));
        dd_check_close_f32("guidance 3, one row", got, want, GD, 1e-6, 1.0);
        CHECK_FAIL(ddpm_guided_fn(g, got, x, t, 1, GD - 1), DDPM_ERR_INVALID_ARG);
        CHECK_FAIL(ddpm_guided_fn(g, got, x, t, GN + 1, GD), DDPM_ERR_INVALID_ARG);
        CHECK_FAIL(ddpm_guided_fn(NULL, got, x, t, 1, GD), DDPM_ERR_INVALID_ARG);
    }
    ddpm_guided_free(g);
    g = NULL;
    /* the plan must hold 2 rows per image when w != 1 */
    CHECK_FAIL(ddpm_guided_create(m, 3.0, GN + 1, &g), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("prepare it with max_batch = 6");
    CHECK_FAIL(ddpm_guided_create(m, NAN, GN, &g), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_guided_create(m, 3.0, 0, &g), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_guided_create(NULL, 1.0, 1, &g), DDPM_ERR_INVALID_ARG);
    CHECK_OK(ddpm_guided_create(m, 1.0, 2 * GN, &g));   /* w = 1 needs one row per image */
    ddpm_guided_free(g);
    ddpm_model_free(m);
    /* an unprepared model */
    ddpm_model *raw = NULL;
    CHECK_OK(ddpm_model_load(dd_test_data("unet_tiny_class"), 0, &raw));
    CHECK_FAIL(ddpm_guided_create(raw, 1.0, 1, &g), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("not prepared");
    ddpm_model_free(raw);
    /* an unconditional model runs as is; labels and guidance are refused */
    m = dd_test_model("tiny", 3, DDPM_ENGINE_FAST, 0, 2 * GN);
    CHECK_FAIL(ddpm_guided_create(m, 3.0, GN, &g), DDPM_ERR_INVALID_ARG);
    CHECK_SAYS("guidance 3 needs a class-conditional model trained with label dropout; this model has no class "
               "embedding");
    CHECK_OK(ddpm_guided_create(m, 1.0, GN, &g));
    if (g) {
        CHECK_FAIL(ddpm_guided_set_labels(g, labels, GN), DDPM_ERR_INVALID_ARG);
        CHECK_SAYS("unconditional");
        CHECK_OK(ddpm_guided_set_labels(g, NULL, 0));
        CHECK_OK(ddpm_guided_fn(g, got, x, t, GN, GD));
        CHECK_OK(ddpm_model_sampler_fn(m, want, x, t, GN, GD));
        CHECK(memcmp(got, want, sizeof want) == 0);
    }
    ddpm_guided_free(g);
    ddpm_guided_free(NULL);
    ddpm_model_free(m);
}

/* ------------------------------------------------------------------ scheduler_config.json */

static const char *sched_dir(const char *name, const char *json) {
    const char *dir = dd_test_tmpdir(name);
    char p[1200];
    snprintf(p, sizeof p, "%s/scheduler", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", dir);
    write_text(p, json);
    return dir;
}

static void same_tables(const char *what, const ddpm_diffusion *a, const ddpm_diffusion *b) {
    CHECK_MSG(a && b && a->T == b->T, "%s: T differs", what);
    if (!a || !b || a->T != b->T) return;
    CHECK_MSG(memcmp(a->betas, b->betas, sizeof(double) * (size_t)a->T) == 0, "%s: betas differ", what);
    CHECK_MSG(memcmp(a->alphas_cumprod, b->alphas_cumprod, sizeof(double) * (size_t)a->T) == 0,
              "%s: alphas_cumprod differ", what);
}

static void test_scheduler_defaults(void) {
    ddpm_diffusion *lin = dd_test_diffusion("linear", 1000);
    const char *dir = dd_test_tmpdir("app_sched_none");
    const char *specs[] = {"mnist", NULL, "", dir, dd_test_data("unet_tiny_class/config.json"), "/nonexistent/x"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        ddpm_pipeline_scheduler s;
        CHECK_OK(ddpm_pipeline_scheduler_load(specs[i], &s));
        CHECK(s.found == 0 && strcmp(s.class_name, "DDPMScheduler") == 0);
        CHECK(s.prediction == DDPM_PRED_EPS && s.variance == DDPM_VAR_FIXED_SMALL && s.clip_sample == 1 &&
              s.clip_range == 1.0 && s.spacing == DDPM_SPACING_LEADING && s.steps_offset == 0 &&
              s.set_alpha_to_one == 1);
        same_tables("defaults", s.diffusion, lin);
        ddpm_pipeline_scheduler_free(&s);
        ddpm_pipeline_scheduler_free(&s);   /* twice is harmless */
    }
    ddpm_pipeline_scheduler_free(NULL);
    /* an empty object: every default, found */
    const char *d2 = sched_dir("app_sched_empty", "{}");
    ddpm_pipeline_scheduler s;
    CHECK_OK(ddpm_pipeline_scheduler_load(d2, &s));
    CHECK(s.found == 1 && strcmp(s.class_name, "DDPMScheduler") == 0);
    same_tables("empty", s.diffusion, lin);
    ddpm_pipeline_scheduler_free(&s);
    ddpm_diffusion_free(lin);
    dd_test_remove_dir(dir);
    dd_test_remove_dir(d2);
}

static void test_scheduler_ddim(void) {
    /* as diffusers 0.27.2 writes DDIMScheduler(beta_schedule="scaled_linear", ...).save_config */
    const char *json =
        "{\n  \"_class_name\": \"DDIMScheduler\",\n  \"_diffusers_version\": \"0.27.2\",\n  \"beta_end\": 0.012,\n"
        "  \"beta_schedule\": \"scaled_linear\",\n  \"beta_start\": 0.00085,\n  \"clip_sample\": false,\n"
        "  \"clip_sample_range\": 1.5,\n  \"dynamic_thresholding_ratio\": 0.995,\n  \"num_train_timesteps\": 500,\n"
        "  \"prediction_type\": \"v_prediction\",\n  \"rescale_betas_zero_snr\": false,\n  \"sample_max_value\": 1.0,\n"
        "  \"set_alpha_to_one\": false,\n  \"steps_offset\": 1,\n  \"thresholding\": false,\n"
        "  \"timestep_spacing\": \"trailing\",\n  \"trained_betas\": null\n}\n";
    const char *dir = sched_dir("app_sched_ddim", json);
    ddpm_pipeline_scheduler s;
    CHECK_OK(ddpm_pipeline_scheduler_load(dir, &s));
    CHECK(s.found == 1 && strcmp(s.class_name, "DDIMScheduler") == 0);
    CHECK(s.prediction == DDPM_PRED_V && s.clip_sample == 0 && s.clip_range == 1.5 &&
          s.spacing == DDPM_SPACING_TRAILING && s.steps_offset == 1 && s.set_alpha_to_one == 0 &&
          s.variance == DDPM_VAR_FIXED_SMALL);
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    sc.name = "scaled_linear";
    sc.T = 500;
    sc.beta_start = 0.00085;
    sc.beta_end = 0.012;
    ddpm_diffusion *want = NULL;
    CHECK_OK(ddpm_diffusion_create(&sc, &want));
    same_tables("ddim", s.diffusion, want);
    ddpm_diffusion_free(want);
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
    ddpm_pipeline_scheduler_apply(&s, &cfg);
    CHECK(cfg.prediction == DDPM_PRED_V && cfg.clip_sample == 0 && cfg.clip_range == 1.5 &&
          cfg.spacing == DDPM_SPACING_TRAILING && cfg.steps_offset == 1 && cfg.set_alpha_to_one == 0 &&
          cfg.steps == 50 && cfg.kind == DDPM_SAMPLER_DDIM);
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DPMPP2M);
    ddpm_pipeline_scheduler_apply(&s, &cfg);
    CHECK(cfg.prediction == DDPM_PRED_V && cfg.clip_sample == 0 && cfg.spacing == DDPM_SPACING_LINSPACE &&
          cfg.steps_offset == 0 && cfg.steps == 20);
    ddpm_pipeline_scheduler_free(&s);
    dd_test_remove_dir(dir);
    /* variance types; DPMSolverMultistepScheduler's null variance; unknown keys of other classes */
    static const struct { const char *json; ddpm_variance v; } var[] = {
        {"{\"variance_type\": \"fixed_large\"}", DDPM_VAR_FIXED_LARGE},
        {"{\"variance_type\": \"fixed_small_log\"}", DDPM_VAR_FIXED_SMALL},
        {"{\"variance_type\": \"fixed_small\"}", DDPM_VAR_FIXED_SMALL},
        {"{\"_class_name\": \"DPMSolverMultistepScheduler\", \"variance_type\": null, \"algorithm_type\": "
         "\"dpmsolver++\", \"solver_order\": 2, \"use_karras_sigmas\": false, \"lambda_min_clipped\": -Infinity}",
         DDPM_VAR_FIXED_SMALL},
    };
    for (size_t i = 0; i < sizeof var / sizeof var[0]; i++) {
        if (i == 3) {   /* cJSON reads no Infinity: drop it */
            char buf[400];
            snprintf(buf, sizeof buf, "%s", var[i].json);
            char *p = strstr(buf, ", \"lambda_min_clipped\"");
            strcpy(p, "}");
            dir = sched_dir("app_sched_var", buf);
        } else {
            dir = sched_dir("app_sched_var", var[i].json);
        }
        CHECK_OK(ddpm_pipeline_scheduler_load(dir, &s));
        CHECK_MSG(s.variance == var[i].v, "case %zu", i);
        ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDPM);
        ddpm_pipeline_scheduler_apply(&s, &cfg);
        CHECK(cfg.variance == var[i].v);
        ddpm_pipeline_scheduler_free(&s);
        dd_test_remove_dir(dir);
    }
    /* a scheduler class the samplers are not is refused in one line naming it, not sampled as DDPM or DDIM */
    static const char *const others[] = {"EulerDiscreteScheduler", "HeunDiscreteScheduler", "UniPCMultistepScheduler",
                                         "PNDMScheduler", "ddimscheduler"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char buf[200];
        snprintf(buf, sizeof buf, "{\"_class_name\": \"%s\", \"beta_schedule\": \"linear\"}", others[i]);
        dir = sched_dir("app_sched_other", buf);
        CHECK_FAIL(ddpm_pipeline_scheduler_load(dir, &s), DDPM_ERR_UNSUPPORTED);
        const char *msg = ddpm_last_error();
        CHECK_MSG(strstr(msg, others[i]) && strstr(msg, "does not implement") && strstr(msg, "_class_name") &&
                  !strchr(msg, '\n'), "%s: %s", others[i], msg);
        dd_test_remove_dir(dir);
    }
}

static void test_scheduler_trained(void) {
    const double betas[4] = {0.001, 0.01, 0.1, 0.5};
    ddpm_diffusion *want = NULL;
    CHECK_OK(ddpm_diffusion_from_betas(betas, 4, &want));
    const char *dir = sched_dir("app_sched_trained", "{\"trained_betas\": [0.001, 0.01, 0.1, 0.5], "
                                "\"beta_schedule\": \"linear\"}");
    ddpm_pipeline_scheduler s;
    CHECK_OK(ddpm_pipeline_scheduler_load(dir, &s));
    same_tables("trained_betas", s.diffusion, want);
    ddpm_pipeline_scheduler_free(&s);
    dd_test_remove_dir(dir);
    dir = sched_dir("app_sched_trained", "{\"num_train_timesteps\": 4, \"trained_betas\": [0.001, 0.01, 0.1, 0.5]}");
    CHECK_OK(ddpm_pipeline_scheduler_load(dir, &s));
    same_tables("trained_betas with T", s.diffusion, want);
    ddpm_pipeline_scheduler_free(&s);
    dd_test_remove_dir(dir);
    ddpm_diffusion_free(want);
}

/* What ddpm_model_save writes reads back to the very same tables. */
static void test_scheduler_round_trip(void) {
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_load("tiny", 0, &m));
    if (!m) return;
    static const struct { const char *name; int T; int scale; ddpm_prediction p; } cases[] = {
        {"cosine", 1000, 0, DDPM_PRED_V}, {"linear", 500, 1, DDPM_PRED_X0}, {"scaled_linear", 1000, 0, DDPM_PRED_EPS},
        {"sigmoid", 200, 0, DDPM_PRED_EPS}, {"sqrt", 300, 0, DDPM_PRED_V}, {"sigmoid_chen", 100, 0, DDPM_PRED_EPS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ddpm_schedule_config sc;
        ddpm_schedule_config_default(&sc);
        sc.name = cases[i].name;
        sc.T = cases[i].T;
        sc.scale_to_T = cases[i].scale;
        const char *dir = dd_test_tmpdir("app_sched_round");
        CHECK_OK(ddpm_model_save(m, dir, &sc, cases[i].p));
        ddpm_pipeline_scheduler s;
        CHECK_OK(ddpm_pipeline_scheduler_load(dir, &s));
        CHECK_MSG(s.found == 1 && s.prediction == cases[i].p, "%s: found %d prediction %d", cases[i].name, s.found,
                  (int)s.prediction);
        ddpm_diffusion *want = NULL;
        CHECK_OK(ddpm_diffusion_create(&sc, &want));
        same_tables(cases[i].name, s.diffusion, want);
        ddpm_diffusion_free(want);
        ddpm_pipeline_scheduler_free(&s);
        dd_test_remove_dir(dir);
    }
    ddpm_model_free(m);
}

static void test_scheduler_refusals(void) {
    static const struct { const char *json; ddpm_status st; const char *says1, *says2; } bad[] = {
        {"{\"thresholding\": true}", DDPM_ERR_UNSUPPORTED, "thresholding", "true"},
        {"{\"rescale_betas_zero_snr\": true}", DDPM_ERR_UNSUPPORTED, "rescale_betas_zero_snr", "true"},
        {"{\"variance_type\": \"learned_range\"}", DDPM_ERR_UNSUPPORTED, "variance_type", "learned_range"},
        {"{\"variance_type\": \"fixed_large_log\"}", DDPM_ERR_UNSUPPORTED, "variance_type", "fixed_large_log"},
        {"{\"variance_type\": \"wide\"}", DDPM_ERR_UNSUPPORTED, "variance_type", "wide"},
        {"{\"prediction_type\": \"flow\"}", DDPM_ERR_UNSUPPORTED, "prediction_type", "flow"},
        {"{\"beta_schedule\": \"exp\"}", DDPM_ERR_UNSUPPORTED, "beta_schedule", "exp"},
        {"{\"timestep_spacing\": \"karras\"}", DDPM_ERR_UNSUPPORTED, "timestep_spacing", "karras"},
        {"{\"clip_sample\": \"yes\"}", DDPM_ERR_FORMAT, "clip_sample", "true or false"},
        {"{\"clip_sample_range\": 0}", DDPM_ERR_INVALID_ARG, "clip_sample_range", "positive"},
        {"{\"num_train_timesteps\": 0}", DDPM_ERR_INVALID_ARG, "num_train_timesteps", "out of range"},
        {"{\"num_train_timesteps\": 10.5}", DDPM_ERR_FORMAT, "num_train_timesteps", "integer"},
        {"{\"steps_offset\": -1}", DDPM_ERR_INVALID_ARG, "steps_offset", "out of range"},
        {"{\"beta_start\": \"0.1\"}", DDPM_ERR_FORMAT, "beta_start", "a number"},
        {"{\"beta_start\": 2}", DDPM_ERR_INVALID_ARG, "beta_start", "(0, 1)"},
        {"{\"trained_betas\": [0.1, 1.5]}", DDPM_ERR_INVALID_ARG, "trained_betas[1]", "1.5"},
        {"{\"trained_betas\": [0.1, \"x\"]}", DDPM_ERR_FORMAT, "trained_betas[1]", "a number"},
        {"{\"trained_betas\": []}", DDPM_ERR_INVALID_ARG, "trained_betas", "0 values"},
        {"{\"trained_betas\": 0.1}", DDPM_ERR_FORMAT, "trained_betas", "a list"},
        {"{\"num_train_timesteps\": 3, \"trained_betas\": [0.1, 0.2]}", DDPM_ERR_INVALID_ARG, "trained_betas",
         "num_train_timesteps = 3"},
        {"{\"_class_name\": 3}", DDPM_ERR_FORMAT, "_class_name", "a string"},
        {"{\"steps_offset\": 1, \"steps_offset\": 1}", DDPM_ERR_FORMAT, "steps_offset", "twice"},
        {"[1, 2]", DDPM_ERR_FORMAT, "JSON object", NULL},
        {"{\"beta_start\": ", DDPM_ERR_FORMAT, "not valid JSON", NULL},
        {"{} x", DDPM_ERR_FORMAT, "unexpected text", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *dir = sched_dir("app_sched_bad", bad[i].json);
        ddpm_pipeline_scheduler s;
        ddpm_status st = ddpm_pipeline_scheduler_load(dir, &s);
        CHECK_MSG(st == bad[i].st, "%s -> %s (want %s): %s", bad[i].json, ddpm_status_name(st),
                  ddpm_status_name(bad[i].st), ddpm_last_error());
        CHECK(s.diffusion == NULL);
        CHECK_SAYS("scheduler/scheduler_config.json");
        if (bad[i].says1) CHECK_SAYS(bad[i].says1);
        if (bad[i].says2) CHECK_SAYS(bad[i].says2);
        ddpm_pipeline_scheduler_free(&s);
        dd_test_remove_dir(dir);
    }
}

/* ------------------------------------------------------------------ image inputs */

static uint8_t *read_bytes(const char *path, size_t *len) { return (uint8_t *)read_text(path, len); }

static void same_image(const char *what, const ddpm_image *a, const ddpm_image *b) {
    int ok = a->width == b->width && a->height == b->height && a->channels == b->channels && a->pixels &&
             b->pixels &&
             memcmp(a->pixels, b->pixels, (size_t)a->width * (size_t)a->height * (size_t)a->channels) == 0;
    CHECK_MSG(ok, "%s: images differ", what);
}

static void test_image_read(void) {
    static const struct { const char *rel; int png; int channels; } files[] = {
        {"io/rgb.png", 1, 3}, {"io/gray.png", 1, 1}, {"io/palette.png", 1, 3}, {"jpeg/rgb.jpg", 0, 3},
        {"jpeg/gray.jpg", 0, 1}, {"jpeg/rgb_progressive.jpg", 0, 3},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *path = dd_test_data(files[i].rel);
        ddpm_image a, b, c;
        CHECK_OK(ddpm_image_read(path, &a));
        CHECK_OK(files[i].png ? ddpm_png_read(path, &b) : ddpm_jpeg_read(path, &b));
        size_t len = 0;
        uint8_t *buf = read_bytes(path, &len);
        CHECK_OK(ddpm_image_read_memory(buf, len, &c));
        CHECK_MSG(a.channels == files[i].channels, "%s: %d channels", files[i].rel, a.channels);
        same_image(files[i].rel, &a, &b);
        same_image(files[i].rel, &c, &b);
        free(buf);
        ddpm_image_free(&a);
        ddpm_image_free(&b);
        ddpm_image_free(&c);
    }
    /* not an image: by content, whatever the name */
    const char *dir = dd_test_tmpdir("app_image_read");
    char path[1200];
    snprintf(path, sizeof path, "%s/fake.png", dir);
    write_text(path, "hello, this is not a picture");
    ddpm_image img;
    CHECK_FAIL(ddpm_image_read(path, &img), DDPM_ERR_FORMAT);
    CHECK_SAYS("fake.png is neither a PNG nor a JPEG file");
    CHECK(img.pixels == NULL);
    snprintf(path, sizeof path, "%s/empty.jpg", dir);
    dd_write_bytes(path, "", 0);
    CHECK_FAIL(ddpm_image_read(path, &img), DDPM_ERR_FORMAT);
    CHECK_SAYS("neither a PNG nor a JPEG");
    CHECK_FAIL(ddpm_image_read(dir, &img), DDPM_ERR_IO);
    CHECK_SAYS("directory");
    snprintf(path, sizeof path, "%s/missing.png", dir);
    CHECK_FAIL(ddpm_image_read(path, &img), DDPM_ERR_IO);
    CHECK_SAYS("missing.png");
    CHECK_FAIL(ddpm_image_read_memory("GIF89a....", 10, &img), DDPM_ERR_FORMAT);
    CHECK_SAYS("neither a PNG nor a JPEG file");
    CHECK_FAIL(ddpm_image_read_memory(NULL, 0, &img), DDPM_ERR_FORMAT);
    /* a signature with a broken body goes to the decoder, which says what is wrong */
    static const uint8_t png_head[12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13};
    static const uint8_t jpg_head[6] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16};
    CHECK_FAIL(ddpm_image_read_memory(png_head, sizeof png_head, &img), DDPM_ERR_FORMAT);
    CHECK(img.pixels == NULL);
    CHECK_FAIL(ddpm_image_read_memory(jpg_head, sizeof jpg_head, &img), DDPM_ERR_FORMAT);
    CHECK(img.pixels == NULL);
    size_t len = 0;
    uint8_t *cmyk = read_bytes(dd_test_data("jpeg/cmyk.jpg"), &len);
    ddpm_status st = ddpm_image_read_memory(cmyk, len, &img);
    CHECK(st != DDPM_OK && img.pixels == NULL);
    free(cmyk);
    dd_test_remove_dir(dir);
}

static void test_image_to_model(void) {
    /* 30 x 28 RGB: the shorter side is already 28, so the center crop is columns 1..28, copied exactly */
    ddpm_image img;
    CHECK_OK(ddpm_image_alloc(&img, 30, 28, 3));
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 30; x++)
            for (int c = 0; c < 3; c++) img.pixels[(y * 30 + x) * 3 + c] = (uint8_t)((x * 7 + y * 13 + c * 50) & 255);
    float *out = malloc(3 * 32 * 32 * sizeof(float));
    CHECK_OK(ddpm_image_to_model(&img, 28, 3, out));
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                float want = (float)(img.pixels[(y * 30 + x + 1) * 3 + c] / 127.5 - 1.0);
                if (out[(c * 28 + y) * 28 + x] != want) bad++;
            }
    CHECK_MSG(bad == 0, "%d values differ from the center crop", bad);
    /* same size: ddpm_image_to_f32 */
    ddpm_image sq;
    CHECK_OK(ddpm_image_alloc(&sq, 8, 8, 1));
    for (int i = 0; i < 64; i++) sq.pixels[i] = (uint8_t)(i * 4);
    float a[64], b[64];
    CHECK_OK(ddpm_image_to_model(&sq, 8, 1, a));
    ddpm_image_to_f32(&sq, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* 16 x 16 -> 8: 2 x 2 area averages */
    ddpm_image big;
    CHECK_OK(ddpm_image_alloc(&big, 16, 16, 1));
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) big.pixels[y * 16 + x] = (uint8_t)((x % 2) * 100 + (y % 2) * 20);   /* mean 60 */
    CHECK_OK(ddpm_image_to_model(&big, 8, 1, a));
    for (int i = 0; i < 64; i++) CHECK_MSG(a[i] == (float)(60 / 127.5 - 1.0), "pixel %d: %g", i, (double)a[i]);
    /* a tall image to 32: resized (enlarged) and cropped to 32 x 32 */
    ddpm_image tall;
    CHECK_OK(ddpm_image_alloc(&tall, 5, 9, 3));
    memset(tall.pixels, 200, 5 * 9 * 3);
    CHECK_OK(ddpm_image_to_model(&tall, 32, 3, out));
    bad = 0;
    for (int i = 0; i < 3 * 32 * 32; i++)
        if (out[i] != (float)(200 / 127.5 - 1.0)) bad++;
    CHECK(bad == 0);
    /* channels: converted as the training data is (BT.601 luma; gray repeated) */
    {
        ddpm_image rgb;
        CHECK_OK(ddpm_image_alloc(&rgb, 2, 2, 3));
        for (int i = 0; i < 4; i++) rgb.pixels[3 * i] = 200, rgb.pixels[3 * i + 1] = 100, rgb.pixels[3 * i + 2] = 50;
        float g[4];
        CHECK_OK(ddpm_image_to_model(&rgb, 2, 1, g));
        for (int i = 0; i < 4; i++) CHECK_MSG(g[i] == (float)(124 / 127.5 - 1.0), "luma %d: %g", i, (double)g[i]);
        ddpm_image_free(&rgb);
        float c3[3 * 64];
        CHECK_OK(ddpm_image_to_model(&sq, 8, 3, c3));
        ddpm_image_to_f32(&sq, b);
        for (int c = 0; c < 3; c++) CHECK(memcmp(c3 + 64 * c, b, sizeof b) == 0);
    }
    CHECK_FAIL(ddpm_image_to_model(&sq, 0, 1, out), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_to_model(&sq, 8, 2, out), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_to_model(NULL, 8, 1, out), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_image_to_model(&sq, 8, 1, NULL), DDPM_ERR_INVALID_ARG);
    ddpm_image_free(&img);
    ddpm_image_free(&sq);
    ddpm_image_free(&big);
    ddpm_image_free(&tall);
    free(out);
    /* a file end to end: the 16 x 12 JPEG to 8 x 8 */
    ddpm_image j;
    CHECK_OK(ddpm_image_read(dd_test_data("jpeg/rgb.jpg"), &j));
    float f[3 * 64];
    CHECK_OK(ddpm_image_to_model(&j, 8, 3, f));
    for (int i = 0; i < 3 * 64; i++) CHECK(f[i] >= -1.0f && f[i] <= 1.0f);
    ddpm_image_free(&j);
}

static void test_mask(void) {
    ddpm_image m;
    float out[64];
    /* 4 x 4 gray, same size: exact threshold */
    CHECK_OK(ddpm_image_alloc(&m, 4, 4, 1));
    const uint8_t g4[16] = {0, 127, 128, 255, 255, 128, 127, 0, 1, 2, 200, 201, 129, 126, 64, 192};
    memcpy(m.pixels, g4, 16);
    CHECK_OK(ddpm_mask_to_model(&m, 4, out));
    for (int i = 0; i < 16; i++) CHECK_MSG(out[i] == (g4[i] >= 128 ? 1.0f : 0.0f), "mask %d: %g", i, (double)out[i]);
    ddpm_image_free(&m);
    /* RGB: converted to gray (BT.601) first: red 76 -> keep, green 150 -> generate, white, black */
    CHECK_OK(ddpm_image_alloc(&m, 2, 2, 3));
    const uint8_t rgb[12] = {255, 0, 0, 0, 255, 0, 255, 255, 255, 0, 0, 0};
    memcpy(m.pixels, rgb, 12);
    CHECK_OK(ddpm_mask_to_model(&m, 2, out));
    CHECK(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f && out[3] == 0.0f);
    ddpm_image_free(&m);
    /* resized: a 20 x 10 mask whose right half is white, to 4: the center crop is columns 5..14, the right
       half of it white */
    CHECK_OK(ddpm_image_alloc(&m, 20, 10, 1));
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 20; x++) m.pixels[y * 20 + x] = x >= 10 ? 255 : 0;
    CHECK_OK(ddpm_mask_to_model(&m, 4, out));
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) CHECK_MSG(out[y * 4 + x] == (x >= 2 ? 1.0f : 0.0f), "(%d, %d)", x, y);
    CHECK_FAIL(ddpm_mask_to_model(&m, 0, out), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_mask_to_model(&m, 4, NULL), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_mask_to_model(NULL, 4, out), DDPM_ERR_INVALID_ARG);
    ddpm_image_free(&m);
}

int main(void) {
    test_null_class();
    test_guidance_key();
    test_trainer_null_class();
    test_guided();
    test_scheduler_defaults();
    test_scheduler_ddim();
    test_scheduler_trained();
    test_scheduler_round_trip();
    test_scheduler_refusals();
    test_image_read();
    test_image_to_model();
    test_mask();
    return dd_test_finish("test_app_inputs");
}
