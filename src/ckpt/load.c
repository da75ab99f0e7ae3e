/* Loading: the newest valid snapshot (or the one before), journals on top. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_int.h"

/* What a loaded state owns; every task pointer points into it. */
typedef struct storage {
    tf_ck_snap snap; /* its task array is handed to the state */
    uint8_t **jbuf;  /* journal contents: replayed records point here */
    size_t njbuf, jcap;
} storage;

/* The state being built: tasks, and an index gid -> task. */
typedef struct builder {
    tf_ck_task *task;
    uint64_t n, cap;
    uint64_t *slot; /* open addressing: index + 1, 0 = empty */
    uint64_t nslot; /* a power of two, at least 2 n */
} builder;

static uint64_t hash(uint64_t gid, uint64_t mask)
{
    return (gid * 0x9E3779B97F4A7C15ull >> 17) & mask;
}

static uint64_t *find_slot(const builder *b, uint64_t gid)
{
    uint64_t mask = b->nslot - 1, h = hash(gid, mask);
    while (b->slot[h] && b->task[b->slot[h] - 1].gid != gid)
        h = (h + 1) & mask;
    return &b->slot[h];
}

/* Index of gid's task, or UINT64_MAX. */
static uint64_t find(const builder *b, uint64_t gid)
{
    uint64_t s = *find_slot(b, gid);
    return s ? s - 1 : UINT64_MAX;
}

static int rehash(builder *b, uint64_t nslot)
{
    uint64_t *old = b->slot;
    b->slot = calloc(nslot, sizeof *b->slot);
    if (!b->slot) {
        b->slot = old;
        return TF_ENOMEM;
    }
    b->nslot = nslot;
    free(old);
    /* A snapshot never holds a gid twice; if a damaged one did, the later
       row is simply not indexed. */
    for (uint64_t i = 0; i < b->n; i++) {
        uint64_t *s = find_slot(b, b->task[i].gid);
        if (!*s)
            *s = i + 1;
    }
    return 0;
}

