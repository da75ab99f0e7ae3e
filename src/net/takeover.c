/* Take-over: the survivors of a lost rank 0 agree on who is left, and the lowest of them schedules. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "core/grow.h"
#include "core/wire.h"
#include "runtime.h"
#include "util/idle.h"

/*
 * Why no election: every survivor knows the same order of succession (the
 * lowest rank that answers), MPI gives each one its place in it, and a
 * successor must win the next scheduler term in the state directory
 * (tf_term_claim, O_EXCL) before it sends the member list. Two ranks that
 * both think they lead cannot both claim the term; the loser leaves.
 * A network partition between hosts would need more: a majority of ranks
 * behind a leader, so that two sides cannot both go on (docs/fault-
 * tolerance.md, "Standby scheduler"). The file system is the tie-break
 * here, and the fence: a deposed rank 0 writes nothing once a later term
 * exists (sched_loop.c, fenced).
 *
 * Messages, TF_TAG_TAKEOVER, on the old communicator: uint64 words
 * {kind, ns, n, ranks[n]}. CALL (leader to all): leave your run and
 * JOIN. JOIN (to the leader, resent until a VIEW comes): ns is how long
 * ago the sender last sent anything to the lost rank 0. VIEW (leader to
 * the joined): the members, leader first; every member then calls
 * MPI_Comm_create_group with it, which only the members take part in.
 */
enum { TK_CALL = 1, TK_JOIN = 2, TK_VIEW = 3 };

/* A JOIN is sent again this often until the leader answers. */
#define TK_RESEND_NS 100000000u
/* The shortest wait for answers, whatever the heartbeat period. */
#define TK_MIN_WAIT_NS 500000000u
/* After the term is claimed: ten of a deposed rank 0's looks for it. */
#define TK_FENCE_NS 10000000u

/* A message of the ended run being taken and thrown away. */
typedef struct tk_junk {
    MPI_Request req;
    uint8_t *p;
} tk_junk;

typedef struct tk {
    tf_runtime *rt;
    MPI_Comm comm;
    int me, size;
    bool *out;           /* lost, or given up on as leader */
    bool *joined;        /* leader: who joined */
    uint64_t wait_ns;    /* how long a leader waits for JOINs */
    uint64_t lease_end;  /* leader: when the lost rank 0's lease is over */
    int *members;        /* the view, leader first */
    int nmembers;
    tk_junk *junk;       /* receives of messages thrown away */
    size_t njunk, jcap;
} tk;

static void nap(void)
{
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
}

/*
 * Send without waiting: the buffer is leaked on purpose, as a send to a
 * dead rank never completes and MPI may still read it (a few words).
 */
static void post(tk *k, int dest, uint64_t kind, uint64_t ns, const int *r,
                 int n)
{
    uint64_t *b = malloc(sizeof *b * (size_t)(3 + n));
    if (!b)
        return; /* the peer's timeout covers it */
    b[0] = kind;
    b[1] = ns;
    b[2] = (uint64_t)n;
    for (int i = 0; i < n; i++)
        b[3 + i] = (uint64_t)r[i];
    MPI_Request req;
    if (MPI_Isend(b, 3 + n, MPI_UINT64_T, dest, TF_TAG_TAKEOVER, k->comm,
                  &req) == MPI_SUCCESS)
        MPI_Request_free(&req);
}

/* Free the junk whose receive has completed. */
static void sweep_junk(tk *k)
{
    size_t keep = 0;
    for (size_t i = 0; i < k->njunk; i++) {
        int done = 0;
        MPI_Test(&k->junk[i].req, &done, MPI_STATUS_IGNORE);
        if (done)
            free(k->junk[i].p);
        else
            k->junk[keep++] = k->junk[i];
    }
    k->njunk = keep;
}

/*
 * One pending message, if any: a TAKEOVER one into b (up to cap words),
 * 1 with *from set; anything else (what the ended runs left in flight) is
 * read and dropped, 0.
 */
static int take(tk *k, uint64_t *b, int cap, int *from)
{
    sweep_junk(k);
    int flag = 0;
    MPI_Message msg;
    MPI_Status st;
    if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, k->comm, &flag, &msg, &st) !=
            MPI_SUCCESS ||
        !flag)
        return 0;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (st.MPI_TAG == TF_TAG_TAKEOVER &&
        count <= cap * (int)sizeof *b && count >= 3 * (int)sizeof *b) {
        MPI_Mrecv(b, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
        *from = st.MPI_SOURCE;
        return 1;
    }
    /*
     * Not waited for: its sender may be the dead rank 0, half way through
     * (a blocking receive would wait for ever). Taken all the same, so that
     * a peer still draining its sends of the ended run gets done. A buffer
     * whose receive never completes is leaked on purpose (MPI may still
     * write to it); the others go as they complete.
     */
    uint8_t *junk = malloc(count ? (size_t)count : 1);
    MPI_Request req;
    if (junk && !tf_grow((void **)&k->junk, &k->jcap, k->njunk + 1,
                         sizeof *k->junk, 8) &&
        MPI_Imrecv(junk, count, MPI_BYTE, &msg, &req) == MPI_SUCCESS)
        k->junk[k->njunk++] = (tk_junk){req, junk};
    else
        free(junk); /* out of memory: the message stays where it is */
    return 0;
}

