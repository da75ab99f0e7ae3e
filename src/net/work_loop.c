/* A worker rank's loop: decode tasks, run them, report, steal and give, as the worker machine (core/worker.h) decides. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/wire.h"
#include "fetch.h"
#include "runtime.h"


/*
 * A received TASKS message stays alive while any of its tasks runs: jobs
 * point into it for their input and their dependencies' outputs.
 */
typedef struct tf_msgbuf {
    size_t refs;
    tf_dep *deps;
    uint8_t *data;
} tf_msgbuf;

static void msgbuf_release(tf_msgbuf *mb)
{
    if (mb && --mb->refs == 0) {
        free(mb->deps);
        free(mb->data);
        free(mb);
    }
}

/*
 * Per-run state of a worker rank: the policy machine (core/worker.h), the
 * sends in flight, the message being read and the report being written.
 */
typedef struct tf_wrun {
    tf_runtime *rt;
    tf_worker wk;
    tf_sendq out;
    tf_buf in, rep;
    tf_job *jobs; /* a message's tasks being decoded */
    size_t jcap;
    tf_fetchvec fetch; /* parts to ask peers for, from the last decode */
    int32_t status; /* the run's, from STOP */
    bool stopping, halted;
} tf_wrun;

/* One dependency entry as the pool takes it. */
static void wr_input(tf_dep *dp, const tf_wire_input *in)
{
    *dp = (tf_dep){.anchor = TF_POOL_NO_ANCHOR, .from = -1};
    if (in->kind == TF_WIRE_ANCHOR) {
        dp->kind = TF_DEP_LOCAL;
        dp->idx = in->anchor.index;
        dp->part = in->anchor.part;
    } else if (in->kind == TF_WIRE_REMOTE) {
        dp->kind = TF_DEP_REMOTE;
        dp->idx = in->remote.index;
        dp->part = in->remote.part;
        dp->from = (int32_t)in->remote.rank;
    } else {
        dp->kind = TF_DEP_INLINE;
        dp->buf = in->buf;
        dp->len = in->len;
    }
}

/*
 * Decode a TASKS or STOLEN message (taking over in->p) into pool jobs; the
 * header's flags go to *flags, the number of tasks to *count. Outputs
 * rank 0 frees here go first. Inputs held elsewhere are asked for at once.
 * Stolen tasks stay: a task moves between workers at most once. Two dry
 * workers could otherwise hand the same tasks back and forth, each giving
 * away what it had just received before starting it: over TCP, where a
 * large STOLEN message lands a pass later, the word count's old data path
 * (-R) did that 12,000 times a worker and never finished, in 2 of 6 runs
 * on one host (bench/cluster.sh found it).
 */
static int wr_decode(tf_wrun *w, bool stolen, uint8_t *flags, size_t *count)
{
    tf_runtime *rt = w->rt;
    tf_buf *in = &w->in;
    /* Validated and counted whole first, so a bad message queues nothing. */
    tf_wire_batch hd;
    size_t njobs, ndeps;
    *count = 0;
    if (!tf_wire_scan_batch(in->p, in->n, &hd, &njobs, &ndeps)) {
        tf_logf(&rt->log, TF_LOG_ERROR, "malformed task message");
        return TF_EPROTO;
    }
    *flags = hd.flags;
    *count = njobs;
    tf_rd r = tf_rd_make(in->p, in->n);
    tf_wire_get_batch(&r, &hd);
    /* The frees trail the tasks; they may go first, as none is read here. */
    if (hd.nfree)
        tf_pool_free_outputs(&rt->pool,
                             in->p + in->n - (size_t)hd.nfree * 4, hd.nfree);
    if (!njobs)
        return 0;
    if (tf_grow((void **)&w->jobs, &w->jcap, njobs, sizeof *w->jobs, 64))
        return TF_ENOMEM;
    tf_msgbuf *mb = malloc(sizeof *mb);
    tf_dep *deps = ndeps ? malloc(ndeps * sizeof *deps) : NULL;
    if (!mb || (ndeps && !deps)) {
        free(mb);
        free(deps);
        return TF_ENOMEM;
    }
    *mb = (tf_msgbuf){njobs, deps, in->p};
    *in = (tf_buf){NULL, 0, 0};
    for (size_t k = 0; k < njobs; k++) {
        tf_wire_task t;
        tf_wire_get_task(&r, &t);
        /* rank 0 checked the width; be safe */
        uint16_t cores = t.cores > rt->pool.wq.slots ? (uint16_t)rt->pool.wq.slots
                                                    : t.cores;
        tf_job j = {.idx = t.index, .fn = t.fn, .gid = t.id, .cores = cores,
                    .attempt = t.attempt,
                    .flags = (uint8_t)(t.flags | (stolen ? TF_WIRE_PINNED : 0)),
                    .in_len = t.input_len, .ndeps = t.ndeps, .deps = deps,
                    .owner = mb};
        j.in = tf_wire_take_aligned(&r, t.input_len);
        for (uint32_t i = 0; i < t.ndeps; i++) {
            tf_wire_input wi;
            tf_wire_get_input(&r, &wi);
            wr_input(deps++, &wi);
        }
        w->jobs[k] = j;
    }
    /* An error is fatal: the run ends with it. */
    int rc = tf_pool_push(&rt->pool, w->jobs, njobs, rt->link.rank, &w->fetch);
    return rc ? rc : tf_fetch_ask(rt, &w->out, &w->fetch);
}

