/* options.c — option parsing, --help from the option tables, typed values and the settings text of the ddpm
   program (see options.h). */
#include "options.h"

#include <ddpm.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------- tables and help */

static int option_index(const cli_command *cmd, const char *name, size_t len) {
    for (int i = 0; cmd->options[i].name; i++)
        if (strlen(cmd->options[i].name) == len && strncmp(cmd->options[i].name, name, len) == 0) return i;
    return -1;
}

static int option_count(const cli_command *cmd) {
    int n = 0;
    while (cmd->options[n].name) n++;
    return n;
}

/* Prints text word-wrapped to `avail` columns, continuation lines indented by `indent` spaces. */
static void print_wrapped(FILE *f, const char *text, int indent, int avail) {
    int col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        int len = 0;
        while (p[len] && p[len] != ' ') len++;
        if (!len) break;
        if (col > 0 && col + 1 + len > avail) {
            fprintf(f, "\n%*s", indent, "");
            col = 0;
        } else if (col > 0) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, (size_t)len, f);
        col += len;
        p += len;
    }
    fputc('\n', f);
}

void cli_print_help(const cli_command *cmd, FILE *f) {
    char left[160], desc[600];
    int width = 10;
    fprintf(f, "ddpm %s — %s\n\n", cmd->name, cmd->summary);
    fprintf(f, "usage: ddpm %s %s\n\noptions:\n", cmd->name, cmd->synopsis);
    for (int i = 0; cmd->options[i].name; i++) {
        const cli_option *o = &cmd->options[i];
        int w = snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (w > width) width = w;
    }
    int avail = 79 - (width + 4);
    if (avail < 30) avail = 30;
    for (int i = 0; cmd->options[i].name; i++) {
        const cli_option *o = &cmd->options[i];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (o->def) snprintf(desc, sizeof desc, "%s (default: %s)", o->help, o->def);
        else snprintf(desc, sizeof desc, "%s", o->help);
        fprintf(f, "  %-*s  ", width, left);
        print_wrapped(f, desc, width + 4, avail);
    }
    fprintf(f, "  %-*s  %s\n", width, "-h, --help", "show this help");
    if (cmd->epilog) fprintf(f, "\n%s", cmd->epilog);
}

/* ------------------------------------------------------------------------------- parsing */

static int unknown_option(const cli_command *cmd, const char *arg) {
    const char *names[CLI_MAX_OPTIONS];
    int n = option_count(cmd);
    const char *word = arg;
    char buf[128];
    while (*word == '-') word++;
    snprintf(buf, sizeof buf, "%s", word);
    char *eq = strchr(buf, '=');
    if (eq) *eq = 0;
    for (int i = 0; i < n; i++) names[i] = cmd->options[i].name;
    const char *near = ddpm_closest(buf, names, n);
    if (near)
        return cli_usage_error("unknown option '%s' for 'ddpm %s' (did you mean '--%s'?)", arg, cmd->name, near);
    return cli_usage_error("unknown option '%s' for 'ddpm %s' (see 'ddpm %s --help')", arg, cmd->name, cmd->name);
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *a) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_print_help(cmd, stdout);
            return -1;
        }
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_positional && strcmp(arg, "--") == 0) { only_positional = 1; continue; }
        if (only_positional || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (!cmd->positional || a->npositional >= cmd->max_positional)
                return cli_usage_error("unexpected argument '%s' for 'ddpm %s' (see 'ddpm %s --help')", arg,
                                       cmd->name, cmd->name);
            a->positional[a->npositional++] = arg;
            continue;
        }
        if (arg[1] != '-') return unknown_option(cmd, arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int k = option_index(cmd, name, len);
        if (k < 0) return unknown_option(cmd, arg);
        const cli_option *o = &cmd->options[k];
        if (!o->arg) {
            if (eq) return cli_usage_error("option --%s takes no value (got '%s')", o->name, arg);
            a->value[k] = "1";
            continue;
        }
        if (eq) {
            a->value[k] = eq + 1;
        } else {
            if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-'))
                return cli_usage_error("option --%s needs a value: --%s %s", o->name, o->name, o->arg);
            a->value[k] = argv[++i];
        }
        if (!a->value[k][0]) return cli_usage_error("option --%s has an empty value", o->name);
    }
    if (a->npositional < cmd->min_positional)
        return cli_usage_error("'ddpm %s' needs %s (see 'ddpm %s --help')", cmd->name,
                               cmd->positional ? cmd->positional : "an argument", cmd->name);
    return CLI_OK;
}

