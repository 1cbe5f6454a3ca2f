/* arena.c — bump allocation from one block, for memory planned once and released at once. */
#include "core.h"

#define DD_ARENA_ALIGN 64

ddpm_status dd_arena_init(dd_arena *a, size_t size) {
    a->base = NULL;
    a->size = a->used = 0;
    if (size > SIZE_MAX - DD_ARENA_ALIGN) return dd_error(DDPM_ERR_NOMEM, "arena of %zu bytes is too large", size);
    a->base = dd_alloc(size + DD_ARENA_ALIGN);
    if (!a->base) return DDPM_ERR_NOMEM;
    a->size = size + DD_ARENA_ALIGN;
    /* start the bump pointer at the first aligned address */
    a->used = (size_t)((DD_ARENA_ALIGN - ((uintptr_t)a->base % DD_ARENA_ALIGN)) % DD_ARENA_ALIGN);
    return DDPM_OK;
}

void *dd_arena_alloc(dd_arena *a, size_t size) {
    size_t rounded = (size + DD_ARENA_ALIGN - 1) / DD_ARENA_ALIGN * DD_ARENA_ALIGN;
    if (rounded < size || a->used > a->size || rounded > a->size - a->used) {
        dd_error(DDPM_ERR_NOMEM, "arena exhausted: %zu bytes requested, %zu of %zu used", size, a->used, a->size);
        return NULL;
    }
    void *p = a->base + a->used;
    a->used += rounded;
    return p;
}

void dd_arena_reset(dd_arena *a) {
    a->used = a->base ? (size_t)((DD_ARENA_ALIGN - ((uintptr_t)a->base % DD_ARENA_ALIGN)) % DD_ARENA_ALIGN) : 0;
}

void dd_arena_free(dd_arena *a) {
    dd_free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}
