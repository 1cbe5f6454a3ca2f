/* cmd_bench.c — `ddpm bench forward|train-step`: times inference forwards or whole training steps (the step of
   the PyTorch peer's bench_torch.py train) and reports the median ms per step and images per second. */
#include <ddpm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "options.h"

static const cli_option options[] = {
    {"model", "PRESET|M", "mnist", "the network: a preset, a config.json or a model folder"},
    {"batch", "B", NULL, "images per step (required)"},
    {"steps", "N", "10", "timed steps"},
    {"warmup", "N", "2", "untimed steps first"},
    {"threads", "N", "2", "threads"},
    {"engine", "fast|reference", "fast", "the kernels: fast, or the plain reference twins"},
    {"seed", "S", "0", "seed of the weights (when the model has none) and of the data, timesteps and noise"},
    {"lr", "LR", "1e-4", "train-step: AdamW learning rate (weight decay 0.01)"},
    {"json", NULL, NULL, "print one JSON object instead of text"},
    {NULL, NULL, NULL, NULL},
};

typedef enum { BENCH_FORWARD, BENCH_TRAIN } bench_mode;

typedef struct {
    ddpm_model *m;
    ddpm_adamw *opt;
    ddpm_diffusion *dif;
    float *x0, *xt, *noise, *out, *dout, *tf;
    int64_t *t, *labels;
    uint32_t *u;
    double *ms;
} bench_state;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* /proc/cpuinfo's first "model name", or "unknown". */
static void cpu_name(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *p = strchr(line, ':');
        if (!p) break;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        snprintf(buf, size, "%s", p);
        buf[strcspn(buf, "\n")] = 0;
        break;
    }
    fclose(f);
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* One step. Training: t ~ U{0..T-1}, noise ~ N(0, I), x_t = q_sample(x0, t, noise), forward, MSE against the
   noise, zero_grad, backward, AdamW. Forward: one inference pass on a noised batch. Random numbers come from
   streams of (seed, step), so every step sees new timesteps and noise. */
static int step(bench_state *s, bench_mode mode, uint64_t seed, int step_index, int B, int64_t D,
                const ddpm_model_info *info, double *loss) {
    const int T = s->dif->T;
    ddpm_rng_uniform_u32(seed, ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)step_index, 0), 0, s->u, (size_t)B);
    for (int i = 0; i < B; i++) {
        s->t[i] = (int64_t)(s->u[i] % (uint32_t)T);
        s->tf[i] = (float)s->t[i];
    }
    ddpm_rng_normal_f32(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)step_index, 0), 0, s->noise,
                        (size_t)B * (size_t)D);
    ddpm_q_sample(s->dif, s->xt, s->x0, s->noise, s->t, B, D);
    const int64_t *labels = info->num_class_embeds > 0 ? s->labels : NULL;
    if (mode == BENCH_TRAIN) ddpm_model_set_dropout_seed(s->m, seed, (uint64_t)step_index);
    if (ddpm_model_forward(s->m, s->out, s->xt, s->tf, labels, B) != DDPM_OK) return cli_fail();
    if (mode == BENCH_FORWARD) return CLI_OK;
    *loss = ddpm_mse_loss(s->out, s->noise, (size_t)B * (size_t)D, s->dout);
    ddpm_model_zero_grad(s->m);
    if (ddpm_model_backward(s->m, s->dout, NULL) != DDPM_OK) return cli_fail();
    ddpm_adamw_step(s->opt, ddpm_model_params(s->m), ddpm_model_grads(s->m), 0);
    if (ddpm_model_params_changed(s->m) != DDPM_OK) return cli_fail();
    return CLI_OK;
}

