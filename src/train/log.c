/* log.c — the training log (log.csv: one line per step, cut back to the checkpoint's step on resume) and the
   picture of its loss curve. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "train/train.h"

#define LOG_HEADER "step,loss,smoothed_loss,lr,grad_norm,images_per_s,elapsed_s\n"
#define LOG_SMOOTH 0.98      /* weight of the smoothed_loss moving average */
#define LOG_MAX_FIELDS 64    /* fields per line the reader accepts */

struct ddpm_train_log {
    FILE *f;
    char *path;
    double avg, weight;      /* uncorrected moving average and 1 - 0.98^k */
    double elapsed0;         /* training seconds before this run */
};

const char **dd_text_join(const char **out, int cap, const char *const *text, const char *const *extra) {
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (const char *const *p = pass ? extra : text; p && p[0] && p[1] && n + 2 < cap; p += 2) {
            out[n++] = p[0];
            out[n++] = p[1];
        }
    out[n] = NULL;
    return out;
}

static ddpm_status io_error(const char *what, const char *path) {
    return dd_error(DDPM_ERR_IO, "cannot %s %s: %s", what, path, strerror(errno));
}

/* The log cut back to steps <= resume_step, rewritten atomically; the average and elapsed time of its last
   line continue. Incomplete and unreadable lines are dropped. */
static ddpm_status cut_back(ddpm_train_log *lg, int64_t resume_step) {
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status st = dd_read_file(lg->path, 0, &buf, &len);
    if (st != DDPM_OK) return st;
    char *out = dd_alloc(len + sizeof LOG_HEADER), *p = (char *)buf, *end = p + len;
    if (!out) {
        dd_free(buf);
        return DDPM_ERR_NOMEM;
    }
    size_t n = strlen(LOG_HEADER);
    memcpy(out, LOG_HEADER, n);
    long long last = 0;
    for (long lineno = 0; p < end; lineno++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;   /* an incomplete last line */
        *nl = 0;
        long long step;
        double loss, sm, lr, gn, ips, el;
        int ok = lineno > 0 && sscanf(p, "%lld,%lf,%lf,%lf,%lf,%lf,%lf", &step, &loss, &sm, &lr, &gn, &ips, &el) == 7;
        if (ok && step > resume_step) break;
        if (ok) {
            memcpy(out + n, p, (size_t)(nl - p));
            n += (size_t)(nl - p);
            out[n++] = '\n';
            lg->avg = sm;
            lg->elapsed0 = el;
            last = step;
        }
        p = nl + 1;
    }
    lg->weight = last > 0 ? 1 - pow(LOG_SMOOTH, (double)last) : 0;
    lg->avg *= lg->weight;   /* back to the uncorrected sum */
    st = dd_write_file_atomic(lg->path, out, n);
    dd_free(out);
    dd_free(buf);
    return st;
}

ddpm_status ddpm_train_log_open(const char *path, int64_t resume_step, ddpm_train_log **out) {
    if (!out || !path || !path[0]) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_train_log_open: NULL path or output");
    *out = NULL;
    ddpm_train_log *lg = dd_calloc(1, sizeof *lg);
    if (!lg || !(lg->path = dd_strdup(path))) {
        dd_free(lg);
        return DDPM_ERR_NOMEM;
    }
    ddpm_status st = DDPM_OK;
    if (resume_step <= 0 && access(path, F_OK) == 0 && unlink(path) != 0) st = io_error("replace", path);
    if (st == DDPM_OK && resume_step > 0 && dd_is_file(path)) st = cut_back(lg, resume_step);
    const int fresh = access(path, F_OK) != 0;
    if (st == DDPM_OK && !(lg->f = fopen(path, "ab"))) st = io_error("write", path);
    if (st == DDPM_OK && fresh && (fputs(LOG_HEADER, lg->f) < 0 || fflush(lg->f) != 0)) st = io_error("write", path);
    if (st != DDPM_OK) {
        ddpm_train_log_close(lg);
        return st;
    }
    *out = lg;
    return DDPM_OK;
}

