/* The writer: journal group commit, snapshot hand-off to the I/O thread. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt_int.h"

/* A snapshot on its way to disk: the thread's part of tf_ck_snapshot. */
typedef struct job {
    uint64_t gen;
    const tf_ck_image *image; /* the file to write, or NULL: HDF5 wrote tmp */
    bool prev_known; /* the journal id of generation gen - 1 is known */
    uint64_t prev_jid;
} job;

struct tf_ck {
    char *dir;
    int dirfd;
    tf_logger log;
    uint64_t sync_ns;
    bool in_memory;    /* snapshots through the core driver, into image */
    tf_ck_image image; /* in use by the thread while a job is in flight */

    /* Caller's thread only. */
    uint64_t next_gen;
    bool prev_known; /* of the newest generation: see job */
    uint64_t prev_jid;

    /* Fixed after open. */
    uint64_t term; /* tf_ck_opts.term */
    uint64_t jid;
    int jfd;
    char jpath[PATH_MAX];

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the thread waits here */
    pthread_cond_t done; /* tf_ck_wait waits here */
    /* Under mu: */
    uint8_t *fill; /* records handed over, not yet taken */
    size_t fill_len, fill_cap;
    uint8_t *spare; /* the thread's batch buffer while writing */
    size_t spare_cap;
    uint64_t appended;  /* journal offset after the last record handed over */
    uint64_t next_sync; /* monotonic ns: no journal write before */
    bool writing;
    int waiters;
    bool stop;
    job *job;
    int error;
    char errmsg[512];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The first I/O error wins and stays: every later call reports it. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
latch(tf_ck *ck, const char *fmt, ...)
{
    if (ck->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ck->errmsg, sizeof ck->errmsg, fmt, ap);
    va_end(ap);
    ck->error = TF_EIO;
    tf_logf(&ck->log, TF_LOG_ERROR, "checkpoint: %s", ck->errmsg);
}

/*
 * A later scheduler term exists (tf_term_claim): this writer's scheduler
 * was deposed, and another now writes the directory. Latched like an I/O
 * error, but as TF_EDEPOSED, before anything more is written. One stat per
 * journal group and per snapshot. Under mu.
 */
static bool deposed(tf_ck *ck)
{
    if (ck->error == TF_EDEPOSED)
        return true;
    if (!tf_term_passed(ck->dir, ck->term))
        return false;
    if (!ck->error) {
        snprintf(ck->errmsg, sizeof ck->errmsg,
                 "%s: term %" PRIu64 " was taken over: nothing more is "
                 "written",
                 ck->dir, ck->term);
        ck->error = TF_EDEPOSED;
    }
    return true;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* ---- the I/O thread ----------------------------------------------------- */

static void remove_old(tf_ck *ck, const job *j)
{
    tf_ck_dir d;
    char path[PATH_MAX];
    if (tf_ck_dir_scan(ck->dir, &d))
        return; /* only space is at stake; the next snapshot retries */
    for (size_t i = 0; i < d.ngen; i++)
        if (d.gen[i] + 2 <= j->gen) {
            tf_ck_state_path(path, sizeof path, ck->dir, d.gen[i]);
            unlink(path);
        }
    /* Generation gen - 1 may still be needed (if gen turns out damaged),
       and with it every journal from the one it names on. */
    for (size_t i = 0; j->prev_known && i < d.njid; i++)
        if (d.jid[i] < j->prev_jid) {
            tf_ck_journal_path(path, sizeof path, ck->dir, d.jid[i]);
            unlink(path);
        }
    tf_ck_dir_free(&d);
}

/* Makes generation j->gen durable: returns errno, the failing step in what. */
static int finish_snapshot(tf_ck *ck, const job *j, const char **what,
                           char *path, size_t plen)
{
    char tmp[PATH_MAX + 8], final[PATH_MAX];
    tf_ck_state_path(final, sizeof final, ck->dir, j->gen);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    snprintf(path, plen, "%s", tmp);
    int e = 0;
    int fd = j->image
                 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                 : open(tmp, O_RDONLY | O_CLOEXEC);
    *what = "open";
    if (fd < 0)
        return errno;
    if (j->image && (e = write_all(fd, j->image->p, j->image->len)))
        *what = "write";
    else if (fsync(fd) && (e = errno))
        *what = "fsync";
    if (close(fd) && !e) {
        e = errno;
        *what = "close";
    }
    if (!e && tf_term_passed(ck->dir, ck->term)) {
        *what = "deposed"; /* the caller latches it */
        e = EPERM;
    }
    if (!e && rename(tmp, final) && (e = errno))
        *what = "rename";
    if (e) {
        unlink(tmp);
        return e;
    }
    snprintf(path, plen, "%s", ck->dir);
    if (fsync(ck->dirfd)) {
        *what = "fsync of the directory";
        return errno;
    }
    remove_old(ck, j);
    return 0;
}

static void *io_thread(void *arg)
{
    tf_ck *ck = arg;
    pthread_mutex_lock(&ck->mu);
    for (;;) {
        uint64_t t = now_ns();
        bool due = ck->fill_len &&
                   (ck->waiters || ck->stop || ck->error || t >= ck->next_sync);
        if (due && (ck->error || deposed(ck))) {
            /* After a failed write the journal may end in a torn record;
               nothing more is appended to it. */
            ck->fill_len = 0;
            pthread_cond_broadcast(&ck->done);
        } else if (due) {
            uint8_t *b = ck->fill;
            size_t len = ck->fill_len, cap = ck->fill_cap;
            ck->fill = ck->spare;
            ck->fill_cap = ck->spare_cap;
            ck->fill_len = 0;
            ck->writing = true;
            pthread_mutex_unlock(&ck->mu);
            tf_ck_jr_seal(b, len);
            int e = write_all(ck->jfd, b, len);
            const char *what = "write";
            if (!e && fdatasync(ck->jfd)) {
                e = errno;
                what = "fdatasync";
            }
            pthread_mutex_lock(&ck->mu);
            ck->spare = b;
            ck->spare_cap = cap;
            ck->writing = false;
            if (e)
                latch(ck, "%s: %s: %s", ck->jpath, what, strerror(e));
            ck->next_sync = now_ns() + ck->sync_ns;
            pthread_cond_broadcast(&ck->done);
        } else if (ck->job) {
            job *j = ck->job;
            pthread_mutex_unlock(&ck->mu);
            char path[PATH_MAX + 8];
            const char *what = "";
            int e = finish_snapshot(ck, j, &what, path, sizeof path);
            pthread_mutex_lock(&ck->mu);
            if (e && !deposed(ck))
                latch(ck, "%s: %s: %s", path, what, strerror(e));
            free(j);
            ck->job = NULL;
            pthread_cond_broadcast(&ck->done);
        } else if (ck->stop) {
            break;
        } else if (ck->fill_len) {
            struct timespec ts = {(time_t)(ck->next_sync / 1000000000u),
                                  (long)(ck->next_sync % 1000000000u)};
            pthread_cond_timedwait(&ck->wake, &ck->mu, &ts);
        } else {
            pthread_cond_wait(&ck->wake, &ck->mu);
        }
    }
    pthread_mutex_unlock(&ck->mu);
    return NULL;
}

/* ---- opening ------------------------------------------------------------ */

static int mkdir_p(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return ENAMETOOLONG;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) && errno != EEXIST)
                return errno;
            *s = '/';
        }
    if (mkdir(p, 0777) && errno != EEXIST)
        return errno;
    return 0;
}

