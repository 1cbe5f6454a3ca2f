/* idx.c — IDX files (MNIST, Fashion-MNIST), raw or gzip: unsigned-byte data only, big-endian dimensions,
   the data length checked against them exactly. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define IDX_MAX_BYTES ((size_t)1 << 30)   /* bound on the file and on its decompressed size */
#define IDX_MEMORY_NAME "<memory>"

static const char *idx_type_name(uint8_t t) {
    switch (t) {
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return NULL;
    }
}

/* Parses a decompressed IDX buffer. On success takes ownership of buf (data moved to its front). */
static ddpm_status idx_parse(uint8_t *buf, size_t len, const char *src, ddpm_idx *out) {
    if (len < 4)
        return dd_error(DDPM_ERR_FORMAT, "%s: %zu bytes, too short for an IDX header", src, len);
    if (buf[0] != 0 || buf[1] != 0)
        return dd_error(DDPM_ERR_FORMAT, "%s: bad IDX magic %02x %02x %02x %02x (expected 00 00 08 0N)", src,
                        buf[0], buf[1], buf[2], buf[3]);
    if (buf[2] != 0x08) {
        const char *tn = idx_type_name(buf[2]);
        if (tn)
            return dd_error(DDPM_ERR_UNSUPPORTED, "%s: IDX data type 0x%02X (%s) is not supported (only 0x08, "
                            "unsigned byte)", src, buf[2], tn);
        return dd_error(DDPM_ERR_FORMAT, "%s: bad IDX magic: unknown data type 0x%02X", src, buf[2]);
    }
    int nd = buf[3];
    if (nd == 0) return dd_error(DDPM_ERR_FORMAT, "%s: IDX header declares 0 dimensions", src);
    if (nd > 4)
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: IDX file with %d dimensions (at most 4 are supported)", src,
                        nd);
    size_t hdr = 4 + 4 * (size_t)nd;
    if (len < hdr)
        return dd_error(DDPM_ERR_FORMAT, "%s: truncated IDX header (%zu bytes, %zu needed for %d dimensions)",
                        src, len, hdr, nd);
    uint64_t total = 1;
    int zero = 0;
    char dims[64];
    size_t dl = (size_t)snprintf(dims, sizeof dims, "[");
    for (int i = 0; i < nd; i++) {
        const uint8_t *p = buf + 4 + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (d > INT32_MAX)
            return dd_error(DDPM_ERR_FORMAT, "%s: IDX dimension %d is %" PRIu32 " (more than 2^31 - 1)", src, i,
                            d);
        out->dims[i] = d;
        dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%s%" PRIu32, i ? ", " : "", d);
        if (d == 0) zero = 1;
        total *= d;                                      /* < 2^31 * (2^30 + 1): no overflow */
        if (total > IDX_MAX_BYTES) total = IDX_MAX_BYTES + 1;
    }
    snprintf(dims + dl, sizeof dims - dl, "]");
    if (zero) total = 0;
    size_t have = len - hdr;
    if (total != have) {
        memset(out->dims, 0, sizeof out->dims);
        if (total > IDX_MAX_BYTES)
            return dd_error(DDPM_ERR_FORMAT, "%s: IDX dimensions %s: expected more than %zu bytes of data, found %zu",
                            src, dims, IDX_MAX_BYTES, have);
        return dd_error(DDPM_ERR_FORMAT, "%s: IDX data %s: dimensions %s: expected %" PRIu64 " bytes, found %zu",
                        src, total > have ? "truncated" : "has trailing bytes", dims, total, have);
    }
    out->ndim = nd;
    if (have) memmove(buf, buf + hdr, have);
    out->data = buf;
    return DDPM_OK;
}

static ddpm_status idx_read(const uint8_t *in, size_t len, const char *src, ddpm_idx *out) {
    uint8_t *buf = NULL;
    size_t n = 0;
    ddpm_status s = dd_maybe_gunzip(in, len, IDX_MAX_BYTES, &buf, &n, src);
    if (s != DDPM_OK) return s;
    s = idx_parse(buf, n, src, out);
    if (s != DDPM_OK) {
        dd_free(buf);
        memset(out, 0, sizeof *out);
    }
    return s;
}

ddpm_status ddpm_idx_read_memory(const void *buf, size_t len, ddpm_idx *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_idx_read_memory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_idx_read_memory: buf is NULL");
    return idx_read(buf, len, IDX_MEMORY_NAME, out);
}

ddpm_status ddpm_idx_read(const char *path, ddpm_idx *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_idx_read: path is NULL");
    uint8_t *file = NULL;
    size_t len = 0;
    ddpm_status s = dd_read_file(path, IDX_MAX_BYTES, &file, &len);
    if (s != DDPM_OK) return s;
    s = idx_read(file, len, path, out);
    dd_free(file);
    return s;
}

void ddpm_idx_free(ddpm_idx *idx) {
    if (!idx) return;
    dd_free(idx->data);
    memset(idx, 0, sizeof *idx);
}
