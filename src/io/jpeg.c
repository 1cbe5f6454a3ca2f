/* jpeg.c — JPEG reading through libjpeg(-turbo): 8-bit gray or RGB out, CMYK/YCCK refused. libjpeg's
   longjmp error handling stays inside this file and its messages go to the error text, never to stderr. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "core/core.h"

#define JPEG_MAX_DIM 16384            /* per side; bounds memory for hostile files */
#define JPEG_MAX_FILE (1u << 30)
#define JPEG_MAX_SCANS 512            /* progressive files with more scans are hostile (each one re-walks
                                         the whole coefficient buffer) */
/* Huffman-coded JPEG spends at least one bit per 8x8 block and component, so a file holds at most 512
   pixels per byte; twice that, plus a megapixel of slack for small files, is the sanity bound. */
#define JPEG_MAX_PIXELS_PER_BYTE 1024.0
#define JPEG_PIXEL_SLACK (1u << 20)
#define JPEG_MEMORY_NAME "<memory>"

/* The decoder and everything a longjmp must find. Lives on the heap so that it is valid after one. */
typedef struct {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX + 96];   /* the error text */
    char warn[JMSG_LENGTH_MAX];       /* the last harmless warning, added to a later error */
    uint8_t *pixels;                  /* decoded image (freed on error) */
    ddpm_status refused;              /* set before a longjmp that is not a format error */
} jpeg_ctx;

static jpeg_ctx *ctx_of(j_common_ptr cinfo) {
    return (jpeg_ctx *)cinfo->client_data;
}

static void fail(jpeg_ctx *c, const char *text) {
    int w = c->warn[0] != 0;
    snprintf(c->msg, sizeof c->msg, "%s%s%s%s", text, w ? " (after: " : "", c->warn, w ? ")" : "");
    longjmp(c->jmp, 1);
}

static void on_error_exit(j_common_ptr cinfo) {
    char text[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, text);
    fail(ctx_of(cinfo), text);
}

/* The library never prints. */
static void on_output_message(j_common_ptr cinfo) {
    (void)cinfo;
}

/* Warnings that mean the pixels are wrong (missing or undecodable data) end the decode; the others
   (extra bytes before a marker, an odd JFIF version, a bad ICC profile) are kept for the message. */
static void on_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;   /* trace messages */
    jpeg_ctx *c = ctx_of(cinfo);
    char text[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, text);
    cinfo->err->num_warnings++;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF: fail(c, "unexpected end of file (truncated JPEG)"); break;
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC: fail(c, text); break;
    default: snprintf(c->warn, sizeof c->warn, "%s", text); break;
    }
}

static void on_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        char text[96];
        snprintf(text, sizeof text, "more than %d progressive scans (hostile file)", JPEG_MAX_SCANS);
        fail(ctx_of(cinfo), text);
    }
}

static const char *space_name(J_COLOR_SPACE s) {
    switch (s) {
    case JCS_GRAYSCALE: return "gray";
    case JCS_RGB: return "RGB";
    case JCS_YCbCr: return "YCbCr";
    case JCS_CMYK: return "CMYK";
    case JCS_YCCK: return "YCCK";
    default: return "unknown";
    }
}

