/* test_malformed.c — hostile and broken files: each case must fail with a specific status and a message
   that names the problem (safetensors, IDX, CIFAR-10, PNG, datasets). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "testutil.h"

static int cases = 0;

/* The call must fail with `want` and a message containing `needle`. */
#define EXPECT(expr, want, needle)                                                                           \
    do {                                                                                                     \
        cases++;                                                                                             \
        CHECK_FAIL(expr, want);                                                                              \
        CHECK_MSG(strstr(ddpm_last_error(), needle) != NULL, "message '%s' lacks '%s'", ddpm_last_error(),   \
                  needle);                                                                                   \
    } while (0)

/* A safetensors file: header text padded with spaces to 8 bytes, then data_len bytes of data. */
static uint8_t *st_file(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header), hp = (h + 7) / 8 * 8;
    *len = 8 + hp + data_len;
    uint8_t *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hp >> (8 * i));
    memset(b + 8, ' ', hp);
    memcpy(b + 8, header, h);
    return b;
}

static ddpm_status st_try(const char *header, size_t data_len) {
    size_t len;
    uint8_t *b = st_file(header, data_len, &len);
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open_memory(b, len, &st);
    ddpm_st_close(st);
    free(b);
    return s;
}

static ddpm_status st_raw(const uint8_t *b, size_t len) {
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open_memory(b, len, &st);
    ddpm_st_close(st);
    return s;
}

