/* hwloc topology of this rank: loading, bound PUs, their NUMA nodes, the plan's view. */
#include "topo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "place/topo_hw.h"
#include "taskfarm_status.h"

/* Fill t->cpus from t->set; TF_ENOMEM leaves t as it was. */
static int set_cpus(tf_topo *t, hwloc_const_bitmap_t set)
{
    int w = hwloc_bitmap_weight(set);
    int *cpus = malloc(sizeof *cpus * (size_t)(w > 0 ? w : 1));
    if (!cpus)
        return TF_ENOMEM;
    size_t n = 0;
    unsigned i;
    hwloc_bitmap_foreach_begin(i, set) cpus[n++] = (int)i;
    hwloc_bitmap_foreach_end();
    if (!n)
        cpus[n++] = 0;
    if (hwloc_bitmap_copy(t->set, set) != 0) {
        free(cpus);
        return TF_ENOMEM;
    }
    free(t->cpus);
    t->cpus = cpus;
    t->ncpus = n;
    return 0;
}

/*
 * Load the topology set up on t->topo by the caller (or by hwloc's
 * environment variables) and read this process's binding.
 */
static int finish_load(tf_topo *t)
{
    if (hwloc_topology_load(t->topo) != 0)
        return TF_EINVAL;
    t->set = hwloc_bitmap_alloc();
    hwloc_bitmap_t bind = hwloc_bitmap_alloc();
    int rc = TF_ENOMEM;
    if (!t->set || !bind)
        goto out;
    hwloc_const_bitmap_t allowed = hwloc_topology_get_allowed_cpuset(t->topo);
    /*
     * The binding the launcher gave us; when it cannot be read (or the
     * topology is not this machine's), every PU the topology allows.
     */
    if (!tf_topo_is_thissystem(t) ||
        hwloc_get_cpubind(t->topo, bind, HWLOC_CPUBIND_PROCESS) != 0 ||
        hwloc_bitmap_iszero(bind)) {
        hwloc_bitmap_copy(bind, allowed);
    } else {
        hwloc_bitmap_and(bind, bind, allowed);
        t->bound =
            !hwloc_bitmap_isequal(bind, allowed) && !hwloc_bitmap_iszero(bind);
        if (hwloc_bitmap_iszero(bind))
            hwloc_bitmap_copy(bind, allowed);
    }
    rc = set_cpus(t, bind);
out:
    hwloc_bitmap_free(bind);
    return rc;
}

/* kind: 0 as hwloc's environment says, 1 synthetic, 2 XML file. */
static int load(int kind, const char *src, tf_topo **out)
{
    tf_topo *t = calloc(1, sizeof *t);
    if (!t)
        return TF_ENOMEM;
    int rc = TF_EIO;
    if (hwloc_topology_init(&t->topo) != 0)
        goto fail_with_t;
    if (kind == 1 && hwloc_topology_set_synthetic(t->topo, src) != 0) {
        rc = TF_EINVAL;
        goto fail_with_topology;
    }
    if (kind == 2 && hwloc_topology_set_xml(t->topo, src) != 0) {
        rc = TF_EINVAL;
        goto fail_with_topology;
    }
    t->source = kind == 1                   ? "a synthetic description"
                : kind == 2                 ? "an XML file"
                : getenv("HWLOC_SYNTHETIC") ? "HWLOC_SYNTHETIC"
                : getenv("HWLOC_XMLFILE")   ? "HWLOC_XMLFILE"
                                            : "this machine";
    rc = finish_load(t);
    if (rc) {
        /* The environment's description was bad: say so, not "no memory". */
        if (kind == 0 && rc == TF_EINVAL)
            rc = TF_EIO;
        goto fail_with_topology;
    }
    *out = t;
    return 0;

fail_with_topology:
    hwloc_bitmap_free(t->set);
    hwloc_topology_destroy(t->topo);
fail_with_t:
    free(t);
    return rc;
}

int tf_topo_load(tf_topo **out)
{
    return load(0, NULL, out);
}

