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
    bool done = f->state == TF_CK_DONE;
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
        (t->state == TF_CK_DONE || f->attempt < t->attempts))
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

/* The whole file in a new buffer (malloc's alignment suits the records). */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return e;
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* shorter than it was a moment ago: use what is there */
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = got;
    return 0;
}

/*
 * Replays journal jid from byte from (0: after its header) up to its end or
 * its first bad record, which a warning names. A journal that cannot be read
 * at all is skipped with a warning: later journals may still be good.
 */
static int replay(const char *dir, uint64_t jid, uint64_t from, builder *b,
                  storage *s, uint64_t *replayed, const tf_logger *log)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    tf_ck_journal_path(path, sizeof path, dir, jid);
    int e = slurp(path, &buf, &len);
    if (e == ENOMEM)
        return TF_ENOMEM;
    if (e) {
        if (log)
            tf_logf(log, TF_CK_LOG_WARN, "checkpoint: %s: cannot read: %s",
                    path, strerror(e));
        return 0;
    }
    if (keep_buffer(s, buf)) {
        free(buf);
        return TF_ENOMEM;
    }
    uint64_t hid;
    const char *why = len ? tf_ck_jr_check_header(buf, len, &hid) : NULL;
    if (!why && len && hid != jid)
        why = "its header names another journal";
    if (why || !len) {
        /* An empty journal is one a crash caught before its header. */
        if (why && log)
            tf_logf(log, TF_CK_LOG_WARN, "checkpoint: %s: %s; skipped", path,
                    why);
        return 0;
    }
    size_t pos = from ? from : TF_CK_JHDR;
    if (pos > len) /* the snapshot covers records that never reached disk */
        return 0;
    if (pos < TF_CK_JHDR || pos % 8) {
        if (log)
            tf_logf(log, TF_CK_LOG_WARN,
                    "checkpoint: %s: the snapshot's position %zu is not a "
                    "record boundary; journal skipped",
                    path, pos);
        return 0;
    }
    for (;;) {
        tf_ck_jrec r;
        int k = tf_ck_jr_next(buf, len, &pos, &r, &why);
        if (k == TF_CK_JR_END)
            return 0;
        if (k != TF_CK_JR_OK) {
            if (log)
                tf_logf(log, TF_CK_LOG_WARN,
                        "checkpoint: %s: %s at offset %zu; the %zu bytes "
                        "from there on are ignored",
                        path, why, pos, len - pos);
            return 0;
        }
        int rc = 0;
        if (r.type == TF_CK_REC_FINISH)
            rc = apply_finish(b, &r.fin);
        else if (find(b, r.task.gid) == UINT64_MAX)
            rc = add(b, &r.task);
        if (rc)
            return rc;
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

/* The newest snapshot that reads and checks out, into s->snap. */
static int pick_snapshot(const char *dir, const tf_ck_dir *d, storage *s,
                         bool *fell_back, const tf_logger *log, char *err,
                         size_t errlen)
{
    char reasons[1024] = "";
    for (size_t k = d->ngen; k-- > 0;) {
        char path[PATH_MAX], why[512];
        tf_ck_state_path(path, sizeof path, dir, d->gen[k]);
        int rc = tf_ck_snap_read(path, &s->snap, why, sizeof why);
        if (rc == TF_ENOMEM) {
            snprintf(err, errlen, "%s", why);
            return rc;
        }
        if (!rc)
            return 0;
        *fell_back = true;
        size_t used = strlen(reasons);
        snprintf(reasons + used, sizeof reasons - used, "%s%s",
                 used ? "; " : "", why);
        if (log && k > 0)
            tf_logf(log, TF_CK_LOG_WARN,
                    "checkpoint: %s; using the previous generation", why);
    }
    snprintf(err, errlen, "no usable snapshot in %s: %s", dir, reasons);
    return TF_EIO;
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
        snprintf(err, errlen, "%s: cannot list the directory", dir);
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
            goto out;
        /* The builder takes over the snapshot's task array. */
        b.task = s->snap.task;
        b.n = b.cap = s->snap.n;
        s->snap.task = NULL;
        first_jid = s->snap.meta.journal_id;
        first_pos = s->snap.meta.journal_pos;
    }
    uint64_t ns = 2048;
    while (ns < 2 * b.n)
        ns *= 2;
    if ((rc = rehash(&b, ns)))
        goto out;
    for (size_t k = 0; k < d.njid; k++) {
        if (d.jid[k] < first_jid)
            continue;
        rc = replay(dir, d.jid[k], d.jid[k] == first_jid ? first_pos : 0, &b, s,
                    &replayed, log);
        if (rc)
            goto out;
    }
out:
    tf_ck_dir_free(&d);
    free(b.slot);
    if (rc) {
        if (rc == TF_ENOMEM)
            snprintf(err, errlen, "%s: out of memory loading the state", dir);
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
