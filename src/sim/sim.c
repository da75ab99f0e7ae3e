/* The discrete-event model: rank 0 running the real scheduler core, workers running the real worker machines, modelled network, a virtual clock. */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evq.h"
#include "grow.h"
#include "rng.h"
#include "sched.h"
#include "steal.h"
#include "taskfarm_status.h"
#include "wire.h"
#include "worker.h"
#include "wqueue.h"

/*
 * Rank 0 is one server with its own virtual clock. Each step it takes is an
 * event: receive one message (MPI overhead + decoding and applying its
 * records to the real core), or dispatch (the real tf_sched_dispatch, then
 * encoding and sending one TASKS message per worker), as rank 0's loop in
 * src/net does: drain what has arrived, dispatch, send, repeat. A step's
 * cost moves rank 0's clock on; messages that arrive meanwhile wait.
 *
 * Each worker is the runtime's own: its held tasks are a tf_wq and its
 * reports and steals are decided by a tf_worker (src/core), fed the same
 * events as a worker rank's loop feeds them, with virtual time. Every
 * message is encoded and decoded with the runtime's codec (wire.h), so
 * byte counts are the runtime's. What is modelled is only what happens
 * outside those machines: task durations, the network, and when an idle
 * rank notices a message (src/util/idle.h). Workers cost nothing to run
 * (each has its own cores), and every slot is a task thread: a rank whose
 * main thread runs tasks (main_runs_tasks) reads messages only between
 * them, which this model does not charge.
 */

enum { EV_R0 = 1, EV_POLL, EV_END, EV_TIMER };
enum { M_TASKS, M_REPORT, M_STEAL, M_STOLEN };

#define SPIN_NS 100000u       /* src/util/idle.h: poll without sleeping */
#define SLEEP_MIN_NS 20000u   /* then sleep, doubling */
#define SLEEP_MAX_NS 1000000u /* up to this */

typedef struct msg {
    struct msg *next;
    uint64_t arrive;
    uint32_t kind, from;
    size_t n;
    uint8_t *body; /* n bytes, in the same allocation */
} msg;

typedef struct worker {
    tf_wq wq;    /* the tasks it holds (core/wqueue.h) */
    tf_worker wk; /* its reports and steals (core/worker.h) */
    msg *inbox;  /* sorted by arrival */
    uint64_t poll_gen, last_progress, timer_gen;
    tf_buf rep;  /* records not yet reported */
} worker;

typedef struct sim {
    const sim_opts *o;
    const sim_cost *c;
    sim_result *r;
    tf_sched s;
    sim_evq q;
    uint64_t now;
    uint32_t nw, width; /* width: stencil row length */
    uint64_t nt;
    uint64_t *dur;
    uint8_t *runs;   /* times each task ran to completion */
    uint8_t *att;    /* the attempt each task runs as */
    uint16_t *slot;  /* the slot each running task holds */
    uint64_t *took;  /* how long each task ran (dur, times --slow-worker) */
    worker *w;
    tf_loc *loc;
    /* Rank 0. */
    msg *in_head, *in_tail;
    uint64_t in_free, out_free; /* when its links are next free */
    uint64_t r0_last_progress;
    bool r0_scheduled, r0_news, r0_started, done;
    tf_buf *batch;   /* per worker: the TASKS message being built */
    tf_buf enc;      /* a worker's steal answer */
    tf_wq_job *give; /* a victim's jobs leaving */
    size_t gcap;
    uint32_t *touched, *reporters;
    uint8_t *reported;
    uint32_t ntouched, nreporters;
    int err;
} sim;

void sim_opts_default(sim_opts *o)
{
    *o = (sim_opts){
        .workers = 1000,
        .slots = 1,
        .mean_ns = 1000000,
        .dist = SIM_DIST_FIXED,
        .shape = SIM_INDEPENDENT,
        .slow = 1,
        .latency_ns = 2000,
        .bandwidth = 10e9,
        .msg_ns = 1000,
        .prefetch = 64,
        .adaptive = true,
        .batch = true,
        .steal = true,
        .park = true,
        .idle = true,
        .host_ranks = 32,
        .seed = 1,
    };
}

