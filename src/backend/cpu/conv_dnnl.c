/* conv_dnnl.c — planned 2-D convolutions (forward, backward-data, backward-weights) on oneDNN: its JIT kernels
   (jit / brgconv for avx512_core, jit for avx2) take NHWC fp32 directly and run several times faster than
   im2col + sgemm (docs/perf.md). */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "backend/cpu/cpu_ops.h"

/* PLAN. A dd_conv owns, per distinct batch size n, a plan: the forward primitive (forward_training when
   created for training, else forward_inference) and, when training, backward-data and backward-weights.
   The plan for the maximum batch g->N is made by dd_conv_create; a call with a smaller n plans that batch
   size once, on first use (the only allocation outside create; an engine normally runs one fixed batch).
   Every plan of a convolution is forced to the weight layouts chosen for g->N, so one reordered copy of
   the weights serves all of them.

   MEMORY. Activations stay in the caller's NHWC buffers (oneDNN memory objects wrap them; their handles are
   set per call). Weights live inside, in the layout the primitives prefer ([OC, C, KH, KW] PyTorch layout
   reordered by dd_conv_set_weights; backward-data gets its own copy only when it prefers another layout).
   Gradients of weights and bias are computed into internal buffers (oneDNN overwrites), reordered back to
   [OC, C, KH, KW] and added to the caller's dw, db.

   SCRATCH. Scratchpads are in user mode: the caller's scratch (dd_conv_scratch_size bytes, any alignment)
   holds 64 bytes of alignment slack, the largest scratchpad of the g->N plan, when training an [N, H, W, C]
   float area that backward-data writes into when acc = 1 before adding it to dinp, and, in bf16, the bf16
   copies of the input [N, H, W, C] and (training) of the output gradient [N, OH, OW, OC]. A plan made later
   for a smaller batch whose scratchpad would not fit gets its own scratchpad at planning time.

   BF16. The primitives take bf16 sources, weights and output gradients (AMX tiles, fp32 accumulation) and
   write fp32 outputs, input gradients and weight gradients: the graph around them stays fp32. The input is
   rounded into the scratch copy by the forward and again by backward-weights (cheaper than keeping it), the
   output gradient once per backward; the weights are rounded by the reorder of dd_conv_set_weights.

   ENGINE. One CPU engine and one stream serve every convolution of the process, created once (thread-safe)
   and kept for the life of the process. A dd_conv itself is used by one thread at a time (its memory
   objects' handles are set per call); oneDNN parallelises each primitive over the OpenMP threads.

   THREADS. oneDNN's JIT convolutions fix their thread count when the primitive is created (they split the work
   for omp_get_max_threads() threads then, and run that many whatever the count is later), so a plan is keyed
   by (batch size, thread count): when the thread policy (core/threads.c) changes the count, the next call
   plans that count once, and switching back finds the earlier plan. */

typedef struct {
    int n, nthr;                           /* batch size, OpenMP threads the primitives were created for */
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    /* NHWC views, handles set per call: the source and the output gradient in the compute type (f32 or bf16),
       the output and the input gradient in f32 */
    dnnl_memory_t x, dy;                   /* [n, H, W, C], [n, OH, OW, OC] */
    dnnl_memory_t y, dx;                   /* [n, OH, OW, OC], [n, H, W, C] */
    dnnl_memory_t pad_fwd, pad_bwd_d, pad_bwd_w;   /* scratchpads (NULL when a primitive needs none) */
    size_t pad_bytes;                      /* largest scratchpad of this plan */
    void *own_pad;                         /* own scratchpad when the caller's region is too small */
} dd_conv_plan;

