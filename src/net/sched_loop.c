/* Rank 0's scheduling loop: poll, settle, halt, dispatch, tick, idle; then stop every worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/wire.h"
#include "fetch.h"
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
        /* Reported after halt() called on_halt: ended by the halt. */
        ev.halted = kind == TF_RUN_FAILED && m->halted == TF_WIRE_HALT_NOW;
    }
    /*
     * The callback first: it may know better than the runtime that the
     * attempt was ended by a stop (tf_event_interrupted), for the trace.
     */
    rt->in_attempt_event = kind == TF_RUN_RETRY || kind == TF_RUN_FAILED;
    rt->event_interrupted = false;
    if (rt->cfg.on_event)
        rt->cfg.on_event(rt->cfg.event_user, rt, &ev);
    rt->in_attempt_event = false;
    if (rt->trace && t != TF_NONE) {
        char name[512];
        task_name(rt, t, name, sizeof name);
        ev.halted |= rt->event_interrupted;
        tf_tracing_event(rt->trace, &ev, name, rt->tasks.sched.dag.cores[t]);
    }
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
            rc = tf_master_send_task(m, a[i].task, a[i].worker, true);
    for (size_t i = 0; i < n && !rc; i++) {
        tf_trec *r = &rt->tasks.rec[a[i].task];
        switch (a[i].kind) {
        case TF_ACT_RUN:
            rc = tf_master_send_task(m, a[i].task, a[i].worker, false);
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
        case TF_ACT_UNNEEDED:
            tf_master_fire(m,
                           a[i].kind == TF_ACT_SKIP ? TF_RUN_SKIPPED
                                                    : TF_RUN_UNNEEDED,
                           a[i].task, a[i].cause);
            if (!(rt->tasks.sched.dag.flags[a[i].task] & TF_TF_NOOP))
                tf_master_ended(m, a[i].task);
            break;
        }
    }
    tf_sched_clear_actions(&rt->tasks.sched);
    int prc = tf_master_push_mine(m);
    return rc ? rc : prc;
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
 * tf_halt or tf_halt_soon was called: stop the scheduler (SKIPs for
 * everything not yet dispatched), have every rank drop what is queued and,
 * for a halt `mode` NOW, end what runs. A soon halt made sooner later comes
 * here again with NOW.
 */
