/* MPI integration tests: each case runs its own farm and checks it on rank 0 */
#include <inttypes.h>
#include <stdatomic.h>
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
 * Checks and verdicts come from the harness (harness.h): any rank may check
 * something (its own tf_run status, its half of a split communicator), and
 * every rank agrees on each case's verdict.
 *
 * Task functions never touch memory shared between ranks: what the tests
 * learn about a task they learn from its output and from tf_task_info on
 * rank 0. The only per-process state a task may touch is the rank_ctx its
 * function was registered with, and the suite reads it only through MPI.
 */

/* The suite's seed (mt_suite.user): every case's generator derives from it. */
static uint64_t seed_of(const mt_suite *s)
{
    return *(const uint64_t *)s->user;
}

/* ---- small helpers ---- */

/* Tests may give up on memory; the library may not. */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "test_runtime: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    return p;
}

/* splitmix64: tiny, seedable, and the same on every rank. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rng_below(rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* CLOCK_REALTIME, the clock tf_task_info's times use (all ranks on one host).
 */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static uint64_t get_u64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t get_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t fnv1a64(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/*
 * What a task function may know about the process it runs in. `runs`
 * counts executions on this rank; it is atomic because with slots > 1
 * several task threads bump it at once.
 */
typedef struct rank_ctx {
    int world_rank;
    atomic_ulong runs;
    int slow_rank;    /* l_uneven: the rank where tasks take slow_ns */
    long slow_ns;
} rank_ctx;

static void rank_ctx_init(rank_ctx *rc, int world_rank)
{
    rc->world_rank = world_rank;
    atomic_init(&rc->runs, 0);
    rc->slow_rank = -1;
    rc->slow_ns = 0;
}

/*
 * tf_init on every rank of comm. A rank whose tf_init failed cannot take
 * part in the collectives that follow, so the verdict is agreed first and
 * the case gives up everywhere (the runtimes that were made are leaked:
 * tf_finalize is collective and would wait for the missing rank).
 */
static bool farm_init(mt_suite *s, MPI_Comm comm, const tf_config *cfg,
                      tf_runtime **rt)
{
    *rt = NULL;
    tf_config keep;
    if (!cfg) {
        /* These cases read every task's output afterwards. */
        tf_config_init(&keep);
        keep.keep_outputs = 1;
        cfg = &keep;
    }
    int rc = tf_init(comm, cfg, rt);
    EXPECT_RC(s, rc, 0);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, comm);
    return worst == 0;
}

static void farm_finalize(mt_suite *s, tf_runtime **rt)
{
    EXPECT_RC(s, tf_finalize(rt), 0);
    EXPECT_TRUE(s, *rt == NULL);
}

static tf_fn_id reg(mt_suite *s, tf_runtime *rt, const char *name,
                    tf_task_fn fn, void *user)
{
    tf_fn_id id = 0;
    EXPECT_RC(s, tf_register(rt, name, fn, user, &id), 0);
    return id;
}

/* Submit on rank 0; a failed submission fails the case and yields UINT64_MAX.
 */
static tf_task_id submit(mt_suite *s, tf_runtime *rt, tf_fn_id fn, int32_t prio,
                         const tf_task_id *deps, size_t ndeps,
                         const void *input, size_t input_len)
{
    tf_task_desc d;
    tf_task_desc_init(&d, fn);
    d.prio = prio;
    d.deps = deps;
    d.ndeps = ndeps;
    d.input = input;
    d.input_len = input_len;
    tf_task_id id = UINT64_MAX;
    EXPECT_RC(s, tf_submit(rt, &d, &id), 0);
    return id;
}

static tf_task_info info_of(mt_suite *s, const tf_runtime *rt, tf_task_id id)
{
    tf_task_info info;
    memset(&info, 0, sizeof info);
    info.state = (tf_task_state)-1;
    EXPECT_RC(s, tf_task_info_get(rt, id, &info), 0);
    return info;
}

/* The task's output, or NULL/0 when the query itself failed (a failed check).
 */
static const uint8_t *output_of(mt_suite *s, const tf_runtime *rt,
                                tf_task_id id, size_t *len)
{
    const void *buf = NULL;
    *len = 0;
    if (!EXPECT_RC(s, tf_task_output(rt, id, &buf, len), 0))
        *len = 0;
    return buf;
}

/* ---- a. every task runs exactly once ---- */

typedef struct a_out {
    uint64_t id, echo;
    int32_t attempt, rank;
} a_out;

static int a_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    rank_ctx *rc = user;
    atomic_fetch_add(&rc->runs, 1);
    a_out o;
    memset(&o, 0, sizeof o);
    if (len != sizeof o.echo)
        return 2;
    o.echo = get_u64(in);
    o.id = tf_task_self(ctx);
    o.attempt = tf_task_attempt(ctx);
    o.rank = tf_task_rank(ctx);
    return tf_task_set_output(ctx, &o, sizeof o) ? 3 : 0;
}

static void exactly_once(mt_suite *s, const tf_config *cfg)
{
    enum { N = 2000 };
    rank_ctx rctx;
    rank_ctx_init(&rctx, s->rank);
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, cfg, &rt))
        return;
    tf_fn_id fn = reg(s, rt, "a_task", a_task, &rctx);
    tf_task_id *ids = NULL;
    if (s->rank == 0) {
        ids = xcalloc(N, sizeof *ids);
        for (uint64_t i = 0; i < N; i++)
            ids[i] = submit(s, rt, fn, 0, NULL, 0, &i, sizeof i);
    }
    EXPECT_RC(s, tf_run(rt), 0);

    /* Executions as the ranks counted them, against the outputs' ranks. */
    unsigned long mine = atomic_load(&rctx.runs);
    unsigned long *ran =
        s->rank == 0 ? xcalloc((size_t)s->size, sizeof *ran) : NULL;
    MPI_Gather(&mine, 1, MPI_UNSIGNED_LONG, ran, 1, MPI_UNSIGNED_LONG, 0,
               MPI_COMM_WORLD);
    if (s->rank == 0) {
        unsigned long *seen = xcalloc((size_t)s->size, sizeof *seen);
        for (uint64_t i = 0; i < N; i++) {
            tf_task_info info = info_of(s, rt, ids[i]);
            EXPECT_STATE(s, info, TF_TASK_DONE);
            EXPECT_EQ(s, info.attempts, 1);
            size_t len;
            const uint8_t *p = output_of(s, rt, ids[i], &len);
            if (!EXPECT_EQ_U(s, len, sizeof(a_out)))
                continue;
            a_out o;
            memcpy(&o, p, sizeof o);
            EXPECT_EQ_U(s, o.id, ids[i]);
            EXPECT_EQ_U(s, o.echo, i);
            EXPECT_EQ(s, o.attempt, 1);
            EXPECT_EQ(s, o.rank, info.rank);
            if (EXPECT_TRUE(s, o.rank >= 0 && o.rank < s->size))
                seen[o.rank]++;
        }
        unsigned long total = 0;
        for (int r = 0; r < s->size; r++) {
            EXPECT_EQ_U(s, ran[r], seen[r]);
            total += ran[r];
        }
        EXPECT_EQ_U(s, total, N);
        /*
         * Rank 0 runs its share (the default), or, told to only schedule,
         * none; with 2,000 tasks each computing rank gets some.
         */
        bool idle0 = s->size > 1 && cfg && !cfg->rank0_runs_tasks;
        for (int r = 0; r < s->size; r++)
            EXPECT_MSG(s, idle0 && r == 0 ? ran[r] == 0 : ran[r] > 0,
                       "rank %d ran %lu tasks", r, (unsigned long)ran[r]);
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ_U(s, st.tasks, N);
        EXPECT_EQ_U(s, st.done, N);
        free(seen);
    }
    free(ran);
    free(ids);
    farm_finalize(s, &rt);
}

static void case_exactly_once(mt_suite *s)
{
    exactly_once(s, NULL);
}

static void case_exactly_once_rank0_idle(mt_suite *s)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.rank0_runs_tasks = 0;
    exactly_once(s, &cfg);
}

static void case_exactly_once_threads(mt_suite *s)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.slots = 3;
    cfg.prefetch = 2;
    exactly_once(s, &cfg);
}

/* ---- b. dependencies finish before their dependents start ---- */

/*
 * Input: self index, sleep in microseconds, ndeps, the dependency indexes.
 * The task checks it got its dependencies' outputs (their indexes) in the
 * order given, and fails with 4 if not.
 */
static int b_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)user;
    const uint8_t *p = in;
    if (len < 12)
        return 2;
    uint32_t self = get_u32(p), us = get_u32(p + 4), nd = get_u32(p + 8);
    if (len != 12 + 4 * (size_t)nd || tf_task_ndeps(ctx) != nd)
        return 3;
    for (uint32_t i = 0; i < nd; i++) {
        const void *b;
        size_t blen;
        if (tf_task_dep_output(ctx, i, &b, &blen) || blen != 4 ||
            get_u32(b) != get_u32(p + 12 + 4 * (size_t)i))
            return 4;
    }
    sleep_ns((long)us * 1000);
    return tf_task_set_output(ctx, &self, sizeof self) ? 5 : 0;
}

