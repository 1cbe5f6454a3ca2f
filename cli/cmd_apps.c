/* cmd_apps.c — what a trained model is used for besides plain sampling: `ddpm interpolate` (between two images,
   through the noised images or their DDIM inversions), `ddpm inpaint` (RePaint), `ddpm img2img` (SDEdit) and
   `ddpm denoise` (a noisy photo as a point x_t of the forward process). Each writes a captioned strip. */
#include <ddpm.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_common.h"
#include "options.h"

#define MAX_IMAGES 64
#define CHUNK 16

/* Shared setup: common options, required ones, the model, labels of `num` images and the sampler. */
static int setup(app_ctx *c, const cli_args *a, const char *const *required, int64_t num, ddpm_sampler_kind kind,
                 ddpm_sampler_config *cfg) {
    int rc = app_parse_common(a, c);
    for (int i = 0; rc == CLI_OK && required[i]; i++) rc = cli_require(a, required[i]);
    if (rc == CLI_OK) rc = app_load_model(c);
    if (rc == CLI_OK) rc = app_labels(c, num, 0);
    if (rc == CLI_OK) rc = app_sampler_config(c, kind, cfg);
    if (rc == CLI_OK) app_hook(c, cfg);
    return rc;
}

/* Writes the strip with its description, then "wrote OUT: <body>, <the time since t0>". */
static int finish(app_ctx *c, const app_strip *s, const char *what, double t0, const char *body) {
    char dur[32];
    cli_duration(dur, sizeof dur, cli_now() - t0);
    int rc = app_strip_write(c, s, cli_str(c->a, "out"), what);
    if (rc == CLI_OK) printf("wrote %s: %s, %s\n", cli_str(c->a, "out"), body, dur);
    return rc;
}

/* ================================================================================ interpolate */

static const cli_option interp_options[] = {
    APP_OPT_MODEL,
    {"a", "IMG", NULL, "the first image, PNG or JPEG (resized and centre-cropped to the model's size) (required)"},
    {"b", "IMG", NULL, "the second image, the same size as --a (required)"},
    {"mode", "noise|ddim", "noise", "noise: mix the two images noised to --t, then denoise (the seed's "
                                    "interpolate); ddim: spherical mix of their DDIM inversions, decoded by DDIM"},
    {"t", "K", NULL, "noise mode: the timestep both images are noised to, 0 <= K < T (default: 500, or T/2 when "
                     "T <= 500)"},
    {"lambdas", "L1,L2,...", "0,0.25,0.5,0.75,1", "mixing weights in [0, 1], one image each (lambda 0 = a)"},
    {"out", "FILE.png", NULL, "the strip [a, one image per lambda, b] (required)"},
    {"sampler", "ddpm|ddim|dpmpp2m", NULL, "the reverse process (default: ddpm in noise mode; ddim mode uses ddim)"},
    APP_OPT_STEPS,
    APP_OPT_TAIL,
};

static int parse_lambdas(const char *s, double *out, int *n) {
    *n = 0;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64], *end;
        if (len == 0 || len >= sizeof item) return cli_usage_error("--lambdas %s: expected numbers like 0,0.5,1", s);
        memcpy(item, p, len);
        item[len] = 0;
        double v = strtod(item, &end);
        if (end == item || *end || !isfinite(v)) return cli_usage_error("--lambdas %s: '%s' is not a number", s, item);
        if (v < 0 || v > 1) return cli_usage_error("--lambdas %s: %s is outside [0, 1]", s, item);
        if (*n >= MAX_IMAGES) return cli_usage_error("--lambdas %s: at most %d images", s, MAX_IMAGES);
        out[(*n)++] = v;
        if (!comma) return CLI_OK;
        p = comma + 1;
    }
}