struct dd_conv {
    dd_conv_geom g;
    int training;
    int bf16;                              /* compute in bf16 (BF16 above) */
    int weights_set;
    /* chosen layouts (from the g->N plan) */
    dnnl_memory_desc_t wfwd_md, wbwd_md, dw_md;
    int bwd_own_weights;                   /* backward-data prefers a layout other than forward's */
    dnnl_memory_t w_user;                  /* [OC, C, KH, KW] view of the caller's weights */
    dnnl_memory_t wfwd, wbwd;              /* internal weights (wbwd == wfwd unless bwd_own_weights) */
    dnnl_memory_t bias;                    /* [OC] view of the caller's bias (or zero_bias) */
    dnnl_memory_t dw, db;                  /* internal weight / bias gradients (oneDNN layouts) */
    dnnl_memory_t dw_plain;                /* dw reordered to [OC, C, KH, KW] (NULL when dw_md is plain) */
    dnnl_primitive_t reorder_wfwd, reorder_wbwd, reorder_dw;
    float *zero_bias;                      /* [OC] zeros for a forward without bias */
    size_t pad_region;                     /* bytes of the caller's scratch reserved for scratchpads */
    size_t xb_at, dyb_at;                  /* bf16: offsets of the bf16 input / output-gradient copies */
    size_t scratch_bytes;                  /* what dd_conv_scratch_size reports */
    dd_conv_plan *plans;
    int nplans, cap;
};

/* ------------------------------------------------------------------ shared engine and stream */

static pthread_once_t dd_dnnl_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t dd_dnnl_engine;
static dnnl_stream_t dd_dnnl_stream;
static dnnl_status_t dd_dnnl_init_status = dnnl_success;

/* Under AddressSanitizer oneDNN's primitive cache is off: oneDNN 2.6 (Debian 12) reads one element past an
   internal std::vector while it looks a bf16 brgconv primitive up in that cache, which ASan's allocator sometimes
   places at the end of a mapping (a SEGV, seen once the auto thread policy has changed the heap's layout). The
   cache only saves the JIT of a geometry several nodes share (20 ms of `ddpm sample --num 1`), so the sanitized
   build computes the same, a little slower to prepare. */
#if defined(__SANITIZE_ADDRESS__)
#define DD_DNNL_PRIMITIVE_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DD_DNNL_PRIMITIVE_CACHE 0
#endif
#endif

static void dd_dnnl_init(void) {
    dnnl_status_t s = dnnl_success;
#ifdef DD_DNNL_PRIMITIVE_CACHE
    s = dnnl_set_primitive_cache_capacity(DD_DNNL_PRIMITIVE_CACHE);
#endif
    if (s == dnnl_success) s = dnnl_engine_create(&dd_dnnl_engine, dnnl_cpu, 0);
    if (s == dnnl_success) {
        s = dnnl_stream_create(&dd_dnnl_stream, dd_dnnl_engine, dnnl_stream_default_flags);
        if (s != dnnl_success) {
            dnnl_engine_destroy(dd_dnnl_engine);
            dd_dnnl_engine = NULL;
        }
    }
    dd_dnnl_init_status = s;
}

#define DD_DNNL_TRY(call, what)                                                                               \
    do {                                                                                                      \
        dnnl_status_t dd_s_ = (call);                                                                         \
        if (dd_s_ != dnnl_success)                                                                            \
            return dd_error(dd_s_ == dnnl_unimplemented ? DDPM_ERR_UNSUPPORTED : DDPM_ERR_INTERNAL,          \
                            "oneDNN: %s failed (status %d)", (what), (int)dd_s_);                            \
    } while (0)

static ddpm_status dd_dnnl_get(void) {
    if (pthread_once(&dd_dnnl_once, dd_dnnl_init) != 0)
        return dd_error(DDPM_ERR_INTERNAL, "oneDNN: engine initialisation failed (pthread_once)");
    if (dd_dnnl_init_status != dnnl_success)
        return dd_error(DDPM_ERR_INTERNAL, "oneDNN: engine/stream creation failed (status %d)",
                        (int)dd_dnnl_init_status);
    return DDPM_OK;
}

/* ------------------------------------------------------------------ helpers */

