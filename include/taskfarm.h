/* taskfarm: the public C API of the MPI task-farm runtime. */
#ifndef TASKFARM_H
#define TASKFARM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "taskfarm_status.h"
#include "taskfarm_task.h"
#include "taskfarm_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Conventions for every function below
 * - Return 0 on success or a negative TF_E* code (taskfarm_status.h);
 *   tf_strerror() turns a code into text.
 * - Out-parameters are written only on success.
 * - The library never prints to stdout and never exits the process; it logs
 *   through the logger in tf_config (stderr by default).
 * - "Rank 0" means rank 0 of the communicator given to tf_init.
 * - Unless said otherwise, a function is called from the thread that called
 *   tf_init, never from inside a task.
 */


/* The library's version as "MAJOR.MINOR.PATCH" (may differ from the header's). */
const char *tf_version(void);

typedef struct tf_runtime tf_runtime;   /* one per tf_init */


enum { TF_LOG_ERROR = 0, TF_LOG_WARN = 1, TF_LOG_INFO = 2, TF_LOG_DEBUG = 3 };

/* Receives every log line the library emits (no trailing newline). */
typedef void (*tf_log_fn)(void *user, int level, int rank, const char *msg);

/* What rank 0 tells an event callback about. */
typedef enum tf_run_event_kind {
    TF_RUN_DONE = 1, /* a task succeeded */
    TF_RUN_RETRY,    /* a task failed and will run again */
    TF_RUN_FAILED,   /* a task failed for good */
    TF_RUN_SKIPPED,  /* a task will not run (a dependency failed, or a halt) */
    TF_RUN_TICK      /* time passed (every tick_ms while the run goes on) */
} tf_run_event_kind;

typedef struct tf_run_event {
    tf_run_event_kind kind;
    tf_task_id id;            /* TF_NO_TASK for TICK */
    int status;               /* the attempt's status (RETRY, FAILED) */
    int rank;                 /* rank that ran the attempt, -1 if none */
    int attempt;              /* the attempt that ended (1 = first) */
    uint64_t start_ns, end_ns; /* of the attempt (DONE, RETRY, FAILED) */
    const void *output;       /* the attempt's output; valid during the call */
    size_t output_len;
    tf_task_id cause;         /* SKIPPED: the failed task, or TF_NO_TASK */
    /*
     * The slot (0 .. slots-1 of `rank`) the attempt ran on; a task with
     * several cores held several slots and this is the lowest of them.
     */
    int slot;
} tf_run_event;

#define TF_NO_TASK ((tf_task_id)-1)

/*
 * Called on rank 0, on the thread inside tf_run, as tasks end. It must not
 * call tf_run, tf_submit or tf_finalize; it may call tf_halt, the result
 * queries and tf_get_stats. Keep it short: dispatch waits while it runs.
 */
typedef void (*tf_event_fn)(void *user, tf_runtime *rt,
                            const tf_run_event *ev);

/* Called on every rank, on the thread inside tf_run, when the run halts. */
typedef void (*tf_halt_fn)(void *user);

