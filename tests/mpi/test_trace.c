/* Library trace (tf_config.trace_path): runs a DAG with retries, failures and a child task; tests/cli/trace.sh checks the file. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "taskfarm.h"

/*
 * Usage: test_trace TRACE.json. Checks what C can (return codes, that the
 * file is a closed document after each tf_run, TF_EIO for a path that
 * cannot be created) and prints, on rank 0, one line
 *   expect {"NAME": attempts, ...}
 * with the span names and attempt counts the trace must hold, which
 * tests/cli/trace.sh compares with the file using python3's json module.
 */

static int failures;

#define EXPECT(cond, what, a, b)                                               \
    ((cond) ? 1                                                                \
            : (printf("%s:%d: check failed: %s: %lld vs %lld\n", __FILE__,     \
                      __LINE__, (what), (long long)(a), (long long)(b)),       \
               fflush(stdout), failures++, 0))

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int work(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)in, (void)len, (void)user;
    nap_ms(2);
    return 0;
}

/* Fails its first attempt. */
static int flaky(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in, (void)len, (void)user;
    nap_ms(1);
    return tf_task_attempt(ctx) == 1 ? 3 : 0;
}

static int broken(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)in, (void)len, (void)user;
    return 7;
}

/* Submits one `work` child and outputs its id. */
static int parent(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in, (void)len;
    tf_task_desc d;
    tf_task_desc_init(&d, *(const tf_fn_id *)user);
    tf_task_id child;
    int rc = tf_task_submit(ctx, &d, &child);
    return rc ? rc : tf_task_set_output(ctx, &child, sizeof child);
}

/* Does the file end with the document's closing "]}"? */
static bool closed(const char *path)
{
    FILE *f = fopen(path, "rb");
    char tail[8] = "";
    bool ok = f && fseek(f, -4, SEEK_END) == 0 && fread(tail, 1, 4, f) == 4 &&
              !memcmp(tail, "\n]}\n", 4);
    if (f)
        fclose(f);
    return ok;
}

/* A trace that cannot be created fails tf_run on every rank alike. */
static void unwritable(int rank)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.log_level = -1; /* the error is expected: keep the output clean */
    if (rank == 0)
        cfg.trace_path = "/nonexistent-dir/trace.json";
    tf_runtime *rt;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    EXPECT(rc == 0, "tf_init", rc, 0);
    tf_fn_id fn;
    tf_register(rt, "work", work, NULL, &fn);
    if (rank == 0) {
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        tf_task_id id;
        tf_submit(rt, &d, &id);
    }
    rc = tf_run(rt);
    EXPECT(rc == TF_EIO, "tf_run with an unwritable trace", rc, TF_EIO);
    tf_finalize(&rt);
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2) {
        if (rank == 0)
            fprintf(stderr, "usage: test_trace TRACE.json\n");
        MPI_Finalize();
        return 2;
    }
    unwritable(rank);

    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = 2;
    cfg.retries = 1;
    if (rank == 0)
        cfg.trace_path = argv[1];
    tf_runtime *rt;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    EXPECT(rc == 0, "tf_init", rc, 0);
    tf_fn_id f_work, f_flaky, f_broken, f_parent;
    tf_register(rt, "work", work, NULL, &f_work);
    tf_register(rt, "flaky", flaky, NULL, &f_flaky);
    tf_register(rt, "broken", broken, NULL, &f_broken);
    tf_register(rt, "parent", parent, &f_work, &f_parent);

    /* name -> attempts, for the expect line */
    enum { MAXT = 64 };
    char names[MAXT][64];
    int attempts[MAXT], n = 0;
    tf_task_id parent_id = 0;
    if (rank == 0) {
        tf_task_desc d;
        tf_task_id id, bad = 0;
        const struct {
            tf_fn_id fn;
            const char *name;
            int count, tries;
        } kinds[] = {
            {f_work, "work", 30, 1},
            {f_flaky, "flaky", 5, 2},
            {f_broken, "broken", 1, 2},
            {f_parent, "parent", 1, 1},
        };
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
            for (int i = 0; i < kinds[k].count; i++) {
                tf_task_desc_init(&d, kinds[k].fn);
                rc = tf_submit(rt, &d, &id);
                EXPECT(rc == 0, "tf_submit", rc, 0);
                snprintf(names[n], sizeof names[n], "%llu %s",
                         (unsigned long long)id, kinds[k].name);
                attempts[n++] = kinds[k].tries;
                if (kinds[k].fn == f_broken)
                    bad = id;
                if (kinds[k].fn == f_parent)
                    parent_id = id;
            }
        /* Skipped behind the broken task: never runs, no span. */
        tf_task_desc_init(&d, f_work);
        d.deps = &bad;
        d.ndeps = 1;
        rc = tf_submit(rt, &d, &id);
        EXPECT(rc == 0, "tf_submit (dependent)", rc, 0);
    }
    rc = tf_run(rt);
    EXPECT(rc == TF_EFAILED, "first tf_run", rc, TF_EFAILED);
    if (rank == 0) {
        EXPECT(closed(argv[1]), "trace closed after the first run", 0, 1);
        const void *out;
        size_t len;
        tf_task_id child;
        rc = tf_task_output(rt, parent_id, &out, &len);
        EXPECT(rc == 0 && len == sizeof child, "parent output", len,
               sizeof child);
        if (!rc && len == sizeof child) {
            memcpy(&child, out, sizeof child);
            snprintf(names[n], sizeof names[n], "%llu work",
                     (unsigned long long)child);
            attempts[n++] = 1;
        }
        /* A second run appends to the same trace. */
        for (int i = 0; i < 10; i++) {
            tf_task_desc d;
            tf_task_desc_init(&d, f_work);
            tf_task_id id;
            tf_submit(rt, &d, &id);
            snprintf(names[n], sizeof names[n], "%llu work",
                     (unsigned long long)id);
            attempts[n++] = 1;
        }
    }
    rc = tf_run(rt);
    EXPECT(rc == 0, "second tf_run", rc, 0);
    rc = tf_finalize(&rt);
    EXPECT(rc == 0, "tf_finalize", rc, 0);
    if (rank == 0) {
        EXPECT(closed(argv[1]), "trace closed after tf_finalize", 0, 1);
        printf("expect {");
        for (int i = 0; i < n; i++)
            printf("%s\"%s\": %d", i ? ", " : "", names[i], attempts[i]);
        printf("}\n");
    }
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return all != 0;
}
