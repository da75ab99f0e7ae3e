/* A STREAM-triad-like memory-bandwidth task: a = b + s*c over arrays far larger than the caches. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Usage: stream [MIB_PER_ARRAY [REPEATS]] (default 64 MiB, 10). Threads:
 * OMP_NUM_THREADS (what taskfarm sets to the task's cores), default 1.
 * Each thread first-touches its own share of the arrays, as an OpenMP code
 * would, so the pages land on the NUMA node of the core it runs on when the
 * task is bound, and wherever the kernel put the thread otherwise. Prints
 * the best repeat as "stream_triad MB/s <value>" plus the check sum.
 */

typedef struct share {
    double *a, *b, *c;
    size_t lo, hi;
    pthread_barrier_t *bar;
    int reps;
    double best; /* thread 0 only: the best repeat's seconds */
} share;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *work(void *arg)
{
    share *s = arg;
    for (size_t i = s->lo; i < s->hi; i++) {
        s->a[i] = 0.0;
        s->b[i] = 1.0;
        s->c[i] = 2.0;
    }
    const double q = 3.0;
    s->best = 1e30;
    for (int r = 0; r < s->reps; r++) {
        pthread_barrier_wait(s->bar);
        double t0 = now();
        for (size_t i = s->lo; i < s->hi; i++)
            s->a[i] = s->b[i] + q * s->c[i];
        pthread_barrier_wait(s->bar);
        double t = now() - t0;
        if (t < s->best)
            s->best = t;
    }
    return NULL;
}

static long arg_or(int argc, char **argv, int i, long dflt, long lo, long hi)
{
    if (argc <= i)
        return dflt;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "stream: bad argument '%s' (want %ld..%ld)\n", argv[i],
                lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long mib = arg_or(argc, argv, 1, 64, 1, 1 << 16);
    int reps = (int)arg_or(argc, argv, 2, 10, 1, 100000);
    const char *omp = getenv("OMP_NUM_THREADS");
    int nt = omp ? atoi(omp) : 1;
    if (nt < 1 || nt > 1024)
        nt = 1;
    size_t n = (size_t)mib * 1024 * 1024 / sizeof(double);
    /* malloc of this size maps fresh pages: nothing is touched yet. */
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b),
           *c = malloc(n * sizeof *c);
    share *sh = calloc((size_t)nt, sizeof *sh);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    pthread_barrier_t bar;
    if (!a || !b || !c || !sh || !th ||
        pthread_barrier_init(&bar, NULL, (unsigned)nt)) {
        fprintf(stderr, "stream: out of memory\n");
        return 3;
    }
    for (int k = 0; k < nt; k++)
        sh[k] = (share){a,
                        b,
                        c,
                        n * (size_t)k / (size_t)nt,
                        n * (size_t)(k + 1) / (size_t)nt,
                        &bar,
                        reps,
                        0};
    for (int k = 1; k < nt; k++)
        if (pthread_create(&th[k], NULL, work, &sh[k])) {
            fprintf(stderr, "stream: cannot start thread %d\n", k);
            return 3;
        }
    work(&sh[0]);
    for (int k = 1; k < nt; k++)
        pthread_join(th[k], NULL);
    /* Every element must be 1 + 3*2: a wrong kernel must not look fast. */
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += a[i] != 7.0;
    double mbs = 3.0 * (double)n * sizeof(double) / sh[0].best / 1e6;
    printf("stream_triad %.0f MB/s threads %d arrays %ld MiB best %.6f s "
           "check %s\n",
           mbs, nt, mib, sh[0].best, wrong ? "FAILED" : "ok");
    pthread_barrier_destroy(&bar);
    free(a);
    free(b);
    free(c);
    free(sh);
    free(th);
    return wrong ? 1 : 0;
}