static void fail(sim *m, int code, const char *why)
{
    if (!m->err) {
        m->err = code;
        snprintf(m->r->why, sizeof m->r->why, "t=%llu ns: %s",
                 (unsigned long long)m->now, why);
    }
}

static void push(sim *m, uint64_t t, uint32_t kind, uint32_t who, uint64_t arg)
{
    if (sim_evq_push(&m->q, t, kind, who, arg))
        fail(m, TF_ENOMEM, "event queue: out of memory");
}

static uint64_t xfer_ns(const sim *m, size_t bytes)
{
    return (uint64_t)((double)bytes * 1e9 / m->o->bandwidth + 0.5);
}

/*
 * When a rank that last made progress at `since` notices a message that
 * arrived at `a`: at once while it still spins, else at its next wake-up
 * (src/util/idle.h: 100 us of polling, then sleeps of 20 us doubling to 1 ms).
 */
static uint64_t notice(const sim *m, uint64_t since, uint64_t a)
{
    if (!m->o->idle || a <= since + SPIN_NS)
        return a;
    uint64_t t = since + SPIN_NS, step = SLEEP_MIN_NS;
    while (t < a && step < SLEEP_MAX_NS) {
        t += step;
        step = step * 2 < SLEEP_MAX_NS ? step * 2 : SLEEP_MAX_NS;
    }
    if (t < a)
        t += (a - t + SLEEP_MAX_NS - 1) / SLEEP_MAX_NS * SLEEP_MAX_NS;
    return t;
}

/* A message holding a copy of n bytes of body (exactly sized: millions fly). */
static msg *new_msg(sim *m, uint32_t kind, uint32_t from, const void *body,
                    size_t n)
{
    msg *p = malloc(sizeof *p + n);
    if (!p) {
        fail(m, TF_ENOMEM, "message: out of memory");
        return NULL;
    }
    *p = (msg){.kind = kind, .from = from, .n = n, .body = (uint8_t *)(p + 1)};
    if (n)
        memcpy(p->body, body, n);
    return p;
}

static void free_msg(msg *p) { free(p); }

/* ---- the workload (workload.c) ---------------------------------------- */

static int task_deps(const sim *m, uint64_t t, uint64_t nb[3])
{
    return sim_deps(m->o->shape, m->nt, m->width, t, nb);
}

static int build_dag(sim *m)
{
    int rc = 0;
    for (uint64_t t = 0; t < m->nt && !rc; t++) {
        uint32_t idx;
        rc = tf_sched_add_task(&m->s, 0, 1, 0, &idx);
        uint64_t nb[3];
        int k = task_deps(m, t, nb);
        for (int j = 0; j < k && !rc; j++)
            rc = tf_sched_add_dep(&m->s, (uint32_t)nb[j], idx);
    }
    return rc ? rc : tf_sched_seal(&m->s, NULL, 0, NULL);
}

/* ---- messages ------------------------------------------------------------ */

static void to_r0(sim *m, msg *p, uint32_t from)
{
    p->from = from;
    uint64_t start = m->now + m->o->latency_ns;
    if (start < m->in_free)
        start = m->in_free;
    p->arrive = m->in_free = start + xfer_ns(m, p->n);
    m->r->r0_msgs_in++;
    m->r->r0_bytes_in += p->n;
    if (m->in_tail)
        m->in_tail->next = p;
    else
        m->in_head = p;
    m->in_tail = p;
    if (!m->r0_scheduled) {
        m->r0_scheduled = true;
        push(m, notice(m, m->r0_last_progress, p->arrive), EV_R0, 0, 0);
    }
}

/* Deliver p to worker `to` at time p->arrive; wake it when it would notice. */
static void deliver(sim *m, uint32_t to, msg *p)
{
    worker *w = &m->w[to];
    msg **pp = &w->inbox;
    while (*pp && (*pp)->arrive <= p->arrive)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
    if (w->inbox == p)
        push(m, notice(m, w->last_progress, p->arrive), EV_POLL, to,
             ++w->poll_gen);
}

static void peer_send(sim *m, uint32_t from, uint32_t to, uint32_t kind,
                      const tf_buf *b)
{
    msg *p = new_msg(m, kind, from, b->p, b->n);
    if (!p)
        return;
    p->arrive = m->now + m->o->latency_ns + xfer_ns(m, p->n);
    m->r->peer_msgs++;
    deliver(m, to, p);
}

