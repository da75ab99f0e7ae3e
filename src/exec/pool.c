/* Task runner: the rank's held jobs (a tf_wq) with their payloads, task threads, completion events, the tf_task_* context API. */
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/grow.h"
#include "core/wire.h"

/* How long an idle task thread looks for work before it sleeps. */
#define TF_POOL_SPIN_NS 50000u

/*
 * Batches (run_jobs): a thread takes at most TF_POOL_BATCH jobs under one
 * lock, as many as its recent jobs say will take about TF_POOL_BATCH_NS
 * together, and no more than its share of the queue. Idle threads take
 * the jobs a batch has not started once its job has run for
 * TF_POOL_STEAL_NS (take_back); and a batch that has run for
 * TF_POOL_GIVEBACK_NS (a job far longer than the ones before it) puts the
 * rest back in the queue itself.
 */
#define TF_POOL_STEAL_NS 20000u
#define TF_POOL_BATCH_NS 20000u
#define TF_POOL_GIVEBACK_NS 100000u

/* keep_parts copies a part 0 held in its event into a store entry. */
_Static_assert(TF_EV_TINY <= TF_STORE_SMALL, "a tiny part fits an entry");

/* Jobs pushed under one lock (tf_pool_push). */
#define TF_POOL_PUSH_RUN 32u

