/* Scheduler terms: which process may still write a state directory. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "taskfarm_status.h"

/*
 * A take-over (tf_takeover) claims term N + 1 by creating DIR/term.N+1
 * with O_EXCL: of two ranks that both think they succeed, one creates it
 * and the other learns it lost. A scheduler writes for the newest term it
 * found when it took the directory; once term.(its + 1) exists it has
 * been deposed and writes nothing more. Files are never removed: they
 * record who took over when (docs/checkpoint-format.md).
 */
static void term_path(char *p, size_t n, const char *dir, uint64_t t)
{
    snprintf(p, n, "%s/term.%" PRIu64, dir, t);
}

bool tf_term_passed(const char *dir, uint64_t term)
{
    char p[PATH_MAX];
    struct stat st;
    term_path(p, sizeof p, dir, term + 1);
    return stat(p, &st) == 0;
}

uint64_t tf_term_current(const char *dir)
{
    uint64_t t = 0;
    while (tf_term_passed(dir, t))
        t++;
    return t;
}

int tf_term_claim(const char *dir, const char *who, uint64_t *term)
{
    char p[PATH_MAX];
    uint64_t t = tf_term_current(dir) + 1;
    term_path(p, sizeof p, dir, t);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST ? TF_EDEPOSED : TF_EIO;
    size_t n = strlen(who);
    int e = write(fd, who, n) == (ssize_t)n && !fsync(fd) ? 0 : TF_EIO;
    if (close(fd))
        e = TF_EIO;
    /* The name must be durable too: another host reads the directory. */
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0 || fsync(d))
        e = TF_EIO;
    if (d >= 0)
        close(d);
    *term = t;
    return e;
}
