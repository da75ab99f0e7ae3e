/* MPI test that idle ranks sleep: one 3 s task, the others wait, CPU < 5%. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "harness.h"
#include "taskfarm.h"

/*
 * A rank with nothing to do must sleep, not spin: on a shared node a
 * spinning rank steals a core from the worker next to it. The limit is a
 * fraction of wall time in CPU (user + sys of the whole process, MPI's own
 * threads included), measured around tf_run, so it holds however slow the
 * machine is; nothing here asserts on wall time itself.
 */
#define TASK_NS 3000000000L
#define MAX_IDLE_PCT 5.0

/* Sleeps, so that the rank running it is as idle as the others. */
static int long_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx;
    (void)in;
    (void)len;
    (void)user;
    struct timespec ts = {TASK_NS / 1000000000L, TASK_NS % 1000000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    return 0;
}

/*
 * One run with `slots` task slots per rank: with 1 an idle worker sleeps
 * between probes on its own; with 2 it waits on the pool's condition
 * variable, another code path.
 */
static void measure(mt_suite *s, int slots)
{
    /* One worker runs the task and rank 0 schedules: nobody else is idle. */
    if (s->size < 3) {
        mt_skip(s, "needs np >= 3 for an idle worker");
        return;
    }
    int size = s->size;
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = slots;
    tf_runtime *rt = NULL;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (s->rank == 0)
        EXPECT_RC(s, worst, 0); /* tf_init on every rank */
    if (worst)
        return; /* a missing rank would hang every collective below */
    tf_fn_id fn = 0;
    rc = tf_register(rt, "long_task", long_task, NULL, &fn);
    tf_task_id id = 0;
    if (s->rank == 0 && !rc) {
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        rc = tf_submit(rt, &d, &id);
    }
    if (rc)
        printf("rank %d: setup failed: %s\n", s->rank, tf_err_name(rc));

    /* Start together: no rank's clock may include waiting for the others. */
    MPI_Barrier(MPI_COMM_WORLD);
    double c0 = mt_cpu_seconds(), w0 = mt_wall_seconds();
    int run = tf_run(rt);
    double c1 = mt_cpu_seconds(), w1 = mt_wall_seconds();
    double mine[3] = {100.0 * (c1 - c0) / (w1 - w0), (double)run, (double)rc};

    double *got = s->rank == 0 ? calloc(3 * (size_t)size, sizeof *got) : NULL;
    if (s->rank == 0 && !got)
        MPI_Abort(MPI_COMM_WORLD, 2);
    MPI_Gather(mine, 3, MPI_DOUBLE, got, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (s->rank == 0) {
        printf("# slots=%d\n", slots);
        tf_task_info info;
        memset(&info, 0, sizeof info);
        info.rank = -1;
        int qrc = tf_task_info_get(rt, id, &info);
        EXPECT_RC(s, qrc, 0); /* tf_task_info_get */
        EXPECT_STATE(s, info, TF_TASK_DONE);
        /* Rank 0 only schedules when there are workers. */
        EXPECT_MSG(s, info.rank > 0 && info.rank < size,
                   "the task ran on a worker: rank %d of %d", info.rank, size);
        for (int r = 0; r < size; r++) {
            EXPECT_MSG(s, got[3 * r + 1] == 0 && got[3 * r + 2] == 0,
                       "setup and tf_run succeeded on rank %d: %s, %s", r,
                       tf_err_name((int)got[3 * r + 1]),
                       tf_err_name((int)got[3 * r + 2]));
            double pct = got[3 * r];
            if (r == info.rank) {
                printf("busy_rank%d_cpu %.2f %%\n", r, pct);
                continue;
            }
            printf("idle_rank%d_cpu %.2f %%\n", r, pct);
            EXPECT_MSG(s, pct < MAX_IDLE_PCT,
                       "idle rank %d CPU %% below the limit: %g vs %g", r, pct,
                       MAX_IDLE_PCT);
        }
        fflush(stdout);
    }
    free(got);
    rc = tf_finalize(&rt);
    if (rc)
        printf("rank %d: tf_finalize: %s\n", s->rank, tf_err_name(rc));
}

static void case_slots1(mt_suite *s) { measure(s, 1); }
static void case_slots2(mt_suite *s) { measure(s, 2); }

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    static mt_suite s;
    mt_init(&s, "test_idle");
    mt_begin_case(&s, "MPI_THREAD_FUNNELED provided");
    if (s.rank == 0)
        EXPECT_LE(&s, MPI_THREAD_FUNNELED, provided);
    mt_end_case(&s);
    mt_run_case(&s, "idle ranks sleep (slots=1: between probes)", case_slots1);
    mt_run_case(&s, "idle ranks sleep (slots=2: on the pool's condition)",
                case_slots2);
    int rc = mt_finish(&s);
    MPI_Finalize();
    return rc;
}
