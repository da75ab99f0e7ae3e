/* The scheduling loops: rank 0's scheduler (remote or local workers) and the worker loop. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/grow.h"
#include "util/idle.h"

/* ---- sends in flight: each owns its buffer until MPI is done with it ---- */

typedef struct tf_outq {
    MPI_Request *req;
    tf_buf *buf;
    int *dest;
    size_t n, cap;
    tf_buf *spare; /* finished buffers kept for reuse */
    size_t nspare, spcap;
} tf_outq;

static void outq_free(tf_outq *q)
{
    for (size_t i = 0; i < q->n; i++)
        tf_buf_free(&q->buf[i]);
    for (size_t i = 0; i < q->nspare; i++)
        tf_buf_free(&q->spare[i]);
    free(q->req);
    free(q->buf);
    free(q->dest);
    free(q->spare);
    memset(q, 0, sizeof *q);
}

/* An empty buffer, reusing a finished one when there is one. */
static tf_buf outq_take_buf(tf_outq *q)
{
    if (q->nspare) {
        tf_buf b = q->spare[--q->nspare];
        b.n = 0;
        return b;
    }
    return (tf_buf){NULL, 0, 0};
}

static void outq_give_back(tf_outq *q, tf_buf *b)
{
    if (q->nspare == q->spcap) {
        size_t ncap = q->spcap ? q->spcap * 2 : 8;
        tf_buf *p = realloc(q->spare, ncap * sizeof *p);
        if (!p) {
            tf_buf_free(b);
            return;
        }
        q->spare = p;
        q->spcap = ncap;
    }
    q->spare[q->nspare++] = *b;
}

/* Start sending b (taken over) to dest. */
static int outq_send(tf_runtime *rt, tf_outq *q, tf_buf *b, int dest, int tag)
{
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 16;
        MPI_Request *r = realloc(q->req, ncap * sizeof *r);
        if (!r)
            return TF_ENOMEM;
        q->req = r;
        tf_buf *bb = realloc(q->buf, ncap * sizeof *bb);
        if (!bb)
            return TF_ENOMEM;
        q->buf = bb;
        int *d = realloc(q->dest, ncap * sizeof *d);
        if (!d)
            return TF_ENOMEM;
        q->dest = d;
        q->cap = ncap;
    }
    if (b->n > (size_t)INT32_MAX)
        return TF_ERANGE;
    q->buf[q->n] = *b;
    q->dest[q->n] = dest;
    if (MPI_Isend(b->p, (int)b->n, MPI_BYTE, dest, tag, rt->comm,
                  &q->req[q->n]) != MPI_SUCCESS)
        return TF_EMPI;
    q->n++;
    rt->msgs_sent++;
    tf_rt_bell_ring(rt, dest);
    if (rt->told)
        rt->told[dest] = tf_idle_clock_ns();
    *b = (tf_buf){NULL, 0, 0};
    return 0;
}

