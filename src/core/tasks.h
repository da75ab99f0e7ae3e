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
    /*
     * Rank 0's copy of the output: part 0's bytes, or, with TF_OUT_PACKED,
     * every part's length and where it is (tf_tasks_part). NULL: none.
     */
    uint8_t *out;
    uint32_t fn, in_len, out_len, ndeps;
    int32_t status, rank;
    uint64_t start_ns, end_ns;
    uint16_t slot; /* the lowest slot of the last attempt */
    uint8_t oflags; /* TF_OUT_* */
    int32_t holder; /* rank holding the parts for readers, -1: none */
    uint32_t uses;  /* dependents not yet ended that read the output */
    int32_t pin;    /* rank the task must run on, -1 */
} tf_trec;

/*
 * Output flags. PACKED: `out` is the packed form (parts, lengths, where).
 * AWAY: some part is held by `holder` only. KEEP: rank 0 keeps its copy
 * (TF_TASK_KEEP, keep_outputs, or a result: read by nothing when
 * dispatched). GONE: the output was released, or lost with its holder.
 */
#define TF_OUT_PACKED 0x1u
#define TF_OUT_AWAY 0x2u
#define TF_OUT_KEEP 0x4u
#define TF_OUT_GONE 0x8u
#define TF_OUT_WANT_KEEP 0x10u /* TF_TASK_KEEP: keep whatever happens */
/* Not an output flag: `req` holds a part number per dependency. */
#define TF_REC_DEP_PARTS 0x20u
/* `out` is a cell of tf_tasks, not a malloc'd block. */
#define TF_OUT_CELL 0x40u
#define TF_TASKS_CELL 32u
#define TF_TASKS_CHUNK 65536u
/* Free cells kept ready for tasks not yet done (cells_ahead): 512 KiB. */
#define TF_TASKS_CELLS_AHEAD 16384u

/* One part of an output as a report gives it: its bytes, or held away. */
typedef struct tf_outpart {
    const void *bytes; /* NULL: only the reporting rank has them */
    uint32_t len;
    bool held;         /* the reporting rank keeps a copy for readers */
} tf_outpart;

typedef struct tf_tasks {
    tf_sched sched;
    tf_trec *rec;
    uint32_t rcap;
    tf_idmap ids;          /* gids of tasks submitted from inside tasks */
    size_t data_bytes;     /* inputs, dependency lists and outputs held */
    size_t out_bytes, out_peak; /* outputs held, now and at most */
    uint64_t bad_reported; /* failed + skipped tasks when the last run ended */
    /*
     * Outputs of up to TF_TASKS_CELL bytes (one part, as most results
     * are) live in cells cut from chunks, not each in a malloc'd block:
     * rank 0 copies every task's result, and a malloc and a free of its
     * own cost more than the rest of recording it. Free cells are linked
     * through their first bytes; chunks through theirs.
     */
    void *free_cells, *chunks;
    uint32_t ncells_free;
    uint32_t cells_owed; /* tasks added that have not taken a cell, capped */
    int retries;           /* extra attempts of a task that names none */
    bool batching;         /* tf_batch_begin: tasks stay HELD */
} tf_tasks;

/* tf_tasks_add flags */
#define TF_TASKS_DOOMED 0x1u /* SKIPPED at once: its input is unusable */
#define TF_TASKS_NOOP 0x2u   /* done without running once its deps are */
#define TF_TASKS_KEEP 0x4u   /* rank 0 keeps its output (TF_TASK_KEEP) */

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
 * (tt->batching: it stays HELD until the caller seals the batch). Deps are
 * table indexes of older tasks; part parts[i] of dependency i's output
 * reaches the task (parts NULL: part 0 of each). gid 0 means "use the
 * index" (rank 0's own submissions).
 * retries < 0: the table's default. All or nothing. Errors: TF_ENOMEM.
 */
int tf_tasks_add(tf_tasks *tt, uint64_t gid, uint32_t fn, int32_t prio,
                 uint16_t cores, int retries, const uint32_t *deps,
                 const uint32_t *parts, uint32_t ndeps, const void *in,
                 uint32_t in_len, unsigned flags, uint32_t *idx);

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

/*
 * Where a record's input starts in `req`: after its dependency list (and
 * parts), rounded up to 16 so that a task rank 0 runs itself reads its
 * input aligned for any type.
 */
static inline size_t tf_tasks_input_offset(const tf_trec *r)
{
    size_t per = r->oflags & TF_REC_DEP_PARTS ? 8 : 4;
    return ((size_t)r->ndeps * per + 15) / 16 * 16;
}

/* The part of dependency i's output that task t reads. */
static inline uint32_t tf_tasks_dep_part(const tf_tasks *tt, uint32_t t,
                                         uint32_t i)
{
    const tf_trec *r = &tt->rec[t];
    uint32_t p = 0;
    if (r->oflags & TF_REC_DEP_PARTS)
        memcpy(&p, r->req + ((size_t)r->ndeps + i) * 4, sizeof p);
    return p;
}

/* Task t's input bytes (rec[t].in_len of them), NULL when none. */
static inline const uint8_t *tf_tasks_input(const tf_tasks *tt, uint32_t t)
{
    const tf_trec *r = &tt->rec[t];
    return r->req ? r->req + tf_tasks_input_offset(r) : NULL;
}

/* The public state of a scheduler state (a parked task is dispatched). */
tf_task_state tf_tasks_public_state(tf_state st);

/* An attempt of task t ended on `rank` (slot, times, status): record it. */
void tf_tasks_record(tf_tasks *tt, uint32_t t, int rank, int32_t status,
                     uint64_t start_ns, uint64_t end_ns, uint16_t slot);

/*
 * Task t's output: nparts parts, copied where they have bytes; `holder`
 * keeps the parts marked held. Replaces an earlier output. Errors:
 * TF_ENOMEM (nothing changed).
 */
int tf_tasks_set_output(tf_tasks *tt, uint32_t t, const tf_outpart *parts,
                        uint32_t nparts, int holder);

/*
 * Take over a stored output blob (malloc'd, `len` bytes; packed when
 * `packed`), as the checkpoint kept it: resume.
 */
void tf_tasks_take_output(tf_tasks *tt, uint32_t t, void *blob, uint32_t len,
                          bool packed);

/*
 * Part `part` of task t's output as rank 0 knows it: *len, and *buf, rank
 * 0's copy (aligned) or NULL when only rec.holder has it. A part the task
 * never set reads as empty. False when the output is gone.
 */
bool tf_tasks_part(const tf_tasks *tt, uint32_t t, uint32_t part,
                   const void **buf, uint32_t *len);

/* Bytes of every part of t's output (wherever they are). */
uint64_t tf_tasks_output_bytes(const tf_tasks *tt, uint32_t t);

/*
 * Task t ended (done, failed or skipped): each of its data dependencies
 * has one reader fewer. An output nobody reads any more and nobody keeps
 * is released (tf_tasks_release). Not for no-op tasks, which never read.
 */
void tf_tasks_ended(tf_tasks *tt, uint32_t t,
                    void (*away)(void *u, uint32_t d, int holder), void *u);

/*
 * Free rank 0's copy of d's output and mark it gone; if a rank holds
 * parts of it, away(u, d, holder) is called first so the driver tells it.
 */
void tf_tasks_release(tf_tasks *tt, uint32_t d,
                      void (*away)(void *u, uint32_t d, int holder), void *u);

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
