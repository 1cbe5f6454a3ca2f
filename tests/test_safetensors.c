/* test_safetensors.c — safetensors round trips of every dtype, metadata, atomic saves, the unet_tiny
   fixture weights, the f16 / bf16 conversions against independent references, and what ddpm_describe says
   about a file and a model folder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "testutil.h"

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* binary16 value by its definition. */
static double f16_ref_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Nearest binary16 to a finite float by search, ties to even. */
static uint16_t f16_ref_round(float f) {
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7c00;
    int lo = 0, hi = 0x7bff;   /* largest h with value(h) <= a */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (f16_ref_value((uint16_t)mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    if (lo == 0x7bff) return sign | 0x7bff;
    double d0 = a - f16_ref_value((uint16_t)lo), d1 = f16_ref_value((uint16_t)(lo + 1)) - a;
    int h = d0 < d1 ? lo : d1 < d0 ? lo + 1 : (lo & 1 ? lo + 1 : lo);
    return (uint16_t)(sign | h);
}

static uint16_t bf16_ref_round(float f) {
    uint32_t u = fbits(f), lo = u & 0xffff0000u;
    double a = bitsf(lo), b = bitsf(lo + 0x10000u);   /* truncation and the next bf16 away from zero */
    if ((lo & 0x7fffffffu) == 0x7f7f0000u) b = ldexp(1.0, 128) * (signbit(f) ? -1 : 1);  /* next is inf */
    double d0 = fabs((double)f - a), d1 = fabs((double)f - b);
    uint32_t h = lo >> 16;
    if (d1 < d0 || (d1 == d0 && (h & 1))) h++;
    return (uint16_t)h;
}

static void test_dtypes(void) {
    CHECK(ddpm_dtype_size(DDPM_DTYPE_F64) == 8 && ddpm_dtype_size(DDPM_DTYPE_BF16) == 2);
    CHECK(ddpm_dtype_size(DDPM_DTYPE_BOOL) == 1 && ddpm_dtype_size(DDPM_DTYPE_I32) == 4);
    CHECK(strcmp(ddpm_dtype_name(DDPM_DTYPE_BF16), "BF16") == 0);
    CHECK(strcmp(ddpm_dtype_name(DDPM_DTYPE_U8), "U8") == 0);
    /* f16 -> f32: all 65536 values against the definition; f32 -> f16 gives the bits back */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ddpm_f16_to_f32((uint16_t)h);
        double want = f16_ref_value((uint16_t)h);
        if (isnan(want)) {
            if (!isnan(f) || !isnan(ddpm_f16_to_f32(ddpm_f32_to_f16(f)))) bad++;
        } else if ((double)f != want || !signbit(f) != !signbit(want) || ddpm_f32_to_f16(f) != h) {
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d f16 values wrong", bad);
    CHECK(ddpm_f32_to_f16(1.0f) == 0x3c00 && ddpm_f32_to_f16(-2.0f) == 0xc000);
    CHECK(ddpm_f32_to_f16(65504.0f) == 0x7bff && ddpm_f32_to_f16(65519.99f) == 0x7bff);
    CHECK(ddpm_f32_to_f16(65520.0f) == 0x7c00 && ddpm_f32_to_f16(1e6f) == 0x7c00);
    CHECK(ddpm_f32_to_f16(INFINITY) == 0x7c00 && ddpm_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((ddpm_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (ddpm_f32_to_f16(NAN) & 0x3ff) != 0);
    CHECK(ddpm_f32_to_f16(ldexpf(1, -24)) == 0x0001 && ddpm_f32_to_f16(ldexpf(1, -25)) == 0x0000);
    CHECK(ddpm_f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 0x0001 && ddpm_f32_to_f16(ldexpf(3, -25)) == 0x0002);
    CHECK(ddpm_f32_to_f16(-0.0f) == 0x8000 && ddpm_f32_to_f16(ldexpf(1, -14)) == 0x0400);
    CHECK(ddpm_f32_to_f16(1.0f / 3.0f) == 0x3555);
    /* every midpoint between neighbouring halves (exact in float), and the floats on either side */
    bad = 0;
    for (int h = 0; h < 0x7bff; h++)
        for (int s = 0; s < 2; s++) {
            uint16_t sg = s ? 0x8000 : 0;
            float mid = (float)((f16_ref_value((uint16_t)h) + f16_ref_value((uint16_t)(h + 1))) / 2);
            if (s) mid = -mid;
            uint16_t even = (uint16_t)(sg | (h & 1 ? h + 1 : h));
            if (ddpm_f32_to_f16(mid) != even) bad++;
            if (ddpm_f32_to_f16(nextafterf(mid, s ? -INFINITY : INFINITY)) != (sg | (h + 1))) bad++;
            if (ddpm_f32_to_f16(nextafterf(mid, 0)) != (sg | h)) bad++;
        }
    CHECK_MSG(bad == 0, "%d f16 rounding cases wrong", bad);
    /* a sweep over float bit patterns against the search reference */
    bad = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 9973) {
        float f = bitsf((uint32_t)u);
        if (isnan(f)) continue;
        if (ddpm_f32_to_f16(f) != f16_ref_round(f)) bad++;
    }
    CHECK_MSG(bad == 0, "%d f16 sweep values wrong", bad);
    /* bf16 */
    CHECK(ddpm_f32_to_bf16(1.0f) == 0x3f80 && ddpm_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(ddpm_f32_to_bf16(bitsf(0x3f808000u)) == 0x3f80 && ddpm_f32_to_bf16(bitsf(0x3f818000u)) == 0x3f82);
    CHECK(ddpm_f32_to_bf16(bitsf(0x3f808001u)) == 0x3f81 && ddpm_f32_to_bf16(bitsf(0x7f7fffffu)) == 0x7f80);
    CHECK(ddpm_f32_to_bf16(INFINITY) == 0x7f80 && ddpm_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(isnan(ddpm_bf16_to_f32(ddpm_f32_to_bf16(bitsf(0x7f800001u)))));
    CHECK(isnan(ddpm_bf16_to_f32(ddpm_f32_to_bf16(NAN))));
    CHECK(ddpm_f32_to_bf16(bitsf(0x00000001u)) == 0x0000 && ddpm_f32_to_bf16(bitsf(0x00008001u)) == 0x0001);
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ddpm_bf16_to_f32((uint16_t)h);
        if (fbits(f) != h << 16) bad++;
        if (!isnan(f) && ddpm_f32_to_bf16(f) != h) bad++;
    }
    for (uint64_t u = 0; u < 0x100000000ull; u += 7919) {
        float f = bitsf((uint32_t)u);
        if (!isnan(f) && !isinf(f) && ddpm_f32_to_bf16(f) != bf16_ref_round(f)) bad++;
    }
    CHECK_MSG(bad == 0, "%d bf16 values wrong", bad);
}

static uint64_t file_le64(const char *path) {
    uint8_t b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (f) {
        if (fread(b, 1, 8, f) != 8) memset(b, 0, 8);
        fclose(f);
    }
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static void test_round_trip(void) {
    const char *dir = dd_test_tmpdir("st_round_trip");
    char path[1200];
    snprintf(path, sizeof path, "%s/all.safetensors", dir);
    double f64[6] = {1.5, -2.25, 1e300, -0.0, 3.141592653589793, 7};
    float f32[4] = {0.1f, -1e-30f, 65504.0f, 2.0f};
    uint16_t f16[3] = {0x3c00, 0xc000, 0x0001}, bf16[2] = {0x3f80, 0xbf00};
    int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    int32_t i32[2] = {-7, 2147483647};
    int16_t i16[2] = {-32768, 12};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t u8[2] = {0, 255}, b8[3] = {1, 0, 1};
    struct { const char *name; ddpm_dtype dt; int nd; int64_t shape[3]; const void *data; } t[] = {
        {"f64", DDPM_DTYPE_F64, 2, {2, 3}, f64},      {"f32 \"quoted\"\\", DDPM_DTYPE_F32, 1, {4}, f32},
        {"f16", DDPM_DTYPE_F16, 3, {1, 3, 1}, f16},   {"bf16", DDPM_DTYPE_BF16, 1, {2}, bf16},
        {"i64", DDPM_DTYPE_I64, 1, {3}, i64},         {"i32", DDPM_DTYPE_I32, 2, {1, 2}, i32},
        {"i16", DDPM_DTYPE_I16, 1, {2}, i16},         {"i8", DDPM_DTYPE_I8, 1, {3}, i8},
        {"u8", DDPM_DTYPE_U8, 1, {2}, u8},            {"bool", DDPM_DTYPE_BOOL, 1, {3}, b8},
        {"scalar", DDPM_DTYPE_F32, 0, {0}, f32 + 3},  {"empty", DDPM_DTYPE_F32, 2, {0, 5}, NULL},
    };
    int nt = (int)(sizeof t / sizeof t[0]);
    ddpm_st_writer *w = NULL;
    CHECK_OK(ddpm_st_writer_create(&w));
    for (int i = 0; i < nt; i++) CHECK_OK(ddpm_st_writer_add(w, t[i].name, t[i].dt, t[i].nd, t[i].shape, t[i].data));
    CHECK_OK(ddpm_st_writer_set_metadata(w, "format", "pt"));
    CHECK_OK(ddpm_st_writer_set_metadata(w, "note", "line\nbreak \"q\" \xc3\xa9"));
    CHECK_OK(ddpm_st_writer_set_metadata(w, "format", "np"));   /* replaces */
    int64_t sh9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-1};
    CHECK_FAIL(ddpm_st_writer_add(w, "f64", DDPM_DTYPE_F64, 1, sh9, f64), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_st_writer_add(w, "__metadata__", DDPM_DTYPE_F64, 1, sh9, f64), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_st_writer_add(w, "nine", DDPM_DTYPE_F64, 9, sh9, f64), DDPM_ERR_INVALID_ARG);
    CHECK_FAIL(ddpm_st_writer_add(w, "neg", DDPM_DTYPE_F64, 1, neg, f64), DDPM_ERR_INVALID_ARG);
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    CHECK(file_le64(path) % 8 == 0);

    ddpm_safetensors *st = NULL;
    CHECK_OK(ddpm_st_open(path, &st));
    if (!st) return;
    CHECK(ddpm_st_count(st) == nt);
    for (int i = 0; i < nt && i < ddpm_st_count(st); i++) {
        const ddpm_st_tensor *x = ddpm_st_at(st, i);
        CHECK_MSG(strcmp(x->name, t[i].name) == 0, "tensor %d is '%s', want '%s'", i, x->name, t[i].name);
        CHECK(x->dtype == t[i].dt && x->ndim == t[i].nd);
        int64_t n = 1;
        for (int d = 0; d < t[i].nd; d++) {
            CHECK(x->shape[d] == t[i].shape[d]);
            n *= t[i].shape[d];
        }
        CHECK(x->numel == n && x->nbytes == (uint64_t)n * ddpm_dtype_size(t[i].dt));
        CHECK(ddpm_st_find(st, t[i].name) == x);
        if (n) CHECK(memcmp(ddpm_st_data(st, x), t[i].data, (size_t)x->nbytes) == 0);
    }
    CHECK(ddpm_st_find(st, "nope") == NULL && ddpm_st_at(st, nt) == NULL && ddpm_st_at(st, -1) == NULL);
    CHECK(ddpm_st_metadata_count(st) == 3);   /* format, note and the data's crc32 */
    CHECK(ddpm_st_metadata_get(st, DDPM_ST_CRC_KEY) && strlen(ddpm_st_metadata_get(st, DDPM_ST_CRC_KEY)) == 8);
    CHECK(ddpm_st_metadata_get(st, "format") && strcmp(ddpm_st_metadata_get(st, "format"), "np") == 0);
    CHECK(ddpm_st_metadata_get(st, "note") && strcmp(ddpm_st_metadata_get(st, "note"), "line\nbreak \"q\" \xc3\xa9") == 0);
    const char *k = NULL, *v = NULL;
    ddpm_st_metadata_at(st, 0, &k, &v);
    CHECK(k && strcmp(k, "format") == 0);
    CHECK(ddpm_st_metadata_get(st, "absent") == NULL);

    double d[6];
    float f[6];
    int64_t q[3];
    CHECK_OK(ddpm_st_read_f64(st, "f64", d, 6));
    CHECK(memcmp(d, f64, sizeof d) == 0);
    CHECK_OK(ddpm_st_read_f32(st, "f64", f, 6));
    CHECK(f[0] == 1.5f && isinf(f[2]));
    CHECK_OK(ddpm_st_read_f32(st, "f16", f, 3));
    CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == ldexpf(1, -24));
    CHECK_OK(ddpm_st_read_f64(st, "bf16", d, 2));
    CHECK(d[0] == 1.0 && d[1] == -0.5);
    CHECK_OK(ddpm_st_read_f32(st, "f32 \"quoted\"\\", f, 4));
    CHECK(memcmp(f, f32, 4 * sizeof(float)) == 0);
    CHECK_OK(ddpm_st_read_f32(st, "scalar", f, 1));
    CHECK(f[0] == 2.0f);
    CHECK_OK(ddpm_st_read_f32(st, "empty", f, 0));
    CHECK_OK(ddpm_st_read_i64(st, "i64", q, 3));
    CHECK(q[0] == INT64_MIN && q[1] == -1 && q[2] == INT64_MAX);
    CHECK_OK(ddpm_st_read_i64(st, "i32", q, 2));
    CHECK(q[0] == -7 && q[1] == 2147483647);
    CHECK_OK(ddpm_st_read_i64(st, "i16", q, 2));
    CHECK(q[0] == -32768 && q[1] == 12);
    CHECK_OK(ddpm_st_read_i64(st, "i8", q, 3));
    CHECK(q[0] == -128 && q[2] == 127);
    CHECK_OK(ddpm_st_read_i64(st, "u8", q, 2));
    CHECK(q[1] == 255);
    CHECK_OK(ddpm_st_read_i64(st, "bool", q, 3));
    CHECK(q[0] == 1 && q[1] == 0 && q[2] == 1);
    CHECK_FAIL(ddpm_st_read_f32(st, "i32", f, 2), DDPM_ERR_FORMAT);       /* wrong kind */
    CHECK_FAIL(ddpm_st_read_i64(st, "f64", q, 3), DDPM_ERR_FORMAT);
    CHECK_FAIL(ddpm_st_read_f64(st, "f64", d, 5), DDPM_ERR_FORMAT);       /* count mismatch */
    CHECK(strstr(ddpm_last_error(), "'f64'") && strstr(ddpm_last_error(), "[2, 3]"));
    CHECK_FAIL(ddpm_st_read_f32(st, "missing", f, 1), DDPM_ERR_FORMAT);
    CHECK(strstr(ddpm_last_error(), "missing") != NULL);

    /* the same bytes from memory */
    uint8_t *bytes = NULL;
    size_t len = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        fseek(fp, 0, SEEK_END);
        len = (size_t)ftell(fp);
        fseek(fp, 0, SEEK_SET);
        bytes = malloc(len);
        if (fread(bytes, 1, len, fp) != len) len = 0;
        fclose(fp);
    }
    ddpm_safetensors *sm = NULL;
    CHECK_OK(ddpm_st_open_memory(bytes, len, &sm));
    CHECK(ddpm_st_count(sm) == nt);
    ddpm_st_close(sm);
    free(bytes);
    ddpm_st_close(st);
    ddpm_st_close(NULL);
    ddpm_st_writer_free(NULL);

    /* an empty writer makes a valid file with no tensors */
    CHECK_OK(ddpm_st_writer_create(&w));
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    CHECK_OK(ddpm_st_open(path, &st));
    CHECK(ddpm_st_count(st) == 0 && ddpm_st_metadata_count(st) == 1);   /* the crc32 of no data */
    CHECK(strcmp(ddpm_st_metadata_get(st, DDPM_ST_CRC_KEY), "00000000") == 0);
    ddpm_st_close(st);
    /* a flipped bit in the data of a file this library wrote is found on load */
    {
        uint8_t *buf = NULL;
        size_t flen = 0;
        snprintf(path, sizeof path, "%s/crc.safetensors", dir);
        const float one[2] = {1.0f, 2.0f};
        const int64_t shape[1] = {2};
        CHECK_OK(ddpm_st_writer_create(&w));
        CHECK_OK(ddpm_st_writer_add(w, "w", DDPM_DTYPE_F32, 1, shape, one));
        CHECK_OK(ddpm_st_writer_save(w, path));
        ddpm_st_writer_free(w);
        CHECK_OK(dd_read_file(path, 0, &buf, &flen));
        if (buf && flen > 4) {
            buf[flen - 1] ^= 0x01;
            CHECK_FAIL(ddpm_st_open_memory(buf, flen, &st), DDPM_ERR_FORMAT);
            CHECK(strstr(ddpm_last_error(), "the data is corrupt") != NULL);
        }
        dd_free(buf);
    }
}

static int same_file(const char *path, const void *want, size_t n) {
    uint8_t buf[256];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return got == n && memcmp(buf, want, n) == 0;
}

static size_t read_small(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void test_atomic_save(void) {
    const char *dir = dd_test_tmpdir("st_atomic");
    char path[1200], tmp[1300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    float a[2] = {1, 2}, b[2] = {3, 4};
    int64_t shape[1] = {2};
    ddpm_st_writer *w = NULL;
    CHECK_OK(ddpm_st_writer_create(&w));
    CHECK_OK(ddpm_st_writer_add(w, "w", DDPM_DTYPE_F32, 1, shape, a));
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    uint8_t before[256];
    size_t nb = read_small(path, before, sizeof before);
    CHECK(nb > 8);

    CHECK_OK(ddpm_st_writer_create(&w));
    CHECK_OK(ddpm_st_writer_add(w, "w", DDPM_DTYPE_F32, 1, shape, b));
    /* the temporary file cannot be created: a directory stands in its place (works even as root) */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(mkdir(tmp, 0755) == 0);
    CHECK_FAIL(ddpm_st_writer_save(w, path), DDPM_ERR_IO);
    CHECK(same_file(path, before, nb));
    rmdir(tmp);
    /* an unwritable directory (meaningful only when not root) */
    if (geteuid() != 0) {
        CHECK(chmod(dir, 0555) == 0);
        CHECK_FAIL(ddpm_st_writer_save(w, path), DDPM_ERR_IO);
        CHECK(same_file(path, before, nb));
        CHECK(chmod(dir, 0755) == 0);
    }
    /* a directory that does not exist */
    snprintf(tmp, sizeof tmp, "%s/no/such/dir/x.safetensors", dir);
    CHECK_FAIL(ddpm_st_writer_save(w, tmp), DDPM_ERR_IO);
    /* and a save that works replaces the file */
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    ddpm_safetensors *st = NULL;
    CHECK_OK(ddpm_st_open(path, &st));
    float got[2] = {0, 0};
    CHECK_OK(ddpm_st_read_f32(st, "w", got, 2));
    CHECK(got[0] == 3 && got[1] == 4);
    ddpm_st_close(st);
}

static void test_fixture(void) {
    ddpm_safetensors *st = NULL;
    CHECK_OK(ddpm_st_open(dd_test_data("io/unet_tiny_weights.safetensors"), &st));
    if (!st) return;
    CHECK(ddpm_st_count(st) == 144);
    const ddpm_st_tensor *t = ddpm_st_at(st, 0);
    CHECK(t && strcmp(t->name, "conv_in.weight") == 0 && t->dtype == DDPM_DTYPE_F32 && t->ndim == 4);
    CHECK(t && t->shape[0] == 8 && t->shape[1] == 3 && t->shape[2] == 3 && t->shape[3] == 3 && t->offset == 0);
    t = ddpm_st_at(st, 143);
    CHECK(t && strcmp(t->name, "conv_out.bias") == 0 && t->offset == 181024 && t->nbytes == 12);
    uint64_t prev = 0;
    double sum = 0;
    for (int i = 0; i < ddpm_st_count(st); i++) {
        t = ddpm_st_at(st, i);
        CHECK(t->offset >= prev);
        prev = t->offset + t->nbytes;
        float *buf = malloc((size_t)t->numel * sizeof(float));
        CHECK_OK(ddpm_st_read_f32(st, t->name, buf, t->numel));
        for (int64_t j = 0; j < t->numel; j++) sum += buf[j];
        free(buf);
    }
    CHECK_MSG(fabs(sum - 322.2615309275134) < 1e-9, "sum of weights %.17g", sum);
    float w[4];
    CHECK_FAIL(ddpm_st_read_f32(st, "conv_in.weight", w, 4), DDPM_ERR_FORMAT);
    float all[216];
    CHECK_OK(ddpm_st_read_f32(st, "conv_in.weight", all, 216));
    CHECK(all[0] == -0.1397193968296051f && all[3] == -0.14295703172683716f);
    CHECK(ddpm_st_metadata_get(st, "fixture") && strcmp(ddpm_st_metadata_get(st, "fixture"), "unet_tiny") == 0);
    ddpm_st_close(st);

    CHECK_OK(ddpm_st_open(dd_test_data("io/unet_tiny_inputs.safetensors"), &st));
    if (!st) return;
    int64_t ts[2];
    CHECK_OK(ddpm_st_read_i64(st, "timesteps", ts, 2));
    CHECK(ts[0] == 10 && ts[1] == 900);
    float x[2 * 3 * 8 * 8];
    CHECK_OK(ddpm_st_read_f32(st, "x", x, 2 * 3 * 8 * 8));
    CHECK(x[0] == 0.12550348043441772f && x[1] == -1.271277904510498f);
    ddpm_st_close(st);
}

/* ddpm_describe: the table, totals and metadata of a file with escaped hostile names; a model folder. */
static void test_describe(void) {
    const char *dir = dd_test_tmpdir("st_describe");
    char path[1200], model_dir[1200];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    snprintf(model_dir, sizeof model_dir, "%s/model", dir);
    float v[6] = {0};
    int64_t shape[2] = {2, 3}, big[1] = {1234};
    float *zeros = calloc(1234, sizeof(float));
    ddpm_st_writer *w = NULL;
    CHECK_OK(ddpm_st_writer_create(&w));
    CHECK_OK(ddpm_st_writer_add(w, "weight", DDPM_DTYPE_F32, 2, shape, v));
    CHECK_OK(ddpm_st_writer_add(w, "evil\x1b[31m", DDPM_DTYPE_F32, 1, big, zeros));
    CHECK_OK(ddpm_st_writer_set_metadata(w, "note", "caf\xc3\xa9\x07"));
    CHECK_OK(ddpm_st_writer_save(w, path));
    ddpm_st_writer_free(w);
    free(zeros);
    char *text = NULL;
    CHECK_OK(ddpm_describe(path, &text));
    CHECK_MSG(text && strncmp(text, "name          dtype  shape   numel\n", 35) == 0, "'%s'", text ? text : "");
    CHECK(text && strstr(text, "weight        F32    [2, 3]      6\n") != NULL);
    CHECK(text && strstr(text, "evil\\x1b[31m  F32    [1234]  1,234\n") != NULL);
    CHECK(text && strstr(text, "\n2 tensors, 1,240 parameters, 4,960 bytes of data (4.8 KiB)\n") != NULL);
    CHECK(text && strstr(text, "\nmetadata:\n") && strstr(text, "  note: caf\xc3\xa9\\x07\n") != NULL);
    CHECK(text && !strchr(text, 0x1b) && !strchr(text, 0x07));
    ddpm_free(text);
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_load("tiny", 1, &m));
    CHECK_OK(ddpm_model_save(m, model_dir, NULL, DDPM_PRED_EPS));
    ddpm_model_free(m);
    CHECK_OK(ddpm_describe(model_dir, &text));
    CHECK_MSG(text && strstr(text, "UNet2DModel") && strstr(text, "\nclasses: none (unconditional)\n") &&
              strstr(text, "\nscheduler: DDPMScheduler, T = 1000, prediction epsilon, clip_sample true\n"),
              "'%s'", text ? text : "");
    ddpm_free(text);
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK_FAIL(ddpm_describe(path, &text), DDPM_ERR_IO);
    CHECK(text == NULL);
    dd_test_remove_dir(dir);
}

int main(void) {
    test_dtypes();
    test_round_trip();
    test_atomic_save();
    test_fixture();
    test_describe();
    return dd_test_finish("test_safetensors");
}