static size_t dd_align64(size_t x) { return (x + 63) & ~(size_t)63; }

static void *dd_scratch_base(void *scratch) {
    uintptr_t p = (uintptr_t)scratch;
    return (void *)((p + 63) & ~(uintptr_t)63);
}

/* bf16: src rounded into the scratch at offset `at`; returns the copy. */
static const void *dd_conv_to_bf16(void *scratch, size_t at, const float *src, size_t count) {
    uint16_t *dst = (uint16_t *)((char *)dd_scratch_base(scratch) + at);
    dd_f32_to_bf16(dst, src, count);
    return dst;
}

static ddpm_status dd_md_nhwc(dnnl_memory_desc_t *md, int n, int h, int w, int c, dnnl_data_type_t t) {
    dnnl_dims_t d = {n, c, h, w};
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(md, 4, d, t, dnnl_nhwc), "memory descriptor (nhwc)");
    return DDPM_OK;
}

/* The rounding loop, with clones for AVX-512 and AVX2 picked at load time (GCC ifunc). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void dd_bf16_round(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;   /* round to nearest even */
        const uint32_t q = (u >> 16) | 0x40u;                       /* NaN: keep it, quiet */
        dst[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? q : r);
    }
}

void dd_f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
    const size_t chunk = 16384;
    const long long nchunks = (long long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 4)
    for (long long k = 0; k < nchunks; k++) {
        const size_t i0 = (size_t)k * chunk, m = n - i0 < chunk ? n - i0 : chunk;
        dd_bf16_round(dst + i0, src + i0, m);
    }
}

int ddpm_bf16_supported(void) {
    const char *no = getenv("DDPM_NO_AMX");   /* for tests of the refusal: any value but 0 hides AMX */
    if (no && no[0] && strcmp(no, "0") != 0) return 0;
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_amx) == (unsigned)dnnl_cpu_isa_avx512_core_amx;
}

static ddpm_status dd_make_memory(dnnl_memory_t *m, const dnnl_memory_desc_t *md, void *handle) {
    DD_DNNL_TRY(dnnl_memory_create(m, md, dd_dnnl_engine, handle), "memory creation");
    return DDPM_OK;
}

static ddpm_status dd_make_primitive(dnnl_primitive_t *p, const_dnnl_primitive_desc_t pd, const char *what) {
    dnnl_status_t s = dnnl_primitive_create(p, pd);
    if (s != dnnl_success)
        return dd_error(DDPM_ERR_INTERNAL, "oneDNN: %s primitive creation failed (status %d)", what, (int)s);
    return DDPM_OK;
}

/* Scratchpad memory of a primitive descriptor (NULL when it needs none); adds its size to *bytes (max). */
static ddpm_status dd_make_pad(dnnl_memory_t *m, const_dnnl_primitive_desc_t pd, size_t *bytes) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *m = NULL;
    if (!md) return dd_error(DDPM_ERR_INTERNAL, "oneDNN: scratchpad query failed");
    size_t sz = dnnl_memory_desc_get_size(md);
    if (sz == 0) return DDPM_OK;
    if (sz > *bytes) *bytes = sz;
    return dd_make_memory(m, md, DNNL_MEMORY_NONE);
}

static ddpm_status dd_reorder(dnnl_primitive_t *p, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    dnnl_primitive_desc_t pd;
    DD_DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, from, dd_dnnl_engine, to, dd_dnnl_engine, NULL),
                "reorder descriptor");
    ddpm_status st = dd_make_primitive(p, pd, "reorder");
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static ddpm_status dd_exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args, const char *what) {
    dnnl_status_t s = dnnl_primitive_execute(p, dd_dnnl_stream, nargs, args);
    if (s == dnnl_success) s = dnnl_stream_wait(dd_dnnl_stream);
    if (s != dnnl_success)
        return dd_error(DDPM_ERR_INTERNAL, "oneDNN: %s execution failed (status %d)", what, (int)s);
    return DDPM_OK;
}

