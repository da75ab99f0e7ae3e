/* Allocation-failure tests of the pure core: each allocation a scenario makes is failed in turn. */
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
#include "oom.h"
#include "rng.h"
#include "dag.h"
#include "idmap.h"
#include "rq.h"
#include "sched.h"
#include "store.h"
#include "taskfarm_status.h"
#include "taskfile.h"
#include "tasks.h"
#include "worker.h"
#include "wqueue.h"

/*
 * How it works. The binary is linked with
 *   -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
 * so every malloc/calloc/realloc the core objects (and this file) call goes
 * to the __wrap_* functions below; CUnit and libc call the real ones, as
 * they live in shared libraries the linker does not rewrite. free is not
 * wrapped: it cannot fail.
 *
 * A scenario is a deterministic sequence of core calls. It is run once with
 * nothing failing, to count its allocations (N), then again for each
 * k = 1 .. N+1 with the k-th allocation failing: once (OOM_ONCE), or that one
 * and every one after it until the test lets memory back (OOM_FROM). Run
 * k = N+1 injects nothing and must succeed. Big scenarios sample k: every k
 * up to K_DENSE, then every K_STRIDE-th, and always the last K_TAIL.
 *
 * After an injected failure the test checks the contract (a negative code,
 * TF_ENOMEM; out-parameters untouched; the object unchanged or at least
 * consistent by tf_sched_check), then lets memory back and finishes the
 * scenario, which must end exactly as the reference run did. ASan/LSan run
 * the same binary to prove nothing leaked on any of those paths.
 */

#define K_DENSE 200ul
#define K_STRIDE 37ul
#define K_TAIL 5ul
#define K_MAX 10000ul /* a scenario allocating more is itself a failure */

#define SENT32 0xDEADBEEFu
#define SENTSZ ((size_t)0xDEADBEEFu)

/* ------------------------------------------------------------------------ */
/* The allocation-failure injector: oom.h. */

/* Suspend injection around the test's own allocations; returns the armed one. */
static oom *oom_pause(void)
{
    oom *o = injector.armed;
    injector.armed = NULL;
    return o;
}

static void oom_resume(oom *o) { injector.armed = o; }

static const char *mode_name(oom_mode m)
{
    return m == OOM_ONCE ? "once" : "from";
}

static bool k_is_sampled(unsigned long k, unsigned long n)
{
    return k <= K_DENSE || k + K_TAIL > n || (k - K_DENSE) % K_STRIDE == 0;
}

/* tf_sched_check allocates: run it with injection off. */
static bool sched_ok(const tf_sched *s, char *why, size_t len)
{
    oom *o = oom_pause();
    bool ok = tf_sched_check(s, why, len);
    oom_resume(o);
    return ok;
}

/*
 * Where a scenario run is: printed with every failure so a report names
 * the mode, k and the step that failed.
 */
typedef struct where {
    const char *scenario;
    oom *o;
} where;

#define AT_FMT "%s, mode %s, k=%lu: "
#define AT_ARGS(w) (w)->scenario, mode_name((w)->o->mode), (w)->o->fail_at

/* ------------------------------------------------------------------------ */
/* A random DAG and how its run must end. */

typedef struct plan {
    uint32_t n, m;
    int32_t *prio;
    uint8_t *retries;
    uint8_t *noop;     /* completes without running */
    uint8_t *permfail; /* fails every attempt */
    uint8_t *flaky;    /* fails its first attempt, has one retry */
    uint32_t *efrom, *eto;
    uint8_t *expect; /* final tf_state of each task */
} plan;

static void plan_free(plan *p)
{
    free(p->prio);
    free(p->retries);
    free(p->noop);
    free(p->permfail);
    free(p->flaky);
    free(p->efrom);
    free(p->eto);
    free(p->expect);
    memset(p, 0, sizeof *p);
}

/*
 * n tasks in a random topological order unrelated to their indexes, so that
 * edges point both ways in index order and tf_dag_find_cycle really
 * searches. Each task depends on 0-3 distinct tasks before it in that order.
 * With failures, permanent ones sit in the last fifth of the order so that
 * their skips do not swallow the whole graph.
 */
