/* hwloc topology of this rank: bound PUs and the NUMA nodes of a set of PUs. */
#include "topo.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskfarm_status.h"

struct tf_topo {
    hwloc_topology_t topo;
    int *cpus;
    size_t ncpus;
};

int tf_topo_load(tf_topo **out)
{
    tf_topo *t = calloc(1, sizeof *t);
    if (!t)
        return TF_ENOMEM;
    int rc = TF_EIO;
    if (hwloc_topology_init(&t->topo) != 0)
        goto fail_with_t;
    if (hwloc_topology_load(t->topo) != 0)
        goto fail_with_topology;
    rc = TF_ENOMEM;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        goto fail_with_topology;
    /*
     * The binding the launcher gave us; when it cannot be read (or the
     * topology is synthetic), every PU the topology allows.
     */
    if (hwloc_get_cpubind(t->topo, set, HWLOC_CPUBIND_PROCESS) != 0 ||
        hwloc_bitmap_iszero(set))
        hwloc_bitmap_copy(set, hwloc_topology_get_allowed_cpuset(t->topo));
    int w = hwloc_bitmap_weight(set);
    t->cpus = malloc(sizeof *t->cpus * (size_t)(w > 0 ? w : 1));
    if (!t->cpus) {
        hwloc_bitmap_free(set);
        goto fail_with_topology;
    }
    unsigned i;
    hwloc_bitmap_foreach_begin(i, set) t->cpus[t->ncpus++] = (int)i;
    hwloc_bitmap_foreach_end();
    if (!t->ncpus)
        t->cpus[t->ncpus++] = 0;
    hwloc_bitmap_free(set);
    *out = t;
    return 0;

fail_with_topology:
    hwloc_topology_destroy(t->topo);
fail_with_t:
    free(t);
    return rc;
}

void tf_topo_free(tf_topo *t)
{
    if (!t)
        return;
    hwloc_topology_destroy(t->topo);
    free(t->cpus);
    free(t);
}

const int *tf_topo_cpus(const tf_topo *t, size_t *n)
{
    *n = t->ncpus;
    return t->cpus;
}

void tf_topo_numa_of(const tf_topo *t, const int *cpus, size_t n, char *buf,
                     size_t len)
{
    if (len)
        buf[0] = 0;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
    if (set && nodes) {
        for (size_t i = 0; i < n; i++)
            hwloc_bitmap_set(set, (unsigned)cpus[i]);
        hwloc_cpuset_to_nodeset(t->topo, set, nodes);
        size_t off = 0;
        unsigned i;
        hwloc_bitmap_foreach_begin(i, nodes)
        {
            int k = snprintf(buf + off, len - off, off ? ",%u" : "%u", i);
            if (k < 0 || (size_t)k >= len - off)
                break;
            off += (size_t)k;
        }
        hwloc_bitmap_foreach_end();
    }
    hwloc_bitmap_free(nodes);
    hwloc_bitmap_free(set);
}
