/* main.c — the ddpm program: picks the subcommand, prints the top-level help and version, maps results to
   exit codes (0 ok, 1 runtime failure, 2 usage error, 130 Ctrl-C). */
#include <ddpm.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

static const cli_command *const commands[] = {&cli_cmd_schedule, &cli_cmd_noise, &cli_cmd_info,
                                              &cli_cmd_init, &cli_cmd_forward, &cli_cmd_bench,
                                              &cli_cmd_train, &cli_cmd_plot, &cli_cmd_sample,
                                              &cli_cmd_interpolate, &cli_cmd_inpaint, &cli_cmd_img2img,
                                              &cli_cmd_denoise, &cli_cmd_eval, &cli_cmd_train_classifier,
                                              &cli_cmd_get_data};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void print_help(FILE *f) {
    fprintf(f, "ddpm %s — denoising diffusion models (DDPM, DDIM) in C\n\n", ddpm_version());
    fprintf(f, "usage: ddpm <command> [options]\n       ddpm <command> --help\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-16s  %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\noptions:\n  %-16s  %s\n  %-16s  %s\n", "-h, --help", "show this help", "--version",
            "print the version");
    fprintf(f, "\nexit status: 0 success, 1 failure, 2 bad command line, 130 interrupted (143: train got SIGTERM)\n");
}

static const cli_command *find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static int unknown_command(const char *name) {
    const char *names[NCOMMANDS];
    for (int i = 0; i < NCOMMANDS; i++) names[i] = commands[i]->name;
    const char *near = name[0] == '-' ? NULL : ddpm_closest(name, names, NCOMMANDS);
    if (name[0] == '-')
        return cli_usage_error("unknown option '%s' (see 'ddpm --help')", name);
    if (near) return cli_usage_error("unknown command '%s' (did you mean '%s'?)", name, near);
    return cli_usage_error("unknown command '%s' (see 'ddpm --help')", name);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
        print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(first, "--version") == 0) {
        printf("ddpm %s\nshipped models and scripts: %s\n", ddpm_version(),
               cli_share_dir()[0] ? cli_share_dir() : "none found (install with cmake --install)");
        return CLI_OK;
    }
    if (strcmp(first, "help") == 0) {
        if (argc < 3) {
            print_help(stdout);
            return CLI_OK;
        }
        const cli_command *c = find_command(argv[2]);
        if (!c) return unknown_command(argv[2]);
        cli_print_help(c, stdout);
        return CLI_OK;
    }
    const cli_command *cmd = find_command(first);
    if (!cmd) return unknown_command(first);
    cli_args args;
    int rc = cli_parse(cmd, argc - 1, argv + 1, &args);
    if (rc < 0) return CLI_OK;   /* help was printed */
    if (rc != CLI_OK) return rc;
    cli_signals_install();
    return cmd->run(cmd, &args);
}
