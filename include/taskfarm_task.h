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
} tf_task_desc;

/*
 * A task that runs nothing: it completes as soon as its dependencies have
 * (a join point, a barrier), with no output; rank 0 submissions only.
 */
#define TF_TASK_NOOP 0x1u

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
/* *buf stays valid during the call. Errors: TF_ERANGE. */
TF_API int tf_task_dep_output(const tf_task_ctx *ctx, size_t i, const void **buf,
                       size_t *len);

/* Set the task's output (copied; a second call replaces the first). */
TF_API int tf_task_set_output(tf_task_ctx *ctx, const void *buf, size_t len);

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
