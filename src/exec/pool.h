/* The task runner of one rank: a job queue, slot accounting, task threads, completion events. */
#ifndef TF_EXEC_POOL_H
#define TF_EXEC_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/registry.h"
#include "core/store.h"
#include "core/worker.h"
#include "core/wqueue.h"
#include "taskfarm_task.h"

/*
 * A dependency's output as a task sees it, and where it comes from:
 * INLINE, bytes in the task's message; LOCAL, part `part` of task `idx`,
 * which runs here and has not finished (the job is parked on it); REMOTE,
 * part `part` of finished task `idx`, held by rank `from` (this rank:
 * its store has it; another: a fetch). Once filled, `ent` is the store
 * entry it reads (a reference held), or NULL for inline bytes.
 */
enum { TF_DEP_INLINE = 0, TF_DEP_LOCAL, TF_DEP_REMOTE };

typedef struct tf_dep {
    const void *buf;
    uint32_t len;
    uint32_t anchor; /* TF_POOL_NO_ANCHOR once filled, else what it waits on */
    uint32_t idx, part;
    int32_t from;    /* REMOTE: the holder */
    uint8_t kind;    /* TF_DEP_* */
    tf_part_ent *ent;
} tf_dep;

#define TF_POOL_NO_ANCHOR UINT32_MAX

/*
 * One task to run here: its payload. The pool keeps it by the handle
 * (`ref`) its tf_wq entry carries; pointers stay valid until its DONE (or
 * UNRUN) event is released by the driver.
 */
typedef struct tf_job {
    uint32_t idx; /* rank 0's table index, echoed in the DONE event */
    uint32_t fn;
    uint64_t gid;
    uint16_t cores;
    uint8_t attempt;
    uint8_t flags; /* TF_WIRE_SEND, TF_WIRE_DEPS: rank 0's word on its output */
    uint32_t in_len;
    const void *in;
    uint32_t ndeps;
    tf_dep *deps; /* owned by `owner`; filled by the pool as they come */
    void *owner;  /* handed back in the DONE event for the driver to release */
    bool missing; /* an input its holder no longer has: fails with TF_ELOST */
} tf_job;

/* A part of a finished task's output, as the DONE event hands it over. */
typedef struct tf_evpart {
    uint8_t *blk;     /* TF_STORE_HDR bytes, then len bytes; NULL: empty */
    uint32_t len;
    tf_part_ent *ent; /* kept in the store (DEPS): the bytes are its, and the
                         event holds a reference (tf_pool_unref) */
} tf_evpart;

/* A part to ask a peer for (tf_pool_push collects them). */
typedef struct tf_fetch {
    int32_t from;
    uint32_t idx, part;
} tf_fetch;

typedef struct tf_fetchvec {
    tf_fetch *v;
    size_t n, cap;
} tf_fetchvec;

/*
 * UNRUN: a queued or parked job dropped by tf_pool_drop_queued, never
 * started (also a parked job whose dependency's output could not be
 * copied). DROP: a parked job given up because a dependency failed or was
 * itself unrun; rank 0 decides the same on its own, so the driver only
 * releases the owner and reports nothing.
 */
enum { TF_EV_DONE = 1, TF_EV_SUBMIT = 2, TF_EV_UNRUN = 3, TF_EV_DROP = 4 };

#define TF_EV_TINY 16 /* a part 0 this long or shorter: in the event */

/*
 * What the task threads tell the driver, in the order it happened: a task's
 * children are always reported before the task itself is DONE, which is what
 * lets rank 0 conclude that a run is over once every task it knows is.
 */
typedef struct tf_event {
    uint8_t kind;
    /* DONE (and UNRUN, DROP: idx, owner) */
    uint32_t idx;
    uint8_t attempt;
    int32_t status;
    uint64_t start_ns, end_ns;
    uint16_t slot; /* DONE: the lowest of the slots it held */
    void *owner;
    /* SUBMIT */
    uint64_t gid;
    uint64_t parent; /* id of the task that submitted it */
    uint32_t fn;
    int32_t prio;
    uint16_t cores;
    int16_t retries;
    uint32_t ndeps;
    uint64_t *deps; /* malloc'd, the driver frees */
    /* SUBMIT input; malloc'd, the driver frees or keeps */
    void *data;
    uint32_t data_len;
    /*
     * DONE: the output's parts, nparts of them (tf_pool_done_parts frees
     * them). Part 0 is part0 itself, and its bytes, when 1 to TF_EV_TINY
     * long, are `tiny` (blk NULL); parts 1 on are a malloc'd array. A
     * task's result is usually one small part, and an array and a block
     * of its own cost two mallocs and two frees per task.
     */
    tf_evpart part0;
    _Alignas(max_align_t) uint8_t tiny[TF_EV_TINY];
    tf_evpart *parts; /* parts 1.. */
    uint16_t nparts;
    uint8_t flags; /* DONE: the job's TF_WIRE_* flags */
} tf_event;

