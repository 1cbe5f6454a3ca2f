/* fuzz_schedule_text.c — libFuzzer target for the text parser of "file:PATH" beta schedules. */
#include <stddef.h>
#include <stdint.h>

#include "diffusion/schedule.h" /* internal: dd_schedule_parse_text */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double *betas = NULL;
    int T = 0;
    ddpm_status st = dd_schedule_parse_text((const char *)data, size, &betas, &T);
    if (st == DDPM_OK) {
        /* The parser's contract: 1..DD_SCHEDULE_MAX_T values, each finite and in (0, 1). */
        if (!betas || T < 1 || T > DD_SCHEDULE_MAX_T) __builtin_trap();
        for (int i = 0; i < T; i++)
            if (!(betas[i] > 0.0 && betas[i] < 1.0)) __builtin_trap();
    } else if (betas || T != 0 || ddpm_last_error()[0] == 0) {
        __builtin_trap();
    }
    ddpm_free(betas);
    return 0;
}
