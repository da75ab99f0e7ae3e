/* The runtime object behind tf_runtime: communicator, registry, rank 0's task records. */
#ifndef TF_NET_RUNTIME_H
#define TF_NET_RUNTIME_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/idmap.h"
#include "core/sched.h"
#include "core/steal.h"
#include "core/wire.h"
#include "exec/pool.h"
#include "taskfarm.h"
#include "util/log.h"
#include "util/trace.h"

/* Rank 0's checkpoint and resume state (ckpt.c), when checkpoint_dir is set. */
typedef struct tf_rt_ck tf_rt_ck;

/* Writes the name a trace gives task `id` into buf (a driver's own ids). */
typedef void (*tf_rt_name_fn)(void *user, tf_task_id id, char *buf, size_t len);

/*
 * Default tasks per slot a worker may hold (tf_config.prefetch). The
 * adaptive window stays far below it unless tasks take microseconds; then
 * it must cover rank 0's response time, which is milliseconds when rank 0
 * shares a core: 64 x 8 us tasks starved workers where 256 did not.
 */
#define TF_DEFAULT_PREFETCH 256

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

struct tf_runtime {
    MPI_Comm comm;
    bool mpi; /* false: tf_init_local, no MPI call is ever made */
    int rank, size;
    tf_config cfg;
    tf_logger log;

    tf_fnent *fns;
    uint32_t nfns, fcap;
    bool in_run;

    tf_pool pool; /* runs tasks here: every rank but rank 0 of several */
    bool have_pool;

    /* rank 0 only */
    tf_sched sched;
    tf_trec *rec;
    uint32_t rcap;
    tf_idmap ids; /* gids of tasks submitted from inside tasks */
    uint64_t bad_reported; /* failed + skipped tasks when the last run ended */
    size_t data_bytes;     /* inputs, dependency lists and outputs held */
    uint32_t *wslots;      /* slots of each rank, from the last tf_run */
    tf_loc self;           /* where this rank runs */
    tf_loc *locs;          /* every rank's, from the last tf_run */
    bool steal;            /* this rank steals (and may be stolen from) */
    bool halt_requested;   /* tf_halt was called during this run */

    uint64_t msgs_sent, msgs_recv;
    uint64_t steals, stolen_tasks; /* this rank's successful steals */
    uint64_t moved;                /* rank 0: moves applied */

    /*
     * Liveness, when heartbeat_ms > 0 (else all NULL or 0): when this rank
     * last heard from and last sent to each rank, and the ranks it has
     * written off. A rank once lost stays lost; the runtime is degraded.
     */
    uint64_t hb_ns, next_pulse;
    uint64_t *heard, *told;
    /* Doorbells of the ranks on this node (bell.c); NULL entries elsewhere. */
    struct tf_bell **bells;
    void *bell_base; /* the node's lines, bell_len bytes mapped */
    size_t bell_len;
    bool *dead;
    uint32_t nlost;
    bool degraded;

    /* rank 0: the trace of cfg.trace_path (trace.c, docs/trace.md) */
    char (*hosts)[64];     /* every rank's host name, from the first tf_run */
    bool hosts_known;      /* every rank: the host names were gathered */
    tf_trace *trace;
    int trace_err;         /* the first write error, TF_EIO or TF_ENOMEM */
    uint64_t trace_moved;  /* `moved` when the trace last looked */
    tf_event_fn trace_fn;  /* the app's event callback while tracing */
    void *trace_fn_user;
    tf_rt_name_fn trace_name; /* NULL: "ID FUNCTION" */
    void *trace_name_user;

    tf_rt_ck *ck; /* rank 0 with cfg.checkpoint_dir, else NULL */
};

/* tf_rt_add_task flags */
#define TF_RT_DOOMED 0x1u /* SKIPPED at once: its input is unusable */
#define TF_RT_NOOP 0x2u   /* done without running once its deps are */
#define TF_RT_HOLD 0x4u   /* leave it HELD; the caller adds edges and seals */

/*
 * Append a task with its record (rank 0) and seal it unless TF_RT_HOLD.
 * Deps are table indexes of older tasks; their outputs reach the task.
 * gid 0 means "use the index" (rank 0's own submissions).
 */
int tf_rt_add_task(tf_runtime *rt, uint64_t gid, uint32_t fn, int32_t prio,
                   uint16_t cores, int retries, const uint32_t *deps,
                   uint32_t ndeps, const void *in, uint32_t in_len,
                   unsigned flags, uint32_t *idx);

/* Table index of a task id, or TF_NONE. */
uint32_t tf_rt_index_of(const tf_runtime *rt, uint64_t gid);

/* The public state of a scheduler state. */
tf_task_state tf_rt_public_state(tf_state st);

/*
 * Ids of tasks submitted from inside tasks: the epoch (a resumed runtime's
 * number, so ids never repeat those of the state it resumed) in bits 52-63,
 * the creating rank + 1 in bits 32-51, a per-rank counter below.
 */
