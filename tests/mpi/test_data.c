/* The data path under mpirun: outputs worker to worker, parts, pins, placement, lifetime, alignment, stealing with inputs. */
#include <inttypes.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "harness.h"

/*
 * Every task checks that each input it reads is aligned to max_align_t and
 * holds what its producer wrote: a block of n u64 words, word i equal to
 * (seed * 1000003 + i). Blocks are big (over the inline limit) unless the
 * case says otherwise, so they travel worker to worker.
 */
#define WORDS 4096 /* 32 KiB per block */

typedef struct blk_in {
    uint64_t seed;  /* the block this task writes */
    uint32_t words; /* its length */
    uint32_t nparts;
} blk_in;

static uint64_t word(uint64_t seed, uint32_t i) { return seed * 1000003u + i; }

static bool aligned(const void *p)
{
    return ((uintptr_t)p % alignof(max_align_t)) == 0;
}

/* Each input i is a block: its seed in the first word. */
static int check_inputs(tf_task_ctx *ctx, uint64_t *sum)
{
    *sum = 0;
    for (size_t i = 0; i < tf_task_ndeps(ctx); i++) {
        const void *buf;
        size_t len;
        if (tf_task_dep_output(ctx, i, &buf, &len))
            return 90;
        if (!len)
            continue;
        if (!aligned(buf))
            return 91;
        const uint64_t *w = buf;
        size_t n = len / 8;
        uint64_t seed = (w[0]) / 1000003u;
        for (size_t k = 0; k < n; k++)
            if (w[k] != word(seed, (uint32_t)k))
                return 92;
        *sum += seed;
    }
    return 0;
}

/*
 * Reads its inputs, then writes part p (p < nparts) as a block of seed
 * seed + p with words >> p words, straight into the runtime's buffer.
 */
static int blk_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)user;
    blk_in a;
    if (len != sizeof a || !aligned(in))
        return 93;
    memcpy(&a, in, sizeof a);
    uint64_t sum;
    int rc = check_inputs(ctx, &sum);
    if (rc)
        return rc;
    for (uint32_t p = 0; p < a.nparts; p++) {
        uint64_t *w;
        uint32_t n = a.words >> p;
        if (tf_task_output_alloc(ctx, p, (size_t)n * 8, (void **)&w))
            return 94;
        if (!aligned(w))
            return 95;
        for (uint32_t k = 0; k < n; k++)
            w[k] = word(a.seed + p, k);
    }
    return 0;
}

static tf_task_id submit_blk(mt_suite *s, tf_runtime *rt, tf_fn_id fn,
                             uint64_t seed, uint32_t words, uint32_t nparts,
                             const tf_task_id *deps, const uint32_t *parts,
                             size_t ndeps, int rank, unsigned flags)
{
    blk_in a = {seed, words, nparts};
    tf_task_desc d;
    tf_task_desc_init(&d, fn);
    d.input = &a;
    d.input_len = sizeof a;
    d.deps = deps;
    d.ndeps = ndeps;
    d.dep_parts = parts;
    d.rank = rank;
    d.flags = flags;
    tf_task_id id = UINT64_MAX;
    EXPECT_RC(s, tf_submit(rt, &d, &id), 0);
    return id;
}

static bool farm(mt_suite *s, tf_runtime **rt, tf_fn_id *fn, long inline_max)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.log_fn = mt_log;
    cfg.log_user = s;
    cfg.inline_max = inline_max;
    *rt = NULL;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, rt);
    EXPECT_RC(s, rc, 0);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (worst)
        return false;
    EXPECT_RC(s, tf_register(*rt, "blk", blk_task, NULL, fn), 0);
    return true;
}

/* Output part `part` of id is a block of `words` words of seed `seed`. */
static void expect_block(mt_suite *s, const tf_runtime *rt, tf_task_id id,
                         unsigned part, uint64_t seed, uint32_t words)
{
    const void *buf;
    size_t len;
    if (!EXPECT_RC(s, tf_task_output_part(rt, id, part, &buf, &len), 0) ||
        !EXPECT_EQ_U(s, len, (size_t)words * 8))
        return;
    EXPECT_TRUE(s, aligned(buf));
    const uint64_t *w = buf;
    bool same = true;
    for (uint32_t k = 0; k < words; k++)
        same &= w[k] == word(seed, k);
    EXPECT_TRUE(s, same);
}

