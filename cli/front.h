/* front.h — what every ddpm subcommand shares outside option parsing: one error printer and the exit codes,
   stop signals, clocks, the progress line, where the shipped files live, and text files written atomically. */
#ifndef DDPM_CLI_FRONT_H
#define DDPM_CLI_FRONT_H

#include <stddef.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted by Ctrl-C (143 by SIGTERM). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_INTERRUPTED = 130 };

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* "ddpm: error: <message>" on stderr, always one line (line breaks become blanks); returns status. */
int cli_error(int status, const char *fmt, ...) CLI_PRINTF(2, 3);
/* cli_error(CLI_USAGE, ...): a bad command line. */
int cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* "ddpm: error: <ddpm_last_error()>"; returns CLI_FAIL, or the stop status after a stop signal. */
int cli_fail(void);

/* SIGINT and SIGTERM: the first sets a flag that long loops poll (they finish their step and leave cleanly);
   a second one ends the program at once. cli_interrupted() is the signal's number (0: none) and
   cli_stop_status() its exit status (130 for SIGINT, 143 for SIGTERM). */
void cli_signals_install(void);
int cli_interrupted(void);
int cli_stop_status(void);
/* For library callbacks (ddpm_train_stop_fn): non-zero after a stop signal. */
int cli_stop_requested(void *user);

/* Seconds of a monotonic clock. */
double cli_now(void);
/* "4.2 s" under a minute, else "3m05s" or "2h07m"; "--" for a negative or absurd time. */
void cli_duration(char *buf, size_t size, double seconds);

/* One progress line on standard output: on a terminal it is redrawn in place at most ten times a second;
   otherwise a plain line is printed when the caller says it is due. */
typedef struct {
    int tty, width;
    double last_draw;
} cli_progress;
void cli_progress_init(cli_progress *p);
/* Shows `line`: on a terminal (last: always, and the line is ended), else when plain_due or last. */
void cli_progress_show(cli_progress *p, const char *line, int plain_due, int last);
/* Ends a terminal line in progress so that a message can follow. */
void cli_progress_break(cli_progress *p);

/* Where the shipped files live (models/, scripts/get-data.sh): PREFIX/share/ddpm beside an installed program
   (found from /proc/self/exe), else the source tree the program was built from. "" when neither exists. */
const char *cli_share_dir(void);
/* cli_share_dir()/rel in buf (size n); returns buf. */
const char *cli_share_path(char *buf, size_t n, const char *rel);

/* Text output: cli_text_open collects the text in memory (or writes stdout for "-"); cli_text_commit writes it
   with ddpm_write_file (a regular file is replaced atomically, a device or FIFO written through, anything
   else refused). Both print the error line on failure; commit returns CLI_FAIL or the stop status. */
typedef struct {
    FILE *f;
    char *path, *buf;
    size_t len;
} cli_text_file;
int cli_text_open(cli_text_file *t, const char *path);
int cli_text_commit(cli_text_file *t);
void cli_text_abort(cli_text_file *t);

#endif
