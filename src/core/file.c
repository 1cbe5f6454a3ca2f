/* file.c — whole-file reads with a size bound, atomic writes (temp file, fsync, rename), gunzip. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

ddpm_status dd_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t plen = strlen(path);
    char *tmp = dd_alloc(plen + 32);
    if (!tmp) return DDPM_ERR_NOMEM;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        ddpm_status st = dd_error(DDPM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        dd_free(tmp);
        return st;
    }
    ddpm_status st = write_all(fd, data, len, path);
    if (st == DDPM_OK && fsync(fd) != 0)
        st = dd_error(DDPM_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == DDPM_OK)
        st = dd_error(DDPM_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == DDPM_OK && rename(tmp, path) != 0)
        st = dd_error(DDPM_ERR_IO, "%s: cannot rename temporary file into place: %s", path, strerror(errno));
    if (st != DDPM_OK) unlink(tmp);
    dd_free(tmp);
    return st;
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
