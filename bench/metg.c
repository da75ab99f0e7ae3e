/* Benchmark: taskfarm's METG(50%) on Task Bench graphs (trivial, stencil, tree, fft). */
#define _GNU_SOURCE /* sched_getaffinity: which cpus each rank had */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "taskfarm.h"

/* What every rank needs to know of the graph being run (the fn's user). */
typedef struct graph {
    int pattern;
    uint32_t W;
} graph;

/* A task's input: its point, timestep and kernel length. */
typedef struct tb_in {
    uint32_t i, t;
    uint64_t k;
} tb_in;

/*
 * Task (i, t): checks that it got the dependencies its pattern says (count
 * and size), then computes its point from their hashes. A mismatch fails
 * the task, and so the run.
 */
static int tb_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const graph *g = user;
    tb_in x;
    if (len != sizeof x)
        return 1;
    memcpy(&x, in, sizeof x);
    uint32_t dep[3];
    int n = tfb_deps(g->pattern, g->W, x.i, x.t, dep);
    if ((size_t)n != tf_task_ndeps(ctx))
        return 2;
    uint64_t dh[3];
    for (int d = 0; d < n; d++) {
        const void *buf;
        size_t blen;
        tfb_point p;
        if (tf_task_dep_output(ctx, (size_t)d, &buf, &blen) ||
            blen != sizeof p)
            return 3;
        memcpy(&p, buf, sizeof p);
        dh[d] = p.hash;
    }
    tfb_point p = tfb_compute(x.i, x.t, x.k, dh, n);
    return tf_task_set_output(ctx, &p, sizeof p);
}

typedef struct tf_opts {
    tfb_opts g;
    int slots, no_steal, fixed_prefetch, prefetch;
    int rank0_idle; /* rank 0 of several only schedules */
    const char *label;
} tf_opts;

static void die(const char *what, int rc)
{
    fprintf(stderr, "metg: %s: %s\n", what, rc ? tf_strerror(rc) : "failed");
    MPI_Abort(MPI_COMM_WORLD, 3);
}

/* Rank 0: submit the graph, timestep by timestep; ids[t * W + i]. */
static void submit_graph(tf_runtime *rt, tf_fn_id fn, const graph *g,
                         uint32_t T, uint64_t k, tf_task_id *ids)
{
    for (uint32_t t = 0; t < T; t++) {
        for (uint32_t i = 0; i < tfb_width(g->pattern, g->W, t); i++) {
            uint32_t dep[3];
            tf_task_id did[3];
            int n = tfb_deps(g->pattern, g->W, i, t, dep);
            for (int d = 0; d < n; d++)
                did[d] = ids[(size_t)(t - 1) * g->W + dep[d]];
            tb_in x = {i, t, k};
            tf_task_desc desc;
            tf_task_desc_init(&desc, fn);
            desc.input = &x;
            desc.input_len = sizeof x;
            desc.deps = did;
            desc.ndeps = (size_t)n;
            int rc = tf_submit(rt, &desc, &ids[(size_t)t * g->W + i]);
            if (rc)
                die("tf_submit", rc);
        }
    }
}

/*
 * Rank 0: every task done once, every output the serial reference's hash;
 * the kernel's value is checked for the last timestep always and for every
 * task when that costs at most 2^24 iterations.
 */
