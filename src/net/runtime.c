/* Public API entry points: configuration, registry, submission and batches, runs, queries, statistics, finalize. */
#include "runtime.h"
#include "launcher.h"

#include "ckpt/ckpt.h"
#include "core/wire.h"

#include <stdlib.h>
#include <string.h>

const char *tf_version(void) { return TF_VERSION_STRING; }

void tf_config_init(tf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->slots = 1;
    cfg->prefetch = TF_DEFAULT_PREFETCH;
    cfg->log_level = TF_LOG_WARN;
    cfg->main_runs_tasks = 1;
    cfg->rank0_runs_tasks = 1;
    cfg->tick_ms = 1000;
    cfg->checkpoint_every_ms = 60000;
    cfg->inline_max = -1;
}

void tf_task_desc_init(tf_task_desc *desc, tf_fn_id fn)
{
    memset(desc, 0, sizeof *desc);
    desc->fn = fn;
    desc->retries = -1;
    desc->cores = 1;
    desc->rank = -1;
}

uint64_t tf_key(const void *a, size_t alen, const void *b, size_t blen)
{
    return tf_ck_key(a, alen, b, blen);
}

int tf_rank(const tf_runtime *rt) { return rt ? rt->link.rank : -1; }
int tf_size(const tf_runtime *rt) { return rt ? rt->link.size : 0; }

const char *tf_rank_host(const tf_runtime *rt, int r)
{
    if (!rt || r < 0 || r >= rt->link.size)
        return "";
    return rt->world.host[r];
}

unsigned tf_rank_slots(const tf_runtime *rt, int r)
{
    if (!rt || r < 0 || r >= rt->link.size)
        return 0;
    return rt->world.slots[r];
}

int tf_register(tf_runtime *rt, const char *name, tf_task_fn fn, void *user,
                tf_fn_id *out)
{
    if (!rt || !out)
        return TF_EINVAL;
    if (rt->in_run)
        return TF_ESTATE;
    return tf_registry_add(&rt->reg, name, fn, user, out);
}

int tf_lookup(const tf_runtime *rt, const char *name, tf_fn_id *out)
{
    if (!rt || !name || !out)
        return TF_EINVAL;
    return tf_registry_find(&rt->reg, name, out);
}

int tf_rt_add(tf_runtime *rt, const tf_rt_new *n, uint32_t *t)
{
    tf_ckmatch m = {n->key, TF_NONE, 0, NULL};
    int rc = rt->ck ? tf_ckstate_match(rt->ck, &rt->tasks, &rt->reg,
                                       n->parent, n->fn, n->key, n->deps,
                                       n->ndeps, n->in, n->in_len, &m)
                    : 0;
    /* Done in the state: it needs no input, so no dependency either. */
    unsigned flags = m.flags ? (n->flags & ~TF_TASKS_DOOMED) | m.flags
                             : n->flags;
    /*
     * To run, it needs its dependencies' outputs: one that is gone (freed
     * once its readers had ended, or not saved and not made again) cannot
     * be had. Rank 0's submission fails; a task's child is skipped.
     */
    for (uint32_t i = 0; !rc && !m.flags && i < n->ndeps; i++) {
        const tf_trec *d = &rt->tasks.rec[n->deps[i]];
        if (!(d->oflags & TF_OUT_GONE))
            continue;
        tf_logf(&rt->log, TF_LOG_WARN,
                "task %llu's output was released once its readers had "
                "ended, so a task submitted now cannot read it (keep it "
                "with TF_TASK_KEEP)%s",
                (unsigned long long)d->gid,
                n->parent == TF_NONE ? "" : ": the child is skipped");
        if (n->parent == TF_NONE)
            rc = TF_EDEP;
        else
            flags |= TF_TASKS_DOOMED;
        break;
    }
    /* Walltime: room first, so that the task once added gets them. */
    tf_sched *s = &rt->tasks.sched;
    bool wt = n->est_ms || n->family;
    if (!rc && wt)
        rc = tf_wt_reserve(&s->wt, s->dag.n, n->family);
    if (!rc)
        rc = tf_tasks_add(&rt->tasks, n->gid, n->fn, n->prio, n->cores,
                          n->retries, n->deps, m.flags ? NULL : n->parts,
                          n->ndeps, n->in, n->in_len, flags, t);
    if (!rc && wt)
        tf_sched_set_est(s, *t, n->est_ms, n->family); /* reserved */
    if (!rc && n->pin >= 0 && rt->link.size > 1)
        rc = tf_sched_pin(s, *t, tf_rt_worker_of(rt, n->pin));
    if (rc) {
        free(m.out);
        return rc;
    }
    /* The task is in; a failure of the state is latched (the next tf_run). */
    if (rt->ck)
        tf_ckstate_added(rt->ck, &rt->tasks, &rt->reg, *t, n->parent, &m);
    /* Done in an earlier run: its family learns from that run's time. */
    const tf_trec *r = &rt->tasks.rec[*t];
    if (m.flags && n->family && r->end_ns > r->start_ns && r->start_ns)
        tf_sched_learn(s, *t, r->end_ns - r->start_ns);
    return 0;
}

