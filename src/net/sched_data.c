/* Rank 0 and task data: where each input comes from, the TASK records, where a ready task should run, which outputs go, and remaking lost ones. */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/wire.h"
#include "fetch.h"
#include "sched_loop.h"

/*
 * Rank 0's word on task t, fixed when it leaves: SEND, rank 0 keeps its
 * output (TF_TASK_KEEP, keep_outputs, or a result: nothing reads it now);
 * DEPS, tasks read it, so its rank holds it for them until freed; PINNED,
 * it may not be stolen.
 */
static uint8_t output_flags(tf_runtime *rt, uint32_t t)
{
    tf_trec *r = &rt->tasks.rec[t];
    bool send = (r->oflags & TF_OUT_WANT_KEEP) || rt->cfg.keep_outputs ||
                !r->uses;
    if (send)
        r->oflags |= TF_OUT_KEEP;
    else
        r->oflags &= (uint8_t)~TF_OUT_KEEP;
    uint32_t pin = rt->tasks.sched.dag.pin[t];
    return (uint8_t)((send ? TF_WIRE_SEND : 0) | (r->uses ? TF_WIRE_DEPS : 0) |
                     (pin != TF_NONE ? TF_WIRE_PINNED : 0));
}

/*
 * How dependency i of task t reaches its worker: LOCAL, a task that has
 * not finished (t is parked behind it there); INLINE, bytes rank
 * 0 has and sends along, when they are small or no rank holds them;
 * REMOTE, from the rank that holds them (w itself, often). A part that is
 * gone (its rank lost before it could be made again) reads as REMOTE from
 * no rank: the task fails with TF_ELOST and is retried.
 */
typedef struct dep_route {
    uint8_t kind; /* TF_DEP_* */
    uint32_t d, part, len;
    const void *buf;
    int32_t holder;
} dep_route;

static dep_route route(const tf_runtime *rt, uint32_t t, uint32_t i)
{
    const tf_tasks *tt = &rt->tasks;
    const tf_dag *dag = &tt->sched.dag;
    dep_route q = {TF_DEP_INLINE, tf_tasks_dep(tt, t, i),
                   tf_tasks_dep_part(tt, t, i), 0, NULL, -1};
    if (dag->state[q.d] != TF_ST_DONE) {
        q.kind = TF_DEP_LOCAL; /* parked behind it, on the same worker */
        return q;
    }
    int32_t h = tt->rec[q.d].holder;
    if (!tf_tasks_part(tt, q.d, q.part, &q.buf, &q.len)) {
        q.kind = TF_DEP_REMOTE;
        return q;
    }
    if (q.len && h > 0 && (!q.buf || q.len > rt->inline_max)) {
        q.kind = TF_DEP_REMOTE;
        q.holder = h;
        q.buf = NULL;
    } else if (q.len && !q.buf) {
        q.kind = TF_DEP_REMOTE; /* held by no live rank */
    }
    return q;
}

/*
 * Task t for worker w: for rank 0's own pool (pushed with the others of
 * this act, tf_master_push_mine), or encoded into w's batch. A
 * parked task (PARK) carries, for each dependency not yet done, the
 * dependency's index in place of its output: the worker fills it in when
 * that task, which runs there, has finished; its attempt number is the one
 * it will run as.
 */
