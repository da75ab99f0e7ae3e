/* Unit tests of dependency kinds, patterns over ids and halts, against a reference model. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "check.h"
#include "dag.h"
#include "rng.h"
#include "sched.h"
#include "taskfarm_status.h"
#include "taskfile.h"

/*
 * The rule every test checks, from src/core/sched.h: a task's outcome
 * follows from its dependencies' outcomes alone, whatever the order in
 * which they end. Written here once, apart from the scheduler:
 *   - an OK dependency that failed or was skipped skips the task;
 *   - else, with NOTOK dependencies none of which failed or was skipped,
 *     the task is not needed (DONE without an attempt);
 *   - else it runs, and fails if it fails more times than its retries.
 * A task not needed counts as done for its own dependents.
 */
enum { OUT_DONE, OUT_FAILED, OUT_SKIPPED, OUT_UNNEEDED };

static const char *const out_names[] = {"done", "failed", "skipped",
                                        "not needed"};

typedef struct kedge {
    uint32_t from, to;
    uint8_t kind;
} kedge;

/* A graph whose edges go from lower to higher indexes (a topological order). */
typedef struct kgraph {
    uint32_t n, m;
    kedge *e;
    uint8_t *fails;   /* failing attempts before one succeeds */
    uint8_t *retries; /* extra attempts after a failure */
} kgraph;

static void kgraph_free(kgraph *g)
{
    free(g->e);
    free(g->fails);
    free(g->retries);
    memset(g, 0, sizeof *g);
}

static bool kgraph_init(kgraph *g, uint32_t n, uint32_t m)
{
    g->n = n;
    g->m = 0;
    g->e = calloc(m ? m : 1, sizeof *g->e);
    g->fails = calloc(n, 1);
    g->retries = calloc(n, 1);
    return CHECK_TRUE(g->e && g->fails && g->retries);
}

static void kgraph_edge(kgraph *g, uint32_t from, uint32_t to, uint8_t kind)
{
    g->e[g->m++] = (kedge){from, to, kind};
}

/* The outcome the rule above gives each task, into out[]. */
static void reference(const kgraph *g, uint8_t *out)
{
    for (uint32_t t = 0; t < g->n; t++) {
        bool bad_ok = false, notok = false, handled = false;
        for (uint32_t k = 0; k < g->m; k++) {
            if (g->e[k].to != t)
                continue;
            uint8_t o = out[g->e[k].from];
            bool bad = o == OUT_FAILED || o == OUT_SKIPPED;
            bad_ok |= g->e[k].kind == TF_EDGE_OK && bad;
            notok |= g->e[k].kind == TF_EDGE_NOTOK;
            handled |= g->e[k].kind == TF_EDGE_NOTOK && bad;
        }
        out[t] = bad_ok               ? OUT_SKIPPED
                 : notok && !handled  ? OUT_UNNEEDED
                 : g->fails[t] > g->retries[t] ? OUT_FAILED
                                              : OUT_DONE;
    }
}

/* The scheduler's outcome of a finished task. */
static uint8_t outcome(const tf_sched *s, uint32_t t)
{
    switch (tf_sched_state(s, t)) {
    case TF_ST_DONE:
        return tf_sched_is_unneeded(s, t) ? OUT_UNNEEDED : OUT_DONE;
    case TF_ST_FAILED:
        return OUT_FAILED;
    case TF_ST_SKIPPED:
        return OUT_SKIPPED;
    default:
        return 255;
    }
}

/* Whether a dependency in state st lets a task of `kind` start. */
static bool lets_start(uint8_t kind, tf_state st)
{
    return kind == TF_EDGE_OK ? st == TF_ST_DONE : tf_state_is_terminal(st);
}

/*
 * Drive g through the scheduler to its end: workers of 1 or 2 slots,
 * tasks completed in random order (seed), every call followed by
 * tf_sched_check. halt_at: halt after that many reports (or never, when
 * larger than the run). soon-style and now-style halts are the same to
 * the scheduler; the tasks it had dispatched still report. Checks on the
 * way: a RUN only once every dependency lets the task start; exactly one
 * terminal event per task (a FAIL, SKIP or UNNEEDED action, or its done
 * report). With no halt, the end states equal the reference's.
 */
typedef struct drive {
    tf_sched s;
    uint32_t *running; /* dispatched, not reported */
    uint8_t *attempt, *ended;
    uint32_t nrun;
    uint64_t reports;
    bool halted;
} drive;

