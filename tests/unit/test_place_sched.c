/* Unit tests of the scheduler's placement: tasks pinned to a worker (owner computes) and soft placement by the place callback. */
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
#include "taskfarm_status.h"

/*
 * Targeted tests build a few tasks and workers and assert the exact
 * actions of each dispatch; a randomized driver runs DAGs with random pins
 * and preferences, parking on or off, a lost worker, and checks after
 * every event that tf_sched_check holds and that no pinned task is held
 * by any worker but its own while that one lives.
 */

#define MAXACT 1024u

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

/* Dispatch, check, and return the actions it emitted. */
static size_t dispatch(tf_sched *s, tf_action *a)
{
    if (!CHECK_RC(tf_sched_dispatch(s), TF_OK))
        return 0;
    size_t n = take(s, a, MAXACT);
    CHECK_SCHED(s);
    return n;
}

/* A dispatch that must emit exactly one RUN: of task t on worker w. */
static bool dispatch_one(tf_sched *s, uint32_t t, uint32_t w)
{
    static tf_action a[MAXACT];
    size_t n = dispatch(s, a);
    return CHECK_MSG(
        n == 1 && a[0].kind == TF_ACT_RUN && a[0].task == t && a[0].worker == w,
        "want RUN of task %u on worker %u; got %zu actions, "
        "first kind %u task %u worker %u",
        t, w, n, n ? a[0].kind : 0u, n ? a[0].task : 0u, n ? a[0].worker : 0u);
}

static bool done_ok(tf_sched *s, uint32_t t)
{
    bool ok = CHECK_RC(tf_sched_task_done(s, t), TF_OK);
    tf_action a[MAXACT];
    take(s, a, MAXACT);
    return CHECK_SCHED(s) && ok;
}

static bool seal_ok(tf_sched *s)
{
    uint32_t cyc[8];
    size_t ncyc = 0;
    return CHECK_RC(tf_sched_seal(s, cyc, 8, &ncyc), TF_OK) && CHECK_SCHED(s);
}

/* A task of priority prio (1 core, no retries), pinned to pin unless TF_NONE.
 */
static uint32_t task(tf_sched *s, int32_t prio, uint32_t pin)
{
    uint32_t t = TF_NONE;
    CHECK_RC(tf_sched_add_task(s, prio, 1, 0, &t), TF_OK);
    if (pin != TF_NONE)
        CHECK_RC(tf_sched_pin(s, t, pin), TF_OK);
    return t;
}

static uint32_t worker(tf_sched *s, uint32_t slots, uint32_t depth)
{
    uint32_t w = TF_NONE;
    CHECK_RC(tf_sched_add_worker(s, slots, depth, &w), TF_OK);
    return w;
}

static size_t runs_on(const tf_action *a, size_t n, uint32_t w)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += a[i].kind == TF_ACT_RUN && a[i].worker == w;
    return c;
}

/* ------------------------------------------------------------------------ */
/* Pins. */

/*
 * Tasks pinned to w1 run there only, up to its window, while w0 and w2
 * stay idle; the rest wait in w1's own queue, and only w1 hears it has
 * work coming.
 */
static void test_pin_only_there(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 1, 2), w1 = worker(&s, 1, 2),
             w2 = worker(&s, 1, 2), t[4];
    for (int i = 0; i < 4; i++)
        t[i] = task(&s, 0, w1);
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(runs_on(a, n, w1), 2);
    CHECK_EQ_U(s.workers[w0].ntasks, 0);
    CHECK_EQ_U(s.workers[w2].ntasks, 0);
    CHECK_EQ_U(s.workers[w1].pinq.n, 2);
    CHECK_EQ_U(s.rq.n, 0);
    bool dry = false;
    CHECK_TRUE(tf_sched_notify(&s, w0, false, true, &dry) && dry);
    CHECK_TRUE(tf_sched_notify(&s, w1, true, true, &dry) && !dry);
    /* Idle workers get nothing however often rank 0 dispatches. */
    for (int i = 0; i < 3; i++)
        CHECK_EQ_U(dispatch(&s, a), 0);
    /* Each end on w1 lets the next pinned task in, on w1. */
    uint32_t ndone = 0;
    for (int round = 0; round < 4; round++) {
        uint32_t u = TF_NONE;
        for (int i = 0; i < 4; i++)
            if (tf_sched_state(&s, t[i]) == TF_ST_DISPATCHED) {
                u = t[i];
                break;
            }
        if (!CHECK_TRUE(u != TF_NONE) || !done_ok(&s, u))
            break;
        ndone++;
        n = dispatch(&s, a);
        CHECK_EQ_U(n, runs_on(a, n, w1));
        CHECK_LE_U(n, 1);
    }
    CHECK_EQ_U(ndone, 4);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A worker takes its next task from its pinned queue or the global queue,
 * whichever head comes first in priority order (then index order).
 */
