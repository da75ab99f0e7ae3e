/* Hand-written MPI baseline for apps/stencil.c: the same 1-D heat stencil, blocks owned by ranks, one-point halos by Isend/Irecv. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "../apps/apps_common.h"
#include "../apps/stencil_kernel.h"

/*
 * How one would write apps/stencil.c's computation by hand: block b of
 * the B blocks of N points lives on rank b % np for the whole run (as in
 * the app, but every rank computes, rank 0 included). Each step, a rank
 * posts an Irecv for each halo point its blocks need from another rank,
 * Isends the first and last points of its blocks to the ranks that own
 * their neighbours (one double a message, straight from the block, which
 * stays untouched until the exchange ends), Waitalls, then steps its
 * blocks with apps/stencil_kernel.h, the app's own code. So the final
 * blocks must equal the serial computation's bit for bit; rank 0 gathers
 * them and checks, and times the serial steps while the other ranks sleep.
 *
 * Tags name the message: 2b carries block b's first point (to b-1), 2b+1
 * its last point (to b+1). The MPI standard promises tags up to 32767,
 * hence at most 16384 blocks.
 */
enum { MAX_BLOCKS = 16384 };

static void usage(int rank)
{
    if (rank == 0)
        fprintf(stderr,
                "usage: stencil_mpi [-b BLOCKS] [-n POINTS] [-s STEPS]\n"
                "  -b blocks (8; block b on rank b %% np), -n doubles "
                "per block (20000), -s time steps (100)\n");
}

int main(int argc, char **argv)
{
    int rank, np;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &np);

    long B = 8, N = 20000, S = 100, v = 0;
    int bad = 0, opt;
    while (!bad && (opt = getopt(argc, argv, "b:n:s:")) != -1) {
        if (opt == '?') {
            bad = 1;
            break;
        }
        static const long lim[][2] = {['b'] = {1, MAX_BLOCKS},
                                      ['n'] = {1, 1L << 26},
                                      ['s'] = {1, 1000000}};
        bad = app_parse_long(optarg, lim[opt][0], lim[opt][1], &v) != 0;
        if (bad && rank == 0)
            fprintf(stderr, "stencil_mpi: -%c %s: out of range\n", opt, optarg);
        else if (opt == 'b')
            B = v;
        else if (opt == 'n')
            N = v;
        else
            S = v;
    }
    if (bad || optind < argc) {
        usage(rank);
        MPI_Finalize();
        return 2;
    }
    const size_t n = (size_t)N, total = n * (size_t)B;

    /* This rank's blocks, in increasing order: mine[k] is global block b. */
    int nloc = 0;
    for (long b = rank; b < B; b += np)
        nloc++;
    int *mine = malloc((size_t)(nloc ? nloc : 1) * sizeof *mine);
    double *u = malloc((size_t)(nloc ? nloc : 1) * n * sizeof *u);
    double *w = malloc((size_t)(nloc ? nloc : 1) * n * sizeof *w);
    double *halo = malloc(2 * (size_t)(nloc ? nloc : 1) * sizeof *halo);
    MPI_Request *req = malloc(4 * (size_t)(nloc ? nloc : 1) * sizeof *req);
    if (!mine || !u || !w || !halo || !req) {
        fprintf(stderr, "stencil_mpi: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    for (int k = 0; k < nloc; k++) {
        mine[k] = rank + k * np;
        stencil_fill(u + (size_t)k * n, (size_t)mine[k] * n, n, total);
    }

    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (long s = 0; s < S; s++) {
        /* halo[2k], halo[2k+1]: the old points left and right of block k. */
        int nreq = 0;
        for (int k = 0; k < nloc; k++) {
            int b = mine[k];
            double *blk = u + (size_t)k * n;
            halo[2 * k] = halo[2 * k + 1] = 0.0; /* beyond the rod's ends */
            if (b > 0) {
                int owner = (b - 1) % np;
                if (owner == rank) /* np 1: the neighbour is local */
                    halo[2 * k] = u[(size_t)(k - 1) * n + n - 1];
                else {
                    MPI_Irecv(&halo[2 * k], 1, MPI_DOUBLE, owner,
                              2 * (b - 1) + 1, MPI_COMM_WORLD, &req[nreq++]);
                    MPI_Isend(&blk[0], 1, MPI_DOUBLE, owner, 2 * b,
                              MPI_COMM_WORLD, &req[nreq++]);
                }
            }
            if (b + 1 < B) {
                int owner = (b + 1) % np;
                if (owner == rank)
                    halo[2 * k + 1] = u[(size_t)(k + 1) * n];
                else {
                    MPI_Irecv(&halo[2 * k + 1], 1, MPI_DOUBLE, owner,
                              2 * (b + 1), MPI_COMM_WORLD, &req[nreq++]);
                    MPI_Isend(&blk[n - 1], 1, MPI_DOUBLE, owner, 2 * b + 1,
                              MPI_COMM_WORLD, &req[nreq++]);
                }
            }
        }
        MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
        for (int k = 0; k < nloc; k++)
            stencil_step(u + (size_t)k * n, halo[2 * k], halo[2 * k + 1],
                         w + (size_t)k * n, n);
        double *x = u;
        u = w;
        w = x;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t_mpi = MPI_Wtime() - t0;

    /* Rank 0 gathers the final blocks (tag: the block), then checks them. */
    double *got = NULL;
    if (rank == 0) {
        got = malloc(total * sizeof *got);
        if (!got) {
            fprintf(stderr, "stencil_mpi: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        for (int b = 0; b < B; b++) {
            if (b % np == 0)
                memcpy(got + (size_t)b * n, u + (size_t)(b / np) * n,
                       n * sizeof *got);
            else
                MPI_Recv(got + (size_t)b * n, (int)n, MPI_DOUBLE, b % np, b,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    } else {
        for (int k = 0; k < nloc; k++)
            MPI_Send(u + (size_t)k * n, (int)n, MPI_DOUBLE, 0, mine[k],
                     MPI_COMM_WORLD);
    }
    int status = 0;
    app_sleepy_barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        double t_serial = 0;
        double *want = stencil_serial(total, (int)S, MPI_Wtime, &t_serial);
        if (!want) {
            fprintf(stderr, "stencil_mpi: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        double maxdiff;
        int same = stencil_same(got, want, total, &maxdiff);
        status = same ? 0 : 1;
        printf("stencil_mpi: B=%ld N=%ld S=%ld np=%d: %.3f s; final blocks vs "
               "serial: max abs diff %.3g, %s: %s\n",
               B, N, S, np, t_mpi, maxdiff,
               same ? "bitwise equal" : "not bitwise equal",
               same ? "CORRECT" : "WRONG");
        printf("stencil_mpi_np%d_ms_per_step %.4f ms\n", np, 1e3 * t_mpi / S);
        printf("stencil_serial_ms_per_step %.4f ms\n", 1e3 * t_serial / S);
        free(want);
    }
    app_sleepy_barrier(MPI_COMM_WORLD);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    free(mine), free(u), free(w), free(halo), free(req), free(got);
    MPI_Finalize();
    return status;
}
