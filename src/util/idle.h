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
 * 20 us doubling to a cap the caller gives:
 * - TF_IDLE_MAX_NS (1 ms) when a message could arrive without waking it (a
 *   peer on another node, a send or receive MPI must still move): at 1 ms an
 *   idle rank wakes ~1000 times a second, 4 to 6% of a core on this VM where
 *   a wake-up and its probe cost ~45 us; the worst added latency (1 ms) is
 *   hidden by the prefetch window.
 * - TF_IDLE_RUNG_MAX_NS (16 ms) when every sender rings this rank's doorbell
 *   (src/net/bell.c): a nap then ends when work comes, and the timer only
 *   bounds how late heartbeats, ticks and freed outputs go out; measured,
 *   an idle rank's share of a core fell from 4-6% to 0.6-2.5%
 *   with 4 ranks on 2 cores (test_idle).
 */
#define TF_IDLE_SPIN_NS 100000L
#define TF_IDLE_MIN_NS 20000L
#define TF_IDLE_MAX_NS 1000000L
#define TF_IDLE_RUNG_MAX_NS 16000000L

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

/*
 * Nanoseconds to sleep after one more empty poll, at most max_ns; 0 means
 * poll again now.
 */
static inline long tf_idle_next(tf_idle *id, long max_ns)
{
    uint64_t now = tf_idle_clock_ns();
    if (!id->since)
        id->since = now;
    if (now - id->since < (uint64_t)TF_IDLE_SPIN_NS)
        return 0;
    id->sleep_ns = id->sleep_ns ? id->sleep_ns * 2 : TF_IDLE_MIN_NS;
    if (id->sleep_ns > max_ns)
        id->sleep_ns = max_ns;
    return id->sleep_ns;
}

#endif
