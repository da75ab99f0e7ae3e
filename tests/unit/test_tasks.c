/* Unit tests of rank 0's task table: records, readers of outputs (uses), outputs in parts, their release. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "check.h"
#include "rng.h"
#include "sched.h"
#include "taskfarm_status.h"
#include "taskfarm_task.h"
#include "tasks.h"

/*
 * The table is driven as rank 0's loop drives it: tasks added (sealed, or
 * held in a batch), dispatched and reported done by the scheduler inside
 * it, outputs set from a report's parts, readers ended. tf_sched_check
 * runs after every scheduler step.
 */

/* Distinct bytes, so that a misplaced copy shows. */
static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + 13 * i);
}

static uint32_t add(tf_tasks *tt, const uint32_t *deps, const uint32_t *parts,
                    uint32_t ndeps, const void *in, uint32_t in_len,
                    unsigned flags)
{
    uint32_t t = TF_NONE;
    CHECK_RC(tf_tasks_add(tt, 0, 0, 0, 1, -1, deps, parts, ndeps, in, in_len,
                          flags, &t),
             TF_OK);
    return t;
}

/* Run every ready task to DONE (one worker, room for all of them). */
static bool run_ready(tf_tasks *tt)
{
    tf_sched *s = &tt->sched;
    if (!s->nworkers) {
        uint32_t w;
        if (!CHECK_RC(tf_sched_add_worker(s, 64, 64, &w), TF_OK))
            return false;
    }
    if (!CHECK_RC(tf_sched_dispatch(s), TF_OK))
        return false;
    size_t n;
    const tf_action *a = tf_sched_actions(s, &n);
    uint32_t run[64], nrun = 0;
    for (size_t i = 0; i < n && nrun < 64; i++)
        if (a[i].kind == TF_ACT_RUN)
            run[nrun++] = a[i].task;
    tf_sched_clear_actions(s);
    bool ok = CHECK_SCHED(s);
    for (uint32_t i = 0; i < nrun && ok; i++)
        ok = CHECK_RC(tf_sched_task_done(s, run[i]), TF_OK) && CHECK_SCHED(s);
    tf_sched_clear_actions(s);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Records. */

/*
 * A record keeps its dependencies, the part of each it reads, and its
 * input, which starts at a multiple of 16 in `req`; data_bytes counts
 * them, and dropping a batch gives them back.
 */
static void test_records(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 2), TF_OK))
        return;
    uint8_t in[37];
    fill(in, sizeof in, 1);
    uint32_t a = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    CHECK_TRUE(tt.rec[a].req == NULL);
    CHECK_TRUE(tf_tasks_input(&tt, a) == NULL);
    CHECK_EQ_U(tt.data_bytes, 0);
    uint32_t b = add(&tt, NULL, NULL, 0, in, 5, 0);
    CHECK_TRUE(tf_tasks_input(&tt, b) &&
               memcmp(tf_tasks_input(&tt, b), in, 5) == 0);
    for (uint32_t nd = 1; nd <= 9; nd++) {
        uint32_t deps[9], parts[9], zero[9] = {0};
        for (uint32_t i = 0; i < nd; i++) {
            deps[i] = i % 2 ? a : b;
            parts[i] = (i * 37 + nd) % TF_PARTS_MAX;
        }
        parts[0] = 0;
        size_t bytes0 = tt.data_bytes;
        /* With parts, with all parts 0 (stored as none), and parts NULL. */
        const uint32_t *pv[3] = {parts, zero, NULL};
        for (int k = 0; k < 3; k++) {
            uint32_t len = nd * 3 % sizeof in;
            uint32_t t = add(&tt, deps, pv[k], nd, in, len, 0);
            if (!CHECK_TRUE(t != TF_NONE))
                goto out_with_tasks;
            const tf_trec *r = &tt.rec[t];
            CHECK_EQ_U(r->ndeps, nd);
            CHECK_EQ_U(r->in_len, len);
            CHECK_EQ_U((r->oflags & TF_REC_DEP_PARTS) != 0, k == 0 && nd > 1);
            for (uint32_t i = 0; i < nd; i++) {
                CHECK_EQ_U(tf_tasks_dep(&tt, t, i), deps[i]);
                CHECK_EQ_U(tf_tasks_dep_part(&tt, t, i), k ? 0 : parts[i]);
            }
            const uint8_t *ip = tf_tasks_input(&tt, t);
            if (len && CHECK_TRUE(ip)) {
                CHECK_TRUE(memcmp(ip, in, len) == 0);
                CHECK_MSG((size_t)(ip - r->req) % 16 == 0,
                          "%u deps: input at offset %zu of req", nd,
                          (size_t)(ip - r->req));
                CHECK_EQ_U(tf_tasks_input_offset(r), (size_t)(ip - r->req));
            }
        }
        CHECK_LE_U(bytes0 + 3 * (size_t)nd * 4, tt.data_bytes);
    }
    /* A batch dropped gives back its bytes and its readers. */
    size_t bytes0 = tt.data_bytes;
    uint32_t uses_a = tt.rec[a].uses, uses_b = tt.rec[b].uses,
             n0 = tt.sched.dag.n;
    tt.batching = true;
    uint32_t deps[3] = {a, b, a}, parts[3] = {4, 0, 255};
    uint32_t h1 = add(&tt, deps, parts, 3, in, 30, 0);
    uint32_t h2 = add(&tt, deps, NULL, 2, NULL, 0, 0);
    uint32_t h3 = add(&tt, deps, NULL, 1, NULL, 0, TF_TASKS_NOOP);
    uint32_t hd[1] = {h1};
    add(&tt, hd, NULL, 1, in, 1, 0); /* reads a held task */
    CHECK_STATE(&tt.sched, h1, TF_ST_HELD);
    CHECK_EQ_U(tt.rec[a].uses, uses_a + 3);
    CHECK_EQ_U(tt.rec[b].uses, uses_b + 2);
    CHECK_EQ_U(tt.rec[h1].uses, 1);
    (void)h2;
    (void)h3;
    tf_tasks_drop_held(&tt);
    CHECK_EQ_U(tt.sched.dag.n, n0);
    CHECK_EQ_U(tt.rec[a].uses, uses_a);
    CHECK_EQ_U(tt.rec[b].uses, uses_b);
    CHECK_EQ_U(tt.data_bytes, bytes0);
    tt.batching = false;
    CHECK_SCHED(&tt.sched);