/*
 * Append task t's record as rank 0 sends it: a TASK with no input and one
 * DEP entry per stencil neighbour, an empty output when that neighbour is
 * done, else (a PARK) an anchor; as src/net's encoder does.
 */
static int put_task(sim *m, tf_buf *b, uint32_t t, uint8_t attempt)
{
    uint64_t nb[3];
    int k = task_deps(m, t, nb);
    if (tf_buf_reserve(b, TF_WIRE_TASK_SIZE + (size_t)k * tf_wire_dep_size(0)))
        return TF_ENOMEM;
    tf_wire_task rec = {t, 0, t, 1, attempt, 0, 0, (uint32_t)k};
    tf_wire_put_task(b, &rec);
    for (int j = 0; j < k; j++) {
        if (m->s.dag.state[nb[j]] != TF_ST_DONE)
            tf_wire_put_anchor_dep(b, (uint32_t)nb[j], 0);
        else
            tf_wire_put_output(b, NULL, 0);
    }
    return 0;
}

/* ---- workers ------------------------------------------------------------- */

/*
 * Queue the tasks of a TASKS or STOLEN message, as the runtime's decoder
 * does: an anchor entry parks the task behind a task held here. Returns
 * how many; *dry gets the header's flag.
 */
static size_t take_tasks(sim *m, uint32_t wi, const msg *p, bool *dry)
{
    worker *w = &m->w[wi];
    tf_rd r = tf_rd_make(p->body, p->n);
    tf_wire_batch hd;
    tf_wire_get_batch(&r, &hd);
    *dry = (hd.flags & TF_WIRE_DRY) != 0;
    size_t n = 0;
    while (n < hd.ntasks && r.ok) {
        tf_wire_task t;
        tf_wire_get_task(&r, &t);
        tf_wire_take_aligned(&r, t.input_len);
        uint32_t anc[3], nanc = 0;
        for (uint32_t i = 0; i < t.ndeps; i++) {
            tf_wire_input in;
            tf_wire_get_input(&r, &in);
            if (in.kind == TF_WIRE_ANCHOR && nanc < 3)
                anc[nanc++] = in.anchor.index;
        }
        tf_wq_job j = {t.index, t.index, t.cores, t.attempt, false};
        if (!r.ok || tf_wq_push(&w->wq, &j, anc, nanc)) {
            fail(m, r.ok ? TF_ENOMEM : TF_EPROTO, "worker: cannot take tasks");
            break;
        }
        n++;
    }
    return n;
}

/* A thief asks: give what the worker's machine allows, report the moves. */
static void on_steal(sim *m, uint32_t wi, const msg *p)
{
    worker *w = &m->w[wi];
    tf_rd r = tf_rd_make(p->body, p->n);
    tf_wire_steal st;
    if (!tf_wire_get_steal(&r, &st)) {
        fail(m, TF_EPROTO, "malformed steal request");
        return;
    }
    size_t want = tf_worker_give_count(&w->wk, tf_wq_stealable(&w->wq));
    if (tf_grow((void **)&m->give, &m->gcap, want, sizeof *m->give, 256)) {
        fail(m, TF_ENOMEM, "steal: out of memory");
        return;
    }
    size_t n = tf_wq_steal(&w->wq, want, st.max_cores, m->give);
    tf_buf *b = &m->enc;
    b->n = 0;
    if (tf_buf_reserve(b, TF_WIRE_BATCH_SIZE) ||
        tf_buf_reserve(&w->rep, n * TF_WIRE_MOVED_SIZE)) {
        fail(m, TF_ENOMEM, "steal: out of memory");
        return;
    }
    tf_wire_put_batch(b, &(tf_wire_batch){0, (uint32_t)n, 0});
    for (size_t i = 0; i < n; i++) {
        if (put_task(m, b, m->give[i].idx, m->give[i].attempt))
            fail(m, TF_ENOMEM, "steal: out of memory");
        tf_wire_moved mv = {TF_REC_MOVED, m->give[i].idx, m->give[i].attempt,
                            p->from};
        tf_wire_put_moved(&w->rep, &mv);
    }
    m->r->moved += n;
    tf_worker_gave(&w->wk, n, m->now);
    peer_send(m, wi, p->from, M_STOLEN, b);
}