static void check_graph(tf_runtime *rt, const graph *g, uint32_t T,
                        uint64_t k, const tf_task_id *ids, uint64_t *per_rank)
{
    uint64_t *ref = tfb_serial_hashes(g->pattern, g->W, T);
    if (!ref)
        die("serial reference", TF_ENOMEM);
    uint64_t ntasks = tfb_ntasks(g->pattern, g->W, T);
    bool all_values = ntasks * k <= (1u << 24);
    tf_stats st;
    tf_get_stats(rt, &st);
    if (st.done != ntasks || st.failed || st.skipped) {
        fprintf(stderr, "metg: %llu of %llu tasks done (%llu failed)\n",
                (unsigned long long)st.done, (unsigned long long)ntasks,
                (unsigned long long)st.failed);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (uint32_t t = 0; t < T; t++) {
        for (uint32_t i = 0; i < tfb_width(g->pattern, g->W, t); i++) {
            tf_task_id id = ids[(size_t)t * g->W + i];
            tf_task_info info;
            const void *buf;
            size_t len;
            tfb_point p;
            if (tf_task_info_get(rt, id, &info) || info.attempts != 1 ||
                tf_task_output(rt, id, &buf, &len) || len != sizeof p) {
                fprintf(stderr, "metg: task (%u,%u): no output\n", i, t);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            memcpy(&p, buf, sizeof p);
            per_rank[info.rank]++;
            bool ok = all_values || t + 1 == T
                          ? tfb_point_ok(ref, g->W, i, t, k, p)
                          : p.hash == ref[(size_t)t * g->W + i];
            if (!ok) {
                fprintf(stderr,
                        "metg: %s task (%u,%u) k=%llu: output differs from "
                        "the serial computation\n",
                        tfb_pattern_names[g->pattern], i, t,
                        (unsigned long long)k);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        }
    }
    free(ref);
}

/* One run of the graph with kernel length k; returns tf_run's wall time. */
static double run_graph(const tf_opts *o, graph *g, uint64_t k, int rank,
                        uint64_t *per_rank)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = o->slots;
    cfg.no_steal = o->no_steal;
    cfg.rank0_runs_tasks = !o->rank0_idle;
    cfg.fixed_prefetch = o->fixed_prefetch;
    if (o->prefetch)
        cfg.prefetch = o->prefetch;
    cfg.seed = 1;
    /* Rank 0 checks every task's output afterwards, not only the last step's. */
    cfg.keep_outputs = 1;
    tf_runtime *rt;
    tf_fn_id fn;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    if (rc)
        die("tf_init", rc);
    if ((rc = tf_register(rt, "tb", tb_task, g, &fn)))
        die("tf_register", rc);
    uint32_t T = o->g.T;
    tf_task_id *ids = NULL;
    if (rank == 0) {
        if (!(ids = calloc((size_t)g->W * T, sizeof *ids)))
            die("ids", TF_ENOMEM);
        submit_graph(rt, fn, g, T, k, ids);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    rc = tf_run(rt);
    double wall = MPI_Wtime() - t0;
    if (rc)
        die("tf_run", rc);
    if (rank == 0)
        check_graph(rt, g, T, k, ids, per_rank);
    free(ids);
    tf_finalize(&rt);
    return wall;
}

/* Rank 0 prints the cpus every rank may run on ("0-1", "1"). */
static void print_cpus(int rank, int size)
{
    char mine[64] = "", *all = rank == 0 ? malloc((size_t)size * 64) : NULL;
    cpu_set_t set;
    if (!sched_getaffinity(0, sizeof set, &set)) {
        size_t n = 0;
        for (int c = 0; c < CPU_SETSIZE && n + 8 < sizeof mine; c++)
            if (CPU_ISSET(c, &set))
                n += (size_t)snprintf(mine + n, sizeof mine - n, "%s%d",
                                      n ? "," : "", c);
    }
    MPI_Gather(mine, 64, MPI_CHAR, all, 64, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0 && all) {
        printf("# cpus of each rank:");
        for (int r = 0; r < size; r++)
            printf(" %d:{%s}", r, all + (size_t)r * 64);
        printf("\n");
    }
    free(all);
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s --calibrate\n"
            "       mpirun -np N %s --peak-ns NS [--patterns "
            "trivial,stencil,tree,fft] [-W 8] [-T 256]\n"
            "           [--start-us 200] [--slots S] [--no-steal] "
            "[--fixed-prefetch] [--prefetch P] [--label NAME]\n"
            "           [--rank0-schedules-only]\n",
            prog, prog);
}

int main(int argc, char **argv)
{
    tf_opts o = {.slots = 1};
    tfb_opts_init(&o.g);
    for (int i = 1; i < argc; i++) {
        int r = tfb_opts_parse(&o.g, argc, argv, &i);
        if (r > 0)
            continue;
        if (r == 0 && !strcmp(argv[i], "--no-steal")) {
            o.no_steal = 1;
        } else if (r == 0 && !strcmp(argv[i], "--rank0-schedules-only")) {
            o.rank0_idle = 1;
        } else if (r == 0 && !strcmp(argv[i], "--fixed-prefetch")) {
            o.fixed_prefetch = 1;
        } else if (r == 0 && i + 1 < argc && !strcmp(argv[i], "--slots")) {
            o.slots = atoi(argv[++i]);
        } else if (r == 0 && i + 1 < argc &&
                   !strcmp(argv[i], "--prefetch")) {
            o.prefetch = atoi(argv[++i]);
        } else if (r == 0 && i + 1 < argc && !strcmp(argv[i], "--label")) {
            o.label = argv[++i];
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (o.g.calibrate) { /* no MPI: one process alone on a core */
        printf("metg_peak_ns_per_iter %.4f ns\n", tfb_calibrate());
        return 0;
    }
    if (!(o.g.peak_ns > 0) || !tfb_opts_valid(&o.g) || o.slots < 1 ||
        o.prefetch < 0) {
        usage(argv[0]);
        return 2;
    }
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* Cores that run tasks: the slots of every rank that runs tasks. */
    int workers = size > 1 && o.rank0_idle ? size - 1 : size;
    int cores = workers * o.slots;
    char label[64];
    if (o.label)
        snprintf(label, sizeof label, "%s", o.label);
    else
        snprintf(label, sizeof label, "taskfarm_%s%dx%d%s",
                 size > 1 && o.rank0_idle ? "w" : "r", workers, o.slots,
                 o.no_steal ? "_nosteal" : "");
    if (rank == 0)
        printf("# %s: %d ranks on %d compute slots, W=%u T=%u, peak %.4f "
               "ns/iter, rank 0 %s\n",
               label, size, cores, o.g.W, o.g.T, o.g.peak_ns,
               size > 1 && o.rank0_idle ? "schedules only"
                                        : "schedules and runs tasks");
    print_cpus(rank, size);
    uint64_t *per_rank = calloc((size_t)size, sizeof *per_rank);
    if (!per_rank)
        die("per_rank", TF_ENOMEM);
    for (int pi = 0; pi < o.g.npatterns; pi++) {
        graph g = {o.g.patterns[pi], o.g.W};
        uint64_t ntasks = tfb_ntasks(g.pattern, g.W, o.g.T);
        tfb_sweep sw;
        tfb_sweep_init(&sw, tfb_k0(&o.g));
        uint64_t prev_k = 0;
        for (;;) {
            /* Rank 0 steers the sweep; everyone runs what it says. */
            uint64_t k = sw.next;
            MPI_Bcast(&k, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
            if (!k)
                break;
            if (k == prev_k)
                tfb_pause();
            prev_k = k;
            double ideal = (double)ntasks * (double)k * o.g.peak_ns * 1e-9 /
                           cores;
            double best = 1e30;
            for (int r = 0; r < tfb_reps(ideal); r++) {
                memset(per_rank, 0, (size_t)size * sizeof *per_rank);
                double w = run_graph(&o, &g, k, rank, per_rank);
                if (w < best)
                    best = w;
            }
            if (rank == 0)
                tfb_sweep_add(&sw, best * cores * 1e6 / (double)ntasks,
                              ideal / best);
        }
        if (rank == 0) {
            char name[128];
            snprintf(name, sizeof name, "%s_%s", label,
                     tfb_pattern_names[g.pattern]);
            /* Where the tasks ran, in the last run of the sweep. */
            printf("# %s tasks per rank (last run):", name);
            for (int r = 0; r < size; r++)
                printf(" %llu", (unsigned long long)per_rank[r]);
            printf("\n");
            tfb_sweep_report(&sw, name);
        }
    }
    free(per_rank);
    MPI_Finalize();
    return 0;
}
