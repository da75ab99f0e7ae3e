/* Example: a parameter sweep of uneven cost (the Mandelbrot set), gathered into one HDF5 file. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "apps_common.h"
#include "taskfarm.h"

/*
 * The sweep runs over a W x H grid of parameters c = x + iy and records,
 * for each, how many iterations of z <- z^2 + c (from z = 0) pass before
 * |z| > 2, up to max_iter. Points inside the set cost max_iter iterations,
 * points far outside one or two, so rows of the grid differ in cost by
 * more than 100x: the load is uneven and unknown in advance, as in many
 * real sweeps. A task computes `rows` consecutive rows and outputs their
 * counts; rank 0 gathers the outputs, checks some rows against a serial
 * computation, and writes one HDF5 file:
 *   /iterations        int32 [H][W]   iteration counts, row 0 at y = ymax
 *   /task_first_row    int32 [T]      first row of each task
 *   /task_seconds      double [T]     each task's run time
 *   /task_rank         int32 [T]      the rank that ran it
 * with attributes xmin, xmax, ymin, ymax, max_iter and ranks on the root
 * group. Pixel (i,j) is the centre of its cell:
 * x = xmin + (j + 0.5) (xmax - xmin) / W, y = ymax - (i + 0.5) (ymax - ymin) / H.
 */
typedef struct sweep {
    int w, h, max_iter, rows;
    double xmin, xmax, ymin, ymax;
} sweep;

static int32_t escape_count(const sweep *S, int i, int j)
{
    double cx = S->xmin + (j + 0.5) * ((S->xmax - S->xmin) / S->w);
    double cy = S->ymax - (i + 0.5) * ((S->ymax - S->ymin) / S->h);
    double zx = 0, zy = 0;
    int k = 0;
    for (; k < S->max_iter; k++) {
        double x2 = zx * zx, y2 = zy * zy;
        if (x2 + y2 > 4.0)
            break;
        zy = 2.0 * zx * zy + cy;
        zx = x2 - y2 + cx;
    }
    return k;
}

/* Input: int32 first row. Output: S->rows (fewer at the end) rows of counts. */
static int rows_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const sweep *S = user;
    int32_t r0;
    if (len != sizeof r0)
        return 1;
    memcpy(&r0, in, sizeof r0);
    if (r0 < 0 || r0 >= S->h)
        return 1;
    int n = S->h - r0 < S->rows ? S->h - r0 : S->rows;
    int32_t *out = malloc((size_t)n * S->w * sizeof *out);
    if (!out)
        return 2;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < S->w; j++)
            out[(size_t)i * S->w + j] = escape_count(S, r0 + i, j);
    int rc = tf_task_set_output(ctx, out, (size_t)n * S->w * sizeof *out);
    free(out);
    return rc;
}

static int attr_double(hid_t loc, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT,
                         H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return a < 0 || e < 0 ? -1 : 0;
}

static int attr_int(hid_t loc, const char *name, int v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT,
                         H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT, &v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return a < 0 || e < 0 ? -1 : 0;
}

static int write_dataset(hid_t f, const char *name, hid_t file_type,
                         hid_t mem_type, int rank, const hsize_t *dims,
                         const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL,
                                     H5P_DEFAULT, data);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    return d < 0 || e < 0 ? -1 : 0;
}

/*
 * Write the results to path: into path.tmp first, renamed over path once
 * closed, so that a reader never sees a half-written file. 0 or -1.
 */
static int write_h5(const char *path, const sweep *S, int ranks,
                    const int32_t *img, int ntasks, const int32_t *first,
                    const double *secs, const int32_t *trank)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    hid_t f;
    /* Say which file could not be created, instead of HDF5's stack dump. */
    H5E_BEGIN_TRY
    {
        f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (f < 0) {
        fprintf(stderr, "sweep: cannot create %s\n", tmp);
        return -1;
    }
    hsize_t d2[2] = {(hsize_t)S->h, (hsize_t)S->w}, d1 = (hsize_t)ntasks;
    int bad = write_dataset(f, "/iterations", H5T_STD_I32LE, H5T_NATIVE_INT32,
                            2, d2, img) ||
              write_dataset(f, "/task_first_row", H5T_STD_I32LE,
                            H5T_NATIVE_INT32, 1, &d1, first) ||
              write_dataset(f, "/task_seconds", H5T_IEEE_F64LE,
                            H5T_NATIVE_DOUBLE, 1, &d1, secs) ||
              write_dataset(f, "/task_rank", H5T_STD_I32LE, H5T_NATIVE_INT32,
                            1, &d1, trank) ||
              attr_double(f, "xmin", S->xmin) ||
              attr_double(f, "xmax", S->xmax) ||
              attr_double(f, "ymin", S->ymin) ||
              attr_double(f, "ymax", S->ymax) ||
              attr_int(f, "max_iter", S->max_iter) ||
              attr_int(f, "ranks", ranks);
    bad |= H5Fclose(f) < 0;
    if (!bad && rename(tmp, path)) {
        fprintf(stderr, "sweep: rename %s: %s\n", tmp, strerror(errno));
        bad = 1;
    }
    if (bad)
        remove(tmp);
    return bad ? -1 : 0;
}