/* How long ago this rank last sent anything to rank 0. */
static uint64_t since_told0(const tk *k, uint64_t now)
{
    const tf_live *lv = &k->rt->link.live;
    return lv->told && now > lv->told[0] ? now - lv->told[0] : 0;
}

/*
 * The leader: call every rank not out, wait for their JOINs (until all
 * came, or for wait_ns), then claim the next term in dir and send the
 * view. Returns 0, 1 when a lower rank turned out to lead (*lower), or a
 * TF_E code.
 */
static int lead(tk *k, const char *dir, int *lower)
{
    uint64_t now = tf_idle_clock_ns(), until = now + k->wait_ns;
    k->lease_end = now - since_told0(k, now);
    for (int r = 1; r < k->size; r++)
        if (r != k->me && !k->out[r])
            post(k, r, TK_CALL, 0, NULL, 0);
    uint64_t b[3];
    int from;
    for (;;) {
        bool all = true;
        for (int r = 1; r < k->size; r++)
            all &= r == k->me || k->out[r] || k->joined[r];
        now = tf_idle_clock_ns();
        if (all || now >= until)
            break;
        if (!take(k, b, 3, &from)) {
            nap();
            continue;
        }
        if (b[0] == TK_CALL && from < k->me) {
            *lower = from;
            return 1;
        }
        if (b[0] == TK_JOIN && !k->joined[from]) {
            k->joined[from] = true;
            k->out[from] = false;
            uint64_t sent = now > b[1] ? now - b[1] : 0;
            if (sent > k->lease_end)
                k->lease_end = sent;
        }
    }
    bool missing = false;
    k->members[k->nmembers++] = k->me;
    for (int r = 1; r < k->size; r++) {
        if (k->joined[r])
            k->members[k->nmembers++] = r;
        else if (r != k->me && !k->out[r])
            missing = true;
    }
    /*
     * The lost rank 0 keeps its lease for half a heartbeat period after it
     * last heard from a worker. A rank that did not join may have talked
     * to it until now.
     */
    uint64_t half = k->rt->link.live.hb_ns / 2;
    k->lease_end += half;
    if (missing && now + half > k->lease_end)
        k->lease_end = now + half;
    if (dir) {
        char who[256], host[64] = "";
        int wr = -1;
        gethostname(host, sizeof host - 1);
        MPI_Comm_rank(MPI_COMM_WORLD, &wr);
        snprintf(who, sizeof who,
                 "rank %d of %d before (world rank %d) on %s, pid %ld: rank "
                 "0 of %d ranks now\n",
                 k->me, k->size, wr, host, (long)getpid(), k->nmembers);
        uint64_t term;
        int rc = tf_term_claim(dir, who, &term);
        if (rc) {
            tf_logf(&k->rt->log, TF_LOG_ERROR,
                    "cannot claim the next scheduler term in %s: %s", dir,
                    rc == TF_EDEPOSED ? "another rank claimed it first"
                                      : "cannot write the file");
            return rc;
        }
        tf_logf(&k->rt->log, TF_LOG_WARN,
                "rank 0 lost: this rank takes over its scheduling (term "
                "%llu, %d ranks)",
                (unsigned long long)term, k->nmembers);
        /*
         * A rank 0 without a lease looks for the term at most once a
         * millisecond: give it ten before the outdir is read.
         */
        uint64_t seen = tf_idle_clock_ns() + TK_FENCE_NS;
        if (seen > k->lease_end)
            k->lease_end = seen;
    }
    for (int i = 1; i < k->nmembers; i++)
        post(k, k->members[i], TK_VIEW, 0, k->members, k->nmembers);
    return 0;
}

/*
 * A member: JOIN cand until its VIEW comes (0), a lower rank calls (1,
 * *lower), or cand stays silent (2). TF_EDEPOSED: left out of the view.
 */
