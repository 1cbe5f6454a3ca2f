/* safetensors.c — reader and writer of the safetensors format (an 8-byte little-endian header length,
   a JSON header parsed with cJSON, raw little-endian data). Every file is treated as hostile. Also the files of
   image batches: sample tensors written, x_T tensors read with their shape checked. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define ST_MAX_HEADER 100000000ull   /* the reference implementation's bound */
#define ST_MEMORY_NAME "<memory>"

typedef struct {
    ddpm_st_tensor t;
    int order;          /* position in the JSON header, to break ties between empty tensors */
} st_entry;

struct ddpm_safetensors {
    uint8_t *buf;                  /* the whole file */
    size_t len;
    const uint8_t *data;           /* data section: buf + 8 + header length */
    uint64_t data_len;
    char *src;                     /* file name used in messages */
    int count;
    st_entry *entries;             /* [count], ascending data offset (file order) */
    const ddpm_st_tensor **by_name;/* [count], sorted by name for ddpm_st_find */
    int nmeta;
    char **meta;                   /* [2 * nmeta]: key, value, in header order */
};

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int dtype_from_name(const char *s, ddpm_dtype *out) {
    static const ddpm_dtype all[] = {DDPM_DTYPE_F64, DDPM_DTYPE_F32, DDPM_DTYPE_F16, DDPM_DTYPE_BF16,
                                     DDPM_DTYPE_I64, DDPM_DTYPE_I32, DDPM_DTYPE_I16, DDPM_DTYPE_I8,
                                     DDPM_DTYPE_U8, DDPM_DTYPE_BOOL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, ddpm_dtype_name(all[i])) == 0) {
            *out = all[i];
            return 1;
        }
    return 0;
}

int dd_dtype_is_float(ddpm_dtype t) {
    return t == DDPM_DTYPE_F64 || t == DDPM_DTYPE_F32 || t == DDPM_DTYPE_F16 || t == DDPM_DTYPE_BF16;
}

