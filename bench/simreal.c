/* Benchmark: the simulator's workloads (src/sim/workload.c) run for real, for the simulated-vs-measured table of docs/scaling.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/workload.h"
#include "taskfarm.h"

/*
 * The same tasks as `taskfarm-sim --dag SHAPE --dist DIST --duration D
 * --tasks N --seed S [--slow-worker F]`: durations from the same seeded
 * draw, dependencies from the same shape, each task taking its duration
 * (rank 1 F times as long, as the simulator's worker 0). Prints the
 * makespan of tf_run, best of --reps, for run.sh to set beside the
 * simulator's prediction.
 */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct how {
    double slow; /* rank 1's slowdown */
    int sleep;   /* 1: sleep through the task; 0: busy */
} how;

/*
 * Take the input's nanoseconds (times the rank's slowdown): busy, as
 * compute would, or asleep, which leaves the cores to the runtime: the
 * simulator models workers that cost no CPU, so sleeping tasks measure
 * the protocol alone, busy ones add what sharing 2 cores with rank 0 costs.
 */
static int task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const how *h = user;
    uint64_t ns;
    if (len != sizeof ns)
        return 1;
    memcpy(&ns, in, sizeof ns);
    if (tf_task_rank(ctx) == 1)
        ns = (uint64_t)((double)ns * h->slow);
    uint64_t end = mono_ns() + ns;
    if (h->sleep) {
        struct timespec ts = {(time_t)(ns / 1000000000u),
                              (long)(ns % 1000000000u)};
        while (nanosleep(&ts, &ts))
            ;
        return 0;
    }
    while (mono_ns() < end)
        ;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: simreal --label L --dag independent|stencil|tree "
                    "--dist fixed|uniform|heavy --tasks N --duration-us D "
                    "--seed S [--slow-worker F] [--tasks-sleep 0|1] [--reps R]\n");
    return 2;
}

typedef struct opts {
    const char *label;
    sim_shape shape;
    sim_dist dist;
    uint64_t tasks, mean_ns, seed;
    how h;
    int reps;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){"run", SIM_INDEPENDENT, SIM_DIST_UNIFORM, 1000, 1000000, 1,
                {1.0, 0}, 3};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--label"))
            o->label = v;
        else if (!strcmp(a, "--dag")) {
            if (!sim_shape_of(v, &o->shape))
                return usage();
        } else if (!strcmp(a, "--dist")) {
            if (!sim_dist_of(v, &o->dist))
                return usage();
        }
        else if (!strcmp(a, "--tasks"))
            o->tasks = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--duration-us"))
            o->mean_ns = strtoull(v, NULL, 10) * 1000;
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--slow-worker"))
            o->h.slow = strtod(v, NULL);
        else if (!strcmp(a, "--tasks-sleep"))
            o->h.sleep = atoi(v);
        else if (!strcmp(a, "--reps"))
            o->reps = atoi(v);
        else
            return usage();
    }
    return o->tasks && o->mean_ns && o->h.slow >= 1 && o->reps > 0 ? 0
                                                                   : usage();
}

/* One run of the whole workload; rank 0 returns its makespan in ns. */
static int run_once(const opts *o, const uint64_t *dur, uint64_t width,
                    uint64_t *ns)
{
    tf_config cfg;
    tf_config_init(&cfg);
    /* The layout this benchmark models: rank 0 only schedules. */
    cfg.rank0_runs_tasks = 0;
    tf_runtime *rt;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    if (rc)
        return rc;
    tf_fn_id fn;
    how h = o->h;
    rc = tf_register(rt, "task", task, &h, &fn);
    for (uint64_t t = 0; !rc && tf_rank(rt) == 0 && t < o->tasks; t++) {
        uint64_t nb[3];
        tf_task_id deps[3];
        int k = sim_deps(o->shape, o->tasks, width, t, nb);
        for (int j = 0; j < k; j++)
            deps[j] = nb[j]; /* rank 0's ids are submission indexes */
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        d.deps = deps;
        d.ndeps = (size_t)k;
        d.input = &dur[t];
        d.input_len = sizeof dur[t];
        tf_task_id id;
        rc = tf_submit(rt, &d, &id);
    }
    uint64_t t0 = mono_ns();
    if (!rc)
        rc = tf_run(rt);
    *ns = mono_ns() - t0;
    tf_finalize(&rt);
    return rc;
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    opts o;
    if (parse(argc, argv, &o)) {
        MPI_Finalize();
        return 2;
    }
    int rc = 0;
    /* As the simulator: stencil rows one task per worker slot. */
    uint64_t width = size > 1 ? (uint64_t)size - 1 : 1;
    if (o.shape == SIM_STENCIL)
        o.tasks = (o.tasks + width - 1) / width * width;
    uint64_t *dur = malloc(o.tasks * sizeof *dur);
    if ((!dur || !sim_durations(o.dist, o.mean_ns, o.tasks, o.seed,
                                       dur)))
        rc = TF_ENOMEM;
    uint64_t best = UINT64_MAX;
    for (int r = 0; !rc && r < o.reps; r++) {
        uint64_t ns;
        rc = run_once(&o, dur, width, &ns);
        if (ns < best)
            best = ns;
    }
    if (!rc && rank == 0)
        printf("simreal_%s_makespan %.6f s\n", o.label, best / 1e9);
    else if (rc && rank == 0)
        fprintf(stderr, "simreal: %s\n", tf_strerror(rc));
    free(dur);
    MPI_Finalize();
    return rc ? 1 : 0;
}