/* Creates journal ck->jid with its header, durable (and its name too). */
static int create_journal(tf_ck *ck, char *err, size_t errlen)
{
    uint8_t hdr[TF_CK_JHDR];
    tf_ck_journal_path(ck->jpath, sizeof ck->jpath, ck->dir, ck->jid);
    ck->jfd = open(ck->jpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    const char *what = "cannot create";
    int e = ck->jfd < 0 ? errno : 0;
    tf_ck_jr_header(hdr, ck->jid);
    if (!e && (e = write_all(ck->jfd, hdr, sizeof hdr)))
        what = "cannot write the header";
    if (!e && fdatasync(ck->jfd) && (e = errno))
        what = "fdatasync";
    if (!e && fsync(ck->dirfd) && (e = errno))
        what = "fsync of the directory";
    if (e) {
        snprintf(err, errlen, "%s: %s: %s", ck->jpath, what, strerror(e));
        if (ck->jfd >= 0) {
            close(ck->jfd);
            unlink(ck->jpath);
            ck->jfd = -1;
        }
        return TF_EIO;
    }
    ck->appended = TF_CK_JHDR;
    return 0;
}

/*
 * Next generation and journal numbers, from what dir holds, after setting
 * aside generations newer than loaded_gen (damaged: see tf_ck_opts).
 * Otherwise the newest damaged file would count as "generation G - 1" and
 * the first snapshot would delete the good one that loaded.
 */
static int scan_numbers(tf_ck *ck, uint64_t loaded_gen, char *err,
                        size_t errlen)
{
    tf_ck_dir d;
    int rc = tf_ck_dir_scan(ck->dir, &d);
    if (rc) {
        snprintf(err, errlen, "%s: cannot list the directory", ck->dir);
        return rc == TF_ENOMEM ? rc : TF_EIO;
    }
    while (loaded_gen && d.ngen && d.gen[d.ngen - 1] > loaded_gen) {
        char path[PATH_MAX], aside[PATH_MAX + 16];
        tf_ck_state_path(path, sizeof path, ck->dir, d.gen[--d.ngen]);
        snprintf(aside, sizeof aside, "%s.damaged", path);
        if (rename(path, aside)) {
            snprintf(err, errlen, "cannot rename %s aside: %s", path,
                     strerror(errno));
            tf_ck_dir_free(&d);
            return TF_EIO;
        }
    }
    ck->next_gen = d.ngen ? d.gen[d.ngen - 1] + 1 : 1;
    ck->jid = d.njid ? d.jid[d.njid - 1] + 1 : 1;
    if (d.ngen) {
        char path[PATH_MAX];
        tf_ck_meta m;
        tf_ck_state_path(path, sizeof path, ck->dir, d.gen[d.ngen - 1]);
        if (!tf_ck_snap_read_meta(path, &m)) {
            ck->prev_known = true;
            ck->prev_jid = m.journal_id;
            if (m.journal_id >= ck->jid)
                ck->jid = m.journal_id + 1;
        }
    }
    tf_ck_dir_free(&d);
    /* A crash mid-snapshot leaves the next generation's temporary file. */
    char tmp[PATH_MAX];
    tf_ck_state_path(tmp, sizeof tmp, ck->dir, ck->next_gen);
    strncat(tmp, ".tmp", sizeof tmp - strlen(tmp) - 1);
    unlink(tmp);
    return 0;
}

int tf_ck_open(const char *dir, const tf_ck_opts *o, tf_ck **out, char *err,
               size_t errlen)
{
    static const tf_ck_opts defaults; /* sync_ms 50, errors to stderr */
    if (!o)
        o = &defaults;
    if (!dir || !*dir || !out) {
        snprintf(err, errlen, "checkpoint: no directory given");
        return TF_EINVAL;
    }
    tf_ck *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->dir = strdup(dir))) {
        free(ck);
        snprintf(err, errlen, "checkpoint: out of memory");
        return TF_ENOMEM;
    }
    ck->log = o->log;
    ck->sync_ns = (uint64_t)(o->sync_ms ? o->sync_ms : 50) * 1000000u;
    ck->term = o->term;
    ck->in_memory = false;
    ck->jfd = ck->dirfd = -1;
    int rc = 0, e = mkdir_p(dir);
    if (!e && (ck->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        e = errno;
    if (e) {
        snprintf(err, errlen, "%s: cannot create or open the directory: %s",
                 dir, strerror(e));
        rc = TF_EIO;
        goto fail_with_ck;
    }
    if ((rc = scan_numbers(ck, o->loaded_gen, err, errlen)) ||
        (rc = create_journal(ck, err, errlen)))
        goto fail_with_dirfd;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&ck->mu, NULL);
    pthread_cond_init(&ck->wake, &ca);
    pthread_cond_init(&ck->done, NULL);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ck->thread, NULL, io_thread, ck)) {
        snprintf(err, errlen, "checkpoint: cannot start the I/O thread");
        rc = TF_ENOMEM;
        goto fail_with_sync;
    }
    *out = ck;
    return 0;

