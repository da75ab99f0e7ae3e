/* Unit tests of walltime-aware dispatch: estimates, families, the deadline, queue waits, the stop. */
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
#include "sched.h"
#include "taskfarm_status.h"
#include "walltime.h"

/*
 * The driver here is the unit test: a clock in seconds that it moves by
 * hand (tf_sched_clock), tasks it reports done when it says so. Every
 * step is followed by tf_sched_check, which also checks that each
 * worker's summed estimates match the tasks it holds.
 */
#define S 1000000000ull /* ns per second */

/* Tasks with estimates est[i] seconds (0: none) and family fam[i]. */
static bool add_tasks(tf_sched *s, uint32_t n, const uint32_t *est_s,
                      const uint32_t *fam)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        if (!CHECK_RC(tf_sched_add_task(s, 0, 1, 0, &t), TF_OK) ||
            !CHECK_RC(tf_sched_set_est(s, t, est_s ? est_s[i] * 1000 : 0,
                                       fam ? fam[i] : 0),
                      TF_OK))
            return false;
    }
    return CHECK_RC(tf_sched_seal(s, NULL, 0, NULL), TF_OK);
}

/*
 * At time now_s: dispatch, and expect exactly the tasks want[] (n of them,
 * in order) to be sent, to the workers wantw[] (NULL: any).
 */
static bool dispatch_at(tf_sched *s, double now_s, const uint32_t *want,
                        size_t n, const uint32_t *wantw)
{
    tf_sched_clock(s, (uint64_t)(now_s * S));
    if (!CHECK_RC(tf_sched_dispatch(s), TF_OK))
        return false;
    size_t na;
    const tf_action *a = tf_sched_actions(s, &na);
    bool ok = CHECK_MSG(na == n, "at %.1f s: %zu tasks sent, want %zu (first "
                                 "%u)",
                        now_s, na, n, na ? a[0].task : TF_NONE);
    for (size_t i = 0; ok && i < n; i++)
        ok = CHECK_EQ_U(a[i].kind, TF_ACT_RUN) &&
             CHECK_EQ_U(a[i].task, want[i]) &&
             (!wantw || CHECK_EQ_U(a[i].worker, wantw[i]));
    tf_sched_clear_actions(s);
    return CHECK_SCHED(s) && ok;
}

static bool done_at(tf_sched *s, uint32_t t, double start_s, double end_s)
{
    tf_sched_learn(s, t, (uint64_t)((end_s - start_s) * S));
    bool ok = CHECK_RC(tf_sched_task_done(s, t), TF_OK);
    tf_sched_clear_actions(s);
    return CHECK_SCHED(s) && ok;
}

/* Given estimates, learnt ones (the longest run times 5/4), unknown ones. */
static void test_estimates(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t est[] = {7, 0, 0, 0, 0}, fam[] = {1, 1, 1, 2, 0};
    if (!add_tasks(&s, 5, est, fam))
        goto out;
    CHECK_EQ_U(tf_wt_est(&s.wt, 0), 7000);
    CHECK_EQ_U(tf_wt_est(&s.wt, 1), 0); /* family 1 has seen nothing yet */
    tf_wt_learn(&s.wt, 0, 2 * S);       /* a given estimate teaches too */
    CHECK_EQ_U(tf_wt_est(&s.wt, 1), 2500);
    CHECK_EQ_U(tf_wt_est(&s.wt, 0), 7000); /* its own given one stays */
    tf_wt_learn(&s.wt, 1, 1 * S);          /* shorter: the longest stays */
    CHECK_EQ_U(tf_wt_est(&s.wt, 2), 2500);
    tf_wt_learn(&s.wt, 2, 4 * S + 1); /* a started millisecond counts */
    CHECK_EQ_U(tf_wt_est(&s.wt, 1), (4001 * 5 + 3) / 4);
    CHECK_EQ_U(tf_wt_est(&s.wt, 3), 0); /* another family */
    tf_wt_learn(&s.wt, 4, 9 * S);       /* no family: nobody learns */
    CHECK_EQ_U(tf_wt_est(&s.wt, 4), 0);
    CHECK_EQ_U(tf_wt_est(&s.wt, 3), 0);
    /* A task not yet on a worker may get its estimate late; bad families
       are refused. */
    CHECK_RC(tf_sched_set_est(&s, 4, 0, 2), TF_OK);
    CHECK_EQ_U(tf_wt_est(&s.wt, 4), 0);
    uint32_t t;
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK);
    CHECK_RC(tf_sched_set_est(&s, t, 1, TF_WT_FAMILY_MAX + 1), TF_EINVAL);
    CHECK_RC(tf_sched_set_est(&s, t, UINT32_MAX, 0), TF_OK);
    CHECK_EQ_U(tf_wt_est(&s.wt, t), TF_WT_EST_MAX);