out_with_tasks:
    tf_tasks_free(&tt);
}

/*
 * uses: one per data dependent not yet ended; a dependency listed twice
 * counts twice; no-op tasks never read and do not count.
 */
static void test_uses(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    uint32_t a = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    uint32_t b = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    CHECK_EQ_U(tt.rec[a].uses, 0);
    uint32_t d1[1] = {a}, d2[2] = {a, b}, d3[2] = {a, a};
    add(&tt, d1, NULL, 1, NULL, 0, 0);
    add(&tt, d2, NULL, 2, NULL, 0, 0);
    add(&tt, d3, NULL, 2, NULL, 0, 0);
    uint32_t nop = add(&tt, d2, NULL, 2, NULL, 0, TF_TASKS_NOOP);
    CHECK_EQ_U(tt.rec[a].uses, 4);
    CHECK_EQ_U(tt.rec[b].uses, 1);
    /* Behind a no-op: its dependents read nothing through it either. */
    uint32_t dn[1] = {nop};
    add(&tt, dn, NULL, 1, NULL, 0, 0);
    CHECK_EQ_U(tt.rec[nop].uses, 1);
    CHECK_EQ_U(tt.rec[a].uses, 4);
    tf_tasks_free(&tt);
}

/* ------------------------------------------------------------------------ */
/* Outputs. */

