/* test_adamw.c — AdamW against a double-precision reference written from the paper's update rule, against
   torch.optim.AdamW's own float32 results (constants), and for thread-count independence and bad configs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N 19        /* two 8-wide vector blocks and a scalar tail */
#define STEPS 5

/* Inputs every reference below was computed from: exactly representable floats, some gradients zero and
   magnitudes from 1 down to 2^-15. */
static float param0(int i) { return (float)(i - 9) / 8.0f; }
static float grad(int s, int i) { return (float)(((i * 37 + s * 11) % 23) - 11) * ldexpf(1.0f, -3 * (i % 6)); }

/* torch 1.13.1 (Debian python3-torch): p = Parameter(param0); AdamW([p], lr=1e-2, weight_decay=0.1,
   foreach=False); steps 1-4 at lr 1e-2, step 5 at lr 5e-3 (param_groups[0]["lr"] = 5e-3); p.grad = grad(s)
   before each step. Printed with %.9g, so the float values are exact. */
static const float torch_p[19] = {
    -1.10607469f, -0.990432084f, -0.852835119f, -0.768510222f, -0.630990624f, -0.467140377f, -0.373159081f,
    -0.23644568f, -0.150648519f, -0.0221702345f, 0.155629411f, 0.243496791f, 0.379717797f, 0.468008876f,
    0.622947454f, 0.774365962f, 0.859894276f, 0.996129334f, 1.08739209f,
};
static const float torch_m[19] = {
    1.07929003f, -0.137158737f, -0.0161899999f, 0.00185601553f, 0.000246921409f, -1.14196737e-05f,
    -0.687759995f, -0.078331247f, 0.0212467201f, 0.00277519505f, -0.000552902813f, -8.49151729e-06f,
    -0.217140004f, 0.221162498f, 0.00240171934f, -0.00362339849f, 3.20459003e-05f, 5.87066461e-06f,
    2.17880988f,
};
static const float torch_v[19] = {
    0.342273861f, 0.00304083317f, 4.63055039e-05f, 7.23165499e-07f, 1.15995009e-08f, 3.18843646e-10f,
    0.173645303f, 0.00266711391f, 5.33460916e-05f, 8.60349189e-07f, 1.82666557e-08f, 1.51486435e-10f,
    0.161703274f, 0.0040221517f, 5.94512676e-05f, 9.82480969e-07f, 9.63505187e-09f, 1.51518062e-10f,
    0.306309849f,
};

/* AdamW (Loshchilov & Hutter 2019, with PyTorch's decoupled decay p *= 1 - lr*wd) in double. */
static void reference(double lr1, double lr5, double wd, double p[N], double m[N], double v[N]) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int i = 0; i < N; i++) {
        p[i] = param0(i);
        m[i] = v[i] = 0;
    }
    for (int s = 0; s < STEPS; s++) {
        double lr = s == STEPS - 1 ? lr5 : lr1;
        for (int i = 0; i < N; i++) {
            double g = grad(s, i);
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double mhat = m[i] / (1 - pow(b1, s + 1)), vhat = v[i] / (1 - pow(b2, s + 1));
            p[i] -= lr * mhat / (sqrt(vhat) + eps);
        }
    }
}

static ddpm_adamw *run_steps(const ddpm_adamw_config *c, double lr5, float p[N]) {
    ddpm_adamw *o = NULL;
    CHECK_OK(ddpm_adamw_create(c, N, &o));
    if (!o) exit(1);
    for (int i = 0; i < N; i++) p[i] = param0(i);
    float g[N];
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < N; i++) g[i] = grad(s, i);
        ddpm_adamw_step(o, p, g, s == STEPS - 1 ? lr5 : 0);
    }
    return o;
}

static void test_defaults(void) {
    ddpm_adamw_config c;
    ddpm_adamw_config_default(&c);
    CHECK(c.lr == 1e-4 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 0.01);
}

