/* compare_tensor.c — compares one tensor of a safetensors file with a reference tensor, element by element:
   |got - ref| <= atol + rtol |ref| + spread |ref - ref_f64|, where ref_f64 is the same computation run in
   float64 (the spread term lets a run whose float32 rounding alone moves the result be judged by how much
   it moves; --spread-global uses the largest |ref - ref_f64| of the tensor for every element). Prints the worst element and its tolerance; exit 0 when every element passes, 1 otherwise,
   2 on a usage or file error.

   usage: compare_tensor GOT.safetensors GOT_NAME REF.safetensors REF_NAME [--atol A] [--rtol R]
                         [--spread REF_F64_NAME K] [--spread-global]
          compare_tensor --digits FILE.safetensors NAME
            checks that [N, 1, H, W] images in [-1, 1] look like MNIST digits, each on its own: a flat background
            below mid-gray and a stroke well above it (check_digits), every value finite. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm.h"

static double *read_tensor(const char *path, const char *name, int64_t *n) {
    ddpm_safetensors *st = NULL;
    if (ddpm_st_open(path, &st) != DDPM_OK) {
        fprintf(stderr, "compare_tensor: %s\n", ddpm_last_error());
        return NULL;
    }
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    double *v = NULL;
    if (!t) {
        fprintf(stderr, "compare_tensor: %s has no tensor '%s'\n", path, name);
    } else if ((v = malloc(sizeof(double) * (size_t)(t->numel ? t->numel : 1))) != NULL) {
        *n = t->numel;
        if (ddpm_st_read_f64(st, name, v, t->numel) != DDPM_OK) {
            fprintf(stderr, "compare_tensor: %s\n", ddpm_last_error());
            free(v);
            v = NULL;
        }
    }
    ddpm_st_close(st);
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* MNIST digits are light strokes on a flat darker background: per image, the median (the background) is below
   mid-gray, the 95th percentile (the stroke) is at least 0.8 above it, and at least half of the pixels lie within
   0.3 of the median. Noise, a blank or a saturated image fail. */
static int check_digits(const char *path, const char *name) {
    int64_t n = 0;
    double *x = read_tensor(path, name, &n);
    ddpm_safetensors *st = NULL;
    if (!x || ddpm_st_open(path, &st) != DDPM_OK) return 2;
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    int64_t N = t->ndim == 4 ? t->shape[0] : 1, D = N ? n / N : 0;
    ddpm_st_close(st);
    double *s = malloc(sizeof(double) * (size_t)(D ? D : 1));
    if (!s) return 2;
    int bad = 0;
    for (int64_t i = 0; i < N; i++) {
        int finite = 1;
        for (int64_t j = 0; j < D; j++) finite &= isfinite(s[j] = x[i * D + j]) != 0;
        qsort(s, (size_t)D, sizeof(double), cmp_double);
        double med = s[D / 2], p95 = s[(D * 95) / 100];
        int64_t flat = 0;
        for (int64_t j = 0; j < D; j++) flat += fabs(s[j] - med) < 0.3;
        double ff = (double)flat / (double)D;
        int ok = finite && med < 0.0 && p95 - med >= 0.8 && ff >= 0.5;
        printf("image %lld: background %.2f, stroke %.2f, %.0f %% flat background%s\n", (long long)i, med, p95,
               100 * ff, ok ? "" : "  <- not digit-like");
        bad += !ok;
    }
    free(s);
    free(x);
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--digits") == 0) return check_digits(argv[2], argv[3]);
    if (argc < 5) {
        fprintf(stderr, "usage: compare_tensor GOT.safetensors GOT_NAME REF.safetensors REF_NAME [--atol A] "
                        "[--rtol R] [--spread REF_F64_NAME K]\n");
        return 2;
    }
    double atol = 1e-4, rtol = 0.0, spread = 0.0;
    const char *f64_name = NULL;
    int global = 0;
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "--atol") == 0 && i + 1 < argc) {
            atol = atof(argv[++i]);
        } else if (strcmp(argv[i], "--rtol") == 0 && i + 1 < argc) {
            rtol = atof(argv[++i]);
        } else if (strcmp(argv[i], "--spread") == 0 && i + 2 < argc) {
            f64_name = argv[++i];
            spread = atof(argv[++i]);
        } else if (strcmp(argv[i], "--spread-global") == 0) {
            global = 1;
        } else {
            fprintf(stderr, "compare_tensor: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    int64_t ng = 0, nr = 0, n64 = 0;
    double *got = read_tensor(argv[1], argv[2], &ng), *ref = read_tensor(argv[3], argv[4], &nr);
    double *r64 = f64_name ? read_tensor(argv[3], f64_name, &n64) : NULL;
    if (!got || !ref || (f64_name && !r64)) return 2;
    if (ng != nr || (r64 && n64 != nr)) {
        fprintf(stderr, "compare_tensor: %s has %lld elements, the reference %lld\n", argv[2], (long long)ng,
                (long long)nr);
        return 2;
    }
    if (r64 && global) {   /* every element gets the tensor's largest spread */
        double mx = 0.0;
        for (int64_t i = 0; i < nr; i++) mx = fmax(mx, fabs(ref[i] - r64[i]));
        for (int64_t i = 0; i < nr; i++) r64[i] = ref[i] - mx;
    }
    int64_t worst = 0, bad = 0;
    double worst_ratio = -1.0, max_abs = 0.0;
    for (int64_t i = 0; i < nr; i++) {
        double err = fabs(got[i] - ref[i]);
        double tol = atol + rtol * fabs(ref[i]) + (r64 ? spread * fabs(ref[i] - r64[i]) : 0.0);
        if (!(err <= tol)) bad++;
        double ratio = isfinite(err) ? err / tol : INFINITY;
        if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
        if (err > max_abs || !isfinite(err)) max_abs = err;
    }
    double wt = atol + rtol * fabs(ref[worst]) + (r64 ? spread * fabs(ref[worst] - r64[worst]) : 0.0);
    printf("%s vs %s: max |diff| %.3g over %lld elements; worst element %lld: got %.9g, ref %.9g, |diff| %.3g, "
           "tolerance %.3g; %lld over tolerance\n", argv[2], argv[4], max_abs, (long long)nr, (long long)worst,
           got[worst], ref[worst], fabs(got[worst] - ref[worst]), wt, (long long)bad);
    free(got);
    free(ref);
    free(r64);
    return bad ? 1 : 0;
}
