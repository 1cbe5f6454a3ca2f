/* options.h — the option machinery of the ddpm subcommands: option tables (which produce --help and hold
   every default once), the parser, typed getters that reject bad values (with one error line each), and the
   run's settings as text. The rest of the front end is in front.h. */
#ifndef DDPM_CLI_OPTIONS_H
#define DDPM_CLI_OPTIONS_H

#include <ddpm.h>
#include <stdint.h>
#include <stdio.h>

#include "front.h"

#define CLI_MAX_OPTIONS 32
#define CLI_MAX_POSITIONAL 4

typedef struct {
    const char *name;   /* long name without "--"; NULL ends a table */
    const char *arg;    /* value placeholder for --help ("N", "FILE.png"); NULL for a flag */
    const char *def;    /* default value as text; NULL = none */
    const char *help;   /* one line */
} cli_option;

struct cli_args;
typedef struct cli_command {
    const char *name;
    const char *summary;          /* one line for `ddpm --help` */
    const char *synopsis;         /* after "usage: ddpm NAME " */
    const char *positional;       /* placeholder of positional arguments, NULL if none */
    int min_positional, max_positional;
    const cli_option *options;    /* NULL-terminated table */
    const char *epilog;           /* examples, printed after the options; may be NULL */
    int (*run)(const struct cli_command *cmd, const struct cli_args *a);
} cli_command;

typedef struct cli_args {
    const cli_command *cmd;
    const char *value[CLI_MAX_OPTIONS];   /* given values (flags: "1"); NULL if not given */
    const char *positional[CLI_MAX_POSITIONAL];
    int npositional;
} cli_args;

/* The subcommands (one file each). */
extern const cli_command cli_cmd_schedule, cli_cmd_noise, cli_cmd_info;
extern const cli_command cli_cmd_init, cli_cmd_forward, cli_cmd_bench;
extern const cli_command cli_cmd_train, cli_cmd_plot;
extern const cli_command cli_cmd_sample, cli_cmd_interpolate, cli_cmd_inpaint, cli_cmd_img2img, cli_cmd_denoise;
extern const cli_command cli_cmd_eval, cli_cmd_train_classifier, cli_cmd_get_data;

/* Parses argv (argv[0] is the subcommand name). Returns CLI_OK, CLI_USAGE after printing one error line,
   or -1 after printing the help (for --help / -h; exit 0). */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *a);
void cli_print_help(const cli_command *cmd, FILE *f);

/* The value of an option: given, else its default, else NULL. */
const char *cli_str(const cli_args *a, const char *name);
int cli_given(const cli_args *a, const char *name);
int cli_flag(const cli_args *a, const char *name);

/* Typed getters: CLI_OK, or CLI_USAGE after printing "ddpm: error: --NAME VALUE: <why>". */
int cli_int(const cli_args *a, const char *name, long long min, long long max, long long *out);
/* --NAME as a thread count: an integer from min up to twice the cores this process may use (ddpm_num_cores). */
int cli_threads(const cli_args *a, const char *name, long long min, long long *out);
/* --engine fast|reference|bf16 combined with --precision fp32|bf16 where the command has it (bf16 on the fast
   engine is the bf16 engine); a contradiction is a usage error. */
int cli_engine(const cli_args *a, int *out);
int cli_u64(const cli_args *a, const char *name, uint64_t *out);
/* A finite number with min < v < max (open interval when open != 0, else min <= v <= max). */
int cli_double(const cli_args *a, const char *name, double min, double max, int open, double *out);
/* Comma-separated integers in [min, max], 1..maxn of them. */
int cli_int_list(const cli_args *a, const char *name, long long min, long long max, long long *out,
                 int maxn, int *n);
/* --NAME as one of the library's enum words (ddpm_enum_from_name): "--NAME WORD: unknown ... (did you mean ...)". */
int cli_enum(const cli_args *a, const char *name, ddpm_enum_kind kind, int *out);
/* A required option: CLI_USAGE with "missing --NAME" when absent. */
int cli_require(const cli_args *a, const char *name);

/* value as one of the NULL-terminated choices (its index in *index, which may be NULL); else CLI_USAGE with
   "LABEL: unknown WHAT (did you mean 'X'?)" or "(choose from a, b, c)". label: "--data mnsit", "'mnsit'". */
int cli_choice(const char *label, const char *value, const char *const *choices, const char *what, int *index);

/* A schedule name the library knows, or file:PATH; else CLI_USAGE naming the closest name. */
int cli_check_schedule(const char *option, const char *name);
/* --schedule (one name), --T and, where the command has them, --beta-start and --beta-end into sc (from
   ddpm_schedule_config_default). CLI_OK or CLI_USAGE. */
int cli_schedule(const cli_args *a, ddpm_schedule_config *sc);
/* Whether the command's option table has `name` (shared helpers read only options that exist). */
int cli_has(const cli_args *a, const char *name);

/* The library's defaults as option text, filled before main so that --help and the parser show them: the
   training configuration (ddpm_train_config_default), the schedule (ddpm_schedule_config_default), the
   classifier's training (ddpm_classifier_train_config_default). Option tables point at these. */
typedef struct {
    char steps[24], batch[16], grad_accum[16], lr[32], warmup[24], lr_schedule[16], grad_clip[32], objective[8];
    char min_snr_gamma[32], ema[32], label_dropout[32], seed[24], checkpoint_every[24], keep_checkpoints[16];
    char engine[16], schedule[32], T[16], beta_start[32], beta_end[32];
    char clf_epochs[16], clf_batch[16], clf_lr[32];
} cli_lib_defaults;
extern cli_lib_defaults cli_defaults;

/* Option rows every command that runs a network shares: --engine with --precision (read by cli_engine), and
   --threads with the library's default, auto. */
#define CLI_OPT_ENGINE                                                                                         \
    {"engine", "fast|reference|bf16", cli_defaults.engine, "the kernels: fast, bf16 (fast with bf16 convolutions on AMX), or the plain reference twins"},                                                                                               \
    {"precision", "fp32|bf16", "fp32", "bf16: the convolutions in bf16 on AMX (fp32 accumulation and master weights; the same as --engine bf16)"}
#define CLI_OPT_THREADS {"threads", "N", "auto", "threads: a count, or auto (0): the cores other processes leave free"}

/* The run's settings for a PNG tEXt chunk: "SUBCOMMAND --opt value ..." with every option's effective
   value (defaults included), shell-quoted where needed. Heap string (free()); NULL when out of memory. */
char *cli_settings(const cli_args *a);

#endif
