/* Example: longest common subsequence of two strings as a tiled wavefront DAG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskfarm.h"

/*
 * The LCS table of strings a (rows) and b (columns) is cut into T x T tiles.
 * Tile (i,j) needs the last row of the tile above and the last column of the
 * tile to its left, so tiles form a wavefront DAG: each depends on (i-1,j)
 * and (i,j-1). A tile's output is its last row, preceded by the value just
 * left of it (the corner its lower-right neighbour needs), then its last
 * column. Rank 0 checks the answer against a plain serial computation.
 */
typedef struct app {
    int n, tile, tiles; /* string length, tile size, tiles per side */
    char *a, *b;
} app;

static void make_string(char *s, int n, unsigned seed)
{
    unsigned x = seed;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = "ACGT"[(x >> 16) & 3];
    }
}

typedef struct tile_in {
    int i, j;
} tile_in;

static int tile_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const app *A = user;
    if (len != sizeof(tile_in))
        return 1;
    tile_in ti;
    memcpy(&ti, in, sizeof ti);
    int T = A->tile, r0 = ti.i * T, c0 = ti.j * T;
    /* top[0] is the corner (row r0-1, column c0-1); top[1..T] the row above. */
    int *top = calloc((size_t)T + 1, sizeof *top);
    int *left = calloc((size_t)T, sizeof *left);
    int *cur = malloc(((size_t)T + 1) * sizeof *cur);
    int *out = malloc(((size_t)2 * T + 1) * sizeof *out);
    if (!top || !left || !cur || !out) {
        free(top), free(left), free(cur), free(out);
        return 2;
    }
    size_t d = 0;
    const void *buf;
    size_t blen;
    if (ti.i > 0) { /* output of the tile above: [corner, last row..., col...] */
        tf_task_dep_output(ctx, d++, &buf, &blen);
        memcpy(top, buf, ((size_t)T + 1) * sizeof *top);
    }
    if (ti.j > 0) { /* output of the tile to the left: its last column */
        tf_task_dep_output(ctx, d++, &buf, &blen);
        memcpy(left, (const int *)buf + T + 1, (size_t)T * sizeof *left);
        if (ti.i == 0)
            top[0] = 0;
    }
    if (ti.i > 0 && ti.j == 0)
        top[0] = 0;
    out[0] = ti.j > 0 ? left[T - 1] : 0; /* corner for the tile below-right */
    for (int r = 0; r < T; r++) {
        cur[0] = left[r]; /* cur[k] is column c0-1+k of row r0+r */
        for (int k = 1; k <= T; k++) {
            int diag = (k == 1) ? top[0] : top[k - 1];
            if (A->a[r0 + r] == A->b[c0 + k - 1])
                cur[k] = diag + 1;
            else
                cur[k] = top[k] > cur[k - 1] ? top[k] : cur[k - 1];
        }
        out[T + 1 + r] = cur[T];
        top[0] = left[r];
        memcpy(top + 1, cur + 1, (size_t)T * sizeof *top);
    }
    memcpy(out + 1, top + 1, (size_t)T * sizeof *out);
    int rc = tf_task_set_output(ctx, out, ((size_t)2 * T + 1) * sizeof *out);
    free(top), free(left), free(cur), free(out);
    return rc;
}

static int serial_lcs(const app *A)
{
    int n = A->n;
    int *prev = calloc((size_t)n + 1, sizeof *prev);
    int *cur = calloc((size_t)n + 1, sizeof *cur);
    if (!prev || !cur)
        return -1;
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= n; j++)
            cur[j] = A->a[i - 1] == A->b[j - 1]
                         ? prev[j - 1] + 1
                         : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
        int *t = prev;
        prev = cur;
        cur = t;
    }
    int r = prev[n];
    free(prev);
    free(cur);
    return r;
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    app A = {.n = 4096, .tile = 256};
    if (argc > 1)
        A.n = atoi(argv[1]);
    if (argc > 2)
        A.tile = atoi(argv[2]);
    if (A.n <= 0 || A.tile <= 0 || A.n % A.tile) {
        if (rank == 0)
            fprintf(stderr, "usage: wavefront [N [TILE]] (TILE divides N)\n");
        MPI_Finalize();
        return 2;
    }
    A.tiles = A.n / A.tile;
    A.a = malloc((size_t)A.n);
    A.b = malloc((size_t)A.n);
    make_string(A.a, A.n, 1);
    make_string(A.b, A.n, 2);

    tf_runtime *rt;
    tf_fn_id fn;
    int rc = tf_init(MPI_COMM_WORLD, NULL, &rt);
    if (!rc)
        rc = tf_register(rt, "lcs_tile", tile_task, &A, &fn);
    if (rc) {
        fprintf(stderr, "wavefront: %s\n", tf_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    tf_task_id *ids = malloc(sizeof *ids * (size_t)A.tiles * A.tiles);
    for (int i = 0; rank == 0 && i < A.tiles; i++)
        for (int j = 0; j < A.tiles; j++) {
            tile_in ti = {i, j};
            tf_task_id deps[2];
            tf_task_desc d;
            tf_task_desc_init(&d, fn);
            d.input = &ti;
            d.input_len = sizeof ti;
            d.deps = deps;
            if (i > 0)
                deps[d.ndeps++] = ids[(i - 1) * A.tiles + j];
            if (j > 0)
                deps[d.ndeps++] = ids[i * A.tiles + j - 1];
            /* Earlier anti-diagonals lie on the critical path: run first. */
            d.prio = 2 * A.tiles - (i + j);
            rc = tf_submit(rt, &d, &ids[i * A.tiles + j]);
            if (rc) {
                fprintf(stderr, "wavefront: submit: %s\n", tf_strerror(rc));
                MPI_Abort(MPI_COMM_WORLD, 3);
            }
        }
    double t0 = MPI_Wtime();
    rc = tf_run(rt);
    double t1 = MPI_Wtime();
    int status = rc ? 1 : 0;
    if (rank == 0) {
        const void *buf;
        size_t len;
        int got = -1;
        if (!rc && !tf_task_output(rt, ids[A.tiles * A.tiles - 1], &buf,
                                   &len) &&
            len > 0)
            got = ((const int *)buf)[A.tile];
        int want = serial_lcs(&A);
        status = !rc && got == want ? 0 : 1;
        printf("wavefront: LCS of two %d-char strings, %dx%d tiles (%d tasks) "
               "on %d ranks in %.3f s: %d, serial %d: %s\n",
               A.n, A.tiles, A.tiles, A.tiles * A.tiles, size, t1 - t0, got,
               want, status ? "WRONG" : "CORRECT");
        if (rc)
            fprintf(stderr, "wavefront: run: %s\n", tf_strerror(rc));
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    tf_finalize(&rt);
    free(ids);
    free(A.a);
    free(A.b);
    MPI_Finalize();
    return status;
}
