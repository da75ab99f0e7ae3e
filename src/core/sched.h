/* The scheduler: a pure state machine over the DAG, ready queue and workers. */
#ifndef TF_CORE_SCHED_H
#define TF_CORE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"
#include "rq.h"
#include "walltime.h"

/*
 * Events go in as calls (tasks added and sealed, task finished or failed,
 * worker lost, halt); decisions come out as a list of actions the driver
 * carries out and then clears. The scheduler does no I/O, keeps no global
 * state and never reads a clock, so the MPI loop, the simulator and the unit
 * tests drive exactly the same code.
 */
/*
 * `cause` means: for RETRY and FAIL, the status the task failed with (what
 * the driver passed to tf_sched_task_failed, or TF_ECORES when no worker
 * could ever hold it); for SKIP, the index of the failed task that led to
 * the skip when the scheduler saw that failure happen, else TF_NONE cast to
 * int32_t (halt, a doomed task, a dependency already failed when the task
 * was added).
 */
typedef enum tf_act_kind {
    TF_ACT_RUN = 1, /* send task to worker */
    TF_ACT_RETRY,   /* task failed, will run again (attempts left) */
    TF_ACT_FAIL,    /* task failed for good */
    TF_ACT_SKIP,    /* task will not run */
    TF_ACT_PARK,    /* send task to worker, to start there when its pending
                       dependencies (all placed on that worker by the same
                       tf_sched_dispatch call) have finished there */
    TF_ACT_UNNEEDED, /* task completed without running: none of its NOTOK
                        dependencies failed (it is DONE, with no attempt) */
} tf_act_kind;

typedef struct tf_action {
    uint32_t kind;
    uint32_t worker;
    uint32_t task;
    int32_t cause;
} tf_action;

typedef struct tf_sched_worker {
    uint32_t slots;     /* cores it runs tasks on at once */
    uint32_t depth;     /* most tasks it may hold (running + queued + parked) */
    uint32_t max_depth; /* depth given at registration: the window's ceiling */
    uint32_t ntasks;    /* tasks it holds now */
    uint64_t mean_ns;   /* running mean of its task durations, 0: none seen */
    bool lost;
    bool told_dry;      /* its last batch said nothing else was ready */
    /*
     * READY tasks pinned to this worker (tf_sched_pin), met by the dispatch
     * in the global queue and set aside here until the worker has room.
     */
    tf_rq pinq;
    uint64_t est_ms; /* the estimates of the tasks it holds, summed */
} tf_sched_worker;

typedef struct tf_sched {
    tf_dag dag;
    tf_rq rq;
    uint32_t sealed;       /* tasks below this index are sealed */
    uint32_t sealed_edges; /* edges below this index are sealed */
    uint32_t count[TF_ST_COUNT_];
    tf_sched_worker *workers;
    uint32_t nworkers, wcap;
    uint32_t max_slots; /* largest live worker */
    uint32_t rr;        /* round-robin start for the next dispatch */
    bool halted;
    uint64_t released;  /* parked tasks turned DISPATCHED by task_done */
    bool park;          /* local release: emit PARK actions (default off) */
    bool adaptive;      /* tf_sched_observe resizes windows (default off) */
    uint64_t lead_ns;   /* adaptive windows cover this much work per slot */
    uint64_t wait_ns;   /* tf_sched_waited: rank 0's response time (peak) */
    uint64_t wait_at;   /* when wait_ns was last updated */
    uint64_t first_ns;  /* the first duration observed, of any worker */

    /* Dispatch-call scratch for parking: tasks placed, dependents counted. */
    uint32_t *fresh, *touched;
    size_t nfresh, fcap, ntouched, tcap;

    tf_action *acts;
    size_t nacts, acap;

    uint32_t *scratch; /* stack for skip propagation */
    size_t scap;

    /*
     * Where a ready task's inputs are (the driver knows, the core does not):
     * the worker holding most of the bytes it would fetch, or TF_NONE. The
     * dispatch sends it there while that worker has room and holds no more
     * than a slot-load over the worker being filled (docs/architecture.md,
     * "Data path"). NULL: no preference.
     */
    uint32_t (*place)(void *user, uint32_t t);
    void *place_user;
    uint64_t placed; /* tasks sent to their inputs' worker that way */

    tf_walltime wt; /* estimates, families, the deadline (tf_sched_clock) */
} tf_sched;

