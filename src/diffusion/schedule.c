/* schedule.c — noise schedules beta_k (k = 0..T-1) in double: linear, scaled_linear, cosine, sqrt, sigmoid,
   sigmoid_chen, and betas read from a text or safetensors file. */
#include "diffusion/schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define DD_PI 3.14159265358979323846
/* Text files of betas: at most 512 MiB (1e7 lines of ~50 characters). */
#define DD_SCHEDULE_MAX_FILE ((size_t)512 << 20)
#define DD_SCHEDULE_MAX_LINE 128

const char *const ddpm_schedule_names[] = {
    "linear", "scaled_linear", "cosine", "squaredcos_cap_v2", "sqrt", "sigmoid", "sigmoid_chen", NULL,
};

void ddpm_schedule_config_default(ddpm_schedule_config *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->name = "linear";
    c->T = 1000;
    c->beta_start = 1e-4;
    c->beta_end = 0.02;
    c->scale_to_T = 0;
    c->cosine_s = 0.008;
    c->sqrt_s = 1e-4;
    c->max_beta = 0.999;
    c->sigmoid_start = -3.0;
    c->sigmoid_end = 3.0;
    c->sigmoid_tau = 1.0;
}

/* "linear, scaled_linear, ..., file:PATH" into buf. */
static const char *valid_names(char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; ddpm_schedule_names[i]; i++) {
        int k = snprintf(buf + used, cap - used, "%s, ", ddpm_schedule_names[i]);
        if (k < 0 || (size_t)k >= cap - used) break;
        used += (size_t)k;
    }
    snprintf(buf + used, cap - used, "file:PATH");
    return buf;
}

ddpm_status dd_schedule_check_betas(const double *betas, int T, const char *what) {
    if (T < 1 || T > DD_SCHEDULE_MAX_T)
        return dd_error(DDPM_ERR_INVALID_ARG, "%s: T = %d diffusion steps is out of range (1..%d)", what, T,
                        DD_SCHEDULE_MAX_T);
    if (!betas) return dd_error(DDPM_ERR_INVALID_ARG, "%s: betas is NULL", what);
    for (int k = 0; k < T; k++) {
        double b = betas[k];
        if (!isfinite(b))
            return dd_error(DDPM_ERR_NUMERIC, "%s: beta[%d] is %g; every beta must be finite", what, k, b);
        if (!(b > 0.0 && b < 1.0))
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: beta[%d] = %.17g is outside (0, 1)", what, k, b);
    }
    return DDPM_OK;
}

