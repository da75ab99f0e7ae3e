/* Unit tests of the core: ready queue, task graph, scheduler state machine. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "check.h"
#include "rng.h"
#include "dag.h"
#include "rq.h"
#include "sched.h"
#include "taskfarm_status.h"

/*
 * The tests drive the core exactly as the MPI loop will: add tasks and
 * dependencies, seal, register workers, dispatch, carry out the RUN actions
 * and report each task done or failed. tf_sched_check runs after every call
 * on small graphs and every CHECK_PERIOD calls on the million-task ones,
 * where it would otherwise make the test quadratic.
 */
#define CHECK_PERIOD 100000u

/* The code the simulated tasks fail with. */
#define SIM_FAIL_CODE TF_EIO

static int32_t rng_range(tf_rng *r, int32_t lo, int32_t hi)
{
    return lo + (int32_t)tf_rng_below(r, (uint32_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------------ */
/* The test's own copy of a task graph, kept apart from the scheduler's. */

typedef struct graph {
    uint32_t n, m, mcap;
    int32_t *prio;
    uint16_t *cores;
    uint8_t *retries;
    uint32_t *efrom, *eto;
    uint32_t *poff, *pred; /* predecessors of t: pred[poff[t]..poff[t+1]) */
    uint32_t *soff, *succ; /* successors of t, likewise */
} graph;

static void graph_free(graph *g)
{
    free(g->prio);
    free(g->cores);
    free(g->retries);
    free(g->efrom);
    free(g->eto);
    free(g->poff);
    free(g->pred);
    free(g->soff);
    free(g->succ);
    memset(g, 0, sizeof *g);
}

/* n tasks of priority 0, one core, no retries, no edges yet. */
static bool graph_init(graph *g, uint32_t n)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    size_t k = n ? n : 1;
    g->prio = calloc(k, sizeof *g->prio);
    g->cores = malloc(k * sizeof *g->cores);
    g->retries = calloc(k, sizeof *g->retries);
    if (!CHECK_TRUE(g->prio && g->cores && g->retries)) {
        graph_free(g);
        return false;
    }
    for (uint32_t i = 0; i < n; i++)
        g->cores[i] = 1;
    return true;
}

static bool graph_edge(graph *g, uint32_t from, uint32_t to)
{
    if (g->m == g->mcap) {
        uint32_t ncap = g->mcap ? g->mcap * 2 : 64;
        uint32_t *f = realloc(g->efrom, ncap * sizeof *f);
        if (f)
            g->efrom = f;
        uint32_t *t = realloc(g->eto, ncap * sizeof *t);
        if (t)
            g->eto = t;
        if (!CHECK_TRUE(f && t))
            return false;
        g->mcap = ncap;
    }
    g->efrom[g->m] = from;
    g->eto[g->m] = to;
    g->m++;
    return true;
}

/* Counting sort of the edges into one adjacency array. */
static bool build_csr(uint32_t n, uint32_t m, const uint32_t *key,
                      const uint32_t *val, uint32_t **offp, uint32_t **adjp)
{
    uint32_t *off = calloc((size_t)n + 1, sizeof *off);
    uint32_t *adj = malloc((m ? m : 1) * sizeof *adj);
    uint32_t *fill = malloc(((size_t)n + 1) * sizeof *fill);
    if (!CHECK_TRUE(off && adj && fill)) {
        free(off);
        free(adj);
        free(fill);
        return false;
    }
    for (uint32_t e = 0; e < m; e++)
        off[key[e] + 1]++;
    for (uint32_t t = 0; t < n; t++)
        off[t + 1] += off[t];
    memcpy(fill, off, ((size_t)n + 1) * sizeof *fill);
    for (uint32_t e = 0; e < m; e++)
        adj[fill[key[e]]++] = val[e];
    free(fill);
    *offp = off;
    *adjp = adj;
    return true;
}

/* Build the adjacency arrays once every edge is in. */
static bool graph_finish(graph *g)
{
    return build_csr(g->n, g->m, g->eto, g->efrom, &g->poff, &g->pred) &&
           build_csr(g->n, g->m, g->efrom, g->eto, &g->soff, &g->succ);
}

static bool graph_has_edge(const graph *g, uint32_t from, uint32_t to)
{
    for (uint32_t k = g->soff[from]; k < g->soff[from + 1]; k++)
        if (g->succ[k] == to)
            return true;
    return false;
}

/* The same, before graph_finish: a scan of the edge list. */
static bool graph_has_edge_slow(const graph *g, uint32_t from, uint32_t to)
{
    for (uint32_t e = 0; e < g->m; e++)
        if (g->efrom[e] == from && g->eto[e] == to)
            return true;
    return false;
}

/*
 * A random DAG: a random permutation fixes a topological order and every
 * edge goes forward in it, so edges point both up and down in task index
 * (as forward references in a task file do). No duplicate edges.
 */
static bool graph_random(graph *g, tf_rng *r, uint32_t n, uint32_t max_deps,
                         int32_t prio_lo, int32_t prio_hi)
{
    if (!graph_init(g, n))
        return false;
    uint32_t *perm = malloc(n * sizeof *perm);
    uint32_t *mark = malloc(n * sizeof *mark);
    if (!CHECK_TRUE(perm && mark))
        goto fail_with_scratch;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = tf_rng_below(r, i + 1);
        perm[i] = perm[j];
        perm[j] = i;
        mark[i] = UINT32_MAX;
        g->prio[i] = rng_range(r, prio_lo, prio_hi);
    }
    for (uint32_t j = 1; j < n; j++) {
        uint32_t k = tf_rng_below(r, max_deps + 1);
        for (uint32_t x = 0; x < k; x++) {
            uint32_t from = perm[tf_rng_below(r, j)];
            if (mark[from] == j)
                continue;
            mark[from] = j;
            if (!graph_edge(g, from, perm[j]))
                goto fail_with_scratch;
        }
    }
    free(mark);
    free(perm);
    return graph_finish(g);

fail_with_scratch:
    free(mark);
    free(perm);
    graph_free(g);
    return false;
}

/* Kahn's algorithm; false if the graph has a cycle. */
static bool graph_topo(const graph *g, uint32_t *order)
{
    uint32_t *indeg = malloc((g->n ? g->n : 1) * sizeof *indeg);
    if (!CHECK_TRUE(indeg))
        return false;
    size_t head = 0, tail = 0;
    for (uint32_t t = 0; t < g->n; t++) {
        indeg[t] = g->poff[t + 1] - g->poff[t];
        if (!indeg[t])
            order[tail++] = t;
    }
    while (head < tail) {
        uint32_t t = order[head++];
        for (uint32_t k = g->soff[t]; k < g->soff[t + 1]; k++)
            if (--indeg[g->succ[k]] == 0)
                order[tail++] = g->succ[k];
    }
    free(indeg);
    return tail == g->n;
}

/* True when a is a proper ancestor of t (a path a -> ... -> t exists). */
static bool graph_is_ancestor(const graph *g, uint32_t a, uint32_t t)
{
    uint8_t *seen = calloc(g->n, 1);
    uint32_t *stack = malloc(g->n * sizeof *stack);
    bool found = false;
    if (!CHECK_TRUE(seen && stack))
        goto out_with_scratch;
    size_t sp = 0;
    stack[sp++] = t;
    seen[t] = 1;
    while (sp && !found) {
        uint32_t v = stack[--sp];
        for (uint32_t k = g->poff[v]; k < g->poff[v + 1]; k++) {
            uint32_t p = g->pred[k];
            if (p == a)
                found = true;
            if (!seen[p]) {
                seen[p] = 1;
                stack[sp++] = p;
            }
        }
    }
out_with_scratch:
    free(stack);
    free(seen);
    return found;
}

/*
 * The order one worker with slots=1, depth=1 must run a failure-free graph
 * in, computed the slow obvious way: each step takes, among the tasks whose
 * dependencies are all done, the highest priority, then the lowest index.
 */
static bool ref_serial_order(const graph *g, uint32_t *order)
{
    uint32_t *npend = malloc((g->n ? g->n : 1) * sizeof *npend);
    uint8_t *taken = calloc(g->n ? g->n : 1, 1);
    bool ok = CHECK_TRUE(npend && taken);
    for (uint32_t t = 0; ok && t < g->n; t++)
        npend[t] = g->poff[t + 1] - g->poff[t];
    for (uint32_t step = 0; ok && step < g->n; step++) {
        uint32_t best = TF_NONE;
        for (uint32_t t = 0; t < g->n; t++)
            if (!taken[t] && !npend[t] &&
                (best == TF_NONE || g->prio[t] > g->prio[best]))
                best = t;
        if (!CHECK_MSG(best != TF_NONE, "reference: no ready task at step %u",
                       step)) {
            ok = false;
            break;
        }
        order[step] = best;
        taken[best] = 1;
        for (uint32_t k = g->soff[best]; k < g->soff[best + 1]; k++)
            npend[g->succ[k]]--;
    }
    free(taken);
    free(npend);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Scheduler set-up helpers. */

typedef struct wspec {
    uint32_t slots, depth;
} wspec;

/*
 * Add g's tasks and edges to s; task i of g becomes scheduler task
 * *base + i. With check_each the invariants are checked after every call.
 */
static bool load_graph(tf_sched *s, const graph *g, bool check_each,
                       uint32_t *base)
{
    uint32_t first = s->dag.n;
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t idx = TF_NONE;
        int rc =
            tf_sched_add_task(s, g->prio[i], g->cores[i], g->retries[i], &idx);
        if (!CHECK_RC(rc, TF_OK))
            return false;
        if (i == 0)
            first = idx;
        else if (!CHECK_EQ_U(idx, (uint64_t)first + i))
            return false;
        if (!CHECK_STATE(s, idx, TF_ST_HELD))
            return false;
        if (check_each && !CHECK_SCHED(s))
            return false;
    }
    for (uint32_t e = 0; e < g->m; e++) {
        int rc = tf_sched_add_dep(s, first + g->efrom[e], first + g->eto[e]);
        if (!CHECK_RC(rc, TF_OK))
            return false;
        if (check_each && !CHECK_SCHED(s))
            return false;
    }
    *base = first;
    return true;
}

static bool seal_ok(tf_sched *s)
{
    uint32_t cyc[16];
    size_t ncyc = 0;
    return CHECK_RC(tf_sched_seal(s, cyc, 16, &ncyc), TF_OK);
}

static bool add_workers(tf_sched *s, const wspec *ws, uint32_t nw,
                        uint32_t *ids)
{
    for (uint32_t k = 0; k < nw; k++) {
        ids[k] = TF_NONE;
        if (!CHECK_RC(tf_sched_add_worker(s, ws[k].slots, ws[k].depth, &ids[k]),
                      TF_OK))
            return false;
        if (!CHECK_TRUE(ids[k] != TF_NONE))
            return false;
    }
    return true;
}

/* Copy pending actions to out (at most max), clear them, return how many. */
static size_t take_actions(tf_sched *s, tf_action *out, size_t max)
{
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    CHECK_LE_U(n, max);
    if (n)
        memcpy(out, a, (n < max ? n : max) * sizeof *a);
    tf_sched_clear_actions(s);
    return n < max ? n : max;
}

static size_t count_acts(const tf_action *a, size_t n, uint32_t kind,
                         uint32_t task)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i].kind == kind && (task == TF_NONE || a[i].task == task))
            c++;
    return c;
}

static const tf_action *find_act(const tf_action *a, size_t n, uint32_t kind,
                                 uint32_t task)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].kind == kind && a[i].task == task)
            return &a[i];
    return NULL;
}