static void case_dep_order(mt_suite *s)
{
    enum { N = 500, MAXD = 4 };
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, NULL, &rt))
        return;
    tf_fn_id fn = reg(s, rt, "b_task", b_task, NULL);
    if (s->rank == 0) {
        rng r = {seed_of(s) ^ 0xb};
        uint32_t(*deps)[MAXD] = xcalloc(N, sizeof *deps);
        uint32_t *nd = xcalloc(N, sizeof *nd);
        tf_task_id *ids = xcalloc(N, sizeof *ids);
        for (uint32_t t = 0; t < N; t++) {
            uint32_t want = (uint32_t)rng_below(&r, MAXD + 1);
            if (want > t)
                want = t;
            while (nd[t] < want) {
                uint32_t d = (uint32_t)rng_below(&r, t);
                bool dup = false;
                for (uint32_t k = 0; k < nd[t]; k++)
                    dup |= deps[t][k] == d;
                if (!dup)
                    deps[t][nd[t]++] = d;
            }
            uint32_t in[3 + MAXD] = {t, 1 + (uint32_t)rng_below(&r, 1000),
                                     nd[t]};
            tf_task_id did[MAXD];
            for (uint32_t k = 0; k < nd[t]; k++) {
                in[3 + k] = deps[t][k];
                did[k] = ids[deps[t][k]];
            }
            ids[t] =
                submit(s, rt, fn, 0, did, nd[t], in, (3 + (size_t)nd[t]) * 4);
        }
        EXPECT_RC(s, tf_run(rt), 0);
        tf_task_info *info = xcalloc(N, sizeof *info);
        for (uint32_t t = 0; t < N; t++) {
            info[t] = info_of(s, rt, ids[t]);
            EXPECT_STATE(s, info[t], TF_TASK_DONE);
            EXPECT_NE(s, info[t].start_ns, 0);
            EXPECT_LE_U(s, info[t].start_ns, info[t].end_ns);
        }
        size_t edges = 0;
        for (uint32_t t = 0; t < N; t++)
            for (uint32_t k = 0; k < nd[t]; k++, edges++)
                EXPECT_LE_U(s, info[deps[t][k]].end_ns, info[t].start_ns);
        EXPECT_TRUE(s, edges > N); /* the graph really has edges */
        free(info);
        free(ids);
        free(nd);
        free(deps);
    } else {
        EXPECT_RC(s, tf_run(rt), 0);
    }
    farm_finalize(s, &rt);
}

/* ---- c. one worker takes tasks in priority order ---- */

static int c_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    (void)user;
    uint64_t t = now_ns();
    return tf_task_set_output(ctx, &t, sizeof t) ? 2 : 0;
}

typedef struct c_rec {
    uint64_t start;
    int32_t prio;
    uint32_t idx;
} c_rec;

static int c_by_start(const void *a, const void *b)
{
    const c_rec *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void case_priority(mt_suite *s)
{
    enum { N = 200 };
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.slots = 1;
    cfg.prefetch = 1;
    cfg.rank0_runs_tasks = 0; /* strict order needs a single worker */
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id fn = reg(s, rt, "c_task", c_task, NULL);
    /*
     * Dynamic dispatch over several workers interleaves their starts: one
     * rank alone, or one worker with rank 0 only scheduling.
     */
    bool strict = s->size <= 2;
    if (!strict)
        mt_skip(s, "strict order needs exactly one worker: skipped for np>2");
    if (s->rank == 0) {
        rng r = {seed_of(s) ^ 0xc};
        c_rec *rec = xcalloc(N, sizeof *rec);
        tf_task_id *ids = xcalloc(N, sizeof *ids);
        for (uint32_t i = 0; i < N; i++) {
            /* A narrow range, so that ties (submission order) are common. */
            rec[i].prio = (int32_t)rng_below(&r, 7) - 3;
            rec[i].idx = i;
            ids[i] = submit(s, rt, fn, rec[i].prio, NULL, 0, NULL, 0);
        }
        EXPECT_RC(s, tf_run(rt), 0);
        for (uint32_t i = 0; i < N; i++) {
            tf_task_info info = info_of(s, rt, ids[i]);
            EXPECT_STATE(s, info, TF_TASK_DONE);
            size_t len;
            const uint8_t *p = output_of(s, rt, ids[i], &len);
            if (EXPECT_EQ_U(s, len, 8))
                rec[i].start = get_u64(p);
        }
        if (strict) {
            qsort(rec, N, sizeof *rec, c_by_start);
            for (uint32_t i = 0; i + 1 < N; i++) {
                const c_rec *a = &rec[i], *b = &rec[i + 1];
                bool ok = a->prio > b->prio ||
                          (a->prio == b->prio && a->idx < b->idx);
                EXPECT_MSG(s, ok,
                           "consecutive starts in priority order: task %u "
                           "prio %d vs task %u prio %d",
                           a->idx, a->prio, b->idx, b->prio);
            }
        }
        free(ids);
        free(rec);
    } else {
        EXPECT_RC(s, tf_run(rt), 0);
    }
    farm_finalize(s, &rt);
}

/* ---- d. tasks that submit tasks: a tree reduction of sum(i*i) ---- */

/*
 * A node task gets {depth, fan, lo, hi, has_extra, extra}. At depth 1 it
 * submits `fan` leaves over equal parts of [lo, hi) and a combine task
 * depending on them (and on `extra`, a task rank 0 submitted, when
 * has_extra), and outputs 'C', the combine's id and the leaves' ids. Deeper
 * it submits `fan` nodes of depth-1 and outputs 'N' and their ids. A
 * combine's dependency is the end of one task, not of its subtree, so only
 * a depth-1 node can combine; rank 0 follows the ids to the values.
 */
typedef struct d_node {
    uint32_t depth, fan;
    uint64_t lo, hi;
    uint64_t has_extra, extra;
} d_node;

typedef struct d_fns {
    tf_fn_id node, leaf, combine, value;
} d_fns;

static int d_leaf(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)user;
    if (len != 16)
        return 2;
    uint64_t lo = get_u64(in), hi = get_u64((const uint8_t *)in + 8), sum = 0;
    for (uint64_t i = lo; i < hi; i++)
        sum += i * i;
    return tf_task_set_output(ctx, &sum, sizeof sum) ? 3 : 0;
}

/* Sums its deps' 8-byte outputs: leaves' partial sums, rank 0's value. */
static int d_combine(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    (void)user;
    uint64_t sum = 0;
    for (size_t i = 0; i < tf_task_ndeps(ctx); i++) {
        const void *b;
        size_t blen;
        if (tf_task_dep_output(ctx, i, &b, &blen) || blen != 8)
            return 2;
        sum += get_u64(b);
    }
    return tf_task_set_output(ctx, &sum, sizeof sum) ? 3 : 0;
}

/* Outputs its 8-byte input: a value rank 0 submitted, for a combine to use. */
static int d_value(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)user;
    return len == 8 && tf_task_set_output(ctx, in, len) == 0 ? 0 : 2;
}

static int d_node_fn(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const d_fns *f = user;
    d_node n;
    if (len != sizeof n)
        return 2;
    memcpy(&n, in, sizeof n);
    if (!n.depth || !n.fan || n.fan > 64)
        return 3;
    uint8_t out[1 + 8 * 66];
    size_t olen = 1;
    tf_task_id kids[65];
    for (uint32_t j = 0; j < n.fan; j++) {
        uint64_t a = n.lo + (n.hi - n.lo) * j / n.fan;
        uint64_t b = n.lo + (n.hi - n.lo) * (j + 1) / n.fan;
        tf_task_desc d;
        int rc;
        if (n.depth == 1) {
            uint64_t range[2] = {a, b};
            tf_task_desc_init(&d, f->leaf);
            d.input = range;
            d.input_len = sizeof range;
            rc = tf_task_submit(ctx, &d, &kids[j]);
        } else {
            d_node c = {n.depth - 1, n.fan, a, b, 0, 0};
            tf_task_desc_init(&d, f->node);
            d.input = &c;
            d.input_len = sizeof c;
            rc = tf_task_submit(ctx, &d, &kids[j]);
        }
        if (rc)
            return 4;
    }
    if (n.depth == 1) {
        size_t nk = n.fan;
        if (n.has_extra)
            kids[nk++] = n.extra;
        tf_task_desc d;
        tf_task_desc_init(&d, f->combine);
        d.deps = kids;
        d.ndeps = nk;
        tf_task_id comb;
        if (tf_task_submit(ctx, &d, &comb))
            return 5;
        out[0] = 'C';
        memcpy(out + olen, &comb, 8);
        olen += 8;
    } else {
        out[0] = 'N';
    }
    memcpy(out + olen, kids, 8 * (size_t)n.fan);
    olen += 8 * (size_t)n.fan;
    return tf_task_set_output(ctx, out, olen) ? 6 : 0;
}

/*
 * Rank 0: follow a node's output down to the combines, check every task on
 * the way is DONE, and add up the combines' values. Counts the tasks seen.
 */
static uint64_t d_resolve(mt_suite *s, const tf_runtime *rt, tf_task_id node,
                          uint32_t fan, uint64_t *ntasks)
{
    tf_task_info info = info_of(s, rt, node);
    (*ntasks)++;
    if (!EXPECT_STATE(s, info, TF_TASK_DONE))
        return 0;
    size_t len;
    const uint8_t *p = output_of(s, rt, node, &len);
    if (len && p[0] == 'N' && EXPECT_EQ_U(s, len, 1 + 8 * (size_t)fan)) {
        uint64_t sum = 0;
        for (uint32_t j = 0; j < fan; j++)
            sum +=
                d_resolve(s, rt, get_u64(p + 1 + 8 * (size_t)j), fan, ntasks);
        return sum;
    }
    if (!EXPECT_TRUE(s, len && p[0] == 'C') ||
        !EXPECT_EQ_U(s, len, 9 + 8 * (size_t)fan))
        return 0;
    for (uint32_t j = 0; j < fan; j++) {
        tf_task_info li = info_of(s, rt, get_u64(p + 9 + 8 * (size_t)j));
        EXPECT_STATE(s, li, TF_TASK_DONE);
        (*ntasks)++;
    }
    /* tf_run must not have returned before the combine finished. */
    tf_task_id comb = get_u64(p + 1);
    tf_task_info ci = info_of(s, rt, comb);
    (*ntasks)++;
    EXPECT_STATE(s, ci, TF_TASK_DONE);
    size_t clen;
    const uint8_t *c = output_of(s, rt, comb, &clen);
    return EXPECT_EQ_U(s, clen, 8) ? get_u64(c) : 0;
}

