/* Rank 0's task table: the scheduler, each task's record (id, function, input, dependencies, output, outcome) and the ids of dynamic tasks. */
#ifndef TF_CORE_TASKS_H
#define TF_CORE_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "idmap.h"
#include "sched.h"
#include "taskfarm_runtime.h"

/*
 * What rank 0 keeps per task besides the scheduler's fields. `req` holds
 * the dependency indexes (u32 each) followed by the input bytes, in one
 * allocation, NULL for a task with neither: an empty task costs no heap.
 */
typedef struct tf_trec {
    uint64_t gid;
    uint8_t *req;
    uint8_t *out;
    uint32_t fn, in_len, out_len, ndeps;
    int32_t status, rank;
    uint64_t start_ns, end_ns;
    uint16_t slot; /* the lowest slot of the last attempt */
} tf_trec;

typedef struct tf_tasks {
    tf_sched sched;
    tf_trec *rec;
    uint32_t rcap;
    tf_idmap ids;          /* gids of tasks submitted from inside tasks */
    size_t data_bytes;     /* inputs, dependency lists and outputs held */
    uint64_t bad_reported; /* failed + skipped tasks when the last run ended */
    int retries;           /* extra attempts of a task that names none */
    bool batching;         /* tf_batch_begin: tasks stay HELD */
} tf_tasks;

/* tf_tasks_add flags */
#define TF_TASKS_DOOMED 0x1u /* SKIPPED at once: its input is unusable */
#define TF_TASKS_NOOP 0x2u   /* done without running once its deps are */

/*
 * Ids of tasks submitted from inside tasks: the epoch (a resumed runtime's
 * number, so ids never repeat those of the state it resumed) in bits 52-63,
 * the creating rank + 1 in bits 32-51, a per-rank counter below. Rank 0's
 * own submissions use their table index.
 */
#define TF_TASKS_EPOCH_SHIFT 52
#define TF_TASKS_EPOCH_MAX 4095u
static inline uint64_t tf_tasks_gid_base(uint64_t epoch, int rank)
{
    return epoch << TF_TASKS_EPOCH_SHIFT | (uint64_t)(rank + 1) << 32;
}

/* An empty table; `retries` for tasks that name none. Errors: TF_ENOMEM. */
int tf_tasks_init(tf_tasks *tt, int retries);
void tf_tasks_free(tf_tasks *tt);

/*
 * Append a task with its record, and seal it unless a batch is open
 * (tt->batching: it stays HELD until the caller seals the batch). Deps are table indexes of older tasks; their outputs
 * reach the task. gid 0 means "use the index" (rank 0's own submissions).
 * retries < 0: the table's default. All or nothing. Errors: TF_ENOMEM.
 */
int tf_tasks_add(tf_tasks *tt, uint64_t gid, uint32_t fn, int32_t prio,
                 uint16_t cores, int retries, const uint32_t *deps,
                 uint32_t ndeps, const void *in, uint32_t in_len,
                 unsigned flags, uint32_t *idx);

/* Forget the HELD tasks (a batch with a cycle) and their records. */
void tf_tasks_drop_held(tf_tasks *tt);

/* Table index of a task id, or TF_NONE. */
uint32_t tf_tasks_index_of(const tf_tasks *tt, uint64_t gid);

/* Dependency i of task t (a table index). */
static inline uint32_t tf_tasks_dep(const tf_tasks *tt, uint32_t t,
                                    uint32_t i)
{
    uint32_t d;
    memcpy(&d, tt->rec[t].req + (size_t)i * 4, sizeof d);
    return d;
}

/* Task t's input bytes (rec[t].in_len of them), NULL when none. */
static inline const uint8_t *tf_tasks_input(const tf_tasks *tt, uint32_t t)
{
    const tf_trec *r = &tt->rec[t];
    return r->req ? r->req + (size_t)r->ndeps * 4 : NULL;
}

/* The public state of a scheduler state (a parked task is dispatched). */
tf_task_state tf_tasks_public_state(tf_state st);

/*
 * An attempt of task t ended on `rank` (slot, times, status): record it,
 * taking over `out` (malloc'd, or NULL when out_len is 0).
 */
void tf_tasks_record(tf_tasks *tt, uint32_t t, int rank, int32_t status,
                     uint64_t start_ns, uint64_t end_ns, uint16_t slot,
                     void *out, uint32_t out_len);

/* The public view of task t (tf_task_info_get). */
void tf_tasks_info(const tf_tasks *tt, uint32_t t, tf_task_info *info);

/* Heap bytes of the records and of the data they hold. */
size_t tf_tasks_bytes(const tf_tasks *tt);

/*
 * Failed and skipped tasks since the last call: the runs that ended with
 * some report TF_EFAILED.
 */
bool tf_tasks_new_failures(tf_tasks *tt);

#endif
