/* A streaming writer of Chrome trace-event JSON: one process per rank, one thread per slot. */
#ifndef TF_UTIL_TRACE_H
#define TF_UTIL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The file is one JSON object, {"displayTimeUnit":"ms","traceEvents":[...]},
 * written event by event through buffered stdio, so a run of millions of
 * tasks costs no memory beyond a bit per (rank, slot) track. Timestamps are
 * microseconds since `start_ns` (CLOCK_REALTIME, the run's start), written
 * with nanosecond digits. docs/trace.md describes the events.
 *
 * Not thread-safe: one thread writes (rank 0's, in the runtime).
 */
typedef struct tf_trace tf_trace;

/* How an attempt ended: chooses the colour in viewers and `taskfarm report`. */
typedef enum tf_trace_result {
    TF_TRACE_DONE = 0,
    TF_TRACE_RETRY,      /* failed, runs again */
    TF_TRACE_FAILED,     /* failed for good */
    TF_TRACE_INTERRUPTED /* ended by a halt (a stop), not by itself */
} tf_trace_result;

/* One attempt of a task on one rank: an "X" (complete) event. */
typedef struct tf_trace_span {
    const char *name; /* the task's id as people know it */
    int rank;         /* "pid" */
    int slot;         /* "tid": the lowest slot it held */
    unsigned cores;   /* slots it held */
    int attempt;
    int status;
    tf_trace_result result;
    uint64_t start_ns, end_ns; /* CLOCK_REALTIME */
} tf_trace_span;

/*
 * Create (truncate) path and write the header. Errors: TF_EIO (errno tells
 * why), TF_ENOMEM; *out untouched then.
 */
int tf_trace_open(const char *path, uint64_t start_ns, tf_trace **out);

/*
 * Name rank's process "rank R (HOST)" (HOST may be NULL or empty) and say
 * it has `slots` slots (0: it runs no tasks, e.g. rank 0 of several). Each
 * slot's thread is named "slot S" the first time a span uses it. Calling it
 * again for a rank writes nothing new. Errors: TF_EINVAL, TF_ENOMEM, TF_EIO.
 */
int tf_trace_rank(tf_trace *tr, int rank, const char *host, unsigned slots);

/* Errors: TF_EINVAL, TF_ENOMEM, TF_EIO. */
int tf_trace_span_add(tf_trace *tr, const tf_trace_span *sp);

/*
 * An "i" (instant) event on rank's process at ts_ns: scope "g" (a line
 * across every track) when global, else "p". detail (may be NULL) goes to
 * args.detail. Errors: TF_EINVAL, TF_EIO.
 */
int tf_trace_instant(tf_trace *tr, int rank, const char *name, uint64_t ts_ns,
                     bool global, const char *detail);

/*
 * Make the file on disk a complete JSON document now (close the array and
 * the object, flush), then go on appending after the last event: the trace
 * stays readable after each run and after a signal. Errors: TF_EIO.
 */
int tf_trace_sync(tf_trace *tr);

/*
 * Complete the document, close the file and free tr (also on failure).
 * Returns 0, or TF_EIO when any write since tf_trace_open failed. NULL: 0.
 */
int tf_trace_close(tf_trace *tr);

/* Close the file without writing what is buffered, nor the tail; free tr. */
void tf_trace_discard(tf_trace *tr);

#endif
