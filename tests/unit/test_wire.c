/* Unit tests of the wire codec: round trips, alignment, overruns, whole messages, and the layouts against docs/architecture.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "check.h"
#include "store.h"
#include "taskfarm_task.h"
#include "wire.h"

static const char *doc_path = "docs/architecture.md";

/*
 * Every record kind, generated from its field list as the codec is: each
 * field gets a value of its own (no two fields alike, every byte of a wide
 * field set), the record is encoded, its size checked, decoded, compared
 * field by field, and refused when cut short at any byte.
 */
#define RT_SET_(type, name)                                                    \
    v = v * 6364136223846793005ull + 1442695040888963407ull;                   \
    r.name = (TF_WIRE_T_##type)(v >> 1);
#define RT_CMP_(type, name)                                                    \
    CHECK_MSG(r2.name == r.name,                                               \
              "record %s, field %s: decoded other than encoded", kind, #name);
#define RT_SUM_(type, name) +(size_t)sizeof(TF_WIRE_T_##type)
#define RT_ONE_(NAME, name, LIST)                                              \
    {                                                                          \
        const char *kind = #NAME;                                              \
        tf_wire_##name r, r2;                                                  \
        memset(&r, 0, sizeof r);                                               \
        memset(&r2, 0, sizeof r2);                                             \
        LIST(RT_SET_)                                                          \
        b.n = 0;                                                               \
        tf_wire_put_##name(&b, &r);                                            \
        CHECK_MSG(b.n == (size_t)TF_WIRE_##NAME##_SIZE &&                      \
                      b.n == 0 LIST(RT_SUM_),                                  \
                  "record %s: %zu bytes encoded, size %d", kind, b.n,          \
                  TF_WIRE_##NAME##_SIZE);                                      \
        tf_rd rd = tf_rd_make(b.p, b.n);                                       \
        CHECK_MSG(tf_wire_get_##name(&rd, &r2) && rd.off == b.n,               \
                  "record %s: whole, not decoded whole", kind);                \
        LIST(RT_CMP_)                                                          \
        for (size_t cut = 0; cut < b.n; cut++) {                               \
            rd = tf_rd_make(b.p, cut);                                         \
            if (!CHECK_MSG(!tf_wire_get_##name(&rd, &r2) && !rd.ok,            \
                           "record %s cut to %zu bytes accepted", kind, cut))  \
                break;                                                         \
        }                                                                      \
        nkinds++;                                                              \
    }

static void test_round_trip(void)
{
    tf_buf b = {0};
    if (!CHECK_RC(tf_buf_reserve(&b, 256), 0))
        return;
    uint64_t v = 42;
    size_t nkinds = 0;
    TF_WIRE_RECORDS(RT_ONE_)
    CHECK_EQ_U(nkinds, 17);
    tf_buf_free(&b);
}

/* The sizes the doc and the peers count on. */
static void test_sizes(void)
{
    CHECK_EQ_U(TF_WIRE_BATCH_SIZE, 1 + 4 + 4);
    CHECK_EQ_U(TF_WIRE_TASK_SIZE, 4 + 4 + 8 + 2 + 1 + 1 + 4 + 4);
    CHECK_EQ_U(TF_WIRE_DEP_SIZE, 4);
    CHECK_EQ_U(TF_WIRE_ANCHOR_SIZE, 4 + 4);
    CHECK_EQ_U(TF_WIRE_REMOTE_SIZE, 4 * 4);
    CHECK_EQ_U(TF_WIRE_DONE_SIZE, 1 + 4 + 1 + 4 + 8 + 8 + 2 + 2);
    CHECK_EQ_U(TF_WIRE_PART_SIZE, 4 + 1);
    CHECK_EQ_U(TF_WIRE_SUBMIT_SIZE, 1 + 8 + 8 + 4 + 4 + 2 + 2 + 4 + 4);
    CHECK_EQ_U(TF_WIRE_FETCH_SIZE, 4 + 4);
    CHECK_EQ_U(TF_WIRE_LOST_SIZE, 4);
    /* A DATA message is a store block as it is: the record is its header. */
    CHECK_EQ_U(TF_WIRE_DATA_SIZE, TF_STORE_HDR);
    CHECK_EQ_U(TF_WIRE_DATA_SIZE % TF_WIRE_ALIGN, 0);
    CHECK_TRUE(TF_WIRE_INLINE_MAX < TF_WIRE_REMOTE &&
               TF_WIRE_REMOTE < TF_WIRE_ANCHOR);
}

/* Distinct bytes, so that a misplaced copy shows. */
static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + 7 * i);
}

/*
 * Aligned bytes start at a multiple of TF_WIRE_ALIGN from the message's
 * start whatever came before them, the padding is zero, and the room the
 * encoders promise (tf_wire_aligned_size, tf_wire_dep_size) is enough from
 * any offset.
 */
static void test_aligned(void)
{
    tf_buf b = {0};
    if (!CHECK_RC(tf_buf_reserve(&b, 4096), 0))
        return;
    uint8_t src[64], junk[2 * TF_WIRE_ALIGN];
    fill(src, sizeof src, 1);
    fill(junk, sizeof junk, 99);
    for (size_t pre = 0; pre < 2 * TF_WIRE_ALIGN; pre++) {
        for (size_t len = 0; len <= 33; len++) {
            b.n = 0;
            memset(b.p, 0xAA, 256);
            tf_buf_put(&b, junk, pre); /* anything before */
            tf_wire_put_aligned(&b, src, len);
            size_t used = b.n - pre;
            CHECK_LE_U(used, tf_wire_aligned_size(len));
            if (!len) {
                CHECK_EQ_U(used, 0);
                tf_rd rd = tf_rd_make(b.p, b.n);
                tf_rd_take(&rd, pre);
                CHECK_TRUE(tf_wire_take_aligned(&rd, 0) == NULL && rd.ok);
                continue;
            }
            size_t at = b.n - len;
            if (!CHECK_MSG(at % TF_WIRE_ALIGN == 0 && at >= pre &&
                               at - pre < TF_WIRE_ALIGN,
                           "after %zu bytes, %zu aligned bytes at offset %zu",
                           pre, len, at))
                goto out_with_buf;
            for (size_t i = pre; i < at; i++)
                if (!CHECK_MSG(b.p[i] == 0, "padding byte %zu is %u", i,
                               b.p[i]))
                    goto out_with_buf;
            CHECK_TRUE(memcmp(b.p + at, src, len) == 0);
            tf_rd rd = tf_rd_make(b.p, b.n);
            tf_rd_take(&rd, pre);
            const uint8_t *got = tf_wire_take_aligned(&rd, len);
            CHECK_TRUE(got == b.p + at && rd.off == b.n);
            /* One byte short anywhere in the padding or the bytes: refused. */
            rd = tf_rd_make(b.p, b.n - 1);
            tf_rd_take(&rd, pre);
            CHECK_TRUE(tf_wire_take_aligned(&rd, len) == NULL && !rd.ok);
        }
        /* Every kind of dependency entry fits the room tf_wire_dep_size gives.
         */
        for (uint32_t len = 0; len <= 40; len += 5) {
            b.n = pre;
            tf_wire_put_output(&b, src, len);
            CHECK_LE_U(b.n - pre, tf_wire_dep_size(len));
        }
        b.n = pre;
        tf_wire_put_anchor_dep(&b, 1, 2);
        CHECK_LE_U(b.n - pre, tf_wire_dep_size(0));
        b.n = pre;
        tf_wire_put_remote_dep(&b, &(tf_wire_remote){1, 2, 3, 1000000});
        CHECK_LE_U(b.n - pre, tf_wire_dep_size(0));
    }
out_with_buf:
    tf_buf_free(&b);
}

/* A TASK with its input and one dependency entry of each kind. */
static void put_task_all_kinds(tf_buf *b, uint32_t index, const uint8_t *in,
                               uint32_t in_len, const uint8_t *out,
                               uint32_t out_len)
{
    tf_wire_put_task(b,
                     &(tf_wire_task){index, 3, 0x123456789ull + index, 2, 1,
                                     TF_WIRE_SEND | TF_WIRE_DEPS, in_len, 5});
    tf_wire_put_aligned(b, in, in_len);
    tf_wire_put_output(b, out, out_len);
    tf_wire_put_anchor_dep(b, index - 1, 7);
    tf_wire_put_remote_dep(b, &(tf_wire_remote){5, 11, TF_PARTS_MAX - 1, 77});
    tf_wire_put_output(b, NULL, 0);
    tf_wire_put_output(b, out, 1);
}

/* Decode what put_task_all_kinds wrote; every check of it. */
static bool get_task_all_kinds(tf_rd *rd, const uint8_t *msg, uint32_t index,
                               const uint8_t *in, uint32_t in_len,
                               const uint8_t *out, uint32_t out_len)
{
    tf_wire_task t;
    if (!CHECK_TRUE(tf_wire_get_task(rd, &t)) || !CHECK_EQ_U(t.index, index) ||
        !CHECK_EQ_U(t.id, 0x123456789ull + index) ||
        !CHECK_EQ_U(t.flags, TF_WIRE_SEND | TF_WIRE_DEPS) ||
        !CHECK_EQ_U(t.input_len, in_len) || !CHECK_EQ_U(t.ndeps, 5))
        return false;
    const uint8_t *ip = tf_wire_take_aligned(rd, t.input_len);
    if (in_len && (!CHECK_TRUE(ip && memcmp(ip, in, in_len) == 0) ||
                   !CHECK_MSG((size_t)(ip - msg) % TF_WIRE_ALIGN == 0,
                              "input of task %u at offset %zu", index,
                              (size_t)(ip - msg))))
        return false;
    tf_wire_input x;
    bool ok =
        CHECK_TRUE(tf_wire_get_input(rd, &x)) && CHECK_EQ_U(x.kind, 0) &&
        CHECK_EQ_U(x.len, out_len) &&
        CHECK_TRUE(out_len ? x.buf && !memcmp(x.buf, out, out_len) : !x.buf) &&
        CHECK_MSG(!x.buf ||
                      (size_t)((const uint8_t *)x.buf - msg) % TF_WIRE_ALIGN ==
                          0,
                  "inline output of task %u at offset %zu", index,
                  (size_t)((const uint8_t *)x.buf - msg));
    ok = ok && CHECK_TRUE(tf_wire_get_input(rd, &x)) &&
         CHECK_EQ_U(x.kind, TF_WIRE_ANCHOR) &&
         CHECK_EQ_U(x.anchor.index, index - 1) &&
         CHECK_EQ_U(x.anchor.part, 7) && CHECK_TRUE(x.buf == NULL);
    ok = ok && CHECK_TRUE(tf_wire_get_input(rd, &x)) &&
         CHECK_EQ_U(x.kind, TF_WIRE_REMOTE) && CHECK_EQ_U(x.remote.rank, 5) &&
         CHECK_EQ_U(x.remote.index, 11) &&
         CHECK_EQ_U(x.remote.part, TF_PARTS_MAX - 1) &&
         CHECK_EQ_U(x.remote.len, 77);
    ok = ok && CHECK_TRUE(tf_wire_get_input(rd, &x)) && CHECK_EQ_U(x.kind, 0) &&
         CHECK_EQ_U(x.len, 0) && CHECK_TRUE(x.buf == NULL);
    ok = ok && CHECK_TRUE(tf_wire_get_input(rd, &x)) && CHECK_EQ_U(x.len, 1) &&
         CHECK_TRUE(x.buf && *(const uint8_t *)x.buf == out[0]) &&
         CHECK_EQ_U((size_t)((const uint8_t *)x.buf - msg) % TF_WIRE_ALIGN, 0);
    return ok;
}

/* A TASK record with its input and every kind of entry, read back. */
static void test_task_record(void)
{
    tf_buf b = {0};
    if (!CHECK_RC(tf_buf_reserve(&b, 1024), 0))
        return;
    uint8_t in[23], out[37];
    fill(in, sizeof in, 3);
    fill(out, sizeof out, 9);
    /* Start it at every offset modulo the alignment. */
    for (size_t pre = 0; pre < TF_WIRE_ALIGN; pre++) {
        b.n = 0;
        memset(b.p, 0x55, pre);
        b.n = pre;
        put_task_all_kinds(&b, 40, in, sizeof in, out, sizeof out);
        tf_rd rd = tf_rd_make(b.p, b.n);
        tf_rd_take(&rd, pre);
        if (!get_task_all_kinds(&rd, b.p, 40, in, sizeof in, out, sizeof out))
            break;
        CHECK_FALSE(tf_rd_more(&rd));
        /* skip_task walks exactly the record and counts its entries. */
        rd = tf_rd_make(b.p, b.n);
        tf_rd_take(&rd, pre);
        size_t nd = 3;
        CHECK_TRUE(tf_wire_skip_task(&rd, &nd));
        CHECK_EQ_U(nd, 3 + 5);
        CHECK_EQ_U(rd.off, b.n);
        /* Cut short at any byte: refused, never a read past the end. */
        for (size_t cut = pre; cut < b.n; cut++) {
            rd = tf_rd_make(b.p, cut);
            tf_rd_take(&rd, pre);
            nd = 0;
            if (!CHECK_MSG(!tf_wire_skip_task(&rd, &nd),
                           "task record cut to %zu of %zu bytes accepted", cut,
                           b.n))
                break;
        }
    }
    /* A dependency claiming more bytes than the message holds. */
    b.n = 0;
    tf_wire_put_task(&b, &(tf_wire_task){1, 0, 1, 1, 1, 0, 0, 1});
    tf_wire_put_dep(&b, &(tf_wire_dep){0x7fffffff});
    tf_buf_put(&b, out, 16);
    tf_rd rd = tf_rd_make(b.p, b.n);
    size_t nd = 0;
    CHECK_FALSE(tf_wire_skip_task(&rd, &nd));
    /* An input longer than the message. */
    b.n = 0;
    tf_wire_put_task(&b,
                     &(tf_wire_task){1, 0, 1, 1, 1, 0, TF_WIRE_INLINE_MAX, 0});
    rd = tf_rd_make(b.p, b.n);
    CHECK_FALSE(tf_wire_skip_task(&rd, &nd));
    tf_buf_free(&b);
}

/*
 * References that would mean something else, or name a part no task may
 * set, are refused: an anchor to index TF_WIRE_ANCHOR (which reads as "no
 * anchor", found by fuzz_wire), and a part of TF_PARTS_MAX or more in an
 * anchor or a remote reference.
 */
static void test_bad_references(void)
{
    static const struct {
        bool remote;
        uint32_t index, part;
        bool ok;
    } cases[] = {
        {false, 0, 0, true},
        {false, TF_WIRE_ANCHOR - 1, TF_PARTS_MAX - 1, true},
        {false, TF_WIRE_ANCHOR, 0, false},
        {false, 3, TF_PARTS_MAX, false},
        {false, 3, UINT32_MAX, false},
        {false, TF_WIRE_ANCHOR, TF_PARTS_MAX, false},
        {true, TF_WIRE_ANCHOR, TF_PARTS_MAX - 1, true},
        {true, 3, TF_PARTS_MAX, false},
        {true, 3, UINT32_MAX, false},
    };
    tf_buf b = {0};
    if (!CHECK_RC(tf_buf_reserve(&b, 256), 0))
        return;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* The entry alone. */
        b.n = 0;
        if (cases[i].remote)
            tf_wire_put_remote_dep(
                &b, &(tf_wire_remote){2, cases[i].index, cases[i].part, 9});
        else
            tf_wire_put_anchor_dep(&b, cases[i].index, cases[i].part);
        tf_rd rd = tf_rd_make(b.p, b.n);
        tf_wire_input x;
        CHECK_MSG(tf_wire_get_input(&rd, &x) == cases[i].ok,
                  "case %zu: %s index %u part %u %s", i,
                  cases[i].remote ? "remote" : "anchor", cases[i].index,
                  cases[i].part, cases[i].ok ? "refused" : "accepted");
        CHECK_EQ_U(rd.ok, cases[i].ok);
        /* The same entry in a batch: the whole message stands or falls. */
        b.n = 0;
        tf_wire_put_batch(&b, &(tf_wire_batch){.ntasks = 1});
        tf_wire_put_task(&b, &(tf_wire_task){4, 0, 4, 1, 1, 0, 0, 1});
        if (cases[i].remote)
            tf_wire_put_remote_dep(
                &b, &(tf_wire_remote){2, cases[i].index, cases[i].part, 9});
        else
            tf_wire_put_anchor_dep(&b, cases[i].index, cases[i].part);
        tf_wire_batch hd;
        size_t nt, nd;
        CHECK_MSG(tf_wire_scan_batch(b.p, b.n, &hd, &nt, &nd) == cases[i].ok,
                  "case %zu: a batch with it %s", i,
                  cases[i].ok ? "refused" : "accepted");
    }
    tf_buf_free(&b);
}

