/* Walltime-aware dispatch: tasks' expected durations, learnt per family, against a deadline. */
#ifndef TF_CORE_WALLTIME_H
#define TF_CORE_WALLTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rq.h"

/*
 * The scheduler's view of time (tf_sched.wt). Like the rest of the core it
 * reads no clock: the driver says what time it is (tf_sched_clock) in the
 * clock it gave the deadline in. With no deadline nothing here is looked
 * at, and with no estimate or family given nothing is allocated.
 *
 * A task's estimate is the one given for it (@est, tf_task_desc.est_ms),
 * else what its family has taught: TF_WT_LEARN_NUM / TF_WT_LEARN_DEN times
 * the longest successful run of a task of the same family seen so far.
 * The longest, not a mean or a quantile: a task held back costs the wait
 * for the next job, one started too late costs all its work and is killed
 * all the same; and the longest takes 4 bytes per family, no history. The
 * factor covers the next task being a little slower than every one seen.
 * A task with neither is unknown: it starts while the deadline has not
 * come (it may then be ended at the deadline).
 */
#define TF_WT_LEARN_NUM 5u
#define TF_WT_LEARN_DEN 4u
/* Families are numbered 1 .. TF_WT_FAMILY_MAX; 0 is none (4 bytes each). */
#define TF_WT_FAMILY_MAX (1u << 24)
/* Estimates above this (24.8 days) count as this much. */
#define TF_WT_EST_MAX 0x7FFFFFFFu

typedef struct tf_walltime {
    uint64_t deadline_ns; /* 0: none */
    uint64_t now_ns;      /* the driver's clock, as of tf_sched_clock */
    /*
     * Per task, allocated when a task first gets an estimate or a family;
     * tasks from `n` on have neither. est_ms holds the given estimate, or,
     * with TF_WT_CHARGED, the learnt one its worker was charged with at
     * dispatch (so that the same is taken off when it leaves).
     */
    uint32_t *est_ms;
    uint32_t *family; /* 0: none */
    uint32_t n;
    size_t ecap, fcap;
    uint32_t *fam_ms; /* per family: its longest successful run, 0: none */
    size_t nfam, famcap;
    /*
     * READY tasks that cannot finish before the deadline: set aside at
     * dispatch so they neither block the queue nor are looked at again,
     * back in the ready queue if the deadline moves later.
     */
    tf_rq late;
} tf_walltime;

#define TF_WT_CHARGED 0x80000000u

void tf_wt_init(tf_walltime *w, const int32_t *const *prio);
void tf_wt_free(tf_walltime *w);

/*
 * Room to set task t's estimate and family, so that tf_wt_set cannot fail
 * then. Errors: TF_EINVAL (a family out of range), TF_ENOMEM; nothing
 * changes on either.
 */
int tf_wt_reserve(tf_walltime *w, uint32_t t, uint32_t family);

/*
 * Task t's given estimate (0: none; above TF_WT_EST_MAX counts as that)
 * and family (0: none, else 1 .. TF_WT_FAMILY_MAX). Errors: as
 * tf_wt_reserve's, none after it.
 */
int tf_wt_set(tf_walltime *w, uint32_t t, uint32_t est_ms, uint32_t family);

/* Task t's estimate in ms, given or learnt; 0: unknown. */
uint32_t tf_wt_est(const tf_walltime *w, uint32_t t);

/* Task t succeeded after dur_ns: its family may learn a longer run. */
void tf_wt_learn(tf_walltime *w, uint32_t t, uint64_t dur_ns);

/*
 * Task t goes to a worker (charge) or leaves it (discharge): the estimate
 * the worker's queue wait counts for it, the same both times (a learnt one
 * is kept with the task in between).
 */
uint32_t tf_wt_charge(tf_walltime *w, uint32_t t);
uint32_t tf_wt_discharge(tf_walltime *w, uint32_t t);

/* What task t is charged with while a worker holds it. */
static inline uint32_t tf_wt_charged(const tf_walltime *w, uint32_t t)
{
    return t < w->n ? w->est_ms[t] & ~TF_WT_CHARGED : 0;
}

size_t tf_wt_bytes(const tf_walltime *w);

#endif
