/* The scheduler state machine: sealing, dispatch, completion, failure, skips, checks. */
#include "sched.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "taskfarm_status.h"

int tf_sched_init(tf_sched *s)
{
    memset(s, 0, sizeof *s);
    tf_dag_init(&s->dag);
    tf_rq_init(&s->rq, (const int32_t *const *)&s->dag.prio);
    tf_wt_init(&s->wt, (const int32_t *const *)&s->dag.prio);
    s->lead_ns = TF_SCHED_LEAD_NS;
    return 0;
}

void tf_sched_free(tf_sched *s)
{
    for (uint32_t w = 0; w < s->nworkers; w++)
        tf_rq_free(&s->workers[w].pinq);
    tf_rq_free(&s->rq);
    tf_wt_free(&s->wt);
    tf_dag_free(&s->dag);
    free(s->workers);
    free(s->acts);
    free(s->scratch);
    free(s->fresh);
    free(s->touched);
    memset(s, 0, sizeof *s);
}

/*
 * Events change state only after reserving room for the worst they can
 * emit, queue or traverse, so a TF_ENOMEM always leaves the scheduler as it
 * was before the call (the tests fail every allocation in turn to check).
 */
static int reserve(tf_sched *s, size_t acts, size_t rq, size_t scratch)
{
    int rc = tf_grow((void **)&s->acts, &s->acap, s->nacts + acts,
                     sizeof *s->acts, 256);
    if (!rc)
        rc = tf_grow((void **)&s->scratch, &s->scap, scratch,
                     sizeof *s->scratch, 256);
    return rc ? rc : tf_rq_reserve(&s->rq, rq);
}

static int emit(tf_sched *s, tf_act_kind kind, uint32_t worker, uint32_t task,
                int32_t cause)
{
    int rc = reserve(s, 1, 0, 0);
    if (!rc)
        s->acts[s->nacts++] = (tf_action){kind, worker, task, cause};
    return rc;
}

/* Tasks a failure could still skip: everything not yet terminal. */
static size_t live_tasks(const tf_sched *s)
{
    return (size_t)s->count[TF_ST_HELD] + s->count[TF_ST_PENDING] +
           s->count[TF_ST_READY] + s->count[TF_ST_DISPATCHED] +
           s->count[TF_ST_PARKED];
}

/*
 * Task t joins worker w's load (DISPATCHED or PARKED there); with an
 * estimate, w's queue wait grows by it (tf_sched_set_deadline).
 */
static void hold(tf_sched *s, uint32_t t, uint32_t w)
{
    s->dag.worker[t] = w;
    s->workers[w].ntasks++;
    if (t < s->wt.n)
        s->workers[w].est_ms += tf_wt_charge(&s->wt, t);
}

/* A DISPATCHED or PARKED task leaves its worker's load. */
static void leave(tf_sched *s, uint32_t t)
{
    s->workers[s->dag.worker[t]].ntasks--;
    if (t < s->wt.n)
        s->workers[s->dag.worker[t]].est_ms -= tf_wt_discharge(&s->wt, t);
    s->dag.worker[t] = TF_NONE;
    s->dag.flags[t] &= (uint8_t)~TF_TF_STALEIN;
}

static void set_state(tf_sched *s, uint32_t t, tf_state st)
{
    s->count[s->dag.state[t]]--;
    s->count[st]++;
    s->dag.state[t] = (uint8_t)st;
}

/* Back to the queue, or to PENDING if a dependency runs again. */
static int requeue(tf_sched *s, uint32_t t)
{
    if (s->dag.npend[t]) {
        set_state(s, t, TF_ST_PENDING);
        return 0;
    }
    int rc = tf_rq_push(&s->rq, t);
    if (!rc)
        set_state(s, t, TF_ST_READY);
    return rc;
}

int tf_sched_add_task(tf_sched *s, int32_t prio, uint16_t cores,
                      uint8_t retries, uint32_t *idx)
{
    uint32_t t;
    int rc = tf_dag_add(&s->dag, prio, cores, retries, &t);
    if (rc)
        return rc;
    s->count[TF_ST_HELD]++;
    *idx = t;
    return 0;
}

static int add_edge(tf_sched *s, uint32_t from, uint32_t to, uint8_t kind)
{
    if (to >= s->dag.n || s->dag.state[to] != TF_ST_HELD)
        return TF_EINVAL;
    int rc = tf_dag_add_edge(&s->dag, from, to, kind);
    if (rc)
        return rc;
    tf_state fst = (tf_state)s->dag.state[from];
    bool bad = fst == TF_ST_FAILED || fst == TF_ST_SKIPPED;
    if (kind == TF_EDGE_OK && bad)
        s->dag.flags[to] |= TF_TF_DOOMED;
    if (kind == TF_EDGE_NOTOK)
        s->dag.flags[to] |=
            (uint8_t)(TF_TF_NEEDFAIL | (bad ? TF_TF_GOTFAIL : 0));
    return 0;
}

int tf_sched_add_dep(tf_sched *s, uint32_t from, uint32_t to)
{
    return add_edge(s, from, to, TF_EDGE_OK);
}

static int set_flag(tf_sched *s, uint32_t t, uint8_t flag)
{
    if (t >= s->dag.n || s->dag.state[t] != TF_ST_HELD)
        return TF_EINVAL;
    s->dag.flags[t] |= flag;
    return 0;
}

int tf_sched_add_order_dep(tf_sched *s, uint32_t from, uint32_t to,
                           uint8_t kind)
{
    int rc = add_edge(s, from, to, kind);
    if (!rc)
        s->dag.flags[to] |= TF_TF_NOPARK;
    return rc;
}

int tf_sched_pin(tf_sched *s, uint32_t t, uint32_t w)
{
    tf_state st = t < s->dag.n ? (tf_state)s->dag.state[t] : TF_ST_DONE;
    if (st != TF_ST_HELD && st != TF_ST_PENDING && st != TF_ST_READY)
        return TF_ESTATE;
    /*
     * A READY task waits in the global queue, where the dispatch moves it
     * to its worker's; one already moved goes back to be moved again.
     */
    uint32_t old = s->dag.pin[t];
    if (st == TF_ST_READY && old < s->nworkers) {
        int rc = tf_rq_reserve(&s->rq, 1);
        if (rc)
            return rc;
        if (tf_rq_remove(&s->workers[old].pinq, t))
            tf_rq_push(&s->rq, t); /* reserved: cannot fail */
    }
    s->dag.pin[t] = w;
    return 0;
}

int tf_sched_doom(tf_sched *s, uint32_t t)
{
    return set_flag(s, t, TF_TF_DOOMED);
}