static void test_pin_priority(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 1, 1), w1 = worker(&s, 1, 1);
    uint32_t x = task(&s, 100, w0), y = task(&s, 90, TF_NONE),
             pa = task(&s, 50, w0), pb = task(&s, 30, w0),
             fc = task(&s, 45, TF_NONE), fa = task(&s, 40, TF_NONE),
             fb = task(&s, 20, TF_NONE);
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    if (!CHECK_EQ_U(n, 2))
        goto out_with_sched;
    CHECK_TRUE(a[0].task == x && a[0].worker == w0);
    CHECK_TRUE(a[1].task == y && a[1].worker == w1);
    /* w1 meets pa on its way to fc: pa waits in w0's queue. */
    if (!done_ok(&s, y) || !dispatch_one(&s, fc, w1))
        goto out_with_sched;
    CHECK_EQ_U(s.workers[w0].pinq.n, 1);
    CHECK_STATE(&s, pa, TF_ST_READY);
    /* w1 stays busy with fc from here on; w0 takes both queues in order. */
    uint32_t g = task(&s, 70, TF_NONE), h = task(&s, 50, TF_NONE);
    if (!seal_ok(&s) || !done_ok(&s, x))
        goto out_with_sched;
    const uint32_t order[] = {g, pa, h, fa, pb, fb};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (!CHECK_MSG(dispatch_one(&s, order[i], w0),
                       "step %zu: w0 should take task %u", i, order[i]) ||
            !done_ok(&s, order[i]))
            goto out_with_sched;
    CHECK_TRUE(done_ok(&s, fc));
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A lost worker's pinned tasks, running or waiting in its queue, go back
 * to the global queue and run anywhere; tasks pinned to a worker that was
 * never registered run anywhere too.
 */
static void test_pin_lost(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 1, 2), w1 = worker(&s, 1, 2),
             w2 = worker(&s, 1, 2);
    for (int i = 0; i < 4; i++)
        task(&s, 0, w1);
    uint32_t nowhere = task(&s, 0, 7); /* no worker 7 */
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(runs_on(a, n, w1), 2);
    const tf_action *na = NULL;
    for (size_t i = 0; i < n; i++)
        if (a[i].task == nowhere)
            na = &a[i];
    if (CHECK_MSG(na != NULL, "the task pinned to no worker did not run"))
        CHECK_TRUE(na->kind == TF_ACT_RUN && na->worker != w1);
    CHECK_EQ_U(s.workers[w1].pinq.n, 2);
    CHECK_RC(tf_sched_worker_lost(&s, w1), TF_OK);
    CHECK_EQ_U(take(&s, a, MAXACT), 0);
    CHECK_SCHED(&s);
    CHECK_EQ_U(s.workers[w1].pinq.n, 0);
    CHECK_EQ_U(s.count[TF_ST_READY], 4);
    CHECK_EQ_U(s.rq.n, 4);
    /* Now they run on w0 and w2, as their windows allow. */
    for (int round = 0; round < 8 && !tf_sched_is_finished(&s); round++) {
        n = dispatch(&s, a);
        CHECK_EQ_U(runs_on(a, n, w1), 0);
        CHECK_EQ_U(runs_on(a, n, w0) + runs_on(a, n, w2), n);
        for (uint32_t t = 0; t < s.dag.n; t++)
            if (tf_sched_state(&s, t) == TF_ST_DISPATCHED && !done_ok(&s, t))
                goto out_with_sched;
    }
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/* A halt skips the tasks waiting in a worker's pinned queue too. */
static void test_pin_halt(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static tf_action a[MAXACT];
    worker(&s, 1, 1);
    uint32_t w1 = worker(&s, 1, 1);
    for (int i = 0; i < 3; i++)
        task(&s, 0, w1);
    if (!seal_ok(&s))
        goto out_with_sched;
    dispatch(&s, a);
    CHECK_EQ_U(s.workers[w1].pinq.n, 2);
    CHECK_RC(tf_sched_halt(&s), TF_OK);
    size_t n = take(&s, a, MAXACT);
    CHECK_SCHED(&s);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(s.workers[w1].pinq.n, 0);
    CHECK_EQ_U(s.count[TF_ST_SKIPPED], 2);
out_with_sched:
    tf_sched_free(&s);
}

