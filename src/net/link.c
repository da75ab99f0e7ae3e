/* This rank's link to the others: receive, send and ring, heartbeats, naps, the final drain. */
#include "link.h"

#include <time.h>

#include "core/wire.h"

int tf_link_send(tf_link *l, tf_sendq *q, tf_buf *b, int dest, int tag)
{
    int rc = tf_sendq_isend(q, l->comm, b, dest, tag);
    if (rc)
        return rc;
    l->sent++;
    tf_bells_ring(&l->bells, dest);
    tf_live_told(&l->live, dest, tf_idle_clock_ns());
    return 0;
}

int tf_link_send_empty(tf_link *l, tf_sendq *q, int dest, int tag)
{
    tf_buf b = tf_sendq_buf(q);
    int rc = tf_link_send(l, q, &b, dest, tag);
    if (rc)
        tf_buf_free(&b);
    return rc;
}

int tf_link_recv(tf_link *l, int src, tf_buf *in, int *from, int *tag)
{
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(src, MPI_ANY_TAG, l->comm, &flag, &msg, &st) !=
            MPI_SUCCESS)
            return TF_EMPI;
        if (!flag)
            return 0;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        in->n = 0;
        if (tf_buf_reserve(in, (size_t)count + 1))
            return TF_ENOMEM;
        if (MPI_Mrecv(in->p, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS)
            return TF_EMPI;
        in->n = (size_t)count;
        *from = st.MPI_SOURCE;
        *tag = st.MPI_TAG;
        l->recv++;
        tf_live_heard(&l->live, *from, tf_idle_clock_ns());
        if (tf_live_is_dead(&l->live, *from))
            tf_logf(l->log, TF_LOG_DEBUG,
                    "message with tag %d from rank %d, written off: dropped",
                    *tag, *from);
        else if (*tag != TF_TAG_HEARTBEAT)
            return 1;
    }
}

/* Write off rank r for good: the runtime is degraded. */
static void lose(tf_link *l, tf_sendq *q, int r, uint64_t now)
{
    tf_live_lose(&l->live, r);
    tf_sendq_abandon(q, r);
    tf_logf(l->log, r ? TF_LOG_WARN : TF_LOG_ERROR,
            "rank %d silent for %.1f s: written off%s", r,
            (double)(now - l->live.heard[r]) / 1e9,
            r ? "; its tasks go to other ranks" : "; ending this rank's run");
}

int tf_link_pulse(tf_link *l, tf_sendq *q)
{
    tf_live *lv = &l->live;
    if (!lv->hb_ns)
        return 0;
    uint64_t now = tf_idle_clock_ns();
    if (now < lv->next_pulse)
        return 0;
    lv->next_pulse = now + lv->hb_ns / 8;
    int nlost = 0;
    int first = l->rank == 0 ? 1 : 0, end = l->rank == 0 ? l->size : 1;
    for (int r = first; r < end; r++) {
        if (lv->dead[r])
            continue;
        if (now - lv->heard[r] > lv->hb_ns) {
            lose(l, q, r, now);
            if (l->rank)
                return TF_ELOST;
            nlost++;
        } else if (now - lv->told[r] >= lv->hb_ns / 4) {
            int rc = tf_link_send_empty(l, q, r, TF_TAG_HEARTBEAT);
            if (rc)
                return rc;
        }
    }
    return nlost;
}

void tf_link_nap(tf_link *l, long ns)
{
    if (!ns)
        return;
    if (l->pool && l->pool->nthreads) {
        tf_pool_wait(l->pool, ns); /* wakes early when a task finishes */
    } else if (!l->mpi || !tf_bells_wait(&l->bells, l->comm, ns)) {
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
}

int tf_link_drain(tf_link *l, tf_sendq *q, tf_buf *in, int src, int tag,
                  int want, int level)
{
    tf_idle idle;
    tf_idle_reset(&idle);
    int seen = 0;
    while (seen < want || tf_sendq_pending(q)) {
        int from, t, got = tf_link_recv(l, src, in, &from, &t);
        if (got < 0)
            return got;
        int p = tf_link_pulse(l, q);
        if (p < 0)
            return p;
        if (got && t == tag)
            seen++;
        else if (got)
            tf_logf(l->log, level,
                    "message with tag %d from rank %d after the end", t, from);
        int sent = tf_sendq_progress(q);
        if (sent < 0)
            return sent;
        if (got || sent)
            tf_idle_reset(&idle);
        else
            tf_link_idle(l, &idle);
    }
    return 0;
}
