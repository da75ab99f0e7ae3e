/* taskfarm: the runtime's C API without MPI types (all of it but tf_init, which taskfarm.h adds). */
#ifndef TASKFARM_RUNTIME_H
#define TASKFARM_RUNTIME_H

/*
 * A program that starts the runtime with tf_boot or tf_init_local, like the
 * taskfarm command, needs no mpi.h and can include this header alone;
 * taskfarm.h includes it and adds tf_init, which takes an MPI_Comm.
 */
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
TF_API const char *tf_version(void);

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
    TF_RUN_TICK,     /* time passed (every tick_ms while the run goes on) */
    /*
     * The deadline (tf_config.deadline_ns) has come with tasks unfinished,
     * or nothing runs and no task left can end before it: the run stops
     * (tf_halt) when the callback returns, unless it moved the deadline
     * later (tf_set_deadline) and that changes the verdict.
     */
    TF_RUN_DEADLINE,
    TF_RUN_UNNEEDED, /* a task completed without running: none of its
                        TF_DEP_NOTOK dependencies failed (not a failure) */
    /*
     * The last event of a run: it is over, its state durable (with a
     * state directory) and its trace written, and no worker has heard
     * yet. status: what tf_run will return, unless telling the workers
     * fails. What the application writes about the run here is there
     * before any rank leaves it: a rank 0 lost after this event leaves
     * nothing undone, and one lost before it is succeeded by a rank that
     * does it (tf_takeover). Nothing can be submitted or halted here.
     */
    TF_RUN_END
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
    /*
     * FAILED: 1 when the attempt ended after the run was halted (tf_halt,
     * not tf_halt_soon), whose on_halt ends what runs: an interruption,
     * not a failure of the task itself. The task is FAILED all the same (a
     * resumed run runs it again); the trace calls the attempt "interrupted".
     * Else 0.
     */
    int halted;
} tf_run_event;

#define TF_NO_TASK ((tf_task_id)-1)

/*
 * Called on rank 0, on the thread inside tf_run, as tasks end. It must not
 * call tf_run or tf_finalize; it may call tf_halt, tf_hold_open, the
 * result queries and tf_get_stats, and, for a TICK only, tf_submit and a
 * whole batch (tf_batch_begin ... tf_batch_end), whose tasks run in this
 * run. Keep it short: dispatch waits while it runs.
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
    /*
     * Rank 0 of several ranks. 1 (default): it runs tasks too, on `slots`
     * slots, so that `mpirun -np N` on N cores computes on N cores. Its
     * thread in tf_run schedules between tasks, running them in slices of
     * about 20 microseconds; with main_runs_tasks 0, or
     * with heartbeats (a rank silent while it runs a long task would be
     * written off), task threads run them and that thread only schedules.
     * 0: rank 0 only schedules (give it a core of its own, or a core a
     * worker shares). Rank 0's setting decides.
     */
    int rank0_runs_tasks;
    tf_event_fn on_event; /* rank 0: task ends and ticks; NULL: none */
    void *event_user;
    int tick_ms;          /* TICK interval; 0 means 1000 */
    tf_halt_fn on_halt;   /* every rank: end what runs; NULL: none */
    void *halt_user;
    /*
     * A worker rank that lost rank 0 (heartbeats): called with halt_user
     * in place of on_halt, so that what runs may outlive the run instead of
     * being ended, for a successor (tf_takeover) to adopt: the taskfarm
     * command leaves its tasks' processes running and lets their tasks
     * return. NULL (default): on_halt.
     */
    tf_halt_fn on_lost;
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
    /*
     * Rank 0: how the trace names task `id` (writes a NUL-terminated name
     * of at most len bytes into buf); the command gives each task its @id.
     * NULL (default): "ID FUNCTION".
     */
    void (*name_task)(void *user, tf_task_id id, char *buf, size_t len);
    void *name_user;
    /*
     * Output parts of at most this many bytes go to rank 0 with the task's
     * report and reach dependents inside their task messages, which costs
     * no message of its own; larger parts stay on the rank that made them
     * and dependents fetch them from there (docs/architecture.md, "Data
     * path"). -1 (default): TF_INLINE_MAX_DEFAULT; 0: every part stays.
     * Rank 0's setting decides.
     */
    long inline_max;
    /*
     * 1: keep every task's output on rank 0 (as TF_TASK_KEEP), so that
     * tf_task_output answers for every task; rank 0 then receives every
     * output. 0 (default): results (outputs nothing depends on) are kept,
     * intermediate outputs freed once their dependents have ended.
     */
    int keep_outputs;
    /*
     * Rank 0: walltime-aware dispatch. The time by which tf_run must
     * return, CLOCK_REALTIME in ns since the epoch (an allocation's end
     * less what stopping takes); 0 (default): none. A task is started
     * only if its estimate (tf_task_desc.est_ms, or learnt from its
     * family) ends by then, counting the wait behind the tasks its rank
     * already holds; one without an estimate starts while the deadline is
     * ahead. When the deadline comes with tasks running, or nothing runs
     * and nothing left can end in time, rank 0 fires TF_RUN_DEADLINE,
     * then halts the run (tf_halt: what has not started is SKIPPED,
     * on_halt ends what runs) and tf_run returns TF_EDEADLINE on every
     * rank: a resumed run (tf_config.resume) runs exactly the rest.
     * tf_set_deadline changes it.
     */
    uint64_t deadline_ns;
} tf_config;