/* numpy.linspace(a, b, n): out[i] = i * step + a, out[n-1] = b exactly. */
static void linspace(double a, double b, int n, double *out) {
    if (n == 1) {
        out[0] = a;
        return;
    }
    double step = (b - a) / (double)(n - 1);
    for (int i = 0; i < n; i++) out[i] = (double)i * step + a;
    out[n - 1] = b;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* alpha_bar(tau), tau in [0, 1], for the schedules defined through it. */
typedef enum { AB_COSINE, AB_SQRT, AB_SIGMOID_CHEN } alpha_bar_kind;

static double alpha_bar(alpha_bar_kind kind, const ddpm_schedule_config *c, double tau) {
    switch (kind) {
    case AB_COSINE: { /* Nichol & Dhariwal 2021, eq. 17: f(t) = cos^2(((t/T + s)/(1 + s)) pi/2) */
        double v = cos((tau + c->cosine_s) / (1.0 + c->cosine_s) * DD_PI / 2.0);
        return v * v;
    }
    case AB_SQRT: /* Li et al. 2022 (Diffusion-LM), sec. 4.2: alpha_bar = 1 - sqrt(t + s) */
        return 1.0 - sqrt(tau + c->sqrt_s);
    case AB_SIGMOID_CHEN: { /* Chen 2023, "On the importance of noise scheduling", Alg. 1 */
        double v_start = sigmoid(c->sigmoid_start / c->sigmoid_tau);
        double v_end = sigmoid(c->sigmoid_end / c->sigmoid_tau);
        double s = sigmoid((tau * (c->sigmoid_end - c->sigmoid_start) + c->sigmoid_start) / c->sigmoid_tau);
        return (v_end - s) / (v_end - v_start);
    }
    }
    return NAN;
}

/* diffusers betas_for_alpha_bar: beta_i = min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), max_beta).
   A NaN (alpha_bar <= 0 for a bad offset) stays NaN so that the final check names it. */
static void betas_from_alpha_bar(alpha_bar_kind kind, const ddpm_schedule_config *c, double *betas) {
    int T = c->T;
    for (int i = 0; i < T; i++) {
        double t1 = (double)i / (double)T, t2 = (double)(i + 1) / (double)T;
        double b = 1.0 - alpha_bar(kind, c, t2) / alpha_bar(kind, c, t1);
        if (b > c->max_beta) b = c->max_beta;
        betas[i] = b;
    }
}

static ddpm_status check_beta_range(const char *name, double b0, double b1) {
    if (!isfinite(b0) || !isfinite(b1) || !(b0 > 0.0 && b0 < 1.0) || !(b1 > 0.0 && b1 < 1.0))
        return dd_error(DDPM_ERR_INVALID_ARG,
                        "schedule '%s': beta_start = %g and beta_end = %g must both lie in (0, 1)", name, b0, b1);
    return DDPM_OK;
}

static ddpm_status check_max_beta(const char *name, double m) {
    if (!(m > 0.0 && m < 1.0))
        return dd_error(DDPM_ERR_INVALID_ARG, "schedule '%s': max_beta = %g must lie in (0, 1)", name, m);
    return DDPM_OK;
}

ddpm_status ddpm_schedule_betas(const ddpm_schedule_config *cfg, double *betas) {
    if (!cfg) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_schedule_betas: config is NULL");
    if (!betas) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_schedule_betas: output array is NULL");
    const char *name = cfg->name;
    char names[256];
    if (!name || !name[0])
        return dd_error(DDPM_ERR_INVALID_ARG, "schedule name is empty (valid: %s)", valid_names(names, sizeof names));
    int T = cfg->T;
    if (T < 1 || T > DD_SCHEDULE_MAX_T)
        return dd_error(DDPM_ERR_INVALID_ARG, "schedule '%s': T = %d diffusion steps is out of range (1..%d)", name,
                        T, DD_SCHEDULE_MAX_T);
    if (cfg->scale_to_T && strcmp(name, "linear") != 0)
        return dd_error(DDPM_ERR_INVALID_ARG,
                        "schedule '%s': scale_to_T applies to the 'linear' schedule only", name);
    ddpm_status st;

    if (strncmp(name, "file:", 5) == 0) {
        double *fb = NULL;
        int n = 0;
        if ((st = dd_schedule_load_file(name + 5, &fb, &n)) != DDPM_OK) return st;
        if (n != T) {
            dd_free(fb);
            return dd_error(DDPM_ERR_INVALID_ARG, "%s: holds %d betas but T = %d; set T to %d", name + 5, n, T, n);
        }
        memcpy(betas, fb, sizeof(double) * (size_t)T);
        dd_free(fb);
        return DDPM_OK;
    }

    if (strcmp(name, "linear") == 0) {
        /* Ho et al. 2020, sec. 4 (1e-4 .. 0.02); diffusers "linear". improved-diffusion
           get_named_beta_schedule scales both ends by 1000 / T. */
        double b0 = cfg->beta_start, b1 = cfg->beta_end;
        if (cfg->scale_to_T) {
            double scale = 1000.0 / (double)T;
            b0 = scale * b0;
            b1 = scale * b1;
        }
        if ((st = check_beta_range(name, b0, b1)) != DDPM_OK) return st;
        linspace(b0, b1, T, betas);
    } else if (strcmp(name, "scaled_linear") == 0) {
        /* diffusers "scaled_linear" (latent diffusion): linspace(sqrt b0, sqrt b1, T)^2. */
        if ((st = check_beta_range(name, cfg->beta_start, cfg->beta_end)) != DDPM_OK) return st;
        linspace(sqrt(cfg->beta_start), sqrt(cfg->beta_end), T, betas);
        for (int i = 0; i < T; i++) betas[i] = betas[i] * betas[i];
    } else if (strcmp(name, "sigmoid") == 0) {
        /* diffusers "sigmoid" (GeoDiff, Xu et al. 2022): sigmoid(linspace(-6, 6, T)) (b1 - b0) + b0. */
        if ((st = check_beta_range(name, cfg->beta_start, cfg->beta_end)) != DDPM_OK) return st;
        linspace(-6.0, 6.0, T, betas);
        for (int i = 0; i < T; i++)
            betas[i] = sigmoid(betas[i]) * (cfg->beta_end - cfg->beta_start) + cfg->beta_start;
    } else if (strcmp(name, "cosine") == 0 || strcmp(name, "squaredcos_cap_v2") == 0) {
        if ((st = check_max_beta(name, cfg->max_beta)) != DDPM_OK) return st;
        if (!(isfinite(cfg->cosine_s) && cfg->cosine_s >= 0.0 && cfg->cosine_s < 1.0))
            return dd_error(DDPM_ERR_INVALID_ARG, "schedule '%s': cosine_s = %g must lie in [0, 1)", name,
                            cfg->cosine_s);
        betas_from_alpha_bar(AB_COSINE, cfg, betas);
    } else if (strcmp(name, "sqrt") == 0) {
        if ((st = check_max_beta(name, cfg->max_beta)) != DDPM_OK) return st;
        if (!(isfinite(cfg->sqrt_s) && cfg->sqrt_s >= 0.0 && cfg->sqrt_s < 1.0))
            return dd_error(DDPM_ERR_INVALID_ARG, "schedule 'sqrt': sqrt_s = %g must lie in [0, 1)", cfg->sqrt_s);
        betas_from_alpha_bar(AB_SQRT, cfg, betas);
    } else if (strcmp(name, "sigmoid_chen") == 0) {
        if ((st = check_max_beta(name, cfg->max_beta)) != DDPM_OK) return st;
        if (!(isfinite(cfg->sigmoid_start) && isfinite(cfg->sigmoid_end) && cfg->sigmoid_start < cfg->sigmoid_end))
            return dd_error(DDPM_ERR_INVALID_ARG,
                            "schedule 'sigmoid_chen': sigmoid_start = %g must be below sigmoid_end = %g",
                            cfg->sigmoid_start, cfg->sigmoid_end);
        if (!(isfinite(cfg->sigmoid_tau) && cfg->sigmoid_tau > 0.0))
            return dd_error(DDPM_ERR_INVALID_ARG, "schedule 'sigmoid_chen': sigmoid_tau = %g must be > 0",
                            cfg->sigmoid_tau);
        betas_from_alpha_bar(AB_SIGMOID_CHEN, cfg, betas);
    } else {
        return dd_error(DDPM_ERR_INVALID_ARG, "unknown schedule '%s' (valid: %s)", name,
                        valid_names(names, sizeof names));
    }
    char what[96];
    snprintf(what, sizeof what, "schedule '%s' (T = %d)", name, T);
    return dd_schedule_check_betas(betas, T, what);
}

/* ------------------------------------------------------------------------------------ betas from files */

/* Copies at most cap-1 bytes of s[0..n) into out, replacing unprintable bytes, for error messages. */
static const char *printable(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0;
    for (; k < n && k + 1 < cap; k++) {
        unsigned char ch = (unsigned char)s[k];
        out[k] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    out[k] = 0;
    return out;
}

ddpm_status dd_schedule_parse_text(const char *buf, size_t len, double **betas, int *T) {
    if (!betas || !T) return dd_error(DDPM_ERR_INVALID_ARG, "dd_schedule_parse_text: NULL output");
    *betas = NULL;
    *T = 0;
    if (!buf && len) return dd_error(DDPM_ERR_INVALID_ARG, "dd_schedule_parse_text: NULL buffer");
    double *out = NULL;
    int n = 0, cap = 0;
    long line = 0;
    size_t pos = 0;
    char tmp[DD_SCHEDULE_MAX_LINE], shown[48];
    while (pos < len) {
        line++;
        size_t start = pos, end = pos;
        while (end < len && buf[end] != '\n') end++;
        pos = end < len ? end + 1 : end;
        /* Drop a comment, then surrounding blanks (space, tab, CR, VT, FF). */
        const char *hash = memchr(buf + start, '#', end - start);
        if (hash) end = (size_t)(hash - buf);
        while (start < end && strchr(" \t\r\v\f", buf[start]) && buf[start]) start++;
        while (end > start && strchr(" \t\r\v\f", buf[end - 1]) && buf[end - 1]) end--;
        if (start == end) continue;
        size_t m = end - start;
        if (m >= sizeof tmp) {
            dd_free(out);
            return dd_error(DDPM_ERR_FORMAT, "betas file, line %ld: '%s...' is too long for a number", line,
                            printable(shown, sizeof shown, buf + start, 32));
        }
        memcpy(tmp, buf + start, m);
        tmp[m] = 0;
        char *stop = NULL;
        double v = strtod(tmp, &stop);
        if (stop != tmp + m || memchr(tmp, 0, m)) {
            dd_free(out);
            return dd_error(DDPM_ERR_FORMAT, "betas file, line %ld: '%s' is not a number", line,
                            printable(shown, sizeof shown, buf + start, m));
        }
        if (!isfinite(v) || !(v > 0.0 && v < 1.0)) {
            dd_free(out);
            return dd_error(DDPM_ERR_FORMAT, "betas file, line %ld: beta = %s is outside (0, 1)", line,
                            printable(shown, sizeof shown, buf + start, m));
        }
        if (n == DD_SCHEDULE_MAX_T) {
            dd_free(out);
            return dd_error(DDPM_ERR_FORMAT, "betas file: more than %d betas", DD_SCHEDULE_MAX_T);
        }
        if (n == cap) {
            int ncap = cap ? (cap > DD_SCHEDULE_MAX_T / 2 ? DD_SCHEDULE_MAX_T : cap * 2) : 1024;
            double *grown = dd_realloc(out, sizeof(double) * (size_t)ncap);
            if (!grown) {
                dd_free(out);
                return dd_error(DDPM_ERR_NOMEM, "betas file: out of memory for %d values", ncap);
            }
            out = grown;
            cap = ncap;
        }
        out[n++] = v;
    }
    if (n == 0) {
        dd_free(out);
        return dd_error(DDPM_ERR_FORMAT, "betas file holds no values (one beta per line expected)");
    }
    *betas = out;
    *T = n;
    return DDPM_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static ddpm_status load_safetensors(const char *path, double **betas, int *T) {
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open(path, &st);
    if (s != DDPM_OK) return s;
    const ddpm_st_tensor *t = ddpm_st_find(st, "betas");
    if (!t) {
        ddpm_st_close(st);
        return dd_error(DDPM_ERR_FORMAT, "%s: no tensor named 'betas'", path);
    }
    if (t->ndim != 1 || t->numel < 1 || t->numel > DD_SCHEDULE_MAX_T) {
        int ndim = t->ndim;
        long long numel = (long long)t->numel;
        ddpm_st_close(st);
        return dd_error(DDPM_ERR_FORMAT, "%s: tensor 'betas' must be 1-D with 1..%d values (ndim %d, %lld values)",
                        path, DD_SCHEDULE_MAX_T, ndim, numel);
    }
    int n = (int)t->numel;
    double *out = dd_alloc(sizeof(double) * (size_t)n);
    if (!out) {
        ddpm_st_close(st);
        return DDPM_ERR_NOMEM;
    }
    s = ddpm_st_read_f64(st, "betas", out, n);
    ddpm_st_close(st);
    if (s != DDPM_OK) {
        dd_free(out);
        return dd_error_prefix(s, path);
    }
    if ((s = dd_schedule_check_betas(out, n, path)) != DDPM_OK) {
        dd_free(out);
        return s;
    }
    *betas = out;
    *T = n;
    return DDPM_OK;
}

ddpm_status dd_schedule_load_file(const char *path, double **betas, int *T) {
    if (!betas || !T) return dd_error(DDPM_ERR_INVALID_ARG, "dd_schedule_load_file: NULL output");
    *betas = NULL;
    *T = 0;
    if (!path || !path[0]) return dd_error(DDPM_ERR_INVALID_ARG, "schedule 'file:': the path is empty");
    if (ends_with(path, ".safetensors")) return load_safetensors(path, betas, T);
    uint8_t *data = NULL;
    size_t len = 0;
    ddpm_status s = dd_read_file(path, DD_SCHEDULE_MAX_FILE, &data, &len);
    if (s != DDPM_OK) return s;
    s = dd_schedule_parse_text((const char *)data, len, betas, T);
    dd_free(data);
    if (s != DDPM_OK) return dd_error_prefix(s, path);
    return DDPM_OK;
}
