/* Checkpoint and resume of library runs (tf_config.checkpoint_dir): task identity, journal, snapshots, re-creation. */
#include "runtime.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt/ckpt.h"
#include "util/idle.h"

struct tf_rt_ck {
    char *dir;
    tf_ck *w;  /* the writer, opened by the first tf_run */
    int err;   /* latched: the run halts, every later tf_run fails with it */
    bool failed_logged;

    /* Per task of rank 0's table (grown with it). */
    uint64_t *key;
    uint32_t *parent; /* index of the task that submitted it, TF_NONE */
    uint32_t *kids;   /* tasks it has submitted so far */
    uint32_t cap;
    tf_idmap occ;     /* identity without the count -> submissions seen */

    /* The state loaded by resume (rows are tf_ck_state's tasks). */
    tf_ck_state st;
    bool loaded;
    tf_idmap bykey;   /* key -> row; a DONE row wins, then the first */
    tf_idmap bygid;   /* gid + 1 -> row */
    tf_idmap mapped;  /* gid + 1 of a row taken over -> table index */
    uint32_t *child, *sibling; /* first child row, next sibling row */
    uint32_t *roots;  /* rows done, taken over by tf_submit since the last
                         run: their children are re-created at the next */
    size_t nroots, rootcap;
    bool remapped;    /* an id means another task than in the state */
    uint64_t epoch;

    uint64_t next_ns;  /* monotonic time of the next periodic snapshot */
    uint64_t *depbuf;  /* scratch of the snapshot getter */
    uint32_t depcap;
};

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* idmap reserves key 0; gids start at 0 and keys may be anything. */
static uint64_t mkey(uint64_t k) { return k + 1 ? k + 1 : 1; }

/* ---- the loaded state ---- */

/* The directory holds snapshots or journals (a state a run would mix with). */
static bool holds_state(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        found = (!strncmp(n, "state-", 6) && strstr(n, ".h5")) ||
                (!strncmp(n, "journal-", 8) && len > 4 &&
                 !strcmp(n + len - 4, ".tfj"));
    }
    closedir(d);
    return found;
}

/* Lookups by key and gid, each row's children in row (creation) order. */
static int index_state(tf_rt_ck *ck)
{
    const tf_ck_state *st = &ck->st;
    if (st->n >= UINT32_MAX)
        return TF_ERANGE;
    uint32_t n = (uint32_t)st->n;
    ck->child = malloc(sizeof *ck->child * (n ? n : 1));
    ck->sibling = malloc(sizeof *ck->sibling * (n ? n : 1));
    if (!ck->child || !ck->sibling)
        return TF_ENOMEM;
    uint64_t top = 0;
    for (uint32_t i = 0; i < n; i++) {
        const tf_ck_task *t = &st->task[i];
        ck->child[i] = ck->sibling[i] = TF_NONE;
        if (tf_idmap_put(&ck->bygid, mkey(t->gid), i))
            return TF_ENOMEM;
        uint32_t had = tf_idmap_get(&ck->bykey, mkey(t->key));
        if ((had == TF_NONE ||
             (st->task[had].state != TF_TASK_DONE &&
              t->state == TF_TASK_DONE)) &&
            tf_idmap_put(&ck->bykey, mkey(t->key), i))
            return TF_ENOMEM;
        if (t->gid >> 32 && t->gid >> TF_RT_EPOCH_SHIFT > top)
            top = t->gid >> TF_RT_EPOCH_SHIFT;
    }
    for (uint32_t i = n; i-- > 0;) {
        if (st->task[i].parent == TF_CK_NONE)
            continue;
        uint32_t p = tf_idmap_get(&ck->bygid, mkey(st->task[i].parent));
        if (p != TF_NONE && p < i) {
            ck->sibling[i] = ck->child[p];
            ck->child[p] = i;
        }
    }
    /* Dynamic ids of this runtime must differ from every one stored. */
    ck->epoch = top + 1;
    return ck->epoch > TF_RT_EPOCH_MAX ? TF_ERANGE : 0;
}

