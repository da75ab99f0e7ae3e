/* Benchmark: load imbalance, efficiency with work stealing on and off against the makespan lower bound. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "kernel.h"
#include "taskfarm.h"

/*
 * N independent tasks of busy compute (the METG kernel, so a task's work is
 * iterations x the calibrated ns per iteration) with durations drawn from a
 * seeded generator, the same draw for every configuration:
 * - uniform: [0.5, 1.5] x mean;
 * - heavy: lognormal with sigma 1.5 scaled to the same mean, capped at
 *   50 x mean (a few tasks of 10-40 x mean among many short ones).
 * Busy compute, not sleep: sleeping tasks would let more workers than
 * cores look efficient and hide what rank 0's own CPU use costs the
 * workers. The tasks are submitted in random order of size, as a user
 * would, with no priorities.
 *
 * efficiency = total work / (makespan x slots); the lower bound on the
 * makespan is max(longest task, total work / slots); utilisation = the
 * time tasks really ran (their start/end stamps) / (makespan x slots),
 * which leaves out how much slower the kernel ran than calibrated
 * because rank 0 or another job shared the core.
 */

typedef struct opts {
    double peak_ns, mean_us;
    int ntasks, slots, reps, slow;
} opts;

typedef struct tin {
    uint32_t index;
    uint32_t pad;
    uint64_t k;
} tin;

/*
 * user: this rank's slowdown, 1 on a normal worker. A slow worker (the
 * "slow" scenario) runs each task's kernel `slow` times, as a node that is
 * throttled or shared with another job would; the output is the same.
 */
static int work(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const int *slow = user;
    tin x;
    if (len != sizeof x)
        return 1;
    memcpy(&x, in, sizeof x);
    tfb_point p = tfb_compute(x.index, 0, x.k, NULL, 0);
    double sink = 0;
    for (int r = 1; r < *slow; r++)
        sink += tfb_kernel(x.k, p.value + r);
    if (sink != sink) /* never: keeps the extra calls alive */
        return 4;
    return tf_task_set_output(ctx, &p, sizeof p);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "imbalance: %s: %s\n", what, tf_strerror(rc));
    MPI_Abort(MPI_COMM_WORLD, 3);
}

/* Kernel iterations per task for distribution `heavy`, from a fixed seed. */
static void draw(const opts *o, int heavy, uint64_t *k)
{
    tf_rng r = tf_rng_seeded(heavy ? 2 : 1);
    double mean_ns = o->mean_us * 1e3, sigma = 1.5;
    for (int i = 0; i < o->ntasks; i++) {
        double u1 = ((double)(tf_rng_next(&r) >> 11) + 0.5) * 0x1p-53;
        double u2 = ((double)(tf_rng_next(&r) >> 11) + 0.5) * 0x1p-53;
        double d;
        if (!heavy) {
            d = mean_ns * (0.5 + u1);
        } else { /* Box-Muller normal; lognormal mean exp(mu + s^2/2) */
            double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
            d = mean_ns * exp(sigma * z - sigma * sigma / 2);
            if (d > 50 * mean_ns)
                d = 50 * mean_ns;
        }
        k[i] = (uint64_t)(d / o->peak_ns) + 1;
    }
}

/*
 * The same tasks without any runtime, as a hand-written MPI program would
 * run them: ranks 1..N-1 each compute a fixed share, split longest task
 * first onto the least loaded rank (LPT), from one barrier; rank 0 waits
 * asleep. Its makespan is what a perfect static schedule achieves on this
 * machine at this moment, and the summed task times are the work as it
 * really runs here with every worker core busy. On a shared VM whose speed
 * drifts by 10-20% (the calibrated peak is the best of 100 runs on an idle
 * core), that is the baseline that isolates scheduling.
 */