#define TF_INLINE_MAX_DEFAULT 1024

/* Fill cfg with the defaults. */
TF_API void tf_config_init(tf_config *cfg);

/*
 * A runtime on this process alone, without MPI: MPI need not be initialised
 * and is never called. Rank 0 runs every task itself, as with one rank.
 * Errors: TF_EINVAL, TF_ENOMEM.
 */
TF_API int tf_init_local(const tf_config *cfg, tf_runtime **out);

/*
 * Start MPI if this process was started by a launcher (mpirun, srun:
 * Open MPI, PMIx, PMI or Slurm step variables) and MPI is not initialised
 * yet, with MPI_THREAD_FUNNELED, and make a runtime over MPI_COMM_WORLD;
 * started by hand, a runtime on this process alone (tf_init_local: MPI
 * start-up costs ~0.4 s). Either way every rank's host name and slots are
 * exchanged (tf_rank_host, tf_rank_slots). MPI started here is finalised by
 * tf_finalize, unless a rank was lost (see tf_stats.lost_ranks). flags:
 * TF_BOOT_OWN_PROCESS: this process is the runtime's alone (a command, not
 * a host program), so HDF5 may drop its exit handler, which can crash
 * after a snapshot failed on a full disk. Errors: TF_EINVAL (also: srun
 * started several tasks but MPI sees one rank; the message says to use
 * srun --mpi=pmix), TF_ENOMEM, TF_EMPI.
 */
#define TF_BOOT_OWN_PROCESS 0x1u
TF_API int tf_boot(int *argc, char ***argv, unsigned flags,
                   const tf_config *cfg, tf_runtime **out);

/* This rank and the number of ranks (1 for tf_init_local). */
TF_API int tf_rank(const tf_runtime *rt);
TF_API int tf_size(const tf_runtime *rt);

/*
 * Rank r's host name (never NULL; "" if r is out of range) and the slots
 * it runs tasks on, as exchanged at start-up; any rank may ask.
 */
TF_API const char *tf_rank_host(const tf_runtime *rt, int r);
TF_API unsigned tf_rank_slots(const tf_runtime *rt, int r);

/*
 * Collective: *value becomes the largest value any rank passed, so that
 * all ranks take one decision (rank 0's verdict, with the others passing
 * less; or "any rank failed"). Errors: TF_EINVAL, TF_EMPI.
 */
TF_API int tf_agree(tf_runtime *rt, int *value);

/*
 * Collective: every rank's NUL-terminated text, in rank order, back to back
 * (each with its NUL), in *all (malloc'd, the caller frees), total bytes
 * in *len (may be NULL). Errors, the same on every rank: TF_EINVAL,
 * TF_ENOMEM, TF_ERANGE (over 2 GiB), TF_EMPI.
 */
TF_API int tf_allgather_text(tf_runtime *rt, const char *mine, char **all,
                             size_t *len);

/*
 * Rank 0, before the first tf_run and before any tf_submit: keep the run's
 * durable state in dir, as tf_config.checkpoint_dir does (which calls this
 * at tf_init), once the caller has checked the directory is its own. mode:
 * TF_STATE_NEW: dir must hold no earlier run's state (else every tf_run
 * fails with TF_EINVAL, nothing changed); TF_STATE_RESUME: load the newest
 * valid state there (tf_config.resume); TF_STATE_OVERWRITE: remove an
 * earlier run's snapshots and journals first. Problems are logged and
 * latched: tf_run then fails with them on every rank. Errors: TF_EINVAL,
 * TF_ENOTROOT, TF_ESTATE (a state is kept already, or tasks were
 * submitted), TF_ENOMEM.
 */
