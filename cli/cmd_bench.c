/* cmd_bench.c — `ddpm bench forward|sample|train-step`: times inference forwards, DDIM-50 sampling steps (the
   step of the PyTorch peer's bench_torch.py sample), or whole training steps of the library's trainer (its
   bench_torch.py train), on a fixed synthetic batch and reports the median ms per step and images per second. */
#include <ddpm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "options.h"

static const cli_option options[] = {
    {"model", "PRESET|M", "mnist", "the network: a preset, a config.json or a model folder"},
    {"batch", "B", NULL, "images per step (required)"},
    {"steps", "N", "10", "timed steps"},
    {"warmup", "N", "2", "untimed steps first"},
    {"threads", "N", "2", "threads: a count, or auto: the cores other processes leave free"},
    CLI_OPT_ENGINE,
    {"seed", "S", cli_defaults.seed, "seed of the weights (when the model has none) and of the data, timesteps and noise"},
    {"lr", "LR", NULL, "train-step: AdamW learning rate (default: the library's AdamW default, as the peer's)"},
    {"profile", NULL, NULL, "time every op of the timed steps and print a table per op kind and pass"},
    {"json", NULL, NULL, "print one JSON object instead of text"},
    {NULL, NULL, NULL, NULL},
};

typedef struct {
    ddpm_model *m;            /* forward: the network, prepared for inference, with the linear schedule */
    ddpm_diffusion *dif;
    ddpm_trainer *tr;         /* train-step */
    ddpm_dataset data;        /* the batch: B images (and labels for a class-conditional network) */
    float *x0, *xt, *noise, *out, *tf;   /* forward: parts of x0's block; t [B], labels [B] and u [B] in t's */
    int64_t *t, *labels;
    uint32_t *u;
    double *ms;               /* [steps] timed milliseconds, then sorted after times[] */
    double *xd;               /* sample: the DDIM sample [B, D] */
    int timed, warmup, need;  /* sample: steps seen, untimed steps, steps wanted (warmup + timed) */
    double last;              /* sample: the time of the previous step's end */
    int profile;              /* --profile: start profiling at the first timed step */
    int engine;               /* the engine run (--engine with --precision) */
} bench_state;

/* --profile: the model whose ops are timed (the trainer's for train-step). */
static ddpm_model *profiled_model(const bench_state *s) { return s->tr ? ddpm_trainer_model(s->tr) : s->m; }

#define DD_BENCH_DDIM_STEPS 50

/* sample: the network as the sampler's model function (labels 0, 1, 2, ... for a class-conditional one). */
static ddpm_status sample_model(void *user, float *out, const float *x, const int64_t *t, int64_t N, int64_t D) {
    (void)D;
    bench_state *s = user;
    for (int64_t i = 0; i < N; i++) s->tf[i] = (float)t[i];
    return ddpm_model_forward(s->m, out, x, s->tf, s->data.num_classes > 0 ? s->labels : NULL, (int)N);
}

/* sample: after every DDIM step (network call and update), its time; stops the loop once enough are seen. */
static ddpm_status sample_tick(void *user, int step_index, int num_steps, int64_t timestep, const double *x,
                               const double *x0_pred, int64_t N, int64_t D) {
    (void)step_index, (void)num_steps, (void)timestep, (void)x, (void)x0_pred, (void)N, (void)D;
    bench_state *s = user;
    const double now = cli_now();
    if (s->timed >= s->warmup) s->ms[s->timed - s->warmup] = (now - s->last) * 1e3;
    s->timed++;
    if (s->profile && s->timed == s->warmup && ddpm_model_profile_start(s->m) != DDPM_OK) return DDPM_ERR_NOMEM;
    s->last = cli_now();
    if (cli_interrupted() || s->timed >= s->need) return DDPM_ERR_INTERRUPTED;
    return DDPM_OK;
}

/* sample: DDIM-50 runs (eta 0, leading spacing, timesteps 980, 960, ..., 0) from fresh noise until warmup +
   steps steps are seen. */