int tf_rt_ck_init(tf_runtime *rt)
{
    if (rt->rank != 0 || !rt->cfg.checkpoint_dir)
        return 0;
    tf_rt_ck *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->dir = strdup(rt->cfg.checkpoint_dir))) {
        free(ck);
        return TF_ENOMEM;
    }
    tf_idmap_init(&ck->occ);
    tf_idmap_init(&ck->bykey);
    tf_idmap_init(&ck->bygid);
    tf_idmap_init(&ck->mapped);
    rt->ck = ck;
    if (!rt->cfg.resume) {
        /* A new run's journal would be replayed over the old state. */
        if (holds_state(ck->dir)) {
            tf_logf(&rt->log, TF_LOG_ERROR,
                    "%s holds the state of an earlier run: set resume to "
                    "finish it, or remove it to start over (nothing was "
                    "changed)",
                    ck->dir);
            ck->err = TF_EINVAL;
        }
        return 0;
    }
    char err[2048] = "";
    int rc = tf_ck_load(ck->dir, &rt->log, &ck->st, err, sizeof err);
    if (rc == TF_ENOENT) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "resume: no saved state in %s: every task runs", ck->dir);
        return 0;
    }
    if (!rc) {
        ck->loaded = true;
        rc = index_state(ck);
        if (rc == TF_ERANGE)
            snprintf(err, sizeof err, "too many tasks or resumed runs");
    }
    if (rc) {
        tf_logf(&rt->log, TF_LOG_ERROR,
                "cannot resume from %s: %s; nothing there was changed",
                ck->dir, err[0] ? err : tf_strerror(rc));
        ck->err = rc == TF_ENOMEM ? TF_ENOMEM : TF_EIO;
        return 0;
    }
    tf_logf(&rt->log, TF_LOG_INFO,
            "resume: %" PRIu64 " tasks in %s (generation %" PRIu64
            ", %" PRIu64 " journal records), epoch %" PRIu64,
            ck->st.n, ck->dir, ck->st.meta.generation, ck->st.replayed,
            ck->epoch);
    return 0;
}

uint64_t tf_rt_ck_epoch(const tf_runtime *rt)
{
    return rt->ck ? rt->ck->epoch : 0;
}

int tf_rt_ck_free(tf_runtime *rt)
{
    tf_rt_ck *ck = rt->ck;
    if (!ck)
        return 0;
    int rc = ck->w ? tf_ck_close(&ck->w) : 0;
    tf_ck_state_free(&ck->st);
    tf_idmap_free(&ck->occ);
    tf_idmap_free(&ck->bykey);
    tf_idmap_free(&ck->bygid);
    tf_idmap_free(&ck->mapped);
    free(ck->key);
    free(ck->parent);
    free(ck->kids);
    free(ck->child);
    free(ck->sibling);
    free(ck->roots);
    free(ck->depbuf);
    free(ck->dir);
    free(ck);
    rt->ck = NULL;
    return rc ? TF_EIO : 0;
}

/* ---- writing ---- */

/*
 * The state cannot be written (a full disk): say so once and halt the run
 * rather than go on without a way back. The previous snapshot stays valid.
 */
static void fail(tf_runtime *rt, int rc)
{
    tf_rt_ck *ck = rt->ck;
    if (!ck->err)
        ck->err = rc == TF_ENOMEM ? TF_ENOMEM : TF_EIO;
    if (!ck->failed_logged) {
        ck->failed_logged = true;
        const char *why = ck->w ? tf_ck_error(ck->w) : "";
        tf_logf(&rt->log, TF_LOG_ERROR,
                "cannot write the state in %s: %s; halting the run (the last "
                "saved state is kept)",
                ck->dir, why[0] ? why : tf_strerror(rc));
    }
    if (rt->in_run)
        tf_halt(rt);
}

int tf_rt_ck_prepare(tf_runtime *rt)
{
    tf_rt_ck *ck = rt->ck;
    if (!ck || ck->err || ck->w)
        return ck ? ck->err : 0;
    char err[1024] = "";
    tf_ck_opts o = {.sync_ms = 0,
                    .loaded_gen =
                        ck->st.fell_back ? ck->st.meta.generation : 0,
                    .log = rt->log};
    int rc = tf_ck_open(ck->dir, &o, &ck->w, err, sizeof err);
    if (rc) {
        tf_logf(&rt->log, TF_LOG_ERROR, "cannot write state into %s: %s",
                ck->dir, err[0] ? err : tf_strerror(rc));
        ck->err = rc == TF_ENOMEM ? TF_ENOMEM : TF_EIO;
    }
    return ck->err;
}

