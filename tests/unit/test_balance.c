/* Unit tests of the scheduler's load balancing: parking (local release), task
 * moves, adaptive windows, steal order. */
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
#include "dag.h"
#include "rng.h"
#include "sched.h"
#include "steal.h"
#include "taskfarm_status.h"

/*
 * Two kinds of tests. Targeted ones build a small graph, dispatch, and
 * assert the exact actions and states. The randomized driver runs random
 * DAGs against a model of the workers (queues, parked sets, running tasks,
 * cores, and the reports on their way to rank 0) with the events in random
 * interleavings, runs tf_sched_check after every event, and at the end
 * compares what happened with what must have.
 */

/* The code simulated tasks fail with. */
#define SIM_FAIL_CODE TF_EIO
/* Most workers a randomized run has. */
#define MAXW 6u
/* Room for the actions of one targeted step. */
#define MAXACT 512u

static int32_t rng_range(tf_rng *r, int32_t lo, int32_t hi)
{
    return lo + (int32_t)tf_rng_below(r, (uint32_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------------ */
/* The test's own copy of a task graph, with attributes and a failure plan. */

typedef struct bgraph {
    uint32_t n, m, mcap;
    uint32_t *efrom, *eto;
    uint32_t *poff, *pred; /* predecessors of t: pred[poff[t]..poff[t+1]) */
    uint32_t *soff, *succ; /* successors, likewise */
    int32_t *prio;
    uint16_t *cores;
    uint8_t *retries;
    uint8_t *plan; /* failed attempts before the first success */
    uint8_t *noop;
} bgraph;

static void bg_free(bgraph *g)
{
    free(g->efrom);
    free(g->eto);
    free(g->poff);
    free(g->pred);
    free(g->soff);
    free(g->succ);
    free(g->prio);
    free(g->cores);
    free(g->retries);
    free(g->plan);
    free(g->noop);
    memset(g, 0, sizeof *g);
}

/* n tasks of priority 0, one core, no retries, no failures, no edges. */
static bool bg_init(bgraph *g, uint32_t n)
{
    memset(g, 0, sizeof *g);
    size_t k = n ? n : 1;
    g->n = n;
    g->prio = calloc(k, sizeof *g->prio);
    g->cores = malloc(k * sizeof *g->cores);
    g->retries = calloc(k, 1);
    g->plan = calloc(k, 1);
    g->noop = calloc(k, 1);
    if (!CHECK_TRUE(g->prio && g->cores && g->retries && g->plan && g->noop)) {
        bg_free(g);
        return false;
    }
    for (uint32_t i = 0; i < n; i++)
        g->cores[i] = 1;
    return true;
}

static bool bg_edge(bgraph *g, uint32_t from, uint32_t to)
{
    if (g->m == g->mcap) {
        uint32_t ncap = g->mcap ? 2 * g->mcap : 64;
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

/* Counting sort of the edges into one adjacency array keyed by key[]. */
static bool csr(uint32_t n, uint32_t m, const uint32_t *key,
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

static bool bg_finish(bgraph *g)
{
    return csr(g->n, g->m, g->eto, g->efrom, &g->poff, &g->pred) &&
           csr(g->n, g->m, g->efrom, g->eto, &g->soff, &g->succ);
}

/* The shapes the randomized tests draw from. */
typedef enum shape {
    SH_CHAIN,
    SH_STENCIL,   /* each task depends on its 3 neighbours of the step before */
    SH_TREE,      /* out-tree (fan-out) or in-tree (reduction) */
    SH_BUTTERFLY, /* FFT-like exchange between stages */
    SH_RANDOM,
    SH_COUNT
} shape;

static const char *const shape_names[SH_COUNT] = {"chain", "stencil", "tree",
                                                  "butterfly", "random"};

/*
 * A graph of the given shape with about `size` tasks, its edges going
 * forward in the shape's natural order. With `relabel` the tasks get
 * randomly permuted indexes, so that edges point both up and down in index
 * order (as forward references in a task file do) and tf_sched_worker_lost
 * meets a parked task before its anchor.
 */
static bool bg_shape(bgraph *g, tf_rng *r, shape sh, uint32_t size,
                     bool relabel)
{
    uint32_t n = size, width = 0, steps = 0, arity = 0, bits = 0;
    bool out_tree = false;
    switch (sh) {
    case SH_STENCIL:
        width = 2 + tf_rng_below(r, 6);
        steps = size / width < 2 ? 2 : size / width;
        n = width * steps;
        break;
    case SH_TREE:
        arity = 2 + tf_rng_below(r, 2);
        out_tree = tf_rng_below(r, 2);
        break;
    case SH_BUTTERFLY:
        bits = 1 + tf_rng_below(r, 3);
        width = 1u << bits;
        steps = size / width < 2 ? 2 : size / width;
        n = width * steps;
        break;
    default:
        break;
    }
    if (!bg_init(g, n))
        return false;
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!CHECK_TRUE(perm)) {
        bg_free(g);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = relabel ? tf_rng_below(r, i + 1) : i;
        perm[i] = perm[j];
        perm[j] = i;
    }
    bool ok = true;
    for (uint32_t i = 1; i < n && ok; i++) {
        switch (sh) {
        case SH_CHAIN:
            ok = bg_edge(g, perm[i - 1], perm[i]);
            break;
        case SH_STENCIL:
            if (i >= width) {
                uint32_t st = i / width, x = i % width;
                for (uint32_t y = x ? x - 1 : 0; y <= x + 1 && y < width && ok;
                     y++)
                    ok = bg_edge(g, perm[(st - 1) * width + y], perm[i]);
            }
            break;
        case SH_TREE: {
            uint32_t parent = (i - 1) / arity;
            /* An in-tree reduces: the parent waits for its children. */
            ok = out_tree ? bg_edge(g, perm[parent], perm[i])
                          : bg_edge(g, perm[n - 1 - i], perm[n - 1 - parent]);
            break;
        }
        case SH_BUTTERFLY:
            if (i >= width) {
                uint32_t st = i / width, x = i % width;
                uint32_t partner = x ^ (1u << ((st - 1) % bits));
                ok = bg_edge(g, perm[(st - 1) * width + x], perm[i]) &&
                     bg_edge(g, perm[(st - 1) * width + partner], perm[i]);
            }
            break;
        case SH_RANDOM: {
            uint32_t k = tf_rng_below(r, 4), picked[3], np = 0;
            for (uint32_t j = 0; j < k && ok; j++) {
                uint32_t from = tf_rng_below(r, i);
                bool dup = false;
                for (uint32_t q = 0; q < np; q++)
                    dup |= picked[q] == from;
                if (dup)
                    continue;
                picked[np++] = from;
                ok = bg_edge(g, perm[from], perm[i]);
            }
            break;
        }
        default:
            ok = false;
        }
    }
    free(perm);
    if (!ok || !bg_finish(g)) {
        bg_free(g);
        return false;
    }
    return true;
}

/* Kahn's algorithm; false if the graph has a cycle. */
static bool bg_topo(const bgraph *g, uint32_t *order)
{
    uint32_t *indeg = malloc((g->n ? g->n : 1) * sizeof *indeg);
    if (!CHECK_TRUE(indeg))
        return false;
    uint32_t head = 0, tail = 0;
    for (uint32_t t = 0; t < g->n; t++) {
        indeg[t] = g->poff[t + 1] - g->poff[t];
        if (!indeg[t])
            order[tail++] = t;
    }
    while (head < tail) {
        uint32_t t = order[head++];
        for (uint32_t k = g->soff[t]; k < g->soff[t + 1]; k++)
            if (!--indeg[g->succ[k]])
                order[tail++] = g->succ[k];
    }
    free(indeg);
    return tail == g->n;
}

/*
 * How a run without halts must end, whatever the interleaving, parking or
 * stealing: a task whose dependencies all succeed succeeds unless its plan
 * fails it more often than its retries allow; the rest are skipped. NOOP
 * tasks succeed when their dependencies do.
 */
static bool bg_expect(const bgraph *g, uint8_t *want)
{
    uint32_t *order = malloc((g->n ? g->n : 1) * sizeof *order);
    bool ok = CHECK_TRUE(order) && CHECK_TRUE(bg_topo(g, order));
    for (uint32_t x = 0; ok && x < g->n; x++) {
        uint32_t t = order[x];
        bool deps_done = true;
        for (uint32_t k = g->poff[t]; k < g->poff[t + 1]; k++)
            deps_done = deps_done && want[g->pred[k]] == TF_ST_DONE;
        if (!deps_done)
            want[t] = TF_ST_SKIPPED;
        else if (!g->noop[t] && g->plan[t] > g->retries[t])
            want[t] = TF_ST_FAILED;
        else
            want[t] = TF_ST_DONE;
    }
    free(order);
    return ok;
}

/* A scheduler holding g's tasks (index i of g is task i), sealed. */
static bool bg_load(tf_sched *s, const bgraph *g, bool park)
{
    if (!CHECK_RC(tf_sched_init(s), TF_OK))
        return false;
    s->park = park;
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t idx = TF_NONE;
        if (!CHECK_RC(tf_sched_add_task(s, g->prio[i], g->cores[i],
                                        g->retries[i], &idx),
                      TF_OK) ||
            !CHECK_EQ_U(idx, i))
            return false;
        if (g->noop[i] && !CHECK_RC(tf_sched_set_noop(s, i), TF_OK))
            return false;
    }
    for (uint32_t e = 0; e < g->m; e++)
        if (!CHECK_RC(tf_sched_add_dep(s, g->efrom[e], g->eto[e]), TF_OK))
            return false;
    uint32_t cyc[8];
    size_t ncyc = 0;
    return CHECK_RC(tf_sched_seal(s, cyc, 8, &ncyc), TF_OK) && CHECK_SCHED(s);
}

/* ------------------------------------------------------------------------ */
/* Helpers of the targeted tests. */

/* Copy pending actions to out (at most max), clear them, return how many. */
static size_t take(tf_sched *s, tf_action *out, size_t max)
{
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    CHECK_LE_U(n, max);
    if (n > max)
        n = max;
    if (n)
        memcpy(out, a, n * sizeof *a);
    tf_sched_clear_actions(s);
    return n;
}

static size_t count_kind(const tf_action *a, size_t n, uint32_t kind)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += a[i].kind == kind;
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

/* Dispatch, check, and return the actions it emitted. */
static size_t dispatch(tf_sched *s, tf_action *a)
{
    if (!CHECK_RC(tf_sched_dispatch(s), TF_OK))
        return 0;
    size_t n = take(s, a, MAXACT);
    CHECK_SCHED(s);
    return n;
}

/* A step that must succeed and emit nothing (task_done, moves, ...). */
static bool quiet(tf_sched *s, int rc, const char *what, uint32_t t)
{
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    bool ok = CHECK_MSG(rc == TF_OK, "%s(%u): %s", what, t, tf_err_name(rc)) &&
              CHECK_MSG(n == 0, "%s(%u) emitted %zu actions, first kind %u",
                        what, t, n, n ? a[0].kind : 0u);
    tf_sched_clear_actions(s);
    return CHECK_SCHED(s) && ok;
}

static bool done_quiet(tf_sched *s, uint32_t t)
{
    return quiet(s, tf_sched_task_done(s, t), "task_done", t);
}

/* A scheduler with park on and n plain tasks (prio 0, 1 core, `retries`). */
static bool park_sched(tf_sched *s, uint32_t n, uint8_t retries)
{
    if (!CHECK_RC(tf_sched_init(s), TF_OK))
        return false;
    s->park = true;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx;
        if (!CHECK_RC(tf_sched_add_task(s, 0, 1, retries, &idx), TF_OK) ||
            !CHECK_EQ_U(idx, i))
            return false;
    }
    return true;
}

static bool seal_ok(tf_sched *s)
{
    uint32_t cyc[8];
    size_t ncyc = 0;
    return CHECK_RC(tf_sched_seal(s, cyc, 8, &ncyc), TF_OK) && CHECK_SCHED(s);
}

/* Tasks first .. first+len-1 in a chain, each depending on the one before. */
static bool chain_deps(tf_sched *s, uint32_t first, uint32_t len)
{
    for (uint32_t i = first + 1; i < first + len; i++)
        if (!CHECK_RC(tf_sched_add_dep(s, i - 1, i), TF_OK))
            return false;
    return true;
}

/*
 * The parking one dispatch call must do, with windows large enough: the
 * fixpoint of "a PENDING task (not a no-op, fitting the worker) all of whose
 * unfinished dependencies were placed on worker w by this call is placed on
 * w too", starting from the call's RUN actions. Compares it with the
 * call's PARK actions, as a set; each PARK must also come after the
 * placement of every unfinished dependency of its task.
 */
static bool parks_match_fixpoint(const tf_sched *s, const tf_action *a,
                                 size_t n)
{
    uint32_t nt = s->dag.n;
    uint32_t *placed = malloc((nt ? nt : 1) * sizeof *placed);
    size_t *when = malloc((nt ? nt : 1) * sizeof *when);
    uint8_t *want = calloc(nt ? nt : 1, 1);
    bool ok = CHECK_TRUE(placed && when && want);
    for (uint32_t t = 0; ok && t < nt; t++)
        placed[t] = TF_NONE;
    for (size_t i = 0; ok && i < n; i++)
        if (a[i].kind == TF_ACT_RUN || a[i].kind == TF_ACT_PARK)
            when[a[i].task] = i;
    for (size_t i = 0; ok && i < n; i++)
        if (a[i].kind == TF_ACT_RUN)
            placed[a[i].task] = a[i].worker;
    for (bool changed = ok; changed;) {
        changed = false;
        for (uint32_t v = 0; v < nt; v++) {
            tf_state st = tf_sched_state(s, v);
            if (placed[v] != TF_NONE ||
                (st != TF_ST_PENDING && st != TF_ST_PARKED) ||
                (s->dag.flags[v] & TF_TF_NOOP))
                continue;
            uint32_t w = TF_NONE;
            bool all = true;
            /* Dependencies: scan every task's out-edges for v. */
            for (uint32_t u = 0; u < nt && all; u++)
                for (uint32_t e = s->dag.out_head[u]; e != TF_NONE && all;
                     e = s->dag.e_next[e]) {
                    if (s->dag.e_to[e] != v ||
                        tf_sched_state(s, u) == TF_ST_DONE)
                        continue;
                    if (placed[u] == TF_NONE ||
                        (w != TF_NONE && placed[u] != w))
                        all = false;
                    w = placed[u];
                }
            if (!all || w == TF_NONE || s->dag.cores[v] > s->workers[w].slots)
                continue;
            placed[v] = w;
            want[v] = 1;
            changed = true;
        }
    }
    for (uint32_t v = 0; ok && v < nt; v++) {
        const tf_action *p = find_act(a, n, TF_ACT_PARK, v);
        ok = CHECK_MSG(
            (p != NULL) == (want[v] != 0), "task %u: %s, the fixpoint says %s",
            v, p ? "parked" : "not parked", want[v] ? "park it" : "do not");
        if (!ok || !p)
            continue;
        ok =
            CHECK_EQ_U(p->worker, placed[v]) && CHECK_STATE(s, v, TF_ST_PARKED);
        for (uint32_t u = 0; ok && u < nt; u++)
            for (uint32_t e = s->dag.out_head[u]; e != TF_NONE && ok;
                 e = s->dag.e_next[e])
                if (s->dag.e_to[e] == v && tf_sched_state(s, u) != TF_ST_DONE)
                    ok = CHECK_MSG(when[u] < (size_t)(p - a),
                                   "PARK of %u (action %zu) before its "
                                   "dependency %u was placed (action %zu)",
                                   v, (size_t)(p - a), u, when[u]);
    }
    free(want);
    free(when);
    free(placed);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Targeted parking tests. */

/* A chain of 100 with depth 64: 1 RUN and 63 PARKs, then local release. */
static void test_park_chain(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w;
    if (!park_sched(&s, 100, 0) || !chain_deps(&s, 0, 100) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 64, &w), TF_OK))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    if (!CHECK_EQ_U(n, 64) || !CHECK_EQ_U(a[0].kind, TF_ACT_RUN) ||
        !CHECK_EQ_U(a[0].task, 0) || !CHECK_EQ_U(a[0].worker, w))
        goto out_with_sched;
    for (uint32_t i = 1; i < 64; i++)
        if (!CHECK_EQ_U(a[i].kind, TF_ACT_PARK) || !CHECK_EQ_U(a[i].task, i) ||
            !CHECK_EQ_U(a[i].worker, w) || !CHECK_EQ_I(a[i].cause, i - 1) ||
            !CHECK_STATE(&s, i, TF_ST_PARKED))
            goto out_with_sched;
    CHECK_STATE(&s, 64, TF_ST_PENDING);
    CHECK_EQ_U(s.workers[w].ntasks, 64);
    CHECK_EQ_U(s.count[TF_ST_PARKED], 63);
    CHECK_EQ_U(s.dag.attempts[1], 0); /* parking is not an attempt */
    /* The worker runs them one after the other, telling rank 0 only DONE. */
    for (uint32_t t = 0; t < 63; t++) {
        if (!done_quiet(&s, t) || !CHECK_STATE(&s, t + 1, TF_ST_DISPATCHED) ||
            !CHECK_EQ_U(s.dag.attempts[t + 1], 1) ||
            !CHECK_EQ_U(s.workers[w].ntasks, 63 - t) ||
            !CHECK_EQ_U(dispatch(&s, a), 0))
            goto out_with_sched;
    }
    if (!done_quiet(&s, 63) || !CHECK_STATE(&s, 64, TF_ST_READY))
        goto out_with_sched;
    n = dispatch(&s, a);
    CHECK_EQ_U(n, 36);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_RUN), 1);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 35);
    CHECK_TRUE(find_act(a, n, TF_ACT_RUN, 64) != NULL);
    for (uint32_t t = 64; t < 100; t++)
        if (!done_quiet(&s, t))
            break;
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 100);
    CHECK_EQ_U(s.workers[w].ntasks, 0);
    for (uint32_t t = 0; t < 100; t++)
        if (!CHECK_EQ_U(s.dag.attempts[t], 1))
            break;
