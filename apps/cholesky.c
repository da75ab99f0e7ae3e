/* Example: tiled Cholesky factorisation as a DAG of POTRF, TRSM, SYRK and GEMM tile tasks. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <lapacke.h>

#include "apps_common.h"
#include "taskfarm.h"

/*
 * A = L L^T for a symmetric positive definite N x N matrix A, cut into
 * nt x nt tiles of nb x nb doubles (column-major within a tile); only the
 * lower triangle of tiles is used. Step k of the right-looking algorithm:
 *   POTRF(k):      A(k,k) = chol(A(k,k))
 *   TRSM(i,k):     A(i,k) = A(i,k) L(k,k)^-T                 for i > k
 *   SYRK(i,k):     A(i,i) -= A(i,k) A(i,k)^T                 for i > k
 *   GEMM(i,j,k):   A(i,j) -= A(i,k) A(j,k)^T                 for i > j > k
 * Each task outputs the tile it wrote; the next task that updates the
 * same tile depends on it and receives it, and tasks that read L(i,k)
 * depend on the task that produced it. Tiles thus travel between ranks as
 * task inputs and dependency outputs: the first task on a tile gets its
 * initial value in its input, the others get it from their last
 * dependency. Priorities are bottom levels: the flops on the longest path
 * from the task to the end of the DAG, so the critical path runs first.
 *
 * Rank 0 then assembles L from the POTRF and TRSM outputs, checks
 * ||A - L L^T||_F / ||A||_F, and times one LAPACKE_dpotrf on the same
 * matrix with as many OpenBLAS threads as taskfarm had task slots (the
 * other ranks sleep meanwhile), and once with one thread.
 */

enum { POTRF, TRSM, SYRK, GEMM, NKINDS };
static const char *kind_name[NKINDS] = {"potrf", "trsm", "syrk", "gemm"};
/* Flops of each kernel in units of nb^3/3: 1, 3, 3, 6. */
static const int kind_cost[NKINDS] = {1, 3, 3, 6};

typedef struct chol {
    int n, nb, nt;
    int workers; /* worker ranks (0 with one rank) */
    bool owner;  /* -O: tiles pinned to workers */
} chol;

/* The head of every task's input; the tile's initial value follows when k == 0. */
typedef struct tile_hdr {
    int32_t kind, i, j, k;
} tile_hdr;

/* A deterministic symmetric matrix, made positive definite by its diagonal. */
static double matrix_entry(int n, int r, int c)
{
    uint64_t lo = (uint64_t)(r < c ? r : c), hi = (uint64_t)(r < c ? c : r);
    uint64_t x = (hi << 32 | lo) + 0x9e3779b97f4a7c15ull; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    double v = (double)(x >> 11) / 9007199254740992.0 - 0.5;
    return r == c ? v + n : v;
}

/* Copy tile (ti,tj) of the N x N column-major matrix a into t, or back. */
static void tile_get(const chol *C, const double *a, int ti, int tj, double *t)
{
    for (int c = 0; c < C->nb; c++)
        memcpy(t + (size_t)c * C->nb,
               a + ((size_t)tj * C->nb + c) * C->n + (size_t)ti * C->nb,
               (size_t)C->nb * sizeof *t);
}

static void tile_put(const chol *C, double *a, int ti, int tj, const double *t)
{
    for (int c = 0; c < C->nb; c++)
        memcpy(a + ((size_t)tj * C->nb + c) * C->n + (size_t)ti * C->nb,
               t + (size_t)c * C->nb, (size_t)C->nb * sizeof *t);
}

/*
 * Every kernel task: operands are the first dependencies (L(k,k) for TRSM;
 * L(i,k) for SYRK; L(i,k), L(j,k) for GEMM), the tile being updated is the
 * last dependency, or the input when k == 0. Buffers are copied into
 * aligned memory first: the runtime's buffers carry no alignment guarantee.
 */
