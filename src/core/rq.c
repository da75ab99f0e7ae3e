/* Ready queue: a binary max-heap on (priority, -index) over the task table's priorities, merged with an in-order run. */
#include "rq.h"

#include <stdlib.h>

#include "grow.h"
#include "taskfarm_status.h"

void tf_rq_init(tf_rq *q, const int32_t *const *prio)
{
    *q = (tf_rq){.prio = prio};
}

void tf_rq_free(tf_rq *q)
{
    free(q->heap);
    free(q->run);
    tf_rq_init(q, q->prio);
}

/* True when a should come out before b. */
static inline bool before(const int32_t *prio, uint32_t a, uint32_t b)
{
    return prio[a] > prio[b] || (prio[a] == prio[b] && a < b);
}

/*
 * Only the heap is reserved: a push that cannot grow the run goes to the
 * heap, so the run never makes a reserved push fail.
 */
int tf_rq_reserve(tf_rq *q, size_t more)
{
    return tf_grow((void **)&q->heap, &q->cap, q->hn + more, sizeof *q->heap,
                   1024);
}

static uint32_t run_tail(const tf_rq *q)
{
    return q->run[(q->rhead + q->rn - 1) % q->rcap];
}

/* Append to the run, growing the ring; false if it cannot grow. */
static bool run_append(tf_rq *q, uint32_t task)
{
    if (tf_ring_grow((void **)&q->run, &q->rcap, &q->rhead, q->rn, q->rn + 1,
                     sizeof *q->run, 1024))
        return false;
    q->run[(q->rhead + q->rn) % q->rcap] = task;
    q->rn++;
    return true;
}

int tf_rq_push(tf_rq *q, uint32_t task)
{
    const int32_t *prio = *q->prio;
    if ((!q->rn || before(prio, run_tail(q), task)) && run_append(q, task)) {
        q->n++;
        return 0;
    }
    int rc = tf_rq_reserve(q, 1);
    if (rc)
        return rc;
    size_t i = q->hn++;
    q->n++;
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

/* Whether the run's head comes out before the heap's top. */
static bool run_first(const tf_rq *q)
{
    return q->rn &&
           (!q->hn || before(*q->prio, q->run[q->rhead], q->heap[0]));
}

uint32_t tf_rq_peek(const tf_rq *q)
{
    if (!q->n)
        return TF_NONE;
    return run_first(q) ? q->run[q->rhead] : q->heap[0];
}

uint32_t tf_rq_pop(tf_rq *q)
{
    if (!q->n)
        return TF_NONE;
    q->n--;
    if (run_first(q)) {
        uint32_t top = q->run[q->rhead];
        q->rhead = (q->rhead + 1) % q->rcap;
        q->rn--;
        return top;
    }
    const int32_t *prio = *q->prio;
    uint32_t top = q->heap[0];
    uint32_t last = q->heap[--q->hn];
    size_t i = 0, n = q->hn;
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

/* Put task at heap slot i, moving it up or down to where it belongs. */
static void heap_place(tf_rq *q, size_t i, uint32_t task)
{
    const int32_t *prio = *q->prio;
    while (i > 0 && before(prio, task, q->heap[(i - 1) / 2])) {
        q->heap[i] = q->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->hn)
            break;
        if (c + 1 < q->hn && before(prio, q->heap[c + 1], q->heap[c]))
            c++;
        if (!before(prio, q->heap[c], task))
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    q->heap[i] = task;
}

bool tf_rq_remove(tf_rq *q, uint32_t task)
{
    for (size_t i = 0; i < q->hn; i++) {
        if (q->heap[i] != task)
            continue;
        uint32_t last = q->heap[--q->hn];
        q->n--;
        if (i < q->hn)
            heap_place(q, i, last);
        return true;
    }
    for (size_t k = 0; k < q->rn; k++) {
        if (q->run[(q->rhead + k) % q->rcap] != task)
            continue;
        /* Close the gap: the run keeps its order. */
        for (; k + 1 < q->rn; k++)
            q->run[(q->rhead + k) % q->rcap] =
                q->run[(q->rhead + k + 1) % q->rcap];
        q->rn--;
        q->n--;
        return true;
    }
    return false;
}

uint32_t tf_rq_at(const tf_rq *q, size_t i)
{
    return i < q->hn ? q->heap[i] : q->run[(q->rhead + i - q->hn) % q->rcap];
}

size_t tf_rq_bytes(const tf_rq *q)
{
    return (q->cap + q->rcap) * sizeof *q->heap;
}

bool tf_rq_check(const tf_rq *q)
{
    const int32_t *prio = *q->prio;
    if (q->n != q->hn + q->rn)
        return false;
    for (size_t i = 1; i < q->hn; i++)
        if (before(prio, q->heap[i], q->heap[(i - 1) / 2]))
            return false;
    for (size_t i = 1; i < q->rn; i++)
        if (!before(prio, q->run[(q->rhead + i - 1) % q->rcap],
                    q->run[(q->rhead + i) % q->rcap]))
            return false;
    return true;
}
