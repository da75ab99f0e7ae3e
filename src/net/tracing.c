/* The runtime's trace: run events to spans and instants, the first write error kept. */
#include "tracing.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/trace.h"

struct tf_tracing {
    tf_trace *w;
    char *path;
    const tf_logger *log;
    int err; /* the first write error, TF_EIO or TF_ENOMEM */
};

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Remember the first failure and say it once. */
static void failed(tf_tracing *tr, int rc)
{
    if (!rc || tr->err)
        return;
    tr->err = rc;
    tf_logf(tr->log, TF_LOG_ERROR, "cannot write the trace %s: %s", tr->path,
            rc == TF_EIO ? strerror(errno) : tf_strerror(rc));
}

int tf_tracing_open(const char *path, const tf_logger *log, tf_tracing **out)
{
    tf_tracing *tr = calloc(1, sizeof *tr);
    if (!tr || !(tr->path = strdup(path))) {
        free(tr);
        return TF_ENOMEM;
    }
    tr->log = log;
    int rc = tf_trace_open(path, wall_ns(), &tr->w);
    if (rc) {
        tf_logf(log, TF_LOG_ERROR, "cannot create the trace %s: %s", path,
                rc == TF_EIO ? strerror(errno) : tf_strerror(rc));
        free(tr->path);
        free(tr);
        return rc;
    }
    *out = tr;
    return 0;
}

void tf_tracing_begin(tf_tracing *tr, int size, const char (*hosts)[64],
                      const unsigned *slots)
{
    int rc = 0;
    for (int r = 0; r < size && !rc; r++)
        rc = tf_trace_rank(tr->w, r, hosts ? hosts[r] : NULL, slots[r]);
    failed(tr, rc);
}

void tf_tracing_event(tf_tracing *tr, const tf_run_event *ev,
                      const char *name, unsigned cores)
{
    int rc = 0;
    bool attempt = ev->kind == TF_RUN_DONE || ev->kind == TF_RUN_RETRY ||
                   ev->kind == TF_RUN_FAILED;
    /* No rank: an attempt that never ran (a no-op, a doomed task). */
    if (attempt && ev->rank >= 0 && ev->start_ns) {
        tf_trace_span sp = {
            .name = name,
            .rank = ev->rank,
            .slot = ev->slot,
            .cores = cores,
            .attempt = ev->attempt,
            .status = ev->status,
            .result = ev->kind == TF_RUN_DONE    ? TF_TRACE_DONE
                      : ev->halted               ? TF_TRACE_INTERRUPTED
                      : ev->kind == TF_RUN_RETRY ? TF_TRACE_RETRY
                                                 : TF_TRACE_FAILED,
            .start_ns = ev->start_ns,
            .end_ns = ev->end_ns,
        };
        rc = tf_trace_span_add(tr->w, &sp);
        if (!rc && ev->kind != TF_RUN_DONE) {
            char detail[600];
            snprintf(detail, sizeof detail, "%s attempt %d status %d", name,
                     ev->attempt, ev->status);
            rc = tf_trace_instant(tr->w, ev->rank,
                                  ev->halted                 ? "interrupted"
                                  : ev->kind == TF_RUN_RETRY ? "retry"
                                                             : "failed",
                                  ev->end_ns, false, detail);
        }
    }
    failed(tr, rc);
}

/*
 * A steal, as rank 0 learns of it from the victim's MOVED records: on the
 * thief's row, naming the victim, so that a trace shows who stole from
 * whom (docs/trace.md; tests/cluster checks the victims' hosts).
 */
void tf_tracing_moved(tf_tracing *tr, int victim, int thief, uint32_t n)
{
    char detail[80];
    snprintf(detail, sizeof detail, "%" PRIu32 " task%s moved from rank %d",
             n, n == 1 ? "" : "s", victim);
    failed(tr, tf_trace_instant(tr->w, thief, "steal", wall_ns(), false,
                                detail));
}

void tf_tracing_note(tf_tracing *tr, const char *name, const char *detail)
{
    failed(tr, tf_trace_instant(tr->w, 0, name, wall_ns(), true, detail));
}

void tf_tracing_end(tf_tracing *tr) { failed(tr, tf_trace_sync(tr->w)); }

int tf_tracing_error(const tf_tracing *tr) { return tr->err; }

void tf_tracing_discard(tf_tracing **ptr)
{
    tf_tracing *tr = *ptr;
    if (!tr)
        return;
    tf_trace_discard(tr->w);
    free(tr->path);
    free(tr);
    *ptr = NULL;
}

int tf_tracing_close(tf_tracing **ptr)
{
    tf_tracing *tr = *ptr;
    if (!tr)
        return 0;
    failed(tr, tf_trace_close(tr->w));
    int rc = tr->err;
    free(tr->path);
    free(tr);
    *ptr = NULL;
    return rc;
}
