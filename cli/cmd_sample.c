/* cmd_sample.c — `ddpm sample`: images from a trained model with DDPM, DDIM or DPM-Solver++ (2M), optionally
   class-conditional with classifier-free guidance; a grid, single images, the raw tensor, and the trajectory strip
   of the seed's p_sample_loop_trajectory. Image i's x_T and noise are drawn from streams of (seed, i), so the
   images do not depend on --batch or --threads. */
#define _XOPEN_SOURCE 700   /* realpath */
#include <ddpm.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_common.h"
#include "options.h"

#define MAX_NUM 65536
#define TRAJ_MAX_IMAGES 8

static const cli_option options[] = {
    APP_OPT_MODEL,
    APP_OPT_SAMPLER("ddim"),
    APP_OPT_STEPS,
    APP_OPT_ETA,
    APP_OPT_SPACING,
    APP_OPT_CLIP,
    {"num", "N", "16", "images to draw"},
    {"batch", "B", NULL, "images per network call (default: min(num, 16)); the images do not depend on it"},
    APP_OPT_SEED,
    APP_OPT_CLASS,
    APP_OPT_GUIDANCE,
    {"out", "FILE.png", NULL, "the grid of all images (with the settings in a tEXt chunk)"},
    {"cols", "C", NULL, "columns of the grid (default: ceil(sqrt(num)))"},
    {"scale", "K", "auto", "enlarge the grid K times, nearest neighbour (auto: cells of at least 64 pixels)"},
    {"individual", "DIR", NULL, "also write each image at the model's size: DIR/000000.png, DIR/000001.png, ..."},
    {"noise", "FILE", NULL, "x_T from a safetensors file: one F32 tensor x_T [N, C, H, W] (N sets --num)"},
    {"save-tensor", "FILE", NULL, "write the images as one F32 tensor 'samples' [N, C, H, W] in model space"},
    {"trajectory", "FILE.png", NULL, "x_t and the x0 prediction of the first min(num, 8) images at "
                                     "--trajectory-frames steps"},
    {"trajectory-frames", "F", "10", "steps shown by --trajectory, evenly spread, the last one included"},
    {"repeat-noise-steps", "R", "-1", "all images share x_T and the noise of the first R steps (the seed's "
                                      "trajectory mode; -1: off)"},
    APP_OPT_THREADS,
    APP_OPT_ENGINE,
    {NULL, NULL, NULL, NULL},
};

/* --noise: the x_T tensor into x [N, D] (allocated here); N from the file. */
static int read_noise(app_ctx *c, const char *path, long long num_given, double **x, int64_t *N) {
    ddpm_safetensors *st = NULL;
    float *buf = NULL;
    int rc = CLI_OK;
    if (ddpm_st_open(path, &st) != DDPM_OK) return app_error("--noise %s: %s", path, ddpm_last_error());
    const ddpm_st_tensor *t = ddpm_st_find(st, "x_T");
    if (!t && ddpm_st_count(st) == 1) t = ddpm_st_at(st, 0);
    char sh[160] = "[";
    if (t)
        for (int k = 0; k < t->ndim; k++)
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    strncat(sh, "]", sizeof sh - strlen(sh) - 1);
    if (!t) {
        rc = app_error("--noise %s: no tensor 'x_T' (the file holds %d tensors)", path, ddpm_st_count(st));
    } else if (t->dtype != DDPM_DTYPE_F32 && t->dtype != DDPM_DTYPE_F64 && t->dtype != DDPM_DTYPE_F16 &&
               t->dtype != DDPM_DTYPE_BF16) {
        rc = app_error("--noise %s: tensor '%s' is %s; need F32", path, t->name, ddpm_dtype_name(t->dtype));
    } else if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > MAX_NUM || t->shape[1] != c->C ||
               t->shape[2] != c->S || t->shape[3] != c->S) {
        rc = app_error("--noise %s: tensor '%s' has shape %s; the model needs [N, %d, %d, %d] with 1 <= N <= %d", path,
                       t->name, sh, c->C, c->S, c->S, MAX_NUM);
    } else if (num_given > 0 && num_given != t->shape[0]) {
        rc = cli_usage_error("--num %lld: --noise %s holds %lld images ('%s' %s); leave --num out or make them agree",
                             num_given, path, (long long)t->shape[0], t->name, sh);
    } else {
        *N = t->shape[0];
        size_t n = (size_t)t->numel;
        buf = malloc(sizeof(float) * n);
        *x = malloc(sizeof(double) * n);
        if (!buf || !*x) rc = app_error("out of memory");
        else if (ddpm_st_read_f32(st, t->name, buf, t->numel) != DDPM_OK)
            rc = app_error("--noise %s: %s", path, ddpm_last_error());
        else
            for (size_t i = 0; i < n; i++) (*x)[i] = (double)buf[i];
    }
    free(buf);
    ddpm_st_close(st);
    return rc;
}

