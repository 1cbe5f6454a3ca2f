/* alloc.c — the one allocation entry point of the library (allocator hook) and size arithmetic. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

static void *default_alloc(void *user, size_t size) { (void)user; return malloc(size); }
static void *default_realloc(void *user, void *p, size_t size) { (void)user; return realloc(p, size); }
static void default_free(void *user, void *p) { (void)user; free(p); }

static ddpm_allocator dd_allocator = {default_alloc, default_realloc, default_free, NULL};

void ddpm_set_allocator(const ddpm_allocator *a) {
    if (a && a->alloc && a->realloc && a->free) {
        dd_allocator = *a;
    } else {
        dd_allocator.alloc = default_alloc;
        dd_allocator.realloc = default_realloc;
        dd_allocator.free = default_free;
        dd_allocator.user = NULL;
    }
}

int dd_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

void *dd_alloc(size_t size) {
    void *p = dd_allocator.alloc(dd_allocator.user, size ? size : 1);
    if (!p) dd_error(DDPM_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *dd_calloc(size_t count, size_t size) {
    size_t total;
    if (dd_mul_size(count, size, &total) != 0) {
        dd_error(DDPM_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = dd_alloc(total);
    if (p) memset(p, 0, total ? total : 1);
    return p;
}

void *dd_realloc(void *ptr, size_t size) {
    void *p = dd_allocator.realloc(dd_allocator.user, ptr, size ? size : 1);
    if (!p) dd_error(DDPM_ERR_NOMEM, "out of memory reallocating %zu bytes", size);
    return p;
}

void dd_free(void *ptr) {
    if (ptr) dd_allocator.free(dd_allocator.user, ptr);
}

char *dd_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = dd_alloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void ddpm_free(void *p) { dd_free(p); }
