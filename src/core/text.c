/* text.c — the growing text buffer of the JSON the library writes (config files, safetensors headers). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void reserve(dd_text *sb, size_t extra) {
    if (sb->failed) return;
    if (sb->len + extra + 1 <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1) cap *= 2;
    char *p = dd_realloc(sb->buf, cap);
    if (!p) {
        sb->failed = 1;
        return;
    }
    sb->buf = p;
    sb->cap = cap;
}

void dd_text_printf(dd_text *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = 1;
        return;
    }
    reserve(sb, (size_t)n);
    if (sb->failed) return;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void dd_text_put(dd_text *sb, const char *s, size_t n) {
    reserve(sb, n);
    if (sb->failed) return;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = 0;
}

void dd_text_string(dd_text *sb, const char *s) {
    dd_text_put(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t n = 0;
        while (p[n] && p[n] != '"' && p[n] != '\\' && p[n] >= 0x20) n++;
        dd_text_put(sb, (const char *)p, n);
        p += n;
        if (!*p) break;
        if (*p < 0x20) dd_text_printf(sb, "\\u%04x", *p);
        else dd_text_printf(sb, "\\%c", *p);
    }
    dd_text_put(sb, "\"", 1);
}

/* Python's float repr: the shortest digits that read back to v, fixed notation for decimal exponents
   -4..15 (always with a '.'), otherwise d.ddde-XX. */
void dd_text_number(dd_text *sb, double v) {
    if (!isfinite(v)) {
        dd_text_printf(sb, "null");
        return;
    }
    if (v == 0.0) {
        dd_text_printf(sb, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char buf[64];
    int P = 1;
    for (; P < 17; P++) {
        snprintf(buf, sizeof buf, "%.*e", P - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    snprintf(buf, sizeof buf, "%.*e", P - 1, v);
    const char *e = strchr(buf, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    if (exp10 >= -4 && exp10 < 16) {
        int decimals = P - 1 - exp10;
        if (decimals < 1) decimals = 1;
        dd_text_printf(sb, "%.*f", decimals, v);
    } else {
        dd_text_printf(sb, "%s", buf);
    }
}

ddpm_status dd_text_finish(dd_text *sb, char **out) {
    reserve(sb, 0);
    if (sb->failed) {
        dd_free(sb->buf);
        sb->buf = NULL;
        sb->len = sb->cap = 0;
        *out = NULL;
        return DDPM_ERR_NOMEM;
    }
    sb->buf[sb->len] = 0;
    *out = sb->buf;
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    return DDPM_OK;
}
