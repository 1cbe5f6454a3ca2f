/* schedule.h — internal entry points of the noise-schedule module (text parser, file loader, limits). */
#ifndef DD_SCHEDULE_H
#define DD_SCHEDULE_H

#include <stddef.h>
#include "ddpm.h"

/* Largest number of diffusion steps accepted anywhere (tables are [T] doubles each). */
#define DD_SCHEDULE_MAX_T 10000000

/* Parse a text list of betas from memory: one value per line, blank lines and '#' comments (whole line or
   after the value) allowed, '\n' or "\r\n" line ends. The buffer need not be NUL-terminated. On success
   *betas is a new [*T] array (free with dd_free); on failure *betas = NULL, *T = 0 and the message names
   the line. Every value must be finite and in (0, 1). */
ddpm_status dd_schedule_parse_text(const char *buf, size_t len, double **betas, int *T);

/* Betas of a "file:PATH" schedule: a .safetensors file with a 1-D tensor "betas", or a text file as
   above. *betas is new (dd_free). */
ddpm_status dd_schedule_load_file(const char *path, double **betas, int *T);

/* Checks betas[T]: T in 1..DD_SCHEDULE_MAX_T, every value finite and in (0, 1). `what` names the source. */
ddpm_status dd_schedule_check_betas(const double *betas, int T, const char *what);

#endif
