/* status.c — status codes and the per-thread error message that names the problem. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

#define DD_MSG_LEN 1024
static _Thread_local char dd_msg[DD_MSG_LEN];

ddpm_status dd_error(ddpm_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dd_msg, sizeof dd_msg, fmt, ap);
    va_end(ap);
    return status;
}

ddpm_status dd_error_prefix(ddpm_status status, const char *prefix) {
    char tmp[DD_MSG_LEN];
    size_t plen = strlen(prefix);
    if (plen > DD_MSG_LEN / 2) plen = DD_MSG_LEN / 2;
    memcpy(tmp, prefix, plen);
    tmp[plen] = ':';
    tmp[plen + 1] = ' ';
    size_t rest = DD_MSG_LEN - plen - 3;
    size_t mlen = strlen(dd_msg);
    if (mlen > rest) mlen = rest;
    memcpy(tmp + plen + 2, dd_msg, mlen);
    tmp[plen + 2 + mlen] = 0;
    memcpy(dd_msg, tmp, sizeof dd_msg);
    return status;
}

const char *ddpm_last_error(void) { return dd_msg; }

void ddpm_clear_error(void) { dd_msg[0] = 0; }

const char *ddpm_status_name(ddpm_status s) {
    switch (s) {
    case DDPM_OK: return "ok";
    case DDPM_ERR_INVALID_ARG: return "invalid argument";
    case DDPM_ERR_NOMEM: return "out of memory";
    case DDPM_ERR_IO: return "i/o error";
    case DDPM_ERR_FORMAT: return "malformed file";
    case DDPM_ERR_UNSUPPORTED: return "unsupported";
    case DDPM_ERR_NUMERIC: return "numerical error";
    case DDPM_ERR_INTERRUPTED: return "interrupted";
    case DDPM_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

#ifndef DDPM_VERSION_STRING
#define DDPM_VERSION_STRING "0.1.0"
#endif
const char *ddpm_version(void) { return DDPM_VERSION_STRING; }