struct tf_task_ctx {
    tf_pool *pool;
    const tf_job *job;
    const uint16_t *slots;
    /*
     * The task's DONE event, which `execute` fills and keeps in place
     * until the task returns: its output's parts go straight into it
     * (blk NULL and len 0: not set).
     */
    tf_event *ev;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Room for `extra` more events; the caller holds the lock. */
static int ev_reserve(tf_pool *p, size_t extra)
{
    tf_evvec *v = &p->ev;
    if (v->n + extra <= v->cap)
        return 0;
    size_t ncap = v->cap ? v->cap : 256;
    while (ncap < v->n + extra)
        ncap *= 2;
    tf_event *nv = realloc(v->v, ncap * sizeof *nv);
    if (!nv)
        return TF_ENOMEM;
    v->v = nv;
    v->cap = ncap;
    return 0;
}

/* Tell the driver that events wait; the caller holds the lock. */
static void notify(tf_pool *p)
{
    if (p->wake)
        p->wake(p->wake_user);
    else if (p->driver_waiting)
        pthread_cond_signal(&p->event_cv);
}

/* Append an event (and tell the driver unless `quiet`); lock held. */
static int add_event(tf_pool *p, const tf_event *ev, bool quiet)
{
    tf_evvec *v = &p->ev;
    if (ev_reserve(p, 1))
        return TF_ENOMEM;
    v->v[v->n++] = *ev;
    if (!quiet)
        notify(p);
    return 0;
}

static int push_event(tf_pool *p, const tf_event *ev)
{
    return add_event(p, ev, false);
}

/*
 * The queue changed: tell the threads looking for work without the lock,
 * and wake a sleeping thread for each job queued, no more (a wake-up
 * costs ~10 us here). The caller holds the lock.
 */
static void work_changed(tf_pool *p)
{
    atomic_store_explicit(&p->queued_hint, p->wq.qn, memory_order_release);
    for (size_t n = p->wq.qn < p->sleepers ? p->wq.qn : p->sleepers; n; n--)
        pthread_cond_signal(&p->work_cv);
}

/* A free handle for a job's payload; the caller holds the lock. */
static int take_ref(tf_pool *p, uint32_t *ref)
{
    if (p->nfree) {
        *ref = p->free_refs[--p->nfree];
        return 0;
    }
    /* The free stack gets room for every ref now, so a release never fails. */
    if (p->njobs >= UINT32_MAX ||
        tf_grow((void **)&p->jobs, &p->jcap, p->njobs + 1, sizeof *p->jobs,
                64) ||
        tf_grow((void **)&p->free_refs, &p->fcap, p->njobs + 1,
                sizeof *p->free_refs, 64))
        return TF_ENOMEM;
    *ref = (uint32_t)p->njobs++;
    return 0;
}

static void give_ref(tf_pool *p, uint32_t ref)
{
    p->free_refs[p->nfree++] = ref;
}

/*
 * How many jobs a thread whose recent jobs took avg_ns each takes at once:
 * about TF_POOL_BATCH_NS of them, at most its share of the queue (so the
 * other slots get theirs), max and TF_POOL_BATCH. Lock held.
 */
static size_t batch_size(const tf_pool *p, uint64_t avg_ns, size_t max)
{
    size_t k = avg_ns >= TF_POOL_BATCH_NS ? 1 : TF_POOL_BATCH_NS / (avg_ns + 1);
    size_t share = (p->wq.qn + p->wq.slots - 1) / p->wq.slots;
    if (k > share)
        k = share;
    if (k > max)
        k = max;
    return k < 1 ? 1 : k > TF_POOL_BATCH ? TF_POOL_BATCH : k;
}

/*
 * Start the head job if it fits, and up to max - 1 one-core jobs behind it
 * (tf_wq_start_batch): their queue entries to wj[], their payloads to
 * job[], the slots to slots[]. Their handles stay taken until each ends
 * (finish), or goes back to the queue (tf_wq_unstart). Lock held.
 */
static size_t take_jobs(tf_pool *p, size_t max, tf_wq_job *wj, tf_job *job,
                        uint16_t *slots)
{
    size_t k = tf_wq_start_batch(&p->wq, max, wj, slots);
    for (size_t i = 0; i < k; i++)
        job[i] = p->jobs[wj[i].ref];
    /*
     * Kept exact both ways: a count left high after the last job was taken
     * would send a looking thread back to the lock at once, again and again.
     */
    if (k)
        atomic_store_explicit(&p->queued_hint, p->wq.qn, memory_order_relaxed);
    return k;
}

/* Let go of the store references job j's inputs hold. Lock held. */
static void release_deps(tf_pool *p, const tf_job *j)
{
    for (uint32_t i = 0; i < j->ndeps; i++) {
        tf_store_unref(&p->store, j->deps[i].ent);
        j->deps[i].ent = NULL;
    }
}

/* Input dp gets the bytes of store entry e (a reference it holds), or none. */
static void fill_dep(tf_dep *dp, tf_part_ent *e)
{
    dp->anchor = TF_POOL_NO_ANCHOR;
    dp->ent = e;
    dp->buf = e ? tf_part_data(e) : NULL;
    dp->len = e ? e->len : 0;
}

/*
 * Carry out the queue's actions: FILL gives a parked job the part it
 * waited for, from the store (a task here that finished, or a fetch that
 * came), UNRUN and DROP turn a job into an event for the driver. The
 * caller holds the lock and has reserved room for the events.
 */
static void carry_out(tf_pool *p)
{
    size_t n;
    const tf_wq_act *a = tf_wq_actions(&p->wq, &n);
    for (size_t i = 0; i < n; i++) {
        tf_job *j = &p->jobs[a[i].ref];
        if (a[i].kind == TF_WQ_FILL) {
            for (uint32_t k = 0; k < j->ndeps; k++) {
                tf_dep *dp = &j->deps[k];
                if (dp->anchor != a[i].anchor)
                    continue;
                /* A fetch's entry holds the job's reference already. */
                tf_part_ent *e = dp->kind == TF_DEP_REMOTE
                                     ? dp->ent
                                     : tf_store_find(&p->store, dp->idx,
                                                     dp->part);
                if (e && dp->kind != TF_DEP_REMOTE)
                    e->refs++;
                fill_dep(dp, e);
            }
            continue;
        }
        release_deps(p, j);
        tf_event ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = a[i].kind == TF_WQ_UNRUN ? TF_EV_UNRUN : TF_EV_DROP;
        ev.idx = j->idx;
        ev.owner = j->owner;
        push_event(p, &ev);
        give_ref(p, a[i].ref);
    }
    tf_wq_clear_actions(&p->wq);
}

/* Settle anchor a from outside (a fetch), as tf_wq_arrive. Lock held. */
static void arrive(tf_pool *p, uint32_t a, tf_wq_outcome outcome)
{
    while (ev_reserve(p, p->wq.npark) || tf_wq_arrive(&p->wq, a, outcome)) {
        pthread_mutex_unlock(&p->mu);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        pthread_mutex_lock(&p->mu);
    }
    carry_out(p);
    work_changed(p);
}

/*
 * The outputs of a task others depend on stay here for them: its parts
 * become HOME entries of the store, each also referenced by the DONE
 * event until the driver has reported it. False if memory ran out (the
 * parts not stored travel inline; parked followers go back unrun).
 */
static bool keep_parts(tf_pool *p, const tf_job *job, tf_event *ev)
{
    bool ok = true;
    /*
     * Small parts travel inline to rank 0, which gives them to readers:
     * kept here only for tasks parked here (which read them from the
     * store), so a fine-grained task costs no store entry.
     */
    bool awaited = tf_wq_awaited(&p->wq, job->idx);
    for (uint16_t i = 0; i < ev->nparts; i++) {
        tf_evpart *pt = tf_event_part(ev, i);
        if ((!pt->blk && !pt->len) || (pt->len <= p->inline_max && !awaited))
            continue;
        tf_part_ent *e = tf_store_find(&p->store, job->idx, i);
        if (!pt->blk && (!e || e->kind != TF_PART_FETCHING)) {
            /* In the event: the store keeps a copy in the entry itself. */
            if (tf_store_add_copy(&p->store, job->idx, i, ev->tiny, pt->len,
                                  &e)) {
                ok = false;
                continue;
            }
            e->refs++;
            pt->ent = e;
            continue;
        }
        if (!pt->blk) { /* made again for a reader here: it needs a block */
            if (!(pt->blk = malloc(TF_STORE_HDR + pt->len))) {
                ok = false;
                continue;
            }
            memcpy(pt->blk + TF_STORE_HDR, ev->tiny, pt->len);
        }
        if (e && e->kind == TF_PART_FETCHING) {
            /*
             * Made again here (lineage) while a task here waits for the
             * part from the rank that had it: this is the part it waits for.
             */
            tf_store_arrived(&p->store, e, pt->blk, pt->len);
            e->kind = TF_PART_HOME;
            e->refs++;
            pt->ent = e;
            arrive(p, e->anchor, TF_WQ_OK);
            continue;
        }
        if (tf_store_add(&p->store, job->idx, i, TF_PART_HOME, pt->blk,
                         pt->len, &e)) {
            ok = false;
            continue;
        }
        e->refs++;
        pt->ent = e;
    }
    return ok;
}

/*
 * Run one job, without the lock, into its DONE event. `start` is the
 * time it starts, 0 to read the clock: a job run right after another on
 * the same thread starts when that one ended (perf put clock_gettime at a
 * fifth of a worker's time with two reads per empty task).
 */
static void execute(tf_pool *p, const tf_job *job, const uint16_t *slots,
                    uint64_t start, tf_event *ev)
{
    struct tf_task_ctx ctx = {.pool = p, .job = job, .slots = slots, .ev = ev};
    memset(ev, 0, sizeof *ev);
    ev->kind = TF_EV_DONE;
    ev->idx = job->idx;
    ev->attempt = job->attempt;
    ev->owner = job->owner;
    ev->flags = job->flags;
    ev->slot = slots[0]; /* tf_wq_start hands out the lowest free slots */
    ev->start_ns = start ? start : now_ns();
    if (job->missing) {
        ev->status = TF_ELOST; /* an input its holder did not have */
    } else if (p->may_run && !p->may_run(p->may_run_user)) {
        ev->status = TF_EDEPOSED;
    } else if (job->fn < p->reg->n) {
        const tf_fnent *fe = &p->reg->fns[job->fn];
        ev->status = fe->fn(&ctx, job->in, job->in_len, fe->user);
    } else {
        ev->status = TF_ENOENT;
    }
    ev->end_ns = now_ns();
}

/*
 * The job ended: its slots free (when `last` of its batch), its DONE event
 * posted (the driver told by the caller), its followers released. The
 * lock is held. The event must not be lost: if memory for it cannot be
 * had, the thread retries, since rank 0 would otherwise wait forever for
 * this task.
 */
static void finish(tf_pool *p, const tf_wq_job *wj, const tf_job *job,
                   const uint16_t *slots, tf_event *ev, bool last)
{
    /*
     * Room for this DONE and for giving up on every parked job, and for
     * the queue's own bookkeeping.
     */
    tf_wq_outcome outcome = ev->status ? TF_WQ_FAILED : TF_WQ_OK;
    if (!ev->status && (job->flags & TF_WIRE_DEPS) &&
        !keep_parts(p, job, ev))
        outcome = TF_WQ_NO_OUTPUT; /* its followers go back unrun */
    while (ev_reserve(p, 1 + p->wq.npark) ||
           (last ? tf_wq_end(&p->wq, wj, slots, outcome)
                 : tf_wq_end_batched(&p->wq, wj, outcome))) {
        pthread_mutex_unlock(&p->mu);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&p->mu);
    }
    add_event(p, ev, true);
    release_deps(p, job);
    give_ref(p, wj->ref);
    carry_out(p);
}

