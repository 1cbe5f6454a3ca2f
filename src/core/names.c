/* names.c — the spellings of the library's enums (the command line's and diffusers' words) both ways, and the
   "did you mean" of a mistyped word. */
#include <stdio.h>
#include <string.h>

#include "core.h"

typedef struct {
    const char *name;
    int value;
    int alias;   /* accepted, not listed */
} dd_name;

static const dd_name engines[] = {{"fast", DDPM_ENGINE_FAST, 0}, {"reference", DDPM_ENGINE_REFERENCE, 0},
                                  {"bf16", DDPM_ENGINE_BF16, 0}, {NULL, 0, 0}};
static const dd_name samplers[] = {{"ddpm", DDPM_SAMPLER_DDPM, 0},       {"ddim", DDPM_SAMPLER_DDIM, 0},
                                   {"dpmpp2m", DDPM_SAMPLER_DPMPP2M, 0}, {"dpm++2m", DDPM_SAMPLER_DPMPP2M, 1},
                                   {"dpm++", DDPM_SAMPLER_DPMPP2M, 1},   {"dpmpp", DDPM_SAMPLER_DPMPP2M, 1},
                                   {NULL, 0, 0}};
static const dd_name spacings[] = {{"leading", DDPM_SPACING_LEADING, 0}, {"trailing", DDPM_SPACING_TRAILING, 0},
                                   {"linspace", DDPM_SPACING_LINSPACE, 0}, {NULL, 0, 0}};
static const dd_name predictions[] = {{"eps", DDPM_PRED_EPS, 0},        {"x0", DDPM_PRED_X0, 0},
                                      {"v", DDPM_PRED_V, 0},            {"epsilon", DDPM_PRED_EPS, 1},
                                      {"sample", DDPM_PRED_X0, 1},      {"v_prediction", DDPM_PRED_V, 1},
                                      {NULL, 0, 0}};
static const dd_name lr_schedules[] = {{"constant", DDPM_LR_CONSTANT, 0}, {"cosine", DDPM_LR_COSINE, 0}, {NULL, 0, 0}};

static const dd_name *table(ddpm_enum_kind kind, const char **what) {
    switch (kind) {
    case DDPM_ENUM_ENGINE: *what = "engine"; return engines;
    case DDPM_ENUM_SAMPLER: *what = "sampler"; return samplers;
    case DDPM_ENUM_SPACING: *what = "timestep spacing"; return spacings;
    case DDPM_ENUM_PREDICTION: *what = "prediction type"; return predictions;
    case DDPM_ENUM_LR_SCHEDULE: *what = "learning-rate schedule"; return lr_schedules;
    }
    *what = "name";
    return NULL;
}

/* Levenshtein distance of two short words (longer ones count as far apart). */
static int distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 1000;
    int row[64];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j], v = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < v) v = up + 1;
            if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
            diag = up;
            row[j] = v;
        }
    }
    return row[m];
}

const char *ddpm_closest(const char *word, const char *const *cands, int n) {
    if (!word || !cands) return NULL;
    const char *best = NULL;
    int bestd = 1000;
    size_t wl = strlen(word);
    for (int i = 0; i < n; i++) {
        if (!cands[i]) continue;
        int d = distance(word, cands[i]);
        if (wl >= 2 && strncmp(cands[i], word, wl) == 0 && d > 1) d = 1;   /* a prefix counts as one edit */
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    int limit = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    return bestd <= limit ? best : NULL;
}

const char *ddpm_enum_name(ddpm_enum_kind kind, int value) {
    const char *what;
    const dd_name *t = table(kind, &what);
    for (int i = 0; t && t[i].name; i++)
        if (t[i].value == value && !t[i].alias) return t[i].name;
    return NULL;
}

ddpm_status ddpm_enum_from_name(ddpm_enum_kind kind, const char *name, int *value) {
    const char *what;
    const dd_name *t = table(kind, &what);
    if (!t || !name || !value) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_enum_from_name: unknown kind or NULL argument");
    const char *listed[16];
    int n = 0;
    for (int i = 0; t[i].name; i++) {
        if (strcmp(t[i].name, name) == 0) {
            *value = t[i].value;
            return DDPM_OK;
        }
        if (!t[i].alias && n < 16) listed[n++] = t[i].name;
    }
    const char *near = ddpm_closest(name, listed, n);
    if (near) return dd_error(DDPM_ERR_INVALID_ARG, "unknown %s '%.64s' (did you mean '%s'?)", what, name, near);
    char list[256];
    size_t o = 0;
    for (int i = 0; i < n && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", listed[i]);
    return dd_error(DDPM_ERR_INVALID_ARG, "unknown %s '%.64s' (choose %s)", what, name, list);
}
