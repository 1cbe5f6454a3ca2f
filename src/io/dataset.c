/* dataset.c — labelled image sets in memory: MNIST and Fashion-MNIST (IDX pairs) and CIFAR-10 batches,
   found by their standard file names in a directory (by default the user's data folder). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

#define DS_MAX_FILES 64

/* How to get the files, for the message when they are missing: "get the files with: ddpm get-data mnist". */
static void get_hint(char *buf, size_t n, const char *kind, const char *dir, int is_default) {
    if (is_default)
        snprintf(buf, n, "; get the files with: ddpm get-data %s (the default folder is $DDPM_DATA/%s, else "
                 "$HOME/.cache/ddpm/%s)", kind, kind, kind);
    else
        snprintf(buf, n, "; get the files with: ddpm get-data %s %.200s", kind, dir);
}

/* The default data folder of a kind: $DDPM_DATA/<kind>, else $HOME/.cache/ddpm/<kind>. */
static ddpm_status default_dir(const char *kind, char **out) {
    const char *base = getenv("DDPM_DATA"), *home = getenv("HOME");
    char *p = NULL;
    if (base && base[0]) {
        p = dd_path_join(base, kind);
    } else if (home && home[0]) {
        char *cache = dd_path_join(home, ".cache/ddpm");
        p = cache ? dd_path_join(cache, kind) : NULL;
        dd_free(cache);
    } else {
        return dd_error(DDPM_ERR_INVALID_ARG, "no %s folder given and neither DDPM_DATA nor HOME is set (pass "
                        "the folder, or set DDPM_DATA to the folder that holds %s/)", kind, kind);
    }
    *out = p;
    return p ? DDPM_OK : DDPM_ERR_NOMEM;
}

/* dir/base if it exists, else dir/base.gz, else *out = NULL. */
static ddpm_status find_file(const char *dir, const char *base, char **out) {
    char gz[128];
    snprintf(gz, sizeof gz, "%s.gz", base);
    *out = NULL;
    const char *names[2] = {base, gz};
    for (int i = 0; i < 2; i++) {
        char *p = dd_path_join(dir, names[i]);
        if (!p) return DDPM_ERR_NOMEM;
        if (dd_is_file(p)) {
            *out = p;
            return DDPM_OK;
        }
        dd_free(p);
    }
    return DDPM_OK;
}

