/* cmd_info.c — `ddpm info FILE.safetensors|MODEL_DIR`: the tensors (name, dtype, shape, numel) in file order, the
   parameter and byte totals and the metadata of a safetensors file, or a model folder's network and noise
   schedule (ddpm_describe). */
#include <ddpm.h>
#include <stdio.h>

#include "options.h"

static const cli_option options[] = {
    {NULL, NULL, NULL, NULL},
};

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    char *text = NULL;
    if (ddpm_describe(a->positional[0], &text) != DDPM_OK) return cli_fail();
    fputs(text, stdout);
    ddpm_free(text);
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_error(CLI_FAIL, "cannot write to standard output");
    return CLI_OK;
}

const cli_command cli_cmd_info = {
    "info",
    "list the tensors, parameter count and metadata of a .safetensors file, or describe a model folder",
    "FILE.safetensors|MODEL_DIR",
    "FILE.safetensors|MODEL_DIR", 1, 1, options,
    "examples:\n  ddpm info model/unet/diffusion_pytorch_model.safetensors\n  ddpm info models/mnist\n",
    run,
};