static int tile_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const chol *C = user;
    const int nb = C->nb;
    const size_t tb = (size_t)nb * nb * sizeof(double);
    tile_hdr h;
    if (len < sizeof h)
        return 1;
    memcpy(&h, in, sizeof h);
    size_t nops = h.kind == POTRF ? 0 : h.kind == GEMM ? 2 : 1;
    if (h.kind < 0 || h.kind >= NKINDS ||
        tf_task_ndeps(ctx) != nops + (h.k > 0) ||
        len != sizeof h + (h.k == 0 ? tb : 0))
        return 1;
    /*
     * The tile is written straight into the runtime's output buffer and the
     * operands are read where they arrived: every buffer a task sees is
     * aligned for doubles, so neither needs a copy of its own.
     */
    double *w;
    const double *op[2] = {NULL, NULL};
    int rc = tf_task_output_alloc(ctx, 0, tb, (void **)&w) ? 2 : 0;
    for (size_t d = 0; !rc && d < nops; d++) {
        const void *buf;
        size_t blen;
        if (tf_task_dep_output(ctx, d, &buf, &blen) || blen != tb)
            rc = 2;
        else
            op[d] = buf;
    }
    if (!rc && h.k > 0) {
        const void *buf;
        size_t blen;
        if (tf_task_dep_output(ctx, nops, &buf, &blen) || blen != tb)
            rc = 2;
        else
            memcpy(w, buf, tb);
    } else if (!rc) {
        memcpy(w, (const char *)in + sizeof h, tb);
    }
    if (!rc) {
        switch (h.kind) {
        case POTRF:
            /* _work: skip LAPACKE's NaN scan of the input. */
            rc = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', nb, w, nb) ? 4 : 0;
            break;
        case TRSM:
            cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans,
                        CblasNonUnit, nb, nb, 1.0, op[0], nb, w, nb);
            break;
        case SYRK:
            cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, nb, nb, -1.0,
                        op[0], nb, 1.0, w, nb);
            break;
        case GEMM:
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, nb, nb, nb,
                        -1.0, op[0], nb, op[1], nb, 1.0, w, nb);
            break;
        }
    }
    return rc;
}

/* The DAG as rank 0 plans it before submitting: up to 3 deps per task. */
typedef struct plan_task {
    tile_hdr h;
    int ndeps, deps[3]; /* indexes of earlier plan tasks */
    long prio;
} plan_task;

typedef struct plan {
    plan_task *t;
    int n;
    bool *keep; /* per plan task: its output is a tile of L (rank 0 keeps it) */
    int *last;  /* nt x nt: the plan task that last wrote tile (i,j), or -1 */
    int *l_id;  /* nt x nt: the plan task whose output is L(i,j) */
} plan;

static int plan_add(plan *P, int nt, int kind, int i, int j, int k,
                    int op0, int op1)
{
    plan_task *t = &P->t[P->n];
    t->h = (tile_hdr){kind, i, j, k};
    t->ndeps = 0;
    if (op0 >= 0)
        t->deps[t->ndeps++] = op0;
    if (op1 >= 0)
        t->deps[t->ndeps++] = op1;
    int *last = &P->last[i * nt + j];
    if (*last >= 0)
        t->deps[t->ndeps++] = *last;
    *last = P->n;
    return P->n++;
}

/*
 * Plan the DAG in submission order (every dependency comes earlier), then
 * give each task its bottom level: its cost plus the largest bottom level
 * among its dependents, computed by one backward sweep.
 */
