/* Rank 0's scheduling loop: poll, settle, halt, dispatch, tick, idle; then stop every worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "sched_loop.h"

/* "ID FUNCTION", unless the app names tasks itself (the command: its @id). */
static void task_name(const tf_runtime *rt, uint32_t t, char *buf, size_t len)
{
    const tf_trec *r = &rt->tasks.rec[t];
    if (rt->cfg.name_task)
        rt->cfg.name_task(rt->cfg.name_user, r->gid, buf, len);
    else
        snprintf(buf, len, "%llu %s", (unsigned long long)r->gid,
                 r->fn < rt->reg.n ? rt->reg.fns[r->fn].name : "?");
}

void tf_master_fire(tf_master *m, tf_run_event_kind kind, uint32_t t,
                    int32_t cause)
{
    tf_runtime *rt = m->rt;
    if (!rt->cfg.on_event && !rt->trace)
        return;
    tf_run_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.id = TF_NO_TASK;
    ev.rank = -1;
    ev.cause = TF_NO_TASK;
    if (t != TF_NONE) {
        const tf_trec *r = &rt->tasks.rec[t];
        ev.id = r->gid;
        ev.status = r->status;
        ev.rank = r->rank;
        ev.attempt = rt->tasks.sched.dag.attempts[t];
        ev.start_ns = r->start_ns;
        ev.end_ns = r->end_ns;
        ev.slot = r->slot;
        const void *ob;
        uint32_t ol;
        if (tf_tasks_part(&rt->tasks, t, 0, &ob, &ol) && (ob || !ol)) {
            ev.output = ob;
            ev.output_len = ol;
        }
        if (kind == TF_RUN_SKIPPED && (uint32_t)cause != TF_NONE)
            ev.cause = rt->tasks.rec[cause].gid;
    }
    if (rt->trace && t != TF_NONE) {
        char name[512];
        task_name(rt, t, name, sizeof name);
        tf_tracing_event(rt->trace, &ev, name, rt->tasks.sched.dag.cores[t],
                         rt->moved);
    }
    if (rt->cfg.on_event)
        rt->cfg.on_event(rt->cfg.event_user, rt, &ev);
}

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
 * Task t for worker w: queue it locally, or encode it into w's batch. A
 * parked task (PARK) carries, for each dependency not yet done, the
 * dependency's index in place of its output: the worker fills it in when
 * that task, which runs there, has finished; its attempt number is the one
 * it will run as.
 */