int tf_sched_set_noop(tf_sched *s, uint32_t t)
{
    return set_flag(s, t, TF_TF_NOOP);
}

static int push_scratch(tf_sched *s, size_t *sp, uint32_t t)
{
    int rc = reserve(s, 0, 0, *sp + 1);
    if (!rc)
        s->scratch[(*sp)++] = t;
    return rc;
}

/*
 * Whether task t, its dependencies all ended, completes without running: a
 * no-op, or a task with NOTOK dependencies none of which failed. Such a
 * task is not needed (its handler's work did not arise) and counts as done
 * for its dependents, as a no-op does: nothing failed there.
 */
static bool runs_nothing(const tf_dag *d, uint32_t t)
{
    uint8_t f = d->flags[t];
    return (f & TF_TF_NOOP) ||
           (f & (TF_TF_NEEDFAIL | TF_TF_GOTFAIL)) == TF_TF_NEEDFAIL;
}

/* A task that may complete without running, once its dependencies end. */
static bool may_run_nothing(const tf_dag *d, uint32_t t)
{
    return (d->flags[t] & (TF_TF_NOOP | TF_TF_NEEDFAIL)) != 0;
}

/*
 * A task's dependencies have all ended and it may go on: queue it, or,
 * when it runs nothing, complete it at once (an UNNEEDED action for one
 * not needed) and release its dependents in turn (iteratively: a task file
 * may hold a long run of barriers). A HELD dependent is left for the seal
 * in progress, which finds its counter at zero. The traversal uses the
 * scratch stack above `base`, so that a caller's own traversal below it
 * survives; the caller reserved queue room and the UNNEEDED actions.
 */
static int make_ready(tf_sched *s, uint32_t t, size_t base)
{
    tf_dag *d = &s->dag;
    if (!runs_nothing(d, t)) {
        int rc = tf_rq_push(&s->rq, t);
        if (!rc)
            set_state(s, t, TF_ST_READY);
        return rc;
    }
    size_t sp = base;
    int rc = push_scratch(s, &sp, t);
    while (!rc && sp > base) {
        uint32_t u = s->scratch[--sp];
        set_state(s, u, TF_ST_DONE);
        if (!(d->flags[u] & TF_TF_NOOP))
            rc = emit(s, TF_ACT_UNNEEDED, TF_NONE, u, (int32_t)TF_NONE);
        for (uint32_t e = d->out_head[u]; e != TF_NONE && !rc;
             e = d->e_next[e]) {
            uint32_t v = d->e_to[e];
            if (--d->npend[v] || d->state[v] != TF_ST_PENDING)
                continue;
            if (runs_nothing(d, v)) {
                rc = push_scratch(s, &sp, v);
            } else {
                rc = tf_rq_push(&s->rq, v);
                if (!rc)
                    set_state(s, v, TF_ST_READY);
            }
        }
    }
    return rc;
}

/*
 * `root` will not finish on its worker as planned (it failed and will be
 * retried, it came back unrun, its worker is lost): every task parked behind
 * it, directly or through other parked tasks, goes back to PENDING. The
 * worker drops them by itself. The caller reserved count[PARKED] + 1 of
 * scratch.
 */
static void unpark_dependents(tf_sched *s, uint32_t root)
{
    size_t sp = 0;
    s->scratch[sp++] = root;
    while (sp) {
        uint32_t u = s->scratch[--sp];
        for (uint32_t e = s->dag.out_head[u]; e != TF_NONE;
             e = s->dag.e_next[e]) {
            uint32_t v = s->dag.e_to[e];
            if (s->dag.state[v] != TF_ST_PARKED)
                continue;
            leave(s, v);
            set_state(s, v, TF_ST_PENDING);
            s->scratch[sp++] = v;
        }
    }
}

/*
 * An edge of kind ANY or NOTOK from task u, which failed or was skipped, to
 * v: it no longer holds v back, and a NOTOK one tells v that a failure it
 * handles happened. Counted for a v that ended too, as task_done does.
 */
static void close_edge(tf_sched *s, uint32_t e)
{
    uint32_t v = s->dag.e_to[e];
    s->dag.npend[v]--;
    if (tf_dag_kind(&s->dag, e) == TF_EDGE_NOTOK)
        s->dag.flags[v] |= TF_TF_GOTFAIL;
}

/*
 * Skip every not-yet-terminal task reachable from `root` (which is already
 * terminal) along OK edges, each with `cause` (root when root failed, else
 * TF_NONE). Only PENDING, PARKED and HELD tasks can be reached: a READY or
 * DISPATCHED task has no unfinished dependency, and root was unfinished
 * until now. A parked task leaves its worker, which drops it when it sees
 * root fail (or, after a halt, reports it unrun, which is then ignored).
 * Along ANY and NOTOK edges the dependents are released instead, and one
 * with nothing left to wait for goes on (make_ready; a HELD one is left to
 * the seal). The caller reserved room for fall_room().
 */
static int skip_dependents(tf_sched *s, uint32_t root, int32_t cause)
{
    size_t sp = 0;
    int rc = push_scratch(s, &sp, root);
    while (!rc && sp) {
        uint32_t u = s->scratch[--sp];
        for (uint32_t e = s->dag.out_head[u]; e != TF_NONE && !rc;
             e = s->dag.e_next[e]) {
            uint32_t v = s->dag.e_to[e];
            if (tf_dag_kind(&s->dag, e) != TF_EDGE_OK) {
                close_edge(s, e);
                if (!s->dag.npend[v] && s->dag.state[v] == TF_ST_PENDING)
                    rc = make_ready(s, v, sp);
                continue;
            }
            if (tf_state_is_terminal((tf_state)s->dag.state[v]))
                continue;
            if (s->dag.state[v] == TF_ST_PARKED)
                leave(s, v);
            set_state(s, v, TF_ST_SKIPPED);
            rc = emit(s, TF_ACT_SKIP, TF_NONE, v, cause);
            if (!rc)
                rc = push_scratch(s, &sp, v);
        }
    }
    return rc;
}

/*
 * What skip_dependents may need after a task ends badly: an action for
 * each task still live and one for the cause, a traversal stack of them
 * all (two, one nested in the other, in a graph with kinds) and, with
 * kinds, queue room for the tasks it releases.
 */
static int fall_room(tf_sched *s)
{
    size_t live = live_tasks(s);
    bool kinds = s->dag.e_kind != NULL;
    return reserve(s, live + 1, kinds ? live : 0, live + 2);
}