/* Task i of rank 0's table as a snapshot or a SUBMIT record stores it. */
static void get_task(void *user, uint64_t i, tf_ck_task *out)
{
    tf_runtime *rt = user;
    tf_rt_ck *ck = rt->ck;
    const tf_trec *r = &rt->rec[i];
    const tf_dag *dag = &rt->sched.dag;
    uint32_t nd = r->ndeps;
    if (nd > ck->depcap) {
        uint64_t *nb = realloc(ck->depbuf, nd * sizeof *nb);
        if (nb) {
            ck->depbuf = nb;
            ck->depcap = nd;
        } else {
            nd = 0; /* recorded without its edges rather than not at all */
        }
    }
    for (uint32_t k = 0; k < nd; k++) {
        uint32_t d;
        memcpy(&d, r->req + (size_t)k * 4, sizeof d);
        ck->depbuf[k] = rt->rec[d].gid;
    }
    tf_task_state st = tf_rt_public_state((tf_state)dag->state[i]);
    const char *name = rt->fns[r->fn].name;
    uint32_t p = ck->parent[i];
    *out = (tf_ck_task){
        .gid = r->gid,
        .key = ck->key[i],
        .parent = p == TF_NONE ? TF_CK_NONE : rt->rec[p].gid,
        .name = name,
        .name_len = (uint32_t)strlen(name),
        .cmd = r->req ? r->req + (size_t)r->ndeps * 4 : NULL,
        .cmd_len = r->in_len,
        .deps = ck->depbuf,
        .ndeps = nd,
        .out = st == TF_TASK_DONE ? r->out : NULL,
        .out_len = st == TF_TASK_DONE ? r->out_len : 0,
        .prio = dag->prio[i],
        .cores = dag->cores[i],
        .state = (uint8_t)st,
        .attempts = dag->attempts[i],
        .status = r->status,
        .rank = r->rank,
        .start_ns = r->start_ns,
        .end_ns = r->end_ns};
}

/* Hash of the registered function names, in order: the "source" of a run. */
static uint64_t source_hash(const tf_runtime *rt)
{
    uint64_t h = tf_ck_key(NULL, 0, NULL, 0);
    for (uint32_t i = 0; i < rt->nfns; i++)
        h = tf_ck_key(&h, sizeof h, rt->fns[i].name,
                      strlen(rt->fns[i].name) + 1);
    return h;
}

/*
 * Write a snapshot. Periodic (final false): skipped while the previous one
 * is still on its way to the disk. Final: waits for that one first and for
 * this one to be durable. Returns the latched error after a failure.
 */
static int snapshot(tf_runtime *rt, bool final)
{
    tf_rt_ck *ck = rt->ck;
    if (ck->err)
        return ck->err;
    int rc = final ? tf_ck_wait(ck->w) : 0;
    tf_ck_meta m = {.kind = TF_CK_LIB,
                    .source_hash = source_hash(rt),
                    .world_size = rt->size,
                    .time_ns = wall_ns()};
    snprintf(m.version, sizeof m.version, "%s", tf_version());
    uint64_t gen = tf_ck_generation(ck->w), n = rt->sched.dag.n;
    uint64_t t0 = tf_idle_clock_ns();
    if (!rc)
        rc = tf_ck_snapshot(ck->w, &m, n, get_task, rt);
    uint64_t t1 = tf_idle_clock_ns();
    if (!rc && final)
        rc = tf_ck_wait(ck->w);
    ck->next_ns = t1 + (uint64_t)rt->cfg.checkpoint_every_ms * 1000000u;
    if (rc == TF_ESTATE && !final)
        return 0; /* the previous one is still in flight: next tick */
    if (rc) {
        fail(rt, rc);
        return ck->err;
    }
    char detail[128];
    snprintf(detail, sizeof detail,
             "generation %" PRIu64 ", %" PRIu64 " tasks, %.1f ms", gen, n,
             (double)(t1 - t0) / 1e6);
    tf_rt_trace_note(rt, "checkpoint", detail);
    tf_logf(&rt->log, TF_LOG_DEBUG, "checkpoint: %s", detail);
    return 0;
}