static int plan_build(plan *P, int nt, int use_prio)
{
    long ntasks = 0;
    for (int k = 0; k < nt; k++)
        ntasks += 1 + 2L * (nt - k - 1) + (long)(nt - k - 1) * (nt - k - 2) / 2;
    P->t = malloc((size_t)ntasks * sizeof *P->t);
    P->last = malloc((size_t)nt * nt * sizeof *P->last);
    P->l_id = malloc((size_t)nt * nt * sizeof *P->l_id);
    P->keep = calloc((size_t)ntasks, sizeof *P->keep);
    if (!P->t || !P->last || !P->l_id || !P->keep)
        return -1;
    P->n = 0;
    for (int x = 0; x < nt * nt; x++)
        P->last[x] = -1;
    for (int k = 0; k < nt; k++) {
        int f = plan_add(P, nt, POTRF, k, k, k, -1, -1);
        P->l_id[k * nt + k] = f;
        for (int i = k + 1; i < nt; i++)
            P->l_id[i * nt + k] = plan_add(P, nt, TRSM, i, k, k, f, -1);
        for (int i = k + 1; i < nt; i++) {
            plan_add(P, nt, SYRK, i, i, k, P->l_id[i * nt + k], -1);
            for (int j = k + 1; j < i; j++)
                plan_add(P, nt, GEMM, i, j, k, P->l_id[i * nt + k],
                         P->l_id[j * nt + k]);
        }
    }
    for (int x = 0; x < P->n; x++)
        P->t[x].prio = kind_cost[P->t[x].h.kind];
    for (int x = P->n - 1; x >= 0; x--)
        for (int d = 0; d < P->t[x].ndeps; d++) {
            plan_task *dep = &P->t[P->t[x].deps[d]];
            long via = kind_cost[dep->h.kind] + P->t[x].prio;
            if (via > dep->prio)
                dep->prio = via;
        }
    if (!use_prio)
        for (int x = 0; x < P->n; x++)
            P->t[x].prio = 0;
    for (int i = 0; i < nt; i++)
        for (int k = 0; k <= i; k++)
            P->keep[P->l_id[i * nt + k]] = true;
    return 0;
}

static void plan_free(plan *P)
{
    free(P->t), free(P->last), free(P->l_id), free(P->keep);
}

/* Submit the plan; a task's id goes to ids[its index]. */
static int submit_plan(tf_runtime *rt, const tf_fn_id fn[NKINDS],
                       const chol *C, const plan *P, const double *a,
                       tf_task_id *ids)
{
    size_t tb = (size_t)C->nb * C->nb * sizeof(double);
    char *in = malloc(sizeof(tile_hdr) + tb);
    if (!in)
        return TF_ENOMEM;
    int rc = 0;
    for (int x = 0; !rc && x < P->n; x++) {
        const plan_task *t = &P->t[x];
        tf_task_id deps[3];
        for (int d = 0; d < t->ndeps; d++)
            deps[d] = ids[t->deps[d]];
        memcpy(in, &t->h, sizeof t->h);
        size_t len = sizeof t->h;
        if (t->h.k == 0) {
            tile_get(C, a, t->h.i, t->h.j, (double *)(void *)(in + len));
            len += tb;
        }
        tf_task_desc d;
        tf_task_desc_init(&d, fn[t->h.kind]);
        d.prio = (int32_t)t->prio;
        d.deps = deps;
        d.ndeps = (size_t)t->ndeps;
        d.input = in;
        d.input_len = len;
        /*
         * The tiles of L are the result: rank 0 keeps them (they are read
         * by later tasks too, so they would otherwise be freed). Tiles in
         * between move worker to worker and are freed once read.
         */
        d.flags = P->keep[x] ? TF_TASK_KEEP : 0;
        /* -O: owner computes, tile (i,j) on worker (i + j) mod workers. */
        if (C->owner && C->workers)
            d.rank = 1 + (t->h.i + t->h.j) % C->workers;
        rc = tf_submit(rt, &d, &ids[x]);
    }
    free(in);
    return rc;
}

/* ||A - L L^T||_F / ||A||_F, with L the lower triangle of l (upper ignored). */
static double residual(int n, const double *a, double *l)
{
    double *r = malloc((size_t)n * n * sizeof *r);
    if (!r)
        return INFINITY;
    memcpy(r, a, (size_t)n * n * sizeof *r);
    for (int c = 1; c < n; c++) /* zero L's upper part for dsyrk */
        memset(l + (size_t)c * n, 0, (size_t)c * sizeof *l);
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, -1.0, l, n, 1.0,
                r, n);
    double num = LAPACKE_dlansy(LAPACK_COL_MAJOR, 'F', 'L', n, r, n);
    double den = LAPACKE_dlansy(LAPACK_COL_MAJOR, 'F', 'L', n, a, n);
    free(r);
    return num / den;
}

