/* Work-stealing policy: where ranks are, which victims a thief asks first, how much it takes. */
#ifndef TF_CORE_STEAL_H
#define TF_CORE_STEAL_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/*
 * Where a rank runs, as it reports itself when a run starts: a hash of its
 * host name and the NUMA node its cores belong to (-1: unknown or several).
 */
typedef struct tf_loc {
    uint64_t host;
    int32_t numa;
} tf_loc;

/* 0: same host and NUMA node; 1: same host; 2: another host. */
static inline int tf_loc_distance(const tf_loc *a, const tf_loc *b)
{
    if (a->host != b->host)
        return 2;
    return a->numa >= 0 && a->numa == b->numa ? 0 : 1;
}

/*
 * The order in which rank `self` asks ranks first .. n-1 (itself excluded)
 * for work: nearest first (tf_loc_distance), in a random order within each
 * distance, drawn from rng so that a seeded run replays. Writes the
 * n - first - 1 victims to out (room for n entries is enough) and returns
 * how many.
 */
size_t tf_steal_order(const tf_loc *loc, uint32_t first, uint32_t n,
                      uint32_t self, tf_rng *rng, uint32_t *out);

/*
 * The same order over the candidate ranks cand[0 .. ncand) (self skipped
 * if among them); out must not overlap cand.
 */
size_t tf_steal_order_of(const tf_loc *loc, const uint32_t *cand,
                         size_t ncand, uint32_t self, tf_rng *rng,
                         uint32_t *out);

/*
 * The ranks first .. n-1 other than self on self's host, in rank order,
 * into out (room for n entries is enough); returns how many.
 */
size_t tf_steal_same_host(const tf_loc *loc, uint32_t first, uint32_t n,
                          uint32_t self, uint32_t *out);

/*
 * How many of a victim's `stealable` queued tasks a thief takes: half,
 * rounded up, so that one steal evens out two queues and a lone queued
 * task can still move.
 */
static inline uint32_t tf_steal_amount(uint32_t stealable)
{
    return stealable / 2 + stealable % 2;
}

#endif