static void dynamic_tree(mt_suite *s, uint32_t depth, uint32_t fan)
{
    enum { N = 100000 };
    const uint64_t extra_value = 1000003;
    d_fns f = {0, 0, 0, 0};
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, NULL, &rt))
        return;
    /* Every rank registers the same names in the same order, so ids agree. */
    f.node = reg(s, rt, "d_node", d_node_fn, &f);
    f.leaf = reg(s, rt, "d_leaf", d_leaf, NULL);
    f.combine = reg(s, rt, "d_combine", d_combine, NULL);
    f.value = reg(s, rt, "d_value", d_value, NULL);
    if (s->rank != 0) {
        EXPECT_RC(s, tf_run(rt), 0);
        farm_finalize(s, &rt);
        return;
    }
    /*
     * The flat tree's combine also depends on a task rank 0 submitted, which
     * may finish before or after the combine is submitted.
     */
    bool extra = depth == 1;
    tf_task_id vid = 0;
    if (extra)
        vid = submit(s, rt, f.value, 0, NULL, 0, &extra_value,
                     sizeof extra_value);
    d_node root = {depth, fan, 0, N, extra, vid};
    tf_task_id rid = submit(s, rt, f.node, 0, NULL, 0, &root, sizeof root);
    EXPECT_RC(s, tf_run(rt), 0);

    uint64_t seen = 0;
    uint64_t got = d_resolve(s, rt, rid, fan, &seen);
    uint64_t want = (uint64_t)(N - 1) * N * (2 * (uint64_t)N - 1) / 6;
    if (extra) {
        want += extra_value;
        seen++;
    }
    EXPECT_EQ_U(s, got, want);
    /*
     * Nodes: 1 + fan + ... + fan^(depth-1); each depth-1 node adds fan
     * leaves and a combine.
     */
    uint64_t expect = 0, level = 1;
    for (uint32_t l = 0; l < depth; l++) {
        expect += level;
        if (l + 1 < depth)
            level *= fan;
    }
    expect += level * (fan + 1) + (extra ? 1 : 0);
    EXPECT_EQ_U(s, seen, expect);
    tf_stats st;
    EXPECT_RC(s, tf_get_stats(rt, &st), 0);
    EXPECT_EQ_U(s, st.tasks, expect);
    EXPECT_EQ_U(s, st.done, expect);
    EXPECT_EQ_U(s, st.failed + st.skipped, 0);
    farm_finalize(s, &rt);
}

/* 1 root, 8 leaves, 1 combine, plus rank 0's value task: 11. */
static void case_dynamic_flat(mt_suite *s)
{
    dynamic_tree(s, 1, 8);
}

/* 1 + 4 + 16 nodes, 16 * (4 leaves + 1 combine): 101. */
static void case_dynamic_tree(mt_suite *s)
{
    dynamic_tree(s, 3, 4);
}

/* A combine with 41 dependencies, more than fit the runtime's small arrays. */
static void case_dynamic_wide(mt_suite *s)
{
    dynamic_tree(s, 1, 40);
}

/* ---- e. outputs travel along edges intact ---- */

/* A leaf's bytes: 1 to 64 KiB, all drawn from a generator seeded by the input.
 */
static uint8_t *e_leaf_data(uint64_t seed, size_t *len)
{
    rng r = {seed};
    size_t n = 1 + (size_t)rng_below(&r, 65536);
    uint8_t *p = xcalloc(n, 1);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rng_next(&r);
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
    *len = n;
    return p;
}

/*
 * An inner node's output: its inputs XOR-ed together (each from offset 0,
 * as long as the longest), then for each input in order its FNV-1a 64 and
 * its length, so that a lost, altered or reordered input shows.
 */
static uint8_t *e_fold(const uint8_t *const *in, const size_t *lens, size_t k,
                       size_t *len)
{
    size_t maxl = 0;
    for (size_t i = 0; i < k; i++)
        if (lens[i] > maxl)
            maxl = lens[i];
    size_t n = maxl + 12 * k;
    uint8_t *p = xcalloc(n, 1);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < lens[i]; j++)
            p[j] ^= in[i][j];
    for (size_t i = 0; i < k; i++) {
        uint64_t h = fnv1a64(in[i], lens[i]);
        uint32_t l = (uint32_t)lens[i];
        memcpy(p + maxl + 12 * i, &h, 8);
        memcpy(p + maxl + 12 * i + 8, &l, 4);
    }
    *len = n;
    return p;
}

static int e_leaf(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)user;
    if (len != 8)
        return 2;
    size_t n;
    uint8_t *p = e_leaf_data(get_u64(in), &n);
    int rc = tf_task_set_output(ctx, p, n);
    free(p);
    return rc ? 3 : 0;
}

static int e_inner(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    (void)user;
    enum { MAXK = 16 };
    size_t k = tf_task_ndeps(ctx);
    if (!k || k > MAXK)
        return 2;
    const uint8_t *bufs[MAXK];
    size_t lens[MAXK];
    for (size_t i = 0; i < k; i++) {
        const void *b;
        if (tf_task_dep_output(ctx, i, &b, &lens[i]))
            return 3;
        bufs[i] = b;
    }
    size_t n;
    uint8_t *p = e_fold(bufs, lens, k, &n);
    int rc = tf_task_set_output(ctx, p, n);
    free(p);
    return rc ? 4 : 0;
}

static void case_outputs(mt_suite *s, const tf_config *cfg)
{
    enum { LEAVES = 256, FAN = 4 };
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, cfg, &rt))
        return;
    tf_fn_id fleaf = reg(s, rt, "e_leaf", e_leaf, NULL);
    tf_fn_id finner = reg(s, rt, "e_inner", e_inner, NULL);
    if (s->rank != 0) {
        EXPECT_RC(s, tf_run(rt), 0);
        farm_finalize(s, &rt);
        return;
    }
    /* Level by level: ids and the expected bytes, computed here serially. */
    tf_task_id ids[LEAVES];
    uint8_t *want[LEAVES];
    size_t wlen[LEAVES];
    for (size_t i = 0; i < LEAVES; i++) {
        uint64_t seed = seed_of(s) ^ (0xe000 + i);
        ids[i] = submit(s, rt, fleaf, 0, NULL, 0, &seed, sizeof seed);
        want[i] = e_leaf_data(seed, &wlen[i]);
    }
    size_t n = LEAVES;
    while (n > 1) {
        for (size_t j = 0; j < n / FAN; j++) {
            tf_task_id id =
                submit(s, rt, finner, 0, &ids[FAN * j], FAN, NULL, 0);
            size_t l;
            uint8_t *p = e_fold((const uint8_t *const *)&want[FAN * j],
                                &wlen[FAN * j], FAN, &l);
            for (size_t k = 0; k < FAN; k++)
                free(want[FAN * j + k]);
            ids[j] = id;
            want[j] = p;
            wlen[j] = l;
        }
        n /= FAN;
    }
    EXPECT_RC(s, tf_run(rt), 0);
    tf_task_info info = info_of(s, rt, ids[0]);
    EXPECT_STATE(s, info, TF_TASK_DONE);
    size_t len;
    const uint8_t *got = output_of(s, rt, ids[0], &len);
    if (EXPECT_EQ_U(s, len, wlen[0])) {
        size_t at = 0;
        while (at < len && got[at] == want[0][at])
            at++;
        EXPECT_EQ_U(s, at, len); /* the first differing byte */
    }
    tf_stats st;
    EXPECT_RC(s, tf_get_stats(rt, &st), 0);
    EXPECT_EQ_U(s, st.done, 256 + 64 + 16 + 4 + 1);
    free(want[0]);
    farm_finalize(s, &rt);
}

static void case_outputs_default(mt_suite *s)
{
    case_outputs(s, NULL);
}

static void case_outputs_threads(mt_suite *s)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.slots = 2;
    case_outputs(s, &cfg);
}

/* ---- f. many tiny tasks ---- */

static int f_empty(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx;
    (void)in;
    (void)len;
    (void)user;
    return 0;
}

static void case_many(mt_suite *s)
{
    enum { N = 100000 };
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, NULL, &rt))
        return;
    tf_fn_id fn = reg(s, rt, "f_empty", f_empty, NULL);
    if (s->rank == 0) {
        tf_task_desc d;
        tf_task_desc_init(&d, fn);
        for (int i = 0; i < N; i++) {
            tf_task_id id;
            if (!EXPECT_RC(s, tf_submit(rt, &d, &id), 0))
                break;
        }
    }
    EXPECT_RC(s, tf_run(rt), 0);
    if (s->rank == 0) {
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ_U(s, st.tasks, N);
        EXPECT_EQ_U(s, st.done, N);
        EXPECT_EQ_U(s, st.failed, 0);
        EXPECT_EQ_U(s, st.skipped, 0);
    }
    farm_finalize(s, &rt);
}

/* ---- g. failure, skipping and retries ---- */