void tf_rt_ck_tick(tf_runtime *rt, uint64_t now_ns)
{
    tf_rt_ck *ck = rt->ck;
    if (!ck || ck->err || !rt->cfg.checkpoint_every_ms || now_ns < ck->next_ns)
        return;
    snapshot(rt, false);
}

int tf_rt_ck_end(tf_runtime *rt)
{
    return rt->ck ? snapshot(rt, true) : 0;
}

void tf_rt_ck_finished(tf_runtime *rt, uint32_t t)
{
    tf_rt_ck *ck = rt->ck;
    if (!ck || ck->err)
        return;
    const tf_trec *r = &rt->rec[t];
    tf_ck_finish f = {.gid = r->gid,
                      .key = ck->key[t],
                      .attempt = rt->sched.dag.attempts[t],
                      .state = r->status ? TF_TASK_FAILED : TF_TASK_DONE,
                      .status = r->status,
                      .rank = r->rank,
                      .start_ns = r->start_ns,
                      .end_ns = r->end_ns,
                      .out = r->status ? NULL : r->out,
                      .out_len = r->status ? 0 : r->out_len};
    int rc = tf_ck_finished(ck->w, &f);
    if (rc)
        fail(rt, rc);
}

/* ---- identity and resume ---- */

/* Room for one more task in the per-task arrays. */
static int reserve(tf_rt_ck *ck, uint32_t n)
{
    if (n < ck->cap)
        return 0;
    uint32_t ncap = ck->cap ? ck->cap * 2 : 1024;
    uint64_t *k = realloc(ck->key, sizeof *k * ncap);
    if (k)
        ck->key = k;
    uint32_t *p = realloc(ck->parent, sizeof *p * ncap);
    if (p)
        ck->parent = p;
    uint32_t *c = realloc(ck->kids, sizeof *c * ncap);
    if (c)
        ck->kids = c;
    if (!k || !p || !c)
        return TF_ENOMEM;
    ck->cap = ncap;
    return 0;
}

int tf_rt_ck_match(tf_runtime *rt, uint32_t parent, uint32_t fn,
                   const uint32_t *deps, uint32_t ndeps, const void *in,
                   uint32_t in_len, tf_rt_match *m)
{
    tf_rt_ck *ck = rt->ck;
    *m = (tf_rt_match){0, TF_NONE, 0, NULL};
    if (!ck)
        return 0;
    if (reserve(ck, rt->sched.dag.n))
        return TF_ENOMEM;
    const char *name = rt->fns[fn].name;
    uint64_t h;
    if (parent == TF_NONE) {
        /* Identical submissions are told apart by their order. */
        h = tf_ck_key(name, strlen(name), in, in_len);
        for (uint32_t i = 0; i < ndeps; i++)
            h = tf_ck_key(&h, sizeof h, &ck->key[deps[i]], 8);
        uint32_t seen = tf_idmap_get(&ck->occ, mkey(h));
        seen = seen == TF_NONE ? 0 : seen;
        if (tf_idmap_put(&ck->occ, mkey(h), seen + 1))
            return TF_ENOMEM;
        m->key = tf_ck_key(&h, sizeof h, &seen, sizeof seen);
    } else {
        uint64_t pk[2] = {ck->key[parent], ck->kids[parent]++};
        h = tf_ck_key(pk, sizeof pk, name, strlen(name));
        m->key = tf_ck_key(&h, sizeof h, in, in_len);
    }
    if (!ck->loaded)
        return 0;
    uint32_t row = tf_idmap_get(&ck->bykey, mkey(m->key));
    /* A row is taken over once; a second equal task runs. */
    if (row == TF_NONE ||
        tf_idmap_get(&ck->mapped, mkey(ck->st.task[row].gid)) != TF_NONE)
        return 0;
    const tf_ck_task *r = &ck->st.task[row];
    if (r->state == TF_TASK_DONE) {
        if (r->out_len && !(m->out = malloc(r->out_len)))
            return TF_ENOMEM;
        if (r->out_len)
            memcpy(m->out, r->out, r->out_len);
        m->flags = TF_RT_NOOP;
    }
    m->row = row;
    return 0;
}

