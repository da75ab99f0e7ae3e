/* The runtime object behind tf_runtime: owned sub-objects, one per concern, and what the files of src/net share. */
#ifndef TF_NET_RUNTIME_H
#define TF_NET_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "ckpt/state.h"
#include "core/registry.h"
#include "core/steal.h"
#include "core/tasks.h"
#include "exec/pool.h"
#include "link.h"
#include "taskfarm.h"
#include "tracing.h"
#include "util/log.h"

/*
 * Default tasks per slot a worker may hold (tf_config.prefetch). The
 * adaptive window stays far below it unless tasks take microseconds; then
 * it must cover rank 0's response time, which is milliseconds when rank 0
 * shares a core: 64 x 8 us tasks starved workers where 256 did not.
 */
#define TF_DEFAULT_PREFETCH 256

/* What every rank knows of every rank from start-up (boot.c). */
typedef struct tf_world {
    char (*host)[64]; /* host names */
    unsigned *slots;  /* slots each runs tasks on */
    tf_loc *loc;      /* host hash and NUMA node, for steal victims */
} tf_world;

struct tf_runtime {
    tf_config cfg;
    tf_logger log;
    tf_link link;      /* communicator, rank, size, liveness, doorbells */
    tf_world world;    /* every rank's host, slots and place */
    tf_registry reg;   /* registered task functions */
    tf_pool pool;      /* runs tasks here: every rank but rank 0 of several */
    bool have_pool;
    tf_tasks tasks;    /* rank 0: the task table */
    tf_ckstate *ck;    /* rank 0 with durable state, else NULL */
    tf_tracing *trace; /* rank 0 with cfg.trace_path, else NULL */
    bool steal;        /* this rank steals (and may be stolen from) */
    bool in_run;
    /*
     * Rank 0 found a later scheduler term in its state directory: another
     * rank took the run over. It writes nothing more, not even its trace.
     * Also a rank left out of a take-over. Either way the job goes on
     * without this rank, under the same launcher.
     */
    bool deposed;
    /*
     * Ranks of the job left behind by take-overs before this runtime
     * (tf_takeover): MPI_COMM_WORLD holds a dead rank, so MPI is never
     * finalised, as after any loss.
     */
    uint32_t gone;
    uint8_t halt_mode; /* rank 0: the halt asked for, TF_WIRE_HALT_*, or 0 */
    /*
     * Rank 0: tf_hold_open's flag (a run does not end when its tasks are
     * done), and inside a TICK callback, where tf_submit and batches may
     * add tasks to the run.
     */
    bool hold_open, in_tick;
    /*
     * Rank 0: inside an event callback for an attempt that failed (RETRY,
     * FAILED), and whether the callback called it interrupted
     * (tf_event_interrupted).
     */
    bool in_attempt_event, event_interrupted;
    bool owns_mpi;     /* tf_boot started MPI: tf_finalize ends it */
    uint64_t steals, stolen_tasks; /* this rank's successful steals */
    uint64_t moved;                /* rank 0: moves applied */
    /*
     * The data path: rank 0's inline limit (every rank takes rank 0's at
     * each run), rank 0's payload bytes, reruns of lost outputs, and the
     * most output bytes rank 0 held.
     */
    uint32_t inline_max;
    uint64_t rank0_payload_bytes, reruns;
    /*
     * Rank 0: per rank, the task indexes whose outputs it holds that rank
     * 0 has freed and not told it of yet (u32 each), and since when.
     */
    tf_buf *frees;
    uint64_t *free_since;
};

/*
 * This rank's run is over with nobody to report to (rank 0 lost: lost0,
 * or this rank 0 deposed): drop its queued tasks and end the running ones
 * (on_halt; on_lost when lost0 and set). Nothing without a pool.
 */
void tf_rt_end_tasks(tf_runtime *rt, bool lost0);

/* tf_tasks_release's `away`: queue a FREE of d's output for `holder`. */
void tf_rt_free_away(void *rt, uint32_t d, int holder);

/*
 * Who runs the scheduler's workers: worker w is rank w + 1, and rank 0's
 * own pool, when it runs tasks, is the last one (worker 0 of a single
 * rank). A worker index stands for the same rank in every run.
 */
static inline uint32_t tf_rt_worker_of(const tf_runtime *rt, int rank)
{
    return rank ? (uint32_t)rank - 1 : (uint32_t)rt->link.size - 1;
}

static inline int tf_rt_rank_of(const tf_runtime *rt, uint32_t w)
{
    return w + 1 == (uint32_t)rt->link.size ? 0 : (int)w + 1;
}

/* Rank 0 runs tasks: alone, or of several with rank0_runs_tasks. */
static inline bool tf_rt_rank0_runs(const tf_runtime *rt)
{
    return rt->link.size == 1 || rt->cfg.rank0_runs_tasks;
}

/* A task to add (tf_rt_add): tf_submit's, a task's child, or re-created. */
typedef struct tf_rt_new {
    uint64_t gid;    /* 0: rank 0's own (its index) */
    uint32_t parent; /* the submitting task's index, or TF_NONE */
    uint32_t fn;
    int32_t prio;
    uint16_t cores;
    int retries;     /* -1: the config's */
    const uint32_t *deps; /* table indexes */
    const uint32_t *parts; /* the part of each it reads; NULL: part 0 */
    uint32_t ndeps;
    const void *in;
    uint32_t in_len;
    uint64_t key;    /* identity for resume; 0: derived */
    unsigned flags;  /* TF_TASKS_* */
    int pin;         /* the rank it must run on, -1 */
    uint32_t est_ms, family; /* walltime: tf_task_desc's */
} tf_rt_new;

/*
 * Add a task to rank 0's table, matched against a resumed state (a task it
 * has done is done at once, with its stored output), its identity kept for
 * the next snapshot. All or nothing but for the state, whose failure is
 * latched. Errors: TF_ENOMEM.
 */
int tf_rt_add(tf_runtime *rt, const tf_rt_new *n, uint32_t *t);

/*
 * Collective at each tf_run (boot.c): every rank registered the same
 * functions, takes rank 0's heartbeat setting and epoch; mine_rc is this
 * rank's error so far. Returns the worst code of all ranks, or 0.
 */
int tf_rt_agree(tf_runtime *rt, int mine_rc);

/*
 * A deadline in CLOCK_REALTIME ns (tf_config.deadline_ns) in the
 * scheduler's clock, tf_idle_clock_ns (monotonic: a step of the wall clock
 * later in the run moves nothing); 0 stays 0, one past is now.
 */
uint64_t tf_rt_deadline_clock(uint64_t realtime_ns);

/* The scheduling loops: rank 0's (sched_loop.c), a worker's (work_loop.c). */
int tf_schedloop_run(tf_runtime *rt);
int tf_workloop_run(tf_runtime *rt);

#endif
