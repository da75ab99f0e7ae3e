/* Example: a 1-D heat stencil whose blocks stay on their workers and trade one-point halos as output parts. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>

#include "apps_common.h"
#include "stencil_kernel.h"
#include "taskfarm.h"

/*
 * B blocks of N doubles cover a rod of B*N points (apps/stencil_kernel.h:
 * the initial condition, zero beyond both ends, one explicit step).
 * Task (b,s), for s = 0 .. S-1, computes block b after step s+1 and
 * outputs
 *   part 0  the block (N doubles, written in place: tf_task_output_alloc)
 *   part 1  its first point, which block b-1 reads as its right halo
 *   part 2  its last point, which block b+1 reads as its left halo
 * and depends on (b,s-1) part 0, (b-1,s-1) part 2 and (b+1,s-1) part 1
 * (desc.dep_parts), the neighbours only where they exist. Task (b,0)
 * builds its block and its two neighbouring points from the formula: its
 * input is 8 bytes, so rank 0 never carries block data on the way in.
 * Block b is pinned to rank 1 + b % (np-1) (desc.rank), so part 0 never
 * leaves its worker; only halos travel: inside task messages through rank
 * 0 while they are at most tf_config.inline_max bytes (the default 1024),
 * worker to worker with -i 0. The last step's tasks are sinks, so their
 * blocks are results: rank 0 receives them, and that is all the block
 * data it sees.
 *
 * Rank 0 then computes the same S steps serially (the other ranks asleep)
 * and requires the final blocks to equal them bit for bit.
 */
typedef struct stencil {
    size_t n; /* points per block */
    int blocks, steps;
} stencil;

/* A task's input: which block, after which step (0 = the first). */
typedef struct step_in {
    int32_t b, s;
} step_in;

/* One double of dependency i (a halo). 0 or -1. */
static int dep_point(tf_task_ctx *ctx, size_t i, double *x)
{
    const void *buf;
    size_t len;
    if (tf_task_dep_output(ctx, i, &buf, &len) || len != sizeof *x)
        return -1;
    memcpy(x, buf, sizeof *x);
    return 0;
}

/*
 * One step of one block. Dependencies, when s > 0: its own block, then
 * the left neighbour's last point (if b > 0), then the right neighbour's
 * first point (if b < B-1).
 */
static int step_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const stencil *P = user;
    step_in h;
    if (len != sizeof h)
        return 1;
    memcpy(&h, in, sizeof h);
    if (h.b < 0 || h.b >= P->blocks || h.s < 0 || h.s >= P->steps)
        return 1;
    const size_t n = P->n, total = n * (size_t)P->blocks;
    const size_t first = (size_t)h.b * n;
    const int has_left = h.b > 0, has_right = h.b + 1 < P->blocks;
    double left = 0.0, right = 0.0, *fresh = NULL;
    const double *u;
    if (h.s == 0) {
        fresh = malloc(n * sizeof *fresh);
        if (!fresh)
            return 2;
        stencil_fill(fresh, first, n, total);
        if (has_left)
            left = stencil_initial(first - 1, total);
        if (has_right)
            right = stencil_initial(first + n, total);
        u = fresh;
    } else {
        const void *buf;
        size_t blen, d = 1;
        if (tf_task_ndeps(ctx) != (size_t)(1 + has_left + has_right) ||
            tf_task_dep_output(ctx, 0, &buf, &blen) ||
            blen != n * sizeof(double) ||
            (has_left && dep_point(ctx, d++, &left)) ||
            (has_right && dep_point(ctx, d++, &right)))
            return 1;
        u = buf; /* aligned to max_align_t: used in place */
    }
    void *out;
    int rc = tf_task_output_alloc(ctx, 0, n * sizeof(double), &out);
    if (!rc) {
        double *v = out;
        stencil_step(u, left, right, v, n);
        /*
         * Halos only where a neighbour reads them, and none after the last
         * step: a sink's parts all go to rank 0 as its result, and the
         * blocks are all rank 0 needs.
         */
        if (h.s + 1 < P->steps && has_left)
            rc = tf_task_set_part(ctx, 1, &v[0], sizeof v[0]);
        if (!rc && h.s + 1 < P->steps && has_right)
            rc = tf_task_set_part(ctx, 2, &v[n - 1], sizeof v[0]);
    }
    free(fresh);
    return rc;
}

