/* png.c — PNG reading and writing through libpng: any PNG in, 8-bit gray or RGB out (alpha composited
   on white), tEXt chunks, atomic writes; folders of numbered images written whole or not at all. libpng's longjmp
   error handling stays inside this file. */
#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

#define PNG_MAX_DIM 16384          /* per side; bounds memory for hostile files */
#define PNG_MAX_FILE (1u << 30)
#define PNG_MAX_CHUNK (8u << 20)   /* largest ancillary chunk (text, ICC profile), also when decompressed */
#define PNG_MEMORY_NAME "<memory>"

/* State shared with the libpng callbacks. Lives on the heap so that it is valid after a longjmp. */
typedef struct {
    jmp_buf jmp;
    char msg[256];          /* libpng's error text */
    char warn[128];         /* libpng's last warning, which often says why the error happened */
    const uint8_t *in;      /* reading: the encoded file */
    size_t in_len, in_pos;
    uint8_t *out;           /* writing: the encoded file */
    size_t out_len, out_cap;
    int out_oom;
    uint8_t *pixels;        /* reading: decoded image (freed on error) */
    uint8_t *raw;           /* reading: libpng's rows before alpha compositing */
    png_bytep *rows;
    const char *text_key;   /* reading text: the key wanted */
    char *text_value;       /* its value (copy) */
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    int w = c->warn[0] != 0;
    snprintf(c->msg, sizeof c->msg, "%s%s%s%s", msg ? msg : "libpng error", w ? " (" : "", c->warn,
             w ? ")" : "");
    longjmp(c->jmp, 1);
}

/* The library never prints: warnings are kept for the next error message. */
static void on_warning(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->warn, sizeof c->warn, "%s", msg ? msg : "");
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* libpng's own allocations (chunk buffers, rows, zlib state). A chunk's stated length is checked only as a
   "benign" error, which libpng turns into a warning, so large requests are refused here. */
static png_voidp on_malloc(png_structp png, png_alloc_size_t size) {
    (void)png;
    if (size > PNG_MAX_CHUNK + (1u << 16)) return NULL;
    return dd_alloc((size_t)size);
}

static void on_free(png_structp png, png_voidp p) {
    (void)png;
    dd_free(p);
}

static void on_read(png_structp png, png_bytep data, size_t len) {
    png_ctx *c = png_get_io_ptr(png);
    if (len > c->in_len - c->in_pos) png_error(png, "unexpected end of file (truncated PNG)");
    memcpy(data, c->in + c->in_pos, len);
    c->in_pos += len;
}

