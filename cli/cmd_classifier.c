/* cmd_classifier.c — `ddpm train-classifier`: trains the evaluation classifier of `ddpm eval` (FID on its features,
   class predictions of generated images) on MNIST or Fashion-MNIST, reports its test accuracy and saves it with
   that provenance. Ctrl-C stops cleanly without writing anything. */
#include <ddpm.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_common.h"
#include "options.h"

static const cli_option options[] = {
    {"data", "mnist|fashion-mnist", NULL, "the data set (required)"},
    {"data-dir", "DIR", NULL, "folder of its IDX files (default: $DDPM_DATA/<data>, else ~/.cache/ddpm/<data>)"},
    {"out", "FILE.safetensors", NULL, "the classifier file to write (required)"},
    {"epochs", "N", cli_defaults.clf_epochs, "passes over the training set"},
    {"batch", "B", cli_defaults.clf_batch, "images per step"},
    {"lr", "LR", cli_defaults.clf_lr, "peak learning rate (AdamW, weight decay 0; warm-up, then cosine decay to 0)"},
    {"seed", "S", cli_defaults.seed, "seed of the weight initialisation and the data order"},
    APP_OPT_THREADS,
    {NULL, NULL, NULL, NULL},
};

typedef struct {
    cli_progress line;
    int epochs, batch, next_tenth;
    double t0;
} progress;

/* The training callback: the progress line (a plain one at every tenth of the run); Ctrl-C stops the training. */
static ddpm_status on_step(void *user, int epoch, int64_t step, int64_t steps, double loss, double train_acc) {
    progress *p = user;
    if (cli_interrupted()) return DDPM_ERR_INTERRUPTED;
    const double el = cli_now() - p->t0, ips = el > 0 ? (double)step * p->batch / el : 0;
    char els[32], eta[32], line[256];
    cli_duration(els, sizeof els, el);
    cli_duration(eta, sizeof eta, step > 0 ? el / (double)step * (double)(steps - step) : -1);
    const int due = step * 10 >= (int64_t)p->next_tenth * steps;
    while ((int64_t)p->next_tenth * steps <= step * 10) p->next_tenth++;
    snprintf(line, sizeof line, "epoch %d/%d  step %lld/%lld (%d%%)  loss %.4f  train accuracy %.2f%%  %.0f img/s  "
             "elapsed %s  ETA %s", epoch + 1, p->epochs, (long long)step, (long long)steps, (int)(100 * step / steps),
             loss, 100 * train_acc, ips, els, eta);
    cli_progress_show(&p->line, line, due, step >= steps);
    return DDPM_OK;
}

/* --out: a new file in an existing folder, or an existing regular file (replaced atomically). */
static int check_out(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode))
            return cli_usage_error("--out %s: exists and is not a regular file", path);
        return CLI_OK;
    }
    if (errno != ENOENT) return cli_usage_error("--out %s: %s", path, strerror(errno));
    const char *slash = strrchr(path, '/');
    if (!slash) return CLI_OK;
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 2);
    if (!dir) return cli_usage_error("out of memory");
    if (n == 0) n = 1;   /* "/file" */
    memcpy(dir, path, n);
    dir[n] = 0;
    int ok = stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    int rc = ok ? CLI_OK : cli_usage_error("--out %s: the folder %s does not exist", path, dir);
    free(dir);
    return rc;
}