static ddpm_status sample_steps(bench_state *s, uint64_t seed, int B, int64_t D) {
    ddpm_sampler_config cfg;
    ddpm_sampler_config_default(&cfg, DDPM_SAMPLER_DDIM);
    cfg.steps = DD_BENCH_DDIM_STEPS, cfg.seed = seed, cfg.on_step = sample_tick, cfg.step_user = s;
    for (int run = 0; s->timed < s->need; run++) {
        ddpm_rng_normal_f64(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)run, 0), 0, s->xd, (size_t)(B * D));
        s->last = cli_now();
        ddpm_status st = ddpm_sample_loop(s->dif, &cfg, sample_model, s, s->xd, B, D, 0);
        if (st == DDPM_ERR_INTERRUPTED && s->timed >= s->need) return DDPM_OK;
        if (st != DDPM_OK) return st;
    }
    return DDPM_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A JSON string of s. */
static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        printf(*p == '"' || *p == '\\' ? "\\%c" : *p < 0x20 ? "\\u%04x" : "%c", *p);
    putchar('"');
}

/* Forward: one inference pass on x0 noised at t ~ U{0..T-1} with noise from streams of (seed, step). */
static ddpm_status forward_step(bench_state *s, uint64_t seed, int step, int B, int64_t D) {
    ddpm_rng_uniform_u32(seed, ddpm_rng_stream(DDPM_STREAM_TRAIN, (uint32_t)step, 0), 0, s->u, (size_t)B);
    for (int i = 0; i < B; i++) s->tf[i] = (float)(s->t[i] = (int64_t)(s->u[i] % (uint32_t)s->dif->T));
    ddpm_rng_normal_f32(seed, ddpm_rng_stream(DDPM_STREAM_NOISING, (uint32_t)step, 0), 0, s->noise, (size_t)(B * D));
    ddpm_q_sample(s->dif, s->xt, s->x0, s->noise, s->t, B, D);
    return ddpm_model_forward(s->m, s->out, s->xt, s->tf, s->data.num_classes > 0 ? s->labels : NULL, B);
}

/* --profile: the table of op kinds (text) or the "profile" and "ceilings" members (JSON), per timed step. */
static void report_profile(const bench_state *s, int json, int steps, double mean_ms) {
    ddpm_model *m = profiled_model(s);
    const int n = ddpm_model_profile_rows(m, NULL, 0);
    ddpm_profile_row *rows = n > 0 ? malloc(sizeof *rows * (size_t)n) : NULL;
    if (n > 0 && !rows) return;
    ddpm_model_profile_rows(m, rows, n);
    double peak = 0.0, bw = 0.0, net = 0.0, all = 0.0;
    ddpm_measure_ceilings(0, &peak, &bw);
    for (int i = 0; i < n; i++) {
        all += rows[i].seconds;
        if (rows[i].network_op) net += rows[i].seconds;
    }
    const double rest_ms = mean_ms - all * 1e3 / steps;
    if (json) {
        printf(", \"ceilings\": {\"gflops\": %.1f, \"gbytes\": %.1f, \"threads\": %d}, \"profile\": [", peak, bw,
               ddpm_get_threads());
        for (int i = 0; i < n; i++) {
            const ddpm_profile_row *r = &rows[i];
            printf("%s{\"op\": \"%s\", \"pass\": \"%s\", \"calls_per_step\": %.2f, \"ms_per_step\": %.3f, "
                   "\"share\": %.4f, \"gflops\": %.2f, \"gbytes\": %.2f}", i ? ", " : "", r->op,
                   r->backward ? "backward" : "forward", (double)r->calls / steps, r->seconds * 1e3 / steps,
                   r->seconds * 1e3 / steps / mean_ms, r->seconds > 0 ? r->flops / r->seconds * 1e-9 : 0.0,
                   r->seconds > 0 ? r->bytes / r->seconds * 1e-9 : 0.0);
        }
        printf("], \"profile_rest_ms\": %.3f", rest_ms);
        free(rows);
        return;
    }
    printf("\nprofile, per timed step (mean step %.1f ms); ceilings measured on %d threads: %.0f GFLOP/s (FMA loop), "
           "%.1f GB/s (triad)\n", mean_ms, ddpm_get_threads(), peak, bw);
    printf("  %-15s %-8s %7s %9s %6s %9s %6s %8s %6s\n", "op", "pass", "calls", "ms/step", "share", "GFLOP/s",
           "%peak", "GB/s", "%bw");
    for (int i = 0; i < n; i++) {
        const ddpm_profile_row *r = &rows[i];
        const double ms = r->seconds * 1e3 / steps, gf = r->seconds > 0 ? r->flops / r->seconds * 1e-9 : 0.0;
        const double gb = r->seconds > 0 ? r->bytes / r->seconds * 1e-9 : 0.0;
        char gfs[16] = "-", pk[16] = "-";
        if (r->flops > 0) {
            snprintf(gfs, sizeof gfs, "%.1f", gf);
            snprintf(pk, sizeof pk, "%.0f%%", peak > 0 ? 100.0 * gf / peak : 0.0);
        }
        printf("  %-15s %-8s %7.1f %9.2f %5.1f%% %9s %6s %8.1f %5.0f%%\n", r->op, r->backward ? "backward" : "forward",
               (double)r->calls / steps, ms, 100.0 * ms / mean_ms, gfs, pk, gb, bw > 0 ? 100.0 * gb / bw : 0.0);
    }
    printf("  %-15s %-8s %7s %9.2f %5.1f%%\n", "network ops", "", "", net * 1e3 / steps,
           100.0 * net * 1e3 / steps / mean_ms);
    printf("  %-15s %-8s %7s %9.2f %5.1f%%   (%s)\n", "not profiled", "", "", rest_ms, 100.0 * rest_ms / mean_ms,
           s->tr ? "trainer glue" : "the sampler's update and conversions");
    free(rows);
}