/*
 * Tasks were sealed inside a run: what the run's start does for tasks
 * submitted before it (children of resumed ones re-created). A failure of
 * the state is latched, and the loop halts on it.
 */
static void added_in_run(tf_runtime *rt)
{
    if (rt->ck)
        tf_ckstate_settle(rt->ck, &rt->tasks, &rt->reg);
}

int tf_submit(tf_runtime *rt, const tf_task_desc *desc, tf_task_id *id)
{
    if (!rt || !desc || !id)
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    if (rt->in_run && !rt->in_tick)
        return TF_ESTATE;
    if (desc->fn >= rt->reg.n)
        return TF_ENOENT;
    if (desc->input_len > UINT32_MAX || desc->ndeps > UINT32_MAX ||
        desc->cores > UINT16_MAX || (desc->ndeps && !desc->deps) ||
        (desc->input_len && !desc->input) || desc->retries >= UINT8_MAX ||
        (desc->flags & ~(TF_TASK_NOOP | TF_TASK_KEEP)) || desc->rank < -1 ||
        desc->rank >= rt->link.size || desc->family > TF_WT_FAMILY_MAX)
        return TF_EINVAL;
    /* The rank must run tasks (rank 0 may not), and be wide enough. */
    if (desc->rank >= 0 &&
        (desc->cores ? desc->cores : 1) > rt->world.slots[desc->rank])
        return TF_EINVAL;
    for (size_t i = 0; desc->dep_parts && i < desc->ndeps; i++)
        if (desc->dep_parts[i] >= TF_PARTS_MAX)
            return TF_EINVAL;
    uint32_t small[16] = {0}, *deps = small;
    if (desc->ndeps > 16 && !(deps = malloc(desc->ndeps * sizeof *deps)))
        return TF_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < desc->ndeps && !rc; i++) {
        deps[i] = tf_tasks_index_of(&rt->tasks, desc->deps[i]);
        if (deps[i] == TF_NONE)
            rc = TF_EDEP;
    }
    tf_rt_new n = {.gid = 0,
                   .parent = TF_NONE,
                   .fn = desc->fn,
                   .prio = desc->prio,
                   .cores = (uint16_t)(desc->cores ? desc->cores : 1),
                   .retries = desc->retries,
                   .deps = deps,
                   .parts = desc->dep_parts,
                   .ndeps = (uint32_t)desc->ndeps,
                   .in = desc->input,
                   .in_len = (uint32_t)desc->input_len,
                   .key = desc->key,
                   .flags = (desc->flags & TF_TASK_NOOP ? TF_TASKS_NOOP : 0) |
                            (desc->flags & TF_TASK_KEEP ? TF_TASKS_KEEP : 0),
                   .pin = desc->rank,
                   .est_ms = desc->est_ms,
                   .family = desc->family};
    uint32_t t;
    if (!rc)
        rc = tf_rt_add(rt, &n, &t);
    if (deps != small)
        free(deps);
    if (!rc)
        *id = rt->tasks.rec[t].gid;
    if (!rc && rt->in_run && !rt->tasks.batching)
        added_in_run(rt);
    return rc;
}

/*
 * Rank 0 outside a run or in its TICK callback, and a batch open (or not,
 * as want_open says).
 */
static int check_batch(const tf_runtime *rt, bool want_open)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    if ((rt->in_run && !rt->in_tick) || rt->tasks.batching != want_open)
        return TF_ESTATE;
    return 0;
}

int tf_batch_begin(tf_runtime *rt)
{
    int rc = check_batch(rt, false);
    if (!rc)
        rt->tasks.batching = true;
    return rc;
}