static int interp_run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    static const char *const required[] = {"a", "b", "out", NULL};
    app_ctx c;
    app_strip strip;
    ddpm_sampler_config cfg;
    double lam[MAX_IMAGES];
    int nl = 0, ddim_mode = 0, first = 0;
    long long tk = -1;
    int64_t t_at = 0;
    ddpm_image ia, ib;
    memset(&c, 0, sizeof c);
    memset(&ia, 0, sizeof ia);
    memset(&ib, 0, sizeof ib);

    const char *mode = cli_str(a, "mode");
    int rc = CLI_OK;
    if (strcmp(mode, "ddim") == 0) ddim_mode = 1;
    else if (strcmp(mode, "noise") != 0) rc = cli_usage_error("--mode %s: must be noise or ddim", mode);
    if (rc == CLI_OK) rc = parse_lambdas(cli_str(a, "lambdas"), lam, &nl);
    if (rc == CLI_OK && ddim_mode && cli_given(a, "t"))
        rc = cli_usage_error("--t %s: --mode ddim inverts the images all the way; --t is for --mode noise",
                             cli_str(a, "t"));
    if (rc == CLI_OK && ddim_mode && cli_given(a, "sampler") && strcmp(cli_str(a, "sampler"), "ddim") != 0)
        rc = cli_usage_error("--sampler %s: --mode ddim inverts and decodes with ddim", cli_str(a, "sampler"));
    if (rc == CLI_OK && cli_given(a, "t")) rc = cli_int(a, "t", 0, (long long)1 << 40, &tk);
    if (rc != CLI_OK) return rc;
    if ((rc = setup(&c, a, required, nl < 2 ? 2 : nl, ddim_mode ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM, &cfg)))
        goto done;
    const int T = c.d->T;
    const size_t D = (size_t)c.D;
    if (ddim_mode) {
        cfg.eta = 0;
        cfg.clip_sample = 0;
    } else {
        if (tk < 0) tk = T > 500 ? 500 : T / 2;
        if (tk >= T) {
            rc = cli_usage_error("--t %lld is outside [0, %d)", tk, T);
            goto done;
        }
        if (ddpm_sampler_first_step(&cfg, T, tk, &first, &t_at) != DDPM_OK) {
            rc = cli_usage_error("--t %lld: %s", tk, ddpm_last_error());
            goto done;
        }
        cfg.first_step = first;
    }
    float *fa = app_alloc(&c, sizeof(float) * 2 * D), *fb = fa ? fa + D : NULL;
    double *x = app_alloc(&c, sizeof(double) * (size_t)nl * D), *ends = app_alloc(&c, sizeof(double) * 2 * D);
    if (!fa || !x || !ends || (rc = app_strip_init(&c, &strip, nl + 2)) != CLI_OK) {
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = app_read_image(&c, "a", cli_str(a, "a"), fa, &ia)) != CLI_OK) goto done;
    if ((rc = app_read_image(&c, "b", cli_str(a, "b"), fb, &ib)) != CLI_OK) goto done;
    if (ia.width != ib.width || ia.height != ib.height) {
        rc = cli_error(CLI_FAIL, "--a %s is %dx%d pixels but --b %s is %dx%d; give two images of the same size", cli_str(a, "a"),
                       ia.width, ia.height, cli_str(a, "b"), ib.width, ib.height);
        goto done;
    }
    for (size_t k = 0; k < 2 * D; k++) ends[k] = (double)fa[k];
    double t0 = cli_now();
    if (ddim_mode) {
        ddpm_sample_request inv = {.run = DDPM_RUN_INVERT};   /* app_run sets the chunks, labels and guidance */
        /* one plan for the inversion and the decoding */
        if ((rc = app_prepare(&c, nl < 2 ? 2 : nl < CHUNK ? nl : CHUNK)) != CLI_OK) goto done;
        c.batch = 2;
        app_progress_start(&c, "inverting a and b", cfg.steps, 2);
        if ((rc = app_run(&c, &cfg, &inv, ends, 2)) != CLI_OK) goto done;
        for (int i = 0; i < nl; i++) ddpm_slerp(ends, ends + D, lam[i], x + (size_t)i * D, c.D);
    } else {
        /* both images noised to t_at with their own streams (items 0 and 1), then mixed */
        if (ddpm_noise_images(c.d, c.seed, t_at, ends, 0, 2, c.D, ends) != DDPM_OK) {
            rc = cli_fail();
            goto done;
        }
        for (int i = 0; i < nl; i++)
            for (size_t k = 0; k < D; k++) x[(size_t)i * D + k] = (1 - lam[i]) * ends[k] + lam[i] * ends[D + k];
    }
    c.batch = nl < CHUNK ? nl : CHUNK;
    app_progress_start(&c, ddim_mode ? "decoding" : "interpolating",
                       (long long)((nl + c.batch - 1) / c.batch) * (cfg.steps - first), nl);
    if ((rc = app_sample_all(&c, &cfg, x, nl, APP_XT_GIVEN)) != CLI_OK) goto done;

    app_strip_add(&c, &strip, fa, NULL, "a");
    for (int i = 0; i < nl; i++) app_strip_add(&c, &strip, NULL, x + (size_t)i * D, "\xce\xbb = %g", lam[i]);   /* λ */
    app_strip_add(&c, &strip, fb, NULL, "b");
    char what[200], body[300];
    if (ddim_mode)
        snprintf(what, sizeof what, "interpolation of DDIM inversions (%d steps), slerp, seed %llu", cfg.steps,
                 (unsigned long long)c.seed);
    else
        snprintf(what, sizeof what, "interpolation at t = %lld, %s from step %d of %d, seed %llu", (long long)t_at,
                 app_sampler_name(cfg.kind), first, cfg.steps, (unsigned long long)c.seed);
    snprintf(body, sizeof body, "a, %d images, b (%s)", nl, what);
    rc = finish(&c, &strip, what, t0, body);