/* Send one part to `to` as a DATA message: its bytes, or `status`. */
static int send_part(tf_wrun *w, int to, uint32_t idx, uint32_t part,
                     const tf_part_ent *e, uint32_t status)
{
    tf_runtime *rt = w->rt;
    uint32_t len = e ? e->len : 0;
    tf_buf b = tf_sendq_buf(&w->out);
    int rc = tf_buf_reserve(&b, TF_WIRE_DATA_SIZE + (size_t)len);
    if (!rc) {
        tf_wire_put_data(&b, &(tf_wire_data){idx, part, len, status});
        tf_buf_put(&b, e ? tf_part_data(e) : NULL, len);
        rc = tf_link_send(&rt->link, &w->out, &b, to, TF_TAG_DATA);
    }
    if (rc)
        tf_buf_free(&b);
    return rc;
}

/*
 * A peer asks for parts (FETCH records): each goes back as one DATA
 * message, its bytes after the record, aligned as the store keeps them;
 * a part this rank does not have goes back as missing.
 */
static int wr_lend(tf_wrun *w, int to)
{
    tf_runtime *rt = w->rt;
    tf_rd r = tf_rd_make(w->in.p, w->in.n);
    tf_wire_fetch f;
    int rc = 0;
    while (!rc && tf_rd_more(&r) && tf_wire_get_fetch(&r, &f)) {
        tf_part_ent *e;
        tf_pool_lend(&rt->pool, f.index, f.part, &e);
        rc = send_part(w, to, f.index, f.part, e,
                       e ? TF_DATA_OK : TF_DATA_MISSING);
        tf_pool_unref(&rt->pool, e);
    }
    if (!rc && !r.ok) {
        tf_logf(&rt->log, TF_LOG_ERROR, "malformed fetch from rank %d", to);
        rc = TF_EPROTO;
    }
    return rc;
}

/*
 * A DONE's parts: each inline (rank 0 keeps it, or it is small enough to
 * travel inside dependents' task messages), held here for readers (its
 * task has dependents: the store kept it), or both.
 */
static size_t done_size(const tf_event *e)
{
    size_t n = TF_WIRE_DONE_SIZE;
    for (uint16_t i = 0; i < e->nparts; i++)
        n += TF_WIRE_PART_SIZE + tf_event_part(e, i)->len;
    return n;
}