#define CLAIM(next, end) ((uint64_t)(next) << 32 | (uint32_t)(end))

/* The owner starts the next job of its batch, if a thief left it one. */
static bool claim_next(tf_pool_runner *r)
{
    uint64_t c = atomic_load_explicit(&r->claim, memory_order_acquire);
    while ((uint32_t)(c >> 32) < (uint32_t)c)
        if (atomic_compare_exchange_weak_explicit(
                &r->claim, &c, c + CLAIM(1, 0), memory_order_acq_rel,
                memory_order_acquire))
            return true;
    return false;
}

/*
 * Another runner's batch has jobs not started (now 0), or has them behind
 * a job running since TF_POOL_STEAL_NS before now: a look without the
 * lock.
 */
static bool batch_waiting(const tf_pool *p, const tf_pool_runner *self,
                          uint64_t now)
{
    for (unsigned i = 0; i < p->nrunners; i++) {
        const tf_pool_runner *r = &p->runners[i];
        uint64_t c = atomic_load_explicit(&r->claim, memory_order_relaxed);
        if (r != self && (uint32_t)(c >> 32) < (uint32_t)c &&
            (!now || now - atomic_load_explicit(&r->job_ns,
                                                memory_order_relaxed) >=
                         TF_POOL_STEAL_NS))
            return true;
    }
    return false;
}

/*
 * A runner with nothing to do takes what each batch stuck behind a long
 * job (batch_waiting) has not started, back to the head of the queue,
 * where it then finds them. Lock held (the owner reads its arrays and
 * ends its batch under it). Returns whether it took any.
 */
static bool take_back(tf_pool *p, const tf_pool_runner *self)
{
    bool any = false;
    uint64_t now = now_ns();
    for (unsigned i = 0; i < p->nrunners; i++) {
        tf_pool_runner *r = &p->runners[i];
        if (r == self ||
            now - atomic_load_explicit(&r->job_ns, memory_order_relaxed) <
                TF_POOL_STEAL_NS)
            continue;
        uint64_t c = atomic_load_explicit(&r->claim, memory_order_acquire);
        for (;;) {
            uint32_t next = (uint32_t)(c >> 32), end = (uint32_t)c;
            if (next >= end)
                break;
            uint32_t keep = next;
            if (atomic_compare_exchange_weak_explicit(
                    &r->claim, &c, CLAIM(next, keep), memory_order_acq_rel,
                    memory_order_acquire)) {
                tf_wq_unstart(&p->wq, r->wj + keep, end - keep);
                any = true;
                break;
            }
        }
    }
    if (any)
        work_changed(p);
    return any;
}

