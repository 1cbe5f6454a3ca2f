/* params.c — the parameter table: every tensor the layer graph of UNet2DModel (or BasicUNet) declares, under its
   diffusers state_dict key, sorted into state_dict order, with PyTorch's layout and default initialisation;
   loading and saving safetensors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

#define NAME_MAX_LEN 256
#define LIST_NAMES 4   /* names quoted in a message about missing or unexpected tensors */

/* ------------------------------------------------------------------ the table, from the layer graph */

/* diffusers registers a module's children in its __init__ order, and state_dict walks them in that order. The
   names of sibling modules, in registration order (every list a set of siblings: UNet2DModel; BasicUNet; a down
   or up block; ResnetBlock2D; Attention; TimestepEmbedding; a parameter's leaves). */
static const char *const registration_order[] = {
    "conv_in", "time_proj", "time_embedding", "class_embedding", "down_blocks", "up_blocks", "mid_block",
    "conv_norm_out", "conv_act", "conv_out",
    "down_layers", "up_layers",
    "attentions", "resnets", "downsamplers", "upsamplers",
    "norm1", "conv1", "time_emb_proj", "norm2", "conv2", "conv_shortcut",
    "group_norm", "to_q", "to_k", "to_v", "to_out",
    "linear_1", "linear_2",
    "conv",
    "weight", "bias",
};
#define REGISTRATION_NAMES ((int)(sizeof registration_order / sizeof registration_order[0]))

/* Rank of one dot-separated component [s, s + n): a ModuleList index ranks by its value, a name by its place in
   registration_order; -1 for a name not there. */
static long long component_rank(const char *s, size_t n) {
    int digits = n > 0 && n < 10;
    for (size_t i = 0; i < n && digits; i++) digits = s[i] >= '0' && s[i] <= '9';
    if (digits) {
        long long v = 0;
        for (size_t i = 0; i < n; i++) v = 10 * v + (s[i] - '0');
        return v;
    }
    for (int k = 0; k < REGISTRATION_NAMES; k++)
        if (strlen(registration_order[k]) == n && memcmp(registration_order[k], s, n) == 0) return k;
    return -1;
}

/* state_dict order of two keys: component by component, by rank (-2: a name outside registration_order). */
static int state_dict_cmp(const char *a, const char *b) {
    while (*a && *b) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        long long ra = component_rank(a, na), rb = component_rank(b, nb);
        if (ra < 0 || rb < 0) return -2;
        if (ra != rb) return ra < rb ? -1 : 1;
        a += na + (a[na] == '.');
        b += nb + (b[nb] == '.');
    }
    return *a ? 1 : *b ? -1 : 0;
}

ddpm_status dd_model_params_build(const dd_model_config *c, dd_model_params *p) {
    memset(p, 0, sizeof *p);
    dd_graph g;
    ddpm_status st = dd_model_graph_build(&g, c, 1);   /* the training graph: every layer */
    if (st != DDPM_OK) return st;
    const int n = g.nparams;
    int *order = dd_alloc(sizeof(int) * (size_t)(n ? n : 1));
    p->t = dd_calloc((size_t)(n ? n : 1), sizeof *p->t);
    if (!order || !p->t) st = DDPM_ERR_NOMEM;
    /* insertion sort of the graph's declarations into state_dict order (stable, a few hundred names) */
    for (int i = 0; i < n && st == DDPM_OK; i++) {
        int j = i;
        while (j > 0) {
            int r = state_dict_cmp(g.params[order[j - 1]].name, g.params[i].name);
            if (r == -2) {
                st = dd_error(DDPM_ERR_INTERNAL, "parameter table: no registration order for '%s' or '%s'",
                              g.params[order[j - 1]].name, g.params[i].name);
                break;
            }
            if (r <= 0) break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    if (n == 1 && state_dict_cmp(g.params[0].name, g.params[0].name) == -2)
        st = dd_error(DDPM_ERR_INTERNAL, "parameter table: no registration order for '%s'", g.params[0].name);
    for (int i = 0; i < n && st == DDPM_OK; i++) {
        const dd_param *d = &g.params[order[i]];
        dd_model_tensor *t = &p->t[i];
        if (!(t->name = dd_strdup(d->name))) {
            st = DDPM_ERR_NOMEM;
            break;
        }
        p->count = p->cap = i + 1;
        t->ndim = d->ndim;
        memcpy(t->shape, d->shape, sizeof t->shape);
        t->numel = d->numel;
        t->offset = p->num_params;
        t->init = d->init;
        t->fan_in = d->fan_in;
        p->num_params += t->numel;
        if (p->num_params > DD_MODEL_MAX_PARAMS)
            st = dd_error(DDPM_ERR_INVALID_ARG, "the configuration has more than %lld parameters; that is not a "
                          "model this engine can hold", (long long)DD_MODEL_MAX_PARAMS);
    }
    dd_free(order);
    dd_graph_free(&g);
    if (st != DDPM_OK) dd_model_params_free(p);
    return st;
}

void dd_model_params_free(dd_model_params *p) {
    if (!p) return;
    for (int i = 0; i < p->count; i++) dd_free(p->t[i].name);
    dd_free(p->t);
    memset(p, 0, sizeof *p);
}

int dd_model_params_find(const dd_model_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->t[i].name, name) == 0) return i;
    return -1;
}

