/*
 * Tests of the task runner's hand-off (src/exec/pool.c) with its real task
 * threads: a job pushed at any moment of a thread's look-then-sleep is run,
 * a thread with nothing that fits sleeps instead of spinning, and batches
 * of short jobs neither wait behind a long one nor run a job twice, and a
 * task's output parts reach its DONE event.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "core/registry.h"
#include "exec/pool.h"
#include "taskfarm_status.h"

/* A test that hangs ends the binary (SIGALRM) instead of stalling CI. */
#define WATCHDOG_S 120

static void sleep_us(uint32_t us)
{
    struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};
    nanosleep(&ts, NULL);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int noop(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)in, (void)len, (void)user;
    return 0;
}

/* Sleeps the input's microseconds, on one slot or many. */
static int nap(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)user;
    uint32_t us = 0;
    if (len == sizeof us)
        memcpy(&us, in, sizeof us);
    sleep_us(us);
    return 0;
}

/* 40 bytes of 'd': more than an event holds (TF_EV_TINY), a block. */
static const char forty_d[] = "dddddddddddddddddddddddddddddddddddddddd";

/*
 * Sets part 0 twice, part 2 (parts 1 on are an array), part 0 a third
 * time, larger: each replaces the one before it.
 */
static int three_parts(tf_task_ctx *ctx, const void *in, size_t len,
                       void *user)
{
    (void)in, (void)len, (void)user;
    int rc = tf_task_set_part(ctx, 0, "a", 1);
    if (!rc)
        rc = tf_task_set_part(ctx, 0, "bb", 2);
    if (!rc)
        rc = tf_task_set_part(ctx, 2, "ccc", 3);
    if (!rc)
        rc = tf_task_set_part(ctx, 0, forty_d, 40);
    return rc;
}

/* One part, set large, then small: the small one stays, in the event. */
static int one_part(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in, (void)len, (void)user;
    int rc = tf_task_set_output(ctx, forty_d, 40);
    return rc ? rc : tf_task_set_output(ctx, "xyz", 3);
}

static tf_registry reg;
static uint32_t fn_three_parts, fn_one_part;

static tf_job job_of(uint32_t idx, uint32_t fn, uint16_t cores,
                     const uint32_t *us)
{
    return (tf_job){.idx = idx,
                    .fn = fn,
                    .gid = idx,
                    .cores = cores,
                    .in_len = us ? sizeof *us : 0,
                    .in = us};
}

/*
 * Take the events there are; returns how many DONE ones, and the status
 * of the last in *status. With end_of (room for n jobs), each job's end
 * time goes to end_of[idx] (or'ed with 1, never 0), and a job that was
 * done before counts in *twice. Releases what they hold.
 */
static unsigned take_ends(tf_pool *p, int32_t *status, uint64_t *end_of,
                          size_t n, unsigned *twice)
{
    const tf_evvec *v = tf_pool_take_events(p);
    unsigned k = 0;
    for (size_t i = 0; i < v->n; i++) {
        tf_event *e = &v->v[i];
        if (e->kind == TF_EV_DONE) {
            k++;
            *status = e->status;
            if (end_of && e->idx < n) {
                *twice += end_of[e->idx] != 0;
                end_of[e->idx] = e->end_ns | 1;
            }
        }
        tf_pool_done_parts(p, e);
    }
    return k;
}

/* Nothing held any more, and the queue's invariants hold. */
static void books_balance(tf_pool *p)
{
    char why[256] = "";
    pthread_mutex_lock(&p->mu);
    CU_ASSERT(tf_wq_check(&p->wq, why, sizeof why));
    CU_ASSERT_EQUAL(tf_wq_held(&p->wq), 0);
    pthread_mutex_unlock(&p->mu);
    if (why[0])
        fprintf(stderr, "\n    tf_wq_check: %s\n", why);
}

static unsigned take_done(tf_pool *p, int32_t *status)
{
    return take_ends(p, status, NULL, 0, NULL);
}

/*
 * One job at a time, each pushed after a pause that ends anywhere in the
 * task thread's look for work (50 us) or just after it: the moments around
 * the look's end are where a push could find no sleeper to wake and the
 * thread then sleep on a queued job. Every job must be done within 10 s.
 */
static void test_handoff_no_lost_wakeup(void)
{
    tf_pool p;
    CU_ASSERT_EQUAL_FATAL(tf_pool_init(&p, 1, false, &reg, 0, 0), 0);
    tf_fetchvec fetch = {0};
    unsigned seed = 12345, lost = 0, iters = 20000;
    for (uint32_t i = 0; i < iters && !lost; i++) {
        tf_job j = job_of(i, 0, 1, NULL);
        CU_ASSERT_EQUAL(tf_pool_push(&p, &j, 1, 0, &fetch), 0);
        int32_t status = -1;
        unsigned done = 0;
        uint64_t give_up = mono_ns() + 10000000000u;
        while (!done && mono_ns() < give_up) {
            tf_pool_wait(&p, 100000000);
            done = take_done(&p, &status);
        }
        if (!done) {
            lost = i + 1;
            break;
        }
        CU_ASSERT_EQUAL(status, 0);
        /* 20 to 80 us: the thread is looking, or has just gone to sleep. */
        seed = seed * 1103515245u + 12345u;
        uint64_t until = mono_ns() + 20000 + (seed >> 8) % 60000;
        while (mono_ns() < until)
            ;
    }
    if (lost)
        fprintf(stderr, "\n    job %u of %u never ran: a lost wake-up\n", lost,
                iters);
    CU_ASSERT_EQUAL(lost, 0);
    free(fetch.v);
    tf_pool_destroy(&p);
}