static bool plan_make(plan *p, uint32_t n, uint64_t seed, bool failures)
{
    memset(p, 0, sizeof *p);
    tf_rng r = tf_rng_seeded(seed);
    uint32_t *order = malloc(n * sizeof *order);
    uint32_t *pos = malloc(n * sizeof *pos);
    p->n = n;
    p->prio = malloc(n * sizeof *p->prio);
    p->retries = calloc(n, 1);
    p->noop = calloc(n, 1);
    p->permfail = calloc(n, 1);
    p->flaky = calloc(n, 1);
    p->efrom = malloc(4 * (size_t)n * sizeof *p->efrom);
    p->eto = malloc(4 * (size_t)n * sizeof *p->eto);
    p->expect = malloc(n);
    if (!order || !pos || !p->prio || !p->retries || !p->noop ||
        !p->permfail || !p->flaky || !p->efrom || !p->eto || !p->expect) {
        free(order);
        free(pos);
        plan_free(p);
        return false;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = tf_rng_below(&r, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint32_t i = 0; i < n; i++)
        pos[order[i]] = i;
    for (uint32_t t = 0; t < n; t++) {
        p->prio[t] = (int32_t)tf_rng_below(&r, 11) - 5;
        uint32_t roll = tf_rng_below(&r, 100);
        if (roll < 2) {
            p->noop[t] = 1;
        } else if (failures && roll < 6 && pos[t] > n / 5 * 4) {
            p->permfail[t] = 1;
        } else if (failures && roll < 12) {
            p->flaky[t] = 1;
            p->retries[t] = 1;
        }
    }
    /*
     * With failures, two shapes make the run's buffers grow inside
     * tf_sched_task_done and tf_sched_task_failed: a hub (first in the
     * order) the first half of the tasks wait for, and on nothing else, so
     * that its completion readies thousands at once; and a doomed bomb (at four fifths) that
     * half of the last fifth waits for, so that its failure skips hundreds.
     */
    uint32_t hub = order[0], bomb = order[n / 5 * 4];
    if (failures) {
        p->permfail[bomb] = 1;
        p->flaky[bomb] = p->noop[bomb] = 0;
        p->retries[bomb] = 0;
    }
    for (uint32_t i = 1; i < n; i++) {
        uint32_t to = order[i], k = tf_rng_below(&r, 4), npicked = 0;
        uint32_t picked[4];
        if (failures && i <= n / 2) {
            picked[npicked++] = hub;
            k = 0; /* ready the moment the hub is done */
        }
        else if (failures && i > n / 5 * 4 && tf_rng_below(&r, 2))
            picked[npicked++] = bomb;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t from = order[tf_rng_below(&r, i)];
            bool dup = false;
            for (uint32_t q = 0; q < npicked; q++)
                dup |= picked[q] == from;
            if (!dup)
                picked[npicked++] = from;
        }
        for (uint32_t j = 0; j < npicked; j++) {
            p->efrom[p->m] = picked[j];
            p->eto[p->m] = to;
            p->m++;
        }
    }
    /* Final states, in topological order. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = order[i];
        p->expect[t] = p->permfail[t] ? TF_ST_FAILED : TF_ST_DONE;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = order[i];
        for (uint32_t e = 0; e < p->m; e++)
            if (p->efrom[e] == t && p->expect[t] != TF_ST_DONE)
                p->expect[p->eto[e]] = TF_ST_SKIPPED;
    }
    free(order);
    free(pos);
    return true;
}

/* ------------------------------------------------------------------------ */
/* The driver: a simulated runner that survives TF_ENOMEM from the core. */

typedef struct driver {
    uint32_t *inflight; /* tasks RUN was emitted for, not yet reported */
    uint32_t ninflight;
    uint8_t *tries; /* attempts the simulated runner made */
    size_t acts_seen;
    unsigned long lost_actions; /* ENOMEM after the state change */
} driver;

static int expect_enomem(const where *w, int rc, const char *step)
{
    return CHECK_MSG(rc == TF_ENOMEM,
                     AT_FMT "%s returned %s (%d), want TF_ENOMEM", AT_ARGS(w),
                     step, tf_err_name(rc), rc);
}

/* After an injected failure: tf_sched_check must hold. */
static bool check_after_enomem(const where *w, const tf_sched *s,
                               const char *step)
{
    char why[256] = "";
    return CHECK_MSG(sched_ok(s, why, sizeof why),
                     AT_FMT "after TF_ENOMEM from %s, tf_sched_check: %s",
                     AT_ARGS(w), step, why);
}

/* Take in the actions emitted since the last look. */
static void take_actions(tf_sched *s, driver *dr)
{
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    for (size_t i = dr->acts_seen; i < n; i++)
        if (a[i].kind == TF_ACT_RUN)
            dr->inflight[dr->ninflight++] = a[i].task;
    dr->acts_seen = n;
    /* Clear rarely, so the buffer grows to thousands of actions. */
    if (n > 3000) {
        tf_sched_clear_actions(s);
        dr->acts_seen = 0;
    }
}

/*
 * Run every sealed task to its end: register workers, dispatch, report
 * tasks done or failed as the plan says, in a seeded random order. A core
 * call that fails with TF_ENOMEM must leave tf_sched_check true; the driver
 * then lets memory back and goes on: it repeats a report the scheduler did
 * not take (the task is still DISPATCHED) and counts one it took without
 * emitting its action as a lost action. Returns false (after recording a
 * failure) when the run cannot go on.
 */
static bool drive(const where *w, tf_sched *s, const plan *p)
{
    char why[256] = "";
    bool ok = false;
    driver dr = {0};
    oom *o = oom_pause();
    dr.inflight = malloc(p->n * sizeof *dr.inflight);
    dr.tries = calloc(p->n, 1);
    oom_resume(o);
    if (!CHECK_TRUE(dr.inflight && dr.tries))
        goto out_with_driver;
    dr.acts_seen = s->nacts;
    tf_rng r = tf_rng_seeded(7);

    static const uint32_t slots[] = {1, 2, 4, 1, 3, 2};
    for (uint32_t i = 0; i < sizeof slots / sizeof *slots; i++) {
        uint32_t wk = SENT32, nw0 = s->nworkers;
        int rc = tf_sched_add_worker(s, slots[i], slots[i] * 16, &wk);
        if (rc) {
            if (!expect_enomem(w, rc, "tf_sched_add_worker") ||
                !CHECK_MSG(wk == SENT32 && s->nworkers == nw0,
                           AT_FMT "failed add_worker wrote *w=%u or "
                                  "nworkers %u -> %u",
                           AT_ARGS(w), wk, nw0, s->nworkers) ||
                !check_after_enomem(w, s, "tf_sched_add_worker"))
                goto out_with_driver;
            if (o)
                oom_relent(o);
            i--;
            continue;
        }
        CHECK_EQ_U(wk, i);
    }

    for (unsigned long step = 0;; step++) {
        int rc = tf_sched_dispatch(s);
        take_actions(s, &dr);
        if (rc) {
            if (!expect_enomem(w, rc, "tf_sched_dispatch") ||
                !check_after_enomem(w, s, "tf_sched_dispatch"))
                goto out_with_driver;
            if (o)
                oom_relent(o);
            continue;
        }
        if (!dr.ninflight) {
            if (!CHECK_MSG(tf_sched_is_finished(s),
                           AT_FMT "run stuck: nothing in flight, %u ready, "
                                  "%u pending, %u held",
                           AT_ARGS(w), s->count[TF_ST_READY],
                           s->count[TF_ST_PENDING], s->count[TF_ST_HELD]))
                goto out_with_driver;
            break;
        }
        uint32_t i = tf_rng_below(&r, dr.ninflight), t = dr.inflight[i];
        dr.inflight[i] = dr.inflight[--dr.ninflight];
        dr.tries[t]++;
        bool fail = p->permfail[t] || (p->flaky[t] && dr.tries[t] == 1);
        const char *call = fail ? "tf_sched_task_failed" : "tf_sched_task_done";
        rc = fail ? tf_sched_task_failed(s, t, TF_EIO)
                  : tf_sched_task_done(s, t);
        take_actions(s, &dr);
        if (rc) {
            if (!expect_enomem(w, rc, call) ||
                !check_after_enomem(w, s, call))
                goto out_with_driver;
            if (o)
                oom_relent(o);
            if (tf_sched_state(s, t) == TF_ST_DISPATCHED) {
                dr.tries[t]--; /* not taken: report it again */
                dr.inflight[dr.ninflight++] = t;
            } else {
                dr.lost_actions++;
            }
        }
        if (step % 1000 == 999 && !CHECK_MSG(sched_ok(s, why, sizeof why),
                                             AT_FMT "step %lu: %s", AT_ARGS(w),
                                             step, why))
            goto out_with_driver;
    }

    ok = CHECK_MSG(sched_ok(s, why, sizeof why), AT_FMT "at the end: %s",
                   AT_ARGS(w), why);
    for (uint32_t t = 0; t < p->n && ok; t++)
        ok = CHECK_MSG(tf_sched_state(s, t) == p->expect[t],
                       AT_FMT "task %u ended %s, want %s", AT_ARGS(w), t,
                       tf_state_name(tf_sched_state(s, t)),
                       tf_state_name((tf_state)p->expect[t]));
    ok = ok && CHECK_TRUE(tf_sched_is_finished(s));
out_with_driver:
    o = oom_pause();
    free(dr.tries);
    free(dr.inflight);
    oom_resume(o);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Scenario 1: building and sealing a 5,000-task DAG. */

#define BUILD_N 5000u

typedef enum seal_fix {
    FIX_RETRY, /* after a failed seal, seal again */
    FIX_DROP,  /* after a failed seal, drop the held tasks and build again */
} seal_fix;

/* Add every task and edge of p; each failed call is checked and repeated. */
static bool add_all(const where *w, tf_sched *s, const plan *p)
{
    oom *o = w->o;
    uint32_t base = s->dag.n;
    for (uint32_t t = 0; t < p->n; t++) {
        uint32_t idx = SENT32, n0 = s->dag.n, held0 = s->count[TF_ST_HELD];
        int rc = tf_sched_add_task(s, p->prio[t], 1, p->retries[t], &idx);
        if (rc) {
            if (!expect_enomem(w, rc, "tf_sched_add_task") ||
                !CHECK_MSG(idx == SENT32 && s->dag.n == n0 &&
                               s->count[TF_ST_HELD] == held0,
                           AT_FMT "failed add_task changed the sched: idx %u, "
                                  "n %u -> %u",
                           AT_ARGS(w), idx, n0, s->dag.n) ||
                !check_after_enomem(w, s, "tf_sched_add_task"))
                return false;
            oom_relent(o);
            t--;
            continue;
        }
        if (!CHECK_EQ_U(idx, base + t))
            return false;
        if (p->noop[t] && !CHECK_RC(tf_sched_set_noop(s, idx), TF_OK))
            return false;
    }
    for (uint32_t e = 0; e < p->m; e++) {
        uint32_t from = base + p->efrom[e], to = base + p->eto[e];
        uint32_t ne0 = s->dag.ne, np0 = s->dag.npend[to];
        uint32_t head0 = s->dag.out_head[from];
        int rc = tf_sched_add_dep(s, from, to);
        if (rc) {
            if (!expect_enomem(w, rc, "tf_sched_add_dep") ||
                !CHECK_MSG(s->dag.ne == ne0 && s->dag.npend[to] == np0 &&
                               s->dag.out_head[from] == head0,
                           AT_FMT "failed add_dep changed the graph",
                           AT_ARGS(w)) ||
                !check_after_enomem(w, s, "tf_sched_add_dep"))
                return false;
            oom_relent(o);
            e--;
        }
    }
    return true;
}

static bool build_and_seal(const where *w, tf_sched *s, const plan *p,
                           seal_fix fix)
{
    if (!add_all(w, s, p))
        return false;
    for (;;) {
        uint32_t cyc[4] = {SENT32, SENT32, SENT32, SENT32};
        size_t ncyc = SENTSZ;
        uint32_t sealed0 = s->sealed, held0 = s->count[TF_ST_HELD];
        size_t nacts0 = s->nacts;
        int rc = tf_sched_seal(s, cyc, 4, &ncyc);
        if (!rc)
            return true;
        if (!expect_enomem(w, rc, "tf_sched_seal") ||
            !CHECK_MSG(ncyc == SENTSZ && cyc[0] == SENT32,
                       AT_FMT "failed seal wrote *ncyc or cyc", AT_ARGS(w)) ||
            !CHECK_MSG(s->sealed == sealed0 &&
                           s->count[TF_ST_HELD] == held0 &&
                           s->nacts == nacts0,
                       AT_FMT "failed seal changed the sched: sealed %u -> "
                              "%u, held %u -> %u, actions %zu -> %zu",
                       AT_ARGS(w), sealed0, s->sealed, held0,
                       s->count[TF_ST_HELD], nacts0, s->nacts) ||
            !check_after_enomem(w, s, "tf_sched_seal"))
            return false;
        oom_relent(w->o);
        if (fix == FIX_DROP) {
            tf_sched_drop_held(s);
            char why[256] = "";
            if (!CHECK_MSG(s->dag.n == sealed0 && !s->count[TF_ST_HELD] &&
                               sched_ok(s, why, sizeof why),
                           AT_FMT "after drop_held: n %u, held %u: %s",
                           AT_ARGS(w), s->dag.n, s->count[TF_ST_HELD], why))
                return false;
            if (!add_all(w, s, p))
                return false;
        }
    }
}

/* One run of scenario 1; returns false when it could not finish. */
static bool build_once(oom *o, oom_mode mode, unsigned long k, seal_fix fix,
                       const plan *p)
{
    tf_sched s;
    tf_sched_init(&s);
    where w = {fix == FIX_RETRY ? "build+seal (retry)" : "build+seal (drop)",
               o};
    oom_start(o, mode, k);
    bool ok = build_and_seal(&w, &s, p, fix);
    oom_stop();
    /* The run itself is scenario 2's business: no injection here. */
    if (ok)
        ok = drive(&w, &s, p);
    tf_sched_free(&s);
    return ok;
}

/* The k loop shared by the sched scenarios. */
typedef bool (*scenario_fn)(oom *o, oom_mode mode, unsigned long k, int variant,
                            const plan *p);

static void sweep(scenario_fn fn, int variant, const plan *p, const char *name)
{
    oom o;
    if (!CHECK_MSG(fn(&o, OOM_ONCE, 0, variant, p), "%s: reference run failed",
                   name))
        return;
    unsigned long n = o.seen;
    if (!CHECK_MSG(n < K_MAX, "%s: %lu allocations", name, n))
        return;
    for (int m = OOM_ONCE; m <= OOM_FROM; m++) {
        unsigned long tried = 0, bad = 0;
        for (unsigned long k = 1; k <= n + 1; k++) {
            if (k <= n && !k_is_sampled(k, n))
                continue;
            tried++;
            if (!fn(&o, (oom_mode)m, k, variant, p))
                bad++;
            if (k <= n)
                CHECK_MSG(o.failed > 0, "%s k=%lu: nothing was failed", name,
                          k);
            else
                CHECK_MSG(o.failed == 0, "%s k=%lu: a failure was injected",
                          name, k);
        }
        printf("\n    %s, mode %s: %lu allocations, %lu values of k tried, "
               "%lu broke the contract\n",
               name, mode_name((oom_mode)m), n, tried, bad);
    }
}

static bool build_fn(oom *o, oom_mode mode, unsigned long k, int variant,
                     const plan *p)
{
    return build_once(o, mode, k, (seal_fix)variant, p);
}

static void test_build_retry(void)
{
    plan p;
    if (!CHECK_TRUE(plan_make(&p, BUILD_N, 1, false)))
        return;
    sweep(build_fn, FIX_RETRY, &p, "build+seal (retry)");
    plan_free(&p);
}

static void test_build_drop(void)
{
    plan p;
    if (!CHECK_TRUE(plan_make(&p, BUILD_N, 1, false)))
        return;
    sweep(build_fn, FIX_DROP, &p, "build+seal (drop)");
    plan_free(&p);
}

/* ------------------------------------------------------------------------ */
/* Scenario 2: dispatch and completion, with retries, failures and skips. */

static bool run_fn(oom *o, oom_mode mode, unsigned long k, int variant,
                   const plan *p)
{
    (void)variant;
    tf_sched s;
    tf_sched_init(&s);
    where w = {"dispatch+complete", o};
    /* Build and seal with memory to spare; inject only into the run. */
    oom_start(o, OOM_ONCE, 0);
    bool ok = build_and_seal(&w, &s, p, FIX_RETRY);
    oom_stop();
    if (ok) {
        oom_start(o, mode, k);
        ok = drive(&w, &s, p);
        oom_stop();
    }
    tf_sched_free(&s);
    return ok;
}

static void test_run(void)
{
    plan p;
    if (!CHECK_TRUE(plan_make(&p, BUILD_N, 2, true)))
        return;
    uint32_t nfail = 0, nskip = 0;
    for (uint32_t t = 0; t < p.n; t++) {
        nfail += p.expect[t] == TF_ST_FAILED;
        nskip += p.expect[t] == TF_ST_SKIPPED;
    }
    printf("\n    plan: %u tasks, %u edges, %u fail, %u skipped", p.n, p.m,
           nfail, nskip);
    sweep(run_fn, 0, &p, "dispatch+complete");
    plan_free(&p);
}

/* ------------------------------------------------------------------------ */
/* Scenario 3: the cycle search's scratch space. */

#define CYC_N 50u

/* Task t depends on t+1 (edges point backward); `cyclic` closes the ring. */
static int ring_build(tf_sched *s, bool cyclic)
{
    tf_sched_init(s);
    for (uint32_t t = 0; t < CYC_N; t++) {
        uint32_t idx;
        int rc = tf_sched_add_task(s, 0, 1, 0, &idx);
        if (rc)
            return rc;
    }
    for (uint32_t t = 0; t + 1 < CYC_N; t++) {
        int rc = tf_sched_add_dep(s, t + 1, t);
        if (rc)
            return rc;
    }
    return cyclic ? tf_sched_add_dep(s, 0, CYC_N - 1) : 0;
}

static bool dag_equal(const tf_dag *a, const tf_dag *b)
{
    return a->n == b->n && a->ne == b->ne &&
           !memcmp(a->npend, b->npend, a->n * sizeof *a->npend) &&
           !memcmp(a->out_head, b->out_head, a->n * sizeof *a->out_head) &&
           !memcmp(a->state, b->state, a->n) &&
           !memcmp(a->flags, b->flags, a->n) &&
           !memcmp(a->e_to, b->e_to, a->ne * sizeof *a->e_to) &&
           !memcmp(a->e_next, b->e_next, a->ne * sizeof *a->e_next);
}

static void cycle_case(bool cyclic, oom_mode mode)
{
    tf_sched s, ref;
    if (!CHECK_RC(ring_build(&s, cyclic), TF_OK) ||
        !CHECK_RC(ring_build(&ref, cyclic), TF_OK))
        goto out_with_scheds;
    long want = cyclic ? (long)CYC_N : 0;
    unsigned long k;
    for (k = 1; k <= 100; k++) {
        oom o;
        uint32_t cyc[8];
        memset(cyc, 0xA5, sizeof cyc);
        oom_start(&o, mode, k);
        long len = tf_dag_find_cycle(&s.dag, 0, cyc, 8);
        oom_stop();
        if (!o.failed) {
            CHECK_EQ_I(len, want);
            break;
        }
        CHECK_MSG(len == TF_ENOMEM, "find_cycle k=%lu (%s): %ld", k,
                  mode_name(mode), len);
        CHECK_MSG(cyc[0] == 0xA5A5A5A5u, "find_cycle k=%lu wrote cyc", k);
        CHECK_MSG(dag_equal(&s.dag, &ref.dag), "find_cycle k=%lu changed "
                  "the graph", k);

        /* The same through tf_sched_seal: it fails and changes nothing. */
        size_t ncyc = SENTSZ;
        oom_start(&o, mode, k);
        int rc = tf_sched_seal(&s, cyc, 8, &ncyc);
        oom_stop();
        char why[256] = "";
        CHECK_RC(rc, TF_ENOMEM);
        CHECK_MSG(ncyc == SENTSZ && s.sealed == 0 && s.nacts == 0 &&
                      s.count[TF_ST_HELD] == CYC_N && s.rq.n == 0,
                  "seal k=%lu changed the sched", k);
        CHECK_MSG(dag_equal(&s.dag, &ref.dag), "seal k=%lu changed the graph",
                  k);
        CHECK_MSG(tf_sched_check(&s, why, sizeof why), "seal k=%lu: %s", k,
                  why);
    }
    CHECK_EQ_U(k, 4); /* colour, stack, edge */
    size_t ncyc = SENTSZ;
    uint32_t cyc[8];
    int rc = tf_sched_seal(&s, cyc, 8, &ncyc);
    if (cyclic) {
        CHECK_RC(rc, TF_ECYCLE);
        CHECK_EQ_U(ncyc, CYC_N);
        tf_sched_drop_held(&s);
        CHECK_EQ_U(s.dag.n, 0);
    } else {
        CHECK_RC(rc, TF_OK);
        CHECK_EQ_U(ncyc, SENTSZ);
        CHECK_EQ_U(s.count[TF_ST_READY], 1);
        CHECK_EQ_U(s.count[TF_ST_PENDING], CYC_N - 1);
    }
    CHECK_SCHED(&s);
out_with_scheds:
    tf_sched_free(&ref);
    tf_sched_free(&s);
}

static void test_find_cycle(void)
{
    for (int m = OOM_ONCE; m <= OOM_FROM; m++) {
        cycle_case(false, (oom_mode)m);
        cycle_case(true, (oom_mode)m);
    }
}

/* ------------------------------------------------------------------------ */
/* Scenario 4: tf_idmap_put growth. */

#define MAP_N 10000u

static uint64_t map_key(uint32_t i)
{
    return ((uint64_t)(i % 7 + 1) << 48) | ((uint64_t)i * 2654435761u);
}

/* Put MAP_N keys (and replace every tenth); false after a broken contract. */
static bool idmap_run(oom *o, oom_mode mode, unsigned long k)
{
    tf_idmap m;
    tf_idmap_init(&m);
    bool ok = true;
    oom_start(o, mode, k);
    for (uint32_t i = 0; i < MAP_N + MAP_N / 10 && ok; i++) {
        uint32_t key_i = i < MAP_N ? i : (i - MAP_N) * 10;
        uint32_t val = i;
        size_t n0 = m.n, cap0 = m.cap;
        const uint64_t *keys0 = m.keys;
        int rc = tf_idmap_put(&m, map_key(key_i), val);
        if (!rc)
            continue;
        ok = CHECK_MSG(rc == TF_ENOMEM, "idmap %s k=%lu: put returned %d",
                       mode_name(mode), k, rc) &&
             CHECK_MSG(m.n == n0 && m.cap == cap0 && m.keys == keys0,
                       "idmap %s k=%lu: failed put changed the map",
                       mode_name(mode), k);
        for (uint32_t j = 0; j < i && j < MAP_N && ok; j++) {
            uint32_t want = j;
            if (i >= MAP_N && j % 10 == 0 && j / 10 < i - MAP_N)
                want = MAP_N + j / 10;
            ok = CHECK_MSG(tf_idmap_get(&m, map_key(j)) == want,
                           "idmap k=%lu: key %u lost after a failed put", k,
                           j);
        }
        if (i < MAP_N)
            ok = ok && CHECK_EQ_U(tf_idmap_get(&m, map_key(i)), UINT32_MAX);
        oom_relent(o);
        i--;
    }
    oom_stop();
    for (uint32_t j = 0; j < MAP_N && ok; j++) {
        uint32_t want = j % 10 == 0 ? MAP_N + j / 10 : j;
        ok = CHECK_EQ_U(tf_idmap_get(&m, map_key(j)), want);
    }
    ok = ok && CHECK_EQ_U(m.n, MAP_N);
    tf_idmap_free(&m);
    return ok;
}

static void test_idmap(void)
{
    oom o;
    idmap_run(&o, OOM_ONCE, 0);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++) {
            idmap_run(&o, (oom_mode)mode, k);
            CHECK_MSG((o.failed > 0) == (k <= n), "idmap k=%lu: %lu failed", k,
                      o.failed);
        }
    printf("\n    idmap: %lu allocations, each failed in both modes\n", n);
}

/* ------------------------------------------------------------------------ */
/* Scenario 5: tf_rq_push growth. */

#define RQ_N 10000u

static bool rq_run(oom *o, oom_mode mode, unsigned long k, const int32_t *prio)
{
    tf_rq q;
    tf_rq_init(&q, &prio);
    bool ok = true;
    oom_start(o, mode, k);
    for (uint32_t t = 0; t < RQ_N && ok; t++) {
        size_t n0 = q.n, cap0 = q.cap;
        const uint32_t *heap0 = q.heap;
        int rc = tf_rq_push(&q, t);
        if (!rc)
            continue;
        ok = CHECK_MSG(rc == TF_ENOMEM, "rq %s k=%lu: push returned %d",
                       mode_name(mode), k, rc) &&
             CHECK_MSG(q.n == n0 && q.cap == cap0 && q.heap == heap0 &&
                           tf_rq_check(&q),
                       "rq %s k=%lu: failed push changed the queue",
                       mode_name(mode), k);
        oom_relent(o);
        t--;
    }
    oom_stop();
    ok = ok && CHECK_EQ_U(q.n, RQ_N);
    uint32_t prev = TF_NONE, popped = 0;
    for (uint32_t t; ok && (t = tf_rq_pop(&q)) != TF_NONE; prev = t) {
        popped++;
        if (prev != TF_NONE)
            ok = CHECK_MSG(prio[prev] > prio[t] ||
                               (prio[prev] == prio[t] && prev < t),
                           "rq k=%lu: %u came out before %u", k, prev, t);
    }
    ok = ok && CHECK_EQ_U(popped, RQ_N);
    tf_rq_free(&q);
    return ok;
}

static void test_rq(void)
{
    int32_t *prio = malloc(RQ_N * sizeof *prio);
    if (!CHECK_TRUE(prio))
        return;
    tf_rng r = tf_rng_seeded(5);
    for (uint32_t t = 0; t < RQ_N; t++)
        prio[t] = (int32_t)tf_rng_below(&r, 21) - 10;
    oom o;
    rq_run(&o, OOM_ONCE, 0, prio);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++) {
            rq_run(&o, (oom_mode)mode, k, prio);
            CHECK_MSG((o.failed > 0) == (k <= n), "rq k=%lu: %lu failed", k,
                      o.failed);
        }
    printf("\n    rq: %lu allocations, each failed in both modes\n", n);
    free(prio);
}

