/* Unit tests of the worker rank's machines: the held-task queue (tf_wq) and the report/steal policy (tf_worker). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "check.h"
#include "worker.h"
#include "wqueue.h"

static bool check_wq_(const tf_wq *q, const char *file, unsigned line)
{
    char why[256] = "";
    bool ok = tf_wq_check(q, why, sizeof why);
    return check_fmt_(ok, file, line, "tf_wq_check: %s", why);
}
#define CHECK_WQ(q) check_wq_((q), __FILE__, __LINE__)

static bool check_wk_(const tf_worker *w, const char *file, unsigned line)
{
    char why[256] = "";
    bool ok = tf_worker_check(w, why, sizeof why);
    return check_fmt_(ok, file, line, "tf_worker_check: %s", why);
}
#define CHECK_WK(w) check_wk_((w), __FILE__, __LINE__)

static tf_wq_job job(uint32_t idx, uint16_t cores)
{
    return (tf_wq_job){idx, 1000 + idx, cores, 1, false};
}

/* The action list as "F3@1 U4 D5" (kind, task, anchor of a FILL). */
static void acts_text(tf_wq *q, char *buf, size_t len)
{
    size_t n, off = 0;
    const tf_wq_act *a = tf_wq_actions(q, &n);
    buf[0] = 0;
    for (size_t i = 0; i < n && off < len; i++) {
        const char *k = a[i].kind == TF_WQ_FILL    ? "F"
                        : a[i].kind == TF_WQ_UNRUN ? "U"
                                                   : "D";
        int m = a[i].kind == TF_WQ_FILL
                    ? snprintf(buf + off, len - off, "%s%s%u@%u", off ? " " : "",
                               k, a[i].idx, a[i].anchor)
                    : snprintf(buf + off, len - off, "%s%s%u", off ? " " : "",
                               k, a[i].idx);
        off += m > 0 ? (size_t)m : 0;
    }
    tf_wq_clear_actions(q);
}

#define CHECK_ACTS(q, want)                                                    \
    do {                                                                       \
        char got_[256];                                                        \
        acts_text((q), got_, sizeof got_);                                     \
        CHECK_MSG(strcmp(got_, (want)) == 0, "actions \"%s\", want \"%s\"",    \
                  got_, (want));                                               \
    } while (0)

/* Arrival order; a wide head job holds back the narrow ones behind it. */
static void test_wq_order(void)
{
    tf_wq q;
    CHECK_RC(tf_wq_init(&q, 3), 0);
    tf_wq_job a = job(1, 1), b = job(2, 3), c = job(3, 1), got;
    uint16_t sl[3], sl2[3];
    CHECK_RC(tf_wq_push(&q, &a, NULL, 0), 0);
    CHECK_RC(tf_wq_push(&q, &b, NULL, 0), 0);
    CHECK_RC(tf_wq_push(&q, &c, NULL, 0), 0);
    CHECK_WQ(&q);
    CHECK_EQ_U(tf_wq_held(&q), 3);
    CHECK_TRUE(tf_wq_start(&q, &got, sl));
    CHECK_EQ_U(got.idx, 1);
    CHECK_EQ_U(got.ref, 1001);
    CHECK_EQ_U(sl[0], 0);
    /* b needs all 3 slots: it waits, and c waits behind it. */
    CHECK_FALSE(tf_wq_start(&q, &got, sl2));
    CHECK_EQ_U(tf_wq_idle_slots(&q), 0);
    CHECK_WQ(&q);
    CHECK_RC(tf_wq_end(&q, &a, sl, TF_WQ_OK), 0);
    CHECK_TRUE(tf_wq_start(&q, &got, sl));
    CHECK_EQ_U(got.idx, 2);
    CHECK_TRUE(sl[0] == 0 && sl[1] == 1 && sl[2] == 2);
    CHECK_WQ(&q);
    CHECK_RC(tf_wq_end(&q, &b, sl, TF_WQ_FAILED), 0);
    CHECK_TRUE(tf_wq_start(&q, &got, sl));
    CHECK_EQ_U(got.idx, 3);
    CHECK_EQ_U(tf_wq_idle_slots(&q), 2);
    CHECK_RC(tf_wq_end(&q, &c, sl, TF_WQ_OK), 0);
    CHECK_EQ_U(tf_wq_held(&q), 0);
    CHECK_ACTS(&q, "");
    CHECK_WQ(&q);
    tf_wq_free(&q);
}

