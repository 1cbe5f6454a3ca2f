/* front.c — errors, stop signals, clocks, the progress line, shipped files and atomic text files of the ddpm
   program (see front.h). */
#define _XOPEN_SOURCE 700   /* realpath, sigaction */
#include "front.h"

#include <ddpm.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------- errors */

static int print_error(int status, const char *fmt, va_list ap) {
    char msg[1200];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';   /* always exactly one line */
    fprintf(stderr, "ddpm: error: %s\n", msg);
    return status;
}

int cli_error(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_error(status, fmt, ap);
    va_end(ap);
    return status;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_error(CLI_USAGE, fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

int cli_fail(void) {
    const char *m = ddpm_last_error();
    cli_error(CLI_FAIL, "%s", m && m[0] ? m : "unknown failure");
    return cli_interrupted() ? cli_stop_status() : CLI_FAIL;
}

/* ------------------------------------------------------------------------------- stop signals */

static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig) {
    if (stop_signal) _exit(128 + sig);   /* a second signal: give up at once (every writer is atomic) */
    stop_signal = sig;
}

void cli_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupted(void) { return stop_signal; }

int cli_stop_status(void) { return stop_signal == SIGTERM ? 128 + SIGTERM : CLI_INTERRUPTED; }

int cli_stop_requested(void *user) {
    (void)user;
    return stop_signal != 0;
}

/* ------------------------------------------------------------------------------- clocks and progress */

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_duration(char *buf, size_t size, double s) {
    if (!(s >= 0) || s > 360000000) {
        snprintf(buf, size, "--");
        return;
    }
    if (s < 60) {
        snprintf(buf, size, "%.1f s", s);
        return;
    }
    long long t = (long long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%lldh%02lldm", t / 3600, t / 60 % 60);
    else snprintf(buf, size, "%lldm%02llds", t / 60, t % 60);
}

void cli_progress_init(cli_progress *p) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDOUT_FILENO);
}

void cli_progress_show(cli_progress *p, const char *line, int plain_due, int last) {
    if (p->tty) {
        double t = cli_now();
        if (!last && t - p->last_draw < 0.1) return;
        p->last_draw = t;
        int w = (int)strlen(line), pad = p->width > w ? p->width - w : 0;
        printf("\r%s%*s%s", line, pad, "", last ? "\n" : "");
        p->width = last ? 0 : w;
    } else if (plain_due || last) {
        printf("%s\n", line);
    } else {
        return;
    }
    fflush(stdout);
}

void cli_progress_break(cli_progress *p) {
    if (p->tty && p->width > 0) {
        printf("\n");
        fflush(stdout);
    }
    p->width = 0;
}

/* ------------------------------------------------------------------------------- shipped files */

#ifndef DDPM_SOURCE_DIR
#define DDPM_SOURCE_DIR ""
#endif

static int has_models(const char *root) {
    char p[PATH_MAX + 64];
    struct stat sb;
    snprintf(p, sizeof p, "%s/models", root);
    return root[0] && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *cli_share_dir(void) {
    static char root[PATH_MAX + 32];
    static int done = 0;
    if (done) return root;
    done = 1;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = 0, strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = 0;   /* PREFIX/bin */
        snprintf(root, sizeof root, "%s/../share/ddpm", exe);
        char *real = realpath(root, NULL);
        int ok = real && has_models(real);
        if (ok) snprintf(root, sizeof root, "%s", real);
        free(real);
        if (ok) return root;
    }
    char *src = has_models(DDPM_SOURCE_DIR) ? realpath(DDPM_SOURCE_DIR, NULL) : NULL;
    snprintf(root, sizeof root, "%s", src ? src : "");
    free(src);
    return root;
}

const char *cli_share_path(char *buf, size_t n, const char *rel) {
    const char *root = cli_share_dir();
    snprintf(buf, n, "%s%s%s", root, root[0] ? "/" : "", rel);
    return buf;
}

/* ------------------------------------------------------------------------------- atomic text files */

int cli_text_open(cli_text_file *t, const char *path) {
    memset(t, 0, sizeof t[0]);
    if (strcmp(path, "-") == 0) {
        t->f = stdout;
        return CLI_OK;
    }
    t->path = malloc(strlen(path) + 1);
    if (t->path) {
        strcpy(t->path, path);
        t->f = open_memstream(&t->buf, &t->len);
    }
    if (!t->f) {
        cli_text_abort(t);
        return cli_error(CLI_FAIL, "out of memory");
    }
    return CLI_OK;
}

void cli_text_abort(cli_text_file *t) {
    if (t->f && t->f != stdout) fclose(t->f);
    free(t->buf);
    free(t->path);
    memset(t, 0, sizeof t[0]);
}

int cli_text_commit(cli_text_file *t) {
    if (t->f == stdout) {
        int bad = fflush(stdout) != 0 || ferror(stdout);
        memset(t, 0, sizeof t[0]);
        return bad ? cli_error(CLI_FAIL, "cannot write to standard output: %s", strerror(errno)) : CLI_OK;
    }
    int bad = ferror(t->f) != 0;
    bad |= fclose(t->f) != 0;   /* sets buf and len */
    t->f = NULL;
    int rc = CLI_OK;
    if (cli_interrupted()) rc = cli_error(cli_stop_status(), "interrupted; %s was not written", t->path);
    else if (bad) rc = cli_error(CLI_FAIL, "cannot write %s: out of memory", t->path);
    else if (ddpm_write_file(t->path, t->buf, t->len) != DDPM_OK) rc = cli_fail();
    cli_text_abort(t);
    return rc;
}
