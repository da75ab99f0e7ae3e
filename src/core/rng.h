/* Seeded pseudo-random numbers (xorshift64*): replayable, one state per user, no globals. */
#ifndef TF_CORE_RNG_H
#define TF_CORE_RNG_H

#include <stdint.h>

/*
 * Every random choice in taskfarm (tests today; steal victims later) draws
 * from a tf_rng held in its context and seeded explicitly, so that a run
 * can be replayed from the seed it logged. Not for cryptography.
 */
typedef struct tf_rng {
    uint64_t s;
} tf_rng;

static inline tf_rng tf_rng_seeded(uint64_t seed)
{
    /* Spread small seeds over the state; the state must never be 0. */
    tf_rng r = {seed * 0x9E3779B97F4A7C15u ^ 0xD1B54A32D192ED03u};
    if (!r.s)
        r.s = 1;
    return r;
}

static inline uint64_t tf_rng_next(tf_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Du;
}

/* In [0, n) for n > 0; the small bias of % does not matter for its uses. */
static inline uint32_t tf_rng_below(tf_rng *r, uint32_t n)
{
    return (uint32_t)((tf_rng_next(r) >> 11) % n);
}

#endif