/* Parked jobs: filled, released to the tail as local, two anchors. */
static void test_wq_park(void)
{
    tf_wq q;
    CHECK_RC(tf_wq_init(&q, 2), 0);
    tf_wq_job p = job(10, 1), a = job(1, 1), b = job(2, 1), o = job(3, 1), got;
    uint32_t anc[] = {1, 2, 2};
    uint16_t sa[2], sb[2];
    CHECK_RC(tf_wq_push(&q, &p, anc, 3), 0);
    CHECK_RC(tf_wq_push(&q, &a, NULL, 0), 0);
    CHECK_RC(tf_wq_push(&q, &b, NULL, 0), 0);
    CHECK_RC(tf_wq_push(&q, &o, NULL, 0), 0);
    CHECK_WQ(&q);
    CHECK_TRUE(tf_wq_awaited(&q, 1));
    CHECK_TRUE(tf_wq_awaited(&q, 2));
    CHECK_FALSE(tf_wq_awaited(&q, 3));
    /* Tasks parked ones wait for, and released ones, never move. */
    CHECK_EQ_U(tf_wq_stealable(&q), 1);
    CHECK_TRUE(tf_wq_start(&q, &got, sa));
    CHECK_TRUE(tf_wq_start(&q, &got, sb));
    CHECK_RC(tf_wq_end(&q, &a, sa, TF_WQ_OK), 0);
    CHECK_ACTS(&q, "F10@1");
    CHECK_EQ_U(q.npark, 1);
    CHECK_WQ(&q);
    CHECK_RC(tf_wq_end(&q, &b, sb, TF_WQ_OK), 0);
    CHECK_ACTS(&q, "F10@2");
    CHECK_EQ_U(q.npark, 0);
    CHECK_EQ_U(q.qn, 2);
    CHECK_WQ(&q);
    CHECK_TRUE(tf_wq_start(&q, &got, sa));
    CHECK_EQ_U(got.idx, 3);
    CHECK_TRUE(tf_wq_start(&q, &got, sb));
    CHECK_EQ_U(got.idx, 10);
    CHECK_TRUE(got.local);
    tf_wq_free(&q);
}

/*
 * Batches: one-core jobs behind the head share its slot; a wide job ends
 * a batch; jobs given back go to the head in order, and the ring keeps
 * room for them however many jobs were pushed meanwhile; parked followers
 * of a batch's jobs are released as each ends.
 */
static void test_wq_batch(void)
{
    tf_wq q;
    CHECK_RC(tf_wq_init(&q, 2), 0);
    tf_wq_job b[8], wide = job(5, 2), par = job(20, 1);
    uint16_t sl[2], sl2[2];
    uint32_t anc = 2;
    CHECK_RC(tf_wq_push(&q, &par, &anc, 1), 0); /* waits for task 2 */
    for (uint32_t i = 1; i <= 4; i++) {
        tf_wq_job j = job(i, 1);
        CHECK_RC(tf_wq_push(&q, &j, NULL, 0), 0);
    }
    CHECK_RC(tf_wq_push(&q, &wide, NULL, 0), 0);
    CHECK_EQ_U(tf_wq_start_batch(&q, 0, b, sl), 0);
    CHECK_EQ_U(tf_wq_start_batch(&q, 8, b, sl), 4); /* stops at the wide one */
    CHECK_TRUE(b[0].idx == 1 && b[1].idx == 2 && b[2].idx == 3 && b[3].idx == 4);
    CHECK_EQ_U(sl[0], 0);
    CHECK_EQ_U(q.running, 4);
    CHECK_EQ_U(q.batched, 3);
    CHECK_EQ_U(tf_wq_held(&q), 6);
    CHECK_EQ_U(tf_wq_stealable(&q), 1); /* the wide one */
    CHECK_WQ(&q);
    /* The other slot stays free, the wide job waits for both. */
    CHECK_EQ_U(q.free_slots, 1);
    CHECK_EQ_U(tf_wq_start_batch(&q, 8, b + 4, sl2), 0);
    /* Many pushes while the batch runs: room stays for its jobs. */
    for (uint32_t i = 100; i < 200; i++) {
        tf_wq_job j = job(i, 1);
        CHECK_RC(tf_wq_push(&q, &j, NULL, 0), 0);
    }
    CHECK_WQ(&q);
    /* Jobs 1 and 2 ran; 2's follower is released behind the queue. */
    CHECK_RC(tf_wq_end_batched(&q, &b[0], TF_WQ_OK), 0);
    CHECK_ACTS(&q, "");
    tf_wq_unstart(&q, b + 2, 2); /* 3 and 4 go back, in order */
    CHECK_EQ_U(q.batched, 0);
    CHECK_WQ(&q);
    CHECK_RC(tf_wq_end(&q, &b[1], sl, TF_WQ_OK), 0);
    CHECK_ACTS(&q, "F20@2");
    CHECK_EQ_U(q.running, 0);
    CHECK_EQ_U(q.free_slots, 2);
    CHECK_EQ_U(q.qn, 1 + 2 + 100 + 1);
    CHECK_WQ(&q);
    tf_wq_job got;
    CHECK_TRUE(tf_wq_start(&q, &got, sl));
    CHECK_EQ_U(got.idx, 3);
    CHECK_TRUE(tf_wq_start(&q, &got, sl2));
    CHECK_EQ_U(got.idx, 4);
    CHECK_WQ(&q);
    /* A wide head starts alone. */
    tf_wq_job j3 = job(3, 1), j4 = job(4, 1);
    CHECK_RC(tf_wq_end(&q, &j3, sl, TF_WQ_OK), 0);
    CHECK_RC(tf_wq_end(&q, &j4, sl2, TF_WQ_OK), 0);
    CHECK_EQ_U(tf_wq_start_batch(&q, 8, b, sl), 1);
    CHECK_EQ_U(b[0].idx, 5);
    CHECK_EQ_U(q.batched, 0);
    CHECK_RC(tf_wq_end(&q, &b[0], sl, TF_WQ_OK), 0);
    /* A failure in a batch drops what was parked behind it. */
    CHECK_EQ_U(tf_wq_start_batch(&q, 3, b, sl), 3);
    CHECK_EQ_U(b[0].idx, 100);
    CHECK_RC(tf_wq_end_batched(&q, &b[0], TF_WQ_OK), 0);
    CHECK_RC(tf_wq_end_batched(&q, &b[1], TF_WQ_FAILED), 0);
    CHECK_RC(tf_wq_end(&q, &b[2], sl, TF_WQ_OK), 0);
    CHECK_EQ_U(q.running, 0);
    CHECK_WQ(&q);
    tf_wq_free(&q);
}