static ddpm_status load_idx_pair(const char *kind, const char *dir, int is_default, int train, ddpm_dataset *out) {
    const char *pre = train ? "train" : "t10k";
    char ibase[64], lbase[64];
    snprintf(ibase, sizeof ibase, "%s-images-idx3-ubyte", pre);
    snprintf(lbase, sizeof lbase, "%s-labels-idx1-ubyte", pre);
    char *ipath = NULL, *lpath = NULL;
    ddpm_idx im, lb;
    memset(&im, 0, sizeof im);
    memset(&lb, 0, sizeof lb);
    ddpm_status s = find_file(dir, ibase, &ipath);
    if (s == DDPM_OK) s = find_file(dir, lbase, &lpath);
    if (s != DDPM_OK) goto fail;
    if (!ipath || !lpath) {
        const char *miss = !ipath ? ibase : lbase;
        char hint[512];
        get_hint(hint, sizeof hint, kind, dir, is_default);
        s = dd_error(DDPM_ERR_IO, "%s: no %s or %s.gz (the %s %s set; the directory should hold %s and %s, raw "
                     "or gzip)%s", dir, miss, miss, kind, train ? "training" : "test", ibase, lbase, hint);
        goto fail;
    }
    if ((s = ddpm_idx_read(ipath, &im)) != DDPM_OK || (s = ddpm_idx_read(lpath, &lb)) != DDPM_OK) goto fail;
    if (im.ndim != 3 || im.dims[1] < 1 || im.dims[2] < 1) {
        s = dd_error(DDPM_ERR_FORMAT, "%s: expected images [count, rows, cols], found %d dimensions", ipath,
                     im.ndim);
        goto fail;
    }
    if (lb.ndim != 1) {
        s = dd_error(DDPM_ERR_FORMAT, "%s: expected labels [count], found %d dimensions", lpath, lb.ndim);
        goto fail;
    }
    if (im.dims[0] != lb.dims[0]) {
        s = dd_error(DDPM_ERR_FORMAT, "%s holds %" PRId64 " images but %s holds %" PRId64 " labels", ipath,
                     im.dims[0], lpath, lb.dims[0]);
        goto fail;
    }
    if (im.dims[0] == 0) {
        s = dd_error(DDPM_ERR_FORMAT, "%s: holds no images", ipath);
        goto fail;
    }
    int64_t n = im.dims[0];
    for (int64_t i = 0; i < n; i++)
        if (lb.data[i] > 9) {
            s = dd_error(DDPM_ERR_FORMAT, "%s: label %u at index %" PRId64 " is not in 0..9", lpath, lb.data[i], i);
            goto fail;
        }
    out->labels = dd_alloc((size_t)n * sizeof(int32_t));
    if (!out->labels) {
        s = DDPM_ERR_NOMEM;
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) out->labels[i] = lb.data[i];
    out->count = n;
    out->channels = 1;
    out->height = (int)im.dims[1];
    out->width = (int)im.dims[2];
    out->num_classes = 10;
    out->pixels = im.data;   /* [count, rows, cols] is already [count, 1, H, W] */
    im.data = NULL;
fail:
    ddpm_idx_free(&im);
    ddpm_idx_free(&lb);
    dd_free(ipath);
    dd_free(lpath);
    return s;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The batch names of a CIFAR-10 directory, sorted; X.bin.gz is skipped when X.bin is present. */
static ddpm_status cifar_files(const char *dir, const char *hint, int train, char **names, int *count) {
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return dd_error(DDPM_ERR_IO, "%s: cannot open directory: %s%s", dir, strerror(errno), hint);
    struct dirent *e;
    ddpm_status s = DDPM_OK;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        int ok = train ? strncmp(nm, "data_batch_", 11) == 0 && (ends_with(nm, ".bin") || ends_with(nm, ".bin.gz"))
                       : strcmp(nm, "test_batch.bin") == 0 || strcmp(nm, "test_batch.bin.gz") == 0;
        if (!ok) continue;
        if (*count == DS_MAX_FILES) {
            s = dd_error(DDPM_ERR_UNSUPPORTED, "%s: more than %d CIFAR-10 batch files", dir, DS_MAX_FILES);
            break;
        }
        if (!(names[*count] = dd_strdup(nm))) {
            s = DDPM_ERR_NOMEM;
            break;
        }
        (*count)++;
    }
    closedir(d);
    if (s != DDPM_OK) return s;
    qsort(names, (size_t)*count, sizeof(char *), dd_cmp_str);
    int k = 0;
    for (int i = 0; i < *count; i++) {
        size_t n = strlen(names[i]);
        int dup = 0;
        if (ends_with(names[i], ".gz"))
            for (int j = 0; j < *count; j++)
                if (strlen(names[j]) == n - 3 && strncmp(names[j], names[i], n - 3) == 0) dup = 1;
        if (dup) dd_free(names[i]);
        else names[k++] = names[i];
    }
    *count = k;
    return DDPM_OK;
}

static ddpm_status load_cifar(const char *dir, int is_default, int train, ddpm_dataset *out) {
    char *names[DS_MAX_FILES];
    int nfiles = 0;
    char hint[512];
    get_hint(hint, sizeof hint, "cifar10", dir, is_default);
    ddpm_status s = cifar_files(dir, hint, train, names, &nfiles);
    if (s != DDPM_OK) return s;
    if (nfiles == 0)
        return dd_error(DDPM_ERR_IO, "%s: no CIFAR-10 %s batches (looked for %s)%s", dir,
                        train ? "training" : "test",
                        train ? "data_batch_*.bin and data_batch_*.bin.gz" : "test_batch.bin and test_batch.bin.gz",
                        hint);
    for (int f = 0; f < nfiles && s == DDPM_OK; f++) {
        char *path = dd_path_join(dir, names[f]);
        ddpm_cifar c;
        memset(&c, 0, sizeof c);
        s = path ? ddpm_cifar_read(path, &c) : DDPM_ERR_NOMEM;
        if (s == DDPM_OK) {
            int64_t n = out->count + c.count;
            uint8_t *px = dd_realloc(out->pixels, (size_t)n * 3072);
            if (px) out->pixels = px;
            int32_t *lb = px ? dd_realloc(out->labels, (size_t)n * sizeof(int32_t)) : NULL;
            if (lb) out->labels = lb;
            if (!px || !lb) {
                s = DDPM_ERR_NOMEM;
            } else {
                memcpy(out->pixels + (size_t)out->count * 3072, c.images, (size_t)c.count * 3072);
                for (int64_t i = 0; i < c.count; i++) out->labels[out->count + i] = c.labels[i];
                out->count = n;
            }
        }
        ddpm_cifar_free(&c);
        dd_free(path);
    }
    for (int f = 0; f < nfiles; f++) dd_free(names[f]);
    out->channels = 3;
    out->height = out->width = 32;
    out->num_classes = 10;
    return s;
}