/* ------------------------------------------------------------------------ */
/* Scenario 6: tf_taskfile_parse on a 2,000-line file. */

#define TF_LINES 2000u

/*
 * Segments of 40 lines end in `@barrier`. Inside a segment, task j (counted
 * from the segment's start) names task j+1 in @after when j % 3 == 0, a
 * forward reference, and task j-2 otherwise. That graph has no cycle (a
 * cycle would need two +1 steps in a row). Every fifth task has no @id and
 * is named by its line number; some lines are comments or blank; every
 * 13th line is an @array of four elements, which the names of its line
 * name all at once. With `errors`, a few lines name unknown ids and one
 * repeats an id.
 */
static char *taskfile_text(bool errors, size_t *len)
{
    size_t cap = (size_t)TF_LINES * 96, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    uint32_t seg = 40;
    for (uint32_t line = 1; line <= TF_LINES; line++) {
        uint32_t j = (line - 1) % seg; /* place in segment */
        char id[32], after[64] = "";
        uint32_t first = line - j;
        if (j == seg - 1) {
            n += (size_t)snprintf(s + n, cap - n, "@barrier\n");
            continue;
        }
        if (j == 17) {
            n += (size_t)snprintf(s + n, cap - n, "# comment %u\n", line);
            continue;
        }
        if (j == 23) {
            n += (size_t)snprintf(s + n, cap - n, "  \n");
            continue;
        }
        /* The id a line's task goes by, and whether it is a task line. */
        uint32_t dep = TF_NONE;
        if (j % 3 == 0 && j + 1 < seg - 1 && j + 1 != 17 && j + 1 != 23)
            dep = line + 1;
        else if (j >= 2 && j - 2 != 17 && j - 2 != 23)
            dep = line - 2;
        (void)first;
        if (dep != TF_NONE) {
            if (dep % 5 == 0)
                snprintf(after, sizeof after, " @after=%u", dep);
            else
                snprintf(after, sizeof after, " @after=t%u", dep);
        }
        if (errors && line % 397 == 0)
            snprintf(after, sizeof after, " @after=nosuch%u", line);
        if (line % 5 == 0)
            id[0] = '\0';
        else
            snprintf(id, sizeof id, "@id=t%u ",
                     errors && line == 1203 ? 1202 : line);
        n += (size_t)snprintf(s + n, cap - n, "%s@prio=%d%s%s%s echo task %u\n",
                              id, (int)(line % 7) - 3, after,
                              line % 11 == 0 ? " @cores=2 @retries=1" : "",
                              line % 13 == 0 ? " @array=1-3,x" : "", line);
    }
    *len = n;
    return s;
}

static bool taskfile_equal(const tf_taskfile *a, const tf_taskfile *b)
{
    for (uint32_t i = 0; i < a->n && i < b->n; i++)
        if (!tf_tftask_equal(&a->tasks[i], &b->tasks[i]))
            return false;
    return a->n == b->n && a->ntasks == b->ntasks &&
           a->nbarriers == b->nbarriers && a->nafter == b->nafter &&
           a->nedges == b->nedges && a->max_chain == b->max_chain &&
           a->max_cores == b->max_cores && a->pool_len == b->pool_len &&
           a->narrays == b->narrays &&
           !memcmp(a->arrays, b->arrays, a->narrays * sizeof *a->arrays) &&
           !memcmp(a->deps, b->deps, a->nedges * sizeof *a->deps) &&
           !memcmp(a->pool, b->pool, a->pool_len);
}

