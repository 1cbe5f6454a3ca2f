/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int dd_test_failures = 0;

int dd_test_finish(const char *name) {
    if (dd_test_failures) {
        fprintf(stderr, "%s: FAILED (%d checks)\n", name, dd_test_failures);
        return 1;
    }
    printf("%s: OK\n", name);
    return 0;
}

int dd_test_skip(const char *name, const char *why) {
    printf("%s: SKIPPED: %s\n", name, why);
    return 77;
}

static int check_close_impl(const char *what, const double *got, const float *gotf, const double *want,
                            const float *wantf, size_t n, double tol, double floor_scale) {
    double scale = floor_scale, maxerr = 0;
    size_t first_bad = (size_t)-1, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double w = want ? want[i] : (double)wantf[i];
        if (fabs(w) > scale) scale = fabs(w);
    }
    for (size_t i = 0; i < n; i++) {
        double g = got ? got[i] : (double)gotf[i];
        double w = want ? want[i] : (double)wantf[i];
        double e = fabs(g - w);
        if (!(e <= maxerr)) { maxerr = e; worst = i; }   /* NaN counts as worst */
        if (!(e <= tol * scale) && first_bad == (size_t)-1) first_bad = i;
    }
    if (first_bad != (size_t)-1) {
        double g = got ? got[first_bad] : (double)gotf[first_bad];
        double w = want ? want[first_bad] : (double)wantf[first_bad];
        fprintf(stderr, "MISMATCH %s: n=%zu max abs err %.3e (rel %.3e > tol %.1e) at [%zu]; first bad [%zu]: got %.17g want %.17g\n",
                what, n, maxerr, maxerr / scale, tol, worst, first_bad, g, w);
        dd_test_failures++;
        return 0;
    }
    return 1;
}

int dd_check_close(const char *what, const double *got, const double *want, size_t n, double tol,
                   double floor_scale) {
    return check_close_impl(what, got, NULL, want, NULL, n, tol, floor_scale);
}

int dd_check_close_f32(const char *what, const float *got, const float *want, size_t n, double tol,
                       double floor_scale) {
    return check_close_impl(what, NULL, got, NULL, want, n, tol, floor_scale);
}

cJSON *dd_json_load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno)); exit(1); }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
    buf[len] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j) { fprintf(stderr, "%s: not valid JSON\n", path); exit(1); }
    return j;
}

cJSON *dd_json_path(cJSON *root, const char *path) {
    char key[256];
    const char *p = path;
    cJSON *cur = root;
    while (cur && *p) {
        if (*p == '.') { p++; continue; }
        if (*p == '[') {
            int idx = atoi(p + 1);
            cur = cJSON_GetArrayItem(cur, idx);
            p = strchr(p, ']');
            if (!p) return NULL;
            p++;
            continue;
        }
        size_t k = 0;
        while (*p && *p != '.' && *p != '[' && k < sizeof key - 1) key[k++] = *p++;
        key[k] = 0;
        cur = cJSON_GetObjectItemCaseSensitive(cur, key);
    }
    return cur;
}

double *dd_json_numbers(cJSON *list, size_t *n) {
    if (!cJSON_IsArray(list)) return NULL;
    int m = cJSON_GetArraySize(list);
    double *out = malloc(sizeof(double) * (size_t)(m ? m : 1));
    int i = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, list) out[i++] = it->valuedouble;
    *n = (size_t)m;
    return out;
}

double *dd_json_array(cJSON *arr, size_t *n) {
    if (!arr) return NULL;
    cJSON *data = cJSON_GetObjectItemCaseSensitive(arr, "data");
    if (!data) return dd_json_numbers(arr, n);
    return dd_json_numbers(data, n);
}

const char *dd_test_tmpdir(const char *name) {
    static char buf[8][1024];
    static int slot = 0;
    char *p = buf[slot++ % 8];
    snprintf(p, 1024, "%s/tmp_%s_%ld", ".", name, (long)getpid());
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) { fprintf(stderr, "cannot clear %s\n", p); exit(1); }
    if (mkdir(p, 0755) != 0) { fprintf(stderr, "cannot create %s: %s\n", p, strerror(errno)); exit(1); }
    return p;
}

const char *dd_test_data(const char *rel) {
    static char buf[8][1024];
    static int slot = 0;
    char *p = buf[slot++ % 8];
    snprintf(p, 1024, "%s/%s", DD_TEST_DATA, rel);
    return p;
}

void dd_write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

ddpm_diffusion *dd_test_diffusion(const char *name, int T) {
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    sc.name = name;
    sc.T = T;
    ddpm_diffusion *d = NULL;
    if (ddpm_diffusion_create(&sc, &d) != DDPM_OK) {
        fprintf(stderr, "cannot make the %s schedule with T = %d: %s\n", name, T, ddpm_last_error());
        exit(1);
    }
    return d;
}

ddpm_model *dd_test_model(const char *spec, uint64_t seed, ddpm_engine engine, int training, int max_batch) {
    ddpm_model *m = NULL;
    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    pc.max_batch = max_batch;
    pc.training = training;
    pc.engine = engine;
    if (ddpm_model_load(spec, seed, &m) != DDPM_OK || (max_batch > 0 && ddpm_model_prepare(m, &pc) != DDPM_OK)) {
        fprintf(stderr, "cannot load and prepare '%s': %s\n", spec, ddpm_last_error());
        exit(1);
    }
    return m;
}

int64_t dd_test_model_d(const ddpm_model *m) {
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    return (int64_t)info.in_channels * info.sample_size * info.sample_size;
}

uint8_t *dd_test_gzip(const uint8_t *buf, size_t len, size_t *out_len) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    size_t cap = deflateBound(&zs, (uLong)len) + 32;
    uint8_t *out = malloc(cap);
    if (!out) exit(1);
    zs.next_in = (Bytef *)(uintptr_t)buf;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) exit(1);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

void dd_test_remove_dir(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dd_test_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}