static void test_safetensors(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    dd_write_bytes(path, "", 0);
    ddpm_safetensors *st = NULL;
    EXPECT(ddpm_st_open(path, &st), DDPM_ERR_FORMAT, "too short");
    EXPECT(ddpm_st_open("/nonexistent/model.safetensors", &st), DDPM_ERR_IO, "/nonexistent/model.safetensors");
    EXPECT(st_raw((const uint8_t *)"\x10\0\0\0\0", 5), DDPM_ERR_FORMAT, "too short");
    uint8_t big[16] = {0, 0, 0, 0, 1, 0, 0, 0, '{', '}'};   /* 2^32-byte header */
    EXPECT(st_raw(big, sizeof big), DDPM_ERR_FORMAT, "exceeds the limit");
    uint8_t past[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    EXPECT(st_raw(past, sizeof past), DDPM_ERR_FORMAT, "runs past the end");
    uint8_t zero[16] = {0};
    EXPECT(st_raw(zero, sizeof zero), DDPM_ERR_FORMAT, "header length is 0");
    EXPECT(st_try("{\"a\": {\"dtype\": \"F32\",", 0), DDPM_ERR_FORMAT, "not valid JSON");
    EXPECT(st_try("[1, 2, 3]", 0), DDPM_ERR_FORMAT, "not an object");
    EXPECT(st_try("{} x", 0), DDPM_ERR_FORMAT, "unexpected bytes after the JSON");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2), DDPM_ERR_UNSUPPORTED,
           "dtype 'F8_E4M3'");
    EXPECT(st_try("{\"w\":{\"dtype\":\"float\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), DDPM_ERR_UNSUPPORTED,
           "tensor 'w'");
    EXPECT(st_try("{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8), DDPM_ERR_FORMAT, "dtype");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), DDPM_ERR_FORMAT,
           "not a non-negative integer");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), DDPM_ERR_FORMAT,
           "shape entry 0");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8), DDPM_ERR_FORMAT,
           "shape entry 0");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8), DDPM_ERR_FORMAT, "shape");
    EXPECT(st_try("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1),
           DDPM_ERR_UNSUPPORTED, "9 dimensions");
    EXPECT(st_try("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,1]}}",
                  1), DDPM_ERR_FORMAT, "too many elements");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,1]}}", 1),
           DDPM_ERR_FORMAT, "too many elements");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F64\",\"shape\":[1e300],\"data_offsets\":[0,1]}}", 1),
           DDPM_ERR_FORMAT, "shape entry 0");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), DDPM_ERR_FORMAT,
           "run past the end of the data");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8), DDPM_ERR_FORMAT,
           "begin after end");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), DDPM_ERR_FORMAT,
           "data_offsets");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8), DDPM_ERR_FORMAT,
           "data_offsets");
    EXPECT(st_try("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), DDPM_ERR_FORMAT, "overlap");
    /* the format has no holes: a gap between tensors, data before the first or after the last is refused */
    EXPECT(st_try("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12), DDPM_ERR_FORMAT,
           "4 bytes of the data at [4, 8) belong to no tensor");
    EXPECT(st_try("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), DDPM_ERR_FORMAT,
           "belong to no tensor");
    EXPECT(st_try("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12), DDPM_ERR_FORMAT,
           "8 bytes after the last tensor");
    EXPECT(st_try("{\"conv_in.weight\":{\"dtype\":\"F32\",\"shape\":[4,3,3,3],\"data_offsets\":[0,100]}}", 100),
           DDPM_ERR_FORMAT, "<memory>: tensor 'conv_in.weight': data_offsets [0, 100] but shape [4, 3, 3, 3] "
           "with F32 needs 432 bytes");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), DDPM_ERR_FORMAT,
           "'w' appears twice");
    EXPECT(st_try("{\"__metadata__\":{\"a\":1}}", 0), DDPM_ERR_FORMAT, "__metadata__ value of 'a'");
    EXPECT(st_try("{\"__metadata__\":[\"a\"]}", 0), DDPM_ERR_FORMAT, "__metadata__ is not a JSON object");
    EXPECT(st_try("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0), DDPM_ERR_FORMAT, "key 'a' appears twice");
    EXPECT(st_try("{\"__metadata__\":{},\"__metadata__\":{}}", 0), DDPM_ERR_FORMAT, "__metadata__ appears twice");
    EXPECT(st_try("{\"w\":[1,2]}", 0), DDPM_ERR_FORMAT, "not a JSON object");
    EXPECT(st_try("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), DDPM_ERR_FORMAT, "data_offsets");
    /* a real file, truncated: its last tensor now runs past the end */
    snprintf(path, sizeof path, "%s", dd_test_data("io/unet_tiny_inputs.safetensors"));
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    EXPECT(st_raw(buf, n - 1), DDPM_ERR_FORMAT, "'target'");
}

static ddpm_status idx_try(const uint8_t *b, size_t len) {
    ddpm_idx x;
    ddpm_status s = ddpm_idx_read_memory(b, len, &x);
    ddpm_idx_free(&x);
    return s;
}

static ddpm_status cifar_try(const uint8_t *b, size_t len) {
    ddpm_cifar c;
    ddpm_status s = ddpm_cifar_read_memory(b, len, &c);
    ddpm_cifar_free(&c);
    return s;
}

static void test_idx_cifar(const char *dir) {
    uint8_t img[16 + 784 + 8];
    const uint8_t hdr[16] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28};
    memcpy(img, hdr, 16);
    memset(img + 16, 9, 784 + 8);
    CHECK_OK(idx_try(img, 16 + 784));
    EXPECT(idx_try(img, 16 + 700), DDPM_ERR_FORMAT, "expected 784 bytes, found 700");
    EXPECT(idx_try(img, 16 + 784 + 8), DDPM_ERR_FORMAT, "trailing");
    uint8_t bad[16];
    memcpy(bad, hdr, 16);
    bad[0] = 0x1e;
    EXPECT(idx_try(bad, 16), DDPM_ERR_FORMAT, "magic");
    memcpy(bad, hdr, 16);
    bad[2] = 0x0D;
    EXPECT(idx_try(bad, 16), DDPM_ERR_UNSUPPORTED, "float");
    bad[2] = 0x07;
    EXPECT(idx_try(bad, 16), DDPM_ERR_FORMAT, "data type 0x07");
    memcpy(bad, hdr, 16);
    bad[3] = 0;
    EXPECT(idx_try(bad, 16), DDPM_ERR_FORMAT, "0 dimensions");
    bad[3] = 5;
    EXPECT(idx_try(bad, 16), DDPM_ERR_UNSUPPORTED, "5 dimensions");
    EXPECT(idx_try(hdr, 10), DDPM_ERR_FORMAT, "truncated IDX header");
    EXPECT(idx_try(hdr, 0), DDPM_ERR_FORMAT, "too short");
    memcpy(bad, hdr, 16);
    bad[4] = 0x80;   /* count >= 2^31 */
    EXPECT(idx_try(bad, 16), DDPM_ERR_FORMAT, "dimension 0");
    memcpy(bad, hdr, 16);
    bad[4] = 0x7f;   /* 2^31 - 1 images of 28 x 28: far more than the file */
    EXPECT(idx_try(bad, 16), DDPM_ERR_FORMAT, "expected more than");
    size_t gl = 0;
    uint8_t *gz = dd_test_gzip(img, 16 + 784, &gl);
    CHECK_OK(idx_try(gz, gl));
    EXPECT(idx_try(gz, gl / 2), DDPM_ERR_FORMAT, "truncated");
    gz[gl / 2] ^= 0xff;
    gz[gl / 2 + 1] ^= 0x55;
    EXPECT(idx_try(gz, gl), DDPM_ERR_FORMAT, "gzip");
    free(gz);
    const uint8_t junk_gz[12] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff};
    EXPECT(idx_try(junk_gz, sizeof junk_gz), DDPM_ERR_FORMAT, "gzip");
    char path[1200];
    snprintf(path, sizeof path, "%s/empty-idx", dir);
    dd_write_bytes(path, "", 0);
    ddpm_idx x;
    EXPECT(ddpm_idx_read(path, &x), DDPM_ERR_FORMAT, "empty-idx");
    EXPECT(ddpm_idx_read("/nonexistent/train-images-idx3-ubyte", &x), DDPM_ERR_IO, "/nonexistent/train-images");

    uint8_t *rec = calloc(3, 3073);
    EXPECT(cifar_try(rec, 3072), DDPM_ERR_FORMAT, "not a whole number of CIFAR-10 records");
    EXPECT(cifar_try(rec, 3 * 3073 - 1), DDPM_ERR_FORMAT, "2 records and 3072 bytes left over");
    rec[3073] = 12;
    EXPECT(cifar_try(rec, 3 * 3073), DDPM_ERR_FORMAT, "record 1 has label 12");
    EXPECT(cifar_try(rec, 0), DDPM_ERR_FORMAT, "empty");
    rec[3073] = 0;
    gz = dd_test_gzip(rec, 3073 + 100, &gl);
    EXPECT(cifar_try(gz, gl), DDPM_ERR_FORMAT, "3173 bytes");
    free(gz);
    free(rec);
    ddpm_cifar c;
    EXPECT(ddpm_cifar_read("/nonexistent/data_batch_1.bin", &c), DDPM_ERR_IO, "data_batch_1.bin");
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Offset of the first chunk of type t in a PNG (length field), or 0. */
static size_t find_chunk(const uint8_t *b, size_t len, const char *t) {
    size_t p = 8;
    while (p + 12 <= len) {
        if (memcmp(b + p + 4, t, 4) == 0) return p;
        p += 12 + be32(b + p);
    }
    return 0;
}

/* Recomputes the CRC of the chunk at p. */
static void fix_crc(uint8_t *b, size_t p) {
    uint32_t n = be32(b + p);
    put32(b + p + 8 + n, (uint32_t)crc32(0, b + p + 4, n + 4));
}

static ddpm_status png_try(const uint8_t *b, size_t len) {
    ddpm_image img;
    ddpm_status s = ddpm_png_read_memory(b, len, &img);
    ddpm_image_free(&img);
    return s;
}

static void test_png(const char *dir) {
    uint8_t good[512], b[512];
    FILE *f = fopen(dd_test_data("io/gray.png"), "rb");
    size_t n = f ? fread(good, 1, sizeof good, f) : 0;
    if (f) fclose(f);
    CHECK(n > 100);
    CHECK_OK(png_try(good, n));
    size_t ihdr = find_chunk(good, n, "IHDR"), idat = find_chunk(good, n, "IDAT"), text = find_chunk(good, n, "tEXt");
    CHECK(ihdr && idat && text);
    memcpy(b, good, n);
    b[ihdr + 8 + 13] ^= 1;   /* IHDR CRC */
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "CRC");
    memcpy(b, good, n);
    b[idat + 8 + be32(good + idat)] ^= 1;   /* IDAT CRC */
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "CRC");
    memcpy(b, good, n);
    b[idat + 8 + 3] ^= 0x10;  /* IDAT data: the deflate stream breaks before the CRC is checked */
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "invalid PNG");
    memcpy(b, good, n);
    b[text + 10] ^= 0x20;     /* ancillary tEXt data */
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "CRC");
    memcpy(b, good, n);
    put32(b + text, 0x2a000018u);   /* a 704 MB tEXt chunk in a 158-byte file */
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "invalid PNG");
    EXPECT(png_try(good, idat + 20), DDPM_ERR_FORMAT, "truncated");
    EXPECT(png_try(good, n - 12), DDPM_ERR_FORMAT, "invalid PNG");   /* no IEND */
    EXPECT(png_try(good, 8), DDPM_ERR_FORMAT, "invalid PNG");
    EXPECT(png_try((const uint8_t *)"GIF89a....", 10), DDPM_ERR_FORMAT, "not a PNG");
    EXPECT(png_try(good, 0), DDPM_ERR_FORMAT, "not a PNG");
    memcpy(b, good, n);
    put32(b + ihdr + 8, 100000);
    put32(b + ihdr + 12, 100000);
    fix_crc(b, ihdr);
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "100000x100000 pixels exceeds the limit");
    memcpy(b, good, n);
    put32(b + ihdr + 8, 16000);   /* within the limits, but the file cannot hold that much data */
    put32(b + ihdr + 12, 16000);
    fix_crc(b, ihdr);
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "16000x16000 image needs 256000000 bytes");
    memcpy(b, good, n);
    put32(b + ihdr + 8, 0);
    fix_crc(b, ihdr);
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "invalid PNG");
    memcpy(b, good, n);
    b[ihdr + 8 + 8] = 7;      /* bit depth 7 */
    fix_crc(b, ihdr);
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "invalid PNG");
    memcpy(b, good, n);
    put32(b + ihdr + 12, 4000); /* taller than its data */
    fix_crc(b, ihdr);
    EXPECT(png_try(b, n), DDPM_ERR_FORMAT, "invalid PNG");
    char path[1200];
    snprintf(path, sizeof path, "%s/empty.png", dir);
    dd_write_bytes(path, "", 0);
    ddpm_image img;
    EXPECT(ddpm_png_read(path, &img), DDPM_ERR_FORMAT, "empty.png: not a PNG file (empty)");
    EXPECT(ddpm_png_read("/nonexistent/in.png", &img), DDPM_ERR_IO, "/nonexistent/in.png");
    char *v = NULL;
    EXPECT(ddpm_png_read_text(path, "ddpm", &v), DDPM_ERR_FORMAT, "not a PNG");
    CHECK(v == NULL);
}