static void taskfile_case(bool errors)
{
    const char *what = errors ? "taskfile with errors" : "taskfile";
    size_t len = 0;
    char *text = taskfile_text(errors, &len);
    if (!CHECK_TRUE(text))
        return;
    tf_taskfile ref = {0};
    tf_tferr ref_err;
    oom o;
    oom_start(&o, OOM_ONCE, 0);
    int ref_rc = tf_taskfile_parse("big.txt", text, len, &ref, &ref_err);
    oom_stop();
    unsigned long n = o.seen;
    if (!CHECK_RC(ref_rc, errors ? TF_EINVAL : TF_OK))
        goto out_with_ref;
    if (errors) {
        CHECK_MSG(ref_err.n >= 3, "%s: %zu messages", what, ref_err.n);
    } else {
        CHECK_EQ_U(ref_err.n, 0);
        CHECK_EQ_U(ref.nbarriers, TF_LINES / 40);
        CHECK_MSG(ref.max_chain > 1, "max_chain %u", ref.max_chain);
        CHECK_MSG(ref.narrays > 100, "%u arrays", ref.narrays);
    }
    unsigned long absorbed = 0, tried = 0;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++) {
        for (unsigned long k = 1; k <= n + 1; k++) {
            if (k <= n && !k_is_sampled(k, n))
                continue;
            tried++;
            tf_taskfile out;
            memset(&out, 0xA5, sizeof out);
            tf_taskfile sent;
            memset(&sent, 0xA5, sizeof sent);
            tf_tferr err;
            oom_start(&o, (oom_mode)mode, k);
            int rc = tf_taskfile_parse("big.txt", text, len, &out, &err);
            oom_stop();
            if (rc == ref_rc) {
                /* No failure, or one the parser worked around. */
                if (o.failed)
                    absorbed++;
                if (!errors && CHECK_MSG(taskfile_equal(&out, &ref),
                                         "%s %s k=%lu: result differs", what,
                                         mode_name((oom_mode)mode), k))
                    tf_taskfile_free(&out);
                else if (!errors)
                    tf_taskfile_free(&out);
                CHECK_MSG(err.n == ref_err.n,
                          "%s k=%lu: %zu messages, want %zu", what, k, err.n,
                          ref_err.n);
            } else {
                CHECK_MSG(o.failed && rc == TF_ENOMEM,
                          "%s %s k=%lu: returned %s (%d), %lu failed", what,
                          mode_name((oom_mode)mode), k, tf_err_name(rc), rc,
                          o.failed);
                CHECK_MSG(!memcmp(&out, &sent, sizeof out),
                          "%s %s k=%lu: *out written on failure", what,
                          mode_name((oom_mode)mode), k);
                CHECK_MSG(err.n <= ref_err.n,
                          "%s k=%lu: %zu messages, reference has %zu", what, k,
                          err.n, ref_err.n);
                for (size_t i = 0; i < err.n; i++)
                    CHECK_MSG(err.msgs[i].text != NULL,
                              "%s k=%lu: message %zu has no text", what, k, i);
            }
            if (errors && rc == TF_EINVAL)
                CHECK_MSG(!memcmp(&out, &sent, sizeof out),
                          "%s k=%lu: *out written on TF_EINVAL", what, k);
            if (k > n)
                CHECK_MSG(!o.failed && rc == ref_rc, "%s k=%lu", what, k);
            tf_tferr_free(&err);
            CHECK_TRUE(err.n == 0 && err.msgs == NULL);
        }
    }
    printf("\n    %s: %lu allocations, %lu runs, %lu failures worked around "
           "(trimming reallocs)\n",
           what, n, tried, absorbed);
out_with_ref:
    if (ref_rc == TF_OK)
        tf_taskfile_free(&ref);
    tf_tferr_free(&ref_err);
    free(text);
}

static void test_taskfile(void) { taskfile_case(false); }
static void test_taskfile_errors(void) { taskfile_case(true); }

/* ------------------------------------------------------------------------ */
/*
 * Scenario 7: parking (local release). A stencil runs with park on while
 * allocations fail, with failures, retries, unrun reports and a halt; and
 * each event that unparks or skips a long parked chain is run with every
 * one of its allocations failed in turn. A failed event must leave the
 * scheduler exactly as it was; a dispatch keeps what it emitted before the
 * failure (each action is whole) and parking short of memory simply does
 * not park.
 */

/* Everything a failed event must leave alone. */
typedef struct snap {
    uint32_t n, nworkers, sealed, count[TF_ST_COUNT_];
    size_t nacts, rqn;
    bool halted;
    uint8_t *state, *attempts, *flags;
    uint32_t *npend, *worker, *ntasks, *heap; /* heap: the queue's entries */
    size_t rqhn;                              /* of which in its heap */
} snap;

static void snap_free(snap *sn)
{
    oom *o = oom_pause();
    free(sn->state);
    free(sn->attempts);
    free(sn->flags);
    free(sn->npend);
    free(sn->worker);
    free(sn->ntasks);
    free(sn->heap);
    oom_resume(o);
    memset(sn, 0, sizeof *sn);
}

static bool snap_take(snap *sn, const tf_sched *s)
{
    oom *o = oom_pause();
    size_t n = s->dag.n ? s->dag.n : 1;
    *sn = (snap){s->dag.n,
                 s->nworkers,
                 s->sealed,
                 {0},
                 s->nacts,
                 s->rq.n,
                 s->halted,
                 malloc(n),
                 malloc(n),
                 malloc(n),
                 malloc(n * sizeof(uint32_t)),
                 malloc(n * sizeof(uint32_t)),
                 malloc((s->nworkers + 1) * sizeof(uint32_t)),
                 malloc((s->rq.n + 1) * sizeof(uint32_t)),
                 s->rq.hn};
    oom_resume(o);
    if (!CHECK_TRUE(sn->state && sn->attempts && sn->flags && sn->npend &&
                    sn->worker && sn->ntasks && sn->heap)) {
        snap_free(sn);
        return false;
    }
    memcpy(sn->count, s->count, sizeof sn->count);
    memcpy(sn->state, s->dag.state, s->dag.n);
    memcpy(sn->attempts, s->dag.attempts, s->dag.n);
    memcpy(sn->flags, s->dag.flags, s->dag.n);
    memcpy(sn->npend, s->dag.npend, s->dag.n * sizeof *sn->npend);
    memcpy(sn->worker, s->dag.worker, s->dag.n * sizeof *sn->worker);
    for (uint32_t w = 0; w < s->nworkers; w++)
        sn->ntasks[w] = s->workers[w].ntasks;
    for (size_t i = 0; i < s->rq.n; i++)
        sn->heap[i] = tf_rq_at(&s->rq, i);
    return true;
}

static bool snap_same(const snap *sn, const tf_sched *s)
{
    if (sn->n != s->dag.n || sn->nworkers != s->nworkers ||
        sn->sealed != s->sealed || sn->nacts != s->nacts ||
        sn->rqn != s->rq.n || sn->halted != s->halted ||
        memcmp(sn->count, s->count, sizeof sn->count) ||
        memcmp(sn->state, s->dag.state, sn->n) ||
        memcmp(sn->attempts, s->dag.attempts, sn->n) ||
        memcmp(sn->flags, s->dag.flags, sn->n) ||
        memcmp(sn->npend, s->dag.npend, sn->n * sizeof *sn->npend) ||
        memcmp(sn->worker, s->dag.worker, sn->n * sizeof *sn->worker) ||
        sn->rqhn != s->rq.hn)
        return false;
    for (size_t i = 0; i < sn->rqn; i++)
        if (sn->heap[i] != tf_rq_at(&s->rq, i))
            return false;
    for (uint32_t w = 0; w < s->nworkers; w++)
        if (sn->ntasks[w] != s->workers[w].ntasks)
            return false;
    return true;
}

typedef enum pev { PE_DONE, PE_FAIL, PE_UNRUN, PE_HALT, PE_LOST } pev;

static const char *const pev_names[] = {
    "tf_sched_task_done", "tf_sched_task_failed", "tf_sched_task_unrun",
    "tf_sched_halt", "tf_sched_worker_lost"};

/*
 * One event (t is the task, or the worker for PE_LOST). On TF_ENOMEM it
 * checks that nothing changed, or for worker_lost (which gives back the
 * tasks one by one, each whole) that the invariants hold, then lets memory
 * back. Returns the event's code; *ok goes false on a broken contract.
 */
static int pev_run(const where *w, tf_sched *s, pev ev, uint32_t t, bool *ok)
{
    snap sn;
    if (!snap_take(&sn, s))
        return *ok = false;
    int rc = ev == PE_DONE    ? tf_sched_task_done(s, t)
             : ev == PE_FAIL  ? tf_sched_task_failed(s, t, TF_EIO)
             : ev == PE_UNRUN ? tf_sched_task_unrun(s, t)
             : ev == PE_HALT  ? tf_sched_halt(s)
                              : tf_sched_worker_lost(s, t);
    if (rc) {
        *ok = expect_enomem(w, rc, pev_names[ev]) &&
              (ev == PE_LOST ||
               CHECK_MSG(snap_same(&sn, s),
                         AT_FMT "failed %s(%u) changed the scheduler",
                         AT_ARGS(w), pev_names[ev], t)) &&
              check_after_enomem(w, s, pev_names[ev]);
        if (w->o)
            oom_relent(w->o);
    }
    snap_free(&sn);
    return rc;
}

static bool has_parked_dependent(const tf_sched *s, uint32_t t)
{
    for (uint32_t e = s->dag.out_head[t]; e != TF_NONE; e = s->dag.e_next[e])
        if (s->dag.state[s->dag.e_to[e]] == TF_ST_PARKED)
            return true;
    return false;
}

/*
 * Wide enough, with deep enough windows, that one dispatch places and
 * parks hundreds of tasks and the parking buffers grow mid-run.
 */
#define PST_W 24u     /* stencil width */
#define PST_STEPS 25u /* and steps */
#define PST_DEPTH 128u

/*
 * A stencil: task (step, x) depends on (step-1, x-1..x+1). Index order is
 * a topological order. About one task in ten is flaky (fails its first
 * attempt, one retry), a few in the last third fail for good.
 */
static bool plan_stencil(plan *p, uint64_t seed)
{
    uint32_t n = PST_W * PST_STEPS;
    memset(p, 0, sizeof *p);
    tf_rng r = tf_rng_seeded(seed);
    p->n = n;
    p->prio = calloc(n, sizeof *p->prio);
    p->retries = calloc(n, 1);
    p->noop = calloc(n, 1);
    p->permfail = calloc(n, 1);
    p->flaky = calloc(n, 1);
    p->efrom = malloc(3 * (size_t)n * sizeof *p->efrom);
    p->eto = malloc(3 * (size_t)n * sizeof *p->eto);
    p->expect = malloc(n);
    if (!p->prio || !p->retries || !p->noop || !p->permfail || !p->flaky ||
        !p->efrom || !p->eto || !p->expect) {
        plan_free(p);
        return false;
    }
    for (uint32_t t = 0; t < n; t++) {
        uint32_t roll = tf_rng_below(&r, 100);
        if (roll < 3 && t >= n / 3 * 2) {
            p->permfail[t] = 1;
        } else if (roll < 12) {
            p->flaky[t] = 1;
            p->retries[t] = 1;
        }
        if (t >= PST_W) {
            uint32_t x = t % PST_W;
            for (uint32_t y = x ? x - 1 : 0; y <= x + 1 && y < PST_W; y++) {
                p->efrom[p->m] = t - PST_W - x + y;
                p->eto[p->m] = t;
                p->m++;
            }
        }
    }
    for (uint32_t t = 0; t < n; t++)
        p->expect[t] = p->permfail[t] ? TF_ST_FAILED : TF_ST_DONE;
    for (uint32_t e = 0; e < p->m; e++) /* edges in index order of `to` */
        if (p->expect[p->efrom[e]] != TF_ST_DONE)
            p->expect[p->eto[e]] = TF_ST_SKIPPED;
    return true;
}

/* The driver's view: tasks on workers, running or queued, and parked. */
typedef struct pdriver {
    uint32_t *inflight, ninflight;
    uint32_t *parked, nparked;
    uint8_t *tries; /* attempts that reported */
    size_t acts_seen;
    unsigned long parks, unruns;
} pdriver;

static void pd_take(tf_sched *s, pdriver *dr)
{
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    for (size_t i = dr->acts_seen; i < n; i++) {
        if (a[i].kind == TF_ACT_RUN)
            dr->inflight[dr->ninflight++] = a[i].task;
        if (a[i].kind == TF_ACT_PARK) {
            dr->parked[dr->nparked++] = a[i].task;
            dr->parks++;
        }
    }
    dr->acts_seen = n;
    if (n > 3000) {
        tf_sched_clear_actions(s);
        dr->acts_seen = 0;
    }
}

/*
 * Parked tasks the scheduler released (their last dependency reported
 * done) run now; those it unparked or skipped are gone from the worker.
 */
