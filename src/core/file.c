/* file.c — whole-file reads with a size bound, atomic writes (temp file, fsync, rename), the check of an output
   path before the work, gunzip. */
#define _XOPEN_SOURCE 700   /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core.h"

char *dd_path_join(const char *dir, const char *name) {
    size_t la = strlen(dir), lb = strlen(name);
    char *p = dd_alloc(la + lb + 2);
    if (!p) return NULL;
    memcpy(p, dir, la);
    size_t n = la;
    if (n == 0 || p[n - 1] != '/') p[n++] = '/';
    memcpy(p + n, name, lb + 1);
    return p;
}

int dd_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int dd_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int dd_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

ddpm_status dd_read_file(const char *path, size_t max_size, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dd_error(DDPM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return dd_error(DDPM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return dd_error(DDPM_ERR_IO, "%s: is a directory, not a file", path);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return dd_error(DDPM_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 0 || (max_size && (uint64_t)sb.st_size > max_size)) {
        close(fd);
        return dd_error(DDPM_ERR_FORMAT, "%s: file of %lld bytes exceeds the limit of %zu bytes", path,
                        (long long)sb.st_size, max_size);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = dd_alloc(n + 1);
    if (!buf) {
        close(fd);
        return dd_error_prefix(DDPM_ERR_NOMEM, path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            dd_free(buf);
            return dd_error(DDPM_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        dd_free(buf);
        return dd_error(DDPM_ERR_IO, "%s: file changed while reading (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return DDPM_OK;
}

static ddpm_status write_all(int fd, const void *data, size_t len, const char *path) {
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            return dd_error(DDPM_ERR_IO, "%s: write failed: %s%s", path, strerror(e),
                            e == ENOSPC ? " (disk full)" : "");
        }
        p += w;
        len -= (size_t)w;
    }
    return DDPM_OK;
}

/* Writes into an existing stream (a character device such as /dev/null, a FIFO, a terminal): no temp file,
   no rename, no fsync (devices refuse it). */
static ddpm_status write_through(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return dd_error(DDPM_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    ddpm_status st = write_all(fd, data, len, path);
    if (close(fd) != 0 && st == DDPM_OK)
        st = dd_error(DDPM_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return st;
}

/* Temp file beside `target` (a regular file or a missing name), fsync, rename over it. mode: the permissions
   of the file it replaces, or -1 for a new file (0666 less the umask). */
static ddpm_status replace_atomic(const char *target, const char *shown, const void *data, size_t len,
                                  int mode) {
    size_t plen = strlen(target);
    char *tmp = dd_alloc(plen + 32);
    if (!tmp) return DDPM_ERR_NOMEM;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", target, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST) {   /* left by a killed process of the same pid: ours to remove */
        struct stat tb;
        if (lstat(tmp, &tb) == 0 && S_ISREG(tb.st_mode) && unlink(tmp) == 0)
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        else
            errno = EEXIST;
    }
    if (fd < 0) {
        ddpm_status st = dd_error(DDPM_ERR_IO, "%s: cannot create %s: %s", shown, tmp, strerror(errno));
        dd_free(tmp);
        return st;
    }
    ddpm_status st = mode < 0 || fchmod(fd, (mode_t)mode) == 0 ? DDPM_OK
                                           : dd_error(DDPM_ERR_IO, "%s: cannot set permissions: %s", shown, strerror(errno));
    if (st == DDPM_OK) st = write_all(fd, data, len, shown);
    if (st == DDPM_OK && fsync(fd) != 0)
        st = dd_error(DDPM_ERR_IO, "%s: fsync failed: %s", shown, strerror(errno));
    if (close(fd) != 0 && st == DDPM_OK)
        st = dd_error(DDPM_ERR_IO, "%s: close failed: %s", shown, strerror(errno));
    if (st == DDPM_OK && rename(tmp, target) != 0)
        st = dd_error(DDPM_ERR_IO, "%s: cannot rename temporary file into place: %s", shown, strerror(errno));
    if (st != DDPM_OK) unlink(tmp);
    dd_free(tmp);
    return st;
}

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

ddpm_status dd_write_file_atomic(const char *path, const void *data, size_t len) {
    if (!path || !*path) return dd_error(DDPM_ERR_INVALID_ARG, "output path is empty");
    struct stat lb, sb;
    if (lstat(path, &lb) != 0) {
        if (errno != ENOENT) return dd_error(DDPM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        return replace_atomic(path, path, data, len, -1);
    }
    if (!S_ISLNK(lb.st_mode)) {
        if (S_ISREG(lb.st_mode)) return replace_atomic(path, path, data, len, (int)(lb.st_mode & 07777));
        if (S_ISCHR(lb.st_mode) || S_ISFIFO(lb.st_mode)) return write_through(path, data, len);
        return dd_error(DDPM_ERR_IO, "%s: is %s; not replacing it", path, kind_of(lb.st_mode));
    }
    /* a symbolic link stays: the rule applies to what it names */
    if (stat(path, &sb) != 0)
        return dd_error(DDPM_ERR_IO, "%s: symbolic link to a missing or unreachable path (%s); not replacing it",
                        path, strerror(errno));
    if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode)) return write_through(path, data, len);
    if (!S_ISREG(sb.st_mode))
        return dd_error(DDPM_ERR_IO, "%s: symbolic link to %s; not replacing it", path, kind_of(sb.st_mode));
    char *target = realpath(path, NULL);
    if (!target) return dd_error(DDPM_ERR_IO, "%s: cannot resolve the symbolic link: %s", path, strerror(errno));
    ddpm_status st = replace_atomic(target, path, data, len, (int)(sb.st_mode & 07777));
    free(target);
    return st;
}

ddpm_status ddpm_write_file(const char *path, const void *data, size_t len) {
    return dd_write_file_atomic(path, data, len);
}

ddpm_status ddpm_output_file_check(const char *path) {
    if (!path || !*path) return dd_error(DDPM_ERR_INVALID_ARG, "output path is empty");
    struct stat sb;
    if (stat(path, &sb) == 0)
        return S_ISREG(sb.st_mode) ? DDPM_OK : dd_error(DDPM_ERR_IO, "%s: exists and is not a regular file", path);
    if (errno != ENOENT) return dd_error(DDPM_ERR_IO, "%s: %s", path, strerror(errno));
    const char *slash = strrchr(path, '/');
    if (!slash) return DDPM_OK;
    size_t n = slash == path ? 1 : (size_t)(slash - path);   /* "/file": the root */
    char *dir = dd_alloc(n + 1);
    if (!dir) return DDPM_ERR_NOMEM;
    memcpy(dir, path, n);
    dir[n] = 0;
    ddpm_status st = dd_is_dir(dir) ? DDPM_OK : dd_error(DDPM_ERR_IO, "%s: the folder %s does not exist", path, dir);
    dd_free(dir);
    return st;
}

ddpm_status dd_make_dirs(const char *path) {
    if (!path || !*path) return dd_error(DDPM_ERR_INVALID_ARG, "folder path is empty");
    char *p = dd_strdup(path);
    if (!p) return DDPM_ERR_NOMEM;
    ddpm_status st = DDPM_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        struct stat sb;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            st = dd_error(DDPM_ERR_IO, "%s: cannot create the folder: %s", p, strerror(errno));
        else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = dd_error(DDPM_ERR_IO, "%s: cannot create the folder: %s is not a folder", path, p);
        *s = c;
        if (c == 0 || st != DDPM_OK) break;
    }
    dd_free(p);
    return st;
}

ddpm_status ddpm_make_dirs(const char *path) { return dd_make_dirs(path); }

/* ------------------------------------------------------------------ one writer per folder */

struct ddpm_dir_lock {
    int fd;
    char *path;   /* DIR/.lock, removed on release */
};

/* The refusal when another process holds the lock: its pid, as it wrote it into the file. */
static ddpm_status held_by_other(int fd, const char *dir) {
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    if (pid > 0)
        return dd_error(DDPM_ERR_IO, "%s: in use by another ddpm process (pid %ld); wait for it to end or stop it",
                        dir, pid);
    return dd_error(DDPM_ERR_IO, "%s: in use by another ddpm process", dir);
}

ddpm_status ddpm_dir_lock_take(const char *dir, ddpm_dir_lock **out) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_dir_lock_take: out is NULL");
    *out = NULL;
    ddpm_status st = dd_make_dirs(dir);
    if (st != DDPM_OK) return st;
    char *path = dd_path_join(dir, DDPM_DIR_LOCK_NAME);
    if (!path) return DDPM_ERR_NOMEM;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && st == DDPM_OK; attempt++) {
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0) {
            st = dd_error(DDPM_ERR_IO, "%s: cannot open the folder's lock file: %s", path, strerror(errno));
            break;
        }
        struct stat fb, pb;
        if (fstat(fd, &fb) != 0 || !S_ISREG(fb.st_mode)) {
            st = dd_error(DDPM_ERR_IO, "%s: the folder's lock file is not a regular file", path);
            break;
        }
        int r;
        while ((r = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {}
        if (r != 0) {
            st = errno == EWOULDBLOCK ? held_by_other(fd, dir)
                                      : dd_error(DDPM_ERR_IO, "%s: cannot lock: %s", path, strerror(errno));
            break;
        }
        /* the holder before us removes the file as it releases: a lock on a removed file guards nothing */
        if (stat(path, &pb) == 0 && pb.st_dev == fb.st_dev && pb.st_ino == fb.st_ino) break;
        close(fd);
        fd = -1;
    }
    if (st == DDPM_OK && fd < 0) st = dd_error(DDPM_ERR_IO, "%s: the lock file keeps changing", path);
    if (st != DDPM_OK) {
        if (fd >= 0) close(fd);
        dd_free(path);
        return st;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the lock holds without the pid; only another process's refusal message is poorer */
    }
    ddpm_dir_lock *l = dd_alloc(sizeof *l);
    if (!l) {
        unlink(path);
        close(fd);
        dd_free(path);
        return DDPM_ERR_NOMEM;
    }
    l->fd = fd;
    l->path = path;
    *out = l;
    return DDPM_OK;
}

void ddpm_dir_lock_release(ddpm_dir_lock *l) {
    if (!l) return;
    unlink(l->path);   /* while still held: the next taker creates a fresh file */
    close(l->fd);      /* releases the flock */
    dd_free(l->path);
    dd_free(l);
}

uint32_t dd_crc32(uint32_t crc, const void *data, uint64_t n) {
    const uint8_t *p = data;
    uLong c = crc;
    while (n > 0) {   /* zlib takes at most 4 GiB - 1 per call */
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

ddpm_status dd_maybe_gunzip(const uint8_t *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len,
                            const char *what) {
    *out = NULL;
    *out_len = 0;
    if (len < 2 || in[0] != 0x1f || in[1] != 0x8b) {
        if (max_out && len > max_out)
            return dd_error(DDPM_ERR_FORMAT, "%s: %zu bytes exceeds the limit of %zu", what, len, max_out);
        uint8_t *copy = dd_alloc(len);
        if (!copy) return DDPM_ERR_NOMEM;
        if (len) memcpy(copy, in, len);
        *out = copy;
        *out_len = len;
        return DDPM_OK;
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return dd_error(DDPM_ERR_INTERNAL, "%s: zlib init failed", what);
    size_t cap = len * 4 + 1024, used = 0;
    if (max_out && cap > max_out + 1) cap = max_out + 1;
    uint8_t *buf = dd_alloc(cap);
    if (!buf) {
        inflateEnd(&zs);
        return DDPM_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    ddpm_status st = DDPM_OK;
    size_t in_left = len;
    for (;;) {
        if (used == cap) {
            if (max_out && cap > max_out) {
                st = dd_error(DDPM_ERR_FORMAT, "%s: decompressed data exceeds the limit of %zu bytes", what, max_out);
                break;
            }
            size_t ncap = cap * 2;
            if (max_out && ncap > max_out + 1) ncap = max_out + 1;
            uint8_t *nb = dd_realloc(buf, ncap);
            if (!nb) { st = DDPM_ERR_NOMEM; break; }
            buf = nb;
            cap = ncap;
        }
        uInt chunk_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        size_t room = cap - used;
        zs.avail_in = chunk_in;
        zs.next_out = buf + used;
        zs.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        uInt before_out = zs.avail_out;
        int r = inflate(&zs, Z_NO_FLUSH);
        used += before_out - zs.avail_out;
        in_left -= chunk_in - zs.avail_in;
        if (r == Z_STREAM_END) {
            if (in_left != 0) {
                /* a second gzip member or trailing bytes: accept trailing zero padding only */
                const uint8_t *rest = zs.next_in;
                for (size_t i = 0; i < in_left; i++)
                    if (rest[i] != 0) { st = dd_error(DDPM_ERR_FORMAT, "%s: unexpected data after the gzip stream", what); break; }
            }
            break;
        }
        if (r == Z_BUF_ERROR && in_left == 0) {
            st = dd_error(DDPM_ERR_FORMAT, "%s: gzip data is truncated", what);
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            st = dd_error(DDPM_ERR_FORMAT, "%s: corrupt gzip data (%s)", what, zs.msg ? zs.msg : "inflate failed");
            break;
        }
        if (max_out && used > max_out) {
            st = dd_error(DDPM_ERR_FORMAT, "%s: decompressed data exceeds the limit of %zu bytes", what, max_out);
            break;
        }
    }
    inflateEnd(&zs);
    if (st == DDPM_OK && max_out && used > max_out)
        st = dd_error(DDPM_ERR_FORMAT, "%s: decompressed data exceeds the limit of %zu bytes", what, max_out);
    if (st != DDPM_OK) {
        dd_free(buf);
        return st;
    }
    *out = buf;
    *out_len = used;
    return DDPM_OK;
}