static void put_done(const tf_runtime *rt, tf_buf *rep, const tf_event *e)
{
    uint16_t nparts = e->nparts; /* a failed attempt's too, for rank 0 */
    tf_wire_done d = {TF_REC_DONE, e->idx,      e->attempt, e->status,
                      e->start_ns, e->end_ns,   e->slot,    nparts};
    tf_wire_put_done(rep, &d);
    for (uint16_t i = 0; i < nparts; i++) {
        const tf_evpart *pt = tf_event_part(e, i);
        bool held = pt->ent != NULL;
        bool send = !held || (e->flags & TF_WIRE_SEND) ||
                    pt->len <= rt->inline_max;
        uint8_t where = !held ? TF_PART_INLINE
                        : send ? TF_PART_BOTH
                               : TF_PART_HELD;
        tf_wire_put_part(rep, &(tf_wire_part){pt->len, where});
        if (send)
            tf_buf_put(rep, tf_event_bytes(e, i), pt->len);
    }
}

/* Turn the pool's events into report records and tell the machine. */
static int wr_collect(tf_wrun *w, bool *progress)
{
    tf_runtime *rt = w->rt;
    const tf_evvec *v = tf_pool_take_events(&rt->pool);
    tf_buf *rep = &w->rep;
    size_t ndone = 0, nother = 0;
    int rc = 0;
    for (size_t i = 0; i < v->n; i++) {
        tf_event *e = &v->v[i];
        size_t need = e->kind == TF_EV_DONE ? done_size(e)
                      : e->kind == TF_EV_UNRUN
                          ? TF_WIRE_UNRUN_SIZE
                          : TF_WIRE_SUBMIT_SIZE + (size_t)e->ndeps * 8 +
                                e->data_len;
        if (!rc && e->kind != TF_EV_DROP)
            rc = tf_buf_reserve(rep, need);
        if (!rc && e->kind == TF_EV_UNRUN) {
            tf_wire_put_unrun(rep, &(tf_wire_unrun){TF_REC_UNRUN, e->idx});
            ndone++;
        } else if (!rc && e->kind == TF_EV_DONE) {
            put_done(rt, rep, e);
            ndone++;
        } else if (!rc && e->kind == TF_EV_SUBMIT) {
            tf_wire_submit sb = {TF_REC_SUBMIT, e->gid,     e->parent,
                                 e->fn,         e->prio,    e->cores,
                                 e->retries,    e->ndeps,   e->data_len};
            tf_wire_put_submit(rep, &sb);
            tf_buf_put(rep, e->deps, (size_t)e->ndeps * 8);
            tf_buf_put(rep, e->data, e->data_len);
            nother++;
        }
        /* DROP: rank 0 unparks the task itself; nothing to say. */
        if (e->kind != TF_EV_SUBMIT)
            msgbuf_release(e->owner);
        tf_pool_done_parts(&rt->pool, e);
        free(e->data);
        free(e->deps);
    }
    if (ndone || nother)
        *progress = true;
    tf_worker_recorded(&w->wk, ndone, nother, tf_idle_clock_ns());
    return rc;
}

/*
 * A thief asks (req: its STEAL): give what the machine allows from the
 * tail of the queue, and put a MOVED record for each in the report, which
 * the machine sends at once. After a halt or STOP the answer is empty.
 */
