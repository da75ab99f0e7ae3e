/* Unit tests of the part store: the life of HOME, COPY and FETCHING parts, replacement, accounting, and the map against a reference model. */
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
#include "store.h"

/*
 * Every block the tests give the store is malloc'd with TF_STORE_HDR bytes
 * of room and its data filled from a tag, so that a reader can tell its
 * bytes are still its own (and ASan sees a block freed under a reader).
 */
static uint8_t *make_blk(uint32_t len, uint32_t tag)
{
    uint8_t *b = malloc(TF_STORE_HDR + (size_t)len);
    if (!b)
        return NULL;
    memset(b, 0xEE, TF_STORE_HDR);
    for (uint32_t i = 0; i < len; i++)
        b[TF_STORE_HDR + i] = (uint8_t)(tag * 31 + i);
    return b;
}

static bool data_is(const tf_part_ent *e, uint32_t len, uint32_t tag)
{
    const uint8_t *d = tf_part_data(e);
    if (e->len != len || (len && !d))
        return false;
    for (uint32_t i = 0; i < len; i++)
        if (d[i] != (uint8_t)(tag * 31 + i))
            return false;
    return true;
}

/* Add a part with a fresh block; NULL (after a failed check) on error. */
static tf_part_ent *add(tf_store *s, uint32_t idx, uint32_t part, uint8_t kind,
                        uint32_t len, uint32_t tag)
{
    uint8_t *b = kind == TF_PART_FETCHING ? NULL : make_blk(len, tag);
    if (kind != TF_PART_FETCHING && !CHECK_TRUE(b))
        return NULL;
    tf_part_ent *e = NULL;
    int rc = tf_store_add(s, idx, part, kind, b, b ? len : 0, &e);
    if (!CHECK_RC(rc, 0)) {
        free(b);
        return NULL;
    }
    return e;
}

/* Parts are found by (task, part) and by nothing else. */
static void test_add_find(void)
{
    tf_store s;
    tf_store_init(&s);
    CHECK_TRUE(tf_store_find(&s, 0, 0) == NULL);
    CHECK_TRUE(tf_store_find(&s, 5, 0) == NULL);
    tf_part_ent *a = add(&s, 5, 0, TF_PART_HOME, 10, 1);
    tf_part_ent *b = add(&s, 5, 3, TF_PART_HOME, 0, 2);
    tf_part_ent *c = add(&s, 6, 0, TF_PART_COPY, 33, 3);
    tf_part_ent *d = add(&s, 0, 255, TF_PART_FETCHING, 0, 0);
    if (!a || !b || !c || !d)
        goto out_with_store;
    CHECK_TRUE(tf_store_find(&s, 5, 0) == a);
    CHECK_TRUE(tf_store_find(&s, 5, 3) == b);
    CHECK_TRUE(tf_store_find(&s, 6, 0) == c);
    CHECK_TRUE(tf_store_find(&s, 0, 255) == d);
    CHECK_TRUE(tf_store_find(&s, 5, 1) == NULL);
    CHECK_TRUE(tf_store_find(&s, 6, 3) == NULL);
    CHECK_TRUE(tf_store_find(&s, 7, 0) == NULL);
    CHECK_TRUE(tf_store_find(&s, 0, 0) == NULL);
    CHECK_EQ_U(s.n, 3); /* tasks, not parts */
    CHECK_EQ_U(a->idx, 5);
    CHECK_EQ_U(a->part, 0);
    CHECK_EQ_U(a->kind, TF_PART_HOME);
    CHECK_EQ_U(a->refs, 0);
    CHECK_FALSE(a->freed);
    CHECK_EQ_I(a->from, -1);
    CHECK_TRUE(data_is(a, 10, 1));
    CHECK_TRUE((uint8_t *)tf_part_data(a) == a->blk + TF_STORE_HDR);
    CHECK_TRUE(data_is(b, 0, 2));
    CHECK_TRUE(data_is(c, 33, 3));
    CHECK_EQ_U(c->kind, TF_PART_COPY);
    CHECK_EQ_U(d->kind, TF_PART_FETCHING);
    CHECK_TRUE(d->blk == NULL && tf_part_data(d) == NULL);
    CHECK_EQ_U(d->len, 0);
    CHECK_EQ_U(s.bytes, 43);
    CHECK_EQ_U(s.peak, 43);
    /* out may be NULL. */
    uint8_t *blk = make_blk(4, 9);
    if (CHECK_TRUE(blk) &&
        !CHECK_RC(tf_store_add(&s, 9, 1, TF_PART_COPY, blk, 4, NULL), 0))
        free(blk);
    tf_part_ent *e = tf_store_find(&s, 9, 1);
    CHECK_TRUE(e && data_is(e, 4, 9));
    CHECK_EQ_U(s.bytes, 47);
out_with_store:
    tf_store_free(&s);
    CHECK_EQ_U(s.n, 0);
    CHECK_EQ_U(s.bytes, 0);
}

