/* adamw.c — AdamW over a flat float buffer, with torch.optim.AdamW's single-tensor arithmetic. */
#include <math.h>

#include "core/core.h"

/* Below this many elements the update runs on one thread (the fork costs more than the work). */
#define DD_ADAMW_PAR_MIN 65536
/* Elements per unit of parallel work (a multiple of 8). */
#define DD_ADAMW_BLOCK 16384

struct ddpm_adamw {
    ddpm_adamw_config c;
    int64_t n, t;
    float *m, *v;
};

void ddpm_adamw_config_default(ddpm_adamw_config *c) {
    c->lr = 1e-4;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.01;
}

ddpm_status ddpm_adamw_create(const ddpm_adamw_config *c, int64_t n, ddpm_adamw **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "adamw: out is NULL");
    *out = NULL;
    if (!c) return dd_error(DDPM_ERR_INVALID_ARG, "adamw: config is NULL");
    if (n < 0) return dd_error(DDPM_ERR_INVALID_ARG, "adamw: parameter count %lld is negative", (long long)n);
    if (!(isfinite(c->lr) && c->lr >= 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "adamw: learning rate %g must be finite and >= 0", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return dd_error(DDPM_ERR_INVALID_ARG, "adamw: beta1 %g must be in [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return dd_error(DDPM_ERR_INVALID_ARG, "adamw: beta2 %g must be in [0, 1)", c->beta2);
    if (!(isfinite(c->eps) && c->eps >= 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "adamw: eps %g must be finite and >= 0", c->eps);
    if (!(isfinite(c->weight_decay) && c->weight_decay >= 0))
        return dd_error(DDPM_ERR_INVALID_ARG, "adamw: weight decay %g must be finite and >= 0",
                        c->weight_decay);
    size_t count = n > 0 ? (size_t)n : 1;
    ddpm_adamw *o = dd_calloc(1, sizeof *o);
    if (!o) return DDPM_ERR_NOMEM;
    o->c = *c;
    o->n = n;
    o->m = dd_calloc(count, sizeof(float));
    o->v = o->m ? dd_calloc(count, sizeof(float)) : NULL;
    if (!o->v) {
        ddpm_adamw_free(o);
        return DDPM_ERR_NOMEM;
    }
    *out = o;
    return DDPM_OK;
}

void ddpm_adamw_free(ddpm_adamw *o) {
    if (!o) return;
    dd_free(o->m);
    dd_free(o->v);
    dd_free(o);
}

/* The scalars of one step, each rounded to float as ATen rounds a Python number applied to a float tensor. */
typedef struct {
    float decay, b1, one_b1, b2, one_b2, bc2_sqrt, eps, neg_step;
} dd_adamw_coef;

/* torch 1.13 _single_tensor_adamw on float32 tensors, op by op:
     p.mul_(1 - lr*wd)                         p = p * f(1 - lr*wd)
     m.mul_(b1).add_(g, alpha=1-b1)            m = fma(g, f(1-b1), m * f(b1))    (ATen's vector add is an FMA)
     v.mul_(b2).addcmul_(g, g, value=1-b2)     v = fma(f(1-b2) * g, g, v * f(b2)) (contracted the same way)
     denom = (v.sqrt() / sqrt(bc2)).add_(eps)  d = sqrt(v) / f(sqrt(bc2)) + f(eps)
     p.addcdiv_(m, denom, value=-lr/bc1)       p = p + (f(-lr/bc1) * m) / d
   with bc1 = 1 - b1^t, bc2 = 1 - b2^t in double. This reproduces torch's results bit for bit. */
static void adamw_range_scalar(const dd_adamw_coef *k, float *p, float *m, float *v, const float *g, int64_t lo,
                               int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        float pi = p[i] * k->decay;
        float mi = fmaf(gi, k->one_b1, m[i] * k->b1);
        float vi = fmaf(k->one_b2 * gi, gi, v[i] * k->b2);
        float denom = sqrtf(vi) / k->bc2_sqrt + k->eps;
        p[i] = pi + (k->neg_step * mi) / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DD_ADAMW_AVX2 1
/* The same operations eight at a time (every one is correctly rounded, so the results are identical). */
__attribute__((target("avx2,fma"))) static void adamw_range_avx2(const dd_adamw_coef *k, float *p, float *m,
                                                                 float *v, const float *g, int64_t lo,
                                                                 int64_t hi) {
    const __m256 decay = _mm256_set1_ps(k->decay), b1 = _mm256_set1_ps(k->b1), one_b1 = _mm256_set1_ps(k->one_b1);
    const __m256 b2 = _mm256_set1_ps(k->b2), one_b2 = _mm256_set1_ps(k->one_b2);
    const __m256 bc2 = _mm256_set1_ps(k->bc2_sqrt), eps = _mm256_set1_ps(k->eps), step = _mm256_set1_ps(k->neg_step);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
        __m256 mi = _mm256_fmadd_ps(gi, one_b1, _mm256_mul_ps(_mm256_loadu_ps(m + i), b1));
        __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(one_b2, gi), gi, _mm256_mul_ps(_mm256_loadu_ps(v + i), b2));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(step, mi), denom)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
    }
    adamw_range_scalar(k, p, m, v, g, i, hi);
}
#endif

void ddpm_adamw_step(ddpm_adamw *o, float *params, const float *grads, double lr) {
    if (!o || o->n == 0) return;
    double rate = lr > 0 ? lr : o->c.lr;
    o->t++;
    double t = (double)o->t;
    double bc1 = 1.0 - pow(o->c.beta1, t), bc2 = 1.0 - pow(o->c.beta2, t);
    dd_adamw_coef k;
    k.decay = (float)(1.0 - rate * o->c.weight_decay);
    k.b1 = (float)o->c.beta1;
    k.one_b1 = (float)(1.0 - o->c.beta1);
    k.b2 = (float)o->c.beta2;
    k.one_b2 = (float)(1.0 - o->c.beta2);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.eps = (float)o->c.eps;
    k.neg_step = (float)(-(rate / bc1));
    int use_avx2 = 0;
#ifdef DD_ADAMW_AVX2
    use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    const int64_t n = o->n, nblocks = (n + DD_ADAMW_BLOCK - 1) / DD_ADAMW_BLOCK;
    float *m = o->m, *v = o->v;
#pragma omp parallel for schedule(static) if (n >= DD_ADAMW_PAR_MIN)
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t lo = b * DD_ADAMW_BLOCK, hi = lo + DD_ADAMW_BLOCK < n ? lo + DD_ADAMW_BLOCK : n;
#ifdef DD_ADAMW_AVX2
        if (use_avx2) {
            adamw_range_avx2(&k, params, m, v, grads, lo, hi);
            continue;
        }
#endif
        adamw_range_scalar(&k, params, m, v, grads, lo, hi);
    }
    (void)use_avx2;
}

int64_t ddpm_adamw_steps(const ddpm_adamw *o) { return o ? o->t : 0; }

ddpm_status ddpm_adamw_set_steps(ddpm_adamw *o, int64_t steps) {
    if (!o || steps < 0) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_adamw_set_steps: NULL optimiser or negative step count");
    o->t = steps;
    return DDPM_OK;
}

float *ddpm_adamw_m(ddpm_adamw *o) { return o ? o->m : NULL; }

float *ddpm_adamw_v(ddpm_adamw *o) { return o ? o->v : NULL; }

void ddpm_adamw_set_lr(ddpm_adamw *o, double lr) {
    if (o && isfinite(lr) && lr >= 0) o->c.lr = lr;
}