out:
    tf_sched_free(&s);
}

/* Without estimates or families, nothing is allocated and nothing charged. */
static void test_no_cost(void)
{
    tf_sched s;
    tf_sched_init(&s);
    size_t before = tf_sched_bytes(&s);
    uint32_t w;
    if (!add_tasks(&s, 100, NULL, NULL) ||
        !CHECK_RC(tf_sched_add_worker(&s, 2, 4, &w), TF_OK))
        goto out;
    CHECK_TRUE(s.wt.est_ms == NULL && s.wt.family == NULL && s.wt.n == 0);
    CHECK_RC(tf_sched_dispatch(&s), TF_OK);
    CHECK_EQ_U(s.nacts, 4);
    CHECK_EQ_U(s.workers[w].est_ms, 0);
    CHECK_FALSE(tf_sched_must_stop(&s));
    CHECK_TRUE(tf_sched_bytes(&s) > before); /* the table, not the estimates */
    CHECK_EQ_U(tf_wt_bytes(&s.wt), 0);
out:
    tf_sched_free(&s);
}

/*
 * One slot, tasks of 3 s, a deadline at 7 s: two run, the third is set
 * aside when the second ends at 6 s, and the run must stop; the halt
 * skips it.
 */
static void test_deadline_stops(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t w, est[] = {3, 3, 3};
    if (!add_tasks(&s, 3, est, NULL) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK) ||
        !CHECK_RC(tf_sched_set_deadline(&s, 7 * S), TF_OK))
        goto out;
    if (!dispatch_at(&s, 0, (uint32_t[]){0}, 1, NULL) ||
        !dispatch_at(&s, 1, NULL, 0, NULL) || !done_at(&s, 0, 0, 3) ||
        !dispatch_at(&s, 3, (uint32_t[]){1}, 1, NULL))
        goto out;
    CHECK_FALSE(tf_sched_must_stop(&s)); /* task 1 runs */
    if (!done_at(&s, 1, 3, 6) || !dispatch_at(&s, 6, NULL, 0, NULL))
        goto out;
    CHECK_EQ_U(s.wt.late.n, 1);
    CHECK_STATE(&s, 2, TF_ST_READY);
    CHECK_TRUE(tf_sched_must_stop(&s));
    CHECK_RC(tf_sched_halt(&s), TF_OK);
    CHECK_STATE(&s, 2, TF_ST_SKIPPED);
    CHECK_EQ_U(s.wt.late.n, 0);
    CHECK_TRUE(tf_sched_is_finished(&s));
    CHECK_FALSE(tf_sched_must_stop(&s));
    CHECK_SCHED(&s);
out:
    tf_sched_free(&s);
}

/*
 * A long task first in priority that cannot finish does not hold back the
 * shorter ones behind it; the exact fit (now + est == deadline) starts.
 */