/* Retire finished sends. Returns how many finished, or a TF_E code. */
static int outq_progress(tf_outq *q)
{
    int done = 0;
    for (size_t i = 0; i < q->n;) {
        int flag = 0;
        if (MPI_Test(&q->req[i], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return TF_EMPI;
        if (!flag) {
            i++;
            continue;
        }
        outq_give_back(q, &q->buf[i]);
        q->n--;
        q->req[i] = q->req[q->n];
        q->buf[i] = q->buf[q->n];
        q->dest[i] = q->dest[q->n];
        done++;
    }
    return done;
}

/*
 * Forget the sends to a rank that is gone: they would never complete.
 * Their buffers are leaked on purpose, as MPI may still hold them; a few
 * messages per lost rank.
 */
static void outq_abandon(tf_outq *q, int dest)
{
    for (size_t i = 0; i < q->n;) {
        if (q->dest[i] != dest) {
            i++;
            continue;
        }
        MPI_Request_free(&q->req[i]);
        q->n--;
        q->req[i] = q->req[q->n];
        q->buf[i] = q->buf[q->n];
        q->dest[i] = q->dest[q->n];
    }
}

static bool is_dead(const tf_runtime *rt, int r)
{
    return rt->dead && rt->dead[r];
}

/*
 * Receive one pending message from src (or any), if there is one. Messages
 * of a rank written off are read and dropped: it may not be dead, only
 * late, and what it says was given to others meanwhile. Heartbeats only
 * count as hearing from their sender.
 */
static int try_recv(tf_runtime *rt, int src, tf_buf *in, int *from, int *tag)
{
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(src, MPI_ANY_TAG, rt->comm, &flag, &msg, &st) !=
            MPI_SUCCESS)
            return TF_EMPI;
        if (!flag)
            return 0;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        in->n = 0;
        if (tf_buf_reserve(in, (size_t)count + 1))
            return TF_ENOMEM;
        if (MPI_Mrecv(in->p, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS)
            return TF_EMPI;
        in->n = (size_t)count;
        *from = st.MPI_SOURCE;
        *tag = st.MPI_TAG;
        rt->msgs_recv++;
        if (rt->heard)
            rt->heard[*from] = tf_idle_clock_ns();
        if (is_dead(rt, *from))
            tf_logf(&rt->log, TF_LOG_DEBUG,
                    "message with tag %d from rank %d, written off: dropped",
                    *tag, *from);
        else if (*tag != TF_TAG_HEARTBEAT)
            return 1;
    }
}

/* Write off rank r for good (heartbeat_ms): the runtime is degraded. */
static void lose(tf_runtime *rt, tf_outq *q, int r)
{
    rt->dead[r] = true;
    rt->nlost++;
    rt->degraded = true;
    outq_abandon(q, r);
    tf_logf(&rt->log, r ? TF_LOG_WARN : TF_LOG_ERROR,
            "rank %d silent for %.1f s: written off%s", r,
            (double)(tf_idle_clock_ns() - rt->heard[r]) / 1e9,
            r ? "; its tasks go to other ranks" : "; ending this rank's run");
}

/*
 * Heartbeats (heartbeat_ms): tell a peer this rank lives when it has sent
 * it nothing for a quarter of the timeout, and write off a peer silent for
 * all of it. Rank 0 watches its workers, a worker rank 0 only. Checked
 * every eighth of the timeout. Returns the ranks lost now, or TF_ELOST on
 * a worker when rank 0 is gone.
 */
static int pulse(tf_runtime *rt, tf_outq *q)
{
    if (!rt->hb_ns)
        return 0;
    uint64_t now = tf_idle_clock_ns();
    if (now < rt->next_pulse)
        return 0;
    rt->next_pulse = now + rt->hb_ns / 8;
    int nlost = 0;
    int first = rt->rank == 0 ? 1 : 0, end = rt->rank == 0 ? rt->size : 1;
    for (int r = first; r < end; r++) {
        if (rt->dead[r])
            continue;
        if (now - rt->heard[r] > rt->hb_ns) {
            lose(rt, q, r);
            if (rt->rank)
                return TF_ELOST;
            nlost++;
        } else if (now - rt->told[r] >= rt->hb_ns / 4) {
            tf_buf b = outq_take_buf(q);
            int rc = outq_send(rt, q, &b, r, TF_TAG_HEARTBEAT);
            if (rc) {
                tf_buf_free(&b);
                return rc;
            }
        }
    }
    return nlost;
}

/* Sleep ns (0: not at all): on the pool's events, the doorbell or a timer. */
static void idle_nap(tf_runtime *rt, long ns)
{
    if (!ns)
        return;
    if (rt->have_pool && rt->pool.nthreads) {
        tf_pool_wait(&rt->pool, ns); /* wakes early when a task finishes */
    } else if (!tf_rt_bell_wait(rt, ns)) { /* wakes early when rung */
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
}

static void idle_sleep(tf_runtime *rt, tf_idle *idle)
{
    idle_nap(rt, tf_idle_next(idle));
}

/* ---- rank 0 ---- */

/*
 * Per-run state of rank 0. Worker w of the scheduler is rank w+1, or, with
 * a single rank, the local pool.
 */
typedef struct tf_master {
    tf_runtime *rt;
    tf_outq out;
    tf_buf *batch;   /* per worker: header byte + task records not yet sent */
    tf_buf in;
    bool local;
    uint64_t quiet_at; /* when a poll last found no message; 0: one has since */
} tf_master;

/* Tell the app's callback, if any, about task t (TF_NONE for a tick). */
static void fire(tf_runtime *rt, tf_run_event_kind kind, uint32_t t,
                 int32_t cause)
{
    if (!rt->cfg.on_event)
        return;
    tf_run_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.id = TF_NO_TASK;
    ev.rank = -1;
    ev.cause = TF_NO_TASK;
    if (t != TF_NONE) {
        const tf_trec *r = &rt->rec[t];
        ev.id = r->gid;
        ev.status = r->status;
        ev.rank = r->rank;
        ev.attempt = rt->sched.dag.attempts[t];
        ev.start_ns = r->start_ns;
        ev.end_ns = r->end_ns;
        ev.slot = r->slot;
        ev.output = r->out;
        ev.output_len = r->out_len;
        if (kind == TF_RUN_SKIPPED && (uint32_t)cause != TF_NONE)
            ev.cause = rt->rec[cause].gid;
    }
    rt->cfg.on_event(rt->cfg.event_user, rt, &ev);
}

/*
 * Encode task t for worker w, or queue it locally. A parked task (PARK)
 * carries, for each dependency not yet done, the dependency's index in
 * place of its output: the worker fills it in when that task, which runs
 * there, has finished; its attempt number is the one it will run as.
 */
static int master_run_task(tf_master *m, uint32_t t, uint32_t w, bool parked)
{
    tf_runtime *rt = m->rt;
    const tf_dag *dag = &rt->sched.dag;
    tf_trec *r = &rt->rec[t];
    const uint32_t *deps = (const uint32_t *)r->req;
    const uint8_t *in = r->req ? r->req + (size_t)r->ndeps * 4 : NULL;
    uint8_t attempt = tf_sched_sent_attempt(&rt->sched, t, parked);
    if (m->local) {
        tf_dep *dv = NULL;
        if (r->ndeps) {
            dv = malloc(r->ndeps * sizeof *dv);
            if (!dv)
                return TF_ENOMEM;
            for (uint32_t i = 0; i < r->ndeps; i++) {
                uint32_t d;
                memcpy(&d, &deps[i], sizeof d);
                bool wait = dag->state[d] != TF_ST_DONE;
                dv[i] = (tf_dep){rt->rec[d].out, rt->rec[d].out_len,
                                 wait ? d : TF_POOL_NO_ANCHOR, NULL};
            }
        }
        tf_job job = {t,  r->fn,    r->gid, dag->cores[t], attempt,
                      r->in_len, in, r->ndeps, dv, dv};
        int rc = tf_pool_push(&rt->pool, &job, 1);
        if (rc)
            free(dv);
        return rc;
    }
    tf_buf *b = &m->batch[w];
    size_t need = TF_WIRE_BATCH_SIZE + TF_WIRE_TASK_SIZE + (size_t)r->in_len;
    for (uint32_t i = 0; i < r->ndeps; i++) {
        uint32_t d;
        memcpy(&d, &deps[i], sizeof d);
        need += dag->state[d] != TF_ST_DONE
                    ? TF_WIRE_ANCHOR_SIZE
                    : tf_wire_dep_size(rt->rec[d].out_len);
    }
    if (tf_buf_reserve(b, need))
        return TF_ENOMEM;
    if (!b->n) /* the header's flags are set when the batch is sent */
        tf_wire_put_batch(b, &(tf_wire_batch){0});
    tf_wire_task rec = {t, r->fn, r->gid, dag->cores[t], attempt, 0,
                        r->in_len, r->ndeps};
    tf_wire_put_task(b, &rec);
    tf_buf_put(b, in, r->in_len);
    for (uint32_t i = 0; i < r->ndeps; i++) {
        uint32_t d;
        memcpy(&d, &deps[i], sizeof d);
        if (dag->state[d] != TF_ST_DONE)
            tf_wire_put_anchor(b, d);
        else
            tf_wire_put_output(b, rt->rec[d].out, rt->rec[d].out_len);
    }
    return 0;
}

/* Carry out the scheduler's actions: queue RUNs, record FAIL/SKIP causes. */
static int master_act(tf_master *m)
{
    tf_runtime *rt = m->rt;
    size_t n;
    const tf_action *a = tf_sched_actions(&rt->sched, &n);
    int rc = 0;
    /*
     * Parked tasks first: a worker (or the local pool) must hold a parked
     * task before the task it waits for can finish, and tasks are taken in
     * the order they come.
     */
    for (size_t i = 0; i < n && !rc; i++)
        if (a[i].kind == TF_ACT_PARK)
            rc = master_run_task(m, a[i].task, a[i].worker, true);
    for (size_t i = 0; i < n && !rc; i++) {
        tf_trec *r = &rt->rec[a[i].task];
        switch (a[i].kind) {
        case TF_ACT_RUN:
            rc = master_run_task(m, a[i].task, a[i].worker, false);
            break;
        case TF_ACT_PARK:
            break;
        case TF_ACT_RETRY:
            fire(rt, TF_RUN_RETRY, a[i].task, 0);
            break;
        case TF_ACT_FAIL:
            if (a[i].cause)
                r->status = a[i].cause;
            tf_logf(&rt->log, TF_LOG_INFO, "task %llu failed (status %d)",
                    (unsigned long long)r->gid, r->status);
            fire(rt, TF_RUN_FAILED, a[i].task, 0);
            break;
        case TF_ACT_SKIP:
            fire(rt, TF_RUN_SKIPPED, a[i].task, a[i].cause);
            break;
        }
    }
    tf_sched_clear_actions(&rt->sched);
    return rc;
}

static int master_done(tf_master *m, uint32_t t, int rank, int32_t status,
                       uint64_t t0, uint64_t t1, uint16_t slot, void *out,
                       uint32_t out_len)
{
    tf_runtime *rt = m->rt;
    tf_trec *r = &rt->rec[t];
    free(r->out);
    rt->data_bytes += (size_t)out_len - r->out_len;
    r->out = out;
    r->out_len = out_len;
    r->status = status;
    r->rank = rank;
    r->start_ns = t0;
    r->end_ns = t1;
    r->slot = slot;
    tf_rt_ck_finished(rt, t);
    /* Windows follow durations; a thief's report counts for the thief. */
    tf_sched_observe(&rt->sched, m->local ? 0 : (uint32_t)rank - 1,
                     t1 > t0 ? t1 - t0 : 0);
    if (status)
        return tf_sched_task_failed(&rt->sched, t, status);
    int rc = tf_sched_task_done(&rt->sched, t);
    if (!rc)
        fire(rt, TF_RUN_DONE, t, 0);
    return rc;
}

/*
 * A task submitted from inside task `parent`. An unknown dependency cannot
 * be reported to the submitter any more, so the child is added doomed: it
 * is SKIPPED with status TF_EDEP and the run goes on. On resume, a child
 * the state has done is done at once, with its stored output.
 */
static int master_submit(tf_master *m, int rank, uint64_t gid,
                         uint64_t parent, uint32_t fn, int32_t prio,
                         uint16_t cores, int retries, const uint64_t *dgid,
                         uint32_t ndeps, const void *in, uint32_t in_len)
{
    tf_runtime *rt = m->rt;
    uint32_t small[16] = {0}, *deps = small;
    if (ndeps > 16 && !(deps = malloc(ndeps * sizeof *deps)))
        return TF_ENOMEM;
    uint32_t nknown = 0;
    uint64_t unknown = 0;
    for (uint32_t i = 0; i < ndeps; i++) {
        uint64_t g;
        memcpy(&g, &dgid[i], sizeof g);
        uint32_t d = tf_rt_index_of(rt, g);
        if (d == TF_NONE)
            unknown = g ? g : UINT64_MAX;
        else
            deps[nknown++] = d;
    }
    uint32_t t, p = tf_rt_index_of(rt, parent);
    tf_rt_match mt = {0, TF_NONE, 0, NULL};
    int rc = fn < rt->nfns && p != TF_NONE ? 0 : TF_EPROTO;
    if (!rc)
        rc = tf_rt_ck_match(rt, p, fn, deps, nknown, in, in_len, &mt);
    /* Done in the state: it needs no input, so no dependency either. */
    unsigned flags = mt.flags ? mt.flags : unknown ? TF_RT_DOOMED : 0;
    if (!rc)
        rc = tf_rt_add_task(rt, gid, fn, prio, cores, retries, deps, nknown,
                            in, in_len, flags, &t);
    if (!rc)
        rc = tf_rt_ck_added(rt, t, p, &mt);
    else
        free(mt.out);
    if (!rc && (flags & TF_RT_DOOMED)) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "task %llu submitted on rank %d depends on unknown task "
                "%llu: skipped",
                (unsigned long long)gid, rank, (unsigned long long)unknown);
        rt->rec[t].status = TF_EDEP;
    }
    if (deps != small)
        free(deps);
    return rc;
}