/*
 * Run jobs on this thread back to back, in batches (take_jobs), holding
 * the lock only between batches: one lock for a batch's end and the next
 * one's start. r->avg_ns follows the jobs' durations, for the batches'
 * size. Returns with the lock held, after at most `max` jobs, or when
 * none fits, or when `slice` ns have passed since the first started (0: no
 * limit).
 */
static size_t run_jobs(tf_pool *p, tf_pool_runner *r, size_t max,
                       uint64_t slice)
{
    size_t n = 0;
    uint64_t start = 0, until = 0;
    tf_event ev[TF_POOL_BATCH];
    size_t k;
    while (n < max && !p->stopping &&
           (k = take_jobs(p, batch_size(p, r->avg_ns, max - n), r->wj,
                          r->job, r->slots)) != 0) {
        /* Job 0 has started; thieves may take from the rest. */
        atomic_store_explicit(&r->claim, CLAIM(1, k), memory_order_release);
        pthread_mutex_unlock(&p->mu);
        size_t ran = 0;
        uint64_t give_at = 0;
        if (!start)
            start = now_ns();
        do {
            atomic_store_explicit(&r->job_ns, start, memory_order_relaxed);
            execute(p, &r->job[ran], r->slots, start, &ev[ran]);
            start = ev[ran].end_ns;
            if (!ran) {
                give_at = ev[0].start_ns + TF_POOL_GIVEBACK_NS;
                if (!until)
                    until = ev[0].start_ns + slice;
            }
            r->avg_ns = (3 * r->avg_ns + (start - ev[ran].start_ns)) / 4;
            ran++;
        } while (start < give_at && !(slice && start >= until) &&
                 claim_next(r));
        pthread_mutex_lock(&p->mu);
        /* What no thief took and this thread did not start goes back. */
        uint32_t end = (uint32_t)atomic_load_explicit(&r->claim,
                                                      memory_order_acquire);
        atomic_store_explicit(&r->claim, 0, memory_order_relaxed);
        if (end > ran)
            tf_wq_unstart(&p->wq, r->wj + ran, end - ran);
        for (size_t i = 0; i < ran; i++)
            finish(p, &r->wj[i], &r->job[i], r->slots, &ev[i], i + 1 == ran);
        notify(p);
        work_changed(p);
        n += ran;
        if (slice && start >= until)
            break;
    }
    return n;
}

/* A spinning thread's pause: its sibling hyperthread (or the host) runs. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * A task thread that found nothing looks again without the lock for a
 * while before it sleeps: the next job usually comes within a few
 * microseconds while tasks are short, and being woken costs more than
 * that (np 1 with 2 slots: a futex wake-up per task made the trivial
 * graph's METG 31 us). Ends as soon as a job is queued, fitting or not,
 * or another thread's batch is stuck behind a long job, and returns with
 * the lock taken again. It does not sched_yield: with the polling thread
 * on the same core, that put the looking thread behind it for the rest of
 * its time slice, and looks meant to last 50 us took 3.4-3.5 ms in two
 * runs of five (np 1 with 2 slots, 2,048 tasks of 1.5 us) while the other
 * core idled; without it, no look took over 50 us. A thread that shares
 * a core spins out its 50 us at most, then sleeps.
 */
