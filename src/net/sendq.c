/* Sends in flight: MPI_Isend into a queue of requests, buffers recycled when MPI is done with them. */
#include "sendq.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

void tf_sendq_free(tf_sendq *q)
{
    for (size_t i = 0; i < q->n; i++)
        tf_buf_free(&q->s[i].buf);
    for (size_t i = 0; i < q->nspare; i++)
        tf_buf_free(&q->spare[i]);
    free(q->s);
    free(q->spare);
    memset(q, 0, sizeof *q);
}

tf_buf tf_sendq_buf(tf_sendq *q)
{
    if (q->nspare) {
        tf_buf b = q->spare[--q->nspare];
        b.n = 0;
        return b;
    }
    return (tf_buf){NULL, 0, 0};
}

/* Keep a finished buffer for reuse (as many as were ever in flight). */
static void give_back(tf_sendq *q, tf_buf *b)
{
    if (tf_grow((void **)&q->spare, &q->spcap, q->nspare + 1,
                sizeof *q->spare, 8))
        tf_buf_free(b);
    else
        q->spare[q->nspare++] = *b;
}

int tf_sendq_isend(tf_sendq *q, MPI_Comm comm, tf_buf *b, int dest, int tag)
{
    if (b->n > (size_t)INT32_MAX)
        return TF_ERANGE;
    if (tf_grow((void **)&q->s, &q->cap, q->n + 1, sizeof *q->s, 16))
        return TF_ENOMEM;
    tf_send *s = &q->s[q->n];
    if (MPI_Isend(b->p, (int)b->n, MPI_BYTE, dest, tag, comm, &s->req) !=
        MPI_SUCCESS)
        return TF_EMPI;
    s->buf = *b;
    s->dest = dest;
    q->n++;
    *b = (tf_buf){NULL, 0, 0};
    return 0;
}

int tf_sendq_progress(tf_sendq *q)
{
    int done = 0;
    for (size_t i = 0; i < q->n;) {
        int flag = 0;
        if (MPI_Test(&q->s[i].req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return TF_EMPI;
        if (!flag) {
            i++;
            continue;
        }
        give_back(q, &q->s[i].buf);
        q->s[i] = q->s[--q->n];
        done++;
    }
    return done;
}

void tf_sendq_abandon(tf_sendq *q, int dest)
{
    for (size_t i = 0; i < q->n;) {
        if (q->s[i].dest != dest) {
            i++;
            continue;
        }
        MPI_Request_free(&q->s[i].req);
        q->s[i] = q->s[--q->n];
    }
}
