/* MPI test that idle ranks sleep: one 3 s task, the others wait, CPU < 5%. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <mpi.h>

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

typedef struct tally {
    int rank;
    int passed, failed; /* rank 0's count of checks */
} tally;

static bool check(tally *t, bool ok, const char *file, int line,
                  const char *what, double a, double b)
{
    if (ok) {
        t->passed++;
        return true;
    }
    t->failed++;
    printf("%s:%d: check failed: %s: %g vs %g\n", file, line, what, a, b);
    fflush(stdout);
    return false;
}

/* Yields true when it held; never returns or jumps for the caller. */
#define EXPECT(t, cond, what, a, b)                                            \
    check((t), (cond), __FILE__, __LINE__, (what), (double)(a), (double)(b))

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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
static void measure(tally *t, int size, int slots)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = slots;
    tf_runtime *rt = NULL;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (t->rank == 0)
        EXPECT(t, worst == 0, "tf_init on every rank", worst, 0);
    if (worst)
        return; /* a missing rank would hang every collective below */
    tf_fn_id fn = 0;
    rc = tf_register(rt, "long_task", long_task, NULL, &fn);
    tf_task_id id = 0;
    if (t->rank == 0 && !rc) {
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        rc = tf_submit(rt, &d, &id);
    }
    if (rc)
        printf("rank %d: setup failed: %s\n", t->rank, tf_err_name(rc));

    /* Start together: no rank's clock may include waiting for the others. */
    MPI_Barrier(MPI_COMM_WORLD);
    double c0 = cpu_seconds(), w0 = wall_seconds();
    int run = tf_run(rt);
    double c1 = cpu_seconds(), w1 = wall_seconds();
    double mine[3] = {100.0 * (c1 - c0) / (w1 - w0), (double)run, (double)rc};

    double *got = t->rank == 0 ? calloc(3 * (size_t)size, sizeof *got) : NULL;
    if (t->rank == 0 && !got)
        MPI_Abort(MPI_COMM_WORLD, 2);
    MPI_Gather(mine, 3, MPI_DOUBLE, got, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (t->rank == 0) {
        printf("# slots=%d\n", slots);
        tf_task_info info;
        memset(&info, 0, sizeof info);
        info.rank = -1;
        int qrc = tf_task_info_get(rt, id, &info);
        EXPECT(t, qrc == 0, "tf_task_info_get", qrc, 0);
        EXPECT(t, info.state == TF_TASK_DONE, "the task is DONE", info.state,
               TF_TASK_DONE);
        /* Rank 0 only schedules when there are workers. */
        EXPECT(t, info.rank > 0 && info.rank < size, "the task ran on a worker",
               info.rank, size);
        for (int r = 0; r < size; r++) {
            EXPECT(t, got[3 * r + 1] == 0 && got[3 * r + 2] == 0,
                   "setup and tf_run succeeded on this rank", got[3 * r + 1],
                   got[3 * r + 2]);
            double pct = got[3 * r];
            if (r == info.rank) {
                printf("busy_rank%d_cpu %.2f %%\n", r, pct);
                continue;
            }
            printf("idle_rank%d_cpu %.2f %%\n", r, pct);
            char what[64];
            snprintf(what, sizeof what, "idle rank %d CPU %% below the limit",
                     r);
            EXPECT(t, pct < MAX_IDLE_PCT, what, pct, MAX_IDLE_PCT);
        }
        fflush(stdout);
    }
    free(got);
    rc = tf_finalize(&rt);
    if (rc)
        printf("rank %d: tf_finalize: %s\n", t->rank, tf_err_name(rc));
}

int main(int argc, char **argv)
{
    int provided = 0, size = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    tally t = {0, 0, 0};
    MPI_Comm_rank(MPI_COMM_WORLD, &t.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 3) {
        /* One worker runs the task and rank 0 schedules: nobody else is idle.
         */
        if (t.rank == 0)
            printf(
                "skip: needs np >= 3 for an idle worker\n0 passed, 0 failed\n");
        MPI_Finalize();
        return 0;
    }
    if (t.rank == 0)
        EXPECT(&t, provided >= MPI_THREAD_FUNNELED, "MPI thread level",
               provided, MPI_THREAD_FUNNELED);
    measure(&t, size, 1);
    measure(&t, size, 2);
    int bad = t.failed != 0;
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (t.rank == 0) {
        printf("%d passed, %d failed\n", t.passed, t.failed);
        fflush(stdout);
    }
    MPI_Finalize();
    return bad ? 1 : 0;
}
