/* taskfarm task-side API: task ids, task functions, descriptions, the running task's view. */
#ifndef TASKFARM_TASK_H
#define TASKFARM_TASK_H

/*
 * Everything a task function needs, with no MPI dependency, so that code
 * which only defines tasks (and taskfarm's own execution layer) builds
 * without mpi.h. taskfarm.h includes this header; the conventions stated
 * there (status codes, out-parameters) hold here too.
 */
#include <stddef.h>
#include <stdint.h>

#include "taskfarm_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tf_task_ctx tf_task_ctx; /* a running task's view */
typedef uint64_t tf_task_id;            /* unique within one runtime */
typedef uint32_t tf_fn_id;              /* a registered task function */

/*
 * A task function. `input` holds the bytes given at submission (valid only
 * during the call). Return 0 for success; any other value fails the task
 * (recorded as its status; a failed task is retried if it has retries left,
 * else its dependents are skipped). May run on any rank and, with slots > 1,
 * on any of the rank's task threads at once with other tasks.
 */
typedef int (*tf_task_fn)(tf_task_ctx *ctx, const void *input, size_t len,
                          void *user);

typedef struct tf_task_desc {
    tf_fn_id fn;
    int32_t prio;            /* higher runs first; default 0 */
    const tf_task_id *deps;  /* tasks that must finish first */
    size_t ndeps;
    const void *input;       /* copied at submission */
    size_t input_len;
    int retries;             /* -1: the config's default */
    unsigned cores;          /* slots the task occupies; 0 means 1 */
    /*
     * Identity for resume (tf_config.resume): a task whose key the loaded
     * state has done is done without running. 0 (default): derived from the
     * function's name, the input, the dependencies' keys and the count of
     * identical submissions before it (docs/api.md).
     */
    uint64_t key;
    unsigned flags; /* TF_TASK_* */
    /*
     * Which output part of each dependency the task receives: dep_parts[i]
     * for deps[i] (0 .. TF_PARTS_MAX-1); NULL (default): part 0 of each.
     * A stencil names its neighbours' halo parts, a reducer its partition.
     */
    const uint32_t *dep_parts;
    /*
     * -1 (default): rank 0 places the task, on the rank that holds most of
     * its input bytes unless that rank is full (docs/architecture.md, "Data
     * path"). r >= 0: the task runs on rank r (owner computes), waiting for
     * room there; if r is lost, anywhere. Ignored with one rank. Rank 0
     * submissions only.
     */
    int rank;
    /*
     * Walltime-aware dispatch (tf_config.deadline_ns): the task's expected
     * duration in ms, 0 (default): not known; and its family, 0 (default):
     * none, else 1 .. 16777216: tasks expected to take alike, numbered
     * densely (rank 0 keeps 4 bytes for each number up to the largest).
     * A task without est_ms is expected to take 5/4 of the longest
     * successful run of its family so far. Rank 0 submissions only.
     */
    uint32_t est_ms;
    uint32_t family;
} tf_task_desc;

/*
 * A task that runs nothing: it completes as soon as its dependencies have
 * (a join point, a barrier), with no output; rank 0 submissions only.
 */
#define TF_TASK_NOOP 0x1u
/*
 * Keep the task's output on rank 0 for tf_task_output after its
 * dependents have it. Without it, an output that dependents read is freed
 * once they have all ended; an output nothing depends on when the task is
 * dispatched is a result and is kept anyway (docs/api.md, "Outputs").
 */
#define TF_TASK_KEEP 0x2u

/* Output parts a task may set: 0 .. TF_PARTS_MAX-1. */
#define TF_PARTS_MAX 256u

/* Fill desc with defaults for function fn. */
TF_API void tf_task_desc_init(tf_task_desc *desc, tf_fn_id fn);

/* ---- inside a running task (any rank, the task's own thread) ---- */

/* The running task's id and attempt number (1 for the first run). */
TF_API tf_task_id tf_task_self(const tf_task_ctx *ctx);
TF_API int tf_task_attempt(const tf_task_ctx *ctx);
/* Rank of the communicator given to tf_init that runs the task. */
TF_API int tf_task_rank(const tf_task_ctx *ctx);

/* Dependencies' outputs, in the order given at submission. */
TF_API size_t tf_task_ndeps(const tf_task_ctx *ctx);
/*
 * The part of dependency i the task asked for (desc.dep_parts; an unset
 * part reads as empty). *buf is aligned to max_align_t, read-only, and
 * stays valid during the call. Errors: TF_EINVAL, TF_ERANGE.
 */
TF_API int tf_task_dep_output(const tf_task_ctx *ctx, size_t i, const void **buf,
                       size_t *len);

/* Set output part 0 (copied; a second call replaces the first). */
TF_API int tf_task_set_output(tf_task_ctx *ctx, const void *buf, size_t len);

/*
 * Set output part `part` (copied; a second call for a part replaces it).
 * Parts are numbered from 0; a dependent names the one it reads.
 * Errors: TF_EINVAL (part >= TF_PARTS_MAX, len over 4 GiB - 1), TF_ENOMEM.
 */
TF_API int tf_task_set_part(tf_task_ctx *ctx, unsigned part, const void *buf,
                            size_t len);

/*
 * A runtime buffer of len bytes for output part `part`, aligned to
 * max_align_t, into which the task writes its output: no copy is made
 * (it is the part from now on; a later set or alloc of the part replaces
 * it). Valid until the task returns. Errors: as tf_task_set_part.
 */
TF_API int tf_task_output_alloc(tf_task_ctx *ctx, unsigned part, size_t len,
                                void **buf);

/*
 * Submit a child task from inside a task. The id is valid at once: later
 * children may depend on it, and it may be returned in the output. deps may
 * name any task whose id the caller got from tf_submit or from this rank's
 * tf_task_submit. The run does not end before the child does.
 * Errors: TF_ENOENT (fn), TF_EINVAL, TF_ENOMEM.
 */
TF_API int tf_task_submit(tf_task_ctx *ctx, const tf_task_desc *desc,
                   tf_task_id *id);

#ifdef __cplusplus
}
#endif
#endif
