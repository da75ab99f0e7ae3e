/* Hand-written MPI baseline for METG: block-distributed Task Bench graphs with nonblocking halo exchange. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

/*
 * The pattern as Task Bench's mpi/nonblock runs it: rank r owns points
 * [r * W/np, (r+1) * W/np) at every timestep; every dependency that
 * crosses ranks is a message of its own (tagged with the producer's
 * point), received into the consumer's input slot, all of a timestep's
 * posted before one Waitall; every task then reads its inputs from there
 * or from its rank's outputs of the step before and writes its own output.
 * Who depends on whom is worked out inside the timed loop, as there.
 */
typedef struct plan {
    int np, me;
    uint32_t block;
} plan;

/* Per-run buffers: outputs of the previous and current timestep, inputs. */
typedef struct bufs {
    tfb_point *prev, *cur; /* W each: every point's output */
    tfb_point *in;         /* 3 per point: its inputs from other ranks */
    MPI_Request *req;      /* 6 per point: at most 3 in, 3 out */
} bufs;

static int owner(const plan *pl, uint32_t i) { return (int)(i / pl->block); }

/* Post step t's messages: inputs of this rank's points, outputs for others. */
static int exchange(const plan *pl, bufs *b, int pattern, uint32_t W,
                    uint32_t t)
{
    uint32_t lo = (uint32_t)pl->me * pl->block, hi = lo + pl->block;
    uint32_t w = tfb_width(pattern, W, t);
    int nreq = 0;
    for (uint32_t i = lo; i < hi && i < w; i++) {
        uint32_t dep[3];
        int n = tfb_deps(pattern, W, i, t, dep);
        for (int d = 0; d < n; d++)
            if (owner(pl, dep[d]) != pl->me)
                MPI_Irecv(&b->in[(size_t)i * 3 + (size_t)d], sizeof(tfb_point),
                          MPI_BYTE, owner(pl, dep[d]), (int)dep[d],
                          MPI_COMM_WORLD, &b->req[nreq++]);
    }
    for (uint32_t i = 0; i < w; i++) {
        if (owner(pl, i) == pl->me)
            continue;
        uint32_t dep[3];
        int n = tfb_deps(pattern, W, i, t, dep);
        for (int d = 0; d < n; d++)
            if (owner(pl, dep[d]) == pl->me)
                MPI_Isend(&b->prev[dep[d]], sizeof(tfb_point), MPI_BYTE,
                          owner(pl, i), (int)dep[d], MPI_COMM_WORLD,
                          &b->req[nreq++]);
    }
    return nreq;
}

/*
 * One run of the graph; returns the wall time (barrier to barrier). Adds
 * this rank's task count and sum of hashes; leaves the last timestep of
 * its points in b->prev.
 */
static double run_graph(const plan *pl, bufs *b, int pattern, uint32_t W,
                        uint32_t T, uint64_t k, uint64_t *count,
                        uint64_t *hsum)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    uint32_t lo = (uint32_t)pl->me * pl->block, hi = lo + pl->block;
    for (uint32_t t = 0; t < T; t++) {
        if (t > 0)
            MPI_Waitall(exchange(pl, b, pattern, W, t), b->req,
                        MPI_STATUSES_IGNORE);
        uint32_t w = tfb_width(pattern, W, t);
        for (uint32_t i = lo; i < hi && i < w; i++) {
            uint32_t dep[3];
            uint64_t dh[3];
            int n = tfb_deps(pattern, W, i, t, dep);
            for (int d = 0; d < n; d++)
                dh[d] = owner(pl, dep[d]) == pl->me
                            ? b->prev[dep[d]].hash
                            : b->in[(size_t)i * 3 + (size_t)d].hash;
            b->cur[i] = tfb_compute(i, t, k, dh, n);
            *hsum += b->cur[i].hash;
            (*count)++;
        }
        tfb_point *x = b->prev;
        b->prev = b->cur;
        b->cur = x;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return MPI_Wtime() - t0;
}

/*
 * Every task ran once (counts), every hash matches the serial computation
 * (their sum), and the last timestep's points, gathered on rank 0, match it
 * exactly, kernel values included.
 */