static int g_ok(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    (void)user;
    return tf_task_set_output(ctx, "ok", 2) ? 2 : 0;
}

static int g_fail(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx;
    (void)in;
    (void)len;
    (void)user;
    return 7;
}

/* A dependent that must never run: if it does, its output says so. */
static int g_marker(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    (void)user;
    return tf_task_set_output(ctx, "RAN", 3) ? 2 : 0;
}

/* Fails with 5 on attempts 1 and 2, succeeds on 3; outputs the attempt. */
static int g_flaky(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    (void)user;
    int32_t a = tf_task_attempt(ctx);
    if (tf_task_set_output(ctx, &a, sizeof a))
        return 2;
    return a < 3 ? 5 : 0;
}

static void expect_skipped(mt_suite *s, const tf_runtime *rt, tf_task_id id)
{
    tf_task_info info = info_of(s, rt, id);
    EXPECT_STATE(s, info, TF_TASK_SKIPPED);
    EXPECT_EQ(s, info.attempts, 0);
    EXPECT_EQ(s, info.rank, -1);
    size_t len;
    const uint8_t *p = output_of(s, rt, id, &len);
    EXPECT_EQ_U(s, len, 0); /* not the marker */
    EXPECT_TRUE(s, p == NULL);
}

static void expect_ok(mt_suite *s, const tf_runtime *rt, tf_task_id id)
{
    tf_task_info info = info_of(s, rt, id);
    EXPECT_STATE(s, info, TF_TASK_DONE);
    EXPECT_EQ(s, info.attempts, 1);
    size_t len;
    const uint8_t *p = output_of(s, rt, id, &len);
    if (EXPECT_EQ_U(s, len, 2))
        EXPECT_TRUE(s, memcmp(p, "ok", 2) == 0);
}

/* Every rank's tf_run status, agreed over comm: min and max are `want`. */
static void expect_run_everywhere(mt_suite *s, tf_runtime *rt, MPI_Comm comm,
                                  int want)
{
    int rc = tf_run(rt);
    EXPECT_RC(s, rc, want);
    int lo = rc, hi = rc;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, comm);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, comm);
    if (s->rank == 0) {
        EXPECT_RC(s, lo, want);
        EXPECT_RC(s, hi, want);
    }
}

static void case_failure(mt_suite *s)
{
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, NULL, &rt))
        return;
    tf_fn_id fok = reg(s, rt, "g_ok", g_ok, NULL);
    tf_fn_id ffail = reg(s, rt, "g_fail", g_fail, NULL);
    tf_fn_id fmark = reg(s, rt, "g_marker", g_marker, NULL);
    if (s->rank != 0) {
        expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
        expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
        expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
        farm_finalize(s, &rt);
        return;
    }
    tf_task_id f = submit(s, rt, ffail, 0, NULL, 0, NULL, 0);
    /* A chain of 3 below the failure. */
    tf_task_id c1 = submit(s, rt, fmark, 0, &f, 1, NULL, 0);
    tf_task_id c2 = submit(s, rt, fmark, 0, &c1, 1, NULL, 0);
    tf_task_id c3 = submit(s, rt, fmark, 0, &c2, 1, NULL, 0);
    /* A diamond under it. */
    tf_task_id d1 = submit(s, rt, fmark, 0, &f, 1, NULL, 0);
    tf_task_id d2 = submit(s, rt, fmark, 0, &f, 1, NULL, 0);
    tf_task_id d12[2] = {d1, d2};
    tf_task_id d3 = submit(s, rt, fmark, 0, d12, 2, NULL, 0);
    /* Unrelated tasks, one of them also a dependency of a doomed task. */
    tf_task_id u[5], u6;
    for (int i = 0; i < 5; i++)
        u[i] = submit(s, rt, fok, 0, NULL, 0, NULL, 0);
    u6 = submit(s, rt, fok, 0, &u[0], 1, NULL, 0);
    tf_task_id mixed[2] = {u[1], f};
    tf_task_id m = submit(s, rt, fmark, 0, mixed, 2, NULL, 0);
    /* A diamond whose top is fine and whose one side fails. */
    tf_task_id top = submit(s, rt, fok, 0, NULL, 0, NULL, 0);
    tf_task_id left = submit(s, rt, ffail, 0, &top, 1, NULL, 0);
    tf_task_id right = submit(s, rt, fok, 0, &top, 1, NULL, 0);
    tf_task_id lr[2] = {left, right};
    tf_task_id bottom = submit(s, rt, fmark, 0, lr, 2, NULL, 0);

    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);

    tf_task_id failed[2] = {f, left};
    for (int i = 0; i < 2; i++) {
        tf_task_info info = info_of(s, rt, failed[i]);
        EXPECT_STATE(s, info, TF_TASK_FAILED);
        EXPECT_EQ(s, info.status, 7);
        EXPECT_EQ(s, info.attempts, 1);
        EXPECT_TRUE(s, info.rank >= 0 && info.rank < s->size);
    }
    tf_task_id skipped[] = {c1, c2, c3, d1, d2, d3, m, bottom};
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++)
        expect_skipped(s, rt, skipped[i]);
    tf_task_id done[] = {u[0], u[1], u[2], u[3], u[4], u6, top, right};
    for (size_t i = 0; i < sizeof done / sizeof *done; i++)
        expect_ok(s, rt, done[i]);
    tf_stats st;
    EXPECT_RC(s, tf_get_stats(rt, &st), 0);
    EXPECT_EQ_U(s, st.tasks, 18);
    EXPECT_EQ_U(s, st.failed, 2);
    EXPECT_EQ_U(s, st.skipped, 8);
    EXPECT_EQ_U(s, st.done, 8);

    /* A later run's task that depends on the failed one is skipped at once. */
    tf_task_id late = submit(s, rt, fmark, 0, &f, 1, NULL, 0);
    tf_task_id fresh = submit(s, rt, fok, 0, NULL, 0, NULL, 0);
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
    expect_skipped(s, rt, late);
    expect_ok(s, rt, fresh);

    /* The status speaks of one run: earlier failures do not taint it. */
    tf_task_id clean = submit(s, rt, fok, 0, &fresh, 1, NULL, 0);
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
    expect_ok(s, rt, clean);
    farm_finalize(s, &rt);
}

static void expect_attempts(mt_suite *s, const tf_runtime *rt, tf_task_id id,
                            tf_task_state state, int attempts, int status)
{
    tf_task_info info = info_of(s, rt, id);
    EXPECT_STATE(s, info, state);
    EXPECT_EQ(s, info.attempts, attempts);
    EXPECT_EQ(s, info.status, status);
    size_t len;
    const uint8_t *p = output_of(s, rt, id, &len);
    /* The output is the last attempt's. */
    if (EXPECT_EQ_U(s, len, 4))
        EXPECT_EQ(s, (int32_t)get_u32(p), attempts);
}

/*
 * Dependency kinds through the API (tf_depend_kind): after any end and
 * after a failure run behind a failed task; after a failure behind one
 * that succeeded is not needed (TF_RUN_UNNEEDED, DONE, no attempt) and
 * counts as succeeded for its dependent and for tf_run's result.
 */
typedef struct kind_count {
    long unneeded, skipped, bad;
    long ends, after_end; /* TF_RUN_END events, and any event after one */
    int end_status;       /* the last TF_RUN_END's */
} kind_count;

static void kind_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    kind_count *k = user;
    (void)rt;
    /* Each run's last event: counted, and nothing of the run after it. */
    k->after_end += k->ends && ev->kind != TF_RUN_END;
    if (ev->kind == TF_RUN_END) {
        k->ends++;
        k->end_status = ev->status;
        k->bad += ev->id != TF_NO_TASK || ev->rank != -1;
        return;
    }
    k->unneeded += ev->kind == TF_RUN_UNNEEDED;
    k->skipped += ev->kind == TF_RUN_SKIPPED;
    if (ev->kind == TF_RUN_UNNEEDED && (ev->rank != -1 || ev->attempt != 0))
        k->bad++;
}

