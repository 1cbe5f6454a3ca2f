/* cmd_plot.c — the training log: `ddpm train` writes OUT/log.csv through cli_log_*, and `ddpm plot LOG.csv` reads
   it and draws the loss and its smoothed curve against the step into a PNG (as `ddpm train` does at the end). */
#include <ddpm.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

#define MAX_FIELDS 64

static const cli_option options[] = {
    {"out", "FILE.png", NULL, "the picture (default: loss.png beside LOG.csv)"},
    {"smooth", "A", "0.98", "weight of the exponential moving average drawn over the loss, 0 (none) .. <1"},
    {"y", "log|linear", "log", "y axis: log10 of the loss, or the loss itself"},
    {"width", "PX", "1000", "plot width in pixels"},
    {"height", "PX", "600", "plot height in pixels"},
    {NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------------------------- writing the log */

#define LOG_HEADER "step,loss,smoothed_loss,lr,grad_norm,images_per_s,elapsed_s\n"

static int log_error(const char *path, const char *what) {
    fprintf(stderr, "ddpm: error: cannot %s %s: %s\n", what, path, strerror(errno));
    return CLI_FAIL;
}

/* Opens OUT/log.csv for appending. On resume from step `resume_step` (> 0) the log is cut back to its lines
   with step <= resume_step (later lines came from steps the checkpoint does not hold; an incomplete last line
   is dropped) and the smoothed loss and elapsed time continue from its last line. */
int cli_log_open(cli_train_log *lg, const char *path, long long resume_step) {
    memset(lg, 0, sizeof *lg);
    lg->path = path;
    if (resume_step <= 0 && access(path, F_OK) == 0 && unlink(path) != 0) return log_error(path, "replace");
    FILE *old = resume_step > 0 ? fopen(path, "rb") : NULL;
    if (old) {
        cli_text_file tf;
        if (cli_text_open(&tf, path) != CLI_OK) {
            fclose(old);
            return CLI_FAIL;
        }
        FILE *nf = tf.f;
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        long lineno = 0;
        fputs(LOG_HEADER, nf);
        long long nsteps = 0;
        while ((len = getline(&line, &cap, old)) > 0) {
            if (lineno++ == 0 || line[len - 1] != '\n') continue;   /* the header; an incomplete line */
            long long step;
            double loss, sm, lr, gn, ips, el;
            if (sscanf(line, "%lld,%lf,%lf,%lf,%lf,%lf,%lf", &step, &loss, &sm, &lr, &gn, &ips, &el) != 7) continue;
            if (step > resume_step) break;
            fputs(line, nf);
            lg->smoothed = sm;
            lg->elapsed0 = el;
            nsteps = step;
        }
        free(line);
        fclose(old);
        lg->weight = nsteps > 0 ? 1 - pow(0.98, (double)nsteps) : 0;
        lg->smoothed *= lg->weight;   /* back to the uncorrected sum */
        if (cli_text_commit(&tf) != CLI_OK) return CLI_FAIL;
    }
    int fresh = access(path, F_OK) != 0;
    lg->f = fopen(path, "ab");
    if (!lg->f) return log_error(path, "write");
    if (fresh && (fputs(LOG_HEADER, lg->f) < 0 || fflush(lg->f) != 0)) return log_error(path, "write");
    return CLI_OK;
}

/* Adds the step's loss to the moving average; returns the bias-corrected average. */
double cli_log_smooth(cli_train_log *lg, double loss) {
    lg->smoothed = 0.98 * lg->smoothed + 0.02 * loss;
    lg->weight = 1 - 0.98 * (1 - lg->weight);
    return lg->smoothed / lg->weight;
}

int cli_log_write(cli_train_log *lg, long long step, double loss, double smoothed, double lr, double grad_norm,
                  double ips, double elapsed) {
    if (fprintf(lg->f, "%lld,%.9g,%.9g,%.9g,%.9g,%.4f,%.3f\n", step, loss, smoothed, lr, grad_norm, ips,
                lg->elapsed0 + elapsed) < 0 ||
        fflush(lg->f) != 0)
        return log_error(lg->path, "write");
    return CLI_OK;
}

void cli_log_close(cli_train_log *lg) {
    if (lg->f) fclose(lg->f);
    lg->f = NULL;
}

/* ------------------------------------------------------------------------------- reading and drawing it */

typedef struct {
    double *step, *loss;
    int n, cap;
} loss_log;

static void loss_log_free(loss_log *l) {
    free(l->step);
    free(l->loss);
    memset(l, 0, sizeof *l);
}

/* Splits line (modified in place) at commas; returns the field count or -1 when there are too many. */
static int split_fields(char *line, char **field) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n >= MAX_FIELDS) return -1;
        field[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    for (int i = 0; i < n; i++) {   /* trim blanks */
        while (*field[i] == ' ' || *field[i] == '\t') field[i]++;
        size_t len = strlen(field[i]);
        while (len && (field[i][len - 1] == ' ' || field[i][len - 1] == '\t')) field[i][--len] = 0;
    }
    return n;
}

static int parse_number(const char *s, double *out) {
    char *end;
    if (!*s) return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Reads the columns "step" and "loss" of a CSV log. Every data line must have the header's field count and
   finite numbers in both columns, with steps increasing; blank lines are skipped. Errors name the line. */
static int read_log(const char *path, loss_log *l) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_usage_error("cannot open %s: %s", path, strerror(errno));
        return CLI_FAIL;
    }
    char *line = NULL, *field[MAX_FIELDS];
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int nfields = 0, step_col = -1, loss_col = -1, rc = CLI_OK;
    memset(l, 0, sizeof *l);
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if ((size_t)len != strlen(line)) {
            cli_usage_error("%s:%ld: a NUL byte: not a text CSV file", path, lineno);
            rc = CLI_FAIL;
            break;
        }
        if (len == 0) continue;
        int n = split_fields(line, field);
        if (n < 0) {
            cli_usage_error("%s:%ld: more than %d fields", path, lineno, MAX_FIELDS);
            rc = CLI_FAIL;
            break;
        }
        if (nfields == 0) {   /* the header */
            nfields = n;
            for (int i = 0; i < n; i++) {
                if (strcmp(field[i], "step") == 0 && step_col < 0) step_col = i;
                if (strcmp(field[i], "loss") == 0 && loss_col < 0) loss_col = i;
            }
            if (step_col < 0 || loss_col < 0) {
                cli_usage_error("%s:%ld: the header has no '%s' column (a log.csv of 'ddpm train' starts "
                                "with step,loss,...)", path, lineno, step_col < 0 ? "step" : "loss");
                rc = CLI_FAIL;
                break;
            }
            continue;
        }
        if (n != nfields) {
            cli_usage_error("%s:%ld: %d fields where the header has %d", path, lineno, n, nfields);
            rc = CLI_FAIL;
            break;
        }
        double step, loss;
        if (parse_number(field[step_col], &step) != 0 || parse_number(field[loss_col], &loss) != 0) {
            int bad = parse_number(field[step_col], &step) != 0 ? step_col : loss_col;
            cli_usage_error("%s:%ld: %s '%.40s' is not a finite number", path, lineno,
                            bad == step_col ? "step" : "loss", field[bad]);
            rc = CLI_FAIL;
            break;
        }
        if (l->n > 0 && !(step > l->step[l->n - 1])) {
            cli_usage_error("%s:%ld: step %.17g does not follow step %.17g", path, lineno, step, l->step[l->n - 1]);
            rc = CLI_FAIL;
            break;
        }
        if (l->n == l->cap) {
            int ncap = l->cap ? 2 * l->cap : 1024;
            double *s2 = realloc(l->step, sizeof(double) * (size_t)ncap);
            if (s2) l->step = s2;
            double *l2 = s2 ? realloc(l->loss, sizeof(double) * (size_t)ncap) : NULL;
            if (l2) l->loss = l2;
            if (!s2 || !l2 || ncap <= l->cap) {
                fprintf(stderr, "ddpm: error: out of memory reading %s\n", path);
                rc = CLI_FAIL;
                break;
            }
            l->cap = ncap;
        }
        l->step[l->n] = step;
        l->loss[l->n] = loss;
        l->n++;
    }
    if (rc == CLI_OK && ferror(f)) {
        cli_usage_error("cannot read %s: %s", path, strerror(errno));
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK && nfields == 0) {
        cli_usage_error("%s: empty file: no header line", path);
        rc = CLI_FAIL;
    } else if (rc == CLI_OK && l->n == 0) {
        cli_usage_error("%s: no data lines after the header", path);
        rc = CLI_FAIL;
    }
    free(line);
    fclose(f);
    if (rc != CLI_OK) loss_log_free(l);
    return rc;
}

