/* Sends in flight: each owns its buffer until MPI is done with it; finished buffers are reused. */
#ifndef TF_NET_SENDQ_H
#define TF_NET_SENDQ_H

#include <mpi.h>
#include <stddef.h>

#include "core/buf.h"

typedef struct tf_send {
    MPI_Request req;
    tf_buf buf;
    int dest;
} tf_send;

typedef struct tf_sendq {
    tf_send *s;
    size_t n, cap;
    tf_buf *spare; /* finished buffers kept for reuse */
    size_t nspare, spcap;
} tf_sendq;

/* An empty buffer, reusing a finished one when there is one. */
tf_buf tf_sendq_buf(tf_sendq *q);

/*
 * Start sending b (taken over: *b is emptied) to dest with tag. Errors:
 * TF_ENOMEM, TF_ERANGE (over 2 GiB), TF_EMPI; b is untouched then.
 */
int tf_sendq_isend(tf_sendq *q, MPI_Comm comm, tf_buf *b, int dest, int tag);

/* Retire finished sends. Returns how many finished, or TF_EMPI. */
int tf_sendq_progress(tf_sendq *q);

/*
 * Forget the sends to a rank that is gone: they would never complete.
 * Their buffers are leaked on purpose, as MPI may still hold them; a few
 * messages per lost rank.
 */
void tf_sendq_abandon(tf_sendq *q, int dest);

/* Sends still in flight. */
static inline size_t tf_sendq_pending(const tf_sendq *q) { return q->n; }

void tf_sendq_free(tf_sendq *q);

#endif
