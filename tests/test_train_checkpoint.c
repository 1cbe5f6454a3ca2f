/* test_train_checkpoint.c — checkpoints on disk: training_state.json round trip and refusals, the newest K
   kept, leftovers of interrupted writes ignored and removed, torn folders and foreign models or data refused,
   kill -9 at random moments always leaving a loadable checkpoint, the EMA sample model, saves retried while
   they fail and what a folder holds for a new run. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "train/train.h"

static ddpm_dataset make_data(int count, int K) {
    ddpm_dataset d;
    memset(&d, 0, sizeof d);
    d.count = count;
    d.channels = 3;
    d.height = d.width = 8;
    d.num_classes = K;
    size_t n = (size_t)count * 192;
    d.pixels = malloc(n);
    for (size_t i = 0; i < n; i++) d.pixels[i] = (uint8_t)((i * 29u) & 255u);
    if (K > 0) {
        d.labels = malloc((size_t)count * sizeof(int32_t));
        for (int i = 0; i < count; i++) d.labels[i] = i % K;
    }
    return d;
}

static void free_data(ddpm_dataset *d) {
    free(d->pixels);
    free(d->labels);
}

static ddpm_model *tiny(void) {
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_load("tiny", 1, &m));
    return m;
}

static ddpm_train_config small_config(void) {
    ddpm_train_config c;
    ddpm_train_config_default(&c);
    c.batch = 2;
    c.steps = 7;
    c.warmup_steps = 2;
    c.checkpoint_every = 2;
    c.keep_checkpoints = 2;
    return c;
}

static int exists(const char *dir, const char *rel) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)) n++;
    if (d) closedir(d);
    return n;
}

/* training_state.json: what is written parses back to the same text; damaged files are refused by name. */
static void test_state_json(void) {
    dd_train_state s, r;
    memset(&s, 0, sizeof s);
    ddpm_train_config c = small_config();
    c.seed = 18446744073709551615ull;
    c.schedule.name = "file:/tmp/odd \"name\"\n.txt";
    c.lr = 0.1;   /* not exactly representable: must round-trip through %.17g */
    CHECK_OK(dd_train_state_set_config(&s, &c));
    s.step = 5;
    s.images_seen = 10;
    s.data_count = 3;
    s.epoch = 3;
    s.position = 1;
    s.ema_steps = s.adamw_steps = 5;
    s.data_channels = 3;
    s.data_height = s.data_width = 8;
    s.num_params = 1234;
    s.crc_params = 0xdeadbeefu;
    char *json = NULL, *again = NULL;
    CHECK_OK(dd_train_state_to_json(&s, &json));
    CHECK_OK(dd_train_state_parse(json, strlen(json), "state", &r));
    CHECK(r.c.seed == c.seed && r.c.lr == 0.1 && strcmp(r.c.schedule.name, c.schedule.name) == 0);
    CHECK(r.crc_params == 0xdeadbeefu && r.step == 5 && r.position == 1);
    CHECK_OK(dd_train_state_to_json(&r, &again));
    CHECK(json && again && strcmp(json, again) == 0);
    static const struct {
        const char *from, *to, *says;
    } bad[] = {
        {"\"step\": 5", "\"step\": 6", "images_seen"},
        {"\"step\": 5", "\"step\": 5.5", "integer"},
        {"\"step\": 5", "\"stepp\": 5", "unknown key"},
        {"\"batch\": 2", "\"batch\": 0", "batch"},
        {"\"lr\": 0.1,", "\"lr\": -1,", "lr"},
        {"\"objective\": \"eps\"", "\"objective\": \"noise\"", "objective"},
        {"\"version\": 1", "\"version\": 2", "version"},
        {"\"position\": 1", "\"position\": 2", "cursor"},
        {"\"seed\": \"18446744073709551615\"", "\"seed\": \"18446744073709551616\"", "seed"},
        {"\"hflip\": false", "\"hflip\": 0", "hflip"},
        {"\"use_ema\": true,", "", "use_ema"},
        {"\"epoch\": 3,", "\"epoch\": 3, \"epoch\": 3,", "twice"},
    };
    for (size_t i = 0; json && i < sizeof bad / sizeof bad[0]; i++) {
        const char *at = strstr(json, bad[i].from);
        CHECK_MSG(at != NULL, "case %zu: '%s' not in the file", i, bad[i].from);
        if (!at) continue;
        size_t n = strlen(json) + 64;
        char *text = malloc(n);
        snprintf(text, n, "%.*s%s%s", (int)(at - json), json, bad[i].to, at + strlen(bad[i].from));
        CHECK_FAIL(dd_train_state_parse(text, strlen(text), "state", &r), DDPM_ERR_FORMAT);
        CHECK_MSG(strstr(ddpm_last_error(), bad[i].says) != NULL, "case %zu: %s", i, ddpm_last_error());
        free(text);
    }
    CHECK_FAIL(dd_train_state_parse("[1]", 3, "state", &r), DDPM_ERR_FORMAT);
    CHECK_FAIL(dd_train_state_parse("{", 1, "state", &r), DDPM_ERR_FORMAT);
    ddpm_free(json);
    ddpm_free(again);
}