typedef struct tf_config {
    /*
     * Tasks this rank runs at once; 0 means 1. Ranks may differ: rank 0
     * learns each rank's slots when tf_run starts. With main_runs_tasks the
     * thread that calls tf_run is one slot and slots - 1 task threads are
     * the others. prefetch, retries, on_event and tick_ms are rank 0's.
     */
    int slots;
    /*
     * Tasks a worker rank may hold per slot, running plus queued, so that
     * it never waits a round trip to rank 0 for its next task. 1 means no
     * prefetch (strict priority order on one worker). 0 means the default, 256.
     */
    int prefetch;
    /* Extra attempts for a failed task unless its desc says otherwise. */
    int retries;
    /* Messages up to this level are logged; default TF_LOG_WARN. */
    int log_level;
    tf_log_fn log_fn; /* NULL: write "taskfarm[RANK] LEVEL: ..." to stderr */
    void *log_user;
    /*
     * 1 (default): the thread in tf_run runs tasks between polls, the
     * fastest for short tasks. 0: it only schedules and communicates and
     * `slots` task threads run the tasks; use it when tasks block for long
     * (shell commands), so messages are never left waiting behind a task.
     */
    int main_runs_tasks;
    tf_event_fn on_event; /* rank 0: task ends and ticks; NULL: none */
    void *event_user;
    int tick_ms;          /* TICK interval; 0 means 1000 */
    tf_halt_fn on_halt;   /* every rank: end what runs; NULL: none */
    void *halt_user;
    /*
     * 0 (default): a worker rank whose queue runs dry while rank 0 has
     * nothing ready for it steals queued tasks from a peer, nearest first
     * (same NUMA domain, same host, then any). 1: no stealing. Each rank
     * reads its own setting; pass the same on every rank.
     */
    int no_steal;
    /*
     * 0 (default): each worker's window follows the task durations rank 0
     * observes, between 1 and `prefetch` tasks per slot (docs/performance.md
     * gives the rule). 1: the window is always `prefetch` per slot.
     */
    int fixed_prefetch;
    /*
     * Seed of the generator that picks steal victims (each rank mixes in its
     * rank number), so that a run's steals can be replayed. 0 means 1.
     */
    uint64_t seed;
    /*
     * 0 (default): no heartbeats; a rank that dies ends the job (Open MPI
     * aborts it) and the state on disk lets a rerun resume. > 0: ranks tell
     * each other they live every heartbeat_ms / 4 when they have nothing
     * else to say; rank 0 writes off a worker silent for heartbeat_ms, puts
     * its tasks back in the queue and ignores it from then on, and a worker
     * that hears nothing from rank 0 for that long ends its tasks and
     * tf_run returns TF_ELOST. For surviving a dead rank inside the job,
     * under `mpirun --enable-recovery` (docs/fault-tolerance.md). A worker
     * whose main thread runs tasks (main_runs_tasks) is silent while it
     * does: heartbeat_ms must then exceed the longest task. Rank 0's
     * setting decides; pass the same on every rank.
     */
    int heartbeat_ms;
    /*
     * Rank 0: write a Chrome trace-event JSON file here (docs/trace.md):
     * one span per attempt on its rank's slot, instants for retries,
     * failures, steals and halts. Created at the first tf_run (tf_run fails
     * with TF_EIO on every rank if it cannot be), whole after each tf_run,
     * closed by tf_finalize. NULL (default): no trace. The string must stay
     * valid until tf_finalize.
     */
    const char *trace_path;
    /*
     * Rank 0: keep the run's durable state in this directory (created if
     * missing; docs/checkpoint-format.md): every ended attempt is journaled
     * as rank 0 learns of it (durable within 50 ms), tasks submitted by
     * tasks too, and the whole table is snapshotted every
     * checkpoint_every_ms and at the end of each tf_run (durable before
     * tf_run returns). NULL (default): no state. Without `resume` the
     * directory must not hold an earlier run's state (tf_run fails with
     * TF_EINVAL and changes nothing). A write error (a full disk) is
     * logged, halts the run, and tf_run returns TF_EIO on every rank, then
     * and at every later call; the previous snapshot stays valid. The
     * string is copied at tf_init.
     */
    const char *checkpoint_dir;
    /* Snapshot period during tf_run; default 60000; 0: at the end only. */
    int checkpoint_every_ms;
    /*
     * Rank 0, with checkpoint_dir: 1 loads the newest valid state there at
     * tf_init (a damaged newest snapshot: the previous one, with a
     * warning). tf_submit then marks a task the state has DONE as done
     * without running it (its stored output, status, attempts, rank and
     * times; its dependents get the output); the tasks such a task had
     * submitted are re-created from the state; everything else runs.
     * docs/api.md says when two tasks are the same. No state there: a
     * warning, everything runs. A state that cannot be used: logged with
     * the file, tf_run returns TF_EIO on every rank, nothing there is
     * changed. Any number of ranks may resume any state.
     */
    int resume;
} tf_config;

/* Fill cfg with the defaults. */
void tf_config_init(tf_config *cfg);

/*
 * Collective over comm (MPI_COMM_WORLD or any intracommunicator). The runtime
 * works on its own MPI_Comm_dup with MPI_ERRORS_RETURN set on the duplicate
 * only; MPI must already be initialised (MPI_THREAD_FUNNELED is enough, as
 * only the calling thread makes MPI calls). cfg may be NULL for defaults.
 * Errors: TF_EINVAL, TF_ENOMEM, TF_EMPI.
 */
int tf_init(MPI_Comm comm, const tf_config *cfg, tf_runtime **out);

/*
 * A runtime on this process alone, without MPI: MPI need not be initialised
 * and is never called. Rank 0 runs every task itself, as with one rank.
 * Errors: TF_EINVAL, TF_ENOMEM.
 */
int tf_init_local(const tf_config *cfg, tf_runtime **out);

/*
 * Register a task function under a name; every rank must register the same
 * names in the same order (tf_run checks). Call before tf_run.
 * Errors: TF_EINVAL, TF_EEXIST (name taken), TF_ESTATE (inside tf_run), TF_ENOMEM.
 */
int tf_register(tf_runtime *rt, const char *name, tf_task_fn fn, void *user,
                tf_fn_id *out);

/* Look up a registered function by name. Errors: TF_ENOENT. */
int tf_lookup(const tf_runtime *rt, const char *name, tf_fn_id *out);