static void start_tasks(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    tf_wq_job j;
    uint16_t sl;
    while (tf_wq_start(&w->wq, &j, &sl)) {
        m->slot[j.idx] = sl;
        m->att[j.idx] = j.attempt;
        /* A slow worker (a throttled or shared node) takes longer. */
        m->took[j.idx] = wi == 0 && m->o->slow > 1
                             ? (uint64_t)((double)m->dur[j.idx] * m->o->slow)
                             : m->dur[j.idx];
        push(m, m->now + m->took[j.idx], EV_END, wi, j.idx);
    }
}

static void send_report(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    msg *p = new_msg(m, M_REPORT, wi, w->rep.p, w->rep.n);
    if (!p)
        return;
    w->rep.n = 0;
    tf_worker_reported(&w->wk);
    to_r0(m, p, wi);
}

/* Carry out the machine's decisions; a timer for when it next needs one. */
static void act(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    tf_worker_view v = {tf_wq_held(&w->wq), tf_wq_idle_slots(&w->wq)};
    uint64_t wake = tf_worker_tick(&w->wk, &v, m->now);
    size_t n;
    const tf_worker_act *a = tf_worker_actions(&w->wk, &n);
    for (size_t i = 0; i < n; i++) {
        if (a[i].kind == TF_WK_REPORT) {
            send_report(m, wi);
        } else if (a[i].kind == TF_WK_ASK) {
            tf_buf *b = &m->enc;
            b->n = 0;
            if (tf_buf_reserve(b, TF_WIRE_STEAL_SIZE)) {
                fail(m, TF_ENOMEM, "steal: out of memory");
                return;
            }
            tf_wire_put_steal(b, &(tf_wire_steal){m->o->slots});
            peer_send(m, wi, a[i].rank, M_STEAL, b);
        }
    }
    if (wake != UINT64_MAX)
        push(m, wake > m->now ? wake : m->now, EV_TIMER, wi, ++w->timer_gen);
}

/* Handle every message that has arrived by now, then start, report, steal. */
static void worker_poll(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    bool any = false;
    while (w->inbox && w->inbox->arrive <= m->now) {
        msg *p = w->inbox;
        w->inbox = p->next;
        any = true;
        bool dry;
        if (p->kind == M_TASKS) {
            take_tasks(m, wi, p, &dry);
            tf_worker_heard(&w->wk, dry);
        } else if (p->kind == M_STEAL) {
            on_steal(m, wi, p);
        } else if (p->kind == M_STOLEN) {
            size_t got = take_tasks(m, wi, p, &dry);
            tf_worker_answered(&w->wk, got, m->now);
            m->r->steals += got > 0;
        }
        free_msg(p);
    }
    if (any)
        w->last_progress = m->now;
    start_tasks(m, wi);
    act(m, wi);
    if (w->inbox && any)
        push(m, notice(m, w->last_progress, w->inbox->arrive), EV_POLL, wi,
             ++w->poll_gen);
}

static void task_end(sim *m, uint32_t wi, uint32_t t)
{
    worker *w = &m->w[wi];
    w->last_progress = m->now;
    if (m->runs[t] < UINT8_MAX)
        m->runs[t]++;
    tf_wq_job j = {t, t, 1, m->att[t], false};
    if (tf_wq_end(&w->wq, &j, &m->slot[t], TF_WQ_OK) ||
        tf_buf_reserve(&w->rep, TF_WIRE_DONE_SIZE)) {
        fail(m, TF_ENOMEM, "worker: out of memory");
        return;
    }
    /* FILL needs nothing here (outputs are empty); nothing fails. */
    tf_wq_clear_actions(&w->wq);
    tf_wire_done d = {TF_REC_DONE, t, m->att[t], 0, m->now - m->took[t],
                      m->now, m->slot[t], 0};
    tf_wire_put_done(&w->rep, &d);
    tf_worker_recorded(&w->wk, 1, 0, m->now);
    worker_poll(m, wi);
}

/* ---- rank 0 -------------------------------------------------------------- */

static uint64_t charge(const sim *m, uint64_t t0, uint64_t t1, double fixed)
{
    if (m->c->kind != SIM_COST_LIVE)
        return (uint64_t)(fixed + 0.5);
    double d = (double)(t1 - t0) - m->c->clock_ns;
    return d > 0 ? (uint64_t)(d + 0.5) : 0;
}