ddpm_status ddpm_dataset_load(const char *kind, const char *dir, int train, ddpm_dataset *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!kind) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_load: kind is NULL");
    int idx = strcmp(kind, "mnist") == 0 || strcmp(kind, "fashion-mnist") == 0;
    if (!idx && strcmp(kind, "cifar10") != 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "unknown dataset '%.100s' (valid: mnist, fashion-mnist, cifar10)",
                        kind);
    char *def = NULL;
    ddpm_status s = dir ? DDPM_OK : default_dir(kind, &def);
    if (s != DDPM_OK) return s;
    const char *d = dir ? dir : def;
    s = idx ? load_idx_pair(kind, d, def != NULL, train, out) : load_cifar(d, def != NULL, train, out);
    dd_free(def);
    if (s != DDPM_OK) ddpm_dataset_free(out);
    return s;
}

void ddpm_dataset_free(ddpm_dataset *ds) {
    if (!ds) return;
    dd_free(ds->pixels);
    dd_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

ddpm_status ddpm_dataset_get_f32(const ddpm_dataset *ds, int64_t index, float *out) {
    if (!ds || !out || !ds->pixels)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_get_f32: dataset or out is NULL");
    if (index < 0 || index >= ds->count)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_get_f32: index %" PRId64 " out of range 0..%" PRId64,
                        index, ds->count - 1);
    size_t n = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
    const uint8_t *p = ds->pixels + (size_t)index * n;
    for (size_t i = 0; i < n; i++) out[i] = (float)(p[i] / 127.5 - 1.0);
    return DDPM_OK;
}

ddpm_status ddpm_dataset_random(int64_t count, int channels, int size, int num_classes, uint64_t seed,
                                ddpm_dataset *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_random: NULL output");
    memset(out, 0, sizeof *out);
    if (count < 1 || channels < 1 || size < 1 || num_classes < 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_random: %" PRId64 " images of %d x %d x %d, %d classes",
                        count, channels, size, size, num_classes);
    const size_t n = (size_t)count * (size_t)channels * (size_t)size * (size_t)size;
    uint32_t *u = dd_alloc(sizeof(uint32_t) * (n > (size_t)count ? n : (size_t)count));
    out->pixels = dd_alloc(n);
    out->labels = num_classes > 0 ? dd_alloc(sizeof(int32_t) * (size_t)count) : NULL;
    if (!u || !out->pixels || (num_classes > 0 && !out->labels)) {
        dd_free(u);
        ddpm_dataset_free(out);
        return dd_error(DDPM_ERR_NOMEM, "out of memory for a batch of %" PRId64 " images", count);
    }
    out->count = count, out->channels = channels, out->height = out->width = size, out->num_classes = num_classes;
    ddpm_rng_uniform_u32(seed, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0), 0, u, n);
    for (size_t i = 0; i < n; i++) out->pixels[i] = (uint8_t)(u[i] >> 24);
    ddpm_rng_uniform_u32(seed, ddpm_rng_stream(DDPM_STREAM_INIT, 1, 0), 0, u, (size_t)count);
    for (int64_t i = 0; i < count && num_classes > 0; i++) out->labels[i] = (int32_t)(u[i] % (uint32_t)num_classes);
    dd_free(u);
    return DDPM_OK;
}