/* Seconds for one LAPACKE_dpotrf of a on `threads` OpenBLAS threads; l gets L. */
static double reference(int n, const double *a, double *l, int threads,
                        int *info)
{
    openblas_set_num_threads(threads);
    double warm[4] = {4, 1, 1, 4}; /* start OpenBLAS's threads untimed */
    LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', 2, warm, 2);
    memcpy(l, a, (size_t)n * n * sizeof *l);
    double t0 = MPI_Wtime();
    *info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', n, l, n);
    return MPI_Wtime() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Where the time went, from each task's start and end on rank 0: the sum
 * of the tasks' run times, and the delay from the end of a task's last
 * dependency to its start (messages to and from rank 0, dispatch, copies).
 * The clocks of the ranks of one node agree; across nodes they may not.
 */
static void print_timeline(tf_runtime *rt, const plan *P, const tf_task_id *ids,
                           int cores, double wall)
{
    tf_task_info *inf = malloc((size_t)P->n * sizeof *inf);
    double *lat = malloc((size_t)P->n * sizeof *lat);
    if (!inf || !lat) {
        free(inf), free(lat);
        return;
    }
    double busy = 0;
    int nlat = 0;
    for (int x = 0; x < P->n; x++) {
        if (tf_task_info_get(rt, ids[x], &inf[x]))
            memset(&inf[x], 0, sizeof inf[x]);
        busy += (double)(inf[x].end_ns - inf[x].start_ns) * 1e-9;
        uint64_t ready = 0;
        for (int d = 0; d < P->t[x].ndeps; d++)
            if (inf[P->t[x].deps[d]].end_ns > ready)
                ready = inf[P->t[x].deps[d]].end_ns;
        if (ready && inf[x].start_ns >= ready)
            lat[nlat++] = (double)(inf[x].start_ns - ready) * 1e-9;
    }
    double sum = 0;
    for (int x = 0; x < nlat; x++)
        sum += lat[x];
    qsort(lat, (size_t)nlat, sizeof *lat, cmp_double);
    printf("cholesky: tasks ran %.3f s in all, %.0f%% of %d cores x %.3f s; "
           "from last dependency's end to start: mean %.2f ms, median %.2f "
           "ms, max %.2f ms\n",
           busy, 100 * busy / (cores * wall), cores, wall,
           nlat ? 1e3 * sum / nlat : 0.0, nlat ? 1e3 * lat[nlat / 2] : 0.0,
           nlat ? 1e3 * lat[nlat - 1] : 0.0);
    free(inf), free(lat);
}

static void usage(int rank)
{
    if (rank == 0)
        fprintf(stderr, "usage: cholesky [-n N] [-b NB] [-s SLOTS] [-w WINDOW] "
                        "[-P] [-O]\n"
                        "  -n matrix order (2048), -b tile order (256; divides "
                        "N), -s slots per rank (1),\n"
                        "  -w tasks a worker may hold per slot (tf_config."
                        "prefetch; 0: the runtime's default),\n"
                        "  -P all priorities 0 (default: critical path)\n"
                        "  -O owner computes: tile (i,j) pinned to worker "
                        "(i + j) mod workers\n"
                        "     (default: rank 0 places each task near its "
                        "input tiles)\n");
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* One BLAS thread per task: taskfarm's slots are the parallelism. */
    openblas_set_num_threads(1);

    chol C = {.n = 2048, .nb = 256};
    int slots = 1, prefetch = 0, use_prio = 1, bad = 0, opt;
    while (!bad && (opt = getopt(argc, argv, "n:b:s:w:PO")) != -1) {
        if (opt == 'n')
            C.n = atoi(optarg);
        else if (opt == 'b')
            C.nb = atoi(optarg);
        else if (opt == 's')
            slots = atoi(optarg);
        else if (opt == 'w')
            prefetch = atoi(optarg);
        else if (opt == 'P')
            use_prio = 0;
        else if (opt == 'O')
            C.owner = true;
        else
            bad = 1;
    }
    if (bad || optind < argc || C.n <= 0 || C.nb <= 0 || C.n % C.nb ||
        C.n > 32768 || slots < 1 || slots > 64 || prefetch < 0) {
        usage(rank);
        MPI_Finalize();
        return 2;
    }
    C.nt = C.n / C.nb;
    C.workers = size > 1 ? size - 1 : 0;
    int cores = app_task_cores(size, slots);

    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = slots;
    cfg.prefetch = prefetch;
    tf_runtime *rt;
    tf_fn_id fn[NKINDS];
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    /* One function under four names, so that logs tell the kernels apart. */
    for (int x = 0; !rc && x < NKINDS; x++)
        rc = tf_register(rt, kind_name[x], tile_task, &C, &fn[x]);
    if (rc) {
        fprintf(stderr, "cholesky: %s\n", tf_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }

    size_t nn = (size_t)C.n * C.n;
    double *a = NULL, *l = NULL;
    plan P = {0};
    tf_task_id *ids = NULL;
    if (rank == 0) {
        a = malloc(nn * sizeof *a);
        l = malloc(nn * sizeof *l);
        if (!a || !l || plan_build(&P, C.nt, use_prio) ||
            !(ids = malloc((size_t)P.n * sizeof *ids))) {
            fprintf(stderr, "cholesky: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        for (int c = 0; c < C.n; c++)
            for (int r = 0; r < C.n; r++)
                a[(size_t)c * C.n + r] = matrix_entry(C.n, r, c);
        rc = submit_plan(rt, fn, &C, &P, a, ids);
        if (rc) {
            fprintf(stderr, "cholesky: submit: %s\n", tf_strerror(rc));
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
    double t0 = MPI_Wtime();
    rc = tf_run(rt);
    double t_farm = MPI_Wtime() - t0;

    /* Rank 0 checks and times the reference while the others sleep. */
    int status = rc ? 3 : 0;
    if (rank == 0) {
        double flops = (double)C.n * C.n * C.n / 3.0 +
                       (double)C.n * C.n / 2.0 + (double)C.n / 6.0;
        double res = INFINITY;
        int ok = 0;
        if (!rc) {
            size_t tb = (size_t)C.nb * C.nb * sizeof(double);
            int got = 1;
            for (int i = 0; got && i < C.nt; i++)
                for (int k = 0; got && k <= i; k++) {
                    const void *buf;
                    size_t len;
                    got = !tf_task_output(rt, ids[P.l_id[i * C.nt + k]], &buf,
                                          &len) &&
                          len == tb;
                    if (got)
                        tile_put(&C, l, i, k, buf);
                }
            openblas_set_num_threads(cores);
            res = got ? residual(C.n, a, l) : INFINITY;
            /* LAPACK's test threshold: backward error below 30 N eps. */
            ok = res < 30.0 * C.n * 2.220446049250313e-16;
            status = ok ? 0 : 1;
        } else {
            fprintf(stderr, "cholesky: run: %s\n", tf_strerror(rc));
        }
        int info_n, info_1;
        double t_ref = reference(C.n, a, l, cores, &info_n);
        double res_ref = info_n ? INFINITY : residual(C.n, a, l);
        double t_ref1 = reference(C.n, a, l, 1, &info_1);
        printf("cholesky: N=%d, %dx%d tiles of %d (%d tasks, %s priorities) "
               "on %d ranks, %d task cores: %.3f s, %.2f GFLOP/s; residual "
               "%.2e: %s\n",
               C.n, C.nt, C.nt, C.nb, P.n, use_prio ? "critical-path" : "no",
               size, cores, t_farm, flops / t_farm * 1e-9, res,
               ok ? "CORRECT" : "WRONG");
        if (!rc)
            print_timeline(rt, &P, ids, cores, t_farm);
        printf("cholesky: LAPACKE_dpotrf, OpenBLAS on %d threads: %.3f s, "
               "%.2f GFLOP/s, residual %.2e; on 1 thread: %.3f s, %.2f "
               "GFLOP/s\n",
               cores, t_ref, flops / t_ref * 1e-9, res_ref, t_ref1,
               flops / t_ref1 * 1e-9);
        printf("cholesky_taskfarm %.3f GFLOP/s\n", flops / t_farm * 1e-9);
        printf("cholesky_dpotrf_%dthreads %.3f GFLOP/s\n", cores,
               flops / t_ref * 1e-9);
        printf("cholesky_dpotrf_1thread %.3f GFLOP/s\n", flops / t_ref1 * 1e-9);
        printf("cholesky_taskfarm_vs_dpotrf %.3f ratio\n", t_ref / t_farm);
        if (info_n || info_1)
            status = 1;
    }
    app_sleepy_barrier(MPI_COMM_WORLD);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    tf_finalize(&rt);
    plan_free(&P);
    free(ids), free(a), free(l);
    MPI_Finalize();
    return status;
}
