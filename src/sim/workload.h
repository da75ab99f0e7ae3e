/* The simulator's workloads: task durations and dependency shapes, shared with the benchmark that runs the same workload for real (bench/simreal.c). */
#ifndef TF_SIM_WORKLOAD_H
#define TF_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

typedef enum sim_dist {
    SIM_DIST_FIXED,   /* every task takes the mean */
    SIM_DIST_UNIFORM, /* uniform in [0.5, 1.5] x mean */
    SIM_DIST_HEAVY    /* Pareto, alpha 1.5, cut at 100 x its minimum */
} sim_dist;

typedef enum sim_shape {
    SIM_INDEPENDENT, /* a bag of tasks */
    SIM_STENCIL,     /* 1-D stencil: (step s, i) after (s-1, i-1..i+1) */
    SIM_TREE         /* a binary out-tree: task t after task (t-1)/2 */
} sim_shape;

/*
 * The distribution or shape a name on the command line means ("fixed",
 * "uniform", "heavy"; "independent", "stencil", "tree"); false if none.
 */
bool sim_dist_of(const char *name, sim_dist *d);
bool sim_shape_of(const char *name, sim_shape *s);

/*
 * nt durations drawn from a tf_rng of `seed`, scaled so that their mean is
 * exactly mean_ns (none below 1 ns), into dur. Returns their sum, or 0
 * when memory is short.
 */
uint64_t sim_durations(sim_dist dist, uint64_t mean_ns, uint64_t nt,
                       uint64_t seed, uint64_t *dur);

/*
 * The dependencies of task t of nt in `shape` (stencil rows `width` wide),
 * into nb; returns how many (at most 3).
 */
int sim_deps(sim_shape shape, uint64_t nt, uint64_t width, uint64_t t,
             uint64_t nb[3]);

#endif