typedef struct away_log {
    uint32_t d[16];
    int holder[16];
    uint32_t n;
} away_log;

static void away_cb(void *u, uint32_t d, int holder)
{
    away_log *l = u;
    if (l->n < 16) {
        l->d[l->n] = d;
        l->holder[l->n] = holder;
    }
    l->n++;
}

/*
 * One part with bytes: kept as it is; part 0 reads it, any other part
 * reads as empty; the bytes are counted, and replaced by a later output.
 */
static void test_output_one(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    uint32_t t = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    uint8_t bytes[100];
    fill(bytes, sizeof bytes, 7);
    const void *buf = (const void *)1;
    uint32_t len = 99;
    CHECK_TRUE(tf_tasks_part(&tt, t, 0, &buf, &len)); /* none yet: empty */
    CHECK_TRUE(buf == NULL && len == 0);
    tf_outpart p = {bytes, 40, false};
    if (!CHECK_RC(tf_tasks_set_output(&tt, t, &p, 1, 3), TF_OK))
        goto out_with_tasks;
    const tf_trec *r = &tt.rec[t];
    CHECK_EQ_U(r->oflags & (TF_OUT_PACKED | TF_OUT_AWAY | TF_OUT_GONE), 0);
    CHECK_EQ_I(r->holder, -1); /* nothing held */
    CHECK_TRUE(tf_tasks_part(&tt, t, 0, &buf, &len));
    CHECK_EQ_U(len, 40);
    CHECK_TRUE(buf && memcmp(buf, bytes, 40) == 0);
    CHECK_TRUE(tf_tasks_part(&tt, t, 1, &buf, &len));
    CHECK_TRUE(buf == NULL && len == 0);
    CHECK_EQ_U(tf_tasks_output_bytes(&tt, t), 40);
    CHECK_EQ_U(tt.out_bytes, 40);
    CHECK_EQ_U(tt.out_peak, 40);
    size_t data0 = tt.data_bytes;
    /* Replaced (a retry's output): the old bytes go. */
    p = (tf_outpart){bytes + 1, 10, true};
    if (!CHECK_RC(tf_tasks_set_output(&tt, t, &p, 1, 3), TF_OK))
        goto out_with_tasks;
    CHECK_EQ_I(r->holder, 3); /* held too (BOTH) */
    CHECK_TRUE(tf_tasks_part(&tt, t, 0, &buf, &len));
    CHECK_TRUE(len == 10 && buf && memcmp(buf, bytes + 1, 10) == 0);
    CHECK_EQ_U(tt.out_bytes, 10);
    CHECK_EQ_U(tt.out_peak, 40);
    CHECK_EQ_U(tt.data_bytes, data0 - 30);
    /* No parts at all, and one empty part. */
    if (CHECK_RC(tf_tasks_set_output(&tt, t, NULL, 0, 3), TF_OK)) {
        CHECK_TRUE(r->out == NULL);
        CHECK_EQ_I(r->holder, -1);
        CHECK_TRUE(tf_tasks_part(&tt, t, 0, &buf, &len) && !buf && !len);
        CHECK_EQ_U(tt.out_bytes, 0);
    }
    p = (tf_outpart){bytes, 0, false};
    if (CHECK_RC(tf_tasks_set_output(&tt, t, &p, 1, 3), TF_OK))
        CHECK_TRUE(tf_tasks_part(&tt, t, 0, &buf, &len) && !buf && !len);
    /* Released: gone, and told to no one (nobody held it). */
    away_log log = {.n = 0};
    tf_tasks_release(&tt, t, away_cb, &log);
    CHECK_EQ_U(log.n, 0);
    CHECK_FALSE(tf_tasks_part(&tt, t, 0, &buf, &len));
    CHECK_TRUE(r->oflags & TF_OUT_GONE);
    CHECK_EQ_U(tt.out_bytes, 0);
out_with_tasks:
    tf_tasks_free(&tt);
}