const char *dd_shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* A JSON number that is an integer in 0 .. 2^53 (beyond that doubles are no longer exact). */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0.0) || v > 9007199254740992.0 || v != floor(v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int cmp_offset(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->t.offset != y->t.offset) return x->t.offset < y->t.offset ? -1 : 1;
    if (x->t.nbytes != y->t.nbytes) return x->t.nbytes < y->t.nbytes ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

static int cmp_name(const void *a, const void *b) {
    const ddpm_st_tensor *x = *(const ddpm_st_tensor *const *)a, *y = *(const ddpm_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static ddpm_status parse_metadata(ddpm_safetensors *st, const cJSON *m) {
    const char *src = st->src;
    if (!cJSON_IsObject(m)) return dd_error(DDPM_ERR_FORMAT, "%s: __metadata__ is not a JSON object", src);
    int n = cJSON_GetArraySize(m);
    st->meta = dd_calloc((size_t)(n ? 2 * n : 1), sizeof(char *));
    if (!st->meta) return DDPM_ERR_NOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, m) {
        if (!cJSON_IsString(it) || !it->valuestring)
            return dd_error(DDPM_ERR_FORMAT, "%s: __metadata__ value of '%.200s' is not a string", src,
                            it->string ? it->string : "");
        char *k = dd_strdup(it->string ? it->string : ""), *v = dd_strdup(it->valuestring);
        if (!k || !v) {
            dd_free(k);
            dd_free(v);
            return DDPM_ERR_NOMEM;
        }
        st->meta[2 * st->nmeta] = k;
        st->meta[2 * st->nmeta + 1] = v;
        st->nmeta++;
    }
    if (st->nmeta > 1) {
        const char **keys = dd_calloc((size_t)st->nmeta, sizeof(char *));
        if (!keys) return DDPM_ERR_NOMEM;
        for (int i = 0; i < st->nmeta; i++) keys[i] = st->meta[2 * i];
        qsort(keys, (size_t)st->nmeta, sizeof(char *), dd_cmp_str);
        for (int i = 1; i < st->nmeta; i++)
            if (strcmp(keys[i - 1], keys[i]) == 0) {
                ddpm_status s = dd_error(DDPM_ERR_FORMAT, "%s: __metadata__ key '%.200s' appears twice",
                                         src, keys[i]);
                dd_free(keys);
                return s;
            }
        dd_free(keys);
    }
    return DDPM_OK;
}

/* One tensor entry of the header into e (name already set). */
static ddpm_status parse_entry(ddpm_safetensors *st, const cJSON *j, st_entry *e) {
    const char *src = st->src, *name = e->t.name;
    char sb[200];
    if (!cJSON_IsObject(j))
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': entry is not a JSON object", src, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(dt) || !dt->valuestring)
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': missing or non-string \"dtype\"", src, name);
    if (!dtype_from_name(dt->valuestring, &e->t.dtype))
        return dd_error(DDPM_ERR_UNSUPPORTED,
                        "%s: tensor '%.200s': dtype '%.40s' is not supported (supported: F64 F32 F16 BF16 "
                        "I64 I32 I16 I8 U8 BOOL)", src, name, dt->valuestring);
    if (!cJSON_IsArray(sh))
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': missing or non-array \"shape\"", src, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > DDPM_ST_MAX_DIMS)
        return dd_error(DDPM_ERR_UNSUPPORTED, "%s: tensor '%.200s': shape has %d dimensions (at most %d "
                        "are supported)", src, name, nd, DDPM_ST_MAX_DIMS);
    e->t.ndim = nd;
    uint64_t numel = 1;
    int overflow = 0, i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        uint64_t v;
        if (!json_uint(d, &v))
            return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': shape entry %d is not a non-negative "
                            "integer", src, name, i);
        e->t.shape[i++] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }
    size_t esz = ddpm_dtype_size(e->t.dtype);
    if (numel == 0) overflow = 0;   /* a zero dimension makes the product 0 whatever the others are */
    if (overflow || numel > (uint64_t)INT64_MAX / esz)
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': shape %s has too many elements", src, name,
                        dd_shape_text(sb, sizeof sb, nd, e->t.shape));
    e->t.numel = (int64_t)numel;
    uint64_t begin, end;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_uint(cJSON_GetArrayItem(of, 0), &begin) ||
        !json_uint(cJSON_GetArrayItem(of, 1), &end))
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': \"data_offsets\" is not a pair of "
                        "non-negative integers [begin, end]", src, name);
    if (begin > end)
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                        "] begin after end", src, name, begin, end);
    if (end > st->data_len)
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                        "] run past the end of the data (%" PRIu64 " bytes; file truncated?)", src, name,
                        begin, end, st->data_len);
    if (end - begin != numel * esz)
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                        "] but shape %s with %s needs %" PRIu64 " bytes", src, name, begin, end,
                        dd_shape_text(sb, sizeof sb, nd, e->t.shape), ddpm_dtype_name(e->t.dtype),
                        numel * esz);
    e->t.offset = begin;
    e->t.nbytes = end - begin;
    return DDPM_OK;
}