/* The public kinds are the scheduler's edge kinds. */
_Static_assert((int)TF_DEP_OK == (int)TF_EDGE_OK &&
                   (int)TF_DEP_ANY == (int)TF_EDGE_ANY &&
                   (int)TF_DEP_NOTOK == (int)TF_EDGE_NOTOK,
               "TF_DEP_* and TF_EDGE_* differ");

int tf_depend(tf_runtime *rt, tf_task_id before, tf_task_id after)
{
    return tf_depend_kind(rt, before, after, TF_DEP_OK);
}

int tf_depend_kind(tf_runtime *rt, tf_task_id before, tf_task_id after,
                   int kind)
{
    int rc = check_batch(rt, true);
    if (rc)
        return rc;
    if (kind < TF_DEP_OK || kind > TF_DEP_NOTOK)
        return TF_EINVAL;
    uint32_t b = tf_tasks_index_of(&rt->tasks, before);
    uint32_t a = tf_tasks_index_of(&rt->tasks, after);
    if (b == TF_NONE || a == TF_NONE)
        return TF_ENOENT;
    if (a == b)
        return TF_EINVAL;
    if (tf_sched_state(&rt->tasks.sched, a) != TF_ST_HELD)
        return TF_ESTATE;
    return tf_sched_add_order_dep(&rt->tasks.sched, b, a, (uint8_t)kind);
}

int tf_batch_cancel(tf_runtime *rt)
{
    int rc = check_batch(rt, true);
    if (rc)
        return rc;
    rt->tasks.batching = false;
    tf_tasks_drop_held(&rt->tasks);
    return 0;
}

int tf_batch_end(tf_runtime *rt)
{
    int rc = check_batch(rt, true);
    if (rc)
        return rc;
    rt->tasks.batching = false;
    size_t ncyc = 0;
    uint32_t cyc[8];
    rc = tf_sched_seal(&rt->tasks.sched, cyc, 8, &ncyc);
    if (rc == TF_ECYCLE)
        tf_logf(&rt->log, TF_LOG_ERROR,
                "the batch has a dependency cycle of %zu tasks (task %llu "
                "among them): nothing of it was added",
                ncyc, (unsigned long long)rt->tasks.rec[cyc[0]].gid);
    if (rc)
        tf_tasks_drop_held(&rt->tasks);
    else if (rt->in_run)
        added_in_run(rt);
    return rc;
}

int tf_hold_open(tf_runtime *rt, int open)
{
    if (!rt || (open && !rt->cfg.on_event))
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    rt->hold_open = open != 0;
    return 0;
}

int tf_run(tf_runtime *rt)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->in_run || rt->tasks.batching)
        return TF_ESTATE;
    /* With a rank gone, a collective would wait for it forever. */
    if (rt->link.live.degraded)
        return TF_ELOST;
    /*
     * A trace that cannot be created, or a state that cannot be loaded or
     * written, fails the run on every rank.
     */
    int rc = 0;
    if (rt->link.rank == 0 && rt->cfg.trace_path && !rt->trace)
        rc = tf_tracing_open(rt->cfg.trace_path, &rt->log, &rt->trace);
    int crc = rt->ck ? tf_ckstate_prepare(rt->ck) : 0;
    if (!rc)
        rc = crc;
    if (rt->link.mpi)
        rc = tf_rt_agree(rt, rc);
    else if (rt->have_pool)
        tf_pool_set_gid_base(
            &rt->pool,
            tf_tasks_gid_base(rt->ck ? tf_ckstate_epoch(rt->ck) : 0, 0));
    if (rc)
        return rc;
    rt->in_run = true;
    rt->halt_mode = 0;
    if (rt->trace)
        tf_tracing_begin(rt->trace, rt->link.size,
                         (const char (*)[64])rt->world.host, rt->world.slots);
    rc = rt->link.rank == 0 ? tf_schedloop_run(rt) : tf_workloop_run(rt);
    if (rt->trace)
        tf_tracing_end(rt->trace);
    rt->in_run = false;
    return rc;
}

/*
 * The checks of a call that rank 0 may make only during tf_run (`now`: the
 * moment allows it): TF_EINVAL, TF_ENOTROOT, TF_ESTATE, or 0.
 */
static int rank0_in_run(const tf_runtime *rt, bool now)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    return now ? 0 : TF_ESTATE;
}