out_with_sched:
    tf_sched_free(&s);
}

/* Tasks of a stencil: step st, column x, width wd. */
static uint32_t sten(uint32_t wd, uint32_t st, uint32_t x)
{
    return st * wd + x;
}

static bool stencil_deps(tf_sched *s, uint32_t wd, uint32_t steps)
{
    for (uint32_t st = 1; st < steps; st++)
        for (uint32_t x = 0; x < wd; x++)
            for (uint32_t y = x ? x - 1 : 0; y <= x + 1 && y < wd; y++)
                if (!CHECK_RC(tf_sched_add_dep(s, sten(wd, st - 1, y),
                                               sten(wd, st, x)),
                              TF_OK))
                    return false;
    return true;
}

/*
 * A stencil of width 4 on one worker: every later step is parked behind
 * the first (deep window), or as much as the window holds (depth 10).
 */
static void test_park_stencil_one(void)
{
    for (uint32_t depth = 10; depth <= 64; depth += 54) {
        tf_sched s;
        tf_action a[MAXACT];
        uint32_t w;
        const uint32_t wd = 4, steps = 6;
        if (!park_sched(&s, wd * steps, 0) || !stencil_deps(&s, wd, steps) ||
            !seal_ok(&s) ||
            !CHECK_RC(tf_sched_add_worker(&s, 2, depth, &w), TF_OK))
            goto out_with_sched;
        size_t n = dispatch(&s, a);
        CHECK_EQ_U(count_kind(a, n, TF_ACT_RUN), wd);
        uint32_t parks = depth < wd * steps ? depth - wd : wd * (steps - 1);
        CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), parks);
        CHECK_EQ_U(s.workers[w].ntasks, wd + parks);
        if (depth == 64)
            CHECK_TRUE(parks_match_fixpoint(&s, a, n));
        /* Run step by step as the worker would: each step releases the next. */
        for (uint32_t st = 0; st < steps && depth == 64; st++) {
            for (uint32_t x = 0; x < wd; x++)
                if (!CHECK_STATE(&s, sten(wd, st, x), TF_ST_DISPATCHED))
                    goto out_with_sched;
            for (uint32_t x = 0; x < wd; x++)
                if (!done_quiet(&s, sten(wd, st, x)))
                    goto out_with_sched;
        }
        if (depth == 64) {
            CHECK_TRUE(tf_sched_is_finished(&s));
            CHECK_EQ_U(s.workers[w].ntasks, 0);
        }
    out_with_sched:
        tf_sched_free(&s);
    }
}

/*
 * A stencil of width 8 on two workers of 4 slots: the first takes columns
 * 0-3, the second 4-7, and only tasks whose three inputs are all on one
 * worker are parked there; the seam columns wait.
 */
static void test_park_stencil_two(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w0, w1;
    const uint32_t wd = 8, steps = 4;
    if (!park_sched(&s, wd * steps, 0) || !stencil_deps(&s, wd, steps) ||
        !seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 4, 64, &w0), TF_OK) ||
        !CHECK_RC(tf_sched_add_worker(&s, 4, 64, &w1), TF_OK))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_RUN), 8);
    CHECK_TRUE(parks_match_fixpoint(&s, a, n));
    for (uint32_t x = 0; x < wd; x++) {
        const tf_action *r = find_act(a, n, TF_ACT_RUN, sten(wd, 0, x));
        if (CHECK_MSG(r != NULL, "column %u not run", x))
            CHECK_EQ_U(r->worker, x < 4 ? w0 : w1);
    }
    /* Blocks of 3 inputs inside one worker's columns: parked; the seam not. */
    static const uint32_t parked0[][2] = {{1, 0}, {1, 1}, {1, 2},
                                          {2, 0}, {2, 1}, {3, 0}};
    for (size_t i = 0; i < 6; i++) {
        uint32_t t0 = sten(wd, parked0[i][0], parked0[i][1]);
        uint32_t t1 = sten(wd, parked0[i][0], wd - 1 - parked0[i][1]);
        const tf_action *p0 = find_act(a, n, TF_ACT_PARK, t0);
        const tf_action *p1 = find_act(a, n, TF_ACT_PARK, t1);
        if (CHECK_MSG(p0 && p1, "task %u or %u not parked", t0, t1)) {
            CHECK_EQ_U(p0->worker, w0);
            CHECK_EQ_U(p1->worker, w1);
        }
    }
    CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 12);
    CHECK_STATE(&s, sten(wd, 1, 3), TF_ST_PENDING);
    CHECK_STATE(&s, sten(wd, 1, 4), TF_ST_PENDING);
    CHECK_STATE(&s, sten(wd, 2, 2), TF_ST_PENDING);
    CHECK_EQ_U(s.workers[w0].ntasks, 10);
    CHECK_EQ_U(s.workers[w1].ntasks, 10);
    /* Finishing step 0 readies the seam; its dispatch parks what it can. */
    for (uint32_t x = 0; x < wd; x++)
        if (!done_quiet(&s, sten(wd, 0, x)))
            goto out_with_sched;
    CHECK_STATE(&s, sten(wd, 1, 3), TF_ST_READY);
    n = dispatch(&s, a);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_RUN), 2);
    CHECK_TRUE(parks_match_fixpoint(&s, a, n));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * Parking stays within the window, happens only in the call that placed
 * the dependencies, and never across workers.
 */
static void test_park_depth(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w0, w1;
    if (!park_sched(&s, 10, 0) || !chain_deps(&s, 0, 10) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 5, &w0), TF_OK) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 64, &w1), TF_OK))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 5);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 4);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_U(a[i].worker, w0);
    CHECK_EQ_U(s.workers[w0].ntasks, 5);
    CHECK_EQ_U(s.workers[w1].ntasks, 0);
    CHECK_STATE(&s, 5, TF_ST_PENDING);
    /* A wider window later does not park behind tasks placed earlier. */
    CHECK_RC(tf_sched_set_depth(&s, w0, 64), TF_OK);
    CHECK_EQ_U(dispatch(&s, a), 0);
    CHECK_STATE(&s, 5, TF_ST_PENDING);
    tf_sched_free(&s);

    /* Depth 1: a RUN fills the window, nothing parks. */
    if (!park_sched(&s, 3, 0) || !chain_deps(&s, 0, 3) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w0), TF_OK))
        goto out_with_sched;
    n = dispatch(&s, a);
    CHECK_EQ_U(n, 1);
    CHECK_EQ_U(a[0].kind, TF_ACT_RUN);
    CHECK_STATE(&s, 1, TF_ST_PENDING);
    tf_sched_free(&s);

    /*
     * Diamond a, b -> c: a and b on different workers leave c pending; on
     * one worker (two slots) c parks; placed by different calls on the same
     * worker, c waits too.
     */
    for (int variant = 0; variant < 3; variant++) {
        if (!park_sched(&s, 3, 0) || !CHECK_RC(tf_sched_add_dep(&s, 0, 2), 0) ||
            !CHECK_RC(tf_sched_add_dep(&s, 1, 2), 0) || !seal_ok(&s))
            goto out_with_sched;
        if (variant == 0) {
            CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w0), TF_OK);
            CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w1), TF_OK);
        } else {
            CHECK_RC(tf_sched_add_worker(&s, variant == 1 ? 2 : 1,
                                         variant == 1 ? 8 : 1, &w0),
                     TF_OK);
        }
        n = dispatch(&s, a);
        if (variant == 2) {
            CHECK_EQ_U(n, 1);
            CHECK_RC(tf_sched_set_depth(&s, w0, 8), TF_OK);
            n = dispatch(&s, a);
            CHECK_EQ_U(n, 1);
            CHECK_EQ_U(a[0].kind, TF_ACT_RUN);
        }
        CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), variant == 1);
        CHECK_STATE(&s, 2, variant == 1 ? TF_ST_PARKED : TF_ST_PENDING);
        if (variant == 1) {
            const tf_action *p = find_act(a, n, TF_ACT_PARK, 2);
            if (CHECK_TRUE(p != NULL))
                CHECK_EQ_I(p->cause, 1); /* b completed the count */
        }
        CHECK_TRUE(done_quiet(&s, 0) && done_quiet(&s, 1));
        if (variant != 1) {
            CHECK_STATE(&s, 2, TF_ST_READY);
            CHECK_EQ_U(dispatch(&s, a), 1);
        }
        CHECK_STATE(&s, 2, TF_ST_DISPATCHED);
        CHECK_TRUE(done_quiet(&s, 2));
        CHECK_TRUE(tf_sched_is_finished(&s));
        tf_sched_free(&s);
    }
    return;