/* The first step has m_hat = g and v_hat = g^2: p1 = p0 (1 - lr wd) - lr g / (|g| + eps). */
static void test_first_step(void) {
    ddpm_adamw_config c;
    ddpm_adamw_config_default(&c);
    ddpm_adamw *o = NULL;
    CHECK_OK(ddpm_adamw_create(&c, 4, &o));
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f}, g[4] = {0.25f, -8.0f, 0.0f, 1e-3f};
    ddpm_adamw_step(o, p, g, 0);
    CHECK(ddpm_adamw_steps(o) == 1);
    double want[4];
    for (int i = 0; i < 4; i++) {
        double p0 = i == 0 ? 1.0 : i == 1 ? -2.0 : i == 2 ? 0.5 : 3.0, gi = g[i];
        want[i] = p0 * (1 - 1e-4 * 0.01) - 1e-4 * gi / (fabs(gi) + 1e-8);
    }
    /* known values: 1 - 1e-6 - 1e-4, -2 + 2e-6 + 1e-4, 0.5 - 5e-7 (no gradient), 3 - 3e-6 - ~1e-4 */
    CHECK(fabs(want[0] - 0.999899) < 1e-10 && fabs(want[1] - -1.999898) < 1e-10 && fabs(want[2] - 0.4999995) < 1e-10);
    double got[4];
    for (int i = 0; i < 4; i++) got[i] = p[i];
    dd_check_close("first step", got, want, 4, 1e-7, 1.0);
    CHECK(ddpm_adamw_m(o)[1] == -0.8f && ddpm_adamw_v(o)[2] == 0.0f);
    ddpm_adamw_free(o);
}

static void test_five_steps(void) {
    ddpm_adamw_config c;
    ddpm_adamw_config_default(&c);
    c.lr = 1e-2;
    c.weight_decay = 0.1;
    float p[N];
    ddpm_adamw *o = run_steps(&c, 5e-3, p);
    CHECK(ddpm_adamw_steps(o) == STEPS);
    const float *m = ddpm_adamw_m(o), *v = ddpm_adamw_v(o);

    /* against the double reference: float rounding only */
    double rp[N], rm[N], rv[N], gp[N], gm[N], gv[N];
    reference(1e-2, 5e-3, 0.1, rp, rm, rv);
    for (int i = 0; i < N; i++) {
        gp[i] = p[i];
        gm[i] = m[i];
        gv[i] = v[i];
    }
    dd_check_close("params vs double reference", gp, rp, N, 2e-6, 0);
    dd_check_close("m vs double reference", gm, rm, N, 2e-6, 0);
    dd_check_close("v vs double reference", gv, rv, N, 2e-6, 0);
    for (int i = 0; i < N; i++)   /* per element, for the small ones */
        CHECK_MSG(fabs(gp[i] - rp[i]) <= 4e-7 * fabs(rp[i]) + 1e-9, "p[%d] = %.9g, reference %.9g", i, gp[i], rp[i]);

    /* against torch.optim.AdamW: the same float operations, so the same bits */
    int same = 0;
    for (int i = 0; i < N; i++) {
        CHECK_MSG(p[i] == torch_p[i], "p[%d] = %.9g, torch %.9g", i, p[i], torch_p[i]);
        CHECK_MSG(m[i] == torch_m[i], "m[%d] = %.9g, torch %.9g", i, m[i], torch_m[i]);
        CHECK_MSG(v[i] == torch_v[i], "v[%d] = %.9g, torch %.9g", i, v[i], torch_v[i]);
        same += p[i] == torch_p[i];
    }
    printf("five steps: %d/%d parameters bit-identical to torch.optim.AdamW\n", same, N);
    ddpm_adamw_free(o);
}

/* A large buffer: the parallel update gives the same bits for 1 and 2 threads and matches a 19-element run
   of the same values. */