static int wr_give(tf_wrun *w, const tf_buf *req, int thief, bool *progress)
{
    tf_runtime *rt = w->rt;
    tf_rd r = tf_rd_make(req->p, req->n);
    tf_wire_steal st;
    if (!tf_wire_get_steal(&r, &st))
        return TF_EPROTO;
    tf_job small[64], *jobs = small;
    size_t want = tf_worker_give_count(&w->wk, tf_pool_stealable(&rt->pool));
    if (want > 64 && !(jobs = malloc(want * sizeof *jobs)))
        jobs = small, want = 64;
    size_t n = want ? tf_pool_steal(&rt->pool, want, st.max_cores, jobs) : 0;
    tf_buf b = tf_sendq_buf(&w->out);
    size_t need = TF_WIRE_BATCH_SIZE;
    for (size_t i = 0; i < n; i++) {
        need += TF_WIRE_TASK_SIZE + tf_wire_aligned_size(jobs[i].in_len);
        for (uint32_t k = 0; k < jobs[i].ndeps; k++)
            need += tf_wire_dep_size(jobs[i].deps[k].len);
    }
    int rc = tf_buf_reserve(&b, need);
    if (!rc && n)
        rc = tf_buf_reserve(&w->rep, TF_WIRE_MOVED_SIZE * n);
    if (rc) {
        /* Out of the queue: run them here after all, with what they hold. */
        for (size_t i = 0; i < n; i++)
            for (uint32_t k = 0; k < jobs[i].ndeps; k++)
                jobs[i].deps[k].kind = TF_DEP_INLINE;
        rc = tf_pool_push(&rt->pool, jobs, n, rt->link.rank, &w->fetch);
        n = 0;
        if (!rc)
            rc = tf_buf_reserve(&b, TF_WIRE_BATCH_SIZE);
    }
    if (!rc) {
        /* A thief gets its tasks' inputs with them, inline. */
        tf_wire_put_batch(&b, &(tf_wire_batch){0, (uint32_t)n, 0});
        for (size_t i = 0; i < n; i++) {
            const tf_job *j = &jobs[i];
            tf_wire_task t = {j->idx,     j->fn,    j->gid,     j->cores,
                              j->attempt, j->flags, j->in_len, j->ndeps};
            tf_wire_put_task(&b, &t);
            tf_wire_put_aligned(&b, j->in, j->in_len);
            for (uint32_t k = 0; k < j->ndeps; k++)
                tf_wire_put_output(&b, j->deps[k].buf, j->deps[k].len);
            tf_wire_moved mv = {TF_REC_MOVED, j->idx, j->attempt,
                                (uint32_t)thief};
            tf_wire_put_moved(&w->rep, &mv);
            tf_pool_release_inputs(&rt->pool, j);
            msgbuf_release(j->owner);
        }
        tf_worker_gave(&w->wk, n, tf_idle_clock_ns());
        *progress |= n > 0;
        rc = tf_link_send(&rt->link, &w->out, &b, thief, TF_TAG_STOLEN);
    }
    if (rc)
        tf_buf_free(&b);
    if (jobs != small)
        free(jobs);
    return rc;
}

/* Send the report now; it may be empty. */
static int send_report(tf_runtime *rt, tf_sendq *out, tf_buf *rep)
{
    tf_buf b = *rep;
    *rep = tf_sendq_buf(out);
    int rc = tf_link_send(&rt->link, out, &b, 0, TF_TAG_REPORT);
    if (rc)
        tf_buf_free(&b);
    return rc;
}

/* Carry out the machine's decisions: report, ask a victim, give one up. */
static int wr_act(tf_wrun *w, bool *progress, uint64_t *wake)
{
    tf_runtime *rt = w->rt;
    tf_worker_view v;
    tf_pool_view(&rt->pool, &v);
    *wake = tf_worker_tick(&w->wk, &v, tf_idle_clock_ns());
    size_t n;
    const tf_worker_act *a = tf_worker_actions(&w->wk, &n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (a[i].kind == TF_WK_REPORT) {
            rc = send_report(rt, &w->out, &w->rep);
            tf_worker_reported(&w->wk);
            *progress = true;
        } else if (a[i].kind == TF_WK_SHUN) {
            tf_logf(&rt->log, TF_LOG_WARN,
                    "rank %u did not answer a steal request: not asked again",
                    a[i].rank);
        } else {
            /* (-vv: the order of victims shows in the log; tests/cluster) */
            tf_logf(&rt->log, TF_LOG_DEBUG, "steal: asking rank %u (victim %zu "
                    "of this round)", a[i].rank, w->wk.next + 1);
            tf_buf b = tf_sendq_buf(&w->out);
            rc = tf_buf_reserve(&b, TF_WIRE_STEAL_SIZE);
            if (!rc) {
                /* The widest task it can run. */
                tf_wire_put_steal(&b, &(tf_wire_steal){rt->pool.wq.slots});
                rc = tf_link_send(&rt->link, &w->out, &b, (int)a[i].rank, TF_TAG_STEAL);
            }
            if (rc)
                tf_buf_free(&b);
        }
    }
    return rc;
}

/*
 * A peer gave up on rank 0 (or calls the others to succeed it): so does
 * this rank, for a take-over (tf_takeover). The message is dropped; a
 * JOIN is sent again until answered. Returns TF_ELOST.
 */
