/* cmd_apps.c — what a trained model is used for besides plain sampling: `ddpm interpolate` (between two images,
   through the noised images or their DDIM inversions), `ddpm inpaint` (RePaint), `ddpm img2img` (SDEdit) and
   `ddpm denoise` (a noisy photo as a point x_t of the forward process). Each writes a captioned strip. */
#include <ddpm.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "app_common.h"
#include "options.h"

#define MAX_IMAGES 64

static double t0;   /* when setup was done */

/* Shared setup: common options, required ones, the model, labels of `num` images, the sampler (c->cfg), the request
   (c->req) and room for nimg images in *buf. */
static int setup(app_ctx *c, const cli_args *a, const char *const *required, int64_t num, ddpm_sampler_kind kind,
                 size_t nimg, float **buf) {
    int rc = app_parse_common(a, c);
    for (int i = 0; rc == CLI_OK && required[i]; i++) rc = cli_require(a, required[i]);
    if (rc == CLI_OK) rc = app_load_model(c);
    if (rc == CLI_OK) rc = app_labels(c, num, 0);
    if (rc == CLI_OK) rc = app_sampler_config(c, kind, &c->cfg);
    if (rc == CLI_OK) app_hook(c, &c->cfg);
    if (rc == CLI_OK && !(*buf = app_alloc(c, sizeof(float) * nimg * (size_t)c->D))) rc = CLI_FAIL;
    app_request(c, &c->req);
    t0 = cli_now();
    return rc;
}

