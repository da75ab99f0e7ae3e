/* Library trace (tf_config.trace_path): runs a DAG with retries, failures and a child task; tests/cli/trace.sh checks the file. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "harness.h"
#include "taskfarm.h"

/*
 * Usage: test_trace TRACE.json. Checks what C can (return codes, that the
 * file is a closed document after each tf_run, TF_EIO for a path that
 * cannot be created) and prints, on rank 0, one line
 *   expect {"NAME": attempts, ...}
 * with the span names and attempt counts the trace must hold, which
 * tests/cli/trace.sh compares with the file using python3's json module.
 */

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
static void case_unwritable(mt_suite *s)
{
    int rank = s->rank;
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.log_level = -1; /* the error is expected: keep the output clean */
    if (rank == 0)
        cfg.trace_path = "/nonexistent-dir/trace.json";
    tf_runtime *rt;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    EXPECT_RC(s, rc, 0); /* tf_init */
    tf_fn_id fn;
    tf_register(rt, "work", work, NULL, &fn);
    if (rank == 0) {
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        tf_task_id id;
        tf_submit(rt, &d, &id);
    }
    rc = tf_run(rt);
    EXPECT_RC(s, rc, TF_EIO); /* tf_run with an unwritable trace */
    tf_finalize(&rt);
}

/*
 * Two runs of one runtime into the trace at mt_suite.user: retries, a
 * failure, a task skipped behind it, a child task; then the expect line.
 */
static void case_traced(mt_suite *s)
{
    const char *path = s->user;
    int rank = s->rank;
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = 2;
    cfg.retries = 1;
    if (rank == 0)
        cfg.trace_path = path;
    tf_runtime *rt;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    EXPECT_RC(s, rc, 0); /* tf_init */
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
                EXPECT_RC(s, rc, 0); /* tf_submit */
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
        EXPECT_RC(s, rc, 0); /* tf_submit (dependent) */
    }
    rc = tf_run(rt);
    EXPECT_RC(s, rc, TF_EFAILED); /* first tf_run */
    if (rank == 0) {
        EXPECT_MSG(s, closed(path), "trace closed after the first run");
        const void *out;
        size_t len;
        tf_task_id child;
        rc = tf_task_output(rt, parent_id, &out, &len);
        if (EXPECT_RC(s, rc, 0)) /* parent output */
            EXPECT_EQ_U(s, len, sizeof child);
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
    EXPECT_RC(s, rc, 0); /* second tf_run */
    rc = tf_finalize(&rt);
    EXPECT_RC(s, rc, 0); /* tf_finalize */
    if (rank == 0) {
        EXPECT_MSG(s, closed(path), "trace closed after tf_finalize");
        printf("expect {");
        for (int i = 0; i < n; i++)
            printf("%s\"%s\": %d", i ? ", " : "", names[i], attempts[i]);
        printf("}\n");
    }
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    static mt_suite s;
    mt_init(&s, "test_trace");
    if (argc != 2) {
        if (s.rank == 0)
            fprintf(stderr, "usage: test_trace TRACE.json\n");
        MPI_Finalize();
        return 2;
    }
    s.user = argv[1];
    mt_run_case(&s, "an unwritable trace: TF_EIO on every rank",
                case_unwritable);
    mt_run_case(&s, "two runs traced: retries, a failure, a child task",
                case_traced);
    int rc = mt_finish(&s);
    MPI_Finalize();
    return rc;
}
