/* paths.c — whether two output paths name one file, so that a run can refuse to write two outputs over each
   other before any work. */
#define _XOPEN_SOURCE 700   /* realpath */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

/* The folder that holds path (resolved; NULL when it does not exist) and its last name: "a/./b.png" and
   "a/b.png" give the same pair. */
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

int ddpm_paths_same(const char *p, const char *q) {
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