/* Decodes c's input into c->pixels. A failure inside libjpeg comes back through the longjmp. */
static ddpm_status decode(jpeg_ctx *c, const uint8_t *buf, size_t len, const char *src, int *w_out,
                          int *h_out, int *ch_out) {
    if (len < 3 || buf[0] != 0xFF || buf[1] != 0xD8 || buf[2] != 0xFF)
        return dd_error(DDPM_ERR_FORMAT, "%s: not a JPEG file (%s)", src, len == 0 ? "empty" : "bad signature");
    if (len > JPEG_MAX_FILE)
        return dd_error(DDPM_ERR_FORMAT, "%s: JPEG of %zu bytes exceeds the limit of %u bytes", src, len,
                        JPEG_MAX_FILE);
    struct jpeg_decompress_struct *d = &c->cinfo;
    d->err = jpeg_std_error(&c->err);
    c->err.error_exit = on_error_exit;
    c->err.output_message = on_output_message;
    c->err.emit_message = on_emit_message;
    d->client_data = c;
    if (setjmp(c->jmp)) {
        jpeg_destroy_decompress(d);
        dd_free(c->pixels);
        c->pixels = NULL;
        if (c->refused != DDPM_OK) return c->refused;
        return dd_error(DDPM_ERR_FORMAT, "%s: invalid JPEG: %s", src, c->msg);
    }
    jpeg_create_decompress(d);
    c->progress.progress_monitor = on_progress;
    d->progress = &c->progress;
    jpeg_mem_src(d, buf, (unsigned long)len);
    if (jpeg_read_header(d, TRUE) != JPEG_HEADER_OK) fail(c, "no image in the file (tables only)");
    JDIMENSION width = d->image_width, height = d->image_height;
    if (width == 0 || height == 0 || width > JPEG_MAX_DIM || height > JPEG_MAX_DIM) {
        char text[128];
        snprintf(text, sizeof text, "image of %lux%lu pixels exceeds the limit of %dx%d", (unsigned long)width,
                 (unsigned long)height, JPEG_MAX_DIM, JPEG_MAX_DIM);
        fail(c, text);
    }
    double pixels = (double)width * (double)height;
    if (pixels > JPEG_MAX_PIXELS_PER_BYTE * (double)len + JPEG_PIXEL_SLACK) {
        char text[192];
        snprintf(text, sizeof text, "%lux%lu image cannot fit in a file of %zu bytes (truncated or hostile)",
                 (unsigned long)width, (unsigned long)height, len);
        fail(c, text);
    }
    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE: d->out_color_space = JCS_GRAYSCALE; break;
    case JCS_RGB:
    case JCS_YCbCr: d->out_color_space = JCS_RGB; break;
    default: {
        /* a 4-channel (CMYK or YCCK, as Adobe writes them) or unknown colour space */
        c->refused = dd_error(DDPM_ERR_UNSUPPORTED, "%s: %s JPEG with %d components is not supported (only "
                               "gray and RGB/YCbCr); convert it to RGB", src, space_name(d->jpeg_color_space),
                               d->num_components);
        longjmp(c->jmp, 1);
    }
    }
    d->dct_method = JDCT_ISLOW;   /* the accurate integer IDCT: the same pixels on every machine */
    jpeg_start_decompress(d);
    int ch = d->output_components;
    if ((ch != 1 && ch != 3) || d->output_width != width || d->output_height != height)
        fail(c, "unexpected layout after colour conversion");
    size_t stride = (size_t)width * (size_t)ch;   /* <= 16384 * 3: no overflow below */
    c->pixels = dd_alloc(stride * height);
    if (!c->pixels) {
        char text[96];
        snprintf(text, sizeof text, "out of memory for %lux%lu pixels", (unsigned long)width,
                 (unsigned long)height);
        fail(c, text);
    }
    while (d->output_scanline < height) {
        JSAMPROW row = c->pixels + (size_t)d->output_scanline * stride;
        if (jpeg_read_scanlines(d, &row, 1) != 1) fail(c, "decoder returned no scanline");
    }
    jpeg_finish_decompress(d);
    jpeg_destroy_decompress(d);
    *w_out = (int)width;
    *h_out = (int)height;
    *ch_out = ch;
    return DDPM_OK;
}

static ddpm_status read_memory(const void *buf, size_t len, const char *src, ddpm_image *out) {
    jpeg_ctx *c = dd_calloc(1, sizeof *c);
    if (!c) return DDPM_ERR_NOMEM;
    int w = 0, h = 0, ch = 0;
    ddpm_status s = decode(c, buf, len, src, &w, &h, &ch);
    if (s == DDPM_OK) {
        out->width = w;
        out->height = h;
        out->channels = ch;
        out->pixels = c->pixels;
    }
    dd_free(c);
    return s;
}

ddpm_status ddpm_jpeg_read_memory(const void *buf, size_t len, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_jpeg_read_memory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_jpeg_read_memory: buf is NULL");
    return read_memory(buf, len, JPEG_MEMORY_NAME, out);
}

ddpm_status ddpm_jpeg_read(const char *path, ddpm_image *out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_jpeg_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_jpeg_read: path is NULL");
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status s = dd_read_file(path, JPEG_MAX_FILE, &buf, &len);
    if (s != DDPM_OK) return s;
    s = read_memory(buf, len, path, out);
    dd_free(buf);
    return s;
}
