/* The placement plan: which PUs of a rank a task gets, as a pure function of a topology view. */
#ifndef TF_PLACE_PLAN_H
#define TF_PLACE_PLAN_H

#include <stddef.h>

/*
 * One PU the rank may use. core and domain are small ids that are equal for
 * PUs of the same core / NUMA domain and are nothing else: the plan only
 * compares them.
 */
typedef struct tf_plan_pu {
    int os;     /* the PU's OS index (what taskset and TASKFARM_CORES show) */
    int core;   /* its core */
    int domain; /* its NUMA domain: an index into tf_plan_view.domain_os */
} tf_plan_pu;

/*
 * What the plan knows of a rank: its PUs, ordered by domain, then by core
 * (the PUs of a core are adjacent), then by position in the machine; and the
 * OS index of each domain's NUMA node (-1: hwloc knows no NUMA node there).
 * Built from hwloc by tf_topo_view, or by hand in tests.
 */
typedef struct tf_plan_view {
    tf_plan_pu *pu;
    size_t npu;
    int *domain_os;
    size_t ndomains;
    size_t ncores;
} tf_plan_view;

void tf_plan_view_free(tf_plan_view *v);

/*
 * Choose n PUs for a task, given how many running tasks use each PU now
 * (load[i] for v->pu[i]). Pure: reads its arguments, writes only out.
 *
 * The choice is the one a person pinning by hand would make:
 *  1. whole free cores (one PU of a core none of whose PUs is in use)
 *     before free hyperthreads, and free PUs before busy ones; the first of
 *     these tiers that has n places overall is the one used;
 *  2. within it, one NUMA domain when one has n such places, the one with
 *     the fewest that fit (so larger holes stay for larger tasks), lowest
 *     first on a tie; otherwise the fewest domains, largest first;
 *  3. within a domain, cores in the view's order (compact).
 * A task may ask for more PUs than the rank has (--slots above its cores):
 * it then gets every PU.
 *
 * Writes the chosen indexes into v->pu, in view order, to out (room for n)
 * and returns how many: min(n, v->npu).
 */
size_t tf_plan_pick(const tf_plan_view *v, const unsigned *load, size_t n,
                    size_t *out);

#endif