static int push(uint32_t **v, size_t *n, size_t *cap, uint32_t x);
static int recreate(tf_runtime *rt, const uint32_t *from, size_t nfrom);

int tf_rt_ck_added(tf_runtime *rt, uint32_t t, uint32_t parent,
                   tf_rt_match *m)
{
    tf_rt_ck *ck = rt->ck;
    if (!ck)
        return 0;
    ck->key[t] = m->key;
    ck->parent[t] = parent;
    ck->kids[t] = 0;
    int rc = 0;
    if (ck->loaded && parent == TF_NONE) {
        /*
         * An id that named another task in the state (the app submitted in
         * another order, or changed a task): journal records would be read
         * against the wrong rows, so the next run snapshots first.
         */
        uint32_t same = tf_idmap_get(&ck->bygid, mkey(rt->rec[t].gid));
        ck->remapped |= (same != TF_NONE && ck->st.task[same].key != m->key) ||
                        (m->row != TF_NONE &&
                         ck->st.task[m->row].gid != rt->rec[t].gid);
    }
    if (m->row != TF_NONE) {
        const tf_ck_task *r = &ck->st.task[m->row];
        rc = tf_idmap_put(&ck->mapped, mkey(r->gid), t);
        if (m->flags & TF_RT_NOOP) {
            tf_trec *rec = &rt->rec[t];
            rec->out = m->out;
            rec->out_len = r->out_len;
            rt->data_bytes += r->out_len;
            m->out = NULL;
            rec->status = r->status;
            rec->rank = r->rank;
            rec->start_ns = r->start_ns;
            rec->end_ns = r->end_ns;
            rt->sched.dag.attempts[t] =
                (uint8_t)(r->attempts > UINT8_MAX ? UINT8_MAX : r->attempts);
            if (!rc && parent != TF_NONE) {
                rc = recreate(rt, &m->row, 1);
            } else if (!rc && ck->child[m->row] != TF_NONE) {
                rc = push(&ck->roots, &ck->nroots, &ck->rootcap, m->row);
            }
        }
    }
    if (!rc && parent != TF_NONE && ck->w && !ck->err) {
        tf_ck_task row;
        get_task(rt, t, &row);
        int wrc = tf_ck_submitted(ck->w, &row);
        if (wrc)
            fail(rt, wrc);
    }
    free(m->out);
    m->out = NULL;
    if (rc && !ck->err)
        ck->err = rc; /* a later tf_run fails with it */
    return rc;
}

