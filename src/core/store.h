/* The output parts a rank holds: the ones its tasks made, copies fetched from peers, and fetches under way. */
#ifndef TF_CORE_STORE_H
#define TF_CORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A pure map from (task index, part) to a part's bytes, with the rules of
 * its life; no lock of its own (a worker's pool holds its mutex around
 * every call). Rank 0 decides, the store obeys:
 * - HOME parts were made here by a task others depend on: kept until rank
 *   0 frees the task (tf_store_free_task), and then until the last reader
 *   lets go;
 * - COPY parts came from a peer (a fetch) or were re-homed by a thief:
 *   kept while read, dropped at the last tf_store_unref;
 * - FETCHING parts are asked of `from` and have no bytes yet; the jobs that
 *   need one wait on its `anchor` (a tf_wq anchor of its own, above every
 *   task index, so that it names the fetch and not a task).
 * Every part's bytes sit in a block that starts with TF_STORE_HDR bytes of
 * room (a DATA record's size), so a received DATA message is a block as it
 * is, and data is aligned like the block (malloc: max_align_t).
 */
#define TF_STORE_HDR 16u

enum { TF_PART_HOME = 1, TF_PART_COPY, TF_PART_FETCHING };

/* Bytes a part may keep inside its entry (tf_store_add_copy). */
#define TF_STORE_SMALL 16u

typedef struct tf_part_ent {
    uint32_t idx, part;
    uint32_t len;
    uint32_t refs;    /* jobs reading it, or waiting for it while FETCHING */
    uint32_t anchor;  /* FETCHING: what waiting jobs park on */
    int32_t from;     /* FETCHING: the rank asked */
    uint8_t kind;     /* TF_PART_* */
    bool freed;       /* HOME: rank 0 freed it; goes when unread */
    uint8_t *blk;     /* TF_STORE_HDR bytes, then len bytes; NULL: none yet */
    struct tf_part_ent *next; /* the task's other parts */
    /*
     * A small part's block, inside the entry: a stencil's 16-byte outputs,
     * kept for the tasks parked behind them, cost a malloc and a free each
     * in a block of their own.
     */
    _Alignas(max_align_t) uint8_t small[TF_STORE_HDR + TF_STORE_SMALL];
} tf_part_ent;

/*
 * Blocks the store let go of, kept for the next output of about the same
 * size: on this VM a page touched for the first time costs ~10 us, so a
 * fresh 800 KB block costs 2 ms, many times the work of the task that
 * fills it; glibc hands large freed blocks back to the kernel. LIFO (the
 * warmest first), at most TF_BLKCACHE_BYTES.
 */
#define TF_BLKCACHE_N 64
#define TF_BLKCACHE_MIN 65536 /* smaller blocks: malloc is cheap enough */
#define TF_BLKCACHE_BYTES ((size_t)256 << 20)

typedef struct tf_blkcache {
    uint8_t *blk[TF_BLKCACHE_N];
    size_t cap[TF_BLKCACHE_N]; /* data bytes each can hold */
    size_t n, bytes;
} tf_blkcache;

typedef struct tf_store {
    tf_part_ent **slot; /* open addressing by task index, linear probing */
    size_t cap, n;
    /*
     * Entries let go of, for the next ones (linked by next): at most
     * TF_STORE_SPARE, enough for a window's parts coming and going.
     */
    tf_part_ent *spare;
    size_t nspare;
    size_t bytes, peak; /* bytes of parts held now, and at most */
    uint32_t next_anchor;
    tf_blkcache cache;
    tf_part_ent *detached; /* replaced parts still read (linked by next) */
} tf_store;

/* A block with room for len data bytes (TF_STORE_HDR before), or NULL. */
uint8_t *tf_store_block(tf_store *s, size_t len);

/* Give back a block that holds cap data bytes (NULL: nothing). */
void tf_store_unblock(tf_store *s, uint8_t *blk, size_t cap);

/* Fetch anchors count down from here; task indexes stay below. */
#define TF_STORE_ANCHOR_TOP 0xFFFFFFFEu

void tf_store_init(tf_store *s);
/* Free every part, read or not (the rank is done with the runtime). */
void tf_store_free(tf_store *s);

static inline void *tf_part_data(const tf_part_ent *e)
{
    return e->blk ? e->blk + TF_STORE_HDR : NULL;
}

/* Part `part` of task idx, or NULL. */
tf_part_ent *tf_store_find(const tf_store *s, uint32_t idx, uint32_t part);

/*
 * Add part (idx, part) of `kind`, taking over blk (TF_STORE_HDR + len
 * bytes, or NULL while FETCHING). An older entry of the same part is
 * replaced: a HOME part made again (a rerun) takes the old one's readers
 * over, the old bytes stay with them. *out (may be NULL) gets the entry.
 * Errors: TF_ENOMEM (nothing changed; blk is still the caller's).
 */
int tf_store_add(tf_store *s, uint32_t idx, uint32_t part, uint8_t kind,
                 uint8_t *blk, uint32_t len, tf_part_ent **out);

/* A FETCHING part's bytes came (taking over blk): it becomes a COPY. */
void tf_store_arrived(tf_store *s, tf_part_ent *e, uint8_t *blk, uint32_t len);

/*
 * tf_store_add of a HOME part of len <= TF_STORE_SMALL bytes, copied into
 * the entry itself (no block to allocate or to give). Errors: TF_EINVAL
 * (too long), TF_ENOMEM.
 */
int tf_store_add_copy(tf_store *s, uint32_t idx, uint32_t part,
                      const void *bytes, uint32_t len, tf_part_ent **out);

/*
 * One reader fewer; a part nobody reads goes unless it is an unfreed HOME
 * part (a fetch nobody waits for any more goes too: its bytes, if they
 * still come, find no entry and are dropped).
 */
void tf_store_unref(tf_store *s, tf_part_ent *e);

/* Rank 0 frees task idx's HOME parts (read ones go at their last unref). */
void tf_store_free_task(tf_store *s, uint32_t idx);

/*
 * Drop a FETCHING part that will never come (its holder is lost); the
 * caller has released the jobs waiting on it.
 */
void tf_store_forget(tf_store *s, tf_part_ent *e);

/* A fresh anchor for a fetch. */
static inline uint32_t tf_store_anchor(tf_store *s)
{
    if (s->next_anchor < TF_STORE_ANCHOR_TOP / 2)
        s->next_anchor = TF_STORE_ANCHOR_TOP;
    return s->next_anchor--;
}

/* Visit every entry (for a lost holder's fetches): fn may not add or drop. */
void tf_store_each(tf_store *s, void (*fn)(void *u, tf_part_ent *e), void *u);

#endif
