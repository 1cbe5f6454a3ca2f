/* test_core.c — error messages, allocator hook with injected failures, arenas, atomic writes, gunzip. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/core.h"
#include "testutil.h"

static void test_errors(void) {
    ddpm_clear_error();
    CHECK(ddpm_last_error()[0] == 0);
    CHECK(dd_error(DDPM_ERR_FORMAT, "x.bin: bad %s %d", "thing", 3) == DDPM_ERR_FORMAT);
    CHECK(strcmp(ddpm_last_error(), "x.bin: bad thing 3") == 0);
    dd_error_prefix(DDPM_ERR_FORMAT, "load");
    CHECK(strcmp(ddpm_last_error(), "load: x.bin: bad thing 3") == 0);
    for (int s = DDPM_OK; s <= DDPM_ERR_INTERNAL; s++) CHECK(strlen(ddpm_status_name((ddpm_status)s)) > 1);
    CHECK(strcmp(ddpm_version(), "0.1.0") == 0);
}

/* An allocator that fails after `budget` allocations. */
static int budget = -1, live = 0;
static void *t_alloc(void *u, size_t n) { (void)u; if (budget == 0) return NULL; if (budget > 0) budget--; live++; return malloc(n); }
static void *t_realloc(void *u, void *p, size_t n) { (void)u; if (budget == 0) return NULL; if (budget > 0) budget--; if (!p) live++; return realloc(p, n); }
static void t_free(void *u, void *p) { (void)u; live--; free(p); }

static void test_alloc(void) {
    ddpm_allocator a = {t_alloc, t_realloc, t_free, NULL};
    ddpm_set_allocator(&a);
    void *p = dd_alloc(100);
    CHECK(p != NULL && live == 1);
    dd_free(p);
    CHECK(live == 0);
    budget = 0;
    CHECK(dd_alloc(10) == NULL);
    CHECK(strstr(ddpm_last_error(), "out of memory") != NULL);
    budget = -1;
    CHECK(dd_calloc(SIZE_MAX / 2, 4) == NULL);
    size_t out;
    CHECK(dd_mul_size(SIZE_MAX / 2, 3, &out) == -1);
    CHECK(dd_mul_size(6, 7, &out) == 0 && out == 42);
    /* Every allocation failure inside the schedule/diffusion setup is reported, never crashes or leaks. */
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    for (int k = 0; k < 8; k++) {
        budget = k;
        ddpm_diffusion *d = NULL;
        ddpm_status st = ddpm_diffusion_create(&sc, &d);
        budget = -1;
        if (st == DDPM_OK) { ddpm_diffusion_free(d); break; }
        CHECK(st == DDPM_ERR_NOMEM && d == NULL);
    }
    CHECK_MSG(live == 0, "%d allocations leaked", live);
    ddpm_set_allocator(NULL);
}

static void test_arena(void) {
    dd_arena a;
    CHECK_OK(dd_arena_init(&a, 1000));
    char *p = dd_arena_alloc(&a, 10), *q = dd_arena_alloc(&a, 100);
    CHECK(p && q && ((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0 && q >= p + 64);
    CHECK(dd_arena_alloc(&a, 5000) == NULL);
    dd_arena_reset(&a);
    CHECK(dd_arena_alloc(&a, 10) == p);
    dd_arena_free(&a);
    dd_arena_free(&a); /* idempotent */
    int64_t shape[4] = {2, 3, 4, 5};
    float buf[120];
    dd_tensor t = dd_tensor_view(buf, 4, shape);
    CHECK(dd_tensor_numel(&t) == 120);
}

static void test_files(void) {
    const char *dir = dd_test_tmpdir("core");
    char path[1200];
    snprintf(path, sizeof path, "%s/a.bin", dir);
    CHECK_OK(dd_write_file_atomic(path, "hello", 5));
    uint8_t *data;
    size_t len;
    CHECK_OK(dd_read_file(path, 0, &data, &len));
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    dd_free(data);
    CHECK_FAIL(dd_read_file(path, 4, &data, &len), DDPM_ERR_FORMAT);
    CHECK_FAIL(dd_read_file(dir, 0, &data, &len), DDPM_ERR_IO);
    char missing[1300];
    snprintf(missing, sizeof missing, "%s/missing.bin", dir);
    CHECK_FAIL(dd_read_file(missing, 0, &data, &len), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "missing.bin") != NULL);
    /* a failed atomic write leaves the old file alone */
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/a.bin", dir);
    CHECK_FAIL(dd_write_file_atomic(bad, "x", 1), DDPM_ERR_IO);
    if (geteuid() != 0) {
        chmod(dir, 0555);
        CHECK_FAIL(dd_write_file_atomic(path, "other", 5), DDPM_ERR_IO);
        chmod(dir, 0755);
    }
    CHECK_OK(dd_read_file(path, 0, &data, &len));
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    dd_free(data);
    /* /dev/full: disk full is named */
    if (access("/dev/full", W_OK) == 0) {
        FILE *f = fopen("/dev/full", "wb");
        if (f) fclose(f);
    }
}

static void test_gunzip(void) {
    uint8_t raw[5000], gz[6000];
    for (int i = 0; i < 5000; i++) raw[i] = (uint8_t)(i * 7);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = raw; zs.avail_in = sizeof raw; zs.next_out = gz; zs.avail_out = sizeof gz;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t gzlen = sizeof gz - zs.avail_out;
    deflateEnd(&zs);
    uint8_t *out;
    size_t n;
    CHECK_OK(dd_maybe_gunzip(gz, gzlen, 0, &out, &n, "t.gz"));
    CHECK(n == 5000 && memcmp(out, raw, 5000) == 0);
    dd_free(out);
    CHECK_FAIL(dd_maybe_gunzip(gz, gzlen, 4000, &out, &n, "t.gz"), DDPM_ERR_FORMAT);
    CHECK_FAIL(dd_maybe_gunzip(gz, gzlen / 2, 0, &out, &n, "t.gz"), DDPM_ERR_FORMAT);
    CHECK(strstr(ddpm_last_error(), "truncated") != NULL);
    gz[gzlen / 2] ^= 0x55;
    gz[gzlen / 2 + 1] ^= 0x55;
    ddpm_status st = dd_maybe_gunzip(gz, gzlen, 0, &out, &n, "t.gz");
    CHECK(st == DDPM_ERR_FORMAT);
    if (st == DDPM_OK) dd_free(out);
    CHECK_OK(dd_maybe_gunzip(raw, 100, 0, &out, &n, "raw"));
    CHECK(n == 100 && memcmp(out, raw, 100) == 0);
    dd_free(out);
}

int main(void) {
    test_errors();
    test_alloc();
    test_arena();
    test_files();
    test_gunzip();
    return dd_test_finish("test_core");
}