/* Dispatch, expect exactly one action, a RUN; return its task or TF_NONE. */
static uint32_t dispatch_one(tf_sched *s, uint32_t *worker)
{
    tf_action a[8];
    if (!CHECK_RC(tf_sched_dispatch(s), TF_OK))
        return TF_NONE;
    size_t n = take_actions(s, a, 8);
    CHECK_SCHED(s);
    if (!CHECK_EQ_U(n, 1) || !CHECK_EQ_U(a[0].kind, TF_ACT_RUN))
        return TF_NONE;
    if (worker)
        *worker = a[0].worker;
    return a[0].task;
}

/* Dispatch and expect no action at all. */
static bool dispatch_none(tf_sched *s)
{
    tf_action a[8];
    if (!CHECK_RC(tf_sched_dispatch(s), TF_OK))
        return false;
    size_t n = take_actions(s, a, 8);
    return CHECK_SCHED(s) &&
           CHECK_MSG(n == 0,
                     "dispatch emitted %zu actions, first kind %u "
                     "task %u, expected none",
                     n, n ? a[0].kind : 0u, n ? a[0].task : 0u);
}

/* Report t done and expect no action to come of it. */
static bool done_quiet(tf_sched *s, uint32_t t)
{
    tf_action a[8];
    if (!CHECK_RC(tf_sched_task_done(s, t), TF_OK))
        return false;
    size_t n = take_actions(s, a, 8);
    return CHECK_SCHED(s) &&
           CHECK_MSG(n == 0, "task_done(%u) emitted %zu actions, first kind %u",
                     t, n, n ? a[0].kind : 0u);
}

/* ------------------------------------------------------------------------ */
/* The simulated driver. */

/* Failure plan value: the task fails on every attempt. */
#define FAIL_ALWAYS UINT8_MAX

typedef struct sim_cfg {
    const wspec *ws;     /* shapes of the workers ... */
    const uint32_t *wid; /* ... and their indexes in the scheduler */
    uint32_t nw;
    uint64_t seed;
    bool random;          /* finish a random subset in random order per round;
                             else everything in flight, in RUN order */
    uint32_t check_every; /* tf_sched_check every this many calls (1: all) */
    const uint8_t *fail_plan; /* per task, failures before success; or NULL */
} sim_cfg;

/* What the driver believes of each task, from the actions it saw. */
enum { M_WAIT, M_RUNNING, M_FAILING, M_DONE, M_FAILED, M_SKIPPED };

typedef struct inflight {
    uint32_t task; /* graph index */
    uint32_t k;    /* position of its worker in sim_cfg */
} inflight;

typedef struct sim {
    tf_sched *s;
    const graph *g;
    const sim_cfg *cfg;
    uint32_t base; /* scheduler index of graph task 0 */
    tf_rng r;
    bool ok;
    uint64_t calls; /* calls into the scheduler, for the check period */

    uint8_t *model;
    uint8_t *nfailed; /* failures reported so far */
    uint16_t *runs, *retry_acts, *fail_acts, *skip_acts;
    int32_t *fail_cause, *skip_cause;
    uint64_t *first_run, *done_at;    /* call numbers */
    uint32_t *run_order, *done_order; /* graph indexes */
    size_t nrun, run_cap, ndone;
    inflight *in;
    size_t nin;
    uint32_t *load;   /* per worker position */
    uint32_t failing; /* task just reported failed, or TF_NONE */
} sim;

static void sim_free(sim *m)
{
    free(m->model);
    free(m->nfailed);
    free(m->runs);
    free(m->retry_acts);
    free(m->fail_acts);
    free(m->skip_acts);
    free(m->fail_cause);
    free(m->skip_cause);
    free(m->first_run);
    free(m->done_at);
    free(m->run_order);
    free(m->done_order);
    free(m->in);
    free(m->load);
    memset(m, 0, sizeof *m);
}

static bool sim_init(sim *m, tf_sched *s, const graph *g, uint32_t base,
                     const sim_cfg *cfg)
{
    memset(m, 0, sizeof *m);
    size_t n = g->n ? g->n : 1;
    m->s = s;
    m->g = g;
    m->cfg = cfg;
    m->base = base;
    m->r = tf_rng_seeded(cfg->seed);
    m->failing = TF_NONE;
    m->model = calloc(n, 1);
    m->nfailed = calloc(n, 1);
    m->runs = calloc(n, sizeof *m->runs);
    m->retry_acts = calloc(n, sizeof *m->retry_acts);
    m->fail_acts = calloc(n, sizeof *m->fail_acts);
    m->skip_acts = calloc(n, sizeof *m->skip_acts);
    m->fail_cause = calloc(n, sizeof *m->fail_cause);
    m->skip_cause = calloc(n, sizeof *m->skip_cause);
    m->first_run = calloc(n, sizeof *m->first_run);
    m->done_at = calloc(n, sizeof *m->done_at);
    m->run_cap = n;
    m->run_order = malloc(n * sizeof *m->run_order);
    m->done_order = malloc(n * sizeof *m->done_order);
    m->in = malloc(n * sizeof *m->in);
    m->load = calloc(cfg->nw ? cfg->nw : 1, sizeof *m->load);
    m->ok = CHECK_TRUE(m->model && m->nfailed && m->runs && m->retry_acts &&
                       m->fail_acts && m->skip_acts && m->fail_cause &&
                       m->skip_cause && m->first_run && m->done_at &&
                       m->run_order && m->done_order && m->in && m->load);
    if (!m->ok)
        sim_free(m);
    return m->ok;
}

static uint32_t sim_worker_pos(const sim *m, uint32_t w)
{
    for (uint32_t k = 0; k < m->cfg->nw; k++)
        if (m->cfg->wid[k] == w)
            return k;
    return TF_NONE;
}

static bool sim_run_one(sim *m, const tf_action *a)
{
    const graph *g = m->g;
    uint32_t t = a->task;
    if (!CHECK_MSG(t >= m->base && t - m->base < g->n,
                   "action kind %u names task %u, outside [%u, %u)", a->kind, t,
                   m->base, m->base + g->n))
        return false;
    uint32_t i = t - m->base;
    switch (a->kind) {
    case TF_ACT_RUN: {
        uint32_t k = sim_worker_pos(m, a->worker);
        if (!CHECK_MSG(k != TF_NONE, "RUN task %u on unknown worker %u", t,
                       a->worker) ||
            !CHECK_MSG(m->model[i] == M_WAIT,
                       "RUN task %u that is running or finished (model %u)", t,
                       m->model[i]) ||
            !CHECK_STATE(m->s, t, TF_ST_DISPATCHED) ||
            !CHECK_MSG(g->cores[i] <= m->cfg->ws[k].slots,
                       "task %u needs %u cores, given to worker %u of %u slots",
                       t, g->cores[i], a->worker, m->cfg->ws[k].slots) ||
            !CHECK_MSG(m->load[k] < m->cfg->ws[k].depth,
                       "worker %u given a task beyond its depth %u", a->worker,
                       m->cfg->ws[k].depth))
            return false;
        for (uint32_t p = g->poff[i]; p < g->poff[i + 1]; p++)
            if (!CHECK_MSG(m->model[g->pred[p]] == M_DONE,
                           "task %u RUN before its dependency %u was done", t,
                           m->base + g->pred[p]))
                return false;
        if (!m->runs[i])
            m->first_run[i] = m->calls;
        m->runs[i]++;
        m->model[i] = M_RUNNING;
        m->load[k]++;
        m->in[m->nin++] = (inflight){i, k};
        if (m->nrun == m->run_cap) {
            uint32_t *o =
                realloc(m->run_order, 2 * m->run_cap * sizeof *m->run_order);
            if (!CHECK_TRUE(o))
                return false;
            m->run_order = o;
            m->run_cap *= 2;
        }
        m->run_order[m->nrun++] = i;
        return true;
    }
    case TF_ACT_RETRY:
        if (!CHECK_MSG(i == m->failing,
                       "RETRY for task %u, which was not just reported failed",
                       t))
            return false;
        m->retry_acts[i]++;
        m->model[i] = M_WAIT;
        m->failing = TF_NONE;
        return true;
    case TF_ACT_FAIL:
        /* A task fails either when reported so or, not yet run, for want
         * of a worker with enough cores. */
        if (!CHECK_MSG(i == m->failing || m->model[i] == M_WAIT,
                       "FAIL for task %u, which is running or finished", t))
            return false;
        if (i == m->failing)
            m->failing = TF_NONE;
        m->fail_acts[i]++;
        m->fail_cause[i] = a->cause;
        m->model[i] = M_FAILED;
        return true;
    case TF_ACT_SKIP:
        if (!CHECK_MSG(m->model[i] == M_WAIT,
                       "SKIP for task %u, which is running or finished (model "
                       "%u)",
                       t, m->model[i]))
            return false;
        m->skip_acts[i]++;
        m->skip_cause[i] = a->cause;
        m->model[i] = M_SKIPPED;
        return true;
    default:
        return CHECK_MSG(false, "action of unknown kind %u for task %u",
                         a->kind, t);
    }
}

/* Carry out (in the model) every pending action, clear them, maybe check. */
static bool sim_absorb(sim *m)
{
    size_t n;
    const tf_action *a = tf_sched_actions(m->s, &n);
    for (size_t k = 0; k < n && m->ok; k++)
        m->ok = sim_run_one(m, &a[k]);
    tf_sched_clear_actions(m->s);
    m->calls++;
    if (m->ok &&
        (m->cfg->check_every <= 1 || m->calls % m->cfg->check_every == 0))
        m->ok = CHECK_SCHED(m->s);
    return m->ok;
}

/* Finish the in-flight task at position j: done, or failed per the plan. */
static bool sim_complete(sim *m, size_t j)
{
    uint32_t i = m->in[j].task;
    uint32_t t = m->base + i;
    m->load[m->in[j].k]--;
    if (!CHECK_STATE(m->s, t, TF_ST_DISPATCHED))
        return m->ok = false;
    const uint8_t *plan = m->cfg->fail_plan;
    if (plan && m->nfailed[i] < plan[i]) {
        m->nfailed[i]++;
        m->model[i] = M_FAILING;
        m->failing = i;
        if (!CHECK_RC(tf_sched_task_failed(m->s, t, SIM_FAIL_CODE), TF_OK))
            return m->ok = false;
        if (!sim_absorb(m))
            return false;
        return m->ok =
                   CHECK_MSG(m->model[i] != M_FAILING,
                             "task_failed(%u) gave neither RETRY nor FAIL", t);
    }
    m->model[i] = M_DONE;
    m->done_at[i] = m->calls;
    m->done_order[m->ndone++] = i;
    if (!CHECK_RC(tf_sched_task_done(m->s, t), TF_OK))
        return m->ok = false;
    return sim_absorb(m);
}