int tf_sched_init(tf_sched *s);
void tf_sched_free(tf_sched *s);

/* Add a HELD task (see tf_dag_add). */
int tf_sched_add_task(tf_sched *s, int32_t prio, uint16_t cores,
                      uint8_t retries, uint32_t *idx);

/*
 * `to` depends on `from`. `to` must be HELD. A DONE `from` is satisfied at
 * once; a FAILED or SKIPPED one dooms `to`, which is skipped at seal time.
 */
int tf_sched_add_dep(tf_sched *s, uint32_t from, uint32_t to);

/*
 * An ordering edge of `kind` (TF_EDGE_*): `to` (HELD) runs after `from` but
 * receives no output from it (the command's @after, @afterany and
 * @afternotok; tf_depend_kind). Such a task is never parked: rank 0
 * releases it, since a worker learns what a parked task waits for from its
 * data dependencies only.
 *
 * Kinds (docs/taskfile.md, "Dependency kinds"): along an OK edge a FAILED
 * or SKIPPED `from` skips `to`, as along a data edge. An ANY edge is
 * satisfied once `from` has ended, however. NOTOK edges are satisfied
 * likewise, and `to` runs only if at least one of its NOTOK dependencies
 * FAILED or was SKIPPED; when none did, `to` is not needed: once its
 * dependencies have all ended it completes without running (DONE, no
 * attempt, an UNNEEDED action) and counts as done for its own dependents.
 * A failure that skips `to` along an OK edge comes first: `to` is SKIPPED,
 * never not needed, whatever the order in which its dependencies end.
 */
int tf_sched_add_order_dep(tf_sched *s, uint32_t from, uint32_t to,
                           uint8_t kind);

/*
 * Whether DONE task t completed without running because it was not needed
 * (a no-op, done by an earlier run, is not: it is done).
 */
static inline bool tf_sched_is_unneeded(const tf_sched *s, uint32_t t)
{
    return s->dag.state[t] == TF_ST_DONE &&
           (s->dag.flags[t] & (TF_TF_NEEDFAIL | TF_TF_GOTFAIL | TF_TF_NOOP)) ==
               TF_TF_NEEDFAIL;
}

/*
 * A task not yet dispatched (HELD, PENDING or READY) may run on worker w
 * only (owner computes), while w lives; a w not registered yet, or lost,
 * leaves it free to run anywhere. TF_ESTATE for a task dispatched or done.
 */
int tf_sched_pin(tf_sched *s, uint32_t t, uint32_t w);

/* Mark a HELD task to be SKIPPED when sealed (its input is unusable). */
int tf_sched_doom(tf_sched *s, uint32_t t);

/*
 * Mark a HELD task to complete without running once its dependencies are
 * done: it never reaches a worker and emits no action. For task-file
 * barriers and for tasks an earlier run already finished.
 */
int tf_sched_set_noop(tf_sched *s, uint32_t t);

/*
 * Make every HELD task live: tasks with no unfinished dependency become
 * READY, doomed ones SKIPPED (emitting actions). Fails with TF_ECYCLE, and
 * writes one cycle to cyc (up to max entries, *ncyc its full length), when
 * the new tasks contain one; nothing changes then, and the caller may drop
 * the held tasks with tf_sched_drop_held.
 */
int tf_sched_seal(tf_sched *s, uint32_t *cyc, size_t max, size_t *ncyc);

/* Forget HELD tasks (after a failed seal); their edges go too. */
void tf_sched_drop_held(tf_sched *s);