static void dd_plan_destroy(dd_conv_plan *p) {
    if (p->fwd) dnnl_primitive_destroy(p->fwd);
    if (p->bwd_d) dnnl_primitive_destroy(p->bwd_d);
    if (p->bwd_w) dnnl_primitive_destroy(p->bwd_w);
    dnnl_memory_t views[] = {p->x, p->dy, p->y, p->dx};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        if (views[i]) dnnl_memory_destroy(views[i]);
    if (p->pad_fwd) dnnl_memory_destroy(p->pad_fwd);
    if (p->pad_bwd_d) dnnl_memory_destroy(p->pad_bwd_d);
    if (p->pad_bwd_w) dnnl_memory_destroy(p->pad_bwd_w);
    dd_free(p->own_pad);
    memset(p, 0, sizeof *p);
}

/* Plans batch size n into *p. `first` (the g->N plan) lets oneDNN choose the weight layouts and records
   them in c; later plans are forced to those layouts. */
static ddpm_status dd_plan_make(dd_conv *c, dd_conv_plan *p, int n, int first) {
    const dd_conv_geom *g = &c->g;
    ddpm_status st;
    dnnl_status_t s;
    memset(p, 0, sizeof *p);
    p->n = n;
    p->nthr = omp_get_max_threads();

    const dnnl_data_type_t ct = c->bf16 ? dnnl_bf16 : dnnl_f32;   /* compute type */
    dnnl_memory_desc_t x_md, dx_md, y_md, dy_md, w_any, dw_any, b_md;
    if ((st = dd_md_nhwc(&x_md, n, g->H, g->W, g->C, ct)) != DDPM_OK) return st;
    if ((st = dd_md_nhwc(&dx_md, n, g->H, g->W, g->C, dnnl_f32)) != DDPM_OK) return st;
    if ((st = dd_md_nhwc(&y_md, n, g->OH, g->OW, g->OC, dnnl_f32)) != DDPM_OK) return st;
    if ((st = dd_md_nhwc(&dy_md, n, g->OH, g->OW, g->OC, ct)) != DDPM_OK) return st;
    dnnl_dims_t wd = {g->OC, g->C, g->KH, g->KW}, bd = {g->OC};
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, ct, dnnl_format_tag_any), "weights descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(&dw_any, 4, wd, dnnl_f32, dnnl_format_tag_any), "weights descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
    dnnl_dims_t strides = {g->stride, g->stride}, pad_l = {g->pad_t, g->pad_l}, pad_r = {g->pad_b, g->pad_r};

    dnnl_primitive_attr_t attr;
    DD_DNNL_TRY(dnnl_primitive_attr_create(&attr), "attribute creation");
    s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return dd_error(DDPM_ERR_INTERNAL, "oneDNN: scratchpad mode failed (status %d)", (int)s);
    }

    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    dnnl_convolution_desc_t cd;
    const char *what = "convolution forward descriptor";
    s = dnnl_convolution_forward_desc_init(&cd, c->training ? dnnl_forward_training : dnnl_forward_inference,
                                           dnnl_convolution_direct, &x_md, first ? &w_any : &c->wfwd_md,
                                           &b_md, &y_md, strides, pad_l, pad_r);
    if (s == dnnl_success) {
        what = "convolution forward primitive descriptor";
        s = dnnl_primitive_desc_create(&fpd, &cd, attr, dd_dnnl_engine, NULL);
    }
    if (s == dnnl_success && c->training) {
        what = "convolution backward-data descriptor";
        s = dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &dx_md,
                                                     first ? &w_any : &c->wbwd_md, &dy_md, strides, pad_l, pad_r);
        if (s == dnnl_success) {
            what = "convolution backward-data primitive descriptor";
            s = dnnl_primitive_desc_create(&dpd, &cd, attr, dd_dnnl_engine, fpd);
        }
        if (s == dnnl_success) {
            what = "convolution backward-weights descriptor";
            s = dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &x_md,
                                                            first ? &dw_any : &c->dw_md, &b_md, &dy_md, strides,
                                                            pad_l, pad_r);
        }
        if (s == dnnl_success) {
            what = "convolution backward-weights primitive descriptor";
            s = dnnl_primitive_desc_create(&wpd, &cd, attr, dd_dnnl_engine, fpd);
        }
    }
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) {
        st = dd_error(s == dnnl_unimplemented ? DDPM_ERR_UNSUPPORTED : DDPM_ERR_INTERNAL,
                      "oneDNN: %s failed (status %d)", what, (int)s);
        goto done;
    }

    if (first) {
        c->wfwd_md = *dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
        if (c->training) {
            c->wbwd_md = *dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0);
            c->dw_md = *dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0);
        }
    }

    if ((st = dd_make_primitive(&p->fwd, fpd, "convolution forward")) != DDPM_OK) goto done;
    if ((st = dd_make_pad(&p->pad_fwd, fpd, &p->pad_bytes)) != DDPM_OK) goto done;
    if (c->training) {
        if ((st = dd_make_primitive(&p->bwd_d, dpd, "convolution backward-data")) != DDPM_OK) goto done;
        if ((st = dd_make_primitive(&p->bwd_w, wpd, "convolution backward-weights")) != DDPM_OK) goto done;
        if ((st = dd_make_pad(&p->pad_bwd_d, dpd, &p->pad_bytes)) != DDPM_OK) goto done;
        if ((st = dd_make_pad(&p->pad_bwd_w, wpd, &p->pad_bytes)) != DDPM_OK) goto done;
    }
    if ((st = dd_make_memory(&p->x, &x_md, DNNL_MEMORY_NONE)) != DDPM_OK) goto done;
    if ((st = dd_make_memory(&p->y, &y_md, DNNL_MEMORY_NONE)) != DDPM_OK) goto done;
    if (c->training) {
        if ((st = dd_make_memory(&p->dx, &dx_md, DNNL_MEMORY_NONE)) != DDPM_OK) goto done;
        if ((st = dd_make_memory(&p->dy, &dy_md, DNNL_MEMORY_NONE)) != DDPM_OK) goto done;
    }
    if (!first && p->pad_bytes > c->pad_region) {
        p->own_pad = dd_alloc(p->pad_bytes + 64);
        if (!p->own_pad) st = DDPM_ERR_NOMEM;
    }

done:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (st != DDPM_OK) dd_plan_destroy(p);
    return st;
}

/* Internal memories, views and reorders, made once after the g->N plan fixed the layouts. */
static ddpm_status dd_conv_make_weights(dd_conv *c) {
    const dd_conv_geom *g = &c->g;
    ddpm_status st;
    dnnl_memory_desc_t plain_md, b_md;
    dnnl_dims_t wd = {g->OC, g->C, g->KH, g->KW}, bd = {g->OC};
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(&plain_md, 4, wd, dnnl_f32, dnnl_oihw), "weights descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");

    if ((st = dd_make_memory(&c->w_user, &plain_md, DNNL_MEMORY_NONE)) != DDPM_OK) return st;
    if ((st = dd_make_memory(&c->wfwd, &c->wfwd_md, DNNL_MEMORY_ALLOCATE)) != DDPM_OK) return st;
    if ((st = dd_reorder(&c->reorder_wfwd, &plain_md, &c->wfwd_md)) != DDPM_OK) return st;
    if ((st = dd_make_memory(&c->bias, &b_md, DNNL_MEMORY_NONE)) != DDPM_OK) return st;
    if (!c->training) return DDPM_OK;

    c->bwd_own_weights = !dnnl_memory_desc_equal(&c->wbwd_md, &c->wfwd_md);
    if (c->bwd_own_weights) {
        if ((st = dd_make_memory(&c->wbwd, &c->wbwd_md, DNNL_MEMORY_ALLOCATE)) != DDPM_OK) return st;
        if ((st = dd_reorder(&c->reorder_wbwd, &plain_md, &c->wbwd_md)) != DDPM_OK) return st;
    }
    if ((st = dd_make_memory(&c->dw, &c->dw_md, DNNL_MEMORY_ALLOCATE)) != DDPM_OK) return st;
    if ((st = dd_make_memory(&c->db, &b_md, DNNL_MEMORY_ALLOCATE)) != DDPM_OK) return st;
    if (!dnnl_memory_desc_equal(&c->dw_md, &plain_md)) {
        if ((st = dd_make_memory(&c->dw_plain, &plain_md, DNNL_MEMORY_ALLOCATE)) != DDPM_OK) return st;
        if ((st = dd_reorder(&c->reorder_dw, &c->dw_md, &plain_md)) != DDPM_OK) return st;
    }
    return DDPM_OK;
}