int tf_topo_load_synthetic(const char *desc, tf_topo **out)
{
    return desc ? load(1, desc, out) : TF_EINVAL;
}

int tf_topo_load_xml(const char *path, tf_topo **out)
{
    return path ? load(2, path, out) : TF_EINVAL;
}

void tf_topo_free(tf_topo *t)
{
    if (!t)
        return;
    hwloc_bitmap_free(t->set);
    hwloc_topology_destroy(t->topo);
    free(t->cpus);
    free(t);
}

const int *tf_topo_cpus(const tf_topo *t, size_t *n)
{
    *n = t->ncpus;
    return t->cpus;
}

bool tf_topo_is_thissystem(const tf_topo *t)
{
    return hwloc_topology_is_thissystem(t->topo) != 0;
}

const char *tf_topo_source(const tf_topo *t)
{
    return t->source;
}

bool tf_topo_is_bound(const tf_topo *t)
{
    return t->bound;
}

int tf_topo_restrict(tf_topo *t, const int *cpus, size_t n)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        return TF_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (cpus[i] >= 0)
            hwloc_bitmap_set(set, (unsigned)cpus[i]);
    hwloc_bitmap_and(set, set, hwloc_topology_get_allowed_cpuset(t->topo));
    int rc = hwloc_bitmap_iszero(set) ? TF_EINVAL : set_cpus(t, set);
    if (!rc)
        t->bound = !hwloc_bitmap_isequal(
            set, hwloc_topology_get_allowed_cpuset(t->topo));
    hwloc_bitmap_free(set);
    return rc;
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

/* The id the plan compares for a PU's core: its core's, or its own. */
static int core_id(hwloc_topology_t topo, hwloc_obj_t pu)
{
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    return core ? (int)core->logical_index
                : (ncores > 0 ? ncores : 0) + (int)pu->logical_index;
}

/* Append the PUs of set not yet taken, in the machine's order, as domain d. */
static void add_domain(const tf_topo *t, hwloc_const_bitmap_t set,
                       hwloc_bitmap_t taken, tf_plan_view *v, int os)
{
    bool any = false;
    hwloc_obj_t pu = NULL;
    while ((pu = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_PU, pu))) {
        unsigned i = pu->os_index;
        if (!hwloc_bitmap_isset(t->set, i) || hwloc_bitmap_isset(taken, i) ||
            (set && !hwloc_bitmap_isset(set, i)))
            continue;
        hwloc_bitmap_set(taken, i);
        v->pu[v->npu++] =
            (tf_plan_pu){(int)i, core_id(t->topo, pu), (int)v->ndomains};
        any = true;
    }
    if (any)
        v->domain_os[v->ndomains++] = os;
}

int tf_topo_view(const tf_topo *t, tf_plan_view *out)
{
    tf_plan_view v = {0};
    int nnodes = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
    size_t maxd = (size_t)(nnodes > 0 ? nnodes : 0) + 1;
    v.pu = malloc(sizeof *v.pu * (t->ncpus ? t->ncpus : 1));
    v.domain_os = malloc(sizeof *v.domain_os * maxd);
    hwloc_bitmap_t taken = hwloc_bitmap_alloc();
    if (!v.pu || !v.domain_os || !taken) {
        hwloc_bitmap_free(taken);
        tf_plan_view_free(&v);
        return TF_ENOMEM;
    }
    for (int k = 0; k < nnodes; k++) {
        hwloc_obj_t node =
            hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, (unsigned)k);
        add_domain(t, node->cpuset, taken, &v, (int)node->os_index);
    }
    add_domain(t, NULL, taken, &v, -1); /* PUs no NUMA node claims */
    hwloc_bitmap_free(taken);
    /* Cores: the PUs of one core are adjacent, so count the changes. */
    for (size_t i = 0; i < v.npu; i++)
        v.ncores += i == 0 || v.pu[i].core != v.pu[i - 1].core;
    *out = v;
    return 0;
}
