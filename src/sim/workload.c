/* The simulator's workloads: seeded durations, stencil and tree dependencies. */
#include "workload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static double draw_unit(tf_rng *g)
{
    return (double)((tf_rng_next(g) >> 11) + 1) / 9007199254740993.0;
}

uint64_t sim_durations(sim_dist dist, uint64_t mean_ns, uint64_t nt,
                       uint64_t seed, uint64_t *dur)
{
    tf_rng g = tf_rng_seeded(seed);
    double *x = malloc((nt ? nt : 1) * sizeof *x), sum = 0;
    if (!x)
        return 0;
    for (uint64_t t = 0; t < nt; t++) {
        double u = draw_unit(&g), v = 1;
        if (dist == SIM_DIST_UNIFORM)
            v = 0.5 + u;
        else if (dist == SIM_DIST_HEAVY)
            v = fmin(pow(u, -1.0 / 1.5), 100.0);
        x[t] = v;
        sum += v;
    }
    uint64_t work = 0;
    double scale = (double)mean_ns * (double)nt / sum;
    for (uint64_t t = 0; t < nt; t++) {
        dur[t] = (uint64_t)(x[t] * scale + 0.5);
        if (!dur[t])
            dur[t] = 1;
        work += dur[t];
    }
    free(x);
    return work;
}

/* Index of name in names[n], or -1. */
static int lookup(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

bool sim_dist_of(const char *name, sim_dist *d)
{
    static const char *const names[] = {
        [SIM_DIST_FIXED] = "fixed",
        [SIM_DIST_UNIFORM] = "uniform",
        [SIM_DIST_HEAVY] = "heavy",
    };
    int i = lookup(name, names, sizeof names / sizeof *names);
    if (i >= 0)
        *d = (sim_dist)i;
    return i >= 0;
}

bool sim_shape_of(const char *name, sim_shape *s)
{
    static const char *const names[] = {
        [SIM_INDEPENDENT] = "independent",
        [SIM_STENCIL] = "stencil",
        [SIM_TREE] = "tree",
    };
    int i = lookup(name, names, sizeof names / sizeof *names);
    if (i >= 0)
        *s = (sim_shape)i;
    return i >= 0;
}

int sim_deps(sim_shape shape, uint64_t nt, uint64_t width, uint64_t t,
             uint64_t nb[3])
{
    (void)nt;
    if (shape == SIM_TREE) {
        if (!t)
            return 0;
        nb[0] = (t - 1) / 2;
        return 1;
    }
    if (shape != SIM_STENCIL || t < width)
        return 0;
    uint64_t i = t % width, row = (t / width - 1) * width;
    int k = 0;
    for (uint64_t j = i ? i - 1 : 0; j <= i + 1 && j < width; j++)
        nb[k++] = row + j;
    return k;
}