/*
 * A TASKS message as rank 0 builds it: header first with zero counts,
 * tasks, then the frees trailing, then the counts sealed in. The frees
 * are 1000 + i.
 */
static void build_batch(tf_buf *b, uint32_t nfree, const uint8_t *in,
                        const uint8_t *out)
{
    b->n = 0;
    tf_wire_put_batch(b, &(tf_wire_batch){.flags = 0});
    put_task_all_kinds(b, 20, in, 13, out, 21);
    tf_wire_put_task(b, &(tf_wire_task){21, 0, 21, 1, 1, 0, 0, 0});
    put_task_all_kinds(b, 22, in, 0, out, 0);
    for (uint32_t i = 0; i < nfree; i++)
        tf_buf_put_u32(b, 1000 + i);
    tf_wire_seal_batch(b->p, TF_WIRE_DRY, 3, nfree);
}

/*
 * A whole batch: validated and counted before use, decoded record by
 * record in place with every aligned byte at its offset; refused when cut
 * short anywhere, with a byte too many, or with counts that do not match.
 */
static void test_batch(void)
{
    tf_buf b = {0};
    if (!CHECK_RC(tf_buf_reserve(&b, 4096), 0))
        return;
    uint8_t in[13], out[21];
    fill(in, sizeof in, 5);
    fill(out, sizeof out, 11);
    for (uint32_t nfree = 0; nfree < 3; nfree++) {
        build_batch(&b, nfree, in, out);
        tf_wire_batch hd;
        memset(&hd, 0xFF, sizeof hd);
        size_t nt = 99, nd = 99;
        if (!CHECK_TRUE(tf_wire_scan_batch(b.p, b.n, &hd, &nt, &nd)))
            break;
        CHECK_EQ_U(hd.flags, TF_WIRE_DRY);
        CHECK_EQ_U(hd.ntasks, 3);
        CHECK_EQ_U(hd.nfree, nfree);
        CHECK_EQ_U(nt, 3);
        CHECK_EQ_U(nd, 10);
        /* Decoded as the worker does. */
        tf_rd rd = tf_rd_make(b.p, b.n);
        CHECK_TRUE(tf_wire_get_batch(&rd, &hd));
        get_task_all_kinds(&rd, b.p, 20, in, 13, out, 21);
        tf_wire_task t;
        CHECK_TRUE(tf_wire_get_task(&rd, &t));
        CHECK_EQ_U(t.index, 21);
        get_task_all_kinds(&rd, b.p, 22, in, 0, out, 0);
        CHECK_EQ_U(b.n - rd.off, (size_t)nfree * 4);
        for (uint32_t i = 0; i < nfree; i++) {
            uint32_t f;
            memcpy(&f, b.p + b.n - (size_t)nfree * 4 + i * 4, 4);
            CHECK_EQ_U(f, 1000 + i);
        }
        /* Cut short at every byte: each refused, the header's counts say so. */
        for (size_t cut = 0; cut < b.n; cut++)
            if (!CHECK_MSG(!tf_wire_scan_batch(b.p, cut, &hd, &nt, &nd),
                           "batch (%u frees) cut to %zu of %zu bytes accepted",
                           nfree, cut, b.n))
                break;
        /* A byte, or a whole free, too many. */
        size_t n = b.n;
        for (size_t extra = 1; extra <= 4; extra++) {
            b.p[n + extra - 1] = 0;
            CHECK_MSG(!tf_wire_scan_batch(b.p, n + extra, &hd, &nt, &nd),
                      "batch (%u frees) with %zu trailing bytes accepted",
                      nfree, extra);
        }
        /* Counts that do not match what follows. */
        static const int32_t dt[] = {1, -1, 0, 0, 0, 0};
        static const int32_t dr[] = {0, 0, 1, -1, 0, 0};
        for (size_t i = 0; i < sizeof dt / sizeof *dt; i++) {
            uint32_t ntasks = 3 + (uint32_t)dt[i], fr = nfree + (uint32_t)dr[i];
            if (i == 4)
                ntasks = UINT32_MAX;
            if (i == 5)
                fr = UINT32_MAX;
            if (dr[i] < 0 && !nfree)
                continue;
            tf_wire_seal_batch(b.p, 0, ntasks, fr);
            CHECK_MSG(!tf_wire_scan_batch(b.p, n, &hd, &nt, &nd),
                      "batch of 3 tasks, %u frees accepted as %u tasks, %u "
                      "frees",
                      nfree, ntasks, fr);
        }
    }
    /* Frees only (a batch with no task), and nothing at all. */
    b.n = 0;
    tf_wire_put_batch(&b, &(tf_wire_batch){.nfree = 2});
    tf_buf_put_u32(&b, 5);
    tf_buf_put_u32(&b, 6);
    tf_wire_batch hd;
    size_t nt, nd;
    CHECK_TRUE(tf_wire_scan_batch(b.p, b.n, &hd, &nt, &nd));
    CHECK_EQ_U(nt, 0);
    CHECK_EQ_U(nd, 0);
    CHECK_EQ_U(hd.nfree, 2);
    CHECK_FALSE(tf_wire_scan_batch(b.p, TF_WIRE_BATCH_SIZE, &hd, &nt, &nd));
    b.n = 0;
    tf_wire_put_batch(&b, &(tf_wire_batch){.flags = TF_WIRE_DRY});
    CHECK_TRUE(tf_wire_scan_batch(b.p, b.n, &hd, &nt, &nd));
    CHECK_EQ_U(hd.flags, TF_WIRE_DRY);
    CHECK_FALSE(tf_wire_scan_batch(b.p, 0, &hd, &nt, &nd));
    tf_buf_free(&b);
}