static void report(const cli_args *a, bench_mode mode, const ddpm_model_info *info, int B, int threads,
                   int steps, int warmup, const double *ms, double loss, size_t plan_bytes) {
    double *sorted = malloc(sizeof(double) * (size_t)steps);
    double sum = 0, med;
    for (int i = 0; i < steps; i++) sum += ms[i];
    if (sorted) {
        memcpy(sorted, ms, sizeof(double) * (size_t)steps);
        qsort(sorted, (size_t)steps, sizeof(double), cmp_double);
        med = steps % 2 ? sorted[steps / 2] : 0.5 * (sorted[steps / 2 - 1] + sorted[steps / 2]);
    } else {
        med = sum / steps;
    }
    double mn = sorted ? sorted[0] : med, mx = sorted ? sorted[steps - 1] : med;
    free(sorted);
    double ips = B / (med * 1e-3);
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    struct rusage ru;
    double rss_mib = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0;
    const char *mode_name = mode == BENCH_TRAIN ? "train-step" : "forward";
    if (cli_flag(a, "json")) {
        printf("{\"mode\": \"%s\", \"impl\": \"ddpm\", \"version\": \"%s\", \"model\": ", mode_name, ddpm_version());
        json_string(stdout, cli_str(a, "model"));
        printf(", \"kind\": \"%s\", \"params\": %lld, \"batch\": %d, \"image_shape\": [%d, %d, %d], ", info->kind,
               (long long)info->num_params, B, info->in_channels, info->sample_size, info->sample_size);
        printf("\"threads\": %d, \"engine\": \"%s\", \"steps\": %d, \"warmup\": %d, ", threads,
               cli_str(a, "engine"), steps, warmup);
        printf("\"ms_per_step\": %.3f, \"median_ms\": %.3f, \"mean_ms\": %.3f, \"min_ms\": %.3f, \"max_ms\": %.3f, ",
               med, med, sum / steps, mn, mx);
        printf("\"images_per_s\": %.4f, \"times_ms\": [", ips);
        for (int i = 0; i < steps; i++) printf("%s%.3f", i ? ", " : "", ms[i]);
        printf("], \"plan_bytes\": %zu, \"peak_rss_mib\": %.1f, ", plan_bytes, rss_mib);
        if (mode == BENCH_TRAIN) printf("\"final_loss\": %.9g, ", loss);
        else printf("\"final_loss\": null, ");
        printf("\"cpu\": ");
        json_string(stdout, cpu);
        printf("}\n");
    } else {
        printf("ddpm %s %s: %lld params, batch %d x [%d, %d, %d], %d threads, %s engine, plan %.1f MiB\n",
               mode_name, cli_str(a, "model"), (long long)info->num_params, B, info->in_channels,
               info->sample_size, info->sample_size, threads, cli_str(a, "engine"), plan_bytes / 1048576.0);
        printf("  %s: median %.1f ms (min %.1f, max %.1f, %d timed after %d warm-up) -> %.2f images/s",
               mode == BENCH_TRAIN ? "training step" : "forward", med, mn, mx, steps, warmup, ips);
        if (mode == BENCH_TRAIN) printf(", loss %.4f", loss);
        printf("\n  peak RSS %.0f MiB, %s\n", rss_mib, cpu);
    }
}