static void test_priority_skips_late(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t w, t;
    if (!CHECK_RC(tf_sched_add_task(&s, 5, 1, 0, &t), TF_OK) ||
        !CHECK_RC(tf_sched_set_est(&s, t, 100000, 0), TF_OK) ||
        !CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK) ||
        !CHECK_RC(tf_sched_set_est(&s, t, 10000, 0), TF_OK) ||
        !CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK) ||
        !CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK) ||
        !CHECK_RC(tf_sched_add_worker(&s, 2, 2, &w), TF_OK) ||
        !CHECK_RC(tf_sched_set_deadline(&s, 10 * S), TF_OK))
        goto out;
    /* Task 2 has no estimate: it starts, as the deadline has not come. */
    if (!dispatch_at(&s, 0, (uint32_t[]){1, 2}, 2, NULL))
        goto out;
    CHECK_EQ_U(s.wt.late.n, 1);
    CHECK_EQ_U(s.workers[w].est_ms, 10000);
    CHECK_FALSE(tf_sched_must_stop(&s));
out:
    tf_sched_free(&s);
}

/*
 * Queue waits: one slot, prefetch 4, tasks of 2 s, deadline at 5 s. The
 * first starts at once; the second is queued behind it (2 + 2 <= 5); the
 * third would start at 4 s at the earliest: not sent, but kept READY, as
 * it could still run on a free slot. Then a second worker registers and
 * takes it at once. A third task of 4 s, queued nowhere (no worker is
 * free), is set aside at 2 s, when it no longer fits at all.
 */
static void test_queue_wait(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t w0, w1, est[] = {2, 2, 2, 4};
    if (!add_tasks(&s, 4, est, NULL) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 4, &w0), TF_OK) ||
        !CHECK_RC(tf_sched_set_deadline(&s, 5 * S), TF_OK))
        goto out;
    if (!dispatch_at(&s, 0, (uint32_t[]){0, 1}, 2, NULL))
        goto out;
    CHECK_EQ_U(s.workers[w0].est_ms, 4000);
    CHECK_STATE(&s, 2, TF_ST_READY);
    CHECK_EQ_U(s.wt.late.n, 0);
    if (!CHECK_RC(tf_sched_add_worker(&s, 1, 4, &w1), TF_OK) ||
        !dispatch_at(&s, 0.5, (uint32_t[]){2}, 1, (uint32_t[]){w1}))
        goto out;
    /* Task 3 (4 s) fits neither queue at 0.5 s but would alone. */
    CHECK_STATE(&s, 3, TF_ST_READY);
    CHECK_EQ_U(s.wt.late.n, 0);
    if (!done_at(&s, 0, 0, 2) || !dispatch_at(&s, 2, NULL, 0, NULL))
        goto out;
    CHECK_EQ_U(s.wt.late.n, 1);
    CHECK_FALSE(tf_sched_must_stop(&s));
    if (!done_at(&s, 1, 2, 4) || !done_at(&s, 2, 0.5, 2.5))
        goto out;
    CHECK_TRUE(tf_sched_must_stop(&s));
out:
    tf_sched_free(&s);
}

/*
 * Learnt estimates: a family of tasks of about 2 s with no @est, one slot,
 * deadline at 5 s. The first starts unknown; once it has taken 2 s the
 * family's estimate is 2.5 s: the second fits (2 + 2.5), the third,
 * at 4 s, does not.
 */
static void test_learnt(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t w, fam[] = {1, 1, 1, 1};
    if (!add_tasks(&s, 4, NULL, fam) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK) ||
        !CHECK_RC(tf_sched_set_deadline(&s, 5 * S), TF_OK) ||
        !dispatch_at(&s, 0, (uint32_t[]){0}, 1, NULL))
        goto out;
    CHECK_EQ_U(s.workers[w].est_ms, 0); /* unknown when it left */
    if (!done_at(&s, 0, 0, 2) ||
        !dispatch_at(&s, 2, (uint32_t[]){1}, 1, NULL))
        goto out;
    CHECK_EQ_U(s.workers[w].est_ms, 2500); /* charged as learnt then */
    /* The family learns a longer run meanwhile: task 1 stays at 2.5 s. */
    tf_wt_learn(&s.wt, 3, 3 * S);
    CHECK_EQ_U(s.workers[w].est_ms, 2500);
    CHECK_SCHED(&s);
    if (!done_at(&s, 1, 2, 4) || !dispatch_at(&s, 4, NULL, 0, NULL))
        goto out;
    CHECK_EQ_U(s.workers[w].est_ms, 0);
    CHECK_EQ_U(s.wt.late.n, 2);
    CHECK_TRUE(tf_sched_must_stop(&s));
