/* The tasks a worker rank holds: FIFO ring, parking behind local anchors, slot accounting, steal selection. */
#include "wqueue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "taskfarm_status.h"

/* Marks a queued job taken by tf_wq_steal until the ring is compacted. */
#define TAKEN UINT32_MAX
/* The anchor field of actions other than FILL. */
#define NO_ANCHOR UINT32_MAX

int tf_wq_init(tf_wq *q, unsigned slots)
{
    if (!slots || slots > UINT16_MAX)
        return TF_EINVAL;
    memset(q, 0, sizeof *q);
    q->slot_busy = calloc(slots, 1);
    if (!q->slot_busy)
        return TF_ENOMEM;
    q->slots = q->free_slots = slots;
    return 0;
}

void tf_wq_free(tf_wq *q)
{
    free(q->q);
    free(q->park);
    free(q->anc);
    free(q->slot_busy);
    free(q->acts);
    free(q->scratch);
    memset(q, 0, sizeof *q);
}

static tf_wq_job *at(const tf_wq *q, size_t i)
{
    return &q->q[(q->qhead + i) % q->qcap];
}

/* Append to the ring, which has room (qcap >= qn + npark + batched always). */
static void enqueue(tf_wq *q, const tf_wq_job *j)
{
    *at(q, q->qn) = *j;
    q->qn++;
}

int tf_wq_push(tf_wq *q, const tf_wq_job *j, const uint32_t *anchors,
               uint32_t nanchors)
{
    /* The ring keeps room for every parked job, which joins it later. */
    if (tf_ring_grow((void **)&q->q, &q->qcap, &q->qhead, q->qn,
                     q->qn + q->npark + q->batched + 1, sizeof *q->q, 64))
        return TF_ENOMEM;
    if (!nanchors) {
        enqueue(q, j);
        return 0;
    }
    if (tf_grow((void **)&q->park, &q->pcap, q->npark + 1, sizeof *q->park,
                64) ||
        tf_grow((void **)&q->anc, &q->acap, q->nanc + nanchors,
                sizeof *q->anc, 256))
        return TF_ENOMEM;
    q->park[q->npark++] = (tf_wq_parked){*j, nanchors, (uint32_t)q->nanc,
                                         nanchors};
    memcpy(q->anc + q->nanc, anchors, nanchors * sizeof *anchors);
    q->nanc += nanchors;
    q->live_anc += nanchors;
    return 0;
}

bool tf_wq_start(tf_wq *q, tf_wq_job *j, uint16_t *slots)
{
    if (!q->qn || at(q, 0)->cores > q->free_slots)
        return false;
    *j = *at(q, 0);
    q->qhead = (q->qhead + 1) % q->qcap;
    q->qn--;
    q->free_slots -= j->cores;
    q->running++;
    for (unsigned i = 0, k = 0; k < j->cores; i++)
        if (!q->slot_busy[i]) {
            q->slot_busy[i] = 1;
            slots[k++] = (uint16_t)i;
        }
    return true;
}

size_t tf_wq_start_batch(tf_wq *q, size_t max, tf_wq_job *out,
                         uint16_t *slots)
{
    if (!max || !tf_wq_start(q, out, slots))
        return 0;
    size_t n = 1;
    if (out[0].cores != 1)
        return n;
    while (n < max && q->qn && at(q, 0)->cores == 1) {
        out[n++] = *at(q, 0);
        q->qhead = (q->qhead + 1) % q->qcap;
        q->qn--;
    }
    q->running += (unsigned)(n - 1);
    q->batched += n - 1;
    return n;
}

void tf_wq_unstart(tf_wq *q, const tf_wq_job *jobs, size_t n)
{
    /* Room is kept for them (batched counts in the ring's reserve). */
    for (size_t i = n; i-- > 0;) {
        q->qhead = (q->qhead + q->qcap - 1) % q->qcap;
        q->q[q->qhead] = jobs[i];
        q->qn++;
    }
    q->running -= (unsigned)n;
    q->batched -= n;
}

/* How many of parked job p's anchors are task idx. */
static uint32_t waits(const tf_wq *q, const tf_wq_parked *p, uint32_t idx)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < p->nanc; k++)
        n += q->anc[p->off + k] == idx;
    return n;
}

bool tf_wq_awaited(const tf_wq *q, uint32_t idx)
{
    for (size_t i = 0; i < q->npark; i++)
        if (waits(q, &q->park[i], idx))
            return true;
    return false;
}