/*
 * Two slots: a 1-slot job sleeps 300 ms while a 2-slot job waits at the
 * head of the queue. The idle thread has a job in view that cannot start;
 * it must sleep until the slot frees, not look again and again (the CPU
 * the process used in that time is well under the 300 ms).
 */
static void test_idle_thread_sleeps_on_wide_head(void)
{
    tf_pool p;
    CU_ASSERT_EQUAL_FATAL(tf_pool_init(&p, 2, false, &reg, 0, 0), 0);
    tf_fetchvec fetch = {0};
    uint32_t long_us = 300000, short_us = 0;
    tf_job jobs[2] = {job_of(0, 1, 1, &long_us), job_of(1, 1, 2, &short_us)};
    struct timespec c0, c1;
    CU_ASSERT_EQUAL(tf_pool_push(&p, &jobs[0], 1, 0, &fetch), 0);
    sleep_us(20000); /* the long job has started */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    CU_ASSERT_EQUAL(tf_pool_push(&p, &jobs[1], 1, 0, &fetch), 0);
    unsigned done = 0;
    int32_t status = -1;
    uint64_t give_up = mono_ns() + 10000000000u;
    while (done < 2 && mono_ns() < give_up) {
        tf_pool_wait(&p, 100000000);
        done += take_done(&p, &status);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    CU_ASSERT_EQUAL(done, 2);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) +
                 (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    if (cpu >= 0.1)
        fprintf(stderr, "\n    %.3f s of CPU while a wide job waited\n", cpu);
    CU_ASSERT(cpu < 0.1);
    free(fetch.v);
    tf_pool_destroy(&p);
}

/*
 * Batches (pool.c, run_jobs). Two task threads learn that jobs are short
 * (2,000 empty ones), so each takes many at once. Then a 300 ms job comes
 * first of 40 short ones: whichever thread takes it with a batch behind
 * it, the other thread takes those back (take_back) and runs them, so
 * every short job ends long before the long one. And whatever the
 * batches, each job runs exactly once.
 */
static void test_batch_behind_long_job(void)
{
    tf_pool p;
    CU_ASSERT_EQUAL_FATAL(tf_pool_init(&p, 2, false, &reg, 0, 0), 0);
    tf_fetchvec fetch = {0};
    enum { WARM = 2000, SHORT = 40 };
    static tf_job jobs[WARM];
    static uint64_t end_of[WARM];
    for (uint32_t i = 0; i < WARM; i++)
        jobs[i] = job_of(i, 0, 1, NULL);
    CU_ASSERT_EQUAL(tf_pool_push(&p, jobs, WARM, 0, &fetch), 0);
    unsigned done = 0, twice = 0;
    int32_t status = 0;
    uint64_t give_up = mono_ns() + 30000000000u;
    while (done < WARM && mono_ns() < give_up) {
        tf_pool_wait(&p, 100000000);
        done += take_ends(&p, &status, end_of, WARM, &twice);
    }
    CU_ASSERT_EQUAL(done, WARM);
    memset(end_of, 0, sizeof end_of);
    uint32_t long_us = 300000, zero = 0;
    jobs[0] = job_of(0, 1, 1, &long_us);
    for (uint32_t i = 1; i <= SHORT; i++)
        jobs[i] = job_of(i, 1, 1, &zero);
    CU_ASSERT_EQUAL(tf_pool_push(&p, jobs, SHORT + 1, 0, &fetch), 0);
    done = 0;
    give_up = mono_ns() + 30000000000u;
    while (done < SHORT + 1 && mono_ns() < give_up) {
        tf_pool_wait(&p, 100000000);
        done += take_ends(&p, &status, end_of, SHORT + 1, &twice);
    }
    CU_ASSERT_EQUAL(done, SHORT + 1);
    CU_ASSERT_EQUAL(twice, 0);
    CU_ASSERT_EQUAL(status, 0);
    unsigned late = 0;
    for (uint32_t i = 1; i <= SHORT; i++)
        late += !end_of[i] || end_of[i] >= end_of[0];
    if (late)
        fprintf(stderr, "\n    %u of %u short jobs ended after the long one\n",
                late, SHORT);
    CU_ASSERT_EQUAL(late, 0);
    books_balance(&p);
    free(fetch.v);
    tf_pool_destroy(&p);
}

/*
 * Many short jobs pushed in bursts while the driver's own slot runs some
 * too (tf_pool_run, as rank 0 does): batches on all three runners, stolen
 * back and forth; every job ends exactly once and the queue's books
 * balance.
 */
static void test_batches_with_driver(void)
{
    tf_pool p;
    CU_ASSERT_EQUAL_FATAL(tf_pool_init(&p, 3, true, &reg, 0, 0), 0);
    tf_fetchvec fetch = {0};
    enum { N = 200000 };
    static uint64_t end_of[N];
    static tf_job jobs[1000];
    unsigned done = 0, pushed = 0, twice = 0;
    int32_t status = 0;
    uint64_t give_up = mono_ns() + 60000000000u;
    while (done < N && mono_ns() < give_up) {
        if (pushed < N && pushed - done < 4000) {
            uint32_t n = 1 + (pushed * 7919u) % 1000;
            if (n > N - pushed)
                n = N - pushed;
            for (uint32_t i = 0; i < n; i++)
                jobs[i] = job_of(pushed + i, 0, 1, NULL);
            CU_ASSERT_EQUAL(tf_pool_push(&p, jobs, n, 0, &fetch), 0);
            pushed += n;
        }
        tf_pool_run(&p, 64, 20000);
        done += take_ends(&p, &status, end_of, N, &twice);
    }
    CU_ASSERT_EQUAL(done, N);
    CU_ASSERT_EQUAL(twice, 0);
    books_balance(&p);
    free(fetch.v);
    tf_pool_destroy(&p);
}

/* Part `i` of DONE event e holds the n bytes `want` (NULL, 0: none). */
static void part_is(const tf_event *e, uint16_t i, const char *want, size_t n)
{
    const uint8_t *got = tf_event_bytes(e, i);
    CU_ASSERT_EQUAL(tf_event_part(e, i)->len, n);
    CU_ASSERT_EQUAL(got == NULL, want == NULL);
    if (want && got && tf_event_part(e, i)->len == n)
        CU_ASSERT_EQUAL(memcmp(got, want, n), 0);
}

/*
 * A task's parts reach its DONE event as it last set them: a small part 0
 * in the event itself, with no block or array allocated for it, larger
 * ones in blocks, parts 1 on in an array.
 */
static void test_parts_in_event(void)
{
    tf_pool p;
    CU_ASSERT_EQUAL_FATAL(tf_pool_init(&p, 1, true, &reg, 0, 0), 0);
    tf_fetchvec fetch = {0};
    tf_job jobs[2] = {job_of(0, fn_three_parts, 1, NULL),
                      job_of(1, fn_one_part, 1, NULL)};
    CU_ASSERT_EQUAL(tf_pool_push(&p, jobs, 2, 0, &fetch), 0);
    unsigned seen = 0;
    for (int round = 0; round < 1000 && seen < 2; round++) {
        tf_pool_run(&p, 2, 20000);
        const tf_evvec *v = tf_pool_take_events(&p);
        for (size_t i = 0; i < v->n; i++) {
            tf_event *e = &v->v[i];
            if (e->kind == TF_EV_DONE && e->idx == 0) {
                seen++;
                CU_ASSERT_EQUAL(e->status, 0);
                CU_ASSERT_EQUAL_FATAL(e->nparts, 3);
                part_is(e, 0, forty_d, 40);
                part_is(e, 1, NULL, 0);
                part_is(e, 2, "ccc", 3);
            } else if (e->kind == TF_EV_DONE && e->idx == 1) {
                seen++;
                CU_ASSERT_EQUAL(e->status, 0);
                CU_ASSERT_EQUAL_FATAL(e->nparts, 1);
                CU_ASSERT_PTR_NULL(e->parts);
                CU_ASSERT_PTR_NULL(e->part0.blk); /* in the event itself */
                part_is(e, 0, "xyz", 3);
            }
            tf_pool_done_parts(&p, e);
            CU_ASSERT_EQUAL(e->nparts, 0);
            CU_ASSERT_PTR_NULL(e->parts);
        }
    }
    CU_ASSERT_EQUAL(seen, 2);
    books_balance(&p);
    free(fetch.v);
    tf_pool_destroy(&p);
}

int main(void)
{
    alarm(WATCHDOG_S);
    uint32_t id;
    if (tf_registry_add(&reg, "noop", noop, NULL, &id) ||
        tf_registry_add(&reg, "nap", nap, NULL, &id) ||
        tf_registry_add(&reg, "three_parts", three_parts, NULL,
                        &fn_three_parts) ||
        tf_registry_add(&reg, "one_part", one_part, NULL, &fn_one_part))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("task threads", NULL, NULL);
    CU_add_test(s, "a job pushed around a thread's sleep runs",
                test_handoff_no_lost_wakeup);
    CU_add_test(s, "an idle thread sleeps while a wide job waits",
                test_idle_thread_sleeps_on_wide_head);
    CU_add_test(s, "a batch's jobs do not wait behind a long one",
                test_batch_behind_long_job);
    CU_add_test(s, "batches on every runner, the driver's too",
                test_batches_with_driver);
    CU_add_test(s, "a task's parts reach its DONE event as last set",
                test_parts_in_event);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    tf_registry_free(&reg);
    return failed ? 1 : 0;
}
