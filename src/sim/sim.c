/* The discrete-event model: rank 0 running the real scheduler core, modelled workers and network, a virtual clock. */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "evq.h"
#include "grow.h"
#include "rng.h"
#include "sched.h"
#include "steal.h"
#include "taskfarm_status.h"

/*
 * Rank 0 is one server with its own virtual clock. Each step it takes is an
 * event: receive one message (MPI overhead + decoding and applying its
 * records to the real core), or dispatch (the real tf_sched_dispatch, then
 * encoding and sending one TASKS message per worker), as the loop in
 * src/net/run.c does: drain what has arrived, dispatch, send, repeat. A
 * step's cost moves rank 0's clock on; messages that arrive meanwhile wait.
 * Workers cost nothing to run (each has its own cores) and follow
 * src/net/run.c: a FIFO queue on `slots` slots, DONE records batched into
 * reports, and, when stealing, the protocol described in docs/scaling.md.
 */

enum { EV_R0 = 1, EV_POLL, EV_END, EV_TIMER, EV_RETRY };
enum { M_TASKS, M_REPORT, M_STEAL, M_NACK, M_STOLEN };
enum { REC_DONE = 1, REC_MOVED = 4 }; /* report record tags */
enum { TASK_REC = 28, DONE_REC = 29, MOVED_REC = 9 };
enum { REPORTED = 1, GOT_TASKS = 2 }; /* rank 0's per-worker round flags */

#define SPIN_NS 100000u       /* src/util/idle.h: poll without sleeping */
#define SLEEP_MIN_NS 20000u   /* then sleep, doubling */
#define SLEEP_MAX_NS 1000000u /* up to this */
#define REPORT_AGE_NS 1000000u /* a record waits at most this long */
#define STEAL_BACKOFF_NS 100000u

typedef struct msg {
    struct msg *next;
    uint64_t arrive;
    uint32_t kind, from;
    bool dry; /* TASKS: rank 0 had nothing more ready */
    size_t n;
    uint8_t *body; /* n bytes, in the same allocation */
} msg;

