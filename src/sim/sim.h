/* The discrete-event model: rank 0 running the real scheduler core, workers running the real worker machines, modelled network, a virtual clock. */
#ifndef TF_SIM_SIM_H
#define TF_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "cost.h"
#include "workload.h"

typedef struct sim_opts {
    uint32_t workers;     /* worker ranks (rank 0 only schedules) */
    uint32_t slots;       /* tasks each runs at once */
    uint64_t tasks;       /* 0: 20 per worker slot */
    uint64_t mean_ns;     /* mean task duration */
    sim_dist dist;
    sim_shape shape;
    double slow;          /* worker 0 takes this many times longer (1) */
    uint64_t latency_ns;  /* per message, any two ranks */
    double bandwidth;     /* bytes/s of each link; rank 0's are serial */
    uint64_t msg_ns;      /* rank 0's CPU per message sent or received */
    uint64_t task_ns;     /* rank 0's CPU per DONE beyond the core's (0) */
    uint32_t prefetch;    /* window ceiling, tasks per slot */
    bool adaptive;        /* windows follow tf_sched_window */
    bool batch;           /* false: window = slots, one task per message */
    bool steal;           /* dry workers steal from peers */
    bool park;            /* the core's local release (PARK) */
    bool idle;            /* model the idle back-off of src/util/idle.h */
    uint32_t host_ranks;  /* ranks per host, for steal victim order */
    uint64_t seed;
    bool check;           /* run the invariant checks when the run ends */
} sim_opts;

void sim_opts_default(sim_opts *o);

typedef struct sim_result {
    uint64_t tasks;
    uint64_t makespan_ns;  /* virtual: until rank 0 has seen every DONE */
    uint64_t work_ns;      /* sum of task durations */
    uint64_t r0_busy_ns;   /* rank 0's charged CPU time */
    uint64_t dispatched;   /* RUN and PARK actions */
    uint64_t parked;       /* of which PARK */
    uint64_t completed;    /* DONE records rank 0 applied */
    uint64_t r0_msgs_in, r0_msgs_out, r0_bytes_in, r0_bytes_out;
    uint64_t peer_msgs;    /* steal traffic between workers */
    uint64_t steals;       /* successful steals */
    uint64_t moved;        /* tasks moved by stealing */
    uint64_t dispatch_calls;
    uint64_t events;
    uint64_t ran_once;     /* tasks run exactly once */
    double efficiency;     /* work / (makespan x worker slots) */
    double r0_util;        /* busy / makespan */
    double decisions_per_s; /* (dispatched + completed) / busy seconds */
    double wall_s;         /* real time the simulation took */
    bool check_ok;
    char why[200];         /* set when the run or a check failed */
} sim_result;

/*
 * Run one simulation. Returns 0, TF_ENOMEM, or TF_EPROTO when the model
 * broke a rule of the core (r->why says which).
 */
int sim_run(const sim_opts *o, const sim_cost *c, sim_result *r);

#endif