/* The frames of --trajectory: F step indices spread evenly over 0..steps-1, the last one included. */
static int traj_init(app_traj *tr, int nimg, int frames, int steps, int64_t D) {
    memset(tr, 0, sizeof *tr);
    int F = frames < steps ? frames : steps;
    tr->nimg = nimg;
    tr->nframes = F;
    tr->D = D;
    for (int j = 0; j < F; j++)
        tr->steps[j] = F == 1 ? steps - 1 : (int)floor((double)j * (steps - 1) / (F - 1) + 0.5);
    size_t n = (size_t)nimg * (size_t)F * (size_t)D;
    tr->x = calloc(n, sizeof(float));
    tr->x0 = calloc(n, sizeof(float));
    return tr->x && tr->x0 ? CLI_OK : app_error("out of memory");
}

/* Two captioned rows per image (x after each shown step, and the step's x0 prediction), stacked. */
static int write_trajectory(app_ctx *c, const app_traj *tr, const char *path, const char *what) {
    int F = tr->nframes, rows_n = 2 * tr->nimg, rc = CLI_OK;
    ddpm_image *rows = calloc((size_t)rows_n, sizeof(ddpm_image));
    ddpm_image all;
    char capx[64][32], cap0[64][40];
    const char *px[64], *p0[64];
    memset(&all, 0, sizeof all);
    if (!rows) return app_error("out of memory");
    for (int j = 0; j < F; j++) {
        snprintf(capx[j], sizeof capx[j], "t = %lld", (long long)tr->t[j]);
        snprintf(cap0[j], sizeof cap0[j], "x\xcc\x82\xe2\x82\x80 @ %lld", (long long)tr->t[j]);   /* x̂₀ */
        px[j] = capx[j];
        p0[j] = cap0[j];
    }
    int scale = app_strip_scale(c->S);
    for (int i = 0; i < tr->nimg && rc == CLI_OK; i++) {
        size_t off = (size_t)i * (size_t)F * (size_t)tr->D;
        if (ddpm_image_strip(&rows[2 * i], tr->x + off, F, c->C, c->S, c->S, px, scale) != DDPM_OK ||
            ddpm_image_strip(&rows[2 * i + 1], tr->x0 + off, F, c->C, c->S, c->S, p0, scale) != DDPM_OK)
            rc = cli_fail();
    }
    if (rc == CLI_OK) rc = app_stack_rows(rows, rows_n, &all);
    if (rc == CLI_OK) rc = app_write_png(c, path, &all, what);
    for (int i = 0; i < rows_n; i++) ddpm_image_free(&rows[i]);
    free(rows);
    ddpm_image_free(&all);
    return rc;
}

static int write_grid(app_ctx *c, const float *xf, int64_t num, long long cols, long long scale, const char *path,
                      const char *what) {
    ddpm_image grid, big;
    memset(&grid, 0, sizeof grid);
    memset(&big, 0, sizeof big);
    if (ddpm_image_grid(&grid, xf, (int)num, c->C, c->S, c->S, (int)cols, 1, 255) != DDPM_OK) return cli_fail();
    int k = scale > 0 ? (int)scale : (c->S < 64 ? (64 + c->S - 1) / c->S : 1);
    int rc = app_enlarge(&grid, k, &big);
    if (rc == CLI_OK) rc = app_write_png(c, path, &big, what);
    ddpm_image_free(&grid);
    ddpm_image_free(&big);
    return rc;
}

/* 1 for the names `ddpm sample --individual` writes: six or more digits and ".png". */
static int is_image_name(const char *n) {
    size_t k = 0;
    while (n[k] >= '0' && n[k] <= '9') k++;
    return k >= 6 && strcmp(n + k, ".png") == 0;
}

/* --individual DIR may be new, or a folder holding only images of an earlier --individual run (they are
   replaced as a whole); anything else is refused before sampling starts. */