/* Apply one REPORT message from rank `from`. */
static int master_report(tf_master *m, int from, const tf_buf *msg)
{
    tf_runtime *rt = m->rt;
    tf_rd r = tf_rd_make(msg->p, msg->n);
    int rc = 0;
    while (!rc && tf_rd_more(&r)) {
        /*
         * Reports are taken from any rank, not only the one rank 0 thinks
         * holds the task: a thief's DONE may overtake the victim's MOVED.
         * The attempt number tells a current report from a stale one.
         */
        uint8_t kind = tf_rd_peek_u8(&r); /* its decoder reads it again */
        if (kind == TF_REC_DONE) {
            tf_wire_done d;
            if (!tf_wire_get_done(&r, &d))
                break;
            const void *p = tf_rd_take(&r, d.out_len);
            if (!r.ok)
                break;
            uint32_t t = d.index;
            if (!tf_sched_is_current(&rt->sched, t, d.attempt)) {
                tf_logf(&rt->log, TF_LOG_WARN,
                        "rank %d reported task index %u (attempt %u) it does "
                        "not hold; ignored",
                        from, t, d.attempt);
                continue;
            }
            void *out = NULL;
            if (d.out_len && !(out = malloc(d.out_len)))
                return TF_ENOMEM;
            if (d.out_len)
                memcpy(out, p, d.out_len);
            rc = master_done(m, t, from, d.status, d.start_ns, d.end_ns,
                             d.slot, out, d.out_len);
        } else if (kind == TF_REC_UNRUN) {
            tf_wire_unrun u;
            if (!tf_wire_get_unrun(&r, &u))
                break;
            uint32_t t = u.index;
            if (t < rt->sched.dag.n &&
                (rt->sched.dag.state[t] == TF_ST_DISPATCHED ||
                 rt->sched.dag.state[t] == TF_ST_PARKED))
                rc = tf_sched_task_unrun(&rt->sched, t);
        } else if (kind == TF_REC_MOVED) {
            tf_wire_moved mv;
            if (!tf_wire_get_moved(&r, &mv))
                break;
            uint32_t t = mv.index, to = mv.thief;
            /* Already reported by the thief, or stale: nothing to move. */
            if (to >= 1 && to < (uint32_t)rt->size &&
                tf_sched_is_current(&rt->sched, t, mv.attempt) &&
                rt->sched.dag.worker[t] == (uint32_t)(from - 1)) {
                if (tf_sched_task_moved(&rt->sched, t, (uint32_t)from - 1,
                                        to - 1))
                    tf_logf(&rt->log, TF_LOG_WARN,
                            "rank %d gave away task index %u that it may "
                            "not; ignored",
                            from, t);
                else
                    rt->moved++;
            }
        } else if (kind == TF_REC_SUBMIT) {
            tf_wire_submit sb;
            if (!tf_wire_get_submit(&r, &sb))
                break;
            const void *deps = tf_rd_take(&r, (size_t)sb.ndeps * 8);
            const void *in = tf_rd_take(&r, sb.input_len);
            if (!r.ok)
                break;
            rc = master_submit(m, from, sb.id, sb.parent, sb.fn, sb.prio,
                               sb.cores, sb.retries, deps, sb.ndeps, in,
                               sb.input_len);
        } else {
            r.ok = false;
        }
    }
    if (!rc && !r.ok) {
        tf_logf(&rt->log, TF_LOG_ERROR, "malformed report from rank %d", from);
        rc = TF_EPROTO;
    }
    return rc;
}