fail_with_sync:
    pthread_cond_destroy(&ck->done);
    pthread_cond_destroy(&ck->wake);
    pthread_mutex_destroy(&ck->mu);
    close(ck->jfd);
fail_with_dirfd:
    close(ck->dirfd);
fail_with_ck:
    free(ck->dir);
    free(ck);
    return rc;
}

/* ---- journal records ---------------------------------------------------- */

/* Room for len more bytes in fill, under mu. */
static int reserve(tf_ck *ck, size_t len)
{
    if (ck->fill_len + len <= ck->fill_cap)
        return 0;
    size_t c = ck->fill_cap ? ck->fill_cap : 65536;
    while (c < ck->fill_len + len)
        c *= 2;
    uint8_t *p = realloc(ck->fill, c);
    if (!p)
        return TF_ENOMEM;
    ck->fill = p;
    ck->fill_cap = c;
    return 0;
}

/* Common tail of tf_ck_finished and tf_ck_submitted. */
static int hand_over(tf_ck *ck, size_t len, const tf_ck_finish *f,
                     const tf_ck_task *t)
{
    pthread_mutex_lock(&ck->mu);
    int rc = ck->error ? ck->error : reserve(ck, len);
    if (!rc) {
        bool was_empty = ck->fill_len == 0;
        if (f)
            tf_ck_jr_put_finish(ck->fill + ck->fill_len, f);
        else
            tf_ck_jr_put_submit(ck->fill + ck->fill_len, t);
        ck->fill_len += len;
        ck->appended += len;
        if (was_empty)
            pthread_cond_signal(&ck->wake);
    }
    pthread_mutex_unlock(&ck->mu);
    return rc;
}

