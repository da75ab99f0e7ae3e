/* Task table and dependency graph: compact per-task arrays plus a pooled edge list. */
#ifndef TF_CORE_DAG_H
#define TF_CORE_DAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_NONE UINT32_MAX /* "no task", "no edge", "no worker" */

/*
 * Task flags. DOOMED: a dependency had already failed when the edge was
 * added. NOOP: the task completes without running as soon as it is ready
 * (a barrier, or a task an earlier run already finished).
 */
#define TF_TF_DOOMED 0x1u
#define TF_TF_NOOP 0x2u
/* Placed on a worker during the dispatch call in progress (sched.c). */
#define TF_TF_FRESH 0x4u
/*
 * Has ordering dependencies (no output travels along them): never parked,
 * since a worker learns what a parked task waits for from its data edges.
 */
#define TF_TF_NOPARK 0x8u
/*
 * Dispatched while a dependency runs again (tf_sched_redo): it may finish
 * with what it already read, or come back to wait for the new output.
 */
#define TF_TF_STALEIN 0x10u

/* A task's life. HELD tasks are added but not yet sealed into the schedule. */
typedef enum tf_state {
    TF_ST_HELD = 0,
    TF_ST_PENDING,    /* waiting for dependencies */
    TF_ST_READY,      /* in the ready queue */
    TF_ST_DISPATCHED, /* sent to a worker, not finished */
    TF_ST_PARKED,     /* sent ahead to the worker its pending deps run on */
    TF_ST_DONE,
    TF_ST_FAILED,
    TF_ST_SKIPPED, /* a dependency failed or was skipped */
    TF_ST_COUNT_
} tf_state;

const char *tf_state_name(tf_state st);

static inline bool tf_state_is_terminal(tf_state st)
{
    return st == TF_ST_DONE || st == TF_ST_FAILED || st == TF_ST_SKIPPED;
}

/*
 * Struct-of-arrays task table: one array per field so that the hot loops
 * (release of dependents, heap comparisons) touch only what they need and a
 * task costs a few bytes, not a cache line. Edges live in one pooled
 * singly-linked list (to, next), 8 bytes per edge, each task holding the head
 * of its list of dependents.
 */
typedef struct tf_dag {
    uint32_t n, cap;
    int32_t *prio;
    uint32_t *npend;    /* unfinished dependencies */
    uint32_t *out_head; /* first edge to a dependent, TF_NONE if none */
    uint32_t *worker;   /* worker holding the task while DISPATCHED/PARKED */
    uint32_t *pin;      /* the only worker it may run on, or TF_NONE */
    uint16_t *cores;
    uint8_t *state;
    uint8_t *attempts; /* attempts started so far */
    uint8_t *retries;  /* extra attempts allowed after a failure */
    uint8_t *flags;    /* TF_TF_* bits */

    uint32_t ne, ecap;
    uint32_t *e_to;
    uint32_t *e_next;
} tf_dag;

void tf_dag_init(tf_dag *d);
void tf_dag_free(tf_dag *d);

/* Append a HELD task; *idx gets its index. TF_ENOMEM, TF_ERANGE (table full). */
int tf_dag_add(tf_dag *d, int32_t prio, uint16_t cores, uint8_t retries,
               uint32_t *idx);

/*
 * Record that `to` depends on `from`. Counts toward to's pending
 * dependencies only while `from` is unfinished; an edge from a DONE task is
 * satisfied at once. The caller handles FAILED/SKIPPED predecessors. Edges may
 * point forward or backward between HELD tasks; tf_dag_find_cycle checks.
 * TF_EINVAL for an index out of range or a self-edge, TF_ENOMEM.
 */
int tf_dag_add_edge(tf_dag *d, uint32_t from, uint32_t to);

/*
 * Look for a dependency cycle among the HELD tasks with index >= first.
 * Returns 0 if there is none, or the number of tasks in one cycle found,
 * writing up to max of them to cyc in dependency order (cyc[i+1] depends on
 * cyc[i]). Returns TF_ENOMEM if scratch space cannot be had.
 */
long tf_dag_find_cycle(const tf_dag *d, uint32_t first, uint32_t *cyc,
                       size_t max);

/* Bytes of heap memory the table and edge pool hold now. */
size_t tf_dag_bytes(const tf_dag *d);

#endif
