/* Rank 0's loop state, shared by the loop (sched_loop.c) and the application of what workers report (sched_intake.c). */
#ifndef TF_NET_SCHED_LOOP_H
#define TF_NET_SCHED_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

/*
 * Per-run state of rank 0. Worker w of the scheduler is rank w+1; rank 0's
 * own pool, when it runs tasks, is worker `self` (tf_rt_worker_of).
 */
typedef struct tf_master {
    tf_runtime *rt;
    tf_sendq out;
    tf_buf *batch;     /* per worker: a TASKS message being built */
    tf_buf in;
    bool local;        /* a single rank: no other rank to talk to */
    uint32_t self;     /* rank 0's own worker, or TF_NONE */
    tf_job *mine;      /* tasks for the own pool, pushed at once (act) */
    size_t nmine, minecap;
    tf_fetchvec fetch; /* parts the own pool's tasks need from workers */
    uint8_t halted;    /* the halt carried out in this run: TF_WIRE_HALT_* */
    bool out_of_time;  /* the deadline stopped the run (tf_run: TF_EDEADLINE) */
    uint64_t quiet_at; /* when a poll last found no message; 0: one has since */
    uint64_t tick_ns, next_tick;
    uint64_t term_check_at; /* the next look for a later term (fence) */
    /* The same for the own pool's task threads (may_run), atomics. */
    uint64_t gate_check_at;
    bool gate_deposed;
    uint32_t *ntask;   /* per worker: TASK records in its batch */
} tf_master;

/* Task t ended for good (done, failed, skipped): outputs it read may go. */
void tf_master_ended(tf_master *m, uint32_t t);

/*
 * Task t for worker w (sched_data.c): queued in the local pool, or encoded
 * into w's batch with each dependency inline, as a reference to its holder
 * or, parked, as an anchor. Errors: TF_ENOMEM.
 */
int tf_master_send_task(tf_master *m, uint32_t t, uint32_t w, bool parked);

/* tf_sched.place: the worker holding most of what t would fetch, or TF_NONE. */
uint32_t tf_master_place(void *rt, uint32_t t);

/*
 * Rank `rank` was written off: outputs only it had that tasks still read
 * are made again, transitively. Errors: TF_ENOMEM.
 */
int tf_master_lose_outputs(tf_master *m, int rank);

/* Tell the trace and the app's callback about task t (TF_NONE: a tick). */
void tf_master_fire(tf_master *m, tf_run_event_kind kind, uint32_t t,
                    int32_t cause);

/* Apply one REPORT message from rank `from` (sched_intake.c). */
int tf_intake_report(tf_master *m, int from, const tf_buf *msg);

/* Apply the own pool's events (rank 0 runs tasks too). */
int tf_intake_local(tf_master *m, bool *progress);

/* Hand the own pool the tasks act() gave it, and ask for their inputs. */
int tf_master_push_mine(tf_master *m);

/*
 * Whether rank 0 was deposed (sched_loop.c): TF_EDEPOSED once a later
 * scheduler term exists in its state directory, looked for only while it
 * holds no lease (no worker heard from for half a heartbeat period), at
 * most once a millisecond; else 0.
 */
int tf_master_fenced(tf_master *m);

#endif