static void act(tf_wq *q, uint32_t kind, const tf_wq_job *j, uint32_t anchor)
{
    q->acts[q->nacts++] = (tf_wq_act){kind, j->ref, j->idx, anchor};
}

/*
 * Parked jobs leave or are released out of order, so the anchors array
 * keeps dead entries; rewrite it when they outnumber the live ones.
 */
static void compact_anchors(tf_wq *q)
{
    if (!q->npark) {
        q->nanc = 0;
        return;
    }
    if (q->nanc <= 2 * q->live_anc + 256)
        return;
    size_t n = 0;
    for (size_t i = 0; i < q->npark; i++) {
        tf_wq_parked *p = &q->park[i];
        memmove(q->anc + n, q->anc + p->off, p->nanc * sizeof *q->anc);
        p->off = (uint32_t)n;
        n += p->nanc;
    }
    q->nanc = n;
}

/*
 * Task `anchor` ended (first: the job that ran; later: jobs dropped because
 * of it). Each parked job waiting for it is filled and maybe released
 * (first round, OK), or leaves and is added to the list whose own
 * followers go next.
 */
static void settle(tf_wq *q, uint32_t anchor, bool first,
                   tf_wq_outcome outcome, size_t *ngone)
{
    size_t keep = 0;
    for (size_t i = 0; i < q->npark; i++) {
        tf_wq_parked p = q->park[i];
        uint32_t m = waits(q, &p, anchor);
        if (!m) {
            q->park[keep++] = p;
        } else if (first && outcome == TF_WQ_OK) {
            act(q, TF_WQ_FILL, &p.job, anchor);
            p.nwait -= m;
            if (p.nwait) {
                q->park[keep++] = p;
                continue;
            }
            q->live_anc -= p.nanc;
            p.job.local = true;
            enqueue(q, &p.job);
        } else {
            act(q,
                first && outcome == TF_WQ_NO_OUTPUT ? TF_WQ_UNRUN : TF_WQ_DROP,
                &p.job, NO_ANCHOR);
            q->live_anc -= p.nanc;
            q->scratch[(*ngone)++] = p.job.idx;
        }
    }
    q->npark = keep;
}

/* At most one action per parked job, and each leaves at most once. */
static int reserve_settle(tf_wq *q)
{
    if (q->npark &&
        (tf_grow((void **)&q->acts, &q->actcap, q->nacts + q->npark,
                 sizeof *q->acts, 64) ||
         tf_grow((void **)&q->scratch, &q->scap, q->npark + 1,
                 sizeof *q->scratch, 64)))
        return TF_ENOMEM;
    return 0;
}

/* Anchor `first` ended: its followers, then theirs if they leave. */
static void settle_all(tf_wq *q, uint32_t first, tf_wq_outcome outcome)
{
    if (!q->npark)
        return;
    size_t ngone = 1;
    q->scratch[0] = first;
    for (size_t g = 0; g < ngone && q->npark; g++)
        settle(q, q->scratch[g], g == 0, outcome, &ngone);
    compact_anchors(q);
}

int tf_wq_end(tf_wq *q, const tf_wq_job *j, const uint16_t *slots,
              tf_wq_outcome outcome)
{
    if (reserve_settle(q))
        return TF_ENOMEM;
    for (unsigned k = 0; k < j->cores; k++)
        q->slot_busy[slots[k]] = 0;
    q->free_slots += j->cores;
    q->running--;
    settle_all(q, j->idx, outcome);
    return 0;
}

int tf_wq_end_batched(tf_wq *q, const tf_wq_job *j, tf_wq_outcome outcome)
{
    if (reserve_settle(q))
        return TF_ENOMEM;
    q->running--;
    q->batched--;
    settle_all(q, j->idx, outcome);
    return 0;
}

int tf_wq_arrive(tf_wq *q, uint32_t anchor, tf_wq_outcome outcome)
{
    if (reserve_settle(q))
        return TF_ENOMEM;
    settle_all(q, anchor, outcome);
    return 0;
}