out_with_sched:
    tf_sched_free(&s);
}

/* A task needing more cores than its anchor's worker has is not parked there.
 */
static void test_park_cores(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t small, big, t0, t1;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    s.park = true;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t0), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 2, 0, &t1), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, t0, t1), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &small), 0))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 1);
    CHECK_EQ_U(a[0].worker, small);
    CHECK_STATE(&s, t1, TF_ST_PENDING);
    CHECK_RC(tf_sched_add_worker(&s, 2, 8, &big), TF_OK);
    CHECK_TRUE(done_quiet(&s, t0));
    n = dispatch(&s, a);
    if (CHECK_EQ_U(n, 1)) {
        CHECK_EQ_U(a[0].kind, TF_ACT_RUN);
        CHECK_EQ_U(a[0].worker, big);
    }
    CHECK_TRUE(done_quiet(&s, t1));
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A task that no worker can hold fails (TF_ECORES) in the same dispatch
 * call that counted one of its dependents for parking: the dependent is
 * skipped and must be left clean (no worker, invariants hold).
 */
static void test_park_cores_too_many(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w, small, huge, after;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    s.park = true;
    CHECK_RC(tf_sched_add_task(&s, 1, 1, 0, &small), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 2, 0, &huge), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &after), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, small, after), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, huge, after), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w), 0))
        goto out_with_sched;
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    size_t n = take(&s, a, MAXACT);
    CHECK_EQ_U(n, 3);
    CHECK_TRUE(find_act(a, n, TF_ACT_RUN, small) != NULL);
    const tf_action *f = find_act(a, n, TF_ACT_FAIL, huge);
    if (CHECK_TRUE(f != NULL))
        CHECK_RC(f->cause, TF_ECORES);
    const tf_action *k = find_act(a, n, TF_ACT_SKIP, after);
    if (CHECK_TRUE(k != NULL))
        CHECK_EQ_I(k->cause, huge);
    CHECK_STATE(&s, after, TF_ST_SKIPPED);
    CHECK_MSG(s.dag.worker[after] == TF_NONE,
              "skipped task %u still names worker 0x%08x (parking count)",
              after, s.dag.worker[after]);
    CHECK_SCHED(&s);
out_with_sched:
    tf_sched_free(&s);
}

/* NOOP tasks are never parked, nor anything waiting for an unfinished one. */
static void test_park_noop(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w;
    /* 0 -> 1 (noop) -> 2, and 0 -> 3. */
    if (!park_sched(&s, 4, 0) || !CHECK_RC(tf_sched_set_noop(&s, 1), 0) ||
        !CHECK_RC(tf_sched_add_dep(&s, 0, 1), 0) ||
        !CHECK_RC(tf_sched_add_dep(&s, 1, 2), 0) ||
        !CHECK_RC(tf_sched_add_dep(&s, 0, 3), 0) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w), 0))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 2);
    CHECK_TRUE(find_act(a, n, TF_ACT_RUN, 0) != NULL);
    CHECK_TRUE(find_act(a, n, TF_ACT_PARK, 3) != NULL);
    CHECK_STATE(&s, 1, TF_ST_PENDING);
    CHECK_STATE(&s, 2, TF_ST_PENDING);
    CHECK_TRUE(done_quiet(&s, 0));
    CHECK_STATE(&s, 1, TF_ST_DONE);
    CHECK_STATE(&s, 2, TF_ST_READY);
    CHECK_STATE(&s, 3, TF_ST_DISPATCHED);
    n = dispatch(&s, a);
    CHECK_EQ_U(n, 1);
    CHECK_TRUE(find_act(a, n, TF_ACT_RUN, 2) != NULL);
    CHECK_TRUE(done_quiet(&s, 2) && done_quiet(&s, 3));
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.workers[w].ntasks, 0);
out_with_sched:
    tf_sched_free(&s);
}

/*
 * Only unfinished dependencies count: a task whose other inputs are done
 * parks behind the one placed now, and a dependency named twice counts
 * twice and is released by one completion.
 */
static void test_park_done_deps(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w;
    /* 0 and 1 ready; 2 depends on 0 and 1; 3 depends on 1 twice. */
    if (!park_sched(&s, 4, 0) || !CHECK_RC(tf_sched_add_dep(&s, 0, 2), 0) ||
        !CHECK_RC(tf_sched_add_dep(&s, 1, 2), 0) ||
        !CHECK_RC(tf_sched_add_dep(&s, 1, 3), 0) ||
        !CHECK_RC(tf_sched_add_dep(&s, 1, 3), 0) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), 0))
        goto out_with_sched;
    CHECK_EQ_U(s.dag.npend[3], 2);
    size_t n = dispatch(&s, a);
    CHECK_TRUE(n == 1 && a[0].task == 0);
    CHECK_TRUE(done_quiet(&s, 0));
    CHECK_RC(tf_sched_set_depth(&s, w, 8), TF_OK);
    n = dispatch(&s, a);
    CHECK_EQ_U(n, 3);
    CHECK_TRUE(find_act(a, n, TF_ACT_RUN, 1) != NULL);
    CHECK_TRUE(find_act(a, n, TF_ACT_PARK, 2) != NULL);
    CHECK_TRUE(find_act(a, n, TF_ACT_PARK, 3) != NULL);
    CHECK_TRUE(parks_match_fixpoint(&s, a, n));
    CHECK_TRUE(done_quiet(&s, 1));
    CHECK_STATE(&s, 2, TF_ST_DISPATCHED);
    CHECK_STATE(&s, 3, TF_ST_DISPATCHED);
    CHECK_TRUE(done_quiet(&s, 2) && done_quiet(&s, 3));
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* Expect task_failed(t) to emit `kind` for t and `skips` SKIPs with cause t. */
static bool fail_expect(tf_sched *s, uint32_t t, uint32_t kind, size_t skips)
{
    tf_action a[MAXACT];
    if (!CHECK_RC(tf_sched_task_failed(s, t, SIM_FAIL_CODE), TF_OK))
        return false;
    size_t n = take(s, a, MAXACT);
    bool ok = CHECK_SCHED(s) && CHECK_EQ_U(n, 1 + skips) &&
              CHECK_EQ_U(a[0].kind, kind) && CHECK_EQ_U(a[0].task, t) &&
              CHECK_RC(a[0].cause, SIM_FAIL_CODE);
    for (size_t i = 1; ok && i < n; i++)
        ok = CHECK_EQ_U(a[i].kind, TF_ACT_SKIP) && CHECK_EQ_I(a[i].cause, t);
    return ok;
}

/* A failing anchor with retries unparks its chain, which parks again. */
static void test_park_retry(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w;
    if (!park_sched(&s, 5, 1) || !chain_deps(&s, 0, 5) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch(&s, a), 5);
    if (!fail_expect(&s, 0, TF_ACT_RETRY, 0))
        goto out_with_sched;
    CHECK_STATE(&s, 0, TF_ST_READY);
    for (uint32_t t = 1; t < 5; t++) {
        CHECK_STATE(&s, t, TF_ST_PENDING);
        CHECK_EQ_U(s.dag.worker[t], TF_NONE);
    }
    CHECK_EQ_U(s.workers[w].ntasks, 0);
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 5);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 4);
    /* Now the middle of the chain fails once, after its release. */
    CHECK_TRUE(done_quiet(&s, 0));
    CHECK_STATE(&s, 1, TF_ST_DISPATCHED);
    if (!fail_expect(&s, 1, TF_ACT_RETRY, 0))
        goto out_with_sched;
    CHECK_EQ_U(s.workers[w].ntasks, 0);
    CHECK_EQ_U(s.count[TF_ST_PARKED], 0);
    n = dispatch(&s, a);
    CHECK_EQ_U(n, 4);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 3);
    for (uint32_t t = 1; t < 5; t++)
        if (!done_quiet(&s, t))
            goto out_with_sched;
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_EQ_U(s.count[TF_ST_DONE], 5);
    /* Attempts: 0 and 1 ran twice, the others once; parking counts none. */
    static const uint8_t want[5] = {2, 2, 1, 1, 1};
    for (uint32_t t = 0; t < 5; t++)
        CHECK_EQ_U(s.dag.attempts[t], want[t]);
out_with_sched:
    tf_sched_free(&s);
}

/* A final failure skips the parked chain and frees the worker's load. */
static void test_park_final_failure(void)
{
    for (uint32_t at = 0; at < 3; at++) {
        tf_sched s;
        tf_action a[MAXACT];
        uint32_t w, other;
        /* Chain 0..5 on w; task 6 depends on 3 and on 7, which runs elsewhere.
         */
        if (!park_sched(&s, 8, 0) || !chain_deps(&s, 0, 6) ||
            !CHECK_RC(tf_sched_add_dep(&s, 3, 6), 0) ||
            !CHECK_RC(tf_sched_add_dep(&s, 7, 6), 0) || !seal_ok(&s) ||
            !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w), TF_OK) ||
            !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &other), TF_OK))
            goto out_with_sched;
        size_t n = dispatch(&s, a);
        CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 5);
        CHECK_STATE(&s, 6, TF_ST_PENDING);
        for (uint32_t t = 0; t < at; t++)
            CHECK_TRUE(done_quiet(&s, t));
        /* at fails for good: at+1..5 and 6 are skipped with cause at. */
        if (!fail_expect(&s, at, TF_ACT_FAIL, 6 - at))
            goto out_with_sched;
        for (uint32_t t = at + 1; t < 7; t++)
            CHECK_STATE(&s, t, TF_ST_SKIPPED);
        CHECK_EQ_U(s.workers[w].ntasks, 0);
        CHECK_EQ_U(s.count[TF_ST_PARKED], 0);
        CHECK_STATE(&s, 7, TF_ST_DISPATCHED);
        CHECK_TRUE(done_quiet(&s, 7));
        CHECK_TRUE(tf_sched_is_finished(&s));
        CHECK_EQ_U(s.workers[other].ntasks, 0);
    out_with_sched:
        tf_sched_free(&s);
    }
}

/* A parked task handed back unrun is PENDING again, as are those behind it. */
static void test_park_unrun(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w;
    if (!park_sched(&s, 4, 0) || !chain_deps(&s, 0, 4) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch(&s, a), 4);
    CHECK_TRUE(quiet(&s, tf_sched_task_unrun(&s, 2), "task_unrun", 2));
    CHECK_STATE(&s, 1, TF_ST_PARKED);
    CHECK_STATE(&s, 2, TF_ST_PENDING);
    CHECK_STATE(&s, 3, TF_ST_PENDING);
    CHECK_EQ_U(s.workers[w].ntasks, 2);
    CHECK_TRUE(done_quiet(&s, 0));
    CHECK_STATE(&s, 1, TF_ST_DISPATCHED);
    CHECK_EQ_U(dispatch(&s, a), 0); /* 2 waits for 1, placed earlier */
    /* The released task comes back unrun: READY, its attempt not counted. */
    CHECK_TRUE(quiet(&s, tf_sched_task_unrun(&s, 1), "task_unrun", 1));
    CHECK_STATE(&s, 1, TF_ST_READY);
    CHECK_EQ_U(s.dag.attempts[1], 0);
    CHECK_EQ_U(s.workers[w].ntasks, 0);
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 3);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 2);
    for (uint32_t t = 1; t < 4; t++)
        CHECK_TRUE(done_quiet(&s, t));
    CHECK_TRUE(tf_sched_is_finished(&s));
    for (uint32_t t = 0; t < 4; t++)
        CHECK_EQ_U(s.dag.attempts[t], 1);
    CHECK_MSG(tf_sched_task_unrun(&s, 3) == TF_ESTATE, "unrun of a DONE task");
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A halt skips what waits at rank 0 but leaves PARKED tasks parked until
 * their worker reports them; an unrun report then skips the rest of the
 * parked chain, and later reports of it are refused.
 */
