/* Ready queue: binary heap of task indexes, highest priority first, then lowest index. */
#ifndef TF_CORE_RQ_H
#define TF_CORE_RQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"

/*
 * Ties break on the task index, which is the submission order, so equal
 * priorities come out FIFO. The heap reads priorities from the task table
 * it was given (not copies) so an entry costs 4 bytes.
 */
typedef struct tf_rq {
    uint32_t *heap;
    size_t n, cap;
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
size_t tf_rq_bytes(const tf_rq *q);

/* True when the heap property holds everywhere (tests call it). */
bool tf_rq_check(const tf_rq *q);

#endif
