/* Benchmark: rank 0's scheduling cost per task, measured on the pure core with no MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sched.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * Drive the scheduler exactly as rank 0's loop does (dispatch, act, report
 * done) with workers that finish instantly, and time the whole DAG: build,
 * seal, dispatch and release. "chain" is one long dependency chain, "wide"
 * independent tasks; both at n tasks.
 */
static int run(const char *shape, uint32_t n, uint32_t workers)
{
    tf_sched s;
    tf_sched_init(&s);
    double t0 = now();
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        if (tf_sched_add_task(&s, (int32_t)(i % 7), 1, 0, &t))
            return 1;
        if (shape[0] == 'c' && i && tf_sched_add_dep(&s, i - 1, t))
            return 1;
    }
    if (tf_sched_seal(&s, NULL, 0, NULL))
        return 1;
    double t1 = now();
    size_t bytes = tf_sched_bytes(&s);
    for (uint32_t w = 0; w < workers; w++) {
        uint32_t id;
        tf_sched_add_worker(&s, 1, 64, &id);
    }
    uint32_t *done = malloc(sizeof *done * n);
    size_t ndone = 0;
    while (!tf_sched_is_finished(&s)) {
        if (tf_sched_dispatch(&s))
            return 1;
        size_t na;
        const tf_action *a = tf_sched_actions(&s, &na);
        ndone = 0;
        for (size_t i = 0; i < na; i++)
            if (a[i].kind == TF_ACT_RUN)
                done[ndone++] = a[i].task;
        tf_sched_clear_actions(&s);
        for (size_t i = 0; i < ndone; i++)
            if (tf_sched_task_done(&s, done[i]))
                return 1;
    }
    double t2 = now();
    printf("core_%s_build_rate %.0f tasks/s\n", shape, n / (t1 - t0));
    printf("core_%s_schedule_ns_per_task %.1f ns\n", shape,
           (t2 - t1) * 1e9 / n);
    printf("core_%s_bytes_per_task %.1f B\n", shape, (double)bytes / n);
    free(done);
    tf_sched_free(&s);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    return run("chain", n, 3) || run("wide", n, 3);
}
