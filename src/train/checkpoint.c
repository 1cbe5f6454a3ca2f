/* checkpoint.c — training checkpoints on disk: the pipeline folder plus training_state.{safetensors,json},
   written atomically (files: temporary name, fsync, rename; folders: written under a temporary name and
   renamed into place), the newest K kept; the training loop. */
#define _GNU_SOURCE 1   /* syscall(): renameat2 swaps two folders atomically on Linux */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <cjson/cJSON.h>

#include "core/core.h"
#include "train/train.h"

#define CKPT_PREFIX "checkpoint-"
#define CKPT_DIR "checkpoints"
#define CONFIG_MAX ((size_t)1 << 20)
#define RM_DEPTH 8

/* ------------------------------------------------------------------ file-system helpers */

static int exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* fsync a folder, so that the names inside it (renames, new files) are durable. */
static ddpm_status sync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return dd_error(DDPM_ERR_IO, "%s: cannot open the folder: %s", path, strerror(errno));
    int r = fsync(fd), e = errno;
    close(fd);
    if (r != 0 && e != EINVAL) return dd_error(DDPM_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
    return DDPM_OK;
}

/* The folder that holds `path` ("." for a bare name). */
static char *parent_of(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    while (n > 0 && path[n - 1] != '/') n--;
    while (n > 1 && path[n - 1] == '/') n--;
    if (n == 0) return dd_strdup(".");
    char *p = dd_alloc(n + 1);
    if (!p) return NULL;
    memcpy(p, path, n);
    p[n] = 0;
    return p;
}