enum { TF_STATE_NEW = 0, TF_STATE_RESUME = 1, TF_STATE_OVERWRITE = 2 };
TF_API int tf_use_state(tf_runtime *rt, const char *dir, int mode);

/*
 * Rank 0: submit many tasks whose edges may point forward. Between
 * tf_batch_begin and tf_batch_end, tf_submit adds tasks that stay held
 * (TF_TASK_HELD), and tf_depend may add edges between any tasks of the
 * batch, in any direction. tf_batch_end makes them live at once; if they
 * contain a dependency cycle it fails with TF_ECYCLE and every task of the
 * batch is dropped (their ids mean nothing then). Outside tf_run, or
 * inside it from a TICK event callback, which must end the batch it began
 * (one left open is dropped, with an error logged). Errors: TF_EINVAL,
 * TF_ENOTROOT, TF_ESTATE (inside tf_run but not in a TICK callback, or
 * begin/end out of order), TF_ECYCLE, TF_ENOMEM. tf_batch_cancel drops
 * the open batch instead (after a failed tf_submit or tf_depend in it, so
 * that no part of it runs); errors: as tf_batch_end's, but no TF_ECYCLE.
 */
TF_API int tf_batch_begin(tf_runtime *rt);
TF_API int tf_batch_end(tf_runtime *rt);
TF_API int tf_batch_cancel(tf_runtime *rt);

/*
 * Rank 0: `after` runs only once `before` has succeeded, without receiving
 * its output (an ordering edge; desc->deps are data edges). `after` must be
 * a task of the open batch; `before` any task. A task with ordering edges
 * is released by rank 0 itself (never ahead to a worker: see docs/api.md).
 * Errors: TF_EINVAL, TF_ENOTROOT, TF_ENOENT, TF_ESTATE (no batch open, or
 * `after` not of it), TF_ENOMEM.
 */
TF_API int tf_depend(tf_runtime *rt, tf_task_id before, tf_task_id after);

/*
 * What `after` waits for along an ordering edge (tf_depend_kind).
 * TF_DEP_OK: `before` succeeded (tf_depend); a failed or skipped `before`
 * skips `after`. TF_DEP_ANY: `before` ended, whatever the outcome (a
 * cleanup, a report). TF_DEP_NOTOK: `before` ended, and `after` runs only
 * if at least one of its TF_DEP_NOTOK dependencies failed or was skipped
 * (an error handler); when all of them succeeded, `after` is not needed:
 * it completes without running (TF_RUN_UNNEEDED; state TF_TASK_DONE, no
 * attempt, no output) and counts as succeeded for its dependents and for
 * tf_run's result. A task's edges must all be satisfied for it to run;
 * retried attempts do not count until the last. docs/api.md has the table.
 */
enum { TF_DEP_OK = 0, TF_DEP_ANY = 1, TF_DEP_NOTOK = 2 };

/*
 * Rank 0: tf_depend with a kind (TF_DEP_*). Data edges (tf_task_desc.deps)
 * are always TF_DEP_OK. Errors: those of tf_depend; TF_EINVAL also for an
 * unknown kind.
 */
TF_API int tf_depend_kind(tf_runtime *rt, tf_task_id before, tf_task_id after,
                          int kind);

/*
 * The 64-bit identity hash the runtime keys tasks with (FNV-1a over both
 * byte strings, each preceded by its length): for tf_task_desc.key, where
 * an application names a task's identity itself (the command: its @id and
 * command). Stable across versions: a state written by one resumes with
 * the next.
 */