/*
 * Task i's output length in test_output_cells: 1..32 bytes (a cell), every
 * 7th 33 (a block).
 */
static uint32_t cell_len(uint32_t i)
{
    return i % 7 ? 1 + i % TF_TASKS_CELL : TF_TASKS_CELL + 1;
}

/*
 * Outputs of up to TF_TASKS_CELL bytes live in cells of the table's
 * chunks: more tasks than a chunk has cells, each output read back
 * exactly (and aligned for any type) after every other was set; replaced
 * by a larger one (a block) and back; released cells used again, so that
 * a second round takes no new chunk.
 */
static void test_output_cells(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    enum { N = 3 * TF_TASKS_CHUNK / TF_TASKS_CELL };
    static uint32_t ids[N];
    uint8_t bytes[64];
    for (uint32_t i = 0; i < N; i++)
        ids[i] = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    for (int round = 0; round < 2; round++) {
        void *chunks = tt.chunks;
        for (uint32_t i = 0; i < N; i++) {
            uint32_t n = cell_len(i);
            fill(bytes, n, (uint8_t)(i + round));
            tf_outpart p = {bytes, n, false};
            if (!CHECK_RC(tf_tasks_set_output(&tt, ids[i], &p, 1, -1), TF_OK))
                goto out_with_tasks;
            CHECK_EQ_U(!!(tt.rec[ids[i]].oflags & TF_OUT_CELL),
                       n <= TF_TASKS_CELL);
        }
        if (round == 1)
            CHECK_TRUE(tt.chunks == chunks); /* the released cells served */
        bool same = true;
        for (uint32_t i = 0; i < N; i++) {
            uint32_t n = cell_len(i);
            fill(bytes, n, (uint8_t)(i + round));
            const void *buf = NULL;
            uint32_t len = 0;
            CHECK_TRUE(tf_tasks_part(&tt, ids[i], 0, &buf, &len));
            same &= len == n && buf && memcmp(buf, bytes, n) == 0 &&
                    (uintptr_t)buf % 16 == 0;
        }
        CHECK_TRUE(same);
        /* A cell's output replaced by a block's, and back again. */
        fill(bytes, 40, 99);
        tf_outpart big = {bytes, 40, false}, small = {bytes, 8, false};
        CHECK_RC(tf_tasks_set_output(&tt, ids[1], &big, 1, -1), TF_OK);
        CHECK_FALSE(tt.rec[ids[1]].oflags & TF_OUT_CELL);
        CHECK_RC(tf_tasks_set_output(&tt, ids[1], &small, 1, -1), TF_OK);
        CHECK_TRUE(tt.rec[ids[1]].oflags & TF_OUT_CELL);
        away_log log = {.n = 0};
        for (uint32_t i = 0; i < N; i++)
            tf_tasks_release(&tt, ids[i], away_cb, &log);
        CHECK_EQ_U(tt.out_bytes, 0);
    }
out_with_tasks:
    tf_tasks_free(&tt);
    CHECK_TRUE(tt.chunks == NULL && tt.free_cells == NULL);
}

/* Cells on the free list, walked: what ncells_free must say. */
static uint32_t free_cells(const tf_tasks *tt)
{
    uint32_t n = 0;
    for (void *c = tt->free_cells; c; memcpy(&c, c, sizeof c))
        n++;
    return n;
}

/*
 * Cells for results are cut while tasks are added, not when the results
 * come in (a chunk's first writes are page faults): the results of tasks
 * added since take no new chunk; the count kept matches the free list;
 * and tasks whose results never come hold at most TF_TASKS_CELLS_AHEAD
 * cells (and the rest of one chunk) ready for nothing.
 */