static void report(const cli_args *a, const bench_state *bs, int mode, const ddpm_model_info *info, int B,
                   int threads, int steps, int warmup, double *ms, double loss, size_t plan) {
    const int train = mode == 2, sample = mode == 1;
    double sum = 0, *sorted = ms + steps;
    for (int i = 0; i < steps; i++) sum += sorted[i] = ms[i];
    qsort(sorted, (size_t)steps, sizeof(double), cmp_double);
    const double med = steps % 2 ? sorted[steps / 2] : 0.5 * (sorted[steps / 2 - 1] + sorted[steps / 2]);
    const double mn = sorted[0], mx = sorted[steps - 1];
    const double ips = B / (med * 1e-3 * (sample ? DD_BENCH_DDIM_STEPS : 1));   /* sample: a whole DDIM-50 run */
    char thr[64];
    if (threads > 0) snprintf(thr, sizeof thr, "%d threads", threads);
    else snprintf(thr, sizeof thr, "auto threads (%d at the end)", ddpm_get_threads());
    char cpu[256];
    ddpm_cpu_name(cpu, sizeof cpu);
    struct rusage ru;
    const double rss_mib = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0;
    const char *name = train ? "train-step" : sample ? "sample" : "forward", *engine = ddpm_enum_name(DDPM_ENUM_ENGINE, bs->engine);
    if (!cli_flag(a, "json")) {
        printf("ddpm %s %s: %lld params, batch %d x [%d, %d, %d], %s, %s engine, plan %.1f MiB\n", name,
               cli_str(a, "model"), (long long)info->num_params, B, info->in_channels, info->sample_size,
               info->sample_size, thr, engine, plan / 1048576.0);
        printf("  %s: median %.1f ms (min %.1f, max %.1f, %d timed after %d warm-up) -> %.2f images/s%s",
               train ? "training step" : sample ? "DDIM step" : "forward", med, mn, mx, steps, warmup, ips,
               sample ? " (a whole DDIM-50 run)" : "");
        if (train) printf(", loss %.4f", loss);
        printf("\n  peak RSS %.0f MiB, %s\n", rss_mib, cpu);
        if (bs->profile) report_profile(bs, 0, steps, sum / steps);
        return;
    }
    printf("{\"mode\": \"%s\", \"impl\": \"ddpm\", \"version\": \"%s\", \"model\": ", name, ddpm_version());
    json_string(cli_str(a, "model"));
    printf(", \"kind\": \"%s\", \"params\": %lld, \"batch\": %d, \"image_shape\": [%d, %d, %d], \"threads\": %d, "
           "\"threads_auto\": %s, \"engine\": \"%s\", \"steps\": %d, \"warmup\": %d, \"ms_per_step\": %.3f, \"median_ms\": %.3f, "
           "\"mean_ms\": %.3f, \"min_ms\": %.3f, \"max_ms\": %.3f, \"images_per_s\": %.4f, \"times_ms\": [",
           info->kind, (long long)info->num_params, B, info->in_channels, info->sample_size, info->sample_size,
           threads > 0 ? threads : ddpm_get_threads(), threads > 0 ? "false" : "true", engine, steps, warmup, med,
           med, sum / steps, mn, mx, ips);
    for (int i = 0; i < steps; i++) printf("%s%.3f", i ? ", " : "", ms[i]);
    printf("], \"plan_bytes\": %zu, \"peak_rss_mib\": %.1f, \"final_loss\": ", plan, rss_mib);
    printf(train ? "%.9g, \"cpu\": " : "null, \"cpu\": ", loss);
    json_string(cpu);
    if (bs->profile) report_profile(bs, 1, steps, sum / steps);
    printf("}\n");
}

