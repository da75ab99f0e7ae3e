/* Rank localities: the text form ranks exchange, parsing, distance, overlaps. */
#include "locality.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "place/topo_hw.h"
#include "taskfarm_status.h"

static unsigned count(hwloc_topology_t topo, hwloc_obj_type_t type)
{
    int n = hwloc_get_nbobjs_by_type(topo, type);
    return n > 0 ? (unsigned)n : 0;
}

int tf_topo_locality(const tf_topo *t, const char *host, char **out)
{
    hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
    char *cpus = NULL, *numa = NULL, *line = NULL;
    int rc = TF_ENOMEM;
    if (!nodes || hwloc_bitmap_list_asprintf(&cpus, t->set) < 0)
        goto out;
    hwloc_cpuset_to_nodeset(t->topo, t->set, nodes);
    if (hwloc_bitmap_list_asprintf(&numa, nodes) < 0)
        goto out;
    unsigned ncores = 0;
    hwloc_obj_t core = NULL;
    while ((core = hwloc_get_next_obj_covering_cpuset_by_type(
                t->topo, t->set, HWLOC_OBJ_CORE, core)))
        ncores++;
    if (!ncores) /* no Core objects: count PUs */
        ncores = (unsigned)t->ncpus;
    const char *fmt = "host=%s cpus=%s cores=%u pus=%zu numa=%s bound=%s "
                      "machine=%u,%u,%u,%u topology=%s";
    const char *h = host && *host ? host : "?";
#define LOCALITY_ARGS                                                          \
    h, cpus, ncores, t->ncpus, numa, t->bound ? "yes" : "no",                  \
        count(t->topo, HWLOC_OBJ_PACKAGE), count(t->topo, HWLOC_OBJ_NUMANODE), \
        count(t->topo, HWLOC_OBJ_CORE), count(t->topo, HWLOC_OBJ_PU),          \
        t->source
    int len = snprintf(NULL, 0, fmt, LOCALITY_ARGS);
    if (len < 0 || !(line = malloc((size_t)len + 1)))
        goto out;
    snprintf(line, (size_t)len + 1, fmt, LOCALITY_ARGS);
#undef LOCALITY_ARGS
    *out = line;
    rc = 0;
out:
    free(cpus);
    free(numa);
    hwloc_bitmap_free(nodes);
    return rc;
}

int tf_locality_parse(const char *text, tf_locality *out)
{
    tf_locality l;
    memset(&l, 0, sizeof l);
    l.buf = strdup(text);
    if (!l.buf)
        return TF_ENOMEM;
    char *s = l.buf;
    while (s && *s) {
        char *key = s;
        char *eq = strchr(s, '=');
        if (!eq)
            break;
        *eq = 0;
        char *val = eq + 1;
        if (!strcmp(key, "topology")) {
            l.source = val; /* the rest of the line */
            break;
        }
        s = strchr(val, ' ');
        if (s)
            *s++ = 0;
        if (!strcmp(key, "host"))
            l.host = val;
        else if (!strcmp(key, "cpus"))
            l.cpus = val;
        else if (!strcmp(key, "numa"))
            l.numa = val;
        else if (!strcmp(key, "cores"))
            l.ncores = (unsigned)strtoul(val, NULL, 10);
        else if (!strcmp(key, "pus"))
            l.npus = (unsigned)strtoul(val, NULL, 10);
        else if (!strcmp(key, "bound"))
            l.bound = !strcmp(val, "yes");
        else if (!strcmp(key, "machine"))
            sscanf(val, "%u,%u,%u,%u", &l.machine[0], &l.machine[1],
                   &l.machine[2], &l.machine[3]);
        /* Unknown keys: a newer peer's; ignored. */
    }
    if (!l.host || !l.cpus || !l.numa) {
        free(l.buf);
        return TF_EINVAL;
    }
    if (!l.source)
        l.source = "?";
    *out = l;
    return 0;
}

void tf_locality_free(tf_locality *l)
{
    free(l->buf);
    memset(l, 0, sizeof *l);
}

/*
 * Compare two lists: 1 intersect, 0 not, -1 no memory or bad list; with
 * equal set, whether they are the same; with common, the intersection.
 */
static int lists(const char *a, const char *b, bool *equal, char *common,
                 size_t len)
{
    hwloc_bitmap_t x = hwloc_bitmap_alloc(), y = hwloc_bitmap_alloc();
    int r = -1;
    if (x && y && hwloc_bitmap_list_sscanf(x, a) == 0 &&
        hwloc_bitmap_list_sscanf(y, b) == 0) {
        if (equal)
            *equal = hwloc_bitmap_isequal(x, y);
        r = hwloc_bitmap_intersects(x, y);
        if (common && len) {
            hwloc_bitmap_and(x, x, y);
            hwloc_bitmap_list_snprintf(common, len, x);
        }
    }
    hwloc_bitmap_free(x);
    hwloc_bitmap_free(y);
    return r;
}

int tf_locality_distance(const tf_locality *a, const tf_locality *b)
{
    if (strcmp(a->host, b->host))
        return TF_NEAR_NONE;
    return lists(a->numa, b->numa, NULL, NULL, 0) == 1 ? TF_NEAR_NUMA
                                                       : TF_NEAR_HOST;
}

bool tf_locality_overlap(const tf_locality *a, const tf_locality *b, char *buf,
                         size_t len)
{
    return !strcmp(a->host, b->host) &&
           lists(a->cpus, b->cpus, NULL, buf, buf ? len : 0) == 1;
}

bool tf_locality_same_cpus(const tf_locality *a, const tf_locality *b)
{
    bool eq = false;
    return !strcmp(a->host, b->host) &&
           lists(a->cpus, b->cpus, &eq, NULL, 0) >= 0 && eq;
}
