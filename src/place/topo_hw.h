/* Inside src/place only: the hwloc handle behind a tf_topo. */
#ifndef TF_PLACE_TOPO_HW_H
#define TF_PLACE_TOPO_HW_H

#include <hwloc.h>
#include <stdbool.h>
#include <stddef.h>

#include "place/topo.h"

struct tf_topo {
    hwloc_topology_t topo;
    hwloc_bitmap_t set; /* the PUs this process may run on */
    int *cpus;          /* the same, OS indexes in order */
    size_t ncpus;
    bool bound;
    const char *source;
};

#endif