static ddpm_status on_step(void *user, ddpm_trainer *t, const ddpm_train_stats *s) {
    (void)t;
    int *calls = user;
    ++*calls;
    return s->step == 5 ? DDPM_ERR_INTERRUPTED : DDPM_OK;
}

/* A run: checkpoints every 2 steps, the newest 2 kept; a stop from the callback writes one at once. */
static void test_run_layout(void) {
    ddpm_dataset data = make_data(5, 0);
    const char *dir = dd_test_tmpdir("train_layout");
    char run[1100], ck[1100];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(ck, sizeof ck, "%s/run/checkpoints", dir);
    ddpm_train_config c = small_config();
    ddpm_trainer *t = NULL;
    int calls = 0;
    CHECK_OK(ddpm_trainer_create(&c, tiny(), &data, &t));
    if (!t) return;
    CHECK_FAIL(ddpm_trainer_run(t, run, on_step, &calls), DDPM_ERR_INTERRUPTED);
    CHECK(calls == 5 && ddpm_trainer_steps_done(t) == 5);
    CHECK(exists(ck, "checkpoint-4") && exists(ck, "checkpoint-5") && !exists(ck, "checkpoint-2"));
    CHECK(count_entries(ck) == 2);
    CHECK(!exists(run, "training_state.json"));   /* only the finished run writes the top folder */
    /* a leftover of a checkpoint write killed half way is ignored, then removed */
    char junk[1200];
    snprintf(junk, sizeof junk, "%s/.tmp-checkpoint-6-999999", ck);
    CHECK(mkdir(junk, 0755) == 0);
    snprintf(junk, sizeof junk, "%s/.tmp-checkpoint-6-999999/training_state.json", ck);
    dd_write_bytes(junk, "{\"step\": 6", 10);
    char *found = NULL;
    CHECK_OK(ddpm_train_find_checkpoint(run, &found));
    CHECK(found && strstr(found, "checkpoint-5") != NULL);
    ddpm_free(found);
    CHECK_OK(ddpm_trainer_run(t, run, NULL, NULL));
    CHECK(ddpm_trainer_steps_done(t) == 7);
    CHECK(exists(ck, "checkpoint-6") && exists(ck, "checkpoint-7") && count_entries(ck) == 2);
    CHECK_OK(ddpm_trainer_checkpoint(t, run, NULL));   /* the same step again replaces it in one rename */
    CHECK(exists(ck, "checkpoint-7/training_state.json") && count_entries(ck) == 2);
    CHECK(exists(run, "training_state.json") && exists(run, "training_state.safetensors"));
    CHECK(exists(run, "model_index.json") && exists(run, "unet/config.json") &&
          exists(run, "unet/diffusion_pytorch_model.safetensors") && exists(run, "scheduler/scheduler_config.json"));
    /* the EMA sample model */
    ddpm_model *sm = NULL;
    CHECK_OK(ddpm_trainer_sample_model(t, 2, &sm));
    if (sm) {
        ddpm_model_info mi;
        ddpm_model_get_info(sm, &mi);
        CHECK(memcmp(ddpm_model_params(sm), ddpm_trainer_ema(t), (size_t)mi.num_params * sizeof(float)) == 0);
        float x[2 * 192], out[2 * 192], ts[2] = {10, 500};
        for (int i = 0; i < 2 * 192; i++) x[i] = (float)((i % 17) - 8) / 8.0f;
        CHECK_OK(ddpm_model_forward(sm, out, x, ts, NULL, 2));
    }
    ddpm_trainer_free(t);

    /* resume refusals: another model, other data, too few steps */
    ddpm_train_resume_options o;
    ddpm_train_resume_options_default(&o);
    ddpm_model *other = NULL;
    CHECK_OK(ddpm_model_load(dd_test_data("unet_tiny_class"), 0, &other));
    CHECK_FAIL(ddpm_trainer_resume(run, other, &data, &o, &t), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), "num_class_embeds") != NULL, "%s", ddpm_last_error());
    CHECK_OK(ddpm_trainer_resume(run, tiny(), &data, &o, &t));   /* the same model is accepted */
    ddpm_trainer_free(t);
    ddpm_dataset more = make_data(6, 0);
    CHECK_FAIL(ddpm_trainer_resume(run, NULL, &more, &o, &t), DDPM_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ddpm_last_error(), "6 images") != NULL, "%s", ddpm_last_error());
    o.steps = 3;
    CHECK_FAIL(ddpm_trainer_resume(run, NULL, &data, &o, &t), DDPM_ERR_INVALID_ARG);
    o.steps = 0;
    /* a torn save (state of another step beside the JSON) is refused with the reason */
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/checkpoint-6/training_state.safetensors", ck);
    snprintf(b, sizeof b, "%s/checkpoint-7/training_state.safetensors", ck);
    CHECK(rename(a, b) == 0);
    snprintf(a, sizeof a, "%s/checkpoint-7", ck);
    CHECK_FAIL(ddpm_trainer_resume(a, NULL, &data, &o, &t), DDPM_ERR_FORMAT);
    CHECK_MSG(strstr(ddpm_last_error(), "interrupted save") != NULL, "%s", ddpm_last_error());
    snprintf(b, sizeof b, "%s/checkpoint-6", ck);   /* EMA weights of another step */
    snprintf(a, sizeof a, "%s/checkpoint-6/unet/diffusion_pytorch_model.safetensors", ck);
    snprintf(junk, sizeof junk, "%s/unet/diffusion_pytorch_model.safetensors", run);
    uint8_t *bytes = NULL;
    FILE *f = fopen(junk, "rb");
    long len = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        bytes = malloc((size_t)len);
        CHECK(fread(bytes, 1, (size_t)len, f) == (size_t)len);
        dd_write_bytes(a, bytes, (size_t)len);
    }
    if (f) fclose(f);
    free(bytes);
    snprintf(a, sizeof a, "%s/checkpoint-7/training_state.safetensors", ck);   /* put the state back */
    snprintf(junk, sizeof junk, "%s/checkpoint-6/training_state.safetensors", ck);
    CHECK(rename(a, junk) == 0);
    CHECK_FAIL(ddpm_trainer_resume(b, NULL, &data, &o, &t), DDPM_ERR_FORMAT);
    CHECK_MSG(strstr(ddpm_last_error(), "EMA") != NULL, "%s", ddpm_last_error());
    free_data(&more);
    free_data(&data);
    dd_test_remove_dir(dir);
}