done:
    app_free(&c);
    ddpm_image_free(&ia);
    ddpm_image_free(&ib);
    return rc;
}

const cli_command cli_cmd_interpolate = {
    "interpolate",
    "interpolate between two images through the diffusion (noised mix, or DDIM inversion + slerp)",
    "[--model DIR] --a IMG --b IMG --out strip.png [--mode noise|ddim] [--t K]\n"
    "                        [--lambdas L1,L2,...] [--sampler S] [--steps N] [--seed S] [--class K] [--guidance W]",
    NULL, 0, 0, interp_options,
    "noise mode (Ho et al. 2020, fig. 8): both images are noised to t with their own noise (streams (noising, 0,\n"
    "0) and (noising, 0, 1) of the seed), mixed as (1 - lambda) x_a + lambda x_b and denoised from t; small t keeps\n"
    "the pixels of the mix, large t gives new images that share only coarse features. ddim mode (Song et al.\n"
    "2021): both images are mapped to their x_T by DDIM inversion, mixed by slerp and decoded by DDIM (eta 0).\n\n"
    "examples:\n"
    "  ddpm interpolate --a one.png --b seven.png --t 400 --out interp.png\n"
    "  ddpm interpolate --a one.png --b seven.png --mode ddim --lambdas 0,0.2,0.4,0.6,0.8,1 --out interp.png\n",
    interp_run,
};

/* ================================================================================ inpaint */

static const cli_option inpaint_options[] = {
    APP_OPT_MODEL,
    {"image", "IMG", NULL, "the image to complete, PNG or JPEG (required)"},
    {"mask", "MASK", NULL, "a mask the size of the image: light (>= 128) = regenerate, dark = keep (required)"},
    {"out", "FILE.png", NULL, "the strip [image, masked image, results] (required)"},
    {"sampler", "ddpm|ddim", "ddpm", "the reverse process"},
    APP_OPT_STEPS,
    {"jump-length", "J", "10", "RePaint: steps gone back at each jump"},
    {"jump-n-sample", "R", "1", "RePaint: passes over each jump (1 = no resampling; 10 in the paper)"},
    {"num", "N", "4", "results, each from its own x_T"},
    APP_OPT_TAIL,
};

