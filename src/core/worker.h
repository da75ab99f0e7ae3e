/* The worker rank's policy: when it reports to rank 0, whom it asks for work and when, how much it gives a thief. */
#ifndef TF_CORE_WORKER_H
#define TF_CORE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "steal.h"

/*
 * A pure state machine like tf_sched: events go in as calls, decisions come
 * out as actions the driver carries out, time comes in as an argument and
 * the only randomness is a seeded tf_rng. The worker ranks of the runtime
 * (src/net/work_loop.c) and the simulator's workers (src/sim) drive the
 * same code, so a simulated worker reports and steals exactly as a real
 * one, and a seeded run picks the same victims on both. The tasks a worker
 * holds are a tf_wq (wqueue.h); this machine reads them through a
 * tf_worker_view the driver takes (under its lock, where threads share the
 * queue).
 *
 * Reports: a worker sends rank 0 what it has to say (DONE, UNRUN, SUBMIT,
 * MOVED records) after a quarter of what it held has finished (so rank 0
 * refills while three quarters keep it busy), when it holds nothing, when
 * it gave tasks to a thief (rank 0 must learn of every move), or when the
 * oldest record is report_age_ns old.
 *
 * Stealing: a worker with a free slot and nothing queued, which rank 0 has
 * told it has nothing ready, asks one victim at a time for work: a round is
 * the `near` nearest workers on its own host (same NUMA node first, in a
 * seeded random order within each tier, tf_steal_order) and then `far`
 * random workers on other hosts. A victim that gave tasks is asked again
 * first next time; after a round in vain the thief waits TF_WORKER_BACKOFF_MIN_NS,
 * doubling up to TF_WORKER_BACKOFF_MAX_NS, and plans a new round; news
 * from rank 0 that it has nothing ready ends the wait. A victim gives half
 * of what it may give (tf_steal_amount).
 */

#define TF_WORKER_REPORT_AGE_NS 1000000u   /* 1 ms */
#define TF_WORKER_BACKOFF_MIN_NS 50000u    /* 50 us */
#define TF_WORKER_BACKOFF_MAX_NS 102400000u /* 50 us x 2^11: about 0.1 s */
#define TF_WORKER_NEAR 6
#define TF_WORKER_FAR 2

typedef struct tf_worker_cfg {
    uint32_t slots;             /* the widest task this rank can run */
    bool steal;                 /* steal, and give to thieves */
    uint64_t report_age_ns;     /* 0: TF_WORKER_REPORT_AGE_NS */
    /*
     * With heartbeats: a victim silent this long after a request may be
     * dead; it is never asked again. 0: wait for every answer.
     */
    uint64_t answer_timeout_ns;
    uint32_t near, far;         /* victims per round (0, 0: the defaults) */
} tf_worker_cfg;

typedef enum tf_worker_act_kind {
    TF_WK_REPORT = 1, /* send the pending records now, then tf_worker_reported */
    TF_WK_ASK,        /* send a steal request to `rank` */
    TF_WK_SHUN,       /* `rank` did not answer in time: never asked again (log it) */
} tf_worker_act_kind;

typedef struct tf_worker_act {
    uint32_t kind;
    uint32_t rank;
} tf_worker_act;

/* What the machine needs to know of the tasks held (tf_wq_view). */
typedef struct tf_worker_view {
    size_t held;         /* queued, running and parked */
    unsigned idle_slots; /* free slots with nothing queued */
} tf_worker_view;

typedef struct tf_worker {
    tf_worker_cfg cfg;
    uint32_t self, first, n; /* ranks first .. n-1 are workers */
    const tf_loc *loc;       /* every rank's place; the driver's */

    /* Records not yet sent: how many, of which DONE or UNRUN, since when. */
    size_t nrec, ndone;
    uint64_t oldest_ns;
    bool urgent; /* a thief took tasks: report the moves now */

    uint32_t *host;        /* the other workers on this host */
    size_t nhost, nfar;    /* and how many are elsewhere */
    uint32_t *order;       /* scratch: host ranks in this round's order */
    uint32_t *round;       /* this round's victims */
    size_t nround, next;   /* next: the one asked now or next */
    uint32_t *shunned;     /* never asked again */
    size_t nshunned, shcap;
    bool asking;
    uint64_t asked_at;
    bool rank0_dry;        /* rank 0's last batch said nothing was ready */
    uint64_t not_before, backoff;
    bool stopping, halted;
    tf_rng rng;

    uint64_t steals, stolen; /* requests that got tasks, and tasks got */
    tf_worker_act acts[3];
    size_t nacts;
} tf_worker;

/*
 * Worker `self` of ranks first .. n-1, located by loc[] (kept, not copied),
 * host[0 .. nhost) the other workers on its host (tf_steal_same_host; the
 * simulator knows them without a scan), victims drawn from a tf_rng of
 * `seed`. Errors: TF_EINVAL, TF_ENOMEM.
 */
int tf_worker_init(tf_worker *w, const tf_worker_cfg *cfg, const tf_loc *loc,
                   uint32_t first, uint32_t n, uint32_t self,
                   const uint32_t *host, size_t nhost, uint64_t seed);
void tf_worker_free(tf_worker *w);

/* Rank 0 sent tasks; dry: it had nothing else ready (ask peers at once). */
void tf_worker_heard(tf_worker *w, bool dry);

/* ndone DONE or UNRUN records and nother others joined the pending report. */
void tf_worker_recorded(tf_worker *w, size_t ndone, size_t nother,
                        uint64_t now);

/* The pending report went out. */
void tf_worker_reported(tf_worker *w);

/*
 * A thief asks: how many of the `stealable` queued tasks to give (none
 * after a halt or STOP, or when not stealing).
 */
size_t tf_worker_give_count(const tf_worker *w, size_t stealable);

/* This rank gave n tasks to a thief: n MOVED records, reported at once. */
void tf_worker_gave(tf_worker *w, size_t n, uint64_t now);

/* The answer to this rank's steal request came: `got` tasks (0: none). */
void tf_worker_answered(tf_worker *w, size_t got, uint64_t now);

/*
 * Rank 0 wrote rank r off: never ask it again, and if this rank waits for
 * its answer to a steal request, wait no more. Errors: TF_ENOMEM (then r
 * may be asked again, and shunned when it does not answer: harmless).
 */
int tf_worker_lost(tf_worker *w, uint32_t r, uint64_t now);

/* Rank 0 halted the run, or stopped it: no more steals, none given. */
void tf_worker_halt(tf_worker *w);
void tf_worker_stop(tf_worker *w);

/* A steal request is out; its answer must come before the run ends. */
static inline bool tf_worker_asking(const tf_worker *w) { return w->asking; }

/*
 * Tasks the rank's main thread may run before it looks at messages again:
 * what is left of the quarter that makes a report.
 */
size_t tf_worker_budget(const tf_worker *w, const tf_worker_view *v);

/*
 * Time passed: decide what to do now (actions: REPORT, SHUN, ASK) and
 * return when the machine next needs a tick without other news (a
 * record's age, a back-off's end, an answer's deadline), UINT64_MAX when
 * only news can change anything.
 */
uint64_t tf_worker_tick(tf_worker *w, const tf_worker_view *v, uint64_t now);

static inline const tf_worker_act *tf_worker_actions(const tf_worker *w,
                                                     size_t *n)
{
    *n = w->nacts;
    return w->acts;
}

/*
 * Check every invariant (record counts, the round and its cursor, the
 * back-off's bounds, victims are workers other than itself). Returns true
 * when all hold; otherwise writes the first violation to why.
 */
bool tf_worker_check(const tf_worker *w, char *why, size_t len);

#endif
