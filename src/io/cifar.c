/* cifar.c — CIFAR-10 binary batches (raw or gzip): records of 1 label byte + 3072 planar RGB bytes. */
#include <inttypes.h>
#include <string.h>

#include "core/core.h"

#define CIFAR_RECORD 3073
#define CIFAR_PIXELS 3072
#define CIFAR_MAX_BYTES ((size_t)1 << 30)
#define CIFAR_MEMORY_NAME "<memory>"

static ddpm_status cifar_parse(const uint8_t *buf, size_t len, const char *src, ddpm_cifar *out) {
    if (len == 0) return dd_error(DDPM_ERR_FORMAT, "%s: empty CIFAR-10 batch (0 bytes)", src);
    if (len % CIFAR_RECORD != 0)
        return dd_error(DDPM_ERR_FORMAT, "%s: %zu bytes is not a whole number of CIFAR-10 records of %d bytes "
                        "(%zu records and %zu bytes left over; truncated?)", src, len, CIFAR_RECORD,
                        len / CIFAR_RECORD, len % CIFAR_RECORD);
    size_t n = len / CIFAR_RECORD;
    for (size_t i = 0; i < n; i++)
        if (buf[i * CIFAR_RECORD] > 9)
            return dd_error(DDPM_ERR_FORMAT, "%s: record %zu has label %u (CIFAR-10 labels are 0..9)", src, i,
                            buf[i * CIFAR_RECORD]);
    out->labels = dd_alloc(n);
    out->images = dd_alloc(n * CIFAR_PIXELS);
    if (!out->labels || !out->images) {
        dd_free(out->labels);
        dd_free(out->images);
        out->labels = out->images = NULL;
        return dd_error_prefix(DDPM_ERR_NOMEM, src);
    }
    for (size_t i = 0; i < n; i++) {
        out->labels[i] = buf[i * CIFAR_RECORD];
        memcpy(out->images + i * CIFAR_PIXELS, buf + i * CIFAR_RECORD + 1, CIFAR_PIXELS);
    }
    out->count = (int64_t)n;
    return DDPM_OK;
}

static ddpm_status cifar_read(const uint8_t *in, size_t len, const char *src, ddpm_cifar *out) {
    const uint8_t *data = in;
    uint8_t *unz = NULL;
    size_t n = len;
    if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
        ddpm_status s = dd_maybe_gunzip(in, len, CIFAR_MAX_BYTES, &unz, &n, src);
        if (s != DDPM_OK) return s;
        data = unz;
    }
    ddpm_status s = cifar_parse(data, n, src, out);
    dd_free(unz);
    return s;
}

ddpm_status ddpm_cifar_read_memory(const void *buf, size_t len, ddpm_cifar *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_cifar_read_memory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_cifar_read_memory: buf is NULL");
    return cifar_read(buf, len, CIFAR_MEMORY_NAME, out);
}

ddpm_status ddpm_cifar_read(const char *path, ddpm_cifar *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_cifar_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_cifar_read: path is NULL");
    uint8_t *file = NULL;
    size_t len = 0;
    ddpm_status s = dd_read_file(path, CIFAR_MAX_BYTES, &file, &len);
    if (s != DDPM_OK) return s;
    s = cifar_read(file, len, path, out);
    dd_free(file);
    return s;
}

void ddpm_cifar_free(ddpm_cifar *c) {
    if (!c) return;
    dd_free(c->labels);
    dd_free(c->images);
    memset(c, 0, sizeof *c);
}