static void on_write(png_structp png, png_bytep data, size_t len) {
    png_ctx *c = png_get_io_ptr(png);
    if (c->out_oom) return;
    if (len > c->out_cap - c->out_len) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap - c->out_len < len) {
            if (cap > SIZE_MAX / 2) {
                c->out_oom = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = dd_realloc(c->out, cap);
        if (!p) {
            c->out_oom = 1;
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void on_flush(png_structp png) {
    (void)png;
}

static void copy_text(png_ctx *c, png_structp png, png_infop info) {
    png_textp text = NULL;
    int n = 0;
    if (!info || c->text_value || !png_get_text(png, info, &text, &n)) return;
    for (int i = 0; i < n; i++)
        if (text[i].key && strcmp(text[i].key, c->text_key) == 0) {
            size_t len = text[i].text_length;
            if (text[i].compression == PNG_ITXT_COMPRESSION_NONE ||
                text[i].compression == PNG_ITXT_COMPRESSION_zTXt)
                len = text[i].itxt_length;
            if (!text[i].text) len = 0;
            c->text_value = dd_alloc(len + 1);
            if (!c->text_value) png_error(png, "out of memory copying a text chunk");
            if (len) memcpy(c->text_value, text[i].text, len);
            c->text_value[len] = 0;
            return;
        }
}

/* Decodes c->in into an 8-bit gray or RGB image. On success the pixels are in c->pixels. */
static ddpm_status decode(png_ctx *c, const char *src, int *w_out, int *h_out, int *ch_out) {
    if (c->in_len < 8 || png_sig_cmp((png_const_bytep)c->in, 0, 8) != 0)
        return dd_error(DDPM_ERR_FORMAT, "%s: not a PNG file (%s)", src,
                        c->in_len == 0 ? "empty" : "bad signature");
    if (c->in_len >= 24 && memcmp(c->in + 12, "IHDR", 4) == 0 &&
        (be32(c->in + 16) > PNG_MAX_DIM || be32(c->in + 20) > PNG_MAX_DIM))
        return dd_error(DDPM_ERR_FORMAT, "%s: PNG of %lux%lu pixels exceeds the limit of %dx%d", src,
                        (unsigned long)be32(c->in + 16), (unsigned long)be32(c->in + 20), PNG_MAX_DIM,
                        PNG_MAX_DIM);
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, c, on_error, on_warning, NULL,
                                               on_malloc, on_free);
    if (!png) return dd_error(DDPM_ERR_NOMEM, "%s: cannot create the PNG reader", src);
    png_infop info = png_create_info_struct(png), end_info = png_create_info_struct(png);
    if (!info || !end_info) {
        png_destroy_read_struct(&png, &info, &end_info);
        return dd_error(DDPM_ERR_NOMEM, "%s: cannot create the PNG reader", src);
    }
    if (setjmp(c->jmp)) {
        png_destroy_read_struct(&png, &info, &end_info);
        dd_free(c->pixels);
        dd_free(c->raw);
        dd_free(c->rows);
        dd_free(c->text_value);
        c->pixels = c->raw = NULL;
        c->rows = NULL;
        c->text_value = NULL;
        return dd_error(DDPM_ERR_FORMAT, "%s: invalid PNG: %s", src, c->msg);
    }
    png_set_read_fn(png, c, on_read);
    png_set_user_limits(png, PNG_MAX_DIM, PNG_MAX_DIM);
    png_set_chunk_malloc_max(png, PNG_MAX_CHUNK);   /* bounds decompressed text and ICC profiles */
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);   /* bad CRCs are errors everywhere */
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if (width == 0 || height == 0 || width > PNG_MAX_DIM || height > PNG_MAX_DIM) {
        snprintf(c->msg, sizeof c->msg, "image of %lux%lu pixels exceeds the limit of %dx%d",
                 (unsigned long)width, (unsigned long)height, PNG_MAX_DIM, PNG_MAX_DIM);
        longjmp(c->jmp, 1);
    }
    /* deflate expands at most 1032:1, so a file whose remaining bytes cannot hold the image's data is
       truncated or hostile: refuse it before allocating the image */
    size_t packed = png_get_rowbytes(png, info);
    if (packed && height > (1100.0 * (double)(c->in_len - c->in_pos) + 65536.0) / (double)packed) {
        snprintf(c->msg, sizeof c->msg, "%lux%lu image needs %.0f bytes of pixel data but the file has only %zu "
                 "bytes left (truncated?)", (unsigned long)width, (unsigned long)height, (double)packed * height,
                 c->in_len - c->in_pos);
        longjmp(c->jmp, 1);
    }
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_scale_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int in_ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (in_ch < 1 || in_ch > 4 || png_get_bit_depth(png, info) != 8 || rowbytes != (size_t)width * in_ch) {
        snprintf(c->msg, sizeof c->msg, "unexpected layout after conversion (%d channels)", in_ch);
        longjmp(c->jmp, 1);
    }
    int out_ch = in_ch >= 3 ? 3 : 1;
    /* width, height <= 16384 and channels <= 4: every size below fits in size_t */
    c->raw = dd_alloc(rowbytes * height);
    c->rows = dd_alloc(sizeof(png_bytep) * height);
    if (!c->raw || !c->rows) {
        snprintf(c->msg, sizeof c->msg, "out of memory for %lux%lu pixels", (unsigned long)width,
                 (unsigned long)height);
        longjmp(c->jmp, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) c->rows[y] = c->raw + (size_t)y * rowbytes;
    png_read_image(png, c->rows);
    png_read_end(png, end_info);
    if (c->text_key) {
        copy_text(c, png, info);
        copy_text(c, png, end_info);
    }
    png_destroy_read_struct(&png, &info, &end_info);
    dd_free(c->rows);
    c->rows = NULL;
    if (in_ch != out_ch) {
        /* alpha on white, in place (output index <= input index): out = round((v a + 255 (255 - a)) / 255) */
        size_t npix = (size_t)width * height;
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *p = c->raw + i * (size_t)in_ch;
            unsigned a = p[in_ch - 1];
            uint8_t v[3];
            for (int k = 0; k < out_ch; k++) v[k] = (uint8_t)((p[k] * a + 255u * (255u - a) + 127u) / 255u);
            memcpy(c->raw + i * (size_t)out_ch, v, (size_t)out_ch);
        }
        uint8_t *shrunk = dd_realloc(c->raw, npix * (size_t)out_ch);
        if (shrunk) c->raw = shrunk;   /* keeping the larger block is harmless */
    }
    c->pixels = c->raw;
    c->raw = NULL;
    *w_out = (int)width;
    *h_out = (int)height;
    *ch_out = out_ch;
    return DDPM_OK;
}

static ddpm_status read_memory(const void *buf, size_t len, const char *src, ddpm_image *out,
                               const char *key, char **value) {
    png_ctx *c = dd_calloc(1, sizeof *c);
    if (!c) return DDPM_ERR_NOMEM;
    c->in = buf;
    c->in_len = len;
    c->text_key = key;
    int w = 0, h = 0, ch = 0;
    ddpm_status s = decode(c, src, &w, &h, &ch);
    if (s == DDPM_OK && out) {
        out->width = w;
        out->height = h;
        out->channels = ch;
        out->pixels = c->pixels;
    } else {
        dd_free(c->pixels);
    }
    if (s == DDPM_OK && value) *value = c->text_value;
    else dd_free(c->text_value);
    dd_free(c);
    return s;
}

ddpm_status ddpm_png_read_memory(const void *buf, size_t len, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_png_read_memory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_png_read_memory: buf is NULL");
    return read_memory(buf, len, PNG_MEMORY_NAME, out, NULL, NULL);
}

ddpm_status ddpm_png_read(const char *path, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_png_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_png_read: path is NULL");
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status s = dd_read_file(path, PNG_MAX_FILE, &buf, &len);
    if (s != DDPM_OK) return s;
    s = read_memory(buf, len, path, out, NULL, NULL);
    dd_free(buf);
    return s;
}

ddpm_status ddpm_png_read_text(const char *path, const char *key, char **value) {
    if (!value) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_png_read_text: value is NULL");
    *value = NULL;
    if (!path || !key) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_png_read_text: path or key is NULL");
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status s = dd_read_file(path, PNG_MAX_FILE, &buf, &len);
    if (s != DDPM_OK) return s;
    s = read_memory(buf, len, path, NULL, key, value);
    dd_free(buf);
    return s;
}

/* A tEXt keyword: 1..79 Latin-1 printable characters, no leading, trailing or double spaces. */
static int valid_keyword(const char *k) {
    size_t n = strlen(k);
    if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (!((ch >= 32 && ch <= 126) || ch >= 161)) return 0;
        if (ch == ' ' && k[i + 1] == ' ') return 0;
    }
    return 1;
}