static int bench(bench_state *s, const cli_args *a, bench_mode mode, int B, int steps, int warmup, int threads,
                 uint64_t seed, double lr, ddpm_engine engine) {
    if (ddpm_model_load(cli_str(a, "model"), seed, &s->m) != DDPM_OK) return cli_fail();
    ddpm_model_info info;
    ddpm_model_get_info(s->m, &info);
    if (mode == BENCH_TRAIN && info.in_channels != info.out_channels)
        return cli_usage_error("--model %s: in_channels %d != out_channels %d; an epsilon-predicting diffusion "
                               "model needs them equal", cli_str(a, "model"), info.in_channels, info.out_channels);
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);   /* linear, T = 1000, as the peer */
    if (ddpm_diffusion_create(&sc, &s->dif) != DDPM_OK) return cli_fail();
    ddpm_plan_config pc;
    ddpm_plan_config_default(&pc);
    pc.max_batch = B;
    pc.training = mode == BENCH_TRAIN;
    pc.engine = engine;
    if (ddpm_model_prepare(s->m, &pc) != DDPM_OK) return cli_fail();
    if (mode == BENCH_TRAIN) {
        ddpm_adamw_config ac;
        ddpm_adamw_config_default(&ac);
        ac.lr = lr;
        if (ddpm_adamw_create(&ac, info.num_params, &s->opt) != DDPM_OK) return cli_fail();
    }
    const int64_t D = (int64_t)info.in_channels * info.sample_size * info.sample_size;
    const size_t n = (size_t)B * (size_t)D, on = (size_t)B * (size_t)info.out_channels * (size_t)info.sample_size *
                                                 (size_t)info.sample_size;
    s->x0 = malloc(sizeof(float) * n);
    s->xt = malloc(sizeof(float) * n);
    s->noise = malloc(sizeof(float) * n);
    s->out = malloc(sizeof(float) * on);
    s->dout = malloc(sizeof(float) * on);
    s->tf = malloc(sizeof(float) * (size_t)B);
    s->t = malloc(sizeof(int64_t) * (size_t)B);
    s->labels = malloc(sizeof(int64_t) * (size_t)B);
    s->u = malloc(sizeof(uint32_t) * (n > (size_t)B ? n : (size_t)B));
    s->ms = malloc(sizeof(double) * (size_t)steps);
    if (!s->x0 || !s->xt || !s->noise || !s->out || !s->dout || !s->tf || !s->t || !s->labels || !s->u || !s->ms) {
        fprintf(stderr, "ddpm: error: out of memory for a batch of %d images\n", B);
        return CLI_FAIL;
    }
    /* one fixed batch x0 in [-1, 1] (no data loading is timed) and fixed class labels */
    ddpm_rng_uniform_u32(seed + 1, ddpm_rng_stream(DDPM_STREAM_INIT, 0, 0), 0, s->u, n);
    for (size_t i = 0; i < n; i++) s->x0[i] = (float)((s->u[i] + 0.5) / 4294967296.0 * 2.0 - 1.0);
    ddpm_rng_uniform_u32(seed + 1, ddpm_rng_stream(DDPM_STREAM_INIT, 1, 0), 0, s->u, (size_t)B);
    for (int i = 0; i < B; i++)
        s->labels[i] = info.num_class_embeds > 0 ? (int64_t)(s->u[i] % (uint32_t)info.num_class_embeds) : 0;

    double loss = 0;
    for (int i = 0; i < warmup + steps; i++) {
        double t0 = now_ms();
        int rc = step(s, mode, seed, i, B, D, &info, &loss);
        double dt = now_ms() - t0;
        if (rc != CLI_OK) return rc;
        if (cli_interrupted()) {
            fprintf(stderr, "ddpm: error: interrupted\n");
            return CLI_INTERRUPTED;
        }
        if (i >= warmup) s->ms[i - warmup] = dt;
    }
    report(a, mode, &info, B, threads, steps, warmup, s->ms, loss, ddpm_model_plan_bytes(s->m));
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "ddpm: error: cannot write to standard output\n");
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    long long B, steps, warmup, threads;
    uint64_t seed;
    double lr;
    ddpm_engine engine = DDPM_ENGINE_FAST;
    bench_mode mode;
    const char *what = a->positional[0];
    if (strcmp(what, "forward") == 0) mode = BENCH_FORWARD;
    else if (strcmp(what, "train-step") == 0) mode = BENCH_TRAIN;
    else {
        static const char *const modes[] = {"forward", "train-step"};
        const char *near = ddpm_closest(what, modes, 2);
        if (near) return cli_usage_error("'ddpm bench %s': unknown benchmark (did you mean '%s'?)", what, near);
        return cli_usage_error("'ddpm bench %s': unknown benchmark (choose forward or train-step)", what);
    }
    int rc = cli_int(a, "batch", 1, 1 << 20, &B);
    if (rc == CLI_OK) rc = cli_int(a, "steps", 1, 1000000, &steps);
    if (rc == CLI_OK) rc = cli_int(a, "warmup", 0, 1000000, &warmup);
    if (rc == CLI_OK) rc = cli_threads(a, "threads", 1, &threads);
    if (rc == CLI_OK) rc = cli_u64(a, "seed", &seed);
    if (rc == CLI_OK) rc = cli_double(a, "lr", 0, 1e3, 0, &lr);
    int ev = 0;
    if (rc == CLI_OK && (rc = cli_enum(a, "engine", DDPM_ENUM_ENGINE, &ev)) == CLI_OK) engine = (ddpm_engine)ev;
    if (rc != CLI_OK) return rc;
    ddpm_set_threads((int)threads);

    bench_state s;
    memset(&s, 0, sizeof s);
    rc = bench(&s, a, mode, (int)B, (int)steps, (int)warmup, (int)threads, seed, lr, engine);
    ddpm_adamw_free(s.opt);
    ddpm_model_free(s.m);
    ddpm_diffusion_free(s.dif);
    free(s.x0);
    free(s.xt);
    free(s.noise);
    free(s.out);
    free(s.dout);
    free(s.tf);
    free(s.t);
    free(s.labels);
    free(s.u);
    free(s.ms);
    return rc;
}

const cli_command cli_cmd_bench = {
    "bench",
    "time inference forwards or training steps of a network (median ms/step, images/s)",
    "forward|train-step --batch B [--model PRESET|M] [--steps N] [--warmup N] [--threads N] [--json]",
    "forward|train-step", 1, 1, options,
    "train-step times what the PyTorch peer's bench_torch.py train times: t ~ U{0..999}, noise ~ N(0, I),\n"
    "x_t = q_sample(x0, t, noise) (linear schedule), forward, MSE against the noise, backward and an AdamW step\n"
    "(weight decay 0.01) on one fixed random batch x0 in [-1, 1]; dropout is active where the config has it.\n"
    "forward times one inference pass of B images. Times are CLOCK_MONOTONIC per step; the median is reported.\n\n"
    "examples:\n"
    "  ddpm bench train-step --model mnist --batch 64 --threads 2 --json\n"
    "  ddpm bench forward --model cifar10 --batch 16 --engine reference --steps 3\n",
    run,
};
