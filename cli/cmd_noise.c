/* cmd_noise.c — `ddpm noise`: one image pushed through the closed-form forward process
   x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (one eps for every t), written as a captioned strip. */
#include <ddpm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define MAX_STEPS 64

static const cli_option options[] = {
    {"image", "FILE.png", NULL, "the image to noise (gray or RGB PNG)"},
    {"data", "NAME", NULL, "or an image of a dataset: mnist, fashion-mnist or cifar10"},
    {"data-dir", "DIR", NULL, "folder with the dataset files (with --data)"},
    {"index", "I", "0", "image number in the dataset"},
    {"split", "train|test", "train", "dataset split"},
    {"t", "T1,T2,...", "0,50,100,250,500,999", "timesteps to show, 0 <= t < T"},
    {"schedule", "NAME", cli_defaults.schedule, "noise schedule, one of those of 'ddpm schedule'"},
    {"T", "N", cli_defaults.T, "number of diffusion steps"},
    {"beta-start", "B", cli_defaults.beta_start, "first beta of linear, scaled_linear and sigmoid"},
    {"beta-end", "B", cli_defaults.beta_end, "last beta of linear, scaled_linear and sigmoid"},
    {"seed", "S", cli_defaults.seed, "seed of the noise eps"},
    {"scale", "K", "4", "enlarge every cell K times (nearest neighbour), 1..64"},
    {"out", "FILE.png", NULL, "the strip to write (required)"},
    {NULL, NULL, NULL, NULL},
};

/* The image to noise: x0 [C, H, W] in model space (malloc'ed) and its dataset item (0 for a file). */
typedef struct { int C, H, W; uint32_t item; float *x0; } source;

static int load_image(const char *path, source *src) {
    ddpm_image img = {0, 0, 0, NULL};
    if (ddpm_png_read(path, &img) != DDPM_OK) return cli_fail();
    src->C = img.channels, src->H = img.height, src->W = img.width;
    if ((src->x0 = malloc(sizeof(float) * (size_t)img.channels * (size_t)img.height * (size_t)img.width)))
        ddpm_image_to_f32(&img, src->x0);
    ddpm_image_free(&img);
    return src->x0 ? CLI_OK : cli_error(CLI_FAIL, "out of memory for a %d x %d image", src->W, src->H);
}

static int load_dataset(const cli_args *a, source *src) {
    static const char *const kinds[] = {"mnist", "fashion-mnist", "cifar10", NULL}, *const splits[] = {"train", "test",
                                                                                                       NULL};
    const char *kind = cli_str(a, "data"), *split = cli_str(a, "split");
    char label[300];
    snprintf(label, sizeof label, "--data %.200s", kind);
    int rc = cli_choice(label, kind, kinds, "data set", NULL);
    snprintf(label, sizeof label, "--split %.200s", split);
    if (rc == CLI_OK) rc = cli_choice(label, split, splits, "split", NULL);
    if (rc == CLI_OK) rc = cli_require(a, "data-dir");
    long long index = 0;
    if (rc == CLI_OK) rc = cli_int(a, "index", 0, 0x7fffffff, &index);
    ddpm_dataset ds = {0};
    if (rc == CLI_OK && ddpm_dataset_load(kind, cli_str(a, "data-dir"), strcmp(split, "train") == 0, &ds) != DDPM_OK)
        rc = cli_fail();
    else if (rc == CLI_OK && index >= ds.count)
        rc = cli_usage_error("--index %lld: the %s %s split has %lld images (0..%lld)", index, kind, split,
                             (long long)ds.count, (long long)ds.count - 1);
    src->C = ds.channels, src->H = ds.height, src->W = ds.width, src->item = (uint32_t)index;
    if (rc == CLI_OK && !(src->x0 = malloc(sizeof(float) * (size_t)ds.channels * (size_t)ds.height * (size_t)ds.width)))
        rc = cli_error(CLI_FAIL, "out of memory");
    if (rc == CLI_OK && ddpm_dataset_get_f32(&ds, index, src->x0) != DDPM_OK) rc = cli_fail();
    ddpm_dataset_free(&ds);
    return rc;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    long long ts[MAX_STEPS], scale;
    int64_t tv[MAX_STEPS];
    uint64_t seed;
    ddpm_schedule_config sc;
    int nt = 0, rc = cli_require(a, "out");
    if (rc == CLI_OK && cli_given(a, "image") == cli_given(a, "data"))
        rc = cli_usage_error("'ddpm noise' needs exactly one of --image FILE.png or --data NAME --data-dir DIR");
    if (rc == CLI_OK && cli_given(a, "image") && (cli_given(a, "data-dir") || cli_given(a, "index")))
        rc = cli_usage_error("--data-dir and --index go with --data, not with --image");
    if (rc == CLI_OK) rc = cli_schedule(a, &sc);
    if (rc == CLI_OK) rc = cli_int_list(a, "t", 0, 0x7fffffff, ts, MAX_STEPS, &nt);
    for (int i = 0; rc == CLI_OK && i < nt; i++)
        if ((tv[i] = ts[i]) >= sc.T)
            rc = cli_usage_error("--t %s: timestep %lld is out of range; need 0 <= t < T = %d", cli_str(a, "t"),
                                 ts[i], sc.T);
    if (rc == CLI_OK) rc = cli_u64(a, "seed", &seed);
    if (rc == CLI_OK) rc = cli_int(a, "scale", 1, 64, &scale);
    if (rc != CLI_OK) return rc;
    ddpm_diffusion *d = NULL;
    source src = {0};
    ddpm_image strip = {0, 0, 0, NULL};
    char *settings = NULL, software[64];
    snprintf(software, sizeof software, "ddpm %s", ddpm_version());
    if (ddpm_diffusion_create(&sc, &d) != DDPM_OK) return cli_fail();
    rc = cli_given(a, "image") ? load_image(cli_str(a, "image"), &src) : load_dataset(a, &src);
    if (rc == CLI_OK && !(settings = cli_settings(a))) rc = cli_error(CLI_FAIL, "out of memory");
    if (rc == CLI_OK && ddpm_noise_strip(d, src.x0, src.C, src.H, src.W, seed, src.item, tv, nt, (int)scale, &strip))
        rc = cli_fail();
    const char *text[] = {"ddpm", settings, "Software", software, NULL};
    if (rc == CLI_OK && cli_interrupted()) rc = cli_error(cli_stop_status(), "interrupted");
    else if (rc == CLI_OK && ddpm_png_write(cli_str(a, "out"), &strip, text) != DDPM_OK) rc = cli_fail();
    else if (rc == CLI_OK) printf("wrote %s (%d x %d, %d steps)\n", cli_str(a, "out"), strip.width, strip.height, nt);
    ddpm_image_free(&strip);
    ddpm_diffusion_free(d);
    free(src.x0);
    free(settings);
    return rc;
}

const cli_command cli_cmd_noise = {
    "noise",
    "show the forward process q(x_t | x_0) on one image as a captioned strip",
    "(--image FILE.png | --data NAME --data-dir DIR [--index I]) --out FILE.png [options]",
    NULL, 0, 0, options,
    "x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps with the same eps for every t, drawn from\n"
    "stream (noising, 0, index) of the seed, so the strip is one trajectory of the closed form.\n\n"
    "examples:\n"
    "  ddpm noise --data mnist --data-dir data/mnist-sample --index 0 --out noising.png   (the shipped sample)\n"
    "  ddpm noise --image cat.png --t 0,100,300,600,999 --schedule cosine --out cat_noise.png\n",
    run,
};