int tf_sched_seal(tf_sched *s, uint32_t *cyc, size_t max, size_t *ncyc)
{
    long len = tf_dag_find_cycle(&s->dag, s->sealed, cyc, max);
    if (len < 0)
        return (int)len;
    if (len > 0) {
        if (ncyc)
            *ncyc = (size_t)len;
        return TF_ECYCLE;
    }
    /*
     * Edges only point into HELD tasks, so sealing touches nothing else.
     * Reserve what it can use: actions only if some task is doomed (or the
     * scheduler halted) or may not be needed, a traversal stack only for
     * doomed tasks and those that may run nothing, queue room for the tasks
     * with nothing to wait for (all of them when a no-op can release more,
     * or a doomed task's ANY and NOTOK edges can).
     */
    size_t held = s->dag.n - s->sealed, ready = 0;
    bool doomed = s->halted, noop = false, needfail = false;
    for (uint32_t t = s->sealed; t < s->dag.n; t++) {
        doomed |= (s->dag.flags[t] & TF_TF_DOOMED) != 0;
        noop |= may_run_nothing(&s->dag, t);
        needfail |= (s->dag.flags[t] & TF_TF_NEEDFAIL) != 0;
        ready += s->dag.npend[t] == 0;
    }
    int rc = reserve(s, doomed || needfail ? held : 0,
                     noop || doomed ? held : ready,
                     doomed || noop ? held + 2 : 0);
    if (rc)
        return rc;
    uint32_t first = s->sealed;
    s->sealed = s->dag.n;
    s->sealed_edges = s->dag.ne;
    /* Doomed tasks first, so that their HELD dependents are skipped too. */
    for (uint32_t t = first; t < s->dag.n && !rc; t++) {
        if (s->dag.state[t] != TF_ST_HELD)
            continue;
        /* After a halt nothing new may start, or the run would never end. */
        if (s->halted)
            s->dag.flags[t] |= TF_TF_DOOMED;
        if (!(s->dag.flags[t] & TF_TF_DOOMED))
            continue;
        set_state(s, t, TF_ST_SKIPPED);
        rc = emit(s, TF_ACT_SKIP, TF_NONE, t, (int32_t)TF_NONE);
        if (!rc)
            rc = skip_dependents(s, t, (int32_t)TF_NONE);
    }
    for (uint32_t t = first; t < s->dag.n && !rc; t++) {
        if (s->dag.state[t] != TF_ST_HELD)
            continue;
        if (s->dag.npend[t] == 0) {
            rc = make_ready(s, t, 0);
        } else {
            set_state(s, t, TF_ST_PENDING);
        }
    }
    return rc;
}

void tf_sched_drop_from(tf_sched *s, uint32_t first, uint32_t first_edge)
{
    tf_dag *d = &s->dag;
    if (first < s->sealed || first >= d->n)
        return;
    /*
     * Every edge added since then points at a HELD task (add_dep insists),
     * and edges are prepended, so they sit at the front of each list and
     * at the tail of the edge pool. Older tasks' counters are untouched by
     * them.
     */
    for (uint32_t t = 0; t < first; t++) {
        uint32_t e = d->out_head[t];
        while (e != TF_NONE && e >= first_edge)
            e = d->e_next[e];
        d->out_head[t] = e;
    }
    for (uint32_t t = first; t < d->n; t++)
        s->count[d->state[t]]--;
    d->n = first;
    if (s->wt.n > first)
        s->wt.n = first; /* the next task there starts with no estimate */
    d->ne = first_edge;
}

void tf_sched_drop_held(tf_sched *s)
{
    tf_sched_drop_from(s, s->sealed, s->sealed_edges);
}