/* Compare what happened with what must have: outcome, actions, counters. */
static void sim_verify(sim *m)
{
    const graph *g = m->g;
    const uint8_t *plan = m->cfg->fail_plan;
    uint32_t max_slots = 0;
    for (uint32_t k = 0; k < m->cfg->nw; k++)
        if (m->cfg->ws[k].slots > max_slots)
            max_slots = m->cfg->ws[k].slots;
    uint32_t *order = malloc((g->n ? g->n : 1) * sizeof *order);
    uint8_t *want = malloc(g->n ? g->n : 1);
    if (!CHECK_TRUE(order && want) || !CHECK_TRUE(graph_topo(g, order)))
        goto out_with_scratch;

    /* The expected outcome, in topological order. */
    uint32_t count[TF_ST_COUNT_] = {0};
    for (uint32_t x = 0; x < g->n; x++) {
        uint32_t t = order[x];
        bool deps_done = true;
        for (uint32_t p = g->poff[t]; p < g->poff[t + 1]; p++)
            deps_done = deps_done && want[g->pred[p]] == TF_ST_DONE;
        uint32_t fails = plan ? plan[t] : 0;
        if (!deps_done)
            want[t] = TF_ST_SKIPPED;
        else if (g->cores[t] > max_slots || fails > g->retries[t])
            want[t] = TF_ST_FAILED;
        else
            want[t] = TF_ST_DONE;
        count[want[t]]++;
    }

    for (uint32_t t = 0; t < g->n && m->ok; t++) {
        uint32_t st = m->base + t;
        uint32_t fails = plan ? plan[t] : 0;
        bool no_cores = g->cores[t] > max_slots;
        if (!CHECK_STATE(m->s, st, (tf_state)want[t])) {
            m->ok = false;
            break;
        }
        switch (want[t]) {
        case TF_ST_DONE:
            m->ok = CHECK_EQ_U(m->model[t], M_DONE) &&
                    CHECK_EQ_U(m->runs[t], fails + 1) &&
                    CHECK_EQ_U(m->retry_acts[t], fails) &&
                    CHECK_EQ_U(m->fail_acts[t], 0) &&
                    CHECK_EQ_U(m->skip_acts[t], 0);
            break;
        case TF_ST_FAILED:
            m->ok =
                CHECK_EQ_U(m->model[t], M_FAILED) &&
                CHECK_EQ_U(m->fail_acts[t], 1) &&
                CHECK_EQ_U(m->skip_acts[t], 0) &&
                CHECK_EQ_U(m->runs[t], no_cores ? 0 : g->retries[t] + 1u) &&
                CHECK_EQ_U(m->retry_acts[t], no_cores ? 0 : g->retries[t]) &&
                CHECK_RC(m->fail_cause[t],
                         no_cores ? TF_ECORES : SIM_FAIL_CODE);
            break;
        case TF_ST_SKIPPED: {
            m->ok = CHECK_EQ_U(m->model[t], M_SKIPPED) &&
                    CHECK_EQ_U(m->skip_acts[t], 1) &&
                    CHECK_EQ_U(m->runs[t], 0) && CHECK_EQ_U(m->fail_acts[t], 0);
            if (!m->ok)
                break;
            /* The cause is a failed task upstream of this one. */
            uint32_t c = (uint32_t)m->skip_cause[t];
            m->ok = CHECK_MSG(c >= m->base && c - m->base < g->n &&
                                  want[c - m->base] == TF_ST_FAILED,
                              "task %u SKIPPED with cause %u, not a failed "
                              "task of the graph",
                              st, c);
            if (m->ok && g->n <= 5000)
                m->ok = CHECK_MSG(graph_is_ancestor(g, c - m->base, t),
                                  "task %u SKIPPED with cause %u, which it "
                                  "does not depend on",
                                  st, c);
            break;
        }
        default:
            m->ok = CHECK_MSG(false, "bad expected state");
        }
    }

    /* Every edge from -> to: from was done before to first ran. */
    for (uint32_t e = 0; e < g->m && m->ok; e++) {
        uint32_t f = g->efrom[e], t = g->eto[e];
        if (m->runs[t])
            m->ok = CHECK_MSG(
                m->model[f] == M_DONE && m->done_at[f] < m->first_run[t],
                "edge %u -> %u: %u ran before %u was done", m->base + f,
                m->base + t, m->base + t, m->base + f);
    }

    /* The scheduler's counters, when the graph is the whole scheduler. */
    if (m->ok && m->base == 0 && m->s->dag.n == g->n)
        for (int st = TF_ST_HELD; st < TF_ST_COUNT_ && m->ok; st++)
            m->ok = CHECK_MSG(
                m->s->count[st] == count[st], "count[%s] is %u, expected %u",
                tf_state_name((tf_state)st), m->s->count[st], count[st]);

out_with_scratch:
    free(want);
    free(order);
}

/*
 * Run the sealed graph to the end: dispatch, carry out the RUN actions,
 * finish some in-flight tasks (done, or failed per the plan), repeat until
 * tf_sched_is_finished. Returns true when nothing went wrong.
 */
static bool sim_run(sim *m)
{
    const sim_cfg *cfg = m->cfg;
    uint64_t rounds = 0, max_rounds = 2 * (uint64_t)m->g->n + 16;
    if (cfg->fail_plan)
        for (uint32_t t = 0; t < m->g->n; t++)
            max_rounds += cfg->fail_plan[t] < m->g->retries[t]
                              ? cfg->fail_plan[t]
                              : m->g->retries[t];
    m->ok = m->ok && sim_absorb(m); /* whatever seal left behind */
    while (m->ok && !tf_sched_is_finished(m->s)) {
        rounds++;
        if (!CHECK_MSG(rounds <= max_rounds, "no end after %" PRIu64 " rounds",
                       rounds)) {
            m->ok = false;
            break;
        }
        if (!CHECK_RC(tf_sched_dispatch(m->s), TF_OK) || !sim_absorb(m)) {
            m->ok = false;
            break;
        }
        if (!CHECK_MSG(m->nin > 0,
                       "not finished, but nothing dispatched "
                       "(%u done, %u ready, %u pending)",
                       m->s->count[TF_ST_DONE], m->s->count[TF_ST_READY],
                       m->s->count[TF_ST_PENDING])) {
            m->ok = false;
            break;
        }
        size_t k = m->nin;
        if (cfg->random) {
            k = 1 + tf_rng_below(&m->r, (uint32_t)m->nin);
            for (size_t j = 0; j < k; j++) {
                size_t x = j + tf_rng_below(&m->r, (uint32_t)(m->nin - j));
                inflight tmp = m->in[j];
                m->in[j] = m->in[x];
                m->in[x] = tmp;
            }
        }
        /* The first k finish; later RUN actions (if any) append after. */
        for (size_t j = 0; j < k && m->ok; j++)
            sim_complete(m, j);
        memmove(m->in, m->in + k, (m->nin - k) * sizeof *m->in);
        m->nin -= k;
    }
    if (m->ok)
        m->ok = CHECK_EQ_U(m->nin, 0) && CHECK_SCHED(m->s);
    if (m->ok)
        sim_verify(m);
    return m->ok;
}

/*
 * Build a scheduler from g, seal it, add the workers and run it to the end.
 * run_order, when given, receives the first g->n RUN actions' tasks.
 */
static bool run_graph(const graph *g, const wspec *ws, uint32_t nw,
                      uint64_t seed, bool random, const uint8_t *fail_plan,
                      uint32_t *run_order)
{
    tf_sched s;
    uint32_t base, wid[16];
    sim m;
    bool ok = false;
    bool small = g->n + g->m <= 20000;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return false;
    if (!CHECK_LE_U(nw, 16) || !load_graph(&s, g, small, &base) ||
        !seal_ok(&s) || !CHECK_SCHED(&s) || !add_workers(&s, ws, nw, wid))
        goto out_with_sched;
    sim_cfg cfg = {ws,       wid, nw, seed, random, small ? 1 : CHECK_PERIOD,
                   fail_plan};
    if (sim_init(&m, &s, g, base, &cfg)) {
        ok = sim_run(&m);
        if (ok && run_order && CHECK_EQ_U(m.nrun, g->n))
            memcpy(run_order, m.run_order, g->n * sizeof *run_order);
        sim_free(&m);
    }
out_with_sched:
    tf_sched_free(&s);
    return ok;
}

/* True when cyc[0..n) is a cycle of g (task i of g is base + i). */
static bool check_cycle(const graph *g, uint32_t base, const uint32_t *cyc,
                        size_t n)
{
    if (!CHECK_MSG(n >= 2, "cycle of length %zu", n))
        return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t a = cyc[i], b = cyc[(i + 1) % n];
        if (!CHECK_MSG(a >= base && a - base < g->n && b >= base &&
                           b - base < g->n,
                       "cycle entry %zu (%u) is not a new task", i, a))
            return false;
        for (size_t j = 0; j < i; j++)
            if (!CHECK_MSG(cyc[j] != a, "task %u twice in the cycle", a))
                return false;
        if (!CHECK_MSG(graph_has_edge(g, a - base, b - base),
                       "cycle step %zu: no edge %u -> %u", i, a, b))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Ready queue. */

typedef struct prio_idx {
    int32_t prio;
    uint32_t idx;
} prio_idx;

static int cmp_prio_idx(const void *pa, const void *pb)
{
    const prio_idx *a = pa, *b = pb;
    if (a->prio != b->prio)
        return a->prio > b->prio ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void test_rq_order(void)
{
    enum { N = 3000 };
    tf_rng r = tf_rng_seeded(1);
    int32_t *prio = malloc(N * sizeof *prio);
    uint32_t *push = malloc(N * sizeof *push);
    prio_idx *ref = malloc(N * sizeof *ref);
    if (!CHECK_TRUE(prio && push && ref))
        goto out_with_arrays;
    for (uint32_t i = 0; i < N; i++) {
        prio[i] = rng_range(&r, -4, 4);
        if (i % 500 == 7)
            prio[i] = INT32_MAX;
        if (i % 500 == 11)
            prio[i] = INT32_MIN;
        ref[i] = (prio_idx){prio[i], i};
        uint32_t j = tf_rng_below(&r, i + 1); /* push in shuffled order */
        push[i] = push[j];
        push[j] = i;
    }
    qsort(ref, N, sizeof *ref, cmp_prio_idx);

    const int32_t *p = prio;
    tf_rq q;
    tf_rq_init(&q, &p);
    CHECK_TRUE(tf_rq_is_empty(&q));
    CHECK_EQ_U(tf_rq_peek(&q), TF_NONE);
    CHECK_EQ_U(tf_rq_pop(&q), TF_NONE);
    for (uint32_t i = 0; i < N; i++) {
        if (!CHECK_RC(tf_rq_push(&q, push[i]), TF_OK) ||
            !CHECK_TRUE(tf_rq_check(&q)))
            goto out_with_rq;
    }
    CHECK_EQ_U(q.n, N);
    CHECK_FALSE(tf_rq_is_empty(&q));
    for (uint32_t i = 0; i < N; i++) {
        uint32_t top = tf_rq_peek(&q);
        uint32_t got = tf_rq_pop(&q);
        if (!CHECK_EQ_U(top, got) || !CHECK_EQ_U(got, ref[i].idx) ||
            !CHECK_TRUE(tf_rq_check(&q)))
            break;
    }
    CHECK_TRUE(tf_rq_is_empty(&q));
    CHECK_EQ_U(tf_rq_pop(&q), TF_NONE);
out_with_rq:
    tf_rq_free(&q);
out_with_arrays:
    free(ref);
    free(push);
    free(prio);
}

/*
 * Equal priorities pushed in index order all join the run (no heap entry);
 * a task that must come out earlier goes to the heap and still comes out
 * first, and one pushed after a run restarts behind it.
 */
static void test_rq_fifo_equal(void)
{
    enum { N = 3000 };
    int32_t prio[N + 2] = {0};
    prio[N] = 5;
    const int32_t *p = prio;
    tf_rq q;
    tf_rq_init(&q, &p);
    for (uint32_t i = 0; i < N; i++)
        CHECK_RC(tf_rq_push(&q, i), TF_OK);
    CHECK_EQ_U(q.hn, 0);
    CHECK_EQ_U(q.rn, N);
    CHECK_RC(tf_rq_push(&q, N), TF_OK); /* priority 5: before all */
    CHECK_EQ_U(q.hn, 1);
    CHECK_TRUE(tf_rq_check(&q));
    CHECK_EQ_U(tf_rq_pop(&q), N);
    for (uint32_t i = 0; i < N / 2; i++)
        if (!CHECK_EQ_U(tf_rq_pop(&q), i))
            break;
    CHECK_RC(tf_rq_push(&q, N + 1), TF_OK); /* after the run's tail */
    CHECK_EQ_U(q.hn, 0);
    for (uint32_t i = N / 2; i < N; i++)
        if (!CHECK_EQ_U(tf_rq_pop(&q), i))
            break;
    CHECK_EQ_U(tf_rq_pop(&q), N + 1);
    CHECK_TRUE(tf_rq_is_empty(&q));
    tf_rq_free(&q);
}

/*
 * Pushes and pops mixed, against a brute-force reference; half way the
 * priority array moves (as the task table's does when it grows), which the
 * queue must follow because it holds a pointer to the array pointer.
 */
static void test_rq_interleaved(void)
{
    enum { N = 4000 };
    tf_rng r = tf_rng_seeded(2);
    int32_t *prio = malloc(N * sizeof *prio);
    uint8_t *in = calloc(N, 1);
    if (!CHECK_TRUE(prio && in)) {
        free(prio);
        free(in);
        return;
    }
    for (uint32_t i = 0; i < N; i++)
        prio[i] = rng_range(&r, -10, 10);
    const int32_t *p = prio;
    tf_rq q;
    tf_rq_init(&q, &p);
    uint32_t next = 0, live = 0;
    bool ok = true;
    while (ok && (next < N || live)) {
        if (next == N / 2) {
            int32_t *moved = malloc(N * sizeof *moved);
            if (!CHECK_TRUE(moved))
                break;
            memcpy(moved, prio, N * sizeof *moved);
            memset(prio, 0x55, N * sizeof *prio);
            free(prio);
            prio = moved;
            p = prio;
        }
        if (next < N && (live == 0 || tf_rng_below(&r, 3) != 0)) {
            ok = CHECK_RC(tf_rq_push(&q, next), TF_OK);
            in[next++] = 1;
            live++;
        } else {
            uint32_t best = TF_NONE;
            for (uint32_t i = 0; i < next; i++)
                if (in[i] && (best == TF_NONE || prio[i] > prio[best]))
                    best = i;
            ok = CHECK_EQ_U(tf_rq_pop(&q), best);
            in[best] = 0;
            live--;
        }
        ok = ok && CHECK_TRUE(tf_rq_check(&q)) && CHECK_EQ_U(q.n, live);
    }
    tf_rq_free(&q);
    free(in);
    free(prio);
}

/* ------------------------------------------------------------------------ */
/* Scheduler: small graphs, step by step. */

static void test_empty(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    CHECK_SCHED(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_TRUE(seal_ok(&s));
    CHECK_SCHED(&s);
    uint32_t w;
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK);
    CHECK_SCHED(&s);
    dispatch_none(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));
    tf_sched_free(&s);
}

/* One worker holding one task at a time: strict priority, then submission. */
static void test_priority_order(void)
{
    enum { N = 2000 };
    tf_rng r = tf_rng_seeded(3);
    prio_idx *ref = malloc(N * sizeof *ref);
    tf_sched s;
    if (!CHECK_TRUE(ref) || !CHECK_RC(tf_sched_init(&s), TF_OK)) {
        free(ref);
        return;
    }
    for (uint32_t i = 0; i < N; i++) {
        int32_t pr = rng_range(&r, -5, 5);
        uint32_t t;
        if (!CHECK_RC(tf_sched_add_task(&s, pr, 1, 0, &t), TF_OK))
            goto out_with_sched;
        CHECK_EQ_U(t, i);
        ref[i] = (prio_idx){pr, t};
    }
    qsort(ref, N, sizeof *ref, cmp_prio_idx);
    uint32_t w;
    if (!seal_ok(&s) || !CHECK_SCHED(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK))
        goto out_with_sched;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t got_w = TF_NONE;
        uint32_t t = dispatch_one(&s, &got_w);
        if (!CHECK_EQ_U(t, ref[i].idx) || !CHECK_EQ_U(got_w, w))
            break;
        if (!dispatch_none(&s) || !done_quiet(&s, t))
            break;
    }
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], N);
out_with_sched:
    tf_sched_free(&s);
    free(ref);
}