/* tf_wire_seal_batch writes the header's fields and nothing else. */
static void test_seal_batch(void)
{
    uint8_t m[TF_WIRE_BATCH_SIZE + 4];
    memset(m, 0xEE, sizeof m);
    tf_wire_seal_batch(m, TF_WIRE_DRY, 0x01020304u, 0x0A0B0C0Du);
    tf_rd rd = tf_rd_make(m, TF_WIRE_BATCH_SIZE);
    tf_wire_batch hd;
    CHECK_TRUE(tf_wire_get_batch(&rd, &hd));
    CHECK_EQ_U(hd.flags, TF_WIRE_DRY);
    CHECK_EQ_U(hd.ntasks, 0x01020304u);
    CHECK_EQ_U(hd.nfree, 0x0A0B0C0Du);
    for (size_t i = TF_WIRE_BATCH_SIZE; i < sizeof m; i++)
        CHECK_EQ_U(m[i], 0xEE);
}

/* A DONE's parts as the worker writes them (put_done in src/net). */
static void put_done_parts(tf_buf *b, uint32_t index, uint16_t nparts,
                           const uint8_t *where, const uint32_t *len,
                           const uint8_t *bytes)
{
    tf_wire_put_done(
        b, &(tf_wire_done){TF_REC_DONE, index, 2, -3, 10, 20, 1, nparts});
    for (uint16_t i = 0; i < nparts; i++) {
        tf_wire_put_part(b, &(tf_wire_part){len[i], where[i]});
        if (where[i] != TF_PART_HELD)
            tf_buf_put(b, bytes, len[i]);
    }
}