/* What tf_sched_pin takes: a task not yet dispatched, and nothing else. */
static void test_pin_states(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    uint32_t w0 = worker(&s, 1, 1), a = task(&s, 0, TF_NONE),
             b = task(&s, 0, TF_NONE);
    CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK);
    CHECK_RC(tf_sched_pin(&s, 99, w0), TF_ESTATE);
    if (!seal_ok(&s))
        goto out_with_sched;
    CHECK_RC(tf_sched_pin(&s, b, w0), TF_OK); /* PENDING */
    CHECK_RC(tf_sched_pin(&s, a, w0), TF_OK); /* READY, in the global queue */
    CHECK_SCHED(&s);
    if (!dispatch_one(&s, a, w0))
        goto out_with_sched;
    CHECK_RC(tf_sched_pin(&s, a, w0), TF_ESTATE); /* DISPATCHED */
    if (!done_ok(&s, a))
        goto out_with_sched;
    CHECK_RC(tf_sched_pin(&s, a, w0), TF_ESTATE); /* DONE */
    if (!dispatch_one(&s, b, w0) || !done_ok(&s, b))
        goto out_with_sched;
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A READY task already set aside in its worker's pinned queue and pinned
 * again to another worker must still run on the new one only (and the
 * queues stay consistent: tf_sched_check).
 */
static void test_pin_again_while_queued(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 1, 1), w1 = worker(&s, 1, 1),
             w2 = worker(&s, 1, 1);
    uint32_t busy = task(&s, 10, w1), t = task(&s, 0, w1);
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(runs_on(a, n, w1), 1);
    if (!CHECK_EQ_U(s.workers[w1].pinq.n, 1))
        goto out_with_sched;
    CHECK_RC(tf_sched_pin(&s, t, w2), TF_OK);
    CHECK_SCHED(&s);
    /* w1 frees up first: t must still wait for w2. */
    done_ok(&s, busy);
    n = dispatch(&s, a);
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(!(a[i].task == t && a[i].worker != w2),
                  "task %u, pinned again to worker %u, ran on worker %u", t, w2,
                  a[i].worker);
    (void)w0;
out_with_sched:
    tf_sched_free(&s);
}

/*
 * Parking: a dependent is parked only on the one worker all its unfinished
 * dependencies were placed on, and not if it is pinned to another live
 * worker (it then waits at rank 0 and goes to its worker when ready). A pin
 * to a worker never registered, or lost, counts as no pin. Every task then
 * runs, each pinned one on its live worker.
 */
