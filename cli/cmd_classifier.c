/* cmd_classifier.c — `ddpm train-classifier`: trains the evaluation classifier of `ddpm eval` (FID on its features,
   class predictions of generated images) on MNIST or Fashion-MNIST, reports its test accuracy and saves it with
   that provenance. Ctrl-C stops cleanly without writing anything. */
#include <ddpm.h>
#include <stdio.h>

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
    int epochs, next_tenth;
    double t0;
} progress;

/* The training callback: the progress line (a plain one at every tenth of the run); Ctrl-C stops the training. */
static ddpm_status on_step(void *user, int epoch, int64_t step, int64_t steps, double loss, double train_acc) {
    progress *p = user;
    if (cli_interrupted()) return DDPM_ERR_INTERRUPTED;
    char eta[32], line[160];
    cli_duration(eta, sizeof eta, step > 0 ? (cli_now() - p->t0) / (double)step * (double)(steps - step) : -1);
    const int due = step * 10 >= (int64_t)p->next_tenth * steps;
    while ((int64_t)p->next_tenth * steps <= step * 10) p->next_tenth++;
    snprintf(line, sizeof line, "epoch %d/%d  step %lld/%lld  loss %.4f  accuracy %.1f%%  ETA %s", epoch + 1, p->epochs,
             (long long)step, (long long)steps, loss, 100 * train_acc, eta);
    cli_progress_show(&p->line, line, due, step >= steps);
    return DDPM_OK;
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
    if (rc == CLI_OK && ddpm_output_file_check(cli_str(a, "out")) != DDPM_OK)
        rc = cli_usage_error("--out %s", ddpm_last_error());
    if (rc != CLI_OK) return rc;
    ddpm_set_threads((int)threads);

    ddpm_dataset tr = {0}, te = {0};
    ddpm_classifier *c = NULL;
    if (ddpm_dataset_load(kind, cli_str(a, "data-dir"), 1, &tr) != DDPM_OK ||
        ddpm_dataset_load(kind, cli_str(a, "data-dir"), 0, &te) != DDPM_OK)
        rc = cli_fail();
    else if (tr.height != tr.width || tr.height % 4 != 0)
        rc = cli_error(CLI_FAIL, "%s: %dx%d images; the classifier needs square images with a side that is a multiple of 4",
                       kind, tr.width, tr.height);
    else if (ddpm_classifier_create(tr.channels, tr.height, tr.num_classes, seed, &c) != DDPM_OK)
        rc = cli_fail();
    if (rc != CLI_OK) goto done;
    ddpm_classifier_info info;
    ddpm_classifier_get_info(c, &info);
    ddpm_classifier_train_config cfg;
    ddpm_classifier_train_config_default(&cfg);
    cfg.epochs = (int)epochs, cfg.batch = (int)batch, cfg.lr = lr, cfg.seed = seed;
    cfg.report_every = 10;   /* also how often Ctrl-C is seen */
    const int B = (int)(tr.count < batch ? tr.count : batch);
    printf("training the classifier on %s: %lld images %dx%d, %d classes, %lld parameters; %lld epochs of %lld steps "
           "(batch %d), lr %g, %d thread%s\n", kind, (long long)tr.count, tr.width, tr.height, tr.num_classes,
           (long long)info.num_params, epochs, (long long)(tr.count / B), B, lr, ddpm_get_threads(),
           ddpm_get_threads() == 1 ? "" : "s");
    fflush(stdout);
    progress p = {.epochs = (int)epochs, .next_tenth = 1, .t0 = cli_now()};
    cli_progress_init(&p.line);
    cfg.on_step = on_step;
    cfg.user = &p;
    ddpm_status st = ddpm_classifier_train(c, &tr, &cfg);
    cli_progress_break(&p.line);
    double acc = 0;
    char dur[32];
    cli_duration(dur, sizeof dur, cli_now() - p.t0);
    if (st == DDPM_OK && !cli_interrupted() && (st = ddpm_classifier_accuracy(c, &te, &acc)) == DDPM_OK)
        printf("trained in %s; test accuracy %.2f%% (%lld images)\n", dur, 100 * acc, (long long)te.count);
    if (cli_interrupted()) {
        rc = cli_error(cli_stop_status(), "interrupted; nothing written");
    } else if (st != DDPM_OK) {
        rc = cli_fail();
    } else {
        ddpm_classifier_set_provenance(c, kind, acc);
        rc = ddpm_classifier_save(c, cli_str(a, "out")) == DDPM_OK ? CLI_OK : cli_fail();
        if (rc == CLI_OK) printf("wrote %s\n", cli_str(a, "out"));
    }
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