/* Loads the network and makes the batch, then the trainer (train-step: a constant rate, without clipping or
   EMA) or the inference plan and buffers. */
static int setup(bench_state *s, const cli_args *a, int mode, int B, int steps, uint64_t seed, double lr,
                 ddpm_engine engine, ddpm_model_info *info) {
    const int train = mode == 2;
    if (ddpm_model_load(cli_str(a, "model"), seed, &s->m) != DDPM_OK) return cli_fail();
    ddpm_model_get_info(s->m, info);
    const int C = info->in_channels, S = info->sample_size;
    const size_t D = (size_t)C * (size_t)S * (size_t)S, on = (size_t)B * (size_t)info->out_channels * (size_t)(S * S);
    if (ddpm_dataset_random(B, C, S, info->num_class_embeds, seed + 1, &s->data) != DDPM_OK) return cli_fail();
    if (!(s->ms = malloc(sizeof(double) * 2 * (size_t)steps))) return cli_error(CLI_FAIL, "out of memory");
    if (train) {
        ddpm_train_config tc;
        ddpm_adamw_config ac;
        ddpm_train_config_default(&tc), ddpm_adamw_config_default(&ac);
        tc.steps = 1 << 30, tc.batch = B, tc.seed = seed, tc.engine = engine, tc.lr = lr > 0 ? lr : ac.lr;
        tc.warmup_steps = 0, tc.grad_clip = 0, tc.use_ema = 0, tc.label_dropout = 0;
        ddpm_model *m = s->m;   /* the trainer's from here on */
        s->m = NULL;
        return ddpm_trainer_create(&tc, m, &s->data, &s->tr) == DDPM_OK ? CLI_OK : cli_fail();
    }
    ddpm_schedule_config sc;   /* linear, T = 1000, as the peer */
    ddpm_plan_config pc;
    ddpm_schedule_config_default(&sc), ddpm_plan_config_default(&pc);
    pc.max_batch = B, pc.engine = engine;
    if (ddpm_diffusion_create(&sc, &s->dif) != DDPM_OK || ddpm_model_prepare(s->m, &pc) != DDPM_OK) return cli_fail();
    s->x0 = malloc(sizeof(float) * (3 * (size_t)B * D + on + (size_t)B));
    s->t = malloc(sizeof(int64_t) * 2 * (size_t)B + sizeof(uint32_t) * (size_t)B);
    if (!s->x0 || !s->t) return cli_error(CLI_FAIL, "out of memory for a batch of %d images", B);
    s->xt = s->x0 + (size_t)B * D, s->noise = s->xt + (size_t)B * D, s->out = s->noise + (size_t)B * D;
    s->tf = s->out + on, s->labels = s->t + B, s->u = (uint32_t *)(s->labels + B);
    for (int i = 0; i < B; i++) ddpm_dataset_get_f32(&s->data, i, s->x0 + (size_t)i * D);
    for (int i = 0; i < B; i++) s->labels[i] = s->data.labels ? s->data.labels[i] : 0;
    if (mode == 1 && !(s->xd = malloc(sizeof(double) * (size_t)B * D)))
        return cli_error(CLI_FAIL, "out of memory for a batch of %d images", B);
    return CLI_OK;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    long long B, steps, warmup, threads;
    uint64_t seed;
    double lr = 0, loss = 0;   /* lr 0: the AdamW default */
    static const char *const modes[] = {"forward", "sample", "train-step", NULL};
    int ev = 0, mode = 0, rc;
    char label[300];
    snprintf(label, sizeof label, "'ddpm bench %.200s'", a->positional[0]);
    if ((rc = cli_choice(label, a->positional[0], modes, "benchmark", &mode)) ||
        (rc = cli_int(a, "batch", 1, 1 << 20, &B)) || (rc = cli_int(a, "steps", 1, 1000000, &steps)) ||
        (rc = cli_int(a, "warmup", 0, 1000000, &warmup)) || (rc = cli_threads(a, "threads", 0, &threads)) ||
        (rc = cli_u64(a, "seed", &seed)) || (rc = cli_engine(a, &ev)) ||
        (cli_given(a, "lr") && (rc = cli_double(a, "lr", 0, 1e6, 1, &lr))))
        return rc;
    const int train = mode == 2;
    ddpm_set_threads((int)threads);
    bench_state s = {.m = NULL};
    ddpm_model_info info = {.num_params = 0};
    s.engine = ev;
    rc = setup(&s, a, mode, (int)B, (int)steps, seed, lr, (ddpm_engine)ev, &info);
    const int64_t D = (int64_t)info.in_channels * info.sample_size * info.sample_size;
    s.profile = cli_flag(a, "profile");
    if (rc == CLI_OK && s.profile && warmup == 0 && ddpm_model_profile_start(profiled_model(&s)) != DDPM_OK)
        rc = cli_fail();
    if (rc == CLI_OK && mode == 1) {
        s.warmup = (int)warmup, s.need = (int)(warmup + steps);
        if (sample_steps(&s, seed, (int)B, D) != DDPM_OK) rc = cli_fail();
        else if (cli_interrupted()) rc = cli_error(cli_stop_status(), "interrupted");
    }
    for (int i = 0; rc == CLI_OK && mode != 1 && i < warmup + steps; i++) {
        ddpm_train_stats st;
        if (s.profile && i == warmup && i > 0 && ddpm_model_profile_start(profiled_model(&s)) != DDPM_OK) {
            rc = cli_fail();
            break;
        }
        double t0 = cli_now();
        if ((train ? ddpm_trainer_step(s.tr, &st) : forward_step(&s, seed, i, (int)B, D)) != DDPM_OK) rc = cli_fail();
        if (i >= warmup) s.ms[i - warmup] = (cli_now() - t0) * 1e3;
        if (train) loss = st.loss;
        if (rc == CLI_OK && cli_interrupted()) rc = cli_error(cli_stop_status(), "interrupted");
    }
    if (rc == CLI_OK) {
        report(a, &s, mode, &info, (int)B, (int)threads, (int)steps, (int)warmup, s.ms, loss,
               ddpm_model_plan_bytes(train ? ddpm_trainer_model(s.tr) : s.m));
        if (fflush(stdout) != 0 || ferror(stdout)) rc = cli_error(CLI_FAIL, "cannot write to standard output");
    }
    ddpm_trainer_free(s.tr);
    ddpm_model_free(s.m);
    ddpm_diffusion_free(s.dif);
    ddpm_dataset_free(&s.data);
    free(s.x0), free(s.t), free(s.ms), free(s.xd);
    return rc;
}