/* a -> b, a -> c, b -> d, c -> d on two workers of depth 1. */
static void test_diamond(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, c, d, w[2];
    tf_action act[8];
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &c), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &d), TF_OK);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, a, c), TF_OK);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, b, d), TF_OK);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, c, d), TF_OK);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, a, TF_ST_HELD);
    CHECK_STATE(&s, d, TF_ST_HELD);

    if (!seal_ok(&s))
        goto out_with_sched;
    CHECK_EQ_U(take_actions(&s, act, 8), 0);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, a, TF_ST_READY);
    CHECK_STATE(&s, b, TF_ST_PENDING);
    CHECK_STATE(&s, c, TF_ST_PENDING);
    CHECK_STATE(&s, d, TF_ST_PENDING);
    CHECK_FALSE(tf_sched_is_finished(&s));

    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w[0]), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w[1]), TF_OK);
    CHECK_TRUE(w[0] != w[1]);
    CHECK_SCHED(&s);

    uint32_t wa = TF_NONE;
    CHECK_EQ_U(dispatch_one(&s, &wa), a);
    CHECK_TRUE(wa == w[0] || wa == w[1]);
    CHECK_STATE(&s, a, TF_ST_DISPATCHED);
    dispatch_none(&s);
    done_quiet(&s, a);
    CHECK_STATE(&s, a, TF_ST_DONE);
    CHECK_STATE(&s, b, TF_ST_READY);
    CHECK_STATE(&s, c, TF_ST_READY);
    CHECK_STATE(&s, d, TF_ST_PENDING);

    /* b and c go to different workers, each of depth 1. */
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    if (CHECK_EQ_U(n, 2) && CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, b), 1) &&
        CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, c), 1))
        CHECK_TRUE(act[0].worker != act[1].worker);
    CHECK_STATE(&s, b, TF_ST_DISPATCHED);
    CHECK_STATE(&s, c, TF_ST_DISPATCHED);

    done_quiet(&s, c); /* out of submission order */
    CHECK_STATE(&s, d, TF_ST_PENDING);
    dispatch_none(&s);
    done_quiet(&s, b);
    CHECK_STATE(&s, d, TF_ST_READY);
    CHECK_FALSE(tf_sched_is_finished(&s));
    CHECK_EQ_U(dispatch_one(&s, NULL), d);
    done_quiet(&s, d);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 4);
out_with_sched:
    tf_sched_free(&s);
}