/* Events of the local pool (single-rank runs). */
static int master_local_events(tf_master *m, bool *progress)
{
    tf_runtime *rt = m->rt;
    const tf_evvec *v = tf_pool_take_events(&rt->pool);
    int rc = 0;
    for (size_t i = 0; i < v->n; i++) {
        tf_event *e = &v->v[i];
        *progress = true;
        if (rc) {
            free(e->data);
            free(e->deps);
            continue;
        }
        if (e->kind == TF_EV_DONE) {
            free(e->owner);
            rc = master_done(m, e->idx, 0, e->status, e->start_ns, e->end_ns,
                             e->slot, e->data, e->data_len);
        } else if (e->kind == TF_EV_UNRUN) {
            free(e->owner);
            rc = tf_sched_task_unrun(&rt->sched, e->idx);
        } else if (e->kind == TF_EV_DROP) {
            free(e->owner); /* the scheduler unparked it by itself */
        } else {
            rc = master_submit(m, 0, e->gid, e->parent, e->fn, e->prio,
                               e->cores, e->retries, e->deps, e->ndeps,
                               e->data, e->data_len);
            free(e->data);
            free(e->deps);
        }
    }
    return rc;
}

/*
 * Send each worker its batch. The header says whether anything else was
 * ready: a worker that runs dry after hearing "nothing" steals from its
 * peers. A worker with room that has not heard it yet gets a header alone
 * (once per dry spell), or it would wait for rank 0 instead of stealing.
 */
static int master_flush(tf_master *m)
{
    if (m->local)
        return 0;
    tf_sched *s = &m->rt->sched;
    for (int w = 0; w + 1 < m->rt->size; w++) {
        tf_buf *bw = &m->batch[w];
        bool dry;
        if (is_dead(m->rt, w + 1) ||
            !tf_sched_notify(s, (uint32_t)w, bw->n > 0, m->rt->steal, &dry))
            continue;
        if (!bw->n) {
            if (tf_buf_reserve(bw, TF_WIRE_BATCH_SIZE))
                return TF_ENOMEM;
            tf_wire_put_batch(bw, &(tf_wire_batch){0});
        }
        bw->p[0] = dry ? TF_WIRE_DRY : 0; /* the BATCH header's flags */
        tf_buf b = *bw;
        *bw = outq_take_buf(&m->out);
        int rc = outq_send(m->rt, &m->out, &b, w + 1, TF_TAG_TASKS);
        if (rc) {
            tf_buf_free(&b);
            return rc;
        }
    }
    return 0;
}

/*
 * tf_halt was called: stop the scheduler (SKIPs for everything not yet
 * dispatched), and have every rank end what runs and drop what is queued.
 */
static int master_halt(tf_master *m)
{
    tf_runtime *rt = m->rt;
    tf_logf(&rt->log, TF_LOG_INFO, "halting the run");
    int rc = tf_sched_halt(&rt->sched);
    if (!rc)
        rc = master_act(m);
    /* Tasks already given out go before the HALT, so workers drop them. */
    if (!rc)
        rc = master_flush(m);
    /*
     * Drop the queue before on_halt, which may take a while to end running
     * tasks: task threads freed meanwhile must find nothing left to start.
     */
    if (m->local)
        tf_pool_drop_queued(&rt->pool);
    if (rt->cfg.on_halt)
        rt->cfg.on_halt(rt->cfg.halt_user);
    if (m->local)
        return rc;
    for (int r = 1; r < rt->size && !rc; r++) {
        if (is_dead(rt, r))
            continue;
        tf_buf b = outq_take_buf(&m->out);
        rc = outq_send(rt, &m->out, &b, r, TF_TAG_HALT);
    }
    return rc;
}

/*
 * Workers were written off: their tasks go back to the queue (or to
 * PENDING, for parked ones). With none left, nothing could run the rest.
 */
static int master_lost(tf_master *m)
{
    tf_runtime *rt = m->rt;
    tf_sched *s = &rt->sched;
    uint32_t live = 0;
    int rc = 0;
    for (uint32_t w = 0; w < s->nworkers && !rc; w++) {
        if (is_dead(rt, (int)w + 1) && !s->workers[w].lost)
            rc = tf_sched_worker_lost(s, w);
        live += !s->workers[w].lost;
    }
    if (!rc && !live) {
        tf_logf(&rt->log, TF_LOG_ERROR, "every worker rank is lost");
        rc = TF_ELOST;
    }
    return rc;
}

/*
 * Keep sends moving and read messages from src until `want` of them carried
 * `tag` and every send has completed. Anything else that arrives at this
 * point is a straggler of a run that is ending: logged at `level`, dropped.
 */
static int drain(tf_runtime *rt, tf_outq *q, tf_buf *in, int src, int tag,
                 int want, int level)
{
    tf_idle idle;
    tf_idle_reset(&idle);
    int seen = 0;
    while (seen < want || q->n) {
        int from, t, got = try_recv(rt, src, in, &from, &t);
        if (got < 0)
            return got;
        int p = pulse(rt, q);
        if (p < 0)
            return p;
        if (got && t == tag)
            seen++;
        else if (got)
            tf_logf(&rt->log, level,
                    "message with tag %d from rank %d after the end", t, from);
        int sent = outq_progress(q);
        if (sent < 0)
            return sent;
        if (got || sent)
            tf_idle_reset(&idle);
        else
            idle_sleep(rt, &idle);
    }
    return 0;
}

/*
 * Tell every live worker the run is over (and how many ranks are lost, so
 * that all know the runtime is degraded), and wait until each has said so
 * or has been written off meanwhile.
 */
static int master_stop(tf_master *m, int32_t status)
{
    tf_runtime *rt = m->rt;
    bool *acked = calloc((size_t)rt->size, sizeof *acked);
    if (!acked)
        return TF_ENOMEM;
    int rc = 0;
    for (int r = 1; r < rt->size && !rc; r++) {
        if (is_dead(rt, r))
            continue;
        tf_buf b = outq_take_buf(&m->out);
        if (tf_buf_reserve(&b, TF_WIRE_STOP_SIZE)) {
            free(acked);
            return TF_ENOMEM;
        }
        tf_wire_put_stop(&b, &(tf_wire_stop){status, rt->nlost});
        rc = outq_send(rt, &m->out, &b, r, TF_TAG_STOP);
    }
    /* After a runtime error, reports still on their way are expected. */
    int level = status < 0 && status != TF_EFAILED ? TF_LOG_DEBUG : TF_LOG_WARN;
    tf_idle idle;
    tf_idle_reset(&idle);
    for (bool waiting = true; !rc && (waiting || m->out.n);) {
        int from, t, got = try_recv(rt, MPI_ANY_SOURCE, &m->in, &from, &t);
        if (got < 0) {
            rc = got;
            break;
        }
        if (got && t == TF_TAG_STOP_ACK)
            acked[from] = true;
        else if (got)
            tf_logf(&rt->log, level,
                    "message with tag %d from rank %d after the end", t, from);
        int p = pulse(rt, &m->out);
        int sent = outq_progress(&m->out);
        if (p < 0 || sent < 0) {
            rc = p < 0 ? p : sent;
            break;
        }
        waiting = false;
        for (int r = 1; r < rt->size; r++)
            waiting |= !acked[r] && !is_dead(rt, r);
        if (got || sent)
            tf_idle_reset(&idle);
        else
            idle_sleep(rt, &idle);
    }
    free(acked);
    /*
     * Every worker has had the answer to its last steal request before it
     * acknowledged, so no message between workers is left in flight once
     * they hear this: they may stop answering steal requests.
     */
    for (int r = 1; r < rt->size && !rc; r++) {
        if (is_dead(rt, r))
            continue;
        tf_buf b = outq_take_buf(&m->out);
        if (tf_buf_reserve(&b, TF_WIRE_RELEASE_SIZE)) {
            tf_buf_free(&b);
            return TF_ENOMEM;
        }
        /* The count may be more than STOP said. */
        tf_wire_put_release(&b, &(tf_wire_release){rt->nlost});
        rc = outq_send(rt, &m->out, &b, r, TF_TAG_RELEASE);
    }
    return rc ? rc : drain(rt, &m->out, &m->in, 0, 0, 0, level);
}