const cli_command cli_cmd_bench = {
    "bench",
    "time inference forwards, DDIM sampling steps or training steps of a network (median ms/step, images/s)",
    "forward|sample|train-step --batch B [--model PRESET|M] [--steps N] [--warmup N] [--threads N|auto]\n"
    "                  [--precision fp32|bf16] [--profile] [--json]",
    "forward|sample|train-step", 1, 1, options,
    "train-step times ddpm_trainer_step, what the PyTorch peer's bench_torch.py train times: t ~ U{0..999}, noise ~\n"
    "N(0, I), x_t = q_sample(x0, t, noise) (linear schedule), forward, MSE against the noise, backward and an AdamW\n"
    "step (weight decay 0.01; no warm-up, clipping or EMA) on one fixed random batch of B images; dropout is active\n"
    "where the config has it. sample times what bench_torch.py sample times: one step of DDIM-50 (eta 0, timesteps\n"
    "980, 960, ..., 0, walked again from fresh noise when more steps are asked for) is one network call on the\n"
    "batch and the DDIM update, and images/s = B / (50 x the median step), a whole DDIM-50 run. forward times one\n"
    "inference pass of B images. Times are CLOCK_MONOTONIC per step; the median is reported. --threads auto\n"
    "measures, before each network call, the cores other processes keep busy and runs on the rest.\n\n"
    "examples:\n"
    "  ddpm bench train-step --model mnist --batch 64 --threads 2 --json\n"
    "  ddpm bench sample --model mnist --batch 64 --steps 20\n"
    "  ddpm bench forward --model cifar10 --batch 16 --engine reference --steps 3\n",
    run,
};