/* ------------------------------------------------------------------ public */

ddpm_status dd_conv_create(dd_conv **out, const dd_conv_geom *g, int training, int bf16) {
    *out = NULL;
    dd_conv_geom geom = *g;
    ddpm_status st = dd_conv_geom_init(&geom);
    if (st != DDPM_OK) return st;
    if ((st = dd_dnnl_get()) != DDPM_OK) return st;

    dd_conv *c = dd_calloc(1, sizeof *c);
    if (!c) return DDPM_ERR_NOMEM;
    c->g = geom;
    c->training = training != 0;
    c->bf16 = bf16 != 0;
    if (c->bf16 && !ddpm_bf16_supported()) {
        dd_conv_free(c);
        return dd_error(DDPM_ERR_UNSUPPORTED, "bf16 convolutions need a CPU with AMX (bf16 tiles); this one has none");
    }
    c->zero_bias = dd_calloc((size_t)geom.OC, sizeof(float));
    c->cap = 2;
    c->plans = dd_calloc((size_t)c->cap, sizeof *c->plans);
    if (!c->zero_bias || !c->plans) {
        dd_conv_free(c);
        return DDPM_ERR_NOMEM;
    }
    if ((st = dd_plan_make(c, &c->plans[0], geom.N, 1)) != DDPM_OK) {
        dd_conv_free(c);
        return st;
    }
    c->nplans = 1;
    if ((st = dd_conv_make_weights(c)) != DDPM_OK) {
        dd_conv_free(c);
        return st;
    }
    c->pad_region = dd_align64(c->plans[0].pad_bytes);
    const size_t in = (size_t)geom.N * (size_t)geom.H * (size_t)geom.W * (size_t)geom.C;
    const size_t outn = (size_t)geom.N * (size_t)geom.OH * (size_t)geom.OW * (size_t)geom.OC;
    size_t at = c->pad_region;
    if (c->training) at += dd_align64(in * sizeof(float));   /* the acc = 1 area */
    if (c->bf16) {
        c->xb_at = at;
        at += dd_align64(in * sizeof(uint16_t));
        if (c->training) {
            c->dyb_at = at;
            at += dd_align64(outn * sizeof(uint16_t));
        }
    }
    c->scratch_bytes = 64 + at;
    *out = c;
    return DDPM_OK;
}

void dd_conv_free(dd_conv *c) {
    if (!c) return;
    for (int i = 0; i < c->nplans; i++) dd_plan_destroy(&c->plans[i]);
    dd_free(c->plans);
    dnnl_memory_t mems[] = {c->w_user, c->wfwd, c->wbwd, c->bias, c->dw, c->db, c->dw_plain};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    dnnl_primitive_t prims[] = {c->reorder_wfwd, c->reorder_wbwd, c->reorder_dw};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    dd_free(c->zero_bias);
    dd_free(c);
}

size_t dd_conv_scratch_size(const dd_conv *c) { return c->scratch_bytes; }