/*
 * Forget the HELD tasks from index `first` on, and the edges from index
 * `first_edge` on (the table's sizes before they were added): one task of
 * an open batch whose adding failed, leaving the batch's others.
 */
void tf_sched_drop_from(tf_sched *s, uint32_t first, uint32_t first_edge);

/*
 * Register a worker with `slots` cores holding at most `depth` tasks. With
 * adaptive windows, depth is the ceiling and the worker starts at
 * tf_sched_window's choice for the first duration any worker reported
 * (first_ns), or for one not yet known.
 */
int tf_sched_add_worker(tf_sched *s, uint32_t slots, uint32_t depth,
                        uint32_t *w);
int tf_sched_set_depth(tf_sched *s, uint32_t w, uint32_t depth);

/* The least lead: a report and its refill with room to spare, unloaded. */
#define TF_SCHED_LEAD_NS 250000u

/*
 * Adaptive prefetch. The window of a worker (tasks it may hold) is, per
 * slot, one running task plus enough queued ones to cover `lead_ns` of work
 * while its report travels to rank 0 and the refill comes back:
 *   per_slot = 1 + ceil(lead / mean), at most max_per_slot;
 *   a duration not yet known counts as lead (per_slot 2);
 *   tasks longer than 100 x lead get per_slot 1: a round trip is then under
 *   1% of a task, and a queued task would only be work others could run.
 * Pure; the unit tests and docs/performance.md state the same rule.
 */
uint32_t tf_sched_window(uint32_t slots, uint32_t max_per_slot,
                         uint64_t mean_ns, uint64_t lead_ns);

/*
 * Rank 0 found messages that had waited up to wait_ns for it to look (the
 * time since its last poll that found none: its sleep, or the time the
 * kernel kept it off a core it shares with a worker). Windows must cover
 * that wait, or workers run dry while their refill sits unread. The
 * estimate takes a longer wait at once and forgets it linearly over
 * TF_SCHED_FORGET_NS, so that the rare long wait, which is what starves a
 * worker, keeps counting; a wait over TF_SCHED_WAIT_MAX_NS (a snapshot, a
 * stopped process) counts as that much, or windows sized for it would
 * hoard work until it is forgotten. lead_ns becomes
 * max(TF_SCHED_LEAD_NS, 2 x estimate); windows follow at the next
 * tf_sched_observe. now_ns is any monotonic clock.
 */
#define TF_SCHED_FORGET_NS 1000000000u
#define TF_SCHED_WAIT_MAX_NS 10000000u
void tf_sched_waited(tf_sched *s, uint64_t wait_ns, uint64_t now_ns);

/*
 * A task of worker w took dur_ns: fold it into the worker's running mean
 * (weight 1/8) and, when s->adaptive, set its depth to tf_sched_window.
 * The first duration the scheduler sees also sets the window of every
 * worker with none of its own yet: tasks of a run are alike more often
 * than not, and a worker kept at 2 per slot until its own first report
 * came back sat idle for that round trip (np 2, rank 0 computing, 2,048
 * tasks of 0.7 us: the worker's second batch came ~100 us after its
 * first, in a run of 1.5 ms).
 */
void tf_sched_observe(tf_sched *s, uint32_t w, uint64_t dur_ns);

/*
 * Walltime-aware dispatch (walltime.h). Task t, not on a worker, is
 * expected to take est_ms (0: unknown) and belongs to `family` (0: none,
 * else 1 .. TF_WT_FAMILY_MAX), whose tasks teach each other their
 * durations. Errors: TF_EINVAL, TF_ENOMEM (nothing changed; none after
 * tf_wt_reserve for t and family).
 */
int tf_sched_set_est(tf_sched *s, uint32_t t, uint32_t est_ms,
                     uint32_t family);