/* Draws the loss of log_path (light) and its bias-corrected moving average with weight `smooth` (dark) into
   png_path. log_y: the y axis shows log10 of the loss. settings: the tEXt "ddpm" value, or NULL. */
int cli_plot_loss(const char *log_path, const char *png_path, double smooth, int log_y, int width, int height,
                  const char *settings) {
    loss_log l;
    int rc = read_log(log_path, &l);
    if (rc != CLI_OK) return rc;
    double *ys = malloc(sizeof(double) * (size_t)l.n), *yr = malloc(sizeof(double) * (size_t)l.n);
    if (!ys || !yr) {
        fprintf(stderr, "ddpm: error: out of memory\n");
        rc = CLI_FAIL;
        goto done;
    }
    double avg = 0, weight = 1;
    int nonpositive = 0;
    for (int i = 0; i < l.n; i++) {
        avg = smooth * avg + (1 - smooth) * l.loss[i];
        weight *= smooth;
        double s = avg / (1 - weight);
        if (l.loss[i] <= 0) nonpositive = 1;
        yr[i] = log_y && l.loss[i] > 0 ? log10(l.loss[i]) : l.loss[i];
        ys[i] = log_y && s > 0 ? log10(s) : s;
    }
    if (log_y && nonpositive) {
        cli_usage_error("%s: a loss <= 0 has no logarithm; use --y linear", log_path);
        rc = CLI_FAIL;
        goto done;
    }
    char label_raw[64], label_smooth[64], title[512], software[64];
    snprintf(label_raw, sizeof label_raw, "loss");
    snprintf(label_smooth, sizeof label_smooth, "smoothed (EMA %g)", smooth);
    const char *base = strrchr(log_path, '/');
    snprintf(title, sizeof title, "Training loss: %s (%d steps logged)", base ? base + 1 : log_path, l.n);
    snprintf(software, sizeof software, "ddpm %s", ddpm_version());
    const char *text[] = {"ddpm", settings ? settings : "plot", "Software", software, NULL};
    ddpm_plot_series series[2];
    memset(series, 0, sizeof series);
    series[0].label = label_raw;
    series[0].x = l.step;
    series[0].y = yr;
    series[0].n = l.n;
    series[0].rgb[0] = 0.62, series[0].rgb[1] = 0.78, series[0].rgb[2] = 0.91;   /* light blue */
    series[1].label = label_smooth;
    series[1].x = l.step;
    series[1].y = ys;
    series[1].n = l.n;
    series[1].rgb[0] = 0.84, series[1].rgb[1] = 0.15, series[1].rgb[2] = 0.16;   /* red */
    ddpm_plot p;
    memset(&p, 0, sizeof p);
    p.title = title;
    p.xlabel = "training step";
    p.ylabel = log_y ? "log\xE2\x82\x81\xE2\x82\x80 loss" : "loss";
    p.width = width;
    p.height = height;
    p.series = series;
    p.nseries = smooth > 0 ? 2 : 1;
    p.text = text;
    if (ddpm_plot_lines(png_path, &p) != DDPM_OK) rc = cli_fail();
done:
    free(ys);
    free(yr);
    loss_log_free(&l);
    return rc;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    double smooth;
    long long width, height;
    int log_y = 1;
    int rc = cli_double(a, "smooth", 0, 1, 0, &smooth);
    if (rc == CLI_OK && smooth >= 1) rc = cli_usage_error("--smooth %s: must be in [0, 1)", cli_str(a, "smooth"));
    if (rc == CLI_OK) rc = cli_int(a, "width", 240, 8192, &width);
    if (rc == CLI_OK) rc = cli_int(a, "height", 160, 8192, &height);
    if (rc == CLI_OK) {
        const char *y = cli_str(a, "y");
        if (strcmp(y, "linear") == 0) log_y = 0;
        else if (strcmp(y, "log") != 0) rc = cli_usage_error("--y %s: must be log or linear", y);
    }
    if (rc != CLI_OK) return rc;
    const char *log_path = a->positional[0];
    char *out = NULL;
    if (cli_given(a, "out")) {
        out = malloc(strlen(cli_str(a, "out")) + 1);
        if (out) strcpy(out, cli_str(a, "out"));
    } else {   /* loss.png in the log's folder */
        const char *slash = strrchr(log_path, '/');
        size_t dir = slash ? (size_t)(slash - log_path) + 1 : 0;
        out = malloc(dir + sizeof "loss.png");
        if (out) {
            memcpy(out, log_path, dir);
            strcpy(out + dir, "loss.png");
        }
    }
    char *settings = cli_settings(a);
    if (!out || !settings) {
        free(out);
        free(settings);
        fprintf(stderr, "ddpm: error: out of memory\n");
        return CLI_FAIL;
    }
    rc = cli_plot_loss(log_path, out, smooth, log_y, (int)width, (int)height, settings);
    if (rc == CLI_OK) printf("wrote %s\n", out);
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