int tf_master_send_task(tf_master *m, uint32_t t, uint32_t w, bool parked)
{
    tf_runtime *rt = m->rt;
    const tf_tasks *tt = &rt->tasks;
    const tf_dag *dag = &tt->sched.dag;
    const tf_trec *r = &tt->rec[t];
    uint8_t attempt = tf_sched_sent_attempt(&tt->sched, t, parked);
    uint8_t flags = output_flags(rt, t);
    if (w == m->self) {
        tf_dep *dv = r->ndeps ? malloc(r->ndeps * sizeof *dv) : NULL;
        if ((r->ndeps && !dv) ||
            tf_grow((void **)&m->mine, &m->minecap, m->nmine + 1,
                    sizeof *m->mine, 64)) {
            free(dv);
            return TF_ENOMEM;
        }
        for (uint32_t i = 0; i < r->ndeps; i++) {
            dep_route q = route(rt, t, i);
            dv[i] = (tf_dep){.buf = q.buf, .len = q.len,
                             .anchor = TF_POOL_NO_ANCHOR, .idx = q.d,
                             .part = q.part, .from = q.holder, .kind = q.kind};
        }
        m->mine[m->nmine++] = (tf_job){
            .idx = t, .fn = r->fn, .gid = r->gid, .cores = dag->cores[t],
            .attempt = attempt, .flags = flags, .in_len = r->in_len,
            .in = tf_tasks_input(tt, t), .ndeps = r->ndeps, .deps = dv,
            .owner = dv};
        return 0;
    }
    tf_buf *b = &m->batch[w];
    size_t need = TF_WIRE_BATCH_SIZE + TF_WIRE_TASK_SIZE +
                  tf_wire_aligned_size(r->in_len);
    /* Routes worked out once (most tasks have a few dependencies). */
    dep_route small[8];
    for (uint32_t i = 0; i < r->ndeps; i++) {
        dep_route q = route(rt, t, i);
        if (i < 8)
            small[i] = q;
        need += tf_wire_dep_size(q.buf ? q.len : 0);
    }
    if (tf_buf_reserve(b, need))
        return TF_ENOMEM;
    if (!b->n) /* the header's fields are set when the batch is sent */
        tf_wire_put_batch(b, &(tf_wire_batch){0, 0, 0});
    m->ntask[w]++;
    tf_wire_task rec = {t,       r->fn, r->gid,     dag->cores[t],
                        attempt, flags, r->in_len, r->ndeps};
    tf_wire_put_task(b, &rec);
    tf_wire_put_aligned(b, tf_tasks_input(tt, t), r->in_len);
    for (uint32_t i = 0; i < r->ndeps; i++) {
        dep_route q = i < 8 ? small[i] : route(rt, t, i);
        if (q.kind == TF_DEP_LOCAL) {
            tf_wire_put_anchor_dep(b, q.d, q.part);
        } else if (q.kind == TF_DEP_REMOTE) {
            tf_wire_put_remote_dep(
                b, &(tf_wire_remote){(uint32_t)q.holder, q.d, q.part, q.len});
        } else {
            tf_wire_put_output(b, q.buf, q.len);
            rt->rank0_payload_bytes += q.len;
        }
    }
    return 0;
}

int tf_master_push_mine(tf_master *m)
{
    tf_runtime *rt = m->rt;
    if (!m->nmine)
        return 0;
    /*
     * One lock for all. An error ends the run; the jobs the pool did not
     * take leak their inputs' array, as it cannot say which they are.
     */
    int rc = tf_pool_push(&rt->pool, m->mine, m->nmine, 0, &m->fetch);
    m->nmine = 0;
    return rc ? rc : tf_fetch_ask(rt, &m->out, &m->fetch);
}

/*
 * The scheduler's placement hint (tf_sched.place): the worker holding
 * most of the bytes task t would fetch, or TF_NONE when none would be.
 */
uint32_t tf_master_place(void *u, uint32_t t)
{
    const tf_runtime *rt = u;
    const tf_trec *r = &rt->tasks.rec[t];
    /* The inputs some worker holds, each routed once; the others count 0. */
    dep_route small[64], *held = small;
    if (r->ndeps > 64 && !(held = malloc(r->ndeps * sizeof *held)))
        return TF_NONE; /* a hint only: anywhere will do */
    size_t n = 0;
    for (uint32_t i = 0; i < r->ndeps; i++) {
        /* Most inputs are held by no rank (small, or rank 0's): skip them. */
        if (rt->tasks.rec[tf_tasks_dep(&rt->tasks, t, i)].holder <= 0)
            continue;
        dep_route q = route(rt, t, i);
        if (q.kind == TF_DEP_REMOTE && q.holder > 0)
            held[n++] = q;
    }
    int32_t best = -1;
    uint64_t most = 0;
    for (size_t i = 0; i < n; i++) {
        if (held[i].len <= most)
            continue;
        /* Sum what that rank holds of all of t's inputs. */
        uint64_t sum = 0;
        for (size_t k = 0; k < n; k++)
            if (held[k].holder == held[i].holder)
                sum += held[k].len;
        if (sum > most) {
            most = sum;
            best = held[i].holder;
        }
    }
    if (held != small)
        free(held);
    return best > 0 ? tf_rt_worker_of(rt, best) : TF_NONE;
}

/*
 * Task t's output is needed again but gone: run t again, and, first, every
 * task whose output t reads and that is gone too (lineage). t reads its
 * inputs once more, so each counts a reader more. The stack holds tasks
 * still to look at; a task already on its way again is left alone.
 */
