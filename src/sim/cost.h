/* What rank 0's work costs in virtual time: the real core timed live, or per-call constants calibrated by timing it. */
#ifndef TF_SIM_COST_H
#define TF_SIM_COST_H

#include <stdbool.h>
#include <stdint.h>

/*
 * LIVE charges rank 0 the measured time of each real core call (and of the
 * real encoding and decoding of its messages), minus the cost of reading the
 * clock: faithful, but it carries this machine's noise into the results.
 * CALIBRATED and FIXED charge per-call constants instead, which makes a run
 * deterministic: CALIBRATED measures them when the program starts (by timing
 * the real core, sim_cost_calibrate), FIXED uses the ones compiled in
 * (measured the same way on the development VM), so tests replay exactly.
 */
typedef enum sim_cost_kind {
    SIM_COST_LIVE,
    SIM_COST_CALIBRATED,
    SIM_COST_FIXED
} sim_cost_kind;

typedef struct sim_cost {
    sim_cost_kind kind;
    double clock_ns;     /* one pair of clock reads (subtracted when LIVE) */
    double done_ns;      /* per DONE record: decode, task_done, observe */
    double moved_ns;     /* per MOVED record: decode, task_moved */
    double run_ns;       /* per task tf_sched_dispatch places */
    double scan_ns;      /* per worker per dispatch call, tasks ready */
    double idle_scan_ns; /* per worker per dispatch call, nothing ready */
    double enc_ns;       /* per task record rank 0 encodes */
} sim_cost;

/* The constants measured on the development VM (see docs/scaling.md). */
void sim_cost_fixed(sim_cost *c);

/*
 * Time the real core on this machine: each figure is the median of five
 * runs over `ntasks` tasks (per-task costs) or `nworkers` workers (scans).
 * 0 or TF_ENOMEM.
 */
int sim_cost_calibrate(sim_cost *c, uint32_t ntasks, uint32_t nworkers);

/* Monotonic wall clock, ns. */
uint64_t sim_clock_ns(void);

#endif