/* A failure drops the chain parked behind it; a lost output sends it back. */
static void test_wq_fail(void)
{
    for (int lost = 0; lost < 2; lost++) {
        tf_wq q;
        CHECK_RC(tf_wq_init(&q, 1), 0);
        tf_wq_job c = job(3, 1), b = job(2, 1), x = job(5, 1), a = job(1, 1),
                  got;
        uint32_t on1 = 1, on2 = 2;
        uint16_t sl[1];
        CHECK_RC(tf_wq_push(&q, &c, &on2, 1), 0); /* 3 after 2 */
        CHECK_RC(tf_wq_push(&q, &b, &on1, 1), 0); /* 2 after 1 */
        CHECK_RC(tf_wq_push(&q, &x, &on1, 1), 0); /* 5 after 1 */
        CHECK_RC(tf_wq_push(&q, &a, NULL, 0), 0);
        CHECK_TRUE(tf_wq_start(&q, &got, sl));
        CHECK_RC(tf_wq_end(&q, &a, sl,
                           lost ? TF_WQ_NO_OUTPUT : TF_WQ_FAILED),
                 0);
        CHECK_ACTS(&q, lost ? "U2 U5 D3" : "D2 D5 D3");
        CHECK_EQ_U(tf_wq_held(&q), 0);
        CHECK_WQ(&q);
        tf_wq_free(&q);
    }
}

/* A halt: parked jobs newest first, then the queue in order, all UNRUN. */
static void test_wq_drop(void)
{
    tf_wq q;
    CHECK_RC(tf_wq_init(&q, 1), 0);
    uint32_t on1 = 1;
    tf_wq_job j;
    j = job(7, 1);
    CHECK_RC(tf_wq_push(&q, &j, &on1, 1), 0);
    j = job(8, 1);
    CHECK_RC(tf_wq_push(&q, &j, &on1, 1), 0);
    for (uint32_t i = 1; i <= 3; i++) {
        j = job(i, 1);
        CHECK_RC(tf_wq_push(&q, &j, NULL, 0), 0);
    }
    CHECK_RC(tf_wq_drop_all(&q), 0);
    CHECK_ACTS(&q, "U8 U7 U1 U2 U3");
    CHECK_EQ_U(tf_wq_held(&q), 0);
    CHECK_WQ(&q);
    tf_wq_free(&q);
}

/* Stealing takes from the tail, skips what must stay, hands out oldest first. */
static void test_wq_steal(void)
{
    tf_wq q;
    CHECK_RC(tf_wq_init(&q, 4), 0);
    for (uint32_t i = 1; i <= 8; i++) {
        tf_wq_job j = job(i, i == 7 ? 4 : 1);
        CHECK_RC(tf_wq_push(&q, &j, NULL, 0), 0);
    }
    uint32_t on6 = 6;
    tf_wq_job p = job(20, 1), out[8];
    CHECK_RC(tf_wq_push(&q, &p, &on6, 1), 0);
    CHECK_EQ_U(tf_wq_stealable(&q), 7);
    /* 7 is wider than the thief, 6 is awaited: 8, 5, 4 go, oldest first. */
    size_t n = tf_wq_steal(&q, 3, 2, out);
    CHECK_EQ_U(n, 3);
    CHECK_TRUE(out[0].idx == 4 && out[1].idx == 5 && out[2].idx == 8);
    CHECK_EQ_U(q.qn, 5);
    uint32_t want[] = {1, 2, 3, 6, 7};
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ_U(q.q[(q.qhead + i) % q.qcap].idx, want[i]);
    CHECK_WQ(&q);
    tf_wq_free(&q);
}

