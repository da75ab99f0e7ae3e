/* The worker rank's policy machine: report timing, steal rounds and back-off, what a victim gives. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "taskfarm_status.h"

int tf_worker_init(tf_worker *w, const tf_worker_cfg *cfg, const tf_loc *loc,
                   uint32_t first, uint32_t n, uint32_t self,
                   const uint32_t *host, size_t nhost, uint64_t seed)
{
    if (!cfg || !loc || self < first || self >= n || nhost >= n - first)
        return TF_EINVAL;
    memset(w, 0, sizeof *w);
    w->cfg = *cfg;
    if (!w->cfg.report_age_ns)
        w->cfg.report_age_ns = TF_WORKER_REPORT_AGE_NS;
    if (!w->cfg.near && !w->cfg.far) {
        w->cfg.near = TF_WORKER_NEAR;
        w->cfg.far = TF_WORKER_FAR;
    }
    w->self = self;
    w->first = first;
    w->n = n;
    w->loc = loc;
    w->backoff = TF_WORKER_BACKOFF_MIN_NS;
    w->rng = tf_rng_seeded(seed);
    if (!w->cfg.steal)
        return 0;
    w->nhost = nhost;
    w->nfar = (n - first - 1) - nhost;
    size_t hn = nhost ? nhost : 1;
    w->host = malloc(hn * sizeof *w->host);
    w->order = malloc(hn * sizeof *w->order);
    w->round = malloc((w->cfg.near + w->cfg.far + 1) * sizeof *w->round);
    if (!w->host || !w->order || !w->round) {
        tf_worker_free(w);
        return TF_ENOMEM;
    }
    if (nhost)
        memcpy(w->host, host, nhost * sizeof *host);
    return 0;
}

void tf_worker_free(tf_worker *w)
{
    free(w->host);
    free(w->order);
    free(w->round);
    free(w->shunned);
    w->host = w->order = w->round = w->shunned = NULL;
}

void tf_worker_heard(tf_worker *w, bool dry)
{
    w->rank0_dry = dry;
    if (dry)
        w->not_before = 0; /* news: ask peers again at once */
}

void tf_worker_recorded(tf_worker *w, size_t ndone, size_t nother,
                        uint64_t now)
{
    if (!ndone && !nother)
        return;
    if (!w->nrec)
        w->oldest_ns = now;
    w->nrec += ndone + nother;
    w->ndone += ndone;
}

void tf_worker_reported(tf_worker *w)
{
    w->nrec = w->ndone = 0;
    w->oldest_ns = 0;
    w->urgent = false;
}

size_t tf_worker_give_count(const tf_worker *w, size_t stealable)
{
    if (!w->cfg.steal || w->halted || w->stopping)
        return 0;
    return tf_steal_amount((uint32_t)(stealable > UINT32_MAX ? UINT32_MAX
                                                             : stealable));
}

void tf_worker_gave(tf_worker *w, size_t n, uint64_t now)
{
    if (!n)
        return;
    tf_worker_recorded(w, 0, n, now);
    w->urgent = true;
}

/* A round ended in vain: wait before the next, twice as long as the last. */
static void back_off(tf_worker *w, uint64_t now)
{
    w->nround = w->next = 0;
    w->not_before = now + w->backoff;
    w->backoff = w->backoff * 2 > TF_WORKER_BACKOFF_MAX_NS
                     ? TF_WORKER_BACKOFF_MAX_NS
                     : w->backoff * 2;
}

void tf_worker_answered(tf_worker *w, size_t got, uint64_t now)
{
    if (!w->asking)
        return; /* the answer of a victim given up on: taken, not counted */
    w->asking = false;
    if (got) {
        /* It had work: ask it again first next time. */
        w->backoff = TF_WORKER_BACKOFF_MIN_NS;
        w->steals++;
        w->stolen += got;
        return;
    }
    if (++w->next >= w->nround)
        back_off(w, now);
}

void tf_worker_halt(tf_worker *w) { w->halted = true; }
void tf_worker_stop(tf_worker *w) { w->stopping = true; }

/* A quarter of what was held, done or waiting, makes a report. */
static size_t threshold(const tf_worker *w, const tf_worker_view *v)
{
    size_t t = (v->held + w->ndone) / 4;
    return t ? t : 1;
}

size_t tf_worker_budget(const tf_worker *w, const tf_worker_view *v)
{
    size_t t = threshold(w, v);
    return t > w->ndone ? t - w->ndone : 0;
}

static bool is_shunned(const tf_worker *w, uint32_t r)
{
    for (size_t i = 0; i < w->nshunned; i++)
        if (w->shunned[i] == r)
            return true;
    return false;
}

/*
 * This round's victims: the nearest workers of this host (tiers reshuffled
 * each round), then random workers elsewhere; none shunned.
 */