static int check_individual(const char *dir) {
    struct stat sb;
    if (lstat(dir, &sb) != 0) return errno == ENOENT ? CLI_OK : app_error("--individual %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return app_error("--individual %s: %s; give a new folder or one that an earlier --individual wrote", dir,
                         S_ISLNK(sb.st_mode) ? "is a symbolic link" : "exists and is not a folder");
    DIR *d = opendir(dir);
    if (!d) return app_error("--individual %s: cannot read the folder: %s", dir, strerror(errno));
    struct dirent *e;
    const char *foreign = NULL;
    char name[256];
    while (!foreign && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !is_image_name(e->d_name)) {
            snprintf(name, sizeof name, "%s", e->d_name);
            foreign = name;
        }
    closedir(d);
    if (foreign)
        return app_error("--individual %s: the folder holds '%s', which ddpm did not write; give a new folder or "
                         "one that an earlier --individual wrote", dir, foreign);
    return CLI_OK;
}

/* Removes a folder of image files (what check_individual allowed) and the folder. */
static void remove_image_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        size_t len = strlen(dir) + 300;
        char *p = malloc(len);
        while (p && (e = readdir(d)))
            if (is_image_name(e->d_name)) {
                snprintf(p, len, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        free(p);
        closedir(d);
    }
    rmdir(dir);
}

/* Every image into DIR.tmp.<pid>; only when all are written does it take DIR's place (an earlier DIR is
   removed then). On any failure DIR is as it was and the partial folder is gone. */
static int write_individual(app_ctx *c, const float *xf, int64_t num, const char *given) {
    size_t len = strlen(given) + 48;
    char *dir = malloc(len), *stage = malloc(len), *old = malloc(len), *path = malloc(len);
    if (!dir || !stage || !old || !path) {
        free(dir);
        free(stage);
        free(old);
        free(path);
        return app_error("out of memory");
    }
    strcpy(dir, given);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = 0;   /* "imgs/" is "imgs" */
    snprintf(stage, len, "%s.tmp.%ld", dir, (long)getpid());
    snprintf(old, len, "%s.old.%ld", dir, (long)getpid());
    remove_image_dir(stage);   /* left by a killed process of the same pid */
    int rc = ddpm_make_dirs(stage) == DDPM_OK ? CLI_OK : cli_fail();
    for (int64_t i = 0; rc == CLI_OK && i < num; i++) {
        ddpm_image img;
        memset(&img, 0, sizeof img);
        snprintf(path, len, "%s/%06lld.png", stage, (long long)i);
        if (ddpm_image_grid(&img, xf + i * c->D, 1, c->C, c->S, c->S, 1, 0, 0) != DDPM_OK) rc = cli_fail();
        char what[64];
        snprintf(what, sizeof what, "image %lld of %lld", (long long)i, (long long)num);
        if (rc == CLI_OK) rc = app_write_png(c, path, &img, what);
        ddpm_image_free(&img);
        if (rc == CLI_OK && cli_interrupted()) {
            fprintf(stderr, "ddpm: error: interrupted; %s was not changed\n", dir);
            rc = CLI_INTERRUPTED;
        }
    }
    if (rc == CLI_OK) {
        struct stat sb;
        int had = lstat(dir, &sb) == 0;
        if (had && rename(dir, old) != 0) {
            rc = app_error("--individual %s: cannot move the earlier images aside: %s", dir, strerror(errno));
        } else if (rename(stage, dir) != 0) {
            rc = app_error("--individual %s: cannot move the new images into place: %s", dir, strerror(errno));
            if (had && rename(old, dir) != 0)
                fprintf(stderr, "ddpm: warning: the earlier images of %s are in %s\n", dir, old);
        } else if (had) {
            remove_image_dir(old);
        }
    }
    if (rc != CLI_OK) remove_image_dir(stage);
    free(dir);
    free(stage);
    free(old);
    free(path);
    return rc;
}

/* The folder that holds path (resolved) and its last name: "a/./b.png" and "a/b.png" give the same pair. */
static char *resolved_parent(const char *path, const char **name) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t k = n;
    while (k > 0 && path[k - 1] != '/') k--;
    *name = path + k;
    char *dir = malloc(k + 2);
    if (!dir) return NULL;
    if (k == 0) strcpy(dir, ".");
    else memcpy(dir, path, k), dir[k] = 0;
    char *real = realpath(dir, NULL);
    free(dir);
    return real;
}