/* Decode one report and apply it to the real core; returns the CPU charged. */
static uint64_t r0_apply(sim *m, msg *p)
{
    tf_sched *s = &m->s;
    tf_rd r = tf_rd_make(p->body, p->n);
    uint64_t ndone = 0, nmoved = 0, t0 = sim_clock_ns();
    int rc = 0;
    while (!rc && tf_rd_more(&r)) {
        if (tf_rd_peek_u8(&r) == TF_REC_MOVED) {
            tf_wire_moved mv;
            tf_wire_get_moved(&r, &mv);
            /* As the runtime: only if rank 0 still has it on the giver. */
            if (tf_sched_is_current(s, mv.index, mv.attempt) &&
                s->dag.worker[mv.index] == p->from)
                rc = tf_sched_task_moved(s, mv.index, p->from, mv.thief);
            nmoved++;
            continue;
        }
        tf_wire_done d;
        if (!tf_wire_get_done(&r, &d) || d.kind != TF_REC_DONE)
            break;
        /* The runtime drops a stale DONE; here nothing fails: it is a bug. */
        if (!tf_sched_is_current(s, d.index, d.attempt)) {
            rc = TF_EPROTO;
            break;
        }
        rc = tf_sched_task_done(s, d.index);
        tf_sched_observe(s, p->from, d.end_ns - d.start_ns);
        ndone++;
    }
    uint64_t t1 = sim_clock_ns();
    if (rc || !r.ok || tf_rd_more(&r)) {
        char why[120];
        snprintf(why, sizeof why, "report from worker %u rejected: %s",
                 p->from, tf_strerror(rc ? rc : TF_EPROTO));
        fail(m, TF_EPROTO, why);
    }
    m->r->completed += ndone;
    return charge(m, t0, t1,
                  (double)ndone * m->c->done_ns +
                      (double)nmoved * m->c->moved_ns) +
           ndone * m->o->task_ns;
}

/* Send worker `to` its message from rank 0, whose clock reads *t (advanced). */
static void r0_send(sim *m, uint64_t *t, uint32_t to, const void *body,
                    size_t n)
{
    msg *p = new_msg(m, M_TASKS, 0, body, n);
    if (!p)
        return;
    *t += m->o->msg_ns;
    uint64_t dep = *t > m->out_free ? *t : m->out_free;
    m->out_free = dep + xfer_ns(m, n);
    p->arrive = m->out_free + m->o->latency_ns;
    m->r->r0_msgs_out++;
    m->r->r0_bytes_out += n;
    deliver(m, to, p);
}

/*
 * Encode the RUN and PARK actions into each worker's batch, PARKs first
 * (a worker must hold a parked task before the tasks it waits for), as
 * the runtime does. m->touched lists the workers given tasks.
 */
static size_t encode(sim *m, const tf_action *a, size_t na)
{
    size_t nrec = 0;
    m->ntouched = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < na; i++) {
            bool park = a[i].kind == TF_ACT_PARK;
            if ((pass == 0) != park || (!park && a[i].kind != TF_ACT_RUN))
                continue;
            tf_buf *b = &m->batch[a[i].worker];
            if (!b->n) {
                if (tf_buf_reserve(b, TF_WIRE_BATCH_SIZE)) {
                    fail(m, TF_ENOMEM, "batch: out of memory");
                    return nrec;
                }
                tf_wire_put_batch(b, &(tf_wire_batch){0, 0, 0});
                m->touched[m->ntouched++] = a[i].worker;
            }
            if (put_task(m, b, a[i].task,
                         tf_sched_sent_attempt(&m->s, a[i].task, park)))
                fail(m, TF_ENOMEM, "batch: out of memory");
            m->r->parked += park;
            nrec++;
        }
    }
    return nrec;
}

