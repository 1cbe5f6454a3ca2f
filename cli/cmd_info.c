/* cmd_info.c — `ddpm info FILE.safetensors`: the tensors (name, dtype, shape, numel) in file order, the
   parameter and byte totals, and the metadata of a safetensors file. */
#include <ddpm.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "options.h"

static const cli_option options[] = {
    {NULL, NULL, NULL, NULL},
};

/* Writes s with control and non-ASCII-printable bytes escaped, so hostile names cannot drive the terminal.
   Valid UTF-8 above U+007F passes through. Returns the number of columns used (approximately); with
   out NULL it only measures. */
static int print_safe(FILE *out, const char *s, int max_bytes) {
    FILE *f = out;
    const unsigned char *p = (const unsigned char *)s;
    int cols = 0;
    for (int i = 0; p[i] && i < max_bytes; i++) {
        unsigned c = p[i];
        int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        int ok = extra >= 0 && (extra > 0 || (c >= 0x20 && c < 0x7f));
        for (int k = 1; ok && k <= extra; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok) {
            if (f) fwrite(p + i, 1, (size_t)extra + 1, f);
            i += extra;
            cols++;
        } else {
            if (f) fprintf(f, "\\x%02x", c);
            cols += 4;
        }
    }
    if ((int)strlen(s) > max_bytes) {
        if (f) fputs("...", f);
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
    while (x >= 1024 && u < 4) { x /= 1024; u++; }
    if (u == 0) snprintf(buf, size, "%llu B", v);
    else snprintf(buf, size, "%.1f %s", x, units[u]);
    return buf;
}

static const char *prediction_name(ddpm_prediction p) {
    return p == DDPM_PRED_V ? "v_prediction" : p == DDPM_PRED_X0 ? "sample" : "epsilon";
}

/* A model folder: the network and the noise schedule it samples with. */
static int folder_info(const char *path) {
    ddpm_model *m = NULL;
    ddpm_pipeline_scheduler sched;
    memset(&sched, 0, sizeof sched);
    if (ddpm_model_load(path, 0, &m) != DDPM_OK) return cli_fail();
    if (ddpm_pipeline_scheduler_load(path, &sched) != DDPM_OK) {
        ddpm_model_free(m);
        return cli_fail();
    }
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    char b1[40];
    printf("model: %s, %s, %d -> %d channels at %dx%d, %s parameters in %d tensors\n", path,
           strcmp(info.kind, "basic") == 0 ? "BasicUNet" : "UNet2DModel", info.in_channels, info.out_channels,
           info.sample_size, info.sample_size, grouped((unsigned long long)info.num_params, b1, sizeof b1),
           info.num_tensors);
    if (info.num_class_embeds > 0) {
        printf("classes: %d", info.num_class_embeds);
        if (info.null_class >= 0) printf(" (class %d is the null class of guidance)", info.null_class);
        if (info.guidance > 0) printf(", default guidance %g", info.guidance);
        printf("\n");
    } else {
        printf("classes: none (unconditional)\n");
    }
    printf("scheduler: %s%s, T = %d, prediction %s, clip_sample %s\n", sched.class_name,
           sched.found ? "" : " (no scheduler_config.json: diffusers' defaults)", sched.diffusion->T,
           prediction_name(sched.prediction), sched.clip_sample ? "true" : "false");
    ddpm_pipeline_scheduler_free(&sched);
    ddpm_model_free(m);
    return CLI_OK;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    const char *path = a->positional[0];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return folder_info(path);
    ddpm_safetensors *st = NULL;
    if (ddpm_st_open(path, &st) != DDPM_OK) return cli_fail();
    int n = ddpm_st_count(st), name_w = 4, shape_w = 5, numel_w = 5;
    unsigned long long params = 0, bytes = 0;
    char shape[DDPM_ST_MAX_DIMS * 24 + 4], b1[40], b2[40];
    for (int i = 0; i < n; i++) {
        const ddpm_st_tensor *t = ddpm_st_at(st, i);
        int w = print_safe(NULL, t->name, 200);
        if (w > name_w) name_w = w > 60 ? 60 : w;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            printf("%-*s  %-5s  %-*s  %*s\n", name_w, "name", "dtype", shape_w, "shape", numel_w, "numel");
        for (int i = 0; i < n; i++) {
            const ddpm_st_tensor *t = ddpm_st_at(st, i);
            int o = snprintf(shape, sizeof shape, "[");
            for (int k = 0; k < t->ndim; k++)
                o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
            snprintf(shape + o, sizeof shape - (size_t)o, "]");
            if (pass == 0) {
                if ((int)strlen(shape) > shape_w) shape_w = (int)strlen(shape);
                int nw = (int)strlen(grouped((unsigned long long)t->numel, b1, sizeof b1));
                if (nw > numel_w) numel_w = nw;
                params += (unsigned long long)t->numel;
                bytes += t->nbytes;
                continue;
            }
            int cols = print_safe(stdout, t->name, 200);
            printf("%*s  %-5s  %-*s  %*s\n", cols < name_w ? name_w - cols : 0, "", ddpm_dtype_name(t->dtype),
                   shape_w, shape, numel_w, grouped((unsigned long long)t->numel, b1, sizeof b1));
        }
    }
    printf("\n%d tensor%s, %s parameter%s, %s bytes of data (%s)\n", n, n == 1 ? "" : "s",
           grouped(params, b1, sizeof b1), params == 1 ? "" : "s", grouped(bytes, b2, sizeof b2),
           human_bytes(bytes, shape, sizeof shape));
    int m = ddpm_st_metadata_count(st);
    if (m > 0) {
        printf("\nmetadata:\n");
        for (int i = 0; i < m; i++) {
            const char *key, *value;
            ddpm_st_metadata_at(st, i, &key, &value);
            printf("  ");
            print_safe(stdout, key, 200);
            printf(": ");
            print_safe(stdout, value, 2000);
            putchar('\n');
        }
    }
    ddpm_st_close(st);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        return cli_error(CLI_FAIL, "cannot write to standard output");
    }
    return CLI_OK;
}

const cli_command cli_cmd_info = {
    "info",
    "list the tensors, parameter count and metadata of a .safetensors file, or describe a model folder",
    "FILE.safetensors|MODEL_DIR",
    "FILE.safetensors|MODEL_DIR", 1, 1, options,
    "examples:\n  ddpm info model/unet/diffusion_pytorch_model.safetensors\n  ddpm info models/mnist\n",
    run,
};