/* Anchors of jobs released out of order are compacted, not leaked. */
static void test_wq_churn(void)
{
    tf_wq q;
    CHECK_RC(tf_wq_init(&q, 1), 0);
    tf_rng r = tf_rng_seeded(5);
    uint32_t next = 1, running = 0;
    tf_wq_job cur = {0}, got;
    uint16_t sl[1];
    bool busy = false;
    for (int step = 0; step < 20000; step++) {
        /* Keep one long-lived parked job so the park list never empties. */
        if (step == 0) {
            uint32_t never = 0xfffffff0u;
            tf_wq_job j = job(0xfffffff1u, 1);
            CHECK_RC(tf_wq_push(&q, &j, &never, 1), 0);
        }
        if (!busy && tf_wq_start(&q, &got, sl)) {
            cur = got;
            busy = true;
            running = got.idx;
        }
        uint32_t idx = next++;
        tf_wq_job j = job(idx, 1);
        uint32_t anc = busy ? running : 0;
        CHECK_RC(tf_wq_push(&q, &j, &anc, busy && tf_rng_below(&r, 2)), 0);
        if (busy && tf_rng_below(&r, 3) == 0) {
            CHECK_RC(tf_wq_end(&q, &cur, sl, TF_WQ_OK), 0);
            tf_wq_clear_actions(&q);
            busy = false;
        }
        if (step % 1000 == 0 && !CHECK_WQ(&q))
            break;
    }
    CHECK_LE_U(q.nanc, 2 * q.live_anc + 256);
    tf_wq_free(&q);
}

/*
 * The queue against a model of its rules, over random pushes (0 to 3
 * anchors, some named twice, some fetches), starts, ends of every
 * outcome, fetch arrivals, steals and halts. The model keeps per job its
 * state and the anchors it still waits for, and predicts every action,
 * in order, and the ring's contents: followers in arrival order, FILL
 * once per anchor, a failure's or lost output's chain breadth first.
 */
enum { M_FREE, M_QUEUED, M_PARKED, M_RUNNING, M_GONE };

typedef struct wq_model {
    uint8_t state[4096];
    uint32_t wait[4096][3]; /* anchors still awaited (UINT32_MAX: none) */
    uint32_t ring[4096];    /* queued, in order */
    size_t nring;
    char want[8192];        /* the actions predicted */
    size_t off;
} wq_model;

static void m_act(wq_model *m, char kind, uint32_t idx, uint32_t anchor)
{
    int n = kind == 'F'
                ? snprintf(m->want + m->off, sizeof m->want - m->off,
                           "%sF%u@%u", m->off ? " " : "", idx, anchor)
                : snprintf(m->want + m->off, sizeof m->want - m->off,
                           "%s%c%u", m->off ? " " : "", kind, idx);
    m->off += n > 0 ? (size_t)n : 0;
}

static bool m_waits(const wq_model *m, uint32_t j, uint32_t a)
{
    for (int k = 0; k < 3; k++)
        if (m->wait[j][k] == a)
            return true;
    return false;
}

/* Anchor a ended with outcome o: what the queue must do, in its order. */
static void m_settle(wq_model *m, uint32_t a, tf_wq_outcome o, uint32_t top)
{
    uint32_t gone[4096];
    size_t ngone = 1;
    gone[0] = a;
    for (size_t g = 0; g < ngone; g++)
        for (uint32_t j = 1; j < top; j++) {
            if (m->state[j] != M_PARKED || !m_waits(m, j, gone[g]))
                continue;
            if (g == 0 && o == TF_WQ_OK) {
                m_act(m, 'F', j, a);
                bool left = false;
                for (int k = 0; k < 3; k++) {
                    if (m->wait[j][k] == a)
                        m->wait[j][k] = UINT32_MAX;
                    left |= m->wait[j][k] != UINT32_MAX;
                }
                if (!left) {
                    m->state[j] = M_QUEUED;
                    m->ring[m->nring++] = j;
                }
            } else {
                m_act(m, g == 0 && o == TF_WQ_NO_OUTPUT ? 'U' : 'D', j, 0);
                m->state[j] = M_GONE;
                gone[ngone++] = j;
            }
        }
}