static void test_pin_parked(void)
{
    for (int lose = 0; lose < 2; lose++) {
        tf_sched s;
        if (!CHECK_RC(tf_sched_init(&s), TF_OK))
            return;
        s.park = true;
        static tf_action a[MAXACT];
        uint32_t w0 = worker(&s, 2, 8), w1 = worker(&s, 2, 8);
        uint32_t top = task(&s, 0, w0), other = task(&s, 0, w1),
                 free_ = task(&s, 0, TF_NONE), same = task(&s, 0, w0),
                 none = task(&s, 0, 9);
        for (uint32_t v = other; v <= none; v++)
            CHECK_RC(tf_sched_add_dep(&s, top, v), TF_OK);
        /* Behind `other`: unpinned (follows it), and joins of both sides. */
        uint32_t after = task(&s, 0, TF_NONE), join = task(&s, 0, TF_NONE),
                 join0 = task(&s, 0, w0);
        CHECK_RC(tf_sched_add_dep(&s, other, after), TF_OK);
        CHECK_RC(tf_sched_add_dep(&s, other, join), TF_OK);
        CHECK_RC(tf_sched_add_dep(&s, free_, join), TF_OK);
        CHECK_RC(tf_sched_add_dep(&s, other, join0), TF_OK);
        CHECK_RC(tf_sched_add_dep(&s, free_, join0), TF_OK);
        if (!seal_ok(&s))
            goto out_with_sched;
        if (lose)
            CHECK_RC(tf_sched_worker_lost(&s, w1), TF_OK);
        size_t n = dispatch(&s, a);
        uint32_t where[16];
        for (int i = 0; i < 16; i++)
            where[i] = TF_NONE;
        for (size_t i = 0; i < n; i++)
            if (a[i].task < 16)
                where[a[i].task] = a[i].worker;
        if (!CHECK_EQ_U(where[top], w0))
            goto out_with_sched;
        /* Pinned to live w1: not parked behind a task of w0. */
        CHECK_STATE(&s, other, lose ? TF_ST_PARKED : TF_ST_PENDING);
        CHECK_STATE(&s, free_, TF_ST_PARKED);
        CHECK_EQ_U(where[free_], w0);
        CHECK_STATE(&s, same, TF_ST_PARKED);
        CHECK_EQ_U(where[same], w0);
        CHECK_STATE(&s, none, TF_ST_PARKED);
        CHECK_EQ_U(where[none], w0);
        CHECK_STATE(&s, after, lose ? TF_ST_PARKED : TF_ST_PENDING);
        CHECK_STATE(&s, join, lose ? TF_ST_PARKED : TF_ST_PENDING);
        CHECK_STATE(&s, join0, lose ? TF_ST_PARKED : TF_ST_PENDING);
        /* Run everything: each pinned task on its live worker. */
        uint32_t ran_on[16];
        for (int i = 0; i < 16; i++)
            ran_on[i] = where[i];
        for (int round = 0; round < 16 && !tf_sched_is_finished(&s); round++) {
            for (uint32_t t = 0; t < s.dag.n; t++)
                if (tf_sched_state(&s, t) == TF_ST_DISPATCHED) {
                    ran_on[t] = s.dag.worker[t];
                    done_ok(&s, t);
                }
            n = dispatch(&s, a);
            for (size_t i = 0; i < n; i++)
                if (a[i].task < 16)
                    ran_on[a[i].task] = a[i].worker;
        }
        CHECK_TRUE(tf_sched_is_finished(&s));
        CHECK_EQ_U(ran_on[other], lose ? w0 : w1);
        CHECK_EQ_U(ran_on[same], w0);
        CHECK_EQ_U(ran_on[join0], w0);
    out_with_sched:
        tf_sched_free(&s);
    }
}

/*
 * A task pinned to a worker too narrow for it can never run there: the run
 * must not hang on it (it fails with TF_ECORES, as a task no worker can
 * hold does, or runs where it fits), and it must not hold back the
 * worker's other work.
 */
static void test_pin_too_narrow(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 2, 2), w1 = worker(&s, 1, 2);
    uint32_t wide = TF_NONE;
    CHECK_RC(tf_sched_add_task(&s, 10, 2, 0, &wide), TF_OK);
    CHECK_RC(tf_sched_pin(&s, wide, w1), TF_OK);
    uint32_t small[4];
    for (int i = 0; i < 4; i++)
        small[i] = task(&s, 0, TF_NONE);
    if (!seal_ok(&s))
        goto out_with_sched;
    bool w1_worked = false, ended = false;
    for (int round = 0; round < 10 && !tf_sched_is_finished(&s); round++) {
        size_t n = dispatch(&s, a);
        w1_worked |= runs_on(a, n, w1) > 0;
        for (size_t i = 0; i < n; i++)
            if (a[i].task == wide)
                ended = true;
        for (uint32_t t = 0; t < s.dag.n; t++)
            if (tf_sched_state(&s, t) == TF_ST_DISPATCHED && !done_ok(&s, t))
                goto out_with_sched;
    }
    CHECK_MSG(tf_sched_is_finished(&s),
              "the run hangs: task %u (2 cores, pinned to worker %u with 1 "
              "slot) stays %s, never failed nor run",
              wide, w1, tf_state_name(tf_sched_state(&s, wide)));
    CHECK_MSG(ended, "no action for task %u", wide);
    CHECK_MSG(w1_worked, "worker %u never ran any of tasks %u-%u", w1, small[0],
              small[3]);
    (void)w0;
