/* Ready queue: a binary max-heap on (priority, -index) over the task table's priorities. */
#include "rq.h"

#include <stdlib.h>

#include "grow.h"
#include "taskfarm_status.h"

void tf_rq_init(tf_rq *q, const int32_t *const *prio)
{
    q->heap = NULL;
    q->n = q->cap = 0;
    q->prio = prio;
}

void tf_rq_free(tf_rq *q)
{
    free(q->heap);
    q->heap = NULL;
    q->n = q->cap = 0;
}

/* True when a should come out before b. */
static inline bool before(const int32_t *prio, uint32_t a, uint32_t b)
{
    return prio[a] > prio[b] || (prio[a] == prio[b] && a < b);
}

int tf_rq_reserve(tf_rq *q, size_t more)
{
    return tf_grow((void **)&q->heap, &q->cap, q->n + more, sizeof *q->heap,
                   1024);
}

int tf_rq_push(tf_rq *q, uint32_t task)
{
    int rc = tf_rq_reserve(q, 1);
    if (rc)
        return rc;
    const int32_t *prio = *q->prio;
    size_t i = q->n++;
    /* Submission order makes most pushes land at the bottom: no sift. */
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(prio, task, q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = task;
    return 0;
}

bool tf_rq_is_empty(const tf_rq *q) { return q->n == 0; }

uint32_t tf_rq_peek(const tf_rq *q) { return q->n ? q->heap[0] : TF_NONE; }

uint32_t tf_rq_pop(tf_rq *q)
{
    if (!q->n)
        return TF_NONE;
    const int32_t *prio = *q->prio;
    uint32_t top = q->heap[0];
    uint32_t last = q->heap[--q->n];
    size_t i = 0, n = q->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(prio, q->heap[c + 1], q->heap[c]))
            c++;
        if (!before(prio, q->heap[c], last))
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    if (n)
        q->heap[i] = last;
    return top;
}

size_t tf_rq_bytes(const tf_rq *q) { return q->cap * sizeof *q->heap; }

bool tf_rq_check(const tf_rq *q)
{
    const int32_t *prio = *q->prio;
    for (size_t i = 1; i < q->n; i++)
        if (before(prio, q->heap[i], q->heap[(i - 1) / 2]))
            return false;
    return true;
}