static void test_wq_model(void)
{
    static wq_model m;
    memset(&m, 0, sizeof m);
    tf_wq q;
    CHECK_RC(tf_wq_init(&q, 2), 0);
    tf_rng r = tf_rng_seeded(11);
    uint32_t next = 1, run[2] = {0, 0}, fetch = 0xFFFFFF00u;
    uint16_t sl[2][1];
    char got[8192];
    bool ok = true;
    for (int step = 0; step < 30000 && ok; step++) {
        uint32_t op = tf_rng_below(&r, 100);
        m.off = 0;
        m.want[0] = 0;
        if (op < 45 && next < 2000) { /* push */
            uint32_t j = next++, anc[3], n = 0;
            uint32_t want = tf_rng_below(&r, 4);
            for (uint32_t t = 0; t < 8 * want && n < want; t++) {
                uint32_t c = 1 + tf_rng_below(&r, j - 1 ? j - 1 : 1);
                uint8_t st = c < j ? m.state[c] : M_FREE;
                if (st == M_QUEUED || st == M_PARKED || st == M_RUNNING)
                    anc[n++] = c;
            }
            if (n && tf_rng_below(&r, 4) == 0)
                anc[n - 1] = anc[0]; /* named twice */
            if (n < 3 && tf_rng_below(&r, 10) == 0)
                anc[n++] = fetch; /* waits for a fetch too */
            for (int k = 0; k < 3; k++)
                m.wait[j][k] = k < (int)n ? anc[k] : UINT32_MAX;
            tf_wq_job wj = job(j, 1);
            ok &= CHECK_RC(tf_wq_push(&q, &wj, anc, n), 0);
            if (n) {
                m.state[j] = M_PARKED;
            } else {
                m.state[j] = M_QUEUED;
                m.ring[m.nring++] = j;
            }
        } else if (op < 65) { /* start on a free slot */
            int s = run[0] ? run[1] ? -1 : 1 : 0;
            tf_wq_job got_j;
            if (s >= 0 && tf_wq_start(&q, &got_j, sl[s])) {
                ok &= CHECK_TRUE(m.nring && got_j.idx == m.ring[0]);
                memmove(m.ring, m.ring + 1, --m.nring * sizeof *m.ring);
                m.state[got_j.idx] = M_RUNNING;
                run[s] = got_j.idx;
            } else if (s >= 0) {
                ok &= CHECK_EQ_U(m.nring, 0);
            }
        } else if (op < 88) { /* end a running job */
            int s = (int)tf_rng_below(&r, 2);
            if (!run[s])
                continue;
            uint32_t o = tf_rng_below(&r, 10);
            tf_wq_outcome out = o < 7 ? TF_WQ_OK
                                : o < 9 ? TF_WQ_FAILED : TF_WQ_NO_OUTPUT;
            tf_wq_job wj = job(run[s], 1);
            m.state[run[s]] = M_GONE;
            m_settle(&m, run[s], out, next);
            ok &= CHECK_RC(tf_wq_end(&q, &wj, sl[s], out), 0);
            run[s] = 0;
        } else if (op < 93) { /* the fetch comes, or never will */
            tf_wq_outcome out =
                tf_rng_below(&r, 3) ? TF_WQ_OK : TF_WQ_NO_OUTPUT;
            m_settle(&m, fetch, out, next);
            ok &= CHECK_RC(tf_wq_arrive(&q, fetch, out), 0);
            fetch--;
        } else if (op < 99) { /* a thief */
            tf_wq_job out[4];
            size_t n = tf_wq_steal(&q, 1 + tf_rng_below(&r, 4), 1, out);
            for (size_t i = 0; i < n; i++) {
                uint32_t j = out[i].idx;
                ok &= CHECK_TRUE(m.state[j] == M_QUEUED);
                for (uint32_t f = 1; f < next; f++)
                    ok &= CHECK_FALSE(m.state[f] == M_PARKED &&
                                      m_waits(&m, f, j));
                m.state[j] = M_GONE;
                size_t k = 0;
                for (size_t i2 = 0; i2 < m.nring; i2++)
                    if (m.ring[i2] != j)
                        m.ring[k++] = m.ring[i2];
                m.nring = k;
            }
        } else if (step % 7 == 0) {
            /* A halt: parked jobs newest first, then the ring. */
            for (uint32_t j = next; j-- > 1;)
                if (m.state[j] == M_PARKED) {
                    m_act(&m, 'U', j, 0);
                    m.state[j] = M_GONE;
                }
            for (size_t i = 0; i < m.nring; i++) {
                m_act(&m, 'U', m.ring[i], 0);
                m.state[m.ring[i]] = M_GONE;
            }
            m.nring = 0;
            ok &= CHECK_RC(tf_wq_drop_all(&q), 0);
        }
        acts_text(&q, got, sizeof got);
        ok &= CHECK_MSG(!strcmp(got, m.want),
                        "step %d: actions \"%s\", want \"%s\"", step, got,
                        m.want);
        ok &= CHECK_EQ_U(q.qn, m.nring);
        for (size_t i = 0; i < q.qn && i < m.nring; i++)
            ok &= CHECK_EQ_U(q.q[(q.qhead + i) % q.qcap].idx, m.ring[i]);
        size_t parked = 0;
        for (uint32_t j = 1; j < next; j++) {
            parked += m.state[j] == M_PARKED;
            if (m.state[j] != M_PARKED && m.state[j] != M_FREE)
                for (int k = 0; k < 3; k++)
                    m.wait[j][k] = UINT32_MAX;
        }
        ok &= CHECK_EQ_U(q.npark, parked);
        /* Awaited: exactly the tasks some parked job still waits for. */
        for (int t = 0; t < 4 && ok; t++) {
            uint32_t a = 1 + tf_rng_below(&r, next);
            bool w = false;
            for (uint32_t j = 1; j < next && !w; j++)
                w = m.state[j] == M_PARKED && m_waits(&m, j, a);
            ok &= CHECK_TRUE(tf_wq_awaited(&q, a) == w);
        }
        if (step % 97 == 0)
            ok &= CHECK_WQ(&q);
    }
    CHECK_WQ(&q);
    CHECK_LE_U(q.nanc, 2 * q.live_anc + 256);
    tf_wq_free(&q);
}