static void pd_sync(const tf_sched *s, pdriver *dr)
{
    for (uint32_t i = 0; i < dr->nparked;) {
        uint32_t t = dr->parked[i];
        tf_state st = tf_sched_state(s, t);
        if (st == TF_ST_PARKED) {
            i++;
            continue;
        }
        if (st == TF_ST_DISPATCHED)
            dr->inflight[dr->ninflight++] = t;
        dr->parked[i] = dr->parked[--dr->nparked];
    }
}

/*
 * Run the sealed stencil to its end with park on under the armed
 * injector. variant 0: failures, retries and unrun reports, ending as the
 * plan says; variant 1: a halt half way, then what was dispatched either
 * finishes or comes back unrun.
 */
static bool drive_park(const where *w, tf_sched *s, const plan *p, int variant)
{
    char why[256] = "";
    bool ok = false;
    pdriver dr = {0};
    oom *o = oom_pause();
    dr.inflight = malloc(p->n * sizeof *dr.inflight);
    dr.parked = malloc(p->n * sizeof *dr.parked);
    dr.tries = calloc(p->n, 1);
    oom_resume(o);
    if (!CHECK_TRUE(dr.inflight && dr.parked && dr.tries))
        goto out_with_driver;
    dr.acts_seen = s->nacts;
    tf_rng r = tf_rng_seeded(11 + (uint64_t)variant);
    static const uint32_t slots[] = {1, 2, 1};
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t wk = SENT32;
        int rc = tf_sched_add_worker(s, slots[i], PST_DEPTH, &wk);
        if (rc) {
            if (!expect_enomem(w, rc, "tf_sched_add_worker"))
                goto out_with_driver;
            if (o)
                oom_relent(o);
            i--;
        }
    }
    bool halted = false;
    unsigned long halt_step = variant ? p->n / 2 : ~0ul;
    for (unsigned long step = 0;; step++) {
        int rc = tf_sched_dispatch(s);
        pd_take(s, &dr);
        if (rc) {
            if (!expect_enomem(w, rc, "tf_sched_dispatch") ||
                !check_after_enomem(w, s, "tf_sched_dispatch"))
                goto out_with_driver;
            if (o)
                oom_relent(o);
            continue;
        }
        pd_sync(s, &dr);
        if (!dr.ninflight) {
            if (!CHECK_MSG(tf_sched_is_finished(s) && !dr.nparked,
                           AT_FMT "run stuck: nothing in flight, %u parked, "
                                  "%u ready, %u pending",
                           AT_ARGS(w), dr.nparked, s->count[TF_ST_READY],
                           s->count[TF_ST_PENDING]))
                goto out_with_driver;
            break;
        }
        bool run_ok = true;
        if (step >= halt_step && !halted) {
            if (!pev_run(w, s, PE_HALT, 0, &run_ok))
                halted = true;
            pd_take(s, &dr);
            if (!run_ok)
                goto out_with_driver;
            continue;
        }
        uint32_t i = tf_rng_below(&r, dr.ninflight), t = dr.inflight[i];
        pev ev =
            p->permfail[t] || (p->flaky[t] && !dr.tries[t]) ? PE_FAIL : PE_DONE;
        bool unruns_left = dr.unruns < p->n / 6;
        if (halted ? tf_rng_below(&r, 2)
                   : unruns_left && has_parked_dependent(s, t) &&
                         !tf_rng_below(&r, 3)) {
            ev = PE_UNRUN;
        } else if (!halted && unruns_left && dr.nparked &&
                   !tf_rng_below(&r, 12)) {
            ev = PE_UNRUN; /* a parked task comes back */
            t = dr.parked[tf_rng_below(&r, dr.nparked)];
            i = TF_NONE;
        }
        rc = pev_run(w, s, ev, t, &run_ok);
        pd_take(s, &dr);
        if (!run_ok)
            goto out_with_driver;
        if (rc)
            continue; /* not taken: it is still where it was */
        if (ev == PE_UNRUN)
            dr.unruns++;
        else
            dr.tries[t]++;
        if (i != TF_NONE)
            dr.inflight[i] = dr.inflight[--dr.ninflight];
        pd_sync(s, &dr);
        if (step % 50 == 49 &&
            !CHECK_MSG(sched_ok(s, why, sizeof why), AT_FMT "step %lu: %s",
                       AT_ARGS(w), step, why))
            goto out_with_driver;
    }
    /* Without injected failures the run parks and unruns (else, maybe not). */
    ok = CHECK_MSG(sched_ok(s, why, sizeof why), AT_FMT "at the end: %s",
                   AT_ARGS(w), why) &&
         CHECK_TRUE(tf_sched_is_finished(s)) &&
         CHECK_MSG((o && o->failed) || (dr.parks > 0 && dr.unruns > 0),
                   AT_FMT "%lu parks, %lu unruns", AT_ARGS(w), dr.parks,
                   dr.unruns);
    for (uint32_t k = 0; k < s->nworkers && ok; k++)
        ok = CHECK_MSG(!s->workers[k].ntasks, AT_FMT "worker %u ends with %u",
                       AT_ARGS(w), k, s->workers[k].ntasks);
    for (uint32_t t = 0; t < p->n && ok; t++)
        ok = CHECK_MSG(variant ? tf_state_is_terminal(tf_sched_state(s, t))
                               : tf_sched_state(s, t) == p->expect[t],
                       AT_FMT "task %u ended %s, want %s", AT_ARGS(w), t,
                       tf_state_name(tf_sched_state(s, t)),
                       tf_state_name((tf_state)p->expect[t]));
out_with_driver:
    o = oom_pause();
    free(dr.tries);
    free(dr.parked);
    free(dr.inflight);
    oom_resume(o);
    return ok;
}

static bool park_run_fn(oom *o, oom_mode mode, unsigned long k, int variant,
                        const plan *p)
{
    tf_sched s;
    tf_sched_init(&s);
    s.park = true;
    where w = {variant ? "stencil with parking, halt" : "stencil with parking",
               o};
    oom_start(o, OOM_ONCE, 0);
    bool ok = build_and_seal(&w, &s, p, FIX_RETRY);
    oom_stop();
    if (ok) {
        oom_start(o, mode, k);
        ok = drive_park(&w, &s, p, variant);
        oom_stop();
    }
    tf_sched_free(&s);
    return ok;
}

static void test_park_run(void)
{
    plan p;
    if (!CHECK_TRUE(plan_stencil(&p, 3)))
        return;
    sweep(park_run_fn, 0, &p, "stencil with parking");
    sweep(park_run_fn, 1, &p, "stencil with parking, halt");
    plan_free(&p);
}

/*
 * A chain 0 .. PCH_N/2-1 whose last task fans out to the other half:
 * parked whole behind task 0, it outgrows every buffer, and unparking the
 * fan needs a deep traversal stack.
 */
#define PCH_N 700u

typedef enum pcase {
    PC_DISPATCH,     /* the dispatch that parks the chain */
    PC_RETRY,        /* the anchor fails and will be retried */
    PC_FAIL,         /* the anchor fails for good */
    PC_UNRUN,        /* the anchor comes back unrun */
    PC_UNRUN_PARKED, /* a parked task in the middle comes back unrun */
    PC_HALT_UNRUN,   /* after a halt, the first parked task comes back */
    PC_LOST,         /* the worker is lost */
    PC_COUNT
} pcase;

static const char *const pcase_names[PC_COUNT] = {
    "dispatch parking 699",
    "task_failed, retry",
    "task_failed, final",
    "task_unrun of the anchor",
    "task_unrun of a parked task",
    "halt, task_unrun of a parked task",
    "worker_lost"};

/*
 * One run of case c with the k-th allocation failing (mode): build the
 * chain with memory, dispatch it (under injection for PC_DISPATCH), then
 * the event under injection, then finish with memory and check the end.
 * *parks gets how many tasks the dispatch parked.
 */
static bool chain_case(oom *o, oom_mode mode, unsigned long k, pcase c,
                       uint32_t *parks)
{
    tf_sched s;
    tf_sched_init(&s);
    s.park = true;
    where w = {pcase_names[c], o};
    bool ok = true;
    uint32_t wk = 0, spare = 0, idx;
    for (uint32_t t = 0; t < PCH_N && ok; t++)
        ok = CHECK_RC(tf_sched_add_task(&s, 0, 1, c == PC_FAIL ? 0 : 1, &idx),
                      TF_OK);
    for (uint32_t t = 1; t < PCH_N && ok; t++)
        ok = CHECK_RC(
            tf_sched_add_dep(&s, t < PCH_N / 2 ? t - 1 : PCH_N / 2 - 1, t),
            TF_OK);
    ok = ok && CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK) &&
         CHECK_RC(tf_sched_add_worker(&s, 1, 1024, &wk), TF_OK) &&
         CHECK_RC(tf_sched_add_worker(&s, 1, 1024, &spare), TF_OK) &&
         CHECK_RC(tf_sched_set_depth(&s, spare, 1), TF_OK);
    if (!ok)
        goto out_with_sched;

    /* The dispatch: the chain goes to the first worker, parked. */
    if (c == PC_DISPATCH)
        oom_start(o, mode, k);
    int rc = tf_sched_dispatch(&s);
    if (c == PC_DISPATCH)
        oom_stop();
    char why[256] = "";
    if (rc) {
        /* What it emitted before the failure stands; nothing else moved. */
        ok = expect_enomem(&w, rc, "tf_sched_dispatch") &&
             check_after_enomem(&w, &s, "tf_sched_dispatch") &&
             CHECK_MSG(s.nacts == s.workers[wk].ntasks,
                       AT_FMT "%zu actions, worker holds %u", AT_ARGS(&w),
                       s.nacts, s.workers[wk].ntasks);
        oom_relent(o);
        ok = ok && CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    }
    *parks = s.count[TF_ST_PARKED];
    ok = ok && CHECK_MSG(sched_ok(&s, why, sizeof why), AT_FMT "%s",
                         AT_ARGS(&w), why);
    if (!ok)
        goto out_with_sched;
    if (c != PC_DISPATCH && !CHECK_MSG(*parks == PCH_N - 1, "%s: %u parked",
                                       pcase_names[c], *parks))
        goto out_with_sched;
    tf_sched_clear_actions(&s);

    /* The event under injection, repeated with memory if it failed. */
    pev ev = c == PC_RETRY || c == PC_FAIL ? PE_FAIL
             : c == PC_LOST                ? PE_LOST
                                           : PE_UNRUN;
    uint32_t arg = c == PC_UNRUN_PARKED ? PCH_N / 4
                   : c == PC_HALT_UNRUN ? 1
                   : c == PC_LOST       ? wk
                                        : 0;
    if (c == PC_HALT_UNRUN)
        ok = CHECK_RC(tf_sched_halt(&s), TF_OK);
    if (c != PC_DISPATCH && ok) {
        oom_start(o, mode, k);
        rc = pev_run(&w, &s, ev, arg, &ok);
        oom_stop();
        if (rc && ok)
            ok = CHECK_RC(pev_run(&w, &s, ev, arg, &ok), TF_OK);
    }
    if (!ok)
        goto out_with_sched;
    tf_sched_clear_actions(&s);
    if (c == PC_LOST || c == PC_UNRUN_PARKED || c == PC_RETRY || c == PC_UNRUN)
        CHECK_EQ_U(s.count[TF_ST_PARKED],
                   c == PC_UNRUN_PARKED ? PCH_N / 4 - 1 : 0);
    if (c == PC_LOST)
        CHECK_RC(tf_sched_set_depth(&s, spare, 1024), TF_OK);

    /* Finish: the workers run what they hold, in chain order. */
    for (unsigned long round = 0; ok && !tf_sched_is_finished(&s); round++) {
        ok = CHECK_RC(tf_sched_dispatch(&s), TF_OK) &&
             CHECK_MSG(round < 4 * PCH_N, "%s: no end", pcase_names[c]);
        tf_sched_clear_actions(&s);
        for (uint32_t t = 0; t < PCH_N && ok; t++)
            if (tf_sched_state(&s, t) == TF_ST_DISPATCHED)
                ok = CHECK_RC(tf_sched_task_done(&s, t), TF_OK);
        tf_sched_clear_actions(&s);
    }
    ok = ok &&
         CHECK_MSG(sched_ok(&s, why, sizeof why), "%s: %s", pcase_names[c],
                   why) &&
         CHECK_EQ_U(s.workers[wk].ntasks, 0) &&
         CHECK_EQ_U(s.workers[spare].ntasks, 0);
    for (uint32_t t = 0; t < PCH_N && ok; t++) {
        tf_state want = c == PC_FAIL ? (t ? TF_ST_SKIPPED : TF_ST_FAILED)
                        : c == PC_HALT_UNRUN ? (t ? TF_ST_SKIPPED : TF_ST_DONE)
                                             : TF_ST_DONE;
        ok = CHECK_MSG(tf_sched_state(&s, t) == want,
                       "%s, mode %s, k=%lu: task %u ended %s, want %s",
                       pcase_names[c], mode_name(mode), k, t,
                       tf_state_name(tf_sched_state(&s, t)),
                       tf_state_name(want));
    }
