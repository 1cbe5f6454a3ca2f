/* cmd_plot.c — `ddpm plot LOG.csv`: the loss of a training log and its smoothed curve against the step, drawn
   into a PNG by ddpm_train_log_plot (the picture `ddpm train` draws at the end). */
#include <ddpm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

/* The defaults, as text, come from ddpm_train_log_plot_config_default (fill_defaults). */
static char def_smooth[32], def_y[8], def_width[16], def_height[16];

static const cli_option options[] = {
    {"out", "FILE.png", NULL, "the picture (default: loss.png beside LOG.csv)"},
    {"smooth", "A", def_smooth, "weight of the exponential moving average drawn over the loss, 0 (none) .. <1"},
    {"y", "log|linear", def_y, "y axis: log10 of the loss, or the loss itself"},
    {"width", "PX", def_width, "plot width in pixels"},
    {"height", "PX", def_height, "plot height in pixels"},
    {NULL, NULL, NULL, NULL},
};

/* Runs before main, so that --help and the parser show the library's defaults. */
__attribute__((constructor)) static void fill_defaults(void) {
    ddpm_train_log_plot_config c;
    ddpm_train_log_plot_config_default(&c);
    snprintf(def_smooth, sizeof def_smooth, "%g", c.smooth);
    snprintf(def_y, sizeof def_y, "%s", c.log_y ? "log" : "linear");
    snprintf(def_width, sizeof def_width, "%d", c.width);
    snprintf(def_height, sizeof def_height, "%d", c.height);
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    ddpm_train_log_plot_config pc;
    ddpm_train_log_plot_config_default(&pc);
    long long width, height;
    const char *y = cli_str(a, "y"), *log_path = a->positional[0];
    int rc = cli_double(a, "smooth", 0, 1, 0, &pc.smooth);
    if (rc == CLI_OK && pc.smooth >= 1) rc = cli_usage_error("--smooth %s: must be in [0, 1)", cli_str(a, "smooth"));
    if (rc == CLI_OK) rc = cli_int(a, "width", 240, 8192, &width);
    if (rc == CLI_OK) rc = cli_int(a, "height", 160, 8192, &height);
    if (rc == CLI_OK && strcmp(y, "linear") != 0 && strcmp(y, "log") != 0)
        rc = cli_usage_error("--y %s: must be log or linear", y);
    if (rc != CLI_OK) return rc;
    pc.log_y = strcmp(y, "log") == 0;
    pc.width = (int)width;
    pc.height = (int)height;
    /* --out, else loss.png in the log's folder */
    const char *slash = strrchr(log_path, '/'), *given = cli_str(a, "out");
    size_t dir = slash ? (size_t)(slash - log_path) + 1 : 0;
    char *out = malloc(given ? strlen(given) + 1 : dir + sizeof "loss.png"), *settings = cli_settings(a);
    if (out && given) strcpy(out, given);
    else if (out) snprintf(out, dir + sizeof "loss.png", "%.*sloss.png", (int)dir, log_path);
    const char *const text[] = {"ddpm", settings, NULL};
    pc.text = text;
    if (!out || !settings) {
        rc = cli_error(CLI_FAIL, "out of memory");
    } else if (ddpm_train_log_plot(log_path, out, &pc) != DDPM_OK) {
        rc = cli_fail();
    } else {
        printf("wrote %s\n", out);
    }
    free(out);
    free(settings);
    return rc;
}

const cli_command cli_cmd_plot = {
    "plot",
    "draw the loss curve of a training log (log.csv of 'ddpm train') into a PNG",
    "LOG.csv [--out FILE.png] [--smooth A] [--y log|linear]",
    "LOG.csv", 1, 1, options,
    "The log needs a header line with 'step' and 'loss' columns (others are ignored) and one line per\n"
    "logged step; a malformed line is reported by its number. The smoothed curve is the moving average\n"
    "s = A s + (1 - A) loss, divided by 1 - A^k after k lines so that it starts at the first loss.\n\n"
    "examples:\n"
    "  ddpm plot runs/mnist/log.csv\n"
    "  ddpm plot runs/mnist/log.csv --out curve.png --smooth 0.9 --y linear\n",
    run,
};
