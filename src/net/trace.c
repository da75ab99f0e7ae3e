/* The runtime's trace (tf_config.trace_path): rank 0's task events as Chrome trace events. */
#include "runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Remember the first failure and say it once. */
static void trace_failed(tf_runtime *rt, int rc)
{
    if (rt->trace_err)
        return;
    rt->trace_err = rc;
    tf_logf(&rt->log, TF_LOG_ERROR, "cannot write the trace %s: %s",
            rt->cfg.trace_path,
            rc == TF_EIO ? strerror(errno) : tf_strerror(rc));
}

/* "ID FUNCTION", unless the driver names tasks itself (the CLI: its @id). */
static void task_name(tf_runtime *rt, const tf_run_event *ev, char *buf,
                      size_t len)
{
    if (rt->trace_name) {
        rt->trace_name(rt->trace_name_user, ev->id, buf, len);
        return;
    }
    uint32_t t = tf_rt_index_of(rt, ev->id);
    const char *fn = t != TF_NONE && rt->rec[t].fn < rt->nfns
                         ? rt->fns[rt->rec[t].fn].name
                         : "?";
    snprintf(buf, len, "%" PRIu64 " %s", (uint64_t)ev->id, fn);
}

/*
 * Stands in for the app's event callback during a traced run: every ended
 * attempt becomes a span, retries and failures also an instant, then the
 * app's callback (if any) hears of the event as usual.
 */
static void on_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    (void)user;
    int rc = 0;
    bool attempt = ev->kind == TF_RUN_DONE || ev->kind == TF_RUN_RETRY ||
                   ev->kind == TF_RUN_FAILED;
    /* No rank: an attempt that never ran (a no-op, a doomed task). */
    if (attempt && ev->rank >= 0 && ev->start_ns) {
        char name[512];
        task_name(rt, ev, name, sizeof name);
        tf_trace_span sp = {
            .name = name,
            .rank = ev->rank,
            .slot = ev->slot,
            .cores = 1,
            .attempt = ev->attempt,
            .status = ev->status,
            .result = ev->kind == TF_RUN_DONE    ? TF_TRACE_DONE
                      : ev->kind == TF_RUN_RETRY ? TF_TRACE_RETRY
                                                 : TF_TRACE_FAILED,
            .start_ns = ev->start_ns,
            .end_ns = ev->end_ns,
        };
        uint32_t t = tf_rt_index_of(rt, ev->id);
        if (t != TF_NONE)
            sp.cores = rt->sched.dag.cores[t];
        rc = tf_trace_span_add(rt->trace, &sp);
        if (!rc && ev->kind != TF_RUN_DONE) {
            char detail[600];
            snprintf(detail, sizeof detail, "%s attempt %d status %d", name,
                     ev->attempt, ev->status);
            rc = tf_trace_instant(rt->trace, ev->rank,
                                  ev->kind == TF_RUN_RETRY ? "retry" : "failed",
                                  ev->end_ns, false, detail);
        }
    }
    /*
     * Moves of queued tasks between workers (steals) reach rank 0 as MOVED
     * records; the count tells that some arrived since the last event.
     */
    if (!rc && rt->moved != rt->trace_moved) {
        char detail[64];
        uint64_t n = rt->moved - rt->trace_moved;
        snprintf(detail, sizeof detail, "%" PRIu64 " task%s moved", n,
                 n == 1 ? "" : "s");
        rt->trace_moved = rt->moved;
        rc = tf_trace_instant(rt->trace, 0, "steal", wall_ns(), false, detail);
    }
    if (rc)
        trace_failed(rt, rc);
    if (rt->trace_fn)
        rt->trace_fn(rt->trace_fn_user, rt, ev);
}

int tf_rt_trace_open(tf_runtime *rt)
{
    if (rt->rank != 0 || !rt->cfg.trace_path || rt->trace)
        return 0;
    int rc = tf_trace_open(rt->cfg.trace_path, wall_ns(), &rt->trace);
    if (rc)
        tf_logf(&rt->log, TF_LOG_ERROR, "cannot create the trace %s: %s",
                rt->cfg.trace_path,
                rc == TF_EIO ? strerror(errno) : tf_strerror(rc));
    return rc;
}

void tf_rt_trace_begin(tf_runtime *rt)
{
    if (!rt->trace)
        return;
    int rc = 0;
    for (int r = 0; r < rt->size && !rc; r++) {
        /* Rank 0 of several runs no tasks: a process without slots. */
        unsigned slots = rt->size == 1 ? (unsigned)rt->cfg.slots
                         : r == 0      ? 0
                                       : rt->wslots[r];
        rc =
            tf_trace_rank(rt->trace, r, rt->hosts ? rt->hosts[r] : NULL, slots);
    }
    if (rc)
        trace_failed(rt, rc);
    rt->trace_moved = rt->moved;
    rt->trace_fn = rt->cfg.on_event;
    rt->trace_fn_user = rt->cfg.event_user;
    rt->cfg.on_event = on_event;
    rt->cfg.event_user = NULL;
}

void tf_rt_trace_end(tf_runtime *rt)
{
    if (!rt->trace)
        return;
    rt->cfg.on_event = rt->trace_fn;
    rt->cfg.event_user = rt->trace_fn_user;
    int rc = tf_trace_sync(rt->trace);
    if (rc)
        trace_failed(rt, rc);
}

void tf_rt_trace_note(tf_runtime *rt, const char *name, const char *detail)
{
    if (!rt->trace)
        return;
    int rc = tf_trace_instant(rt->trace, 0, name, wall_ns(), true, detail);
    if (rc)
        trace_failed(rt, rc);
}

int tf_rt_trace_close(tf_runtime *rt)
{
    int rc = tf_trace_close(rt->trace);
    rt->trace = NULL;
    if (rc)
        trace_failed(rt, rc);
    return rt->trace_err;
}
