/* Benchmark: rank 0's scheduling cost and memory per task, measured on the pure core with no MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sched.h"

/* Resident set size in bytes (Linux), 0 if unknown. */
static double rss_bytes(void)
{
    long total = 0, pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &total, &pages) != 2)
            pages = 0;
        fclose(f);
    }
    return (double)pages * 4096;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* What one run measured. */
typedef struct figures {
    double build_rate, ns_per_task, bytes_per_task, rss_per_task;
} figures;

/*
 * Drive the scheduler exactly as rank 0's loop does (dispatch, act, report
 * done) with workers that finish instantly, and time the whole DAG: build,
 * seal, dispatch and release. "chain" is one long dependency chain, "wide"
 * independent tasks; both at n tasks. The resident memory the process
 * gained over the run is printed next to the scheduler's own count, as a
 * check on it (it also holds the driver's n-entry buffer, 4 B/task).
 */
static int run(const char *shape, const char *size, uint32_t n,
               uint32_t workers, figures *f)
{
    tf_sched s;
    tf_sched_init(&s);
    double rss0 = rss_bytes();
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
    if (!done)
        return 1;
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
    if (s.count[TF_ST_DONE] != n) {
        fprintf(stderr, "core: %s: %u of %u tasks done\n", shape,
                s.count[TF_ST_DONE], n);
        return 1;
    }
    f->build_rate = n / (t1 - t0);
    f->ns_per_task = (t2 - t1) * 1e9 / n;
    f->bytes_per_task = (double)bytes / n;
    f->rss_per_task = (rss_bytes() - rss0) / n;
    printf("core_%s%s_build_rate %.0f tasks/s\n", shape, size, f->build_rate);
    printf("core_%s%s_schedule_ns_per_task %.1f ns\n", shape, size,
           f->ns_per_task);
    printf("core_%s%s_bytes_per_task %.1f B\n", shape, size,
           f->bytes_per_task);
    printf("core_%s%s_rss_bytes_per_task %.1f B\n", shape, size,
           f->rss_per_task);
    fflush(stdout);
    free(done);
    tf_sched_free(&s);
    return 0;
}

/* "_10M" for 10000000, "_1500" for 1500. */
static void size_label(uint32_t n, char *buf, size_t len)
{
    if (n && n % 1000000 == 0)
        snprintf(buf, len, "_%uM", n / 1000000);
    else
        snprintf(buf, len, "_%u", n);
}

/*
 * core [N [BIG]]: both shapes at N tasks (default 1M; names without a
 * size), then, if given, at BIG tasks (names carry the size, e.g. _10M)
 * with the ratios to the N-task figures.
 */
int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    uint32_t big = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
    static const char *const shapes[2] = {"chain", "wide"};
    char size[32], base[32];
    size_label(big, size, sizeof size);
    size_label(n, base, sizeof base);
    for (int j = 0; j < 2; j++) {
        figures a, b;
        if (run(shapes[j], "", n, 3, &a))
            return 1;
        if (!big)
            continue;
        if (run(shapes[j], size, big, 3, &b))
            return 1;
        printf("core_%s%s_vs%s_build_rate_ratio %.2f x\n", shapes[j], size,
               base, b.build_rate / a.build_rate);
        printf("core_%s%s_vs%s_bytes_per_task_ratio %.2f x\n", shapes[j],
               size, base, b.bytes_per_task / a.bytes_per_task);
    }
    return 0;
}