/* Task t succeeded after dur_ns: what its family learns (tf_wt_learn). */
static inline void tf_sched_learn(tf_sched *s, uint32_t t, uint64_t dur_ns)
{
    tf_wt_learn(&s->wt, t, dur_ns);
}

/*
 * Tasks must end by deadline_ns in the driver's clock (0: no deadline).
 * With one, the dispatch starts a task on worker w only if
 *   now + wait(w) + estimate <= deadline,
 * where wait(w) is 0 when w has a free slot, else the estimates of the
 * tasks w holds summed and divided by its slots: a queued task starts
 * once the work ahead of it is done, and w's slots share that work (so
 * with tasks of one core and estimates that are not exceeded, it is an
 * upper bound; unknown tasks count 0). A task that cannot finish even if
 * it started now is set aside for the run (wt.late; its dependents wait);
 * one that could, but not behind w's queue, waits for a worker with room.
 * A task with no estimate starts while now < deadline. With a deadline
 * no task is parked (a parked task starts when its dependencies end,
 * unchecked). A later deadline puts the set-aside tasks back in the ready
 * queue. Errors: TF_ENOMEM (nothing changed).
 */
int tf_sched_set_deadline(tf_sched *s, uint64_t deadline_ns);

/* The driver's clock now, in the deadline's terms; read by the dispatch. */
static inline void tf_sched_clock(tf_sched *s, uint64_t now_ns)
{
    s->wt.now_ns = now_ns;
}

/*
 * Whether the run must stop for the deadline: it has come with tasks not
 * finished, or nothing runs and what is left cannot start before it (every
 * READY task is set aside). The driver halts then (tf_sched_halt), which
 * skips what has not started and lets the running tasks be ended.
 */
bool tf_sched_must_stop(const tf_sched *s);

/*
 * Work stealing moved DISPATCHED task t from worker `from` (which reported
 * it) to worker `to`. TF_ESTATE if t is not DISPATCHED on `from`, or has
 * PARKED dependents (those stay with their anchor's worker, which never
 * gives such a task away). Emits nothing. The thief's report of t may
 * arrive first: then t is DONE already and the driver drops the move, and
 * task_done will have taken t off `from`'s load, which is where it was.
 */
int tf_sched_task_moved(tf_sched *s, uint32_t t, uint32_t from, uint32_t to);

/*
 * Fill free worker capacity from the ready queue, emitting RUN actions.
 * Strict priority order: a head task that fits no free worker (too many
 * cores) holds back smaller ones behind it until a worker that fits has room.
 * A task needing more cores than the largest live worker fails (TF_ECORES)
 * when it reaches the head. Does nothing after a halt.
 *
 * Local release (s->park): a PENDING task all of whose unfinished
 * dependencies were placed on worker w by this same call (RUN or PARK, so
 * they travel in the same message) is PARKED on w, within w's window, and a
 * PARK action emitted; w starts it when they have finished there, and rank
 * 0's tf_sched_task_done of its last dependency makes it DISPATCHED (an
 * attempt) without an action. If a dependency fails, is unrun or its worker
 * is lost, the parked task goes back to PENDING (the worker drops it too),
 * or is SKIPPED with the rest of the failure's dependents. A task pinned
 * to another worker is not parked on w.
 */
int tf_sched_dispatch(tf_sched *s);

/*
 * DONE task t must run again: its output was lost with the rank that held
 * it (or freed) and tasks still read it. It becomes READY (PENDING if a
 * dependency of its own already runs again); every dependent
 * counts it as unfinished again: a PENDING or READY one waits (PENDING),
 * a PARKED one goes back to PENDING (its worker's run of it will be
 * stale), a DISPATCHED one may still finish with what it read, or come
 * back (unrun, retry) to wait. Tasks may be redone in any order.
 * TF_ESTATE for a task not DONE, or a no-op.
 */
int tf_sched_redo(tf_sched *s, uint32_t t);

/* A DISPATCHED task finished well: release its dependents. */
int tf_sched_task_done(tf_sched *s, uint32_t t);

