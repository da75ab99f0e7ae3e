/* Task runner: job ring, slot accounting, task threads, the tf_task_* context API. */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Append an event; the caller holds the lock. */
static int push_event(tf_pool *p, const tf_event *ev)
{
    tf_evvec *v = &p->ev;
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 256;
        tf_event *nv = realloc(v->v, ncap * sizeof *nv);
        if (!nv)
            return TF_ENOMEM;
        v->v = nv;
        v->cap = ncap;
    }
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
    ev.owner = job->owner;
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
    while (push_event(p, &ev)) {
        pthread_mutex_unlock(&p->mu);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&p->mu);
    }
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
    if (p->qn == p->qcap) {
        size_t ncap = p->qcap ? p->qcap * 2 : 64;
        tf_job *nq = malloc(ncap * sizeof *nq);
        if (!nq) {
            pthread_mutex_unlock(&p->mu);
            return TF_ENOMEM;
        }
        for (size_t i = 0; i < p->qn; i++)
            nq[i] = p->q[(p->qhead + i) % p->qcap];
        free(p->q);
        p->q = nq;
        p->qhead = 0;
        p->qcap = ncap;
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
    if (!p->nthreads) {
        ts.tv_sec = ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        nanosleep(&ts, NULL);
        return;
    }
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
    size_t n = p->qn + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void tf_pool_drop_queued(tf_pool *p)
{
    pthread_mutex_lock(&p->mu);
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