out_with_sched:
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Soft placement: the place callback. */

typedef struct prefs {
    uint32_t pref[64];
    uint32_t calls[64];
} prefs;

static uint32_t place_cb(void *u, uint32_t t)
{
    prefs *p = u;
    if (t >= 64)
        return TF_NONE;
    p->calls[t]++;
    return p->pref[t];
}

static void set_place(tf_sched *s, prefs *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < 64; i++)
        p->pref[i] = TF_NONE;
    s->place = place_cb;
    s->place_user = p;
}

/*
 * A ready task goes to the worker holding its inputs when that worker has
 * room and holds fewer than a slot-load more tasks than the worker being
 * filled; otherwise the worker being filled takes it.
 */
static void test_place_room(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static prefs p;
    set_place(&s, &p);
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 1, 2), w1 = worker(&s, 1, 2);
    /* w0 is filled first, but t0's inputs are on w1, which is idle. */
    uint32_t t0 = task(&s, 0, TF_NONE);
    p.pref[t0] = w1;
    if (!seal_ok(&s) || !dispatch_one(&s, t0, w1))
        goto out_with_sched;
    CHECK_EQ_U(s.placed, 1);
    CHECK_EQ_U(p.calls[t0], 1);
    /* w1 now holds a slot-load more than w0: t1 runs on w0. */
    uint32_t t1 = task(&s, 0, TF_NONE);
    p.pref[t1] = w1;
    if (!seal_ok(&s) || !dispatch_one(&s, t1, w0))
        goto out_with_sched;
    CHECK_EQ_U(s.placed, 1);
    /*
     * Both hold one: the top-up gives t2 to w1 (1 < 1 + 1), and t3 to w0
     * since w1 is then at its depth.
     */
    uint32_t t2 = task(&s, 0, TF_NONE), t3 = task(&s, 0, TF_NONE);
    p.pref[t2] = p.pref[t3] = w1;
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    if (CHECK_EQ_U(n, 2)) {
        CHECK_TRUE(a[0].task == t2 && a[0].worker == w1);
        CHECK_TRUE(a[1].task == t3 && a[1].worker == w0);
    }
    CHECK_EQ_U(s.placed, 2);
    for (uint32_t t = t0; t <= t3; t++)
        done_ok(&s, t);
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
}

/*
 * With wider workers the slot-load is wider: all ten tasks prefer w1
 * (4 slots); w1 takes the first four while w0 (4 slots) is filled, then
 * the two alternate, w1 never more than four ahead.
 */
static void test_place_slot_load(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static prefs p;
    set_place(&s, &p);
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 4, 8), w1 = worker(&s, 4, 8);
    for (int i = 0; i < 10; i++)
        p.pref[task(&s, 0, TF_NONE)] = w1;
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    if (!CHECK_EQ_U(n, 10))
        goto out_with_sched;
    static const uint32_t want[10] = {1, 1, 1, 1, 0, 1, 0, 1, 0, 1};
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(a[i].kind == TF_ACT_RUN && a[i].task == i &&
                      a[i].worker == want[i],
                  "action %zu: kind %u task %u on worker %u, want RUN of "
                  "task %zu on worker %u",
                  i, a[i].kind, a[i].task, a[i].worker, i, want[i]);
    CHECK_EQ_U(s.workers[w1].ntasks, 7);
    CHECK_EQ_U(s.workers[w0].ntasks, 3);
    CHECK_EQ_U(s.placed, 7);
out_with_sched:
    tf_sched_free(&s);
}

/*
 * A worker at its depth gets nothing more, however far behind the others
 * it is in slots.
 */