/* Take the pending actions: note terminal ones, queue the RUNs. */
static bool absorb(drive *D, const kgraph *g, uint32_t **pred_off,
                   uint32_t *preds)
{
    size_t n;
    const tf_action *a = tf_sched_actions(&D->s, &n);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        uint32_t t = a[i].task;
        switch (a[i].kind) {
        case TF_ACT_RUN:
            ok &= CHECK_MSG(!D->halted, "RUN of task %u after a halt", t);
            for (uint32_t k = (*pred_off)[t]; k < (*pred_off)[t + 1]; k++) {
                const kedge *e = &g->e[preds[k]];
                ok &= CHECK_MSG(lets_start(e->kind, tf_sched_state(&D->s,
                                                                   e->from)),
                                "task %u started while its dependency %u "
                                "(kind %u) is %s",
                                t, e->from, e->kind,
                                tf_state_name(tf_sched_state(&D->s, e->from)));
            }
            D->running[D->nrun++] = t;
            break;
        case TF_ACT_FAIL:
        case TF_ACT_SKIP:
        case TF_ACT_UNNEEDED:
            ok &= CHECK_MSG(!D->ended[t], "task %u ended twice (kind %u)", t,
                            a[i].kind);
            D->ended[t] = 1;
            break;
        case TF_ACT_RETRY:
            break;
        default:
            ok &= CHECK_MSG(false, "unexpected action %u", a[i].kind);
        }
    }
    tf_sched_clear_actions(&D->s);
    return ok && CHECK_SCHED(&D->s);
}

static bool run_kgraph(const kgraph *g, uint64_t seed, uint64_t halt_at,
                       bool order_edges)
{
    tf_rng r = tf_rng_seeded(seed);
    drive D;
    memset(&D, 0, sizeof D);
    bool ok = CHECK_RC(tf_sched_init(&D.s), TF_OK);
    D.running = calloc(g->n + 1, sizeof *D.running);
    D.attempt = calloc(g->n + 1, 1);
    D.ended = calloc(g->n + 1, 1);
    uint32_t *pred_off = calloc(g->n + 1, sizeof *pred_off);
    uint32_t *preds = calloc(g->m + 1, sizeof *preds);
    uint8_t *want = calloc(g->n + 1, 1);
    ok &= CHECK_TRUE(D.running && D.attempt && D.ended && pred_off && preds &&
                     want);
    if (!ok)
        goto out;
    for (uint32_t k = 0; k < g->m; k++)
        pred_off[g->e[k].to + 1]++;
    for (uint32_t t = 0; t < g->n; t++)
        pred_off[t + 1] += pred_off[t];
    {
        uint32_t *fill = calloc(g->n + 1, sizeof *fill);
        if (!CHECK_TRUE(fill))
            goto out;
        memcpy(fill, pred_off, g->n * sizeof *fill);
        for (uint32_t k = 0; k < g->m; k++)
            preds[fill[g->e[k].to]++] = k;
        free(fill);
    }
    for (uint32_t t = 0; t < g->n && ok; t++) {
        uint32_t idx;
        ok &= CHECK_RC(tf_sched_add_task(&D.s, 0, 1, g->retries[t], &idx),
                       TF_OK);
    }
    for (uint32_t k = 0; k < g->m && ok; k++) {
        const kedge *e = &g->e[k];
        /* OK edges both ways: data edges and ordering edges. */
        int rc = e->kind == TF_EDGE_OK && !order_edges
                     ? tf_sched_add_dep(&D.s, e->from, e->to)
                     : tf_sched_add_order_dep(&D.s, e->from, e->to, e->kind);
        ok &= CHECK_RC(rc, TF_OK) && CHECK_SCHED(&D.s);
    }
    uint32_t nw = 1 + tf_rng_below(&r, 3);
    for (uint32_t w = 0; w < nw && ok; w++) {
        uint32_t id, slots = 1 + tf_rng_below(&r, 2);
        ok &= CHECK_RC(tf_sched_add_worker(&D.s, slots, 2 * slots, &id), TF_OK);
    }
    ok = ok && CHECK_RC(tf_sched_seal(&D.s, NULL, 0, NULL), TF_OK) &&
         absorb(&D, g, &pred_off, preds);
    while (ok && !tf_sched_is_finished(&D.s)) {
        ok &= CHECK_RC(tf_sched_dispatch(&D.s), TF_OK) &&
              absorb(&D, g, &pred_off, preds);
        if (!ok || !CHECK_MSG(D.nrun > 0, "nothing runs, nothing finished"))
            break;
        uint32_t i = tf_rng_below(&r, D.nrun);
        uint32_t t = D.running[i];
        D.running[i] = D.running[--D.nrun];
        if (D.attempt[t]++ < g->fails[t]) {
            ok &= CHECK_RC(tf_sched_task_failed(&D.s, t, TF_EIO), TF_OK);
        } else {
            ok &= CHECK_RC(tf_sched_task_done(&D.s, t), TF_OK);
            ok &= CHECK_MSG(!D.ended[t], "task %u ended twice", t);
            D.ended[t] = 1;
        }
        ok = ok && absorb(&D, g, &pred_off, preds);
        if (ok && ++D.reports == halt_at) {
            ok &= CHECK_RC(tf_sched_halt(&D.s), TF_OK);
            D.halted = true;
            ok = ok && absorb(&D, g, &pred_off, preds);
        }
    }
    for (uint32_t t = 0; t < g->n && ok; t++)
        ok &= CHECK_MSG(D.ended[t], "task %u (%s) never ended", t,
                        tf_state_name(tf_sched_state(&D.s, t)));
    if (!ok || D.halted)
        goto out;
    reference(g, want);
    for (uint32_t t = 0; t < g->n && ok; t++) {
        uint8_t got = outcome(&D.s, t);
        ok &= CHECK_MSG(got == want[t], "seed %llu: task %u is %s, want %s",
                        (unsigned long long)seed, t,
                        got < 4 ? out_names[got] : "not ended",
                        out_names[want[t]]);
        if (got == OUT_UNNEEDED)
            ok &= CHECK_EQ_U(D.s.dag.attempts[t], 0);
    }
out:
    free(want);
    free(preds);
    free(pred_off);
    free(D.ended);
    free(D.attempt);
    free(D.running);
    tf_sched_free(&D.s);
    return ok;
}