static int inpaint_run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    static const char *const required[] = {"image", "mask", "out", NULL};
    app_ctx c;
    app_strip strip;
    ddpm_sampler_config cfg;
    ddpm_inpaint_config ic;
    long long num = 4, jl = 10, jn = 1;
    ddpm_image img, mimg;
    memset(&c, 0, sizeof c);
    memset(&img, 0, sizeof img);
    memset(&mimg, 0, sizeof mimg);
    ddpm_inpaint_config_default(&ic);

    int rc = cli_int(a, "num", 1, MAX_IMAGES, &num);
    if (rc == CLI_OK) rc = cli_int(a, "jump-length", 0, 1 << 20, &jl);
    if (rc == CLI_OK) rc = cli_int(a, "jump-n-sample", 1, 1000, &jn);
    if (rc == CLI_OK && strcmp(cli_str(a, "sampler"), "dpmpp2m") == 0)
        rc = cli_usage_error("--sampler dpmpp2m: inpainting runs with ddpm or ddim");
    if (rc != CLI_OK) return rc;
    if ((rc = setup(&c, a, required, num, DDPM_SAMPLER_DDPM, &cfg)) != CLI_OK) goto done;
    if (jn > 1 && jl >= cfg.steps) {
        rc = cli_usage_error("--jump-length %lld: must be smaller than the %d sampler steps", jl, cfg.steps);
        goto done;
    }
    ic.jump_length = (int)jl;
    ic.jump_n_sample = (int)jn;
    const size_t D = (size_t)c.D, P = (size_t)c.S * (size_t)c.S, nd = (size_t)num * D;
    float *known_f = app_alloc(&c, sizeof(float) * 2 * D), *masked = known_f ? known_f + D : NULL;
    float *mask_f = app_alloc(&c, sizeof(float) * P);
    double *x = app_alloc(&c, sizeof(double) * 3 * nd), *known = x ? x + nd : NULL, *mask = x ? x + 2 * nd : NULL;
    if (!known_f || !mask_f || !x || (rc = app_strip_init(&c, &strip, (int)num + 2)) != CLI_OK) {
        rc = CLI_FAIL;
        goto done;
    }
    const char *mpath = cli_str(a, "mask");
    if ((rc = app_read_image(&c, "image", cli_str(a, "image"), known_f, &img)) != CLI_OK) goto done;
    if (ddpm_image_read(mpath, &mimg) != DDPM_OK) {
        rc = cli_error(CLI_FAIL, "--mask %s: %s", mpath, ddpm_last_error());
        goto done;
    }
    if (mimg.width != img.width || mimg.height != img.height) {
        rc = cli_error(CLI_FAIL, "--mask %s is %dx%d pixels but --image %s is %dx%d; the mask must have the image's size",
                       mpath, mimg.width, mimg.height, cli_str(a, "image"), img.width, img.height);
        goto done;
    }
    if (ddpm_mask_to_model(&mimg, c.S, mask_f) != DDPM_OK) {
        rc = cli_error(CLI_FAIL, "--mask %s: %s", mpath, ddpm_last_error());
        goto done;
    }
    double frac = 0;
    for (size_t p = 0; p < P; p++) frac += mask_f[p];
    for (size_t k = 0; k < nd; k++) {   /* the image and the mask for every result */
        known[k] = known_f[k % D];
        mask[k] = mask_f[k % P];
    }
    c.batch = (int)(num < CHUNK ? num : CHUNK);
    long long per = cfg.steps;
    if (jn > 1 && jl > 0) per += (jn - 1) * jl * (cfg.steps / jl);
    app_progress_start(&c, "inpainting", (num + c.batch - 1) / c.batch * per, num);
    double t0 = cli_now();
    ddpm_sample_request r = {.run = DDPM_RUN_INPAINT, .xt = DDPM_XT_SEED, .inpaint = &ic, .known = known, .mask = mask};
    if ((rc = app_run(&c, &cfg, &r, x, num)) != CLI_OK) goto done;
    for (size_t k = 0; k < D; k++)   /* the masked image: the area to regenerate shown mid-gray (0) */
        masked[k] = mask_f[k % P] >= 0.5f ? 0.0f : known_f[k];
    app_strip_add(&c, &strip, known_f, NULL, "image");
    app_strip_add(&c, &strip, masked, NULL, "masked");
    for (long long i = 0; i < num; i++) app_strip_add(&c, &strip, NULL, x + (size_t)i * D, "result %lld", i + 1);
    char what[200], body[300];
    snprintf(what, sizeof what, "RePaint, %s %d steps, jump length %lld, jump n sample %lld, seed %llu, %.0f%% "
             "regenerated", app_sampler_name(cfg.kind), cfg.steps, jl, jn, (unsigned long long)c.seed,
             100.0 * frac / (double)P);
    snprintf(body, sizeof body, "image, masked, %lld results (%s)", num, what);
    rc = finish(&c, &strip, what, t0, body);
done:
    app_free(&c);
    ddpm_image_free(&img);
    ddpm_image_free(&mimg);
    return rc;
}