/* ------------------------------------------------------------------------------- values */

static int lookup(const cli_args *a, const char *name) {
    int k = option_index(a->cmd, name, strlen(name));
    if (k < 0) {   /* a programming error in a subcommand: its table lacks the option */
        fprintf(stderr, "ddpm: internal error: 'ddpm %s' has no option --%s\n", a->cmd->name, name);
        abort();
    }
    return k;
}

const char *cli_str(const cli_args *a, const char *name) {
    int k = lookup(a, name);
    return a->value[k] ? a->value[k] : a->cmd->options[k].def;
}

int cli_given(const cli_args *a, const char *name) { return a->value[lookup(a, name)] != NULL; }

int cli_flag(const cli_args *a, const char *name) { return cli_given(a, name); }

int cli_require(const cli_args *a, const char *name) {
    int k = lookup(a, name);
    if (a->value[k] || a->cmd->options[k].def) return CLI_OK;
    return cli_usage_error("'ddpm %s' needs --%s %s", a->cmd->name, name, a->cmd->options[k].arg);
}

static int parse_ll(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

int cli_int(const cli_args *a, const char *name, long long min, long long max, long long *out) {
    const char *s = cli_str(a, name);
    long long v;
    if (!s) return cli_require(a, name);
    if (parse_ll(s, &v) != 0) return cli_usage_error("--%s %s: not an integer", name, s);
    if (v < min || v > max) return cli_usage_error("--%s %s: must be in %lld..%lld", name, s, min, max);
    *out = v;
    return CLI_OK;
}

int cli_threads(const cli_args *a, const char *name, long long min, long long *out) {
    long long cores = ddpm_num_cores(), max = 2 * cores;
    const char *s = cli_str(a, name);
    long long v;
    if (!s) return cli_require(a, name);
    if (strcmp(s, "auto") == 0) {   /* the library's default: the cores other processes leave free */
        *out = 0;
        return CLI_OK;
    }
    if (parse_ll(s, &v) != 0) return cli_usage_error("--%s %s: not an integer (or auto)", name, s);
    if (v < min) return cli_usage_error("--%s %s: must be at least %lld", name, s, min);
    if (v > max)
        return cli_usage_error("--%s %s: at most %lld on this machine's %lld core%s (threads beyond the cores only "
                               "slow a run down)", name, s, max, cores, cores == 1 ? "" : "s");
    *out = v;
    return CLI_OK;
}

int cli_u64(const cli_args *a, const char *name, uint64_t *out) {
    const char *s = cli_str(a, name);
    char *end;
    if (!s) return cli_require(a, name);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '-' || s[0] == '+' || end == s || *end || errno == ERANGE)
        return cli_usage_error("--%s %s: must be an integer in 0..18446744073709551615", name, s);
    *out = (uint64_t)v;
    return CLI_OK;
}

int cli_double(const cli_args *a, const char *name, double min, double max, int open, double *out) {
    const char *s = cli_str(a, name);
    char *end;
    if (!s) return cli_require(a, name);
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) return cli_usage_error("--%s %s: not a finite number", name, s);
    if (open ? !(v > min && v < max) : !(v >= min && v <= max))
        return cli_usage_error("--%s %s: must be in %s%g, %g%s", name, s, open ? "(" : "[", min, max,
                               open ? ")" : "]");
    *out = v;
    return CLI_OK;
}