ddpm_status dd_conv_set_weights(dd_conv *c, const float *w) {
    DD_DNNL_TRY(dnnl_memory_set_data_handle(c->w_user, (void *)(uintptr_t)w), "weights handle");
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, c->w_user}, {DNNL_ARG_TO, c->wfwd}};
    ddpm_status st = dd_exec(c->reorder_wfwd, 2, args, "weights reorder");
    if (st == DDPM_OK && c->bwd_own_weights) {
        args[1].memory = c->wbwd;
        st = dd_exec(c->reorder_wbwd, 2, args, "weights reorder (backward)");
    }
    if (st == DDPM_OK) c->weights_set = 1;
    return st;
}

/* The plan for batch n and the current thread count (made on first use when n < g->N or the count changed). */
static ddpm_status dd_conv_plan_for(dd_conv *c, int n, dd_conv_plan **out) {
    if (n < 1 || n > c->g.N)
        return dd_error(DDPM_ERR_INVALID_ARG, "convolution: batch %d outside 1..%d", n, c->g.N);
    if (!c->weights_set)
        return dd_error(DDPM_ERR_INVALID_ARG, "convolution: weights not set (call dd_conv_set_weights first)");
    const int nthr = omp_get_max_threads();
    for (int i = 0; i < c->nplans; i++)
        if (c->plans[i].n == n && c->plans[i].nthr == nthr) {
            *out = &c->plans[i];
            return DDPM_OK;
        }
    if (c->nplans == c->cap) {
        dd_conv_plan *np = dd_realloc(c->plans, (size_t)c->cap * 2 * sizeof *np);
        if (!np) return DDPM_ERR_NOMEM;
        c->plans = np;
        c->cap *= 2;
    }
    ddpm_status st = dd_plan_make(c, &c->plans[c->nplans], n, 0);
    if (st != DDPM_OK) return st;
    *out = &c->plans[c->nplans++];
    return DDPM_OK;
}

/* Points a plan's scratchpad memory at the caller's scratch (or the plan's own). */
static ddpm_status dd_set_pad(const dd_conv_plan *p, dnnl_memory_t pad, void *scratch) {
    void *base = dd_scratch_base(p->own_pad ? p->own_pad : scratch);
    DD_DNNL_TRY(dnnl_memory_set_data_handle(pad, base), "scratchpad handle");
    return DDPM_OK;
}

ddpm_status dd_conv_forward(dd_conv *c, float *out, const float *inp, const float *b, int n, void *scratch) {
    dd_conv_plan *p = NULL;
    ddpm_status st = dd_conv_plan_for(c, n, &p);
    if (st != DDPM_OK) return st;
    const void *x = inp;
    if (c->bf16) x = dd_conv_to_bf16(scratch, c->xb_at, inp, (size_t)n * c->g.H * c->g.W * c->g.C);
    DD_DNNL_TRY(dnnl_memory_set_data_handle(p->x, (void *)(uintptr_t)x), "source handle");
    DD_DNNL_TRY(dnnl_memory_set_data_handle(p->y, out), "destination handle");
    DD_DNNL_TRY(dnnl_memory_set_data_handle(c->bias, (void *)(uintptr_t)(b ? b : c->zero_bias)), "bias handle");
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->x}, {DNNL_ARG_WEIGHTS, c->wfwd}, {DNNL_ARG_BIAS, c->bias},
                               {DNNL_ARG_DST, p->y}, {DNNL_ARG_SCRATCHPAD, p->pad_fwd}};
    int nargs = 4;
    if (p->pad_fwd) {
        if ((st = dd_set_pad(p, p->pad_fwd, scratch)) != DDPM_OK) return st;
        nargs = 5;
    }
    return dd_exec(p->fwd, nargs, args, "convolution forward");
}