static void test_park_halt(void)
{
    for (int order = 0; order < 3; order++) {
        tf_sched s;
        tf_action a[MAXACT];
        uint32_t w;
        /* Chain 0..3 parked on w (depth 4); 4 and 5 wait at rank 0. */
        if (!park_sched(&s, 6, 0) || !chain_deps(&s, 0, 4) ||
            !CHECK_RC(tf_sched_add_dep(&s, 3, 5), 0) || !seal_ok(&s) ||
            !CHECK_RC(tf_sched_add_worker(&s, 1, 4, &w), TF_OK))
            goto out_with_sched;
        CHECK_EQ_U(dispatch(&s, a), 4);
        CHECK_STATE(&s, 4, TF_ST_READY);
        CHECK_RC(tf_sched_halt(&s), TF_OK);
        size_t n = take(&s, a, MAXACT);
        CHECK_SCHED(&s);
        CHECK_EQ_U(n, 2); /* 4 and 5 */
        CHECK_EQ_U(s.count[TF_ST_PARKED], 3);
        CHECK_FALSE(tf_sched_is_finished(&s));
        CHECK_EQ_U(dispatch(&s, a), 0);
        if (order == 0) {
            /* The worker reports its parked tasks before 0 ends. */
            CHECK_RC(tf_sched_task_unrun(&s, 1), TF_OK);
            n = take(&s, a, MAXACT);
            CHECK_EQ_U(n, 3);
            CHECK_EQ_U(count_kind(a, n, TF_ACT_SKIP), 3);
            CHECK_RC(tf_sched_task_unrun(&s, 2), TF_ESTATE);
            CHECK_RC(tf_sched_task_unrun(&s, 3), TF_ESTATE);
            CHECK_TRUE(done_quiet(&s, 0));
        } else if (order == 1) {
            /* 0 ends first and releases 1, then the worker reports. */
            CHECK_TRUE(done_quiet(&s, 0));
            CHECK_STATE(&s, 1, TF_ST_DISPATCHED);
            CHECK_RC(tf_sched_task_unrun(&s, 3), TF_OK);
            CHECK_RC(tf_sched_task_unrun(&s, 2), TF_OK);
            CHECK_RC(tf_sched_task_unrun(&s, 1), TF_OK);
            n = take(&s, a, MAXACT);
            CHECK_EQ_U(count_kind(a, n, TF_ACT_SKIP), 3);
            CHECK_EQ_U(s.dag.attempts[1], 0);
        } else {
            /* The worker is lost instead. */
            CHECK_RC(tf_sched_worker_lost(&s, w), TF_OK);
            n = take(&s, a, MAXACT);
            CHECK_EQ_U(count_kind(a, n, TF_ACT_SKIP), 4);
            CHECK_STATE(&s, 0, TF_ST_SKIPPED);
        }
        CHECK_SCHED(&s);
        for (uint32_t t = 1; t < 6; t++)
            CHECK_STATE(&s, t, TF_ST_SKIPPED);
        CHECK_TRUE(tf_sched_is_finished(&s));
        CHECK_EQ_U(s.workers[w].ntasks, 0);
    out_with_sched:
        tf_sched_free(&s);
    }
}

/*
 * A lost worker gives back its running and parked tasks (parked ones
 * first in index order here: the chain runs from high index to low).
 */
static void test_park_lost(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w0, w1;
    /* 4 -> 3 -> 2 -> 1 -> 0 */
    if (!park_sched(&s, 5, 0))
        goto out_with_sched;
    for (uint32_t t = 4; t > 0; t--)
        CHECK_RC(tf_sched_add_dep(&s, t, t - 1), TF_OK);
    if (!seal_ok(&s) || !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w0), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch(&s, a), 5);
    CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w1), TF_OK);
    CHECK_TRUE(done_quiet(&s, 4));
    CHECK_RC(tf_sched_worker_lost(&s, w0), TF_OK);
    CHECK_EQ_U(take(&s, a, MAXACT), 0);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, 3, TF_ST_READY);
    CHECK_EQ_U(s.dag.attempts[3], 0);
    for (uint32_t t = 0; t < 3; t++)
        CHECK_STATE(&s, t, TF_ST_PENDING);
    CHECK_EQ_U(s.workers[w0].ntasks, 0);
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 4);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_U(a[i].worker, w1);
    for (uint32_t t = 4; t-- > 0;)
        CHECK_TRUE(done_quiet(&s, t));
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Moves. */

static bool loads(const tf_sched *s, uint32_t w0, uint32_t n0, uint32_t w1,
                  uint32_t n1)
{
    return CHECK_EQ_U(s->workers[w0].ntasks, n0) &&
           CHECK_EQ_U(s->workers[w1].ntasks, n1) && CHECK_SCHED(s);
}

static void test_moves(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w0, w1, w2;
    /* 0 -> 1 parked; 2, 3, 4, 5 independent, all on w0 (depth 8). */
    if (!park_sched(&s, 6, 1) || !chain_deps(&s, 0, 2) || !seal_ok(&s) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w0), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(dispatch(&s, a), 6);
    CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w1), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 1, 8, &w2), TF_OK);
    if (!loads(&s, w0, 6, w1, 0))
        goto out_with_sched;

    /* Refused: parked dependents, a parked task, wrong victim, bad thief. */
    CHECK_RC(tf_sched_task_moved(&s, 0, w0, w1), TF_ESTATE);
    CHECK_RC(tf_sched_task_moved(&s, 1, w0, w1), TF_ESTATE);
    CHECK_RC(tf_sched_task_moved(&s, 2, w1, w0), TF_ESTATE);
    CHECK_RC(tf_sched_task_moved(&s, 2, w0, 99), TF_ESTATE);
    CHECK_RC(tf_sched_task_moved(&s, 99, w0, w1), TF_ESTATE);
    if (!loads(&s, w0, 6, w1, 0))
        goto out_with_sched;

    /* A move, reported before the thief's DONE. */
    CHECK_TRUE(quiet(&s, tf_sched_task_moved(&s, 2, w0, w1), "moved", 2));
    CHECK_EQ_U(s.dag.worker[2], w1);
    if (!loads(&s, w0, 5, w1, 1))
        goto out_with_sched;
    CHECK_TRUE(done_quiet(&s, 2));
    if (!loads(&s, w0, 5, w1, 0))
        goto out_with_sched;
    CHECK_RC(tf_sched_task_moved(&s, 2, w1, w0), TF_ESTATE); /* finished */

    /* DONE before MOVE: the victim loses the task, the thief never had it. */
    CHECK_TRUE(done_quiet(&s, 3));
    if (!loads(&s, w0, 4, w1, 0))
        goto out_with_sched;
    CHECK_RC(tf_sched_task_moved(&s, 3, w0, w1), TF_ESTATE);
    if (!loads(&s, w0, 4, w1, 0))
        goto out_with_sched;

    /* The thief's failure before the MOVE: retried, the MOVE refused. */
    tf_action fa[MAXACT];
    CHECK_RC(tf_sched_task_failed(&s, 4, SIM_FAIL_CODE), TF_OK);
    size_t n = take(&s, fa, MAXACT);
    if (CHECK_EQ_U(n, 1))
        CHECK_EQ_U(fa[0].kind, TF_ACT_RETRY);
    CHECK_RC(tf_sched_task_moved(&s, 4, w0, w1), TF_ESTATE);
    if (!loads(&s, w0, 3, w1, 0))
        goto out_with_sched;

    /* A lost thief takes nothing; its moved task is requeued. */
    CHECK_TRUE(quiet(&s, tf_sched_task_moved(&s, 5, w0, w2), "moved", 5));
    CHECK_RC(tf_sched_worker_lost(&s, w2), TF_OK);
    CHECK_EQ_U(take(&s, a, MAXACT), 0);
    CHECK_STATE(&s, 5, TF_ST_READY);
    CHECK_EQ_U(s.workers[w2].ntasks, 0);
    CHECK_TRUE(done_quiet(&s, 0));
    CHECK_STATE(&s, 1, TF_ST_DISPATCHED);
    CHECK_RC(tf_sched_task_moved(&s, 1, w0, w2), TF_ESTATE); /* lost */
    /* A released task without parked dependents may move (the core allows). */
    CHECK_TRUE(quiet(&s, tf_sched_task_moved(&s, 1, w0, w1), "moved", 1));
    CHECK_TRUE(done_quiet(&s, 1));
    if (!loads(&s, w0, 0, w1, 0))
        goto out_with_sched;
    n = dispatch(&s, a);
    CHECK_EQ_U(n, 2);
    CHECK_TRUE(done_quiet(&s, 4) && done_quiet(&s, 5));
    CHECK_TRUE(tf_sched_is_finished(&s));
    if (!loads(&s, w0, 0, w1, 0))
        goto out_with_sched;
out_with_sched:
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Adaptive windows. */

static void test_window_rule(void)
{
    const uint64_t lead = 250000;
    /* Unknown duration: 2 per slot, clamped to the maximum. */
    CHECK_EQ_U(tf_sched_window(1, 64, 0, lead), 2);
    CHECK_EQ_U(tf_sched_window(8, 64, 0, lead), 16);
    CHECK_EQ_U(tf_sched_window(8, 1, 0, lead), 8);
    /* 1 + ceil(lead / mean). */
    CHECK_EQ_U(tf_sched_window(1, 64, lead, lead), 2);
    CHECK_EQ_U(tf_sched_window(1, 64, lead / 2, lead), 3);
    CHECK_EQ_U(tf_sched_window(1, 64, lead / 2 + 1, lead), 3);
    CHECK_EQ_U(tf_sched_window(1, 64, lead / 2 - 1, lead), 4);
    CHECK_EQ_U(tf_sched_window(1, 64, lead / 3 + 1, lead), 4);
    CHECK_EQ_U(tf_sched_window(4, 64, lead / 10, lead), 44);
    CHECK_EQ_U(tf_sched_window(2, 64, 2 * lead, lead), 4);
    CHECK_EQ_U(tf_sched_window(1, 64, lead + 1, lead), 2);
    /* Clamped to max_per_slot, and to at least one per slot. */
    CHECK_EQ_U(tf_sched_window(1, 64, 1, lead), 64);
    CHECK_EQ_U(tf_sched_window(3, 64, 1000, lead), 3 * 64);
    CHECK_EQ_U(tf_sched_window(2, 5, lead / 10, lead), 10);
    CHECK_EQ_U(tf_sched_window(2, 0, lead, lead), 2);
    CHECK_EQ_U(tf_sched_window(0, 64, lead, lead), 2); /* 0 slots count as 1 */
    /* Up to 100 x lead still 2 per slot; longer, 1. */
    CHECK_EQ_U(tf_sched_window(1, 64, 100 * lead, lead), 2);
    CHECK_EQ_U(tf_sched_window(4, 64, 100 * lead, lead), 8);
    CHECK_EQ_U(tf_sched_window(4, 64, 200 * lead, lead), 4);
    CHECK_EQ_U(tf_sched_window(1, 64, UINT64_MAX, lead), 1);
    /* No overflow for huge values. */
    CHECK_EQ_U(tf_sched_window(UINT32_MAX, 64, 1, lead), UINT32_MAX);
    CHECK_EQ_U(tf_sched_window(1, UINT32_MAX, 1, UINT64_MAX / 4), UINT32_MAX);
}

/*
 * "Tasks longer than 100 x lead get per_slot 1" (sched.h): also those
 * longer by less than 100 ns.
 */
static void test_window_long_boundary(void)
{
    const uint64_t lead = 250000;
    CHECK_EQ_U(tf_sched_window(4, 64, 100 * lead, lead), 8);
    CHECK_EQ_U(tf_sched_window(4, 64, 100 * lead + 1, lead), 4);
    CHECK_EQ_U(tf_sched_window(1, 64, 100 * lead + 99, lead), 1);
    CHECK_EQ_U(tf_sched_window(1, 64, 100 * lead + 100, lead), 1);
}

/* 1 + ceil(lead / mean) for any lead: a huge lead must not wrap around. */
static void test_window_huge_lead(void)
{
    CHECK_EQ_U(tf_sched_window(1, 64, 1000, UINT64_MAX), 64);
    CHECK_EQ_U(tf_sched_window(2, 64, 3, UINT64_MAX - 1), 128);
}

/*
 * Rank 0's response time sets the lead: a long wait counts at once, is
 * forgotten linearly over a second, and is capped at 10 ms; the window of
 * a worker with 2 ms tasks follows at its next observation.
 */
static void test_waited(void)
{
    tf_sched s;
    uint32_t w;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    s.adaptive = true;
    CHECK_RC(tf_sched_add_worker(&s, 1, 256, &w), TF_OK);
    uint64_t t = 5000000000u;
    tf_sched_waited(&s, 20000, t); /* short: the base lead stays */
    CHECK_EQ_U(s.lead_ns, TF_SCHED_LEAD_NS);
    tf_sched_observe(&s, w, 2000000);
    CHECK_EQ_U(s.workers[w].depth, 2);
    tf_sched_waited(&s, 3000000, t); /* 3 ms: lead 6 ms, 1 + 3 per slot */
    CHECK_EQ_U(s.lead_ns, 6000000);
    tf_sched_observe(&s, w, 2000000);
    CHECK_EQ_U(s.workers[w].depth, 4);
    /* Half a second of short waits halves it; a full second forgets it. */
    tf_sched_waited(&s, 1000, t + 500000000u);
    CHECK_EQ_U(s.wait_ns, 1500000);
    CHECK_EQ_U(s.lead_ns, 3000000);
    tf_sched_waited(&s, 1000, t + 1500000000u);
    CHECK_EQ_U(s.wait_ns, 1000);
    CHECK_EQ_U(s.lead_ns, TF_SCHED_LEAD_NS);
    tf_sched_waited(&s, 5000000000u, t + 1500000000u); /* capped */
    CHECK_EQ_U(s.wait_ns, TF_SCHED_WAIT_MAX_NS);
    CHECK_EQ_U(s.lead_ns, 2 * TF_SCHED_WAIT_MAX_NS);
    tf_sched_waited(&s, 0, t); /* a clock going back forgets nothing */
    CHECK_EQ_U(s.wait_ns, TF_SCHED_WAIT_MAX_NS);
    tf_sched_free(&s);
}