/* ------------------------------------------------------------------------ */

/*
 * Every kind against every outcome of its dependency p: done, failed,
 * skipped (its own OK dependency q failed), not needed (a NOTOK handler of
 * a task that succeeded), failed after a retry, done after a retry. The
 * dependent v is then followed by one task of each kind (w OK, x ANY, y
 * NOTOK), so that v's own outcome is seen by its dependents too.
 */
static void test_kind_table(void)
{
    enum { Q, P, V, W, X, Y, N };
    enum { P_DONE, P_FAILED, P_SKIPPED, P_UNNEEDED, P_RETRY_FAIL,
           P_RETRY_DONE, NCASE };
    static const char *const cases[] = {"done", "failed", "skipped",
                                        "not needed", "failed after a retry",
                                        "done after a retry"};
    for (uint8_t kind = 0; kind <= TF_EDGE_NOTOK; kind++) {
        for (int c = 0; c < NCASE; c++) {
            kgraph g;
            if (!kgraph_init(&g, N, 8))
                return;
            /* q feeds p: q fails to skip p, or p handles q's success. */
            if (c == P_SKIPPED)
                kgraph_edge(&g, Q, P, TF_EDGE_OK);
            if (c == P_UNNEEDED)
                kgraph_edge(&g, Q, P, TF_EDGE_NOTOK);
            g.fails[Q] = c == P_SKIPPED ? 1 : 0;
            g.fails[P] = c == P_FAILED ? 1 : c >= P_RETRY_FAIL ? 1 : 0;
            g.retries[P] = c == P_RETRY_DONE ? 1 : 0;
            if (c == P_RETRY_FAIL) {
                g.fails[P] = 2;
                g.retries[P] = 1;
            }
            kgraph_edge(&g, P, V, kind);
            kgraph_edge(&g, V, W, TF_EDGE_OK);
            kgraph_edge(&g, V, X, TF_EDGE_ANY);
            kgraph_edge(&g, V, Y, TF_EDGE_NOTOK);
            uint8_t want[N];
            reference(&g, want);
            /* The reference against the rules as docs/taskfile.md says. */
            bool p_ok = c == P_DONE || c == P_UNNEEDED || c == P_RETRY_DONE;
            uint8_t v = kind == TF_EDGE_OK    ? (p_ok ? OUT_DONE : OUT_SKIPPED)
                        : kind == TF_EDGE_ANY ? OUT_DONE
                        : p_ok                ? OUT_UNNEEDED
                                              : OUT_DONE;
            CHECK_MSG(want[V] == v, "kind %u, p %s: v is %s, want %s", kind,
                      cases[c], out_names[want[V]], out_names[v]);
            CHECK_MSG(want[W] == (v == OUT_SKIPPED ? OUT_SKIPPED : OUT_DONE),
                      "kind %u, p %s: w is %s", kind, cases[c],
                      out_names[want[W]]);
            CHECK_MSG(want[X] == OUT_DONE, "kind %u, p %s: x is %s", kind,
                      cases[c], out_names[want[X]]);
            CHECK_MSG(want[Y] ==
                          (v == OUT_SKIPPED ? OUT_DONE : OUT_UNNEEDED),
                      "kind %u, p %s: y is %s", kind, cases[c],
                      out_names[want[Y]]);
            for (uint64_t seed = 1; seed <= 8; seed++) {
                if (!run_kgraph(&g, seed, UINT64_MAX, seed & 1))
                    break;
            }
            kgraph_free(&g);
        }
    }
}

/*
 * A mix of kinds on one task: every condition must hold. h waits for a
 * (OK), b (ANY) and c, d (NOTOK): it runs only when a succeeded and c or d
 * did not; a failure of a skips it even when c failed; b's outcome never
 * matters. All 16 outcomes of a, b, c, d.
 */