static ddpm_status parse_header(ddpm_safetensors *st, const cJSON *root) {
    const char *src = st->src;
    if (!cJSON_IsObject(root))
        return dd_error(DDPM_ERR_FORMAT, "%s: header is valid JSON but not an object", src);
    int n = 0;
    const cJSON *meta = NULL, *it;
    cJSON_ArrayForEach(it, root) {
        if (it->string && strcmp(it->string, "__metadata__") == 0) {
            if (meta) return dd_error(DDPM_ERR_FORMAT, "%s: __metadata__ appears twice in the header", src);
            meta = it;
        } else {
            n++;
        }
    }
    if (meta) {
        ddpm_status s = parse_metadata(st, meta);
        if (s != DDPM_OK) return s;
    }
    st->entries = dd_calloc((size_t)(n ? n : 1), sizeof(st_entry));
    st->by_name = dd_calloc((size_t)(n ? n : 1), sizeof(ddpm_st_tensor *));
    if (!st->entries || !st->by_name) return DDPM_ERR_NOMEM;
    cJSON_ArrayForEach(it, root) {
        if (it == meta) continue;
        st_entry *e = &st->entries[st->count];
        e->order = st->count;
        e->t.name = dd_strdup(it->string ? it->string : "");
        if (!e->t.name) return DDPM_ERR_NOMEM;
        st->count++;
        ddpm_status s = parse_entry(st, it, e);
        if (s != DDPM_OK) return s;
    }
    /* the format has no holes: in offset order each tensor starts where the one before ended, the first at 0,
       and the last ends where the file does */
    qsort(st->entries, (size_t)st->count, sizeof(st_entry), cmp_offset);
    uint64_t expect = 0;
    for (int i = 0; i < st->count; i++) {
        const ddpm_st_tensor *b = &st->entries[i].t;
        if (b->offset < expect) {
            const ddpm_st_tensor *a = &st->entries[i - 1].t;
            return dd_error(DDPM_ERR_FORMAT, "%s: tensors '%.200s' [%" PRIu64 ", %" PRIu64 "] and '%.200s' [%"
                            PRIu64 ", %" PRIu64 "] overlap", src, a->name, a->offset, a->offset + a->nbytes,
                            b->name, b->offset, b->offset + b->nbytes);
        }
        if (b->offset > expect)
            return dd_error(DDPM_ERR_FORMAT, "%s: %" PRIu64 " bytes of the data at [%" PRIu64 ", %" PRIu64
                            ") belong to no tensor (tensor '%.200s' starts at %" PRIu64 "; the format has no "
                            "holes)", src, b->offset - expect, expect, b->offset, b->name, b->offset);
        expect = b->offset + b->nbytes;
    }
    if (expect != st->data_len)
        return dd_error(DDPM_ERR_FORMAT, "%s: %" PRIu64 " bytes after the last tensor's data belong to no tensor "
                        "(the data ends at %" PRIu64 " of %" PRIu64 ")", src, (uint64_t)st->data_len - expect, expect,
                        (uint64_t)st->data_len);
    for (int i = 0; i < st->count; i++) st->by_name[i] = &st->entries[i].t;
    qsort(st->by_name, (size_t)st->count, sizeof(ddpm_st_tensor *), cmp_name);
    for (int i = 1; i < st->count; i++)
        if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0)
            return dd_error(DDPM_ERR_FORMAT, "%s: tensor name '%.200s' appears twice in the header", src,
                            st->by_name[i]->name);
    return DDPM_OK;
}

static ddpm_status st_parse(ddpm_safetensors *st) {
    const char *src = st->src;
    if (st->len < 8)
        return dd_error(DDPM_ERR_FORMAT, "%s: file has %zu bytes, too short for a safetensors file (8-byte "
                        "header length, then a JSON header)", src, st->len);
    uint64_t hlen = le64(st->buf);
    if (hlen > ST_MAX_HEADER)
        return dd_error(DDPM_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of %llu bytes "
                        "(not a safetensors file?)", src, hlen, ST_MAX_HEADER);
    if (hlen > st->len - 8)
        return dd_error(DDPM_ERR_FORMAT, "%s: header length %" PRIu64 " runs past the end of the file (%zu "
                        "bytes; truncated?)", src, hlen, st->len);
    if (hlen == 0) return dd_error(DDPM_ERR_FORMAT, "%s: header length is 0 (no JSON header)", src);
    const char *h = (const char *)st->buf + 8, *end = NULL;
    st->data = st->buf + 8 + hlen;
    st->data_len = st->len - 8 - hlen;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= h && end <= h + hlen ? (size_t)(end - h) : 0;
        return dd_error(DDPM_ERR_FORMAT, "%s: header is not valid JSON (error near byte %zu of %" PRIu64 ")",
                        src, at, hlen);
    }
    for (const char *p = end; p < h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return dd_error(DDPM_ERR_FORMAT, "%s: unexpected bytes after the JSON header (byte %zu of %" PRIu64
                            ")", src, (size_t)(p - h), hlen);
        }
    ddpm_status s = parse_header(st, root);
    cJSON_Delete(root);
    /* a file this library wrote records the crc32 of its data: any flipped bit is found here */
    const char *rec = s == DDPM_OK ? ddpm_st_metadata_get(st, DDPM_ST_CRC_KEY) : NULL;
    if (rec) {
        char *e = NULL;
        unsigned long want = strtoul(rec, &e, 16);
        if (e == rec || *e || strlen(rec) != 8)
            return dd_error(DDPM_ERR_FORMAT, "%s: metadata %s is '%.40s', not 8 hex digits", src, DDPM_ST_CRC_KEY, rec);
        uint32_t got = dd_crc32(0, st->data, st->data_len);
        if (got != (uint32_t)want)
            return dd_error(DDPM_ERR_FORMAT, "%s: the data is corrupt (crc32 %08x, but the file records %08lx)", src,
                            got, want);
    }
    return s;
}