const cli_command cli_cmd_inpaint = {
    "inpaint",
    "fill the light area of a mask with new content that fits the rest (RePaint)",
    "[--model DIR] --image IMG --mask MASK --out strip.png [--sampler ddpm|ddim] [--steps N]\n"
    "                    [--jump-length J] [--jump-n-sample R] [--num N] [--seed S] [--class K]",
    NULL, 0, 0, inpaint_options,
    "RePaint (Lugmayr et al. 2022): at every step the area to keep is replaced by the image noised to the step's\n"
    "timestep, so the generated area is denoised in agreement with it; --jump-n-sample R > 1 goes back\n"
    "--jump-length steps and redoes them R - 1 times per jump, which harmonises the seam. The mask is resized\n"
    "like the image; gray >= 128 is regenerated.\n\n"
    "examples:\n"
    "  ddpm inpaint --image digit.png --mask lower_half.png --num 6 --out inpaint.png\n"
    "  ddpm inpaint --image digit.png --mask hole.png --jump-n-sample 10 --sampler ddim --steps 100 --out r.png\n",
    inpaint_run,
};

/* ================================================================================ img2img */

static const cli_option img2img_options[] = {
    APP_OPT_MODEL,
    {"image", "IMG", NULL, "the starting image, PNG or JPEG (required)"},
    {"strength", "S", NULL, "how far to noise it, in (0, 1]: 1 = from pure noise, small = close to the image "
                            "(required)"},
    {"out", "FILE.png", NULL, "the strip [input, results] (required)"},
    APP_OPT_SAMPLER("ddim"),
    APP_OPT_STEPS,
    {"num", "N", "4", "results, each with its own noise"},
    APP_OPT_TAIL,
};

static int img2img_run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    static const char *const required[] = {"image", "strength", "out", NULL};
    app_ctx c;
    app_strip strip;
    ddpm_sampler_config cfg;
    long long num = 4;
    double s = 0;
    memset(&c, 0, sizeof c);

    int rc = cli_int(a, "num", 1, MAX_IMAGES, &num);
    if (rc == CLI_OK) rc = cli_require(a, "strength");
    if (rc == CLI_OK) rc = cli_double(a, "strength", 0, 1, 0, &s);
    if (rc == CLI_OK && !(s > 0)) rc = cli_usage_error("--strength %s: must be in (0, 1]", cli_str(a, "strength"));
    if (rc != CLI_OK) return rc;
    if ((rc = setup(&c, a, required, num, DDPM_SAMPLER_DDIM, &cfg)) != CLI_OK) goto done;
    const int steps = cfg.steps;
    int first = 0;
    int64_t t_at = 0;
    if (ddpm_sampler_strength(&cfg, c.d->T, s, &first, &t_at) != DDPM_OK) {
        rc = cli_usage_error("--strength %s: %s", cli_str(a, "strength"), ddpm_last_error());
        goto done;
    }
    const int init = steps - first;
    const size_t D = (size_t)c.D;
    float *in_f = app_alloc(&c, sizeof(float) * D);
    double *x = app_alloc(&c, sizeof(double) * (size_t)num * D);
    if (!in_f || !x || (rc = app_strip_init(&c, &strip, (int)num + 1)) != CLI_OK) {
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = app_read_image(&c, "image", cli_str(a, "image"), in_f, NULL)) != CLI_OK) goto done;
    for (size_t k = 0; k < (size_t)num * D; k++) x[k] = (double)in_f[k % D];
    if (ddpm_noise_images(c.d, c.seed, t_at, x, 0, num, c.D, x) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    cfg.first_step = first;
    c.batch = (int)(num < CHUNK ? num : CHUNK);
    printf("strength %g: %d of %d %s steps, from t = %lld\n", s, init, steps, app_sampler_name(cfg.kind),
           (long long)t_at);
    fflush(stdout);
    app_progress_start(&c, "img2img", (num + c.batch - 1) / c.batch * init, num);
    double t0 = cli_now();
    if ((rc = app_sample_all(&c, &cfg, x, num, APP_XT_GIVEN)) != CLI_OK) goto done;
    app_strip_add(&c, &strip, in_f, NULL, "input");
    for (long long i = 0; i < num; i++) app_strip_add(&c, &strip, NULL, x + (size_t)i * D, "result %lld", i + 1);
    char what[200], body[64];
    snprintf(what, sizeof what, "img2img (SDEdit), strength %g: %s %d of %d steps from t = %lld, seed %llu", s,
             app_sampler_name(cfg.kind), init, steps, (long long)t_at, (unsigned long long)c.seed);
    snprintf(body, sizeof body, "input, %lld results", num);
    rc = finish(&c, &strip, what, t0, body);
done:
    app_free(&c);
    return rc;
}