int tf_rt_run_master(tf_runtime *rt)
{
    tf_master m = {.rt = rt, .local = rt->size == 1};
    tf_sched *s = &rt->sched;
    int rc = 0;
    uint32_t nworkers = m.local ? 1 : (uint32_t)rt->size - 1;
    if (!m.local && !(m.batch = calloc(nworkers, sizeof *m.batch)))
        return TF_ENOMEM;
    /*
     * Workers are registered once per runtime, with the slots each reported
     * at its first run; later runs reuse them.
     */
    for (uint32_t w = s->nworkers; w < nworkers && !rc; w++) {
        uint32_t slots = m.local ? (uint32_t)rt->cfg.slots : rt->wslots[w + 1];
        uint32_t depth = m.local ? slots : slots * (uint32_t)rt->cfg.prefetch;
        uint32_t id;
        rc = tf_sched_add_worker(s, slots, depth, &id);
    }
    /* Children of tasks done in a resumed state; maybe a snapshot first. */
    if (!rc)
        rc = tf_rt_ck_begin(rt);
    /* Skips decided at submission (a dependency had failed) are reported. */
    if (!rc && s->nacts)
        rc = master_act(&m);
    /* Until it has seen otherwise, rank 0 looks within its longest sleep. */
    if (!m.local)
        tf_sched_waited(s, TF_IDLE_MAX_NS, tf_idle_clock_ns());
    uint64_t tick_ns = (uint64_t)rt->cfg.tick_ms * 1000000u;
    uint64_t next_tick = tf_idle_clock_ns() + tick_ns;
    bool halted = false;
    tf_idle idle;
    tf_idle_reset(&idle);
    while (!rc && !tf_sched_is_finished(s)) {
        bool progress = false;
        if (m.local) {
            for (int k = 0; rt->cfg.main_runs_tasks && k < 64 &&
                            tf_pool_run_one(&rt->pool);
                 k++)
                progress = true;
            rc = master_local_events(&m, &progress);
        } else {
            int from, tag, got;
            uint64_t now = tf_idle_clock_ns();
            while (!rc && (got = try_recv(rt, MPI_ANY_SOURCE, &m.in, &from,
                                          &tag)) != 0) {
                if (got < 0) {
                    rc = got;
                    break;
                }
                /* Windows cover how long messages wait for rank 0. */
                if (!progress && m.quiet_at)
                    tf_sched_waited(s, now - m.quiet_at, now);
                m.quiet_at = 0;
                progress = true;
                if (tag == TF_TAG_REPORT) {
                    rc = master_report(&m, from, &m.in);
                } else if (tag == TF_TAG_ERROR) {
                    tf_rd r = tf_rd_make(m.in.p, m.in.n);
                    tf_wire_error e;
                    rc = tf_wire_get_error(&r, &e) && e.code < 0 ? e.code
                                                                : TF_EPROTO;
                    tf_logf(&rt->log, TF_LOG_ERROR,
                            "rank %d failed (%s): ending the run", from,
                            tf_strerror(rc));
                } else {
                    tf_logf(&rt->log, TF_LOG_WARN,
                            "unexpected tag %d from rank %d", tag, from);
                }
            }
            if (!progress)
                m.quiet_at = now;
            int sent = outq_progress(&m.out);
            if (sent < 0 && !rc)
                rc = sent;
            int lost = rc ? 0 : pulse(rt, &m.out);
            if (lost < 0)
                rc = lost;
            else if (lost)
                rc = master_lost(&m);
        }
        if (rc)
            break;
        /*
         * Report failures and skips before dispatching, so that a retried
         * task's event still shows the attempt that failed. A halt asked
         * for by those events, or by the DONE events just fired, comes
         * before the dispatch: no task may leave after it (the halted
         * scheduler dispatches nothing).
         */
        if (s->nacts)
            rc = master_act(&m);
        if (!rc && rt->halt_requested && !halted) {
            halted = progress = true;
            rc = master_halt(&m);
        }
        if (!rc)
            rc = tf_sched_dispatch(s);
        if (!rc && s->nacts) {
            progress = true;
            rc = master_act(&m);
        }
        if (!rc)
            rc = master_flush(&m);
        if (rt->ck || rt->cfg.on_event) {
            uint64_t now = tf_idle_clock_ns();
            tf_rt_ck_tick(rt, now);
            if (rt->cfg.on_event && now >= next_tick) {
                fire(rt, TF_RUN_TICK, TF_NONE, 0);
                next_tick = tf_idle_clock_ns() + tick_ns;
            }
        }
        if (progress)
            tf_idle_reset(&idle);
        else
            idle_sleep(rt, &idle);
    }
    /*
     * The status speaks of this run: tasks that failed or were skipped since
     * the last run ended, including ones skipped when they were submitted.
     */
    int status = rc;
    uint64_t bad = (uint64_t)s->count[TF_ST_FAILED] + s->count[TF_ST_SKIPPED];
    if (!status && bad > rt->bad_reported)
        status = TF_EFAILED;
    rt->bad_reported = bad;
    /*
     * The final state, durable before any rank hears how the run ended; a
     * write error at any point of the run fails it on every rank.
     */
    int crc = tf_rt_ck_end(rt);
    if (crc && (!status || status == TF_EFAILED))
        status = crc;
    /* A halt ends this run only: tasks submitted for the next one run. */
    tf_sched_unhalt(s);
    if (!m.local) {
        int src = master_stop(&m, status);
        if (!rc && src)
            status = rc = src;
    }
    for (uint32_t w = 0; m.batch && w < nworkers; w++)
        tf_buf_free(&m.batch[w]);
    free(m.batch);
    tf_buf_free(&m.in);
    outq_free(&m.out);
    return status;
}

/* ---- workers ---- */