/* Appends t (its pointers must stay valid: they point into storage). */
static int add(builder *b, const tf_ck_task *t)
{
    if (b->n == b->cap) {
        uint64_t c = b->cap ? 2 * b->cap : 1024;
        tf_ck_task *p = realloc(b->task, c * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        b->task = p;
        b->cap = c;
    }
    if (2 * (b->n + 1) > b->nslot) {
        int rc = rehash(b, b->nslot ? 2 * b->nslot : 2048);
        if (rc)
            return rc;
    }
    b->task[b->n] = *t;
    *find_slot(b, t->gid) = ++b->n;
    return 0;
}

/*
 * A finished attempt. Same gid and key: a later (or the same) attempt
 * replaces the outcome unless the task is DONE already, since a result once
 * recorded is final. Same gid, other key: the task file changed under a
 * resumed run and the record is about the new task, which replaces the old
 * outcome. Unknown gid: a row with what the record knows.
 */
static int apply_finish(builder *b, const tf_ck_finish *f)
{
    uint64_t i = find(b, f->gid);
    bool done = f->state == TF_TASK_DONE;
    if (i == UINT64_MAX) {
        tf_ck_task t;
        memset(&t, 0, sizeof t);
        t.gid = f->gid;
        t.key = f->key;
        t.parent = TF_CK_NONE;
        t.cores = 1;
        return add(b, &t) ? TF_ENOMEM : apply_finish(b, f);
    }
    tf_ck_task *t = &b->task[i];
    if (t->key == f->key &&
        (t->state == TF_TASK_DONE || f->attempt < t->attempts))
        return 0;
    t->key = f->key;
    t->state = f->state;
    t->attempts = f->attempt;
    t->status = f->status;
    t->rank = f->rank;
    t->start_ns = f->start_ns;
    t->end_ns = f->end_ns;
    t->out = done ? f->out : NULL;
    t->out_len = done ? f->out_len : 0;
    return 0;
}

static int keep_buffer(storage *s, uint8_t *buf)
{
    if (s->njbuf == s->jcap) {
        size_t c = s->jcap ? 2 * s->jcap : 8;
        uint8_t **p = realloc(s->jbuf, c * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        s->jbuf = p;
        s->jcap = c;
    }
    s->jbuf[s->njbuf++] = buf;
    return 0;
}

/* Bytes read at a time: few system calls, little read past a bad record. */
#define JREAD_CHUNK ((size_t)1 << 20)

/* What reading a journal's records gave. */
typedef struct jbytes {
    uint8_t *buf; /* bytes [from, from + len) of the file; malloc's
                     alignment suits the records */
    size_t len;
    int err; /* 0, or the errno (ENOMEM too) that stopped the reading at
                from + len, after the last whole record */
} jbytes;

/*
 * Reads the records of a journal of size bytes from byte from (within it)
 * to the end, or to the first record whose header is impossible or whose
 * length runs past the end of the file: a record's bytes are read only
 * once its header says they can be there, so memory grows with the
 * records, never with what a length field claims or with a hole in the
 * file (a sparse journal of 1 TiB costs one read). tf_ck_jr_next then
 * checks every record and reports the one that stopped the reading.
 */
static void read_records(int fd, uint64_t from, uint64_t size, jbytes *j)
{
    uint64_t avail = size - from;
    size_t cap = 0, at = 0; /* at: the first record not yet seen whole */
    memset(j, 0, sizeof *j);
    for (;;) {
        size_t need; /* bytes buf must hold to go on */
        if (j->len - at < TF_CK_RHDR) {
            need = at + TF_CK_RHDR;
        } else {
            size_t ext = tf_ck_jr_extent(j->buf + at);
            if (!ext || ext > avail - at)
                return;
            if (j->len - at >= ext) {
                at += ext;
                continue;
            }
            need = at + ext;
        }
        if (need > avail)
            return; /* the file ends inside it: torn */
        uint64_t want =
            need - j->len < JREAD_CHUNK ? j->len + JREAD_CHUNK : need;
        if (want > avail)
            want = avail;
        if (want > cap) {
            uint64_t ncap = 2 * (uint64_t)cap > want ? 2 * (uint64_t)cap : want;
            ncap = ncap < avail ? ncap : avail;
            uint8_t *nb =
                ncap <= SIZE_MAX ? realloc(j->buf, (size_t)ncap) : NULL;
            if (!nb) {
                j->len = at;
                j->err = ENOMEM;
                return;
            }
            j->buf = nb;
            cap = (size_t)ncap;
        }
        while (j->len < want) {
            ssize_t r = pread(fd, j->buf + j->len, (size_t)want - j->len,
                              (off_t)(from + j->len));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                j->len = at;
                j->err = errno;
                return;
            }
            if (r == 0)
                return; /* shorter than it was a moment ago */
            j->len += (size_t)r;
        }
    }
}

/* A journal's bytes from offset at on are not replayed: the warning. */
static void cut_at(const tf_logger *log, const char *path, const char *why,
                   uint64_t at, uint64_t size)
{
    if (log)
        tf_logf(log, TF_LOG_WARN,
                "checkpoint: %s: %s at offset %" PRIu64 "; the %" PRIu64
                " bytes from there on are ignored",
                path, why, at, size > at ? size - at : 0);
}

/*
 * Replays journal jid from byte from (0: after its header) up to its end or
 * its first bad record, which a warning names with its offset, as it does
 * the record where memory ran out or a read failed. A journal that cannot
 * be read at all, or whose header is bad, is skipped with a warning: later
 * journals may still be good.
 */
static void replay(const char *dir, uint64_t jid, uint64_t from, builder *b,
                   storage *s, uint64_t *replayed, const tf_logger *log)
{
    char path[PATH_MAX];
    uint8_t hdr[TF_CK_JHDR];
    struct stat st;
    tf_ck_journal_path(path, sizeof path, dir, jid);
    /* O_NONBLOCK: a FIFO under a journal's name must not block the open;
       anything but a regular file is refused before it is read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    ssize_t got = -1;
    const char *not_file = NULL;
    if (fd >= 0 && !fstat(fd, &st) &&
        !(not_file = S_ISREG(st.st_mode) ? NULL : "not a regular file"))
        while ((got = pread(fd, hdr, sizeof hdr, 0)) < 0 && errno == EINTR)
            ;
    if (got < 0) {
        if (log)
            tf_logf(log, TF_LOG_WARN, "checkpoint: %s: cannot read: %s",
                    path, not_file ? not_file : strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    uint64_t size = (uint64_t)st.st_size, hid;
    const char *why =
        got ? tf_ck_jr_check_header(hdr, (size_t)got, &hid) : NULL;
    if (!why && got && hid != jid)
        why = "its header names another journal";
    uint64_t pos = from ? from : TF_CK_JHDR;
    /* An empty journal is one a crash caught before its header; a
       position past the end, records the snapshot has that never reached
       the disk. */
    if (why || !got || pos > size) {
        if (why && log)
            tf_logf(log, TF_LOG_WARN, "checkpoint: %s: %s; skipped", path,
                    why);
        close(fd);
        return;
    }
    if (pos < TF_CK_JHDR || pos % 8) {
        if (log)
            tf_logf(log, TF_LOG_WARN,
                    "checkpoint: %s: the snapshot's position %" PRIu64
                    " is not a record boundary; journal skipped",
                    path, pos);
        close(fd);
        return;
    }
    jbytes j;
    read_records(fd, pos, size, &j);
    close(fd);
    if (j.buf && keep_buffer(s, j.buf)) {
        free(j.buf);
        cut_at(log, path, "out of memory", pos, size);
        return;
    }
    for (size_t at = 0;;) {
        tf_ck_jrec r;
        size_t rec = at;
        int k = tf_ck_jr_next(j.buf, j.len, &at, &r, &why);
        if (k == TF_CK_JR_END && j.err)
            cut_at(log, path,
                   j.err == ENOMEM ? "out of memory" : strerror(j.err),
                   pos + at, size);
        if (k == TF_CK_JR_END)
            return;
        if (k != TF_CK_JR_OK) {
            cut_at(log, path, why, pos + at, size);
            return;
        }
        int rc = 0;
        if (r.type == TF_CK_REC_FINISH)
            rc = apply_finish(b, &r.fin);
        else if (find(b, r.task.gid) == UINT64_MAX)
            rc = add(b, &r.task);
        if (rc) {
            cut_at(log, path, "out of memory", pos + rec, size);
            return;
        }
        ++*replayed;
    }
}

static void free_storage(storage *s)
{
    if (!s)
        return;
    tf_ck_snap_free(&s->snap);
    for (size_t i = 0; i < s->njbuf; i++)
        free(s->jbuf[i]);
    free(s->jbuf);
    free(s);
}

/*
 * The newest snapshot that reads and checks out, into s->snap. Any failure
 * of one, running out of memory included, is that file's: named in a
 * warning, and the previous generation tried. None usable: TF_EIO with
 * every file's reason in err (TF_ENOMEM if memory was the only reason).
 */
static int pick_snapshot(const char *dir, const tf_ck_dir *d, storage *s,
                         bool *fell_back, const tf_logger *log, char *err,
                         size_t errlen)
{
    char reasons[1024] = "";
    bool only_memory = true;
    for (size_t k = d->ngen; k-- > 0;) {
        char path[PATH_MAX], why[512];
        tf_ck_state_path(path, sizeof path, dir, d->gen[k]);
        int rc = tf_ck_snap_read(path, &s->snap, why, sizeof why);
        if (!rc)
            return 0;
        *fell_back = true;
        only_memory &= rc == TF_ENOMEM;
        size_t used = strlen(reasons);
        snprintf(reasons + used, sizeof reasons - used, "%s%s",
                 used ? "; " : "", why);
        if (log && k > 0)
            tf_logf(log, TF_LOG_WARN,
                    "checkpoint: %s; using the previous generation", why);
    }
    snprintf(err, errlen, "no usable snapshot in %s: %s", dir, reasons);
    return only_memory ? TF_ENOMEM : TF_EIO;
}

int tf_ck_load(const char *dir, const tf_logger *log, tf_ck_state *st,
               char *err, size_t errlen)
{
    /* On error st is empty, so tf_ck_state_free on it is harmless. */
    memset(st, 0, sizeof *st);
    tf_ck_dir d;
    int rc = tf_ck_dir_scan(dir, &d);
    if (rc == TF_ENOENT || (!rc && !d.ngen && !d.njid)) {
        snprintf(err, errlen, "%s: no checkpoint state there", dir);
        if (!rc)
            tf_ck_dir_free(&d);
        return TF_ENOENT;
    }
    if (rc) {
        snprintf(err, errlen, "%s: %s", dir,
                 rc == TF_ENOMEM ? "out of memory listing the directory"
                                 : "cannot list the directory");
        return rc;
    }
    storage *s = calloc(1, sizeof *s);
    builder b;
    memset(&b, 0, sizeof b);
    bool fell_back = false;
    uint64_t replayed = 0, first_jid = 0, first_pos = 0;
    if (!s) {
        rc = TF_ENOMEM;
        goto out;
    }
    if (d.ngen) {
        rc = pick_snapshot(dir, &d, s, &fell_back, log, err, errlen);
        if (rc)
            goto out_with_err;
        /* The builder takes over the snapshot's task array. */
        b.task = s->snap.task;
        b.n = b.cap = s->snap.n;
        s->snap.task = NULL;
        first_jid = s->snap.meta.journal_id;
        first_pos = s->snap.meta.journal_pos;
    }
    /* b.n is bounded by the snapshot file's size (tf_ck_snap_read). */
    uint64_t ns = 2048;
    while (ns < 2 * b.n)
        ns *= 2;
    if ((rc = rehash(&b, ns)))
        goto out;
    for (size_t k = 0; k < d.njid; k++)
        if (d.jid[k] >= first_jid)
            replay(dir, d.jid[k], d.jid[k] == first_jid ? first_pos : 0, &b, s,
                   &replayed, log);
out:
    if (rc == TF_ENOMEM)
        snprintf(err, errlen, "%s: out of memory loading the state", dir);
out_with_err:
    tf_ck_dir_free(&d);
    free(b.slot);
    if (rc) {
        free(b.task);
        free_storage(s);
        return rc;
    }
    memset(st, 0, sizeof *st);
    st->meta = s->snap.meta;
    st->n = b.n;
    st->task = b.task;
    st->replayed = replayed;
    st->fell_back = fell_back;
    st->storage_ = s;
    return 0;
}

void tf_ck_state_free(tf_ck_state *st)
{
    if (!st)
        return;
    free(st->task);
    free_storage(st->storage_);
    memset(st, 0, sizeof *st);
}