static void case_dep_kinds(mt_suite *s)
{
    kind_count k = {0, 0, 0, 0, 0, 0};
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1;
    cfg.on_event = kind_event;
    cfg.event_user = &k;
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id fok = reg(s, rt, "g_ok", g_ok, NULL);
    tf_fn_id ffail = reg(s, rt, "g_fail", g_fail, NULL);
    tf_fn_id fmark = reg(s, rt, "g_marker", g_marker, NULL);
    if (s->rank != 0) {
        expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
        expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
        farm_finalize(s, &rt);
        return;
    }
    EXPECT_RC(s, tf_batch_begin(rt), 0);
    tf_task_id f = submit(s, rt, ffail, 0, NULL, 0, NULL, 0);
    tf_task_id ok = submit(s, rt, fok, 0, NULL, 0, NULL, 0);
    tf_task_id any = submit(s, rt, fmark, 0, NULL, 0, NULL, 0);
    tf_task_id handler = submit(s, rt, fmark, 0, NULL, 0, NULL, 0);
    tf_task_id after_ok = submit(s, rt, fmark, 0, NULL, 0, NULL, 0);
    tf_task_id unneeded = submit(s, rt, fmark, 0, NULL, 0, NULL, 0);
    tf_task_id next = submit(s, rt, fok, 0, NULL, 0, NULL, 0);
    EXPECT_RC(s, tf_depend_kind(rt, f, any, TF_DEP_ANY), 0);
    EXPECT_RC(s, tf_depend_kind(rt, ok, any, TF_DEP_ANY), 0);
    EXPECT_RC(s, tf_depend_kind(rt, f, handler, TF_DEP_NOTOK), 0);
    EXPECT_RC(s, tf_depend_kind(rt, ok, handler, TF_DEP_NOTOK), 0);
    EXPECT_RC(s, tf_depend_kind(rt, f, after_ok, TF_DEP_OK), 0);
    EXPECT_RC(s, tf_depend_kind(rt, ok, unneeded, TF_DEP_NOTOK), 0);
    EXPECT_RC(s, tf_depend(rt, unneeded, next), 0);
    EXPECT_RC(s, tf_depend_kind(rt, ok, next, 3), TF_EINVAL);
    EXPECT_RC(s, tf_depend_kind(rt, ok, next, -1), TF_EINVAL);
    EXPECT_RC(s, tf_batch_end(rt), 0);
    EXPECT_RC(s, tf_depend_kind(rt, ok, next, TF_DEP_ANY), TF_ESTATE);
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
    /* The run ended once, last, with tf_run's verdict. */
    EXPECT_EQ(s, k.ends, 1);
    EXPECT_EQ(s, k.end_status, TF_EFAILED);
    tf_task_info info = info_of(s, rt, f);
    EXPECT_STATE(s, info, TF_TASK_FAILED);
    size_t len;
    EXPECT_TRUE(s, output_of(s, rt, any, &len) && len == 3);
    EXPECT_TRUE(s, output_of(s, rt, handler, &len) && len == 3);
    expect_skipped(s, rt, after_ok);
    info = info_of(s, rt, unneeded);
    EXPECT_STATE(s, info, TF_TASK_DONE);
    EXPECT_EQ(s, info.attempts, 0);
    expect_ok(s, rt, next);
    EXPECT_EQ(s, k.unneeded, 1);
    EXPECT_EQ(s, k.skipped, 1);
    /* A run whose only task not run was not needed succeeded. */
    tf_task_id ok2 = submit(s, rt, fok, 0, NULL, 0, NULL, 0);
    EXPECT_RC(s, tf_batch_begin(rt), 0);
    tf_task_id h2 = submit(s, rt, fmark, 0, NULL, 0, NULL, 0);
    EXPECT_RC(s, tf_depend_kind(rt, ok2, h2, TF_DEP_NOTOK), 0);
    EXPECT_RC(s, tf_batch_end(rt), 0);
    k.ends = 0; /* the next run's events may follow the last END */
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
    EXPECT_EQ(s, info_of(s, rt, h2).attempts, 0);
    EXPECT_EQ(s, k.unneeded, 2);
    EXPECT_EQ(s, k.ends, 1);
    EXPECT_EQ(s, k.end_status, 0);
    EXPECT_EQ(s, k.after_end, 0);
    EXPECT_EQ(s, k.bad, 0);
    farm_finalize(s, &rt);
}

static void case_retries(mt_suite *s)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.retries = 2;
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id fok = reg(s, rt, "g_ok", g_ok, NULL);
    tf_fn_id flaky = reg(s, rt, "g_flaky", g_flaky, NULL);
    if (s->rank != 0) {
        expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
        expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
        farm_finalize(s, &rt);
        return;
    }
    tf_task_desc d;
    tf_task_desc_init(&d, flaky);
    tf_task_id p1 = 0, p2 = 0, a = 0, z = 0;
    d.retries = 2; /* explicit */
    EXPECT_RC(s, tf_submit(rt, &d, &p1), 0);
    d.retries = -1; /* the config's 2 */
    EXPECT_RC(s, tf_submit(rt, &d, &p2), 0);
    tf_task_id pp[2] = {p1, p2};
    tf_task_id q = submit(s, rt, fok, 0, pp, 2, NULL, 0);
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
    expect_attempts(s, rt, p1, TF_TASK_DONE, 3, 0);
    expect_attempts(s, rt, p2, TF_TASK_DONE, 3, 0);
    expect_ok(s, rt, q);

    /* Fewer retries than it needs: FAILED with the last attempt's status. */
    d.retries = 1;
    EXPECT_RC(s, tf_submit(rt, &d, &a), 0);
    d.retries = 0;
    EXPECT_RC(s, tf_submit(rt, &d, &z), 0);
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
    expect_attempts(s, rt, a, TF_TASK_FAILED, 2, 5);
    expect_attempts(s, rt, z, TF_TASK_FAILED, 1, 5);
    farm_finalize(s, &rt);
}

/* ---- h. API errors, and several runs on one runtime ---- */

/* Outputs its input (8 bytes) plus its dependencies' 8-byte outputs. */
static int h_sum(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)user;
    if (len != 8)
        return 2;
    uint64_t sum = get_u64(in);
    for (size_t i = 0; i < tf_task_ndeps(ctx); i++) {
        const void *b;
        size_t blen;
        if (tf_task_dep_output(ctx, i, &b, &blen) || blen != 8)
            return 3;
        sum += get_u64(b);
    }
    /* Out of range is an error, not a crash. */
    const void *b = NULL;
    size_t blen = 0;
    if (tf_task_dep_output(ctx, tf_task_ndeps(ctx), &b, &blen) != TF_ERANGE)
        return 4;
    return tf_task_set_output(ctx, &sum, sizeof sum) ? 5 : 0;
}

static uint64_t h_value(mt_suite *s, const tf_runtime *rt, tf_task_id id)
{
    size_t len;
    const uint8_t *p = output_of(s, rt, id, &len);
    return EXPECT_EQ_U(s, len, 8) ? get_u64(p) : UINT64_MAX;
}

static void case_errors(mt_suite *s)
{
    /* Every code the header lists has its own text, not the fallback's. */
    static const int codes[] = {
#define CODE_(name, val, msg) TF_##name,
        TF_ERRNO_MAP(CODE_)
#undef CODE_
    };
    const char *unknown = tf_strerror(-999);
    EXPECT_TRUE(s, unknown != NULL && unknown[0] != '\0');
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        const char *msg = tf_strerror(codes[i]);
        if (EXPECT_TRUE(s, msg != NULL && msg[0] != '\0'))
            EXPECT_TRUE(s, unknown == NULL || strcmp(msg, unknown) != 0);
    }
    EXPECT_TRUE(s, tf_version() != NULL && tf_version()[0]);

    /* No place for the runtime: an error on every rank, not a crash. */
    EXPECT_RC(s, tf_init(MPI_COMM_WORLD, NULL, NULL), TF_EINVAL);
    EXPECT_RC(s, tf_init_local(NULL, NULL), TF_EINVAL);

    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, NULL, &rt))
        return;
    tf_fn_id fsum = reg(s, rt, "h_sum", h_sum, NULL);
    tf_fn_id dup = 12345;
    EXPECT_RC(s, tf_register(rt, "h_sum", h_sum, NULL, &dup), TF_EEXIST);
    EXPECT_EQ(s, dup, 12345); /* out-parameter untouched on failure */
    tf_fn_id look = 999;
    EXPECT_RC(s, tf_lookup(rt, "h_sum", &look), 0);
    EXPECT_EQ(s, look, fsum);
    EXPECT_RC(s, tf_lookup(rt, "h_none", &look), TF_ENOENT);

    tf_task_desc d;
    tf_task_desc_init(&d, fsum);
    uint64_t v = 5;
    d.input = &v;
    d.input_len = sizeof v;
    if (s->rank != 0) {
        tf_task_id id = 777;
        EXPECT_RC(s, tf_submit(rt, &d, &id), TF_ENOTROOT);
        EXPECT_EQ_U(s, id, 777);
        tf_task_info info;
        EXPECT_RC(s, tf_task_info_get(rt, 0, &info), TF_ENOTROOT);
        const void *b;
        size_t len;
        EXPECT_RC(s, tf_task_output(rt, 0, &b, &len), TF_ENOTROOT);
        for (int run = 0; run < 3; run++)
            EXPECT_RC(s, tf_run(rt), 0);
        farm_finalize(s, &rt);
        return;
    }
    tf_task_id a = 0;
    EXPECT_RC(s, tf_submit(rt, &d, &a), 0);
    /* Unknown dependencies: never issued, or shaped like a dynamic task's id.
     */
    tf_task_id bad[3][2] = {{12345, 0}, {a, (1ULL << 32) | 77}, {a + 1, 0}};
    size_t nbad[3] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        tf_task_id id = 4242;
        d.deps = bad[i];
        d.ndeps = nbad[i];
        EXPECT_RC(s, tf_submit(rt, &d, &id), TF_EDEP);
        EXPECT_EQ_U(s, id, 4242);
    }
    d.deps = NULL;
    d.ndeps = 0;
    tf_task_desc dn;
    tf_task_desc_init(&dn, 999);
    tf_task_id id = 4242;
    EXPECT_RC(s, tf_submit(rt, &dn, &id), TF_ENOENT);
    EXPECT_EQ_U(s, id, 4242);
    tf_task_info info;
    EXPECT_RC(s, tf_task_info_get(rt, 12345, &info), TF_ENOENT);

    EXPECT_RC(s, tf_run(rt), 0);
    EXPECT_EQ_U(s, h_value(s, rt, a), 5);

    /* A second run with new tasks, one depending on a task of the first run. */
    v = 100;
    d.deps = &a;
    d.ndeps = 1;
    tf_task_id b = 0, c = 0;
    EXPECT_RC(s, tf_submit(rt, &d, &b), 0);
    v = 7;
    d.deps = NULL;
    d.ndeps = 0;
    EXPECT_RC(s, tf_submit(rt, &d, &c), 0);
    /* More dependencies than the runtime keeps on its stack. */
    enum { WIDE = 20 };
    tf_task_id many[WIDE], wide = 0;
    for (int i = 0; i < WIDE; i++) {
        v = (uint64_t)i;
        EXPECT_RC(s, tf_submit(rt, &d, &many[i]), 0);
    }
    v = 1000;
    d.deps = many;
    d.ndeps = WIDE;
    EXPECT_RC(s, tf_submit(rt, &d, &wide), 0);
    EXPECT_RC(s, tf_run(rt), 0);
    EXPECT_EQ_U(s, h_value(s, rt, b), 105);
    EXPECT_EQ_U(s, h_value(s, rt, c), 7);
    EXPECT_EQ_U(s, h_value(s, rt, wide), 1000 + WIDE * (WIDE - 1) / 2);
    tf_task_info ia = info_of(s, rt, a);
    EXPECT_EQ(s, ia.attempts, 1); /* the first run's task did not run again */

    /* A third run with nothing new is a no-op. */
    EXPECT_RC(s, tf_run(rt), 0);
    tf_stats st;
    EXPECT_RC(s, tf_get_stats(rt, &st), 0);
    /* The refused submissions left nothing behind. */
    EXPECT_EQ_U(s, st.tasks, 3 + WIDE + 1);
    EXPECT_EQ_U(s, st.done, 3 + WIDE + 1);
    farm_finalize(s, &rt);
}

