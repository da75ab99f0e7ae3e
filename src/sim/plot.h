/* The scaling plot, written as SVG directly: efficiency and rank 0's load against workers. */
#ifndef TF_SIM_PLOT_H
#define TF_SIM_PLOT_H

#include <stddef.h>
#include <stdint.h>

/*
 * One solid line per series (eff[s * n + i]: efficiency at workers[i]) and
 * a dashed one of the same colour for rank 0's utilisation; x is
 * logarithmic. Returns 0 or TF_EIO.
 */
int sim_plot_svg(const char *path, const uint32_t *workers, size_t n,
                 const double *eff, const double *util,
                 const char *const *labels, size_t nseries);

#endif
