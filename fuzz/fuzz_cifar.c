/* fuzz_cifar.c — libFuzzer target: the CIFAR-10 batch reader (raw or gzip) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "ddpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ddpm_cifar c;
    if (ddpm_cifar_read_memory(data, size, &c) != DDPM_OK) {
        if (c.labels || c.images || !ddpm_last_error()[0]) abort();
        return 0;
    }
    if (c.count < 1 || !c.labels || !c.images) abort();
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < c.count; i++) {
        if (c.labels[i] > 9) abort();
        sink ^= c.images[i * 3072 + 3071];
    }
    (void)sink;
    ddpm_cifar_free(&c);
    return 0;
}