/* ---- tf_worker -------------------------------------------------------- */

enum { NR = 10 };

/* Ranks 1-5 on host A (1-3 NUMA 0, 4-5 NUMA 1), 6-9 on host B. */
static void locs(tf_loc *loc)
{
    loc[0] = (tf_loc){100, 0};
    for (int r = 1; r < NR; r++)
        loc[r] = r <= 5 ? (tf_loc){100, r <= 3 ? 0 : 1} : (tf_loc){200, 0};
}

static void init_worker(tf_worker *w, const tf_loc *loc, uint32_t self,
                        bool steal, uint64_t timeout, uint64_t seed)
{
    uint32_t host[NR];
    size_t nh = tf_steal_same_host(loc, 1, NR, self, host);
    tf_worker_cfg c = {.slots = 1, .steal = steal, .answer_timeout_ns = timeout};
    CHECK_RC(tf_worker_init(w, &c, loc, 1, NR, self, host, nh, seed), 0);
}

static size_t kinds(const tf_worker *w, uint32_t kind, uint32_t *rank)
{
    size_t n, k = 0;
    const tf_worker_act *a = tf_worker_actions(w, &n);
    for (size_t i = 0; i < n; i++)
        if (a[i].kind == kind) {
            k++;
            if (rank)
                *rank = a[i].rank;
        }
    return k;
}

/* Reports after a quarter of what was held, when empty, old, or after a gift. */
static void test_worker_reports(void)
{
    tf_loc loc[NR];
    locs(loc);
    tf_worker w;
    init_worker(&w, loc, 1, false, 0, 1);
    tf_worker_view v = {16, 0};
    CHECK_EQ_U(tf_worker_budget(&w, &v), 4);
    tf_worker_tick(&w, &v, 10);
    CHECK_EQ_U(kinds(&w, TF_WK_REPORT, NULL), 0);
    tf_worker_recorded(&w, 3, 1, 100);
    v.held = 13;
    CHECK_EQ_U(tf_worker_budget(&w, &v), 1);
    uint64_t wake = tf_worker_tick(&w, &v, 200);
    CHECK_EQ_U(kinds(&w, TF_WK_REPORT, NULL), 0);
    CHECK_EQ_U(wake, 100 + TF_WORKER_REPORT_AGE_NS + 1);
    tf_worker_recorded(&w, 1, 0, 300);
    v.held = 12;
    tf_worker_tick(&w, &v, 300);
    CHECK_EQ_U(kinds(&w, TF_WK_REPORT, NULL), 1);
    tf_worker_reported(&w);
    CHECK_WK(&w);
    /* One record, much held: it goes when it is 1 ms old. */
    v.held = 100;
    tf_worker_recorded(&w, 1, 0, 1000);
    tf_worker_tick(&w, &v, 1000 + TF_WORKER_REPORT_AGE_NS);
    CHECK_EQ_U(kinds(&w, TF_WK_REPORT, NULL), 0);
    tf_worker_tick(&w, &v, 1001 + TF_WORKER_REPORT_AGE_NS);
    CHECK_EQ_U(kinds(&w, TF_WK_REPORT, NULL), 1);
    tf_worker_reported(&w);
    /* Holding nothing: at once. */
    v.held = 0;
    tf_worker_recorded(&w, 1, 0, 5000000);
    tf_worker_tick(&w, &v, 5000000);
    CHECK_EQ_U(kinds(&w, TF_WK_REPORT, NULL), 1);
    tf_worker_reported(&w);
    /* Not stealing: nothing given. */
    CHECK_EQ_U(tf_worker_give_count(&w, 10), 0);
    CHECK_WK(&w);
    tf_worker_free(&w);

    /* A thief took tasks: the moves go to rank 0 at once. */
    init_worker(&w, loc, 1, true, 0, 1);
    CHECK_EQ_U(tf_worker_give_count(&w, 7), 4);
    v.held = 100;
    tf_worker_gave(&w, 4, 10);
    tf_worker_tick(&w, &v, 10);
    CHECK_EQ_U(kinds(&w, TF_WK_REPORT, NULL), 1);
    tf_worker_reported(&w);
    tf_worker_halt(&w);
    CHECK_EQ_U(tf_worker_give_count(&w, 7), 0);
    CHECK_WK(&w);
    tf_worker_free(&w);
}