int tf_ck_finished(tf_ck *ck, const tf_ck_finish *f)
{
    if (!f || (f->state == TF_TASK_DONE && f->out_len && !f->out))
        return TF_EINVAL;
    return hand_over(ck, tf_ck_jr_finish_size(f), f, NULL);
}

int tf_ck_submitted(tf_ck *ck, const tf_ck_task *t)
{
    if (!t || (t->name_len && !t->name) || (t->cmd_len && !t->cmd) ||
        (t->ndeps && !t->deps) || (t->out_len && !t->out))
        return TF_EINVAL;
    return hand_over(ck, tf_ck_jr_submit_size(t), NULL, t);
}

/* ---- snapshots ---------------------------------------------------------- */

int tf_ck_snapshot(tf_ck *ck, const tf_ck_meta *meta, uint64_t n,
                   tf_ck_get_fn get, void *user)
{
    if (!meta || (n && !get))
        return TF_EINVAL;
    job *j = calloc(1, sizeof *j);
    if (!j)
        return TF_ENOMEM;
    pthread_mutex_lock(&ck->mu);
    int rc = ck->error ? ck->error : ck->job ? TF_ESTATE : 0;
    uint64_t pos = ck->appended;
    pthread_mutex_unlock(&ck->mu);
    if (rc) {
        free(j);
        return rc;
    }
    /* The snapshot covers every record handed over before this call: the
       caller's table already reflects them. */
    tf_ck_meta m = *meta;
    m.generation = ck->next_gen;
    m.journal_id = ck->jid;
    m.journal_pos = pos;
    char tmp[PATH_MAX], err[512];
    tf_ck_state_path(tmp, sizeof tmp, ck->dir, m.generation);
    strncat(tmp, ".tmp", sizeof tmp - strlen(tmp) - 1);
    j->image = ck->in_memory ? &ck->image : NULL;
    rc = tf_ck_snap_write(tmp, &m, n, get, user,
                          ck->in_memory ? &ck->image : NULL, err, sizeof err);
    if (rc) {
        free(j);
        pthread_mutex_lock(&ck->mu);
        if (rc == TF_EIO)
            latch(ck, "%s", err);
        pthread_mutex_unlock(&ck->mu);
        return rc;
    }
    j->gen = ck->next_gen++;
    j->prev_known = ck->prev_known;
    j->prev_jid = ck->prev_jid;
    ck->prev_known = true;
    ck->prev_jid = ck->jid;
    pthread_mutex_lock(&ck->mu);
    ck->job = j;
    pthread_cond_signal(&ck->wake);
    pthread_mutex_unlock(&ck->mu);
    return 0;
}

uint64_t tf_ck_generation(const tf_ck *ck) { return ck->next_gen; }

bool tf_ck_busy(const tf_ck *ck)
{
    tf_ck *w = (tf_ck *)ck; /* the mutex changes, the state does not */
    pthread_mutex_lock(&w->mu);
    bool busy = w->job != NULL;
    pthread_mutex_unlock(&w->mu);
    return busy;
}

int tf_ck_wait(tf_ck *ck)
{
    pthread_mutex_lock(&ck->mu);
    ck->waiters++;
    pthread_cond_signal(&ck->wake);
    while (ck->fill_len || ck->writing || ck->job)
        pthread_cond_wait(&ck->done, &ck->mu);
    ck->waiters--;
    int rc = ck->error;
    pthread_mutex_unlock(&ck->mu);
    return rc;
}

const char *tf_ck_error(const tf_ck *ck)
{
    tf_ck *w = (tf_ck *)ck;
    pthread_mutex_lock(&w->mu);
    const char *msg = w->error ? w->errmsg : ""; /* set once, never again */
    pthread_mutex_unlock(&w->mu);
    return msg;
}

int tf_ck_close(tf_ck **pck)
{
    tf_ck *ck = *pck;
    if (!ck)
        return 0;
    int rc = tf_ck_wait(ck);
    pthread_mutex_lock(&ck->mu);
    ck->stop = true;
    pthread_cond_signal(&ck->wake);
    pthread_mutex_unlock(&ck->mu);
    pthread_join(ck->thread, NULL);
    pthread_cond_destroy(&ck->done);
    pthread_cond_destroy(&ck->wake);
    pthread_mutex_destroy(&ck->mu);
    close(ck->jfd);
    close(ck->dirfd);
    free(ck->fill);
    free(ck->spare);
    free(ck->image.p);
    free(ck->dir);
    free(ck);
    *pck = NULL;
    return rc;
}

void tf_ck_set_in_memory(tf_ck *ck, bool on)
{
    ck->in_memory = on;
}