/*
 * HOME: kept at refs 0 until rank 0 frees the task; freed while read, it
 * stays until its last reader lets go.
 */
static void test_home(void)
{
    tf_store s;
    tf_store_init(&s);
    tf_part_ent *a = add(&s, 3, 0, TF_PART_HOME, 8, 1);
    tf_part_ent *b = add(&s, 4, 0, TF_PART_HOME, 8, 2);
    if (!a || !b)
        goto out_with_store;
    /* Read and let go: still here, rank 0 has not freed it. */
    a->refs++;
    tf_store_unref(&s, a);
    CHECK_TRUE(tf_store_find(&s, 3, 0) == a);
    CHECK_EQ_U(s.bytes, 16);
    /* Freed unread: gone at once. */
    tf_store_free_task(&s, 4);
    CHECK_TRUE(tf_store_find(&s, 4, 0) == NULL);
    CHECK_EQ_U(s.bytes, 8);
    CHECK_EQ_U(s.n, 1);
    /* Freed while two read it: stays (marked) until the second lets go. */
    a->refs += 2;
    tf_store_free_task(&s, 3);
    CHECK_TRUE(tf_store_find(&s, 3, 0) == a);
    CHECK_TRUE(a->freed);
    tf_store_unref(&s, a);
    CHECK_TRUE(tf_store_find(&s, 3, 0) == a && data_is(a, 8, 1));
    tf_store_unref(&s, a);
    CHECK_TRUE(tf_store_find(&s, 3, 0) == NULL);
    CHECK_EQ_U(s.bytes, 0);
    CHECK_EQ_U(s.n, 0);
    CHECK_EQ_U(s.peak, 16);
    /* Freeing a task the store never had, or twice, does nothing. */
    tf_store_free_task(&s, 3);
    tf_store_free_task(&s, 77);
    tf_store_unref(&s, NULL);
out_with_store:
    tf_store_free(&s);
}

/*
 * Small HOME parts copied into their entries: the same life as a block's,
 * no block, and entries let go of are used again.
 */