/* The same dependency given twice counts twice and is released twice. */
static void test_duplicate_dep(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, w;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    CHECK_SCHED(&s);
    if (seal_ok(&s) && CHECK_SCHED(&s) &&
        CHECK_RC(tf_sched_add_worker(&s, 1, 4, &w), TF_OK)) {
        CHECK_STATE(&s, b, TF_ST_PENDING);
        CHECK_EQ_U(dispatch_one(&s, NULL), a);
        done_quiet(&s, a);
        CHECK_STATE(&s, b, TF_ST_READY);
        CHECK_EQ_U(dispatch_one(&s, NULL), b);
        dispatch_none(&s);
        done_quiet(&s, b);
        CHECK_TRUE(tf_sched_is_finished(&s));
    }
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Scheduler: shapes of graph, run by the simulated driver. */

static const wspec mixed_workers[] = {{1, 4}, {2, 8}, {1, 1}};

static void test_fan_in(void)
{
    enum { N = 1000 };
    graph g;
    /* Sink last, then sink first (its dependencies are forward references). */
    for (int sink_first = 0; sink_first < 2; sink_first++) {
        if (!graph_init(&g, N + 1))
            return;
        uint32_t sink = sink_first ? 0 : N;
        bool ok = true;
        for (uint32_t i = 0; i <= N && ok; i++)
            if (i != sink)
                ok = graph_edge(&g, i, sink);
        if (ok && graph_finish(&g))
            CHECK_TRUE(run_graph(&g, mixed_workers, 3, 10 + sink_first, true,
                                 NULL, NULL));
        graph_free(&g);
    }
}

static void test_fan_out(void)
{
    enum { N = 1000 };
    graph g;
    for (int src_last = 0; src_last < 2; src_last++) {
        if (!graph_init(&g, N + 1))
            return;
        uint32_t src = src_last ? N : 0;
        bool ok = true;
        for (uint32_t i = 0; i <= N && ok; i++)
            if (i != src)
                ok = graph_edge(&g, src, i);
        if (ok && graph_finish(&g))
            CHECK_TRUE(run_graph(&g, mixed_workers, 3, 20 + src_last, true,
                                 NULL, NULL));
        graph_free(&g);
    }
}

/* A million-task chain on four deep workers; FIFO completion. */
static void test_chain_1m(void)
{
    enum { N = 1000000 };
    static const wspec ws[] = {{1, 256}, {1, 256}, {2, 256}, {4, 256}};
    graph g;
    tf_sched s;
    sim m;
    uint32_t base, wid[4];
    if (!graph_init(&g, N))
        return;
    bool ok = true;
    for (uint32_t i = 0; i + 1 < N && ok; i++)
        ok = graph_edge(&g, i, i + 1);
    if (!ok || !graph_finish(&g) || !CHECK_RC(tf_sched_init(&s), TF_OK)) {
        graph_free(&g);
        return;
    }
    if (!load_graph(&s, &g, false, &base) || !seal_ok(&s) || !CHECK_SCHED(&s) ||
        !add_workers(&s, ws, 4, wid))
        goto out_with_sched;
    printf("\n    scheduler bytes per task, %u-task chain: %.1f "
           "(dag %.1f, ready queue %.1f)\n    ",
           (unsigned)N, (double)tf_sched_bytes(&s) / N,
           (double)tf_dag_bytes(&s.dag) / N, (double)tf_rq_bytes(&s.rq) / N);
    sim_cfg cfg = {ws, wid, 4, 30, false, CHECK_PERIOD, NULL};
    if (sim_init(&m, &s, &g, base, &cfg)) {
        if (CHECK_TRUE(sim_run(&m)) && CHECK_EQ_U(m.ndone, N)) {
            for (uint32_t i = 0; i < N; i++)
                if (!CHECK_EQ_U(m.done_order[i], i))
                    break;
        }
        sim_free(&m);
    }
    CHECK_EQ_U(s.count[TF_ST_DONE], N);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
    graph_free(&g);
}

/* A million independent tasks; random completion order. */
static void test_wide_1m(void)
{
    enum { N = 1000000 };
    static const wspec ws[] = {{2, 256}, {2, 256}, {1, 256}, {8, 256}};
    tf_rng r = tf_rng_seeded(40);
    graph g;
    if (!graph_init(&g, N))
        return;
    for (uint32_t i = 0; i < N; i++)
        g.prio[i] = rng_range(&r, -3, 3);
    if (graph_finish(&g))
        CHECK_TRUE(run_graph(&g, ws, 4, 41, true, NULL, NULL));
    graph_free(&g);
}

/* Random DAGs, several worker shapes, random completion order. */
static void test_random_dags(void)
{
    static const wspec shapes[][3] = {
        {{1, 1}, {0, 0}, {0, 0}},
        {{1, 2}, {2, 3}, {0, 0}},
        {{4, 16}, {1, 1}, {2, 5}},
        {{8, 256}, {8, 256}, {0, 0}},
    };
    static const uint32_t nshape[] = {1, 2, 3, 2};
    for (uint64_t seed = 1; seed <= 16; seed++) {
        tf_rng r = tf_rng_seeded(100 + seed);
        graph g;
        uint32_t n = 200 + tf_rng_below(&r, 400);
        uint32_t deg = 1 + tf_rng_below(&r, 6);
        if (!graph_random(&g, &r, n, deg, -3, 3))
            return;
        uint32_t k = (uint32_t)(seed % 4);
        bool ok = CHECK_TRUE(
            run_graph(&g, shapes[k], nshape[k], seed, true, NULL, NULL));
        graph_free(&g);
        if (!ok) {
            printf("\n    random DAG seed %" PRIu64 " failed\n", seed);
            break;
        }
    }
}

/* One worker of slots=1 depth=1 runs a DAG in the reference order. */
static void test_random_dags_serial(void)
{
    static const wspec one = {1, 1};
    for (uint64_t seed = 1; seed <= 8; seed++) {
        tf_rng r = tf_rng_seeded(200 + seed);
        graph g;
        uint32_t n = 300 + tf_rng_below(&r, 200);
        if (!graph_random(&g, &r, n, 1 + tf_rng_below(&r, 4), -2, 2))
            return;
        uint32_t *want = malloc(n * sizeof *want);
        uint32_t *got = malloc(n * sizeof *got);
        bool ok = CHECK_TRUE(want && got) && ref_serial_order(&g, want) &&
                  CHECK_TRUE(run_graph(&g, &one, 1, seed, false, NULL, got));
        for (uint32_t i = 0; ok && i < n; i++)
            ok = CHECK_MSG(got[i] == want[i],
                           "seed %" PRIu64 ": RUN number %u is task %u, "
                           "reference says %u",
                           seed, i, got[i], want[i]);
        free(got);
        free(want);
        graph_free(&g);
        if (!ok)
            break;
    }
}

/* Random DAGs where some tasks fail, some then succeed on a retry. */
static void test_random_failures(void)
{
    static const wspec ws[] = {{1, 3}, {2, 2}, {1, 1}};
    for (uint64_t seed = 1; seed <= 12; seed++) {
        tf_rng r = tf_rng_seeded(300 + seed);
        graph g;
        uint32_t n = 200 + tf_rng_below(&r, 300);
        if (!graph_random(&g, &r, n, 1 + tf_rng_below(&r, 3), -2, 2))
            return;
        uint8_t *plan = calloc(n, 1);
        if (CHECK_TRUE(plan)) {
            for (uint32_t t = 0; t < n; t++) {
                g.retries[t] = (uint8_t)tf_rng_below(&r, 3);
                uint32_t x = tf_rng_below(&r, 100);
                if (x < 4)
                    plan[t] = FAIL_ALWAYS;
                else if (x < 16)
                    plan[t] = (uint8_t)(1 + tf_rng_below(&r, 3));
            }
            bool ok = CHECK_TRUE(run_graph(&g, ws, 3, seed, true, plan, NULL));
            if (!ok)
                printf("\n    random failure seed %" PRIu64 " failed\n", seed);
        }
        free(plan);
        graph_free(&g);
    }
}

/* Tasks needing 2 or 3 cores only go to workers with that many slots. */
static void test_cores_fit(void)
{
    static const wspec ws[] = {{1, 4}, {1, 4}, {2, 4}, {3, 2}};
    for (uint64_t seed = 1; seed <= 4; seed++) {
        tf_rng r = tf_rng_seeded(400 + seed);
        graph g;
        if (!graph_random(&g, &r, 400, 2, -2, 2))
            return;
        for (uint32_t t = 0; t < g.n; t++)
            g.cores[t] = (uint16_t)(1 + tf_rng_below(&r, 3));
        CHECK_TRUE(run_graph(&g, ws, 4, seed, true, NULL, NULL));
        graph_free(&g);
    }
}

/*
 * A task needing more cores than the largest worker fails with TF_ECORES
 * and its dependents are skipped; a task needing exactly the largest runs.
 */
static void test_cores_too_many(void)
{
    static const wspec ws[] = {{2, 4}, {4, 4}};
    graph g;
    if (!graph_init(&g, 14))
        return;
    g.cores[0] = 8; /* too big */
    g.prio[0] = 5;
    g.cores[2] = 4; /* just fits */
    bool ok =
        graph_edge(&g, 0, 1) && graph_edge(&g, 1, 13) && graph_edge(&g, 2, 3);
    for (uint32_t t = 4; t < 13; t++)
        g.cores[t] = (uint16_t)(1 + t % 2);
    if (ok && graph_finish(&g))
        CHECK_TRUE(run_graph(&g, ws, 2, 50, false, NULL, NULL));
    graph_free(&g);
}

/* ------------------------------------------------------------------------ */
/* Cycles. */

/* a -> b -> a: the seal fails, names the cycle and changes nothing. */
static void test_cycle_two(void)
{
    tf_sched s;
    graph g;
    uint32_t a, b, cyc[8];
    size_t ncyc = 999;
    if (!graph_init(&g, 2))
        return;
    if (!graph_edge(&g, 0, 1) || !graph_edge(&g, 1, 0) || !graph_finish(&g) ||
        !CHECK_RC(tf_sched_init(&s), TF_OK)) {
        graph_free(&g);
        return;
    }
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, b, a), TF_OK);
    CHECK_SCHED(&s);
    for (int pass = 0; pass < 2; pass++) { /* a failed seal can be redone */
        memset(cyc, 0xee, sizeof cyc);
        ncyc = 999;
        CHECK_RC(tf_sched_seal(&s, cyc, 8, &ncyc), TF_ECYCLE);
        if (CHECK_EQ_U(ncyc, 2))
            check_cycle(&g, a, cyc, ncyc);
        CHECK_EQ_U(cyc[2], 0xeeeeeeeeu);
        CHECK_STATE(&s, a, TF_ST_HELD);
        CHECK_STATE(&s, b, TF_ST_HELD);
        size_t nact;
        tf_sched_actions(&s, &nact);
        CHECK_EQ_U(nact, 0);
        CHECK_SCHED(&s);
    }
    tf_sched_drop_held(&s);
    CHECK_SCHED(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));

    /* Still usable: a random DAG runs to the end. */
    graph g2;
    tf_rng r = tf_rng_seeded(60);
    uint32_t base, w;
    if (graph_random(&g2, &r, 100, 3, -1, 1)) {
        if (load_graph(&s, &g2, true, &base) && seal_ok(&s) &&
            CHECK_RC(tf_sched_add_worker(&s, 1, 2, &w), TF_OK)) {
            const wspec ws = {1, 2};
            sim_cfg cfg = {&ws, &w, 1, 61, true, 1, NULL};
            sim m;
            if (sim_init(&m, &s, &g2, base, &cfg)) {
                CHECK_TRUE(sim_run(&m));
                sim_free(&m);
            }
            CHECK_EQ_U(s.count[TF_ST_DONE], 100);
        }
        graph_free(&g2);
    }
    tf_sched_free(&s);
    graph_free(&g);
}

/*
 * A 3-cycle 10 -> 25 -> 40 -> 10 inside 60 tasks with random forward edges.
 * Cycle members have out-edges only to tasks above 40, which cannot reach
 * back, so the 3-cycle is the only one.
 */
static void test_cycle_three(void)
{
    enum { N = 60 };
    tf_rng r = tf_rng_seeded(70);
    graph g;
    tf_sched s;
    uint32_t base, cyc[8], buf[4];
    size_t ncyc = 0;
    if (!graph_init(&g, N))
        return;
    bool ok = graph_edge(&g, 10, 25) && graph_edge(&g, 25, 40) &&
              graph_edge(&g, 40, 10);
    for (uint32_t to = 1; to < N && ok; to++)
        for (uint32_t k = tf_rng_below(&r, 4); k > 0 && ok; k--) {
            uint32_t from = tf_rng_below(&r, to);
            bool member = from == 10 || from == 25 || from == 40;
            if ((member && to <= 40) || (from == 10 && to == 25) ||
                (from == 25 && to == 40) || graph_has_edge_slow(&g, from, to))
                continue;
            ok = graph_edge(&g, from, to);
        }
    if (!ok || !graph_finish(&g) || !CHECK_RC(tf_sched_init(&s), TF_OK)) {
        graph_free(&g);
        return;
    }
    if (!load_graph(&s, &g, true, &base))
        goto out_with_sched;
    CHECK_RC(tf_sched_seal(&s, cyc, 8, &ncyc), TF_ECYCLE);
    if (CHECK_EQ_U(ncyc, 3) && check_cycle(&g, base, cyc, ncyc)) {
        /* Too small a buffer: the full length still comes back. */
        memset(buf, 0xee, sizeof buf);
        size_t n2 = 0;
        CHECK_RC(tf_sched_seal(&s, buf, 2, &n2), TF_ECYCLE);
        CHECK_EQ_U(n2, 3);
        CHECK_TRUE(graph_has_edge(&g, buf[0] - base, buf[1] - base));
        CHECK_EQ_U(buf[2], 0xeeeeeeeeu);
    }
    CHECK_EQ_U(s.count[TF_ST_HELD], N);
    CHECK_SCHED(&s);
    tf_sched_drop_held(&s);
    CHECK_SCHED(&s);
    CHECK_EQ_U(s.count[TF_ST_HELD], 0);

    /* Without the back edge the same graph runs. */
    graph g2;
    if (graph_init(&g2, N)) {
        bool ok2 = true;
        for (uint32_t e = 0; e < g.m && ok2; e++)
            if (!(g.efrom[e] == 40 && g.eto[e] == 10))
                ok2 = graph_edge(&g2, g.efrom[e], g.eto[e]);
        memcpy(g2.prio, g.prio, N * sizeof *g2.prio);
        uint32_t w;
        if (ok2 && graph_finish(&g2) && load_graph(&s, &g2, true, &base) &&
            seal_ok(&s) && CHECK_RC(tf_sched_add_worker(&s, 2, 3, &w), TF_OK)) {
            const wspec ws = {2, 3};
            sim_cfg cfg = {&ws, &w, 1, 71, true, 1, NULL};
            sim m;
            if (sim_init(&m, &s, &g2, base, &cfg)) {
                CHECK_TRUE(sim_run(&m));
                sim_free(&m);
            }
        }
        graph_free(&g2);
    }
out_with_sched:
    tf_sched_free(&s);
    graph_free(&g);
}

static void test_self_edge(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, w;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, a, a), TF_EINVAL);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, a, b + 1000), TF_EINVAL);
    CHECK_RC(tf_sched_add_dep(&s, b + 1000, a), TF_EINVAL);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    if (seal_ok(&s) && CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK)) {
        CHECK_STATE(&s, a, TF_ST_READY);
        CHECK_EQ_U(dispatch_one(&s, NULL), a);
        done_quiet(&s, a);
        CHECK_EQ_U(dispatch_one(&s, NULL), b);
        done_quiet(&s, b);
        CHECK_TRUE(tf_sched_is_finished(&s));
    }
    tf_sched_free(&s);
}

/*
 * A cycle in a second batch while the first is running: dropping the held
 * tasks must also drop their edges from sealed tasks, or the tasks that
 * come next (which may reuse the indexes) get released by stale edges.
 */