int tf_sched_add_worker(tf_sched *s, uint32_t slots, uint32_t depth,
                        uint32_t *w)
{
    if (!slots || depth < 1)
        return TF_EINVAL;
    if (s->nworkers == s->wcap) {
        uint32_t ncap = s->wcap ? s->wcap * 2 : 16;
        tf_sched_worker *p = realloc(s->workers, ncap * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        s->workers = p;
        s->wcap = ncap;
    }
    uint32_t start = depth;
    if (s->adaptive)
        start = tf_sched_window(slots, depth / slots ? depth / slots : 1,
                                s->first_ns, s->lead_ns);
    if (start > depth)
        start = depth;
    s->workers[s->nworkers] =
        (tf_sched_worker){slots, start, depth, 0, 0, false, false, {0}, 0};
    tf_rq_init(&s->workers[s->nworkers].pinq,
               (const int32_t *const *)&s->dag.prio);
    if (slots > s->max_slots)
        s->max_slots = slots;
    *w = s->nworkers++;
    return 0;
}

int tf_sched_set_depth(tf_sched *s, uint32_t w, uint32_t depth)
{
    if (w >= s->nworkers || depth < 1)
        return TF_EINVAL;
    s->workers[w].depth = depth;
    return 0;
}

uint32_t tf_sched_window(uint32_t slots, uint32_t max_per_slot,
                         uint64_t mean_ns, uint64_t lead_ns)
{
    uint64_t per;
    if (!mean_ns)
        per = 2;
    else if (mean_ns / 100 + (mean_ns % 100 != 0) > lead_ns) /* > 100 x lead */
        per = 1;
    else {
        uint64_t q = lead_ns / mean_ns + (lead_ns % mean_ns != 0); /* no wrap */
        per = q < max_per_slot ? q + 1 : max_per_slot;
    }
    if (per > max_per_slot)
        per = max_per_slot;
    if (per < 1)
        per = 1;
    uint64_t w = per * (slots ? slots : 1);
    return w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

void tf_sched_waited(tf_sched *s, uint64_t wait_ns, uint64_t now_ns)
{
    uint64_t dt = now_ns > s->wait_at ? now_ns - s->wait_at : 0;
    s->wait_at = now_ns;
    if (dt >= TF_SCHED_FORGET_NS)
        s->wait_ns = 0;
    else /* wait_ns <= 10 ms and dt < 1 s: the product fits in 64 bits */
        s->wait_ns -= s->wait_ns * dt / TF_SCHED_FORGET_NS;
    if (wait_ns > TF_SCHED_WAIT_MAX_NS)
        wait_ns = TF_SCHED_WAIT_MAX_NS;
    if (wait_ns > s->wait_ns)
        s->wait_ns = wait_ns;
    s->lead_ns = 2 * s->wait_ns > TF_SCHED_LEAD_NS ? 2 * s->wait_ns
                                                   : TF_SCHED_LEAD_NS;
}

/* Worker wk's adaptive window for tasks of mean_ns. */
static void fit_window(const tf_sched *s, tf_sched_worker *wk,
                       uint64_t mean_ns)
{
    uint32_t per = wk->max_depth / wk->slots;
    wk->depth = tf_sched_window(wk->slots, per ? per : 1, mean_ns, s->lead_ns);
    if (wk->depth > wk->max_depth)
        wk->depth = wk->max_depth;
}

void tf_sched_observe(tf_sched *s, uint32_t w, uint64_t dur_ns)
{
    if (w >= s->nworkers)
        return;
    tf_sched_worker *wk = &s->workers[w];
    if (!dur_ns)
        dur_ns = 1;
    if (!wk->mean_ns)
        wk->mean_ns = dur_ns;
    else if (dur_ns >= wk->mean_ns)
        wk->mean_ns += (dur_ns - wk->mean_ns) / 8;
    else
        wk->mean_ns -= (wk->mean_ns - dur_ns) / 8;
    if (!s->adaptive)
        return;
    fit_window(s, wk, wk->mean_ns);
    if (!s->first_ns) {
        s->first_ns = dur_ns;
        for (uint32_t v = 0; v < s->nworkers; v++)
            if (!s->workers[v].mean_ns && !s->workers[v].lost)
                fit_window(s, &s->workers[v], dur_ns);
    }
}

int tf_sched_task_moved(tf_sched *s, uint32_t t, uint32_t from, uint32_t to)
{
    if (t >= s->sealed || s->dag.state[t] != TF_ST_DISPATCHED ||
        s->dag.worker[t] != from || to >= s->nworkers || s->workers[to].lost)
        return TF_ESTATE;
    for (uint32_t e = s->dag.out_head[t]; e != TF_NONE; e = s->dag.e_next[e])
        if (s->dag.state[s->dag.e_to[e]] == TF_ST_PARKED)
            return TF_ESTATE;
    uint32_t e = tf_wt_charged(&s->wt, t);
    s->workers[from].ntasks--;
    s->workers[from].est_ms -= e;
    s->workers[to].ntasks++;
    s->workers[to].est_ms += e;
    s->dag.worker[t] = to;
    return 0;
}

/*
 * Parking bookkeeping. While a dependent is PENDING its worker field is
 * free, so during one dispatch call it holds (count << 24 | w): how many of
 * its unfinished dependencies were placed on worker w so far. A count of
 * MIXED means they went to different workers. Workers beyond PARK_WMAX (16M)
 * never park. Every touched dependent is listed and reset at the end.
 */
#define PARK_WMAX 0xFFFFFEu
#define MIXED 255u

static void end_parking(tf_sched *s)
{
    /* Not only PENDING ones: a TF_ECORES failure may have skipped some. */
    for (size_t i = 0; i < s->ntouched; i++)
        if (s->dag.state[s->touched[i]] != TF_ST_PARKED)
            s->dag.worker[s->touched[i]] = TF_NONE;
    for (size_t i = 0; i < s->nfresh; i++)
        s->dag.flags[s->fresh[i]] &= (uint8_t)~TF_TF_FRESH;
    s->ntouched = s->nfresh = 0;
}

/* List t as placed on its worker by this call; false if memory is short. */
static bool mark_fresh(tf_sched *s, uint32_t t)
{
    if (tf_grow((void **)&s->fresh, &s->fcap, s->nfresh + 1, sizeof *s->fresh,
                256))
        return false;
    s->fresh[s->nfresh++] = t;
    s->dag.flags[t] |= TF_TF_FRESH;
    return true;
}

/* The worker t is pinned to, if it is one that can take it; else TF_NONE. */
static uint32_t pinned_to(const tf_sched *s, uint32_t t)
{
    uint32_t p = s->dag.pin[t];
    return p < s->nworkers && !s->workers[p].lost ? p : TF_NONE;
}

/*
 * t was just placed on w: count it for each PENDING dependent; a dependent
 * whose unfinished dependencies are now all fresh on w is parked there (in
 * w's window), and its own dependents are counted in turn. A dependent
 * pinned to another worker is not. Parking is an optimisation: when memory
 * is short it is simply not done, and nothing has changed for the task
 * concerned.
 */
static int park_after(tf_sched *s, uint32_t t, uint32_t w)
{
    tf_dag *d = &s->dag;
    tf_sched_worker *wk = &s->workers[w];
    /* A parked task starts when its dependencies end: too late to check. */
    if (w > PARK_WMAX || s->wt.deadline_ns || !mark_fresh(s, t) ||
        reserve(s, 0, 0, 1))
        return 0;
    size_t sp = 0;
    s->scratch[sp++] = t;
    while (sp) {
        uint32_t u = s->scratch[--sp];
        for (uint32_t e = d->out_head[u]; e != TF_NONE; e = d->e_next[e]) {
            uint32_t v = d->e_to[e];
            uint32_t pin = pinned_to(s, v);
            if (d->state[v] != TF_ST_PENDING ||
                (d->flags[v] & (TF_TF_NOOP | TF_TF_NOPARK)) ||
                d->npend[v] >= MIXED || d->cores[v] > wk->slots ||
                (pin != TF_NONE && pin != w))
                continue;
            uint32_t cnt = 0, ow = w;
            if (d->worker[v] == TF_NONE) {
                if (tf_grow((void **)&s->touched, &s->tcap, s->ntouched + 1,
                            sizeof *s->touched, 256))
                    continue;
                s->touched[s->ntouched++] = v;
            } else {
                cnt = d->worker[v] >> 24;
                ow = d->worker[v] & 0xFFFFFFu;
            }
            if (cnt == MIXED)
                continue;
            if (ow != w) {
                d->worker[v] = MIXED << 24 | ow;
                continue;
            }
            d->worker[v] = ++cnt << 24 | w;
            if (cnt < d->npend[v] || wk->ntasks >= wk->depth ||
                reserve(s, 1, 0, sp + 1) ||
                tf_grow((void **)&s->fresh, &s->fcap, s->nfresh + 1,
                        sizeof *s->fresh, 256))
                continue;
            hold(s, v, w);
            set_state(s, v, TF_ST_PARKED);
            emit(s, TF_ACT_PARK, w, v, (int32_t)u); /* reserved: cannot fail */
            mark_fresh(s, v);
            s->scratch[sp++] = v;
        }
    }
    return 0;
}

/* Task t leaves queue q (whose head it is) to run on worker w. */
static int run_on(tf_sched *s, tf_rq *q, uint32_t t, uint32_t w)
{
    int rc = emit(s, TF_ACT_RUN, w, t, 0);
    if (rc)
        return rc;
    tf_rq_pop(q);
    set_state(s, t, TF_ST_DISPATCHED);
    hold(s, t, w);
    if (s->dag.attempts[t] < UINT8_MAX)
        s->dag.attempts[t]++;
    return s->park ? park_after(s, t, w) : 0;
}

/*
 * Walltime (tf_sched_set_deadline): whether task t, started on worker w,
 * or at once (TF_NONE), would end by the deadline. In ms, rounded against
 * the task: no product can wrap.
 */
static bool ends_in_time(const tf_sched *s, uint32_t t, uint32_t w)
{
    const tf_walltime *wt = &s->wt;
    if (!wt->deadline_ns)
        return true;
    if (wt->now_ns >= wt->deadline_ns)
        return false;
    uint64_t need = tf_wt_est(wt, t);
    if (w != TF_NONE && s->workers[w].ntasks >= s->workers[w].slots)
        need += s->workers[w].est_ms / s->workers[w].slots;
    return need <= (wt->deadline_ns - wt->now_ns) / 1000000u;
}

/* Task t, at the head of q, cannot end before the deadline: set it aside. */
static int set_aside(tf_sched *s, tf_rq *q, uint32_t t)
{
    int rc = tf_rq_reserve(&s->wt.late, 1);
    if (rc)
        return rc;
    tf_rq_pop(q);
    tf_rq_push(&s->wt.late, t); /* reserved: cannot fail */
    return 0;
}

/* Whether worker w, alive, could take task t now. */
static bool has_room(const tf_sched *s, uint32_t w, uint32_t t)
{
    const tf_sched_worker *wk = &s->workers[w];
    return !wk->lost && wk->ntasks < wk->depth && s->dag.cores[t] <= wk->slots;
}

/*
 * The queue w takes its next task from: its pinned tasks or the global
 * queue, whichever head comes first in priority order. NULL: both empty.
 */
static tf_rq *next_queue(tf_sched *s, uint32_t w)
{
    tf_rq *pq = &s->workers[w].pinq;
    if (tf_rq_is_empty(pq))
        return tf_rq_is_empty(&s->rq) ? NULL : &s->rq;
    if (tf_rq_is_empty(&s->rq))
        return pq;
    uint32_t a = tf_rq_peek(pq), b = tf_rq_peek(&s->rq);
    int32_t pa = s->dag.prio[a], pb = s->dag.prio[b];
    return pa > pb || (pa == pb && a < b) ? pq : &s->rq;
}

/*
 * Give worker w up to `quota` tasks from the head of its queues. A task
 * pinned elsewhere moves to its worker's queue; one whose inputs lie on
 * another worker with room goes there instead, unless that worker already
 * holds a slot-load more than w (then w's idle slots matter more than the
 * bytes it would fetch). Stops at a head task that does not fit w,
 * keeping priority order: a smaller task behind it waits rather than
 * overtaking. Tasks no live worker could ever hold fail here.
 */
static int fill(tf_sched *s, uint32_t w, uint32_t quota)
{
    tf_sched_worker *wk = &s->workers[w];
    tf_rq *q;
    while (quota && wk->ntasks < wk->depth && (q = next_queue(s, w))) {
        uint32_t t = tf_rq_peek(q);
        /* Too wide for any worker, or for the one it is pinned to. */
        if (s->dag.cores[t] > s->max_slots ||
            (q != &s->rq && s->dag.cores[t] > wk->slots)) {
            int rc = fall_room(s);
            if (rc)
                return rc;
            tf_rq_pop(q);
            set_state(s, t, TF_ST_FAILED);
            rc = emit(s, TF_ACT_FAIL, TF_NONE, t, TF_ECORES);
            if (!rc)
                rc = skip_dependents(s, t, (int32_t)t);
            if (rc)
                return rc;
            continue;
        }
        uint32_t p = q == &s->rq ? pinned_to(s, t) : TF_NONE;
        if (p != TF_NONE && p != w) {
            tf_rq *pq = &s->workers[p].pinq;
            int rc = tf_rq_reserve(pq, 1);
            if (rc)
                return rc;
            tf_rq_pop(q);
            tf_rq_push(pq, t); /* reserved: cannot fail */
            continue;
        }
        if (!ends_in_time(s, t, TF_NONE)) {
            int rc = set_aside(s, q, t);
            if (rc)
                return rc;
            continue;
        }
        uint32_t h = q == &s->rq && p == TF_NONE && s->place
                         ? s->place(s->place_user, t)
                         : TF_NONE;
        if (h != TF_NONE && h != w && h < s->nworkers && has_room(s, h, t) &&
            s->workers[h].ntasks < wk->ntasks + s->workers[h].slots &&
            ends_in_time(s, t, h)) {
            int rc = run_on(s, q, t, h);
            if (rc)
                return rc;
            s->placed++;
            continue;
        }
        /* Too wide for w, or w's queue would start it too late. */
        if (s->dag.cores[t] > wk->slots || !ends_in_time(s, t, w))
            break;
        int rc = run_on(s, q, t, w);
        if (rc)
            return rc;
        quota--;
    }
    return 0;
}

/* Tasks ready for worker w: its pinned ones and the global queue. */
static size_t ready_for(const tf_sched *s, uint32_t w)
{
    return s->rq.n + s->workers[w].pinq.n;
}

/*
 * Two passes, both round-robin from where the last dispatch stopped. The
 * first gives each worker enough to fill its slots, so that a few ready
 * tasks spread over idle workers instead of queueing behind each other on
 * the first one. The second tops workers up to their depth (the prefetch
 * window) in even shares of what is left, so that short tasks never leave
 * a worker waiting for a round trip.
 */
int tf_sched_dispatch(tf_sched *s)
{
    if (s->halted || !s->nworkers)
        return 0;
    uint32_t nw = s->nworkers;
    for (uint32_t i = 0; i < nw; i++) {
        uint32_t w = (s->rr + i) % nw;
        tf_sched_worker *wk = &s->workers[w];
        if (wk->lost || wk->ntasks >= wk->slots || !ready_for(s, w))
            continue;
        int rc = fill(s, w, wk->slots - wk->ntasks);
        if (rc) {
            end_parking(s);
            return rc;
        }
    }
    uint32_t hungry = 0;
    for (uint32_t w = 0; w < nw; w++)
        if (!s->workers[w].lost && s->workers[w].ntasks < s->workers[w].depth)
            hungry++;
    for (uint32_t i = 0; i < nw && hungry; i++) {
        uint32_t w = (s->rr + i) % nw;
        tf_sched_worker *wk = &s->workers[w];
        if (wk->lost || wk->ntasks >= wk->depth)
            continue;
        size_t share = (s->rq.n + hungry - 1) / hungry + wk->pinq.n;
        hungry--;
        if (!ready_for(s, w))
            continue;
        int rc = fill(s, w, share > UINT32_MAX ? UINT32_MAX : (uint32_t)share);
        if (rc) {
            end_parking(s);
            return rc;
        }
    }
    end_parking(s);
    s->rr = (s->rr + 1) % nw;
    return 0;
}

static int leave_worker(tf_sched *s, uint32_t t)
{
    if (t >= s->sealed || s->dag.state[t] != TF_ST_DISPATCHED)
        return TF_ESTATE;
    leave(s, t);
    return 0;
}

int tf_sched_task_done(tf_sched *s, uint32_t t)
{
    if (t >= s->sealed || s->dag.state[t] != TF_ST_DISPATCHED)
        return TF_ESTATE;
    /*
     * Releasing readies at most t's dependents, unless one may run nothing
     * (a no-op, or not needed), whose completion may ready, or find not
     * needed, every pending task.
     */
    size_t deps = 0;
    bool noop = false;
    for (uint32_t e = s->dag.out_head[t]; e != TF_NONE; e = s->dag.e_next[e]) {
        deps++;
        noop |= may_run_nothing(&s->dag, s->dag.e_to[e]);
    }
    size_t pending = s->count[TF_ST_PENDING];
    int rc = noop ? reserve(s, pending, pending, pending + 1)
                  : reserve(s, 0, deps, 0);
    if (rc)
        return rc;
    rc = leave_worker(s, t);
    if (rc)
        return rc;
    set_state(s, t, TF_ST_DONE);
    tf_dag *d = &s->dag;
    for (uint32_t e = d->out_head[t]; e != TF_NONE; e = d->e_next[e]) {
        uint32_t v = d->e_to[e];
        if (--d->npend[v])
            continue;
        if (d->state[v] == TF_ST_PENDING) {
            rc = make_ready(s, v, 0);
            if (rc)
                return rc;
        } else if (d->state[v] == TF_ST_PARKED) {
            /* Released on its worker, which starts it without a message. */
            set_state(s, v, TF_ST_DISPATCHED);
            s->released++;
            if (d->attempts[v] < UINT8_MAX)
                d->attempts[v]++;
        }
    }
    return 0;
}

int tf_sched_task_failed(tf_sched *s, uint32_t t, int32_t code)
{
    if (t >= s->sealed || s->dag.state[t] != TF_ST_DISPATCHED)
        return TF_ESTATE;
    /* A retry queues the task again; a final failure may skip every task. */
    bool retry = s->dag.attempts[t] <= s->dag.retries[t] && !s->halted;
    int rc = retry ? reserve(s, 1, 1, s->count[TF_ST_PARKED] + 1)
                   : fall_room(s);
    if (rc)
        return rc;
    rc = leave_worker(s, t);
    if (rc)
        return rc;
    if (retry) {
        unpark_dependents(s, t);
        rc = requeue(s, t);
        if (rc)
            return rc;
        return emit(s, TF_ACT_RETRY, TF_NONE, t, code);
    }
    set_state(s, t, TF_ST_FAILED);
    rc = emit(s, TF_ACT_FAIL, TF_NONE, t, code);
    return rc ? rc : skip_dependents(s, t, (int32_t)t);
}

bool tf_sched_notify(tf_sched *s, uint32_t w, bool has_tasks, bool steal,
                     bool *dry)
{
    tf_sched_worker *wk = &s->workers[w];
    *dry = ready_for(s, w) == 0;
    if (!has_tasks && (!*dry || wk->told_dry || !steal || s->halted ||
                       wk->ntasks >= wk->depth))
        return false;
    wk->told_dry = *dry;
    return true;
}

int tf_sched_worker_lost(tf_sched *s, uint32_t w)
{
    if (w >= s->nworkers)
        return TF_EINVAL;
    tf_rq *pq = &s->workers[w].pinq;
    int prc = tf_rq_reserve(&s->rq, pq->n);
    if (prc)
        return prc;
    while (!tf_rq_is_empty(pq))
        tf_rq_push(&s->rq, tf_rq_pop(pq)); /* reserved: cannot fail */
    s->workers[w].lost = true;
    s->max_slots = 0;
    for (uint32_t i = 0; i < s->nworkers; i++)
        if (!s->workers[i].lost && s->workers[i].slots > s->max_slots)
            s->max_slots = s->workers[i].slots;
    for (uint32_t t = 0; t < s->sealed && s->workers[w].ntasks; t++) {
        if ((s->dag.state[t] != TF_ST_DISPATCHED &&
             s->dag.state[t] != TF_ST_PARKED) ||
            s->dag.worker[t] != w)
            continue;
        int rc = tf_sched_task_unrun(s, t);
        if (rc)
            return rc;
    }
    return 0;
}

int tf_sched_task_unrun(tf_sched *s, uint32_t t)
{
    tf_state st = t < s->sealed ? (tf_state)s->dag.state[t] : TF_ST_HELD;
    if (st != TF_ST_DISPATCHED && st != TF_ST_PARKED)
        return TF_ESTATE;
    /*
     * Requeued it takes a queue entry and unparks what waited for it; after
     * a halt it may skip every task.
     */
    int rc = s->halted ? fall_room(s)
                       : reserve(s, 0, 1, s->count[TF_ST_PARKED] + 1);
    if (rc)
        return rc;
    leave(s, t);
    /* The attempt never ran to a report: it does not count against retries. */
    if (st == TF_ST_DISPATCHED && s->dag.attempts[t])
        s->dag.attempts[t]--;
    if (s->halted) {
        /* Nothing may start after a halt: requeued, it would never end. */
        set_state(s, t, TF_ST_SKIPPED);
        rc = emit(s, TF_ACT_SKIP, TF_NONE, t, (int32_t)TF_NONE);
        return rc ? rc : skip_dependents(s, t, (int32_t)TF_NONE);
    }
    unpark_dependents(s, t);
    if (st == TF_ST_PARKED) {
        set_state(s, t, TF_ST_PENDING); /* still waits for its dependencies */
        return 0;
    }
    return requeue(s, t);
}

int tf_sched_redo(tf_sched *s, uint32_t t)
{
    tf_dag *d = &s->dag;
    /* A no-op, or a task not needed, made no output to lose. */
    if (t >= s->sealed || d->state[t] != TF_ST_DONE ||
        (d->flags[t] & TF_TF_NOOP) || tf_sched_is_unneeded(s, t))
        return TF_ESTATE;
    int rc = reserve(s, 0, 1, s->count[TF_ST_PARKED] + 1);
    if (rc)
        return rc;
    for (uint32_t e = d->out_head[t]; e != TF_NONE; e = d->e_next[e]) {
        uint32_t v = d->e_to[e];
        tf_state st = (tf_state)d->state[v];
        d->npend[v]++;
        if (st == TF_ST_READY) {
            uint32_t p = d->pin[v];
            if (!(p < s->nworkers && tf_rq_remove(&s->workers[p].pinq, v)) &&
                !tf_rq_remove(&s->rq, v))
                tf_rq_remove(&s->wt.late, v);
            set_state(s, v, TF_ST_PENDING);
        } else if (st == TF_ST_PARKED) {
            leave(s, v);
            set_state(s, v, TF_ST_PENDING);
            unpark_dependents(s, v);
        } else if (st == TF_ST_DISPATCHED) {
            d->flags[v] |= TF_TF_STALEIN;
        }
    }
    /* A dependency of its own may already run again: then it waits. */
    if (d->npend[t]) {
        set_state(s, t, TF_ST_PENDING);
        return 0;
    }
    tf_rq_push(&s->rq, t); /* reserved: cannot fail */
    set_state(s, t, TF_ST_READY);
    return 0;
}

int tf_sched_halt(tf_sched *s)
{
    int rc = reserve(s, live_tasks(s), 0, 0);
    if (rc)
        return rc;
    s->halted = true;
    tf_rq_free(&s->rq);
    tf_rq_init(&s->rq, (const int32_t *const *)&s->dag.prio);
    tf_rq_free(&s->wt.late);
    tf_rq_init(&s->wt.late, (const int32_t *const *)&s->dag.prio);
    for (uint32_t w = 0; w < s->nworkers; w++) {
        tf_rq_free(&s->workers[w].pinq);
        tf_rq_init(&s->workers[w].pinq, (const int32_t *const *)&s->dag.prio);
    }
    for (uint32_t t = 0; t < s->sealed; t++) {
        tf_state st = (tf_state)s->dag.state[t];
        if (st == TF_ST_READY || st == TF_ST_PENDING) {
            set_state(s, t, TF_ST_SKIPPED);
            rc = emit(s, TF_ACT_SKIP, TF_NONE, t, (int32_t)TF_NONE);
            if (rc)
                return rc;
            /*
             * Its ANY and NOTOK edges have ended, as after any skip; their
             * dependents are all skipped by this loop or unsealed (doomed
             * at their seal), so none goes on.
             */
            for (uint32_t e = s->dag.out_head[t];
                 s->dag.e_kind && e != TF_NONE; e = s->dag.e_next[e])
                if (tf_dag_kind(&s->dag, e) != TF_EDGE_OK)
                    close_edge(s, e);
        }
    }
    return 0;
}

int tf_sched_set_est(tf_sched *s, uint32_t t, uint32_t est_ms,
                     uint32_t family)
{
    /* A held task's charge must come off as it went on. */
    if (t >= s->dag.n || s->dag.state[t] == TF_ST_DISPATCHED ||
        s->dag.state[t] == TF_ST_PARKED)
        return TF_EINVAL;
    return tf_wt_set(&s->wt, t, est_ms, family);
}

int tf_sched_set_deadline(tf_sched *s, uint64_t deadline_ns)
{
    tf_walltime *wt = &s->wt;
    bool later = !deadline_ns || deadline_ns > wt->deadline_ns;
    if (later && wt->late.n) {
        int rc = tf_rq_reserve(&s->rq, wt->late.n);
        if (rc)
            return rc;
        while (!tf_rq_is_empty(&wt->late))
            tf_rq_push(&s->rq, tf_rq_pop(&wt->late)); /* reserved */
    }
    wt->deadline_ns = deadline_ns;
    return 0;
}

bool tf_sched_must_stop(const tf_sched *s)
{
    const tf_walltime *wt = &s->wt;
    if (!wt->deadline_ns || s->halted || tf_sched_is_finished(s))
        return false;
    return wt->now_ns >= wt->deadline_ns ||
           (wt->late.n && s->count[TF_ST_READY] == wt->late.n &&
            !s->count[TF_ST_DISPATCHED] && !s->count[TF_ST_PARKED]);
}

bool tf_sched_is_finished(const tf_sched *s)
{
    return s->count[TF_ST_PENDING] == 0 && s->count[TF_ST_READY] == 0 &&
           s->count[TF_ST_DISPATCHED] == 0 && s->count[TF_ST_PARKED] == 0;
}

size_t tf_sched_bytes(const tf_sched *s)
{
    size_t pinq = 0;
    for (uint32_t w = 0; w < s->nworkers; w++)
        pinq += tf_rq_bytes(&s->workers[w].pinq);
    return tf_dag_bytes(&s->dag) + tf_rq_bytes(&s->rq) + pinq +
           s->wcap * sizeof *s->workers + s->acap * sizeof *s->acts +
           s->scap * sizeof *s->scratch + s->fcap * sizeof *s->fresh +
           s->tcap * sizeof *s->touched + tf_wt_bytes(&s->wt);
}

#define FAIL_CHECK(...)                                                        \
    do {                                                                       \
        snprintf(why, len, __VA_ARGS__);                                       \
        ok = false;                                                            \
        goto out_with_scratch;                                                 \
    } while (0)

bool tf_sched_check(const tf_sched *s, char *why, size_t len)
{
    const tf_dag *d = &s->dag;
    bool ok = true;
    uint32_t count[TF_ST_COUNT_] = {0};
    uint32_t *unfinished = calloc(d->n ? d->n : 1, sizeof *unfinished);
    uint32_t *bad_pred = calloc(d->n ? d->n : 1, sizeof *bad_pred);
    uint32_t *load = calloc(s->nworkers ? s->nworkers : 1, sizeof *load);
    uint8_t *queued = calloc(d->n ? d->n : 1, 1);
    uint64_t *est = calloc(s->nworkers ? s->nworkers : 1, sizeof *est);
    /* Per task: has NOTOK dependencies (1), one of them failed (2). */
    uint8_t *notok = calloc(d->n ? d->n : 1, 1);
    if (!unfinished || !bad_pred || !load || !queued || !est || !notok) {
        snprintf(why, len, "check: out of memory");
        ok = false;
        goto out_with_scratch;
    }
    for (uint32_t t = 0; t < d->n; t++) {
        count[d->state[t]]++;
        if (t < s->sealed && d->state[t] == TF_ST_HELD)
            FAIL_CHECK("task %u is sealed but HELD", t);
        if (t >= s->sealed && d->state[t] != TF_ST_HELD &&
            d->state[t] != TF_ST_SKIPPED)
            FAIL_CHECK("task %u is unsealed but %s", t,
                       tf_state_name((tf_state)d->state[t]));
        for (uint32_t e = d->out_head[t]; e != TF_NONE; e = d->e_next[e]) {
            if (e >= d->ne || d->e_to[e] >= d->n ||
                tf_dag_kind(d, e) > TF_EDGE_NOTOK)
                FAIL_CHECK("task %u has a corrupt edge %u", t, e);
            uint8_t kind = tf_dag_kind(d, e);
            bool bad = d->state[t] == TF_ST_FAILED ||
                       d->state[t] == TF_ST_SKIPPED;
            uint32_t v = d->e_to[e];
            if (tf_edge_is_open(kind, d->state[t]))
                unfinished[v]++;
            if (kind == TF_EDGE_OK && bad)
                bad_pred[v]++;
            if (kind == TF_EDGE_NOTOK)
                notok[v] |= (uint8_t)(1 | (bad ? 2 : 0));
            if (d->state[v] == TF_ST_PARKED && d->state[t] != TF_ST_DONE &&
                ((d->state[t] != TF_ST_DISPATCHED &&
                  d->state[t] != TF_ST_PARKED) ||
                 d->worker[t] != d->worker[v]))
                FAIL_CHECK("task %u is PARKED on worker %u but its dependency "
                           "%u is %s on worker %u",
                           v, d->worker[v], t,
                           tf_state_name((tf_state)d->state[t]), d->worker[t]);
        }
        if (d->flags[t] & TF_TF_FRESH)
            FAIL_CHECK("task %u is still marked fresh", t);
    }
    for (int st = 0; st < TF_ST_COUNT_; st++)
        if (count[st] != s->count[st])
            FAIL_CHECK("counter for %s is %u, table holds %u",
                       tf_state_name((tf_state)st), s->count[st], count[st]);
    size_t nq = 0;
    for (uint32_t q = 0; q <= s->nworkers + 1; q++) {
        const tf_rq *rq = q < s->nworkers    ? &s->workers[q].pinq
                          : q == s->nworkers ? &s->rq
                                             : &s->wt.late;
        if (!tf_rq_check(rq))
            FAIL_CHECK("ready queue %u violates heap order", q);
        for (size_t i = 0; i < rq->n; i++) {
            uint32_t t = tf_rq_at(rq, i);
            if (t >= d->n || d->state[t] != TF_ST_READY || queued[t])
                FAIL_CHECK("queue %u entry %zu (task %u) is not a unique "
                           "READY task", q, i, t);
            if (q < s->nworkers && d->pin[t] != q)
                FAIL_CHECK("task %u is queued for worker %u, pinned to %u", t,
                           q, d->pin[t]);
            queued[t] = 1;
        }
        nq += rq->n;
    }
    if (nq != count[TF_ST_READY])
        FAIL_CHECK("queues hold %zu tasks, %u are READY", nq,
                   count[TF_ST_READY]);
    for (uint32_t t = 0; t < d->n; t++) {
        tf_state st = (tf_state)d->state[t];
        if ((st == TF_ST_HELD || st == TF_ST_PENDING || st == TF_ST_PARKED) &&
            d->npend[t] != unfinished[t])
            FAIL_CHECK("task %u counts %u pending deps, graph has %u", t,
                       d->npend[t], unfinished[t]);
        if ((st == TF_ST_PENDING || st == TF_ST_PARKED) && unfinished[t] == 0)
            FAIL_CHECK("task %u is %s with every dependency done", t,
                       tf_state_name(st));
        /*
         * A dispatched or finished task whose dependency runs again
         * (tf_sched_redo) counts it, like a waiting one.
         */
        if ((st == TF_ST_READY ||
             (st == TF_ST_DISPATCHED && !(d->flags[t] & TF_TF_STALEIN))) &&
            unfinished[t])
            FAIL_CHECK("task %u is %s with %u unfinished dependencies", t,
                       tf_state_name(st), unfinished[t]);
        if ((st == TF_ST_DISPATCHED || tf_state_is_terminal(st)) &&
            unfinished[t] && d->npend[t] != unfinished[t])
            FAIL_CHECK("task %u counts %u pending deps, graph has %u", t,
                       d->npend[t], unfinished[t]);
        if (st == TF_ST_DISPATCHED || st == TF_ST_PARKED) {
            if (d->worker[t] >= s->nworkers)
                FAIL_CHECK("task %u is %s to no worker", t, tf_state_name(st));
            load[d->worker[t]]++;
            est[d->worker[t]] += tf_wt_charged(&s->wt, t);
        } else if (d->worker[t] != TF_NONE) {
            FAIL_CHECK("task %u is %s but held by worker %u", t,
                       tf_state_name(st), d->worker[t]);
        } else if (t < s->wt.n && (s->wt.est_ms[t] & TF_WT_CHARGED)) {
            FAIL_CHECK("task %u is %s but charged to a worker", t,
                       tf_state_name(st));
        }
        if (st == TF_ST_SKIPPED && !bad_pred[t] && !s->halted &&
            !(d->flags[t] & TF_TF_DOOMED))
            FAIL_CHECK("task %u is SKIPPED with no failed dependency", t);
        if (!s->halted && (st == TF_ST_PENDING || st == TF_ST_READY) &&
            bad_pred[t])
            FAIL_CHECK("task %u is %s behind a failed dependency", t,
                       tf_state_name(st));
        uint8_t f = d->flags[t];
        uint8_t want = (uint8_t)((notok[t] & 1 ? TF_TF_NEEDFAIL : 0) |
                                 (notok[t] & 2 ? TF_TF_GOTFAIL : 0));
        if ((f & (TF_TF_NEEDFAIL | TF_TF_GOTFAIL)) != want)
            FAIL_CHECK("task %u has NOTOK flags %#x, its edges say %#x", t,
                       f & (TF_TF_NEEDFAIL | TF_TF_GOTFAIL), want);
        /* Not needed (a no-op is done anyway): it must never have run. */
        bool unneeded = want == TF_TF_NEEDFAIL && !(f & TF_TF_NOOP);
        if (unneeded && (st == TF_ST_READY || st == TF_ST_DISPATCHED ||
                         st == TF_ST_PARKED || st == TF_ST_FAILED ||
                         (st == TF_ST_DONE && d->attempts[t])))
            FAIL_CHECK("task %u is %s (attempts %u) though none of its NOTOK "
                       "dependencies failed",
                       t, tf_state_name(st), d->attempts[t]);
    }
    for (uint32_t w = 0; w < s->nworkers; w++)
        if (load[w] != s->workers[w].ntasks)
            FAIL_CHECK("worker %u counts %u tasks, holds %u", w,
                       s->workers[w].ntasks, load[w]);
    for (uint32_t w = 0; w < s->nworkers; w++)
        if (est[w] != s->workers[w].est_ms)
            FAIL_CHECK("worker %u counts %" PRIu64 " ms of estimates, holds "
                       "%" PRIu64, w, s->workers[w].est_ms, est[w]);
out_with_scratch:
    free(notok);
    free(est);
    free(queued);
    free(load);
    free(bad_pred);
    free(unfinished);
    return ok;
}
