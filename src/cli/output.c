/* Tasks' output: per-task files made only when written, the tagged stream, or none. */

/* O_TMPFILE and linkat's AT_SYMLINK_FOLLOW. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "farm.h"

/*
 * Why scratch files: opening OUTDIR/out/ID.out and ID.err for every task
 * cost two inodes a task, most of them for empty files, and at 10,000 tasks
 * and more ext4's inode allocator took about 30% of the run (issue 19). A
 * task now writes into a scratch file this rank keeps open (an unnamed
 * O_TMPFILE in OUTDIR/out; a named hidden file where the file system has no
 * O_TMPFILE, e.g. NFS): one that stayed empty is reused by the next task
 * for the price of an fstat, and one that was written is linked in under
 * the task's name (or renamed there) and replaced. So only tasks that write
 * something cost an inode, as they did before.
 *
 * A task that leaves processes running in its group after its main process
 * ended (`nohup server &`) may write later: its scratch files are linked in
 * whatever their size (files) or dropped (tag), never reused.
 */


const char *cli_output_mode_name(cli_output_mode m)
{
    return m == CLI_OUT_TAG ? "tag" : m == CLI_OUT_NONE ? "none" : "files";
}

bool cli_output_mode_parse(const char *s, cli_output_mode *m)
{
    static const cli_output_mode all[] = {CLI_OUT_FILES, CLI_OUT_TAG,
                                          CLI_OUT_NONE};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!strcmp(s, cli_output_mode_name(all[i]))) {
            *m = all[i];
            return true;
        }
    return false;
}

bool cli_output_blocked(const tf_taskfile *tf)
{
    /* One @array line may be a million tasks: its elements count too. */
    return tf->n && (tf->tasks[tf->n - 1].line > CLI_OUT_BLOCK ||
                     (tf->narrays && tf->n > CLI_OUT_BLOCK));
}

uint32_t cli_output_block(const tf_taskfile *tf, uint32_t i, bool blocked)
{
    /*
     * By line; an @array element by its place in the list instead, so that
     * a directory holds at most a block of lines' tasks and a block of
     * elements, however long the arrays.
     */
    uint32_t key = tf_taskfile_array(tf, i) ? i + 1 : tf->tasks[i].line;
    return blocked ? (key - 1) / CLI_OUT_BLOCK * CLI_OUT_BLOCK + 1 : 0;
}

void cli_output_describe(cli_output_mode m, bool blocked, char *buf,
                         size_t len)
{
    if (m == CLI_OUT_TAG)
        snprintf(buf, len, "tag: tagged.out and tagged.err, each line "
                           "prefixed with its task's id and a tab");
    else if (m == CLI_OUT_NONE)
        snprintf(buf, len, "none: discarded");
    else if (blocked)
        snprintf(buf, len,
                 "files: out/FIRST-LAST/ID.out and ID.err, by "
                 "blocks of %d task-file lines (line 1234 in "
                 "out/1001-2000/; an @array element by its place "
                 "in the list), only for tasks that wrote",
                 CLI_OUT_BLOCK);
    else
        snprintf(buf, len, "files: out/ID.out and ID.err, only for tasks "
                           "that wrote");
}

/* Descriptor fd moved to 3 or above (the child's 0 to 2 are placed over). */
static int above_stdio(int fd)
{
    if (fd < 0 || fd >= 3)
        return fd;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return hi;
}

