/* Idle back-off: spin briefly, then sleep longer and longer, so an idle rank costs almost no CPU. */
#ifndef TF_UTIL_IDLE_H
#define TF_UTIL_IDLE_H

#include <stdint.h>
#include <time.h>

/*
 * A rank that just went idle usually gets work within microseconds: the
 * next batch is on its way. So it first polls without sleeping for a fixed
 * time, not a fixed number of polls, long enough to cover a round trip to
 * a peer that is itself busy. Measured on this VM: with a 200-poll spin, a
 * worker and rank 0 exchanging 16-task batches fell into lock-step sleeps and
 * ran 9,000 tasks/s instead of 1,000,000. After the spin the rank sleeps,
 * 20 us doubling to 1 ms. At 1 ms an idle rank wakes ~1000 times a second
 * for one probe, about 1-2% of a core on a VM where a wake-up costs ~11 us;
 * the worst added latency (1 ms) is hidden by the prefetch window.
 */
#define TF_IDLE_SPIN_NS 100000L
#define TF_IDLE_MIN_NS 20000L
#define TF_IDLE_MAX_NS 1000000L

typedef struct tf_idle {
    uint64_t since; /* monotonic ns when this idle spell began, 0 if busy */
    long sleep_ns;
} tf_idle;

static inline void tf_idle_reset(tf_idle *id)
{
    id->since = 0;
    id->sleep_ns = 0;
}

static inline uint64_t tf_idle_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds to sleep after one more empty poll; 0 means poll again now. */
static inline long tf_idle_next(tf_idle *id)
{
    uint64_t now = tf_idle_clock_ns();
    if (!id->since)
        id->since = now;
    if (now - id->since < (uint64_t)TF_IDLE_SPIN_NS)
        return 0;
    id->sleep_ns = id->sleep_ns ? id->sleep_ns * 2 : TF_IDLE_MIN_NS;
    if (id->sleep_ns > TF_IDLE_MAX_NS)
        id->sleep_ns = TF_IDLE_MAX_NS;
    return id->sleep_ns;
}

#endif
