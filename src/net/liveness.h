/* Liveness (tf_config.heartbeat_ms): when each rank was last heard from and told something, and the ranks written off. */
#ifndef TF_NET_LIVENESS_H
#define TF_NET_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Open MPI 4.1 never reports a dead rank, so liveness is inferred: a rank
 * silent for hb_ns is written off for good (it may only be late; what it
 * says from then on is dropped, and its work was given to others). A rank
 * once lost stays lost, and the runtime is degraded: later runs fail with
 * TF_ELOST, since a collective would wait for the dead rank forever. With
 * hb_ns 0 (no heartbeats) nothing is tracked and nobody is ever lost.
 */
typedef struct tf_live {
    uint64_t hb_ns, next_pulse;
    uint64_t call_at; /* rank 0's roll call (tf_live_call), 0: none */
    uint64_t *heard, *told; /* monotonic ns, per rank */
    uint64_t heard_any;     /* the latest of heard[] */
    bool *dead;
    int size;
    uint32_t nlost;
    bool degraded;
} tf_live;

/*
 * A run with heartbeats every hb_ns / 4 (0: none) begins: every rank
 * counts as just heard from and just told, so each has a full timeout.
 * Errors: TF_ENOMEM.
 */
int tf_live_start(tf_live *lv, int size, uint64_t hb_ns, uint64_t now);
void tf_live_free(tf_live *lv);

static inline bool tf_live_is_dead(const tf_live *lv, int r)
{
    return lv->dead && lv->dead[r];
}

static inline void tf_live_heard(tf_live *lv, int r, uint64_t now)
{
    if (!lv->heard)
        return;
    lv->heard[r] = now;
    /* Read by rank 0's task threads too (its fence, sched_loop.c). */
    __atomic_store_n(&lv->heard_any, now, __ATOMIC_RELAXED);
}

static inline void tf_live_told(tf_live *lv, int r, uint64_t now)
{
    if (lv->told)
        lv->told[r] = now;
}

/*
 * A roll call, on rank 0 when it halts the run: every worker answers the
 * HALT at once, so a rank not heard from in the TF_LIVE_CALL_NS after it
 * is written off then, not a whole heartbeat period later. A stop on the
 * batch system's warning must end before the job is killed, and a node
 * that died meanwhile would hold it for the whole period (30 s by
 * default). Only where workers' main threads run no tasks, so that a live
 * one always answers in time.
 */
#define TF_LIVE_CALL_NS 2000000000u
void tf_live_call(tf_live *lv, uint64_t now);

/* Pulses (tf_link_pulse) looked at every rank now: when to look next. */
void tf_live_pulsed(tf_live *lv, uint64_t now);

/* Whether rank r is overdue: silent too long, or silent at a roll call. */
static inline bool tf_live_overdue(const tf_live *lv, int r, uint64_t now)
{
    return now - lv->heard[r] > lv->hb_ns ||
           (lv->call_at && lv->heard[r] < lv->call_at &&
            now - lv->call_at > TF_LIVE_CALL_NS);
}

/* Write rank r off. */
void tf_live_lose(tf_live *lv, int r);

/*
 * Rank 0 says it wrote off n ranks (a worker learns it at STOP and
 * RELEASE): any makes this runtime degraded too, so that a worker knows
 * to end with _exit (Open MPI 4.1's MPI_Finalize can spin forever with a
 * dead peer).
 */
void tf_live_took_losses(tf_live *lv, uint32_t n);

#endif
