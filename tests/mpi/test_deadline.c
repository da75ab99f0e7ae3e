/* MPI integration tests of walltime-aware dispatch through the library: tf_config.deadline_ns, est_ms, TF_RUN_DEADLINE, TF_EDEADLINE, resume, an extension. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "harness.h"
#include "taskfarm.h"

/*
 * NSHORT tasks expected to take 100 ms (they take 20) and NLONG expected
 * to take an hour (they take 1 ms), under a deadline 20 s away: a verdict
 * no load on the machine can change. Each task counts its executions by
 * label on the rank it runs on; the counts are summed over the ranks.
 */
#define NSHORT 6
#define NLONG 3
#define NTASK (NSHORT + NLONG)

typedef struct env {
    char dir[64]; /* the state, rank 0's (every rank sees /tmp here) */
    _Atomic uint32_t exec[NTASK];
    tf_fn_id fn;
    int deadlines, skipped; /* rank 0's events */
    bool extend;            /* the callback lifts the deadline */
} env;

static int work(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx;
    env *e = user;
    uint32_t label;
    if (len != sizeof label)
        return 1;
    memcpy(&label, in, sizeof label);
    if (label >= NTASK)
        return 2;
    atomic_fetch_add(&e->exec[label], 1);
    struct timespec ts = {0, label < NSHORT ? 20000000L : 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}

static void on_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    env *e = user;
    if (ev->kind == TF_RUN_SKIPPED)
        e->skipped++;
    if (ev->kind != TF_RUN_DEADLINE)
        return;
    e->deadlines++;
    if (e->extend)
        tf_set_deadline(rt, 0);
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Executions of label i summed over the ranks, on every rank. */
static void totals(env *e, uint32_t *all)
{
    uint32_t mine[NTASK];
    for (int i = 0; i < NTASK; i++)
        mine[i] = atomic_load(&e->exec[i]);
    MPI_Allreduce(mine, all, NTASK, MPI_UINT32_T, MPI_SUM, MPI_COMM_WORLD);
}

/*
 * One runtime: submit the tasks (rank 0), run, return tf_run's code.
 * deadline_s: seconds from now (0: none); resume: load the state.
 */
static int one_run(mt_suite *s, env *e, double deadline_s, bool resume)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = 1;
    cfg.log_fn = mt_log;
    cfg.log_user = s;
    cfg.on_event = on_event;
    cfg.event_user = e;
    cfg.tick_ms = 50;
    cfg.checkpoint_dir = e->dir;
    cfg.resume = resume;
    if (deadline_s > 0)
        cfg.deadline_ns = wall_ns() + (uint64_t)(deadline_s * 1e9);
    tf_runtime *rt = NULL;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt), worst = rc;
    EXPECT_RC(s, rc, TF_OK);
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (worst)
        return worst; /* all ranks leave together, or the others would hang */
    EXPECT_RC(s, tf_register(rt, "work", work, e, &e->fn), TF_OK);
    if (s->rank != 0)
        EXPECT_RC(s, tf_set_deadline(rt, 1), TF_ENOTROOT);
    for (uint32_t i = 0; s->rank == 0 && i < NTASK; i++) {
        tf_task_desc d;
        tf_task_desc_init(&d, e->fn);
        d.input = &i;
        d.input_len = sizeof i;
        d.est_ms = i < NSHORT ? 100 : 3600000;
        d.family = i < NSHORT ? 1 : 2;
        tf_task_id id;
        EXPECT_RC(s, tf_submit(rt, &d, &id), TF_OK);
    }
    rc = tf_run(rt);
    tf_finalize(&rt);
    return rc;
}

static void case_stop_resume(mt_suite *s)
{
    env *e = s->user;
    memset(e->exec, 0, sizeof e->exec);
    e->deadlines = e->skipped = 0;
    e->extend = false;
    uint32_t all[NTASK];
    EXPECT_RC(s, one_run(s, e, 20, false), TF_EDEADLINE);
    totals(e, all);
    for (int i = 0; i < NTASK; i++)
        EXPECT_EQ_U(s, all[i], i < NSHORT ? 1u : 0u);
    if (s->rank == 0) {
        EXPECT_EQ(s, e->deadlines, 1);
        EXPECT_EQ(s, e->skipped, NLONG);
    }
    /* Resumed without a deadline: exactly the rest runs. */
    EXPECT_RC(s, one_run(s, e, 0, true), TF_OK);
    totals(e, all);
    for (int i = 0; i < NTASK; i++)
        EXPECT_EQ_U(s, all[i], 1u);
}

static void case_extend(mt_suite *s)
{
    env *e = s->user;
    memset(e->exec, 0, sizeof e->exec);
    e->deadlines = e->skipped = 0;
    e->extend = true;
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (s->rank == 0 && system(cmd) != 0)
        EXPECT_MSG(s, false, "cannot remove %s", e->dir);
    MPI_Barrier(MPI_COMM_WORLD);
    uint32_t all[NTASK];
    EXPECT_RC(s, one_run(s, e, 20, false), TF_OK);
    totals(e, all);
    for (int i = 0; i < NTASK; i++)
        EXPECT_EQ_U(s, all[i], 1u);
    if (s->rank == 0) {
        EXPECT_EQ(s, e->deadlines, 1);
        EXPECT_EQ(s, e->skipped, 0);
    }
}

static void case_bad(mt_suite *s)
{
    env *e = s->user;
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.log_fn = mt_log;
    cfg.log_user = s;
    tf_runtime *rt = NULL;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt), worst = rc;
    EXPECT_RC(s, rc, TF_OK);
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (worst)
        return;
    EXPECT_RC(s, tf_register(rt, "work", work, e, &e->fn), TF_OK);
    if (s->rank == 0) {
        tf_task_desc d;
        tf_task_desc_init(&d, e->fn);
        d.family = 16777217;
        tf_task_id id;
        EXPECT_RC(s, tf_submit(rt, &d, &id), TF_EINVAL);
        EXPECT_RC(s, tf_set_deadline(NULL, 1), TF_EINVAL);
    }
    tf_finalize(&rt);
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    static mt_suite s;
    static env e;
    mt_init(&s, "test_deadline");
    s.user = &e;
    if (s.rank == 0) {
        char base[] = "/tmp/tf_wt.XXXXXX";
        if (mkdtemp(base))
            snprintf(e.dir, sizeof e.dir, "%s/state", base);
    }
    MPI_Bcast(e.dir, sizeof e.dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    mt_run_case(&s, "deadline: the hour-long tasks wait, resume runs them",
                &case_stop_resume);
    mt_run_case(&s, "deadline lifted in the TF_RUN_DEADLINE callback",
                &case_extend);
    mt_run_case(&s, "bad family, no runtime", &case_bad);
    int rc = mt_finish(&s);
    if (s.rank == 0 && e.dir[0]) {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf '%.*s'",
                 (int)(strrchr(e.dir, '/') - e.dir), e.dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", e.dir);
    }
    MPI_Finalize();
    return rc;
}