/* Encodes img into c->out (with the tEXt pairs). */
static ddpm_status encode(png_ctx *c, const char *path, const ddpm_image *img, const char *const *text,
                          int ntext) {
    png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, c, on_error, on_warning, NULL,
                                                on_malloc, on_free);
    if (!png) return dd_error(DDPM_ERR_NOMEM, "%s: cannot create the PNG writer", path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return dd_error(DDPM_ERR_NOMEM, "%s: cannot create the PNG writer", path);
    }
    if (setjmp(c->jmp)) {
        png_destroy_write_struct(&png, &info);
        dd_free(c->rows);
        c->rows = NULL;
        return dd_error(strstr(c->msg, "memory") ? DDPM_ERR_NOMEM : DDPM_ERR_INTERNAL,
                        "%s: PNG encoding failed: %s", path, c->msg);
    }
    png_set_write_fn(png, c, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ntext > 0) {
        png_text t[64];
        for (int done = 0; done < ntext;) {
            int n = ntext - done < 64 ? ntext - done : 64;
            memset(t, 0, sizeof t);
            for (int i = 0; i < n; i++) {
                t[i].compression = PNG_TEXT_COMPRESSION_NONE;
                t[i].key = (png_charp)(uintptr_t)text[2 * (done + i)];
                t[i].text = (png_charp)(uintptr_t)text[2 * (done + i) + 1];
                t[i].text_length = strlen(t[i].text);
            }
            png_set_text(png, info, t, n);
            done += n;
        }
    }
    png_write_info(png, info);
    size_t rowbytes = (size_t)img->width * (size_t)img->channels;
    c->rows = dd_alloc(sizeof(png_bytep) * (size_t)img->height);
    if (!c->rows) {
        snprintf(c->msg, sizeof c->msg, "out of memory");
        longjmp(c->jmp, 1);
    }
    for (int y = 0; y < img->height; y++) c->rows[y] = img->pixels + (size_t)y * rowbytes;
    png_write_image(png, c->rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    dd_free(c->rows);
    c->rows = NULL;
    if (c->out_oom) return dd_error(DDPM_ERR_NOMEM, "%s: out of memory encoding the PNG", path);
    return DDPM_OK;
}