static void test_mixed_kinds(void)
{
    enum { A, B, C, D, H, AFTER, N };
    for (unsigned mask = 0; mask < 16; mask++) {
        kgraph g;
        if (!kgraph_init(&g, N, 8))
            return;
        for (int k = 0; k < 4; k++)
            g.fails[k] = (mask >> k) & 1;
        kgraph_edge(&g, A, H, TF_EDGE_OK);
        kgraph_edge(&g, B, H, TF_EDGE_ANY);
        kgraph_edge(&g, C, H, TF_EDGE_NOTOK);
        kgraph_edge(&g, D, H, TF_EDGE_NOTOK);
        kgraph_edge(&g, H, AFTER, TF_EDGE_OK);
        uint8_t want[N];
        reference(&g, want);
        bool a_ok = !(mask & 1), handled = (mask & 4) || (mask & 8);
        uint8_t h = !a_ok ? OUT_SKIPPED : handled ? OUT_DONE : OUT_UNNEEDED;
        CHECK_MSG(want[H] == h, "mask %u: h is %s, want %s", mask,
                  out_names[want[H]], out_names[h]);
        for (uint64_t seed = 1; seed <= 12; seed++)
            if (!run_kgraph(&g, seed * 31 + mask, UINT64_MAX, seed & 1))
                break;
        kgraph_free(&g);
    }
}

/*
 * Random graphs with random kinds, failures and retries, completed in
 * random orders: the scheduler agrees with the reference every time.
 */
static void test_random_kinds(void)
{
    for (uint64_t seed = 1; seed <= 300; seed++) {
        tf_rng r = tf_rng_seeded(seed);
        uint32_t n = 2 + tf_rng_below(&r, 40);
        kgraph g;
        if (!kgraph_init(&g, n, n * 4))
            return;
        for (uint32_t t = 1; t < n; t++) {
            uint32_t nd = tf_rng_below(&r, 5);
            for (uint32_t k = 0; k < nd && g.m < n * 4; k++)
                kgraph_edge(&g, tf_rng_below(&r, t), t,
                            (uint8_t)tf_rng_below(&r, 3));
        }
        for (uint32_t t = 0; t < n; t++) {
            g.retries[t] = (uint8_t)tf_rng_below(&r, 2);
            bool flaky = tf_rng_below(&r, 4) == 0;
            g.fails[t] = flaky ? (uint8_t)(1 + tf_rng_below(&r, 2)) : 0;
        }
        bool ok = run_kgraph(&g, seed, UINT64_MAX, seed & 1);
        /* And halted part way: it still ends, with nothing run after. */
        if (ok)
            ok = run_kgraph(&g, seed, 1 + tf_rng_below(&r, n), seed & 2);
        kgraph_free(&g);
        if (!ok)
            break;
    }
}

/* Drain the actions into out (at most max); returns how many. */
static size_t take(tf_sched *s, tf_action *out, size_t max)
{
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    if (n > max)
        n = max;
    memcpy(out, a, n * sizeof *a);
    tf_sched_clear_actions(s);
    return n;
}

/*
 * Edges added after their dependency has ended (a task submitted later):
 * ANY and NOTOK from a failed task are satisfied at once (NOTOK with its
 * failure noted), NOTOK from a done one makes the task not needed at its
 * seal, OK from a failed one dooms it.
 */
static void test_late_edges(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t ok_t, bad_t, w, t;
    tf_action a[16];
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &ok_t), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &bad_t), TF_OK);
    CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 2, 4, &w), TF_OK);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    CHECK_EQ_U(take(&s, a, 16), 2);
    CHECK_RC(tf_sched_task_done(&s, ok_t), TF_OK);
    CHECK_RC(tf_sched_task_failed(&s, bad_t, TF_EIO), TF_OK);
    take(&s, a, 16);
    CHECK_SCHED(&s);
    static const struct {
        uint8_t kind;
        bool from_bad;
        tf_state want;
        uint32_t act;
    } cases[] = {
        {TF_EDGE_ANY, true, TF_ST_READY, 0},
        {TF_EDGE_NOTOK, true, TF_ST_READY, 0},
        {TF_EDGE_ANY, false, TF_ST_READY, 0},
        {TF_EDGE_NOTOK, false, TF_ST_DONE, TF_ACT_UNNEEDED},
        {TF_EDGE_OK, true, TF_ST_SKIPPED, TF_ACT_SKIP},
        {TF_EDGE_OK, false, TF_ST_READY, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
        CHECK_RC(tf_sched_add_order_dep(&s, cases[i].from_bad ? bad_t : ok_t,
                                        t, cases[i].kind),
                 TF_OK);
        CHECK_SCHED(&s);
        CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
        size_t n = take(&s, a, 16);
        CHECK_SCHED(&s);
        CHECK_MSG(tf_sched_state(&s, t) == cases[i].want,
                  "case %zu: %s, want %s", i,
                  tf_state_name(tf_sched_state(&s, t)),
                  tf_state_name(cases[i].want));
        CHECK_EQ_U(n, cases[i].act ? 1 : 0);
        if (n)
            CHECK_EQ_U(a[0].kind, cases[i].act);
        if (cases[i].want == TF_ST_READY) {
            CHECK_RC(tf_sched_dispatch(&s), TF_OK);
            CHECK_EQ_U(take(&s, a, 16), 1);
            CHECK_RC(tf_sched_task_done(&s, t), TF_OK);
            CHECK_SCHED(&s);
        }
    }
    /*
     * A no-op (a task an earlier run finished) behind a success along a
     * NOTOK edge is done, not "not needed": no UNNEEDED, whatever attempts
     * the earlier run recorded.
     */
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, ok_t, t, TF_EDGE_NOTOK), TF_OK);
    CHECK_RC(tf_sched_set_noop(&s, t), TF_OK);
    s.dag.attempts[t] = 1;
    CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    CHECK_EQ_U(take(&s, a, 16), 0);
    CHECK_STATE(&s, t, TF_ST_DONE);
    CHECK_FALSE(tf_sched_is_unneeded(&s, t));
    CHECK_SCHED(&s);
    CHECK_TRUE(tf_sched_is_finished(&s));
    tf_sched_free(&s);
}

