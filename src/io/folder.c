/* folder.c — training data shaped for a model: the standard datasets converted to the model's channels and
   size, and folders of PNG/JPEG images (one sub-folder per class) decoded, converted, resized and cropped. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/core.h"
#include "io/resize.h"

#define FOLDER_MAX_IMAGES 10000000          /* images in one folder dataset */
#define FOLDER_MAX_CLASSES 100000
#define FOLDER_MAX_BYTES ((size_t)1 << 36)  /* pixel memory of a converted dataset (64 GiB) */
#define MODEL_MAX_SIZE 4096                 /* model side in pixels */

/* A growable list of strings. */
typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static void list_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) dd_free(l->v[i]);
    dd_free(l->v);
    memset(l, 0, sizeof *l);
}

static ddpm_status list_push(strlist *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = dd_realloc(l->v, cap * sizeof(char *));
        if (!v) return DDPM_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = dd_strdup(s))) return DDPM_ERR_NOMEM;
    l->n++;
    return DDPM_OK;
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && dot != name &&
           (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

/* The non-hidden entries of dir, sorted by name: image files into `files`, folders into `dirs` (when not
   NULL). Other files are ignored. *total counts images across calls, bounded by FOLDER_MAX_IMAGES. */
static ddpm_status list_dir(const char *dir, const char *root, strlist *files, strlist *dirs, size_t *total) {
    DIR *d = opendir(dir);
    if (!d) return dd_error(DDPM_ERR_IO, "folder:%s: cannot open directory %s: %s", root, dir, strerror(errno));
    ddpm_status s = DDPM_OK;
    struct dirent *e;
    while (s == DDPM_OK && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (nm[0] == '.') continue;   /* hidden files, "." and ".." */
        char *path = dd_path_join(dir, nm);
        struct stat sb;
        if (!path) {
            s = DDPM_ERR_NOMEM;
        } else if (stat(path, &sb) != 0) {
            s = dd_error(DDPM_ERR_IO, "folder:%s: cannot stat %s: %s", root, path, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            if (dirs) {
                if (dirs->n >= FOLDER_MAX_CLASSES)
                    s = dd_error(DDPM_ERR_UNSUPPORTED, "folder:%s: more than %d class sub-folders", root,
                                 FOLDER_MAX_CLASSES);
                else s = list_push(dirs, nm);
            }
        } else if (S_ISREG(sb.st_mode) && is_image_name(nm)) {
            if (++*total > FOLDER_MAX_IMAGES)
                s = dd_error(DDPM_ERR_UNSUPPORTED, "folder:%s: more than %d images", root, FOLDER_MAX_IMAGES);
            else s = list_push(files, nm);
        }
        dd_free(path);
    }
    closedir(d);
    if (s != DDPM_OK) return s;
    if (files->n > 1) qsort(files->v, files->n, sizeof(char *), dd_cmp_str);
    if (dirs && dirs->n > 1) qsort(dirs->v, dirs->n, sizeof(char *), dd_cmp_str);
    return DDPM_OK;
}

/* Decodes a PNG or JPEG, chosen by the file's signature (by the extension when neither matches, so that
   the error names the expected format). */
static ddpm_status read_image(const char *path, ddpm_image *img) {
    uint8_t sig[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error(DDPM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n == 8 && memcmp(sig, png_sig, 8) == 0) return ddpm_png_read(path, img);
    if (n >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF) return ddpm_jpeg_read(path, img);
    const char *dot = strrchr(path, '.');
    return dot && strcasecmp(dot, ".png") == 0 ? ddpm_png_read(path, img) : ddpm_jpeg_read(path, img);
}

/* gray: Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), rounded. */
static uint8_t luma(unsigned r, unsigned g, unsigned b) {
    return (uint8_t)((299u * r + 587u * g + 114u * b + 500u) / 1000u);
}

/* An image (HWC) in the model's channel count, in place or into a new buffer. */
static ddpm_status convert_channels(ddpm_image *img, int channels) {
    if (img->channels == channels) return DDPM_OK;
    size_t npix = (size_t)img->width * (size_t)img->height;
    uint8_t *px = dd_alloc(npix * (size_t)channels);
    if (!px) return DDPM_ERR_NOMEM;
    const uint8_t *p = img->pixels;
    for (size_t i = 0; i < npix; i++) {
        if (channels == 3) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = p[i];
        else px[i] = luma(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
    }
    dd_free(img->pixels);
    img->pixels = px;
    img->channels = channels;
    return DDPM_OK;
}

/* Converts a decoded image and stores it as [channels, size, size] at dst. tmp holds size*size*channels. */
static ddpm_status store_image(ddpm_image *img, int size, int channels, uint8_t *tmp, uint8_t *dst) {
    ddpm_status s = convert_channels(img, channels);
    if (s != DDPM_OK) return s;
    double x0, y0, sw, sh;
    dd_resize_center_window(img->width, img->height, size, &x0, &y0, &sw, &sh);
    s = dd_resize_window(img->pixels, img->width, img->height, channels, x0, y0, sw, sh, tmp, size, size);
    if (s != DDPM_OK) return s;
    size_t plane = (size_t)size * (size_t)size;
    for (int c = 0; c < channels; c++)
        for (size_t i = 0; i < plane; i++) dst[(size_t)c * plane + i] = tmp[i * (size_t)channels + (size_t)c];
    return DDPM_OK;
}

/* count * channels * size * size bytes, checked against FOLDER_MAX_BYTES. */
static ddpm_status dataset_bytes(const char *what, int64_t count, int size, int channels, size_t *bytes) {
    size_t n;
    if (dd_mul_size((size_t)count, (size_t)channels * (size_t)size * (size_t)size, &n) != 0 ||
        n > FOLDER_MAX_BYTES)
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: %" PRId64 " images of %dx%dx%d need more than the limit of "
                        "%zu GiB", what, count, channels, size, size, FOLDER_MAX_BYTES >> 30);
    *bytes = n;
    return DDPM_OK;
}

/* The files of a folder dataset: paths (relative to root) and labels. */
typedef struct {
    strlist rel;        /* "class/name" or "name" */
    int32_t *labels;
    int num_classes;
} folder_list;

static ddpm_status list_folder(const char *root, folder_list *fl) {
    strlist top = {0}, subs = {0};
    strlist *cls = NULL;
    size_t total = 0;
    ddpm_status s = list_dir(root, root, &top, &subs, &total);
    if (s == DDPM_OK && subs.n && !(cls = dd_calloc(subs.n, sizeof *cls))) s = DDPM_ERR_NOMEM;
    size_t nonempty = 0, first_full = 0, first_empty = subs.n;
    for (size_t i = 0; s == DDPM_OK && i < subs.n; i++) {
        char *sub = dd_path_join(root, subs.v[i]);
        s = sub ? list_dir(sub, root, &cls[i], NULL, &total) : DDPM_ERR_NOMEM;
        dd_free(sub);
        if (s == DDPM_OK && cls[i].n) {
            if (!nonempty++) first_full = i;
        } else if (s == DDPM_OK && first_empty == subs.n) {
            first_empty = i;
        }
    }
    if (s != DDPM_OK) goto done;
    if (top.n && nonempty) {
        s = dd_error(DDPM_ERR_INVALID_ARG, "folder:%s: images directly in the folder ('%s') alongside class "
                     "sub-folders ('%s/%s'); put every image in a class sub-folder, or none", root, top.v[0],
                     subs.v[first_full], cls[first_full].v[0]);
        goto done;
    }
    if (!top.n && !nonempty) {
        s = dd_error(DDPM_ERR_INVALID_ARG, "folder:%s: no PNG or JPEG images found", root);
        goto done;
    }
    if (!top.n && first_empty < subs.n) {
        s = dd_error(DDPM_ERR_INVALID_ARG, "folder:%s: class sub-folder '%s' holds no PNG or JPEG images (every "
                     "sub-folder is a class: add images or remove it)", root, subs.v[first_empty]);
        goto done;
    }
    if (!(fl->labels = dd_alloc(total * sizeof(int32_t)))) {
        s = DDPM_ERR_NOMEM;
        goto done;
    }
    if (top.n) {
        for (size_t j = 0; s == DDPM_OK && j < top.n; j++) {
            fl->labels[fl->rel.n] = 0;
            s = list_push(&fl->rel, top.v[j]);
        }
        fl->num_classes = 0;
    } else {
        for (size_t i = 0; s == DDPM_OK && i < subs.n; i++)
            for (size_t j = 0; s == DDPM_OK && j < cls[i].n; j++) {
                char *rel = dd_path_join(subs.v[i], cls[i].v[j]);
                fl->labels[fl->rel.n] = (int32_t)i;
                s = rel ? list_push(&fl->rel, rel) : DDPM_ERR_NOMEM;
                dd_free(rel);
            }
        fl->num_classes = (int)subs.n;
    }
done:
    for (size_t i = 0; cls && i < subs.n; i++) list_free(&cls[i]);
    dd_free(cls);
    list_free(&top);
    list_free(&subs);
    return s;
}

static ddpm_status load_folder(const char *root, int size, int channels, ddpm_dataset *out) {
    folder_list fl;
    memset(&fl, 0, sizeof fl);
    ddpm_status s = list_folder(root, &fl);
    size_t bytes = 0;
    char what[64];
    snprintf(what, sizeof what, "folder:%.50s", root);
    if (s == DDPM_OK) s = dataset_bytes(what, (int64_t)fl.rel.n, size, channels, &bytes);
    uint8_t *tmp = NULL;
    if (s == DDPM_OK) {
        out->pixels = dd_alloc(bytes);
        tmp = dd_alloc((size_t)size * (size_t)size * (size_t)channels);
        if (!out->pixels || !tmp) s = DDPM_ERR_NOMEM;
    }
    size_t first_gray = SIZE_MAX, first_color = SIZE_MAX, per = bytes / (fl.rel.n ? fl.rel.n : 1);
    for (size_t i = 0; s == DDPM_OK && i < fl.rel.n; i++) {
        char *path = dd_path_join(root, fl.rel.v[i]);
        ddpm_image img;
        memset(&img, 0, sizeof img);
        s = path ? read_image(path, &img) : DDPM_ERR_NOMEM;
        if (s == DDPM_OK) {
            size_t *first = img.channels == 1 ? &first_gray : &first_color;
            if (*first == SIZE_MAX) *first = i;
            if (first_gray != SIZE_MAX && first_color != SIZE_MAX)
                s = dd_error(DDPM_ERR_FORMAT, "folder:%s: mixed gray and colour images ('%s' is gray, '%s' is "
                             "colour); convert them all to one kind", root, fl.rel.v[first_gray],
                             fl.rel.v[first_color]);
        }
        if (s == DDPM_OK) s = store_image(&img, size, channels, tmp, out->pixels + i * per);
        ddpm_image_free(&img);
        dd_free(path);
    }
    dd_free(tmp);
    if (s == DDPM_OK) {
        out->count = (int64_t)fl.rel.n;
        out->channels = channels;
        out->height = out->width = size;
        out->num_classes = fl.num_classes;
        out->labels = fl.labels;
        fl.labels = NULL;
    }
    dd_free(fl.labels);
    list_free(&fl.rel);
    return s;
}

/* A loaded standard dataset ([count, C, H, W]) in the model's channels and size. */
static ddpm_status convert_dataset(const char *kind, ddpm_dataset *ds, int size, int channels) {
    if (ds->channels == channels && ds->height == size && ds->width == size) return DDPM_OK;
    size_t bytes = 0;
    ddpm_status s = dataset_bytes(kind, ds->count, size, channels, &bytes);
    if (s != DDPM_OK) return s;
    int H = ds->height, W = ds->width, C = ds->channels;
    size_t in_plane = (size_t)H * (size_t)W, plane = (size_t)size * (size_t)size;
    uint8_t *px = dd_alloc(bytes), *gray = C == 3 && channels == 1 ? dd_alloc(in_plane) : NULL;
    if (!px || (C == 3 && channels == 1 && !gray)) {
        dd_free(px);
        dd_free(gray);
        return DDPM_ERR_NOMEM;
    }
    double x0, y0, sw, sh;
    dd_resize_center_window(W, H, size, &x0, &y0, &sw, &sh);
    for (int64_t n = 0; s == DDPM_OK && n < ds->count; n++) {
        const uint8_t *src = ds->pixels + (size_t)n * (size_t)C * in_plane;
        uint8_t *dst = px + (size_t)n * (size_t)channels * plane;
        if (gray) {
            for (size_t i = 0; i < in_plane; i++) gray[i] = luma(src[i], src[in_plane + i], src[2 * in_plane + i]);
            src = gray;
        }
        int planes = C == channels ? C : 1;   /* 1 -> 3 resizes once and replicates */
        for (int c = 0; s == DDPM_OK && c < planes; c++)
            s = dd_resize_window(src + (size_t)c * in_plane, W, H, 1, x0, y0, sw, sh, dst + (size_t)c * plane, size,
                                 size);
        for (int c = planes; c < channels; c++) memcpy(dst + (size_t)c * plane, dst, plane);
    }
    dd_free(gray);
    if (s != DDPM_OK) {
        dd_free(px);
        return s;
    }
    dd_free(ds->pixels);
    ds->pixels = px;
    ds->channels = channels;
    ds->height = ds->width = size;
    return DDPM_OK;
}

ddpm_status ddpm_dataset_load_for_model(const char *spec, const char *dir, int train, int size, int channels,
                                        ddpm_dataset *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_load_for_model: out is NULL");
    memset(out, 0, sizeof *out);
    if (!spec) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_load_for_model: spec is NULL");
    if (size < 1 || size > MODEL_MAX_SIZE || (channels != 1 && channels != 3))
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dataset_load_for_model: model of %dx%d pixels with %d "
                        "channels (need a size of 1..%d and 1 or 3 channels)", size, size, channels,
                        MODEL_MAX_SIZE);
    ddpm_status s;
    if (strncmp(spec, "folder:", 7) == 0) {
        const char *root = spec[7] ? spec + 7 : dir;
        if (!root || !root[0])
            return dd_error(DDPM_ERR_INVALID_ARG, "folder: needs a directory (folder:DIR)");
        s = load_folder(root, size, channels, out);
    } else if (strcmp(spec, "mnist") == 0 || strcmp(spec, "fashion-mnist") == 0 || strcmp(spec, "cifar10") == 0) {
        s = ddpm_dataset_load(spec, dir, train, out);
        if (s == DDPM_OK) s = convert_dataset(spec, out, size, channels);
    } else {
        return dd_error(DDPM_ERR_INVALID_ARG, "unknown dataset '%.100s' (valid: mnist, fashion-mnist, cifar10, "
                        "folder:DIR)", spec);
    }
    if (s != DDPM_OK) ddpm_dataset_free(out);
    return s;
}