static void test_place_full(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static prefs p;
    set_place(&s, &p);
    uint32_t w0 = worker(&s, 1, 4), w1 = worker(&s, 4, 1);
    uint32_t busy = task(&s, 0, w1);
    if (!seal_ok(&s) || !dispatch_one(&s, busy, w1))
        goto out_with_sched;
    uint32_t t = task(&s, 0, TF_NONE);
    p.pref[t] = w1; /* 1 < 0 + 4, but w1 holds its depth */
    if (!seal_ok(&s) || !dispatch_one(&s, t, w0))
        goto out_with_sched;
    CHECK_EQ_U(s.placed, 0);
    CHECK_EQ_U(p.calls[t], 1);
out_with_sched:
    tf_sched_free(&s);
}

/*
 * Preferences that cannot be followed are ignored: none, a worker that
 * does not exist, a lost one, one too narrow for the task, the worker
 * being filled itself. Pinned tasks never ask the callback.
 */
static void test_place_ignored(void)
{
    tf_sched s;
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return;
    static prefs p;
    set_place(&s, &p);
    static tf_action a[MAXACT];
    uint32_t w0 = worker(&s, 2, 8), w1 = worker(&s, 1, 8),
             w2 = worker(&s, 2, 8);
    CHECK_RC(tf_sched_worker_lost(&s, w2), TF_OK);
    uint32_t tn = task(&s, 0, TF_NONE), tx = task(&s, 0, TF_NONE),
             tl = task(&s, 0, TF_NONE), tself = task(&s, 0, TF_NONE),
             tw = TF_NONE;
    CHECK_RC(tf_sched_add_task(&s, 0, 2, 0, &tw), TF_OK);
    uint32_t tp = task(&s, 0, w1);
    p.pref[tn] = TF_NONE;
    p.pref[tx] = 17;
    p.pref[tl] = w2;
    p.pref[tself] = w0;
    p.pref[tw] = w1; /* 2 cores, w1 has 1 slot */
    p.pref[tp] = w0; /* pinned: never asked */
    if (!seal_ok(&s))
        goto out_with_sched;
    size_t n = dispatch(&s, a);
    CHECK_EQ_U(n, 6);
    CHECK_EQ_U(s.placed, 0);
    CHECK_EQ_U(p.calls[tp], 0);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_U(a[i].kind, TF_ACT_RUN);
        CHECK_TRUE(a[i].worker != w2);
        if (a[i].task == tp)
            CHECK_EQ_U(a[i].worker, w1);
        if (a[i].task == tw)
            CHECK_EQ_U(a[i].worker, w0);
    }
out_with_sched:
    tf_sched_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Randomized: pins, preferences, parking, a lost worker. */

#define RW 5u /* workers registered; pins and preferences may name RW too */

typedef struct rplace {
    uint32_t *pref;
    uint32_t n;
} rplace;

static uint32_t rplace_cb(void *u, uint32_t t)
{
    const rplace *r = u;
    return t < r->n ? r->pref[t] : TF_NONE;
}

/* Whether a RUN or PARK of t on w breaks its pin. */
static bool breaks_pin(const tf_sched *s, uint32_t t, uint32_t w)
{
    uint32_t p = s->dag.pin[t];
    return p < s->nworkers && !s->workers[p].lost && w != p;
}

