/* The simulator's event queue: a binary min-heap on (virtual time, sequence number). */
#include "evq.h"

#include "grow.h"

static bool before(const sim_ev *a, const sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void sim_evq_free(sim_evq *q)
{
    free(q->h);
    *q = (sim_evq){0};
}

int sim_evq_push(sim_evq *q, uint64_t t, uint32_t kind, uint32_t who,
                 uint64_t arg)
{
    int rc = tf_grow((void **)&q->h, &q->cap, q->n + 1, sizeof *q->h, 1024);
    if (rc)
        return rc;
    sim_ev e = {t, q->next_seq++, kind, who, arg};
    size_t i = q->n++;
    while (i > 0 && before(&e, &q->h[(i - 1) / 2])) {
        q->h[i] = q->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->h[i] = e;
    return 0;
}

bool sim_evq_pop(sim_evq *q, sim_ev *ev)
{
    if (!q->n)
        return false;
    *ev = q->h[0];
    sim_ev last = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && before(&q->h[c + 1], &q->h[c]))
            c++;
        if (!before(&q->h[c], &last))
            break;
        q->h[i] = q->h[c];
        i = c;
    }
    if (q->n)
        q->h[i] = last;
    return true;
}