TF_API uint64_t tf_key(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Rank 0, from an event callback for a RETRY or FAILED attempt: the
 * attempt was ended by a stop the caller knows of and the runtime does not
 * (yet), e.g. a signal that reached the task as well as the caller, who
 * calls tf_halt. The trace calls it "interrupted", as the attempts that
 * end after a halt (tf_run_event.halted). Errors: TF_EINVAL, TF_ENOTROOT,
 * TF_ESTATE (not inside such a callback).
 */
TF_API int tf_event_interrupted(tf_runtime *rt);

/*
 * Rank 0, before tf_run or from an event callback inside it: the run must
 * end by deadline_ns (CLOCK_REALTIME ns since the epoch; 0: no deadline),
 * as tf_config.deadline_ns. A later deadline inside a run lets tasks set
 * aside as too long start after all; the TF_RUN_DEADLINE callback may call
 * it (an allocation extended) to go on. Errors: TF_EINVAL, TF_ENOTROOT,
 * TF_ENOMEM (the deadline is unchanged).
 */
TF_API int tf_set_deadline(tf_runtime *rt, uint64_t deadline_ns);

/*
 * Rank 0, inside tf_run (from an event callback): mark an instant in the
 * trace (a signal, a decision), if one is written. Errors: TF_EINVAL,
 * TF_ENOTROOT.
 */
TF_API int tf_note(tf_runtime *rt, const char *name, const char *detail);

/*
 * Register a task function under a name; every rank must register the same
 * names in the same order (tf_run checks). Call before tf_run.
 * Errors: TF_EINVAL, TF_EEXIST (name taken), TF_ESTATE (inside tf_run), TF_ENOMEM.
 */
TF_API int tf_register(tf_runtime *rt, const char *name, tf_task_fn fn, void *user,
                tf_fn_id *out);

/* Look up a registered function by name. Errors: TF_ENOENT. */
TF_API int tf_lookup(const tf_runtime *rt, const char *name, tf_fn_id *out);


/*
 * Submit a task from rank 0, before tf_run, between runs, or during one
 * from a TICK event callback (it then runs in that run). Dependencies
 * must be ids this runtime returned. The task receives its dependencies'
 * outputs in the order given.
 * Errors: TF_ENOTROOT, TF_ENOENT (fn), TF_EDEP, TF_EINVAL, TF_ESTATE
 * (inside tf_run, not in a TICK callback), TF_ENOMEM.
 */
TF_API int tf_submit(tf_runtime *rt, const tf_task_desc *desc, tf_task_id *id);

/*
 * Collective: run every submitted task, and every task they submit, to the
 * end. Rank 0 schedules; the other ranks run tasks (with one rank, rank 0
 * runs them itself). Returns the same value on every rank: 0 when every
 * task of this run succeeded, TF_EFAILED when some failed or were skipped
 * since the previous run ended (see tf_task_info_get), TF_EDEADLINE when
 * the deadline stopped it (tf_config.deadline_ns; failures too are then
 * in tf_task_info_get), or another code for a runtime error. May be
 * called again after more tf_submit calls.
 */
TF_API int tf_run(tf_runtime *rt);


/*
 * Rank 0, from an event callback: stop this run now. Nothing more is
 * dispatched; tasks not yet started, also those queued on workers, are
 * SKIPPED (a worker whose main thread runs tasks may still start one it
 * holds before it reads the halt); each rank's on_halt is called so it can
 * end what runs (the runtime cannot stop a running C function); tf_run
 * returns once every running task has reported. The next tf_run dispatches
 * again. A halt requested as the run's last task ends has nothing to stop.
 * Errors: TF_EINVAL, TF_ENOTROOT, TF_ESTATE (not inside tf_run).
 */
TF_API int tf_halt(tf_runtime *rt);

/*
 * Rank 0, before tf_run or from an event callback during it: open (1)
 * keeps a run going when every task is done, waiting (without a busy
 * core) and calling on_event with a TICK every tick_ms, so that the
 * callback can submit more tasks to it; 0 lets it end once its tasks are
 * done. tf_halt ends a run held open. The setting stays until changed.
 * Errors: TF_EINVAL (rt NULL, or open without an on_event callback, which
 * alone could close it), TF_ENOTROOT.
 */
TF_API int tf_hold_open(tf_runtime *rt, int open);

/*
 * Rank 0, from an event callback: stop this run gently (GNU parallel's
 * --halt soon). Nothing more is dispatched and tasks not yet started, also
 * those queued on workers, are SKIPPED, as with tf_halt; but on_halt is
 * not called: running tasks run to their end and report as usual (DONE,
 * or FAILED with tf_run_event.halted 0: a failure of theirs; no retry
 * after a halt). tf_run returns once they have. tf_halt later in the same
 * run ends them after all; tf_halt_soon after tf_halt changes nothing.
 * Errors: as tf_halt.
 */
TF_API int tf_halt_soon(tf_runtime *rt);

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
TF_API int tf_task_info_get(const tf_runtime *rt, tf_task_id id, tf_task_info *info);

/*
 * A finished task's output (part 0). *buf (NULL when len is 0) is owned by
 * the runtime, aligned to max_align_t, and valid until tf_release of the
 * task or tf_finalize. Kept are: outputs nothing depended on when the task
 * was dispatched (results), TF_TASK_KEEP tasks' and, with
 * tf_config.keep_outputs, all. Errors: TF_ENOTROOT, TF_ENOENT (no such
 * task, not done, or its output was not kept).
 */
TF_API int tf_task_output(const tf_runtime *rt, tf_task_id id, const void **buf,
                   size_t *len);

/* Output part `part` of a finished task, as tf_task_output. */
TF_API int tf_task_output_part(const tf_runtime *rt, tf_task_id id,
                               unsigned part, const void **buf, size_t *len);

/*
 * Rank 0, outside tf_run: free the kept output of task id (a result no
 * longer needed). A task submitted later that depends on it fails with
 * TF_EDEP at tf_submit. Errors: TF_ENOTROOT, TF_ENOENT, TF_ESTATE.
 */
TF_API int tf_release(tf_runtime *rt, tf_task_id id);

typedef struct tf_stats {
    uint64_t tasks;      /* known to rank 0, dynamic ones included */
    uint64_t done, failed, skipped;
    /*
     * Dispatched, not yet reported: on workers' slots now (running, at
     * most each worker's slots) or waiting in their queues (queued).
     */
    uint64_t running, queued;
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
    /* Rank 0, with checkpoint_dir: snapshots written, and the longest
       time one held up dispatch (the disk is another thread's). */
    uint64_t checkpoints;
    uint64_t checkpoint_pause_max_ns;
    /* Rank 0, with trace_path: the first write error of the trace, or 0. */
    int trace_error;
    /*
     * The data path (docs/architecture.md). Rank 0: output bytes it
     * received in reports or sent inside task messages (inline parts and
     * kept results; 0 when every dependency travels worker to worker), and
     * tasks run again because an output they made was lost with its rank.
     * Every rank: parts fetched from peers and their bytes; output bytes
     * held here now and at most (rank 0: its kept and inline copies).
     */
    uint64_t rank0_payload_bytes;
    uint64_t reruns;
    uint64_t fetches, fetched_bytes;
    size_t data_bytes, data_bytes_peak;
} tf_stats;

/* Counters of this rank (task counts are rank 0's, zero elsewhere). */
TF_API int tf_get_stats(const tf_runtime *rt, tf_stats *st);

/*
 * After tf_run returned TF_ELOST on a worker, because rank 0 was lost (its
 * heartbeats stopped, heartbeat_ms, under mpirun --enable-recovery): the
 * surviving ranks agree on who is left, and *rt is replaced by a runtime
 * over them (as from tf_init: register the task functions again), whose
 * rank 0 is the lowest surviving rank. Every survivor calls it; it returns
 * within a few heartbeat periods. dir is the state directory the lost
 * rank 0 used (tf_use_state), on a file system every rank sees, or NULL:
 * the new rank 0 claims the next scheduler term there, so that the lost
 * one, if it was only stalled, writes nothing more (its tf_run returns
 * TF_EDEPOSED: it must end with _exit, making no collective call, as the
 * others have left its communicator), and only then continues. On the new rank 0 (tf_rank 0),
 * call tf_use_state(dir, TF_STATE_RESUME), submit the tasks again as a
 * resumed run does, and tf_run; on the others, tf_run. Tasks the lost
 * rank 0 had recorded as done do not run again; those that were running
 * anywhere do (docs/fault-tolerance.md, "Standby scheduler").
 * Errors: TF_ESTATE (not after a lost rank 0, or no heartbeats),
 * TF_EDEPOSED (the others went on without this rank: end it), TF_EMPI,
 * TF_ENOMEM, TF_EIO (the term could not be written). *rt is unchanged on
 * error.
 */
TF_API int tf_takeover(tf_runtime **rt, const char *dir);

/*
 * Collective: free everything; *rt becomes NULL, also when freeing the
 * communicator fails (TF_EMPI): the runtime is gone either way. The app
 * still owns MPI. Errors: TF_EINVAL, TF_ESTATE (inside tf_run), TF_EMPI,
 * TF_EIO (rank 0: writing the trace failed at some point; logged then).
 */
TF_API int tf_finalize(tf_runtime **rt);

#ifdef __cplusplus
}
#endif
#endif
