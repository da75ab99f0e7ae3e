/* This rank's link to the others: the private communicator, receiving, sending with doorbells, heartbeats, and waiting without a busy core. */
#ifndef TF_NET_LINK_H
#define TF_NET_LINK_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "bell.h"
#include "core/buf.h"
#include "exec/pool.h"
#include "liveness.h"
#include "sendq.h"
#include "util/idle.h"
#include "util/log.h"

/*
 * Every message of the runtime goes through one link: the MPI_Comm_dup of
 * the communicator given to tf_init (MPI_ERRORS_RETURN on it alone). No
 * call blocks: receives probe (MPI_Improbe + MPI_Mrecv, sized exactly; a
 * large one, MPI_Imrecv, completed later),
 * sends go through a tf_sendq, and a rank with nothing to do naps on its
 * doorbell, its task threads' events or a timer (src/util/idle.h).
 */
/*
 * A message matched but still arriving (between workers, and with
 * heartbeats to and from rank 0 too): one larger than any eager limit (its
 * sender could die half way, and a blocking MPI_Mrecv would then wait for
 * ever), or one from a sender that has such a message before it (the
 * order of a sender's messages is kept).
 */
typedef struct tf_inflight {
    MPI_Request req;
    uint8_t *p;
    size_t n;
    int from, tag;
} tf_inflight;

typedef struct tf_link {
    MPI_Comm comm;
    bool mpi; /* false: tf_init_local, no MPI call is ever made */
    int rank, size;
    const tf_logger *log;
    tf_live live;        /* heartbeats and ranks written off */
    tf_bells bells;      /* doorbells of the ranks on this node */
    bool rung;           /* every peer rings this rank: long naps (below) */
    bool yield;          /* more busy threads than cores: idle polls yield */
    tf_pool *pool;       /* task threads whose events end a nap, or NULL */
    uint64_t sent, recv; /* messages */
    tf_inflight *fl;     /* receives in flight, in matching order */
    size_t nfl, flcap;
} tf_link;

/* Bigger than this a message may come by rendezvous (Open MPI sm: 4 KiB). */
#define TF_LINK_EAGER 4096

/*
 * Rank r is gone: forget its receives in flight (their buffers are leaked
 * on purpose, as MPI may still write to them).
 */
void tf_link_forget(tf_link *l, int r);

/*
 * Write rank r off for good: lost to liveness, its sends in q abandoned,
 * its receives in flight forgotten (tf_link_pulse does it to a silent
 * rank; a worker to rank 0 when a peer gave up on it).
 */
void tf_link_write_off(tf_link *l, tf_sendq *q, int r);

/*
 * Send b (taken over) to dest with tag through q, and ring dest's bell.
 * Errors: TF_ENOMEM, TF_ERANGE, TF_EMPI; b is untouched then.
 */
int tf_link_send(tf_link *l, tf_sendq *q, tf_buf *b, int dest, int tag);

/* Send an empty message (STOP_ACK, HALT, HEARTBEAT). */
int tf_link_send_empty(tf_link *l, tf_sendq *q, int dest, int tag);

/*
 * Receive one pending message from src (or MPI_ANY_SOURCE) into in, if
 * there is one: 1 with *from and *tag set, 0 when none, or a TF_E code.
 * Messages of a rank written off are read and dropped (it may only be
 * late, and what it says was given to others meanwhile); heartbeats only
 * count as hearing from their sender.
 */
int tf_link_recv(tf_link *l, int src, tf_buf *in, int *from, int *tag);

/*
 * Heartbeats (hb_ns): tell a peer this rank lives when it has sent it
 * nothing for a quarter of the timeout, and write off a peer silent for
 * all of it (its sends in q are abandoned). Rank 0 watches its workers, a
 * worker rank 0 only. Checked every eighth of the timeout. Returns the
 * ranks lost now, or TF_ELOST on a worker when rank 0 is gone.
 */
int tf_link_pulse(tf_link *l, tf_sendq *q);

/*
 * Once bells are up, how this rank naps. With task threads and a doorbell,
 * the threads ring the bell when they post an event, so the rank naps on
 * the bell alone. And whether it is rung by every peer (l->rung).
 */
void tf_link_set_naps(tf_link *l);

/* Sleep ns (0: not at all): on the pool's events, the doorbell or a timer. */
void tf_link_nap(tf_link *l, long ns);

/*
 * The longest nap now (src/util/idle.h): long when every message would
 * ring this rank's doorbell, or no message can come at all (tf_init_local),
 * and no send in q nor receive in flight needs MPI to move it; 1 ms
 * otherwise. A send MPI queued inside rings nobody when it leaves, so a
 * rank whose peer is busy sending takes it late by up to the long nap.
 */
static inline long tf_link_nap_max(const tf_link *l, const tf_sendq *q)
{
    return l->rung && !tf_sendq_pending(q) && !l->nfl ? TF_IDLE_RUNG_MAX_NS
                                                       : TF_IDLE_MAX_NS;
}

/* One more empty pass: nap as long as the idle back-off says. */
static inline void tf_link_idle(tf_link *l, const tf_sendq *q, tf_idle *idle)
{
    tf_link_nap(l, tf_idle_next(idle, tf_link_nap_max(l, q)));
}

/*
 * Keep sends moving and read messages from src until `want` of them carried
 * `tag` and every send has completed. Anything else that arrives now is a
 * straggler of a run that is ending: logged at `level`, dropped.
 */
int tf_link_drain(tf_link *l, tf_sendq *q, tf_buf *in, int src, int tag,
                  int want, int level);

#endif
