/* test_core.c — error messages, allocator hook with injected failures, arenas, atomic writes, the output path
   check, gunzip, the processor's name, the thread policy. */
#include <fcntl.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
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
    /* /dev/full: written through (it is a device) and the full disk is named */
    if (access("/dev/full", W_OK) == 0) {
        CHECK_FAIL(ddpm_write_file("/dev/full", "x", 1), DDPM_ERR_IO);
        CHECK(strstr(ddpm_last_error(), "disk full") != NULL);
        struct stat sb;
        CHECK(stat("/dev/full", &sb) == 0 && S_ISCHR(sb.st_mode));
    }
}

static int read_is(const char *path, const char *want) {
    uint8_t *data = NULL;
    size_t len = 0;
    int ok = dd_read_file(path, 0, &data, &len) == DDPM_OK && len == strlen(want) && memcmp(data, want, len) == 0;
    dd_free(data);
    return ok;
}

/* What an output path may be: only a regular file (or nothing) is replaced; links, devices and FIFOs keep
   what they are. */
static void test_write_targets(void) {
    const char *dir = dd_test_tmpdir("core_targets");
    char file[1200], link[1200], dangling[1200], fifo[1200], sub[1200], lockdir[1200];
    snprintf(file, sizeof file, "%s/file.txt", dir);
    snprintf(link, sizeof link, "%s/link.txt", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling.txt", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(lockdir, sizeof lockdir, "%s/run/a/b", dir);
    struct stat sb;
    /* a new file, then a replaced one that keeps its permissions */
    CHECK_OK(ddpm_write_file(file, "one", 3));
    CHECK(chmod(file, 0600) == 0);
    CHECK_OK(ddpm_write_file(file, "two", 3));
    CHECK(read_is(file, "two"));
    CHECK(stat(file, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    /* a symbolic link stays; its file is replaced */
    CHECK(symlink("file.txt", link) == 0);
    CHECK_OK(ddpm_write_file(link, "three", 5));
    CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(read_is(file, "three"));
    /* a dangling link and a folder are refused and kept */
    CHECK(symlink("no/such/file", dangling) == 0);
    CHECK_FAIL(ddpm_write_file(dangling, "x", 1), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "symbolic link") != NULL);
    CHECK(lstat(dangling, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(mkdir(sub, 0755) == 0);
    CHECK_FAIL(ddpm_write_file(sub, "x", 1), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "is a directory") != NULL);
    CHECK(stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode));
    /* a character device is written through */
    if (access("/dev/null", W_OK) == 0) {
        CHECK_OK(ddpm_write_file("/dev/null", "x", 1));
        CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
    }
    /* a FIFO is written through: the reader gets the bytes */
    if (mkfifo(fifo, 0600) == 0) {
        int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
        CHECK(rfd >= 0);
        CHECK_OK(ddpm_write_file(fifo, "piped", 5));
        char got[8] = {0};
        CHECK(read(rfd, got, sizeof got) == 5 && memcmp(got, "piped", 5) == 0);
        close(rfd);
        CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    }
    CHECK_FAIL(ddpm_write_file("", "x", 1), DDPM_ERR_INVALID_ARG);
    /* mkdir -p, and a file in the way is named */
    CHECK_OK(ddpm_make_dirs(lockdir));
    CHECK(stat(lockdir, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_OK(ddpm_make_dirs(lockdir));
    char inway[1300];
    snprintf(inway, sizeof inway, "%s/file.txt/x", dir);
    CHECK_FAIL(ddpm_make_dirs(inway), DDPM_ERR_IO);
    /* one holder of a folder's lock: a second taker (another open file, as another process is) is refused */
    ddpm_dir_lock *l1 = NULL, *l2 = NULL;
    CHECK_OK(ddpm_dir_lock_take(lockdir, &l1));
    CHECK_FAIL(ddpm_dir_lock_take(lockdir, &l2), DDPM_ERR_IO);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CHECK(strstr(ddpm_last_error(), pid) != NULL);
    CHECK(l2 == NULL);
    ddpm_dir_lock_release(l1);
    CHECK_OK(ddpm_dir_lock_take(lockdir, &l2));
    ddpm_dir_lock_release(l2);
    ddpm_dir_lock_release(NULL);
}

/* The enums' words both ways, and "did you mean". */
static void test_names(void) {
    int v = -1;
    CHECK_OK(ddpm_enum_from_name(DDPM_ENUM_SAMPLER, "dpm++", &v));
    CHECK(v == DDPM_SAMPLER_DPMPP2M);
    CHECK(strcmp(ddpm_enum_name(DDPM_ENUM_SAMPLER, DDPM_SAMPLER_DPMPP2M), "dpmpp2m") == 0);
    CHECK_OK(ddpm_enum_from_name(DDPM_ENUM_PREDICTION, "v_prediction", &v));
    CHECK(v == DDPM_PRED_V);
    CHECK(strcmp(ddpm_enum_name(DDPM_ENUM_PREDICTION, DDPM_PRED_EPS), "eps") == 0);
    CHECK_OK(ddpm_enum_from_name(DDPM_ENUM_LR_SCHEDULE, "cosine", &v));
    CHECK(v == DDPM_LR_COSINE);
    CHECK_OK(ddpm_enum_from_name(DDPM_ENUM_ENGINE, "reference", &v));
    CHECK(v == DDPM_ENGINE_REFERENCE);
    CHECK_OK(ddpm_enum_from_name(DDPM_ENUM_SPACING, "trailing", &v));
    CHECK(v == DDPM_SPACING_TRAILING);
    CHECK_FAIL(ddpm_enum_from_name(DDPM_ENUM_SAMPLER, "ddin", &v), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "did you mean 'ddim'") != NULL);
    CHECK_FAIL(ddpm_enum_from_name(DDPM_ENUM_SPACING, "zzzzzz", &v), DDPM_ERR_INVALID_ARG);
    CHECK(strstr(ddpm_last_error(), "choose leading, trailing or linspace") != NULL);
    CHECK(ddpm_enum_name(DDPM_ENUM_ENGINE, 99) == NULL);
    static const char *const words[] = {"mnist", "cifar10", "tiny"};
    CHECK(ddpm_closest("mnsit", words, 3) == words[0]);
    CHECK(ddpm_closest("cif", words, 3) == words[1]);   /* a prefix */
    CHECK(ddpm_closest("imagenet", words, 3) == NULL);
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

/* ddpm_cpu_name: a name or "unknown", always terminated, cut to the buffer. */
static void test_cpu_name(void) {
    char buf[256], small[4];
    CHECK(ddpm_cpu_name(buf, sizeof buf) == buf && buf[0] && !strchr(buf, '\n'));
    CHECK(ddpm_cpu_name(small, sizeof small) == small && strlen(small) <= 3 && strncmp(small, buf, 3) == 0);
    CHECK(ddpm_cpu_name(NULL, 0)[0] == 0);
}

/* ddpm_output_file_check: a new name in an existing folder or a regular file; not a folder, not a missing folder. */
static void test_output_check(void) {
    const char *dir = dd_test_tmpdir("core_output_check");
    char file[1200], missing[1200];
    snprintf(file, sizeof file, "%s/file.bin", dir);
    snprintf(missing, sizeof missing, "%s/no/file.bin", dir);
    CHECK_OK(ddpm_output_file_check(file));
    CHECK_OK(ddpm_write_file(file, "x", 1));
    CHECK_OK(ddpm_output_file_check(file));
    CHECK_OK(ddpm_output_file_check("relative-name.bin"));
    CHECK_FAIL(ddpm_output_file_check(dir), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "exists and is not a regular file") != NULL);
    CHECK_FAIL(ddpm_output_file_check(missing), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "does not exist") != NULL);
    CHECK_FAIL(ddpm_output_file_check(""), DDPM_ERR_INVALID_ARG);
    dd_test_remove_dir(dir);
}

/* The thread policy: the rule, fixed and auto modes, and a busy process that takes a core away. */
static void test_threads(void) {
    CHECK(dd_threads_target(2, 0.0, 2) == 2);
    CHECK(dd_threads_target(2, 0.2, 2) == 2);    /* light background load keeps every core */
    CHECK(dd_threads_target(2, 0.67, 2) == 1);   /* a busy loop sharing the cores with two of ours */
    CHECK(dd_threads_target(2, 1.0, 2) == 1);
    CHECK(dd_threads_target(2, 5.0, 2) == 1);    /* never below one */
    CHECK(dd_threads_target(8, 3.0, 8) == 5);
    CHECK(dd_threads_target(16, 0.0, 4) == 4);   /* never above max */
    CHECK(dd_threads_target(2, 0.0 / 0.0, 2) == 2);
    CHECK(dd_threads_target(2, -1.0, 2) == 2);

    const char *env = getenv("OMP_NUM_THREADS");
    char saved[64] = "";
    if (env) snprintf(saved, sizeof saved, "%s", env);
    unsetenv("OMP_NUM_THREADS");
    ddpm_set_threads(3);
    CHECK(ddpm_get_threads() == 3);
    CHECK(!ddpm_threads_auto());
    CHECK(omp_get_max_threads() == 3);
    setenv("OMP_NUM_THREADS", "1", 1);
    ddpm_set_threads(0);                           /* the default: the environment's count */
    CHECK(!ddpm_threads_auto());
    CHECK(ddpm_get_threads() == 1);
    unsetenv("OMP_NUM_THREADS");
    ddpm_set_threads(-1);                          /* auto */
    CHECK(ddpm_threads_auto());
    const int cores = ddpm_num_cores();
    CHECK(ddpm_get_threads() >= 1 && ddpm_get_threads() <= cores);

    if (cores < 2) {
        printf("SKIPPED: test_threads busy-process check (1 core)\n");
    } else {
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            volatile unsigned long spin = 0;
            for (;;) spin++;
        }
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
        dd_threads_forget();
        dd_threads_update_now();                   /* the first measure: tasks running now */
        int first = ddpm_get_threads();
        CHECK(first < cores);
        CHECK(omp_get_max_threads() == first);
        pause.tv_nsec = 400 * 1000 * 1000;
        nanosleep(&pause, NULL);
        dd_threads_update_now();                   /* over an interval: CPU time of the others */
        int later = ddpm_get_threads();
        CHECK(later < cores);
        if (first >= cores || later >= cores)
            fprintf(stderr, "with a busy process: %d then %d threads of %d cores\n", first, later, cores);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    if (saved[0]) setenv("OMP_NUM_THREADS", saved, 1);
    ddpm_set_threads(0);
}

int main(void) {
    test_errors();
    test_alloc();
    test_arena();
    test_files();
    test_write_targets();
    test_output_check();
    test_names();
    test_gunzip();
    test_cpu_name();
    test_threads();
    return dd_test_finish("test_core");
}