static int run(const cli_command *cmd, const cli_args *a) {
    (void)cmd;
    long long epochs, batch, threads;
    double lr;
    uint64_t seed;
    int rc = cli_require(a, "data");
    if (rc == CLI_OK) rc = cli_require(a, "out");
    if (rc == CLI_OK) rc = cli_int(a, "epochs", 1, 100000, &epochs);
    if (rc == CLI_OK) rc = cli_int(a, "batch", 1, 65536, &batch);
    if (rc == CLI_OK) rc = cli_double(a, "lr", 0, 10, 1, &lr);
    if (rc == CLI_OK) rc = cli_u64(a, "seed", &seed);
    if (rc == CLI_OK) rc = cli_threads(a, "threads", 0, &threads);
    const char *kind = cli_str(a, "data");
    static const char *const kinds[] = {"mnist", "fashion-mnist", NULL};
    char label[300];
    snprintf(label, sizeof label, "--data %.200s", kind ? kind : "");
    if (rc == CLI_OK) rc = cli_choice(label, kind, kinds, "data set", NULL);
    if (rc == CLI_OK) rc = check_out(cli_str(a, "out"));
    if (rc != CLI_OK) return rc;
    ddpm_set_threads((int)threads);

    ddpm_dataset tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    ddpm_classifier *c = NULL;
    if (ddpm_dataset_load(kind, cli_str(a, "data-dir"), 1, &tr) != DDPM_OK ||
        ddpm_dataset_load(kind, cli_str(a, "data-dir"), 0, &te) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    if (tr.height != tr.width || tr.height % 4 != 0) {
        rc = cli_error(CLI_FAIL, "%s: %dx%d images; the classifier needs square images with a side that is a multiple of 4",
                       kind, tr.width, tr.height);
        goto done;
    }
    if (ddpm_classifier_create(tr.channels, tr.height, tr.num_classes, seed, &c) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    ddpm_classifier_info info;
    ddpm_classifier_get_info(c, &info);
    ddpm_classifier_train_config cfg;
    ddpm_classifier_train_config_default(&cfg);
    cfg.epochs = (int)epochs;
    cfg.batch = (int)batch;
    cfg.lr = lr;
    cfg.seed = seed;
    cfg.report_every = 10;   /* also how often Ctrl-C is seen */
    const int B = (int)(tr.count < batch ? tr.count : batch);
    printf("training the classifier on %s: %lld images %dx%d, %d classes, %lld parameters; %lld epochs of %lld steps "
           "(batch %d), lr %g, %d thread%s\n", kind, (long long)tr.count, tr.width, tr.height, tr.num_classes,
           (long long)info.num_params, epochs, (long long)(tr.count / B), B, lr, ddpm_get_threads(),
           ddpm_get_threads() == 1 ? "" : "s");
    fflush(stdout);
    progress p = {.epochs = (int)epochs, .batch = B, .next_tenth = 1, .t0 = cli_now()};
    cli_progress_init(&p.line);
    cfg.on_step = on_step;
    cfg.user = &p;
    ddpm_status st = ddpm_classifier_train(c, &tr, &cfg);
    cli_progress_break(&p.line);
    if (st != DDPM_OK || cli_interrupted()) {
        rc = cli_interrupted() ? cli_error(cli_stop_status(), "interrupted; nothing written") : cli_fail();
        goto done;
    }
    const double train_s = cli_now() - p.t0;
    double acc = 0;
    if (ddpm_classifier_accuracy(c, &te, &acc) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    char dur[32];
    cli_duration(dur, sizeof dur, train_s);
    printf("trained in %s; test accuracy %.2f%% (%lld images)\n", dur, 100 * acc, (long long)te.count);
    if (cli_interrupted()) {
        rc = cli_error(cli_stop_status(), "interrupted; nothing written");
        goto done;
    }
    ddpm_classifier_set_provenance(c, kind, acc);
    if (ddpm_classifier_save(c, cli_str(a, "out")) != DDPM_OK) {
        rc = cli_fail();
        goto done;
    }
    printf("wrote %s\n", cli_str(a, "out"));
    rc = CLI_OK;
done:
    ddpm_classifier_free(c);
    ddpm_dataset_free(&tr);
    ddpm_dataset_free(&te);
    return rc;
}

const cli_command cli_cmd_train_classifier = {
    "train-classifier",
    "train the evaluation classifier of ddpm eval (FID features, class predictions)",
    "--data mnist|fashion-mnist [--data-dir DIR] --out FILE.safetensors [--epochs N] [--batch B] [--lr LR] "
    "[--seed S] [--threads N]",
    NULL, 0, 0, options,
    "The classifier: conv 3x3 (32) ReLU, max-pool, conv 3x3 (64) ReLU, max-pool, linear 128 ReLU (the features),\n"
    "linear K. It trains on the training set, is scored on the test set, and is saved (safetensors, PyTorch\n"
    "layouts) with metadata ddpm_classifier: channels, size, classes, dataset, test accuracy, training settings.\n"
    "Training is deterministic for a given seed and thread count.\n\n"
    "examples:\n"
    "  ddpm train-classifier --data mnist --out models/eval/mnist-classifier.safetensors\n"
    "  ddpm train-classifier --data fashion-mnist --epochs 6 --out fm.safetensors   (after ddpm get-data fashion-mnist)\n",
    run,
};
