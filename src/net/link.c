/* This rank's link to the others: receive, send and ring, heartbeats, naps, the final drain. */
#include "link.h"

#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "core/grow.h"
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

/* Whether a receive from `from` is in flight (its later messages wait). */
static bool in_flight_from(const tf_link *l, int from)
{
    for (size_t i = 0; i < l->nfl; i++)
        if (l->fl[i].from == from)
            return true;
    return false;
}

/*
 * The first receive in flight (from src, or any) that has arrived and has
 * none from its sender before it: into *in (taken over), 1; 0 if none; or
 * TF_EMPI.
 */
static int landed(tf_link *l, int src, tf_buf *in, int *from, int *tag)
{
    for (size_t i = 0; i < l->nfl; i++) {
        tf_inflight *f = &l->fl[i];
        if (src != MPI_ANY_SOURCE && f->from != src)
            continue;
        bool first = true;
        for (size_t k = 0; k < i && first; k++)
            first = l->fl[k].from != f->from;
        int done = 0;
        if (!first)
            continue;
        if (MPI_Test(&f->req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return TF_EMPI;
        if (!done)
            continue;
        free(in->p);
        *in = (tf_buf){f->p, f->n, f->n};
        *from = f->from;
        *tag = f->tag;
        l->nfl--;
        for (size_t k = i; k < l->nfl; k++)
            l->fl[k] = l->fl[k + 1];
        return 1;
    }
    return 0;
}

void tf_link_forget(tf_link *l, int r)
{
    size_t keep = 0;
    for (size_t i = 0; i < l->nfl; i++)
        if (l->fl[i].from != r)
            l->fl[keep++] = l->fl[i];
    l->nfl = keep;
}

/*
 * Match the next message and receive it: at once when small (it has
 * arrived whole), else into the receives in flight. 1 with the message in
 * *in; 2 when it went in flight; 0 when none; or a TF_E code.
 */
static int match(tf_link *l, int src, tf_buf *in, int *from, int *tag)
{
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
    *from = st.MPI_SOURCE;
    *tag = st.MPI_TAG;
    /*
     * Between workers always: a worker's peers may die in the middle of a
     * part they send. To and from rank 0 only with heartbeats, where a
     * dead rank is survived (a worker written off, rank 0 taken over): a
     * worker blocked in MPI_Mrecv on a batch of 8 KB commands from a
     * killed rank 0 never noticed its death and was left out of the
     * take-over. Without heartbeats the job ends with any rank, and a
     * message from or to rank 0 taken a pass later cost fine-grained
     * tasks 20% of their METG.
     */
    bool guard = (l->rank != 0 && *from != 0) || l->live.hb_ns;
    if (guard && (count > TF_LINK_EAGER || in_flight_from(l, *from))) {
        uint8_t *p = malloc((size_t)count + 1);
        if (!p || tf_grow((void **)&l->fl, &l->flcap, l->nfl + 1,
                          sizeof *l->fl, 8)) {
            free(p);
            return TF_ENOMEM;
        }
        tf_inflight *f = &l->fl[l->nfl];
        *f = (tf_inflight){MPI_REQUEST_NULL, p, (size_t)count, *from, *tag};
        if (MPI_Imrecv(p, count, MPI_BYTE, &msg, &f->req) != MPI_SUCCESS) {
            free(p);
            return TF_EMPI;
        }
        l->nfl++;
        return 2;
    }
    in->n = 0;
    if (tf_buf_reserve(in, (size_t)count + 1))
        return TF_ENOMEM;
    if (MPI_Mrecv(in->p, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) !=
        MPI_SUCCESS)
        return TF_EMPI;
    in->n = (size_t)count;
    return 1;
}

int tf_link_recv(tf_link *l, int src, tf_buf *in, int *from, int *tag)
{
    for (;;) {
        int got = l->nfl ? landed(l, src, in, from, tag) : 0;
        if (!got)
            got = match(l, src, in, from, tag);
        if (got == 2)
            continue; /* in flight: look for more */
        if (got <= 0)
            return got;
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
void tf_link_write_off(tf_link *l, tf_sendq *q, int r)
{
    tf_live_lose(&l->live, r);
    tf_sendq_abandon(q, r);
    tf_link_forget(l, r);
}

static void lose(tf_link *l, tf_sendq *q, int r, uint64_t now)
{
    tf_link_write_off(l, q, r);
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
    tf_live_pulsed(lv, now);
    int nlost = 0;
    int first = l->rank == 0 ? 1 : 0, end = l->rank == 0 ? l->size : 1;
    for (int r = first; r < end; r++) {
        if (lv->dead[r])
            continue;
        if (tf_live_overdue(lv, r, now)) {
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

static bool pool_busy(void *pool)
{
    return tf_pool_has_events(pool);
}

void tf_link_set_naps(tf_link *l)
{
    bool bell = tf_bells_mine(&l->bells);
    if (l->mpi && l->pool && l->pool->nthreads && bell) {
        l->pool->wake_user = &l->bells;
        l->pool->wake = tf_bells_ring_self;
    }
    /* Alone, nothing but the own task threads wakes it: they do already. */
    l->rung = !l->mpi || l->size == 1 ||
              (bell && l->bells.peers == l->size - 1);
}

void tf_link_nap(tf_link *l, long ns)
{
    if (!ns) {
        if (l->yield)
            sched_yield();
        return;
    }
    /*
     * On the doorbell when this rank has one, which its task threads ring
     * too (tf_link_set_naps): a message and a finished task both end
     * the nap. Otherwise on the task threads' events, or a timer.
     */
    bool threads = l->pool && l->pool->nthreads;
    if (l->mpi && l->pool && l->pool->wake) {
        tf_bells_wait(&l->bells, l->comm, ns, pool_busy, l->pool);
    } else if (threads) {
        tf_pool_wait(l->pool, ns); /* wakes early when a task finishes */
    } else if (!l->mpi || !tf_bells_wait(&l->bells, l->comm, ns, NULL, NULL)) {
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
            tf_link_idle(l, q, &idle);
    }
    return 0;
}