out_with_sched:
    tf_sched_free(&s);
    return ok;
}

static void test_park_events(void)
{
    for (int c = 0; c < PC_COUNT; c++) {
        oom o;
        uint32_t parks = 0;
        if (!chain_case(&o, OOM_ONCE, 0, (pcase)c, &parks))
            continue;
        unsigned long n = o.seen, fewer = 0;
        for (int m = OOM_ONCE; m <= OOM_FROM; m++)
            for (unsigned long k = 1; k <= n + 1; k++) {
                if (!chain_case(&o, (oom_mode)m, k, (pcase)c, &parks))
                    break;
                CHECK_MSG((o.failed > 0) == (k <= n),
                          "%s k=%lu: %lu failed of %lu", pcase_names[c], k,
                          o.failed, n);
                fewer += c == PC_DISPATCH && parks < PCH_N - 1;
            }
        CHECK_MSG(n > 0, "%s allocates nothing: nothing tested",
                  pcase_names[c]);
        /* Some failure inside parking must have been absorbed by not parking.
         */
        if (c == PC_DISPATCH)
            CHECK_MSG(fewer > 0, "no dispatch parked fewer under failure");
        printf("\n    %s: %lu allocations, each failed in both modes",
               pcase_names[c], n);
    }
    printf("\n");
}

/* ------------------------------------------------------------------------ */
/* Scenario: dependency kinds, whose ends release and complete whole fans. */

#define KF_N 300u /* dependents per fan */

/*
 * Task 0 fails for good: KF_N dependents along ANY edges and KF_N along
 * NOTOK edges become ready. Task 1 succeeds: KF_N handlers along NOTOK
 * edges are not needed (an UNNEEDED each), and each one's OK dependent
 * becomes ready. Under injection: adding the edges (the kinds' array is
 * made at the first), sealing, the failure, the success. Each call that
 * fails must return TF_ENOMEM, change nothing (actions, states, checks)
 * and succeed with memory back; the run then ends as without failures.
 */
enum {
    KF_ANY = 2,
    KF_NOTOK = KF_ANY + KF_N,
    KF_HANDLER = KF_NOTOK + KF_N,
    KF_NEXT = KF_HANDLER + KF_N,
    KF_TOTAL = KF_NEXT + KF_N
};

/* One call under injection: on failure, the contract, then with memory. */
#define KF_TRY(what, call)                                                     \
    do {                                                                       \
        size_t nacts0 = s.nacts, ready0 = s.count[TF_ST_READY];                \
        int rc_ = (call);                                                      \
        if (!rc_ || !ok)                                                       \
            break;                                                             \
        ok = expect_enomem(&w, rc_, what) &&                                   \
             check_after_enomem(&w, &s, what) &&                               \
             CHECK_MSG(s.nacts == nacts0 && s.count[TF_ST_READY] == ready0,    \
                       AT_FMT "a failed %s changed the sched", AT_ARGS(&w),    \
                       what);                                                  \
        oom_relent(o);                                                         \
        ok = ok && CHECK_RC((call), TF_OK);                                    \
    } while (0)

static bool kinds_case(oom *o, oom_mode mode, unsigned long k)
{
    tf_sched s;
    tf_sched_init(&s);
    where w = {"kinds: fans released by a failure and a success", o};
    uint32_t idx, wk;
    bool ok = CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &idx), TF_OK) &&
              CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &idx), TF_OK) &&
              CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK) &&
              CHECK_RC(tf_sched_add_worker(&s, 2, 2, &wk), TF_OK) &&
              CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    tf_sched_clear_actions(&s);
    /*
     * Each dependent sealed alone, after 0 and 1 were dispatched: a seal
     * reserves for what it seals, so the buffers are still small when the
     * ends release hundreds at once, and grow inside those calls.
     */
    oom_start(o, mode, k);
    for (uint32_t t = 2; t < KF_TOTAL && ok; t++) {
        oom *armed = oom_pause();
        ok = CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &idx), TF_OK);
        oom_resume(armed);
        if (t < KF_NOTOK)
            KF_TRY("add_order_dep",
                   tf_sched_add_order_dep(&s, 0, t, TF_EDGE_ANY));
        else if (t < KF_HANDLER)
            KF_TRY("add_order_dep",
                   tf_sched_add_order_dep(&s, 0, t, TF_EDGE_NOTOK));
        else if (t < KF_NEXT)
            KF_TRY("add_order_dep",
                   tf_sched_add_order_dep(&s, 1, t, TF_EDGE_NOTOK));
        else
            KF_TRY("add_dep", tf_sched_add_dep(&s, t - KF_N, t));
        KF_TRY("seal", tf_sched_seal(&s, NULL, 0, NULL));
    }
    KF_TRY("task_failed", tf_sched_task_failed(&s, 0, TF_EIO));
    KF_TRY("task_done", tf_sched_task_done(&s, 1));
    oom_stop();
    size_t n;
    const tf_action *a = tf_sched_actions(&s, &n);
    size_t unneeded = 0;
    for (size_t i = 0; i < n; i++)
        unneeded += a[i].kind == TF_ACT_UNNEEDED;
    ok = ok && CHECK_EQ_U(unneeded, KF_N) &&
         CHECK_EQ_U(s.count[TF_ST_READY], 3 * KF_N);
    tf_sched_clear_actions(&s);
    while (ok && !tf_sched_is_finished(&s)) {
        ok = CHECK_RC(tf_sched_dispatch(&s), TF_OK);
        for (uint32_t t = 0; t < KF_TOTAL && ok; t++)
            if (tf_sched_state(&s, t) == TF_ST_DISPATCHED)
                ok = CHECK_RC(tf_sched_task_done(&s, t), TF_OK);
        tf_sched_clear_actions(&s);
    }
    char why[256] = "";
    ok = ok && CHECK_MSG(sched_ok(&s, why, sizeof why), "kinds: %s", why) &&
         CHECK_EQ_U(s.count[TF_ST_DONE], KF_TOTAL - 1);
    tf_sched_free(&s);
    return ok;
}

