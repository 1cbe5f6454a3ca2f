/* cmd_init.c — `ddpm init`: a network from a preset or a diffusers config.json, its weights initialised from a
   seed (or read, when the source has them), saved as a diffusers pipeline folder with its noise schedule. */
#include <ddpm.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "options.h"

static const cli_option options[] = {
    {"model", "PRESET|config.json", NULL, "the network: mnist, cifar10, tiny, basic, a diffusers config.json or a "
                                          "model folder (required)"},
    {"seed", "S", cli_defaults.seed, "seed of the weight initialisation"},
    {"out", "DIR", NULL, "the pipeline folder to write (required)"},
    {"schedule", "NAME", cli_defaults.schedule, "noise schedule written to scheduler/scheduler_config.json"},
    {"T", "N", cli_defaults.T, "number of diffusion steps"},
    {"beta-start", "B", cli_defaults.beta_start, "first beta of linear, scaled_linear and sigmoid"},
    {"beta-end", "B", cli_defaults.beta_end, "last beta of linear, scaled_linear and sigmoid"},
    {"prediction", "eps|x0|v", cli_defaults.objective, "what the network predicts (the scheduler's prediction_type)"},
    {"force", NULL, NULL, "write into an --out folder that is not empty (its model files are replaced)"},
    {NULL, NULL, NULL, NULL},
};

/* --out may be new or an empty folder; a folder with anything in it (a trained model, a run) only with
   --force, and never one that a running `ddpm train` holds. *lock: taken when the folder exists. */
static int check_out(const char *out, int force, ddpm_dir_lock **lock) {
    struct stat sb;
    if (stat(out, &sb) != 0) {
        if (errno == ENOENT) return CLI_OK;
        return cli_usage_error("--out %s: %s", out, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) return cli_usage_error("--out %s: exists and is not a folder", out);
    DIR *d = opendir(out);
    if (!d) return cli_usage_error("--out %s: cannot read the folder: %s", out, strerror(errno));
    char first[256] = "";
    int locked = 0;   /* a folder that a ddpm writer has had (DIR/.lock) */
    struct dirent *e;
    while (!first[0] && (e = readdir(d))) {
        if (strcmp(e->d_name, DDPM_DIR_LOCK_NAME) == 0) locked = 1;
        else if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(first, sizeof first, "%s", e->d_name);
    }
    closedir(d);
    if (first[0] && !force)
        return cli_usage_error("--out %s: the folder is not empty (it holds '%s'); choose a new folder, or add "
                               "--force to replace its model files", out, first);
    if (!first[0] && !locked) return CLI_OK;
    return ddpm_dir_lock_take(out, lock) == DDPM_OK ? CLI_OK : cli_fail();
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    uint64_t seed;
    ddpm_schedule_config sc;
    ddpm_prediction pred = DDPM_PRED_EPS;
    int rc = cli_require(a, "model");
    if (rc == CLI_OK) rc = cli_require(a, "out");
    if (rc == CLI_OK) rc = cli_u64(a, "seed", &seed);
    if (rc == CLI_OK) rc = cli_schedule(a, &sc);
    int pv = 0;
    if (rc == CLI_OK && (rc = cli_enum(a, "prediction", DDPM_ENUM_PREDICTION, &pv)) == CLI_OK) pred = (ddpm_prediction)pv;
    if (rc != CLI_OK) return rc;

    /* the schedule is checked before anything is written */
    ddpm_diffusion *d = NULL;
    if (ddpm_diffusion_create(&sc, &d) != DDPM_OK) return cli_fail();
    ddpm_diffusion_free(d);

    ddpm_model *m = NULL;
    ddpm_dir_lock *lock = NULL;
    if ((rc = check_out(cli_str(a, "out"), cli_flag(a, "force"), &lock)) != CLI_OK) return rc;
    if (ddpm_model_load(cli_str(a, "model"), seed, &m) != DDPM_OK) {
        ddpm_dir_lock_release(lock);
        return cli_fail();
    }
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    if (ddpm_model_save(m, cli_str(a, "out"), &sc, pred) != DDPM_OK) {
        rc = cli_fail();
        ddpm_model_free(m);
        ddpm_dir_lock_release(lock);
        return rc;
    }
    ddpm_dir_lock_release(lock);
    printf("wrote %s: %s, %d -> %d channels at %dx%d, %lld parameters (%s), schedule %s T=%d\n",
           cli_str(a, "out"), info.kind, info.in_channels, info.out_channels, info.sample_size,
           info.sample_size, (long long)info.num_params,
           info.weights_loaded ? "weights read from the source" : "initialised from the seed", sc.name, sc.T);
    ddpm_model_free(m);
    if (cli_interrupted()) return cli_error(cli_stop_status(), "interrupted");
    return CLI_OK;
}

const cli_command cli_cmd_init = {
    "init",
    "create a network (preset or config.json) and save it as a diffusers pipeline folder",
    "--model PRESET|config.json --out DIR [--seed S] [--schedule NAME] [--T N] [--prediction eps|x0|v] [--force]",
    NULL, 0, 0, options,
    "The folder holds model_index.json, unet/config.json, unet/diffusion_pytorch_model.safetensors and\n"
    "scheduler/scheduler_config.json; diffusers' DDPMPipeline.from_pretrained reads it.\n\n"
    "examples:\n"
    "  ddpm init --model mnist --seed 7 --out models/mnist0\n"
    "  ddpm init --model my_unet/config.json --schedule cosine --prediction v --out models/cosine_v\n",
    run,
};
