/* Rank 0 takes in what workers report: ended attempts, tasks given back or moved, tasks submitted by tasks. */
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "sched_loop.h"

/* An attempt of task t ended on `rank`: record it, journal it, release. */
static int done(tf_master *m, uint32_t t, int rank, int32_t status,
                uint64_t t0, uint64_t t1, uint16_t slot)
{
    tf_runtime *rt = m->rt;
    int rc = tf_master_fenced(m);
    if (rc)
        return rc;
    tf_tasks_record(&rt->tasks, t, rank, status, t0, t1, slot);
    if (rt->ck)
        tf_ckstate_finished(rt->ck, &rt->tasks, t);
    /* Windows follow durations; a thief's report counts for the thief. */
    tf_sched_observe(&rt->tasks.sched, tf_rt_worker_of(rt, rank),
                     t1 > t0 ? t1 - t0 : 0);
    if (status)
        return tf_sched_task_failed(&rt->tasks.sched, t, status);
    tf_sched_learn(&rt->tasks.sched, t, t1 > t0 ? t1 - t0 : 0);
    rc = tf_sched_task_done(&rt->tasks.sched, t);
    if (!rc) {
        tf_master_fire(m, TF_RUN_DONE, t, 0);
        tf_master_ended(m, t);
    }
    return rc;
}

/*
 * A task submitted from inside task `parent`. An unknown dependency cannot
 * be reported to the submitter any more, so the child is added doomed: it
 * is SKIPPED with status TF_EDEP and the run goes on. On resume, a child
 * the state has done is done at once, with its stored output.
 */
static int submitted(tf_master *m, int rank, const tf_wire_submit *sb,
                     const void *dgid, const void *in)
{
    tf_runtime *rt = m->rt;
    uint32_t small[16] = {0}, *deps = small;
    if (sb->ndeps > 16 && !(deps = malloc(sb->ndeps * sizeof *deps)))
        return TF_ENOMEM;
    uint32_t nknown = 0;
    uint64_t unknown = 0;
    for (uint32_t i = 0; i < sb->ndeps; i++) {
        uint64_t g;
        memcpy(&g, (const uint8_t *)dgid + (size_t)i * 8, sizeof g);
        uint32_t d = tf_tasks_index_of(&rt->tasks, g);
        if (d == TF_NONE)
            unknown = g ? g : UINT64_MAX;
        else
            deps[nknown++] = d;
    }
    uint32_t t, p = tf_tasks_index_of(&rt->tasks, sb->parent);
    int rc = sb->fn < rt->reg.n && p != TF_NONE ? 0 : TF_EPROTO;
    tf_rt_new n = {.gid = sb->id,
                   .parent = p,
                   .fn = sb->fn,
                   .prio = sb->prio,
                   .cores = sb->cores,
                   .retries = sb->retries,
                   .deps = deps,
                   .ndeps = nknown,
                   .in = in,
                   .in_len = sb->input_len,
                   .flags = unknown ? TF_TASKS_DOOMED : 0,
                   .pin = -1};
    if (!rc)
        rc = tf_rt_add(rt, &n, &t);
    if (!rc && tf_sched_state(&rt->tasks.sched, t) == TF_ST_SKIPPED &&
        unknown) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "task %llu submitted on rank %d depends on unknown task "
                "%llu: skipped",
                (unsigned long long)sb->id, rank, (unsigned long long)unknown);
        rt->tasks.rec[t].status = TF_EDEP;
    }
    if (deps != small)
        free(deps);
    return rc;
}

/*
 * A DONE record (its parts at p, n bytes to the message's end); one rank 0
 * no longer expects is logged and dropped.
 */
static int intake_done(tf_master *m, int from, const tf_wire_done *d,
                       const void *p, size_t n)
{
    tf_runtime *rt = m->rt;
    if (!tf_sched_is_current(&rt->tasks.sched, d->index, d->attempt)) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "rank %d reported task index %u (attempt %u) it does not "
                "hold; ignored",
                from, d->index, d->attempt);
        return 0;
    }
    int rc = 0;
    {
        tf_outpart small[8], *pv = small;
        if (d->nparts > 8 && !(pv = malloc(d->nparts * sizeof *pv)))
            return TF_ENOMEM;
        tf_rd r = tf_rd_make(p, n);
        for (uint16_t i = 0; i < d->nparts; i++) {
            tf_wire_part pt;
            tf_wire_next_part(&r, &pt, &pv[i].bytes); /* checked whole */
            pv[i].len = pt.len;
            pv[i].held = pt.where != TF_PART_INLINE;
            if (pv[i].bytes)
                rt->rank0_payload_bytes += pt.len;
        }
        rc = tf_tasks_set_output(&rt->tasks, d->index, pv, d->nparts, from);
        if (pv != small)
            free(pv);
    }
    return rc ? rc
              : done(m, d->index, from, d->status, d->start_ns, d->end_ns,
                     d->slot);
}

/* A MOVED record: applied (true) if rank 0 still has the task on the reporter. */
static bool intake_moved(tf_master *m, int from, const tf_wire_moved *mv)
{
    tf_runtime *rt = m->rt;
    uint32_t t = mv->index, to = mv->thief;
    /* Already reported by the thief, or stale: nothing to move. */
    if (to < 1 || to >= (uint32_t)rt->link.size ||
        !tf_sched_is_current(&rt->tasks.sched, t, mv->attempt) ||
        rt->tasks.sched.dag.worker[t] != tf_rt_worker_of(rt, from))
        return false;
    if (tf_sched_task_moved(&rt->tasks.sched, t, tf_rt_worker_of(rt, from),
                            tf_rt_worker_of(rt, (int)to))) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "rank %d gave away task index %u that it may not; ignored",
                from, t);
        return false;
    }
    rt->moved++;
    return true;
}

