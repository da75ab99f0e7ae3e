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
    free(q->tab);
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

/* ---- anchors awaited: buckets by anchor ---- */

/* The high bits of a Fibonacci product: anchors a power of two apart spread. */
static size_t hash(uint32_t anchor, size_t cap)
{
    return (size_t)((anchor * 0x9E3779B97F4A7C15ull) >>
                    (64 - __builtin_ctzll((unsigned long long)cap)));
}

/* The bucket of `anchor`, or the empty one where it would go (tcap > 0). */
static tf_wq_bucket *probe(const tf_wq *q, uint32_t anchor)
{
    size_t i = hash(anchor, q->tcap);
    while (q->tab[i].live && q->tab[i].anchor != anchor)
        i = (i + 1) & (q->tcap - 1);
    return &q->tab[i];
}

static tf_wq_bucket *find(const tf_wq *q, uint32_t anchor)
{
    if (!q->tn)
        return NULL;
    tf_wq_bucket *b = probe(q, anchor);
    return b->live ? b : NULL;
}

/* Empty bucket b; backward-shift deletion keeps every probe chain whole. */
static void unbucket(tf_wq *q, tf_wq_bucket *b)
{
    size_t i = (size_t)(b - q->tab), mask = q->tcap - 1;
    q->tab[i].live = 0;
    q->tn--;
    for (size_t j = (i + 1) & mask; q->tab[j].live; j = (j + 1) & mask) {
        size_t h = hash(q->tab[j].anchor, q->tcap);
        /* Its probe started at or before the hole: it may move up. */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            q->tab[i] = q->tab[j];
            q->tab[j].live = 0;
            i = j;
        }
    }
}

/* Chain entry e (not settled) to its anchor's bucket; the table has room. */
static void chain(tf_wq *q, uint32_t e)
{
    tf_wq_bucket *b = probe(q, q->anc[e].anchor);
    q->anc[e].next = NO_ANCHOR;
    if (!b->live) {
        *b = (tf_wq_bucket){q->anc[e].anchor, e, e, 0};
        q->tn++;
    } else {
        q->anc[b->tail].next = e;
        b->tail = e;
    }
    b->live++;
}

/* A table at most half full with `more` buckets added, empty or not. */
static int reserve_buckets(tf_wq *q, size_t more)
{
    if (2 * (q->tn + more) <= q->tcap)
        return 0;
    size_t ncap = q->tcap ? q->tcap : 64;
    while (2 * (q->tn + more) > ncap)
        ncap *= 2;
    tf_wq_bucket *nt = calloc(ncap, sizeof *nt), *old = q->tab;
    if (!nt)
        return TF_ENOMEM;
    size_t ocap = q->tcap;
    q->tab = nt;
    q->tcap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].live)
            *probe(q, old[i].anchor) = old[i];
    free(old);
    return 0;
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
    if (q->plen >= UINT32_MAX || q->nanc + nanchors >= UINT32_MAX ||
        tf_grow((void **)&q->park, &q->pcap, q->plen + 1, sizeof *q->park,
                64) ||
        tf_grow((void **)&q->anc, &q->acap, q->nanc + nanchors,
                sizeof *q->anc, 256) ||
        reserve_buckets(q, nanchors))
        return TF_ENOMEM;
    uint32_t pos = (uint32_t)q->plen++;
    q->park[pos] = (tf_wq_parked){*j, nanchors, (uint32_t)q->nanc, nanchors};
    q->npark++;
    for (uint32_t k = 0; k < nanchors; k++) {
        uint32_t e = (uint32_t)q->nanc++;
        q->anc[e] = (tf_wq_anc){anchors[k], NO_ANCHOR, pos, 0};
        chain(q, e);
    }
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

bool tf_wq_awaited(const tf_wq *q, uint32_t idx)
{
    return find(q, idx) != NULL;
}

static void act(tf_wq *q, uint32_t kind, const tf_wq_job *j, uint32_t anchor)
{
    q->acts[q->nacts++] = (tf_wq_act){kind, j->ref, j->idx, anchor};
}

