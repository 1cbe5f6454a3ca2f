/* fuzz_safetensors.c — libFuzzer target: the safetensors reader on arbitrary bytes, then every accessor. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ddpm_safetensors *st = NULL;
    if (ddpm_st_open_memory(data, size, &st) != DDPM_OK) {
        if (st || !ddpm_last_error()[0]) abort();
        return 0;
    }
    uint64_t prev_end = 0;
    for (int i = 0; i < ddpm_st_count(st); i++) {
        const ddpm_st_tensor *t = ddpm_st_at(st, i);
        if (!t || t->offset < prev_end || t->offset + t->nbytes > size) abort();
        if (t->nbytes != (uint64_t)t->numel * ddpm_dtype_size(t->dtype)) abort();
        prev_end = t->offset + t->nbytes;
        if (ddpm_st_find(st, t->name) != t) abort();
        const uint8_t *p = ddpm_st_data(st, t);
        volatile uint8_t sink = 0;
        for (uint64_t j = 0; j < t->nbytes; j++) sink ^= p[j];
        (void)sink;
        size_t n = t->numel ? (size_t)t->numel : 1;
        double *d = malloc(n * sizeof(double));
        float *f = malloc(n * sizeof(float));
        int64_t *q = malloc(n * sizeof(int64_t));
        if (d && f && q) {
            int is_float = ddpm_st_read_f64(st, t->name, d, t->numel) == DDPM_OK;
            if (is_float != (ddpm_st_read_f32(st, t->name, f, t->numel) == DDPM_OK)) abort();
            if (is_float == (ddpm_st_read_i64(st, t->name, q, t->numel) == DDPM_OK)) abort();
            if (ddpm_st_read_f64(st, t->name, d, t->numel + 1) == DDPM_OK) abort();
        }
        free(d);
        free(f);
        free(q);
    }
    for (int i = 0; i < ddpm_st_metadata_count(st); i++) {
        const char *k = NULL, *v = NULL;
        ddpm_st_metadata_at(st, i, &k, &v);
        if (!k || !v || !ddpm_st_metadata_get(st, k)) abort();
    }
    ddpm_st_close(st);
    return 0;
}