/*
 * A worker with no duration of its own yet sizes its window by the first
 * one any worker reported (registered before it or after), not by the 2
 * per slot of an unknown duration; its own reports then take over, and
 * later reports of others change nothing for it.
 */
static void test_first_duration(void)
{
    tf_sched s;
    uint32_t a, b, c;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    s.adaptive = true;
    CHECK_RC(tf_sched_add_worker(&s, 2, 128, &a), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 2, 128, &b), TF_OK);
    CHECK_EQ_U(s.workers[b].depth, 4);
    tf_sched_observe(&s, a, 1000); /* 1 + 250 per slot: the ceiling */
    CHECK_EQ_U(s.workers[a].depth, 128);
    CHECK_EQ_U(s.workers[b].depth, 128);
    CHECK_EQ_U(s.workers[b].mean_ns, 0);
    CHECK_RC(tf_sched_add_worker(&s, 1, 16, &c), TF_OK);
    CHECK_EQ_U(s.workers[c].depth, 16);
    tf_sched_observe(&s, b, 1000000000); /* its own: one per slot */
    CHECK_EQ_U(s.workers[b].depth, 2);
    tf_sched_observe(&s, a, 1000000000); /* a's, not c's */
    CHECK_EQ_U(s.workers[c].depth, 16);
    CHECK_EQ_U(s.first_ns, 1000);
    tf_sched_free(&s);
    /* Fixed windows: nothing of this. */
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    CHECK_RC(tf_sched_add_worker(&s, 2, 8, &a), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 2, 8, &b), TF_OK);
    tf_sched_observe(&s, a, 1000000000);
    CHECK_EQ_U(s.workers[b].depth, 8);
    tf_sched_free(&s);
}

/* The running mean as the header states it, computed in signed arithmetic. */
static uint64_t ref_mean(uint64_t mean, uint64_t dur)
{
    if (!dur)
        dur = 1;
    if (!mean)
        return dur;
    int64_t diff = (int64_t)dur - (int64_t)mean;
    return (uint64_t)((int64_t)mean + diff / 8);
}

static void test_observe(void)
{
    tf_sched s;
    uint32_t w, v, tiny, ghost;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    const uint64_t lead = s.lead_ns;
    CHECK_EQ_U(lead, 250000);
    /* Fixed windows: depth as given, the mean still kept. */
    CHECK_RC(tf_sched_add_worker(&s, 2, 128, &w), TF_OK);
    CHECK_EQ_U(s.workers[w].depth, 128);
    tf_sched_observe(&s, w, 800);
    CHECK_EQ_U(s.workers[w].mean_ns, 800);
    tf_sched_observe(&s, w, 1600);
    CHECK_EQ_U(s.workers[w].mean_ns, 900);
    tf_sched_observe(&s, w, 100);
    CHECK_EQ_U(s.workers[w].mean_ns, 800);
    tf_sched_observe(&s, w, 0); /* counts as 1 ns */
    CHECK_EQ_U(s.workers[w].mean_ns, 701);
    CHECK_EQ_U(s.workers[w].depth, 128);
    tf_sched_observe(&s, 7, 1000); /* no such worker: ignored */

    /* Adaptive: start at 2 per slot, then follow the mean. */
    s.adaptive = true;
    CHECK_RC(tf_sched_add_worker(&s, 2, 128, &v), TF_OK);
    CHECK_EQ_U(s.workers[v].depth, 4);
    CHECK_EQ_U(s.workers[v].max_depth, 128);
    tf_sched_observe(&s, v, 50000);
    CHECK_EQ_U(s.workers[v].depth, 2 * 6); /* 1 + 250000/50000 */
    tf_sched_observe(&s, v, 130000);       /* mean 60000: 1 + ceil(4.17) */
    CHECK_EQ_U(s.workers[v].mean_ns, 60000);
    CHECK_EQ_U(s.workers[v].depth, 2 * 6);
    for (int i = 0; i < 200; i++)
        tf_sched_observe(&s, v, 1000000000);
    CHECK_EQ_U(s.workers[v].depth, 2); /* long tasks: one per slot */
    for (int i = 0; i < 200; i++)
        tf_sched_observe(&s, v, 10);
    CHECK_EQ_U(s.workers[v].depth, 128); /* short tasks: the ceiling */

    /* A ceiling below 2 per slot, and below the slots. */
    CHECK_RC(tf_sched_add_worker(&s, 2, 3, &tiny), TF_OK);
    CHECK_EQ_U(s.workers[tiny].depth, 2);
    tf_sched_observe(&s, tiny, 10);
    CHECK_EQ_U(s.workers[tiny].depth, 2);
    CHECK_RC(tf_sched_add_worker(&s, 4, 2, &ghost), TF_OK);
    CHECK_EQ_U(s.workers[ghost].depth, 2);
    tf_sched_observe(&s, ghost, 10);
    CHECK_LE_U(s.workers[ghost].depth, 2);
    CHECK_LE_U(1, s.workers[ghost].depth);

    /* The mean against the reference over a random sequence. */
    tf_rng r = tf_rng_seeded(11);
    uint64_t want = s.workers[w].mean_ns;
    for (int i = 0; i < 5000; i++) {
        uint64_t d = tf_rng_below(&r, 4)
                         ? tf_rng_below(&r, 1000000)
                         : (uint64_t)tf_rng_below(&r, 1u << 30) << 10;
        tf_sched_observe(&s, w, d);
        want = ref_mean(want, d);
        if (!CHECK_EQ_U(s.workers[w].mean_ns, want))
            break;
    }
    CHECK_SCHED(&s);
    tf_sched_free(&s);
}

/* Adaptive depths bound what dispatch gives, parking included. */
static void test_adaptive_dispatch(void)
{
    tf_sched s;
    tf_action a[MAXACT];
    uint32_t w;
    if (!park_sched(&s, 40, 0) || !chain_deps(&s, 0, 20) || !seal_ok(&s))
        goto out_with_sched;
    s.adaptive = true;
    CHECK_RC(tf_sched_add_worker(&s, 2, 64, &w), TF_OK);
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 4);
    CHECK_EQ_U(s.workers[w].ntasks, 4);
    tf_sched_observe(&s, w, s.lead_ns / 5); /* 1 + 5 per slot */
    CHECK_EQ_U(s.workers[w].depth, 12);
    /* 8 more independent tasks: 3 waits for 2, placed by the last call. */
    n = dispatch(&s, a);
    CHECK_EQ_U(n, 8);
    CHECK_EQ_U(count_kind(a, n, TF_ACT_PARK), 0);
    CHECK_EQ_U(s.workers[w].ntasks, 12);
    tf_sched_observe(&s, w, 1000 * s.lead_ns);
    CHECK_EQ_U(s.workers[w].depth, 2);
    CHECK_EQ_U(dispatch(&s, a), 0);
out_with_sched:
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Steal policy. */

#define NR 16u

/*
 * Ranks 1-8 on host A (1-4 NUMA 0, 5-7 NUMA 1, 8 unknown), 9-15 on host B
 * (9-12 NUMA 0, 13-15 unknown); rank 0 schedules.
 */
static void steal_locs(tf_loc *loc)
{
    for (uint32_t r = 0; r < NR; r++) {
        loc[r].host = r <= 8 ? 0xA11CEu : 0xB0Bu;
        loc[r].numa = r == 0 || r == 8 || r >= 13 ? -1
                      : r <= 4                    ? 0
                      : r <= 7                    ? 1
                                                  : 0;
    }
}

static void test_loc_distance(void)
{
    tf_loc loc[NR];
    steal_locs(loc);
    CHECK_EQ_I(tf_loc_distance(&loc[1], &loc[2]), 0);
    CHECK_EQ_I(tf_loc_distance(&loc[1], &loc[5]), 1);
    CHECK_EQ_I(tf_loc_distance(&loc[1], &loc[8]), 1);
    CHECK_EQ_I(tf_loc_distance(&loc[8], &loc[8]), 1); /* unknown NUMA */
    CHECK_EQ_I(tf_loc_distance(&loc[13], &loc[14]), 1);
    CHECK_EQ_I(tf_loc_distance(&loc[1], &loc[9]), 2); /* NUMA 0, other host */
    CHECK_EQ_I(tf_loc_distance(&loc[9], &loc[12]), 0);
}

static void test_steal_order(void)
{
    tf_loc loc[NR];
    steal_locs(loc);
    uint32_t out[NR], again[NR];
    for (uint32_t self = 1; self < NR; self++) {
        for (uint64_t seed = 1; seed <= 20; seed++) {
            tf_rng r = tf_rng_seeded(seed), r2 = tf_rng_seeded(seed);
            size_t k = tf_steal_order(loc, 1, NR, self, &r, out);
            if (!CHECK_EQ_U(k, NR - 2))
                return;
            uint8_t seen[NR] = {0};
            int last = 0;
            for (size_t i = 0; i < k; i++) {
                int d = tf_loc_distance(&loc[self], &loc[out[i]]);
                if (!CHECK_MSG(out[i] >= 1 && out[i] < NR && out[i] != self &&
                                   !seen[out[i]],
                               "self %u seed %" PRIu64 ": victim %zu is %u",
                               self, seed, i, out[i]) ||
                    !CHECK_MSG(d >= last,
                               "self %u: victim %u (distance %d) after "
                               "distance %d",
                               self, out[i], d, last))
                    return;
                seen[out[i]] = 1;
                last = d;
            }
            /* Same seed, same order. */
            CHECK_EQ_U(tf_steal_order(loc, 1, NR, self, &r2, again), k);
            CHECK_TRUE(!memcmp(out, again, k * sizeof *out));
        }
    }
    /* Nobody else: nothing to ask. */
    tf_rng r = tf_rng_seeded(3);
    CHECK_EQ_U(tf_steal_order(loc, 1, 2, 1, &r, out), 0);
    CHECK_EQ_U(tf_steal_order(loc, 0, 3, 1, &r, out), 2);

    /* Different seeds give different orders. */
    uint32_t first[NR];
    unsigned differ = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        tf_rng rs = tf_rng_seeded(seed);
        tf_steal_order(loc, 1, NR, 1, &rs, seed == 1 ? first : out);
        if (seed > 1)
            differ += memcmp(first, out, (NR - 2) * sizeof *out) != 0;
    }
    CHECK_MSG(differ >= 18, "only %u of 19 seeds changed the order", differ);
}

/* Index of a permutation of `len` distinct values among their sorted order. */
static uint32_t perm_index(const uint32_t *p, size_t len)
{
    uint32_t idx = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t smaller = 0;
        for (size_t j = i + 1; j < len; j++)
            smaller += p[j] < p[i];
        idx = idx * (uint32_t)(len - i) + smaller;
    }
    return idx;
}

/*
 * Within a tier every order appears, about equally often: for rank 1 the
 * first tier is {2, 3, 4} (6 orders), the second {5, 6, 7, 8} (24 orders).
 */
static void test_steal_shuffle(void)
{
    tf_loc loc[NR];
    steal_locs(loc);
    uint32_t out[NR], hits3[6] = {0}, hits4[24] = {0};
    const unsigned draws = 24000;
    tf_rng r = tf_rng_seeded(99);
    for (unsigned i = 0; i < draws; i++) {
        if (!CHECK_EQ_U(tf_steal_order(loc, 1, NR, 1, &r, out), NR - 2))
            return;
        hits3[perm_index(out, 3)]++;
        hits4[perm_index(out + 3, 4)]++;
    }
    for (int i = 0; i < 6; i++)
        CHECK_MSG(hits3[i] > draws / 6 / 2 && hits3[i] < draws / 6 * 2,
                  "tier 0 order %d drawn %u times of %u", i, hits3[i], draws);
    for (int i = 0; i < 24; i++)
        CHECK_MSG(hits4[i] > draws / 24 / 2 && hits4[i] < draws / 24 * 2,
                  "tier 1 order %d drawn %u times of %u", i, hits4[i], draws);
}

static void test_steal_amount(void)
{
    CHECK_EQ_U(tf_steal_amount(0), 0);
    CHECK_EQ_U(tf_steal_amount(1), 1);
    CHECK_EQ_U(tf_steal_amount(2), 1);
    CHECK_EQ_U(tf_steal_amount(3), 2);
    CHECK_EQ_U(tf_steal_amount(10), 5);
    CHECK_EQ_U(tf_steal_amount(11), 6);
    CHECK_EQ_U(tf_steal_amount(UINT32_MAX), 1u << 31);
}