/* ---- i. two farms at once on the two halves of MPI_COMM_WORLD ---- */

typedef struct i_out {
    uint64_t value;
    int32_t world_rank, task_rank;
} i_out;

/* Input {i, half}: outputs i*3+half and where it ran (world rank, task rank).
 */
static int i_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const rank_ctx *rc = user;
    if (len != 16)
        return 2;
    i_out o;
    memset(&o, 0, sizeof o);
    o.value = get_u64(in) * 3 + get_u64((const uint8_t *)in + 8);
    o.world_rank = rc->world_rank;
    o.task_rank = tf_task_rank(ctx);
    /* Make the two farms overlap in time. */
    sleep_ns(20000);
    return tf_task_set_output(ctx, &o, sizeof o) ? 3 : 0;
}

static void case_split(mt_suite *s)
{
    enum { N = 300 };
    if (s->size < 2) {
        mt_skip(s, "needs np >= 2");
        return;
    }
    int half = s->rank < s->size / 2 ? 0 : 1;
    int lo = half ? s->size / 2 : 0, hi = half ? s->size : s->size / 2;
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, half, s->rank, &sub);
    int srank, ssize;
    MPI_Comm_rank(sub, &srank);
    MPI_Comm_size(sub, &ssize);
    EXPECT_EQ(s, ssize, hi - lo);
    rank_ctx rctx;
    rank_ctx_init(&rctx, s->rank);
    tf_runtime *rt;
    if (!farm_init(s, sub, NULL, &rt)) {
        MPI_Comm_free(&sub);
        return;
    }
    tf_fn_id fn = reg(s, rt, "i_task", i_task, &rctx);
    tf_task_id *ids = NULL;
    if (srank == 0) {
        ids = xcalloc(N, sizeof *ids);
        for (uint64_t i = 0; i < N; i++) {
            uint64_t in[2] = {i, (uint64_t)half};
            /* Chains of 10, so that each farm also passes dependencies. */
            ids[i] = submit(s, rt, fn, 0, &ids[i - (i % 10 ? 1 : 0)],
                            i % 10 ? 1 : 0, in, sizeof in);
        }
    }
    /* Both farms run at once: neither waits for the other half. */
    EXPECT_RC(s, tf_run(rt), 0);
    if (srank == 0) {
        for (uint64_t i = 0; i < N; i++) {
            tf_task_info info = info_of(s, rt, ids[i]);
            EXPECT_STATE(s, info, TF_TASK_DONE);
            size_t len;
            const uint8_t *p = output_of(s, rt, ids[i], &len);
            if (!EXPECT_EQ_U(s, len, sizeof(i_out)))
                continue;
            i_out o;
            memcpy(&o, p, sizeof o);
            EXPECT_EQ_U(s, o.value, i * 3 + (uint64_t)half);
            /* It ran in this half, on a rank of the sub-communicator. */
            EXPECT_TRUE(s, o.world_rank >= lo && o.world_rank < hi);
            EXPECT_EQ(s, o.task_rank, info.rank);
            EXPECT_TRUE(s, info.rank >= 0 && info.rank < ssize);
        }
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ_U(s, st.done, N);
    }
    free(ids);
    farm_finalize(s, &rt);
    MPI_Comm_free(&sub);
}

/* ---- j: event callback, halt, main thread not running tasks ---- */

typedef struct ev_count {
    tf_runtime *rt;
    long done, retry, failed, skipped, ticks, bad;
    bool halt_on_fail;
} ev_count;

static void count_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    ev_count *c = user;
    if (rt != c->rt)
        c->bad++;
    switch (ev->kind) {
    case TF_RUN_DONE: c->done++; break;
    case TF_RUN_RETRY: c->retry++; break;
    case TF_RUN_FAILED:
        c->failed++;
        if (ev->status != 9 || ev->attempt != 1 || ev->rank < 0)
            c->bad++;
        if (c->halt_on_fail && tf_halt(rt) != 0)
            c->bad++;
        break;
    case TF_RUN_SKIPPED: c->skipped++; break;
    case TF_RUN_TICK: c->ticks++; break;
    case TF_RUN_DEADLINE: c->bad++; break; /* no deadline here */
    case TF_RUN_UNNEEDED: c->bad++; break; /* no TF_DEP_NOTOK edges here */
    case TF_RUN_END: break;               /* case_dep_kinds checks it */
    }
}

static void count_halt(void *user) { (*(int *)user)++; }

static int j_sleep(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)in, (void)len, (void)user;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}

static int j_fail(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)in, (void)len, (void)user;
    struct timespec ts = {0, 30 * 1000000L};
    nanosleep(&ts, NULL);
    return 9;
}

/*
 * Every terminal task gets exactly one event; a halt from the callback ends
 * the run early: tasks not started are SKIPPED, every rank's on_halt runs
 * once, and tf_run returns TF_EFAILED everywhere.
 */
static void events_case(mt_suite *s, bool halt, int main_runs)
{
    ev_count c;
    memset(&c, 0, sizeof c);
    c.halt_on_fail = halt;
    int halts = 0;
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.slots = 2;
    cfg.prefetch = 2;
    cfg.main_runs_tasks = main_runs;
    cfg.on_event = count_event;
    cfg.event_user = &c;
    cfg.tick_ms = 20;
    cfg.on_halt = count_halt;
    cfg.halt_user = &halts;
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    c.rt = rt;
    tf_fn_id fsleep = reg(s, rt, "j_sleep", j_sleep, NULL);
    tf_fn_id ffail = reg(s, rt, "j_fail", j_fail, NULL);
    const int n = 120;
    tf_task_id f = 0, dep = 0;
    if (s->rank == 0) {
        f = submit(s, rt, ffail, 10, NULL, 0, NULL, 0);
        dep = submit(s, rt, fsleep, 0, &f, 1, NULL, 0);
        for (int i = 0; i < n; i++)
            submit(s, rt, fsleep, 0, NULL, 0, NULL, 0);
    }
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
    int all_halts = 0;
    MPI_Allreduce(&halts, &all_halts, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (s->rank == 0) {
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ_U(s, st.tasks, (uint64_t)n + 2);
        EXPECT_EQ_U(s, st.done + st.failed + st.skipped, st.tasks);
        EXPECT_EQ(s, c.bad, 0);
        EXPECT_EQ(s, c.failed, 1);
        EXPECT_EQ_U(s, (uint64_t)c.done, st.done);
        EXPECT_EQ_U(s, (uint64_t)c.skipped, st.skipped);
        EXPECT_EQ(s, c.retry, 0);
        expect_skipped(s, rt, dep);
        tf_task_info info = info_of(s, rt, f);
        EXPECT_STATE(s, info, TF_TASK_FAILED);
        if (halt) {
            /* 120 tasks of 20 ms cannot all have started within 30 ms. */
            EXPECT_TRUE(s, st.skipped > 1);
            EXPECT_EQ(s, all_halts, s->size);
        } else {
            EXPECT_EQ_U(s, st.skipped, 1);
            EXPECT_EQ(s, all_halts, 0);
            EXPECT_TRUE(s, c.ticks > 0); /* 120 x 20 ms is far over 20 ms */
        }
        EXPECT_RC(s, tf_halt(rt), TF_ESTATE); /* not inside a run */
    }
    farm_finalize(s, &rt);
}

static void case_events(mt_suite *s) { events_case(s, false, 1); }
static void case_halt(mt_suite *s) { events_case(s, true, 1); }
static void case_halt_threads(mt_suite *s) { events_case(s, true, 0); }

/*
 * Attempts a halt ends are told apart from failures: tasks that run until
 * on_halt tells them to stop, then fail, come as FAILED with halted set;
 * the failure that asked for the halt has it clear. tf_event_interrupted
 * is allowed in a failed attempt's event only.
 */
typedef struct halted_count {
    long failed, halted, bad;
} halted_count;

static void halted_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    halted_count *h = user;
    if (ev->kind == TF_RUN_FAILED) {
        h->failed++;
        h->halted += ev->halted;
        if (ev->status == 9 ? ev->halted || tf_halt(rt) : !ev->halted)
            h->bad++;
        if (tf_event_interrupted(rt) != 0)
            h->bad++;
    } else if (ev->halted || tf_event_interrupted(rt) != TF_ESTATE) {
        h->bad++;
    }
}

