/* The 1-D heat stencil shared by apps/stencil.c and bench/stencil_mpi.c: initial condition, one step of a block, the serial run and the comparison with it. */
#ifndef APPS_STENCIL_KERNEL_H
#define APPS_STENCIL_KERNEL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * Header-only so that the taskfarm app, the plain MPI program and the
 * serial check in both run the very same expressions: results must be
 * bitwise equal, and they are only if every point is computed by the same
 * sequence of IEEE operations. -std=c11 turns floating-point contraction
 * off (no FMA), and nothing here depends on the order in which points are
 * visited, so cutting the domain into blocks changes no bit.
 *
 * The domain is `total` points, 0 .. total-1, with a fixed zero beyond
 * each end (Dirichlet boundary). One step:
 *   u'[i] = u[i] + 0.25 * (u[i-1] - 2 u[i] + u[i+1])
 * (explicit Euler for the heat equation at the stable limit's half).
 */

/*
 * The initial condition at global point g: a smooth mode and a sharp one,
 * so that values differ from point to point and from step to step and a
 * halo taken from the wrong neighbour changes the result.
 */
static inline double stencil_initial(size_t g, size_t total)
{
    double x = (double)(g + 1) / (double)(total + 1);
    return sin(3.141592653589793 * x) +
           0.25 * sin(97.0 * 3.141592653589793 * x);
}

/* Fill u[0 .. n-1] with the initial condition of points first .. first+n-1. */
static inline void stencil_fill(double *u, size_t first, size_t n, size_t total)
{
    for (size_t i = 0; i < n; i++)
        u[i] = stencil_initial(first + i, total);
}

/*
 * One step of a block of n points: v gets the new values of u, given the
 * old value of the point left of the block (`left`, 0 at the domain's
 * start) and right of it (`right`, 0 at its end). u and v must not overlap.
 */
static inline void stencil_step(const double *u, double left, double right,
                                double *v, size_t n)
{
    if (n == 1) {
        v[0] = u[0] + 0.25 * (left - 2.0 * u[0] + right);
        return;
    }
    v[0] = u[0] + 0.25 * (left - 2.0 * u[0] + u[1]);
    for (size_t i = 1; i + 1 < n; i++)
        v[i] = u[i] + 0.25 * (u[i - 1] - 2.0 * u[i] + u[i + 1]);
    v[n - 1] = u[n - 1] + 0.25 * (u[n - 2] - 2.0 * u[n - 1] + right);
}

/*
 * The serial reference: `steps` steps of the whole domain of `total`
 * points, starting from the initial condition; the result in the returned
 * buffer (malloc'd, the caller frees), NULL when out of memory. *seconds
 * gets the time of the steps alone (not the initial fill), by `clock`.
 */
static inline double *stencil_serial(size_t total, int steps,
                                     double (*clock)(void), double *seconds)
{
    double *u = malloc(total * sizeof *u), *v = malloc(total * sizeof *v);
    if (!u || !v) {
        free(u), free(v);
        return NULL;
    }
    stencil_fill(u, 0, total, total);
    double t0 = clock();
    for (int s = 0; s < steps; s++) {
        stencil_step(u, 0.0, 0.0, v, total);
        double *x = u;
        u = v;
        v = x;
    }
    *seconds = clock() - t0;
    free(v);
    return u;
}

/*
 * Compare computed points with the serial ones: the largest difference
 * into *maxdiff; true when they are equal bit for bit.
 */
static inline bool stencil_same(const double *got, const double *want,
                                size_t total, double *maxdiff)
{
    *maxdiff = 0;
    for (size_t i = 0; i < total; i++) {
        double d = fabs(got[i] - want[i]);
        *maxdiff = d > *maxdiff ? d : *maxdiff;
    }
    return !memcmp(got, want, total * sizeof *got);
}

#endif
