/* Task runner: job ring, slot accounting, task threads, the tf_task_* context API. */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/grow.h"

struct tf_task_ctx {
    tf_pool *pool;
    const tf_job *job;
    const uint16_t *slots;
    void *out;
    uint32_t out_len;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int ev_reserve(tf_pool *p, size_t extra);

/* Append an event; the caller holds the lock. */
static int push_event(tf_pool *p, const tf_event *ev)
{
    tf_evvec *v = &p->ev;
    if (ev_reserve(p, 1))
        return TF_ENOMEM;
    v->v[v->n++] = *ev;
    if (p->driver_waiting)
        pthread_cond_signal(&p->event_cv);
    return 0;
}

/*
 * Pop the head job if it fits and give it the lowest free slots (written to
 * slots, which has room for p->slots entries); the caller holds the lock.
 */
static bool take_job(tf_pool *p, tf_job *job, uint16_t *slots)
{
    if (!p->qn || p->q[p->qhead].cores > p->free_slots)
        return false;
    *job = p->q[p->qhead];
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qn--;
    p->free_slots -= job->cores;
    p->running++;
    for (unsigned i = 0, k = 0; k < job->cores; i++)
        if (!p->slot_busy[i]) {
            p->slot_busy[i] = 1;
            slots[k++] = (uint16_t)i;
        }
    return true;
}

/* A pool-made copy of one task's output, shared by its parked dependents. */
typedef struct shared_out {
    size_t refs;
    uint8_t data[];
} shared_out;

static void put_shared(void *sh)
{
    shared_out *so = sh;
    if (so && --so->refs == 0)
        free(so);
}

/* Room for `need` jobs in the ring; the caller holds the lock. */
static int ring_reserve(tf_pool *p, size_t need)
{
    return tf_ring_grow((void **)&p->q, &p->qcap, &p->qhead, p->qn, need,
                        sizeof *p->q, 64);
}

static bool waits_for(const tf_job *j, uint32_t idx)
{
    for (uint32_t i = 0; i < j->ndeps; i++)
        if (j->deps[i].anchor == idx)
            return true;
    return false;
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

/* Report a parked job as given up (kind UNRUN or DROP); room is reserved. */
static void give_up(tf_pool *p, const tf_job *j, uint8_t kind)
{
    tf_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.idx = j->idx;
    ev.owner = j->owner;
    push_event(p, &ev);
}

/*
 * Task `idx` finished here (ok: well). Parked jobs waiting for it get its
 * output (one shared copy) and join the queue when nothing else is left to
 * wait for. If it failed, they and every job parked behind them are dropped
 * (DROP), as rank 0 does on its side. If the copy cannot be made they are
 * reported unrun, so that rank 0 sends them again, and the jobs behind them
 * are dropped. The caller holds the lock and has reserved room for npark
 * events; the ring always has room for every parked job.
 */
static void settle_parked(tf_pool *p, uint32_t idx, bool ok, const void *out,
                          uint32_t out_len)
{
    shared_out *so = NULL;
    bool copied = true;
    if (ok && out_len) {
        so = malloc(sizeof *so + out_len);
        copied = so != NULL;
        if (so) {
            so->refs = 0;
            memcpy(so->data, out, out_len);
        }
    }
    /*
     * Tasks whose followers must go, processed in turn; each parked job is
     * dropped at most once, so npark + 1 entries suffice.
     */
    uint32_t *gone = malloc((p->npark + 1) * sizeof *gone);
    uint32_t first = idx;
    size_t ngone = 0;
    if (gone)
        gone[ngone++] = idx;
    for (size_t g = 0; g < (gone ? ngone : 1); g++) {
        uint32_t anchor = gone ? gone[g] : first;
        size_t j = 0;
        for (size_t i = 0; i < p->npark; i++) {
            tf_job pj = p->park[i];
            if (!waits_for(&pj, anchor)) {
                p->park[j++] = pj;
                continue;
            }
            if (g == 0 && ok && copied) {
                for (uint32_t k = 0; k < pj.ndeps; k++) {
                    tf_dep *dp = &pj.deps[k];
                    if (dp->anchor != idx)
                        continue;
                    dp->anchor = TF_POOL_NO_ANCHOR;
                    dp->buf = so ? so->data : NULL;
                    dp->len = out_len;
                    dp->shared = so;
                    if (so)
                        so->refs++;
                    pj.nwait--;
                }
                if (pj.nwait) {
                    p->park[j++] = pj;
                } else {
                    pj.local = true;
                    p->q[(p->qhead + p->qn) % p->qcap] = pj;
                    p->qn++;
                }
                continue;
            }
            give_up(p, &pj, g == 0 && ok ? TF_EV_UNRUN : TF_EV_DROP);
            /*
             * Without memory for the list, followers stay parked waiting
             * for a task that will not finish here; the queue drop at the
             * end of the run reports them (rank 0 has unparked them, and
             * ignores that report).
             */
            if (gone)
                gone[ngone++] = pj.idx;
        }
        p->npark = j;
    }
    free(gone);
    if (so && !so->refs)
        free(so);
}

/*
 * Run one job without the lock and report it. The DONE event must not be
 * lost: if memory for it cannot be had, the thread retries, since rank 0
 * would otherwise wait forever for this task.
 */
static void run_job(tf_pool *p, const tf_job *job, const uint16_t *slots)
{
    struct tf_task_ctx ctx = {p, job, slots, NULL, 0};
    tf_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = TF_EV_DONE;
    ev.idx = job->idx;
    ev.attempt = job->attempt;
    ev.owner = job->owner;
    ev.slot = slots[0]; /* take_job hands out the lowest free slots first */
    ev.start_ns = now_ns();
    if (job->fn < *p->nfns) {
        const tf_fnent *fe = &(*p->fns)[job->fn];
        ev.status = fe->fn(&ctx, job->in, job->in_len, fe->user);
    } else {
        ev.status = TF_ENOENT;
    }
    ev.end_ns = now_ns();
    ev.data = ctx.out;
    ev.data_len = ctx.out_len;
    pthread_mutex_lock(&p->mu);
    /* Room for this DONE and for giving up on every parked job. */
    while (ev_reserve(p, 1 + p->npark)) {
        pthread_mutex_unlock(&p->mu);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&p->mu);
    }
    push_event(p, &ev);
    for (uint32_t i = 0; i < job->ndeps; i++)
        put_shared(job->deps[i].shared);
    if (p->npark)
        settle_parked(p, job->idx, ev.status == 0, ev.data, ev.data_len);
    p->free_slots += job->cores;
    for (unsigned k = 0; k < job->cores; k++)
        p->slot_busy[slots[k]] = 0;
    p->running--;
    if (p->qn)
        pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

static void *thread_main(void *arg)
{
    tf_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    uint16_t *slots = p->thread_slots + (size_t)p->threads_started++ * p->slots;
    for (;;) {
        tf_job job;
        while (!p->stopping && !take_job(p, &job, slots))
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping)
            break;
        pthread_mutex_unlock(&p->mu);
        run_job(p, &job, slots);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int tf_pool_init(tf_pool *p, unsigned slots, bool driver_runs,
                 const tf_fnent *const *fns, const uint32_t *nfns, int rank,
                 uint64_t gid_base)
{
    if (!slots || slots > UINT16_MAX)
        return TF_EINVAL;
    memset(p, 0, sizeof *p);
    unsigned nthreads = driver_runs ? slots - 1 : slots;
    p->slot_busy = calloc(slots, 1);
    p->main_slots = malloc(slots * sizeof *p->main_slots);
    p->thread_slots = malloc(((size_t)nthreads * slots + 1) * sizeof(uint16_t));
    if (!p->slot_busy || !p->main_slots || !p->thread_slots)
        goto fail_with_slots;
    p->slots = p->free_slots = slots;
    p->fns = fns;
    p->nfns = nfns;
    p->rank = rank;
    p->gid_base = gid_base;
    pthread_condattr_t ca;
    if (pthread_mutex_init(&p->mu, NULL))
        goto fail_with_slots;
    if (pthread_cond_init(&p->work_cv, NULL))
        goto fail_with_mutex;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&p->event_cv, &ca);
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
    }
    return 0;

fail_with_threads:
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
fail_with_event_cv:
    pthread_cond_destroy(&p->event_cv);
fail_with_work_cv:
    pthread_cond_destroy(&p->work_cv);
fail_with_mutex:
    pthread_mutex_destroy(&p->mu);
fail_with_slots:
    free(p->thread_slots);
    free(p->main_slots);
    free(p->slot_busy);
    return TF_ENOMEM;
}

void tf_pool_destroy(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    /* Events already taken (ev_spare) belong to the driver. */
    for (size_t i = 0; i < p->ev.n; i++) {
        free(p->ev.v[i].data);
        free(p->ev.v[i].deps);
    }
    free(p->ev.v);
    free(p->ev_spare.v);
    free(p->q);
    free(p->park);
    free(p->thread_slots);
    free(p->main_slots);
    free(p->slot_busy);
    pthread_cond_destroy(&p->event_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
}

int tf_pool_push(tf_pool *p, const tf_job *job)
{
    pthread_mutex_lock(&p->mu);
    /* The ring keeps room for every parked job, which joins it later. */
    if (ring_reserve(p, p->qn + p->npark + 1)) {
        pthread_mutex_unlock(&p->mu);
        return TF_ENOMEM;
    }
    if (job->nwait) {
        if (p->npark == p->pcap) {
            size_t ncap = p->pcap ? p->pcap * 2 : 64;
            tf_job *np = realloc(p->park, ncap * sizeof *np);
            if (!np) {
                pthread_mutex_unlock(&p->mu);
                return TF_ENOMEM;
            }
            p->park = np;
            p->pcap = ncap;
        }
        p->park[p->npark++] = *job;
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    p->q[(p->qhead + p->qn) % p->qcap] = *job;
    p->qn++;
    /* Wake a task thread only if one could take it: wake-ups cost ~10 us. */
    if (p->nthreads && p->running < p->nthreads)
        pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

bool tf_pool_run_one(tf_pool *p)
{
    tf_job job;
    pthread_mutex_lock(&p->mu);
    bool got = take_job(p, &job, p->main_slots);
    pthread_mutex_unlock(&p->mu);
    if (got)
        run_job(p, &job, p->main_slots);
    return got;
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

size_t tf_pool_load(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->qn + p->running + p->npark;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void tf_pool_drop_queued(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->npark && !ev_reserve(p, 1)) {
        give_up(p, &p->park[p->npark - 1], TF_EV_UNRUN);
        p->npark--;
    }
    while (p->qn) {
        tf_event ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = TF_EV_UNRUN;
        ev.idx = p->q[p->qhead].idx;
        ev.owner = p->q[p->qhead].owner;
        if (push_event(p, &ev))
            break; /* no memory: the rest stays queued and runs */
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qn--;
    }
    pthread_mutex_unlock(&p->mu);
}

/*
 * Whether queued job j must stay here: parked jobs wait for it, or it was
 * released from parking (rank 0 may still count it parked, and it may read
 * an output only this rank holds). Caller holds the lock.
 */
static bool must_stay(const tf_pool *p, const tf_job *j)
{
    if (j->local)
        return true;
    for (size_t i = 0; i < p->npark; i++)
        if (waits_for(&p->park[i], j->idx))
            return true;
    return false;
}

size_t tf_pool_steal(tf_pool *p, size_t max, unsigned max_cores, tf_job *out)
{
    pthread_mutex_lock(&p->mu);
    /*
     * Walk from the tail, marking what goes with idx TF_POOL_NO_ANCHOR in
     * place of a flag, then close the gaps keeping the order of the rest.
     */
    size_t n = 0;
    for (size_t i = p->qn; i-- > 0 && n < max;) {
        tf_job *j = &p->q[(p->qhead + i) % p->qcap];
        if (j->cores > max_cores || must_stay(p, j))
            continue;
        out[n++] = *j;
        j->idx = TF_POOL_NO_ANCHOR;
    }
    if (n) {
        size_t k = 0;
        for (size_t i = 0; i < p->qn; i++) {
            tf_job *j = &p->q[(p->qhead + i) % p->qcap];
            if (j->idx != TF_POOL_NO_ANCHOR)
                p->q[(p->qhead + k++) % p->qcap] = *j;
        }
        p->qn = k;
    }
    pthread_mutex_unlock(&p->mu);
    /* Taken from the tail: hand them over oldest first. */
    for (size_t i = 0; i < n / 2; i++) {
        tf_job t = out[i];
        out[i] = out[n - 1 - i];
        out[n - 1 - i] = t;
    }
    return n;
}

size_t tf_pool_stealable(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = 0;
    for (size_t i = 0; i < p->qn; i++)
        n += !must_stay(p, &p->q[(p->qhead + i) % p->qcap]);
    pthread_mutex_unlock(&p->mu);
    return n;
}

unsigned tf_pool_idle_slots(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned n = p->qn ? 0 : p->free_slots;
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

int tf_task_set_output(tf_task_ctx *ctx, const void *buf, size_t len)
{
    if (len > UINT32_MAX || (len && !buf))
        return TF_EINVAL;
    void *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return TF_ENOMEM;
        memcpy(copy, buf, len);
    }
    free(ctx->out);
    ctx->out = copy;
    ctx->out_len = (uint32_t)len;
    return 0;
}

int tf_task_submit(tf_task_ctx *ctx, const tf_task_desc *desc, tf_task_id *id)
{
    tf_pool *p = ctx->pool;
    if (!desc || desc->input_len > UINT32_MAX || desc->ndeps > UINT32_MAX ||
        desc->cores > UINT16_MAX || (desc->ndeps && !desc->deps) ||
        (desc->input_len && !desc->input) || desc->retries >= UINT8_MAX || !id)
        return TF_EINVAL;
    if (desc->fn >= *p->nfns)
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
