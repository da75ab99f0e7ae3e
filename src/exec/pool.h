/* The task runner of one rank: a job queue, slot accounting, task threads, completion events. */
#ifndef TF_EXEC_POOL_H
#define TF_EXEC_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskfarm_task.h"

/* A registered task function. */
typedef struct tf_fnent {
    char *name;
    tf_task_fn fn;
    void *user;
} tf_fnent;

typedef struct tf_dep {
    const void *buf;
    uint32_t len;
} tf_dep;

/* One task to run here. Pointers stay valid until its DONE event is released. */
typedef struct tf_job {
    uint32_t idx; /* rank 0's table index, echoed in the DONE event */
    uint32_t fn;
    uint64_t gid;
    uint16_t cores;
    uint8_t attempt;
    uint32_t in_len;
    const void *in;
    uint32_t ndeps;
    const tf_dep *deps;
    void *owner; /* handed back in the DONE event for the driver to release */
} tf_job;

/* UNRUN: a queued job dropped by tf_pool_drop_queued, never started. */
enum { TF_EV_DONE = 1, TF_EV_SUBMIT = 2, TF_EV_UNRUN = 3 };

/*
 * What the task threads tell the driver, in the order it happened: a task's
 * children are always reported before the task itself is DONE, which is what
 * lets rank 0 conclude that a run is over once every task it knows is.
 */
typedef struct tf_event {
    uint8_t kind;
    /* DONE */
    uint32_t idx;
    int32_t status;
    uint64_t start_ns, end_ns;
    void *owner;
    /* SUBMIT */
    uint64_t gid;
    uint32_t fn;
    int32_t prio;
    uint16_t cores;
    int16_t retries;
    uint32_t ndeps;
    uint64_t *deps; /* malloc'd, the driver frees */
    /* DONE output or SUBMIT input; malloc'd, the driver frees or keeps */
    void *data;
    uint32_t data_len;
} tf_event;

typedef struct tf_evvec {
    tf_event *v;
    size_t n, cap;
} tf_evvec;

typedef struct tf_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* task threads wait here for jobs */
    pthread_cond_t event_cv; /* the driver waits here for events */
    tf_job *q;               /* ring buffer of queued jobs */
    size_t qhead, qn, qcap;
    unsigned slots, free_slots, running;
    uint8_t *slot_busy; /* per slot: held by a running job */
    uint16_t *main_slots;   /* slot indexes of the job the driver runs */
    uint16_t *thread_slots; /* the same for each task thread, slots apiece */
    unsigned threads_started;
    bool stopping;
    bool driver_waiting;
    tf_evvec ev, ev_spare;   /* double buffer: threads fill ev */
    pthread_t *threads;
    unsigned nthreads;

    const tf_fnent *const *fns; /* the runtime's registry (may grow) */
    const uint32_t *nfns;
    int rank;
    uint64_t gid_base, gid_seq; /* ids of tasks submitted here */
} tf_pool;

/*
 * Start task threads: slots-1 when the driver's thread is the last slot
 * and runs jobs through tf_pool_run_one (driver_runs = true), else slots.
 * Errors: TF_ENOMEM, TF_EINVAL.
 */
int tf_pool_init(tf_pool *p, unsigned slots, bool driver_runs,
                 const tf_fnent *const *fns, const uint32_t *nfns, int rank,
                 uint64_t gid_base);
/* Stop and join the threads; queued jobs are dropped (their owners stay). */
void tf_pool_destroy(tf_pool *p);

/* Queue a job (driver thread). Errors: TF_ENOMEM. */
int tf_pool_push(tf_pool *p, const tf_job *job);

/* Run the head job on the calling thread if it fits the free slots. */
bool tf_pool_run_one(tf_pool *p);

/*
 * Hand the events gathered so far to the driver. The returned vector stays
 * valid until the next call; the driver owns data/deps of each event.
 */
const tf_evvec *tf_pool_take_events(tf_pool *p);

/* Block until an event arrives or ns nanoseconds pass. */
void tf_pool_wait(tf_pool *p, long ns);

/* Jobs queued or running. */
size_t tf_pool_load(tf_pool *p);

/* Turn every queued (not started) job into an UNRUN event. */
void tf_pool_drop_queued(tf_pool *p);

/*
 * The slots (0 .. slots-1 of this rank) a running task holds, lowest free
 * first, so a task asking for n cores gets a compact set. Internal: the
 * command runner maps them to cores.
 */
const uint16_t *tf_task_slots(const tf_task_ctx *ctx, size_t *n);

#endif