ddpm_status ddpm_train_log_write(ddpm_train_log *lg, const ddpm_train_stats *s, double images_per_s,
                                 double elapsed_s) {
    if (!lg || !s) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_train_log_write: NULL log or statistics");
    lg->avg = LOG_SMOOTH * lg->avg + (1 - LOG_SMOOTH) * s->loss;
    lg->weight = 1 - LOG_SMOOTH * (1 - lg->weight);
    if (fprintf(lg->f, "%lld,%.9g,%.9g,%.9g,%.9g,%.4f,%.3f\n", (long long)s->step, s->loss,
                ddpm_train_log_smoothed(lg), s->lr, s->grad_norm, images_per_s, lg->elapsed0 + elapsed_s) < 0 ||
        fflush(lg->f) != 0)
        return io_error("write", lg->path);
    return DDPM_OK;
}

double ddpm_train_log_smoothed(const ddpm_train_log *lg) {
    return lg && lg->weight > 0 ? lg->avg / lg->weight : 0;
}

double ddpm_train_log_elapsed_before(const ddpm_train_log *lg) { return lg ? lg->elapsed0 : 0; }

void ddpm_train_log_close(ddpm_train_log *lg) {
    if (!lg) return;
    if (lg->f) fclose(lg->f);
    dd_free(lg->path);
    dd_free(lg);
}

/* ------------------------------------------------------------------ reading and drawing a log */

typedef struct {
    double *step, *loss;
    int n, cap;
} loss_log;

