/* describe.c — what `ddpm info` shows, as text: the tensors of a safetensors file (name, dtype, shape, numel) in
   file order with the parameter and byte totals and the metadata, or a model folder's network and noise schedule.
   Names and values are escaped (control and non-printable bytes as \xNN) so that a hostile file cannot drive a
   terminal; valid UTF-8 above U+007F passes through. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

/* s (at most max_bytes of it, then "...") escaped into t (NULL: only measured); returns the columns used
   (approximately: one per character, 4 per escaped byte). */
static int put_safe(dd_text *t, const char *s, int max_bytes) {
    const unsigned char *p = (const unsigned char *)s;
    int cols = 0;
    for (int i = 0; p[i] && i < max_bytes; i++) {
        unsigned c = p[i];
        int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        int ok = extra >= 0 && (extra > 0 || (c >= 0x20 && c < 0x7f));
        for (int k = 1; ok && k <= extra; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok) {
            if (t) dd_text_put(t, (const char *)p + i, (size_t)extra + 1);
            i += extra;
            cols++;
        } else {
            if (t) dd_text_printf(t, "\\x%02x", c);
            cols += 4;
        }
    }
    if ((int)strlen(s) > max_bytes) {
        if (t) dd_text_put(t, "...", 3);
        cols += 3;
    }
    return cols;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(unsigned long long v, char *buf, size_t size) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

static const char *human_bytes(unsigned long long v, char *buf, size_t size) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    int u = 0;
    while (x >= 1024 && u < 4) {
        x /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, size, "%llu B", v);
    else snprintf(buf, size, "%.1f %s", x, units[u]);
    return buf;
}

static ddpm_status describe_file(const char *path, dd_text *tb) {
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open(path, &st);
    if (s != DDPM_OK) return s;
    int n = ddpm_st_count(st), name_w = 4, shape_w = 5, numel_w = 5;
    unsigned long long params = 0, bytes = 0;
    char shape[DDPM_ST_MAX_DIMS * 24 + 4], b1[40], b2[40];
    for (int i = 0; i < n; i++) {   /* the column widths and the totals */
        const ddpm_st_tensor *t = ddpm_st_at(st, i);
        int w = put_safe(NULL, t->name, 200), nw = (int)strlen(grouped((unsigned long long)t->numel, b1, sizeof b1));
        if (w > name_w) name_w = w > 60 ? 60 : w;
        dd_shape_text(shape, sizeof shape, t->ndim, t->shape);
        if ((int)strlen(shape) > shape_w) shape_w = (int)strlen(shape);
        if (nw > numel_w) numel_w = nw;
        params += (unsigned long long)t->numel;
        bytes += t->nbytes;
    }
    dd_text_printf(tb, "%-*s  %-5s  %-*s  %*s\n", name_w, "name", "dtype", shape_w, "shape", numel_w, "numel");
    for (int i = 0; i < n; i++) {
        const ddpm_st_tensor *t = ddpm_st_at(st, i);
        dd_shape_text(shape, sizeof shape, t->ndim, t->shape);
        int cols = put_safe(tb, t->name, 200);
        dd_text_printf(tb, "%*s  %-5s  %-*s  %*s\n", cols < name_w ? name_w - cols : 0, "", ddpm_dtype_name(t->dtype),
                       shape_w, shape, numel_w, grouped((unsigned long long)t->numel, b1, sizeof b1));
    }
    dd_text_printf(tb, "\n%d tensor%s, %s parameter%s, %s bytes of data (%s)\n", n, n == 1 ? "" : "s",
                   grouped(params, b1, sizeof b1), params == 1 ? "" : "s", grouped(bytes, b2, sizeof b2),
                   human_bytes(bytes, shape, sizeof shape));
    int m = ddpm_st_metadata_count(st);
    if (m > 0) dd_text_printf(tb, "\nmetadata:\n");
    for (int i = 0; i < m; i++) {
        const char *key, *value;
        ddpm_st_metadata_at(st, i, &key, &value);
        dd_text_put(tb, "  ", 2);
        put_safe(tb, key, 200);
        dd_text_put(tb, ": ", 2);
        put_safe(tb, value, 2000);
        dd_text_put(tb, "\n", 1);
    }
    ddpm_st_close(st);
    return DDPM_OK;
}

static const char *prediction_name(ddpm_prediction p) {
    return p == DDPM_PRED_V ? "v_prediction" : p == DDPM_PRED_X0 ? "sample" : "epsilon";
}

static ddpm_status describe_folder(const char *path, dd_text *tb) {
    ddpm_model *m = NULL;
    ddpm_pipeline_scheduler sched;
    memset(&sched, 0, sizeof sched);
    ddpm_status s = ddpm_model_load(path, 0, &m);
    if (s == DDPM_OK && (s = ddpm_pipeline_scheduler_load(path, &sched)) != DDPM_OK) {
        ddpm_model_free(m);
        return s;
    }
    if (s != DDPM_OK) return s;
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    char b1[40];
    dd_text_printf(tb, "model: %s, %s, %d -> %d channels at %dx%d, %s parameters in %d tensors\n", path,
                   strcmp(info.kind, "basic") == 0 ? "BasicUNet" : "UNet2DModel", info.in_channels, info.out_channels,
                   info.sample_size, info.sample_size, grouped((unsigned long long)info.num_params, b1, sizeof b1),
                   info.num_tensors);
    if (info.num_class_embeds > 0) {
        dd_text_printf(tb, "classes: %d", info.num_class_embeds);
        if (info.null_class >= 0) dd_text_printf(tb, " (class %d is the null class of guidance)", info.null_class);
        if (info.guidance > 0) dd_text_printf(tb, ", default guidance %g", info.guidance);
        dd_text_printf(tb, "\n");
    } else {
        dd_text_printf(tb, "classes: none (unconditional)\n");
    }
    dd_text_printf(tb, "scheduler: %s%s, T = %d, prediction %s, clip_sample %s\n", sched.class_name,
                   sched.found ? "" : " (no scheduler_config.json: diffusers' defaults)", sched.diffusion->T,
                   prediction_name(sched.prediction), sched.clip_sample ? "true" : "false");
    ddpm_pipeline_scheduler_free(&sched);
    ddpm_model_free(m);
    return DDPM_OK;
}

ddpm_status ddpm_describe(const char *path, char **text) {
    if (!text) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_describe: text is NULL");
    *text = NULL;
    if (!path) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_describe: path is NULL");
    dd_text tb = {0};
    struct stat sb;
    ddpm_status s = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? describe_folder(path, &tb) : describe_file(path, &tb);
    if (s != DDPM_OK) dd_free(tb.buf);
    return s != DDPM_OK ? s : dd_text_finish(&tb, text);
}