static void test_cycle_drop_mid_run(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t A, B, C, D, E, F, G, H, w, cyc[4];
    size_t ncyc = 0;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &A), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &B), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, A, B), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch_one(&s, NULL), A);

    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &C), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &D), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &E), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, A, C), TF_OK); /* A is DISPATCHED */
    CHECK_RC(tf_sched_add_dep(&s, C, D), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, D, C), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, B, E), TF_OK); /* B is PENDING */
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_seal(&s, cyc, 4, &ncyc), TF_ECYCLE);
    if (CHECK_EQ_U(ncyc, 2))
        CHECK_TRUE((cyc[0] == C && cyc[1] == D) ||
                   (cyc[0] == D && cyc[1] == C));
    CHECK_STATE(&s, A, TF_ST_DISPATCHED);
    CHECK_STATE(&s, B, TF_ST_PENDING);
    CHECK_STATE(&s, E, TF_ST_HELD);
    CHECK_SCHED(&s);
    tf_sched_drop_held(&s);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, A, TF_ST_DISPATCHED);
    CHECK_STATE(&s, B, TF_ST_PENDING);
    CHECK_EQ_U(s.count[TF_ST_HELD], 0);

    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &F), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &G), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &H), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, F, G), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, B, H), TF_OK);
    CHECK_SCHED(&s);
    if (!seal_ok(&s))
        goto out_with_sched;
    CHECK_SCHED(&s);
    CHECK_STATE(&s, F, TF_ST_READY);
    CHECK_STATE(&s, G, TF_ST_PENDING);
    CHECK_STATE(&s, H, TF_ST_PENDING);
    dispatch_none(&s); /* the worker holds A */
    done_quiet(&s, A);
    CHECK_STATE(&s, B, TF_ST_READY);
    CHECK_STATE(&s, F, TF_ST_READY);
    CHECK_STATE(&s, G, TF_ST_PENDING);
    CHECK_STATE(&s, H, TF_ST_PENDING);
    /* Ready: B (index 1) and F, then G once F is done, then H. */
    const uint32_t want[] = {B, F, G, H};
    for (size_t i = 0; i < 4; i++) {
        uint32_t t = dispatch_one(&s, NULL);
        if (!CHECK_EQ_U(t, want[i]) || !done_quiet(&s, t))
            break;
        if (i == 0) {
            CHECK_STATE(&s, H, TF_ST_READY);
            CHECK_STATE(&s, G, TF_ST_PENDING);
        }
    }
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 5);
out_with_sched:
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Failure, retry, dynamic tasks, lost workers, halt. */

/*
 * a fails for good. Its dependents b, d (direct), c, g, h (transitive; h by
 * two paths) are skipped once each with cause a; e and f still run, and f
 * finishing after its dependent g was skipped must leave g alone.
 */
static void test_fail_skip(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    enum { a, b, c, d, e, f, g, h, N };
    static const uint32_t deps[][2] = {{a, b}, {b, c}, {a, d}, {f, g},
                                       {c, g}, {b, h}, {d, h}};
    tf_action act[32];
    uint32_t t, w;
    for (uint32_t i = 0; i < N; i++) {
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
        CHECK_EQ_U(t, i);
    }
    for (size_t i = 0; i < sizeof deps / sizeof deps[0]; i++) {
        CHECK_RC(tf_sched_add_dep(&s, deps[i][0], deps[i][1]), TF_OK);
        CHECK_SCHED(&s);
    }
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w), TF_OK))
        goto out_with_sched;
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 32);
    CHECK_SCHED(&s);
    if (!CHECK_EQ_U(n, 3) ||
        !CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, a), 1) ||
        !CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, e), 1) ||
        !CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, f), 1))
        goto out_with_sched;

    CHECK_RC(tf_sched_task_failed(&s, a, TF_EIO), TF_OK);
    n = take_actions(&s, act, 32);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, 6);
    const tf_action *fa = find_act(act, n, TF_ACT_FAIL, a);
    if (CHECK_TRUE(fa))
        CHECK_RC(fa->cause, TF_EIO);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_FAIL, TF_NONE), 1);
    const uint32_t skipped[] = {b, c, d, g, h};
    for (size_t i = 0; i < 5; i++) {
        const tf_action *sa = find_act(act, n, TF_ACT_SKIP, skipped[i]);
        if (CHECK_MSG(sa != NULL, "no SKIP for task %u", skipped[i])) {
            CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, skipped[i]), 1);
            CHECK_EQ_I(sa->cause, a);
        }
        CHECK_STATE(&s, skipped[i], TF_ST_SKIPPED);
    }
    CHECK_STATE(&s, a, TF_ST_FAILED);
    CHECK_STATE(&s, e, TF_ST_DISPATCHED);
    CHECK_FALSE(tf_sched_is_finished(&s));
    dispatch_none(&s);
    done_quiet(&s, e);
    done_quiet(&s, f);
    CHECK_STATE(&s, g, TF_ST_SKIPPED);
    dispatch_none(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 2);
    CHECK_EQ_U(s.count[TF_ST_FAILED], 1);
    CHECK_EQ_U(s.count[TF_ST_SKIPPED], 5);
out_with_sched:
    tf_sched_free(&s);
}

/* Fail, retry and expect exactly one RETRY action, the task READY again. */
static bool fail_expect_retry(tf_sched *s, uint32_t t)
{
    tf_action act[8];
    if (!CHECK_RC(tf_sched_task_failed(s, t, TF_EIO), TF_OK))
        return false;
    size_t n = take_actions(s, act, 8);
    return CHECK_SCHED(s) && CHECK_EQ_U(n, 1) &&
           CHECK_EQ_U(act[0].kind, TF_ACT_RETRY) &&
           CHECK_EQ_U(act[0].task, t) && CHECK_STATE(s, t, TF_ST_READY);
}

/* retries=2: two failures then success; and three failures then FAIL. */
static void test_retry(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t t, u, v, x, w;
    tf_action act[8];
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 2, &t), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &u), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, -1, 1, 2, &v), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, -1, 1, 0, &x), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, t, u), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, v, x), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK))
        goto out_with_sched;

    for (int i = 0; i < 2; i++) {
        if (!CHECK_EQ_U(dispatch_one(&s, NULL), t) ||
            !CHECK_EQ_U(s.dag.attempts[t], i + 1) || !fail_expect_retry(&s, t))
            goto out_with_sched;
        CHECK_STATE(&s, u, TF_ST_PENDING);
    }
    CHECK_EQ_U(dispatch_one(&s, NULL), t);
    CHECK_EQ_U(s.dag.attempts[t], 3);
    done_quiet(&s, t);
    CHECK_STATE(&s, t, TF_ST_DONE);
    CHECK_STATE(&s, u, TF_ST_READY);
    CHECK_EQ_U(dispatch_one(&s, NULL), u);
    done_quiet(&s, u);

    for (int i = 0; i < 2; i++)
        if (!CHECK_EQ_U(dispatch_one(&s, NULL), v) || !fail_expect_retry(&s, v))
            goto out_with_sched;
    CHECK_EQ_U(dispatch_one(&s, NULL), v);
    CHECK_EQ_U(s.dag.attempts[v], 3);
    CHECK_RC(tf_sched_task_failed(&s, v, TF_EIO), TF_OK);
    size_t n = take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, 2);
    const tf_action *fa = find_act(act, n, TF_ACT_FAIL, v);
    const tf_action *sa = find_act(act, n, TF_ACT_SKIP, x);
    if (CHECK_TRUE(fa))
        CHECK_RC(fa->cause, TF_EIO);
    if (CHECK_TRUE(sa))
        CHECK_EQ_I(sa->cause, v);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_RETRY, TF_NONE), 0);
    CHECK_STATE(&s, v, TF_ST_FAILED);
    CHECK_STATE(&s, x, TF_ST_SKIPPED);
    dispatch_none(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * Tasks added after a seal and some dispatching, depending on a DONE task
 * (ready at once), a DISPATCHED one (waits), a FAILED one (skipped at seal,
 * with whatever depends on it among the new tasks).
 */
static void test_dynamic(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t A, B, C, X, Y, Z, W, w;
    tf_action act[16];
    CHECK_RC(tf_sched_add_worker(&s, 4, 8, &w), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &A), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &B), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &C), TF_OK);
    if (!seal_ok(&s))
        goto out_with_sched;
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, TF_NONE), 3);
    done_quiet(&s, A);
    CHECK_RC(tf_sched_task_failed(&s, C, TF_EIO), TF_OK);
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, 1);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_FAIL, C), 1);

    /* A dependency edge into a sealed task is refused. */
    int rc = tf_sched_add_dep(&s, A, B);
    CHECK_MSG(rc < 0, "add_dep into sealed task: %s, expected an error",
              tf_err_name(rc));
    CHECK_SCHED(&s);

    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &X), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &Y), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &Z), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &W), TF_OK);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, A, X), TF_OK); /* A DONE */
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, B, Y), TF_OK); /* B DISPATCHED */
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, C, Z), TF_OK); /* C FAILED */
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_dep(&s, Z, W), TF_OK); /* on a doomed task */
    CHECK_SCHED(&s);
    CHECK_STATE(&s, X, TF_ST_HELD);
    CHECK_STATE(&s, Z, TF_ST_HELD);
    dispatch_none(&s); /* held tasks are not dispatched */

    if (!seal_ok(&s))
        goto out_with_sched;
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, 2);
    /* Their causes are checked in test_skip_cause_at_seal. */
    CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, Z), 1);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, W), 1);
    CHECK_STATE(&s, X, TF_ST_READY);
    CHECK_STATE(&s, Y, TF_ST_PENDING);
    CHECK_STATE(&s, Z, TF_ST_SKIPPED);
    CHECK_STATE(&s, W, TF_ST_SKIPPED);

    CHECK_EQ_U(dispatch_one(&s, NULL), X);
    done_quiet(&s, X);
    dispatch_none(&s);
    CHECK_STATE(&s, Y, TF_ST_PENDING);
    done_quiet(&s, B);
    CHECK_STATE(&s, Y, TF_ST_READY);
    CHECK_EQ_U(dispatch_one(&s, NULL), Y);
    CHECK_FALSE(tf_sched_is_finished(&s));
    done_quiet(&s, Y);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 4);
    CHECK_EQ_U(s.count[TF_ST_FAILED], 1);
    CHECK_EQ_U(s.count[TF_ST_SKIPPED], 2);

    /* Held tasks are not sealed: they do not keep the scheduler busy. */
    uint32_t late;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &late), TF_OK);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_SCHED(&s);
    if (seal_ok(&s)) {
        CHECK_FALSE(tf_sched_is_finished(&s));
        CHECK_EQ_U(dispatch_one(&s, NULL), late);
        done_quiet(&s, late);
        CHECK_TRUE(tf_sched_is_finished(&s));
    }
out_with_sched:
    tf_sched_free(&s);
}

/*
 * sched.h: a SKIP's cause names the failed task only when the scheduler saw
 * the failure cause the skip. Tasks skipped at seal because a dependency had
 * already failed (Z on failed C), or had already been skipped (V on skipped
 * D), or transitively among the new tasks (W on Z) carry TF_NONE.
 */
static void test_skip_cause_at_seal(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t C, D, Z, W, V, w;
    tf_action act[16];
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &C), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &D), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, C, D), TF_OK);
    if (!seal_ok(&s) || !CHECK_EQ_U(dispatch_one(&s, NULL), C))
        goto out_with_sched;
    CHECK_RC(tf_sched_task_failed(&s, C, TF_EIO), TF_OK);
    size_t n = take_actions(&s, act, 16);
    const tf_action *sd = find_act(act, n, TF_ACT_SKIP, D);
    if (CHECK_TRUE(sd))
        CHECK_EQ_I(sd->cause, C);

    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &Z), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &W), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &V), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, C, Z), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, Z, W), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, D, V), TF_OK);
    if (!seal_ok(&s))
        goto out_with_sched;
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, 3);
    const uint32_t skipped[] = {Z, W, V};
    for (size_t i = 0; i < 3; i++) {
        const tf_action *sa = find_act(act, n, TF_ACT_SKIP, skipped[i]);
        if (CHECK_MSG(sa != NULL, "no SKIP for task %u", skipped[i]))
            CHECK_MSG(sa->cause == (int32_t)TF_NONE,
                      "SKIP of task %u at seal: cause %d, expected TF_NONE",
                      skipped[i], sa->cause);
        CHECK_STATE(&s, skipped[i], TF_ST_SKIPPED);
    }
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* tf_sched_doom: a doomed held task and its dependents are skipped at seal. */
static void test_doom(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, c, w;
    tf_action act[8];
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &c), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    CHECK_RC(tf_sched_doom(&s, a), TF_OK);
    CHECK_SCHED(&s);
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, a), 1);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, b), 1);
    CHECK_STATE(&s, a, TF_ST_SKIPPED);
    CHECK_STATE(&s, b, TF_ST_SKIPPED);
    CHECK_STATE(&s, c, TF_ST_READY);
    int rc = tf_sched_doom(&s, c); /* sealed */
    CHECK_MSG(rc < 0, "doom of a sealed task gave %s", tf_err_name(rc));
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK);
    CHECK_EQ_U(dispatch_one(&s, NULL), c);
    done_quiet(&s, c);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * NOOP tasks (barriers, tasks a resumed run already finished) complete
 * without a RUN once ready, release their dependents, and a long run of
 * them is released iteratively: a -> n1 -> ... -> n5000 -> b, plus a noop
 * with no dependency, done at seal.
 */