/* The message to worker wi, split into one per task without batching. */
static void r0_flush(sim *m, uint64_t *t, uint32_t wi, bool dry)
{
    tf_buf *b = &m->batch[wi];
    if (!b->n) {
        if (tf_buf_reserve(b, TF_WIRE_BATCH_SIZE)) {
            fail(m, TF_ENOMEM, "batch: out of memory");
            return;
        }
        tf_wire_put_batch(b, &(tf_wire_batch){0, 0, 0});
    }
    /* Count the records now that the batch is whole. */
    tf_rd r = tf_rd_make(b->p, b->n);
    tf_wire_batch hd;
    tf_wire_get_batch(&r, &hd);
    size_t nd = 0, at = r.off;
    uint32_t ntasks = 0;
    while (tf_rd_more(&r) && tf_wire_skip_task(&r, &nd))
        ntasks++;
    uint8_t flags = dry ? TF_WIRE_DRY : 0;
    tf_wire_seal_batch(b->p, flags, ntasks, 0);
    if (m->o->batch || !ntasks) {
        r0_send(m, t, wi, b->p, b->n);
    } else {
        r = tf_rd_make(b->p, b->n);
        tf_wire_get_batch(&r, &hd);
        uint8_t one[256];
        while (tf_rd_more(&r) && tf_wire_skip_task(&r, &nd)) {
            size_t len = r.off - at;
            if (len + TF_WIRE_BATCH_SIZE > sizeof one) {
                fail(m, TF_ERANGE, "task record too long for --no-batch");
                break;
            }
            tf_wire_seal_batch(one, flags, 1, 0);
            memcpy(one + TF_WIRE_BATCH_SIZE, b->p + at, len);
            r0_send(m, t, wi, one, len + TF_WIRE_BATCH_SIZE);
            at = r.off;
        }
    }
    b->n = 0;
}

/* Dispatch, encode, send; returns rank 0's clock after the last send. */
static uint64_t r0_dispatch(sim *m, uint64_t t)
{
    tf_sched *s = &m->s;
    bool was_empty = tf_rq_is_empty(&s->rq);
    uint64_t t0 = sim_clock_ns();
    int rc = tf_sched_dispatch(s);
    uint64_t t1 = sim_clock_ns();
    size_t na;
    const tf_action *a = tf_sched_actions(s, &na);
    m->r->dispatch_calls++;
    t += charge(m, t0, t1,
                was_empty ? m->c->idle_scan_ns * m->nw
                          : m->c->scan_ns * m->nw + m->c->run_ns * (double)na);
    if (rc) {
        fail(m, rc, "tf_sched_dispatch failed");
        return t;
    }
    t0 = sim_clock_ns();
    size_t nrec = encode(m, a, na);
    t1 = sim_clock_ns();
    m->r->dispatched += nrec;
    t += charge(m, t0, t1, m->c->enc_ns * (double)nrec);
    tf_sched_clear_actions(s);
    /*
     * Who hears from rank 0 follows the runtime's rule (tf_sched_notify):
     * every worker given tasks, and, when nothing is ready, a worker with
     * room that has not been told so yet. Only workers that got tasks or
     * reported since the last dispatch can have changed (all of them at
     * the first dispatch), so only those are looked at.
     */
    bool dry;
    for (uint32_t i = 0; i < m->ntouched; i++) {
        uint32_t wi = m->touched[i];
        tf_sched_notify(s, wi, true, m->o->steal, &dry);
        r0_flush(m, &t, wi, dry);
        m->reported[wi] = 2;
    }
    bool first = m->r->dispatch_calls == 1;
    for (uint32_t i = 0; i < (first ? m->nw : m->nreporters); i++) {
        uint32_t wi = first ? i : m->reporters[i];
        if (m->reported[wi] != 2 &&
            tf_sched_notify(s, wi, false, m->o->steal, &dry))
            r0_flush(m, &t, wi, dry);
    }
    for (uint32_t i = 0; i < m->nreporters; i++)
        m->reported[m->reporters[i]] = 0;
    for (uint32_t i = 0; i < m->ntouched; i++)
        m->reported[m->touched[i]] = 0;
    m->nreporters = m->ntouched = 0;
    return t;
}