static void test_cells_ahead(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    enum { PER = TF_TASKS_CHUNK / TF_TASKS_CELL - 1, K = PER + PER / 2 };
    static uint32_t ids[K];
    for (uint32_t i = 0; i < K; i++)
        ids[i] = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    CHECK_TRUE(tt.ncells_free >= K);
    CHECK_EQ_U(free_cells(&tt), tt.ncells_free);
    void *chunks = tt.chunks;
    uint8_t bytes[TF_TASKS_CELL];
    for (uint32_t i = 0; i < K; i++) {
        fill(bytes, sizeof bytes, (uint8_t)i);
        tf_outpart p = {bytes, sizeof bytes, false};
        if (!CHECK_RC(tf_tasks_set_output(&tt, ids[i], &p, 1, -1), TF_OK))
            goto out_with_tasks;
    }
    CHECK_TRUE(tt.chunks == chunks);
    CHECK_EQ_U(free_cells(&tt), tt.ncells_free);
    away_log log = {.n = 0};
    for (uint32_t i = 0; i < K; i += 2)
        tf_tasks_release(&tt, ids[i], away_cb, &log);
    CHECK_EQ_U(free_cells(&tt), tt.ncells_free);
    /* Many tasks with no result yet: a bounded reserve, not a cell each. */
    for (uint32_t i = 0; i < 2 * TF_TASKS_CELLS_AHEAD; i++)
        add(&tt, NULL, NULL, 0, NULL, 0, 0);
    CHECK_TRUE(tt.ncells_free >= TF_TASKS_CELLS_AHEAD);
    CHECK_TRUE(tt.ncells_free <= TF_TASKS_CELLS_AHEAD + PER);
    CHECK_EQ_U(free_cells(&tt), tt.ncells_free);
out_with_tasks:
    tf_tasks_free(&tt);
}

/*
 * Several parts, some with bytes, some held away only: the packed form,
 * each part with bytes at a multiple of 16 in rank 0's copy (aligned for
 * any type), read back exactly; lengths of held parts known; parts past
 * the last read as empty.
 */
static void test_output_packed(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    static uint8_t bytes[TF_PARTS_MAX][64];
    static tf_outpart p[TF_PARTS_MAX];
    tf_rng rng = tf_rng_seeded(5);
    uint32_t t = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    for (uint32_t np = 2; np <= TF_PARTS_MAX; np += np < 8 ? 1 : 61) {
        uint64_t total = 0;
        bool any_held = false;
        for (uint32_t i = 0; i < np; i++) {
            uint32_t kind = tf_rng_below(&rng, 4), len = tf_rng_below(&rng, 65);
            fill(bytes[i], sizeof bytes[i], (uint8_t)(i + np));
            /* 0: inline, 1: held only, 2: both, 3: empty inline */
            p[i] = (tf_outpart){kind == 1 ? NULL : bytes[i],
                                kind == 3 ? 0 : len, kind == 1 || kind == 2};
            if (kind == 1 && !p[i].len)
                p[i].len = 1000;
            any_held |= p[i].held;
            total += p[i].len;
        }
        if (!CHECK_RC(tf_tasks_set_output(&tt, t, p, np, 4), TF_OK))
            break;
        const tf_trec *r = &tt.rec[t];
        CHECK_TRUE(r->oflags & TF_OUT_PACKED);
        CHECK_EQ_I(r->holder, any_held ? 4 : -1);
        CHECK_EQ_U(tf_tasks_output_bytes(&tt, t), total);
        CHECK_EQ_U(tt.out_bytes, r->out_len);
        for (uint32_t i = 0; i < np; i++) {
            const void *buf;
            uint32_t len;
            if (!CHECK_TRUE(tf_tasks_part(&tt, t, i, &buf, &len)) ||
                !CHECK_MSG(len == p[i].len,
                           "%u parts: part %u len %u, want "
                           "%u",
                           np, i, len, p[i].len))
                goto out_with_tasks;
            if (!p[i].bytes || !p[i].len) {
                CHECK_MSG(buf == NULL, "%u parts: part %u has bytes", np, i);
                continue;
            }
            if (!CHECK_TRUE(buf) ||
                !CHECK_MSG(memcmp(buf, p[i].bytes, len) == 0,
                           "%u parts: part %u other bytes", np, i) ||
                !CHECK_MSG(((const uint8_t *)buf - r->out) % 16 == 0,
                           "%u parts: part %u at offset %td", np, i,
                           (const uint8_t *)buf - r->out) ||
                !CHECK_MSG((uintptr_t)buf % _Alignof(max_align_t) == 0,
                           "%u parts: part %u at %p", np, i, buf))
                goto out_with_tasks;
            CHECK_TRUE((const uint8_t *)buf + len <= r->out + r->out_len);
        }
        const void *buf;
        uint32_t len;
        CHECK_TRUE(tf_tasks_part(&tt, t, np, &buf, &len) && !buf && !len);
        CHECK_TRUE(tf_tasks_part(&tt, t, TF_PARTS_MAX + 7, &buf, &len) &&
                   !buf && !len);
    }
    /* One part held away only: packed too, so that its length is kept. */
    tf_outpart one = {NULL, 77, true};
    if (CHECK_RC(tf_tasks_set_output(&tt, t, &one, 1, 2), TF_OK)) {
        const void *buf;
        uint32_t len;
        CHECK_TRUE(tt.rec[t].oflags & TF_OUT_PACKED);
        CHECK_TRUE(tt.rec[t].oflags & TF_OUT_AWAY);
        CHECK_TRUE(tf_tasks_part(&tt, t, 0, &buf, &len) && !buf && len == 77);
        CHECK_EQ_U(tf_tasks_output_bytes(&tt, t), 77);
    }
out_with_tasks:
    tf_tasks_free(&tt);
}