/* ------------------------------------------------------------------------ */
/*
 * The randomized driver. Rank 0 is the scheduler; the workers are a model:
 * each holds a FIFO queue of tasks to start, a set of parked tasks, and
 * running tasks within its slots. Workers report to rank 0 over one
 * ordered channel each (MPI keeps the order of one sender's messages), and
 * rank 0 reads the channels in a random interleaving, so rank 0's view lags
 * the workers' in every way the real runtime allows. Rank 0's messages to
 * workers (RUN, PARK) arrive at once.
 *
 * Worker semantics (sched.h): a parked task waits until the dependencies it
 * was parked behind finish on its worker, then joins the queue without a
 * message; a failed dependency drops every task parked behind it. A
 * steal moves queued tasks that have no parked dependents and were not
 * released locally from a victim to a thief; the victim reports the MOVE in
 * its channel, so the thief's DONE may reach rank 0 first. On a halt each
 * worker reports every queued and parked task unrun.
 */

enum { L_NONE, L_QUEUED, L_RUNNING, L_PARKED };
enum { MSG_DONE, MSG_FAIL, MSG_UNRUN, MSG_MOVE };

typedef struct msg {
    uint8_t kind;
    uint8_t attempt; /* MOVE: the attempt the victim gave away */
    uint32_t task, from, to;
} msg;

typedef struct chan {
    msg *m;
    size_t head, n, cap;
} chan;

typedef struct dcfg {
    bool park, steal, halt, lose, adaptive;
} dcfg;

/* What the runs did, summed over seeds: proof that the paths were taken. */
typedef struct dstats {
    unsigned long runs, events, parks, releases, drops, steals, moves,
        moves_late, moves_stale, probes, halts, unruns, losts, quiescent;
} dstats;

typedef struct drv {
    tf_sched *s;
    const bgraph *g;
    dcfg cfg;
    dstats *st;
    tf_rng r;
    uint32_t nw, slots[MAXW];
    bool lost[MAXW], hrecv[MAXW];
    chan ch[MAXW];
    /* Per task, the workers' side. */
    uint8_t *loc, *local, *mdone;
    uint32_t *locw, *park_w, *waits, *succ_n, *nfail;
    uint64_t *qseq, *batch, *start_at, *done_at;
    uint8_t *waitflag; /* per predecessor slot: parked behind it */
    uint8_t *moving;   /* a MOVE of it is on its way to rank 0 */
    uint64_t clock, seq, nbatch;
    uint64_t halt_at, lose_at[MAXW];
    bool halted;
    bool dispatching; /* inside tf_sched_dispatch: RUN and PARK allowed */
    uint32_t failing; /* task whose FAIL report is being delivered */
    bool ok;
} drv;

static void drv_free(drv *d)
{
    for (uint32_t k = 0; k < MAXW; k++)
        free(d->ch[k].m);
    free(d->loc);
    free(d->local);
    free(d->mdone);
    free(d->locw);
    free(d->park_w);
    free(d->waits);
    free(d->succ_n);
    free(d->nfail);
    free(d->qseq);
    free(d->batch);
    free(d->start_at);
    free(d->done_at);
    free(d->waitflag);
    free(d->moving);
}

static bool drv_init(drv *d, tf_sched *s, const bgraph *g, const dcfg *cfg,
                     dstats *st, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    size_t n = g->n ? g->n : 1, m = g->m ? g->m : 1;
    d->s = s;
    d->g = g;
    d->cfg = *cfg;
    d->st = st;
    d->r = tf_rng_seeded(seed);
    d->failing = TF_NONE;
    d->ok = true;
    d->loc = calloc(n, 1);
    d->local = calloc(n, 1);
    d->mdone = calloc(n, 1);
    d->locw = calloc(n, sizeof *d->locw);
    d->park_w = calloc(n, sizeof *d->park_w);
    d->waits = calloc(n, sizeof *d->waits);
    d->succ_n = calloc(n, sizeof *d->succ_n);
    d->nfail = calloc(n, sizeof *d->nfail);
    d->qseq = calloc(n, sizeof *d->qseq);
    d->batch = calloc(n, sizeof *d->batch);
    d->start_at = calloc(n, sizeof *d->start_at);
    d->done_at = calloc(n, sizeof *d->done_at);
    d->waitflag = calloc(m, 1);
    d->moving = calloc(n, 1);
    if (!CHECK_TRUE(d->loc && d->local && d->mdone && d->locw && d->park_w &&
                    d->waits && d->succ_n && d->nfail && d->qseq && d->batch &&
                    d->start_at && d->done_at && d->waitflag && d->moving)) {
        drv_free(d);
        return false;
    }
    for (uint32_t t = 0; t < g->n; t++)
        d->park_w[t] = TF_NONE;
    return true;
}

static bool chan_push(drv *d, uint32_t k, msg mm)
{
    chan *c = &d->ch[k];
    if (c->n == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 64;
        msg *p = realloc(c->m, ncap * sizeof *p);
        if (!CHECK_TRUE(p))
            return d->ok = false;
        c->m = p;
        c->cap = ncap;
    }
    c->m[c->n++] = mm;
    return true;
}

static bool chan_empty(const drv *d, uint32_t k)
{
    return d->ch[k].head == d->ch[k].n;
}

static bool all_quiet(const drv *d)
{
    for (uint32_t k = 0; k < d->nw; k++)
        if (!chan_empty(d, k))
            return false;
    return true;
}

/* Finished on the workers' side: a real task succeeded, a no-op's inputs did.
 */
static bool model_done(drv *d, uint32_t t)
{
    if (d->mdone[t] || !d->g->noop[t])
        return d->mdone[t];
    for (uint32_t k = d->g->poff[t]; k < d->g->poff[t + 1]; k++)
        if (!model_done(d, d->g->pred[k]))
            return false;
    d->mdone[t] = 1;
    return true;
}

/* Fail the run with a message naming the event and the task. */
#define DFAIL(d, ...) ((d)->ok = CHECK_MSG(false, __VA_ARGS__))

/* Take in the actions rank 0 emitted; RUN and PARK reach the worker at once. */
static void absorb(drv *d)
{
    const bgraph *g = d->g;
    tf_sched *s = d->s;
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    for (size_t i = 0; i < n && d->ok; i++) {
        uint32_t t = a[i].task, w = a[i].worker;
        if (t >= g->n) {
            DFAIL(d, "action kind %u names task %u of %u", a[i].kind, t, g->n);
            break;
        }
        tf_state st = tf_sched_state(s, t);
        switch (a[i].kind) {
        case TF_ACT_RUN:
        case TF_ACT_PARK: {
            bool park = a[i].kind == TF_ACT_PARK;
            d->waits[t] = 0;
            if (!d->dispatching) {
                DFAIL(d, "%s of task %u outside dispatch",
                      park ? "PARK" : "RUN", t);
                break;
            }
            if (w >= d->nw || d->lost[w] || d->loc[t] != L_NONE ||
                st != (park ? TF_ST_PARKED : TF_ST_DISPATCHED) ||
                g->cores[t] > d->slots[w] || g->noop[t] ||
                (park && !d->cfg.park)) {
                DFAIL(d,
                      "%s task %u on worker %u: lost %d, held %u, state %s, "
                      "cores %u of %u, noop %u",
                      park ? "PARK" : "RUN", t, w, w < d->nw && d->lost[w],
                      d->loc[t], tf_state_name(st), g->cores[t],
                      w < d->nw ? d->slots[w] : 0, g->noop[t]);
                break;
            }
            bool cause_ok = !park;
            for (uint32_t k = g->poff[t]; k < g->poff[t + 1] && d->ok; k++) {
                uint32_t p = g->pred[k];
                d->waitflag[k] = 0;
                if (!park && !model_done(d, p))
                    DFAIL(d, "RUN task %u before its dependency %u finished", t,
                          p);
                if (!park || tf_sched_state(s, p) == TF_ST_DONE)
                    continue;
                /* Parked behind p: p placed by this call, on this worker. */
                if (d->batch[p] != d->nbatch || d->locw[p] != w ||
                    (d->loc[p] != L_QUEUED && d->loc[p] != L_PARKED))
                    DFAIL(d,
                          "PARK task %u on worker %u behind %u, which is "
                          "held %u on worker %u, placed by call %" PRIu64
                          " (this is %" PRIu64 ")",
                          t, w, p, d->loc[p], d->locw[p], d->batch[p],
                          d->nbatch);
                d->waitflag[k] = 1;
                d->waits[t]++;
                cause_ok |= (uint32_t)a[i].cause == p;
            }
            if (d->ok && park && (!d->waits[t] || !cause_ok))
                DFAIL(d, "PARK task %u: %u dependencies to wait for, cause %d",
                      t, d->waits[t], a[i].cause);
            d->loc[t] = park ? L_PARKED : L_QUEUED;
            d->locw[t] = w;
            d->local[t] = 0;
            d->qseq[t] = ++d->seq;
            d->batch[t] = d->nbatch;
            if (park) {
                d->park_w[t] = w;
                d->st->parks++;
            }
            break;
        }
        case TF_ACT_RETRY:
        case TF_ACT_FAIL:
            if (t != d->failing || d->loc[t] != L_NONE ||
                st !=
                    (a[i].kind == TF_ACT_RETRY ? TF_ST_READY : TF_ST_FAILED) ||
                a[i].cause != SIM_FAIL_CODE)
                DFAIL(d, "%s for task %u (failing %u), held %u, state %s",
                      a[i].kind == TF_ACT_RETRY ? "RETRY" : "FAIL", t,
                      d->failing, d->loc[t], tf_state_name(st));
            d->failing = TF_NONE;
            break;
        case TF_ACT_SKIP:
            /* Its worker (if any) dropped it already. */
            if (d->loc[t] != L_NONE || st != TF_ST_SKIPPED || d->succ_n[t])
                DFAIL(d, "SKIP for task %u, held %u, state %s, done %u", t,
                      d->loc[t], tf_state_name(st), d->succ_n[t]);
            break;
        default:
            DFAIL(d, "action of unknown kind %u", a[i].kind);
        }
    }
    tf_sched_clear_actions(s);
}

/* Tasks the worker holds on account of the ones in its queue or parked set. */
static uint32_t worker_held(const drv *d, uint32_t k)
{
    uint32_t c = 0;
    for (uint32_t t = 0; t < d->g->n; t++)
        c += d->loc[t] != L_NONE && d->locw[t] == k;
    return c;
}

/*
 * After a dispatch without memory trouble, every task that could have been
 * parked was: its unfinished dependencies all placed on w by this call, it
 * fits w, and w still has room (loads only grow during a call, so w had
 * room when the count completed).
 */
static void check_maximal(drv *d)
{
    const bgraph *g = d->g;
    const tf_sched *s = d->s;
    for (uint32_t v = 0; v < g->n && d->ok; v++) {
        if (tf_sched_state(s, v) != TF_ST_PENDING || g->noop[v])
            continue;
        uint32_t w = TF_NONE;
        bool all = true;
        for (uint32_t k = g->poff[v]; k < g->poff[v + 1] && all; k++) {
            uint32_t p = g->pred[k];
            if (tf_sched_state(s, p) == TF_ST_DONE)
                continue;
            all = d->batch[p] == d->nbatch &&
                  (d->loc[p] == L_QUEUED || d->loc[p] == L_PARKED) &&
                  (w == TF_NONE || d->locw[p] == w);
            w = d->locw[p];
        }
        if (all && w != TF_NONE && g->cores[v] <= d->slots[w] &&
            s->workers[w].ntasks < s->workers[w].depth)
            DFAIL(d,
                  "task %u left PENDING though all its unfinished "
                  "dependencies went to worker %u in this call (load %u of %u)",
                  v, w, s->workers[w].ntasks, s->workers[w].depth);
    }
}

static void ev_dispatch(drv *d)
{
    tf_sched *s = d->s;
    uint32_t before[MAXW], placed[MAXW] = {0};
    for (uint32_t k = 0; k < d->nw; k++)
        before[k] = s->workers[k].ntasks;
    d->nbatch++;
    if (!CHECK_RC(tf_sched_dispatch(s), TF_OK)) {
        d->ok = false;
        return;
    }
    d->dispatching = true;
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    if (d->halted && n)
        DFAIL(d, "dispatch after a halt emitted %zu actions", n);
    for (size_t i = 0; i < n; i++)
        if ((a[i].kind == TF_ACT_RUN || a[i].kind == TF_ACT_PARK) &&
            a[i].worker < d->nw)
            placed[a[i].worker]++;
    absorb(d);
    d->dispatching = false;
    for (uint32_t k = 0; k < d->nw && d->ok; k++) {
        const tf_sched_worker *wk = &s->workers[k];
        if (!CHECK_EQ_U(wk->ntasks, before[k] + placed[k]) ||
            (placed[k] && !CHECK_LE_U(wk->ntasks, wk->depth)))
            d->ok = false;
    }
    if (d->ok && d->cfg.park)
        check_maximal(d);
}

/* The next task worker k would start, or TF_NONE. */
static uint32_t queue_head(const drv *d, uint32_t k)
{
    uint32_t best = TF_NONE;
    for (uint32_t t = 0; t < d->g->n; t++)
        if (d->loc[t] == L_QUEUED && d->locw[t] == k &&
            (best == TF_NONE || d->qseq[t] < d->qseq[best]))
            best = t;
    return best;
}

static bool can_start(const drv *d, uint32_t k)
{
    if (d->lost[k] || d->hrecv[k])
        return false;
    uint32_t h = queue_head(d, k), used = 0;
    if (h == TF_NONE)
        return false;
    for (uint32_t t = 0; t < d->g->n; t++)
        if (d->loc[t] == L_RUNNING && d->locw[t] == k)
            used += d->g->cores[t];
    return used + d->g->cores[h] <= d->slots[k];
}