/*
 * A REPORT read record by record as rank 0 does: a DONE's parts are
 * checked whole by tf_wire_get_rec, then read with tf_wire_next_part; a
 * part whose `where` is unknown, more than TF_PARTS_MAX parts, an unknown
 * kind or a record cut short is refused.
 */
static void test_report(void)
{
    tf_buf b = {0};
    if (!CHECK_RC(tf_buf_reserve(&b, 16384), 0))
        return;
    uint8_t bytes[64];
    fill(bytes, sizeof bytes, 17);
    static const uint8_t where[] = {TF_PART_INLINE, TF_PART_HELD, TF_PART_BOTH,
                                    TF_PART_INLINE};
    static const uint32_t len[] = {3, 100000, 5, 0};
    put_done_parts(&b, 4, 4, where, len, bytes);
    size_t done_end = b.n;
    tf_wire_put_submit(
        &b, &(tf_wire_submit){TF_REC_SUBMIT, 9, 11, 2, -1, 1, 3, 1, 2});
    tf_buf_put_u64(&b, 11);
    tf_buf_put(&b, "ab", 2);
    tf_wire_put_unrun(&b, &(tf_wire_unrun){TF_REC_UNRUN, 5});
    tf_wire_put_moved(&b, &(tf_wire_moved){TF_REC_MOVED, 6, 1, 2});
    put_done_parts(&b, 7, 0, NULL, NULL, NULL);
    size_t n = b.n;

    tf_rd r = tf_rd_make(b.p, n);
    tf_wire_rec rec;
    if (!CHECK_TRUE(tf_wire_get_rec(&r, &rec)) ||
        !CHECK_EQ_U(rec.kind, TF_REC_DONE))
        goto out_with_buf;
    CHECK_EQ_U(rec.u.done.index, 4);
    CHECK_EQ_I(rec.u.done.status, -3);
    CHECK_EQ_U(rec.u.done.end_ns, 20);
    CHECK_EQ_U(rec.u.done.nparts, 4);
    CHECK_EQ_U(r.off, done_end);
    CHECK_TRUE((const uint8_t *)rec.out == b.p + TF_WIRE_DONE_SIZE);
    tf_rd pr = tf_rd_make(rec.out, n - TF_WIRE_DONE_SIZE);
    for (uint16_t i = 0; i < 4; i++) {
        tf_wire_part pt;
        const void *pb = (const void *)1;
        if (!CHECK_TRUE(tf_wire_next_part(&pr, &pt, &pb)))
            break;
        CHECK_EQ_U(pt.len, len[i]);
        CHECK_EQ_U(pt.where, where[i]);
        if (where[i] == TF_PART_HELD)
            CHECK_TRUE(pb == NULL);
        else
            CHECK_TRUE(pb && memcmp(pb, bytes, len[i]) == 0);
    }
    CHECK_EQ_U(TF_WIRE_DONE_SIZE + pr.off, done_end);
    CHECK_TRUE(tf_wire_get_rec(&r, &rec));
    CHECK_EQ_U(rec.kind, TF_REC_SUBMIT);
    CHECK_EQ_U(rec.u.submit.parent, 11);
    CHECK_EQ_I(rec.u.submit.prio, -1);
    CHECK_EQ_I(rec.u.submit.retries, 3);
    uint64_t dep;
    memcpy(&dep, rec.deps, 8);
    CHECK_EQ_U(dep, 11);
    CHECK_TRUE(memcmp(rec.in, "ab", 2) == 0);
    CHECK_TRUE(tf_wire_get_rec(&r, &rec));
    CHECK_EQ_U(rec.kind, TF_REC_UNRUN);
    CHECK_EQ_U(rec.u.unrun.index, 5);
    CHECK_TRUE(tf_wire_get_rec(&r, &rec));
    CHECK_EQ_U(rec.kind, TF_REC_MOVED);
    CHECK_EQ_U(rec.u.moved.thief, 2);
    CHECK_TRUE(tf_wire_get_rec(&r, &rec));
    CHECK_EQ_U(rec.kind, TF_REC_DONE);
    CHECK_EQ_U(rec.u.done.nparts, 0);
    CHECK_TRUE(r.ok);
    CHECK_FALSE(tf_rd_more(&r));

    /* The first DONE cut short at every byte: refused. */
    for (size_t cut = 0; cut < done_end; cut++) {
        r = tf_rd_make(b.p, cut);
        if (!CHECK_MSG(!tf_wire_get_rec(&r, &rec) && !r.ok,
                       "DONE with parts cut to %zu of %zu bytes accepted", cut,
                       done_end))
            break;
    }
    /* Unknown kinds. */
    static const uint8_t bad_kinds[] = {0, 5, 9, 255};
    for (size_t i = 0; i < sizeof bad_kinds; i++) {
        uint8_t k0 = b.p[0];
        b.p[0] = bad_kinds[i];
        r = tf_rd_make(b.p, n);
        CHECK_MSG(!tf_wire_get_rec(&r, &rec) && !r.ok,
                  "record of kind %u accepted", bad_kinds[i]);
        b.p[0] = k0;
    }
    /* A PART whose `where` is none of INLINE, HELD, BOTH. */
    static const uint8_t bad_where[] = {3, 4, 0x80, 255};
    size_t where_at = TF_WIRE_DONE_SIZE + TF_WIRE_PART_SIZE + len[0] +
                      TF_WIRE_PART_SIZE - 1; /* part 1's where */
    CHECK_EQ_U(b.p[where_at], TF_PART_HELD);
    for (size_t i = 0; i < sizeof bad_where; i++) {
        b.p[where_at] = bad_where[i];
        r = tf_rd_make(b.p, n);
        CHECK_MSG(!tf_wire_get_rec(&r, &rec) && !r.ok,
                  "PART with where %u accepted", bad_where[i]);
        tf_wire_part pt;
        const void *pb;
        pr = tf_rd_make(b.p + TF_WIRE_DONE_SIZE + TF_WIRE_PART_SIZE + len[0],
                        TF_WIRE_PART_SIZE);
        CHECK_FALSE(tf_wire_next_part(&pr, &pt, &pb));
    }
    b.p[where_at] = TF_PART_HELD;

    /* TF_PARTS_MAX parts are accepted, one more is not. */
    for (uint32_t np = TF_PARTS_MAX; np <= TF_PARTS_MAX + 1; np++) {
        b.n = 0;
        tf_wire_put_done(
            &b, &(tf_wire_done){TF_REC_DONE, 1, 1, 0, 0, 0, 0, (uint16_t)np});
        for (uint32_t i = 0; i < np; i++)
            tf_wire_put_part(&b, &(tf_wire_part){i, TF_PART_HELD});
        r = tf_rd_make(b.p, b.n);
        bool got = tf_wire_get_rec(&r, &rec);
        CHECK_MSG(got == (np <= TF_PARTS_MAX), "DONE with %u parts %s", np,
                  got ? "accepted" : "refused");
        if (got)
            CHECK_EQ_U(r.off, b.n);
    }
    /* nparts 0xFFFF with no parts after it. */
    b.n = 0;
    tf_wire_put_done(&b,
                     &(tf_wire_done){TF_REC_DONE, 1, 1, 0, 0, 0, 0, 0xFFFF});
    r = tf_rd_make(b.p, b.n);
    CHECK_FALSE(tf_wire_get_rec(&r, &rec));
    /* A SUBMIT whose dependencies or input run past the end. */
    b.n = 0;
    tf_wire_put_submit(
        &b, &(tf_wire_submit){TF_REC_SUBMIT, 9, 11, 2, 0, 1, 0, 2, 0});
    tf_buf_put_u64(&b, 11);
    r = tf_rd_make(b.p, b.n);
    CHECK_FALSE(tf_wire_get_rec(&r, &rec));
    b.n = 0;
    tf_wire_put_submit(
        &b, &(tf_wire_submit){TF_REC_SUBMIT, 9, 11, 2, 0, 1, 0, 0, 3});
    tf_buf_put(&b, "ab", 2);
    r = tf_rd_make(b.p, b.n);
    CHECK_FALSE(tf_wire_get_rec(&r, &rec));
out_with_buf:
    tf_buf_free(&b);
}

