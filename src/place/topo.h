/* This rank's view of the machine through hwloc: its cores and their NUMA nodes. */
#ifndef TF_PLACE_TOPO_H
#define TF_PLACE_TOPO_H

#include <stdbool.h>
#include <stddef.h>

#include "place/plan.h"

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

/*
 * Load a topology that is not this machine's, for tests and for planning on
 * a node type one does not have: a synthetic description ("pack:2 numa:2
 * core:8 pu:2") or an XML file written by `lstopo --of xml`. The process is
 * taken to be allowed on every PU. Binding is not possible with such a
 * topology (tf_topo_is_thissystem is false). Errors: TF_ENOMEM, TF_EINVAL
 * (hwloc rejects the description or file).
 */
int tf_topo_load_synthetic(const char *desc, tf_topo **out);
int tf_topo_load_xml(const char *path, tf_topo **out);

/*
 * Whether the topology is this machine's, so that binding can work: false
 * when it came from HWLOC_SYNTHETIC, HWLOC_XMLFILE (without
 * HWLOC_THISSYSTEM=1) or the two loaders above.
 */
bool tf_topo_is_thissystem(const tf_topo *t);

/* Where the topology came from, for messages ("this machine", ...). */
const char *tf_topo_source(const tf_topo *t);

/*
 * Whether the launcher bound this process to fewer PUs than the machine
 * lets it use (an unbound rank may run anywhere, so two of them on one
 * host compete for the same cores).
 */
bool tf_topo_is_bound(const tf_topo *t);

/*
 * Pretend this process is bound to the given PUs (OS indexes; those the
 * topology does not have are ignored), e.g. to plan for one rank of a
 * node in tests. Errors: TF_EINVAL (none of them exists), TF_ENOMEM; t is
 * unchanged on error. Not thread-safe: call before sharing t.
 */
int tf_topo_restrict(tf_topo *t, const int *cpus, size_t n);

/*
 * The plan's view of this process's PUs (see plan.h), freed with
 * tf_plan_view_free. PUs go to the first NUMA node whose cpuset holds them;
 * a PU outside every NUMA node gets a domain of its own with OS index -1.
 * Errors: TF_ENOMEM.
 */
int tf_topo_view(const tf_topo *t, tf_plan_view *out);

#endif