static void test_dataset(const char *dir) {
    ddpm_dataset ds;
    EXPECT(ddpm_dataset_load("mnist", "/nonexistent/mnist", 1, &ds), DDPM_ERR_IO, "train-images-idx3-ubyte");
    EXPECT(ddpm_dataset_load("cifar10", "/nonexistent/cifar", 1, &ds), DDPM_ERR_IO, "/nonexistent/cifar");
    EXPECT(ddpm_dataset_load("cifar10", dir, 1, &ds), DDPM_ERR_IO, "data_batch_*.bin");
    EXPECT(ddpm_dataset_load("svhn", dir, 1, &ds), DDPM_ERR_INVALID_ARG, "mnist, fashion-mnist, cifar10");
    /* images and labels that disagree, then a label out of range */
    char p[1200];
    uint8_t im[16 + 2 * 4] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2};
    uint8_t lb[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
    dd_write_bytes(p, im, sizeof im);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
    dd_write_bytes(p, lb, sizeof lb);
    EXPECT(ddpm_dataset_load("mnist", dir, 0, &ds), DDPM_ERR_FORMAT, "holds 2 images but");
    uint8_t lb2[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 10};
    dd_write_bytes(p, lb2, sizeof lb2);
    EXPECT(ddpm_dataset_load("mnist", dir, 0, &ds), DDPM_ERR_FORMAT, "label 10 at index 1");
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.count == 0);
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
    dd_write_bytes(p, im, sizeof im);
    EXPECT(ddpm_dataset_load("cifar10", dir, 1, &ds), DDPM_ERR_FORMAT, "data_batch_1.bin");
}

int main(void) {
    const char *dir = dd_test_tmpdir("malformed");
    test_safetensors(dir);
    test_idx_cifar(dir);
    test_png(dir);
    test_dataset(dd_test_tmpdir("malformed_ds"));
    printf("%d malformed-file cases\n", cases);
    CHECK(cases >= 25);
    return dd_test_finish("test_malformed");
}