/* A new scratch file in O->dir; 0 or an errno value. */
static int scratch_open(cli_output *O, cli_scratch *s)
{
    s->name = NULL;
    s->fd = above_stdio(open(O->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644));
    if (s->fd >= 0)
        return 0;
    /* EOPNOTSUPP, EISDIR or EINVAL: no O_TMPFILE here. Other errors too. */
    size_t len = strlen(O->dir) + 64;
    if (!(s->name = malloc(len)))
        return ENOMEM;
    for (int tries = 0; tries < 100; tries++) {
        pthread_mutex_lock(&O->mu);
        unsigned k = O->next_name++;
        pthread_mutex_unlock(&O->mu);
        snprintf(s->name, len, "%s/.scratch-%d-%ld-%u", O->dir, O->rank,
                 (long)getpid(), k);
        s->fd = above_stdio(open(s->name,
                                 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
                                     O_CLOEXEC,
                                 0644));
        if (s->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    free(s->name);
    s->name = NULL;
    return e;
}

/* Close a scratch file for good (a named one is removed). */
static void scratch_drop(cli_scratch *s)
{
    if (s->fd < 0)
        return;
    close(s->fd);
    if (s->name)
        unlink(s->name);
    free(s->name);
    s->fd = -1;
    s->name = NULL;
}

/* One from the free list, else a new one. 0 or an errno value. */
static int scratch_take(cli_output *O, cli_scratch *s)
{
    pthread_mutex_lock(&O->mu);
    bool have = O->nfree > 0;
    if (have)
        *s = O->free[--O->nfree];
    pthread_mutex_unlock(&O->mu);
    return have ? 0 : scratch_open(O, s);
}

/* Back to the free list, empty and at offset 0; dropped if that fails. */
static void scratch_give(cli_output *O, cli_scratch *s, bool written)
{
    if (written && ftruncate(s->fd, 0) != 0) {
        scratch_drop(s);
        return;
    }
    /* The task may have moved the offset without writing (lseek). */
    if (lseek(s->fd, 0, SEEK_SET) != 0) {
        scratch_drop(s);
        return;
    }
    pthread_mutex_lock(&O->mu);
    if (O->nfree == O->cap) {
        size_t ncap = O->cap ? O->cap * 2 : 8;
        cli_scratch *nv = realloc(O->free, ncap * sizeof *nv);
        if (nv) {
            O->free = nv;
            O->cap = ncap;
        }
    }
    bool kept = O->nfree < O->cap;
    if (kept)
        O->free[O->nfree++] = *s;
    pthread_mutex_unlock(&O->mu);
    if (!kept)
        scratch_drop(s);
    s->fd = -1;
}

/* OUTDIR/tagged.out (k 0) or tagged.err (k 1): the tagged stream. */
static void tag_path(const char *outdir, int k, char *buf, size_t len)
{
    snprintf(buf, len, "%s/tagged.%s", outdir, k ? "err" : "out");
}

int cli_output_prepare(cli_output_mode m, const char *outdir, bool resume)
{
    if (m != CLI_OUT_TAG)
        return -1;
    for (int k = 0; k < 2; k++) {
        char path[PATH_MAX + 32];
        tag_path(outdir, k, path, sizeof path);
        int fd = open(path,
                      O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                          (resume ? 0 : O_TRUNC),
                      0644);
        if (fd < 0) {
            fprintf(stderr, "taskfarm: cannot create %s: %s\n", path,
                    strerror(errno));
            return EXIT_USAGE;
        }
        close(fd);
    }
    return -1;
}

int cli_output_init(cli_output *O, cli_output_mode m, const char *outdir,
                    int rank, bool stale)
{
    int e;
    memset(O, 0, sizeof *O);
    O->mode = m;
    O->rank = rank;
    O->stale = stale;
    O->tag_fd[0] = O->tag_fd[1] = O->follow_fd[0] = O->follow_fd[1] = -1;
    snprintf(O->dir, sizeof O->dir, "%s/out", outdir);
    if (pthread_mutex_init(&O->mu, NULL))
        return ENOMEM;
    for (int k = 0; m == CLI_OUT_TAG && k < 2; k++) {
        char path[PATH_MAX + 32];
        tag_path(outdir, k, path, sizeof path);
        O->tag_fd[k] =
            open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
        if (O->tag_fd[k] < 0)
            goto fail_with_files;
        if (rank != 0)
            continue;
        /* Rank 0 shows what this run adds, not an earlier run's. */
        O->follow_fd[k] = open(path, O_RDONLY | O_CLOEXEC);
        if (O->follow_fd[k] < 0)
            goto fail_with_files;
        O->follow_off[k] = (long long)lseek(O->follow_fd[k], 0, SEEK_END);
    }
    return 0;

fail_with_files:
    e = errno;
    cli_output_destroy(O);
    return e;
}

void cli_output_destroy(cli_output *O)
{
    for (size_t i = 0; i < O->nfree; i++)
        scratch_drop(&O->free[i]);
    free(O->free);
    O->free = NULL;
    O->nfree = O->cap = 0;
    for (int k = 0; k < 2; k++) {
        if (O->tag_fd[k] >= 0)
            close(O->tag_fd[k]);
        if (O->follow_fd[k] >= 0)
            close(O->follow_fd[k]);
        O->tag_fd[k] = O->follow_fd[k] = -1;
    }
    pthread_mutex_destroy(&O->mu);
}

/* OUTDIR/out[/FIRST-LAST]/ID.EXT into buf; the directory's length in *dlen. */
static void task_path(const cli_output *O, const char *id, uint32_t block,
                      const char *ext, char *buf, size_t len, size_t *dlen)
{
    int n = block ? snprintf(buf, len, "%s/%u-%u", O->dir, (unsigned)block,
                             (unsigned)(block + CLI_OUT_BLOCK - 1))
                  : snprintf(buf, len, "%s", O->dir);
    *dlen = (size_t)n;
    snprintf(buf + n, len - (size_t)n, "/%s.%s", id, ext);
}

int cli_output_begin(cli_output *O, cli_task_output *t)
{
    t->s[0].fd = t->s[1].fd = -1;
    t->s[0].name = t->s[1].name = NULL;
    if (O->mode == CLI_OUT_NONE)
        return 0;
    int e = scratch_take(O, &t->s[0]);
    if (!e && (e = scratch_take(O, &t->s[1])) != 0)
        scratch_give(O, &t->s[0], false);
    return e;
}

void cli_output_spec(const cli_task_output *t, tf_proc_spec *spec)
{
    spec->use_fds = true;
    spec->out_fd = t->s[0].fd;
    spec->err_fd = t->s[1].fd;
}

/*
 * The scratch file s under the task's name (replacing an earlier file or a
 * link planted there: never followed). Its directory is made on the way.
 */
static int publish(cli_scratch *s, char *path, size_t dlen)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", s->fd);
    for (int tries = 0; tries < 4; tries++) {
        int rc = s->name ? rename(s->name, path)
                         : linkat(AT_FDCWD, proc, AT_FDCWD, path,
                                  AT_SYMLINK_FOLLOW);
        if (!rc)
            return 0;
        if (errno == EEXIST && unlink(path) == 0)
            continue;
        if (errno != ENOENT || !dlen)
            return errno;
        path[dlen] = 0;
        int made = mkdir(path, 0777) == 0 || errno == EEXIST;
        path[dlen] = '/';
        if (!made)
            return errno;
    }
    return EAGAIN;
}

/*
 * The tagged stream: every line of the n bytes at fd prefixed with id and
 * a tab (a last line without its newline gets one), in one append, so that
 * another task's block, from this rank or another, never lands inside it.
 */
static int emit_tagged(int to, int fd, size_t n, const char *id)
{
    char *in = malloc(n ? n : 1);
    if (!in)
        return ENOMEM;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, in + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    size_t idlen = strlen(id), lines = 0;
    for (size_t i = 0; i < got; i++)
        lines += in[i] == '\n';
    lines += got && in[got - 1] != '\n';
    size_t olen = got + lines * (idlen + 1) + 1, o = 0;
    char *out = malloc(olen);
    if (!out) {
        free(in);
        return ENOMEM;
    }
    for (size_t i = 0; i < got;) {
        const char *nl = memchr(in + i, '\n', got - i);
        size_t end = nl ? (size_t)(nl - in) : got;
        memcpy(out + o, id, idlen);
        out[o + idlen] = '\t';
        o += idlen + 1;
        memcpy(out + o, in + i, end - i);
        o += end - i;
        out[o++] = '\n';
        i = end + 1;
    }
    free(in);
    int e = 0;
    for (size_t w = 0; w < o;) {
        ssize_t r = write(to, out + w, o - w);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            e = r < 0 ? errno : EIO;
            break;
        }
        w += (size_t)r;
    }
    free(out);
    return e;
}

