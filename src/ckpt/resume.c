/* The runtime's durable state, resuming side: task identity, matching against the loaded state, re-creating children of done tasks. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt_int.h"
#include "util/idle.h"

/* Lookups by key and gid, each row's children in row (creation) order. */
static int index_state(tf_ckstate *ck)
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
        if (tf_idmap_put(&ck->bygid, tf_ck_mkey(t->gid), i))
            return TF_ENOMEM;
        uint32_t had = tf_idmap_get(&ck->bykey, tf_ck_mkey(t->key));
        if ((had == TF_NONE ||
             (st->task[had].state != TF_TASK_DONE &&
              t->state == TF_TASK_DONE)) &&
            tf_idmap_put(&ck->bykey, tf_ck_mkey(t->key), i))
            return TF_ENOMEM;
        if (t->gid >> 32 && t->gid >> TF_TASKS_EPOCH_SHIFT > top)
            top = t->gid >> TF_TASKS_EPOCH_SHIFT;
    }
    for (uint32_t i = n; i-- > 0;) {
        if (st->task[i].parent == TF_CK_NONE)
            continue;
        uint32_t p = tf_idmap_get(&ck->bygid, tf_ck_mkey(st->task[i].parent));
        if (p != TF_NONE && p < i) {
            ck->sibling[i] = ck->child[p];
            ck->child[p] = i;
        }
    }
    /*
     * Rows whose output a task to run needs but the state lacks: rows come
     * in creation order, a task after its dependencies, so one pass from
     * the end marks every dependency of a row that runs.
     */
    ck->redo = calloc(n ? n : 1, 1);
    if (!ck->redo)
        return TF_ENOMEM;
    for (uint32_t i = n; i-- > 0;) {
        const tf_ck_task *t = &st->task[i];
        bool runs = t->state != TF_TASK_DONE ||
                    (t->status == TF_CK_OUT_UNSAVED && ck->redo[i]);
        for (uint32_t k = 0; runs && k < t->ndeps; k++) {
            uint32_t d = tf_idmap_get(&ck->bygid, tf_ck_mkey(t->deps[k]));
            if (d != TF_NONE && d < i)
                ck->redo[d] = 1;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        ck->redo[i] &= st->task[i].state == TF_TASK_DONE &&
                       st->task[i].status == TF_CK_OUT_UNSAVED;
    /* Dynamic ids of this runtime must differ from every one stored. */
    ck->epoch = top + 1;
    return ck->epoch > TF_TASKS_EPOCH_MAX ? TF_ERANGE : 0;
}

int tf_ck_resume_load(tf_ckstate *ck)
{
    char err[2048] = "";
    int rc = tf_ck_load(ck->dir, ck->log, &ck->st, err, sizeof err);
    if (rc == TF_ENOENT) {
        tf_logf(ck->log, TF_LOG_WARN,
                "resume: no saved state in %s (the earlier run ended before "
                "it wrote any)",
                ck->dir);
        return 0;
    }
    if (!rc) {
        ck->loaded = true;
        rc = index_state(ck);
        if (rc == TF_ERANGE)
            snprintf(err, sizeof err, "too many tasks or resumed runs");
    }
    if (rc) {
        tf_logf(ck->log, TF_LOG_ERROR,
                "cannot resume from %s: %s; nothing there was changed",
                ck->dir, err[0] ? err : tf_strerror(rc));
        return rc == TF_ENOMEM ? TF_ENOMEM : TF_EIO;
    }
    tf_logf(ck->log, TF_LOG_INFO,
            "resume: %" PRIu64 " tasks in %s (generation %" PRIu64
            ", %" PRIu64 " journal records), epoch %" PRIu64,
            ck->st.n, ck->dir, ck->st.meta.generation, ck->st.replayed,
            ck->epoch);
    return 0;
}

/* Room for task n in the per-task arrays. */
static int reserve(tf_ckstate *ck, uint32_t n)
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

/* The key of a task of tf_submit: identical submissions told apart by order. */
static int top_key(tf_ckstate *ck, const char *name, const uint32_t *deps,
                   uint32_t ndeps, const void *in, uint32_t in_len,
                   uint64_t *key)
{
    uint64_t h = tf_ck_key(name, strlen(name), in, in_len);
    for (uint32_t i = 0; i < ndeps; i++)
        h = tf_ck_key(&h, sizeof h, &ck->key[deps[i]], 8);
    uint32_t seen = tf_idmap_get(&ck->occ, tf_ck_mkey(h));
    seen = seen == TF_NONE ? 0 : seen;
    if (tf_idmap_put(&ck->occ, tf_ck_mkey(h), seen + 1))
        return TF_ENOMEM;
    *key = tf_ck_key(&h, sizeof h, &seen, sizeof seen);
    return 0;
}

int tf_ckstate_match(tf_ckstate *ck, const tf_tasks *tt,
                     const tf_registry *reg, uint32_t parent, uint32_t fn,
                     uint64_t key, const uint32_t *deps, uint32_t ndeps,
                     const void *in, uint32_t in_len, tf_ckmatch *m)
{
    *m = (tf_ckmatch){key, TF_NONE, 0, NULL};
    if (reserve(ck, tt->sched.dag.n))
        return TF_ENOMEM;
    const char *name = reg->fns[fn].name;
    if (key) {
        /* The caller's own identity (the command: @id and command). */
    } else if (parent == TF_NONE) {
        if (top_key(ck, name, deps, ndeps, in, in_len, &m->key))
            return TF_ENOMEM;
    } else {
        uint64_t pk[2] = {ck->key[parent], ck->kids[parent]++};
        uint64_t h = tf_ck_key(pk, sizeof pk, name, strlen(name));
        m->key = tf_ck_key(&h, sizeof h, in, in_len);
    }
    if (!ck->loaded)
        return 0;
    uint32_t row = tf_idmap_get(&ck->bykey, tf_ck_mkey(m->key));
    /* A row is taken over once; a second equal task runs. */
    if (row == TF_NONE ||
        tf_idmap_get(&ck->mapped, tf_ck_mkey(ck->st.task[row].gid)) != TF_NONE)
        return 0;
    const tf_ck_task *r = &ck->st.task[row];
    if (r->state == TF_TASK_DONE && !ck->redo[row]) {
        if (r->out_len && !(m->out = malloc(r->out_len)))
            return TF_ENOMEM;
        if (r->out_len)
            memcpy(m->out, r->out, r->out_len);
        m->flags = TF_TASKS_NOOP;
    }
    m->row = row;
    return 0;
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

/* Task t takes over row r of the state, done there: its stored outcome. */
static void take_outcome(tf_ckstate *ck, tf_tasks *tt, uint32_t t,
                         const tf_ck_task *r, void *out)
{
    tf_tasks_record(tt, t, r->rank, 0, r->start_ns, r->end_ns, 0);
    if (r->status == TF_CK_OUT_UNSAVED) {
        /* Nothing to run reads it (or it would run again): gone. */
        free(out);
        tf_tasks_release(tt, t, NULL, NULL);
    } else {
        tf_tasks_take_output(tt, t, out, out ? r->out_len : 0,
                             r->status == TF_CK_OUT_PACKED);
    }
    tt->sched.dag.attempts[t] =
        (uint8_t)(r->attempts > UINT8_MAX ? UINT8_MAX : r->attempts);
    (void)ck;
}

static int recreate(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg,
                    const uint32_t *from, size_t nfrom);

int tf_ckstate_added(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg,
                     uint32_t t, uint32_t parent, tf_ckmatch *m)
{
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
        uint32_t same = tf_idmap_get(&ck->bygid, tf_ck_mkey(tt->rec[t].gid));
        ck->remapped |= (same != TF_NONE && ck->st.task[same].key != m->key) ||
                        (m->row != TF_NONE &&
                         ck->st.task[m->row].gid != tt->rec[t].gid);
    }
    if (m->row != TF_NONE) {
        const tf_ck_task *r = &ck->st.task[m->row];
        rc = tf_idmap_put(&ck->mapped, tf_ck_mkey(r->gid), t);
        if (m->flags & TF_TASKS_NOOP) {
            take_outcome(ck, tt, t, r, m->out);
            m->out = NULL;
            if (!rc && parent != TF_NONE)
                rc = recreate(ck, tt, reg, &m->row, 1);
            else if (!rc && ck->child[m->row] != TF_NONE)
                rc = push(&ck->roots, &ck->nroots, &ck->rootcap, m->row);
        }
    }
    if (!rc && parent != TF_NONE && ck->w && !ck->err) {
        tf_ck_task row;
        tf_ck_row_of(ck, tt, reg, t, &row);
        int wrc = tf_ck_submitted(ck->w, &row);
        if (wrc)
            tf_ck_fail(ck, wrc);
    }
    free(m->out);
    m->out = NULL;
    if (rc && !ck->err)
        ck->err = rc; /* a later tf_run fails with it */
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Row c's dependencies that this run has, into *deps; *unknown: one it lacks. */
static int map_deps(tf_ckstate *ck, const tf_ck_task *r, uint32_t **deps,
                    uint32_t *dcap, uint32_t *nd, uint64_t *unknown)
{
    if (r->ndeps > *dcap) {
        uint32_t *p = realloc(*deps, r->ndeps * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        *deps = p;
        *dcap = r->ndeps;
    }
    *nd = 0;
    *unknown = TF_CK_NONE;
    for (uint32_t k = 0; k < r->ndeps; k++) {
        uint32_t d = tf_idmap_get(&ck->mapped, tf_ck_mkey(r->deps[k]));
        if (d == TF_NONE)
            *unknown = r->deps[k];
        else
            (*deps)[(*nd)++] = d;
    }
    return 0;
}

/* Re-create row c of the state, a child of a task done in the state. */
static int recreate_one(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg,
                        uint32_t c, uint32_t **deps, uint32_t *dcap)
{
    const tf_ck_task *r = &ck->st.task[c];
    uint32_t parent = tf_idmap_get(&ck->mapped, tf_ck_mkey(r->parent));
    if (parent == TF_NONE ||
        tf_idmap_get(&ck->mapped, tf_ck_mkey(r->gid)) != TF_NONE)
        return 0; /* its parent is not here, or it is already */
    uint32_t fn = tf_registry_find_bytes(reg, r->name, r->name_len);
    if (fn == TF_NONE_FN || tf_tasks_index_of(tt, r->gid) != TF_NONE) {
        tf_logf(ck->log, TF_LOG_WARN,
                "resume: task %" PRIu64 " of the state (submitted by task %" PRIu64
                ") not re-created: %s",
                r->gid, r->parent,
                fn == TF_NONE_FN ? "its function is not registered"
                                 : "its id is taken");
        return 0;
    }
    uint32_t nd;
    uint64_t unknown;
    int rc = map_deps(ck, r, deps, dcap, &nd, &unknown);
    bool done = r->state == TF_TASK_DONE && !ck->redo[c];
    void *out = NULL;
    /* A done task needs no input; one to run cannot without all of it. */
    unsigned flags = done ? TF_TASKS_NOOP
                     : unknown != TF_CK_NONE ? TF_TASKS_DOOMED : 0;
    if (!rc && done && r->out_len) {
        if (!(out = malloc(r->out_len)))
            rc = TF_ENOMEM;
        else
            memcpy(out, r->out, r->out_len);
    }
    if (!rc)
        rc = reserve(ck, tt->sched.dag.n);
    uint32_t t;
    if (!rc)
        rc = tf_tasks_add(tt, r->gid, fn, r->prio, r->cores ? r->cores : 1,
                          -1, *deps, NULL, nd, r->cmd, r->cmd_len, flags, &t);
    if (rc) {
        free(out);
        return rc;
    }
    if (flags & TF_TASKS_DOOMED) {
        tf_logf(ck->log, TF_LOG_WARN,
                "resume: task %" PRIu64 " depends on task %" PRIu64
                ", which this run does not have: skipped",
                r->gid, unknown);
        tt->rec[t].status = TF_EDEP;
    }
    /* Its own descendants are in the list already (recreate collects them). */
    ck->key[t] = r->key;
    ck->parent[t] = parent;
    ck->kids[t] = 0;
    rc = tf_idmap_put(&ck->mapped, tf_ck_mkey(r->gid), t);
    if (done)
        take_outcome(ck, tt, t, r, out);
    return rc;
}

/*
 * A task done in the state does not run, so the tasks it submitted would
 * never be: re-create them, with their ids, done ones with their outputs;
 * and so on below done ones (a child that runs submits its own again).
 * Rows in creation order, so that every dependency comes first.
 */
static int recreate(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg,
                    const uint32_t *from, size_t nfrom)
{
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
            rc = recreate_one(ck, tt, reg, rows[i], &deps, &dcap);
    free(stack);
    free(rows);
    free(deps);
    return rc;
}

int tf_ckstate_settle(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg)
{
    if (ck->err)
        return ck->err;
    int rc = recreate(ck, tt, reg, ck->roots, ck->nroots);
    ck->nroots = 0;
    if (!rc && ck->remapped) {
        /* Before any record of this run refers to an id by its new meaning. */
        ck->remapped = false;
        rc = tf_ck_snapshot_now(ck, tt, reg, true);
    }
    if (rc && !ck->err)
        ck->err = rc;
    return rc;
}

int tf_ckstate_begin(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg)
{
    ck->next_ns = tf_idle_clock_ns() + (uint64_t)ck->every_ms * 1000000u;
    return tf_ckstate_settle(ck, tt, reg);
}