/* Part i < nparts of a DONE event (like strchr, const in, not out). */
static inline tf_evpart *tf_event_part(const tf_event *e, uint16_t i)
{
    return i ? &e->parts[i - 1] : (tf_evpart *)&e->part0;
}

/* The bytes of part i, NULL when it has none. */
static inline const uint8_t *tf_event_bytes(const tf_event *e, uint16_t i)
{
    const tf_evpart *pt = tf_event_part(e, i);
    return pt->blk ? pt->blk + TF_STORE_HDR : !i && pt->len ? e->tiny : NULL;
}

typedef struct tf_evvec {
    tf_event *v;
    size_t n, cap;
} tf_evvec;

/* Most jobs a thread takes under one lock (pool.c, run_jobs). */
#define TF_POOL_BATCH 64

/*
 * A thread that runs jobs (a task thread, or the driver as a slot) and its
 * batch: jobs taken from the queue under one lock, run one after another
 * on its slot. `claim` is next << 32 | end: jobs [next, end) of the batch
 * have not started. The owner moves next on, without the lock; a thread
 * with nothing to do, seeing the owner's job run for longer than a batch
 * should take (job_ns), lowers end under the lock and takes the jobs
 * above it (in-process stealing), so a batch does not hold jobs behind a
 * long one while another slot idles.
 */
typedef struct tf_pool_runner {
    _Atomic uint64_t claim;
    _Atomic uint64_t job_ns; /* when its running job started */
    uint16_t *slots; /* the slots of its running job (room for all) */
    uint64_t avg_ns; /* its jobs' time, a moving average: batch sizes */
    tf_wq_job wj[TF_POOL_BATCH];
    tf_job job[TF_POOL_BATCH];
} tf_pool_runner;

typedef struct tf_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* task threads wait here for jobs */
    /* the driver waits here for events, tf_pool_init for its threads */
    pthread_cond_t event_cv;
    tf_wq wq;                /* what this rank holds (core/wqueue.h) */
    tf_job *jobs;            /* payloads, by the ref of their tf_wq entry */
    uint32_t *free_refs;     /* refs not in use, a stack */
    size_t njobs, jcap, nfree, fcap;
    /* Task threads' runners, then the driver's (driver_runs) */
    tf_pool_runner *runners;
    unsigned nrunners;
    uint16_t *runner_slots;  /* each runner's slots, slots apiece */
    unsigned threads_started;
    bool driver_runs;        /* the driver's thread is a slot (run_one) */
    unsigned sleepers;       /* task threads waiting on work_cv */
    bool stopping;
    bool driver_waiting;
    /*
     * Queued jobs as of the last change, for task threads that look for
     * work without the lock before they sleep (see thread_main).
     */
    _Atomic size_t queued_hint;
    /*
     * Called after an event is posted, so that a driver sleeping on
     * something else than event_cv (its doorbell) wakes; NULL: event_cv.
     */
    void (*wake)(void *user);
    void *wake_user;
    tf_evvec ev, ev_spare;   /* double buffer: threads fill ev */
    pthread_t *threads;
    unsigned nthreads;

    tf_store store;          /* output parts held here (core/store.h) */
    /*
     * Parts up to this size travel inline to rank 0 (rank 0's setting):
     * kept here only when a task parked here waits for them.
     */
    uint32_t inline_max;
    uint64_t fetches, fetched_bytes;
    const tf_registry *reg; /* the runtime's (grows between runs only) */
    /*
     * Asked before each job starts, when set: false, and the job does not
     * run (status TF_EDEPOSED). Rank 0's fence for its own slots (a
     * successor took over): its task threads go on while its loop is
     * stopped or busy.
     */
    bool (*may_run)(void *user);
    void *may_run_user;
    int rank;
    uint64_t gid_base, gid_seq; /* ids of tasks submitted here */
} tf_pool;

/*
 * Start task threads: slots-1 when the driver's thread is the last slot
 * and runs jobs through tf_pool_run (driver_runs = true), else slots.
 * Errors: TF_ENOMEM, TF_EINVAL.
 */
int tf_pool_init(tf_pool *p, unsigned slots, bool driver_runs,
                 const tf_registry *reg, int rank, uint64_t gid_base);

