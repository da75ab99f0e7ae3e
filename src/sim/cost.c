/* Rank 0's costs: the clock, the compiled-in constants, and their calibration by timing the real core. */
#include "cost.h"

#include <stdlib.h>
#include <time.h>

#include "wire.h"
#include "sched.h"
#include "taskfarm_status.h"

uint64_t sim_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sim_cost_fixed(sim_cost *c)
{
    /*
     * `taskfarm-sim --calibrate` on the 2-core development VM, 2026-11-23,
     * the median of three runs while other work loaded it (load average
     * 12): the machine is shared, so treat these as rough.
     */
    *c = (sim_cost){
        .kind = SIM_COST_FIXED,
        .clock_ns = 50.9,
        .done_ns = 7.5,
        .moved_ns = 2.9,
        .run_ns = 146.3,
        .scan_ns = 4.36,
        .idle_scan_ns = 0.50,
        .enc_ns = 0.9,
    };
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { REPS = 5 };

static double median(double *v)
{
    qsort(v, REPS, sizeof *v, cmp_double);
    return v[REPS / 2];
}

/* A scheduler with `nw` one-slot workers of the given depth and n READY tasks. */
static int make_sched(tf_sched *s, uint32_t nw, uint32_t depth, uint32_t n)
{
    tf_sched_init(s);
    s->park = true; /* as the simulator runs it */
    int rc = 0;
    for (uint32_t w = 0, id; w < nw && !rc; w++)
        rc = tf_sched_add_worker(s, 1, depth, &id);
    for (uint32_t t = 0, idx; t < n && !rc; t++)
        rc = tf_sched_add_task(s, 0, 1, 0, &idx);
    if (!rc)
        rc = tf_sched_seal(s, NULL, 0, NULL);
    if (rc)
        tf_sched_free(s);
    return rc;
}

/*
 * Per-task costs of dispatch, encoding, and decoding and applying DONE and
 * MOVED records, in rounds as rank 0's loop runs them: two workers with
 * windows of 512 take a round's tasks, half of them move (as a thief would
 * report), all finish. Round 0 only warms the buffers and is not counted.
 */
static int time_tasks(uint32_t n, double *run, double *enc, double *done,
                      double *moved)
{
    enum { WINDOW = 512 };
    tf_sched s;
    tf_buf b = {0}, rep = {0};
    int rc = make_sched(&s, 2, WINDOW, n);
    if (!rc)
        rc = tf_buf_reserve(&b, 2 * WINDOW * TF_WIRE_TASK_SIZE);
    if (!rc)
        rc = tf_buf_reserve(&rep, 2 * WINDOW * TF_WIRE_DONE_SIZE);
    uint64_t t_run = 0, t_enc = 0, t_done = 0, t_moved = 0, ntask = 0, nmove = 0;
    for (int round = 0; !rc && !tf_sched_is_finished(&s); round++) {
        uint64_t t0 = sim_clock_ns();
        rc = tf_sched_dispatch(&s);
        uint64_t t1 = sim_clock_ns();
        size_t na;
        const tf_action *a = tf_sched_actions(&s, &na);
        /* The TASK record (wire.h) of every task placed. */
        b.n = 0;
        uint64_t t2 = sim_clock_ns();
        for (size_t i = 0; i < na; i++) {
            tf_wire_task t = {a[i].task, 0, a[i].task, 1, 1, 0, 0, 0};
            tf_wire_put_task(&b, &t);
        }
        uint64_t t3 = sim_clock_ns();
        /* Half of them move, as a victim would report. */
        rep.n = 0;
        for (size_t i = 0; i < na; i += 2) {
            tf_wire_moved mv = {TF_REC_MOVED, a[i].task, 1, 1 - a[i].worker};
            tf_wire_put_moved(&rep, &mv);
        }
        tf_rd r = tf_rd_make(rep.p, rep.n);
        uint64_t t4 = sim_clock_ns();
        tf_wire_rec rec;
        while (!rc && tf_rd_more(&r) && tf_wire_get_rec(&r, &rec)) {
            tf_wire_moved *mv = &rec.u.moved;
            rc = tf_sched_task_moved(&s, mv->index, 1 - mv->thief, mv->thief);
        }
        uint64_t t5 = sim_clock_ns();
        /* The DONE record of every task, then task_done and observe. */
        rep.n = 0;
        for (size_t i = 0; i < na; i++) {
            tf_wire_done d = {TF_REC_DONE, a[i].task, 1, 0, 1000, 2000, 0, 0};
            tf_wire_put_done(&rep, &d);
        }
        tf_sched_clear_actions(&s);
        r = tf_rd_make(rep.p, rep.n);
        uint64_t t6 = sim_clock_ns();
        while (!rc && tf_rd_more(&r) && tf_wire_get_rec(&r, &rec)) {
            tf_wire_done *d = &rec.u.done;
            uint32_t w = s.dag.worker[d->index];
            rc = tf_sched_task_done(&s, d->index);
            tf_sched_observe(&s, w, d->end_ns - d->start_ns);
        }
        uint64_t t7 = sim_clock_ns();
        if (round) {
            t_run += t1 - t0;
            t_enc += t3 - t2;
            t_moved += t5 - t4;
            t_done += t7 - t6;
            ntask += na;
            nmove += (na + 1) / 2;
        }
    }
    if (!rc && ntask) {
        *run = (double)t_run / (double)ntask;
        *enc = (double)t_enc / (double)ntask;
        *done = (double)t_done / (double)ntask;
        *moved = (double)t_moved / (double)nmove;
    }
    tf_buf_free(&rep);
    tf_buf_free(&b);
    tf_sched_free(&s);
    return rc;
}

/*
 * Per-worker cost of one dispatch call over nw workers: with nothing ready
 * (the count of hungry workers still walks them all), and with tasks ready
 * but every worker full (both round-robin passes walk them).
 */
static int time_scans(uint32_t nw, double *idle, double *busy)
{
    enum { CALLS = 20 };
    tf_sched s;
    int rc = make_sched(&s, nw, 1, 0);
    if (rc)
        return rc;
    uint64_t t0 = sim_clock_ns();
    for (int i = 0; i < CALLS && !rc; i++)
        rc = tf_sched_dispatch(&s);
    *idle = (double)(sim_clock_ns() - t0) / CALLS / nw;
    tf_sched_free(&s);
    if (rc || (rc = make_sched(&s, nw, 1, 2 * nw)))
        return rc;
    rc = tf_sched_dispatch(&s);
    tf_sched_clear_actions(&s);
    t0 = sim_clock_ns();
    for (int i = 0; i < CALLS && !rc; i++)
        rc = tf_sched_dispatch(&s);
    *busy = (double)(sim_clock_ns() - t0) / CALLS / nw;
    tf_sched_free(&s);
    return rc;
}

int sim_cost_calibrate(sim_cost *c, uint32_t ntasks, uint32_t nworkers)
{
    double clk[REPS], run[REPS], enc[REPS], done[REPS], moved[REPS],
        idle[REPS], busy[REPS];
    for (int i = 0; i < REPS; i++) {
        enum { PAIRS = 10000 };
        uint64_t t0 = sim_clock_ns(), sink = 0;
        for (int k = 0; k < PAIRS; k++)
            sink += sim_clock_ns() - sim_clock_ns();
        clk[i] = (double)(sim_clock_ns() - t0 + (sink & 1)) / PAIRS;
        int rc = time_tasks(ntasks, &run[i], &enc[i], &done[i], &moved[i]);
        if (!rc)
            rc = time_scans(nworkers, &idle[i], &busy[i]);
        if (rc)
            return rc;
    }
    *c = (sim_cost){
        .kind = SIM_COST_CALIBRATED,
        .clock_ns = median(clk),
        .done_ns = median(done),
        .moved_ns = median(moved),
        .run_ns = median(run),
        .scan_ns = median(busy),
        .idle_scan_ns = median(idle),
        .enc_ns = median(enc),
    };
    return 0;
}