static int follow(tk *k, int cand, int *lower)
{
    uint64_t now = tf_idle_clock_ns(), until = now + 2 * k->wait_ns;
    uint64_t next = 0;
    uint64_t *b = malloc(sizeof *b * (size_t)(3 + k->size));
    if (!b)
        return TF_ENOMEM;
    int from, rc = 2;
    while ((now = tf_idle_clock_ns()) < until) {
        if (now >= next) {
            post(k, cand, TK_JOIN, since_told0(k, now), NULL, 0);
            next = now + TK_RESEND_NS;
        }
        if (!take(k, b, 3 + k->size, &from)) {
            nap();
            continue;
        }
        if (b[0] == TK_CALL && from < cand) {
            *lower = from;
            rc = 1;
            break;
        }
        if (b[0] != TK_VIEW || from != cand)
            continue;
        rc = TF_EDEPOSED;
        k->nmembers = 0;
        for (uint64_t i = 0; i < b[2] && i < (uint64_t)k->size; i++) {
            k->members[k->nmembers++] = (int)b[3 + i];
            if ((int)b[3 + i] == k->me)
                rc = 0;
        }
        break;
    }
    free(b);
    return rc;
}

/* The runtime on the members, in place of the old one. */
static int rebuild(tk *k, tf_runtime **prt)
{
    tf_runtime *rt = *prt;
    MPI_Group all, g;
    MPI_Comm nc;
    if (MPI_Comm_group(k->comm, &all) != MPI_SUCCESS)
        return TF_EMPI;
    int rc = MPI_Group_incl(all, k->nmembers, k->members, &g);
    MPI_Group_free(&all);
    if (rc != MPI_SUCCESS)
        return TF_EMPI;
    rc = MPI_Comm_create_group(k->comm, g, TF_TAG_TAKEOVER, &nc);
    MPI_Group_free(&g);
    if (rc != MPI_SUCCESS)
        return TF_EMPI;
    /* The leader writes nothing before the old rank 0's lease is over. */
    uint64_t now = tf_idle_clock_ns();
    if (k->me == k->members[0] && k->lease_end > now) {
        struct timespec ts = {(time_t)((k->lease_end - now) / 1000000000u),
                              (long)((k->lease_end - now) % 1000000000u)};
        nanosleep(&ts, NULL);
    }
    tf_config cfg = rt->cfg;
    /* A state named at tf_init is the lost rank 0's now: resumed, not new. */
    if (cfg.checkpoint_dir)
        cfg.resume = 1;
    bool owns = rt->owns_mpi;
    uint32_t gone = rt->gone + (uint32_t)(k->size - k->nmembers);
    tf_runtime *nrt;
    rc = tf_init(nc, &cfg, &nrt);
    MPI_Comm_free(&nc);
    if (rc)
        return rc;
    nrt->owns_mpi = owns;
    nrt->gone = gone;
    /* MPI stays up (it is the new runtime's now), and no watchdog yet. */
    rt->owns_mpi = false;
    tf_finalize(prt);
    *prt = nrt;
    return 0;
}

int tf_takeover(tf_runtime **prt, const char *dir)
{
    if (!prt || !*prt)
        return TF_EINVAL;
    tf_runtime *rt = *prt;
    tf_link *l = &rt->link;
    if (!l->mpi || l->rank == 0 || rt->in_run || !l->live.hb_ns ||
        !tf_live_is_dead(&l->live, 0))
        return TF_ESTATE;
    tk k = {.rt = rt, .comm = l->comm, .me = l->rank, .size = l->size};
    /*
     * A worker whose main thread runs tasks (main_runs_tasks) answers only
     * between them, as it answers heartbeats: give it a period.
     */
    k.wait_ns = l->live.hb_ns > TK_MIN_WAIT_NS ? l->live.hb_ns : TK_MIN_WAIT_NS;
    k.out = calloc((size_t)k.size, sizeof *k.out);
    k.joined = calloc((size_t)k.size, sizeof *k.joined);
    k.members = malloc(sizeof *k.members * (size_t)k.size);
    int rc = k.out && k.joined && k.members ? 0 : TF_ENOMEM;
    if (!rc)
        k.out[0] = true;
    uint64_t term0 = dir ? tf_term_current(dir) : 0;
    int cand = 1;
    while (!rc) {
        int lower = -1, r;
        k.nmembers = 0;
        r = cand == k.me ? lead(&k, dir, &lower) : follow(&k, cand, &lower);
        if (r == 1) {
            k.out[lower] = false;
            cand = lower;
            continue;
        }
        if (r == 2) {
            /* Silent: gone too, or it led without this rank. */
            k.out[cand] = true;
            if (dir && tf_term_current(dir) > term0) {
                rc = TF_EDEPOSED;
                break;
            }
            while (cand < k.size && k.out[cand])
                cand++;
            continue;
        }
        rc = r;
        break;
    }
    if (!rc)
        rc = rebuild(&k, prt);
    if (rc == TF_EDEPOSED) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "rank 0 lost: the others took over without this rank; it "
                "ends");
        rt->deposed = true; /* tf_finalize leaves the launcher alone */
    }
    free(k.out);
    free(k.joined);
    free(k.members);
    sweep_junk(&k);
    free(k.junk); /* what is still arriving keeps its buffer: leaked */
    return rc;
}