/* Writes the strip of images x with its description, then "wrote OUT: <body>, <the time since setup>". */
static int finish(app_ctx *c, const app_strip *s, const float *x, const char *what, const char *fmt, ...) CLI_PRINTF(5, 6);
static int finish(app_ctx *c, const app_strip *s, const float *x, const char *what, const char *fmt, ...) {
    char dur[32], body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    cli_duration(dur, sizeof dur, cli_now() - t0);
    int rc = app_strip_write(c, s, x, cli_str(c->a, "out"), what);
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

static int interp_run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    static const char *const required[] = {"a", "b", "out", NULL};
    app_ctx c = {0};
    double lam[MAX_IMAGES];
    int nl = 0, mode = 0;
    long long tk = -1;
    ddpm_image ia = {0};

    const char *ms = cli_str(a, "mode");
    int rc = (mode = strcmp(ms, "ddim") == 0) || strcmp(ms, "noise") == 0 ? CLI_OK
             : cli_usage_error("--mode %s: must be noise or ddim", ms);
    if (rc == CLI_OK)
        rc = app_number_list("lambdas", cli_str(a, "lambdas"), 0, 1, 0, 0, "a number in [0, 1]", lam, MAX_IMAGES, &nl);
    if (rc == CLI_OK && cli_given(a, "t")) rc = cli_int(a, "t", 0, (long long)1 << 40, &tk);
    if (rc != CLI_OK) return rc;
    float *fa = NULL;
    if ((rc = setup(&c, a, required, nl < 2 ? 2 : nl, mode ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM, (size_t)nl + 2,
                    &fa)))
        goto done;
    if (tk >= c.d->T) {
        rc = cli_usage_error("--t %lld is outside [0, %d)", tk, c.d->T);
        goto done;
    }
    const size_t D = (size_t)c.D;
    float *x = fa + D, *fb = x + (size_t)nl * D;
    if ((rc = app_read_image(&c, "a", 0, NULL, NULL, fa, &ia)) || (rc = app_read_image(&c, "b", 0, "a", &ia, fb, NULL)))
        goto done;
    const ddpm_interp_mode im = mode ? DDPM_INTERP_DDIM : DDPM_INTERP_NOISE;
    if ((rc = app_status(&c, ddpm_interpolate(c.model, c.d, &c.cfg, &c.req, fa, fb, lam, nl, im, tk, x, &c.res))))
        goto done;
    app_strip_add(&c.strip, "a");
    for (int i = 0; i < nl; i++) app_strip_add(&c.strip, "\xce\xbb = %g", lam[i]);   /* λ */
    app_strip_add(&c.strip, "b");
    char what[300], trip[120] = "", ta[16] = "", tb[16] = "";   /* how well the inversion round-trips */
    const double *rt = c.res.round_trip;
    if (!isnan(rt[0])) snprintf(ta, sizeof ta, " a %.3f", rt[0]);
    if (!isnan(rt[1])) snprintf(tb, sizeof tb, "%s b %.3f", ta[0] ? "," : "", rt[1]);
    if (mode && (ta[0] || tb[0])) {
        snprintf(trip, sizeof trip, "round trip:%s%s (mean |pixel difference|, 0..1)", ta, tb);
        printf("%s\n", trip);
    }
    if (mode)
        snprintf(what, sizeof what, "interpolation of DDIM inversions (%d steps), slerp, seed %llu%s%s", c.cfg.steps,
                 (unsigned long long)c.seed, trip[0] ? "; " : "", trip);
    else
        snprintf(what, sizeof what, "interpolation at t = %lld, %s from step %d of %d, seed %llu",
                 (long long)c.res.t_noise, app_sampler_name(c.cfg.kind), c.res.first_step, c.cfg.steps,
                 (unsigned long long)c.seed);
    rc = finish(&c, &c.strip, fa, what, "a, %d images, b (%s)", nl, what);
done:
    app_free(&c);
    ddpm_image_free(&ia);
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
    app_ctx c = {0};
    long long num = 4, jl = 10, jn = 1;
    ddpm_image img = {0};

    int rc = cli_int(a, "num", 1, MAX_IMAGES, &num);
    if (rc == CLI_OK) rc = cli_int(a, "jump-length", 0, 1 << 20, &jl);
    if (rc == CLI_OK) rc = cli_int(a, "jump-n-sample", 1, 1000, &jn);
    if (rc != CLI_OK) return rc;
    float *image = NULL;   /* [image, masked, results, mask] */
    if ((rc = setup(&c, a, required, num, DDPM_SAMPLER_DDPM, (size_t)num + 3, &image)) != CLI_OK) goto done;
    const ddpm_inpaint_config ic = {.jump_length = (int)jl, .jump_n_sample = (int)jn};
    const size_t D = (size_t)c.D;
    float *masked = image + D, *x = image + 2 * D, *mask = x + (size_t)num * D;
    if ((rc = app_read_image(&c, "image", 0, NULL, NULL, image, &img)) ||
        (rc = app_read_image(&c, "mask", 1, "image", &img, mask, NULL)))
        goto done;
    if ((rc = app_status(&c, ddpm_inpaint(c.model, c.d, &c.cfg, &c.req, &ic, image, mask, num, x, masked, &c.res))))
        goto done;
    app_strip_add(&c.strip, "image");
    app_strip_add(&c.strip, "masked");
    for (long long i = 0; i < num; i++) app_strip_add(&c.strip, "result %lld", i + 1);
    char what[200];
    snprintf(what, sizeof what, "RePaint, %s %d steps, jump length %lld, jump n sample %lld, seed %llu, %.0f%% "
             "regenerated", app_sampler_name(c.cfg.kind), c.cfg.steps, jl, jn, (unsigned long long)c.seed,
             100.0 * c.res.regenerated);
    rc = finish(&c, &c.strip, image, what, "image, masked, %lld results (%s)", num, what);
done:
    app_free(&c);
    ddpm_image_free(&img);
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
    app_ctx c = {0};
    long long num = 4;
    double s = 0;

    int rc = cli_int(a, "num", 1, MAX_IMAGES, &num);
    if (rc == CLI_OK) rc = cli_double(a, "strength", 0, 1, 0, &s);
    if (rc == CLI_OK && !(s > 0)) rc = cli_usage_error("--strength %s: must be in (0, 1]", cli_str(a, "strength"));
    if (rc != CLI_OK) return rc;
    float *image = NULL;
    if ((rc = setup(&c, a, required, num, DDPM_SAMPLER_DDIM, (size_t)num + 1, &image)) != CLI_OK) goto done;
    const size_t D = (size_t)c.D;
    float *x = image + D;
    if ((rc = app_read_image(&c, "image", 0, NULL, NULL, image, NULL)) != CLI_OK) goto done;
    if ((rc = app_status(&c, ddpm_img2img(c.model, c.d, &c.cfg, &c.req, image, s, num, x, &c.res))) != CLI_OK) goto done;
    const int init = c.cfg.steps - c.res.first_step;
    printf("strength %g: %d of %d %s steps, from t = %lld\n", s, init, c.cfg.steps, app_sampler_name(c.cfg.kind),
           (long long)c.res.t);
    app_strip_add(&c.strip, "input");
    for (long long i = 0; i < num; i++) app_strip_add(&c.strip, "result %lld", i + 1);
    char what[200];
    snprintf(what, sizeof what, "img2img (SDEdit), strength %g: %s %d of %d steps from t = %lld, seed %llu", s,
             app_sampler_name(c.cfg.kind), init, c.cfg.steps, (long long)c.res.t, (unsigned long long)c.seed);
    rc = finish(&c, &c.strip, image, what, "input, %lld results", num);
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

static int denoise_run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    static const char *const required[] = {"image", "sigma", "out", NULL};
    app_ctx c = {0};
    double sigma = 0;

    int rc = cli_double(a, "sigma", 0, 100, 1, &sigma);
    if (rc != CLI_OK) return rc;
    float *in = NULL;   /* [clean, noisy, one step, reverse process] */
    if ((rc = setup(&c, a, required, 1, DDPM_SAMPLER_DDPM, 4, &in)) != CLI_OK) goto done;
    const size_t D = (size_t)c.D;
    const int add = cli_flag(a, "add-noise");
    float *y = in + D, *x0 = in + 2 * D, *x = in + 3 * D;
    if ((rc = app_read_image(&c, "image", 0, NULL, NULL, in, NULL)) != CLI_OK) goto done;
    if ((rc = app_status(&c, ddpm_denoise(c.model, c.d, &c.cfg, &c.req, in, sigma, add, y, x0, x, &c.res))) != CLI_OK)
        goto done;
    const int64_t t = c.res.t_noise;
    const double ab = c.d->alphas_cumprod[t];
    printf("sigma %g (%g in model space) matches t = %lld (sqrt((1 - alpha_bar) / alpha_bar) = %.4g)", sigma,
           2 * sigma, (long long)t, sqrt((1 - ab) / ab));
    if (c.res.t != t) printf("; the %s sampler starts at its step %d, t = %lld", app_sampler_name(c.cfg.kind),
                            c.res.first_step, (long long)c.res.t);
    printf("\n");
    if (add) app_strip_add(&c.strip, "clean");
    app_strip_add(&c.strip, "noisy \xcf\x83 = %g", sigma);   /* σ */
    app_strip_add(&c.strip, "one step (t = %lld)", (long long)t);
    app_strip_add(&c.strip, "reverse process");
    if (add)
        printf("PSNR against the clean image: noisy %.2f dB, one step %.2f dB, reverse process %.2f dB\n",
               c.res.psnr[0], c.res.psnr[1], c.res.psnr[2]);
    char what[240];
    snprintf(what, sizeof what, "denoising, sigma %g (pixel scale), t = %lld; reverse process: %s from step %d of %d "
             "(t = %lld), seed %llu", sigma, (long long)t, app_sampler_name(c.cfg.kind), c.res.first_step, c.cfg.steps,
             (long long)c.res.t, (unsigned long long)c.seed);
    rc = finish(&c, &c.strip, add ? in : y, what, "%snoisy, one step, reverse process", add ? "clean, " : "");
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
