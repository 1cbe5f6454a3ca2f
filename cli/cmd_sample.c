/* cmd_sample.c — `ddpm sample`: images from a trained model with DDPM, DDIM or DPM-Solver++ (2M), optionally
   class-conditional with classifier-free guidance; a grid, single images, the raw tensor, and the trajectory strip
   of the seed's p_sample_loop_trajectory. Image i's x_T and noise are drawn from streams of (seed, i), so the
   images do not depend on --batch or --threads. */
#include <ddpm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_common.h"
#include "options.h"

#define MAX_NUM 65536
#define TRAJ_MAX_IMAGES 8

static const cli_option options[] = {
    APP_OPT_MODEL,
    APP_OPT_SAMPLER("ddim"),
    APP_OPT_STEPS,
    APP_OPT_ETA,
    APP_OPT_SPACING,
    APP_OPT_CLIP,
    {"num", "N", "16", "images to draw"},
    {"batch", "B", NULL, "images per network call (default: min(num, 16)); the images do not depend on it"},
    APP_OPT_SEED,
    APP_OPT_CLASS,
    APP_OPT_GUIDANCE,
    {"out", "FILE.png", NULL, "the grid of all images (with the settings in a tEXt chunk)"},
    {"cols", "C", NULL, "columns of the grid (default: ceil(sqrt(num)))"},
    {"scale", "K", "auto", "enlarge the grid K times, nearest neighbour (auto: cells of at least 64 pixels)"},
    {"individual", "DIR", NULL, "also write each image at the model's size: DIR/000000.png, DIR/000001.png, ..."},
    {"noise", "FILE", NULL, "x_T from a safetensors file: one F32 tensor x_T [N, C, H, W] (N sets --num)"},
    {"save-tensor", "FILE", NULL, "write the images as one F32 tensor 'samples' [N, C, H, W] in model space"},
    {"trajectory", "FILE.png", NULL, "x_t and the x0 prediction of the first min(num, 8) images at "
                                     "--trajectory-frames steps"},
    {"trajectory-frames", "F", "10", "steps shown by --trajectory, evenly spread, the last one included"},
    {"repeat-noise-steps", "R", "-1", "all images share x_T and the noise of the first R steps (the seed's "
                                      "trajectory mode; -1: off)"},
    APP_OPT_THREADS,
    APP_OPT_ENGINE,
    {NULL, NULL, NULL, NULL},
};

/* Two outputs at one path would overwrite each other: refused before sampling. */
static int check_outputs(const cli_args *a) {
    static const char *const names[] = {"out", "save-tensor", "trajectory", "individual"};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (ddpm_paths_same(cli_str(a, names[i]), cli_str(a, names[j])))
                return cli_usage_error("--%s and --%s name the same path, %s; each output needs its own", names[i],
                                       names[j], cli_str(a, names[i]));
    return CLI_OK;
}

/* The settings that decide the numbers (not --batch, --threads or where the outputs go), so that runs that
   differ only in those write identical tensor files. */
static char *tensor_settings(const cli_args *a) {
    static const char *const layout[] = {"batch", "threads", "out", "cols", "scale", "individual", "save-tensor",
                                         "trajectory", "trajectory-frames", NULL};
    cli_args b = *a;
    for (int k = 0; b.cmd->options[k].name; k++)
        for (int j = 0; layout[j]; j++)
            if (strcmp(b.cmd->options[k].name, layout[j]) == 0) b.value[k] = NULL;
    return cli_settings(&b);
}

