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
/*
 * NEEDFAIL: has TF_EDGE_NOTOK dependencies, so it runs only if one of them
 * did not succeed. GOTFAIL: one of them failed or was skipped. A task with
 * NEEDFAIL and not GOTFAIL once its dependencies have all ended is not
 * needed: it completes without running (sched.c).
 */
#define TF_TF_NEEDFAIL 0x20u
#define TF_TF_GOTFAIL 0x40u

/*
 * What a dependent waits for along an edge. OK: `from` succeeded (a failed
 * or skipped `from` skips the dependent). ANY: `from` ended, whatever the
 * outcome. NOTOK: `from` ended, and the dependent runs only if at least one
 * of its NOTOK dependencies did not succeed (docs/taskfile.md).
 */
enum { TF_EDGE_OK = 0, TF_EDGE_ANY = 1, TF_EDGE_NOTOK = 2 };

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

/* Whether an edge of `kind` from a task in state `from` still holds back
   its dependent: until `from` is done (OK), or has ended (ANY, NOTOK). */
static inline bool tf_edge_is_open(uint8_t kind, uint8_t from)
{
    return kind == TF_EDGE_OK ? from != TF_ST_DONE
                              : !tf_state_is_terminal((tf_state)from);
}

/*
 * Struct-of-arrays task table: one array per field so that the hot loops
 * (release of dependents, heap comparisons) touch only what they need and a
 * task costs a few bytes, not a cache line. Edges live in one pooled
 * singly-linked list (to, next), 8 bytes per edge, each task holding the head
 * of its list of dependents. An edge's kind (TF_EDGE_*) takes a byte more,
 * in `e_kind`, which exists only once an edge of another kind than OK has
 * been added: a graph of plain dependencies pays nothing for kinds.
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
    uint8_t *e_kind; /* TF_EDGE_* per edge; NULL: every edge is OK */
} tf_dag;

static inline uint8_t tf_dag_kind(const tf_dag *d, uint32_t e)
{
    return d->e_kind ? d->e_kind[e] : (uint8_t)TF_EDGE_OK;
}

void tf_dag_init(tf_dag *d);
void tf_dag_free(tf_dag *d);

/* Append a HELD task; *idx gets its index. TF_ENOMEM, TF_ERANGE (table full). */
int tf_dag_add(tf_dag *d, int32_t prio, uint16_t cores, uint8_t retries,
               uint32_t *idx);

/*
 * Record that `to` depends on `from` along an edge of `kind` (TF_EDGE_*).
 * Counts toward to's pending dependencies only while the edge is open
 * (tf_edge_is_open); an edge from a DONE task, or of kind ANY or NOTOK
 * from an ended one, is satisfied at once. The caller handles what a
 * FAILED/SKIPPED predecessor means. Edges may point forward or backward
 * between HELD tasks; tf_dag_find_cycle checks. TF_EINVAL for an index out
 * of range, a self-edge or an unknown kind, TF_ENOMEM.
 */
int tf_dag_add_edge(tf_dag *d, uint32_t from, uint32_t to, uint8_t kind);

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