static int push(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        uint32_t *p = realloc(*v, nc * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        *v = p;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Re-create row c of the state, a child of a task done in the state. */
static int recreate_one(tf_runtime *rt, uint32_t c, uint32_t **deps,
                        uint32_t *dcap)
{
    tf_rt_ck *ck = rt->ck;
    const tf_ck_task *r = &ck->st.task[c];
    uint32_t parent = tf_idmap_get(&ck->mapped, mkey(r->parent));
    if (parent == TF_NONE ||
        tf_idmap_get(&ck->mapped, mkey(r->gid)) != TF_NONE)
        return 0; /* its parent is not here, or it is already */
    uint32_t fn = TF_NONE;
    for (uint32_t i = 0; i < rt->nfns && fn == TF_NONE; i++)
        if (strlen(rt->fns[i].name) == r->name_len &&
            !memcmp(rt->fns[i].name, r->name, r->name_len))
            fn = i;
    if (fn == TF_NONE || tf_rt_index_of(rt, r->gid) != TF_NONE) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "resume: task %" PRIu64 " of the state (submitted by task %" PRIu64
                ") not re-created: %s",
                r->gid, r->parent,
                fn == TF_NONE ? "its function is not registered"
                              : "its id is taken");
        return 0;
    }
    if (r->ndeps > *dcap) {
        uint32_t *p = realloc(*deps, r->ndeps * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        *deps = p;
        *dcap = r->ndeps;
    }
    uint32_t nd = 0;
    uint64_t unknown = TF_CK_NONE;
    for (uint32_t k = 0; k < r->ndeps; k++) {
        uint32_t d = tf_idmap_get(&ck->mapped, mkey(r->deps[k]));
        if (d == TF_NONE)
            unknown = r->deps[k];
        else
            (*deps)[nd++] = d;
    }
    bool done = r->state == TF_TASK_DONE;
    tf_rt_match m = {r->key, c, done ? TF_RT_NOOP : 0, NULL};
    /* A done task needs no input; one to run cannot without all of it. */
    unsigned flags = m.flags | (!done && unknown != TF_CK_NONE ? TF_RT_DOOMED : 0);
    if (done && r->out_len) {
        if (!(m.out = malloc(r->out_len)))
            return TF_ENOMEM;
        memcpy(m.out, r->out, r->out_len);
    }
    int rc = reserve(ck, rt->sched.dag.n);
    uint32_t t;
    if (!rc)
        rc = tf_rt_add_task(rt, r->gid, fn, r->prio, r->cores ? r->cores : 1,
                            -1, *deps, nd, r->cmd, r->cmd_len, flags, &t);
    if (rc) {
        free(m.out);
        return rc;
    }
    if (flags & TF_RT_DOOMED) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "resume: task %" PRIu64 " depends on task %" PRIu64
                ", which this run does not have: skipped",
                r->gid, unknown);
        rt->rec[t].status = TF_EDEP;
    }
    /* Its own descendants are in the list already (recreate collects them). */
    ck->key[t] = m.key;
    ck->parent[t] = parent;
    ck->kids[t] = 0;
    rc = tf_idmap_put(&ck->mapped, mkey(r->gid), t);
    if (done) {
        tf_trec *rec = &rt->rec[t];
        rec->out = m.out;
        rec->out_len = r->out_len;
        rt->data_bytes += r->out_len;
        rec->status = r->status;
        rec->rank = r->rank;
        rec->start_ns = r->start_ns;
        rec->end_ns = r->end_ns;
        rt->sched.dag.attempts[t] =
            (uint8_t)(r->attempts > UINT8_MAX ? UINT8_MAX : r->attempts);
    }
    return rc;
}

/*
 * A task done in the state does not run, so the tasks it submitted would
 * never be: re-create them, with their ids, done ones with their outputs;
 * and so on below done ones (a child that runs submits its own again).
 * Rows in creation order, so that every dependency comes first.
 */
static int recreate(tf_runtime *rt, const uint32_t *from, size_t nfrom)
{
    tf_rt_ck *ck = rt->ck;
    uint32_t *stack = NULL, *rows = NULL, *deps = NULL, dcap = 0;
    size_t sp = 0, scap = 0, n = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < nfrom && !rc; i++)
        rc = push(&stack, &sp, &scap, from[i]);
    while (!rc && sp) {
        uint32_t u = stack[--sp];
        for (uint32_t c = ck->child[u]; c != TF_NONE && !rc;
             c = ck->sibling[c]) {
            rc = push(&rows, &n, &cap, c);
            if (!rc && ck->st.task[c].state == TF_TASK_DONE)
                rc = push(&stack, &sp, &scap, c);
        }
    }
    if (!rc && n)
        qsort(rows, n, sizeof *rows, cmp_u32);
    for (size_t i = 0; i < n && !rc; i++)
        if (!i || rows[i] != rows[i - 1])
            rc = recreate_one(rt, rows[i], &deps, &dcap);
    free(stack);
    free(rows);
    free(deps);
    return rc;
}

int tf_rt_ck_begin(tf_runtime *rt)
{
    tf_rt_ck *ck = rt->ck;
    if (!ck)
        return 0;
    if (ck->err)
        return ck->err;
    int rc = recreate(rt, ck->roots, ck->nroots);
    ck->nroots = 0;
    ck->next_ns =
        tf_idle_clock_ns() + (uint64_t)rt->cfg.checkpoint_every_ms * 1000000u;
    if (!rc && ck->remapped) {
        /* Before any record of this run refers to an id by its new meaning. */
        ck->remapped = false;
        rc = snapshot(rt, true);
    }
    return rc;
}