static int halt(tf_master *m, uint8_t mode)
{
    tf_runtime *rt = m->rt;
    int rc = 0;
    bool first = !m->halted;
    tf_logf(&rt->log, TF_LOG_INFO, "halting the run%s",
            mode == TF_WIRE_HALT_SOON ? ": running tasks finish" : "");
    m->halted = mode;
    if (first) {
        rc = tf_sched_halt(&rt->tasks.sched);
        if (!rc)
            rc = act(m);
        /* Tasks already given out go before the HALT, so workers drop them. */
        if (!rc)
            rc = flush(m, false);
        /*
         * Drop the queue before on_halt, which may take a while to end
         * running tasks: task threads freed meanwhile must find nothing
         * left to start.
         */
        if (m->self != TF_NONE)
            tf_pool_drop_queued(&rt->pool);
    }
    if (mode == TF_WIRE_HALT_NOW && rt->cfg.on_halt)
        rt->cfg.on_halt(rt->cfg.halt_user);
    if (!rc && !m->local)
        rc = to_all(m, TF_TAG_HALT, &(tf_buf){&mode, 1, 1});
    if (!rc && !m->local && !rt->cfg.main_runs_tasks)
        tf_live_call(&rt->link.live, tf_idle_clock_ns());
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
        if (w != m->self && tf_live_is_dead(&rt->link.live, (int)w + 1) &&
            !s->workers[w].lost) {
            /* Every worker hears: its fetches from there go unanswered. */
            uint8_t body[TF_WIRE_LOST_SIZE];
            tf_buf b = {body, 0, sizeof body};
            tf_wire_put_lost(&b, &(tf_wire_lost){(uint32_t)w + 1});
            rc = to_all(m, TF_TAG_LOST, &b);
            if (!rc)
                rc = tf_master_lose_outputs(m, (int)w + 1);
            /* Rank 0's own tasks waiting for its parts run without. */
            if (!rc && m->self != TF_NONE)
                tf_pool_holder_lost(&rt->pool, (int)w + 1);
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
    if (tag == TF_TAG_DATA && m->self != TF_NONE)
        return tf_fetch_data(rt, &m->in, from);
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
 * Rank 0 runs tasks of its own (its thread is a slot): for a slice of
 * time, then it looks at messages again. The slice bounds how long a
 * worker's report waits for rank 0 (the windows cover that wait, which
 * poll() measures), and amortises a look at the messages (~0.2 us) over
 * tasks shorter than that. Measured on 2 cores (docs/performance.md).
 */
#define TF_RANK0_SLICE_NS 20000u

static void run_slice(tf_master *m, bool *progress)
{
    tf_pool *p = &m->rt->pool;
    if (p->driver_runs && tf_pool_run(p, SIZE_MAX, TF_RANK0_SLICE_NS))
        *progress = true;
}

/*
 * The fence of a deposed scheduler (docs/fault-tolerance.md, "Standby
 * scheduler"). Workers take over from a rank 0 they have not heard from
 * for a heartbeat period, and every worker tells rank 0 it lives at least
 * every quarter of one. So a rank 0 that has heard from no worker for half
 * a period holds no lease: before it takes in anything more, and before
 * it records each result (a journal record, an event whose callback
 * writes a joblog row), it looks, at most once a millisecond, whether a
 * successor has claimed a later term in the state directory. A successor
 * claims its term first, then waits out the lease.
 */
#define TF_TERM_CHECK_NS 1000000u

/* Whether this rank 0 has a fence at all (a state, and heartbeats or alone). */
static bool fence_on(const tf_master *m)
{
    const tf_runtime *rt = m->rt;
    /* Alone since a take-over, it never holds a lease: it always looks. */
    bool alone = m->local && rt->gone;
    return rt->ck && (alone || (!m->local && rt->link.live.hb_ns));
}

/*
 * Whether rank 0 holds the lease now (coarse clock: 8 ns here, 30 for the
 * precise one; a few ms of resolution against a lease of half a second or
 * more). *now gets the time.
 */
static bool leased(const tf_master *m, uint64_t *now)
{
    const tf_live *lv = &m->rt->link.live;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    *now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return !(m->local && m->rt->gone) &&
           *now <= __atomic_load_n(&lv->heard_any, __ATOMIC_RELAXED) +
                       lv->hb_ns / 2;
}

int tf_master_fenced(tf_master *m)
{
    tf_runtime *rt = m->rt;
    if (!fence_on(m))
        return 0;
    if (tf_ckstate_error(rt->ck) == TF_EDEPOSED)
        return TF_EDEPOSED;
    uint64_t now;
    if (leased(m, &now) || now < m->term_check_at)
        return 0;
    m->term_check_at = now + TF_TERM_CHECK_NS;
    return tf_ckstate_deposed(rt->ck) ? TF_EDEPOSED : 0;
}

/*
 * The fence for rank 0's own slots (tf_pool.may_run): its task threads
 * start queued jobs on their own, also in the moment it is continued
 * after a stop, before its loop looks. So they look too, by the same
 * rule (without writing to the state: another thread's).
 */
static bool may_run(void *user)
{
    tf_master *m = user;
    if (__atomic_load_n(&m->gate_deposed, __ATOMIC_RELAXED))
        return false;
    uint64_t now;
    if (leased(m, &now) ||
        now < __atomic_load_n(&m->gate_check_at, __ATOMIC_RELAXED))
        return true;
    __atomic_store_n(&m->gate_check_at, now + TF_TERM_CHECK_NS,
                     __ATOMIC_RELAXED);
    if (!tf_ckstate_term_passed(m->rt->ck))
        return true;
    __atomic_store_n(&m->gate_deposed, true, __ATOMIC_RELAXED);
    return false;
}

/*
 * Take in what has happened: the own pool's events, and every message
 * that has arrived; sends move on and silent workers are written off.
 */
static int poll(tf_master *m, bool *progress)
{
    tf_runtime *rt = m->rt;
    int from, tag, got, rc = tf_master_fenced(m);
    if (rc)
        return rc;
    if (m->self != TF_NONE) {
        run_slice(m, progress);
        rc = tf_intake_local(m, progress);
        if (m->local || rc)
            return rc;
    }
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

uint64_t tf_rt_deadline_clock(uint64_t realtime_ns)
{
    if (!realtime_ns)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t now = tf_idle_clock_ns();
    return realtime_ns > wall ? now + (realtime_ns - wall) : now ? now : 1;
}

/* Whether the deadline stops the run now (the scheduler's clock read). */
static bool deadline_stops(const tf_runtime *rt)
{
    const tf_sched *s = &rt->tasks.sched;
    bool past = s->wt.now_ns >= s->wt.deadline_ns;
    /*
     * A soon halt lets running tasks finish, but not past the deadline; a
     * run held open (a followed task file) stops at it with nothing to do.
     */
    if (rt->halt_mode == TF_WIRE_HALT_SOON)
        return past && s->count[TF_ST_DISPATCHED];
    return tf_sched_must_stop(s) || (past && rt->hold_open);
}

/*
 * The deadline has come with tasks unfinished, or nothing left can end
 * before it: the app hears of it first (it may move the deadline later:
 * an allocation extended), then the run halts, as tf_halt would.
 */
static void out_of_time(tf_master *m)
{
    tf_runtime *rt = m->rt;
    tf_sched *s = &rt->tasks.sched;
    tf_master_fire(m, TF_RUN_DEADLINE, TF_NONE, 0);
    if (!deadline_stops(rt))
        return;
    tf_logf(&rt->log, TF_LOG_INFO,
            "deadline: stopping with %u tasks running or queued and %zu "
            "that could not end in time",
            s->count[TF_ST_DISPATCHED], s->wt.late.n);
    if (rt->trace)
        tf_tracing_note(rt->trace, "deadline", NULL);
    m->out_of_time = true;
    tf_halt(rt);
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
    if (!rc && rt->ck && tf_ckstate_error(rt->ck) == TF_EDEPOSED)
        return TF_EDEPOSED;
    /* The state cannot be written: go no further without a way back. */
    if (!rc && rt->ck && tf_ckstate_error(rt->ck) &&
        rt->halt_mode != TF_WIRE_HALT_NOW)
        tf_halt(rt);
    /* The clock is read only when there is a deadline (the dispatch's too). */
    tf_sched *s = &rt->tasks.sched;
    if (!rc && s->wt.deadline_ns && rt->halt_mode != TF_WIRE_HALT_NOW) {
        tf_sched_clock(s, tf_idle_clock_ns());
        if (deadline_stops(rt))
            out_of_time(m);
    }
    if (!rc && rt->halt_mode > m->halted) {
        *progress = true;
        rc = halt(m, rt->halt_mode);
    }
    return rc;
}

/*
 * Rank 0's own pool is fed like a worker's, but its thread schedules too,
 * so it gets through its share more slowly: at a run's end a worker sat
 * idle while rank 0's pool still queued tasks (np 2, 2,048 tasks of
 * 1.6 us: the worker idled for the last 15% of the run). So when nothing
 * is ready and a worker has a slot free, rank 0 moves up to half of its
 * own queued tasks to that worker, as a thief would take them (the
 * scheduler's tf_sched_task_moved; the trace shows a steal from rank 0).
 */
static int share_own(tf_master *m, bool *progress)
{
    tf_runtime *rt = m->rt;
    tf_sched *s = &rt->tasks.sched;
    if (m->self == TF_NONE || m->local || s->halted || !tf_rq_is_empty(&s->rq))
        return 0;
    int rc = 0;
    for (uint32_t w = 0; w < s->nworkers && !rc; w++) {
        tf_sched_worker *sw = &s->workers[w];
        /* (a window may have shrunk below what the worker holds) */
        size_t room = sw->depth > sw->ntasks ? sw->depth - sw->ntasks : 0;
        if (w == m->self || sw->lost || sw->ntasks >= sw->slots || !room ||
            tf_live_is_dead(&rt->link.live, (int)w + 1))
            continue;
        size_t q = tf_pool_stealable(&rt->pool);
        if (!q)
            break;
        tf_job jobs[64];
        size_t n = (q + 1) / 2;
        n = tf_pool_steal(&rt->pool, n < room ? n < 64 ? n : 64 : room,
                          sw->slots, jobs);
        uint32_t moved = 0;
        for (size_t i = 0; i < n; i++) {
            tf_job *j = &jobs[i];
            if (rc || tf_sched_task_moved(s, j->idx, m->self, w)) {
                /* Kept after all, with the inputs it holds (as wr_give). */
                for (uint32_t k = 0; k < j->ndeps; k++)
                    j->deps[k].kind = TF_DEP_INLINE;
                int prc = tf_pool_push(&rt->pool, j, 1, 0, &m->fetch);
                rc = rc ? rc : prc;
                continue;
            }
            tf_pool_release_inputs(&rt->pool, j);
            free(j->owner);
            rc = tf_master_send_task(m, j->idx, w, false);
            moved++;
        }
        if (moved) {
            *progress = true;
            if (rt->trace)
                tf_tracing_moved(rt->trace, 0, (int)w + 1, moved);
        }
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
    if (!rc)
        rc = share_own(m, progress);
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
    /* A TICK callback writes files (the command's status): not deposed. */
    if (rt->cfg.on_event && now >= m->next_tick && !tf_master_fenced(m)) {
        /* The callback may submit tasks now: nothing refers to the tables. */
        rt->in_tick = true;
        tf_master_fire(m, TF_RUN_TICK, TF_NONE, 0);
        rt->in_tick = false;
        if (rt->tasks.batching) {
            tf_logf(&rt->log, TF_LOG_ERROR,
                    "a batch begun in a tick was not ended there: dropped");
            rt->tasks.batching = false;
            tf_tasks_drop_held(&rt->tasks);
        }
        m->next_tick = tf_idle_clock_ns() + m->tick_ns;
    }
}

/*
 * The run ends once every task is done, unless tf_hold_open keeps it
 * going (for tasks its TICK callback may still submit) and it was not
 * halted.
 */
static bool ends(const tf_master *m)
{
    return tf_sched_is_finished(&m->rt->tasks.sched) &&
           (!m->rt->hold_open || m->halted);
}

/*
 * Held open with nothing to do: only a tick can bring work, so sleep
 * until then, in naps short enough for heartbeats and doorbells (a
 * message ends one), not the 1 ms ones of the usual back-off.
 */
#define TF_HELD_NAP_NS 50000000L

static void wait_held(tf_master *m)
{
    uint64_t now = tf_idle_clock_ns();
    long ns = m->next_tick > now ? (long)(m->next_tick - now) : 0;
    tf_link_nap(&m->rt->link, ns < TF_HELD_NAP_NS ? ns : TF_HELD_NAP_NS);
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
    /* The own pool, when rank 0 has one, is the last worker. */
    uint32_t nworkers = (uint32_t)rt->link.size - 1 + rt->have_pool;
    m->self = rt->have_pool ? tf_rt_worker_of(rt, 0) : TF_NONE;
    if (!m->local && (!(m->batch = calloc(nworkers, sizeof *m->batch)) ||
                      !(m->ntask = calloc(nworkers, sizeof *m->ntask))))
        return TF_ENOMEM;
    s->place = tf_master_place;
    s->place_user = rt;
    int rc = 0;
    for (uint32_t w = s->nworkers; w < nworkers && !rc; w++) {
        uint32_t slots = rt->world.slots[tf_rt_rank_of(rt, w)];
        uint32_t depth = slots * (uint32_t)rt->cfg.prefetch;
        uint32_t id;
        rc = tf_sched_add_worker(s, slots, depth, &id);
    }
    /* Each run takes the deadline as it is now (tf_set_deadline). */
    if (!rc)
        rc = tf_sched_set_deadline(s, tf_rt_deadline_clock(rt->cfg.deadline_ns));
    if (!rc && rt->ck)
        rc = tf_ckstate_begin(rt->ck, &rt->tasks, &rt->reg);
    /* Rank 0's own slots keep to its fence. */
    if (rt->have_pool && fence_on(m)) {
        rt->pool.may_run = may_run;
        rt->pool.may_run_user = m;
    }
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
            tf_link_idle(l, &m->out, &idle);
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

/* What a run held, freed at its end. */
static void release(tf_master *m)
{
    tf_runtime *rt = m->rt;
    if (rt->have_pool)
        rt->pool.may_run = NULL;
    for (int w = 0; m->batch && w + 1 < rt->link.size; w++)
        tf_buf_free(&m->batch[w]);
    free(m->batch);
    free(m->ntask);
    free(m->mine);
    free(m->fetch.v);
    /* Copies of parts fetched for tasks that then did not run here. */
    if (m->self != TF_NONE && !m->local)
        tf_pool_sweep(&rt->pool);
    tf_buf_free(&m->in);
    tf_sendq_free(&m->out);
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
    /* Stopped by the deadline: what is left runs on resume. */
    if (m->out_of_time && (!status || status == TF_EFAILED))
        status = TF_EDEADLINE;
    int crc = rt->ck ? tf_ckstate_end(rt->ck, &rt->tasks, &rt->reg) : 0;
    if (crc && (!status || status == TF_EFAILED || status == TF_EDEADLINE))
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
    /*
     * The trace and the application's own record of the run before any
     * worker leaves: a successor redoes them if this rank dies first, and
     * none is needed after (TF_RUN_END).
     */
    if (rt->trace)
        tf_tracing_end(rt->trace);
    if (rt->cfg.on_event) {
        tf_run_event ev = {.kind = TF_RUN_END,
                           .id = TF_NO_TASK,
                           .status = status,
                           .rank = -1,
                           .cause = TF_NO_TASK};
        rt->cfg.on_event(rt->cfg.event_user, rt, &ev);
    }
    if (!m->local) {
        int src = stop(m, status);
        if (!rc && src)
            status = src;
    }
    release(m);
    return status;
}

/*
 * Deposed: another rank schedules the run now, from the state in the
 * directory, and the workers are its own. This rank writes nothing more
 * (no snapshot, no event, no message): its own slots' tasks are ended, as
 * a worker ends them when rank 0 is lost, and run again under the
 * successor unless the journal had them.
 */
static int deposed(tf_master *m)
{
    tf_runtime *rt = m->rt;
    rt->deposed = true;
    tf_rt_end_tasks(rt, false);
    tf_live_took_losses(&rt->link.live, (uint32_t)rt->link.size - 1);
    release(m);
    return TF_EDEPOSED;
}

int tf_schedloop_run(tf_runtime *rt)
{
    tf_master m = {.rt = rt, .local = rt->link.size == 1};
    int rc = begin(&m);
    tf_idle idle;
    tf_idle_reset(&idle);
    while (!rc && !ends(&m)) {
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
        else if (rt->hold_open && !m.halted &&
                 tf_sched_is_finished(&rt->tasks.sched))
            wait_held(&m);
        else
            tf_link_idle(&rt->link, &m.out, &idle);
    }
    return rc == TF_EDEPOSED ? deposed(&m) : end(&m, rc);
}
