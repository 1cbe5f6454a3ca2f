/* params.c — the parameter table: every tensor of UNet2DModel (or BasicUNet) under its diffusers state_dict
   key, in state_dict order, with PyTorch's layout and default initialisation; loading and saving safetensors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

#define NAME_MAX_LEN 256
#define LIST_NAMES 4   /* names quoted in a message about missing or unexpected tensors */

/* Table builder with a sticky status, so the layer walk below reads like the module tree. */
typedef struct {
    dd_model_params *p;
    ddpm_status st;
} builder;

static void add(builder *b, const char *name, int ndim, const int64_t *shape, dd_param_init init, int64_t fan_in) {
    if (b->st != DDPM_OK) return;
    dd_model_params *p = b->p;
    if (p->count == p->cap) {
        int cap = p->cap ? 2 * p->cap : 256;
        dd_model_tensor *t = dd_realloc(p->t, sizeof *t * (size_t)cap);
        if (!t) {
            b->st = DDPM_ERR_NOMEM;
            return;
        }
        p->t = t;
        p->cap = cap;
    }
    dd_model_tensor *t = &p->t[p->count];
    memset(t, 0, sizeof *t);
    t->name = dd_strdup(name);
    if (!t->name) {
        b->st = DDPM_ERR_NOMEM;
        return;
    }
    p->count++;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->offset = p->num_params;
    t->init = init;
    t->fan_in = fan_in;
    p->num_params += t->numel;
    if (p->num_params > DD_MODEL_MAX_PARAMS)
        b->st = dd_error(DDPM_ERR_INVALID_ARG, "the configuration has more than %lld parameters; that is not a "
                         "model this engine can hold", (long long)DD_MODEL_MAX_PARAMS);
}

/* "<prefix>.<leaf>" into buf[NAME_MAX_LEN] (names are far shorter; an overlong one is cut). */
static const char *cat(char *buf, const char *prefix, const char *leaf) {
    size_t a = strlen(prefix), b = strlen(leaf);
    if (a > NAME_MAX_LEN - 2) a = NAME_MAX_LEN - 2;
    if (b > NAME_MAX_LEN - 2 - a) b = NAME_MAX_LEN - 2 - a;
    memmove(buf, prefix, a);
    buf[a] = '.';
    memcpy(buf + a + 1, leaf, b);
    buf[a + 1 + b] = 0;
    return buf;
}

/* torch.nn.Conv2d(ic, oc, k) with bias: weight [oc, ic, k, k], bias [oc]; both U(-1/sqrt(fan_in), ..). */
static void conv(builder *b, const char *prefix, int oc, int ic, int k) {
    char name[NAME_MAX_LEN];
    int64_t w[4] = {oc, ic, k, k}, bias[1] = {oc};
    int64_t fan_in = (int64_t)ic * k * k;
    add(b, cat(name, prefix, "weight"), 4, w, DD_INIT_FAN_IN, fan_in);
    add(b, cat(name, prefix, "bias"), 1, bias, DD_INIT_FAN_IN, fan_in);
}

/* torch.nn.Linear(in, out): weight [out, in], bias [out]. */
static void linear(builder *b, const char *prefix, int out, int in) {
    char name[NAME_MAX_LEN];
    int64_t w[2] = {out, in}, bias[1] = {out};
    add(b, cat(name, prefix, "weight"), 2, w, DD_INIT_FAN_IN, in);
    add(b, cat(name, prefix, "bias"), 1, bias, DD_INIT_FAN_IN, in);
}

/* torch.nn.GroupNorm(G, C, affine=True): weight 1, bias 0. */
static void groupnorm(builder *b, const char *prefix, int C) {
    char name[NAME_MAX_LEN];
    int64_t s[1] = {C};
    add(b, cat(name, prefix, "weight"), 1, s, DD_INIT_ONES, 0);
    add(b, cat(name, prefix, "bias"), 1, s, DD_INIT_ZEROS, 0);
}

/* diffusers ResnetBlock2D: norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut (when in != out). */
static void resnet(builder *b, const char *prefix, int in, int out, int temb) {
    char name[NAME_MAX_LEN];
    groupnorm(b, cat(name, prefix, "norm1"), in);
    conv(b, cat(name, prefix, "conv1"), out, in, 3);
    linear(b, cat(name, prefix, "time_emb_proj"), out, temb);
    groupnorm(b, cat(name, prefix, "norm2"), out);
    conv(b, cat(name, prefix, "conv2"), out, out, 3);
    if (in != out) conv(b, cat(name, prefix, "conv_shortcut"), out, in, 1);
}