/*
 * A received TASKS message stays alive while any of its tasks runs: jobs
 * point into it for their input and their dependencies' outputs.
 */
typedef struct tf_msgbuf {
    size_t refs;
    tf_dep *deps;
    uint8_t *data;
} tf_msgbuf;

static void msgbuf_release(tf_msgbuf *mb)
{
    if (mb && --mb->refs == 0) {
        free(mb->deps);
        free(mb->data);
        free(mb);
    }
}

/*
 * Per-run state of a worker rank: the policy machine (core/worker.h), the
 * sends in flight, the message being read and the report being written.
 */
typedef struct tf_wrun {
    tf_runtime *rt;
    tf_worker wk;
    tf_outq out;
    tf_buf in, rep;
    tf_job *jobs; /* a message's tasks being decoded */
    size_t jcap;
    int32_t status; /* the run's, from STOP */
    bool stopping, halted;
} tf_wrun;

/*
 * Decode a TASKS or STOLEN message (taking over in->p) into pool jobs; the
 * header's flags go to *flags, the number of tasks to *count. A dependency
 * entry holding an anchor names a task held here whose output it awaits.
 */
static int wr_decode(tf_wrun *w, uint8_t *flags, size_t *count)
{
    tf_runtime *rt = w->rt;
    tf_buf *in = &w->in;
    /* Pass 1 validates and counts, so a bad message queues nothing. */
    tf_rd r = tf_rd_make(in->p, in->n);
    tf_wire_batch hd;
    tf_wire_get_batch(&r, &hd);
    *flags = hd.flags;
    *count = 0;
    size_t njobs = 0, ndeps = 0;
    while (r.ok && tf_rd_more(&r) && tf_wire_skip_task(&r, &ndeps))
        njobs++;
    if (!r.ok) {
        tf_logf(&rt->log, TF_LOG_ERROR, "malformed task message");
        return TF_EPROTO;
    }
    *count = njobs;
    if (!njobs)
        return 0;
    if (tf_grow((void **)&w->jobs, &w->jcap, njobs, sizeof *w->jobs, 64))
        return TF_ENOMEM;
    tf_msgbuf *mb = malloc(sizeof *mb);
    tf_dep *deps = ndeps ? malloc(ndeps * sizeof *deps) : NULL;
    if (!mb || (ndeps && !deps)) {
        free(mb);
        free(deps);
        return TF_ENOMEM;
    }
    *mb = (tf_msgbuf){njobs, deps, in->p};
    *in = (tf_buf){NULL, 0, 0};
    r = tf_rd_make(mb->data, r.n);
    tf_wire_get_batch(&r, &hd);
    for (size_t k = 0; k < njobs; k++) {
        tf_wire_task t;
        tf_wire_get_task(&r, &t);
        /* rank 0 checked the width; be safe */
        uint16_t cores = t.cores > rt->pool.wq.slots ? (uint16_t)rt->pool.wq.slots
                                                    : t.cores;
        tf_job j = {t.index, t.fn,     t.id,    cores, t.attempt,
                    t.input_len, NULL, t.ndeps, deps,  mb};
        j.in = tf_rd_take(&r, t.input_len);
        for (uint32_t i = 0; i < t.ndeps; i++) {
            tf_dep *dp = deps++;
            *dp = (tf_dep){NULL, 0, TF_POOL_NO_ANCHOR, NULL};
            tf_wire_get_output(&r, &dp->buf, &dp->len, &dp->anchor);
            if (dp->anchor == TF_WIRE_ANCHOR)
                dp->anchor = TF_POOL_NO_ANCHOR;
        }
        w->jobs[k] = j;
    }
    /* An error is fatal: the run ends with it. */
    return tf_pool_push(&rt->pool, w->jobs, njobs);
}

/* Turn the pool's events into report records and tell the machine. */
static int wr_collect(tf_wrun *w, bool *progress)
{
    const tf_evvec *v = tf_pool_take_events(&w->rt->pool);
    tf_buf *rep = &w->rep;
    size_t ndone = 0, nother = 0;
    int rc = 0;
    for (size_t i = 0; i < v->n; i++) {
        tf_event *e = &v->v[i];
        size_t need = e->kind == TF_EV_DONE ? TF_WIRE_DONE_SIZE
                      : e->kind == TF_EV_UNRUN
                          ? TF_WIRE_UNRUN_SIZE
                          : TF_WIRE_SUBMIT_SIZE + (size_t)e->ndeps * 8;
        if (!rc && e->kind != TF_EV_DROP)
            rc = tf_buf_reserve(rep, need + e->data_len);
        if (!rc && e->kind == TF_EV_UNRUN) {
            tf_wire_put_unrun(rep, &(tf_wire_unrun){TF_REC_UNRUN, e->idx});
            ndone++;
        } else if (!rc && e->kind == TF_EV_DONE) {
            tf_wire_done d = {TF_REC_DONE, e->idx,      e->attempt,
                              e->status,   e->start_ns, e->end_ns,
                              e->slot,     e->data_len};
            tf_wire_put_done(rep, &d);
            tf_buf_put(rep, e->data, e->data_len);
            ndone++;
        } else if (!rc && e->kind == TF_EV_SUBMIT) {
            tf_wire_submit sb = {TF_REC_SUBMIT, e->gid,     e->parent,
                                 e->fn,         e->prio,    e->cores,
                                 e->retries,    e->ndeps,   e->data_len};
            tf_wire_put_submit(rep, &sb);
            tf_buf_put(rep, e->deps, (size_t)e->ndeps * 8);
            tf_buf_put(rep, e->data, e->data_len);
            nother++;
        }
        /* DROP: rank 0 unparks the task itself; nothing to say. */
        if (e->kind != TF_EV_SUBMIT)
            msgbuf_release(e->owner);
        free(e->data);
        free(e->deps);
    }
    if (ndone || nother)
        *progress = true;
    tf_worker_recorded(&w->wk, ndone, nother, tf_idle_clock_ns());
    return rc;
}

/*
 * A thief asks (req: its STEAL): give what the machine allows from the
 * tail of the queue, and put a MOVED record for each in the report, which
 * the machine sends at once. After a halt or STOP the answer is empty.
 */