/*
 * The data path's messages: FETCH records back to back, a DATA record
 * whose bytes start aligned right after it, LOST.
 */
static void test_fetch_data(void)
{
    tf_buf b = {0};
    if (!CHECK_RC(tf_buf_reserve(&b, 256), 0))
        return;
    for (uint32_t i = 0; i < 5; i++)
        tf_wire_put_fetch(&b, &(tf_wire_fetch){100 + i, i * 7});
    CHECK_EQ_U(b.n, 5 * TF_WIRE_FETCH_SIZE);
    tf_rd r = tf_rd_make(b.p, b.n);
    tf_wire_fetch f;
    uint32_t k = 0;
    while (tf_rd_more(&r) && tf_wire_get_fetch(&r, &f)) {
        CHECK_EQ_U(f.index, 100 + k);
        CHECK_EQ_U(f.part, k * 7);
        k++;
    }
    CHECK_EQ_U(k, 5);
    CHECK_TRUE(r.ok);
    r = tf_rd_make(b.p, b.n - 1);
    while (tf_rd_more(&r) && tf_wire_get_fetch(&r, &f))
        ;
    CHECK_FALSE(r.ok);

    uint8_t bytes[40];
    fill(bytes, sizeof bytes, 23);
    b.n = 0;
    tf_wire_put_data(&b, &(tf_wire_data){9, 3, sizeof bytes, TF_DATA_OK});
    CHECK_EQ_U(b.n % TF_WIRE_ALIGN, 0);
    tf_buf_put(&b, bytes, sizeof bytes);
    r = tf_rd_make(b.p, b.n);
    tf_wire_data d;
    CHECK_TRUE(tf_wire_get_data(&r, &d));
    CHECK_EQ_U(d.index, 9);
    CHECK_EQ_U(d.part, 3);
    CHECK_EQ_U(d.len, sizeof bytes);
    CHECK_EQ_U(d.status, TF_DATA_OK);
    CHECK_EQ_U(b.n - TF_WIRE_DATA_SIZE, d.len);
    CHECK_TRUE(memcmp(b.p + TF_WIRE_DATA_SIZE, bytes, d.len) == 0);
    b.n = 0;
    tf_wire_put_data(&b, &(tf_wire_data){9, 3, 0, TF_DATA_MISSING});
    r = tf_rd_make(b.p, b.n);
    CHECK_TRUE(tf_wire_get_data(&r, &d));
    CHECK_EQ_U(d.status, TF_DATA_MISSING);
    CHECK_FALSE(tf_rd_more(&r));

    b.n = 0;
    tf_wire_put_lost(&b, &(tf_wire_lost){3});
    r = tf_rd_make(b.p, b.n);
    tf_wire_lost lo;
    CHECK_TRUE(tf_wire_get_lost(&r, &lo));
    CHECK_EQ_U(lo.rank, 3);
    tf_buf_free(&b);
}