const cli_command cli_cmd_img2img = {
    "img2img",
    "redraw an image: noise it part of the way and denoise (SDEdit)",
    "[--model DIR] --image IMG --strength S --out strip.png [--sampler ddim] [--steps 50] [--num N]\n"
    "                    [--seed S] [--class K] [--guidance W]",
    NULL, 0, 0, img2img_options,
    "As diffusers' img2img pipelines (Meng et al. 2022, SDEdit): of the sampler's N steps the last\n"
    "min(int(N * strength), N) are run, starting from the image noised to the first of them (result i's noise is\n"
    "stream (noising, 0, i) of the seed). Strength near 0 returns the image; 1 ignores it.\n\n"
    "examples:\n"
    "  ddpm img2img --image sketch.png --strength 0.6 --out redrawn.png\n"
    "  ddpm img2img --image digit.png --strength 0.8 --class 3 --num 8 --out to_three.png\n",
    img2img_run,
};

/* ================================================================================ denoise */

static const cli_option denoise_options[] = {
    APP_OPT_MODEL,
    {"image", "IMG", NULL, "the noisy image, PNG or JPEG (with --add-noise: a clean one) (required)"},
    {"sigma", "SIGMA", NULL, "standard deviation of the noise on the [0, 1] pixel scale, e.g. 0.1 (required)"},
    {"add-noise", NULL, NULL, "the image is clean: add N(0, sigma^2) noise first (stream (noising, 0, 0))"},
    {"out", "FILE.png", NULL, "the strip [clean, noisy, one-step estimate, reverse process] (required)"},
    APP_OPT_SAMPLER("ddpm"),
    APP_OPT_STEPS,
    APP_OPT_TAIL,
};

/* PSNR in dB of two model-space images on the [0, 1] scale (values clamped to [-1, 1]). */
static double psnr(const float *p, const float *q, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double u = p[i] < -1 ? -1 : p[i] > 1 ? 1 : p[i], v = q[i] < -1 ? -1 : q[i] > 1 ? 1 : q[i];
        se += (u - v) * (u - v) / 4;
    }
    double mse = se / (double)n;
    return mse > 0 ? 10 * log10(1 / mse) : INFINITY;
}

