/* Placing tasks on a rank's PUs and binding them (threads, children, memory) with hwloc. */
#ifndef TF_PLACE_BIND_H
#define TF_PLACE_BIND_H

#include <stdbool.h>
#include <stddef.h>

#include "place/topo.h"

/* --bind: what a task's process is bound to. */
typedef enum tf_bind_policy {
    TF_BIND_NONE, /* nothing: placement still decides and reports */
    TF_BIND_CORE, /* its PUs, memory on their NUMA nodes */
    TF_BIND_NUMA, /* every PU of the rank in its NUMA domains, same memory */
} tf_bind_policy;

/* "none", "core", "numa"; false for anything else. */
bool tf_bind_policy_parse(const char *s, tf_bind_policy *out);
const char *tf_bind_policy_name(tf_bind_policy p);

/*
 * A rank's placement state: the plan's view of its PUs and how many running
 * tasks use each. Every function is thread-safe (task threads place
 * themselves), except new and free.
 */
typedef struct tf_placer tf_placer;

/* The topology must outlive the placer. Errors: TF_ENOMEM. */
int tf_placer_new(const tf_topo *t, tf_bind_policy policy, tf_placer **out);
void tf_placer_free(tf_placer *pl);

/* One task's PUs, from tf_placer_acquire to tf_placer_release. */
typedef struct tf_place {
    size_t n;
    size_t *pu; /* indexes into the placer's view */
} tf_place;

/*
 * Choose ncores PUs for a task with tf_plan_pick, given what the running
 * tasks hold, and count them as used until tf_placer_release. The pool's
 * slot count bounds the cores in use, so with slots <= PUs no two tasks
 * share a PU; with more slots than PUs the least loaded ones are shared.
 * Errors: TF_ENOMEM, TF_EINVAL (ncores 0); *out untouched then.
 */
int tf_placer_acquire(tf_placer *pl, size_t ncores, tf_place *out);
void tf_placer_release(tf_placer *pl, tf_place *p);

/*
 * The task's PUs and NUMA nodes as OS indexes, comma-separated, for
 * TASKFARM_CORES ("0,2,4") and TASKFARM_NUMA ("0,1"; "" when hwloc knows no
 * NUMA node). Truncated to fit; cores needs 12 bytes a PU.
 */
void tf_place_format(const tf_placer *pl, const tf_place *p, char *cores,
                     size_t clen, char *numa, size_t nlen);

/* What tf_placer_bind changed on the calling thread, to undo it. */
typedef struct tf_binding {
    void *cpuset, *nodeset; /* hwloc bitmaps of the thread before */
    int mempolicy;
    bool cpu, mem; /* which of the two were changed */
} tf_binding;

/*
 * Bind the calling thread to the task's PUs (TF_BIND_CORE) or NUMA domains
 * (TF_BIND_NUMA) and its memory policy to their NUMA nodes, so that what it
 * spawns next (posix_spawn, fork) inherits both; tf_placer_unbind puts the
 * thread back as it was. With TF_BIND_NONE it does nothing.
 *
 * When binding is not possible (a topology that is not this machine's, a
 * kernel or container that refuses) the task runs unbound: the first
 * failure of each kind sets *warning to a message for people, once per
 * placer, and later calls no longer try; otherwise *warning is NULL. Returns 0,
 * or TF_ENOMEM (nothing bound; *saved need not be undone).
 */
int tf_placer_bind(tf_placer *pl, const tf_place *p, tf_binding *saved,
                   const char **warning);
void tf_placer_unbind(tf_placer *pl, tf_binding *saved);

/*
 * Memory for task data on a NUMA node (OS index), e.g. the executing
 * worker's: len bytes, page-aligned, zeroed, freed with tf_topo_free_near.
 * hwloc_alloc_membind binds the pages to the node; where that is not
 * possible (not this machine, no NUMA support) the pages are touched by the
 * calling thread, so the kernel's first-touch rule puts them on that
 * thread's node (the right one when the thread is bound there), and *bound
 * (if not NULL) says false. numa_os -1: no preference. NULL when out of
 * memory. Thread-safe.
 */
void *tf_topo_alloc_near(const tf_topo *t, size_t len, int numa_os,
                         bool *bound);
void tf_topo_free_near(const tf_topo *t, void *p, size_t len);

#endif