/* Splits line (modified in place) at commas, trimming blanks; returns the field count or -1 when too many. */
static int split_fields(char *line, char **field) {
    int n = 0;
    for (char *p = line;;) {
        if (n >= LOG_MAX_FIELDS) return -1;
        field[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    for (int i = 0; i < n; i++) {
        while (*field[i] == ' ' || *field[i] == '\t') field[i]++;
        size_t len = strlen(field[i]);
        while (len && (field[i][len - 1] == ' ' || field[i][len - 1] == '\t')) field[i][--len] = 0;
    }
    return n;
}

static int parse_number(const char *s, double *out) {
    char *end;
    if (!*s) return -1;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static ddpm_status add_point(loss_log *l, double step, double loss) {
    if (l->n == l->cap) {
        int ncap = l->cap ? 2 * l->cap : 1024;
        double *s2 = ncap > l->cap ? dd_realloc(l->step, sizeof(double) * (size_t)ncap) : NULL;
        if (s2) l->step = s2;
        double *l2 = s2 ? dd_realloc(l->loss, sizeof(double) * (size_t)ncap) : NULL;
        if (l2) l->loss = l2;
        if (!l2) return DDPM_ERR_NOMEM;
        l->cap = ncap;
    }
    l->step[l->n] = step;
    l->loss[l->n++] = loss;
    return DDPM_OK;
}

/* The columns "step" and "loss" of a CSV log; errors name the line. */
static ddpm_status read_log(const char *path, loss_log *l) {
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status st = dd_read_file(path, 0, &buf, &len);
    if (st != DDPM_OK) return st;
    char *p = (char *)buf, *end = p + len, *field[LOG_MAX_FIELDS];
    int nfields = 0, step_col = -1, loss_col = -1;
    for (long lineno = 1; st == DDPM_OK && p < end; lineno++) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *line = p;
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p = nl ? nl + 1 : end;
        while (n && line[n - 1] == '\r') n--;
        line[n] = 0;
        if (strlen(line) != n) {
            st = dd_error(DDPM_ERR_FORMAT, "%s:%ld: a NUL byte: not a text CSV file", path, lineno);
            break;
        }
        if (n == 0) continue;
        int nf = split_fields(line, field);
        double step, loss;
        if (nf < 0) {
            st = dd_error(DDPM_ERR_FORMAT, "%s:%ld: more than %d fields", path, lineno, LOG_MAX_FIELDS);
        } else if (nfields == 0) {   /* the header */
            nfields = nf;
            for (int i = nf - 1; i >= 0; i--) {
                if (strcmp(field[i], "step") == 0) step_col = i;
                if (strcmp(field[i], "loss") == 0) loss_col = i;
            }
            if (step_col < 0 || loss_col < 0)
                st = dd_error(DDPM_ERR_FORMAT, "%s:%ld: the header has no '%s' column (a training log starts with "
                              "step,loss,...)", path, lineno, step_col < 0 ? "step" : "loss");
        } else if (nf != nfields) {
            st = dd_error(DDPM_ERR_FORMAT, "%s:%ld: %d fields where the header has %d", path, lineno, nf, nfields);
        } else if (parse_number(field[step_col], &step) != 0 || parse_number(field[loss_col], &loss) != 0) {
            int bad = parse_number(field[step_col], &step) != 0 ? step_col : loss_col;
            st = dd_error(DDPM_ERR_FORMAT, "%s:%ld: %s '%.40s' is not a finite number", path, lineno,
                          bad == step_col ? "step" : "loss", field[bad]);
        } else if (l->n > 0 && !(step > l->step[l->n - 1])) {
            st = dd_error(DDPM_ERR_FORMAT, "%s:%ld: step %.17g does not follow step %.17g", path, lineno, step,
                          l->step[l->n - 1]);
        } else {
            st = add_point(l, step, loss);
        }
    }
    if (st == DDPM_OK && nfields == 0) st = dd_error(DDPM_ERR_FORMAT, "%s: empty file: no header line", path);
    else if (st == DDPM_OK && l->n == 0) st = dd_error(DDPM_ERR_FORMAT, "%s: no data lines after the header", path);
    dd_free(buf);
    return st;
}

void ddpm_train_log_plot_config_default(ddpm_train_log_plot_config *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->smooth = LOG_SMOOTH;
    c->log_y = 1;
    c->width = 1000;
    c->height = 600;
}

ddpm_status ddpm_train_log_plot(const char *log_path, const char *png_path, const ddpm_train_log_plot_config *c) {
    ddpm_train_log_plot_config dflt;
    ddpm_train_log_plot_config_default(&dflt);
    if (!c) c = &dflt;
    if (!log_path || !png_path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_train_log_plot: NULL path");
    if (!(c->smooth >= 0 && c->smooth < 1))
        return dd_error(DDPM_ERR_INVALID_ARG, "loss plot: smooth = %g must be in [0, 1)", c->smooth);
    loss_log l = {NULL, NULL, 0, 0};
    ddpm_status st = read_log(log_path, &l);
    double *ys = st == DDPM_OK ? dd_alloc(sizeof(double) * (size_t)l.n) : NULL;
    double *yr = ys ? dd_alloc(sizeof(double) * (size_t)l.n) : NULL;
    if (st == DDPM_OK && !yr) st = DDPM_ERR_NOMEM;
    double avg = 0, weight = 1;
    for (int i = 0; st == DDPM_OK && i < l.n; i++) {
        avg = c->smooth * avg + (1 - c->smooth) * l.loss[i];
        weight *= c->smooth;
        double s = avg / (1 - weight);
        if (c->log_y && l.loss[i] <= 0)
            st = dd_error(DDPM_ERR_INVALID_ARG, "%s: a loss <= 0 has no logarithm; draw it on a linear y axis",
                          log_path);
        yr[i] = c->log_y && l.loss[i] > 0 ? log10(l.loss[i]) : l.loss[i];
        ys[i] = c->log_y && s > 0 ? log10(s) : s;
    }
    if (st == DDPM_OK) {
        char label_smooth[64], title[512], software[64];
        snprintf(label_smooth, sizeof label_smooth, "smoothed (EMA %g)", c->smooth);
        const char *base = strrchr(log_path, '/');
        snprintf(title, sizeof title, "Training loss: %s (%d steps logged)", base ? base + 1 : log_path, l.n);
        snprintf(software, sizeof software, "ddpm %s", ddpm_version());
        const char *const extra[] = {"Software", software, NULL}, *text[DD_TEXT_MAX];
        ddpm_plot_series series[2] = {
            {"loss", l.step, yr, l.n, {0.62, 0.78, 0.91}, 0},       /* light blue */
            {label_smooth, l.step, ys, l.n, {0.84, 0.15, 0.16}, 0},  /* red */
        };
        ddpm_plot p;
        memset(&p, 0, sizeof p);
        p.title = title;
        p.xlabel = "training step";
        p.ylabel = c->log_y ? "log\xE2\x82\x81\xE2\x82\x80 loss" : "loss";
        p.width = c->width;
        p.height = c->height;
        p.series = series;
        p.nseries = c->smooth > 0 ? 2 : 1;
        p.text = dd_text_join(text, DD_TEXT_MAX, c->text, extra);
        st = ddpm_plot_lines(png_path, &p);
    }
    dd_free(ys);
    dd_free(yr);
    dd_free(l.step);
    dd_free(l.loss);
    return st;
}