static int denoise_run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    static const char *const required[] = {"image", "sigma", "out", NULL};
    app_ctx c;
    app_strip strip;
    ddpm_sampler_config cfg;
    double sigma = 0;
    int first = 0;
    int64_t t_at = 0;
    memset(&c, 0, sizeof c);

    int rc = cli_require(a, "sigma");
    if (rc == CLI_OK) rc = cli_double(a, "sigma", 0, 100, 1, &sigma);
    if (rc != CLI_OK) return rc;
    if ((rc = setup(&c, a, required, 1, DDPM_SAMPLER_DDPM, &cfg)) != CLI_OK) goto done;
    const size_t D = (size_t)c.D;
    const int add = cli_flag(a, "add-noise");
    float *in_f = app_alloc(&c, sizeof(float) * D);
    double *y = app_alloc(&c, sizeof(double) * 4 * D), *xt = y ? y + D : NULL, *x0 = y ? y + 2 * D : NULL,
           *x = y ? y + 3 * D : NULL;
    if (!in_f || !y || (rc = app_strip_init(&c, &strip, 4)) != CLI_OK) {
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = app_read_image(&c, "image", cli_str(a, "image"), in_f, NULL)) != CLI_OK) goto done;
    const double sm = 2 * sigma;   /* model space is [-1, 1]: twice the pixel scale */
    for (size_t k = 0; k < D; k++) y[k] = (double)in_f[k];
    if (add) {
        ddpm_rng_normal_f64(c.seed, ddpm_rng_stream(DDPM_STREAM_NOISING, 0, 0), 0, xt, D);
        for (size_t k = 0; k < D; k++) y[k] += sm * xt[k];
    }
    int64_t t = ddpm_timestep_for_sigma(c.d, sm);
    if (t < 0 || t >= c.d->T) {
        rc = cli_error(CLI_FAIL, "--sigma %g: %s", sigma, ddpm_last_error());
        goto done;
    }
    if (ddpm_sampler_first_step(&cfg, c.d->T, t, &first, &t_at) != DDPM_OK) {
        rc = cli_usage_error("--sigma %g (t = %lld): %s", sigma, (long long)t, ddpm_last_error());
        goto done;
    }
    double ab = c.d->alphas_cumprod[t];
    printf("sigma %g (%g in model space) matches t = %lld (sqrt((1 - alpha_bar) / alpha_bar) = %.4g)", sigma, sm,
           (long long)t, sqrt((1 - ab) / ab));
    if (t_at != t) printf("; the %s sampler starts at its step %d, t = %lld", app_sampler_name(cfg.kind), first,
                          (long long)t_at);
    printf("\n");
    fflush(stdout);
    if ((rc = app_prepare(&c, 1)) != CLI_OK) goto done;
    double t0 = cli_now();
    /* one model call: x_t = sqrt(ab_t) y, then x0 from the prediction, clipped */
    const double sab = sqrt(ab), sat = sqrt(c.d->alphas_cumprod[t_at]);
    for (size_t k = 0; k < D; k++) xt[k] = sab * y[k];
    if (ddpm_guided_set_labels(c.guided, c.labels, 1) != DDPM_OK ||
        ddpm_predict_x0(c.d, cfg.prediction, ddpm_guided_fn, c.guided, xt, t, 1, c.D, 1.0, x0) != DDPM_OK) {
        rc = app_fail(&c, 0);
        goto done;
    }
    /* the reverse process from t_at */
    for (size_t k = 0; k < D; k++) x[k] = sat * y[k];
    cfg.first_step = first;
    app_progress_start(&c, "denoising", cfg.steps - first, 1);
    if ((rc = app_sample_all(&c, &cfg, x, 1, APP_XT_GIVEN)) != CLI_OK) goto done;

    if (add) app_strip_add(&c, &strip, in_f, NULL, "clean");
    app_strip_add(&c, &strip, NULL, y, "noisy \xcf\x83 = %g", sigma);   /* σ */
    app_strip_add(&c, &strip, NULL, x0, "one step (t = %lld)", (long long)t);
    app_strip_add(&c, &strip, NULL, x, "reverse process");
    char what[240], dur[32];
    snprintf(what, sizeof what, "denoising, sigma %g (pixel scale), t = %lld; reverse process: %s from step %d of %d "
             "(t = %lld), seed %llu", sigma, (long long)t, app_sampler_name(cfg.kind), first, cfg.steps,
             (long long)t_at, (unsigned long long)c.seed);
    cli_duration(dur, sizeof dur, cli_now() - t0);
    if ((rc = app_strip_write(&c, &strip, cli_str(a, "out"), what)) != CLI_OK) goto done;
    const float *sx = strip.x;
    if (add)
        printf("PSNR against the clean image: noisy %.2f dB, one step %.2f dB, reverse process %.2f dB\n",
               psnr(sx + D, in_f, D), psnr(sx + 2 * D, in_f, D), psnr(sx + 3 * D, in_f, D));
    printf("wrote %s: %s, %s\n", cli_str(a, "out"), add ? "clean, noisy, one step, reverse process" :
           "noisy, one step, reverse process", dur);
done:
    app_free(&c);
    return rc;
}

const cli_command cli_cmd_denoise = {
    "denoise",
    "remove Gaussian noise of a known level from an image with the diffusion model",
    "[--model DIR] --image NOISY --sigma SIGMA --out strip.png [--add-noise] [--sampler ddpm] [--steps N]\n"
    "                    [--seed S]",
    NULL, 0, 0, denoise_options,
    "An image y = x + sigma n (sigma on the [0, 1] pixel scale, so 2 sigma in model space) is, once scaled by\n"
    "sqrt(alpha_bar_t), a sample x_t of the forward process for the t whose sqrt((1 - alpha_bar_t) / alpha_bar_t)\n"
    "is nearest 2 sigma. The strip shows the one-step estimate of x_0 from a single model call at t, and the\n"
    "result of the reverse process run from t. With --add-noise the PSNR of each is printed.\n\n"
    "examples:\n"
    "  ddpm denoise --image digit.png --sigma 0.2 --add-noise --out denoise.png\n"
    "  ddpm denoise --image noisy_scan.png --sigma 0.05 --sampler ddim --steps 50 --out clean.png\n",
    denoise_run,
};