/* A halt of `mode` (TF_WIRE_HALT_*), or a sooner one, for this run. */
static int request_halt(tf_runtime *rt, uint8_t mode)
{
    int rc = rank0_in_run(rt, rt && rt->in_run);
    if (rc)
        return rc;
    /* Acted on by the scheduling loop, between callbacks. */
    if (rt->halt_mode < mode && rt->trace)
        tf_tracing_note(rt->trace, "halt",
                        mode == TF_WIRE_HALT_SOON
                            ? "soon: running tasks finish"
                            : NULL);
    if (rt->halt_mode < mode)
        rt->halt_mode = mode;
    return 0;
}

int tf_set_deadline(tf_runtime *rt, uint64_t deadline_ns)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    if (rt->in_run) {
        int rc = tf_sched_set_deadline(&rt->tasks.sched,
                                       tf_rt_deadline_clock(deadline_ns));
        if (rc)
            return rc;
    }
    rt->cfg.deadline_ns = deadline_ns;
    return 0;
}

int tf_halt(tf_runtime *rt)
{
    return request_halt(rt, TF_WIRE_HALT_NOW);
}

int tf_halt_soon(tf_runtime *rt)
{
    return request_halt(rt, TF_WIRE_HALT_SOON);
}

int tf_event_interrupted(tf_runtime *rt)
{
    int rc = rank0_in_run(rt, rt && rt->in_attempt_event);
    if (!rc)
        rt->event_interrupted = true;
    return rc;
}

int tf_note(tf_runtime *rt, const char *name, const char *detail)
{
    if (!rt || !name)
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    if (rt->trace)
        tf_tracing_note(rt->trace, name, detail);
    return 0;
}

static int check_query(const tf_runtime *rt, tf_task_id id, uint32_t *t)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    *t = tf_tasks_index_of(&rt->tasks, id);
    return *t == TF_NONE ? TF_ENOENT : 0;
}

int tf_task_info_get(const tf_runtime *rt, tf_task_id id, tf_task_info *info)
{
    uint32_t t;
    int rc = check_query(rt, id, &t);
    if (rc)
        return rc;
    if (!info)
        return TF_EINVAL;
    tf_tasks_info(&rt->tasks, t, info);
    return 0;
}

int tf_task_output_part(const tf_runtime *rt, tf_task_id id, unsigned part,
                        const void **buf, size_t *len)
{
    uint32_t t;
    int rc = check_query(rt, id, &t);
    if (rc)
        return rc;
    if (!buf || !len || part >= TF_PARTS_MAX)
        return TF_EINVAL;
    const void *b;
    uint32_t n;
    /* Gone, or only on the rank that made it: rank 0 was not to keep it. */
    if (!tf_tasks_part(&rt->tasks, t, part, &b, &n) || (n && !b))
        return TF_ENOENT;
    *buf = b;
    *len = n;
    return 0;
}

int tf_task_output(const tf_runtime *rt, tf_task_id id, const void **buf,
                   size_t *len)
{
    return tf_task_output_part(rt, id, 0, buf, len);
}

int tf_release(tf_runtime *rt, tf_task_id id)
{
    uint32_t t;
    int rc = check_query(rt, id, &t);
    if (rc)
        return rc;
    if (rt->in_run)
        return TF_ESTATE;
    tf_trec *r = &rt->tasks.rec[t];
    if (tf_sched_state(&rt->tasks.sched, t) != TF_ST_DONE ||
        (r->oflags & TF_OUT_GONE))
        return TF_ENOENT;
    /* Tasks still to run read it. */
    if (r->uses)
        return TF_ESTATE;
    tf_tasks_release(&rt->tasks, t, tf_rt_free_away, rt);
    return 0;
}