static void test_threads(void) {
    const int64_t n = 300007;
    float *p1 = malloc(sizeof(float) * (size_t)n), *p2 = malloc(sizeof(float) * (size_t)n);
    float *g = malloc(sizeof(float) * (size_t)n);
    CHECK(p1 && p2 && g);
    if (!p1 || !p2 || !g) exit(1);
    ddpm_adamw_config c;
    ddpm_adamw_config_default(&c);
    c.lr = 1e-2;
    c.weight_decay = 0.1;
    ddpm_adamw *o1 = NULL, *o2 = NULL;
    CHECK_OK(ddpm_adamw_create(&c, n, &o1));
    CHECK_OK(ddpm_adamw_create(&c, n, &o2));
    if (!o1 || !o2) exit(1);
    for (int64_t i = 0; i < n; i++) p1[i] = p2[i] = param0((int)(i % N));
    int saved = ddpm_get_threads();
    for (int s = 0; s < STEPS; s++) {
        for (int64_t i = 0; i < n; i++) g[i] = grad(s, (int)(i % N));
        ddpm_set_threads(1);
        ddpm_adamw_step(o1, p1, g, s == STEPS - 1 ? 5e-3 : 0);
        ddpm_set_threads(2);
        ddpm_adamw_step(o2, p2, g, s == STEPS - 1 ? 5e-3 : 0);
    }
    ddpm_set_threads(saved);
    int64_t diff = 0, off = 0;
    for (int64_t i = 0; i < n; i++) {
        diff += p1[i] != p2[i];
        off += p1[i] != torch_p[i % N];
    }
    CHECK_MSG(diff == 0, "%lld elements differ between 1 and 2 threads", (long long)diff);
    CHECK_MSG(off == 0, "%lld elements differ from torch's values", (long long)off);
    ddpm_adamw_free(o1);
    ddpm_adamw_free(o2);
    free(p1);
    free(p2);
    free(g);
}

static void test_bad_config(void) {
    ddpm_adamw_config c;
    ddpm_adamw *o = (ddpm_adamw *)&c;
    ddpm_adamw_config_default(&c);
    CHECK_FAIL(ddpm_adamw_create(&c, -1, &o), DDPM_ERR_INVALID_ARG);
    CHECK(o == NULL);
    c.beta1 = 1.0;
    CHECK_FAIL(ddpm_adamw_create(&c, 10, &o), DDPM_ERR_INVALID_ARG);
    ddpm_adamw_config_default(&c);
    c.lr = NAN;
    CHECK_FAIL(ddpm_adamw_create(&c, 10, &o), DDPM_ERR_INVALID_ARG);
    ddpm_adamw_config_default(&c);
    c.eps = -1;
    CHECK_FAIL(ddpm_adamw_create(&c, 10, &o), DDPM_ERR_INVALID_ARG);
    ddpm_adamw_config_default(&c);
    c.weight_decay = -0.1;
    CHECK_FAIL(ddpm_adamw_create(&c, 10, &o), DDPM_ERR_INVALID_ARG);
    ddpm_adamw_config_default(&c);
    CHECK_OK(ddpm_adamw_create(&c, 0, &o));   /* an empty buffer is allowed; a step does nothing */
    ddpm_adamw_step(o, NULL, NULL, 0);
    ddpm_adamw_free(o);
    ddpm_adamw_free(NULL);
}

/* Resume: 2 steps, then moments and the step count copied into a fresh optimiser, then the rest, equals an
   uninterrupted run bit for bit. */
static void test_resume(void) {
    ddpm_adamw_config c;
    ddpm_adamw_config_default(&c);
    c.lr = 1e-2;
    float whole[N], part[N], g[N];
    ddpm_adamw *a = run_steps(&c, 0, whole);
    ddpm_adamw *b = NULL, *r = NULL;
    CHECK_OK(ddpm_adamw_create(&c, N, &b));
    CHECK_OK(ddpm_adamw_create(&c, N, &r));
    if (!b || !r) exit(1);
    for (int i = 0; i < N; i++) part[i] = param0(i);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < N; i++) g[i] = grad(s, i);
        ddpm_adamw_step(b, part, g, 0);
    }
    memcpy(ddpm_adamw_m(r), ddpm_adamw_m(b), sizeof(float) * N);
    memcpy(ddpm_adamw_v(r), ddpm_adamw_v(b), sizeof(float) * N);
    CHECK_OK(ddpm_adamw_set_steps(r, ddpm_adamw_steps(b)));
    CHECK_FAIL(ddpm_adamw_set_steps(r, -1), DDPM_ERR_INVALID_ARG);
    for (int s = 2; s < STEPS; s++) {
        for (int i = 0; i < N; i++) g[i] = grad(s, i);
        ddpm_adamw_step(r, part, g, 0);
    }
    CHECK(ddpm_adamw_steps(r) == STEPS);
    CHECK(memcmp(part, whole, sizeof part) == 0);
    ddpm_adamw_free(a);
    ddpm_adamw_free(b);
    ddpm_adamw_free(r);
}

int main(void) {
    test_defaults();
    test_resume();
    test_first_step();
    test_five_steps();
    test_threads();
    test_bad_config();
    return dd_test_finish("test_adamw");
}