/*
 * Submit a task from rank 0, before tf_run or between runs. Dependencies
 * must be ids this runtime returned. The task receives its dependencies'
 * outputs in the order given.
 * Errors: TF_ENOTROOT, TF_ENOENT (fn), TF_EDEP, TF_EINVAL, TF_ESTATE, TF_ENOMEM.
 */
int tf_submit(tf_runtime *rt, const tf_task_desc *desc, tf_task_id *id);

/*
 * Collective: run every submitted task, and every task they submit, to the
 * end. Rank 0 schedules; the other ranks run tasks (with one rank, rank 0
 * runs them itself). Returns the same value on every rank: 0 when every
 * task of this run succeeded, TF_EFAILED when some failed or were skipped
 * since the previous run ended (see tf_task_info_get), or another code for
 * a runtime error. May be called again after more tf_submit calls.
 */
int tf_run(tf_runtime *rt);


/*
 * Rank 0, from an event callback: stop this run. Nothing more is
 * dispatched; tasks not yet started, also those queued on workers, are
 * SKIPPED (a worker whose main thread runs tasks may still start one it
 * holds before it reads the halt); each rank's on_halt is called so it can
 * end what runs (the runtime cannot stop a running C function); tf_run
 * returns once every running task has reported. The next tf_run dispatches
 * again. A halt requested as the run's last task ends has nothing to stop.
 * Errors: TF_EINVAL, TF_ENOTROOT, TF_ESTATE (not inside tf_run).
 */
int tf_halt(tf_runtime *rt);

/* ---- results, on rank 0 after tf_run ---- */

typedef enum tf_task_state {
    TF_TASK_HELD = 0,    /* submitted, run not started */
    TF_TASK_PENDING,     /* waiting for dependencies */
    TF_TASK_READY,       /* waiting for a worker */
    TF_TASK_DISPATCHED,  /* on a worker */
    TF_TASK_DONE,
    TF_TASK_FAILED,
    TF_TASK_SKIPPED      /* a dependency failed, or the run halted */
} tf_task_state;

typedef struct tf_task_info {
    tf_task_state state;
    int status;          /* the function's last return value, or a TF_E* code */
    int rank;            /* rank that ran the last attempt, -1 if none */
    int attempts;
    uint64_t start_ns;   /* CLOCK_REALTIME of the last attempt, 0 if none */
    uint64_t end_ns;
} tf_task_info;

/* Errors: TF_ENOTROOT, TF_ENOENT. */
int tf_task_info_get(const tf_runtime *rt, tf_task_id id, tf_task_info *info);

/*
 * A finished task's output. *buf (NULL when len is 0) is owned by the
 * runtime and valid until tf_finalize. Errors: TF_ENOTROOT, TF_ENOENT.
 */
int tf_task_output(const tf_runtime *rt, tf_task_id id, const void **buf,
                   size_t *len);

typedef struct tf_stats {
    uint64_t tasks;      /* known to rank 0, dynamic ones included */
    uint64_t done, failed, skipped;
    uint64_t running;    /* dispatched, not yet reported */
    uint64_t messages_sent, messages_received; /* by this rank */
    size_t sched_bytes;  /* scheduler memory on rank 0 */
    size_t task_bytes;   /* per-task records, inputs and outputs on rank 0 */
    /* Load balance (docs/architecture.md). */
    uint64_t steals;     /* this rank's steal requests that got tasks */
    uint64_t stolen;     /* tasks this rank took that way */
    uint64_t moved;      /* rank 0: moves it was told of and applied */
    uint64_t released;   /* rank 0: tasks started on a worker by local release */
    /*
     * Ranks written off: on rank 0 its count; on a worker rank 0's count
     * as of the end of the run (it learns it then), or 1 once it gave up on
     * rank 0. Once a rank is lost the runtime is degraded: later tf_run
     * calls return TF_ELOST at once, and with Open MPI 4.1 the process
     * should end with _exit rather than MPI_Finalize, which can hang with a
     * dead peer.
     */
    uint64_t lost_ranks;
} tf_stats;

/* Counters of this rank (task counts are rank 0's, zero elsewhere). */
int tf_get_stats(const tf_runtime *rt, tf_stats *st);

/*
 * Collective: free everything; *rt becomes NULL, also when freeing the
 * communicator fails (TF_EMPI): the runtime is gone either way. The app
 * still owns MPI. Errors: TF_EINVAL, TF_ESTATE (inside tf_run), TF_EMPI,
 * TF_EIO (rank 0: writing the trace failed at some point; logged then).
 */
int tf_finalize(tf_runtime **rt);

#ifdef __cplusplus
}
#endif
#endif