static int peer_gave_up(tf_wrun *w, int from)
{
    tf_runtime *rt = w->rt;
    tf_logf(&rt->log, TF_LOG_WARN,
            "rank %d gave up on rank 0: this rank leaves the run too", from);
    tf_link_write_off(&rt->link, &w->out, 0);
    return TF_ELOST;
}

/* One message from rank 0 or a peer. */
static int wr_message(tf_wrun *w, int from, int tag, bool *progress)
{
    tf_runtime *rt = w->rt;
    uint8_t flags = 0;
    size_t n = 0;
    int rc = 0;
    if (from == 0 && tag == TF_TAG_TASKS) {
        rc = wr_decode(w, false, &flags, &n);
        tf_worker_heard(&w->wk, (flags & TF_WIRE_DRY) != 0);
        *progress = true;
    } else if (tag == TF_TAG_STOLEN) {
        /* Steal traffic that moved nothing is not progress. */
        rc = wr_decode(w, true, &flags, &n);
        tf_worker_answered(&w->wk, n, tf_idle_clock_ns());
        *progress |= n > 0;
        if (w->halted) /* moved here after a halt: give them back */
            tf_pool_drop_queued(&rt->pool);
    } else if (tag == TF_TAG_STEAL) {
        rc = wr_give(w, &w->in, from, progress);
        /* Moves are reported at once: the thief's DONE races the MOVED. */
        uint64_t wake;
        if (!rc && w->wk.urgent)
            rc = wr_act(w, progress, &wake);
    } else if (from == 0 && tag == TF_TAG_STOP) {
        tf_rd r = tf_rd_make(w->in.p, w->in.n);
        tf_wire_stop st = {0, 0};
        tf_wire_get_stop(&r, &st); /* short: status 0, no losses */
        w->status = st.status;
        tf_live_took_losses(&rt->link.live, st.lost);
        w->stopping = true;
        tf_worker_stop(&w->wk);
        *progress = true;
    } else if (tag == TF_TAG_FETCH) {
        rc = wr_lend(w, from);
        *progress = true;
    } else if (tag == TF_TAG_DATA) {
        rc = tf_fetch_data(rt, &w->in, from);
        *progress = true;
    } else if (from == 0 && tag == TF_TAG_LOST) {
        tf_rd r = tf_rd_make(w->in.p, w->in.n);
        tf_wire_lost lo;
        if (tf_wire_get_lost(&r, &lo) && lo.rank < (uint32_t)rt->link.size) {
            /* Sends to it (parts it asked for) would never complete, nor
               receives from it (parts it was sending). */
            tf_sendq_abandon(&w->out, (int)lo.rank);
            tf_link_forget(&rt->link, (int)lo.rank);
            tf_pool_holder_lost(&rt->pool, (int)lo.rank);
            /* Nor will it answer a steal request: ask another now. */
            rc = tf_worker_lost(&w->wk, lo.rank, tf_idle_clock_ns());
        }
        *progress = true;
    } else if (from == 0 && tag == TF_TAG_HALT) {
        /* Rank 0 takes silence now as death (tf_live_call): answer first. */
        rc = tf_link_send_empty(&rt->link, &w->out, 0, TF_TAG_HEARTBEAT);
        w->halted = true;
        tf_worker_halt(&w->wk);
        /* Queue first: on_halt may block while it ends children. */
        tf_pool_drop_queued(&rt->pool);
        /* A soon halt lets running tasks finish; a later NOW ends them. */
        if (!(w->in.n && w->in.p[0] == TF_WIRE_HALT_SOON) && rt->cfg.on_halt)
            rt->cfg.on_halt(rt->cfg.halt_user);
        *progress = true;
    } else if (tag == TF_TAG_TAKEOVER && from != 0) {
        rc = peer_gave_up(w, from);
    } else {
        tf_logf(&rt->log, TF_LOG_WARN, "unexpected tag %d from rank %d", tag,
                from);
    }
    return rc;
}

/*
 * The main thread runs tasks too (main_runs_tasks): no more than what is
 * left of the quarter that makes a report, so rank 0 hears in time.
 */