/* A stored output taken over on resume: kept, readable, counted. */
static void test_take_output(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    uint32_t a = add(&tt, NULL, NULL, 0, NULL, 0, 0),
             b = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    uint8_t bytes[3][20];
    for (int i = 0; i < 3; i++)
        fill(bytes[i], 20, (uint8_t)(50 * i));
    tf_outpart p[3] = {
        {bytes[0], 20, false}, {bytes[1], 3, false}, {bytes[2], 17, false}};
    if (!CHECK_RC(tf_tasks_set_output(&tt, a, p, 3, -1), TF_OK))
        goto out_with_tasks;
    /* b takes a copy of a's packed blob, as the checkpoint would give it. */
    uint32_t len = tt.rec[a].out_len;
    uint8_t *blob = malloc(len);
    if (!CHECK_TRUE(blob))
        goto out_with_tasks;
    memcpy(blob, tt.rec[a].out, len);
    size_t out0 = tt.out_bytes;
    tf_tasks_take_output(&tt, b, blob, len, true);
    CHECK_TRUE(tt.rec[b].oflags & TF_OUT_KEEP);
    CHECK_EQ_I(tt.rec[b].holder, -1);
    CHECK_EQ_U(tt.out_bytes, out0 + len);
    for (uint32_t i = 0; i < 3; i++) {
        const void *buf;
        uint32_t l;
        CHECK_TRUE(tf_tasks_part(&tt, b, i, &buf, &l) && l == p[i].len && buf &&
                   memcmp(buf, p[i].bytes, l) == 0);
    }
    uint8_t *plain = malloc(6);
    if (CHECK_TRUE(plain)) {
        memcpy(plain, "plain!", 6);
        tf_tasks_take_output(&tt, b, plain, 6, false);
        const void *buf;
        uint32_t l;
        CHECK_TRUE(tf_tasks_part(&tt, b, 0, &buf, &l) && l == 6 &&
                   memcmp(buf, "plain!", 6) == 0);
        CHECK_EQ_U(tt.out_bytes, out0 + 6);
    }
out_with_tasks:
    tf_tasks_free(&tt);
}

/*
 * An output is released when its last reader ends: the holder of its
 * parts is told (away), rank 0's copy goes, it reads as gone. Readers that
 * have not ended keep it; a no-op reads nothing.
 */