/* rm -r without following links, a bounded depth. */
static ddpm_status rm_tree(const char *path, int depth) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? DDPM_OK : dd_error(DDPM_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        if (unlink(path) != 0) return dd_error(DDPM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return DDPM_OK;
    }
    if (depth > RM_DEPTH) return dd_error(DDPM_ERR_IO, "%s: folder nested too deep to remove", path);
    DIR *d = opendir(path);
    if (!d) return dd_error(DDPM_ERR_IO, "%s: cannot open the folder: %s", path, strerror(errno));
    ddpm_status st = DDPM_OK;
    struct dirent *e;
    while (st == DDPM_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *child = dd_path_join(path, e->d_name);
        st = child ? rm_tree(child, depth + 1) : DDPM_ERR_NOMEM;
        dd_free(child);
    }
    closedir(d);
    if (st == DDPM_OK && rmdir(path) != 0) st = dd_error(DDPM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return st;
}

/* "checkpoint-<digits>" -> step, else -1. */
static int64_t checkpoint_step(const char *name) {
    size_t n = strlen(CKPT_PREFIX);
    if (strncmp(name, CKPT_PREFIX, n) != 0 || !name[n] || strlen(name + n) > 15) return -1;
    int64_t v = 0;
    for (const char *p = name + n; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* zlib crc32 of n floats (their bytes as stored: little-endian on the supported hosts). */
uint32_t dd_crc_floats(const float *x, int64_t n) { return dd_crc32(0, x, (uint64_t)n * sizeof(float)); }

/* ------------------------------------------------------------------ writing */

/* Every file of a checkpoint into dir (created if needed), training_state.json last. */
static ddpm_status write_contents(ddpm_trainer *t, const char *dir) {
    ddpm_status st = dd_make_dirs(dir);
    if (st != DDPM_OK) return st;
    const ddpm_train_config *c = &t->s.c;
    float *params = ddpm_model_params(t->model);
    const float *weights = ddpm_trainer_ema(t);
    if ((st = ddpm_model_save(c->use_ema ? t->shadow : t->model, dir, &c->schedule, c->objective)) != DDPM_OK)
        return st;
    ddpm_st_writer *w = NULL;
    char *path = NULL, *json = NULL, num[32];
    const int64_t shape_p[1] = {t->P}, shape_t[1] = {c->schedule.T};
    if ((st = ddpm_st_writer_create(&w)) != DDPM_OK) return st;
    snprintf(num, sizeof num, "%" PRId64, t->s.step);
    if ((st = ddpm_st_writer_add(w, "params", DDPM_DTYPE_F32, 1, shape_p, params)) != DDPM_OK ||
        (st = ddpm_st_writer_add(w, "adamw_m", DDPM_DTYPE_F32, 1, shape_p, ddpm_adamw_m(t->opt))) != DDPM_OK ||
        (st = ddpm_st_writer_add(w, "adamw_v", DDPM_DTYPE_F32, 1, shape_p, ddpm_adamw_v(t->opt))) != DDPM_OK ||
        (st = ddpm_st_writer_add(w, "betas", DDPM_DTYPE_F64, 1, shape_t, t->betas)) != DDPM_OK ||
        (st = ddpm_st_writer_set_metadata(w, "format", DD_TRAIN_FORMAT)) != DDPM_OK ||
        (st = ddpm_st_writer_set_metadata(w, "step", num)) != DDPM_OK)
        goto done;
    if (!(path = dd_path_join(dir, DD_TRAIN_STATE_ST))) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    if ((st = ddpm_st_writer_save(w, path)) != DDPM_OK) goto done;
    dd_free(path);
    dd_train_state s;
    dd_train_state_copy(&s, &t->s);
    s.crc_params = dd_crc_floats(params, t->P);
    s.crc_ema = dd_crc_floats(weights, t->P);
    if ((st = dd_train_state_to_json(&s, &json)) != DDPM_OK) goto done;
    if (!(path = dd_path_join(dir, DD_TRAIN_STATE_JSON))) {
        st = DDPM_ERR_NOMEM;
        goto done;
    }
    st = dd_write_file_atomic(path, json, strlen(json));
done:
    ddpm_st_writer_free(w);
    dd_free(path);
    dd_free(json);
    return st;
}

/* fsync the folders of a checkpoint (the files were synced as they were written). */
static ddpm_status sync_contents(const char *dir) {
    static const char *const subs[] = {"unet", "scheduler"};
    for (int i = 0; i < 2; i++) {
        char *p = dd_path_join(dir, subs[i]);
        ddpm_status st = p ? sync_dir(p) : DDPM_ERR_NOMEM;
        dd_free(p);
        if (st != DDPM_OK) return st;
    }
    return sync_dir(dir);
}

/* Exchanges two folders in one step (Linux renameat2 RENAME_EXCHANGE); -1 where that is not available. */
static int swap_dirs(const char *a, const char *b) {
#if defined(__linux__) && defined(SYS_renameat2)
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
#else
    (void)a;
    (void)b;
    return -1;
#endif
}

/* Writes a complete checkpoint at `tmp`, then renames it to `final`. An existing `final` is exchanged with
   the new folder atomically where the system can, otherwise moved aside to `old` first. */
static ddpm_status write_renamed(ddpm_trainer *t, const char *tmp, const char *final, const char *old) {
    ddpm_status st = rm_tree(tmp, 0);
    if (st == DDPM_OK) st = write_contents(t, tmp);
    if (st == DDPM_OK) st = sync_contents(tmp);
    if (st == DDPM_OK && exists(final) && swap_dirs(tmp, final) == 0) {
        char *parent = parent_of(final);
        st = parent ? sync_dir(parent) : DDPM_ERR_NOMEM;
        dd_free(parent);
        return st == DDPM_OK ? rm_tree(tmp, 0) : st;   /* tmp now holds the old folder */
    }
    if (st == DDPM_OK && exists(final)) {
        if ((st = rm_tree(old, 0)) == DDPM_OK && rename(final, old) != 0)
            st = dd_error(DDPM_ERR_IO, "%s: cannot move the old checkpoint aside: %s", final, strerror(errno));
    }
    if (st == DDPM_OK && rename(tmp, final) != 0)
        st = dd_error(DDPM_ERR_IO, "%s: cannot rename the new checkpoint into place: %s", final, strerror(errno));
    if (st != DDPM_OK) {
        ddpm_status keep = st;
        char *msg = dd_strdup(ddpm_last_error());
        rm_tree(tmp, 0);
        if (msg) dd_error(keep, "%s", msg);
        dd_free(msg);
        return keep;
    }
    char *parent = parent_of(final);
    st = parent ? sync_dir(parent) : DDPM_ERR_NOMEM;
    dd_free(parent);
    if (st == DDPM_OK) st = rm_tree(old, 0);
    return st;
}

ddpm_status ddpm_trainer_save(ddpm_trainer *t, const char *dir) {
    if (!t || !dir || !dir[0]) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_save: NULL trainer or folder");
    if (dd_is_dir(dir)) {   /* in place, file by file; training_state.json (written last) names the step */
        ddpm_status st = write_contents(t, dir);
        return st == DDPM_OK ? sync_contents(dir) : st;
    }
    size_t n = strlen(dir) + 64;
    char *tmp = dd_alloc(n), *old = dd_alloc(n), *parent = parent_of(dir);
    ddpm_status st = DDPM_ERR_NOMEM;
    if (tmp && old && parent) {
        snprintf(tmp, n, "%s.tmp-%ld", dir, (long)getpid());
        snprintf(old, n, "%s.old-%ld", dir, (long)getpid());
        st = dd_make_dirs(parent);
        if (st == DDPM_OK) st = write_renamed(t, tmp, dir, old);
    }
    dd_free(tmp);
    dd_free(old);
    dd_free(parent);
    return st;
}

typedef struct {
    int64_t step;
    char *name;
} ckpt_entry;

static int cmp_desc(const void *a, const void *b) {
    int64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Removes all but the newest `keep` checkpoint-<step> folders (keep 0: none removed) and leftovers of
   interrupted writes (.tmp-checkpoint-*, .old-checkpoint-*). */
static ddpm_status prune(const char *cdir, int keep) {
    DIR *d = opendir(cdir);
    if (!d) return dd_error(DDPM_ERR_IO, "%s: cannot open the folder: %s", cdir, strerror(errno));
    ckpt_entry *list = NULL;
    size_t n = 0, cap = 0;
    ddpm_status st = DDPM_OK;
    struct dirent *e;
    while (st == DDPM_OK && (e = readdir(d)) != NULL) {
        int64_t step = checkpoint_step(e->d_name);
        int stale = strncmp(e->d_name, ".tmp-" CKPT_PREFIX, 16) == 0 || strncmp(e->d_name, ".old-" CKPT_PREFIX, 16) == 0;
        if (stale) {
            char *p = dd_path_join(cdir, e->d_name);
            st = p ? rm_tree(p, 0) : DDPM_ERR_NOMEM;
            dd_free(p);
            continue;
        }
        if (step < 0) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ckpt_entry *nl = dd_realloc(list, nc * sizeof *nl);
            if (!nl) {
                st = DDPM_ERR_NOMEM;
                break;
            }
            list = nl;
            cap = nc;
        }
        list[n].step = step;
        if (!(list[n].name = dd_strdup(e->d_name))) st = DDPM_ERR_NOMEM;
        else n++;
    }
    closedir(d);
    if (n > 1) qsort(list, n, sizeof *list, cmp_desc);
    for (size_t i = 0; i < n; i++) {
        if (st == DDPM_OK && keep > 0 && i >= (size_t)keep) {
            /* Renamed to .old-<name> first (atomic), then removed: a kill during the removal leaves a stale
               .old- folder, cleaned up next time, never a half-deleted checkpoint under its real name. */
            char *p = dd_path_join(cdir, list[i].name);
            size_t olen = strlen(list[i].name) + 6;
            char *oname = dd_alloc(olen);
            char *op = NULL;
            if (oname) {
                snprintf(oname, olen, ".old-%s", list[i].name);
                op = dd_path_join(cdir, oname);
            }
            if (!p || !op) st = DDPM_ERR_NOMEM;
            else if (rename(p, op) != 0) st = dd_error(DDPM_ERR_IO, "%s: cannot rename for removal: %s", p, strerror(errno));
            else st = rm_tree(op, 0);
            dd_free(oname);
            dd_free(op);
            dd_free(p);
        }
        dd_free(list[i].name);
    }
    dd_free(list);
    return st;
}

ddpm_status ddpm_trainer_checkpoint(ddpm_trainer *t, const char *run_dir, char **path) {
    if (path) *path = NULL;
    if (!t || !run_dir || !run_dir[0])
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_checkpoint: NULL trainer or folder");
    char *cdir = dd_path_join(run_dir, CKPT_DIR);
    char name[64], tname[96], oname[96];
    snprintf(name, sizeof name, CKPT_PREFIX "%" PRId64, t->s.step);
    snprintf(tname, sizeof tname, ".tmp-%s-%ld", name, (long)getpid());
    snprintf(oname, sizeof oname, ".old-%s-%ld", name, (long)getpid());
    char *final = cdir ? dd_path_join(cdir, name) : NULL, *tmp = cdir ? dd_path_join(cdir, tname) : NULL;
    char *old = cdir ? dd_path_join(cdir, oname) : NULL;
    ddpm_status st = final && tmp && old ? dd_make_dirs(cdir) : DDPM_ERR_NOMEM;
    if (st == DDPM_OK) st = write_renamed(t, tmp, final, old);
    if (st == DDPM_OK) {
        t->last_checkpoint = t->s.step;
        st = prune(cdir, t->s.c.keep_checkpoints);
    }
    if (st == DDPM_OK && path) {
        *path = final;
        final = NULL;
    }
    dd_free(cdir);
    dd_free(final);
    dd_free(tmp);
    dd_free(old);
    return st;
}

/* ------------------------------------------------------------------ the loop */

static ddpm_status stop_with_checkpoint(ddpm_trainer *t, const char *run_dir, ddpm_status why) {
    char *msg = dd_strdup(ddpm_last_error()), *where = NULL;
    ddpm_status st = DDPM_OK;
    if (run_dir && t->last_checkpoint != t->s.step) st = ddpm_trainer_checkpoint(t, run_dir, &where);
    if (st == DDPM_OK) {
        if (where) st = dd_error(why, "%s; checkpoint of step %lld saved in %s", msg ? msg : "stopped",
                                 (long long)t->s.step, where);
        else st = dd_error(why, "%s", msg ? msg : "stopped");
    }
    dd_free(msg);
    dd_free(where);
    return st;
}

ddpm_status ddpm_trainer_run(ddpm_trainer *t, const char *run_dir, ddpm_train_step_fn on_step, void *user) {
    if (!t) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_run: trainer is NULL");
    while (t->s.step < t->s.c.steps) {
        ddpm_train_stats stats;
        ddpm_status st = ddpm_trainer_step(t, &stats);
        if (st == DDPM_ERR_INTERRUPTED) return stop_with_checkpoint(t, run_dir, st);
        if (st != DDPM_OK) return st;
        if (on_step && (st = on_step(user, t, &stats)) != DDPM_OK) {
            if (st == DDPM_ERR_INTERRUPTED) return stop_with_checkpoint(t, run_dir, st);
            return st;
        }
        const int64_t every = t->s.c.checkpoint_every;
        if (run_dir && every > 0 && t->s.step % every == 0 && t->s.step < t->s.c.steps &&
            (st = ddpm_trainer_checkpoint(t, run_dir, NULL)) != DDPM_OK)
            return st;
    }
    if (!run_dir) return DDPM_OK;
    ddpm_status st = ddpm_trainer_save(t, run_dir);
    if (st == DDPM_OK && t->s.c.checkpoint_every > 0 && t->last_checkpoint != t->s.step)
        st = ddpm_trainer_checkpoint(t, run_dir, NULL);
    return st;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

ddpm_status ddpm_trainer_save_retry(ddpm_trainer *t, const char *run_dir, int final, double retry_s,
                                    ddpm_train_save_wait_fn on_wait, void *user, char **path) {
    if (!t || !run_dir) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_trainer_save_retry: NULL trainer or folder");
    if (path) *path = NULL;
    const int stopping = t->should_stop && t->should_stop(t->stop_user);   /* a stop asked before: retry anyway */
    const double t0 = mono_now();
    for (double wait = 1;; wait = wait * 2 > 60 ? 60 : wait * 2) {
        ddpm_status st = final ? ddpm_trainer_save(t, run_dir) : ddpm_trainer_checkpoint(t, run_dir, path);
        const int stop = !stopping && t->should_stop && t->should_stop(t->stop_user);
        if (st != DDPM_ERR_IO || stop || !(mono_now() - t0 + wait <= retry_s)) return st;   /* NaN: no retry */
        if (on_wait) on_wait(user, ddpm_last_error(), wait);
        for (double end = mono_now() + wait; mono_now() < end;) {   /* a stop asked during the wait ends it */
            if (!stopping && t->should_stop && t->should_stop(t->stop_user)) return st;
            nanosleep(&(struct timespec){0, 100000000}, NULL);
        }
    }
}
