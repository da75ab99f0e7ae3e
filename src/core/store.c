/* The output parts a rank holds: an open-addressing map by task index, each slot a list of the task's parts. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "taskfarm_status.h"

void tf_store_init(tf_store *s)
{
    memset(s, 0, sizeof *s);
    s->next_anchor = TF_STORE_ANCHOR_TOP;
}

uint8_t *tf_store_block(tf_store *s, size_t len)
{
    tf_blkcache *c = &s->cache;
    /* The newest that fits without wasting more than half of it. */
    for (size_t i = c->n; i-- > 0;) {
        if (c->cap[i] < len || c->cap[i] / 2 > len)
            continue;
        uint8_t *b = c->blk[i];
        c->bytes -= c->cap[i];
        c->n--;
        memmove(c->blk + i, c->blk + i + 1, (c->n - i) * sizeof *c->blk);
        memmove(c->cap + i, c->cap + i + 1, (c->n - i) * sizeof *c->cap);
        return b;
    }
    return malloc(TF_STORE_HDR + len);
}

void tf_store_unblock(tf_store *s, uint8_t *blk, size_t cap)
{
    tf_blkcache *c = &s->cache;
    /* Small blocks are cheap to malloc; large ones are kept, oldest go. */
    if (!blk || cap < TF_BLKCACHE_MIN || cap > TF_BLKCACHE_BYTES) {
        free(blk);
        return;
    }
    while (c->n && (c->n == TF_BLKCACHE_N ||
                    c->bytes + cap > TF_BLKCACHE_BYTES)) {
        free(c->blk[0]);
        c->bytes -= c->cap[0];
        c->n--;
        memmove(c->blk, c->blk + 1, c->n * sizeof *c->blk);
        memmove(c->cap, c->cap + 1, c->n * sizeof *c->cap);
    }
    c->blk[c->n] = blk;
    c->cap[c->n++] = cap;
    c->bytes += cap;
}

#define TF_STORE_SPARE 1024u

/* Keep entry e (its contents no longer used) for the next one. */
static void spare_ent(tf_store *s, tf_part_ent *e)
{
    if (s->nspare < TF_STORE_SPARE) {
        e->next = s->spare;
        s->spare = e;
        s->nspare++;
    } else {
        free(e);
    }
}

static tf_part_ent *new_ent(tf_store *s)
{
    tf_part_ent *e = s->spare;
    if (!e)
        return malloc(sizeof *e);
    s->spare = e->next;
    s->nspare--;
    return e;
}

/* Entry e has its bytes now: blk, len of them, counted. */
static void hold(tf_store *s, tf_part_ent *e, uint8_t *blk, uint32_t len)
{
    e->blk = blk;
    e->len = len;
    s->bytes += len;
    if (s->bytes > s->peak)
        s->peak = s->bytes;
}

static void free_ent(tf_store *s, tf_part_ent *e)
{
    if (e->blk)
        s->bytes -= e->len;
    if (e->blk != e->small)
        tf_store_unblock(s, e->blk, e->len);
    spare_ent(s, e);
}

void tf_store_free(tf_store *s)
{
    for (size_t i = 0; i < s->cap; i++)
        for (tf_part_ent *e = s->slot[i], *nx; e; e = nx) {
            nx = e->next;
            free_ent(s, e);
        }
    for (tf_part_ent *e = s->detached, *nx; e; e = nx) {
        nx = e->next;
        free_ent(s, e);
    }
    free(s->slot);
    for (size_t i = 0; i < s->cache.n; i++)
        free(s->cache.blk[i]);
    for (tf_part_ent *e = s->spare, *nx; e; e = nx) {
        nx = e->next;
        free(e);
    }
    tf_store_init(s);
}

/* The high bits of a Fibonacci product: indexes a power of two apart spread. */
static size_t hash(uint32_t idx, size_t cap)
{
    return (size_t)((idx * 0x9E3779B97F4A7C15ull) >>
                    (64 - __builtin_ctzll((unsigned long long)cap)));
}

/* The slot of task idx's list, or of the empty slot where it would go. */
static size_t probe(const tf_store *s, uint32_t idx)
{
    size_t i = hash(idx, s->cap);
    while (s->slot[i] && s->slot[i]->idx != idx)
        i = (i + 1) & (s->cap - 1);
    return i;
}

tf_part_ent *tf_store_find(const tf_store *s, uint32_t idx, uint32_t part)
{
    if (!s->n)
        return NULL;
    for (tf_part_ent *e = s->slot[probe(s, idx)]; e; e = e->next)
        if (e->part == part)
            return e;
    return NULL;
}