/*
 * A chain of not-needed tasks completes in one call, each with one
 * UNNEEDED action: h1 handles a's failure, h2 h1's, and so on; a succeeds.
 * z after the whole chain (OK) runs.
 */
static void test_unneeded_chain(void)
{
    enum { LEN = 1000 };
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t t, w, prev, z;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &prev), TF_OK);
    uint32_t a = prev;
    for (int i = 0; i < LEN; i++) {
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
        CHECK_RC(tf_sched_add_order_dep(&s, prev, t, TF_EDGE_NOTOK), TF_OK);
        prev = t;
    }
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &z), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, prev, z, TF_EDGE_OK), TF_OK);
    CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    tf_sched_clear_actions(&s);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_task_done(&s, a), TF_OK);
    size_t n;
    const tf_action *acts = tf_sched_actions(&s, &n);
    CHECK_EQ_U(n, LEN);
    size_t unneeded = 0;
    for (size_t i = 0; i < n; i++)
        unneeded += acts[i].kind == TF_ACT_UNNEEDED;
    CHECK_EQ_U(unneeded, LEN);
    tf_sched_clear_actions(&s);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, z, TF_ST_READY);
    CHECK_TRUE(tf_sched_is_unneeded(&s, prev));
    CHECK_FALSE(tf_sched_is_unneeded(&s, a));
    /* It made no output that a lost rank could take with it. */
    CHECK_RC(tf_sched_redo(&s, prev), TF_ESTATE);
    CHECK_SCHED(&s);
    tf_sched_free(&s);
}

/* A cycle is one whatever the kinds of its edges. */
static void test_cycle_across_kinds(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, c, cyc[8];
    size_t ncyc = 0;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &c), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, a, b, TF_EDGE_ANY), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, b, c, TF_EDGE_NOTOK), TF_OK);
    CHECK_RC(tf_sched_add_dep(&s, c, a), TF_OK);
    CHECK_RC(tf_sched_seal(&s, cyc, 8, &ncyc), TF_ECYCLE);
    CHECK_EQ_U(ncyc, 3);
    tf_sched_drop_held(&s);
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_add_order_dep(&s, a, a, TF_EDGE_ANY), TF_EINVAL);
    tf_sched_free(&s);
}

/*
 * Kinds cost nothing until used: a graph of OK edges has no kind array,
 * and the first other edge adds one byte per edge, no more.
 */
static void test_kind_memory(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t t, prev;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &prev), TF_OK);
    for (int i = 0; i < 3000; i++) {
        CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
        CHECK_RC(tf_sched_add_dep(&s, prev, t), TF_OK);
        prev = t;
    }
    CHECK_TRUE(s.dag.e_kind == NULL);
    size_t before = tf_dag_bytes(&s.dag);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, prev, t, TF_EDGE_ANY), TF_OK);
    CHECK_TRUE(s.dag.e_kind != NULL);
    /* 3002 tasks and 3001 edges fit the tables' 4096: only kinds grew. */
    CHECK_EQ_U(tf_dag_bytes(&s.dag) - before, s.dag.ecap);
    CHECK_RC(tf_sched_add_order_dep(&s, prev, t, 3), TF_EINVAL);
    CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    CHECK_SCHED(&s);
    tf_sched_free(&s);
}

/*
 * A halt skips what waits, and a task released along an ANY edge by a
 * failure after the halt is skipped too, not run: the run must end.
 */
static void test_halt_with_kinds(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t a, b, any, notok, w;
    tf_action act[16];
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &any), TF_OK);
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &notok), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, a, any, TF_EDGE_ANY), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, b, any, TF_EDGE_ANY), TF_OK);
    CHECK_RC(tf_sched_add_order_dep(&s, a, notok, TF_EDGE_NOTOK), TF_OK);
    CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    CHECK_EQ_U(take(&s, act, 16), 1); /* a runs; b waits in the queue */
    CHECK_RC(tf_sched_halt(&s), TF_OK);
    CHECK_EQ_U(take(&s, act, 16), 3); /* b, any, notok skipped */
    CHECK_SCHED(&s);
    CHECK_RC(tf_sched_task_failed(&s, a, TF_EIO), TF_OK);
    CHECK_EQ_U(take(&s, act, 16), 1); /* its FAIL only */
    CHECK_SCHED(&s);
    CHECK_STATE(&s, any, TF_ST_SKIPPED);
    CHECK_STATE(&s, notok, TF_ST_SKIPPED);
    CHECK_TRUE(tf_sched_is_finished(&s));
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* The task file: @afterany, @afternotok and patterns over ids. */