static void usage(int rank)
{
    if (rank == 0)
        fprintf(stderr,
                "usage: sweep [-W WIDTH] [-H HEIGHT] [-i MAX_ITER] [-r ROWS] "
                "[-s SLOTS] [-o FILE] [-S DIR]\n"
                "  grid WIDTH x HEIGHT (1024 x 768) over [-2.0,0.6] x "
                "[-1.2,1.2], at most MAX_ITER (2000)\n"
                "  iterations a point, ROWS rows a task (1), SLOTS slots a "
                "rank (1), FILE (sweep.h5)\n"
                "  -S DIR: the run's state in DIR (on a file system every "
                "rank sees), heartbeats\n"
                "  of 3 s, and a lost rank 0 is succeeded by the lowest "
                "surviving rank\n"
                "  (under mpirun --enable-recovery)\n");
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    sweep S = {.w = 1024, .h = 768, .max_iter = 2000, .rows = 1,
               .xmin = -2.0, .xmax = 0.6, .ymin = -1.2, .ymax = 1.2};
    const char *path = "sweep.h5", *dir = NULL;
    int slots = 1, bad = 0, opt;
    while (!bad && (opt = getopt(argc, argv, "W:H:i:r:s:o:S:")) != -1) {
        switch (opt) {
        case 'W': S.w = atoi(optarg); break;
        case 'H': S.h = atoi(optarg); break;
        case 'i': S.max_iter = atoi(optarg); break;
        case 'r': S.rows = atoi(optarg); break;
        case 's': slots = atoi(optarg); break;
        case 'o': path = optarg; break;
        case 'S': dir = optarg; break;
        default: bad = 1;
        }
    }
    if (bad || optind < argc || S.w < 1 || S.h < 1 || S.w > 1 << 16 ||
        S.h > 1 << 16 || S.max_iter < 1 || S.rows < 1 || slots < 1 ||
        slots > 64 || !*path) {
        usage(rank);
        MPI_Finalize();
        return 2;
    }
    int cores = app_task_cores(size, slots);
    int ntasks = (S.h + S.rows - 1) / S.rows;

    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = slots;
    /*
     * The run's state in dir, heartbeats to notice a lost rank 0: a
     * successor's runtime (tf_takeover) resumes that state by itself.
     */
    if (dir) {
        cfg.heartbeat_ms = 3000;
        cfg.checkpoint_dir = dir;
    }
    tf_runtime *rt;
    tf_fn_id fn;
    tf_task_id *ids = malloc((size_t)ntasks * sizeof *ids);
    int rc = ids ? tf_init(MPI_COMM_WORLD, &cfg, &rt) : TF_ENOMEM;
    double t0 = MPI_Wtime();
again:
    /* After a take-over as after tf_init: the functions, then the tasks. */
    if (!rc)
        rc = tf_register(rt, "sweep_rows", rows_task, &S, &fn);
    if (rc) {
        fprintf(stderr, "sweep: %s\n", tf_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    rank = tf_rank(rt);
    size = tf_size(rt);
    if (rank == 0) {
        /*
         * A successor's tasks, submitted again, are matched to the lost
         * rank 0's state: those it had done are done at once, with their
         * outputs.
         */
        for (int t = 0; t < ntasks && !rc; t++) {
            int32_t r0 = t * S.rows;
            tf_task_desc d;
            tf_task_desc_init(&d, fn);
            d.input = &r0;
            d.input_len = sizeof r0;
            rc = tf_submit(rt, &d, &ids[t]);
        }
        if (rc) {
            fprintf(stderr, "sweep: submit: %s\n", tf_strerror(rc));
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
    rc = tf_run(rt);
    /*
     * Deposed: this rank 0 was silent too long and another took over; the
     * others left its communicator, so no collective with them: go.
     */
    if (rc == TF_EDEPOSED) {
        fprintf(stderr, "sweep: rank 0 deposed: another rank took over\n");
        _exit(3);
    }
    /* Rank 0 lost: the survivors go on under the lowest of them. */
    if (rc == TF_ELOST && dir && rank != 0) {
        rc = tf_takeover(&rt, dir);
        if (rc == TF_EDEPOSED) /* the others went on without this rank */
            _exit(0);
        goto again;
    }
    double wall = MPI_Wtime() - t0;

    int status = rc ? 3 : 0;
    if (rank == 0 && rc) {
        fprintf(stderr, "sweep: run: %s\n", tf_strerror(rc));
    } else if (rank == 0) {
        size_t npix = (size_t)S.w * S.h;
        int32_t *img = malloc(npix * sizeof *img);
        int32_t *first = malloc((size_t)ntasks * sizeof *first);
        int32_t *trank = malloc((size_t)ntasks * sizeof *trank);
        double *secs = malloc((size_t)ntasks * sizeof *secs);
        if (!img || !first || !trank || !secs) {
            fprintf(stderr, "sweep: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        double busy = 0, tmin = 1e300, tmax = 0;
        for (int t = 0; t < ntasks && !status; t++) {
            const void *buf;
            size_t len;
            tf_task_info inf;
            int r0 = t * S.rows, n = S.h - r0 < S.rows ? S.h - r0 : S.rows;
            if (tf_task_output(rt, ids[t], &buf, &len) ||
                len != (size_t)n * S.w * sizeof *img ||
                tf_task_info_get(rt, ids[t], &inf)) {
                fprintf(stderr, "sweep: task %d: no output\n", t);
                status = 3;
                break;
            }
            memcpy(img + (size_t)r0 * S.w, buf, len);
            first[t] = r0;
            trank[t] = inf.rank;
            secs[t] = (double)(inf.end_ns - inf.start_ns) * 1e-9;
            busy += secs[t];
            tmin = secs[t] < tmin ? secs[t] : tmin;
            tmax = secs[t] > tmax ? secs[t] : tmax;
        }
        /* A serial recomputation of a few rows: edges, middle, and between. */
        int check_rows[] = {0, S.h / 3, S.h / 2, (2 * S.h) / 3, S.h - 1};
        long mismatches = 0;
        for (size_t c = 0; !status && c < sizeof check_rows / sizeof *check_rows;
             c++)
            for (int j = 0; j < S.w; j++)
                mismatches += img[(size_t)check_rows[c] * S.w + j] !=
                              escape_count(&S, check_rows[c], j);
        if (!status && write_h5(path, &S, size, img, ntasks, first, secs,
                                trank)) {
            fprintf(stderr, "sweep: cannot write %s\n", path);
            status = 3;
        }
        if (!status) {
            status = mismatches ? 1 : 0;
            printf("sweep: %dx%d points, max_iter %d, %d tasks of %d rows on "
                   "%d ranks, %d task cores: %.3f s; task run time %.3g to "
                   "%.3g ms (ratio %.0f), busy %.0f%%; 5 rows checked "
                   "serially, %ld differ: %s; wrote %s\n",
                   S.w, S.h, S.max_iter, ntasks, S.rows, size, cores, wall,
                   tmin * 1e3, tmax * 1e3, tmin > 0 ? tmax / tmin : 0.0,
                   100 * busy / (cores * wall), mismatches,
                   mismatches ? "WRONG" : "CORRECT", path);
            printf("sweep_points_per_s %.4g points/s\n", (double)npix / wall);
            printf("sweep_busy_fraction %.3f ratio\n", busy / (cores * wall));
            printf("sweep_task_cost_ratio %.1f ratio\n",
                   tmin > 0 ? tmax / tmin : 0.0);
        }
        free(img), free(first), free(trank), free(secs);
    }
    /* Over the runtime's ranks: MPI_COMM_WORLD may hold a dead one. */
    tf_agree(rt, &status);
    tf_stats st;
    tf_get_stats(rt, &st);
    tf_finalize(&rt);
    free(ids);
    /* After a loss MPI_Finalize can wait for the dead rank forever. */
    if (st.lost_ranks) {
        fflush(NULL);
        _exit(status);
    }
    MPI_Finalize();
    return status;
}