static bool random_run(uint64_t seed, bool park)
{
    enum { N = 400 };
    tf_rng r = tf_rng_seeded(seed);
    tf_sched s;
    bool ok = false;
    static tf_action a[MAXACT];
    uint32_t pref[N];
    rplace rp = {pref, N};
    if (!CHECK_RC(tf_sched_init(&s), TF_OK))
        return false;
    s.park = park;
    s.place = rplace_cb;
    s.place_user = &rp;
    for (uint32_t i = 0; i < RW; i++)
        worker(&s, 1 + tf_rng_below(&r, 3), 2 + tf_rng_below(&r, 6));
    for (uint32_t i = 0; i < N; i++) {
        uint32_t t = TF_NONE;
        if (!CHECK_RC(
                tf_sched_add_task(&s, (int32_t)tf_rng_below(&r, 4), 1, 1, &t),
                TF_OK))
            goto out_with_sched;
        uint32_t k = tf_rng_below(&r, 100);
        if (k < 30)
            CHECK_RC(tf_sched_pin(&s, t, tf_rng_below(&r, RW + 1)), TF_OK);
        pref[t] = k % 3 ? tf_rng_below(&r, RW + 1) : TF_NONE;
        for (uint32_t d = tf_rng_below(&r, 4); d && i; d--)
            if (!CHECK_RC(tf_sched_add_dep(&s, tf_rng_below(&r, i), t), TF_OK))
                goto out_with_sched;
    }
    if (!seal_ok(&s))
        goto out_with_sched;
    uint32_t lost = tf_rng_below(&r, RW);
    for (unsigned step = 0; step < 20 * N; step++) {
        if (step == N / 4)
            CHECK_RC(tf_sched_worker_lost(&s, lost), TF_OK);
        size_t n = dispatch(&s, a);
        for (size_t i = 0; i < n; i++)
            if ((a[i].kind == TF_ACT_RUN || a[i].kind == TF_ACT_PARK) &&
                !CHECK_MSG(!breaks_pin(&s, a[i].task, a[i].worker),
                           "seed %" PRIu64 " step %u: %s of task %u on worker "
                           "%u, pinned to %u",
                           seed, step, a[i].kind == TF_ACT_RUN ? "RUN" : "PARK",
                           a[i].task, a[i].worker, s.dag.pin[a[i].task]))
                goto out_with_sched;
        /* End a random held task: done, or a failure it may retry. */
        uint32_t held[N], nheld = 0;
        for (uint32_t t = 0; t < s.dag.n; t++) {
            tf_state st = tf_sched_state(&s, t);
            if (st == TF_ST_DISPATCHED)
                held[nheld++] = t;
            if ((st == TF_ST_DISPATCHED || st == TF_ST_PARKED) &&
                !CHECK_MSG(!breaks_pin(&s, t, s.dag.worker[t]),
                           "seed %" PRIu64 " step %u: task %u held by worker "
                           "%u, pinned to %u",
                           seed, step, t, s.dag.worker[t], s.dag.pin[t]))
                goto out_with_sched;
        }
        if (!nheld) {
            ok = CHECK_MSG(tf_sched_is_finished(&s),
                           "seed %" PRIu64 ": stuck with %u ready, %u "
                           "pending",
                           seed, s.count[TF_ST_READY], s.count[TF_ST_PENDING]);
            break;
        }
        uint32_t t = held[tf_rng_below(&r, nheld)];
        int rc = tf_rng_below(&r, 10) ? tf_sched_task_done(&s, t)
                                      : tf_sched_task_failed(&s, t, TF_EIO);
        take(&s, a, MAXACT);
        if (!CHECK_RC(rc, TF_OK) || !CHECK_SCHED(&s))
            goto out_with_sched;
    }
    CHECK_TRUE(tf_sched_is_finished(&s));
out_with_sched:
    tf_sched_free(&s);
    return ok;
}

static void test_random(void)
{
    uint32_t good = 0;
    for (uint64_t seed = 1; seed <= 40; seed++)
        good += random_run(seed, seed % 2 == 0);
    CHECK_EQ_U(good, 40);
}

/* ------------------------------------------------------------------------ */

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"pinned tasks run on their worker only", test_pin_only_there},
        {"pinned queue and global queue in priority order", test_pin_priority},
        {"a lost worker's pinned tasks run elsewhere", test_pin_lost},
        {"a halt empties the pinned queues", test_pin_halt},
        {"tf_sched_pin: which states", test_pin_states},
        {"pinned again while in a pinned queue", test_pin_again_while_queued},
        {"parking and pins", test_pin_parked},
        {"pinned to a worker too narrow", test_pin_too_narrow},
        {"place: room and a slot-load", test_place_room},
        {"place: wider workers", test_place_slot_load},
        {"place: a worker at its depth", test_place_full},
        {"place: preferences ignored", test_place_ignored},
        {"random DAGs with pins, preferences, a lost worker", test_random},
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("placement", NULL, NULL);
    for (size_t i = 0; suite && i < sizeof tests / sizeof *tests; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            suite = NULL;
    if (!suite) {
        fprintf(stderr, "test_place_sched: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    return check_run();
}