/* Submit the B x S tasks; final[b] gets the id of block b's last step. */
static int submit_all(tf_runtime *rt, tf_fn_id fn, const stencil *P, int nranks,
                      tf_task_id *final)
{
    tf_task_id *prev = malloc((size_t)P->blocks * sizeof *prev);
    tf_task_id *cur = malloc((size_t)P->blocks * sizeof *cur);
    int rc = prev && cur ? 0 : TF_ENOMEM;
    for (int s = 0; !rc && s < P->steps; s++) {
        for (int b = 0; !rc && b < P->blocks; b++) {
            step_in h = {b, s};
            tf_task_id deps[3];
            uint32_t parts[3];
            size_t nd = 0;
            if (s > 0) {
                deps[nd] = prev[b], parts[nd++] = 0;
                if (b > 0)
                    deps[nd] = prev[b - 1], parts[nd++] = 2;
                if (b + 1 < P->blocks)
                    deps[nd] = prev[b + 1], parts[nd++] = 1;
            }
            tf_task_desc d;
            tf_task_desc_init(&d, fn);
            d.input = &h;
            d.input_len = sizeof h;
            d.deps = deps;
            d.dep_parts = parts;
            d.ndeps = nd;
            /* Owner computes: block b lives on one worker for the run. */
            d.rank = nranks > 1 ? 1 + b % (nranks - 1) : -1;
            rc = tf_submit(rt, &d, &cur[b]);
        }
        tf_task_id *x = prev;
        prev = cur;
        cur = x;
    }
    if (!rc)
        memcpy(final, prev, (size_t)P->blocks * sizeof *final);
    free(prev), free(cur);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stencil [-b BLOCKS] [-n POINTS] [-s STEPS] [-i INLINE_MAX] "
            "[-R] [-h]\n"
            "  -b blocks (8, at most 16384), -n doubles per block (20000),\n"
            "  -s time steps (100),\n"
            "  -i tf_config.inline_max: output parts up to this many bytes "
            "travel through\n"
            "     rank 0, larger ones worker to worker (-1: the runtime's "
            "default; 0: none)\n"
            "  -R the data path before 2026-12-06, for comparison: every "
            "output to rank 0,\n"
            "     kept there, and sent by rank 0 to its readers\n");
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    stencil P = {.n = 20000, .blocks = 8, .steps = 100};
    long inline_max = -1, blocks = P.blocks, n = (long)P.n, steps = P.steps;
    int help = 0, via_rank0 = 0;
    /* A part is under 4 GiB: 2^26 doubles are 512 MiB. */
    const app_opt opts[] = {{'b', 1, 16384, &blocks},
                            {'n', 1, 1L << 26, &n},
                            {'s', 1, 1000000, &steps},
                            {'i', -1, LONG_MAX, &inline_max}};
    int bad = app_options(argc, argv, "stencil", rank, opts,
                          sizeof opts / sizeof opts[0], &via_rank0, &help);
    P.blocks = (int)blocks;
    P.n = (size_t)n;
    P.steps = (int)steps;
    if (!bad && !help && (long)P.blocks * P.steps > 10000000) {
        if (rank == 0)
            fprintf(stderr, "stencil: -b %d -s %d: over 10,000,000 tasks\n",
                    P.blocks, P.steps);
        bad = 1;
    }
    if (bad || help) {
        if (rank == 0)
            usage(help ? stdout : stderr);
        MPI_Finalize();
        return help ? 0 : 2;
    }
    const size_t total = P.n * (size_t)P.blocks;
    const int cores = app_task_cores(size, 1);

    tf_config cfg;
    tf_config_init(&cfg);
    cfg.inline_max = inline_max;
    if (via_rank0) {
        cfg.inline_max = LONG_MAX;
        cfg.keep_outputs = 1;
    }
    tf_runtime *rt;
    tf_fn_id fn;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    if (!rc)
        rc = tf_register(rt, "stencil_step", step_task, &P, &fn);
    if (rc) {
        fprintf(stderr, "stencil: %s\n", tf_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    tf_task_id *final = NULL;
    if (rank == 0) {
        final = malloc((size_t)P.blocks * sizeof *final);
        rc = final ? submit_all(rt, fn, &P, size, final) : TF_ENOMEM;
        if (rc) {
            fprintf(stderr, "stencil: submit: %s\n", tf_strerror(rc));
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
    double t0 = MPI_Wtime();
    rc = tf_run(rt);
    double t_farm = MPI_Wtime() - t0;
    /* Rank 0's peak now: the run with the results in, before the serial check.
     */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */

    /* What moved where: this rank's counters, summed (peaks: the largest). */
    tf_stats st = {0};
    tf_get_stats(rt, &st);
    uint64_t mine[3] = {st.fetches, st.fetched_bytes,
                        rank ? (uint64_t)ru.ru_minflt : 0},
             sum[3] = {0, 0, 0};
    uint64_t peak = st.data_bytes_peak, peak_max = 0;
    MPI_Reduce(mine, sum, 3, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&peak, &peak_max, 1, MPI_UINT64_T, MPI_MAX, 0, MPI_COMM_WORLD);

    int status = rc ? 3 : 0;
    double *got = NULL;
    uint64_t result_bytes = 0;
    if (rank == 0 && rc) {
        fprintf(stderr, "stencil: run: %s\n", tf_strerror(rc));
    } else if (rank == 0) {
        got = malloc(total * sizeof *got);
        if (!got) {
            fprintf(stderr, "stencil: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        for (int b = 0; b < P.blocks && !status; b++) {
            const void *buf;
            size_t len;
            if (tf_task_output(rt, final[b], &buf, &len) ||
                len != P.n * sizeof *got) {
                fprintf(stderr, "stencil: block %d: no final output\n", b);
                status = 3;
            } else {
                memcpy(got + (size_t)b * P.n, buf, len);
                result_bytes += len;
            }
        }
    }

    /* The serial reference on rank 0 while the other ranks sleep. */
    app_sleepy_barrier(MPI_COMM_WORLD);
    if (rank == 0 && !status) {
        double t_serial = 0;
        double *want = stencil_serial(total, P.steps, MPI_Wtime, &t_serial);
        if (!want) {
            fprintf(stderr, "stencil: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        double maxdiff;
        int same = stencil_same(got, want, total, &maxdiff);
        status = same ? 0 : 1;
        printf("stencil: B=%d N=%zu S=%d np=%d: %ld tasks on %d task cores, "
               "inline_max %ld%s: %.3f s; final blocks vs serial: max abs diff "
               "%.3g, %s: %s\n",
               P.blocks, P.n, P.steps, size, (long)P.blocks * P.steps, cores,
               inline_max, via_rank0 ? " (-R: all through rank 0)" : "",
               t_farm, maxdiff,
               same ? "bitwise equal" : "not bitwise equal",
               same ? "CORRECT" : "WRONG");
        printf("stencil_taskfarm_ms_per_step %.4f ms\n",
               1e3 * t_farm / P.steps);
        printf("stencil_serial_ms_per_step %.4f ms\n",
               1e3 * t_serial / P.steps);
        printf("stencil_taskfarm_vs_serial_ratio %.3f x\n", t_farm / t_serial);
        printf("stencil_rank0_payload_bytes %llu bytes\n",
               (unsigned long long)st.rank0_payload_bytes);
        printf("stencil_rank0_result_bytes %llu bytes\n",
               (unsigned long long)result_bytes);
        printf("stencil_rank0_peak_rss_mb %.1f MB\n", rss_mb);
        printf("stencil_fetches %llu count\n", (unsigned long long)sum[0]);
        printf("stencil_fetched_bytes %llu bytes\n",
               (unsigned long long)sum[1]);
        printf("stencil_worker_page_faults %llu count\n",
               (unsigned long long)sum[2]);
        printf("stencil_data_bytes_peak_max %llu bytes\n",
               (unsigned long long)peak_max);
        free(want);
    }
    app_sleepy_barrier(MPI_COMM_WORLD);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    tf_finalize(&rt);
    free(final), free(got);
    MPI_Finalize();
    return status;
}
