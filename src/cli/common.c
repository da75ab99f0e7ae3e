/* Shared CLI helpers: reading whole files and loading a task file with its error report. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "taskfarm_status.h"

void cli_file_text_free(file_text *ft)
{
    if (ft->mapped)
        munmap(ft->p, ft->len);
    else
        free(ft->p);
    memset(ft, 0, sizeof *ft);
}

/*
 * Returns 0 or an errno value. Pipes and FIFOs are read, so that
 * `taskfarm check <(generate)` works. A mapped file truncated by someone
 * else while it is parsed would raise SIGBUS; for a validator run by hand
 * that is an acceptable trade for not copying a multi-gigabyte file.
 */
int cli_read_file(const char *path, file_text *out)
{
    /* "-": standard input (rank 0's, which mpirun and srun forward). */
    int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC)
                               : fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0) {
        e = errno;
        goto out_with_fd;
    }
    if (S_ISDIR(st.st_mode)) {
        e = EISDIR;
        goto out_with_fd;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        if ((uintmax_t)st.st_size > SIZE_MAX) {
            e = EFBIG;
            goto out_with_fd;
        }
        size_t len = (size_t)st.st_size;
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            posix_madvise(m, len, POSIX_MADV_SEQUENTIAL);
            *out = (file_text){m, len, true};
            goto out_with_fd;
        }
        /* Some file systems cannot map; reading works everywhere. */
    }
    size_t cap =
        S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
    size_t len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        e = ENOMEM;
        goto out_with_fd;
    }
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                e = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (e)
        free(buf);
    else
        *out = (file_text){buf, len, false};
out_with_fd:
    close(fd);
    return e;
}

int cli_load_taskfile(const char *path, tf_taskfile *tf)
{
    file_text ft = {0};
    int e = cli_read_file(path, &ft);
    if (e) {
        fprintf(stderr, "taskfarm: %s: %s\n", path, strerror(e));
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    tf_tferr err;
    int rc = tf_taskfile_parse(strcmp(path, "-") ? path : "stdin", ft.p,
                               ft.len, tf, &err);
    cli_file_text_free(&ft);
    return cli_parse_verdict(path, rc, &err);
}

int cli_parse_verdict(const char *path, int rc, tf_tferr *err)
{
    for (size_t i = 0; i < err->n; i++)
        fprintf(stderr, "%s\n", err->msgs[i].text);
    if (err->truncated)
        fprintf(stderr, "%s: too many errors, stopped after %d\n", path,
                TF_TASKFILE_MAX_ERRORS);
    tf_tferr_free(err);
    if (rc == 0)
        return EXIT_ALL_OK;
    if (rc == TF_EINVAL)
        return EXIT_USAGE;
    fprintf(stderr, "taskfarm: %s: %s\n", path, tf_strerror(rc));
    return EXIT_RUNTIME;
}

/*
 * Write a file whole under its name: through tmp and a rename, so that a
 * reader sees all of it or nothing; durable (fsync of the file and of its
 * directory) when asked. Returns 0 or an errno value.
 */
int cli_put_file(const char *tmp, const char *path, const char *p, size_t n,
                 bool durable)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return errno;
    int e = 0;
    for (size_t at = 0; !e && at < n;) {
        ssize_t w = write(fd, p + at, n - at);
        if (w < 0 && errno != EINTR)
            e = errno;
        at += w > 0 ? (size_t)w : 0;
    }
    if (!e && durable && fsync(fd))
        e = errno;
    if (close(fd) && !e)
        e = errno;
    if (!e && rename(tmp, path))
        e = errno;
    if (e) {
        unlink(tmp);
        return e;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dfd = durable ? open(slash ? dir : ".", O_RDONLY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        if (fsync(dfd))
            e = errno;
        close(dfd);
    }
    return e;
}

uint64_t cli_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