void dd_model_params_init(const dd_model_params *p, float *params, uint64_t seed) {
    double u[1024];
    for (int i = 0; i < p->count; i++) {
        const dd_model_tensor *t = &p->t[i];
        float *dst = params + t->offset;
        uint64_t stream = ddpm_rng_stream(DDPM_STREAM_PARAM_INIT, (uint32_t)i, 0);
        switch (t->init) {
        case DD_INIT_ONES:
            for (int64_t k = 0; k < t->numel; k++) dst[k] = 1.0f;
            break;
        case DD_INIT_ZEROS:
            memset(dst, 0, sizeof(float) * (size_t)t->numel);
            break;
        case DD_INIT_NORMAL:
            ddpm_rng_normal_f32(seed, stream, 0, dst, (size_t)t->numel);
            break;
        case DD_INIT_FAN_IN: {
            /* kaiming_uniform_(a = sqrt(5)) for weights and the bias rule both give bound 1/sqrt(fan_in) */
            double bound = 1.0 / sqrt((double)(t->fan_in > 0 ? t->fan_in : 1));
            for (int64_t k0 = 0; k0 < t->numel; k0 += 1024) {
                size_t m = (size_t)(t->numel - k0 < 1024 ? t->numel - k0 : 1024);
                ddpm_rng_uniform_f64(seed, stream, (uint64_t)k0, u, m);
                for (size_t k = 0; k < m; k++) dst[k0 + (int64_t)k] = (float)(bound * (2.0 * u[k] - 1.0));
            }
            break;
        }
        }
    }
}

/* ------------------------------------------------------------------ safetensors */

/* diffusers' _convert_deprecated_attention_blocks: old AttentionBlock keys (query, key, value, proj_attn)
   for the new names (to_q, to_k, to_v, to_out.0). Returns 1 and the old name if `name` has one. */