static void test_noop(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, first = TF_NONE, prev, w, lone;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    prev = a;
    for (int i = 0; i < 5000; i++) {
        uint32_t n;
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &n), TF_OK);
        CHECK_RC(tf_sched_set_noop(&s, n), TF_OK);
        CHECK_RC(tf_sched_add_dep(&s, prev, n), TF_OK);
        if (first == TF_NONE)
            first = n;
        prev = n;
    }
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, prev, b), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &lone), TF_OK);
    CHECK_RC(tf_sched_set_noop(&s, lone), TF_OK);
    if (!seal_ok(&s))
        goto out_with_sched;
    CHECK_SCHED(&s);
    CHECK_STATE(&s, lone, TF_ST_DONE);
    CHECK_STATE(&s, first, TF_ST_PENDING);
    int rc = tf_sched_set_noop(&s, b); /* sealed */
    CHECK_MSG(rc < 0, "noop of a sealed task gave %s", tf_err_name(rc));
    CHECK_RC(tf_sched_add_worker(&s, 1, 4, &w), TF_OK);
    CHECK_EQ_U(dispatch_one(&s, NULL), a);
    CHECK_RC(tf_sched_task_done(&s, a), TF_OK);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, prev, TF_ST_DONE);
    CHECK_EQ_U(dispatch_one(&s, NULL), b);
    CHECK_RC(tf_sched_task_done(&s, b), TF_OK);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 5003);
    CHECK_SCHED(&s);
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A dispatched task handed back unrun is READY again without using up an
 * attempt; after a halt it is SKIPPED with its dependents.
 */
static void test_unrun(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, c, w;
    tf_action act[8];
    CHECK_RC(tf_sched_add_task(&s, 1, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &c), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, b, c), TF_OK);
    if (!seal_ok(&s))
        goto out_with_sched;
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK);
    CHECK_EQ_U(dispatch_one(&s, NULL), a);
    CHECK_RC(tf_sched_task_unrun(&s, a), TF_OK);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, a, TF_ST_READY);
    CHECK_EQ_U(s.dag.attempts[a], 0);
    CHECK_EQ_U(dispatch_one(&s, NULL), a);
    CHECK_EQ_U(s.dag.attempts[a], 1);
    CHECK_RC(tf_sched_task_done(&s, a), TF_OK);
    CHECK_EQ_U(dispatch_one(&s, NULL), b);
    CHECK_RC(tf_sched_halt(&s), TF_OK);
    take_actions(&s, act, 8);
    CHECK_RC(tf_sched_task_unrun(&s, b), TF_OK);
    size_t n = take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, b, TF_ST_SKIPPED);
    CHECK_STATE(&s, c, TF_ST_SKIPPED);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, b), 1);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_MSG(tf_sched_task_unrun(&s, b) < 0, "unrun of a skipped task");
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A held task's dependency is DISPATCHED when the edge is added and then
 * finishes before the seal: done, the task is READY at seal; failed, the
 * task is skipped (at once or at the seal) once, with the failed task as
 * cause.
 */
static void test_dynamic_before_seal(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t A, B, P, Q, R, w;
    tf_action act[16];
    size_t n, nskip = 0;
    int32_t qcause = 0;
    CHECK_RC(tf_sched_add_worker(&s, 2, 2, &w), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &A), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &B), TF_OK);
    if (!seal_ok(&s))
        goto out_with_sched;
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    n = take_actions(&s, act, 16);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, TF_NONE), 2);

    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &P), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &Q), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &R), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, A, P), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, B, Q), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, Q, R), TF_OK);
    CHECK_SCHED(&s);
    done_quiet(&s, A);
    CHECK_RC(tf_sched_task_failed(&s, B, TF_EIO), TF_OK);
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_FAIL, B), 1);
    nskip += count_acts(act, n, TF_ACT_SKIP, Q);
    if (find_act(act, n, TF_ACT_SKIP, Q))
        qcause = find_act(act, n, TF_ACT_SKIP, Q)->cause;
    CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, TF_NONE), 0);

    if (!seal_ok(&s))
        goto out_with_sched;
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    nskip += count_acts(act, n, TF_ACT_SKIP, Q);
    if (find_act(act, n, TF_ACT_SKIP, Q))
        qcause = find_act(act, n, TF_ACT_SKIP, Q)->cause;
    CHECK_EQ_U(nskip, 1);
    CHECK_EQ_I(qcause, B);
    CHECK_STATE(&s, P, TF_ST_READY);
    CHECK_STATE(&s, Q, TF_ST_SKIPPED);
    CHECK_STATE(&s, R, TF_ST_SKIPPED);
    CHECK_EQ_U(dispatch_one(&s, NULL), P);
    done_quiet(&s, P);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* Dispatch before any worker exists does nothing, and fails no task. */
static void test_no_workers_yet(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, w;
    CHECK_RC(tf_sched_add_task(&s, 0, 4, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    if (seal_ok(&s)) {
        dispatch_none(&s);
        CHECK_STATE(&s, a, TF_ST_READY);
        CHECK_STATE(&s, b, TF_ST_READY);
        CHECK_RC(tf_sched_add_worker(&s, 4, 1, &w), TF_OK);
        CHECK_EQ_U(dispatch_one(&s, NULL), a);
        done_quiet(&s, a);
        CHECK_EQ_U(dispatch_one(&s, NULL), b);
        done_quiet(&s, b);
        CHECK_TRUE(tf_sched_is_finished(&s));
    }
    tf_sched_free(&s);
}

/* Losing the only worker big enough: its 2-core task then fails with ECORES. */
static void test_lost_largest_worker(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t big, dep, small, w1, w2, got_w = TF_NONE;
    tf_action act[8];
    CHECK_RC(tf_sched_add_task(&s, 1, 2, 0, &big), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &dep), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &small), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, big, dep), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 2, 1, &w2), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch_one(&s, &got_w), big);
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w1), TF_OK);
    CHECK_RC(tf_sched_worker_lost(&s, w2), TF_OK);
    take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, big, TF_ST_READY);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    const tf_action *fa = find_act(act, n, TF_ACT_FAIL, big);
    if (CHECK_TRUE(fa))
        CHECK_RC(fa->cause, TF_ECORES);
    const tf_action *sa = find_act(act, n, TF_ACT_SKIP, dep);
    if (CHECK_TRUE(sa))
        CHECK_EQ_I(sa->cause, big);
    const tf_action *ra = find_act(act, n, TF_ACT_RUN, small);
    if (CHECK_TRUE(ra))
        CHECK_EQ_U(ra->worker, w1);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, big), 0);
    done_quiet(&s, small);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* A lost worker's tasks go back to READY and finish on the other worker. */
static void test_worker_lost(void)
{
    enum { N = 8 };
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t w0, w1, t, where[N], held[N], nheld = 0, ndone = 0;
    tf_action act[16];
    for (uint32_t i = 0; i < N; i++)
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 4, &w0), TF_OK) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 4, &w1), TF_OK))
        goto out_with_sched;
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    if (!CHECK_EQ_U(n, N))
        goto out_with_sched;
    uint32_t on0 = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_U(act[i].kind, TF_ACT_RUN);
        where[act[i].task] = act[i].worker;
        if (act[i].worker == w0)
            on0++;
        else if (CHECK_EQ_U(act[i].worker, w1))
            held[nheld++] = act[i].task;
    }
    CHECK_EQ_U(on0, 4);

    CHECK_RC(tf_sched_worker_lost(&s, w0), TF_OK);
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, TF_NONE), 0);
    for (uint32_t i = 0; i < N; i++)
        CHECK_STATE(&s, i, where[i] == w0 ? TF_ST_READY : TF_ST_DISPATCHED);
    CHECK_EQ_U(s.count[TF_ST_READY], 4);
    dispatch_none(&s); /* w1 is full, w0 is gone */

    /* Finish w1's tasks one at a time; each frees room for one more. */
    while (nheld && ndone < 2 * N) {
        uint32_t done = held[0];
        memmove(held, held + 1, --nheld * sizeof *held);
        if (!done_quiet(&s, done))
            break;
        ndone++;
        CHECK_RC(tf_sched_dispatch(&s), TF_OK);
        n = take_actions(&s, act, 16);
        CHECK_SCHED(&s);
        for (size_t i = 0; i < n; i++) {
            if (!CHECK_EQ_U(act[i].kind, TF_ACT_RUN) ||
                !CHECK_EQ_U(act[i].worker, w1) ||
                !CHECK_EQ_U(where[act[i].task], w0))
                goto out_with_sched;
            where[act[i].task] = w1;
            held[nheld++] = act[i].task;
        }
    }
    CHECK_EQ_U(ndone, N);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], N);
out_with_sched:
    tf_sched_free(&s);
}

/* Losing a worker does not use up one of the task's attempts. */
static void test_worker_lost_not_attempt(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t t, w0, w1, got_w = TF_NONE;
    tf_action act[8];
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 1, &t), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w0), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch_one(&s, &got_w), t);
    CHECK_EQ_U(got_w, w0);
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w1), TF_OK);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_worker_lost(&s, w0), TF_OK);
    take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, t, TF_ST_READY);
    CHECK_EQ_U(dispatch_one(&s, &got_w), t);
    CHECK_EQ_U(got_w, w1);
    /* First real attempt fails: one retry is left. */
    if (!fail_expect_retry(&s, t))
        goto out_with_sched;
    CHECK_EQ_U(dispatch_one(&s, &got_w), t);
    CHECK_EQ_U(got_w, w1);
    CHECK_RC(tf_sched_task_failed(&s, t, TF_EIO), TF_OK);
    size_t n = take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    if (CHECK_EQ_U(n, 1) && CHECK_EQ_U(act[0].kind, TF_ACT_FAIL))
        CHECK_RC(act[0].cause, TF_EIO);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* Halt: all not dispatched is skipped; done when the dispatched ones end. */