ddpm_status ddpm_png_write(const char *path, const ddpm_image *img, const char *const *text) {
    if (!path || !img) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_png_write: path or image is NULL");
    if ((img->channels != 1 && img->channels != 3) || img->width < 1 || img->height < 1 ||
        img->width > PNG_MAX_DIM || img->height > PNG_MAX_DIM || !img->pixels)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: cannot write a %dx%d image with %d channels (need 1 or 3 "
                        "channels, sides 1..%d, pixels set)", path, img->width, img->height, img->channels,
                        PNG_MAX_DIM);
    int ntext = 0;
    if (text)
        for (; text[2 * ntext]; ntext++) {
            const char *k = text[2 * ntext], *v = text[2 * ntext + 1];
            if (!v) return dd_error(DDPM_ERR_INVALID_ARG, "%s: text key '%.80s' has no value", path, k);
            if (!valid_keyword(k))
                return dd_error(DDPM_ERR_INVALID_ARG, "%s: '%.80s' is not a valid PNG text keyword (1-79 "
                                "printable Latin-1 characters, no leading, trailing or double spaces)", path, k);
        }
    png_ctx *c = dd_calloc(1, sizeof *c);
    if (!c) return DDPM_ERR_NOMEM;
    ddpm_status s = encode(c, path, img, text, ntext);
    if (s == DDPM_OK) s = dd_write_file_atomic(path, c->out, c->out_len);
    dd_free(c->out);
    dd_free(c);
    return s;
}