static int deprecated_name(const char *name, char *out, size_t cap) {
    static const char *const now[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."};
    static const char *const old[] = {".query.", ".key.", ".value.", ".proj_attn."};
    if (!strstr(name, "attentions.")) return 0;
    for (int i = 0; i < 4; i++) {
        const char *at = strstr(name, now[i]);
        if (!at) continue;
        snprintf(out, cap, "%.*s%s%s", (int)(at - name), name, old[i], at + strlen(now[i]));
        return 1;
    }
    return 0;
}

static int is_float_dtype(ddpm_dtype d) {
    return d == DDPM_DTYPE_F32 || d == DDPM_DTYPE_F16 || d == DDPM_DTYPE_BF16 || d == DDPM_DTYPE_F64;
}

static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "",
                                                                   (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static void list_append(char *list, size_t cap, int *count, const char *name) {
    if (*count < LIST_NAMES) {
        size_t n = strlen(list);
        snprintf(list + n, cap - n, "%s'%s'", *count ? ", " : "", name);
    }
    (*count)++;
}

ddpm_status dd_model_params_load(const dd_model_params *p, float *params, const char *path) {
    ddpm_safetensors *st = NULL;
    ddpm_status s = ddpm_st_open(path, &st);
    if (s != DDPM_OK) return s;
    const char **src = dd_calloc((size_t)(p->count ? p->count : 1), sizeof *src);
    if (!src) {
        ddpm_st_close(st);
        return DDPM_ERR_NOMEM;
    }
    char missing[600] = "", extra[600] = "", alias[NAME_MAX_LEN], bad[640] = "";
    int nmissing = 0, nextra = 0;
    for (int i = 0; i < p->count; i++) {
        const dd_model_tensor *t = &p->t[i];
        const ddpm_st_tensor *f = ddpm_st_find(st, t->name);
        if (!f && deprecated_name(t->name, alias, sizeof alias)) f = ddpm_st_find(st, alias);
        if (!f) {
            list_append(missing, sizeof missing, &nmissing, t->name);
            continue;
        }
        src[i] = f->name;
        int same = f->ndim == t->ndim;
        for (int k = 0; same && k < t->ndim; k++) same = f->shape[k] == t->shape[k];
        if (bad[0]) continue;   /* the first mis-shaped or non-float tensor is reported */
        if (!same) {
            char a[96], b[96];
            fmt_shape(a, sizeof a, f->ndim, f->shape);
            fmt_shape(b, sizeof b, t->ndim, t->shape);
            snprintf(bad, sizeof bad, "tensor '%.120s' has shape %s but the model's %.120s is %s (the weights belong "
                     "to a different configuration)", f->name, a, t->name, b);
        } else if (!is_float_dtype(f->dtype)) {
            snprintf(bad, sizeof bad, "tensor '%.120s' has dtype %s; parameters must be F32, F16 or BF16", f->name,
                     ddpm_dtype_name(f->dtype));
        }
    }
    for (int i = 0; i < ddpm_st_count(st); i++) {
        const char *name = ddpm_st_at(st, i)->name;
        int used = 0;
        for (int k = 0; k < p->count && !used; k++) used = src[k] && strcmp(src[k], name) == 0;
        if (!used) list_append(extra, sizeof extra, &nextra, name);
    }
    if (nmissing || nextra) {   /* names first: they say more than a shape */
        char a[700] = "", b[700] = "";
        if (nmissing)
            snprintf(a, sizeof a, "%d parameter%s missing (%s%s)", nmissing, nmissing == 1 ? " is" : "s are", missing,
                     nmissing > LIST_NAMES ? ", ..." : "");
        if (nextra)
            snprintf(b, sizeof b, "%s%d unexpected tensor%s (%s%s)", nmissing ? "; " : "", nextra,
                     nextra == 1 ? "" : "s", extra, nextra > LIST_NAMES ? ", ..." : "");
        s = dd_error(DDPM_ERR_FORMAT, "%s: does not match the model: %s%s", path, a, b);
    } else if (bad[0]) {
        s = dd_error(DDPM_ERR_FORMAT, "%s: %s", path, bad);
    }
    for (int i = 0; i < p->count && s == DDPM_OK; i++)
        s = ddpm_st_read_f32(st, src[i], params + p->t[i].offset, p->t[i].numel);
    dd_free(src);
    ddpm_st_close(st);
    return s;
}

ddpm_status dd_model_params_save(const dd_model_params *p, const float *params, const char *path) {
    ddpm_st_writer *w = NULL;
    ddpm_status s = ddpm_st_writer_create(&w);
    if (s != DDPM_OK) return s;
    s = ddpm_st_writer_set_metadata(w, "format", "pt");
    for (int i = 0; i < p->count && s == DDPM_OK; i++) {
        const dd_model_tensor *t = &p->t[i];
        s = ddpm_st_writer_add(w, t->name, DDPM_DTYPE_F32, t->ndim, t->shape, params + t->offset);
    }
    if (s == DDPM_OK) s = ddpm_st_writer_save(w, path);
    ddpm_st_writer_free(w);
    return s;
}