/* Takes ownership of buf (allocated with dd_alloc). */
static ddpm_status st_open_owned(uint8_t *buf, size_t len, const char *src, ddpm_safetensors **out) {
    ddpm_safetensors *st = dd_calloc(1, sizeof *st);
    if (!st) {
        dd_free(buf);
        return DDPM_ERR_NOMEM;
    }
    st->buf = buf;
    st->len = len;
    st->src = dd_strdup(src);
    ddpm_status s = st->src ? st_parse(st) : DDPM_ERR_NOMEM;
    if (s != DDPM_OK) {
        ddpm_st_close(st);
        return s;
    }
    *out = st;
    return DDPM_OK;
}

ddpm_status ddpm_st_open(const char *path, ddpm_safetensors **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_open: out is NULL");
    *out = NULL;
    if (!path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_open: path is NULL");
    uint8_t *buf = NULL;
    size_t len = 0;
    ddpm_status s = dd_read_file(path, 0, &buf, &len);
    if (s != DDPM_OK) return s;
    return st_open_owned(buf, len, path, out);
}

ddpm_status ddpm_st_open_memory(const void *buf, size_t len, ddpm_safetensors **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_open_memory: out is NULL");
    *out = NULL;
    if (!buf && len) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_open_memory: buf is NULL");
    uint8_t *copy = dd_alloc(len ? len : 1);
    if (!copy) return DDPM_ERR_NOMEM;
    if (len) memcpy(copy, buf, len);
    return st_open_owned(copy, len, ST_MEMORY_NAME, out);
}

void ddpm_st_close(ddpm_safetensors *st) {
    if (!st) return;
    if (st->entries)
        for (int i = 0; i < st->count; i++) dd_free((char *)st->entries[i].t.name);
    if (st->meta)
        for (int i = 0; i < 2 * st->nmeta; i++) dd_free(st->meta[i]);
    dd_free(st->meta);
    dd_free(st->entries);
    dd_free(st->by_name);
    dd_free(st->src);
    dd_free(st->buf);
    dd_free(st);
}

int ddpm_st_count(const ddpm_safetensors *st) {
    return st ? st->count : 0;
}

const ddpm_st_tensor *ddpm_st_at(const ddpm_safetensors *st, int i) {
    if (!st || i < 0 || i >= st->count) return NULL;
    return &st->entries[i].t;
}

const ddpm_st_tensor *ddpm_st_find(const ddpm_safetensors *st, const char *name) {
    if (!st || !name || st->count == 0) return NULL;
    ddpm_st_tensor key;
    memset(&key, 0, sizeof key);
    key.name = name;
    const ddpm_st_tensor *kp = &key;
    const ddpm_st_tensor **hit = bsearch(&kp, st->by_name, (size_t)st->count, sizeof(ddpm_st_tensor *),
                                         cmp_name);
    return hit ? *hit : NULL;
}

const void *ddpm_st_data(const ddpm_safetensors *st, const ddpm_st_tensor *t) {
    if (!st || !t) return NULL;
    return st->data + t->offset;
}

int ddpm_st_metadata_count(const ddpm_safetensors *st) {
    return st ? st->nmeta : 0;
}

void ddpm_st_metadata_at(const ddpm_safetensors *st, int i, const char **key, const char **value) {
    int ok = st && i >= 0 && i < st->nmeta;
    if (key) *key = ok ? st->meta[2 * i] : NULL;
    if (value) *value = ok ? st->meta[2 * i + 1] : NULL;
}

const char *ddpm_st_metadata_get(const ddpm_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

/* ---------------------------------------------------------------------------------- conversion */

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

static double elem_f64(const uint8_t *p, ddpm_dtype t) {
    switch (t) {
    case DDPM_DTYPE_F64: {
        uint64_t u = load_le(p, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    case DDPM_DTYPE_F32: {
        uint32_t u = (uint32_t)load_le(p, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    case DDPM_DTYPE_F16: return ddpm_f16_to_f32((uint16_t)load_le(p, 2));
    case DDPM_DTYPE_BF16: return ddpm_bf16_to_f32((uint16_t)load_le(p, 2));
    default: return 0.0;
    }
}

static int64_t elem_i64(const uint8_t *p, ddpm_dtype t) {
    switch (t) {
    case DDPM_DTYPE_I64: return (int64_t)load_le(p, 8);
    case DDPM_DTYPE_I32: return (int32_t)(uint32_t)load_le(p, 4);
    case DDPM_DTYPE_I16: return (int16_t)(uint16_t)load_le(p, 2);
    case DDPM_DTYPE_I8: return (int8_t)p[0];
    case DDPM_DTYPE_U8: case DDPM_DTYPE_BOOL: return p[0];
    default: return 0;
    }
}

/* Finds `name`, checks the kind of dtype and the count. */
static ddpm_status lookup(const ddpm_safetensors *st, const char *name, int64_t count, int want_float,
                          const char *fn, const ddpm_st_tensor **out) {
    if (!st || !name) return dd_error(DDPM_ERR_INVALID_ARG, "%s: st or name is NULL", fn);
    const ddpm_st_tensor *t = ddpm_st_find(st, name);
    if (!t) return dd_error(DDPM_ERR_FORMAT, "%s: no tensor named '%.200s' (the file has %d tensors)",
                            st->src, name, st->count);
    if (dd_dtype_is_float(t->dtype) != want_float)
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s' has dtype %s, expected %s", st->src, name,
                        ddpm_dtype_name(t->dtype),
                        want_float ? "a float dtype (F64 F32 F16 BF16)" : "an integer dtype (I64 I32 I16 I8 "
                        "U8 BOOL)");
    if (count != t->numel) {
        char sb[200];
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor '%.200s' has shape %s (%" PRId64 " elements) but %" PRId64
                        " were expected", st->src, name, dd_shape_text(sb, sizeof sb, t->ndim, t->shape), t->numel,
                        count);
    }
    *out = t;
    return DDPM_OK;
}

ddpm_status ddpm_st_read_f32(const ddpm_safetensors *st, const char *name, float *out, int64_t count) {
    const ddpm_st_tensor *t;
    ddpm_status s = lookup(st, name, count, 1, "ddpm_st_read_f32", &t);
    if (s != DDPM_OK) return s;
    if (count > 0 && !out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_read_f32: out is NULL");
    const uint8_t *p = st->data + t->offset;
    size_t esz = ddpm_dtype_size(t->dtype);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (t->dtype == DDPM_DTYPE_F32) {
        if (count > 0) memcpy(out, p, (size_t)count * sizeof(float));
        return DDPM_OK;
    }
#endif
    for (int64_t i = 0; i < count; i++) out[i] = (float)elem_f64(p + (size_t)i * esz, t->dtype);
    return DDPM_OK;
}

ddpm_status ddpm_st_read_f64(const ddpm_safetensors *st, const char *name, double *out, int64_t count) {
    const ddpm_st_tensor *t;
    ddpm_status s = lookup(st, name, count, 1, "ddpm_st_read_f64", &t);
    if (s != DDPM_OK) return s;
    if (count > 0 && !out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_read_f64: out is NULL");
    const uint8_t *p = st->data + t->offset;
    size_t esz = ddpm_dtype_size(t->dtype);
    for (int64_t i = 0; i < count; i++) out[i] = elem_f64(p + (size_t)i * esz, t->dtype);
    return DDPM_OK;
}

ddpm_status ddpm_st_read_i64(const ddpm_safetensors *st, const char *name, int64_t *out, int64_t count) {
    const ddpm_st_tensor *t;
    ddpm_status s = lookup(st, name, count, 0, "ddpm_st_read_i64", &t);
    if (s != DDPM_OK) return s;
    if (count > 0 && !out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_read_i64: out is NULL");
    const uint8_t *p = st->data + t->offset;
    size_t esz = ddpm_dtype_size(t->dtype);
    for (int64_t i = 0; i < count; i++) out[i] = elem_i64(p + (size_t)i * esz, t->dtype);
    return DDPM_OK;
}

/* ---------------------------------------------------------------------------------- writer */

typedef struct {
    char *name;
    ddpm_dtype dtype;
    int ndim;
    int64_t shape[DDPM_ST_MAX_DIMS];
    uint8_t *data;
    uint64_t nbytes;
} st_wentry;

struct ddpm_st_writer {
    st_wentry *e;
    int n, cap;
    char **meta;          /* [2 * nmeta] key, value */
    int nmeta, metacap;
};

ddpm_status ddpm_st_writer_create(ddpm_st_writer **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_writer_create: out is NULL");
    *out = dd_calloc(1, sizeof(ddpm_st_writer));
    return *out ? DDPM_OK : DDPM_ERR_NOMEM;
}

void ddpm_st_writer_free(ddpm_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        dd_free(w->e[i].name);
        dd_free(w->e[i].data);
    }
    for (int i = 0; i < 2 * w->nmeta; i++) dd_free(w->meta[i]);
    dd_free(w->e);
    dd_free(w->meta);
    dd_free(w);
}

ddpm_status ddpm_st_writer_add(ddpm_st_writer *w, const char *name, ddpm_dtype dtype, int ndim,
                               const int64_t *shape, const void *data) {
    const char *fn = "ddpm_st_writer_add";
    if (!w || !name) return dd_error(DDPM_ERR_INVALID_ARG, "%s: writer or name is NULL", fn);
    if (strcmp(name, "__metadata__") == 0)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: '__metadata__' is reserved and cannot name a tensor", fn);
    size_t esz = ddpm_dtype_size(dtype);
    if (esz == 0) return dd_error(DDPM_ERR_INVALID_ARG, "%s: tensor '%.200s': unknown dtype %d", fn, name,
                                  (int)dtype);
    if (ndim < 0 || ndim > DDPM_ST_MAX_DIMS || (ndim > 0 && !shape))
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: tensor '%.200s': ndim %d out of range 0..%d (or shape "
                        "NULL)", fn, name, ndim, DDPM_ST_MAX_DIMS);
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return dd_error(DDPM_ERR_INVALID_ARG, "%s: tensor '%.200s': negative dimension %"
                                          PRId64, fn, name, shape[i]);
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && numel > UINT64_MAX / d) overflow = 1;
        else numel *= d;
    }
    if (numel == 0) overflow = 0;
    if (overflow || numel > (uint64_t)INT64_MAX / esz || numel * esz > SIZE_MAX / 2)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: tensor '%.200s' is too large", fn, name);
    uint64_t nbytes = numel * esz;
    if (nbytes && !data) return dd_error(DDPM_ERR_INVALID_ARG, "%s: tensor '%.200s': data is NULL", fn, name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: tensor '%.200s' was already added", fn, name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_wentry *e = dd_realloc(w->e, (size_t)cap * sizeof(st_wentry));
        if (!e) return dd_error(DDPM_ERR_NOMEM, "%s: out of memory", fn);
        w->e = e;
        w->cap = cap;
    }
    st_wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = dd_strdup(name);
    e->data = dd_alloc(nbytes ? (size_t)nbytes : 1);
    if (!e->name || !e->data) {
        dd_free(e->name);
        dd_free(e->data);
        return DDPM_ERR_NOMEM;
    }
    if (nbytes) memcpy(e->data, data, (size_t)nbytes);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = nbytes;
    w->n++;
    return DDPM_OK;
}

ddpm_status ddpm_st_writer_set_metadata(ddpm_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_writer_set_metadata: writer, key or value is NULL");
    char *v = dd_strdup(value);
    if (!v) return DDPM_ERR_NOMEM;
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[2 * i], key) == 0) {
            dd_free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return DDPM_OK;
        }
    if (w->nmeta == w->metacap) {
        int cap = w->metacap ? 2 * w->metacap : 8;
        char **m = dd_realloc(w->meta, (size_t)cap * 2 * sizeof(char *));
        if (!m) {
            dd_free(v);
            return dd_error(DDPM_ERR_NOMEM, "ddpm_st_writer_set_metadata: out of memory");
        }
        w->meta = m;
        w->metacap = cap;
    }
    char *k = dd_strdup(key);
    if (!k) {
        dd_free(v);
        return DDPM_ERR_NOMEM;
    }
    w->meta[2 * w->nmeta] = k;
    w->meta[2 * w->nmeta + 1] = v;
    w->nmeta++;
    return DDPM_OK;
}

ddpm_status ddpm_st_writer_save(ddpm_st_writer *w, const char *path) {
    if (!w || !path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_st_writer_save: writer or path is NULL");
    dd_text b = {0};
    char crc[16];
    uint32_t c = 0;
    for (int i = 0; i < w->n; i++)
        if (w->e[i].nbytes) c = dd_crc32(c, w->e[i].data, w->e[i].nbytes);
    snprintf(crc, sizeof crc, "%08x", c);
    dd_text_printf(&b, "{\"__metadata__\":{");
    for (int i = 0; i < w->nmeta; i++) {
        if (strcmp(w->meta[2 * i], DDPM_ST_CRC_KEY) == 0) continue;   /* always the data's own */
        dd_text_string(&b, w->meta[2 * i]);
        dd_text_printf(&b, ":");
        dd_text_string(&b, w->meta[2 * i + 1]);
        dd_text_printf(&b, ",");
    }
    dd_text_string(&b, DDPM_ST_CRC_KEY);
    dd_text_printf(&b, ":");
    dd_text_string(&b, crc);
    dd_text_printf(&b, "}");
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st_wentry *e = &w->e[i];
        dd_text_printf(&b, ",");
        dd_text_string(&b, e->name);
        dd_text_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", ddpm_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++) dd_text_printf(&b, "%s%" PRId64, d ? "," : "", e->shape[d]);
        dd_text_printf(&b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + e->nbytes);
        off += e->nbytes;
    }
    dd_text_printf(&b, "}");
    while (!b.failed && b.len % 8) dd_text_printf(&b, " ");   /* pad so the data starts 8-byte aligned */
    if (b.failed) {
        dd_free(b.buf);
        return dd_error(DDPM_ERR_NOMEM, "%s: out of memory building the safetensors header", path);
    }
    if (off > SIZE_MAX - 8 - b.len) {
        dd_free(b.buf);
        return dd_error(DDPM_ERR_NOMEM, "%s: file too large", path);
    }
    size_t total = 8 + b.len + (size_t)off;
    uint8_t *file = dd_alloc(total);
    if (!file) {
        dd_free(b.buf);
        return DDPM_ERR_NOMEM;
    }
    uint64_t hl = b.len;
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)(hl >> (8 * i));
    memcpy(file + 8, b.buf, b.len);
    size_t pos = 8 + b.len;
    for (int i = 0; i < w->n; i++) {
        if (w->e[i].nbytes) memcpy(file + pos, w->e[i].data, (size_t)w->e[i].nbytes);
        pos += (size_t)w->e[i].nbytes;
    }
    dd_free(b.buf);
    ddpm_status s = dd_write_file_atomic(path, file, total);
    dd_free(file);
    return s;
}

/* ------------------------------------------------------------------------------- image batches */

ddpm_status ddpm_save_samples(const char *path, const float *x, int64_t N, int C, int H, int W,
                              const int64_t *labels, const char *settings) {
    if (!path || !x || N < 1 || C < 1 || H < 1 || W < 1)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_save_samples: need a path and images [N >= 1, C, H, W]");
    ddpm_st_writer *w = NULL;
    int64_t shape[4] = {N, C, H, W}, lshape[1] = {N};
    ddpm_status st = ddpm_st_writer_create(&w);
    if (st == DDPM_OK) st = ddpm_st_writer_add(w, "samples", DDPM_DTYPE_F32, 4, shape, x);
    if (st == DDPM_OK && labels) st = ddpm_st_writer_add(w, "labels", DDPM_DTYPE_I64, 1, lshape, labels);
    if (st == DDPM_OK && settings) st = ddpm_st_writer_set_metadata(w, "ddpm", settings);
    if (st == DDPM_OK) st = ddpm_st_writer_save(w, path);
    ddpm_st_writer_free(w);
    return st;
}

ddpm_status ddpm_read_image_tensor(const char *path, const char *name, int C, int H, int W, int64_t max_n,
                                   double **x, int64_t *N) {
    if (!path || !x || !N) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_read_image_tensor: NULL argument");
    *x = NULL;
    *N = 0;
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open(path, &st);
    if (s != DDPM_OK) {
        if (strncmp(ddpm_last_error(), path, strlen(path)) != 0) dd_error_prefix(s, path);
        return s;
    }
    const ddpm_st_tensor *t = name ? ddpm_st_find(st, name) : NULL;
    if (!t && ddpm_st_count(st) == 1) t = ddpm_st_at(st, 0);
    char sh[160] = "[]";
    if (t) dd_shape_text(sh, sizeof sh, t->ndim, t->shape);
    float *buf = NULL;
    if (!t) {
        s = dd_error(DDPM_ERR_FORMAT, "%s: no tensor '%s' (the file holds %d tensors)", path, name ? name : "",
                     ddpm_st_count(st));
    } else if (!dd_dtype_is_float(t->dtype)) {
        s = dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' is %s; need F32", path, t->name, ddpm_dtype_name(t->dtype));
    } else if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > max_n || t->shape[1] != C || t->shape[2] != H ||
               t->shape[3] != W) {
        s = dd_error(DDPM_ERR_FORMAT, "%s: tensor '%s' has shape %s; the model needs [N, %d, %d, %d] with 1 <= N <= "
                     "%lld", path, t->name, sh, C, H, W, (long long)max_n);
    } else {
        size_t n = (size_t)t->numel;
        buf = dd_alloc(sizeof(float) * n);
        *x = dd_alloc(sizeof(double) * n);
        if (!buf || !*x) s = DDPM_ERR_NOMEM;
        else if ((s = ddpm_st_read_f32(st, t->name, buf, t->numel)) != DDPM_OK) dd_error_prefix(s, path);
        else {
            for (size_t i = 0; i < n; i++) (*x)[i] = (double)buf[i];
            *N = t->shape[0];
        }
    }
    if (s != DDPM_OK) {
        dd_free(*x);
        *x = NULL;
    }
    dd_free(buf);
    ddpm_st_close(st);
    return s;
}