static void test_small(void)
{
    tf_store s;
    tf_store_init(&s);
    uint8_t bytes[TF_STORE_SMALL];
    for (unsigned i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(7 * i + 1);
    tf_part_ent *a = NULL, *b = NULL;
    CHECK_RC(tf_store_add_copy(&s, 5, 0, bytes, TF_STORE_SMALL, &a), 0);
    CHECK_RC(tf_store_add_copy(&s, 6, 0, bytes, 3, &b), 0);
    CHECK_RC(tf_store_add_copy(&s, 7, 0, bytes, TF_STORE_SMALL + 1, NULL),
             TF_EINVAL);
    if (!a || !b)
        goto out_with_store;
    CHECK_TRUE(tf_store_find(&s, 5, 0) == a && a->kind == TF_PART_HOME);
    CHECK_TRUE(a->blk && a->len == TF_STORE_SMALL &&
               !memcmp(tf_part_data(a), bytes, TF_STORE_SMALL));
    CHECK_TRUE((uintptr_t)tf_part_data(a) % _Alignof(max_align_t) == 0);
    CHECK_EQ_U(s.bytes, TF_STORE_SMALL + 3);
    /* Read, freed by rank 0, let go: gone, its entry kept for the next. */
    a->refs++;
    tf_store_free_task(&s, 5);
    CHECK_TRUE(tf_store_find(&s, 5, 0) == a &&
               !memcmp(tf_part_data(a), bytes, 4));
    tf_store_unref(&s, a);
    CHECK_TRUE(tf_store_find(&s, 5, 0) == NULL);
    CHECK_EQ_U(s.bytes, 3);
    CHECK_EQ_U(s.nspare, 1);
    tf_part_ent *c = NULL;
    CHECK_RC(tf_store_add_copy(&s, 8, 1, bytes + 1, 2, &c), 0);
    CHECK_TRUE(c == a && s.nspare == 0); /* the same entry, used again */
    CHECK_TRUE(c && c->idx == 8 && c->part == 1 && c->refs == 0 &&
               !c->freed &&
               ((const uint8_t *)tf_part_data(c))[0] == bytes[1]);
    /* A small part replaced by a block while read: the reader keeps it. */
    b->refs++;
    tf_part_ent *d = add(&s, 6, 0, TF_PART_HOME, 40, 9);
    CHECK_TRUE(d && tf_store_find(&s, 6, 0) == d && data_is(d, 40, 9));
    CHECK_TRUE(!memcmp(tf_part_data(b), bytes, 3));
    tf_store_unref(&s, b);
    CHECK_EQ_U(s.bytes, 2 + 40);
out_with_store:
    tf_store_free(&s);
}

/* COPY: dropped at the last unref, whatever rank 0 says. */
static void test_copy(void)
{
    tf_store s;
    tf_store_init(&s);
    tf_part_ent *c = add(&s, 8, 1, TF_PART_COPY, 5, 4);
    if (!c)
        goto out_with_store;
    c->refs = 2;
    tf_store_unref(&s, c);
    CHECK_TRUE(tf_store_find(&s, 8, 1) == c && data_is(c, 5, 4));
    /* free_task is about HOME parts: a copy read by someone stays. */
    tf_store_free_task(&s, 8);
    CHECK_TRUE(tf_store_find(&s, 8, 1) == c);
    CHECK_FALSE(c->freed);
    tf_store_unref(&s, c);
    CHECK_TRUE(tf_store_find(&s, 8, 1) == NULL);
    CHECK_EQ_U(s.bytes, 0);
    CHECK_EQ_U(s.n, 0);
out_with_store:
    tf_store_free(&s);
}

/*
 * FETCHING: no bytes until they arrive (then a COPY, counted); dropped at
 * refs 0 whether or not its bytes came; forgotten when its holder is lost.
 */
static void test_fetching(void)
{
    tf_store s;
    tf_store_init(&s);
    tf_part_ent *f = add(&s, 12, 2, TF_PART_FETCHING, 0, 0);
    if (!f)
        goto out_with_store;
    f->from = 3;
    f->anchor = tf_store_anchor(&s);
    f->refs = 2; /* two jobs wait for it */
    CHECK_EQ_U(s.bytes, 0);
    uint8_t *blk = make_blk(20, 7);
    if (!CHECK_TRUE(blk))
        goto out_with_store;
    tf_store_arrived(&s, f, blk, 20);
    CHECK_TRUE(tf_store_find(&s, 12, 2) == f);
    CHECK_EQ_U(f->kind, TF_PART_COPY);
    CHECK_TRUE(data_is(f, 20, 7));
    CHECK_EQ_U(s.bytes, 20);
    CHECK_EQ_U(s.peak, 20);
    tf_store_unref(&s, f);
    CHECK_TRUE(tf_store_find(&s, 12, 2) == f);
    tf_store_unref(&s, f);
    CHECK_TRUE(tf_store_find(&s, 12, 2) == NULL);
    CHECK_EQ_U(s.bytes, 0);

    /* A fetch nobody waits for any more goes before its bytes come. */
    f = add(&s, 13, 0, TF_PART_FETCHING, 0, 0);
    if (!f)
        goto out_with_store;
    f->refs = 1;
    tf_store_unref(&s, f);
    CHECK_TRUE(tf_store_find(&s, 13, 0) == NULL);
    CHECK_EQ_U(s.n, 0);

    /* A fetch whose holder is lost: forgotten, others of the task stay. */
    tf_part_ent *g = add(&s, 14, 0, TF_PART_FETCHING, 0, 0);
    tf_part_ent *h = add(&s, 14, 1, TF_PART_COPY, 3, 8);
    if (!g || !h)
        goto out_with_store;
    g->refs = 1;
    tf_store_forget(&s, g);
    CHECK_TRUE(tf_store_find(&s, 14, 0) == NULL);
    CHECK_TRUE(tf_store_find(&s, 14, 1) == h);
    CHECK_EQ_U(s.n, 1);
    CHECK_EQ_U(s.bytes, 3);
out_with_store:
    tf_store_free(&s);
}

/*
 * A HOME part made again (a rerun) while the old one is read: the map
 * gives the new bytes, the old readers keep theirs until they let go; an
 * old part nobody reads goes at once. Both count until then.
 */
static void test_replace(void)
{
    tf_store s;
    tf_store_init(&s);
    tf_part_ent *old = add(&s, 21, 0, TF_PART_HOME, 10, 1);
    tf_part_ent *other = add(&s, 21, 1, TF_PART_HOME, 6, 5);
    if (!old || !other)
        goto out_with_store;
    old->refs = 2;
    tf_part_ent *nw = add(&s, 21, 0, TF_PART_HOME, 30, 2);
    if (!nw)
        goto out_with_store;
    CHECK_TRUE(nw != old);
    CHECK_TRUE(tf_store_find(&s, 21, 0) == nw);
    CHECK_TRUE(tf_store_find(&s, 21, 1) == other);
    CHECK_TRUE(data_is(nw, 30, 2));
    CHECK_EQ_U(nw->refs, 0);
    CHECK_TRUE(data_is(old, 10, 1)); /* the readers' bytes */
    CHECK_EQ_U(s.bytes, 46);
    CHECK_EQ_U(s.peak, 46);
    CHECK_EQ_U(s.n, 1);
    tf_store_unref(&s, old);
    CHECK_TRUE(data_is(old, 10, 1));
    CHECK_TRUE(tf_store_find(&s, 21, 0) == nw);
    tf_store_unref(&s, old); /* goes; the new one stays */
    CHECK_TRUE(tf_store_find(&s, 21, 0) == nw);
    CHECK_EQ_U(s.bytes, 36);
    /* Replaced while nobody reads it: the old one goes at once. */
    tf_part_ent *nw2 = add(&s, 21, 0, TF_PART_HOME, 1, 3);
    if (!nw2)
        goto out_with_store;
    CHECK_TRUE(tf_store_find(&s, 21, 0) == nw2);
    CHECK_EQ_U(s.bytes, 7);
    /* A freed task's old reader: it still goes at its last unref. */
    nw2->refs = 1;
    tf_part_ent *nw3 = add(&s, 21, 0, TF_PART_HOME, 2, 4);
    if (!nw3)
        goto out_with_store;
    tf_store_free_task(&s, 21);
    CHECK_TRUE(tf_store_find(&s, 21, 0) == NULL);
    CHECK_TRUE(tf_store_find(&s, 21, 1) == NULL);
    CHECK_EQ_U(s.n, 0);
    CHECK_TRUE(data_is(nw2, 1, 3));
    CHECK_EQ_U(s.bytes, 1);
    tf_store_unref(&s, nw2);
    CHECK_EQ_U(s.bytes, 0);
out_with_store:
    tf_store_free(&s);
}

/* free_task of a task with several parts: the unread go, the read stay. */
static void test_free_task_parts(void)
{
    tf_store s;
    tf_store_init(&s);
    tf_part_ent *p[6];
    for (uint32_t i = 0; i < 6; i++)
        if (!(p[i] = add(&s, 40, i, i == 5 ? TF_PART_COPY : TF_PART_HOME, i + 1,
                         i)))
            goto out_with_store;
    /* Neighbours, so that the task's slot has others around it. */
    for (uint32_t t = 41; t < 60; t++)
        if (!add(&s, t, 0, TF_PART_HOME, 1, t))
            goto out_with_store;
    p[1]->refs = 1;
    p[4]->refs = 1;
    p[5]->refs = 1;
    tf_store_free_task(&s, 40);
    for (uint32_t i = 0; i < 6; i++) {
        bool stays = i == 1 || i == 4 || i == 5;
        CHECK_MSG((tf_store_find(&s, 40, i) != NULL) == stays,
                  "part %u of a freed task %s", i,
                  stays ? "gone while read" : "still there unread");
    }
    CHECK_TRUE(p[1]->freed && p[4]->freed && !p[5]->freed);
    CHECK_EQ_U(s.bytes, 2 + 5 + 6 + 19);
    tf_store_unref(&s, p[4]);
    tf_store_unref(&s, p[1]);
    CHECK_TRUE(tf_store_find(&s, 40, 1) == NULL);
    CHECK_TRUE(tf_store_find(&s, 40, 4) == NULL);
    CHECK_TRUE(tf_store_find(&s, 40, 5) == p[5]);
    tf_store_unref(&s, p[5]);
    for (uint32_t i = 0; i < 6; i++)
        CHECK_TRUE(tf_store_find(&s, 40, i) == NULL);
    for (uint32_t t = 41; t < 60; t++) {
        tf_part_ent *e = tf_store_find(&s, t, 0);
        CHECK_MSG(e && data_is(e, 1, t), "neighbour task %u lost", t);
    }
    CHECK_EQ_U(s.n, 19);
    CHECK_EQ_U(s.bytes, 19);
    /* Every part read: free_task marks them all, drops none. */
    for (uint32_t i = 0; i < 3; i++)
        if (!(p[i] = add(&s, 70, i, TF_PART_HOME, 1, i)))
            goto out_with_store;
    for (uint32_t i = 0; i < 3; i++)
        p[i]->refs = 1;
    tf_store_free_task(&s, 70);
    for (uint32_t i = 0; i < 3; i++)
        CHECK_TRUE(tf_store_find(&s, 70, i) == p[i] && p[i]->freed);
    for (uint32_t i = 0; i < 3; i++)
        tf_store_unref(&s, p[i]);
    CHECK_TRUE(tf_store_find(&s, 70, 0) == NULL);
    CHECK_EQ_U(s.n, 19);
out_with_store:
    tf_store_free(&s);
}

/* Fetch anchors: distinct, above every task index, and they wrap. */
static void test_anchor(void)
{
    tf_store s;
    tf_store_init(&s);
    uint32_t a = tf_store_anchor(&s), b = tf_store_anchor(&s);
    CHECK_EQ_U(a, TF_STORE_ANCHOR_TOP);
    CHECK_EQ_U(b, TF_STORE_ANCHOR_TOP - 1);
    s.next_anchor = TF_STORE_ANCHOR_TOP / 2;
    CHECK_EQ_U(tf_store_anchor(&s), TF_STORE_ANCHOR_TOP / 2);
    CHECK_EQ_U(tf_store_anchor(&s), TF_STORE_ANCHOR_TOP);
    for (int i = 0; i < 1000; i++) {
        uint32_t x = tf_store_anchor(&s);
        if (!CHECK_TRUE(x >= TF_STORE_ANCHOR_TOP / 2 &&
                        x <= TF_STORE_ANCHOR_TOP))
            break;
    }
    tf_store_free(&s);
}

/* tf_store_each visits every part in the map once. */
static void count_visit(void *u, tf_part_ent *e)
{
    uint32_t *seen = u;
    if (e->idx < 100 && e->part < 4)
        seen[e->idx * 4 + e->part]++;
    else
        seen[400]++;
}

static void test_each(void)
{
    tf_store s;
    tf_store_init(&s);
    static uint32_t seen[401];
    memset(seen, 0, sizeof seen);
    for (uint32_t t = 0; t < 100; t++)
        for (uint32_t p = 0; p < t % 4 + 1; p++)
            if (!add(&s, t, p, t % 3 ? TF_PART_HOME : TF_PART_FETCHING, 2, t))
                goto out_with_store;
    for (uint32_t t = 0; t < 100; t += 2)
        tf_store_free_task(&s, t); /* the HOME parts of even tasks go */
    tf_store_each(&s, count_visit, seen);
    for (uint32_t t = 0; t < 100; t++)
        for (uint32_t p = 0; p < 4; p++) {
            bool in = p < t % 4 + 1 && (t % 2 || t % 3 == 0);
            if (!CHECK_MSG(seen[t * 4 + p] == (in ? 1u : 0u),
                           "part %u of task %u visited %u times", p, t,
                           seen[t * 4 + p]))
                goto out_with_store;
        }
    CHECK_EQ_U(seen[400], 0);
out_with_store:
    tf_store_free(&s);
}

/*
 * The rank is done: tf_store_free frees every part, read or not, and a
 * part replaced while read is one of them (run under ASan, which reports
 * a leak otherwise).
 */
static void test_free_all(void)
{
    tf_store s;
    tf_store_init(&s);
    tf_part_ent *a = add(&s, 1, 0, TF_PART_HOME, 100, 1);
    if (a) {
        a->refs = 1; /* a job still holds it */
        add(&s, 1, 0, TF_PART_HOME, 50, 2);
        tf_part_ent *c = add(&s, 2, 0, TF_PART_COPY, 7, 3);
        if (c)
            c->refs = 3;
        add(&s, 3, 0, TF_PART_FETCHING, 0, 0);
    }
    CHECK_EQ_U(s.bytes, 157);
    tf_store_free(&s);
    CHECK_EQ_U(s.n, 0);
    CHECK_EQ_U(s.bytes, 0);
    CHECK_TRUE(s.slot == NULL);
    /* Usable again after a free. */
    CHECK_TRUE(add(&s, 4, 0, TF_PART_HOME, 1, 4) != NULL);
    tf_store_free(&s);
}

/*
 * Many tasks: grown, then emptied in random order, with every remaining
 * one found after each deletion round (backward-shift deletion must keep
 * every probe chain whole).
 */
static void test_many(void)
{
    enum { N = 50000 };
    tf_store s;
    tf_store_init(&s);
    uint32_t *idx = malloc(N * sizeof *idx);
    uint8_t *gone = calloc(N, 1);
    if (!CHECK_TRUE(idx && gone))
        goto out_with_scratch;
    tf_rng r = tf_rng_seeded(11);
    for (uint32_t i = 0; i < N; i++) {
        /* Spaced by 64 in part: indexes alike in their low bits. */
        idx[i] = i % 2 ? i * 64u : i * 7u + 1;
        if (!add(&s, idx[i], i % 3, TF_PART_HOME, 1, i))
            goto out_with_scratch;
    }
    CHECK_EQ_U(s.n, N);
    CHECK_LE_U(2 * s.n, s.cap);
    for (uint32_t round = 0; round < 10; round++) {
        for (uint32_t k = 0; k < N / 10; k++) {
            uint32_t i = tf_rng_below(&r, N);
            if (gone[i])
                continue;
            gone[i] = 1;
            tf_store_free_task(&s, idx[i]);
        }
        uint32_t left = 0;
        for (uint32_t i = 0; i < N; i++) {
            tf_part_ent *e = tf_store_find(&s, idx[i], i % 3);
            left += !gone[i];
            if (!CHECK_MSG(gone[i] ? !e
                                   : e && e->idx == idx[i] && data_is(e, 1, i),
                           "round %u: task %u (index %u) %s", round, i, idx[i],
                           gone[i] ? "still found" : "lost"))
                goto out_with_scratch;
        }
        CHECK_EQ_U(s.n, left);
        CHECK_EQ_U(s.bytes, left);
    }
    CHECK_EQ_U(s.peak, N);
out_with_scratch:
    free(gone);
    free(idx);
    tf_store_free(&s);
}

/* ------------------------------------------------------------------------ */
/*
 * Random operations against a reference model. Task indexes come from a
 * pool of NIDX: consecutive ones, ones alike in their low 12 bits (they
 * share a home slot in any table of up to 4096 slots), and ones whose home
 * slot is the table's last (the probe wraps around). The last two families
 * follow the store's hash; with another hash they are merely more indexes.
 */

#define NIDX 300u
#define NPART 4u
#define MAXREF 4096u

typedef struct ment {
    tf_part_ent *e;
    uint32_t idx, part, len, tag, refs;
    uint8_t kind;
    bool freed, listed, has_blk;
} ment;

typedef struct model {
    tf_store s;
    tf_rng r;
    uint32_t idx[NIDX];
    ment *ent; /* every live entry, listed or replaced-while-read */
    size_t n, cap;
    int32_t key[NIDX * NPART]; /* listed entry of (idx, part), or -1 */
    uint32_t *ref;             /* references held: ent positions */
    size_t nref;
    size_t bytes, peak;
    uint32_t next_tag;
    unsigned long ops;
} model;

static uint32_t inverse_of(uint32_t g)
{
    uint32_t x = g; /* Newton: each step doubles the good bits */
    for (int i = 0; i < 5; i++)
        x *= 2u - g * x;
    return x;
}

static void model_pool(model *m)
{
    uint32_t inv = inverse_of(0x9E3779B1u);
    for (uint32_t i = 0; i < NIDX; i++) {
        if (i % 3 == 0)
            m->idx[i] = i;
        else if (i % 3 == 1)
            m->idx[i] = (i + 1) * 4096u; /* hash low 12 bits: 0 */
        else
            m->idx[i] = (0xFFFFFFFFu - i * 4096u) * inv; /* 0xFFF */
    }
}

/* Drop model entry k (its position is taken by the last one). */
static void model_drop(model *m, size_t k)
{
    ment *x = &m->ent[k];
    if (x->has_blk)
        m->bytes -= x->len;
    size_t last = m->n - 1;
    if (x->listed)
        for (size_t q = 0; q < NIDX * NPART; q++)
            if (m->key[q] == (int32_t)k)
                m->key[q] = -1;
    if (k != last) {
        m->ent[k] = m->ent[last];
        for (size_t q = 0; q < NIDX * NPART; q++)
            if (m->key[q] == (int32_t)last)
                m->key[q] = (int32_t)k;
        for (size_t i = 0; i < m->nref; i++)
            if (m->ref[i] == last)
                m->ref[i] = (uint32_t)k;
    }
    m->n--;
}

/* Would the store drop it now (no reader, and not an unfreed HOME part)? */
static bool model_goes(const ment *x)
{
    return !x->refs && (x->kind != TF_PART_HOME || x->freed);
}

/*
 * The store against the model: every (index, part) of the pool, the task
 * count, the bytes. Compared quietly and reported once (a CUnit assertion
 * per part and operation would be a third of a billion).
 */
static bool model_check(model *m)
{
    uint32_t tasks = 0;
    for (uint32_t i = 0; i < NIDX; i++) {
        bool any = false;
        for (uint32_t p = 0; p < NPART; p++) {
            int32_t k = m->key[i * NPART + p];
            tf_part_ent *e = tf_store_find(&m->s, m->idx[i], p);
            if (k < 0) {
                if (e)
                    return CHECK_MSG(false,
                                     "op %lu: (%u, %u) found, the model has "
                                     "none",
                                     m->ops, m->idx[i], p);
                continue;
            }
            any = true;
            const ment *x = &m->ent[k];
            if (e != x->e)
                return CHECK_MSG(false, "op %lu: (%u, %u) is %p, want %p",
                                 m->ops, m->idx[i], p, (void *)e, (void *)x->e);
            if (e->idx != x->idx || e->part != x->part || e->kind != x->kind ||
                e->refs != x->refs || e->freed != x->freed)
                return CHECK_MSG(false,
                                 "op %lu: (%u, %u): kind %u refs %u freed %d, "
                                 "want %u %u %d",
                                 m->ops, m->idx[i], p, e->kind, e->refs,
                                 e->freed, x->kind, x->refs, x->freed);
            if (x->has_blk ? !data_is(e, x->len, x->tag) : e->blk != NULL)
                return CHECK_MSG(false, "op %lu: (%u, %u): other bytes", m->ops,
                                 m->idx[i], p);
        }
        tasks += any;
    }
    if (m->s.n != tasks)
        return CHECK_MSG(false, "op %lu: store counts %zu tasks, model %u",
                         m->ops, m->s.n, tasks);
    if (m->s.bytes != m->bytes || m->s.peak != m->peak)
        return CHECK_MSG(false, "op %lu: bytes %zu peak %zu, model %zu %zu",
                         m->ops, m->s.bytes, m->s.peak, m->bytes, m->peak);
    if (2 * m->s.n > m->s.cap)
        return CHECK_MSG(false, "op %lu: %zu tasks in %zu slots", m->ops,
                         m->s.n, m->s.cap);
    return true;
}

/* The cheap part of model_check: the task count and the bytes. */
static bool model_counts(model *m)
{
    if (m->s.bytes != m->bytes || m->s.peak != m->peak)
        return CHECK_MSG(false, "op %lu: bytes %zu peak %zu, model %zu %zu",
                         m->ops, m->s.bytes, m->s.peak, m->bytes, m->peak);
    return true;
}

static bool model_grow(model *m)
{
    if (m->n < m->cap)
        return true;
    size_t ncap = m->cap ? 2 * m->cap : 256;
    ment *p = realloc(m->ent, ncap * sizeof *p);
    if (!CHECK_TRUE(p))
        return false;
    m->ent = p;
    m->cap = ncap;
    return true;
}

/* One random operation on both. */
static bool model_step(model *m)
{
    uint32_t i = tf_rng_below(&m->r, NIDX), p = tf_rng_below(&m->r, NPART);
    uint32_t op = tf_rng_below(&m->r, 100);
    int32_t k = m->key[i * NPART + p];
    m->ops++;
    if (op < 30) { /* add (replacing any listed one) */
        uint8_t kind = (uint8_t)(1 + tf_rng_below(&m->r, 3));
        uint32_t len = tf_rng_below(&m->r, 40), tag = m->next_tag++;
        uint8_t *blk = kind == TF_PART_FETCHING ? NULL : make_blk(len, tag);
        tf_part_ent *e = NULL;
        if (!model_grow(m) || (kind != TF_PART_FETCHING && !CHECK_TRUE(blk)) ||
            !CHECK_RC(
                tf_store_add(&m->s, m->idx[i], p, kind, blk, blk ? len : 0, &e),
                0)) {
            free(blk);
            return false;
        }
        if (k >= 0) {
            ment *old = &m->ent[k];
            old->listed = false;
            old->kind = TF_PART_HOME;
            old->freed = true;
            m->key[i * NPART + p] = -1;
            if (!old->refs)
                model_drop(m, (size_t)k);
        }
        m->ent[m->n] = (ment){e, m->idx[i], p,     blk ? len : 0, tag,
                              0, kind,      false, true,          blk != NULL};
        m->key[i * NPART + p] = (int32_t)m->n++;
        if (blk) {
            m->bytes += len;
            if (m->bytes > m->peak)
                m->peak = m->bytes;
        }
    } else if (op < 55) { /* a reader takes a listed part */
        if (k < 0 || m->nref == MAXREF)
            return true;
        m->ent[k].e->refs++;
        m->ent[k].refs++;
        m->ref[m->nref++] = (uint32_t)k;
    } else if (op < 80) { /* a reader lets go */
        if (!m->nref)
            return true;
        uint32_t j = tf_rng_below(&m->r, (uint32_t)m->nref);
        uint32_t q = m->ref[j];
        m->ref[j] = m->ref[--m->nref];
        ment *x = &m->ent[q];
        if (x->has_blk &&
            !CHECK_MSG(data_is(x->e, x->len, x->tag),
                       "op %lu: a reader's bytes changed under it", m->ops))
            return false;
        tf_store_unref(&m->s, x->e);
        x->refs--;
        if (model_goes(x))
            model_drop(m, q);
    } else if (op < 90) { /* rank 0 frees the task */
        tf_store_free_task(&m->s, m->idx[i]);
        for (uint32_t q = 0; q < NPART; q++) {
            int32_t kk = m->key[i * NPART + q];
            if (kk < 0 || m->ent[kk].kind != TF_PART_HOME)
                continue;
            m->ent[kk].freed = true;
            if (model_goes(&m->ent[kk]))
                model_drop(m, (size_t)kk);
        }
    } else if (op < 97) { /* a fetch's bytes came */
        if (k < 0 || m->ent[k].kind != TF_PART_FETCHING)
            return true;
        uint32_t len = tf_rng_below(&m->r, 40), tag = m->next_tag++;
        uint8_t *blk = make_blk(len, tag);
        if (!CHECK_TRUE(blk))
            return false;
        tf_store_arrived(&m->s, m->ent[k].e, blk, len);
        ment *x = &m->ent[k];
        x->kind = TF_PART_COPY;
        x->len = len;
        x->tag = tag;
        x->has_blk = true;
        m->bytes += len;
        if (m->bytes > m->peak)
            m->peak = m->bytes;
    } else { /* its holder is lost: forgotten, its waiters released */
        if (k < 0 || m->ent[k].kind != TF_PART_FETCHING)
            return true;
        tf_store_forget(&m->s, m->ent[k].e);
        size_t w = 0;
        for (size_t j = 0; j < m->nref; j++)
            if (m->ref[j] != (uint32_t)k)
                m->ref[w++] = m->ref[j];
        m->nref = w;
        m->ent[k].refs = 0;
        model_drop(m, (size_t)k);
    }
    return true;
}

static void test_model(void)
{
    enum { OPS = 100000 };
    static model m;
    memset(&m, 0, sizeof m);
    tf_store_init(&m.s);
    m.r = tf_rng_seeded(2026);
    model_pool(&m);
    for (size_t q = 0; q < NIDX * NPART; q++)
        m.key[q] = -1;
    m.ref = malloc(MAXREF * sizeof *m.ref);
    if (!CHECK_TRUE(m.ref))
        goto out_with_model;
    unsigned long peak_tasks = 0;
    for (unsigned long n = 0; n < OPS; n++) {
        size_t n0 = m.s.n;
        if (!model_step(&m))
            break;
        /*
         * Everything after an operation that emptied a slot (the deletion
         * that shifts others back) and every 16th; otherwise the counts.
         */
        if ((m.s.n < n0 || n % 16 == 0) ? !model_check(&m) : !model_counts(&m))
            break;
        if (m.s.n > peak_tasks)
            peak_tasks = m.s.n;
        /* Now and then everyone lets go and rank 0 frees everything. */
        if (n % 20000 == 19999) {
            while (m.nref) {
                uint32_t q = m.ref[--m.nref];
                tf_store_unref(&m.s, m.ent[q].e);
                if (!--m.ent[q].refs && model_goes(&m.ent[q]))
                    model_drop(&m, q);
            }
            for (uint32_t i = 0; i < NIDX; i++) {
                tf_store_free_task(&m.s, m.idx[i]);
                for (uint32_t p = 0; p < NPART; p++) {
                    int32_t kk = m.key[i * NPART + p];
                    if (kk >= 0 && m.ent[kk].kind == TF_PART_HOME) {
                        m.ent[kk].freed = true;
                        model_drop(&m, (size_t)kk);
                    }
                }
            }
            if (!model_check(&m))
                break;
        }
    }
    CHECK_EQ_U(m.ops, OPS); /* every step and check held */
    CHECK_LE_U(100, peak_tasks);
    printf("\n    model: %lu operations, up to %lu tasks in the map\n", m.ops,
           peak_tasks);
out_with_model:
    /* The references still held: the store frees their parts too. */
    tf_store_free(&m.s);
    free(m.ref);
    free(m.ent);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("store", NULL, NULL);
    if (!s || !CU_add_test(s, "add and find", test_add_find) ||
        !CU_add_test(s, "HOME parts", test_home) ||
        !CU_add_test(s, "small parts in their entries", test_small) ||
        !CU_add_test(s, "COPY parts", test_copy) ||
        !CU_add_test(s, "FETCHING parts", test_fetching) ||
        !CU_add_test(s, "a HOME part replaced while read", test_replace) ||
        !CU_add_test(s, "free_task with several parts", test_free_task_parts) ||
        !CU_add_test(s, "fetch anchors", test_anchor) ||
        !CU_add_test(s, "each", test_each) ||
        !CU_add_test(s, "tf_store_free frees every part", test_free_all) ||
        !CU_add_test(s, "50,000 tasks, deleted in random order", test_many) ||
        !CU_add_test(s, "100,000 random operations against a model",
                     test_model)) {
        fprintf(stderr, "test_store: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    return check_run();
}