/* Two outputs at one path would overwrite each other: refused before sampling. */
static int same_path(const char *p, const char *q) {
    if (!p || !q) return 0;
    if (strcmp(p, q) == 0) return 1;
    struct stat a, b;
    int ea = stat(p, &a) == 0, eb = stat(q, &b) == 0;
    if (ea && eb) return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    if (ea || eb) return 0;
    const char *np, *nq;
    char *dp = resolved_parent(p, &np), *dq = resolved_parent(q, &nq);
    size_t lp = strcspn(np, "/"), lq = strcspn(nq, "/");
    int same = dp && dq && strcmp(dp, dq) == 0 && lp == lq && strncmp(np, nq, lp) == 0;
    free(dp);
    free(dq);
    return same;
}

static int check_outputs(const cli_args *a) {
    static const char *const names[] = {"out", "save-tensor", "trajectory", "individual"};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (same_path(cli_str(a, names[i]), cli_str(a, names[j])))
                return cli_usage_error("--%s and --%s name the same path, %s; each output needs its own", names[i],
                                       names[j], cli_str(a, names[i]));
    return CLI_OK;
}

/* The settings that decide the numbers (not --batch, --threads or where the outputs go), so that runs that
   differ only in those write identical tensor files. */
static char *tensor_settings(const cli_args *a) {
    static const char *const layout[] = {"batch", "threads", "out", "cols", "scale", "individual", "save-tensor",
                                         "trajectory", "trajectory-frames", NULL};
    cli_args b = *a;
    for (int k = 0; b.cmd->options[k].name; k++)
        for (int j = 0; layout[j]; j++)
            if (strcmp(b.cmd->options[k].name, layout[j]) == 0) b.value[k] = NULL;
    return cli_settings(&b);
}

static int save_tensor(app_ctx *c, const float *xf, int64_t num, const char *path) {
    char *settings = tensor_settings(c->a);
    if (!settings) return app_error("out of memory");
    int rc = app_save_samples(c, path, xf, num, NULL, settings);
    free(settings);
    return rc;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    app_ctx c;
    app_traj traj;
    ddpm_sampler_config cfg;
    long long num = 16, batch = 0, cols = 0, scale = 0, frames = 10, repeat = -1;
    double *x = NULL;
    float *xf = NULL;
    int64_t N = 0;
    memset(&c, 0, sizeof c);
    memset(&traj, 0, sizeof traj);
    const char *out = cli_str(a, "out"), *individual = cli_str(a, "individual"), *noise = cli_str(a, "noise"),
               *tensor = cli_str(a, "save-tensor"), *trajectory = cli_str(a, "trajectory");

    int rc = app_parse_common(a, &c);
    if (rc == CLI_OK) rc = cli_int(a, "num", 1, MAX_NUM, &num);
    if (rc == CLI_OK && cli_given(a, "batch")) rc = cli_int(a, "batch", 1, 4096, &batch);
    if (rc == CLI_OK && cli_given(a, "cols")) rc = cli_int(a, "cols", 1, MAX_NUM, &cols);
    if (rc == CLI_OK && strcmp(cli_str(a, "scale"), "auto") != 0) rc = cli_int(a, "scale", 1, 64, &scale);
    if (rc == CLI_OK) rc = cli_int(a, "trajectory-frames", 1, 64, &frames);
    if (rc == CLI_OK) rc = cli_int(a, "repeat-noise-steps", -1, 1 << 24, &repeat);
    if (rc == CLI_OK && !out && !individual && !tensor && !trajectory)
        rc = cli_usage_error("'ddpm sample' needs --out FILE.png (or --individual DIR, --save-tensor FILE or "
                             "--trajectory FILE.png)");
    if (rc == CLI_OK) rc = check_outputs(a);
    if (rc == CLI_OK && individual) rc = check_individual(individual);
    if (rc != CLI_OK) return rc;

    if ((rc = app_load_model(&c)) != CLI_OK) goto done;
    if (noise) {
        if ((rc = read_noise(&c, noise, cli_given(a, "num") ? num : 0, &x, &N)) != CLI_OK) goto done;
        num = N;
    } else {
        N = num;
    }
    if ((rc = app_labels(&c, N, 1)) != CLI_OK) goto done;
    if ((rc = app_sampler_config(&c, DDPM_SAMPLER_DDIM, &cfg)) != CLI_OK) goto done;
    if (batch <= 0) batch = N < 16 ? N : 16;
    if (batch > N) batch = N;
    if (repeat >= 0) cfg.repeat_noise_steps = (int)repeat;
    app_hook(&c, &cfg);
    if (trajectory) {
        if ((rc = traj_init(&traj, (int)(N < TRAJ_MAX_IMAGES ? N : TRAJ_MAX_IMAGES), (int)frames, cfg.steps, c.D)) !=
            CLI_OK)
            goto done;
        c.traj = &traj;
    }
    if (!x && !(x = malloc(sizeof(double) * (size_t)N * (size_t)c.D))) {
        rc = app_error("out of memory for %lld images", (long long)N);
        goto done;
    }
    if ((rc = app_prepare(&c, (int)batch)) != CLI_OK) goto done;

    const char *sname = app_sampler_name(cfg.kind);
    double t0 = app_now();
    app_progress_start(&c, "sampling", (N + batch - 1) / batch * cfg.steps, N);
    if ((rc = app_sample_all(&c, &cfg, x, N, noise ? APP_XT_GIVEN : repeat >= 0 ? APP_XT_SHARED : APP_XT_SEED)) != CLI_OK)
        goto done;
    double secs = app_now() - t0;

    /* outputs, only once every image is made */
    if (!(xf = app_to_float(x, (size_t)N * (size_t)c.D))) {
        rc = app_error("out of memory");
        goto done;
    }
    char what[256];
    snprintf(what, sizeof what, "%lld samples, %s %d steps%s, seed %llu, guidance %g", (long long)N, sname, cfg.steps,
             cfg.kind == DDPM_SAMPLER_DDIM ? (cfg.eta > 0 ? " (eta > 0)" : " (eta 0)") : "",
             (unsigned long long)c.seed, c.guidance);
    if (tensor) {
        if ((rc = save_tensor(&c, xf, N, tensor)) != CLI_OK) goto done;
        printf("wrote %s: samples [%lld, %d, %d, %d]\n", tensor, (long long)N, c.C, c.S, c.S);
    }
    if (individual) {
        if ((rc = write_individual(&c, xf, N, individual)) != CLI_OK) goto done;
        printf("wrote %s/000000.png .. %06lld.png\n", individual, (long long)N - 1);
    }
    if (trajectory) {
        if ((rc = write_trajectory(&c, &traj, trajectory, what)) != CLI_OK) goto done;
        printf("wrote %s: trajectory of %d image%s, %d frames\n", trajectory, traj.nimg, traj.nimg == 1 ? "" : "s",
               traj.nframes);
    }
    if (out && (rc = write_grid(&c, xf, N, cols, scale, out, what)) != CLI_OK) goto done;
    char dur[32];
    app_duration(dur, sizeof dur, secs);
    double ips = secs > 0 ? (double)N / secs : 0.0;
    printf("%s%s%s%lld images, %s %d steps, %s (%.*f images/s)\n", out ? "wrote " : "sampled ", out ? out : "",
           out ? ": " : "", (long long)N, sname, cfg.steps, dur, ips >= 1 ? 1 : ips >= 0.1 ? 2 : 3, ips);
    fflush(stdout);
done:
    app_free(&c);
    free(traj.x);
    free(traj.x0);
    free(x);
    free(xf);
    return rc;
}