/* The field list of record `name` in the doc's table, or NULL. */
static char *doc_fields(const char *text, const char *name, int *size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\n| %s | ", name);
    const char *row = strstr(text, pat);
    if (!row)
        return NULL;
    row += strlen(pat);
    *size = atoi(row);
    const char *a = strchr(row, '`'), *z = a ? strchr(a + 1, '`') : NULL;
    const char *eol = strchr(row, '\n');
    if (!a || !z || (eol && z > eol))
        return NULL;
    size_t n = (size_t)(z - a - 1);
    char *f = malloc(n + 1);
    if (f) {
        memcpy(f, a + 1, n);
        f[n] = 0;
    }
    return f;
}

/*
 * docs/architecture.md's wire table lists every record with its size and
 * its fields in order, exactly as the codec sends them.
 */
static void test_doc_table(void)
{
    FILE *f = fopen(doc_path, "rb");
    if (!CHECK_MSG(f != NULL, "cannot open %s", doc_path))
        return;
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    size_t nl;
    const tf_wire_layout *l = tf_wire_layouts(&nl);
    CHECK_EQ_U(nl, 17);
    for (size_t i = 0; i < nl; i++) {
        int size = -1;
        char *fields = doc_fields(text, l[i].name, &size);
        CHECK_MSG(fields != NULL, "%s: no row for record %s", doc_path,
                  l[i].name);
        if (!fields)
            continue;
        CHECK_MSG(strcmp(fields, l[i].fields) == 0,
                  "%s, record %s: the doc says `%s`, the codec sends `%s`",
                  doc_path, l[i].name, fields, l[i].fields);
        CHECK_MSG(size == l[i].size,
                  "%s, record %s: the doc says %d bytes, the codec %d",
                  doc_path, l[i].name, size, l[i].size);
        free(fields);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        doc_path = argv[1];
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("wire", NULL, NULL);
    CU_add_test(s, "every record: round trip, size, cut short",
                test_round_trip);
    CU_add_test(s, "sizes", test_sizes);
    CU_add_test(s, "aligned bytes", test_aligned);
    CU_add_test(s, "a task record with every kind of entry", test_task_record);
    CU_add_test(s, "anchors and references refused", test_bad_references);
    CU_add_test(s, "whole batches", test_batch);
    CU_add_test(s, "seal_batch", test_seal_batch);
    CU_add_test(s, "reports: DONE parts, SUBMIT, UNRUN, MOVED", test_report);
    CU_add_test(s, "FETCH, DATA, LOST", test_fetch_data);
    CU_add_test(s, "layouts against docs/architecture.md", test_doc_table);
    return check_run();
}
