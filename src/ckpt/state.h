/* Rank 0's durable state of a runtime: every ended attempt journaled, the task table snapshotted, tasks matched and re-created on resume. */
#ifndef TF_CKPT_STATE_H
#define TF_CKPT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/registry.h"
#include "core/tasks.h"
#include "util/log.h"

/*
 * The driver between the task table (core/tasks.h) and the journal and
 * snapshots of ckpt.h (docs/checkpoint-format.md). It takes the table and
 * the registry, never the runtime: the runtime asks it to write and reads
 * back what to do (halt when tf_ckstate_error says writing failed, note a
 * snapshot in the trace). A problem is logged once, with the directory,
 * and latched: every later tf_run fails with it. Not thread-safe: rank 0's
 * thread only.
 */
typedef struct tf_ckstate tf_ckstate;

typedef struct tf_ckstate_cfg {
    const char *dir;      /* copied */
    int mode;             /* TF_STATE_NEW, TF_STATE_RESUME, TF_STATE_OVERWRITE */
    int every_ms;         /* snapshot period in a run; 0: at its end only */
    int world_size;       /* ranks, recorded in snapshots */
    const tf_logger *log; /* kept */
} tf_ckstate_cfg;

/*
 * Take the directory: with TF_STATE_RESUME load its newest valid state;
 * with TF_STATE_NEW check it holds none; with TF_STATE_OVERWRITE remove an
 * earlier run's. Problems are latched (tf_ckstate_error), not returned.
 * Errors: TF_ENOMEM.
 */
int tf_ckstate_open(const tf_ckstate_cfg *c, tf_ckstate **out);

/* At tf_finalize: close the writer. TF_EIO if it failed at some point. */
int tf_ckstate_close(tf_ckstate **ck);

/* The latched error (TF_EIO, TF_EINVAL, TF_ENOMEM, TF_EDEPOSED), or 0. */
int tf_ckstate_error(const tf_ckstate *ck);

/*
 * Whether another rank has claimed a later scheduler term in the directory
 * (tf_term_claim) than the one found when it was taken: then this rank's
 * scheduler was deposed, and the error TF_EDEPOSED is latched. One stat.
 */
bool tf_ckstate_deposed(tf_ckstate *ck);

/* The same look, latching nothing: safe from any thread. */
bool tf_ckstate_term_passed(const tf_ckstate *ck);

/* The number of this runtime's dynamic ids (core/tasks.h): past the state's. */
uint64_t tf_ckstate_epoch(const tf_ckstate *ck);

/* In tf_run, before the ranks agree: the writer opens at the first run. */
int tf_ckstate_prepare(tf_ckstate *ck);

/*
 * Identity of a task being added. For a task of tf_submit (parent
 * TF_NONE) the key is `key` if given, else it hashes the function name,
 * input, the dependencies' keys and the count of identical submissions
 * before it; for a task submitted by task `parent`, the parent's key, its
 * count of children so far, the function name and input. If the loaded
 * state has the key DONE, m->flags gets TF_TASKS_NOOP and m->out a copy of
 * the stored output. Errors: TF_ENOMEM.
 */
typedef struct tf_ckmatch {
    uint64_t key;
    uint32_t row;   /* in the loaded state, or TF_NONE */
    unsigned flags;
    void *out;      /* owned until tf_ckstate_added takes it */
} tf_ckmatch;
int tf_ckstate_match(tf_ckstate *ck, const tf_tasks *tt,
                     const tf_registry *reg, uint32_t parent, uint32_t fn,
                     uint64_t key, const uint32_t *deps, uint32_t ndeps,
                     const void *in, uint32_t in_len, tf_ckmatch *m);

/*
 * Task t was added as matched: record its identity and, if done in the
 * state, its stored outcome. A task submitted by a task (parent !=
 * TF_NONE) is journaled, and a done one has its descendants re-created
 * from the state at once (a task of tf_submit has them re-created at the
 * next run, when every task they may depend on is known). Errors:
 * TF_ENOMEM (latched too).
 */
int tf_ckstate_added(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg,
                     uint32_t t, uint32_t parent, tf_ckmatch *m);

/*
 * Rank 0's loop is starting: re-create the children of tasks done in the
 * state, and snapshot first if ids changed meaning. Returns the latched
 * error.
 */
int tf_ckstate_begin(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg);

/*
 * Tasks of tf_submit were added and sealed during a run (from a TICK
 * callback): what tf_ckstate_begin does for those submitted before it, at
 * once. A failure is latched (the loop halts on it) and returned.
 */
int tf_ckstate_settle(tf_ckstate *ck, tf_tasks *tt, const tf_registry *reg);

/* Journal the attempt of task t that just ended. */
void tf_ckstate_finished(tf_ckstate *ck, const tf_tasks *tt, uint32_t t);

/*
 * Time passed (monotonic now_ns): a snapshot when one is due. Returns
 * true when one was written (tf_ckstate_note says so).
 */
bool tf_ckstate_tick(tf_ckstate *ck, const tf_tasks *tt,
                     const tf_registry *reg, uint64_t now_ns);

/*
 * The run ends: the final snapshot, durable when this returns. Returns
 * TF_EIO (or the latched error) after any write error of this run.
 */
int tf_ckstate_end(tf_ckstate *ck, const tf_tasks *tt,
                   const tf_registry *reg);

/* The last snapshot, for the trace: "snapshot N of M tasks, dispatch paused X ms". */
const char *tf_ckstate_note(const tf_ckstate *ck);

/* Snapshots written, and the longest time one held up rank 0's loop. */
void tf_ckstate_counts(const tf_ckstate *ck, uint64_t *snapshots,
                       uint64_t *max_pause_ns);

#endif
