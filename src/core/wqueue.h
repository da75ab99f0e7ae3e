/* The tasks a worker rank holds: queued in arrival order, parked behind tasks running there, and the slots they run on. */
#ifndef TF_CORE_WQUEUE_H
#define TF_CORE_WQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A pure state machine like tf_sched: no I/O, no clock, no threads. The
 * runtime's task pool (src/exec/pool.c) drives it under its mutex, from
 * the rank's main thread and its task threads; the simulator (src/sim)
 * drives it directly. Each job carries `ref`, the driver's handle on the
 * job's payload (input, dependency outputs), which the queue never reads.
 *
 * Discipline: jobs start in arrival order; a head job wider than the free
 * slots holds back the jobs behind it (rank 0's priority order is kept).
 * A parked job waits for anchors, tasks held on this rank; it joins the
 * queue's tail when the last of them has finished well here, and leaves
 * (DROP) when one fails. Every call that can fail reserves what it needs
 * first and changes nothing on TF_ENOMEM.
 */

typedef struct tf_wq_job {
    uint32_t idx;     /* rank 0's task index */
    uint32_t ref;     /* the driver's handle on the payload */
    uint16_t cores;   /* slots it runs on */
    uint8_t attempt;
    /*
     * Never moves: released from parking here (rank 0 may not know yet
     * that it runs, and it may read an output only this rank holds), or
     * pinned here by the application.
     */
    bool local;
} tf_wq_job;

/* Actions the driver carries out and then clears (tf_wq_clear_actions). */
typedef enum tf_wq_act_kind {
    /* Job `ref` (parked) gets the output of task `anchor`, which finished well here, for each dependency entry naming it. */
    TF_WQ_FILL = 1,
    /* Job `ref` leaves without having run: report it unrun (UNRUN). */
    TF_WQ_UNRUN,
    /* Job `ref` leaves because a task it waited for failed here; rank 0 decides the same on its own: report nothing. */
    TF_WQ_DROP,
} tf_wq_act_kind;

typedef struct tf_wq_act {
    uint32_t kind;
    uint32_t ref;
    uint32_t idx;    /* the job's task */
    uint32_t anchor; /* FILL: the task whose output it gets */
} tf_wq_act;

/* How a started job ended, for its parked followers. */
typedef enum tf_wq_outcome {
    TF_WQ_OK = 0,     /* succeeded; its output is there for followers */
    TF_WQ_FAILED,     /* failed: followers DROP, transitively */
    TF_WQ_NO_OUTPUT,  /* succeeded, but its output could not be kept:
                         direct followers UNRUN (rank 0 sends them again),
                         theirs DROP */
} tf_wq_outcome;

typedef struct tf_wq_parked {
    tf_wq_job job;
    uint32_t nwait;     /* its anchor entries not yet settled; 0: gone */
    uint32_t off, nanc; /* its anchor entries: anc[off .. off + nanc) */
} tf_wq_parked;

/*
 * One anchor a parked job waits for (an entry per anchor it named, twice
 * if named twice). The entries waiting for one anchor form a chain in
 * arrival order, from the anchor's bucket: a job ending finds its
 * followers without looking at the other parked jobs (a scan of all of
 * them at every end cost a stencil on one rank ~0.5 us a task with
 * hundreds parked).
 */
typedef struct tf_wq_anc {
    uint32_t anchor;
    uint32_t next;    /* the anchor's next entry; UINT32_MAX: none */
    uint32_t park;    /* its job's place in park[] */
    uint32_t settled; /* the anchor has ended for this entry */
} tf_wq_anc;

/* An anchor that parked jobs wait for: open addressing, live 0 = empty. */
typedef struct tf_wq_bucket {
    uint32_t anchor;
    uint32_t head, tail; /* its chain (entries of jobs gone stay in it) */
    uint32_t live;       /* entries of parked jobs still waiting */
} tf_wq_bucket;

typedef struct tf_wq {
    tf_wq_job *q;           /* ring of queued jobs */
    size_t qhead, qn, qcap; /* qcap >= qn + npark: releases never allocate */
    /*
     * Parked jobs in arrival order; the ones gone (nwait 0) stay until
     * they outnumber the others, then park and anc are compacted.
     */
    tf_wq_parked *park;
    size_t npark, plen, pcap; /* parked now; entries of park[] in use */
    tf_wq_anc *anc;           /* anchor entries of parked jobs */
    size_t nanc, acap, live_anc; /* in use; not settled of parked jobs */
    tf_wq_bucket *tab;        /* anchors awaited, by anchor */
    size_t tcap, tn;          /* a power of two (or 0); buckets in use */
    unsigned slots, free_slots, running;
    /*
     * Running jobs that hold no slot of their own: the ones behind the
     * first of a batch (tf_wq_start_batch), which run one after another on
     * its slot. The ring keeps room for them too (qcap >= qn + npark +
     * batched), so that giving them back never allocates.
     */
    size_t batched;
    uint8_t *slot_busy;     /* per slot: held by a running job */
    tf_wq_act *acts;
    size_t nacts, actcap;
    uint32_t *scratch;      /* tf_wq_end: tasks whose followers go */
    size_t scap;
} tf_wq;

/* A queue for `slots` slots (1 .. 65535). Errors: TF_EINVAL, TF_ENOMEM. */
int tf_wq_init(tf_wq *q, unsigned slots);
void tf_wq_free(tf_wq *q);

/*
 * Take job j: queued, or, with nanchors > 0, parked until each of
 * anchors[] (tasks held here, which must come after it) has finished well
 * here. Errors: TF_ENOMEM.
 */
int tf_wq_push(tf_wq *q, const tf_wq_job *j, const uint32_t *anchors,
               uint32_t nanchors);

/*
 * Start the head job if it fits the free slots: it leaves the queue, *j
 * gets it and slots[] (room for j->cores; q->slots is always enough) its
 * slots, the lowest free first, so a wide task gets a compact set.
 */
bool tf_wq_start(tf_wq *q, tf_wq_job *j, uint16_t *slots);

/*
 * A batch: start the head job as tf_wq_start and, behind it, up to max - 1
 * more one-core jobs (out[1..]) to run one after another on its slot, so
 * that a thread takes many short tasks under one lock. Returns how many
 * (0: the head does not fit). All count as running; the batch's slot
 * stays busy until the last of its jobs that ran ends with tf_wq_end, the
 * others ending with tf_wq_end_batched. Jobs of it that did not start go
 * back to the head of the queue, in order, with tf_wq_unstart.
 */
size_t tf_wq_start_batch(tf_wq *q, size_t max, tf_wq_job *out,
                         uint16_t *slots);

/*
 * A job of a batch ended, not the last of it to run: as tf_wq_end, but the
 * slot stays with the batch. Errors: TF_ENOMEM (nothing changed).
 */
int tf_wq_end_batched(tf_wq *q, const tf_wq_job *j, tf_wq_outcome outcome);

/* The last n jobs of a batch never started: back to the queue's head. */
void tf_wq_unstart(tf_wq *q, const tf_wq_job *jobs, size_t n);

/*
 * Whether a parked job waits for task idx: the driver then keeps idx's
 * output for it before calling tf_wq_end.
 */
bool tf_wq_awaited(const tf_wq *q, uint32_t idx);

/*
 * Job j, started with slots[], ended: its slots are free again, and its
 * parked followers get FILL (released to the queue's tail once nothing
 * else is awaited), UNRUN or DROP actions by `outcome`. Errors: TF_ENOMEM
 * (nothing changed; the driver may retry).
 */
int tf_wq_end(tf_wq *q, const tf_wq_job *j, const uint16_t *slots,
              tf_wq_outcome outcome);

/*
 * Anchor `anchor` was settled from outside the queue (a fetched input
 * came, OK, or will never come, NO_OUTPUT): the parked jobs waiting on it
 * get FILL, UNRUN or DROP actions as for a job ending. Errors: TF_ENOMEM
 * (nothing changed).
 */
int tf_wq_arrive(tf_wq *q, uint32_t anchor, tf_wq_outcome outcome);

/*
 * A halt: every parked job (newest first), then every queued one, leaves
 * with UNRUN. Errors: TF_ENOMEM (nothing changed).
 */
int tf_wq_drop_all(tf_wq *q);

/*
 * Work stealing, victim side: take up to `max` queued jobs from the tail
 * (the latest, lowest-priority end), skipping jobs wider than `max_cores`,
 * local ones and ones that parked jobs wait for. Writes them to out (room
 * for max), oldest first, and returns how many; they leave the queue.
 */
size_t tf_wq_steal(tf_wq *q, size_t max, unsigned max_cores, tf_wq_job *out);

/* Queued jobs a thief could take (not local, not awaited). */
size_t tf_wq_stealable(const tf_wq *q);

/* Jobs held: queued, running or parked. */
static inline size_t tf_wq_held(const tf_wq *q)
{
    return q->qn + q->running + q->npark;
}

/* Free slots when nothing is queued (the rank could start more), else 0. */
static inline unsigned tf_wq_idle_slots(const tf_wq *q)
{
    return q->qn ? 0 : q->free_slots;
}

static inline const tf_wq_act *tf_wq_actions(const tf_wq *q, size_t *n)
{
    *n = q->nacts;
    return q->acts;
}
static inline void tf_wq_clear_actions(tf_wq *q) { q->nacts = 0; }

/*
 * Check every invariant (slot accounting, ring room for releases, parked
 * jobs' waits, anchor entries and buckets, no task held twice).
 * O(held x anchors).
 * Returns true when all hold; otherwise writes the first violation to why.
 */
bool tf_wq_check(const tf_wq *q, char *why, size_t len);

#endif