static void wr_run_slice(tf_wrun *w, bool *progress)
{
    tf_runtime *rt = w->rt;
    if (!rt->pool.driver_runs)
        return;
    tf_worker_view v;
    tf_pool_view(&rt->pool, &v);
    size_t k = tf_worker_budget(&w->wk, &v);
    if (k && tf_pool_run(&rt->pool, k, 0))
        *progress = true;
}

/* Sleep after a pass without progress, no longer than the machine allows. */
static void wr_idle(tf_wrun *w, tf_idle *idle, uint64_t wake)
{
    long ns = tf_idle_next(idle, tf_link_nap_max(&w->rt->link, &w->out));
    uint64_t now = tf_idle_clock_ns();
    if (ns && wake != UINT64_MAX)
        ns = wake <= now ? 1000 : wake - now < (uint64_t)ns ? (long)(wake - now)
                                                            : ns;
    tf_link_nap(&w->rt->link, ns);
}

/*
 * Wait, with sends moving, until rank 0 sends `tag` (its payload's first
 * u32 to *payload), answering steal requests with nothing (a thief waits
 * for its answer) and dropping anything else: the run is ending, or has
 * failed on this rank.
 */
static int wr_wait(tf_wrun *w, int tag, uint32_t *payload)
{
    tf_runtime *rt = w->rt;
    tf_idle idle;
    tf_idle_reset(&idle);
    for (;;) {
        int from, t, got = tf_link_recv(&rt->link, MPI_ANY_SOURCE, &w->in, &from, &t);
        if (got < 0)
            return got;
        if (got && from == 0 && t == tag) {
            tf_rd r = tf_rd_make(w->in.p, w->in.n);
            uint32_t v = tf_rd_u32(&r);
            if (payload && r.ok)
                *payload = v;
            break;
        }
        bool moved = false;
        if (got && t == TF_TAG_STEAL) {
            int rc = wr_give(w, &w->in, from, &moved);
            if (rc)
                return rc;
        } else if (got && t == TF_TAG_TAKEOVER && from != 0) {
            /* Rank 0 died after it said the run was over. */
            return peer_gave_up(w, from);
        } else if (got) {
            tf_logf(&rt->log, TF_LOG_DEBUG,
                    "message with tag %d from rank %d after the end", t, from);
        }
        int sent = tf_sendq_progress(&w->out);
        if (sent < 0)
            return sent;
        int p = tf_link_pulse(&rt->link, &w->out);
        if (p < 0)
            return p;
        if (got || sent)
            tf_idle_reset(&idle);
        else
            tf_link_idle(&rt->link, &w->out, &idle);
    }
    return tf_link_drain(&rt->link, &w->out, &w->in, 0, 0, 0, TF_LOG_DEBUG);
}

/*
 * This rank cannot go on (no memory, a malformed message). Tell rank 0,
 * which ends the run for everyone, and wait for its STOP so that no rank is
 * left waiting: rank 0 would otherwise wait forever for this rank's tasks.
 * Returns 0 once STOP came (the caller then acknowledges it), or an MPI
 * failure, after which nothing more can be said.
 */
static int wr_fail(tf_wrun *w, int err)
{
    tf_runtime *rt = w->rt;
    tf_logf(&rt->log, TF_LOG_ERROR, "worker failed: %s", tf_strerror(err));
    tf_buf b = tf_sendq_buf(&w->out);
    int rc = tf_buf_reserve(&b, TF_WIRE_ERROR_SIZE);
    if (!rc) {
        tf_wire_put_error(&b, &(tf_wire_error){err});
        rc = tf_link_send(&rt->link, &w->out, &b, 0, TF_TAG_ERROR);
    }
    if (rc) {
        tf_buf_free(&b);
        return rc;
    }
    return wr_wait(w, TF_TAG_STOP, NULL);
}