const cli_command cli_cmd_sample = {
    "sample",
    "draw images from a trained model (ddpm, ddim or dpmpp2m; class labels and guidance)",
    "[--model DIR|PRESET] [--sampler ddpm|ddim|dpmpp2m] [--steps N] [--num N] [--seed S]\n"
    "                   [--class K --guidance W] --out grid.png [--individual DIR] [--noise xT.safetensors]\n"
    "                   [--save-tensor out.safetensors] [--trajectory strip.png] [options]",
    NULL, 0, 0, options,
    "Image i starts from x_T = normal numbers of stream (init, 0, i) of the seed and draws its sampler noise\n"
    "from (sampler, step, i), so a seed gives the same images whatever --batch and --threads are. The diffusion,\n"
    "the prediction type, spacing and clipping come from the model folder's scheduler/scheduler_config.json\n"
    "(DDPMScheduler defaults for presets and fixture folders); --spacing and --clip override them.\n"
    "Nothing is written when the run fails or is interrupted (Ctrl-C: exit 130). See docs/sampling.md.\n\n"
    "examples:\n"
    "  ddpm sample --out grid.png                                   (the shipped MNIST model, DDIM 50 steps)\n"
    "  ddpm sample --model runs/mnist --sampler dpmpp2m --steps 20 --num 64 --out grid.png\n"
    "  ddpm sample --model runs/mnist-class --class 3 --guidance 3 --out threes.png\n"
    "  ddpm sample --sampler ddpm --num 4 --trajectory traj.png --repeat-noise-steps 0 --out grid.png\n",
    run,
};
