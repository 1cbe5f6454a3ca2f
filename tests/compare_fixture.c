/* compare_fixture.c — checks the file `ddpm forward --loss-target` wrote against a UNet2DModel fixture folder
   (config.json, outputs.safetensors, grads.safetensors, info.json): sample, loss, x_grad and every parameter
   gradient, printing the worst error per tensor group and every tensor over its tolerance.

   usage: compare_fixture FIXTURE_DIR OUT.safetensors [--sample-tol T|auto] [--no-grads]
     sample:  max|got - sample_f32| <= T (default 1e-5; auto = max(1e-5, 10 * info.json
              max_abs_diff_sample_f32_vs_f64))
     loss:    |got - loss_f32| <= 5e-5 * max(1, |loss_f32|)
     x_grad and each parameter gradient: max|got - ref| / max|ref| <= 1e-4
     info.json zero_grad_tensors (mathematically zero): max|got - ref| <= 1e-6 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include "ddpm.h"

#define GRAD_RTOL 1e-4
#define ZERO_ATOL 1e-6
#define LOSS_RTOL 5e-5
#define MAX_GROUPS 64

static int failures = 0;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "compare_fixture: out of memory\n");
        exit(2);
    }
    return p;
}

static ddpm_safetensors *open_st(const char *path) {
    ddpm_safetensors *st = NULL;
    if (ddpm_st_open(path, &st) != DDPM_OK) {
        fprintf(stderr, "compare_fixture: %s\n", ddpm_last_error());
        exit(2);
    }
    return st;
}

/* Tensor `name` of st as floats, with its shape checked against `like` when like is not NULL. */
static float *read_tensor(const ddpm_safetensors *st, const char *file, const char *name, const ddpm_st_tensor *like,
                          int64_t *n) {
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    if (!t) {
        fprintf(stderr, "FAIL: %s has no tensor '%s'\n", file, name);
        failures++;
        return NULL;
    }
    if (like) {
        int same = t->ndim == like->ndim;
        for (int k = 0; same && k < t->ndim; k++) same = t->shape[k] == like->shape[k];
        if (!same) {
            fprintf(stderr, "FAIL: %s: '%s' has %d dims / %lld elements, the reference %d / %lld\n", file, name,
                    t->ndim, (long long)t->numel, like->ndim, (long long)like->numel);
            failures++;
            return NULL;
        }
    }
    float *v = xmalloc(sizeof(float) * (size_t)t->numel);
    if (ddpm_st_read_f32(st, name, v, t->numel) != DDPM_OK) {
        fprintf(stderr, "FAIL: %s: %s\n", file, ddpm_last_error());
        failures++;
        free(v);
        return NULL;
    }
    *n = t->numel;
    return v;
}

/* max|a - b| and max|b| */
static void diff(const float *a, const float *b, int64_t n, double *max_abs, double *ref_max) {
    double m = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;   /* NaN propagates */
        if (fabs((double)b[i]) > r) r = fabs((double)b[i]);
    }
    *max_abs = m;
    *ref_max = r;
}

/* The group of a parameter: its first component, with the block index for down/up blocks. */
static void group_of(const char *name, char *g, size_t size) {
    const char *dot = strchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) : strlen(name);
    if (dot && (strncmp(name, "down_blocks", len) == 0 || strncmp(name, "up_blocks", len) == 0)) {
        const char *dot2 = strchr(dot + 1, '.');
        len = dot2 ? (size_t)(dot2 - name) : strlen(name);
    }
    if (len >= size) len = size - 1;
    memcpy(g, name, len);
    g[len] = 0;
}

typedef struct {
    char name[64];
    int count;
    double worst_rel, worst_zero_abs;
    char worst_tensor[160];
} group_stat;

static int in_list(const cJSON *list, const char *name) {
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0) return 1;
    return 0;
}