static void ev_start(drv *d, uint32_t k)
{
    const bgraph *g = d->g;
    uint32_t t = queue_head(d, k);
    for (uint32_t j = g->poff[t]; j < g->poff[t + 1]; j++)
        if (!model_done(d, g->pred[j]))
            DFAIL(d,
                  "task %u started at %" PRIu64 " before its dependency %u "
                  "finished",
                  t, d->clock, g->pred[j]);
    if (d->local[t] && d->park_w[t] != k)
        DFAIL(d, "task %u parked on worker %u started on worker %u", t,
              d->park_w[t], k);
    d->loc[t] = L_RUNNING;
    d->start_at[t] = d->clock;
}

/* Worker k drops every task parked behind u, directly or not. */
static void drop_behind(drv *d, uint32_t u, uint32_t k)
{
    const bgraph *g = d->g;
    for (uint32_t j = g->soff[u]; j < g->soff[u + 1]; j++) {
        uint32_t v = g->succ[j];
        if (d->loc[v] != L_PARKED)
            continue;
        for (uint32_t q = g->poff[v]; q < g->poff[v + 1]; q++) {
            if (g->pred[q] != u || !d->waitflag[q])
                continue;
            if (d->locw[v] != k)
                DFAIL(d, "task %u parked on %u behind %u, which ran on %u", v,
                      d->locw[v], u, k);
            d->loc[v] = L_NONE;
            d->waits[v] = 0;
            for (uint32_t x = g->poff[v]; x < g->poff[v + 1]; x++)
                d->waitflag[x] = 0;
            d->st->drops++;
            drop_behind(d, v, k);
            break;
        }
    }
}

/* A running task ends on its worker, which reports it. */
static void ev_complete(drv *d, uint32_t t)
{
    const bgraph *g = d->g;
    uint32_t k = d->locw[t];
    bool fail = d->nfail[t] < g->plan[t];
    d->loc[t] = L_NONE;
    if (fail) {
        d->nfail[t]++;
        drop_behind(d, t, k);
        chan_push(d, k, (msg){MSG_FAIL, 0, t, k, k});
        return;
    }
    d->succ_n[t]++;
    d->mdone[t] = 1;
    d->done_at[t] = d->clock;
    /* Release what was parked behind t and now waits for nothing. */
    for (uint32_t j = g->soff[t]; j < g->soff[t + 1]; j++) {
        uint32_t v = g->succ[j];
        if (d->loc[v] != L_PARKED)
            continue;
        for (uint32_t q = g->poff[v]; q < g->poff[v + 1]; q++) {
            if (g->pred[q] != t || !d->waitflag[q])
                continue;
            if (d->locw[v] != k)
                DFAIL(d, "task %u parked on %u behind %u, which ran on %u", v,
                      d->locw[v], t, k);
            d->waitflag[q] = 0;
            if (--d->waits[v] == 0) {
                d->loc[v] = L_QUEUED;
                d->local[v] = 1;
                d->qseq[v] = ++d->seq;
                d->st->releases++;
            }
        }
    }
    chan_push(d, k, (msg){MSG_DONE, 0, t, k, k});
}

/*
 * Tasks of victim v a thief may take: queued, not released here, no parked
 * dependents, and not stolen before with the MOVE still on its way (two
 * MOVEs of one task in different channels could reach rank 0 reversed).
 */
static bool stealable(const drv *d, uint32_t t, uint32_t v, uint32_t thief)
{
    const bgraph *g = d->g;
    if (d->loc[t] != L_QUEUED || d->locw[t] != v || d->local[t] ||
        d->moving[t] || g->cores[t] > d->slots[thief])
        return false;
    for (uint32_t j = g->soff[t]; j < g->soff[t + 1]; j++)
        if (d->loc[g->succ[j]] == L_PARKED)
            return false;
    return true;
}

static void ev_steal(drv *d, uint32_t thief, uint32_t victim)
{
    const bgraph *g = d->g;
    uint32_t cand = 0;
    for (uint32_t t = 0; t < g->n; t++)
        cand += stealable(d, t, victim, thief);
    /* The newest half, as a thief takes from the far end of the queue. */
    for (uint32_t take_n = tf_steal_amount(cand); take_n; take_n--) {
        uint32_t best = TF_NONE;
        for (uint32_t t = 0; t < g->n; t++)
            if (stealable(d, t, victim, thief) &&
                (best == TF_NONE || d->qseq[t] > d->qseq[best]))
                best = t;
        d->locw[best] = thief;
        d->qseq[best] = ++d->seq;
        d->moving[best] = 1;
        d->st->steals++;
        chan_push(
            d, victim,
            (msg){MSG_MOVE, d->s->dag.attempts[best], best, victim, thief});
    }
}

/* Rank 0 reads the next report of worker k. */
static void ev_deliver(drv *d, uint32_t k)
{
    tf_sched *s = d->s;
    msg mm = d->ch[k].m[d->ch[k].head++];
    uint32_t t = mm.task;
    tf_state st = tf_sched_state(s, t);
    int rc;
    switch (mm.kind) {
    case MSG_DONE:
        if (!CHECK_MSG(tf_sched_task_done(s, t) == TF_OK,
                       "DONE of task %u from worker %u refused (state %s)", t,
                       k, tf_state_name(st)))
            d->ok = false;
        if (d->cfg.adaptive)
            tf_sched_observe(s, k, 1000 + tf_rng_below(&d->r, 1000000));
        break;
    case MSG_FAIL:
        d->failing = t;
        if (!CHECK_MSG(tf_sched_task_failed(s, t, SIM_FAIL_CODE) == TF_OK,
                       "FAIL of task %u from worker %u refused (state %s)", t,
                       k, tf_state_name(st)))
            d->ok = false;
        break;
    case MSG_UNRUN:
        rc = tf_sched_task_unrun(s, t);
        d->st->unruns++;
        /* Refused only when an earlier report already skipped it. */
        if (st == TF_ST_DISPATCHED || st == TF_ST_PARKED
                ? rc != TF_OK
                : rc != TF_ESTATE || st != TF_ST_SKIPPED || !d->halted)
            DFAIL(d, "unrun of task %u (%s) returned %s", t, tf_state_name(st),
                  tf_err_name(rc));
        break;
    case MSG_MOVE:
        d->moving[t] = 0;
        /*
         * The driver drops a MOVE whose attempt has ended (the thief's
         * report came first and the task was dispatched again): the core
         * cannot tell attempts apart.
         */
        if (st == TF_ST_DISPATCHED && s->dag.attempts[t] != mm.attempt) {
            d->st->moves_stale++;
            break;
        }
        rc = tf_sched_task_moved(s, t, mm.from, mm.to);
        if (st == TF_ST_DISPATCHED) {
            if (rc != TF_OK)
                DFAIL(d, "move of task %u from %u to %u returned %s", t,
                      mm.from, mm.to, tf_err_name(rc));
            d->st->moves++;
        } else {
            /* The thief's report came first: the task left the victim then. */
            if (rc != TF_ESTATE)
                DFAIL(d, "late move of task %u (%s) returned %s", t,
                      tf_state_name(st), tf_err_name(rc));
            d->st->moves_late++;
        }
        break;
    default:
        DFAIL(d, "bad message kind %u", mm.kind);
    }
    if (d->ok)
        absorb(d);
    if (d->ok && d->failing != TF_NONE)
        DFAIL(d, "task_failed(%u) gave neither RETRY nor FAIL", d->failing);
}

static void ev_halt(drv *d)
{
    if (!CHECK_RC(tf_sched_halt(d->s), TF_OK)) {
        d->ok = false;
        return;
    }
    d->halted = true;
    d->st->halts++;
    absorb(d);
    if (d->s->count[TF_ST_PENDING] || d->s->count[TF_ST_READY])
        DFAIL(d, "after a halt %u tasks pending, %u ready",
              d->s->count[TF_ST_PENDING], d->s->count[TF_ST_READY]);
}

/* Worker k learns of the halt: it reports every queued and parked task. */
static void ev_halt_recv(drv *d, uint32_t k)
{
    bool up = tf_rng_below(&d->r, 2);
    for (uint32_t i = 0; i < d->g->n; i++) {
        /* A varying order: parked tasks before or after their anchors. */
        uint32_t t = up ? i : d->g->n - 1 - i;
        if ((d->loc[t] != L_QUEUED && d->loc[t] != L_PARKED) || d->locw[t] != k)
            continue;
        d->loc[t] = L_NONE;
        d->waits[t] = 0;
        for (uint32_t q = d->g->poff[t]; q < d->g->poff[t + 1]; q++)
            d->waitflag[q] = 0;
        chan_push(d, k, (msg){MSG_UNRUN, 0, t, k, k});
    }
    d->hrecv[k] = true;
}

/*
 * A worker may be lost once its reports are all in and no MOVE to it is
 * on its way (else the task would live on two workers by rank 0's count).
 * Worker 0, the widest, survives so that every task can still run.
 */
static bool can_lose(const drv *d, uint32_t k)
{
    if (k == 0 || d->lost[k] || !chan_empty(d, k))
        return false;
    for (uint32_t j = 0; j < d->nw; j++)
        for (size_t i = d->ch[j].head; i < d->ch[j].n; i++)
            if (d->ch[j].m[i].kind == MSG_MOVE && d->ch[j].m[i].to == k)
                return false;
    return true;
}

static void ev_lose(drv *d, uint32_t k)
{
    if (!CHECK_RC(tf_sched_worker_lost(d->s, k), TF_OK)) {
        d->ok = false;
        return;
    }
    d->lost[k] = true;
    d->st->losts++;
    for (uint32_t t = 0; t < d->g->n; t++)
        if (d->loc[t] != L_NONE && d->locw[t] == k) {
            d->loc[t] = L_NONE;
            d->waits[t] = 0;
            for (uint32_t q = d->g->poff[t]; q < d->g->poff[t + 1]; q++)
                d->waitflag[q] = 0;
        }
    absorb(d);
    if (d->s->workers[k].ntasks)
        DFAIL(d, "lost worker %u still counts %u tasks", k,
              d->s->workers[k].ntasks);
}

/*
 * With every report read, rank 0's view must be the workers' exactly: a
 * DISPATCHED task is queued or running on its worker, a PARKED one parked
 * there, and the loads agree.
 */
static void check_quiescent(drv *d)
{
    const tf_sched *s = d->s;
    d->st->quiescent++;
    for (uint32_t t = 0; t < d->g->n && d->ok; t++) {
        tf_state st = tf_sched_state(s, t);
        uint8_t want = st == TF_ST_PARKED ? L_PARKED : L_NONE;
        bool held = d->loc[t] != L_NONE;
        bool ok = st == TF_ST_DISPATCHED
                      ? held && d->loc[t] != L_PARKED &&
                            d->locw[t] == s->dag.worker[t]
                      : d->loc[t] == want &&
                            (!held || d->locw[t] == s->dag.worker[t]);
        if (!ok)
            DFAIL(d,
                  "all reports read, task %u is %s on worker %u at rank 0 but "
                  "held %u by worker %u",
                  t, tf_state_name(st), s->dag.worker[t], d->loc[t],
                  d->locw[t]);
    }
    for (uint32_t k = 0; k < d->nw && d->ok; k++)
        if (!CHECK_EQ_U(s->workers[k].ntasks, worker_held(d, k)))
            d->ok = false;
}

/*
 * A move rank 0 must refuse: a DISPATCHED task with PARKED dependents (the
 * workers never ask for one; a confused driver might). Nothing may change.
 */
static void probe_move(drv *d)
{
    tf_sched *s = d->s;
    uint32_t n = d->g->n, start = tf_rng_below(&d->r, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = (start + i) % n, w = s->dag.worker[t];
        if (tf_sched_state(s, t) != TF_ST_DISPATCHED)
            continue;
        bool parked = false;
        for (uint32_t j = d->g->soff[t]; j < d->g->soff[t + 1]; j++)
            parked |= tf_sched_state(s, d->g->succ[j]) == TF_ST_PARKED;
        if (!parked)
            continue;
        uint32_t to = (w + 1) % d->nw, n0 = s->workers[w].ntasks,
                 n1 = s->workers[to].ntasks;
        int rc = tf_sched_task_moved(s, t, w, to);
        if (rc != TF_ESTATE || s->dag.worker[t] != w ||
            s->workers[w].ntasks != n0 || s->workers[to].ntasks != n1)
            DFAIL(d,
                  "move of task %u with parked dependents from %u to %u: "
                  "%s, now on %u",
                  t, w, to, tf_err_name(rc), s->dag.worker[t]);
        d->st->probes++;
        return;
    }
}

enum { E_DISPATCH, E_DELIVER, E_START, E_COMPLETE, E_STEAL, E_HRECV, E_COUNT };