static void test_halt(void)
{
    enum { N = 10 };
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t t, w;
    tf_action act[32];
    for (uint32_t i = 0; i < N; i++)
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, 0, 6), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, 6, 7), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, 1, 8), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 2, &w), TF_OK))
        goto out_with_sched;
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 32);
    CHECK_SCHED(&s);
    if (!CHECK_EQ_U(n, 2) ||
        !CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, 0), 1) ||
        !CHECK_EQ_U(count_acts(act, n, TF_ACT_RUN, 1), 1))
        goto out_with_sched;

    CHECK_RC(tf_sched_halt(&s), TF_OK);
    n = take_actions(&s, act, 32);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, N - 2);
    for (uint32_t i = 2; i < N; i++) {
        const tf_action *sa = find_act(act, n, TF_ACT_SKIP, i);
        if (CHECK_MSG(sa != NULL, "no SKIP for task %u after halt", i)) {
            CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, i), 1);
            CHECK_EQ_U((uint32_t)sa->cause, TF_NONE);
        }
        CHECK_STATE(&s, i, TF_ST_SKIPPED);
    }
    CHECK_STATE(&s, 0, TF_ST_DISPATCHED);
    CHECK_STATE(&s, 1, TF_ST_DISPATCHED);
    CHECK_FALSE(tf_sched_is_finished(&s));
    dispatch_none(&s);
    done_quiet(&s, 0);
    CHECK_STATE(&s, 6, TF_ST_SKIPPED);
    dispatch_none(&s);
    CHECK_FALSE(tf_sched_is_finished(&s));
    done_quiet(&s, 1);
    dispatch_none(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 2);
    CHECK_EQ_U(s.count[TF_ST_SKIPPED], N - 2);
out_with_sched:
    tf_sched_free(&s);
}

/*
 * After a halt nothing new may start, so the run must still end: a failed
 * task with retries left fails for good, a lost worker's tasks do not go
 * back to a queue nobody serves, and tasks sealed later are skipped.
 */
static void test_halt_then_events(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t t, w0, w1, late;
    uint32_t where[4];
    tf_action act[16];
    for (int i = 0; i < 4; i++)
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 3, &t), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 2, &w0), TF_OK) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 2, &w1), TF_OK))
        goto out_with_sched;
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 16);
    if (!CHECK_EQ_U(n, 4))
        goto out_with_sched;
    for (size_t i = 0; i < n; i++)
        where[act[i].task] = act[i].worker;
    CHECK_RC(tf_sched_halt(&s), TF_OK);
    n = take_actions(&s, act, 16);
    CHECK_EQ_U(n, 0);
    CHECK_SCHED(&s);

    /* Task 0 fails with retries left: no RETRY after a halt. */
    CHECK_RC(tf_sched_task_failed(&s, 0, TF_EIO), TF_OK);
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_RETRY, TF_NONE), 0);
    CHECK_EQ_U(count_acts(act, n, TF_ACT_FAIL, 0), 1);
    CHECK_STATE(&s, 0, TF_ST_FAILED);

    /* Tasks sealed after the halt never start. */
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &late), TF_OK);
    if (seal_ok(&s)) {
        n = take_actions(&s, act, 16);
        CHECK_SCHED(&s);
        CHECK_EQ_U(count_acts(act, n, TF_ACT_SKIP, late), 1);
        CHECK_STATE(&s, late, TF_ST_SKIPPED);
    }

    /* The worker holding task 1 is lost; its tasks must not wait forever. */
    uint32_t lost = where[1];
    CHECK_RC(tf_sched_worker_lost(&s, lost), TF_OK);
    n = take_actions(&s, act, 16);
    CHECK_SCHED(&s);
    dispatch_none(&s);
    for (uint32_t i = 1; i < 4; i++) {
        if (where[i] == lost)
            CHECK_MSG(tf_state_is_terminal(tf_sched_state(&s, i)),
                      "after halt, task %u of lost worker %u is %s: it "
                      "can never run, so the run never ends",
                      i, lost, tf_state_name(tf_sched_state(&s, i)));
        else if (CHECK_STATE(&s, i, TF_ST_DISPATCHED))
            done_quiet(&s, i);
    }
    dispatch_none(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * Reports that do not fit the task's state (a duplicate "done", a report for
 * a task never dispatched, an unknown worker) are refused with an error and
 * change nothing; refused calls leave their out-parameters alone.
 */
static void test_bad_events(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, w, w2 = 0xabcdu;
    int rc;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    rc = tf_sched_task_done(&s, a); /* HELD */
    CHECK_MSG(rc < 0, "task_done on a HELD task gave %s", tf_err_name(rc));
    CHECK_SCHED(&s);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK))
        goto out_with_sched;
    rc = tf_sched_task_done(&s, a); /* READY */
    CHECK_MSG(rc < 0, "task_done on a READY task gave %s", tf_err_name(rc));
    rc = tf_sched_task_failed(&s, b, TF_EIO); /* PENDING */
    CHECK_MSG(rc < 0, "task_failed on a PENDING task gave %s", tf_err_name(rc));
    rc = tf_sched_task_done(&s, 1000); /* no such task */
    CHECK_MSG(rc < 0, "task_done on task 1000 of 2 gave %s", tf_err_name(rc));
    rc = tf_sched_worker_lost(&s, w + 100);
    CHECK_MSG(rc < 0, "worker_lost on an unknown worker gave %s",
              tf_err_name(rc));
    rc = tf_sched_set_depth(&s, w + 100, 4);
    CHECK_MSG(rc < 0, "set_depth on an unknown worker gave %s",
              tf_err_name(rc));
    rc = tf_sched_add_worker(&s, 0, 1, &w2);
    if (rc)
        CHECK_EQ_U(w2, 0xabcdu);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, a, TF_ST_READY);
    CHECK_STATE(&s, b, TF_ST_PENDING);
    CHECK_EQ_U(s.dag.attempts[a], 0);

    CHECK_EQ_U(dispatch_one(&s, NULL), a);
    done_quiet(&s, a);
    rc = tf_sched_task_done(&s, a); /* a duplicate report */
    CHECK_MSG(rc < 0, "second task_done gave %s", tf_err_name(rc));
    rc = tf_sched_task_failed(&s, a, TF_EIO);
    CHECK_MSG(rc < 0, "task_failed after done gave %s", tf_err_name(rc));
    CHECK_SCHED(&s);
    CHECK_STATE(&s, a, TF_ST_DONE);
    CHECK_STATE(&s, b, TF_ST_READY);
    CHECK_EQ_U(dispatch_one(&s, NULL), b);
    done_quiet(&s, b);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 2);
out_with_sched:
    tf_sched_free(&s);
}

/* Raising a worker's depth lets it take more tasks at the next dispatch. */
static void test_set_depth(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t t, w;
    tf_action act[8];
    for (int i = 0; i < 5; i++)
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch_one(&s, NULL), 0);
    dispatch_none(&s);
    CHECK_RC(tf_sched_set_depth(&s, w, 3), TF_OK);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take_actions(&s, act, 8);
    CHECK_SCHED(&s);
    if (CHECK_EQ_U(n, 2)) {
        CHECK_EQ_U(act[0].task, 1);
        CHECK_EQ_U(act[1].task, 2);
    }
    for (uint32_t i = 0; i < 3; i++)
        done_quiet(&s, i);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    n = take_actions(&s, act, 8);
    CHECK_EQ_U(n, 2);
    done_quiet(&s, 3);
    done_quiet(&s, 4);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Status codes. */

static void test_status_strings(void)
{
    static const struct {
        int code;
        const char *name;
    } all[] = {
#define TF_ERR_ROW_(name, val, msg) {TF_##name, "TF_" #name},
        TF_ERRNO_MAP(TF_ERR_ROW_)
#undef TF_ERR_ROW_
    };
    enum { N = sizeof all / sizeof all[0] };
    const char *unknown_msg = tf_strerror(12345);
    CHECK_TRUE(unknown_msg && *unknown_msg);
    CHECK_TRUE(strcmp(tf_err_name(12345), "TF_UNKNOWN") == 0);
    CHECK_TRUE(strcmp(tf_err_name(TF_OK), "TF_OK") == 0);
    CHECK_TRUE(tf_strerror(TF_OK) && *tf_strerror(TF_OK));
    for (size_t i = 0; i < N; i++) {
        const char *msg = tf_strerror(all[i].code);
        const char *name = tf_err_name(all[i].code);
        CHECK_MSG(all[i].code < 0, "%s is %d, not negative", all[i].name,
                  all[i].code);
        if (!CHECK_MSG(msg && *msg, "tf_strerror(%s) empty", all[i].name) ||
            !CHECK_MSG(name && *name, "tf_err_name(%s) empty", all[i].name))
            continue;
        CHECK_MSG(strcmp(name, all[i].name) == 0, "tf_err_name(%d) is %s",
                  all[i].code, name);
        CHECK_MSG(strcmp(msg, unknown_msg) != 0,
                  "tf_strerror(%s) is the unknown-code text", all[i].name);
        CHECK_MSG(strcmp(msg, tf_strerror(TF_OK)) != 0,
                  "tf_strerror(%s) is the success text", all[i].name);
        for (size_t j = 0; j < i; j++) {
            CHECK_MSG(all[i].code != all[j].code, "%s and %s share code %d",
                      all[i].name, all[j].name, all[i].code);
            CHECK_MSG(strcmp(msg, tf_strerror(all[j].code)) != 0,
                      "%s and %s share the message \"%s\"", all[i].name,
                      all[j].name, msg);
            CHECK_MSG(strcmp(name, tf_err_name(all[j].code)) != 0,
                      "%s and %s share the name", all[i].name, all[j].name);
        }
    }
    for (int st = 0; st < TF_ST_COUNT_; st++) {
        const char *name = tf_state_name((tf_state)st);
        if (!CHECK_TRUE(name && *name))
            continue;
        for (int j = 0; j < st; j++)
            CHECK_MSG(strcmp(name, tf_state_name((tf_state)j)) != 0,
                      "states %d and %d share the name %s", st, j, name);
    }
}

/* ------------------------------------------------------------------------ */

typedef struct test_def {
    const char *name;
    CU_TestFunc fn;
} test_def;

static bool add_suite(const char *name, const test_def *tests, size_t n)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);
    if (!suite)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            return false;
    return true;
}

#define TEST(fn)                                                               \
    {                                                                          \
#fn, fn                                                                \
    }
#define ADD_SUITE(name, arr) add_suite(name, arr, sizeof arr / sizeof arr[0])

int main(void)
{
    static const test_def rq_tests[] = {
        TEST(test_rq_order),
        TEST(test_rq_fifo_equal),
        TEST(test_rq_interleaved),
    };
    static const test_def step_tests[] = {
        TEST(test_empty),
        TEST(test_priority_order),
        TEST(test_diamond),
        TEST(test_duplicate_dep),
        TEST(test_fail_skip),
        TEST(test_retry),
        TEST(test_dynamic),
        TEST(test_skip_cause_at_seal),
        TEST(test_doom),
        TEST(test_noop),
        TEST(test_unrun),
        TEST(test_dynamic_before_seal),
        TEST(test_no_workers_yet),
        TEST(test_worker_lost),
        TEST(test_worker_lost_not_attempt),
        TEST(test_lost_largest_worker),
        TEST(test_halt),
        TEST(test_halt_then_events),
        TEST(test_set_depth),
        TEST(test_bad_events),
    };
    static const test_def cycle_tests[] = {
        TEST(test_cycle_two),
        TEST(test_cycle_three),
        TEST(test_self_edge),
        TEST(test_cycle_drop_mid_run),
    };
    static const test_def graph_tests[] = {
        TEST(test_fan_in),          TEST(test_fan_out),
        TEST(test_random_dags),     TEST(test_random_dags_serial),
        TEST(test_random_failures), TEST(test_cores_fit),
        TEST(test_cores_too_many),
    };
    static const test_def big_tests[] = {
        TEST(test_chain_1m),
        TEST(test_wide_1m),
    };
    static const test_def status_tests[] = {
        TEST(test_status_strings),
    };

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (!ADD_SUITE("ready queue", rq_tests) ||
        !ADD_SUITE("scheduler steps", step_tests) ||
        !ADD_SUITE("cycles", cycle_tests) ||
        !ADD_SUITE("graphs", graph_tests) || !ADD_SUITE("big", big_tests) ||
        !ADD_SUITE("status", status_tests)) {
        fprintf(stderr, "test_core: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    return check_run();
}