static cJSON *load_json(const char *path) {
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "compare_fixture: cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = xmalloc((size_t)len + 1);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "compare_fixture: cannot read %s\n", path);
        exit(2);
    }
    buf[len] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse((const char *)buf);
    free(buf);
    if (!j) {
        fprintf(stderr, "compare_fixture: %s is not valid JSON\n", path);
        exit(2);
    }
    return j;
}

static void compare_grads(const ddpm_safetensors *ref, const ddpm_safetensors *got, const char *got_path,
                          const cJSON *zero) {
    group_stat groups[MAX_GROUPS];
    int ngroups = 0, ntensors = 0, nzero = 0;
    memset(groups, 0, sizeof groups);
    for (int i = 0; i < ddpm_st_count(ref); i++) {
        const ddpm_st_tensor *rt = ddpm_st_at(ref, i);
        int64_t n = 0, n2 = 0;
        float *r = read_tensor(ref, "grads.safetensors", rt->name, NULL, &n);
        float *g = r ? read_tensor(got, got_path, rt->name, rt, &n2) : NULL;
        if (!r || !g) {
            free(r);
            free(g);
            continue;
        }
        double dmax, rmax;
        diff(g, r, n, &dmax, &rmax);
        char gname[64];
        group_of(rt->name, gname, sizeof gname);
        int k = 0;
        while (k < ngroups && strcmp(groups[k].name, gname) != 0) k++;
        if (k == ngroups && ngroups < MAX_GROUPS) snprintf(groups[ngroups++].name, sizeof groups[0].name, "%s", gname);
        if (k >= MAX_GROUPS) k = MAX_GROUPS - 1;
        group_stat *gs = &groups[k];
        gs->count++;
        ntensors++;
        if (in_list(zero, rt->name)) {
            nzero++;
            if (!(dmax <= gs->worst_zero_abs)) gs->worst_zero_abs = dmax;
            if (!(dmax <= ZERO_ATOL)) {
                fprintf(stderr, "FAIL: gradient %s (mathematically zero): max|diff| %.3g > %.1g\n", rt->name, dmax,
                        ZERO_ATOL);
                failures++;
            }
        } else {
            double rel = rmax > 0 ? dmax / rmax : dmax;
            if (!(rel <= gs->worst_rel)) {
                gs->worst_rel = rel;
                snprintf(gs->worst_tensor, sizeof gs->worst_tensor, "%s", rt->name);
            }
            if (!(rel <= GRAD_RTOL)) {
                fprintf(stderr, "FAIL: gradient %s: max|diff| %.3g, max|ref| %.3g, relative %.3g > %.1g\n", rt->name,
                        dmax, rmax, rel, GRAD_RTOL);
                failures++;
            }
        }
        free(r);
        free(g);
    }
    printf("parameter gradients: %d tensors (%d mathematically zero), worst per group (max|diff| / max|ref|):\n",
           ntensors, nzero);
    for (int k = 0; k < ngroups; k++)
        printf("  %-16s %3d tensors  rel %.3g (%s)  zero-grad abs %.3g\n", groups[k].name, groups[k].count,
               groups[k].worst_rel, groups[k].worst_tensor[0] ? groups[k].worst_tensor : "-", groups[k].worst_zero_abs);
    /* the output holds nothing but sample, loss, x_grad and the reference's parameters */
    for (int i = 0; i < ddpm_st_count(got); i++) {
        const char *name = ddpm_st_at(got, i)->name;
        if (strcmp(name, "sample") && strcmp(name, "loss") && strcmp(name, "x_grad") && !ddpm_st_find(ref, name)) {
            fprintf(stderr, "FAIL: %s has an unexpected tensor '%s'\n", got_path, name);
            failures++;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: compare_fixture FIXTURE_DIR OUT.safetensors [--sample-tol T|auto] [--no-grads]\n");
        return 2;
    }
    const char *dir = argv[1], *got_path = argv[2], *tol_arg = "1e-5";
    int grads = 1;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--sample-tol") == 0 && i + 1 < argc) tol_arg = argv[++i];
        else if (strcmp(argv[i], "--no-grads") == 0) grads = 0;
        else {
            fprintf(stderr, "compare_fixture: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/info.json", dir);
    cJSON *info = load_json(path);
    const cJSON *zero = cJSON_GetObjectItemCaseSensitive(info, "zero_grad_tensors");
    double sample_tol;
    if (strcmp(tol_arg, "auto") == 0) {
        const cJSON *gap = cJSON_GetObjectItemCaseSensitive(info, "max_abs_diff_sample_f32_vs_f64");
        if (!cJSON_IsNumber(gap)) {
            fprintf(stderr, "compare_fixture: %s has no max_abs_diff_sample_f32_vs_f64\n", path);
            return 2;
        }
        sample_tol = fmax(1e-5, 10 * gap->valuedouble);
    } else {
        sample_tol = strtod(tol_arg, NULL);
    }

    snprintf(path, sizeof path, "%s/outputs.safetensors", dir);
    ddpm_safetensors *outs = open_st(path), *got = open_st(got_path);
    int64_t n = 0, n2 = 0;
    double dmax, rmax;
    printf("%s vs %s\n", got_path, dir);

    float *ref = read_tensor(outs, "outputs.safetensors", "sample_f32", NULL, &n);
    float *val = ref ? read_tensor(got, got_path, "sample", ddpm_st_find(outs, "sample_f32"), &n2) : NULL;
    if (ref && val) {
        diff(val, ref, n, &dmax, &rmax);
        printf("sample:  max|diff| %.3g (tolerance %.3g, max|ref| %.3g)\n", dmax, sample_tol, rmax);
        if (!(dmax <= sample_tol)) {
            fprintf(stderr, "FAIL: sample: max|diff| %.3g > %.3g\n", dmax, sample_tol);
            failures++;
        }
    }
    free(ref);
    free(val);

    if (grads) {
        ref = read_tensor(outs, "outputs.safetensors", "loss_f32", NULL, &n);
        val = ref ? read_tensor(got, got_path, "loss", NULL, &n2) : NULL;
        if (ref && val) {
            double d = fabs((double)val[0] - (double)ref[0]), tol = LOSS_RTOL * fmax(1.0, fabs((double)ref[0]));
            printf("loss:    %.9g vs %.9g, |diff| %.3g (tolerance %.3g)\n", val[0], ref[0], d, tol);
            if (!(d <= tol)) {
                fprintf(stderr, "FAIL: loss %.9g vs loss_f32 %.9g: |diff| %.3g > %.3g\n", val[0], ref[0], d, tol);
                failures++;
            }
        }
        free(ref);
        free(val);

        ref = read_tensor(outs, "outputs.safetensors", "x_grad_f32", NULL, &n);
        val = ref ? read_tensor(got, got_path, "x_grad", ddpm_st_find(outs, "x_grad_f32"), &n2) : NULL;
        if (ref && val) {
            diff(val, ref, n, &dmax, &rmax);
            double rel = rmax > 0 ? dmax / rmax : dmax;
            printf("x_grad:  max|diff| %.3g, relative %.3g (tolerance %.1g)\n", dmax, rel, GRAD_RTOL);
            if (!(rel <= GRAD_RTOL)) {
                fprintf(stderr, "FAIL: x_grad: relative error %.3g > %.1g\n", rel, GRAD_RTOL);
                failures++;
            }
        }
        free(ref);
        free(val);

        snprintf(path, sizeof path, "%s/grads.safetensors", dir);
        ddpm_safetensors *gref = open_st(path);
        compare_grads(gref, got, got_path, zero);
        ddpm_st_close(gref);
    }
    ddpm_st_close(outs);
    ddpm_st_close(got);
    cJSON_Delete(info);
    if (failures) {
        fprintf(stderr, "compare_fixture: %d check%s FAILED for %s\n", failures, failures == 1 ? "" : "s", dir);
        return 1;
    }
    printf("compare_fixture: OK\n");
    return 0;
}
