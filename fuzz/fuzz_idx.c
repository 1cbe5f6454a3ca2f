/* fuzz_idx.c — libFuzzer target: the IDX reader (raw or gzip) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "ddpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ddpm_idx x;
    if (ddpm_idx_read_memory(data, size, &x) != DDPM_OK) {
        if (x.data || !ddpm_last_error()[0]) abort();
        return 0;
    }
    if (x.ndim < 1 || x.ndim > 4 || !x.data) abort();
    uint64_t n = 1;
    for (int i = 0; i < x.ndim; i++) n *= (uint64_t)x.dims[i];
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < n; i++) sink ^= x.data[i];   /* every byte must be readable */
    (void)sink;
    ddpm_idx_free(&x);
    return 0;
}