typedef struct worker {
    uint32_t *q; /* ring of queued task indexes, FIFO */
    size_t qcap, qh, qn;
    uint32_t running, nparked;
    msg *inbox; /* sorted by arrival */
    uint64_t poll_gen, last_progress;
    tf_buf rep; /* records not yet reported */
    uint32_t ndone;
    uint64_t first_unsent, timer_gen;
    bool r0_dry, stealing;
    uint32_t rounds, nv, vpos;
    uint32_t *victims;
    tf_rng rng;
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
    uint8_t *runs;       /* times each task ran to completion */
    /*
     * Never given away: it came by stealing (its first move may not have
     * reached rank 0 yet), or it was parked (rank 0 may still hold it
     * PARKED, which tf_sched_task_moved refuses).
     */
    uint8_t *pinned;
    uint32_t *parked_on; /* worker holding it parked, TF_NONE */
    uint32_t *ppend;     /* a parked task's unfinished dependencies */
    worker *w;
    tf_loc *loc;
    uint32_t flush_at;
    /* Rank 0. */
    msg *in_head, *in_tail;
    uint64_t in_free, out_free; /* when its links are next free */
    uint64_t r0_last_progress;
    bool r0_scheduled, r0_news, r0_started, done;
    tf_buf enc;      /* records of the dispatch in progress; steal replies */
    uint32_t *cnt, *off; /* per worker: its records in enc */
    uint32_t *kept;  /* a victim's queue being rebuilt */
    size_t kcap;
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
        .steal_local = 6,
        .steal_remote = 2,
        .steal_rounds = 2,
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

/* Room for `more` bytes of report; a first report buffer is small. */
static int rep_reserve(worker *w, size_t more)
{
    if (!w->rep.cap) {
        size_t cap = 8 * DONE_REC > more ? 8 * DONE_REC : more;
        if (!(w->rep.p = malloc(cap)))
            return TF_ENOMEM;
        w->rep.cap = cap;
    }
    return tf_buf_reserve(&w->rep, more);
}

/* ---- the workload ------------------------------------------------------ */

static double draw_unit(tf_rng *g)
{
    return (double)((tf_rng_next(g) >> 11) + 1) / 9007199254740993.0;
}

/* Durations, scaled so that their mean is exactly the requested mean. */
static uint64_t draw_durations(sim *m)
{
    const sim_opts *o = m->o;
    tf_rng g = tf_rng_seeded(o->seed);
    double *x = malloc(m->nt * sizeof *x), sum = 0;
    if (!x)
        return 0;
    for (uint64_t t = 0; t < m->nt; t++) {
        double u = draw_unit(&g), v = 1;
        if (o->dist == SIM_DIST_UNIFORM)
            v = 0.5 + u;
        else if (o->dist == SIM_DIST_HEAVY)
            v = fmin(pow(u, -1.0 / 1.5), 100.0);
        x[t] = v;
        sum += v;
    }
    uint64_t work = 0;
    double scale = (double)o->mean_ns * (double)m->nt / sum;
    for (uint64_t t = 0; t < m->nt; t++) {
        m->dur[t] = (uint64_t)(x[t] * scale + 0.5);
        if (!m->dur[t])
            m->dur[t] = 1;
        work += m->dur[t];
    }
    free(x);
    return work;
}

/* Dependencies (in) or dependents (out) of a stencil task; count written. */
static int stencil_nbrs(const sim *m, uint64_t t, bool out, uint64_t nb[3])
{
    if (m->o->shape != SIM_STENCIL)
        return 0;
    uint64_t s = t / m->width, i = t % m->width, steps = m->nt / m->width;
    if (out ? s + 1 >= steps : s == 0)
        return 0;
    uint64_t row = out ? (s + 1) * m->width : (s - 1) * m->width;
    int k = 0;
    for (uint64_t j = i ? i - 1 : 0; j <= i + 1 && j < m->width; j++)
        nb[k++] = row + j;
    return k;
}

static int build_dag(sim *m)
{
    int rc = 0;
    for (uint64_t t = 0; t < m->nt && !rc; t++) {
        uint32_t idx;
        rc = tf_sched_add_task(&m->s, 0, 1, 0, &idx);
        uint64_t nb[3];
        int k = stencil_nbrs(m, t, false, nb);
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

static void peer_send(sim *m, uint32_t from, uint32_t to, msg *p)
{
    p->from = from;
    p->arrive = m->now + m->o->latency_ns + xfer_ns(m, p->n);
    m->r->peer_msgs++;
    deliver(m, to, p);
}

static void put_task_rec(tf_buf *b, uint32_t t, uint8_t park)
{
    tf_buf_put_u32(b, t);
    tf_buf_put_u32(b, 0);
    tf_buf_put_u64(b, t);
    tf_buf_put_u16(b, 1);
    tf_buf_put_u8(b, 1);
    tf_buf_put_u8(b, park); /* the pad byte carries PARK in the model */
    tf_buf_put_u32(b, 0);
    tf_buf_put_u32(b, 0);
}

/* ---- workers ------------------------------------------------------------- */

static int q_push(worker *w, uint32_t t)
{
    int rc = tf_ring_grow((void **)&w->q, &w->qcap, &w->qh, w->qn, w->qn + 1,
                          sizeof *w->q, 8);
    if (!rc)
        w->q[(w->qh + w->qn++) % w->qcap] = t;
    return rc;
}

static uint32_t q_at(const worker *w, uint32_t i)
{
    return w->q[(w->qh + i) % w->qcap];
}

static void start_tasks(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    while (w->running < m->o->slots && w->qn) {
        uint32_t t = w->q[w->qh];
        w->qh = (w->qh + 1) % w->qcap;
        w->qn--;
        w->running++;
        push(m, m->now + m->dur[t], EV_END, wi, t);
    }
}

static void add_record(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    if (w->first_unsent)
        return;
    w->first_unsent = m->now ? m->now : 1;
    push(m, m->now + REPORT_AGE_NS + 1, EV_TIMER, wi, ++w->timer_gen);
}

static void send_report(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    msg *p = new_msg(m, M_REPORT, wi, w->rep.p, w->rep.n);
    if (!p)
        return;
    w->rep.n = 0;
    w->ndone = 0;
    w->first_unsent = 0;
    w->timer_gen++;
    to_r0(m, p, wi);
}

/*
 * src/net/run.c's rule: a quarter of slots x prefetch done, dry, or 1 ms
 * old. With flush_window, a quarter of the window rank 0 gives this worker
 * now (it could say so in each TASKS message).
 */
static void maybe_report(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    uint32_t at = m->flush_at;
    if (m->o->flush_window && m->o->batch)
        at = m->s.workers[wi].depth / 4 ? m->s.workers[wi].depth / 4 : 1;
    if (w->rep.n &&
        (w->ndone >= at || w->qn + w->running + w->nparked == 0 ||
         m->now - w->first_unsent > REPORT_AGE_NS))
        send_report(m, wi);
}

/* Victims for a steal round: the host's ranks nearest first, then random others. */
static void plan_steal(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    uint32_t hr = m->o->host_ranks, base = wi / hr * hr;
    uint32_t hn = m->nw - base < hr ? m->nw - base : hr;
    w->nv = (uint32_t)tf_steal_order(m->loc + base, 0, hn, wi - base, &w->rng,
                                     w->victims);
    if (w->nv > m->o->steal_local)
        w->nv = m->o->steal_local;
    for (uint32_t i = 0; i < w->nv; i++)
        w->victims[i] += base;
    for (uint32_t k = 0; k < m->o->steal_remote && m->nw > hn; k++) {
        uint32_t v;
        do
            v = tf_rng_below(&w->rng, m->nw);
        while (v >= base && v < base + hn);
        w->victims[w->nv++] = v;
    }
    w->vpos = 0;
}

static void ask_next_victim(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    if (w->vpos >= w->nv) {
        w->stealing = false;
        if (++w->rounds < m->o->steal_rounds)
            push(m, m->now + ((uint64_t)STEAL_BACKOFF_NS << w->rounds),
                 EV_RETRY, wi, 0);
        return;
    }
    uint32_t req[2] = {wi, 0}; /* thief, flags: 8 bytes on the wire */
    msg *p = new_msg(m, M_STEAL, wi, req, sizeof req);
    if (p)
        peer_send(m, wi, w->victims[w->vpos++], p);
}

/*
 * A worker with an empty queue and a free slot, whom rank 0 told it has
 * nothing ready, steals. Parked tasks mean its own work is still coming.
 */
static void maybe_steal(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    if (!m->o->steal || w->stealing || w->qn || w->running >= m->o->slots ||
        w->nparked || !w->r0_dry || w->rounds >= m->o->steal_rounds ||
        m->nw < 2)
        return;
    w->stealing = true;
    plan_steal(m, wi);
    ask_next_victim(m, wi);
}

/* A task may leave: it is not pinned and nothing is parked behind it here. */
static bool is_stealable(const sim *m, uint32_t wi, uint32_t t)
{
    if (m->pinned[t])
        return false;
    uint64_t nb[3];
    int k = stencil_nbrs(m, t, true, nb);
    for (int j = 0; j < k; j++)
        if (m->parked_on[nb[j]] == wi)
            return false;
    return true;
}

/* Give the thief half the stealable queued tasks, newest first. */
static void on_steal(sim *m, uint32_t wi, uint32_t thief)
{
    worker *w = &m->w[wi];
    uint32_t able = 0, n = w->qn;
    for (uint32_t i = 0; i < n; i++)
        able += is_stealable(m, wi, q_at(w, i));
    uint32_t take = tf_steal_amount(able), nk = 0;
    tf_buf *b = &m->enc;
    b->n = 0;
    if (tf_buf_reserve(b, (size_t)take * TASK_REC + 4) ||
        tf_grow((void **)&m->kept, &m->kcap, n, sizeof *m->kept, 256)) {
        fail(m, TF_ENOMEM, "steal: out of memory");
        return;
    }
    if (!able)
        tf_buf_put_u32(b, 0); /* a NACK: 4 bytes */
    /* From the newest back, the first `take` stealable tasks leave. */
    for (uint32_t i = n; i-- > 0;) {
        uint32_t t = q_at(w, i);
        if (take && is_stealable(m, wi, t)) {
            put_task_rec(b, t, 0);
            take--;
        } else {
            m->kept[nk++] = t;
        }
    }
    for (uint32_t i = 0; i < nk; i++) /* oldest first again */
        w->q[i] = m->kept[nk - 1 - i];
    w->qh = 0;
    w->qn = nk;
    msg *p = new_msg(m, able ? M_STOLEN : M_NACK, wi, b->p, b->n);
    if (p)
        peer_send(m, wi, thief, p);
}

static void on_stolen(sim *m, uint32_t wi, msg *p)
{
    worker *w = &m->w[wi];
    tf_rd r = tf_rd_make(p->body, p->n);
    if (rep_reserve(w, p->n / TASK_REC * MOVED_REC)) {
        fail(m, TF_ENOMEM, "report: out of memory");
        return;
    }
    while (tf_rd_more(&r)) {
        uint32_t t = tf_rd_u32(&r);
        tf_rd_take(&r, TASK_REC - 4);
        m->pinned[t] = 1;
        if (q_push(w, t))
            fail(m, TF_ENOMEM, "queue: out of memory");
        /* The thief reports the move, ahead of the task's DONE. */
        tf_buf_put_u8(&w->rep, REC_MOVED);
        tf_buf_put_u32(&w->rep, t);
        tf_buf_put_u32(&w->rep, p->from);
        m->r->moved++;
    }
    m->r->steals++;
    w->stealing = false;
    w->rounds = 0;
    start_tasks(m, wi);
    send_report(m, wi);
}

static void on_tasks(sim *m, uint32_t wi, msg *p)
{
    worker *w = &m->w[wi];
    tf_rd r = tf_rd_make(p->body, p->n);
    while (tf_rd_more(&r)) {
        uint32_t t = tf_rd_u32(&r);
        tf_rd_take(&r, 15);
        uint8_t park = tf_rd_u8(&r);
        tf_rd_take(&r, 8);
        if (!park) {
            if (q_push(w, t))
                fail(m, TF_ENOMEM, "queue: out of memory");
            continue;
        }
        /* Every unfinished dependency came in this same message. */
        uint64_t nb[3];
        int k = stencil_nbrs(m, t, false, nb);
        m->ppend[t] = 0;
        for (int j = 0; j < k; j++)
            m->ppend[t] += !m->runs[nb[j]];
        m->parked_on[t] = wi;
        m->pinned[t] = 1;
        w->nparked++;
    }
    if (p->n)
        w->rounds = 0;
    w->r0_dry = p->dry;
}

/* Handle every message that has arrived by now, then run, report, steal. */
static void worker_poll(sim *m, uint32_t wi)
{
    worker *w = &m->w[wi];
    bool any = false;
    while (w->inbox && w->inbox->arrive <= m->now) {
        msg *p = w->inbox;
        w->inbox = p->next;
        any = true;
        if (p->kind == M_TASKS)
            on_tasks(m, wi, p);
        else if (p->kind == M_STEAL)
            on_steal(m, wi, p->from);
        else if (p->kind == M_STOLEN)
            on_stolen(m, wi, p);
        else if (p->kind == M_NACK)
            ask_next_victim(m, wi);
        free_msg(p);
    }
    if (any)
        w->last_progress = m->now;
    start_tasks(m, wi);
    maybe_report(m, wi);
    maybe_steal(m, wi);
    if (w->inbox && any)
        push(m, notice(m, w->last_progress, w->inbox->arrive), EV_POLL, wi,
             ++w->poll_gen);
}

static void task_end(sim *m, uint32_t wi, uint32_t t)
{
    worker *w = &m->w[wi];
    w->running--;
    w->last_progress = m->now;
    if (m->runs[t] < UINT8_MAX)
        m->runs[t]++;
    uint64_t nb[3];
    int k = stencil_nbrs(m, t, true, nb);
    for (int j = 0; j < k; j++) {
        uint64_t v = nb[j];
        if (m->parked_on[v] != wi || --m->ppend[v])
            continue;
        m->parked_on[v] = TF_NONE;
        w->nparked--;
        if (q_push(w, (uint32_t)v))
            fail(m, TF_ENOMEM, "queue: out of memory");
    }
    if (rep_reserve(w, DONE_REC)) {
        fail(m, TF_ENOMEM, "report: out of memory");
        return;
    }
    tf_buf_put_u8(&w->rep, REC_DONE);
    tf_buf_put_u32(&w->rep, t);
    tf_buf_put_i32(&w->rep, 0);
    tf_buf_put_u64(&w->rep, m->now - m->dur[t]);
    tf_buf_put_u64(&w->rep, m->now);
    tf_buf_put_u32(&w->rep, 0);
    w->ndone++;
    add_record(m, wi);
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
        uint8_t kind = tf_rd_u8(&r);
        uint32_t t = tf_rd_u32(&r);
        if (kind == REC_MOVED) {
            uint32_t from = tf_rd_u32(&r);
            rc = tf_sched_task_moved(s, t, from, p->from);
            nmoved++;
            continue;
        }
        tf_rd_i32(&r);
        uint64_t start = tf_rd_u64(&r), end = tf_rd_u64(&r);
        tf_rd_u32(&r);
        /* run.c drops a DONE from a rank not holding the task; here it is a bug. */
        if (t >= s->dag.n || s->dag.worker[t] != p->from) {
            rc = TF_EPROTO;
            break;
        }
        rc = tf_sched_task_done(s, t);
        tf_sched_observe(s, p->from, end - start);
        ndone++;
    }
    uint64_t t1 = sim_clock_ns();
    if (rc || !r.ok) {
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

/* Send n bytes to worker `to` from rank 0, whose clock reads *t (advanced). */
static void r0_send(sim *m, uint64_t *t, uint32_t to, const void *body,
                    size_t n, bool dry)
{
    msg *p = new_msg(m, M_TASKS, 0, body, n);
    if (!p)
        return;
    *t += m->o->msg_ns;
    p->dry = dry;
    uint64_t dep = *t > m->out_free ? *t : m->out_free;
    m->out_free = dep + xfer_ns(m, n);
    p->arrive = m->out_free + m->o->latency_ns;
    m->r->r0_msgs_out++;
    m->r->r0_bytes_out += n;
    deliver(m, to, p);
}

/*
 * Encode the RUN and PARK actions into one buffer, grouped by worker in
 * the order workers first appear (what master_act's per-worker batches
 * hold). Returns the number of task records; m->touched lists the workers
 * and m->cnt[w] their record counts, m->off[w] where theirs start.
 */
static size_t encode(sim *m, const tf_action *a, size_t na)
{
    size_t nrec = 0;
    m->ntouched = 0;
    for (size_t i = 0; i < na; i++) {
        if (a[i].kind != TF_ACT_RUN && a[i].kind != TF_ACT_PARK)
            continue;
        if (!m->cnt[a[i].worker]++)
            m->touched[m->ntouched++] = a[i].worker;
        nrec++;
    }
    if (tf_buf_reserve(&m->enc, nrec * TASK_REC)) {
        fail(m, TF_ENOMEM, "batch: out of memory");
        return 0;
    }
    uint32_t pos = 0;
    for (uint32_t i = 0; i < m->ntouched; i++) {
        uint32_t w = m->touched[i];
        m->off[w] = pos;
        pos += m->cnt[w];
    }
    for (size_t i = 0; i < na; i++) {
        if (a[i].kind != TF_ACT_RUN && a[i].kind != TF_ACT_PARK)
            continue;
        tf_buf rec = {m->enc.p + (size_t)m->off[a[i].worker]++ * TASK_REC, 0,
                      TASK_REC};
        m->r->parked += a[i].kind == TF_ACT_PARK;
        put_task_rec(&rec, a[i].task, a[i].kind == TF_ACT_PARK);
    }
    for (uint32_t i = 0; i < m->ntouched; i++) /* back to each start */
        m->off[m->touched[i]] -= m->cnt[m->touched[i]];
    return nrec;
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
    bool dry = tf_rq_is_empty(&s->rq);
    t0 = sim_clock_ns();
    size_t nrec = encode(m, a, na);
    t1 = sim_clock_ns();
    m->r->dispatched += nrec;
    t += charge(m, t0, t1, m->c->enc_ns * (double)nrec);
    tf_sched_clear_actions(s);
    for (uint32_t i = 0; i < m->ntouched; i++) {
        uint32_t wi = m->touched[i];
        const uint8_t *p = m->enc.p + (size_t)m->off[wi] * TASK_REC;
        size_t n = (size_t)m->cnt[wi] * TASK_REC;
        m->reported[wi] |= GOT_TASKS;
        m->cnt[wi] = 0;
        if (m->o->batch) {
            r0_send(m, &t, wi, p, n, dry);
            continue;
        }
        /* Without batching every task is a message of its own. */
        for (size_t off = 0; off < n; off += TASK_REC)
            r0_send(m, &t, wi, p + off, TASK_REC, dry);
    }
    /*
     * With stealing, a worker that reported and got nothing hears that
     * rank 0 has nothing ready (an empty TASKS message): its cue to steal.
     * The real runtime will need the same notice.
     */
    for (uint32_t i = 0; i < m->nreporters; i++) {
        uint32_t wi = m->reporters[i];
        if (m->o->steal && dry && m->reported[wi] == REPORTED)
            r0_send(m, &t, wi, NULL, 0, true);
        m->reported[wi] = 0;
    }
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
            m->reported[p->from] = REPORTED;
            m->reporters[m->nreporters++] = p->from;
        }
        free_msg(p);
        m->r0_news = true;
    } else if (m->r0_news || !m->r0_started) {
        m->r0_started = true;
        m->r0_news = false;
        t = r0_dispatch(m, t);
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

static int setup(sim *m)
{
    const sim_opts *o = m->o;
    m->nw = o->workers;
    m->nt = o->tasks ? o->tasks : 20ull * o->workers * o->slots;
    m->width = o->workers * o->slots;
    if (o->shape == SIM_STENCIL)
        m->nt = (m->nt + m->width - 1) / m->width * m->width;
    if (!m->nw || !o->slots || m->nt >= TF_NONE || !o->mean_ns ||
        o->bandwidth <= 0 || !o->host_ranks)
        return TF_EINVAL;
    m->dur = malloc(m->nt * sizeof *m->dur);
    m->runs = calloc(m->nt, 1);
    m->pinned = calloc(m->nt, 1);
    m->parked_on = malloc(m->nt * sizeof *m->parked_on);
    m->ppend = calloc(m->nt, sizeof *m->ppend);
    m->w = calloc(m->nw, sizeof *m->w);
    m->loc = malloc(m->nw * sizeof *m->loc);
    m->cnt = calloc(m->nw, sizeof *m->cnt);
    m->off = calloc(m->nw, sizeof *m->off);
    m->touched = malloc(m->nw * sizeof *m->touched);
    m->reporters = malloc(m->nw * sizeof *m->reporters);
    m->reported = calloc(m->nw, 1);
    if (!m->dur || !m->runs || !m->pinned || !m->parked_on || !m->ppend ||
        !m->w || !m->loc || !m->cnt || !m->off || !m->touched || !m->reporters ||
        !m->reported)
        return TF_ENOMEM;
    memset(m->parked_on, 0xff, m->nt * sizeof *m->parked_on);
    m->r->tasks = m->nt;
    m->r->work_ns = draw_durations(m);
    if (!m->r->work_ns)
        return TF_ENOMEM;
    uint32_t nv = o->host_ranks + o->steal_remote;
    for (uint32_t i = 0; i < m->nw; i++) {
        uint32_t in_host = i % o->host_ranks;
        m->loc[i] = (tf_loc){i / o->host_ranks,
                             (int32_t)(in_host * 2 / o->host_ranks)};
        m->w[i].rng = tf_rng_seeded(o->seed ^ (0x5851F42D4C957F2Dull * (i + 1)));
        if (o->steal && !(m->w[i].victims = malloc(nv * sizeof(uint32_t))))
            return TF_ENOMEM;
    }
    uint32_t per = o->batch ? o->prefetch : 1;
    m->flush_at = o->batch ? o->slots * o->prefetch / 4 : 1;
    if (!m->flush_at)
        m->flush_at = 1;
    tf_sched_init(&m->s);
    m->s.park = o->park;
    m->s.adaptive = o->adaptive && o->batch;
    int rc = 0;
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
        free(w->q);
        free(w->victims);
        tf_buf_free(&w->rep);
    }
    while (m->in_head) {
        msg *p = m->in_head;
        m->in_head = p->next;
        free_msg(p);
    }
    tf_buf_free(&m->enc);
    free(m->cnt);
    free(m->off);
    free(m->kept);
    free(m->touched);
    free(m->reporters);
    free(m->reported);
    free(m->w);
    free(m->loc);
    free(m->dur);
    free(m->runs);
    free(m->pinned);
    free(m->parked_on);
    free(m->ppend);
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
    if (m->o->check)
        r->check_ok = tf_sched_check(&m->s, r->why, sizeof r->why);
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
            maybe_report(&m, ev.who);
        else if (ev.kind == EV_RETRY)
            maybe_steal(&m, ev.who);
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
