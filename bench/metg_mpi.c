/* Hand-written MPI baseline for METG: block-distributed Task Bench graphs with nonblocking halo exchange. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

/*
 * How a scientist would write the pattern by hand: rank r owns points
 * [r * W/np, (r+1) * W/np) at every timestep; before timestep t it posts an
 * Irecv from each rank that owns a dependency it needs, packs and Isends
 * what each peer needs of its own points, Waitalls, then runs its tasks.
 * The exchange lists are worked out once per timestep before the clock
 * starts, so the timed loop does only packing, messages and compute.
 */
typedef struct xlist {
    uint32_t *cnt, *off, *idx; /* per (t, peer): count, offset into idx */
    size_t n, cap;
} xlist;

typedef struct plan {
    xlist recv, send;
    int np, me;
    uint32_t block;
} plan;

static void xlist_push(xlist *x, uint32_t v)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 256;
        x->idx = realloc(x->idx, x->cap * sizeof *x->idx);
        if (!x->idx) {
            fprintf(stderr, "metg_mpi: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
    x->idx[x->n++] = v;
}

/*
 * Append, in increasing order, the points of timestep t-1 owned by `src`
 * that the points of timestep t owned by `dst` depend on.
 */
static void needs(const plan *pl, int pattern, uint32_t W, uint32_t t,
                  int src, int dst, xlist *x, size_t slot, uint8_t *mark)
{
    memset(mark, 0, W);
    for (uint32_t i = (uint32_t)dst * pl->block;
         i < (uint32_t)(dst + 1) * pl->block && i < tfb_width(pattern, W, t);
         i++) {
        uint32_t dep[3];
        int n = tfb_deps(pattern, W, i, t, dep);
        for (int d = 0; d < n; d++)
            if (dep[d] / pl->block == (uint32_t)src)
                mark[dep[d]] = 1;
    }
    x->off[slot] = (uint32_t)x->n;
    for (uint32_t d = 0; d < W; d++)
        if (mark[d])
            xlist_push(x, d);
    x->cnt[slot] = (uint32_t)x->n - x->off[slot];
}

static void plan_make(plan *pl, int pattern, uint32_t W, uint32_t T)
{
    size_t slots = (size_t)T * (size_t)pl->np;
    uint8_t *mark = malloc(W);
    xlist *xs[2] = {&pl->recv, &pl->send};
    for (int j = 0; j < 2; j++) {
        memset(xs[j], 0, sizeof *xs[j]);
        xs[j]->cnt = calloc(slots, sizeof(uint32_t));
        xs[j]->off = calloc(slots, sizeof(uint32_t));
        if (!xs[j]->cnt || !xs[j]->off || !mark) {
            fprintf(stderr, "metg_mpi: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
    for (uint32_t t = 1; t < T; t++) {
        for (int p = 0; p < pl->np; p++) {
            if (p == pl->me)
                continue;
            size_t slot = (size_t)t * (size_t)pl->np + (size_t)p;
            needs(pl, pattern, W, t, p, pl->me, &pl->recv, slot, mark);
            needs(pl, pattern, W, t, pl->me, p, &pl->send, slot, mark);
        }
    }
    free(mark);
}

static void plan_free(plan *pl)
{
    xlist *xs[2] = {&pl->recv, &pl->send};
    for (int j = 0; j < 2; j++) {
        free(xs[j]->cnt);
        free(xs[j]->off);
        free(xs[j]->idx);
    }
}

/* Per-run buffers: the previous and current timestep, one message per peer. */
typedef struct bufs {
    tfb_point *prev, *cur; /* W each */
    tfb_point *rbuf, *sbuf; /* W and W * np: one part per peer, in order */
    MPI_Request *req;
} bufs;

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
        if (t > 0) {
            /* Each peer's part of rbuf/sbuf follows the previous peer's. */
            int nreq = 0;
            size_t base = (size_t)t * (size_t)pl->np, rpos = 0, spos = 0;
            for (int p = 0; p < pl->np; p++) {
                uint32_t n = pl->recv.cnt[base + (size_t)p];
                if (n)
                    MPI_Irecv(b->rbuf + rpos, (int)(n * sizeof(tfb_point)),
                              MPI_BYTE, p, 0, MPI_COMM_WORLD,
                              &b->req[nreq++]);
                rpos += n;
            }
            for (int p = 0; p < pl->np; p++) {
                uint32_t n = pl->send.cnt[base + (size_t)p];
                const uint32_t *ix =
                    pl->send.idx + pl->send.off[base + (size_t)p];
                tfb_point *s = b->sbuf + spos;
                for (uint32_t j = 0; j < n; j++)
                    s[j] = b->prev[ix[j]];
                if (n)
                    MPI_Isend(s, (int)(n * sizeof(tfb_point)), MPI_BYTE, p,
                              0, MPI_COMM_WORLD, &b->req[nreq++]);
                spos += n;
            }
            MPI_Waitall(nreq, b->req, MPI_STATUSES_IGNORE);
            rpos = 0;
            for (int p = 0; p < pl->np; p++) {
                uint32_t n = pl->recv.cnt[base + (size_t)p];
                const uint32_t *ix =
                    pl->recv.idx + pl->recv.off[base + (size_t)p];
                for (uint32_t j = 0; j < n; j++)
                    b->prev[ix[j]] = b->rbuf[rpos + j];
                rpos += n;
            }
        }
        uint32_t w = tfb_width(pattern, W, t);
        for (uint32_t i = lo; i < hi && i < w; i++) {
            uint32_t dep[3];
            uint64_t dh[3];
            int n = tfb_deps(pattern, W, i, t, dep);
            for (int d = 0; d < n; d++)
                dh[d] = b->prev[dep[d]].hash;
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
               "ns/iter, Irecv/Isend/Waitall per timestep\n",
               label, pl.np, pl.block, o.W, o.T, o.peak_ns);
    bufs b;
    b.prev = calloc(o.W, sizeof *b.prev);
    b.cur = calloc(o.W, sizeof *b.cur);
    b.rbuf = calloc(o.W, sizeof *b.rbuf);
    b.sbuf = calloc((size_t)o.W * (size_t)pl.np, sizeof *b.sbuf);
    b.req = calloc(2 * (size_t)pl.np, sizeof *b.req);
    if (!b.prev || !b.cur || !b.rbuf || !b.sbuf || !b.req)
        MPI_Abort(MPI_COMM_WORLD, 3);
    for (int pi = 0; pi < o.npatterns; pi++) {
        int pattern = o.patterns[pi];
        uint64_t ntasks = tfb_ntasks(pattern, o.W, o.T);
        plan_make(&pl, pattern, o.W, o.T);
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
        plan_free(&pl);
    }
    free(b.prev);
    free(b.cur);
    free(b.rbuf);
    free(b.sbuf);
    free(b.req);
    MPI_Finalize();
    return 0;
}