ddpm_status ddpm_image_alloc(ddpm_image *img, int width, int height, int channels) {
    if (!img) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_alloc: img is NULL");
    memset(img, 0, sizeof *img);
    if (width < 1 || height < 1 || (channels != 1 && channels != 3))
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_alloc: %dx%d with %d channels (need sides >= 1 and "
                        "1 or 3 channels)", width, height, channels);
    size_t n;
    if (dd_mul_size((size_t)width, (size_t)height, &n) != 0 || dd_mul_size(n, (size_t)channels, &n) != 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_alloc: %dx%d image is too large", width, height);
    img->pixels = dd_calloc(n, 1);
    if (!img->pixels) return DDPM_ERR_NOMEM;
    img->width = width;
    img->height = height;
    img->channels = channels;
    return DDPM_OK;
}

void ddpm_image_free(ddpm_image *img) {
    if (!img) return;
    dd_free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* ------------------------------------------------------------------------------- folders of images */

/* 1 for the names ddpm_write_image_folder writes: six or more digits and ".png". */
static int is_image_name(const char *n) {
    size_t k = 0;
    while (n[k] >= '0' && n[k] <= '9') k++;
    return k >= 6 && strcmp(n + k, ".png") == 0;
}

ddpm_status ddpm_image_folder_check(const char *dir) {
    if (!dir) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_folder_check: dir is NULL");
    struct stat sb;
    if (lstat(dir, &sb) != 0) return errno == ENOENT ? DDPM_OK : dd_error(DDPM_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return dd_error(DDPM_ERR_IO, "%s: %s; give a new folder or one of images that ddpm wrote", dir,
                        S_ISLNK(sb.st_mode) ? "is a symbolic link" : "exists and is not a folder");
    DIR *d = opendir(dir);
    if (!d) return dd_error(DDPM_ERR_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    struct dirent *e;
    char foreign[256] = "";
    while (!foreign[0] && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !is_image_name(e->d_name))
            snprintf(foreign, sizeof foreign, "%s", e->d_name);
    closedir(d);
    if (foreign[0])
        return dd_error(DDPM_ERR_IO, "%s: the folder holds '%s', which ddpm did not write; give a new folder or one "
                        "of images that ddpm wrote", dir, foreign);
    return DDPM_OK;
}

/* Removes a folder of image files (what ddpm_image_folder_check allows) and the folder. */
static void remove_image_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (is_image_name(e->d_name)) {
                char *p = dd_path_join(dir, e->d_name);
                if (p) unlink(p);
                dd_free(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* Every image into stage; NULL-terminated text pairs plus "Description". */
static ddpm_status write_images(const char *stage, const float *x, int64_t N, int C, int H, int W,
                                const char *const *text, int (*should_stop)(void *), void *stop_user,
                                const char *dir) {
    int nt = 0;
    while (text && text[nt]) nt += 2;
    const char **t = dd_alloc(sizeof(char *) * (size_t)(nt + 3));
    char *path = dd_alloc(strlen(stage) + 32);
    ddpm_status st = t && path ? dd_make_dirs(stage) : DDPM_ERR_NOMEM;
    if (t) {
        for (int i = 0; i < nt; i++) t[i] = text[i];
        t[nt] = "Description";
        t[nt + 2] = NULL;
    }
    const size_t D = (size_t)C * (size_t)H * (size_t)W;
    for (int64_t i = 0; st == DDPM_OK && i < N; i++) {
        ddpm_image img;
        char what[64];
        snprintf(path, strlen(stage) + 32, "%s/%06lld.png", stage, (long long)i);
        snprintf(what, sizeof what, "image %lld of %lld", (long long)i, (long long)N);
        t[nt + 1] = what;
        st = ddpm_image_grid(&img, x + (size_t)i * D, 1, C, H, W, 1, 0, 0);
        if (st == DDPM_OK) st = ddpm_png_write(path, &img, t);
        ddpm_image_free(&img);
        if (st == DDPM_OK && should_stop && should_stop(stop_user))
            st = dd_error(DDPM_ERR_INTERRUPTED, "interrupted; %s was not changed", dir);
    }
    dd_free(t);
    dd_free(path);
    return st;
}

ddpm_status ddpm_write_image_folder(const char *given, const float *x, int64_t N, int C, int H, int W,
                                    const char *const *text, int (*should_stop)(void *user), void *stop_user) {
    if (!given || !given[0] || !x || N < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_write_image_folder: need a folder name and N >= 1 images");
    ddpm_status st = ddpm_image_folder_check(given);
    if (st != DDPM_OK) return st;
    size_t len = strlen(given) + 48;
    char *dir = dd_alloc(len), *stage = dd_alloc(len), *old = dd_alloc(len);
    if (!dir || !stage || !old) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    snprintf(dir, len, "%s", given);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = 0;   /* "imgs/" is "imgs" */
    snprintf(stage, len, "%s.tmp.%ld", dir, (long)getpid());
    snprintf(old, len, "%s.old.%ld", dir, (long)getpid());
    remove_image_dir(stage);   /* left by a killed process of the same pid */
    st = write_images(stage, x, N, C, H, W, text, should_stop, stop_user, dir);
    if (st == DDPM_OK) {
        struct stat sb;
        int had = lstat(dir, &sb) == 0;
        if (had && rename(dir, old) != 0) {
            st = dd_error(DDPM_ERR_IO, "%s: cannot move the earlier images aside: %s", dir, strerror(errno));
        } else if (rename(stage, dir) != 0) {
            int e = errno;
            int back = !had || rename(old, dir) == 0;
            st = dd_error(DDPM_ERR_IO, "%s: cannot move the new images into place: %s%s%s", dir, strerror(e),
                          back ? "" : "; the earlier images are in ", back ? "" : old);
        } else if (had) {
            remove_image_dir(old);
        }
    }
    if (st != DDPM_OK) remove_image_dir(stage);
done:
    dd_free(dir);
    dd_free(stage);
    dd_free(old);
    return st;
}
