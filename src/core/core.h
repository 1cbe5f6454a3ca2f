/* core.h — internal core services: error messages, allocation, arenas, threads. */
#ifndef DD_CORE_H
#define DD_CORE_H

#include <stddef.h>
#include <stdint.h>
#include "ddpm.h"

#if defined(__GNUC__) || defined(__clang__)
#define DD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DD_PRINTF(a, b)
#endif

/* Sets this thread's error message (printf-style) and returns `status`, so that a failure is
   `return dd_error(DDPM_ERR_FORMAT, "%s: header length %llu exceeds file size", path, n);` */
ddpm_status dd_error(ddpm_status status, const char *fmt, ...) DD_PRINTF(2, 3);
/* Prefixes the current message with "<prefix>: " and returns status (for adding a file name). */
ddpm_status dd_error_prefix(ddpm_status status, const char *prefix);

/* Allocation through the allocator hook. dd_alloc / dd_calloc set DDPM_ERR_NOMEM's message on
   failure (caller returns DDPM_ERR_NOMEM). Sizes are checked for overflow. */
void *dd_alloc(size_t size);
void *dd_calloc(size_t count, size_t size);
void *dd_realloc(void *ptr, size_t size);
void dd_free(void *ptr);
char *dd_strdup(const char *s);
/* a * b with overflow detection: returns 0 and sets *out on success, -1 on overflow. */
int dd_mul_size(size_t a, size_t b, size_t *out);

/* The thread policy (threads.c). dd_threads_update re-measures the load of other processes (auto mode only, at
   most every 0.25 s) and sets the OpenMP count; ddpm_model_forward calls it. dd_threads_update_now measures now;
   dd_threads_forget drops the previous sample (the next measure is a first one). dd_threads_target is the rule:
   clamp(floor(cores - other + 0.3), 1, max), `other` in cores. */
void dd_threads_update(void);
void dd_threads_update_now(void);
void dd_threads_forget(void);
int dd_threads_target(int cores, double other, int max);

/* Arena: one block, bump allocation aligned to 64 bytes, freed all at once. */
typedef struct {
    uint8_t *base;
    size_t size, used;
} dd_arena;
ddpm_status dd_arena_init(dd_arena *a, size_t size);
void *dd_arena_alloc(dd_arena *a, size_t size);   /* NULL (with message) when full */
void dd_arena_reset(dd_arena *a);
void dd_arena_free(dd_arena *a);

/* Tensor view: borrowed float data with up to 4 dims, NCHW. */
typedef struct {
    float *data;
    int ndim;
    int64_t shape[4];
} dd_tensor;
dd_tensor dd_tensor_view(float *data, int ndim, const int64_t *shape);
int64_t dd_tensor_numel(const dd_tensor *t);

/* Whole-file helpers (bounded by max_size; 0 = no bound). */
ddpm_status dd_read_file(const char *path, size_t max_size, uint8_t **data, size_t *len);
/* The one output writer (ddpm_write_file in ddpm.h): a missing path or a regular file is replaced atomically
   (PATH.tmp.<pid>, fsync, rename; on failure PATH is untouched and the temp removed); a symbolic link is kept
   and the rule applied to what it names; a character device or FIFO is written through; anything else
   (a directory, a block device, a socket, a dangling link) is refused. */
ddpm_status dd_write_file_atomic(const char *path, const void *data, size_t len);
/* mkdir -p (ddpm_make_dirs) */
ddpm_status dd_make_dirs(const char *path);
/* dir + "/" + name (no doubled slash), dd_alloc'ed; NULL with a message on failure. */
char *dd_path_join(const char *dir, const char *name);
int dd_is_dir(const char *path);    /* 1 if path is a directory */
int dd_is_file(const char *path);   /* 1 if path is a regular file */
/* qsort comparator of C strings (an array of char *), by strcmp. */
int dd_cmp_str(const void *a, const void *b);
/* zlib crc32 of n bytes, continued from crc (0 to start). */
uint32_t dd_crc32(uint32_t crc, const void *data, uint64_t n);

/* Tensor descriptions for messages (io/safetensors.c): "[4, 3, 3, 3]" (cut to cap), and whether a dtype is
   F64, F32, F16 or BF16. */
const char *dd_shape_text(char *buf, size_t cap, int ndim, const int64_t *shape);
int dd_dtype_is_float(ddpm_dtype t);

/* A growing text buffer (the JSON files and headers the library writes). A failed allocation is sticky
   (failed = 1) and reported once by dd_text_finish. Start from {0}. */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} dd_text;
void dd_text_printf(dd_text *t, const char *fmt, ...) DD_PRINTF(2, 3);
void dd_text_put(dd_text *t, const char *s, size_t n);
void dd_text_string(dd_text *t, const char *s);   /* a JSON string literal: quotes, \\, control bytes escaped */
void dd_text_number(dd_text *t, double v);        /* shortest round-trip digits, Python's float repr */
/* Hands the NUL-terminated text to *out (dd_alloc'ed) or frees it and returns DDPM_ERR_NOMEM. */
ddpm_status dd_text_finish(dd_text *t, char **out);
/* gunzip a gzip buffer (or copy if not gzip) with an output bound. */
ddpm_status dd_maybe_gunzip(const uint8_t *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len,
                            const char *what);

/* Layout conversion of float images on the host (layout.c): NCHW [N, C, H, W] <-> NHWC [N, H, W, C]. */
void dd_nchw_to_nhwc(float *out, const float *inp, int N, int C, int H, int W);
void dd_nhwc_to_nchw(float *out, const float *inp, int N, int H, int W, int C);

#endif