/* dst[i] += src[i] */
static void dd_accumulate(float *dst, const float *src, size_t count) {
    long long m = (long long)count;
#pragma omp parallel for schedule(static) if (m > 32768)
    for (long long i = 0; i < m; i++) dst[i] += src[i];
}

ddpm_status dd_conv_backward(dd_conv *c, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                             int n, int acc, void *scratch) {
    if (!c->training)
        return dd_error(DDPM_ERR_INVALID_ARG, "convolution: backward on a convolution created for inference");
    dd_conv_plan *p = NULL;
    ddpm_status st = dd_conv_plan_for(c, n, &p);
    if (st != DDPM_OK) return st;
    const dd_conv_geom *g = &c->g;
    const void *dy = dout;
    if (c->bf16) dy = dd_conv_to_bf16(scratch, c->dyb_at, dout, (size_t)n * g->OH * g->OW * g->OC);
    DD_DNNL_TRY(dnnl_memory_set_data_handle(p->dy, (void *)(uintptr_t)dy), "diff destination handle");

    if (dinp) {
        /* acc = 1: into the scratch area after the scratchpads, then added */
        float *target = acc ? (float *)((char *)dd_scratch_base(scratch) + c->pad_region) : dinp;
        DD_DNNL_TRY(dnnl_memory_set_data_handle(p->dx, target), "diff source handle");
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->dy},
                                   {DNNL_ARG_WEIGHTS, c->bwd_own_weights ? c->wbwd : c->wfwd},
                                   {DNNL_ARG_DIFF_SRC, p->dx},
                                   {DNNL_ARG_SCRATCHPAD, p->pad_bwd_d}};
        int nargs = 3;
        if (p->pad_bwd_d) {
            if ((st = dd_set_pad(p, p->pad_bwd_d, scratch)) != DDPM_OK) return st;
            nargs = 4;
        }
        if ((st = dd_exec(p->bwd_d, nargs, args, "convolution backward-data")) != DDPM_OK) return st;
        if (acc) dd_accumulate(dinp, target, (size_t)n * (size_t)g->H * (size_t)g->W * (size_t)g->C);
    }

    if (dw || db) {
        const void *x = inp;
        if (c->bf16) x = dd_conv_to_bf16(scratch, c->xb_at, inp, (size_t)n * g->H * g->W * g->C);
        DD_DNNL_TRY(dnnl_memory_set_data_handle(p->x, (void *)(uintptr_t)x), "source handle");
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->x}, {DNNL_ARG_DIFF_DST, p->dy},
                                   {DNNL_ARG_DIFF_WEIGHTS, c->dw}, {DNNL_ARG_DIFF_BIAS, c->db},
                                   {DNNL_ARG_SCRATCHPAD, p->pad_bwd_w}};
        int nargs = 4;
        if (p->pad_bwd_w) {
            if ((st = dd_set_pad(p, p->pad_bwd_w, scratch)) != DDPM_OK) return st;
            nargs = 5;
        }
        if ((st = dd_exec(p->bwd_w, nargs, args, "convolution backward-weights")) != DDPM_OK) return st;
        if (dw) {
            dnnl_memory_t plain = c->dw;
            if (c->reorder_dw) {
                dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, c->dw}, {DNNL_ARG_TO, c->dw_plain}};
                if ((st = dd_exec(c->reorder_dw, 2, rargs, "weight-gradient reorder")) != DDPM_OK) return st;
                plain = c->dw_plain;
            }
            void *h = NULL;
            DD_DNNL_TRY(dnnl_memory_get_data_handle(plain, &h), "weight-gradient handle");
            dd_accumulate(dw, h, (size_t)g->OC * (size_t)g->C * (size_t)g->KH * (size_t)g->KW);
        }
        if (db) {
            void *h = NULL;
            DD_DNNL_TRY(dnnl_memory_get_data_handle(c->db, &h), "bias-gradient handle");
            dd_accumulate(db, h, (size_t)g->OC);
        }
    }
    return DDPM_OK;
}