static void look_for_work(tf_pool *p, const tf_pool_runner *self)
{
    pthread_mutex_unlock(&p->mu);
    bool seen = false;
    uint64_t until = 0;
    for (unsigned i = 1; !seen; i++) {
        seen = atomic_load_explicit(&p->queued_hint, memory_order_acquire);
        if (seen || i % 64)
            continue;
        uint64_t now = now_ns();
        if ((seen = batch_waiting(p, self, now)))
            break;
        if (!until)
            until = now + TF_POOL_SPIN_NS;
        else if (now >= until)
            break;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
}

static void *thread_main(void *arg)
{
    tf_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    tf_pool_runner *r = &p->runners[p->threads_started++];
    pthread_cond_broadcast(&p->event_cv); /* tf_pool_init waits for this */
    bool looked = false;
    while (!p->stopping) {
        if (run_jobs(p, r, SIZE_MAX, 0)) {
            looked = false;
            continue;
        }
        if (p->stopping)
            break;
        if (take_back(p, r))
            continue;
        /*
         * After the look, take again under the lock before sleeping: a
         * job queued between the look's last glance and the lock saw no
         * sleeper to wake, and would wait in the queue forever. While
         * another batch has jobs not started, look on: it ends soon, or
         * they can be taken once it is stuck.
         */
        if (!looked || batch_waiting(p, r, 0)) {
            looked = true;
            look_for_work(p, r);
            continue;
        }
        looked = false;
        p->sleepers++;
        pthread_cond_wait(&p->work_cv, &p->mu);
        p->sleepers--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Tell the task threads to stop, and join them. */
static void stop_threads(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    atomic_store(&p->queued_hint, SIZE_MAX); /* ends the threads' look */
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
}

int tf_pool_init(tf_pool *p, unsigned slots, bool driver_runs,
                 const tf_registry *reg, int rank, uint64_t gid_base)
{
    if (!slots || slots > UINT16_MAX)
        return TF_EINVAL;
    memset(p, 0, sizeof *p);
    unsigned nthreads = driver_runs ? slots - 1 : slots;
    p->driver_runs = driver_runs;
    if (tf_wq_init(&p->wq, slots))
        return TF_ENOMEM;
    p->nrunners = nthreads + (driver_runs ? 1 : 0);
    p->runners = calloc(p->nrunners, sizeof *p->runners);
    p->runner_slots = malloc(((size_t)p->nrunners * slots + 1) *
                             sizeof *p->runner_slots);
    if (!p->runners || !p->runner_slots)
        goto fail_with_slots;
    for (unsigned i = 0; i < p->nrunners; i++) {
        p->runners[i].slots = p->runner_slots + (size_t)i * slots;
        p->runners[i].avg_ns = TF_POOL_BATCH_NS; /* one job alone until timed */
    }
    tf_store_init(&p->store);
    p->inline_max = UINT32_MAX; /* one rank: rank 0 has every output */
    p->reg = reg;
    p->rank = rank;
    p->gid_base = gid_base;
    int rc;
    pthread_condattr_t ca;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    rc = pthread_mutex_init(&p->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc)
        goto fail_with_slots;
    if (pthread_cond_init(&p->work_cv, NULL))
        goto fail_with_mutex;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&p->event_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        goto fail_with_work_cv;
    if (nthreads) {
        p->threads = calloc(nthreads, sizeof *p->threads);
        if (!p->threads)
            goto fail_with_event_cv;
        for (unsigned i = 0; i < nthreads; i++) {
            if (pthread_create(&p->threads[i], NULL, thread_main, p))
                goto fail_with_threads;
            p->nthreads++;
        }
        /*
         * Return with every task thread running: a thread started 1.7 to
         * 3.5 ms after pthread_create in 3 runs of 6 on this VM (np 1 with
         * 2 slots), so it missed most of a first run of 2 ms; waited for
         * here, the wait falls in tf_init, once.
         */
        pthread_mutex_lock(&p->mu);
        while (p->threads_started < nthreads)
            pthread_cond_wait(&p->event_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    return 0;

fail_with_threads:
    stop_threads(p);
fail_with_event_cv:
    pthread_cond_destroy(&p->event_cv);
fail_with_work_cv:
    pthread_cond_destroy(&p->work_cv);
fail_with_mutex:
    pthread_mutex_destroy(&p->mu);
fail_with_slots:
    free(p->runner_slots);
    free(p->runners);
    tf_wq_free(&p->wq);
    return TF_ENOMEM;
}

void tf_pool_destroy(tf_pool *p)
{
    stop_threads(p);
    /* Events already taken (ev_spare) belong to the driver. */
    for (size_t i = 0; i < p->ev.n; i++) {
        free(p->ev.v[i].data);
        free(p->ev.v[i].deps);
        tf_pool_done_parts(p, &p->ev.v[i]);
    }
    tf_store_free(&p->store);
    free(p->ev.v);
    free(p->ev_spare.v);
    tf_wq_free(&p->wq);
    free(p->jobs);
    free(p->free_refs);
    free(p->runner_slots);
    free(p->runners);
    pthread_cond_destroy(&p->event_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
}

/*
 * Input dp of a job: filled at once when its bytes are here, else it gets
 * the anchor it will wait on (a LOCAL task's index, or a fetch's; a new
 * fetch is appended to *fetch). A REMOTE part this rank should hold but
 * does not marks the job missing. Lock held. Errors: TF_ENOMEM.
 */
static int resolve(tf_pool *p, tf_job *j, tf_dep *dp, int self,
                   tf_fetchvec *fetch)
{
    /* Inline bytes; or, pushed again, an input already filled (its ref kept). */
    if (dp->kind == TF_DEP_INLINE) {
        dp->anchor = TF_POOL_NO_ANCHOR;
        return 0;
    }
    if (dp->kind == TF_DEP_LOCAL) {
        dp->anchor = dp->idx;
        return 0;
    }
    tf_part_ent *e = tf_store_find(&p->store, dp->idx, dp->part);
    if (e && e->blk) {
        e->refs++;
        fill_dep(dp, e);
        return 0;
    }
    if (dp->from == self || dp->from < 0) {
        j->missing = true;
        fill_dep(dp, NULL);
        return 0;
    }
    /* Asked for once, whatever number of jobs here need it. */
    if (!e) {
        if (tf_grow((void **)&fetch->v, &fetch->cap, fetch->n + 1,
                    sizeof *fetch->v, 16) ||
            tf_store_add(&p->store, dp->idx, dp->part, TF_PART_FETCHING, NULL,
                         0, &e))
            return TF_ENOMEM;
        e->from = dp->from;
        e->anchor = tf_store_anchor(&p->store);
        fetch->v[fetch->n++] = (tf_fetch){dp->from, dp->idx, dp->part};
    }
    e->refs++;
    dp->ent = e;
    dp->anchor = e->anchor;
    return 0;
}

/* Hold job: its payload by a new ref, its entry in the queue. Lock held. */
static int push_one(tf_pool *p, const tf_job *job, uint32_t **anc,
                    uint32_t *acap, size_t *queued, int self,
                    tf_fetchvec *fetch)
{
    uint32_t ref;
    int rc = take_ref(p, &ref);
    if (rc)
        return rc;
    tf_job *j = &p->jobs[ref];
    *j = *job;
    uint32_t nanc = 0;
    for (uint32_t i = 0; i < j->ndeps && !rc; i++) {
        rc = resolve(p, j, &j->deps[i], self, fetch);
        nanc += !rc && j->deps[i].anchor != TF_POOL_NO_ANCHOR;
    }
    if (!rc && nanc > *acap) {
        uint32_t *na = realloc(*acap > 16 ? *anc : NULL, nanc * sizeof *na);
        if (na) {
            *anc = na;
            *acap = nanc;
        } else {
            rc = TF_ENOMEM;
        }
    }
    if (!rc) {
        for (uint32_t i = 0, k = 0; k < nanc; i++)
            if (j->deps[i].anchor != TF_POOL_NO_ANCHOR)
                (*anc)[k++] = j->deps[i].anchor;
        /* A pinned task stays, as one released from parking does. */
        tf_wq_job wj = {j->idx, ref, j->cores, j->attempt,
                        (j->flags & TF_WIRE_PINNED) != 0};
        rc = tf_wq_push(&p->wq, &wj, *anc, nanc);
    }
    if (rc) {
        release_deps(p, j);
        give_ref(p, ref);
    } else {
        *queued += !nanc;
    }
    return rc;
}

int tf_pool_push(tf_pool *p, const tf_job *jobs, size_t n, int self,
                 tf_fetchvec *fetch)
{
    uint32_t small[16], *anc = small, acap = 16;
    size_t queued = 0;
    int rc = 0;
    /*
     * One lock for TF_POOL_PUSH_RUN tasks, then the task threads may take
     * them: a window's refill is hundreds of tasks, and under one lock the
     * threads could take none of them, nor end their batches, meanwhile.
     */
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = push_one(p, &jobs[i], &anc, &acap, &queued, self, fetch);
        if (!rc && i + 1 < n && (i + 1) % TF_POOL_PUSH_RUN == 0 && queued) {
            work_changed(p);
            queued = 0;
            pthread_mutex_unlock(&p->mu);
            pthread_mutex_lock(&p->mu);
        }
    }
    if (queued)
        work_changed(p);
    pthread_mutex_unlock(&p->mu);
    if (anc != small)
        free(anc);
    return rc;
}

/* A fetch of (idx, part) ended, with its bytes or without. Lock held. */
static void fetched(tf_pool *p, uint32_t idx, uint32_t part, uint8_t *blk,
                    uint32_t len)
{
    tf_part_ent *e = tf_store_find(&p->store, idx, part);
    if (!e || e->kind != TF_PART_FETCHING) {
        free(blk); /* nobody waits for it any more */
        return;
    }
    if (blk) {
        tf_store_arrived(&p->store, e, blk, len);
        p->fetches++;
        p->fetched_bytes += len;
        arrive(p, e->anchor, TF_WQ_OK);
        return;
    }
    /* Held across the release of its waiters, which let go of it. */
    e->refs++;
    arrive(p, e->anchor, TF_WQ_NO_OUTPUT);
    tf_store_unref(&p->store, e);
}

void tf_pool_arrived(tf_pool *p, uint32_t idx, uint32_t part, uint8_t *blk,
                     uint32_t len)
{
    pthread_mutex_lock(&p->mu);
    fetched(p, idx, part, blk, len);
    pthread_mutex_unlock(&p->mu);
}

typedef struct lost_scan {
    int rank;
    tf_fetch *v;
    size_t n, cap;
    bool short_of_memory;
} lost_scan;

static void scan_lost(void *u, tf_part_ent *e)
{
    lost_scan *ls = u;
    if (e->kind != TF_PART_FETCHING || e->from != ls->rank)
        return;
    if (tf_grow((void **)&ls->v, &ls->cap, ls->n + 1, sizeof *ls->v, 16)) {
        ls->short_of_memory = true;
        return;
    }
    ls->v[ls->n++] = (tf_fetch){e->from, e->idx, e->part};
}

void tf_pool_holder_lost(tf_pool *p, int rank)
{
    lost_scan ls = {.rank = rank};
    pthread_mutex_lock(&p->mu);
    tf_store_each(&p->store, scan_lost, &ls);
    for (size_t i = 0; i < ls.n; i++)
        fetched(p, ls.v[i].idx, ls.v[i].part, NULL, 0);
    pthread_mutex_unlock(&p->mu);
    free(ls.v);
}

static void scan_unread(void *u, tf_part_ent *e)
{
    lost_scan *ls = u;
    if (e->kind != TF_PART_COPY || e->refs ||
        tf_grow((void **)&ls->v, &ls->cap, ls->n + 1, sizeof *ls->v, 16))
        return;
    ls->v[ls->n++] = (tf_fetch){-1, e->idx, e->part};
}

void tf_pool_sweep(tf_pool *p)
{
    lost_scan ls = {.rank = -1};
    pthread_mutex_lock(&p->mu);
    tf_store_each(&p->store, scan_unread, &ls);
    for (size_t i = 0; i < ls.n; i++)
        tf_store_forget(&p->store,
                        tf_store_find(&p->store, ls.v[i].idx, ls.v[i].part));
    pthread_mutex_unlock(&p->mu);
    free(ls.v);
}

void tf_pool_lend(tf_pool *p, uint32_t idx, uint32_t part, tf_part_ent **e)
{
    pthread_mutex_lock(&p->mu);
    *e = tf_store_find(&p->store, idx, part);
    if (*e && (*e)->blk)
        (*e)->refs++;
    else
        *e = NULL;
    pthread_mutex_unlock(&p->mu);
}

void tf_pool_unref(tf_pool *p, tf_part_ent *e)
{
    pthread_mutex_lock(&p->mu);
    tf_store_unref(&p->store, e);
    pthread_mutex_unlock(&p->mu);
}

void tf_pool_free_outputs(tf_pool *p, const void *idx, size_t n)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        uint32_t t;
        memcpy(&t, (const uint8_t *)idx + i * 4, sizeof t);
        tf_store_free_task(&p->store, t);
    }
    pthread_mutex_unlock(&p->mu);
}

void tf_pool_done_parts(tf_pool *p, tf_event *e)
{
    /* The lock only for parts the store holds or blocks it may keep. */
    bool store = false;
    for (uint16_t i = 0; i < e->nparts; i++) {
        const tf_evpart *pt = tf_event_part(e, i);
        store |= pt->ent || pt->len >= TF_BLKCACHE_MIN;
    }
    if (store)
        pthread_mutex_lock(&p->mu);
    for (uint16_t i = 0; i < e->nparts; i++) {
        tf_evpart *pt = tf_event_part(e, i);
        if (pt->ent)
            tf_store_unref(&p->store, pt->ent);
        else if (store)
            tf_store_unblock(&p->store, pt->blk, pt->len);
        else
            free(pt->blk);
    }
    if (store)
        pthread_mutex_unlock(&p->mu);
    free(e->parts);
    e->parts = NULL;
    e->part0 = (tf_evpart){0};
    e->nparts = 0;
}

void tf_pool_release_inputs(tf_pool *p, const tf_job *j)
{
    pthread_mutex_lock(&p->mu);
    release_deps(p, j);
    pthread_mutex_unlock(&p->mu);
}

void tf_pool_data_bytes(tf_pool *p, size_t *now, size_t *peak)
{
    pthread_mutex_lock(&p->mu);
    *now = p->store.bytes;
    *peak = p->store.peak;
    pthread_mutex_unlock(&p->mu);
}

size_t tf_pool_run(tf_pool *p, size_t max, uint64_t slice_ns)
{
    pthread_mutex_lock(&p->mu);
    /* The driver's runner is the last; without one it runs nothing. */
    size_t n = p->driver_runs
                   ? run_jobs(p, &p->runners[p->nrunners - 1], max, slice_ns)
                   : 0;
    pthread_mutex_unlock(&p->mu);
    return n;
}

const tf_evvec *tf_pool_take_events(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    tf_evvec t = p->ev;
    p->ev = p->ev_spare;
    p->ev.n = 0;
    p->ev_spare = t;
    pthread_mutex_unlock(&p->mu);
    return &p->ev_spare;
}

bool tf_pool_has_events(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    bool any = p->ev.n > 0;
    pthread_mutex_unlock(&p->mu);
    return any;
}

void tf_pool_wait(tf_pool *p, long ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ns;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&p->mu);
    p->driver_waiting = true;
    while (!p->ev.n) {
        int rc = pthread_cond_timedwait(&p->event_cv, &p->mu, &ts);
        if (rc == ETIMEDOUT)
            break;
    }
    p->driver_waiting = false;
    pthread_mutex_unlock(&p->mu);
}

void tf_pool_set_gid_base(tf_pool *p, uint64_t gid_base)
{
    pthread_mutex_lock(&p->mu);
    p->gid_base = gid_base;
    pthread_mutex_unlock(&p->mu);
}

void tf_pool_view(tf_pool *p, tf_worker_view *v)
{
    pthread_mutex_lock(&p->mu);
    v->held = tf_wq_held(&p->wq);
    v->idle_slots = tf_wq_idle_slots(&p->wq);
    pthread_mutex_unlock(&p->mu);
}

void tf_pool_drop_queued(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    /* Without memory the jobs stay held and run: nothing is lost. */
    if (!ev_reserve(p, tf_wq_held(&p->wq)) && !tf_wq_drop_all(&p->wq))
        carry_out(p);
    work_changed(p);
    pthread_mutex_unlock(&p->mu);
}

size_t tf_pool_steal(tf_pool *p, size_t max, unsigned max_cores, tf_job *out)
{
    tf_wq_job small[64], *wj = max > 64 ? malloc(max * sizeof *wj) : small;
    if (!wj)
        return 0; /* nothing given: the thief asks elsewhere */
    pthread_mutex_lock(&p->mu);
    size_t n = tf_wq_steal(&p->wq, max, max_cores, wj);
    for (size_t i = 0; i < n; i++) {
        out[i] = p->jobs[wj[i].ref];
        give_ref(p, wj[i].ref);
    }
    work_changed(p);
    pthread_mutex_unlock(&p->mu);
    if (wj != small)
        free(wj);
    return n;
}

size_t tf_pool_stealable(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = tf_wq_stealable(&p->wq);
    pthread_mutex_unlock(&p->mu);
    return n;
}

const uint16_t *tf_task_slots(const tf_task_ctx *ctx, size_t *n)
{
    *n = ctx->job->cores;
    return ctx->slots;
}

/* ---- the running task's view ---- */

tf_task_id tf_task_self(const tf_task_ctx *ctx) { return ctx->job->gid; }
int tf_task_attempt(const tf_task_ctx *ctx) { return ctx->job->attempt; }
int tf_task_rank(const tf_task_ctx *ctx) { return ctx->pool->rank; }
size_t tf_task_ndeps(const tf_task_ctx *ctx) { return ctx->job->ndeps; }

int tf_task_dep_output(const tf_task_ctx *ctx, size_t i, const void **buf,
                       size_t *len)
{
    if (!buf || !len)
        return TF_EINVAL;
    if (i >= ctx->job->ndeps)
        return TF_ERANGE;
    *buf = ctx->job->deps[i].buf;
    *len = ctx->job->deps[i].len;
    return 0;
}

int tf_task_output_alloc(tf_task_ctx *ctx, unsigned part, size_t len,
                         void **buf)
{
    if (part >= TF_PARTS_MAX || len > TF_WIRE_INLINE_MAX ||
        len > SIZE_MAX - TF_STORE_HDR || !buf)
        return TF_EINVAL;
    tf_event *ev = ctx->ev;
    if (part >= ev->nparts && part > 0) {
        /* Parts 1 on are an array (part 0 stays where its buffer is). */
        tf_evpart *np = realloc(ev->parts, part * sizeof *np);
        if (!np)
            return TF_ENOMEM;
        size_t had = ev->nparts > 1 ? ev->nparts - 1u : 0;
        memset(np + had, 0, (part - had) * sizeof *np);
        ev->parts = np;
    }
    if (part >= ev->nparts)
        ev->nparts = (uint16_t)(part + 1);
    tf_evpart *pt = tf_event_part(ev, (uint16_t)part);
    /* Large blocks come from the store's cache, under its lock. */
    tf_pool *p = ctx->pool;
    uint8_t *blk;
    if (!part && len && len <= TF_EV_TINY && pt->len < TF_BLKCACHE_MIN) {
        free(pt->blk); /* a small part 0 needs no block */
        *pt = (tf_evpart){NULL, (uint32_t)len, NULL};
        *buf = ev->tiny;
        return 0;
    }
    if (len < TF_BLKCACHE_MIN && pt->len < TF_BLKCACHE_MIN) {
        blk = malloc(TF_STORE_HDR + len);
        if (blk)
            free(pt->blk);
    } else {
        pthread_mutex_lock(&p->mu);
        blk = tf_store_block(&p->store, len);
        if (blk)
            tf_store_unblock(&p->store, pt->blk, pt->len);
        pthread_mutex_unlock(&p->mu);
    }
    if (!blk)
        return TF_ENOMEM;
    *pt = (tf_evpart){blk, (uint32_t)len, NULL};
    *buf = blk + TF_STORE_HDR;
    return 0;
}

int tf_task_set_part(tf_task_ctx *ctx, unsigned part, const void *buf,
                     size_t len)
{
    void *dst;
    if (len && !buf)
        return TF_EINVAL;
    int rc = tf_task_output_alloc(ctx, part, len, &dst);
    if (!rc && len)
        memcpy(dst, buf, len);
    return rc;
}

int tf_task_set_output(tf_task_ctx *ctx, const void *buf, size_t len)
{
    return tf_task_set_part(ctx, 0, buf, len);
}

int tf_task_submit(tf_task_ctx *ctx, const tf_task_desc *desc, tf_task_id *id)
{
    tf_pool *p = ctx->pool;
    /* A child's identity comes from its parent; no-ops are rank 0's. */
    if (!desc || desc->input_len > UINT32_MAX || desc->ndeps > UINT32_MAX ||
        desc->cores > UINT16_MAX || (desc->ndeps && !desc->deps) ||
        (desc->input_len && !desc->input) || desc->retries >= UINT8_MAX ||
        desc->key || desc->flags || !id)
        return TF_EINVAL;
    if (desc->fn >= p->reg->n)
        return TF_ENOENT;
    tf_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = TF_EV_SUBMIT;
    ev.parent = ctx->job->gid;
    ev.fn = desc->fn;
    ev.prio = desc->prio;
    ev.cores = (uint16_t)(desc->cores ? desc->cores : 1);
    ev.retries = (int16_t)(desc->retries < 0 ? -1 : desc->retries);
    ev.ndeps = (uint32_t)desc->ndeps;
    if (desc->ndeps) {
        ev.deps = malloc(desc->ndeps * sizeof *ev.deps);
        if (!ev.deps)
            return TF_ENOMEM;
        memcpy(ev.deps, desc->deps, desc->ndeps * sizeof *ev.deps);
    }
    if (desc->input_len) {
        ev.data = malloc(desc->input_len);
        if (!ev.data) {
            free(ev.deps);
            return TF_ENOMEM;
        }
        memcpy(ev.data, desc->input, desc->input_len);
        ev.data_len = (uint32_t)desc->input_len;
    }
    pthread_mutex_lock(&p->mu);
    ev.gid = p->gid_base | ++p->gid_seq;
    int rc = push_event(p, &ev);
    pthread_mutex_unlock(&p->mu);
    if (rc) {
        free(ev.deps);
        free(ev.data);
        return rc;
    }
    *id = ev.gid;
    return 0;
}