/*
 * A DISPATCHED task failed with `code`: RETRY while attempts remain (never
 * after a halt), else FAIL and SKIP every task that depends on it along OK
 * edges, directly or not (a retried attempt is no failure yet: dependents
 * along ANY and NOTOK edges wait for the last). Neither this nor task_done
 * checks which worker reported: the driver must drop reports from workers
 * that no longer hold the task.
 */
int tf_sched_task_failed(tf_sched *s, uint32_t t, int32_t code);

/*
 * A DISPATCHED task came back without having started (its worker dropped
 * its queue on a halt): READY again, not an attempt; SKIPPED after a halt.
 * A PARKED one goes back to PENDING, or is SKIPPED after a halt.
 */
int tf_sched_task_unrun(tf_sched *s, uint32_t t);

/*
 * A worker is gone: its tasks go back to the ready queue, and the lost
 * attempt does not count against retries. After a halt they are SKIPPED.
 */
int tf_sched_worker_lost(tf_sched *s, uint32_t w);

/*
 * Stop dispatching; every task not yet dispatched is SKIPPED (cause TF_NONE),
 * and so is every task sealed later. Dispatched and parked tasks still
 * report (DONE, or unrun when the worker drops them).
 */
int tf_sched_halt(tf_sched *s);

/* Dispatch again after a halt (a new run); skipped tasks stay skipped. */
static inline void tf_sched_unhalt(tf_sched *s) { s->halted = false; }

/*
 * Whether a report of task t's attempt `attempt` is current: t is
 * DISPATCHED and that attempt is its latest. Reports are taken from any
 * worker, not only the one rank 0 thinks holds the task (a thief's DONE
 * may overtake the victim's MOVED); the attempt number tells a current
 * report from a stale one. A MOVED is current also only if rank 0 still
 * has t on the reporting worker.
 */
static inline bool tf_sched_is_current(const tf_sched *s, uint32_t t,
                                       uint8_t attempt)
{
    return t < s->dag.n && s->dag.state[t] == TF_ST_DISPATCHED &&
           s->dag.attempts[t] == attempt;
}

/*
 * The attempt number a worker is given with task t: a RUN is already
 * counted by the dispatch; a PARK becomes an attempt only when its last
 * dependency finishes, so it travels with the number it will run as.
 */
static inline uint8_t tf_sched_sent_attempt(const tf_sched *s, uint32_t t,
                                            bool parked)
{
    uint8_t a = s->dag.attempts[t];
    return (uint8_t)(a + (parked && a < UINT8_MAX));
}

/*
 * After a dispatch: whether worker w must hear from rank 0 now. It must
 * when it got tasks (has_tasks). With stealing on, it also must, once per
 * dry spell, when the ready queue is empty and it has room: a header alone
 * saying "nothing else ready", its cue to steal from peers instead of
 * waiting for rank 0. *dry gets that flag for the message.
 */
bool tf_sched_notify(tf_sched *s, uint32_t w, bool has_tasks, bool steal,
                     bool *dry);

/* True when every sealed task is DONE, FAILED or SKIPPED. */
bool tf_sched_is_finished(const tf_sched *s);

static inline const tf_action *tf_sched_actions(const tf_sched *s, size_t *n)
{
    *n = s->nacts;
    return s->acts;
}
static inline void tf_sched_clear_actions(tf_sched *s) { s->nacts = 0; }

static inline tf_state tf_sched_state(const tf_sched *s, uint32_t t)
{
    return (tf_state)s->dag.state[t];
}

/* Heap bytes held by the whole scheduler. */
size_t tf_sched_bytes(const tf_sched *s);

/*
 * Check every invariant (counters, dependency counts, queue contents, worker
 * loads, why each task is where it is). Costs O(tasks + edges). Returns true
 * when all hold; otherwise writes the first violation found to why.
 */
bool tf_sched_check(const tf_sched *s, char *why, size_t len);

#endif
