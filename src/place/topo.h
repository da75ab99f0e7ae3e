/* This rank's view of the machine through hwloc: its cores and their NUMA nodes. */
#ifndef TF_PLACE_TOPO_H
#define TF_PLACE_TOPO_H

#include <stddef.h>

typedef struct tf_topo tf_topo;

/*
 * Load the topology once per process (hwloc honours HWLOC_XMLFILE and
 * HWLOC_SYNTHETIC) and read the CPUs this process may run on, in OS index
 * order. Errors: TF_ENOMEM, TF_EIO (hwloc could not load a topology).
 */
int tf_topo_load(tf_topo **out);
void tf_topo_free(tf_topo *t);

/* The OS indexes of the PUs this process is bound to (at least one). */
const int *tf_topo_cpus(const tf_topo *t, size_t *n);

/*
 * Write the OS indexes of the NUMA nodes holding the given PUs to buf as a
 * comma-separated list ("0" or "0,1"); "" when hwloc knows no NUMA node.
 * Thread-safe: hwloc topologies may be read concurrently once loaded.
 */
void tf_topo_numa_of(const tf_topo *t, const int *cpus, size_t n, char *buf,
                     size_t len);

#endif