int tf_intake_report(tf_master *m, int from, const tf_buf *msg)
{
    tf_runtime *rt = m->rt;
    tf_sched *s = &rt->tasks.sched;
    tf_rd r = tf_rd_make(msg->p, msg->n);
    tf_wire_rec rec;
    int rc = 0;
    /* Moves from this victim to one thief, for the trace (one steal). */
    uint32_t thief = 0, nmoved = 0;
    /*
     * Reports are taken from any rank, not only the one rank 0 thinks holds
     * the task: a thief's DONE may overtake the victim's MOVED. The attempt
     * number tells a current report from a stale one (tf_sched_is_current).
     */
    while (!rc && tf_rd_more(&r) && tf_wire_get_rec(&r, &rec)) {
        uint32_t u = rec.u.unrun.index;
        if (rec.kind == TF_REC_DONE)
            rc = intake_done(m, from, &rec.u.done, rec.out,
                             msg->n - (size_t)((const uint8_t *)rec.out -
                                               msg->p));
        else if (rec.kind == TF_REC_UNRUN && u < s->dag.n &&
                 (s->dag.state[u] == TF_ST_DISPATCHED ||
                  s->dag.state[u] == TF_ST_PARKED))
            rc = tf_sched_task_unrun(s, u);
        else if (rec.kind == TF_REC_MOVED && intake_moved(m, from, &rec.u.moved)) {
            if (nmoved && thief != rec.u.moved.thief && rt->trace)
                tf_tracing_moved(rt->trace, from, (int)thief, nmoved);
            nmoved = thief == rec.u.moved.thief ? nmoved + 1 : 1;
            thief = rec.u.moved.thief;
        }
        else if (rec.kind == TF_REC_SUBMIT)
            rc = submitted(m, from, &rec.u.submit, rec.deps, rec.in);
    }
    if (nmoved && rt->trace)
        tf_tracing_moved(rt->trace, from, (int)thief, nmoved);
    if (!rc && !r.ok) {
        tf_logf(&rt->log, TF_LOG_ERROR, "malformed report from rank %d", from);
        rc = TF_EPROTO;
    }
    return rc;
}

/* A task rank 0 ran itself: its parts are rank 0's. */
static int local_done(tf_master *m, tf_event *e)
{
    tf_runtime *rt = m->rt;
    int rc = 0;
    {
        tf_outpart small[8], *pv = small;
        if (e->nparts > 8 && !(pv = malloc(e->nparts * sizeof *pv)))
            rc = TF_ENOMEM;
        for (uint16_t i = 0; !rc && i < e->nparts; i++)
            pv[i] = (tf_outpart){tf_event_bytes(e, i),
                                 tf_event_part(e, i)->len, false};
        if (!rc)
            rc = tf_tasks_set_output(&rt->tasks, e->idx, pv, e->nparts, -1);
        if (pv != small)
            free(pv);
    }
    tf_pool_done_parts(&rt->pool, e);
    return rc ? rc
              : done(m, e->idx, 0, e->status, e->start_ns, e->end_ns,
                     e->slot);
}

/*
 * Rank 0 has its copy of what its own tasks made: the pool's, kept for
 * parked readers, goes after them. Freed a round's worth at a time: one
 * take of the lock the task threads take for their batches, not one a
 * task.
 */
#define TF_INTAKE_FREE_RUN 256

int tf_intake_local(tf_master *m, bool *progress)
{
    tf_runtime *rt = m->rt;
    const tf_evvec *v = tf_pool_take_events(&rt->pool);
    uint32_t ran[TF_INTAKE_FREE_RUN];
    size_t nran = 0;
    int rc = 0;
    for (size_t i = 0; i < v->n; i++) {
        tf_event *e = &v->v[i];
        *progress = true;
        if (rc) {
            free(e->owner); /* NULL but in DONE, UNRUN and DROP */
            free(e->data);
            free(e->deps);
            tf_pool_done_parts(&rt->pool, e);
            continue;
        }
        if (e->kind == TF_EV_DONE) {
            free(e->owner);
            if (nran == TF_INTAKE_FREE_RUN) {
                tf_pool_free_outputs(&rt->pool, ran, nran);
                nran = 0;
            }
            ran[nran++] = e->idx;
            rc = local_done(m, e);
        } else if (e->kind == TF_EV_UNRUN) {
            free(e->owner);
            rc = tf_sched_task_unrun(&rt->tasks.sched, e->idx);
        } else if (e->kind == TF_EV_DROP) {
            free(e->owner); /* the scheduler unparked it by itself */
        } else {
            tf_wire_submit sb = {TF_REC_SUBMIT, e->gid,     e->parent,
                                 e->fn,         e->prio,    e->cores,
                                 e->retries,    e->ndeps,   e->data_len};
            rc = submitted(m, 0, &sb, e->deps, e->data);
            free(e->data);
            free(e->deps);
        }
    }
    if (nran)
        tf_pool_free_outputs(&rt->pool, ran, nran);
    return rc;
}