void cli_output_end(cli_output *O, cli_task_output *t, const char *id,
                    uint32_t block, bool stale, bool lingering)
{
    static const char *const ext[] = {"out", "err"};
    for (int k = 0; k < 2 && O->mode != CLI_OUT_NONE; k++) {
        cli_scratch *s = &t->s[k];
        struct stat st;
        if (s->fd < 0)
            continue;
        /* -1: unknown, so kept as if written. */
        off_t size = fstat(s->fd, &st) == 0 ? st.st_size : -1;
        bool written = size != 0;
        const char *what = NULL;
        int e = 0;
        char path[PATH_MAX + 600];
        size_t dlen;
        task_path(O, id, block, ext[k], path, sizeof path, &dlen);
        if (O->mode == CLI_OUT_TAG) {
            if (size > 0) {
                e = emit_tagged(O->tag_fd[k], s->fd, (size_t)size, id);
                what = "add to the tagged stream";
            }
        } else if (written || lingering) {
            e = publish(s, path, block ? dlen : 0);
            what = "keep the output file";
            if (!e) {
                /* Linked in: the file is the task's now. */
                if (s->name) {
                    free(s->name);
                    s->name = NULL; /* renamed: nothing to unlink */
                }
                scratch_drop(s);
                continue;
            }
        } else if (stale || O->stale) {
            /* An earlier attempt's file must not pass for this one's. */
            unlink(path);
        }
        if (e)
            fprintf(stderr, "taskfarm: rank %d: cannot %s of task %s (%s): "
                            "%s\n",
                    O->rank, what, id, path, strerror(e));
        if (lingering || e)
            scratch_drop(s);
        else
            scratch_give(O, s, written);
    }
}

void cli_output_discard(cli_task_output *t)
{
    scratch_drop(&t->s[0]);
    scratch_drop(&t->s[1]);
}

void cli_output_follow(cli_output *O, struct cli_progress *p)
{
    char buf[65536];
    for (int k = 0; k < 2; k++) {
        int fd = O->follow_fd[k];
        for (bool more = fd >= 0; more;) {
            ssize_t n = pread(fd, buf, sizeof buf, (off_t)O->follow_off[k]);
            if (n <= 0)
                break;
            /* Whole lines only: a block being appended shows next time. */
            size_t whole = (size_t)n;
            while (whole && buf[whole - 1] != '\n')
                whole--;
            if (!whole) {
                /* A line longer than buf: pass it on in pieces. */
                if ((size_t)n < sizeof buf)
                    break;
                whole = (size_t)n;
            }
            if (p)
                cli_progress_break(p);
            FILE *to = k ? stderr : stdout;
            fflush(to);
            size_t w = 0;
            while (w < whole) {
                ssize_t r = write(k ? STDERR_FILENO : STDOUT_FILENO, buf + w,
                                  whole - w);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                w += (size_t)r;
            }
            O->follow_off[k] += (long long)whole;
            more = (size_t)n == sizeof buf;
        }
    }
}