#define NAME "tasks.txt"

/* Parse text; on error, the messages joined by " | " into msgs. */
static int parse_text(const char *text, tf_taskfile *tf, char *msgs,
                      size_t len)
{
    tf_tferr err;
    int rc = tf_taskfile_parse(NAME, text, strlen(text), tf, &err);
    size_t off = 0;
    msgs[0] = 0;
    for (size_t i = 0; i < err.n && off < len; i++)
        off += (size_t)snprintf(msgs + off, len - off, "%s%s", i ? " | " : "",
                                err.msgs[i].text);
    tf_tferr_free(&err);
    return rc;
}

/* Task i's dependencies as "id:kind id:kind ...", in list order. */
static const char *deps_text(const tf_taskfile *tf, uint32_t i, char *buf,
                             size_t len)
{
    uint32_t n;
    const uint32_t *d = tf_taskfile_deps(tf, i, &n);
    size_t off = 0;
    buf[0] = 0;
    for (uint32_t k = 0; k < n && off < len; k++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s:%c", k ? " " : "",
                                tf_taskfile_is_barrier(tf, d[k])
                                    ? "@barrier"
                                    : tf_taskfile_id(tf, d[k]),
                                "oan"[tf_taskfile_dep_kind(tf, i, k)]);
    return buf;
}

/* The file parses and task i's dependencies read `want` (deps_text). */
#define EXPECT_DEPS(text, i, want) expect_deps_(text, i, want, __LINE__)
static void expect_deps_(const char *text, uint32_t i, const char *want,
                         unsigned line)
{
    tf_taskfile tf;
    char msgs[1024], got[1024];
    int rc = parse_text(text, &tf, msgs, sizeof msgs);
    if (!check_fmt_(rc == 0, __FILE__, line, "parse: %s: %s", tf_err_name(rc),
                    msgs))
        return;
    check_fmt_(!strcmp(deps_text(&tf, i, got, sizeof got), want), __FILE__,
               line, "task %u depends on [%s], want [%s]", i, got, want);
    tf_taskfile_free(&tf);
}

/* The file is refused, with exactly these messages (" | " between). */
#define EXPECT_ERRORS(text, want) expect_errors_(text, want, __LINE__)
static void expect_errors_(const char *text, const char *want, unsigned line)
{
    tf_taskfile tf;
    char msgs[2048];
    int rc = parse_text(text, &tf, msgs, sizeof msgs);
    if (rc == 0)
        tf_taskfile_free(&tf);
    check_fmt_(rc == TF_EINVAL && !strcmp(msgs, want), __FILE__, line,
               "parse %s: [%s], want [%s]", tf_err_name(rc), msgs, want);
}

static void test_file_kinds(void)
{
    /* Lists are kept by kind: @after, then @afterany, then @afternotok. */
    EXPECT_DEPS("@id=a true\n@id=b true\n@id=c true\n"
                "@afternotok=c @after=a @afterany=b,a echo\n",
                3, "a:o b:a a:a c:n");
    /* A plain file has no kinds array at all. */
    tf_taskfile tf;
    char msgs[512];
    if (CHECK_RC(parse_text("@id=a true\n@after=a true\n", &tf, msgs,
                            sizeof msgs),
                 TF_OK)) {
        CHECK_TRUE(tf.dep_kind == NULL);
        tf_taskfile_free(&tf);
    }
    /* Barriers stay after success; forward references work for all. */
    EXPECT_DEPS("@afterany=x true\n@id=x true\n@barrier\n"
                "@afternotok=1 true\n",
                3, "1:n @barrier:o");
    EXPECT_ERRORS("@id=a true\n@afternotok=a,,b true\n",
                  NAME ":2: empty id in @afternotok list 'a,,b'");
    EXPECT_ERRORS("@id=a true\n@afterany=a @afterany=a true\n",
                  NAME ":2: @afterany given twice");
    EXPECT_ERRORS("@id=a true\n@afterany=b true\n",
                  NAME ":2: unknown dependency 'b'");
    EXPECT_ERRORS("@id=a @afternotok=a true\n",
                  NAME ":1: task 'a' depends on itself");
    EXPECT_ERRORS("@id=a true\n@afterok=a true\n",
                  NAME ":2: unknown attribute '@afterok' (did you mean "
                       "'@after'?)");
    /* A cycle is one whatever the kinds along it. */
    EXPECT_ERRORS("@id=a @afterany=b true\n@id=b @afternotok=a true\n",
                  NAME ": dependency cycle: a (line 1) -> b (line 2) -> a "
                       "(line 1)");
}

