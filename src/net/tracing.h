/* The runtime's trace (tf_config.trace_path): rank 0's run events as spans and instants of a Chrome trace. */
#ifndef TF_NET_TRACING_H
#define TF_NET_TRACING_H

#include <stdint.h>

#include "taskfarm_runtime.h"
#include "util/log.h"

/*
 * Wraps the writer of src/util/trace.h for rank 0's loop: each ended
 * attempt becomes a span on its rank's slot, retries and failures also an
 * instant, moves of queued tasks (steals) an instant; docs/trace.md. A
 * write error is logged once and kept (tf_tracing_error); the trace goes
 * on as far as it can. It needs nothing of the runtime but what each call
 * passes.
 */
typedef struct tf_tracing tf_tracing;

/* Create (truncate) path. Errors, logged with the path: TF_EIO, TF_ENOMEM. */
int tf_tracing_open(const char *path, const tf_logger *log, tf_tracing **out);

/*
 * A run begins: name each rank's process after its host (hosts[r], may be
 * NULL) and give it slots[r] slots, but none to rank 0 of several ranks,
 * which runs no tasks.
 */
void tf_tracing_begin(tf_tracing *tr, int size, const char (*hosts)[64],
                      const unsigned *slots);

/* Task `name` (cores wide) ended as ev says. */
void tf_tracing_event(tf_tracing *tr, const tf_run_event *ev,
                      const char *name, unsigned cores);

/* n queued tasks moved from rank victim to rank thief (a steal). */
void tf_tracing_moved(tf_tracing *tr, int victim, int thief, uint32_t n);

/* A global instant now (a halt, a signal, a checkpoint). */
void tf_tracing_note(tf_tracing *tr, const char *name, const char *detail);

/* A run ended: the file is a whole JSON document again. */
void tf_tracing_end(tf_tracing *tr);

/* The first write error of the trace's life, or 0. */
int tf_tracing_error(const tf_tracing *tr);

/* Close; returns the first write error, or 0. *tr becomes NULL. */
int tf_tracing_close(tf_tracing **tr);

/* Close without writing anything more (a deposed rank 0). */
void tf_tracing_discard(tf_tracing **tr);

#endif