static void test_kinds(void)
{
    oom o;
    if (!kinds_case(&o, OOM_ONCE, 0))
        return;
    unsigned long n = o.seen;
    for (int m = OOM_ONCE; m <= OOM_FROM; m++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (!kinds_case(&o, (oom_mode)m, k) ||
                !CHECK_MSG((o.failed > 0) == (k <= n),
                           "kinds k=%lu: %lu failed of %lu", k, o.failed, n))
                break;
    CHECK_MSG(n > 0, "kinds: nothing allocated, nothing tested");
    printf("\n    kinds: %lu allocations, each failed in both modes\n", n);
}

/* ------------------------------------------------------------------------ */
/* Scenario: a worker's held tasks (tf_wq), parking chains, steals, a halt. */

#define WQ_N 300u

/* tf_wq_check allocates: run it with injection off. */
static bool wq_ok(const tf_wq *q, char *why, size_t len)
{
    oom *o = oom_pause();
    bool ok = tf_wq_check(q, why, len);
    oom_resume(o);
    return ok;
}

/*
 * One call that may fail: TF_ENOMEM must leave the queue as it was (held
 * count, invariants), and the call succeeds once memory comes back.
 */
#define WQ_TRY(call)                                                           \
    do {                                                                       \
        size_t held0 = tf_wq_held(&q);                                         \
        int rc_ = (call);                                                      \
        if (!rc_)                                                              \
            break;                                                             \
        char why[256] = "";                                                    \
        ok = CHECK_MSG(rc_ == TF_ENOMEM, "wq k=%lu: %s returned %d", k, #call, \
                       rc_) &&                                                 \
             CHECK_MSG(tf_wq_held(&q) == held0 && wq_ok(&q, why, sizeof why), \
                       "wq %s k=%lu: a failed %s changed the queue: %s",       \
                       mode_name(mode), k, #call, why);                        \
        oom_relent(o);                                                         \
        ok = ok && CHECK_RC((call), 0);                                        \
    } while (0)

static bool wq_run(oom *o, oom_mode mode, unsigned long k, uint32_t *order,
                   size_t *norder)
{
    tf_wq q;
    bool ok = true;
    oom_start(o, mode, k);
    if (tf_wq_init(&q, 2)) {
        oom_relent(o);
        ok = CHECK_RC(tf_wq_init(&q, 2), 0);
    }
    *norder = 0;
    tf_wq_job run[2], stolen[8];
    uint16_t sl[2][1];
    int nrun = 0;
    /* Chains of four: job i waits for job i-1 unless i % 4 == 0. */
    for (uint32_t i = 0; i < WQ_N && ok; i++) {
        tf_wq_job j = {i, i, 1, 1, false};
        uint32_t anc = i - 1;
        WQ_TRY(tf_wq_push(&q, &j, &anc, i % 4 ? 1 : 0));
        if (i % 50 == 49)
            tf_wq_steal(&q, 8, 1, stolen); /* never fails */
        while (ok && nrun < 2 && tf_wq_start(&q, &run[nrun], sl[nrun]))
            order[(*norder)++] = run[nrun++].idx;
        if (nrun == 2) { /* end the older; the younger keeps its slot */
            WQ_TRY(tf_wq_end(&q, &run[0], sl[0], TF_WQ_OK));
            tf_wq_clear_actions(&q);
            run[0] = run[1];
            sl[0][0] = sl[1][0];
            nrun = 1;
        }
    }
    while (ok && nrun) {
        nrun--;
        WQ_TRY(tf_wq_end(&q, &run[nrun], sl[nrun], TF_WQ_OK));
        tf_wq_clear_actions(&q);
    }
    WQ_TRY(tf_wq_drop_all(&q));
    oom_stop();
    char why[256] = "";
    ok = ok && CHECK_MSG(tf_wq_check(&q, why, sizeof why), "wq: %s", why);
    tf_wq_free(&q);
    return ok;
}

static void test_wq(void)
{
    oom o;
    static uint32_t want[WQ_N], got[WQ_N];
    size_t nwant, ngot;
    wq_run(&o, OOM_ONCE, 0, want, &nwant);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++) {
            if (!wq_run(&o, (oom_mode)mode, k, got, &ngot) ||
                !CHECK_MSG(ngot == nwant &&
                               !memcmp(got, want, nwant * sizeof *got),
                           "wq %s k=%lu: started another order",
                           mode_name((oom_mode)mode), k))
                return;
        }
    CHECK_MSG(n > 0, "tf_wq allocates nothing: nothing tested");
    printf("\n    wq: %lu allocations, each failed in both modes\n", n);
}

/* The worker machine's constructor: all or nothing, nothing leaked. */
static void test_worker_init(void)
{
    tf_loc loc[6];
    for (int r = 0; r < 6; r++)
        loc[r] = (tf_loc){r < 4 ? 1 : 2, 0};
    uint32_t host[] = {2, 3};
    tf_worker_cfg c = {.slots = 1, .steal = true};
    unsigned long n = 0;
    for (unsigned long k = 1;; k++) {
        oom o;
        tf_worker w;
        oom_start(&o, OOM_ONCE, k);
        int rc = tf_worker_init(&w, &c, loc, 1, 6, 1, host, 2, 5);
        oom_stop();
        if (!rc) {
            tf_worker_free(&w);
            n = o.seen;
            break;
        }
        if (!CHECK_RC(rc, TF_ENOMEM) || !CHECK_LE_U(k, 10))
            return;
    }
    CHECK_MSG(n > 0, "tf_worker_init allocates nothing: nothing tested");
    printf("\n    worker_init: %lu allocations, each failed\n", n);
}

/* Rank 0's task table: a failed add leaves it as it was. */
#define TT_N 400u

static bool tasks_run(oom *o, oom_mode mode, unsigned long k)
{
    tf_tasks tt;
    bool ok = true;
    ok = CHECK_RC(tf_tasks_init(&tt, 0), 0); /* allocates nothing */
    oom_start(o, mode, k);
    for (uint32_t i = 0; i < TT_N && ok; i++) {
        uint32_t deps[2] = {i / 2, i / 3}, t = SENT32;
        uint64_t gid = i % 3 ? 0 : (1ull << 32) | i;
        uint32_t n0 = tt.sched.dag.n;
        size_t bytes0 = tt.data_bytes;
        int rc = tf_tasks_add(&tt, gid, 0, 0, 1, -1, deps, NULL, i ? 2 : 0, "in", 2,
                              0, &t);
        if (rc) {
            char why[256] = "";
            ok = CHECK_RC(rc, TF_ENOMEM) && CHECK_EQ_U(t, SENT32) &&
                 CHECK_EQ_U(tt.sched.dag.n, n0) &&
                 CHECK_EQ_U(tt.data_bytes, bytes0) &&
                 CHECK_MSG(!gid || tf_tasks_index_of(&tt, gid) == TF_NONE,
                           "tasks k=%lu: a failed add left id %llu mapped", k,
                           (unsigned long long)gid) &&
                 CHECK_MSG(sched_ok(&tt.sched, why, sizeof why),
                           "tasks %s k=%lu: %s", mode_name(mode), k, why);
            oom_relent(o);
            i--;
            continue;
        }
        ok = CHECK_EQ_U(tf_tasks_index_of(&tt, gid ? gid : t), t);
    }
    oom_stop();
    ok = ok && CHECK_EQ_U(tt.sched.dag.n, TT_N);
    tf_tasks_free(&tt);
    return ok;
}

static void test_tasks(void)
{
    oom o;
    tasks_run(&o, OOM_ONCE, 0);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (k_is_sampled(k, n + 1) &&
                !tasks_run(&o, (oom_mode)mode, k))
                return;
    printf("\n    tasks_add: %lu allocations, each failed in both modes\n",
           n);
}

/*
 * The same table inside a batch (tf_batch_begin): the tasks stay HELD
 * until the batch is sealed, and a failed add must leave the batch's
 * earlier tasks, their records and their readers' counts as they were.
 */
#define TB_N 120u

static bool tasks_batch_run(oom *o, oom_mode mode, unsigned long k)
{
    tf_tasks tt;
    bool ok = CHECK_RC(tf_tasks_init(&tt, 0), 0);
    uint32_t first = TF_NONE;
    ok = ok && CHECK_RC(tf_tasks_add(&tt, 0, 0, 0, 1, -1, NULL, NULL, 0, NULL,
                                     0, 0, &first),
                        0);
    tt.batching = true;
    oom_start(o, mode, k);
    for (uint32_t i = 1; i < TB_N && ok; i++) {
        uint32_t deps[2] = {first, i - 1}, parts[2] = {0, i % 3}, t = SENT32;
        uint64_t gid = i % 2 ? 0 : (1ull << 32) | i;
        uint32_t n0 = tt.sched.dag.n, uses0 = tt.rec[first].uses;
        size_t bytes0 = tt.data_bytes;
        int rc =
            tf_tasks_add(&tt, gid, 0, 0, 1, -1, deps, parts, 2, "in", 2, 0, &t);
        if (rc) {
            char why[256] = "";
            ok = CHECK_RC(rc, TF_ENOMEM) && CHECK_EQ_U(t, SENT32) &&
                 CHECK_MSG(tt.sched.dag.n == n0 &&
                               tt.sched.count[TF_ST_HELD] == n0 - 1,
                           "tasks in a batch %s k=%lu: a failed add of "
                           "task %u of the batch left %u tasks (%u held), "
                           "want %u (%u held): the batch's earlier tasks are "
                           "gone from the scheduler, not from the table",
                           mode_name(mode), k, i, tt.sched.dag.n,
                           tt.sched.count[TF_ST_HELD], n0, n0 - 1) &&
                 CHECK_EQ_U(tt.data_bytes, bytes0) &&
                 CHECK_EQ_U(tt.rec[first].uses, uses0) &&
                 CHECK_MSG(sched_ok(&tt.sched, why, sizeof why),
                           "tasks in a batch %s k=%lu: %s", mode_name(mode), k,
                           why);
            oom_relent(o);
            i--;
            continue;
        }
    }
    oom_stop();
    tt.batching = false;
    ok = ok && CHECK_RC(tf_sched_seal(&tt.sched, NULL, 0, NULL), 0) &&
         CHECK_EQ_U(tt.sched.dag.n, TB_N) &&
         CHECK_EQ_U(tt.rec[first].uses, TB_N) && /* task 1 reads it twice */
         CHECK_EQ_U(tt.sched.count[TF_ST_HELD], 0);
    tf_tasks_free(&tt);
    return ok;
}

static void test_tasks_batch(void)
{
    oom o;
    tasks_batch_run(&o, OOM_ONCE, 0);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (!tasks_batch_run(&o, (oom_mode)mode, k))
                return;
    printf("\n    tasks_add in a batch: %lu allocations, each failed in both "
           "modes\n",
           n);
}

/*
 * tf_tasks_set_output: outputs of one part and packed ones, replacing
 * earlier outputs; a failure leaves the record and the counts as they
 * were, and the call succeeds once memory comes back.
 */
#define TO_N 60u

static bool output_run(oom *o, oom_mode mode, unsigned long k, uint64_t *sum)
{
    tf_tasks tt;
    bool ok = CHECK_RC(tf_tasks_init(&tt, 0), 0);
    for (uint32_t i = 0; i < TO_N / 3 && ok; i++) {
        uint32_t t;
        ok = CHECK_RC(
            tf_tasks_add(&tt, 0, 0, 0, 1, -1, NULL, NULL, 0, NULL, 0, 0, &t),
            0);
    }
    static const uint8_t bytes[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    oom_start(o, mode, k);
    for (uint32_t i = 0; i < TO_N && ok; i++) {
        uint32_t t = i % (TO_N / 3), np = i % 5;
        tf_outpart p[4];
        for (uint32_t j = 0; j < np && j < 4; j++)
            p[j] = (tf_outpart){(i + j) % 3 ? bytes : NULL, 1 + (i * j) % 60,
                                (i + j) % 2 == 0};
        np = np > 4 ? 4 : np;
        const tf_trec r0 = tt.rec[t];
        size_t out0 = tt.out_bytes, data0 = tt.data_bytes;
        int rc = tf_tasks_set_output(&tt, t, p, np, 1 + (int)(i % 3));
        if (rc) {
            ok = CHECK_RC(rc, TF_ENOMEM) &&
                 CHECK_MSG(tt.rec[t].out == r0.out &&
                               tt.rec[t].out_len == r0.out_len &&
                               tt.rec[t].oflags == r0.oflags &&
                               tt.rec[t].holder == r0.holder &&
                               tt.out_bytes == out0 && tt.data_bytes == data0,
                           "set_output %s k=%lu: a failed call changed task "
                           "%u's output",
                           mode_name(mode), k, t);
            oom_relent(o);
            i--;
            continue;
        }
    }
    oom_stop();
    /* What every task ends with, to compare with the reference run. */
    *sum = tt.out_bytes;
    for (uint32_t t = 0; t < TO_N / 3 && ok; t++)
        *sum = *sum * 31 + tf_tasks_output_bytes(&tt, t);
    tf_tasks_free(&tt);
    return ok;
}

static void test_set_output(void)
{
    oom o;
    uint64_t want = 0, got = 0;
    output_run(&o, OOM_ONCE, 0, &want);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (!output_run(&o, (oom_mode)mode, k, &got) ||
                !CHECK_MSG(got == want, "set_output %s k=%lu: ends otherwise",
                           mode_name((oom_mode)mode), k))
                return;
    CHECK_MSG(n > 0, "tf_tasks_set_output allocates nothing: nothing tested");
    printf("\n    set_output: %lu allocations, each failed in both modes\n", n);
}

/*
 * The part store: parts added (new tasks, more parts of a task, a part
 * replaced while read) while allocations fail. A failed tf_store_add
 * leaves the map as it was and the block the caller's.
 */
#define ST_N 500u

static bool store_run(oom *o, oom_mode mode, unsigned long k, size_t *n_out,
                      size_t *bytes_out)
{
    tf_store s;
    tf_store_init(&s);
    bool ok = true;
    oom_start(o, mode, k);
    for (uint32_t i = 0; i < ST_N && ok; i++) {
        /* Indexes alike in their low bits collide; parts 0-2 share a slot. */
        uint32_t idx = (i * 7 % 160) * 64, part = i % 3, len = i % 50;
        uint8_t kind = i % 7 == 0 ? TF_PART_FETCHING
                       : i % 3    ? TF_PART_HOME
                                  : TF_PART_COPY;
        oom *a = oom_pause();
        uint8_t *blk =
            kind == TF_PART_FETCHING ? NULL : malloc(TF_STORE_HDR + len);
        oom_resume(a);
        if (kind != TF_PART_FETCHING && !CHECK_TRUE(blk))
            break;
        tf_part_ent *old = tf_store_find(&s, idx, part), *e = NULL;
        size_t n0 = s.n, bytes0 = s.bytes, cap0 = s.cap;
        if (old)
            old->refs++; /* read while it is replaced */
        int rc = tf_store_add(&s, idx, part, kind, blk, blk ? len : 0, &e);
        if (rc) {
            ok = CHECK_RC(rc, TF_ENOMEM) && CHECK_TRUE(e == NULL) &&
                 CHECK_MSG(s.n == n0 && s.bytes == bytes0 && s.cap == cap0 &&
                               tf_store_find(&s, idx, part) == old,
                           "store %s k=%lu: a failed add of (%u, %u) changed "
                           "the map",
                           mode_name(mode), k, idx, part);
            if (old)
                old->refs--;
            free(blk); /* still the caller's */
            oom_relent(o);
            i--;
            continue;
        }
        ok = CHECK_TRUE(e && tf_store_find(&s, idx, part) == e);
        if (old)
            tf_store_unref(&s, old); /* its reader lets go: it goes */
        if (i % 11 == 0)
            tf_store_free_task(&s, (i * 5 % 160) * 64);
    }
    oom_stop();
    *n_out = s.n;
    *bytes_out = s.bytes;
    tf_store_free(&s);
    return ok;
}

static void test_store(void)
{
    oom o;
    size_t n0 = 0, b0 = 0, n1, b1;
    store_run(&o, OOM_ONCE, 0, &n0, &b0);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (!store_run(&o, (oom_mode)mode, k, &n1, &b1) ||
                !CHECK_MSG(n1 == n0 && b1 == b0,
                           "store %s k=%lu: ends with %zu tasks, %zu bytes, "
                           "want %zu, %zu",
                           mode_name((oom_mode)mode), k, n1, b1, n0, b0))
                return;
    CHECK_MSG(n > 0, "tf_store_add allocates nothing: nothing tested");
    printf("\n    store_add: %lu allocations, each failed in both modes\n", n);
}

/*
 * Dispatch with pins and soft placement: a fifth of the tasks pinned (to
 * the six workers drive() registers, or to one never registered), the
 * rest with a preferred worker; scenario 2's run under injection.
 */
static uint32_t oom_place(void *u, uint32_t t)
{
    (void)u;
    return t % 3 ? (t * 7) % 8 : TF_NONE; /* workers 6 and 7 do not exist */
}

static bool pin_run_fn(oom *o, oom_mode mode, unsigned long k, int variant,
                       const plan *p)
{
    (void)variant;
    tf_sched s;
    tf_sched_init(&s);
    where w = {"dispatch with pins and placement", o};
    oom_start(o, OOM_ONCE, 0);
    bool ok = add_all(&w, &s, p);
    for (uint32_t t = 0; t < p->n && ok; t += 5)
        ok = CHECK_RC(tf_sched_pin(&s, t, (t / 5) % 7), TF_OK);
    ok = ok && CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    oom_stop();
    s.place = oom_place;
    if (ok) {
        oom_start(o, mode, k);
        ok = drive(&w, &s, p);
        oom_stop();
    }
    tf_sched_free(&s);
    return ok;
}

static void test_pin_run(void)
{
    plan p;
    if (!CHECK_TRUE(plan_make(&p, BUILD_N, 4, true)))
        return;
    sweep(pin_run_fn, 0, &p, "dispatch with pins and placement");
    plan_free(&p);
}

/*
 * A worker with tasks waiting in its pinned queue is lost: they go back to
 * the global queue, which may have to grow. A failure leaves the
 * invariants whole; the call then succeeds and the run ends as it should.
 */
static bool pin_lost_run(oom *o, oom_mode mode, unsigned long k)
{
    tf_sched s;
    tf_sched_init(&s);
    where w = {"worker_lost with a pinned queue", o};
    uint32_t w0, w1, w2, t;
    bool ok = CHECK_RC(tf_sched_add_worker(&s, 1, 2, &w0), TF_OK) &&
              CHECK_RC(tf_sched_add_worker(&s, 1, 2, &w1), TF_OK) &&
              CHECK_RC(tf_sched_add_worker(&s, 1, 2, &w2), TF_OK);
    /* Pinned ones first in priority: w0's fill moves them all to w1's queue. */
    for (uint32_t i = 0; i < 300 && ok; i++) {
        ok = CHECK_RC(tf_sched_add_task(&s, i % 3 ? 0 : 10, 1, 0, &t), TF_OK);
        if (ok && i % 3 == 0)
            ok = CHECK_RC(tf_sched_pin(&s, t, w1), TF_OK);
    }
    ok = ok && CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK) &&
         CHECK_RC(tf_sched_dispatch(&s), TF_OK) &&
         CHECK_MSG(s.workers[w1].pinq.n > 90, "pinned queue of %zu",
                   s.workers[w1].pinq.n);
    tf_sched_clear_actions(&s);
    if (ok) {
        oom_start(o, mode, k);
        int rc = tf_sched_worker_lost(&s, w1);
        oom_stop();
        if (rc) {
            ok = expect_enomem(&w, rc, "tf_sched_worker_lost") &&
                 check_after_enomem(&w, &s, "tf_sched_worker_lost") &&
                 CHECK_RC(tf_sched_worker_lost(&s, w1), TF_OK);
        }
    }
    ok = ok && CHECK_EQ_U(s.workers[w1].pinq.n, 0);
    for (unsigned round = 0; ok && !tf_sched_is_finished(&s); round++) {
        ok = CHECK_RC(tf_sched_dispatch(&s), TF_OK) &&
             CHECK_MSG(round < 1000, "worker_lost with a pinned queue: no "
                                     "end");
        tf_sched_clear_actions(&s);
        for (uint32_t u = 0; u < s.dag.n && ok; u++)
            if (tf_sched_state(&s, u) == TF_ST_DISPATCHED)
                ok = CHECK_MSG(s.dag.worker[u] != w1,
                               "task %u on lost "
                               "worker",
                               u) &&
                     CHECK_RC(tf_sched_task_done(&s, u), TF_OK);
    }
    ok = ok && CHECK_EQ_U(s.count[TF_ST_DONE], 300);
    tf_sched_free(&s);
    (void)w0;
    (void)w2;
    return ok;
}

static void test_pin_lost(void)
{
    oom o;
    pin_lost_run(&o, OOM_ONCE, 0);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (!pin_lost_run(&o, (oom_mode)mode, k))
                return;
    CHECK_MSG(n > 0, "worker_lost allocates nothing: nothing tested");
    printf("\n    worker_lost with a pinned queue: %lu allocations, each "
           "failed in both modes\n",
           n);
}

/*
 * tf_wq_arrive: jobs parked behind fetch anchors (above every task index)
 * are settled from outside, OK or NO_OUTPUT; a failure changes nothing.
 */
static bool arrive_run(oom *o, oom_mode mode, unsigned long k, size_t *acts)
{
    tf_wq q;
    bool ok = CHECK_RC(tf_wq_init(&q, 2), 0);
    *acts = 0;
    if (!ok)
        return false;
    oom_start(o, mode, k);
    for (uint32_t i = 0; i < 80 && ok; i++) {
        tf_wq_job j = {i, i, 1, 1, false};
        uint32_t anc[2] = {TF_STORE_ANCHOR_TOP - i % 4,
                           TF_STORE_ANCHOR_TOP - 4 - i % 3};
        WQ_TRY(tf_wq_push(&q, &j, anc, i % 5 ? 1 : 2));
    }
    for (uint32_t a = 0; a < 7 && ok; a++) {
        WQ_TRY(tf_wq_arrive(&q, TF_STORE_ANCHOR_TOP - a,
                            a == 5 ? TF_WQ_NO_OUTPUT : TF_WQ_OK));
        size_t n;
        tf_wq_actions(&q, &n);
        *acts += n;
        tf_wq_clear_actions(&q);
    }
    oom_stop();
    char why[256] = "";
    ok = ok && CHECK_MSG(tf_wq_check(&q, why, sizeof why), "arrive: %s", why) &&
         CHECK_EQ_U(q.npark, 0);
    tf_wq_free(&q);
    return ok;
}

static void test_wq_arrive(void)
{
    oom o;
    size_t want = 0, got = 0;
    arrive_run(&o, OOM_ONCE, 0, &want);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (!arrive_run(&o, (oom_mode)mode, k, &got) ||
                !CHECK_MSG(got == want,
                           "arrive %s k=%lu: %zu actions, want "
                           "%zu",
                           mode_name((oom_mode)mode), k, got, want))
                return;
    CHECK_MSG(want >= 80, "arrive: only %zu actions", want);
    printf("\n    wq_arrive: %lu allocations, each failed in both modes\n", n);
}

/*
 * Walltime: estimates and families given to 3000 tasks (the tables grow
 * twice), a deadline that sets a fifth of them aside (the set-aside queue
 * grows), then a later one that puts them back (the ready queue makes
 * room). A failed call changes nothing; done again, it succeeds, and
 * every task ends DONE.
 */
#define WT_TRY(call)                                                           \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_) {                                                             \
            ok = expect_enomem(&w, rc_, #call) &&                              \
                 check_after_enomem(&w, &s, #call);                            \
            oom_relent(o);                                                     \
            ok = ok && CHECK_RC((call), TF_OK);                                \
        }                                                                      \
    } while (0)

static bool walltime_run(oom *o, oom_mode mode, unsigned long k)
{
    enum { N = 3000 };
    tf_sched s;
    tf_sched_init(&s);
    where w = {"walltime", o};
    uint32_t wk, t;
    bool ok = true;
    for (int i = 0; i < 3 && ok; i++)
        ok = CHECK_RC(tf_sched_add_worker(&s, 1, 2, &wk), TF_OK);
    oom_start(o, mode, k);
    for (uint32_t i = 0; i < N && ok; i++) {
        WT_TRY(tf_sched_add_task(&s, 0, 1, 0, &t));
        WT_TRY(tf_sched_set_est(&s, t, (i % 5) * 1000, i % 7 + 1));
    }
    WT_TRY(tf_sched_seal(&s, NULL, 0, NULL));
    WT_TRY(tf_sched_set_deadline(&s, 3500000000u));
    for (unsigned round = 0; ok && !tf_sched_must_stop(&s); round++) {
        WT_TRY(tf_sched_dispatch(&s));
        tf_sched_clear_actions(&s);
        ok = ok && CHECK_MSG(round < 10000, "walltime: no stop");
        for (uint32_t u = 0; u < s.dag.n && ok; u++)
            if (tf_sched_state(&s, u) == TF_ST_DISPATCHED)
                WT_TRY(tf_sched_task_done(&s, u));
    }
    ok = ok && CHECK_EQ_U(s.wt.late.n, N / 5);
    WT_TRY(tf_sched_set_deadline(&s, 0));
    for (unsigned round = 0; ok && !tf_sched_is_finished(&s); round++) {
        WT_TRY(tf_sched_dispatch(&s));
        tf_sched_clear_actions(&s);
        ok = ok && CHECK_MSG(round < 10000, "walltime: no end");
        for (uint32_t u = 0; u < s.dag.n && ok; u++)
            if (tf_sched_state(&s, u) == TF_ST_DISPATCHED)
                WT_TRY(tf_sched_task_done(&s, u));
    }
    oom_stop();
    char why[256] = "";
    ok = ok && CHECK_EQ_U(s.count[TF_ST_DONE], N) &&
         CHECK_MSG(sched_ok(&s, why, sizeof why), "walltime: %s", why);
    tf_sched_free(&s);
    return ok;
}

static void test_walltime(void)
{
    oom o;
    walltime_run(&o, OOM_ONCE, 0);
    unsigned long n = o.seen;
    for (int mode = OOM_ONCE; mode <= OOM_FROM; mode++)
        for (unsigned long k = 1; k <= n + 1; k++)
            if (!walltime_run(&o, (oom_mode)mode, k))
                return;
    CHECK_MSG(n >= 6, "walltime: only %lu allocations", n);
    printf("\n    walltime: %lu allocations, each failed in both modes\n", n);
}

/* ------------------------------------------------------------------------ */

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"rq_push growth", test_rq},
        {"idmap_put growth", test_idmap},
        {"find_cycle scratch", test_find_cycle},
        {"taskfile_parse 2000 lines", test_taskfile},
        {"taskfile_parse with errors", test_taskfile_errors},
        {"build + seal, retry seal", test_build_retry},
        {"build + seal, drop held", test_build_drop},
        {"dispatch + completion", test_run},
        {"parking: stencil run", test_park_run},
        {"parking: events on a parked chain", test_park_events},
        {"dependency kinds: released fans", test_kinds},
        {"worker queue: pushes, parking, steals, halt", test_wq},
        {"worker machine: init", test_worker_init},
        {"task table: tf_tasks_add", test_tasks},
        {"task table: tf_tasks_add in a batch", test_tasks_batch},
        {"task table: tf_tasks_set_output", test_set_output},
        {"part store: tf_store_add", test_store},
        {"dispatch with pins and placement", test_pin_run},
        {"worker_lost with a pinned queue", test_pin_lost},
        {"worker queue: tf_wq_arrive", test_wq_arrive},
        {"walltime: estimates, set aside, deadline moved", test_walltime},
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("oom", NULL, NULL);
    for (size_t i = 0; suite && i < sizeof tests / sizeof *tests; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            suite = NULL;
    if (!suite) {
        fprintf(stderr, "test_oom: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    return check_run();
}