/* One random event; false when none is possible. */
static bool drv_step(drv *d)
{
    const bgraph *g = d->g;
    uint32_t n = g->n, cand[E_COUNT] = {0}, weight[E_COUNT] = {0};
    uint32_t running = 0;
    for (uint32_t t = 0; t < n; t++)
        running += d->loc[t] == L_RUNNING;
    for (uint32_t k = 0; k < d->nw; k++) {
        cand[E_DELIVER] += !chan_empty(d, k);
        cand[E_START] += can_start(d, k);
        cand[E_HRECV] += d->halted && !d->hrecv[k] && !d->lost[k];
    }
    cand[E_COMPLETE] = running;
    weight[E_DISPATCH] = d->s->count[TF_ST_READY] && !d->halted ? 20 : 1;
    weight[E_DELIVER] = cand[E_DELIVER] ? 40 : 0;
    weight[E_START] = cand[E_START] ? 30 : 0;
    weight[E_COMPLETE] = running ? 30 : 0;
    weight[E_STEAL] = d->cfg.steal && d->nw > 1 && !d->halted ? 10 : 0;
    weight[E_HRECV] = cand[E_HRECV] ? 15 : 0;
    bool useful = cand[E_DELIVER] || cand[E_START] || running ||
                  cand[E_HRECV] || (d->s->count[TF_ST_READY] && !d->halted);
    if (!useful)
        return false;

    d->clock++;
    d->st->events++;
    if (d->cfg.halt && !d->halted && d->clock >= d->halt_at) {
        ev_halt(d);
        return true;
    }
    for (uint32_t k = 1; k < d->nw && d->cfg.lose; k++)
        if (d->clock >= d->lose_at[k] && can_lose(d, k)) {
            ev_lose(d, k);
            return true;
        }

    uint32_t total = 0;
    for (int e = 0; e < E_COUNT; e++)
        total += weight[e];
    uint32_t x = tf_rng_below(&d->r, total);
    int e = 0;
    while (x >= weight[e])
        x -= weight[e++];
    uint32_t pick = cand[e] ? tf_rng_below(&d->r, cand[e]) : 0;
    if (d->nw > 1 && !tf_rng_below(&d->r, 8))
        probe_move(d);
    switch (e) {
    case E_DISPATCH:
        ev_dispatch(d);
        break;
    case E_DELIVER:
    case E_START:
    case E_HRECV:
        for (uint32_t k = 0; k < d->nw; k++) {
            bool c = e == E_DELIVER ? !chan_empty(d, k)
                     : e == E_START ? can_start(d, k)
                                    : !d->hrecv[k] && !d->lost[k];
            if (c && !pick--) {
                if (e == E_DELIVER)
                    ev_deliver(d, k);
                else if (e == E_START)
                    ev_start(d, k);
                else
                    ev_halt_recv(d, k);
                break;
            }
        }
        break;
    case E_COMPLETE:
        for (uint32_t t = 0; t < n; t++)
            if (d->loc[t] == L_RUNNING && !pick--) {
                ev_complete(d, t);
                break;
            }
        break;
    case E_STEAL: {
        uint32_t thief = tf_rng_below(&d->r, d->nw);
        uint32_t victim = tf_rng_below(&d->r, d->nw);
        if (thief != victim && !d->lost[thief] && !d->lost[victim] &&
            !d->hrecv[thief] && !d->hrecv[victim])
            ev_steal(d, thief, victim);
        break;
    }
    default:
        break;
    }
    return true;
}

/*
 * Run g to the end on workers of the given slots and depths. Writes each
 * task's final state to final. Returns false after recording a failure.
 */
static bool drive_graph(const bgraph *g, const dcfg *cfg, uint32_t nw,
                        const uint32_t *slots, const uint32_t *depth,
                        uint64_t seed, dstats *st, uint8_t *final)
{
    tf_sched s;
    drv d;
    bool ok = false;
    if (!bg_load(&s, g, cfg->park))
        goto out_with_sched;
    if (!drv_init(&d, &s, g, cfg, st, seed))
        goto out_with_sched;
    st->runs++;
    d.nw = nw;
    for (uint32_t k = 0; k < nw; k++) {
        uint32_t w = TF_NONE;
        if (!CHECK_RC(tf_sched_add_worker(&s, slots[k], depth[k], &w), TF_OK) ||
            !CHECK_EQ_U(w, k))
            goto out_with_drv;
        d.slots[k] = slots[k];
    }
    s.adaptive = cfg->adaptive;
    /* A run takes 2-3 events per task: halt and lose within that. */
    d.halt_at = 1 + tf_rng_below(&d.r, 2 * g->n + 10);
    for (uint32_t k = 0; k < MAXW; k++)
        d.lose_at[k] = tf_rng_below(&d.r, 2) ? 1 + tf_rng_below(&d.r, 2 * g->n)
                                             : UINT64_MAX;
    absorb(&d); /* what the seal emitted (nothing: no doomed tasks) */
    uint64_t max_events = 400 * (uint64_t)g->n + 1000;
    while (d.ok) {
        if (!drv_step(&d))
            break;
        if (d.ok && !CHECK_SCHED(&s))
            d.ok = false;
        if (d.ok && all_quiet(&d))
            check_quiescent(&d);
        if (d.ok && d.clock > max_events)
            DFAIL(&d, "no end after %" PRIu64 " events", d.clock);
    }
    if (!d.ok)
        goto out_with_drv;

    /* The end: everything terminal, nothing held, each success reported once.
     */
    ok = CHECK_MSG(tf_sched_is_finished(&s),
                   "stuck: %u pending, %u ready, %u dispatched, %u parked",
                   s.count[TF_ST_PENDING], s.count[TF_ST_READY],
                   s.count[TF_ST_DISPATCHED], s.count[TF_ST_PARKED]) &&
         CHECK_TRUE(all_quiet(&d));
    for (uint32_t k = 0; ok && k < nw; k++)
        ok = CHECK_EQ_U(s.workers[k].ntasks, 0) &&
             CHECK_EQ_U(worker_held(&d, k), 0);
    for (uint32_t t = 0; ok && t < g->n; t++) {
        tf_state fs = tf_sched_state(&s, t);
        final[t] = (uint8_t)fs;
        ok = CHECK_MSG(tf_state_is_terminal(fs), "task %u ends %s", t,
                       tf_state_name(fs)) &&
             CHECK_MSG(g->noop[t] ? d.succ_n[t] == 0
                                  : d.succ_n[t] == (fs == TF_ST_DONE),
                       "task %u ends %s, completed %u times by a worker", t,
                       tf_state_name(fs), d.succ_n[t]);
        if (ok && fs == TF_ST_DONE && g->noop[t])
            ok = CHECK_MSG(model_done(&d, t),
                           "no-op %u DONE before its "
                           "dependencies",
                           t);
        if (ok && fs == TF_ST_FAILED)
            ok = CHECK_MSG(d.nfail[t] > 0, "task %u FAILED without failing", t);
    }
out_with_drv:
    drv_free(&d);
out_with_sched:
    tf_sched_free(&s);
    return ok;
}

/* Random attributes and a failure plan for g's tasks. */
static void bg_attrs(bgraph *g, tf_rng *r, uint32_t max_slots,
                     uint32_t fail_pct)
{
    bool prios = tf_rng_below(r, 2);
    for (uint32_t t = 0; t < g->n; t++) {
        g->prio[t] = prios ? rng_range(r, -2, 2) : 0;
        g->cores[t] = max_slots > 1 && !tf_rng_below(r, 6) ? 2 : 1;
        g->retries[t] = (uint8_t)tf_rng_below(r, 3);
        g->noop[t] = !tf_rng_below(r, 30);
        g->plan[t] = !g->noop[t] && tf_rng_below(r, 100) < fail_pct
                         ? (uint8_t)(1 + tf_rng_below(r, 2))
                         : 0;
    }
}

#define RANDOM_SEEDS 2000u

static void test_random_parking(void)
{
    dstats st = {0}, ref_st = {0};
    unsigned compared = 0, parked_runs = 0;
    for (uint64_t seed = 1; seed <= RANDOM_SEEDS; seed++) {
        tf_rng r = tf_rng_seeded(seed);
        shape sh = (shape)(seed % SH_COUNT);
        uint32_t nw = 1 + tf_rng_below(&r, 4), slots[MAXW], depth[MAXW];
        slots[0] = 1 + tf_rng_below(&r, 4);
        for (uint32_t k = 0; k < nw; k++) {
            if (k)
                slots[k] = 1 + tf_rng_below(&r, slots[0]);
            depth[k] = tf_rng_below(&r, 3)
                           ? 1 + tf_rng_below(&r, 4 * slots[k] + 4)
                           : 64;
        }
        dcfg cfg = {true, seed % 3 != 0, seed % 4 == 1, seed % 5 == 2,
                    seed % 7 == 3};
        uint32_t fail_pct = seed % 3 == 1 ? 0 : seed % 3 == 2 ? 4 : 12;
        bgraph g;
        if (!bg_shape(&g, &r, sh, 10 + tf_rng_below(&r, 90),
                      tf_rng_below(&r, 2)))
            break;
        bg_attrs(&g, &r, slots[0], fail_pct);
        uint8_t *final = malloc(g.n), *ref = malloc(g.n), *want = malloc(g.n);
        bool ok = CHECK_TRUE(final && ref && want);
        unsigned long parks0 = st.parks;
        ok = ok && drive_graph(&g, &cfg, nw, slots, depth, seed, &st, final);
        parked_runs += st.parks > parks0;
        if (ok && !cfg.halt) {
            /* Same graph and failures, no parking or stealing: same end. */
            dcfg plain = {false, false, false, cfg.lose, false};
            ok = drive_graph(&g, &plain, nw, slots, depth, seed + 1000000,
                             &ref_st, ref) &&
                 bg_expect(&g, want);
            for (uint32_t t = 0; ok && t < g.n; t++)
                ok = CHECK_MSG(final[t] == want[t] && ref[t] == want[t],
                               "task %u ends %s with parking, %s without, "
                               "expected %s",
                               t, tf_state_name((tf_state) final[t]),
                               tf_state_name((tf_state)ref[t]),
                               tf_state_name((tf_state)want[t]));
            compared += ok;
        }
        if (!ok)
            fprintf(
                stderr,
                "\n    random run failed: seed %" PRIu64 ", %s of %u tasks, "
                "%u workers, park %d steal %d halt %d lose %d adaptive %d\n",
                seed, shape_names[sh], g.n, nw, cfg.park, cfg.steal, cfg.halt,
                cfg.lose, cfg.adaptive);
        free(want);
        free(ref);
        free(final);
        bg_free(&g);
        if (!ok)
            break;
    }
    printf("\n    %lu runs, %lu events, %lu parks, %lu local releases, %lu "
           "dropped parked, %lu stolen: %lu moves, %lu after the thief's "
           "report, %lu stale, %lu refused as asked; %lu halts, %lu unrun "
           "reports, %lu workers lost, %lu quiescent checks; %u runs compared "
           "with the run without parking\n",
           st.runs, st.events, st.parks, st.releases, st.drops, st.steals,
           st.moves, st.moves_late, st.moves_stale, st.probes, st.halts,
           st.unruns, st.losts, st.quiescent, compared);
    /* The runs must have taken every path they exist to test. */
    CHECK_LE_U(RANDOM_SEEDS / 2, parked_runs);
    CHECK_LE_U(1000, st.releases);
    CHECK_LE_U(50, st.drops);
    CHECK_LE_U(100, st.moves);
    CHECK_LE_U(20, st.moves_late);
    CHECK_LE_U(100, st.probes);
    CHECK_LE_U(RANDOM_SEEDS / 8, st.halts);
    CHECK_LE_U(100, st.unruns);
    CHECK_LE_U(20, st.losts);
    CHECK_LE_U(RANDOM_SEEDS / 4, compared);
    CHECK_EQ_U(ref_st.parks, 0);
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
    static const test_def park_tests[] = {
        TEST(test_park_chain),       TEST(test_park_stencil_one),
        TEST(test_park_stencil_two), TEST(test_park_depth),
        TEST(test_park_cores),       TEST(test_park_cores_too_many),
        TEST(test_park_noop),        TEST(test_park_done_deps),
        TEST(test_park_retry),       TEST(test_park_final_failure),
        TEST(test_park_unrun),       TEST(test_park_halt),
        TEST(test_park_lost),
    };
    static const test_def move_tests[] = {
        TEST(test_moves),
    };
    static const test_def window_tests[] = {
        TEST(test_window_rule),       TEST(test_window_long_boundary),
        TEST(test_window_huge_lead),  TEST(test_observe),
        TEST(test_waited),            TEST(test_first_duration),
        TEST(test_adaptive_dispatch),
    };
    static const test_def steal_tests[] = {
        TEST(test_loc_distance),
        TEST(test_steal_order),
        TEST(test_steal_shuffle),
        TEST(test_steal_amount),
    };
    static const test_def random_tests[] = {
        TEST(test_random_parking),
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (!ADD_SUITE("parking", park_tests) || !ADD_SUITE("moves", move_tests) ||
        !ADD_SUITE("windows", window_tests) ||
        !ADD_SUITE("steal policy", steal_tests) ||
        !ADD_SUITE("randomized", random_tests)) {
        fprintf(stderr, "test_balance: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    return check_run();
}