static void set_stop(void *user) { atomic_store((atomic_int *)user, 1); }

/*
 * Two slots on task threads, so that on_halt (which sets *stop) reaches
 * running tasks; events to `on_event`.
 */
static void halt_config(tf_config *cfg, int prefetch, tf_event_fn on_event,
                        void *user, atomic_int *stop)
{
    tf_config_init(cfg);
    cfg->slots = 2;
    cfg->prefetch = prefetch;
    cfg->main_runs_tasks = 0;
    cfg->on_event = on_event;
    cfg->event_user = user;
    cfg->on_halt = set_stop;
    cfg->halt_user = stop;
}

/* Runs until on_halt (at most 10 s, so that nothing hangs), then fails. */
static int until_halt(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)in, (void)len;
    struct timespec ts = {0, 5 * 1000000L};
    for (int i = 0; i < 2000 && !atomic_load((atomic_int *)user); i++)
        nanosleep(&ts, NULL);
    return 1;
}

static void case_halted_attempts(mt_suite *s)
{
    halted_count h = {0, 0, 0};
    atomic_int stop = 0;
    tf_config cfg;
    halt_config(&cfg, 1, halted_event, &h, &stop);
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id ffail = reg(s, rt, "j_fail", j_fail, NULL);
    tf_fn_id fwait = reg(s, rt, "until_halt", until_halt, &stop);
    if (s->rank == 0) {
        submit(s, rt, ffail, 10, NULL, 0, NULL, 0);
        for (int i = 0; i < 8; i++)
            submit(s, rt, fwait, 0, NULL, 0, NULL, 0);
    }
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
    if (s->rank == 0) {
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ(s, h.bad, 0);
        /* The failure, then every task that was running: halted. */
        EXPECT_TRUE(s, h.halted >= 1);
        EXPECT_EQ(s, h.halted, h.failed - 1);
        EXPECT_EQ_U(s, st.failed + st.skipped, 9);
        EXPECT_RC(s, tf_event_interrupted(rt), TF_ESTATE); /* not in an event */
    } else {
        EXPECT_RC(s, tf_event_interrupted(rt), TF_ENOTROOT);
    }
    farm_finalize(s, &rt);
}

/*
 * tf_halt_soon from the callback at the first failure: nothing more
 * starts, but on_halt is not called, so the tasks running then finish as
 * they would have (these succeed unless on_halt stops them), none comes as
 * halted, and the next run dispatches again. With `sooner`, a tf_halt at
 * the next success after it ends the rest after all: on_halt once per rank.
 */
typedef struct soon_count {
    long failed, halted, done_after, bad;
    bool soon, sooner;
} soon_count;

static void soon_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    soon_count *c = user;
    if (ev->kind == TF_RUN_FAILED) {
        c->failed++;
        c->halted += ev->halted;
        if (!c->soon && tf_halt_soon(rt) != 0)
            c->bad++;
        c->soon = true;
    } else if (ev->kind == TF_RUN_DONE && c->soon) {
        c->done_after++;
        if (c->sooner && tf_halt(rt) != 0)
            c->bad++;
        /* Later than tf_halt, or again: changes nothing. */
        if (tf_halt_soon(rt) != 0)
            c->bad++;
    }
}

/* Succeeds after about 100 ms, unless on_halt stops it first (then 1). */
static int soon_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)ctx, (void)in, (void)len;
    struct timespec ts = {0, 5 * 1000000L};
    for (int i = 0; i < 20; i++) {
        if (atomic_load((atomic_int *)user))
            return 1;
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void halt_soon_case(mt_suite *s, bool sooner)
{
    soon_count c = {0, 0, 0, 0, false, sooner};
    atomic_int stop = 0;
    tf_config cfg;
    halt_config(&cfg, 2, soon_event, &c, &stop);
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id ffail = reg(s, rt, "j_fail", j_fail, NULL);
    tf_fn_id fsoon = reg(s, rt, "soon_task", soon_task, &stop);
    const int n = 40;
    if (s->rank == 0) {
        submit(s, rt, ffail, 10, NULL, 0, NULL, 0);
        for (int i = 0; i < n; i++)
            submit(s, rt, fsoon, 0, NULL, 0, NULL, 0);
    }
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
    int stopped = atomic_load(&stop), all = 0;
    MPI_Allreduce(&stopped, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (s->rank == 0) {
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ(s, c.bad, 0);
        EXPECT_EQ_U(s, st.done + st.failed + st.skipped, (uint64_t)n + 1);
        /* 40 tasks of 100 ms on a few slots cannot all have started. */
        EXPECT_TRUE(s, st.skipped > 0);
        if (!sooner) {
            EXPECT_EQ(s, all, 0);      /* on_halt never called */
            EXPECT_EQ(s, c.failed, 1); /* the running ones finished well */
            EXPECT_EQ(s, c.halted, 0);
        } else {
            EXPECT_EQ(s, all, s->size);
            EXPECT_EQ(s, c.halted, c.failed - 1);
        }
    }
    /* The next run dispatches again. */
    atomic_store(&stop, 0);
    if (s->rank == 0)
        submit(s, rt, fsoon, 0, NULL, 0, NULL, 0);
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
    if (s->rank == 0)
        EXPECT_RC(s, tf_halt_soon(rt), TF_ESTATE); /* not inside a run */
    else
        EXPECT_RC(s, tf_halt_soon(rt), TF_ENOTROOT);
    farm_finalize(s, &rt);
}

static void case_halt_soon(mt_suite *s) { halt_soon_case(s, false); }
static void case_halt_soon_then_now(mt_suite *s) { halt_soon_case(s, true); }

/*
 * Halt after the 5th task is done, with one slot and no prefetch: only
 * tasks already running may still finish (one per other worker), and the
 * next run dispatches again. Checks the attempt numbers events carry, too.
 */
typedef struct halt_after {
    long done, after, bad_attempt, retry_attempt;
} halt_after;

static void halt_after_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    halt_after *h = user;
    if (ev->kind == TF_RUN_DONE && ++h->done == h->after)
        tf_halt(rt);
    if (ev->kind == TF_RUN_RETRY)
        h->retry_attempt = ev->attempt;
    if (ev->kind == TF_RUN_TICK && ev->id != TF_NO_TASK)
        h->bad_attempt++;
}

static int fail_first(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in, (void)len, (void)user;
    return tf_task_attempt(ctx) == 1 ? 4 : 0;
}

static void case_halt_exact(mt_suite *s)
{
    halt_after h = {0, 5, 0, 0};
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.slots = 1;
    cfg.prefetch = 1;
    cfg.on_event = halt_after_event;
    cfg.event_user = &h;
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id fsleep = reg(s, rt, "j_sleep", j_sleep, NULL);
    tf_fn_id ffirst = reg(s, rt, "fail_first", fail_first, NULL);
    for (int i = 0; s->rank == 0 && i < 40; i++)
        submit(s, rt, fsleep, 0, NULL, 0, NULL, 0);
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, TF_EFAILED);
    int workers = s->size; /* rank 0 runs tasks too */
    if (s->rank == 0) {
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_TRUE(s, st.done >= 5 && st.done <= (uint64_t)(4 + workers));
        EXPECT_EQ_U(s, st.done + st.skipped, 40);
    }
    /* The next run is not halted: a retried task's event shows attempt 1. */
    h.after = -1;
    tf_task_id again = 0;
    if (s->rank == 0) {
        tf_task_desc d;
        tf_task_desc_init(&d, ffirst);
        d.retries = 1;
        EXPECT_RC(s, tf_submit(rt, &d, &again), 0);
    }
    expect_run_everywhere(s, rt, MPI_COMM_WORLD, 0);
    if (s->rank == 0) {
        tf_task_info info = info_of(s, rt, again);
        EXPECT_STATE(s, info, TF_TASK_DONE);
        EXPECT_EQ(s, info.attempts, 2);
        EXPECT_EQ(s, h.retry_attempt, 1);
        EXPECT_EQ(s, h.bad_attempt, 0);
    }
    farm_finalize(s, &rt);
}

/* tf_init_local: no MPI at all, on every rank independently. */
static int k_sum(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)user;
    int64_t v = 0;
    if (len == sizeof v)
        memcpy(&v, in, sizeof v);
    for (size_t i = 0; i < tf_task_ndeps(ctx); i++) {
        const void *b;
        size_t l;
        int64_t d = 0;
        if (tf_task_dep_output(ctx, i, &b, &l) || l != sizeof d)
            return 3;
        memcpy(&d, b, sizeof d);
        v += d;
    }
    return tf_task_set_output(ctx, &v, sizeof v);
}

static void case_local(mt_suite *s)
{
    for (int main_runs = 0; main_runs < 2; main_runs++) {
        tf_config cfg;
        tf_config_init(&cfg);
        cfg.keep_outputs = 1; /* these tests read every output */
        cfg.slots = 3;
        cfg.main_runs_tasks = main_runs;
        tf_runtime *rt = NULL;
        EXPECT_RC(s, tf_init_local(&cfg, &rt), 0);
        if (!rt)
            return;
        tf_fn_id fn = reg(s, rt, "k_sum", k_sum, NULL);
        /* A binary reduction tree over 256 leaves holding 1..256. */
        tf_task_id level[256];
        for (int64_t i = 0; i < 256; i++) {
            int64_t v = i + 1;
            level[i] = submit(s, rt, fn, 0, NULL, 0, &v, sizeof v);
        }
        for (int w = 256; w > 1; w /= 2)
            for (int i = 0; i < w / 2; i++)
                level[i] = submit(s, rt, fn, 0, &level[2 * i], 2, NULL, 0);
        EXPECT_RC(s, tf_run(rt), 0);
        size_t len;
        const uint8_t *p = output_of(s, rt, level[0], &len);
        int64_t got = 0;
        if (EXPECT_EQ_U(s, len, sizeof got))
            memcpy(&got, p, sizeof got);
        EXPECT_EQ(s, got, 256 * 257 / 2);
        farm_finalize(s, &rt);
    }
}

