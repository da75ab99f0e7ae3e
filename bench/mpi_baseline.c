/* Hand-written MPI master/worker farm: the empty-task throughput baseline for `make bench`. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_TASK = 1, TAG_RESULT = 2, TAG_STOP = 3 };
enum { PAYLOAD_BYTES = 8 };

/* One task per message, as a scientist would write it: an id plus a little
 * payload. Sent as raw bytes; all ranks run the same binary on one machine. */
struct task_msg {
    int64_t id;
    unsigned char payload[PAYLOAD_BYTES];
};

struct options {
    long long ntasks;
    long long work_ns;
    long long pipeline;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The "task". Spinning against the clock is self-calibrating, so no loop
 * count has to be tuned per machine; with work_ns == 0 it is an empty call. */
static void run_task(struct task_msg *t, long long work_ns)
{
    if (work_ns > 0) {
        int64_t end = now_ns() + work_ns;
        while (now_ns() < end) {
        }
    }
    t->payload[0] ^= 0x5a; /* touch the payload so the result differs */
}

static int parse_ll(const char *s, long long min, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min)
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 on success, -1 on a bad command line (caller prints usage). */
static int parse_args(int argc, char **argv, struct options *o)
{
    o->ntasks = 200000;
    o->work_ns = 0;
    o->pipeline = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long *dst, min;
        if (strcmp(a, "-n") == 0) {
            dst = &o->ntasks, min = 1;
        } else if (strcmp(a, "--work-ns") == 0) {
            dst = &o->work_ns, min = 0;
        } else if (strcmp(a, "--pipeline") == 0) {
            dst = &o->pipeline, min = 1;
        } else {
            return -1;
        }
        if (i + 1 >= argc || parse_ll(argv[++i], min, dst) != 0)
            return -1;
    }
    return 0;
}

static void send_task(int64_t id, int dest)
{
    struct task_msg t;
    t.id = id;
    for (int i = 0; i < PAYLOAD_BYTES; i++)
        t.payload[i] = (unsigned char)(id + i);
    MPI_Send(&t, sizeof t, MPI_BYTE, dest, TAG_TASK, MPI_COMM_WORLD);
}

static void worker(long long work_ns)
{
    /* A volatile function pointer keeps the compiler from inlining the empty
     * task away, so every task costs at least a real call, like user code. */
    void (*volatile run)(struct task_msg *, long long) = run_task;
    struct task_msg t;
    MPI_Status st;
    for (;;) {
        MPI_Recv(&t, sizeof t, MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        if (st.MPI_TAG == TAG_STOP)
            return;
        run(&t, work_ns);
        MPI_Send(&t, sizeof t, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    }
}

/* Self-scheduling: each worker holds `pipeline` outstanding tasks and gets a
 * new one the moment a result comes back. With pipeline > 1 the master may
 * MPI_Send to a worker that is itself in MPI_Send; that relies on these
 * 16-byte messages going eagerly, which every MPI implementation does. */
static int master(const struct options *o, int size)
{
    const int nworkers = size - 1;
    const int64_t n = o->ntasks;
    unsigned char *seen = calloc((size_t)(n / 8 + 1), 1);
    if (seen == NULL) {
        fprintf(stderr, "mpi_baseline: cannot allocate bitmap for %lld tasks\n", o->ntasks);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int64_t next = 0, received = 0;
    struct task_msg r;
    MPI_Status st;

    double t0 = MPI_Wtime();
    /* Deal round-robin so that every worker has work before any gets a second task. */
    for (long long k = 0; k < o->pipeline && next < n; k++)
        for (int w = 1; w <= nworkers && next < n; w++)
            send_task(next++, w);
    while (received < n) {
        MPI_Recv(&r, sizeof r, MPI_BYTE, MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &st);
        if (r.id < 0 || r.id >= n || (seen[r.id / 8] & (1u << (r.id % 8)))) {
            fprintf(stderr, "mpi_baseline: task id %lld out of range or returned twice\n",
                    (long long)r.id);
            MPI_Abort(MPI_COMM_WORLD, 1); /* workers are blocked; only abort frees them */
        }
        seen[r.id / 8] |= (unsigned char)(1u << (r.id % 8));
        received++;
        if (next < n)
            send_task(next++, st.MPI_SOURCE);
    }
    double elapsed = MPI_Wtime() - t0;

    for (int w = 1; w <= nworkers; w++)
        MPI_Send(NULL, 0, MPI_BYTE, w, TAG_STOP, MPI_COMM_WORLD);

    /* Counting plus the duplicate check already implies full coverage; the
     * final scan makes the "exactly once" property explicit and cheap. */
    int64_t missing = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(seen[i / 8] & (1u << (i % 8))))
            missing++;
    free(seen);
    if (missing != 0) {
        fprintf(stderr, "mpi_baseline: %lld task ids never came back\n", (long long)missing);
        return 1;
    }

    /* Name carries world size and pipeline so several runs can share one log;
     * work_ns only appears when set, keeping the default names short. */
    char name[96];
    int len = snprintf(name, sizeof name, "mpi_baseline_np%d_pipeline%lld", size, o->pipeline);
    if (o->work_ns > 0)
        snprintf(name + len, sizeof name - (size_t)len, "_work%lldns", o->work_ns);
    printf("%s_rate %.0f tasks/s\n", name, elapsed > 0 ? (double)n / elapsed : 0.0);
    printf("%s_tasks %lld tasks\n", name, o->ntasks);
    printf("%s_seconds %.6f s\n", name, elapsed);
    return 0;
}

int main(int argc, char **argv)
{
    int rank, size, rc = 0;
    struct options o;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    /* Every rank parses the same argv, so all agree on exiting without talking. */
    if (parse_args(argc, argv, &o) != 0) {
        if (rank == 0)
            fprintf(stderr, "usage: %s [-n NTASKS>=1] [--work-ns N>=0] [--pipeline K>=1]\n",
                    argv[0]);
        MPI_Finalize();
        return 2;
    }
    if (size < 2) {
        fprintf(stderr, "mpi_baseline: needs at least 2 ranks (1 master + workers)\n");
        MPI_Finalize();
        return 2;
    }

    /* Start the clock only once every worker is up and waiting. */
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        rc = master(&o, size);
    else
        worker(o.work_ns);

    MPI_Finalize();
    return rc;
}