/* A picture the library has just made (st: how that went) as a PNG with the run's settings. */
static int write_picture(app_ctx *c, const char *path, ddpm_status st, ddpm_image *img, const char *what) {
    int rc = st == DDPM_OK ? app_write_png(c, path, img, what) : cli_fail();
    ddpm_image_free(img);
    return rc;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    app_ctx c = {0};
    ddpm_trajectory traj = {0};
    ddpm_sampler_config cfg;
    long long num = 16, batch = 0, cols = 0, scale = 0, frames = 10, repeat = -1;
    double *x = NULL, *xt = NULL;   /* xt: --noise, read by the library */
    float *xf = NULL;
    char *settings = NULL;
    int64_t N = 0;
    const char *out = cli_str(a, "out"), *individual = cli_str(a, "individual"), *noise = cli_str(a, "noise"),
               *tensor = cli_str(a, "save-tensor"), *trajectory = cli_str(a, "trajectory");

    int rc = app_parse_common(a, &c);
    if (rc == CLI_OK) rc = cli_int(a, "num", 1, MAX_NUM, &num);
    if (rc == CLI_OK && cli_given(a, "batch")) rc = cli_int(a, "batch", 1, 4096, &batch);
    if (rc == CLI_OK && cli_given(a, "cols")) rc = cli_int(a, "cols", 1, MAX_NUM, &cols);
    if (rc == CLI_OK && strcmp(cli_str(a, "scale"), "auto") != 0) rc = cli_int(a, "scale", 1, 64, &scale);
    if (rc == CLI_OK) rc = cli_int(a, "trajectory-frames", 1, 64, &frames);
    if (rc == CLI_OK) rc = cli_int(a, "repeat-noise-steps", -1, 1 << 24, &repeat);
    if (rc == CLI_OK && !out && !individual && !tensor && !trajectory)
        rc = cli_usage_error("'ddpm sample' needs --out FILE.png (or --individual DIR, --save-tensor FILE or "
                             "--trajectory FILE.png)");
    if (rc == CLI_OK) rc = check_outputs(a);
    if (rc == CLI_OK && individual && ddpm_image_folder_check(individual) != DDPM_OK)
        rc = cli_error(CLI_FAIL, "--individual %s", ddpm_last_error());
    if (rc != CLI_OK) return rc;

    if ((rc = app_load_model(&c)) != CLI_OK) goto done;
    N = num;
    if (noise && ddpm_read_image_tensor(noise, "x_T", c.C, c.S, c.S, MAX_NUM, &xt, &N) != DDPM_OK)
        rc = cli_error(CLI_FAIL, "--noise %s", ddpm_last_error());
    else if (noise && cli_given(a, "num") && num != N)
        rc = cli_usage_error("--num %lld: --noise %s holds %lld images; leave --num out or make them agree", num,
                             noise, (long long)N);
    if (rc != CLI_OK) goto done;
    if ((rc = app_labels(&c, N, 1)) != CLI_OK || (rc = app_sampler_config(&c, DDPM_SAMPLER_DDIM, &cfg)) != CLI_OK)
        goto done;
    c.batch = (int)(batch > 0 && batch < N ? batch : N < 16 || batch > 0 ? N : 16);
    if (repeat >= 0) cfg.repeat_noise_steps = (int)repeat;
    app_hook(&c, &cfg);
    if (trajectory && ddpm_trajectory_init(&traj, (int)(N < TRAJ_MAX_IMAGES ? N : TRAJ_MAX_IMAGES), (int)frames,
                                           cfg.steps, c.D) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    c.traj = trajectory ? &traj : NULL;
    if (!(x = xt) && !(x = app_alloc(&c, sizeof(double) * (size_t)N * (size_t)c.D))) {
        rc = CLI_FAIL;
        goto done;
    }

    const char *sname = app_sampler_name(cfg.kind);
    double t0 = cli_now();
    app_progress_start(&c, "sampling", (N + c.batch - 1) / c.batch * cfg.steps, N);
    if ((rc = app_sample_all(&c, &cfg, x, N, noise ? APP_XT_GIVEN : repeat >= 0 ? APP_XT_SHARED : APP_XT_SEED)))
        goto done;
    double secs = cli_now() - t0;

    /* outputs, only once every image is made */
    if (!(xf = app_to_float(x, (size_t)N * (size_t)c.D)) || (tensor && !(settings = tensor_settings(a)))) {
        rc = cli_error(CLI_FAIL, "out of memory");
        goto done;
    }
    char what[256], dur[32];
    snprintf(what, sizeof what, "%lld samples, %s %d steps%s, seed %llu, guidance %g", (long long)N, sname, cfg.steps,
             cfg.kind == DDPM_SAMPLER_DDIM ? (cfg.eta > 0 ? " (eta > 0)" : " (eta 0)") : "",
             (unsigned long long)c.seed, c.guidance);
    if (tensor) {
        if ((rc = app_save_samples(&c, tensor, xf, N, NULL, settings)) != CLI_OK) goto done;
        printf("wrote %s: samples [%lld, %d, %d, %d]\n", tensor, (long long)N, c.C, c.S, c.S);
    }
    if (individual) {
        if ((rc = app_write_folder(&c, "individual", individual, xf, N)) != CLI_OK) goto done;
        printf("wrote %s/000000.png .. %06lld.png\n", individual, (long long)N - 1);
    }
    ddpm_image img;
    if (trajectory) {
        if ((rc = write_picture(&c, trajectory, ddpm_image_trajectory(&img, &traj, c.C, c.S, c.S), &img, what)))
            goto done;
        printf("wrote %s: trajectory of %d image%s, %d frames\n", trajectory, traj.nimg, traj.nimg == 1 ? "" : "s",
               traj.nframes);
    }
    if (out && (rc = write_picture(&c, out, ddpm_image_grid_scaled(&img, xf, (int)N, c.C, c.S, c.S, (int)cols,
                                                                   (int)scale), &img, what)))
        goto done;
    cli_duration(dur, sizeof dur, secs);
    double ips = secs > 0 ? (double)N / secs : 0.0;
    printf("%s%s%s%lld images, %s %d steps, %s (%.*f images/s)\n", out ? "wrote " : "sampled ", out ? out : "",
           out ? ": " : "", (long long)N, sname, cfg.steps, dur, ips >= 1 ? 1 : ips >= 0.1 ? 2 : 3, ips);
    fflush(stdout);
done:
    app_free(&c);
    ddpm_trajectory_free(&traj);
    ddpm_free(xt);
    free(xf);
    free(settings);
    return rc;
}

const cli_command cli_cmd_sample = {
    "sample",
    "draw images from a trained model (ddpm, ddim or dpmpp2m; class labels and guidance)",
    "[--model DIR|PRESET] [--sampler ddpm|ddim|dpmpp2m] [--steps N] [--num N] [--seed S]\n"
    "                   [--class K --guidance W] --out grid.png [--individual DIR] [--noise xT.safetensors]\n"
    "                   [--save-tensor out.safetensors] [--trajectory strip.png] [options]",
    NULL, 0, 0, options,
    "Image i starts from x_T = normal numbers of stream (init, 0, i) of the seed and draws its sampler noise\n"
    "from (sampler, step, i), so a seed gives the same images whatever --batch and --threads are. The diffusion,\n"
    "the prediction type, spacing and clipping come from the model folder's scheduler/scheduler_config.json\n"
    "(DDPMScheduler defaults for presets and fixture folders); --spacing and --clip override them.\n"
    "Nothing is written when the run fails or is interrupted (Ctrl-C: exit 130). See docs/sampling.md.\n\n"
    "examples:\n"
    "  ddpm sample --out grid.png                                   (the shipped MNIST model, DDIM 50 steps)\n"
    "  ddpm sample --model runs/mnist --sampler dpmpp2m --steps 20 --num 64 --out grid.png\n"
    "  ddpm sample --model runs/mnist-class --class 3 --guidance 3 --out threes.png\n"
    "  ddpm sample --sampler ddpm --num 4 --trajectory traj.png --repeat-noise-steps 0 --out grid.png\n",
    run,
};