out:
    tf_sched_free(&s);
}

/*
 * The deadline comes while tasks run: the run must stop (their attempts
 * are ended by the halt); an unknown task is not started at the deadline.
 * A later deadline puts set-aside tasks back in the queue; an earlier one
 * does not.
 */
static void test_deadline_moves(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t w, est[] = {8, 8, 0};
    if (!add_tasks(&s, 3, est, NULL) ||
        !CHECK_RC(tf_sched_add_worker(&s, 1, 1, &w), TF_OK) ||
        !CHECK_RC(tf_sched_set_deadline(&s, 10 * S), TF_OK) ||
        !dispatch_at(&s, 0, (uint32_t[]){0}, 1, NULL))
        goto out;
    tf_sched_clock(&s, 9 * S);
    CHECK_FALSE(tf_sched_must_stop(&s));
    tf_sched_clock(&s, 10 * S);
    CHECK_TRUE(tf_sched_must_stop(&s));
    /* Extended by an hour: nothing was set aside yet, task 0 still runs. */
    if (!CHECK_RC(tf_sched_set_deadline(&s, 3610 * S), TF_OK) ||
        !done_at(&s, 0, 0, 10))
        goto out;
    CHECK_FALSE(tf_sched_must_stop(&s));
    /* Shortened to 12 s: task 1 (8 s) no longer fits and is set aside; the
       unknown task 2 starts. */
    if (!CHECK_RC(tf_sched_set_deadline(&s, 12 * S), TF_OK) ||
        !dispatch_at(&s, 10, (uint32_t[]){2}, 1, NULL))
        goto out;
    CHECK_EQ_U(s.wt.late.n, 1);
    if (!done_at(&s, 2, 10, 11))
        goto out;
    CHECK_TRUE(tf_sched_must_stop(&s));
    /* Later again: task 1 is back in the queue and starts. */
    if (!CHECK_RC(tf_sched_set_deadline(&s, 100 * S), TF_OK))
        goto out;
    CHECK_EQ_U(s.wt.late.n, 0);
    CHECK_FALSE(tf_sched_must_stop(&s));
    if (!dispatch_at(&s, 11, (uint32_t[]){1}, 1, NULL) ||
        !done_at(&s, 1, 11, 19))
        goto out;
    CHECK_TRUE(tf_sched_is_finished(&s));
    /* No deadline: nothing is checked. */
    CHECK_RC(tf_sched_set_deadline(&s, 0), TF_OK);
    CHECK_FALSE(tf_sched_must_stop(&s));
out:
    tf_sched_free(&s);
}

/*
 * The bookkeeping of set-aside tasks and charged estimates through the
 * other events: a dependency redone takes its set-aside dependent back to
 * PENDING, a steal moves the charge, a lost worker gives it back, a
 * retry charges again; tf_sched_check holds after each.
 */
