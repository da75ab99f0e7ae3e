/* Placing tasks on a rank's PUs (the placer) and binding threads, children and memory with hwloc. */
#include "bind.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "place/topo_hw.h"
#include "taskfarm_status.h"

bool tf_bind_policy_parse(const char *s, tf_bind_policy *out)
{
    static const char *const names[] = {"none", "core", "numa"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = (tf_bind_policy)i;
            return true;
        }
    return false;
}

const char *tf_bind_policy_name(tf_bind_policy p)
{
    return p == TF_BIND_NONE ? "none" : p == TF_BIND_CORE ? "core" : "numa";
}

struct tf_placer {
    const tf_topo *t;
    tf_bind_policy policy;
    tf_plan_view view;
    pthread_mutex_t mu;
    unsigned *load; /* per view PU: running tasks on it */
    /*
     * Binding that failed once is not tried again: it fails the same way
     * for every task, and one warning is enough.
     */
    bool cpu_off, mem_off;
    bool warned;      /* the not-this-machine message was handed out */
    char why[2][320]; /* the messages: CPU, memory */
};

int tf_placer_new(const tf_topo *t, tf_bind_policy policy, tf_placer **out)
{
    tf_placer *pl = calloc(1, sizeof *pl);
    if (!pl)
        return TF_ENOMEM;
    pl->t = t;
    pl->policy = policy;
    if (tf_topo_view(t, &pl->view))
        goto fail_with_placer;
    pl->load = calloc(pl->view.npu ? pl->view.npu : 1, sizeof *pl->load);
    if (!pl->load)
        goto fail_with_view;
    if (pthread_mutex_init(&pl->mu, NULL))
        goto fail_with_load;
    if (!tf_topo_is_thissystem(t)) {
        /* hwloc would say ENOSYS for each call: say why once, up front. */
        pl->cpu_off = pl->mem_off = true;
        snprintf(pl->why[0], sizeof pl->why[0],
                 "binding is not supported: the topology comes from %s, not "
                 "from this machine; tasks are placed but run unbound",
                 tf_topo_source(t));
    }
    *out = pl;
    return 0;

fail_with_load:
    free(pl->load);
fail_with_view:
    tf_plan_view_free(&pl->view);
fail_with_placer:
    free(pl);
    return TF_ENOMEM;
}

void tf_placer_free(tf_placer *pl)
{
    if (!pl)
        return;
    pthread_mutex_destroy(&pl->mu);
    free(pl->load);
    tf_plan_view_free(&pl->view);
    free(pl);
}

int tf_placer_acquire(tf_placer *pl, size_t ncores, tf_place *out)
{
    if (!ncores)
        return TF_EINVAL;
    size_t *pu = malloc(sizeof *pu * ncores);
    if (!pu)
        return TF_ENOMEM;
    pthread_mutex_lock(&pl->mu);
    size_t n = tf_plan_pick(&pl->view, pl->load, ncores, pu);
    for (size_t i = 0; i < n; i++)
        pl->load[pu[i]]++;
    pthread_mutex_unlock(&pl->mu);
    out->n = n;
    out->pu = pu;
    return 0;
}

void tf_placer_release(tf_placer *pl, tf_place *p)
{
    pthread_mutex_lock(&pl->mu);
    for (size_t i = 0; i < p->n; i++)
        pl->load[p->pu[i]]--;
    pthread_mutex_unlock(&pl->mu);
    free(p->pu);
    p->pu = NULL;
    p->n = 0;
}

/* Whether domain d holds one of the task's PUs. */
static bool uses_domain(const tf_placer *pl, const tf_place *p, int d)
{
    for (size_t i = 0; i < p->n; i++)
        if (pl->view.pu[p->pu[i]].domain == d)
            return true;
    return false;
}

/* Append "%d" with a comma before all but the first; stops when full. */
static void append_int(char *buf, size_t len, size_t *off, int v)
{
    if (*off >= len)
        return;
    int k = snprintf(buf + *off, len - *off, *off ? ",%d" : "%d", v);
    if (k > 0)
        *off += (size_t)k < len - *off ? (size_t)k : len - *off;
}

void tf_place_format(const tf_placer *pl, const tf_place *p, char *cores,
                     size_t clen, char *numa, size_t nlen)
{
    size_t off = 0;
    if (clen)
        cores[0] = 0;
    for (size_t i = 0; i < p->n; i++)
        append_int(cores, clen, &off, pl->view.pu[p->pu[i]].os);
    off = 0;
    if (nlen)
        numa[0] = 0;
    for (size_t d = 0; d < pl->view.ndomains; d++)
        if (pl->view.domain_os[d] >= 0 && uses_domain(pl, p, (int)d))
            append_int(numa, nlen, &off, pl->view.domain_os[d]);
}

/* The CPUs and NUMA nodes a task is bound to under the placer's policy. */
static void binding_sets(const tf_placer *pl, const tf_place *p,
                         hwloc_bitmap_t cpus, hwloc_bitmap_t nodes)
{
    for (size_t i = 0; i < p->n; i++)
        hwloc_bitmap_set(cpus, (unsigned)pl->view.pu[p->pu[i]].os);
    for (size_t d = 0; d < pl->view.ndomains; d++) {
        if (!uses_domain(pl, p, (int)d))
            continue;
        if (pl->view.domain_os[d] >= 0)
            hwloc_bitmap_set(nodes, (unsigned)pl->view.domain_os[d]);
        if (pl->policy == TF_BIND_NUMA)
            for (size_t i = 0; i < pl->view.npu; i++)
                if (pl->view.pu[i].domain == (int)d)
                    hwloc_bitmap_set(cpus, (unsigned)pl->view.pu[i].os);
    }
}