static int recompute(tf_master *m, uint32_t root)
{
    tf_runtime *rt = m->rt;
    tf_tasks *tt = &rt->tasks;
    uint32_t small[64], *stack = small;
    size_t sp = 0, cap = 64;
    int rc = 0;
    stack[sp++] = root;
    while (sp && !rc) {
        uint32_t t = stack[--sp];
        if (tf_sched_state(&tt->sched, t) != TF_ST_DONE)
            continue;
        rc = tf_sched_redo(&tt->sched, t);
        if (rc == TF_ESTATE) {
            /* Done without running (a resumed state): nothing to redo it. */
            tf_logf(&rt->log, TF_LOG_ERROR,
                    "the output of task %llu is lost and it cannot run "
                    "again: tasks reading it fail",
                    (unsigned long long)tt->rec[t].gid);
            rc = 0;
            continue;
        }
        if (rc)
            break;
        rt->reruns++;
        tf_tasks_release(tt, t, NULL, NULL);
        tf_trec *r = &tt->rec[t];
        for (uint32_t i = 0; i < r->ndeps; i++) {
            uint32_t d = tf_tasks_dep(tt, t, i);
            tt->rec[d].uses++;
            const void *b;
            uint32_t len;
            bool have = tf_tasks_part(tt, d, tf_tasks_dep_part(tt, t, i), &b,
                                      &len) &&
                        (b || !len || tt->rec[d].holder > 0);
            if (have)
                continue;
            if (sp == cap) {
                uint32_t *ns = malloc(2 * cap * sizeof *ns);
                if (!ns) {
                    rc = TF_ENOMEM;
                    break;
                }
                memcpy(ns, stack, sp * sizeof *ns);
                if (stack != small)
                    free(stack);
                stack = ns;
                cap *= 2;
            }
            stack[sp++] = d;
        }
    }
    if (stack != small)
        free(stack);
    return rc;
}

/*
 * Rank `rank` was written off: what it held is lost. Outputs rank 0 also
 * has are not (readers get them inline); the others are gone, and those
 * tasks still read run again, before the lost rank's own tasks go back to
 * the queue, so that those wait for them.
 */
int tf_master_lose_outputs(tf_master *m, int rank)
{
    tf_runtime *rt = m->rt;
    tf_tasks *tt = &rt->tasks;
    int rc = 0;
    for (uint32_t t = 0; t < tt->sched.dag.n; t++) {
        tf_trec *r = &tt->rec[t];
        if (r->holder != rank)
            continue;
        r->holder = -1;
        if (r->oflags & TF_OUT_AWAY)
            r->oflags |= TF_OUT_GONE;
    }
    for (uint32_t t = 0; t < tt->sched.dag.n && !rc; t++)
        if ((tt->rec[t].oflags & TF_OUT_GONE) && tt->rec[t].uses &&
            tf_sched_state(&tt->sched, t) == TF_ST_DONE)
            rc = recompute(m, t);
    return rc;
}

void tf_rt_free_away(void *u, uint32_t d, int holder)
{
    tf_runtime *rt = u;
    if (holder <= 0 || holder >= rt->link.size)
        return;
    if (!rt->frees) {
        rt->frees = calloc((size_t)rt->link.size, sizeof *rt->frees);
        rt->free_since = calloc((size_t)rt->link.size, sizeof *rt->free_since);
        if (!rt->frees || !rt->free_since) {
            free(rt->frees);
            free(rt->free_since);
            rt->frees = NULL;
            rt->free_since = NULL;
            return; /* the holder keeps it until tf_finalize: no harm */
        }
    }
    tf_buf *b = &rt->frees[holder];
    if (tf_buf_reserve(b, 4))
        return;
    if (!b->n)
        rt->free_since[holder] = tf_idle_clock_ns();
    tf_buf_put_u32(b, d);
}

/*
 * Task t ended for good: its dependencies have a reader fewer, and, done
 * with nothing left to read it, its own output goes unless kept.
 */
void tf_master_ended(tf_master *m, uint32_t t)
{
    tf_runtime *rt = m->rt;
    tf_tasks *tt = &rt->tasks;
    tf_tasks_ended(tt, t, tf_rt_free_away, rt);
    tf_trec *r = &tt->rec[t];
    if (tf_sched_state(&tt->sched, t) == TF_ST_DONE && !r->uses &&
        !(r->oflags & TF_OUT_KEEP))
        tf_tasks_release(tt, t, tf_rt_free_away, rt);
}