static int wr_give(tf_wrun *w, const tf_buf *req, int thief, bool *progress)
{
    tf_runtime *rt = w->rt;
    tf_rd r = tf_rd_make(req->p, req->n);
    tf_wire_steal st;
    if (!tf_wire_get_steal(&r, &st))
        return TF_EPROTO;
    tf_job small[64], *jobs = small;
    size_t want = tf_worker_give_count(&w->wk, tf_pool_stealable(&rt->pool));
    if (want > 64 && !(jobs = malloc(want * sizeof *jobs)))
        jobs = small, want = 64;
    size_t n = want ? tf_pool_steal(&rt->pool, want, st.max_cores, jobs) : 0;
    tf_buf b = outq_take_buf(&w->out);
    size_t need = TF_WIRE_BATCH_SIZE;
    for (size_t i = 0; i < n; i++) {
        need += TF_WIRE_TASK_SIZE + (size_t)jobs[i].in_len;
        for (uint32_t k = 0; k < jobs[i].ndeps; k++)
            need += tf_wire_dep_size(jobs[i].deps[k].len);
    }
    int rc = tf_buf_reserve(&b, need);
    if (!rc && n)
        rc = tf_buf_reserve(&w->rep, TF_WIRE_MOVED_SIZE * n);
    if (rc) {
        /* The tasks are out of the queue: run them here after all. */
        rc = tf_pool_push(&rt->pool, jobs, n);
        n = 0;
        if (!rc)
            rc = tf_buf_reserve(&b, TF_WIRE_BATCH_SIZE);
    }
    if (!rc) {
        tf_wire_put_batch(&b, &(tf_wire_batch){0});
        for (size_t i = 0; i < n; i++) {
            const tf_job *j = &jobs[i];
            tf_wire_task t = {j->idx,     j->fn, j->gid,     j->cores,
                              j->attempt, 0,     j->in_len, j->ndeps};
            tf_wire_put_task(&b, &t);
            tf_buf_put(&b, j->in, j->in_len);
            for (uint32_t k = 0; k < j->ndeps; k++)
                tf_wire_put_output(&b, j->deps[k].buf, j->deps[k].len);
            tf_wire_moved mv = {TF_REC_MOVED, j->idx, j->attempt,
                                (uint32_t)thief};
            tf_wire_put_moved(&w->rep, &mv);
            msgbuf_release(j->owner);
        }
        tf_worker_gave(&w->wk, n, tf_idle_clock_ns());
        *progress |= n > 0;
        rc = outq_send(rt, &w->out, &b, thief, TF_TAG_STOLEN);
    }
    if (rc)
        tf_buf_free(&b);
    if (jobs != small)
        free(jobs);
    return rc;
}

/*
 * Rank 0 says how many ranks it wrote off (at STOP, and again at RELEASE,
 * as a silent rank may be written off while rank 0 waits for the others'
 * acknowledgements): any makes this runtime degraded, and the count is what
 * tf_get_stats reports here, so that a worker, too, knows to end with _exit
 * (Open MPI 4.1's MPI_Finalize can spin forever with a dead peer).
 */
static void took_losses(tf_runtime *rt, uint32_t n)
{
    if (!n)
        return;
    rt->degraded = true;
    if (n > rt->nlost)
        rt->nlost = n;
}

/* Send the report now; it may be empty. */
static int send_report(tf_runtime *rt, tf_outq *out, tf_buf *rep)
{
    tf_buf b = *rep;
    *rep = outq_take_buf(out);
    int rc = outq_send(rt, out, &b, 0, TF_TAG_REPORT);
    if (rc)
        tf_buf_free(&b);
    return rc;
}

/* Carry out the machine's decisions: report, ask a victim, give one up. */
static int wr_act(tf_wrun *w, bool *progress, uint64_t *wake)
{
    tf_runtime *rt = w->rt;
    tf_worker_view v;
    tf_pool_view(&rt->pool, &v);
    *wake = tf_worker_tick(&w->wk, &v, tf_idle_clock_ns());
    size_t n;
    const tf_worker_act *a = tf_worker_actions(&w->wk, &n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (a[i].kind == TF_WK_REPORT) {
            rc = send_report(rt, &w->out, &w->rep);
            tf_worker_reported(&w->wk);
            *progress = true;
        } else if (a[i].kind == TF_WK_SHUN) {
            tf_logf(&rt->log, TF_LOG_WARN,
                    "rank %u did not answer a steal request: not asked again",
                    a[i].rank);
        } else {
            tf_buf b = outq_take_buf(&w->out);
            rc = tf_buf_reserve(&b, TF_WIRE_STEAL_SIZE);
            if (!rc) {
                /* The widest task it can run. */
                tf_wire_put_steal(&b, &(tf_wire_steal){rt->pool.wq.slots});
                rc = outq_send(rt, &w->out, &b, (int)a[i].rank, TF_TAG_STEAL);
            }
            if (rc)
                tf_buf_free(&b);
        }
    }
    return rc;
}

/* One message from rank 0 or a peer. */
static int wr_message(tf_wrun *w, int from, int tag, bool *progress)
{
    tf_runtime *rt = w->rt;
    uint8_t flags = 0;
    size_t n = 0;
    int rc = 0;
    if (from == 0 && tag == TF_TAG_TASKS) {
        rc = wr_decode(w, &flags, &n);
        tf_worker_heard(&w->wk, (flags & TF_WIRE_DRY) != 0);
        *progress = true;
    } else if (tag == TF_TAG_STOLEN) {
        /* Steal traffic that moved nothing is not progress. */
        rc = wr_decode(w, &flags, &n);
        tf_worker_answered(&w->wk, n, tf_idle_clock_ns());
        *progress |= n > 0;
        if (w->halted) /* moved here after a halt: give them back */
            tf_pool_drop_queued(&rt->pool);
    } else if (tag == TF_TAG_STEAL) {
        rc = wr_give(w, &w->in, from, progress);
        /* Moves are reported at once: the thief's DONE races the MOVED. */
        uint64_t wake;
        if (!rc && w->wk.urgent)
            rc = wr_act(w, progress, &wake);
    } else if (from == 0 && tag == TF_TAG_STOP) {
        tf_rd r = tf_rd_make(w->in.p, w->in.n);
        tf_wire_stop st = {0, 0};
        tf_wire_get_stop(&r, &st); /* short: status 0, no losses */
        w->status = st.status;
        took_losses(rt, st.lost);
        w->stopping = true;
        tf_worker_stop(&w->wk);
        *progress = true;
    } else if (from == 0 && tag == TF_TAG_HALT) {
        w->halted = true;
        tf_worker_halt(&w->wk);
        /* Queue first: on_halt may block while it ends children. */
        tf_pool_drop_queued(&rt->pool);
        if (rt->cfg.on_halt)
            rt->cfg.on_halt(rt->cfg.halt_user);
        *progress = true;
    } else {
        tf_logf(&rt->log, TF_LOG_WARN, "unexpected tag %d from rank %d", tag,
                from);
    }
    return rc;
}

/*
 * The main thread runs tasks too (main_runs_tasks): no more than what is
 * left of the quarter that makes a report, so rank 0 hears in time.
 */
static void wr_run_slice(tf_wrun *w, bool *progress)
{
    tf_runtime *rt = w->rt;
    if (!rt->cfg.main_runs_tasks)
        return;
    tf_worker_view v;
    tf_pool_view(&rt->pool, &v);
    for (size_t k = tf_worker_budget(&w->wk, &v);
         k > 0 && tf_pool_run_one(&rt->pool); k--)
        *progress = true;
}