static void static_run(const opts *o, const uint64_t *k, int rank, int size,
                       double *makespan, double *work)
{
    int nw = size - 1;
    int *owner = malloc((size_t)o->ntasks * sizeof *owner);
    int *order = malloc((size_t)o->ntasks * sizeof *order);
    double *load = calloc((size_t)nw, sizeof *load);
    if (!owner || !order || !load)
        die("static", TF_ENOMEM);
    for (int i = 0; i < o->ntasks; i++)
        order[i] = i;
    for (int i = 1; i < o->ntasks; i++) { /* insertion sort, longest first */
        int v = order[i], j = i;
        for (; j > 0 && k[order[j - 1]] < k[v]; j--)
            order[j] = order[j - 1];
        order[j] = v;
    }
    for (int i = 0; i < o->ntasks; i++) {
        int best = 0;
        for (int w = 1; w < nw; w++)
            if (load[w] < load[best])
                best = w;
        load[best] += (double)k[order[i]];
        owner[order[i]] = best + 1;
    }
    double mine[2] = {0, 0}; /* makespan, summed task times */
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank) {
        double t0 = MPI_Wtime(), h = 0;
        for (int i = 0; i < o->ntasks; i++) {
            if (owner[i] != rank)
                continue;
            double a = MPI_Wtime();
            tfb_point p = tfb_compute((uint32_t)i, 0, k[i], NULL, 0);
            h += p.value;
            mine[1] += MPI_Wtime() - a;
        }
        mine[0] = MPI_Wtime() - t0;
        if (h != h) /* keep the result alive; never true for the kernel */
            fprintf(stderr, "imbalance: NaN\n");
    }
    /* Rank 0 sleeps meanwhile instead of spinning in a blocking call. */
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (int done = 0; !done;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    double all[2];
    MPI_Reduce(&mine[0], &all[0], 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&mine[1], &all[1], 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    *makespan = all[0];
    *work = all[1];
    free(owner);
    free(order);
    free(load);
}

typedef struct result {
    double makespan, busy; /* s; busy: summed task run times */
} result;

typedef struct mode {
    const char *name;
    int no_steal;
    int window; /* fixed prefetch window per slot; 0: the adaptive rule */
} mode;

enum { MAX_MODES = 4 };

/*
 * One run. Rank 0 checks that every task ran once and produced its point
 * (the kernel's value checked for the first 8 tasks).
 */
static result run(const opts *o, const uint64_t *k, const mode *m, int slow,
                  int rank)
{
    tf_config cfg;
    tf_config_init(&cfg);
    /* The layout this benchmark models: rank 0 only schedules. */
    cfg.rank0_runs_tasks = 0;
    cfg.slots = o->slots;
    cfg.no_steal = m->no_steal;
    if (m->window) {
        cfg.fixed_prefetch = 1;
        cfg.prefetch = (uint32_t)m->window;
    }
    cfg.seed = 1;
    int my_slow = rank == 1 ? slow : 1;
    tf_runtime *rt;
    tf_fn_id fn;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    if (rc || (rc = tf_register(rt, "work", work, &my_slow, &fn)))
        die("init", rc);
    tf_task_id *ids = NULL;
    if (rank == 0) {
        if (!(ids = malloc((size_t)o->ntasks * sizeof *ids)))
            die("ids", TF_ENOMEM);
        for (int i = 0; i < o->ntasks; i++) {
            tin x = {(uint32_t)i, 0, k[i]};
            tf_task_desc d;
            tf_task_desc_init(&d, fn);
            d.input = &x;
            d.input_len = sizeof x;
            if ((rc = tf_submit(rt, &d, &ids[i])))
                die("tf_submit", rc);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    rc = tf_run(rt);
    result res = {MPI_Wtime() - t0, 0};
    if (rc)
        die("tf_run", rc);
    for (int i = 0; rank == 0 && i < o->ntasks; i++) {
        tf_task_info info;
        const void *buf;
        size_t len;
        tfb_point p, want = tfb_compute((uint32_t)i, 0, i < 8 ? k[i] : 0,
                                        NULL, 0);
        if (tf_task_info_get(rt, ids[i], &info) || info.attempts != 1 ||
            info.state != TF_TASK_DONE ||
            tf_task_output(rt, ids[i], &buf, &len) || len != sizeof p ||
            (memcpy(&p, buf, sizeof p), p.hash != want.hash) ||
            (i < 8 && memcmp(&p.value, &want.value, sizeof p.value))) {
            fprintf(stderr, "imbalance: task %d did not run once correctly\n",
                    i);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        res.busy += (double)(info.end_ns - info.start_ns) * 1e-9;
    }
    free(ids);
    tf_finalize(&rt);
    return res;
}

/*
 * One scenario: the same tasks in every mode (at most MAX_MODES),
 * alternated (and with the static MPI split when `baseline`) so that noise
 * hits all alike; the best makespan of each is kept. capacity: the worker
 * slots' total speed in calibrated cores (a slow worker counts 1/slow).
 */
static void scenario(const opts *o, const uint64_t *k, const char *name,
                     const mode *modes, int nmodes, int slow, double capacity,
                     bool baseline, int rank, int size)
{
    double total = 0, longest = 0;
    for (int i = 0; i < o->ntasks; i++) {
        double s = (double)k[i] * o->peak_ns * 1e-9;
        total += s;
        if (s > longest)
            longest = s;
    }
    double bound = fmax(longest, total / capacity);
    int nslots = (size > 1 ? size - 1 : 1) * o->slots;
    result best[MAX_MODES];
    for (int m = 0; m < nmodes; m++)
        best[m] = (result){1e30, 0};
    double st_best = 1e30, st_work = 0;
    for (int r = 0; r < o->reps; r++) {
        if (baseline) {
            double ms, wk;
            static_run(o, k, rank, size, &ms, &wk);
            if (ms < st_best)
                st_best = ms, st_work = wk;
        }
        for (int m = 0; m < nmodes; m++) {
            result x = run(o, k, &modes[m], slow, rank);
            if (x.makespan < best[m].makespan)
                best[m] = x;
        }
    }
    if (rank)
        return;
    printf("imbalance_%s_work %.4f s\n", name, total);
    printf("imbalance_%s_longest_task %.4f s\n", name, longest);
    printf("imbalance_%s_lower_bound %.4f s\n", name, bound);
    if (baseline) {
        printf("imbalance_%s_static_mpi_makespan %.4f s\n", name, st_best);
        printf("imbalance_%s_measured_work %.4f s\n", name, st_work);
    }
    for (int m = 0; m < nmodes; m++) {
        const char *md = modes[m].name;
        double ms = best[m].makespan;
        printf("imbalance_%s_%s_makespan %.4f s\n", name, md, ms);
        printf("imbalance_%s_%s_efficiency %.3f ratio\n", name, md,
               total / (ms * capacity));
        printf("imbalance_%s_%s_makespan_vs_bound_ratio %.3f x\n", name, md,
               ms / bound);
        printf("imbalance_%s_%s_utilisation %.3f ratio\n", name, md,
               best[m].busy / (ms * nslots));
        if (baseline) {
            printf("imbalance_%s_%s_measured_efficiency %.3f ratio\n", name,
                   md, st_work / (ms * capacity));
            printf("imbalance_%s_%s_vs_static_mpi_ratio %.3f x\n", name, md,
                   st_best / ms);
        }
    }
    /* Modes come in pairs: stealing on, then off, with the same window. */
    for (int m = 0; m + 1 < nmodes; m += 2)
        printf("imbalance_%s_%ssteal_gain_ratio %.3f x\n", name,
               modes[m].window ? "fixed_window_" : "",
               best[m + 1].makespan / best[m].makespan);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    opts o = {0, 2000, 200, 1, 3, 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            o.peak_ns = 0; /* usage below */
            break;
        }
        if (!strcmp(a, "--peak-ns"))
            o.peak_ns = atof(argv[++i]);
        else if (!strcmp(a, "--mean-us"))
            o.mean_us = atof(argv[++i]);
        else if (!strcmp(a, "-n"))
            o.ntasks = atoi(argv[++i]);
        else if (!strcmp(a, "--slots"))
            o.slots = atoi(argv[++i]);
        else if (!strcmp(a, "--reps"))
            o.reps = atoi(argv[++i]);
        else if (!strcmp(a, "--slow"))
            o.slow = atoi(argv[++i]);
        else
            o.peak_ns = 0, i = argc;
    }
    if (!(o.peak_ns > 0) || !(o.mean_us > 0) || o.ntasks < 1 || o.slots < 1 ||
        o.reps < 1 || o.slow < 1) {
        fprintf(stderr,
                "usage: mpirun -np N %s --peak-ns NS (from metg --calibrate) "
                "[--mean-us 2000] [-n 200] [--slots 1] [--reps 3] [--slow 3]\n",
                argv[0]);
        return 2;
    }
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int slots = (size > 1 ? size - 1 : 1) * o.slots;
    uint64_t *k = malloc((size_t)o.ntasks * sizeof *k);
    if (!k)
        MPI_Abort(MPI_COMM_WORLD, 3);
    if (rank == 0)
        printf("# imbalance: %d tasks, mean %.0f us of compute, %d ranks, "
               "%d compute slots, best of %d\n",
               o.ntasks, o.mean_us, size, slots, o.reps);
    static const mode modes[MAX_MODES] = {
        {"steal", 0, 0}, {"nosteal", 1, 0},
        {"fixed_window_steal", 0, 64}, {"fixed_window_nosteal", 1, 64}};
    bool baseline = size > 1 && o.slots == 1;
    draw(&o, 0, k);
    scenario(&o, k, "uniform", modes, 2, 1, slots, baseline, rank, size);
    draw(&o, 1, k);
    scenario(&o, k, "heavy", modes, 2, 1, slots, baseline, rank, size);
    /*
     * One worker `slow` times slower (rank 1's slots), uniform durations:
     * what stealing is for. A static split would be as slow as that worker;
     * rank 0 adapts each worker's window to its own task durations, and
     * with fixed windows of 64 (what a user may set for short tasks) the
     * slow worker holds work the fast one could run unless it is stolen.
     */
    if (size > 2 && o.slow > 1) {
        draw(&o, 0, k);
        double cap = ((size - 2) + 1.0 / o.slow) * o.slots;
        scenario(&o, k, "slow", modes, 4, o.slow, cap, false, rank, size);
    }
    free(k);
    MPI_Finalize();
    return 0;
}