static int never(void *user) {
    (void)user;
    return 0;
}

/* Children train with a checkpoint every step (resuming from what the previous one left) and are killed with
   SIGKILL at a random moment once they are running; each must find a loadable checkpoint. Runs before the
   parent starts any thread (it only polls the folder). */
static void test_kill9(void) {
    const char *dir = dd_test_tmpdir("train_kill9");
    char run[1100], ready[1100];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(ready, sizeof ready, "%s/ready", dir);
    srand((unsigned)time(NULL));
    const int rounds = 6;
    for (int r = 0; r < rounds; r++) {
        unlink(ready);
        pid_t pid = fork();
        if (pid == 0) {
            ddpm_dataset data = make_data(5, 0);
            ddpm_train_config c = small_config();
            c.steps = 1000000;
            c.checkpoint_every = 1;
            c.keep_checkpoints = 2;
            ddpm_trainer *t = NULL;
            char *found = NULL;
            ddpm_status st;
            if (ddpm_train_find_checkpoint(run, &found) == DDPM_OK) {
                ddpm_free(found);
                st = ddpm_trainer_resume(run, NULL, &data, NULL, &t);
            } else {
                c.should_stop = never;
                st = ddpm_trainer_create(&c, tiny(), &data, &t);
            }
            if (st != DDPM_OK) {
                fprintf(stderr, "round %d: %s\n", r, ddpm_last_error());
                _exit(3);
            }
            /* one step and its checkpoint before the parent may kill */
            if (ddpm_trainer_step(t, NULL) != DDPM_OK || ddpm_trainer_checkpoint(t, run, NULL) != DDPM_OK) _exit(5);
            dd_write_bytes(ready, "1", 1);
            ddpm_trainer_run(t, run, NULL, NULL);
            _exit(4);
        }
        CHECK(pid > 0);
        struct stat sb;
        for (int w = 0; w < 3000 && stat(ready, &sb) != 0; w++) {   /* up to 30 s on a loaded machine */
            struct timespec ts = {0, 10000000L};
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                CHECK_MSG(0, "round %d: the child ended early", r);
                pid = -1;
                break;
            }
            nanosleep(&ts, NULL);
        }
        if (pid < 0) continue;
        struct timespec ts = {0, (long)(rand() % 60) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "round %d: the child exited with %d", r,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    ddpm_dataset data = make_data(5, 0);
    ddpm_trainer *t = NULL;
    CHECK_OK(ddpm_trainer_resume(run, NULL, &data, NULL, &t));
    CHECK(t && ddpm_trainer_steps_done(t) >= rounds);
    ddpm_trainer_free(t);
    free_data(&data);
    dd_test_remove_dir(dir);
}

typedef struct {
    int waits, stop_in_wait;
    double last_wait;
    const char *blocker;   /* a file standing where the run folder goes; removed at the second wait */
} save_watch;
static int stop_flag;
static int stop_asked(void *user) {
    (void)user;
    return stop_flag;
}
static void on_save_wait(void *user, const char *why, double wait_s) {
    save_watch *w = user;
    CHECK(why && why[0]);
    CHECK(wait_s == (w->waits == 0 ? 1 : 2 * w->last_wait));
    w->last_wait = wait_s;
    if (++w->waits == 2 && w->blocker) CHECK(unlink(w->blocker) == 0);
    if (w->stop_in_wait) stop_flag = 1;
}

/* ddpm_trainer_save_retry: a save that cannot be written (a file where the run folder goes) gives up at once
   with no time to wait, waits 1, 2 s and succeeds once room is made, ends its wait on a stop asked during it,
   and keeps retrying for a stop asked before it; ddpm_train_folder_state on the folders it leaves. */
static void test_save_retry(void) {
    ddpm_dataset data = make_data(5, 0);
    const char *dir = dd_test_tmpdir("train_save_retry");
    char run[1100], other[1100];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    ddpm_train_folder_kind kind = DDPM_TRAIN_FOLDER_RUN;
    CHECK_OK(ddpm_train_folder_state(run, &kind));
    CHECK(kind == DDPM_TRAIN_FOLDER_NONE);
    ddpm_train_config c = small_config();
    c.should_stop = stop_asked;
    ddpm_trainer *t = NULL;
    ddpm_train_stats st;
    CHECK_OK(ddpm_trainer_create(&c, tiny(), &data, &t));
    if (!t) return;
    CHECK_OK(ddpm_trainer_step(t, &st));
    dd_write_bytes(run, "x", 1);
    save_watch w = {0, 0, 0, NULL};
    char *path = NULL;
    CHECK_FAIL(ddpm_trainer_save_retry(t, run, 0, 0, on_save_wait, &w, &path), DDPM_ERR_IO);
    CHECK(w.waits == 0 && path == NULL);
    w.blocker = run;   /* removed at the second wait: the third try succeeds */
    double t0 = (double)time(NULL);
    CHECK_OK(ddpm_trainer_save_retry(t, run, 0, 100, on_save_wait, &w, &path));
    CHECK(w.waits == 2 && (double)time(NULL) - t0 >= 2);
    CHECK(path && strstr(path, "checkpoint-1") && exists(run, "checkpoints/checkpoint-1/training_state.json"));
    ddpm_free(path);
    CHECK_OK(ddpm_train_folder_state(run, &kind));
    CHECK(kind == DDPM_TRAIN_FOLDER_RUN);
    /* a stop asked during the wait ends it; one asked before does not */
    dd_write_bytes(other, "x", 1);
    snprintf(other, sizeof other, "%s/other/run", dir);   /* below a file: never writable */
    save_watch w2 = {0, 1, 0, NULL};
    CHECK_FAIL(ddpm_trainer_save_retry(t, other, 1, 100, on_save_wait, &w2, NULL), DDPM_ERR_IO);
    CHECK(w2.waits == 1);
    save_watch w3 = {0, 0, 0, NULL};
    CHECK_FAIL(ddpm_trainer_save_retry(t, other, 1, 1.5, on_save_wait, &w3, NULL), DDPM_ERR_IO);
    CHECK(w3.waits == 1);   /* stop_flag is set: the wait of 1 s ran in full, the next (2 s) did not fit */
    stop_flag = 0;
    /* debris of a run that saved nothing, and a state that cannot be read */
    snprintf(other, sizeof other, "%s/dead/checkpoints", dir);
    CHECK_OK(ddpm_make_dirs(other));
    snprintf(other, sizeof other, "%s/dead", dir);
    CHECK_OK(ddpm_train_folder_state(other, &kind));
    CHECK(kind == DDPM_TRAIN_FOLDER_DEBRIS);
    snprintf(other, sizeof other, "%s/dead/training_state.json", dir);
    dd_write_bytes(other, "garbage", 7);
    snprintf(other, sizeof other, "%s/dead", dir);
    CHECK_OK(ddpm_train_folder_state(other, &kind));
    CHECK(kind == DDPM_TRAIN_FOLDER_BROKEN && ddpm_last_error()[0]);
    ddpm_trainer_free(t);
    free_data(&data);
    if (dd_test_failures == 0) dd_test_remove_dir(dir);
}

int main(void) {
    test_kill9();
    test_state_json();
    test_run_layout();
    test_save_retry();
    return dd_test_finish("test_train_checkpoint");
}