/*
 * A thief asks only when dry and told so by rank 0; a round is the nearest
 * of its host (NUMA tier first) then random others; in vain it backs off,
 * doubling; news from rank 0 ends the wait; a victim that gave is asked
 * again first.
 */
static void test_worker_steal(void)
{
    tf_loc loc[NR];
    locs(loc);
    tf_worker w;
    init_worker(&w, loc, 1, true, 0, 7);
    tf_worker_view busy = {2, 0}, idle = {0, 1};
    uint64_t now = 1000;
    tf_worker_tick(&w, &idle, now);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, NULL), 0); /* rank 0 has not said dry */
    tf_worker_heard(&w, true);
    tf_worker_tick(&w, &busy, now);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, NULL), 0); /* no idle slot */
    uint32_t asked[16];
    size_t nasked = 0;
    for (int i = 0; i < 6; i++) {
        uint32_t r = 0;
        tf_worker_tick(&w, &idle, now);
        if (!CHECK_EQ_U(kinds(&w, TF_WK_ASK, &r), 1))
            return;
        CHECK_TRUE(tf_worker_asking(&w));
        tf_worker_tick(&w, &idle, now); /* one request at a time */
        CHECK_EQ_U(kinds(&w, TF_WK_ASK, NULL), 0);
        asked[nasked++] = r;
        CHECK_WK(&w);
        tf_worker_answered(&w, 0, now);
    }
    /* 4 on its host (2 and 3 first: same NUMA node), then 2 from host B. */
    CHECK_TRUE((asked[0] == 2 && asked[1] == 3) ||
               (asked[0] == 3 && asked[1] == 2));
    CHECK_TRUE(asked[2] >= 4 && asked[2] <= 5 && asked[3] >= 4 &&
               asked[3] <= 5 && asked[2] != asked[3]);
    CHECK_TRUE(asked[4] >= 6 && asked[5] >= 6);
    /* The round was in vain: wait 50 us. */
    uint64_t wake = tf_worker_tick(&w, &idle, now);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, NULL), 0);
    CHECK_EQ_U(wake, now + TF_WORKER_BACKOFF_MIN_NS);
    now = wake;
    for (int i = 0; i < 6; i++) {
        tf_worker_tick(&w, &idle, now);
        CHECK_EQ_U(kinds(&w, TF_WK_ASK, NULL), 1);
        tf_worker_answered(&w, 0, now);
    }
    wake = tf_worker_tick(&w, &idle, now);
    CHECK_EQ_U(wake, now + 2 * TF_WORKER_BACKOFF_MIN_NS); /* doubled */
    /* News from rank 0 ends the wait. */
    tf_worker_heard(&w, true);
    uint32_t r = 0;
    tf_worker_tick(&w, &idle, now);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, &r), 1);
    tf_worker_answered(&w, 3, now);
    CHECK_EQ_U(w.steals, 1);
    CHECK_EQ_U(w.stolen, 3);
    uint32_t again = 0;
    tf_worker_tick(&w, &idle, now);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, &again), 1);
    CHECK_EQ_U(again, r);
    CHECK_WK(&w);
    tf_worker_answered(&w, 0, now);
    tf_worker_stop(&w);
    tf_worker_tick(&w, &idle, now + 1000000000);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, NULL), 0);
    tf_worker_free(&w);
}

/* The back-off doubles to its cap and no further. */
static void test_worker_backoff(void)
{
    tf_loc loc[NR];
    for (int r = 0; r < NR; r++)
        loc[r] = (tf_loc){1, 0};
    tf_worker w;
    init_worker(&w, loc, 4, true, 0, 3);
    tf_worker_view idle = {0, 1};
    tf_worker_heard(&w, true);
    uint64_t now = 0, last = 0;
    for (int round = 0; round < 20; round++) {
        for (;;) {
            uint64_t wake = tf_worker_tick(&w, &idle, now);
            if (!kinds(&w, TF_WK_ASK, NULL)) {
                last = wake - now;
                now = wake;
                break;
            }
            tf_worker_answered(&w, 0, now);
        }
        if (!CHECK_WK(&w))
            break;
    }
    CHECK_EQ_U(last, TF_WORKER_BACKOFF_MAX_NS);
    tf_worker_free(&w);
}