/* Turn binding of one kind off after its first failure; the message once. */
static const char *give_up(tf_placer *pl, int kind, int err)
{
    const char *msg = NULL;
    pthread_mutex_lock(&pl->mu);
    bool *off = kind == 0 ? &pl->cpu_off : &pl->mem_off;
    if (!*off) {
        *off = true;
        snprintf(pl->why[kind], sizeof pl->why[kind],
                 "cannot bind tasks' %s: %s; tasks run %s",
                 kind == 0 ? "processes to their cores"
                           : "memory to their "
                             "NUMA nodes",
                 strerror(err),
                 kind == 0 ? "unbound" : "with the default memory policy");
        msg = pl->why[kind];
    }
    pthread_mutex_unlock(&pl->mu);
    return msg;
}

int tf_placer_bind(tf_placer *pl, const tf_place *p, tf_binding *saved,
                   const char **warning)
{
    memset(saved, 0, sizeof *saved);
    *warning = NULL;
    if (pl->policy == TF_BIND_NONE || !p->n)
        return 0;
    pthread_mutex_lock(&pl->mu);
    bool try_cpu = !pl->cpu_off, try_mem = !pl->mem_off;
    if (!pl->warned && pl->why[0][0] && !try_cpu && !try_mem) {
        pl->warned = true;
        *warning = pl->why[0];
    }
    pthread_mutex_unlock(&pl->mu);
    if (!try_cpu && !try_mem)
        return 0;

    hwloc_topology_t topo = pl->t->topo;
    hwloc_bitmap_t cpus = hwloc_bitmap_alloc(), nodes = hwloc_bitmap_alloc();
    saved->cpuset = hwloc_bitmap_alloc();
    saved->nodeset = hwloc_bitmap_alloc();
    if (!cpus || !nodes || !saved->cpuset || !saved->nodeset) {
        hwloc_bitmap_free(cpus);
        hwloc_bitmap_free(nodes);
        hwloc_bitmap_free(saved->cpuset);
        hwloc_bitmap_free(saved->nodeset);
        memset(saved, 0, sizeof *saved);
        return TF_ENOMEM;
    }
    binding_sets(pl, p, cpus, nodes);
    if (try_cpu) {
        if (hwloc_get_cpubind(topo, saved->cpuset, HWLOC_CPUBIND_THREAD) == 0 &&
            hwloc_set_cpubind(topo, cpus, HWLOC_CPUBIND_THREAD) == 0) {
            saved->cpu = true;
        } else {
            const char *m = give_up(pl, 0, errno);
            if (m)
                *warning = m;
        }
    }
    if (try_mem && !hwloc_bitmap_iszero(nodes)) {
        hwloc_membind_policy_t pol;
        int flags = HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET;
        if (hwloc_get_membind(topo, saved->nodeset, &pol, flags) == 0 &&
            hwloc_set_membind(topo, nodes, HWLOC_MEMBIND_BIND, flags) == 0) {
            saved->mem = true;
            saved->mempolicy = (int)pol;
        } else {
            const char *m = give_up(pl, 1, errno);
            if (m && !*warning)
                *warning = m;
        }
    }
    hwloc_bitmap_free(cpus);
    hwloc_bitmap_free(nodes);
    return 0;
}

void tf_placer_unbind(tf_placer *pl, tf_binding *saved)
{
    hwloc_topology_t topo = pl->t->topo;
    /* Best effort: the thread's own earlier binding was valid a moment ago. */
    if (saved->cpu)
        hwloc_set_cpubind(topo, saved->cpuset, HWLOC_CPUBIND_THREAD);
    if (saved->mem)
        hwloc_set_membind(topo, saved->nodeset,
                          (hwloc_membind_policy_t)saved->mempolicy,
                          HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET);
    hwloc_bitmap_free(saved->cpuset);
    hwloc_bitmap_free(saved->nodeset);
    memset(saved, 0, sizeof *saved);
}

void *tf_topo_alloc_near(const tf_topo *t, size_t len, int numa_os, bool *bound)
{
    void *p = NULL;
    if (!len)
        len = 1;
    if (numa_os >= 0 && tf_topo_is_thissystem(t)) {
        hwloc_bitmap_t node = hwloc_bitmap_alloc();
        if (node) {
            hwloc_bitmap_set(node, (unsigned)numa_os);
            /* STRICT: fail rather than silently leave the pages anywhere. */
            p = hwloc_alloc_membind(t->topo, len, node, HWLOC_MEMBIND_BIND,
                                    HWLOC_MEMBIND_BYNODESET |
                                        HWLOC_MEMBIND_STRICT);
            hwloc_bitmap_free(node);
        }
    }
    if (bound)
        *bound = p != NULL;
    if (p)
        return p; /* fresh anonymous pages: already zero */
    p = hwloc_alloc(t->topo, len);
    if (p)
        memset(p, 0, len); /* the first touch, from the calling thread */
    return p;
}

void tf_topo_free_near(const tf_topo *t, void *p, size_t len)
{
    if (p)
        hwloc_free(t->topo, p, len ? len : 1);
}
