/* cmd_forward.c — `ddpm forward`: the network on tensors from a safetensors file (x, timesteps, class_labels),
   in inference mode; with --loss-target also the MSE loss against `target` and every gradient. */
#include <ddpm.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

static const cli_option options[] = {
    {"model", "M", NULL, "the network: a pipeline, unet or fixture folder, a config.json or a preset (required)"},
    {"in", "FILE", NULL, "safetensors with x [N,C,S,S], timesteps [N] and class_labels [N] if conditional "
                         "(required)"},
    {"out", "FILE", NULL, "safetensors to write: sample [N,C,S,S] (required)"},
    {"loss-target", NULL, NULL, "also read target [N,C,S,S]; write loss [1], x_grad and every parameter's "
                                "gradient under its own name"},
    CLI_OPT_ENGINE,
    {"threads", "N", NULL, "threads: a count, or auto (default): the cores other processes leave free"},
    {"seed", "S", cli_defaults.seed, "weight initialisation seed, for a --model without weights"},
    {NULL, NULL, NULL, NULL},
};

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    uint64_t seed;
    long long threads = 0;
    int engine = 0, rc, train = cli_flag(a, "loss-target");
    if ((rc = cli_require(a, "model")) || (rc = cli_require(a, "in")) || (rc = cli_require(a, "out")) ||
        (rc = cli_engine(a, &engine)) ||
        (cli_given(a, "threads") && (rc = cli_threads(a, "threads", 1, &threads))) || (rc = cli_u64(a, "seed", &seed)))
        return rc;
    if (threads > 0) ddpm_set_threads((int)threads);
    ddpm_model *m = NULL;
    ddpm_model_info info;
    ddpm_forward_batch b;
    ddpm_pipeline_scheduler sched;   /* timesteps lie in 0 .. num_train_timesteps - 1 of the folder's scheduler */
    memset(&b, 0, sizeof b);
    memset(&sched, 0, sizeof sched);
    const char *const meta[] = {"format", "pt", "producer", "ddpm forward", "engine", cli_str(a, "engine"), NULL};
    if (ddpm_model_load(cli_str(a, "model"), seed, &m) != DDPM_OK ||
        ddpm_pipeline_scheduler_load(cli_str(a, "model"), &sched) != DDPM_OK ||
        ddpm_forward_batch_read(cli_str(a, "in"), m, sched.diffusion->T, train, &b) != DDPM_OK ||
        ddpm_forward_batch_run(m, &b, (ddpm_engine)engine) != DDPM_OK)
        rc = cli_fail();
    else if (cli_interrupted())
        rc = cli_error(cli_stop_status(), "interrupted");
    else if (ddpm_forward_batch_save(cli_str(a, "out"), m, &b, meta) != DDPM_OK)
        rc = cli_fail();
    ddpm_model_get_info(m, &info);
    if (rc == CLI_OK && train)
        printf("wrote %s: sample, loss %.9g, x_grad and %d parameter gradients (%lld images)\n", cli_str(a, "out"),
               b.loss, info.num_tensors, (long long)b.n);
    else if (rc == CLI_OK)
        printf("wrote %s: sample [%lld, %d, %d, %d]\n", cli_str(a, "out"), (long long)b.n, info.out_channels,
               info.sample_size, info.sample_size);
    ddpm_forward_batch_free(&b);
    ddpm_pipeline_scheduler_free(&sched);
    ddpm_model_free(m);
    return rc;
}

const cli_command cli_cmd_forward = {
    "forward",
    "run the network on tensors from a safetensors file (and its gradients with --loss-target)",
    "--model M --in FILE --out FILE [--loss-target] [--engine fast|reference] [--threads N]",
    NULL, 0, 0, options,
    "Input: x F32 [N,C,S,S], timesteps [N] (integer or float), class_labels [N] (integer) for a\n"
    "class-conditional model, and target [N,C,S,S] with --loss-target. Dropout is off (inference mode),\n"
    "also for the gradients. Output: sample F32 [N,C,S,S]; with --loss-target also loss [1] (the mean squared\n"
    "error over all N*C*S*S values), x_grad [N,C,S,S] and d loss / d p under each parameter's name.\n\n"
    "examples:\n"
    "  ddpm forward --model models/mnist0 --in batch.safetensors --out pred.safetensors\n"
    "  ddpm forward --model fixture_dir --in fixture_dir/inputs.safetensors --out grads.safetensors "
    "--loss-target\n",
    run,
};