static void check_graph(const plan *pl, bufs *b, int pattern, uint32_t W,
                        uint32_t T, uint64_t k, uint64_t count, uint64_t hsum)
{
    uint64_t mine[2] = {count, hsum}, tot[2];
    MPI_Reduce(mine, tot, 2, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    tfb_point *last = pl->me == 0 ? malloc(W * sizeof *last) : NULL;
    MPI_Gather(b->prev + (size_t)pl->me * pl->block,
               (int)(pl->block * sizeof(tfb_point)), MPI_BYTE, last,
               (int)(pl->block * sizeof(tfb_point)), MPI_BYTE, 0,
               MPI_COMM_WORLD);
    if (pl->me != 0)
        return;
    uint64_t *ref = tfb_serial_hashes(pattern, W, T);
    if (!ref || !last) {
        fprintf(stderr, "metg_mpi: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    uint64_t rsum = 0;
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t i = 0; i < tfb_width(pattern, W, t); i++)
            rsum += ref[(size_t)t * W + i];
    bool ok = tot[0] == tfb_ntasks(pattern, W, T) && tot[1] == rsum;
    for (uint32_t i = 0; ok && i < tfb_width(pattern, W, T - 1); i++)
        ok = tfb_point_ok(ref, W, i, T - 1, k, last[i]);
    if (!ok) {
        fprintf(stderr,
                "metg_mpi: %s k=%llu: %llu tasks, results differ from the "
                "serial computation\n",
                tfb_pattern_names[pattern], (unsigned long long)k,
                (unsigned long long)tot[0]);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    free(ref);
    free(last);
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: mpirun -np N %s --peak-ns NS [--patterns "
            "trivial,stencil,tree,fft] [-W 8] [-T 256] [--start-us 200]\n"
            "       (N must divide W)\n",
            prog);
}

int main(int argc, char **argv)
{
    tfb_opts o;
    tfb_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        if (tfb_opts_parse(&o, argc, argv, &i) != 1 || o.calibrate) {
            usage(argv[0]);
            return 2;
        }
    }
    if (!(o.peak_ns > 0) || !tfb_opts_valid(&o)) {
        usage(argv[0]);
        return 2;
    }
    MPI_Init(&argc, &argv);
    plan pl;
    MPI_Comm_rank(MPI_COMM_WORLD, &pl.me);
    MPI_Comm_size(MPI_COMM_WORLD, &pl.np);
    if (o.W % (uint32_t)pl.np) {
        if (pl.me == 0)
            usage(argv[0]);
        MPI_Finalize();
        return 2;
    }
    pl.block = o.W / (uint32_t)pl.np;
    char label[64];
    snprintf(label, sizeof label, "mpi_np%d", pl.np);
    if (pl.me == 0)
        printf("# %s: %d ranks, %u points each, W=%u T=%u, peak %.4f "
               "ns/iter, a message per dependency across ranks (Task "
               "Bench's mpi/nonblock)\n",
               label, pl.np, pl.block, o.W, o.T, o.peak_ns);
    bufs b;
    b.prev = calloc(o.W, sizeof *b.prev);
    b.cur = calloc(o.W, sizeof *b.cur);
    b.in = calloc((size_t)o.W * 3, sizeof *b.in);
    b.req = calloc((size_t)o.W * 6, sizeof *b.req);
    if (!b.prev || !b.cur || !b.in || !b.req)
        MPI_Abort(MPI_COMM_WORLD, 3);
    for (int pi = 0; pi < o.npatterns; pi++) {
        int pattern = o.patterns[pi];
        uint64_t ntasks = tfb_ntasks(pattern, o.W, o.T);
        tfb_sweep sw;
        tfb_sweep_init(&sw, tfb_k0(&o));
        uint64_t prev_k = 0;
        for (;;) {
            uint64_t k = sw.next;
            MPI_Bcast(&k, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
            if (!k)
                break;
            if (k == prev_k)
                tfb_pause();
            prev_k = k;
            double ideal = (double)ntasks * (double)k * o.peak_ns * 1e-9 /
                           pl.np;
            double best = 1e30;
            for (int r = 0; r < tfb_reps(ideal); r++) {
                uint64_t count = 0, hsum = 0;
                double w = run_graph(&pl, &b, pattern, o.W, o.T, k, &count,
                                     &hsum);
                check_graph(&pl, &b, pattern, o.W, o.T, k, count, hsum);
                if (w < best)
                    best = w;
            }
            if (pl.me == 0)
                tfb_sweep_add(&sw, best * pl.np * 1e6 / (double)ntasks,
                              ideal / best);
        }
        if (pl.me == 0) {
            char name[128];
            snprintf(name, sizeof name, "%s_%s", label,
                     tfb_pattern_names[pattern]);
            tfb_sweep_report(&sw, name);
        }
    }
    free(b.prev);
    free(b.cur);
    free(b.in);
    free(b.req);
    MPI_Finalize();
    return 0;
}