#define TF_RT_EPOCH_SHIFT 52
#define TF_RT_EPOCH_MAX 4095u
static inline uint64_t tf_rt_gid_base(uint64_t epoch, int rank)
{
    return epoch << TF_RT_EPOCH_SHIFT | (uint64_t)(rank + 1) << 32;
}

/*
 * Doorbells (bell.c). init: collective at tf_init over the node's ranks.
 * ring: after a send to rank r, wake it if it sleeps on this node. wait:
 * sleep up to ns or until rung; false if this rank has no bell (sleep on
 * the timer then). free: at tf_finalize.
 */
int tf_rt_bell_init(tf_runtime *rt);
void tf_rt_bell_ring(tf_runtime *rt, int r);
bool tf_rt_bell_wait(tf_runtime *rt, long ns);
void tf_rt_bell_free(tf_runtime *rt);

/*
 * Checkpoint and resume (ckpt.c, docs/checkpoint-format.md), rank 0 only;
 * each does nothing when rt->ck is NULL.
 *
 * init: at tf_init; with cfg.resume, load the state (a failure is latched
 * and makes every tf_run fail). prepare: in tf_run before the ranks agree;
 * opens the writer at the first run; returns the latched error. epoch: of
 * this runtime's dynamic ids. begin: rank 0's loop is starting: re-create
 * the children of tasks done in the state, snapshot if ids changed meaning.
 * finished: journal an ended attempt of task t. tick: a snapshot when due.
 * end: the final snapshot, durable; returns TF_EIO after any write error
 * of this run. free: at tf_finalize; TF_EIO if the writer failed at close.
 */
int tf_rt_ck_init(tf_runtime *rt);
int tf_rt_ck_prepare(tf_runtime *rt);
uint64_t tf_rt_ck_epoch(const tf_runtime *rt);
int tf_rt_ck_begin(tf_runtime *rt);
void tf_rt_ck_finished(tf_runtime *rt, uint32_t t);
void tf_rt_ck_tick(tf_runtime *rt, uint64_t now_ns);
int tf_rt_ck_end(tf_runtime *rt);
int tf_rt_ck_free(tf_runtime *rt);

/*
 * Identity of a task being added. For a task of tf_submit (parent TF_NONE)
 * the key hashes the function name, input, the dependencies' keys and the
 * count of identical submissions before it; for a task submitted by task
 * `parent`, the parent's key, its count of children so far, the function
 * name and input. If the loaded state has the key DONE, *flags gets
 * TF_RT_NOOP and *out a copy of the stored output. Errors: TF_ENOMEM.
 */
typedef struct tf_rt_match {
    uint64_t key;
    uint32_t row;  /* in the loaded state, or TF_NONE */
    unsigned flags;
    void *out;     /* owned until tf_rt_ck_added takes it */
} tf_rt_match;
int tf_rt_ck_match(tf_runtime *rt, uint32_t parent, uint32_t fn,
                   const uint32_t *deps, uint32_t ndeps, const void *in,
                   uint32_t in_len, tf_rt_match *m);
/*
 * Task t was added as matched: record its identity and, if done in the
 * state, its stored outcome. A task submitted by a task (parent != TF_NONE)
 * is journaled, and a done one has its descendants re-created from the
 * state at once (a task of tf_submit has them re-created at the next run,
 * when every task they may depend on is known). Errors: TF_ENOMEM.
 */
int tf_rt_ck_added(tf_runtime *rt, uint32_t t, uint32_t parent,
                   tf_rt_match *m);

/*
 * The trace, on rank 0 when cfg.trace_path is set (trace.c); elsewhere
 * they do nothing. open: create the file before the first run (logs why
 * not; TF_EIO, TF_ENOMEM). begin/end: bracket each run, naming the ranks
 * and routing task events through the trace; end leaves the file a whole
 * JSON document. note: a global instant event now (halts, signals,
 * checkpoints). close: at tf_finalize; returns the first write error of
 * the trace's life, or 0.
 */
int tf_rt_trace_open(tf_runtime *rt);
void tf_rt_trace_begin(tf_runtime *rt);
void tf_rt_trace_end(tf_runtime *rt);
void tf_rt_trace_note(tf_runtime *rt, const char *name, const char *detail);
int tf_rt_trace_close(tf_runtime *rt);

/* The scheduling loops (run.c). */
int tf_rt_run_master(tf_runtime *rt);
int tf_rt_run_worker(tf_runtime *rt);

/*
 * Collective over comm: every rank's NUL-terminated text, in rank order,
 * back to back (each with its NUL) in *all (malloc'd), total bytes in *len
 * (may be NULL); e.g. the locality lines of src/place/locality.h. Errors,
 * the same on every rank: TF_EINVAL, TF_ENOMEM, TF_ERANGE (over 2 GiB),
 * TF_EMPI.
 */
int tf_net_allgather_text(MPI_Comm comm, const char *mine, char **all,
                          size_t *len);

#endif