/* Sleep after a pass without progress, no longer than the machine allows. */
static void wr_idle(tf_wrun *w, tf_idle *idle, uint64_t wake)
{
    long ns = tf_idle_next(idle);
    uint64_t now = tf_idle_clock_ns();
    if (ns && wake != UINT64_MAX)
        ns = wake <= now ? 1000 : wake - now < (uint64_t)ns ? (long)(wake - now)
                                                            : ns;
    idle_nap(w->rt, ns);
}

/*
 * Wait, with sends moving, until rank 0 sends `tag` (its payload's first
 * u32 to *payload), answering steal requests with nothing (a thief waits
 * for its answer) and dropping anything else: the run is ending, or has
 * failed on this rank.
 */
static int wr_wait(tf_wrun *w, int tag, uint32_t *payload)
{
    tf_runtime *rt = w->rt;
    tf_idle idle;
    tf_idle_reset(&idle);
    for (;;) {
        int from, t, got = try_recv(rt, MPI_ANY_SOURCE, &w->in, &from, &t);
        if (got < 0)
            return got;
        if (got && from == 0 && t == tag) {
            tf_rd r = tf_rd_make(w->in.p, w->in.n);
            uint32_t v = tf_rd_u32(&r);
            if (payload && r.ok)
                *payload = v;
            break;
        }
        bool moved = false;
        if (got && t == TF_TAG_STEAL) {
            int rc = wr_give(w, &w->in, from, &moved);
            if (rc)
                return rc;
        } else if (got) {
            tf_logf(&rt->log, TF_LOG_DEBUG,
                    "message with tag %d from rank %d after the end", t, from);
        }
        int sent = outq_progress(&w->out);
        if (sent < 0)
            return sent;
        int p = pulse(rt, &w->out);
        if (p < 0)
            return p;
        if (got || sent)
            tf_idle_reset(&idle);
        else
            idle_sleep(rt, &idle);
    }
    return drain(rt, &w->out, &w->in, 0, 0, 0, TF_LOG_DEBUG);
}

/*
 * This rank cannot go on (no memory, a malformed message). Tell rank 0,
 * which ends the run for everyone, and wait for its STOP so that no rank is
 * left waiting: rank 0 would otherwise wait forever for this rank's tasks.
 * Returns 0 once STOP came (the caller then acknowledges it), or an MPI
 * failure, after which nothing more can be said.
 */
static int wr_fail(tf_wrun *w, int err)
{
    tf_runtime *rt = w->rt;
    tf_logf(&rt->log, TF_LOG_ERROR, "worker failed: %s", tf_strerror(err));
    tf_buf b = outq_take_buf(&w->out);
    int rc = tf_buf_reserve(&b, TF_WIRE_ERROR_SIZE);
    if (!rc) {
        tf_wire_put_error(&b, &(tf_wire_error){err});
        rc = outq_send(rt, &w->out, &b, 0, TF_TAG_ERROR);
    }
    if (rc) {
        tf_buf_free(&b);
        return rc;
    }
    return wr_wait(w, TF_TAG_STOP, NULL);
}

/* The machine for this rank: its host's other workers nearest first. */
static int wr_init(tf_wrun *w, tf_runtime *rt)
{
    memset(w, 0, sizeof *w);
    w->rt = rt;
    uint32_t n = (uint32_t)rt->size, self = (uint32_t)rt->rank;
    uint32_t *host = rt->steal ? malloc(n * sizeof *host) : NULL;
    if (rt->steal && !host)
        return TF_ENOMEM;
    size_t nhost = rt->steal ? tf_steal_same_host(rt->locs, 1, n, self, host)
                             : 0;
    tf_worker_cfg c = {.slots = rt->pool.wq.slots,
                       .steal = rt->steal,
                       .answer_timeout_ns = rt->hb_ns};
    /* One stream per rank and run, replayable from the logged seed. */
    int rc = tf_worker_init(&w->wk, &c, rt->locs, 1, n, self, host, nhost,
                            rt->cfg.seed ^ ((uint64_t)rt->rank << 32));
    free(host);
    if (!rc && rt->steal)
        tf_logf(&rt->log, TF_LOG_DEBUG, "steal seed %llu, %zu peers on this "
                "host", (unsigned long long)rt->cfg.seed, nhost);
    return rc;
}

/* The end of a run: an error goes to rank 0 first; then STOP_ACK, RELEASE. */
static int wr_finish(tf_wrun *w, int err)
{
    tf_runtime *rt = w->rt;
    int rc = 0;
    if (err == TF_ELOST) {
        /* Rank 0 is gone: nobody to report to; end what runs here. */
        tf_pool_drop_queued(&rt->pool);
        if (rt->cfg.on_halt)
            rt->cfg.on_halt(rt->cfg.halt_user);
    } else if (err) {
        rc = wr_fail(w, err);
    }
    if (!rc && err != TF_ELOST) {
        /* Everything sent before the ACK reaches rank 0 before it. */
        tf_buf b = outq_take_buf(&w->out);
        rc = outq_send(rt, &w->out, &b, 0, TF_TAG_STOP_ACK);
    }
    uint32_t lost_at_release = 0;
    if (!rc && err != TF_ELOST)
        rc = wr_wait(w, TF_TAG_RELEASE, &lost_at_release);
    else
        drain(rt, &w->out, &w->in, 0, 0, 0, TF_LOG_DEBUG);
    if (!rc)
        took_losses(rt, lost_at_release);
    return rc;
}

int tf_rt_run_worker(tf_runtime *rt)
{
    tf_wrun w;
    int rc = wr_init(&w, rt);
    tf_idle idle;
    tf_idle_reset(&idle);
    /*
     * Until STOP, and then until the last steal request is answered: its
     * answer must not arrive in the next run.
     */
    while (!rc && (!w.stopping || tf_worker_asking(&w.wk))) {
        bool progress = false;
        int from, tag, got;
        while (!rc && (got = try_recv(rt, MPI_ANY_SOURCE, &w.in, &from,
                                      &tag)) != 0)
            rc = got < 0 ? got : wr_message(&w, from, tag, &progress);
        wr_run_slice(&w, &progress);
        if (!rc)
            rc = wr_collect(&w, &progress);
        uint64_t wake = UINT64_MAX;
        if (!rc)
            rc = wr_act(&w, &progress, &wake);
        int sent = outq_progress(&w.out);
        if (sent < 0 && !rc)
            rc = sent;
        if (!rc)
            rc = pulse(rt, &w.out);
        if (progress)
            tf_idle_reset(&idle);
        else if (!w.stopping || tf_worker_asking(&w.wk))
            wr_idle(&w, &idle, wake);
    }
    rt->steals += w.wk.steals;
    rt->stolen_tasks += w.wk.stolen;
    int err = rc;
    rc = wr_finish(&w, err);
    tf_worker_free(&w.wk);
    tf_buf_free(&w.in);
    tf_buf_free(&w.rep);
    free(w.jobs);
    outq_free(&w.out);
    return rc ? rc : err ? err : w.status;
}