static void test_ended_release(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    uint32_t a = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    uint32_t da[1] = {a}, p1[1] = {1};
    uint32_t b = add(&tt, da, NULL, 1, NULL, 0, 0);
    uint32_t c = add(&tt, da, p1, 1, NULL, 0, 0);
    uint32_t nop = add(&tt, da, NULL, 1, NULL, 0, TF_TASKS_NOOP);
    CHECK_EQ_U(tt.rec[a].uses, 2);
    if (!run_ready(&tt))
        goto out_with_tasks;
    uint8_t bytes[8];
    fill(bytes, 8, 3);
    /* Part 0 inline and held (both), part 1 held by rank 3 only. */
    tf_outpart p[2] = {{bytes, 8, true}, {NULL, 5000, true}};
    if (!CHECK_RC(tf_tasks_set_output(&tt, a, p, 2, 3), TF_OK))
        goto out_with_tasks;
    CHECK_STATE(&tt.sched, a, TF_ST_DONE);
    size_t out0 = tt.out_bytes;
    CHECK_TRUE(out0 > 0);
    if (!run_ready(&tt)) /* b, c run; the no-op completes with a */
        goto out_with_tasks;
    CHECK_STATE(&tt.sched, nop, TF_ST_DONE);
    away_log log = {.n = 0};
    tf_tasks_ended(&tt, b, away_cb, &log);
    CHECK_EQ_U(log.n, 0);
    CHECK_EQ_U(tt.rec[a].uses, 1);
    const void *buf;
    uint32_t len;
    CHECK_TRUE(tf_tasks_part(&tt, a, 0, &buf, &len) && len == 8);
    tf_tasks_ended(&tt, c, away_cb, &log);
    CHECK_EQ_U(tt.rec[a].uses, 0);
    if (CHECK_EQ_U(log.n, 1)) {
        CHECK_EQ_U(log.d[0], a);
        CHECK_EQ_I(log.holder[0], 3);
    }
    CHECK_FALSE(tf_tasks_part(&tt, a, 0, &buf, &len));
    CHECK_TRUE(tt.rec[a].oflags & TF_OUT_GONE);
    CHECK_EQ_I(tt.rec[a].holder, -1);
    CHECK_EQ_U(tt.out_bytes, 0);
    CHECK_EQ_U(tt.out_peak, out0);
    /* Ending more never underflows nor tells anyone twice. */
    tf_tasks_ended(&tt, c, away_cb, &log);
    tf_tasks_ended(&tt, b, NULL, NULL);
    CHECK_EQ_U(log.n, 1);
    CHECK_EQ_U(tt.rec[a].uses, 0);
out_with_tasks:
    tf_tasks_free(&tt);
}

/*
 * A kept output (TF_OUT_KEEP, which rank 0 sets at dispatch for
 * TF_TASK_KEEP, keep_outputs or a result) outlives its readers: when the
 * last ends, only the holder's copy, kept for them, is let go.
 */