static void plan_round(tf_worker *w)
{
    size_t k = 0;
    size_t nh = tf_steal_order_of(w->loc, w->host, w->nhost, w->self, &w->rng,
                                  w->order);
    for (size_t i = 0; i < nh && k < w->cfg.near; i++)
        if (!is_shunned(w, w->order[i]))
            w->round[k++] = w->order[i];
    /* Rejection sampling, bounded: most others might be shunned. */
    for (uint32_t f = 0, tries = 0; w->nfar && f < w->cfg.far && tries < 64;
         tries++) {
        uint32_t r = w->first + tf_rng_below(&w->rng, w->n - w->first);
        if (r == w->self || w->loc[r].host == w->loc[w->self].host ||
            is_shunned(w, r))
            continue;
        w->round[k++] = r;
        f++;
    }
    w->nround = k;
    w->next = 0;
}

static void emit(tf_worker *w, uint32_t kind, uint32_t rank)
{
    w->acts[w->nacts++] = (tf_worker_act){kind, rank};
}

/* The victim asked did not answer in time: give it up for good. */
static int shun(tf_worker *w, uint64_t now)
{
    uint32_t r = w->round[w->next];
    if (tf_grow((void **)&w->shunned, &w->shcap, w->nshunned + 1,
                sizeof *w->shunned, 8))
        return TF_ENOMEM; /* asked again next round: harmless */
    w->shunned[w->nshunned++] = r;
    emit(w, TF_WK_SHUN, r);
    w->asking = false;
    if (++w->next >= w->nround)
        back_off(w, now);
    return 0;
}

int tf_worker_lost(tf_worker *w, uint32_t r, uint64_t now)
{
    /* Its answer will never come: the next victim is asked at the next tick. */
    if (w->asking && w->round[w->next] == r) {
        w->asking = false;
        if (++w->next >= w->nround)
            back_off(w, now);
    }
    if (is_shunned(w, r))
        return 0;
    if (tf_grow((void **)&w->shunned, &w->shcap, w->nshunned + 1,
                sizeof *w->shunned, 8))
        return TF_ENOMEM;
    w->shunned[w->nshunned++] = r;
    return 0;
}

static bool may_steal(const tf_worker *w, const tf_worker_view *v)
{
    return w->cfg.steal && !w->asking && w->rank0_dry && v->idle_slots &&
           !w->stopping && !w->halted && (w->nhost || w->nfar);
}

static uint64_t earliest(uint64_t a, uint64_t b) { return a < b ? a : b; }

uint64_t tf_worker_tick(tf_worker *w, const tf_worker_view *v, uint64_t now)
{
    w->nacts = 0;
    uint64_t wake = UINT64_MAX;
    if (w->nrec) {
        uint64_t due = w->oldest_ns + w->cfg.report_age_ns;
        if (w->ndone >= threshold(w, v) || !v->held || w->urgent || now > due)
            emit(w, TF_WK_REPORT, 0);
        else
            wake = due + 1;
    }
    if (w->asking && w->cfg.answer_timeout_ns) {
        uint64_t due = w->asked_at + w->cfg.answer_timeout_ns;
        if (now > due)
            shun(w, now);
        else
            wake = earliest(wake, due + 1);
    }
    if (!may_steal(w, v))
        return wake;
    if (now < w->not_before)
        return earliest(wake, w->not_before);
    if (w->next >= w->nround)
        plan_round(w);
    if (!w->nround) { /* everyone shunned */
        back_off(w, now);
        return earliest(wake, w->not_before);
    }
    emit(w, TF_WK_ASK, w->round[w->next]);
    w->asking = true;
    w->asked_at = now;
    if (w->cfg.answer_timeout_ns)
        wake = earliest(wake, now + w->cfg.answer_timeout_ns + 1);
    return wake;
}

#define FAIL_(...) (snprintf(why, len, __VA_ARGS__), false)

bool tf_worker_check(const tf_worker *w, char *why, size_t len)
{
    if (w->ndone > w->nrec)
        return FAIL_("%zu DONE records of %zu pending", w->ndone, w->nrec);
    if (w->urgent && !w->nrec)
        return FAIL_("a report is urgent with nothing to say");
    if (w->next > w->nround || w->nround > w->cfg.near + w->cfg.far)
        return FAIL_("victim %zu of a round of %zu (at most %u)", w->next,
                     w->nround, w->cfg.near + w->cfg.far);
    if (w->asking && w->next >= w->nround)
        return FAIL_("asking victim %zu of a round of %zu", w->next,
                     w->nround);
    if (w->backoff < TF_WORKER_BACKOFF_MIN_NS ||
        w->backoff > TF_WORKER_BACKOFF_MAX_NS)
        return FAIL_("back-off %llu ns out of bounds",
                     (unsigned long long)w->backoff);
    if (w->cfg.steal && w->nhost + w->nfar + 1 != w->n - w->first)
        return FAIL_("%zu workers here and %zu elsewhere, of %u", w->nhost,
                     w->nfar, w->n - w->first);
    for (size_t i = 0; i < w->nround; i++) {
        uint32_t r = w->round[i];
        if (r == w->self || r < w->first || r >= w->n)
            return FAIL_("victim %u of worker %u is no other worker", r,
                         w->self);
        if (i >= w->next && is_shunned(w, r))
            return FAIL_("shunned rank %u still to be asked", r);
    }
    for (size_t i = 0; i < w->nhost; i++)
        if (w->host[i] == w->self ||
            w->loc[w->host[i]].host != w->loc[w->self].host)
            return FAIL_("rank %u listed on the host of %u", w->host[i],
                         w->self);
    return true;
}