/* One step of rank 0's loop: receive one message, or dispatch, or go idle. */
static void r0_step(sim *m)
{
    uint64_t t = m->now;
    if (m->in_head && m->in_head->arrive <= t) {
        msg *p = m->in_head;
        m->in_head = p->next;
        if (!m->in_head)
            m->in_tail = NULL;
        t += m->o->msg_ns + r0_apply(m, p);
        if (!m->reported[p->from]) {
            m->reported[p->from] = 1;
            m->reporters[m->nreporters++] = p->from;
        }
        free_msg(p);
        m->r0_news = true;
    } else if (m->r0_news || !m->r0_started) {
        m->r0_started = true;
        m->r0_news = false;
        t = r0_dispatch(m, t);
    } else if (m->in_head) {
        /*
         * A message is on its way (it arrives later): wake for it. Going
         * idle unscheduled here lost it when nothing else came after (a
         * worker's last report while the others only asked each other).
         */
        push(m, notice(m, m->r0_last_progress, m->in_head->arrive), EV_R0, 0,
             0);
        return;
    } else {
        m->r0_scheduled = false;
        return; /* idle until a message arrives */
    }
    m->r->r0_busy_ns += t - m->now;
    m->r0_last_progress = t;
    if (tf_sched_is_finished(&m->s)) {
        m->done = true;
        m->r->makespan_ns = t;
        return;
    }
    push(m, t, EV_R0, 0, 0);
}

/* ---- the run ------------------------------------------------------------- */

/* Worker wi: its queue, and its machine with the ranks of its host. */
static int setup_worker(sim *m, uint32_t wi, uint32_t *host)
{
    const sim_opts *o = m->o;
    worker *w = &m->w[wi];
    int rc = tf_wq_init(&w->wq, o->slots);
    if (rc)
        return rc;
    /* Hosts are blocks of host_ranks workers: no scan over all of them. */
    uint32_t base = wi / o->host_ranks * o->host_ranks;
    uint32_t end = base + o->host_ranks < m->nw ? base + o->host_ranks : m->nw;
    size_t nh = 0;
    for (uint32_t r = base; r < end; r++)
        if (r != wi)
            host[nh++] = r;
    tf_worker_cfg c = {.slots = o->slots, .steal = o->steal && m->nw > 1};
    return tf_worker_init(&w->wk, &c, m->loc, 0, m->nw, wi, host, nh,
                          o->seed ^ (0x5851F42D4C957F2Dull * (wi + 1)));
}

static int setup(sim *m)
{
    const sim_opts *o = m->o;
    m->nw = o->workers;
    m->nt = o->tasks ? o->tasks : 20ull * o->workers * o->slots;
    m->width = o->workers * o->slots;
    if (o->shape == SIM_STENCIL)
        m->nt = (m->nt + m->width - 1) / m->width * m->width;
    if (!m->nw || !o->slots || o->slots > UINT16_MAX || m->nt >= TF_NONE ||
        !o->mean_ns || o->bandwidth <= 0 || !o->host_ranks)
        return TF_EINVAL;
    m->dur = malloc(m->nt * sizeof *m->dur);
    m->runs = calloc(m->nt, 1);
    m->att = calloc(m->nt, 1);
    m->slot = calloc(m->nt, sizeof *m->slot);
    m->took = calloc(m->nt, sizeof *m->took);
    m->w = calloc(m->nw, sizeof *m->w);
    m->loc = malloc(m->nw * sizeof *m->loc);
    m->batch = calloc(m->nw, sizeof *m->batch);
    m->touched = malloc(m->nw * sizeof *m->touched);
    m->reporters = malloc(m->nw * sizeof *m->reporters);
    m->reported = calloc(m->nw, 1);
    uint32_t *host = malloc(o->host_ranks * sizeof *host);
    int rc = 0;
    if (!m->dur || !m->runs || !m->att || !m->slot || !m->took || !m->w ||
        !m->loc ||
        !m->batch || !m->touched || !m->reporters || !m->reported || !host)
        rc = TF_ENOMEM;
    if (!rc) {
        m->r->tasks = m->nt;
        m->r->work_ns =
            sim_durations(o->dist, o->mean_ns, m->nt, o->seed, m->dur);
        if (!m->r->work_ns)
            rc = TF_ENOMEM;
    }
    for (uint32_t i = 0; !rc && i < m->nw; i++) {
        uint32_t in_host = i % o->host_ranks;
        m->loc[i] = (tf_loc){i / o->host_ranks,
                             (int32_t)(in_host * 2 / o->host_ranks)};
    }
    for (uint32_t i = 0; !rc && i < m->nw; i++)
        rc = setup_worker(m, i, host);
    free(host);
    if (rc)
        return rc;
    uint32_t per = o->batch ? o->prefetch : 1;
    tf_sched_init(&m->s);
    m->s.park = o->park;
    m->s.adaptive = o->adaptive && o->batch;
    for (uint32_t i = 0, id; i < m->nw && !rc; i++)
        rc = tf_sched_add_worker(&m->s, o->slots, o->slots * per, &id);
    return rc ? rc : build_dag(m);
}