static void expect_done(mt_suite *s, const tf_runtime *rt, tf_task_id id)
{
    tf_task_info info;
    EXPECT_RC(s, tf_task_info_get(rt, id, &info), 0);
    if (!EXPECT_STATE(s, info, TF_TASK_DONE))
        EXPECT_MSG(s, false, "task %" PRIu64 " status %d", id, info.status);
}

/* Each rank's stats, summed over the workers into *w (rank 0: its own). */
static void worker_stats(tf_runtime *rt, tf_stats *own, uint64_t w[3])
{
    tf_get_stats(rt, own);
    uint64_t mine[3] = {0, 0, 0}, sum[3];
    if (tf_rank(rt) != 0) {
        mine[0] = own->fetches;
        mine[1] = own->fetched_bytes;
        mine[2] = own->data_bytes;
    }
    MPI_Allreduce(mine, sum, 3, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    memcpy(w, sum, sizeof sum);
}

/*
 * A ring of pinned blocks, 6 steps: block b of step k reads its own block
 * and both neighbours' (from the other worker when there are two). No
 * payload byte passes rank 0 but the results (the last step, kept) and
 * no block outlives its readers.
 */
static void case_ring(mt_suite *s)
{
    tf_runtime *rt;
    tf_fn_id fn;
    if (!farm(s, &rt, &fn, -1))
        return;
    int nw = s->size > 1 ? s->size - 1 : 1;
    enum { B = 4, K = 6 };
    tf_task_id id[K][B];
    if (s->rank == 0) {
        for (int k = 0; k < K; k++)
            for (int b = 0; b < B; b++) {
                tf_task_id deps[3];
                size_t nd = 0;
                if (k > 0) {
                    deps[nd++] = id[k - 1][b];
                    deps[nd++] = id[k - 1][(b + B - 1) % B];
                    deps[nd++] = id[k - 1][(b + 1) % B];
                }
                id[k][b] = submit_blk(s, rt, fn, (uint64_t)(k * B + b) * 4,
                                      WORDS, 1, deps, NULL, nd,
                                      s->size > 1 ? 1 + b % nw : -1, 0);
            }
    }
    EXPECT_RC(s, tf_run(rt), 0);
    tf_stats st;
    uint64_t w[3];
    worker_stats(rt, &st, w);
    if (s->rank == 0) {
        for (int k = 0; k < K; k++)
            for (int b = 0; b < B; b++) {
                expect_done(s, rt, id[k][b]);
                tf_task_info info;
                tf_task_info_get(rt, id[k][b], &info);
                if (s->size > 1) /* pinned */
                    EXPECT_EQ(s, info.rank, 1 + b % nw);
            }
        for (int b = 0; b < B; b++)
            expect_block(s, rt, id[K - 1][b], 0, (uint64_t)((K - 1) * B + b) * 4,
                         WORDS);
        /* Intermediate blocks are gone once read. */
        const void *buf;
        size_t len;
        EXPECT_RC(s, tf_task_output(rt, id[0][0], &buf, &len), TF_ENOENT);
        if (s->size > 1) {
            /* Only the results came to rank 0. */
            EXPECT_EQ_U(s, st.rank0_payload_bytes, (uint64_t)B * WORDS * 8);
            if (nw > 1)
                EXPECT_TRUE(s, w[0] > 0); /* neighbours fetched */
            EXPECT_EQ_U(s, w[1], w[0] * WORDS * 8);
            /* Frees went out with the end of the run. */
            EXPECT_EQ_U(s, w[2], 0);
        }
        EXPECT_TRUE(s, st.data_bytes >= (uint64_t)B * WORDS * 8);
    }
    EXPECT_RC(s, tf_finalize(&rt), 0);
}

/*
 * Parts: one producer writes 3 parts of different sizes; readers name the
 * part they read; a task pinned away from the producer fetches its part
 * only (the fetched bytes say so).
 */
static void case_parts(mt_suite *s)
{
    tf_runtime *rt;
    tf_fn_id fn;
    if (!farm(s, &rt, &fn, 0)) /* every part travels worker to worker */
        return;
    tf_task_id prod = 0, rd[3] = {0, 0, 0}, both = 0;
    if (s->rank == 0) {
        prod = submit_blk(s, rt, fn, 100, WORDS, 3, NULL, NULL, 0,
                          s->size > 1 ? 1 : -1, 0);
        for (uint32_t p = 0; p < 3; p++)
            rd[p] = submit_blk(s, rt, fn, 200 + p, 8, 1, &prod, &p, 1,
                               s->size > 2 ? 2 : -1, 0);
        tf_task_id two[2] = {prod, prod};
        uint32_t pp[2] = {2, 0};
        both = submit_blk(s, rt, fn, 300, 8, 1, two, pp, 2, -1, 0);
    }
    EXPECT_RC(s, tf_run(rt), 0);
    tf_stats st;
    uint64_t w[3];
    worker_stats(rt, &st, w);
    if (s->rank == 0) {
        expect_done(s, rt, prod);
        for (int p = 0; p < 3; p++) {
            expect_done(s, rt, rd[p]);
            expect_block(s, rt, rd[p], 0, 200 + (uint64_t)p, 8);
        }
        expect_done(s, rt, both);
        if (s->size > 2) {
            /* Rank 2 fetched parts 0, 1 and 2 once each (and maybe the
               reader of two parts did too): never a part twice there. */
            uint64_t all = (uint64_t)(WORDS + WORDS / 2 + WORDS / 4) * 8;
            EXPECT_TRUE(s, w[1] >= all);
            EXPECT_LE_U(s, w[1], 2 * all);
            EXPECT_EQ_U(s, st.rank0_payload_bytes, 4 * 8 * 8);
        }
    }
    EXPECT_RC(s, tf_finalize(&rt), 0);
}

/*
 * Lifetime across runs: a kept output and a result stay on rank 0 and a
 * later run's task reads them; a freed one cannot be depended on; a
 * released result is gone. Placement: a task reading a big output held by
 * one worker runs there.
 */
static void case_lifetime(mt_suite *s)
{
    tf_runtime *rt;
    tf_fn_id fn;
    if (!farm(s, &rt, &fn, -1))
        return;
    tf_task_id a = 0, kept = 0, mid = 0, sink = 0;
    if (s->rank == 0) {
        a = submit_blk(s, rt, fn, 10, WORDS, 1, NULL, NULL, 0, -1, 0);
        kept = submit_blk(s, rt, fn, 20, WORDS, 1, &a, NULL, 1, -1,
                          TF_TASK_KEEP);
        mid = submit_blk(s, rt, fn, 30, WORDS, 1, &kept, NULL, 1, -1, 0);
        sink = submit_blk(s, rt, fn, 40, WORDS, 1, &mid, NULL, 1, -1, 0);
    }
    EXPECT_RC(s, tf_run(rt), 0);
    tf_task_id later = 0, late2 = 0;
    if (s->rank == 0) {
        const void *buf;
        size_t len;
        EXPECT_RC(s, tf_task_output(rt, a, &buf, &len), TF_ENOENT);
        EXPECT_RC(s, tf_task_output(rt, mid, &buf, &len), TF_ENOENT);
        expect_block(s, rt, kept, 0, 20, WORDS);
        expect_block(s, rt, sink, 0, 40, WORDS);
        /* A freed output cannot be read by a task submitted now. */
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        d.deps = &mid;
        d.ndeps = 1;
        tf_task_id x;
        EXPECT_RC(s, tf_submit(rt, &d, &x), TF_EDEP);
        tf_task_id ks[2] = {kept, sink};
        later = submit_blk(s, rt, fn, 50, 16, 1, ks, NULL, 2, -1, 0);
        /* Bad parts and ranks. */
        uint32_t bad = TF_PARTS_MAX;
        d.deps = &kept;
        d.dep_parts = &bad;
        EXPECT_RC(s, tf_submit(rt, &d, &x), TF_EINVAL);
        d.dep_parts = NULL;
        d.rank = s->size;
        EXPECT_RC(s, tf_submit(rt, &d, &x), TF_EINVAL);
    }
    EXPECT_RC(s, tf_run(rt), 0);
    if (s->rank == 0) {
        expect_done(s, rt, later);
        EXPECT_RC(s, tf_release(rt, sink), 0);
        const void *buf;
        size_t len;
        EXPECT_RC(s, tf_task_output(rt, sink, &buf, &len), TF_ENOENT);
        EXPECT_RC(s, tf_release(rt, sink), TF_ENOENT);
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        d.deps = &sink;
        d.ndeps = 1;
        tf_task_id x;
        EXPECT_RC(s, tf_submit(rt, &d, &x), TF_EDEP);
        /* Placement: a reader of a big output held by one worker. */
        late2 = submit_blk(s, rt, fn, 60, WORDS, 1, NULL, NULL, 0, -1, 0);
    }
    EXPECT_RC(s, tf_run(rt), 0);
    tf_task_id reader = 0;
    if (s->rank == 0) {
        /* late2 is a result (kept at rank 0) and no rank holds it: pin one. */
        reader = submit_blk(s, rt, fn, 70, 16, 1, &late2, NULL, 1, -1, 0);
    }
    EXPECT_RC(s, tf_run(rt), 0);
    if (s->rank == 0)
        expect_done(s, rt, reader);
    EXPECT_RC(s, tf_finalize(&rt), 0);
}

/*
 * Placement: producers of big blocks, each read by one task submitted in
 * the same run; the readers run where their input is (no fetch), since the
 * holder has room.
 */
static void case_placement(mt_suite *s)
{
    if (s->size < 3) {
        mt_skip(s, "needs two workers");
        return;
    }
    tf_runtime *rt;
    tf_fn_id fn;
    if (!farm(s, &rt, &fn, -1))
        return;
    enum { N = 8 };
    tf_task_id p[N], r[N];
    if (s->rank == 0)
        for (int i = 0; i < N; i++) {
            p[i] = submit_blk(s, rt, fn, 1000 + (uint64_t)i, WORDS, 1, NULL,
                              NULL, 0, 1 + i % (s->size - 1), 0);
            r[i] = submit_blk(s, rt, fn, 2000 + (uint64_t)i, 16, 1, &p[i],
                              NULL, 1, -1, 0);
        }
    EXPECT_RC(s, tf_run(rt), 0);
    tf_stats st;
    uint64_t w[3];
    worker_stats(rt, &st, w);
    if (s->rank == 0) {
        int same = 0;
        for (int i = 0; i < N; i++) {
            tf_task_info a, b;
            tf_task_info_get(rt, p[i], &a);
            tf_task_info_get(rt, r[i], &b);
            same += a.rank == b.rank;
        }
        /* Each reader ran by its input: parked behind it, or placed. */
        EXPECT_EQ(s, same, N);
        EXPECT_EQ_U(s, w[0], 0);
    }
    EXPECT_RC(s, tf_finalize(&rt), 0);
}

/*
 * Stealing with inputs: many readers of blocks held by rank 1, pinned
 * nowhere, all queued on rank 1 at first (placed by their input); the
 * other worker steals some and they carry their inputs along.
 */
static void case_steal(mt_suite *s)
{
    if (s->size < 3) {
        mt_skip(s, "needs two workers");
        return;
    }
    tf_runtime *rt;
    tf_fn_id fn;
    if (!farm(s, &rt, &fn, -1))
        return;
    enum { N = 64 };
    tf_task_id src = 0, r[N];
    if (s->rank == 0) {
        src = submit_blk(s, rt, fn, 5000, WORDS, 1, NULL, NULL, 0, 1,
                         TF_TASK_KEEP);
        for (int i = 0; i < N; i++)
            r[i] = submit_blk(s, rt, fn, 6000 + (uint64_t)i, WORDS, 1, &src,
                              NULL, 1, -1, 0);
    }
    EXPECT_RC(s, tf_run(rt), 0);
    if (s->rank == 0) {
        for (int i = 0; i < N; i++) {
            expect_done(s, rt, r[i]);
            expect_block(s, rt, r[i], 0, 6000 + (uint64_t)i, WORDS);
        }
        expect_block(s, rt, src, 0, 5000, WORDS);
    }
    EXPECT_RC(s, tf_finalize(&rt), 0);
}

/*
 * Counts every run of a block task on this rank, and fails the first
 * attempt of the task whose seed is the fail_seed, once per process.
 */
static int runs;
static uint64_t fail_seed = UINT64_MAX;

static int counting_task(tf_task_ctx *ctx, const void *in, size_t len,
                         void *user)
{
    blk_in a;
    if (len == sizeof a) {
        memcpy(&a, in, sizeof a);
        runs++;
        if (a.seed == fail_seed)
            return 7;
    }
    return blk_task(ctx, in, len, user);
}

/*
 * Resume with outputs that were not saved: a chain a -> b -> c of big
 * blocks, c failing in the first run. The state then holds a and b done
 * with their outputs only on workers (unsaved) and c failed. Resumed, c
 * runs again and reads b, so b and, through it, a run again; a second
 * resume finds c done and runs nothing. A result (c) is saved.
 */
static void case_resume_unsaved(mt_suite *s)
{
    static char dir[64];
    if (s->rank == 0) {
        strcpy(dir, "/tmp/tf_data_XXXXXX");
        if (!mkdtemp(dir))
            dir[0] = 0;
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!EXPECT_TRUE(s, dir[0] != 0))
        return;
    for (int round = 0; round < 3; round++) {
        tf_config cfg;
        tf_config_init(&cfg);
        cfg.log_fn = mt_log;
        cfg.log_user = s;
        cfg.checkpoint_dir = dir;
        cfg.resume = round > 0;
        cfg.retries = 0;
        tf_runtime *rt = NULL;
        int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt), worst = rc;
        MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (!EXPECT_RC(s, worst, 0))
            return;
        tf_fn_id fn;
        EXPECT_RC(s, tf_register(rt, "blk", counting_task, NULL, &fn), 0);
        fail_seed = round == 0 ? 303 : UINT64_MAX;
        runs = 0;
        tf_task_id a = 0, b = 0, c = 0;
        if (s->rank == 0) {
            a = submit_blk(s, rt, fn, 101, WORDS, 1, NULL, NULL, 0, -1, 0);
            b = submit_blk(s, rt, fn, 202, WORDS, 1, &a, NULL, 1, -1, 0);
            c = submit_blk(s, rt, fn, 303, WORDS, 1, &b, NULL, 1, -1, 0);
        }
        rc = tf_run(rt);
        EXPECT_RC(s, rc, round == 0 ? TF_EFAILED : 0);
        int all = 0;
        MPI_Allreduce(&runs, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        if (s->rank == 0) {
            /* 3 in the first run; then a, b and c again; then none. */
            EXPECT_EQ(s, all, round == 0 ? 3 : round == 1 ? 3 : 0);
            if (round > 0) {
                expect_done(s, rt, c);
                expect_block(s, rt, c, 0, 303, WORDS);
            }
        }
        EXPECT_RC(s, tf_finalize(&rt), 0);
    }
    if (s->rank == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            EXPECT_MSG(s, false, "could not remove %s", dir);
    }
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    static mt_suite s;
    mt_init(&s, "test_data");
    static const struct {
        const char *name;
        mt_case_fn fn;
    } cases[] = {
        {"a ring of pinned blocks, worker to worker", case_ring},
        {"b output parts", case_parts},
        {"c lifetime across runs, kept and released", case_lifetime},
        {"d readers placed by their input", case_placement},
        {"e stolen tasks carry their inputs", case_steal},
        {"f resume remakes outputs that were not saved", case_resume_unsaved},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        mt_run_case(&s, cases[i].name, cases[i].fn);
    int rc = mt_finish(&s);
    MPI_Finalize();
    return rc;
}