/*
 * Parked jobs leave or are released out of order, so park[] and anc[]
 * keep dead entries; rewrite both, and the chains, when the dead
 * outnumber the live. A job keeps only its entries not yet settled; the
 * chains are made again in arrival order. No memory is needed: the
 * buckets are as many as before, or fewer.
 */
static void compact(tf_wq *q)
{
    if (!q->npark) {
        q->plen = q->nanc = 0;
        return;
    }
    if (q->plen <= 2 * q->npark + 64 && q->nanc <= 2 * q->live_anc + 256)
        return;
    size_t np = 0, na = 0;
    for (size_t i = 0; i < q->plen; i++) {
        tf_wq_parked p = q->park[i];
        if (!p.nwait)
            continue;
        uint32_t off = (uint32_t)na;
        for (uint32_t k = 0; k < p.nanc; k++) {
            tf_wq_anc a = q->anc[p.off + k];
            if (!a.settled) {
                a.park = (uint32_t)np;
                q->anc[na++] = a;
            }
        }
        p.off = off;
        p.nanc = (uint32_t)na - off;
        q->park[np++] = p;
    }
    q->plen = np;
    q->nanc = na;
    memset(q->tab, 0, q->tcap * sizeof *q->tab);
    q->tn = 0;
    for (size_t e = 0; e < na; e++)
        chain(q, (uint32_t)e);
}

/*
 * Parked job p leaves: its entries not settled stop counting for their
 * anchors (a bucket left with none goes).
 */
static void leave(tf_wq *q, tf_wq_parked *p)
{
    for (uint32_t k = 0; k < p->nanc; k++) {
        tf_wq_anc *a = &q->anc[p->off + k];
        if (a->settled)
            continue;
        a->settled = 1;
        tf_wq_bucket *b = find(q, a->anchor);
        if (b && !--b->live)
            unbucket(q, b);
    }
    q->live_anc -= p->nwait;
    p->nwait = 0;
    q->npark--;
}

/*
 * Task `anchor` ended (first: the job that ran; later: jobs dropped because
 * of it). Each parked job waiting for it is filled and maybe released
 * (first round, OK), or leaves and is added to the list whose own
 * followers go next. Its chain is walked once and its bucket goes.
 */
static void settle(tf_wq *q, uint32_t anchor, bool first,
                   tf_wq_outcome outcome, size_t *ngone)
{
    tf_wq_bucket *b = find(q, anchor);
    if (!b)
        return;
    uint32_t e = b->head;
    unbucket(q, b);
    while (e != NO_ANCHOR) {
        /* A job naming the anchor m times has m entries in a row. */
        uint32_t pos = q->anc[e].park, m = 0;
        for (; e != NO_ANCHOR && q->anc[e].park == pos; e = q->anc[e].next)
            if (!q->anc[e].settled) {
                q->anc[e].settled = 1;
                m++;
            }
        tf_wq_parked *p = &q->park[pos];
        if (!m) /* the job left already */
            continue;
        if (first && outcome == TF_WQ_OK) {
            act(q, TF_WQ_FILL, &p->job, anchor);
            p->nwait -= m;
            q->live_anc -= m;
            if (p->nwait)
                continue;
            q->npark--;
            p->job.local = true;
            enqueue(q, &p->job);
        } else {
            act(q,
                first && outcome == TF_WQ_NO_OUTPUT ? TF_WQ_UNRUN : TF_WQ_DROP,
                &p->job, NO_ANCHOR);
            p->nwait -= m;
            q->live_anc -= m;
            leave(q, p);
            q->scratch[(*ngone)++] = p->job.idx;
        }
    }
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
    compact(q);
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
    while (q->plen)
        if (q->park[--q->plen].nwait)
            act(q, TF_WQ_UNRUN, &q->park[q->plen].job, NO_ANCHOR);
    for (size_t i = 0; i < q->qn; i++)
        act(q, TF_WQ_UNRUN, at(q, i), NO_ANCHOR);
    q->qn = q->npark = 0;
    q->nanc = q->live_anc = 0;
    if (q->tab)
        memset(q->tab, 0, q->tcap * sizeof *q->tab);
    q->tn = 0;
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
    for (size_t i = 0, k = q->qn; i < q->plen; i++)
        if (q->park[i].nwait)
            v[k++] = q->park[i].job.idx;
    qsort(v, n, sizeof *v, cmp_u32);
    bool ok = true;
    for (size_t i = 1; i < n && ok; i++)
        if (v[i] == v[i - 1])
            ok = FAIL_("task %u held twice", v[i]);
    free(v);
    return ok;
}

