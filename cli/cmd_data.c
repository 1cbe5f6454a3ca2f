/* cmd_data.c — `ddpm get-data`: downloads MNIST, Fashion-MNIST or CIFAR-10 into the folder ddpm reads them from,
   checking every file's MD5, by running the get-data.sh that ships with the program. */
#include <ddpm.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static const cli_option options[] = {
    {NULL, NULL, NULL, NULL},
};

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    static const char *const kinds[] = {"mnist", "fashion-mnist", "cifar10", "all", NULL};
    const char *kind = a->positional[0];
    char label[300];
    snprintf(label, sizeof label, "'%.200s'", kind);
    int rc = cli_choice(label, kind, kinds, "data set", NULL);
    if (rc != CLI_OK) return rc;
    char script[4200];
    cli_share_path(script, sizeof script, "scripts/get-data.sh");
    if (access(script, R_OK) != 0) {
        return cli_error(CLI_FAIL, "%s: %s (the download script ships with ddpm in share/ddpm/scripts)", script,
                         strerror(errno));
    }
    char *argv[] = {"sh", script, (char *)kind, a->npositional > 1 ? (char *)a->positional[1] : NULL, NULL};
    fflush(stdout);
    execv("/bin/sh", argv);
    return cli_error(CLI_FAIL, "cannot run /bin/sh %s: %s", script, strerror(errno));
}

const cli_command cli_cmd_get_data = {
    "get-data",
    "download MNIST, Fashion-MNIST or CIFAR-10 (MD5-checked) into the folder ddpm reads them from",
    "mnist|fashion-mnist|cifar10|all [DIR]",
    "KIND [DIR]", 1, 2, options,
    "DIR defaults to $DDPM_DATA/KIND, else ~/.cache/ddpm/KIND, where `ddpm train` and `ddpm eval` look without\n"
    "--data-dir. DDPM_DATA_MIRROR=URL replaces the download sites by one base URL. See docs/data.md.\n\n"
    "examples:\n"
    "  ddpm get-data mnist\n"
    "  ddpm get-data cifar10 /data/cifar10       (then: ddpm train --data cifar10 --data-dir /data/cifar10 ...)\n",
    run,
};