static void test_ended_keep(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    uint32_t k = add(&tt, NULL, NULL, 0, NULL, 0, TF_TASKS_KEEP);
    CHECK_TRUE(tt.rec[k].oflags & TF_OUT_WANT_KEEP);
    uint32_t dk[1] = {k};
    uint32_t r1 = add(&tt, dk, NULL, 1, NULL, 0, 0);
    if (!run_ready(&tt))
        goto out_with_tasks;
    tt.rec[k].oflags |= TF_OUT_KEEP; /* as output_flags in src/net does */
    uint8_t bytes[24];
    fill(bytes, sizeof bytes, 9);
    tf_outpart p[2] = {{bytes, 24, true}, {bytes + 4, 4, true}};
    if (!CHECK_RC(tf_tasks_set_output(&tt, k, p, 2, 5), TF_OK) ||
        !run_ready(&tt))
        goto out_with_tasks;
    away_log log = {.n = 0};
    tf_tasks_ended(&tt, r1, away_cb, &log);
    if (CHECK_EQ_U(log.n, 1)) {
        CHECK_EQ_U(log.d[0], k);
        CHECK_EQ_I(log.holder[0], 5);
    }
    CHECK_EQ_I(tt.rec[k].holder, -1);
    CHECK_FALSE(tt.rec[k].oflags & TF_OUT_GONE);
    for (uint32_t i = 0; i < 2; i++) {
        const void *buf;
        uint32_t len;
        CHECK_TRUE(tf_tasks_part(&tt, k, i, &buf, &len) && len == p[i].len &&
                   buf && memcmp(buf, p[i].bytes, len) == 0);
    }
    /* A later reader of the kept output ends: nobody to tell any more. */
    uint32_t r2 = add(&tt, dk, NULL, 1, NULL, 0, 0);
    if (!run_ready(&tt))
        goto out_with_tasks;
    tf_tasks_ended(&tt, r2, away_cb, &log);
    CHECK_EQ_U(log.n, 1);
    const void *buf;
    uint32_t len;
    CHECK_TRUE(tf_tasks_part(&tt, k, 0, &buf, &len) && buf && len == 24);
out_with_tasks:
    tf_tasks_free(&tt);
}

/*
 * A reader skipped because another of its dependencies failed ends too;
 * the output it would have read is released once nothing else reads it.
 */
static void test_ended_skipped_reader(void)
{
    tf_tasks tt;
    if (!CHECK_RC(tf_tasks_init(&tt, 0), TF_OK))
        return;
    uint32_t a = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    uint32_t f = add(&tt, NULL, NULL, 0, NULL, 0, 0);
    uint32_t d[2] = {a, f};
    uint32_t r = add(&tt, d, NULL, 2, NULL, 0, 0);
    tf_sched *s = &tt.sched;
    uint32_t w;
    if (!CHECK_RC(tf_sched_add_worker(s, 4, 4, &w), TF_OK) ||
        !CHECK_RC(tf_sched_dispatch(s), TF_OK))
        goto out_with_tasks;
    tf_sched_clear_actions(s);
    tf_outpart p = {"abc", 3, true};
    CHECK_RC(tf_tasks_set_output(&tt, a, &p, 1, 2), TF_OK);
    CHECK_RC(tf_sched_task_done(s, a), TF_OK);
    CHECK_RC(tf_sched_task_failed(s, f, TF_EIO), TF_OK); /* no retries */
    tf_sched_clear_actions(s);
    CHECK_SCHED(s);
    CHECK_STATE(s, r, TF_ST_SKIPPED);
    away_log log = {.n = 0};
    tf_tasks_ended(&tt, r, away_cb, &log);
    if (CHECK_EQ_U(log.n, 1))
        CHECK_TRUE(log.d[0] == a && log.holder[0] == 2);
    CHECK_TRUE(tt.rec[a].oflags & TF_OUT_GONE);
    CHECK_EQ_U(tt.rec[f].uses, 0);
out_with_tasks:
    tf_tasks_free(&tt);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"records: dependencies, parts, aligned input", test_records},
        {"uses: readers counted", test_uses},
        {"an output of one part", test_output_one},
        {"outputs in parts (packed), aligned", test_output_packed},
        {"small outputs in cells, used again", test_output_cells},
        {"cells cut as tasks are added, a bounded reserve", test_cells_ahead},
        {"a stored output taken over", test_take_output},
        {"the last reader ends: released, holder told", test_ended_release},
        {"kept outputs outlive their readers", test_ended_keep},
        {"a skipped reader ends too", test_ended_skipped_reader},
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("tasks", NULL, NULL);
    for (size_t i = 0; suite && i < sizeof tests / sizeof *tests; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            suite = NULL;
    if (!suite) {
        fprintf(stderr, "test_tasks: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    return check_run();
}