static void test_events(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t a, b, c, d, w0, w1;
    int ok = CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &a), TF_OK) &&
             CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &b), TF_OK) &&
             CHECK_RC(tf_sched_add_task(&s, 0, 1, 1, &c), TF_OK) &&
             CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &d), TF_OK) &&
             CHECK_RC(tf_sched_add_dep(&s, a, b), TF_OK) &&
             CHECK_RC(tf_sched_set_est(&s, a, 1000, 1), TF_OK) &&
             CHECK_RC(tf_sched_set_est(&s, b, 50000, 0), TF_OK) &&
             CHECK_RC(tf_sched_set_est(&s, c, 0, 1), TF_OK) &&
             CHECK_RC(tf_sched_set_est(&s, d, 2000, 0), TF_OK) &&
             CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK) &&
             CHECK_RC(tf_sched_add_worker(&s, 1, 3, &w0), TF_OK) &&
             CHECK_RC(tf_sched_set_deadline(&s, 20 * S), TF_OK);
    if (!ok || !dispatch_at(&s, 0, (uint32_t[]){a, c, d}, 3, NULL))
        goto out;
    CHECK_EQ_U(s.workers[w0].est_ms, 1000 + 0 + 2000);
    CHECK_RC(tf_sched_set_est(&s, d, 1, 1), TF_EINVAL); /* on a worker */
    if (!done_at(&s, a, 0, 1) || !dispatch_at(&s, 1, NULL, 0, NULL))
        goto out;
    CHECK_EQ_U(s.wt.late.n, 1); /* b: 50 s */
    CHECK_RC(tf_sched_redo(&s, a), TF_OK);
    CHECK_STATE(&s, b, TF_ST_PENDING);
    CHECK_EQ_U(s.wt.late.n, 0);
    CHECK_SCHED(&s);
    /* Stolen: d's 2 s go with it. */
    if (!CHECK_RC(tf_sched_add_worker(&s, 1, 3, &w1), TF_OK) ||
        !dispatch_at(&s, 1, (uint32_t[]){a}, 1, (uint32_t[]){w1}))
        goto out;
    CHECK_RC(tf_sched_task_moved(&s, d, w0, w1), TF_OK);
    CHECK_EQ_U(s.workers[w0].est_ms, 0);
    CHECK_EQ_U(s.workers[w1].est_ms, 1000 + 2000);
    CHECK_SCHED(&s);
    /* c fails and is retried: charged with what its family learnt (1 s x 5/4). */
    CHECK_RC(tf_sched_task_failed(&s, c, TF_EIO), TF_OK);
    tf_sched_clear_actions(&s);
    CHECK_SCHED(&s);
    if (!dispatch_at(&s, 2, (uint32_t[]){c}, 1, (uint32_t[]){w0}))
        goto out;
    CHECK_EQ_U(s.workers[w0].est_ms, 1250);
    CHECK_RC(tf_sched_worker_lost(&s, w1), TF_OK);
    tf_sched_clear_actions(&s);
    CHECK_EQ_U(s.workers[w1].est_ms, 0);
    CHECK_SCHED(&s);
out:
    tf_sched_free(&s);
}

/* Tasks dropped from an unsealed batch leave no estimate to a newcomer. */
static void test_drop(void)
{
    tf_sched s;
    tf_sched_init(&s);
    uint32_t t, u;
    if (!CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &t), TF_OK) ||
        !CHECK_RC(tf_sched_set_est(&s, t, 5000, 3), TF_OK))
        goto out;
    tf_sched_drop_held(&s);
    if (!CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &u), TF_OK))
        goto out;
    CHECK_EQ_U(u, t);
    CHECK_EQ_U(tf_wt_est(&s.wt, u), 0);
    tf_wt_learn(&s.wt, u, S);
    CHECK_EQ_U(s.wt.fam_ms[3], 0);
out:
    tf_sched_free(&s);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("walltime", NULL, NULL);
    CU_add_test(s, "given, learnt and unknown estimates", test_estimates);
    CU_add_test(s, "no estimates: no cost", test_no_cost);
    CU_add_test(s, "what cannot finish is not started", test_deadline_stops);
    CU_add_test(s, "a late head does not block", test_priority_skips_late);
    CU_add_test(s, "queue waits count", test_queue_wait);
    CU_add_test(s, "learnt from the family", test_learnt);
    CU_add_test(s, "the deadline comes, moves", test_deadline_moves);
    CU_add_test(s, "redo, steal, retry, loss", test_events);
    CU_add_test(s, "dropped tasks", test_drop);
    return check_run();
}
