/* cmd_schedule.c — `ddpm schedule`: computes noise schedules and every table of the Gaussian diffusion,
   writes them as CSV and plots sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) against t. */
#include <ddpm.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define MAX_SCHEDULES 16
#define MAX_T 1000000

static const cli_option options[] = {
    {"schedule", "NAME[,NAME...]", cli_defaults.schedule,
     "comma-separated schedules: linear, scaled_linear, cosine, sqrt, sigmoid, sigmoid_chen, file:PATH"},
    {"T", "N", cli_defaults.T, "number of diffusion steps"},
    {"beta-start", "B", cli_defaults.beta_start, "first beta of linear, scaled_linear and sigmoid"},
    {"beta-end", "B", cli_defaults.beta_end, "last beta of linear, scaled_linear and sigmoid"},
    {"scale-to-T", NULL, NULL, "linear: multiply both betas by 1000/T (improved-diffusion)"},
    {"csv", "FILE", NULL, "write every diffusion table as CSV ('-' = standard output)"},
    {"plot", "FILE.png", NULL, "plot sqrt(alpha_bar) (solid) and sqrt(1 - alpha_bar) (dashed) against t"},
    {"width", "PX", "1000", "plot width in pixels"},
    {"height", "PX", "600", "plot height in pixels"},
    {NULL, NULL, NULL, NULL},
};

typedef struct {
    const char *names[MAX_SCHEDULES];
    int n;
    char *buf;
} name_list;

/* Splits --schedule into names and checks each against the library's list (file:PATH passes through). */
static int parse_names(const char *s, name_list *out) {
    memset(out, 0, sizeof *out);
    out->buf = malloc(strlen(s) + 1);
    if (!out->buf) return cli_error(CLI_FAIL, "out of memory");
    strcpy(out->buf, s);
    char *p = out->buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        if (!*p) return cli_usage_error("--schedule %s: empty schedule name", s);
        if (out->n >= MAX_SCHEDULES) return cli_usage_error("--schedule: at most %d schedules", MAX_SCHEDULES);
        int rc = cli_check_schedule("schedule", p);
        if (rc != CLI_OK) return rc;
        for (int i = 0; i < out->n; i++)
            if (strcmp(out->names[i], p) == 0) return cli_usage_error("--schedule: '%s' is listed twice", p);
        out->names[out->n++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return CLI_OK;
}

static int write_csv(const char *path, const name_list *names, ddpm_diffusion *const *d) {
    char *text = NULL;
    cli_text_file tf;
    int rc = ddpm_diffusion_csv((const ddpm_diffusion *const *)d, names->names, names->n, &text) == DDPM_OK
                 ? cli_text_open(&tf, path) : cli_fail();
    if (rc == CLI_OK) {
        fputs(text, tf.f);
        rc = cli_text_commit(&tf);
    }
    ddpm_free(text);
    return rc;
}

static int write_plot(const cli_args *a, const char *path, const name_list *names, ddpm_diffusion *const *d,
                      int width, int height) {
    char *settings = cli_settings(a), software[64];
    snprintf(software, sizeof software, "ddpm %s", ddpm_version());
    const char *text[] = {"ddpm", settings, "Software", software, NULL};
    int rc = !settings ? cli_error(CLI_FAIL, "out of memory")
             : ddpm_schedule_plot(path, (const ddpm_diffusion *const *)d, names->names, names->n,
                                  width, height, text) == DDPM_OK ? CLI_OK : cli_fail();
    free(settings);
    return rc;
}

/* With no --csv or --plot: a few rows of each schedule on standard output. */
static void print_summary(const name_list *names, ddpm_diffusion *const *d, int T) {
    int rows[5] = {0, T / 4, T / 2, 3 * T / 4, T - 1};
    for (int s = 0; s < names->n; s++) {
        const ddpm_diffusion *g = d[s];
        printf("%s%s (T = %d)\n", s ? "\n" : "", names->names[s], T);
        printf("%8s  %12s  %14s  %12s  %12s  %12s\n", "t", "beta", "alphas_cumprod", "sqrt(ab)", "sqrt(1-ab)",
               "SNR");
        for (int i = 0; i < 5; i++) {
            int t = rows[i];
            if (i > 0 && t <= rows[i - 1]) continue;
            double ab = g->alphas_cumprod[t];
            printf("%8d  %12.6g  %14.6g  %12.6g  %12.6g  %12.6g\n", t, g->betas[t], ab,
                   g->sqrt_alphas_cumprod[t], g->sqrt_one_minus_alphas_cumprod[t], ab / (1 - ab));
        }
    }
    printf("\nwrite the full tables with --csv FILE and a picture with --plot FILE.png\n");
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    long long T, width, height;
    double beta_start, beta_end;
    name_list names;
    ddpm_diffusion *d[MAX_SCHEDULES] = {0};
    int rc = parse_names(cli_str(a, "schedule"), &names);
    if (rc == CLI_OK) rc = cli_int(a, "T", 1, MAX_T, &T);
    if (rc == CLI_OK) rc = cli_double(a, "beta-start", 0, 1, 1, &beta_start);
    if (rc == CLI_OK) rc = cli_double(a, "beta-end", 0, 1, 1, &beta_end);
    if (rc == CLI_OK) rc = cli_int(a, "width", 240, 8192, &width);
    if (rc == CLI_OK) rc = cli_int(a, "height", 160, 8192, &height);
    if (rc != CLI_OK) goto done;
    for (int s = 0; s < names.n; s++) {
        ddpm_schedule_config sc;
        ddpm_schedule_config_default(&sc);
        sc.name = names.names[s];
        sc.T = (int)T;
        sc.beta_start = beta_start;
        sc.beta_end = beta_end;
        sc.scale_to_T = cli_flag(a, "scale-to-T");
        if (ddpm_diffusion_create(&sc, &d[s]) != DDPM_OK) {
            rc = cli_fail();
            goto done;
        }
    }
    const char *csv = cli_str(a, "csv"), *plot = cli_str(a, "plot");
    int quiet = csv && strcmp(csv, "-") == 0;
    if (!csv && !plot) {
        print_summary(&names, d, (int)T);
        goto done;
    }
    if (csv && (rc = write_csv(csv, &names, d)) != CLI_OK) goto done;
    if (csv && !quiet) printf("wrote %s (%d rows)\n", csv, names.n * (int)T);
    if (plot && cli_interrupted()) {
        rc = cli_error(cli_stop_status(), "interrupted");
        goto done;
    }
    if (plot && (rc = write_plot(a, plot, &names, d, (int)width, (int)height)) != CLI_OK) goto done;
    if (plot && !quiet) printf("wrote %s\n", plot);
done:
    for (int s = 0; s < MAX_SCHEDULES; s++) ddpm_diffusion_free(d[s]);
    free(names.buf);
    return rc;
}

const cli_command cli_cmd_schedule = {
    "schedule",
    "compute noise schedules; write their tables as CSV and plot them",
    "[--schedule NAME[,NAME...]] [--T N] [--csv FILE] [--plot FILE.png] [options]",
    NULL, 0, 0, options,
    "With neither --csv nor --plot a short table of each schedule is printed.\n"
    "CSV columns: [schedule,] t, beta, alpha, alphas_cumprod, ... posterior_mean_coef2 (%.17g).\n\n"
    "examples:\n"
    "  ddpm schedule --schedule cosine\n"
    "  ddpm schedule --schedule linear,cosine,sigmoid --csv schedules.csv --plot schedules.png\n",
    run,
};