/* Ids of tasks submitted here from now on: gid_base | a counter. */
void tf_pool_set_gid_base(tf_pool *p, uint64_t gid_base);
/* Stop and join the threads; queued jobs are dropped (their owners stay). */
void tf_pool_destroy(tf_pool *p);

/*
 * Take n jobs (driver thread), under one lock: each is queued, or parked
 * until its LOCAL inputs' tasks have finished well here and its REMOTE
 * inputs are here. A parked job must come before the tasks it waits for
 * (which cannot finish earlier then). Inputs this rank lacks and has not
 * asked for yet are appended to *fetch (`self`: this rank), for the driver
 * to ask their holders. Errors: TF_ENOMEM (the jobs before the one that
 * failed are held).
 */
int tf_pool_push(tf_pool *p, const tf_job *jobs, size_t n, int self,
                 tf_fetchvec *fetch);

/*
 * A fetched part came (blk: TF_STORE_HDR bytes, then len; taken over) or,
 * with blk NULL, will not come (its holder has no such part): the jobs
 * waiting for it are released, or given back UNRUN. A part nobody waits
 * for any more is dropped.
 */
void tf_pool_arrived(tf_pool *p, uint32_t idx, uint32_t part, uint8_t *blk,
                     uint32_t len);

/* Drop copies of parts nobody reads any more (a run's end). */
void tf_pool_sweep(tf_pool *p);

/* Rank `rank` is lost: every fetch from it fails as in tf_pool_arrived. */
void tf_pool_holder_lost(tf_pool *p, int rank);

/*
 * A peer asks for part (idx, part): *e gets the entry (a reference held,
 * release it with tf_pool_unref) or NULL when this rank has no bytes of it.
 */
void tf_pool_lend(tf_pool *p, uint32_t idx, uint32_t part, tf_part_ent **e);
void tf_pool_unref(tf_pool *p, tf_part_ent *e);

/* Rank 0 frees these tasks' outputs held here. */
void tf_pool_free_outputs(tf_pool *p, const void *idx, size_t n);

/* Release what a DONE event's parts hold (its blocks, its references). */
void tf_pool_done_parts(tf_pool *p, tf_event *e);

/*
 * A job that leaves without running here (given to a thief, once its
 * inputs are encoded): let go of its inputs' store references.
 */
void tf_pool_release_inputs(tf_pool *p, const tf_job *j);

/* Output bytes held here now, and at most. */
void tf_pool_data_bytes(tf_pool *p, size_t *now, size_t *peak);

/*
 * Run jobs on the calling thread (the driver's slot), back to back while
 * the head job fits: at most max, and for no longer than slice_ns after
 * the first started (0: no limit). Returns how many ran.
 */
size_t tf_pool_run(tf_pool *p, size_t max, uint64_t slice_ns);

/*
 * Hand the events gathered so far to the driver. The returned vector stays
 * valid until the next call; the driver owns data/deps of each event.
 */
const tf_evvec *tf_pool_take_events(tf_pool *p);

/* Events wait for the driver (tf_pool_take_events would return some). */
bool tf_pool_has_events(tf_pool *p);

/*
 * Block until an event arrives or ns nanoseconds pass. Only task threads
 * post events while the driver waits; without them this is a plain sleep,
 * and the driver sleeps on its doorbell instead (src/net/run.c).
 */
void tf_pool_wait(tf_pool *p, long ns);

/*
 * What the worker machine reads of the jobs held (core/worker.h): queued,
 * running or parked, all of which count against the window rank 0 sets
 * and so in the quarter that makes a report; and the idle slots.
 */
void tf_pool_view(tf_pool *p, tf_worker_view *v);

/* Turn every queued or parked (not started) job into an UNRUN event. */
void tf_pool_drop_queued(tf_pool *p);

/*
 * Work stealing, victim side: take up to `max` queued jobs as tf_wq_steal
 * chooses them. Writes them to out (room for max) and returns how many;
 * they leave the pool with their owners.
 */
size_t tf_pool_steal(tf_pool *p, size_t max, unsigned max_cores, tf_job *out);

/* Queued jobs a thief could take (tf_wq_stealable). */
size_t tf_pool_stealable(tf_pool *p);

/*
 * The slots (0 .. slots-1 of this rank) a running task holds, lowest free
 * first, so a task asking for n cores gets a compact set. Internal: the
 * command runner maps them to cores.
 */
const uint16_t *tf_task_slots(const tf_task_ctx *ctx, size_t *n);

#endif