/* A victim that never answers is shunned for good (heartbeats). */
static void test_worker_shun(void)
{
    tf_loc loc[4] = {{1, 0}, {1, 0}, {1, 0}, {1, 0}};
    uint32_t host[] = {1, 3};
    tf_worker_cfg c = {.slots = 1, .steal = true, .answer_timeout_ns = 1000};
    tf_worker w;
    CHECK_RC(tf_worker_init(&w, &c, loc, 1, 4, 2, host, 2, 9), 0);
    tf_worker_view idle = {0, 1};
    tf_worker_heard(&w, true);
    uint32_t first = 0, r = 0;
    uint64_t wake = tf_worker_tick(&w, &idle, 0);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, &first), 1);
    CHECK_EQ_U(wake, 1001);
    tf_worker_tick(&w, &idle, 1001);
    CHECK_EQ_U(kinds(&w, TF_WK_SHUN, &r), 1);
    CHECK_EQ_U(r, first);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, &r), 1); /* the next one at once */
    CHECK_TRUE(r != first);
    CHECK_WK(&w);
    tf_worker_answered(&w, 0, 1001);
    /* Every later round asks only the other. */
    uint64_t now = 1001;
    for (int i = 0; i < 50; i++) {
        now = tf_worker_tick(&w, &idle, now);
        if (kinds(&w, TF_WK_ASK, &r)) {
            CHECK_TRUE(r != first);
            tf_worker_answered(&w, 0, now);
        }
    }
    CHECK_WK(&w);
    tf_worker_free(&w);
}

/* Rank 0 wrote off the victim being asked: the next is asked at once. */
static void test_worker_lost(void)
{
    tf_loc loc[4] = {{1, 0}, {1, 0}, {1, 0}, {1, 0}};
    uint32_t host[] = {1, 3};
    tf_worker_cfg c = {.slots = 1, .steal = true, .answer_timeout_ns = 1000};
    tf_worker w;
    CHECK_RC(tf_worker_init(&w, &c, loc, 1, 4, 2, host, 2, 9), 0);
    tf_worker_view idle = {0, 1};
    tf_worker_heard(&w, true);
    uint32_t first = 0, r = 0;
    tf_worker_tick(&w, &idle, 0);
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, &first), 1);
    CHECK_TRUE(tf_worker_asking(&w));
    CHECK_RC(tf_worker_lost(&w, first, 10), 0);
    CHECK_TRUE(!tf_worker_asking(&w)); /* the run may end: nothing awaited */
    CHECK_WK(&w);
    tf_worker_tick(&w, &idle, 10);
    CHECK_EQ_U(kinds(&w, TF_WK_SHUN, &r), 0); /* no warning: rank 0 said */
    CHECK_EQ_U(kinds(&w, TF_WK_ASK, &r), 1);
    CHECK_TRUE(r != first);
    tf_worker_answered(&w, 0, 11); /* the new victim had nothing */
    uint64_t now = 11;
    for (int i = 0; i < 50; i++) {
        now = tf_worker_tick(&w, &idle, now);
        if (kinds(&w, TF_WK_ASK, &r)) {
            CHECK_TRUE(r != first);
            tf_worker_answered(&w, 0, now);
        }
    }
    /* Lost twice, or lost while not asked: nothing more to do. */
    CHECK_RC(tf_worker_lost(&w, first, now), 0);
    CHECK_WK(&w);
    tf_worker_free(&w);
}

/* The same seed picks the same victims; another seed, another order. */
static void test_worker_replay(void)
{
    tf_loc loc[NR];
    for (int r = 0; r < NR; r++)
        loc[r] = (tf_loc){1, 0};
    uint32_t seq[3][40];
    uint64_t seeds[3] = {11, 11, 12};
    for (int k = 0; k < 3; k++) {
        tf_worker w;
        init_worker(&w, loc, 1, true, 0, seeds[k]);
        tf_worker_view idle = {0, 1};
        tf_worker_heard(&w, true);
        uint64_t now = 0;
        for (int i = 0; i < 40;) {
            uint64_t wake = tf_worker_tick(&w, &idle, now);
            if (kinds(&w, TF_WK_ASK, &seq[k][i])) {
                tf_worker_answered(&w, 0, now);
                i++;
            } else {
                now = wake;
            }
        }
        tf_worker_free(&w);
    }
    CHECK_TRUE(memcmp(seq[0], seq[1], sizeof seq[0]) == 0);
    CHECK_TRUE(memcmp(seq[0], seq[2], sizeof seq[0]) != 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("worker queue", NULL, NULL);
    CU_add_test(s, "arrival order, wide heads", test_wq_order);
    CU_add_test(s, "parking and release", test_wq_park);
    CU_add_test(s, "batches on one slot", test_wq_batch);
    CU_add_test(s, "failures drop the chain", test_wq_fail);
    CU_add_test(s, "halt drops everything", test_wq_drop);
    CU_add_test(s, "stealing from the tail", test_wq_steal);
    CU_add_test(s, "anchors compacted under churn", test_wq_churn);
    CU_add_test(s, "against a model of its rules", test_wq_model);
    s = CU_add_suite("worker policy", NULL, NULL);
    CU_add_test(s, "when reports go", test_worker_reports);
    CU_add_test(s, "steal rounds", test_worker_steal);
    CU_add_test(s, "back-off cap", test_worker_backoff);
    CU_add_test(s, "silent victims shunned", test_worker_shun);
    CU_add_test(s, "a lost victim is not waited for", test_worker_lost);
    CU_add_test(s, "seeded victims replay", test_worker_replay);
    return check_run();
}