/* diffusers Attention (spatial, _from_deprecated_attn_block): group_norm, to_q, to_k, to_v, to_out.0. */
static void attention(builder *b, const char *prefix, int C) {
    char name[NAME_MAX_LEN];
    groupnorm(b, cat(name, prefix, "group_norm"), C);
    linear(b, cat(name, prefix, "to_q"), C, C);
    linear(b, cat(name, prefix, "to_k"), C, C);
    linear(b, cat(name, prefix, "to_v"), C, C);
    linear(b, cat(name, prefix, "to_out.0"), C, C);
}

static void build_unet2d(builder *b, const dd_model_config *c) {
    char pre[NAME_MAX_LEN], name[NAME_MAX_LEN];
    int n = c->num_blocks, L = c->layers_per_block;
    const int *ch = c->block_out_channels;
    int temb = 4 * ch[0];
    conv(b, "conv_in", ch[0], c->in_channels, 3);
    linear(b, "time_embedding.linear_1", temb, ch[0]);
    linear(b, "time_embedding.linear_2", temb, temb);
    if (c->num_class_embeds > 0) {   /* nn.Embedding(num_class_embeds, 4 C0): N(0, 1) */
        int64_t s[2] = {c->num_class_embeds, temb};
        add(b, "class_embedding.weight", 2, s, DD_INIT_NORMAL, 0);
    }
    /* down_blocks: a block registers attentions before resnets, then downsamplers */
    int out_ch = ch[0];
    for (int i = 0; i < n; i++) {
        int in_ch = out_ch;
        out_ch = ch[i];
        if (c->down_attn[i])
            for (int j = 0; j < L; j++) {
                snprintf(pre, sizeof pre, "down_blocks.%d.attentions.%d", i, j);
                attention(b, pre, out_ch);
            }
        for (int j = 0; j < L; j++) {
            snprintf(pre, sizeof pre, "down_blocks.%d.resnets.%d", i, j);
            resnet(b, pre, j == 0 ? in_ch : out_ch, out_ch, temb);
        }
        if (i < n - 1) {
            snprintf(pre, sizeof pre, "down_blocks.%d.downsamplers.0.conv", i);
            conv(b, pre, out_ch, out_ch, 3);
        }
    }
    /* up_blocks (registered before mid_block in UNet2DModel.__init__) */
    out_ch = ch[n - 1];
    for (int i = 0; i < n; i++) {
        int prev = out_ch;
        out_ch = ch[n - 1 - i];
        int in_ch = ch[i + 1 < n ? n - 2 - i : 0];
        if (c->up_attn[i])
            for (int j = 0; j <= L; j++) {
                snprintf(pre, sizeof pre, "up_blocks.%d.attentions.%d", i, j);
                attention(b, pre, out_ch);
            }
        for (int j = 0; j <= L; j++) {
            int skip = j == L ? in_ch : out_ch;
            int res_in = j == 0 ? prev : out_ch;
            snprintf(pre, sizeof pre, "up_blocks.%d.resnets.%d", i, j);
            resnet(b, pre, res_in + skip, out_ch, temb);
        }
        if (i < n - 1) {
            snprintf(pre, sizeof pre, "up_blocks.%d.upsamplers.0.conv", i);
            conv(b, pre, out_ch, out_ch, 3);
        }
    }
    /* UNetMidBlock2D: attentions then resnets */
    if (c->mid_block && c->add_attention) attention(b, "mid_block.attentions.0", ch[n - 1]);
    for (int j = 0; c->mid_block && j < 2; j++) {
        snprintf(name, sizeof name, "mid_block.resnets.%d", j);
        resnet(b, name, ch[n - 1], ch[n - 1], temb);
    }
    groupnorm(b, "conv_norm_out", ch[0]);
    conv(b, "conv_out", c->out_channels, ch[0], 3);
}

/* The seed's BasicUNet: down_layers.0..2, up_layers.0..2, all Conv2d 5x5 with padding 2. */
static void build_basic(builder *b, const dd_model_config *c) {
    conv(b, "down_layers.0", 32, c->in_channels, 5);
    conv(b, "down_layers.1", 64, 32, 5);
    conv(b, "down_layers.2", 64, 64, 5);
    conv(b, "up_layers.0", 64, 64, 5);
    conv(b, "up_layers.1", 32, 64, 5);
    conv(b, "up_layers.2", c->out_channels, 32, 5);
}

ddpm_status dd_model_params_build(const dd_model_config *c, dd_model_params *p) {
    memset(p, 0, sizeof *p);
    builder b = {p, DDPM_OK};
    if (c->kind == DD_MODEL_BASIC) build_basic(&b, c);
    else build_unet2d(&b, c);
    if (b.st != DDPM_OK) dd_model_params_free(p);
    return b.st;
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