static void test_file_globs(void)
{
    static const char *const sims =
        "@id=sim.1 true\n@id=sim.2 true\n@id=sim.10 true\n@id=simple true\n";
    char text[1024];
    snprintf(text, sizeof text, "%s@id=agg @after=sim.* true\n", sims);
    EXPECT_DEPS(text, 4, "sim.1:o sim.10:o sim.2:o");
    /* Itself left out; after a later task too; a repeat counted once. */
    snprintf(text, sizeof text,
             "@id=sim.all @afterany=sim.*,sim.1,sim.? true\n%s", sims);
    EXPECT_DEPS(text, 0, "sim.1:a sim.10:a sim.2:a");
    snprintf(text, sizeof text, "%s@afternotok=sim.[1-9] true\n", sims);
    EXPECT_DEPS(text, 4, "sim.1:n sim.2:n");
    snprintf(text, sizeof text, "%s@after=sim.[!1] true\n", sims);
    EXPECT_DEPS(text, 4, "sim.2:o");
    snprintf(text, sizeof text, "%s@after=sim[^.]*,*.10 true\n", sims);
    EXPECT_DEPS(text, 4, "simple:o sim.10:o");
    /* '*' alone: every task with an id, barriers not, itself not. */
    EXPECT_DEPS("true\n@barrier\n@id=x true\n@after=* true\n", 3, "1:o x:o "
                                                                  "@barrier:o");
    /* Default ids are ids: line numbers. */
    EXPECT_DEPS("true\ntrue\ntrue\ntrue\ntrue\ntrue\ntrue\ntrue\ntrue\ntrue\n"
                "@id=x @after=1? true\n",
                10, "10:o");
    /* A pattern naming nothing is an error, as an unknown id is. */
    snprintf(text, sizeof text, "%s@after=sims.* true\n", sims);
    EXPECT_ERRORS(text, NAME ":5: @after pattern 'sims.*' matches no task");
    EXPECT_ERRORS("@id=agg.1 @afternotok=agg.* true\n",
                  NAME ":1: @afternotok pattern 'agg.*' matches no task but "
                       "this one");
    EXPECT_ERRORS("@id=a true\n@after=a[b,a] true\n",
                  NAME ":2: bad pattern 'a[b' in @after (id characters and "
                       "*, ? or [...], each [ closed by ])");
    EXPECT_ERRORS("@id=a true\n@afterany=a/* true\n",
                  NAME ":2: bad pattern 'a/*' in @afterany (id characters "
                       "and *, ? or [...], each [ closed by ])");
    EXPECT_ERRORS("@id=a true\n@after=a[] true\n",
                  NAME ":2: bad pattern 'a[]' in @after (id characters and "
                       "*, ? or [...], each [ closed by ])");
    /* Cycles through patterns are found like any other. */
    EXPECT_ERRORS("@id=a @after=b* true\n@id=b1 @after=a true\n",
                  NAME ": dependency cycle: a (line 1) -> b1 (line 2) -> a "
                       "(line 1)");
}

/*
 * The matcher against a slow reference on random ids and patterns: the
 * same answers (and the prefix index finds every match a scan finds).
 */
static bool slow_match(const char *p, const char *s)
{
    if (!*p)
        return !*s;
    if (*p == '*')
        return slow_match(p + 1, s) || (*s && slow_match(p, s + 1));
    if (!*s)
        return false;
    if (*p == '[') {
        const char *q = p + 1;
        bool neg = *q == '!' || *q == '^', hit = false;
        q += neg;
        for (; *q != ']'; q++) {
            if (q[1] == '-' && q[2] != ']') {
                hit |= q[0] <= *s && *s <= q[2];
                q += 2;
            } else {
                hit |= *q == *s;
            }
        }
        return hit != neg && slow_match(q + 1, s + 1);
    }
    return (*p == '?' || *p == *s) && slow_match(p + 1, s + 1);
}

static void test_file_glob_random(void)
{
    static const char alpha[] = "ab.1";
    static const char *const pieces[] = {"a", "b", ".", "1", "*", "?",
                                         "[ab]", "[!a]", "[a-b]", "**"};
    tf_rng r = tf_rng_seeded(7);
    enum { NIDS = 60 };
    char ids[NIDS][NIDS + 8], text[16384];
    for (int round = 0; round < 200; round++) {
        size_t off = 0;
        for (int i = 0; i < NIDS; i++) {
            int len = 1 + (int)tf_rng_below(&r, 5);
            for (int k = 0; k < len; k++)
                ids[i][k] = alpha[tf_rng_below(&r, 4)];
            ids[i][len] = 0;
            for (int j = 0; j < i; j++)
                if (!strcmp(ids[i], ids[j])) {
                    ids[i][len] = 'z'; /* unique */
                    ids[i][len + 1] = 0;
                    len++;
                    j = -1;
                }
            off += (size_t)snprintf(text + off, sizeof text - off,
                                    "@id=%s true\n", ids[i]);
        }
        char pat[64] = "";
        int np = 1 + (int)tf_rng_below(&r, 4);
        for (int k = 0; k < np; k++)
            strcat(pat, pieces[tf_rng_below(&r, 10)]);
        snprintf(text + off, sizeof text - off, "@id=q @after=%s true\n", pat);
        int want = 0;
        for (int i = 0; i < NIDS; i++)
            want += slow_match(pat, ids[i]);
        tf_taskfile tf;
        char msgs[512];
        int rc = parse_text(text, &tf, msgs, sizeof msgs);
        if (!want) {
            /* A pattern without a wildcard is an id, and unknown. */
            CHECK_MSG(rc == TF_EINVAL && (strstr(msgs, "matches no task") ||
                                          strstr(msgs, "unknown dependency")),
                      "pattern %s: %s", pat, msgs);
            if (!rc)
                tf_taskfile_free(&tf);
            continue;
        }
        if (!CHECK_MSG(rc == 0, "pattern %s: %s", pat, msgs))
            break;
        uint32_t nd;
        const uint32_t *d = tf_taskfile_deps(&tf, NIDS, &nd);
        bool same = nd == (uint32_t)want;
        for (uint32_t k = 0; k < nd && same; k++)
            same = slow_match(pat, tf_taskfile_id(&tf, d[k]));
        CHECK_MSG(same, "pattern %s: %u dependencies, the reference %d", pat,
                  nd, want);
        tf_taskfile_free(&tf);
    }
}