int cli_int_list(const cli_args *a, const char *name, long long min, long long max, long long *out,
                 int maxn, int *n) {
    const char *s = cli_str(a, name);
    if (!s) return cli_require(a, name);
    *n = 0;
    const char *p = s;
    for (;;) {
        char item[32];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        long long v;
        if (len == 0 || len >= sizeof item)
            return cli_usage_error("--%s %s: expected comma-separated integers", name, s);
        memcpy(item, p, len);
        item[len] = 0;
        if (parse_ll(item, &v) != 0)
            return cli_usage_error("--%s %s: '%s' is not an integer", name, s, item);
        if (v < min || v > max) return cli_usage_error("--%s %s: %lld is not in %lld..%lld", name, s, v, min, max);
        if (*n >= maxn) return cli_usage_error("--%s %s: at most %d values", name, s, maxn);
        out[(*n)++] = v;
        if (!comma) break;
        p = comma + 1;
    }
    return CLI_OK;
}

int cli_choice(const char *label, const char *value, const char *const *choices, const char *what, int *index) {
    int n = 0;
    char list[512] = "";
    for (; choices[n]; n++) {
        if (strcmp(value, choices[n]) == 0) {
            if (index) *index = n;
            return CLI_OK;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", n ? ", " : "", choices[n]);
    }
    const char *near = ddpm_closest(value, choices, n);
    if (near) return cli_usage_error("%s: unknown %s (did you mean '%s'?)", label, what, near);
    return cli_usage_error("%s: unknown %s (choose from %s)", label, what, list);
}

int cli_check_schedule(const char *option, const char *name) {
    int known = 0, ok = strncmp(name, "file:", 5) == 0 && name[5];
    while (ddpm_schedule_names[known]) known++;
    for (int i = 0; i < known && !ok; i++) ok = strcmp(name, ddpm_schedule_names[i]) == 0;
    if (ok) return CLI_OK;
    const char *near = ddpm_closest(name, (const char *const *)ddpm_schedule_names, known);
    if (near) return cli_usage_error("--%s: unknown schedule '%s' (did you mean '%s'?)", option, name, near);
    char list[256] = "";
    for (int i = 0; i < known; i++) {
        strncat(list, ddpm_schedule_names[i], sizeof list - strlen(list) - 1);
        strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return cli_usage_error("--%s: unknown schedule '%s' (choose from %sfile:PATH)", option, name, list);
}

/* ------------------------------------------------------------------------------- settings text */

int cli_has(const cli_args *a, const char *name) { return option_index(a->cmd, name, strlen(name)) >= 0; }

int cli_schedule(const cli_args *a, ddpm_schedule_config *sc) {
    ddpm_schedule_config_default(sc);
    long long T = sc->T;
    int rc = cli_check_schedule("schedule", cli_str(a, "schedule"));
    if (rc == CLI_OK) rc = cli_int(a, "T", 1, 1000000, &T);
    if (rc == CLI_OK && cli_has(a, "beta-start")) rc = cli_double(a, "beta-start", 0, 1, 1, &sc->beta_start);
    if (rc == CLI_OK && cli_has(a, "beta-end")) rc = cli_double(a, "beta-end", 0, 1, 1, &sc->beta_end);
    sc->name = cli_str(a, "schedule");
    sc->T = (int)T;
    return rc;
}

/* ------------------------------------------------------------------------------- the library's defaults */

cli_lib_defaults cli_defaults;

/* v as text: the shorter of its shortest exact %g form and the exponent form ("5e-4", "0.9999"). */
static void put_number(char *buf, size_t size, double v) {
    char e[40];
    int p = 1;
    while (p < 17 && (snprintf(buf, size, "%.*g", p, v), strtod(buf, NULL) != v)) p++;
    snprintf(buf, size, "%.*g", p, v);
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    char *x = strchr(e, 'e');
    if (x) snprintf(x, sizeof e - (size_t)(x - e), "e%d", atoi(x + 1));
    if (strlen(e) < strlen(buf) && strlen(e) < size) memcpy(buf, e, strlen(e) + 1);
}

__attribute__((constructor)) static void fill_defaults(void) {
    ddpm_train_config c;
    ddpm_classifier_train_config k;
    cli_lib_defaults *d = &cli_defaults;
    ddpm_train_config_default(&c);
    ddpm_classifier_train_config_default(&k);
#define PUT(f, ...) snprintf(d->f, sizeof d->f, __VA_ARGS__)
#define NUM(f, v) put_number(d->f, sizeof d->f, v)
    PUT(steps, "%lld", (long long)c.steps), PUT(batch, "%d", c.batch), PUT(grad_accum, "%d", c.grad_accum);
    PUT(warmup, "%lld", (long long)c.warmup_steps), PUT(T, "%d", c.schedule.T), PUT(schedule, "%s", c.schedule.name);
    PUT(lr_schedule, "%s", ddpm_enum_name(DDPM_ENUM_LR_SCHEDULE, c.lr_schedule));
    PUT(objective, "%s", ddpm_enum_name(DDPM_ENUM_PREDICTION, c.objective));
    PUT(engine, "%s", ddpm_enum_name(DDPM_ENUM_ENGINE, c.engine)), PUT(seed, "%llu", (unsigned long long)c.seed);
    PUT(checkpoint_every, "%lld", (long long)c.checkpoint_every), PUT(keep_checkpoints, "%d", c.keep_checkpoints);
    PUT(clf_epochs, "%d", k.epochs), PUT(clf_batch, "%d", k.batch);
    NUM(lr, c.lr), NUM(grad_clip, c.grad_clip), NUM(min_snr_gamma, c.min_snr_gamma);
    NUM(ema, c.use_ema ? c.ema_max_decay : 0), NUM(label_dropout, c.label_dropout);
    NUM(beta_start, c.schedule.beta_start), NUM(beta_end, c.schedule.beta_end), NUM(clf_lr, k.lr);
#undef PUT
#undef NUM
}

/* s as one shell word: as it is when it has only safe characters, else in single quotes. */
static void put_quoted(FILE *f, const char *s) {
    int plain = *s != 0;
    for (const char *p = s; *p && plain; p++)
        plain = ('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
                strchr("-_.,:/+=@%", *p);
    if (plain) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = s; *p; p++) fputs(*p == '\'' ? "'\\''" : (char[2]){*p, 0}, f);
    fputc('\'', f);
}

char *cli_settings(const cli_args *a) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs(a->cmd->name, f);
    for (int i = 0; a->cmd->options[i].name; i++) {
        const cli_option *o = &a->cmd->options[i];
        const char *v = a->value[i] ? a->value[i] : o->def;
        if (!v || (!o->arg && !a->value[i])) continue;
        fprintf(f, " --%s", o->name);
        if (o->arg) {
            fputc(' ', f);
            put_quoted(f, v);
        }
    }
    for (int i = 0; i < a->npositional; i++) {
        fputc(' ', f);
        put_quoted(f, a->positional[i]);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    return buf;
}

int cli_engine(const cli_args *a, int *out) {
    int rc = cli_enum(a, "engine", DDPM_ENUM_ENGINE, out);
    if (rc != CLI_OK || !cli_has(a, "precision")) return rc;
    const char *p = cli_str(a, "precision");
    if (!p || strcmp(p, "fp32") == 0) {
        if (cli_given(a, "precision") && *out == DDPM_ENGINE_BF16)
            return cli_usage_error("--precision fp32 contradicts --engine bf16");
        return CLI_OK;
    }
    if (strcmp(p, "bf16") != 0) return cli_usage_error("--precision %s: must be fp32 or bf16", p);
    if (*out == DDPM_ENGINE_REFERENCE)
        return cli_usage_error("--precision bf16: the reference engine computes in fp32 only (use --engine fast)");
    *out = DDPM_ENGINE_BF16;
    return CLI_OK;
}

int cli_enum(const cli_args *a, const char *name, ddpm_enum_kind kind, int *out) {
    const char *s = cli_str(a, name);
    if (!s) return cli_usage_error("missing --%s", name);
    if (ddpm_enum_from_name(kind, s, out) != DDPM_OK) return cli_usage_error("--%s %s: %s", name, s, ddpm_last_error());
    return CLI_OK;
}