/* ---- l. load balance: local release along a chain, work stealing ---- */

/* Adds 1 to its dependency's output (0 without one); outputs the sum. */
static int l_step(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    (void)user;
    uint64_t v = 0;
    const void *buf;
    size_t dl;
    if (tf_task_ndeps(ctx) == 1 && !tf_task_dep_output(ctx, 0, &buf, &dl) &&
        dl == sizeof v)
        memcpy(&v, buf, sizeof v);
    v++;
    return tf_task_set_output(ctx, &v, sizeof v) ? 2 : 0;
}

/*
 * A chain of 300 steps, each adding 1 to the last output: the result says
 * every step ran once, in order, with its predecessor's output, whether it
 * went through rank 0 or was released on its worker. With workers, most
 * steps must have been released locally (rank 0 parks the chain ahead
 * within the window).
 */
static void case_chain_release(mt_suite *s)
{
    enum { N = 300 };
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, NULL, &rt))
        return;
    tf_fn_id fn = reg(s, rt, "l_step", l_step, NULL);
    tf_task_id last = UINT64_MAX;
    for (int i = 0; s->rank == 0 && i < N; i++)
        last = submit(s, rt, fn, 0, i ? &last : NULL, i ? 1 : 0, NULL, 0);
    EXPECT_RC(s, tf_run(rt), 0);
    if (s->rank == 0) {
        size_t len;
        const uint8_t *out = output_of(s, rt, last, &len);
        uint64_t v = 0;
        if (EXPECT_EQ_U(s, len, sizeof v))
            memcpy(&v, out, sizeof v);
        EXPECT_EQ_U(s, v, N);
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ_U(s, st.done, N);
        /* One rank runs its tasks itself: nothing travels, nothing parks. */
        if (s->size > 1)
            EXPECT_LE_U(s, N / 2, st.released);
    }
    farm_finalize(s, &rt);
}

/* Slow on rc->slow_rank (slow_ns), 1 ms elsewhere; the rank as output. */
static int l_uneven(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    (void)in;
    (void)len;
    rank_ctx *rc = user;
    atomic_fetch_add(&rc->runs, 1);
    int32_t r = tf_task_rank(ctx);
    sleep_ns(r == rc->slow_rank ? rc->slow_ns : 1000000L);
    return tf_task_set_output(ctx, &r, sizeof r) ? 2 : 0;
}

/*
 * 60 tasks with a fixed window of 64 per slot: rank 0 hands every worker
 * its share at once, so only stealing can move work off the slow rank 1.
 * Every task must run exactly once, where its output says it ran, and with
 * stealing on (two or more workers) rank 0 must have applied moves, exactly
 * as many as the thieves took; with it off, none.
 */
static void steal_case(mt_suite *s, bool no_steal)
{
    enum { N = 60 };
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.fixed_prefetch = 1;
    cfg.prefetch = 64;
    cfg.no_steal = no_steal;
    cfg.seed = 42;
    rank_ctx rc;
    rank_ctx_init(&rc, s->rank);
    rc.slow_rank = 1; /* 20 ms there: rank 1 falls behind */
    rc.slow_ns = 20000000L;
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id fn = reg(s, rt, "l_uneven", l_uneven, &rc);
    tf_task_id ids[N];
    for (int i = 0; s->rank == 0 && i < N; i++)
        ids[i] = submit(s, rt, fn, 0, NULL, 0, NULL, 0);
    EXPECT_RC(s, tf_run(rt), 0);
    tf_stats st;
    EXPECT_RC(s, tf_get_stats(rt, &st), 0);
    unsigned long runs = atomic_load(&rc.runs), all = 0, stolen = 0;
    unsigned long mine = st.stolen;
    MPI_Reduce(&runs, &all, 1, MPI_UNSIGNED_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&mine, &stolen, 1, MPI_UNSIGNED_LONG, MPI_SUM, 0,
               MPI_COMM_WORLD);
    if (s->rank == 0) {
        EXPECT_EQ_U(s, all, N);
        EXPECT_EQ_U(s, st.done, N);
        for (int i = 0; i < N; i++) {
            tf_task_info info = info_of(s, rt, ids[i]);
            size_t len;
            const uint8_t *out = output_of(s, rt, ids[i], &len);
            int32_t r = -1;
            if (EXPECT_EQ_U(s, len, sizeof r))
                memcpy(&r, out, sizeof r);
            EXPECT_EQ(s, r, info.rank);
        }
        /* A thief's DONE can overtake its victim's MOVED; rank 0 then
           drops the stale move, so some steals are never counted moved. */
        EXPECT_LE_U(s, st.moved, stolen);
        if (no_steal || s->size < 3)
            EXPECT_EQ_U(s, stolen, 0);
        else
            EXPECT_LE_U(s, 1, stolen);
    }
    farm_finalize(s, &rt);
}

/*
 * Rank 0 runs tasks too, and is the slow one: with windows of 8, each rank
 * gets 8 tasks at once. The workers are done in 8 ms while rank 0 has 7
 * queued behind its first; rank 0 hands half of what it queues to a worker
 * with a free slot whenever nothing else is ready, so it runs about 4 of
 * its 8 (it would run all 8, 0.8 s, without). Every task exactly once.
 */
static void case_share_own(mt_suite *s)
{
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.fixed_prefetch = 1;
    cfg.prefetch = 8;
    rank_ctx rc;
    rank_ctx_init(&rc, s->rank);
    rc.slow_rank = 0;
    rc.slow_ns = 100000000L;
    tf_runtime *rt;
    if (!farm_init(s, MPI_COMM_WORLD, &cfg, &rt))
        return;
    tf_fn_id fn = reg(s, rt, "l_uneven", l_uneven, &rc);
    int n = 8 * s->size;
    for (int i = 0; s->rank == 0 && i < n; i++)
        submit(s, rt, fn, 0, NULL, 0, NULL, 0);
    EXPECT_RC(s, tf_run(rt), 0);
    unsigned long runs = atomic_load(&rc.runs), all = 0;
    MPI_Reduce(&runs, &all, 1, MPI_UNSIGNED_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (s->rank == 0) {
        EXPECT_EQ_U(s, all, (unsigned long)n);
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(rt, &st), 0);
        EXPECT_EQ_U(s, st.done, (unsigned long)n);
        if (s->size > 1)
            EXPECT_LE_U(s, runs, 5);
    }
    farm_finalize(s, &rt);
}

static void case_steal(mt_suite *s) { steal_case(s, false); }
static void case_no_steal(mt_suite *s) { steal_case(s, true); }

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    static mt_suite s;
    mt_init(&s, "test_runtime");
    /* A fixed seed replays a failure; pass another as argv[1] to explore. */
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 20240611;
    s.user = &seed;
    if (s.rank == 0)
        printf("# taskfarm %s, %d ranks, seed %" PRIu64 "\n", tf_version(),
               s.size, seed);
    mt_begin_case(&s, "MPI_THREAD_FUNNELED provided");
    EXPECT_LE(&s, MPI_THREAD_FUNNELED, provided);
    if (!mt_end_case(&s)) {
        int rc = mt_finish(&s);
        MPI_Finalize();
        return rc;
    }
    static const struct {
        const char *name;
        mt_case_fn fn;
    } cases[] = {
        {"a exactly once", case_exactly_once},
        {"a rank 0 shares what it queues with an idle worker", case_share_own},
        {"a exactly once (slots=3, prefetch=2)", case_exactly_once_threads},
        {"a exactly once (rank 0 only schedules)", case_exactly_once_rank0_idle},
        {"b dependency order", case_dep_order},
        {"c priority order (slots=1, prefetch=1)", case_priority},
        {"d dynamic tasks: flat reduction", case_dynamic_flat},
        {"d dynamic tasks: 3-level tree", case_dynamic_tree},
        {"d dynamic tasks: 40 children", case_dynamic_wide},
        {"e outputs along edges", case_outputs_default},
        {"e outputs along edges (slots=2)", case_outputs_threads},
        {"f 100000 tiny tasks", case_many},
        {"g failure skips dependents", case_failure},
        {"g retries", case_retries},
        {"g dependency kinds: after any end, after a failure", case_dep_kinds},
        {"h API errors and repeated runs", case_errors},
        {"i two farms on split communicators", case_split},
        {"j events for every task, ticks", case_events},
        {"j halt from the event callback", case_halt},
        {"j halt, main thread not running tasks", case_halt_threads},
        {"j halt stops exactly; the next run dispatches", case_halt_exact},
        {"j attempts a halt ends are halted, not failed", case_halted_attempts},
        {"j soon halt: running tasks finish", case_halt_soon},
        {"j soon halt made sooner: on_halt then", case_halt_soon_then_now},
        {"k tf_init_local without MPI", case_local},
        {"l chain released on its worker", case_chain_release},
        {"l work stealing off a slow rank", case_steal},
        {"l no stealing with no_steal", case_no_steal},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        mt_run_case(&s, cases[i].name, cases[i].fn);
    int rc = mt_finish(&s);
    MPI_Finalize();
    return rc;
}