static void teardown(sim *m)
{
    for (uint32_t i = 0; m->w && i < m->nw; i++) {
        worker *w = &m->w[i];
        while (w->inbox) {
            msg *p = w->inbox;
            w->inbox = p->next;
            free_msg(p);
        }
        tf_wq_free(&w->wq);
        tf_worker_free(&w->wk);
        tf_buf_free(&w->rep);
        if (m->batch)
            tf_buf_free(&m->batch[i]);
    }
    while (m->in_head) {
        msg *p = m->in_head;
        m->in_head = p->next;
        free_msg(p);
    }
    tf_buf_free(&m->enc);
    free(m->give);
    free(m->batch);
    free(m->touched);
    free(m->reporters);
    free(m->reported);
    free(m->w);
    free(m->loc);
    free(m->dur);
    free(m->runs);
    free(m->att);
    free(m->slot);
    free(m->took);
    sim_evq_free(&m->q);
    tf_sched_free(&m->s);
}

static void finish(sim *m)
{
    sim_result *r = m->r;
    for (uint64_t t = 0; t < m->nt; t++)
        r->ran_once += m->runs[t] == 1;
    double slots = (double)m->nw * m->o->slots;
    if (r->makespan_ns) {
        r->efficiency = (double)r->work_ns / ((double)r->makespan_ns * slots);
        r->r0_util = (double)r->r0_busy_ns / (double)r->makespan_ns;
    }
    if (r->r0_busy_ns)
        r->decisions_per_s = (double)(r->dispatched + r->completed) * 1e9 /
                             (double)r->r0_busy_ns;
    r->check_ok = true;
    if (!m->o->check)
        return;
    r->check_ok = tf_sched_check(&m->s, r->why, sizeof r->why);
    /* The workers' machines too: each holds nothing at the end. */
    for (uint32_t i = 0; r->check_ok && i < m->nw; i++) {
        const worker *w = &m->w[i];
        r->check_ok = tf_wq_check(&w->wq, r->why, sizeof r->why) &&
                      tf_worker_check(&w->wk, r->why, sizeof r->why);
        if (r->check_ok && tf_wq_held(&w->wq)) {
            snprintf(r->why, sizeof r->why, "worker %u holds %zu tasks", i,
                     tf_wq_held(&w->wq));
            r->check_ok = false;
        }
    }
}

int sim_run(const sim_opts *o, const sim_cost *c, sim_result *r)
{
    uint64_t wall0 = sim_clock_ns();
    *r = (sim_result){0};
    sim m = {.o = o, .c = c, .r = r};
    int rc = setup(&m);
    if (rc) {
        snprintf(r->why, sizeof r->why, "setup: %s", tf_strerror(rc));
        teardown(&m);
        return rc;
    }
    m.r0_scheduled = true;
    push(&m, 0, EV_R0, 0, 0);
    sim_ev ev;
    while (!m.done && !m.err && sim_evq_pop(&m.q, &ev)) {
        m.now = ev.t;
        r->events++;
        worker *w = ev.kind == EV_R0 ? NULL : &m.w[ev.who];
        if (ev.kind == EV_R0)
            r0_step(&m);
        else if (ev.kind == EV_END)
            task_end(&m, ev.who, (uint32_t)ev.arg);
        else if (ev.kind == EV_POLL && ev.arg == w->poll_gen)
            worker_poll(&m, ev.who);
        else if (ev.kind == EV_TIMER && ev.arg == w->timer_gen)
            act(&m, ev.who);
    }
    if (!m.done && !m.err)
        fail(&m, TF_EPROTO, "the run stalled: no event left, tasks unfinished");
    if (!m.err)
        finish(&m);
    rc = m.err;
    teardown(&m);
    r->wall_s = (double)(sim_clock_ns() - wall0) / 1e9;
    return rc;
}