/* Parked jobs: their waits, their entries, and the counts of both. */
static bool parked_ok(const tf_wq *q, char *why, size_t len)
{
    size_t live = 0, n = 0;
    for (size_t i = 0; i < q->plen; i++) {
        const tf_wq_parked *p = &q->park[i];
        if (p->off + p->nanc > q->nanc)
            return FAIL_("parked task %u: anchors at %u + %u of %zu",
                         p->job.idx, p->off, p->nanc, q->nanc);
        uint32_t open = 0;
        for (uint32_t k = 0; k < p->nanc; k++) {
            const tf_wq_anc *a = &q->anc[p->off + k];
            if (a->park != i)
                return FAIL_("parked task %u: entry %u names place %u, not "
                             "%zu", p->job.idx, p->off + k, a->park, i);
            open += !a->settled;
        }
        if (open != p->nwait)
            return FAIL_("parked task %u waits for %u anchors, %u entries "
                         "not settled", p->job.idx, p->nwait, open);
        n += p->nwait != 0;
        live += p->nwait;
    }
    if (n != q->npark)
        return FAIL_("%zu jobs parked, %zu counted", n, q->npark);
    if (live != q->live_anc)
        return FAIL_("%zu anchors of parked jobs, %zu counted", live,
                     q->live_anc);
    return true;
}

/*
 * Each anchor awaited has one bucket, whose chain holds each of the
 * entries not settled that name it (and maybe settled ones), and counts
 * them; no bucket is empty.
 */
static bool buckets_ok(const tf_wq *q, char *why, size_t len)
{
    size_t used = 0;
    for (size_t i = 0; i < q->tcap; i++) {
        const tf_wq_bucket *b = &q->tab[i];
        if (!b->live)
            continue;
        used++;
        if (find(q, b->anchor) != b)
            return FAIL_("anchor %u: its bucket is not where a probe ends",
                         b->anchor);
        uint32_t open = 0, last = NO_ANCHOR;
        for (uint32_t e = b->head; e != NO_ANCHOR; e = q->anc[e].next) {
            if (e >= q->nanc || q->anc[e].anchor != b->anchor)
                return FAIL_("anchor %u: chain entry %u is not its own",
                             b->anchor, e);
            open += !q->anc[e].settled;
            last = e;
        }
        if (last != b->tail || open != b->live)
            return FAIL_("anchor %u: %u entries waiting in its chain, %u "
                         "counted (tail %u, last %u)",
                         b->anchor, open, b->live, b->tail, last);
    }
    if (used != q->tn)
        return FAIL_("%zu buckets in use, %zu counted", used, q->tn);
    for (size_t e = 0; e < q->nanc; e++)
        if (!q->anc[e].settled && !find(q, q->anc[e].anchor))
            return FAIL_("entry %zu waits for anchor %u, which has no "
                         "bucket", e, q->anc[e].anchor);
    return true;
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
    if (!parked_ok(q, why, len) || !buckets_ok(q, why, len))
        return false;
    for (size_t i = 0; i < q->qn; i++)
        if (at(q, i)->cores == 0 || at(q, i)->cores > q->slots)
            return FAIL_("queued task %u needs %u of %u slots", at(q, i)->idx,
                         at(q, i)->cores, q->slots);
    return distinct(q, why, len);
}