/* The machine for this rank: its host's other workers nearest first. */
static int wr_init(tf_wrun *w, tf_runtime *rt)
{
    memset(w, 0, sizeof *w);
    w->rt = rt;
    uint32_t n = (uint32_t)rt->link.size, self = (uint32_t)rt->link.rank;
    uint32_t *host = malloc(n * sizeof *host);
    if (!host)
        return TF_ENOMEM;
    size_t nhost = tf_steal_same_host(rt->world.loc, 1, n, self, host);
    tf_worker_cfg c = {.slots = rt->pool.wq.slots,
                       .steal = rt->steal,
                       .answer_timeout_ns = rt->link.live.hb_ns};
    /* One stream per rank and run, replayable from the logged seed. */
    int rc = tf_worker_init(&w->wk, &c, rt->world.loc, 1, n, self, host, nhost,
                            rt->cfg.seed ^ ((uint64_t)self << 32));
    free(host);
    char me[64] = "";
    gethostname(me, sizeof me - 1);
    if (!rc)
        tf_logf(&rt->log, TF_LOG_INFO,
                "on %s: %zu other worker%s on this host%s, doorbells with %d "
                "rank%s (others wake it by timer)",
                me, nhost, nhost == 1 ? "" : "s",
                rt->steal ? " (asked first for work)" : "",
                rt->link.bells.peers, rt->link.bells.peers == 1 ? "" : "s");
    if (!rc && rt->steal)
        tf_logf(&rt->log, TF_LOG_DEBUG, "steal seed %llu",
                (unsigned long long)rt->cfg.seed);
    return rc;
}

/* The end of a run: an error goes to rank 0 first; then STOP_ACK, RELEASE. */
static int wr_finish(tf_wrun *w, int err)
{
    tf_runtime *rt = w->rt;
    int rc = 0;
    if (err == TF_ELOST) {
        /*
         * Rank 0 is gone: nobody to report to; end what runs here, or
         * leave it for a successor (on_lost).
         */
        tf_rt_end_tasks(rt, true);
    } else if (err) {
        rc = wr_fail(w, err);
    }
    /* Everything sent before the ACK reaches rank 0 before it. */
    if (!rc && err != TF_ELOST)
        rc = tf_link_send_empty(&rt->link, &w->out, 0, TF_TAG_STOP_ACK);
    uint32_t lost_at_release = 0;
    if (!rc && err != TF_ELOST)
        rc = wr_wait(w, TF_TAG_RELEASE, &lost_at_release);
    else
        tf_link_drain(&rt->link, &w->out, &w->in, 0, 0, 0, TF_LOG_DEBUG);
    if (!rc)
        tf_live_took_losses(&rt->link.live, lost_at_release);
    return rc;
}

int tf_workloop_run(tf_runtime *rt)
{
    tf_wrun w;
    int rc = wr_init(&w, rt);
    tf_idle idle;
    tf_idle_reset(&idle);
    /*
     * Until STOP, and then until the last steal request is answered: its
     * answer must not arrive in the next run.
     */
    while (!rc && (!w.stopping || tf_worker_asking(&w.wk))) {
        bool progress = false;
        int from, tag, got;
        while (!rc && (got = tf_link_recv(&rt->link, MPI_ANY_SOURCE, &w.in,
                                          &from, &tag)) != 0)
            rc = got < 0 ? got : wr_message(&w, from, tag, &progress);
        wr_run_slice(&w, &progress);
        if (!rc)
            rc = wr_collect(&w, &progress);
        uint64_t wake = UINT64_MAX;
        if (!rc)
            rc = wr_act(&w, &progress, &wake);
        int sent = tf_sendq_progress(&w.out);
        if (sent < 0 && !rc)
            rc = sent;
        if (!rc)
            rc = tf_link_pulse(&rt->link, &w.out);
        if (progress)
            tf_idle_reset(&idle);
        else if (!w.stopping || tf_worker_asking(&w.wk))
            wr_idle(&w, &idle, wake);
    }
    rt->steals += w.wk.steals;
    rt->stolen_tasks += w.wk.stolen;
    int err = rc;
    rc = wr_finish(&w, err);
    tf_worker_free(&w.wk);
    tf_buf_free(&w.in);
    tf_buf_free(&w.rep);
    free(w.jobs);
    free(w.fetch.v);
    /* Copies of parts fetched for tasks that then did not run here. */
    tf_pool_sweep(&rt->pool);
    tf_sendq_free(&w.out);
    return rc ? rc : err ? err : w.status;
}
