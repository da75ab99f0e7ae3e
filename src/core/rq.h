/* Ready queue: highest priority first, then lowest index; a binary heap plus a FIFO run for tasks that arrive in order. */
#ifndef TF_CORE_RQ_H
#define TF_CORE_RQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"

/*
 * Ties break on the task index, which is the submission order, so equal
 * priorities come out FIFO. Entries are task indexes (4 bytes); priorities
 * are read from the task table the queue was given (not copies).
 *
 * Most tasks become ready in the order they come out: a bulk submission at
 * one priority, or dependents released in submission order. Such a task
 * joins `run`, a ring kept in pop order, in O(1), compared with the run's
 * tail only; any other goes into the binary heap. A pop takes the
 * better of the run's head and the heap's top, so the order is exactly
 * that of one heap: at 2M ready tasks, a heap pop alone cost rank 0 a cache
 * miss per level and 13% of its time in bench/empty.
 */
typedef struct tf_rq {
    uint32_t *heap;
    size_t hn, cap;   /* heap entries and capacity */
    uint32_t *run;    /* ring, each entry after the one before in pop order */
    size_t rhead, rn, rcap;
    size_t n;         /* hn + rn */
    const int32_t *const *prio; /* points at the dag's prio array pointer */
} tf_rq;

void tf_rq_init(tf_rq *q, const int32_t *const *prio);
void tf_rq_free(tf_rq *q);
int tf_rq_push(tf_rq *q, uint32_t task); /* TF_ENOMEM */
/* Make room for `more` pushes that then cannot fail. TF_ENOMEM. */
int tf_rq_reserve(tf_rq *q, size_t more);
bool tf_rq_is_empty(const tf_rq *q);
uint32_t tf_rq_peek(const tf_rq *q); /* TF_NONE when empty */
uint32_t tf_rq_pop(tf_rq *q);        /* TF_NONE when empty */
/*
 * Take task out of the queue wherever it is (a search: for the rare task
 * that must wait again). False if it is not there.
 */
bool tf_rq_remove(tf_rq *q, uint32_t task);
/* Entry i < n, in no particular order (checks and tests list them). */
uint32_t tf_rq_at(const tf_rq *q, size_t i);
size_t tf_rq_bytes(const tf_rq *q);

/* True when the heap property and the run's order hold (tests call it). */
bool tf_rq_check(const tf_rq *q);

#endif
