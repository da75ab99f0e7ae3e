/* Rank 0's task table: records beside the scheduler, adding tasks all or nothing, ids, outcomes. */
#include "tasks.h"

#include <stdlib.h>

int tf_tasks_init(tf_tasks *tt, int retries)
{
    memset(tt, 0, sizeof *tt);
    tt->retries = retries;
    tf_idmap_init(&tt->ids);
    return tf_sched_init(&tt->sched);
}

void tf_tasks_free(tf_tasks *tt)
{
    for (uint32_t t = 0; t < tt->sched.dag.n; t++) {
        free(tt->rec[t].req);
        free(tt->rec[t].out);
    }
    free(tt->rec);
    tf_idmap_free(&tt->ids);
    tf_sched_free(&tt->sched);
    memset(tt, 0, sizeof *tt);
}

uint32_t tf_tasks_index_of(const tf_tasks *tt, uint64_t gid)
{
    if (gid >> 32)
        return tf_idmap_get(&tt->ids, gid);
    /* Rank 0's own submissions use their index as id; check it is one. */
    if (gid < tt->sched.dag.n && tt->rec[gid].gid == gid)
        return (uint32_t)gid;
    return TF_NONE;
}

int tf_tasks_add(tf_tasks *tt, uint64_t gid, uint32_t fn, int32_t prio,
                 uint16_t cores, int retries, const uint32_t *deps,
                 uint32_t ndeps, const void *in, uint32_t in_len,
                 unsigned flags, uint32_t *idx)
{
    tf_sched *s = &tt->sched;
    if (s->dag.n == tt->rcap) {
        uint32_t ncap = tt->rcap ? tt->rcap * 2 : 1024;
        tf_trec *p = realloc(tt->rec, (size_t)ncap * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        tt->rec = p;
        tt->rcap = ncap;
    }
    uint8_t *req = NULL;
    size_t dep_bytes = (size_t)ndeps * sizeof(uint32_t);
    if (ndeps || in_len) {
        req = malloc(dep_bytes + in_len);
        if (!req)
            return TF_ENOMEM;
        if (ndeps)
            memcpy(req, deps, dep_bytes);
        if (in_len)
            memcpy(req + dep_bytes, in, in_len);
    }
    if (retries < 0)
        retries = tt->retries;
    uint32_t t;
    int rc = tf_sched_add_task(s, prio, cores, (uint8_t)retries, &t);
    if (rc)
        goto fail_with_req;
    for (uint32_t i = 0; i < ndeps && !rc; i++)
        rc = tf_sched_add_dep(s, deps[i], t);
    if (!rc && (flags & TF_TASKS_DOOMED))
        rc = tf_sched_doom(s, t);
    if (!rc && (flags & TF_TASKS_NOOP))
        rc = tf_sched_set_noop(s, t);
    /* Room for its id first: once sealed, nothing may fail. */
    if (!rc && gid >> 32)
        rc = tf_idmap_reserve(&tt->ids);
    /* Dependencies are older tasks, so sealing costs a scan of its edges. */
    if (!rc && !tt->batching)
        rc = tf_sched_seal(s, NULL, 0, NULL);
    if (rc)
        goto fail_with_task;
    if (gid >> 32)
        tf_idmap_put(&tt->ids, gid, t); /* reserved: cannot fail */
    else
        gid = t;
    tt->rec[t] = (tf_trec){gid, req, NULL, fn, in_len, 0, ndeps, 0, -1, 0, 0, 0};
    tt->data_bytes += dep_bytes + in_len;
    *idx = t;
    return 0;

fail_with_task:
    tf_sched_drop_held(s);
fail_with_req:
    free(req);
    return rc;
}

void tf_tasks_drop_held(tf_tasks *tt)
{
    for (uint32_t t = tt->sched.sealed; t < tt->sched.dag.n; t++) {
        tf_trec *r = &tt->rec[t];
        tt->data_bytes -= (size_t)r->ndeps * 4 + r->in_len;
        free(r->req); /* rank 0's own tasks: no dynamic id to forget */
    }
    tf_sched_drop_held(&tt->sched);
}

tf_task_state tf_tasks_public_state(tf_state st)
{
    switch (st) {
    case TF_ST_HELD: return TF_TASK_HELD;
    case TF_ST_PENDING: return TF_TASK_PENDING;
    case TF_ST_READY: return TF_TASK_READY;
    case TF_ST_DISPATCHED:
    case TF_ST_PARKED: return TF_TASK_DISPATCHED;
    case TF_ST_DONE: return TF_TASK_DONE;
    case TF_ST_FAILED: return TF_TASK_FAILED;
    default: return TF_TASK_SKIPPED;
    }
}

void tf_tasks_record(tf_tasks *tt, uint32_t t, int rank, int32_t status,
                     uint64_t start_ns, uint64_t end_ns, uint16_t slot,
                     void *out, uint32_t out_len)
{
    tf_trec *r = &tt->rec[t];
    free(r->out);
    tt->data_bytes += (size_t)out_len - r->out_len;
    r->out = out;
    r->out_len = out_len;
    r->status = status;
    r->rank = rank;
    r->start_ns = start_ns;
    r->end_ns = end_ns;
    r->slot = slot;
}

void tf_tasks_info(const tf_tasks *tt, uint32_t t, tf_task_info *info)
{
    const tf_trec *r = &tt->rec[t];
    *info = (tf_task_info){
        tf_tasks_public_state((tf_state)tt->sched.dag.state[t]),
        r->status,
        r->rank,
        tt->sched.dag.attempts[t],
        r->start_ns,
        r->end_ns};
}

size_t tf_tasks_bytes(const tf_tasks *tt)
{
    return (size_t)tt->rcap * sizeof *tt->rec + tt->data_bytes;
}

bool tf_tasks_new_failures(tf_tasks *tt)
{
    const tf_sched *s = &tt->sched;
    uint64_t bad = (uint64_t)s->count[TF_ST_FAILED] + s->count[TF_ST_SKIPPED];
    bool more = bad > tt->bad_reported;
    tt->bad_reported = bad;
    return more;
}