int tf_wq_drop_all(tf_wq *q)
{
    if (tf_grow((void **)&q->acts, &q->actcap, q->nacts + q->npark + q->qn,
                sizeof *q->acts, 64))
        return TF_ENOMEM;
    while (q->npark)
        act(q, TF_WQ_UNRUN, &q->park[--q->npark].job, NO_ANCHOR);
    for (size_t i = 0; i < q->qn; i++)
        act(q, TF_WQ_UNRUN, at(q, i), NO_ANCHOR);
    q->qn = 0;
    q->nanc = q->live_anc = 0;
    return 0;
}

/* Whether queued job j must stay here (see tf_wq_steal). */
static bool must_stay(const tf_wq *q, const tf_wq_job *j)
{
    return j->local || tf_wq_awaited(q, j->idx);
}

size_t tf_wq_steal(tf_wq *q, size_t max, unsigned max_cores, tf_wq_job *out)
{
    /* Walk from the tail marking what goes, then close the gaps in order. */
    size_t n = 0;
    for (size_t i = q->qn; i-- > 0 && n < max;) {
        tf_wq_job *j = at(q, i);
        if (j->cores > max_cores || must_stay(q, j))
            continue;
        out[n++] = *j;
        j->idx = TAKEN;
    }
    if (n) {
        size_t k = 0;
        for (size_t i = 0; i < q->qn; i++)
            if (at(q, i)->idx != TAKEN)
                *at(q, k++) = *at(q, i);
        q->qn = k;
    }
    /* Taken from the tail: hand them over oldest first. */
    for (size_t i = 0; i < n / 2; i++) {
        tf_wq_job t = out[i];
        out[i] = out[n - 1 - i];
        out[n - 1 - i] = t;
    }
    return n;
}

size_t tf_wq_stealable(const tf_wq *q)
{
    size_t n = 0;
    for (size_t i = 0; i < q->qn; i++)
        n += !must_stay(q, at(q, i));
    return n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

#define FAIL_(...)                                                             \
    (snprintf(why, len, __VA_ARGS__), false)

/* No task held twice (queued or parked); skipped without memory. */
static bool distinct(const tf_wq *q, char *why, size_t len)
{
    size_t n = q->qn + q->npark;
    uint32_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return true;
    for (size_t i = 0; i < q->qn; i++)
        v[i] = at(q, i)->idx;
    for (size_t i = 0; i < q->npark; i++)
        v[q->qn + i] = q->park[i].job.idx;
    qsort(v, n, sizeof *v, cmp_u32);
    bool ok = true;
    for (size_t i = 1; i < n && ok; i++)
        if (v[i] == v[i - 1])
            ok = FAIL_("task %u held twice", v[i]);
    free(v);
    return ok;
}

bool tf_wq_check(const tf_wq *q, char *why, size_t len)
{
    unsigned busy = 0;
    for (unsigned i = 0; i < q->slots; i++)
        busy += q->slot_busy[i] != 0;
    if (busy + q->free_slots != q->slots)
        return FAIL_("%u busy + %u free slots != %u", busy, q->free_slots,
                     q->slots);
    if (q->batched > q->running)
        return FAIL_("%zu batched of %u running", q->batched, q->running);
    /* Each batch holds the slot of its first job. */
    unsigned own = q->running - (unsigned)q->batched;
    if (own > busy || (own == 0) != (busy == 0))
        return FAIL_("%u running jobs (%zu of them batched) on %u busy slots",
                     q->running, q->batched, busy);
    if (q->qcap < q->qn + q->npark + q->batched)
        return FAIL_("ring of %zu cannot take %zu queued, %zu parked and %zu "
                     "batched", q->qcap, q->qn, q->npark, q->batched);
    size_t live = 0;
    for (size_t i = 0; i < q->npark; i++) {
        const tf_wq_parked *p = &q->park[i];
        if (!p->nwait || p->nwait > p->nanc || p->off + p->nanc > q->nanc)
            return FAIL_("parked task %u: waits for %u of %u anchors at %u "
                         "(of %zu)",
                         p->job.idx, p->nwait, p->nanc, p->off, q->nanc);
        live += p->nanc;
    }
    if (live != q->live_anc)
        return FAIL_("%zu anchors of parked jobs, %zu counted", live,
                     q->live_anc);
    for (size_t i = 0; i < q->qn; i++)
        if (at(q, i)->cores == 0 || at(q, i)->cores > q->slots)
            return FAIL_("queued task %u needs %u of %u slots", at(q, i)->idx,
                         at(q, i)->cores, q->slots);
    return distinct(q, why, len);
}