/* Room for one more task: the table stays at most half full. */
static int grow(tf_store *s)
{
    if (2 * (s->n + 1) <= s->cap)
        return 0;
    size_t ncap = s->cap ? 2 * s->cap : 64;
    tf_part_ent **ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return TF_ENOMEM;
    tf_store old = *s;
    s->slot = ns;
    s->cap = ncap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i])
            s->slot[probe(s, old.slot[i]->idx)] = old.slot[i];
    free(old.slot);
    return 0;
}

/* Unlink e from its task's list; the slot empties with its last part. */
static void unlink_ent(tf_store *s, tf_part_ent *e)
{
    size_t i = probe(s, e->idx);
    tf_part_ent **pp = &s->slot[i];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    if (s->slot[i])
        return;
    /* Backward-shift deletion keeps every probe chain unbroken. */
    s->n--;
    for (size_t j = (i + 1) & (s->cap - 1); s->slot[j];
         j = (j + 1) & (s->cap - 1)) {
        size_t h = hash(s->slot[j]->idx, s->cap), mask = s->cap - 1;
        /* Its probe started at or before the hole: it may move up. */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            s->slot[i] = s->slot[j];
            s->slot[j] = NULL;
            i = j;
        }
    }
}

int tf_store_add(tf_store *s, uint32_t idx, uint32_t part, uint8_t kind,
                 uint8_t *blk, uint32_t len, tf_part_ent **out)
{
    tf_part_ent *e = new_ent(s);
    if (!e)
        return TF_ENOMEM;
    if (grow(s)) {
        spare_ent(s, e);
        return TF_ENOMEM;
    }
    tf_part_ent *old = tf_store_find(s, idx, part);
    if (old) {
        /*
         * Its readers keep the old bytes: a detached entry they still
         * unref, which then goes as a freed part.
         */
        unlink_ent(s, old);
        old->freed = true;
        old->kind = TF_PART_HOME;
        if (!old->refs) {
            free_ent(s, old);
        } else {
            old->next = s->detached;
            s->detached = old;
        }
    }
    *e = (tf_part_ent){.idx = idx, .part = part, .len = len, .kind = kind,
                       .blk = blk, .from = -1};
    size_t i = probe(s, idx);
    if (!s->slot[i])
        s->n++;
    e->next = s->slot[i];
    s->slot[i] = e;
    if (blk)
        hold(s, e, blk, len);
    if (out)
        *out = e;
    return 0;
}

int tf_store_add_copy(tf_store *s, uint32_t idx, uint32_t part,
                      const void *bytes, uint32_t len, tf_part_ent **out)
{
    tf_part_ent *e;
    if (len > TF_STORE_SMALL)
        return TF_EINVAL;
    int rc = tf_store_add(s, idx, part, TF_PART_HOME, NULL, 0, &e);
    if (rc)
        return rc;
    memcpy(e->small + TF_STORE_HDR, bytes, len);
    hold(s, e, e->small, len);
    if (out)
        *out = e;
    return 0;
}

void tf_store_arrived(tf_store *s, tf_part_ent *e, uint8_t *blk, uint32_t len)
{
    hold(s, e, blk, len);
    e->kind = TF_PART_COPY;
}

/* Whether e is in the map (not a replaced entry its readers still hold). */
static bool listed(const tf_store *s, const tf_part_ent *e)
{
    return tf_store_find(s, e->idx, e->part) == e;
}

void tf_store_unref(tf_store *s, tf_part_ent *e)
{
    if (!e || --e->refs)
        return;
    if (e->kind != TF_PART_HOME || e->freed) {
        if (listed(s, e)) {
            unlink_ent(s, e);
        } else {
            tf_part_ent **pp = &s->detached;
            while (*pp && *pp != e)
                pp = &(*pp)->next;
            if (*pp)
                *pp = e->next;
        }
        free_ent(s, e);
    }
}

void tf_store_free_task(tf_store *s, uint32_t idx)
{
    if (!s->n || !s->slot[probe(s, idx)])
        return;
    for (tf_part_ent *e = s->slot[probe(s, idx)], *nx; e; e = nx) {
        nx = e->next;
        if (e->kind != TF_PART_HOME)
            continue;
        e->freed = true;
        if (!e->refs) {
            unlink_ent(s, e);
            free_ent(s, e);
            if (!s->n || !s->slot[probe(s, idx)])
                return;
        }
    }
}

void tf_store_forget(tf_store *s, tf_part_ent *e)
{
    unlink_ent(s, e);
    free_ent(s, e);
}

void tf_store_each(tf_store *s, void (*fn)(void *u, tf_part_ent *e), void *u)
{
    for (size_t i = 0; i < s->cap; i++)
        for (tf_part_ent *e = s->slot[i]; e; e = e->next)
            fn(u, e);
}
