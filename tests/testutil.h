/* testutil.h — the small harness every test uses: checks that fail loudly, array comparison with the
   max abs/rel error and the first mismatching index, JSON fixture access, temporary directories. */
#ifndef DD_TESTUTIL_H
#define DD_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "ddpm.h"

extern int dd_test_failures;

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); dd_test_failures++; } } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); dd_test_failures++; } } while (0)
/* A call that must succeed. */
#define CHECK_OK(expr) do { ddpm_status dd_st_ = (expr); if (dd_st_ != DDPM_OK) { fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, ddpm_status_name(dd_st_), ddpm_last_error()); dd_test_failures++; } } while (0)
/* A call that must fail with `want` and leave a non-empty message. */
#define CHECK_FAIL(expr, want) do { ddpm_status dd_st_ = (expr); if (dd_st_ != (want) || ddpm_last_error()[0] == 0) { fprintf(stderr, "%s:%d: %s -> %s (want %s), message '%s'\n", __FILE__, __LINE__, #expr, ddpm_status_name(dd_st_), ddpm_status_name(want), ddpm_last_error()); dd_test_failures++; } } while (0)

/* Exit status of a test: prints "<name>: OK" or the number of failures. */
int dd_test_finish(const char *name);
/* Skip (CTest SKIP_RETURN_CODE 77) with a message. */
int dd_test_skip(const char *name, const char *why);

/* Compare got[n] to want[n]: fails when max|got - want| > tol * max(max|want|, floor_scale).
   Prints the max abs error, the relative error and the first index over tolerance. Returns 1 if ok. */
int dd_check_close(const char *what, const double *got, const double *want, size_t n, double tol,
                   double floor_scale);
int dd_check_close_f32(const char *what, const float *got, const float *want, size_t n, double tol,
                       double floor_scale);

/* JSON fixtures. dd_json_load parses a file (exits the test on failure). dd_json_path walks
   "a.b.c" (object keys) and "[i]" (array index), e.g. "loops.ddim50_eta0.runs[0].final". */
cJSON *dd_json_load(const char *path);
cJSON *dd_json_path(cJSON *root, const char *path);
/* An oracle array {shape, dtype, data}: newly allocated doubles (free()), *n elements. NULL if absent. */
double *dd_json_array(cJSON *arr, size_t *n);
/* A plain JSON list of numbers. */
double *dd_json_numbers(cJSON *list, size_t *n);

/* A diffusion with schedule `name` and T steps (defaults otherwise); exits the test if it cannot be made. */
ddpm_diffusion *dd_test_diffusion(const char *name, int T);

/* A model loaded from spec (preset, config.json or folder) and prepared (max_batch 0: loaded only); exits the
   test on failure. */
ddpm_model *dd_test_model(const char *spec, uint64_t seed, ddpm_engine engine, int training, int max_batch);
/* Numbers per image of a model: in_channels x sample_size^2. */
int64_t dd_test_model_d(const ddpm_model *m);
/* gzip of buf (malloc'd; *out_len bytes). */
uint8_t *dd_test_gzip(const uint8_t *buf, size_t len, size_t *out_len);

/* A fresh empty directory under the build tree's temp area; returns its path (static storage per call). */
const char *dd_test_tmpdir(const char *name);
/* Removes a test folder once every check passed (kept for inspection otherwise). */
void dd_test_remove_dir(const char *dir);
/* Path of a file in tests/data. */
const char *dd_test_data(const char *rel);
/* Write bytes to a file (for malformed-file tests). */
void dd_write_bytes(const char *path, const void *data, size_t len);

#endif