int tf_get_stats(const tf_runtime *rt, tf_stats *st)
{
    if (!rt || !st)
        return TF_EINVAL;
    memset(st, 0, sizeof *st);
    st->messages_sent = rt->link.sent;
    st->messages_received = rt->link.recv;
    st->steals = rt->steals;
    st->stolen = rt->stolen_tasks;
    st->lost_ranks = rt->link.live.nlost + rt->gone;
    if (rt->have_pool) {
        tf_pool_data_bytes((tf_pool *)&rt->pool, &st->data_bytes,
                           &st->data_bytes_peak);
        st->fetches = rt->pool.fetches;
        st->fetched_bytes = rt->pool.fetched_bytes;
    }
    if (rt->link.rank != 0)
        return 0;
    st->rank0_payload_bytes = rt->rank0_payload_bytes;
    st->reruns = rt->reruns;
    st->data_bytes += rt->tasks.out_bytes;
    if (rt->tasks.out_peak > st->data_bytes_peak)
        st->data_bytes_peak = rt->tasks.out_peak;
    const tf_sched *s = &rt->tasks.sched;
    st->tasks = s->dag.n;
    st->done = s->count[TF_ST_DONE];
    st->failed = s->count[TF_ST_FAILED];
    st->skipped = s->count[TF_ST_SKIPPED];
    /*
     * Dispatched tasks beyond a worker's slots wait in its queue (the
     * prefetch window): counted as running they made a 1-slot worker
     * look as if it ran 2.
     */
    uint64_t queued = 0;
    for (uint32_t w = 0; w < s->nworkers; w++)
        if (s->workers[w].ntasks > s->workers[w].slots)
            queued += s->workers[w].ntasks - s->workers[w].slots;
    uint64_t dispatched = s->count[TF_ST_DISPATCHED];
    st->queued = queued < dispatched ? queued : dispatched;
    st->running = dispatched - st->queued;
    st->moved = rt->moved;
    st->released = s->released;
    st->sched_bytes = tf_sched_bytes(s) + tf_idmap_bytes(&rt->tasks.ids);
    /* Kept as it changes: the taskfarm command asks on every tick. */
    st->task_bytes = tf_tasks_bytes(&rt->tasks);
    if (rt->ck)
        tf_ckstate_counts(rt->ck, &st->checkpoints,
                          &st->checkpoint_pause_max_ns);
    st->trace_error = rt->trace ? tf_tracing_error(rt->trace) : 0;
    return 0;
}

void tf_rt_end_tasks(tf_runtime *rt, bool lost0)
{
    if (!rt->have_pool)
        return;
    tf_pool_drop_queued(&rt->pool);
    tf_halt_fn end = lost0 && rt->cfg.on_lost ? rt->cfg.on_lost
                                              : rt->cfg.on_halt;
    if (end)
        end(rt->cfg.halt_user);
}

int tf_finalize(tf_runtime **prt)
{
    if (!prt || !*prt)
        return TF_EINVAL;
    tf_runtime *rt = *prt;
    if (rt->in_run)
        return TF_ESTATE;
    /* A deposed rank's trace file is the successor's now. */
    if (rt->deposed)
        tf_tracing_discard(&rt->trace);
    int rc = tf_tracing_close(&rt->trace) ? TF_EIO : 0;
    if (tf_ckstate_close(&rt->ck))
        rc = TF_EIO;
    if (rt->have_pool)
        tf_pool_destroy(&rt->pool);
    tf_tasks_free(&rt->tasks);
    for (int r = 0; rt->frees && r < rt->link.size; r++)
        tf_buf_free(&rt->frees[r]);
    free(rt->frees);
    free(rt->free_since);
    tf_registry_free(&rt->reg);
    free(rt->world.host);
    free(rt->world.slots);
    free(rt->world.loc);
    tf_live_free(&rt->link.live);
    free(rt->link.fl); /* only lost ranks' receives can be left: leaked */
    tf_bells_free(&rt->link.bells);
    if (rt->link.mpi && MPI_Comm_free(&rt->link.comm) != MPI_SUCCESS)
        rc = TF_EMPI;
    /*
     * MPI started by tf_boot ends here, unless a rank was lost: then Open
     * MPI 4.1's MPI_Finalize can wait for it forever, and the caller ends
     * the process with _exit (tf_stats.lost_ranks says so).
     */
    bool lost = rt->link.live.degraded || rt->gone;
    if (rt->owns_mpi && !lost && MPI_Finalize() != MPI_SUCCESS)
        rc = TF_EMPI;
    /*
     * A lost rank's daemon may never tell mpirun that it ended (a dead
     * node), or mpirun's node is the dead one: give the launcher one
     * heartbeat period (1 to 10 s) to end by itself, then end it. Not on
     * a rank the others went on without (deposed, or left out of a
     * take-over): the launcher still runs their job.
     */
    if (rt->owns_mpi && lost && !rt->deposed) {
        uint64_t ms = rt->link.live.hb_ns / 1000000u;
        int grace = ms < 1000 ? 1000 : ms > 10000 ? 10000 : (int)ms;
        const char *l = tf_launcher_release(grace);
        if (l)
            tf_logf(&rt->log, TF_LOG_INFO,
                    "a rank was lost: %s has %.1f s to end by itself, then "
                    "it is ended (a dead node's daemon never reports)",
                    l, grace / 1e3);
    }
    free(rt);
    *prt = NULL;
    return rc;
}