static int run_task(tf_master *m, uint32_t t, uint32_t w, bool parked)
{
    tf_runtime *rt = m->rt;
    const tf_tasks *tt = &rt->tasks;
    const tf_dag *dag = &tt->sched.dag;
    const tf_trec *r = &tt->rec[t];
    uint8_t attempt = tf_sched_sent_attempt(&tt->sched, t, parked);
    uint8_t flags = output_flags(rt, t);
    if (m->local) {
        tf_dep *dv = r->ndeps ? malloc(r->ndeps * sizeof *dv) : NULL;
        if (r->ndeps && !dv)
            return TF_ENOMEM;
        for (uint32_t i = 0; i < r->ndeps; i++) {
            dep_route q = route(rt, t, i);
            dv[i] = (tf_dep){.buf = q.buf, .len = q.len,
                             .anchor = TF_POOL_NO_ANCHOR, .idx = q.d,
                             .part = q.part, .from = -1, .kind = q.kind};
        }
        tf_job job = {.idx = t, .fn = r->fn, .gid = r->gid,
                      .cores = dag->cores[t], .attempt = attempt,
                      .flags = flags, .in_len = r->in_len,
                      .in = tf_tasks_input(tt, t), .ndeps = r->ndeps,
                      .deps = dv, .owner = dv};
        int rc = tf_pool_push(&rt->pool, &job, 1, 0, NULL);
        if (rc)
            free(dv);
        return rc;
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

/*
 * The scheduler's placement hint (tf_sched.place): the worker holding
 * most of the bytes task t would fetch, or TF_NONE when none would be.
 */
static uint32_t place(void *u, uint32_t t)
{
    const tf_runtime *rt = u;
    const tf_trec *r = &rt->tasks.rec[t];
    int32_t best = -1;
    uint64_t most = 0;
    for (uint32_t i = 0; i < r->ndeps; i++) {
        /* Most inputs are held by no rank (small, or rank 0's): skip them. */
        if (rt->tasks.rec[tf_tasks_dep(&rt->tasks, t, i)].holder <= 0)
            continue;
        dep_route q = route(rt, t, i);
        if (q.kind != TF_DEP_REMOTE || q.holder <= 0 || q.len <= most)
            continue;
        /* Sum what that rank holds of all of t's inputs. */
        uint64_t sum = 0;
        for (uint32_t k = 0; k < r->ndeps; k++) {
            dep_route o = route(rt, t, k);
            if (o.kind == TF_DEP_REMOTE && o.holder == q.holder)
                sum += o.len;
        }
        if (sum > most) {
            most = sum;
            best = q.holder;
        }
    }
    return best > 0 ? (uint32_t)best - 1 : TF_NONE;
}

/* Carry out the scheduler's actions: queue RUNs, tell of ends. */
static int act(tf_master *m)
{
    tf_runtime *rt = m->rt;
    size_t n;
    const tf_action *a = tf_sched_actions(&rt->tasks.sched, &n);
    int rc = 0;
    /*
     * Parked tasks first: a worker (or the local pool) must hold a parked
     * task before the task it waits for can finish, and tasks are taken in
     * the order they come.
     */
    for (size_t i = 0; i < n && !rc; i++)
        if (a[i].kind == TF_ACT_PARK)
            rc = run_task(m, a[i].task, a[i].worker, true);
    for (size_t i = 0; i < n && !rc; i++) {
        tf_trec *r = &rt->tasks.rec[a[i].task];
        switch (a[i].kind) {
        case TF_ACT_RUN:
            rc = run_task(m, a[i].task, a[i].worker, false);
            break;
        case TF_ACT_PARK:
            break;
        case TF_ACT_RETRY:
            tf_master_fire(m, TF_RUN_RETRY, a[i].task, 0);
            break;
        case TF_ACT_FAIL:
            if (a[i].cause)
                r->status = a[i].cause;
            tf_logf(&rt->log, TF_LOG_INFO, "task %llu failed (status %d)",
                    (unsigned long long)r->gid, r->status);
            tf_master_fire(m, TF_RUN_FAILED, a[i].task, 0);
            if (!(rt->tasks.sched.dag.flags[a[i].task] & TF_TF_NOOP))
                tf_master_ended(m, a[i].task);
            break;
        case TF_ACT_SKIP:
            tf_master_fire(m, TF_RUN_SKIPPED, a[i].task, a[i].cause);
            if (!(rt->tasks.sched.dag.flags[a[i].task] & TF_TF_NOOP))
                tf_master_ended(m, a[i].task);
            break;
        }
    }
    tf_sched_clear_actions(&rt->tasks.sched);
    return rc;
}

/*
 * Send each worker its batch. The header says whether anything else was
 * ready: a worker that runs dry after hearing "nothing" steals from its
 * peers; a worker with room that has not heard it yet gets a header alone
 * (tf_sched_notify), or it would wait for rank 0 instead of stealing.
 * Outputs rank 0 freed ride along; a worker that gets no batch hears of
 * them alone after 1 ms (or `all`: now), with the word it last had.
 */
static int flush(tf_master *m, bool all)
{
    tf_runtime *rt = m->rt;
    if (m->local)
        return 0;
    uint64_t now = rt->frees ? tf_idle_clock_ns() : 0;
    for (int w = 0; w + 1 < rt->link.size; w++) {
        tf_buf *bw = &m->batch[w];
        tf_buf *fr = rt->frees ? &rt->frees[w + 1] : NULL;
        bool dry, frees = fr && fr->n &&
                          (all || bw->n ||
                           now - rt->free_since[w + 1] >= 1000000u);
        if (tf_live_is_dead(&rt->link.live, w + 1))
            continue;
        if (tf_sched_notify(&rt->tasks.sched, (uint32_t)w, bw->n > 0,
                            rt->steal, &dry)) {
        } else if (frees) {
            dry = rt->tasks.sched.workers[w].told_dry;
        } else {
            continue;
        }
        if (!bw->n) {
            if (tf_buf_reserve(bw, TF_WIRE_BATCH_SIZE))
                return TF_ENOMEM;
            tf_wire_put_batch(bw, &(tf_wire_batch){0, 0, 0});
        }
        uint32_t nfree = 0;
        if (frees && !tf_buf_reserve(bw, fr->n)) {
            tf_buf_put(bw, fr->p, fr->n);
            nfree = (uint32_t)(fr->n / 4);
            fr->n = 0;
        }
        tf_wire_seal_batch(bw->p, dry ? TF_WIRE_DRY : 0, m->ntask[w], nfree);
        m->ntask[w] = 0;
        tf_buf b = *bw;
        *bw = tf_sendq_buf(&m->out);
        int rc = tf_link_send(&rt->link, &m->out, &b, w + 1, TF_TAG_TASKS);
        if (rc) {
            tf_buf_free(&b);
            return rc;
        }
    }
    return 0;
}

/* Send every live worker a copy of body with tag. */
static int to_all(tf_master *m, int tag, const tf_buf *body)
{
    tf_link *l = &m->rt->link;
    int rc = 0;
    for (int r = 1; r < l->size && !rc; r++) {
        if (tf_live_is_dead(&l->live, r))
            continue;
        tf_buf b = tf_sendq_buf(&m->out);
        rc = tf_buf_reserve(&b, body->n);
        if (!rc) {
            tf_buf_put(&b, body->p, body->n);
            rc = tf_link_send(l, &m->out, &b, r, tag);
        }
        if (rc)
            tf_buf_free(&b);
    }
    return rc;
}

/*
 * tf_halt was called: stop the scheduler (SKIPs for everything not yet
 * dispatched), and have every rank end what runs and drop what is queued.
 */
static int halt(tf_master *m)
{
    tf_runtime *rt = m->rt;
    tf_logf(&rt->log, TF_LOG_INFO, "halting the run");
    m->halted = true;
    int rc = tf_sched_halt(&rt->tasks.sched);
    if (!rc)
        rc = act(m);
    /* Tasks already given out go before the HALT, so workers drop them. */
    if (!rc)
        rc = flush(m, false);
    /*
     * Drop the queue before on_halt, which may take a while to end running
     * tasks: task threads freed meanwhile must find nothing left to start.
     */
    if (m->local)
        tf_pool_drop_queued(&rt->pool);
    if (rt->cfg.on_halt)
        rt->cfg.on_halt(rt->cfg.halt_user);
    if (!rc && !m->local)
        rc = to_all(m, TF_TAG_HALT, &(tf_buf){NULL, 0, 0});
    return rc;
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
 * the queue, so that those wait for them. Every worker hears of the loss:
 * its fetches from that rank will never be answered.
 */
static int lose_outputs(tf_master *m, int rank)
{
    tf_runtime *rt = m->rt;
    tf_tasks *tt = &rt->tasks;
    uint8_t body[TF_WIRE_LOST_SIZE];
    tf_buf b = {body, 0, sizeof body};
    tf_wire_put_lost(&b, &(tf_wire_lost){(uint32_t)rank});
    int rc = to_all(m, TF_TAG_LOST, &b);
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

/*
 * Workers were written off: their outputs still read are made again, and
 * their tasks go back to the queue (or to PENDING, for parked ones). With
 * none left, nothing could run the rest.
 */
static int lost(tf_master *m)
{
    tf_runtime *rt = m->rt;
    tf_sched *s = &rt->tasks.sched;
    uint32_t live = 0;
    int rc = 0;
    for (uint32_t w = 0; w < s->nworkers && !rc; w++) {
        if (tf_live_is_dead(&rt->link.live, (int)w + 1) && !s->workers[w].lost) {
            rc = lose_outputs(m, (int)w + 1);
            if (!rc)
                rc = tf_sched_worker_lost(s, w);
        }
        live += !s->workers[w].lost;
    }
    if (!rc && !live) {
        tf_logf(&rt->log, TF_LOG_ERROR, "every worker rank is lost");
        rc = TF_ELOST;
    }
    return rc;
}

/* One message during the run. */
static int message(tf_master *m, int from, int tag)
{
    tf_runtime *rt = m->rt;
    if (tag == TF_TAG_REPORT)
        return tf_intake_report(m, from, &m->in);
    if (tag == TF_TAG_ERROR) {
        tf_rd r = tf_rd_make(m->in.p, m->in.n);
        tf_wire_error e;
        int rc = tf_wire_get_error(&r, &e) && e.code < 0 ? e.code : TF_EPROTO;
        tf_logf(&rt->log, TF_LOG_ERROR, "rank %d failed (%s): ending the run",
                from, tf_strerror(rc));
        return rc;
    }
    tf_logf(&rt->log, TF_LOG_WARN, "unexpected tag %d from rank %d", tag,
            from);
    return 0;
}

/*
 * Take in what has happened: the local pool's events, or every message
 * that has arrived; sends move on and silent workers are written off.
 */
static int poll(tf_master *m, bool *progress)
{
    tf_runtime *rt = m->rt;
    if (m->local) {
        for (int k = 0; rt->cfg.main_runs_tasks && k < 64 &&
                        tf_pool_run_one(&rt->pool);
             k++)
            *progress = true;
        return tf_intake_local(m, progress);
    }
    int from, tag, got, rc = 0;
    uint64_t now = tf_idle_clock_ns();
    while (!rc && (got = tf_link_recv(&rt->link, MPI_ANY_SOURCE, &m->in, &from,
                                      &tag)) != 0) {
        if (got < 0)
            return got;
        /* Windows cover how long messages wait for rank 0. */
        if (!*progress && m->quiet_at)
            tf_sched_waited(&rt->tasks.sched, now - m->quiet_at, now);
        m->quiet_at = 0;
        *progress = true;
        rc = message(m, from, tag);
    }
    if (!*progress)
        m->quiet_at = now;
    int sent = tf_sendq_progress(&m->out);
    if (sent < 0 && !rc)
        rc = sent;
    int nlost = rc ? 0 : tf_link_pulse(&rt->link, &m->out);
    if (nlost < 0)
        rc = nlost;
    else if (nlost)
        rc = lost(m);
    return rc;
}

/*
 * Report failures and skips before dispatching, so that a retried task's
 * event still shows the attempt that failed. A halt asked for by those
 * events, or by the DONE events already fired, comes before the dispatch:
 * no task may leave after it (the halted scheduler dispatches nothing).
 */
static int settle(tf_master *m, bool *progress)
{
    tf_runtime *rt = m->rt;
    int rc = rt->tasks.sched.nacts ? act(m) : 0;
    /* The state cannot be written: go no further without a way back. */
    if (!rc && rt->ck && tf_ckstate_error(rt->ck) && !rt->halt_requested)
        tf_halt(rt);
    if (!rc && rt->halt_requested && !m->halted) {
        *progress = true;
        rc = halt(m);
    }
    return rc;
}

static int dispatch(tf_master *m, bool *progress)
{
    tf_sched *s = &m->rt->tasks.sched;
    int rc = tf_sched_dispatch(s);
    if (!rc && s->nacts) {
        *progress = true;
        rc = act(m);
    }
    return rc ? rc : flush(m, false);
}

/* Time passed: a snapshot when due, a TICK for the app's callback. */
static void tick(tf_master *m)
{
    tf_runtime *rt = m->rt;
    if (!rt->ck && !rt->cfg.on_event)
        return;
    uint64_t now = tf_idle_clock_ns();
    if (rt->ck && tf_ckstate_tick(rt->ck, &rt->tasks, &rt->reg, now) &&
        rt->trace)
        tf_tracing_note(rt->trace, "checkpoint", tf_ckstate_note(rt->ck));
    if (rt->cfg.on_event && now >= m->next_tick) {
        tf_master_fire(m, TF_RUN_TICK, TF_NONE, 0);
        m->next_tick = tf_idle_clock_ns() + m->tick_ns;
    }
}

/*
 * Workers are registered once per runtime, with the slots each has; later
 * runs reuse them. Then the children of tasks done in a resumed state (a
 * snapshot first if ids changed meaning), and skips decided at submission.
 */
static int begin(tf_master *m)
{
    tf_runtime *rt = m->rt;
    tf_sched *s = &rt->tasks.sched;
    uint32_t nworkers = m->local ? 1 : (uint32_t)rt->link.size - 1;
    if (!m->local && (!(m->batch = calloc(nworkers, sizeof *m->batch)) ||
                      !(m->ntask = calloc(nworkers, sizeof *m->ntask))))
        return TF_ENOMEM;
    s->place = place;
    s->place_user = rt;
    int rc = 0;
    for (uint32_t w = s->nworkers; w < nworkers && !rc; w++) {
        uint32_t slots = rt->world.slots[m->local ? 0 : w + 1];
        uint32_t depth = m->local ? slots : slots * (uint32_t)rt->cfg.prefetch;
        uint32_t id;
        rc = tf_sched_add_worker(s, slots, depth, &id);
    }
    if (!rc && rt->ck)
        rc = tf_ckstate_begin(rt->ck, &rt->tasks, &rt->reg);
    if (!rc && s->nacts)
        rc = act(m);
    /* Until it has seen otherwise, rank 0 looks within its longest sleep. */
    if (!m->local)
        tf_sched_waited(s, TF_IDLE_MAX_NS, tf_idle_clock_ns());
    m->tick_ns = (uint64_t)rt->cfg.tick_ms * 1000000u;
    m->next_tick = tf_idle_clock_ns() + m->tick_ns;
    return rc;
}

/*
 * Tell every live worker the run is over (and how many ranks are lost, so
 * that all know the runtime is degraded), and wait until each has said so
 * or has been written off meanwhile.
 */
static int stop(tf_master *m, int32_t status)
{
    tf_runtime *rt = m->rt;
    tf_link *l = &rt->link;
    bool *acked = calloc((size_t)l->size, sizeof *acked);
    if (!acked)
        return TF_ENOMEM;
    uint8_t body[TF_WIRE_STOP_SIZE];
    tf_buf b = {body, 0, sizeof body};
    tf_wire_put_stop(&b, &(tf_wire_stop){status, l->live.nlost});
    int rc = to_all(m, TF_TAG_STOP, &b);
    /* After a runtime error, reports still on their way are expected. */
    int level = status < 0 && status != TF_EFAILED ? TF_LOG_DEBUG : TF_LOG_WARN;
    tf_idle idle;
    tf_idle_reset(&idle);
    for (bool waiting = true; !rc && (waiting || tf_sendq_pending(&m->out));) {
        int from, t, got = tf_link_recv(l, MPI_ANY_SOURCE, &m->in, &from, &t);
        if (got < 0) {
            rc = got;
            break;
        }
        if (got && t == TF_TAG_STOP_ACK)
            acked[from] = true;
        else if (got)
            tf_logf(&rt->log, level,
                    "message with tag %d from rank %d after the end", t, from);
        int p = tf_link_pulse(l, &m->out);
        int sent = tf_sendq_progress(&m->out);
        if (p < 0 || sent < 0) {
            rc = p < 0 ? p : sent;
            break;
        }
        waiting = false;
        for (int r = 1; r < l->size; r++)
            waiting |= !acked[r] && !tf_live_is_dead(&l->live, r);
        if (got || sent)
            tf_idle_reset(&idle);
        else
            tf_link_idle(l, &idle);
    }
    free(acked);
    /*
     * Every worker has had the answer to its last steal request before it
     * acknowledged, so no message between workers is left in flight once
     * they hear this: they may stop answering steal requests.
     */
    if (!rc) {
        /* The count may be more than STOP said. */
        b.n = 0;
        tf_wire_put_release(&b, &(tf_wire_release){l->live.nlost});
        rc = to_all(m, TF_TAG_RELEASE, &b);
    }
    return rc ? rc : tf_link_drain(l, &m->out, &m->in, 0, 0, 0, level);
}

/*
 * The status speaks of this run: tasks that failed or were skipped since
 * the last run ended, including ones skipped when they were submitted. The
 * final state is durable before any rank hears how the run ended; a write
 * error at any point of the run fails it on every rank.
 */
static int end(tf_master *m, int rc)
{
    tf_runtime *rt = m->rt;
    int status = rc;
    if (tf_tasks_new_failures(&rt->tasks) && !status)
        status = TF_EFAILED;
    int crc = rt->ck ? tf_ckstate_end(rt->ck, &rt->tasks, &rt->reg) : 0;
    if (crc && (!status || status == TF_EFAILED))
        status = crc;
    else if (rt->ck && !crc && rt->trace)
        tf_tracing_note(rt->trace, "checkpoint", tf_ckstate_note(rt->ck));
    /* A halt ends this run only: tasks submitted for the next one run. */
    tf_sched_unhalt(&rt->tasks.sched);
    /* Outputs freed at the end go now, not with the next run's tasks. */
    if (!m->local && !rc) {
        int frc = flush(m, true);
        if (frc && !status)
            status = frc;
    }
    if (!m->local) {
        int src = stop(m, status);
        if (!rc && src)
            status = src;
    }
    for (int w = 0; m->batch && w + 1 < rt->link.size; w++)
        tf_buf_free(&m->batch[w]);
    free(m->batch);

    free(m->ntask);
    tf_buf_free(&m->in);
    tf_sendq_free(&m->out);
    return status;
}

int tf_schedloop_run(tf_runtime *rt)
{
    tf_master m = {.rt = rt, .local = rt->link.size == 1};
    int rc = begin(&m);
    tf_idle idle;
    tf_idle_reset(&idle);
    while (!rc && !tf_sched_is_finished(&rt->tasks.sched)) {
        bool progress = false;
        rc = poll(&m, &progress);
        if (!rc)
            rc = settle(&m, &progress);
        if (!rc)
            rc = dispatch(&m, &progress);
        if (!rc)
            tick(&m);
        if (progress)
            tf_idle_reset(&idle);
        else
            tf_link_idle(&rt->link, &idle);
    }
    return end(&m, rc);
}