/*
 * Scale: 100,000 tasks in 10,000 groups of 10 and 100,000 tasks each
 * after its group's pattern, and the same with plain ids; timed for the
 * record (the performance figures in the report), never asserted.
 */
static void test_file_glob_scale(void)
{
    enum { G = 10000, K = 10 };
    size_t cap = (size_t)G * K * 2 * 64;
    char *text = malloc(cap);
    if (!CHECK_TRUE(text))
        return;
    for (int glob = 0; glob < 2; glob++) {
        size_t len = 0;
        for (int g = 0; g < G; g++)
            for (int k = 0; k < K; k++)
                len += (size_t)sprintf(text + len, "@id=sim.%d.%d true\n", g,
                                       k);
        for (int g = 0; g < G; g++)
            for (int k = 0; k < K; k++)
                len += (size_t)sprintf(text + len,
                                       "@id=post.%d.%d @after=sim.%d.%d%s "
                                       "true\n",
                                       g, k, g, k, glob ? "*" : "");
        tf_taskfile tf;
        struct timespec t0, t1;
        timespec_get(&t0, TIME_UTC);
        int rc = tf_taskfile_parse(NAME, text, len, &tf, NULL);
        timespec_get(&t1, TIME_UTC);
        if (!CHECK_RC(rc, TF_OK))
            break;
        CHECK_EQ_U(tf.nafter, (uint64_t)G * K);
        printf("\n    %d tasks, %d %s: parsed in %.3f s", 2 * G * K, G * K,
               glob ? "patterns (sim.G.K*)" : "plain @after ids",
               (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
        tf_taskfile_free(&tf);
    }
    printf("\n");
    free(text);
}

/* The file's kinds reach the scheduler (tf_taskfile_submit). */
static void test_file_submit(void)
{
    tf_taskfile tf;
    char msgs[512];
    if (!CHECK_RC(parse_text("@id=a exit 1\n@id=b @afterany=a true\n"
                             "@id=c @afternotok=a true\n@id=d @after=a true\n",
                             &tf, msgs, sizeof msgs),
                  TF_OK))
        return;
    tf_sched s;
    uint32_t first, w;
    tf_action act[8];
    CHECK_RC(tf_sched_init(&s), TF_OK);
    CHECK_RC(tf_taskfile_submit(&tf, &s, 0, &first), TF_OK);
    CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    CHECK_RC(tf_sched_add_worker(&s, 4, 4, &w), TF_OK);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    CHECK_EQ_U(take(&s, act, 8), 1);
    CHECK_RC(tf_sched_task_failed(&s, first, TF_EIO), TF_OK);
    take(&s, act, 8);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, first + 1, TF_ST_READY);
    CHECK_STATE(&s, first + 2, TF_ST_READY);
    CHECK_STATE(&s, first + 3, TF_ST_SKIPPED);
    tf_sched_free(&s);
    tf_taskfile_free(&tf);
}

/* ------------------------------------------------------------------------ */

typedef struct test_def {
    const char *name;
    CU_TestFunc fn;
} test_def;

int main(void)
{
    static const test_def tests[] = {
        {"every kind against every outcome", test_kind_table},
        {"kinds mixed on one task", test_mixed_kinds},
        {"random graphs of kinds, and halts", test_random_kinds},
        {"edges from tasks already ended", test_late_edges},
        {"a chain of tasks not needed", test_unneeded_chain},
        {"cycles across kinds", test_cycle_across_kinds},
        {"kinds cost a byte per edge, once used", test_kind_memory},
        {"a halt with kinds", test_halt_with_kinds},
        {"task file: @afterany, @afternotok", test_file_kinds},
        {"task file: patterns over ids", test_file_globs},
        {"task file: patterns against a reference", test_file_glob_random},
        {"task file: 100,000 patterns", test_file_glob_scale},
        {"task file: kinds reach the scheduler", test_file_submit},
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("dependency kinds", NULL, NULL);
    for (size_t i = 0; suite && i < sizeof tests / sizeof *tests; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            suite = NULL;
    if (!suite) {
        fprintf(stderr, "test_depkind: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    return check_run();
}
